"""Fixtures of the local target's integration suite: a real funade server on a free port.

The session starts ``funade up`` with its own ``FUNADE_HOME`` (a tmp dir) and
``FUNADE_ADDRESS`` (127.0.0.1 and a free port), so it never meets a developer's server,
and stops it with ``funade down --delete-workloads`` at the end. Tests drive it the way a
user does (the ``funade`` CLI as a subprocess) and read state through the HTTP API.
Every wait is :func:`wait_until`: a predicate polled until a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import httpx
import pytest
import yaml

from funade.adapters.local.serviceproxy import files_of

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGES = ("funade-testapp:1.0.0", "funade-testapp:2.0.0", "funade-testapp:3.0.0", "funade-testapp:root")
APP_PORT = 8080

T = TypeVar("T")
Obj = dict[str, Any]


# -- waiting ------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Connection errors count as "not yet" (a pod still starting, a server restarting).
    After ``timeout`` seconds the test fails with ``message``, the last error and
    ``detail()`` (a snapshot of whatever explains the failure).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except (httpx.TransportError, OSError) as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            lines = [f"timed out after {timeout:g}s waiting for {message}"]
            if last_error is not None:
                lines.append(f"last error: {last_error!r}")
            if detail is not None:
                with contextlib.suppress(Exception):
                    lines.append(detail())
            pytest.fail("\n".join(lines))
        time.sleep(interval)


# -- helpers on API objects ----------------------------------------------------------------


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True and it is not terminating."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def live(pods: Sequence[Obj]) -> list[Obj]:
    """Pods that are not terminating (what maxSurge counts)."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def images(pod: Obj) -> list[str]:
    return [c["image"] for c in pod["spec"]["containers"]]


def pod_ip(pod: Obj) -> str:
    ip = (pod.get("status") or {}).get("podIP")
    assert ip, f"pod {pod['metadata']['name']} has no IP: {pod.get('status')}"
    return str(ip)


def container_status(pod: Obj, name: str | None = None) -> Obj:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if name is None or status["name"] == name:
            return dict(status)
    return {}


def waiting_reason(pod: Obj) -> str:
    return str((container_status(pod).get("state", {}).get("waiting") or {}).get("reason", ""))


def flat(text: str) -> str:
    """Whitespace collapsed: messages compared regardless of line wrapping."""
    return " ".join(text.split())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def funade_executable() -> str:
    """The ``funade`` script of the interpreter running the tests (the project's venv)."""
    beside = Path(sys.executable).parent / "funade"
    if beside.exists():
        return str(beside)
    found = shutil.which("funade")
    if found is None:
        pytest.fail("the funade command is not installed: run `make setup` (pip install -e '.[dev]')")
    return found


def docker_containers(instance: str) -> list[Obj]:
    """Every Docker container of one funade home: id, state, role, pod uid, container name."""
    fmt = (
        '{{.ID}}\t{{.State}}\t{{.Label "funade.role"}}\t{{.Label "funade.pod.uid"}}\t'
        '{{.Label "funade.container"}}\t{{.Names}}'
    )
    out = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--filter", f"label=funade.managed={instance}", "--format", fmt],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        cid, state, role, uid, container, name = line.split("\t")
        rows.append({"id": cid, "state": state, "role": role, "pod_uid": uid, "container": container, "name": name})
    return rows


