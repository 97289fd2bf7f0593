"""Services on the local target: validation, loopback ports, endpoints, the data plane and draining."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from funade.adapters.docker import FakeDocker
from funade.adapters.haproxy import FakeProxy, find_binary
from funade.adapters.local import runtime, serviceproxy
from funade.adapters.local.serviceproxy_fake import FakeServiceProxies
from funade.adapters.store.sqlite import SqliteStore
from funade.controller.services import ServiceController
from funade.core import services, traffic
from funade.core.ports import ObjectKey
from funade.engine import workloads

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
READY, DRAINING, DOWN = traffic.EndpointState.READY, traffic.EndpointState.DRAINING, traffic.EndpointState.DOWN


def service(name: str = "web", ns: str = "default", **spec: Any) -> Obj:
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": body}


def pod(name: str, ip: str, *, app: str = "web", ns: str = "default", ready: bool = True, **meta: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}, **meta},
        "spec": {"containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_a_subset_can_be_another_services_endpoints() -> None:
    """The canary Service beside the stable one: the stable listener splits between both Services' pods."""
    ref, routing = services.split_routing(
        split(
            service="web-stable",
            subsets=[{"name": "stable", "service": "web-stable"}, {"name": "canary", "service": "web-canary"}],
            weights={"stable": 75, "canary": 25},
        )
    )
    stable = services.parse(service("web-stable", ns="shop", selector={"app": "web", "h": "1"}))
    canary = services.parse(
        service("web-canary", ns="shop", selector={"app": "web", "h": "2"}, ports=[{"port": 81, "targetPort": 8080}])
    )
    pods = [
        {
            **pod("web-1", "10.0.0.1", ns="shop"),
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "h": "1"}},
        },
        {
            **pod("web-2", "10.0.0.2", ns="shop"),
            "metadata": {"name": "web-2", "namespace": "shop", "labels": {"app": "web", "h": "2"}},
        },
    ]
    plane = services.plane([(stable, {"80/TCP": 30001}), (canary, {"81/TCP": 30002})], pods, {ref: routing})
    listener = next(lis for lis in plane.listeners if lis.port == 30001)
    pools = {p.name: [e.name for e in p.endpoints] for p in listener.pools}
    # The stable Service's own endpoints are only the stable pod; the canary pool is borrowed (other port number).
    assert pools == {"all": ["web-1-8080"], "stable": ["web-1-8080"], "canary": ["web-2-8080"]}
    with pytest.raises(services.ServiceError, match=r"subsets\[0\]: needs labels or a service"):
        services.split_routing(split(subsets=[{"name": "x"}]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "ExternalName"}, "ExternalName"),
        ({"type": "Headless"}, r"spec.type: unsupported value 'Headless'"),
        ({"ports": []}, "at least one port"),
        ({"ports": [{"port": 0}]}, r"spec.ports\[0\].port: must be an integer"),
        ({"ports": [{"port": 53, "protocol": "UDP"}]}, r"spec.ports\[0\].protocol: UDP"),
        ({"ports": [{"port": 80, "nodePort": 30080}]}, "may not be used when `type` is 'ClusterIP'"),
        ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}, "valid range"),
        ({"ports": [{"port": 80}, {"port": 81}]}, r"spec.ports\[0\].name: required"),
        ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}, "duplicate port"),
    ],
)
def test_invalid_services_name_the_field(spec: Obj, message: str) -> None:
    with pytest.raises(services.ServiceError, match=message):
        services.parse(service(**spec))


def test_the_seed_service_parses() -> None:
    seed = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "myapp"},
        "spec": {"selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 3000}], "type": "ClusterIP"},
    }
    spec = services.parse(seed)
    assert (spec.namespace, spec.type, spec.ports[0].target) == ("default", "ClusterIP", 3000)


def test_allocation_keeps_node_ports_and_previous_ports_and_fills_the_lowest_free() -> None:
    spec = services.parse(
        service(
            type="NodePort",
            ports=[{"name": "a", "port": 80, "nodePort": 31000}, {"name": "b", "port": 81}, {"name": "c", "port": 82}],
        )
    )
    got = services.allocate(spec, {"82/TCP": 30500}, taken={30000})
    assert got == {"80/TCP": 31000, "81/TCP": 30001, "82/TCP": 30500}
    with pytest.raises(services.ServiceError, match="provided port is already allocated"):
        services.allocate(spec, {}, taken={31000})


