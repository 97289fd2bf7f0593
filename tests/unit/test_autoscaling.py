"""HPA decisions must match the Kubernetes HorizontalPodAutoscaler controller's.

The facts come from ``pkg/controller/podautoscaler`` (horizontal.go, replica_calculator.go,
metrics/utilization.go), the autoscaling API defaults, and the HPA section of the
progressive-delivery reference. Every number below was worked out by hand from those rules.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.core import autoscaling
from funade.core.autoscaling import Decision, History, HpaError, PodSample, Policy, Rules

pytestmark = pytest.mark.unit

SEED_HPA = Path(__file__).resolve().parents[1] / "fixtures" / "policy" / "seed-hpa.yaml"

NOW = 1_000_000.0
LONG_AGO = NOW - 3600.0  # started long before the cpu initialization period


# --- builders -------------------------------------------------------------------------------


def hpa(
    *metrics: dict[str, Any],
    min_replicas: int | None = 1,
    max_replicas: int = 10,
    behavior: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": max_replicas,
        "metrics": list(metrics),
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if behavior is not None:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": spec,
    }


def resource(name: str = "cpu", utilization: int | None = 50, average: str | None = None) -> dict[str, Any]:
    target: dict[str, Any] = (
        {"type": "AverageValue", "averageValue": average}
        if average is not None
        else {"type": "Utilization", "averageUtilization": utilization}
    )
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def pods_metric(name: str = "requests_per_second") -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {"metric": {"name": name}, "target": {"type": "AverageValue", "averageValue": "10"}},
    }


# No stabilization and rate policies that never bind: only the metric arithmetic and the
# min/max bounds shape the result.
FREE = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 0},
}


def spec_of(*metrics: dict[str, Any], **kwargs: Any) -> autoscaling.Spec:
    kwargs.setdefault("behavior", FREE)
    return autoscaling.parse(hpa(*(metrics or (resource(),)), **kwargs))


def pod(
    name: str,
    cpu: float | None = None,
    *,
    request: float | None = 1.0,
    memory: float | None = None,
    memory_request: float | None = None,
    ready: bool = True,
    started: float | None = LONG_AGO,
    changed: float | None = LONG_AGO + 60,
    phase: str = "Running",
    terminating: bool = False,
) -> PodSample:
    """A one-container pod ("app"); cpu in cores, memory in bytes; no usage means no metrics."""
    requests: dict[str, float] = {}
    if request is not None:
        requests["cpu"] = request
    if memory_request is not None:
        requests["memory"] = memory_request
    usage: dict[str, float] = {}
    if cpu is not None:
        usage["cpu"] = cpu
    if memory is not None:
        usage["memory"] = memory
    return PodSample(
        name=name,
        ready=ready,
        started_at=started,
        ready_changed_at=changed,
        requests={"app": requests},
        usage={"app": usage} if usage else None,
        phase=phase,
        terminating=terminating,
    )


def busy(count: int, cpu: float, request: float = 1.0) -> list[PodSample]:
    return [pod(f"web-{i}", cpu, request=request) for i in range(count)]


def run(
    spec: autoscaling.Spec,
    current: int,
    pods: list[PodSample],
    *,
    now: float = NOW,
    history: History | None = None,
) -> Decision:
    return autoscaling.decide(spec, current, pods, now, History() if history is None else history)


def condition(decision: Decision, kind: str) -> dict[str, str]:
    found = [c for c in decision.conditions if c["type"] == kind]
    assert len(found) == 1, decision.conditions
    return found[0]


def reasons(decision: Decision) -> dict[str, str]:
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in decision.conditions}


# --- one metric: ratio, tolerance, ceil ----------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (0.54, 3),  # 54 % of a 50 % target: ratio 1.08, within the 10 % tolerance
        (0.55, 3),  # ratio exactly 1.1: the tolerance band is inclusive
        (0.56, 4),  # ratio 1.12: ceil(1.12 × 3) = ceil(3.36) = 4
        (0.46, 3),  # ratio 0.92: within
        (0.45, 3),  # ratio exactly 0.9: within
        (0.44, 3),  # ratio 0.88: ceil(0.88 × 3) = ceil(2.64) = 3, no change after all
        (0.30, 2),  # ratio 0.6: ceil(1.8) = 2
    ],
)
def test_tolerance_and_ceil(usage: float, expected: int) -> None:
    decision = run(spec_of(), 3, busy(3, usage))
    assert decision.desired == expected
    assert decision.scaled is (expected != 3)


def test_scale_up_rounds_up() -> None:
    decision = run(spec_of(), 4, busy(4, 0.6))  # 60 / 50 = 1.2 → ceil(4.8) = 5
    assert (decision.desired, decision.scaled) == (5, True)
    assert decision.reason == "cpu resource utilization (percentage of request) above target"
    assert reasons(decision) == {
        "AbleToScale": "True/SucceededRescale",
        "ScalingActive": "True/ValidMetricFound",
        "ScalingLimited": "False/DesiredWithinRange",
    }
    assert (
        condition(decision, "AbleToScale")["message"] == "the HPA controller was able to update the target scale to 5"
    )


def test_no_change_reports_ready_for_new_scale() -> None:
    decision = run(spec_of(), 3, busy(3, 0.5))
    assert (decision.desired, decision.scaled, decision.reason) == (3, False, "")
    assert reasons(decision)["AbleToScale"] == "True/ReadyForNewScale"
    assert condition(decision, "ScalingActive")["message"] == (
        "the HPA was able to successfully calculate a replica count from "
        "cpu resource utilization (percentage of request)"
    )


def test_utilization_is_truncated_to_a_whole_percent() -> None:
    # 3 × 337m of 3 × 1 core: 33.7 % → 33 % (integer division, not rounding), ratio 0.66.
    decision = run(spec_of(), 3, busy(3, 0.337))
    assert decision.current_metrics == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 33, "averageValue": "337m"}}}
    ]
    assert decision.desired == 2  # ceil(0.66 × 3) = ceil(1.98); 34 % would give 3


def test_usage_is_converted_to_millicores_without_float_noise() -> None:
    # 2.007 × 1000 is 2007.0000000000002 in float64; the sample means 2007m, not 2008m.
    decision = run(spec_of(resource(average="2")), 1, [pod("web-0", 2.007)])
    assert decision.current_metrics[0]["resource"] == {"name": "cpu", "current": {"averageValue": "2007m"}}


def test_ready_pod_count_not_current_replicas_drives_the_formula() -> None:
    # The target asks for 6 but only 3 pods exist: ceil(2.0 × 3) = 6, not 12.
    decision = run(spec_of(), 6, busy(3, 1.0))
    assert decision.desired == 6
    assert decision.scaled is False


def test_average_value_target() -> None:
    spec = spec_of(resource(average="200m"))
    decision = run(spec, 2, busy(2, 0.35))  # 350m / 200m = 1.75 → ceil(3.5) = 4
    assert decision.desired == 4
    assert decision.current_metrics == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "350m"}}}
    ]
    assert condition(decision, "ScalingActive")["message"].endswith("from cpu resource")


def test_average_value_needs_no_requests() -> None:
    spec = spec_of(resource(average="200m"))
    decision = run(spec, 2, [pod(f"web-{i}", 0.1, request=None) for i in range(2)])
    assert reasons(decision)["ScalingActive"] == "True/ValidMetricFound"
    assert decision.desired == 1  # 100m / 200m = 0.5 → ceil(1.0)


def test_memory_average_value_is_reported_as_a_decimal_quantity() -> None:
    spec = spec_of(resource("memory", average="256Mi"))
    pods = [pod(f"web-{i}", memory=float(2**28), request=None) for i in range(2)]
    decision = run(spec, 2, pods)
    assert decision.desired == 2  # exactly on target
    assert decision.current_metrics == [
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "268435456"}}}
    ]


def test_memory_utilization() -> None:
    gib = float(2**30)
    spec = spec_of(resource("memory", 50))
    pods = [pod(f"web-{i}", memory=0.9 * gib, request=None, memory_request=gib) for i in range(2)]
    decision = run(spec, 2, pods)  # 90 % of a 50 % target → ceil(1.8 × 2) = 4
    assert decision.desired == 4
    assert decision.current_metrics[0]["resource"] == {
        "name": "memory",
        "current": {"averageUtilization": 90, "averageValue": "966367641600m"},
    }


# --- several metrics -------------------------------------------------------------------------


def test_largest_proposal_wins() -> None:
    gib = float(2**30)
    spec = spec_of(resource("cpu", 50), resource("memory", 50))
    pods = [pod(f"web-{i}", 0.6, memory=0.9 * gib, memory_request=gib) for i in range(4)]
    # cpu: 1.2 → 5; memory: 1.8 → ceil(7.2) = 8.
    decision = run(spec, 4, pods)
    assert decision.desired == 8
    assert decision.reason == "memory resource utilization (percentage of request) above target"
    assert [m["resource"]["name"] for m in decision.current_metrics] == ["cpu", "memory"]  # type: ignore[index]


def test_all_metrics_below_target() -> None:
    gib = float(2**30)
    spec = spec_of(resource("cpu", 50), resource("memory", 50))
    pods = [pod(f"web-{i}", 0.1, memory=0.2 * gib, memory_request=gib) for i in range(4)]
    decision = run(spec, 4, pods)  # cpu 0.2 → 1, memory 0.4 → ceil(1.6) = 2
    assert decision.desired == 2
    assert decision.reason == "All metrics below target"


# --- pods without metrics, unready pods --------------------------------------------------------


def test_missing_pods_count_as_zero_on_scale_up() -> None:
    # Three pods at 100 % of 1 core, one pod without metrics requesting 2 cores; target 50 %.
    # Ratio over measured pods 2.0 (would give 6). With the missing pod at 0: 3000m / 5000m =
    # 60 % → 1.2 → ceil(1.2 × 4) = ceil(4.8) = 5.
    pods = [*busy(3, 1.0), pod("web-3", None, request=2.0)]
    assert run(spec_of(), 4, pods).desired == 5


def test_missing_pods_that_flip_the_direction_keep_the_current_count() -> None:
    # Measured pods say 1.2 (scale up); counting the missing pod at 0 says 45 % → 0.9.
    pods = [*busy(3, 0.6), pod("web-3", None)]
    decision = run(spec_of(), 4, pods)
    assert (decision.desired, decision.scaled) == (4, False)


def test_missing_pods_count_as_their_request_on_scale_down() -> None:
    # 3 pods at 10 % (ratio 0.2, would give 1); the missing pod counts as 100 % of its
    # request: 1300m / 4000m = 32 % → 0.64 → ceil(2.56) = 3.
    pods = [*busy(3, 0.1), pod("web-3", None)]
    assert run(spec_of(), 4, pods).desired == 3


def test_missing_pods_count_as_the_target_when_it_is_above_100_percent() -> None:
    # Target 200 %: one pod at 90 % (ratio 0.45), two without metrics filled at 200 % of
    # request: 4900m / 3000m = 163 % → 0.815 → ceil(2.445) = 3, i.e. no change. At 100 %
    # they would give 96 % → 0.48 → ceil(1.44) = 2.
    pods = [pod("web-0", 0.9), pod("web-1", None), pod("web-2", None)]
    assert run(spec_of(resource("cpu", 200)), 3, pods).desired == 3


def test_missing_pods_count_as_the_target_for_average_values() -> None:
    # 3 pods at 100m of a 500m target (0.2); the missing pod counts as 500m:
    # (300 + 500) / 4 = 200m → 0.4 → ceil(1.6) = 2.
    pods = [*busy(3, 0.1), pod("web-3", None)]
    assert run(spec_of(resource(average="500m")), 4, pods).desired == 2


def never_ready(name: str, cpu: float) -> PodSample:
    return pod(name, cpu, ready=False, changed=LONG_AGO + 10)  # readiness changed 10 s after start


def test_unready_pods_count_as_zero_on_cpu_scale_up() -> None:
    # Ready pods at 100 % (2.0); the pod that never became ready counts as 0:
    # 3000m / 4000m = 75 % → 1.5 → ceil(6.0) = 6. Counting it as ready would give 8.
    pods = [*busy(3, 1.0), never_ready("web-3", 1.0)]
    assert run(spec_of(), 4, pods).desired == 6


def test_unready_pods_weigh_by_their_request() -> None:
    # The unready pod requests 2 cores: 3000m / 5000m = 60 % → 1.2 → ceil(1.2 × 4) = 5.
    pods = [*busy(3, 1.0), pod("web-3", 1.0, request=2.0, ready=False, changed=LONG_AGO + 10)]
    assert run(spec_of(), 4, pods).desired == 5


def test_refilled_pods_never_turn_load_into_a_scale_down() -> None:
    # The target asks for 6 but 3 pods exist, one without metrics. Measured: 2.0; with the
    # missing pod at 0: 66 % → 1.32 → ceil(1.32 × 3) = 4, fewer than 6 under load: keep 6.
    pods = [*busy(2, 1.0), pod("web-2", None)]
    decision = run(spec_of(), 6, pods)
    assert (decision.desired, decision.scaled) == (6, False)


def test_unready_pods_are_left_out_on_scale_down() -> None:
    pods = [*busy(3, 0.1), never_ready("web-3", 1.0)]  # 0.2 over the 3 ready pods → ceil(0.6) = 1
    assert run(spec_of(), 4, pods).desired == 1


def test_readiness_does_not_matter_for_memory() -> None:
    gib = float(2**30)
    spec = spec_of(resource("memory", 50))
    pods = [pod(f"web-{i}", memory=gib, request=None, memory_request=gib) for i in range(3)]
    pods.append(pod("web-3", memory=gib, request=None, memory_request=gib, ready=False, changed=LONG_AGO + 10))
    assert run(spec, 4, pods).desired == 8  # all four count: 2.0 × 4 (cpu would give 6)


def test_pod_that_was_ready_before_is_counted_after_the_initialization_period() -> None:
    # Not ready now, but its readiness changed long after the first 30 s: it had been ready.
    pods = [*busy(3, 1.0), pod("web-3", 1.0, ready=False, changed=NOW - 100)]
    assert run(spec_of(), 4, pods).desired == 8


@pytest.mark.parametrize(
    ("ready", "changed_ago", "expected"),
    [
        (True, 20.0, 8),  # a whole 15 s window has passed since it became ready: counted
        (True, 5.0, 6),  # became ready 5 s ago: the sample may predate readiness
        (False, 100.0, 6),  # still starting and not ready
    ],
)
def test_cpu_initialization_period(ready: bool, changed_ago: float, expected: int) -> None:
    starting = pod("web-3", 1.0, ready=ready, started=NOW - 60, changed=NOW - changed_ago)
    assert run(spec_of(), 4, [*busy(3, 1.0), starting]).desired == expected


def test_pod_without_ready_condition_is_unready_for_cpu() -> None:
    assert run(spec_of(), 4, [*busy(3, 1.0), pod("web-3", 1.0, changed=None)]).desired == 6


def test_pending_pods_are_unready_and_failed_or_terminating_pods_ignored() -> None:
    pods = [
        *busy(3, 1.0),
        pod("web-3", 1.0, phase="Pending"),  # unready: counts as 0 on scale-up
        pod("web-4", 5.0, phase="Failed"),  # ignored entirely
        pod("web-5", 5.0, terminating=True),  # ignored entirely
    ]
    assert run(spec_of(), 4, pods).desired == 6


def test_every_pod_unready_is_an_error() -> None:
    pods = [never_ready(f"web-{i}", 1.0) for i in range(2)]
    decision = run(spec_of(), 2, pods)
    assert reasons(decision)["ScalingActive"] == "False/FailedGetResourceMetric"
    assert (
        "did not receive metrics for targeted pods (pods might be unready)"
        in condition(decision, "ScalingActive")["message"]
    )


def test_no_metrics_at_all_is_an_error() -> None:
    decision = run(spec_of(), 2, [pod("web-0", None), pod("web-1", None)])
    assert condition(decision, "ScalingActive")["message"] == (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: "
        "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    )
    assert decision.desired == 2
    assert decision.scaled is False


# --- requests ---------------------------------------------------------------------------------


def test_missing_request_makes_the_metric_invalid() -> None:
    pods = [*busy(2, 0.9), pod("web-2", 0.9, request=None)]
    decision = run(spec_of(), 3, pods)
    assert (decision.desired, decision.scaled) == (3, False)
    assert reasons(decision) == {
        "AbleToScale": "True/SucceededGetScale",
        "ScalingActive": "False/FailedGetResourceMetric",
    }
    assert "missing request for cpu in container app of Pod web-2" in condition(decision, "ScalingActive")["message"]
    assert decision.errors[-1].startswith("invalid metrics (1 invalid out of 1), first error is: ")


def test_a_request_is_needed_even_from_an_ignored_pod() -> None:
    pods = [*busy(2, 0.9), pod("web-2", None, request=None, phase="Failed")]
    assert reasons(run(spec_of(), 2, pods))["ScalingActive"] == "False/FailedGetResourceMetric"


def test_utilization_uses_summed_requests() -> None:
    # 900m of 1 core and 100m of 3 cores: 1000m / 4000m = 25 % → 0.5 → ceil(1.0) = 1.
    pods = [pod("web-0", 0.9, request=1.0), pod("web-1", 0.1, request=3.0)]
    assert run(spec_of(), 2, pods).desired == 1


# --- ContainerResource -------------------------------------------------------------------------


def two_containers(name: str, app: float, sidecar: float, *, sidecar_requests: bool = True) -> PodSample:
    return PodSample(
        name=name,
        ready=True,
        started_at=LONG_AGO,
        ready_changed_at=LONG_AGO + 60,
        requests={"app": {"cpu": 1.0}, "sidecar": {"cpu": 1.0} if sidecar_requests else {}},
        usage={"app": {"cpu": app}, "sidecar": {"cpu": sidecar}},
    )


CONTAINER_CPU = {
    "type": "ContainerResource",
    "containerResource": {
        "name": "cpu",
        "container": "app",
        "target": {"type": "Utilization", "averageUtilization": 50},
    },
}


def test_container_resource_looks_at_one_container() -> None:
    pods = [two_containers(f"web-{i}", 0.9, 0.0) for i in range(2)]
    decision = run(spec_of(CONTAINER_CPU), 2, pods)  # app at 90 % → 1.8 → ceil(3.6) = 4
    assert decision.desired == 4
    assert decision.current_metrics == [
        {
            "type": "ContainerResource",
            "containerResource": {
                "name": "cpu",
                "container": "app",
                "current": {"averageUtilization": 90, "averageValue": "900m"},
            },
        }
    ]
    assert decision.reason == "cpu container resource utilization (percentage of request) above target"
    # The whole pod is at 45 % of 2 cores: within tolerance of 50 %.
    assert run(spec_of(), 2, pods).desired == 2


def test_container_resource_ignores_other_containers_requests() -> None:
    pods = [two_containers(f"web-{i}", 0.9, 0.0, sidecar_requests=False) for i in range(2)]
    assert run(spec_of(CONTAINER_CPU), 2, pods).desired == 4
    assert reasons(run(spec_of(), 2, pods))["ScalingActive"] == "False/FailedGetResourceMetric"


def test_container_resource_for_an_unknown_container_fails() -> None:
    decision = run(spec_of(CONTAINER_CPU), 2, busy(2, 0.9))  # the pods' only container is "app"...
    assert decision.desired == 4  # ... so this works
    metric = copy.deepcopy(CONTAINER_CPU)
    metric["containerResource"]["container"] = "worker"
    decision = run(spec_of(metric), 2, busy(2, 0.9))
    assert reasons(decision)["ScalingActive"] == "False/FailedGetContainerResourceMetric"
    assert "container worker not present in metrics for pod web-0" in condition(decision, "ScalingActive")["message"]


# --- metrics the local target cannot read ------------------------------------------------------


def test_pods_metric_alone_disables_scaling() -> None:
    decision = run(spec_of(pods_metric()), 3, busy(3, 0.9))
    assert (decision.desired, decision.scaled) == (3, False)
    active = condition(decision, "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetPodsMetric")
    assert "the local target measures cpu and memory only" in active["message"]
    assert decision.current_metrics == []


def test_invalid_metric_does_not_stop_a_scale_up() -> None:
    decision = run(spec_of(resource(), pods_metric()), 3, busy(3, 0.9))  # cpu 1.8 → ceil(5.4) = 6
    assert (decision.desired, decision.scaled) == (6, True)
    assert reasons(decision)["ScalingActive"] == "True/ValidMetricFound"
    assert len(decision.errors) == 1
    assert decision.errors[0].startswith("failed to get pods metric value: unable to get metric requests_per_second")


def test_invalid_metric_does_not_stop_holding_steady() -> None:
    decision = run(spec_of(resource(), pods_metric()), 3, busy(3, 0.5))
    assert reasons(decision)["ScalingActive"] == "True/ValidMetricFound"
    assert decision.desired == 3


def test_invalid_metric_stops_a_scale_down() -> None:
    external = {
        "type": "External",
        "external": {"metric": {"name": "queue_depth"}, "target": {"type": "Value", "value": "30"}},
    }
    decision = run(spec_of(resource(), external), 4, busy(4, 0.1))  # cpu alone would give 1
    assert (decision.desired, decision.scaled) == (4, False)
    assert reasons(decision) == {
        "AbleToScale": "True/SucceededGetScale",
        "ScalingActive": "False/FailedGetExternalMetric",
    }
    assert decision.errors[-1].startswith(
        "invalid metrics (1 invalid out of 2), first error is: failed to get queue_depth"
    )
    assert len(decision.current_metrics) == 1  # the valid metric is still reported


def test_object_metric_is_reported_as_such() -> None:
    obj = {
        "type": "Object",
        "object": {
            "metric": {"name": "hits"},
            "describedObject": {"kind": "Ingress", "name": "main"},
            "target": {"type": "Value", "value": "10"},
        },
    }
    assert reasons(run(spec_of(obj), 2, busy(2, 0.5)))["ScalingActive"] == "False/FailedGetObjectMetric"


# --- stabilization ---------------------------------------------------------------------------


def test_scale_down_window_holds_the_highest_recent_recommendation() -> None:
    spec = spec_of(behavior={})  # API defaults: scale-down window 300 s, 100 % per 15 s
    first = run(spec, 5, busy(5, 0.5), now=NOW)
    assert (first.desired, first.scaled) == (5, False)

    quiet = run(spec, 5, busy(5, 0.1), now=NOW + 60, history=first.history)  # raw 1
    assert (quiet.desired, quiet.scaled) == (5, False)
    assert reasons(quiet)["AbleToScale"] == "True/ScaleDownStabilized"
    assert condition(quiet, "AbleToScale")["message"].startswith("recent recommendations were higher")

    # At 301 s the recommendations of t=0 (5, 5) have left the window; t=60 said 1.
    later = run(spec, 5, busy(5, 0.1), now=NOW + 301, history=quiet.history)
    assert (later.desired, later.scaled) == (1, True)
    assert later.reason == "All metrics below target"


def test_scale_down_window_boundary_is_exclusive() -> None:
    spec = spec_of(behavior={})
    first = run(spec, 5, busy(5, 0.5), now=NOW)
    held = run(spec, 5, busy(5, 0.1), now=NOW + 300, history=first.history)  # t=0 is not after the cutoff
    assert held.desired == 1


def test_scale_up_window_holds_the_lowest_recent_recommendation() -> None:
    spec = spec_of(behavior={"scaleUp": {"stabilizationWindowSeconds": 60}})
    first = run(spec, 2, busy(2, 1.5), now=NOW)  # raw ceil(3.0 × 2) = 6; the initial 2 holds it
    assert (first.desired, first.scaled) == (2, False)
    assert reasons(first)["AbleToScale"] == "True/ScaleUpStabilized"
    assert condition(first, "AbleToScale")["message"].startswith("recent recommendations were lower")

    second = run(spec, 2, busy(2, 1.5), now=NOW + 30, history=first.history)
    assert second.desired == 2

    third = run(spec, 2, busy(2, 1.5), now=NOW + 61, history=second.history)  # only 6s left in the window
    assert (third.desired, third.scaled) == (6, True)


def test_stabilization_keeps_the_current_count_between_the_limits() -> None:
    # Up window says at least 4, down window says at most 8: current 6 stays.
    spec = spec_of(behavior={"scaleUp": {"stabilizationWindowSeconds": 60}})
    history = History(recommendations=((NOW - 30, 4), (NOW - 20, 8)))
    assert run(spec, 6, busy(6, 0.25), history=history).desired == 6  # raw 3, held up by 4
    assert run(spec, 6, busy(6, 0.8333), history=history).desired == 6  # raw ceil(1.66 × 6) = 10, held by 4
    history = History(recommendations=((NOW - 30, 4), (NOW - 20, 5)))
    decision = run(spec, 6, busy(6, 0.25), history=history)  # raw 3: down window max is 5
    assert decision.desired == 5


def test_without_behavior_the_first_five_minutes_never_scale_down() -> None:
    spec = autoscaling.parse(hpa(resource()))  # no spec.behavior: the controller's older rules
    first = run(spec, 4, busy(4, 0.1), now=NOW)  # raw 1, but the initial recommendation is 4
    assert (first.desired, first.scaled) == (4, False)
    assert reasons(first)["AbleToScale"] == "True/ScaleDownStabilized"
    at_300 = run(spec, 4, busy(4, 0.1), now=NOW + 300, history=first.history)  # cutoff inclusive here
    assert at_300.desired == 4
    at_301 = run(spec, 4, busy(4, 0.1), now=NOW + 301, history=at_300.history)
    assert (at_301.desired, at_301.scaled) == (1, True)
    assert at_301.history.scale_events == ()  # events are only kept when behavior is set


# --- rate policies ---------------------------------------------------------------------------


def with_up(*policies: dict[str, Any], select: str | None = None) -> dict[str, Any]:
    rules: dict[str, Any] = {"stabilizationWindowSeconds": 0, "policies": list(policies)}
    if select is not None:
        rules["selectPolicy"] = select
    return {"scaleUp": rules, "scaleDown": {"stabilizationWindowSeconds": 0}}


def with_down(*policies: dict[str, Any], select: str | None = None) -> dict[str, Any]:
    rules: dict[str, Any] = {"stabilizationWindowSeconds": 0, "policies": list(policies)}
    if select is not None:
        rules["selectPolicy"] = select
    return {"scaleUp": {"stabilizationWindowSeconds": 0}, "scaleDown": rules}


def pods_policy(value: int, period: int = 60) -> dict[str, Any]:
    return {"type": "Pods", "value": value, "periodSeconds": period}


def percent_policy(value: int, period: int = 60) -> dict[str, Any]:
    return {"type": "Percent", "value": value, "periodSeconds": period}


def test_pods_policy_limits_scale_up_within_its_period() -> None:
    spec = spec_of(behavior=with_up(pods_policy(2)), max_replicas=20)
    first = run(spec, 3, busy(3, 2.0), now=NOW)  # raw 12
    assert (first.desired, first.scaled) == (5, True)
    assert reasons(first)["ScalingLimited"] == "True/ScaleUpLimit"
    assert first.history.scale_events == ((NOW, 2),)

    second = run(spec, 5, busy(5, 2.0), now=NOW + 30, history=first.history)  # period start: 5 - 2 = 3
    assert (second.desired, second.scaled) == (5, False)
    assert reasons(second)["ScalingLimited"] == "True/ScaleUpLimit"

    third = run(spec, 5, busy(5, 2.0), now=NOW + 61, history=second.history)  # the +2 left the period
    assert (third.desired, third.scaled) == (7, True)


def test_percent_scale_up_rounds_up() -> None:
    spec = spec_of(behavior=with_up(percent_policy(50)), max_replicas=20)
    assert run(spec, 3, busy(3, 2.0)).desired == 5  # ceil(3 × 1.5) = ceil(4.5)


def test_percent_limits_use_the_controllers_float_arithmetic() -> None:
    # 25 × (1 + 12/100) is 28.000000000000004 in float64, so ceil gives 29, as in Go.
    up = spec_of(behavior=with_up(percent_policy(12)), max_replicas=60)
    assert run(up, 25, busy(25, 2.0)).desired == 29
    # 10 × (1 - 80/100) is 1.9999999999999996, truncated to 1 (exact arithmetic would say 2).
    down = spec_of(behavior=with_down(percent_policy(80)))
    decision = run(down, 10, busy(10, 0.05))  # raw 1
    assert decision.desired == 1
    assert reasons(decision)["ScalingLimited"] == "False/DesiredWithinRange"


@pytest.mark.parametrize(("select", "expected"), [(None, 7), ("Max", 7), ("Min", 6), ("Disabled", 3)])
def test_scale_up_select_policy(select: str | None, expected: int) -> None:
    # From 3: Pods 4 → 7, Percent 100 → 6.
    spec = spec_of(behavior=with_up(pods_policy(4), percent_policy(100), select=select), max_replicas=20)
    decision = run(spec, 3, busy(3, 3.0))  # raw 18
    assert decision.desired == expected
    assert reasons(decision)["ScalingLimited"] == "True/ScaleUpLimit"


@pytest.mark.parametrize(("select", "expected"), [(None, 5), ("Max", 5), ("Min", 8), ("Disabled", 10)])
def test_scale_down_select_policy(select: str | None, expected: int) -> None:
    # From 10: Pods 2 → 8, Percent 50 → 5. Max means the biggest change, i.e. the fewest pods.
    spec = spec_of(behavior=with_down(pods_policy(2), percent_policy(50), select=select))
    decision = run(spec, 10, busy(10, 0.05))  # raw 1
    assert decision.desired == expected
    assert reasons(decision)["ScalingLimited"] == "True/ScaleDownLimit"


def test_percent_scale_down_truncates() -> None:
    spec = spec_of(behavior=with_down(percent_policy(10)), max_replicas=20)
    assert run(spec, 15, busy(15, 0.05)).desired == 13  # int(15 × 0.9) = int(13.5)


def test_default_scale_up_policies() -> None:
    spec = spec_of(behavior={}, max_replicas=50)
    assert run(spec, 3, busy(3, 5.0)).desired == 7  # max(3 + 4, ceil(3 × 2)) = 7
    assert run(spec, 10, busy(10, 5.0)).desired == 20  # max(14, 20)


def test_default_scale_down_policy_allows_all_the_way_to_min() -> None:
    spec = spec_of(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}, min_replicas=2)
    decision = run(spec, 10, busy(10, 0.05))  # raw 1; 100 % per 15 s would allow 0
    assert decision.desired == 2
    assert reasons(decision)["ScalingLimited"] == "True/TooFewReplicas"


def test_period_start_comes_from_recorded_scale_events() -> None:
    spec = spec_of(behavior=with_up(percent_policy(100)), max_replicas=50)
    recent = History(scale_events=((NOW - 30, 4),))  # 4 → 8 half a minute ago
    decision = run(spec, 8, busy(8, 2.0), history=recent)  # start 4 → at most 8
    assert (decision.desired, decision.scaled) == (8, False)
    assert reasons(decision)["ScalingLimited"] == "True/ScaleUpLimit"
    old = History(scale_events=((NOW - 60, 4),))  # exactly one period ago: outside
    assert run(spec, 8, busy(8, 2.0), history=old).desired == 16


def test_scale_downs_raise_the_period_start_of_scale_ups() -> None:
    spec = spec_of(behavior=with_up(pods_policy(2)), max_replicas=50)
    history = History(scale_events=((NOW - 10, -2),))  # 6 → 4 ten seconds ago
    assert run(spec, 4, busy(4, 2.0), history=history).desired == 8  # start 6, + 2


def test_scale_down_limit_counts_both_directions() -> None:
    spec = spec_of(behavior=with_down(pods_policy(3)))
    history = History(scale_events=((NOW - 20, -2), (NOW - 10, 1)))  # start = 8 - 1 + 2 = 9
    assert run(spec, 8, busy(8, 0.05), history=history).desired == 6


def test_a_spent_scale_up_budget_never_scales_down() -> None:
    # 0 → 10 ten seconds ago: period start 0, Pods 4 allows 4, below the current 10.
    spec = spec_of(behavior=with_up(pods_policy(4)), max_replicas=50)
    decision = run(spec, 10, busy(10, 2.0), history=History(scale_events=((NOW - 10, 10),)))
    assert (decision.desired, decision.scaled) == (10, False)
    assert reasons(decision)["ScalingLimited"] == "True/ScaleUpLimit"


def test_a_spent_scale_down_budget_never_scales_up() -> None:
    # 10 → 4 ten seconds ago: period start 10, Pods 2 stops at 8, above the current 4.
    spec = spec_of(behavior=with_down(pods_policy(2)))
    decision = run(spec, 4, busy(4, 0.05), history=History(scale_events=((NOW - 10, -6),)))
    assert (decision.desired, decision.scaled) == (4, False)
    assert reasons(decision)["ScalingLimited"] == "True/ScaleDownLimit"


def test_scale_events_are_recorded_with_their_sign() -> None:
    spec = spec_of(behavior=FREE)
    up = run(spec, 2, busy(2, 1.0))
    down = run(spec, 4, busy(4, 0.1), now=NOW + 1, history=up.history)
    assert down.history.scale_events == ((NOW, 2), (NOW + 1, -3))


# --- min / max -------------------------------------------------------------------------------


def test_max_replicas_caps_the_recommendation() -> None:
    decision = run(spec_of(max_replicas=6), 4, busy(4, 2.0))  # raw 16
    assert decision.desired == 6
    limited = condition(decision, "ScalingLimited")
    assert (limited["status"], limited["reason"]) == ("True", "TooManyReplicas")
    assert limited["message"] == "the desired replica count is more than the maximum replica count"


def test_min_replicas_floors_the_recommendation() -> None:
    decision = run(spec_of(min_replicas=3), 5, busy(5, 0.0))  # raw 0
    assert (decision.desired, decision.reason) == (3, "All metrics below target")
    assert reasons(decision)["ScalingLimited"] == "True/TooFewReplicas"


def test_current_count_above_max_is_brought_down_without_metrics() -> None:
    decision = run(spec_of(max_replicas=5), 8, [])
    assert (decision.desired, decision.scaled) == (5, True)
    assert decision.reason == "Current number of replicas above Spec.MaxReplicas"
    assert reasons(decision) == {"AbleToScale": "True/SucceededRescale"}
    assert decision.history.scale_events == ((NOW, -3),)


def test_current_count_below_min_is_brought_up() -> None:
    decision = run(spec_of(min_replicas=3), 1, [])
    assert (decision.desired, decision.reason) == (3, "Current number of replicas below Spec.MinReplicas")


def test_without_behavior_scale_up_is_limited_to_twice_or_four() -> None:
    spec = autoscaling.parse(hpa(resource(), max_replicas=20))
    small = run(spec, 1, busy(1, 5.0))  # raw 10; limit max(2, 4) = 4
    assert small.desired == 4
    assert reasons(small)["ScalingLimited"] == "True/ScaleUpLimit"
    larger = run(spec, 3, busy(3, 5.0))  # raw 30; limit 6
    assert larger.desired == 6
    capped = autoscaling.parse(hpa(resource(), max_replicas=5))
    decision = run(capped, 3, busy(3, 5.0))  # limit 6 is above max 5
    assert decision.desired == 5
    assert reasons(decision)["ScalingLimited"] == "True/TooManyReplicas"


def test_without_behavior_min_replicas_still_applies() -> None:
    spec = autoscaling.parse(hpa(resource(), min_replicas=2))
    settled = History(recommendations=((NOW - 400, 4),))  # nothing left in the 300 s window
    decision = run(spec, 4, busy(4, 0.0), history=settled)  # raw 0
    assert decision.desired == 2
    assert reasons(decision)["ScalingLimited"] == "True/TooFewReplicas"


# --- zero replicas ---------------------------------------------------------------------------


def test_zero_replicas_disables_scaling() -> None:
    decision = run(spec_of(min_replicas=2), 0, busy(2, 5.0))
    assert (decision.desired, decision.scaled, decision.reason) == (0, False, "")
    assert condition(decision, "ScalingActive") == {
        "type": "ScalingActive",
        "status": "False",
        "reason": "ScalingDisabled",
        "message": "scaling is disabled since the replica count of the target is zero",
    }
    assert decision.current_metrics == []


def test_negative_replicas_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        run(spec_of(), -1, [])


# --- tolerance from the spec -----------------------------------------------------------------


def test_configurable_tolerances() -> None:
    behavior = {
        "scaleUp": {"stabilizationWindowSeconds": 0, "tolerance": "0.05"},
        "scaleDown": {"stabilizationWindowSeconds": 0, "tolerance": 0.2},
    }
    spec = spec_of(behavior=behavior, max_replicas=50)
    assert spec.behavior is not None
    assert (spec.behavior.scale_up.tolerance, spec.behavior.scale_down.tolerance) == (0.05, 0.2)
    assert run(spec, 10, busy(10, 0.54)).desired == 11  # 1.08 is outside 5 %: ceil(10.8)
    assert run(spec, 10, busy(10, 0.41)).desired == 10  # 0.82 is within 20 %
    assert run(spec, 10, busy(10, 0.39)).desired == 8  # 0.78: ceil(7.8)


# --- history ---------------------------------------------------------------------------------


def test_history_round_trips_through_json() -> None:
    history = History(recommendations=((1.0, 3), (2.5, 4)), scale_events=((2.5, 1),))
    data = history.to_json()
    assert data == {
        "recommendations": [{"time": 1.0, "replicas": 3}, {"time": 2.5, "replicas": 4}],
        "scaleEvents": [{"time": 2.5, "change": 1}],
    }
    assert History.from_json(data) == history
    assert History.from_json(None) == History()


def test_history_rejects_malformed_entries() -> None:
    with pytest.raises(HpaError, match=r"history\.scaleEvents\[0\]\.change"):
        History.from_json({"scaleEvents": [{"time": 1, "change": "two"}]})
    with pytest.raises(HpaError, match=r"history\.recommendations\[1\]\.time"):
        History.from_json({"recommendations": [{"time": 1, "replicas": 2}, {"replicas": 2}]})


def test_history_is_pruned_to_the_longest_window_and_period() -> None:
    spec = spec_of(behavior={"scaleDown": {"stabilizationWindowSeconds": 120}})  # up 0 s, periods 15 s
    history = History(
        recommendations=((NOW - 500, 9), (NOW - 100, 4)),
        scale_events=((NOW - 100, 2), (NOW - 10, 1)),
    )
    decision = run(spec, 4, busy(4, 0.5), history=history)
    assert decision.history.recommendations == ((NOW - 100, 4), (NOW, 4))
    assert decision.history.scale_events == ((NOW - 10, 1),)


def test_pruning_keeps_the_newest_recommendation() -> None:
    # A sync that records nothing (scaling disabled) must not empty the history: an empty
    # history makes the next sync start over from the current count.
    spec = spec_of(behavior={})
    idle = run(spec, 0, [], history=History(recommendations=((NOW - 1000, 1),)))
    assert idle.history.recommendations == ((NOW - 1000, 1),)
    resumed = run(spec, 5, busy(5, 0.1), now=NOW + 10, history=idle.history)
    assert resumed.desired == 1


def test_a_restart_carries_on_from_the_stored_history() -> None:
    spec = spec_of(behavior={})
    first = run(spec, 5, busy(5, 0.5), now=NOW)
    quiet = run(spec, 5, busy(5, 0.1), now=NOW + 60, history=first.history)  # held at 5
    assert quiet.history.recommendations == ((NOW, 5), (NOW, 5), (NOW + 60, 1))
    stored = quiet.history.to_json()
    resumed = run(spec, 5, busy(5, 0.1), now=NOW + 301, history=History.from_json(stored))
    fresh = run(spec, 5, busy(5, 0.1), now=NOW + 301)
    assert resumed.desired == 1  # the low recommendation from t=60 has aged through the window
    assert fresh.desired == 5  # a controller that forgot starts again from the current count


# --- parse -----------------------------------------------------------------------------------


def test_seed_hpa_parses_with_defaults() -> None:
    spec = autoscaling.parse(yaml.safe_load(SEED_HPA.read_text()))
    assert (spec.name, spec.api_version) == ("myapp", "autoscaling/v2")
    assert (spec.target.api_version, spec.target.kind, spec.target.name) == ("apps/v1", "Deployment", "myapp")
    assert (spec.min_replicas, spec.max_replicas) == (3, 10)
    assert [(m.type, m.resource, m.target) for m in spec.metrics] == [
        ("Resource", "cpu", autoscaling.MetricTarget("Utilization", average_utilization=70)),
        ("Resource", "memory", autoscaling.MetricTarget("Utilization", average_utilization=80)),
    ]
    assert spec.behavior == autoscaling.Behavior(
        scale_up=Rules(30, "Max", (Policy("Percent", 100, 60),), 0.1),
        scale_down=Rules(300, "Max", (Policy("Percent", 10, 60),), 0.1),
    )


def test_v2_defaults() -> None:
    obj = hpa(min_replicas=None)
    spec = autoscaling.parse(obj)
    assert spec.min_replicas == 1
    assert spec.metrics == (
        autoscaling.Metric("Resource", resource="cpu", target=autoscaling.MetricTarget("Utilization", 80)),
    )
    assert spec.behavior is None
    spec = autoscaling.parse(hpa(resource(), behavior={"scaleUp": {"selectPolicy": "Min"}}))
    assert spec.behavior == autoscaling.Behavior(
        scale_up=Rules(0, "Min", (Policy("Pods", 4, 15), Policy("Percent", 100, 15))),
        scale_down=Rules(300, "Max", (Policy("Percent", 100, 15),)),
    )


def v1(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, **spec},
    }


def test_v1_target_becomes_a_cpu_utilization_metric() -> None:
    spec = autoscaling.parse(v1(minReplicas=2, targetCPUUtilizationPercentage=60))
    assert spec.metrics == (
        autoscaling.Metric("Resource", resource="cpu", target=autoscaling.MetricTarget("Utilization", 60)),
    )
    assert (spec.min_replicas, spec.max_replicas, spec.behavior) == (2, 5, None)
    assert run(spec, 2, busy(2, 0.9)).desired == 3  # 90 / 60 = 1.5 → ceil(3.0)


def test_v1_without_target_aims_at_80_percent() -> None:
    spec = autoscaling.parse(v1())
    assert spec.metrics[0].target == autoscaling.MetricTarget("Utilization", 80)
    assert spec.target.api_version == ""


def with_metric_field(path: list[str | int], value: object) -> dict[str, Any]:
    obj = hpa(resource())
    node: Any = obj["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            with_metric_field(["metrics", 0, "resource", "name"], "gpu"),
            "spec.metrics[0].resource.name: 'gpu' is not cpu or memory",
        ),
        (hpa(resource(), resource("gpu")), "spec.metrics[1].resource.name: 'gpu' is not cpu or memory"),
        (with_metric_field(["metrics", 0, "type"], "Custom"), "spec.metrics[0].type: must be one of"),
        (
            with_metric_field(["metrics", 0, "resource", "target", "type"], "Value"),
            "spec.metrics[0].resource.target.type",
        ),
        (
            with_metric_field(["metrics", 0, "resource", "target", "averageUtilization"], 0),
            "averageUtilization: must be greater",
        ),
        (hpa(resource(average="lots")), "spec.metrics[0].resource.target.averageValue: invalid quantity"),
        (hpa(resource(average="0")), "spec.metrics[0].resource.target.averageValue: must be positive"),
        (hpa(resource(), min_replicas=0), "spec.minReplicas: must be greater than or equal to 1"),
        (
            hpa(resource(), min_replicas=4, max_replicas=3),
            "spec.maxReplicas: must be greater than or equal to minReplicas",
        ),
        (with_metric_field(["scaleTargetRef", "kind"], ""), "spec.scaleTargetRef.kind: required"),
        (with_metric_field(["scaleTargetRef", "name"], None), "spec.scaleTargetRef.name: required"),
        (with_metric_field(["maxReplicas"], "ten"), "spec.maxReplicas: expected an integer"),
        (with_metric_field(["metrics"], {"type": "Resource"}), "spec.metrics: expected a list"),
        (hpa(resource(), behavior={"scaleUp": {"selectPolicy": "Fastest"}}), "spec.behavior.scaleUp.selectPolicy"),
        (
            hpa(resource(), behavior={"scaleDown": {"stabilizationWindowSeconds": 3601}}),
            "stabilizationWindowSeconds: must be less",
        ),
        (hpa(resource(), behavior={"scaleDown": {"policies": []}}), "spec.behavior.scaleDown.policies: must specify"),
        (
            hpa(resource(), behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}),
            "spec.behavior.scaleUp.policies[0].periodSeconds",
        ),
        (
            hpa(
                resource(), behavior={"scaleUp": {"policies": [{"type": "Replicas", "value": 1, "periodSeconds": 15}]}}
            ),
            "spec.behavior.scaleUp.policies[0].type: must be Pods or Percent",
        ),
        (hpa(resource(), behavior={"scaleUp": {"tolerance": "-0.1"}}), "spec.behavior.scaleUp.tolerance"),
        (hpa(pods_metric(name="")), "spec.metrics[0].pods.metric.name: required"),
        (
            {**hpa(resource()), "apiVersion": "autoscaling/v2beta1"},
            "apiVersion: must be autoscaling/v2 or autoscaling/v1",
        ),
        ({**hpa(resource()), "kind": "Deployment"}, "kind: must be HorizontalPodAutoscaler"),
        ({**hpa(resource()), "metadata": {}}, "metadata.name: required"),
        (v1(targetCPUUtilizationPercentage=0), "spec.targetCPUUtilizationPercentage: must be greater"),
    ],
)
def test_parse_errors_name_the_field(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(HpaError) as caught:
        autoscaling.parse(obj)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
