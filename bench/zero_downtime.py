"""Zero-downtime benchmark: a funade rolling update behind a Service against ``docker-compose up -d``.

Why it exists: a rolling update is only as good as the traffic around it. On one host,
what users run today is ``docker-compose up -d``, which recreates the container. funade
claims that a Deployment behind a Service (HAProxy on loopback, Ready pods only,
graceful drain) rolls to a new version without failing a single request. This bench
measures both under the same constant load, with the same image pair
(``funade-testapp:1.0.0`` → ``2.0.0``, 3 s start-up):

* requests, failures by kind (non-2xx, reset, refused, remote disconnect, 1 s timeout)
  and p50 / p99 / max latency in steady state (10 s before the update) and during the
  update (from the update command's start to its end, plus 2 s; the end is when the
  new version first answers if that is later, because ``docker-compose up -d`` returns
  seconds before the new app listens);
* on funade only: a pod killed with ``docker kill`` under load (failures, and the time
  until its endpoint is removed), and a 90/10 weighted split (a TrafficSplit between the
  Deployment and a one-pod canary; the observed share over 10,000 requests).

The load is 8 closed-loop HTTP/1.1 clients of our own (asyncio, keep-alive, reconnect
after an error) in a child process. Everything listens on 127.0.0.1 only. The bench
starts its own funade server (temporary ``FUNADE_HOME``, free ports) and its own compose
project, and removes both on exit, failure or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from harness import (
    FUNADE,
    BenchError,
    FunadeServer,
    Obj,
    fmt_ratio,
    fmt_seconds,
    free_port,
    guarded,
    machine,
    noise_notes,
    other_load,
    report,
    require_images,
    rounded,
    run,
    testapp_deployment,
    wait_for,
)
from load import HTTP_ERROR, KINDS, OK, Load, Profile, Records
from rich.console import Console
from rich.table import Table

IMAGE_V1 = "funade-testapp:1.0.0"
IMAGE_V2 = "funade-testapp:2.0.0"
STARTUP_DELAY = "3"
APP_PORT = 8080
REPLICAS = 3
NAMESPACE = "zd"
NAME = "web"

CLIENTS = 8
REQUEST_TIMEOUT_S = 1.0  # a request (connect included) that takes longer is a failure
FAILURE_PAUSE_S = 0.01  # a client waits this long after a failure before it reconnects
WARMUP_S = 1.0  # load before the steady-state window (connections opened, caches warm)
STEADY_S = 10.0  # the steady-state window, right before the update command
TAIL_S = 2.0  # the update window runs this long past the update command's end
SETTLE_S = 3.0  # quiet time between the update window and the pod kill
KILL_WINDOW_S = 10.0  # failures counted this long after `docker kill`
SPLIT_REQUESTS = 10_000  # requests sent through the 90/10 TrafficSplit
POLL_S = 0.05
WAIT_TIMEOUT_S = 120.0  # any single wait; the bench never hangs
SERVICE_TIMEOUT_S = 60.0  # how long a fresh Service may take to answer
# Closed loop; a failure (a non-2xx answer too) drops the connection, then a pause: without
# it a refused port turns a client into a busy loop. No write buffer, as when it was measured.
LOAD = Profile(
    CLIENTS,
    request_timeout=REQUEST_TIMEOUT_S,
    failure_pause=FAILURE_PAUSE_S,
    keep_after_non_2xx=False,
    unbuffered=True,
)

err = Console(stderr=True, highlight=False)


# -- small helpers ---------------------------------------------------------------------


def answers(port: int, path: str = "/ready") -> bool:
    """GET http://127.0.0.1:port/path answers 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def serves_version(port: int, major: str) -> bool:
    """GET http://127.0.0.1:port/ answers 200 from the app's version ``major``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status == 200 and (response.getheader("X-Version") or "").split(".")[0] == major
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# -- windows and figures ---------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Window:
    """What the load saw between two instants (by request start time)."""

    name: str
    seconds: float
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    first_failure_s: float | None = None  # seconds after the window's start
    last_failure_s: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def as_json(self) -> Obj:
        return {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "failed": self.failed,
            "failures": self.failures,
            "non_2xx_statuses": self.statuses,
            "versions": self.versions,
            "p50_ms": rounded(self.p50_ms),
            "p99_ms": rounded(self.p99_ms),
            "max_ms": rounded(self.max_ms),
            "first_failure_s": rounded(self.first_failure_s),
            "last_failure_s": rounded(self.last_failure_s),
        }


def window(records: Records, name: str, start: float, end: float) -> Window:
    """Count requests that started in [start, end); latencies are those of successful requests."""
    w = Window(name, end - start)
    ok: list[float] = []
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    for t, lat, outcome, status, version in zip(
        records.start, records.latency, records.outcome, records.status, records.version, strict=True
    ):
        if not start <= t < end:
            continue
        w.requests += 1
        if outcome == OK:
            ok.append(lat)
            versions[f"v{version}"] += 1
            continue
        kinds[KINDS[outcome]] += 1
        if outcome == HTTP_ERROR:
            statuses[str(status)] += 1
        at = t - start
        w.first_failure_s = at if w.first_failure_s is None else min(w.first_failure_s, at)
        w.last_failure_s = at if w.last_failure_s is None else max(w.last_failure_s, at)
    ok.sort()
    w.failures, w.statuses, w.versions = dict(kinds), dict(statuses), dict(sorted(versions.items()))
    if ok:
        w.p50_ms = 1000 * (percentile(ok, 50) or 0.0)
        w.p99_ms = 1000 * (percentile(ok, 99) or 0.0)
        w.max_ms = 1000 * ok[-1]
    return w


@dataclass
class Scenario:
    """One tool's rolling update under load."""

    tool: str
    update_s: float = 0.0
    first_v2_s: float | None = None  # when the new version first answered, after the update command's start
    steady: Window | None = None
    update: Window | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> Obj:
        return {
            "tool": self.tool,
            "update_command_s": round(self.update_s, 3),
            "first_v2_s": rounded(self.first_v2_s),
            "steady": self.steady.as_json() if self.steady else None,
            "update": self.update.as_json() if self.update else None,
            "notes": self.notes,
        }


