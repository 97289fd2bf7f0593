"""The workload use cases on a real store file: what apply accepts, refuses and keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.core.ports import ObjectKey
from funade.engine import workloads

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


def deployment(image: str = "app:1", replicas: int | None = 2, labels: dict[str, str] | None = None) -> Obj:
    labels = labels or {"app": "web"}
    spec: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}


@pytest.fixture
def engine(tmp_path: Path) -> workloads.Workloads:
    w = workloads.Workloads(SqliteStore(tmp_path / "db.sqlite"))
    w.ensure_default_namespace()
    return w


def test_apply_fills_defaults_and_reports_actions(engine: workloads.Workloads) -> None:
    (first,) = engine.apply([deployment()])
    assert (first.action, first.runnable) == ("created", True)
    stored = engine.store.get(ObjectKey("Deployment", "default", "web"))
    assert stored is not None
    assert stored["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert stored["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert [r.action for r in engine.apply([deployment()])] == ["unchanged"]
    assert [r.action for r in engine.apply([deployment("app:2")])] == ["configured"]


def test_a_bad_object_in_a_batch_writes_nothing(engine: workloads.Workloads) -> None:
    bad = deployment(labels={"app": "other"})  # selector does not match the template
    bad["metadata"]["name"] = "bad"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}
    with pytest.raises(workloads.WorkloadError, match="selector"):
        engine.apply([config, bad])
    assert engine.store.get(ObjectKey("ConfigMap", "default", "cfg")) is None


def test_a_missing_namespace_is_refused_unless_the_batch_creates_it(engine: workloads.Workloads) -> None:
    obj = deployment()
    obj["metadata"]["namespace"] = "shop"
    with pytest.raises(workloads.WorkloadError, match='namespaces "shop" not found'):
        engine.apply([obj])
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    assert [r.action for r in engine.apply([obj, ns])] == ["created", "created"]


def test_immutable_fields_are_refused(engine: workloads.Workloads) -> None:
    engine.apply([deployment()])
    moved = deployment(labels={"app": "web", "tier": "x"})
    moved["spec"]["selector"] = {"matchLabels": {"tier": "x"}}
    with pytest.raises(workloads.WorkloadError, match=r"spec\.selector: field is immutable"):
        engine.apply([moved])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "app:1"}]},
    }
    engine.apply([pod])
    pod["spec"]["containers"][0]["image"] = "app:2"
    assert [r.action for r in engine.apply([pod])] == ["configured"]  # only the image may change
    pod["spec"]["containers"][0]["args"] = ["x"]
    with pytest.raises(workloads.WorkloadError, match="pod updates may not change"):
        engine.apply([pod])


def test_apply_keeps_what_scale_and_pause_set_when_the_manifest_leaves_it_out(engine: workloads.Workloads) -> None:
    key = ObjectKey("Deployment", "default", "web")
    engine.apply([deployment(replicas=None)])
    engine.scale(key, 5)
    engine.set_paused(key, True)
    engine.apply([deployment("app:2", replicas=None)])
    stored = engine.store.get(key)
    assert stored is not None
    assert (stored["spec"]["replicas"], stored["spec"]["paused"]) == (5, True)
    engine.apply([deployment("app:2", replicas=3)])  # a manifest that says replicas wins
    stored = engine.store.get(key)
    assert stored is not None and stored["spec"]["replicas"] == 3


def test_dry_run_changes_nothing(engine: workloads.Workloads) -> None:
    results = engine.apply([deployment()], dry_run=True)
    assert [r.action for r in results] == ["created (dry run)"]
    assert engine.store.get(ObjectKey("Deployment", "default", "web")) is None


def hpa(target: str = "web", **spec: Any) -> Obj:
    body = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "maxReplicas": 5}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {**body, **spec}}  # fmt: skip


def test_non_runnable_kinds_are_stored(engine: workloads.Workloads) -> None:
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"}, "spec": {}}
    (result,) = engine.apply([pdb])
    assert (result.action, result.runnable) == ("created", False)
    assert [o["metadata"]["name"] for o in engine.select("PodDisruptionBudget", "default", None)] == ["web"]


def test_an_autoscaler_is_validated_and_runs(engine: workloads.Workloads) -> None:
    (result,) = engine.apply([hpa()])
    assert (result.action, result.runnable) == ("created", True)
    with pytest.raises(workloads.WorkloadError, match=r"minReplicas"):
        engine.apply([hpa(minReplicas=9)])  # above maxReplicas
    with pytest.raises(workloads.WorkloadError, match=r"spec.metrics\[0\]"):
        engine.apply([hpa(metrics=[{"type": "Resource", "resource": {"name": "gpu"}}])])


def test_a_re_apply_keeps_the_replicas_an_autoscaler_set_and_says_so(engine: workloads.Workloads) -> None:
    engine.apply([deployment(replicas=2), hpa()])
    engine.scale(ObjectKey("Deployment", "default", "web"), 4)  # what the autoscaler does
    (result,) = engine.apply([deployment(image="app:2", replicas=2)])
    stored = engine.store.get(ObjectKey("Deployment", "default", "web"))
    assert stored is not None and stored["spec"]["replicas"] == 4
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    assert any("left to HorizontalPodAutoscaler web, which runs 4" in w for w in result.warnings), result.warnings
    # In the same apply as its autoscaler, too; and without an autoscaler the manifest wins again.
    deploy, _ = engine.apply([deployment(replicas=3), hpa()])
    assert any("HorizontalPodAutoscaler web" in w for w in deploy.warnings)
    assert engine.store.get(ObjectKey("Deployment", "default", "web"))["spec"]["replicas"] == 4  # type: ignore[index]
    engine.delete(ObjectKey("HorizontalPodAutoscaler", "default", "web"))
    engine.apply([deployment(replicas=3)])
    assert engine.store.get(ObjectKey("Deployment", "default", "web"))["spec"]["replicas"] == 3  # type: ignore[index]


def test_deleting_a_namespace_deletes_what_is_in_it(engine: workloads.Workloads) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    obj = deployment()
    obj["metadata"]["namespace"] = "shop"
    engine.apply([ns, obj])
    deleted = engine.delete(ObjectKey("Namespace", "", "shop"))
    assert ObjectKey("Deployment", "shop", "web") in deleted
    assert engine.store.get(ObjectKey("Deployment", "shop", "web")) is None
    with pytest.raises(workloads.WorkloadError, match="cannot be deleted"):
        engine.delete(ObjectKey("Namespace", "", "default"))


def test_undo_needs_history_and_refuses_a_paused_deployment(engine: workloads.Workloads) -> None:
    key = ObjectKey("Deployment", "default", "web")
    engine.apply([deployment()])
    with pytest.raises(workloads.WorkloadError, match="no rollout history"):
        engine.undo(key, None)
    engine.set_paused(key, True)
    with pytest.raises(workloads.WorkloadError, match="paused"):
        engine.undo(key, None)


def test_kind_aliases() -> None:
    assert workloads.normalize_kind("deploy") == "Deployment"
    assert workloads.normalize_kind("po") == "Pod"
    assert workloads.normalize_kind("rollouts") == "Rollout"
    assert workloads.normalize_kind("widgets", ["Widget"]) == "Widget"


def test_fields_the_local_target_cannot_honour_are_refused_and_hints_warned(engine: workloads.Workloads) -> None:
    refused = deployment()
    refused["spec"]["template"]["spec"]["hostNetwork"] = True
    with pytest.raises(workloads.WorkloadError, match=r"spec\.template\.spec\.hostNetwork"):
        engine.apply([refused])
    assert engine.store.get(ObjectKey("Deployment", "default", "web")) is None
    hinted = deployment()
    hinted["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    (result,) = engine.apply([hinted])
    assert result.action == "created"
    assert result.warnings == ("spec.template.spec.nodeSelector: ignored on the local target: there is one node",)
