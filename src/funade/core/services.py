"""Services on the local target: a loopback port per Service port, endpoints, and the data plane.

On one machine ClusterIP, NodePort and LoadBalancer all mean "reachable on 127.0.0.1":
each Service port gets a loopback port, its ``nodePort`` when one is given, otherwise
one allocated from the NodePort range (30000-32767, below Linux's ephemeral ports) and
kept in the stored object so it survives restarts. Endpoints are the pods the selector
matches: Ready pods take requests, terminating ones drain (in-flight requests finish,
no new ones), the others are held down. All of it is pure: the services controller
feeds it pods and hands the resulting :class:`traffic.DataPlane` to HAProxy.

Inside, pods reach a Service by its DNS names (``web``, ``web.shop``, ``web.shop.svc``,
``web.shop.svc.cluster.local``): each Service has an in-cluster proxy on the pods'
network (:class:`ClusterProxy`), listening on the Service's own ports, and a pod's
resolver searches its namespace's domain first (:func:`search_domains`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from funade.core import selectors, traffic

__all__ = [
    "CLUSTER_DOMAIN",
    "DNS_OPTIONS",
    "PORTS_ANNOTATION",
    "PORT_RANGE",
    "SPLIT_API_VERSION",
    "SPLIT_KIND",
    "ClusterProxies",
    "ClusterProxy",
    "EndpointView",
    "Routing",
    "ServiceError",
    "ServicePort",
    "ServiceSpec",
    "Subset",
    "allocate",
    "cluster_proxies",
    "dns_names",
    "endpoints",
    "endpoints_object",
    "local_ports",
    "parse",
    "plane",
    "port_mode",
    "scrape_targets",
    "search_domains",
    "split_routing",
]

PORT_RANGE = range(30000, 32768)
#: Where the stored Service keeps its loopback ports: {"<port>/<protocol>": local port}.
PORTS_ANNOTATION = "local.funade.io/ports"
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")

Obj = dict[str, Any]


class ServiceError(ValueError):
    """A Service the local target cannot serve; the message names the object and field."""


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target: int | str  # a number, or the name of a container port
    node_port: int | None = None
    app_protocol: str = ""  # spec.ports[].appProtocol

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class ServiceSpec:
    namespace: str
    name: str
    type: str
    selector: Mapping[str, str] | None  # None: no selector, endpoints are managed by hand (none here)
    ports: tuple[ServicePort, ...]
    # Prometheus annotations: scrape the pods behind the Service (prometheus.io/scrape: "true").
    scrape: bool = False
    scrape_port: int | str | None = None  # default: the first port's target
    scrape_path: str = "/metrics"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse(obj: Obj) -> ServiceSpec:
    """The parts of a Service the local target serves.

    Raises:
        ServiceError: naming the Service and the field (`spec.ports[1].targetPort` …).
    """
    meta = obj.get("metadata") or {}
    where = f"service/{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise ServiceError(f"{where}: spec must be a mapping")
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        raise ServiceError(f"{where}: spec.type ExternalName: Docker's DNS cannot alias one name to another (no CNAME)")
    if kind not in _TYPES:
        raise ServiceError(f"{where}: spec.type: unsupported value {kind!r} (ClusterIP, NodePort, LoadBalancer)")
    selector = spec.get("selector")
    if selector is not None and not (
        isinstance(selector, Mapping) and all(isinstance(v, str) for v in selector.values())
    ):
        raise ServiceError(f"{where}: spec.selector must map label names to strings")
    raw_ports = spec.get("ports") or []
    if not isinstance(raw_ports, list) or not raw_ports:
        raise ServiceError(f"{where}: spec.ports: at least one port is required")
    ports = []
    for i, raw in enumerate(raw_ports):
        at = f"{where}: spec.ports[{i}]"
        if not isinstance(raw, Mapping):
            raise ServiceError(f"{at}: must be a mapping")
        port = raw.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ServiceError(f"{at}.port: must be an integer between 1 and 65535")
        protocol = raw.get("protocol", "TCP")
        if protocol != "TCP":
            raise ServiceError(f"{at}.protocol: {protocol} is not served by the local target (TCP only)")
        target = raw.get("targetPort", port)
        if isinstance(target, bool) or not isinstance(target, int | str) or target in ("", 0):
            raise ServiceError(f"{at}.targetPort: a port number or a container port name")
        if isinstance(target, int) and not 1 <= target <= 65535:
            raise ServiceError(f"{at}.targetPort: must be between 1 and 65535")
        node_port = raw.get("nodePort")
        if node_port is not None:
            if kind == "ClusterIP":
                raise ServiceError(f"{at}.nodePort: may not be used when `type` is 'ClusterIP'")
            if not isinstance(node_port, int) or node_port not in PORT_RANGE:
                raise ServiceError(
                    f"{at}.nodePort: provided port is not in the valid range. The range of valid ports is 30000-32767"
                )
        name = raw.get("name", "")
        if len(raw_ports) > 1 and not name:
            raise ServiceError(f"{at}.name: required when a Service has more than one port")
        app_protocol = raw.get("appProtocol", "")
        if not isinstance(app_protocol, str):
            raise ServiceError(f"{at}.appProtocol: must be a string")
        ports.append(ServicePort(str(name), protocol, port, target, node_port, app_protocol))
    keys = [p.key for p in ports]
    if len(set(keys)) != len(keys):
        raise ServiceError(f"{where}: spec.ports: duplicate port")
    annotations = meta.get("annotations") or {}
    scrape_port: int | str | None = annotations.get("prometheus.io/port")
    if isinstance(scrape_port, str) and scrape_port.isdigit():
        scrape_port = int(scrape_port)
    return ServiceSpec(
        str(meta.get("namespace") or "default"),
        str(meta.get("name")),
        kind,
        selector,
        tuple(ports),
        scrape=str(annotations.get("prometheus.io/scrape", "")).lower() == "true",
        scrape_port=scrape_port,
        scrape_path=str(annotations.get("prometheus.io/path") or "/metrics"),
    )


def local_ports(obj: Obj) -> dict[str, int]:
    """The loopback ports a stored Service was given, by ``port/protocol``."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(PORTS_ANNOTATION)
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)} if isinstance(value, dict) else {}


