"""Where ``funade image sbom|scan`` reads an image: the local engine (``docker save``) or a registry."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import re
import tarfile
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.docker import DockerClient, DockerUnavailable, FakeDocker, NotFound
from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.fake import FakeRegistry
from funade.cli import imagestore
from funade.engine import sbom as engine_sbom

pytestmark = pytest.mark.unit
T = TypeVar("T")
REGISTRY = "127.0.0.1:5999"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def layer(name: str, data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def dist_info(name: str, version: str) -> bytes:
    return layer(
        f"usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA",
        f"Name: {name}\nVersion: {version}\n".encode(),
    )


class World:
    """A fake engine and a fake registry holding different builds of the same name."""

    def __init__(self) -> None:
        self.docker = FakeDocker()
        self.docker.add_image("shop/web:1.0", layers=[dist_info("local", "1.0")])
        self.registry = FakeRegistry(REGISTRY)
        self.registry.put_image("shop/web", "1.0", [dist_info("pushed", "1.0")])
        self.registry.put_image("shop/api", "2.0", [dist_info("api", "2.0")])

    def client(self, host: str) -> RegistryClient:
        assert host == REGISTRY
        return RegistryClient(host, transport=self.registry, scheme="http")

    def read(self, image: str, **options: Any) -> tuple[str, str, set[str]]:
        found = run(imagestore.catalogue(image, docker=lambda: self.docker, registry=self.client, **options))
        return found.source, found.name, {p.name for p in found.sbom.packages}


@pytest.fixture(autouse=True)
def default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNADE_REGISTRY", REGISTRY)


def test_a_name_the_engine_has_is_read_from_the_engine_else_from_the_registry() -> None:
    world = World()
    assert world.read("shop/web:1.0") == ("engine", "shop/web:1.0", {"local"})
    assert world.read("shop/api:2.0") == ("registry", f"{REGISTRY}/shop/api:2.0", {"api"})


def test_a_reference_naming_a_registry_or_remote_reads_the_registry() -> None:
    world = World()
    world.docker.add_image(f"{REGISTRY}/shop/web:1.0", layers=[dist_info("local", "1.0")])
    assert world.read(f"{REGISTRY}/shop/web:1.0")[::2] == ("registry", {"pushed"})
    assert world.read("shop/web:1.0", remote=True)[::2] == ("registry", {"pushed"})
    assert world.read(f"{REGISTRY}/shop/web:1.0", local=True)[::2] == ("engine", {"local"})


def test_without_an_engine_the_registry_is_read_unless_local_is_asked() -> None:
    world = World()
    world.docker.unavailable = True
    assert world.read("shop/web:1.0")[::2] == ("registry", {"pushed"})
    with pytest.raises(DockerUnavailable):
        world.read("shop/web:1.0", local=True)
    world.docker.unavailable = False
    with pytest.raises(engine_sbom.SbomError, match=r"has no image shop/api:2\.0"):
        world.read("shop/api:2.0", local=True)


def test_an_engine_image_of_another_platform_is_passed_over_for_the_registrys_index() -> None:
    world = World()
    arm = world.registry.put_image("shop/web", None, [dist_info("pushed-arm", "1.0")], platform="linux/arm64")
    amd = world.registry.put_image("shop/web", None, [dist_info("pushed", "1.0")], platform="linux/amd64")
    world.registry.put_index("shop/web", "1.0", [amd, arm])
    # The engine holds shop/web:1.0 for linux/amd64 (what a build on this machine makes).
    assert world.read("shop/web:1.0", platform="linux/amd64")[::2] == ("engine", {"local"})
    assert world.read("shop/web:1.0", platform="linux/arm64")[::2] == ("registry", {"pushed-arm"})
    with pytest.raises(engine_sbom.SbomError, match=r"holds shop/web:1\.0 for linux/amd64, not linux/arm64"):
        world.read("shop/web:1.0", platform="linux/arm64", local=True)
    world.docker.add_image("shop/pi:1", layers=[dist_info("pi", "1")], platform="linux/arm/v7")
    assert world.read("shop/pi:1", platform="linux/arm", local=True)[::2] == ("engine", {"pi"})
    with pytest.raises(engine_sbom.SbomError, match="for linux/arm/v7, not linux/arm/v6"):
        world.read("shop/pi:1", platform="linux/arm/v6", local=True)
    assert run(world.docker.inspect_image("shop/pi:1")).platform == "linux/arm/v7"


# -- the adapters -----------------------------------------------------------------------------------


def test_the_client_streams_the_engines_save_and_maps_a_missing_image() -> None:
    saved = b"x" * (3 << 20)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(200, json={"ApiVersion": "1.41"})
        path = re.sub(r"^/v\d+\.\d+", "", request.url.path)
        if path == "/images/127.0.0.1:5000/shop/web:1.0/get":
            return httpx.Response(200, content=saved, headers={"Content-Type": "application/x-tar"})
        return httpx.Response(404, json={"message": "No such image: nosuch:1"})

    async def export(ref: str) -> list[bytes]:
        async with DockerClient(transport=httpx.MockTransport(handler)) as docker:
            return [chunk async for chunk in docker.export_image(ref)]

    chunks = run(export("127.0.0.1:5000/shop/web:1.0"))
    assert b"".join(chunks) == saved and len(chunks) > 1
    with pytest.raises(NotFound, match="nosuch"):
        run(export("nosuch:1"))


def test_the_fake_engine_saves_as_the_engine_does() -> None:
    docker = FakeDocker()
    image_id = docker.add_image("app:1", layers=[dist_info("a", "1"), dist_info("a", "1")])

    async def export() -> bytes:
        return b"".join([chunk async for chunk in docker.export_image("app:1")])

    with tarfile.open(fileobj=io.BytesIO(run(export()))) as tar:
        (entry,) = json.loads(tar.extractfile("manifest.json").read())
        config = tar.extractfile(entry["Config"]).read()
        first, second = (tar.getmember(path) for path in entry["Layers"])
    assert entry["RepoTags"] == ["app:1"] and image_id == "sha256:" + entry["Config"].removesuffix(".json")
    assert len(json.loads(config)["rootfs"]["diff_ids"]) == 2
    assert first.isreg() and second.issym()  # the same layer twice: saved once, linked after
