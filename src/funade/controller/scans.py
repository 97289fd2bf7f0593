"""Scan on push, and again when the vulnerability data changes.

The registry tells the server about every manifest push; the image is scanned in the
background (SBOM from the registry, matched against the OSV data) and the result kept,
so ``funade image scan --cached`` answers at once and the apply gate can ask. When
``funade vuln db update`` brings new data, every image scanned with older data is
scanned again. Without vulnerability data nothing is scanned (and nothing fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from funade.adapters.registry.client import RegistryClient, RegistryError
from funade.adapters.store.sqlite import SqliteStore
from funade.adapters.vulndb import VulnDB, default_path
from funade.core import oci, registryevents
from funade.core.registryevents import ImageEvent
from funade.engine import sbom as sbom_engine
from funade.engine import scan as scan_engine

__all__ = ["ScanController"]

log = logging.getLogger(__name__)
RECHECK_SECONDS = 60.0
_RECHECK = ("", "", "")  # queued by refresh(): scan whatever is stale


class ScanController:
    """Keeps a scan result for every image pushed to the registries that notify this server."""

    def __init__(self, store: SqliteStore, home: Path) -> None:
        self.store = store
        self.data = VulnDB(default_path(home))
        self._queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.scanned = 0
        self.last_error: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scans")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def pushed(self, events: list[ImageEvent]) -> int:
        """Queue the images of push events (manifests only); returns how many were queued."""
        queued = 0
        for event in events:
            if event.action == "push" and event.digest and event.media_type in oci.MANIFEST_MEDIA_TYPES:
                self._queue.put_nowait((event.registry, event.repository, event.digest))
                queued += 1
        return queued

    async def scan(self, registry: str, repository: str, digest: str) -> dict[str, Any] | None:
        """Scan one image now and keep the result; None when there is no vulnerability data."""
        imported = self.data.imported_at()
        if imported is None:
            return None
        async with RegistryClient(registry) as client:
            found = await sbom_engine.catalogue(client, repository, digest)
        findings = scan_engine.scan(found, self.data)
        body = {
            "image": f"{registry}/{repository}@{digest}",
            "digest": found.digest,
            "distro": str(found.distro) if found.distro else None,
            "packages": len(found.packages),
            "findings": [f.to_json() for f in findings],
        }
        self.store.put_scan_result(registry, repository, digest, imported, body)
        self.scanned += 1
        return body

    def stale(self) -> list[tuple[str, str, str]]:
        """Images to scan again: scanned with older data than there is now, or pushed and never scanned."""
        imported = self.data.imported_at()
        if imported is None:
            return []
        scanned = {(r, repo, d): at for r, repo, d, at in self.store.scanned_images()}
        out = [image for image, at in scanned.items() if at is None or at < imported]
        for registry in self.store.notifying_registries():
            for (repository, digest), _ in registryevents.history(self.store.image_events(registry)).items():
                if (registry, repository, digest) not in scanned:
                    out.append((registry, repository, digest))
        return out

    def refresh(self) -> None:
        """Look for images to scan again now (new vulnerability data was imported), not at the next recheck."""
        self._queue.put_nowait(_RECHECK)

    async def _loop(self) -> None:
        while True:
            try:
                image = await asyncio.wait_for(self._queue.get(), RECHECK_SECONDS)
            except TimeoutError:
                image = _RECHECK
            if image == _RECHECK:
                for stale in self.stale():
                    await self._scan_logged(*stale)
            else:
                await self._scan_logged(*image)

    async def _scan_logged(self, registry: str, repository: str, digest: str) -> None:
        try:
            await self.scan(registry, repository, digest)
            self.last_error = None
        except (RegistryError, sbom_engine.SbomError, OSError) as exc:
            self.last_error = f"{registry}/{repository}@{digest}: {exc}"
            log.warning("scan failed: %s", self.last_error)
