"""Jobs: the job controller's decisions (how many pods, when it is over) and the Job's validation."""

from __future__ import annotations

from typing import Any

import pytest

from funade.core import jobs, revisions
from funade.core.jobs import JobSpec, PodState

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
NOW = 1_800_000_000.0
STAMP = revisions.rfc3339(NOW)


def job(**spec: Any) -> Obj:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "app:1"}]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": template, **spec},
    }


def pods(*phases: str, **extra: Any) -> list[PodState]:
    return [PodState(f"p{i}", phase, created_at=NOW - 100 + i, **extra) for i, phase in enumerate(phases)]


def decide(spec: JobSpec, found: list[PodState], status: Obj | None = None, now: float = NOW) -> jobs.Decision:
    return jobs.decide(spec, status or {}, found, now, revisions.rfc3339(now))


def condition_types(decision: jobs.Decision) -> list[str]:
    return [c["type"] for c in decision.status.get("conditions", []) if c["status"] == "True"]


# -- validation --------------------------------------------------------------------------------


def test_defaults_are_the_api_servers() -> None:
    assert jobs.parse(job()) == JobSpec(completions=1, parallelism=1, backoff_limit=6)
    # parallelism without completions: the work-queue pattern.
    assert jobs.parse(job(parallelism=3)).completions is None
    indexed = jobs.parse(job(completionMode="Indexed", completions=4, parallelism=2, ttlSecondsAfterFinished=60))
    assert (indexed.indexed, indexed.completions, indexed.ttl_after_finished) == (True, 4, 60)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"backoffLimit": -1}, r"spec.backoffLimit: must be greater than or equal to 0"),
        ({"completions": "3"}, r"spec.completions: '3' is not an integer"),
        ({"completionMode": "Indexed", "parallelism": 2}, r"spec.completions: Required value"),
        ({"completionMode": "Sometimes"}, r"spec.completionMode: 'Sometimes'"),
        ({"activeDeadlineSeconds": 0}, r"spec.activeDeadlineSeconds: must be greater than or equal to 1"),
    ],
)
def test_invalid_jobs_name_the_field(spec: Obj, message: str) -> None:
    with pytest.raises(jobs.JobError, match=message):
        jobs.parse(job(**spec))


def test_a_job_pod_must_not_restart_always() -> None:
    always = job()
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(jobs.JobError, match=r'spec.template.spec.restartPolicy: .*"OnFailure", "Never"'):
        jobs.parse(always)


