"""The Rollout controller: Argo Rollouts' canary and blue-green on the local target.

Each pass, for every ``Rollout``: read the revisions it owns (ReplicaSets labelled with
``rollouts-pod-template-hash``) with their pod counts, the phases of its AnalysisRuns and
the weight the data plane carries; ask the pure step machine (:func:`funade.core.canary.decide`
or :func:`funade.core.bluegreen.decide`) for the next desired state; apply it: replicas per
revision (the workload controller makes the pods), Service selectors pinned to a revision
as Argo pins them, the canary weight and header routes as a TrafficSplit on the stable
Service (HAProxy carries it without a reload), AnalysisRuns created or terminated; and
write the status in Argo's layout, with the step machine's own state under
``status.funade`` so a restarted server carries on where it stopped.

The pass is synchronous between reading and writing a Rollout, so the operations the API
applies (promote, abort, retry) never interleave with a decision.

Where funade departs from Argo: the ``nginx`` and ``istio`` routers are both served by
funade's data plane on the stable Service's port (no Ingress or VirtualService is edited),
and an aborted rollout says "aborted: running the stable revision, reason …".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from funade.controller import workloads
from funade.core import analysis, bluegreen, canary, revisions, rolling
from funade.core import rollout as ro
from funade.core.ports import ObjectKey, Store
from funade.engine import rollouts as rollouts_engine
from funade.engine.routing import RoutingError, TrafficRouter

__all__ = ["HASH_LABEL", "MANAGED_BY", "RolloutController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

HASH_LABEL = ro.POD_HASH_LABEL
MANAGED_BY = ro.MANAGED_BY_ANNOTATION
_API_VERSION = "argoproj.io/v1alpha1"
_RUN_TYPES = {"background": "Background", "pre": "PrePromotion", "post": "PostPromotion"}


def _run_type(kind: str) -> str:
    """Argo's ``rollout-type`` label value for a run the step machine started (``step3`` → Step)."""
    return "Step" if kind.startswith("step") else _RUN_TYPES.get(kind, kind)


def _hash_of(rs: Obj) -> str:
    return str((rs["metadata"].get("labels") or {}).get(HASH_LABEL, ""))


def _field(obj: Obj, path: str) -> str | None:
    """A ``fieldRef.fieldPath`` of the Rollout: dotted keys, and ``labels['k']`` / ``annotations['k']``."""
    value: Any = obj
    for part in path.replace("['", ".").replace("']", "").split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return None if isinstance(value, Mapping | list) else str(value)


