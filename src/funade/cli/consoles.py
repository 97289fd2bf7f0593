"""The CLI's two consoles: results on stdout, messages on stderr.

When output goes to a pipe or a file, tables are not wrapped at 80 columns: a line per
row, as kubectl prints, so scripts and logs stay readable.
"""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["err", "out"]


def _width(stream: object) -> int | None:
    isatty = getattr(stream, "isatty", None)
    return None if callable(isatty) and isatty() else 200


out = Console(width=_width(sys.stdout), highlight=False)
err = Console(stderr=True, width=_width(sys.stderr), highlight=False)
