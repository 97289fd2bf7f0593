"""CVSS v3 vectors and their base score, for advisories that carry no rating of their own.

OSV ``severity`` entries hold a vector (``CVSS:3.1/AV:N/AC:L/...``), not a number, and
the scan gate needs a level. The base score is the CVSS v3.1 specification's formula
(section 7.1) with its ``Roundup`` (section Appendix A), which avoids the floating-point
surprises of a plain ceiling; v3.0 vectors use the same formula (their scores agree).
Temporal and environmental metrics are accepted and ignored: the base score is what
the advisory databases publish. CVSS v4 needs the specification's lookup tables and is
not computed here: :mod:`funade.core.vuln.osv` uses a v4 score only when one is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CvssError", "CvssV3", "base_score", "parse_v3", "rating"]

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
_BASE_VALUES = {
    "AV": _AV,
    "AC": _AC,
    "PR": _PR_UNCHANGED,
    "UI": _UI,
    "S": {"U": 0.0, "C": 0.0},
    "C": _CIA,
    "I": _CIA,
    "A": _CIA,
}
_OTHER_VALUES = {
    "E": "XUPFH",
    "RL": "XOTWU",
    "RC": "XURC",
    "CR": "XLMH",
    "IR": "XLMH",
    "AR": "XLMH",
    "MAV": "XNALP",
    "MAC": "XLH",
    "MPR": "XNLH",
    "MUI": "XNR",
    "MS": "XUC",
    "MC": "XNLH",
    "MI": "XNLH",
    "MA": "XNLH",
}


class CvssError(ValueError):
    """A CVSS vector that is not a valid v3.0/v3.1 vector."""


@dataclass(frozen=True)
class CvssV3:
    """A parsed CVSS v3 vector: its version (``3.0``/``3.1``) and metric values by abbreviation."""

    version: str
    metrics: Mapping[str, str]

    @property
    def base_score(self) -> float:
        """The base score, 0.0 to 10.0, with one decimal."""
        m = self.metrics
        changed = m["S"] == "C"
        impact_subscore = 1 - (1 - _CIA[m["C"]]) * (1 - _CIA[m["I"]]) * (1 - _CIA[m["A"]])
        if changed:
            impact = 7.52 * (impact_subscore - 0.029) - 3.25 * (impact_subscore - 0.02) ** 15
        else:
            impact = 6.42 * impact_subscore
        privileges = (_PR_CHANGED if changed else _PR_UNCHANGED)[m["PR"]]
        exploitability = 8.22 * _AV[m["AV"]] * _AC[m["AC"]] * privileges * _UI[m["UI"]]
        if impact <= 0:
            return 0.0
        if changed:
            return _roundup(min(1.08 * (impact + exploitability), 10))
        return _roundup(min(impact + exploitability, 10))


def _roundup(value: float) -> float:
    """CVSS v3.1 ``Roundup``: the smallest number with one decimal that is >= ``value``."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10.0


def parse_v3(vector: str) -> CvssV3:
    """Parse a ``CVSS:3.x/AV:…/AC:…/PR:…/UI:…/S:…/C:…/I:…/A:…`` vector.

    Raises:
        CvssError: for a missing prefix, an unknown or repeated metric, a bad value or a
            missing base metric.
    """
    text = vector.strip()
    prefix, _, rest = text.partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise CvssError(f"not a CVSS v3 vector (expected a CVSS:3.0/ or CVSS:3.1/ prefix): {vector!r}")
    metrics: dict[str, str] = {}
    for part in rest.split("/"):
        name, sep, value = part.partition(":")
        if not sep:
            raise CvssError(f"malformed metric {part!r} in {vector!r}")
        if name in metrics:
            raise CvssError(f"metric {name} given twice in {vector!r}")
        allowed = _BASE_VALUES[name].keys() if name in _BASE_VALUES else _OTHER_VALUES.get(name)
        if allowed is None:
            raise CvssError(f"unknown metric {name!r} in {vector!r}")
        if len(value) != 1 or value not in allowed:
            raise CvssError(f"invalid value {value!r} for metric {name} in {vector!r}")
        metrics[name] = value
    missing = [name for name in _BASE_VALUES if name not in metrics]
    if missing:
        raise CvssError(f"missing base metric(s) {', '.join(missing)} in {vector!r}")
    return CvssV3(version=prefix.removeprefix("CVSS:"), metrics=metrics)


def base_score(vector: str) -> float:
    """The CVSS v3 base score of ``vector`` (see :func:`parse_v3` for the errors)."""
    return parse_v3(vector).base_score


def rating(score: float) -> str:
    """The CVSS qualitative rating: ``NONE`` (0.0), ``LOW``, ``MEDIUM``, ``HIGH`` or ``CRITICAL``."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score >= 0.1:
        return "LOW"
    return "NONE"
