"""Revision identity and Deployment conditions must follow the deployment controller.

Facts: ``pkg/controller/deployment`` (sync.go, progress.go) and ``util/deployment_util.go``
(``DeploymentProgressing``, ``DeploymentTimedOut``, ``SetDeploymentCondition``), and the
Deployment documentation: the deadline is not checked while paused, and exceeding it only
sets ``Progressing=False`` with reason ``ProgressDeadlineExceeded``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from funade.core import revisions
from funade.core.revisions import Counts

pytestmark = pytest.mark.unit

Obj = dict[str, Any]

TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "web", "tier": "frontend"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            }
        ],
        "restartPolicy": "Always",
    },
}

# --- template_hash ---------------------------------------------------------------------------


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_template_hash_is_a_short_name() -> None:
    digest = revisions.template_hash(TEMPLATE)

    assert len(digest) == 10
    assert set(digest) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_template_hash_is_stable_across_calls_and_key_order() -> None:
    reordered = _reordered(TEMPLATE)
    assert list(reordered) != list(TEMPLATE)

    assert revisions.template_hash(TEMPLATE) == revisions.template_hash(copy.deepcopy(TEMPLATE))
    assert revisions.template_hash(reordered) == revisions.template_hash(TEMPLATE)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["spec"]["containers"][0].update(image="nginx:1.26"),
        lambda t: t["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"}),
        lambda t: t["metadata"]["labels"].update(tier="backend"),
        lambda t: t["metadata"].setdefault("annotations", {}).update(restartedAt="2024-05-01T10:00:00Z"),
        lambda t: t["spec"].update(restartPolicy="OnFailure"),
    ],
)
def test_template_hash_changes_with_the_template(change: Any) -> None:
    changed = copy.deepcopy(TEMPLATE)
    change(changed)

    assert revisions.template_hash(changed) != revisions.template_hash(TEMPLATE)


def test_list_order_is_significant() -> None:
    two = copy.deepcopy(TEMPLATE)
    two["spec"]["containers"].append({"name": "side", "image": "busybox"})
    swapped = copy.deepcopy(two)
    swapped["spec"]["containers"].reverse()

    assert revisions.template_hash(two) != revisions.template_hash(swapped)


def test_template_hash_ignores_the_pod_template_hash_label() -> None:
    labelled = copy.deepcopy(TEMPLATE)
    labelled["metadata"]["labels"][revisions.HASH_LABEL] = revisions.template_hash(TEMPLATE)
    other = copy.deepcopy(TEMPLATE)
    other["metadata"]["labels"][revisions.HASH_LABEL] = "somethingelse"

    assert revisions.template_hash(labelled) == revisions.template_hash(TEMPLATE)
    assert revisions.template_hash(other) == revisions.template_hash(TEMPLATE)


def test_without_hash_copies_and_does_not_touch_its_input() -> None:
    labelled = copy.deepcopy(TEMPLATE)
    labelled["metadata"]["labels"][revisions.HASH_LABEL] = "abc"

    stripped = revisions.without_hash(labelled)

    assert stripped == TEMPLATE
    assert labelled["metadata"]["labels"][revisions.HASH_LABEL] == "abc"
    assert revisions.without_hash({"spec": {}}) == {"spec": {}}


# --- times ------------------------------------------------------------------------------------


def test_rfc3339_round_trip() -> None:
    assert revisions.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert revisions.rfc3339(1714557600) == "2024-05-01T10:00:00Z"
    assert revisions.parse_time("2024-05-01T10:00:00Z") == 1714557600


# --- made_progress ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (Counts(10, 0, 10, 10), Counts(13, 3, 10, 10), True),  # new pods created
        (Counts(13, 3, 10, 10), Counts(11, 3, 8, 8), True),  # old pods removed
        (Counts(11, 3, 8, 8), Counts(11, 3, 9, 8), True),  # a pod turned ready
        (Counts(11, 3, 9, 8), Counts(11, 3, 9, 9), True),  # a pod turned available
        (Counts(11, 3, 9, 9), Counts(11, 3, 9, 9), False),  # nothing changed
        (Counts(11, 3, 9, 9), Counts(11, 3, 7, 7), False),  # pods went unready
        (Counts(10, 5, 10, 10), Counts(10, 5, 10, 10), False),
        (Counts(10, 0, 10, 10), Counts(12, 0, 10, 10), False),  # more old pods is no progress
        (Counts(5, 5, 5, 5), Counts(4, 4, 4, 4), False),  # a pod of the new revision went away
    ],
)
def test_made_progress(before: Counts, after: Counts, expected: bool) -> None:
    assert revisions.made_progress(before, after) is expected


# --- available_condition ----------------------------------------------------------------------

T0_TS = 1714557600.0
T0 = revisions.rfc3339(T0_TS)


def _at(seconds: float) -> tuple[float, str]:
    return T0_TS + seconds, revisions.rfc3339(T0_TS + seconds)


@pytest.mark.parametrize(
    ("available", "desired", "max_unavailable", "status", "reason"),
    [
        (8, 10, 2, "True", "MinimumReplicasAvailable"),
        (10, 10, 2, "True", "MinimumReplicasAvailable"),
        (7, 10, 2, "False", "MinimumReplicasUnavailable"),
        (0, 1, 1, "True", "MinimumReplicasAvailable"),
        (0, 1, 0, "False", "MinimumReplicasUnavailable"),
        (0, 0, 0, "True", "MinimumReplicasAvailable"),
    ],
)
def test_available_condition(available: int, desired: int, max_unavailable: int, status: str, reason: str) -> None:
    cond = revisions.available_condition(available, desired, max_unavailable, T0, None)

    assert cond["type"] == "Available"
    assert cond["status"] == status
    assert cond["reason"] == reason
    assert cond["lastUpdateTime"] == T0
    assert cond["lastTransitionTime"] == T0
    expected = (
        "Deployment has minimum availability." if status == "True" else "Deployment does not have minimum availability."
    )
    assert cond["message"] == expected


def test_available_condition_keeps_its_times_while_status_holds() -> None:
    first = revisions.available_condition(10, 10, 2, T0, None)
    _, later = _at(300)

    second = revisions.available_condition(9, 10, 2, later, first)

    assert second == first


def test_available_condition_transition_time_moves_with_the_status() -> None:
    first = revisions.available_condition(10, 10, 2, T0, None)
    _, later = _at(300)

    second = revisions.available_condition(5, 10, 2, later, first)

    assert second["status"] == "False"
    assert second["lastTransitionTime"] == later
    assert second["lastUpdateTime"] == later


# --- progressing_condition --------------------------------------------------------------------

RS = "web-5d8f7c9b6d"


def _progressing(
    old: Obj | None,
    seconds: float = 0,
    *,
    complete: bool = False,
    created: bool = False,
    progressed: bool = False,
    paused: bool = False,
    all_updated: bool = False,
    deadline: int = 600,
) -> Obj:
    now_ts, now = _at(seconds)
    return revisions.progressing_condition(
        rs_name=RS,
        complete=complete,
        created=created,
        progressed=progressed,
        paused=paused,
        all_updated=all_updated,
        deadline_seconds=deadline,
        now_ts=now_ts,
        now=now,
        old=old,
    )


def test_new_replicaset_created() -> None:
    cond = _progressing(None, created=True)

    assert cond == {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetCreated",
        "message": f'Created new replica set "{RS}"',
        "lastUpdateTime": T0,
        "lastTransitionTime": T0,
    }


def test_new_rollout_after_a_completed_one_keeps_the_transition_time() -> None:
    done = _progressing(None, complete=True)

    cond = _progressing(done, 3600, created=True)

    assert cond["reason"] == "NewReplicaSetCreated"
    assert cond["lastUpdateTime"] == _at(3600)[1]
    assert cond["lastTransitionTime"] == T0  # status stayed True


def test_replicaset_updated_on_progress() -> None:
    created = _progressing(None, created=True)

    cond = _progressing(created, 30, progressed=True)

    assert cond["status"] == "True"
    assert cond["reason"] == "ReplicaSetUpdated"
    assert cond["message"] == f'ReplicaSet "{RS}" is progressing.'
    assert cond["lastUpdateTime"] == _at(30)[1]
    assert cond["lastTransitionTime"] == T0


def test_without_progress_the_condition_is_left_alone_until_the_deadline() -> None:
    created = _progressing(None, created=True)

    assert _progressing(created, 1) == created
    assert _progressing(created, 599) == created
    assert _progressing(created, 600) == created  # k8s: lastUpdateTime + deadline must be *before* now


def test_progress_deadline_exceeded_after_deadline_without_progress() -> None:
    created = _progressing(None, created=True)

    cond = _progressing(created, 601)

    assert cond["status"] == "False"
    assert cond["reason"] == "ProgressDeadlineExceeded"
    assert cond["message"] == f'ReplicaSet "{RS}" has timed out progressing.'
    assert cond["lastTransitionTime"] == _at(601)[1]


def test_deadline_counts_from_the_last_progress() -> None:
    created = _progressing(None, created=True)
    moved = _progressing(created, 500, progressed=True)

    assert _progressing(moved, 1000) == moved
    assert _progressing(moved, 1101)["reason"] == "ProgressDeadlineExceeded"


def test_short_custom_deadline() -> None:
    created = _progressing(None, created=True, deadline=30)

    assert _progressing(created, 30, deadline=30) == created
    assert _progressing(created, 31, deadline=30)["reason"] == "ProgressDeadlineExceeded"


def test_exceeded_stays_exceeded_without_progress() -> None:
    exceeded = _progressing(_progressing(None, created=True), 601)

    assert _progressing(exceeded, 5000) == exceeded


def test_progress_after_the_deadline_resumes_the_rollout() -> None:
    exceeded = _progressing(_progressing(None, created=True), 601)

    cond = _progressing(exceeded, 700, progressed=True)

    assert cond["status"] == "True"
    assert cond["reason"] == "ReplicaSetUpdated"
    assert cond["lastTransitionTime"] == _at(700)[1]


def test_no_deadline_while_paused() -> None:
    created = _progressing(None, created=True)

    paused = _progressing(created, 10_000, paused=True)

    assert paused["status"] == "Unknown"
    assert paused["reason"] == "DeploymentPaused"
    assert paused["message"] == "Deployment is paused"
    assert paused["lastTransitionTime"] == _at(10_000)[1]
    # Still paused a day later: no deadline, and the condition does not move.
    assert _progressing(paused, 100_000, paused=True) == paused


def test_resuming_restarts_the_deadline_clock() -> None:
    paused = _progressing(_progressing(None, created=True), 10, paused=True)

    resumed = _progressing(paused, 50_000)

    assert resumed["status"] == "True"
    assert resumed["reason"] == "ReplicaSetUpdated"
    assert _progressing(resumed, 50_600) == resumed
    assert _progressing(resumed, 50_601)["reason"] == "ProgressDeadlineExceeded"


def test_new_replicaset_available_when_complete() -> None:
    moving = _progressing(_progressing(None, created=True), 20, progressed=True)

    done = _progressing(moving, 40, complete=True, progressed=True)

    assert done["status"] == "True"
    assert done["reason"] == "NewReplicaSetAvailable"
    assert done["message"] == f'ReplicaSet "{RS}" has successfully progressed.'
    assert done["lastUpdateTime"] == _at(40)[1]
    assert done["lastTransitionTime"] == T0


def test_complete_wins_over_the_deadline() -> None:
    created = _progressing(None, created=True)

    assert _progressing(created, 5000, complete=True)["reason"] == "NewReplicaSetAvailable"


def test_complete_condition_is_not_rewritten_on_later_syncs() -> None:
    done = _progressing(None, complete=True)

    assert _progressing(done, 10_000, complete=True) is done


@pytest.mark.parametrize("progressed", [False, True])
def test_finished_rollout_keeps_new_replicaset_available_when_availability_drops(progressed: bool) -> None:
    done = _progressing(None, complete=True)

    assert _progressing(done, 60, progressed=progressed, all_updated=True) == done


def test_finished_rollout_never_times_out_because_a_pod_crashed() -> None:
    cond = _progressing(None, complete=True)
    for seconds in range(60, 2000, 60):
        cond = _progressing(cond, seconds, all_updated=True)  # a pod is unavailable: not complete, no progress

    assert cond["reason"] == "NewReplicaSetAvailable"