def docker_inspect(container_id: str) -> Obj:
    out = subprocess.run(
        ["docker", "inspect", container_id], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return dict(json.loads(out)[0])


# -- the server ------------------------------------------------------------------------------


class CliResult(NamedTuple):
    """What one `funade` command did: (exit code, stdout, stderr)."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Funade:
    """One funade home and server address, driven like a user drives it."""

    def __init__(self, home: Path, address: str, manifests: Path) -> None:
        self.home = home
        self.address = address
        self.manifests = manifests
        self.env = dict(
            os.environ,
            FUNADE_HOME=str(home),
            FUNADE_ADDRESS=address,
            # Its own registry too: never the developer's on :5000.
            FUNADE_REGISTRY=f"127.0.0.1:{free_port()}",
            FUNADE_PROMETHEUS=f"127.0.0.1:{free_port()}",
            COLUMNS="250",
            NO_COLOR="1",
            # Autoscalers decide every 2 s instead of Kubernetes' 15 s, so the tests wait less.
            FUNADE_HPA_SYNC_SECONDS="2",
        )
        self.http = httpx.Client(base_url=f"http://{address}", timeout=30.0)

    # -- the CLI ------------------------------------------------------------------------

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 180.0, env: dict[str, str] | None = None
    ) -> CliResult:
        """Run ``funade ARGS`` against this server; returns (exit code, stdout, stderr)."""
        done = subprocess.run(
            [funade_executable(), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else self.env,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def write(self, *objs: Obj, name: str | None = None) -> Path:
        """A manifest file holding ``objs`` as a multi-document YAML stream."""
        path = self.manifests / (name or f"{uuid.uuid4().hex[:10]}.yaml")
        path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
        return path

    def apply(self, namespace: str, *objs: Obj, args: Sequence[str] = (), timeout: float = 180.0) -> CliResult:
        """``funade apply -f FILE -n NAMESPACE [ARGS]`` with ``objs`` written to FILE."""
        return self.cli("apply", "-f", str(self.write(*objs)), "-n", namespace, *args, timeout=timeout)

    # -- the API ------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        response = self.http.get(f"/v1/objects/{kind}/{namespace}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def obj(self, kind: str, namespace: str, name: str) -> Obj:
        found = self.find(kind, namespace, name)
        assert found is not None, f"{kind} {namespace}/{name} does not exist"
        return found

    def pods(self, namespace: str, selector: str | None = None) -> list[Obj]:
        return list(self.get("/v1/objects/Pod", namespace=namespace, selector=selector)["items"])

    def pod(self, namespace: str, name: str) -> Obj:
        return self.obj("Pod", namespace, name)

    def deployment(self, namespace: str, name: str) -> Obj:
        return self.obj("Deployment", namespace, name)

    def events(self, namespace: str) -> list[Obj]:
        return list(self.get("/v1/events", namespace=namespace)["items"])

    def snapshot(self, namespace: str) -> str:
        """Pods, deployments and recent events of a namespace, for failure messages."""
        parts = []
        for args in (("get", "pods", "-o", "wide"), ("get", "deployments"), ("events",)):
            r = self.cli(*args, "-n", namespace, timeout=30)
            parts.append(f"$ funade {' '.join(args)} -n {namespace}\n{r.stdout}{r.stderr}")
        return "\n".join(parts)

    def wait_until(
        self,
        predicate: Callable[[], T],
        timeout: float,
        message: str,
        interval: float = 0.1,
        namespace: str | None = None,
    ) -> T:
        """:func:`wait_until`, showing the namespace's state when it times out."""
        detail = (lambda: self.snapshot(namespace)) if namespace else None
        return wait_until(predicate, timeout, message, interval, detail)

    # -- the process --------------------------------------------------------------------

    @property
    def instance(self) -> str:
        return (self.home / "instance-id").read_text().strip()

    def server_pid(self) -> int:
        return int((self.home / "server.pid").read_text().strip())

    def alive(self) -> bool:
        try:
            return self.http.get("/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def up(self) -> None:
        # `funade up` listens on --address and ignores FUNADE_ADDRESS: pass it explicitly, or it
        # would find a developer's server on the default port "already running".
        r = self.cli("up", "--address", self.address, "--timeout", "60", timeout=90)
        assert "warning" not in r.stderr, f"funade up warned:\n{r.output}"
        assert r.code == 0, f"funade up failed:\n{r.output}\n{self.log_tail()}"
        assert self.get("/v1/status")["home"] == str(self.home), "another funade server answers on our address"

    def down(self) -> CliResult:
        return self.cli("down", "--delete-workloads", timeout=120)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.home / "server.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no server.log)"
        return "server.log:\n" + "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        self.http.close()


def ensure_test_images() -> None:
    """Build the test images when one is missing (the script is idempotent and quick when done)."""
    missing = [
        image
        for image in TEST_IMAGES
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode != 0
    ]
    if missing:
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build-test-images.sh")], check=True, timeout=600)


@contextlib.contextmanager
def running_server(tmp: Path) -> Iterator[Funade]:
    """A funade server of its own (home under ``tmp``, a free port), stopped and cleaned afterwards."""
    home = tmp / "home"
    manifests = tmp / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    funade = Funade(home, f"127.0.0.1:{free_port()}", manifests)
    try:
        funade.up()
        yield funade
    finally:
        r = funade.down()
        funade.close()
        assert r.code == 0, f"funade down failed:\n{r.output}"
        if (home / "instance-id").exists():
            left = docker_containers(funade.instance)
            assert not left, f"funade down --delete-workloads left containers: {left}"
        proxy_files = files_of(home)
        assert not proxy_files.exists(), f"funade down --delete-workloads left {proxy_files}"


@pytest.fixture(scope="session")
def funade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funade]:
    """The session's funade server."""
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not installed: run `make setup`")
    ensure_test_images()
    with running_server(tmp_path_factory.mktemp("funade")) as server:
        yield server


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")[:40].strip("-")
    return f"it-{slug}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def ns(funade: Funade, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own; deleting it afterwards removes its objects and pods."""
    name = _namespace_name(request.node.name)
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    r = funade.cli("apply", "-f", "-", input=manifest)
    assert r.code == 0, r.output
    yield name
    r = funade.cli("delete", "namespace", name, timeout=60)
    assert r.code == 0, r.output
    funade.wait_until(lambda: not funade.pods(name), 90, f"the pods of namespace {name} to be removed")
