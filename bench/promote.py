"""Promotion benchmark: funade against `docker pull/tag/push` and `skopeo copy`, on a ~100 MB image.

Why it exists: funade claims that promoting an image by digest (mount what the registry
has, stream the rest registry to registry, PUT the same manifest bytes) is faster, moves
fewer bytes and keeps the digest. The yardsticks are the seed's way (``docker pull``,
``docker tag``, ``docker push``: every layer goes through the Docker Engine) and
``skopeo copy``, the usual daemon-less registry-to-registry tool.

Three scenarios, each method starting from an empty destination repository (or a new tag):

* A. within one registry: ``dev/big:1.0.0`` → ``prod/big:1.0.0``;
* B. between two registries: registry 1 ``dev/big:1.0.0`` → registry 2 ``prod/big:1.0.0``;
* C. retag within one repository: ``dev/big:1.0.0`` → ``dev/big:stable``.

Figures per method (median over ``--runs``): wall seconds, bytes through counting TCP
proxies put in front of each registry (both directions, headers included, the same
yardstick for every tool), and whether the destination ends with the source's digest.

Everything runs on 127.0.0.1: two private registries (funade's embedded distribution
registry, temporary homes, free ports), a temporary ``FUNADE_HOME``, a locally built image
``FROM scratch`` of random bytes. All of it is removed on exit, on failure and on Ctrl-C.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import harness
import httpx
from harness import FUNADE, BenchError, Obj, free_port, guarded, machine, report
from rich.console import Console
from rich.table import Table

from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.server import RegistryServer
from funade.core import oci
from funade.engine import promote as promote_engine

SOURCE_REPOSITORY = "dev/big"
SOURCE_TAG = "1.0.0"
COMMAND_TIMEOUT_S = 120.0  # any single command; the benchmark never hangs
PROXY_BUFFER = 1024 * 1024  # per direction and connection, before the relay stops reading
METHODS = ("funade", "engine", "skopeo", "docker")
LABELS = {
    "funade": "funade image promote (CLI)",
    "engine": "  funade engine only, in-process",
    "skopeo": "skopeo copy --preserve-digests",
    "docker": "docker pull + tag + push",
}
# Methods that promise the digest: a difference fails the benchmark. Docker may or may not keep it.
KEEPS_DIGEST = frozenset({"funade", "engine", "skopeo"})

err = Console(stderr=True, highlight=False)
run = functools.partial(harness.run, timeout=COMMAND_TIMEOUT_S)


# -- small helpers ---------------------------------------------------------------------


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def median_int(values: list[int]) -> int | None:
    return statistics.median_low(values) if values else None


# -- the counting proxy ----------------------------------------------------------------


class _Relay(asyncio.Protocol):
    """One side of a relayed connection: what it receives, it counts and writes to the other side."""

    def __init__(self, proxy: CountingProxy, *, up: bool) -> None:
        self.proxy = proxy
        self.up = up  # True: the client's side (its bytes go to the registry)
        self.transport: asyncio.Transport | None = None
        self.peer: _Relay | None = None
        self.got_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=PROXY_BUFFER)
        self.proxy.transports.add(transport)
        if self.up:  # a client: hold its bytes until the registry side is connected
            transport.pause_reading()
            task = asyncio.get_running_loop().create_task(self._connect())
            self.proxy.tasks.add(task)
            task.add_done_callback(self.proxy.tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, peer = await loop.create_connection(
                lambda: _Relay(self.proxy, up=False), "127.0.0.1", self.proxy.upstream
            )
        except OSError:
            if self.transport is not None:
                self.transport.abort()
            return
        self.peer, peer.peer = peer, self
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        else:
            peer.close()

    def data_received(self, data: bytes) -> None:
        if self.up:
            self.proxy.to_registry += len(data)
        else:
            self.proxy.from_registry += len(data)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        peer = self.peer
        if peer is None or peer.got_eof or peer.transport is None or not peer.transport.can_write_eof():
            self.close()
            return False
        peer.transport.write_eof()  # half-close, as this side did
        return True

    def pause_writing(self) -> None:  # our outgoing buffer is full: stop reading the other side
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.proxy.transports.discard(self.transport)
        if self.peer is not None:
            self.peer.close()

    def close(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None and not side.transport.is_closing():
                side.transport.close()  # flushes what is buffered first


class CountingProxy:
    """A TCP relay 127.0.0.1:port → a registry that counts the bytes each way (headers, TLS probes and all)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        self.to_registry = 0
        self.from_registry = 0
        self.transports: set[asyncio.Transport] = set()
        self.tasks: set[asyncio.Task[None]] = set()  # connections being made to the registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Relay(self, up=True), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for transport in list(self.transports):  # idle keep-alive connections (dockerd keeps some)
            transport.abort()
        await self._server.wait_closed()


