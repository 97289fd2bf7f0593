"""funade: container delivery from Dockerfile to healthy rollouts."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def build_id() -> str:
    """A fingerprint of this installation's code (every module's path, size and mtime).

    The server reports the one it started with, so ``funade up`` can tell a server left
    running from before an upgrade (or an edit of an editable install) from a current one.
    """
    root = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]
