"""The Argo Rollouts blue-green sequence as one pure function.

Same shape as :mod:`funade.core.canary`: :func:`decide` maps (Rollout, status, observed
ReplicaSets, AnalysisRun phases, now) to the next desired state. The sequence is Argo's
(``rollout/bluegreen.go``, ``rollout/analysis.go``): the preview revision is scaled to
``previewReplicaCount`` (or full), ``previewService`` selects it while ``activeService`` keeps
the old one; once it is available the prePromotionAnalysis runs; then the rollout pauses if
``autoPromotionEnabled`` is false (until promote) or ``autoPromotionSeconds`` is set (until
they pass); the preview is scaled to full, the active Service switches, postPromotionAnalysis
runs (failure switches the active Service back), and the previous revision is scaled down
``scaleDownDelaySeconds`` (30) after the switch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from funade.core import analysis
from funade.core import rollout as ro
from funade.core.rolling import Revision

__all__ = ["Decision", "decide"]

_BAD = (analysis.Phase.FAILED, analysis.Phase.ERROR)


@dataclass(frozen=True)
class Decision:
    """The next desired state of a blue-green Rollout.

    Attributes:
        status: the status to persist and pass to the next call.
        replicas: (pod-template hash, desired replicas) per revision.
        active_hash: the revision ``activeService`` must select.
        preview_hash: the revision ``previewService`` must select.
        start / stop: AnalysisRuns to create / terminate.
        phase, message: as ``GetRolloutPhase``.
        paused_until: when an ``autoPromotionSeconds`` pause ends.
        wake_at: when to decide again even if nothing is observed to change.
    """

    status: ro.RolloutStatus
    replicas: tuple[tuple[str, int], ...]
    active_hash: str
    preview_hash: str
    start: tuple[ro.AnalysisStart, ...]
    stop: tuple[str, ...]
    phase: ro.RolloutPhase
    message: str
    paused_until: datetime | None = None
    wake_at: datetime | None = None

    def replicas_of(self, revision: str) -> int | None:
        """Desired replicas of ``revision``, if the decision names it."""
        return next((n for h, n in self.replicas if h == revision), None)


@dataclass
class _Work:
    status: ro.RolloutStatus
    start: list[ro.AnalysisStart]
    stop: list[str]


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _run(
    rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], kind: str, spec: ro.RolloutAnalysis,
    now: datetime,
) -> analysis.Phase | None:  # fmt: skip
    """Start the ``pre``/``post`` run if needed and return its phase; Inconclusive pauses, Failed/Error aborts."""
    field_name = "pre_run" if kind == "pre" else "post_run"
    name: str | None = getattr(work.status, field_name)
    if work.status.pause(ro.PauseReason.INCONCLUSIVE_ANALYSIS) is not None:
        return analysis.Phase.INCONCLUSIVE
    seen = runs.get(name) if name is not None else None
    rerun = seen is not None and seen.phase is analysis.Phase.INCONCLUSIVE and work.status.controller_pause
    if name is None or rerun:
        status, new_name = work.status.next_run_name(rollout.name, kind)
        work.status = replace(status, pre_run=new_name) if kind == "pre" else replace(status, post_run=new_name)
        work.start.append(ro.AnalysisStart(new_name, kind, spec))
        return analysis.Phase.PENDING
    if seen is None:
        return analysis.Phase.PENDING
    if seen.phase is analysis.Phase.INCONCLUSIVE:
        work.status = work.status.with_pause(ro.PauseReason.INCONCLUSIVE_ANALYSIS, now)
    elif seen.phase in _BAD:
        detail = f": {seen.message}" if seen.message else ""
        work.status = ro.abort(work.status, now, f"{kind}-promotion analysis run {name} {seen.phase.value}{detail}")
    return seen.phase


def _stop(work: _Work, runs: Mapping[str, ro.RunStatus]) -> None:
    for name in (work.status.pre_run, work.status.post_run):
        if name is not None:
            seen = runs.get(name)
            if seen is None or not seen.phase.completed:
                work.stop.append(name)


def _scale_old(
    rollout: ro.Rollout, work: _Work, olds: Sequence[Revision], now: datetime
) -> tuple[list[tuple[str, int]], datetime | None]:
    """Revisions other than active and preview: kept until their scale-down deadline, then 0."""
    plan: list[tuple[str, int]] = []
    wake: datetime | None = None
    delay = rollout.blue_green.scale_down_delay
    for rs in olds:
        if rs.replicas == 0:
            continue
        deadline = work.status.scale_down_deadline(rs.name)
        if deadline is None and delay > 0:
            deadline = now + timedelta(seconds=delay)
            work.status = work.status.with_deadline(rs.name, deadline)
        if deadline is not None and now < deadline:
            wake = _earliest(wake, deadline)
            continue
        plan.append((rs.name, 0))
    return plan, wake


def _phase(
    rollout: ro.Rollout, status: ro.RolloutStatus, new: Revision, active: str, timed_out: bool
) -> tuple[ro.RolloutPhase, str]:
    """``CalculateRolloutPhase`` for blue-green."""
    if status.abort:
        return ro.RolloutPhase.DEGRADED, ro.aborted_message(status.abort_reason)
    if timed_out:
        return ro.RolloutPhase.DEGRADED, f'ProgressDeadlineExceeded: ReplicaSet "{new.name}" has timed out progressing.'
    if rollout.paused:
        return ro.RolloutPhase.PAUSED, "manually paused"
    if status.pause_conditions:
        return ro.RolloutPhase.PAUSED, status.pause_conditions[0].reason.value
    if new.pods < rollout.replicas:
        return ro.RolloutPhase.PROGRESSING, "more replicas need to be updated"
    if new.available < new.pods:
        return ro.RolloutPhase.PROGRESSING, "updated replicas are still becoming available"
    if active != status.current_hash:
        return ro.RolloutPhase.PROGRESSING, "active service cutover pending"
    if status.stable_hash != status.current_hash:
        return ro.RolloutPhase.PROGRESSING, "waiting for analysis to complete"
    return ro.RolloutPhase.HEALTHY, ""


def decide(
    rollout: ro.Rollout,
    status: ro.RolloutStatus,
    replica_sets: Sequence[Revision],
    runs: Mapping[str, ro.RunStatus],
    now: datetime,
) -> Decision:
    """The next desired state of a blue-green Rollout (arguments as :func:`funade.core.canary.decide`)."""
    bg = rollout.blue_green
    replicas = rollout.replicas
    by_hash = {r.name: r for r in replica_sets}
    work = _Work(status, [], [])
    current = status.current_hash
    new = by_hash.get(current) or Revision(current, max((r.revision for r in replica_sets), default=0) + 1, 0)
    if work.status.promote_full:
        work.status = replace(work.status, pause_conditions=(), abort=False)
    if not work.status.stable_hash:
        work.status = replace(work.status, stable_hash=current, active_hash=current)  # initial deploy: fast-tracked
    stable_hash = work.status.stable_hash
    active = work.status.active_hash or stable_hash
    olds = [r for r in replica_sets if r.name not in (current, stable_hash)]

    if stable_hash == current:
        _stop(work, runs)
        work.status = replace(
            work.status,
            active_hash=current,
            preview_hash=current,
            pre_run=None,
            post_run=None,
            pause_conditions=(),
            controller_pause=False,
            preview_checkpoint=False,
            promote_full=False,
        )
        old_plan, wake = _scale_old(rollout, work, [r for r in replica_sets if r.name != current], now)
        work.status, timed_out = ro.progress(
            rollout, work.status, (new.replicas, new.available), now, new.available >= replicas
        )
        phase, message = _phase(rollout, work.status, new, current, timed_out)
        return Decision(work.status, ((current, replicas), *old_plan), current, current, (), tuple(work.stop),
                        phase, message, None, wake)  # fmt: skip

    stable_plan = [(stable_hash, replicas)]
    if work.status.abort:
        return _aborted(rollout, work, runs, new, stable_plan, olds, now)

    full = work.status.preview_checkpoint or work.status.promote_full or bg.preview_replica_count is None
    target = replicas if full else (bg.preview_replica_count or 0)
    ready = new.replicas == target and new.available >= target
    paused_until: datetime | None = None
    if active != current and ready and not rollout.paused:
        pre_done = bg.pre_promotion_analysis is None or work.status.promote_full
        if not pre_done and bg.pre_promotion_analysis is not None:
            pre_done = _run(rollout, work, runs, "pre", bg.pre_promotion_analysis, now) is analysis.Phase.SUCCESSFUL
        pause_done = True
        needs_pause = not bg.auto_promotion_enabled or bg.auto_promotion_seconds > 0
        if pre_done and needs_pause and not work.status.promote_full and not work.status.preview_checkpoint:
            cond = work.status.pause(ro.PauseReason.BLUE_GREEN_PAUSE)
            if cond is None and not work.status.controller_pause:
                work.status = work.status.with_pause(ro.PauseReason.BLUE_GREEN_PAUSE, now)
                cond = work.status.pause(ro.PauseReason.BLUE_GREEN_PAUSE)
            if cond is not None:
                pause_done = False
                if bg.auto_promotion_enabled and bg.auto_promotion_seconds > 0:
                    until = cond.started_at + timedelta(seconds=bg.auto_promotion_seconds)
                    if now >= until:
                        work.status = work.status.without_pause(ro.PauseReason.BLUE_GREEN_PAUSE)
                        pause_done = True
                    else:
                        paused_until = until
        if work.status.abort:
            return _aborted(rollout, work, runs, new, stable_plan, olds, now)
        if pre_done and pause_done:
            if not full:
                work.status = replace(work.status, preview_checkpoint=True)
                target = replicas
            elif new.available >= replicas:
                active = current
                work.status = replace(work.status, active_hash=current, pause_conditions=(), controller_pause=False)

    if active == current and not rollout.paused:
        post_done = bg.post_promotion_analysis is None or work.status.promote_full
        if not post_done and bg.post_promotion_analysis is not None:
            post_done = _run(rollout, work, runs, "post", bg.post_promotion_analysis, now) is analysis.Phase.SUCCESSFUL
        if work.status.abort:
            return _aborted(rollout, work, runs, new, stable_plan, olds, now)
        if post_done:
            work.status = replace(work.status, stable_hash=current, preview_checkpoint=False, promote_full=False)
            after = decide(rollout, work.status, replica_sets, runs, now)
            stop = tuple(dict.fromkeys((*work.stop, *after.stop)))
            return replace(after, start=(*work.start, *after.start), stop=stop)

    waiting = bool(work.status.pause_conditions) or rollout.paused or ready
    mark = (new.replicas, new.available, int(active == current))
    work.status, timed_out = ro.progress(rollout, work.status, mark, now, waiting)
    if timed_out and rollout.progress_deadline_abort:
        reason = (
            f"progress deadline exceeded: revision {new.name} made no progress for {rollout.progress_deadline_seconds}s"
        )
        work.status = ro.abort(work.status, now, reason)
        return _aborted(rollout, work, runs, new, stable_plan, olds, now)
    old_plan, wake = _scale_old(rollout, work, olds, now)
    if not work.status.pause_conditions:
        work.status = replace(work.status, controller_pause=False)
    work.status = replace(work.status, active_hash=active, preview_hash=current)
    phase, message = _phase(rollout, work.status, new, active, timed_out)
    deadline = (
        None
        if waiting or work.status.progress_at is None
        else (work.status.progress_at + timedelta(seconds=rollout.progress_deadline_seconds))
    )
    return Decision(
        work.status, ((current, target), *stable_plan, *old_plan), active, current, tuple(work.start), tuple(work.stop),
        phase, message, paused_until, _earliest(paused_until, wake, deadline),
    )  # fmt: skip


def _aborted(
    rollout: ro.Rollout, work: _Work, runs: Mapping[str, ro.RunStatus], new: Revision,
    stable_plan: list[tuple[str, int]], olds: Sequence[Revision], now: datetime,
) -> Decision:  # fmt: skip
    """Active Service back on the stable revision at once; preview scaled down after abortScaleDownDelaySeconds."""
    bg = rollout.blue_green
    _stop(work, runs)
    stable_hash = work.status.stable_hash
    work.status = replace(work.status, active_hash=stable_hash, preview_hash=new.name, pause_conditions=(),
                          controller_pause=False, preview_checkpoint=False, promote_full=False)  # fmt: skip
    delay = bg.abort_scale_down_delay
    aborted_at = work.status.aborted_at or now
    wake: datetime | None = None
    new_n = new.replicas
    if delay is not None:
        if now >= aborted_at + timedelta(seconds=delay):
            new_n = 0
        else:
            wake = aborted_at + timedelta(seconds=delay)
    old_plan, old_wake = _scale_old(rollout, work, olds, now)
    phase, message = _phase(rollout, work.status, new, stable_hash, False)
    return Decision(
        work.status, ((new.name, new_n), *stable_plan, *old_plan), stable_hash, new.name, tuple(work.start),
        tuple(work.stop), phase, message, None, _earliest(wake, old_wake),
    )  # fmt: skip