def allocate(
    service: ServiceSpec,
    previous: Mapping[str, int],
    taken: Iterable[int],
    free: Callable[[int], bool] = lambda port: True,
) -> dict[str, int]:
    """Loopback ports for ``service``: its nodePorts, the ports it had, else the lowest free ones.

    Args:
        previous: what the stored Service had (kept, so addresses survive re-applies and restarts).
        taken: ports other Services hold.
        free: whether nothing else on this machine listens on 127.0.0.1:PORT (another funade
            home, any program); a port the Service had is ours and is not asked about.

    Raises:
        ServiceError: a nodePort another Service or program holds ("provided port is already allocated").
    """
    used = set(taken)
    mine = set(previous.values())
    out: dict[str, int] = {}
    for i, port in enumerate(service.ports):
        if port.node_port is not None:
            at = f"service/{service.ref}: spec.ports[{i}].nodePort: Invalid value: {port.node_port}"
            if port.node_port in used:
                raise ServiceError(f"{at}: provided port is already allocated")
            if port.node_port not in mine and not free(port.node_port):
                raise ServiceError(f"{at}: 127.0.0.1:{port.node_port} is in use by another program")
            out[port.key] = port.node_port
            used.add(port.node_port)
    for port in service.ports:
        if port.key in out:
            continue
        kept = previous.get(port.key)
        if kept is not None and kept not in used:
            out[port.key] = kept
            used.add(kept)
            continue
        found = next((p for p in PORT_RANGE if p not in used and free(p)), None)
        if found is None:
            raise ServiceError(f"service/{service.ref}: no free loopback port left in 30000-32767")
        out[port.key] = found
        used.add(found)
    return out


@dataclass(frozen=True)
class EndpointView:
    """One pod behind one Service port, as `funade get endpoints` shows it."""

    pod: str
    ip: str
    port: int
    state: traffic.EndpointState


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _target(pod: Obj, target: int | str) -> int | None:
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == "TCP":
                return int(port["containerPort"])
    return None


