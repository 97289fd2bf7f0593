"""The seams between use cases and I/O: what the engine needs from a store and a clock.

Adapters implement these Protocols; unit tests use the in-memory fakes beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Event", "ObjectKey", "Store"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class ObjectKey:
    """Identifies a stored object: kind, namespace ('' for cluster-scoped) and name."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Obj) -> ObjectKey:
        meta = obj.get("metadata", {})
        return cls(str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"]))

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()}/{where}{self.name}"


@dataclass(frozen=True)
class Event:
    """A Kubernetes-style event about one object."""

    time: float
    namespace: str
    kind: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int = 1


class Store(Protocol):
    """Desired state and funade's own records."""

    def get(self, key: ObjectKey) -> Obj | None: ...

    def list_objects(self, kind: str, namespace: str | None = None) -> list[Obj]: ...

    def put_many(self, objs: Sequence[Obj]) -> list[tuple[Obj, str]]:
        """Create or update objects in one transaction.

        Returns each stored object with "created", "configured" or "unchanged".
        """
        ...

    def put_status(self, key: ObjectKey, status: Obj) -> None: ...

    def delete(self, key: ObjectKey) -> bool: ...

    def add_event(self, event: Event) -> None: ...

    def delete_events(self, namespace: str) -> None: ...

    def events(
        self, namespace: str | None = None, kind: str | None = None, name: str | None = None, limit: int = 200
    ) -> list[Event]: ...
