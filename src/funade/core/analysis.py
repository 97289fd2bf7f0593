"""Argo Rollouts analysis as pure data and functions: templates, runs, measurements and phases.

A canary is only as safe as the decision that aborts it, and Argo's decision has sharp
edges people trip on (``failureLimit: 3`` fails on the *fourth* failure, errors do not
count towards ``count``, an Inconclusive metric ends the run). This module reproduces
Argo Rollouts' analysis controller (``analysis/analysis.go``, ``utils/analysis/helpers.go``,
``utils/evaluate/evaluate.go``) as values: a run, its state, the measurements due now and
the phase that follows, so the engine can drive it with any clock and any provider, and a
test can replay every documented case without a cluster.

Shape of use::

    run = analysis.new_run([analysis.parse_template(doc)], args={"service-name": "web"})
    state = analysis.start(run, now)
    for task in analysis.next_actions(run, state, now).measure:
        value = provider(task.metric)                      # I/O, elsewhere
        state = analysis.record(run, state, task.metric.name, analysis.measure(task.metric, value, now, now))
    analysis.phase(run, state)                             # (Phase.RUNNING, "")

Where funade departs from Argo it says so: :func:`no_data` turns a query with no samples
into an Inconclusive measurement with a plain message, where Argo would raise an index
error and retry it as an Error.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from funade.core import expr, fields

__all__ = [
    "DEFAULT_CONSECUTIVE_ERROR_LIMIT",
    "DEFAULT_ERROR_RETRY_INTERVAL",
    "DEFAULT_MEASUREMENT_RETENTION",
    "Actions",
    "AnalysisError",
    "AnalysisRun",
    "AnalysisState",
    "AnalysisTemplate",
    "Arg",
    "FieldRef",
    "JobProvider",
    "Measure",
    "Measurement",
    "Metric",
    "MetricResult",
    "Phase",
    "PrometheusProvider",
    "SecretKeyRef",
    "WebProvider",
    "errored",
    "evaluate",
    "job_measurement",
    "measure",
    "merge_templates",
    "new_run",
    "next_actions",
    "no_data",
    "parse_duration",
    "parse_run",
    "parse_template",
    "phase",
    "record",
    "start",
    "status_of",
    "substitute",
    "terminate",
]

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
"""``utils/defaults``: a metric errors on the fifth error in a row."""
DEFAULT_ERROR_RETRY_INTERVAL = timedelta(seconds=10)
"""``analysis.go`` DefaultErrorRetryInterval: an errored measurement is retried after 10 s, whatever the interval."""
DEFAULT_MEASUREMENT_RETENTION = 10
"""``analysis.go`` DefaultMeasurementHistoryLimit: measurements kept per metric."""

_API_VERSION = "argoproj.io/v1alpha1"
_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun")
_PROVIDERS = ("prometheus", "web", "job")
_KNOWN_PROVIDERS = (
    "prometheus", "web", "job", "kayenta", "wavefront", "datadog", "newRelic", "cloudWatch",
    "graphite", "influxdb", "skywalking", "plugin",
)  # fmt: skip
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class AnalysisError(ValueError):
    """A template, run or argument that Argo would refuse; the message names the field."""


_f = fields.Fields(AnalysisError)
_mapping, _list, _str = _f.mapping, _f.items, _f.any_text


class Phase(enum.Enum):
    """AnalysisPhase: of a measurement, a metric and a run."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        """Whether the phase is final (Successful, Failed, Error or Inconclusive)."""
        return self not in (Phase.PENDING, Phase.RUNNING)

    def worse_than(self, other: Phase) -> bool:
        """Argo's ``IsWorse``: order Successful < Running < Pending < Inconclusive < Error < Failed."""
        return _ORDER.index(self) > _ORDER.index(other)


_ORDER = (Phase.SUCCESSFUL, Phase.RUNNING, Phase.PENDING, Phase.INCONCLUSIVE, Phase.ERROR, Phase.FAILED)


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class SecretKeyRef:
    """``valueFrom.secretKeyRef``: the caller reads the Secret and supplies the value."""

    name: str
    key: str


@dataclass(frozen=True)
class FieldRef:
    """``valueFrom.fieldRef.fieldPath``: a path into the owning Rollout, resolved by the caller."""

    field_path: str


@dataclass(frozen=True)
class Arg:
    """One argument: a literal ``value``, a reference to resolve, or neither (must be supplied)."""

    name: str
    value: str | None = None
    value_from: SecretKeyRef | FieldRef | None = None


@dataclass(frozen=True)
class PrometheusProvider:
    """``provider.prometheus``; ``timeout`` in seconds when given."""

    address: str
    query: str
    timeout: int | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WebProvider:
    """``provider.web``: method defaults to GET and timeoutSeconds to 10, as in Argo."""

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    json_path: str | None = None
    timeout_seconds: int = 10


@dataclass(frozen=True, eq=False)
class JobProvider:
    """``provider.job``: the Job's metadata and spec, kept as data for the job runner."""

    spec: Mapping[str, object]
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobProvider) and (self.spec, self.metadata) == (other.spec, other.metadata)

    def __hash__(self) -> int:
        return hash(json.dumps({"spec": self.spec, "metadata": self.metadata}, sort_keys=True, default=str))