def endpoints(service: ServiceSpec, pods: Sequence[Obj]) -> dict[str, list[EndpointView]]:
    """Per Service port (``port/protocol``): the pods behind it and their state.

    Ready pods take requests; a terminating pod drains; a pod that is not Ready is down.
    Pods without an IP, finished pods, and pods lacking a named target port are left out.
    """
    out: dict[str, list[EndpointView]] = {p.key: [] for p in service.ports}
    if not service.selector:  # no selector (or an empty one): endpoints are not managed by the Service
        return out
    selector = {"matchLabels": dict(service.selector)}
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        meta = pod["metadata"]
        status = pod.get("status") or {}
        if meta.get("namespace") != service.namespace or not status.get("podIP"):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        if not selectors.matches(selector, meta.get("labels") or {}):
            continue
        if meta.get("deletionTimestamp"):
            state = traffic.EndpointState.DRAINING
        elif _ready(pod):
            state = traffic.EndpointState.READY
        else:
            state = traffic.EndpointState.DOWN
        for port in service.ports:
            number = _target(pod, port.target)
            if number is not None:
                out[port.key].append(EndpointView(str(meta["name"]), str(status["podIP"]), number, state))
    return out


def endpoints_object(service: ServiceSpec, views: Mapping[str, Sequence[EndpointView]], created: str = "") -> Obj:
    """A Kubernetes ``v1/Endpoints`` for the Service, plus each endpoint's state (ready, draining, down).

    As in Kubernetes, Ready pods are ``addresses`` and the others ``notReadyAddresses``;
    ``status.localTarget.endpoints`` says which of those are draining.
    """
    subsets = []
    states = []
    for port in service.ports:
        group = views.get(port.key, [])
        for number in sorted({v.port for v in group}):
            chosen = [v for v in group if v.port == number]

            def address(v: EndpointView) -> Obj:
                return {"ip": v.ip, "targetRef": {"kind": "Pod", "namespace": service.namespace, "name": v.pod}}

            subset: Obj = {"ports": [{"name": port.name, "port": number, "protocol": port.protocol}]}
            ready = [address(v) for v in chosen if v.state is traffic.EndpointState.READY]
            not_ready = [address(v) for v in chosen if v.state is not traffic.EndpointState.READY]
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subsets.append(subset)
        states += [
            {"port": port.key, "pod": v.pod, "ip": v.ip, "targetPort": v.port, "state": v.state.value} for v in group
        ]
    metadata: Obj = {"name": service.name, "namespace": service.namespace}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": metadata,
        "subsets": subsets,
        "status": {"localTarget": {"endpoints": states}},
    }


@dataclass(frozen=True)
class Subset:
    """A named part of a Service's endpoints: the pods that also carry ``labels`` (an Istio subset).

    With ``service``, the subset is drawn from the endpoints of that other Service of the
    same namespace instead (a canary Service beside the stable one, as a canary Ingress or
    a VirtualService with two hosts splits between them).
    """

    name: str
    labels: Mapping[str, str]
    service: str | None = None


@dataclass(frozen=True)
class Routing:
    """How one Service's requests are routed, from a VirtualService + DestinationRule or a TrafficSplit.

    ``routes`` are tried in order (first match wins); requests no route matches go to
    ``default`` (empty: 404, as Envoy answers). Destinations name subsets, or ``"all"``
    for every endpoint of the Service.
    """

    source: str  # e.g. "virtualservice/shop/web"
    subsets: tuple[Subset, ...] = ()
    routes: tuple[traffic.Route, ...] = ()
    default: tuple[traffic.Destination, ...] = (traffic.Destination("all", 100),)
    outlier: traffic.OutlierDetection | None = None
    limits: traffic.ConnectionPool = field(default_factory=traffic.ConnectionPool)


@dataclass(frozen=True)
class ScrapeTarget:
    """One pod Prometheus scrapes for a Service, and the labels its series get."""

    address: str  # ip:port
    labels: Mapping[str, str]
    path: str = "/metrics"


