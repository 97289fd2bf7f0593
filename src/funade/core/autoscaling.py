"""HorizontalPodAutoscaler decisions, made the way the Kubernetes HPA controller makes them.

The local target runs ``HorizontalPodAutoscaler`` objects itself. Someone who later moves
the same manifests to a real cluster should see the same replica counts, so this module
follows ``pkg/controller/podautoscaler`` (``horizontal.go``, ``replica_calculator.go``,
``metrics/utilization.go``) and the ``autoscaling/v1`` and ``autoscaling/v2`` API defaults.
It covers:

- one proposal per metric: ``ceil(usageRatio × readyPods)``, no change while the ratio is
  within the tolerance (10 % by default, or ``behavior.scaleUp/scaleDown.tolerance``);
- pods without metrics, pods that are not ready, and pods still starting (cpu only) are
  set aside, then filled in on the cautious side and the ratio is worked out again;
- with several metrics the largest proposal wins. Invalid metrics stop a scale-down but
  not a scale-up;
- stabilization windows, ``Pods``/``Percent`` rate policies, then the min/max clamp;
- the ``AbleToScale``/``ScalingActive``/``ScalingLimited`` conditions and
  ``status.currentMetrics``.

The controller keeps its recent recommendations and scale events in memory. Here they
are a :class:`History` value that the caller stores (for example in the object's status)
and passes back on the next call, so the decisions carry on across a server restart.
Only cpu and memory can be measured on the local target. ``Pods``, ``Object`` and
``External`` metrics parse, but they are reported as failing metrics.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from funade.core import quantity

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "DEFAULT_CPU_UTILIZATION",
    "DOWNSCALE_STABILIZATION_WINDOW",
    "INITIAL_READINESS_DELAY",
    "TOLERANCE",
    "Behavior",
    "Decision",
    "History",
    "HpaError",
    "Metric",
    "MetricTarget",
    "PodSample",
    "Policy",
    "Rules",
    "ScaleTargetRef",
    "Spec",
    "decide",
    "parse",
]

# kube-controller-manager defaults (pkg/controller/podautoscaler/config/v1alpha1/defaults.go).
TOLERANCE = 0.1
"""Cluster-wide tolerance (``--horizontal-pod-autoscaler-tolerance``)."""
CPU_INITIALIZATION_PERIOD = 300.0
"""Seconds after a pod starts during which its cpu samples are treated with suspicion."""
INITIAL_READINESS_DELAY = 30.0
"""Seconds after a pod starts during which a readiness change counts as its first one."""
DOWNSCALE_STABILIZATION_WINDOW = 300
"""Default scale-down stabilization window, in seconds."""
DEFAULT_CPU_UTILIZATION = 80
"""Target cpu utilization when an HPA names no metric (``autoscaling.DefaultCPUUtilization``)."""

# The "scale up at most to max(2 × current, 4)" rule used when spec.behavior is absent.
_SCALE_UP_LIMIT_FACTOR = 2.0
_SCALE_UP_LIMIT_MINIMUM = 4.0
_MAX_WINDOW_SECONDS = 3600
_MAX_PERIOD_SECONDS = 1800

MetricType = Literal["Resource", "ContainerResource", "Pods", "Object", "External"]
TargetType = Literal["Utilization", "AverageValue", "Value"]
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]

_SELECT_POLICIES: tuple[SelectPolicy, ...] = ("Max", "Min", "Disabled")
_METRIC_TYPES: tuple[MetricType, ...] = ("Resource", "ContainerResource", "Pods", "Object", "External")
_MEASURED = ("cpu", "memory")
_FIELD_OF: dict[str, str] = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


class HpaError(ValueError):
    """An HPA object or a stored history is invalid. The message starts with the field path."""


# --- the spec -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricTarget:
    """What a metric should average to.

    Attributes:
        type: ``Utilization`` (percent of the pods' requests), ``AverageValue`` (per pod)
            or ``Value`` (``Object``/``External`` metrics only).
        average_utilization: the target percentage for ``Utilization``.
        average_value_milli: the target in thousandths of the base unit (millicores,
            millibytes), as ``Quantity.MilliValue()`` gives it. Used for ``AverageValue``.
    """

    type: TargetType
    average_utilization: int | None = None
    average_value_milli: int | None = None


@dataclass(frozen=True)
class Metric:
    """One entry of ``spec.metrics``.

    Attributes:
        type: the metric source type.
        resource: ``cpu`` or ``memory`` for ``Resource``/``ContainerResource`` metrics.
        container: the container a ``ContainerResource`` metric measures.
        name: the metric name of a ``Pods``/``Object``/``External`` metric.
        target: the target. ``None`` for metric types the local target cannot measure.
    """

    type: MetricType
    resource: str = ""
    container: str = ""
    name: str = ""
    target: MetricTarget | None = None


@dataclass(frozen=True)
class Policy:
    """One scaling policy: change by at most ``value`` pods or percent per ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    """Scaling rules for one direction (``HPAScalingRules``) with defaults filled in."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[Policy, ...]
    tolerance: float = TOLERANCE


def _default_scale_up() -> Rules:
    return Rules(0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))


def _default_scale_down() -> Rules:
    return Rules(DOWNSCALE_STABILIZATION_WINDOW, "Max", (Policy("Percent", 100, 15),))


@dataclass(frozen=True)
class Behavior:
    """``spec.behavior`` with the API defaults applied to whatever was left out."""

    scale_up: Rules = field(default_factory=_default_scale_up)
    scale_down: Rules = field(default_factory=_default_scale_down)


@dataclass(frozen=True)
class ScaleTargetRef:
    """``spec.scaleTargetRef``: the workload whose ``spec.replicas`` the HPA sets."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Spec:
    """A validated HorizontalPodAutoscaler.

    Attributes:
        name: ``metadata.name``.
        api_version: ``autoscaling/v2`` or ``autoscaling/v1``.
        target: ``spec.scaleTargetRef``.
        min_replicas: the floor (default 1).
        max_replicas: the ceiling.
        metrics: the metrics, in order. When none are given this is cpu at 80 %.
        behavior: ``spec.behavior`` with defaults, or ``None`` when the object has none.
            Without a behavior the controller uses its older rules: a fixed 300 s
            scale-down window and a scale-up limit of ``max(2 × current, 4)``.
    """

    name: str
    api_version: str
    target: ScaleTargetRef
    min_replicas: int
    max_replicas: int
    metrics: tuple[Metric, ...]
    behavior: Behavior | None = None


def _mapping(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise HpaError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise HpaError(f"{path}: required, a non-empty string")
    return value


def _integer(value: object, path: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HpaError(f"{path}: expected an integer, got {value!r}")
    if value < minimum:
        raise HpaError(f"{path}: must be greater than or equal to {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise HpaError(f"{path}: must be less than or equal to {maximum}, got {value}")
    return value


def _quantity(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HpaError(f"{path}: expected a quantity such as 500m or 256Mi, got {value!r}")
    try:
        return quantity.parse_quantity(value)
    except ValueError as exc:
        raise HpaError(f"{path}: {exc}") from None


def _milli_quantity(value: object, path: str) -> int:
    amount = _quantity(value, path)
    if amount <= 0:
        raise HpaError(f"{path}: must be positive, got {value!r}")
    # Quantity.MilliValue(): thousandths of the base unit, rounded up.
    return int((amount * 1000).to_integral_value(rounding=decimal.ROUND_CEILING))


def _parse_target(raw: object, path: str, allowed: tuple[TargetType, ...]) -> MetricTarget:
    target = _mapping(raw, path)
    kind = target.get("type")
    if kind not in allowed:
        raise HpaError(f"{path}.type: must be one of {', '.join(allowed)}, got {kind!r}")
    if kind == "Utilization":
        utilization = _integer(target.get("averageUtilization"), f"{path}.averageUtilization", 1)
        return MetricTarget("Utilization", average_utilization=utilization)
    if kind == "AverageValue":
        milli = _milli_quantity(target.get("averageValue"), f"{path}.averageValue")
        return MetricTarget("AverageValue", average_value_milli=milli)
    milli = _milli_quantity(target.get("value"), f"{path}.value")
    return MetricTarget("Value", average_value_milli=milli)


def _parse_metric(raw: object, path: str) -> Metric:
    entry = _mapping(raw, path)
    kind = entry.get("type")
    metric_type = next((t for t in _METRIC_TYPES if t == kind), None)
    if metric_type is None:
        raise HpaError(f"{path}.type: must be one of {', '.join(_METRIC_TYPES)}, got {kind!r}")
    key = _FIELD_OF[metric_type]
    source_path = f"{path}.{key}"
    source = _mapping(entry.get(key), source_path)
    if metric_type in ("Resource", "ContainerResource"):
        resource = _text(source.get("name"), f"{source_path}.name")
        if resource not in _MEASURED:
            raise HpaError(f"{source_path}.name: {resource!r} is not cpu or memory")
        container = ""
        if metric_type == "ContainerResource":
            container = _text(source.get("container"), f"{source_path}.container")
        target = _parse_target(source.get("target"), f"{source_path}.target", ("Utilization", "AverageValue"))
        return Metric(metric_type, resource=resource, container=container, target=target)
    metric = _mapping(source.get("metric"), f"{source_path}.metric")
    name = _text(metric.get("name"), f"{source_path}.metric.name")
    return Metric(metric_type, name=name)


def _parse_policy(raw: object, path: str) -> Policy:
    entry = _mapping(raw, path)
    kind = entry.get("type")
    if kind not in ("Pods", "Percent"):
        raise HpaError(f"{path}.type: must be Pods or Percent, got {kind!r}")
    value = _integer(entry.get("value"), f"{path}.value", 1)
    period = _integer(entry.get("periodSeconds"), f"{path}.periodSeconds", 1, _MAX_PERIOD_SECONDS)
    return Policy("Pods" if kind == "Pods" else "Percent", value, period)


def _parse_rules(raw: object, path: str, default: Rules) -> Rules:
    if raw is None:
        return default
    rules = _mapping(raw, path)
    window = default.stabilization_window_seconds
    if rules.get("stabilizationWindowSeconds") is not None:
        window = _integer(
            rules["stabilizationWindowSeconds"], f"{path}.stabilizationWindowSeconds", 0, _MAX_WINDOW_SECONDS
        )
    select: SelectPolicy = default.select_policy
    if rules.get("selectPolicy") is not None:
        chosen = rules["selectPolicy"]
        picked = next((p for p in _SELECT_POLICIES if p == chosen), None)
        if picked is not None:
            select = picked
        else:
            raise HpaError(f"{path}.selectPolicy: must be Max, Min or Disabled, got {chosen!r}")
    policies = default.policies
    if rules.get("policies") is not None:
        raw_policies = rules["policies"]
        if not isinstance(raw_policies, list):
            raise HpaError(f"{path}.policies: expected a list")
        if not raw_policies:
            raise HpaError(f"{path}.policies: must specify at least one policy")
        policies = tuple(_parse_policy(p, f"{path}.policies[{i}]") for i, p in enumerate(raw_policies))
    tolerance = default.tolerance
    if rules.get("tolerance") is not None:
        amount = _quantity(rules["tolerance"], f"{path}.tolerance")
        if amount < 0:
            raise HpaError(f"{path}.tolerance: must be greater than or equal to 0")
        tolerance = float(amount)
    return Rules(window, select, policies, tolerance)


def _parse_behavior(raw: object, path: str) -> Behavior | None:
    if raw is None:
        return None
    behavior = _mapping(raw, path)
    return Behavior(
        scale_up=_parse_rules(behavior.get("scaleUp"), f"{path}.scaleUp", _default_scale_up()),
        scale_down=_parse_rules(behavior.get("scaleDown"), f"{path}.scaleDown", _default_scale_down()),
    )


def _default_metrics(utilization: int = DEFAULT_CPU_UTILIZATION) -> tuple[Metric, ...]:
    return (Metric("Resource", resource="cpu", target=MetricTarget("Utilization", average_utilization=utilization)),)


def parse(obj: Mapping[str, object]) -> Spec:
    """Validate an HPA object and apply the API defaults.

    ``autoscaling/v1``'s ``targetCPUUtilizationPercentage`` becomes a cpu ``Utilization``
    metric. With no target (v1) or no metrics (v2) the HPA aims at 80 % cpu.
    ``minReplicas`` defaults to 1, and missing ``behavior`` fields take the API defaults.

    Args:
        obj: the object as loaded from YAML or JSON.

    Returns:
        The validated spec.

    Raises:
        HpaError: the object is not a valid HPA. The message names the field.
    """
    root = _mapping(obj, "object")
    api_version = root.get("apiVersion")
    if api_version not in ("autoscaling/v2", "autoscaling/v1"):
        raise HpaError(f"apiVersion: must be autoscaling/v2 or autoscaling/v1, got {api_version!r}")
    if root.get("kind") != "HorizontalPodAutoscaler":
        raise HpaError(f"kind: must be HorizontalPodAutoscaler, got {root.get('kind')!r}")
    name = _text(_mapping(root.get("metadata"), "metadata").get("name"), "metadata.name")
    spec = _mapping(root.get("spec"), "spec")
    ref = _mapping(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    target_kind = _text(ref.get("kind"), "spec.scaleTargetRef.kind")
    target_name = _text(ref.get("name"), "spec.scaleTargetRef.name")
    target_api_version = ref.get("apiVersion", "")
    if not isinstance(target_api_version, str):
        raise HpaError("spec.scaleTargetRef.apiVersion: expected a string")

    min_replicas = 1
    if spec.get("minReplicas") is not None:
        min_replicas = _integer(spec["minReplicas"], "spec.minReplicas", 1)
    max_replicas = _integer(spec.get("maxReplicas"), "spec.maxReplicas", 1)
    if max_replicas < min_replicas:
        raise HpaError(f"spec.maxReplicas: must be greater than or equal to minReplicas ({min_replicas})")

    behavior: Behavior | None = None
    if api_version == "autoscaling/v1":
        metrics = _default_metrics()
        if spec.get("targetCPUUtilizationPercentage") is not None:
            percent = _integer(spec["targetCPUUtilizationPercentage"], "spec.targetCPUUtilizationPercentage", 1)
            metrics = _default_metrics(percent)
    else:
        raw_metrics = spec.get("metrics")
        if raw_metrics is None or raw_metrics == []:
            metrics = _default_metrics()
        elif isinstance(raw_metrics, list):
            metrics = tuple(_parse_metric(m, f"spec.metrics[{i}]") for i, m in enumerate(raw_metrics))
        else:
            raise HpaError("spec.metrics: expected a list")
        behavior = _parse_behavior(spec.get("behavior"), "spec.behavior")

    return Spec(
        name=name,
        api_version=str(api_version),
        target=ScaleTargetRef(target_api_version, target_kind, target_name),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        behavior=behavior,
    )


# --- observations and history ---------------------------------------------------------------


@dataclass(frozen=True)
class PodSample:
    """One pod of the scale target, as the controller sees it through the pod lister and metrics.

    Attributes:
        name: the pod name.
        ready: the status of the pod's Ready condition.
        started_at: ``status.startTime`` (epoch seconds), ``None`` if not started.
        ready_changed_at: when the Ready condition last changed (epoch seconds), ``None``
            when the pod has no Ready condition yet.
        requests: for each container of the pod, in spec order: resource (``cpu`` in cores,
            ``memory`` in bytes) to its request. A missing key means no request. Every
            container must be listed, even one with no requests.
        usage: for each container: resource to current usage, in the same units. ``None``
            while the pod has no metrics.
        phase: ``Running``, ``Pending``, ``Succeeded``, ``Failed`` or ``Unknown``.
        terminating: the pod has a deletion timestamp.
        sampled_at: when the usage was measured (epoch seconds). ``None`` means now.
        window: the interval, in seconds, that the usage was averaged over (15 s is
            metrics-server's default resolution).
    """

    name: str
    ready: bool
    started_at: float | None
    ready_changed_at: float | None
    requests: Mapping[str, Mapping[str, float]]
    usage: Mapping[str, Mapping[str, float]] | None
    phase: str = "Running"
    terminating: bool = False
    sampled_at: float | None = None
    window: float = 15.0


@dataclass(frozen=True)
class History:
    """What the controller remembers between two decisions for one HPA.

    Attributes:
        recommendations: ``(time, replicas)`` for each recent raw recommendation (before
            stabilization), oldest first.
        scale_events: ``(time, change)`` for each recent rescale. The change is positive
            for a scale-up and negative for a scale-down.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_events: tuple[tuple[float, int], ...] = ()

    def to_json(self) -> dict[str, object]:
        """The history as JSON-able data, for storing in the object's status."""
        return {
            "recommendations": [{"time": t, "replicas": r} for t, r in self.recommendations],
            "scaleEvents": [{"time": t, "change": c} for t, c in self.scale_events],
        }

    @classmethod
    def from_json(cls, data: object) -> History:
        """Read a history written by :meth:`to_json`. ``None`` is an empty history.

        Raises:
            HpaError: the data is malformed. The message names the entry.
        """
        if data is None:
            return cls()
        root = _mapping(data, "history")
        return cls(
            recommendations=_read_pairs(root.get("recommendations"), "history.recommendations", "replicas"),
            scale_events=_read_pairs(root.get("scaleEvents"), "history.scaleEvents", "change"),
        )


def _read_pairs(raw: object, path: str, key: str) -> tuple[tuple[float, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise HpaError(f"{path}: expected a list")
    pairs: list[tuple[float, int]] = []
    for i, item in enumerate(raw):
        entry = _mapping(item, f"{path}[{i}]")
        moment, amount = entry.get("time"), entry.get(key)
        if isinstance(moment, bool) or not isinstance(moment, int | float):
            raise HpaError(f"{path}[{i}].time: expected a number, got {moment!r}")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise HpaError(f"{path}[{i}].{key}: expected an integer, got {amount!r}")
        pairs.append((float(moment), amount))
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


@dataclass(frozen=True)
class Decision:
    """The outcome of one HPA sync.

    Attributes:
        desired: the replica count the target should have. It equals the current
            count when nothing changes.
        scaled: whether the target must be rescaled to ``desired``.
        reason: why it is rescaled (the text of the controller's ``SuccessfulRescale``
            event). Empty when ``scaled`` is false.
        history: the history to store and pass to the next call.
        current_metrics: ``status.currentMetrics`` in the ``autoscaling/v2`` layout.
        conditions: the conditions this sync set (``type``, ``status``, ``reason``,
            ``message``). The controller keeps conditions from earlier syncs that this
            one did not touch.
        errors: one message per metric that could not be computed (the controller's
            warning events). A failed metric can appear here while ``ScalingActive`` is
            true, because the other metrics allowed a decision.
    """

    desired: int
    scaled: bool
    reason: str
    history: History
    current_metrics: list[dict[str, object]]
    conditions: list[dict[str, str]]
    errors: tuple[str, ...] = ()


# --- per-metric replica counts (replica_calculator.go) --------------------------------------


class _MetricFailure(Exception):
    """A metric could not be turned into a replica count."""


@dataclass(frozen=True)
class _Tolerances:
    scale_down: float
    scale_up: float

    def within(self, ratio: float) -> bool:
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


def _milli(amount: float) -> int:
    """Thousandths of ``amount``, rounded up like ``MilliValue()``, ignoring float noise."""
    return math.ceil(round(amount * 1000, 6))


def _quo(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as Go's ``/`` on integers does."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def _format_milli(milli: int) -> str:
    """A milli-value as ``resource.NewMilliQuantity(v, DecimalSI).String()`` prints it."""
    if milli == 0:
        return "0"
    suffixes = ("m", "", "k", "M", "G", "T", "P", "E")
    index = 0
    while index < len(suffixes) - 1 and milli % 1000 == 0:
        milli //= 1000
        index += 1
    return f"{milli}{suffixes[index]}"


def _pod_usage(pods: Sequence[PodSample], resource: str, container: str) -> dict[str, int]:
    """Per-pod usage in milli-units, as the resource metrics client returns it."""
    values: dict[str, int] = {}
    reported = False
    for pod in pods:
        if pod.usage is None:
            continue
        reported = True
        if container:
            if container not in pod.usage:
                raise _MetricFailure(
                    f"unable to get metrics for resource {resource}: "
                    f"container {container} not present in metrics for pod {pod.name}"
                )
            amount = pod.usage[container].get(resource)
            if amount is not None:
                values[pod.name] = _milli(amount)
            continue
        containers = list(pod.usage.values())
        if containers and all(resource in c for c in containers):
            values[pod.name] = sum(_milli(c[resource]) for c in containers)
    if not reported:
        raise _MetricFailure(
            f"unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        )
    return values


def _group_pods(
    pods: Sequence[PodSample], values: Mapping[str, int], resource: str, now: float
) -> tuple[int, set[str], set[str], set[str]]:
    """Sort pods into ready (counted), unready, missing metrics and ignored (``groupPods``)."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.terminating or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if pod.name not in values:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready_changed_at is None or pod.started_at is None:
                is_unready = True
            elif pod.started_at + CPU_INITIALIZATION_PERIOD > now:
                # Still starting: distrust the sample unless the pod is ready and the sample
                # covers a full window after the last readiness change.
                sampled_at = now if pod.sampled_at is None else pod.sampled_at
                is_unready = not pod.ready or sampled_at < pod.ready_changed_at + pod.window
            else:
                # Later on, only a pod that has never become ready is set aside.
                is_unready = not pod.ready and pod.started_at + INITIAL_READINESS_DELAY > pod.ready_changed_at
            if is_unready:
                unready.add(pod.name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _pod_requests(pods: Sequence[PodSample], resource: str, container: str) -> dict[str, int]:
    """Per-pod request in milli-units (``calculatePodRequestsFromContainers``)."""
    requests: dict[str, int] = {}
    for pod in pods:
        if container and container not in pod.requests:
            raise _MetricFailure(f"container {container} not found in Pod {pod.name}")
        total = 0
        for name, amounts in pod.requests.items():
            if container and name != container:
                continue
            if resource not in amounts:
                raise _MetricFailure(f"missing request for {resource} in container {name} of Pod {pod.name}")
            total += _milli(amounts[resource])
        requests[pod.name] = total
    return requests


def _utilization_ratio(values: Mapping[str, int], requests: Mapping[str, int], target: int) -> tuple[float, int, int]:
    """``GetResourceUtilizationRatio``: (ratio, utilization percent, raw average milli-value)."""
    metrics_total = requests_total = entries = 0
    for name, value in values.items():
        if name not in requests:
            continue
        metrics_total += value
        requests_total += requests[name]
        entries += 1
    if requests_total == 0:
        raise _MetricFailure("no metrics returned matched known pods")
    utilization = _quo(metrics_total * 100, requests_total)
    return utilization / target, utilization, _quo(metrics_total, entries)


def _usage_ratio(values: Mapping[str, int], target_milli: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (ratio, average milli-value)."""
    usage = _quo(sum(values.values()), len(values))
    return usage / target_milli, usage


def _resource_replicas(
    current: int, pods: Sequence[PodSample], metric: Metric, target: MetricTarget, now: float, tolerances: _Tolerances
) -> tuple[int, dict[str, object]]:
    """A replica proposal and its ``current`` status (``GetResourceReplicas``/``GetRawResourceReplicas``)."""
    values = _pod_usage(pods, metric.resource, metric.container)
    if not pods:
        raise _MetricFailure("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = _group_pods(pods, values, metric.resource, now)
    for name in ignored | unready:
        values.pop(name, None)
    if not values:
        raise _MetricFailure("did not receive metrics for targeted pods (pods might be unready)")

    ratio_of: Callable[[Mapping[str, int]], float]
    fallback: Callable[[str], int]
    status: dict[str, object]
    if target.type == "Utilization":
        percent = target.average_utilization or DEFAULT_CPU_UTILIZATION
        requests = _pod_requests(pods, metric.resource, metric.container)
        ratio, utilization, raw = _utilization_ratio(values, requests, percent)
        status = {"averageUtilization": utilization, "averageValue": _format_milli(raw)}
        ratio_of = lambda filled: _utilization_ratio(filled, requests, percent)[0]  # noqa: E731
        # On a scale-down a pod without metrics counts as using its whole request, or the
        # target when the target is above 100 %.
        fallback = lambda name: _quo(requests[name] * max(100, percent), 100)  # noqa: E731
    else:
        target_milli = target.average_value_milli or 1
        ratio, raw = _usage_ratio(values, target_milli)
        status = {"averageValue": _format_milli(raw)}
        ratio_of = lambda filled: _usage_ratio(filled, target_milli)[0]  # noqa: E731
        fallback = lambda name: target_milli  # noqa: E731

    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tolerances.within(ratio):
            return current, status
        return math.ceil(ratio * ready), status

    # Fill in the pods that were set aside on the cautious side, then look again.
    if missing:
        if ratio < 1.0:
            values.update({name: fallback(name) for name in missing})
        elif ratio > 1.0:
            values.update(dict.fromkeys(missing, 0))
    if scale_up_with_unready:
        values.update(dict.fromkeys(unready, 0))
    new_ratio = ratio_of(values)
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, status
    proposal = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current, status
    return proposal, status


# --- all metrics (horizontal.go computeReplicasForMetrics) ----------------------------------


@dataclass(frozen=True)
class _Failure:
    reason: str
    error: str  # the error of computeStatusFor*Metric, shown in the condition
    wrapped: str  # the error of computeReplicasForMetric


@dataclass
class _MetricsOutcome:
    replicas: int = 0
    metric: str = ""
    statuses: list[dict[str, object]] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)


def _metric_name(metric: Metric, target: MetricTarget) -> str:
    if target.type != "Utilization":
        return f"{metric.resource} resource"
    if metric.type == "ContainerResource":
        return f"{metric.resource} container resource utilization (percentage of request)"
    return f"{metric.resource} resource utilization (percentage of request)"


def _unsupported(metric: Metric) -> _Failure:
    error = (
        f"unable to get metric {metric.name}: the local target measures cpu and memory only, "
        f"so {metric.type} metrics cannot be read"
    )
    if metric.type == "Pods":
        return _Failure("FailedGetPodsMetric", error, f"failed to get pods metric value: {error}")
    if metric.type == "Object":
        return _Failure("FailedGetObjectMetric", error, f"failed to get object metric value: {error}")
    return _Failure("FailedGetExternalMetric", error, f"failed to get {metric.name} external metric value: {error}")


def _compute_metrics(
    spec: Spec, current: int, pods: Sequence[PodSample], now: float, tolerances: _Tolerances
) -> _MetricsOutcome:
    outcome = _MetricsOutcome()
    for metric in spec.metrics:
        target = metric.target
        if metric.type not in ("Resource", "ContainerResource") or target is None:
            outcome.failures.append(_unsupported(metric))
            continue
        try:
            proposal, current_status = _resource_replicas(current, pods, metric, target, now, tolerances)
        except _MetricFailure as exc:
            what = "utilization" if target.type == "Utilization" else "usage"
            error = f"failed to get {metric.resource} {what}: {exc}"
            if metric.type == "ContainerResource":
                wrapped = f"failed to get {metric.container} container metric value: {error}"
                outcome.failures.append(_Failure("FailedGetContainerResourceMetric", error, wrapped))
            else:
                wrapped = f"failed to get {metric.resource} resource metric value: {error}"
                outcome.failures.append(_Failure("FailedGetResourceMetric", error, wrapped))
            continue
        if metric.type == "ContainerResource":
            source: dict[str, object] = {
                "name": metric.resource,
                "container": metric.container,
                "current": current_status,
            }
            outcome.statuses.append({"type": "ContainerResource", "containerResource": source})
        else:
            source = {"name": metric.resource, "current": current_status}
            outcome.statuses.append({"type": "Resource", "resource": source})
        if outcome.replicas == 0 or proposal > outcome.replicas:
            outcome.replicas = proposal
            outcome.metric = _metric_name(metric, target)
    return outcome


# --- normalization (horizontal.go normalizeDesiredReplicas*) --------------------------------


def _condition(kind: str, status: bool, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if status else "False", "reason": reason, "message": message}


_READY_FOR_NEW_SCALE = ("ReadyForNewScale", "recommended size matches current size")
_WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")


@dataclass(frozen=True)
class _Normalized:
    replicas: int
    able: tuple[str, str]
    limited: bool
    limit: tuple[str, str]
    recommendations: list[tuple[float, int]]


def _normalize_legacy(
    spec: Spec, current: int, desired: int, recommendations: list[tuple[float, int]], now: float
) -> _Normalized:
    """Without ``spec.behavior``: the highest recommendation of the last 300 s, then fixed limits."""
    cutoff = now - DOWNSCALE_STABILIZATION_WINDOW
    stabilized = desired
    for moment, replicas in recommendations:
        if moment >= cutoff and replicas > stabilized:
            stabilized = replicas
    able = _READY_FOR_NEW_SCALE
    if stabilized != desired:
        able = (
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    scale_up_limit = int(max(_SCALE_UP_LIMIT_FACTOR * float(current), _SCALE_UP_LIMIT_MINIMUM))
    maximum, over = (
        (scale_up_limit, _UP_LIMIT) if spec.max_replicas > scale_up_limit else (spec.max_replicas, _TOO_MANY)
    )
    if stabilized < spec.min_replicas:
        replicas, limit = spec.min_replicas, _TOO_FEW
    elif stabilized > maximum:
        replicas, limit = maximum, over
    else:
        replicas, limit = stabilized, _WITHIN_RANGE
    return _Normalized(replicas, able, replicas != stabilized, limit, [*recommendations, (now, desired)])


def _change_in_period(events: Sequence[tuple[float, int]], period: int, now: float) -> int:
    cutoff = now - period
    return sum(change for moment, change in events if moment > cutoff)


def _period_start(
    current: int, policy: Policy, ups: list[tuple[float, int]], downs: list[tuple[float, int]], now: float
) -> int:
    added = _change_in_period(ups, policy.period_seconds, now)
    removed = _change_in_period(downs, policy.period_seconds, now)
    return current - added + removed


def _scale_up_limit(
    current: int, ups: list[tuple[float, int]], downs: list[tuple[float, int]], rules: Rules, now: float
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow now."""
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    result: int | None = None
    for policy in rules.policies:
        start = _period_start(current, policy, ups, downs, now)
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            # Rounded up, so a small percentage of a small count still adds a pod.
            proposed = math.ceil(float(start) * (1 + float(policy.value) / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _scale_down_limit(
    current: int, ups: list[tuple[float, int]], downs: list[tuple[float, int]], rules: Rules, now: float
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow now."""
    if rules.select_policy == "Disabled":
        return current
    # For scaling down, the smallest change ("Min") is the highest replica count.
    pick = max if rules.select_policy == "Min" else min
    result: int | None = None
    for policy in rules.policies:
        start = _period_start(current, policy, ups, downs, now)
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = int(float(start) * (1 - float(policy.value) / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _normalize_with_behavior(
    spec: Spec,
    behavior: Behavior,
    current: int,
    desired: int,
    recommendations: list[tuple[float, int]],
    events: Sequence[tuple[float, int]],
    now: float,
) -> _Normalized:
    """Stabilize over both windows, then apply the rate policies and the min/max bounds."""
    up_cutoff = now - behavior.scale_up.stabilization_window_seconds
    down_cutoff = now - behavior.scale_down.stabilization_window_seconds
    up_recommendation = desired
    down_recommendation = desired
    for moment, replicas in recommendations:
        if moment > up_cutoff:
            up_recommendation = min(up_recommendation, replicas)
        if moment > down_cutoff:
            down_recommendation = max(down_recommendation, replicas)
    stabilized = min(max(current, up_recommendation), down_recommendation)
    able = _READY_FOR_NEW_SCALE
    if stabilized != desired:
        if desired >= current:
            able = (
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        else:
            able = (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )

    ups = [(moment, change) for moment, change in events if change > 0]
    downs = [(moment, -change) for moment, change in events if change < 0]
    replicas, limit = stabilized, _WITHIN_RANGE
    if stabilized > current:
        # Until old scale events leave their periods, never go below the current count.
        allowed = max(_scale_up_limit(current, ups, downs, behavior.scale_up, now), current)
        maximum, over = (allowed, _UP_LIMIT) if spec.max_replicas > allowed else (spec.max_replicas, _TOO_MANY)
        if stabilized > maximum:
            replicas, limit = maximum, over
    elif stabilized < current:
        allowed = min(_scale_down_limit(current, ups, downs, behavior.scale_down, now), current)
        minimum, under = (allowed, _DOWN_LIMIT) if spec.min_replicas < allowed else (spec.min_replicas, _TOO_FEW)
        if stabilized < minimum:
            replicas, limit = minimum, under
    return _Normalized(replicas, able, replicas != stabilized, limit, [*recommendations, (now, desired)])


# --- the sync -------------------------------------------------------------------------------


def _prune(
    spec: Spec, recommendations: list[tuple[float, int]], events: list[tuple[float, int]], now: float
) -> History:
    """Keep what the longest window and the longest policy period can still see."""
    behavior = spec.behavior
    if behavior is None:
        window = DOWNSCALE_STABILIZATION_WINDOW
        period = 0
    else:
        window = max(behavior.scale_up.stabilization_window_seconds, behavior.scale_down.stabilization_window_seconds)
        period = max(
            (p.period_seconds for p in (*behavior.scale_up.policies, *behavior.scale_down.policies)), default=0
        )
    ordered = sorted(recommendations, key=lambda pair: pair[0])
    kept = [pair for pair in ordered if pair[0] >= now - window]
    if not kept and ordered:
        # Keep the newest one: an empty list would make the next call record a new
        # initial recommendation, which the controller does only once.
        kept = [ordered[-1]]
    recent_events = sorted((pair for pair in events if pair[0] >= now - period), key=lambda pair: pair[0])
    return History(tuple(kept), tuple(recent_events))


def _tolerances(spec: Spec) -> _Tolerances:
    if spec.behavior is None:
        return _Tolerances(TOLERANCE, TOLERANCE)
    return _Tolerances(spec.behavior.scale_down.tolerance, spec.behavior.scale_up.tolerance)


def decide(spec: Spec, current_replicas: int, pods: Sequence[PodSample], now: float, history: History) -> Decision:
    """One sync of the HPA controller (``reconcileAutoscaler``), without the I/O.

    Args:
        spec: the HPA, from :func:`parse`.
        current_replicas: ``spec.replicas`` of the scale target.
        pods: the target's pods, with their metrics.
        now: the time of this sync, in epoch seconds.
        history: what the previous call returned in :attr:`Decision.history`
            (``History()`` the first time).

    Returns:
        The replica count to set, the conditions and metric statuses to report, and the
        history to keep.

    Raises:
        ValueError: ``current_replicas`` is negative.
    """
    if current_replicas < 0:
        raise ValueError(f"current_replicas must not be negative, got {current_replicas}")
    recommendations = list(history.recommendations)
    if not recommendations:
        # The first recommendation is the current count (recordInitialRecommendation).
        recommendations.append((now, current_replicas))
    events = list(history.scale_events)
    conditions: dict[str, dict[str, str]] = {
        "AbleToScale": _condition(
            "AbleToScale", True, "SucceededGetScale", "the HPA controller was able to get the target's current scale"
        )
    }
    statuses: list[dict[str, object]] = []
    errors: tuple[str, ...] = ()
    reason = ""
    rescale = True
    desired = 0

    if current_replicas == 0:
        rescale = False
        conditions["ScalingActive"] = _condition(
            "ScalingActive",
            False,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
    elif current_replicas > spec.max_replicas:
        reason = "Current number of replicas above Spec.MaxReplicas"
        desired = spec.max_replicas
    elif current_replicas < spec.min_replicas:
        reason = "Current number of replicas below Spec.MinReplicas"
        desired = spec.min_replicas
    else:
        outcome = _compute_metrics(spec, current_replicas, pods, now, _tolerances(spec))
        statuses = outcome.statuses
        errors = tuple(failure.wrapped for failure in outcome.failures)
        failed = len(outcome.failures)
        if failed >= len(spec.metrics) or (failed > 0 and outcome.replicas < current_replicas):
            # Nothing valid, or the valid metrics want fewer pods than the failing ones
            # might need: report the first failure and leave the target alone.
            first = outcome.failures[0]
            conditions["ScalingActive"] = _condition(
                "ScalingActive", False, first.reason, f"the HPA was unable to compute the replica count: {first.error}"
            )
            summary = f"invalid metrics ({failed} invalid out of {len(spec.metrics)}), first error is: {first.wrapped}"
            return Decision(
                desired=current_replicas,
                scaled=False,
                reason="",
                history=_prune(spec, recommendations, events, now),
                current_metrics=statuses,
                conditions=list(conditions.values()),
                errors=(*errors, summary),
            )
        conditions["ScalingActive"] = _condition(
            "ScalingActive",
            True,
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {outcome.metric}",
        )
        rescale_metric = ""
        if outcome.replicas > desired:
            desired = outcome.replicas
            rescale_metric = outcome.metric
        if desired > current_replicas:
            reason = f"{rescale_metric} above target"
        if desired < current_replicas:
            reason = "All metrics below target"
        if spec.behavior is None:
            normalized = _normalize_legacy(spec, current_replicas, desired, recommendations, now)
        else:
            normalized = _normalize_with_behavior(
                spec, spec.behavior, current_replicas, desired, recommendations, events, now
            )
        recommendations = normalized.recommendations
        desired = normalized.replicas
        conditions["AbleToScale"] = _condition("AbleToScale", True, *normalized.able)
        conditions["ScalingLimited"] = _condition("ScalingLimited", normalized.limited, *normalized.limit)
        rescale = desired != current_replicas

    if rescale:
        conditions["AbleToScale"] = _condition(
            "AbleToScale",
            True,
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
        )
        if spec.behavior is not None:
            events.append((now, desired - current_replicas))
    else:
        desired = current_replicas
        reason = ""

    return Decision(
        desired=desired,
        scaled=rescale,
        reason=reason,
        history=_prune(spec, recommendations, events, now),
        current_metrics=statuses,
        conditions=list(conditions.values()),
        errors=errors,
    )
