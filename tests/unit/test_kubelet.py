"""The local target's kubelet, driven pass by pass on an in-memory Docker Engine.

Each test builds a pod's worker on `FakeDocker`, calls `PodWorker.sync(full=True)`
itself and moves the fake clock between passes, so back-off, probe periods and
thresholds are checked to the second while no real time passes. HTTP probes answer
from a script (`ScriptedRuntime`); exec probes go through the fake's exec. ConfigMaps
and Secrets live in a real `SqliteStore` under ``tmp_path``.

The last section pins down the fake itself: where the kubelet relies on the Engine
refusing something, the fake must refuse it too, or these tests prove nothing.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import urllib.parse
import uuid
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from funade.adapters.docker import (
    Conflict,
    ContainerInfo,
    ContainerSpec,
    DockerClient,
    DockerError,
    DockerEvent,
    ExecResult,
    FakeDocker,
    ImagePullError,
    Mount,
    NotFound,
)
from funade.adapters.local import runtime
from funade.adapters.local.runtime import ContainerRun, LocalRuntime
from funade.adapters.store.sqlite import SqliteStore
from funade.controller.kubelet import Kubelet, PodWorker
from funade.core.ports import Event

pytestmark = pytest.mark.unit

T = TypeVar("T")
Obj = dict[str, Any]

APP_IMAGE = "app:1"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ScriptedRuntime(LocalRuntime):
    """The real runtime, except that HTTP probes answer from `answers` instead of the network.

    ``answers`` maps a URL path to whether the app answers it with success; paths not
    in it succeed. Every probed URL is recorded in ``urls``.
    """

    def __init__(self, docker: FakeDocker, home: Path) -> None:
        super().__init__(docker, home)
        self.answers: dict[str, bool] = {}
        self.urls: list[str] = []

    async def http_get(self, url: str, headers: Mapping[str, str], timeout: float) -> tuple[bool, str]:
        self.urls.append(url)
        if self.answers.get(urllib.parse.urlsplit(url).path, True):
            return True, ""
        return False, "HTTP probe failed with statuscode: 503"

    async def tcp_connect(self, host: str, port: int, timeout: float) -> tuple[bool, str]:
        self.urls.append(f"tcp://{host}:{port}")
        if self.answers.get(f":{port}", True):
            return True, ""
        return False, f"dial tcp {host}:{port}: connect: connection refused"

    def paths(self) -> list[str]:
        return [urllib.parse.urlsplit(url).path for url in self.urls]


class RecordingStore(SqliteStore):
    """The real store, also keeping every event the kubelet records, in order.

    The store folds repeated events into a count and prunes by wall-clock age, which
    would hide events stamped with the fake clock; the tests read them from here.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.recorded: list[Event] = []

    def add_event(self, event: Event) -> None:
        self.recorded.append(event)
        super().add_event(event)


class Node:
    """One fake Engine with a runtime, a store and a kubelet that share the fake's clock."""

    def __init__(self, home: Path, db: Path, docker: FakeDocker) -> None:
        self.docker = docker
        self.store = RecordingStore(db)
        self.runtime = ScriptedRuntime(docker, home)
        self.changes = 0
        self.kubelet = Kubelet(self.runtime, self.store, self._changed, clock=docker.clock)

    def _changed(self) -> None:
        self.changes += 1

    def close(self) -> None:
        run(self.runtime.close())
        self.store.close()

    async def add_pod(self, pod: Obj) -> PodWorker:
        """What `Kubelet.create_pod` does, without starting the worker's own loop."""
        await self.runtime.prepare()
        sandbox = await self.runtime.create_sandbox(pod)
        worker = PodWorker(self.kubelet, sandbox)
        self.kubelet.workers[worker.uid] = worker
        return worker

    async def runs(self, worker: PodWorker, name: str) -> list[ContainerRun]:
        return [r for r in await self.runtime.runs(worker.uid) if r.name == name]

    def put(self, *objs: Obj) -> None:
        self.store.put_many(list(objs))

    def events(self, reason: str) -> list[str]:
        return [e.message for e in self.store.recorded if e.reason == reason]

    def created(self) -> list[str]:
        """The ``funade.container`` label (``pause`` for sandboxes) of every container created, in order."""
        return [spec.labels.get("funade.container", "pause") for spec in self.docker.creates]


@pytest.fixture
def docker() -> FakeDocker:
    fake = FakeDocker()
    fake.add_image(runtime.PAUSE_IMAGE, user="65535:65535", cmd=["/bin/busybox", "sh"])
    fake.add_image(APP_IMAGE, user="1000")
    return fake


@pytest.fixture
def node(tmp_path: Path, docker: FakeDocker) -> Iterator[Node]:
    n = Node(tmp_path / "home", tmp_path / "funade.db", docker)
    yield n
    n.close()


def make_pod(
    name: str = "web-1",
    *,
    containers: list[Obj] | None = None,
    init: list[Obj] | None = None,
    volumes: list[Obj] | None = None,
    security: Obj | None = None,
) -> Obj:
    spec: Obj = {"containers": containers or [{"name": "app", "image": APP_IMAGE}]}
    if init:
        spec["initContainers"] = init
    if volumes:
        spec["volumes"] = volumes
    if security:
        spec["securityContext"] = security
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "labels": {"app": "web"},
        },
        "spec": spec,
    }


