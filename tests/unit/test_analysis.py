"""AnalysisTemplate / AnalysisRun semantics, checked against Argo Rollouts' analysis controller.

Cases follow analysis/analysis.go (generateMetricTasks, runMeasurements, assessRunStatus,
assessMetricStatus, calculateNextReconcileTime), utils/evaluate/evaluate.go (EvaluateResult)
and utils/analysis/helpers.go (FlattenTemplates, MergeArgs, GetDryRunMetrics).
"""

from __future__ import annotations

import copy
import itertools
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.core import analysis
from funade.core.analysis import AnalysisError, Phase

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "argo" / "analysis-template.yaml"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def seed_doc() -> dict[str, Any]:
    doc = yaml.safe_load(SEED.read_text())
    assert isinstance(doc, dict)
    return doc


def seed_run() -> analysis.AnalysisRun:
    return analysis.new_run([analysis.parse_template(seed_doc())], {"service-name": "web"})


def template(*metrics: dict[str, Any], args: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": {"args": args or [], "metrics": list(metrics), **spec},
    }


def metric(name: str = "m", **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"prometheus": {"address": "http://p:9090", "query": "up"}}, **fields}


def run_of(*metrics: dict[str, Any], **spec: Any) -> analysis.AnalysisRun:
    return analysis.new_run([analysis.parse_template(template(*metrics, **spec))])


def drive(
    run: analysis.AnalysisRun, values: list[object], *, start: datetime = T0, limit: int = 50
) -> tuple[analysis.AnalysisState, list[datetime]]:
    """Run the state machine, feeding values in order (an Exception means an errored measurement)."""
    state = analysis.start(run, start)
    now = start
    taken: list[datetime] = []
    feed = list(values)
    for _ in range(limit):
        actions = analysis.next_actions(run, state, now)
        for task in actions.measure:
            if not feed:
                return state, taken
            value = feed.pop(0)
            taken.append(now)
            if isinstance(value, Exception):
                m = analysis.errored(str(value), now, now)
            else:
                m = analysis.measure(task.metric, value, now, now)
            state = analysis.record(run, state, task.metric.name, m)
        if state.phase.completed or not feed:
            return state, taken
        nxt = analysis.next_actions(run, state, now)
        if nxt.measure:
            continue
        if nxt.wake_at is None:
            return state, taken
        now = nxt.wake_at
    return state, taken


# ---------------------------------------------------------------------------- the seed


def test_seed_template_parses_with_argo_defaults() -> None:
    tpl = analysis.parse_template(seed_doc())
    assert tpl.kind == "AnalysisTemplate"
    assert tpl.name == "success-rate"
    assert tpl.args == (analysis.Arg("service-name"),)
    run = seed_run()
    (m,) = run.metrics
    assert m.interval == MINUTE
    assert m.count is None and m.effective_count is None  # interval without count: runs until terminated
    assert m.failure_limit == 3 and m.inconclusive_limit == 0
    assert m.consecutive_error_limit == 4
    assert m.success_condition == "result[0] >= 0.99"
    assert isinstance(m.provider, analysis.PrometheusProvider)
    assert m.provider.address == "http://prometheus.monitoring:9090"
    assert 'service="web",status!~"5.."' in m.provider.query
    assert "{{" not in m.provider.query


def test_seed_good_result_is_successful_and_keeps_running() -> None:
    run = seed_run()
    state, _ = drive(run, [[0.995]])
    result = state.result("success-rate")
    assert result is not None and result.successful == 1 and result.count == 1
    assert result.measurements[-1].phase is Phase.SUCCESSFUL
    assert analysis.phase(run, state) == (Phase.RUNNING, "")
    assert analysis.next_actions(run, state, T0).wake_at == T0 + MINUTE
    done = analysis.terminate(run, state)
    assert done.phase is Phase.SUCCESSFUL
    assert done.message == "Run Terminated"


def test_seed_failure_limit_3_fails_on_the_fourth_failure() -> None:
    run = seed_run()
    state, taken = drive(run, [[0.5], [0.5], [0.5]])
    assert state.phase is Phase.RUNNING
    state, taken = drive(run, [[0.5]] * 4)
    assert state.phase is Phase.FAILED
    assert taken == [T0 + i * MINUTE for i in range(4)]  # detection = interval x (failureLimit + 1) from start
    assert state.message == 'Metric "success-rate" assessed Failed due to failed (4) > failureLimit (3)'
    assert analysis.next_actions(run, state, T0 + 10 * MINUTE) == analysis.Actions((), None)


