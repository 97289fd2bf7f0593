"""Argo Rollouts on the local target, for real: pods on Docker, HAProxy weights, a real Prometheus.

A canary walks its weights under load without losing a request; a version serving 20 %
errors is aborted by the seed's success-rate analysis and traffic goes back to stable;
pods that never become ready are aborted by the progress deadline; blue-green previews
the new version on its own Service and switches on promote.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Funade, wait_until
from tests.integration.test_local_target import app_container
from tests.integration.test_services import Load, get, local_port, service

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
V1, V2, BROKEN = "funade-testapp:1.0.0", "funade-testapp:2.0.0", "funade-testapp:3.0.0"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argo"


def rollout(name: str, image: str, strategy: Obj, *, env: dict[str, str] | None = None, **spec: Any) -> Obj:
    """The seed's rollout.yaml shape around the test app (readiness every second)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": spec.pop("replicas", 3),
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [app_container(image, env)]},
            },
            "strategy": strategy,
            **spec,
        },
    }


def canary(name: str, steps: list[Obj], **extra: Any) -> Obj:
    return {
        "canary": {
            "canaryService": f"{name}-canary",
            "stableService": f"{name}-stable",
            "trafficRouting": {"nginx": {"stableIngress": f"{name}-ingress"}},
            "steps": steps,
            **extra,
        }
    }


def status(funade: Funade, ns: str, name: str) -> Obj:
    return dict(funade.obj("Rollout", ns, name).get("status") or {})


def phase_is(funade: Funade, ns: str, name: str, phase: str, timeout: float = 90) -> Obj:
    return funade.wait_until(
        lambda: (s := status(funade, ns, name)).get("phase") == phase and s,
        timeout,
        f"rollout {name} {phase}",
        namespace=ns,
    )


def versions(port: int, n: int = 200) -> Counter[str]:
    return Counter(get(port).text.split(" ")[0] for _ in range(n))


def test_canary_walks_its_weights_under_load_without_a_failed_request(funade: Funade, ns: str) -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 75}, {"pause": {"duration": "2s"}}]
    objs = [
        rollout("shop", V1, canary("shop", steps)),
        service("shop-stable", {"app": "shop"}),
        service("shop-canary", {"app": "shop"}),
    ]
    assert funade.apply(ns, *objs).code == 0
    phase_is(funade, ns, "shop", "Healthy")
    port = local_port(funade, ns, "shop-stable")
    wait_until(lambda: get(port).status_code == 200, 30, "the stable Service answers")
    with Load(port) as load:
        assert funade.apply(ns, rollout("shop", V2, canary("shop", steps))).code == 0
        st = phase_is(funade, ns, "shop", "Paused")
        assert st["currentStepIndex"] == 1 and st["canary"]["weights"]["canary"]["weight"] == 25
        seen = versions(port)
        # 25 % of requests to the canary, give or take sampling noise over 200 requests.
        assert 0.15 < seen["version=2.0.0"] / 200 < 0.35, seen
        r = funade.cli("rollout", "get", "shop", "-n", ns)
        assert r.code == 0 and "Canary" in r.stdout and "1/4" in r.stdout and "canary 25%" in r.stdout, r.output
        assert funade.cli("rollout", "promote", "shop", "-n", ns).code == 0
        st = phase_is(funade, ns, "shop", "Healthy", 120)
        assert st["stableRS"] == st["currentPodHash"]
    # Healthy is written before the services controller's next pass moves the data plane: wait for it.
    funade.wait_until(lambda: versions(port, 50) == {"version=2.0.0": 50}, 30, "only v2 answers", namespace=ns)
    assert load.failures == {}, f"failed requests during the canary: {load.outcomes}"
    assert load.bodies["version=1.0.0"] > 0 and load.bodies["version=2.0.0"] > 0


