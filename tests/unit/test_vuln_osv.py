"""OSV matching follows the schema's IsVulnerable algorithm; severity prefers the advisory's own rating."""

from __future__ import annotations

import json

import pytest

from funade.core.vuln import cvss, osv
from funade.core.vuln.osv import AdvisoryError, Level

pytestmark = pytest.mark.unit


def advisory(*affected: dict[str, object], **extra: object) -> osv.Advisory:
    document: dict[str, object] = {"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": list(affected)}
    document.update(extra)
    return osv.parse_advisory(document)


def entry(
    ecosystem: str, name: str, *events: dict[str, str], kind: str = "ECOSYSTEM", **extra: object
) -> dict[str, object]:
    data: dict[str, object] = {"package": {"ecosystem": ecosystem, "name": name}}
    if events:
        data["ranges"] = [{"type": kind, "events": list(events)}]
    data.update(extra)
    return data


# ---------------------------------------------------------------------------- parsing


def test_parses_a_ghsa_document() -> None:
    text = json.dumps(
        {
            "schema_version": "1.2.0",
            "id": "GHSA-r9p9-mrjm-926w",
            "modified": "2021-03-08T16:02:43Z",
            "aliases": ["CVE-2020-28498"],
            "summary": "Use of a Broken or Risky Cryptographic Algorithm",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N"}],
            "affected": [
                {
                    "package": {"ecosystem": "npm", "name": "elliptic"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "6.5.4"}]}],
                }
            ],
            "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-327"]},
        }
    )
    record = osv.parse_advisory(text)
    assert record.id == "GHSA-r9p9-mrjm-926w"
    assert record.aliases == ("CVE-2020-28498",)
    assert record.affected[0].package == osv.Package("npm", "elliptic")
    assert record.affected[0].ranges[0].events == (osv.Event("introduced", "0"), osv.Event("fixed", "6.5.4"))
    assert osv.severity(record, "npm") == osv.Rating(Level.MEDIUM, "database_specific.severity: MODERATE")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"modified": "x"}, "id: required"),
        ({"id": "X", "modified": "x", "affected": {}}, "affected: expected a list"),
        ({"id": "X", "modified": "x", "affected": [{"package": {"name": "a"}}]}, r"affected\[0\].package.ecosystem"),
        (
            {
                "id": "X",
                "modified": "x",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "a"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}],
                    }
                ],
            },
            r"affected\[0\].ranges\[0\].events\[0\]: expected exactly one",
        ),
        (
            {
                "id": "X",
                "modified": "x",
                "affected": [
                    {"package": {"ecosystem": "PyPI", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": []}]}
                ],
            },
            r"affected\[0\].ranges\[0\].events: a range needs at least one introduced",
        ),
        ({"id": "X", "modified": "x", "aliases": [1]}, r"aliases\[0\]: expected a string"),
    ],
)
def test_parse_errors_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(AdvisoryError, match=field):
        osv.parse_advisory(document)


def test_parse_rejects_non_json() -> None:
    with pytest.raises(AdvisoryError, match="not JSON"):
        osv.parse_advisory("{nope")


# ---------------------------------------------------------------------------- matching


def test_introduced_zero_and_fixed() -> None:
    record = advisory(entry("PyPI", "jinja2", {"introduced": "0"}, {"fixed": "3.1.3"}))
    match = osv.affects(record, "PyPI", "jinja2", "3.1.2")
    assert match is not None
    assert match.fixed == "3.1.3"
    assert match.range is not None
    assert not match.in_versions
    assert osv.affects(record, "PyPI", "jinja2", "3.1.3") is None
    assert osv.affects(record, "PyPI", "jinja2", "3.1.3.post1") is None
    assert osv.affects(record, "PyPI", "jinja2", "3.1.3rc1") is not None  # a pre-release of the fix is older


def test_last_affected_includes_the_version_itself() -> None:
    record = advisory(
        entry("Go", "example.com/mod", {"introduced": "1.2.0"}, {"last_affected": "1.4.0"}, kind="SEMVER")
    )
    assert osv.affects(record, "Go", "example.com/mod", "v1.1.9") is None
    assert osv.affects(record, "Go", "example.com/mod", "v1.2.0") is not None
    match = osv.affects(record, "Go", "example.com/mod", "v1.4.0")
    assert match is not None
    assert match.fixed is None
    assert osv.affects(record, "Go", "example.com/mod", "v1.4.1") is None