Provider = PrometheusProvider | WebProvider | JobProvider


@dataclass(frozen=True)
class Metric:
    """One metric with Argo's defaults applied (limits 0, 0 and 4)."""

    name: str
    provider: Provider
    interval: timedelta | None = None
    count: int | None = None
    initial_delay: timedelta | None = None
    success_condition: str = ""
    failure_condition: str = ""
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT

    @property
    def effective_count(self) -> int | None:
        """Measurements wanted: ``count``, else 1 without an interval, else unbounded (``EffectiveCount``)."""
        if self.count is not None:
            return self.count
        return 1 if self.interval is None else None


@dataclass(frozen=True)
class AnalysisTemplate:
    """An AnalysisTemplate or ClusterAnalysisTemplate; metrics stay raw until args are substituted."""

    kind: str
    name: str
    args: tuple[Arg, ...]
    metrics: tuple[Mapping[str, object], ...]
    dry_run: tuple[str, ...] = ()
    measurement_retention: tuple[tuple[str, int], ...] = ()

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metric names, in order."""
        return tuple(str(m["name"]) for m in self.metrics)


@dataclass(frozen=True)
class AnalysisRun:
    """A run ready to execute: args resolved, metrics parsed, dry-run and retention resolved per metric."""

    name: str
    args: tuple[Arg, ...]
    metrics: tuple[Metric, ...]
    dry_run: frozenset[str] = frozenset()
    retention: tuple[tuple[str, int], ...] = ()

    def metric(self, name: str) -> Metric:
        """The metric called ``name``."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def retention_for(self, name: str) -> int:
        """How many measurements of ``name`` to keep."""
        return dict(self.retention).get(name, DEFAULT_MEASUREMENT_RETENTION)


# ---------------------------------------------------------------------------- parsing


def parse_duration(text: str, where: str) -> timedelta:
    """A Go ``time.ParseDuration`` string (``60s``, ``1m30s``, ``500ms``) as a timedelta."""
    raw = text.strip()
    body = raw.lstrip("+-")
    negative = raw.startswith("-")
    if body == "0":
        return timedelta(0)
    seconds = 0.0
    at = 0
    while at < len(body):
        m = _DURATION_PART.match(body, at)
        if m is None:
            break
        seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        at = m.end()
    if not body or at != len(body):
        raise AnalysisError(f"{where}: invalid duration {text!r} (use Go syntax such as 30s, 5m, 1h30m)")
    if negative:
        raise AnalysisError(f"{where}: duration {text!r} must not be negative")
    return timedelta(seconds=seconds)