def test_endpoints_are_ready_draining_or_down_and_resolve_named_ports() -> None:
    spec = services.parse(service(ports=[{"port": 80, "targetPort": "http"}]))
    pods = [
        pod("web-a", "10.0.0.1"),
        pod("web-b", "10.0.0.2", ready=False),
        pod("web-c", "10.0.0.3", deletionTimestamp="2026-11-28T00:00:00Z"),
        pod("other", "10.0.0.4", app="other"),
        pod("web-d", "10.0.0.5", ns="elsewhere"),
        {**pod("web-e", ""), "status": {"phase": "Pending"}},
    ]
    (views,) = services.endpoints(spec, pods).values()
    assert [(v.pod, v.ip, v.port, v.state) for v in views] == [
        ("web-a", "10.0.0.1", 8080, READY),
        ("web-b", "10.0.0.2", 8080, DOWN),
        ("web-c", "10.0.0.3", 8080, DRAINING),
    ]
    missing = services.parse(service(ports=[{"port": 80, "targetPort": "grpc"}]))
    assert services.endpoints(missing, pods) == {"80/TCP": []}


def test_plane_has_one_listener_per_service_port_on_its_loopback_port() -> None:
    spec = services.parse(service())
    plane = services.plane([(spec, {"80/TCP": 30001})], [pod("web-a", "10.0.0.1")])
    (listener,) = plane.listeners
    assert (listener.name, listener.port, listener.address) == ("default/web:80", 30001, "127.0.0.1")
    assert listener.pools[0].endpoints == (traffic.Endpoint("web-a-8080", "10.0.0.1", 8080, READY),)
    traffic.check(plane)


def test_apply_gives_services_stable_loopback_ports(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    engine = workloads.Workloads(store)
    engine.ensure_default_namespace()
    engine.apply([service("a"), service("b", type="NodePort", ports=[{"port": 80, "nodePort": 30000}])])
    stored = {o["metadata"]["name"]: services.local_ports(o) for o in store.list_objects("Service")}
    assert stored == {"a": {"80/TCP": 30001}, "b": {"80/TCP": 30000}}
    # Re-applying, or applying a changed Service, keeps the port; a clash is refused and changes nothing.
    (result,) = engine.apply([service("a")])
    assert result.action == "unchanged"
    engine.apply([service("a", ports=[{"port": 80, "targetPort": 9090}])])
    assert services.local_ports(next(o for o in store.list_objects("Service") if o["metadata"]["name"] == "a")) == {
        "80/TCP": 30001
    }
    with pytest.raises(workloads.WorkloadError, match="provided port is already allocated"):
        engine.apply([service("c", type="NodePort", ports=[{"port": 80, "nodePort": 30001}])])
    with pytest.raises(workloads.WorkloadError, match=r"spec.ports\[0\].protocol"):
        engine.apply([service("d", ports=[{"port": 53, "protocol": "UDP"}])])
    assert sorted(o["metadata"]["name"] for o in store.list_objects("Service")) == ["a", "b"]
    annotations = store.list_objects("Service")[0]["metadata"]["annotations"]
    assert json.loads(annotations[services.PORTS_ANNOTATION])
    store.close()


class _Controller:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "db")
        self.engine = workloads.Workloads(self.store)
        self.engine.ensure_default_namespace()
        self.proxy = FakeProxy()
        self.pods: list[Obj] = []
        self.controller = ServiceController(
            self.store, self.proxy, lambda: self.pods, port_free=lambda port: port not in self.proxy.occupied
        )


def test_controller_starts_haproxy_only_for_services_and_restarts_it_when_killed(tmp_path: Path) -> None:
    c = _Controller(tmp_path)
    assert asyncio.run(c.controller.reconcile()) is None and not c.proxy.running
    c.engine.apply([service()])
    c.pods = [pod("web-a", "10.0.0.1")]
    assert asyncio.run(c.controller.reconcile()).action is traffic.Action.START  # type: ignore[union-attr]
    assert asyncio.run(c.controller.reconcile()) is None  # nothing changed
    c.pods.append(pod("web-b", "10.0.0.2"))
    assert asyncio.run(c.controller.reconcile()).action is traffic.Action.RUNTIME  # type: ignore[union-attr]
    c.proxy.kill()
    assert asyncio.run(c.controller.reconcile()).action is traffic.Action.RESTART  # type: ignore[union-attr]
    c.proxy.refuse("bad")
    c.engine.apply([service("other")])
    assert asyncio.run(c.controller.reconcile()) is None and "bad" in (c.controller.error or "")