def configmap(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def secret(name: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "data": {k: b64(v) for k, v in data.items()},
    }


def status_of(worker: PodWorker, name: str = "app", *, init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(s for s in worker.status.get(key, []) if s["name"] == name)


def waiting(status: Obj) -> tuple[str, str]:
    state = status["state"]
    assert "waiting" in state, f"expected a waiting container, got {state}"
    return state["waiting"]["reason"], state["waiting"].get("message", "")


def condition(worker: PodWorker, kind: str) -> str:
    return str(next(c["status"] for c in worker.status["conditions"] if c["type"] == kind))


# --- (a) the first sync ---------------------------------------------------------------------------


def test_first_sync_creates_the_sandbox_and_one_run(node: Node) -> None:
    node.put(
        configmap("web-config", mode="fast", **{"app.conf": "threads=4\n"}), secret("web-secret", password="s3cret")
    )
    pod = make_pod(
        security={"runAsUser": 1000, "runAsGroup": 3000},
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "web-config"}}],
        containers=[
            {
                "name": "app",
                "image": APP_IMAGE,
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "mode"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "URL", "value": "http://$(POD_IP):8080"},
                ],
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "config", "mountPath": "/etc/web", "readOnly": True},
                ],
            }
        ],
    )
    uid = pod["metadata"]["uid"]

    async def scenario() -> PodWorker:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        return worker

    worker = run(scenario())

    assert node.created() == ["pause", "app"]
    sandbox_spec, app_spec = node.docker.creates
    assert sandbox_spec.image == runtime.PAUSE_IMAGE
    assert sandbox_spec.network_mode == "funade"
    assert list(sandbox_spec.network_aliases) == ["web-1"]
    assert sandbox_spec.labels["funade.role"] == "sandbox"

    pod_ip = run(node.docker.inspect_container(worker.sandbox.id)).networks["funade"].ip_address
    assert pod_ip
    assert worker.sandbox.ip == pod_ip
    assert dict(app_spec.labels) == {
        "funade.managed": node.runtime.instance,
        "funade.role": "container",
        "funade.pod.uid": uid,
        "funade.pod.name": "web-1",
        "funade.pod.namespace": "default",
        "funade.container": "app",
        "funade.container.kind": "app",
        "funade.restarts": "0",
    }
    assert app_spec.network_mode == f"container:{worker.sandbox.id}"
    assert app_spec.ipc_mode == f"container:{worker.sandbox.id}"
    assert app_spec.user == "1000:3000"
    assert set(app_spec.env) >= {
        "GREETING=hello",
        "MODE=fast",
        "PASSWORD=s3cret",
        "POD_NAME=web-1",
        f"POD_IP={pod_ip}",
        f"URL=http://{pod_ip}:8080",
        "HOSTNAME=web-1",
    }
    volumes = node.runtime.pod_dir(uid) / "volumes"
    assert list(app_spec.mounts) == [
        Mount.bind(str(volumes / "scratch"), "/scratch"),
        Mount.bind(str(volumes / "config"), "/etc/web", read_only=True),
    ]
    assert (volumes / "config" / "mode").read_text() == "fast"
    assert (volumes / "config" / "app.conf").read_text() == "threads=4\n"

    status = status_of(worker)
    [app_run] = run(node.runs(worker, "app"))
    assert status["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}}
    assert status["containerID"] == f"docker://{app_run.id}"
    assert status["ready"] is True
    assert status["restartCount"] == 0
    assert worker.status["phase"] == "Running"
    assert worker.status["podIP"] == pod_ip
    assert condition(worker, "Ready") == "True"
    assert node.events("Started") == ["Started container app"]

    # A later pass finds everything as it should be and creates nothing.
    node.docker.advance(5)
    run(worker.sync(full=True))
    assert node.created() == ["pause", "app"]


# --- (b) crash loop -------------------------------------------------------------------------------


def test_crash_loop_restarts_at_once_then_backs_off_10_then_20_seconds(node: Node) -> None:
    docker = node.docker

    async def scenario() -> None:
        worker = await node.add_pod(make_pod())
        await worker.sync(full=True)
        [first] = await node.runs(worker, "app")

        docker.advance(5)
        docker.exit(first.id, 1)
        await worker.sync(full=True)
        # The first restart is immediate.
        assert len(await node.runs(worker, "app")) == 2
        status = status_of(worker)
        assert status["restartCount"] == 1
        assert "running" in status["state"]
        assert status["lastState"]["terminated"]["exitCode"] == 1
        assert status["lastState"]["terminated"]["reason"] == "Error"

        second = (await node.runs(worker, "app"))[-1]
        docker.advance(3)
        docker.exit(second.id, 1)
        await worker.sync(full=True)
        status = status_of(worker)
        assert waiting(status) == ("CrashLoopBackOff", "back-off 10s restarting failed container=app pod=web-1")
        assert status["restartCount"] == 1
        assert status["lastState"]["terminated"]["exitCode"] == 1
        assert worker.status["phase"] == "Running"
        assert condition(worker, "Ready") == "False"

        docker.advance(9.9)
        await worker.sync(full=True)
        assert len(await node.runs(worker, "app")) == 2
        assert waiting(status_of(worker))[0] == "CrashLoopBackOff"
        # One BackOff event per exit, not one per pass.
        assert len(node.events("BackOff")) == 1

        docker.advance(0.1)
        await worker.sync(full=True)
        runs = await node.runs(worker, "app")
        # The first run is gone: only the current run and the one before it are kept.
        assert [r.restarts for r in runs] == [1, 2]
        assert status_of(worker)["restartCount"] == 2
        assert "running" in status_of(worker)["state"]

        docker.advance(1)
        docker.exit(runs[-1].id, 2)
        await worker.sync(full=True)
        assert waiting(status_of(worker)) == (
            "CrashLoopBackOff",
            "back-off 20s restarting failed container=app pod=web-1",
        )
        docker.advance(19.9)
        await worker.sync(full=True)
        assert [r.restarts for r in await node.runs(worker, "app")] == [1, 2]
        docker.advance(0.1)
        await worker.sync(full=True)
        assert [r.restarts for r in await node.runs(worker, "app")] == [2, 3]
        assert status_of(worker)["restartCount"] == 3
        assert status_of(worker)["lastState"]["terminated"]["exitCode"] == 2

    run(scenario())


# --- (c) readiness --------------------------------------------------------------------------------


def test_readiness_needs_success_threshold_successes_and_failure_threshold_failures(node: Node) -> None:
    docker, rt = node.docker, node.runtime
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "periodSeconds": 10,
            "successThreshold": 2,
            "failureThreshold": 3,
        },
    }

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        # Probed at once (no initial delay), one success of the two needed.
        assert rt.urls == [f"http://{worker.sandbox.ip}:8080/ready"]
        assert status_of(worker)["ready"] is False
        assert condition(worker, "Ready") == "False"

        docker.advance(5)
        await worker.sync(full=True)
        assert len(rt.urls) == 1  # not due before the period

        docker.advance(5)
        await worker.sync(full=True)
        assert len(rt.urls) == 2
        assert status_of(worker)["ready"] is True
        assert condition(worker, "Ready") == "True"

        rt.answers["/ready"] = False
        for failures in (1, 2):
            docker.advance(10)
            await worker.sync(full=True)
            assert status_of(worker)["ready"] is True, f"not ready after {failures} failure(s)"
        docker.advance(10)
        await worker.sync(full=True)
        assert status_of(worker)["ready"] is False
        assert condition(worker, "Ready") == "False"
        assert node.events("Unhealthy") == ["Readiness probe failed: HTTP probe failed with statuscode: 503"] * 3
        # Readiness never restarts a container.
        assert node.created() == ["pause", "app"]
        assert "running" in status_of(worker)["state"]

        rt.answers["/ready"] = True
        docker.advance(10)
        await worker.sync(full=True)
        assert status_of(worker)["ready"] is False
        docker.advance(10)
        await worker.sync(full=True)
        assert status_of(worker)["ready"] is True

    run(scenario())


