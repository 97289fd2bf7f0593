"""Running an AnalysisRun through the Metrics seam: measurements taken when due, the run ends as Argo's would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from funade.adapters.metrics import read_json_path
from funade.core import analysis
from funade.core.analysis import Phase
from funade.core.ports import MetricAnswer, MetricsError
from funade.engine import analysis as engine

pytestmark = pytest.mark.unit
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "argo" / "analysis-template.yaml"


class FakeMetrics:
    """Answers queries from a script of values (a float list, "no data", or an exception)."""

    def __init__(self, answers: Sequence[object]) -> None:
        self.answers = list(answers)
        self.queries: list[str] = []

    async def prometheus(
        self, address: str, query: str, timeout: float | None, headers: Sequence[tuple[str, str]]
    ) -> MetricAnswer:
        self.queries.append(query)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer == "no data":
            return MetricAnswer(no_data=True, detail=query)
        return MetricAnswer(answer)

    async def web(self, *args: object) -> MetricAnswer:
        raise MetricsError("no web here")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, tzinfo=UTC)
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def seed_run(count: int) -> analysis.AnalysisRun:
    doc = yaml.safe_load(SEED.read_text())
    doc["spec"]["metrics"][0]["count"] = count
    return analysis.new_run([analysis.parse_template(doc)], {"service-name": "myapp-canary"})


def test_the_seed_template_fails_on_the_fourth_bad_measurement_a_minute_apart() -> None:
    clock = Clock()
    metrics = FakeMetrics([[0.5]] * 4 + [[1.0]] * 6)
    seen: list[Phase] = []
    state = asyncio.run(engine.run(seed_run(10), metrics, clock, lambda name, m, s: seen.append(m.phase), clock.sleep))
    assert state.phase is Phase.FAILED and "failureLimit (3)" in state.message
    assert seen == [Phase.FAILED] * 4
    assert clock.slept == [60.0, 60.0, 60.0]  # interval 60s
    assert 'service="myapp-canary"' in metrics.queries[0]


def test_no_data_is_a_plain_inconclusive_and_errors_retry_after_ten_seconds() -> None:
    clock = Clock()
    state = asyncio.run(engine.run(seed_run(5), FakeMetrics(["no data"]), clock, sleep=clock.sleep))
    assert state.phase is Phase.INCONCLUSIVE
    (result,) = state.results
    assert result.measurements[0].message.startswith("no data for query sum(rate(http_requests_total")
    clock = Clock()
    failing = [MetricsError("prometheus at x: unreachable")] * 5
    state = asyncio.run(engine.run(seed_run(5), FakeMetrics(failing), clock, sleep=clock.sleep))
    assert state.phase is Phase.ERROR and clock.slept == [10.0] * 4  # consecutiveErrorLimit 4


def test_a_good_canary_succeeds_after_count_measurements() -> None:
    clock = Clock()
    state = asyncio.run(engine.run(seed_run(3), FakeMetrics([[0.999]] * 3), clock, sleep=clock.sleep))
    assert state.phase is Phase.SUCCESSFUL


def test_stop_terminates_the_run_as_a_promotion_does() -> None:
    async def scenario() -> analysis.AnalysisState:
        stop = asyncio.Event()
        stop.set()
        return await engine.run(seed_run(10), FakeMetrics([[1.0]] * 10), lambda: datetime.now(UTC), stop=stop)

    assert asyncio.run(scenario()).phase is Phase.SUCCESSFUL


@pytest.mark.parametrize(
    ("path", "expected"),
    [("{$.data.ok}", True), ("$.items[1].value", 0.5), ("{$.data['rate']}", 0.9), ("$", {"x": 1})],
)
def test_json_path(path: str, expected: object) -> None:
    documents = {
        "{$.data.ok}": {"data": {"ok": True}},
        "$.items[1].value": {"items": [{"value": 1}, {"value": 0.5}]},
        "{$.data['rate']}": {"data": {"rate": 0.9}},
        "$": {"x": 1},
    }
    assert read_json_path(documents[path], path) == expected


def test_json_path_errors_say_where() -> None:
    with pytest.raises(MetricsError, match=r"nothing at \$.data.missing"):
        read_json_path({"data": {}}, "{$.data.missing}")
    with pytest.raises(MetricsError, match="start with"):
        read_json_path({}, "data.ok")


class JobMetrics(FakeMetrics):
    """Jobs that succeed or fail as scripted."""

    def __init__(self, outcomes: Sequence[bool]) -> None:
        super().__init__([])
        self.outcomes = list(outcomes)
        self.jobs: list[str] = []

    async def job(self, metric: str, spec: object, metadata: object) -> MetricAnswer:
        self.jobs.append(metric)
        ok = self.outcomes.pop(0)
        return MetricAnswer(ok, detail="job pod succeeded" if ok else "backoffLimit reached")


def job_run(count: int) -> analysis.AnalysisRun:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke"},
        "spec": {
            "metrics": [
                {
                    "name": "smoke",
                    "count": count,
                    "interval": "5s",
                    "provider": {
                        "job": {"spec": {"template": {"spec": {"containers": [{"name": "t", "image": "x"}]}}}}
                    },
                }
            ]
        },
    }
    return analysis.new_run([analysis.parse_template(doc)], name="job")


def test_a_job_metric_is_successful_when_the_job_succeeds_and_failed_when_it_fails() -> None:
    clock = Clock()
    good = asyncio.run(engine.run(job_run(2), JobMetrics([True, True]), clock, sleep=clock.sleep))
    assert good.phase is Phase.SUCCESSFUL
    bad = asyncio.run(engine.run(job_run(2), JobMetrics([True, False]), clock, sleep=clock.sleep))
    assert bad.phase is Phase.FAILED
    (result,) = bad.results
    assert [m.phase for m in result.measurements] == [Phase.SUCCESSFUL, Phase.FAILED]
    assert result.measurements[-1].message == "backoffLimit reached"