def test_a_port_another_program_took_leaves_only_its_listener_out_until_it_is_free(tmp_path: Path) -> None:
    c = _Controller(tmp_path)
    c.engine.apply([service("a"), service("b")])
    ports = {o["metadata"]["name"]: services.local_ports(o)["80/TCP"] for o in c.store.list_objects("Service")}
    c.proxy.occupied.add(ports["a"])  # e.g. taken while funade was down
    applied = asyncio.run(c.controller.reconcile())
    assert applied is not None and applied.action is traffic.Action.START and c.proxy.plane is not None
    assert {li.port for li in c.proxy.plane.listeners} == {ports["b"]}  # b is served, not held hostage by a
    assert c.controller.taken == {ports["a"]: "default/a:80"}
    assert f"127.0.0.1:{ports['a']} (default/a:80)" in (c.controller.error or "")
    (event,) = [e for e in c.store.events("default", "Service", "a") if e.reason == "PortTaken"]
    assert event.type == "Warning" and str(ports["a"]) in event.message
    assert asyncio.run(c.controller.reconcile()) is None  # still taken: no retry of a plane HAProxy would refuse
    assert len([e for e in c.store.events("default") if e.reason == "PortTaken"]) == 1
    c.proxy.occupied.clear()
    applied = asyncio.run(c.controller.reconcile())
    assert applied is not None and {li.port for li in c.proxy.plane.listeners} == set(ports.values())
    assert c.controller.taken == {} and c.controller.error is None
    # Another failure (not a port) is still reported as such, and no listener is left out for it.
    c.proxy.refuse("bad")
    c.engine.apply([service("other")])
    assert asyncio.run(c.controller.reconcile()) is None and "bad" in (c.controller.error or "")
    assert c.controller.taken == {}


def test_drain_waits_for_in_flight_requests_then_returns(tmp_path: Path) -> None:
    c = _Controller(tmp_path)
    c.engine.apply([service()])
    c.pods = [pod("web-a", "10.0.0.1")]
    asyncio.run(c.controller.reconcile())
    ((backend, server),) = traffic.servers(c.proxy.plane).keys()  # type: ignore[arg-type]
    c.proxy.set_sessions(backend, server, 1)
    c.pods = [pod("web-a", "10.0.0.1", deletionTimestamp="2026-11-28T00:00:00Z")]

    polls = 0
    servers = c.proxy.servers

    async def counted() -> list[traffic.ServerStatus]:
        nonlocal polls
        polls += 1
        return await servers()

    c.proxy.servers = counted  # type: ignore[method-assign]

    async def scenario() -> tuple[bool, traffic.EndpointState]:
        task = asyncio.create_task(c.controller.drain("default", "web-a", time.time() + 10))

        async def asked_three_times() -> None:
            while polls < 3:  # the drain has looked at HAProxy's sessions three times
                await asyncio.sleep(0)

        await asyncio.wait_for(asked_three_times(), 5)
        assert c.proxy.plane is not None
        state = c.proxy.plane.listeners[0].pools[0].endpoints[0].state
        waiting = not task.done()  # a request is still in flight
        c.proxy.set_sessions(backend, server, 0)
        await asyncio.wait_for(task, 5)
        return waiting, state

    waiting, state = asyncio.run(scenario())
    assert waiting and state is DRAINING
    # The deadline bounds the wait.
    c.proxy.set_sessions(backend, server, 3)
    started = time.monotonic()
    asyncio.run(c.controller.drain("default", "web-a", time.time() + 0.3))
    assert time.monotonic() - started < 5


def test_allocation_skips_ports_other_programs_hold_and_refuses_such_a_node_port() -> None:
    busy = {30000, 30001}
    spec = services.parse(service())
    assert services.allocate(spec, {}, taken=(), free=lambda p: p not in busy) == {"80/TCP": 30002}
    # A port the Service already had is its own (its HAProxy listens there): kept.
    assert services.allocate(spec, {"80/TCP": 30000}, taken=(), free=lambda p: p not in busy) == {"80/TCP": 30000}
    pinned = services.parse(service(type="NodePort", ports=[{"port": 80, "nodePort": 30001}]))
    with pytest.raises(services.ServiceError, match=r"127\.0\.0\.1:30001 is in use by another program"):
        services.allocate(pinned, {}, taken=(), free=lambda p: p not in busy)