# --- (d) liveness ---------------------------------------------------------------------------------


def test_liveness_failures_stop_the_container_and_the_next_sync_starts_a_new_run(node: Node) -> None:
    docker = node.docker
    healthy = {"app": True}

    def answer(info: ContainerInfo, cmd: tuple[str, ...]) -> ExecResult:
        assert cmd == ("cat", "/tmp/healthy")
        if healthy[info.labels["funade.container"]]:
            return ExecResult(0, b"")
        return ExecResult(1, b"cat: can't open '/tmp/healthy': No such file or directory")

    docker.exec_handler = answer
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 5, "failureThreshold": 3},
    }

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        [first] = await node.runs(worker, "app")
        assert docker.execs == [(first.id, ("cat", "/tmp/healthy"))]

        healthy["app"] = False
        for _ in range(2):
            docker.advance(5)
            await worker.sync(full=True)
            assert (await docker.inspect_container(first.id)).state.running
        docker.advance(5)
        await worker.sync(full=True)
        stopped = (await docker.inspect_container(first.id)).state
        assert not stopped.running
        assert stopped.exit_code == 143  # SIGTERM
        assert node.events("Killing") == ["Container app failed liveness probe, will be restarted"]
        assert len(docker.execs) == 4

        healthy["app"] = True
        await worker.sync(full=True)
        runs = await node.runs(worker, "app")
        assert len(runs) == 2
        status = status_of(worker)
        assert status["restartCount"] == 1
        assert "running" in status["state"]
        assert status["containerID"] == f"docker://{runs[1].id}"
        assert status["lastState"]["terminated"]["exitCode"] == 143
        assert status["lastState"]["terminated"]["finishedAt"] == "2023-11-14T22:13:35Z"
        # The new run has fresh probe state: probed once, healthy, left alone.
        assert docker.execs[-1] == (runs[1].id, ("cat", "/tmp/healthy"))
        docker.advance(5)
        await worker.sync(full=True)
        assert len(await node.runs(worker, "app")) == 2

    run(scenario())


# --- (e) startup probe ----------------------------------------------------------------------------


def _probe(path: str, **timing: int) -> Obj:
    return {"httpGet": {"path": path, "port": 8080}, "periodSeconds": 5, **timing}


def test_startup_probe_gates_liveness_and_readiness(node: Node) -> None:
    docker, rt = node.docker, node.runtime
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "startupProbe": _probe("/started", failureThreshold=10),
        "readinessProbe": _probe("/ready"),
        "livenessProbe": _probe("/live"),
    }
    rt.answers["/started"] = False

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        docker.advance(5)
        await worker.sync(full=True)
        assert rt.paths() == ["/started", "/started"]
        status = status_of(worker)
        assert status["started"] is False
        assert status["ready"] is False

        rt.answers["/started"] = True
        docker.advance(5)
        await worker.sync(full=True)
        assert rt.paths() == ["/started"] * 3
        assert status_of(worker)["started"] is True
        assert status_of(worker)["ready"] is False

        await worker.sync(full=True)
        assert sorted(rt.paths()[3:]) == ["/live", "/ready"]
        assert status_of(worker)["ready"] is True
        # The startup probe is done for this run.
        docker.advance(5)
        await worker.sync(full=True)
        assert "/started" not in rt.paths()[3:]

    run(scenario())


