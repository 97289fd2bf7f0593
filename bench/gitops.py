"""GitOps benchmark: a 1,000-app monorepo reconciled in-process, and commit-to-healthy latency via webhook.

Why it exists: Argo CD and Flux are judged on two numbers users feel. How long a
controller takes to bring a large monorepo in line (and what it re-does on every push:
argo-cd #4272 counts ~599 wasted refreshes per push for 600 apps), and how long a commit
takes to run (Argo CD polls every 120 s + up to 60 s jitter by default). funade claims
to render only what a push touches and to reach "Synced, Healthy" within seconds of a
webhook. This bench measures both, with funade's real code and real git:

1. A git monorepo made here: ``--apps`` apps (default 1,000) of 10 resources each (six
   ConfigMaps, three Secrets, one ClusterIP Service: nothing starts a container), one
   automated Application per app (prune, selfHeal, CreateNamespace), reconciled by
   ``AppController.reconcile()`` in this process over a ``SqliteStore`` file, a real
   ``GitSource`` and ``Renderer``; no HTTP server, no Docker. Measured: the first full
   reconcile (passes until every app is Synced), a steady-state pass (nothing changed),
   a pass where every app's poll falls due, and one push touching one app (announced to
   the real webhook handler, called in-process): time until that app is Synced at the
   new commit, renders performed, renders reused. Time is wall time, memory the
   process's peak RSS (``VmHWM``, reset before each phase).
2. A real funade server (own ``FUNADE_HOME``, free loopback port, ``--no-registry
   --no-prometheus``), one Application with a Deployment of ``funade-testapp``; a commit
   changes its image tag and a signed GitHub push webhook is POSTed to ``/api/webhook``.
   Measured: time from the commit to ``Synced`` at the new revision and to ``Healthy``,
   median of ``--runs``.

The peers are published figures (bench/README.md and ../shared/reference/gitops.md), not
runs: neither Argo CD nor Flux runs without Kubernetes. Everything listens on 127.0.0.1,
and everything the bench made (server, pods, temp dirs) is removed on exit, failure or
Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from harness import (
    FUNADE,
    BenchError,
    FunadeServer,
    Obj,
    guarded,
    machine,
    other_funade_containers,
    report,
    require_images,
    testapp_deployment,
)
from rich.console import Console
from rich.table import Table
from starlette.requests import Request

from funade.adapters import kustomize
from funade.adapters.gitsource import GitSource
from funade.adapters.store.sqlite import SqliteStore
from funade.api.apps import AppsApi
from funade.controller import apps as appcontroller
from funade.controller.apps import AppController
from funade.core.ports import ObjectKey
from funade.engine.gitops import APP_KIND, APP_NAMESPACE, Apps
from funade.engine.render import Renderer

IMAGES = ("funade-testapp:2.0.0", "funade-testapp:1.0.0")  # run i deploys IMAGES[i % 2]; the first sync is 1.0.0
FIRST_IMAGE = "funade-testapp:1.0.0"
STARTUP_DELAY = "1"  # the test app's start-up, as in bench/rollout.py
SECRET = "bench-webhook-secret"
CONFIGMAPS, SECRETS, SERVICES = 6, 3, 1  # 10 resources per app
# A pass over 1,000 apps can outlast the default 60 s poll interval; polls then fall due in
# the middle of a phase. The monorepo's apps poll hourly, so polls happen when the bench says.
MONOREPO_POLL = "3600"
POLL_ANNOTATION = appcontroller.POLL_ANNOTATION
MAX_PASSES = 10  # a first reconcile that needs more passes than this fails the bench
WAIT_TIMEOUT_S = 120.0
POLL_S = 0.05
SERVER_NAMESPACE = "gitops-bench"
SERVER_APP = "web"

# Published peer figures (../shared/reference/gitops.md, section 4 and the comparison table).
FLUX_1000_S = 4 * 60 + 15  # 1,000 Kustomizations, Flux v2.2 MTTP benchmark, 16-core runner
FLUX_1000_MIB = 112.0  # kustomize-controller memory in the same benchmark
ARGO_POLL_MEAN_S = 120 + 60 / 2  # timeout.reconciliation 120 s + uniform jitter up to 60 s
ARGO_LAG_800_S = (4 * 60, 5 * 60)  # argo-cd #18969: 800+ apps, 4-5 min lag after a commit
FLUX_INTERVAL_S = 60  # recommended GitRepository interval (no Receiver)
FOOTNOTES = {
    "flux": "Flux v2.2 MTTP benchmark (fluxcd.io blog 2023-12-12): 1,000 Kustomizations reconciled in 4 m 15 s "
    "on a 16-core runner, kustomize-controller at 112 MiB",
    "argo4272": "argo-cd #4272: a push to a monorepo of 600 apps refreshes all of them, ~599 needlessly; "
    "so N renders per push for N apps",
    "argo18969": "argo-cd #18969: with 800+ apps, a commit reaches its app 4-5 min later",
    "argopoll": "Argo CD timeout.reconciliation 120 s + timeout.reconciliation.jitter 60 s (docs/faq.md): "
    "150 s mean, 180 s worst without a webhook",
    "fluxpoll": "Flux: GitRepository interval, 1 m recommended (no Receiver): up to 60 s before the source sees "
    "the commit; Flux publishes no webhook-to-ready figure",
}

err = Console(stderr=True, highlight=False)


# -- small helpers ---------------------------------------------------------------------


def _proc_status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class PeakMemory:
    """The process's peak RSS over a phase: ``VmHWM`` after resetting it (Linux clear_refs 5).

    Where the reset is not allowed, ``ru_maxrss`` (the peak since the process started) is
    used and :attr:`exact` says so.
    """

    def __init__(self) -> None:
        self.exact = True

    def start(self) -> int:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.exact = False
        return _proc_status_kib("VmRSS") or 0

    def peak(self) -> int:
        hwm = _proc_status_kib("VmHWM") if self.exact else None
        return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mib(kib: int) -> float:
    return kib / 1024


# -- the monorepo ----------------------------------------------------------------------


class Repo:
    """A git repository made by the bench, committed with the git CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false", *args],
            cwd=self.root, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"git {' '.join(args[:3])} failed: {done.stderr.strip()[-300:]}")
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return f"file://{self.root}"


