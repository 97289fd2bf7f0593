"""Istio VirtualService and DestinationRule on the local target: validation, routing, rendering."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.core import istio, services, traffic

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "istio"
SEED_VS = yaml.safe_load((FIXTURES / "virtual-service.yaml").read_text())
SEED_DR = yaml.safe_load((FIXTURES / "destination-rule.yaml").read_text())


def service(name: str = "myapp", ns: str = "default") -> services.ServiceSpec:
    return services.parse(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 3000}]},
        }
    )


def pod(name: str, ip: str, version: str, app: str = "myapp") -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app, "version": version}},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def vs(http: list[Obj], hosts: list[str] | None = None, ns: str = "default", name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hosts": hosts or ["myapp"], "http": http, **spec},
    }


def dr(host: str = "myapp", ns: str = "default", name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"host": host, **spec},
    }


def to(subset: str | None = None, weight: int | None = None, host: str = "myapp") -> Obj:
    entry: Obj = {"destination": {"host": host, **({"subset": subset} if subset else {})}}
    if weight is not None:
        entry["weight"] = weight
    return entry


SUBSETS = [{"name": "stable", "labels": {"version": "stable"}}, {"name": "canary", "labels": {"version": "canary"}}]


def seed_routing() -> tuple[services.Routing, list[str]]:
    got, warnings = istio.routing([SEED_VS], [SEED_DR], [service()])
    assert list(got) == ["default/myapp"]
    return got["default/myapp"], warnings


# -- the seed -----------------------------------------------------------------------------------


def test_the_seed_routes_the_canary_header_first_then_splits_95_5() -> None:
    rule, _ = seed_routing()
    assert rule.subsets == (
        services.Subset("stable", {"version": "stable"}),
        services.Subset("canary", {"version": "canary"}),
    )
    header, split = rule.routes
    assert header == traffic.Route(
        destinations=(traffic.Destination("canary", 100),),
        matches=(traffic.Match(headers=(traffic.HeaderMatch("x-canary", "true", traffic.MatchKind.EXACT),)),),
        name="http[0]",
    )
    assert header.retries == traffic.Retries()  # no retries block: Istio's default policy
    assert split.destinations == (traffic.Destination("stable", 95), traffic.Destination("canary", 5))
    assert split.matches == ()
    assert split.timeout == 30.0
    assert split.retries == traffic.Retries(3, 10.0, ("5xx", "reset", "connect-failure"))
    # The catch-all has its own timeout and retries, so it stays the last route: nothing is left for the default.
    assert rule.default == ()
    assert rule.limits == traffic.ConnectionPool(max_connections=100, max_pending=100, connect_timeout=10.0)
    assert rule.outlier is None  # circuitBreaker is ignored: Istio has no such field
    assert rule.source == "virtualservice/default/myapp, destinationrule/default/myapp"


def test_the_seed_warns_about_the_gateway_and_the_circuit_breaker() -> None:
    _, warnings = seed_routing()
    assert (
        "virtualservice/default/myapp: spec.gateways: no gateways on the local target: "
        "the routes apply to the Service's loopback port"
    ) in warnings
    assert (
        "destinationrule/default/myapp: spec.trafficPolicy.circuitBreaker: "
        "this is not an Istio field (Istio calls it outlierDetection); ignored"
    ) in warnings
    assert any("myapp.example.com name no Service: the routes apply to default/myapp" in w for w in warnings)
    assert any("http2MaxRequests: not enforced" in w for w in warnings)
    assert istio.check(SEED_VS) == [w for w in warnings if "spec.gateways" in w]


def test_the_seed_renders_to_haproxy() -> None:
    rule, _ = seed_routing()
    pods = [
        pod("myapp-s1", "10.0.0.1", "stable"),
        pod("myapp-s2", "10.0.0.2", "stable"),
        pod("myapp-c1", "10.0.0.3", "canary"),
    ]
    plane = services.plane([(service(), {"80/TCP": 30080})], pods, {"default/myapp": rule})
    traffic.check(plane)
    (listener,) = plane.listeners
    assert [(p.name, [e.name for e in p.endpoints]) for p in listener.pools] == [
        ("all", ["myapp-c1-3000", "myapp-s1-3000", "myapp-s2-3000"]),
        ("stable", ["myapp-s1-3000", "myapp-s2-3000"]),
        ("canary", ["myapp-c1-3000"]),
    ]
    config = traffic.render_config(plane, runtime_socket="/run/funade/haproxy.sock", map_dir="/run/funade/maps")
    assert "acl r0m0c0 req.fhdr(x-canary) -m str -- 'true'" in config
    assert "use_backend %[var(txn.funade_pick),add(0)," in config
    assert "use_backend %[var(txn.funade_pick),add(10000)," in config
    assert "default_backend funade.no-route" in config
    # Route 1's policy: 10 s per try (within the 30 s route timeout), 3 retries on 5xx, reset, connect-failure.
    assert "    timeout server 10s\n    retries 3\n    retry-on conn-failure empty-response" in config
    assert "    server myapp-s1-3000 10.0.0.1:3000 weight 1 maxconn 100" in config
    assert "http-request return status 503 if { queue() ge 100 }" in config
    (maps,) = traffic.render_maps(plane).values()
    assert maps.splitlines() == [
        "0:9999 default.myapp:80:canary",
        "10000:19499 default.myapp:80:stable:1",
        "19500:19999 default.myapp:80:canary:1",
    ]


# -- validation -------------------------------------------------------------------------------------


def edited(obj: Obj, path: str, value: Any) -> Obj:
    """``obj`` with ``value`` at a dotted path ("spec.http.1.retries"); None deletes the key."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("spec.http.0.match.0.uri", {"prefix": "/api"}, "spec.http[0].match[0].uri", "on headers only"),
        ("spec.http.0.match.0.method", {"exact": "GET"}, "spec.http[0].match[0].method", "on headers only"),
        ("spec.http.0.match.0.authority", {"exact": "a"}, "spec.http[0].match[0].authority", "on headers only"),
        ("spec.http.0.match.0.queryParams", {"a": {"exact": "1"}}, "spec.http[0].match[0].queryParams", "headers"),
        ("spec.http.0.match.0.port", 80, "spec.http[0].match[0].port", "on headers only"),
        ("spec.http.0.match.0.sourceLabels", {"a": "b"}, "spec.http[0].match[0].sourceLabels", "headers only"),
        ("spec.http.0.match.0.gateways", ["mesh"], "spec.http[0].match[0].gateways", "no gateways"),
        ("spec.http.0.match.0.withoutHeaders", {"a": {}}, "spec.http[0].match[0].withoutHeaders", "negative"),
        (
            "spec.http.0.match.0.headers.x-canary",
            {"suffix": "e"},
            "spec.http[0].match[0].headers[x-canary].suffix",
            "unknown field",
        ),
        (
            "spec.http.0.match.0.headers.x-canary",
            {"exact": "a", "regex": "b"},
            "spec.http[0].match[0].headers[x-canary]",
            "only one of",
        ),
        (
            "spec.http.0.match.0.headers.x-canary",
            {"exact": ""},
            "spec.http[0].match[0].headers[x-canary].exact",
            "empty value",
        ),
        (
            "spec.http.0.match.0.headers.x-canary",
            {"regex": "(a"},
            "spec.http[0].match[0].headers[x-canary].regex",
            "not a valid regular",
        ),
        (
            "spec.http.0.match.0.headers",
            {"x canary": {"exact": "1"}},
            "spec.http[0].match[0].headers[x canary]",
            "letters",
        ),
        ("spec.tcp", [{"route": []}], "spec.tcp", "TCP routes"),
        ("spec.tls", [{"match": []}], "spec.tls", "TLS routes"),
        ("spec.http.1.fault", {"abort": {"httpStatus": 500}}, "spec.http[1].fault", "fault injection"),
        ("spec.http.1.mirror", {"host": "b"}, "spec.http[1].mirror", "mirroring"),
        ("spec.http.1.rewrite", {"uri": "/"}, "spec.http[1].rewrite", "rewrites"),
        ("spec.http.1.redirect", {"uri": "/"}, "spec.http[1].redirect", "redirects"),
        ("spec.http.1.corsPolicy", {"allowMethods": ["GET"]}, "spec.http[1].corsPolicy", "CORS"),
        ("spec.http.1.headers", {"request": {"set": {"a": "b"}}}, "spec.http[1].headers", "header manipulation"),
        ("spec.http.1.delegate", {"name": "x"}, "spec.http[1].delegate", "delegate"),
        ("spec.http.1.route.0.headers", {"request": {"remove": ["a"]}}, "spec.http[1].route[0].headers", "header"),
        ("spec.http.1.route.0.destination.port", {"number": 80}, "spec.http[1].route[0].destination.port", "ports"),
        ("spec.http.1.route.0.weight", 101, "spec.http[1].route[0].weight", "out of range"),
        ("spec.http.1.route", [to("stable", 0), to("canary")], "spec.http[1].route", "every weight is 0"),
        ("spec.http.1.route", [to("stable", 95), to("stable", 6)], "spec.http[1].route[1].weight", "more than 100"),
        ("spec.http.1.retries.retryOn", "5xx,retriable-4xx", "spec.http[1].retries.retryOn", "no retry condition"),
        ("spec.http.1.retries.retryOn", "409", "spec.http[1].retries.retryOn", "HAProxy retries on status"),
        ("spec.http.1.retries.attempts", -1, "spec.http[1].retries.attempts", "out of range"),
        ("spec.http.1.retries.perTryTimeout", "1.5ms", "spec.http[1].retries.perTryTimeout", "ms precision"),
        ("spec.http.1.timeout", "soon", "spec.http[1].timeout", "not a duration"),
        ("spec.http.1.timeoutt", "1s", "spec.http[1].timeoutt", "unknown field"),
        ("spec.hosts", [], "spec.hosts", "required"),
        ("spec.http", [], "spec.http", "required"),
        ("apiVersion", "networking.istio.io/v2", "apiVersion", "one of networking.istio.io/v1alpha3"),
    ],
)
def test_virtual_service_refusals_name_the_field(path: str, value: Any, field: str, message: str) -> None:
    with pytest.raises(istio.IstioError) as caught:
        istio.check(edited(SEED_VS, path, value))
    assert caught.value.object == "virtualservice/default/myapp"
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (
            "spec.trafficPolicy.loadBalancer",
            {"simple": "PASSTHROUGH"},
            "spec.trafficPolicy.loadBalancer.simple",
            "PASSTHROUGH",
        ),
        (
            "spec.trafficPolicy.loadBalancer",
            {"consistentHash": {"httpHeaderName": "u"}},
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "sticky",
        ),
        ("spec.trafficPolicy.tls", {"mode": "SIMPLE"}, "spec.trafficPolicy.tls.mode", "TLS origination"),
        ("spec.trafficPolicy.tls", {"mode": "DISABLE", "sni": "a"}, "spec.trafficPolicy.tls.sni", "TLS origination"),
        (
            "spec.trafficPolicy.portLevelSettings",
            [{"port": {"number": 80}}],
            "spec.trafficPolicy.portLevelSettings",
            "per-port",
        ),
        (
            "spec.trafficPolicy.outlierDetection",
            {"consecutiveGatewayErrors": 3},
            "spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors",
            "every 5xx",
        ),
        (
            "spec.trafficPolicy.outlierDetection",
            {"minHealthPercent": 50},
            "spec.trafficPolicy.outlierDetection.minHealthPercent",
            "healthy",
        ),
        (
            "spec.trafficPolicy.outlierDetection",
            {"interval": "0s"},
            "spec.trafficPolicy.outlierDetection.interval",
            "at least 1ms",
        ),
        (
            "spec.trafficPolicy.outlierDetection",
            {"maxEjectionPercent": 150},
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "out of range",
        ),
        (
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            -1,
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "out of range",
        ),
        (
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            10,
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            "not a duration",
        ),
        (
            "spec.subsets.0.trafficPolicy",
            {"loadBalancer": {"simple": "ROUND_ROBIN"}},
            "spec.subsets[0].trafficPolicy",
            "one policy per Service",
        ),
        ("spec.subsets.0.labels", {"version": 1}, "spec.subsets[0].labels[version]", "label values are strings"),
        ("spec.subsets.0.name", "Stable", "spec.subsets[0].name", "DNS label"),
        ("spec.subsets.0.name", "all", "spec.subsets[0].name", "reserved"),
        ("spec.subsets.0.name", "canary", "spec.subsets[1].name", "defined twice"),
        ("spec.workloadSelector", {"matchLabels": {"a": "b"}}, "spec.workloadSelector", "client workloads"),
        ("spec.trafficPolicy.connectionPool.udp", {}, "spec.trafficPolicy.connectionPool.udp", "unknown field"),
        ("kind", "Gateway", "kind", "VirtualService or DestinationRule"),
    ],
)
def test_destination_rule_refusals_name_the_field(path: str, value: Any, field: str, message: str) -> None:
    with pytest.raises(istio.IstioError) as caught:
        istio.check(edited(SEED_DR, path, value))
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{caught.value.object}: {field}: ")