def _int_or_str(value: object, where: str) -> int:
    """An IntOrString field (count, limits): an integer or a string of digits."""
    if isinstance(value, bool):
        raise AnalysisError(f"{where}: expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise AnalysisError(f"{where}: expected an integer, got {value!r}")


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for i, item in enumerate(_list(value, where)):
        header = _mapping(item, f"{where}[{i}]")
        out.append((_str(header.get("key"), f"{where}[{i}].key"), _str(header.get("value", ""), f"{where}[{i}].value")))
    return tuple(out)


def _parse_arg(value: object, where: str) -> Arg:
    raw = _mapping(value, where)
    name = _str(raw.get("name"), f"{where}.name")
    literal = raw.get("value")
    if literal is not None and not isinstance(literal, str):
        literal = str(literal)
    ref: SecretKeyRef | FieldRef | None = None
    if raw.get("valueFrom") is not None:
        source = _mapping(raw["valueFrom"], f"{where}.valueFrom")
        if "secretKeyRef" in source:
            secret = _mapping(source["secretKeyRef"], f"{where}.valueFrom.secretKeyRef")
            ref = SecretKeyRef(
                _str(secret.get("name"), f"{where}.valueFrom.secretKeyRef.name"),
                _str(secret.get("key"), f"{where}.valueFrom.secretKeyRef.key"),
            )
        elif "fieldRef" in source:
            path = _mapping(source["fieldRef"], f"{where}.valueFrom.fieldRef").get("fieldPath")
            ref = FieldRef(_str(path, f"{where}.valueFrom.fieldRef.fieldPath"))
        else:
            raise AnalysisError(f"{where}.valueFrom: expected secretKeyRef or fieldRef")
        if literal is not None:
            raise AnalysisError(f"{where}: arg {name} has both value and valueFrom")
    return Arg(name, literal, ref)


def _parse_rules(value: object, where: str, with_limit: bool) -> list[tuple[str, int]]:
    rules: list[tuple[str, int]] = []
    seen: set[str] = set()
    for i, item in enumerate(_list(value, where)):
        rule = _mapping(item, f"{where}[{i}]")
        name = _str(rule.get("metricName"), f"{where}[{i}].metricName")
        if name in seen:
            raise AnalysisError(f"{where}: two rules have the same metricName {name!r}")
        seen.add(name)
        try:
            re.compile(name)
        except re.error as exc:
            raise AnalysisError(f"{where}[{i}].metricName: invalid regular expression: {exc}") from None
        limit = _int_or_str(rule.get("limit", 0), f"{where}[{i}].limit") if with_limit else 0
        rules.append((name, limit))
    return rules


def parse_template(doc: Mapping[str, object]) -> AnalysisTemplate:
    """Read an ``AnalysisTemplate`` or ``ClusterAnalysisTemplate`` (also accepts an ``AnalysisRun``'s spec shape)."""
    kind = doc.get("kind")
    if kind not in _KINDS:
        raise AnalysisError(f"kind: expected one of {', '.join(_KINDS)}, got {kind!r}")
    api = doc.get("apiVersion", _API_VERSION)
    if api != _API_VERSION:
        raise AnalysisError(f"apiVersion: expected {_API_VERSION}, got {api!r}")
    metadata = _mapping(doc.get("metadata", {}), "metadata")
    name = str(metadata.get("name", ""))
    spec = _mapping(doc.get("spec"), "spec")
    args = tuple(_parse_arg(a, f"spec.args[{i}]") for i, a in enumerate(_list(spec.get("args"), "spec.args")))
    metrics: list[Mapping[str, object]] = []
    seen: set[str] = set()
    for i, item in enumerate(_list(spec.get("metrics"), "spec.metrics")):
        raw = _mapping(item, f"spec.metrics[{i}]")
        metric_name = _str(raw.get("name"), f"spec.metrics[{i}].name")
        if metric_name in seen:
            raise AnalysisError(f"spec.metrics[{i}]: duplicate name {metric_name!r}")
        seen.add(metric_name)
        _check_provider(raw, f"spec.metrics[{i}]")
        metrics.append(raw)
    if not metrics:
        raise AnalysisError("spec.metrics: no metrics specified")
    dry_run = tuple(n for n, _ in _parse_rules(spec.get("dryRun"), "spec.dryRun", with_limit=False))
    retention = tuple(_parse_rules(spec.get("measurementRetention"), "spec.measurementRetention", with_limit=True))
    return AnalysisTemplate(str(kind), name, args, tuple(metrics), dry_run, retention)


def _check_provider(raw: Mapping[str, object], where: str) -> str:
    provider = _mapping(raw.get("provider"), f"{where}.provider")
    present = [key for key in provider if provider[key] is not None]
    if not present:
        raise AnalysisError(f"{where}.provider: no provider specified")
    if len(present) > 1:
        raise AnalysisError(f"{where}.provider: multiple providers specified ({', '.join(present)})")
    key = present[0]
    if key not in _PROVIDERS:
        known = "known to Argo but " if key in _KNOWN_PROVIDERS else ""
        raise AnalysisError(
            f"{where}.provider.{key}: provider {known}not supported by funade (use prometheus, web or job)"
        )
    return key


def _parse_provider(raw: Mapping[str, object], where: str) -> Provider:
    key = _check_provider(raw, where)
    body = _mapping(_mapping(raw["provider"], f"{where}.provider")[key], f"{where}.provider.{key}")
    at = f"{where}.provider.{key}"
    if key == "prometheus":
        timeout = body.get("timeout")
        return PrometheusProvider(
            address=_str(body.get("address"), f"{at}.address"),
            query=_str(body.get("query"), f"{at}.query"),
            timeout=None if timeout is None else _int_or_str(timeout, f"{at}.timeout"),
            headers=_headers(body.get("headers"), f"{at}.headers"),
        )
    if key == "web":
        json_body = body.get("jsonBody")
        text_body = body.get("body")
        return WebProvider(
            url=_str(body.get("url"), f"{at}.url"),
            method=_str(body.get("method") or "GET", f"{at}.method").upper(),
            headers=_headers(body.get("headers"), f"{at}.headers"),
            body=json.dumps(json_body) if json_body is not None else (None if text_body is None else str(text_body)),
            json_path=None if body.get("jsonPath") is None else _str(body["jsonPath"], f"{at}.jsonPath"),
            timeout_seconds=_int_or_str(body.get("timeoutSeconds", 10), f"{at}.timeoutSeconds"),
        )
    return JobProvider(
        spec=_mapping(body.get("spec"), f"{at}.spec"),
        metadata=_mapping(body.get("metadata", {}), f"{at}.metadata"),
    )


def _parse_metric(raw: Mapping[str, object], where: str) -> Metric:
    def opt_duration(key: str) -> timedelta | None:
        value = raw.get(key)
        return None if value in (None, "") else parse_duration(_str(value, f"{where}.{key}"), f"{where}.{key}")

    def opt_int(key: str) -> int | None:
        value = raw.get(key)
        return None if value is None else _int_or_str(value, f"{where}.{key}")

    def condition(key: str) -> str:
        text = _str(raw.get(key, ""), f"{where}.{key}")
        if text:
            try:
                expr.compile_expr(text)
            except expr.ExprError as exc:
                raise AnalysisError(f"{where}.{key}: {exc}") from None
        return text

    count = opt_int("count")
    failure_limit = opt_int("failureLimit")
    inconclusive_limit = opt_int("inconclusiveLimit")
    error_limit = opt_int("consecutiveErrorLimit")
    metric = Metric(
        name=_str(raw.get("name"), f"{where}.name"),
        provider=_parse_provider(raw, where),
        interval=opt_duration("interval"),
        count=count,
        initial_delay=opt_duration("initialDelay"),
        success_condition=condition("successCondition"),
        failure_condition=condition("failureCondition"),
        failure_limit=0 if failure_limit is None else failure_limit,
        inconclusive_limit=0 if inconclusive_limit is None else inconclusive_limit,
        consecutive_error_limit=DEFAULT_CONSECUTIVE_ERROR_LIMIT if error_limit is None else error_limit,
    )
    _validate_metric(metric, where)
    return metric


def _validate_metric(metric: Metric, where: str) -> None:
    """``ValidateMetric``; funade also accepts -1 for the limits to mean "never" (Argo ≥ 1.8 docs)."""
    count = metric.count or 0
    if count > 0 and count < metric.failure_limit:
        raise AnalysisError(f"{where}: count must be >= failureLimit")
    if count > 0 and count < metric.inconclusive_limit:
        raise AnalysisError(f"{where}: count must be >= inconclusiveLimit")
    if count > 1 and metric.interval is None:
        raise AnalysisError(f"{where}: interval must be specified when count > 1")
    for key, value in (
        ("failureLimit", metric.failure_limit),
        ("inconclusiveLimit", metric.inconclusive_limit),
        ("consecutiveErrorLimit", metric.consecutive_error_limit),
    ):
        if value < -1:
            raise AnalysisError(f"{where}.{key}: must be >= 0 (or -1 to disable)")
    if metric.count is not None and metric.count < 0:
        raise AnalysisError(f"{where}.count: must be >= 0")


def merge_templates(templates: Sequence[AnalysisTemplate]) -> AnalysisTemplate:
    """``FlattenTemplates``: namespaced templates first, then cluster templates, as Argo orders them."""
    ordered = [t for t in templates if t.kind != "ClusterAnalysisTemplate"]
    ordered += [t for t in templates if t.kind == "ClusterAnalysisTemplate"]
    metrics: list[Mapping[str, object]] = []
    names: set[str] = set()
    for template in ordered:
        for raw in template.metrics:
            name = str(raw["name"])
            if name in names:
                raise AnalysisError(f"two metrics have the same name {name!r} (template {template.name!r})")
            names.add(name)
            metrics.append(raw)
    args: list[Arg] = []
    for template in ordered:
        for arg in template.args:
            for i, prev in enumerate(args):
                if prev.name != arg.name:
                    continue
                if prev.value is not None and arg.value is not None and prev.value != arg.value:
                    raise AnalysisError(
                        f"argument {arg.name!r} specified multiple times with different values: "
                        f"{prev.value!r}, {arg.value!r}"
                    )
                if prev.value is None:
                    args[i] = arg
                break
            else:
                args.append(arg)
    dry_run = _merge_rule_names([n for t in ordered for n in t.dry_run], "dryRun")
    retention = [r for t in ordered for r in t.measurement_retention]
    _merge_rule_names([n for n, _ in retention], "measurementRetention")
    name = ordered[0].name if len(ordered) == 1 else "+".join(t.name for t in ordered)
    return AnalysisTemplate("AnalysisTemplate", name, tuple(args), tuple(metrics), tuple(dry_run), tuple(retention))


def _merge_rule_names(names: list[str], what: str) -> list[str]:
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise AnalysisError(f"two {what} rules have the same metricName {dup!r}")
    return names


def _merge_args(incoming: Mapping[str, str | Arg], template_args: Sequence[Arg]) -> tuple[Arg, ...]:
    """``MergeArgs``: incoming values fill template args; incoming names the template lacks are ignored."""
    merged = list(template_args)
    for name, given in incoming.items():
        for i, arg in enumerate(merged):
            if arg.name != name:
                continue
            if isinstance(given, Arg):
                if given.value is not None:
                    merged[i] = Arg(name, given.value, None)
                elif given.value_from is not None:
                    merged[i] = Arg(name, None, given.value_from)
            else:
                merged[i] = Arg(name, given, None)
    for arg in merged:
        if arg.value is None and arg.value_from is None:
            raise AnalysisError(f"args.{arg.name} was not resolved: no value given")
    return tuple(merged)


def substitute(text: str, args: Mapping[str, str]) -> str:
    """Replace ``{{args.NAME}}`` (spaces inside the braces allowed) with its value; any other tag is an error."""

    def replace_tag(m: re.Match[str]) -> str:
        tag = m.group(1).strip()
        if tag.startswith("args.") and tag[5:] in args:
            return args[tag[5:]]
        raise AnalysisError(f"failed to resolve {{{{{m.group(1)}}}}}: no argument {tag.removeprefix('args.')!r}")

    return _TAG.sub(replace_tag, text)


def _substitute_tree(value: object, args: Mapping[str, str]) -> object:
    if isinstance(value, str):
        return substitute(value, args)
    if isinstance(value, Mapping):
        return {k: _substitute_tree(v, args) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_tree(v, args) for v in value]
    return value


def _match_rules(rules: Iterable[str], names: Sequence[str], what: str) -> list[str]:
    """``GetDryRunMetrics``: each rule is an unanchored regex and must match at least one metric."""
    matched: list[str] = []
    for i, rule in enumerate(rules):
        hits = [n for n in names if re.search(rule, n)]
        if not hits:
            raise AnalysisError(f"{what}[{i}]: rule {rule!r} didn't match any metric name(s)")
        matched += [n for n in hits if n not in matched]
    return matched


def new_run(
    templates: Sequence[AnalysisTemplate],
    args: Mapping[str, str | Arg] | None = None,
    resolved: Mapping[str, str] | None = None,
    *,
    name: str = "",
    dry_run: Sequence[str] = (),
    measurement_retention: Sequence[tuple[str, int]] = (),
) -> AnalysisRun:
    """An AnalysisRun from templates, as a Rollout's analysis step creates one.

    Args:
        templates: AnalysisTemplates and ClusterAnalysisTemplates, merged as Argo does.
        args: values from the Rollout (``name: value`` or an :class:`Arg` carrying ``valueFrom``).
        resolved: values the caller read for ``valueFrom`` args (Secret keys, Rollout fields).
        name: the run's name.
        dry_run: extra dryRun metricName rules from the Rollout.
        measurement_retention: extra (metricName rule, limit) pairs from the Rollout.

    Raises:
        AnalysisError: duplicate metrics, missing args, unresolved references, invalid metrics.
    """
    merged = merge_templates(templates)
    final_args = _merge_args(args or {}, merged.args)
    rules = _merge_rule_names([*dry_run, *merged.dry_run], "dryRun")
    retention = [*measurement_retention, *merged.measurement_retention]
    _merge_rule_names([n for n, _ in retention], "measurementRetention")
    return _build_run(name, final_args, merged.metrics, rules, retention, resolved or {})


def parse_run(doc: Mapping[str, object], resolved: Mapping[str, str] | None = None) -> AnalysisRun:
    """Read an ``AnalysisRun`` document; ``resolved`` supplies values for its ``valueFrom`` args."""
    if doc.get("kind") != "AnalysisRun":
        raise AnalysisError(f"kind: expected AnalysisRun, got {doc.get('kind')!r}")
    template = parse_template(doc)
    for arg in template.args:
        if arg.value is None and arg.value_from is None:
            raise AnalysisError(f"spec.args: args.{arg.name} was not resolved: no value given")
    return _build_run(
        template.name, template.args, template.metrics, list(template.dry_run),
        list(template.measurement_retention), resolved or {},
    )  # fmt: skip


def _build_run(
    name: str,
    args: tuple[Arg, ...],
    raw_metrics: Sequence[Mapping[str, object]],
    dry_run_rules: Sequence[str],
    retention_rules: Sequence[tuple[str, int]],
    resolved: Mapping[str, str],
) -> AnalysisRun:
    values: dict[str, str] = {}
    for arg in args:
        if arg.value is not None:
            values[arg.name] = arg.value
        elif arg.name in resolved:
            values[arg.name] = resolved[arg.name]
        else:
            raise AnalysisError(f"args.{arg.name}: valueFrom {arg.value_from} is not resolved; resolve it first")
    metrics: list[Metric] = []
    for i, raw in enumerate(raw_metrics):
        where = f"spec.metrics[{i}]"
        try:
            substituted = _substitute_tree(raw, values)
        except AnalysisError as exc:
            raise AnalysisError(f"{where} ({raw.get('name')}): {exc}") from None
        metrics.append(_parse_metric(_mapping(substituted, where), where))
    names = [m.name for m in metrics]
    dry = _match_rules(dry_run_rules, names, "dryRun")
    kept: dict[str, int] = {}
    for i, (rule, limit) in enumerate(retention_rules):
        for hit in _match_rules([rule], names, f"measurementRetention[{i}]"):
            if limit > 0:
                kept[hit] = limit
    resolved_args = tuple(Arg(a.name, values[a.name], a.value_from) for a in args)
    return AnalysisRun(name, resolved_args, tuple(metrics), frozenset(dry), tuple(kept.items()))


# ---------------------------------------------------------------------------- measurements


@dataclass(frozen=True, eq=False)
class Measurement:
    """One measurement: phase, the value measured, and when. ``finished_at`` is None while in flight."""

    phase: Phase
    started_at: datetime
    finished_at: datetime | None = None
    value: object = None
    message: str = ""
    resume_at: datetime | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Measurement):
            return NotImplemented
        mine = (self.phase, self.started_at, self.finished_at, self.message, self.resume_at, repr(self.value))
        theirs = (other.phase, other.started_at, other.finished_at, other.message, other.resume_at, repr(other.value))
        return mine == theirs

    def __hash__(self) -> int:
        return hash((self.phase, self.started_at, self.finished_at, self.message))


