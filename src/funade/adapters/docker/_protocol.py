"""The slice of the Docker Engine API the local target uses, as a Protocol.

`DockerClient` (the real Engine over its socket) and `FakeDocker` (in memory, for unit
tests) both satisfy it; the local runtime is written against this, not against either.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Protocol

from funade.adapters.docker._models import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ContainerSummary,
    DockerEvent,
    ExecResult,
    ImageInfo,
    LogLine,
    NetworkInfo,
    VolumeInfo,
)

__all__ = ["Docker"]


class Docker(Protocol):
    """What funade's local runtime and kubelet ask of a Docker Engine."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def create_container(self, spec: ContainerSpec) -> str: ...

    async def start(self, container_id: str) -> None: ...

    async def stop(self, container_id: str, timeout_s: float = 10) -> None: ...

    async def remove(
        self, container_id: str, *, force: bool = False, volumes: bool = False, missing_ok: bool = False
    ) -> None: ...

    async def inspect_container(self, container_id: str) -> ContainerInfo: ...

    async def stats(self, container_id: str) -> ContainerStats: ...

    async def list_containers(
        self, *, all: bool = True, labels: Mapping[str, str | None] | None = None
    ) -> list[ContainerSummary]: ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> AsyncGenerator[LogLine, None]: ...

    async def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout_s: float,
        user: str | None = None,
        env: Sequence[str] | None = None,
        working_dir: str | None = None,
    ) -> ExecResult: ...

    async def inspect_image(self, ref: str) -> ImageInfo: ...

    async def image_exists(self, ref: str) -> bool: ...

    async def pull(self, ref: str, on_progress: Callable[[str], None] | None = None) -> None: ...

    async def import_image(self, tar: bytes, repo: str, tag: str = "latest", changes: Sequence[str] = ()) -> str: ...

    async def create_network(
        self, name: str, labels: Mapping[str, str] | None = None, *, internal: bool = False, driver: str = "bridge"
    ) -> str: ...

    async def inspect_network(self, name: str) -> NetworkInfo: ...

    async def create_volume(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        driver: str = "local",
        driver_opts: Mapping[str, str] | None = None,
    ) -> VolumeInfo: ...

    async def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeInfo]: ...

    async def remove_volume(self, name: str, *, force: bool = False, missing_ok: bool = False) -> None: ...

    def events(
        self,
        filters: Mapping[str, list[str]] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> AsyncGenerator[DockerEvent, None]: ...