def test_limit_bounds_the_range() -> None:
    record = advisory(entry("npm", "lib", {"introduced": "1.0.0"}, {"limit": "2.0.0"}))
    assert osv.affects(record, "npm", "lib", "1.5.0") is not None
    assert osv.affects(record, "npm", "lib", "2.0.0") is None
    assert osv.affects(record, "npm", "lib", "3.0.0") is None
    unbounded = advisory(entry("npm", "lib", {"introduced": "1.0.0"}, {"limit": "*"}))
    assert osv.affects(unbounded, "npm", "lib", "9.0.0") is not None


def test_multiple_ranges_and_the_lowest_fix_above_the_installed_version() -> None:
    record = advisory(
        entry(
            "npm",
            "lib",
            {"introduced": "1.0.0"},
            {"fixed": "1.0.2"},
            {"introduced": "3.0.0"},
            {"fixed": "3.2.5"},
            kind="SEMVER",
        )
    )
    assert osv.affects(record, "npm", "lib", "0.9.0") is None
    first = osv.affects(record, "npm", "lib", "1.0.1")
    assert first is not None
    assert first.fixed == "1.0.2"
    assert first.fixed_versions == ("1.0.2", "3.2.5")
    assert osv.affects(record, "npm", "lib", "2.0.0") is None
    second = osv.affects(record, "npm", "lib", "3.1.0")
    assert second is not None
    assert second.fixed == "3.2.5"
    assert osv.affects(record, "npm", "lib", "3.2.5") is None


def test_unsorted_events_are_sorted_by_the_ecosystem_order() -> None:
    record = advisory(entry("Debian:12", "openssl", {"fixed": "3.0.11-1~deb12u2"}, {"introduced": "0"}))
    match = osv.affects(record, "Debian:12", "openssl", "3.0.11-1~deb12u1")
    assert match is not None
    assert match.fixed == "3.0.11-1~deb12u2"
    assert osv.affects(record, "Debian:12", "openssl", "3.0.11-1~deb12u2") is None


def test_explicit_versions_list() -> None:
    record = advisory(entry("PyPI", "pikepdf", versions=["2.8.0", "2.9.0"]))
    match = osv.affects(record, "PyPI", "pikepdf", "2.9.0")
    assert match is not None
    assert match.in_versions
    assert match.range is None
    assert match.fixed is None
    assert osv.affects(record, "PyPI", "pikepdf", "2.9") is not None  # same version under PEP 440
    assert osv.affects(record, "PyPI", "pikepdf", "2.8.1") is None


def test_release_scoped_ecosystems() -> None:
    record = advisory(entry("Debian:12", "curl", {"introduced": "0"}, {"fixed": "7.88.1-10+deb12u5"}))
    assert osv.affects(record, "Debian:12", "curl", "7.88.1-10+deb12u4") is not None
    assert osv.affects(record, "Debian:11", "curl", "7.74.0-1.3+deb11u7") is None
    assert osv.affects(record, "Debian", "curl", "7.88.1-10+deb12u4") is None  # release unknown
    bare = advisory(entry("Debian", "curl", {"introduced": "0"}, {"fixed": "7.88.1-10+deb12u5"}))
    assert osv.affects(bare, "Debian:11", "curl", "7.74.0-1.3+deb11u7") is not None
    alpine = advisory(entry("Alpine:v3.19", "openssl", {"introduced": "0"}, {"fixed": "3.1.4-r1"}))
    assert osv.affects(alpine, "Alpine:v3.19", "openssl", "3.1.4-r0") is not None
    assert osv.affects(alpine, "Alpine:v3.18", "openssl", "3.1.4-r0") is None


