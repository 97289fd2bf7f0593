"""Each ecosystem orders versions the way its own tool does, checked against the specs' examples."""

from __future__ import annotations

import itertools

import pytest

from funade.core.vuln import versions
from funade.core.vuln.versions import VersionError

pytestmark = pytest.mark.unit


def assert_ascending(ecosystem: str, ordered: list[str]) -> None:
    """Every earlier entry sorts strictly before every later one, in both directions."""
    for low, high in itertools.combinations(ordered, 2):
        assert versions.compare(ecosystem, low, high) == -1, f"{low} < {high}"
        assert versions.compare(ecosystem, high, low) == 1, f"{high} > {low}"


# ---------------------------------------------------------------------------- Debian


def test_debian_policy_tilde_and_letter_order() -> None:
    # Debian Policy 5.6.12: "~~" < "~~a" < "~" < the empty part < "a"; letters before non-letters.
    assert_ascending("Debian", ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1"])


@pytest.mark.parametrize(
    ("a", "op", "b"),
    [
        ("1.0~rc1-1", "<", "1.0-1"),
        ("1.0-1", "<", "1.0-1+deb12u1"),
        ("1.0-1+deb12u1", "<", "1.0-2"),
        ("1:0.9", ">", "2.0"),
        ("0:1.0", "=", "1.0"),
        ("1.0", "=", "1.0-0"),
        ("1.02", "=", "1.2"),
        ("1.10", ">", "1.9"),
        ("2.30-1", ">", "2.3-1"),
        ("7.88.1-10+deb12u5", "<", "7.88.1-10+deb12u6"),
        ("3.0.11-1~deb12u2", "<", "3.0.11-1"),
        ("1.2.3-1ubuntu1", ">", "1.2.3-1"),
        ("1.0+dfsg-1", ">", "1.0-1"),
        ("1.0-1.1", ">", "1.0-1"),
        ("a", "<", "b"),
        ("1:1.2-3-4", ">", "1:1.2-3"),
    ],
)
def test_debian_pairs(a: str, op: str, b: str) -> None:
    expected = {"<": -1, "=": 0, ">": 1}[op]
    assert versions.compare("Debian:12", a, b) == expected
    assert versions.compare("Debian", b, a) == -expected


@pytest.mark.parametrize("text", ["", "1.0-", "x:1.0", "1.0 beta", "1.0_1", "1:2:3"])
def test_debian_rejects_invalid(text: str) -> None:
    with pytest.raises(VersionError, match=r"Debian:12 version"):
        versions.parse("Debian:12", text)


# ---------------------------------------------------------------------------- Alpine

# A selection of apk-tools test/version.data (valid versions only).
APK_CASES = """
2.34 > 0.1.0_alpha
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.3_alpha < 1.3_alpha2
0.8_beta1 < 0.8_beta2
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
1.2.12.1 < 1.2.13
3.1_p16 < 3.1_p17
1.06-r6 < 006
1.2.2-r1 > 1.2.2
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
1.00_beta2 > 0.9.2
2.8.9-r1 > 2.8.9
7.15.1-r1 > 1.02
1.02 < 1.03-r1
4.2.52_p2-r1 < 4.2.52_p4-r2
20060720 > 3.0.20060720
2.5.1-r8 < 2.5.1a-r1
2.0.0_rc3-r1 > 1.5
3.9_pre20060124 > 0.01
6b-r7 > 1.12-r7
0.10.0 < 0.10.1_rc1
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
0.59s-r11 < 0.65
0.20070118 < 0.20070207_rc1
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
1.7 < 1.7b
1.8.5 < 1.8.5_p2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
0.9.28-r2 < 0.9.28.1
087-r1 < 103
1.2.5_rc2 > 0.1
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
22.7.3-r1 > 22.7
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
"""


@pytest.mark.parametrize("line", APK_CASES.strip().splitlines())
def test_alpine_apk_tools_cases(line: str) -> None:
    a, op, b = line.split()
    expected = {"<": -1, "=": 0, ">": 1}[op]
    assert versions.compare("Alpine:v3.19", a, b) == expected
    assert versions.compare("Alpine", b, a) == -expected


def test_alpine_suffix_order() -> None:
    order = ["1.0_alpha", "1.0_beta", "1.0_pre", "1.0_rc", "1.0", "1.0_cvs", "1.0_svn", "1.0_git", "1.0_hg", "1.0_p1"]
    assert_ascending("Alpine", order)
    assert_ascending("Alpine", [text.replace("1.0", "1.2") for text in order])
    assert_ascending("Alpine", ["1.0_rc1", "1.0_rc2", "1.0", "1.0-r1", "1.0-r10", "1.0.1"])


@pytest.mark.parametrize("text", ["", "1.0bc", "23_foo", "1.0-1", "1.0_p1.2", "1..0-x"])
def test_alpine_rejects_invalid(text: str) -> None:
    with pytest.raises(VersionError, match=r"Alpine version"):
        versions.parse("Alpine", text)


# ---------------------------------------------------------------------------- PEP 440


def test_pep440_ordering_example() -> None:
    # PEP 440, "Summary of permitted suffixes and relative ordering".
    assert_ascending(
        "PyPI",
        [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ],
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0", "1.0.0"),
        ("1.0a1", "1.0.alpha.1"),
        ("1.0rc1", "1.0c1"),
        ("1.0rc1", "1.0-pre1"),
        ("1.0.post1", "1.0-1"),
        ("1.0.post0", "1.0.post"),
        ("1.0.post1", "1.0rev1"),
        ("1.0.dev0", "1.0dev"),
        ("v1.0", "1.0"),
        ("0!1.0", "1.0"),
        ("1.0+ubuntu-1", "1.0+ubuntu.1"),
        ("1.0B2", "1.0b2"),
    ],
)
def test_pep440_normalised_spellings_are_equal(a: str, b: str) -> None:
    assert versions.compare("PyPI", a, b) == 0