def test_a_failing_startup_probe_restarts_the_container_without_probing_liveness(node: Node) -> None:
    docker, rt = node.docker, node.runtime
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "startupProbe": _probe("/started", failureThreshold=2),
        "livenessProbe": _probe("/live"),
    }
    rt.answers["/started"] = False

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        docker.advance(5)
        await worker.sync(full=True)
        assert node.events("Killing") == ["Container app failed startup probe, will be restarted"]
        await worker.sync(full=True)
        assert status_of(worker)["restartCount"] == 1
        assert "/live" not in rt.paths()

    run(scenario())


# --- (f) configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize("via", ["env", "volume"])
def test_a_missing_secret_is_a_config_error_until_it_is_stored(node: Node, via: str) -> None:
    container: Obj = {"name": "app", "image": APP_IMAGE}
    volumes = None
    if via == "env":
        container["env"] = [
            {"name": "DB_URL", "valueFrom": {"secretKeyRef": {"name": "db-secret", "key": "url"}}},
        ]
    else:
        volumes = [{"name": "creds", "secret": {"secretName": "db-secret"}}]
        container["volumeMounts"] = [{"name": "creds", "mountPath": "/creds"}]
    pod = make_pod(containers=[container], volumes=volumes)

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        assert waiting(status_of(worker)) == ("CreateContainerConfigError", 'secret "db-secret" not found')
        assert node.created() == ["pause"]
        assert node.events("Failed") == ['Error: secret "db-secret" not found']
        assert worker.status["phase"] == "Pending"

        node.put(secret("db-secret", url="postgres://db/shop"))
        node.docker.advance(1)
        await worker.sync(full=True)
        assert node.created() == ["pause"]  # retried every 10 s, or when told

        node.kubelet.retry_config_errors()
        await worker.sync(full=True)
        assert node.created() == ["pause", "app"]
        assert "running" in status_of(worker)["state"]
        spec = node.docker.creates[-1]
        if via == "env":
            assert "DB_URL=postgres://db/shop" in spec.env
        else:
            [mount] = spec.mounts
            assert Path(mount.source, "url").read_text() == "postgres://db/shop"

    run(scenario())


def test_a_config_error_is_retried_after_ten_seconds_by_itself(node: Node) -> None:
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
    }

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        assert waiting(status_of(worker)) == ("CreateContainerConfigError", 'configmap "settings" not found')
        node.put(configmap("settings", mode="slow"))
        node.docker.advance(9.9)
        await worker.sync(full=True)
        assert node.created() == ["pause"]
        node.docker.advance(0.1)
        await worker.sync(full=True)
        assert node.created() == ["pause", "app"]

    run(scenario())


# --- (g) image pulls ------------------------------------------------------------------------------


def test_a_failing_pull_is_err_image_pull_then_image_pull_back_off(node: Node) -> None:
    docker = node.docker
    image = "registry.example.com/shop/web:2"
    docker.pull_errors[image] = "manifest unknown"

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[{"name": "app", "image": image}]))
        await worker.sync(full=True)
        assert waiting(status_of(worker)) == ("ErrImagePull", f"cannot pull {image}: manifest unknown")
        assert docker.pulls == [image]
        assert node.events("Failed") == [f'Failed to pull image "{image}": cannot pull {image}: manifest unknown']
        assert worker.status["phase"] == "Pending"

        docker.advance(1)
        await worker.sync(full=True)
        assert waiting(status_of(worker)) == ("ImagePullBackOff", f'Back-off pulling image "{image}"')
        assert docker.pulls == [image]

        docker.advance(9)  # 10 s after the first failure
        await worker.sync(full=True)
        assert docker.pulls == [image] * 2
        assert waiting(status_of(worker))[0] == "ErrImagePull"

        docker.advance(19.9)  # the back-off doubled
        await worker.sync(full=True)
        assert docker.pulls == [image] * 2
        assert waiting(status_of(worker))[0] == "ImagePullBackOff"

        del docker.pull_errors[image]
        docker.add_remote_image(image, user="1000")
        docker.advance(0.1)
        await worker.sync(full=True)
        assert docker.pulls == [image] * 3
        assert node.created() == ["pause", "app"]
        assert "running" in status_of(worker)["state"]
        assert f'Successfully pulled image "{image}"' in node.events("Pulled")

    run(scenario())


def test_an_image_missing_with_pull_policy_never_is_not_pulled(node: Node) -> None:
    container = {"name": "app", "image": "local-only:1", "imagePullPolicy": "Never"}

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        reason, message = waiting(status_of(worker))
        assert reason == "ErrImagePull"
        assert "not present with pull policy of Never" in message
        assert node.docker.pulls == []

    run(scenario())


# --- (h) init containers --------------------------------------------------------------------------


