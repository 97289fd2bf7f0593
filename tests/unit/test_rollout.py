"""Rollout model, canary and blue-green decisions, checked against Argo Rollouts' semantics.

Replica counts follow utils/replicaset/canary.go (CalculateReplicaCountsForBasicCanary,
CalculateReplicaCountsForTrafficRoutedCanary); phases follow utils/rollout/rolloututil.go;
operations follow the kubectl-argo-rollouts promote/abort/retry patches.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.core import bluegreen, canary
from funade.core import rollout as ro
from funade.core.analysis import Phase
from funade.core.rolling import Revision

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "argo" / "rollout.yaml"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "aaa111", "bbb222"


def seed_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SEED.read_text())
    return doc


def seed(replicas: int = 10, routing: bool = True) -> ro.Rollout:
    doc = seed_doc()
    doc["spec"]["replicas"] = replicas
    if not routing:
        del doc["spec"]["strategy"]["canary"]["trafficRouting"]
    return ro.parse(doc)


class World:
    """Applies decisions instantly: every desired pod exists and is available (unless ``ready`` says otherwise)."""

    def __init__(self, rollout: ro.Rollout, stable_replicas: int) -> None:
        self.rollout = rollout
        self.rs = {OLD: Revision(OLD, 1, stable_replicas, stable_replicas, stable_replicas, stable_replicas)}
        self.status = ro.RolloutStatus(current_hash=NEW, stable_hash=OLD, progress_at=T0)
        self.runs: dict[str, ro.RunStatus] = {}
        self.now = T0
        self.ready = True
        self.weight: int | None = None

    def step(self, minutes: float = 0) -> canary.Decision:
        self.now += timedelta(minutes=minutes)
        d = canary.decide(self.rollout, self.status, list(self.rs.values()), self.runs, self.now, self.weight)
        self.apply(d.status, d.replicas)
        self.weight = d.canary_weight
        return d

    def apply(self, status: ro.RolloutStatus, plan: tuple[tuple[str, int], ...]) -> None:
        self.status = status
        for name, n in plan:
            rev = self.rs.get(name, Revision(name, 2, 0))
            avail = n if self.ready or name != NEW else 0
            self.rs[name] = Revision(name, rev.revision, n, n, avail, avail)

    def counts(self) -> tuple[int, int]:
        return self.rs[NEW].replicas if NEW in self.rs else 0, self.rs[OLD].replicas

    def settle(self, limit: int = 20) -> canary.Decision:
        """Decide until nothing changes (the engine's reconcile loop with a fixed clock)."""
        d = self.step()
        for _ in range(limit):
            before = (self.status, dict(self.rs))
            d = self.step()
            if (self.status, dict(self.rs)) == before and not d.start:
                return d
        return d


# ---------------------------------------------------------------------------- model


def test_seed_parses_with_its_exact_steps() -> None:
    r = ro.parse(seed_doc())
    assert r.name == "myapp" and r.replicas == 5 and r.selector == {"app": "myapp"}
    c = r.canary
    assert c.canary_service == "myapp-canary" and c.stable_service == "myapp-stable"
    assert c.traffic_routing is not None and c.traffic_routing.nginx == ro.NginxRouting("myapp-ingress")
    assert c.steps == (
        ro.SetWeight(5),
        ro.PauseStep(300),
        ro.AnalysisStep(
            ro.RolloutAnalysis((ro.TemplateRef("success-rate"),), (ro.RolloutArg("service-name", "myapp-canary"),))
        ),
        ro.SetWeight(25),
        ro.PauseStep(300),
        ro.AnalysisStep(ro.RolloutAnalysis((ro.TemplateRef("success-rate"),))),
        ro.SetWeight(50),
        ro.PauseStep(600),
        ro.SetWeight(100),
    )
    assert (c.max_surge, c.max_unavailable) == ("25%", "25%")
    assert c.analysis is None  # the seed's canary.analysis only holds history limits
    assert r.successful_run_history_limit == 3 and r.unsuccessful_run_history_limit == 3
    assert any("belongs in spec.analysis" in w for w in r.warnings)
    assert r.progress_deadline_seconds == 600 and not r.progress_deadline_abort
    assert c.abort_scale_down_delay == 30 and c.scale_down_delay == 30


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30), ("30", 30), ("30s", 30), ("5m", 300), ("1h", 3600), ("1m30s", 90)]
)
def test_durations(value: object, seconds: int) -> None:
    assert ro.parse_duration_seconds(value, "d") == seconds


