"""What the image and registry commands share: which registry, its client, and funade's records of it.

A reference without a registry (``shop/web:1.0``) means the embedded registry. Push dates
and the images workloads run come from the funade server when it is running; without
it, commands say what they could not know rather than guess.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from datetime import datetime
from typing import Any

from funade.adapters.docker import DockerClient, DockerError
from funade.adapters.registry import auth
from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.server import DEFAULT_ADDRESS, RegistryServer
from funade.cli import consoles
from funade.cli.client import ApiError, Client, funade_home
from funade.core import oci
from funade.core.registryevents import ImageHistory

__all__ = [
    "client_for",
    "default_registry",
    "embedded",
    "history",
    "parse",
    "uses",
]


def default_registry() -> str:
    """``$FUNADE_REGISTRY``, else the address the embedded registry was last started on."""
    return os.environ.get("FUNADE_REGISTRY") or RegistryServer.of_home(funade_home()).address or DEFAULT_ADDRESS


def parse(text: str) -> oci.Reference:
    """An image reference; without a registry it lives on the embedded one (not Docker Hub)."""
    return oci.parse_reference(text, default_registry=default_registry())


def embedded(host: str) -> RegistryServer | None:
    """This home's registry when ``host`` is its address."""
    server = RegistryServer.of_home(funade_home())
    return server if server.address == host else None


def client_for(host: str) -> RegistryClient:
    """A client with the credentials Docker would use for ``host`` (none for the embedded registry)."""
    return RegistryClient(host, credentials=auth.docker_credentials(host))


def engine_auth(host: str) -> dict[str, str]:
    """The Engine's X-Registry-Auth object for ``host``: what ``docker push`` would send."""
    credentials = auth.docker_credentials(host)
    if credentials is None:
        return {}
    if credentials.identity_token:
        return {"identitytoken": credentials.identity_token, "serveraddress": host}
    return {"username": credentials.username, "password": credentials.secret, "serveraddress": host}


def history(host: str, repository: str, *, quiet: bool = False) -> dict[str, ImageHistory] | None:
    """funade's push records of a repository by digest; None when the server cannot be asked."""
    client = Client()
    try:
        items = client.get("/v1/registry/history", registry=host, repository=repository)["items"]
    except ApiError as exc:
        if not quiet:
            consoles.err.print(f"[yellow]warning:[/yellow] no push records: {exc}; images are dated by creation time")
        return None
    finally:
        client.close()
    return {
        item["digest"]: ImageHistory(
            item["repository"],
            item["digest"],
            datetime.fromisoformat(item["pushedAt"]),
            datetime.fromisoformat(item["lastPulledAt"]) if item.get("lastPulledAt") else None,
            tuple(item.get("tags") or ()),
        )
        for item in items
    }


async def _repo_digests(image_ids: Collection[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    try:
        async with DockerClient() as docker:
            for image_id in image_ids:
                try:
                    found[image_id] = (await docker.inspect_image(image_id)).repo_digests
                except DockerError:
                    found[image_id] = ()
    except DockerError:
        pass
    return found


def uses() -> list[tuple[str, tuple[str, ...]]]:
    """Per container funade runs: its image reference and the registry digests of what it runs.

    Raises:
        ApiError: the funade server cannot be asked.
    """
    client = Client()
    try:
        items: list[dict[str, Any]] = client.get("/v1/images/in-use")["items"]
    finally:
        client.close()
    ids = {item["imageID"] for item in items if item.get("imageID")}
    digests = asyncio.run(_repo_digests(ids)) if ids else {}
    return [(item["image"], digests.get(item.get("imageID") or "", ())) for item in items]
