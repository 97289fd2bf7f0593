"""Revision identity and the Deployment status rules Kubernetes uses.

A revision is keyed by the hash of its pod template (the ``pod-template-hash`` label);
the status conditions (Available, Progressing) and their reasons follow the deployment
controller's ``sync.go`` and ``progress.go``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CHANGE_CAUSE",
    "HASH_LABEL",
    "REVISION_ANNOTATION",
    "Counts",
    "available_condition",
    "made_progress",
    "parse_time",
    "progressing_condition",
    "rfc3339",
    "template_hash",
    "without_hash",
]

HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


def template_hash(template: Obj) -> str:
    """A short, stable name for a pod template (10 characters Kubernetes may use in names)."""
    canonical = json.dumps(without_hash(template), sort_keys=True, separators=(",", ":"))
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def without_hash(template: Obj) -> Obj:
    """The template without the pod-template-hash label funade adds to revisions."""
    copy: Obj = json.loads(json.dumps(template))
    labels = copy.get("metadata", {}).get("labels")
    if labels and HASH_LABEL in labels:
        del labels[HASH_LABEL]
    return copy


@dataclass(frozen=True)
class Counts:
    """Replica counts of a Deployment's status."""

    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0


def rfc3339(ts: float) -> str:
    """Seconds since the epoch as Kubernetes writes timestamps."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp (as Kubernetes writes them) in seconds since the epoch."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def made_progress(before: Counts, after: Counts) -> bool:
    """Whether a status change counts as progress (Kubernetes' ``DeploymentProgressing``)."""
    return (
        after.updated > before.updated
        or (after.replicas - after.updated) < (before.replicas - before.updated)
        or after.ready > before.ready
        or after.available > before.available
    )


def _condition(kind: str, status: str, reason: str, message: str, now: str, old: Obj | None, touch: bool) -> Obj:
    same = old is not None and old.get("status") == status
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now if touch or not same or old is None else old.get("lastUpdateTime", now),
        "lastTransitionTime": old.get("lastTransitionTime", now) if same and old else now,
    }


def available_condition(available: int, desired: int, max_unavailable: int, now: str, old: Obj | None) -> Obj:
    """The Available condition: at least ``desired - maxUnavailable`` pods available."""
    if available >= desired - max_unavailable:
        return _condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now, old, False
        )
    return _condition(
        "Available",
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
        now,
        old,
        False,
    )


def progressing_condition(
    *,
    rs_name: str,
    complete: bool,
    created: bool,
    progressed: bool,
    paused: bool,
    all_updated: bool = False,
    deadline_seconds: int,
    now_ts: float,
    now: str,
    old: Obj | None,
) -> Obj:
    """The Progressing condition, with the progress deadline.

    Args:
        rs_name: the new revision's ReplicaSet name.
        complete: every replica updated and available, no old pod left.
        created: the new revision was created by this sync.
        progressed: the counts show progress since the last sync.
        paused: the Deployment is paused (the deadline is not checked).
        all_updated: every existing pod belongs to the new revision. A finished rollout
            stays finished (NewReplicaSetAvailable) while that holds, even when pods
            become unavailable later: only a new rollout is checked against the deadline.
        deadline_seconds: progressDeadlineSeconds.
        now_ts: the current time in seconds.
        now: the current time as an RFC 3339 string.
        old: the previous Progressing condition.
    """
    if paused:
        return _condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now, old, False)
    if old and old.get("reason") == "NewReplicaSetAvailable" and (complete or (all_updated and not created)):
        return old
    if complete:
        return _condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            now,
            old,
            True,
        )
    if created:
        return _condition(
            "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"', now, old, True
        )
    if (
        progressed
        or old is None
        or old.get("reason") in ("NewReplicaSetAvailable", "DeploymentPaused", "DeploymentResumed")
    ):
        return _condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', now, old, True
        )
    if old.get("reason") == "ProgressDeadlineExceeded":
        return old
    last = parse_time(old.get("lastUpdateTime", now))
    if now_ts - last > deadline_seconds:
        return _condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
            now,
            old,
            True,
        )
    return old
