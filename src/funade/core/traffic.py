"""The local target's data plane as data, and its translation to HAProxy.

A `DataPlane` says which loopback ports listen, which endpoints stand behind each, how
requests are routed between pools of endpoints (Istio semantics: routes in order, the
first match wins; match entries are ORed, conditions within one are ANDed; a weighted
split gives each destination ``weight / sum(weights)``), and how failures are handled
(timeouts, retries, outlier detection, connection limits). Nothing here does I/O:
`render_config` and `render_maps` produce the files HAProxy loads, and `runtime_commands`
the runtime-API commands that move a running HAProxy from one plane to another, or
None when only a (seamless) reload can.

How it maps to HAProxy 2.6:

- One frontend per listener, one backend per (pool, route policy) where a policy is a
  route's timeout and retries: HAProxy keeps ``retries``/``retry-on``/``timeout server``
  per backend. Every pool has a backend for every policy of its listener, so moving
  weight to a pool that had none never needs a reload.
- Weighted splits: the frontend draws ``rand(10000)`` once per request and each route
  looks the draw up in the listener's map file, whose integer-range keys name the
  backend (``0:8999 ns.web:80:stable``). A weight change is one ``prepare map`` /
  ``add map`` / ``commit map`` sequence, and HAProxy's commit swaps map versions
  atomically: a request sees the old split or the new one, never a mix. A pool of
  weight 0 has no range at all, so it gets exactly nothing.
- Endpoints are servers named after them. Ready is ``weight 1``, draining ``weight 0``
  (no new requests, in-flight ones finish, health checks go on), down is maintenance.
  The same states are rendered in the configuration, so a reload or a restart comes up
  in the state the runtime API had reached. Servers are added and deleted with
  ``add server`` / ``del server`` (dynamic servers need no pre-allocated slots).
- Outlier detection: ``observe layer7`` + ``error-limit`` + ``on-error mark-down`` on
  the servers eject one on its ``consecutive_5xx``-th error in a row (immediately, as
  Envoy's consecutive-5xx detector does), and a TCP health check every
  ``base_ejection_time`` while it is down brings it back (``rise 1``); ``interval`` is
  the check period of servers in rotation. HAProxy cannot cap ejections
  (``max_ejection_percent``): `ejection_cap_commands` computes the re-admissions that
  enforce Envoy's cap from the observed server states, for the adapter to apply every
  ``interval``.
- TCP listeners (`Mode.TCP`, what a Service's in-cluster proxy uses for ports that are not
  declared HTTP) keep the same frontends, maps and backends in ``mode tcp``: the pick is
  drawn per connection by ``tcp-request content``, retries cover connects only, outlier
  detection observes layer 4, and idle connections live for an hour.
- Connection limits: ``max_connections`` is each server's ``maxconn`` (requests beyond
  it queue); ``max_pending`` answers 503 once the backend's queue holds that many, as
  Envoy's pending-request overflow does.

Differences from Istio that cannot be expressed, and are documented rather than refused
because every Istio default would hit them: an ejection lasts ``base_ejection_time`` each
time (Envoy multiplies it by the number of ejections); HAProxy counts 500, 502-504 and
506-599, timeouts and broken responses as errors (not 501/505); retries on ``5xx`` cover
HAProxy's retryable statuses 500-504 only; the route ``timeout`` bounds each try
(HAProxy has no per-request deadline across retries); connection limits apply per
endpoint, not per pool. gRPC retry conditions and ``refused-stream`` are accepted and
have no effect: HAProxy talks HTTP/1.1 to the endpoints, where they can never occur.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

__all__ = [
    "BUCKETS",
    "DEFAULT_RETRY_ON",
    "NO_ROUTE_BACKEND",
    "VERSION",
    "Action",
    "Applied",
    "ConnectionPool",
    "CookieMatch",
    "DataPlane",
    "Destination",
    "Endpoint",
    "EndpointState",
    "HeaderMatch",
    "Listener",
    "Match",
    "MatchKind",
    "Mode",
    "OutlierDetection",
    "Pool",
    "Proxy",
    "Retries",
    "Route",
    "ServerRef",
    "ServerStatus",
    "TrafficError",
    "backend_name",
    "check",
    "ejection_cap_commands",
    "frontend_name",
    "map_file",
    "render_config",
    "render_maps",
    "runtime_commands",
    "servers",
    "with_endpoint_state",
]

BUCKETS = 10_000
"""The split resolution: weights are applied to ``rand(BUCKETS)``, 0.01 % steps."""

NO_ROUTE_BACKEND = "funade.no-route"
"""Answers 404 when no route matches, as Envoy does (``NR``)."""

VERSION = "{version}"
"""Placeholder in ``add map @{version}`` / ``commit map @{version}``: the number the
preceding ``prepare map`` answered with. The runtime client substitutes it."""

DEFAULT_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled", "503")
"""Istio's default ``retryOn``: its ``DefaultPolicy`` also retries status 503 (retriable-status-codes)."""