def test_successes_between_failures_do_not_reset_the_failure_count() -> None:
    state, _ = drive(seed_run(), [[0.5], [0.999], [0.5], [0.999], [0.5], [0.5]])
    assert state.phase is Phase.FAILED


def test_early_termination_is_successful_unless_failure_limit_breached() -> None:
    run = seed_run()
    state, _ = drive(run, [[0.5], [0.5]])
    assert analysis.terminate(run, state).phase is Phase.SUCCESSFUL
    never, _ = drive(run, [])
    assert analysis.terminate(run, never).phase is Phase.SUCCESSFUL


# ---------------------------------------------------------------------------- EvaluateResult


@pytest.mark.parametrize(
    ("success", "failure", "value", "expected"),
    [
        ("", "", [0.1], Phase.SUCCESSFUL),
        ("result[0] > 0.9", "", [0.95], Phase.SUCCESSFUL),
        ("result[0] > 0.9", "", [0.5], Phase.FAILED),
        ("", "result[0] < 0.5", [0.4], Phase.FAILED),
        ("", "result[0] < 0.5", [0.6], Phase.SUCCESSFUL),
        ("result[0] > 0.9", "result[0] < 0.5", [0.7], Phase.INCONCLUSIVE),
        ("result[0] > 0.9", "result[0] < 0.5", [0.95], Phase.SUCCESSFUL),
        ("result[0] > 0.1", "result[0] < 0.5", [0.3], Phase.FAILED),  # both true: failure wins
        ("result[0] > 0.9", "", [], Phase.ERROR),  # empty vector: index error, as in Argo
        ("result[0] > 0.9", "", [math.nan], Phase.FAILED),  # NaN compares false
        ("isNaN(result[0])", "", [math.nan], Phase.SUCCESSFUL),
        ("result", "", 1, Phase.ERROR),  # not a bool
        ("len(result) == 0", "", [], Phase.SUCCESSFUL),
        ("default(result, 0) == 0", "", None, Phase.SUCCESSFUL),
        ("isNil(result)", "", None, Phase.SUCCESSFUL),
        ("asFloat(result.rate) > 0.9", "", {"rate": "0.95"}, Phase.SUCCESSFUL),
        ("result.ok == true && asInt(result.n) >= 3", "", {"ok": True, "n": "3"}, Phase.SUCCESSFUL),
    ],
)
def test_evaluate_result(success: str, failure: str, value: object, expected: Phase) -> None:
    fields = {"successCondition": success, "failureCondition": failure}
    (m,) = run_of(metric(**fields)).metrics
    assert analysis.evaluate(m, value)[0] is expected


def test_evaluate_error_message_names_expression() -> None:
    (m,) = run_of(metric(successCondition="result[0] >= 0.99")).metrics
    ph, message = analysis.evaluate(m, [])
    assert ph is Phase.ERROR
    assert "index out of range" in message and "result[0] >= 0.99" in message


def test_no_data_is_a_clear_inconclusive() -> None:
    run = seed_run()
    m = run.metrics[0]
    assert isinstance(m.provider, analysis.PrometheusProvider)
    state = analysis.start(run, T0)
    state = analysis.record(run, state, m.name, analysis.no_data(m.provider.query, T0, T0))
    assert state.phase is Phase.INCONCLUSIVE
    assert "no data for query sum(rate(" in state.message
    assert state.message.startswith('Metric "success-rate" assessed Inconclusive due to inconclusive (1) > ')


# ---------------------------------------------------------------------------- limits


def test_inconclusive_limit() -> None:
    run = run_of(metric(interval="10s", successCondition="result > 5", failureCondition="result < 1",
                        inconclusiveLimit=2))  # fmt: skip
    state, _ = drive(run, [3, 3])
    assert state.phase is Phase.RUNNING
    state, _ = drive(run, [3, 3, 3])
    assert state.phase is Phase.INCONCLUSIVE
    assert "inconclusive (3) > inconclusiveLimit (2)" in state.message