def _bad(path: list[Any], value: Any, message: str) -> None:
    doc = seed_doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(ro.RolloutError) as err:
        ro.parse(doc)
    assert str(err.value).startswith(message), str(err.value)


STEPS = ["spec", "strategy", "canary", "steps"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ([*STEPS, 3], {"setWeight": 120}, "spec.strategy.canary.steps[3].setWeight: must be between 0 and 100"),
        ([*STEPS, 1], {"pause": {"duration": "5 minutes"}}, "spec.strategy.canary.steps[1].pause.duration:"),
        ([*STEPS, 0], {"setMirrorRoute": {"name": "m"}}, "spec.strategy.canary.steps[0].setMirrorRoute:"),
        ([*STEPS, 0], {"setWeight": 5, "pause": {}}, "spec.strategy.canary.steps[0]: a step must have exactly one"),
        ([*STEPS, 0], {"setHeaderRoute": {"name": "h"}}, "spec.strategy.canary.steps[0].setHeaderRoute.name:"),
        ([*STEPS, 2, "analysis", "templates"], [], "spec.strategy.canary.steps[2].analysis.templates:"),
        (["spec", "strategy", "canary", "trafficRouting"], {"alb": {}}, "spec.strategy.canary.trafficRouting.alb:"),
        (["spec", "strategy", "canary", "stableService"], None, "spec.strategy.canary.stableService: required"),
        (["spec", "strategy", "canary", "maxSurge"], 0, "spec.strategy.canary.maxUnavailable:"),
        (["spec", "progressDeadlineSeconds"], "ten", "spec.progressDeadlineSeconds:"),
        (["spec", "workloadRef"], {"kind": "Deployment", "name": "d"}, "spec.workloadRef: template and workloadRef"),
    ],
)
def test_field_errors(path: list[Any], value: Any, message: str) -> None:
    if path[-1] == "maxSurge":
        seed_doc_ = seed_doc()
        seed_doc_["spec"]["strategy"]["canary"]["maxUnavailable"] = 0
        seed_doc_["spec"]["strategy"]["canary"]["maxSurge"] = 0
        with pytest.raises(ro.RolloutError, match=r"^spec\.strategy\.canary\.maxUnavailable:"):
            ro.parse(seed_doc_)
        return
    _bad(path, value, message)


def test_set_canary_scale_needs_traffic_routing() -> None:
    doc = seed_doc()
    del doc["spec"]["strategy"]["canary"]["trafficRouting"]
    doc["spec"]["strategy"]["canary"]["steps"][0] = {"setCanaryScale": {"replicas": 2}}
    with pytest.raises(ro.RolloutError, match=r"^spec\.strategy\.canary\.steps\[0\]\.setCanaryScale: needs"):
        ro.parse(doc)


def test_workload_ref_and_istio() -> None:
    doc = seed_doc()
    del doc["spec"]["template"]
    doc["spec"]["workloadRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "scaleDown": "onsuccess",
    }
    doc["spec"]["strategy"]["canary"]["trafficRouting"] = {
        "istio": {
            "virtualService": {"name": "vs", "routes": ["primary"]},
            "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"},
        },
        "managedRoutes": [{"name": "beta"}],
    }
    doc["spec"]["strategy"]["canary"]["steps"].insert(
        0, {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "x-beta", "headerValue": {"exact": "1"}}]}}
    )
    r = ro.parse(doc)
    assert r.workload_ref == ro.WorkloadRef("Deployment", "web", "apps/v1", "onsuccess")
    routing = r.canary.traffic_routing
    assert routing is not None and routing.istio == ro.IstioRouting("vs", ("primary",), "dr", "canary", "stable")
    assert r.canary.steps[0] == ro.SetHeaderRoute("beta", (ro.HeaderMatch("x-beta", "exact", "1"),))
    bad = copy.deepcopy(doc)
    bad["spec"]["workloadRef"]["scaleDown"] = "later"
    with pytest.raises(ro.RolloutError, match=r"^spec\.workloadRef\.scaleDown:"):
        ro.parse(bad)