def _is_nil(value: object) -> bool:
    return value is None


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("asFloat() not supported on bool")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"asFloat() not supported on {type(value).__name__}")


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("asInt() not supported on bool")
    if isinstance(value, float):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip(), 10)
    raise TypeError(f"asInt() not supported on {type(value).__name__}")


def _number(value: object, fn: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}() needs a number, got {type(value).__name__}")
    return float(value)


def condition_env(result: object) -> dict[str, object]:
    """The environment Argo's ``EvalCondition`` gives an expression: ``result`` and its helpers."""
    return {
        "result": result,
        "asInt": _as_int,
        "asFloat": _as_float,
        "isNaN": lambda v: math.isnan(_number(v, "isNaN")),
        "isInf": lambda v: math.isinf(_number(v, "isInf")),
        "isNil": lambda *_: _is_nil(result),
        "default": lambda _value, fallback: fallback if _is_nil(result) else result,
    }


def eval_condition(condition: str, result: object) -> bool:
    """One condition against ``result``; a non-bool outcome is an error, as in Argo."""
    outcome = expr.evaluate(condition, condition_env(result))
    if not isinstance(outcome, bool):
        raise expr.ExprError(f"expected bool, but got {type(outcome).__name__}", condition, 0)
    return outcome


def evaluate(metric: Metric, result: object) -> tuple[Phase, str]:
    """``EvaluateResult``: the phase of one measured value, and an error message when it is Error.

    Neither condition → Successful; only success → Failed when it is false; only failure →
    Successful when it is false; both → Failed if the failure condition holds, Successful if
    only the success condition holds, Inconclusive if neither does.
    """
    success = failure = False
    try:
        if metric.success_condition:
            success = eval_condition(metric.success_condition, result)
        if metric.failure_condition:
            failure = eval_condition(metric.failure_condition, result)
    except expr.ExprError as exc:
        return Phase.ERROR, str(exc)
    if not metric.success_condition and not metric.failure_condition:
        return Phase.SUCCESSFUL, ""
    if not metric.failure_condition:
        failure = not success
    elif not metric.success_condition:
        success = not failure
    if failure:
        return Phase.FAILED, ""
    if not success:
        return Phase.INCONCLUSIVE, ""
    return Phase.SUCCESSFUL, ""


