"""The kubelet of the local target: one worker per pod keeps its containers as specified.

Each worker re-reads the pod's containers from Docker on every sync, starts what is
missing (init containers first, in order), restarts what exited with the kubelet's
back-off, runs startup / readiness / liveness probes and publishes the pod's status.
After a crash of the server the workers are rebuilt from the sandboxes Docker still has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from funade.adapters.docker import ContainerInfo, DockerError, DockerUnavailable, ImagePullError, Mount, NotFound
from funade.adapters.local.runtime import ContainerRun, LocalRuntime, Sandbox
from funade.core import pods as podrules
from funade.core import probes, revisions
from funade.core.ports import Event, ObjectKey, Store

__all__ = ["Kubelet", "PodWorker"]

log = logging.getLogger(__name__)

#: Seconds between full re-reads of a pod's containers when nothing happens; Docker's
#: events wake a worker at once when one of its containers starts or dies.
FULL_SYNC_SECONDS = 5.0
#: A container that cannot be configured (a missing Secret, say) is tried again this
#: often, and at once when a ConfigMap or Secret is applied.
CONFIG_RETRY_SECONDS = 10.0
#: Failed starts of a stopped sandbox before it is replaced by a new one.
SANDBOX_START_TRIES = 3
Obj = dict[str, Any]


def _dt(value: datetime | None) -> str | None:
    return None if value is None else revisions.rfc3339(value.timestamp())


def _timing(probe: Obj) -> probes.Timing:
    return probes.Timing(
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        period=float(probe.get("periodSeconds", 10)),
        timeout=float(probe.get("timeoutSeconds", 1)),
        success_threshold=int(probe.get("successThreshold", 1)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


class PodWorker:
    """Keeps one pod's containers running as its spec says."""

    def __init__(self, kubelet: Kubelet, sandbox: Sandbox) -> None:
        self.kubelet = kubelet
        self.rt = kubelet.runtime
        self.sandbox = sandbox
        self.pod: Obj = sandbox.pod
        self.status: Obj = {"phase": "Pending", "conditions": [], "hostIP": "127.0.0.1"}
        self.terminating: float | None = None
        self.grace: float | None = None
        self.gone = asyncio.Event()
        self.first_sync = asyncio.Event()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Per container name: probe trackers for the current run, waiting reasons, back-off.
        self._trackers: dict[str, dict[probes.Kind, probes.Tracker]] = {}
        self._tracked_run: dict[str, str] = {}
        self._waiting: dict[str, tuple[str, str]] = {}
        # Per container: failed start attempts (pull, config, create) and when to try again.
        self._start_failures: dict[str, tuple[int, float]] = {}
        self.failed_starts = 0
        self._killed: set[str] = set()
        self._stopping: set[str] = set()
        self._logged_backoff: dict[str, float] = {}
        self._runs_cache: list[ContainerRun] | None = None
        self._sandbox_failures = 0
        self._sandbox_started: datetime | None = None
        self._last_full = 0.0
        self._wake_at = 0.0

    # -- identity -----------------------------------------------------------------

    @property
    def uid(self) -> str:
        return self.sandbox.uid

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    def view(self) -> Obj:
        """The pod as the API shows it: object plus live status."""
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            **{k: v for k, v in self.pod.items() if k not in ("apiVersion", "kind")},
        }
        obj["metadata"] = dict(obj["metadata"])
        if self.terminating is not None:
            obj["metadata"]["deletionTimestamp"] = revisions.rfc3339(self.terminating)
        obj["status"] = self.status
        return obj

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"pod {self.namespace}/{self.name}")

    def kick(self) -> None:
        self._kick.set()

    def terminate(self, grace: float | None) -> None:
        if self.terminating is None:
            self.terminating = self.kubelet.clock()
            self.grace = grace
            self.kick()

    async def stop(self) -> None:
        """Stop watching (server shutdown): containers keep running."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        delay = 0.0
        while True:
            kicked = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=delay)
                kicked = True
            self._kick.clear()
            try:
                if self.terminating is not None:
                    await self._teardown()
                    return
                full = kicked or self._runs_cache is None or self.kubelet.clock() - self._last_full >= FULL_SYNC_SECONDS
                delay = await self.sync(full)
                self.first_sync.set()
            except asyncio.CancelledError:
                raise
            except DockerUnavailable:
                self._runs_cache = None  # what we read may be gone when the Engine is back
                delay = 2.0
            except Exception:  # a bug or an unexpected Engine answer must not kill the worker
                log.exception("pod %s/%s: sync failed", self.namespace, self.name)
                self._runs_cache = None
                delay = 2.0

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.kubelet.event(self.namespace, "Pod", self.name, type_, reason, message)

    # -- sync ---------------------------------------------------------------------

    async def sync(self, full: bool = True) -> float:
        """One pass over the pod; returns seconds until the next pass.

        A full pass re-reads the sandbox and every container from Docker. Between full
        passes (every few seconds, or at once when Docker reports a container event),
        the worker only runs the probes that are due, on what it read last.
        """
        now = self.kubelet.clock()
        self._wake_at = now + FULL_SYNC_SECONDS
        if full or self._runs_cache is None:
            if not await self._check_sandbox():
                self._runs_cache = None  # the next pass must re-read everything
                return 0.0
            self._runs_cache = await self._runs()
            self._last_full = now
        runs = self._runs_cache
        return await self._sync_runs(runs, now)

    async def _check_sandbox(self) -> bool:
        """Make sure the pause container runs; False when the pass must start over."""
        if not self.sandbox.running:
            fresh = await self.rt.sandbox(self.sandbox.id)
            if fresh is None:
                # The sandbox vanished under us (docker rm): make a new one for the same pod.
                self._event("Normal", "SandboxChanged", "Pod sandbox is gone, it will be re-created.")
                self.sandbox = await self.rt.create_sandbox(self.pod)
            elif not fresh.running:
                try:
                    self.sandbox = await self.rt.start_sandbox(fresh)
                    self._sandbox_failures = 0
                except DockerError as exc:
                    # Right after an Engine restart starts fail for a while; some stopped
                    # containers can never start again ("task … already exists"). After a few
                    # tries the sandbox is replaced, as the kubelet does.
                    self._sandbox_failures += 1
                    if self._sandbox_failures < SANDBOX_START_TRIES:
                        raise
                    self._sandbox_failures = 0
                    self._event(
                        "Normal",
                        "SandboxChanged",
                        f"Pod sandbox could not be restarted ({exc}), it will be re-created.",
                    )
                    await self.rt.remove(fresh.id)
                    self.sandbox = await self.rt.create_sandbox(self.pod)
            else:
                self.sandbox = fresh
            await self._stop_stale_runs()
            return True
        fresh = await self.rt.sandbox(self.sandbox.id)
        if fresh is None or not fresh.running:
            self.sandbox = fresh or Sandbox(self.sandbox.id, self.pod, False, "", self.sandbox.created)
            self._publish_unready()
            return False
        self.sandbox = fresh
        return True

    async def _stop_stale_runs(self) -> None:
        """Stop containers that outlived the sandbox's previous life; the pass restarts them.

        A restarted or re-created pause container has a new network namespace. A container
        that kept running stays in the old one, cut off from the pod's IP, so, as the
        kubelet does when a pod's sandbox changes, it is stopped and started afresh.
        """
        info = await self.rt.inspect(self.sandbox.id)
        since = info.state.started_at if info is not None else None
        self._sandbox_started = since
        stale = [
            run
            for run in await self.rt.runs(self.uid)
            if run.info.state.running
            and (since is None or run.info.state.started_at is None or run.info.state.started_at < since)
        ]
        if not stale:
            return
        self._event("Normal", "SandboxChanged", "Pod sandbox changed, its running containers will be restarted.")
        grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        await asyncio.gather(*(self.rt.stop(run.id, grace) for run in stale))

    def _publish_unready(self) -> None:
        """The sandbox is down: no container of the pod can be ready until it is back."""
        statuses = [dict(s, ready=False) for s in self.status.get("containerStatuses", [])]
        init_done = all(
            c.get("ready") or "terminated" in c.get("state", {}) for c in self.status.get("initContainerStatuses", [])
        )
        self._publish(
            self.pod["spec"].get("restartPolicy", "Always"),
            init_done,
            self.status.get("initContainerStatuses", []),
            statuses,
        )

    async def _sync_runs(self, runs: list[ContainerRun], now: float) -> float:
        spec = self.pod["spec"]
        policy = spec.get("restartPolicy", "Always")
        latest: dict[str, ContainerRun] = {}
        previous: dict[str, ContainerRun] = {}
        for each in runs:
            if each.name in latest:
                previous[each.name] = latest[each.name]
            latest[each.name] = each

        next_wake = now + FULL_SYNC_SECONDS
        init_statuses: list[Obj] = []
        init_done = True
        run: ContainerRun | None
        for container in spec.get("initContainers") or []:
            name = container["name"]
            run = latest.get(name)
            if (
                run is not None
                and not run.info.state.running
                and run.info.state.exit_code == 0
                and run.info.state.finished_at is not None
            ):
                init_statuses.append(self._container_status(container, run, previous.get(name), True))
                continue
            init_done = False
            if run is None or not run.info.state.running:
                if run is not None and policy == "Never":
                    init_statuses.append(self._container_status(container, run, previous.get(name), False))
                    break
                started = await self._ensure_run(container, "init", run, now)
                if started is not None:
                    # The run that just ended is the new run's lastState, in this pass already.
                    if run is not None:
                        previous[name] = run
                    run = started
            init_statuses.append(
                self._container_status(container, run, previous.get(name), False)
                if run
                else self._waiting_status(container)
            )
            break

        statuses: list[Obj] = []
        for container in spec["containers"]:
            name = container["name"]
            run = latest.get(name)
            if not init_done:
                statuses.append(self._waiting_status(container, ("PodInitializing", "")))
                continue
            if run is None:
                run = await self._ensure_run(container, "app", None, now)
            elif not run.info.state.running and name not in self._stopping:
                exit_code = run.info.state.exit_code
                if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
                    started = await self._ensure_run(container, "app", run, now)
                    if started is not None:
                        previous[name], run = run, started
            if run is not None and run.info.state.running:
                wake = await self._probe(container, run, now)
                next_wake = min(next_wake, wake)
            statuses.append(
                self._container_status(container, run, previous.get(name), self._ready(name, run))
                if run is not None
                else self._waiting_status(container)
            )

        self._publish(policy, init_done, init_statuses, statuses)
        return max(0.05, min(next_wake, self._wake_at) - self.kubelet.clock())

    async def _runs(self) -> list[ContainerRun]:
        """The pod's container runs, without leftovers of a crash between create and start.

        Such a container never ran: counted as a run that exited, it would stay beside the
        next run forever and show as a restart that never happened. It is removed instead
        (nothing else creates runs of this pod while its worker syncs) and started afresh.
        """
        runs = []
        for run in await self.rt.runs(self.uid):
            if run.info.state.status == "created" and run.info.state.started_at is None:
                log.info("pod %s/%s: removing container %s that never started", self.namespace, self.name, run.id)
                await self.rt.remove(run.id)
            else:
                runs.append(run)
        return runs

    def _ready(self, name: str, run: ContainerRun) -> bool:
        if not run.info.state.running or self._tracked_run.get(name) != run.id:
            return False
        trackers = self._trackers.get(name, {})
        startup = trackers.get(probes.Kind.STARTUP)
        if startup is not None and startup.result is not probes.Result.SUCCESS:
            return False
        readiness = trackers.get(probes.Kind.READINESS)
        return readiness is None or readiness.result is probes.Result.SUCCESS

    # -- starting containers ----------------------------------------------------------

    async def _ensure_run(
        self, container: Obj, kind: str, last: ContainerRun | None, now: float
    ) -> ContainerRun | None:
        """Start a new run of ``container`` unless it is backing off or cannot start yet."""
        name = container["name"]
        restarts = 0
        if last is not None:
            restarts = last.restarts + 1
            finished = last.info.state.finished_at
            started = last.info.state.started_at
            ran_for = (finished - started).total_seconds() if finished and started else None
            delay = probes.restart_delay(last.restarts, ran_for)
            if finished and self._sandbox_started and finished <= self._sandbox_started:
                # It stopped because its sandbox went down (an Engine restart): not its fault, no back-off.
                delay = 0.0
            finished_ts = finished.timestamp() if finished else now
            if now < finished_ts + delay:
                self._wake_at = min(self._wake_at, finished_ts + delay)
                self._waiting[name] = (
                    "CrashLoopBackOff",
                    f"back-off {delay:g}s restarting failed container={name} pod={self.name}",
                )
                if delay and not self._waiting_since_logged(name, finished_ts):
                    self._event("Warning", "BackOff", f"Back-off restarting failed container {name} in pod {self.name}")
                return None
        failures, retry_at = self._start_failures.get(name, (0, 0.0))
        if now < retry_at:
            self._wake_at = min(self._wake_at, retry_at)
            reason, message = self._waiting.get(name, ("ContainerCreating", ""))
            if reason == "ErrImagePull":
                self._waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{container["image"]}"')
            return None
        try:
            image_user = await self._image(container)
            await self.kubelet.ensure_volumes(self)
            env, mounts, user, container = self._configure(container, image_user)
            run = await self.rt.create_run(self.pod, self.sandbox, container, kind, restarts, env, mounts, user)
        except ImagePullError as exc:
            self._start_failed(
                name, failures, now, "ErrImagePull", str(exc), f'Failed to pull image "{container["image"]}": {exc}'
            )
            return None
        except (podrules.ConfigError, LookupError, ValueError) as exc:
            message = str(exc).strip("'\"")
            self._start_failed(
                name, failures, now, "CreateContainerConfigError", message, f"Error: {message}", CONFIG_RETRY_SECONDS
            )
            return None
        except DockerError as exc:
            self._start_failed(name, failures, now, "CreateContainerError", str(exc), f"Error: {exc}")
            return None
        self._start_failures.pop(name, None)
        self._waiting.pop(name, None)
        self.kick()  # the next pass reads the new run from Docker
        self._killed.discard(name)
        self._event("Normal", "Started", f"Started container {name}")
        # Like the kubelet, keep the run before this one (for `logs --previous`) and no older.
        keep = {run.id} | ({last.id} if last is not None else set())
        for stale in [r for r in self._runs_cache or [] if r.name == name and r.id not in keep]:
            await self.rt.remove(stale.id)
        post_start = (container.get("lifecycle") or {}).get("postStart")
        if post_start:
            await self._post_start(container, run, post_start)
        self.kubelet.changed()
        return run

    async def _post_start(self, container: Obj, run: ContainerRun, hook: Obj) -> None:
        """Run the postStart hook; a failing hook kills the container, which then restarts by policy."""
        grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        ok, message = await self._run_handler(container, run, hook, grace)
        if ok:
            return
        name = container["name"]
        self._event("Warning", "FailedPostStartHook", f"PostStartHook failed for container {name}: {message}")
        self._stopping.add(name)
        try:
            await self.rt.stop(run.id, grace)
        finally:
            self._stopping.discard(name)

    def _start_failed(
        self, name: str, failures: int, now: float, reason: str, message: str, event: str, retry: float | None = None
    ) -> None:
        """Record a start that failed before the container ran; retry later (the kubelet's back-off by default)."""
        failures += 1
        self.failed_starts += 1
        delay = probes.restart_delay(failures) if retry is None else retry
        self._start_failures[name] = (failures, now + delay)
        self._wake_at = min(self._wake_at, now + delay)
        self._waiting[name] = (reason, message)
        self._event("Warning", "Failed", event)
        self.kubelet.changed()

    def retry_config_errors(self) -> None:
        """A ConfigMap or Secret changed: containers waiting for one try again now."""
        waiting = [n for n, (reason, _) in self._waiting.items() if reason == "CreateContainerConfigError"]
        for name in waiting:
            count, _ = self._start_failures.get(name, (0, 0.0))
            self._start_failures[name] = (count, 0.0)
        if waiting:
            self.kick()

    def _waiting_since_logged(self, name: str, finished: float) -> bool:
        if self._logged_backoff.get(name) == finished:
            return True
        self._logged_backoff[name] = finished
        return False

    async def _image(self, container: Obj) -> str:
        """Make the image present as imagePullPolicy says; returns the image's USER."""
        image = container["image"]
        policy = container.get("imagePullPolicy", "IfNotPresent")
        user = await self.rt.image_user(image)
        if policy == "Never":
            if user is None:
                raise ImagePullError(None, f'Container image "{image}" is not present with pull policy of Never')
            return user
        if policy == "Always" or user is None:
            self._event("Normal", "Pulling", f'Pulling image "{image}"')
            try:
                await self.rt.pull(image)
            except ImagePullError:
                if policy == "Always" and user is not None:
                    # Kubernetes fails here too; keep it strict so a broken registry is seen.
                    raise
                raise
            except NotFound as exc:
                raise ImagePullError(404, f"{image}: not found") from exc
            self._event("Normal", "Pulled", f'Successfully pulled image "{image}"')
            user = await self.rt.image_user(image)
        return user or ""

    def _configure(self, container: Obj, image_user: str) -> tuple[list[str], list[Mount], str | None, Obj]:
        """Resolve env, mounts, user and $(VAR) in command/args; raises ConfigError when it cannot."""
        ns = self.namespace
        store = self.kubelet.store

        def lookup(kind: str, name: str) -> Obj | None:
            return store.get(ObjectKey(kind, ns, name))

        user = podrules.container_user(self.pod, container, image_user)
        env = podrules.container_env(self.pod, container, self.sandbox.ip, lookup)
        mounts: list[Mount] = []
        volumes = self.kubelet.volumes_for(self)
        for vm in container.get("volumeMounts") or []:
            kind, source = volumes[vm["name"]]
            read_only = bool(vm.get("readOnly"))
            if kind == "volume":
                mounts.append(Mount.volume(source, vm["mountPath"], read_only=read_only))
            else:
                path = source + ("/" + vm["subPath"] if vm.get("subPath") else "")
                mounts.append(Mount.bind(path, vm["mountPath"], read_only=read_only))
        return [f"{k}={v}" for k, v in env.items()], mounts, user, podrules.expand_command(container, env)

    # -- probes -----------------------------------------------------------------------

    async def _probe(self, container: Obj, run: ContainerRun, now: float) -> float:
        """Run the probes that are due; returns when the next one is due."""
        name = container["name"]
        started = run.info.state.started_at.timestamp() if run.info.state.started_at else now
        if self._tracked_run.get(name) != run.id:
            self._tracked_run[name] = run.id
            self._trackers[name] = {
                kind: probes.Tracker.start(kind, _timing(container[field]), started)
                for kind, field in (
                    (probes.Kind.STARTUP, "startupProbe"),
                    (probes.Kind.READINESS, "readinessProbe"),
                    (probes.Kind.LIVENESS, "livenessProbe"),
                )
                if container.get(field)
            }
        trackers = self._trackers[name]
        if name in self._killed:
            return now + 1.0
        startup = trackers.get(probes.Kind.STARTUP)
        if startup is not None and startup.result is not probes.Result.SUCCESS:
            order = [probes.Kind.STARTUP]
        else:
            order = [k for k in (probes.Kind.READINESS, probes.Kind.LIVENESS) if k in trackers]
        fields = {
            probes.Kind.STARTUP: "startupProbe",
            probes.Kind.READINESS: "readinessProbe",
            probes.Kind.LIVENESS: "livenessProbe",
        }
        wake = now + FULL_SYNC_SECONDS
        for kind in order:
            tracker = trackers[kind]
            if tracker.due(now):
                # The period counts from the start of a probe, as the kubelet's ticker does.
                probed_at = self.kubelet.clock()
                ok, message = await self._run_handler(container, run, container[fields[kind]], tracker.timing.timeout)
                before = tracker.result
                tracker = tracker.observe(ok, probed_at, message)
                trackers[kind] = tracker
                if not ok:
                    self._event("Warning", "Unhealthy", f"{kind.value.capitalize()} probe failed: {message}")
                if tracker.result != before:
                    self.kubelet.changed()
                if tracker.result is probes.Result.FAILURE and kind is not probes.Kind.READINESS:
                    await self._kill_for_probe(container, run, kind)
                    return now + 0.2
            wake = min(wake, tracker.next_due())
        return wake

    async def _kill_for_probe(self, container: Obj, run: ContainerRun, kind: probes.Kind) -> None:
        name = container["name"]
        self._killed.add(name)
        self._event("Normal", "Killing", f"Container {name} failed {kind.value} probe, will be restarted")
        probe = container[f"{kind.value}Probe"]
        grace = probe.get("terminationGracePeriodSeconds", self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        self._stopping.add(name)
        try:
            await self.rt.stop(run.id, float(grace))
        finally:
            self._stopping.discard(name)
        self.kick()

    async def _run_handler(self, container: Obj, run: ContainerRun, handler: Obj, timeout: float) -> tuple[bool, str]:
        """Run a probe or lifecycle handler: httpGet, tcpSocket, exec or sleep."""
        if "httpGet" in handler:
            h = handler["httpGet"]
            port = self._port(container, h.get("port"))
            host = h.get("host") or self.sandbox.ip
            scheme = str(h.get("scheme", "HTTP")).lower()
            path = h.get("path", "/")
            if not path.startswith("/"):
                path = "/" + path
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.30")
            return await self.rt.http_get(f"{scheme}://{host}:{port}{path}", headers, timeout)
        if "tcpSocket" in handler:
            h = handler["tcpSocket"]
            return await self.rt.tcp_connect(
                h.get("host") or self.sandbox.ip, self._port(container, h.get("port")), timeout
            )
        if "exec" in handler:
            return await self.rt.exec(run.id, list(handler["exec"].get("command") or []), timeout)
        if "sleep" in handler:
            await asyncio.sleep(float(handler["sleep"].get("seconds", 0)))
            return True, ""
        return False, "probe has no handler the local target supports"

    def _port(self, container: Obj, port: Any) -> int:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for p in container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"port {port!r} is not a named port of container {container['name']}")

    # -- status -----------------------------------------------------------------------

    def _waiting_status(self, container: Obj, reason: tuple[str, str] | None = None) -> Obj:
        name = container["name"]
        reason = reason or self._waiting.get(name) or ("ContainerCreating", "")
        waiting: Obj = {"reason": reason[0]}
        if reason[1]:
            waiting["message"] = reason[1]
        return {
            "name": name,
            "image": container["image"],
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"waiting": waiting},
        }

    def _state(self, info: ContainerInfo) -> Obj:
        st = info.state
        if st.running:
            return {"running": {"startedAt": _dt(st.started_at)}}
        if st.finished_at is None:
            return {"waiting": {"reason": "ContainerCreating"}}
        reason = "OOMKilled" if st.oom_killed else ("Completed" if st.exit_code == 0 else "Error")
        term: Obj = {
            "exitCode": st.exit_code,
            "reason": reason,
            "startedAt": _dt(st.started_at),
            "finishedAt": _dt(st.finished_at),
            "containerID": f"docker://{info.id}",
        }
        if st.error:
            term["message"] = st.error
        return {"terminated": term}

    def _container_status(self, container: Obj, run: ContainerRun, prev: ContainerRun | None, ready: bool) -> Obj:
        name = container["name"]
        state = self._state(run.info)
        last: Obj = {}
        if not run.info.state.running and name in self._waiting:
            # Exited and waiting to restart: Kubernetes shows the exit as lastState.
            last = state
            reason, message = self._waiting[name]
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        elif prev is not None:
            last = self._state(prev.info)
        started = run.info.state.running and not (
            self._trackers.get(name, {}).get(probes.Kind.STARTUP)
            and self._trackers[name][probes.Kind.STARTUP].result is not probes.Result.SUCCESS
        )
        return {
            "name": name,
            "image": container["image"],
            "imageID": run.info.image,
            "containerID": f"docker://{run.id}",
            "ready": ready,
            "started": started,
            "restartCount": run.restarts,
            "state": state,
            "lastState": last,
        }

    def _publish(self, policy: str, init_done: bool, init_statuses: list[Obj], statuses: list[Obj]) -> None:
        old = self.status
        conditions = podrules.conditions(
            init_done, statuses, old.get("conditions", []), revisions.rfc3339(self.kubelet.clock())
        )
        status: Obj = {
            "phase": podrules.phase(policy, init_done, statuses),
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            "podIP": self.sandbox.ip,
            "podIPs": [{"ip": self.sandbox.ip}] if self.sandbox.ip else [],
            "startTime": old.get("startTime") or revisions.rfc3339(self.sandbox.created),
            "containerStatuses": statuses,
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if status != old:
            self.status = status
            self.kubelet.changed()

    # -- termination ------------------------------------------------------------------

    async def _teardown(self) -> None:
        """Graceful termination: not ready, drained from Services, preStop, SIGTERM, SIGKILL after the grace period."""
        spec = self.pod["spec"]
        grace = float(self.grace if self.grace is not None else spec.get("terminationGracePeriodSeconds", 30))
        deadline = self.kubelet.clock() + grace
        ready_false = [
            dict(c, status="False") if c["type"] in ("Ready", "ContainersReady") else c
            for c in self.status.get("conditions", [])
        ]
        self.status = {
            **self.status,
            "conditions": ready_false,
            "containerStatuses": [dict(s, ready=False) for s in self.status.get("containerStatuses", [])],
        }
        self.kubelet.changed()
        await self.kubelet.drain(self, deadline)
        runs = [r for r in await self.rt.runs(self.uid) if r.info.state.running]
        by_name = {c["name"]: c for c in spec["containers"]}

        async def stop_one(run: ContainerRun) -> None:
            container = by_name.get(run.name)
            pre_stop = ((container or {}).get("lifecycle") or {}).get("preStop")
            if pre_stop and container is not None and grace > 0:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._run_handler(container, run, pre_stop, grace), grace)
            await self.rt.stop(run.id, max(0.0, deadline - self.kubelet.clock()))

        self._event("Normal", "Killing", f"Stopping pod (grace period {grace:g}s)")
        await asyncio.gather(*(stop_one(r) for r in runs))
        await self.rt.remove_pod(self.uid, self.sandbox.id)
        self.gone.set()
        self.kubelet.forget(self)


