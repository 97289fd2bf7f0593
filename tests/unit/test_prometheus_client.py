"""The Prometheus client over `httpx.MockTransport`: result types, no data, NaN/Inf, errors, timeouts.

The bodies are the ones the HTTP API documents (and Prometheus 2.42 sends); the
assertions pin what the analysis relies on: floats everywhere, an empty vector as a
result with ``no_data`` (never an exception), and every failure a ``PrometheusError``
with its kind and the query in the message.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.parse
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.prometheus.client import (
    ErrorKind,
    PrometheusClient,
    PrometheusError,
    QueryResult,
    ResultType,
    condition_result,
    measurement_value,
    result_values,
)
from funade.adapters.prometheus.server import PrometheusServer, ServerError, Target

pytestmark = pytest.mark.unit

T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]

SEED_QUERY = (
    'sum(rate(http_requests_total{service="web",status!~"5.."}[5m]))\n/\n'
    'sum(rate(http_requests_total{service="web"}[5m]))\n'
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def success(result_type: str, result: object, warnings: list[str] | None = None) -> httpx.Response:
    body: dict[str, object] = {"status": "success", "data": {"resultType": result_type, "result": result}}
    if warnings:
        body["warnings"] = warnings
    return httpx.Response(200, json=body)


def query_with(handler: Handler, promql: str = SEED_QUERY, **kwargs: Any) -> QueryResult:
    async def go() -> QueryResult:
        async with PrometheusClient("127.0.0.1:9090", transport=httpx.MockTransport(handler)) as client:
            return await client.query(promql, **kwargs)

    return run(go())


def error_of(handler: Handler, promql: str = SEED_QUERY, **kwargs: Any) -> PrometheusError:
    with pytest.raises(PrometheusError) as caught:
        query_with(handler, promql, **kwargs)
    return caught.value


# -- results ----------------------------------------------------------------------------------


def test_vector_gives_labels_and_float_values() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return success(
            "vector",
            [
                {"metric": {"service": "web", "pod": "web-a"}, "value": [1700000000.5, "0.9"]},
                {"metric": {"service": "web", "pod": "web-b"}, "value": [1700000000.5, "1"]},
            ],
        )

    result = query_with(handler)
    assert result.result_type is ResultType.VECTOR
    assert not result.no_data
    assert [(s.labels["pod"], s.value) for s in result.samples] == [("web-a", 0.9), ("web-b", 1.0)]
    assert result.timestamp == 1700000000.5
    assert result_values(result) == [0.9, 1.0]
    assert condition_result(result) == [0.9, 1.0]
    assert measurement_value(result) == "[0.9,1]"
    # A form POST to the API, with the query untouched and the timeout in Prometheus' duration syntax.
    (request,) = seen
    assert request.method == "POST" and request.url.path == "/api/v1/query"
    assert str(request.url).startswith("http://127.0.0.1:9090/")
    form = urllib.parse.parse_qs(request.content.decode())
    assert form == {"query": [SEED_QUERY], "timeout": ["30s"]}


def test_scalar_is_one_value() -> None:
    result = query_with(lambda _: success("scalar", [1700000000, "0.25"]), "scalar(vector(0.25))")
    assert result.result_type is ResultType.SCALAR
    assert result.scalar == 0.25 and not result.no_data
    assert result_values(result) == [0.25]
    # Argo hands a scalar to conditions as a bare number, a vector as a list.
    assert condition_result(result) == 0.25
    assert measurement_value(result) == "0.25"


def test_empty_vector_is_no_data_not_an_error() -> None:
    result = query_with(lambda _: success("vector", []))
    assert result.no_data
    assert result_values(result) == []
    assert result.no_data_message == (
        'no data for query sum(rate(http_requests_total{service="web",status!~"5.."}[5m])) / '
        'sum(rate(http_requests_total{service="web"}[5m]))'
    )


def test_nan_and_infinities_are_floats() -> None:
    result = query_with(
        lambda _: success(
            "vector",
            [
                {"metric": {"pod": "a"}, "value": [1, "NaN"]},
                {"metric": {"pod": "b"}, "value": [1, "+Inf"]},
                {"metric": {"pod": "c"}, "value": [1, "-Inf"]},
            ],
        )
    )
    nan, pos, neg = result_values(result)
    assert math.isnan(nan) and pos == math.inf and neg == -math.inf
    assert measurement_value(result) == "[NaN,+Inf,-Inf]"
    assert math.isnan(query_with(lambda _: success("scalar", [1, "NaN"])).scalar or 0.0)


def test_matrix_and_string_parse_but_are_not_analysis_values() -> None:
    matrix = query_with(
        lambda _: success("matrix", [{"metric": {"pod": "a"}, "values": [[1, "1"], [2, "3"]]}]), "up[5m]"
    )
    assert matrix.result_type is ResultType.MATRIX
    assert matrix.series[0].points == ((1.0, 1.0), (2.0, 3.0))
    with pytest.raises(PrometheusError) as caught:
        result_values(matrix)
    assert caught.value.kind is ErrorKind.UNSUPPORTED and "matrix" in str(caught.value)
    assert query_with(lambda _: success("matrix", []), "up[5m]").no_data

    text = query_with(lambda _: success("string", [1, "hello"]), '"hello"')
    assert text.string == "hello"
    with pytest.raises(PrometheusError):
        result_values(text)


def test_warnings_are_kept() -> None:
    result = query_with(lambda _: success("vector", [], warnings=["partial response"]))
    assert result.warnings == ("partial response",)


def test_time_and_timeout_are_sent() -> None:
    forms: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        forms.append(urllib.parse.parse_qs(request.content.decode()))
        return success("vector", [])

    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    query_with(handler, "up", at=at, timeout=2.5)
    query_with(handler, "up", at=1700000000.25)
    assert forms[0]["time"] == [repr(at.timestamp())] and forms[0]["timeout"] == ["2.5s"]
    assert forms[1]["time"] == ["1700000000.25"]


def test_address_with_a_path_prefix() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return success("vector", [])

    async def go() -> None:
        async with PrometheusClient(
            "https://metrics.example/prometheus/",
            transport=httpx.MockTransport(handler),
            headers={"X-Scope-OrgID": "t"},
        ) as client:
            await client.query("up")

    run(go())
    assert seen == ["https://metrics.example/prometheus/api/v1/query"]


# -- errors -------------------------------------------------------------------------------------


def test_bad_data_names_the_parser_message_and_the_query() -> None:
    message = 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis'
    error = error_of(
        lambda _: httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": message}), "sum("
    )
    assert error.kind is ErrorKind.BAD_DATA and error.status_code == 400
    assert message in str(error) and "(query: sum()" in str(error)


def test_execution_error_and_server_side_timeout() -> None:
    error = error_of(
        lambda _: httpx.Response(422, json={"status": "error", "errorType": "execution", "error": "many-to-many"})
    )
    assert error.kind is ErrorKind.EXECUTION
    error = error_of(
        lambda _: httpx.Response(
            503, json={"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
        )
    )
    assert error.kind is ErrorKind.TIMEOUT and "timed out" in str(error)


def test_client_side_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = error_of(handler)
    assert error.kind is ErrorKind.TIMEOUT
    assert "did not answer in time" in str(error) and "http_requests_total" in str(error)


def test_unreachable_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = error_of(handler)
    assert error.kind is ErrorKind.UNREACHABLE
    assert "cannot reach Prometheus at http://127.0.0.1:9090" in str(error)


def test_something_that_is_not_prometheus() -> None:
    error = error_of(lambda _: httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert error.kind is ErrorKind.BAD_RESPONSE and error.status_code == 502
    assert "HTTP 502" in str(error) and "Bad Gateway" in str(error)
    error = error_of(lambda _: success("vector", [{"metric": {}, "value": [1, "twelve"]}]))
    assert error.kind is ErrorKind.BAD_RESPONSE and "'twelve'" in str(error)


def test_native_histograms_are_refused_clearly() -> None:
    error = error_of(lambda _: success("vector", [{"metric": {}, "histogram": [1, {"count": "3"}]}]))
    assert error.kind is ErrorKind.UNSUPPORTED and "native histogram" in str(error)


def test_targets() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/targets"
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {
                    "activeTargets": [
                        {
                            "scrapeUrl": "http://10.0.0.5:8080/metrics",
                            "labels": {"service": "web", "instance": "10.0.0.5:8080"},
                            "health": "up",
                            "lastError": "",
                            "lastScrape": "2024-01-01T00:00:00Z",
                        }
                    ],
                    "droppedTargets": [],
                },
            },
        )

    async def go() -> None:
        async with PrometheusClient("127.0.0.1:9090", transport=httpx.MockTransport(handler)) as client:
            (target,) = await client.targets()
        assert target.health == "up" and target.labels["service"] == "web"

    run(go())


# -- the server's files (no process) ---------------------------------------------------------


def test_targets_file_is_file_sd_and_rewritten_only_on_change(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, "127.0.0.1:19090")
    targets = [
        Target("172.18.0.5:8080", {"service": "web", "namespace": "prod", "pod": "web-b"}),
        Target("172.18.0.4:8080", {"service": "web", "namespace": "prod", "pod": "web-a"}, "/stats"),
    ]
    assert server.set_targets(targets) is True
    groups = json.loads(server.targets_file.read_text())
    assert groups == [
        {
            "targets": ["172.18.0.4:8080"],
            "labels": {"namespace": "prod", "pod": "web-a", "service": "web", "__metrics_path__": "/stats"},
        },
        {"targets": ["172.18.0.5:8080"], "labels": {"namespace": "prod", "pod": "web-b", "service": "web"}},
    ]
    assert server.set_targets(reversed(targets)) is False  # same set, same bytes: nothing to pick up
    assert sorted(server.current_targets(), key=lambda t: t.address) == sorted(targets, key=lambda t: t.address)
    assert server.set_targets([]) is True
    assert json.loads(server.targets_file.read_text()) == []
    assert [p.name for p in server.targets_dir.iterdir()] == ["funade.json"]  # no temporary files left


def test_invalid_targets_and_addresses_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="loopback only"):
        PrometheusServer(tmp_path, "0.0.0.0:9090")
    with pytest.raises(ServerError, match="HOST:PORT"):
        Target("web")
    with pytest.raises(ServerError, match="not a label name"):
        Target("127.0.0.1:80", {"app.kubernetes.io/name": "web"})
    with pytest.raises(ServerError, match="not a label name"):
        Target("127.0.0.1:80", {"__address__": "x"})


def test_of_home_remembers_the_address(tmp_path: Path) -> None:
    assert PrometheusServer.of_home(tmp_path).address == "127.0.0.1:9090"
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "address").write_text("127.0.0.1:19191\n")
    assert PrometheusServer.of_home(tmp_path).url == "http://127.0.0.1:19191"


def test_a_pod_behind_two_services_is_two_targets(tmp_path: Path) -> None:
    """Canary pods are selected by the stable and the canary Service: each needs its own `service` label."""
    server = PrometheusServer(tmp_path, "127.0.0.1:19090")
    server.set_targets(
        [
            Target("172.18.0.9:3000", {"service": "myapp", "pod": "myapp-abc"}),
            Target("172.18.0.9:3000", {"service": "myapp-canary", "pod": "myapp-abc"}),
        ]
    )
    groups = json.loads(server.targets_file.read_text())
    assert [g["labels"]["service"] for g in groups] == ["myapp", "myapp-canary"]
