"""Scanning an SBOM against OSV advisories, and accepting findings with ignore files."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from funade.core import sbom
from funade.core.vuln import findings, ignore, osv, parse_advisory
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


# -- CycloneDX with vulnerabilities ----------------------------------------------------------------

CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def go(name: str, version: str, path: str) -> sbom.Package:
    package = sbom.Package(name, version, sbom.PackageType.GOLANG, path=path)
    return sbom.Package(name, version, sbom.PackageType.GOLANG, sbom.purl_of(package), path=path)


def scanned() -> tuple[sbom.Sbom, list[findings.Finding]]:
    """An image with glibc's two binaries, requests, and one Go module in two binaries; four advisories."""
    found = image(
        deb("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
        deb("libc-bin", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
        deb("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
        sbom.Package("requests", "2.28.1", sbom.PackageType.PYPI, "pkg:pypi/requests@2.28.1"),
        go("golang.org/x/net", "v0.17.0", "usr/bin/a"),
        go("golang.org/x/net", "v0.17.0", "usr/bin/b"),
    )
    data = Data(
        advisory(
            "DSA-1",
            "Debian:12",
            "glibc",
            "2.36-9+deb12u5",
            aliases=["CVE-2026-0001"],
            summary="glibc: overflow",
            database_specific={"urgency": "high"},
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N"}],
        ),
        advisory(
            "GHSA-c",
            "PyPI",
            "requests",
            "2.31.0",
            aliases=["CVE-2026-0002", "PYSEC-2026-1"],
            severity=[{"type": "CVSS_V3", "score": CRITICAL_VECTOR}],
        ),
        advisory("GO-2026-1", "Go", "golang.org/x/net", "0.23.0"),
        advisory(
            "UBUNTU-or-none",
            "Debian:12",
            "bash",
            None,
            severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
        ),
    )
    return found, scan.scan(found, data)


def test_findings_keep_the_advisorys_cvss_entries_and_survive_json() -> None:
    _, found = scanned()
    by_id = {f.id: f for f in found}
    assert by_id["GHSA-c"].severity is Level.CRITICAL
    assert by_id["GHSA-c"].severities == (osv.Severity("CVSS_V3", CRITICAL_VECTOR),)
    for finding in found:
        assert findings.Finding.from_json(finding.to_json()) == finding
    older = {k: v for k, v in by_id["GHSA-c"].to_json().items() if k != "severities"}  # stored before severities
    assert findings.Finding.from_json(older).severities == ()
    assert scan.Finding is findings.Finding  # the engine's name for it still works


def test_cyclonedx_with_vulnerabilities_shares_the_components_bom_refs() -> None:
    found, result = scanned()
    doc: dict[str, Any] = findings.to_cyclonedx(
        found, result, image_ref="shop/web:1.0", serial=uuid.UUID(int=1), now=NOW
    )
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    assert doc["serialNumber"] == "urn:uuid:00000000-0000-0000-0000-000000000001"
    assert doc["metadata"]["component"]["name"] == "shop/web:1.0"
    assert (
        doc["components"]
        == sbom.to_cyclonedx(
            "shop/web:1.0", found.digest, found.packages, distro=found.distro, serial=uuid.UUID(int=1), now=NOW
        )["components"]
    )
    refs = {c["bom-ref"]: c for c in doc["components"]}
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert list(vulns) == ["GHSA-c", "DSA-1", "UBUNTU-or-none", "GO-2026-1"]  # most severe first
    for v in vulns.values():
        assert v["bom-ref"] == f"vulnerability:{v['id']}"
        assert v["source"] == {"name": "OSV", "url": f"https://osv.dev/vulnerability/{v['id']}"}
        assert v["advisories"] == [{"url": f"https://osv.dev/vulnerability/{v['id']}"}]
        assert all(a["ref"] in refs for a in v["affects"])

    # One entry per advisory, affecting each binary package built from glibc, with the fix.
    dsa = vulns["DSA-1"]
    assert sorted(refs[a["ref"]]["name"] for a in dsa["affects"]) == ["libc-bin", "libc6"]
    assert dsa["affects"][0]["versions"] == [
        {"version": "2.36-9+deb12u4", "status": "affected"},
        {"version": "2.36-9+deb12u5", "status": "unaffected"},
    ]
    assert dsa["recommendation"] == "Upgrade libc-bin, libc6 to 2.36-9+deb12u5."
    assert dsa["description"] == "glibc: overflow"
    assert dsa["references"] == [
        {"id": "CVE-2026-0001", "source": {"name": "NVD", "url": "https://nvd.nist.gov/vuln/detail/CVE-2026-0001"}}
    ]
    # The advisory's own rating decided the level; its CVSS vector is there too, with the score funade computes.
    own, vector = dsa["ratings"]
    assert own["severity"] == "high" and own["method"] == "other"
    assert own["justification"] == "database_specific.urgency: high"
    assert (
        vector["method"] == "CVSSv31"
        and vector["vector"].startswith("CVSS:3.1/AV:L")
        and vector["severity"] == "medium"
    )
    assert isinstance(vector["score"], float)

    # A level from the CVSS vector is one rating, with score and vector.
    (rating,) = vulns["GHSA-c"]["ratings"]
    assert rating == {
        "source": {"name": "OSV", "url": "https://osv.dev/vulnerability/GHSA-c"},
        "method": "CVSSv31",
        "score": 9.8,
        "severity": "critical",
        "vector": CRITICAL_VECTOR,
    }
    assert [r["id"] for r in vulns["GHSA-c"]["references"]] == ["CVE-2026-0002", "PYSEC-2026-1"]
    assert vulns["GHSA-c"]["references"][1]["source"]["name"] == "OSV"

    # No fix: no recommendation and only the affected version; a v4 vector without a score funade can compute.
    bash = vulns["UBUNTU-or-none"]
    assert "recommendation" not in bash and bash["affects"][0]["versions"] == [
        {"version": "5.2.15-2+b2", "status": "affected"}
    ]
    assert bash["ratings"][0]["severity"] == "unknown"
    assert bash["ratings"][1] == {
        "source": {"name": "OSV", "url": "https://osv.dev/vulnerability/UBUNTU-or-none"},
        "method": "CVSSv4",
        "vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    }
    # The same module in two binaries is two components (their bom-refs carry the path): both are affected.
    go_refs = [a["ref"] for a in vulns["GO-2026-1"]["affects"]]
    assert len(go_refs) == 2 and all(r.startswith("pkg:golang/golang.org/x/net@v0.17.0#usr/bin/") for r in go_refs)
    assert vulns["GO-2026-1"]["recommendation"] == "Upgrade golang.org/x/net to 0.23.0."


def test_findings_the_sbom_does_not_hold_are_left_out() -> None:
    found, _ = scanned()
    stray = findings.Finding("GHSA-x", (), "gone", "pypi", "1.0", None, Level.LOW, "", None, "pkg:pypi/gone@1.0", "")
    doc: dict[str, Any] = findings.to_cyclonedx(found, [stray])
    assert doc["vulnerabilities"] == [] and doc["metadata"]["component"]["name"] == "r/app:1"
