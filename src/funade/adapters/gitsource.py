"""Git repositories as the source of an Application's desired state, through the git CLI.

GitOps needs three things of a repository: which commit a revision (branch, tag, SHA,
``HEAD``) names right now, the files of that commit on disk for rendering, and which
paths changed between two commits so that only the apps a push touched are rendered
again. :class:`GitSource` keeps one bare mirror per repository under its cache
directory, fetched at most every few seconds (a lock per repository serialises
fetches), and checks commits out into read-only trees named by their SHA, written to a
temporary directory and renamed so a crash never leaves half a tree.

Credentials come from where git finds them (credential helpers, ``~/.git-credentials``,
the SSH agent and keys, ``GIT_SSH_COMMAND``); ``user:password@`` in a URL is sent as an
HTTP header through the environment, never on a command line. Every URL in a message
goes through :func:`redact`. Prompts are off (``GIT_TERMINAL_PROMPT=0``, no controlling
terminal) and every git call has a timeout, so a missing credential fails fast.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

__all__ = ["GitSource", "SourceError", "redact"]

#: The ref the remote's default branch (its ``HEAD``) is fetched into.
_HEAD_REF = "refs/funade/HEAD"
_FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s'\"]*@)?(?P<rest>[^\s'\"]*)")
_HTTP_SCHEMES = frozenset({"http://", "https://", "ftp://", "ftps://"})
# What git's check-ref-format forbids, plus what would make a name an expression or an option.
_BAD_REVISION = re.compile(r"(^[-/])|(\.\.)|(@\{)|([\x00-\x20\x7f~^:?*\[\\])|(/$)|(\.$)|(\.lock$)")
_STALE_TEMP_SECONDS = 3600.0
_LISTINGS_KEPT = 128
_DETAIL_CHARS = 600
# What git adds after the real reason a remote failed.
_BOILERPLATE = frozenset(
    {
        "Could not read from remote repository.",
        "Please make sure you have the correct access rights",
        "and the repository exists.",
    }
)
_ENV_DROPPED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
)


class SourceError(Exception):
    """A repository cannot be reached, or a revision or path is not in it.

    The message names the repository (credentials redacted) and the revision.
    """


def redact(url: str) -> str:
    """``url`` with its credentials replaced by ``***``, fit for messages and logs.

    For HTTP(S) the whole ``user:password@`` goes (a token is often the user name);
    for SSH only a password does (``ssh://git@host/x`` names no secret).
    """
    return _URL.sub(_redact_match, url)


def _redact_match(match: re.Match[str]) -> str:
    scheme, userinfo, rest = match["scheme"], match["userinfo"], match["rest"]
    if not userinfo:
        return match[0]
    if scheme.lower() in _HTTP_SCHEMES or ":" in userinfo:
        return f"{scheme}***@{rest}"
    return match[0]


@dataclass(frozen=True)
class _Remote:
    """A repository URL split into what git is given, what names the mirror and what messages show."""

    url: str  # what git fetches from: credentials removed
    key: str  # names the mirror: the URL without credentials, or the absolute local path
    shown: str  # for messages: redacted
    secrets: tuple[str, ...]  # strings that must never appear in a message
    auth_header: str | None  # "Authorization: Basic …" for credentials given in an HTTP(S) URL

    @classmethod
    def parse(cls, repo_url: str) -> _Remote:
        text = repo_url.strip()
        if not text:
            raise SourceError("repository URL is empty")
        match = _URL.fullmatch(text)
        if match is not None:
            scheme, userinfo, rest = match["scheme"], match["userinfo"] or "", match["rest"]
            bare = f"{scheme}{rest}".rstrip("/")
            secrets: list[str] = []
            header = None
            if userinfo:
                user, _, password = userinfo[:-1].partition(":")
                secrets = [s for s in (password, unquote(password)) if s]
                if scheme.lower() in _HTTP_SCHEMES:
                    secrets += [s for s in (user, unquote(user)) if s]
                    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
                    header = f"Authorization: Basic {token}"
                    url = bare
                else:
                    url = f"{scheme}{user}@{rest}"  # ssh takes the user from the URL; never a password
            else:
                url = bare
            if scheme.lower() == "file://":
                url = text
            return cls(url=url, key=bare, shown=redact(text), secrets=tuple(secrets), auth_header=header)
        if _is_scp_like(text):  # git@host:org/repo.git
            return cls(url=text, key=text.rstrip("/"), shown=text, secrets=(), auth_header=None)
        path = str(Path(text).expanduser().resolve())
        return cls(url=path, key=path, shown=path, secrets=(), auth_header=None)

    def scrub(self, text: str) -> str:
        """``text`` with every URL redacted and every known secret masked."""
        out = redact(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            out = out.replace(secret, "***")
        return out


def _is_scp_like(text: str) -> bool:
    """git's rule: a colon before the first slash makes ``host:path`` an SSH address."""
    colon = text.find(":")
    slash = text.find("/")
    return colon > 0 and (slash == -1 or colon < slash)


@dataclass(frozen=True)
class _Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace")


class _Timeout(Exception):
    pass


class GitSource:
    """Git repositories, mirrored and checked out under ``cache_dir``.

    Layout: ``mirrors/<name>-<hash>.git`` (one bare mirror per repository URL, credentials
    stripped before hashing) and ``trees/<sha>`` (one read-only tree per commit).

    Args:
        cache_dir: where mirrors and trees live; created when missing.
        fetch_interval: a repository fetched less than this many seconds ago is not
            fetched again unless ``refresh=True``.
        timeout: seconds allowed for each git call.
        clock: a monotonic clock (tests pass a fake one).

    Attributes:
        fetches: how many fetches ran (for benchmarks and tests).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        fetch_interval: float = 10.0,
        timeout: float = 90.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_dir = cache_dir
        self.fetch_interval = fetch_interval
        self.timeout = timeout
        self.fetches = 0
        self._clock = clock
        self._mirrors = cache_dir / "mirrors"
        self._trees = cache_dir / "trees"
        self._mirrors.mkdir(parents=True, exist_ok=True)
        self._trees.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._fetched_at: dict[str, float] = {}
        self._listings: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._git_path: str | None = None
        self._remove_stale_temporaries()

    # --- public --------------------------------------------------------------------

    def resolve(self, repo_url: str, revision: str = "HEAD", *, refresh: bool = False) -> str:
        """The full SHA of the commit ``revision`` names in the repository now.

        ``revision`` is a branch, a tag, a full or abbreviated SHA, a full ref
        (``refs/…``) or ``HEAD`` (the remote's default branch). A branch wins over a tag
        of the same name, as in Argo CD. A full SHA already fetched needs no fetch.

        Raises:
            SourceError: the repository is unreachable, or the revision is not in it.
        """
        remote = _Remote.parse(repo_url)
        rev = revision.strip() or "HEAD"
        if _BAD_REVISION.search(rev):
            raise SourceError(f"revision {rev!r} is not a valid branch, tag or commit name (repository {remote.shown})")
        mirror = self._mirror(remote)
        if not refresh and _FULL_SHA.fullmatch(rev) and (found := self._rev_parse(mirror, rev)):
            return found
        fetched = self._fetch(remote, mirror, force=refresh)
        sha = self._lookup(remote, mirror, rev)
        if sha is None and not fetched:  # fetched a moment ago, but this name may be new
            self._fetch(remote, mirror, force=True)
            sha = self._lookup(remote, mirror, rev)
        if sha is None and _FULL_SHA.fullmatch(rev):  # a commit no branch or tag reaches (a PR head)
            sha = self._fetch_commit(remote, mirror, rev)
        if sha is None:
            raise SourceError(f"revision {rev} not found in {remote.shown}")
        return sha

    def checkout(self, repo_url: str, commit: str) -> Path:
        """A read-only tree of ``commit`` (resolved first when it is not a full SHA).

        The tree is ``trees/<sha>`` under the cache directory, reused when present and
        otherwise written to a temporary directory and renamed into place.

        Raises:
            SourceError: as :meth:`resolve`, or git failed to write the files.
        """
        remote = _Remote.parse(repo_url)
        sha = self.resolve(repo_url, commit)
        target = self._trees / sha
        if target.is_dir():
            return target
        mirror = self._mirror(remote)
        with self._repo_lock(remote.key):
            if target.is_dir():
                return target
            temp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha[:12]}-", dir=self._trees))
            index = temp.with_name(temp.name + ".index")
            try:
                env = {"GIT_INDEX_FILE": str(index)}
                for args in (("read-tree", sha), ("checkout-index", "--all", "--force")):
                    result = self._git(
                        ["--git-dir", str(mirror), "--work-tree", str(temp), *args],
                        env=env,
                        what=f"checking out {sha[:12]} of {remote.shown}",
                        remote=remote,
                    )
                    if result.code != 0:
                        raise SourceError(
                            f"checking out {sha[:12]} of {remote.shown} failed: {_detail(result.err, remote)}"
                        )
                _make_read_only(temp)
                try:
                    temp.rename(target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                index.unlink(missing_ok=True)
                if temp.exists():
                    _remove_tree(temp)
        return target

    def changed_paths(self, repo_url: str, old: str | None, new: str) -> set[str]:
        """Paths that differ between commits ``old`` and ``new`` (both sides of a rename).

        ``old=None`` (nothing synced yet) means every file of ``new``.
        """
        remote = _Remote.parse(repo_url)
        new_sha = self.resolve(repo_url, new)
        if old is None or not old.strip():
            return set(self.list_files(repo_url, new_sha))
        old_sha = self.resolve(repo_url, old)
        if old_sha == new_sha:
            return set()
        result = self._git(
            [
                "--git-dir",
                str(self._mirror(remote)),
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                old_sha,
                new_sha,
                "--",
            ],
            what=f"comparing {old_sha[:12]}..{new_sha[:12]} of {remote.shown}",
            remote=remote,
        )
        if result.code != 0:
            raise SourceError(
                f"comparing {old_sha[:12]}..{new_sha[:12]} of {remote.shown} failed: {_detail(result.err, remote)}"
            )
        return {path for path in result.text.split("\0") if path}

    def commit_sha(self, repo: str, revision: str) -> str:
        """:meth:`resolve` under the name ``RepoView`` (``funade.core.gitops.appset``) uses."""
        return self.resolve(repo, revision)

    def list_files(self, repo: str, revision: str) -> list[str]:
        """Every file path (repository-relative, ``/``-separated) at ``revision``, sorted."""
        return list(self._listing(repo, revision, dirs=False))

    def list_dirs(self, repo: str, revision: str) -> list[str]:
        """Every directory path at ``revision`` (the root excluded), sorted."""
        return list(self._listing(repo, revision, dirs=True))

    def read(self, repo: str, revision: str, path: str) -> bytes:
        """The content of the file ``path`` at ``revision``.

        Raises:
            SourceError: the path is not a file at that revision.
        """
        remote = _Remote.parse(repo)
        sha = self.resolve(repo, revision)
        clean = _repo_path(path)
        if clean is None:
            raise SourceError(f"path {path!r} is not inside the repository {remote.shown}")
        result = self._git(
            ["--git-dir", str(self._mirror(remote)), "cat-file", "blob", f"{sha}:{clean}"],
            what=f"reading {clean} of {remote.shown}",
            remote=remote,
        )
        if result.code != 0:
            raise SourceError(f"file {clean} not found in {remote.shown} at {revision} ({sha[:12]})")
        return result.out

    # --- mirrors and fetching ------------------------------------------------------

    def _mirror(self, remote: _Remote) -> Path:
        digest = hashlib.sha256(remote.key.encode()).hexdigest()[:24]
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(remote.key.rstrip("/")) or "repo")
        stem = stem.removesuffix(".git")[:40] or "repo"
        mirror = self._mirrors / f"{stem}-{digest}.git"
        if (mirror / "HEAD").is_file():
            return mirror
        with self._repo_lock(remote.key), self._file_lock(mirror):
            if not (mirror / "HEAD").is_file():
                temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self._mirrors))
                try:
                    result = self._git(
                        ["init", "--quiet", "--bare", str(temp)], what="creating a mirror", remote=remote
                    )
                    if result.code != 0:
                        raise SourceError(f"creating a mirror of {remote.shown} failed: {_detail(result.err, remote)}")
                    temp.rename(mirror)
                finally:
                    if temp.exists():
                        _remove_tree(temp)
        return mirror

    def _fetch(self, remote: _Remote, mirror: Path, *, force: bool) -> bool:
        """Fetch branches, tags and the default branch; False when a recent fetch is reused."""
        with self._repo_lock(remote.key):
            last = self._fetched_at.get(remote.key)
            if not force and last is not None and self._clock() - last < self.fetch_interval:
                return False
            with self._file_lock(mirror):
                result = self._run_fetch(remote, mirror, (*_FETCH_REFSPECS, f"+HEAD:{_HEAD_REF}"))
                if result.code != 0 and "couldn't find remote ref HEAD" in result.err:
                    # An empty repository, or one whose HEAD names a missing branch.
                    result = self._run_fetch(remote, mirror, _FETCH_REFSPECS)
                    self._git(
                        ["--git-dir", str(mirror), "update-ref", "-d", _HEAD_REF], what="forgetting HEAD", remote=remote
                    )
            if result.code != 0:
                raise SourceError(f"repository {remote.shown} unreachable: {_detail(result.err, remote)}")
            self.fetches += 1
            self._fetched_at[remote.key] = self._clock()
            return True

    def _run_fetch(self, remote: _Remote, mirror: Path, refspecs: Sequence[str]) -> _Result:
        args = ["--git-dir", str(mirror), "fetch", "--quiet", "--prune", "--no-tags", "--force", "--", remote.url]
        return self._git([*args, *refspecs], what=f"fetching {remote.shown}", remote=remote, network=True)

    def _fetch_commit(self, remote: _Remote, mirror: Path, sha: str) -> str | None:
        with self._repo_lock(remote.key), self._file_lock(mirror):
            result = self._run_fetch(remote, mirror, (f"+{sha}:refs/funade/commits/{sha}",))
        if result.code != 0:
            return None
        return self._rev_parse(mirror, sha)

    def _lookup(self, remote: _Remote, mirror: Path, rev: str) -> str | None:
        if rev == "HEAD":
            sha = self._rev_parse(mirror, _HEAD_REF)
            if sha is None:
                raise SourceError(f"repository {remote.shown} has no commits on its default branch (HEAD)")
            return sha
        if rev.startswith("refs/"):
            return self._rev_parse(mirror, rev)
        for candidate in (f"refs/heads/{rev}", f"refs/tags/{rev}"):
            if sha := self._rev_parse(mirror, candidate):
                return sha
        if _HEX.fullmatch(rev):
            return self._rev_parse(mirror, rev.lower())
        return None

    def _rev_parse(self, mirror: Path, name: str) -> str | None:
        result = self._git(
            ["--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"],
            what="resolving a revision",
        )
        sha = result.text.strip()
        return sha if result.code == 0 and _FULL_SHA.fullmatch(sha) else None

    def _listing(self, repo: str, revision: str, *, dirs: bool) -> list[str]:
        remote = _Remote.parse(repo)
        sha = self.resolve(repo, revision)
        key = (sha, "dirs" if dirs else "files")
        with self._guard:
            cached = self._listings.get(key)
            if cached is not None:
                self._listings.move_to_end(key)
                return cached
        args = ["--git-dir", str(self._mirror(remote)), "ls-tree", "-r", "-z", "--name-only", "--full-tree"]
        result = self._git([*args, *(["-d"] if dirs else []), sha], what="listing files", remote=remote)
        if result.code != 0:
            raise SourceError(f"listing {sha[:12]} of {remote.shown} failed: {_detail(result.err, remote)}")
        paths = sorted(path for path in result.text.split("\0") if path)
        with self._guard:
            self._listings[key] = paths
            while len(self._listings) > _LISTINGS_KEPT:
                self._listings.popitem(last=False)
        return paths

    # --- locks and processes -------------------------------------------------------

    def _repo_lock(self, key: str) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.RLock()
            return lock

    @contextlib.contextmanager
    def _file_lock(self, mirror: Path) -> Iterator[None]:
        """Serialise with other processes sharing the cache directory."""
        with mirror.with_name(mirror.name + ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _git(
        self,
        args: Sequence[str],
        *,
        what: str,
        remote: _Remote | None = None,
        env: Mapping[str, str] | None = None,
        network: bool = False,
    ) -> _Result:
        executable = self._git_path or shutil.which("git")
        if executable is None:
            raise SourceError("git is not installed (needed to fetch GitOps sources)")
        self._git_path = executable
        full_env = {key: value for key, value in os.environ.items() if key not in _ENV_DROPPED}
        full_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
        if network and remote is not None and remote.auth_header is not None:
            count = int(full_env.get("GIT_CONFIG_COUNT", "0") or "0")
            full_env.update(
                {
                    "GIT_CONFIG_COUNT": str(count + 1),
                    f"GIT_CONFIG_KEY_{count}": "http.extraHeader",
                    f"GIT_CONFIG_VALUE_{count}": remote.auth_header,
                }
            )
        if env:
            full_env.update(env)
        try:
            return _run([executable, *args], env=full_env, timeout=self.timeout)
        except _Timeout:
            shown = remote.shown if remote is not None else "the repository"
            prefix = f"repository {shown} unreachable: " if network else ""
            raise SourceError(f"{prefix}{what} timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise SourceError(f"{what} failed: {exc}") from exc

    def _remove_stale_temporaries(self) -> None:
        """Temporary trees left by a crash (older than an hour, so never one being written)."""
        now = time.time()
        for parent in (self._trees, self._mirrors):
            for leftover in parent.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    if now - leftover.stat().st_mtime <= _STALE_TEMP_SECONDS:
                        continue
                    if leftover.is_dir():
                        _remove_tree(leftover)
                    else:
                        leftover.unlink()


def _run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float) -> _Result:
    """Run a command in its own session (no terminal to prompt on); kill its whole group on timeout."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise _Timeout from None
    return _Result(process.returncode, out, err.decode("utf-8", errors="replace"))


def _detail(stderr: str, remote: _Remote | None) -> str:
    """The useful end of git's stderr, with credentials masked."""
    lines = [line.strip().removeprefix("fatal: ").removeprefix("error: ") for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    specific = [line for line in lines if line not in _BOILERPLATE]
    text = "; ".join((specific or lines)[:3])
    text = text or "git failed without a message"
    text = remote.scrub(text) if remote is not None else redact(text)
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _repo_path(path: str) -> str | None:
    """``path`` normalised to a repository-relative path; None when it leaves the repository."""
    clean = posixpath.normpath(path.replace("\\", "/").lstrip("/"))
    if clean in {".", ""} or clean == ".." or clean.startswith("../"):
        return None
    return clean


def _make_read_only(root: Path) -> None:
    """Drop write permission from every regular file (directories stay removable)."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o222)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
