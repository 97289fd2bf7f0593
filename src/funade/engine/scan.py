"""Scanning an image: its SBOM matched against OSV advisories, package by package.

Debian advisories name source packages and source versions, so a binary package is
looked up by its source (``libc6`` → ``glibc``) in the image's release (``Debian:12``);
Alpine by origin and ``Alpine:v3.19``; language packages by name in their ecosystem.
Matching and severity are :mod:`funade.core.vuln`'s; the data comes through the
:class:`~funade.core.ports.VulnData` seam.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from funade.core import sbom, vuln
from funade.core.ports import VulnData
from funade.core.vuln import osv

__all__ = ["Finding", "ecosystem_of", "scan"]

_LANGUAGE = {
    sbom.PackageType.PYPI: "PyPI",
    sbom.PackageType.NPM: "npm",
    sbom.PackageType.GOLANG: "Go",
    sbom.PackageType.MAVEN: "Maven",
}


@dataclass(frozen=True)
class Finding:
    """One advisory affecting one installed package."""

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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        """A finding as :meth:`to_json` wrote it (a stored scan result)."""
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
            "layer": self.layer,
            "purl": self.purl,
            "summary": self.summary,
        }


def ecosystem_of(package: sbom.Package, distro: sbom.Distro | None) -> tuple[str, str, str] | None:
    """(OSV ecosystem with release, name to look up, version to check), or None when unknown.

    Debian images are matched in ``Debian:<major>`` by source package and version; Alpine in
    ``Alpine:v<major>.<minor>`` by origin; an OS package of an image without os-release, or of
    a distribution OSV does not cover, is not matched.
    """
    if package.type is sbom.PackageType.DEB:
        if distro is None or distro.id not in ("debian", "ubuntu"):
            return None
        major = distro.version_id.split(".")[0]
        if distro.id == "ubuntu":
            release = f"Ubuntu:{distro.version_id}" if distro.version_id else "Ubuntu"
        else:
            release = f"Debian:{major}" if major else "Debian"
        return release, package.source_name or package.name, package.source_version or package.version
    if package.type is sbom.PackageType.APK:
        if distro is None or distro.id != "alpine":
            return None
        parts = distro.version_id.split(".")
        release = f"Alpine:v{parts[0]}.{parts[1]}" if len(parts) >= 2 else "Alpine"
        return release, package.source_name or package.name, package.version
    ecosystem = _LANGUAGE.get(package.type)
    return (ecosystem, package.name, package.version) if ecosystem else None


def scan(found: sbom.Sbom, data: VulnData) -> list[Finding]:
    """Every (advisory, package) pair where the advisory affects the installed version; most severe first."""
    findings: dict[tuple[str, str, str], Finding] = {}
    for package in found.packages:
        where = ecosystem_of(package, found.distro)
        if where is None:
            continue
        ecosystem, name, version = where
        base = ecosystem.split(":")[0]
        for advisory in _advisories(data, base, name):
            try:
                match = osv.affects(advisory, ecosystem, name, version)
            except vuln.VersionError:
                continue  # a version this ecosystem's ordering cannot read: no claim either way
            if match is None:
                continue
            rating = osv.severity(advisory, ecosystem, name)
            key = (advisory.id, package.name, package.version)
            findings[key] = Finding(
                id=advisory.id,
                aliases=advisory.aliases,
                package=package.name,
                type=package.type.value,
                installed=package.version,
                fixed=match.fixed,
                severity=rating.level,
                severity_source=rating.source,
                layer=package.layer,
                purl=package.purl,
                summary=advisory.summary,
            )
    return sorted(findings.values(), key=lambda f: (f.severity.rank, f.package, f.id))


def _advisories(data: VulnData, ecosystem: str, name: str) -> Iterable[osv.Advisory]:
    for advisory in data.advisories_for(ecosystem, name):
        if isinstance(advisory, osv.Advisory) and not advisory.withdrawn:
            yield advisory
