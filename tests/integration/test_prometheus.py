"""The embedded Prometheus, for real: file_sd targets, 1 s scrapes, and the seed's success-rate query.

Two test app containers (one answering 20 % of ``GET /`` with 500) are published on
127.0.0.1 and handed to Prometheus as targets of Service ``web``. Under equal load the
seed's query, with its argument substituted and nothing else changed, gives ≈ 0.9; a
Service without targets gives "no data", not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from funade.adapters.prometheus.client import ErrorKind, PrometheusClient, PrometheusError, QueryResult, result_values
from funade.adapters.prometheus.server import PrometheusServer, ServerError, Target
from tests.integration.conftest import Funade, ensure_test_images, free_port, wait_until

pytestmark = pytest.mark.integration

T = TypeVar("T")
IMAGE = "funade-testapp:1.0.0"
SEED_TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "argo" / "analysis-template.yaml"


def seed_query(service: str) -> str:
    """The seed's success-rate query with ``{{args.service-name}}`` substituted, as the analysis does."""
    template = yaml.safe_load(SEED_TEMPLATE.read_text())
    query = str(template["spec"]["metrics"][0]["provider"]["prometheus"]["query"])
    return query.replace("{{args.service-name}}", service)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def query(server: PrometheusServer, promql: str) -> QueryResult:
    async def go() -> QueryResult:
        async with PrometheusClient(server.url, timeout=10) as client:
            return await client.query(promql)

    return run(go())


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path / "home", f"127.0.0.1:{free_port()}")
    try:
        status = server.up()
        assert status.running and status.storage.is_relative_to(tmp_path)
        yield server
    finally:
        server.down()
        assert not server.status().running


@contextlib.contextmanager
def running_testapp(env: dict[str, str]) -> Iterator[str]:
    """A test app container published on 127.0.0.1 only; yields its HOST:PORT."""
    port = free_port()
    args = ["docker", "run", "-d", "--label", "funade.test=prometheus", "-p", f"127.0.0.1:{port}:8080"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    cid = subprocess.run([*args, IMAGE], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    address = f"127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"http://{address}/ready", timeout=1).status_code == 200, 30, f"{address} to be ready"
        )
        yield address
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60, check=False)


def test_seed_success_rate_over_two_pods(prometheus: PrometheusServer) -> None:
    ensure_test_images()
    with (
        running_testapp({"ERROR_RATE": "0"}) as good,
        running_testapp({"ERROR_RATE": "20"}) as bad,
        httpx.Client() as http,
    ):

        def load(rounds: int = 20) -> None:
            """Equal load on both pods: the bad one fails every fifth GET /."""
            for _ in range(rounds):
                for address in (good, bad):
                    http.get(f"http://{address}/")

        # Both status series exist before the first scrape, so each rate sees the same window.
        load()
        prometheus.set_targets(
            [
                Target(good, {"service": "web", "namespace": "it", "pod": "web-good"}),
                Target(bad, {"service": "web", "namespace": "it", "pod": "web-bad"}),
            ]
        )

        def scraped_enough() -> bool:
            load()
            result = query(prometheus, 'count_over_time(http_requests_total{service="web"}[5m])')
            # The 200 series of both pods and the 500 series of the bad one, five scrapes each.
            return len(result.samples) == 3 and all(s.value >= 5 for s in result.samples)

        wait_until(scraped_enough, 60, "Prometheus to scrape both pods five times", interval=0.05)
        up = query(prometheus, 'up{service="web"}')
        assert sorted(s.labels["pod"] for s in up.samples) == ["web-bad", "web-good"]
        assert all(s.labels["namespace"] == "it" and s.value == 1.0 for s in up.samples)

        result = query(prometheus, seed_query("web"))
        assert not result.no_data, result
        (value,) = result_values(result)
        # 50 % of GET / to each pod, 20 % failing on one: 0.9 (the 1 s scrapes, counted as 200s, add a little).
        assert 0.88 <= value <= 0.93, value

        # A Service nobody scrapes: an empty vector, reported as no data.
        empty = query(prometheus, seed_query("nobody"))
        assert empty.no_data and result_values(empty) == []
        assert empty.no_data_message.startswith('no data for query sum(rate(http_requests_total{service="nobody"')

        # Bad PromQL: the parser's message and the query, not a stack trace.
        with pytest.raises(PrometheusError) as caught:
            query(prometheus, "sum(rate(http_requests_total[5m])")
        assert caught.value.kind is ErrorKind.BAD_DATA and "parse error" in str(caught.value)

        # Targets removed from the file stop being scraped without a restart or reload.
        prometheus.set_targets([Target(good, {"service": "web", "namespace": "it", "pod": "web-good"})])

        async def active() -> list[str]:
            async with PrometheusClient(prometheus.url) as client:
                return [t.labels.get("pod", "") for t in await client.targets()]

        wait_until(lambda: run(active()) == ["web-good"], 30, "Prometheus to drop the removed target")