def measure_update(port: int, update: Callable[[], object]) -> tuple[float, Records, float, float]:
    """Load ``port``, run ``update`` after the steady window; return (update s, records, t0, t1)."""
    load = Load(port, LOAD)
    try:
        time.sleep(WARMUP_S + STEADY_S)
        t0 = time.monotonic()
        update()
        t1 = time.monotonic()
        wait_for(f"version 2 to answer on 127.0.0.1:{port}", lambda: serves_version(port, "2"), interval=POLL_S)
        time.sleep(TAIL_S)
        records = load.stop()
    finally:
        load.kill()
    return t1 - t0, records, t0, t1


# -- manifests -------------------------------------------------------------------------


def manifest(image: str, node_port: int) -> list[Obj]:
    """A Namespace, the Deployment (3 replicas, surge 1, unavailable 0) and its NodePort Service."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        testapp_deployment(NAME, NAMESPACE, REPLICAS, image, STARTUP_DELAY, APP_PORT),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "type": "NodePort",
                "selector": {"app": NAME},
                "ports": [{"name": "http", "port": 80, "targetPort": APP_PORT, "nodePort": node_port}],
            },
        },
    ]


def compose_file(image: str, port: int) -> str:
    return yaml.safe_dump(
        {
            "version": "3.8",
            "services": {
                "app": {
                    "image": image,
                    "environment": {"STARTUP_DELAY": STARTUP_DELAY},
                    "ports": [f"127.0.0.1:{port}:{APP_PORT}"],
                }
            },
        },
        sort_keys=False,
    )


# -- funade side -------------------------------------------------------------------------


@dataclass
class KillResult:
    pod: str = ""
    window: Window | None = None
    endpoint_removed_s: float | None = None  # None: no endpoints API, or never removed
    endpoint_back_s: float | None = None
    how: str = ""

    def as_json(self) -> Obj:
        return {
            "pod": self.pod,
            "window": self.window.as_json() if self.window else None,
            "endpoint_removed_s": rounded(self.endpoint_removed_s),
            "endpoint_back_s": rounded(self.endpoint_back_s),
            "how": self.how,
        }


class FunadeSide(FunadeServer):
    """A private funade server (own home, own ports) and the calls the benchmark makes."""

    def __init__(self, workdir: Path) -> None:
        super().__init__("funade-zd-")
        self.workdir = workdir
        self.node_port = free_port(30000, 32767)

    def start(self, *args: str, timeout: float = 60.0) -> Obj:
        return super().start("--no-registry", "--no-prometheus", *args, timeout=timeout)

    def apply(self, image: str) -> float:
        """`funade apply -f … --wait` as a user runs it; return its wall time."""
        path = self.workdir / f"funade-{image.rsplit(':', 1)[1]}.yaml"
        path.write_text(yaml.safe_dump_all(manifest(image, self.node_port), sort_keys=False))
        t0 = time.monotonic()
        self.cli("apply", "-f", str(path), "--wait", "--timeout", str(WAIT_TIMEOUT_S), timeout=WAIT_TIMEOUT_S + 10)
        return time.monotonic() - t0

    def app_containers(self) -> dict[str, str]:
        """Running app containers of our pods: pod name → container id."""
        out = run(
            [
                "docker", "ps", "--no-trunc",
                "--filter", f"label=funade.managed={self.instance}",
                "--filter", "label=funade.role=container",
                "--format", '{{.ID}} {{.Label "funade.pod.name"}}',
            ]
        )  # fmt: skip
        return {pod: cid for cid, pod in (line.split() for line in out.splitlines() if line.strip())}

    def endpoints(self) -> Obj | None:
        """`funade get endpoints NAME -o json`, or None when funade has no such kind."""
        try:
            out = self.cli("get", "endpoints", NAME, "-n", NAMESPACE, "-o", "json", timeout=10)
        except BenchError:
            return None
        obj: Obj = json.loads(out)
        return obj

    @property
    def endpoints_path(self) -> str:
        return f"/v1/objects/Endpoints/{NAMESPACE}/{NAME}"

    def endpoints_api(self) -> Obj:
        """The object `funade get endpoints` prints, from the API (no CLI start-up: 50 ms resolution)."""
        host, port = self.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5.0)
        try:
            conn.request("GET", self.endpoints_path)
            response = conn.getresponse()
            body = response.read()
            obj: Obj = json.loads(body) if response.status == 200 else {}
            return obj
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        finally:
            conn.close()


def _ready_endpoint_names(obj: Obj) -> set[str] | None:
    """Names (pod names or IPs) of the ready endpoints in `get endpoints -o json`, whatever its shape.

    Accepts a Kubernetes ``Endpoints`` (subsets[].addresses[] with targetRef / ip), or a
    list of items with a name or pod and a state. None when the shape is unknown.
    """
    if "subsets" in obj:
        names = set()
        for subset in obj.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                names.add(str(ref.get("name") or address.get("ip")))
        return names
    items = obj.get("items", obj.get("endpoints"))
    if isinstance(items, list):
        names = set()
        for item in items:
            if str(item.get("state", "ready")).lower() != "ready" and item.get("ready") is not True:
                continue
            names.add(str(item.get("pod") or item.get("name") or item.get("ip") or item.get("address")))
        return names
    return None


class PodKill:
    """`docker kill` one pod's app container under load; see when its endpoint goes."""

    def __init__(self, side: FunadeSide) -> None:
        self.side = side

    def run(self) -> tuple[KillResult, float]:
        result = KillResult()
        probe = self.side.endpoints()
        names = None if probe is None else _ready_endpoint_names(probe)
        pods = self.side.app_containers()
        if not pods:
            raise BenchError("no running pod to kill")
        pod = sorted(pods)[0]
        result.pod = pod
        ip = self._pod_ip(pods[pod])
        key = {pod, ip}
        t_kill = time.monotonic()
        run(["docker", "kill", pods[pod]])
        if names is not None and key & names:
            result.how = (
                f"`funade get endpoints` lists it; polled its API (GET {self.side.endpoints_path}) every {POLL_S:g} s"
            )
            deadline = t_kill + KILL_WINDOW_S
            while time.monotonic() < deadline:
                current = _ready_endpoint_names(self.side.endpoints_api()) or set()
                now = time.monotonic() - t_kill
                if result.endpoint_removed_s is None and not key & current:
                    result.endpoint_removed_s = now
                elif result.endpoint_removed_s is not None and key & current:
                    result.endpoint_back_s = now
                    break
                time.sleep(POLL_S)
        else:
            result.how = (
                "no `funade get endpoints` yet: time until the last failure"
                if probe is None
                else f"`get endpoints` output not understood or pod not listed: {json.dumps(probe)[:200]}"
            )
        time.sleep(max(0.0, t_kill + KILL_WINDOW_S - time.monotonic()))
        return result, t_kill

    @staticmethod
    def _pod_ip(container: str) -> str:
        out = run(["docker", "inspect", "--format", "{{json .HostConfig.NetworkMode}}", container]).strip()
        mode = json.loads(out)  # container:<sandbox id>: the pod's IP is the sandbox's
        target = mode.split(":", 1)[1] if mode.startswith("container:") else container
        ips = run(
            ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", target]
        )
        return (ips.split() or [""])[0]