def app_name(i: int) -> str:
    return f"app-{i:04d}"


def app_path(i: int) -> str:
    return f"apps/{app_name(i)}"


def write_app(repo: Repo, i: int, generation: int = 0) -> None:
    """Ten plain manifests, one per file: six ConfigMaps, three Secrets, one ClusterIP Service."""
    d = repo.root / app_path(i)
    d.mkdir(parents=True, exist_ok=True)
    for j in range(CONFIGMAPS):
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"config-{j}", "labels": {"app": app_name(i)}},
            "data": {"LOG_LEVEL": "info", "FEATURE": f"{app_name(i)}-{j}", "GENERATION": str(generation)},
        }
        (d / f"configmap-{j}.yaml").write_text(yaml.safe_dump(cm, sort_keys=False))
    for j in range(SECRETS):
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"secret-{j}", "labels": {"app": app_name(i)}},
            "type": "Opaque",
            "stringData": {"password": hashlib.sha256(f"{i}/{j}".encode()).hexdigest()[:24]},
        }
        (d / f"secret-{j}.yaml").write_text(yaml.safe_dump(secret, sort_keys=False))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": app_name(i)}},
        "spec": {"selector": {"app": app_name(i)}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    (d / "service.yaml").write_text(yaml.safe_dump(service, sort_keys=False))


def application(name: str, repo_url: str, path: str, namespace: str, annotations: dict[str, str] | None = None) -> Obj:
    """An automated Application (prune, selfHeal) creating its namespace, as Argo CD users write it."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": APP_NAMESPACE, "annotations": annotations or {}},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }


def push_body(repo_url: str, before: str, after: str, files: list[str]) -> tuple[bytes, dict[str, str]]:
    """A GitHub push event for ``main`` and its headers, signed with :data:`SECRET`."""
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "repository": {"clone_url": repo_url, "html_url": repo_url, "default_branch": "main"},
            "commits": [{"id": after, "added": [], "removed": [], "modified": files}],
            "head_commit": {"id": after},
        }
    ).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    return body, headers


# -- part 1: the monorepo, in-process --------------------------------------------------


@contextlib.contextmanager
def threads_inline() -> Iterator[None]:
    """Run ``asyncio.to_thread`` work on the event loop's thread, so cProfile sees the compares."""

    async def inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    original = asyncio.to_thread
    asyncio.to_thread = inline
    try:
        yield
    finally:
        asyncio.to_thread = original


def profile_summary(profile: cProfile.Profile, limit: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


class Monorepo:
    """N apps in one repository, their Applications, and funade's controller in this process."""

    def __init__(self, workdir: Path, count: int) -> None:
        self.count = count
        self.workdir = workdir
        self.repo = Repo(workdir / "monorepo")
        self.names = [app_name(i) for i in range(count)]
        self.store: SqliteStore | None = None
        self.loop = asyncio.new_event_loop()

    def close(self) -> list[str]:
        problems = []
        try:
            if self.controller_ready:
                self.loop.run_until_complete(self.controller.stop())
        except Exception as exc:  # cleanup reports, never raises
            problems.append(f"stopping the in-process controller: {exc}")
        self.loop.close()
        if self.store is not None:
            self.store.close()
        return problems

    controller_ready = False

    def build(self) -> Obj:
        t0 = time.perf_counter()
        for i in range(self.count):
            write_app(self.repo, i)
        self.head = self.repo.commit(f"{self.count} apps")
        made = time.perf_counter() - t0
        self.store = SqliteStore(self.workdir / "funade.db")
        self.source = GitSource(self.workdir / "git")
        self.renderer = Renderer(self.source, kustomize=kustomize.render)
        self.apps = Apps(self.store, self.source, self.renderer)
        self.controller = AppController(self.store, self.apps, self.source)
        self.controller_ready = True
        self.api = AppsApi(self.store, self.apps, self.controller, asyncio.Event(), home=self.workdir)
        (self.workdir / "webhook.yaml").write_text(yaml.safe_dump({"github": SECRET}))
        self.store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NAMESPACE}}])
        self.store.put_many(
            [
                application(app_name(i), self.repo.url, app_path(i), app_name(i), {POLL_ANNOTATION: MONOREPO_POLL})
                for i in range(self.count)
            ]
        )
        return {"files": self.count * (CONFIGMAPS + SECRETS + SERVICES), "seconds": made, "commit": self.head}

    # The controller's private per-app state is the only place its sync tasks are kept.
    def _running(self) -> list[asyncio.Task[None]]:
        return [s.task for s in self.controller._state.values() if s.task is not None and not s.task.done()]

    async def _pass(self) -> None:
        """One reconcile pass, then wait for the syncs it started (the server would run passes meanwhile)."""
        await self.controller.reconcile()
        running = self._running()
        if running:
            await asyncio.gather(*running)

    def _counters(self) -> Obj:
        return {
            "renders": self.renderer.renders,
            "cache_hits": self.renderer.hits,
            "reused": self.apps.reused,
            "fetches": self.source.fetches,
        }

    @staticmethod
    def _delta(before: Obj, after: Obj) -> Obj:
        return {k: after[k] - before[k] for k in before}

    def _all_synced(self, revision: str) -> tuple[int, int]:
        """(apps Synced and Healthy at ``revision``, apps whose last sync succeeded) from the store."""
        synced = succeeded = 0
        for obj in self.store.list_objects(APP_KIND, APP_NAMESPACE) if self.store else []:
            status = obj.get("status") or {}
            sync, health = status.get("sync") or {}, status.get("health") or {}
            if (
                sync.get("status") == "Synced"
                and sync.get("revision") == revision
                and health.get("status") == "Healthy"
            ):
                synced += 1
            if (status.get("operationState") or {}).get("phase") == "Succeeded":
                succeeded += 1
        return synced, succeeded

    def phase(self, what: str, body: Callable[[], Obj], profile: bool = False) -> Obj:
        """Run ``body`` with wall time, peak RSS and counter deltas (and a profile when asked)."""
        memory = PeakMemory()
        before = self._counters()
        rss_before = memory.start()
        profiler = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if profiler is not None:
            with threads_inline():
                profiler.enable()
                try:
                    extra = body()
                finally:
                    profiler.disable()
        else:
            extra = body()
        seconds = time.perf_counter() - t0
        peak = memory.peak()
        result = {
            "seconds": seconds,
            "rss_before_mib": round(mib(rss_before), 1),
            "peak_rss_mib": round(mib(peak), 1),
            "peak_growth_mib": round(mib(max(0, peak - rss_before)), 1),
            "peak_exact": memory.exact,
            **self._delta(before, self._counters()),
            **extra,
        }
        if profiler is not None:
            result["profile"] = profile_summary(profiler)
        err.print(f"  {what}: {seconds:.2f} s, {json.dumps({k: v for k, v in result.items() if k != 'profile'})}")
        return result

    def first_reconcile(self) -> Obj:
        async def go() -> Obj:
            passes = 0
            while True:
                await self._pass()
                passes += 1
                synced, succeeded = self._all_synced(self.head)
                if synced == self.count:
                    return {"passes": passes, "synced": synced, "syncs_succeeded": succeeded}
                if passes >= MAX_PASSES:
                    raise BenchError(f"after {passes} passes only {synced} of {self.count} apps are Synced+Healthy")

        return self.loop.run_until_complete(go())

    def steady_pass(self) -> Obj:
        self.loop.run_until_complete(self._pass())
        synced, _ = self._all_synced(self.head)
        return {"synced": synced, "syncs_started": 0}

    def poll_pass(self) -> Obj:
        """Every app's poll falls due at once (they were created together): git is fetched, the new commit seen."""
        for name in self.names:
            self.controller.refresh(name)
        self.loop.run_until_complete(self._pass())
        synced, _ = self._all_synced(self.head)
        return {"synced": synced}

    def push_one(self) -> Obj:
        """Commit a change to one app, POST the webhook to the real handler, pass until it is Synced there."""
        target = self.count // 2
        write_app(self.repo, target, generation=1)
        before = self.head
        t0 = time.perf_counter()
        after = self.repo.commit(f"{app_name(target)}: generation 1")
        self.head = after
        body, headers = push_body(
            self.repo.url, before, after, [f"{app_path(target)}/configmap-{j}.yaml" for j in range(CONFIGMAPS)]
        )

        async def go() -> Obj:
            response = await self.api.webhook(_request(body, headers))
            refreshed = json.loads(bytes(response.body)).get("refreshed")
            if response.status_code != 200 or not isinstance(refreshed, list):
                raise BenchError(f"webhook answered {response.status_code}: {bytes(response.body)[:300]!r}")
            webhook_s = time.perf_counter() - t0
            passes = 0
            key = ObjectKey(APP_KIND, APP_NAMESPACE, app_name(target))
            while True:
                await self._pass()
                passes += 1
                status = (self.store.get(key) or {}).get("status") or {} if self.store else {}
                if (status.get("sync") or {}).get("status") == "Synced" and status["sync"].get("revision") == after:
                    break
                if passes >= MAX_PASSES:
                    raise BenchError(f"{app_name(target)} not Synced at {after[:7]} after {passes} passes")
            return {
                "app": app_name(target),
                "refreshed_by_webhook": len(refreshed),
                "webhook_s": webhook_s,
                "to_synced_s": time.perf_counter() - t0,
                "passes": passes,
            }

        return self.loop.run_until_complete(go())


