"""What is in a repository, and removing what a lifecycle plan expires.

The OCI API lists tags, not images: an image whose tag moved on is invisible to it, and
it knows no push date. The inventory therefore joins three sources: the tags (each
resolved to its digest), the digests funade saw pushed (the registry's notifications),
and, for the embedded registry, the manifests in its storage. Each image is read once
for its size, platforms, children, referrers and creation time. Lifecycle rules then
date an image by its push record when there is one, else by its creation time, and
the preview says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from funade.core import lifecycle, oci, registryevents
from funade.core.ports import Registry
from funade.core.registryevents import ImageHistory

__all__ = ["DeleteResult", "Image", "delete_images", "in_use_digests", "inventory", "records"]

_PARALLEL = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CREATED = "org.opencontainers.image.created"
_REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


@dataclass(frozen=True)
class Image:
    """One manifest in a repository, with what `image ls` shows and lifecycle rules need."""

    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    size: int  # manifest + config + layers; for an index, also its platform images
    created: datetime | None
    pushed_at: datetime | None  # funade's push record
    last_pulled_at: datetime | None
    platforms: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    subject: str | None = None
    artifact_type: str | None = None

    def dated(self) -> tuple[datetime, str] | None:
        """The date lifecycle rules use and where it comes from: the push record, else the creation time."""
        if self.pushed_at is not None:
            return self.pushed_at, "push"
        if self.created is not None:
            return self.created, "created"
        return None

    def to_json(self) -> dict[str, object]:
        dated = self.dated()
        return {
            "repository": self.repository,
            "digest": self.digest,
            "mediaType": self.media_type,
            "tags": list(self.tags),
            "size": self.size,
            "created": self.created.isoformat() if self.created else None,
            "pushedAt": self.pushed_at.isoformat() if self.pushed_at else None,
            "lastPulledAt": self.last_pulled_at.isoformat() if self.last_pulled_at else None,
            "dateSource": dated[1] if dated else None,
            "platforms": list(self.platforms),
            "children": list(self.children),
            "subject": self.subject,
            "artifactType": self.artifact_type,
        }


async def _read_json_blob(registry: Registry, repository: str, digest: str) -> object:
    chunks = []
    async with contextlib.aclosing(registry.open_blob(repository, digest)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return None


async def _created(registry: Registry, repository: str, manifest: oci.Manifest) -> datetime | None:
    """The OCI `created` annotation, else the image config's `created`."""
    stamp: object = manifest.annotations.get(_CREATED)
    if stamp is None and manifest.config is not None and manifest.config.size < 1 << 20:
        config = await _read_json_blob(registry, repository, manifest.config.digest)
        stamp = config.get("created") if isinstance(config, dict) else None
    if not isinstance(stamp, str):
        return None
    try:
        return registryevents.parse_timestamp(stamp)
    except registryevents.EventError:
        return None


async def inventory(
    registry: Registry,
    repository: str,
    *,
    history: Mapping[str, ImageHistory] | None = None,
    known: Iterable[str] = (),
) -> list[Image]:
    """Every image of ``repository`` that still exists, newest first.

    Args:
        history: funade's push records of the repository by digest.
        known: other digests to look for (e.g. the embedded registry's stored manifests).
    """
    history = history or {}
    limit = asyncio.Semaphore(_PARALLEL)
    tags = [t for t in await registry.tags(repository) if not _REFERRERS_TAG.match(t)]

    async def resolve(tag: str) -> tuple[str, oci.Descriptor | None]:
        async with limit:
            return tag, await registry.head_manifest(repository, tag)

    tags_of: dict[str, list[str]] = {}
    for tag, descriptor in await asyncio.gather(*(resolve(t) for t in tags)):
        if descriptor is not None:
            tags_of.setdefault(descriptor.digest, []).append(tag)

    manifests: dict[str, oci.Manifest] = {}
    subjects: dict[str, str] = {}

    async def fetch(digest: str) -> oci.Manifest | None:
        async with limit:
            if digest not in tags_of and await registry.head_manifest(repository, digest) is None:
                return None  # deleted since it was pushed
            return await registry.get_manifest(repository, digest)

    async def referrers_of(digest: str) -> list[oci.Descriptor]:
        async with limit:
            return await registry.referrers(repository, digest)

    pending = list(dict.fromkeys([*tags_of, *history, *known]))
    while pending:
        found = await asyncio.gather(*(fetch(d) for d in pending if d not in manifests))
        fresh = [m for m in found if m is not None and m.digest not in manifests]
        for manifest in fresh:
            manifests[manifest.digest] = manifest
        nxt = [c.digest for m in fresh for c in m.manifests]
        for manifest, refs in zip(fresh, await asyncio.gather(*(referrers_of(m.digest) for m in fresh)), strict=True):
            for ref in refs:
                subjects.setdefault(ref.digest, manifest.digest)
                nxt.append(ref.digest)
        pending = [d for d in dict.fromkeys(nxt) if d not in manifests]

    created = dict(
        zip(
            manifests,
            await asyncio.gather(*(_created(registry, repository, m) for m in manifests.values())),
            strict=True,
        )
    )

    def size(manifest: oci.Manifest) -> int:
        own = manifest.size + sum(d.size for d in oci.blobs_of(manifest))
        return own + sum(size(manifests[c.digest]) for c in manifest.manifests if c.digest in manifests)

    images = []
    for digest, manifest in manifests.items():
        record = history.get(digest)
        subject = manifest.subject.digest if manifest.subject else subjects.get(digest)
        images.append(
            Image(
                repository=repository,
                digest=digest,
                media_type=manifest.media_type,
                tags=tuple(sorted(tags_of.get(digest, ()))),
                size=size(manifest),
                created=created[digest],
                pushed_at=record.pushed_at if record else None,
                last_pulled_at=record.last_pulled_at if record else None,
                platforms=tuple(str(c.platform) for c in manifest.manifests if c.platform is not None),
                children=tuple(c.digest for c in manifest.manifests),
                subject=subject,
                artifact_type=manifest.artifact_type or (manifest.config.media_type if manifest.config else None),
            )
        )
    return sorted(images, key=lambda i: ((i.dated() or (_EPOCH, ""))[0], i.digest), reverse=True)