# ---------------------------------------------------------------------------- replica arithmetic


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "unavailable", "new", "stable", "expected"),
    [
        # The examples in Argo's CalculateReplicaCountsForBasicCanary doc comment.
        (10, 10, 1, 1, 0, 10, (1, 9)),
        (10, 30, 3, 0, 0, 10, (3, 10)),
        (10, 30, 0, 5, 0, 10, (0, 7)),
        # Argo's comment says (1, 9) for this one, from before approximateWeightedCanaryStableReplicaCounts:
        # 1 of 11 pods (9.1 %) is now closer to 5 % than 1 of 10, so the stable keeps all 10.
        (10, 5, 1, 1, 0, 10, (1, 10)),
        (1, 5, 1, 0, 0, 1, (1, 1)),
        (1, 95, 1, 0, 0, 1, (1, 1)),
    ],
)
def test_basic_canary_counts_match_argo(
    replicas: int, weight: int, surge: int, unavailable: int, new: int, stable: int, expected: tuple[int, int]
) -> None:
    n = Revision(NEW, 2, new, new, new, new)
    s = Revision(OLD, 1, stable, stable, stable, stable)
    assert canary.basic_replica_counts(replicas, weight, surge, unavailable, n, s) == expected


def test_seed_without_traffic_routing_replica_counts_per_step() -> None:
    w = World(seed(10, routing=False), 10)
    seen: list[tuple[int, int, int]] = []
    d = w.settle()
    seen.append((w.status.step_index, *w.counts()))
    assert d.phase is ro.RolloutPhase.PAUSED and d.paused_until == T0 + timedelta(minutes=5)
    w.step(5)
    d = w.settle()  # analysis step: a run is started
    (run,) = [s for s in [d.status.step_run] if s]
    w.runs[run] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.settle()
    seen.append((w.status.step_index, *w.counts()))
    w.step(5)
    d = w.settle()
    w.runs[str(d.status.step_run)] = ro.RunStatus(Phase.SUCCESSFUL)
    w.settle()
    seen.append((w.status.step_index, *w.counts()))
    w.step(10)
    d = w.settle()
    # setWeight 5 → 1 canary + 10 stable (1 of 11 is closer to 5 % than 1 of 10; maxSurge 25 % allows it);
    # 25 → 3 + 8 (3 of 11); 50 → 5 + 5; 100 → 10 + 0, promoted.
    assert seen == [(1, 1, 10), (4, 3, 8), (7, 5, 5)]
    assert d.status.stable_hash == NEW and w.counts() == (10, 0)
    assert d.phase is ro.RolloutPhase.HEALTHY


def test_seed_with_traffic_routing_weights_and_timed_pause() -> None:
    w = World(seed(10), 10)
    d = w.settle()
    assert (d.status.step_index, d.canary_weight, w.counts()) == (1, 5, (1, 10))
    assert d.phase is ro.RolloutPhase.PAUSED and d.message == "CanaryPauseStep"
    assert d.paused_until == T0 + timedelta(minutes=5) and d.wake_at == d.paused_until
    d = w.step(4.9)
    assert d.status.step_index == 1
    d = w.step(0.1)  # exactly 5 minutes after the pause started
    assert d.status.step_index == 2 and len(d.start) == 1 and d.start[0].kind == "step2"
    assert d.start[0].analysis.args == (ro.RolloutArg("service-name", "myapp-canary"),)
    w.runs[d.start[0].name] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.settle()
    assert (d.status.step_index, d.canary_weight, w.counts()) == (4, 25, (3, 10))
    w.step(5)
    d = w.settle()
    w.runs[str(d.status.step_run)] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.settle()
    assert (d.status.step_index, d.canary_weight, w.counts()) == (7, 50, (5, 10))
    w.step(10)
    d = w.settle()
    assert d.status.stable_hash == NEW and d.phase is ro.RolloutPhase.HEALTHY
    # the old stable stays up scaleDownDelaySeconds (30 s) for the router to re-target
    assert w.rs[OLD].replicas == 10
    w.step(0.5)
    assert w.rs[OLD].replicas == 0


def test_weight_waits_for_canary_pods() -> None:
    w = World(seed(10), 10)
    w.ready = False
    d = w.step()
    assert d.replicas_of(NEW) == 1 and d.canary_weight == 0 and d.status.step_index == 0
    assert d.phase is ro.RolloutPhase.PROGRESSING and d.message == "more replicas need to be updated"


def test_dynamic_stable_scale_shrinks_stable() -> None:
    doc = seed_doc()
    doc["spec"]["replicas"] = 10
    doc["spec"]["strategy"]["canary"]["dynamicStableScale"] = True
    w = World(ro.parse(doc), 10)
    w.settle()
    w.step(5)
    d = w.settle()
    w.runs[str(d.status.step_run)] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.settle()
    assert d.canary_weight == 25 and w.counts() == (3, 8)