def scrape_targets(services: Sequence[ServiceSpec], pods: Sequence[Obj]) -> list[ScrapeTarget]:
    """The Ready pods of every Service annotated ``prometheus.io/scrape: "true"``.

    Each series gets ``service``, ``namespace`` and ``pod`` labels, so a query can select
    one Service (the seed's ``http_requests_total{service="…"}``), the canary's included.
    """
    found = []
    for service in sorted(services, key=lambda s: s.ref):
        if not service.scrape:
            continue
        first = service.ports[0]
        wanted = service.scrape_port if service.scrape_port is not None else first.target
        by_name = {str(p["metadata"]["name"]): p for p in pods}
        for view in endpoints(service, pods)[first.key]:
            if view.state is not traffic.EndpointState.READY:
                continue
            port = wanted if isinstance(wanted, int) else _target(by_name[view.pod], wanted)
            if port is None:
                continue
            labels = {"service": service.name, "namespace": service.namespace, "pod": view.pod}
            found.append(ScrapeTarget(f"{view.ip}:{port}", labels, service.scrape_path))
    return found


def listener_name(service: ServiceSpec, port: ServicePort) -> str:
    return f"{service.ref}:{port.name or port.port}"


def plane(
    services: Sequence[tuple[ServiceSpec, Mapping[str, int]]],
    pods: Sequence[Obj],
    routing: Mapping[str, Routing] | None = None,
) -> traffic.DataPlane:
    """The data plane serving ``services`` (each with its loopback ports) from ``pods``.

    Args:
        routing: per Service (``namespace/name``), its subsets, routes and policies;
            a Service without one sends every request to all of its Ready endpoints.
    """
    routing = routing or {}
    by_name = {str(p["metadata"]["name"]): p for p in pods}
    by_ref = {service.ref: service for service, _ in services}
    listeners = []
    for service, ports in sorted(services, key=lambda s: s[0].ref):
        backing = endpoints(service, pods)
        rules = routing.get(service.ref, Routing(source=""))
        for port in service.ports:
            local = ports.get(port.key)
            if local is None:
                continue
            everything = [traffic.Endpoint(f"{e.pod}-{e.port}", e.ip, e.port, e.state) for e in backing[port.key]]
            pools = [traffic.Pool("all", tuple(everything))]
            for subset in rules.subsets:
                if subset.service is not None:
                    other = by_ref.get(f"{service.namespace}/{subset.service}")
                    pools.append(traffic.Pool(subset.name, _borrowed(other, port, pods) if other else ()))
                    continue
                selector = {"matchLabels": dict(subset.labels)}
                members = tuple(
                    e
                    for e, view in zip(everything, backing[port.key], strict=True)
                    if selectors.matches(
                        selector, (by_name.get(view.pod, {}).get("metadata") or {}).get("labels") or {}
                    )
                )
                pools.append(traffic.Pool(subset.name, members))
            listeners.append(
                traffic.Listener(
                    name=listener_name(service, port),
                    port=local,
                    pools=tuple(pools),
                    routes=rules.routes,
                    default=rules.default,
                    outlier=rules.outlier,
                    limits=rules.limits,
                )
            )
    return traffic.DataPlane(tuple(listeners))


def _borrowed(other: ServiceSpec, port: ServicePort, pods: Sequence[Obj]) -> tuple[traffic.Endpoint, ...]:
    """Endpoints of ``other`` for the port matching ``port`` (same name, else same number, else its first)."""
    match = (
        next((p for p in other.ports if port.name and p.name == port.name), None)
        or next((p for p in other.ports if p.port == port.port), None)
        or other.ports[0]
    )
    return tuple(
        traffic.Endpoint(f"{e.pod}-{e.port}", e.ip, e.port, e.state) for e in endpoints(other, pods)[match.key]
    )


# -- TrafficSplit: funade's own routing object, and what the rollout controller drives ---------------

SPLIT_API_VERSION = "local.funade.io/v1alpha1"
SPLIT_KIND = "TrafficSplit"
_MATCH_KINDS = {kind.value: kind for kind in traffic.MatchKind}


def _split_match(raw: object, at: str) -> traffic.Match:
    if not isinstance(raw, Mapping):
        raise ServiceError(f"{at}: must be a mapping")
    headers: list[traffic.HeaderMatch] = []
    cookies: list[traffic.CookieMatch] = []
    for key, value in raw.items():
        if key not in ("headers", "cookies") or not isinstance(value, Mapping):
            raise ServiceError(f"{at}.{key}: expected headers or cookies, each a mapping of name to a match")
        for name, condition in value.items():
            if not isinstance(condition, Mapping) or len(condition) != 1:
                raise ServiceError(f"{at}.{key}.{name}: one of exact, prefix or regex")
            ((how, text),) = condition.items()
            if how not in _MATCH_KINDS or not isinstance(text, str):
                raise ServiceError(f"{at}.{key}.{name}.{how}: one of exact, prefix or regex, with a string")
            if key == "headers":
                headers.append(traffic.HeaderMatch(str(name), text, _MATCH_KINDS[how]))
            else:
                cookies.append(traffic.CookieMatch(str(name), text, _MATCH_KINDS[how]))
    return traffic.Match(tuple(headers), tuple(cookies))