def measure(metric: Metric, result: object, started_at: datetime, finished_at: datetime) -> Measurement:
    """A completed measurement of ``result`` assessed against the metric's conditions."""
    assessed, message = evaluate(metric, result)
    return Measurement(assessed, started_at, finished_at, result, message)


def job_measurement(succeeded: bool, message: str, started_at: datetime, finished_at: datetime) -> Measurement:
    """A job metric's measurement: Successful when the Job completed, Failed when it failed (Argo's job provider)."""
    return Measurement(Phase.SUCCESSFUL if succeeded else Phase.FAILED, started_at, finished_at, succeeded, message)


def errored(message: str, started_at: datetime, finished_at: datetime) -> Measurement:
    """A measurement the provider could not take (connection refused, bad query, job failed to start)."""
    return Measurement(Phase.ERROR, started_at, finished_at, None, message)


def no_data(query: str, started_at: datetime, finished_at: datetime) -> Measurement:
    """A query that returned no samples: Inconclusive with a plain message (funade's choice, not Argo's).

    Argo hands the empty vector to the condition, where ``result[0]`` fails and the
    measurement is an Error retried every 10 s until ``consecutiveErrorLimit`` ends the run.
    Issue 7 asks for a clear Inconclusive instead, which pauses the rollout and says why.
    """
    one_line = " ".join(query.split())
    return Measurement(Phase.INCONCLUSIVE, started_at, finished_at, [], f"no data for query {one_line}")


