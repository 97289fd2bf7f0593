"""Resource and application health, per kind, the way Argo CD assesses it.

Sync status says whether live state matches git; health says whether what runs
works. Both are needed to call a deployment done, to gate PostSync hooks and sync
waves, and to notify ``on-health-degraded``. The checks are gitops-engine's
``pkg/health`` (Deployment, ReplicaSet, StatefulSet, DaemonSet, Pod, Service, PVC,
Job, HPA, Ingress, APIService, Argo Workflow) and Argo CD's built-in Lua scripts for
``argoproj.io/Rollout`` and ``batch/CronJob``, rewritten as pure functions on the
object dicts funade's targets report. Kinds without a check have no health (None),
as in Argo CD; a ConfigMap is neither healthy nor unhealthy.

Where funade departs: the local target serves a LoadBalancer Service on 127.0.0.1 as
soon as it exists, so with ``local=True`` such a Service is Healthy without
``status.loadBalancer.ingress``; a Deployment the local target rolled back
automatically stays Healthy (as Argo CD says) but its message says it was rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from funade.core.gitops import diff

__all__ = [
    "HOOK_FINALIZER",
    "IGNORE_HEALTHCHECK_ANNOTATION",
    "ORDER",
    "Health",
    "HealthStatus",
    "aggregate",
    "app_health",
    "assess",
    "has_health_check",
    "is_worse",
]

Obj = Mapping[str, Any]

HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
IGNORE_HEALTHCHECK_ANNOTATION = "argocd.argoproj.io/ignore-healthcheck"


class HealthStatus(StrEnum):
    """gitops-engine's health codes."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


ORDER: tuple[HealthStatus, ...] = (
    HealthStatus.HEALTHY,
    HealthStatus.SUSPENDED,
    HealthStatus.PROGRESSING,
    HealthStatus.MISSING,
    HealthStatus.DEGRADED,
    HealthStatus.UNKNOWN,
)
"""Most healthy first (gitops-engine ``healthOrder``); the worst status of a set wins."""


def is_worse(current: HealthStatus, new: HealthStatus) -> bool:
    """Whether ``new`` is a worse condition than ``current``."""
    return ORDER.index(new) > ORDER.index(current)


@dataclass(frozen=True)
class Health:
    """A health status with its reason.

    ``aggregate_as`` is the status the resource contributes to its application's
    health when that differs (a suspended Job counts as Healthy).
    """

    status: HealthStatus
    message: str = ""
    aggregate_as: HealthStatus | None = None


def _h(status: HealthStatus, message: str = "") -> Health:
    return Health(status, message or "")


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _sub(obj: Obj, key: str) -> Obj:
    """``obj[key]`` when it is a mapping, else an empty one (status fields may be absent or null)."""
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _spec(obj: Obj) -> Obj:
    return _sub(obj, "spec")


def _status(obj: Obj) -> Obj:
    return _sub(obj, "status")


def _conditions(obj: Obj) -> list[Obj]:
    conditions = _status(obj).get("conditions")
    return [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []


def _condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in _conditions(obj) if c.get("type") == kind), None)


def _generation(obj: Obj) -> int:
    return _int((obj.get("metadata") or {}).get("generation"))


# --- apps ---------------------------------------------------------------------------------


