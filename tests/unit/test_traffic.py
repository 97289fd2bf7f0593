"""The data plane must render to the HAProxy configuration that routes as Istio would.

Istio's semantics (shared/reference/progressive-delivery.md, section 8): routes in order and
the first match wins; match entries are ORed and conditions within one ANDed; a header
match is exact, prefix or regex, an empty value checking presence only; each destination
gets ``weight / sum(weights)``. HAProxy 2.6 facts (configuration and management guides):
``use_backend`` with a log-format name, ``map_int`` with integer ranges, ``prepare map`` /
``commit map`` for atomic replacement, ``retry-on`` keywords and status codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from funade.adapters.haproxy import FakeProxy, HAProxy, HAProxyError, find_binary, parse_show_proc, parse_stat
from funade.adapters.haproxy import process as haproxy_process
from funade.core import traffic
from funade.core.traffic import (
    ConnectionPool,
    CookieMatch,
    DataPlane,
    Destination,
    Endpoint,
    EndpointState,
    HeaderMatch,
    Listener,
    Match,
    MatchKind,
    OutlierDetection,
    Pool,
    Retries,
    Route,
    ServerStatus,
    TrafficError,
)

pytestmark = pytest.mark.unit

MAPS = "/run/funade/maps"
SOCKET = "/run/funade/runtime.sock"
MAP = f"{MAPS}/shop.web:80.map"
READY, DRAINING, DOWN = EndpointState.READY, EndpointState.DRAINING, EndpointState.DOWN


def ep(name: str, last: int = 1, state: EndpointState = READY, port: int = 8080) -> Endpoint:
    return Endpoint(name, f"10.0.0.{last}", port, state)


def listener(**changes: object) -> Listener:
    base = Listener(
        name="shop/web:80",
        port=18080,
        pools=(Pool("stable", (ep("web-a", 1), ep("web-b", 2))), Pool("canary", (ep("web-c", 3),))),
        default=(Destination("stable"),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def plane(*listeners: Listener) -> DataPlane:
    return DataPlane(listeners or (listener(),))


def render(p: DataPlane) -> str:
    return traffic.render_config(p, runtime_socket=SOCKET, map_dir=MAPS)


def lines_of(config: str, prefix: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip().startswith(prefix)]


def section(config: str, header: str) -> list[str]:
    """The lines of one section (``frontend X`` / ``backend Y``), header excluded."""
    out: list[str] = []
    inside = False
    for line in config.splitlines():
        if line == header:
            inside = True
            continue
        if inside and (not line.startswith("    ")):
            break
        if inside:
            out.append(line.strip())
    assert inside, f"no section {header!r} in:\n{config}"
    return out


def the_map(p: DataPlane, name: str = "shop.web:80.map") -> list[str]:
    return traffic.render_maps(p)[name].splitlines()


# -- the whole file -------------------------------------------------------------------------------


def test_a_plain_service_renders_one_frontend_one_backend_and_its_servers() -> None:
    p = plane(
        Listener(
            name="shop/web:80",
            port=18080,
            pools=(Pool("all", (ep("web-a", 1), ep("web-b", 2, DRAINING), ep("web-c", 3, DOWN))),),
            default=(Destination("all"),),
        )
    )
    assert render(p) == (
        "# Written by funade: every change here is overwritten.\n"
        "global\n"
        "    stats socket /run/funade/runtime.sock mode 600 level admin expose-fd listeners\n"
        "    stats timeout 30s\n"
        "    hard-stop-after 60s\n"
        "    noreuseport\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    balance roundrobin\n"
        "    option redispatch 1\n"
        "    option idle-close-on-response\n"
        "    http-reuse safe\n"
        "    timeout connect 10s\n"
        "    timeout client 60s\n"
        "    timeout server 1h\n"
        "    timeout http-request 30s\n"
        "    timeout http-keep-alive 30s\n"
        "    timeout queue 10s\n"
        "    timeout check 10s\n"
        "\n"
        "backend funade.no-route\n"
        "    http-request return status 404\n"
        "\n"
        "frontend shop.web:80\n"
        "    # shop/web:80\n"
        "    bind 127.0.0.1:18080\n"
        "    http-request set-var(txn.funade_pick) rand(10000)\n"
        "    use_backend %[var(txn.funade_pick),add(0),map_int(/run/funade/maps/shop.web:80.map,funade.no-route)]"
        "  # default\n"
        "    default_backend funade.no-route\n"
        "\n"
        "backend shop.web:80:all\n"
        "    timeout connect 10s\n"
        "    retries 2\n"
        "    retry-on conn-failure 503\n"
        "    server web-a 10.0.0.1:8080 weight 1\n"
        "    server web-b 10.0.0.2:8080 weight 0\n"
        "    server web-c 10.0.0.3:8080 weight 1 disabled\n"
    )
    assert traffic.render_maps(p) == {"shop.web:80.map": "0:9999 shop.web:80:all\n"}


def test_every_listener_binds_loopback_only_and_ipv6_addresses_are_bracketed() -> None:
    p = plane(
        listener(),
        Listener("shop/api:81", 18081, (Pool("all", (Endpoint("api-a", "fd00::5", 9000),)),), address="::1"),
    )
    config = render(p)
    assert lines_of(config, "bind ") == ["bind 127.0.0.1:18080", "bind [::1]:18081"]
    assert "server api-a [fd00::5]:9000 weight 1" in lines_of(config, "server ")


def test_the_runtime_socket_hands_listeners_to_the_next_process() -> None:
    assert lines_of(render(plane()), "stats socket") == [
        "stats socket /run/funade/runtime.sock mode 600 level admin expose-fd listeners"
    ]


# -- routes ---------------------------------------------------------------------------------------


def test_routes_keep_their_order_and_the_default_comes_last() -> None:
    canary_header = Route((Destination("canary"),), (Match(headers=(HeaderMatch("x-canary", "true"),)),), name="hdr")
    everyone = Route((Destination("stable", 95), Destination("canary", 5)), name="split")
    config = render(plane(listener(routes=(canary_header, everyone))))
    rules = lines_of(config, "use_backend")
    assert [rule.split("add(")[1].split(")")[0] for rule in rules] == ["0", "10000", "20000"]
    assert rules[0].endswith("if r0m0c0  # hdr")
    assert rules[1].endswith(")]  # split")  # no condition: it takes whatever the first did not
    assert rules[2].endswith(")]  # default")
    assert lines_of(config, "default_backend") == ["default_backend funade.no-route"]


def test_without_a_default_unmatched_requests_get_no_route() -> None:
    only = Route((Destination("canary"),), (Match(headers=(HeaderMatch("x-canary", "1"),)),))
    p = plane(listener(routes=(only,), default=()))
    assert len(lines_of(render(p), "use_backend")) == 1
    assert the_map(p) == ["0:9999 shop.web:80:canary"]
    assert "http-request return status 404" in section(render(p), "backend funade.no-route")


@pytest.mark.parametrize(
    ("condition", "acl"),
    [
        (HeaderMatch("x-canary", "true"), "req.fhdr(x-canary) -m str -- 'true'"),
        (HeaderMatch("x-user", "beta-", MatchKind.PREFIX), "req.fhdr(x-user) -m beg -- 'beta-'"),
        (HeaderMatch("x-v", r"v\d+", MatchKind.REGEX), r"req.fhdr(x-v) -m reg -- '^(?:v\d+)$'"),
        (HeaderMatch("x-debug"), "req.hdr_cnt(x-debug) gt 0"),
        (HeaderMatch("x-debug", "", MatchKind.REGEX), "req.hdr_cnt(x-debug) gt 0"),
        (HeaderMatch("x-q", "it's"), "req.fhdr(x-q) -m str -- 'it'\"'\"'s'"),
        (HeaderMatch("x-q", "-m reg #x"), "req.fhdr(x-q) -m str -- '-m reg #x'"),
        (CookieMatch("user", "alice"), "req.cook(user) -m str -- 'alice'"),
        (CookieMatch("user", "al", MatchKind.PREFIX), "req.cook(user) -m beg -- 'al'"),
        (CookieMatch("group", "beta|alpha", MatchKind.REGEX), "req.cook(group) -m reg -- '^(?:beta|alpha)$'"),
        (CookieMatch("canary"), r"req.fhdr(cookie) -m reg -- '(?:^|;)\s*canary='"),
        (CookieMatch("a.b"), r"req.fhdr(cookie) -m reg -- '(?:^|;)\s*a\.b='"),
    ],
)
def test_header_and_cookie_conditions(condition: HeaderMatch | CookieMatch, acl: str) -> None:
    match = Match(headers=(condition,)) if isinstance(condition, HeaderMatch) else Match(cookies=(condition,))
    config = render(plane(listener(routes=(Route((Destination("canary"),), (match,)),))))
    assert lines_of(config, "acl ") == [f"acl r0m0c0 {acl}"]


def test_conditions_within_an_entry_are_anded_and_entries_ored() -> None:
    both = Match(headers=(HeaderMatch("x-a", "1"),), cookies=(CookieMatch("c", "2"),))
    other = Match(headers=(HeaderMatch("x-b", "3"),))
    config = render(plane(listener(routes=(Route((Destination("canary"),), (both, other)),))))
    assert lines_of(config, "acl ") == [
        "acl r0m0c0 req.fhdr(x-a) -m str -- '1'",
        "acl r0m0c1 req.cook(c) -m str -- '2'",
        "acl r0m1c0 req.fhdr(x-b) -m str -- '3'",
    ]
    assert lines_of(config, "use_backend")[0].endswith(" if r0m0c0 r0m0c1 || r0m1c0")


def test_an_empty_match_entry_matches_everything() -> None:
    anything = Route((Destination("canary"),), (Match(headers=(HeaderMatch("x-a", "1"),)), Match()))
    rule = lines_of(render(plane(listener(routes=(anything,)))), "use_backend")[0]
    assert " if " not in rule


# -- weights --------------------------------------------------------------------------------------


def test_a_split_gives_each_pool_its_share_of_ten_thousand_buckets() -> None:
    split = Route((Destination("stable", 90), Destination("canary", 10)))
    assert the_map(plane(listener(routes=(split,)))) == [
        "0:8999 shop.web:80:stable",
        "9000:9999 shop.web:80:canary",
        "10000:19999 shop.web:80:stable",  # the default
    ]


@pytest.mark.parametrize(
    ("weights", "ranges"),
    [
        ((100, 0), ["0:9999"]),  # weight 0 gets nothing, not even one bucket
        ((0, 100), ["0:9999"]),
        ((1, 3), ["0:2499", "2500:9999"]),  # weight / sum(weights)
        ((1, 1), ["0:4999", "5000:9999"]),
        ((1, 99), ["0:99", "100:9999"]),
    ],
)
def test_weights_are_normalised_and_zero_weights_get_no_range(weights: tuple[int, int], ranges: list[str]) -> None:
    split = (Destination("stable", weights[0]), Destination("canary", weights[1]))
    entries = the_map(plane(listener(default=split)))
    assert [entry.split()[0] for entry in entries] == ranges


def test_three_way_splits_cover_every_bucket_once() -> None:
    p = plane(
        listener(
            pools=(Pool("a"), Pool("b"), Pool("c")),
            default=(Destination("a", 1), Destination("b", 1), Destination("c", 1)),
        )
    )
    bounds = [tuple(int(x) for x in entry.split()[0].split(":")) for entry in the_map(p)]
    assert bounds == [(0, 3332), (3333, 6666), (6667, 9999)]


# -- timeouts, retries, limits, outlier detection ----------------------------------------------------


def test_retries_translate_envoy_conditions_to_haproxy_keywords() -> None:
    route = Route(
        (Destination("stable", 95), Destination("canary", 5)),
        timeout=30,
        retries=Retries(attempts=3, per_try_timeout=10, retry_on=("5xx", "reset", "connect-failure")),
    )
    config = render(plane(listener(routes=(route,), default=())))
    assert section(config, "backend shop.web:80:stable")[:4] == [
        "timeout connect 10s",
        "timeout server 10s",
        "retries 3",
        "retry-on conn-failure empty-response junk-response response-timeout 500 501 502 503 504",
    ]


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        (Retries(), ["retries 2", "retry-on conn-failure 503"]),  # Istio's default (503 too); gRPC parts are moot
        (Retries(attempts=0, retry_on=("5xx",)), ["retries 0", "retry-on none"]),
        (Retries(attempts=1, retry_on=("gateway-error",)), ["retries 1", "retry-on conn-failure 502 503 504"]),
        (Retries(attempts=1, retry_on=("503", "404")), ["retries 1", "retry-on 404 503"]),
        (Retries(attempts=2, retry_on=("unavailable",)), ["retries 0", "retry-on none"]),
    ],
)
def test_retry_policies(retries: Retries, expected: list[str]) -> None:
    config = render(plane(listener(routes=(Route((Destination("stable"),), retries=retries),), default=())))
    assert [line for line in section(config, "backend shop.web:80:stable") if line.startswith("retr")] == expected


@pytest.mark.parametrize(
    ("timeout", "per_try", "attempts", "expected"),
    [
        (None, None, 2, []),  # Istio: no timeout
        (30.0, None, 2, ["timeout server 30s"]),  # each try gets the route timeout
        (30.0, 10.0, 2, ["timeout server 10s"]),
        (5.0, 10.0, 2, ["timeout server 5s"]),  # a try never outlives the route
        (30.0, 10.0, 0, ["timeout server 30s"]),  # no retries: no per-try timeout
        (0.25, None, 0, ["timeout server 250ms"]),
    ],
)
def test_timeouts(timeout: float | None, per_try: float | None, attempts: int, expected: list[str]) -> None:
    route = Route((Destination("stable"),), timeout=timeout, retries=Retries(attempts, per_try))
    config = render(plane(listener(routes=(route,), default=())))
    assert lines_of("\n".join(section(config, "backend shop.web:80:stable")), "timeout server") == expected


def test_routes_with_different_policies_get_backends_of_their_own() -> None:
    header = Route((Destination("canary"),), (Match(headers=(HeaderMatch("x-canary", "true"),)),))
    split = Route((Destination("stable", 95), Destination("canary", 5)), timeout=30)
    p = plane(listener(routes=(header, split), default=()))
    assert lines_of(render(p), "backend ") == [
        "backend funade.no-route",
        "backend shop.web:80:stable",
        "backend shop.web:80:canary",
        "backend shop.web:80:stable:1",
        "backend shop.web:80:canary:1",
    ]
    assert the_map(p) == [
        "0:9999 shop.web:80:canary",
        "10000:19499 shop.web:80:stable:1",
        "19500:19999 shop.web:80:canary:1",
    ]


def test_outlier_detection_ejects_on_consecutive_errors_for_the_base_ejection_time() -> None:
    p = plane(listener(outlier=OutlierDetection(consecutive_5xx=5, interval=10, base_ejection_time=30)))
    config = render(p)
    assert lines_of(config, "server web-a") == [
        "server web-a 10.0.0.1:8080 weight 1 check inter 10s fastinter 30s downinter 30s rise 1 fall 5 "
        "observe layer7 error-limit 5 on-error mark-down"
    ]
    assert "timeout check 10s" in section(config, "backend shop.web:80:stable")


def test_outlier_detection_with_zero_errors_is_off() -> None:
    config = render(plane(listener(outlier=OutlierDetection(consecutive_5xx=0))))
    assert lines_of(config, "server web-a") == ["server web-a 10.0.0.1:8080 weight 1"]


def test_connection_pool_limits() -> None:
    config = render(plane(listener(limits=ConnectionPool(max_connections=100, max_pending=10, connect_timeout=2))))
    backend = section(config, "backend shop.web:80:stable")
    assert backend[0] == "timeout connect 2s"
    assert "http-request return status 503 if { queue() ge 10 }" in backend
    assert "server web-a 10.0.0.1:8080 weight 1 maxconn 100" in backend


# -- refusals ------------------------------------------------------------------------------------------


def refused(p: DataPlane) -> TrafficError:
    with pytest.raises(TrafficError) as caught:
        render(p)
    return caught.value


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"address": "0.0.0.0"}, "listener shop/web:80: address", "loopback"),
        ({"address": "10.1.1.1"}, "listener shop/web:80: address", "loopback"),
        ({"port": 70000}, "listener shop/web:80: port", "not a TCP port"),
        ({"default": (Destination("nope"),)}, "listener shop/web:80: default[0].pool", "not a pool"),
        ({"default": (Destination("stable", 0),)}, "listener shop/web:80: default", "every weight is 0"),
        ({"default": (Destination("stable", 150),)}, "listener shop/web:80: default[0].weight", "0 to 100"),
        (
            {"default": (Destination("stable"), Destination("stable"))},
            "listener shop/web:80: default[1].pool",
            "twice",
        ),
        ({"pools": (Pool("a b"),), "default": ()}, "listener shop/web:80: pools[0].name", "letters"),
        ({"pools": (Pool("a"), Pool("a")), "default": ()}, "listener shop/web:80: pools[1].name", "twice"),
        (
            {"pools": (Pool("a", (ep("x"), ep("x", 2))),), "default": ()},
            "listener shop/web:80: pools[0].endpoints[1].name",
            "twice",
        ),
        (
            {"pools": (Pool("a", (Endpoint("x", "web.local", 80),)),), "default": ()},
            "listener shop/web:80: pools[0].endpoints[0].address",
            "not an IP address",
        ),
        (
            {"pools": (Pool("a", (Endpoint("x", "10.0.0.1", 0),)),), "default": ()},
            "listener shop/web:80: pools[0].endpoints[0].port",
            "not a TCP port",
        ),
        (
            {"outlier": OutlierDetection(max_ejection_percent=150)},
            "listener shop/web:80: outlier.max_ejection_percent",
            "0-100",
        ),
        ({"outlier": OutlierDetection(interval=0)}, "listener shop/web:80: outlier.interval", "positive"),
        ({"limits": ConnectionPool(max_connections=0)}, "listener shop/web:80: limits.max_connections", "at least"),
    ],
)
def test_refusals_name_the_field(changes: dict[str, object], field: str, words: str) -> None:
    error = refused(plane(listener(**changes)))
    assert error.field == field
    assert words in error.message


@pytest.mark.parametrize(
    ("route", "field", "words"),
    [
        (
            Route((Destination("stable"),), retries=Retries(retry_on=("retriable-4xx",))),
            "retries.retry_on[0]",
            "no retry condition",
        ),
        (Route((Destination("stable"),), retries=Retries(retry_on=("505",))), "retries.retry_on[0]", "status"),
        (Route((Destination("stable"),), retries=Retries(retry_on=("envoy-ratelimited",))), "retries.retry_on[0]", ""),
        (Route((Destination("stable"),), retries=Retries(attempts=-1)), "retries.attempts", "0 or more"),
        (Route((Destination("stable"),), retries=Retries(per_try_timeout=0)), "retries.per_try_timeout", "positive"),
        (Route((Destination("stable"),), timeout=-1), "timeout", "positive"),
        (Route(()), "destinations", "at least one destination"),
        (
            Route((Destination("stable"),), (Match(headers=(HeaderMatch(":authority", "x"),)),)),
            "matches[0].headers[0].name",
            "letters, digits",
        ),
        (
            Route((Destination("stable"),), (Match(headers=(HeaderMatch("x", "a\nb"),)),)),
            "matches[0].headers[0].exact",
            "control characters",
        ),
        (
            Route((Destination("stable"),), (Match(cookies=(CookieMatch("c", "(", MatchKind.REGEX),)),)),
            "matches[0].cookies[0].regex",
            "not a valid regular expression",
        ),
    ],
)
def test_route_refusals_name_the_field(route: Route, field: str, words: str) -> None:
    error = refused(plane(listener(routes=(route,))))
    assert error.field == f"listener shop/web:80: routes[0].{field}"
    assert words in error.message


def test_listeners_may_not_share_a_name_a_port_or_a_haproxy_name() -> None:
    assert refused(plane(listener(), listener(port=2))).field == "listeners[1].name"
    assert "both become" in refused(plane(listener(), listener(name="shop.web:80", port=2))).message
    assert refused(plane(listener(), listener(name="other"))).field == "listener other: port"


def test_paths_in_the_configuration_must_be_plain() -> None:
    with pytest.raises(TrafficError, match="map_dir"):
        traffic.render_config(plane(), runtime_socket=SOCKET, map_dir="/tmp/my maps")
    with pytest.raises(TrafficError, match="runtime_socket"):
        traffic.render_config(plane(), runtime_socket="relative.sock", map_dir=MAPS)


# -- runtime commands ----------------------------------------------------------------------------------


def commands(before: Listener, after: Listener) -> list[str] | None:
    return traffic.runtime_commands(plane(before), plane(after), map_dir=MAPS)


def with_pool(pool: str, *endpoints: Endpoint, base: Listener | None = None) -> Listener:
    base = base or listener()
    return dataclasses.replace(base, pools=tuple(Pool(p.name, endpoints) if p.name == pool else p for p in base.pools))


def test_nothing_changed_means_no_commands() -> None:
    assert commands(listener(), listener()) == []


def test_an_added_endpoint_is_added_then_made_ready() -> None:
    after = with_pool("stable", ep("web-a", 1), ep("web-b", 2), ep("web-d", 4))
    assert commands(listener(), after) == [
        "add server shop.web:80:stable/web-d 10.0.0.4:8080 weight 1",
        "set server shop.web:80:stable/web-d state ready",
    ]


def test_an_added_endpoint_with_health_checks_gets_them_enabled() -> None:
    base = listener(outlier=OutlierDetection())
    after = with_pool("canary", ep("web-c", 3), ep("web-d", 4, DRAINING), base=base)
    assert commands(base, after) == [
        "add server shop.web:80:canary/web-d 10.0.0.4:8080 weight 0 check inter 10s fastinter 30s downinter 30s "
        "rise 1 fall 5 observe layer7 error-limit 5 on-error mark-down",
        "enable health shop.web:80:canary/web-d",
        "set server shop.web:80:canary/web-d state ready",
    ]


def test_an_added_endpoint_that_is_down_stays_in_maintenance() -> None:
    after = with_pool("canary", ep("web-c", 3), ep("web-d", 4, DOWN))
    assert commands(listener(), after) == ["add server shop.web:80:canary/web-d 10.0.0.4:8080 weight 1"]


def test_a_removed_endpoint_goes_to_maintenance_then_is_deleted() -> None:
    assert commands(listener(), with_pool("stable", ep("web-a", 1))) == [
        "set server shop.web:80:stable/web-b state maint",
        "del server shop.web:80:stable/web-b",
    ]


@pytest.mark.parametrize(
    ("was", "now", "expected"),
    [
        (READY, DRAINING, ["set server shop.web:80:stable/web-b weight 0"]),
        (DRAINING, READY, ["set server shop.web:80:stable/web-b weight 1"]),
        (READY, DOWN, ["set server shop.web:80:stable/web-b state maint"]),
        (
            DOWN,
            READY,
            ["set server shop.web:80:stable/web-b weight 1", "set server shop.web:80:stable/web-b state ready"],
        ),
        (
            DOWN,
            DRAINING,
            ["set server shop.web:80:stable/web-b weight 0", "set server shop.web:80:stable/web-b state ready"],
        ),
    ],
)
def test_endpoint_states(was: EndpointState, now: EndpointState, expected: list[str]) -> None:
    before = with_pool("stable", ep("web-a", 1), ep("web-b", 2, was))
    after = with_pool("stable", ep("web-a", 1), ep("web-b", 2, now))
    assert commands(before, after) == expected


def test_draining_reaches_every_backend_of_the_pool() -> None:
    timed = Route((Destination("stable"),), timeout=5)
    base = listener(routes=(timed,))
    after = traffic.with_endpoint_state(plane(base), "web-a", DRAINING)
    assert traffic.runtime_commands(plane(base), after, map_dir=MAPS) == [
        "set server shop.web:80:stable/web-a weight 0",  # the timed route's backend
        "set server shop.web:80:stable:1/web-a weight 0",  # the default's
    ]


def test_a_new_address_is_set_in_place() -> None:
    after = with_pool("canary", Endpoint("web-c", "10.0.0.9", 9090))
    assert commands(listener(), after) == ["set server shop.web:80:canary/web-c addr 10.0.0.9 port 9090"]


def test_a_weight_change_is_one_atomic_map_commit() -> None:
    before = listener(default=(Destination("stable", 100), Destination("canary", 0)))
    after = listener(default=(Destination("stable", 80), Destination("canary", 20)))
    assert commands(before, after) == [
        f"prepare map {MAP}",
        f"add map @{{version}} {MAP} 0:7999 shop.web:80:stable",
        f"add map @{{version}} {MAP} 8000:9999 shop.web:80:canary",
        f"commit map @{{version}} {MAP}",
    ]


def test_endpoints_arrive_before_traffic_moves_and_leave_after() -> None:
    """A pool gets servers before the commit that sends it traffic, and loses them after."""
    before = with_pool("canary", ep("old-c", 5), base=listener(default=(Destination("stable"),)))
    after = with_pool(
        "canary", ep("new-c", 6), base=listener(default=(Destination("stable", 50), Destination("canary", 50)))
    )
    got = commands(before, after)
    assert got is not None
    assert [c.split()[0] + " " + c.split()[1] for c in got] == [
        "add server",
        "set server",
        "prepare map",
        "add map",
        "add map",
        "commit map",
        "set server",
        "del server",
    ]


@pytest.mark.parametrize(
    "after",
    [
        listener(port=18090),
        listener(pools=(*listener().pools, Pool("extra"))),
        listener(routes=(Route((Destination("canary"),), (Match(headers=(HeaderMatch("x", "1"),)),)),)),
        listener(default=()),
        listener(routes=(Route((Destination("stable"),), timeout=3),)),
        listener(outlier=OutlierDetection()),
        listener(limits=ConnectionPool(max_connections=5)),
        listener(mode=traffic.Mode.TCP),
    ],
    ids=["port", "pool", "route", "default", "timeout", "outlier", "limits", "mode"],
)
def test_configuration_changes_need_a_reload(after: Listener) -> None:
    assert commands(listener(), after) is None


def test_a_new_or_removed_listener_needs_a_reload() -> None:
    other = listener(name="shop/api:81", port=18081)
    assert traffic.runtime_commands(plane(listener()), plane(listener(), other), map_dir=MAPS) is None
    assert traffic.runtime_commands(plane(listener(), other), plane(listener()), map_dir=MAPS) is None


def test_a_changed_split_on_a_header_route_is_runtime_too() -> None:
    header = Match(headers=(HeaderMatch("x-canary", "true"),))
    before = listener(routes=(Route((Destination("canary"),), (header,)),))
    after = listener(routes=(Route((Destination("stable", 50), Destination("canary", 50)), (header,)),))
    got = commands(before, after)
    assert got is not None
    assert got[0] == f"prepare map {MAP}"


def test_runtime_commands_refuse_an_impossible_plane() -> None:
    with pytest.raises(TrafficError):
        commands(listener(), listener(default=(Destination("nope"),)))


# -- servers and the ejection cap ----------------------------------------------------------------------


def test_servers_map_back_to_endpoints() -> None:
    found = traffic.servers(plane())
    assert set(found) == {
        ("shop.web:80:stable", "web-a"),
        ("shop.web:80:stable", "web-b"),
        ("shop.web:80:canary", "web-c"),
    }
    assert found[("shop.web:80:canary", "web-c")] == traffic.ServerRef("shop/web:80", "canary", ep("web-c", 3))


def status(server: str, state: str, last_change: int = 10, backend: str = "shop.web:80:all") -> ServerStatus:
    return ServerStatus(backend, server, state, 1, 0, last_change)


def capped(percent: int, states: dict[str, tuple[str, int]], endpoints: int = 4) -> list[str]:
    pool = Pool("all", tuple(ep(f"e{i}", i) for i in range(endpoints)))
    p = plane(
        Listener(
            "shop/web:80", 18080, (pool,), default=(Destination("all"),), outlier=OutlierDetection(5, 10, 30, percent)
        )
    )
    return traffic.ejection_cap_commands(p, [status(name, s, age) for name, (s, age) in states.items()])


def test_ejections_beyond_the_cap_are_undone_most_recent_first() -> None:
    states = {"e0": ("DOWN", 50), "e1": ("DOWN", 3), "e2": ("DOWN 0/1", 20), "e3": ("UP", 100)}
    assert capped(50, states) == ["set server shop.web:80:all/e1 health up"]


def test_one_ejection_is_always_allowed() -> None:
    """Envoy ejects a host when none is ejected, whatever max_ejection_percent says."""
    assert capped(10, {"e0": ("DOWN", 5), "e1": ("UP", 5), "e2": ("UP", 5)}, endpoints=3) == []
    assert capped(10, {"e0": ("DOWN", 5), "e1": ("DOWN", 4), "e2": ("UP", 5)}, endpoints=3) == [
        "set server shop.web:80:all/e1 health up"
    ]


def test_maintenance_is_not_an_ejection() -> None:
    assert capped(25, {"e0": ("MAINT", 5), "e1": ("DRAIN", 4), "e2": ("DOWN", 3)}) == []


@pytest.mark.parametrize(
    ("state", "weight", "ejected", "draining"),
    [
        ("UP", 1, False, False),
        ("no check", 1, False, False),
        ("UP", 0, False, True),
        ("DRAIN", 1, False, True),
        ("DOWN", 1, True, False),
        ("DOWN 1/2", 0, True, False),
        ("MAINT", 0, False, False),
    ],
)
def test_server_status_reads_ejections_and_drains(state: str, weight: int, ejected: bool, draining: bool) -> None:
    observed = ServerStatus("b", "s", state, weight, 0, 0)
    assert (observed.ejected, observed.draining) == (ejected, draining)


def test_no_outlier_detection_no_cap() -> None:
    assert traffic.ejection_cap_commands(plane(), [status("web-a", "DOWN", backend="shop.web:80:stable")]) == []


# -- parsing the runtime API ---------------------------------------------------------------------------


def test_parse_stat() -> None:
    text = (
        "# pxname,svname,qcur,scur,status,weight,lastchg,addr,\n"
        "fe,FRONTEND,,1,OPEN,,,,\n"
        "be,a,0,2,UP,1,12,127.0.0.1:8080,\n"
        "be,BACKEND,0,2,UP,1,12,,\n\n"
    )
    rows = parse_stat(text)
    assert [row["svname"] for row in rows] == ["FRONTEND", "a", "BACKEND"]
    assert rows[1] == {
        "pxname": "be",
        "svname": "a",
        "qcur": "0",
        "scur": "2",
        "status": "UP",
        "weight": "1",
        "lastchg": "12",
        "addr": "127.0.0.1:8080",
    }


def test_parse_show_proc() -> None:
    text = (
        "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
        "25812           master          2 [failed: 1]   0d00h10m16s     2.6.12-1+deb12u4\n"
        "# workers\n"
        "31197           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n"
        "# old workers\n"
        "30001           worker          1               0d00h00m43s     2.6.12-1+deb12u4\n"
        "# programs\n\n"
    )
    proc = parse_show_proc(text)
    assert (proc.master, proc.reloads, proc.failed_reloads) == (25812, 2, 1)
    assert (proc.workers, proc.old_workers) == ((31197,), (30001,))


# -- the fake ------------------------------------------------------------------------------------------


def test_the_fake_takes_the_same_decisions() -> None:
    async def scenario() -> list[str]:
        fake = FakeProxy(map_dir=MAPS)
        actions = [(await fake.ensure(plane())).action]
        drained = traffic.with_endpoint_state(plane(), "web-b", DRAINING)
        applied = await fake.ensure(drained)
        assert applied.commands == ("set server shop.web:80:stable/web-b weight 0",)
        actions.append(applied.action)
        actions.append((await fake.ensure(drained)).action)
        actions.append((await fake.ensure(plane(listener(port=1)))).action)
        fake.kill()
        assert not await fake.alive()
        actions.append((await fake.ensure()).action)
        fake.eject("shop.web:80:stable", "web-a")
        by_name = {s.server: s for s in await fake.servers()}
        assert by_name["web-a"].ejected and not by_name["web-b"].ejected
        fake.refuse("[ALERT] nope")
        with pytest.raises(HAProxyError, match="nope"):
            await fake.ensure(plane(listener(port=2)))
        return actions

    assert asyncio.run(scenario()) == ["start", "runtime", "unchanged", "reload", "restart"]


def test_a_missing_haproxy_binary_is_reported_with_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(haproxy_process.shutil, "which", lambda _name: None)
    monkeypatch.setattr(haproxy_process.os, "access", lambda _path, _mode: False)
    with pytest.raises(HAProxyError, match=r"apt-get install haproxy"):
        find_binary()
    with pytest.raises(HAProxyError, match=r"apt-get install haproxy"):
        asyncio.run(HAProxy(tmp_path).ensure(plane()))


# -- TCP listeners and planes inside a container of their own ------------------------------------------


def test_a_tcp_listener_splits_connections_and_leaves_their_bytes_alone() -> None:
    tcp = listener(
        mode=traffic.Mode.TCP,
        default=(Destination("stable", 90), Destination("canary", 10)),
        outlier=OutlierDetection(consecutive_5xx=3, interval=1, base_ejection_time=30),
        limits=ConnectionPool(max_pending=10),
    )
    config = render(plane(tcp))
    frontend = section(config, "frontend shop.web:80")
    assert frontend[2:6] == [
        "mode tcp",
        "timeout client 1h",
        "no option idle-close-on-response",
        f"tcp-request content set-var(txn.funade_pick) rand({traffic.BUCKETS})",
    ]
    assert not [line for line in frontend if line.startswith("http-request")]
    backend = section(config, "backend shop.web:80:stable")
    assert backend[:3] == ["mode tcp", "timeout connect 10s", "retries 2"]
    assert not [line for line in backend if line.startswith(("retry-on", "http-request"))]
    assert "tcp-request content reject if { queue() ge 10 }" in backend
    assert "observe layer4 error-limit 3 on-error mark-down" in lines_of(config, "server web-a")[0]
    assert the_map(plane(tcp)) == ["0:8999 shop.web:80:stable", "9000:9999 shop.web:80:canary"]


def test_a_tcp_listener_takes_no_header_routes() -> None:
    header = Match(headers=(HeaderMatch("x-canary", "true"),))
    tcp = listener(mode=traffic.Mode.TCP, routes=(Route((Destination("canary"),), (header,)),))
    with pytest.raises(TrafficError) as refused:
        traffic.check(plane(tcp))
    assert refused.value.field == "listener shop/web:80: routes[0].matches"
    assert "need HTTP" in refused.value.message
    traffic.check(plane(listener(mode=traffic.Mode.TCP, routes=(Route((Destination("canary"),)),))))


def test_only_a_contained_plane_binds_every_address() -> None:
    everywhere = listener(address="0.0.0.0", port=80)
    with pytest.raises(TrafficError, match="loopback addresses only"):
        traffic.check(plane(everywhere))
    contained = DataPlane((everywhere,), contained=True)
    assert "bind 0.0.0.0:80" in section(render(contained), "frontend shop.web:80")
    with pytest.raises(TrafficError, match="loopback addresses only"):
        traffic.check(DataPlane((listener(address="10.1.2.3"),), contained=True))
    drained = traffic.with_endpoint_state(contained, "web-a", DRAINING)
    assert drained.contained
    assert traffic.runtime_commands(contained, drained, map_dir=MAPS) == [
        "set server shop.web:80:stable/web-a weight 0"
    ]
