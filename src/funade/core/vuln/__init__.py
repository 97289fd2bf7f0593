"""Vulnerability matching on open data: OSV advisories, ecosystem version ordering, CVSS.

Pure functions only: :mod:`~funade.core.vuln.versions` orders versions the way each
package manager does, :mod:`~funade.core.vuln.osv` parses OSV records and decides
whether one affects an installed package (and at which severity), and
:mod:`~funade.core.vuln.cvss` turns a CVSS v3 vector into a base score, and
:mod:`~funade.core.vuln.findings` holds what a scan found and writes it as CycloneDX.
Downloading and storing the data, and reading packages out of images, live in adapters
and the engine.
"""

from __future__ import annotations

from funade.core.vuln.cvss import CvssError
from funade.core.vuln.osv import Advisory, AdvisoryError, Level, Match, Rating, affects, parse_advisory, severity
from funade.core.vuln.versions import Version, VersionError, compare

__all__ = [
    "Advisory",
    "AdvisoryError",
    "CvssError",
    "Level",
    "Match",
    "Rating",
    "Version",
    "VersionError",
    "affects",
    "compare",
    "parse_advisory",
    "severity",
]