def records(images: Sequence[Image]) -> tuple[list[lifecycle.ImageRecord], list[Image]]:
    """Lifecycle records of the images, and the images that have no date at all.

    A platform image or a referrer without a date of its own takes its parent's (they
    were pushed together); an image with no date anywhere is left out of the rules.
    """
    by_digest = {i.digest: i for i in images}
    parent: dict[str, str] = {}
    for image in images:
        for child in image.children:
            parent.setdefault(child, image.digest)
        if image.subject:
            parent.setdefault(image.digest, image.subject)

    def date_of(digest: str, seen: frozenset[str] = frozenset()) -> tuple[datetime, str] | None:
        image = by_digest.get(digest)
        if image is None or digest in seen:
            return None
        own = image.dated()
        if own is not None:
            return own
        up = parent.get(digest)
        return date_of(up, seen | {digest}) if up else None

    out, undated = [], []
    for image in images:
        dated = date_of(image.digest)
        if dated is None:
            undated.append(image)
            continue
        out.append(
            lifecycle.ImageRecord(
                digest=image.digest,
                tags=image.tags,
                pushed_at=dated[0],
                pushed_at_source=dated[1],
                children=image.children,
                subject=image.subject,
                size=image.size,
            )
        )
    return out, undated


def in_use_digests(
    uses: Iterable[tuple[str, Collection[str]]], registry_host: str, repository: str, images: Sequence[Image]
) -> set[str]:
    """Digests of ``repository`` that workloads run.

    Args:
        uses: per container, its image reference and the repo digests the Engine knows
            for the image it runs (``host/repo@sha256:…``).
    """
    tagged = {tag: i.digest for i in images for tag in i.tags}
    found: set[str] = set()
    for reference, repo_digests in uses:
        try:
            ref = oci.parse_reference(reference)
        except ValueError:
            continue
        if ref.registry != registry_host or ref.repository != repository:
            continue
        if ref.digest:
            found.add(ref.digest)
            continue
        pinned = [d.rpartition("@")[2] for d in repo_digests if d.startswith(f"{registry_host}/{repository}@")]
        if pinned:
            found.update(pinned)
        elif ref.tag in tagged:
            found.add(tagged[ref.tag])
    return found


@dataclass(frozen=True)
class DeleteResult:
    digest: str
    error: str | None = None


async def delete_images(
    registry: Registry,
    repository: str,
    digests: Collection[str],
    images: Sequence[Image],
    on_result: Callable[[DeleteResult], None] = lambda result: None,
) -> list[DeleteResult]:
    """Delete images by digest: referrers first, then indexes, then the images they list.

    The referrers tag a registry without the referrers API keeps for a deleted subject
    goes too. One failure does not stop the others; each result says what happened.
    """
    by_digest = {i.digest: i for i in images}

    def order(digest: str) -> int:
        image = by_digest.get(digest)
        if image is None:
            return 3
        return 0 if image.subject else 1 if image.children else 2

    results = []
    for digest in sorted(digests, key=order):
        try:
            await registry.delete_manifest(repository, digest)
            fallback = await registry.head_manifest(repository, oci.referrers_tag(digest))
            if fallback is not None:
                await registry.delete_manifest(repository, fallback.digest)
            result = DeleteResult(digest)
        except Exception as exc:  # the adapter's errors; report and go on with the others
            result = DeleteResult(digest, str(exc))
        results.append(result)
        on_result(result)
    return results
