"""The ``image lint`` use case: hadolint's findings and funade's own, as one report.

The caller reads the files (the Dockerfile and the ``.dockerignore`` beside the build
context) and passes a :class:`Linter` (hadolint, or a fake in tests); this module runs
funade's rules, drops funade findings hadolint already made, applies the ignore pragmas
and sorts everything by line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from funade.core import dockerfile
from funade.core.policy import Finding
from funade.core.policy import dockerfile as rules

__all__ = ["Linter", "lint"]


class Linter(Protocol):
    """An external Dockerfile linter (hadolint)."""

    def lint(self, path: Path) -> list[Finding]: ...


def lint(path: Path, text: str, dockerignore: str | None, linter: Linter | None) -> list[Finding]:
    """Every finding on the Dockerfile ``path`` (whose content is ``text``), sorted by line.

    Args:
        path: the Dockerfile, handed to ``linter``.
        text: its content.
        dockerignore: the ``.dockerignore`` text that applies, None when there is none.
        linter: hadolint; None runs funade's rules alone.
    """
    parsed = dockerfile.parse(text)
    external = linter.lint(path) if linter is not None else []
    return rules.apply_ignores(rules.merge(rules.check(parsed, dockerignore), external), parsed)