# ---------------------------------------------------------------------------- run state


@dataclass(frozen=True)
class MetricResult:
    """``MetricResult``: counters, kept measurements and the metric's phase."""

    name: str
    phase: Phase = Phase.PENDING
    measurements: tuple[Measurement, ...] = ()
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    dry_run: bool = False
    message: str = ""

    @property
    def last(self) -> Measurement | None:
        """The latest measurement, in flight or completed."""
        return self.measurements[-1] if self.measurements else None


@dataclass(frozen=True)
class AnalysisState:
    """Everything a run has observed: when it started, per-metric results, its phase and why."""

    started_at: datetime | None = None
    results: tuple[MetricResult, ...] = ()
    phase: Phase = Phase.PENDING
    message: str = ""
    terminate: bool = False

    def result(self, name: str) -> MetricResult | None:
        """The result for metric ``name``, if it has been measured."""
        for result in self.results:
            if result.name == name:
                return result
        return None


@dataclass(frozen=True)
class Measure:
    """Take (``mode="run"``), resume or terminate a measurement of ``metric`` now."""

    metric: Metric
    mode: str = "run"


@dataclass(frozen=True)
class Actions:
    """What to do now and when to look again (None: nothing will become due by itself)."""

    measure: tuple[Measure, ...]
    wake_at: datetime | None