def test_consecutive_errors_default_4_errors_on_the_fifth_and_retry_every_10s() -> None:
    run = run_of(metric(interval="1m", successCondition="result > 0"))
    boom = RuntimeError("connection refused")
    state, taken = drive(run, [boom] * 4)
    assert state.phase is Phase.RUNNING
    state, taken = drive(run, [boom] * 5)
    assert state.phase is Phase.ERROR
    assert taken == [T0 + timedelta(seconds=10 * i) for i in range(5)]
    result = state.result("m")
    assert result is not None and result.count == 0 and result.error == 5  # errors never count
    assert state.message == (
        'Metric "m" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): '
        '"Error Message: connection refused"'
    )


def test_a_success_resets_the_error_streak() -> None:
    run = run_of(metric(interval="1m", successCondition="result > 0", consecutiveErrorLimit=1))
    boom = RuntimeError("x")
    state, _ = drive(run, [boom, 1, boom, 1, boom])
    assert state.phase is Phase.RUNNING
    state, _ = drive(run, [boom, boom])
    assert state.phase is Phase.ERROR


def test_count_reached_is_successful_even_with_failures_under_the_limit() -> None:
    run = run_of(metric(interval="30s", count=3, failureLimit=1, successCondition="result > 0"))
    state, taken = drive(run, [1, 0, 1, 1])
    assert state.phase is Phase.SUCCESSFUL
    assert taken == [T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)]


def test_no_interval_means_one_measurement() -> None:
    run = run_of(metric(successCondition="result > 0"))
    assert run.metrics[0].effective_count == 1
    state, taken = drive(run, [1, 1])
    assert state.phase is Phase.SUCCESSFUL and len(taken) == 1


def test_no_interval_error_is_retried_after_10s() -> None:
    run = run_of(metric(successCondition="result > 0"))
    state, taken = drive(run, [RuntimeError("x"), 1])
    assert state.phase is Phase.SUCCESSFUL
    assert taken == [T0, T0 + timedelta(seconds=10)]


def test_failure_limit_minus_one_never_fails() -> None:
    run = run_of(metric(interval="1s", count=5, failureLimit=-1, successCondition="result > 0"))
    state, _ = drive(run, [0] * 5)
    assert state.phase is Phase.SUCCESSFUL


def test_run_takes_the_worst_metric_and_stops_the_others() -> None:
    run = run_of(metric("a", interval="1m", successCondition="result > 0"), metric("b", successCondition="result > 0"))
    state = analysis.start(run, T0)
    state = analysis.record(run, state, "b", analysis.measure(run.metric("b"), 0, T0, T0))
    assert state.phase is Phase.FAILED
    assert state.result("a") is None
    assert analysis.next_actions(run, state, T0).measure == ()


def test_phase_order() -> None:
    order = [Phase.SUCCESSFUL, Phase.RUNNING, Phase.PENDING, Phase.INCONCLUSIVE, Phase.ERROR, Phase.FAILED]
    for better, worse in itertools.pairwise(order):
        assert worse.worse_than(better) and not better.worse_than(worse)


# ---------------------------------------------------------------------------- scheduling


def test_initial_delay_holds_the_first_measurement() -> None:
    run = run_of(metric(interval="1m", initialDelay="30s", successCondition="result > 0"))
    state = analysis.start(run, T0)
    actions = analysis.next_actions(run, state, T0)
    assert actions.measure == () and actions.wake_at == T0 + timedelta(seconds=30)
    assert analysis.next_actions(run, state, T0 + timedelta(seconds=29)).measure == ()
    assert len(analysis.next_actions(run, state, T0 + timedelta(seconds=30)).measure) == 1
    _, taken = drive(run, [1, 1])
    assert taken == [T0 + timedelta(seconds=30), T0 + timedelta(seconds=90)]


def test_wake_is_the_earliest_metric() -> None:
    run = run_of(metric("a", interval="1m"), metric("b", interval="15s"))
    state = analysis.start(run, T0)
    for name in ("a", "b"):
        state = analysis.record(run, state, name, analysis.measure(run.metric(name), 1, T0, T0))
    assert analysis.next_actions(run, state, T0).wake_at == T0 + timedelta(seconds=15)
    due = analysis.next_actions(run, state, T0 + timedelta(seconds=15)).measure
    assert [t.metric.name for t in due] == ["b"]


