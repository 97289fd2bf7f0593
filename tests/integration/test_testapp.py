"""Integration tests for the test application image (testapp/, scripts/build-test-images.sh).

Each test runs the image with the docker CLI on a user-defined bridge network and
talks to the container IP from the host.  No sleeps for synchronisation: every wait
goes through ``wait_until``, a deadline-bounded polling helper.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.integration import conftest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-test-images.sh"
IMAGE_REPO = "funade-testapp"
NAME_PREFIX = "funade-it-testapp-"
APP_PORT = 8080
BUSYBOX_APPLETS = (
    "sh",
    "cat",
    "ls",
    "echo",
    "sleep",
    "touch",
    "rm",
    "wget",
    "env",
    "id",
    "ps",
    "kill",
    "mkdir",
    "true",
    "false",
)

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """The suite's :func:`tests.integration.conftest.wait_until`, with this file's defaults."""
    return conftest.wait_until(predicate, timeout, what, interval, on_timeout)


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30).returncode == 0


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value} (comments skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        samples[series] = float(value)
    return samples


@dataclass
class App:
    name: str
    cid: str
    ip: str
    hostname: str
    url: str

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, trust_env=False, timeout=10.0, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as c:
            return c.get(path, **kwargs)

    def state(self) -> dict[str, Any]:
        out = docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.cid).stdout.split()
        return {"status": out[0], "exit_code": int(out[1])}

    def logs(self) -> str:
        proc = docker("logs", self.cid, check=False)
        return proc.stdout + proc.stderr

    def stderr_logs(self) -> str:
        return docker("logs", self.cid, check=False).stderr

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.ip, APP_PORT), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_exited(self, timeout: float = 20.0) -> int:
        state = wait_until(
            lambda: (s := self.state())["status"] == "exited" and s,
            timeout=timeout,
            what=f"container {self.name} to exit",
            on_timeout=self.logs,
        )
        return int(state["exit_code"])


@dataclass
class AppFactory:
    network: str
    started: list[str] = field(default_factory=list)

    def __call__(
        self,
        tag: str = "1.0.0",
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
        wait_ready: bool = True,
    ) -> App:
        name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
        args = ["run", "-d", "--name", name, "--network", self.network]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        args += [*extra, f"{IMAGE_REPO}:{tag}"]
        self.started.append(name)
        cid = docker(*args).stdout.strip()
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        ip = docker("inspect", "--format", fmt, cid).stdout.strip()
        hostname = docker("inspect", "--format", "{{.Config.Hostname}}", cid).stdout.strip()
        assert ip, f"container {name} has no IP on {self.network}"
        app = App(name=name, cid=cid, ip=ip, hostname=hostname, url=f"http://{ip}:{APP_PORT}")
        if wait_ready:
            # a bare TCP connect, so that no HTTP request is counted by the app
            wait_until(
                app.accepts_connections,
                timeout=20,
                what=f"{name} to listen on {ip}:{APP_PORT}",
                on_timeout=app.logs,
            )
        return app

    def cleanup(self) -> None:
        for name in self.started:
            docker("rm", "-f", "-v", name, check=False)
        self.started.clear()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def testapp_images() -> None:
    """Build (or confirm up to date) the funade-testapp:* images."""
    if not docker_available():
        pytest.skip("Docker Engine not reachable")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"build-test-images.sh failed:\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def network(testapp_images: None) -> Iterator[str]:
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
    docker("network", "create", "--driver", "bridge", "--label", "funade.test=testapp", name)
    try:
        yield name
    finally:
        leftover = docker("ps", "-aq", "--filter", f"network={name}", check=False).stdout.split()
        if leftover:
            docker("rm", "-f", "-v", *leftover, check=False)
        docker("network", "rm", name, check=False)


@pytest.fixture
def start_app(network: str) -> Iterator[AppFactory]:
    factory = AppFactory(network=network)
    try:
        yield factory
    finally:
        factory.cleanup()


# --------------------------------------------------------------------------- tests


def test_build_script_is_idempotent(testapp_images: None) -> None:
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600, check=True)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4, proc.stdout
    for tag, line in zip(("1.0.0", "2.0.0", "3.0.0", "root"), lines, strict=True):
        assert line.startswith(f"{IMAGE_REPO}:{tag} "), line
        assert line.endswith("up to date"), line


def test_image_metadata_and_busybox(testapp_images: None) -> None:
    fmt = (
        '{{.Config.User}}|{{index .Config.Labels "org.opencontainers.image.version"}}'
        '|{{index .Config.Labels "funade.test/source-hash"}}|{{json .Config.Entrypoint}}'
    )
    user, version, source_hash, entrypoint = (
        docker("image", "inspect", "--format", fmt, f"{IMAGE_REPO}:1.0.0").stdout.strip().split("|")
    )
    assert user == "10001:10001"
    assert version == "1.0.0"
    assert re.fullmatch(r"[0-9a-f]{64}", source_hash)
    assert entrypoint == '["/testapp"]'
    root_user = docker("image", "inspect", "--format", "{{.Config.User}}", f"{IMAGE_REPO}:root")
    assert root_user.stdout.strip() in {"0", "0:0"}

    script = "id -u; for a in " + " ".join(BUSYBOX_APPLETS) + "; do [ -x /bin/$a ] || echo missing $a; done"
    out = docker("run", "--rm", "--entrypoint", "/bin/sh", f"{IMAGE_REPO}:1.0.0", "-c", script)
    assert out.stdout.split() == ["10001"], out.stdout
    out = docker("run", "--rm", "--entrypoint", "/bin/id", f"{IMAGE_REPO}:root", "-u")
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_root_reports_version_and_host(start_app: AppFactory, version: str) -> None:
    app = start_app(version)
    with app.client() as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.text == f"version={version} host={app.hostname}\n"
        assert r.headers["x-version"] == version
        post = c.post("/", content=b"ignored body")
        assert post.status_code == 200
        assert post.text == r.text
        head = c.head("/")
        assert head.status_code == 200
        assert head.content == b""
        assert c.get("/no/such/path").status_code == 404
        assert c.get("/ready").status_code == 200
        assert c.get("/health").status_code == 200


def test_ready_fail(start_app: AppFactory) -> None:
    broken = start_app("3.0.0")
    r = broken.get("/ready")
    assert r.status_code == 503
    root = broken.get("/")
    assert root.status_code == 200
    assert root.text.startswith("version=3.0.0 ")
    assert broken.get("/health").status_code == 200

    # the same switch works at run time on a good image
    assert start_app("1.0.0", env={"READY_FAIL": "true"}).get("/ready").status_code == 503


def test_liveness_fail_after(start_app: AppFactory) -> None:
    # 2 s rather than 1 s leaves room for a slow container start before the first probe
    app = start_app(env={"LIVENESS_FAIL_AFTER": "2"})
    with app.client() as c:
        assert c.get("/health").status_code == 200
        wait_until(
            lambda: c.get("/health").status_code == 500,
            timeout=15,
            what="/health to turn 500",
            on_timeout=app.logs,
        )
        # ... and it stays that way, while the rest of the app keeps serving
        assert [c.get("/health").status_code for _ in range(5)] == [500] * 5
        assert c.get("/ready").status_code == 200
        assert c.get("/").status_code == 200


def test_crash_after(start_app: AppFactory) -> None:
    app = start_app(env={"CRASH_AFTER": "1"}, wait_ready=False)
    assert app.wait_exited(timeout=20) == 1
    assert "crashing as asked (CRASH_AFTER=1)" in app.stderr_logs()


def test_error_rate_half(start_app: AppFactory) -> None:
    app = start_app(env={"ERROR_RATE": "50"})
    with app.client() as c:
        statuses = [c.get("/").status_code for _ in range(20)]
        assert statuses.count(500) == 10
        assert statuses == [200, 500] * 10  # deterministic spread
        metrics = parse_metrics(c.get("/metrics").text)
    assert metrics['http_requests_total{status="500"}'] == 10
    assert metrics['http_requests_total{status="200"}'] == 10 + 1  # + the scrape itself


def test_metrics(start_app: AppFactory) -> None:
    app = start_app()
    with app.client() as c:
        for _ in range(3):
            assert c.get("/").status_code == 200
        for _ in range(2):
            assert c.get("/nope").status_code == 404
        assert c.get("/ready").status_code == 200
        r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert "# HELP http_requests_total " in text
    assert "# TYPE http_requests_total counter" in text
    assert "# TYPE process_start_time_seconds gauge" in text
    assert "# TYPE testapp_info gauge" in text
    m = parse_metrics(text)
    # 3x "/" + "/ready" + this scrape (the app counts every path, /metrics included)
    assert m['http_requests_total{status="200"}'] == 5
    assert m['http_requests_total{status="404"}'] == 2
    assert 'http_requests_total{status="500"}' not in m
    assert m['testapp_info{version="1.0.0"}'] == 1
    assert abs(m["process_start_time_seconds"] - time.time()) < 300
    # keep-alive: the readiness TCP probe plus this client's single connection
    assert m["http_connections_total"] == 2

    # counters are exact under concurrency (8 keep-alive clients x 50 requests)
    def hammer() -> None:
        with app.client() as cc:
            for _ in range(50):
                cc.get("/").raise_for_status()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    m = parse_metrics(app.get("/metrics").text)
    assert m['http_requests_total{status="200"}'] == 5 + 400 + 1


def test_env_file_and_sleep(start_app: AppFactory, tmp_path: Path) -> None:
    payload = tmp_path / "hello.txt"
    payload.write_text("mounted content\nline 2\n")
    payload.chmod(0o644)
    app = start_app(
        env={"FOO": "bar", "SPACED": "a b&c=d/é"},
        extra=["-v", f"{payload}:/data/hello.txt:ro"],
    )
    with app.client() as c:
        r = c.get("/env", params={"name": "FOO"})
        assert (r.status_code, r.text) == (200, "bar")
        r = c.get("/env", params={"name": "SPACED"})
        assert (r.status_code, r.text) == (200, "a b&c=d/é")
        assert c.get("/env", params={"name": "VERSION"}).text == "1.0.0"
        assert c.get("/env", params={"name": "NOT_SET_ANYWHERE"}).status_code == 404
        assert c.get("/env").status_code == 400

        r = c.get("/file", params={"path": "/data/hello.txt"})
        assert (r.status_code, r.text) == (200, "mounted content\nline 2\n")
        assert c.get("/file", params={"path": "/data/missing.txt"}).status_code == 404

        t0 = time.monotonic()
        r = c.get("/sleep", params={"ms": "300"})
        assert r.status_code == 200
        assert time.monotonic() - t0 >= 0.3

        # /burn uses CPU time, not wall time: the container's CPU counter grows by about that much.
        def cpu_ns() -> int:
            engine = httpx.Client(transport=httpx.HTTPTransport(uds="/var/run/docker.sock"), timeout=30)
            with engine:
                path = f"http://docker/v1.41/containers/{app.cid}/stats?stream=0&one-shot=1"
                stats = engine.get(path).json()
            return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])

        before = cpu_ns()
        r = c.get("/burn", params={"ms": "400"})
        assert (r.status_code, r.text) == (200, "burned 400 ms of CPU\n")
        assert cpu_ns() - before >= 400_000_000
        assert c.get("/burn").status_code == 400


def test_startup_delay(start_app: AppFactory) -> None:
    app = start_app(env={"STARTUP_DELAY": "1"}, wait_ready=False)
    wait_until(lambda: "starting, listening in 1 s" in app.logs(), timeout=10, what="startup log line")
    wait_until(lambda: app.get("/ready").status_code == 200, timeout=20, what="app to serve")
    assert "listening on 0.0.0.0:8080" in app.logs()


def test_sigterm_graceful_shutdown(start_app: AppFactory) -> None:
    app = start_app()
    result: dict[str, httpx.Response] = {}
    done = threading.Event()

    def slow_request() -> None:
        try:
            with app.client() as c:
                result["response"] = c.get("/sleep", params={"ms": "2500"})
        finally:
            done.set()

    worker = threading.Thread(target=slow_request)
    worker.start()
    try:
        # the slow request is in flight once the gauge counts it next to the scrape
        wait_until(
            lambda: parse_metrics(app.get("/metrics").text)["http_requests_in_flight"] >= 2,
            timeout=10,
            what="/sleep to be in flight",
        )
        docker("kill", "--signal", "TERM", app.cid)
        # new connections are refused while the in-flight request is still running
        wait_until(lambda: not app.accepts_connections(), timeout=5, what="listener to close")
        assert not done.is_set(), "in-flight request ended before the listener closed"
    finally:
        worker.join(timeout=30)
    assert not worker.is_alive()
    response = result.get("response")
    assert response is not None, "in-flight request failed during graceful shutdown"
    assert response.status_code == 200
    assert response.text == "slept 2500 ms\n"
    assert response.headers["connection"] == "close"

    assert app.wait_exited(timeout=20) == 0
    logs = app.logs()
    assert "shutting down (SIGTERM)" in logs
    assert "shutdown complete" in logs
