"""Istio VirtualService and DestinationRule objects as the local target's routing.

On the local target there is no mesh: each Service is a loopback port in front of
HAProxy (`traffic`). A VirtualService's HTTP routes and a DestinationRule's subsets and
traffic policy become that Service's `services.Routing`, with Istio's semantics and
defaults. What HAProxy cannot do is refused, naming the object and the field, as Istio's
validating webhook would refuse an invalid one; fields that change nothing on one
machine (gateways, ``exportTo``, HTTP/2 settings) are accepted with a warning.

Fields Istio does not know are refused too (the webhook is strict), except the seed's
``trafficPolicy.circuitBreaker``, an old name that Istio would refuse: it is ignored with
a warning so the seed applies. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NoReturn

from funade.core import services as svc
from funade.core import traffic

__all__ = ["API_VERSIONS", "IstioError", "check", "routing"]

API_VERSIONS = ("networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1")
"""The ``apiVersion`` values accepted for both kinds."""

_KINDS = ("VirtualService", "DestinationRule")
_ALL = "all"  # the pool of every endpoint of a Service (`services.plane`)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NANOS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_IGNORED_HEADERS = ("uri", "scheme", "method", "authority")  # Istio ignores these keys in `headers`
_CLUSTER_SUFFIX = ("svc", "cluster", "local")

Obj = Mapping[str, Any]


class IstioError(ValueError):
    """An Istio object the local target cannot apply; names the object and the field."""

    def __init__(self, obj: str, field: str, message: str) -> None:
        super().__init__(f"{obj}: {field}: {message}")
        self.object = obj  # e.g. "virtualservice/shop/web"
        self.field = field  # e.g. "spec.http[1].retries.retryOn"
        self.message = message


@dataclass
class _Ctx:
    """The object being read, and the warnings gathered so far."""

    where: str
    warnings: list[str] = field(default_factory=list)

    def fail(self, path: str, message: str) -> NoReturn:
        raise IstioError(self.where, path, message)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.where}: {path}: {message}")


# -- the schema: every field Istio knows, and what the local target does with it -------------

_Node = Callable[[object, str, _Ctx], None]


def _str(pattern: re.Pattern[str] | None = None, hint: str = "") -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if not isinstance(value, str):
            ctx.fail(path, f"{value!r} is not a string")
        if pattern is not None and not pattern.match(value):
            ctx.fail(path, f"{value!r}: {hint}")

    return walk


def _int(low: int = 0, high: int = 2**31 - 1) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            ctx.fail(path, f"{value!r} is not an integer")
        if not low <= value <= high:
            ctx.fail(path, f"{value} is out of range ({low}-{high})")

    return walk


def _bool(value: object, path: str, ctx: _Ctx) -> None:
    if not isinstance(value, bool):
        ctx.fail(path, f"{value!r} is not true or false")


def _duration(zero: bool = False) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        _seconds(value, path, ctx, zero=zero)

    return walk


def _list(item: _Node, required: bool = False) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if not isinstance(value, list):
            ctx.fail(path, "must be a list")
        if required and not value:
            ctx.fail(path, "at least one entry is required")
        for i, entry in enumerate(value):
            if entry is None:
                ctx.fail(f"{path}[{i}]", "may not be null")
            item(entry, f"{path}[{i}]", ctx)

    return walk


def _labels(value: object, path: str, ctx: _Ctx) -> None:
    if not isinstance(value, Mapping):
        ctx.fail(path, "must map label names to strings")
    for key, label in value.items():
        if not isinstance(key, str) or not isinstance(label, str):
            ctx.fail(f"{path}[{key}]", f"{label!r}: label values are strings (quote numbers and booleans)")


def _message(fields: Mapping[str, _Node], *, required: tuple[str, ...] = (), oneof: tuple[str, ...] = ()) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if not isinstance(value, Mapping):
            ctx.fail(path, "must be a mapping")
        for name in required:
            if value.get(name) in (None, "", [], {}):
                ctx.fail(_join(path, name), "required")
        chosen = [name for name in oneof if value.get(name) is not None]
        if len(chosen) > 1:
            ctx.fail(path, f"only one of {', '.join(oneof)} may be set, not {' and '.join(chosen)}")
        for name, entry in value.items():
            node = fields.get(name)
            if node is None:
                ctx.fail(_join(path, str(name)), "unknown field (Istio's validation refuses it)")
            if entry is not None:
                node(entry, _join(path, name), ctx)

    return walk


def _refuse(reason: str) -> _Node:
    """A field the local target cannot honour: refused unless it holds its default (unset, 0, false, empty)."""

    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if value:
            ctx.fail(path, reason)

    return walk


def _ignore(reason: str, *, always: bool = False) -> _Node:
    """A field that changes nothing on the local target: a warning unless it holds its default."""

    def walk(value: object, path: str, ctx: _Ctx) -> None:
        if value or always:
            ctx.warn(path, reason)

    return walk


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_STRING_MATCH = _message({"exact": _str(), "prefix": _str(), "regex": _str()}, oneof=("exact", "prefix", "regex"))


def _headers(value: object, path: str, ctx: _Ctx) -> None:
    if not isinstance(value, Mapping):
        ctx.fail(path, "must map header names to string matches")
    for name, match in value.items():
        at = f"{path}[{name}]"
        if not isinstance(name, str) or not name:
            ctx.fail(at, "a header name is required")
        if match is None:
            ctx.fail(at, "may not be null: use {} to match any value of a present header")
        _STRING_MATCH(match, at, ctx)


def _simple_lb(value: object, path: str, ctx: _Ctx) -> None:
    if value in ("UNSPECIFIED", "ROUND_ROBIN"):
        return
    if value in ("LEAST_REQUEST", "LEAST_CONN", "RANDOM"):
        ctx.warn(path, f"{value}: the local target balances round robin (also for Istio's default, LEAST_REQUEST)")
        return
    if value == "PASSTHROUGH":
        ctx.fail(path, "PASSTHROUGH is not supported: the local target balances across the Service's endpoints")
    ctx.fail(path, f"{value!r}: unknown load balancer (UNSPECIFIED, ROUND_ROBIN, LEAST_REQUEST, RANDOM)")


def _h2_upgrade(value: object, path: str, ctx: _Ctx) -> None:
    if value not in ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"):
        ctx.fail(path, f"{value!r}: one of DEFAULT, DO_NOT_UPGRADE, UPGRADE")
    if value == "UPGRADE":
        ctx.warn(path, "no effect: the local target speaks HTTP/1.1 to the endpoints")


def _tls(value: object, path: str, ctx: _Ctx) -> None:
    if not isinstance(value, Mapping):
        ctx.fail(path, "must be a mapping")
    mode = value.get("mode", "DISABLE")
    others = sorted(str(k) for k, v in value.items() if k != "mode" and v)
    if mode == "DISABLE" and not others:
        return
    if mode == "ISTIO_MUTUAL" and not others:
        ctx.warn(
            _join(path, "mode"), "no mesh on the local target: endpoints are reached in plain HTTP, as behind a sidecar"
        )
        return
    if mode not in ("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"):
        ctx.fail(_join(path, "mode"), f"{mode!r}: one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL")
    what = f"{path}.{others[0]}" if others and mode in ("DISABLE", "ISTIO_MUTUAL") else _join(path, "mode")
    ctx.fail(what, "TLS origination to the endpoints is not supported by the local target")


def _zero_only(reason: str) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        _int()(value, path, ctx)
        if value:
            ctx.fail(path, reason)

    return walk


def _false_only(reason: str) -> _Node:
    def walk(value: object, path: str, ctx: _Ctx) -> None:
        _bool(value, path, ctx)
        if value:
            ctx.fail(path, reason)

    return walk


_HEADERS_ONLY = "the local target matches requests on headers only"
_NO_EFFECT = "no effect on the local target"

_DESTINATION = _message(
    {
        "host": _str(),
        "subset": _str(),
        "port": _refuse("destination ports are not supported: the routes apply to every port of the Service"),
    },
    required=("host",),
)

_HTTP_ROUTE = _message(
    {
        "name": _str(),
        "match": _list(
            _message(
                {
                    "name": _str(),
                    "headers": _headers,
                    "uri": _refuse(_HEADERS_ONLY),
                    "scheme": _refuse(_HEADERS_ONLY),
                    "method": _refuse(_HEADERS_ONLY),
                    "authority": _refuse(_HEADERS_ONLY),
                    "port": _refuse(_HEADERS_ONLY),
                    "sourceLabels": _refuse(_HEADERS_ONLY),
                    "sourceNamespace": _refuse(_HEADERS_ONLY),
                    "gateways": _refuse(_HEADERS_ONLY + " (no gateways)"),
                    "queryParams": _refuse(_HEADERS_ONLY),
                    "withoutHeaders": _refuse("negative header matches are not supported by the local target"),
                    "ignoreUriCase": _ignore("no effect without uri matching"),
                    "statPrefix": _ignore(_NO_EFFECT),
                }
            )
        ),
        "route": _list(
            _message(
                {
                    "destination": _DESTINATION,
                    "weight": _int(0, 100),
                    "headers": _refuse("header manipulation is not supported by the local target"),
                },
                required=("destination",),
            ),
            required=True,
        ),
        "timeout": _duration(zero=True),
        "retries": _message(
            {
                "attempts": _int(),
                "perTryTimeout": _duration(),
                "retryOn": _str(),
                "retryRemoteLocalities": _ignore("no effect: the local target has one locality"),
                "retryIgnorePreviousHosts": _ignore(
                    "no effect: HAProxy always retries on another endpoint when it can"
                ),
                "backoff": _ignore("no effect: HAProxy retries without Envoy's backoff"),
            }
        ),
        "redirect": _refuse("redirects are not supported by the local target"),
        "directResponse": _refuse("direct responses are not supported by the local target"),
        "delegate": _refuse("delegate VirtualServices are not supported by the local target"),
        "rewrite": _refuse("URI and authority rewrites are not supported by the local target"),
        "fault": _refuse("fault injection is not supported by the local target"),
        "mirror": _refuse("traffic mirroring is not supported by the local target"),
        "mirrors": _refuse("traffic mirroring is not supported by the local target"),
        "mirrorPercent": _refuse("traffic mirroring is not supported by the local target"),
        "mirror_percent": _refuse("traffic mirroring is not supported by the local target"),
        "mirrorPercentage": _refuse("traffic mirroring is not supported by the local target"),
        "corsPolicy": _refuse("CORS policies are not supported by the local target"),
        "headers": _refuse("header manipulation is not supported by the local target"),
    },
    required=("route",),
)

_VIRTUAL_SERVICE = _message(
    {
        "hosts": _list(_str(), required=True),
        "gateways": _ignore("no gateways on the local target: the routes apply to the Service's loopback port"),
        "http": _list(_HTTP_ROUTE, required=True),
        "tcp": _refuse("TCP routes are not supported by the local target (HTTP only)"),
        "tls": _refuse("TLS routes are not supported by the local target (HTTP only)"),
        "exportTo": _ignore("no effect: one machine, every namespace sees the routes"),
    },
    required=("hosts", "http"),
)

_HTTP2_ONLY = "no effect: the local target speaks HTTP/1.1 to the endpoints"
_TRAFFIC_POLICY = _message(
    {
        "loadBalancer": _message(
            {
                "simple": _simple_lb,
                "consistentHash": _refuse("consistent-hash (sticky) balancing is not supported by the local target"),
                "localityLbSetting": _ignore("no effect: the local target has one locality"),
                "warmupDurationSecs": _ignore("not applied: new endpoints get their full share at once"),
                "warmup": _ignore("not applied: new endpoints get their full share at once"),
            },
            oneof=("simple", "consistentHash"),
        ),
        "connectionPool": _message(
            {
                "tcp": _message(
                    {
                        "maxConnections": _int(),
                        "connectTimeout": _duration(),
                        "tcpKeepalive": _ignore(_NO_EFFECT),
                        "maxConnectionDuration": _ignore(_NO_EFFECT),
                        "idleTimeout": _ignore(_NO_EFFECT),
                    }
                ),
                "http": _message(
                    {
                        "http1MaxPendingRequests": _int(),
                        "http2MaxRequests": _ignore(
                            "not enforced: HAProxy runs one request at a time per endpoint connection, "
                            "so tcp.maxConnections bounds them"
                        ),
                        "maxRequestsPerConnection": _ignore(_NO_EFFECT),
                        "maxRetries": _ignore("not enforced: the local target does not cap concurrent retries"),
                        "idleTimeout": _ignore(_NO_EFFECT),
                        "h2UpgradePolicy": _h2_upgrade,
                        "useClientProtocol": _ignore(_HTTP2_ONLY),
                        "maxConcurrentStreams": _ignore(_HTTP2_ONLY),
                    }
                ),
            }
        ),
        "outlierDetection": _message(
            {
                "consecutive5xxErrors": _int(),
                "consecutiveGatewayErrors": _zero_only(
                    "HAProxy counts every 5xx alike; use consecutive5xxErrors instead"
                ),
                "consecutiveErrors": _zero_only("deprecated gateway-error count; use consecutive5xxErrors instead"),
                "splitExternalLocalOriginErrors": _false_only("HAProxy does not count local-origin errors apart"),
                "consecutiveLocalOriginFailures": _ignore("no effect without splitExternalLocalOriginErrors"),
                "interval": _duration(),
                "baseEjectionTime": _duration(),
                "maxEjectionPercent": _int(0, 100),
                "minHealthPercent": _zero_only("HAProxy cannot turn ejection off below a share of healthy endpoints"),
            }
        ),
        "tls": _tls,
        "portLevelSettings": _refuse(
            "per-port policies are not supported: the local target has one policy per Service"
        ),
        "tunnel": _refuse("tunnelling is not supported by the local target"),
        "proxyProtocol": _refuse("the PROXY protocol to endpoints is not supported by the local target"),
        "retryBudget": _ignore("not enforced: the local target has no retry budget"),
        "circuitBreaker": _ignore("this is not an Istio field (Istio calls it outlierDetection); ignored", always=True),
    }
)

_DESTINATION_RULE = _message(
    {
        "host": _str(),
        "trafficPolicy": _TRAFFIC_POLICY,
        "subsets": _list(
            _message(
                {
                    "name": _str(_DNS_LABEL, "a subset name is a DNS label (lowercase letters, digits and '-')"),
                    "labels": _labels,
                    "trafficPolicy": _refuse(
                        "subset traffic policies are not supported: the local target has one policy per Service; "
                        "set it in spec.trafficPolicy"
                    ),
                },
                required=("name",),
            )
        ),
        "exportTo": _ignore("no effect: one machine, every namespace sees the rule"),
        "workloadSelector": _refuse("the local target cannot tell client workloads apart"),
    },
    required=("host",),
)


# -- durations ----------------------------------------------------------------------------------


def _seconds(value: object, path: str, ctx: _Ctx, *, zero: bool = False) -> float:
    """A duration such as "30s", "1.5s", "100ms", "1m", "1h30m" (Go's format), in seconds.

    Istio wants at least 1 ms and whole milliseconds; ``zero`` also allows "0s" (a route
    timeout of 0 disables it).
    """
    if not isinstance(value, str) or not value:
        ctx.fail(path, f"{value!r} is not a duration such as '10s' or '100ms'")
    nanos = Decimal(0)
    if value != "0":
        at = 0
        while at < len(value):
            part = _DURATION_PART.match(value, at)
            if part is None:
                ctx.fail(path, f"{value!r} is not a duration such as '10s' or '100ms'")
            nanos += Decimal(part.group(1)) * _NANOS[part.group(2)]
            at = part.end()
    if nanos == 0 and zero:
        return 0.0
    if nanos < 10**6:
        ctx.fail(path, f"{value!r}: a duration must be at least 1ms")
    if nanos % 10**6:
        ctx.fail(path, f"{value!r}: only durations to ms precision are supported")
    return float(nanos / 10**9)


# -- reading objects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """A destination of a route, as written: its host and subset, and where it was."""

    path: str
    host: str
    subset: str | None


@dataclass(frozen=True)
class _HttpRoute:
    path: str
    route: traffic.Route
    targets: tuple[_Target, ...]


@dataclass(frozen=True)
class _VirtualService:
    where: str
    namespace: str
    hosts: tuple[str, ...]
    routes: tuple[_HttpRoute, ...]


@dataclass(frozen=True)
class _DestinationRule:
    where: str
    namespace: str
    host: str
    subsets: tuple[svc.Subset, ...]
    outlier: traffic.OutlierDetection | None
    limits: traffic.ConnectionPool


def _identity(obj: object) -> tuple[_Ctx, str, str, Obj]:
    """The object's context, kind and namespace, and its spec, after the envelope is checked."""
    if not isinstance(obj, Mapping):
        raise IstioError("?", "", "an Istio object must be a mapping")
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default") if isinstance(meta, Mapping) else "default"
    name = str(meta.get("name") or "?") if isinstance(meta, Mapping) else "?"
    ctx = _Ctx(f"{str(kind).lower()}/{namespace}/{name}")
    if kind not in _KINDS:
        ctx.fail("kind", f"{kind!r}: VirtualService or DestinationRule")
    if obj.get("apiVersion") not in API_VERSIONS:
        ctx.fail("apiVersion", f"{obj.get('apiVersion')!r}: one of {', '.join(API_VERSIONS)}")
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        ctx.fail("spec", "must be a mapping")
    return ctx, str(kind), namespace, spec


def _carried(route: traffic.Route) -> traffic.TrafficError | None:
    """Why HAProxy cannot carry ``route`` (`traffic`'s reason), or None."""
    pools = tuple(traffic.Pool(name) for name in dict.fromkeys(d.pool for d in route.destinations))
    listener = traffic.Listener("probe", 1, pools=pools, routes=(route,))
    try:
        traffic.check(traffic.DataPlane((listener,)))
    except traffic.TrafficError as exc:
        return exc
    return None


def _header_matches(raw: Obj, path: str, ctx: _Ctx) -> tuple[traffic.HeaderMatch, ...]:
    found: list[traffic.HeaderMatch] = []
    for name, match in raw.items():
        at = f"{path}[{name}]"
        if name.lower() in _IGNORED_HEADERS:
            ctx.warn(at, "ignored, as Istio ignores this header name in headers")
            continue
        kind, value = next(((k, match[k]) for k in ("exact", "prefix", "regex") if match.get(k) is not None), ("", ""))
        if not kind or (kind == "prefix" and not value):
            header = traffic.HeaderMatch(name)  # presence only
        elif not value:
            ctx.fail(f"{at}.{kind}", "matching an empty value is not supported: use {} to check the header is present")
        else:
            header = traffic.HeaderMatch(name, value, traffic.MatchKind(kind))
        error = _carried(traffic.Route((traffic.Destination(_ALL),), matches=(traffic.Match(headers=(header,)),)))
        if error is not None:
            ctx.fail(at if error.field.endswith(".name") else f"{at}.{kind}", error.message)
        found.append(header)
    return tuple(found)


def _retries(raw: Obj | None, path: str, ctx: _Ctx) -> traffic.Retries:
    """Istio's retry policy: its default without a ``retries`` block, none with ``attempts: 0``."""
    if raw is None:
        return traffic.Retries()
    attempts = int(raw.get("attempts") or 0)
    if attempts <= 0:
        return traffic.Retries(attempts=0)
    per_try = raw.get("perTryTimeout")
    conditions = tuple(part.strip() for part in str(raw.get("retryOn") or "").split(",") if part.strip())
    return traffic.Retries(
        attempts=attempts,
        per_try_timeout=_seconds(per_try, f"{path}.perTryTimeout", ctx) if per_try is not None else None,
        retry_on=conditions or traffic.DEFAULT_RETRY_ON,
    )


def _http_route(raw: Obj, path: str, ctx: _Ctx) -> _HttpRoute:
    matches: list[traffic.Match] = []
    catch_all = not raw.get("match")
    for m, match in enumerate(raw.get("match") or []):
        headers = _header_matches(match.get("headers") or {}, f"{path}.match[{m}].headers", ctx)
        if not headers:
            catch_all = True  # an entry without conditions matches every request
        matches.append(traffic.Match(headers=headers))
    targets: list[_Target] = []
    weights: dict[str, int] = {}  # per pool; a subset named twice gets both weights, as in Envoy
    entries = raw["route"]
    for d, entry in enumerate(entries):
        at = f"{path}.route[{d}]"
        destination = entry["destination"]
        subset = destination.get("subset") or None
        pool = subset or _ALL
        # Istio: a lone destination takes all traffic whatever its weight
        weights[pool] = weights.get(pool, 0) + (100 if len(entries) == 1 else int(entry.get("weight") or 0))
        if weights[pool] > 100:
            ctx.fail(f"{at}.weight", f"the weights of {pool!r} add up to more than 100")
        targets.append(_Target(f"{at}.destination", str(destination["host"]), subset))
    destinations = [traffic.Destination(pool, weight) for pool, weight in weights.items()]
    if sum(d.weight for d in destinations) == 0:
        ctx.fail(f"{path}.route", "every weight is 0: the route sends traffic nowhere")
    timeout = _seconds(raw["timeout"], f"{path}.timeout", ctx, zero=True) if raw.get("timeout") is not None else 0.0
    retries = _retries(raw.get("retries"), f"{path}.retries", ctx)
    route = traffic.Route(
        destinations=tuple(destinations),
        matches=() if catch_all else tuple(matches),
        timeout=timeout or None,
        retries=retries,
        name=str(raw.get("name") or path.removeprefix("spec.")),
    )
    error = _carried(traffic.Route((traffic.Destination(_ALL),), timeout=route.timeout, retries=retries))
    if error is not None:
        ctx.fail(f"{path}.retries.retryOn", error.message)
    return _HttpRoute(path, route, tuple(targets))


def _virtual_service(ctx: _Ctx, namespace: str, spec: Obj) -> _VirtualService:
    _VIRTUAL_SERVICE(spec, "spec", ctx)
    routes: list[_HttpRoute] = []
    for i, raw in enumerate(spec["http"]):
        http = _http_route(raw, f"spec.http[{i}]", ctx)
        if routes and not routes[-1].route.matches:
            ctx.warn(http.path, f"never used: {routes[-1].path} before it matches every request")
            continue
        routes.append(http)
    return _VirtualService(ctx.where, namespace, tuple(spec["hosts"]), tuple(routes))


def _destination_rule(ctx: _Ctx, namespace: str, spec: Obj) -> _DestinationRule:
    _DESTINATION_RULE(spec, "spec", ctx)
    subsets: list[svc.Subset] = []
    for i, raw in enumerate(spec.get("subsets") or []):
        name = raw["name"]
        if name == _ALL:
            ctx.fail(f"spec.subsets[{i}].name", f"{_ALL!r} is reserved on the local target for every endpoint")
        if any(s.name == name for s in subsets):
            ctx.fail(f"spec.subsets[{i}].name", f"{name!r} is defined twice")
        subsets.append(svc.Subset(name, dict(raw.get("labels") or {})))
    policy = spec.get("trafficPolicy") or {}
    pool = policy.get("connectionPool") or {}
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    at = "spec.trafficPolicy.connectionPool"
    limits = traffic.ConnectionPool(
        max_connections=tcp.get("maxConnections") or None,  # 0: Istio's default, unlimited
        max_pending=http.get("http1MaxPendingRequests") or None,
        connect_timeout=_seconds(tcp["connectTimeout"], f"{at}.tcp.connectTimeout", ctx)
        if tcp.get("connectTimeout") is not None
        else traffic.ConnectionPool().connect_timeout,
    )
    outlier = None
    raw = policy.get("outlierDetection")
    if raw is not None:
        at = "spec.trafficPolicy.outlierDetection"
        defaults = traffic.OutlierDetection()
        count = raw.get("consecutive5xxErrors")
        outlier = traffic.OutlierDetection(
            consecutive_5xx=defaults.consecutive_5xx if count is None else count,
            interval=_seconds(raw["interval"], f"{at}.interval", ctx) if raw.get("interval") else defaults.interval,
            base_ejection_time=_seconds(raw["baseEjectionTime"], f"{at}.baseEjectionTime", ctx)
            if raw.get("baseEjectionTime")
            else defaults.base_ejection_time,
            # 0 is proto3's "unset": Istio then leaves Envoy's default
            max_ejection_percent=raw.get("maxEjectionPercent") or defaults.max_ejection_percent,
        )
    return _DestinationRule(ctx.where, namespace, str(spec["host"]), tuple(subsets), outlier, limits)


def _read(obj: Obj) -> tuple[_Ctx, _VirtualService | _DestinationRule]:
    ctx, kind, namespace, spec = _identity(obj)
    if kind == "VirtualService":
        return ctx, _virtual_service(ctx, namespace, spec)
    return ctx, _destination_rule(ctx, namespace, spec)


def check(obj: Obj) -> list[str]:
    """Validate one VirtualService or DestinationRule for the local target.

    Returns:
        Warnings for fields that have no effect on the local target.

    Raises:
        IstioError: naming the object and the field the local target cannot apply.
    """
    ctx, _ = _read(obj)
    return ctx.warnings


# -- from objects to each Service's routing --------------------------------------------------------


def _service(host: str, namespace: str, index: Mapping[tuple[str, str], svc.ServiceSpec]) -> svc.ServiceSpec | None:
    """The Service a host names: ``name`` (in ``namespace``), ``name.ns``, ``name.ns.svc[.cluster.local]``."""
    parts = host.lower().rstrip(".").split(".")
    if "*" in host or not all(parts):
        return None
    if len(parts) == 1:
        return index.get((namespace, parts[0]))
    if len(parts) == 2 or tuple(parts[2:]) in (_CLUSTER_SUFFIX[:1], _CLUSTER_SUFFIX):
        return index.get((parts[1], parts[0]))
    return None


def _target(vs: _VirtualService, ctx: _Ctx, index: Mapping[tuple[str, str], svc.ServiceSpec]) -> svc.ServiceSpec:
    """The Service a VirtualService routes: the one its hosts name, else the one its destinations name."""
    named = {s.ref: s for host in vs.hosts if (s := _service(host, vs.namespace, index)) is not None}
    if len(named) > 1:
        ctx.fail("spec.hosts", f"name several Services ({', '.join(sorted(named))}): route each in its own object")
    if named:
        return next(iter(named.values()))
    found: dict[str, svc.ServiceSpec] = {}
    for http in vs.routes:
        for target in http.targets:
            service = _service(target.host, vs.namespace, index)
            if service is None:
                ctx.fail(
                    f"{target.path}.host", f"{target.host!r} names no Service in {vs.namespace!r} (Istio would drop it)"
                )
            found[service.ref] = service
    if len(found) != 1:
        ctx.fail(
            "spec.hosts",
            f"{', '.join(vs.hosts)} name no Service, and the destinations name {len(found)} "
            f"({', '.join(sorted(found))}): "
            "the local target cannot tell which Service to route",
        )
    (service,) = found.values()
    hosts = ", ".join(vs.hosts)
    ctx.warn("spec.hosts", f"{hosts} name no Service: the routes apply to {service.ref}, which the destinations name")
    return service


def routing(
    virtual_services: Sequence[Obj],
    destination_rules: Sequence[Obj],
    services: Sequence[svc.ServiceSpec],
) -> tuple[dict[str, svc.Routing], list[str]]:
    """Each Service's routing from the VirtualServices and DestinationRules that name it.

    Hosts resolve as in Istio, short names in the object's namespace. A VirtualService
    whose hosts name no Service (an external name behind a gateway) routes the one Service
    its destinations name. Routes keep their order; a catch-all route with Istio's default
    timeout and retries becomes `services.Routing.default`, and without a catch-all
    unmatched requests get 404, as from Envoy. A DestinationRule alone gives subsets and
    policies, all requests going to every endpoint.

    Returns:
        The routing per Service ref (``namespace/name``), and warnings.

    Raises:
        IstioError: an object the local target cannot apply, a destination outside the
            routed Service, a subset no DestinationRule defines, or two objects of a kind
            for one Service.
    """
    index = {(s.namespace, s.name): s for s in services}
    warnings: list[str] = []
    routed: dict[str, tuple[_Ctx, _VirtualService]] = {}
    for obj in virtual_services:
        ctx, vs = _read(obj)
        if not isinstance(vs, _VirtualService):
            ctx.fail("kind", "a VirtualService is expected here")
        service = _target(vs, ctx, index)
        for http in vs.routes:
            for target in http.targets:
                named = _service(target.host, vs.namespace, index)
                if named is None or named.ref != service.ref:
                    ctx.fail(
                        f"{target.path}.host",
                        f"{target.host!r} is not service {service.ref}: "
                        "the local target routes between subsets of one Service",
                    )
        if service.ref in routed:
            ctx.fail("spec.hosts", f"service {service.ref} is already routed by {routed[service.ref][1].where}")
        routed[service.ref] = (ctx, vs)
        warnings += ctx.warnings
    rules: dict[str, _DestinationRule] = {}
    for obj in destination_rules:
        ctx, dr = _read(obj)
        if not isinstance(dr, _DestinationRule):
            ctx.fail("kind", "a DestinationRule is expected here")
        warnings += ctx.warnings
        if "*" in dr.host:
            ctx.fail("spec.host", f"{dr.host!r}: wildcard hosts are not supported: name the Service")
        owner = _service(dr.host, dr.namespace, index)
        if owner is None:
            warnings.append(f"{dr.where}: spec.host: {dr.host!r} names no Service; ignored, as Istio ignores it")
            continue
        if owner.ref in rules:
            ctx.fail("spec.host", f"service {owner.ref} already has {rules[owner.ref].where}")
        rules[owner.ref] = dr
    combined = {ref: _combine(rules.get(ref), routed.get(ref)) for ref in sorted(routed.keys() | rules.keys())}
    return combined, warnings


def _combine(dr: _DestinationRule | None, routed: tuple[_Ctx, _VirtualService] | None) -> svc.Routing:
    """One Service's routing: the DestinationRule's subsets and policies, the VirtualService's routes."""
    if dr is None:
        base = svc.Routing(source="")
    else:
        base = svc.Routing(source=dr.where, subsets=dr.subsets, outlier=dr.outlier, limits=dr.limits)
    if routed is None:
        return base
    ctx, vs = routed
    names = {s.name for s in base.subsets}
    for http in vs.routes:
        for target in http.targets:
            if target.subset is not None and target.subset not in names:
                ctx.fail(
                    f"{target.path}.subset",
                    f"{target.subset!r} is not defined by a DestinationRule for this Service (Istio would answer 503)",
                )
    routes = [http.route for http in vs.routes]
    default: tuple[traffic.Destination, ...] = ()
    last = routes[-1]
    if not last.matches and last.timeout is None and last.retries == traffic.Retries():
        # The listener's default carries exactly this policy. A catch-all with its own timeout
        # or retries stays the last route, and the default stays empty (it is never reached).
        default = last.destinations
        routes.pop()
    source = ", ".join(o.where for o in (vs, dr) if o is not None)
    return replace(base, source=source, routes=tuple(routes), default=default)