@pytest.mark.parametrize(
    ("obj", "field", "message"),
    [
        (edited(SEED_VS, "spec.exportTo", ["."]), "spec.exportTo", "no effect"),
        (edited(SEED_VS, "spec.http.0.match.0.statPrefix", "canary"), "spec.http[0].match[0].statPrefix", "no effect"),
        (
            edited(SEED_VS, "spec.http.1.retries.retryRemoteLocalities", True),
            "spec.http[1].retries.retryRemoteLocalities",
            "locality",
        ),
        (
            edited(SEED_VS, "spec.http.0.match.0.headers.uri", {"exact": "/"}),
            "spec.http[0].match[0].headers[uri]",
            "Istio ignores",
        ),
        (
            edited(SEED_DR, "spec.trafficPolicy.loadBalancer", {"simple": "LEAST_REQUEST"}),
            "spec.trafficPolicy.loadBalancer.simple",
            "round robin",
        ),
        (
            edited(SEED_DR, "spec.trafficPolicy.tls", {"mode": "ISTIO_MUTUAL"}),
            "spec.trafficPolicy.tls.mode",
            "plain HTTP",
        ),
        (
            edited(SEED_DR, "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy", "UPGRADE"),
            "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
            "HTTP/1.1",
        ),
        (
            edited(SEED_DR, "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection", 10),
            "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection",
            "no effect",
        ),
        (edited(SEED_DR, "spec.exportTo", ["*"]), "spec.exportTo", "no effect"),
    ],
)
def test_harmless_fields_are_warnings(obj: Obj, field: str, message: str) -> None:
    warnings = [w for w in istio.check(obj) if f": {field}: " in w]
    assert len(warnings) == 1
    assert message in warnings[0]