def split_routing(obj: Obj) -> tuple[str, Routing]:
    """The Service a TrafficSplit routes (``namespace/name``) and its Routing.

    ``spec``: ``service``; ``subsets`` (name and pod ``labels``, or the ``service`` whose
    endpoints form the subset); ``weights`` by subset
    (``all`` means every endpoint); ``headerRoutes`` in order, each ``match`` (headers or
    cookies, exact / prefix / regex) sending to one ``subset`` before the weights apply.

    Raises:
        ServiceError: naming the TrafficSplit and the field.
    """
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    where = f"trafficsplit/{namespace}/{meta.get('name', '?')}"
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise ServiceError(f"{where}: spec must be a mapping")
    unknown = set(spec) - {"service", "subsets", "weights", "headerRoutes"}
    if unknown:
        raise ServiceError(f"{where}: spec.{sorted(unknown)[0]}: unknown field")
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        raise ServiceError(f"{where}: spec.service: the name of a Service in the same namespace")
    subsets = []
    for i, raw in enumerate(spec.get("subsets") or []):
        labels = raw.get("labels", {}) if isinstance(raw, Mapping) else None
        other = raw.get("service") if isinstance(raw, Mapping) else None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not isinstance(labels, Mapping):
            raise ServiceError(f"{where}: spec.subsets[{i}]: needs a name and labels (or a service)")
        if raw["name"] == "all":
            raise ServiceError(f"{where}: spec.subsets[{i}].name: 'all' means every endpoint; choose another name")
        if other is None and not labels:
            raise ServiceError(f"{where}: spec.subsets[{i}]: needs labels or a service")
        if other is not None and (not isinstance(other, str) or not other):
            raise ServiceError(f"{where}: spec.subsets[{i}].service: the name of a Service in the same namespace")
        subsets.append(Subset(raw["name"], {str(k): str(v) for k, v in labels.items()}, other))
    names = {s.name for s in subsets} | {"all"}
    weights = spec.get("weights") or {"all": 100}
    if not isinstance(weights, Mapping):
        raise ServiceError(f"{where}: spec.weights: a mapping of subset to weight")
    default = []
    for name, weight in weights.items():
        if name not in names:
            raise ServiceError(f"{where}: spec.weights.{name}: no such subset")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise ServiceError(f"{where}: spec.weights.{name}: an integer from 0 to 100")
        default.append(traffic.Destination(str(name), weight))
    if default and sum(d.weight for d in default) == 0:
        raise ServiceError(f"{where}: spec.weights: at least one weight must be above 0")
    routes = []
    for i, raw in enumerate(spec.get("headerRoutes") or []):
        at = f"{where}: spec.headerRoutes[{i}]"
        if not isinstance(raw, Mapping) or raw.get("subset") not in names:
            raise ServiceError(f"{at}.subset: the subset matching requests go to")
        matches = raw.get("match")
        if not isinstance(matches, list) or not matches:
            raise ServiceError(f"{at}.match: a list of header or cookie conditions")
        routes.append(
            traffic.Route(
                destinations=(traffic.Destination(str(raw["subset"]), 100),),
                matches=tuple(_split_match(m, f"{at}.match[{j}]") for j, m in enumerate(matches)),
                name=str(raw.get("name") or f"header-{i}"),
            )
        )
    return f"{namespace}/{service}", Routing(where, tuple(subsets), tuple(routes), tuple(default))


# -- in-cluster names: what pods inside resolve and reach ------------------------------------------