def split(**spec: Any) -> Obj:
    return {
        "apiVersion": services.SPLIT_API_VERSION,
        "kind": services.SPLIT_KIND,
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"service": "web", **spec},
    }


def test_a_traffic_split_gives_subsets_weights_and_header_routes() -> None:
    ref, routing = services.split_routing(
        split(
            subsets=[{"name": "stable", "labels": {"v": "1"}}, {"name": "canary", "labels": {"v": "2"}}],
            weights={"stable": 90, "canary": 10},
            headerRoutes=[{"match": [{"headers": {"x-canary": {"exact": "true"}}}], "subset": "canary"}],
        )
    )
    assert ref == "shop/web"
    assert [s.name for s in routing.subsets] == ["stable", "canary"]
    assert routing.default == (traffic.Destination("stable", 90), traffic.Destination("canary", 10))
    (route,) = routing.routes
    assert route.destinations == (traffic.Destination("canary", 100),)
    assert route.matches == (traffic.Match((traffic.HeaderMatch("x-canary", "true", traffic.MatchKind.EXACT),)),)
    # The plane puts each pod in its subset's pool, and HAProxy can carry it.
    spec = services.parse(service(ns="shop"))
    pods = [
        {
            **pod("web-1", "10.0.0.1", ns="shop"),
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "v": "1"}},
        },
        {
            **pod("web-2", "10.0.0.2", ns="shop"),
            "metadata": {"name": "web-2", "namespace": "shop", "labels": {"app": "web", "v": "2"}},
        },
    ]
    plane = services.plane([(spec, {"80/TCP": 30001})], pods, {ref: routing})
    pools = {p.name: [e.name for e in p.endpoints] for p in plane.listeners[0].pools}
    assert pools == {"all": ["web-1-8080", "web-2-8080"], "stable": ["web-1-8080"], "canary": ["web-2-8080"]}
    assert "rand(" in traffic.render_config(plane, runtime_socket="/run/f/rt.sock", map_dir="/run/f/maps")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"service": ""}, "spec.service"),
        ({"weights": {"nope": 10}}, "spec.weights.nope: no such subset"),
        ({"weights": {"all": 101}}, "from 0 to 100"),
        ({"weights": {"all": 0}}, "at least one weight"),
        ({"subsets": [{"name": "all", "labels": {}}]}, "'all' means every endpoint"),
        ({"headerRoutes": [{"match": [], "subset": "all"}]}, r"headerRoutes\[0\].match"),
        ({"headerRoutes": [{"match": [{"headers": {"x": {"glob": "*"}}}], "subset": "all"}]}, "exact, prefix or regex"),
        ({"mirror": {}}, "spec.mirror: unknown field"),
    ],
)
def test_invalid_traffic_splits_name_the_field(spec: Obj, message: str) -> None:
    with pytest.raises(services.ServiceError, match=message):
        services.split_routing(split(**spec))


def test_the_router_writes_one_split_atomically_and_clears_it(tmp_path: Path) -> None:
    from funade.engine.routing import RoutingError, TrafficRouter

    store = SqliteStore(tmp_path / "db")
    router = TrafficRouter(store)
    subsets = {"stable": {"v": "1"}, "canary": {"v": "2"}}
    router.set_weights("shop", "web", subsets, {"stable": 95, "canary": 5})
    router.set_header_route("shop", "web", "canary-header", [{"headers": {"x-canary": {"exact": "true"}}}], "canary")
    router.set_weights("shop", "web", subsets, {"stable": 50, "canary": 50})  # the header route stays
    stored = router.get("shop", "web")
    assert stored is not None
    _, routing = services.split_routing(stored)
    assert [d.weight for d in routing.default] == [50, 50] and len(routing.routes) == 1
    with pytest.raises(RoutingError, match="no such subset"):
        router.set_weights("shop", "web", subsets, {"preview": 100})
    assert services.split_routing(router.get("shop", "web") or {})[1] == routing  # unchanged by the refusal
    assert router.clear("shop", "web") and router.get("shop", "web") is None
    store.close()