class Kubelet:
    """Owns the pod workers of the local target.

    Args:
        runtime: Pod-level operations on the Docker Engine.
        store: Desired state (ConfigMaps, Secrets) and where events are recorded.
        on_change: Called whenever a pod's status or the set of pods changes.
        drain: Called when a pod terminates, before preStop and SIGTERM, with the deadline
            of its grace period: Services stop sending it requests and let in-flight ones end.
        clock: Epoch seconds. Back-off, probe timing, status timestamps and events all
            read it, so unit tests can drive time by hand.
    """

    def __init__(
        self,
        runtime: LocalRuntime,
        store: Store,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.time,
        drain: Callable[[PodWorker, float], Awaitable[None]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.clock = clock
        self._on_change = on_change
        self._drain = drain
        self.workers: dict[str, PodWorker] = {}
        self._volumes: dict[str, dict[str, tuple[str, str]]] = {}
        self._events_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Adopt every pod Docker still has and clean up containers of vanished pods."""
        await self.runtime.prepare()
        sandboxes = await self.runtime.sandboxes()
        for sandbox in sandboxes:
            if sandbox.uid not in self.workers:
                worker = PodWorker(self, sandbox)
                self.workers[sandbox.uid] = worker
                worker.start()
        for container_id in await self.runtime.orphan_runs({s.uid for s in sandboxes}):
            await self.runtime.remove(container_id)
        # Adopted pods report their real state before the controllers look at them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(w.first_sync.wait() for w in self.workers.values())), timeout=15.0)
        self._events_task = asyncio.create_task(self._watch_docker())

    async def stop(self) -> None:
        if self._events_task:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())))

    async def _watch_docker(self) -> None:
        """Wake a pod's worker as soon as one of its containers dies."""
        first = True
        while True:
            if not first:
                # The stream broke (dockerd restarting?): events may have been missed, so
                # every pod re-reads its containers.
                for worker in list(self.workers.values()):
                    worker.kick()
            first = False
            try:
                async for event in self.runtime.docker.events(
                    {
                        "type": ["container"],
                        "event": ["die", "oom", "start"],
                        "label": [f"funade.managed={self.runtime.instance}"],
                    }
                ):
                    target = self.workers.get(event.actor_attributes.get("funade.pod.uid", ""))
                    if target is not None:
                        target.kick()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)

    def changed(self) -> None:
        self._on_change()

    async def drain(self, worker: PodWorker, deadline: float) -> None:
        """Let the Services in front of a terminating pod stop using it; never longer than ``deadline``."""
        if self._drain is None:
            return
        remaining = deadline - self.clock()
        if remaining <= 0:
            return
        try:
            await asyncio.wait_for(self._drain(worker, deadline), remaining)
        except asyncio.CancelledError:
            raise
        except Exception:  # a drain that fails or times out must not keep the pod from stopping
            log.warning("pod %s/%s: drain did not finish", worker.namespace, worker.name, exc_info=True)

    def forget(self, worker: PodWorker) -> None:
        self.workers.pop(worker.uid, None)
        self._volumes.pop(worker.uid, None)
        self.changed()

    def event(self, namespace: str, kind: str, name: str, type_: str, reason: str, message: str) -> None:
        self.store.add_event(Event(self.clock(), namespace, kind, name, type_, reason, message))

    def volumes_for(self, worker: PodWorker) -> dict[str, tuple[str, str]]:
        volumes = self._volumes.get(worker.uid)
        if volumes is None:
            raise podrules.ConfigError("volumes are not prepared")
        return volumes

    async def create_pod(self, pod: Obj) -> PodWorker:
        """Create a pod's sandbox and start its worker."""
        sandbox = await self.runtime.create_sandbox(pod)
        worker = PodWorker(self, sandbox)
        self.workers[sandbox.uid] = worker
        self.event(
            pod["metadata"]["namespace"],
            "Pod",
            pod["metadata"]["name"],
            "Normal",
            "Scheduled",
            f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to local",
        )
        worker.start()
        self.changed()
        return worker

    async def ensure_volumes(self, worker: PodWorker) -> None:
        if worker.uid in self._volumes:
            return
        ns = worker.namespace
        configmaps = {o["metadata"]["name"]: o for o in self.store.list_objects("ConfigMap", ns)}
        secrets = {o["metadata"]["name"]: o for o in self.store.list_objects("Secret", ns)}
        self._volumes[worker.uid] = await self.runtime.prepare_volumes(worker.pod, configmaps, secrets)

    def delete_pod(self, uid: str, grace: float | None = None) -> bool:
        worker = self.workers.get(uid)
        if worker is None:
            return False
        worker.terminate(grace)
        return True

    def retry_config_errors(self) -> None:
        for worker in self.workers.values():
            worker.retry_config_errors()

    def pods(self) -> list[PodWorker]:
        return list(self.workers.values())
