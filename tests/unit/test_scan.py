"""Scanning an SBOM against OSV advisories, and accepting findings with ignore files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from funade.core import sbom
from funade.core.vuln import ignore, parse_advisory
from funade.core.vuln.osv import Level
from funade.engine import scan

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 28, tzinfo=UTC)


class Data:
    """An in-memory VulnData."""

    def __init__(self, *advisories: dict[str, Any]) -> None:
        self.advisories = [parse_advisory(a) for a in advisories]
        self.asked: list[tuple[str, str]] = []

    def advisories_for(self, ecosystem: str, package: str) -> list[Any]:
        self.asked.append((ecosystem, package))
        return [
            a
            for a in self.advisories
            if any(x.package.ecosystem.split(":")[0] == ecosystem and x.package.name == package for x in a.affected)
        ]

    def imported_at(self) -> float | None:
        return NOW.timestamp()


def advisory(id_: str, ecosystem: str, name: str, fixed: str | None, **extra: Any) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed:
        events.append({"fixed": fixed})
    return {
        "id": id_,
        "modified": "2026-11-01T00:00:00Z",
        "affected": [
            {"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
        **extra,
    }


BOOKWORM = sbom.Distro("debian", "12")


def image(*packages: sbom.Package, distro: sbom.Distro | None = BOOKWORM) -> sbom.Sbom:
    return sbom.Sbom("r/app:1", "sha256:" + "0" * 64, "linux/amd64", distro, tuple(packages))


def deb(name: str, version: str, source: str | None = None, source_version: str | None = None) -> sbom.Package:
    return sbom.Package(
        name,
        version,
        sbom.PackageType.DEB,
        f"pkg:deb/debian/{name}@{version}",
        source,
        source_version,
        "amd64",
        "sha256:" + "1" * 64,
        "var/lib/dpkg/status",
    )


def test_debian_packages_are_matched_by_source_in_their_release() -> None:
    data = Data(
        advisory(
            "DSA-1",
            "Debian:12",
            "glibc",
            "2.36-9+deb12u5",
            aliases=["CVE-2026-0001"],
            database_specific={"urgency": "high"},
        ),
        advisory("DSA-2", "Debian:11", "glibc", "2.31-13+deb11u9"),  # another release
        advisory("DSA-3", "Debian:12", "glibc", "2.36-9+deb12u1"),  # already fixed
    )
    (finding,) = scan.scan(image(deb("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4")), data)
    assert (finding.id, finding.package, finding.fixed, finding.severity) == (
        "DSA-1",
        "libc6",
        "2.36-9+deb12u5",
        Level.HIGH,
    )
    assert finding.aliases == ("CVE-2026-0001",) and ("Debian", "glibc") in data.asked


def test_language_packages_and_unknown_distros() -> None:
    pypi = sbom.Package("requests", "2.28.1", sbom.PackageType.PYPI, "pkg:pypi/requests@2.28.1")
    data = Data(
        advisory("GHSA-x", "PyPI", "requests", "2.31.0", database_specific={"severity": "MODERATE"}),
        advisory("GHSA-y", "PyPI", "requests", None),
    )
    found = scan.scan(image(pypi, deb("bash", "5.2", None), distro=None), data)
    assert [(f.id, f.fixed, f.severity) for f in found] == [
        ("GHSA-x", "2.31.0", Level.MEDIUM),
        ("GHSA-y", None, Level.UNKNOWN),
    ]


def test_ignore_files_as_trivy_reads_them() -> None:
    rules = ignore.parse_text("# accepted\nCVE-2026-0001 exp:2026-12-31\nDSA-9\nGHSA-old exp:2020-01-01\n")
    assert [r.id for r in rules] == ["CVE-2026-0001", "DSA-9", "GHSA-old"]
    assert rules[0].expires == date(2026, 12, 31)
    assert ignore.matching(rules, "DSA-1", ["CVE-2026-0001"], "pkg:deb/x", NOW) is rules[0]  # by alias
    assert ignore.matching(rules, "GHSA-old", [], "pkg:x", NOW) is None  # expired
    yaml_rules = ignore.parse_yaml(
        {
            "vulnerabilities": [
                {
                    "id": "GHSA-x",
                    "purls": ["pkg:pypi/requests@2.28.1"],
                    "expired_at": "2027-01-01",
                    "statement": "not reachable",
                }
            ]
        }
    )
    assert ignore.matching(yaml_rules, "GHSA-x", [], "pkg:pypi/requests@2.28.1", NOW) is yaml_rules[0]
    assert ignore.matching(yaml_rules, "GHSA-x", [], "pkg:pypi/other@1", NOW) is None
    with pytest.raises(ignore.IgnoreError, match=r"\.trivyignore:1: 'until:2020'"):
        ignore.parse_text("CVE-1 until:2020")
    with pytest.raises(ignore.IgnoreError, match=r"vulnerabilities\[0\]: needs an id"):
        ignore.parse_yaml({"vulnerabilities": [{"statement": "x"}]})
