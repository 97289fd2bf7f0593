"""HorizontalPodAutoscalers for real: CPU burned in the test app's containers, measured by the Engine, scales.

The test servers decide every 2 s (``FUNADE_HPA_SYNC_SECONDS``); everything else is as
Kubernetes does it: utilization against the pods' requests, the default scale-up limit,
a scale-down policy, the seed's own hpa.yaml as written.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import Funade, is_ready
from tests.integration.test_local_target import deployment
from tests.integration.test_services import local_port, service

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
V1 = "funade-testapp:1.0.0"
SEED_HPA = Path(__file__).resolve().parents[3] / "shared" / "seed-examples" / "k8s" / "base" / "hpa.yaml"


def burning(name: str) -> Obj:
    """The test app with a small CPU request, so a little /burn load is a high utilization."""
    obj = deployment(name, V1, replicas=1)
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "20m", "memory": "16Mi"}}
    return obj


def autoscaler(name: str, **spec: Any) -> Obj:
    target = {"type": "Utilization", "averageUtilization": 50}
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1,
        "maxReplicas": 3,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        **spec,
    }
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": body}


class Burn:
    """A client thread asking for 10 ms of CPU at a time through the Service, until stopped (at most 120 s)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            for _ in range(20_000):
                if self._stop.is_set():
                    return
                try:
                    if client.get(f"http://127.0.0.1:{self.port}/burn?ms=10").status_code == 200:
                        self.answered += 1
                except httpx.HTTPError:
                    pass
                self._stop.wait(0.005)

    def __enter__(self) -> Burn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def replicas(funade: Funade, ns: str, name: str) -> int:
    return int(funade.deployment(ns, name)["spec"]["replicas"])


def test_cpu_load_scales_out_to_max_and_idleness_scales_back_in(funade: Funade, ns: str) -> None:
    down = {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    objs = (burning("burner"), service("burner"), autoscaler("burner", behavior={"scaleDown": down}))
    r = funade.apply(ns, *objs, args=("--wait",))
    assert r.code == 0, r.output
    port = local_port(funade, ns, "burner")

    with Burn(port) as load:
        funade.wait_until(lambda: replicas(funade, ns, "burner") == 3, 90, "scaled out to maxReplicas", namespace=ns)
        ready = lambda: len([p for p in funade.pods(ns, "app=burner") if is_ready(p)]) == 3  # noqa: E731
        funade.wait_until(ready, 60, "3 ready pods", namespace=ns)
        table = funade.cli("get", "hpa", "burner", "-n", ns)
        assert table.code == 0 and "Deployment/burner" in table.stdout and "/50%" in table.stdout, table.output
        assert load.answered > 0
    hpa = funade.obj("HorizontalPodAutoscaler", ns, "burner")
    status = hpa["status"]
    assert status["desiredReplicas"] == 3 and "lastScaleTime" in status, status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ScalingLimited"]["reason"] == "TooManyReplicas", conditions  # wanted more than 3
    rescales = [e for e in funade.events(ns) if e["reason"] == "SuccessfulRescale"]
    assert rescales and "above target" in rescales[0]["message"], rescales

    # Idle: one decision at a time down to minReplicas (stabilization 0, 100 % per 15 s).
    funade.wait_until(lambda: replicas(funade, ns, "burner") == 1, 90, "scaled back in to minReplicas", namespace=ns)
    funade.wait_until(lambda: len(funade.pods(ns)) == 1, 60, "one pod left", namespace=ns)

    # A re-apply with the manifest's replicas: the autoscaler's count stays, and the apply says so.
    funade.cli("scale", "deployment", "burner", "-n", ns, "--replicas", "2")
    again = funade.apply(ns, burning("burner"))
    assert again.code == 0 and "left to HorizontalPodAutoscaler burner" in again.output, again.output


def test_the_seeds_hpa_yaml_runs_as_written(funade: Funade, ns: str) -> None:
    seed = yaml.safe_load(SEED_HPA.read_text())
    app = burning("myapp")
    app["spec"]["replicas"] = 3
    r = funade.apply(ns, app, seed, args=("--wait",))
    assert r.code == 0, r.output
    shown = funade.wait_until(
        lambda: (out := funade.cli("get", "hpa", "myapp", "-n", ns, "-o", "json")).code == 0
        and json.loads(out.stdout).get("status", {}).get("currentMetrics")
        and json.loads(out.stdout),
        60,
        "the seed's autoscaler measuring cpu and memory",
        namespace=ns,
    )
    names = {m["resource"]["name"] for m in shown["status"]["currentMetrics"]}
    assert names == {"cpu", "memory"}, shown["status"]
    # Idle pods far below 70 % cpu / 80 % memory, but minReplicas is 3: it stays at 3, limited.
    assert replicas(funade, ns, "myapp") == 3
    conditions = {c["type"]: c for c in shown["status"]["conditions"]}
    assert conditions["ScalingActive"]["status"] == "True", conditions