def test_pep440_epochs_and_locals() -> None:
    assert_ascending("PyPI", ["2024.1", "1!0.1", "1!1.0"])
    assert_ascending("PyPI", ["1.0", "1.0+abc", "1.0+1", "1.0+1.1"])


@pytest.mark.parametrize("text", ["", "1.0-beta-x", "foo", "1.0+", "1..0"])
def test_pep440_rejects_invalid(text: str) -> None:
    with pytest.raises(VersionError, match=r"PyPI version"):
        versions.parse("PyPI", text)


# ---------------------------------------------------------------------------- SemVer


def test_semver_spec_precedence() -> None:
    # semver.org section 11.
    assert_ascending("npm", ["1.0.0", "2.0.0", "2.1.0", "2.1.1"])
    assert_ascending(
        "crates.io",
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ],
    )


def test_semver_ignores_build_metadata() -> None:
    assert versions.compare("npm", "1.0.0+build.1", "1.0.0+build.2") == 0
    assert versions.compare("Go", "v2.0.0+incompatible", "2.0.0") == 0


def test_go_versions_take_a_v_and_pseudo_versions_order_as_prereleases() -> None:
    assert_ascending("Go", ["v0.0.0-20200101000000-abcdefabcdef", "v0.0.1", "v0.1.0", "v1.21.5"])
    assert versions.compare("Go", "v1.2.3", "1.2.3") == 0


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-01", "v1.0.0", "1.0.0-", "1.0.0+"])
def test_semver_strict_for_crates(text: str) -> None:
    with pytest.raises(VersionError, match=r"crates.io version"):
        versions.parse("crates.io", text)


# ---------------------------------------------------------------------------- Maven

