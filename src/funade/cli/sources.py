"""Reading manifests the way kubectl does: files, directories (-R), stdin (-) and -k (kustomize).

`funade apply` and `funade policy check` read the same inputs and name the same paths in
their errors; each decides its own exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from funade.adapters import kustomize
from funade.core import manifests

__all__ = ["KUSTOMIZE_SUFFIX", "SourceError", "read_sources"]

KUSTOMIZE_SUFFIX = " (kustomize)"


class SourceError(Exception):
    """A path that cannot be read as manifests; the message names it."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError(f"cannot read {path}: {reason}") from exc


def read_sources(
    files: Sequence[str], kustomize_dir: str | None, recursive: bool, verb: str = "apply"
) -> list[tuple[str, str]]:
    """(source name, text) for every -f and -k given; kustomize output is named ``DIR (kustomize)``.

    Raises:
        SourceError: a missing path, an empty directory, a Kustomization given with -f,
            kustomize failing, or no input at all.
    """
    texts: list[tuple[str, str]] = []
    items = [*files, kustomize_dir] if kustomize_dir else list(files)
    for item in items:
        if item == "-":
            texts.append((manifests.STDIN, sys.stdin.read()))
            continue
        path = Path(item)
        if not path.exists():
            raise SourceError(f'the path "{item}" does not exist')
        if kustomize.is_kustomization(path):
            try:
                texts.append((f"{item}{KUSTOMIZE_SUFFIX}", kustomize.render(path)))
            except kustomize.KustomizeError as exc:
                raise SourceError(str(exc)) from exc
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
            if not found:
                raise SourceError(f'no manifest files (.yaml, .yml, .json) in "{item}"')
            texts += [(str(p), _read(p)) for p in found]
        elif path.name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
            raise SourceError(f"{item} is a Kustomization, not a manifest: {verb} its directory with -k {path.parent}")
        else:
            texts.append((item, _read(path)))
    if not texts:
        raise SourceError("no input: give -f FILE|DIR|- or -k DIR")
    return texts