def test_controller_caps_ejections_at_max_ejection_percent(tmp_path: Path) -> None:
    c = _Controller(tmp_path)
    rule = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"host": "web", "trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 50}}},
    }
    c.engine.apply([service(), rule])
    c.pods = [pod(f"web-{i}", f"10.0.0.{i}") for i in range(4)]
    asyncio.run(c.controller.reconcile())
    servers = sorted(traffic.servers(c.proxy.plane))  # type: ignore[arg-type]
    for backend, server in servers[:3]:
        c.proxy.eject(backend, server)
    asyncio.run(c.controller.reconcile())
    ejected = [s for s in asyncio.run(c.proxy.servers()) if s.ejected]
    assert len(ejected) == 2  # 50 % of 4: one of the three is back
    assert any("health up" in command for command in c.proxy.commands)


def test_scrape_targets_are_the_ready_pods_of_annotated_services() -> None:
    annotated = service(ports=[{"port": 80, "targetPort": "http"}])
    annotated["metadata"]["annotations"] = {"prometheus.io/scrape": "true", "prometheus.io/path": "/stats"}
    plain = service("other")
    specs = [services.parse(annotated), services.parse(plain)]
    pods = [pod("web-a", "10.0.0.1"), pod("web-b", "10.0.0.2", ready=False), pod("other-a", "10.0.0.3", app="other")]
    assert services.scrape_targets(specs, pods) == [
        services.ScrapeTarget("10.0.0.1:8080", {"service": "web", "namespace": "default", "pod": "web-a"}, "/stats")
    ]
    annotated["metadata"]["annotations"]["prometheus.io/port"] = "9100"
    (target,) = services.scrape_targets([services.parse(annotated)], pods)
    assert target.address == "10.0.0.1:9100"


# -- pods reaching Services by name: the in-cluster proxies ------------------------------------------


def test_a_service_has_its_kubernetes_names_and_pods_search_their_namespace_first() -> None:
    web = services.parse(service("web", ns="shop"))
    assert services.dns_names(web) == ("web.shop", "web.shop.svc", "web.shop.svc.cluster.local")
    assert services.search_domains("shop") == ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert services.DNS_OPTIONS == ("ndots:1",)  # bare names through the search list first


@pytest.mark.parametrize(
    ("name", "app_protocol", "routed", "mode"),
    [
        ("http", "", False, "http"),
        ("http-web", "", False, "http"),
        ("web", "http", False, "http"),
        ("", "", False, "tcp"),  # kube-proxy's level
        ("", "", True, "http"),  # a VirtualService or TrafficSplit asked for HTTP routes
        ("web", "", True, "http"),
        ("postgres", "", False, "tcp"),
        ("mysql", "", True, "tcp"),  # declared: routing does not make it HTTP
        ("grpc-api", "", False, "tcp"),
        ("http", "kubernetes.io/h2c", False, "tcp"),  # appProtocol wins over the name
        ("https", "", True, "tcp"),
    ],
)
def test_port_modes_follow_istio_protocol_selection(name: str, app_protocol: str, routed: bool, mode: str) -> None:
    port = services.ServicePort(name, "TCP", 80, 8080, app_protocol=app_protocol)
    assert services.port_mode(port, routed) is traffic.Mode(mode)


def test_app_protocol_is_read_and_checked() -> None:
    parsed = services.parse(service(ports=[{"port": 80, "appProtocol": "http"}]))
    assert parsed.ports[0].app_protocol == "http"
    with pytest.raises(services.ServiceError, match=r"spec.ports\[0\].appProtocol: must be a string"):
        services.parse(service(ports=[{"port": 80, "appProtocol": 1}]))


def test_in_cluster_proxies_listen_on_the_service_ports_in_front_of_the_same_endpoints() -> None:
    web = services.parse(
        service(
            "web",
            ns="shop",
            ports=[
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "admin", "port": 9000, "targetPort": 9090},
            ],
        )
    )
    pods = [pod("web-a", "10.0.0.1", ns="shop"), pod("web-b", "10.0.0.2", ns="shop", ready=False)]
    (proxy,) = services.cluster_proxies([web], pods)
    assert proxy.ref == "shop/web" and proxy.aliases == services.dns_names(web)
    assert proxy.plane.contained
    http, admin = proxy.plane.listeners
    assert (http.address, http.port, http.mode) == ("0.0.0.0", 80, traffic.Mode.HTTP)
    assert (admin.address, admin.port, admin.mode) == ("0.0.0.0", 9000, traffic.Mode.TCP)
    loopback = services.plane([(web, {"80/TCP": 30080, "9000/TCP": 30090})], pods)
    assert http.pools == loopback.listeners[0].pools and admin.pools == loopback.listeners[1].pools
    assert [(e.address, e.port, e.state) for e in admin.pools[0].endpoints] == [
        ("10.0.0.1", 9090, READY),
        ("10.0.0.2", 9090, DOWN),
    ]
    config = traffic.render_config(proxy.plane, runtime_socket="/funade/runtime.sock", map_dir="/funade/maps")
    assert "bind 0.0.0.0:80" in config and "bind 0.0.0.0:9000" in config


