"""Deployment, ReplicaSet and bare-Pod controllers of the local target.

Level-based: every pass re-reads the stored objects and the kubelet's live pods and takes
the next idempotent step (create a revision, scale one, create or delete pods, write
status). Killing the server between any two steps and starting it again converges.
Beyond Kubernetes, a Deployment whose new revision fails is rolled back to the last
revision that was healthy, like the ECS deployment circuit breaker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from typing import Any

from funade.controller.kubelet import Kubelet, PodWorker
from funade.core import revisions, rolling
from funade.core.ports import Event, ObjectKey, Store

__all__ = ["WorkloadController", "owner_uid", "record", "revision_of", "set_replicas"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

HEALTHY_ANNOTATION = "funade.io/healthy"
AUTO_ROLLBACK = "funade.io/auto-rollback"
ROLLBACK_GENERATION = "funade.io/rollback-generation"


def owner_uid(obj: Obj) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def revision_of(rs: Obj) -> int:
    return int(rs["metadata"].get("annotations", {}).get(revisions.REVISION_ANNOTATION, "0"))


def _ready_since(pod: Obj) -> float | None:
    for cond in pod.get("status", {}).get("conditions", []):
        if cond["type"] == "Ready" and cond["status"] == "True":
            return revisions.parse_time(cond["lastTransitionTime"])
    return None


def record(store: Store, obj: Obj, type_: str, reason: str, message: str, at: float | None = None) -> None:
    """An event about ``obj`` (its kind, namespace and name), at ``at`` (default: now)."""
    meta = obj["metadata"]
    when = time.time() if at is None else at
    store.add_event(Event(when, meta.get("namespace", ""), obj["kind"], meta["name"], type_, reason, message))


def pod_suffix() -> str:
    """The five random characters Kubernetes puts after a generated pod name."""
    return "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def owned_pod(owner: Obj, api_version: str, template: Obj, name: str) -> Obj:
    """A pod made from ``template`` (copied by the caller) that ``owner`` controls (an ownerReference)."""
    meta = owner["metadata"]
    pod_meta = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": str(uuid.uuid4()),
            "labels": pod_meta.get("labels") or {},
            "annotations": pod_meta.get("annotations") or {},
            "creationTimestamp": revisions.rfc3339(time.time()),
            "ownerReferences": [
                {
                    "apiVersion": api_version,
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def set_replicas(store: Store, rs: Obj, replicas: int, owner: Obj) -> None:
    """Scale a ReplicaSet and say so on its owner (a Deployment or a Rollout), as Kubernetes does."""
    old = int(rs["spec"].get("replicas", 0))
    if old == replicas:
        return
    rs["spec"]["replicas"] = replicas
    store.put_many([rs])
    verb = "up" if replicas > old else "down"
    record(
        store,
        owner,
        "Normal",
        "ScalingReplicaSet",
        f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}",
    )


class WorkloadController:
    """Reconciles Deployments → ReplicaSets → Pods on the local target."""

    def __init__(self, store: Store, kubelet: Kubelet) -> None:
        self.store = store
        self.kubelet = kubelet

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        record(self.store, obj, type_, reason, message)

    def live_pods(self) -> list[PodWorker]:
        return [w for w in self.kubelet.pods() if w.terminating is None]

    async def reconcile(self) -> None:
        """One pass over every workload."""
        for deployment in self.store.list_objects("Deployment"):
            try:
                self._deployment(deployment)
            except Exception:
                log.exception("deployment %s: reconcile failed", deployment["metadata"]["name"])
        for rs in self.store.list_objects("ReplicaSet"):
            try:
                await self._replicaset(rs)
            except Exception:
                log.exception("replicaset %s: reconcile failed", rs["metadata"]["name"])
        await self._bare_pods()
        self._collect_garbage()

    # -- pods -----------------------------------------------------------------------

    async def _bare_pods(self) -> None:
        wanted = {p["metadata"]["uid"]: p for p in self.store.list_objects("Pod")}
        for worker in self.kubelet.pods():
            owner = owner_uid(worker.pod)
            if owner is None and worker.uid not in wanted and worker.terminating is None:
                self.kubelet.delete_pod(worker.uid)
        running = {w.uid for w in self.kubelet.pods()}
        for uid, pod in wanted.items():
            if uid not in running:
                await self.kubelet.create_pod(pod)

    def _collect_garbage(self) -> None:
        """Delete what lost its owner: ReplicaSets of deleted Deployments and Rollouts, pods of deleted
        ReplicaSets and Jobs."""
        # ReplicaSets belong to Deployments or to Rollouts (controller/rollouts.py).
        deployments = {
            d["metadata"]["uid"] for kind in ("Deployment", "Rollout") for d in self.store.list_objects(kind)
        }
        replicasets = {}
        for rs in self.store.list_objects("ReplicaSet"):
            owner = owner_uid(rs)
            if owner is not None and owner not in deployments:
                self.store.delete(ObjectKey.of(rs))
                continue
            replicasets[rs["metadata"]["uid"]] = rs
        # Pods belong to ReplicaSets or to Jobs (controller/jobs.py).
        owners = set(replicasets) | {j["metadata"]["uid"] for j in self.store.list_objects("Job")}
        for worker in self.kubelet.pods():
            owner = owner_uid(worker.pod)
            if owner is not None and owner not in owners and worker.terminating is None:
                self.kubelet.delete_pod(worker.uid)

    # -- replica sets ---------------------------------------------------------------

    def _pods_of(self, rs: Obj) -> list[PodWorker]:
        uid = rs["metadata"]["uid"]
        return [w for w in self.live_pods() if owner_uid(w.pod) == uid]

    def _counts(self, rs: Obj, pods: list[PodWorker]) -> tuple[int, int]:
        """(ready, available) pods of a ReplicaSet."""
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        now = time.time()
        ready = available = 0
        for worker in pods:
            since = _ready_since(worker.view())
            if since is not None:
                ready += 1
                if now - since >= min_ready:
                    available += 1
        return ready, available

    async def _replicaset(self, rs: Obj) -> None:
        pods = self._pods_of(rs)
        desired = int(rs["spec"].get("replicas", 1))
        if len(pods) < desired:
            # Pods start side by side: one slow sandbox does not hold up the others.
            created = await asyncio.gather(
                *(self.kubelet.create_pod(self._new_pod(rs)) for _ in range(desired - len(pods))),
                return_exceptions=True,
            )
            failed = [c for c in created if isinstance(c, BaseException)]
            if failed:
                raise failed[0]
            self._event(rs, "Normal", "SuccessfulCreate", f"Created {desired - len(pods)} pod(s)")
        elif len(pods) > desired:
            doomed = sorted(pods, key=self._deletion_rank)[: len(pods) - desired]
            for worker in doomed:
                self.kubelet.delete_pod(worker.uid)
                self._event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {worker.name}")
            pods = [p for p in pods if p not in doomed]
        ready, available = self._counts(rs, pods)
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        self.store.put_status(ObjectKey.of(rs), status)

    @staticmethod
    def _deletion_rank(worker: PodWorker) -> tuple[int, int, float, int, float]:
        """Kubernetes' order for scale-down: pending, not ready, recently ready, restarts, newest first."""
        status = worker.status
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
        ready_since = _ready_since(worker.view())
        restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses", []))
        return (
            phase_rank,
            0 if ready_since is None else 1,
            -(ready_since or 0.0),
            -restarts,
            -worker.sandbox.created,
        )

    def _new_pod(self, rs: Obj) -> Obj:
        template = json.loads(json.dumps(rs["spec"]["template"]))
        return owned_pod(rs, "apps/v1", template, f"{rs['metadata']['name']}-{pod_suffix()}")

    # -- deployments ----------------------------------------------------------------

    def _replicasets_of(self, deployment: Obj) -> list[Obj]:
        uid = deployment["metadata"]["uid"]
        ns = deployment["metadata"]["namespace"]
        return [rs for rs in self.store.list_objects("ReplicaSet", ns) if owner_uid(rs) == uid]

    def _new_replicaset(self, deployment: Obj, pod_hash: str, revision: int) -> Obj:
        meta = deployment["metadata"]
        spec = deployment["spec"]
        template = revisions.without_hash(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[revisions.HASH_LABEL] = pod_hash
        selector = json.loads(json.dumps(spec["selector"]))
        selector.setdefault("matchLabels", {})[revisions.HASH_LABEL] = pod_hash
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    revisions.REVISION_ANNOTATION: str(revision),
                    # kubectl shows the Deployment's change-cause at the time of the revision.
                    **{k: v for k, v in (meta.get("annotations") or {}).items() if k == revisions.CHANGE_CAUSE},
                },
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": spec.get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }

    def view(self, rs: Obj) -> rolling.Revision:
        """A ReplicaSet as the rollout arithmetic sees it: desired replicas and its pods' counts."""
        pods = self._pods_of(rs)
        ready, available = self._counts(rs, pods)
        return rolling.Revision(
            name=rs["metadata"]["name"],
            revision=revision_of(rs),
            replicas=int(rs["spec"].get("replicas", 0)),
            pods=len(pods),
            ready=ready,
            available=available,
        )

    def _set_replicas(self, rs: Obj, replicas: int, deployment: Obj) -> None:
        set_replicas(self.store, rs, replicas, deployment)

    def _deployment(self, deployment: Obj) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        status: Obj = dict(deployment.get("status") or {})
        desired = int(spec.get("replicas", 1))
        all_rs = self._replicasets_of(deployment)
        pod_hash = revisions.template_hash(spec["template"])
        new = next(
            (rs for rs in all_rs if rs["metadata"].get("labels", {}).get(revisions.HASH_LABEL) == pod_hash), None
        )
        max_revision = max((revision_of(rs) for rs in all_rs), default=0)
        paused = bool(spec.get("paused"))
        created = False
        if new is None and not paused:
            new = self._new_replicaset(deployment, pod_hash, max_revision + 1)
            new, _ = self.store.put_many([new])[0]
            all_rs.append(new)
            created = True
            self._event(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Created new replica set {new['metadata']['name']} (revision {max_revision + 1})",
            )
        elif new is not None and revision_of(new) < max_revision and not paused:
            # The template went back to an older revision (undo, rollback): it becomes the newest.
            new["metadata"]["annotations"][revisions.REVISION_ANNOTATION] = str(max_revision + 1)
            new, _ = self.store.put_many([new])[0]
            created = True

        old_rs = [rs for rs in all_rs if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
        strategy = spec.get("strategy") or {}
        rolling_update = strategy.get("rollingUpdate") or {}
        surge, unavailable = rolling.resolve_fenceposts(
            rolling_update.get("maxSurge", "25%"), rolling_update.get("maxUnavailable", "25%"), desired
        )
        if strategy.get("type") == "Recreate":
            surge, unavailable = 0, 0  # Recreate: Available means every replica is available

        if new is not None:
            new_view = self.view(new)
            old_views = [self.view(rs) for rs in old_rs]
            if paused:
                decisions = []
            elif strategy.get("type") == "Recreate":
                decisions = rolling.recreate_step(desired, new_view, old_views)
            else:
                decisions = rolling.rolling_step(desired, surge, unavailable, new_view, old_views)
            by_name = {rs["metadata"]["name"]: rs for rs in all_rs}
            for decision in decisions:
                self._set_replicas(by_name[decision.name], decision.replicas, deployment)
            if decisions:
                new_view = self.view(new)
                old_views = [self.view(rs) for rs in old_rs]
            complete = rolling.is_complete(desired, new_view, old_views)
        else:
            new_view = None
            old_views = [self.view(rs) for rs in old_rs]
            complete = False

        views = ([new_view] if new_view else []) + old_views
        counts = revisions.Counts(
            replicas=sum(v.pods for v in views),
            updated=new_view.pods if new_view else 0,
            ready=sum(v.ready for v in views),
            available=sum(v.available for v in views),
        )
        before = revisions.Counts(
            replicas=int(status.get("replicas", 0)),
            updated=int(status.get("updatedReplicas", 0)),
            ready=int(status.get("readyReplicas", 0)),
            available=int(status.get("availableReplicas", 0)),
        )
        now_ts = time.time()
        now = revisions.rfc3339(now_ts)
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        conditions["Available"] = revisions.available_condition(
            counts.available, desired, unavailable, now, conditions.get("Available")
        )
        conditions["Progressing"] = revisions.progressing_condition(
            rs_name=new["metadata"]["name"] if new else meta["name"],
            complete=complete,
            created=created,
            progressed=revisions.made_progress(before, counts),
            paused=paused,
            all_updated=counts.replicas == counts.updated,
            deadline_seconds=int(spec.get("progressDeadlineSeconds", 600)),
            now_ts=now_ts,
            now=now,
            old=conditions.get("Progressing"),
        )
        rolled_back = conditions.get("RolledBack")
        if rolled_back is not None and int(meta.get("generation", 1)) > int(
            meta.get("annotations", {}).get(ROLLBACK_GENERATION, "0")
        ):
            del conditions["RolledBack"]  # the user started a new rollout since
        status.update(
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": counts.replicas,
                "updatedReplicas": counts.updated,
                "readyReplicas": counts.ready,
                "availableReplicas": counts.available,
                "unavailableReplicas": max(0, desired - counts.available),
                "conditions": [conditions[k] for k in ("Available", "Progressing", "RolledBack") if k in conditions],
            }
        )
        if new is not None:
            status["currentRevision"] = revision_of(new)
            status["failedPods"] = self._failures(new)
        if complete and new is not None and new["metadata"]["annotations"].get(HEALTHY_ANNOTATION) != "true":
            new["metadata"]["annotations"][HEALTHY_ANNOTATION] = "true"
            self.store.put_many([new])
            self._event(
                deployment,
                "Normal",
                "RolloutComplete",
                f"revision {revision_of(new)} is available ({desired}/{desired} replicas)",
            )
        self.store.put_status(ObjectKey.of(deployment), status)
        if new is not None and not complete and not paused:
            self._maybe_roll_back(deployment, new, old_rs, conditions["Progressing"], desired)
        self._trim_history(deployment, new, old_rs)

    def _failures(self, rs: Obj) -> int:
        """Failed starts of a revision's pods: restarts plus pods that cannot start."""
        total = 0
        for worker in self._pods_of(rs):
            total += worker.failed_starts
            for status in worker.status.get("containerStatuses", []) + worker.status.get("initContainerStatuses", []):
                total += int(status.get("restartCount", 0))
        return total

    def _maybe_roll_back(self, deployment: Obj, new: Obj, old_rs: list[Obj], progressing: Obj, desired: int) -> None:
        meta = deployment["metadata"]
        if meta.get("annotations", {}).get(AUTO_ROLLBACK, "true").lower() == "false":
            return
        if new["metadata"]["annotations"].get(HEALTHY_ANNOTATION) == "true":
            return  # a revision that once worked is not rolled back from
        failures = self._failures(new)
        threshold = rolling.circuit_breaker_threshold(desired)
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            reason = "ProgressDeadlineExceeded"
            why = f"no progress for {deployment['spec'].get('progressDeadlineSeconds', 600)}s"
        elif failures >= threshold:
            reason = "TooManyFailedPods"
            why = f"{failures} failed pod start(s), threshold {threshold}"
        else:
            return
        healthy = [rs for rs in old_rs if rs["metadata"].get("annotations", {}).get(HEALTHY_ANNOTATION) == "true"]
        if not healthy:
            self._event(
                deployment,
                "Warning",
                "RollbackImpossible",
                f"revision {revision_of(new)} failed ({why}) and no earlier revision was ever healthy",
            )
            return
        target = max(healthy, key=revision_of)
        failed_revision = revision_of(new)
        spec = dict(deployment["spec"])
        spec["template"] = revisions.without_hash(target["spec"]["template"])
        updated = dict(deployment, spec=spec)
        stored, _ = self.store.put_many([updated])[0]
        generation = int(stored["metadata"].get("generation", 1))
        stored["metadata"].setdefault("annotations", {})[ROLLBACK_GENERATION] = str(generation)
        stored, _ = self.store.put_many([stored])[0]
        message = (
            f"revision {failed_revision} failed ({why}); rolled back to revision "
            f"{revision_of(target)}, which runs again as revision {failed_revision + 1}"
        )
        status = dict(stored.get("status") or {})
        conditions = [c for c in status.get("conditions", []) if c["type"] != "RolledBack"]
        conditions.append(
            {
                "type": "RolledBack",
                "status": "True",
                "reason": reason,
                "message": message,
                "lastUpdateTime": revisions.rfc3339(time.time()),
                "lastTransitionTime": revisions.rfc3339(time.time()),
                "failedRevision": failed_revision,
                "restoredRevision": revision_of(target),
            }
        )
        status["conditions"] = conditions
        self.store.put_status(ObjectKey.of(stored), status)
        self._event(deployment, "Warning", "RolledBack", message)

    def _trim_history(self, deployment: Obj, new: Obj | None, old_rs: list[Obj]) -> None:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in old_rs if int(rs["spec"].get("replicas", 0)) == 0 and not self._pods_of(rs)]
        idle.sort(key=revision_of)
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.delete(ObjectKey.of(rs))
