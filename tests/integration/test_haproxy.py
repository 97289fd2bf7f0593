"""The HAProxy data plane against the real HAProxy (Debian's 2.6) and real HTTP backends.

Backends are small HTTP servers started here on 127.0.0.1 that answer their own name;
clients count every failure (non-2xx, reset, refusal, timeout). Every wait is a condition
polled until a deadline (``wait_until``), never a bare sleep, and every test stops its
servers and HAProxy.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.haproxy import CommandError, HAProxy, HAProxyError, RuntimeClient, find_binary
from funade.core import traffic
from funade.core.traffic import (
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
)
from tests.integration.conftest import free_port, wait_until

pytestmark = pytest.mark.integration

T = TypeVar("T")
READY, DRAINING, DOWN = EndpointState.READY, EndpointState.DRAINING, EndpointState.DOWN


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# -- backends ----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: Backend

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # HAProxy resets idle connections it purges; that is not a test failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:
        backend = self.server.backend
        if self.path.startswith("/hold"):
            with backend.lock:
                backend.holding += 1
            backend.release.wait(30)
        body = backend.name.encode()
        self.send_response(backend.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Backend:
    """An HTTP server on a free 127.0.0.1 port answering its own name (and ``status``).

    ``/hold`` requests wait until ``release`` is set: in-flight requests on cue.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.holding = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"backend-{name}")
        self.thread.start()

    def endpoint(self, state: EndpointState = READY, name: str | None = None) -> Endpoint:
        return Endpoint(name or self.name, "127.0.0.1", self.port, state)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def backends() -> Iterator[Callable[..., dict[str, Backend]]]:
    started: list[Backend] = []

    def start(*names: str) -> dict[str, Backend]:
        found = {name: Backend(name) for name in names}
        started.extend(found.values())
        return found

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[HAProxy]:
    try:
        find_binary()
    except HAProxyError as exc:
        pytest.fail(str(exc))
    haproxy = HAProxy(tmp_path / "home", start_timeout=30.0, hard_stop_after=10.0)
    try:
        yield haproxy
    finally:
        run(haproxy.stop(timeout=5.0))
        assert haproxy.pid() is None, "HAProxy still runs after stop()"


# -- clients ------------------------------------------------------------------------------------------


def get(
    port: int, path: str = "/", headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None
) -> str:
    with httpx.Client(timeout=10.0, cookies=cookies) as client:
        response = client.get(f"http://127.0.0.1:{port}{path}", headers=headers)
    return f"{response.status_code} {response.text}" if response.status_code != 200 else response.text


def tally(port: int, n: int, headers: dict[str, str] | None = None) -> collections.Counter[str]:
    """Send ``n`` requests on one keep-alive connection; count who (or which status) answered."""
    counts: collections.Counter[str] = collections.Counter()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(n):
            response = client.get(f"http://127.0.0.1:{port}/", headers=headers)
            counts[response.text if response.status_code == 200 else str(response.status_code)] += 1
    return counts


class Load:
    """Clients looping on requests until stopped; every answer and failure is counted."""

    def __init__(self, port: int, keepalive: int = 3, fresh: int = 1) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.served: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(True,), daemon=True) for _ in range(keepalive)] + [
            threading.Thread(target=self._loop, args=(False,), daemon=True) for _ in range(fresh)
        ]

    @property
    def ok(self) -> int:
        with self._lock:
            return sum(self.served.values())

    def _loop(self, keepalive: bool) -> None:
        headers = {} if keepalive else {"Connection": "close"}
        with httpx.Client(timeout=10.0, headers=headers) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if response.status_code == 200:
                        self.served[response.text] += 1
                    else:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:80]}")

    def count(self, name: str) -> int:
        with self._lock:
            return self.served[name]

    def progress(self, more: int, timeout: float = 30.0) -> None:
        """Wait until ``more`` further requests have succeeded."""
        target = self.ok + more
        wait_until(
            lambda: self.ok >= target, timeout, f"{more} more requests to succeed (failures: {self.failures[:5]})"
        )

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        self.progress(50)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


# -- planes -------------------------------------------------------------------------------------------