def start(run: AnalysisRun, now: datetime) -> AnalysisState:
    """A fresh state for ``run``, started at ``now`` (initialDelay counts from here)."""
    del run
    return AnalysisState(started_at=now, phase=Phase.RUNNING)


def _terminating(run: AnalysisRun, state: AnalysisState) -> bool:
    """``IsTerminating``: asked to stop, or a non-dry-run metric already Failed, Error or Inconclusive."""
    if state.terminate:
        return True
    bad = (Phase.FAILED, Phase.ERROR, Phase.INCONCLUSIVE)
    return any(r.phase in bad and r.name not in run.dry_run for r in state.results)


def next_actions(run: AnalysisRun, state: AnalysisState, now: datetime) -> Actions:
    """``generateMetricTasks`` and ``calculateNextReconcileTime``: measurements due at ``now``, and the next wake.

    A measurement is due when ``now >= last.finished_at + interval`` (10 s after an Error);
    Argo compares with a strict "after" and relies on the requeue landing a little late,
    funade uses ``>=`` so that calling again at ``wake_at`` always makes progress.
    """
    if state.phase.completed:
        return Actions((), None)
    terminating = _terminating(run, state)
    started = state.started_at or now
    tasks: list[Measure] = []
    wake: datetime | None = None

    def wake_by(at: datetime) -> None:
        nonlocal wake
        if wake is None or at < wake:
            wake = at

    for metric in run.metrics:
        result = state.result(metric.name)
        if result is not None and result.phase.completed:
            continue
        last = result.last if result else None
        if last is not None and last.finished_at is None:
            if last.resume_at is not None and last.resume_at > now:
                wake_by(last.resume_at)
                continue
            tasks.append(Measure(metric, "terminate" if terminating else "resume"))
            continue
        if terminating:
            continue
        if last is None:
            if metric.initial_delay is not None and started + metric.initial_delay > now:
                wake_by(started + metric.initial_delay)
                continue
            tasks.append(Measure(metric, "run"))
            continue
        assert result is not None and last.finished_at is not None
        wanted = metric.effective_count
        if wanted is not None and result.count >= wanted:
            continue
        if last.phase is Phase.ERROR:
            interval = DEFAULT_ERROR_RETRY_INTERVAL
        elif metric.interval is not None:
            interval = metric.interval
        else:
            interval = DEFAULT_ERROR_RETRY_INTERVAL
        due = last.finished_at + interval
        if now >= due:
            tasks.append(Measure(metric, "run"))
        else:
            wake_by(due)
    return Actions(tuple(tasks), wake)


def record(run: AnalysisRun, state: AnalysisState, metric: str, measurement: Measurement) -> AnalysisState:
    """Add (or, for an in-flight one, replace) a measurement, update counters, reassess and trim history.

    Counting is Argo's ``runMeasurements``: Successful, Failed and Inconclusive add to
    ``count`` and reset the consecutive-error streak; an Error adds to ``error`` and the
    streak but never to ``count``. A completed run ignores late measurements.
    """
    if state.phase.completed:
        return state
    run.metric(metric)  # unknown names raise KeyError
    current = state.result(metric) or MetricResult(metric, Phase.RUNNING, dry_run=metric in run.dry_run)
    kept = list(current.measurements)
    in_flight = bool(kept) and kept[-1].finished_at is None
    if in_flight:
        kept[-1] = measurement
    else:
        kept.append(measurement)
    updated = replace(current, measurements=tuple(kept))
    if measurement.phase.completed and measurement.finished_at is not None:
        ph = measurement.phase
        if ph is Phase.ERROR:
            updated = replace(updated, error=updated.error + 1, consecutive_error=updated.consecutive_error + 1)
        else:
            updated = replace(
                updated,
                count=updated.count + 1,
                consecutive_error=0,
                successful=updated.successful + (ph is Phase.SUCCESSFUL),
                failed=updated.failed + (ph is Phase.FAILED),
                inconclusive=updated.inconclusive + (ph is Phase.INCONCLUSIVE),
            )
    elif measurement.phase.completed:
        raise AnalysisError(f"metric {metric}: a completed measurement needs finished_at")
    results = [r for r in state.results if r.name != metric]
    order = [m.name for m in run.metrics]
    results.append(updated)
    results.sort(key=lambda r: order.index(r.name))
    return _trim(run, _settle(run, replace(state, results=tuple(results))))


def terminate(run: AnalysisRun, state: AnalysisState) -> AnalysisState:
    """Ask the run to stop (``spec.terminate``), as a Rollout does when it is promoted or aborted.

    Metrics without a breached limit become Successful; a run with a breached
    ``failureLimit`` stays Failed.
    """
    return _settle(run, replace(state, terminate=True))


def phase(run: AnalysisRun, state: AnalysisState) -> tuple[Phase, str]:
    """The run's phase and message (``assessRunStatus``) for this state."""
    assessed = _settle(run, state)
    return assessed.phase, assessed.message