# ---------------------------------------------------------------------------- pauses, analysis, abort


def _at_analysis_step(w: World) -> str:
    w.settle()
    d = w.step(5)
    assert d.status.step_run is not None
    return d.status.step_run


def test_indefinite_pause_waits_for_promote() -> None:
    doc = seed_doc()
    doc["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {}}
    w = World(ro.parse(doc), 5)
    d = w.settle()
    assert d.phase is ro.RolloutPhase.PAUSED and d.paused_until is None
    d = w.step(600)
    assert d.status.step_index == 1 and d.phase is ro.RolloutPhase.PAUSED
    w.status = ro.promote(w.rollout, w.status)
    d = w.step()
    assert d.status.step_index == 2 and d.start  # analysis step started


def test_analysis_failed_aborts_with_plain_message() -> None:
    w = World(seed(10), 10)
    run = _at_analysis_step(w)
    w.runs[run] = ro.RunStatus(
        Phase.FAILED, 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'
    )
    d = w.step()
    assert d.phase is ro.RolloutPhase.DEGRADED
    assert d.message == (
        f"aborted: running the stable revision, reason analysis run {run} Failed: "
        'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'
    )
    assert d.canary_weight == 0 and d.status.step_index == 0
    assert d.replicas_of(NEW) == 1 and d.replicas_of(OLD) == 10  # canary kept for abortScaleDownDelaySeconds
    assert d.wake_at == w.now + timedelta(seconds=30)
    d = w.step(0.5)
    assert d.replicas_of(NEW) == 0 and d.message.startswith(ro.ABORTED_PREFIX)


def test_analysis_error_aborts_too() -> None:
    w = World(seed(10), 10)
    run = _at_analysis_step(w)
    w.runs[run] = ro.RunStatus(Phase.ERROR)
    assert w.step().status.abort


def test_inconclusive_pauses_and_promote_moves_on() -> None:
    w = World(seed(10), 10)
    run = _at_analysis_step(w)
    w.runs[run] = ro.RunStatus(Phase.INCONCLUSIVE, "no data for query x")
    d = w.step()
    assert d.phase is ro.RolloutPhase.PAUSED and d.message == "InconclusiveAnalysisRun"
    assert w.step(60).status.step_index == 2  # stays paused
    w.status = ro.promote(w.rollout, w.status, runs=w.runs)
    d = w.settle()
    assert d.status.step_index == 4 and d.canary_weight == 25


def test_background_analysis_failure_aborts_mid_way() -> None:
    doc = seed_doc()
    doc["spec"]["replicas"] = 10
    doc["spec"]["strategy"]["canary"]["analysis"] = {"templates": [{"templateName": "success-rate"}], "startingStep": 3}
    w = World(ro.parse(doc), 10)
    d = w.settle()
    assert d.status.background_run is None
    run = _at_analysis_step(w)
    w.runs[run] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.settle()
    bg = d.status.background_run
    assert bg is not None and d.status.step_index == 4
    w.runs[bg] = ro.RunStatus(Phase.FAILED, "boom")
    d = w.step(1)
    assert d.phase is ro.RolloutPhase.DEGRADED and d.message == f"{ro.ABORTED_PREFIX}analysis run {bg} Failed: boom"
    assert d.canary_weight == 0


def test_progress_deadline_degrades_then_aborts_when_asked() -> None:
    doc = seed_doc()
    doc["spec"]["progressDeadlineSeconds"] = 120
    w = World(ro.parse(doc), 5)
    w.ready = False
    w.step()
    d = w.step(1)  # the canary ReplicaSet was scaled: that is progress, the 120 s count from here
    assert d.phase is ro.RolloutPhase.PROGRESSING and d.wake_at == w.now + timedelta(seconds=120)
    d = w.step(2)
    assert d.phase is ro.RolloutPhase.DEGRADED and "timed out progressing" in d.message and not d.status.abort
    doc["spec"]["progressDeadlineAbort"] = True
    w = World(ro.parse(doc), 5)
    w.ready = False
    w.step()
    w.step(1)
    d = w.step(2)
    assert d.status.abort and d.message.startswith(ro.ABORTED_PREFIX + "progress deadline exceeded")


def test_retry_after_abort_restarts_at_step_zero() -> None:
    w = World(seed(10), 10)
    run = _at_analysis_step(w)
    w.runs[run] = ro.RunStatus(Phase.FAILED)
    w.step()
    w.status = ro.retry(w.status, w.now)
    d = w.settle()
    assert not d.status.abort and d.status.step_index == 1 and d.canary_weight == 5
    d = w.step(5)
    assert d.status.step_run is not None and d.status.step_run != run


def test_promote_full_skips_everything() -> None:
    w = World(seed(10), 10)
    w.settle()
    w.status = ro.promote(w.rollout, w.status, full=True)
    d = w.settle()
    assert d.status.stable_hash == NEW and d.phase is ro.RolloutPhase.HEALTHY and w.rs[NEW].replicas == 10


def test_abort_by_user_and_undo() -> None:
    w = World(seed(10), 10)
    w.settle()
    w.status = ro.abort(w.status, w.now)
    d = w.step()
    assert d.message == ro.ABORTED_PREFIX + "aborted by user"
    old = {"spec": {"containers": [{"image": "v1"}]}}
    assert ro.undo([(1, old), (2, {"spec": {}})], current=2) == old
    with pytest.raises(ro.RolloutError, match="revision 7"):
        ro.undo([(1, old)], current=2, to_revision=7)


# ---------------------------------------------------------------------------- blue-green


def bg_rollout(**fields: Any) -> ro.Rollout:
    doc = seed_doc()
    doc["spec"]["replicas"] = 4
    doc["spec"]["strategy"] = {"blueGreen": {"activeService": "web-active", "previewService": "web-preview", **fields}}
    return ro.parse(doc)


class BGWorld(World):
    def bg(self, minutes: float = 0) -> bluegreen.Decision:
        self.now += timedelta(minutes=minutes)
        d = bluegreen.decide(self.rollout, self.status, list(self.rs.values()), self.runs, self.now)
        self.apply(d.status, d.replicas)
        return d


def test_blue_green_pre_post_analysis_and_auto_promotion_seconds() -> None:
    tpl = {"templates": [{"templateName": "success-rate"}]}
    w = BGWorld(bg_rollout(previewReplicaCount=1, autoPromotionSeconds=60, prePromotionAnalysis=tpl,
                           postPromotionAnalysis=tpl), 4)  # fmt: skip
    d = w.bg()
    assert d.replicas_of(NEW) == 1 and d.active_hash == OLD and d.preview_hash == NEW
    d = w.bg()
    (pre,) = d.start
    assert pre.kind == "pre" and d.active_hash == OLD
    w.runs[pre.name] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.bg()
    assert d.phase is ro.RolloutPhase.PAUSED and d.message == "BlueGreenPause"
    assert d.paused_until == w.now + timedelta(seconds=60)
    d = w.bg(1)
    assert d.replicas_of(NEW) == 4 and d.active_hash == OLD  # preview scaled to full before the switch
    d = w.bg()
    assert d.active_hash == NEW and d.start[0].kind == "post"
    assert d.phase is ro.RolloutPhase.PROGRESSING and d.message == "waiting for analysis to complete"
    w.runs[d.start[0].name] = ro.RunStatus(Phase.SUCCESSFUL)
    d = w.bg()
    assert d.status.stable_hash == NEW and d.phase is ro.RolloutPhase.HEALTHY and w.rs[OLD].replicas == 4
    w.bg(0.5)
    assert w.rs[OLD].replicas == 0


def test_blue_green_post_promotion_failure_switches_back() -> None:
    tpl = {"templates": [{"templateName": "success-rate"}]}
    w = BGWorld(bg_rollout(postPromotionAnalysis=tpl), 4)
    d = w.bg()
    d = w.bg()
    assert d.active_hash == NEW
    w.runs[d.start[0].name] = ro.RunStatus(Phase.FAILED, "error rate")
    d = w.bg()
    assert d.active_hash == OLD and d.phase is ro.RolloutPhase.DEGRADED
    assert d.message == f"{ro.ABORTED_PREFIX}post-promotion analysis run {d.status.post_run} Failed: error rate"
    assert d.replicas_of(OLD) == 4 and d.replicas_of(NEW) == 4
    assert w.bg(0.5).replicas_of(NEW) == 0


def test_blue_green_manual_promotion() -> None:
    w = BGWorld(bg_rollout(autoPromotionEnabled=False), 4)
    w.bg()
    d = w.bg(30)
    assert d.phase is ro.RolloutPhase.PAUSED and d.active_hash == OLD and d.paused_until is None
    w.status = ro.promote(w.rollout, w.status)
    d = w.bg()
    assert d.active_hash == NEW and d.status.stable_hash == NEW