def _request(body: bytes, headers: dict[str, str]) -> Request:
    """A Starlette request as the server would hand it to the webhook handler."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/webhook",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 0),
    }
    return Request(scope, receive)


def measure_monorepo(workdir: Path, count: int, profile: bool, holder: list[Monorepo]) -> Obj:
    mono = Monorepo(workdir, count)
    holder.append(mono)
    err.print(f"part 1: a monorepo of {count:,} apps × {CONFIGMAPS + SECRETS + SERVICES} resources, in-process")
    made = mono.build()
    err.print(f"  repository: {made['files']:,} files committed in {made['seconds']:.1f} s")
    first = mono.phase("first reconcile", mono.first_reconcile, profile=profile)
    steady = mono.phase("steady-state pass", mono.steady_pass)
    push = mono.phase("push touching one app", mono.push_one)
    rest = mono.phase("every app's poll falls due (new commit)", mono.poll_pass)
    after = mono.phase("steady-state pass after the push", mono.steady_pass)
    return {
        "apps": count,
        "resources_per_app": CONFIGMAPS + SECRETS + SERVICES,
        "repository": made,
        "first_reconcile": first,
        "steady_pass": steady,
        "push": push,
        "push_rest": rest,
        "steady_after_push": after,
        "parallel_syncs": appcontroller.PARALLEL_SYNCS,
        "poll_seconds": appcontroller.POLL_SECONDS,
    }


# -- part 2: a real server, a webhook, a Deployment -----------------------------------


class Server(FunadeServer):
    """A private funade server (own home, own port) with one Application on the local target."""

    def __init__(self, workdir: Path) -> None:
        super().__init__("funade-gitops-")
        self.workdir = workdir
        self.repo = Repo(workdir / "server-repo")

    def start(self, *args: str, timeout: float = 60.0) -> Obj:
        require_images(*IMAGES, FIRST_IMAGE)
        (self.home / "webhook.yaml").write_text(yaml.safe_dump({"github": SECRET}))
        return super().start("--no-registry", "--no-prometheus", *args, timeout=timeout)

    def write(self, image: str) -> None:
        d = self.repo.root / SERVER_APP
        d.mkdir(exist_ok=True)
        deployment = testapp_deployment(SERVER_APP, SERVER_NAMESPACE, 1, image, STARTUP_DELAY)
        del deployment["metadata"]["namespace"]  # the Application's destination places it
        (d / "deployment.yaml").write_text(yaml.safe_dump(deployment, sort_keys=False))

    def status(self) -> Obj:
        try:
            response = self.http.get(f"/v1/apps/{SERVER_APP}")
        except httpx.HTTPError:
            return {}
        return dict(response.json().get("status") or {}) if response.status_code == 200 else {}

    def image(self) -> str:
        response = self.http.get(f"/v1/objects/Deployment/{SERVER_NAMESPACE}/{SERVER_APP}")
        if response.status_code != 200:
            return ""
        return str(response.json()["spec"]["template"]["spec"]["containers"][0]["image"])

    def wait(self, what: str, check: Callable[[Obj], bool], t0: float) -> float:
        deadline = t0 + WAIT_TIMEOUT_S
        while True:
            now = time.perf_counter()
            if check(self.status()):
                return now - t0
            if now > deadline:
                raise BenchError(f"timed out after {WAIT_TIMEOUT_S:g}s waiting for {what}: {self.status()}")
            time.sleep(POLL_S)

    def create(self) -> tuple[str, float]:
        self.write(FIRST_IMAGE)
        head = self.repo.commit(f"web {FIRST_IMAGE}")
        path = self.workdir / "application.yaml"
        path.write_text(yaml.safe_dump(application(SERVER_APP, self.repo.url, SERVER_APP, SERVER_NAMESPACE)))
        t0 = time.perf_counter()
        self.cli("app", "create", "-f", str(path))
        took = self.wait(f"the first sync of {head[:7]}", _at(head, healthy=True), t0)
        return head, took

    def push(self, before: str, image: str) -> Obj:
        """Commit the new image, POST the signed webhook; time to Synced and to Healthy at the commit."""
        self.write(image)
        t0 = time.perf_counter()
        after = self.repo.commit(f"web {image}")
        body, headers = push_body(self.repo.url, before, after, [f"{SERVER_APP}/deployment.yaml"])
        response = self.http.post("/api/webhook", content=body, headers=headers)
        webhook_s = time.perf_counter() - t0
        if response.status_code != 200 or SERVER_APP not in (response.json().get("refreshed") or []):
            raise BenchError(f"the webhook answered {response.status_code}: {response.text[:300]}")
        synced = self.wait(f"Synced at {after[:7]}", _at(after, healthy=False), t0)
        healthy = self.wait(f"Synced and Healthy at {after[:7]}", _at(after, healthy=True), t0)
        running = self.image()
        if running != image:
            raise BenchError(f"Synced and Healthy at {after[:7]}, but the Deployment runs {running}, not {image}")
        return {"commit": after, "image": image, "webhook_s": webhook_s, "synced_s": synced, "healthy_s": healthy}


def _at(revision: str, *, healthy: bool) -> Callable[[Obj], bool]:
    def check(status: Obj) -> bool:
        sync, health = status.get("sync") or {}, status.get("health") or {}
        ok = sync.get("status") == "Synced" and sync.get("revision") == revision
        return ok and (not healthy or health.get("status") == "Healthy")

    return check


def measure_webhook(workdir: Path, runs: int, holder: list[Server]) -> Obj:
    server = Server(workdir)
    holder.append(server)
    err.print(f"part 2: commit → Synced, Healthy via a webhook, real server on {server.address}, {runs} runs")
    server.start()
    head, first = server.create()
    err.print(f"  app created and first synced+healthy in {first:.2f} s")
    samples = []
    for i in range(runs):
        sample = server.push(head, IMAGES[i % 2])
        head = sample["commit"]
        samples.append(sample)
        err.print(
            f"  run {i + 1}: → {sample['image']}: webhook answered {sample['webhook_s']:.3f} s, "
            f"Synced {sample['synced_s']:.2f} s, Healthy {sample['healthy_s']:.2f} s"
        )
    return {
        "runs": samples,
        "first_sync_s": first,
        "startup_delay_s": float(STARTUP_DELAY),
        "synced_s": statistics.median(s["synced_s"] for s in samples),
        "healthy_s": statistics.median(s["healthy_s"] for s in samples),
        "webhook_s": statistics.median(s["webhook_s"] for s in samples),
    }


def noise(ours: str) -> Obj:
    """Other funade servers' containers sharing this machine, and the load average (both make runs slower)."""
    others = 0
    with contextlib.suppress(BenchError, OSError):
        others = other_funade_containers(ours)
    return {"other_funade_containers": others, "load_average": [round(x, 2) for x in os.getloadavg()]}