def test_tcp_ports_keep_the_weights_and_leave_header_routes_out() -> None:
    ref, routing = services.split_routing(
        split(
            subsets=[{"name": "v1", "labels": {"v": "1"}}, {"name": "v2", "labels": {"v": "2"}}],
            weights={"v1": 80, "v2": 20},
            headerRoutes=[{"match": [{"headers": {"x-canary": {"exact": "1"}}}], "subset": "v2"}],
        )
    )
    web = services.parse(
        service(ns="shop", ports=[{"name": "web", "port": 80, "targetPort": 8080}, {"name": "redis", "port": 6379}])
    )
    (proxy,) = services.cluster_proxies([web], [pod("web-a", "10.0.0.1", ns="shop")], {ref: routing})
    web_port, redis = proxy.plane.listeners
    assert web_port.mode is traffic.Mode.HTTP and len(web_port.routes) == 1
    assert redis.mode is traffic.Mode.TCP and redis.routes == ()
    assert redis.default == (traffic.Destination("v1", 80), traffic.Destination("v2", 20))
    traffic.check(proxy.plane)


class _ClusterController(_Controller):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.cluster = FakeServiceProxies()
        self.controller = ServiceController(self.store, self.proxy, lambda: self.pods, cluster=self.cluster)


def test_the_controller_keeps_one_proxy_per_service_following_its_endpoints(tmp_path: Path) -> None:
    c = _ClusterController(tmp_path)
    asyncio.run(c.controller.reconcile())
    assert c.cluster.passes == 1 and c.cluster.running == {}  # every pass, Services or not: orphans go
    c.engine.apply([service("web"), service("api")])
    c.pods = [pod("web-a", "10.0.0.1")]
    asyncio.run(c.controller.reconcile())
    assert sorted(c.cluster.running) == ["default/api", "default/web"]
    web = c.cluster.running["default/web"]
    assert [e.address for e in web.plane.listeners[0].pools[0].endpoints] == ["10.0.0.1"]
    c.pods.append(pod("web-b", "10.0.0.2"))
    asyncio.run(c.controller.reconcile())
    assert len(c.cluster.running["default/web"].plane.listeners[0].pools[0].endpoints) == 2
    c.store.delete(ObjectKey("Service", "default", "api"))
    asyncio.run(c.controller.reconcile())
    assert sorted(c.cluster.running) == ["default/web"]


def test_in_cluster_proxies_failing_do_not_stop_the_loopback_plane(tmp_path: Path) -> None:
    c = _ClusterController(tmp_path)
    c.engine.apply([service()])
    c.pods = [pod("web-a", "10.0.0.1")]
    c.cluster.fail("Docker Engine is not reachable")
    assert asyncio.run(c.controller.reconcile()).action is traffic.Action.START  # type: ignore[union-attr]
    assert c.controller.cluster_error == "Docker Engine is not reachable"
    c.cluster.fail(None)
    asyncio.run(c.controller.reconcile())
    assert c.controller.cluster_error is None and list(c.cluster.running) == ["default/web"]


