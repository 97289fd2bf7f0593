"""What every benchmark here shares: commands, ports, a private funade server, and cleanup that always runs.

A benchmark starts servers, containers and registries of its own; they must go whether
it finishes, fails, or is interrupted (a second Ctrl-C during the cleanup is ignored).
Each bench keeps only what it measures and how it prints it; the pieces below were once
copied into every one of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, RenderableType

__all__ = [
    "FUNADE",
    "ROOT",
    "BenchError",
    "FunadeServer",
    "Obj",
    "fmt_ratio",
    "fmt_seconds",
    "free_port",
    "guarded",
    "machine",
    "noise_notes",
    "other_funade_containers",
    "other_load",
    "pids_named",
    "report",
    "require_images",
    "rounded",
    "run",
    "testapp_deployment",
    "wait_for",
]

ROOT = Path(__file__).resolve().parent.parent
FUNADE = ROOT / ".venv" / "bin" / "funade"
WAIT_TIMEOUT_S = 120.0  # any single wait; a benchmark never hangs
POLL_S = 0.05

Obj = dict[str, Any]


class BenchError(Exception):
    """The benchmark cannot go on (a wait timed out, a command failed, the answers disagree)."""


# -- commands, waits, ports --------------------------------------------------------------


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 60.0, cwd: Path | None = None) -> str:
    """Run a command, return its stdout; raise BenchError with its stderr on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv[:4])} …: no answer within {timeout:g}s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:6])} … exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT_TIMEOUT_S, interval: float = POLL_S) -> None:
    """Call ``check`` every ``interval`` s until it holds; BenchError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def free_port(low: int = 0, high: int = 0) -> int:
    """A loopback TCP port nobody listens on: any (the kernel picks), or one in [low, high]."""
    candidates = [0] if not low else list(range(low, high + 1))
    if low:
        # a random start spreads concurrent benches over the range
        start = int.from_bytes(os.urandom(2), "big") % len(candidates)
        candidates = candidates[start:] + candidates[:start]
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise BenchError(f"no free port in {low}-{high}")


def require_images(*images: str) -> None:
    """Every test image is in the Engine; the benches never pull."""
    for image in images:
        try:
            run(["docker", "image", "inspect", image])
        except BenchError as exc:
            raise BenchError(f"{image} is missing: run `bash scripts/build-test-images.sh` first") from exc


# -- the machine and what else runs on it ------------------------------------------------


def machine(*, docker: bool = False) -> Obj:
    """What the figures were measured on (with ``docker``: the kernel and the Engine's version too)."""
    if not docker:
        return {"cpus": os.cpu_count(), "python": platform.python_version()}
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).strip(),
    }


def other_funade_containers(ours: str) -> int:
    """Containers of other funade servers on this Engine: they share dockerd and the CPUs."""
    owners = run(["docker", "ps", "--filter", "label=funade.managed", "--format", '{{.Label "funade.managed"}}'])
    return len([o for o in owners.split() if o != ours])


def other_load(ours: str) -> Obj:
    """Other funade pods on this Docker Engine share dockerd and the CPUs: count them."""
    return {"other_funade_containers": other_funade_containers(ours), "loadavg": os.getloadavg()}


def noise_notes(other: Obj) -> list[str]:
    """The line under a table that says what :func:`other_load` found, if anything."""
    if not other["other_funade_containers"]:
        return []
    return [
        f"noise: {other['other_funade_containers']} containers of other funade servers shared this Docker "
        f"Engine; load average {', '.join(f'{v:.2f}' for v in other['loadavg'])}"
    ]


def pids_named(comm: str, mentioning: bytes = b"") -> list[int]:
    """Processes called ``comm`` whose command line contains ``mentioning``, in pid order."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() != comm:
                    continue
                if not mentioning or mentioning in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return sorted(found)


# -- a private funade server -------------------------------------------------------------


def _kill_survivor(pid: int, what: str, problems: list[str]) -> None:
    """SIGKILL ``pid`` if it still runs, and say so."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        problems.append(f"{what} survived `funade down`; killed it")
        os.kill(pid, signal.SIGKILL)


