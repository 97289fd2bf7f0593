"""Image tags and OCI labels from git state, the way docker/metadata-action computes them.

The seed's CI tags every build with the commit (``type=sha``), the release tag when one
points at the commit, and ``latest`` on the default branch. ``funade image build`` does
the same locally, so this module is the pure part: git facts in, tags and labels out.

What is implemented of metadata-action:

- ``type=sha``: ``sha-`` and the first 7 characters of the commit (``SHA_PREFIXED``), or
  the bare 7 characters (``SHA_SHORT``, the seed's ``type=sha,prefix=``).
- ``type=semver,pattern={{version}}`` only: a ``v*`` tag at the commit that parses as
  semver (loosely, like node-semver) gives its version without the ``v`` and without build
  metadata (``v1.2.3+b5`` → ``1.2.3``; ``v1.2.3-rc.1`` → ``1.2.3-rc.1``). The ``{{major}}``
  and ``{{major}}.{{minor}}`` patterns are not produced. A ``v*`` tag that is not semver
  (``v1``, ``vnext``) gives no version tag, as metadata-action skips it.
- ``type=raw,value=latest,enable={{is_default_branch}}``: ``latest`` only when the checked
  out branch is the default one (not on a detached HEAD, even one at a release tag).

Outside a git repository (allowed only with ``--allow-dirty``) the sha tag is
``sha-unknown`` (``unknown`` in the short format) and there is no revision label.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "DEFAULT_BRANCHES",
    "UNKNOWN_SHA",
    "GitState",
    "SemVer",
    "ShaFormat",
    "is_default_branch",
    "oci_labels",
    "parse_semver",
    "release_version",
    "repository_name",
    "sanitize_url",
    "sha_tag",
    "tags",
    "valid_repository",
    "valid_tag",
    "version_label",
]

#: The branches taken as the default one when none is configured.
DEFAULT_BRANCHES = ("main", "master")
UNKNOWN_SHA = "unknown"
SHORT_SHA_LENGTH = 7

# node-semver's loose form: an optional leading "v" or "=", then major.minor.patch, an
# optional prerelease and optional build metadata.
_SEMVER = re.compile(
    r"^[v=\s]*(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-?((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ShaFormat(StrEnum):
    """How the commit tag is spelled."""

    PREFIXED = "prefixed"  # sha-1a2b3c4 (metadata-action's default)
    SHORT = "short"  # 1a2b3c4 (type=sha,prefix=)


@dataclass(frozen=True, slots=True)
class GitState:
    """What the build needs to know about the repository holding the context.

    Attributes:
        sha: the full commit ID of HEAD.
        branch: the checked-out branch; None on a detached HEAD.
        tags_at_head: the tags pointing exactly at HEAD.
        remote_url: the URL of the ``origin`` remote (or the only one), if any.
        dirty_paths: tracked changes and untracked, non-ignored files (``git status``).
    """

    sha: str
    branch: str | None = None
    tags_at_head: tuple[str, ...] = ()
    remote_url: str | None = None
    dirty_paths: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    """A parsed semantic version; ``str()`` is metadata-action's ``{{version}}``."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core

    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Order like semver: a release sorts after its prereleases."""
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease)


def parse_semver(text: str) -> SemVer | None:
    """Parse a version loosely (``v1.2.3``, ``1.2.3-rc.1+build``); None when it is not semver."""
    match = _SEMVER.match(text.strip())
    if match is None:
        return None
    major, minor, patch, prerelease, _build = match.groups()
    return SemVer(int(major), int(minor), int(patch), prerelease or "")


def release_version(tags_at_head: Sequence[str]) -> SemVer | None:
    """The highest semver among the ``v*`` tags at HEAD, if any."""
    versions = [v for tag in tags_at_head if tag.startswith("v") and (v := parse_semver(tag)) is not None]
    return max(versions, key=SemVer.sort_key, default=None)


def is_default_branch(branch: str | None, default_branch: str | None) -> bool:
    """Whether ``branch`` is the default one (``main`` or ``master`` unless configured)."""
    if branch is None:
        return False
    if default_branch:
        return branch == default_branch
    return branch in DEFAULT_BRANCHES


def sha_tag(sha: str | None, sha_format: ShaFormat = ShaFormat.PREFIXED) -> str:
    """``sha-1a2b3c4`` or ``1a2b3c4``; ``sha-unknown``/``unknown`` without a commit."""
    short = sha[:SHORT_SHA_LENGTH] if sha else UNKNOWN_SHA
    return f"sha-{short}" if sha_format is ShaFormat.PREFIXED else short


def tags(
    state: GitState | None,
    *,
    default_branch: str | None = None,
    sha_format: ShaFormat = ShaFormat.PREFIXED,
    extra: Sequence[str] = (),
) -> list[str]:
    """The tags of an image built from ``state``, without duplicates, in metadata-action's order.

    Args:
        state: the repository's state; None outside a git repository.
        default_branch: the default branch; None means ``main`` or ``master``.
        sha_format: how the commit tag is spelled.
        extra: tags given by the user (``-t``), appended as they are.

    Returns:
        The version tag (if HEAD is at a ``v*`` semver tag), the commit tag, ``latest``
        (on the default branch), then ``extra``.
    """
    computed: list[str] = []
    if state is not None and (version := release_version(state.tags_at_head)) is not None:
        computed.append(str(version))
    computed.append(sha_tag(state.sha if state else None, sha_format))
    if state is not None and is_default_branch(state.branch, default_branch):
        computed.append("latest")
    result: list[str] = []
    for tag in [*computed, *extra]:
        if tag not in result:
            result.append(tag)
    return result


def version_label(state: GitState | None, sha_format: ShaFormat = ShaFormat.PREFIXED) -> str:
    """The image's ``org.opencontainers.image.version``: the semver of the release tag, else the sha tag."""
    version = release_version(state.tags_at_head) if state is not None else None
    return str(version) if version is not None else sha_tag(state.sha if state else None, sha_format)