def test_init_containers_run_in_order_and_the_app_waits_for_them(node: Node) -> None:
    docker = node.docker
    pod = make_pod(
        init=[{"name": "migrate", "image": APP_IMAGE}, {"name": "seed", "image": APP_IMAGE}],
        containers=[{"name": "app", "image": APP_IMAGE}],
    )

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        assert node.created() == ["pause", "migrate"]
        assert node.docker.creates[-1].labels["funade.container.kind"] == "init"
        assert waiting(status_of(worker)) == ("PodInitializing", "")
        assert [s["name"] for s in worker.status["initContainerStatuses"]] == ["migrate"]
        assert "running" in status_of(worker, "migrate", init=True)["state"]
        assert worker.status["phase"] == "Pending"
        assert condition(worker, "Initialized") == "False"

        docker.advance(1)
        await worker.sync(full=True)
        assert node.created() == ["pause", "migrate"]  # nothing else starts while it runs

        # A failed init container is restarted (restartPolicy Always); the next one waits.
        [migrate] = await node.runs(worker, "migrate")
        docker.exit(migrate.id, 1)
        await worker.sync(full=True)
        assert node.created() == ["pause", "migrate", "migrate"]
        assert status_of(worker, "migrate", init=True)["restartCount"] == 1

        docker.advance(1)
        docker.exit((await node.runs(worker, "migrate"))[-1].id, 0)
        await worker.sync(full=True)
        assert node.created() == ["pause", "migrate", "migrate", "seed"]
        assert status_of(worker, "migrate", init=True)["state"]["terminated"]["reason"] == "Completed"
        assert waiting(status_of(worker)) == ("PodInitializing", "")

        docker.advance(1)
        [seed] = await node.runs(worker, "seed")
        docker.exit(seed.id, 0)
        await worker.sync(full=True)
        assert node.created() == ["pause", "migrate", "migrate", "seed", "app"]
        assert "running" in status_of(worker)["state"]
        assert [s["state"]["terminated"]["exitCode"] for s in worker.status["initContainerStatuses"]] == [0, 0]
        assert condition(worker, "Initialized") == "True"
        assert worker.status["phase"] == "Running"

        # Finished init containers are never run again.
        docker.advance(5)
        await worker.sync(full=True)
        assert len(node.created()) == 5

    run(scenario())


# --- (i) runAsNonRoot -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_user", "problem"),
    [
        ("", "container has runAsNonRoot and image will run as root"),
        ("0:0", "container has runAsNonRoot and image will run as root"),
        ("app", "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root"),
    ],
)
def test_run_as_non_root_refuses_an_image_that_runs_as_root(node: Node, image_user: str, problem: str) -> None:
    node.docker.add_image("root-app:1", user=image_user)
    pod = make_pod(security={"runAsNonRoot": True}, containers=[{"name": "app", "image": "root-app:1"}])

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        reason, message = waiting(status_of(worker))
        assert reason == "CreateContainerConfigError"
        assert message.startswith(problem)
        assert "container: app" in message
        assert node.created() == ["pause"]

    run(scenario())


def test_run_as_non_root_with_a_non_root_run_as_user_starts(node: Node) -> None:
    node.docker.add_image("root-app:1", user="")
    pod = make_pod(
        security={"runAsNonRoot": True},
        containers=[{"name": "app", "image": "root-app:1", "securityContext": {"runAsUser": 1001}}],
    )

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        assert "running" in status_of(worker)["state"]
        assert node.docker.creates[-1].user == "1001"

    run(scenario())


# --- (j) adoption after a restart of the server ---------------------------------------------------


def test_a_new_kubelet_adopts_running_pods_and_removes_orphans(tmp_path: Path, docker: FakeDocker) -> None:
    home = tmp_path / "home"
    before = Node(home, tmp_path / "before.db", docker)
    after = Node(home, tmp_path / "after.db", docker)
    pod = make_pod()

    async def scenario() -> None:
        worker = await before.add_pod(pod)
        await worker.sync(full=True)
        [app] = await before.runs(worker, "app")
        # Leftovers: a run of a pod whose sandbox is gone, and one of another funade home.
        orphan = await docker.create_container(
            ContainerSpec(
                name="funade_default_gone_0",
                image=APP_IMAGE,
                labels={
                    "funade.managed": before.runtime.instance,
                    "funade.role": "container",
                    "funade.pod.uid": "gone",
                },
            )
        )
        await docker.start(orphan)
        foreign = await docker.create_container(
            ContainerSpec(
                name="funade_default_other_0",
                image=APP_IMAGE,
                labels={"funade.managed": "another-home", "funade.role": "container", "funade.pod.uid": "gone"},
            )
        )
        creates = len(docker.creates)
        docker.advance(60)

        await after.kubelet.start()
        try:
            assert len(docker.creates) == creates
            [adopted] = after.kubelet.pods()
            assert adopted.uid == pod["metadata"]["uid"]
            assert adopted.sandbox.id == worker.sandbox.id
            status = status_of(adopted)
            assert status["containerID"] == f"docker://{app.id}"
            assert status["restartCount"] == 0
            assert status["ready"] is True
            assert adopted.status["phase"] == "Running"
            assert adopted.status["podIP"] == worker.sandbox.ip
            with pytest.raises(NotFound):
                await docker.inspect_container(orphan)
            assert (await docker.inspect_container(foreign)).labels["funade.managed"] == "another-home"
            assert (await docker.inspect_container(app.id)).state.running
        finally:
            await after.kubelet.stop()

    try:
        run(scenario())
    finally:
        before.close()
        after.close()


