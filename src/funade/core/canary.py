"""The Argo Rollouts canary step machine as one pure function.

:func:`decide` takes a Rollout, the status kept from the previous call, the ReplicaSets as
observed (:class:`funade.core.rolling.Revision`, ``name`` = pod-template hash), the phases of
the AnalysisRuns it asked for and ``now``, and returns the next desired state: replicas per
revision, the canary traffic weight, header routes, runs to start and stop, the pause and the
phase. The engine applies it, observes again and calls again; nothing here does I/O or reads
a clock, so every step of a rollout can be replayed in a test.

Replica arithmetic is Argo's (``utils/replicaset/canary.go``): without trafficRouting the
weight is approximated by replica counts (``CalculateReplicaCountsForBasicCanary``, honouring
maxSurge/maxUnavailable through :func:`funade.core.rolling.resolve_fenceposts`); with it the
canary gets ceil(weight% × replicas) and the stable stays at 100 % unless dynamicStableScale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from funade.core import analysis, rolling
from funade.core import rollout as ro
from funade.core.rolling import Revision

__all__ = ["Decision", "basic_replica_counts", "decide", "fenceposts"]

_BAD = (analysis.Phase.FAILED, analysis.Phase.ERROR)


@dataclass(frozen=True)
class Decision:
    """The next desired state of a canary Rollout.

    Attributes:
        status: the status to persist and pass to the next call.
        replicas: (pod-template hash, desired replicas) for every revision that should change or exist.
        canary_weight: percent of traffic the data plane sends to the canary (trafficRouting);
            for a basic canary the weight the replica counts approximate.
        header_routes: header routes to the canary the data plane must carry now.
        start: AnalysisRuns to create.
        stop: AnalysisRun names to terminate.
        phase, message: as ``GetRolloutPhase`` (aborts say "aborted: running the stable revision, reason …").
        paused_until: when a timed pause ends, if paused on one.
        wake_at: when to decide again even if nothing is observed to change.
    """

    status: ro.RolloutStatus
    replicas: tuple[tuple[str, int], ...]
    canary_weight: int
    header_routes: tuple[ro.HeaderRoute, ...]
    start: tuple[ro.AnalysisStart, ...]
    stop: tuple[str, ...]
    phase: ro.RolloutPhase
    message: str
    paused_until: datetime | None = None
    wake_at: datetime | None = None

    def replicas_of(self, revision: str) -> int | None:
        """Desired replicas of ``revision``, if the decision names it."""
        return next((n for h, n in self.replicas if h == revision), None)


def fenceposts(rollout: ro.Rollout) -> tuple[int, int]:
    """``MaxSurge`` / ``MaxUnavailable`` of a canary Rollout (unavailable capped at replicas, 0 for 0 replicas)."""
    strategy = rollout.canary
    surge, unavailable = rolling.resolve_fenceposts(strategy.max_surge, strategy.max_unavailable, rollout.replicas)
    if rollout.replicas == 0:
        unavailable = 0
    return surge, min(unavailable, rollout.replicas)


def _approximate(replicas: int, weight: int, surge: int) -> tuple[int, int]:
    """``approximateWeightedCanaryStableReplicaCounts``: the (canary, stable) counts closest to ``weight``."""
    if replicas == 0:
        return 0, 0
    ceil_count = -(-replicas * weight // 100)
    floor_count = replicas * weight // 100

    def tied(total: int) -> bool:
        return math.modf(float(total) * (float(weight) / 100))[0] == 0.5

    zero_allowed = weight in (0, 100) or (replicas == 1 and surge == 0)
    options: list[tuple[int, int]] = []
    if ceil_count < replicas or zero_allowed:
        options.append((ceil_count, replicas))
    if not tied(replicas) and (floor_count != 0 or zero_allowed):
        options.append((floor_count, replicas))
    if surge > 0:
        options.append((ceil_count, replicas + 1))
        if not tied(replicas + 1) and (floor_count != 0 or zero_allowed):
            options.append((floor_count, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    best_delta = abs(float(best[0] * 100) / float(best[1]) - float(weight))
    for option in options[1:]:
        delta = abs(float(option[0] * 100) / float(option[1]) - float(weight))
        if delta < best_delta:
            best, best_delta = option, delta
    return best[0], best[1] - best[0]


def _for_scale_down(rs: Revision | None, ignore_availability: bool) -> int:
    """``GetReplicasForScaleDown``."""
    if rs is None:
        return 0
    if rs.replicas < rs.available or ignore_availability:
        return rs.replicas
    return rs.available


def _scale_down_count(rs: Revision | None, desired: int, budget: int, current: int) -> int:
    """``calculateScaleDownReplicaCount``."""
    if rs is not None and rs.replicas > desired:
        return max(desired, rs.replicas - budget)
    return current


def _within_limits(
    drain: Revision | None,
    adjust: Revision | None,
    drain_count: int,
    adjust_count: int,
    max_total: int,
    min_available: int,
) -> tuple[int, int]:
    """``adjustReplicaWithinLimits``: keep the pair within maxSurge without breaking maxUnavailable."""
    over = max(0, adjust_count + drain_count - max_total)
    available = min(drain.available, drain_count) if drain is not None else 0
    if adjust is not None:
        adjust_count -= over
        available += min(adjust.available, adjust_count)
        extra = max(0, adjust.available - adjust_count)
        needed = max(0, min_available - available)
        adjust_count += min(extra, needed)
        over = max(0, adjust_count + drain_count - max_total)
        drain_count -= over
    return drain_count, adjust_count


def basic_replica_counts(
    replicas: int, weight: int, surge: int, unavailable: int, new: Revision | None, stable: Revision | None,
    others: Sequence[Revision] = (),
) -> tuple[int, int]:  # fmt: skip
    """``CalculateReplicaCountsForBasicCanary``: the next (canary, stable) replica counts without a traffic router.

    Both sides are rounded towards the closest weight (possibly one pod over ``replicas``);
    the stable is scaled up before the canary, older revisions are drained first, and scale
    down never goes below ``replicas - unavailable`` available pods.
    """
    desired_new, desired_stable = _approximate(replicas, weight, surge)
    new_count = new.replicas if new is not None else 0
    scale_stable = stable is not None and (new is None or new.name != stable.name)
    stable_count = stable.replicas if scale_stable and stable is not None else 0
    if not scale_stable:
        desired_new, desired_stable = replicas, 0
    max_total = replicas + surge
    current = sum(r.replicas for r in others) + new_count + stable_count
    up = max_total - current
    if scale_stable and stable is not None and stable.replicas < desired_stable and up > 0:
        if stable.replicas + up < desired_stable:
            stable_count, up = stable.replicas + up, 0
        else:
            stable_count, up = desired_stable, up - (desired_stable - stable.replicas)
    if new is not None and new.replicas < desired_new and up > 0:
        new_count = min(new.replicas + up, desired_new)
    if sum(r.replicas for r in others) > 0:
        return new_count, stable_count
    min_available = replicas - unavailable
    increasing = new is None or desired_new >= new.replicas
    to_scale_down = _for_scale_down(new, not increasing) + _for_scale_down(stable if scale_stable else None, increasing)
    if to_scale_down <= min_available:
        return new_count, stable_count
    budget = to_scale_down - min_available
    if not increasing:
        new_count = _scale_down_count(new, desired_new, budget, new_count)
        new_count, stable_count = _within_limits(new, stable, new_count, stable_count, max_total, min_available)
    elif scale_stable:
        stable_count = _scale_down_count(stable, desired_stable, budget, stable_count)
        stable_count, new_count = _within_limits(stable, new, stable_count, new_count, max_total, min_available)
    return new_count, stable_count


# ---------------------------------------------------------------------------- weights


def _set_weight(rollout: ro.Rollout, status: ro.RolloutStatus) -> int:
    """``GetCurrentSetWeight``: 0 when aborted, 100 past the last step, else the last setWeight so far."""
    if status.abort:
        return 0
    steps = rollout.canary.steps
    if status.step_index >= len(steps):
        return 100
    for step in reversed(steps[: status.step_index + 1]):
        if isinstance(step, ro.SetWeight):
            return step.weight
    return 0


def _previous_weight(rollout: ro.Rollout, status: ro.RolloutStatus) -> int:
    """The setWeight before the current step: the weight kept while the canary is not yet scaled."""
    steps = rollout.canary.steps
    for step in reversed(steps[: min(status.step_index, len(steps))]):
        if isinstance(step, ro.SetWeight):
            return step.weight
    return 0


def _canary_scale(rollout: ro.Rollout, status: ro.RolloutStatus) -> ro.SetCanaryScale | None:
    """``UseSetCanaryScale``: the last setCanaryScale so far (routing only; ignored once aborted unless kept)."""
    strategy = rollout.canary
    if strategy.traffic_routing is None or status.promote_full:
        return None
    if status.abort and strategy.abort_scale_down_delay is not None:
        return None
    if status.step_index >= len(strategy.steps):
        return None
    for step in reversed(strategy.steps[: status.step_index + 1]):
        if isinstance(step, ro.SetCanaryScale):
            return None if step.match_traffic_weight else step
    return None


def _desired(
    rollout: ro.Rollout, status: ro.RolloutStatus, new: Revision, stable: Revision | None, others: Sequence[Revision],
    traffic_weight: int | None,
) -> tuple[int, int, int]:  # fmt: skip
    """(canary replicas, stable replicas, weight the counts are for) at the current step."""
    strategy = rollout.canary
    replicas = rollout.replicas
    weight = 100 if status.promote_full else _set_weight(rollout, status)
    if strategy.traffic_routing is None:
        surge, unavailable = fenceposts(rollout)
        canary, stable_count = basic_replica_counts(replicas, weight, surge, unavailable, new, stable, others)
        return canary, stable_count, weight
    scale = _canary_scale(rollout, status)
    if scale is not None and scale.replicas is not None:
        canary = scale.replicas
    else:
        if scale is not None and scale.weight is not None:
            weight = scale.weight
        canary = ro.weight_to_replicas(replicas, weight)
    if not strategy.dynamic_stable_scale:
        return canary, replicas, weight
    stable_count = ro.weight_to_replicas(replicas, 100 - weight)
    if traffic_weight is not None:
        stable_count = max(stable_count, ro.weight_to_replicas(replicas, 100 - traffic_weight))
        if status.abort:
            canary = max(canary, ro.weight_to_replicas(replicas, traffic_weight))
    return canary, stable_count, weight


def _at_desired(
    rollout: ro.Rollout,
    new: Revision,
    stable: Revision | None,
    others: Sequence[Revision],
    canary: int,
    stable_count: int,
) -> bool:
    """``AtDesiredReplicaCountsForCanary``."""
    strategy = rollout.canary
    if not (new.replicas == canary == new.available):
        return False
    checks_stable = strategy.traffic_routing is None or not strategy.dynamic_stable_scale
    if checks_stable and (stable is None or not (stable.replicas == stable_count == stable.pods)):
        return False
    return strategy.traffic_routing is not None or sum(r.available for r in others) == 0


# ---------------------------------------------------------------------------- the step machine


@dataclass
class _Work:
    status: ro.RolloutStatus
    start: list[ro.AnalysisStart]
    stop: list[str]
    paused_until: datetime | None = None


def _start_run(rollout: ro.Rollout, work: _Work, kind: str, spec: ro.RolloutAnalysis) -> str:
    status, name = work.status.next_run_name(rollout.name, kind)
    work.status = status
    work.start.append(ro.AnalysisStart(name, kind, spec))
    return name


def _stop_runs(work: _Work, runs: Mapping[str, ro.RunStatus], *, keep_background: bool = False) -> None:
    status = work.status
    names = [status.step_run] + ([] if keep_background else [status.background_run])
    for name in names:
        if name is not None and name not in work.stop:
            seen = runs.get(name)
            if seen is None or not seen.phase.completed:
                work.stop.append(name)
    work.status = replace(status, step_run=None, background_run=status.background_run if keep_background else None)


def _abort_for_run(work: _Work, name: str, seen: ro.RunStatus, now: datetime) -> None:
    detail = f": {seen.message}" if seen.message else ""
    work.status = ro.abort(work.status, now, f"analysis run {name} {seen.phase.value}{detail}")


def _background(rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], now: datetime) -> None:
    """``reconcileBackgroundAnalysisRun``: start from startingStep; Failed/Error aborts, Inconclusive pauses."""
    spec = rollout.canary.analysis
    status = work.status
    if spec is None or (spec.starting_step is not None and status.step_index < spec.starting_step):
        return
    if status.pause(ro.PauseReason.INCONCLUSIVE_ANALYSIS) is not None:
        return
    name = status.background_run
    seen = runs.get(name) if name is not None else None
    rerun = seen is not None and seen.phase is analysis.Phase.INCONCLUSIVE and status.controller_pause
    if name is None or rerun:
        name = _start_run(rollout, work, "background", spec)
        work.status = replace(work.status, background_run=name)
        return
    if seen is None:
        return
    if seen.phase is analysis.Phase.INCONCLUSIVE:
        work.status = work.status.with_pause(ro.PauseReason.INCONCLUSIVE_ANALYSIS, now)
    elif seen.phase in _BAD:
        _abort_for_run(work, name, seen, now)


def _step_done(
    rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], now: datetime, at_desired: bool,
    weight_applied: bool,
) -> bool:  # fmt: skip
    """``completedCurrentCanaryStep`` plus what reaching the step starts (pause condition, step run)."""
    status = work.status
    step = rollout.canary.steps[status.step_index]
    if isinstance(step, ro.PauseStep):
        cond = status.pause(ro.PauseReason.CANARY_PAUSE_STEP)
        if cond is None:
            if status.controller_pause:
                return True  # promoted while paused
            work.status = status.with_pause(ro.PauseReason.CANARY_PAUSE_STEP, now)
            cond = work.status.pause(ro.PauseReason.CANARY_PAUSE_STEP)
            assert cond is not None
        if step.duration is None:
            return False
        until = cond.started_at + timedelta(seconds=step.duration)
        if now >= until:
            return True
        work.paused_until = until
        return False
    if isinstance(step, ro.SetWeight):
        return at_desired and weight_applied
    if isinstance(step, ro.SetCanaryScale):
        return at_desired
    if isinstance(step, ro.SetHeaderRoute):
        return True
    if status.pause_conditions:
        return False
    name = status.step_run
    if name is None:
        name = _start_run(rollout, work, f"step{status.step_index}", step.analysis)
        work.status = replace(work.status, step_run=name)
        return False
    seen = runs.get(name)
    if seen is None:
        return False
    if seen.phase is analysis.Phase.SUCCESSFUL:
        return True
    if seen.phase is analysis.Phase.INCONCLUSIVE:
        work.status = work.status.with_pause(ro.PauseReason.INCONCLUSIVE_ANALYSIS, now)
    elif seen.phase in _BAD:
        _abort_for_run(work, name, seen, now)
    return False


def _header_routes(rollout: ro.Rollout, status: ro.RolloutStatus) -> tuple[ro.HeaderRoute, ...]:
    """Header routes set by the steps so far; a setHeaderRoute without match removes its route."""
    if status.abort or status.promote_full or status.current_hash == status.stable_hash:
        return ()
    routes: dict[str, ro.HeaderRoute] = {}
    for step in rollout.canary.steps[: status.step_index + 1]:
        if isinstance(step, ro.SetHeaderRoute):
            if step.match:
                routes[step.name] = ro.HeaderRoute(step.name, step.match)
            else:
                routes.pop(step.name, None)
    return tuple(routes.values())


def _phase(
    rollout: ro.Rollout, status: ro.RolloutStatus, new: Revision, olds: Sequence[Revision], timed_out: bool
) -> tuple[ro.RolloutPhase, str]:
    """``CalculateRolloutPhase`` for a canary."""
    if status.abort:
        return ro.RolloutPhase.DEGRADED, ro.aborted_message(status.abort_reason)
    if timed_out:
        return ro.RolloutPhase.DEGRADED, f'ProgressDeadlineExceeded: ReplicaSet "{new.name}" has timed out progressing.'
    if rollout.paused:
        return ro.RolloutPhase.PAUSED, "manually paused"
    if status.pause_conditions:
        return ro.RolloutPhase.PAUSED, status.pause_conditions[0].reason.value
    if new.pods < rollout.replicas or new.replicas < rollout.replicas:
        return ro.RolloutPhase.PROGRESSING, "more replicas need to be updated"
    if new.available < new.pods:
        return ro.RolloutPhase.PROGRESSING, "updated replicas are still becoming available"
    if rollout.canary.traffic_routing is None and any(r.pods for r in olds):
        return ro.RolloutPhase.PROGRESSING, "old replicas are pending termination"
    if status.stable_hash != status.current_hash:
        return ro.RolloutPhase.PROGRESSING, "waiting for all steps to complete"
    return ro.RolloutPhase.HEALTHY, ""


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _scale_old(
    rollout: ro.Rollout, work: _Work, olds: Sequence[Revision], new: Revision, now: datetime
) -> tuple[list[tuple[str, int]], datetime | None]:
    """Scale other revisions down: after their deadline with a router, under maxUnavailable without."""
    strategy = rollout.canary
    decisions: list[tuple[str, int]] = []
    wake: datetime | None = None
    if strategy.traffic_routing is not None:
        promoted = work.status.stable_hash == work.status.current_hash
        for rs in olds:
            if rs.replicas == 0:
                continue
            deadline = work.status.scale_down_deadline(rs.name)
            if promoted and deadline is None and strategy.scale_down_delay > 0:
                deadline = now + timedelta(seconds=strategy.scale_down_delay)
                work.status = work.status.with_deadline(rs.name, deadline)
            if deadline is not None and now < deadline:
                wake = _earliest(wake, deadline)
                continue
            decisions.append((rs.name, 0))
        return decisions, wake
    _, unavailable = fenceposts(rollout)
    available = new.available + sum(r.available for r in olds)
    budget = available - (rollout.replicas - unavailable)
    for rs in sorted(olds, key=lambda r: -r.revision):
        if rs.replicas == 0:
            continue
        unhealthy = rs.replicas - rs.available  # cleanupUnhealthyReplicas: costs no availability
        target = rs.replicas - unhealthy
        if budget > 0 and target > 0:
            cut = min(target, budget)
            target -= cut
            budget -= cut
        if target != rs.replicas:
            decisions.append((rs.name, target))
    return decisions, wake


def decide(
    rollout: ro.Rollout,
    status: ro.RolloutStatus,
    replica_sets: Sequence[Revision],
    runs: Mapping[str, ro.RunStatus],
    now: datetime,
    traffic_weight: int | None = None,
) -> Decision:
    """The next desired state of a canary Rollout.

    Args:
        rollout: the Rollout (``strategy.canary``).
        status: the status returned by the previous call (a new revision starts from
            ``RolloutStatus(current_hash=..., stable_hash=<previous>)``).
        replica_sets: observed revisions; ``name`` is the pod-template hash.
        runs: phases of the AnalysisRuns this function asked for, by name.
        now: the time of this decision.
        traffic_weight: the canary weight the data plane reports, if known; a setWeight
            step with a router completes only once it equals the step's weight.
    """
    strategy = rollout.canary
    by_hash = {r.name: r for r in replica_sets}
    work = _Work(status, [], [])
    if status.promote_full:
        work.status = replace(work.status, step_index=len(strategy.steps), pause_conditions=(), abort=False)
    current = work.status.current_hash
    new = by_hash.get(current) or Revision(current, max((r.revision for r in replica_sets), default=0) + 1, 0)
    if not work.status.stable_hash:
        work.status = replace(work.status, stable_hash=current)  # initial deploy: no steps
    stable_hash = work.status.stable_hash
    stable = by_hash.get(stable_hash) if stable_hash != current else None
    others = [r for r in replica_sets if r.name not in (current, stable_hash)]

    if stable_hash == current:
        return _steady(rollout, work, runs, new, [r for r in replica_sets if r.name != current], now)

    if not work.status.abort and not rollout.paused:
        _background(rollout, work, runs, now)
    canary_n, stable_n, weight = _desired(rollout, work.status, new, stable, others, traffic_weight)
    at_desired = _at_desired(rollout, new, stable, others, canary_n, stable_n)
    if not work.status.abort and not rollout.paused:
        for _ in range(len(strategy.steps) + 1):
            if work.status.abort or work.status.step_index >= len(strategy.steps):
                break
            weight_applied = traffic_weight is None or strategy.traffic_routing is None or traffic_weight == weight
            if not _step_done(rollout, work, runs, now, at_desired, weight_applied):
                break
            work.status = replace(
                work.status.without_pause(ro.PauseReason.CANARY_PAUSE_STEP),
                step_index=work.status.step_index + 1, step_run=None, controller_pause=False,
            )  # fmt: skip
            work.paused_until = None
            _background(rollout, work, runs, now)
            canary_n, stable_n, weight = _desired(rollout, work.status, new, stable, others, traffic_weight)
            at_desired = _at_desired(rollout, new, stable, others, canary_n, stable_n)

    if work.status.abort:
        return _aborted(rollout, work, runs, new, stable, others, now, traffic_weight)

    done_steps = work.status.step_index >= len(strategy.steps)
    if done_steps and not rollout.paused and new.available >= rollout.replicas:
        _stop_runs(work, runs)
        old_stable = stable_hash
        work.status = replace(
            work.status, stable_hash=current, step_index=len(strategy.steps), promote_full=False,
            pause_conditions=(), controller_pause=False,
        )  # fmt: skip
        if strategy.traffic_routing is not None and strategy.scale_down_delay > 0:
            work.status = work.status.with_deadline(old_stable, now + timedelta(seconds=strategy.scale_down_delay))
        return _steady(rollout, work, runs, new, [r for r in replica_sets if r.name != current], now)

    # Weight goes to the data plane only once the canary pods for it are available (trafficrouting.go).
    if strategy.traffic_routing is not None and not at_desired and not work.status.promote_full:
        weight = _previous_weight(rollout, work.status)
    waiting = bool(work.status.pause_conditions) or rollout.paused or at_desired
    mark = (work.status.step_index, new.replicas, new.available, stable.available if stable else 0)
    work.status, timed_out = ro.progress(rollout, work.status, mark, now, waiting)
    if timed_out and rollout.progress_deadline_abort:
        work.status = ro.abort(work.status, now, _deadline_reason(rollout, new))
        return _aborted(rollout, work, runs, new, stable, others, now, traffic_weight)

    plan = [(current, canary_n)]
    if stable is not None:
        plan.append((stable.name, stable_n))
    old_plan, old_wake = _scale_old(rollout, work, others, new, now)
    plan += old_plan
    if not work.status.pause_conditions:
        work.status = replace(work.status, controller_pause=False)
    phase, message = _phase(rollout, work.status, new, [*others, *([stable] if stable else [])], timed_out)
    deadline = None
    if not waiting and work.status.progress_at is not None:
        deadline = work.status.progress_at + timedelta(seconds=rollout.progress_deadline_seconds)
    return Decision(
        status=work.status,
        replicas=tuple(plan),
        canary_weight=weight,
        header_routes=_header_routes(rollout, work.status),
        start=tuple(work.start),
        stop=tuple(work.stop),
        phase=phase,
        message=message,
        paused_until=work.paused_until,
        wake_at=_earliest(work.paused_until, old_wake, deadline),
    )


def _deadline_reason(rollout: ro.Rollout, new: Revision) -> str:
    return f"progress deadline exceeded: revision {new.name} made no progress for {rollout.progress_deadline_seconds}s"


def _aborted(
    rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], new: Revision, stable: Revision | None,
    others: Sequence[Revision], now: datetime, traffic_weight: int | None,
) -> Decision:  # fmt: skip
    """Traffic back to stable at once; the canary is scaled down after abortScaleDownDelaySeconds (router) or
    rolled back under maxSurge/maxUnavailable (basic canary)."""
    strategy = rollout.canary
    _stop_runs(work, runs)
    work.status = replace(work.status, step_index=0, pause_conditions=(), controller_pause=False, promote_full=False)
    canary_n, stable_n, _ = _desired(rollout, work.status, new, stable, others, traffic_weight)
    wake: datetime | None = None
    if strategy.traffic_routing is not None:
        delay = strategy.abort_scale_down_delay
        aborted_at = work.status.aborted_at or now
        if delay is None:
            canary_n = new.replicas
        elif now < aborted_at + timedelta(seconds=delay):
            canary_n = max(canary_n, new.replicas)
            wake = aborted_at + timedelta(seconds=delay)
    plan = [(new.name, canary_n)]
    if stable is not None:
        plan.append((stable.name, stable_n))
    old_plan, old_wake = _scale_old(rollout, work, others, new, now)
    phase, message = _phase(rollout, work.status, new, others, False)
    return Decision(
        status=work.status,
        replicas=tuple(plan + old_plan),
        canary_weight=0,
        header_routes=(),
        start=(),
        stop=tuple(work.stop),
        phase=phase,
        message=message,
        wake_at=_earliest(wake, old_wake),
    )


def _steady(
    rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], new: Revision, olds: Sequence[Revision],
    now: datetime,
) -> Decision:  # fmt: skip
    """Fully promoted (or first deploy): the revision runs at full scale; older ones go away."""
    _stop_runs(work, runs)
    work.status = replace(
        work.status, step_index=len(rollout.canary.steps), pause_conditions=(), controller_pause=False
    )
    old_plan, wake = _scale_old(rollout, work, olds, new, now)
    mark = (new.replicas, new.available)
    waiting = new.available >= rollout.replicas
    work.status, timed_out = ro.progress(rollout, work.status, mark, now, waiting)
    phase, message = _phase(
        rollout, work.status, new, [r for r in olds if work.status.scale_down_deadline(r.name) is None], timed_out
    )
    return Decision(
        status=work.status,
        replicas=((new.name, rollout.replicas), *old_plan),
        canary_weight=0,
        header_routes=(),
        start=(),
        stop=tuple(work.stop),
        phase=phase,
        message=message,
        wake_at=wake,
    )