def test_default_valued_fields_are_neither_refused_nor_warned() -> None:
    obj = copy.deepcopy(SEED_VS)
    obj["spec"]["exportTo"] = []
    obj["spec"]["http"][0]["match"][0]["ignoreUriCase"] = False
    obj["spec"]["http"][1].update(fault=None, mirror=None, headers={})
    obj["spec"]["http"][1]["route"][0]["destination"]["port"] = None
    assert istio.check(obj) == istio.check(SEED_VS)
    plain = dr(subsets=SUBSETS, trafficPolicy={"loadBalancer": {"simple": "ROUND_ROBIN"}, "tls": {"mode": "DISABLE"}})
    assert istio.check(plain) == []


# -- defaults and conversions ------------------------------------------------------------------------


def route_of(http: Obj) -> traffic.Route:
    got, _ = istio.routing([vs([http, {"route": [to()]}])], [dr(subsets=SUBSETS)], [service()])
    return got["default/myapp"].routes[0]


def test_retries_follow_istio_defaults() -> None:
    match = [{"headers": {"x-a": {}}}]
    assert route_of({"match": match, "route": [to()]}).retries == traffic.Retries()
    assert route_of({"match": match, "route": [to()], "retries": {"attempts": 0}}).retries.attempts == 0
    assert route_of({"match": match, "route": [to()], "retries": {}}).retries.attempts == 0  # attempts unset: 0
    kept = route_of({"match": match, "route": [to()], "retries": {"attempts": 4, "perTryTimeout": "250ms"}})
    assert kept.retries == traffic.Retries(4, 0.25, traffic.DEFAULT_RETRY_ON)
    spaced = route_of({"match": match, "route": [to()], "retries": {"attempts": 1, "retryOn": " 503 , gateway-error,"}})
    assert spaced.retries.retry_on == ("503", "gateway-error")


