"""The AnalysisRun controller: every stored AnalysisRun that has not completed is being measured.

A run is one asyncio task of :func:`funade.engine.analysis.run`; each measurement is
written to the run's ``status`` in Argo's layout (phase, message, metricResults), so the
rollout controller, ``funade get analysisrun`` and ``funade rollout get`` all read the
same thing. ``spec.terminate: true`` (written by the rollout controller when a step is
skipped or the rollout aborts) stops the task, which then records the phase Argo gives a
terminated run. A run that cannot be read completes at once as Error, with the reason.

After a server restart a run still in progress starts measuring again from the
beginning: measurements are cheap and the decisions only need the phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from funade.core import analysis
from funade.core.ports import Event, Metrics, ObjectKey, Store
from funade.engine import analysis as analysis_engine

__all__ = ["KIND", "AnalysisRunController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "AnalysisRun"
_DONE = {p.value for p in analysis.Phase if p.completed}


def _now() -> datetime:
    return datetime.now(UTC)


class AnalysisRunController:
    """Runs stored AnalysisRuns to completion, one task each."""

    def __init__(self, store: Store, metrics: Callable[[], Metrics], poke: Callable[[], None]) -> None:
        self.store = store
        self.metrics = metrics
        self.poke = poke
        self._tasks: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    @staticmethod
    def _id(obj: Obj) -> str:
        meta = obj["metadata"]
        return f"{meta.get('namespace', 'default')}/{meta['name']}/{meta.get('uid', '')}"

    async def reconcile(self) -> None:
        """Start tasks for runs not yet measured; pass terminate requests on; forget deleted runs."""
        seen = set()
        for obj in self.store.list_objects(KIND):
            run_id = self._id(obj)
            seen.add(run_id)
            phase = (obj.get("status") or {}).get("phase")
            running = self._tasks.get(run_id)
            if running is not None:
                if (obj.get("spec") or {}).get("terminate"):
                    running[1].set()
                continue
            if phase in _DONE:
                continue
            stop = asyncio.Event()
            if (obj.get("spec") or {}).get("terminate"):
                stop.set()
            task = asyncio.create_task(self._run(obj, stop), name=f"analysisrun {run_id}")
            self._tasks[run_id] = (task, stop)
        for run_id in list(self._tasks):
            task, stop = self._tasks[run_id]
            if run_id not in seen:
                stop.set()
            if task.done():
                del self._tasks[run_id]

    async def stop(self) -> None:
        for task, _ in self._tasks.values():
            task.cancel()
        for task, _ in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _write(self, obj: Obj, status: Obj) -> None:
        key = ObjectKey.of(obj)
        current = self.store.get(key)
        if current is None or current["metadata"].get("uid") != obj["metadata"].get("uid"):
            return  # deleted (or replaced) meanwhile
        self.store.put_status(key, status)
        self.poke()

    async def _run(self, obj: Obj, stop: asyncio.Event) -> None:
        meta = obj["metadata"]
        where = f"analysisrun/{meta.get('namespace', 'default')}/{meta['name']}"
        try:
            run = analysis.parse_run(obj)
        except analysis.AnalysisError as exc:
            self._write(obj, {"phase": analysis.Phase.ERROR.value, "message": str(exc)})
            self.store.add_event(
                Event(time.time(), meta.get("namespace", ""), KIND, meta["name"], "Warning", "InvalidSpec", str(exc))
            )
            return

        def record(metric: str, measurement: analysis.Measurement, state: analysis.AnalysisState) -> None:
            self._write(obj, analysis.status_of(state))

        try:
            state = await analysis_engine.run(run, self.metrics(), _now, record, stop=stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider bug must not leave the run Running forever
            log.exception("%s: measuring failed", where)
            self._write(obj, {"phase": analysis.Phase.ERROR.value, "message": f"measuring failed: {exc}"})
            return
        self._write(obj, analysis.status_of(state))
        self.store.add_event(
            Event(
                time.time(), meta.get("namespace", ""), KIND, meta["name"],
                "Normal" if state.phase is analysis.Phase.SUCCESSFUL else "Warning",
                f"AnalysisRun{state.phase.value}", state.message or state.phase.value,
            )
        )  # fmt: skip
