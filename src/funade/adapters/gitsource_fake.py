"""An in-memory stand-in for :class:`funade.adapters.gitsource.GitSource`, for unit tests.

Code above the git adapter (the app controller, ApplicationSet generators, the renderer)
needs repositories whose branches move on command and that can be made unreachable,
without running git. Commits are snapshots of ``{path: bytes}``; :meth:`FakeGitSource.checkout`
writes one to a directory so that rendering reads real files.
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from funade.adapters.gitsource import SourceError, redact

__all__ = ["FakeGitSource"]


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    default_branch: str = "main"
    reachable: bool = True


class FakeGitSource:
    """Repositories held in memory, with the public methods of ``GitSource``.

    Args:
        root: where :meth:`checkout` writes trees; a temporary directory when omitted.

    Attributes:
        fetches: how many times a repository was (pretend) fetched.
        checkouts: how many trees were written.
    """

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self.fetches = 0
        self.checkouts = 0

    # --- arranging repositories ----------------------------------------------------

    def commit(self, repo_url: str, files: Mapping[str, str | bytes | None], *, branch: str = "main") -> str:
        """Commit ``files`` on top of ``branch`` (created when new); a None value deletes a path.

        Returns:
            The new commit's SHA.
        """
        with self._lock:
            repo = self._repos.setdefault(repo_url, _Repo(default_branch=branch))
            parent = repo.branches.get(branch)
            snapshot = dict(repo.commits[parent]) if parent else {}
            for path, content in files.items():
                clean = posixpath.normpath(path)
                if content is None:
                    snapshot.pop(clean, None)
                else:
                    snapshot[clean] = content.encode() if isinstance(content, str) else content
            digest = hashlib.sha1(usedforsecurity=False)
            digest.update(f"{parent}\0{len(repo.commits)}\0".encode())
            for path in sorted(snapshot):
                digest.update(path.encode() + b"\0" + snapshot[path] + b"\0")
            sha = digest.hexdigest()
            repo.commits[sha] = snapshot
            repo.branches[branch] = sha
            return sha

    def tag(self, repo_url: str, name: str, commit: str) -> None:
        """Point tag ``name`` at ``commit``."""
        self._repo(repo_url).tags[name] = commit

    def set_default_branch(self, repo_url: str, branch: str) -> None:
        """Make ``branch`` what ``HEAD`` resolves to."""
        self._repo(repo_url).default_branch = branch

    def set_reachable(self, repo_url: str, reachable: bool) -> None:
        """Make the repository fail (or succeed again) like a network outage."""
        self._repo(repo_url).reachable = reachable

    # --- the GitSource surface -----------------------------------------------------

    def resolve(self, repo_url: str, revision: str = "HEAD", *, refresh: bool = False) -> str:
        """The commit ``revision`` names: ``HEAD``, a branch, a tag or a (short) SHA."""
        repo = self._reachable(repo_url)
        self.fetches += 1
        rev = revision.strip() or "HEAD"
        if rev == "HEAD":
            rev = repo.default_branch
        for table in (repo.branches, repo.tags):
            if rev in table:
                return table[rev]
        matches = [sha for sha in repo.commits if len(rev) >= 4 and sha.startswith(rev.lower())]
        if len(matches) == 1:
            return matches[0]
        raise SourceError(f"revision {rev} not found in {redact(repo_url)}")

    def checkout(self, repo_url: str, commit: str) -> Path:
        """Write the commit's files under the root directory (once) and return the tree."""
        sha = self.resolve(repo_url, commit)
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="funade-fake-git-"))
            tree = self._root / sha
            if not tree.is_dir():
                temp = self._root / f".tmp-{sha}"
                for path, content in self._repos[repo_url].commits[sha].items():
                    target = temp / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                temp.mkdir(parents=True, exist_ok=True)
                temp.rename(tree)
                self.checkouts += 1
            return tree

    def changed_paths(self, repo_url: str, old: str | None, new: str) -> set[str]:
        """Paths whose content differs between the two commits (added, removed or changed)."""
        repo = self._repo(repo_url)
        after = repo.commits[self.resolve(repo_url, new)]
        if old is None or not old.strip():
            return set(after)
        before = repo.commits[self.resolve(repo_url, old)]
        return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}

    def commit_sha(self, repo: str, revision: str) -> str:
        """:meth:`resolve` under the name ``RepoView`` uses."""
        return self.resolve(repo, revision)

    def list_files(self, repo: str, revision: str) -> list[str]:
        """Every file path at ``revision``, sorted."""
        return sorted(self._files(repo, revision))

    def list_dirs(self, repo: str, revision: str) -> list[str]:
        """Every directory holding a file at ``revision`` (the root excluded), sorted."""
        dirs: set[str] = set()
        for path in self._files(repo, revision):
            parent = posixpath.dirname(path)
            while parent:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        return sorted(dirs)

    def read(self, repo: str, revision: str, path: str) -> bytes:
        """The content of ``path`` at ``revision``."""
        files = self._files(repo, revision)
        clean = posixpath.normpath(path.lstrip("/"))
        if clean not in files:
            raise SourceError(f"file {clean} not found in {redact(repo)} at {revision}")
        return files[clean]

    # --- internals -----------------------------------------------------------------

    def _repo(self, repo_url: str) -> _Repo:
        repo = self._repos.get(repo_url)
        if repo is None:
            raise SourceError(f"repository {redact(repo_url)} unreachable: no such repository")
        return repo

    def _reachable(self, repo_url: str) -> _Repo:
        repo = self._repo(repo_url)
        if not repo.reachable:
            raise SourceError(f"repository {redact(repo_url)} unreachable: connection refused")
        return repo

    def _files(self, repo_url: str, revision: str) -> dict[str, bytes]:
        return self._repos[repo_url].commits[self.resolve(repo_url, revision)]