def test_matches_and_weights() -> None:
    got = route_of(
        {
            "match": [
                {"headers": {"x-user": {"prefix": "qa-"}, "x-beta": {}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=1)(;.*)?$"}, "x-empty": {"prefix": ""}}},
            ],
            "route": [to("stable", 75), to("canary", 25)],
            "timeout": "0s",
        }
    )
    assert got.matches == (
        traffic.Match(
            headers=(traffic.HeaderMatch("x-user", "qa-", traffic.MatchKind.PREFIX), traffic.HeaderMatch("x-beta"))
        ),
        traffic.Match(
            headers=(
                traffic.HeaderMatch("cookie", "^(.*?;)?(canary=1)(;.*)?$", traffic.MatchKind.REGEX),
                traffic.HeaderMatch("x-empty"),
            )
        ),
    )
    assert got.destinations == (traffic.Destination("stable", 75), traffic.Destination("canary", 25))
    assert got.timeout is None  # 0s disables the timeout
    # A lone destination takes everything whatever its weight; missing weights among several are 0.
    assert route_of({"match": [{"headers": {"x": {}}}], "route": [to("canary", 0)]}).destinations == (
        traffic.Destination("canary", 100),
    )
    assert route_of({"match": [{"headers": {"x": {}}}], "route": [to("canary", 100), to("stable")]}).destinations == (
        traffic.Destination("canary", 100),
        traffic.Destination("stable", 0),
    )
    # Two entries for one pool add up (both spellings name the Service).
    both = [to("canary", 10), to("stable", 80), to("canary", 10, host="myapp.default.svc.cluster.local")]
    assert route_of({"match": [{"headers": {"x": {}}}], "route": both}).destinations == (
        traffic.Destination("canary", 20),
        traffic.Destination("stable", 80),
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1.5s", 1.5), ("100ms", 0.1), ("1m", 60.0), ("1h", 3600.0), ("1h30m", 5400.0), ("3000us", 0.003)],
)
def test_durations(text: str, seconds: float) -> None:
    assert route_of({"match": [{"headers": {"x": {}}}], "route": [to()], "timeout": text}).timeout == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "not a duration"),
        ("-1s", "not a duration"),
        ("1d", "not a duration"),
        ("1.2.3s", "not a duration"),
        ("", "not a duration"),
        (30, "not a duration"),
        ("2500us", "ms precision"),
        ("500us", "at least 1ms"),
    ],
)
def test_bad_durations_are_refused(text: object, message: str) -> None:
    with pytest.raises(istio.IstioError, match=rf"spec\.http\[0\]\.timeout: .*{message}"):
        istio.check(vs([{"route": [to()], "timeout": text}]))


