"""The Rollout controller over a real SQLite store, with pods simulated by a view function."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.controller.rollouts import HASH_LABEL, MANAGED_BY, RolloutController
from funade.core import revisions, rolling, services
from funade.core.ports import ObjectKey
from funade.engine.rollouts import RolloutOpError, Rollouts

pytestmark = pytest.mark.unit
Obj = dict[str, Any]


def _rollout(image: str = "app:v1", steps: list[Obj] | None = None, routing: bool = True) -> Obj:
    canary: Obj = {
        "canaryService": "web-canary",
        "stableService": "web-stable",
        "steps": steps
        if steps is not None
        else [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": 10}}],
    }
    if routing:
        canary["trafficRouting"] = {"nginx": {"stableIngress": "web"}}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": canary},
        },
    }


def _service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


class Harness:
    """The controller, a clock we move, and pods that become available as asked."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "db")
        self.now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
        self.unready: set[str] = set()  # pod-template hashes whose pods never become ready
        self.pokes = 0
        self.controller = RolloutController(self.store, self.view, self.poke, clock=lambda: self.now)
        self.ops = Rollouts(self.store, clock=lambda: self.now)
        self.store.put_many([_service("web-canary"), _service("web-stable")])

    def poke(self) -> None:
        self.pokes += 1

    def view(self, rs: Obj) -> rolling.Revision:
        replicas = int(rs["spec"]["replicas"])
        up = 0 if rs["metadata"]["labels"][HASH_LABEL] in self.unready else replicas
        revision = int(rs["metadata"]["annotations"][revisions.REVISION_ANNOTATION])
        return rolling.Revision(rs["metadata"]["name"], revision, replicas, replicas, up, up)

    def apply(self, obj: Obj) -> None:
        self.store.put_many([copy.deepcopy(obj)])

    def passes(self, n: int = 3) -> Obj:
        for _ in range(n):
            self.controller.sync(self.rollout())
        return self.rollout()

    def rollout(self) -> Obj:
        obj = self.store.get(ObjectKey("Rollout", "default", "web"))
        assert obj is not None
        return obj

    def replicas(self) -> dict[str, int]:
        return {
            rs["metadata"]["labels"][HASH_LABEL]: rs["spec"]["replicas"]
            for rs in self.store.list_objects("ReplicaSet", "default")
        }

    def split(self) -> Obj | None:
        return self.store.get(ObjectKey(services.SPLIT_KIND, "default", "web-stable"))

    def selector(self, service: str) -> Obj:
        obj = self.store.get(ObjectKey("Service", "default", service))
        assert obj is not None
        return dict(obj["spec"]["selector"])


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_first_deploy_goes_straight_to_full_scale_and_pins_both_services(h: Harness) -> None:
    h.apply(_rollout())
    status = h.passes()["status"]
    assert status["phase"] == "Healthy"
    first = status["currentPodHash"]
    assert status["stableRS"] == first
    assert h.replicas() == {first: 5}
    assert h.selector("web-stable") == {"app": "web", HASH_LABEL: first}
    assert h.selector("web-canary") == {"app": "web", HASH_LABEL: first}
    stable = h.store.get(ObjectKey("Service", "default", "web-stable"))
    assert stable is not None and stable["metadata"]["annotations"][MANAGED_BY] == "web"
    assert h.split() is None  # nothing to split while one revision runs


