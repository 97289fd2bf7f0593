"""Kubernetes Jobs as the job controller runs them: how many pods to start or stop, and when a Job is over.

A Job runs pods until enough of them succeed (``completions``; without it, until one
does: the work-queue pattern), ``parallelism`` at a time, each index once for an
``Indexed`` Job. It fails when its pods fail more than ``backoffLimit`` times (for
``restartPolicy: OnFailure``, container restarts count), or when it has been active for
``activeDeadlineSeconds``; then its running pods are stopped. A failed pod is replaced
after a back-off of 10 s doubling to six minutes. ``suspend`` stops the pods and resets
the start time. The functions here are pure: :func:`decide` takes the Job, its pods and
the time, and returns what to create, what to delete and the new status.
(pkg/controller/job/job_controller.go, ``syncJob``, ``manageJob``, ``pastBackoffLimit``.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from funade.core import revisions

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_START",
    "COMPLETION_INDEX_ANNOTATION",
    "CONTROLLER_UID_LABEL",
    "JOB_NAME_LABEL",
    "Decision",
    "JobError",
    "JobSpec",
    "PodState",
    "compress_indexes",
    "decide",
    "defaulted",
    "parse",
    "pod_template",
]

Obj = dict[str, Any]
BACKOFF_START = 10.0
"""Seconds before the first replacement of a failed pod (DefaultJobPodFailureBackOff)."""
BACKOFF_MAX = 360.0
"""The back-off stops doubling at six minutes."""
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class JobError(ValueError):
    """A Job the API server would refuse; the message starts with the field path."""


@dataclass(frozen=True)
class JobSpec:
    """What :func:`decide` needs of a Job's spec, defaults applied.

    Attributes:
        completions: successful pods (or indexes) wanted; None: the work-queue pattern.
        parallelism: pods running at once at most.
        backoff_limit: failures tolerated before the Job fails.
        active_deadline: seconds the Job may be active, or None.
        suspend: whether the Job is suspended.
        indexed: ``completionMode: Indexed``.
        restart_policy: ``Never`` or ``OnFailure``.
        ttl_after_finished: seconds after which a finished Job is deleted, or None.
    """

    completions: int | None = 1
    parallelism: int = 1
    backoff_limit: int = 6
    active_deadline: float | None = None
    suspend: bool = False
    indexed: bool = False
    restart_policy: str = "Never"
    ttl_after_finished: int | None = None


def _int(spec: Mapping[str, Any], name: str, default: int | None, minimum: int) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobError(f"spec.{name}: {value!r} is not an integer")
    if value < minimum:
        raise JobError(f"spec.{name}: must be greater than or equal to {minimum}, not {value}")
    return value


def parse(obj: Mapping[str, Any]) -> JobSpec:
    """Validate a Job (batch/v1) and apply the API server's defaults.

    Raises:
        JobError: naming the field (``spec.template.spec.restartPolicy: …``).
    """
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise JobError("spec: Required value")
    template = spec.get("template")
    if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
        raise JobError("spec.template.spec: Required value")
    policy = template["spec"].get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        raise JobError(f'spec.template.spec.restartPolicy: {policy!r}: supported values: "OnFailure", "Never"')
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        raise JobError(f'spec.completionMode: {mode!r}: supported values: "NonIndexed", "Indexed"')
    parallelism = _int(spec, "parallelism", 1, 0)
    completions = _int(spec, "completions", None if "parallelism" in spec else 1, 0)
    if mode == "Indexed" and completions is None:
        raise JobError("spec.completions: Required value: when completion mode is Indexed")
    deadline = _int(spec, "activeDeadlineSeconds", None, 1)
    suspend = spec.get("suspend", False)
    if not isinstance(suspend, bool):
        raise JobError(f"spec.suspend: {suspend!r} is not a boolean")
    return JobSpec(
        completions=completions,
        parallelism=parallelism if parallelism is not None else 1,
        backoff_limit=_int(spec, "backoffLimit", 6, 0) or 0,
        active_deadline=float(deadline) if deadline is not None else None,
        suspend=suspend,
        indexed=mode == "Indexed",
        restart_policy=str(policy),
        ttl_after_finished=_int(spec, "ttlSecondsAfterFinished", None, 0),
    )


def defaulted(obj: Mapping[str, Any]) -> Obj:
    """The Job with the API server's defaults written into its spec (as ``kubectl get job -o yaml`` shows)."""
    parsed = parse(obj)
    spec = dict(obj.get("spec") or {})
    spec.setdefault("parallelism", parsed.parallelism)
    if parsed.completions is not None:
        spec.setdefault("completions", parsed.completions)
    spec.setdefault("backoffLimit", parsed.backoff_limit)
    spec.setdefault("completionMode", "Indexed" if parsed.indexed else "NonIndexed")
    spec.setdefault("suspend", parsed.suspend)
    spec["template"] = pod_template(obj)
    return {**obj, "spec": spec}