def test_catch_all_with_istio_defaults_becomes_the_default_and_later_routes_are_unreachable() -> None:
    obj = vs(
        [
            {"match": [{"headers": {"x-canary": {"exact": "true"}}}], "route": [to("canary")]},
            {"match": [{"name": "everything"}], "route": [to("stable", 90), to("canary", 10)]},
            {"route": [to("canary")]},
        ]
    )
    got, warnings = istio.routing([obj], [dr(subsets=SUBSETS)], [service()])
    rule = got["default/myapp"]
    assert [r.name for r in rule.routes] == ["http[0]"]
    assert rule.default == (traffic.Destination("stable", 90), traffic.Destination("canary", 10))
    assert (
        "virtualservice/default/web: spec.http[2]: never used: spec.http[1] before it matches every request" in warnings
    )
    plane = services.plane([(service(), {"80/TCP": 30080})], [pod("a", "10.0.0.1", "stable")], got)
    config = traffic.render_config(plane, runtime_socket="/run/h.sock", map_dir="/run/maps")
    assert "add(10000),map_int(/run/maps/default.myapp:80.map,funade.no-route)]  # default" in config


def test_without_a_catch_all_unmatched_requests_get_404() -> None:
    obj = vs([{"match": [{"headers": {"x-canary": {"exact": "true"}}}], "route": [to("canary")]}])
    got, _ = istio.routing([obj], [dr(subsets=SUBSETS)], [service()])
    assert got["default/myapp"].default == ()
    plane = services.plane([(service(), {"80/TCP": 30080})], [pod("a", "10.0.0.1", "canary")], got)
    config = traffic.render_config(plane, runtime_socket="/run/h.sock", map_dir="/run/maps")
    uses = [line for line in config.splitlines() if "use_backend" in line]
    assert len(uses) == 1 and " if r0m0c0" in uses[0]
    assert "default_backend funade.no-route" in config


