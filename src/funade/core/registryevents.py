"""What the registry tells us: push, pull and delete notifications, and the push dates they give.

The OCI API has no push date, and ECR lifecycle rules (``sinceImagePushed``) need one. The
distribution registry can POST an envelope of events to a URL on every push, pull and
delete; the funade server keeps them, and this module turns that record into the date
each image was pushed (the first push since it was last deleted) and last pulled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = [
    "ENVELOPE_MEDIA_TYPE",
    "EventError",
    "ImageEvent",
    "ImageHistory",
    "history",
    "parse_envelope",
    "parse_timestamp",
]

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
ACTIONS = ("push", "pull", "delete")
#: The prefix of the User-Agent funade's registry client sends.
OWN_USER_AGENT = "funade/"
# Blob events carry this media type; only manifests are images.
_BLOB_MEDIA_TYPES = frozenset({"application/octet-stream", "application/vnd.docker.image.rootfs.diff.tar.gzip"})
_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$",
)


class EventError(ValueError):
    """A notification envelope that is not what the registry sends."""


@dataclass(frozen=True)
class ImageEvent:
    """One manifest event in one repository of one registry."""

    id: str
    registry: str
    action: str  # push | pull | delete
    repository: str
    digest: str
    tag: str
    media_type: str
    size: int
    time: datetime


@dataclass(frozen=True)
class ImageHistory:
    """When an image (a manifest digest in a repository) was pushed and last pulled."""

    repository: str
    digest: str
    pushed_at: datetime
    last_pulled_at: datetime | None
    tags_pushed: tuple[str, ...]


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 time as the registry writes it (nanoseconds, any offset), as UTC."""
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise EventError(f"timestamp {text!r} is not RFC 3339")
    day, clock, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    base = datetime.fromisoformat(f"{day}T{clock}").replace(microsecond=micros)
    if zone in (None, "Z"):
        return base.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return base.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)


def _text(event: Mapping[str, Any], where: str, key: str, required: bool = True) -> str:
    value = event.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise EventError(f"{where}.{key}: expected a non-empty string")
    return value


def parse_envelope(body: object, registry: str) -> list[ImageEvent]:
    """The manifest events of one notification envelope; blob events are dropped.

    Raises:
        EventError: naming the event and field when the envelope is malformed.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("events"), list):
        raise EventError('a registry notification is an object with an "events" list')
    out: list[ImageEvent] = []
    for index, event in enumerate(body["events"]):
        where = f"events[{index}]"
        if not isinstance(event, Mapping):
            raise EventError(f"{where}: expected an object")
        action = _text(event, where, "action")
        target = event.get("target")
        if not isinstance(target, Mapping):
            raise EventError(f"{where}.target: expected an object")
        media_type = _text(target, f"{where}.target", "mediaType", required=False)
        if action not in ACTIONS or media_type in _BLOB_MEDIA_TYPES:
            continue
        request = event.get("request")
        agent = request.get("useragent") if isinstance(request, Mapping) else None
        if action == "pull" and isinstance(agent, str) and agent.startswith(OWN_USER_AGENT):
            continue  # funade reading a manifest to list or promote it is not a pull
        size = target.get("size", target.get("length", 0))
        out.append(
            ImageEvent(
                id=_text(event, where, "id"),
                registry=registry,
                action=action,
                repository=_text(target, f"{where}.target", "repository"),
                digest=_text(target, f"{where}.target", "digest", required=action != "delete"),
                tag=_text(target, f"{where}.target", "tag", required=False),
                media_type=media_type,
                size=size if isinstance(size, int) else 0,
                time=parse_timestamp(_text(event, where, "timestamp")),
            )
        )
    return out


def history(events: Iterable[ImageEvent]) -> dict[tuple[str, str], ImageHistory]:
    """Per (repository, digest): the first push since the last delete, and the last pull.

    A delete of a digest forgets it, so pushing it again later starts a new life, as ECR
    dates a re-pushed image by its new push.
    """
    pushed: dict[tuple[str, str], datetime] = {}
    pulled: dict[tuple[str, str], datetime] = {}
    tags: dict[tuple[str, str], list[str]] = {}
    for event in sorted(events, key=lambda e: e.time):
        key = (event.repository, event.digest)
        if event.action == "delete":
            if event.digest:
                pushed.pop(key, None)
                pulled.pop(key, None)
                tags.pop(key, None)
        elif event.action == "push":
            pushed.setdefault(key, event.time)
            if event.tag and event.tag not in tags.setdefault(key, []):
                tags[key].append(event.tag)
        elif event.action == "pull":
            pulled[key] = event.time
    return {
        key: ImageHistory(key[0], key[1], at, pulled.get(key), tuple(tags.get(key, ()))) for key, at in pushed.items()
    }
