"""An in-memory data plane for unit tests: `FakeProxy`.

It takes the same decisions as `HAProxy` (runtime commands when `traffic.runtime_commands`
finds them, a reload otherwise, a restart after `kill`) without any process, and reports
servers the way ``show stat`` does. Hooks make the rest happen on cue: a crash, an
ejected server, in-flight sessions, a configuration HAProxy refuses, a port another
program holds (``occupied``: a start or reload that needs it fails as HAProxy's bind does).
"""

from __future__ import annotations

from funade.core import traffic

from .process import HAProxyError

__all__ = ["FakeProxy"]


class FakeProxy:
    """Implements `traffic.Proxy` in memory; ``history`` records every `traffic.Applied`."""

    def __init__(self, map_dir: str = "/fake/haproxy/maps") -> None:
        self.map_dir = map_dir
        self.plane: traffic.DataPlane | None = None
        self.running = False
        self.master_pid = 0
        self.worker_pid = 0
        self.reloads = 0
        self.history: list[traffic.Applied] = []
        self.commands: list[str] = []
        self._next_pid = 1000
        self._refusal: str | None = None
        self._ejected: set[tuple[str, str]] = set()
        self._sessions: dict[tuple[str, str], int] = {}
        self.occupied: set[int] = set()

    # -- traffic.Proxy --------------------------------------------------------------------------

    async def ensure(self, plane: traffic.DataPlane | None = None) -> traffic.Applied:
        desired = plane if plane is not None else self.plane
        if desired is None:
            raise HAProxyError("no data plane has been applied yet")
        traffic.check(desired)
        bound = {li.port for li in self.plane.listeners} if self.running and self.plane else set()
        for listener in desired.listeners:
            if listener.port in self.occupied and listener.port not in bound:
                raise HAProxyError(
                    f"Starting frontend {traffic.frontend_name(listener)}: cannot bind socket "
                    f"(Address already in use) [127.0.0.1:{listener.port}]"
                )
        if not self.running:
            self._validate()
            action = traffic.Action.RESTART if self.master_pid else traffic.Action.START
            self.master_pid = self._pid()
            self.worker_pid = self._pid()
            self.running = True
            self._ejected.clear()
            return self._done(desired, traffic.Applied(action, pid=self.master_pid))
        commands = None if self.plane is None else traffic.runtime_commands(self.plane, desired, map_dir=self.map_dir)
        if commands == []:
            return self._done(desired, traffic.Applied(traffic.Action.UNCHANGED, pid=self.master_pid))
        if commands is not None:
            self.commands += commands
            return self._done(desired, traffic.Applied(traffic.Action.RUNTIME, tuple(commands), pid=self.master_pid))
        self._validate()
        self.reloads += 1
        self.worker_pid = self._pid()
        self._ejected.clear()
        return self._done(desired, traffic.Applied(traffic.Action.RELOAD, pid=self.master_pid))

    async def alive(self) -> bool:
        return self.running

    async def servers(self) -> list[traffic.ServerStatus]:
        if not self.running or self.plane is None:
            raise OSError("HAProxy is not running")
        found = []
        for (backend, server), ref in traffic.servers(self.plane).items():
            state = ref.endpoint.state
            if state is traffic.EndpointState.DOWN:
                status = "MAINT"
            elif (backend, server) in self._ejected:
                status = "DOWN"
            else:
                status = "UP"
            weight = 0 if state is traffic.EndpointState.DRAINING else 1
            found.append(
                traffic.ServerStatus(
                    backend=backend,
                    server=server,
                    status=status,
                    weight=weight,
                    sessions=self._sessions.get((backend, server), 0),
                    last_change=0,
                    address=f"{ref.endpoint.address}:{ref.endpoint.port}",
                )
            )
        return found

    async def cap_ejections(self) -> list[str]:
        if not self.running or self.plane is None:
            return []
        commands = traffic.ejection_cap_commands(self.plane, await self.servers())
        for command in commands:
            # "set server B/S state ready" (or health up): the fake re-admits the server.
            parts = command.split()
            if len(parts) >= 3 and "/" in parts[2]:
                backend, _, server = parts[2].partition("/")
                self._ejected.discard((backend, server))
        self.commands += commands
        return commands

    async def stop(self) -> bool:
        was = self.running
        self.running = False
        self.master_pid = 0
        return was

    # -- test hooks -----------------------------------------------------------------------------

    def kill(self) -> None:
        """The process dies (SIGKILL, crash): the next `ensure` restarts it."""
        self.running = False

    def refuse(self, message: str | None) -> None:
        """Make the next configuration checks fail with ``message`` (None: accept again)."""
        self._refusal = message

    def eject(self, backend: str, server: str, ejected: bool = True) -> None:
        """Mark a server down as outlier detection would (or bring it back)."""
        (self._ejected.add if ejected else self._ejected.discard)((backend, server))

    def set_sessions(self, backend: str, server: str, sessions: int) -> None:
        """How many requests a server has in flight."""
        self._sessions[(backend, server)] = sessions

    # -- internals ------------------------------------------------------------------------------

    def _validate(self) -> None:
        if self._refusal is not None:
            raise HAProxyError(f"HAProxy refused the configuration:\n{self._refusal}")

    def _pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    def _done(self, plane: traffic.DataPlane, applied: traffic.Applied) -> traffic.Applied:
        self.plane = plane
        self.history.append(applied)
        return applied
