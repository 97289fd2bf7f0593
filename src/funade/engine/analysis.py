"""Running an AnalysisRun: take the measurements the pure state machine asks for, until it completes.

:mod:`funade.core.analysis` decides what is due and what each value means; this use case
asks the providers (Prometheus, web, job) through the :class:`~funade.core.ports.Metrics` seam,
records each measurement, and sleeps until the next one is due. A provider that fails
is an Error measurement (retried after 10 s, as Argo does); a query without data is a
plain Inconclusive "no data for query …", never a silent stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from funade.core import analysis
from funade.core.analysis import AnalysisRun, AnalysisState, Measurement, Metric
from funade.core.ports import MetricAnswer, Metrics, MetricsError

__all__ = ["measure_once", "run"]

Clock = Callable[[], datetime]


async def _ask(metrics: Metrics, metric: Metric) -> MetricAnswer:
    provider = metric.provider
    if isinstance(provider, analysis.PrometheusProvider):
        timeout = float(provider.timeout) if provider.timeout else None
        return await metrics.prometheus(provider.address, provider.query, timeout, provider.headers)
    if isinstance(provider, analysis.WebProvider):
        return await metrics.web(
            provider.url,
            provider.method,
            provider.headers,
            provider.body,
            provider.json_path,
            float(provider.timeout_seconds),
        )
    return await metrics.job(metric.name, provider.spec, provider.metadata)


async def measure_once(metrics: Metrics, metric: Metric, clock: Clock) -> Measurement:
    """One measurement of ``metric``, assessed against its conditions."""
    started = clock()
    try:
        answer = await _ask(metrics, metric)
    except MetricsError as exc:
        return analysis.errored(str(exc), started, clock())
    if isinstance(metric.provider, analysis.JobProvider):
        return analysis.job_measurement(answer.result is True, answer.detail, started, clock())
    if answer.no_data:
        return analysis.no_data(answer.detail, started, clock())
    return analysis.measure(metric, answer.result, started, clock())


async def run(
    analysis_run: AnalysisRun,
    metrics: Metrics,
    clock: Clock,
    on_measurement: Callable[[str, Measurement, AnalysisState], None] = lambda name, m, state: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> AnalysisState:
    """Measure until the run is Successful, Failed, Error or Inconclusive (or ``stop`` is set, which terminates it)."""
    state = analysis.start(analysis_run, clock())
    while True:
        if stop is not None and stop.is_set() and not state.terminate:
            state = analysis.terminate(analysis_run, state)
        current, _ = analysis.phase(analysis_run, state)
        if current.completed:
            return state
        actions = analysis.next_actions(analysis_run, state, clock())
        for task in actions.measure:
            measurement = await measure_once(metrics, task.metric, clock)
            state = analysis.record(analysis_run, state, task.metric.name, measurement)
            on_measurement(task.metric.name, measurement, state)
        if actions.measure:
            continue
        if actions.wake_at is None:
            return analysis.terminate(analysis_run, state)
        delay = max(0.0, (actions.wake_at - clock()).total_seconds())
        if stop is None:
            await sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