def _settle(run: AnalysisRun, state: AnalysisState) -> AnalysisState:
    """Assess until stable: Argo re-reconciles at once after a metric turns Failed, Error or Inconclusive.

    ``IsTerminating`` reads the metric phases stored by the previous pass, so the pass that
    marks a metric Failed leaves the others Running and the next one ends the run; the
    status update requeues the run immediately in Argo, so funade does both passes here.
    """
    once = _assess(run, state)
    return once if once.phase.completed else _assess(run, once)


def _limit_breach(metric: Metric, result: MetricResult) -> tuple[Phase | None, str]:
    """``assessMetricFailureInconclusiveOrError``: the last breach checked wins (Error, Inconclusive, Failed)."""
    found: tuple[Phase | None, str] = (None, "")
    if metric.failure_limit >= 0 and result.failed > metric.failure_limit:
        found = (Phase.FAILED, f"failed ({result.failed}) > failureLimit ({metric.failure_limit})")
    if metric.inconclusive_limit >= 0 and result.inconclusive > metric.inconclusive_limit:
        found = (
            Phase.INCONCLUSIVE,
            f"inconclusive ({result.inconclusive}) > inconclusiveLimit ({metric.inconclusive_limit})",
        )
    limit = metric.consecutive_error_limit
    if limit >= 0 and result.consecutive_error > limit:
        found = (Phase.ERROR, f"consecutiveErrors ({result.consecutive_error}) > consecutiveErrorLimit ({limit})")
    return found


def _metric_phase(metric: Metric, result: MetricResult, terminating: bool) -> Phase:
    """``assessMetricStatus``."""
    if result.phase.completed:
        return result.phase
    last = result.last
    if last is None:
        return Phase.SUCCESSFUL if terminating else Phase.PENDING
    if not last.phase.completed:
        return Phase.RUNNING
    breached, _ = _limit_breach(metric, result)
    if breached is not None:
        return breached
    wanted = metric.effective_count
    if wanted is not None and result.count >= wanted:
        return Phase.SUCCESSFUL
    return Phase.SUCCESSFUL if terminating else Phase.RUNNING


def _assess(run: AnalysisRun, state: AnalysisState) -> AnalysisState:
    """``assessRunStatus``: settle each metric's phase, then the run's (worst non-dry-run metric)."""
    if state.phase.completed:
        return state
    terminating = _terminating(run, state)
    worst: Phase | None = None
    message = "Run Terminated" if state.terminate else ""
    everything_completed = True
    results: list[MetricResult] = []
    for metric in run.metrics:
        result = state.result(metric.name)
        if result is None:
            everything_completed = False
            continue
        status = _metric_phase(metric, result, terminating)
        if status != result.phase:
            last = result.last
            result = replace(result, phase=status, message=last.message if last else result.message)
        if not status.completed:
            everything_completed = False
        else:
            _, why = _limit_breach(metric, result)
            if metric.name not in run.dry_run:
                if worst is None or status.worse_than(worst):
                    worst = status
                    if why:
                        message = f'Metric "{metric.name}" assessed {status.value} due to {why}'
                        if result.message:
                            message += f': "Error Message: {result.message}"'
            else:
                if worst is None:
                    worst = Phase.SUCCESSFUL
                if why:
                    result = replace(result, message=f"Metric assessed {status.value} due to {why}")
        results.append(result)
    by_name = {r.name: r for r in results}
    merged = tuple(by_name.get(r.name, r) for r in state.results)
    if terminating:
        final = worst or Phase.SUCCESSFUL
    elif not everything_completed or worst is None:
        final, message = Phase.RUNNING, ""
    else:
        final = worst
    return replace(state, results=merged, phase=final, message=message.strip())


def _trim(run: AnalysisRun, state: AnalysisState) -> AnalysisState:
    """``garbageCollectMeasurements``: keep the newest N measurements per metric (10 unless retention says)."""
    trimmed = []
    for result in state.results:
        limit = run.retention_for(result.name)
        over = len(result.measurements) > limit
        trimmed.append(replace(result, measurements=result.measurements[-limit:]) if over else result)
    return replace(state, results=tuple(trimmed))


def status_of(state: AnalysisState) -> dict[str, object]:
    """The run's status in Argo's AnalysisRun ``status`` layout."""
    return {
        "phase": state.phase.value,
        "message": state.message,
        "startedAt": state.started_at.isoformat() if state.started_at else None,
        "metricResults": [
            {
                "name": r.name,
                "phase": r.phase.value,
                "count": r.count,
                "successful": r.successful,
                "failed": r.failed,
                "inconclusive": r.inconclusive,
                "error": r.error,
                "consecutiveError": r.consecutive_error,
                "dryRun": r.dry_run,
                "message": r.message,
                "measurements": [
                    {
                        "phase": m.phase.value,
                        "startedAt": m.started_at.isoformat(),
                        "finishedAt": m.finished_at.isoformat() if m.finished_at else None,
                        "value": m.value,
                        "message": m.message,
                    }
                    for m in r.measurements
                ],
            }
            for r in state.results
        ],
    }