def test_the_pod_template_is_validated_and_defaulted_like_a_pods() -> None:
    template = jobs.pod_template(job())
    assert template["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    typo = job()
    typo["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(jobs.JobError, match=r"spec.template.spec.containers\[0\]"):
        jobs.pod_template(typo)


# -- running pods ------------------------------------------------------------------------------


def test_a_new_job_starts_parallelism_pods_but_no_more_than_it_still_needs() -> None:
    first = decide(JobSpec(completions=5, parallelism=2), [])
    assert first.create == (None, None) and first.status["startTime"] == STAMP
    assert first.events == (("Normal", "SuccessfulCreate", "Created 2 pod(s)"),)
    # 4 of 5 succeeded, one running: nothing more to start.
    assert decide(JobSpec(completions=5, parallelism=2), pods(*["Succeeded"] * 4, "Running")).create == ()
    assert decide(JobSpec(completions=5, parallelism=3), pods(*["Succeeded"] * 3)).create == (None, None)


def test_completions_reached_completes_the_job_and_stops_the_rest() -> None:
    found = pods("Succeeded", "Succeeded", "Running")
    decision = decide(JobSpec(completions=2, parallelism=3), found, {"startTime": revisions.rfc3339(NOW - 30)})
    assert decision.finished == "Complete" and decision.delete == ("p2",)
    assert condition_types(decision) == ["SuccessCriteriaMet", "Complete"]
    assert decision.status["completionTime"] == STAMP and decision.status["succeeded"] == 2
    assert decision.status["active"] == 0 and decision.status["startTime"] == revisions.rfc3339(NOW - 30)
    # Once over, a later sync changes nothing and starts nothing.
    again = decide(JobSpec(completions=2, parallelism=3), pods("Succeeded", "Succeeded"), decision.status)
    assert again.finished == "Complete" and again.create == () and again.events == ()


def test_a_work_queue_completes_when_one_succeeded_and_the_others_stopped() -> None:
    spec = JobSpec(completions=None, parallelism=3)
    assert decide(spec, []).create == (None, None, None)
    running = decide(spec, pods("Succeeded", "Running", "Running"))
    assert running.finished is None and running.create == ()  # no new pod once one succeeded
    assert decide(spec, pods("Succeeded", "Succeeded", "Failed")).finished == "Complete"


def test_too_many_failures_fail_the_job_with_never() -> None:
    spec = JobSpec(completions=1, backoff_limit=1)
    # One failure: within the limit, and the replacement waits out the 10 s back-off.
    failed_once = [PodState("p0", "Failed", finished_at=NOW - 4)]
    waiting = decide(spec, failed_once)
    assert waiting.create == () and waiting.requeue_after == pytest.approx(6)
    assert decide(spec, failed_once, now=NOW + 6).create == (None,)
    # The back-off doubles: 10 s after the first failure, 20 s after the second.
    twice = [PodState("a", "Failed", finished_at=NOW), PodState("b", "Failed", finished_at=NOW)]
    assert decide(JobSpec(backoff_limit=5), twice).requeue_after == pytest.approx(20)
    over = decide(spec, [PodState("p0", "Failed"), PodState("p1", "Failed"), PodState("p2", "Running")])
    assert over.finished == "Failed" and over.delete == ("p2",)
    failed = next(c for c in over.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and over.events[0][:2] == ("Warning", "BackoffLimitExceeded")


def test_with_on_failure_container_restarts_count_against_the_limit() -> None:
    spec = JobSpec(backoff_limit=2, restart_policy="OnFailure")
    assert decide(spec, [PodState("p0", "Running", restarts=1)]).finished is None
    assert decide(spec, [PodState("p0", "Running", restarts=2)]).finished == "Failed"
    no_retry = JobSpec(backoff_limit=0, restart_policy="OnFailure")
    assert decide(no_retry, [PodState("p", "Running", restarts=1)]).finished == "Failed"


def test_the_active_deadline_fails_the_job_and_stops_its_pods() -> None:
    spec = JobSpec(active_deadline=60)
    started = {"startTime": revisions.rfc3339(NOW - 59)}
    early = decide(spec, pods("Running"), started)
    assert early.finished is None and early.requeue_after == pytest.approx(1)
    late = decide(spec, pods("Running"), started, now=NOW + 1)
    assert late.finished == "Failed" and late.delete == ("p0",)
    assert next(c for c in late.status["conditions"] if c["type"] == "Failed")["reason"] == "DeadlineExceeded"


def test_suspend_stops_the_pods_and_resume_starts_the_clock_again() -> None:
    suspended = decide(
        JobSpec(completions=2, parallelism=2, suspend=True), pods("Running", "Pending"), {"startTime": STAMP}
    )
    assert suspended.delete == ("p0", "p1") and "startTime" not in suspended.status
    assert condition_types(suspended) == ["Suspended"] and suspended.status["active"] == 0
    resumed = decide(JobSpec(completions=2, parallelism=2), [], suspended.status, now=NOW + 50)
    assert resumed.create == (None, None) and resumed.status["startTime"] == revisions.rfc3339(NOW + 50)
    (flag,) = [c for c in resumed.status["conditions"] if c["type"] == "Suspended"]
    assert (flag["status"], flag["reason"]) == ("False", "JobResumed")


def test_lowering_parallelism_stops_pending_and_unready_pods_first() -> None:
    found = [
        PodState("ready-old", "Running", ready=True, created_at=NOW - 50),
        PodState("pending", "Pending", created_at=NOW - 40),
        PodState("unready", "Running", ready=False, created_at=NOW - 30),
    ]
    assert set(decide(JobSpec(completions=5, parallelism=1), found).delete) == {"pending", "unready"}


def test_an_indexed_job_runs_each_index_once() -> None:
    spec = JobSpec(completions=4, parallelism=2, indexed=True)
    assert decide(spec, []).create == (0, 1)
    found = [
        PodState("a", "Succeeded", index=0),
        PodState("b", "Running", index=1),
        PodState("c", "Succeeded", index=0),
    ]
    decision = decide(spec, found)
    assert decision.create == (2,)  # index 0 counts once; 1 runs; the lowest free index is next
    assert decision.status["succeeded"] == 1 and decision.status["completedIndexes"] == "0"
    done = [PodState(str(i), "Succeeded", index=i) for i in range(4)]
    assert decide(spec, done).finished == "Complete"


def test_completed_indexes_are_written_as_ranges() -> None:
    assert jobs.compress_indexes([0, 1, 2, 4, 6, 7, 7]) == "0-2,4,6-7"
    assert jobs.compress_indexes([]) == ""


def test_the_stored_job_carries_the_api_servers_defaults() -> None:
    spec = jobs.defaulted(job())["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"]) == ("NonIndexed", False)
    assert "completions" not in jobs.defaulted(job(parallelism=3))["spec"]  # a work queue stays one
    assert jobs.defaulted(job())["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