# -- peer side: docker-compose ------------------------------------------------------------


class ComposeSide:
    """docker-compose v1 with one service published on 127.0.0.1:PORT."""

    def __init__(self, workdir: Path, token: str) -> None:
        self.dir = workdir / "compose"
        self.dir.mkdir()
        self.project = f"funade-zd-{token}"
        self.port = free_port()
        self.started = False

    def compose(self, *args: str, timeout: float = WAIT_TIMEOUT_S) -> str:
        return run(["docker-compose", "-p", self.project, *args], cwd=self.dir, timeout=timeout)

    def up(self, image: str) -> float:
        (self.dir / "docker-compose.yml").write_text(compose_file(image, self.port))
        self.started = True
        t0 = time.monotonic()
        self.compose("up", "-d")
        return time.monotonic() - t0

    def version(self) -> str:
        return run(["docker-compose", "version", "--short"]).strip()

    def cleanup(self) -> list[str]:
        if not self.started:
            return []
        try:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "1")
        except BenchError as exc:
            return [f"docker-compose down: {exc}"]
        return []


# -- the run -----------------------------------------------------------------------------


class Bench:
    def __init__(self, only: str | None) -> None:
        self.only = only
        self.token = os.urandom(3).hex()
        self.workdir = Path(tempfile.mkdtemp(prefix="funade-zd-work-"))
        self.funade = FunadeSide(self.workdir)
        self.peer = ComposeSide(self.workdir, self.token)
        self.scenarios: dict[str, Scenario] = {}
        self.kill: KillResult | None = None
        self.split: Obj = {}

    def check(self) -> None:
        require_images(IMAGE_V1, IMAGE_V2)
        if self.only != "funade" and shutil.which("docker-compose") is None:
            raise BenchError("docker-compose is missing: run `bash scripts/setup.sh` (Debian package docker-compose)")

    def cleanup(self) -> list[str]:
        problems = self.peer.cleanup() + self.funade.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    # funade

    def run_funade(self) -> None:
        side = self.funade
        err.print(f"funade: private server on {side.address} (home {side.home}), Service on 127.0.0.1:{side.node_port}")
        side.start()
        took = side.apply(IMAGE_V1)
        err.print(f"  v1 applied and available in {took:.1f} s; waiting for the Service to answer")
        wait_for(
            f"the Service on 127.0.0.1:{side.node_port} to answer (funade serves Services through HAProxy)",
            lambda: answers(side.node_port),
            timeout=SERVICE_TIMEOUT_S,
            interval=0.2,
        )
        scenario = Scenario("funade")
        err.print(f"  load: {CLIENTS} clients for {WARMUP_S + STEADY_S:g} s, then `funade apply -f … --wait` (v2)")
        load = Load(side.node_port, LOAD)
        try:
            time.sleep(WARMUP_S + STEADY_S)
            t0 = time.monotonic()
            scenario.update_s = side.apply(IMAGE_V2)
            t1 = time.monotonic()
            err.print(f"  rolled to v2 in {scenario.update_s:.1f} s")
            time.sleep(TAIL_S + SETTLE_S)
            err.print("  `docker kill` of one pod's app container")
            self.kill, t_kill = PodKill(side).run()
            records = load.stop()
        finally:
            load.kill()
        self._windows(scenario, records, t0, t1)
        self.kill.window = window(records, "kill", t_kill, t_kill + KILL_WINDOW_S)
        if self.kill.window.failed == 0 and self.kill.endpoint_removed_s is None:
            self.kill.how += " (no failure at all)"
        self.scenarios["funade"] = scenario
        self.split = self._weighted_split()

    def _weighted_split(self) -> Obj:
        """A 90/10 TrafficSplit between the Deployment (v2 now) and a one-pod v1 canary; 10,000 requests."""
        side = self.funade
        canary = manifest(IMAGE_V1, side.node_port)[1]
        canary["metadata"]["name"] = f"{NAME}-canary"
        canary["spec"]["replicas"] = 1
        canary["spec"]["selector"] = {"matchLabels": {"app": NAME, "track": "canary"}}
        canary["spec"]["template"]["metadata"]["labels"] = {"app": NAME, "track": "canary"}
        main = manifest(IMAGE_V2, side.node_port)[1]
        main["spec"]["template"]["metadata"]["labels"]["track"] = "stable"
        split = {
            "apiVersion": "local.funade.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "service": NAME,
                "subsets": [
                    {"name": "stable", "labels": {"track": "stable"}},
                    {"name": "canary", "labels": {"track": "canary"}},
                ],
                "weights": {"stable": 90, "canary": 10},
            },
        }
        path = side.workdir / "funade-split.yaml"
        path.write_text(yaml.safe_dump_all([main, canary, split], sort_keys=False))
        side.cli("apply", "-f", str(path), "--wait", "--timeout", str(WAIT_TIMEOUT_S), timeout=WAIT_TIMEOUT_S + 10)
        wait_for("the canary takes requests", lambda: serves_version(side.node_port, "1"), interval=0.2)
        counts = {"1": 0, "2": 0, "failed": 0}
        with httpx.Client(base_url=f"http://127.0.0.1:{side.node_port}", timeout=5) as client:
            for _ in range(SPLIT_REQUESTS):
                try:
                    body = client.get("/").text
                except httpx.HTTPError:
                    counts["failed"] += 1
                    continue
                counts["1" if body.startswith("version=1") else "2"] += 1
        share = 100 * counts["1"] / max(1, counts["1"] + counts["2"])
        return {"status": "measured", "requests": SPLIT_REQUESTS, "canary_percent": round(share, 2), **counts}

    # peer

    def run_peer(self) -> None:
        side = self.peer
        err.print(f"peer: docker-compose {side.version()}, project {side.project} on 127.0.0.1:{side.port}")
        took = side.up(IMAGE_V1)
        wait_for(f"the compose service on 127.0.0.1:{side.port}", lambda: answers(side.port), interval=0.1)
        err.print(f"  v1 up in {took:.1f} s (+ start-up); load, then `docker-compose up -d` with v2")
        scenario = Scenario("docker-compose")
        took, records, t0, t1 = measure_update(side.port, lambda: side.up(IMAGE_V2))
        scenario.update_s = took
        err.print(f"  recreated with v2 in {took:.1f} s")
        self._windows(scenario, records, t0, t1)
        self.scenarios["peer"] = scenario

    @staticmethod
    def _windows(scenario: Scenario, records: Records, t0: float, t1: float) -> None:
        """Steady state before ``t0``; the update from ``t0`` to its end + TAIL_S.

        The update ends when the command returns or, if later, when the new version first
        answers: `docker-compose up -d` returns as soon as the new container runs, seconds
        before the app listens, and the outage goes on until then.
        """
        first_v2 = next(
            (
                t + lat
                for t, lat, outcome, version in zip(
                    records.start, records.latency, records.outcome, records.version, strict=True
                )
                if t >= t0 and outcome == OK and version == 2
            ),
            None,
        )
        scenario.first_v2_s = None if first_v2 is None else first_v2 - t0
        end = max(t1, first_v2 or t1)
        scenario.steady = window(records, "steady", t0 - STEADY_S, t0)
        scenario.update = window(records, "update", t0, end + TAIL_S)
        steady = scenario.steady
        if set(steady.versions) != {"v1"}:
            scenario.notes.append(f"steady state served {steady.versions}, expected v1 only")
        if first_v2 is None:
            scenario.notes.append("the new version never answered during the update window")

    def execute(self) -> None:
        if self.only in (None, "funade"):
            self.run_funade()
        if self.only in (None, "peer"):
            self.run_peer()

    def result(self, started: float) -> Obj:
        return {
            "machine": machine(docker=True),
            "load": {
                "clients": CLIENTS,
                "request_timeout_s": REQUEST_TIMEOUT_S,
                "pause_after_failure_s": FAILURE_PAUSE_S,
                "steady_window_s": STEADY_S,
                "update_tail_s": TAIL_S,
            },
            "scenarios": {k: s.as_json() for k, s in self.scenarios.items()},
            "pod_kill": self.kill.as_json() if self.kill else None,
            "weighted_split": self.split,
            "other_load": other_load(self.funade.instance),
            "total_seconds": round(time.monotonic() - started, 1),
        }


