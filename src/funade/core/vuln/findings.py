"""What a scan found, as values, and the CycloneDX document that carries it beside the SBOM.

A finding is one advisory affecting one installed package: the engine makes them
(:mod:`funade.engine.scan`), and the CLI, the server's stored results and the deploy gate
read them. :func:`to_cyclonedx` writes an image's packages and findings as one CycloneDX
1.5 document, as Trivy's ``--format cyclonedx`` does: the components are
:func:`funade.core.sbom.to_cyclonedx`'s, and each vulnerability's ``affects`` names their
``bom-ref``, so the two halves cannot disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from funade.core import sbom
from funade.core.vuln import cvss, osv

__all__ = ["Finding", "to_cyclonedx", "vulnerabilities"]

_OSV_URL = "https://osv.dev/vulnerability/"
_NVD_URL = "https://nvd.nist.gov/vuln/detail/"
#: CycloneDX 1.5 ``severity`` values for an Ubuntu priority (the rest are ``unknown``).
_UBUNTU = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "negligible": "info"}


@dataclass(frozen=True)
class Finding:
    """One advisory affecting one installed package.

    Attributes:
        severity: The level funade decided (the advisory's own rating, else its CVSS v3 score).
        severity_source: What that level was read from (``database_specific.urgency: high``, ``CVSS_V3 9.8``).
        severities: The advisory's ``severity`` entries for the package (CVSS vectors, Ubuntu priorities).
    """

    id: str
    aliases: tuple[str, ...]
    package: str
    type: str
    installed: str
    fixed: str | None
    severity: osv.Level
    severity_source: str
    layer: str | None
    purl: str
    summary: str
    severities: tuple[osv.Severity, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        """A finding as :meth:`to_json` wrote it (a stored scan result; older ones lack ``severities``)."""
        return cls(
            id=str(data["id"]),
            aliases=tuple(data.get("aliases") or ()),
            package=str(data["package"]),
            type=str(data["type"]),
            installed=str(data["installed"]),
            fixed=data.get("fixed"),
            severity=osv.Level(data.get("severity", "UNKNOWN")),
            severity_source=str(data.get("severitySource") or ""),
            layer=data.get("layer"),
            purl=str(data.get("purl") or ""),
            summary=str(data.get("summary") or ""),
            severities=tuple(
                osv.Severity(str(s["type"]), str(s["score"]))
                for s in data.get("severities") or ()
                if isinstance(s, Mapping) and "type" in s and "score" in s
            ),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package,
            "type": self.type,
            "installed": self.installed,
            "fixed": self.fixed,
            "severity": self.severity.value,
            "severitySource": self.severity_source,
            "severities": [{"type": s.type, "score": s.score} for s in self.severities],
            "layer": self.layer,
            "purl": self.purl,
            "summary": self.summary,
        }


# -- CycloneDX ------------------------------------------------------------------------------------


def _source(advisory: str) -> dict[str, str]:
    return {"name": "OSV", "url": _OSV_URL + advisory}


def _rating_of(entry: osv.Severity, source: Mapping[str, str]) -> dict[str, object] | None:
    """One advisory ``severity`` entry as a CycloneDX rating: the vector, and the score when funade computes it."""
    rating: dict[str, object] = {"source": dict(source)}
    if entry.type == "CVSS_V3":
        rating["method"] = "CVSSv31" if entry.score.startswith("CVSS:3.1/") else "CVSSv3"
        try:
            score = cvss.base_score(entry.score)
        except cvss.CvssError:
            pass
        else:
            rating.update(score=score, severity=cvss.rating(score).lower())
        rating["vector"] = entry.score
    elif entry.type in ("CVSS_V2", "CVSS_V4"):
        rating["method"] = "CVSSv2" if entry.type == "CVSS_V2" else "CVSSv4"
        try:
            score = float(entry.score)  # a bare number, as some feeds give for v4
        except ValueError:
            rating["vector"] = entry.score
        else:
            rating.update(score=score, severity=cvss.rating(score).lower())
    elif entry.type == "Ubuntu":
        rating.update(
            source={"name": "Ubuntu", "url": "https://ubuntu.com/security/cves"},
            severity=_UBUNTU.get(entry.score.strip().lower(), "unknown"),
            method="other",
        )
    else:
        return None
    return rating


def _ratings(finding: Finding) -> list[dict[str, object]]:
    """funade's level (unless a CVSS entry or Ubuntu priority below already says it), then each entry."""
    source = _source(finding.id)
    ratings: list[dict[str, object]] = []
    if not finding.severity_source.startswith(("CVSS_", "Ubuntu")):
        verdict: dict[str, object] = {"source": source, "severity": finding.severity.value.lower(), "method": "other"}
        if finding.severity_source:
            verdict["justification"] = finding.severity_source
        ratings.append(verdict)
    ratings += [r for r in (_rating_of(entry, source) for entry in finding.severities) if r is not None]
    return ratings


def _references(aliases: Iterable[str]) -> list[dict[str, object]]:
    """The aliases (CVE ids and others) as references to the same vulnerability elsewhere."""
    out: list[dict[str, object]] = []
    for alias in dict.fromkeys(aliases):
        if alias.startswith("CVE-"):
            out.append({"id": alias, "source": {"name": "NVD", "url": _NVD_URL + alias}})
        else:
            out.append({"id": alias, "source": _source(alias)})
    return out


def _recommendation(findings: Sequence[Finding]) -> str | None:
    fixes: dict[str, list[str]] = {}
    for f in findings:
        if f.fixed and f.package not in fixes.setdefault(f.fixed, []):
            fixes[f.fixed].append(f.package)
    parts = [f"Upgrade {', '.join(packages)} to {fixed}" for fixed, packages in fixes.items()]
    return "; ".join(parts) + "." if parts else None


def vulnerabilities(findings: Iterable[Finding], refs: Mapping[str, Sequence[str]]) -> list[dict[str, object]]:
    """The CycloneDX 1.5 ``vulnerabilities`` array: one entry per advisory, in the findings' order.

    Args:
        findings: Most severe first, as the scan returns them.
        refs: The components' ``bom-ref``s by purl; a finding whose purl has none is left out.
    """
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        if refs.get(finding.purl):
            grouped.setdefault(finding.id, []).append(finding)
    out: list[dict[str, object]] = []
    for advisory, group in grouped.items():
        worst = min(group, key=lambda f: f.severity.rank)
        affects: dict[str, list[dict[str, str]]] = {}
        for f in group:
            versions = [{"version": f.installed, "status": "affected"}]
            if f.fixed:
                versions.append({"version": f.fixed, "status": "unaffected"})
            for ref in refs[f.purl]:
                affects.setdefault(ref, versions)
        entry: dict[str, object] = {
            "bom-ref": f"vulnerability:{advisory}",
            "id": advisory,
            "source": _source(advisory),
        }
        references = _references(a for f in group for a in f.aliases)
        if references:
            entry["references"] = references
        entry["ratings"] = _ratings(worst)
        if worst.summary:
            entry["description"] = worst.summary
        recommendation = _recommendation(group)
        if recommendation:
            entry["recommendation"] = recommendation
        entry["advisories"] = [{"url": _OSV_URL + advisory}]
        entry["affects"] = [{"ref": ref, "versions": versions} for ref, versions in affects.items()]
        out.append(entry)
    return out


def to_cyclonedx(
    found: sbom.Sbom,
    findings: Iterable[Finding],
    *,
    image_ref: str | None = None,
    serial: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """A CycloneDX 1.5 document of the image's packages (:func:`funade.core.sbom.to_cyclonedx`) and its findings.

    Args:
        image_ref: How to name the image (``metadata.component.name``); the SBOM's reference by default.
    """
    document = sbom.to_cyclonedx(
        image_ref or found.reference, found.digest, found.packages, distro=found.distro, serial=serial, now=now
    )
    refs: dict[str, list[str]] = {}
    components = document.get("components")
    for component in components if isinstance(components, list) else []:
        if isinstance(component, dict) and component.get("purl"):
            refs.setdefault(str(component["purl"]), []).append(str(component["bom-ref"]))
    document["vulnerabilities"] = vulnerabilities(findings, refs)
    return document
