"""The autoscaler controller: samples become rates, rates become a scale, the status reads like Kubernetes'."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.controller.autoscalers import AutoscalerController, Sample
from funade.core import revisions
from funade.core.ports import ObjectKey
from funade.engine import workloads

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
START = 1_800_000_000.0


def deployment(replicas: int = 1) -> Obj:
    container = {"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }


def hpa(target: str = "web", **behavior: Any) -> Obj:
    metric = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
    }
    spec: Obj = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": 1,
        "maxReplicas": 6,
        "metrics": [metric],
    }
    if behavior:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": spec,
    }


class World:
    """A store, pods that are ready and old enough, their CPU counters and a clock."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "db")
        self.engine = workloads.Workloads(self.store)
        self.engine.ensure_default_namespace()
        self.now = START
        self.cpu: dict[str, int] = {}  # container ID -> CPU ns so far
        self.pokes = 0
        self.controller = self.make_controller()

    def make_controller(self) -> AutoscalerController:
        def poke() -> None:
            self.pokes += 1

        return AutoscalerController(self.store, self.pods, self.stats, poke, clock=lambda: self.now, sync=15)

    async def stats(self, container_id: str) -> Sample | None:
        if container_id not in self.cpu:
            return None
        return Sample(self.now, self.cpu[container_id], 32 << 20)

    def pods(self, namespace: str) -> list[Obj]:
        replicas = int(self.deployment()["spec"]["replicas"])
        started = revisions.rfc3339(START - 3600)
        out = []
        for i in range(replicas):
            cid = f"c{i}"
            self.cpu.setdefault(cid, 0)
            out.append(
                {
                    "metadata": {"name": f"web-{i}", "namespace": namespace, "labels": {"app": "web"}},
                    "spec": deployment()["spec"]["template"]["spec"],
                    "status": {
                        "phase": "Running",
                        "startTime": started,
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
                        "containerStatuses": [
                            {"name": "app", "containerID": f"docker://{cid}", "state": {"running": {}}}
                        ],
                    },
                }
            )
        return out

    def deployment(self) -> Obj:
        found = self.store.get(ObjectKey("Deployment", "default", "web"))
        assert found is not None
        return found

    def hpa(self) -> Obj:
        found = self.store.get(ObjectKey("HorizontalPodAutoscaler", "default", "web"))
        assert found is not None
        return found

    def run_for(self, seconds: float, cores_per_pod: float) -> None:
        """Passes every 2 s (as the manager's resync) with every pod using ``cores_per_pod``."""
        end = self.now + seconds
        while self.now < end:
            self.now += 2
            for cid in self.cpu:
                self.cpu[cid] += int(cores_per_pod * 2e9)
            asyncio.run(self.controller.reconcile())


def test_busy_pods_scale_the_target_and_the_status_says_why(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.engine.apply([deployment(), hpa()])
    w.run_for(20, cores_per_pod=0.2)  # 200 % of a 100m request against a 50 % target
    # Default behaviour: up to max(2 × current, 4) at once → 4 (ceil(1 × 200/50)).
    assert w.deployment()["spec"]["replicas"] == 4 and w.pokes >= 1
    status = w.hpa()["status"]
    assert status["desiredReplicas"] == 4 and status["currentReplicas"] == 1 and "lastScaleTime" in status
    (metric,) = status["currentMetrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["current"]["averageUtilization"] == 200
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["AbleToScale"]["status"] == "True" and conditions["ScalingActive"]["status"] == "True"
    assert all("lastTransitionTime" in c for c in conditions.values())
    (event,) = [
        e for e in w.store.events("default", "HorizontalPodAutoscaler", "web") if e.reason == "SuccessfulRescale"
    ]
    assert event.message.startswith("New size: 4; reason: cpu resource utilization")


def test_scale_down_waits_for_its_stabilization_window_even_across_a_restart(tmp_path: Path) -> None:
    w = World(tmp_path)
    down = {"stabilizationWindowSeconds": 60, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    w.engine.apply([deployment(replicas=4), hpa(scaleDown=down)])
    w.run_for(20, cores_per_pod=0.05)  # exactly at target: no change
    assert w.deployment()["spec"]["replicas"] == 4
    w.run_for(30, cores_per_pod=0.0)  # idle, but the window still holds the earlier 4
    assert w.deployment()["spec"]["replicas"] == 4
    w.controller = w.make_controller()  # a server restart: the history is in the status
    w.run_for(40, cores_per_pod=0.0)
    assert w.deployment()["spec"]["replicas"] == 1


def test_a_missing_target_or_a_pod_without_requests_is_reported_not_scaled(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.engine.apply([hpa(target="nosuch")])
    w.run_for(20, cores_per_pod=0.2)
    conditions = {c["type"]: c for c in w.hpa()["status"]["conditions"]}
    assert (
        conditions["AbleToScale"]["reason"] == "FailedGetScale"
        and "'nosuch' not found" in conditions["AbleToScale"]["message"]
    )
    assert any(e.reason == "FailedGetScale" for e in w.store.events("default"))


def test_no_decision_before_two_samples_and_samples_are_spaced(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.engine.apply([deployment(), hpa()])
    calls: list[str] = []
    stats = w.controller.stats

    async def counted(container_id: str) -> Sample | None:
        calls.append(container_id)
        return await stats(container_id)

    w.controller.stats = counted
    w.run_for(2, cores_per_pod=0.2)
    assert "status" not in w.hpa() or not w.hpa()["status"].get("currentMetrics")
    w.run_for(18, cores_per_pod=0.2)
    # The first pod sampled every 6 s (the first 2 s pass at least 5 s after the last), not every 2 s pass.
    assert calls.count("c0") == 4, calls