def test_canary_walks_its_steps_with_weights_on_the_stable_service(h: Harness) -> None:
    h.apply(_rollout())
    first = h.passes()["status"]["currentPodHash"]
    h.apply(_rollout("app:v2"))
    pokes = h.pokes
    status = h.passes()["status"]
    assert h.pokes == pokes + 1  # when the weight was written, the next pass was asked for at once
    second = status["currentPodHash"]
    assert second != first
    # setWeight 20 done (canary pods available), now paused indefinitely at step 1.
    assert status["phase"] == "Paused" and status["currentStepIndex"] == 1
    assert h.replicas() == {first: 5, second: 1}  # ceil(20% of 5), stable stays at 100 %
    split = h.split()
    assert split is not None
    assert split["spec"]["weights"] == {"stable": 80, "canary": 20}
    assert split["spec"]["subsets"] == [
        {"name": "stable", "service": "web-stable"},
        {"name": "canary", "service": "web-canary"},
    ]
    assert h.selector("web-canary")[HASH_LABEL] == second
    assert h.selector("web-stable")[HASH_LABEL] == first

    h.ops.promote("default", "web")
    status = h.passes()["status"]
    assert status["currentStepIndex"] == 3 and status["phase"] == "Paused"  # timed pause of 10 s
    assert h.split()["spec"]["weights"] == {"stable": 40, "canary": 60}  # type: ignore[index]
    h.now += timedelta(seconds=11)
    status = h.passes()["status"]
    assert status["phase"] == "Healthy"
    assert status["stableRS"] == second
    assert h.selector("web-stable")[HASH_LABEL] == second
    assert h.split() is None
    # The old stable stays up for scaleDownDelaySeconds (30 s default with a router), then goes.
    assert h.replicas()[first] == 5
    h.now += timedelta(seconds=31)
    h.passes()
    assert h.replicas() == {first: 0, second: 5}


def test_abort_sends_traffic_back_and_says_so(h: Harness) -> None:
    h.apply(_rollout())
    first = h.passes()["status"]["currentPodHash"]
    h.apply(_rollout("app:v2"))
    h.passes()
    h.ops.abort("default", "web")
    status = h.passes()["status"]
    assert status["phase"] == "Degraded"
    assert status["message"].startswith("aborted: running the stable revision, reason aborted by user")
    assert h.split()["spec"]["weights"] == {"stable": 100, "canary": 0}  # type: ignore[index]
    assert h.selector("web-stable")[HASH_LABEL] == first
    with pytest.raises(RolloutOpError, match="aborted"):
        h.ops.promote("default", "web")
    h.ops.retry("default", "web")
    status = h.passes()["status"]
    assert status["phase"] == "Paused" and status["currentStepIndex"] == 1


def test_failed_analysis_aborts_and_the_run_is_terminated_on_a_new_revision(h: Harness) -> None:
    h.store.put_many(
        [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": "success-rate", "namespace": "default"},
                "spec": {
                    "args": [{"name": "service-name"}],
                    "metrics": [
                        {
                            "name": "success-rate",
                            "interval": "5s",
                            "successCondition": "result[0] >= 0.99",
                            "provider": {
                                "prometheus": {"address": "http://p:9090", "query": "up{s='{{args.service-name}}'}"}
                            },
                        }
                    ],
                },
            }
        ]
    )
    steps = [
        {"setWeight": 10},
        {
            "analysis": {
                "templates": [{"templateName": "success-rate"}],
                "args": [{"name": "service-name", "value": "web-canary"}],
            }
        },
        {"setWeight": 50},
    ]
    h.apply(_rollout(steps=steps))
    h.passes()
    h.apply(_rollout("app:v2", steps=steps))
    status = h.passes()["status"]
    run_name = status["canary"]["currentStepAnalysisRunStatus"]["name"]
    run = h.store.get(ObjectKey("AnalysisRun", "default", run_name))
    assert run is not None
    assert run["spec"]["args"] == [{"name": "service-name", "value": "web-canary"}]
    assert "web-canary" not in str(run["spec"]["metrics"])  # substituted when the run executes, from its args
    assert run["metadata"]["labels"]["rollout-type"] == "Step"
    assert status["phase"] == "Progressing"
    h.store.put_status(ObjectKey.of(run), {"phase": "Failed", "message": "metric success-rate assessed Failed"})
    status = h.passes()["status"]
    assert status["phase"] == "Degraded" and status["abort"] is True
    assert "success-rate" in status["message"]
    assert h.split()["spec"]["weights"]["canary"] == 0  # type: ignore[index]