# -- the table --------------------------------------------------------------------------


def figures(result: Obj) -> list[Obj]:
    rows: list[Obj] = []
    mono, hook = result.get("monorepo"), result.get("webhook")
    if mono:
        n = mono["apps"]
        first, steady = mono["first_reconcile"], mono["steady_pass"]
        push, rest, after = mono["push"], mono["push_rest"], mono["steady_after_push"]
        flux = FLUX_1000_S * n / 1000
        flux_label = f"Flux {_duration(flux)}" + ("" if n == 1000 else " (×N/1,000)")
        flux_memory = {"peer": FLUX_1000_MIB, "peer_label": "Flux 112 MiB", "note": "flux"}
        rows += [
            {"figure": f"first reconcile, {n:,} apps × {mono['resources_per_app']} (all Synced)", "unit": "s",
             "funade": first["seconds"], "peer": flux, "peer_label": flux_label,
             "note": "flux" if n == 1000 else "flux (scaled linearly)"},
            {"figure": "  passes / renders / git fetches", "unit": "",
             "funade": f"{first['passes']} / {first['renders']:,} / {first['fetches']:,}", "peer": None},
            {"figure": "  peak RSS of the process", "unit": "MiB", "funade": first["peak_rss_mib"],
             **(flux_memory if n == 1000 else {"peer": None})},
            {"figure": "steady-state pass (nothing changed)", "unit": "s", "funade": steady["seconds"], "peer": None},
            {"figure": "  renders (cache hits) / git fetches", "unit": "",
             "funade": f"{steady['renders']:,} ({steady['cache_hits']:,}) / {steady['fetches']:,}", "peer": None},
            {"figure": "push touching 1 app → it is Synced (webhook)", "unit": "s", "funade": push["to_synced_s"],
             "peer": sum(ARGO_LAG_800_S) / 2, "peer_label": "Argo CD 4–5 min (800+ apps)", "note": "argo18969"},
            {"figure": "  passes over all apps / apps refreshed", "unit": "",
             "funade": f"{push['passes']} / {push['refreshed_by_webhook']:,}", "peer": None},
            {"figure": "  renders until every app is at the new commit", "unit": "",
             "funade": push["renders"] + rest["renders"], "peer": n, "peer_label": f"Argo CD {n:,}",
             "note": "argo4272"},
            {"figure": "    webhook passes / all polls due; reused", "unit": "",
             "funade": f"{push['renders']:,} / {rest['renders']:,}; {push['reused'] + rest['reused']:,}",
             "peer": None},
            {"figure": "  pass with all polls due: time / git fetches", "unit": "",
             "funade": f"{rest['seconds']:.2f} s / {rest['fetches']:,}", "peer": None},
            {"figure": "steady-state pass after the push", "unit": "s", "funade": after["seconds"], "peer": None},
            {"figure": "  renders (cache hits)", "unit": "",
             "funade": f"{after['renders']:,} ({after['cache_hits']:,})", "peer": None},
        ]  # fmt: skip
    if hook:
        rows += [
            {"figure": f"commit → Synced via webhook (median of {len(hook['runs'])})", "unit": "s",
             "funade": hook["synced_s"], "peer": ARGO_POLL_MEAN_S, "peer_label": "Argo CD 150 s (polling)",
             "note": "argopoll"},
            {"figure": "commit → Synced + Healthy (rolling update, 1 pod)", "unit": "s",
             "funade": hook["healthy_s"], "peer": ARGO_POLL_MEAN_S, "peer_label": "Argo CD 150 s + rollout",
             "note": "argopoll"},
            {"figure": "  peer without webhook: Flux", "unit": "s", "funade": None, "peer": None,
             "peer_label": "Flux ≤ 60 s + rollout", "note": "fluxpoll"},
        ]  # fmt: skip
    return rows


