"""One HAProxy process owned by funade: the local target's data plane.

HAProxy runs in master-worker mode (``-W -S master.sock``) from files under
``$FUNADE_HOME/haproxy``. `HAProxy.ensure` applies a `traffic.DataPlane` the cheapest
way that keeps every connection: runtime-API commands when they can express the change,
else a seamless reload (the master re-executes, hands the listening sockets to the new
worker, and the old worker finishes its in-flight requests), else a start. Every new
configuration is checked with ``haproxy -c`` first; a bad one is reported with HAProxy's
message and the running process is left alone. A process that died (killed, crashed) is
found by `HAProxy.alive` and started again with the current plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from funade.core import traffic

from .runtime import CommandError, Proc, RuntimeClient

__all__ = ["HAProxy", "HAProxyError", "find_binary"]

_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; keep a margin


class HAProxyError(Exception):
    """HAProxy is missing, refused a configuration, or did not come up."""


def find_binary() -> str:
    """The ``haproxy`` executable: on PATH, or where Debian puts it."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise HAProxyError(
            "HAProxy is not installed: apt-get install haproxy (the Debian package; scripts/setup.sh installs it)"
        )
    return found


class HAProxy:
    """Starts, reloads, drives and stops the HAProxy of one funade home.

    Args:
        home: the funade home; files go to ``home/haproxy``.
        binary: the haproxy executable (default: `find_binary`).
        hard_stop_after: how long an old worker may finish in-flight requests after a reload.
        start_timeout: how long a start or reload may take before it counts as failed.
    """

    def __init__(
        self,
        home: Path,
        binary: str | None = None,
        *,
        hard_stop_after: float = 60.0,
        start_timeout: float = 15.0,
    ) -> None:
        self.home = home
        self.dir = home / "haproxy"
        self.config = self.dir / "haproxy.cfg"
        self.maps = self.dir / "maps"
        self.log = self.dir / "haproxy.log"
        self.pid_file = self.dir / "haproxy.pid"
        sockets = self.dir
        if len(str(sockets / "runtime.sock")) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
            sockets = Path(tempfile.gettempdir()) / f"funade-haproxy-{digest}"
        self.runtime_socket = sockets / "runtime.sock"
        self.master_socket = sockets / "master.sock"
        self.runtime = RuntimeClient(self.runtime_socket)
        self.master = RuntimeClient(self.master_socket)
        self._binary = binary
        self._hard_stop_after = hard_stop_after
        self._start_timeout = start_timeout
        self._plane: traffic.DataPlane | None = None  # what the running process carries, when known
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    @property
    def plane(self) -> traffic.DataPlane | None:
        """The plane last applied (None before the first `ensure`)."""
        return self._plane

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_binary()
        return self._binary

    # -- state ---------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The master's pid when it runs, else None."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # reaped: it died
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in self._processes() else None

    async def proc(self) -> Proc | None:
        """The master's ``show proc``, or None when the master does not answer."""
        try:
            return await self.master.proc()
        except (OSError, CommandError):
            return None

    async def worker_pid(self) -> int | None:
        """The current worker's pid, or None."""
        proc = await self.proc()
        return proc.workers[0] if proc and proc.workers else None

    async def alive(self) -> bool:
        """The master runs, answers on its CLI and has a worker whose admin socket answers."""
        master = self.pid()
        if master is None:
            return False
        proc = await self.proc()
        if proc is None or proc.master != master or not proc.workers:
            return False
        try:
            info = await self.runtime.info()
        except (OSError, CommandError):
            return False
        return info.get("Pid") == str(proc.workers[0])

    async def servers(self) -> list[traffic.ServerStatus]:
        """Every server of the running worker (``show stat``)."""
        return await self.runtime.servers()

    # -- applying a plane ----------------------------------------------------------------------

    async def ensure(self, plane: traffic.DataPlane | None = None) -> traffic.Applied:
        """Make HAProxy carry ``plane`` (default: the last applied one).

        Runtime commands when they can express the change, a seamless reload otherwise, a
        start when nothing runs, a restart when the process died. Raises `TrafficError`
        for a plane HAProxy cannot carry and `HAProxyError` when HAProxy refuses it.
        """
        async with self._lock:
            desired = plane if plane is not None else self._plane
            if desired is None:
                raise HAProxyError("no data plane has been applied yet")
            config = self._render(desired, self.maps)
            if not await self.alive():
                died = self.pid_file.exists()
                await self._validate(desired)
                await self._kill_leftovers()
                self._write(config, desired)
                await self._start()
                self._plane = desired
                return traffic.Applied(traffic.Action.RESTART if died else traffic.Action.START, pid=self.pid())
            if self._plane is not None:
                commands = traffic.runtime_commands(self._plane, desired, map_dir=str(self.maps))
                if commands == []:
                    self._write(config, desired)
                    return traffic.Applied(traffic.Action.UNCHANGED, pid=self.pid())
                if commands is not None:
                    try:
                        await self.runtime.execute(commands)
                    except CommandError:
                        pass  # e.g. a server still holds connections: the reload below converges
                    else:
                        self._write(config, desired)  # a later reload or restart starts from here
                        self._plane = desired
                        return traffic.Applied(traffic.Action.RUNTIME, tuple(commands), pid=self.pid())
            await self._validate(desired)
            self._write(config, desired)
            self._plane = None  # unknown until the reload is through
            await self._reload()
            self._plane = desired
            return traffic.Applied(traffic.Action.RELOAD, pid=self.pid())

    async def reload(self) -> None:
        """Reload the running configuration seamlessly (listeners never close)."""
        async with self._lock:
            await self._reload()

    async def cap_ejections(self) -> list[str]:
        """Re-admit servers ejected beyond ``max_ejection_percent``; returns the commands run."""
        if self._plane is None:
            return []
        commands = traffic.ejection_cap_commands(self._plane, await self.servers())
        if commands:
            await self.runtime.execute(commands)
        return commands

    async def stop(self, timeout: float = 10.0) -> bool:
        """Stop HAProxy: in-flight requests get ``timeout`` seconds, then it is killed.

        Returns True when something was running.
        """
        async with self._lock:
            pids = self._processes()
            master = self.pid()
            if master is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(master, signal.SIGUSR1)  # soft stop: finish requests, then exit
            deadline = time.monotonic() + timeout
            while self._processes() and time.monotonic() < deadline:
                self._reap()
                await asyncio.sleep(0.05)
            await self._kill_leftovers()
            if not self._processes():
                for path in (self.pid_file, self.runtime_socket, self.master_socket):
                    path.unlink(missing_ok=True)
                if self.runtime_socket.parent != self.dir:  # the short socket directory under /tmp
                    with contextlib.suppress(OSError):
                        self.runtime_socket.parent.rmdir()
            self._plane = None
            return bool(pids)

    # -- internals -----------------------------------------------------------------------------

    def _render(self, plane: traffic.DataPlane, map_dir: Path) -> str:
        return traffic.render_config(
            plane,
            runtime_socket=str(self.runtime_socket),
            map_dir=str(map_dir),
            hard_stop_after=self._hard_stop_after,
        )

    def _write(self, config: str, plane: traffic.DataPlane) -> None:
        _write_maps(self.maps, plane)
        _atomic_write(self.config, config)

    async def _validate(self, plane: traffic.DataPlane) -> None:
        """``haproxy -c`` on the configuration (with its maps in a scratch directory)."""
        check = self.dir / "check"
        _write_maps(check / "maps", plane)
        path = check / "haproxy.cfg"
        _atomic_write(path, self._render(plane, check / "maps"))
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            "-f",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            lines = output.decode(errors="replace").strip().splitlines()
            message = "\n".join([line for line in lines if "[ALERT]" in line] or lines)
            raise HAProxyError(f"HAProxy refused the configuration ({path}):\n{message}")

    async def _start(self) -> None:
        self.runtime_socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in (self.runtime_socket, self.master_socket):
            stale.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "-W",
                    "-S",
                    f"{self.master_socket},mode,600",
                    "-f",
                    str(self.config),
                    "-p",
                    str(self.pid_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise HAProxyError(f"HAProxy exited with code {code} while starting:\n{self._log_tail()}")
            if self.pid_file.exists() and await self.alive():
                return
            await asyncio.sleep(0.05)
        await self._kill_leftovers()
        raise HAProxyError(f"HAProxy did not come up within {self._start_timeout:g}s:\n{self._log_tail()}")

    async def _reload(self) -> None:
        before = await self.master.proc()
        with contextlib.suppress(OSError):
            await self.master.raw("reload")  # the master closes the connection as it re-executes
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            proc = await self.proc()
            if proc is not None and proc.failed_reloads > before.failed_reloads:
                raise HAProxyError(f"HAProxy could not reload; it runs the previous configuration:\n{self._log_tail()}")
            if (
                proc is not None
                and proc.reloads > before.reloads
                and proc.workers
                and proc.workers[0] not in before.workers
                and await self.alive()
            ):
                return
            await asyncio.sleep(0.05)
        raise HAProxyError(f"HAProxy did not finish reloading within {self._start_timeout:g}s:\n{self._log_tail()}")

    def _processes(self) -> list[int]:
        """Every live process (master, workers, old workers) running our configuration."""
        self._reap()
        program = Path(self.binary).name.encode()
        ours = [b"-f", str(self.config).encode()]
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and argv[0].rsplit(b"/", 1)[-1] == program and _contains(argv, ours):
                found.append(int(entry.name))
        return found

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    async def _kill_leftovers(self, timeout: float = 5.0) -> None:
        """SIGKILL whatever still runs our configuration (a master without CLI, orphan workers)."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self._processes() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _contains(argv: list[bytes], pair: list[bytes]) -> bool:
    return any(argv[i : i + len(pair)] == pair for i in range(len(argv)))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text)
    scratch.replace(path)


def _write_maps(directory: Path, plane: traffic.DataPlane) -> None:
    maps = traffic.render_maps(plane)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in maps.items():
        _atomic_write(directory / name, text)
    for stale in directory.glob("*.map"):
        if stale.name not in maps:
            stale.unlink()
