"""Rendering Kustomize directories with the real kustomize.

``kustomize build`` when it is on PATH, else ``kubectl kustomize`` (kubectl embeds
kustomize). Neither present is a clear error, never a silent fallback to raw files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["KustomizeError", "command", "is_kustomization", "render"]

_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class KustomizeError(Exception):
    """Rendering failed or no kustomize is installed."""


def is_kustomization(path: Path) -> bool:
    """Whether ``path`` is a directory kustomize can build."""
    return path.is_dir() and any((path / name).is_file() for name in _FILES)


def command() -> list[str]:
    """The kustomize command line to use (without the directory)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise KustomizeError(
        "neither `kustomize` nor `kubectl` is on PATH: install kustomize (or kubectl, which embeds it) "
        "to render kustomization.yaml directories"
    )


def render(path: Path, timeout: float = 120.0) -> str:
    """The YAML kustomize renders for the directory ``path``."""
    argv = [*command(), str(path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise KustomizeError(f"{' '.join(argv)} took longer than {timeout:g}s") from exc
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip()
        raise KustomizeError(f"{' '.join(argv[:-1])} {path} failed: {detail}")
    return done.stdout