def test_a_bad_canary_is_aborted_by_the_seed_analysis_and_traffic_returns_to_stable(funade: Funade, ns: str) -> None:
    template = yaml.safe_load((FIXTURES / "analysis-template.yaml").read_text())
    metric = template["spec"]["metrics"][0]
    metric.update(interval="2s", count=6)  # the seed's template at a test's cadence
    # A 5 s window after a 10 s pause: stale series of the stable pods, scraped under the canary
    # Service's label before this update, must not dilute the canary's errors (as in the demo).
    metric["provider"]["prometheus"]["query"] = metric["provider"]["prometheus"]["query"].replace("[5m]", "[5s]")
    steps = [
        {"setWeight": 50},
        {"pause": {"duration": "10s"}},  # as the seed pauses before analysing: the canary's series need samples
        {
            "analysis": {
                "templates": [{"templateName": "success-rate"}],
                "args": [{"name": "service-name", "value": "bad-canary"}],
            }
        },
        {"setWeight": 100},
    ]
    canary_svc = service("bad-canary", {"app": "bad"})
    canary_svc["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    objs = [template, rollout("bad", V1, canary("bad", steps)), service("bad-stable", {"app": "bad"}), canary_svc]
    assert funade.apply(ns, *objs).code == 0
    phase_is(funade, ns, "bad", "Healthy")
    port = local_port(funade, ns, "bad-stable")
    wait_until(lambda: get(port).status_code == 200, 30, "the stable Service answers")
    with Load(port) as load:
        assert funade.apply(ns, rollout("bad", V2, canary("bad", steps), env={"ERROR_RATE": "20"})).code == 0
        st = phase_is(funade, ns, "bad", "Degraded", 120)
        assert st["abort"] is True
        assert st["message"].startswith("aborted: running the stable revision, reason "), st["message"]
        assert "success-rate" in st["message"], st["message"]
        # Traffic is back on stable at once.
        funade.wait_until(lambda: versions(port, 40) == {"version=1.0.0": 40}, 30, "only v1 answers", namespace=ns)
    runs = funade.get("/v1/objects/AnalysisRun", namespace=ns)["items"]
    (run,) = runs
    assert run["status"]["phase"] == "Failed"
    assert run["status"]["metricResults"][0]["failed"] >= 1
    assert load.outcomes["200"] > 0
    assert funade.cli("rollout", "promote", "bad", "-n", ns).code == 1  # aborted: retry, not promote


def test_pods_that_never_become_ready_are_aborted_by_the_progress_deadline(funade: Funade, ns: str) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    objs = [
        rollout("stuck", V1, canary("stuck", steps), progressDeadlineSeconds=10, progressDeadlineAbort=True),
        service("stuck-stable", {"app": "stuck"}),
        service("stuck-canary", {"app": "stuck"}),
    ]
    assert funade.apply(ns, *objs).code == 0
    phase_is(funade, ns, "stuck", "Healthy")
    broken = rollout("stuck", BROKEN, canary("stuck", steps), progressDeadlineSeconds=10, progressDeadlineAbort=True)
    assert funade.apply(ns, broken).code == 0
    st = phase_is(funade, ns, "stuck", "Degraded", 90)
    assert "progress deadline exceeded" in st["message"], st["message"]
    port = local_port(funade, ns, "stuck-stable")
    assert versions(port, 20) == {"version=1.0.0": 20}


def test_blue_green_previews_aborts_retries_then_switches_on_promote(funade: Funade, ns: str) -> None:
    strategy = {
        "blueGreen": {
            "activeService": "bg-active",
            "previewService": "bg-preview",
            "autoPromotionEnabled": False,
            "scaleDownDelaySeconds": 5,
        }
    }
    objs = [
        rollout("bg", V1, strategy, replicas=2),
        service("bg-active", {"app": "bg"}),
        service("bg-preview", {"app": "bg"}),
    ]
    assert funade.apply(ns, *objs).code == 0
    phase_is(funade, ns, "bg", "Healthy")
    active, preview = local_port(funade, ns, "bg-active"), local_port(funade, ns, "bg-preview")
    wait_until(lambda: get(active).status_code == 200, 30, "the active Service answers")
    with Load(active) as load:
        assert funade.apply(ns, rollout("bg", V2, copy.deepcopy(strategy), replicas=2)).code == 0
        phase_is(funade, ns, "bg", "Paused")
        funade.wait_until(lambda: versions(preview, 10) == {"version=2.0.0": 10}, 30, "preview serves v2", namespace=ns)
        assert versions(active, 20) == {"version=1.0.0": 20}
        # Abort: the active Service never moved; the rollout says so. Retry previews again.
        assert funade.cli("rollout", "abort", "bg", "-n", ns).code == 0
        st = phase_is(funade, ns, "bg", "Degraded")
        assert st["message"].startswith("aborted: running the stable revision"), st["message"]
        assert versions(active, 20) == {"version=1.0.0": 20}
        assert funade.cli("rollout", "retry", "bg", "-n", ns).code == 0
        phase_is(funade, ns, "bg", "Paused")
        assert funade.cli("rollout", "promote", "bg", "-n", ns).code == 0
        phase_is(funade, ns, "bg", "Healthy", 90)
        funade.wait_until(lambda: versions(active, 20) == {"version=2.0.0": 20}, 30, "active serves v2", namespace=ns)
    assert load.failures == {}, f"failed requests across the switch: {load.outcomes}"


def test_a_rollout_with_a_typo_is_refused_naming_the_field(funade: Funade, ns: str) -> None:
    bad = rollout("typo", V1, canary("typo", [{"setWeight": 10}]))
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    r = funade.apply(ns, bad)
    assert r.code != 0
    assert "spec.template.spec.containers[0].imagee" in r.output, r.output
    assert funade.find("Rollout", ns, "typo") is None


def test_a_job_metric_runs_a_pod_to_completion(funade: Funade, ns: str) -> None:
    """Argo's job provider: Successful when the Job completes, Failed once its backoffLimit is spent."""

    def run(name: str, script: str) -> Obj:
        container = {"name": "check", "image": V1, "command": ["/bin/sh", "-c", script]}
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"name": name},
            "spec": {
                "metrics": [
                    {
                        "name": "smoke",
                        "provider": {
                            "job": {"spec": {"backoffLimit": 1, "template": {"spec": {"containers": [container]}}}}
                        },
                    }
                ]
            },
        }

    assert funade.apply(ns, run("job-ok", "exit 0"), run("job-bad", "echo broken; exit 3")).code == 0

    def phase(name: str) -> str | None:
        return (funade.obj("AnalysisRun", ns, name).get("status") or {}).get("phase")

    funade.wait_until(lambda: phase("job-ok") == "Successful", 90, "the good job's run Successful", namespace=ns)
    funade.wait_until(lambda: phase("job-bad") == "Failed", 90, "the bad job's run Failed", namespace=ns)
    bad = funade.obj("AnalysisRun", ns, "job-bad")["status"]["metricResults"][0]
    assert "BackoffLimitExceeded (backoffLimit 1)" in bad["measurements"][-1]["message"], bad
    funade.wait_until(lambda: not funade.pods(ns, "analysisrun"), 30, "the job pods removed", namespace=ns)
    assert not funade.get("/v1/objects/Job", namespace=ns)["items"]  # the Jobs too, once they answered
