"""Rollout benchmark: funade against plain Docker, side by side on this machine.

Why it exists: funade claims to run Kubernetes Deployments on the local Docker Engine.
The honest yardstick is what a user without an orchestrator does today: ``docker run -d``
each replica and poll ``/ready`` until every one answers 200. That is the floor any
Docker-based tool can reach, so the ratio funade/peer says what the orchestration costs.

Figures (median over ``--runs``):

* seconds from apply to every replica Available (1, 3, 10 replicas of
  ``funade-testapp:1.0.0``, readiness probe ``/ready`` every 1 s, ``STARTUP_DELAY=1``);
* seconds for a rolling update 1.0.0 → 2.0.0 of 3 replicas (maxSurge 1, maxUnavailable 0);
* the same 3-replica apply through the CLI (``funade apply -f … --wait``), as a user sees it;
* the funade server's idle CPU and VmRSS with 10 pods running, and dockerd's CPU in the
  same window (against dockerd's CPU with the peer's 10 containers running).

Everything runs against a private funade server (temporary ``FUNADE_HOME``, free loopback
port) and a private Docker network; all of it is removed on exit, on failure and on
Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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
    pids_named,
    report,
    require_images,
    run,
    testapp_deployment,
    wait_for,
)
from rich.console import Console
from rich.table import Table

IMAGE_V1 = "funade-testapp:1.0.0"
IMAGE_V2 = "funade-testapp:2.0.0"
STARTUP_DELAY = "1"
APP_PORT = 8080
POLL_S = 0.05  # how often both sides look: funade's deployment status, the peer's /ready
WAIT_TIMEOUT_S = 120.0  # any single wait; the benchmark never hangs
SETTLE_S = 3.0  # quiet time before the idle window
IDLE_WINDOW_S = 10.0
REPLICA_COUNTS = (1, 3, 10)
DEPLOYMENT = "web"

err = Console(stderr=True, highlight=False)


# -- small helpers ---------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


# -- /proc -----------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the comm field may contain spaces
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def cpu_percent(pids: dict[str, int], window: float) -> dict[str, float]:
    """Percent of one core each process used over ``window`` seconds."""
    before = {name: cpu_ticks(pid) for name, pid in pids.items()}
    start = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - start
    return {name: 100.0 * (cpu_ticks(pid) - before[name]) / CLK_TCK / elapsed for name, pid in pids.items()}


# -- manifests -------------------------------------------------------------------------


def manifest(namespace: str, replicas: int, image: str) -> list[Obj]:
    """A Namespace and a Deployment of the test app with a 1 s readiness probe."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        testapp_deployment(DEPLOYMENT, namespace, replicas, image, STARTUP_DELAY, APP_PORT),
    ]


# -- funade side -------------------------------------------------------------------------


@dataclass
class Timing:
    """One timed scenario: total seconds plus milestones (seconds after the start)."""

    seconds: float
    milestones: dict[str, float] = field(default_factory=dict)