CLUSTER_DOMAIN = "cluster.local"
#: Pods' resolver options. A name holding a dot (``web.shop``) is tried as it is first and a
#: bare name (``web``) through the search domains first, so a pod or container that happens
#: to be called ``web`` on the shared network never shadows the namespace's Service.
DNS_OPTIONS = ("ndots:1",)
#: Istio's protocol prefixes for port names (``http``, ``http-web``, ``mysql-main`` …).
_DECLARED = frozenset({"grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls", "udp"})


def dns_names(service: ServiceSpec, domain: str = CLUSTER_DOMAIN) -> tuple[str, ...]:
    """The absolute names of a Service: ``name.ns``, ``name.ns.svc``, ``name.ns.svc.<domain>``.

    A bare ``name`` reaches it through the search domains of pods in its namespace.
    """
    base = f"{service.name}.{service.namespace}"
    return (base, f"{base}.svc", f"{base}.svc.{domain}")


def search_domains(namespace: str, domain: str = CLUSTER_DOMAIN) -> tuple[str, ...]:
    """A pod's DNS search list, as the kubelet writes it for ``dnsPolicy: ClusterFirst``."""
    return (f"{namespace}.svc.{domain}", f"svc.{domain}", domain)


def port_mode(port: ServicePort, routed: bool) -> traffic.Mode:
    """How a Service port's in-cluster proxy carries connections (Istio's protocol selection, without sniffing).

    HTTP when ``appProtocol`` or the port's name (``http``, ``http-…``) says so; TCP when
    they name any other protocol (``http2`` and ``grpc`` too: HAProxy speaks HTTP/1.1 to
    endpoints). An undeclared port is HTTP when the Service has routing (a VirtualService
    or TrafficSplit asked for HTTP routes), else TCP, as kube-proxy carries it: a
    database behind a Service must get its bytes untouched.
    """
    declared = port.app_protocol.lower()
    if not declared:
        prefix = port.name.lower().split("-", 1)[0]
        declared = prefix if prefix in _DECLARED else ""
    if declared:
        return traffic.Mode.HTTP if declared == "http" else traffic.Mode.TCP
    return traffic.Mode.HTTP if routed else traffic.Mode.TCP


@dataclass(frozen=True)
class ClusterProxy:
    """One Service as pods reach it: the DNS names its proxy answers to and the plane it carries.

    The plane's listeners bind the Service's ports (``port``, not ``targetPort``) on every
    address of the proxy's own network namespace.
    """

    namespace: str
    name: str
    aliases: tuple[str, ...]
    plane: traffic.DataPlane

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def cluster_proxies(
    services: Sequence[ServiceSpec],
    pods: Sequence[Obj],
    routing: Mapping[str, Routing] | None = None,
) -> list[ClusterProxy]:
    """The in-cluster proxy of every Service: the same endpoints, pools and routing as its loopback listeners.

    Ports carried as TCP (:func:`port_mode`) keep the weights of the Service's catch-all
    route (its default when it has none); header routes, which need HTTP, are left out.
    """
    routing = routing or {}
    full = plane([(s, {p.key: p.port for p in s.ports}) for s in services], pods, routing)
    by_name = {listener.name: listener for listener in full.listeners}
    found = []
    for service in sorted(services, key=lambda s: s.ref):
        listeners = []
        for port in service.ports:
            mode = port_mode(port, service.ref in routing)
            listener = replace(by_name[listener_name(service, port)], address="0.0.0.0", mode=mode)
            if mode is traffic.Mode.TCP:
                catch_all = next((route for route in listener.routes if not route.matches), None)
                default = catch_all.destinations if catch_all is not None else listener.default
                listener = replace(listener, routes=(), default=default)
            listeners.append(listener)
        found.append(
            ClusterProxy(
                service.namespace,
                service.name,
                dns_names(service),
                traffic.DataPlane(tuple(listeners), contained=True),
            )
        )
    return found


class ClusterProxies(Protocol):
    """Where the in-cluster proxies run: one per Service, on the pods' network."""

    async def ensure(self, proxies: Sequence[ClusterProxy]) -> list[str]:
        """Run exactly ``proxies`` (create, update, restart; remove the others); what was done, one line each."""
        ...

    async def servers(self, refs: Collection[str]) -> dict[str, list[traffic.ServerStatus]]:
        """Per Service (``namespace/name``) among ``refs``, the servers of its running proxy."""
        ...
