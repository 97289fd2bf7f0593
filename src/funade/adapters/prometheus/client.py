"""The Prometheus HTTP API client behind the analysis provider ``prometheus``.

An AnalysisRun measurement is one instant query. What the analysis needs from it is a
typed answer it can judge: the result type, the values as floats (``NaN`` and ``±Inf``
included, since conditions such as ``isNaN(result[0])`` test for them), warnings, and
three outcomes kept apart:

- a result with data: the conditions decide;
- **no data** (an empty vector, e.g. a Service nobody has sent a request yet): a
  ``QueryResult`` whose ``no_data`` is true, not an exception, so the analysis can call
  the measurement Inconclusive "no data for query …" instead of failing on ``result[0]``
  (the stall users of Argo Rollouts and Flagger report);
- an error (bad PromQL, server unreachable, timeout): :class:`PrometheusError` naming the
  query and the kind, which the analysis counts against ``consecutiveErrorLimit``.

Queries are sent as a form-encoded POST (the API accepts it; long queries never meet a
URL length limit).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import NamedTuple

import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "ErrorKind",
    "PrometheusClient",
    "PrometheusError",
    "QueryResult",
    "ResultType",
    "Sample",
    "ScrapeTarget",
    "Series",
    "condition_result",
    "measurement_value",
    "result_values",
]

# Argo Rollouts' default for the provider's `timeout` (seconds).
DEFAULT_TIMEOUT = 30.0
# Extra time the HTTP request gets beyond the query timeout, so Prometheus' own timeout
# answer (503, errorType "timeout") arrives before ours fires.
_HTTP_MARGIN = 2.0


class ResultType(enum.StrEnum):
    """What an expression evaluated to (``data.resultType``)."""

    VECTOR = "vector"
    SCALAR = "scalar"
    MATRIX = "matrix"
    STRING = "string"


class ErrorKind(enum.StrEnum):
    """Why a query gave no result: Prometheus' ``errorType`` values, plus our own transport kinds."""

    BAD_DATA = "bad_data"  # the query does not parse, or a parameter is wrong (400)
    EXECUTION = "execution"  # the expression cannot be evaluated (422)
    TIMEOUT = "timeout"  # Prometheus gave up (503), or no answer within our HTTP timeout
    CANCELED = "canceled"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    UNREACHABLE = "unreachable"  # no connection to the address
    BAD_RESPONSE = "bad_response"  # an answer that is not the Prometheus API (a proxy's 502, HTML, …)
    UNSUPPORTED = "unsupported"  # a valid answer analysis cannot use (a matrix, a native histogram)


def _one_line(query: str) -> str:
    return " ".join(query.split())