def test_drain_waits_for_requests_the_in_cluster_proxy_holds(tmp_path: Path) -> None:
    c = _ClusterController(tmp_path)
    c.engine.apply([service(ports=[{"name": "http", "port": 80, "targetPort": 8080}])])
    c.pods = [pod("web-a", "10.0.0.1")]
    asyncio.run(c.controller.reconcile())
    ((backend, server),) = traffic.servers(c.cluster.running["default/web"].plane).keys()
    c.cluster.set_sessions("default/web", backend, server, 1)
    c.pods = [pod("web-a", "10.0.0.1", deletionTimestamp="2026-11-28T00:00:00Z")]

    polls = 0
    servers = c.cluster.servers

    async def counted(refs: Collection[str]) -> dict[str, list[traffic.ServerStatus]]:
        nonlocal polls
        polls += 1
        return await servers(refs)

    c.cluster.servers = counted  # type: ignore[method-assign]

    async def scenario() -> tuple[bool, traffic.EndpointState]:
        task = asyncio.create_task(c.controller.drain("default", "web-a", time.time() + 10))

        async def asked_three_times() -> None:
            while polls < 3:  # the drain has looked at the proxy's sessions three times
                await asyncio.sleep(0)

        await asyncio.wait_for(asked_three_times(), 5)
        state = c.cluster.running["default/web"].plane.listeners[0].pools[0].endpoints[0].state
        waiting = not task.done()
        c.cluster.set_sessions("default/web", backend, server, 0)
        await asyncio.wait_for(task, 5)
        return waiting, state

    waiting, state = asyncio.run(scenario())
    assert waiting and state is DRAINING


def test_drain_does_not_wait_for_tcp_connections(tmp_path: Path) -> None:
    c = _ClusterController(tmp_path)
    c.engine.apply([service(ports=[{"name": "postgres", "port": 5432}])])
    c.pods = [pod("web-a", "10.0.0.1")]
    asyncio.run(c.controller.reconcile())
    ((backend, server),) = traffic.servers(c.cluster.running["default/web"].plane).keys()
    c.cluster.set_sessions("default/web", backend, server, 4)  # a connection pool stays open
    c.pods = [pod("web-a", "10.0.0.1", deletionTimestamp="2026-11-28T00:00:00Z")]
    started = time.monotonic()
    asyncio.run(c.controller.drain("default", "web-a", time.time() + 30))
    assert time.monotonic() - started < 5


# -- the adapter on a fake Docker Engine ----------------------------------------------------------------


def _proxy(name: str = "web", ns: str = "shop", pods: list[Obj] | None = None) -> services.ClusterProxy:
    (proxy,) = services.cluster_proxies(
        [services.parse(service(name, ns=ns, ports=[{"name": "http", "port": 80, "targetPort": 8080}]))],
        pods or [],
    )
    return proxy


@pytest.fixture
def fake_docker() -> FakeDocker:
    docker = FakeDocker()
    asyncio.run(docker.create_network(runtime.NETWORK))
    return docker


def test_a_proxy_container_per_service_on_the_pods_network(tmp_path: Path, fake_docker: FakeDocker) -> None:
    proxies = serviceproxy.ServiceProxies(fake_docker, tmp_path / "home")
    web = _proxy()
    assert asyncio.run(proxies.ensure([web])) == ["created shop/web"]
    (summary,) = asyncio.run(fake_docker.list_containers(labels={runtime.MANAGED: proxies.instance}))
    spec = fake_docker.spec_of(summary.id)
    assert spec.network_mode == runtime.NETWORK and tuple(spec.network_aliases) == web.aliases
    assert not spec.ports  # never published: nothing listens on the host
    assert spec.labels[runtime.ROLE] == "service-proxy" and spec.labels["funade.service"] == "shop/web"
    assert spec.readonly_rootfs and list(spec.cap_drop) == ["ALL"] and spec.user == f"{os.getuid()}:{os.getgid()}"
    (mount,) = spec.mounts
    assert (mount.source, mount.target) == (str(proxies.directory("shop/web")), "/funade")
    config = (proxies.directory("shop/web") / "haproxy.cfg").read_text()
    assert "stats socket /funade/runtime.sock" in config and "bind 0.0.0.0:80" in config
    assert spec.image.startswith(f"{serviceproxy.PROXY_REPO}:")
    assert asyncio.run(fake_docker.inspect_image(spec.image)).labels[serviceproxy.HASH_LABEL]
    # Nothing changed: nothing done. Stopped: started again with its configuration.
    assert asyncio.run(proxies.ensure([web])) == []
    fake_docker.exit(summary.id, 137)
    assert asyncio.run(proxies.ensure([web])) == ["started shop/web"]
    # A Service gone takes its proxy and its files; a container of another home is left alone.
    other = serviceproxy.ServiceProxies(fake_docker, tmp_path / "other")
    asyncio.run(other.ensure([_proxy("api")]))
    assert asyncio.run(proxies.ensure([])) == ["removed shop/web"]
    assert not proxies.directory("shop/web").exists()
    (left,) = asyncio.run(fake_docker.list_containers())
    assert left.labels["funade.service"] == "shop/api"


