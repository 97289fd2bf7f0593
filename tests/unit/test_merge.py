"""What an apply keeps from live: one rule for the local target's apply and the GitOps diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.core import merge
from funade.core.gitops import diff
from funade.core.ports import ObjectKey
from funade.engine.workloads import Workloads

pytestmark = pytest.mark.unit
Obj = dict[str, Any]


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web-stable", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def pinned() -> Obj:
    live = service()
    live["metadata"]["annotations"] = {merge.MANAGED_BY_ANNOTATION: "web"}
    live["spec"]["selector"][merge.POD_HASH_LABEL] = "abc123"
    return live


def test_a_rollout_pin_survives_a_reapply_and_is_no_diff(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    workloads = Workloads(store)
    workloads.apply([pinned()])
    (result,) = workloads.apply([service()])  # the manifest from git, without the pin
    assert result.action == "unchanged"
    live = store.get(ObjectKey("Service", "default", "web-stable"))
    assert live is not None and live["spec"]["selector"][merge.POD_HASH_LABEL] == "abc123"
    assert diff.diff(service(), live).status is diff.SyncStatus.SYNCED


def test_without_a_pin_nothing_is_kept_and_replicas_still_are() -> None:
    assert merge.keep_live_fields(service(), service()) == service()
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 7}}
    assert merge.keep_live_fields(desired, live)["spec"]["replicas"] == 7