def test_a_destination_rule_alone_gives_subsets_and_policies_and_routes_everything_to_all() -> None:
    rule_obj = dr(
        subsets=SUBSETS,
        trafficPolicy={
            "outlierDetection": {"consecutive5xxErrors": 3, "interval": "5s", "maxEjectionPercent": 0},
            "connectionPool": {"tcp": {"connectTimeout": "250ms"}},
        },
    )
    got, warnings = istio.routing([], [rule_obj], [service()])
    rule = got["default/myapp"]
    assert warnings == []
    assert rule.routes == ()
    assert rule.default == (traffic.Destination("all", 100),)
    assert [s.name for s in rule.subsets] == ["stable", "canary"]
    # maxEjectionPercent 0 is proto3's "unset": Istio keeps Envoy's 10 %; baseEjectionTime keeps 30 s.
    assert rule.outlier == traffic.OutlierDetection(3, 5.0, 30.0, 10)
    assert rule.limits == traffic.ConnectionPool(None, None, 0.25)
    empty, _ = istio.routing([], [dr(trafficPolicy={"outlierDetection": {}})], [service()])
    assert empty["default/myapp"].outlier == traffic.OutlierDetection()
    disabled, _ = istio.routing([], [dr(trafficPolicy={"outlierDetection": {"consecutive5xxErrors": 0}})], [service()])
    assert disabled["default/myapp"].outlier == traffic.OutlierDetection(consecutive_5xx=0)


def test_a_virtual_service_alone_routes_to_all_endpoints() -> None:
    got, _ = istio.routing([vs([{"route": [to()], "timeout": "5s"}])], [], [service()])
    rule = got["default/myapp"]
    assert rule.subsets == ()
    assert rule.routes == (traffic.Route((traffic.Destination("all", 100),), timeout=5.0, name="http[0]"),)
    assert rule.default == ()
    assert rule.source == "virtualservice/default/web"


# -- hosts and subsets across objects ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ref"),
    [
        ("web", "shop/web"),
        ("web.other", "other/web"),
        ("web.other.svc", "other/web"),
        ("web.other.svc.cluster.local", "other/web"),
        ("web.shop.svc.cluster.local.", "shop/web"),
    ],
)
def test_hosts_resolve_like_istio_short_names_in_the_objects_namespace(host: str, ref: str) -> None:
    known = [service("web", "shop"), service("web", "other")]
    got, _ = istio.routing([vs([{"route": [to(host=host)]}], hosts=[host], ns="shop")], [dr(host, ns="shop")], known)
    assert list(got) == [ref]
    assert got[ref].source == "virtualservice/shop/web, destinationrule/shop/web"


def test_refusals_across_objects() -> None:
    known = [service(), service("other")]
    with pytest.raises(
        istio.IstioError, match=r"spec\.http\[0\]\.route\[0\]\.destination\.subset: 'canary' is not defined.*503"
    ):
        istio.routing([vs([{"route": [to("canary")]}])], [], known)
    with pytest.raises(istio.IstioError, match=r"destination\.host: 'other' is not service default/myapp"):
        istio.routing([vs([{"route": [to("canary", 90), to(host="other", weight=10)]}])], [dr(subsets=SUBSETS)], known)
    with pytest.raises(istio.IstioError, match=r"spec\.hosts: .*name no Service, and the destinations name 2"):
        istio.routing(
            [vs([{"route": [to(weight=50), to(host="other", weight=50)]}], hosts=["a.example.com"])], [], known
        )
    with pytest.raises(istio.IstioError, match=r"destination\.host: 'gone' names no Service"):
        istio.routing([vs([{"route": [to(host="gone")]}], hosts=["a.example.com"])], [], known)
    with pytest.raises(istio.IstioError, match=r"spec\.hosts: name several Services"):
        istio.routing([vs([{"route": [to()]}], hosts=["myapp", "other"])], [], known)
    with pytest.raises(
        istio.IstioError, match=r"virtualservice/default/b: spec\.hosts: .*already routed by virtualservice/default/a"
    ):
        istio.routing([vs([{"route": [to()]}], name="a"), vs([{"route": [to()]}], name="b")], [], known)
    with pytest.raises(
        istio.IstioError, match=r"destinationrule/default/b: spec\.host: .*already has destinationrule/default/a"
    ):
        istio.routing([], [dr(name="a"), dr("myapp.default.svc.cluster.local", name="b")], known)
    with pytest.raises(istio.IstioError, match=r"spec\.host: '\*\.default\.svc\.cluster\.local': wildcard"):
        istio.routing([], [dr("*.default.svc.cluster.local")], known)
    with pytest.raises(istio.IstioError, match="a VirtualService is expected here"):
        istio.routing([dr()], [], known)


def test_a_destination_rule_for_an_unknown_host_is_ignored_as_istio_does() -> None:
    got, warnings = istio.routing([], [dr("nowhere")], [service()])
    assert got == {}
    assert warnings == [
        "destinationrule/default/web: spec.host: 'nowhere' names no Service; ignored, as Istio ignores it"
    ]