# -- output ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _ratio(a: float | None, b: float | None) -> str:
    return fmt_ratio(a, b, over_zero="∞")


def _failed(w: Obj | None) -> str:
    if w is None:
        return "—"
    if not w["failed"]:
        return "0"
    return f"{w['failed']:,} ({100 * w['failed'] / max(1, w['requests']):.1f} %)"


def table(result: Obj) -> Table:
    f = result["scenarios"].get("funade")
    p = result["scenarios"].get("peer")
    load = result["load"]
    t = Table(
        title=f"funade zero-downtime benchmark ({load['clients']} clients, v1 → v2, 3 s start-up)",
        caption=(
            "peer = docker-compose up -d with the new image (recreates the container); ratio = funade / peer; "
            "latencies of successful requests; a failure is non-2xx, reset, refused, remote disconnect or "
            f"no answer in {load['request_timeout_s']:g} s"
        ),
    )
    t.add_column("figure")
    t.add_column("funade (3 replicas, Service)", justify="right")
    t.add_column("peer (docker-compose)", justify="right")
    t.add_column("ratio", justify="right")

    def get(s: Obj | None, win: str, key: str) -> Any:
        return None if s is None or s[win] is None else s[win][key]

    t.add_row(
        "update command (wall time)",
        fmt_seconds(f and f["update_command_s"]),
        fmt_seconds(p and p["update_command_s"]),
        _ratio(f and f["update_command_s"], p and p["update_command_s"]),
    )
    t.add_row("  v2 first answered after", fmt_seconds(f and f["first_v2_s"]), fmt_seconds(p and p["first_v2_s"]), "")
    for win, label in (
        ("steady", f"steady state ({load['steady_window_s']:g} s before the update)"),
        ("update", f"during the update (to its end + {load['update_tail_s']:g} s)"),
    ):
        t.add_section()
        t.add_row(label, "", "", "")
        if win == "update":
            t.add_row("  window", fmt_seconds(get(f, win, "seconds")), fmt_seconds(get(p, win, "seconds")), "")
        t.add_row(
            "  requests", _int(get(f, win, "requests")), _int(get(p, win, "requests")),
            _ratio(get(f, win, "requests"), get(p, win, "requests")),
        )  # fmt: skip
        t.add_row(
            "  failed", _failed(f and f[win]), _failed(p and p[win]),
            _ratio(get(f, win, "failed"), get(p, win, "failed")),
        )  # fmt: skip
        kinds = sorted({k for s in (f, p) if s and s[win] for k in s[win]["failures"]})
        for kind in kinds:
            fk = None if get(f, win, "failures") is None else get(f, win, "failures").get(kind, 0)
            pk = None if get(p, win, "failures") is None else get(p, win, "failures").get(kind, 0)
            t.add_row(f"    {kind}", _int(fk), _int(pk), "")
        for key, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
            t.add_row(
                f"  {name} latency", _ms(get(f, win, key)), _ms(get(p, win, key)),
                _ratio(get(f, win, key), get(p, win, key)),
            )  # fmt: skip
    t.add_section()
    t.add_row(
        "p99 during the update / steady p99",
        _ratio(get(f, "update", "p99_ms"), get(f, "steady", "p99_ms")),
        _ratio(get(p, "update", "p99_ms"), get(p, "steady", "p99_ms")),
        "",
    )
    kill = result.get("pod_kill")
    if kill:
        w = kill["window"]
        t.add_section()
        t.add_row(f"pod killed (docker kill), next {w['seconds']:g} s", "", "", "")
        t.add_row("  requests", _int(w["requests"]), "n/a", "")
        t.add_row("  failed", _failed(w), "n/a", "")
        for kind, n in sorted(w["failures"].items()):
            t.add_row(f"    {kind}", _int(n), "n/a", "")
        if kill["endpoint_removed_s"] is not None:
            t.add_row("  endpoint removed after", fmt_seconds(kill["endpoint_removed_s"]), "n/a", "")
            t.add_row("  endpoint back (restarted, ready) after", fmt_seconds(kill["endpoint_back_s"]), "n/a", "")
        else:
            last = w["last_failure_s"]
            t.add_row(
                "  failures stopped after (no endpoints API)",
                "no failure" if last is None else fmt_seconds(last),
                "n/a",
                "",
            )
        t.add_row("  p99 / max latency", f"{_ms(w['p99_ms'])} / {_ms(w['max_ms'])}", "n/a", "")
    split = result.get("weighted_split") or {}
    if split.get("status") == "measured":
        t.add_section()
        off = abs(split["canary_percent"] - 10.0)
        t.add_row(
            f"90/10 TrafficSplit, {split['requests']:,} requests: canary share",
            f"{split['canary_percent']:.2f} % ({off:.2f} points off; {split['failed']} failed)",
            "n/a",
            "",
        )
    return t