def pod_template(obj: Mapping[str, Any]) -> Obj:
    """The Job's pod template validated and defaulted as the API server does a Pod's.

    Raises:
        JobError: naming the field under ``spec.template``.
    """
    from pydantic import ValidationError

    from funade.core import manifests, objects  # the typed Kubernetes models; imported here to keep parse() light

    template = dict((obj.get("spec") or {}).get("template") or {})
    meta = obj.get("metadata") or {}
    wrapper = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": str(meta.get("name") or "job"), "namespace": str(meta.get("namespace") or "default")},
        "spec": template.get("spec"),
    }
    try:
        spec = objects.to_dict(objects.parse(wrapper))["spec"]
    except ValidationError as exc:
        issues = manifests.validation_issues(exc, wrapper)
        raise JobError(
            "; ".join(f"{manifests.format_path(('spec', 'template', *p))}: {m}" for p, m in issues)
        ) from None
    except ValueError as exc:
        raise JobError(f"spec.template: {exc}") from None
    return {**template, "spec": spec}


@dataclass(frozen=True)
class PodState:
    """One pod of the Job as the kubelet reports it.

    Attributes:
        phase: ``Pending``, ``Running``, ``Succeeded`` or ``Failed``.
        index: its completion index (Indexed Jobs), else None.
        restarts: container restarts so far (they count as failures with ``OnFailure``).
        finished_at: when it reached Succeeded or Failed (epoch seconds).
    """

    name: str
    phase: str
    index: int | None = None
    restarts: int = 0
    ready: bool = False
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        return self.phase in ("Pending", "Running")


@dataclass(frozen=True)
class Decision:
    """What one sync of a Job does.

    Attributes:
        create: one entry per pod to start: its completion index (None for NonIndexed Jobs).
        delete: active pods to stop (the Job is over, suspended, or runs too many).
        status: the Job's new status (Kubernetes' layout).
        finished: ``Complete`` or ``Failed`` once the Job is over (this sync or before), else None.
        requeue_after: seconds until something is due (a back-off or the deadline), or None.
        events: ``(type, reason, message)`` to record.
    """

    create: tuple[int | None, ...] = ()
    delete: tuple[str, ...] = ()
    status: Obj = field(default_factory=dict)
    finished: str | None = None
    requeue_after: float | None = None
    events: tuple[tuple[str, str, str], ...] = ()


def compress_indexes(indexes: Sequence[int]) -> str:
    """``completedIndexes`` as Kubernetes writes it: ``"0-2,4,6-7"``."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = prev = None
    for index in [*ordered, None]:
        if index is not None and prev is not None and index == prev + 1:
            prev = index
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = index
    return ",".join(parts)


def _condition(kind: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def _finished(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _backoff(failures: int) -> float:
    """The wait before starting a pod again after ``failures`` failed ones."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX, BACKOFF_START * 2.0 ** (failures - 1)))


def _removal_order(pod: PodState) -> tuple[int, int, float]:
    """Which active pods go first when there are too many: pending, not ready, then the newest."""
    return (0 if pod.phase == "Pending" else 1, 1 if pod.ready else 0, -pod.created_at)


