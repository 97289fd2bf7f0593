"""The controller manager: wires the local target's controllers and runs their loop.

One loop, woken by any change (an apply, a pod status change, a container dying) and
at least every second, runs every controller's reconcile pass. When Docker is not
reachable it keeps retrying and says so in ``status()``, instead of dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from funade.adapters.docker import Docker, DockerError, DockerUnavailable, NotFound
from funade.adapters.haproxy import HAProxy
from funade.adapters.local import ports
from funade.adapters.local.runtime import LocalRuntime
from funade.adapters.local.serviceproxy import ServiceProxies
from funade.adapters.metrics import LocalMetrics
from funade.adapters.prometheus.server import PrometheusServer, Target
from funade.controller.analysisruns import AnalysisRunController
from funade.controller.autoscalers import AutoscalerController, Sample
from funade.controller.cronjobs import CronJobController
from funade.controller.jobs import JobController
from funade.controller.kubelet import Kubelet, PodWorker
from funade.controller.rollouts import RolloutController
from funade.controller.services import ServiceController
from funade.controller.workloads import WorkloadController
from funade.core import services, traffic
from funade.core.ports import Metrics, Store

__all__ = ["Manager"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

#: A pass runs at least this often; changes (applies, pod status, container events) wake it at once.
RESYNC_SECONDS = 2.0


def _scrape_into(home: Path) -> Callable[[list[services.ScrapeTarget]], object]:
    """Write scrape targets where this home's Prometheus reads them (file_sd; it notices by itself)."""
    prometheus = PrometheusServer.of_home(home)

    def scrape(targets: list[services.ScrapeTarget]) -> object:
        return prometheus.set_targets(Target(t.address, dict(t.labels), t.path) for t in targets)

    return scrape


def _metrics(home: Path) -> Metrics:
    """Analysis providers; in-cluster Prometheus addresses go to this home's Prometheus when it runs."""
    prometheus = PrometheusServer.of_home(home)
    return LocalMetrics(prometheus.url if prometheus.status().running else None)


class Manager:
    """Runs the local target's controllers in the server's event loop."""

    def __init__(self, store: Store, docker: Docker, home: Path, proxy: traffic.Proxy | None = None) -> None:
        self.store = store
        self.docker = docker
        self.runtime = LocalRuntime(docker, home)
        self.kubelet = Kubelet(self.runtime, store, self.poke, drain=self._drain)
        self.workloads = WorkloadController(store, self.kubelet)
        self.jobs = JobController(store, self.kubelet)
        self.cron_jobs = CronJobController(store)
        self.rollouts = RolloutController(store, self.workloads.view, self.poke)
        self.analysis_runs = AnalysisRunController(store, lambda: _metrics(home), self.poke)
        self.autoscalers = AutoscalerController(store, self.pod_views, self._container_sample, self.poke)
        self.services = ServiceController(
            store,
            proxy or HAProxy(home),
            lambda: self.pod_views(None),
            scrape=_scrape_into(home),
            cluster=ServiceProxies(docker, home, self.runtime.network),
            port_free=ports.loopback_port_free,
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.docker_error: str | None = "not connected yet"
        self.started_at = time.time()
        self.passes = 0
        # Set once the first pass has run (or Docker is known to be down): until then the
        # stored statuses may be stale, and the server does not say it is ready.
        self.synced = asyncio.Event()

    def poke(self) -> None:
        """Ask for a reconcile pass as soon as possible."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="controller-manager")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.analysis_runs.stop()
        await self.autoscalers.stop()
        await self.kubelet.stop()
        await self.runtime.close()

    async def _connect(self) -> bool:
        try:
            await self.kubelet.start()
        except DockerUnavailable as exc:
            self.docker_error = str(exc)
            return False
        except DockerError as exc:
            self.docker_error = f"Docker Engine error: {exc}"
            return False
        self.docker_error = None
        return True

    async def _loop(self) -> None:
        connected = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=RESYNC_SECONDS if connected else 2.0)
            self._wake.clear()
            if not connected:
                connected = await self._connect()
                if not connected:
                    self.synced.set()
                    continue
            try:
                await self.docker.ping()  # so `funade status` tells when the Engine goes away
                await self.autoscalers.reconcile()
                await self.rollouts.reconcile()
                await self.workloads.reconcile()
                await self.cron_jobs.reconcile()
                await self.jobs.reconcile()
                await self.analysis_runs.reconcile()
                await self.services.reconcile()
                self.passes += 1
                if not self.synced.is_set():
                    # Statuses were written by the previous server: one more pass makes
                    # them describe the pods that run now.
                    await self.workloads.reconcile()
                    self.synced.set()
                self.docker_error = None
            except DockerUnavailable as exc:
                self.docker_error = str(exc)
            except Exception:
                log.exception("reconcile pass failed")

    async def _drain(self, worker: PodWorker, deadline: float) -> None:
        await self.services.drain(worker.namespace, worker.name, deadline)

    async def _container_sample(self, container_id: str) -> Sample | None:
        """One stats sample of a container for the autoscalers (None when it is gone or not running)."""
        try:
            stats = await self.docker.stats(container_id)
        except NotFound:
            return None
        if stats.read_at is None:
            return None
        return Sample(stats.read_at.timestamp(), stats.cpu_total_ns, stats.memory_working_set)

    # -- reads for the API ------------------------------------------------------------

    def pod_workers(self, namespace: str | None = None) -> list[PodWorker]:
        return [w for w in self.kubelet.pods() if namespace is None or w.namespace == namespace]

    def pod_views(self, namespace: str | None = None) -> list[Obj]:
        views = [w.view() for w in self.pod_workers(namespace)]
        return sorted(views, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))

    def find_pod(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.kubelet.pods():
            if worker.namespace == namespace and worker.name == name:
                return worker
        return None