def _duration(seconds: float) -> str:
    if seconds >= 60:
        m, s = divmod(round(seconds), 60)
        return f"{m} m {s:02d} s"
    return f"{seconds:.0f} s"


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return _duration(value) if value >= 60 else f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,}"


def table(result: Obj) -> Table:
    notes = list(dict.fromkeys(str(f["note"]).split(" ")[0] for f in figures(result) if f.get("note")))
    marks = {key: "¹²³⁴⁵⁶⁷⁸⁹"[i] for i, key in enumerate(notes)}
    caption = [f"{marks[k]} {FOOTNOTES[k]}" for k in notes]
    caption.append("ratio = funade / peer; peers are published figures, not runs (no Kubernetes here)")
    t = Table(title=f"funade GitOps benchmark ({result['machine']['cpus']} CPUs, Python {result['machine']['python']})",
              caption="\n".join(caption), caption_justify="left")  # fmt: skip
    t.add_column("figure")
    t.add_column("funade", justify="right")
    t.add_column("peer figure", justify="right")
    t.add_column("ratio", justify="right")
    for fig in figures(result):
        f, p = fig["funade"], fig.get("peer")
        ratio = f"{f / p:.3g}×" if isinstance(f, int | float) and isinstance(p, int | float) and p else "—"
        label = fig.get("peer_label", "—")
        if fig.get("note"):
            label += marks[str(fig["note"]).split(" ")[0]]
        t.add_row(fig["figure"], _fmt(f, fig["unit"]), label, ratio)
    return t


