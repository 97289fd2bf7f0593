"""Probe bookkeeping must settle results and back off restarts as the kubelet does.

Facts: kubelet ``pkg/kubelet/prober/worker.go`` (initial results, consecutive-run
thresholds) and the Pod lifecycle documentation (restart back-off 10 s doubling to 300 s,
reset after ten minutes of running).
"""

from __future__ import annotations

import pytest

from funade.core import probes
from funade.core.probes import Kind, Result, Timing, Tracker

pytestmark = pytest.mark.unit


def _run(tracker: Tracker, outcomes: list[bool], start: float = 0.0) -> list[Result]:
    results = []
    for i, ok in enumerate(outcomes):
        tracker = tracker.observe(ok, now=start + 10 * i, message="" if ok else f"failure {i}")
        results.append(tracker.result)
    return results


@pytest.mark.parametrize(
    ("kind", "initial"),
    [
        (Kind.READINESS, Result.FAILURE),
        (Kind.LIVENESS, Result.SUCCESS),
        (Kind.STARTUP, Result.UNKNOWN),
    ],
)
def test_initial_result_per_kind(kind: Kind, initial: Result) -> None:
    tracker = Tracker.start(kind, Timing(), started_at=100.0)

    assert tracker.result is initial
    assert tracker.successes == 0
    assert tracker.failures == 0
    assert tracker.last_probe is None


def test_timing_defaults_are_kubernetes_defaults() -> None:
    timing = Timing()
    assert (timing.initial_delay, timing.period, timing.timeout) == (0.0, 10.0, 1.0)
    assert (timing.success_threshold, timing.failure_threshold) == (1, 3)


def test_readiness_with_success_threshold_3_needs_three_consecutive_successes() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(success_threshold=3), started_at=0.0)

    assert _run(tracker, [True, True, True]) == [Result.FAILURE, Result.FAILURE, Result.SUCCESS]


def test_readiness_success_run_is_reset_by_a_failure() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(success_threshold=3), started_at=0.0)

    results = _run(tracker, [True, True, False, True, True, True])

    assert results == [Result.FAILURE] * 5 + [Result.SUCCESS]


def test_readiness_with_default_thresholds_turns_ready_on_first_success() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(), started_at=0.0)

    assert _run(tracker, [True]) == [Result.SUCCESS]


def test_failure_threshold_counts_consecutive_failures() -> None:
    tracker = Tracker.start(Kind.LIVENESS, Timing(failure_threshold=3), started_at=0.0)

    assert _run(tracker, [False, False, False]) == [Result.SUCCESS, Result.SUCCESS, Result.FAILURE]


def test_a_success_resets_the_failure_count() -> None:
    tracker = Tracker.start(Kind.LIVENESS, Timing(failure_threshold=3), started_at=0.0)

    results = _run(tracker, [False, False, True, False, False, False])

    assert results == [Result.SUCCESS] * 5 + [Result.FAILURE]


def test_ready_container_turns_unready_only_after_failure_threshold() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(failure_threshold=2), started_at=0.0)

    results = _run(tracker, [True, False, False, True])

    assert results == [Result.SUCCESS, Result.SUCCESS, Result.FAILURE, Result.SUCCESS]


def test_liveness_and_startup_settle_on_one_success() -> None:
    # The API server only allows successThreshold 1 for liveness and startup probes.
    for kind in (Kind.LIVENESS, Kind.STARTUP):
        tracker = Tracker.start(kind, Timing(success_threshold=1), started_at=0.0)
        assert _run(tracker, [True]) == [Result.SUCCESS]


def test_startup_stays_unknown_until_a_threshold_is_reached() -> None:
    tracker = Tracker.start(Kind.STARTUP, Timing(failure_threshold=3), started_at=0.0)

    assert _run(tracker, [False, False, False]) == [Result.UNKNOWN, Result.UNKNOWN, Result.FAILURE]


def test_observe_counts_and_messages() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(failure_threshold=5), started_at=0.0)

    failed = tracker.observe(False, now=3.0, message="HTTP probe failed with statuscode: 500")
    assert (failed.successes, failed.failures) == (0, 1)
    assert failed.message == "HTTP probe failed with statuscode: 500"
    assert failed.last_probe == 3.0

    ok = failed.observe(True, now=13.0)
    assert (ok.successes, ok.failures) == (1, 0)
    assert ok.message == ""
    assert tracker.failures == 0  # trackers are immutable values


def test_first_probe_is_due_after_initial_delay() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(initial_delay=5.0, period=10.0), started_at=100.0)

    assert tracker.next_due() == 105.0
    assert not tracker.due(104.9)
    assert tracker.due(105.0)


def test_first_probe_without_initial_delay_is_due_at_start() -> None:
    tracker = Tracker.start(Kind.LIVENESS, Timing(), started_at=50.0)

    assert tracker.next_due() == 50.0
    assert tracker.due(50.0)


def test_later_probes_run_every_period_after_the_last() -> None:
    tracker = Tracker.start(Kind.READINESS, Timing(initial_delay=5.0, period=3.0), started_at=100.0)

    probed = tracker.observe(True, now=105.5)

    assert probed.next_due() == 108.5
    assert not probed.due(108.0)
    assert probed.due(108.5)
    assert probed.observe(False, now=108.6).next_due() == pytest.approx(111.6)


@pytest.mark.parametrize(
    ("restarts", "delay"),
    [
        (0, 0.0),
        (1, 10.0),
        (2, 20.0),
        (3, 40.0),
        (4, 80.0),
        (5, 160.0),
        (6, 300.0),  # 320 capped at five minutes
        (7, 300.0),
        (50, 300.0),
        (10_000, 300.0),
    ],
)
def test_restart_delay_backs_off_exponentially_up_to_five_minutes(restarts: int, delay: float) -> None:
    assert probes.restart_delay(restarts) == delay


def test_restart_delay_resets_after_ten_minutes_of_running() -> None:
    assert probes.restart_delay(5, ran_for=600.0) == 0.0
    assert probes.restart_delay(5, ran_for=3600.0) == 0.0
    assert probes.restart_delay(5, ran_for=599.0) == 160.0
    assert probes.restart_delay(5, ran_for=None) == 160.0