def notes(result: Obj) -> list[str]:
    lines = []
    for s in result["scenarios"].values():
        for n in s["notes"]:
            lines.append(f"[yellow]{s['tool']}: {n}[/yellow]")
        u = s["update"]
        if u and u["failed"]:
            lines.append(
                f"{s['tool']}: failures from {u['first_failure_s']:.2f} s to {u['last_failure_s']:.2f} s after the "
                f"update command started; non-2xx statuses {u['non_2xx_statuses'] or 'none'}"
            )
    kill = result.get("pod_kill")
    if kill:
        lines.append(f"pod kill ({kill['pod']}): {kill['how']}")
    return lines + noise_notes(result["other_load"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    parser.add_argument("--only", choices=("funade", "peer"), help="run one side only")
    args = parser.parse_args(argv)
    if not FUNADE.exists():
        err.print(f"[red]{FUNADE} not found: run `make setup` first[/red]")
        return 2
    started = time.monotonic()
    bench = Bench(args.only)

    def steps() -> Obj:
        bench.check()
        bench.execute()
        return bench.result(started)

    outcome, code = guarded(steps, bench.cleanup, (BenchError,), err)
    if outcome is None:
        return code
    report(outcome, [table(outcome), *notes(outcome), f"total {outcome['total_seconds']:.0f} s"], as_json=args.json)
    return code


if __name__ == "__main__":
    sys.exit(main())