def test_in_flight_measurement_is_resumed_or_terminated() -> None:
    run = run_of(metric(interval="1m"))
    state = analysis.start(run, T0)
    flight = analysis.Measurement(Phase.RUNNING, T0, resume_at=T0 + timedelta(seconds=5))
    state = analysis.record(run, state, "m", flight)
    assert state.phase is Phase.RUNNING
    assert analysis.next_actions(run, state, T0).wake_at == T0 + timedelta(seconds=5)
    assert analysis.next_actions(run, state, T0 + timedelta(seconds=5)).measure[0].mode == "resume"
    stopping = analysis.AnalysisState(state.started_at, state.results, state.phase, terminate=True)
    assert analysis.next_actions(run, stopping, T0 + timedelta(seconds=5)).measure[0].mode == "terminate"
    state = analysis.record(run, state, "m", analysis.measure(run.metric("m"), 1, T0, T0 + timedelta(seconds=5)))
    result = state.result("m")
    assert result is not None and len(result.measurements) == 1 and result.count == 1


# ---------------------------------------------------------------------------- dryRun and retention


def test_dry_run_metric_never_changes_the_run() -> None:
    run = run_of(
        metric("real", interval="1m", count=2, successCondition="result > 0"),
        metric("trial", interval="1m", count=2, successCondition="result > 100"),
        dryRun=[{"metricName": "tri"}],
    )
    assert run.dry_run == frozenset({"trial"})
    state = analysis.start(run, T0)
    for at in (T0, T0 + MINUTE):
        for name in ("real", "trial"):
            state = analysis.record(run, state, name, analysis.measure(run.metric(name), 1, at, at))
    trial = state.result("trial")
    assert trial is not None and trial.phase is Phase.FAILED and trial.dry_run
    assert trial.message == "Metric assessed Failed due to failed (1) > failureLimit (0)"
    assert state.phase is Phase.SUCCESSFUL


def test_dry_run_rule_must_match() -> None:
    with pytest.raises(AnalysisError, match=r"dryRun\[0\]: rule 'zzz' didn't match"):
        run_of(metric("a"), dryRun=[{"metricName": "zzz"}])


def test_measurement_retention() -> None:
    run = run_of(metric("a", interval="1s"), measurementRetention=[{"metricName": "a", "limit": 3}])
    state, _ = drive(run, [1] * 7)
    result = state.result("a")
    assert result is not None and result.count == 7 and len(result.measurements) == 3
    default_run = run_of(metric("a", interval="1s"))
    state, _ = drive(default_run, [1] * 12)
    result = state.result("a")
    assert result is not None and len(result.measurements) == 10


# ---------------------------------------------------------------------------- args and templates


def test_arg_substitution_with_spaces_and_in_every_field() -> None:
    m = metric(
        interval="{{ args.every }}",
        count="{{args.n}}",
        successCondition="result[0] >= {{args.floor}}",
        provider={"web": {"url": "http://{{ args.host }}/metrics", "jsonPath": "{$.rate}",
                          "headers": [{"key": "X-Svc", "value": "{{args.host}}"}]}},
    )  # fmt: skip
    args = [{"name": n} for n in ("every", "n", "floor", "host")]
    tpl = analysis.parse_template(template(m, args=args))
    run = analysis.new_run([tpl], {"every": "30s", "n": "3", "floor": "0.9", "host": "web"})
    (got,) = run.metrics
    assert got.interval == timedelta(seconds=30) and got.count == 3
    assert got.success_condition == "result[0] >= 0.9"
    assert got.provider == analysis.WebProvider(
        url="http://web/metrics", json_path="{$.rate}", headers=(("X-Svc", "web"),)
    )


def test_missing_arg_value_is_an_error_naming_it() -> None:
    tpl = analysis.parse_template(seed_doc())
    with pytest.raises(AnalysisError, match=r"args\.service-name was not resolved"):
        analysis.new_run([tpl])


def test_unknown_arg_in_template_is_an_error_naming_it() -> None:
    tpl = analysis.parse_template(template(metric(successCondition="result > {{args.nope}}")))
    with pytest.raises(AnalysisError, match=r"failed to resolve \{\{args.nope\}\}: no argument 'nope'"):
        analysis.new_run([tpl])


def test_template_default_value_and_override() -> None:
    tpl = analysis.parse_template(
        template(metric(successCondition="result > {{args.x}}"), args=[{"name": "x", "value": "1"}])
    )
    assert analysis.new_run([tpl]).metrics[0].success_condition == "result > 1"
    assert analysis.new_run([tpl], {"x": "2"}).metrics[0].success_condition == "result > 2"


