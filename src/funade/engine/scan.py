"""Scanning an image: its SBOM matched against OSV advisories, package by package.

Debian advisories name source packages and source versions, so a binary package is
looked up by its source (``libc6`` → ``glibc``) in the image's release (``Debian:12``);
Alpine by origin and ``Alpine:v3.19``; language packages by name in their ecosystem.
Matching and severity are :mod:`funade.core.vuln`'s; the data comes through the
:class:`~funade.core.ports.VulnData` seam; a :class:`Finding` is
:mod:`funade.core.vuln.findings`'s value.
"""

from __future__ import annotations

from collections.abc import Iterable

from funade.core import sbom, vuln
from funade.core.ports import VulnData
from funade.core.vuln import osv
from funade.core.vuln.findings import Finding

__all__ = ["Finding", "ecosystem_of", "scan"]

_LANGUAGE = {
    sbom.PackageType.PYPI: "PyPI",
    sbom.PackageType.NPM: "npm",
    sbom.PackageType.GOLANG: "Go",
    sbom.PackageType.MAVEN: "Maven",
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
                severities=osv.scores(advisory, ecosystem, name),
            )
    return sorted(findings.values(), key=lambda f: (f.severity.rank, f.package, f.id))


def _advisories(data: VulnData, ecosystem: str, name: str) -> Iterable[osv.Advisory]:
    for advisory in data.advisories_for(ecosystem, name):
        if isinstance(advisory, osv.Advisory) and not advisory.withdrawn:
            yield advisory
