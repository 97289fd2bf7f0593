"""An in-memory stand-in for the in-cluster Service proxies: `FakeServiceProxies`.

It implements `services.ClusterProxies` without Docker: `ensure` records which proxies
run and says what it did the way `ServiceProxies` does (created, updated, reloaded,
removed), and `servers` reports each proxy's servers as ``show stat`` would, with the
sessions a test sets. `fail` makes the next passes raise, as Docker going away would.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from funade.core import services, traffic

__all__ = ["FakeServiceProxies"]


class FakeServiceProxies:
    """Implements `services.ClusterProxies` in memory; ``running`` maps Service refs to their proxies."""

    def __init__(self) -> None:
        self.running: dict[str, services.ClusterProxy] = {}
        self.passes = 0
        self.failure: str | None = None
        self._sessions: dict[tuple[str, str, str], int] = {}

    def fail(self, message: str | None) -> None:
        """Raise ``message`` from every `ensure` until called with None."""
        self.failure = message

    def set_sessions(self, ref: str, backend: str, server: str, sessions: int) -> None:
        self._sessions[(ref, backend, server)] = sessions

    async def ensure(self, proxies: Sequence[services.ClusterProxy]) -> list[str]:
        self.passes += 1
        if self.failure is not None:
            raise RuntimeError(self.failure)
        wanted = {proxy.ref: proxy for proxy in proxies}
        done = [f"removed {ref}" for ref in sorted(set(self.running) - set(wanted))]
        for ref, proxy in sorted(wanted.items()):
            traffic.check(proxy.plane)
            before = self.running.get(ref)
            if before is None or before.aliases != proxy.aliases:
                done.append(f"created {ref}")
            elif before.plane != proxy.plane:
                commands = traffic.runtime_commands(before.plane, proxy.plane, map_dir="/funade/maps")
                done.append(f"{'reloaded' if commands is None else 'updated'} {ref}")
        self.running = wanted
        return done

    async def servers(self, refs: Collection[str]) -> dict[str, list[traffic.ServerStatus]]:
        found: dict[str, list[traffic.ServerStatus]] = {}
        for ref in refs:
            proxy = self.running.get(ref)
            if proxy is None:
                continue
            found[ref] = [
                traffic.ServerStatus(
                    backend=backend,
                    server=server,
                    status="UP",
                    weight=0 if server_ref.endpoint.state is traffic.EndpointState.DRAINING else 1,
                    sessions=self._sessions.get((ref, backend, server), 0),
                    last_change=0,
                )
                for (backend, server), server_ref in traffic.servers(proxy.plane).items()
            ]
        return found


if TYPE_CHECKING:
    from .serviceproxy import ServiceProxies

    def _both_are_cluster_proxies(real: ServiceProxies, fake: FakeServiceProxies) -> list[services.ClusterProxies]:
        return [real, fake]