def test_value_from_is_left_for_the_caller() -> None:
    args = [
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "pod", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    m = metric(provider={"web": {"url": "http://x/{{args.pod}}", "headers": [{"key": "A", "value": "{{args.token}}"}]}})
    tpl = analysis.parse_template(template(m, args=args))
    assert tpl.args[0].value_from == analysis.SecretKeyRef("s", "k")
    assert tpl.args[1].value_from == analysis.FieldRef("metadata.labels['app']")
    with pytest.raises(AnalysisError, match=r"args\.token: valueFrom .* is not resolved"):
        analysis.new_run([tpl])
    run = analysis.new_run([tpl], resolved={"token": "sekret", "pod": "web"})
    provider = run.metrics[0].provider
    assert isinstance(provider, analysis.WebProvider)
    assert provider.url == "http://x/web" and provider.headers == (("A", "sekret"),)


def test_merge_templates_refuses_duplicate_metrics_and_merges_args() -> None:
    a = analysis.parse_template(template(metric("one"), args=[{"name": "svc"}]))
    b_doc = template(metric("two"), args=[{"name": "svc", "value": "web"}])
    b_doc["kind"] = "ClusterAnalysisTemplate"
    b = analysis.parse_template(b_doc)
    run = analysis.new_run([b, a])
    assert [m.name for m in run.metrics] == ["one", "two"]  # namespaced templates first
    assert run.args == (analysis.Arg("svc", "web"),)
    with pytest.raises(AnalysisError, match="two metrics have the same name 'one'"):
        analysis.merge_templates([a, a])
    c = analysis.parse_template(template(metric("three"), args=[{"name": "svc", "value": "api"}]))
    with pytest.raises(AnalysisError, match="argument 'svc' specified multiple times"):
        analysis.merge_templates([b, c])


def test_parse_analysis_run_document() -> None:
    doc = seed_doc()
    doc["kind"] = "AnalysisRun"
    doc["spec"]["args"] = [{"name": "service-name", "value": "api"}]
    run = analysis.parse_run(doc)
    provider = run.metrics[0].provider
    assert isinstance(provider, analysis.PrometheusProvider) and 'service="api"' in provider.query


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.update(interval="soon"), r"spec\.metrics\[0\]\.interval: invalid duration 'soon'"),
        (lambda m: m.update(count=3, interval=None), "interval must be specified when count > 1"),
        (lambda m: m.update(count=2, failureLimit=3), "count must be >= failureLimit"),
        (lambda m: m.update(failureLimit="many"), r"spec\.metrics\[0\]\.failureLimit: expected an integer"),
        (lambda m: m.update(successCondition="result[0] >="), r"spec\.metrics\[0\]\.successCondition: unexpected end"),
        (lambda m: m.update(provider={}), r"spec\.metrics\[0\]\.provider: no provider specified"),
        (lambda m: m.update(provider={"datadog": {"query": "x"}}), "known to Argo but not supported by funade"),
        (lambda m: m["provider"].update(web={"url": "x"}), "multiple providers specified"),
    ],
)
def test_invalid_metrics_name_the_field(mutate: Any, message: str) -> None:
    doc = seed_doc()
    raw = copy.deepcopy(doc["spec"]["metrics"][0])
    mutate(raw)
    doc["spec"]["metrics"] = [raw]
    with pytest.raises(AnalysisError, match=message):
        analysis.new_run([analysis.parse_template(doc)], {"service-name": "web"})


def test_duplicate_metric_names_and_bad_kind() -> None:
    with pytest.raises(AnalysisError, match=r"spec\.metrics\[1\]: duplicate name 'm'"):
        analysis.parse_template(template(metric(), metric()))
    with pytest.raises(AnalysisError, match="kind: expected one of"):
        analysis.parse_template({"kind": "Rollout", "spec": {}})


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("0", 0), ("1.5m", 90)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert analysis.parse_duration(text, "x") == timedelta(seconds=seconds)


def test_job_provider_kept_as_data() -> None:
    spec = {"backoffLimit": 1, "template": {"spec": {"containers": [{"name": "t", "image": "busybox"}]}}}
    run = run_of({"name": "job", "provider": {"job": {"spec": spec}}})
    provider = run.metrics[0].provider
    assert isinstance(provider, analysis.JobProvider) and provider.spec == spec
