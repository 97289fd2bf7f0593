"""Probe bookkeeping as the kubelet does it, without doing any probing.

A probe's result only flips after ``successThreshold`` consecutive successes or
``failureThreshold`` consecutive failures. Readiness starts as failure, liveness as
success and startup as unknown; liveness and readiness only run once the startup probe
(if any) has succeeded. Timing: the first probe runs ``initialDelaySeconds`` after the
container started, then every ``periodSeconds``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = ["Kind", "Result", "Timing", "Tracker", "restart_delay"]


class Kind(enum.Enum):
    """Which probe a tracker follows."""

    STARTUP = "startup"
    READINESS = "readiness"
    LIVENESS = "liveness"


class Result(enum.Enum):
    """The settled result of a probe."""

    UNKNOWN = "unknown"
    SUCCESS = "success"
    FAILURE = "failure"


_INITIAL = {Kind.STARTUP: Result.UNKNOWN, Kind.READINESS: Result.FAILURE, Kind.LIVENESS: Result.SUCCESS}


@dataclass(frozen=True)
class Timing:
    """The timing fields of a Kubernetes probe, with Kubernetes' defaults."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Tracker:
    """The state of one probe of one container run.

    Attributes:
        kind: startup, readiness or liveness.
        timing: the probe's timing fields.
        started_at: when the container started (seconds, any monotonic-ish clock).
        result: the settled result.
        successes: consecutive successes so far.
        failures: consecutive failures so far.
        last_probe: when the last probe ran, or None.
        message: the last failure's message.
    """

    kind: Kind
    timing: Timing
    started_at: float
    result: Result = Result.UNKNOWN
    successes: int = 0
    failures: int = 0
    last_probe: float | None = None
    message: str = ""

    @classmethod
    def start(cls, kind: Kind, timing: Timing, started_at: float) -> Tracker:
        """A tracker for a container that started at ``started_at``."""
        return cls(kind=kind, timing=timing, started_at=started_at, result=_INITIAL[kind])

    def next_due(self) -> float:
        """When the next probe should run."""
        if self.last_probe is None:
            return self.started_at + self.timing.initial_delay
        return self.last_probe + self.timing.period

    def due(self, now: float) -> bool:
        """Whether a probe should run at ``now``."""
        return now >= self.next_due()

    def observe(self, ok: bool, now: float, message: str = "") -> Tracker:
        """Record one probe outcome and settle the result when a threshold is reached."""
        if ok:
            successes, failures = self.successes + 1, 0
        else:
            successes, failures = 0, self.failures + 1
        result = self.result
        # Liveness and startup need one success only (the API enforces successThreshold 1).
        needed = self.timing.success_threshold if self.kind is Kind.READINESS else 1
        if ok and successes >= needed:
            result = Result.SUCCESS
        elif not ok and failures >= self.timing.failure_threshold:
            result = Result.FAILURE
        return replace(
            self,
            successes=successes,
            failures=failures,
            result=result,
            last_probe=now,
            message="" if ok else message,
        )


def restart_delay(restarts: int, ran_for: float | None = None) -> float:
    """Seconds to wait before restarting a container that exited ``restarts`` times before.

    The kubelet restarts at once the first time, then backs off 10 s, doubling up to
    five minutes; a container that ran for ten minutes resets the back-off.
    """
    if ran_for is not None and ran_for >= 600:
        return 0.0
    if restarts <= 0:
        return 0.0
    return float(min(10 * 2 ** (restarts - 1), 300))