def single(port: int, *endpoints: Endpoint, **changes: Any) -> DataPlane:
    """One listener with one pool, ``main``, holding ``endpoints``."""
    listener = Listener("test/web:80", port, (Pool("main", endpoints),), default=(Destination("main"),))
    return DataPlane((dataclasses.replace(listener, **changes),))


def split(port: int, stable: tuple[Endpoint, ...], canary: tuple[Endpoint, ...], weights: tuple[int, int]) -> DataPlane:
    return DataPlane(
        (
            Listener(
                "test/web:80",
                port,
                (Pool("stable", stable), Pool("canary", canary)),
                default=(Destination("stable", weights[0]), Destination("canary", weights[1])),
            ),
        )
    )


def server_states(proxy: HAProxy) -> dict[str, traffic.ServerStatus]:
    return {s.server: s for s in run(proxy.servers())}


def identity(proxy: HAProxy) -> tuple[int | None, int | None, int]:
    """(master pid, worker pid, reload count): unchanged means no reload and no restart."""
    proc = run(proxy.proc())
    assert proc is not None
    return proxy.pid(), proc.workers[0], proc.reloads


# -- tests --------------------------------------------------------------------------------------------


def test_requests_reach_ready_endpoints_only(proxy: HAProxy, backends: Callable[..., dict[str, Backend]]) -> None:
    b = backends("ready", "draining", "down")
    port = free_port()
    plane = single(port, b["ready"].endpoint(), b["draining"].endpoint(DRAINING), b["down"].endpoint(DOWN))
    assert run(proxy.ensure(plane)).action == "start"
    assert tally(port, 60) == {"ready": 60}
    plane = single(port, b["ready"].endpoint(), b["draining"].endpoint(), b["down"].endpoint())
    assert run(proxy.ensure(plane)).action == "runtime"
    assert tally(port, 60) == {"ready": 20, "draining": 20, "down": 20}


def test_unmatched_requests_get_404_and_empty_pools_503(proxy: HAProxy) -> None:
    port = free_port()
    only_header = Route((Destination("main"),), (Match(headers=(HeaderMatch("x-go", "1"),)),))
    run(proxy.ensure(single(port, routes=(only_header,), default=())))
    assert get(port).startswith("404")
    assert get(port, headers={"x-go": "1"}).startswith("503")


