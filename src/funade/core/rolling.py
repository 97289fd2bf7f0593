"""Deployment rollout arithmetic, as the Kubernetes deployment controller does it.

A Deployment owns revisions (ReplicaSets). Each sync looks at how many pods every
revision wants and has, and returns the next scaling decisions. The functions here are
pure ports of ``pkg/controller/deployment`` (rolling.go, recreate.go, util): surge
rounds up, unavailable rounds down, both zero means one unavailable, the new revision
is scaled up first, then old revisions are scaled down, unhealthy pods first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from funade.core import intstr

__all__ = [
    "Revision",
    "Scale",
    "circuit_breaker_threshold",
    "is_complete",
    "recreate_step",
    "resolve_fenceposts",
    "rolling_step",
]


@dataclass(frozen=True)
class Revision:
    """One revision (ReplicaSet) as the controller sees it.

    Attributes:
        name: the ReplicaSet name.
        revision: its revision number (older revisions have smaller numbers).
        replicas: how many pods it is asked to run (``spec.replicas``).
        pods: pods that exist and are not terminating.
        ready: pods whose Ready condition is true.
        available: pods ready for at least ``minReadySeconds``.
    """

    name: str
    revision: int
    replicas: int
    pods: int = 0
    ready: int = 0
    available: int = 0


@dataclass(frozen=True)
class Scale:
    """Set one revision's replica count."""

    name: str
    replicas: int
    reason: str


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, desired: int) -> tuple[int, int]:
    """Turn maxSurge/maxUnavailable into pod counts for ``desired`` replicas.

    Surge rounds up, unavailable rounds down; when both come to zero, one pod may be
    unavailable so the rollout can make progress (Kubernetes' ``ResolveFenceposts``).
    """
    surge = intstr.scaled_value(max_surge, desired, round_up=True)
    unavailable = intstr.scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _oldest_first(revisions: list[Revision]) -> list[Revision]:
    return sorted(revisions, key=lambda r: r.revision)


def _new_replicas(desired: int, surge: int, new: Revision, old: list[Revision]) -> int:
    current = new.replicas + sum(r.replicas for r in old)
    max_total = desired + surge
    if current >= max_total:
        return new.replicas
    scale_up = min(max_total - current, desired - new.replicas)
    return new.replicas + scale_up


def rolling_step(desired: int, surge: int, unavailable: int, new: Revision, old: list[Revision]) -> list[Scale]:
    """The next decisions of a RollingUpdate sync.

    Args:
        desired: ``spec.replicas`` of the Deployment.
        surge: resolved maxSurge (pods above ``desired``).
        unavailable: resolved maxUnavailable (pods below ``desired``).
        new: the revision whose template equals the Deployment's.
        old: every other revision.

    Returns:
        Scale decisions; empty when nothing can move until pods change state.
    """
    # Scale the new revision up first; the next sync (after pods change) scales old ones down.
    if new.replicas > desired:
        return [Scale(new.name, desired, "scaled down new revision to the desired count")]
    if new.replicas < desired:
        target = _new_replicas(desired, surge, new, old)
        if target != new.replicas:
            return [Scale(new.name, target, f"scaled up new revision to {target}")]

    active_old = [r for r in old if r.replicas > 0]
    if not active_old:
        return []
    all_pods = new.replicas + sum(r.replicas for r in old)
    min_available = desired - unavailable
    new_unavailable = new.replicas - new.available
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []

    decisions: dict[str, int] = {}
    reasons: dict[str, str] = {}
    # First remove pods of old revisions that are not available anyway: costs no capacity.
    cleaned = 0
    for rev in _oldest_first(active_old):
        if cleaned >= max_scaled_down:
            break
        unhealthy = rev.replicas - rev.available
        if unhealthy <= 0:
            continue
        count = min(max_scaled_down - cleaned, unhealthy)
        decisions[rev.name] = rev.replicas - count
        reasons[rev.name] = f"removed {count} unavailable pod(s) of old revision"
        cleaned += count

    # Then scale old revisions down as far as availability allows.
    total_available = new.available + sum(r.available for r in old)
    if total_available > min_available:
        budget = total_available - min_available
        scaled = 0
        for rev in _oldest_first(active_old):
            if scaled >= budget:
                break
            current = decisions.get(rev.name, rev.replicas)
            if current == 0:
                continue
            count = min(current, budget - scaled)
            decisions[rev.name] = current - count
            reasons[rev.name] = f"scaled down old revision to {current - count}"
            scaled += count

    return [Scale(name, replicas, reasons[name]) for name, replicas in decisions.items()]


def recreate_step(desired: int, new: Revision, old: list[Revision]) -> list[Scale]:
    """The next decisions of a Recreate sync: all old pods go before any new one starts."""
    active_old = [r for r in old if r.replicas > 0]
    if active_old:
        return [Scale(r.name, 0, "Recreate: scaled down old revision") for r in active_old]
    if any(r.pods > 0 for r in old):
        return []  # wait for old pods to terminate
    if new.replicas != desired:
        return [Scale(new.name, desired, f"Recreate: scaled new revision to {desired}")]
    return []


def is_complete(desired: int, new: Revision, old: list[Revision]) -> bool:
    """Every replica is updated and available, and no old pod is left."""
    return (
        new.replicas == desired
        and new.pods == desired
        and new.available >= desired
        and all(r.replicas == 0 and r.pods == 0 for r in old)
    )


def circuit_breaker_threshold(desired: int) -> int:
    """Failed pods of a new revision that trigger an automatic rollback.

    The ECS deployment circuit breaker's formula: min(200, max(3, ceil(0.5 × desired))).
    """
    return min(200, max(3, math.ceil(0.5 * desired)))
