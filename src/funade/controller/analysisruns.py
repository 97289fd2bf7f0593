"""The AnalysisRun controller: every stored AnalysisRun that has not completed is being measured.

A run is one asyncio task of :func:`funade.engine.analysis.run`; each measurement is
written to the run's ``status`` in Argo's layout (phase, message, metricResults), so the
rollout controller, ``funade get analysisrun`` and ``funade rollout get`` all read the
same thing. ``spec.terminate: true`` (written by the rollout controller when a step is
skipped or the rollout aborts) stops the task, which then records the phase Argo gives a
terminated run. A run that cannot be read completes at once as Error, with the reason.

A ``job`` metric runs a Job in the run's namespace (the local target's Job controller:
``backoffLimit``, default 6, with Kubernetes' back-off, and ``activeDeadlineSeconds``); the
measurement is Successful when the Job completes and Failed when it fails, as with Argo's
job provider.

After a server restart a run still in progress starts measuring again from the
beginning: measurements are cheap and the decisions only need the phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from funade.core import analysis
from funade.core.ports import Event, MetricAnswer, Metrics, MetricsError, ObjectKey, Store
from funade.engine import analysis as analysis_engine
from funade.engine import workloads

__all__ = ["KIND", "AnalysisRunController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "AnalysisRun"
JOB_TIMEOUT = 600.0
"""Seconds a job metric may run when its Job sets no activeDeadlineSeconds."""
_DONE = {p.value for p in analysis.Phase if p.completed}


def _now() -> datetime:
    return datetime.now(UTC)


class _RunMetrics:
    """The providers for one run: Prometheus and web as given, jobs as pods beside the run."""

    def __init__(
        self,
        base: Metrics,
        store: Store,
        run: Obj,
        poke: Callable[[], None],
    ) -> None:
        self.base = base
        self.store = store
        self.run = run
        self.poke = poke
        self.seq = 0

    async def prometheus(
        self, address: str, query: str, timeout: float | None, headers: Sequence[tuple[str, str]]
    ) -> MetricAnswer:
        return await self.base.prometheus(address, query, timeout, headers)

    async def web(
        self,
        url: str,
        method: str,
        headers: Sequence[tuple[str, str]],
        body: str | None,
        json_path: str | None,
        timeout: float,
    ) -> MetricAnswer:
        return await self.base.web(url, method, headers, body, json_path, timeout)

    async def job(self, metric: str, spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> MetricAnswer:
        """Argo's job provider: a Job beside the run; Successful when it completes, Failed when it fails.

        The Job is a real one (controller/jobs.py runs it: ``backoffLimit``, back-off,
        ``activeDeadlineSeconds``, default :data:`JOB_TIMEOUT`); it is deleted, with its
        pods, once it has answered.
        """
        meta = self.run["metadata"]
        namespace = meta.get("namespace", "default")
        self.seq += 1
        name = f"{meta['name']}-{metric}-{self.seq}".lower()[-63:].lstrip("-.")
        body = json.loads(json.dumps(dict(spec)))
        body.setdefault("activeDeadlineSeconds", int(JOB_TIMEOUT))
        template = body.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            template["spec"].setdefault("restartPolicy", "Never")
            labels = (template.setdefault("metadata", {}) or {}).setdefault("labels", {})
            labels["analysisrun"] = meta["name"][:63]
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(metadata.get("labels") or {})},
            "spec": body,
        }
        try:
            workloads.Workloads(self.store).apply([job], namespace)
        except workloads.WorkloadError as exc:
            raise MetricsError(f"metric {metric}: {exc}") from None
        self.poke()
        key = ObjectKey("Job", namespace, name)
        try:
            while True:
                stored = self.store.get(key) or {}
                for condition in (stored.get("status") or {}).get("conditions") or []:
                    if condition.get("status") != "True":
                        continue
                    if condition.get("type") == "Complete":
                        return MetricAnswer(True, detail=f"job {name} complete")
                    if condition.get("type") == "Failed":
                        reason = condition.get("reason", "")
                        backoff = (stored.get("spec") or {}).get("backoffLimit")
                        return MetricAnswer(False, detail=f"job {name} failed: {reason} (backoffLimit {backoff})")
                await asyncio.sleep(0.5)
        finally:
            self.store.delete(key)  # its pods go with it (the garbage collector)


class AnalysisRunController:
    """Runs stored AnalysisRuns to completion, one task each."""

    def __init__(
        self,
        store: Store,
        metrics: Callable[[], Metrics],
        poke: Callable[[], None],
    ) -> None:
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
            providers = _RunMetrics(self.metrics(), self.store, obj, self.poke)
            state = await analysis_engine.run(run, providers, _now, record, stop=stop)
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
