"""Argo Rollouts ``Rollout`` as typed data, the status the engine keeps between syncs, and the operations.

The canary and blue-green step machines (:mod:`funade.core.canary`, :mod:`funade.core.bluegreen`)
are pure functions of a :class:`Rollout`, a :class:`RolloutStatus`, the observed ReplicaSets
(:class:`funade.core.rolling.Revision`, keyed by pod-template hash in ``name``), the phases of
the analysis runs they asked for, and ``now``. This module holds what both share: the model
read from YAML with Argo's defaults and field-naming errors, the status, the phase rules of
Argo's ``CalculateRolloutPhase``, and the user operations (promote, promote --full, abort,
retry, undo) as status rewrites the way ``kubectl argo rollouts`` patches them.

Where funade departs from Argo it says so. An aborted rollout says plainly
``aborted: running the stable revision, reason …`` (issue 7) instead of Argo's
``RolloutAborted: Rollout aborted update to revision N``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from funade.core import analysis, fields, intstr, merge

__all__ = [
    "ABORTED_PREFIX",
    "DEFAULT_ABORT_SCALE_DOWN_DELAY",
    "DEFAULT_PROGRESS_DEADLINE",
    "DEFAULT_SCALE_DOWN_DELAY",
    "MANAGED_BY_ANNOTATION",
    "POD_HASH_LABEL",
    "AnalysisStart",
    "AnalysisStep",
    "BlueGreenStrategy",
    "CanaryStrategy",
    "HeaderMatch",
    "HeaderRoute",
    "IstioRouting",
    "NginxRouting",
    "PauseCondition",
    "PauseReason",
    "PauseStep",
    "Rollout",
    "RolloutAnalysis",
    "RolloutArg",
    "RolloutError",
    "RolloutPhase",
    "RolloutStatus",
    "RunStatus",
    "SetCanaryScale",
    "SetHeaderRoute",
    "SetWeight",
    "Step",
    "TemplateRef",
    "TrafficRouting",
    "WorkloadRef",
    "abort",
    "aborted_message",
    "parse",
    "parse_duration_seconds",
    "pod_template",
    "progress",
    "promote",
    "retry",
    "status_from_dict",
    "status_to_dict",
    "undo",
    "weight_to_replicas",
]

DEFAULT_PROGRESS_DEADLINE = 600
"""``progressDeadlineSeconds`` when unset (``utils/defaults``)."""
DEFAULT_SCALE_DOWN_DELAY = 30
"""``scaleDownDelaySeconds`` when unset: blue-green, and canary with trafficRouting (``utils/defaults``)."""
DEFAULT_ABORT_SCALE_DOWN_DELAY = 30
"""``abortScaleDownDelaySeconds`` when unset; 0 means never scale the aborted revision down."""
POD_HASH_LABEL = merge.POD_HASH_LABEL
MANAGED_BY_ANNOTATION = merge.MANAGED_BY_ANNOTATION
ABORTED_PREFIX = "aborted: running the stable revision, reason "
"""The phase message of an aborted rollout (issue 7's wording)."""

_API_VERSION = "argoproj.io/v1alpha1"
_SECONDS = re.compile(r"^[0-9]+$")
_WORKLOAD_SCALE_DOWN = ("never", "onsuccess", "progressively")
_REFUSED_STEPS = {
    "setMirrorRoute": "mirroring is not supported by funade's data plane",
    "experiment": "experiments are not supported",
    "plugin": "step plugins are not supported",
}
_SUPPORTED_ROUTERS = ("nginx", "istio")
_KNOWN_ROUTERS = ("alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins", "gatewayAPI")


class RolloutError(ValueError):
    """A Rollout Argo would refuse, or one funade cannot run; the message starts with the field path."""


_f = fields.Fields(RolloutError)
_mapping, _opt_mapping, _list, _str = _f.mapping, _f.opt_mapping, _f.items, _f.text


class RolloutPhase(enum.Enum):
    """``RolloutPhase`` as ``GetRolloutPhase`` reports it."""

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class PauseReason(enum.Enum):
    """``PauseReason``: why the controller paused the rollout."""

    CANARY_PAUSE_STEP = "CanaryPauseStep"
    INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysisRun"
    BLUE_GREEN_PAUSE = "BlueGreenPause"


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TemplateRef:
    """``templates[]``: an AnalysisTemplate (or ClusterAnalysisTemplate) by name."""

    template_name: str
    cluster_scope: bool = False


@dataclass(frozen=True)
class RolloutArg:
    """``args[]``: a literal value, or ``valueFrom`` (fieldRef / podTemplateHashValue) kept as data."""

    name: str
    value: str | None = None
    value_from: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RolloutAnalysis:
    """``RolloutAnalysis``: templates and args for one AnalysisRun; ``starting_step`` for background analysis."""

    templates: tuple[TemplateRef, ...]
    args: tuple[RolloutArg, ...] = ()
    starting_step: int | None = None


@dataclass(frozen=True)
class SetWeight:
    """``setWeight``: percent of traffic for the canary."""

    weight: int


@dataclass(frozen=True)
class PauseStep:
    """``pause``: ``duration`` in seconds, or None to wait for promote."""

    duration: int | None = None


@dataclass(frozen=True)
class AnalysisStep:
    """``analysis``: a blocking AnalysisRun."""

    analysis: RolloutAnalysis


@dataclass(frozen=True)
class SetCanaryScale:
    """``setCanaryScale``: exactly one of ``weight``, ``replicas`` or ``match_traffic_weight``."""

    weight: int | None = None
    replicas: int | None = None
    match_traffic_weight: bool = False


@dataclass(frozen=True)
class HeaderMatch:
    """``setHeaderRoute.match[]``: header name and one of exact / prefix / regex."""

    header_name: str
    kind: str
    value: str


@dataclass(frozen=True)
class SetHeaderRoute:
    """``setHeaderRoute``: route requests matching headers to the canary; no match removes the route."""

    name: str
    match: tuple[HeaderMatch, ...] = ()


Step = SetWeight | PauseStep | AnalysisStep | SetCanaryScale | SetHeaderRoute


@dataclass(frozen=True)
class NginxRouting:
    """``trafficRouting.nginx``: kept as data; funade's own data plane carries the weights."""

    stable_ingress: str | None = None
    stable_ingresses: tuple[str, ...] = ()
    annotation_prefix: str = "nginx.ingress.kubernetes.io"


@dataclass(frozen=True)
class IstioRouting:
    """``trafficRouting.istio``: VirtualService routes and the optional DestinationRule subsets."""

    virtual_service: str | None = None
    routes: tuple[str, ...] = ()
    destination_rule: str | None = None
    canary_subset: str | None = None
    stable_subset: str | None = None


@dataclass(frozen=True)
class TrafficRouting:
    """``trafficRouting``: the router (nginx or istio) and ``managedRoutes`` names."""

    nginx: NginxRouting | None = None
    istio: IstioRouting | None = None
    managed_routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CanaryStrategy:
    """``strategy.canary`` with Argo's defaults (delays None mean "default", see the properties)."""

    steps: tuple[Step, ...] = ()
    canary_service: str | None = None
    stable_service: str | None = None
    traffic_routing: TrafficRouting | None = None
    max_surge: intstr.IntOrString = "25%"
    max_unavailable: intstr.IntOrString = "25%"
    analysis: RolloutAnalysis | None = None
    dynamic_stable_scale: bool = False
    scale_down_delay_seconds: int | None = None
    abort_scale_down_delay_seconds: int | None = None

    @property
    def scale_down_delay(self) -> int:
        """Seconds the old stable stays up after promotion (trafficRouting only; dynamicStableScale: 0)."""
        if self.traffic_routing is None or self.dynamic_stable_scale:
            return 0
        return DEFAULT_SCALE_DOWN_DELAY if self.scale_down_delay_seconds is None else self.scale_down_delay_seconds

    @property
    def abort_scale_down_delay(self) -> int | None:
        """Seconds before an aborted canary is scaled down; None: never (``abortScaleDownDelaySeconds: 0``)."""
        if self.abort_scale_down_delay_seconds is None:
            return DEFAULT_ABORT_SCALE_DOWN_DELAY
        return None if self.abort_scale_down_delay_seconds == 0 else self.abort_scale_down_delay_seconds


@dataclass(frozen=True)
class BlueGreenStrategy:
    """``strategy.blueGreen`` with Argo's defaults."""

    active_service: str
    preview_service: str | None = None
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int = 0
    preview_replica_count: int | None = None
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    scale_down_delay_seconds: int | None = None
    abort_scale_down_delay_seconds: int | None = None

    @property
    def scale_down_delay(self) -> int:
        """Seconds the previous active revision stays up after the switch (default 30)."""
        return DEFAULT_SCALE_DOWN_DELAY if self.scale_down_delay_seconds is None else self.scale_down_delay_seconds

    @property
    def abort_scale_down_delay(self) -> int | None:
        """Seconds before an aborted preview is scaled down; None: never."""
        if self.abort_scale_down_delay_seconds is None:
            return DEFAULT_ABORT_SCALE_DOWN_DELAY
        return None if self.abort_scale_down_delay_seconds == 0 else self.abort_scale_down_delay_seconds


@dataclass(frozen=True)
class WorkloadRef:
    """``workloadRef``: the Deployment whose template the Rollout runs; ``scale_down`` kept as data."""

    kind: str
    name: str
    api_version: str = "apps/v1"
    scale_down: str = "never"


@dataclass(frozen=True, eq=False)
class Rollout:
    """An ``argoproj.io/v1alpha1`` Rollout with defaults applied."""

    name: str
    namespace: str
    replicas: int
    selector: Mapping[str, str]
    strategy: CanaryStrategy | BlueGreenStrategy
    template: Mapping[str, object] | None = None
    workload_ref: WorkloadRef | None = None
    min_ready_seconds: int = 0
    revision_history_limit: int = 10
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE
    progress_deadline_abort: bool = False
    paused: bool = False
    successful_run_history_limit: int = 5
    unsuccessful_run_history_limit: int = 5
    warnings: tuple[str, ...] = ()

    @property
    def canary(self) -> CanaryStrategy:
        """The canary strategy; raises RolloutError for a blue-green Rollout."""
        if not isinstance(self.strategy, CanaryStrategy):
            raise RolloutError("spec.strategy.canary: this Rollout uses blueGreen")
        return self.strategy

    @property
    def blue_green(self) -> BlueGreenStrategy:
        """The blue-green strategy; raises RolloutError for a canary Rollout."""
        if not isinstance(self.strategy, BlueGreenStrategy):
            raise RolloutError("spec.strategy.blueGreen: this Rollout uses canary")
        return self.strategy


# ---------------------------------------------------------------------------- status and decisions


@dataclass(frozen=True)
class PauseCondition:
    """``status.pauseConditions[]``: why and since when the controller paused."""

    reason: PauseReason
    started_at: datetime


@dataclass(frozen=True)
class RunStatus:
    """What the engine observed of one AnalysisRun: its phase and message."""

    phase: analysis.Phase
    message: str = ""


@dataclass(frozen=True)
class AnalysisStart:
    """Create an AnalysisRun: its name, what it is for (``step``, ``background``, ``pre``, ``post``) and the spec."""

    name: str
    kind: str
    analysis: RolloutAnalysis


@dataclass(frozen=True)
class HeaderRoute:
    """A header route the data plane must send to the canary."""

    name: str
    match: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class RolloutStatus:
    """The controller-owned state of one Rollout, persisted by the engine between decisions.

    Attributes:
        current_hash: pod-template hash of ``spec.template`` (the desired revision).
        stable_hash: the revision that is fully promoted; empty before the first deploy.
        step_index: canary ``currentStepIndex``.
        pause_conditions: ``status.pauseConditions``.
        controller_pause: the controller paused at least once for the current step (``controllerPause``).
        abort: ``status.abort``; ``aborted_at`` and ``abort_reason`` say when and why.
        promote_full: ``status.promoteFull`` (``promote --full``).
        step_run / background_run / pre_run / post_run: names of the current AnalysisRuns.
        run_seq: a counter that keeps AnalysisRun names unique across retries.
        active_hash / preview_hash: blue-green Service selectors.
        preview_checkpoint: blue-green ``scaleUpPreviewCheckPoint``.
        scale_down_at: (hash, deadline) for revisions kept up after promotion or abort.
        progress_at / progress_mark: when observable progress last happened, and what it looked like.
    """

    current_hash: str
    stable_hash: str = ""
    step_index: int = 0
    pause_conditions: tuple[PauseCondition, ...] = ()
    controller_pause: bool = False
    abort: bool = False
    aborted_at: datetime | None = None
    abort_reason: str = ""
    promote_full: bool = False
    step_run: str | None = None
    background_run: str | None = None
    pre_run: str | None = None
    post_run: str | None = None
    run_seq: int = 0
    active_hash: str = ""
    preview_hash: str = ""
    preview_checkpoint: bool = False
    scale_down_at: tuple[tuple[str, datetime], ...] = ()
    progress_at: datetime | None = None
    progress_mark: tuple[int, ...] = ()

    def pause(self, reason: PauseReason) -> PauseCondition | None:
        """The pause condition for ``reason``, if present."""
        return next((c for c in self.pause_conditions if c.reason is reason), None)

    def with_pause(self, reason: PauseReason, now: datetime) -> RolloutStatus:
        """``AddPauseCondition``: add it (once) and set ``controllerPause``."""
        if self.pause(reason) is not None:
            return self
        return replace(
            self, pause_conditions=(*self.pause_conditions, PauseCondition(reason, now)), controller_pause=True
        )

    def without_pause(self, reason: PauseReason) -> RolloutStatus:
        """``RemovePauseCondition``."""
        return replace(self, pause_conditions=tuple(c for c in self.pause_conditions if c.reason is not reason))

    def scale_down_deadline(self, revision: str) -> datetime | None:
        """When ``revision`` may be scaled down, if a deadline was set."""
        return next((at for h, at in self.scale_down_at if h == revision), None)

    def with_deadline(self, revision: str, at: datetime) -> RolloutStatus:
        """Set a scale-down deadline for ``revision`` unless one is set already."""
        if self.scale_down_deadline(revision) is not None:
            return self
        return replace(self, scale_down_at=(*self.scale_down_at, (revision, at)))

    def next_run_name(self, rollout: str, kind: str) -> tuple[RolloutStatus, str]:
        """A unique AnalysisRun name for ``kind`` of the current revision."""
        seq = self.run_seq + 1
        return replace(self, run_seq=seq), f"{rollout}-{self.current_hash}-{seq}-{kind}"


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def status_to_dict(status: RolloutStatus) -> dict[str, object]:
    """The status as JSON-able data, for the engine to persist (read back with :func:`status_from_dict`)."""
    return {
        "currentHash": status.current_hash,
        "stableHash": status.stable_hash,
        "stepIndex": status.step_index,
        "pauseConditions": [
            {"reason": c.reason.value, "startTime": c.started_at.isoformat()} for c in status.pause_conditions
        ],
        "controllerPause": status.controller_pause,
        "abort": status.abort,
        "abortedAt": status.aborted_at.isoformat() if status.aborted_at else None,
        "abortReason": status.abort_reason,
        "promoteFull": status.promote_full,
        "stepRun": status.step_run,
        "backgroundRun": status.background_run,
        "preRun": status.pre_run,
        "postRun": status.post_run,
        "runSeq": status.run_seq,
        "activeHash": status.active_hash,
        "previewHash": status.preview_hash,
        "previewCheckpoint": status.preview_checkpoint,
        "scaleDownAt": [[h, at.isoformat()] for h, at in status.scale_down_at],
        "progressAt": status.progress_at.isoformat() if status.progress_at else None,
        "progressMark": list(status.progress_mark),
    }


def status_from_dict(raw: Mapping[str, object]) -> RolloutStatus:
    """Read what :func:`status_to_dict` wrote; fields it lacks take their defaults."""

    def opt(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    def int_of(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else 0

    pauses = []
    for item in raw.get("pauseConditions") or []:  # type: ignore[attr-defined]
        started = _time(item.get("startTime"))
        if started is not None:
            pauses.append(PauseCondition(PauseReason(item["reason"]), started))
    deadlines = []
    for revision, at in raw.get("scaleDownAt") or []:  # type: ignore[attr-defined]
        when = _time(at)
        if when is not None:
            deadlines.append((str(revision), when))
    return RolloutStatus(
        current_hash=opt("currentHash") or "",
        stable_hash=opt("stableHash") or "",
        step_index=int_of("stepIndex"),
        pause_conditions=tuple(pauses),
        controller_pause=bool(raw.get("controllerPause")),
        abort=bool(raw.get("abort")),
        aborted_at=_time(raw.get("abortedAt")),
        abort_reason=opt("abortReason") or "",
        promote_full=bool(raw.get("promoteFull")),
        step_run=opt("stepRun"),
        background_run=opt("backgroundRun"),
        pre_run=opt("preRun"),
        post_run=opt("postRun"),
        run_seq=int_of("runSeq"),
        active_hash=opt("activeHash") or "",
        preview_hash=opt("previewHash") or "",
        preview_checkpoint=bool(raw.get("previewCheckpoint")),
        scale_down_at=tuple(deadlines),
        progress_at=_time(raw.get("progressAt")),
        progress_mark=tuple(int(v) for v in raw.get("progressMark") or []),  # type: ignore[attr-defined]
    )


def aborted_message(reason: str) -> str:
    """The Degraded message of an aborted rollout."""
    return ABORTED_PREFIX + (reason or "aborted by user")


# ---------------------------------------------------------------------------- operations


def promote(
    rollout: Rollout, status: RolloutStatus, *, full: bool = False, runs: Mapping[str, RunStatus] | None = None
) -> RolloutStatus:
    """``kubectl argo rollouts promote [--full]`` as a status rewrite (``pkg/kubectl-argo-rollouts/cmd/promote``).

    Without ``full``: after an Inconclusive analysis pause, clear the pauses and move to the
    next step; with other pause conditions, clear them (a pause step then counts as done);
    otherwise skip the current canary step. ``full`` skips every remaining step, pause and
    analysis (``status.promoteFull``). ``spec.paused`` is the user's to clear, not ours.
    """
    if full:
        if status.current_hash == status.stable_hash:
            return status
        return replace(status, promote_full=True)
    canary = isinstance(rollout.strategy, CanaryStrategy)
    steps = len(rollout.strategy.steps) if isinstance(rollout.strategy, CanaryStrategy) else 0
    inconclusive = status.pause(PauseReason.INCONCLUSIVE_ANALYSIS) is not None
    if canary and inconclusive and status.controller_pause and _step_run_inconclusive(status, runs):
        index = min(status.step_index + 1, steps)
        return replace(status, pause_conditions=(), controller_pause=False, step_index=index, step_run=None)
    if status.pause_conditions:
        return replace(status, pause_conditions=())
    if canary and status.step_index < steps:
        return replace(status, step_index=status.step_index + 1, step_run=None, controller_pause=False)
    return status


def _step_run_inconclusive(status: RolloutStatus, runs: Mapping[str, RunStatus] | None) -> bool:
    """Whether the Inconclusive pause came from the step run (advance) rather than the background run (re-run)."""
    if status.step_run is None:
        return False
    if runs is None:
        return True
    seen = runs.get(status.step_run)
    return seen is not None and seen.phase is analysis.Phase.INCONCLUSIVE


def abort(status: RolloutStatus, now: datetime, reason: str = "") -> RolloutStatus:
    """``kubectl argo rollouts abort``: stop progressing and return to the stable revision."""
    if status.abort or status.current_hash == status.stable_hash:
        return status
    return replace(status, abort=True, aborted_at=now, abort_reason=reason or "aborted by user", pause_conditions=())


def retry(status: RolloutStatus, now: datetime) -> RolloutStatus:
    """``kubectl argo rollouts retry``: clear the abort and start the same revision over from step 0."""
    if not status.abort:
        return status
    return replace(
        status, abort=False, aborted_at=None, abort_reason="", step_index=0, pause_conditions=(),
        controller_pause=False, step_run=None, background_run=None, pre_run=None, post_run=None,
        progress_at=now, progress_mark=(), scale_down_at=(), preview_checkpoint=False,
    )  # fmt: skip


def undo(
    history: Sequence[tuple[int, Mapping[str, object]]], current: int, to_revision: int | None = None
) -> Mapping[str, object]:
    """``kubectl argo rollouts undo``: the pod template to apply, taken from an earlier revision.

    Applying it makes a new revision (the engine bumps the revision number); as in Argo,
    rolling back to the stable revision skips the steps.

    Args:
        history: (revision number, pod template) of the revisions still kept.
        current: the current revision number.
        to_revision: the revision to go back to; default the one before ``current``.

    Raises:
        RolloutError: no such revision.
    """
    by_number = dict(history)
    if to_revision is None:
        older = sorted(n for n in by_number if n < current)
        if not older:
            raise RolloutError(f"undo: no revision before {current}")
        to_revision = older[-1]
    if to_revision not in by_number:
        raise RolloutError(f"undo: revision {to_revision} not found (kept: {sorted(by_number)})")
    return by_number[to_revision]


# ---------------------------------------------------------------------------- parsing


def parse_duration_seconds(value: object, where: str) -> int:
    """A pause duration: an int, digits (seconds), or Go syntax (``30s``, ``5m``, ``1h``), truncated to seconds."""
    if isinstance(value, bool):
        raise RolloutError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise RolloutError(f"{where}: duration must not be negative")
        return value
    if isinstance(value, str):
        if _SECONDS.fullmatch(value):
            return int(value)
        try:
            return int(analysis.parse_duration(value, where).total_seconds())
        except analysis.AnalysisError as exc:
            raise RolloutError(str(exc)) from None
    raise RolloutError(f"{where}: expected a duration such as 30s, 5m, 1h or seconds, got {type(value).__name__}")


def _opt_str(raw: Mapping[str, object], key: str, where: str) -> str | None:
    value = raw.get(key)
    return None if value is None else _str(value, f"{where}.{key}")


def _int(value: object, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RolloutError(f"{where}: expected an integer, got {value!r}")
    if value < minimum:
        raise RolloutError(f"{where}: must be >= {minimum}, got {value}")
    return value


def _opt_int(raw: Mapping[str, object], key: str, where: str, *, minimum: int = 0) -> int | None:
    value = raw.get(key)
    return None if value is None else _int(value, f"{where}.{key}", minimum=minimum)


def _bool(raw: Mapping[str, object], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise RolloutError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _intstr(raw: Mapping[str, object], key: str, where: str, default: intstr.IntOrString) -> intstr.IntOrString:
    value = raw.get(key, default)
    try:
        return intstr.validate(value)
    except ValueError as exc:
        raise RolloutError(f"{where}.{key}: {exc}") from None


def _parse_analysis(raw: object, where: str, *, background: bool = False) -> RolloutAnalysis:
    body = _mapping(raw, where)
    templates: list[TemplateRef] = []
    for i, item in enumerate(_list(body.get("templates"), f"{where}.templates")):
        at = f"{where}.templates[{i}]"
        ref = _mapping(item, at)
        templates.append(
            TemplateRef(_str(ref.get("templateName"), f"{at}.templateName"), _bool(ref, "clusterScope", at, False))
        )
    if not templates:
        raise RolloutError(f"{where}.templates: at least one template is required")
    args: list[RolloutArg] = []
    for i, item in enumerate(_list(body.get("args"), f"{where}.args")):
        at = f"{where}.args[{i}]"
        arg = _mapping(item, at)
        name = _str(arg.get("name"), f"{at}.name")
        value_from = _opt_mapping(arg, "valueFrom", at)
        value = arg.get("value")
        if value is None and value_from is None:
            raise RolloutError(f"{at}: one of value or valueFrom is required")
        flat: list[tuple[str, str]] = []
        if value_from is not None:
            for key, sub in value_from.items():
                flat.append((key, str(sub.get("fieldPath", "")) if isinstance(sub, Mapping) else str(sub)))
        args.append(RolloutArg(name, None if value is None else str(value), tuple(flat)))
    starting = _opt_int(body, "startingStep", where) if background else None
    return RolloutAnalysis(tuple(templates), tuple(args), starting)


def _parse_step(raw: object, where: str, routing: TrafficRouting | None) -> Step:
    body = _mapping(raw, where)
    keys = [k for k, v in body.items() if v is not None]
    for key in keys:
        if key in _REFUSED_STEPS:
            raise RolloutError(f"{where}.{key}: {_REFUSED_STEPS[key]}")
    if len(keys) != 1:
        raise RolloutError(
            f"{where}: a step must have exactly one of setWeight, pause, analysis, setCanaryScale, setHeaderRoute"
        )
    key = keys[0]
    at = f"{where}.{key}"
    value = body[key]
    if key == "setWeight":
        weight = _int(value, at)
        if weight > 100:
            raise RolloutError(f"{at}: must be between 0 and 100, got {weight}")
        return SetWeight(weight)
    if key == "pause":
        pause = _mapping(value, at)
        duration = pause.get("duration")
        return PauseStep(None if duration is None else parse_duration_seconds(duration, f"{at}.duration"))
    if key == "analysis":
        return AnalysisStep(_parse_analysis(value, at))
    if key == "setCanaryScale":
        if routing is None:
            raise RolloutError(f"{at}: needs spec.strategy.canary.trafficRouting (as in Argo)")
        scale = _mapping(value, at)
        chosen = [k for k in ("weight", "replicas", "matchTrafficWeight") if scale.get(k) is not None]
        if len(chosen) != 1:
            raise RolloutError(f"{at}: exactly one of weight, replicas, matchTrafficWeight is required")
        scale_weight = _opt_int(scale, "weight", at)
        if scale_weight is not None and scale_weight > 100:
            raise RolloutError(f"{at}.weight: must be between 0 and 100, got {scale_weight}")
        return SetCanaryScale(
            scale_weight, _opt_int(scale, "replicas", at), _bool(scale, "matchTrafficWeight", at, False)
        )
    if key == "setHeaderRoute":
        route = _mapping(value, at)
        name = _str(route.get("name"), f"{at}.name")
        if routing is None or name not in routing.managed_routes:
            raise RolloutError(
                f"{at}.name: {name!r} must be listed in spec.strategy.canary.trafficRouting.managedRoutes"
            )
        matches: list[HeaderMatch] = []
        for i, item in enumerate(_list(route.get("match"), f"{at}.match")):
            m_at = f"{at}.match[{i}]"
            m = _mapping(item, m_at)
            header_value = _mapping(m.get("headerValue"), f"{m_at}.headerValue")
            kinds = [k for k in ("exact", "prefix", "regex") if header_value.get(k) is not None]
            if len(kinds) != 1:
                raise RolloutError(f"{m_at}.headerValue: exactly one of exact, prefix, regex is required")
            matches.append(
                HeaderMatch(_str(m.get("headerName"), f"{m_at}.headerName"), kinds[0], str(header_value[kinds[0]]))
            )
        return SetHeaderRoute(name, tuple(matches))
    raise RolloutError(f"{at}: unknown step")


def _parse_routing(raw: Mapping[str, object], where: str) -> TrafficRouting:
    for key in raw:
        if key in _KNOWN_ROUTERS:
            raise RolloutError(
                f"{where}.{key}: not supported; funade serves nginx and istio routing with its own data plane"
            )
    routers = [k for k in _SUPPORTED_ROUTERS if raw.get(k) is not None]
    if len(routers) != 1:
        raise RolloutError(f"{where}: exactly one of nginx or istio is required")
    managed: list[str] = []
    for i, item in enumerate(_list(raw.get("managedRoutes"), f"{where}.managedRoutes")):
        managed.append(
            _str(_mapping(item, f"{where}.managedRoutes[{i}]").get("name"), f"{where}.managedRoutes[{i}].name")
        )
    if routers[0] == "nginx":
        at = f"{where}.nginx"
        body = _mapping(raw["nginx"], at)
        single = _opt_str(body, "stableIngress", at)
        many = tuple(
            _str(v, f"{at}.stableIngresses[{i}]") for i, v in enumerate(_list(body.get("stableIngresses"), at))
        )
        if single is None and not many:
            raise RolloutError(f"{at}.stableIngress: required (or stableIngresses)")
        prefix = _opt_str(body, "annotationPrefix", at) or "nginx.ingress.kubernetes.io"
        return TrafficRouting(nginx=NginxRouting(single, many, prefix), managed_routes=tuple(managed))
    at = f"{where}.istio"
    body = _mapping(raw["istio"], at)
    vs = _opt_mapping(body, "virtualService", at)
    if vs is None:
        if body.get("virtualServices") is not None:
            raise RolloutError(f"{at}.virtualServices: several VirtualServices are not supported; use virtualService")
        raise RolloutError(f"{at}.virtualService: required")
    routes = tuple(_str(r, f"{at}.virtualService.routes[{i}]") for i, r in enumerate(_list(vs.get("routes"), at)))
    dr = _opt_mapping(body, "destinationRule", at)
    istio = IstioRouting(
        virtual_service=_str(vs.get("name"), f"{at}.virtualService.name"),
        routes=routes,
        destination_rule=None if dr is None else _str(dr.get("name"), f"{at}.destinationRule.name"),
        canary_subset=None
        if dr is None
        else _str(dr.get("canarySubsetName"), f"{at}.destinationRule.canarySubsetName"),
        stable_subset=None
        if dr is None
        else _str(dr.get("stableSubsetName"), f"{at}.destinationRule.stableSubsetName"),
    )
    return TrafficRouting(istio=istio, managed_routes=tuple(managed))


def _parse_canary(raw: Mapping[str, object], where: str, warnings: list[str], limits: dict[str, int]) -> CanaryStrategy:
    routing_raw = _opt_mapping(raw, "trafficRouting", where)
    routing = None if routing_raw is None else _parse_routing(routing_raw, f"{where}.trafficRouting")
    steps = tuple(
        _parse_step(s, f"{where}.steps[{i}]", routing) for i, s in enumerate(_list(raw.get("steps"), f"{where}.steps"))
    )
    canary_svc = _opt_str(raw, "canaryService", where)
    stable_svc = _opt_str(raw, "stableService", where)
    if routing is not None and (canary_svc is None or stable_svc is None):
        missing = "canaryService" if canary_svc is None else "stableService"
        raise RolloutError(f"{where}.{missing}: required with trafficRouting")
    if canary_svc is not None and canary_svc == stable_svc:
        raise RolloutError(f"{where}.stableService: must differ from canaryService")
    max_surge = _intstr(raw, "maxSurge", where, "25%")
    max_unavailable = _intstr(raw, "maxUnavailable", where, "25%")
    if intstr.scaled_value(max_surge, 100, True) == 0 and intstr.scaled_value(max_unavailable, 100, False) == 0:
        raise RolloutError(f"{where}.maxUnavailable: maxSurge and maxUnavailable cannot both be 0")
    background: RolloutAnalysis | None = None
    bg_raw = _opt_mapping(raw, "analysis", where)
    if bg_raw is not None:
        misplaced = [k for k in ("successfulRunHistoryLimit", "unsuccessfulRunHistoryLimit") if k in bg_raw]
        for key in misplaced:
            limits.setdefault(key, _int(bg_raw[key], f"{where}.analysis.{key}"))
        if misplaced:
            warnings.append(
                f"{where}.analysis.{'/'.join(misplaced)}: belongs in spec.analysis; funade reads it from here too"
            )
        if bg_raw.get("templates") is None and set(bg_raw) <= {
            "successfulRunHistoryLimit",
            "unsuccessfulRunHistoryLimit",
        }:
            warnings.append(f"{where}.analysis: no templates, so no background analysis runs")
        else:
            background = _parse_analysis(bg_raw, f"{where}.analysis", background=True)
            if background.starting_step is not None and background.starting_step > len(steps):
                raise RolloutError(
                    f"{where}.analysis.startingStep: {background.starting_step} is past the {len(steps)} steps"
                )
    return CanaryStrategy(
        steps=steps,
        canary_service=canary_svc,
        stable_service=stable_svc,
        traffic_routing=routing,
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        analysis=background,
        dynamic_stable_scale=_bool(raw, "dynamicStableScale", where, False),
        scale_down_delay_seconds=_opt_int(raw, "scaleDownDelaySeconds", where),
        abort_scale_down_delay_seconds=_opt_int(raw, "abortScaleDownDelaySeconds", where),
    )


def _parse_blue_green(raw: Mapping[str, object], where: str) -> BlueGreenStrategy:
    active = _str(raw.get("activeService"), f"{where}.activeService")
    preview = _opt_str(raw, "previewService", where)
    if preview == active:
        raise RolloutError(f"{where}.previewService: must differ from activeService")
    pre = raw.get("prePromotionAnalysis")
    post = raw.get("postPromotionAnalysis")
    return BlueGreenStrategy(
        active_service=active,
        preview_service=preview,
        auto_promotion_enabled=_bool(raw, "autoPromotionEnabled", where, True),
        auto_promotion_seconds=_opt_int(raw, "autoPromotionSeconds", where) or 0,
        preview_replica_count=_opt_int(raw, "previewReplicaCount", where),
        pre_promotion_analysis=None if pre is None else _parse_analysis(pre, f"{where}.prePromotionAnalysis"),
        post_promotion_analysis=None if post is None else _parse_analysis(post, f"{where}.postPromotionAnalysis"),
        scale_down_delay_seconds=_opt_int(raw, "scaleDownDelaySeconds", where),
        abort_scale_down_delay_seconds=_opt_int(raw, "abortScaleDownDelaySeconds", where),
    )


def parse(doc: Mapping[str, object]) -> Rollout:
    """Read a Rollout document, apply Argo's defaults and check what Argo's validation checks.

    Raises:
        RolloutError: the message starts with the offending field, e.g.
            ``spec.strategy.canary.steps[3].setWeight: must be between 0 and 100, got 120``.
    """
    if doc.get("apiVersion") != _API_VERSION or doc.get("kind") != "Rollout":
        raise RolloutError(f"kind: expected {_API_VERSION} Rollout, got {doc.get('apiVersion')} {doc.get('kind')}")
    meta = _mapping(doc.get("metadata"), "metadata")
    spec = _mapping(doc.get("spec"), "spec")
    replicas = _opt_int(spec, "replicas", "spec")
    selector_raw = _opt_mapping(spec, "selector", "spec")
    selector: dict[str, str] = {}
    if selector_raw is not None:
        labels = _opt_mapping(selector_raw, "matchLabels", "spec.selector") or {}
        selector = {str(k): str(v) for k, v in labels.items()}
    template = _opt_mapping(spec, "template", "spec")
    ref_raw = _opt_mapping(spec, "workloadRef", "spec")
    workload: WorkloadRef | None = None
    if ref_raw is not None:
        if template is not None:
            raise RolloutError("spec.workloadRef: template and workloadRef cannot both be set")
        kind = _str(ref_raw.get("kind"), "spec.workloadRef.kind")
        if kind != "Deployment":
            raise RolloutError(f"spec.workloadRef.kind: only Deployment is supported, got {kind!r}")
        scale_down = _opt_str(ref_raw, "scaleDown", "spec.workloadRef") or "never"
        if scale_down not in _WORKLOAD_SCALE_DOWN:
            raise RolloutError(
                f"spec.workloadRef.scaleDown: one of {', '.join(_WORKLOAD_SCALE_DOWN)}, got {scale_down!r}"
            )
        api_version = _opt_str(ref_raw, "apiVersion", "spec.workloadRef") or "apps/v1"
        workload = WorkloadRef(kind, _str(ref_raw.get("name"), "spec.workloadRef.name"), api_version, scale_down)
    elif template is None:
        raise RolloutError("spec.template: required (or spec.workloadRef)")
    elif not selector:
        raise RolloutError("spec.selector.matchLabels: required")
    strategy_raw = _mapping(spec.get("strategy"), "spec.strategy")
    kinds = [k for k in ("canary", "blueGreen") if strategy_raw.get(k) is not None]
    if len(kinds) != 1:
        raise RolloutError("spec.strategy: exactly one of canary or blueGreen is required")
    warnings: list[str] = []
    limits: dict[str, int] = {}
    run_strategy = _opt_mapping(spec, "analysis", "spec") or {}
    for key in ("successfulRunHistoryLimit", "unsuccessfulRunHistoryLimit"):
        if key in run_strategy:
            limits[key] = _int(run_strategy[key], f"spec.analysis.{key}")
    strategy: CanaryStrategy | BlueGreenStrategy
    if kinds[0] == "canary":
        strategy = _parse_canary(
            _mapping(strategy_raw["canary"], "spec.strategy.canary"), "spec.strategy.canary", warnings, limits
        )
    else:
        strategy = _parse_blue_green(
            _mapping(strategy_raw["blueGreen"], "spec.strategy.blueGreen"), "spec.strategy.blueGreen"
        )
    min_ready = _opt_int(spec, "minReadySeconds", "spec") or 0
    deadline = _opt_int(spec, "progressDeadlineSeconds", "spec", minimum=1)
    deadline = DEFAULT_PROGRESS_DEADLINE if deadline is None else deadline
    if deadline <= min_ready:
        raise RolloutError("spec.progressDeadlineSeconds: must be greater than minReadySeconds")
    history = _opt_int(spec, "revisionHistoryLimit", "spec")
    return Rollout(
        name=_str(meta.get("name"), "metadata.name"),
        namespace=str(meta.get("namespace") or "default"),
        replicas=1 if replicas is None else replicas,
        selector=selector,
        strategy=strategy,
        template=template,
        workload_ref=workload,
        min_ready_seconds=min_ready,
        revision_history_limit=10 if history is None else history,
        progress_deadline_seconds=deadline,
        progress_deadline_abort=_bool(spec, "progressDeadlineAbort", "spec", False),
        paused=_bool(spec, "paused", "spec", False),
        successful_run_history_limit=limits.get("successfulRunHistoryLimit", 5),
        unsuccessful_run_history_limit=limits.get("unsuccessfulRunHistoryLimit", 5),
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------- shared by the step machines


def pod_template(rollout: Rollout, template: Mapping[str, object]) -> dict[str, object]:
    """The pod template validated and defaulted as the API server does for a Deployment's.

    Raises:
        RolloutError: naming the field under ``spec.template``.
    """
    from pydantic import ValidationError

    from funade.core import manifests, objects  # the typed Kubernetes models; imported here to keep parse() light

    wrapper = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": rollout.name, "namespace": rollout.namespace},
        "spec": {"selector": {"matchLabels": dict(rollout.selector)}, "template": template},
    }
    try:
        spec = objects.to_dict(objects.parse(wrapper))["spec"]
    except ValidationError as exc:
        issues = manifests.validation_issues(exc, wrapper)
        raise RolloutError("; ".join(f"{manifests.format_path(p)}: {m}" for p, m in issues)) from None
    except ValueError as exc:
        raise RolloutError(f"spec.template: {exc}") from None
    return dict(spec["template"])


def weight_to_replicas(replicas: int, weight: int) -> int:
    """``trafficWeightToReplicas``: ceil(weight% × replicas), in integers."""
    return -(-weight * replicas // 100)


def progress(
    rollout: Rollout, status: RolloutStatus, mark: tuple[int, ...], now: datetime, waiting: bool
) -> tuple[RolloutStatus, bool]:
    """Track progress for ``progressDeadlineSeconds``: returns the status and whether the deadline passed.

    Any change of ``mark`` (step, replica and availability counts) is progress. Time spent
    paused does not count: Argo resets the Progressing condition when a rollout resumes.
    """
    if waiting or mark != status.progress_mark or status.progress_at is None:
        return replace(status, progress_at=now, progress_mark=mark), False
    return status, now - status.progress_at >= timedelta(seconds=rollout.progress_deadline_seconds)
