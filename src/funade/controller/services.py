"""The services controller: keeps HAProxy carrying every Service, with the pods that back it now.

Each pass rebuilds the data plane from the stored Services and the live pod views
(:func:`funade.core.services.plane`) and hands it to the proxy, which applies a change
through its runtime API, or a seamless reload, or restarts HAProxy when it was killed.
A pod that terminates is drained before its containers get SIGTERM: the kubelet calls
:meth:`ServiceController.drain`, which applies the plane with the pod draining and waits
until HAProxy holds no request on it (or the grace period runs out).

A loopback port another program has taken (a Service keeps its port across restarts, and
something else may have bound it meanwhile) would stop HAProxy from starting at all: when
HAProxy refuses a plane, the ports it does not hold yet are probed, the listeners on taken
ones are left out, and the rest is served. Each pass probes the taken ports again and
brings their listeners back once they are free; the Service's status and a Warning event
say which port is taken.

Pods inside reach the same Services by name through their in-cluster proxies (one per
Service, :class:`services.ClusterProxies`), which each pass brings to the same endpoints
and routing; a draining pod also waits for the HTTP requests those proxies hold on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from funade.core import istio, services, traffic
from funade.core.ports import Event, ObjectKey, Store

__all__ = ["ServiceController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

_DRAIN_POLL = 0.05


class ServiceController:
    """Serves the Services of one store through one proxy."""

    def __init__(
        self,
        store: Store,
        proxy: traffic.Proxy,
        pods: Callable[[], list[Obj]],
        scrape: Callable[[list[services.ScrapeTarget]], object] | None = None,
        cluster: services.ClusterProxies | None = None,
        port_free: Callable[[int], bool] = lambda port: True,
    ) -> None:
        """``port_free(port)``: whether 127.0.0.1:PORT can be bound now (probed only after HAProxy refused a plane)."""
        self.store = store
        self.proxy = proxy
        self.pods = pods
        # The Services' in-cluster proxies (pods reach `web`, `web.ns` …); None: pods reach no Service by name.
        self.cluster = cluster
        self.cluster_applied: list[services.ClusterProxy] = []
        self.cluster_error: str | None = None
        # Where the pods of Services annotated prometheus.io/scrape go (the embedded Prometheus).
        self.scrape = scrape
        self.applied: traffic.DataPlane | None = None
        self.error: str | None = None
        self.port_free = port_free
        # Loopback ports another program holds: port -> the listener left out ("ns/name:port").
        self.taken: dict[int, str] = {}
        self._lock = asyncio.Lock()

    def specs(self) -> list[tuple[services.ServiceSpec, dict[str, int]]]:
        """Every stored Service the local target can serve, with its loopback ports."""
        out = []
        for obj in self.store.list_objects("Service"):
            try:
                out.append((services.parse(obj), services.local_ports(obj)))
            except services.ServiceError as exc:  # stored before validation existed: skip it, say why
                log.warning("%s", exc)
        return out

    def routing(self) -> dict[str, services.Routing]:
        """Per Service, how its requests are routed: its TrafficSplit when it has one, else its Istio rules."""
        out: dict[str, services.Routing] = {}
        try:
            out, _ = istio.routing(
                self.store.list_objects("VirtualService"),
                self.store.list_objects("DestinationRule"),
                [spec for spec, _ in self.specs()],
            )
        except istio.IstioError as exc:  # rules that were valid alone clash together: serve without them
            log.warning("%s", exc)
            self.error = str(exc)
        for obj in self.store.list_objects(services.SPLIT_KIND):
            try:
                ref, routing = services.split_routing(obj)
            except services.ServiceError as exc:
                log.warning("%s", exc)
                continue
            out[ref] = routing
        return out

    async def reconcile(self) -> traffic.Applied | None:
        """Apply the current plane when it changed or HAProxy is not running it; None when nothing to do.

        The loopback plane first (what users and the rollout's checks reach), then the
        in-cluster proxies of the same Services.
        """
        async with self._lock:
            specs, pods, routing = self.specs(), self.pods(), self.routing()
            if self.scrape is not None:
                try:
                    self.scrape(services.scrape_targets([spec for spec, _ in specs], pods))
                except Exception as exc:  # metrics must never stop traffic
                    log.warning("cannot update the scrape targets: %s", exc)
            applied = await self._apply(services.plane(specs, pods, routing))
            await self._ensure_cluster([spec for spec, _ in specs], pods, routing)
            return applied

    async def _apply(self, desired: traffic.DataPlane) -> traffic.Applied | None:
        if self.applied is None and not desired.listeners:
            return None  # no Service yet: no HAProxy either
        self.taken = {port: name for port, name in self.taken.items() if not self.port_free(port)}
        plane = _without(desired, self.taken)
        if plane == self.applied and await self.proxy.alive():
            await self._cap_ejections(plane)
            return None
        applied: traffic.Applied | None
        try:
            applied = await self.proxy.ensure(plane)
        except Exception as exc:  # TrafficError, HAProxyError: keep serving the last good plane
            applied = await self._without_taken_ports(desired, plane, exc)
            if applied is None:
                return None
            plane = _without(desired, self.taken)
        self.applied = plane
        self.error = _taken_message(self.taken)
        if applied.action is not traffic.Action.UNCHANGED:
            log.info("data plane: %s (%d listeners)", applied.action.value, len(plane.listeners))
        return applied

    async def _without_taken_ports(
        self, desired: traffic.DataPlane, refused: traffic.DataPlane, error: Exception
    ) -> traffic.Applied | None:
        """After HAProxy refused ``refused``: serve it without the listeners whose port another program holds."""
        held = {li.port for li in self.applied.listeners} if self.applied and await self.proxy.alive() else set()
        newly = {li.port: li.name for li in refused.listeners if li.port not in held and not self.port_free(li.port)}
        if not newly:
            self.error = str(error)
            log.error("cannot apply the data plane: %s", error)
            return None
        self.taken.update(newly)
        for port, name in newly.items():
            log.error("127.0.0.1:%d (%s) is taken by another program: serving the other Services", port, name)
            self._warn_taken(port, name)
        try:
            return await self.proxy.ensure(_without(desired, self.taken))
        except Exception as exc:
            self.error = str(exc)
            log.error("cannot apply the data plane: %s", exc)
            return None

    def _warn_taken(self, port: int, listener: str) -> None:
        namespace, _, rest = listener.partition("/")
        name = rest.partition(":")[0]
        if self.store.get(ObjectKey("Service", namespace, name)) is None:
            return
        message = f"127.0.0.1:{port} is taken by another program: this port is not served until it is free"
        self.store.add_event(Event(time.time(), namespace, "Service", name, "Warning", "PortTaken", message))

    async def _ensure_cluster(
        self, specs: list[services.ServiceSpec], pods: list[Obj], routing: dict[str, services.Routing]
    ) -> None:
        """Bring the in-cluster proxies to the Services as they are now (level-based: every pass)."""
        if self.cluster is None:
            return
        desired = services.cluster_proxies(specs, pods, routing)
        try:
            done = await self.cluster.ensure(desired)
        except Exception as exc:  # Docker away, an image that cannot be built: the loopback plane goes on
            self.cluster_error = str(exc)
            log.error("cannot run the in-cluster Service proxies: %s", exc)
            return
        self.cluster_applied = desired
        self.cluster_error = None
        for line in done:
            log.info("in-cluster proxy: %s", line)

    async def _cap_ejections(self, plane: traffic.DataPlane) -> None:
        """Istio's maxEjectionPercent, which HAProxy lacks: checked on every pass (the resync is 2 s)."""
        if not any(listener.outlier for listener in plane.listeners):
            return
        try:
            commands = await self.proxy.cap_ejections()
        except Exception as exc:  # HAProxy restarting: the next pass tries again
            log.debug("cannot cap ejections: %s", exc)
            return
        if commands:
            log.info("outlier detection: re-admitted %d server(s) over maxEjectionPercent", len(commands))

    async def drain(self, namespace: str, pod: str, deadline: float) -> None:
        """Stop sending new requests to ``pod`` and wait until its in-flight ones finish (or ``deadline``)."""
        if not any(spec.namespace == namespace for spec, _ in self.specs()):
            return
        await self.reconcile()  # the pod view says terminating: its endpoints drain
        plane = self.applied
        mine = set() if plane is None else _servers_of(plane, namespace, pod)
        # In-cluster proxies: HTTP requests only; a TCP connection (a database pool) lasts as long as it likes.
        inside = {
            proxy.ref: found
            for proxy in self.cluster_applied
            if proxy.namespace == namespace and (found := _servers_of(proxy.plane, namespace, pod, traffic.Mode.HTTP))
        }
        while (mine or inside) and time.time() < deadline:
            busy = False
            if mine:
                try:
                    busy = any((s.backend, s.server) in mine and s.sessions > 0 for s in await self.proxy.servers())
                except Exception:  # HAProxy gone: nothing to wait for
                    mine = set()
            if not busy and inside and self.cluster is not None:
                try:
                    held = await self.cluster.servers(inside)
                except Exception:  # the proxies are gone: nothing to wait for
                    inside = {}
                else:
                    busy = any(
                        (s.backend, s.server) in inside[ref] and s.sessions > 0
                        for ref, statuses in held.items()
                        if ref in inside
                        for s in statuses
                    )
            if not busy:
                return
            await asyncio.sleep(_DRAIN_POLL)

    def endpoints(self, namespace: str, name: str) -> dict[str, list[services.EndpointView]] | None:
        """The endpoints of one Service by port, or None when there is no such Service."""
        for spec, _ in self.specs():
            if spec.namespace == namespace and spec.name == name:
                return services.endpoints(spec, self.pods())
        return None


def _without(plane: traffic.DataPlane, taken: dict[int, str]) -> traffic.DataPlane:
    """The plane without the listeners on taken ports."""
    if not taken:
        return plane
    return dataclasses.replace(plane, listeners=tuple(li for li in plane.listeners if li.port not in taken))


def _taken_message(taken: dict[int, str]) -> str | None:
    if not taken:
        return None
    ports = ", ".join(f"127.0.0.1:{port} ({name})" for port, name in sorted(taken.items()))
    return f"taken by another program, not served until free: {ports}"


def _servers_of(
    plane: traffic.DataPlane, namespace: str, pod: str, mode: traffic.Mode | None = None
) -> set[tuple[str, str]]:
    """The (backend, server) pairs of ``plane`` standing for ``pod`` (optionally in listeners of one mode)."""
    modes = {listener.name: listener.mode for listener in plane.listeners}
    return {
        (backend, server)
        for (backend, server), ref in traffic.servers(plane).items()
        if ref.endpoint.name.startswith(f"{pod}-")
        and ref.listener.startswith(f"{namespace}/")
        and (mode is None or modes[ref.listener] is mode)
    }