class FunadeSide(FunadeServer):
    """A private funade server (own home, own port) and the calls the benchmark makes."""

    def __init__(self) -> None:
        super().__init__(registry=False, http_timeout=30.0)

    def start(self, *args: str, timeout: float = 60.0) -> Obj:
        answer = super().start("--no-registry", "--no-prometheus", *args, timeout=timeout)
        wait_for("the funade server's controllers", lambda: self.http.get("/v1/status").json()["docker"]["ok"])
        return answer

    # API

    def apply(self, objs: list[Obj], namespace: str) -> None:
        response = self.http.post("/v1/apply", json={"objects": objs, "namespace": namespace})
        if response.status_code >= 400:
            raise BenchError(f"apply failed: {response.text}")

    def deployment(self, namespace: str) -> Obj:
        response = self.http.get(f"/v1/objects/Deployment/{namespace}/{DEPLOYMENT}")
        response.raise_for_status()
        obj: Obj = response.json()
        return obj

    def rolled_out(self, namespace: str, replicas: int) -> bool:
        """Every replica updated and Available, no old one left (what `rollout status` waits for)."""
        d = self.deployment(namespace)
        status = d.get("status") or {}
        return (
            int(status.get("observedGeneration", 0)) >= int(d["metadata"].get("generation", 1))
            and int(status.get("updatedReplicas", 0)) == replicas
            and int(status.get("replicas", 0)) == replicas
            and int(status.get("availableReplicas", 0)) == replicas
        )

    def events(self, namespace: str) -> list[Obj]:
        items: list[Obj] = self.http.get("/v1/events", params={"namespace": namespace, "limit": 2000}).json()["items"]
        return items

    def delete_namespace(self, namespace: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.http.delete(f"/v1/objects/Namespace/default/{namespace}")
        wait_for(f"the pods of namespace {namespace} to go", lambda: not self.containers(), interval=0.2)

    # scenarios

    def time_create(self, namespace: str, replicas: int) -> Timing:
        objs = manifest(namespace, replicas, IMAGE_V1)
        wall0 = time.time()
        t0 = time.perf_counter()
        self.apply(objs, namespace)
        applied = time.perf_counter() - t0
        wait_for(f"{replicas} funade replicas to be available", lambda: self.rolled_out(namespace, replicas))
        took = time.perf_counter() - t0
        timing = Timing(took, {"apply_call": applied})
        timing.milestones.update(self._milestones(namespace, wall0))
        return timing

    def time_update(self, namespace: str, replicas: int) -> Timing:
        objs = manifest(namespace, replicas, IMAGE_V2)
        wall0 = time.time()
        t0 = time.perf_counter()
        self.apply(objs, namespace)
        wait_for("the funade rolling update", lambda: self.rolled_out(namespace, replicas))
        timing = Timing(time.perf_counter() - t0)
        timing.milestones.update(self._milestones(namespace, wall0))
        return timing

    def time_cli(self, namespace: str, replicas: int, workdir: Path) -> Timing:
        path = workdir / f"{namespace}.yaml"
        path.write_text(yaml.safe_dump_all(manifest(namespace, replicas, IMAGE_V1), sort_keys=False))
        t0 = time.perf_counter()
        run([str(FUNADE), "apply", "-f", str(path), "--wait", "--timeout", str(WAIT_TIMEOUT_S)], env=self.env)
        took = time.perf_counter() - t0
        if not self.rolled_out(namespace, replicas):
            raise BenchError("`funade apply --wait` returned before the rollout was done")
        return Timing(took)

    def _milestones(self, namespace: str, wall0: float) -> dict[str, float]:
        """When pods were scheduled, containers started and readiness probes failed (from funade's events)."""
        marks: dict[str, float] = {}
        probe_failures = pods = 0
        for event in self.events(namespace):
            at = float(event["time"]) - wall0
            if at < 0:
                continue
            key = {"Scheduled": "pods_created", "Started": "containers_started"}.get(event["reason"])
            if key:
                marks[key + "_first"] = min(marks.get(key + "_first", at), at)
                marks[key + "_last"] = max(marks.get(key + "_last", at), at)
            if event["reason"] == "Scheduled":
                pods += 1
            if event["reason"] == "Unhealthy":
                probe_failures += int(event.get("count", 1))
            if event["reason"] == "RolloutComplete":
                marks["rollout_complete_event"] = at
        marks["readiness_probe_failures_per_pod"] = probe_failures / max(1, pods)
        return marks


# -- peer side: docker run + poll ---------------------------------------------------------


def ready(ip: str) -> bool:
    """GET http://ip:8080/ready answers 200 (what `curl -f` in a loop would check)."""
    conn = http.client.HTTPConnection(ip, APP_PORT, timeout=0.5)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class PeerSide:
    """What a Docker user does without an orchestrator: `docker run -d` and poll /ready."""

    def __init__(self, token: str) -> None:
        self.label = f"funade.bench={token}"
        self.network = f"funade-bench-{token}"
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="poll")
        self.created_network = False
        self.seq = 0
        self.stopping = threading.Event()  # ends the pollers on Ctrl-C or failure

    def start(self) -> None:
        run(["docker", "network", "create", "--label", self.label, self.network])
        self.created_network = True

    def containers(self) -> list[str]:
        return run(["docker", "ps", "-aq", "--filter", f"label={self.label}"]).split()

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        self.stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        try:
            left = self.containers()
            if left:
                run(["docker", "rm", "-f", "-v", *left])
            if self.created_network:
                run(["docker", "network", "rm", self.network])
        except BenchError as exc:
            problems.append(f"peer cleanup: {exc}")
        return problems

    def docker_run(self, image: str) -> tuple[str, str]:
        """`docker run -d` one replica; returns (name, container IP on the bench network)."""
        self.seq += 1
        name = f"{self.network}-{self.seq}"
        run(
            [
                "docker", "run", "-d", "--name", name, "--network", self.network, "--label", self.label,
                "-e", f"STARTUP_DELAY={STARTUP_DELAY}", image,
            ]
        )  # fmt: skip
        ip = run(
            ["docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}', name]
        )
        return name, ip.strip()

    def _poll(self, ip: str) -> float:
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while not ready(ip):
            if self.stopping.is_set():
                raise BenchError("stopped")
            if time.monotonic() > deadline:
                raise BenchError(f"container {ip} never answered /ready")
            time.sleep(POLL_S)
        return time.perf_counter()

    def time_create(self, replicas: int) -> tuple[Timing, list[str]]:
        t0 = time.perf_counter()
        names: list[str] = []
        polls: list[Future[float]] = []
        for _ in range(replicas):
            name, ip = self.docker_run(IMAGE_V1)
            names.append(name)
            polls.append(self.pool.submit(self._poll, ip))
        started = time.perf_counter() - t0
        done = max(f.result(timeout=WAIT_TIMEOUT_S) for f in polls)
        return Timing(done - t0, {"docker_runs_returned": started}), names

    def time_update(self, old: list[str]) -> Timing:
        """One new container, wait until ready, stop and remove one old; repeat."""
        t0 = time.perf_counter()
        for name in old:
            _, ip = self.docker_run(IMAGE_V2)
            self._poll(ip)
            run(["docker", "stop", name])
            run(["docker", "rm", name])
        return Timing(time.perf_counter() - t0)

    def remove_all(self) -> None:
        left = self.containers()
        if left:
            run(["docker", "rm", "-f", "-v", *left])


# -- the run -----------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    title: str
    unit: str
    funade: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    funade_note: str = ""
    peer_note: str = ""
    funade_milestones: list[dict[str, float]] = field(default_factory=list)
    peer_milestones: list[dict[str, float]] = field(default_factory=list)

    def medians(self) -> tuple[float | None, float | None]:
        return (median(self.funade) if self.funade else None, median(self.peer) if self.peer else None)

    def as_json(self) -> Obj:
        f, p = self.medians()
        r = ratio(f, p)
        return {
            "key": self.key,
            "figure": self.title,
            "unit": self.unit,
            "funade": None if f is None else round(f, 4),
            "peer": None if p is None else round(p, 4),
            "ratio": None if r is None else round(r, 3),
            "funade_samples": [round(v, 4) for v in self.funade],
            "peer_samples": [round(v, 4) for v in self.peer],
            "funade_note": self.funade_note,
            "peer_note": self.peer_note,
            "funade_milestones": [{k: round(v, 3) for k, v in m.items()} for m in self.funade_milestones],
            "peer_milestones": [{k: round(v, 3) for k, v in m.items()} for m in self.peer_milestones],
        }


class Bench:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.token = os.urandom(3).hex()
        self.funade = FunadeSide()
        self.peer = PeerSide(self.token)
        self.figures: dict[str, Figure] = {}
        for n in REPLICA_COUNTS:
            self._figure(f"create_{n}", f"apply → available, {n} replica{'s' if n > 1 else ''}", "s")
        self._figure("update_3", "rolling update 1.0.0→2.0.0, 3 replicas", "s")
        self._figure("cli_3", "3 replicas, CLI `funade apply --wait`", "s")
        self.idle: Obj = {}

    def _figure(self, key: str, title: str, unit: str) -> Figure:
        self.figures[key] = Figure(key, title, unit)
        return self.figures[key]

    def start(self) -> None:
        require_images(IMAGE_V1, IMAGE_V2)
        err.print(f"starting a private funade server on {self.funade.address} (home {self.funade.home})")
        self.funade.start()
        self.peer.start()

    def cleanup(self) -> list[str]:
        return self.peer.cleanup() + self.funade.cleanup()

    def ns(self, what: str, i: int) -> str:
        return f"bench-{self.token}-{what}-{i}"

    def one_run(self, i: int, measure_idle: bool) -> None:
        for n in REPLICA_COUNTS:
            ns = self.ns(f"r{n}", i)
            t = self.funade.time_create(ns, n)
            self.figures[f"create_{n}"].funade.append(t.seconds)
            self.figures[f"create_{n}"].funade_milestones.append(t.milestones)
            err.print(f"  funade  {n:>2} replicas: {t.seconds:6.2f} s")
            if n == 3:
                time.sleep(1.0)
                t = self.funade.time_update(ns, n)
                self.figures["update_3"].funade.append(t.seconds)
                self.figures["update_3"].funade_milestones.append(t.milestones)
                err.print(f"  funade  rolling update: {t.seconds:6.2f} s")
            if n == 10 and measure_idle:
                self._idle_funade()
            self.funade.delete_namespace(ns)
            if n == 10 and measure_idle:
                self._idle_baseline()

            t, names = self.peer.time_create(n)
            self.figures[f"create_{n}"].peer.append(t.seconds)
            self.figures[f"create_{n}"].peer_milestones.append(t.milestones)
            err.print(f"  peer    {n:>2} replicas: {t.seconds:6.2f} s")
            if n == 3:
                time.sleep(1.0)
                t = self.peer.time_update(names)
                self.figures["update_3"].peer.append(t.seconds)
                err.print(f"  peer    rolling update: {t.seconds:6.2f} s")
            if n == 10 and measure_idle:
                self._idle_peer()
            self.peer.remove_all()

        ns = self.ns("cli", i)
        with tempfile.TemporaryDirectory(prefix="funade-bench-cli-") as workdir:
            t = self.funade.time_cli(ns, 3, Path(workdir))
        self.figures["cli_3"].funade.append(t.seconds)
        self.figures["cli_3"].peer.append(self.figures["create_3"].peer[-1])
        self.figures["cli_3"].peer_note = "same as 3 replicas"
        err.print(f"  funade  CLI 3 replicas: {t.seconds:6.2f} s")
        self.funade.delete_namespace(ns)

    def _dockerd(self) -> dict[str, int]:
        pids = {}
        for comm in ("dockerd", "containerd"):
            found = pids_named(comm)
            if found:
                pids[comm] = found[0]
        return pids

    def _idle_funade(self) -> None:
        assert self.funade.pid is not None
        time.sleep(SETTLE_S)
        err.print(f"  measuring idle CPU for {IDLE_WINDOW_S:g} s (funade, 10 pods)…")
        pids = {"server": self.funade.pid, **self._dockerd()}
        cpu = cpu_percent(pids, IDLE_WINDOW_S)
        self.idle["funade"] = {
            "window_s": IDLE_WINDOW_S,
            "server_cpu_pct": round(cpu["server"], 2),
            "dockerd_cpu_pct": round(cpu.get("dockerd", float("nan")), 2),
            "containerd_cpu_pct": round(cpu.get("containerd", float("nan")), 2),
            "server_vmrss_mib": round(status_kib(self.funade.pid, "VmRSS") / 1024, 1),
            "server_vmhwm_mib": round(status_kib(self.funade.pid, "VmHWM") / 1024, 1),
            "server_threads": status_kib(self.funade.pid, "Threads"),
        }

    def _idle_baseline(self) -> None:
        """dockerd with nothing of the benchmark running: what other users of the Engine cost."""
        self._idle_dockerd("baseline", f"dockerd's baseline for {IDLE_WINDOW_S:g} s (no bench workload)")

    def _idle_peer(self) -> None:
        self._idle_dockerd("peer", f"idle CPU for {IDLE_WINDOW_S:g} s (peer, 10 containers)")

    def _idle_dockerd(self, key: str, what: str) -> None:
        time.sleep(SETTLE_S)
        err.print(f"  measuring {what}…")
        cpu = cpu_percent(self._dockerd(), IDLE_WINDOW_S)
        self.idle[key] = {
            "window_s": IDLE_WINDOW_S,
            "dockerd_cpu_pct": round(cpu.get("dockerd", float("nan")), 2),
            "containerd_cpu_pct": round(cpu.get("containerd", float("nan")), 2),
        }

    def execute(self) -> None:
        for i in range(self.runs):
            err.print(f"[bold]run {i + 1}/{self.runs}[/bold]")
            self.one_run(i, measure_idle=i == 0)

    # -- output ------------------------------------------------------------------------

    def other_load(self) -> Obj:
        """What else was running on this Docker Engine (it shares dockerd and the CPUs)."""
        others = other_funade_containers(self.funade.instance)
        mark = b"funade.cli.main\x00server"
        servers = [p for comm in ("python3", "python") for p in pids_named(comm, mark) if p != self.funade.pid]
        return {
            "other_funade_containers_running": others,
            "other_funade_servers": len(servers),
            "loadavg": os.getloadavg(),
        }

    def result(self, started: float) -> Obj:
        return {
            "machine": machine(docker=True),
            "runs": self.runs,
            "poll_interval_s": POLL_S,
            "figures": [f.as_json() for f in self.figures.values()],
            "idle": self.idle,
            "environment": self.other_load(),
            "total_seconds": round(time.monotonic() - started, 1),
        }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:.1f} {unit}"