def test_after_a_restart_running_proxies_are_adopted_and_reloaded(tmp_path: Path, fake_docker: FakeDocker) -> None:
    home = tmp_path / "home"
    asyncio.run(serviceproxy.ServiceProxies(fake_docker, home).ensure([_proxy()]))
    (before,) = asyncio.run(fake_docker.list_containers())
    restarted = serviceproxy.ServiceProxies(fake_docker, home)
    cli = _FakeCli(restarted.directory("shop/web"))

    async def scenario() -> list[str]:
        async with cli:
            return await restarted.ensure([_proxy(pods=[pod("web-a", "10.0.0.1", ns="shop")])])

    # What the running proxy carries is unknown: a seamless reload, never a new container.
    assert asyncio.run(scenario()) == ["reloaded shop/web"]
    assert cli.commands == ["show proc", "reload", "show proc"]
    (after,) = asyncio.run(fake_docker.list_containers())
    assert after.id == before.id
    assert "server web-a-8080 10.0.0.1:8080" in (restarted.directory("shop/web") / "haproxy.cfg").read_text()

    # From now on endpoint changes go through the runtime API.
    async def endpoint_added() -> list[str]:
        async with cli:
            pods = [pod("web-a", "10.0.0.1", ns="shop"), pod("web-b", "10.0.0.2", ns="shop")]
            return await restarted.ensure([_proxy(pods=pods)])

    cli.commands.clear()
    assert asyncio.run(endpoint_added()) == ["updated shop/web"]
    assert cli.commands[0] == "add server shop.web:http:all/web-b-8080 10.0.0.2:8080 weight 1"


def test_a_configuration_haproxy_refuses_is_reported_and_not_started(tmp_path: Path, fake_docker: FakeDocker) -> None:
    proxies = serviceproxy.ServiceProxies(fake_docker, tmp_path / "home", binary="/bin/false")
    proxies._image = "funade/service-proxy:test"  # no image build from /bin/false
    fake_docker.add_image(proxies._image)
    with pytest.raises(serviceproxy.ServiceProxyError, match="HAProxy refused the configuration of shop/web"):
        asyncio.run(proxies.ensure([_proxy()]))
    assert asyncio.run(fake_docker.list_containers()) == []


def test_the_image_holds_haproxy_and_the_libraries_it_needs() -> None:
    binary = find_binary()
    files = serviceproxy.image_files(binary)
    assert binary in files
    assert any("/libc.so" in path for path in files) and any("ld-linux" in path for path in files)


def test_pod_sandboxes_search_their_namespace_first(tmp_path: Path, fake_docker: FakeDocker) -> None:
    fake_docker.add_image(runtime.PAUSE_IMAGE)
    local = runtime.LocalRuntime(fake_docker, tmp_path / "home")
    sandbox_pod = {"metadata": {"name": "client", "namespace": "shop", "uid": "0123456789abcdef"}, "spec": {}}
    sandbox = asyncio.run(local.create_sandbox(sandbox_pod))
    spec = fake_docker.spec_of(sandbox.id)
    assert list(spec.dns_search) == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert list(spec.dns_options) == ["ndots:1"]
    asyncio.run(local.close())


class _FakeCli:
    """HAProxy's master CLI and admin socket in a proxy's directory: one command per connection, answers canned."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.commands: list[str] = []
        self.reloads = 0
        self._servers: list[asyncio.AbstractServer] = []

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = (await reader.read()).decode().strip()
        self.commands.append(command)
        if command == "show proc":
            answer = (
                "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
                f"1               master          {self.reloads} [failed: 0]   0d00h00m01s     2.6\n"
                "# workers\n"
                f"{100 + self.reloads}             worker          0               0d00h00m01s     2.6\n"
            )
        elif command.startswith("prepare map"):
            answer = "New version created: 1\n"
        elif command.startswith("add server"):
            answer = "New server registered.\n"
        else:
            answer = ""
        if command == "reload":
            self.reloads += 1
        writer.write(answer.encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> _FakeCli:
        for name in ("master.sock", "runtime.sock"):
            path = self.directory / name
            path.unlink(missing_ok=True)
            self._servers.append(await asyncio.start_unix_server(self._answer, str(path)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()