# maven-artifact ComparableVersionTest.
MAVEN_QUALIFIERS = [
    "1-alpha2snapshot",
    "1-alpha2",
    "1-alpha-123",
    "1-beta-2",
    "1-beta123",
    "1-m2",
    "1-m11",
    "1-rc",
    "1-cr2",
    "1-rc123",
    "1-SNAPSHOT",
    "1",
    "1-sp",
    "1-sp2",
    "1-sp123",
    "1-abc",
    "1-def",
    "1-pom-1",
    "1-1-snapshot",
    "1-1",
    "1-2",
    "1-123",
]
MAVEN_NUMBERS = [
    "2.0",
    "2-1",
    "2.0.a",
    "2.0.0.a",
    "2.0.2",
    "2.0.123",
    "2.1.0",
    "2.1-a",
    "2.1b",
    "2.1-c",
    "2.1-1",
    "2.1.0.1",
    "2.2",
    "2.123",
    "11.a2",
    "11.a11",
    "11.b2",
    "11.b11",
    "11.m2",
    "11.m11",
    "11",
    "11.a",
    "11b",
    "11c",
    "11m",
]


def test_maven_comparable_version_lists() -> None:
    assert_ascending("Maven", MAVEN_QUALIFIERS)
    assert_ascending("Maven", MAVEN_NUMBERS)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1", "1.0"),
        ("1", "1.0.0"),
        ("1", "1-0"),
        ("1.0", "1.0-0"),
        ("1a", "1-a"),
        ("1a", "1.0-a"),
        ("1ga", "1"),
        ("1final", "1"),
        ("1release", "1"),
        ("1cr", "1rc"),
        ("1a1", "1alpha1"),
        ("1b2", "1beta2"),
        ("1m3", "1milestone3"),
        ("1X", "1x"),
        ("1FINAL", "1"),
        ("1m3", "1MILESTONE3"),
    ],
)
def test_maven_equal_versions(a: str, b: str) -> None:
    assert versions.compare("Maven", a, b) == 0


def test_maven_dot_qualifier_sorts_before_hyphen_qualifier() -> None:
    # Maven 3.x (transitions are hyphens): ".qualifier" < "-qualifier", so 1.a < 1a = 1-a.
    # Maven 3.0 treated 1.a and 1a as equal; funade follows the current ComparableVersion.
    assert versions.compare("Maven", "1.a", "1a") == -1


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.0-alpha-1", "1.0"),
        ("1.0-alpha-1", "1.0-beta-1"),
        ("1.0-beta-1", "1.0-SNAPSHOT"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
        ("1.0", "1.0-1"),
        ("1.0.0", "1.0-1"),
        ("2.0-1", "2.0.1"),
        ("2.0.1-klm", "2.0.1-lmn"),
        ("2.0.1", "2.0.1-xyz"),
        ("2.0.1-xyz", "2.0.1-123"),
        ("2.17.0", "2.17.1"),
        ("5.3.18", "5.3.32.RELEASE"),
    ],
)
def test_maven_ordered_pairs(low: str, high: str) -> None:
    assert versions.compare("Maven", low, high) == -1
    assert versions.compare("Maven", high, low) == 1


# ---------------------------------------------------------------------------- dispatch


def test_dispatch_uses_the_base_ecosystem() -> None:
    assert versions.scheme_for("Debian:12") == "debian"
    assert versions.scheme_for("Alpine:v3.19") == "alpine"
    assert versions.scheme_for("PyPI") == "pep440"
    assert versions.scheme_for("crates.io") == "semver"
    assert versions.scheme_for("RubyGems") is None


def test_unknown_ecosystem_and_mixed_schemes() -> None:
    with pytest.raises(VersionError, match="no version ordering"):
        versions.compare("RubyGems", "1.0", "1.1")
    with pytest.raises(TypeError):
        _ = versions.parse("PyPI", "1.0") < versions.parse("npm", "1.0.0")


def test_versions_sort_with_the_builtin_sort() -> None:
    parsed = [versions.parse("Debian", text) for text in ["1.0", "1.0~rc1", "1:0.1", "0.9"]]
    assert [str(version) for version in sorted(parsed)] == ["0.9", "1.0~rc1", "1.0", "1:0.1"]