_PICK = "txn.funade_pick"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./:@+-]*$")
_HAPROXY_RETRY_STATUSES = frozenset({401, 403, 404, 408, 425, 500, 501, 502, 503, 504})
# Envoy's retry conditions as HAProxy 2.6 ``retry-on`` keywords. Empty: no effect on
# HTTP/1.1 (HTTP/2 stream refusal, gRPC status codes).
_RETRY_ON: dict[str, tuple[str, ...]] = {
    "connect-failure": ("conn-failure",),
    "reset": ("empty-response", "junk-response", "response-timeout"),
    "gateway-error": ("conn-failure", "502", "503", "504"),
    "5xx": ("conn-failure", "empty-response", "junk-response", "response-timeout", "500", "501", "502", "503", "504"),
    "refused-stream": (),
    "retriable-status-codes": (),
    "cancelled": (),
    "deadline-exceeded": (),
    "internal": (),
    "resource-exhausted": (),
    "unavailable": (),
}
_RETRY_ORDER = ("conn-failure", "empty-response", "junk-response", "response-timeout")


class TrafficError(ValueError):
    """A data plane HAProxy cannot carry; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# -- the model -------------------------------------------------------------------------------


class EndpointState(enum.Enum):
    """Whether an endpoint takes requests."""

    READY = "ready"
    DRAINING = "draining"  # no new requests; in-flight ones finish
    DOWN = "down"  # no requests at all (HAProxy maintenance)


class Mode(enum.StrEnum):
    """What a listener understands of its connections."""

    HTTP = "http"  # requests: header routes, retries on statuses, per-request balancing
    TCP = "tcp"  # opaque byte streams (kube-proxy's level): weights and balancing per connection


class MatchKind(enum.Enum):
    """How a header or cookie value is compared (Istio ``StringMatch``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"  # the whole value must match, as RE2 full match in Envoy


@dataclass(frozen=True)
class Endpoint:
    """One backend address: a pod's IP and target port."""

    name: str
    address: str
    port: int
    state: EndpointState = EndpointState.READY


@dataclass(frozen=True)
class Pool:
    """A named set of endpoints (an Istio subset, or all endpoints of a Service)."""

    name: str
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class HeaderMatch:
    """A request header condition; an empty value only checks that the header is present."""

    name: str
    value: str = ""
    kind: MatchKind = MatchKind.EXACT


@dataclass(frozen=True)
class CookieMatch:
    """A request cookie condition; an empty value only checks that the cookie is present."""

    name: str
    value: str = ""
    kind: MatchKind = MatchKind.EXACT


@dataclass(frozen=True)
class Match:
    """One Istio match entry: all of its conditions must hold. No condition: always true."""

    headers: tuple[HeaderMatch, ...] = ()
    cookies: tuple[CookieMatch, ...] = ()


@dataclass(frozen=True)
class Destination:
    """A pool and its weight (0-100) in a split; each gets ``weight / sum(weights)``."""

    pool: str
    weight: int = 100


@dataclass(frozen=True)
class Retries:
    """Istio ``HTTPRetry``: at most ``1 + attempts`` tries; 0 disables retries.

    ``per_try_timeout`` defaults to the route timeout; ``retry_on`` takes Envoy's
    condition names and HTTP status codes ("503").
    """

    attempts: int = 2
    per_try_timeout: float | None = None
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON


@dataclass(frozen=True)
class Route:
    """Requests matching any of ``matches`` (all when empty) go to the weighted ``destinations``."""

    destinations: tuple[Destination, ...]
    matches: tuple[Match, ...] = ()
    timeout: float | None = None  # None: no timeout, as in Istio
    retries: Retries = field(default_factory=Retries)
    name: str = ""


@dataclass(frozen=True)
class OutlierDetection:
    """Istio ``outlierDetection`` with Istio's defaults; ``consecutive_5xx=0`` disables it."""

    consecutive_5xx: int = 5
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10


@dataclass(frozen=True)
class ConnectionPool:
    """Istio ``connectionPool`` limits (None: unlimited) and the connect timeout (Istio: 10 s)."""

    max_connections: int | None = None
    max_pending: int | None = None
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Listener:
    """One loopback port: its pools, its routes in order, and where unmatched requests go.

    Requests no route matches go to ``default`` (a weighted split, with Istio's default
    retries and no timeout); when ``default`` is empty they get 404, as Envoy answers.

    A `Mode.TCP` listener takes no header or cookie routes; its weights pick a pool per
    connection, retries only cover failed connects, and route timeouts do not apply.
    """

    name: str  # e.g. "namespace/service:port"
    port: int
    pools: tuple[Pool, ...] = ()
    routes: tuple[Route, ...] = ()
    default: tuple[Destination, ...] = ()
    outlier: OutlierDetection | None = None
    limits: ConnectionPool = field(default_factory=ConnectionPool)
    address: str = "127.0.0.1"
    mode: Mode = Mode.HTTP


@dataclass(frozen=True)
class DataPlane:
    """Every listener one HAProxy carries.

    ``contained``: the HAProxy runs in a network namespace of its own (a Service's
    in-cluster proxy container, reached on the pods' network), where listeners may bind
    every address (``0.0.0.0``). On the host, listeners bind loopback addresses only.
    """

    listeners: tuple[Listener, ...] = ()
    contained: bool = False


@dataclass(frozen=True)
class ServerStatus:
    """One HAProxy server as the runtime API reports it (``show stat``)."""

    backend: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "no check", possibly with " 1/3"
    weight: int
    sessions: int  # current sessions (in-flight requests, with HTTP)
    last_change: int  # seconds since the last status change
    address: str = ""

    @property
    def ejected(self) -> bool:
        """Marked down by health checks or observed errors (not by an administrator)."""
        return self.status.split(" ")[0] == "DOWN"

    @property
    def draining(self) -> bool:
        """Takes no new requests but is neither down nor in maintenance (weight 0, or DRAIN)."""
        state = self.status.split(" ")[0]
        return state == "DRAIN" or (self.weight == 0 and state not in ("DOWN", "MAINT"))


@dataclass(frozen=True)
class ServerRef:
    """Which listener, pool and endpoint a HAProxy server stands for."""

    listener: str
    pool: str
    endpoint: Endpoint


class Action(enum.StrEnum):
    """How a plane reached the running proxy."""

    UNCHANGED = "unchanged"  # it carried the plane already
    RUNTIME = "runtime"  # runtime-API commands, no reload
    RELOAD = "reload"  # a seamless reload: same master, new worker, listeners kept open
    START = "start"  # nothing ran
    RESTART = "restart"  # the process had died (killed, crashed)


@dataclass(frozen=True)
class Applied:
    """What applying a plane took, and the runtime commands it ran."""

    action: Action
    commands: tuple[str, ...] = ()
    pid: int | None = None  # the master process


class Proxy(Protocol):
    """The data plane's process: what services and rollouts ask of it."""

    async def ensure(self, plane: DataPlane | None = None) -> Applied:
        """Make the running proxy carry ``plane`` (default: the last one), starting it if needed."""
        ...

    async def alive(self) -> bool: ...

    async def servers(self) -> list[ServerStatus]: ...

    async def cap_ejections(self) -> list[str]:
        """Re-admit servers ejected beyond ``max_ejection_percent`` (HAProxy has no such cap); the commands run."""
        ...

    async def stop(self) -> bool: ...


# -- names ------------------------------------------------------------------------------------


def frontend_name(listener: Listener) -> str:
    """The HAProxy frontend of a listener: its name with every character HAProxy refuses as '.'."""
    return re.sub(r"[^A-Za-z0-9_.:-]", ".", listener.name)


def backend_name(listener: Listener, pool: str, policy: int = 0) -> str:
    """The backend of ``pool`` for the listener's ``policy``-th route policy."""
    base = f"{frontend_name(listener)}:{pool}"
    return base if policy == 0 else f"{base}:{policy}"


def map_file(listener: Listener, map_dir: str) -> str:
    """Where the listener's weight map lives."""
    return f"{map_dir.rstrip('/')}/{frontend_name(listener)}.map"


# -- validation -------------------------------------------------------------------------------


def _where(listener: Listener) -> str:
    return f"listener {listener.name}"


def check(plane: DataPlane) -> None:
    """Raise `TrafficError` naming the first field HAProxy cannot carry."""
    names: set[str] = set()
    ids: dict[str, str] = {}
    binds: set[tuple[str, int]] = set()
    for index, listener in enumerate(plane.listeners):
        where = f"listeners[{index}]"
        if not listener.name or _CONTROL.search(listener.name):
            raise TrafficError(f"{where}.name", f"{listener.name!r}: a listener needs a printable name")
        if listener.name in names:
            raise TrafficError(f"{where}.name", f"{listener.name!r} is used twice")
        names.add(listener.name)
        fid = frontend_name(listener)
        if fid in ids:
            raise TrafficError(f"{where}.name", f"{listener.name!r} and {ids[fid]!r} both become {fid!r} in HAProxy")
        ids[fid] = listener.name
        _check_listener(listener, plane.contained)
        if (listener.address, listener.port) in binds:
            raise TrafficError(f"{_where(listener)}: port", f"{listener.address}:{listener.port} is used twice")
        binds.add((listener.address, listener.port))


def _check_listener(listener: Listener, contained: bool) -> None:
    where = _where(listener)
    try:
        loopback = ipaddress.ip_address(listener.address).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not (contained and listener.address == "0.0.0.0"):
        raise TrafficError(f"{where}: address", f"{listener.address!r}: listeners bind loopback addresses only")
    if listener.mode is Mode.TCP:
        for r, route in enumerate(listener.routes):
            if route.matches:
                raise TrafficError(
                    f"{where}: routes[{r}].matches", "header and cookie matches need HTTP; the listener is TCP"
                )
    if not 1 <= listener.port <= 65535:
        raise TrafficError(f"{where}: port", f"{listener.port} is not a TCP port")
    pools: set[str] = set()
    for p, pool in enumerate(listener.pools):
        if not _NAME.match(pool.name):
            raise TrafficError(
                f"{where}: pools[{p}].name",
                f"{pool.name!r}: pool names are letters, digits, '-', '_' and '.', starting with a letter or digit",
            )
        if pool.name in pools:
            raise TrafficError(f"{where}: pools[{p}].name", f"{pool.name!r} is used twice")
        pools.add(pool.name)
        _check_endpoints(f"{where}: pools[{p}]", pool)
    for r, route in enumerate(listener.routes):
        _check_route(f"{where}: routes[{r}]", route, pools)
    if listener.default:
        _check_destinations(f"{where}: default", listener.default, pools)
    if listener.outlier is not None:
        _check_outlier(f"{where}: outlier", listener.outlier)
    limits = listener.limits
    for name, value in (("max_connections", limits.max_connections), ("max_pending", limits.max_pending)):
        if value is not None and value < 1:
            raise TrafficError(f"{where}: limits.{name}", f"{value}: must be at least 1")
    _positive(f"{where}: limits.connect_timeout", limits.connect_timeout)


def _check_endpoints(where: str, pool: Pool) -> None:
    seen: set[str] = set()
    for e, endpoint in enumerate(pool.endpoints):
        if not _NAME.match(endpoint.name):
            raise TrafficError(
                f"{where}.endpoints[{e}].name",
                f"{endpoint.name!r}: endpoint names are letters, digits, '-', '_' and '.'",
            )
        if endpoint.name in seen:
            raise TrafficError(f"{where}.endpoints[{e}].name", f"{endpoint.name!r} is used twice in the pool")
        seen.add(endpoint.name)
        try:
            ipaddress.ip_address(endpoint.address)
        except ValueError:
            raise TrafficError(
                f"{where}.endpoints[{e}].address", f"{endpoint.address!r} is not an IP address"
            ) from None
        if not 1 <= endpoint.port <= 65535:
            raise TrafficError(f"{where}.endpoints[{e}].port", f"{endpoint.port} is not a TCP port")


def _check_route(where: str, route: Route, pools: set[str]) -> None:
    if _CONTROL.search(route.name):
        raise TrafficError(f"{where}.name", f"{route.name!r} holds control characters")
    for m, match in enumerate(route.matches):
        for h, header in enumerate(match.headers):
            _check_condition(f"{where}.matches[{m}].headers[{h}]", header.name, header.value, header.kind)
        for c, cookie in enumerate(match.cookies):
            _check_condition(f"{where}.matches[{m}].cookies[{c}]", cookie.name, cookie.value, cookie.kind)
    _check_destinations(f"{where}.destinations", route.destinations, pools)
    if route.timeout is not None:
        _positive(f"{where}.timeout", route.timeout)
    retries = route.retries
    if retries.attempts < 0:
        raise TrafficError(f"{where}.retries.attempts", f"{retries.attempts}: must be 0 or more")
    if retries.per_try_timeout is not None:
        _positive(f"{where}.retries.per_try_timeout", retries.per_try_timeout)
    for i, condition in enumerate(retries.retry_on):
        _retry_keywords(f"{where}.retries.retry_on[{i}]", condition)


def _check_condition(where: str, name: str, value: str, kind: MatchKind) -> None:
    if not _TOKEN.match(name):
        raise TrafficError(
            f"{where}.name", f"{name!r}: HAProxy matches names made of letters, digits, '-', '_' and '.' only"
        )
    if _CONTROL.search(value):
        raise TrafficError(f"{where}.{kind.value}", f"{value!r} holds control characters")
    if kind is MatchKind.REGEX and value:
        try:
            re.compile(value)
        except re.error as exc:
            raise TrafficError(f"{where}.regex", f"{value!r} is not a valid regular expression: {exc}") from None


def _check_destinations(where: str, destinations: Sequence[Destination], pools: set[str]) -> None:
    if not destinations:
        raise TrafficError(where, "a route needs at least one destination")
    seen: set[str] = set()
    for d, destination in enumerate(destinations):
        if destination.pool not in pools:
            raise TrafficError(f"{where}[{d}].pool", f"{destination.pool!r} is not a pool of the listener")
        if destination.pool in seen:
            raise TrafficError(f"{where}[{d}].pool", f"{destination.pool!r} appears twice in one split")
        seen.add(destination.pool)
        if not 0 <= destination.weight <= 100:
            raise TrafficError(f"{where}[{d}].weight", f"{destination.weight}: weights go from 0 to 100")
    if sum(d.weight for d in destinations) == 0:
        raise TrafficError(f"{where}", "every weight is 0: the split sends traffic nowhere")


def _check_outlier(where: str, outlier: OutlierDetection) -> None:
    if outlier.consecutive_5xx < 0:
        raise TrafficError(f"{where}.consecutive_5xx", f"{outlier.consecutive_5xx}: must be 0 or more")
    _positive(f"{where}.interval", outlier.interval)
    _positive(f"{where}.base_ejection_time", outlier.base_ejection_time)
    if not 0 <= outlier.max_ejection_percent <= 100:
        raise TrafficError(f"{where}.max_ejection_percent", f"{outlier.max_ejection_percent}: a percentage 0-100")


def _positive(where: str, seconds: float) -> None:
    if not seconds > 0 or math.isinf(seconds):
        raise TrafficError(where, f"{seconds}: must be a positive duration")
    if seconds < 0.001:
        raise TrafficError(where, f"{seconds}: HAProxy counts whole milliseconds")


def _retry_keywords(where: str, condition: str) -> tuple[str, ...]:
    if condition in _RETRY_ON:
        return _RETRY_ON[condition]
    if condition.isdigit():
        if int(condition) in _HAPROXY_RETRY_STATUSES:
            return (condition,)
        codes = ", ".join(str(c) for c in sorted(_HAPROXY_RETRY_STATUSES))
        raise TrafficError(where, f"HAProxy retries on status {codes} only, not {condition}")
    raise TrafficError(where, f"{condition!r}: HAProxy has no retry condition for it")


# -- layout: which backends a listener needs ----------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    """What HAProxy keeps per backend: the per-try timeout and the retries."""

    server_timeout: float | None
    retries: int
    retry_on: tuple[str, ...]


def _policy(route: Route) -> _Policy:
    retries = route.retries
    per_try = retries.per_try_timeout if retries.attempts > 0 else None
    if per_try is not None and route.timeout is not None:
        per_try = min(per_try, route.timeout)
    keywords: list[str] = []
    for condition in retries.retry_on:
        keywords.extend(k for k in _retry_keywords("retry_on", condition) if k not in keywords)
    keywords.sort(key=lambda k: (k.isdigit(), _RETRY_ORDER.index(k) if k in _RETRY_ORDER else 0, k))
    if retries.attempts == 0 or not keywords:
        return _Policy(per_try or route.timeout, 0, ("none",))
    return _Policy(per_try or route.timeout, retries.attempts, tuple(keywords))


def _all_routes(listener: Listener) -> list[Route]:
    """The listener's routes followed by its default (a route that matches everything)."""
    routes = list(listener.routes)
    if listener.default:
        routes.append(Route(destinations=listener.default, name="default"))
    return routes


def _policies(listener: Listener) -> list[_Policy]:
    policies: list[_Policy] = []
    for route in _all_routes(listener):
        policy = _policy(route)
        if policy not in policies:
            policies.append(policy)
    return policies or [_policy(Route(destinations=()))]


def _backends(listener: Listener) -> list[tuple[str, Pool, _Policy]]:
    return [
        (backend_name(listener, pool.name, k), pool, policy)
        for k, policy in enumerate(_policies(listener))
        for pool in listener.pools
    ]


def servers(plane: DataPlane) -> dict[tuple[str, str], ServerRef]:
    """Every (backend, server) HAProxy runs for ``plane``, and what it stands for."""
    found: dict[tuple[str, str], ServerRef] = {}
    for listener in plane.listeners:
        for backend, pool, _ in _backends(listener):
            for endpoint in pool.endpoints:
                found[(backend, endpoint.name)] = ServerRef(listener.name, pool.name, endpoint)
    return found


# -- rendering ----------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _quote(value: str) -> str:
    """A single-quoted HAProxy word (no escapes inside); a quote closes, escapes and reopens."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _address(endpoint: Endpoint) -> str:
    ip = ipaddress.ip_address(endpoint.address)
    return f"[{ip}]:{endpoint.port}" if ip.version == 6 else f"{ip}:{endpoint.port}"


def _condition(fetch: str, name: str, value: str, kind: MatchKind) -> str:
    if not value and fetch == "req.cook":
        # HAProxy 2.6 misses a lone empty cookie ("Cookie: name=") in req.cook*; read the header
        pattern = r"(?:^|;)\s*" + re.escape(name) + "="
        return f"req.fhdr(cookie) -m reg -- {_quote(pattern)}"
    if not value:
        return f"req.hdr_cnt({name}) gt 0"
    if kind is MatchKind.EXACT:
        return f"{fetch}({name}) -m str -- {_quote(value)}"
    if kind is MatchKind.PREFIX:
        return f"{fetch}({name}) -m beg -- {_quote(value)}"
    return f"{fetch}({name}) -m reg -- {_quote(f'^(?:{value})$')}"


def _server_args(listener: Listener, endpoint: Endpoint) -> str:
    """Everything after ``server NAME ADDR``: the same in the file and in ``add server``."""
    args = [f"weight {0 if endpoint.state is EndpointState.DRAINING else 1}"]
    limits = listener.limits
    if limits.max_connections is not None:
        args.append(f"maxconn {limits.max_connections}")
    outlier = listener.outlier
    if outlier is not None and outlier.consecutive_5xx > 0:
        n = outlier.consecutive_5xx
        ejection = _duration(outlier.base_ejection_time)
        args.append(
            f"check inter {_duration(outlier.interval)} fastinter {ejection} downinter {ejection} rise 1 fall {n} "
            f"observe {'layer4' if listener.mode is Mode.TCP else 'layer7'} error-limit {n} on-error mark-down"
        )
    return " ".join(args)


def _checks(listener: Listener) -> bool:
    return listener.outlier is not None and listener.outlier.consecutive_5xx > 0


def render_config(
    plane: DataPlane,
    *,
    runtime_socket: str,
    map_dir: str,
    hard_stop_after: float = 60.0,
) -> str:
    """The complete haproxy.cfg for ``plane``.

    Args:
        plane: what to carry; `check` must accept it (`TrafficError` otherwise).
        runtime_socket: the admin socket (unix path), which also hands the listening
            sockets to the next process on reload (``expose-fd listeners``).
        map_dir: where `render_maps`' files are written (absolute path).
        hard_stop_after: how long an old process may keep serving in-flight requests
            after a reload.
    """
    check(plane)
    for what, path in (("runtime_socket", runtime_socket), ("map_dir", map_dir)):
        if not _SAFE_PATH.match(path):
            raise TrafficError(what, f"{path!r}: an absolute path without spaces or quotes is needed")
    lines = [
        "# Written by funade: every change here is overwritten.",
        "global",
        f"    stats socket {runtime_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    hard-stop-after {_duration(hard_stop_after)}",
        # Never share a port with another process: a second HAProxy (another funade home) on
        # the same port would silently get half the connections. Reloads pass the sockets on.
        "    noreuseport",
        "",
        "defaults",
        "    mode http",
        "    balance roundrobin",
        "    option redispatch 1",
        "    option idle-close-on-response",
        "    http-reuse safe",
        "    timeout connect 10s",
        "    timeout client 60s",
        "    timeout server 1h",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 30s",
        "    timeout queue 10s",
        "    timeout check 10s",
        "",
        f"backend {NO_ROUTE_BACKEND}",
        "    http-request return status 404",
    ]
    for listener in plane.listeners:
        lines += ["", *_frontend(listener, map_dir)]
        for backend, pool, policy in _backends(listener):
            lines += ["", *_backend(listener, backend, pool, policy)]
    return "\n".join(lines) + "\n"


def _frontend(listener: Listener, map_dir: str) -> list[str]:
    ip = ipaddress.ip_address(listener.address)
    bind = f"[{ip}]:{listener.port}" if ip.version == 6 else f"{ip}:{listener.port}"
    path = map_file(listener, map_dir)
    lines = [f"frontend {frontend_name(listener)}", f"    # {listener.name}", f"    bind {bind}"]
    if listener.mode is Mode.TCP:
        # Connections may idle for long (pools of database connections): kube-proxy never cuts them.
        lines += ["    mode tcp", "    timeout client 1h", "    no option idle-close-on-response"]
        lines.append(f"    tcp-request content set-var({_PICK}) rand({BUCKETS})")
    else:
        lines.append(f"    http-request set-var({_PICK}) rand({BUCKETS})")
    for r, route in enumerate(_all_routes(listener)):
        entries: list[str] = []
        for m, match in enumerate(route.matches):
            names: list[str] = []
            conditions = [_condition("req.fhdr", h.name, h.value, h.kind) for h in match.headers] + [
                _condition("req.cook", c.name, c.value, c.kind) for c in match.cookies
            ]
            for c, condition in enumerate(conditions):
                name = f"r{r}m{m}c{c}"
                lines.append(f"    acl {name} {condition}")
                names.append(name)
            entries.append(" ".join(names) if names else "TRUE")
        target = f"%[var({_PICK}),add({r * BUCKETS}),map_int({path},{NO_ROUTE_BACKEND})]"
        label = f"  # {route.name}" if route.name else ""
        if entries and "TRUE" not in entries:
            lines.append(f"    use_backend {target} if {' || '.join(entries)}{label}")
        else:
            lines.append(f"    use_backend {target}{label}")
    lines.append(f"    default_backend {NO_ROUTE_BACKEND}")
    return lines


def _backend(listener: Listener, backend: str, pool: Pool, policy: _Policy) -> list[str]:
    limits = listener.limits
    tcp = listener.mode is Mode.TCP
    lines = [f"backend {backend}"]
    if tcp:
        lines.append("    mode tcp")
    lines.append(f"    timeout connect {_duration(limits.connect_timeout)}")
    if policy.server_timeout is not None and not tcp:
        lines.append(f"    timeout server {_duration(policy.server_timeout)}")
    lines.append(f"    retries {policy.retries}")
    if not tcp:
        lines.append(f"    retry-on {' '.join(policy.retry_on)}")
    if _checks(listener):
        lines.append(f"    timeout check {_duration(limits.connect_timeout)}")
    if limits.max_pending is not None and tcp:
        lines.append(f"    tcp-request content reject if {{ queue() ge {limits.max_pending} }}")
    elif limits.max_pending is not None:
        lines.append(f"    http-request return status 503 if {{ queue() ge {limits.max_pending} }}")
    for endpoint in pool.endpoints:
        disabled = " disabled" if endpoint.state is EndpointState.DOWN else ""
        lines.append(f"    server {endpoint.name} {_address(endpoint)} {_server_args(listener, endpoint)}{disabled}")
    return lines


def _map_entries(listener: Listener) -> list[tuple[str, str]]:
    """(integer range, backend) per route destination of non-zero weight."""
    policies = _policies(listener)
    entries: list[tuple[str, str]] = []
    for r, route in enumerate(_all_routes(listener)):
        policy = policies.index(_policy(route))
        total = sum(d.weight for d in route.destinations)
        offset, cumulative, low = r * BUCKETS, 0, 0
        for destination in route.destinations:
            cumulative += destination.weight
            high = round(cumulative * BUCKETS / total)
            if high > low:
                key = f"{offset + low}:{offset + high - 1}"
                entries.append((key, backend_name(listener, destination.pool, policy)))
            low = high
    return entries


def render_maps(plane: DataPlane) -> dict[str, str]:
    """The weight map of every listener: file name (in ``map_dir``) to contents."""
    check(plane)
    return {
        f"{frontend_name(listener)}.map": "".join(f"{key} {value}\n" for key, value in _map_entries(listener))
        for listener in plane.listeners
    }


# -- runtime changes -------------------------------------------------------------------------------


def _shape(listener: Listener) -> object:
    """Everything of a listener that only a new configuration can change."""
    return (
        listener.address,
        listener.port,
        listener.mode,
        sorted(pool.name for pool in listener.pools),
        [(route.matches, _policy(route)) for route in listener.routes],
        _policy(Route(destinations=listener.default)) if listener.default else None,
        listener.outlier,
        listener.limits,
    )


def _state_commands(server: str, was: EndpointState, now: EndpointState) -> list[str]:
    if now is EndpointState.DOWN:
        return [f"set server {server} state maint"]
    commands = [f"set server {server} weight {0 if now is EndpointState.DRAINING else 1}"]
    if was is EndpointState.DOWN:
        commands.append(f"set server {server} state ready")
    return commands


def runtime_commands(current: DataPlane, desired: DataPlane, *, map_dir: str) -> list[str] | None:
    """The runtime-API commands that move a running HAProxy from ``current`` to ``desired``.

    None when the configuration itself must change (a listener, pool, route condition,
    timeout, retry, outlier or limit changed): apply ``desired`` by a seamless reload.

    Order keeps every request served: servers are added, re-addressed and made ready
    first; then each changed weight map is replaced in one atomic commit; servers are
    drained, put in maintenance and deleted last, after traffic has moved away.
    """
    check(desired)
    check(current)
    before = {listener.name: listener for listener in current.listeners}
    after = {listener.name: listener for listener in desired.listeners}
    if before.keys() != after.keys():
        return None
    if any(_shape(before[name]) != _shape(after[name]) for name in after):
        return None
    early: list[str] = []
    maps: list[str] = []
    late: list[str] = []
    for name, listener in after.items():
        old = before[name]
        old_servers = {
            (backend, endpoint.name): endpoint for backend, pool, _ in _backends(old) for endpoint in pool.endpoints
        }
        for backend, pool, _ in _backends(listener):
            for endpoint in pool.endpoints:
                server = f"{backend}/{endpoint.name}"
                was = old_servers.pop((backend, endpoint.name), None)
                if was is None:
                    early.append(f"add server {server} {_address(endpoint)} {_server_args(listener, endpoint)}")
                    if _checks(listener):
                        early.append(f"enable health {server}")
                    if endpoint.state is not EndpointState.DOWN:
                        early.append(f"set server {server} state ready")
                    continue
                if (was.address, was.port) != (endpoint.address, endpoint.port):
                    address = ipaddress.ip_address(endpoint.address)
                    early.append(f"set server {server} addr {address} port {endpoint.port}")
                if was.state is not endpoint.state:
                    target = early if endpoint.state is EndpointState.READY else late
                    target.extend(_state_commands(server, was.state, endpoint.state))
        for backend, server_name in old_servers:
            late += [f"set server {backend}/{server_name} state maint", f"del server {backend}/{server_name}"]
        entries = _map_entries(listener)
        if entries != _map_entries(old):
            path = map_file(listener, map_dir)
            maps.append(f"prepare map {path}")
            maps += [f"add map @{VERSION} {path} {key} {value}" for key, value in entries]
            maps.append(f"commit map @{VERSION} {path}")
    return early + maps + late


# -- outlier detection: the ejection cap --------------------------------------------------------


def ejection_cap_commands(plane: DataPlane, observed: Iterable[ServerStatus]) -> list[str]:
    """Re-admit the servers HAProxy ejected beyond ``max_ejection_percent``.

    Envoy ejects a host when none of its pool is ejected, or when the ejection keeps the
    ejected share within ``max_ejection_percent``; HAProxy ejects every host that fails.
    Per backend, the most recently ejected servers beyond the cap are set healthy again
    (they stay in rotation until their next run of errors, as Envoy would have left them).
    """
    check(plane)
    by_backend: dict[str, list[ServerStatus]] = {}
    for status in observed:
        by_backend.setdefault(status.backend, []).append(status)
    commands: list[str] = []
    for listener in plane.listeners:
        if not _checks(listener) or listener.outlier is None:
            continue
        percent = listener.outlier.max_ejection_percent
        for backend, pool, _ in _backends(listener):
            members = {e.name for e in pool.endpoints if e.state is not EndpointState.DOWN}
            if not members:
                continue
            cap = max(1, len(members) * percent // 100)
            ejected = [s for s in by_backend.get(backend, []) if s.server in members and s.ejected]
            ejected.sort(key=lambda s: (-s.last_change, s.server))  # the longest ejected keep their place
            commands += [f"set server {backend}/{s.server} health up" for s in ejected[cap:]]
    return commands


def with_endpoint_state(plane: DataPlane, endpoint: str, state: EndpointState) -> DataPlane:
    """``plane`` with every endpoint named ``endpoint`` in ``state`` (drain a pod everywhere)."""
    return replace(
        plane,
        listeners=tuple(
            replace(
                listener,
                pools=tuple(
                    replace(
                        pool,
                        endpoints=tuple(replace(e, state=state) if e.name == endpoint else e for e in pool.endpoints),
                    )
                    for pool in listener.pools
                ),
            )
            for listener in plane.listeners
        ),
    )