class FunadeServer:
    """A funade server of the bench's own: a temporary ``FUNADE_HOME``, free loopback ports, an API client.

    ``start`` runs ``funade up``. ``cleanup`` runs ``funade down --delete-workloads``, kills
    whatever of the server survived it (the server, its HAProxy, its Prometheus), removes
    its containers and the shared ``funade`` network if this server made it, and deletes
    the home. It never touches another funade server.
    """

    def __init__(
        self,
        prefix: str = "funade-bench-",
        *,
        home: Path | None = None,
        registry: bool = True,
        prometheus: bool = False,
        http_timeout: float = 10.0,
        down_timeout: float = 60.0,
        **env: str,
    ) -> None:
        """Pick the home and the ports; nothing runs yet.

        Args:
            prefix: the temporary home's name prefix.
            home: a home to use instead (created by ``funade up``, deleted by ``cleanup``).
            registry: give ``FUNADE_REGISTRY`` a free port (the embedded registry's, unless
                the bench starts the server with ``--no-registry``).
            prometheus: give ``FUNADE_PROMETHEUS`` a free port (:attr:`prometheus`).
            http_timeout: the API client's timeout.
            down_timeout: how long ``funade down`` may take.
            env: more variables for the server and the CLI.
        """
        self.home = home or Path(tempfile.mkdtemp(prefix=prefix))
        self.address = f"127.0.0.1:{free_port()}"
        self.registry = f"127.0.0.1:{free_port()}" if registry else ""
        self.prometheus = f"127.0.0.1:{free_port()}" if prometheus else ""
        self.env = dict(os.environ, FUNADE_HOME=str(self.home), FUNADE_ADDRESS=self.address)
        if self.registry:
            self.env["FUNADE_REGISTRY"] = self.registry
        if self.prometheus:
            self.env["FUNADE_PROMETHEUS"] = self.prometheus
        self.env.update(env)
        self.http = httpx.Client(base_url=f"http://{self.address}", timeout=http_timeout, trust_env=False)
        self.down_timeout = down_timeout
        self.pid: int | None = None
        self.instance = ""
        self.network_existed = True

    def cli(self, *args: str, timeout: float = 60.0) -> str:
        """``funade ARGS`` against this server; its stdout."""
        return run([str(FUNADE), *args], env=self.env, timeout=timeout)

    def start(self, *args: str, timeout: float = 60.0) -> Obj:
        """``funade up --address ADDRESS ARGS -o json``; its answer."""
        self.network_existed = bool(run(["docker", "network", "ls", "-q", "--filter", "name=^funade$"]).strip())
        answer: Obj = json.loads(self.cli("up", "--address", self.address, *args, "-o", "json", timeout=timeout))
        self.pid = int(answer["pid"])
        self.instance = (self.home / "instance-id").read_text().strip()
        return answer

    def containers(self) -> list[str]:
        """Every container of this server, running or not."""
        if not self.instance:
            return []
        return run(["docker", "ps", "-aq", "--filter", f"label=funade.managed={self.instance}"]).split()

    def cleanup(self) -> list[str]:
        """Stop the server and all it started, remove its containers (and network), delete the home.

        Returns:
            What went wrong or had to be forced; cleanup never raises.
        """
        problems: list[str] = []
        with contextlib.suppress(Exception):
            self.http.close()
        try:
            self.cli("down", "--delete-workloads", "-o", "json", timeout=self.down_timeout)
        except BenchError as exc:
            problems.append(f"funade down: {exc}")
        if self.pid is not None:
            _kill_survivor(self.pid, f"funade server {self.pid}", problems)
        for pid in pids_named("haproxy", str(self.home).encode()):
            _kill_survivor(pid, f"an HAProxy of the bench's home ({pid})", problems)
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.home / "prometheus" / "prometheus.pid").read_text().strip())
            _kill_survivor(pid, f"the bench's Prometheus ({pid})", problems)
        try:
            left = self.containers()
            if left:
                run(["docker", "rm", "-f", "-v", *left])
            if not self.network_existed and self.instance:
                # funade made the shared `funade` network for this bench: remove it if it is ours and empty.
                nets = run(["docker", "network", "ls", "-q", "--filter", f"label=funade.managed={self.instance}"])
                for net in nets.split():
                    with contextlib.suppress(BenchError):
                        run(["docker", "network", "rm", net])
        except BenchError as exc:
            problems.append(f"removing funade containers: {exc}")
        shutil.rmtree(self.home, ignore_errors=True)
        return problems


# -- running a bench ---------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C, so cleanup always runs."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def guarded(
    steps: Callable[[], Any],
    cleanup: Callable[[], list[str]],
    failures: tuple[type[BaseException], ...],
    err: Console,
) -> tuple[Any, int]:
    """Run ``steps`` and return (their result, 0); (None, 130) when interrupted, (None, 1) on ``failures``.

    ``cleanup`` runs in every case and returns the problems it met, which are printed.
    """
    outcome: Any = None
    code = 0
    with _terminate_as_interrupt():
        try:
            outcome = steps()
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            code = 130
        except failures as exc:
            err.print(f"[red]benchmark failed:[/red] {exc}")
            code = 1
        finally:
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                err.print("cleaning up…")
                for problem in cleanup():
                    err.print(f"[yellow]cleanup: {problem}[/yellow]")
            finally:
                signal.signal(signal.SIGINT, old)
    return outcome, code


def report(
    outcome: Obj, parts: Iterable[RenderableType], *, as_json: bool, width: int = 150, ensure_ascii: bool = True
) -> None:
    """The results on stdout: ``outcome`` as JSON, or ``parts`` (tables, and lines of rich markup) one after another.

    When stdout is not a terminal the console is ``width`` columns wide, so piped tables do not wrap.
    """
    if as_json:
        print(json.dumps(outcome, indent=2, ensure_ascii=ensure_ascii))
        return
    out = Console() if sys.stdout.isatty() else Console(width=width)
    for part in parts:
        if isinstance(part, str):
            out.print(part, highlight=False)
        else:
            out.print(part)


# -- manifests and figures ---------------------------------------------------------------


def testapp_deployment(
    name: str, namespace: str, replicas: int, image: str, startup_delay: str, port: int = 8080
) -> dict[str, Any]:
    """A Deployment of the test app: surge 1, unavailable 0, a 1 s readiness probe, a named http port."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "STARTUP_DELAY", "value": startup_delay}],
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }


def rounded(value: float | None, digits: int = 3) -> float | None:
    """``round`` that lets None (not measured) through."""
    return None if value is None else round(value, digits)


def fmt_seconds(value: float | None) -> str:
    """``1.23 s``, or ``—`` when not measured."""
    return "—" if value is None else f"{value:.2f} s"


def fmt_ratio(a: float | None, b: float | None, *, over_zero: str = "—") -> str:
    """``a / b`` as ``1.23×``; ``—`` when either is unknown or both are 0, ``over_zero`` for ``a > 0`` over 0."""
    if a is None or b is None:
        return "—"
    if b <= 0:
        return over_zero if a else "—"
    return f"{a / b:.2f}×"
