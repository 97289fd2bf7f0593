"""The build context as the Engine wants it: a tar of the directory, minus ``.dockerignore``.

``POST /build`` takes the context as a tar body. The docker CLI makes it by walking the
context and leaving out what ``.dockerignore`` excludes, with moby's pattern semantics
(the last matching pattern wins, ``!`` re-includes, a match on a directory covers what is
inside); this module does the same, using the matcher of
:mod:`funade.core.policy.dockerfile`. Like the CLI, it always sends the Dockerfile and
``.dockerignore`` (the builder needs them even when ignored), and a Dockerfile outside
the context is added under a name of its own. Symlinks are archived as links, not followed.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from funade.core.policy import dockerfile as rules

__all__ = ["BuildContext", "ContextError", "included", "pack"]

#: Where a Dockerfile from outside the context goes in the tar.
OUTSIDE_DOCKERFILE = ".funade.Dockerfile"


class ContextError(Exception):
    """The context cannot be read."""


@dataclass(frozen=True, slots=True)
class BuildContext:
    """A packed context: the tar, the Dockerfile's path inside it, what it holds."""

    tar: bytes
    dockerfile: str
    paths: tuple[str, ...]


def _patterns(context: Path, dockerfile_name: str | None) -> list[tuple[str, bool]]:
    ignore = context / ".dockerignore"
    try:
        text = ignore.read_text(encoding="utf-8", errors="replace") if ignore.is_file() else ""
    except OSError as exc:
        raise ContextError(f"cannot read {ignore}: {exc.strerror or exc}") from exc
    patterns = rules.dockerignore_patterns(text)
    # docker CLI's TrimBuildFilesFromExcludes: the builder needs these whatever the file says.
    for keep in (".dockerignore", dockerfile_name):
        if keep and patterns and rules.dockerignore_excludes(patterns, keep):
            patterns.append((keep, True))
    return patterns


def included(context: Path, dockerfile_name: str | None = "Dockerfile") -> list[str]:
    """The paths (relative, ``/``-separated, sorted, directories too) the context sends.

    Args:
        context: the context directory.
        dockerfile_name: the Dockerfile's path inside the context, always sent; None when
            the Dockerfile lies outside it.
    """
    patterns = _patterns(context, dockerfile_name)
    reincludes = any(invert for _, invert in patterns)
    paths: list[str] = []

    def excluded(relative: str) -> bool:
        return bool(patterns) and rules.dockerignore_excludes(patterns, relative)

    def on_error(exc: OSError) -> None:
        raise ContextError(f"cannot read the build context: {exc}")

    for root, dirs, files in os.walk(context, onerror=on_error):
        base = Path(root).relative_to(context).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs.sort()
        keep_dirs: list[str] = []
        for name in dirs:
            relative = prefix + name
            if (Path(root) / name).is_symlink():  # os.walk does not descend into it: archive the link
                if not excluded(relative):
                    paths.append(relative)
                continue
            if not excluded(relative):
                paths.append(relative)
                keep_dirs.append(name)
            elif reincludes:  # something below may be re-included with "!"
                keep_dirs.append(name)
        dirs[:] = keep_dirs
        paths.extend(prefix + name for name in sorted(files) if not excluded(prefix + name))
    return sorted(paths)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(context: Path, dockerfile: Path) -> BuildContext:
    """Tar the context for ``POST /build``.

    Args:
        context: the context directory.
        dockerfile: the Dockerfile, inside the context or not.

    Raises:
        ContextError: a file cannot be read.
    """
    context = context.resolve()
    resolved = dockerfile.resolve()
    inside = resolved.is_relative_to(context)
    name = resolved.relative_to(context).as_posix() if inside else OUTSIDE_DOCKERFILE
    paths = included(context, name if inside else None)
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for relative in paths:
                tar.add(context / relative, arcname=relative, recursive=False, filter=_normalise)
            if not inside:
                tar.add(resolved, arcname=OUTSIDE_DOCKERFILE, recursive=False, filter=_normalise)
    except OSError as exc:
        raise ContextError(f"cannot read the build context: {exc}") from exc
    return BuildContext(tar=buffer.getvalue(), dockerfile=name, paths=tuple(paths))
