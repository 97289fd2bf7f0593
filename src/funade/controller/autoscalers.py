"""The HorizontalPodAutoscaler controller of the local target: the seed's ``hpa.yaml`` scales for real.

Kubernetes splits this between metrics-server (CPU and memory of every pod, sampled by
the kubelet) and the HPA controller (every 15 s: usage against the pods' requests, a
desired replica count, stabilization windows and rate policies, then the target's
``spec.replicas``). Here one controller does both, in the manager's pass:

- **Sampling.** Every container of a pod an autoscaler selects is sampled through the
  Engine's one-shot stats (side by side) at most every ``resolution`` seconds; CPU usage
  is the rate between the last two samples (cores), memory the working set of the latest.
- **Deciding.** Each autoscaler is evaluated every ``sync`` seconds (15 s, as
  ``--horizontal-pod-autoscaler-sync-period``; ``FUNADE_HPA_SYNC_SECONDS`` changes it)
  by :func:`funade.core.autoscaling.decide`, which holds every rule. Its recommendation
  and scale-event history lives in ``status.funade`` so a restarted server carries on.
- **Scaling.** A new count is written to the target's ``spec.replicas`` (Deployment,
  ReplicaSet or Argo Rollout) as ``funade scale`` would, with Kubernetes'
  ``SuccessfulRescale`` event; the status has Kubernetes' layout (``currentMetrics``,
  ``conditions``, ``lastScaleTime``), so ``funade get hpa`` reads like kubectl's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from funade.controller.workloads import record
from funade.core import autoscaling, quantity, revisions, selectors
from funade.core.ports import ObjectKey, Store

__all__ = ["KIND", "AutoscalerController", "Sample", "sync_seconds"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = "HorizontalPodAutoscaler"
#: Kinds whose ``spec.replicas`` an autoscaler may set on the local target.
SCALABLE = frozenset({"Deployment", "ReplicaSet", "Rollout"})
#: Stats requests in flight at once.
_PARALLEL_SAMPLES = 16
#: How long a pass waits for its samples before it goes on without them (they land for the next pass).
_SAMPLE_WAIT = 0.25


def sync_seconds() -> float:
    """How often each autoscaler is evaluated: ``FUNADE_HPA_SYNC_SECONDS``, default 15 (Kubernetes' default)."""
    try:
        return max(1.0, float(os.environ.get("FUNADE_HPA_SYNC_SECONDS", "15")))
    except ValueError:
        return 15.0


@dataclass(frozen=True)
class Sample:
    """One reading of a container: when (epoch seconds), its CPU time so far (ns) and memory working set (bytes)."""

    at: float
    cpu_total_ns: int
    memory: int


class AutoscalerController:
    """Samples the pods autoscalers select and scales their targets."""

    def __init__(
        self,
        store: Store,
        pods: Callable[[str], list[Obj]],
        stats: Callable[[str], Awaitable[Sample | None]],
        poke: Callable[[], None] = lambda: None,
        *,
        clock: Callable[[], float] = time.time,
        sync: float | None = None,
    ) -> None:
        """
        Args:
            pods: the pod views of a namespace (``metadata``, ``spec``, ``status`` with containerIDs).
            stats: one sample of a running container by its ID (None when it is not running).
            poke: asks the manager for a pass once a target was scaled.
        """
        self.store = store
        self.pods = pods
        self.stats = stats
        self.poke = poke
        self.clock = clock
        self.sync = sync if sync is not None else sync_seconds()
        # The Engine answers a one-shot sample at once, but waits for its collector's next
        # 1 s tick when the same container was sampled less than a second before.
        self.resolution = min(5.0, max(1.5, self.sync / 2))
        # Per container ID, the last two samples (older first).
        self._samples: dict[str, tuple[Sample, ...]] = {}
        self._due: dict[ObjectKey, float] = {}
        self._seen_generation: dict[ObjectKey, object] = {}
        self._sampling: asyncio.Task[None] | None = None

    async def reconcile(self) -> None:
        """One pass: sample what is due, evaluate the autoscalers whose period has come.

        Sampling runs beside the pass: the Engine answers a batch of one-shot samples on its
        collector's next 1 s tick, and the manager's pass (rollouts, Services) must not wait
        for that. Whatever samples are in by decision time are used.
        """
        now = self.clock()
        seen: list[tuple[Obj, Obj | None, list[Obj]]] = []
        wanted: dict[str, None] = {}
        for hpa in self.store.list_objects(KIND):
            key = ObjectKey.of(hpa)
            generation = (hpa.get("metadata") or {}).get("generation")
            if key not in self._due or self._seen_generation.get(key) != generation:
                # A new or changed autoscaler: first sample its pods, decide once rates exist.
                self._due[key] = now + self.resolution
                self._seen_generation[key] = generation
            target, pods = self._target_and_pods(hpa)
            wanted.update((cid, None) for pod in pods for cid in _container_ids(pod).values())
            seen.append((hpa, target, pods))
        if wanted and (self._sampling is None or self._sampling.done()):
            self._sampling = asyncio.create_task(self._sample(list(wanted), now), name="autoscaler samples")
        if self._sampling is not None and not self._sampling.done():
            await asyncio.wait({self._sampling}, timeout=_SAMPLE_WAIT)
        for hpa, target, pods in seen:
            key = ObjectKey.of(hpa)
            if now >= self._due[key]:
                self._due[key] = now + self.sync
                try:
                    await self._evaluate(hpa, target, pods, now)
                except Exception:  # one autoscaler's trouble must not stop the others
                    log.exception("autoscaler %s/%s failed", key.namespace, key.name)
        live = {ObjectKey.of(hpa) for hpa, _, _ in seen}
        for key in set(self._due) - live:
            del self._due[key]
            self._seen_generation.pop(key, None)
        for cid in set(self._samples) - set(wanted):
            del self._samples[cid]

    async def stop(self) -> None:
        """Cancel a sampling still in flight (the server is stopping)."""
        if self._sampling is not None and not self._sampling.done():
            self._sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampling

    # -- metrics ----------------------------------------------------------------------

    async def _sample(self, containers: Sequence[str], now: float) -> None:
        """Sample the containers whose last sample is older than the resolution, side by side."""
        due = [c for c in containers if not (known := self._samples.get(c)) or now - known[-1].at >= self.resolution]
        limit = asyncio.Semaphore(_PARALLEL_SAMPLES)

        async def one(cid: str) -> None:
            async with limit:
                sample = await self.stats(cid)
            known = self._samples.get(cid, ())
            if sample is None:
                self._samples.pop(cid, None)
                return
            if known and sample.cpu_total_ns < known[-1].cpu_total_ns:
                known = ()  # the counter went back: another container under the same ID (restart)
            self._samples[cid] = (*known[-1:], sample)

        await asyncio.gather(*(one(cid) for cid in dict.fromkeys(due)))

    def _usage(self, container_id: str) -> tuple[dict[str, float], float, float] | None:
        """CPU (cores, between the last two samples) and memory (bytes) of a container, when the later
        sample was taken and the window it covers; None before two samples."""
        known = self._samples.get(container_id, ())
        if len(known) < 2 or known[1].at <= known[0].at:
            return None
        window = known[1].at - known[0].at
        cores = (known[1].cpu_total_ns - known[0].cpu_total_ns) / 1e9 / window
        return {"cpu": max(0.0, cores), "memory": float(known[1].memory)}, known[1].at, window

    def _pod_sample(self, pod: Obj) -> autoscaling.PodSample:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        requests: dict[str, dict[str, float]] = {}
        for container in spec.get("containers") or []:
            asked = ((container.get("resources") or {}).get("requests")) or {}
            found: dict[str, float] = {}
            if "cpu" in asked:
                found["cpu"] = quantity.cpu_millis(asked["cpu"]) / 1000
            if "memory" in asked:
                found["memory"] = float(quantity.memory_bytes(asked["memory"]))
            requests[str(container.get("name"))] = found
        measured = {name: self._usage(cid) for name, cid in _container_ids(pod).items()}
        usage: dict[str, dict[str, float]] | None = None
        sampled_at, window = None, self.resolution
        # A pod has metrics once every container has two samples (metrics-server reports whole pods).
        if set(measured) == set(requests) and all(m is not None for m in measured.values()):
            readings = [m for m in measured.values() if m is not None]
            usage = {name: m[0] for name, m in measured.items() if m is not None}
            sampled_at = min(r[1] for r in readings) if readings else None
            window = max(r[2] for r in readings) if readings else window
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return autoscaling.PodSample(
            name=str(meta.get("name")),
            ready=bool(ready and ready.get("status") == "True"),
            started_at=_time(status.get("startTime")),
            ready_changed_at=_time((ready or {}).get("lastTransitionTime")),
            requests=requests,
            usage=usage,
            phase=str(status.get("phase") or "Pending"),
            terminating=bool(meta.get("deletionTimestamp")),
            sampled_at=sampled_at,
            window=window,
        )

    # -- deciding ---------------------------------------------------------------------

    def _target_and_pods(self, hpa: Obj) -> tuple[Obj | None, list[Obj]]:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        namespace = str((hpa.get("metadata") or {}).get("namespace") or "default")
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        target = self.store.get(ObjectKey(kind, namespace, name)) if kind in SCALABLE and name else None
        if target is None:
            return None, []
        selector = (target.get("spec") or {}).get("selector")
        if not isinstance(selector, Mapping):
            return target, []
        try:
            wanted = selectors.from_label_selector(selector)
        except ValueError:
            return target, []
        # Failed and terminating pods are passed on: the rules set them aside, as Kubernetes' groupPods does.
        pods = [
            p for p in self.pods(namespace) if selectors.matches(wanted, (p.get("metadata") or {}).get("labels") or {})
        ]
        return target, pods

    async def _evaluate(self, hpa: Obj, target: Obj | None, pods: list[Obj], now: float) -> None:
        key = ObjectKey.of(hpa)
        status = dict(hpa.get("status") or {})
        own = dict(status.get("funade") or {})
        try:
            spec = autoscaling.parse(hpa)
        except autoscaling.HpaError as exc:  # stored before funade validated autoscalers
            failed = _condition("AbleToScale", "False", "FailedGetScale", str(exc))
            self._write(key, status, conditions=_keep_transitions([failed], status.get("conditions") or [], now))
            return
        if target is None:
            ref = spec.target
            message = f"the HPA controller was unable to get the target's current scale: {ref.kind} {ref.name!r} "
            message += "not found" if ref.kind in SCALABLE else "cannot be scaled on the local target"
            failed = _condition("AbleToScale", "False", "FailedGetScale", message)
            self._write(key, status, conditions=_keep_transitions([failed], status.get("conditions") or [], now))
            record(self.store, hpa, "Warning", "FailedGetScale", message, self.clock())
            return
        current = int((target.get("spec") or {}).get("replicas", 1))
        history = autoscaling.History.from_json(own.get("history"))
        decision = autoscaling.decide(spec, current, [self._pod_sample(p) for p in pods], now, history)
        update: Obj = {
            "observedGeneration": (hpa.get("metadata") or {}).get("generation"),
            "currentReplicas": current,
            "desiredReplicas": decision.desired,
            "currentMetrics": decision.current_metrics or None,
            "conditions": _keep_transitions(decision.conditions, status.get("conditions") or [], now),
            "funade": {**own, "history": decision.history.to_json()},
        }
        for error in decision.errors:
            record(self.store, hpa, "Warning", "FailedComputeMetricsReplicas", error, self.clock())
        if decision.scaled:
            self._scale(target, decision.desired)
            update["lastScaleTime"] = revisions.rfc3339(now)
            message = f"New size: {decision.desired}; reason: {decision.reason}"
            record(self.store, hpa, "Normal", "SuccessfulRescale", message, self.clock())
            log.info(
                "%s/%s: %s/%s %d -> %d",
                key.namespace,
                key.name,
                target["kind"],
                _name(target),
                current,
                decision.desired,
            )
            self.poke()
        self._write(key, status, **update)

    def _scale(self, target: Obj, replicas: int) -> None:
        updated = {**target, "spec": {**(target.get("spec") or {}), "replicas": replicas}}
        self.store.put_many([updated])

    def _write(self, key: ObjectKey, old: Obj, **fields: Any) -> None:
        status = {k: v for k, v in {**old, **fields}.items() if v is not None}
        if status != old:
            self.store.put_status(key, status)


def _container_ids(pod: Obj) -> dict[str, str]:
    """Container name → Docker ID of the pod's running app containers."""
    found = {}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        cid = str(status.get("containerID") or "")
        if cid.startswith("docker://") and "running" in (status.get("state") or {}):
            found[str(status.get("name"))] = cid.removeprefix("docker://")
    return found


def _time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return revisions.parse_time(value)
    except ValueError:
        return None


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def _keep_transitions(conditions: Sequence[Mapping[str, str]], old: Sequence[Obj], now: float) -> list[Obj]:
    """The sync's conditions over the earlier ones, each ``lastTransitionTime`` kept while its status stays."""
    merged: dict[object, Obj] = {c.get("type"): dict(c) for c in old}
    for condition in conditions:
        previous = merged.get(condition.get("type"))
        same = previous is not None and previous.get("status") == condition.get("status")
        stamp = previous.get("lastTransitionTime") if same and previous else revisions.rfc3339(now)
        merged[condition.get("type")] = {**condition, "lastTransitionTime": stamp}
    order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
    return sorted(merged.values(), key=lambda c: order.get(str(c.get("type")), 3))