def test_drain_lets_in_flight_requests_finish_while_new_ones_go_elsewhere(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("old", "new")
    port = free_port()
    run(proxy.ensure(single(port, b["old"].endpoint(), b["new"].endpoint(DOWN))))
    result: dict[str, str] = {}

    def slow() -> None:
        result["answer"] = get(port, "/hold")

    in_flight = threading.Thread(target=slow)
    in_flight.start()
    wait_until(lambda: b["old"].holding == 1, 10, "the slow request to reach the old endpoint")
    assert server_states(proxy)["old"].sessions == 1

    applied = run(proxy.ensure(single(port, b["old"].endpoint(DRAINING), b["new"].endpoint())))
    assert applied.action == "runtime"
    assert applied.commands == (
        "set server test.web:80:main/new weight 1",
        "set server test.web:80:main/new state ready",
        "set server test.web:80:main/old weight 0",
    )
    assert tally(port, 40) == {"new": 40}  # new requests go elsewhere
    old = server_states(proxy)["old"]
    assert in_flight.is_alive() and old.sessions == 1 and old.draining

    b["old"].release.set()
    in_flight.join(10)
    assert result["answer"] == "old"  # the in-flight request finished on the draining endpoint
    wait_until(lambda: server_states(proxy)["old"].sessions == 0, 10, "the drained endpoint to have no session")
    applied = run(proxy.ensure(single(port, b["new"].endpoint())))
    assert applied.commands == ("set server test.web:80:main/old state maint", "del server test.web:80:main/old")
    assert set(server_states(proxy)) == {"new"}


def test_removing_a_busy_endpoint_outright_falls_back_to_a_reload_that_lets_it_finish(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("busy", "other")
    port = free_port()
    run(proxy.ensure(single(port, b["busy"].endpoint(), b["other"].endpoint(DOWN))))
    result: dict[str, str] = {}
    in_flight = threading.Thread(target=lambda: result.update(answer=get(port, "/hold")))
    in_flight.start()
    wait_until(lambda: b["busy"].holding == 1, 10, "the slow request to reach the busy endpoint")

    applied = run(proxy.ensure(single(port, b["other"].endpoint())))
    assert applied.action == "reload"  # `del server` refused a server with a request in flight
    assert tally(port, 20) == {"other": 20}
    b["busy"].release.set()
    in_flight.join(10)
    assert result["answer"] == "busy"  # the old worker finished it


def test_a_90_10_split_holds_within_three_points(proxy: HAProxy, backends: Callable[..., dict[str, Backend]]) -> None:
    b = backends("s1", "s2", "c1")
    port = free_port()
    stable = (b["s1"].endpoint(), b["s2"].endpoint())
    run(proxy.ensure(split(port, stable, (b["c1"].endpoint(),), (90, 10))))
    counts = tally(port, 2000)
    share = counts["c1"] / 2000 * 100
    print(f"\n90/10 split over 2000 requests: canary {share:.2f} % ({dict(counts)})")
    assert counts["s1"] + counts["s2"] + counts["c1"] == 2000
    assert abs(share - 10) <= 3

    applied = run(proxy.ensure(split(port, stable, (b["c1"].endpoint(),), (100, 0))))
    assert applied.action == "runtime"
    assert [c.split()[0] for c in applied.commands] == ["prepare", "add", "commit"]
    assert tally(port, 300)["c1"] == 0  # weight 0 gets nothing at all

    run(proxy.ensure(split(port, stable, (b["c1"].endpoint(),), (0, 100))))
    assert tally(port, 300) == {"c1": 300}


def test_header_and_cookie_routes_first_match_wins(proxy: HAProxy, backends: Callable[..., dict[str, Backend]]) -> None:
    b = backends("alice", "al", "versioned", "cookie", "rest")
    port = free_port()

    def route(pool: str, match: Match) -> Route:
        return Route((Destination(pool),), (match,), name=pool)

    plane = DataPlane(
        (
            Listener(
                "test/web:80",
                port,
                tuple(Pool(name, (backend.endpoint(),)) for name, backend in b.items()),
                routes=(
                    route("alice", Match(headers=(HeaderMatch("x-user", "alice"),))),
                    route("al", Match(headers=(HeaderMatch("x-user", "al", MatchKind.PREFIX),))),
                    route("versioned", Match(headers=(HeaderMatch("x-v", r"v[0-9]+", MatchKind.REGEX),))),
                    route("cookie", Match(cookies=(traffic.CookieMatch("canary"),))),
                ),
                default=(Destination("rest"),),
            ),
        )
    )
    run(proxy.ensure(plane))
    assert get(port, headers={"x-user": "alice"}) == "alice"  # the second route matches too: first wins
    assert get(port, headers={"x-user": "alex"}) == "al"
    assert get(port, headers={"X-User": "Alice"}) == "rest"  # values are case-sensitive, names not
    assert get(port, headers={"x-v": "v12"}) == "versioned"
    assert get(port, headers={"x-v": "v12-beta"}) == "rest"  # a regex matches the whole value
    assert get(port, cookies={"canary": ""}) == "cookie"
    assert get(port, cookies={"other": "1"}) == "rest"
    assert get(port) == "rest"


def test_endpoint_changes_apply_through_the_runtime_api_without_a_reload(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("a", "b", "c", "b-moved")
    port = free_port()
    run(proxy.ensure(single(port, b["a"].endpoint(), b["b"].endpoint())))
    before = identity(proxy)
    with Load(port) as load:
        steps = [
            single(port, b["a"].endpoint(), b["b"].endpoint(), b["c"].endpoint()),  # add
            single(port, b["a"].endpoint(DRAINING), b["b"].endpoint(), b["c"].endpoint()),  # drain
        ]
        for plane in steps:
            assert run(proxy.ensure(plane)).action == "runtime"
            load.progress(200)
        assert load.count("c") > 0
        wait_until(lambda: server_states(proxy)["a"].sessions == 0, 10, "a to finish its requests")
        drained = load.count("a")
        load.progress(300)
        assert load.count("a") == drained  # a drained endpoint gets no new request

        # remove the drained endpoint; give b a new address (same name, another server)
        plane = single(port, b["b-moved"].endpoint(name="b"), b["c"].endpoint())
        applied = run(proxy.ensure(plane))
        assert applied.action == "runtime"
        assert f"set server test.web:80:main/b addr 127.0.0.1 port {b['b-moved'].port}" in applied.commands
        assert "del server test.web:80:main/a" in applied.commands
        load.progress(300)
        moved = load.count("b-moved")
        assert moved > 0
    assert load.failures == []
    assert identity(proxy) == before  # same master, same worker, no reload
    print(f"\nruntime changes under load: {load.ok} requests, {len(load.failures)} failed")


def test_a_configuration_change_reloads_seamlessly(proxy: HAProxy, backends: Callable[..., dict[str, Backend]]) -> None:
    b = backends("a", "b", "c")
    port = free_port()
    plain = DataPlane(
        (
            Listener(
                "test/web:80",
                port,
                (Pool("main", (b["a"].endpoint(), b["b"].endpoint())), Pool("canary", (b["c"].endpoint(),))),
                default=(Destination("main"),),
            ),
        )
    )
    header = Route((Destination("canary"),), (Match(headers=(HeaderMatch("x-canary", "1"),)),))
    routed = DataPlane((dataclasses.replace(plain.listeners[0], routes=(header,)),))
    run(proxy.ensure(plain))
    master, _, reloads = identity(proxy)
    workers = set()
    with Load(port, keepalive=4, fresh=2) as load:
        for i in range(6):
            applied = run(proxy.ensure(routed if i % 2 == 0 else plain))
            assert applied.action == "reload"
            workers.add(identity(proxy)[1])
            load.progress(150)
    assert load.failures == [], f"{len(load.failures)} of {load.ok} requests failed: {load.failures[:5]}"
    assert identity(proxy)[0] == master and identity(proxy)[2] == reloads + 6
    assert len(workers) == 6  # a new worker each time, under the same master
    assert get(port, headers={"x-canary": "1"}) in ("a", "b")  # the last one was `plain`
    run(proxy.ensure(routed))
    assert get(port, headers={"x-canary": "1"}) == "c"
    print(f"\n6 seamless reloads under load: {load.ok} requests, {len(load.failures)} failed")


@pytest.mark.parametrize("victim", ["master", "worker"])
def test_a_killed_haproxy_is_restarted_with_the_current_state(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]], victim: str
) -> None:
    b = backends("s", "c", "gone")
    port = free_port()
    plane = split(port, (b["s"].endpoint(), b["gone"].endpoint(DRAINING)), (b["c"].endpoint(),), (100, 0))
    run(proxy.ensure(plane))
    plane = split(port, (b["s"].endpoint(), b["gone"].endpoint(DRAINING)), (b["c"].endpoint(),), (20, 80))
    assert run(proxy.ensure(plane)).action == "runtime"  # the state to restore is the runtime one
    master, worker, _ = identity(proxy)
    assert master is not None
    os.kill(master if victim == "master" else worker, signal.SIGKILL)
    wait_until(lambda: not run(proxy.alive()), 10, "HAProxy to be seen dead")

    applied = run(proxy.ensure())
    assert applied.action == "restart"
    assert applied.pid not in (None, master)
    counts = tally(port, 1000)
    assert set(counts) == {"s", "c"}  # the drained endpoint stays drained
    assert abs(counts["c"] / 10 - 80) <= 5
    assert run(proxy.ensure(plane)).action == "unchanged"


def test_a_configuration_haproxy_refuses_leaves_the_running_process_alone(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("a")
    port = free_port()
    good = single(port, b["a"].endpoint())
    run(proxy.ensure(good))
    before = identity(proxy)
    # Python's re accepts \N{name}; HAProxy's PCRE2 does not.
    bad_regex = Route((Destination("main"),), (Match(headers=(HeaderMatch("x", r"\N{DIGIT ONE}", MatchKind.REGEX),)),))
    with pytest.raises(HAProxyError, match=r"PCRE2 does not support"):
        run(proxy.ensure(single(port, b["a"].endpoint(), routes=(bad_regex,))))
    assert identity(proxy) == before
    assert proxy.plane == good
    assert get(port) == "a"


def test_a_reload_that_fails_keeps_the_old_worker_serving(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("a")
    port = free_port()
    good = single(port, b["a"].endpoint())
    run(proxy.ensure(good))
    with socket.socket() as taken:  # a port someone else holds: the check passes, the bind fails
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        second = Listener("test/api:81", taken.getsockname()[1], (Pool("main", (b["a"].endpoint(),)),))
        with pytest.raises(HAProxyError, match="could not reload"):
            run(proxy.ensure(DataPlane((*good.listeners, second))))
    assert run(proxy.alive())
    assert get(port) == "a"
    assert run(proxy.ensure(good)).action == "reload"  # the next good plane goes through
    assert get(port) == "a"


def test_outlier_detection_ejects_a_failing_endpoint_for_the_ejection_time(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("good", "bad")
    b["bad"].status = 500
    port = free_port()
    outlier = OutlierDetection(consecutive_5xx=3, interval=1, base_ejection_time=3, max_ejection_percent=100)
    run(proxy.ensure(single(port, b["good"].endpoint(), b["bad"].endpoint(), outlier=outlier)))
    counts = tally(port, 40)
    assert 1 <= counts["500"] <= 3 and counts["good"] == 40 - counts["500"]
    assert server_states(proxy)["bad"].ejected
    # back after base_ejection_time (a health check passes: it still accepts connections) ...
    wait_until(lambda: not server_states(proxy)["bad"].ejected, 15, "the ejected endpoint to come back")
    # ... and ejected again by its next run of errors
    counts = tally(port, 40)
    assert 1 <= counts["500"] <= 3
    assert server_states(proxy)["bad"].ejected


def test_ejections_beyond_max_ejection_percent_are_undone(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("good", "bad1", "bad2")
    b["bad1"].status = b["bad2"].status = 500
    port = free_port()
    outlier = OutlierDetection(consecutive_5xx=2, interval=1, base_ejection_time=120, max_ejection_percent=34)
    endpoints = (b["good"].endpoint(), b["bad1"].endpoint(), b["bad2"].endpoint())
    run(proxy.ensure(single(port, *endpoints, outlier=outlier)))
    tally(port, 30)
    assert server_states(proxy)["bad1"].ejected and server_states(proxy)["bad2"].ejected  # HAProxy has no cap
    commands = run(proxy.cap_ejections())
    assert len(commands) == 1 and commands[0].endswith(" health up")
    states = server_states(proxy)
    assert [states["bad1"].ejected, states["bad2"].ejected].count(True) == 1  # 34 % of 3: one host
    assert run(proxy.cap_ejections()) == []


def test_retries_send_a_failed_request_to_another_endpoint(
    proxy: HAProxy, backends: Callable[..., dict[str, Backend]]
) -> None:
    b = backends("good", "bad")
    b["bad"].status = 503
    port = free_port()
    retried = Route((Destination("main"),), retries=Retries(attempts=1, retry_on=("5xx",)), timeout=10)
    run(proxy.ensure(single(port, b["good"].endpoint(), b["bad"].endpoint(), routes=(retried,), default=())))
    assert tally(port, 40) == {"good": 40}
    no_retry = dataclasses.replace(retried, retries=Retries(attempts=0))
    run(proxy.ensure(single(port, b["good"].endpoint(), b["bad"].endpoint(), routes=(no_retry,), default=())))
    assert tally(port, 40) == {"good": 20, "503": 20}


def test_the_runtime_client_reports_errors_with_the_command_and_answer(proxy: HAProxy) -> None:
    port = free_port()
    run(proxy.ensure(single(port)))
    client = RuntimeClient(proxy.runtime_socket)
    with pytest.raises(CommandError) as caught:
        run(client.command("set server test.web:80:main/nope state ready"))
    assert caught.value.command == "set server test.web:80:main/nope state ready"
    assert "No such server" in caught.value.answer
    with pytest.raises(CommandError, match="prepare map"):
        run(client.execute(["commit map @{version} /nowhere.map"]))
    info = run(client.info())
    assert info["Pid"] == str(identity(proxy)[1])
