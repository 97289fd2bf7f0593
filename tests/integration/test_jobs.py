"""Jobs for real: pods of the test image run to completion, fail, retry, and go with their Job.

Also the classic GitOps migration: an Argo CD ``PreSync`` hook of kind Job runs before the
app's Deployment is applied, and a failing one stops the sync before anything else changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from funade.core import revisions
from tests.integration.conftest import Funade

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
IMAGE = "funade-testapp:1.0.0"


def job(name: str, script: str, **spec: Any) -> Obj:
    """A Job whose pods run ``sh -c script`` in the test image (busybox inside)."""
    container = {"name": "main", "image": IMAGE, "command": ["/bin/sh", "-c", script]}
    template = {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2, "containers": [container]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"template": template, **spec}}


def status_of(funade: Funade, ns: str, name: str) -> Obj:
    return dict(funade.obj("Job", ns, name).get("status") or {})


def finished(funade: Funade, ns: str, name: str) -> str | None:
    for condition in status_of(funade, ns, name).get("conditions") or []:
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return str(condition["type"])
    return None


def job_pods(funade: Funade, ns: str, name: str) -> list[Obj]:
    return funade.pods(ns, f"batch.kubernetes.io/job-name={name}")


def test_a_job_runs_its_completions_in_parallel_and_keeps_its_pods_until_deleted(funade: Funade, ns: str) -> None:
    assert funade.apply(ns, job("batch", "echo done $HOSTNAME", completions=3, parallelism=2)).code == 0
    funade.wait_until(lambda: finished(funade, ns, "batch") == "Complete", 90, "the Job complete", namespace=ns)
    status = status_of(funade, ns, "batch")
    assert (status["succeeded"], status.get("failed", 0), status["active"]) == (3, 0, 0), status
    assert status["completionTime"] >= status["startTime"]
    pods = job_pods(funade, ns, "batch")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    logs = funade.cli("logs", pods[0]["metadata"]["name"], "-n", ns)
    assert logs.code == 0 and "done" in logs.stdout, logs.output
    table = funade.cli("get", "jobs", "-n", ns)
    assert table.code == 0 and "batch" in table.stdout and "Complete" in table.stdout and "3/3" in table.stdout
    # The template is immutable, as the API server has it: a new run is a new Job.
    changed = funade.apply(ns, job("batch", "echo other", completions=3, parallelism=2))
    assert changed.code != 0 and "field is immutable" in changed.stderr, changed.output
    assert funade.cli("delete", "job", "batch", "-n", ns).code == 0
    funade.wait_until(lambda: not job_pods(funade, ns, "batch"), 60, "the Job's pods deleted with it", namespace=ns)


def test_a_failing_job_stops_at_its_backoff_limit(funade: Funade, ns: str) -> None:
    assert funade.apply(ns, job("broken", "echo failing; exit 3", backoffLimit=0)).code == 0
    funade.wait_until(lambda: finished(funade, ns, "broken") == "Failed", 60, "the Job failed", namespace=ns)
    conditions = {c["type"]: c for c in status_of(funade, ns, "broken")["conditions"]}
    assert conditions["Failed"]["reason"] == "BackoffLimitExceeded"
    assert status_of(funade, ns, "broken")["failed"] == 1 and len(job_pods(funade, ns, "broken")) == 1
    assert any(e["reason"] == "BackoffLimitExceeded" for e in funade.events(ns))


def test_an_indexed_job_gives_each_pod_its_index(funade: Funade, ns: str) -> None:
    spec = {"completions": 3, "parallelism": 3, "completionMode": "Indexed"}
    assert funade.apply(ns, job("shards", "echo shard=$JOB_COMPLETION_INDEX", **spec)).code == 0
    funade.wait_until(lambda: finished(funade, ns, "shards") == "Complete", 90, "the indexed Job", namespace=ns)
    assert status_of(funade, ns, "shards")["completedIndexes"] == "0-2"
    said = set()
    for pod in job_pods(funade, ns, "shards"):
        said.add(funade.cli("logs", pod["metadata"]["name"], "-n", ns).stdout.strip())
    assert said == {"shard=0", "shard=1", "shard=2"}


def test_the_active_deadline_stops_a_job_that_runs_too_long(funade: Funade, ns: str) -> None:
    assert funade.apply(ns, job("slow", "sleep 300", activeDeadlineSeconds=3)).code == 0
    funade.wait_until(lambda: finished(funade, ns, "slow") == "Failed", 60, "the deadline", namespace=ns)
    conditions = {c["type"]: c for c in status_of(funade, ns, "slow")["conditions"]}
    assert conditions["Failed"]["reason"] == "DeadlineExceeded"
    funade.wait_until(
        lambda: all(p["status"].get("phase") != "Running" for p in job_pods(funade, ns, "slow")),
        60,
        "its pod stopped",
        namespace=ns,
    )


def cron_job(name: str, schedule: str, **spec: Any) -> Obj:
    template = job(name, "echo tick")["spec"]
    body = {"schedule": schedule, "jobTemplate": {"spec": template}, **spec}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": body}


def test_a_cronjob_starts_its_job_on_schedule_and_takes_it_along_when_deleted(funade: Funade, ns: str) -> None:
    """Job names count minutes (as Kubernetes'), so the shortest schedule is a minute: one run is waited for."""
    refused = funade.apply(ns, cron_job("bad", "61 * * * *"))
    assert refused.code != 0 and "spec.schedule" in refused.stderr, refused.output
    assert funade.apply(ns, cron_job("tick", "* * * * *", concurrencyPolicy="Forbid")).code == 0

    def succeeded() -> Obj | None:
        status = funade.obj("CronJob", ns, "tick").get("status") or {}
        return status if status.get("lastSuccessfulTime") else None

    status = funade.wait_until(succeeded, 90, "the first scheduled run done", namespace=ns)
    assert status["lastScheduleTime"].endswith(":00Z"), status  # on the minute
    (run,) = [
        j for j in funade.get("/v1/objects/Job", namespace=ns)["items"] if j["metadata"]["name"].startswith("tick-")
    ]
    minutes = int(run["metadata"]["name"].removeprefix("tick-"))
    assert revisions.rfc3339(minutes * 60) == status["lastScheduleTime"]
    assert run["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert run["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    (pod,) = job_pods(funade, ns, run["metadata"]["name"])
    assert funade.cli("logs", pod["metadata"]["name"], "-n", ns).stdout.strip() == "tick"
    table = funade.cli("get", "cronjobs", "-n", ns)
    assert table.code == 0 and "* * * * *" in table.stdout and "<none>" in table.stdout, table.output

    assert funade.cli("delete", "cronjob", "tick", "-n", ns).code == 0
    funade.wait_until(
        lambda: not funade.get("/v1/objects/Job", namespace=ns)["items"] and not funade.pods(ns),
        60,
        "the CronJob's Jobs and pods deleted with it",
        namespace=ns,
    )