def notes(result: Obj) -> list[str]:
    lines = []
    mono, hook = result.get("monorepo"), result.get("webhook")
    if mono:
        first = mono["first_reconcile"]
        lines.append(
            f"monorepo: {mono['repository']['files']:,} files committed in {mono['repository']['seconds']:.1f} s; "
            f"store = SqliteStore file; {mono['parallel_syncs']} syncs at a time (PARALLEL_SYNCS); the server runs a "
            f"pass every 1 s; apps poll git every {mono['poll_seconds']:.0f} s by default, the monorepo's apps every "
            f"{MONOREPO_POLL} s (funade.io/poll-interval) so polls fall due only when the bench says"
        )
        lines.append(
            f"first reconcile: RSS {first['rss_before_mib']:.0f} → peak {first['peak_rss_mib']:.0f} MiB "
            f"(+{first['peak_growth_mib']:.0f}); the Flux figure is on 16 cores, this machine has "
            f"{result['machine']['cpus']}"
            + ("" if first["peak_exact"] else "; peak = ru_maxrss since start (VmHWM could not be reset)")
        )
        push = mono["push"]
        lines.append(
            f"push: {push['app']} changed; the webhook handler (in-process) answered in "
            f"{push['webhook_s'] * 1000:.0f} ms and refreshed {push['refreshed_by_webhook']} app(s); Synced after "
            f"{push['passes']} pass(es) over all apps; when every poll then fell due, "
            f"{mono['push_rest']['reused']:,} apps reused their render (the push did not touch them)"
        )
    if hook:
        runs = ", ".join(f"{r['healthy_s']:.2f}" for r in hook["runs"])
        lines.append(
            f"webhook: Healthy after {runs} s; the test app starts in {hook['startup_delay_s']:g} s and its "
            f"readiness probe runs every 1 s; first sync of a new app {hook['first_sync_s']:.2f} s; the webhook "
            f"answered in {hook['webhook_s'] * 1000:.0f} ms (median)"
        )
    load = ", ".join(f"{x:.2f}" for x in result["noise"]["load_average"])
    lines.append(
        f"noise: {result['noise']['other_funade_containers']} containers of other funade servers running; "
        f"load average {load}"
    )
    lines.append(f"total {result['total_seconds']:.0f} s")
    return lines


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000, help="apps in the monorepo (default 1,000)")
    parser.add_argument("--runs", type=int, default=3, help="webhook runs; the median is reported (default 3)")
    parser.add_argument("--only", choices=("monorepo", "webhook"), help="run one part only")
    parser.add_argument("--profile", action="store_true", help="cProfile the first reconcile (threads inlined)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--json", action="store_true", help="same as -o json")
    args = parser.parse_args(argv)
    if args.apps < 1 or args.runs < 1:
        parser.error("--apps and --runs must be at least 1")
    if args.only != "monorepo" and not FUNADE.exists():
        err.print(f"[red]{FUNADE} not found: run `make setup` first[/red]")
        return 2
    as_json = args.json or args.output == "json"
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="funade-bench-gitops-"))
    monorepos: list[Monorepo] = []
    servers: list[Server] = []

    def steps() -> Obj:
        result: Obj = {"machine": machine()}
        if args.only != "webhook":
            result["monorepo"] = measure_monorepo(workdir, args.apps, args.profile, monorepos)
        if args.only != "monorepo":
            result["webhook"] = measure_webhook(workdir, args.runs, servers)
        result["noise"] = noise(servers[0].instance if servers else "")
        result["total_seconds"] = time.monotonic() - started
        return result

    def cleanup() -> list[str]:
        problems = []
        for server in servers:
            problems += server.cleanup()
        for mono in monorepos:
            problems += mono.close()
        shutil.rmtree(workdir, ignore_errors=True)
        return problems

    outcome, code = guarded(steps, cleanup, (BenchError,), err)
    if outcome is None:
        return code
    profile = (outcome.get("monorepo") or {}).get("first_reconcile", {}).pop("profile", None)
    if profile:
        sys.stderr.write(profile)
    report(outcome, [table(outcome), *notes(outcome)], as_json=as_json, width=132, ensure_ascii=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