def test_an_adopted_pod_whose_app_died_while_the_server_was_down_is_restarted(
    tmp_path: Path, docker: FakeDocker
) -> None:
    home = tmp_path / "home"
    before = Node(home, tmp_path / "before.db", docker)
    after = Node(home, tmp_path / "after.db", docker)

    async def scenario() -> None:
        worker = await before.add_pod(make_pod())
        await worker.sync(full=True)
        [app] = await before.runs(worker, "app")
        docker.advance(30)
        docker.exit(app.id, 137)

        await after.kubelet.start()
        try:
            [adopted] = after.kubelet.pods()
            runs = await after.runs(adopted, "app")
            assert [r.restarts for r in runs] == [0, 1]
            assert status_of(adopted)["restartCount"] == 1
            assert status_of(adopted)["lastState"]["terminated"]["exitCode"] == 137
        finally:
            await after.kubelet.stop()

    try:
        run(scenario())
    finally:
        before.close()
        after.close()


# --- (k) starts that fail -------------------------------------------------------------------------


def test_a_failed_start_leaves_no_container_and_is_retried_with_back_off(node: Node) -> None:
    docker = node.docker

    async def scenario() -> None:
        worker = await node.add_pod(make_pod())
        docker.fail_start("OCI runtime create failed: exec format error", name_contains="_app_")
        await worker.sync(full=True)
        reason, message = waiting(status_of(worker))
        assert reason == "CreateContainerError"
        assert "exec format error" in message
        assert await node.runs(worker, "app") == []  # a run that never started is not a run

        docker.advance(9.9)
        await worker.sync(full=True)
        assert len(node.created()) == 2
        docker.advance(0.1)
        await worker.sync(full=True)
        assert node.created() == ["pause", "app", "app"]
        [app] = await node.runs(worker, "app")
        assert app.restarts == 0
        assert "running" in status_of(worker)["state"]

    run(scenario())


def test_a_removed_sandbox_is_recreated(node: Node) -> None:
    docker = node.docker

    async def scenario() -> None:
        worker = await node.add_pod(make_pod())
        await worker.sync(full=True)
        old = worker.sandbox.id
        await docker.remove(old, force=True)
        # The first pass notices and publishes the pod as not ready; the next one recreates it.
        await worker.sync(full=True)
        assert condition(worker, "Ready") == "False"
        await worker.sync(full=True)
        assert worker.sandbox.id != old
        assert worker.sandbox.running
        assert node.events("SandboxChanged")

    run(scenario())


def test_containers_still_running_when_the_sandbox_restarts_are_restarted_in_its_new_namespace(node: Node) -> None:
    # A restarted pause container gets a new network namespace (and maybe a new IP); a
    # container that kept running stays in the old one, cut off from the pod's IP.
    docker = node.docker

    async def scenario() -> None:
        worker = await node.add_pod(make_pod())
        await worker.sync(full=True)
        [before] = await node.runs(worker, "app")
        docker.advance(10)
        docker.exit(worker.sandbox.id, 137)  # the pause container dies on its own
        await worker.sync(full=True)
        assert condition(worker, "Ready") == "False"
        assert node.created() == ["pause", "app"]

        docker.advance(1)
        await worker.sync(full=True)
        assert worker.sandbox.running
        assert not (await docker.inspect_container(before.id)).state.running
        runs = await node.runs(worker, "app")
        assert [r.restarts for r in runs] == [0, 1]
        assert runs[1].info.state.running
        assert status_of(worker)["restartCount"] == 1
        assert condition(worker, "Ready") == "True"
        assert node.events("SandboxChanged") == ["Pod sandbox changed, its running containers will be restarted."]

    run(scenario())


@pytest.mark.parametrize(
    ("policy", "code", "restarted", "phase"),
    [
        ("Never", 0, False, "Succeeded"),
        ("Never", 1, False, "Failed"),
        ("OnFailure", 0, False, "Succeeded"),
        ("OnFailure", 1, True, "Running"),
    ],
)
def test_restart_policy_decides_whether_an_exited_container_runs_again(
    node: Node, policy: str, code: int, restarted: bool, phase: str
) -> None:
    pod = make_pod()
    pod["spec"]["restartPolicy"] = policy

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        [app] = await node.runs(worker, "app")
        node.docker.advance(1)
        node.docker.exit(app.id, code)
        await worker.sync(full=True)
        assert len(await node.runs(worker, "app")) == (2 if restarted else 1)
        assert worker.status["phase"] == phase

    run(scenario())


# --- termination ----------------------------------------------------------------------------------


