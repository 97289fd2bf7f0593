"""Registry notifications: parsing the envelope and dating pushes for lifecycle rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.core import registryevents
from funade.core.registryevents import EventError

pytestmark = pytest.mark.unit

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _event(id_: str, action: str, digest: str, when: str, tag: str = "", media_type: str = MANIFEST) -> dict:
    target = {"mediaType": media_type, "size": 528, "digest": digest, "repository": "shop/web", "url": "x"}
    if tag:
        target["tag"] = tag
    return {"id": id_, "timestamp": when, "action": action, "target": target, "request": {}, "source": {}}


def test_timestamps_with_nanoseconds_and_offsets_become_utc() -> None:
    parse = registryevents.parse_timestamp
    assert parse("2026-11-28T10:00:00.123456789Z") == datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse("2026-11-28T10:00:00-08:00") == datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    assert parse("2026-11-28T10:00:00.5+0530") == datetime(2026, 11, 28, 4, 30, 0, 500000, tzinfo=UTC)
    with pytest.raises(EventError, match="not RFC 3339"):
        parse("yesterday")


def test_envelope_keeps_manifest_events_and_drops_blobs() -> None:
    body = {
        "events": [
            _event("1", "push", "sha256:aa", "2026-11-01T00:00:00Z", tag="1.0.0"),
            _event("2", "push", "sha256:bb", "2026-11-01T00:00:00Z", media_type="application/octet-stream"),
            _event("3", "mount", "sha256:cc", "2026-11-01T00:00:00Z"),
        ]
    }
    events = registryevents.parse_envelope(body, "127.0.0.1:5000")
    assert [(e.id, e.action, e.tag, e.registry, e.size) for e in events] == [
        ("1", "push", "1.0.0", "127.0.0.1:5000", 528)
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], '"events" list'),
        ({"events": ["x"]}, r"events\[0\]: expected an object"),
        ({"events": [{"id": "1", "action": "push", "timestamp": "2026-11-01T00:00:00Z"}]}, r"events\[0\].target"),
        (
            {"events": [{**_event("1", "push", "sha256:a", "2026-11-01T00:00Z"), "target": {"mediaType": MANIFEST}}]},
            r"events\[0\].target.repository",
        ),
    ],
)
def test_malformed_envelopes_name_the_field(body: object, message: str) -> None:
    with pytest.raises(EventError, match=message):
        registryevents.parse_envelope(body, "r")


def test_history_dates_the_first_push_since_the_last_delete() -> None:
    body = {
        "events": [
            _event("1", "push", "sha256:aa", "2026-11-01T00:00:00Z", tag="1.0.0"),
            _event("2", "push", "sha256:aa", "2026-11-05T00:00:00Z", tag="stable"),  # retag: same image
            _event("3", "pull", "sha256:aa", "2026-11-06T00:00:00Z"),
            _event("4", "push", "sha256:bb", "2026-11-02T00:00:00Z", tag="2.0.0"),
            _event("5", "delete", "sha256:bb", "2026-11-03T00:00:00Z"),
            _event("6", "push", "sha256:bb", "2026-11-10T00:00:00Z", tag="2.0.0"),
        ]
    }
    history = registryevents.history(registryevents.parse_envelope(body, "r"))
    a = history[("shop/web", "sha256:aa")]
    assert a.pushed_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert a.last_pulled_at == datetime(2026, 11, 6, tzinfo=UTC)
    assert a.tags_pushed == ("1.0.0", "stable")
    b = history[("shop/web", "sha256:bb")]
    assert b.pushed_at == datetime(2026, 11, 10, tzinfo=UTC)
    assert b.last_pulled_at is None


def test_store_keeps_each_event_once_and_reads_them_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "funade.db")
    body = {"events": [_event("1", "push", "sha256:aa", "2026-11-01T00:00:00.5Z", tag="1.0.0")]}
    events = registryevents.parse_envelope(body, "127.0.0.1:5000")
    assert store.add_image_events(events) == 1
    assert store.add_image_events(events) == 0  # the registry redelivers after a timeout
    assert store.image_events("127.0.0.1:5000") == events
    assert store.image_events("127.0.0.1:5000", "other") == []
    assert store.image_events("elsewhere") == []
    store.close()


def test_funades_own_manifest_reads_are_not_pulls() -> None:
    own = _event("1", "pull", "sha256:aa", "2026-11-01T00:00:00Z")
    own["request"] = {"useragent": "funade/0.1.0"}
    docker = _event("2", "pull", "sha256:aa", "2026-11-01T00:00:00Z")
    docker["request"] = {"useragent": "docker/20.10.24 go/go1.19.8"}
    events = registryevents.parse_envelope({"events": [own, docker]}, "r")
    assert [e.id for e in events] == ["2"]