def _deployment(obj: Obj) -> Health:
    spec, status = _spec(obj), _status(obj)
    name = (obj.get("metadata") or {}).get("name", "")
    if spec.get("paused"):
        return _h(HealthStatus.SUSPENDED, "Deployment is paused")
    if _generation(obj) > _int(status.get("observedGeneration")):
        return _h(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        )
    progressing = _condition(obj, "Progressing")
    replicas = spec.get("replicas")
    updated = _int(status.get("updatedReplicas"))
    current = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _h(HealthStatus.DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    if replicas is not None and updated < _int(replicas):
        return _h(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {_int(replicas)} new replicas have been updated...",
        )
    if current > updated:
        return _h(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {current - updated} old replicas are pending termination...",
        )
    if available < updated:
        return _h(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    rolled_back = _condition(obj, "RolledBack")
    if rolled_back is not None and rolled_back.get("status") == "True":
        return _h(HealthStatus.HEALTHY, str(rolled_back.get("message") or "rolled back"))
    return _h(HealthStatus.HEALTHY)


def _replicaset(obj: Obj) -> Health:
    spec, status = _spec(obj), _status(obj)
    if _generation(obj) > _int(status.get("observedGeneration")):
        return _h(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        )
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return _h(HealthStatus.DEGRADED, str(failure.get("message") or ""))
    replicas = spec.get("replicas")
    available = _int(status.get("availableReplicas"))
    if replicas is not None and available < _int(replicas):
        return _h(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {_int(replicas)} new replicas are available...",
        )
    return _h(HealthStatus.HEALTHY)


def _statefulset(obj: Obj) -> Health:
    spec, status = _spec(obj), _status(obj)
    observed = _int(status.get("observedGeneration"))
    if observed == 0 or _generation(obj) > observed:
        return _h(HealthStatus.PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas = spec.get("replicas")
    ready = _int(status.get("readyReplicas"))
    updated = _int(status.get("updatedReplicas"))
    if replicas is not None and ready < _int(replicas):
        return _h(HealthStatus.PROGRESSING, f"Waiting for {_int(replicas) - ready} pods to be ready...")
    strategy = _sub(spec, "updateStrategy")
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, Mapping):
        partition = rolling.get("partition")
        if replicas is not None and partition is not None and updated < _int(replicas) - _int(partition):
            return _h(
                HealthStatus.PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{_int(replicas) - _int(partition)} new pods have been updated...",
            )
        return _h(HealthStatus.HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated...")
    if strategy.get("type") == "OnDelete":
        return _h(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods")
    if status.get("updateRevision") != status.get("currentRevision"):
        return _h(
            HealthStatus.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision', '')}...",
        )
    return _h(
        HealthStatus.HEALTHY,
        f"statefulset rolling update complete {_int(status.get('currentReplicas'))} pods at revision "
        f"{status.get('currentRevision', '')}...",
    )


def _daemonset(obj: Obj) -> Health:
    spec, status = _spec(obj), _status(obj)
    name = (obj.get("metadata") or {}).get("name", "")
    if _generation(obj) > _int(status.get("observedGeneration")):
        return _h(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        )
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    strategy = _sub(spec, "updateStrategy")
    if strategy.get("type") == "OnDelete":
        return _h(HealthStatus.HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated")
    if updated < desired:
        return _h(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been '
            "updated...",
        )
    if available < desired:
        return _h(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
            "available...",
        )
    return _h(HealthStatus.HEALTHY)


# --- core --------------------------------------------------------------------------------------


def _pod_ready(status: Obj) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _container_statuses(status: Obj, field: str) -> list[Obj]:
    found = status.get(field)
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def _failure_message(container: Obj) -> str:
    terminated = (container.get("state") or {}).get("terminated")
    if not isinstance(terminated, Mapping):
        return ""
    if terminated.get("message"):
        return str(terminated["message"])
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    code = _int(terminated.get("exitCode"))
    if code != 0:
        return f'container "{container.get("name", "")}" failed with exit code {code}'
    return ""


def _pod(obj: Obj) -> Health:
    spec, status = _spec(obj), _status(obj)
    policy = spec.get("restartPolicy") or "Always"
    message = str(status.get("message") or "")
    containers = _container_statuses(status, "containerStatuses")
    if policy == "Always":
        # Waiting errors only count for restarting pods: a hook pod (Never/OnFailure) that
        # cannot pull yet must not fail its hook before the image appears.
        messages = []
        for container in containers:
            waiting = (container.get("state") or {}).get("waiting")
            reason = str(waiting.get("reason") or "") if isinstance(waiting, Mapping) else ""
            if isinstance(waiting, Mapping) and (reason.startswith("Err") or reason.endswith(("Error", "BackOff"))):
                messages.append(str(waiting.get("message") or reason))
        if messages:
            return _h(HealthStatus.DEGRADED, ", ".join(messages))
    phase = status.get("phase")
    if phase == "Pending":
        return _h(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return _h(HealthStatus.HEALTHY, message)
    if phase == "Failed":
        if message:
            return _h(HealthStatus.DEGRADED, message)
        for container in _container_statuses(status, "initContainerStatuses") + containers:
            if failure := _failure_message(container):
                return _h(HealthStatus.DEGRADED, failure)
        return _h(HealthStatus.DEGRADED)
    if phase == "Running":
        if policy == "Always":
            if _pod_ready(status):
                return _h(HealthStatus.HEALTHY, message)
            if any(isinstance((c.get("lastState") or {}).get("terminated"), Mapping) for c in containers):
                return _h(HealthStatus.DEGRADED, message)
            return _h(HealthStatus.PROGRESSING, message)
        # OnFailure / Never: a pod with a finite life (usually a hook) is Progressing until it ends.
        return _h(HealthStatus.PROGRESSING, message)
    return _h(HealthStatus.UNKNOWN, message)


def _service(obj: Obj, local: bool) -> Health:
    if _spec(obj).get("type") != "LoadBalancer" or local:
        return _h(HealthStatus.HEALTHY)
    if _load_balancer_ingress(obj):
        return _h(HealthStatus.HEALTHY)
    return _h(HealthStatus.PROGRESSING)


def _load_balancer_ingress(obj: Obj) -> bool:
    balancer = _status(obj).get("loadBalancer")
    ingress = balancer.get("ingress") if isinstance(balancer, Mapping) else None
    return isinstance(ingress, list) and len(ingress) > 0


def _pvc(obj: Obj) -> Health:
    phase = _status(obj).get("phase")
    if phase == "Lost":
        return _h(HealthStatus.DEGRADED)
    if phase == "Pending":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if "volume.beta.kubernetes.io/storage-provisioner" in annotations:
            return _h(HealthStatus.PROGRESSING, "Provisioning volume")
        return _h(HealthStatus.HEALTHY, "Waiting for consumer")
    if phase == "Bound":
        return _h(HealthStatus.HEALTHY)
    return _h(HealthStatus.UNKNOWN)


def _ingress(obj: Obj) -> Health:
    return _h(HealthStatus.HEALTHY if _load_balancer_ingress(obj) else HealthStatus.PROGRESSING)


# --- batch, autoscaling, apiregistration ---------------------------------------------------------


def _job(obj: Obj) -> Health:
    failed = complete = suspended = False
    fail_message = message = ""
    for condition in _conditions(obj):
        kind = condition.get("type")
        if kind == "Failed":
            failed = complete = True
            fail_message = str(condition.get("message") or "")
        elif kind == "Complete":
            complete = True
            message = str(condition.get("message") or "")
        elif kind == "Suspended":
            complete = True
            message = str(condition.get("message") or "")
            suspended = suspended or condition.get("status") == "True"
    if not complete:
        return _h(HealthStatus.PROGRESSING, message)
    if failed:
        return _h(HealthStatus.DEGRADED, fail_message)
    if suspended:
        # A suspended Job does not make its application unhealthy.
        return Health(HealthStatus.SUSPENDED, fail_message, aggregate_as=HealthStatus.HEALTHY)
    return _h(HealthStatus.HEALTHY, message)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _cronjob(obj: Obj) -> Health:
    status = _status(obj)
    if _spec(obj).get("suspend"):
        return _h(HealthStatus.SUSPENDED, "CronJob is suspended")
    active = status.get("active")
    if isinstance(active, list) and active:
        return _h(HealthStatus.PROGRESSING, "CronJob has active jobs")
    scheduled = _parse_time(status.get("lastScheduleTime"))
    succeeded = _parse_time(status.get("lastSuccessfulTime"))
    if scheduled is None:
        return _h(HealthStatus.HEALTHY, "CronJob has never run")
    if succeeded is not None and scheduled < succeeded:
        return _h(HealthStatus.HEALTHY, "CronJob has run successfully")
    return _h(HealthStatus.DEGRADED, "CronJob has not run successfully")


_HPA_DEGRADED = {
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "InvalidSelector"),
}


def _hpa(obj: Obj) -> Health:
    waiting = _h(HealthStatus.PROGRESSING, "Waiting to Autoscale")
    if _group_version(obj) == ("autoscaling", "v1"):
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get("autoscaling.alpha.kubernetes.io/conditions")
        if raw is None:
            return waiting
        try:
            conditions = json.loads(raw)
        except ValueError as exc:
            return _h(HealthStatus.UNKNOWN, f"failed to convert conditions annotation to typed: {exc}")
        if not isinstance(conditions, list):
            return waiting
    else:
        conditions = _conditions(obj)
    for condition in conditions:
        if not isinstance(condition, Mapping):
            continue
        if (condition.get("type"), condition.get("reason")) in _HPA_DEGRADED:
            return _h(HealthStatus.DEGRADED, str(condition.get("message") or ""))
        if condition.get("type") in ("AbleToScale", "ScalingLimited") and condition.get("status") == "True":
            return _h(HealthStatus.HEALTHY, str(condition.get("message") or ""))
    return waiting


def _apiservice(obj: Obj) -> Health:
    available = _condition(obj, "Available")
    if available is None:
        return _h(HealthStatus.PROGRESSING, "Waiting to be processed")
    message = f"{available.get('reason', '')}: {available.get('message', '')}"
    if available.get("status") == "True":
        return _h(HealthStatus.HEALTHY, message)
    return _h(HealthStatus.PROGRESSING, message)


# --- argoproj.io ----------------------------------------------------------------------------------


def _workflow(obj: Obj) -> Health:
    status = _status(obj)
    phase = status.get("phase") or ""
    message = str(status.get("message") or "")
    if phase in ("", "Pending", "Running"):
        return _h(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return _h(HealthStatus.HEALTHY, message)
    if phase in ("Failed", "Error"):
        return _h(HealthStatus.DEGRADED, message)
    return _h(HealthStatus.UNKNOWN, message)


_ROLLOUT_PHASES = {
    "Healthy": HealthStatus.HEALTHY,
    "Progressing": HealthStatus.PROGRESSING,
    "Paused": HealthStatus.SUSPENDED,
    "Degraded": HealthStatus.DEGRADED,
}


def _rollout(obj: Obj) -> Health:
    """Argo CD's ``argoproj.io/Rollout`` health.lua, preferring ``status.phase`` when the controller writes it.

    Argo Rollouts ≥ 1.0 computes ``status.phase``/``message`` with the same rules the
    Lua script spells out; funade's rollout controller writes them too.
    """
    spec, status = _spec(obj), _status(obj)
    observed = status.get("observedGeneration")
    if not status or observed is None:
        return _h(HealthStatus.PROGRESSING, "Waiting for rollout spec update to be observed")
    if isinstance(observed, (int, str)) and str(observed).isdigit() and int(observed) != _generation(obj):
        return _h(HealthStatus.PROGRESSING, "Waiting for rollout spec update to be observed")
    for condition in _conditions(obj):
        kind, reason = condition.get("type"), condition.get("reason")
        if kind == "InvalidSpec" or (
            kind == "Progressing" and reason in ("RolloutAborted", "ProgressDeadlineExceeded")
        ):
            return _h(HealthStatus.DEGRADED, str(condition.get("message") or ""))
    if status.get("abort"):
        return _h(HealthStatus.DEGRADED, str(status.get("message") or "Rollout is aborted"))
    phase = status.get("phase")
    if phase in _ROLLOUT_PHASES:
        return _h(_ROLLOUT_PHASES[str(phase)], str(status.get("message") or ""))
    pause_conditions = status.get("pauseConditions")
    if (isinstance(pause_conditions, list) and pause_conditions) or spec.get("paused"):
        return _h(HealthStatus.SUSPENDED, "Rollout is paused")
    current = status.get("currentPodHash")
    if current is None:
        return _h(HealthStatus.PROGRESSING, "Waiting for rollout to finish: status has not been reconciled.")
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    replicas = _int(status.get("replicas"))
    updated = _int(status.get("updatedReplicas"))
    available = _int(status.get("availableReplicas"))
    if updated < desired:
        return _h(HealthStatus.PROGRESSING, "Waiting for roll out to finish: More replicas need to be updated")
    if available < updated:
        return _h(
            HealthStatus.PROGRESSING, "Waiting for roll out to finish: updated replicas are still becoming available"
        )
    canary_status = _sub(status, "canary")
    stable = status.get("stableRS") or canary_status.get("stableRS") or ""
    strategy = _sub(spec, "strategy")
    if strategy.get("blueGreen") is not None:
        blue_green = _sub(status, "blueGreen")
        if blue_green.get("activeSelector") != current:
            return _h(HealthStatus.PROGRESSING, "active service cutover pending")
        if stable and stable != current:
            return _h(HealthStatus.PROGRESSING, "waiting for analysis to complete")
    elif strategy.get("canary") is not None:
        if replicas > updated:
            return _h(HealthStatus.PROGRESSING, "Waiting for roll out to finish: old replicas are pending termination")
        if not stable or stable != current:
            return _h(HealthStatus.PROGRESSING, "Waiting for rollout to finish steps")
    return _h(HealthStatus.HEALTHY)


# --- dispatch -------------------------------------------------------------------------------------


def _group_version(obj: Obj) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return "", ""
    group, _, version = api_version.rpartition("/")
    return group, version


_CHECKS = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("extensions", "Ingress"): _ingress,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("argoproj.io", "Workflow"): _workflow,
    ("argoproj.io", "Rollout"): _rollout,
}


def has_health_check(api_version: str, kind: str) -> bool:
    """Whether funade assesses this kind (otherwise its health is None)."""
    group = api_version.rpartition("/")[0]
    return (group, kind) in _CHECKS or (group, kind) == ("", "Service")


def assess(obj: Obj, *, local: bool = False) -> Health | None:
    """The health of one live object, or None for kinds without a health check.

    An object being deleted is Progressing ("Pending deletion") whatever its kind,
    unless only a hook finalizer holds it. ``local`` says the object lives on the
    local target (see the module docstring).
    """
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp") and HOOK_FINALIZER not in (meta.get("finalizers") or []):
        return _h(HealthStatus.PROGRESSING, "Pending deletion")
    group, _ = _group_version(obj)
    kind = str(obj.get("kind", ""))
    if (group, kind) == ("", "Service"):
        return _service(obj, local)
    check = _CHECKS.get((group, kind))
    if check is None:
        return None
    try:
        return check(obj)
    except (AttributeError, TypeError, ValueError) as exc:  # malformed status: Unknown, as a failed check
        return _h(HealthStatus.UNKNOWN, f"failed to assess {kind} health: {exc}")


def aggregate(healths: Iterable[Health | None]) -> Health:
    """The worst of several healths (None entries do not count): Healthy when there are none.

    Each health counts as its ``aggregate_as`` when set. The message is the first worst one's.
    """
    worst = Health(HealthStatus.HEALTHY)
    for health in healths:
        if health is None:
            continue
        status = health.aggregate_as or health.status
        if is_worse(worst.status, status):
            worst = Health(status, health.message)
    return worst


def app_health(
    resources: Iterable[tuple[Obj | None, Obj | None]],
    *,
    local: bool = False,
) -> Health:
    """An application's health from its (desired, live) resource pairs, as Argo CD computes it.

    A missing resource is Missing only when its kind has a health check (a missing
    ConfigMap does not make the app Missing); hooks, ``hook: Skip`` manifests and
    manifests annotated ``argocd.argoproj.io/ignore-healthcheck: "true"`` do not count.
    """
    healths: list[Health | None] = []
    for desired, live in resources:
        if desired is not None and diff.is_skipped(desired):
            continue
        if desired is not None and diff.has_option(desired, IGNORE_HEALTHCHECK_ANNOTATION, "true"):
            continue
        if live is not None and diff.is_hook(live):
            continue
        ref = live if live is not None else desired
        if ref is None:
            continue
        if live is None:
            api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
            health = _h(HealthStatus.MISSING) if has_health_check(api_version, kind) else None
        else:
            health = assess(live, local=local)
        healths.append(health)
    return aggregate(healths)