def test_deleting_a_pod_runs_pre_stop_stops_and_removes_everything(node: Node) -> None:
    docker = node.docker
    pod = make_pod(
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "cache", "emptyDir": {"medium": "Memory"}}],
        containers=[
            {
                "name": "app",
                "image": APP_IMAGE,
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/drain"]}}},
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "cache", "mountPath": "/cache"},
                ],
            }
        ],
    )
    uid = pod["metadata"]["uid"]

    async def scenario() -> None:
        worker = await node.add_pod(pod)
        await worker.sync(full=True)
        [app] = await node.runs(worker, "app")
        assert await docker.list_volumes(labels={"funade.pod.uid": uid})
        assert node.runtime.pod_dir(uid).exists()

        assert node.kubelet.delete_pod(uid, grace=5)
        assert worker.view()["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:20Z"
        worker.start()  # the worker's loop sees the deletion at once and tears the pod down
        await asyncio.wait_for(worker.gone.wait(), timeout=5)

        assert docker.execs == [(app.id, ("/bin/drain",))]
        assert await docker.list_containers(labels={"funade.pod.uid": uid}) == []
        assert await docker.list_volumes(labels={"funade.pod.uid": uid}) == []
        assert not node.runtime.pod_dir(uid).exists()
        assert node.kubelet.pods() == []
        assert node.events("Killing") == ["Stopping pod (grace period 5s)"]

    run(scenario())


# --- the fake keeps the Engine's rules ------------------------------------------------------------


def test_fake_docker_has_the_methods_of_docker_client() -> None:
    for name, member in inspect.getmembers(DockerClient):
        if name.startswith("_") and name not in ("__aenter__", "__aexit__"):
            continue
        fake = getattr(FakeDocker, name, None)
        assert fake is not None, f"FakeDocker lacks {name}"
        if isinstance(member, property):
            continue
        assert inspect.signature(fake) == inspect.signature(member), name
        assert inspect.iscoroutinefunction(fake) == inspect.iscoroutinefunction(member), name
        assert inspect.isasyncgenfunction(fake) == inspect.isasyncgenfunction(member), name


def test_fake_refuses_what_the_engine_refuses(docker: FakeDocker) -> None:
    async def scenario() -> None:
        await docker.create_network("pods")
        pause = await docker.create_container(ContainerSpec(name="pause", image=APP_IMAGE, network_mode="pods"))
        with pytest.raises(Conflict, match="already in use"):
            await docker.create_container(ContainerSpec(name="pause", image=APP_IMAGE))
        with pytest.raises(NotFound, match="No such image: nope:1"):
            await docker.create_container(ContainerSpec(name="bad", image="nope:1"))
        with pytest.raises(NotFound, match="network elsewhere not found"):
            await docker.create_container(ContainerSpec(name="bad", image=APP_IMAGE, network_mode="elsewhere"))
        with pytest.raises(DockerError, match="bind source path does not exist"):
            await docker.create_container(
                ContainerSpec(name="bad", image=APP_IMAGE, mounts=[Mount.bind("/no/such/dir", "/data")])
            )
        with pytest.raises(Conflict, match="not running"):
            await docker.kill(pause)
        app = await docker.create_container(
            ContainerSpec(name="app", image=APP_IMAGE, network_mode=f"container:{pause}")
        )
        with pytest.raises(Conflict, match="non running container"):
            await docker.start(app)
        assert (await docker.inspect_container(app)).state.status == "created"
        await docker.start(pause)
        await docker.start(app)
        with pytest.raises(Conflict, match="cannot remove a running container"):
            await docker.remove(app)
        await docker.remove(app, force=True)
        with pytest.raises(NotFound):
            await docker.start(app)
        with pytest.raises(NotFound):
            await docker.inspect_container(app)
        await docker.remove(app, missing_ok=True)
        await docker.stop(pause)
        with pytest.raises(Conflict, match="not running"):
            await docker.exec(pause, ["true"], timeout_s=1)

    run(scenario())


def test_fake_containers_get_an_ip_on_their_network_and_lose_it_when_they_exit(docker: FakeDocker) -> None:
    async def scenario() -> None:
        await docker.create_network("pods")
        a = await docker.create_container(ContainerSpec(name="one", image=APP_IMAGE, network_mode="pods"))
        b = await docker.create_container(ContainerSpec(name="two", image=APP_IMAGE, network_mode="pods"))
        assert (await docker.inspect_container(a)).networks["pods"].ip_address == ""
        await docker.start(a)
        await docker.start(b)
        ip_a = (await docker.inspect_container(a)).networks["pods"].ip_address
        ip_b = (await docker.inspect_container(b)).networks["pods"].ip_address
        assert ip_a
        assert ip_b
        assert ip_a != ip_b
        network = await docker.inspect_network("pods")
        assert network.subnet is not None
        assert {e.name for e in network.containers.values()} == {"one", "two"}
        docker.advance(2)
        docker.exit(a, 3)
        state = (await docker.inspect_container(a)).state
        assert (state.running, state.status, state.exit_code) == (False, "exited", 3)
        assert state.finished_at is not None
        assert state.finished_at.timestamp() == docker.now
        assert (await docker.inspect_container(a)).networks["pods"].ip_address == ""
        with pytest.raises(Conflict):
            docker.exit(a, 0)

    run(scenario())


def test_fake_start_failures_are_scriptable(docker: FakeDocker) -> None:
    async def scenario() -> None:
        container = await docker.create_container(ContainerSpec(name="one", image=APP_IMAGE))
        docker.fail_start("no space left on device")
        with pytest.raises(DockerError, match="no space left on device"):
            await docker.start(container)
        state = (await docker.inspect_container(container)).state
        assert (state.status, state.exit_code, state.error) == ("created", 128, "no space left on device")
        await docker.start(container)
        assert (await docker.inspect_container(container)).state.running

    run(scenario())


def test_fake_events_report_starts_and_deaths(docker: FakeDocker) -> None:
    async def scenario() -> None:
        seen: list[DockerEvent] = []
        container = await docker.create_container(ContainerSpec(name="one", image=APP_IMAGE, labels={"team": "shop"}))
        await docker.create_container(ContainerSpec(name="two", image=APP_IMAGE))

        subscribed_at = docker.now

        async def watch() -> None:
            # ``since`` makes the watcher see everything from now on, however late its task starts.
            stream = docker.events(
                {"type": ["container"], "event": ["die", "start"], "label": ["team"]}, since=subscribed_at
            )
            async for event in stream:
                seen.append(event)
                if event.action == "die":
                    return

        task = asyncio.create_task(watch())
        await docker.start("two")
        await docker.start(container)
        docker.advance(1)
        docker.exit(container, 2)
        await asyncio.wait_for(task, timeout=5)
        assert [(e.action, e.actor_id) for e in seen] == [("start", container), ("die", container)]
        assert seen[1].actor_attributes["exitCode"] == "2"
        assert seen[1].actor_attributes["team"] == "shop"
        assert seen[1].time.timestamp() == docker.now

        # ``since`` replays history; ``until`` in the past ends the stream.
        replayed = [e.action async for e in docker.events({"container": [container]}, since=0, until=docker.now)]
        assert replayed == ["create", "start", "die"]

    run(scenario())


def test_fake_logs_exec_and_images(docker: FakeDocker) -> None:
    async def scenario() -> None:
        container = await docker.create_container(ContainerSpec(name="one", image=APP_IMAGE))
        await docker.start(container)
        docker.add_log(container, "one\ntwo")
        docker.add_log(container, "oops", stream="stderr")
        assert [line.text async for line in docker.logs(container)] == ["one", "two", "oops"]
        assert [line.text async for line in docker.logs(container, tail=1, stderr=False)] == ["two"]

        docker.advance(1)
        followed_from = docker.now

        async def follow() -> list[str]:
            # ``since`` rather than ``tail=0``: lines logged before the task starts still count.
            return [line.text async for line in docker.logs(container, follow=True, since=followed_from)]

        followed = asyncio.create_task(follow())
        docker.add_log(container, "three")
        docker.exit(container, 0)
        assert await asyncio.wait_for(followed, timeout=5) == ["three"]

        await docker.start(container)
        docker.queue_exec(container, ExecResult(1, b"no"), TimeoutError("slow"))
        assert (await docker.exec(container, ["check"], timeout_s=1)).exit_code == 1
        with pytest.raises(TimeoutError):
            await docker.exec(container, ["check"], timeout_s=1)
        assert (await docker.exec(container, ["check"], timeout_s=1)).exit_code == 0

        assert await docker.image_exists("app:1")
        assert not await docker.image_exists("web:2")
        with pytest.raises(ImagePullError, match="pull access denied"):
            await docker.pull("web:2")
        docker.add_remote_image("web:2", user="1000")
        progress: list[str] = []
        await docker.pull("web:2", progress.append)
        assert progress[-1] == "Status: Downloaded newer image for web:2"
        assert (await docker.inspect_image("docker.io/library/web:2")).user == "1000"
        docker.pull_errors["web:3"] = "toomanyrequests"
        with pytest.raises(ImagePullError, match="toomanyrequests"):
            await docker.pull("web:3")

        image_id = await docker.import_image(b"tar", "funade/pause", "1", changes=['CMD ["/pause"]', "USER 65535"])
        info = await docker.inspect_image("funade/pause:1")
        assert (info.id, info.cmd, info.user) == (image_id, ("/pause",), "65535")
        with pytest.raises(Conflict, match="must force"):
            await docker.remove_image("app:1")

    run(scenario())


def test_fake_clock_can_be_injected() -> None:
    now = [100.0]
    fake = FakeDocker(clock=lambda: now[0])
    fake.add_image(APP_IMAGE)

    async def scenario() -> None:
        container = await fake.create_container(ContainerSpec(name="one", image=APP_IMAGE))
        now[0] = 105.0
        await fake.start(container)
        started = (await fake.inspect_container(container)).state.started_at
        assert started is not None
        assert started.timestamp() == 105.0

    run(scenario())
    with pytest.raises(TypeError):
        fake.advance(1)
    with pytest.raises(TypeError):
        fake.now = 1.0
    assert fake.now == 105.0


# --- postStart ------------------------------------------------------------------------------------


def test_a_failing_post_start_hook_kills_the_container_which_restarts(node: Node) -> None:
    docker = node.docker
    hook_ok = {"ok": False}

    def answer(info: ContainerInfo, cmd: tuple[str, ...]) -> ExecResult:
        assert cmd == ("/bin/sh", "-c", "warm-up")
        return ExecResult(0 if hook_ok["ok"] else 1, b"" if hook_ok["ok"] else b"warm-up: not found")

    docker.exec_handler = answer
    container = {
        "name": "app",
        "image": APP_IMAGE,
        "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", "warm-up"]}}},
    }

    async def scenario() -> None:
        worker = await node.add_pod(make_pod(containers=[container]))
        await worker.sync(full=True)
        [first] = await node.runs(worker, "app")
        assert not (await docker.inspect_container(first.id)).state.running
        assert node.events("FailedPostStartHook") == [
            "PostStartHook failed for container app: command ['/bin/sh', '-c', 'warm-up'] exited with 1: "
            "warm-up: not found"
        ]
        hook_ok["ok"] = True
        await worker.sync(full=True)  # the first restart is immediate
        runs = await node.runs(worker, "app")
        assert [r.restarts for r in runs] == [0, 1]
        assert (await docker.inspect_container(runs[-1].id)).state.running
        assert status_of(worker)["restartCount"] == 1

    run(scenario())
