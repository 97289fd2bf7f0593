"""The CronJob controller of the local target: batch/v1 CronJobs start their Jobs on schedule.

Each pass reads every CronJob and the Jobs it owns, lets
:func:`funade.core.cronjobs.decide` choose (the most recent unmet schedule time, the
starting deadline, ``concurrencyPolicy``, ``suspend``, the history limits), and does it:
a Job named ``<cronjob>-<minutes since the epoch>`` is applied through the same
validation as ``funade apply``, superseded or surplus Jobs are deleted (their pods go
with them), and the status gets ``lastScheduleTime``, ``lastSuccessfulTime`` and the
active Jobs. Jobs whose CronJob is gone are deleted, as Kubernetes' garbage collector does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from funade.controller.workloads import owner_uid, record
from funade.core import cronjobs, revisions
from funade.core.ports import ObjectKey, Store
from funade.engine import workloads

__all__ = ["KIND", "CronJobController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = "CronJob"


class CronJobController:
    """Starts the Jobs of every stored CronJob when their time comes."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock
        self.workloads = workloads.Workloads(store)

    async def reconcile(self) -> None:
        cron_jobs = self.store.list_objects(KIND)
        owners = {c["metadata"]["uid"]: c for c in cron_jobs}
        children: dict[str, list[Obj]] = {}
        for job in self.store.list_objects("Job"):
            owner = owner_uid(job)
            refs = (job.get("metadata") or {}).get("ownerReferences") or []
            if owner is None or not any(r.get("kind") == KIND for r in refs):
                continue
            if owner not in owners:  # its CronJob was deleted: the Job (and so its pods) goes too
                self.store.delete(ObjectKey.of(job))
                continue
            children.setdefault(owner, []).append(job)
        for cron_job in cron_jobs:
            try:
                self._sync(cron_job, children.get(cron_job["metadata"]["uid"], []))
            except Exception:
                log.exception("cronjob %s: reconcile failed", cron_job["metadata"]["name"])

    def _sync(self, cron_job: Obj, jobs: list[Obj]) -> None:
        try:
            spec = cronjobs.parse(cron_job)
        except cronjobs.CronError as exc:  # stored before funade ran CronJobs
            log.warning("cronjob %s: %s", cron_job["metadata"]["name"], exc)
            return
        meta, status = cron_job["metadata"], dict(cron_job.get("status") or {})
        now = self.clock()
        created = _time(meta.get("creationTimestamp")) or now
        decision = cronjobs.decide(
            spec,
            now,
            created,
            _time(status.get("lastScheduleTime")),
            [cronjobs.observe_job(j, meta["name"]) for j in jobs],
            last_successful_time=_time(status.get("lastSuccessfulTime")),
        )
        namespace = meta.get("namespace") or "default"
        for name in decision.delete:
            self.store.delete(ObjectKey("Job", namespace, name))
        if decision.create is not None:
            job = cronjobs.job_from_template(cron_job, decision.create.scheduled_time)
            try:
                self.workloads.apply([job], namespace)
            except workloads.WorkloadError as exc:
                record(self.store, cron_job, "Warning", "FailedCreate", f"Error creating job: {exc}")
                return
        for event in decision.events:
            record(self.store, cron_job, event.type, event.reason, event.message)
        by_name = {j["metadata"]["name"]: j for j in self.store.list_objects("Job", namespace)}
        active = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": n,
                "namespace": namespace,
                "uid": by_name[n]["metadata"]["uid"],
            }
            for n in decision.active
            if n in by_name
        ]
        new = {
            **status,
            "active": active or None,
            "lastScheduleTime": _stamp(decision.last_schedule_time),
            "lastSuccessfulTime": _stamp(decision.last_successful_time),
        }
        new = {k: v for k, v in new.items() if v is not None}
        if new != status:
            self.store.put_status(ObjectKey.of(cron_job), new)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else revisions.rfc3339(value.timestamp())