def valid_tag(tag: str) -> bool:
    """Whether ``tag`` is a valid Docker tag (the part after ``:``)."""
    return _TAG.match(tag) is not None


def repository_name(name: str) -> str:
    """A directory name made into a valid repository name: lowercase, ``[a-z0-9._-]``."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    cleaned = re.sub(r"[._-]{2,}", "-", cleaned).strip("._-")
    return cleaned or "image"


def valid_repository(name: str) -> bool:
    """Whether ``name`` is a valid repository (``[registry/]path``, lowercase components)."""
    if not name or name.endswith("/"):
        return False
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        parts = parts[1:]  # a registry host, which may carry a port
    return all(_REPO_COMPONENT.match(part) for part in parts)


def sanitize_url(url: str) -> str:
    """A remote URL without credentials (``https://user:token@host/x`` → ``https://host/x``)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme and parsed.netloc and "@" in parsed.netloc:
        host = parsed.netloc.rsplit("@", 1)[1]
        return urllib.parse.urlunsplit(parsed._replace(netloc=host))
    return url


def oci_labels(
    state: GitState | None,
    version: str,
    created: datetime,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` labels of the image.

    Args:
        state: the repository's state; None outside a git repository.
        version: the image's version: the semver tag, or the sha tag.
        created: when the build started; written in RFC 3339, UTC.
        extra: more labels, which win over the computed ones.
    """
    labels: dict[str, str] = {
        "org.opencontainers.image.created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.version": version,
    }
    if state is not None:
        labels["org.opencontainers.image.revision"] = state.sha
        if state.remote_url:
            labels["org.opencontainers.image.source"] = sanitize_url(state.remote_url)
    labels.update(extra or {})
    return dict(sorted(labels.items()))