def table(result: Obj) -> Table:
    t = Table(
        title=f"funade rollout benchmark (median of {result['runs']} run{'s' if result['runs'] > 1 else ''})",
        caption="peer = `docker run -d` per replica + poll /ready until 200 (no orchestrator); ratio = funade / peer",
    )
    t.add_column("figure")
    t.add_column("funade", justify="right")
    t.add_column("peer (docker run + poll)", justify="right")
    t.add_column("ratio", justify="right")
    for fig in result["figures"]:
        peer = _fmt(fig["peer"], fig["unit"]) + (f" ({fig['peer_note']})" if fig["peer_note"] else "")
        t.add_row(fig["figure"], _fmt(fig["funade"], fig["unit"]), peer, _fmt_ratio(fig["ratio"]))
    idle = result["idle"]
    if "funade" in idle:
        f, p = idle["funade"], idle.get("peer", {})
        window = f"{f['window_s']:g} s"
        t.add_row(
            f"idle CPU, server process (10 pods, {window})", _fmt(f["server_cpu_pct"], "%"), "0 (no process)", "—"
        )
        t.add_row(
            "idle CPU, dockerd (same window, reference)",
            _fmt(f["dockerd_cpu_pct"], "%"),
            _fmt(p.get("dockerd_cpu_pct"), "%"),
            _fmt_ratio(ratio(f["dockerd_cpu_pct"], p.get("dockerd_cpu_pct"))),
        )
        t.add_row("memory, server VmRSS (10 pods)", _fmt(f["server_vmrss_mib"], "MiB"), "0 (no process)", "—")
    return t


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def breakdown(result: Obj) -> Table:
    """Where funade's time goes, from its own events (medians, seconds after the apply call)."""
    t = Table(title="where the time goes (medians, seconds after apply)")
    t.add_column("scenario")
    t.add_column("funade: last pod created", justify="right")
    t.add_column("last app started", justify="right")
    t.add_column("all available", justify="right")
    t.add_column("failed probes/pod", justify="right")
    t.add_column("peer: last docker run", justify="right")
    t.add_column("peer: all ready", justify="right")
    for fig in result["figures"]:
        marks = fig["funade_milestones"]
        if not marks or "pods_created_last" not in marks[0]:
            continue

        def med(key: str, ms: list[dict[str, float]]) -> str:
            values = [m[key] for m in ms if key in m]
            return f"{median(values):.2f}" if values else "—"

        t.add_row(
            fig["key"].replace("create_", "create ").replace("update_", "update "),
            med("pods_created_last", marks),
            med("containers_started_last", marks),
            f"{fig['funade']:.2f}",
            med("readiness_probe_failures_per_pod", marks),
            med("docker_runs_returned", fig["peer_milestones"]),
            f"{fig['peer']:.2f}" if fig["peer"] is not None else "—",
        )
    return t


def notes(result: Obj) -> list[str]:
    """What to keep in mind when reading the figures."""
    lines = []
    base = result["idle"].get("baseline")
    if base:
        lines.append(
            f"dockerd with no bench workload at all (other users of this Engine): {base['dockerd_cpu_pct']:.1f} %"
        )
    env = result["environment"]
    if env["other_funade_servers"] or env["other_funade_containers_running"]:
        lines.append(
            f"noise: {env['other_funade_servers']} other funade server(s) and "
            f"{env['other_funade_containers_running']} of their containers shared this Docker Engine and CPUs"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not FUNADE.exists():
        err.print(f"[red]{FUNADE} not found: run `make setup` first[/red]")
        return 2
    started = time.monotonic()
    bench = Bench(args.runs)

    def steps() -> Obj:
        bench.start()
        bench.execute()
        return bench.result(started)

    outcome, code = guarded(steps, bench.cleanup, (BenchError, httpx.HTTPError), err)
    if outcome is None:
        return code
    total = f"total {outcome['total_seconds']:.0f} s"
    report(outcome, [table(outcome), breakdown(outcome), *notes(outcome), total], as_json=args.json, width=132)
    return code


if __name__ == "__main__":
    sys.exit(main())