class ProxyLoop:
    """One asyncio loop in a thread hosting the proxies; the main thread only waits on subprocesses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxies", daemon=True)
        self.open_proxies: list[CountingProxy] = []

    def start(self) -> None:
        self.thread.start()

    def open(self, upstream: int) -> CountingProxy:
        proxy = CountingProxy(upstream)
        asyncio.run_coroutine_threadsafe(proxy.start(), self.loop).result(10)
        self.open_proxies.append(proxy)
        return proxy

    def close(self, proxy: CountingProxy) -> None:
        asyncio.run_coroutine_threadsafe(proxy.stop(), self.loop).result(10)
        self.open_proxies.remove(proxy)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        for proxy in list(self.open_proxies):
            with contextlib.suppress(Exception):
                self.close(proxy)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# -- scenarios and methods -------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    cross_registry: bool
    same_repository: bool

    def destination(self, method: str, n: int) -> tuple[str, str]:
        """A repository and tag nobody used before: each method starts from the same state."""
        if self.same_repository:
            return SOURCE_REPOSITORY, f"stable-{method}-{n}"
        return f"prod/big-{self.key.lower()}-{method}-{n}", SOURCE_TAG


SCENARIOS = (
    Scenario("A", "within one registry: dev/big:1.0.0 → prod/big:1.0.0", cross_registry=False, same_repository=False),
    Scenario(
        "B", "between two registries: r1/dev/big:1.0.0 → r2/prod/big:1.0.0", cross_registry=True, same_repository=False
    ),
    Scenario("C", "retag within one repository: dev/big:1.0.0 → dev/big:stable", cross_registry=False,
             same_repository=True),
)  # fmt: skip


@dataclass
class Outcome:
    """Every run of one method in one scenario."""

    seconds: list[float] = field(default_factory=list)
    to_registry: list[int] = field(default_factory=list)
    from_registry: list[int] = field(default_factory=list)
    digests: list[str | None] = field(default_factory=list)
    requests: list[dict[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def moved(self) -> list[int]:
        return [a + b for a, b in zip(self.to_registry, self.from_registry, strict=True)]


REQUEST_KEYS = ("requests", "mounted", "downloaded", "uploaded", "manifests_put")
_ACCESS_RE = re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3}) ')


def requests_of(log: str) -> dict[str, int]:
    """What a tool asked the registry, from its access log: requests, blobs mounted, downloaded and uploaded."""
    counts = dict.fromkeys(REQUEST_KEYS, 0)
    for match in _ACCESS_RE.finditer(log):
        method, uri, status = match.group(1), match.group(2), int(match.group(3))
        counts["requests"] += 1
        if method == "POST" and "/blobs/uploads/" in uri and "mount=" in uri and status == 201:
            counts["mounted"] += 1
        elif method == "PUT" and "/blobs/uploads/" in uri and status == 201:
            counts["uploaded"] += 1
        elif method == "GET" and "/blobs/sha256:" in uri and status == 200:
            counts["downloaded"] += 1
        elif method == "PUT" and "/manifests/" in uri and status == 201:
            counts["manifests_put"] += 1
    return counts


def log_sizes(logs: list[Path]) -> list[int]:
    """The logs' sizes once they stop growing (the last access line may land just after the client's answer)."""
    last: list[int] = []
    for _ in range(40):
        sizes = [p.stat().st_size for p in logs]
        if sizes == last:
            break
        last = sizes
        time.sleep(0.05)
    return last


class Bench:
    """Two private registries, the source image, the proxies, and the runs."""

    def __init__(self, runs: int, size_mb: int) -> None:
        self.runs = runs
        self.size_mb = size_mb
        self.token = secrets.token_hex(4)
        self.tmp = Path(tempfile.mkdtemp(prefix="funade-bench-promote-"))
        first, second = free_port(), free_port()
        self.registries = (
            RegistryServer(self.tmp / "registry1", f"127.0.0.1:{first}"),
            RegistryServer(self.tmp / "registry2", f"127.0.0.1:{second}"),
        )
        (self.tmp / "home").mkdir()
        self.env = dict(os.environ, FUNADE_HOME=str(self.tmp / "home"))
        self.env.pop("FUNADE_REGISTRY", None)
        self.proxies = ProxyLoop()
        self.local_tag = f"funade-bench-promote:{self.token}"
        self.image_id: str | None = None
        self.source_digest = ""
        self.source_media_type = ""
        self.layers: list[int] = []
        self.outcomes: dict[str, dict[str, Outcome]] = {s.key: {m: Outcome() for m in METHODS} for s in SCENARIOS}
        self.setup_seconds = 0.0

    # -- setup ---------------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.perf_counter()
        for registry in self.registries:
            registry.up()
        self.proxies.start()
        self.build_source()
        self.setup_seconds = time.perf_counter() - t0

    def build_source(self) -> None:
        """Build the image with the classic builder, push it once to registry 1, drop it locally."""
        context = self.tmp / "context"
        context.mkdir()
        half = self.size_mb * 1_000_000 // 2
        for name in ("layer1.bin", "layer2.bin"):
            with open(context / name, "wb") as f:
                for start in range(0, half, 1 << 20):
                    f.write(os.urandom(min(1 << 20, half - start)))  # random: gzip cannot shrink it
        (context / "VERSION").write_text(f"{self.token}\n")
        (context / "Dockerfile").write_text(
            "FROM scratch\nCOPY layer1.bin /data/layer1.bin\nCOPY layer2.bin /data/layer2.bin\nCOPY VERSION /VERSION\n"
        )
        err.print(f"building a {self.size_mb} MB image (3 layers, random bytes)…")
        classic = dict(os.environ, DOCKER_BUILDKIT="0")
        built = run(["docker", "build", "-q", "-t", self.local_tag, str(context)], env=classic)
        self.image_id = built.strip().splitlines()[-1]
        shutil.rmtree(context)
        source = f"{self.registries[0].address}/{SOURCE_REPOSITORY}:{SOURCE_TAG}"
        err.print(f"pushing it to {source}…")
        run(["docker", "tag", self.local_tag, source])
        run(["docker", "push", source])
        self.remove_local_image()
        found = stored(self.registries[0].address, SOURCE_REPOSITORY, SOURCE_TAG)
        if found is None:
            raise BenchError(f"{source} is not in the registry after docker push")
        self.source_digest, self.source_media_type = found
        raw = httpx.get(
            f"http://{self.registries[0].address}/v2/{SOURCE_REPOSITORY}/manifests/{self.source_digest}",
            headers={"Accept": ", ".join(oci.MANIFEST_ACCEPT)},
            timeout=10,
        ).content
        self.layers = [d.size for d in oci.parse_manifest(raw, self.source_media_type).layers]

    def remove_local_image(self) -> None:
        if self.image_id is None:
            return
        probe = subprocess.run(["docker", "image", "inspect", self.image_id], capture_output=True, check=False)
        if probe.returncode == 0:
            run(["docker", "rmi", "-f", self.image_id])

    # -- the runs ------------------------------------------------------------------------

    def execute(self) -> None:
        for scenario in SCENARIOS:
            for n in range(1, self.runs + 1):
                shift = (n - 1) % len(METHODS)  # rotate the order: no method always goes first
                for method in METHODS[shift:] + METHODS[:shift]:
                    err.print(f"{scenario.key} run {n}/{self.runs}: {LABELS[method].strip()}…")
                    self.one(scenario, method, n)

    def one(self, scenario: Scenario, method: str, n: int) -> None:
        outcome = self.outcomes[scenario.key][method]
        r1, r2 = self.registries
        # Fresh proxies (fresh host:port) per run: no tool can reuse what it learnt about a
        # host in an earlier run (dockerd's and skopeo's blob-location caches are per host).
        src_proxy = self.proxies.open(port_of(r1.address))
        dst_proxy = self.proxies.open(port_of(r2.address)) if scenario.cross_registry else src_proxy
        proxies = [src_proxy] if dst_proxy is src_proxy else [src_proxy, dst_proxy]
        repository, tag = scenario.destination(method, n)
        src = f"127.0.0.1:{src_proxy.port}/{SOURCE_REPOSITORY}:{SOURCE_TAG}"
        dst = f"127.0.0.1:{dst_proxy.port}/{repository}:{tag}"
        logs = [r.log for r in (self.registries if scenario.cross_registry else self.registries[:1])]
        before = log_sizes(logs)
        try:
            seconds = RUNNERS[method](self, src, dst)
        except BenchError as exc:
            outcome.errors.append(str(exc))
            err.print(f"[red]  failed:[/red] {exc}")
            return
        finally:
            for proxy in proxies:
                self.proxies.close(proxy)
        outcome.seconds.append(seconds)
        outcome.to_registry.append(sum(p.to_registry for p in proxies))
        outcome.from_registry.append(sum(p.from_registry for p in proxies))
        text = ""
        for log, offset in zip(logs, before, strict=True):
            with open(log, "rb") as f:
                f.seek(offset)
                text += f.read().decode(errors="replace")
        outcome.requests.append(requests_of(text))
        found = stored((r2 if scenario.cross_registry else r1).address, repository, tag)
        outcome.digests.append(found[0] if found else None)

    def run_funade(self, src: str, dst: str) -> float:
        t0 = time.perf_counter()
        out = run([str(FUNADE), "image", "promote", src, dst, "-o", "json"], env=self.env)
        took = time.perf_counter() - t0
        result = json.loads(out)
        if not result.get("verified"):
            raise BenchError(f"funade image promote {src} {dst}: not verified: {out.strip()}")
        return took

    def run_engine(self, src: str, dst: str) -> float:
        """The engine alone, timed inside a child process (no interpreter start-up, no CLI)."""
        out = run([sys.executable, str(Path(__file__).resolve()), "--engine-child", src, dst], env=self.env)
        answer = json.loads(out)
        return float(answer["seconds"])

    def run_skopeo(self, src: str, dst: str) -> float:
        argv = ["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
        t0 = time.perf_counter()
        run([*argv, f"docker://{src}", f"docker://{dst}"])
        return time.perf_counter() - t0

    def run_docker(self, src: str, dst: str) -> float:
        self.remove_local_image()  # so the pull really pulls
        try:
            t0 = time.perf_counter()
            run(["docker", "pull", src])
            run(["docker", "tag", src, dst])
            run(["docker", "push", dst])
            took = time.perf_counter() - t0
        finally:
            subprocess.run(["docker", "rmi", "-f", src, dst], capture_output=True, check=False, timeout=60)
            self.remove_local_image()
        return took

    # -- results -------------------------------------------------------------------------

    def failures(self) -> list[str]:
        problems = []
        for scenario in SCENARIOS:
            for method, outcome in self.outcomes[scenario.key].items():
                for error in outcome.errors:
                    problems.append(f"{scenario.key} {LABELS[method].strip()}: {error}")
                if method in KEEPS_DIGEST and any(d != self.source_digest for d in outcome.digests):
                    problems.append(f"{scenario.key} {LABELS[method].strip()}: the digest changed ({outcome.digests})")
        return problems

    def result(self, started: float) -> Obj:
        scenarios = []
        for scenario in SCENARIOS:
            methods = []
            for method in METHODS:
                o = self.outcomes[scenario.key][method]
                methods.append(
                    {
                        "method": method,
                        "label": LABELS[method].strip(),
                        "seconds": median(o.seconds),
                        "bytes": median_int(o.moved()),
                        "bytes_to_registry": median_int(o.to_registry),
                        "bytes_from_registry": median_int(o.from_registry),
                        "digests_kept": sum(d == self.source_digest for d in o.digests),
                        "digests": o.digests,
                        "runs_ok": len(o.seconds),
                        "requests": {k: statistics.median_low([r[k] for r in o.requests]) for k in REQUEST_KEYS}
                        if o.requests
                        else None,
                        "errors": o.errors,
                        "samples": {"seconds": o.seconds, "bytes": o.moved(), "requests": o.requests},
                    }
                )
            scenarios.append({"key": scenario.key, "title": scenario.title, "methods": methods})
        return {
            "machine": machine(),
            "runs": self.runs,
            "image": {
                "size_mb": self.size_mb,
                "layers": self.layers,
                "digest": self.source_digest,
                "media_type": self.source_media_type,
            },
            "setup_seconds": self.setup_seconds,
            "scenarios": scenarios,
            "problems": self.failures(),
            "total_seconds": time.monotonic() - started,
        }

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        try:
            self.remove_local_image()
        except BenchError as exc:
            problems.append(f"local image {self.image_id}: {exc}")
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(["docker", "rmi", self.local_tag], capture_output=True, check=False, timeout=30)
        self.proxies.stop()
        for registry in self.registries:
            try:
                registry.down()
            except OSError as exc:
                problems.append(f"registry {registry.address}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


RUNNERS: dict[str, Callable[[Bench, str, str], float]] = {
    "funade": Bench.run_funade,
    "engine": Bench.run_engine,
    "skopeo": Bench.run_skopeo,
    "docker": Bench.run_docker,
}


def stored(address: str, repository: str, reference: str) -> tuple[str, str] | None:
    """(digest, media type) of what the registry holds under a tag, asked directly (not through a proxy)."""
    response = httpx.head(
        f"http://{address}/v2/{repository}/manifests/{reference}",
        headers={"Accept": ", ".join(oci.MANIFEST_ACCEPT)},
        timeout=10,
    )
    if response.status_code != 200:
        return None
    return response.headers["Docker-Content-Digest"], response.headers.get("Content-Type", "")


def engine_child(source: str, destination: str) -> int:
    """Promote with the engine as the CLI does (one client per registry) and print the time it took as JSON."""
    src, dst = oci.parse_reference(source), oci.parse_reference(destination)

    async def go() -> promote_engine.PromoteResult:
        src_client = RegistryClient(src.registry)
        dst_client = src_client if dst.registry == src.registry else RegistryClient(dst.registry)
        try:
            return await promote_engine.promote(
                promote_engine.Endpoint(src_client, src.registry, src.repository),
                src.reference,
                promote_engine.Endpoint(dst_client, dst.registry, dst.repository),
                [dst.tag or SOURCE_TAG],
            )
        finally:
            await src_client.close()
            if dst_client is not src_client:
                await dst_client.close()

    t0 = time.perf_counter()
    result = asyncio.run(go())
    print(json.dumps({"seconds": time.perf_counter() - t0, "result": result.to_json()}))
    return 0


# -- rendering -------------------------------------------------------------------------


def _fmt_bytes(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return "—"


def _fmt_ratio(peer: float | None, funade: float | None) -> str:
    if peer is None or funade is None or funade <= 0:
        return "—"
    r = peer / funade
    return f"{r:,.0f}×" if r >= 100 else f"{r:.2f}×"


def _fmt_digest(method: Obj, source: str) -> str:
    kept, digests = method["digests_kept"], method["digests"]
    if not digests:
        return "—"
    if kept == len(digests):
        return f"yes ({kept}/{len(digests)})"
    other = next((d for d in digests if d != source), None)
    shown = other[:19] + "…" if other else "nothing"
    style = "red" if method["method"] in KEEPS_DIGEST else "yellow"
    return f"[{style}]no ({kept}/{len(digests)}): {shown}[/{style}]"


def table(result: Obj, scenario: Obj) -> Table:
    runs = result["runs"]
    t = Table(
        title=f"{scenario['key']}. {scenario['title']} (median of {runs} run{'s' if runs > 1 else ''})",
        caption="bytes = both directions through counting proxies; ratio = peer / funade (CLI); "
        "requests and blobs mounted / downloaded / uploaded from the registries' access logs",
    )
    t.add_column("method")
    t.add_column("seconds", justify="right")
    t.add_column("bytes moved", justify="right")
    t.add_column("digest kept")
    t.add_column("time ratio", justify="right")
    t.add_column("bytes ratio", justify="right")
    t.add_column("requests", justify="right")
    t.add_column("blobs mnt / get / put", justify="right")
    funade = next(m for m in scenario["methods"] if m["method"] == "funade")
    for m in scenario["methods"]:
        peer = m["method"] in ("skopeo", "docker")
        req = m["requests"]
        seconds = "failed" if m["seconds"] is None else f"{m['seconds']:.2f} s"
        if m["errors"] and m["seconds"] is not None:
            seconds += f" ({len(m['errors'])} failed)"
        t.add_row(
            m["label"] if m["method"] != "engine" else "  " + m["label"],
            seconds,
            _fmt_bytes(m["bytes"]),
            _fmt_digest(m, result["image"]["digest"]),
            _fmt_ratio(m["seconds"], funade["seconds"]) if peer else "—",
            _fmt_ratio(m["bytes"], funade["bytes"]) if peer else "—",
            str(req["requests"]) if req else "—",
            f"{req['mounted']} / {req['downloaded']} / {req['uploaded']}" if req else "—",
        )
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per method; the median is reported")
    parser.add_argument("--size-mb", type=int, default=100, help="image size in MB, in two random layers")
    parser.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    parser.add_argument("--engine-child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine_child:
        return engine_child(*args.engine_child)
    if args.runs < 1 or args.size_mb < 2:
        parser.error("--runs must be at least 1 and --size-mb at least 2")
    missing = [tool for tool in ("docker", "skopeo") if shutil.which(tool) is None]
    if missing or not FUNADE.exists():
        err.print(f"[red]missing: {', '.join(missing) or FUNADE} (run `make setup`; apt-get install skopeo)[/red]")
        return 2
    started = time.monotonic()
    bench = Bench(args.runs, args.size_mb)

    def steps() -> Obj:
        bench.start()
        bench.execute()
        return bench.result(started)

    outcome, code = guarded(steps, bench.cleanup, (BenchError, httpx.HTTPError, OSError), err)
    if outcome is None:
        return code
    image = outcome["image"]
    sizes = " + ".join(_fmt_bytes(s) for s in image["layers"])
    header = (
        f"image: {sizes} compressed layers, {image['media_type']}, {image['digest'][:19]}…; "
        f"setup {outcome['setup_seconds']:.0f} s"
    )
    tables = [table(outcome, scenario) for scenario in outcome["scenarios"]]
    problems = [f"[red]problem:[/red] {problem}" for problem in outcome["problems"]]
    report(outcome, [header, *tables, *problems, f"total {outcome['total_seconds']:.0f} s"], as_json=args.json)
    return 1 if outcome["problems"] else code


if __name__ == "__main__":
    sys.exit(main())