def test_debian_matches_by_source_package_name() -> None:
    record = advisory(entry("Debian:12", "openssl", {"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}))
    assert osv.affects(record, "Debian:12", "libssl3", "3.0.11-1~deb12u2") is None
    assert osv.affects(record, "Debian:12", "openssl", "3.0.11-1~deb12u2") is not None


def test_pypi_names_are_normalised() -> None:
    record = advisory(entry("PyPI", "Zope.Interface", {"introduced": "0"}, {"fixed": "5.0"}))
    for name in ("zope-interface", "zope_interface", "ZOPE.interface", "zope--interface"):
        assert osv.affects(record, "PyPI", name, "4.7") is not None, name
    npm = advisory(entry("npm", "Lib", {"introduced": "0"}, {"fixed": "5.0.0"}))
    assert osv.affects(npm, "npm", "lib", "4.0.0") is None


def test_withdrawn_advisories_match_nothing() -> None:
    record = advisory(
        entry("PyPI", "requests", {"introduced": "0"}, {"fixed": "2.31.0"}), withdrawn="2024-02-01T00:00:00Z"
    )
    assert osv.affects(record, "PyPI", "requests", "2.30.0") is None


def test_git_ranges_are_skipped_and_unparseable_ranges_ignored() -> None:
    record = advisory(
        entry(
            "PyPI",
            "pkg",
            ranges=[
                {"type": "GIT", "repo": "https://example.com/r", "events": [{"introduced": "abc"}, {"fixed": "def"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]},
            ],
            versions=["1.0"],
        )
    )
    assert osv.affects(record, "PyPI", "pkg", "1.0") is not None  # by the versions list
    assert osv.affects(record, "PyPI", "pkg", "0.5") is None


def test_fix_that_another_range_still_affects_is_not_offered() -> None:
    record = advisory(
        entry("npm", "lib", {"introduced": "0"}, {"fixed": "1.5.0"}),
        entry("npm", "lib", {"introduced": "1.5.0"}, {"fixed": "1.6.0"}),
    )
    match = osv.affects(record, "npm", "lib", "1.4.0")
    assert match is not None
    assert match.fixed == "1.6.0"


def test_go_semver_ranges_accept_v_prefixed_installed_versions() -> None:
    record = advisory(entry("Go", "golang.org/x/net", {"introduced": "0"}, {"fixed": "0.17.0"}, kind="SEMVER"))
    match = osv.affects(record, "Go", "golang.org/x/net", "v0.15.0")
    assert match is not None
    assert match.fixed == "0.17.0"


# ---------------------------------------------------------------------------- severity


def test_debian_urgency_maps_as_trivy_does() -> None:
    for urgency, level in [
        ("unimportant", Level.LOW),
        ("low*", Level.LOW),
        ("medium", Level.MEDIUM),
        ("high", Level.HIGH),
    ]:
        record = advisory(
            entry("Debian:12", "curl", {"introduced": "0"}, ecosystem_specific={"urgency": urgency}),
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        )
        assert osv.severity(record, "Debian:12", "curl").level is level


def test_unassigned_urgency_falls_back_to_cvss() -> None:
    record = advisory(
        entry("Debian:12", "curl", {"introduced": "0"}, ecosystem_specific={"urgency": "not yet assigned"}),
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    )
    assert osv.severity(record, "Debian:12") == osv.Rating(Level.CRITICAL, "CVSS_V3 9.8")


def test_cvss_v3_from_the_affected_entry_before_the_top_level() -> None:
    record = advisory(
        entry(
            "PyPI",
            "pkg",
            {"introduced": "0"},
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"}],
        ),
    )
    assert osv.severity(record, "PyPI", "pkg") == osv.Rating(Level.MEDIUM, "CVSS_V3 5.5")


def test_cvss_v4_only_with_a_given_score() -> None:
    vector = advisory(
        entry("PyPI", "pkg", {"introduced": "0"}),
        severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
    )
    assert osv.severity(vector, "PyPI").level is Level.UNKNOWN
    numeric = advisory(entry("PyPI", "pkg", {"introduced": "0"}), severity=[{"type": "CVSS_V4", "score": "8.7"}])
    assert osv.severity(numeric, "PyPI") == osv.Rating(Level.HIGH, "CVSS_V4 8.7")


def test_no_rating_is_unknown() -> None:
    assert osv.severity(advisory(entry("npm", "x", {"introduced": "0"})), "npm").level is Level.UNKNOWN


@pytest.mark.parametrize(
    ("vector", "score", "name"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CRITICAL"),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5, "MEDIUM"),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, "LOW"),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8, "MEDIUM"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "HIGH"),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, "MEDIUM"),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0, "NONE"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", 9.8, "CRITICAL"),
    ],
)
def test_cvss_v3_base_scores(vector: str, score: float, name: str) -> None:
    assert cvss.base_score(vector) == score
    assert cvss.rating(score) == name


@pytest.mark.parametrize(
    "vector",
    [
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
    ],
)
def test_cvss_rejects_bad_vectors(vector: str) -> None:
    with pytest.raises(cvss.CvssError):
        cvss.parse_v3(vector)