def test_a_missing_template_errors_the_run_and_aborts(h: Harness) -> None:
    steps = [{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "nope"}]}}]
    h.apply(_rollout(steps=steps))
    h.passes()
    h.apply(_rollout("app:v2", steps=steps))
    status = h.passes(4)["status"]
    assert status["abort"] is True
    assert "AnalysisTemplate 'nope' not found" in status["message"]


def test_progress_deadline_abort_when_pods_never_become_ready(h: Harness) -> None:
    obj = _rollout()
    obj["spec"]["progressDeadlineSeconds"] = 30
    obj["spec"]["progressDeadlineAbort"] = True
    h.apply(obj)
    h.passes()
    bad = _rollout("app:broken")
    bad["spec"].update(progressDeadlineSeconds=30, progressDeadlineAbort=True)
    h.apply(bad)
    h.unready.add(revisions.template_hash(_pod_template("app:broken")))
    status = h.passes()["status"]
    assert status["phase"] == "Progressing"
    h.now += timedelta(seconds=31)
    status = h.passes()["status"]
    assert status["phase"] == "Degraded" and status["abort"] is True
    assert "progress deadline exceeded" in status["message"]


def _pod_template(image: str) -> Obj:
    from funade.core import rollout as ro

    parsed = ro.parse(_rollout(image))
    assert parsed.template is not None
    return ro.pod_template(parsed, parsed.template)


def test_a_missing_service_is_named_and_nothing_is_scaled(h: Harness) -> None:
    h.store.delete(ObjectKey("Service", "default", "web-canary"))
    h.apply(_rollout())
    status = h.passes()["status"]
    assert status["phase"] == "Degraded"
    assert "canaryService: Service 'web-canary' not found" in status["message"]
    assert h.replicas() == {}


def test_undo_goes_back_to_the_previous_template_and_skips_steps(h: Harness) -> None:
    h.apply(_rollout())
    first = h.passes()["status"]["currentPodHash"]
    h.apply(_rollout("app:v2"))
    h.passes()
    h.ops.promote("default", "web", full=True)
    second = h.passes()["status"]["stableRS"]
    assert second != first
    _, revision = h.ops.undo("default", "web")
    assert revision == 1
    status = h.passes()["status"]
    assert status["currentPodHash"] == first
    # Back to a revision whose pods still run: Argo's "rollback within window" goes straight through the steps.
    assert status["phase"] in ("Paused", "Progressing", "Healthy")


def test_deleting_the_rollout_releases_its_services(h: Harness) -> None:
    h.apply(_rollout())
    h.passes()
    h.apply(_rollout("app:v2"))
    h.passes()
    assert h.split() is not None
    h.store.delete(ObjectKey("Rollout", "default", "web"))
    h.controller._collect_garbage()
    assert HASH_LABEL not in h.selector("web-stable")
    assert h.split() is None


def test_status_survives_a_round_trip_through_json(h: Harness) -> None:
    import json

    from funade.core import rollout as ro

    h.apply(_rollout())
    h.passes()
    h.apply(_rollout("app:v2"))
    raw = h.passes()["status"]["funade"]
    state = ro.status_from_dict(json.loads(json.dumps(raw)))
    assert ro.status_to_dict(state) == raw
    assert state.pause_conditions and state.pause_conditions[0].reason is ro.PauseReason.CANARY_PAUSE_STEP


def test_rollout_get_view_shows_step_weights_revisions_and_runs(h: Harness) -> None:
    from rich.console import Console

    from funade.cli.rollouts import view_renderable

    h.apply(_rollout())
    h.passes()
    h.apply(_rollout("app:v2"))
    h.passes()
    view = h.ops.view("default", "web", pods=[])
    console = Console(width=140, record=True, color_system=None)
    console.print(view_renderable(view, now=h.now))
    text = console.export_text()
    assert "॥ Paused" in text and "CanaryPauseStep" in text
    assert "1/4" in text and "canary 20%, stable 80%" in text
    assert "revision:2 canary app:v2" in text and "revision:1 stable app:v1" in text
