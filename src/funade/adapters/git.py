"""Git, through the git CLI: what a build needs to know about the repository it comes from.

Small functions over ``git -C <dir> …`` (no library: the CLI is what users have and what
CI runs). :func:`state` gathers them into a :class:`funade.core.tagging.GitState`, the value
the build's tagging works from.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from funade.core.tagging import GitState

__all__ = [
    "GitError",
    "NotARepository",
    "current_branch",
    "dirty_paths",
    "exact_tags",
    "head_sha",
    "remote_url",
    "state",
]


class GitError(Exception):
    """git failed, or is not installed."""


class NotARepository(GitError):
    """The directory is not inside a git work tree (or HEAD has no commit yet)."""


def _git(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("git")
    if executable is None:
        raise GitError("git is not installed (needed to tag the image from the commit)")
    try:
        result = subprocess.run(
            [executable, "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {' '.join(args)} failed: {exc}") from exc
    if check and result.returncode != 0:
        message = result.stderr.strip() or f"exit code {result.returncode}"
        if "not a git repository" in message:
            raise NotARepository(f"{directory} is not inside a git repository")
        raise GitError(f"git {' '.join(args)} failed: {message}")
    return result


def head_sha(directory: Path) -> str:
    """The full ID of the commit HEAD points at."""
    result = _git(directory, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if result.returncode != 0:
        _git(directory, "rev-parse", "--git-dir")  # raises NotARepository outside one
        raise NotARepository(f"the repository at {directory} has no commit yet")
    return result.stdout.strip()


def current_branch(directory: Path) -> str | None:
    """The checked-out branch; None on a detached HEAD."""
    result = _git(directory, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def exact_tags(directory: Path) -> tuple[str, ...]:
    """The tags pointing exactly at HEAD."""
    result = _git(directory, "tag", "--points-at", "HEAD")
    return tuple(line.strip() for line in result.stdout.splitlines() if line.strip())


def remote_url(directory: Path) -> str | None:
    """The URL of ``origin``, or of the only remote; None without remotes."""
    remotes = _git(directory, "remote").stdout.split()
    if not remotes:
        return None
    name = "origin" if "origin" in remotes else remotes[0] if len(remotes) == 1 else None
    if name is None:
        return None
    url = _git(directory, "remote", "get-url", name, check=False).stdout.strip()
    return url or None


def dirty_paths(directory: Path) -> tuple[str, ...]:
    """Tracked changes and untracked files git does not ignore (``git status --porcelain``)."""
    result = _git(directory, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = result.stdout.split("\0")
    paths: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy is followed by its source path
            index += 1
    return tuple(paths)


def state(directory: Path) -> GitState:
    """Everything the build's tags and labels need, read from the repository at ``directory``.

    Raises:
        NotARepository: ``directory`` is not in a git work tree, or there is no commit.
        GitError: git is missing or failed.
    """
    return GitState(
        sha=head_sha(directory),
        branch=current_branch(directory),
        tags_at_head=exact_tags(directory),
        remote_url=remote_url(directory),
        dirty_paths=dirty_paths(directory),
    )
