"""Promotion by digest: copy an image between repositories or registries without pulling it.

The seed promotes with ``docker pull / tag / push``: every layer goes through the runner,
only the runner's platform survives, and the digest can change. Here the manifest bytes
are copied as they are, so the digest is kept (and checked after): blobs the destination
already has are skipped, blobs in the same registry are mounted, the rest are streamed
from source to destination. An image index brings every platform, and referrers
(signatures, SBOMs, attestations) come along. Within one repository a promotion is a
retag: one manifest PUT.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from funade.core import oci
from funade.core.immutability import ImmutableTagError, TagMutability
from funade.core.ports import Registry

__all__ = ["Endpoint", "PromoteError", "PromoteEvent", "PromoteResult", "promote"]

_PARALLEL_BLOBS = 4


class PromoteError(Exception):
    """The image could not be promoted; nothing was tagged at the destination."""


@dataclass(frozen=True)
class Endpoint:
    """One side of a promotion: a registry client, the registry's address and a repository."""

    registry: Registry
    host: str
    repository: str


@dataclass(frozen=True)
class PromoteEvent:
    """What happened to one blob or manifest: skipped, mounted, copied, put or tagged."""

    what: str  # blob | manifest | referrer | tag
    digest: str
    action: str  # skipped | mounted | copied | put | tagged
    size: int = 0
    detail: str = ""


@dataclass
class PromoteResult:
    """The outcome: the digest kept, the tags set and how many bytes each path moved."""

    digest: str
    media_type: str
    tags: list[str]
    platforms: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    manifests_put: int = 0
    verified: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "mediaType": self.media_type,
            "tags": self.tags,
            "platforms": self.platforms,
            "referrers": self.referrers,
            "blobs": {"skipped": self.blobs_skipped, "mounted": self.blobs_mounted, "copied": self.blobs_copied},
            "bytesCopied": self.bytes_copied,
            "manifestsPut": self.manifests_put,
            "verified": self.verified,
        }


class _Copier:
    def __init__(self, src: Endpoint, dst: Endpoint, on_event: Callable[[PromoteEvent], None]) -> None:
        self.src = src
        self.dst = dst
        self.on_event = on_event
        self.same_registry = src.host == dst.host
        self.same_repository = self.same_registry and src.repository == dst.repository
        self.limit = asyncio.Semaphore(_PARALLEL_BLOBS)
        self.done: set[str] = set()

    def _emit(self, result: PromoteResult, event: PromoteEvent) -> None:
        if event.what == "blob":
            if event.action == "skipped":
                result.blobs_skipped += 1
            elif event.action == "mounted":
                result.blobs_mounted += 1
            else:
                result.blobs_copied += 1
                result.bytes_copied += event.size
        elif event.action == "put":
            result.manifests_put += 1
        self.on_event(event)

    async def blob(self, descriptor: oci.Descriptor, result: PromoteResult) -> None:
        digest = descriptor.digest
        if digest in self.done:
            return
        self.done.add(digest)
        async with self.limit:
            if await self.dst.registry.blob_size(self.dst.repository, digest) is not None:
                self._emit(result, PromoteEvent("blob", digest, "skipped", descriptor.size))
                return
            if self.same_registry and await self.dst.registry.mount_blob(
                self.dst.repository, digest, self.src.repository
            ):
                self._emit(result, PromoteEvent("blob", digest, "mounted", descriptor.size))
                return
            async with contextlib.aclosing(self.src.registry.open_blob(self.src.repository, digest)) as data:
                await self.dst.registry.upload_blob(self.dst.repository, digest, descriptor.size, data)
            self._emit(result, PromoteEvent("blob", digest, "copied", descriptor.size))

    async def manifest(self, manifest: oci.Manifest, result: PromoteResult, what: str = "manifest") -> None:
        """Copy a manifest's blobs (or an index's children) and PUT its exact bytes by digest."""
        if manifest.digest in self.done:
            return
        self.done.add(manifest.digest)
        present = await self.dst.registry.head_manifest(self.dst.repository, manifest.digest)
        if present is not None:
            self._emit(result, PromoteEvent(what, manifest.digest, "skipped", len(manifest.raw)))
            return
        if manifest.manifests:
            children = await asyncio.gather(
                *(self.src.registry.get_manifest(self.src.repository, c.digest) for c in manifest.manifests)
            )
            for child in children:
                await self.manifest(child, result)
        await asyncio.gather(*(self.blob(d, result) for d in oci.blobs_of(manifest)))
        digest = await self.dst.registry.put_manifest(
            self.dst.repository, manifest.digest, manifest.raw, manifest.media_type
        )
        if digest != manifest.digest:
            raise PromoteError(f"{self.dst.host}/{self.dst.repository} stored {manifest.digest} as {digest}")
        self._emit(result, PromoteEvent(what, manifest.digest, "put", len(manifest.raw)))

    async def referrers(self, subject: str, result: PromoteResult) -> None:
        for descriptor in await self.src.registry.referrers(self.src.repository, subject):
            referrer = await self.src.registry.get_manifest(self.src.repository, descriptor.digest)
            await self.manifest(referrer, result, "referrer")
            result.referrers.append(descriptor.digest)
            await self.referrers(descriptor.digest, result)  # a signature of an SBOM, and so on


async def promote(
    src: Endpoint,
    reference: str,
    dst: Endpoint,
    tags: Sequence[str],
    *,
    mutability: TagMutability | None = None,
    with_referrers: bool = True,
    on_event: Callable[[PromoteEvent], None] = lambda event: None,
) -> PromoteResult:
    """Copy ``src:reference`` to ``dst`` under ``tags``, keeping the digest.

    Tags are written last, once everything they point at is in place, so a failure
    leaves the destination's tags as they were.

    Raises:
        ImmutableTagError: a tag exists at the destination with another digest and the
            repository's tag mutability forbids overwriting it.
        PromoteError: the destination changed the manifest (the digest would not be kept).
    """
    manifest = await src.registry.get_manifest(src.repository, reference)
    if mutability is not None:
        for tag in tags:
            current = await dst.registry.head_manifest(dst.repository, tag)
            if current is not None and current.digest != manifest.digest and mutability.is_immutable(tag):
                raise ImmutableTagError(tag, dst.repository)
    copier = _Copier(src, dst, on_event)
    result = PromoteResult(manifest.digest, manifest.media_type, list(tags))
    result.platforms = [str(d.platform) for d in manifest.manifests if d.platform is not None]
    if not copier.same_repository:
        await copier.manifest(manifest, result)
        if with_referrers:
            await copier.referrers(manifest.digest, result)
    for tag in tags:
        digest = await dst.registry.put_manifest(dst.repository, tag, manifest.raw, manifest.media_type)
        if digest != manifest.digest:
            raise PromoteError(f"{dst.host}/{dst.repository}:{tag} got digest {digest}, expected {manifest.digest}")
        copier.on_event(PromoteEvent("tag", manifest.digest, "tagged", detail=tag))
    check = tags[-1] if tags else manifest.digest
    stored = await dst.registry.head_manifest(dst.repository, check)
    if stored is None or stored.digest != manifest.digest:
        found = stored.digest if stored else "nothing"
        raise PromoteError(f"{dst.host}/{dst.repository}:{check} holds {found} after the copy, not {manifest.digest}")
    result.verified = True
    return result