class PrometheusError(Exception):
    """A query that produced no usable result; ``kind`` says why, the message names the query."""

    def __init__(self, kind: ErrorKind, detail: str, *, query: str, status_code: int | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.query = query
        self.status_code = status_code
        super().__init__(f"{kind.value}: {detail} (query: {_one_line(query)})")


class Sample(NamedTuple):
    """One series of an instant vector: its labels and its value at the evaluation time."""

    labels: dict[str, str]
    value: float


class Series(NamedTuple):
    """One series of a range vector: its labels and (timestamp, value) points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class QueryResult:
    """The answer to one instant query.

    Exactly one of ``samples`` (vector), ``scalar``, ``series`` (matrix) or ``string`` is
    filled, as ``result_type`` says. ``timestamp`` is the evaluation time (Unix seconds)
    for vectors, scalars and strings.
    """

    query: str
    result_type: ResultType
    samples: tuple[Sample, ...] = ()
    scalar: float | None = None
    series: tuple[Series, ...] = ()
    string: str | None = None
    timestamp: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def no_data(self) -> bool:
        """True when the query matched no series: an empty vector (or an empty matrix)."""
        return (self.result_type is ResultType.VECTOR and not self.samples) or (
            self.result_type is ResultType.MATRIX and not self.series
        )

    @property
    def no_data_message(self) -> str:
        """What the analysis says for an Inconclusive measurement without data."""
        return f"no data for query {_one_line(self.query)}"


@dataclass(frozen=True)
class ScrapeTarget:
    """One active scrape target as Prometheus sees it (``/api/v1/targets``)."""

    scrape_url: str
    labels: dict[str, str]
    health: str  # "up", "down" or "unknown" (not scraped yet)
    last_error: str
    last_scrape: str  # RFC 3339, "0001-01-01T00:00:00Z" before the first scrape


def result_values(result: QueryResult) -> list[float]:
    """The values as a list: a vector's sample values in order, a scalar as ``[value]``.

    An empty vector gives ``[]``; check ``result.no_data`` first to report it as such.

    Raises:
        PrometheusError: for a matrix or a string, which Argo's provider does not support either.
    """
    if result.result_type is ResultType.VECTOR:
        return [sample.value for sample in result.samples]
    if result.result_type is ResultType.SCALAR:
        assert result.scalar is not None
        return [result.scalar]
    raise PrometheusError(
        ErrorKind.UNSUPPORTED,
        f"the query gives a {result.result_type.value}; analysis needs an instant vector or a scalar",
        query=result.query,
    )


def condition_result(result: QueryResult) -> float | list[float]:
    """``result`` exactly as Argo Rollouts hands it to a condition.

    Argo gives a vector as a list of floats (hence ``result[0] >= 0.99``) but a scalar
    as a bare float (``result >= 0.99``); :func:`result_values` lists both.
    """
    if result.result_type is ResultType.SCALAR:
        assert result.scalar is not None
        return result.scalar
    return result_values(result)


def _format(value: float) -> str:
    """A value as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` writes it (Prometheus' SampleValue.String)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    # The shortest digits that round-trip (repr), written without an exponent like Go's 'f'.
    text = format(Decimal(repr(value)), "f")
    return text.removesuffix(".0") if "." in text and text.rstrip("0").endswith(".") else text


def measurement_value(result: QueryResult) -> str:
    """The measurement's ``value`` string as Argo records it: ``[0.9,0.95]`` for a vector, ``0.9`` for a scalar."""
    values = condition_result(result)
    if isinstance(values, float):
        return _format(values)
    return "[" + ",".join(_format(v) for v in values) + "]"


def _float(text: object, query: str) -> float:
    if not isinstance(text, str):
        raise PrometheusError(ErrorKind.BAD_RESPONSE, f"a sample value is not a string: {text!r}", query=query)
    try:
        return float(text)  # accepts "NaN", "+Inf", "-Inf" as Prometheus writes them
    except ValueError:
        raise PrometheusError(
            ErrorKind.BAD_RESPONSE, f"a sample value is not a number: {text!r}", query=query
        ) from None


def _pair(raw: object, query: str) -> tuple[float, str]:
    if not (isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int | float)):
        raise PrometheusError(ErrorKind.BAD_RESPONSE, f"a sample is not [timestamp, value]: {raw!r}", query=query)
    return float(raw[0]), raw[1]


def _labels(raw: object, query: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise PrometheusError(ErrorKind.BAD_RESPONSE, f"series labels are not an object: {raw!r}", query=query)
    return {str(k): str(v) for k, v in raw.items()}


def _parse(query: str, data: object, warnings: tuple[str, ...]) -> QueryResult:
    if not isinstance(data, dict):
        raise PrometheusError(ErrorKind.BAD_RESPONSE, "the answer has no data object", query=query)
    kind = data.get("resultType")
    raw = data.get("result")
    try:
        result_type = ResultType(str(kind))
    except ValueError:
        raise PrometheusError(ErrorKind.UNSUPPORTED, f"unknown result type {kind!r}", query=query) from None
    if result_type is ResultType.VECTOR:
        if not isinstance(raw, list):
            raise PrometheusError(ErrorKind.BAD_RESPONSE, "a vector result is not a list", query=query)
        samples = []
        timestamp = None
        for item in raw:
            if not isinstance(item, dict):
                raise PrometheusError(
                    ErrorKind.BAD_RESPONSE, f"a vector sample is not an object: {item!r}", query=query
                )
            if "value" not in item:
                raise PrometheusError(
                    ErrorKind.UNSUPPORTED,
                    "native histogram samples are not supported; query a float series (e.g. histogram_quantile)",
                    query=query,
                )
            timestamp, value = _pair(item["value"], query)
            samples.append(Sample(_labels(item.get("metric", {}), query), _float(value, query)))
        return QueryResult(query, result_type, samples=tuple(samples), timestamp=timestamp, warnings=warnings)
    if result_type is ResultType.MATRIX:
        if not isinstance(raw, list):
            raise PrometheusError(ErrorKind.BAD_RESPONSE, "a matrix result is not a list", query=query)
        series = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("values", []), list):
                raise PrometheusError(ErrorKind.BAD_RESPONSE, f"a matrix series is malformed: {item!r}", query=query)
            points = tuple((ts, _float(v, query)) for ts, v in (_pair(p, query) for p in item.get("values", [])))
            series.append(Series(_labels(item.get("metric", {}), query), points))
        return QueryResult(query, result_type, series=tuple(series), warnings=warnings)
    timestamp, value = _pair(raw, query)
    if result_type is ResultType.SCALAR:
        return QueryResult(query, result_type, scalar=_float(value, query), timestamp=timestamp, warnings=warnings)
    return QueryResult(query, result_type, string=str(value), timestamp=timestamp, warnings=warnings)


def _error_kind(error_type: object, status_code: int) -> ErrorKind:
    try:
        return ErrorKind(str(error_type))
    except ValueError:
        return ErrorKind.EXECUTION if status_code == 422 else ErrorKind.BAD_RESPONSE


def _base_url(address: str) -> str:
    """``host:port`` or a URL (with an optional path prefix) as a base URL without a trailing slash."""
    address = address.strip()
    if "://" not in address:
        address = f"http://{address}"
    return address.rstrip("/")


class PrometheusClient:
    """Instant queries against one Prometheus server (``address``: a URL or ``host:port``).

    ``timeout`` is the default query timeout in seconds (Argo's default, 30 s); it is sent
    to Prometheus as the query's ``timeout`` and bounds the HTTP request too. ``headers``
    are added to every request (Argo's ``headers``, e.g. ``X-Scope-Org-ID``). Use it as an
    async context manager or call :meth:`aclose`.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.address = _base_url(address)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.address,
            headers=dict(headers or {}),
            transport=transport,
            timeout=timeout + _HTTP_MARGIN,
        )

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str, at: datetime | float | None = None, timeout: float | None = None) -> QueryResult:
        """Evaluate ``promql`` at ``at`` (default: now, on the server's clock).

        Returns:
            The typed result; an empty vector is a result with ``no_data`` true.

        Raises:
            PrometheusError: the query was refused (``bad_data`` with the parser's message,
                ``execution``), timed out, or the server could not be reached or did not
                answer as Prometheus.
        """
        seconds = self.timeout if timeout is None else timeout
        form = {"query": promql, "timeout": f"{seconds:g}s"}
        if at is not None:
            form["time"] = repr(at.timestamp() if isinstance(at, datetime) else float(at))
        body = await self._call("POST", "/api/v1/query", promql, data=form, timeout=seconds + _HTTP_MARGIN)
        raw_warnings = body.get("warnings")
        warnings = tuple(str(w) for w in raw_warnings) if isinstance(raw_warnings, list) else ()
        return _parse(promql, body.get("data"), warnings)

    async def targets(self) -> list[ScrapeTarget]:
        """The active scrape targets and their health (what the server scrapes right now)."""
        body = await self._call("GET", "/api/v1/targets", "", params={"state": "active"})
        data = body.get("data")
        active = data.get("activeTargets") if isinstance(data, dict) else None
        if not isinstance(active, list):
            raise PrometheusError(ErrorKind.BAD_RESPONSE, "the targets answer has no activeTargets", query="")
        return [
            ScrapeTarget(
                scrape_url=str(t.get("scrapeUrl", "")),
                labels=_labels(t.get("labels", {}), ""),
                health=str(t.get("health", "unknown")),
                last_error=str(t.get("lastError", "")),
                last_scrape=str(t.get("lastScrape", "")),
            )
            for t in active
            if isinstance(t, dict)
        ]

    async def _call(
        self,
        method: str,
        path: str,
        query: str,
        *,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, object]:
        try:
            response = await self._http.request(
                method,
                path,
                data=data,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise PrometheusError(
                ErrorKind.TIMEOUT, f"Prometheus at {self.address} did not answer in time", query=query
            ) from None
        except httpx.TransportError as exc:
            raise PrometheusError(
                ErrorKind.UNREACHABLE, f"cannot reach Prometheus at {self.address}: {exc}", query=query
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            snippet = _one_line(response.text)[:200]
            raise PrometheusError(
                ErrorKind.BAD_RESPONSE,
                f"{self.address} answered HTTP {response.status_code}, not the Prometheus API: {snippet!r}",
                query=query,
                status_code=response.status_code,
            )
        if body["status"] == "error" or response.status_code >= 400:
            kind = _error_kind(body.get("errorType"), response.status_code)
            message = str(body.get("error") or f"HTTP {response.status_code}")
            raise PrometheusError(kind, message, query=query, status_code=response.status_code)
        return body
