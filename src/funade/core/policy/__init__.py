"""Policy checks: findings, severities and failure thresholds shared by every rule set.

Rules are pure functions from parsed input to :class:`Finding` values; the rule sets
live in submodules (:mod:`funade.core.policy.dockerfile`). Severities use hadolint's
scale (error > warning > info > style) so funade's findings and hadolint's sort, filter
and fail together.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "THRESHOLDS",
    "Finding",
    "Rule",
    "Severity",
    "failing",
    "parse_threshold",
    "sort_key",
]


class Severity(enum.StrEnum):
    """hadolint's severity scale, most severe first."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    STYLE = "style"

    @property
    def rank(self) -> int:
        """0 for error … 3 for style: lower is more severe."""
        return _RANKS[self]


_RANKS = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.STYLE: 3}

#: The values ``--failure-threshold`` accepts; ``none`` never fails.
THRESHOLDS = ("error", "warning", "info", "style", "none")


@dataclass(frozen=True)
class Finding:
    """One problem at one line.

    Attributes:
        rule: the rule id (``FUN003``, ``DL3008``, ``SC2086``).
        severity: how bad it is.
        line: the 1-based line of the instruction it concerns.
        message: what is wrong, in one sentence.
        fix: how to fix it (a hint or a link to the rule's documentation).
    """

    rule: str
    severity: Severity
    line: int
    message: str
    fix: str


@dataclass(frozen=True)
class Rule:
    """A rule of funade's own: its id, default severity, description and fix hint.

    ``equivalents`` are hadolint codes that report the same problem: funade drops its
    finding where hadolint already reported one of them on the same line, and a
    ``# hadolint ignore=`` of one of them also silences this rule.
    """

    id: str
    severity: Severity
    title: str
    description: str
    fix: str
    equivalents: tuple[str, ...] = ()


def parse_threshold(value: str) -> Severity | None:
    """``error|warning|info|style`` to a :class:`Severity`; ``none`` to None.

    Raises:
        ValueError: for any other value.
    """
    lowered = value.strip().lower()
    if lowered == "none":
        return None
    try:
        return Severity(lowered)
    except ValueError:
        raise ValueError(f"invalid failure threshold {value!r}: use one of {', '.join(THRESHOLDS)}") from None


def failing(findings: Iterable[Finding], threshold: Severity | None) -> list[Finding]:
    """The findings at or above ``threshold`` (none when the threshold is None)."""
    if threshold is None:
        return []
    return [finding for finding in findings if finding.severity.rank <= threshold.rank]


def sort_key(finding: Finding) -> tuple[int, int, str]:
    """Order findings by line, then severity (worst first), then rule id."""
    return finding.line, finding.severity.rank, finding.rule
