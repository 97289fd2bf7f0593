"""The seams between use cases and I/O: what the engine needs from a store and a clock.

Adapters implement these Protocols; unit tests use the in-memory fakes beside them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from funade.core import oci

__all__ = [
    "ACTOR_HEADER",
    "AuditEntry",
    "Event",
    "MetricAnswer",
    "Metrics",
    "MetricsError",
    "ObjectKey",
    "Registry",
    "Store",
    "VulnData",
]

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


ACTOR_HEADER = "X-Funade-Actor"
"""The request header in which the CLI names its user (``user@host``) for the audit log."""


@dataclass(frozen=True)
class AuditEntry:
    """One decision a person (or a git commit) took against funade's safeguards.

    Unlike events, audit entries are never folded, expired or deleted with their namespace.

    Attributes:
        actor: who asked: the CLI's ``user@host``, or ``application/NAME`` for a GitOps sync.
        action: what was done, e.g. ``gate-override``.
        namespace: where.
        reason: the reason the actor gave.
        objects: the objects concerned (``Kind/name``).
        details: what the safeguard said (the refusals that were overridden).
    """

    time: float
    actor: str
    action: str
    namespace: str
    reason: str
    objects: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


class Store(Protocol):
    """Desired state and funade's own records."""

    def get(self, key: ObjectKey) -> Obj | None: ...

    def list_objects(self, kind: str, namespace: str | None = None) -> list[Obj]: ...

    def kinds(self) -> list[str]:
        """The kinds of the stored objects."""
        ...

    def labelled(self, label: str, value: str) -> list[Obj]:
        """Every stored object, of any kind, whose ``metadata.labels[label]`` is ``value``."""
        ...

    def put_many(self, objs: Sequence[Obj]) -> list[tuple[Obj, str]]:
        """Create or update objects in one transaction.

        Returns each stored object with "created", "configured" or "unchanged".
        """
        ...

    def put_status(self, key: ObjectKey, status: Obj) -> None: ...

    def delete(self, key: ObjectKey) -> bool: ...

    def add_event(self, event: Event) -> None: ...

    def delete_events(self, namespace: str) -> None: ...

    def add_audit(self, entry: AuditEntry) -> None: ...

    def audit(self, namespace: str | None = None, limit: int = 200) -> list[AuditEntry]: ...

    def events(
        self, namespace: str | None = None, kind: str | None = None, name: str | None = None, limit: int = 200
    ) -> list[Event]: ...


class Registry(Protocol):
    """One OCI registry host: what promotion, retagging and cleanup ask of it.

    Copying an image by digest is: `blob_size` (HEAD) each blob at the destination,
    `mount_blob` or `open_blob` → `upload_blob` the missing ones, recurse into an
    index's children, then `put_manifest` the byte-identical manifest. Errors are the
    adapter's `RegistryError` family (not found, unauthorized, unreachable...).
    """

    @property
    def registry(self) -> str:
        """The registry host (``host[:port]``) this talks to."""
        ...

    async def ping(self) -> None: ...

    async def head_manifest(self, repository: str, reference: str) -> oci.Descriptor | None:
        """The manifest's descriptor by tag or digest, or None when there is none."""
        ...

    async def get_manifest(self, repository: str, reference: str) -> oci.Manifest:
        """The manifest by tag or digest, its digest verified."""
        ...

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store manifest bytes under a tag or digest; returns their digest."""
        ...

    async def delete_manifest(self, repository: str, digest: str, *, subject: str | None = None) -> bool:
        """Delete by digest (with the tags pointing at it); False when it was not there."""
        ...

    async def blob_size(self, repository: str, digest: str) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        ...

    def open_blob(self, repository: str, digest: str) -> AsyncGenerator[bytes, None]:
        """Stream the blob's bytes (``contextlib.aclosing`` it); the digest is checked after the last chunk."""
        ...

    async def upload_blob(self, repository: str, digest: str, size: int, data: bytes | AsyncIterable[bytes]) -> None:
        """Upload a blob that must be ``size`` bytes hashing to ``digest``."""
        ...

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Link a blob from another repository of this registry; False when the registry would not."""
        ...

    async def tags(self, repository: str, page_size: int | None = None) -> list[str]: ...

    async def catalog(self, page_size: int | None = None) -> list[str]: ...

    async def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> list[oci.Descriptor]:
        """Descriptors of the manifests whose subject is ``digest``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class MetricAnswer:
    """What a metrics provider measured: the value conditions see as ``result``, or no data at all."""

    result: object = None
    no_data: bool = False
    detail: str = ""  # e.g. the query, for a "no data for query …" message


class Metrics(Protocol):
    """The analysis providers: Prometheus queries, web requests and jobs (errors raise ``MetricsError``)."""

    async def prometheus(
        self, address: str, query: str, timeout: float | None, headers: Sequence[tuple[str, str]]
    ) -> MetricAnswer: ...

    async def web(
        self,
        url: str,
        method: str,
        headers: Sequence[tuple[str, str]],
        body: str | None,
        json_path: str | None,
        timeout: float,
    ) -> MetricAnswer: ...

    async def job(self, metric: str, spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> MetricAnswer:
        """Run the Job ``spec`` to completion: ``result`` True when it succeeded, False when it failed."""
        ...


class MetricsError(Exception):
    """A provider could not measure (unreachable, bad query, bad answer); the message says why."""


class VulnData(Protocol):
    """Vulnerability advisories by ecosystem and package (OSV), and how fresh they are."""

    def advisories_for(self, ecosystem: str, package: str) -> list[Any]:
        """The OSV advisories (``funade.core.vuln.Advisory``) that name ``package`` in ``ecosystem``.

        ``ecosystem`` is the base name (``Debian``, ``Alpine``, ``PyPI``, ``npm``, ``Go``, ``Maven``):
        advisories for every release of it are returned; matching a release is the caller's.
        """
        ...

    def imported_at(self) -> float | None:
        """When the data was last imported (epoch seconds), or None when there is none."""
        ...
