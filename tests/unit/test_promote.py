"""Promotion by digest over the in-memory registry: mount, skip, stream, retag, referrers, immutability."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.fake import FakeRegistry
from funade.core import oci
from funade.core.immutability import ImmutableTagError, Mode, TagMutability
from funade.engine import promote
from funade.engine.promote import Endpoint, PromoteEvent

pytestmark = pytest.mark.unit
T = TypeVar("T")

LAYERS = [b"layer-one" * 1000, b"layer-two" * 2000]


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def endpoint(fake: FakeRegistry, repository: str) -> Endpoint:
    return Endpoint(RegistryClient(fake.host, transport=fake, scheme="http"), fake.host, repository)


def test_across_repositories_of_one_registry_blobs_are_mounted_and_the_digest_kept() -> None:
    fake = FakeRegistry()
    image = fake.put_image("dev/web", "sha-1a2b3c4", LAYERS)
    events: list[PromoteEvent] = []
    result = run(
        promote.promote(
            endpoint(fake, "dev/web"), "sha-1a2b3c4", endpoint(fake, "prod/web"), ["1.0.0"], on_event=events.append
        )
    )
    assert result.digest == image.digest and result.verified
    assert fake.manifest("prod/web", "1.0.0") == image.raw  # byte-identical
    assert (result.blobs_mounted, result.blobs_copied, result.bytes_copied) == (3, 0, 0)  # config + 2 layers
    assert not fake.exchanges(r"/blobs/uploads/.+", "PATCH")  # no layer bytes moved
    assert [e.action for e in events if e.what == "tag"] == ["tagged"]


def test_within_one_repository_a_promotion_is_one_manifest_put() -> None:
    fake = FakeRegistry()
    image = fake.put_image("shop/web", "sha-1a2b3c4", LAYERS)
    before = len(fake.log)
    result = run(promote.promote(endpoint(fake, "shop/web"), "sha-1a2b3c4", endpoint(fake, "shop/web"), ["stable"]))
    requests = fake.log[before:]
    assert fake.manifest("shop/web", "stable") == image.raw
    assert [r.method for r in requests if "/blobs/" in r.path] == []
    assert [r.method for r in requests if "/manifests/" in r.path].count("PUT") == 1
    assert result.blobs_skipped == result.blobs_mounted == result.blobs_copied == 0


def test_across_registries_missing_blobs_are_streamed_and_present_ones_skipped() -> None:
    src, dst = FakeRegistry("src.test"), FakeRegistry("dst.test")
    image = src.put_image("web", "1.0.0", LAYERS)
    dst.put_blob("web", LAYERS[0])  # the destination already has the first layer
    result = run(promote.promote(endpoint(src, "web"), "1.0.0", endpoint(dst, "web"), ["1.0.0"]))
    assert dst.manifest("web", "1.0.0") == image.raw
    assert result.blobs_skipped == 1 and result.blobs_copied == 2
    assert result.bytes_copied == len(LAYERS[1]) + image.config.size  # type: ignore[union-attr]
    assert not src.exchanges(r"/blobs/" + oci.digest_of(LAYERS[0]), "GET")


def test_an_index_brings_every_platform_and_referrers_come_along() -> None:
    src, dst = FakeRegistry("src.test"), FakeRegistry("dst.test", referrers_api=False)
    amd = src.put_image("web", None, [b"amd64"], platform="linux/amd64")
    arm = src.put_image("web", None, [b"arm64"], platform="linux/arm64/v8")
    index = src.put_index("web", "1.0.0", [amd, arm])
    signature = src.put_image(
        "web",
        None,
        [b"sig"],
        artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
        subject=index.descriptor(),
    )
    result = run(promote.promote(endpoint(src, "web"), "1.0.0", endpoint(dst, "web"), ["1.0.0"]))
    assert result.platforms == ["linux/amd64", "linux/arm64/v8"]
    assert dst.manifest("web", amd.digest) == amd.raw and dst.manifest("web", arm.digest) == arm.raw
    assert dst.manifest("web", "1.0.0") == index.raw
    assert result.referrers == [signature.digest]
    assert dst.manifest("web", signature.digest) == signature.raw
    # The destination has no referrers API: the signature is found through the fallback tag.
    assert oci.referrers_tag(index.digest) in dst.tag_names("web")


def test_an_immutable_tag_is_not_overwritten_and_nothing_is_tagged() -> None:
    fake = FakeRegistry()
    old = fake.put_image("prod/web", "1.0.0", [b"old"])
    fake.put_image("dev/web", "sha-new", [b"new"])
    immutable = TagMutability(Mode.IMMUTABLE)
    with pytest.raises(ImmutableTagError, match=r"'1\.0\.0' already exists in the 'prod/web' repository"):
        run(
            promote.promote(
                endpoint(fake, "dev/web"), "sha-new", endpoint(fake, "prod/web"), ["1.0.0"], mutability=immutable
            )
        )
    assert fake.manifest("prod/web", "1.0.0") == old.raw
    # The same image again is fine; an excluded tag may move.
    same = run(
        promote.promote(
            endpoint(fake, "prod/web"), "1.0.0", endpoint(fake, "prod/web"), ["1.0.0"], mutability=immutable
        )
    )
    assert same.digest == old.digest
    latest_ok = TagMutability(Mode.IMMUTABLE_WITH_EXCLUSION, ("latest",))
    fake.put_image("prod/web", "latest", [b"older"])
    run(
        promote.promote(
            endpoint(fake, "dev/web"), "sha-new", endpoint(fake, "prod/web"), ["latest"], mutability=latest_ok
        )
    )
    assert fake.manifest("prod/web", "latest") == fake.manifest("dev/web", "sha-new")


def test_a_destination_that_rewrites_the_manifest_is_caught() -> None:
    src, dst = FakeRegistry("src.test"), FakeRegistry("dst.test")
    src.put_image("web", "1.0.0", [b"x"])
    dst.put_image("web", "1.0.0", [b"y"])

    class Lying(RegistryClient):
        async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
            await super().put_manifest(repository, reference, raw, media_type)
            return "sha256:" + "0" * 64

    lying = Endpoint(Lying("dst.test", transport=dst, scheme="http"), "dst.test", "web")
    with pytest.raises(promote.PromoteError, match="stored"):
        run(promote.promote(endpoint(src, "web"), "1.0.0", lying, ["1.0.0"]))
