"""Traffic shaping as use cases: set weights, set a header route, clear — each one atomic write.

The rollout controller (canary, blue-green) drives a Service's traffic through these
calls; each writes one TrafficSplit object in a single store transaction, and the
services controller applies it to HAProxy through its runtime API (map files swapped
atomically, so a request sees either the old split or the new one). A TrafficSplit
takes precedence over a VirtualService for the same Service while it exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from funade.core import services
from funade.core.ports import ObjectKey, Store

__all__ = ["RoutingError", "TrafficRouter"]

Obj = dict[str, Any]


class RoutingError(Exception):
    """A split the Service cannot take; the message names the field."""


class TrafficRouter:
    """Reads and writes the TrafficSplit of Services."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, namespace: str, service: str) -> Obj | None:
        return self.store.get(ObjectKey(services.SPLIT_KIND, namespace, service))

    def _put(self, namespace: str, service: str, spec: Obj) -> Obj:
        obj: Obj = {
            "apiVersion": services.SPLIT_API_VERSION,
            "kind": services.SPLIT_KIND,
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"service": service, **spec},
        }
        try:
            services.split_routing(obj)
        except services.ServiceError as exc:
            raise RoutingError(str(exc)) from exc
        ((stored, _),) = self.store.put_many([obj])
        return stored

    def set_weights(
        self, namespace: str, service: str, subsets: Mapping[str, Mapping[str, str]], weights: Mapping[str, int]
    ) -> Obj:
        """Split the Service's requests between subsets (pod labels) by weight; header routes stay."""
        current = (self.get(namespace, service) or {}).get("spec") or {}
        spec = {
            "subsets": [{"name": name, "labels": dict(labels)} for name, labels in subsets.items()],
            "weights": dict(weights),
            "headerRoutes": current.get("headerRoutes") or [],
        }
        return self._put(namespace, service, spec)

    def set_split(
        self,
        namespace: str,
        service: str,
        subsets: Sequence[Obj],
        weights: Mapping[str, int],
        header_routes: Sequence[Obj] = (),
    ) -> Obj:
        """Write the whole split at once: subsets (``labels`` or another ``service``), weights and header routes."""
        current = (self.get(namespace, service) or {}).get("spec") or {}
        spec = {
            "subsets": [dict(s) for s in subsets],
            "weights": dict(weights),
            "headerRoutes": [dict(r) for r in header_routes],
        }
        if current == {"service": service, **spec}:
            return self.get(namespace, service) or {}
        return self._put(namespace, service, spec)

    def set_header_route(self, namespace: str, service: str, name: str, match: Sequence[Obj], subset: str) -> Obj:
        """Send requests matching ``match`` (headers/cookies conditions) to ``subset``, before the weights."""
        current = dict((self.get(namespace, service) or {}).get("spec") or {})
        routes = [r for r in current.get("headerRoutes") or [] if r.get("name") != name]
        routes.append({"name": name, "match": list(match), "subset": subset})
        return self._put(
            namespace,
            service,
            {
                "subsets": current.get("subsets") or [],
                "weights": current.get("weights") or {"all": 100},
                "headerRoutes": routes,
            },
        )

    def clear(self, namespace: str, service: str) -> bool:
        """Back to every endpoint of the Service taking requests; False when there was no split."""
        return self.store.delete(ObjectKey(services.SPLIT_KIND, namespace, service))
