"""The SQLite store must behave like an API server's storage: identity, generation, status, events.

Facts: ``metadata.generation`` only moves on spec changes, ``uid`` and
``creationTimestamp`` are set once, ``status`` is written through its own subresource,
and a multi-object apply is one transaction. The database is a file under ``tmp_path``.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.core.ports import AuditEntry, Event, ObjectKey

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "home" / "funade.db")
    yield db
    db.close()


def _deployment(name: str = "web", image: str = "nginx:1.25", **meta: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _configmap(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


KEY = ObjectKey("Deployment", "default", "web")

# --- put_many ----------------------------------------------------------------------------------


def test_create_sets_identity_and_generation(store: SqliteStore) -> None:
    [(stored, action)] = store.put_many([_deployment()])

    meta = stored["metadata"]
    assert action == "created"
    assert uuid.UUID(meta["uid"])
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"].isdigit()
    assert store.get(KEY) == stored


def test_create_ignores_status_and_timestamps_from_input(store: SqliteStore) -> None:
    obj = _deployment(creationTimestamp="1999-01-01T00:00:00Z", generation=42)
    obj["status"] = {"replicas": 99}

    [(stored, _)] = store.put_many([obj])

    assert "status" not in stored
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["creationTimestamp"] != "1999-01-01T00:00:00Z"


def test_put_many_does_not_mutate_its_input(store: SqliteStore) -> None:
    obj = _deployment()
    before = copy.deepcopy(obj)

    store.put_many([obj])

    assert obj == before


def test_reapplying_the_same_object_is_unchanged(store: SqliteStore) -> None:
    [(first, _)] = store.put_many([_deployment()])

    [(second, action)] = store.put_many([_deployment()])

    assert action == "unchanged"
    assert second == first
    assert store.get(KEY) == first


def test_status_in_input_does_not_make_a_change(store: SqliteStore) -> None:
    store.put_many([_deployment()])
    with_status = _deployment()
    with_status["status"] = {"replicas": 7}

    [(_, action)] = store.put_many([with_status])

    assert action == "unchanged"
    stored = store.get(KEY)
    assert stored is not None
    assert "status" not in stored


def test_metadata_change_is_configured_without_a_new_generation(store: SqliteStore) -> None:
    [(first, _)] = store.put_many([_deployment()])

    [(second, action)] = store.put_many([_deployment(labels={"team": "a"}, annotations={"note": "x"})])

    assert action == "configured"
    assert second["metadata"]["generation"] == 1
    assert second["metadata"]["labels"] == {"team": "a"}
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


def test_spec_change_bumps_the_generation(store: SqliteStore) -> None:
    store.put_many([_deployment()])

    [(second, action)] = store.put_many([_deployment(image="nginx:1.26")])
    [(third, _)] = store.put_many([_deployment(image="nginx:1.27")])
    [(fourth, unchanged)] = store.put_many([_deployment(image="nginx:1.27")])

    assert action == "configured"
    assert second["metadata"]["generation"] == 2
    assert third["metadata"]["generation"] == 3
    assert unchanged == "unchanged"
    assert fourth["metadata"]["generation"] == 3


def test_data_change_of_other_kinds_counts_as_configured(store: SqliteStore) -> None:
    store.put_many([_configmap("settings", a="1")])

    [(stored, action)] = store.put_many([_configmap("settings", a="2")])

    assert action == "configured"
    assert stored["data"] == {"a": "2"}


def test_uid_and_creation_timestamp_are_kept_on_update(store: SqliteStore) -> None:
    [(first, _)] = store.put_many([_deployment()])

    changed = _deployment(image="nginx:1.26", uid="not-the-uid", creationTimestamp="1999-01-01T00:00:00Z")
    [(second, _)] = store.put_many([changed])

    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]


def test_update_keeps_the_status_the_controllers_wrote(store: SqliteStore) -> None:
    store.put_many([_deployment()])
    store.put_status(KEY, {"replicas": 3, "readyReplicas": 3})

    changed = _deployment(image="nginx:1.26")
    changed["status"] = {"replicas": 0}
    [(stored, _)] = store.put_many([changed])

    assert stored["status"] == {"replicas": 3, "readyReplicas": 3}
    assert store.get(KEY) == stored


def test_put_many_returns_one_result_per_object_in_order(store: SqliteStore) -> None:
    store.put_many([_configmap("b", x="1")])

    results = store.put_many([_configmap("a", x="1"), _configmap("b", x="1"), _configmap("c", x="1")])

    assert [(obj["metadata"]["name"], action) for obj, action in results] == [
        ("a", "created"),
        ("b", "unchanged"),
        ("c", "created"),
    ]
    assert [o["metadata"]["name"] for o in store.list_objects("ConfigMap")] == ["a", "b", "c"]


def test_a_failing_put_many_writes_nothing(store: SqliteStore) -> None:
    [(existing, _)] = store.put_many([_configmap("kept", v="old")])
    nameless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}, "data": {}}

    with pytest.raises(KeyError):
        store.put_many([_configmap("first", v="1"), _configmap("kept", v="new"), nameless, _configmap("last")])

    assert store.get(ObjectKey("ConfigMap", "default", "first")) is None
    assert store.get(ObjectKey("ConfigMap", "default", "last")) is None
    assert store.get(ObjectKey("ConfigMap", "default", "kept")) == existing
    assert [o["metadata"]["name"] for o in store.list_objects("ConfigMap")] == ["kept"]


def test_a_failed_transaction_does_not_consume_resource_versions(store: SqliteStore) -> None:
    [(first, _)] = store.put_many([_configmap("one")])
    with pytest.raises(KeyError):
        store.put_many([_configmap("two"), {"kind": "ConfigMap", "metadata": {}}])

    [(after, _)] = store.put_many([_configmap("three")])

    assert int(after["metadata"]["resourceVersion"]) == int(first["metadata"]["resourceVersion"]) + 1


def test_store_is_usable_after_a_failed_put_many(store: SqliteStore) -> None:
    with pytest.raises(KeyError):
        store.put_many([{"kind": "ConfigMap", "metadata": {}}])

    [(_, action)] = store.put_many([_configmap("ok")])

    assert action == "created"


# --- put_status --------------------------------------------------------------------------------


def test_put_status_sets_status_and_bumps_the_resource_version(store: SqliteStore) -> None:
    [(created, _)] = store.put_many([_deployment()])

    store.put_status(KEY, {"replicas": 1})

    stored = store.get(KEY)
    assert stored is not None
    assert stored["status"] == {"replicas": 1}
    assert stored["metadata"]["generation"] == 1
    assert int(stored["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert stored["spec"] == created["spec"]


def test_put_status_with_the_same_status_is_a_no_op(store: SqliteStore) -> None:
    store.put_many([_deployment()])
    store.put_status(KEY, {"replicas": 1})
    before = store.get(KEY)

    store.put_status(KEY, {"replicas": 1})

    assert store.get(KEY) == before


def test_put_status_of_a_missing_object_creates_nothing(store: SqliteStore) -> None:
    store.put_status(KEY, {"replicas": 1})

    assert store.get(KEY) is None


# --- listing, delete ---------------------------------------------------------------------------


def test_list_objects_and_kinds(store: SqliteStore) -> None:
    other = _deployment("api")
    other["metadata"]["namespace"] = "prod"
    store.put_many([_deployment("web"), _deployment("db"), other, _configmap("settings")])

    assert [o["metadata"]["name"] for o in store.list_objects("Deployment")] == ["db", "web", "api"]
    assert [o["metadata"]["name"] for o in store.list_objects("Deployment", "prod")] == ["api"]
    assert store.list_objects("Deployment", "nowhere") == []
    assert store.kinds() == ["ConfigMap", "Deployment"]


def test_cluster_scoped_objects_have_an_empty_namespace(store: SqliteStore) -> None:
    store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}])

    assert store.get(ObjectKey("Namespace", "", "prod")) is not None


def test_delete(store: SqliteStore) -> None:
    store.put_many([_deployment()])

    assert store.delete(KEY) is True
    assert store.get(KEY) is None
    assert store.delete(KEY) is False


def test_recreated_object_gets_a_new_identity(store: SqliteStore) -> None:
    [(first, _)] = store.put_many([_deployment(image="nginx:1.26")])
    store.delete(KEY)

    [(second, action)] = store.put_many([_deployment()])

    assert action == "created"
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert second["metadata"]["generation"] == 1


def test_objects_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "funade.db"
    first = SqliteStore(path)
    [(stored, _)] = first.put_many([_deployment()])
    first.close()

    again = SqliteStore(path)
    try:
        assert again.get(KEY) == stored
        [(_, action)] = again.put_many([_deployment()])
        assert action == "unchanged"
    finally:
        again.close()


# --- events ----------------------------------------------------------------------------------


def _event(reason: str = "BackOff", message: str = "Back-off restarting failed container", **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "time": time.time(),
        "namespace": "default",
        "kind": "Pod",
        "name": "web-1",
        "type": "Warning",
        "reason": reason,
        "message": message,
    }
    fields.update(kw)
    return Event(**fields)


def test_repeated_events_fold_into_a_count(store: SqliteStore) -> None:
    now = time.time()
    for i in range(3):
        store.add_event(_event(time=now + i))

    events = store.events()

    assert len(events) == 1
    assert events[0].count == 3
    assert events[0].time == now + 2  # last seen
    assert events[0].reason == "BackOff"


def test_different_events_are_kept_apart(store: SqliteStore) -> None:
    now = time.time()
    store.add_event(_event(time=now))
    store.add_event(_event(time=now + 1, message="Back-off pulling image"))
    store.add_event(_event(time=now + 2, name="web-2"))
    store.add_event(_event(time=now + 3, reason="Unhealthy"))

    events = store.events()

    assert len(events) == 4
    assert all(e.count == 1 for e in events)
    assert [e.time for e in events] == [now, now + 1, now + 2, now + 3]  # oldest first


def test_a_folded_event_moves_to_the_end(store: SqliteStore) -> None:
    now = time.time()
    store.add_event(_event(time=now))
    store.add_event(_event(time=now + 1, reason="Pulled", type="Normal", message="pulled"))
    store.add_event(_event(time=now + 2))

    assert [(e.reason, e.count) for e in store.events()] == [("Pulled", 1), ("BackOff", 2)]


def test_events_filters_and_limit(store: SqliteStore) -> None:
    now = time.time()
    store.add_event(_event(time=now, name="web-1"))
    store.add_event(_event(time=now + 1, name="web-2"))
    store.add_event(_event(time=now + 2, kind="Deployment", name="web", reason="ScalingReplicaSet"))
    store.add_event(_event(time=now + 3, namespace="prod", name="api-1"))

    assert [e.name for e in store.events(namespace="default")] == ["web-1", "web-2", "web"]
    assert [e.name for e in store.events(kind="Pod")] == ["web-1", "web-2", "api-1"]
    assert [e.name for e in store.events(name="web-2")] == ["web-2"]
    assert [e.name for e in store.events(namespace="default", kind="Pod", name="web-1")] == ["web-1"]
    assert [e.name for e in store.events(limit=2)] == ["web", "api-1"]  # the most recent, oldest first


def test_events_older_than_a_day_are_dropped(store: SqliteStore) -> None:
    store.add_event(_event(time=time.time() - 2 * 86400, reason="Ancient"))
    store.add_event(_event(reason="Recent"))

    assert [e.reason for e in store.events()] == ["Recent"]


def test_delete_events_of_a_namespace(store: SqliteStore) -> None:
    store.add_event(_event())
    store.add_event(_event(namespace="prod"))

    store.delete_events("default")

    assert [e.namespace for e in store.events()] == ["prod"]


def test_deleting_an_object_keeps_its_events(store: SqliteStore) -> None:
    store.put_many([_deployment()])
    store.add_event(_event(kind="Deployment", name="web", reason="ScalingReplicaSet"))

    store.delete(KEY)

    assert [e.reason for e in store.events(kind="Deployment", name="web")] == ["ScalingReplicaSet"]


def test_labelled_finds_objects_of_every_kind_by_one_label(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    store.put_many(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "x", "labels": {"app.kubernetes.io/instance": "web"}},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "b", "namespace": "x", "labels": {"app.kubernetes.io/instance": "web"}},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "x", "labels": {"app.kubernetes.io/instance": "api"}},
            },
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": "x"}},
        ]
    )
    found = store.labelled("app.kubernetes.io/instance", "web")
    assert [(o["kind"], o["metadata"]["name"]) for o in found] == [("ConfigMap", "a"), ("Secret", "b")]
    assert store.labelled("app.kubernetes.io/instance", "nobody") == []


def test_the_audit_log_keeps_every_entry_through_namespace_cleanups_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "funade.db"
    store = SqliteStore(path)
    old = AuditEntry(time.time() - 3600 * 24 * 30, "ann@host", "gate-override", "prod", "hotfix", ("Pod/web",))
    same = AuditEntry(time.time(), "ann@host", "gate-override", "prod", "hotfix", ("Pod/web",), ("image x: CVE-1",))
    other = AuditEntry(time.time(), "application/shop@abc", "gate-override", "dev", "why", ("Deployment/api",))
    for entry in (old, same, same, other):
        store.add_audit(entry)
    store.delete_events("prod")  # what deleting a namespace does to its events
    store.add_event(Event(time.time(), "prod", "Pod", "web", "Normal", "Started", "x"))  # prunes day-old events
    store.close()
    reopened = SqliteStore(path)
    assert reopened.audit("prod") == [old, same, same]  # not expired, not folded, oldest first
    assert reopened.audit() == [old, same, same, other]
    assert reopened.audit(limit=2) == [same, other]  # the newest
