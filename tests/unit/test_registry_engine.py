"""Inventory of a repository and deleting what a lifecycle plan expires, over the in-memory registry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from funade.adapters.registry.client import RegistryClient
from funade.adapters.registry.fake import FakeRegistry
from funade.core import lifecycle, oci
from funade.core.registryevents import ImageHistory
from funade.engine import registry

pytestmark = pytest.mark.unit
T = TypeVar("T")
CREATED = "org.opencontainers.image.created"


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def client(fake: FakeRegistry) -> RegistryClient:
    return RegistryClient(fake.host, transport=fake, scheme="http")


def day(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=UTC)


def test_inventory_joins_tags_push_records_children_and_referrers() -> None:
    fake = FakeRegistry()
    old = fake.put_image("web", "1.0.0", [b"old"], annotations={CREATED: "2026-11-01T00:00:00Z"})
    moved = fake.put_image("web", None, [b"moved"])  # its tag moved on: only the push record knows it
    amd = fake.put_image("web", None, [b"amd"], platform="linux/amd64")
    arm = fake.put_image("web", None, [b"arm"], platform="linux/arm64")
    index = fake.put_index("web", "2.0.0", [amd, arm])
    sig = fake.put_image("web", None, [b"sig"], artifact_type="application/x-sig", subject=index.descriptor())
    history = {
        index.digest: ImageHistory("web", index.digest, day(20), day(25), ("2.0.0",)),
        moved.digest: ImageHistory("web", moved.digest, day(10), None, ("1.1.0",)),
        "sha256:" + "9" * 64: ImageHistory("web", "sha256:" + "9" * 64, day(2), None, ()),  # deleted since
    }
    images = {i.digest: i for i in run(registry.inventory(client(fake), "web", history=history))}
    assert set(images) == {old.digest, moved.digest, amd.digest, arm.digest, index.digest, sig.digest}
    assert images[old.digest].tags == ("1.0.0",) and images[old.digest].dated() == (day(1), "created")
    assert images[moved.digest].tags == () and images[moved.digest].dated() == (day(10), "push")
    assert images[index.digest].platforms == ("linux/amd64", "linux/arm64")
    assert images[index.digest].children == (amd.digest, arm.digest)
    assert images[index.digest].size > images[amd.digest].size + images[arm.digest].size
    assert images[index.digest].last_pulled_at == day(25)
    assert images[sig.digest].subject == index.digest
    # The referrers fallback tag is bookkeeping, not an image tag.
    assert all(not t.startswith("sha256-") for i in images.values() for t in i.tags)


def test_records_inherit_the_parent_date_and_leave_undated_images_out() -> None:
    fake = FakeRegistry()
    amd = fake.put_image("web", None, [b"amd"])
    index = fake.put_index("web", "2.0.0", [amd])
    lonely = fake.put_image("web", "nodate", [b"lonely"])
    history = {index.digest: ImageHistory("web", index.digest, day(20), None, ())}
    images = run(registry.inventory(client(fake), "web", history=history))
    records, undated = registry.records(images)
    by_digest = {r.digest: r for r in records}
    assert by_digest[amd.digest].pushed_at == day(20) and by_digest[amd.digest].pushed_at_source == "push"
    assert [i.digest for i in undated] == [lonely.digest]


def test_in_use_digests_from_pins_engine_digests_and_tags() -> None:
    images = [
        registry.Image("shop/web", "sha256:" + "a" * 64, oci.OCI_MANIFEST, ("1.0.0",), 1, None, None, None),
        registry.Image("shop/web", "sha256:" + "b" * 64, oci.OCI_MANIFEST, ("2.0.0",), 1, None, None, None),
    ]
    host = "127.0.0.1:5000"
    uses = [
        (f"{host}/shop/web@sha256:{'c' * 64}", []),  # pinned by digest
        (f"{host}/shop/web:2.0.0", [f"{host}/shop/web@sha256:{'d' * 64}"]),  # the Engine knows what it runs
        (f"{host}/shop/web:1.0.0", []),  # only the tag: what it points at now
        (f"{host}/other:1.0.0", []),
        ("busybox", []),
        ("not a reference", []),
    ]
    assert registry.in_use_digests(uses, host, "shop/web", images) == {
        "sha256:" + "c" * 64,
        "sha256:" + "d" * 64,
        "sha256:" + "a" * 64,
    }


def test_seed_policy_preview_then_delete_removes_exactly_the_expired_images() -> None:
    fake = FakeRegistry(referrers_api=False)
    now = day(28)
    kept = fake.put_image("web", "sha-new", [b"new"], annotations={CREATED: "2026-11-20T00:00:00Z"})
    gone = fake.put_image("web", "sha-old", [b"old"], annotations={CREATED: "2026-09-01T00:00:00Z"})
    sig = fake.put_image("web", None, [b"s"], artifact_type="application/x-sig", subject=gone.descriptor())
    release = fake.put_image("web", "v1.0.0", [b"rel"], annotations={CREATED: "2026-01-01T00:00:00Z"})
    policy = lifecycle.parse_policy(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPrefixList": ["v"],
                        "countType": "imageCountMoreThan",
                        "countNumber": 50,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPrefixList": ["sha-"],
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 30,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )
    c = client(fake)
    # Pushed through the client, the signature is listed under the referrers fallback tag.
    run(c.put_manifest("web", sig.digest, sig.raw, sig.media_type))
    assert oci.referrers_tag(gone.digest) in fake.tag_names("web")
    images = run(registry.inventory(c, "web"))
    records, _ = registry.records(images)
    plan = lifecycle.safeguard(lifecycle.evaluate(policy, records, now), records, set())
    assert set(plan.expired_digests) == {gone.digest, sig.digest}  # the signature goes with its image
    results = run(registry.delete_images(c, "web", plan.expired_digests, images))
    assert [r.error for r in results] == [None, None]
    assert results[0].digest == sig.digest  # referrers first
    assert fake.manifest("web", gone.digest) is None and fake.manifest("web", sig.digest) is None
    assert fake.manifest("web", kept.digest) is not None and fake.manifest("web", release.digest) is not None
    assert sorted(fake.tag_names("web")) == ["sha-new", "v1.0.0"]  # the fallback tag went too


def test_one_failed_delete_does_not_stop_the_others() -> None:
    fake = FakeRegistry()
    a = fake.put_image("web", "a", [b"a"])
    b = fake.put_image("web", "b", [b"b"])
    fake.fail(rf"/manifests/{a.digest}", 400, times=10, method="DELETE", code="UNSUPPORTED")
    c = RegistryClient(fake.host, transport=fake, scheme="http", retries=0)
    results = run(registry.delete_images(c, "web", [a.digest, b.digest], []))
    assert results[0].digest == a.digest and results[0].error
    assert results[1] == registry.DeleteResult(b.digest)
    assert fake.manifest("web", b.digest) is None and fake.manifest("web", a.digest) is not None