def decide(spec: JobSpec, status: Mapping[str, Any], pods: Sequence[PodState], now: float, stamp: str) -> Decision:
    """One sync of a Job.

    Args:
        status: the Job's stored status (its ``startTime`` and conditions carry on).
        pods: the Job's pods, finished ones included.
        now: the time (epoch seconds); ``stamp`` the same time in RFC 3339 for the status.
    """
    active = [p for p in pods if p.active]
    succeeded_pods = [p for p in pods if p.phase == "Succeeded"]
    failed = len([p for p in pods if p.phase == "Failed"])
    conditions = [dict(c) for c in status.get("conditions") or []]
    done_indexes = sorted({p.index for p in succeeded_pods if p.index is not None})
    succeeded = len(done_indexes) if spec.indexed else len(succeeded_pods)
    counts: Obj = {
        "active": len(active),
        "succeeded": succeeded,
        "failed": failed,
        "ready": len([p for p in active if p.ready]),
    }
    if spec.indexed:
        counts["completedIndexes"] = compress_indexes(done_indexes)

    def result(**changes: Any) -> Decision:
        merged = {k: v for k, v in {**status, **counts, **changes.pop("status", {})}.items() if v is not None}
        merged["conditions"] = conditions
        if not conditions:
            merged.pop("conditions")
        if not merged.get("completedIndexes"):
            merged.pop("completedIndexes", None)
        return Decision(status=merged, **changes)

    finished = _finished(status)
    if finished is not None:  # over: whatever still runs is stopped, nothing starts again
        counts["active"] = 0
        return result(delete=tuple(p.name for p in active), finished=finished)

    suspended = next((c for c in conditions if c.get("type") == "Suspended"), None)
    if spec.suspend:
        counts["active"] = 0
        events: tuple[tuple[str, str, str], ...] = ()
        if suspended is None or suspended.get("status") != "True":
            conditions = [c for c in conditions if c.get("type") != "Suspended"]
            conditions.append(_condition("Suspended", "JobSuspended", "Job suspended", stamp))
            events = (("Normal", "Suspended", "Job suspended"),)
        return result(delete=tuple(p.name for p in active), status={"startTime": None}, events=events)
    start = status.get("startTime")
    started_at: float | None = None
    if suspended is not None and suspended.get("status") == "True":  # resumed: the clock starts again
        conditions = [c for c in conditions if c.get("type") != "Suspended"]
        conditions.append({**_condition("Suspended", "JobResumed", "Job resumed", stamp), "status": "False"})
        start = None
    if not start:
        start, started_at = stamp, now
    changes: Obj = {"startTime": start}
    if started_at is None:
        try:
            started_at = revisions.parse_time(str(start))
        except ValueError:
            started_at = now

    # -- failure: too many failed pods (or restarts), or past the deadline ------------------
    restarts = sum(p.restarts for p in pods) if spec.restart_policy == "OnFailure" else 0
    if spec.restart_policy == "OnFailure":
        past_limit = restarts > 0 if spec.backoff_limit == 0 else restarts + failed >= spec.backoff_limit
    else:
        past_limit = failed > spec.backoff_limit
    reason = message = ""
    if past_limit:
        reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    elif spec.active_deadline is not None and now - started_at >= spec.active_deadline:
        reason, message = "DeadlineExceeded", "Job was active longer than specified deadline"
    if reason:
        conditions.append(_condition("FailureTarget", reason, message, stamp))
        conditions.append(_condition("Failed", reason, message, stamp))
        counts["active"] = 0
        return result(
            delete=tuple(p.name for p in active),
            status=changes,
            finished="Failed",
            events=(("Warning", reason, message),),
        )

    # -- success -------------------------------------------------------------------------
    # Without completions (a work queue) one success is enough, once the other pods have stopped.
    complete = (succeeded > 0 and not active) if spec.completions is None else succeeded >= spec.completions
    if complete:
        message = "Reached expected number of succeeded pods"
        conditions.append(_condition("SuccessCriteriaMet", "CompletionsReached", message, stamp))
        conditions.append(_condition("Complete", "CompletionsReached", message, stamp))
        counts["active"] = 0
        return result(
            delete=tuple(p.name for p in active),
            status={**changes, "completionTime": stamp},
            finished="Complete",
            events=(("Normal", "Completed", "Job completed"),),
        )

    # -- run the right number of pods ----------------------------------------------------------
    if spec.completions is None:
        wanted = 0 if succeeded > 0 else spec.parallelism  # work queue: once one succeeded, none start
    else:
        wanted = min(spec.parallelism, spec.completions - succeeded)
    deadline_in = None if spec.active_deadline is None else max(0.0, started_at + spec.active_deadline - now)
    if len(active) > wanted:
        surplus = sorted(active, key=_removal_order)[: len(active) - wanted]
        return result(delete=tuple(p.name for p in surplus), status=changes, requeue_after=deadline_in)
    missing = wanted - len(active)
    if missing <= 0:
        return result(status=changes, requeue_after=deadline_in)
    failures = failed + restarts
    last_failure = max((p.finished_at or 0.0 for p in pods if p.phase == "Failed"), default=0.0)
    wait = last_failure + _backoff(failures) - now if failures else 0.0
    if wait > 0:
        due = wait if deadline_in is None else min(wait, deadline_in)
        return result(status=changes, requeue_after=due)
    if spec.indexed:
        assert spec.completions is not None
        taken = {p.index for p in active} | set(done_indexes)
        free = [i for i in range(spec.completions) if i not in taken]
        create: tuple[int | None, ...] = tuple(free[:missing])
    else:
        create = (None,) * missing
    events = (("Normal", "SuccessfulCreate", f"Created {len(create)} pod(s)"),) if create else ()
    return result(create=create, status=changes, requeue_after=deadline_in, events=events)