class RolloutController:
    """Drives every Rollout one idempotent step per pass."""

    def __init__(
        self,
        store: Store,
        view: Callable[[Obj], rolling.Revision],
        poke: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.view = view
        self.poke = poke
        self.clock = clock
        self.router = TrafficRouter(store)
        self._wakes: dict[str, asyncio.TimerHandle] = {}

    # -- the pass ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        """One pass over every Rollout, then garbage collection of what lost its Rollout."""
        for obj in self.store.list_objects("Rollout"):
            try:
                self.sync(obj)
            except Exception:
                log.exception("rollout %s: reconcile failed", obj["metadata"]["name"])
        self._collect_garbage()

    def sync(self, obj: Obj) -> None:
        """Take the next step of one Rollout."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        try:
            rollout = ro.parse(obj)
            template = ro.pod_template(rollout, self._template(rollout))
        except ro.RolloutError as exc:
            self._degraded(obj, f"InvalidSpec: {exc}")
            return
        pod_hash = revisions.template_hash(dict(template))
        previous = (obj.get("status") or {}).get("funade")
        status = ro.status_from_dict(previous) if isinstance(previous, Mapping) else ro.RolloutStatus(pod_hash)
        if status.current_hash != pod_hash:
            status = self._new_revision(obj, status, pod_hash)
        missing = self._missing_services(rollout)
        if missing:
            self._degraded(obj, missing, status)
            return

        replica_sets = self._ensure_revision(obj, rollout, template, pod_hash)
        by_hash = {_hash_of(rs): rs for rs in replica_sets}
        views = [replace(self.view(rs), name=h) for h, rs in by_hash.items()]
        runs = self._run_phases(namespace, status)
        now = self.clock()
        observed = self._observed_weight(rollout) if isinstance(rollout.strategy, ro.CanaryStrategy) else None
        if isinstance(rollout.strategy, ro.CanaryStrategy):
            decision: canary.Decision | bluegreen.Decision = canary.decide(rollout, status, views, runs, now, observed)
        else:
            decision = bluegreen.decide(rollout, status, views, runs, now)

        for revision_hash, replicas in decision.replicas:
            if revision_hash in by_hash:
                workloads.set_replicas(self.store, by_hash[revision_hash], replicas, obj)
        for name in decision.stop:
            self._terminate(namespace, name)
        for start in decision.start:
            self._start_run(obj, rollout, decision.status, start)
        if isinstance(decision, canary.Decision):
            self._route_canary(obj, rollout, decision)
            if observed is not None and self._observed_weight(rollout) != observed:
                self.poke()  # a setWeight step completes once the weight is applied: look again now
        else:
            self._pin(namespace, rollout.blue_green.active_service, decision.active_hash, rollout.name)
            if rollout.blue_green.preview_service:
                self._pin(namespace, rollout.blue_green.preview_service, decision.preview_hash, rollout.name)
        self._write_status(obj, rollout, decision, [self.view(rs) for rs in by_hash.values()], by_hash)
        self._wake_at(obj, decision.wake_at, now)
        self._trim_runs(obj, rollout, decision.status)

    # -- inputs -----------------------------------------------------------------------

    def _template(self, rollout: ro.Rollout) -> Mapping[str, object]:
        if rollout.template is not None:
            return rollout.template
        ref = rollout.workload_ref
        assert ref is not None  # parse requires one of template / workloadRef
        deployment = self.store.get(ObjectKey(ref.kind, rollout.namespace, ref.name))
        if deployment is None:
            raise ro.RolloutError(f"spec.workloadRef: {ref.kind.lower()} {ref.name!r} not found")
        template = (deployment.get("spec") or {}).get("template")
        if not isinstance(template, Mapping):
            raise ro.RolloutError(f"spec.workloadRef: {ref.kind.lower()} {ref.name!r} has no pod template")
        return template

    def _missing_services(self, rollout: ro.Rollout) -> str:
        names: list[tuple[str, str | None]]
        if isinstance(rollout.strategy, ro.CanaryStrategy):
            names = [
                ("canaryService", rollout.strategy.canary_service),
                ("stableService", rollout.strategy.stable_service),
            ]
        else:
            names = [
                ("activeService", rollout.strategy.active_service),
                ("previewService", rollout.strategy.preview_service),
            ]
        for field_name, service in names:
            if service and self.store.get(ObjectKey("Service", rollout.namespace, service)) is None:
                return f"spec.strategy.{field_name}: Service {service!r} not found in namespace {rollout.namespace}"
        return ""

    def _run_phases(self, namespace: str, status: ro.RolloutStatus) -> dict[str, ro.RunStatus]:
        found = {}
        for name in (status.step_run, status.background_run, status.pre_run, status.post_run):
            if not name:
                continue
            run = self.store.get(ObjectKey("AnalysisRun", namespace, name))
            if run is None:
                continue
            raw = run.get("status") or {}
            phase = analysis.Phase(raw.get("phase") or analysis.Phase.PENDING.value)
            found[name] = ro.RunStatus(phase, str(raw.get("message") or ""))
        return found

    def _observed_weight(self, rollout: ro.Rollout) -> int | None:
        strategy = rollout.canary
        if strategy.traffic_routing is None or not strategy.stable_service:
            return None
        split = self.router.get(rollout.namespace, strategy.stable_service)
        if split is None:
            return 0
        weights = (split.get("spec") or {}).get("weights") or {}
        return int(weights.get("canary", 0))

    # -- revisions --------------------------------------------------------------------

    def _new_revision(self, obj: Obj, status: ro.RolloutStatus, pod_hash: str) -> ro.RolloutStatus:
        """A template change: terminate the old revision's runs and start its steps from the beginning."""
        for run in rollouts_engine.owned(self.store, "AnalysisRun", obj):
            if (run.get("status") or {}).get("phase") not in {p.value for p in analysis.Phase if p.completed}:
                self._terminate(run["metadata"]["namespace"], run["metadata"]["name"])
        if status.current_hash:
            self._event(obj, "Normal", "RolloutUpdated", f"Rollout updated to revision with pod hash {pod_hash}")
        return ro.RolloutStatus(
            current_hash=pod_hash,
            stable_hash=status.stable_hash,
            active_hash=status.active_hash,
            run_seq=status.run_seq,
            scale_down_at=tuple((h, at) for h, at in status.scale_down_at if h != pod_hash),
        )

    def _ensure_revision(
        self, obj: Obj, rollout: ro.Rollout, template: Mapping[str, object], pod_hash: str
    ) -> list[Obj]:
        owned = rollouts_engine.owned(self.store, "ReplicaSet", obj)
        newest = max((workloads.revision_of(rs) for rs in owned), default=0)
        current = next((rs for rs in owned if _hash_of(rs) == pod_hash), None)
        if current is None:
            current, _ = self.store.put_many([self._replica_set(obj, rollout, template, pod_hash, newest + 1)])[0]
            owned.append(current)
            self._event(obj, "Normal", "NewReplicaSetCreated", f"Created ReplicaSet {current['metadata']['name']}")
        elif workloads.revision_of(current) < newest:
            current["metadata"].setdefault("annotations", {})[revisions.REVISION_ANNOTATION] = str(newest + 1)
            current, _ = self.store.put_many([current])[0]
            owned = [rs for rs in owned if _hash_of(rs) != pod_hash] + [current]
        return owned

    @staticmethod
    def _replica_set(
        obj: Obj, rollout: ro.Rollout, template: Mapping[str, object], pod_hash: str, revision: int
    ) -> Obj:
        meta = obj["metadata"]
        pod_template = json.loads(json.dumps(template))
        pod_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = {"matchLabels": {**dict(rollout.selector), HASH_LABEL: pod_hash}}
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": rollout.namespace,
                "labels": dict(pod_template["metadata"]["labels"]),
                "annotations": {revisions.REVISION_ANNOTATION: str(revision)},
                "ownerReferences": [
                    {
                        "apiVersion": _API_VERSION,
                        "kind": "Rollout",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": rollout.min_ready_seconds,
                "selector": selector,
                "template": pod_template,
            },
        }

    # -- traffic ----------------------------------------------------------------------

    def _pin(self, namespace: str, service: str | None, pod_hash: str, rollout: str) -> None:
        """Point a Service at one revision (Argo adds the hash to its selector and marks it managed)."""
        if not service or not pod_hash:
            return
        obj = self.store.get(ObjectKey("Service", namespace, service))
        if obj is None:
            return
        spec = obj.setdefault("spec", {})
        selector = spec.get("selector") or {}
        annotations = obj["metadata"].setdefault("annotations", {})
        if selector.get(HASH_LABEL) == pod_hash and annotations.get(MANAGED_BY) == rollout:
            return
        spec["selector"] = {**selector, HASH_LABEL: pod_hash}
        annotations[MANAGED_BY] = rollout
        self.store.put_many([obj])

    def _route_canary(self, obj: Obj, rollout: ro.Rollout, decision: canary.Decision) -> None:
        strategy = rollout.canary
        status = decision.status
        stable_hash = status.stable_hash or status.current_hash
        self._pin(rollout.namespace, strategy.stable_service, stable_hash, rollout.name)
        self._pin(rollout.namespace, strategy.canary_service, status.current_hash, rollout.name)
        if strategy.traffic_routing is None or not strategy.stable_service or not strategy.canary_service:
            return
        try:
            if status.current_hash == status.stable_hash and not decision.header_routes:
                self.router.clear(rollout.namespace, strategy.stable_service)
                return
            routes = [
                {
                    "name": route.name,
                    "match": [{"headers": {m.header_name: {m.kind: m.value}}} for m in route.match],
                    "subset": "canary",
                }
                for route in decision.header_routes
            ]
            self.router.set_split(
                rollout.namespace,
                strategy.stable_service,
                [
                    {"name": "stable", "service": strategy.stable_service},
                    {"name": "canary", "service": strategy.canary_service},
                ],
                {"stable": 100 - decision.canary_weight, "canary": decision.canary_weight},
                routes,
            )
        except RoutingError as exc:
            self._event(obj, "Warning", "TrafficRoutingError", str(exc))

    # -- analysis ---------------------------------------------------------------------

    def _terminate(self, namespace: str, name: str) -> None:
        run = self.store.get(ObjectKey("AnalysisRun", namespace, name))
        if run is None or (run.get("spec") or {}).get("terminate"):
            return
        run["spec"]["terminate"] = True
        self.store.put_many([run])

    def _args(self, obj: Obj, status: ro.RolloutStatus, spec: ro.RolloutAnalysis) -> dict[str, str]:
        values: dict[str, str] = {}
        for arg in spec.args:
            if arg.value is not None:
                values[arg.name] = arg.value
                continue
            for source, detail in arg.value_from:
                if source == "podTemplateHashValue":
                    values[arg.name] = status.stable_hash if detail == "Stable" else status.current_hash
                elif source == "fieldRef":
                    found = _field(obj, detail)
                    if found is None:
                        raise analysis.AnalysisError(f"args.{arg.name}: fieldRef {detail} not found on the Rollout")
                    values[arg.name] = found
                else:
                    raise analysis.AnalysisError(f"args.{arg.name}: valueFrom {source} is not supported")
        return values

    def _start_run(self, obj: Obj, rollout: ro.Rollout, status: ro.RolloutStatus, start: ro.AnalysisStart) -> None:
        meta = obj["metadata"]
        if self.store.get(ObjectKey("AnalysisRun", rollout.namespace, start.name)) is not None:
            return
        body: Obj = {"args": [], "metrics": []}
        error = ""
        try:
            templates = []
            for ref in start.analysis.templates:
                kind = "ClusterAnalysisTemplate" if ref.cluster_scope else "AnalysisTemplate"
                found = self.store.get(
                    ObjectKey(kind, "" if ref.cluster_scope else rollout.namespace, ref.template_name)
                )
                if found is None:
                    raise analysis.AnalysisError(f"{kind} {ref.template_name!r} not found")
                templates.append(analysis.parse_template(found))
            run = analysis.new_run(templates, self._args(obj, status, start.analysis), name=start.name)
            merged = analysis.merge_templates(templates)
            body = {
                "args": [{"name": a.name, "value": a.value} for a in run.args],
                "metrics": [dict(m) for m in merged.metrics],
                "dryRun": [{"metricName": n} for n in sorted(run.dry_run)],
                "measurementRetention": [{"metricName": n, "limit": limit} for n, limit in run.retention],
            }
        except analysis.AnalysisError as exc:
            error = str(exc)
        doc: Obj = {
            "apiVersion": _API_VERSION,
            "kind": "AnalysisRun",
            "metadata": {
                "name": start.name,
                "namespace": rollout.namespace,
                "labels": {HASH_LABEL: status.current_hash, "rollout-type": _run_type(start.kind)},
                "ownerReferences": [
                    {
                        "apiVersion": _API_VERSION,
                        "kind": "Rollout",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": body,
        }
        stored, _ = self.store.put_many([doc])[0]
        if error:
            # Argo cannot start such a run either; a run in Error aborts the rollout with the reason.
            self.store.put_status(ObjectKey.of(stored), {"phase": analysis.Phase.ERROR.value, "message": error})
            self._event(obj, "Warning", "AnalysisRunError", f"{start.name}: {error}")
        else:
            self._event(
                obj,
                "Normal",
                "AnalysisRunRunning",
                f"Started {_run_type(start.kind)} analysis run {start.name}",
            )

    def _trim_runs(self, obj: Obj, rollout: ro.Rollout, status: ro.RolloutStatus) -> None:
        """Keep ``successfulRunHistoryLimit`` / ``unsuccessfulRunHistoryLimit`` completed runs, newest first."""
        current = {status.step_run, status.background_run, status.pre_run, status.post_run}
        good: list[Obj] = []
        bad: list[Obj] = []
        for run in rollouts_engine.owned(self.store, "AnalysisRun", obj):
            phase = (run.get("status") or {}).get("phase")
            if run["metadata"]["name"] in current or phase not in {p.value for p in analysis.Phase if p.completed}:
                continue
            (good if phase == analysis.Phase.SUCCESSFUL.value else bad).append(run)
        for runs, limit in (
            (good, rollout.successful_run_history_limit),
            (bad, rollout.unsuccessful_run_history_limit),
        ):
            for run in runs[: max(0, len(runs) - limit)]:
                self.store.delete(ObjectKey.of(run))

    # -- status -----------------------------------------------------------------------

    def _degraded(self, obj: Obj, message: str, status: ro.RolloutStatus | None = None) -> None:
        old = obj.get("status") or {}
        new = dict(old, phase=ro.RolloutPhase.DEGRADED.value, message=message)
        if status is not None:
            new["funade"] = ro.status_to_dict(status)
        if old.get("message") != message:
            self._event(obj, "Warning", "InvalidSpec", message)
        self.store.put_status(ObjectKey.of(obj), new)

    def _write_status(
        self,
        obj: Obj,
        rollout: ro.Rollout,
        decision: canary.Decision | bluegreen.Decision,
        views: list[rolling.Revision],
        by_hash: Mapping[str, Obj],
    ) -> None:
        state = decision.status
        old = obj.get("status") or {}
        current = next((v for h, v in zip(by_hash, views, strict=True) if h == state.current_hash), None)
        status: Obj = {
            "observedGeneration": str(obj["metadata"].get("generation", 1)),
            "phase": decision.phase.value,
            "message": decision.message,
            "currentPodHash": state.current_hash,
            "stableRS": state.stable_hash,
            "replicas": sum(v.pods for v in views),
            "updatedReplicas": current.pods if current else 0,
            "readyReplicas": sum(v.ready for v in views),
            "availableReplicas": sum(v.available for v in views),
            "pauseConditions": [
                {"reason": c.reason.value, "startTime": c.started_at.isoformat()} for c in state.pause_conditions
            ],
            "controllerPause": state.controller_pause,
            "abort": state.abort,
            "promoteFull": state.promote_full,
            "selector": ",".join(f"{k}={v}" for k, v in rollout.selector.items()),
        }
        if state.aborted_at is not None:
            status["abortedAt"] = state.aborted_at.isoformat()
        runs = {
            name: (self.store.get(ObjectKey("AnalysisRun", rollout.namespace, name)) or {}).get("status") or {}
            for name in (state.step_run, state.background_run, state.pre_run, state.post_run)
            if name
        }

        def run_status(name: str | None) -> Obj | None:
            if not name:
                return None
            return {
                "name": name,
                "status": runs.get(name, {}).get("phase") or "Pending",
                "message": runs.get(name, {}).get("message", ""),
            }

        if isinstance(decision, canary.Decision):
            strategy = rollout.canary
            status["currentStepIndex"] = state.step_index
            status["canary"] = {
                "currentStepAnalysisRunStatus": run_status(state.step_run),
                "currentBackgroundAnalysisRunStatus": run_status(state.background_run),
                "weights": {
                    "canary": {
                        "podTemplateHash": state.current_hash,
                        "weight": decision.canary_weight,
                        "serviceName": strategy.canary_service,
                    },
                    "stable": {
                        "podTemplateHash": state.stable_hash,
                        "weight": 100 - decision.canary_weight,
                        "serviceName": strategy.stable_service,
                    },
                },
            }
        else:
            status["blueGreen"] = {
                "activeSelector": decision.active_hash,
                "previewSelector": decision.preview_hash,
                "prePromotionAnalysisRunStatus": run_status(state.pre_run),
                "postPromotionAnalysisRunStatus": run_status(state.post_run),
                "scaleUpPreviewCheckPoint": state.preview_checkpoint,
            }
        if decision.paused_until is not None:
            status["pausedUntil"] = decision.paused_until.isoformat()
        status["funade"] = ro.status_to_dict(state)
        if old.get("phase") != status["phase"] or old.get("message") != status["message"]:
            warning = decision.phase is ro.RolloutPhase.DEGRADED
            reason = {
                ro.RolloutPhase.HEALTHY: "RolloutCompleted",
                ro.RolloutPhase.PAUSED: "RolloutPaused",
                ro.RolloutPhase.PROGRESSING: "RolloutProgressing",
                ro.RolloutPhase.DEGRADED: "RolloutAborted" if state.abort else "RolloutDegraded",
            }[decision.phase]
            self._event(obj, "Warning" if warning else "Normal", reason, decision.message or decision.phase.value)
        if old.get("currentStepIndex") is not None and old.get("currentStepIndex") != status.get("currentStepIndex"):
            steps = len(rollout.canary.steps)
            self._event(obj, "Normal", "RolloutStepCompleted", f"step {status['currentStepIndex']}/{steps}")
        self.store.put_status(ObjectKey.of(obj), status)

    def _wake_at(self, obj: Obj, at: datetime | None, now: datetime) -> None:
        """Ask for a pass when a timed pause or delay ends (the resync would come, but later)."""
        uid = obj["metadata"]["uid"]
        old = self._wakes.pop(uid, None)
        if old is not None:
            old.cancel()
        if at is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wakes[uid] = loop.call_later(max(0.0, (at - now).total_seconds()) + 0.01, self.poke)

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        workloads.record(self.store, obj, type_, reason, message)

    # -- garbage ----------------------------------------------------------------------

    def _collect_garbage(self) -> None:
        """AnalysisRuns and TrafficSplits of deleted Rollouts go with them (ReplicaSets: workload controller)."""
        rollouts = {r["metadata"]["uid"]: r for r in self.store.list_objects("Rollout")}
        for run in self.store.list_objects("AnalysisRun"):
            owner = workloads.owner_uid(run)
            if owner is not None and owner not in rollouts:
                self.store.delete(ObjectKey.of(run))
        for uid in list(self._wakes):
            if uid not in rollouts:
                self._wakes.pop(uid).cancel()
        names = {(r["metadata"].get("namespace", "default"), r["metadata"]["name"]) for r in rollouts.values()}
        for service in self.store.list_objects("Service"):
            meta = service["metadata"]
            owner = (meta.get("annotations") or {}).get(MANAGED_BY)
            if owner is None or (meta.get("namespace", "default"), owner) in names:
                continue
            # The Rollout is gone: the Service selects by its own selector again, without a split.
            del meta["annotations"][MANAGED_BY]
            (service.get("spec") or {}).get("selector", {}).pop(HASH_LABEL, None)
            self.store.put_many([service])
            self.router.clear(meta.get("namespace", "default"), meta["name"])
