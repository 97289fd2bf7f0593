"""The analysis providers on this machine: Prometheus queries and web requests.

Implements :class:`funade.core.ports.Metrics`. On the local target there is no cluster
DNS, so a Prometheus address that is not on loopback (the seed's
``http://prometheus.monitoring:9090``) is served by the embedded Prometheus; each such
mapping is noted in ``mapped`` so the caller can say so.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from funade.adapters.prometheus.client import PrometheusClient, PrometheusError, condition_result
from funade.core.ports import MetricAnswer, MetricsError

__all__ = ["LocalMetrics", "read_json_path"]

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def read_json_path(document: object, path: str) -> object:
    """The value at a Kubernetes-style JSONPath such as ``{$.data.ok}`` or ``$.items[0].value``.

    Raises:
        MetricsError: the path is not of that simple form, or leads nowhere.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith("$"):
        raise MetricsError(f"jsonPath {path!r}: start with $ (for example {{$.data.ok}})")
    value = document
    position = 1
    while position < len(text):
        step = _STEP.match(text, position)
        if step is None:
            raise MetricsError(f"jsonPath {path!r}: cannot read at column {position + 1}")
        key, index, quoted = step.groups()
        try:
            value = value[int(index)] if index is not None else value[key or quoted]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            raise MetricsError(f"jsonPath {path!r}: nothing at {text[: step.end()]}") from None
        position = step.end()
    return value


def _loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"http://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalMetrics:
    """Prometheus and web providers; non-loopback Prometheus addresses go to ``embedded``."""

    def __init__(self, embedded: str | None) -> None:
        self.embedded = embedded
        self.mapped: dict[str, str] = {}

    def _address(self, address: str) -> str:
        if _loopback(address) or self.embedded is None:
            return address
        self.mapped[address] = self.embedded
        return self.embedded

    async def prometheus(
        self, address: str, query: str, timeout: float | None, headers: Sequence[tuple[str, str]]
    ) -> MetricAnswer:
        target = self._address(address)
        try:
            async with PrometheusClient(target, timeout=timeout or 30.0, headers=dict(headers)) as client:
                answer = await client.query(query, timeout=timeout)
            if answer.no_data:
                return MetricAnswer(no_data=True, detail=query)
            return MetricAnswer(condition_result(answer))
        except PrometheusError as exc:
            raise MetricsError(f"prometheus at {target}: {exc}") from exc

    async def job(self, metric: str, spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> MetricAnswer:
        """Jobs run as pods on the target: only the funade server (its AnalysisRun controller) runs them."""
        raise MetricsError(f"metric {metric}: the job provider runs in the funade server (apply an AnalysisRun)")

    async def web(
        self,
        url: str,
        method: str,
        headers: Sequence[tuple[str, str]],
        body: str | None,
        json_path: str | None,
        timeout: float,
    ) -> MetricAnswer:
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.request(method, url, headers=dict(headers), content=body)
        except httpx.HTTPError as exc:
            raise MetricsError(f"web {method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise MetricsError(f"web {method} {url}: HTTP {response.status_code}")
        try:
            document = json.loads(response.content)
        except ValueError as exc:
            raise MetricsError(f"web {method} {url}: the answer is not JSON") from exc
        return MetricAnswer(read_json_path(document, json_path) if json_path else document)
