"""Unit tests of funade.core.tagging: metadata-action's tag cases and the OCI labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from funade.core import tagging
from funade.core.tagging import GitState, SemVer, ShaFormat

pytestmark = pytest.mark.unit

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"


def state(branch: str | None = "main", tags: tuple[str, ...] = (), remote: str | None = None) -> GitState:
    return GitState(sha=SHA, branch=branch, tags_at_head=tags, remote_url=remote)


# -- metadata-action's documented cases -------------------------------------------------------------


@pytest.mark.parametrize(
    ("git", "expected"),
    [
        # push to the default branch: sha + latest
        (state("main"), ["sha-860c190", "latest"]),
        (state("master"), ["sha-860c190", "latest"]),
        # another branch or a pull request's detached HEAD: the sha only
        (state("feature/x"), ["sha-860c190"]),
        (state(None), ["sha-860c190"]),
        # a release tag checked out (detached): the version and the sha, no latest
        (state(None, ("v1.2.3",)), ["1.2.3", "sha-860c190"]),
        # a release tag on the default branch's tip
        (state("main", ("v1.2.3",)), ["1.2.3", "sha-860c190", "latest"]),
        # prereleases keep their suffix; build metadata is dropped ({{version}})
        (state(None, ("v2.0.8-beta.67",)), ["2.0.8-beta.67", "sha-860c190"]),
        (state(None, ("v1.1.1+build.5",)), ["1.1.1", "sha-860c190"]),
        # not semver, or not a v* tag: no version tag
        (state(None, ("v1",)), ["sha-860c190"]),
        (state(None, ("vnext",)), ["sha-860c190"]),
        (state(None, ("release-1.2.3",)), ["sha-860c190"]),
        (state(None, ("1.2.3",)), ["sha-860c190"]),
        # several tags at HEAD: the highest version
        (state(None, ("v1.0.0", "v1.1.0-rc.1", "v1.1.0")), ["1.1.0", "sha-860c190"]),
        (state(None, ("v1.1.0-rc.1", "v1.0.0")), ["1.1.0-rc.1", "sha-860c190"]),
    ],
)
def test_tags_follow_metadata_action(git: GitState, expected: list[str]) -> None:
    assert tagging.tags(git) == expected


def test_short_sha_format_is_the_seeds_type_sha_without_prefix() -> None:
    assert tagging.tags(state("dev"), sha_format=ShaFormat.SHORT) == ["860c190"]


def test_configured_default_branch_replaces_main_and_master() -> None:
    assert tagging.tags(state("trunk"), default_branch="trunk") == ["sha-860c190", "latest"]
    assert tagging.tags(state("main"), default_branch="trunk") == ["sha-860c190"]


def test_outside_git_the_sha_is_unknown() -> None:
    assert tagging.tags(None) == ["sha-unknown"]
    assert tagging.tags(None, sha_format=ShaFormat.SHORT) == ["unknown"]


def test_extra_tags_come_last_without_duplicates() -> None:
    assert tagging.tags(state("main"), extra=["dev", "latest", "dev"]) == ["sha-860c190", "latest", "dev"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1.2.3", SemVer(1, 2, 3)),
        ("1.2.3", SemVer(1, 2, 3)),
        ("=v1.2.3", SemVer(1, 2, 3)),
        ("v1.2.3-rc.1+meta", SemVer(1, 2, 3, "rc.1")),
        ("v1.2", None),
        ("v01.2.3", None),
        ("latest", None),
    ],
)
def test_parse_semver(text: str, expected: SemVer | None) -> None:
    assert tagging.parse_semver(text) == expected


def test_version_label_is_the_semver_or_the_sha_tag() -> None:
    assert tagging.version_label(state(None, ("v3.0.0",))) == "3.0.0"
    assert tagging.version_label(state("main")) == "sha-860c190"
    assert tagging.version_label(None) == "sha-unknown"


# -- labels and names -----------------------------------------------------------------------------


def test_oci_labels() -> None:
    created = datetime(2026, 1, 2, 12, 30, 5, tzinfo=timezone(timedelta(hours=9)))
    labels = tagging.oci_labels(state(remote="https://ci:s3cret@github.com/acme/app.git"), "1.2.3", created)
    assert labels == {
        "org.opencontainers.image.created": "2026-01-02T03:30:05Z",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.source": "https://github.com/acme/app.git",
        "org.opencontainers.image.version": "1.2.3",
    }


def test_oci_labels_outside_git_have_no_revision_or_source() -> None:
    labels = tagging.oci_labels(None, "sha-unknown", datetime(2026, 1, 1, tzinfo=UTC))
    assert set(labels) == {"org.opencontainers.image.created", "org.opencontainers.image.version"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://token@gitlab.com/a/b", "https://gitlab.com/a/b"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git@host:22/a/b", "ssh://host:22/a/b"),
        ("/srv/git/app.git", "/srv/git/app.git"),
    ],
)
def test_sanitize_url_drops_credentials(url: str, expected: str) -> None:
    assert tagging.sanitize_url(url) == expected


@pytest.mark.parametrize(
    ("name", "expected"), [("My App", "my-app"), ("svc_1", "svc_1"), ("--x--", "x"), ("Ünï", "n"), ("!!!", "image")]
)
def test_repository_name_from_a_directory(name: str, expected: str) -> None:
    assert tagging.repository_name(name) == expected
    assert tagging.valid_repository(tagging.repository_name(name))


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("app", True),
        ("team/app", True),
        ("localhost:5000/team/app", True),
        ("registry.example.com/app", True),
        ("App", False),
        ("app/", False),
        ("", False),
        ("a..b", False),
    ],
)
def test_valid_repository(name: str, valid: bool) -> None:
    assert tagging.valid_repository(name) is valid


def test_valid_tag() -> None:
    assert tagging.valid_tag("1.2.3-rc_1")
    assert not tagging.valid_tag("-x")
    assert not tagging.valid_tag("a" * 129)
    assert not tagging.valid_tag("a/b")
