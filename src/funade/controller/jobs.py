"""The Job controller of the local target: batch/v1 Jobs run their pods to completion.

Each pass reads every Job and its pods (the kubelet's workers that the Job owns), lets
:func:`funade.core.jobs.decide` say what to start, what to stop and the new status, and
does it: pods are made from the Job's template with Kubernetes' labels
(``batch.kubernetes.io/job-name``, ``…/controller-uid``) and, for an Indexed Job, the
completion index (annotation, ``JOB_COMPLETION_INDEX``, hostname ``<job>-<index>``).
Finished pods stay, as ``kubectl get pods`` shows them ``Completed``, until the Job goes:
deleting a Job deletes its pods, and ``ttlSecondsAfterFinished`` deletes a finished Job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from funade.controller.kubelet import Kubelet, PodWorker
from funade.controller.workloads import owned_pod, owner_uid, pod_suffix, record
from funade.core import jobs, revisions
from funade.core.ports import ObjectKey, Store

__all__ = ["KIND", "JobController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = "Job"


class JobController:
    """Runs every stored Job's pods."""

    def __init__(self, store: Store, kubelet: Kubelet) -> None:
        self.store = store
        self.kubelet = kubelet

    async def reconcile(self) -> None:
        for job in self.store.list_objects(KIND):
            try:
                await self._job(job)
            except Exception:
                log.exception("job %s/%s: reconcile failed", job["metadata"].get("namespace"), job["metadata"]["name"])

    def owners(self) -> set[str]:
        """The uids of the Jobs that may own pods (for the garbage collector)."""
        return {j["metadata"]["uid"] for j in self.store.list_objects(KIND)}

    async def _job(self, job: Obj) -> None:
        try:
            spec = jobs.parse(job)
        except jobs.JobError as exc:  # stored before funade ran Jobs: say why it does nothing
            log.warning("job %s: %s", job["metadata"]["name"], exc)
            return
        uid = job["metadata"]["uid"]
        workers = [w for w in self.kubelet.pods() if owner_uid(w.pod) == uid and w.terminating is None]
        now = time.time()
        status = job.get("status") or {}
        decision = jobs.decide(spec, status, [_state(w) for w in workers], now, revisions.rfc3339(now))
        by_name = {w.name: w for w in workers}
        for name in decision.delete:
            if name in by_name:
                self.kubelet.delete_pod(by_name[name].uid)
        if decision.create:
            created = await asyncio.gather(
                *(self.kubelet.create_pod(self._new_pod(job, index)) for index in decision.create),
                return_exceptions=True,
            )
            failed = [c for c in created if isinstance(c, BaseException)]
            if failed:
                raise failed[0]
        for type_, reason, message in decision.events:
            record(self.store, job, type_, reason, message)
        if decision.status != status:
            self.store.put_status(ObjectKey.of(job), decision.status)
        if decision.finished is not None and spec.ttl_after_finished is not None:
            self._expire(job, decision.status, spec.ttl_after_finished, now)

    def _expire(self, job: Obj, status: Obj, ttl: int, now: float) -> None:
        """``ttlSecondsAfterFinished``: the finished Job (and so its pods) is deleted once the time is up."""
        over = [c for c in status.get("conditions") or [] if c.get("type") in ("Complete", "Failed")]
        stamps = [c.get("lastTransitionTime") for c in over]
        finished_at = min((revisions.parse_time(s) for s in stamps if s), default=now)
        if now >= finished_at + ttl:
            self.store.delete(ObjectKey.of(job))
            for worker in self.kubelet.pods():
                if owner_uid(worker.pod) == job["metadata"]["uid"]:
                    self.kubelet.delete_pod(worker.uid)

    def _new_pod(self, job: Obj, index: int | None) -> Obj:
        template = json.loads(json.dumps(job["spec"]["template"]))
        meta = job["metadata"]
        pod_meta = template.setdefault("metadata", {})
        pod_meta["labels"] = {
            **(pod_meta.get("labels") or {}),
            jobs.CONTROLLER_UID_LABEL: meta["uid"],
            jobs.JOB_NAME_LABEL: meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        name = f"{meta['name']}-{pod_suffix()}"
        if index is not None:
            name = f"{meta['name']}-{index}-{pod_suffix()}"
            pod_meta["labels"][jobs.COMPLETION_INDEX_ANNOTATION] = str(index)
            pod_meta["annotations"] = {
                **(pod_meta.get("annotations") or {}),
                jobs.COMPLETION_INDEX_ANNOTATION: str(index),
            }
            spec = template["spec"]
            spec.setdefault("hostname", f"{meta['name']}-{index}")
            for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
                env = [e for e in container.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                container["env"] = [*env, {"name": "JOB_COMPLETION_INDEX", "value": str(index)}]
        return owned_pod(job, "batch/v1", template, name)


def _state(worker: PodWorker) -> jobs.PodState:
    view = worker.view()
    status = view.get("status") or {}
    containers = status.get("containerStatuses") or []
    finished = [
        revisions.parse_time(str(c["state"]["terminated"]["finishedAt"]))
        for c in containers
        if "terminated" in (c.get("state") or {}) and c["state"]["terminated"].get("finishedAt")
    ]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    index = (view["metadata"].get("annotations") or {}).get(jobs.COMPLETION_INDEX_ANNOTATION)
    return jobs.PodState(
        name=worker.name,
        phase=str(status.get("phase") or "Pending"),
        index=int(index) if index is not None and str(index).isdigit() else None,
        restarts=sum(int(c.get("restartCount", 0)) for c in containers),
        ready=ready,
        created_at=worker.sandbox.created,
        finished_at=max(finished) if finished else None,
    )
