"""The HTTP load the traffic benchmarks put on a Service, with every request's outcome kept.

Why our own client: the benches count failures by kind (non-2xx, reset, refused, remote
disconnect, timeout) and tell the app's versions apart by ``X-Version``, request by
request; a load tool would only summarise. The clients are keep-alive HTTP/1.1 on
asyncio, in a child process so the bench's own work never delays them. A
:class:`Profile` says how they behave: closed loop (``zero_downtime.py``) or paced at a
constant rate (``canary.py``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from harness import BenchError

__all__ = [
    "DISCONNECT",
    "HTTP_ERROR",
    "KINDS",
    "OK",
    "OTHER",
    "REFUSED",
    "RESET",
    "TIMEOUT",
    "Load",
    "Profile",
    "Records",
]

OK, HTTP_ERROR, RESET, REFUSED, DISCONNECT, TIMEOUT, OTHER = range(7)
KINDS = {
    HTTP_ERROR: "non-2xx",
    RESET: "reset",
    REFUSED: "refused",
    DISCONNECT: "remote disconnect",
    TIMEOUT: "timeout",
    OTHER: "other",
}


@dataclass(frozen=True)
class Profile:
    """How the clients behave."""

    clients: int
    rate: float | None = None  # requests per second shared by the clients; None: closed loop, each as fast as it can
    max_seconds: float | None = None  # the child stops by itself after this long, whatever happens to the bench
    request_timeout: float = 1.0  # a request (connect included) that takes longer is a failure
    failure_pause: float = 0.0  # a client waits this long after a failure before its next request
    keep_after_non_2xx: bool = True  # False: a non-2xx answer also drops the connection, like any other failure
    unbuffered: bool = False  # set_write_buffer_limits(0) on each connection: drain() waits for the socket


class _Disconnected(Exception):
    """The server closed the connection before a whole response arrived."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response; return (status, version major from X-Version, keep the connection)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _Disconnected from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise _Disconnected(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    keep = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    try:
        if "content-length" in headers:
            await reader.readexactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif status not in (204, 304):
            await reader.read()  # body until EOF
            keep = False
    except asyncio.IncompleteReadError as exc:
        raise _Disconnected from exc
    version = headers.get("x-version", "0").split(".")[0]
    return status, int(version) if version.isdigit() else 0, keep


class Records:
    """Every request: start (monotonic s), latency (s), outcome, HTTP status, app version."""

    def __init__(self) -> None:
        self.start = array.array("d")
        self.latency = array.array("d")
        self.outcome = array.array("b")
        self.status = array.array("H")
        self.version = array.array("b")

    def add(self, start: float, latency: float, outcome: int, status: int, version: int) -> None:
        self.start.append(start)
        self.latency.append(latency)
        self.outcome.append(outcome)
        self.status.append(status)
        self.version.append(version)

    def dump(self) -> dict[str, bytes]:
        return {k: getattr(self, k).tobytes() for k in ("start", "latency", "outcome", "status", "version")}

    @classmethod
    def load(cls, data: dict[str, bytes]) -> Records:
        records = cls()
        for k, v in data.items():
            getattr(records, k).frombytes(v)
        return records


async def _client(port: int, profile: Profile, stop: asyncio.Event, records: Records, offset: float) -> None:
    """One keep-alive client: its next request at once (closed loop) or in its next slot (paced).

    A paced client skips a slot it missed, never bunches requests. After a failure the
    client drops the connection and opens a new one for its next request.
    """
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: funade-bench\r\n\r\n".encode()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    period = profile.clients / profile.rate if profile.rate else 0.0
    due = time.monotonic() + offset
    while not stop.is_set():
        if period and (delay := due - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        t0 = time.monotonic()
        due = max(due + period, t0)
        outcome, status, version, keep = OK, 0, 0, True
        try:
            async with asyncio.timeout(profile.request_timeout):
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    if profile.unbuffered:
                        writer.transport.set_write_buffer_limits(0)
                assert reader is not None
                writer.write(request)
                await writer.drain()
                status, version, keep = await _read_response(reader)
            if not 200 <= status < 300:
                outcome = HTTP_ERROR
        except TimeoutError:
            outcome = TIMEOUT
        except ConnectionRefusedError:
            outcome = REFUSED
        except ConnectionResetError:
            outcome = RESET
        except (_Disconnected, BrokenPipeError, ConnectionAbortedError):
            outcome = DISCONNECT
        except (OSError, ValueError):
            outcome = OTHER
        records.add(t0, time.monotonic() - t0, outcome, status, version)
        dropped = outcome != OK and not (outcome == HTTP_ERROR and profile.keep_after_non_2xx)
        if dropped or not keep:
            if writer is not None:
                writer.transport.abort()
            reader = writer = None
        if outcome != OK and profile.failure_pause:
            await asyncio.sleep(profile.failure_pause)
    if writer is not None:
        writer.transport.abort()


async def _load(port: int, profile: Profile, conn: Connection) -> Records:
    records = Records()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopped() -> None:
        loop.remove_reader(conn.fileno())
        stop.set()

    loop.add_reader(conn.fileno(), stopped)  # a message from the parent, or its death, stops the load
    if profile.max_seconds is not None:
        loop.call_later(profile.max_seconds, stop.set)  # and it stops by itself in any case
    period = profile.clients / profile.rate if profile.rate else 0.0
    offsets = [i * period / profile.clients for i in range(profile.clients)]  # paced clients take turns
    await asyncio.gather(*(_client(port, profile, stop, records, offset) for offset in offsets))
    return records


def load_main(port: int, profile: Profile, conn: Connection) -> None:
    """Child process: the load until the parent writes to ``conn`` (or ``max_seconds``), then the records back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    conn.send("started")
    records = asyncio.run(_load(port, profile, conn))
    with contextlib.suppress(OSError):
        conn.send(records.dump())
    conn.close()


class Load:
    """The load on 127.0.0.1:``port`` from a child process, started at once; ``stop`` returns every request."""

    def __init__(self, port: int, profile: Profile) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=load_main, args=(port, profile, child), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(30) or self.conn.recv() != "started":
            raise BenchError("the load client did not start")

    def stop(self) -> Records:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        if not self.conn.poll(30):
            raise BenchError("the load client did not stop")
        records = Records.load(self.conn.recv())
        self.process.join(10)
        return records

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