def test_up_is_idempotent_and_down_makes_it_unreachable(prometheus: PrometheusServer) -> None:
    pid = prometheus.status().pid
    assert prometheus.up().pid == pid
    assert prometheus.config.is_relative_to(prometheus.home) and prometheus.targets_file.exists()
    # Someone else's server on the same address is refused, not adopted.
    other = PrometheusServer(prometheus.home.parent / "other", prometheus.address)
    with pytest.raises(ServerError, match="already answers"):
        other.up()
    assert prometheus.down() is True
    with pytest.raises(PrometheusError) as caught:
        query(prometheus, "up")
    assert caught.value.kind is ErrorKind.UNREACHABLE


def test_funade_up_scrapes_the_pods_of_annotated_services(funade: Funade, ns: str) -> None:
    """`funade up` starts Prometheus; a Service annotated prometheus.io/scrape feeds the seed's query."""
    from tests.integration.test_local_target import deployment
    from tests.integration.test_services import local_port, service

    good = deployment("sr-good", IMAGE, replicas=1)
    bad = deployment("sr-bad", IMAGE, replicas=1, env={"ERROR_RATE": "20"})
    for d in (good, bad):
        d["spec"]["template"]["metadata"]["labels"]["svc"] = "sr"
    svc = service("sr", {"svc": "sr"})
    svc["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    r = funade.apply(ns, good, bad, svc, args=("--wait",))
    assert r.code == 0, r.output
    port = local_port(funade, ns, "sr")
    prometheus = PrometheusServer.of_home(funade.home)
    assert prometheus.status().running, "funade up did not start Prometheus"
    funade.wait_until(lambda: len(prometheus.current_targets()) == 2, 30, "both pods are scrape targets", namespace=ns)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

        def measured() -> float | None:
            for _ in range(50):
                client.get("/")
            values = result_values(query(prometheus, seed_query("sr")))
            # A counter's first sample has no rate yet: the 500s show once their series has two samples.
            return values[0] if values and values[0] < 0.995 else None

        value = wait_until(measured, 60, "the seed's success-rate query sees the failing pod")
        assert 0.75 < value < 0.99, value  # 20 % errors on half the requests

        # The seed's template, unchanged but for a quicker cadence, run by `funade analysis run`:
        # its Prometheus address (prometheus.monitoring:9090) is served by the embedded one.
        load = threading.Event()

        def keep_loading() -> None:
            while not load.is_set():
                client.get("/")

        feeder = threading.Thread(target=keep_loading, daemon=True)
        feeder.start()
        try:
            r = funade.cli(
                "analysis",
                "run",
                "-f",
                str(SEED_TEMPLATE),
                "--arg",
                "service-name=sr",
                "--count",
                "4",
                "--interval",
                "1s",
                "-o",
                "json",
                timeout=120,
            )
        finally:
            load.set()
            feeder.join(10)
    assert r.code == 1, r.output
    status = json.loads(r.stdout)
    assert status["phase"] == "Failed" and "failureLimit (3)" in status["message"], status
    (metric,) = status["metricResults"]
    assert metric["failed"] == 4 and all(m["value"][0] < 0.99 for m in metric["measurements"])
    assert "served by the embedded Prometheus" in r.stderr
