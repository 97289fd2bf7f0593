"""The registry client over `FakeRegistry` (and a few odd servers on `httpx.MockTransport`).

They pin down the wire behaviour promotion and cleanup rely on: authentication
flows, retries and back-off, pagination, monolithic and chunked uploads with
recovery, mounts, digest checks, referrers with and without the API, and reading
Docker's credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.registry import auth
from funade.adapters.registry.client import (
    BlobUnknown,
    Denied,
    DigestMismatch,
    ManifestUnknown,
    NameUnknown,
    RegistryClient,
    RegistryError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    Unsupported,
)
from funade.adapters.registry.fake import FakeRegistry
from funade.core import oci
from funade.core.ports import Registry

pytestmark = pytest.mark.unit

T = TypeVar("T")
HOST = "registry.test"
USERS = {"alice": "s3cret-pw"}
ALICE = auth.Credentials("alice", "s3cret-pw")
SIG = "application/vnd.example.signature"
SBOM = "application/vnd.example.sbom"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Sleeps:
    """Records the client's back-off waits instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def client(transport: httpx.AsyncBaseTransport, sleeps: Sleeps | None = None, **options: Any) -> RegistryClient:
    return RegistryClient(HOST, transport=transport, sleep=sleeps or Sleeps(), **options)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def stream(data: bytes, piece: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def artifact(fake: FakeRegistry, repository: str, subject: oci.Manifest, artifact_type: str, note: str) -> bytes:
    """The bytes of an artifact manifest pointing at ``subject``, its blobs stored in the fake."""
    config = fake.put_blob(repository, oci.EMPTY_JSON, oci.OCI_EMPTY)
    layer = fake.put_blob(repository, note.encode())
    body = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config.to_json(),
        "layers": [layer.to_json()],
        "subject": subject.descriptor().to_json(),
        "annotations": {"note": note},
    }
    return json.dumps(body).encode()


def test_client_satisfies_the_registry_port() -> None:
    async def go() -> None:
        registry: Registry = client(FakeRegistry())
        assert registry.registry == HOST
        await registry.close()

    run(go())


# -- manifests ----------------------------------------------------------------------------------


def test_head_get_and_put_manifests() -> None:
    fake = FakeRegistry()
    image = fake.put_image("team/app", "1.0", [b"layer one", b"layer two"])

    async def go() -> None:
        async with client(fake) as c:
            await c.ping()
            assert await c.head_manifest("team/app", "1.0") == image.descriptor()
            assert await c.head_manifest("team/app", image.digest) == image.descriptor()
            assert await c.head_manifest("team/app", "missing") is None
            got = await c.get_manifest("team/app", "1.0")
            assert got.raw == image.raw and got.digest == image.digest
            assert [d.digest for d in oci.blobs_of(got)] == [d.digest for d in oci.blobs_of(image)]
            # Retag: the same bytes under another tag, nothing else moves.
            assert await c.put_manifest("team/app", "stable", got.raw, got.media_type) == image.digest
            assert fake.manifest("team/app", "stable") == image.raw
            accept = fake.exchanges("/manifests/1.0", "GET")[0].headers["accept"]
            assert accept.split(", ") == list(oci.MANIFEST_ACCEPT)

    run(go())


def test_missing_manifest_and_repository_errors_name_what_was_asked() -> None:
    fake = FakeRegistry()
    fake.put_image("team/app", "1.0")

    async def go() -> None:
        async with client(fake) as c:
            with pytest.raises(ManifestUnknown) as caught:
                await c.get_manifest("team/app", "2.0")
            assert str(caught.value).startswith("get manifest registry.test/team/app:2.0: ")
            assert "MANIFEST_UNKNOWN" in str(caught.value) and caught.value.status == 404
            assert (caught.value.registry, caught.value.repository, caught.value.reference) == (HOST, "team/app", "2.0")
            with pytest.raises(NameUnknown, match=r"registry\.test/nope"):
                await c.get_manifest("nope", "1.0")
            with pytest.raises(NameUnknown):
                await c.tags("nope")
            with pytest.raises(oci.InvalidReference):
                await c.get_manifest("Team/App", "1.0")

    run(go())


def test_put_manifest_checks_digests_before_and_after() -> None:
    fake = FakeRegistry()
    image = fake.put_image("team/app", "1.0", [b"x"])

    async def go() -> None:
        async with client(fake) as c:
            with pytest.raises(DigestMismatch, match="hashes to"):
                await c.put_manifest("team/app", "sha256:" + "0" * 64, image.raw, image.media_type)
            assert not fake.exchanges(method="PUT")  # refused before sending
            assert await c.put_manifest("team/app", image.digest, image.raw, image.media_type) == image.digest
            with pytest.raises(oci.InvalidManifest):
                await c.put_manifest("team/app", "x", b'{"schemaVersion": 1}', "application/json")
            missing = image.raw.replace(image.layers[0].digest.encode(), b"sha256:" + b"9" * 64)
            with pytest.raises(RegistryError) as caught:
                await c.put_manifest("other", "1.0", missing, image.media_type)
            assert caught.value.code == "MANIFEST_BLOB_UNKNOWN"

    run(go())


def test_a_registry_reporting_another_digest_is_caught() -> None:
    raw = oci.index_bytes([])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, headers={"Docker-Content-Digest": "sha256:" + "e" * 64})

    async def go() -> None:
        async with client(httpx.MockTransport(handler)) as c:
            with pytest.raises(DigestMismatch, match="stored it as sha256:eee"):
                await c.put_manifest("app", "1", raw, oci.OCI_INDEX)

    run(go())


def test_tampered_manifests_and_blobs_are_refused() -> None:
    fake = FakeRegistry()
    image = fake.put_image("app", "1.0", [b"the layer"])
    layer = image.layers[0].digest

    async def go() -> None:
        async with client(fake) as c:
            fake.tamper(image.digest, image.raw + b" ")
            with pytest.raises(DigestMismatch, match=f"hashes to .*, not {image.digest}"):
                await c.get_manifest("app", image.digest)
            with pytest.raises(DigestMismatch):  # by tag: the registry's Docker-Content-Digest disagrees
                await c.get_manifest("app", "1.0")
            fake.tamper(layer, b"the layer, altered")
            with pytest.raises(DigestMismatch, match="the blob hashes to"):
                await collect(c.open_blob("app", layer))

    run(go())


def test_head_without_digest_header_falls_back_to_get() -> None:
    raw = oci.index_bytes([])

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": oci.OCI_INDEX, "Content-Length": str(len(raw))}
        return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else raw)

    async def go() -> None:
        async with client(httpx.MockTransport(handler)) as c:
            assert await c.head_manifest("app", "1") == oci.Descriptor(oci.OCI_INDEX, oci.digest_of(raw), len(raw))

    run(go())


def test_delete_manifest_by_digest_untags_it() -> None:
    fake = FakeRegistry()
    image = fake.put_image("app", "1.0")
    fake.put_manifest("app", "latest", image.raw, image.media_type)
    other = fake.put_image("app", "2.0", [b"other"])

    async def go() -> None:
        async with client(fake) as c:
            assert await c.delete_manifest("app", image.digest) is True
            assert await c.head_manifest("app", image.digest) is None
            assert await c.tags("app") == ["2.0"]
            assert await c.delete_manifest("app", image.digest) is False
            with pytest.raises(oci.InvalidDigest):
                await c.delete_manifest("app", "1.0")
            fake.fail("/manifests/", 405, method="DELETE")
            with pytest.raises(Unsupported, match="HTTP 405 UNSUPPORTED"):
                await c.delete_manifest("app", other.digest)

    run(go())


# -- blobs --------------------------------------------------------------------------------------


def test_blob_size_and_streaming() -> None:
    fake = FakeRegistry()
    data = os.urandom(100_000)
    blob = fake.put_blob("app", data)

    async def go() -> None:
        async with client(fake) as c:
            assert await c.blob_size("app", blob.digest) == len(data)
            assert await c.blob_size("app", "sha256:" + "0" * 64) is None
            assert await collect(c.open_blob("app", blob.digest)) == data
            assert c.stats.bytes_received == len(data)
            with pytest.raises(BlobUnknown):
                await collect(c.open_blob("app", "sha256:" + "0" * 64))
            with pytest.raises(BlobUnknown):
                await collect(c.open_blob("other", blob.digest))  # blobs are linked per repository

    run(go())


def test_blob_redirect_to_storage_drops_the_registry_token() -> None:
    fake = FakeRegistry(auth="bearer", users=USERS, blob_redirect=True)
    blob = fake.put_blob("app", b"stored elsewhere")

    async def go() -> None:
        async with client(fake, credentials=ALICE) as c:
            assert await collect(c.open_blob("app", blob.digest)) == b"stored elsewhere"
        (storage,) = [e for e in fake.log if e.host == "storage.test"]
        assert "authorization" not in storage.headers

    run(go())


def test_monolithic_upload_is_one_post_and_one_put() -> None:
    fake = FakeRegistry()
    data = b"small blob"
    digest = oci.digest_of(data)

    async def go() -> None:
        async with client(fake) as c:
            await c.upload_blob("app", digest, len(data), data)
            assert [(e.method, e.status) for e in fake.log] == [("POST", 202), ("PUT", 201)]
            put = fake.log[1]
            assert put.params["digest"] == digest and put.params["_state"]  # the Location's query is kept
            assert fake.blob("app", digest) == data
            assert c.stats.requests == 2 and c.stats.bytes_sent == len(data)

    run(go())


def test_chunked_upload_sends_content_ranges() -> None:
    fake = FakeRegistry()
    data = os.urandom(2500)
    digest = oci.digest_of(data)

    async def go() -> None:
        async with client(fake, chunk_size=1000) as c:
            await c.upload_blob("app", digest, len(data), data)
        patches = fake.exchanges(method="PATCH")
        assert [e.headers["content-range"] for e in patches] == ["0-999", "1000-1999", "2000-2499"]
        assert all(e.headers["content-type"] == "application/octet-stream" for e in patches)
        (put,) = fake.exchanges(method="PUT")
        assert put.body_size == 0 and put.status == 201
        assert fake.blob("app", digest) == data
        assert fake.open_uploads == 0

    run(go())


def test_streamed_uploads_are_rechunked_and_small_streams_go_up_whole() -> None:
    fake = FakeRegistry()
    big, small = os.urandom(2100), os.urandom(300)

    async def go() -> None:
        async with client(fake, chunk_size=1000) as c:
            await c.upload_blob("app", oci.digest_of(big), len(big), stream(big, 77))
            await c.upload_blob("app", oci.digest_of(small), len(small), stream(small, 50))
            await c.upload_blob("app", oci.EMPTY_DIGEST, 2, stream(b"{}", 1))
        assert [e.body_size for e in fake.exchanges(method="PATCH")] == [1000, 1000, 100]
        assert [e.body_size for e in fake.exchanges(method="PUT")] == [0, 300, 2]
        assert fake.blob("app", oci.digest_of(big)) == big
        assert fake.blob("app", oci.digest_of(small)) == small

    run(go())


def test_uploads_refuse_content_that_does_not_match() -> None:
    fake = FakeRegistry()
    data = os.urandom(2500)
    digest = oci.digest_of(data)

    async def go() -> None:
        async with client(fake, chunk_size=1000) as c:
            with pytest.raises(DigestMismatch, match="has 2500 bytes, not 10"):
                await c.upload_blob("app", digest, 10, data)
            with pytest.raises(DigestMismatch, match="hashes to"):
                await c.upload_blob("app", oci.digest_of(b"other"), len(data), data)
            assert fake.log == []  # in memory: checked before anything is sent
            with pytest.raises(DigestMismatch, match="the stream gave 2500 bytes"):
                await c.upload_blob("app", oci.digest_of(b"other"), len(data), stream(data, 500))
        assert fake.blob("app", oci.digest_of(b"other")) is None
        assert fake.open_uploads == 0  # the streamed session was cancelled, not committed
        assert fake.exchanges(method="DELETE")[0].status == 204

    run(go())


def test_a_lost_patch_reply_is_resolved_by_asking_the_upload_status() -> None:
    fake = FakeRegistry()
    data = os.urandom(3000)
    digest = oci.digest_of(data)
    fake.disconnect(r"/blobs/uploads/upload-", method="PATCH", after=True)  # the registry got the first chunk

    async def go() -> None:
        async with client(fake, chunk_size=1000) as c:
            await c.upload_blob("app", digest, len(data), stream(data, 1000))

    run(go())
    assert [e.method for e in fake.log] == ["POST", "PATCH", "GET", "PATCH", "PATCH", "PUT"]
    assert fake.log[2].status == 204
    assert [e.headers["content-range"] for e in fake.exchanges(method="PATCH")] == ["0-999", "1000-1999", "2000-2999"]
    assert fake.blob("app", digest) == data


def test_a_chunk_that_never_arrived_is_sent_again() -> None:
    fake = FakeRegistry()
    data = os.urandom(2000)
    fake.disconnect(r"/blobs/uploads/upload-", method="PATCH")  # refused before the registry saw it
    sleeps = Sleeps()

    async def go() -> None:
        async with client(fake, sleeps, chunk_size=1000) as c:
            await c.upload_blob("app", oci.digest_of(data), len(data), stream(data, 1000))

    run(go())
    assert [e.headers["content-range"] for e in fake.exchanges(method="PATCH")] == ["0-999", "0-999", "1000-1999"]
    assert len(sleeps.delays) == 1
    assert fake.blob("app", oci.digest_of(data)) == data


def test_416_resumes_from_the_offset_the_registry_reports() -> None:
    fake = FakeRegistry()
    data = os.urandom(2000)
    fake.fail(r"/blobs/uploads/upload-", 416, method="PATCH", code="BLOB_UPLOAD_INVALID")
    sleeps = Sleeps()

    async def go() -> None:
        async with client(fake, sleeps, chunk_size=1000) as c:
            await c.upload_blob("app", oci.digest_of(data), len(data), data)

    run(go())
    assert [e.status for e in fake.exchanges(method="PATCH")] == [416, 202, 202]
    assert [e.status for e in fake.exchanges(r"/blobs/uploads/upload-", "GET")] == [204]
    assert sleeps.delays == []  # a 416 is answered at once
    assert fake.blob("app", oci.digest_of(data)) == data


def test_a_lost_session_is_restarted_for_content_in_memory_only() -> None:
    fake = FakeRegistry()
    data = os.urandom(2000)

    async def go() -> None:
        async with client(fake, chunk_size=1000) as c:
            fake.fail(r"/blobs/uploads/upload-", 404, method="PATCH", code="BLOB_UPLOAD_UNKNOWN")
            await c.upload_blob("app", oci.digest_of(data), len(data), data)
            assert len(fake.exchanges(method="POST")) == 2
            assert fake.blob("app", oci.digest_of(data)) == data
            fake.fail(r"/blobs/uploads/upload-", 404, method="PATCH", code="BLOB_UPLOAD_UNKNOWN")
            with pytest.raises(RegistryError) as caught:
                await c.upload_blob("other", oci.digest_of(data), len(data), stream(data, 1000))
            assert caught.value.code == "BLOB_UPLOAD_UNKNOWN"

    run(go())


def test_a_lost_reply_to_the_closing_put_is_checked_not_repeated() -> None:
    fake = FakeRegistry()
    data = b"committed"
    fake.disconnect(r"/blobs/uploads/upload-", method="PUT", after=True)

    async def go() -> None:
        async with client(fake) as c:
            await c.upload_blob("app", oci.digest_of(data), len(data), data)

    run(go())
    assert [(e.method, e.status) for e in fake.log] == [("POST", 202), ("PUT", 0), ("HEAD", 200)]


def test_mount_across_repositories() -> None:
    fake = FakeRegistry()
    blob = fake.put_blob("source", b"shared layer")

    async def go() -> None:
        async with client(fake) as c:
            assert await c.mount_blob("target", blob.digest, "source") is True
            assert fake.blob("target", blob.digest) == b"shared layer"
            assert fake.log[0].params == {"mount": blob.digest, "from": "source"}
            # The source lacks the blob: the registry opens an upload (202), which is cancelled.
            assert await c.mount_blob("third", "sha256:" + "0" * 64, "source") is False
            fake.mount = False
            assert await c.mount_blob("third", blob.digest, "source") is False
            assert fake.open_uploads == 0
            assert [e.status for e in fake.exchanges(method="DELETE")] == [204, 204]

    run(go())


# -- listings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("absolute", [False, True])
def test_tags_follow_link_headers(absolute: bool) -> None:
    fake = FakeRegistry(absolute_links=absolute)
    image = fake.put_image("app", "v1")
    for tag in ("v3", "v5", "v2", "v4"):
        fake.put_manifest("app", tag, image.raw, image.media_type)

    async def go() -> None:
        async with client(fake) as c:
            assert await c.tags("app", page_size=2) == ["v1", "v2", "v3", "v4", "v5"]
            pages = fake.exchanges("/tags/list")
            assert [e.params for e in pages] == [
                {"n": "2"},
                {"n": "2", "last": "v2"},
                {"n": "2", "last": "v4"},
            ]
            assert await c.tags("app") == ["v1", "v2", "v3", "v4", "v5"]
            assert await c.tags("app", page_size=0) == []

    run(go())


def test_catalog_pages() -> None:
    fake = FakeRegistry()
    for name in ("b/app", "a/app", "c"):
        fake.put_image(name, "1")

    async def go() -> None:
        async with client(fake) as c:
            assert await c.catalog(page_size=2) == ["a/app", "b/app", "c"]
            assert len(fake.exchanges("/_catalog")) == 2

    run(go())


def test_a_looping_link_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"tags": ["a"]}, headers={"Link": '</v2/app/tags/list?n=1>; rel="next"'})

    async def go() -> None:
        async with client(httpx.MockTransport(handler)) as c:
            with pytest.raises(RegistryError, match="loops back"):
                await c.tags("app", page_size=1)

    run(go())


# -- referrers ----------------------------------------------------------------------------------


def test_referrers_api_with_filter_and_pages() -> None:
    fake = FakeRegistry(page_size=1)
    image = fake.put_image("app", "1.0", [b"l"])
    signature = artifact(fake, "app", image, SIG, "signed")
    sbom = artifact(fake, "app", image, SBOM, "bill")

    async def go() -> None:
        async with client(fake) as c:
            for raw in (signature, sbom):
                await c.put_manifest("app", oci.digest_of(raw), raw, oci.OCI_MANIFEST)
            found = await c.referrers("app", image.digest)
            assert {d.digest for d in found} == {oci.digest_of(signature), oci.digest_of(sbom)}
            assert len(fake.exchanges("/referrers/")) == 2  # two pages of one
            (only,) = await c.referrers("app", image.digest, SIG)
            assert only.digest == oci.digest_of(signature)
            assert only.artifact_type == SIG and only.annotations == {"note": "signed"}
            assert await c.referrers("app", "sha256:" + "0" * 64) == []
        # The registry answered OCI-Subject: no fallback tag was written.
        assert fake.tag_names("app") == ["1.0"]

    run(go())


def test_referrers_tag_schema_when_the_registry_has_no_api() -> None:
    fake = FakeRegistry(referrers_api=False)
    image = fake.put_image("app", "1.0", [b"l"])
    signature = artifact(fake, "app", image, SIG, "signed")
    sbom = artifact(fake, "app", image, SBOM, "bill")
    tag = oci.referrers_tag(image.digest)

    async def go() -> None:
        async with client(fake) as c:
            assert await c.referrers("app", image.digest) == []
            for raw in (signature, sbom, signature):  # pushing twice lists it once
                await c.put_manifest("app", oci.digest_of(raw), raw, oci.OCI_MANIFEST)
            assert tag in fake.tag_names("app")
            listed = await c.referrers("app", image.digest)
            assert [d.digest for d in listed] == [oci.digest_of(signature), oci.digest_of(sbom)]
            assert [d.artifact_type for d in listed] == [SIG, SBOM]
            assert [d.digest for d in await c.referrers("app", image.digest, SBOM)] == [oci.digest_of(sbom)]
            # Deleting a referrer takes it out of the index; the last one takes the index away.
            assert await c.delete_manifest("app", oci.digest_of(signature), subject=image.digest)
            assert [d.digest for d in await c.referrers("app", image.digest)] == [oci.digest_of(sbom)]
            assert await c.delete_manifest("app", oci.digest_of(sbom), subject=image.digest)
            assert await c.referrers("app", image.digest) == []
            assert fake.tag_names("app") == ["1.0"]

    run(go())


def test_referrers_fallback_on_a_non_index_answer() -> None:
    index = oci.index_bytes([oci.Descriptor(oci.OCI_MANIFEST, "sha256:" + "1" * 64, 5, artifact_type=SIG)])
    subject = "sha256:" + "2" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            return httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>login</html>")
        if request.url.path.endswith(oci.referrers_tag(subject)):
            return httpx.Response(200, headers={"Content-Type": oci.OCI_INDEX}, content=index)
        return httpx.Response(404)

    async def go() -> None:
        async with client(httpx.MockTransport(handler)) as c:
            assert [d.artifact_type for d in await c.referrers("app", subject)] == [SIG]

    run(go())


# -- retries ------------------------------------------------------------------------------------


def test_retries_back_off_exponentially_with_jitter() -> None:
    fake = FakeRegistry()
    fake.put_image("app", "1.0")
    fake.fail("/manifests/", 503, times=3)
    sleeps = Sleeps()

    async def go() -> None:
        async with client(fake, sleeps, backoff=1.0) as c:
            await c.get_manifest("app", "1.0")

    run(go())
    assert [e.status for e in fake.exchanges("/manifests/")] == [503, 503, 503, 200]
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_retry_after_is_honoured_in_seconds_and_as_a_date() -> None:
    fake = FakeRegistry()
    fake.put_image("app", "1.0")
    fake.fail("/manifests/", 429, retry_after=7)
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.fail("/tags/", 503, retry_after=later)
    sleeps = Sleeps()

    async def go() -> None:
        async with client(fake, sleeps) as c:
            await c.head_manifest("app", "1.0")
            await c.tags("app")

    run(go())
    assert sleeps.delays[0] == 7
    assert 20 < sleeps.delays[1] <= 30


def test_giving_up_after_retries() -> None:
    fake = FakeRegistry()
    fake.put_image("app", "1.0")
    sleeps = Sleeps()

    async def go() -> None:
        async with client(fake, sleeps, retries=2) as c:
            fake.fail("/manifests/", 429, times=3)
            with pytest.raises(TooManyRequests, match="HTTP 429 TOOMANYREQUESTS"):
                await c.get_manifest("app", "1.0")
            fake.fail("/manifests/", 503, times=3)
            with pytest.raises(Unreachable, match="HTTP 503"):
                await c.get_manifest("app", "1.0")
            fake.fail("/manifests/", 429, retry_after=3600)  # too long to wait: reported at once
            with pytest.raises(TooManyRequests):
                await c.get_manifest("app", "1.0")
            fake.disconnect("/manifests/", times=3)
            with pytest.raises(Unreachable, match=r"cannot reach https://registry\.test after 3 attempts"):
                await c.get_manifest("app", "1.0")
            fake.disconnect("/manifests/", times=2)
            assert (await c.get_manifest("app", "1.0")).media_type == oci.OCI_MANIFEST

    run(go())
    assert len(sleeps.delays) == 2 + 2 + 2 + 2


def test_nothing_listening_is_unreachable() -> None:
    async def go() -> None:
        async with RegistryClient("127.0.0.1:9", retries=0, timeout=2) as c:
            with pytest.raises(Unreachable, match=r"cannot reach http://127\.0\.0\.1:9"):
                await c.ping()

    run(go())


def test_schemes_and_docker_hub_host() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.scheme}://{request.url.netloc.decode()}")
        return httpx.Response(200, json={})

    async def go() -> None:
        for registry in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000", "ghcr.io", "docker.io"):
            async with RegistryClient(registry, transport=httpx.MockTransport(handler)) as c:
                await c.ping()
        async with RegistryClient("registry.lan:5000", scheme="http", transport=httpx.MockTransport(handler)) as c:
            await c.ping()

    run(go())
    assert seen == [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
        "http://[::1]:5000",
        "https://ghcr.io",
        "https://registry-1.docker.io",
        "http://registry.lan:5000",
    ]


# -- authentication -----------------------------------------------------------------------------


def test_basic_auth() -> None:
    fake = FakeRegistry(auth="basic", users=USERS)
    fake.put_image("app", "1.0")

    async def go() -> None:
        async with client(fake) as c:
            with pytest.raises(Unauthorized, match=r"no credentials given \(docker login registry.test\)"):
                await c.ping()
        async with client(fake, credentials=auth.Credentials("alice", "wrong")) as c:
            with pytest.raises(Unauthorized, match="the registry rejected the credentials") as caught:
                await c.ping()
            assert "wrong" not in str(caught.value) and "wrong" not in repr(caught.value)
        fake.log.clear()
        async with client(fake, credentials=ALICE) as c:
            await c.ping()
            await c.get_manifest("app", "1.0")
            assert await c.tags("app") == ["1.0"]
        # One 401 to learn the scheme; after that credentials go up front.
        assert [e.status for e in fake.log] == [401, 200, 200, 200]

    run(go())


def test_bearer_tokens_are_fetched_per_scope_and_cached() -> None:
    fake = FakeRegistry(auth="bearer", users=USERS)
    image = fake.put_image("app", "1.0", [b"layer"])

    async def go() -> None:
        async with client(fake, credentials=ALICE) as c:
            await c.get_manifest("app", "1.0")
            await c.head_manifest("app", "1.0")
            await c.blob_size("app", image.layers[0].digest)
            assert await c.mount_blob("copy", image.layers[0].digest, "app")
            assert await c.catalog() == ["app", "copy"]

    run(go())
    tokens = fake.exchanges("^/token$")
    assert [e.query for e in tokens] == [
        (("service", HOST), ("scope", "repository:app:pull")),
        (("service", HOST), ("scope", "repository:app:pull"), ("scope", "repository:copy:pull,push")),
        (("service", HOST), ("scope", "registry:catalog:*")),
    ]
    assert all(e.headers["authorization"].startswith("Basic ") for e in tokens)
    # The first request met a challenge; every later one carried a token from the start.
    assert [e.status for e in fake.log if e.path != "/token"] == [401, 200, 200, 200, 201, 200]


def test_bearer_mount_asks_for_both_repositories() -> None:
    fake = FakeRegistry(auth="bearer", users=USERS)
    blob = fake.put_blob("src", b"x")

    async def go() -> None:
        async with client(fake, credentials=ALICE) as c:
            assert await c.mount_blob("dst", blob.digest, "src")

    run(go())
    assert [(e.method, e.path, e.status) for e in fake.log] == [
        ("POST", "/v2/dst/blobs/uploads/", 401),
        ("GET", "/token", 200),
        ("POST", "/v2/dst/blobs/uploads/", 201),
    ]
    scopes = [v for k, v in fake.log[1].query if k == "scope"]
    assert scopes == ["repository:dst:pull,push", "repository:src:pull"]


def test_bearer_anonymous_pull_and_refused_push() -> None:
    fake = FakeRegistry(auth="bearer", anonymous_pull=True)
    image = fake.put_image("public/app", "1.0")

    async def go() -> None:
        async with client(fake) as c:
            assert (await c.get_manifest("public/app", "1.0")).digest == image.digest
            with pytest.raises(
                Unauthorized, match=r"put manifest registry\.test/public/app:2\.0: authentication required"
            ):
                await c.put_manifest("public/app", "2.0", image.raw, image.media_type)

    run(go())
    assert "authorization" not in fake.exchanges("^/token$")[0].headers


def test_identity_token_uses_the_oauth2_refresh_grant() -> None:
    fake = FakeRegistry(auth="bearer", identity_tokens=["refresh-me"])
    fake.put_image("app", "1.0")

    async def go() -> None:
        async with client(fake, credentials=auth.Credentials(identity_token="refresh-me")) as c:
            await c.get_manifest("app", "1.0")

    run(go())
    (token,) = fake.exchanges("^/token$")
    assert token.method == "POST"
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"


def test_expired_tokens_are_fetched_again() -> None:
    fake = FakeRegistry(auth="bearer", users=USERS, token_lifetime=0)
    fake.put_image("app", "1.0")

    async def go() -> None:
        async with client(fake, credentials=ALICE) as c:
            for _ in range(3):
                await c.head_manifest("app", "1.0")
            assert len(fake.exchanges("^/token$")) == 3  # expires_in 0: never reused
            fake.token_lifetime = 300
            await c.head_manifest("app", "1.0")
            await c.head_manifest("app", "1.0")
            assert len(fake.exchanges("^/token$")) == 4
            fake.expire_tokens()  # the registry forgets it early: a 401 and a fresh token
            await c.head_manifest("app", "1.0")
            assert len(fake.exchanges("^/token$")) == 5

    run(go())


def test_bearer_with_wrong_password() -> None:
    fake = FakeRegistry(auth="bearer", users=USERS)

    async def go() -> None:
        async with client(fake, credentials=auth.Credentials("alice", "nope-nope")) as c:
            with pytest.raises(Unauthorized) as caught:
                await c.ping()
            assert "token service registry.test refused the credentials" in str(caught.value)
            assert "nope-nope" not in str(caught.value)

    run(go())


def test_denied_is_not_unauthorized() -> None:
    fake = FakeRegistry()
    fake.put_image("app", "1.0")
    fake.fail("/manifests/", 403, code="DENIED")

    async def go() -> None:
        async with client(fake) as c:
            with pytest.raises(Denied, match="HTTP 403 DENIED"):
                await c.get_manifest("app", "1.0")

    run(go())


def test_secrets_never_show() -> None:
    credentials = auth.Credentials("alice", "s3cret-pw")
    token = auth.Credentials(identity_token="idtok-123")
    assert "s3cret" not in repr(credentials) and "s3cret" not in str(credentials)
    assert "idtok" not in repr(token)
    assert credentials.basic_authorization() == "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()
    with pytest.raises(ValueError, match="identity token cannot be sent as Basic"):
        token.basic_authorization()
    with pytest.raises(ValueError):
        auth.Credentials("alice")
    assert repr(client(FakeRegistry(), credentials=credentials)) == "RegistryClient('registry.test')"


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    (challenge,) = auth.parse_challenges([header])
    assert challenge.scheme == "bearer"
    assert challenge.params["realm"] == "https://auth.example.com/token"
    assert challenge.scopes == ("repository:a/b:pull,push", "repository:c:pull")
    both = auth.parse_challenges(
        ['Basic realm="a \\"quoted\\" realm", Bearer realm="https://x/t", error=invalid_token']
    )
    assert [(c.scheme, dict(c.params)) for c in both] == [
        ("basic", {"realm": 'a "quoted" realm'}),
        ("bearer", {"realm": "https://x/t", "error": "invalid_token"}),
    ]
    assert auth.parse_challenges(["Basic", 'Bearer realm="r"']) == [
        auth.Challenge("basic"),
        auth.Challenge("bearer", {"realm": "r"}),
    ]


# -- Docker's credentials -----------------------------------------------------------------------


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Path]:
    """Write ``$DOCKER_CONFIG/config.json``."""
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))

    def write(config: dict[str, Any]) -> Path:
        path = directory / "config.json"
        path.write_text(json.dumps(config))
        return path

    return write


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``docker-credential-test`` on PATH that knows reg.test and docker hub; it logs what it is asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked.log"
    script = bin_dir / "docker-credential-test"
    script.write_text(
        f"""#!/bin/sh
[ "$1" = get ] || exit 2
read -r url
echo "$url" >> {asked}
case "$url" in
  reg.test:5000) echo '{{"ServerURL":"reg.test:5000","Username":"helper-user","Secret":"helper-secret"}}' ;;
  https://index.docker.io/v1/) echo '{{"ServerURL":"x","Username":"<token>","Secret":"hub-identity"}}' ;;
  broken.test) echo 'permission denied by keychain' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"""
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield asked


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_entries(docker_config: Callable[[dict[str, Any]], Path]) -> None:
    docker_config(
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pw")},
                "ghcr.io": {"username": "gh", "password": "ghp"},
                "https://registry.example.com:5000/v2/": {"auth": b64("ex:expw")},
                "azure.io": {"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": "refresh"},
                "empty.io": {},
            }
        }
    )
    assert auth.docker_credentials("docker.io") == auth.Credentials("hubuser", "hub:pw")
    assert auth.docker_credentials("index.docker.io") == auth.Credentials("hubuser", "hub:pw")
    assert auth.docker_credentials("ghcr.io") == auth.Credentials("gh", "ghp")
    assert auth.docker_credentials("registry.example.com:5000") == auth.Credentials("ex", "expw")
    azure = auth.docker_credentials("azure.io")
    assert azure is not None and azure.identity_token == "refresh" and not azure.can_basic
    assert auth.docker_credentials("empty.io") is None
    assert auth.docker_credentials("other.io") is None


def test_credential_helpers(docker_config: Callable[[dict[str, Any]], Path], helper: Path) -> None:
    docker_config(
        {
            "credsStore": "test",
            "credHelpers": {"special.io": "missing"},
            "auths": {"fallback.io": {"auth": b64("inline:pw")}},
        }
    )
    assert auth.docker_credentials("reg.test:5000") == auth.Credentials("helper-user", "helper-secret")
    hub = auth.docker_credentials("docker.io")
    assert hub is not None and hub.identity_token == "hub-identity"
    # The store has nothing for it: the inline entry is used, as Docker does.
    assert auth.docker_credentials("fallback.io") == auth.Credentials("inline", "pw")
    assert auth.docker_credentials("unknown.io") is None
    assert helper.read_text().split() == [
        "reg.test:5000",
        "https://index.docker.io/v1/",
        "fallback.io",
        "unknown.io",
    ]
    with pytest.raises(
        auth.CredentialsError, match=r"docker-credential-missing \(credHelpers in .*\) is not installed"
    ):
        auth.docker_credentials("special.io")
    with pytest.raises(
        auth.CredentialsError, match=r"docker-credential-test failed for broken\.test: permission denied"
    ):
        auth.docker_credentials("broken.test")


def test_cred_helpers_entry_wins_over_creds_store(
    docker_config: Callable[[dict[str, Any]], Path], helper: Path
) -> None:
    docker_config({"credsStore": "missing", "credHelpers": {"reg.test:5000": "test"}})
    assert auth.docker_credentials("reg.test:5000") == auth.Credentials("helper-user", "helper-secret")


def test_config_file_problems(docker_config: Callable[[dict[str, Any]], Path], tmp_path: Path) -> None:
    assert auth.docker_credentials("ghcr.io") is None  # no config file at all
    with pytest.raises(auth.CredentialsError, match="no such Docker config file"):
        auth.docker_credentials("ghcr.io", tmp_path / "nope.json")
    path = docker_config({"auths": {"ghcr.io": {"auth": "%%%not-base64"}}})
    with pytest.raises(auth.CredentialsError, match=r"auths\['ghcr.io'\]: the auth value is not base64"):
        auth.docker_credentials("ghcr.io")
    path.write_text("{not json")
    with pytest.raises(auth.CredentialsError, match="not valid JSON"):
        auth.docker_credentials("ghcr.io")
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"ghcr.io": {"auth": b64("me:pw")}}}))
    assert auth.docker_credentials("ghcr.io", explicit) == auth.Credentials("me", "pw")


def test_home_docker_config_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {"q.io": {"auth": b64("a:b")}}}))
    assert auth.docker_credentials("q.io") == auth.Credentials("a", "b")


def test_stats_count_requests_and_bodies() -> None:
    fake = FakeRegistry()
    data = os.urandom(5000)

    async def go() -> None:
        async with client(fake, chunk_size=2000) as c:
            await c.upload_blob("app", oci.digest_of(data), len(data), data)
            assert (c.stats.requests, c.stats.bytes_sent, c.stats.bytes_received) == (5, 5000, 0)
            async with contextlib.aclosing(c.open_blob("app", oci.digest_of(data))) as chunks:
                async for _ in chunks:
                    break  # stopping early releases the connection
            assert c.stats.requests == 6

    run(go())


def test_streaming_a_blob_between_registries_closes_the_source() -> None:
    source, target = FakeRegistry("source.test"), FakeRegistry("target.test")
    data = os.urandom(5000)
    blob = source.put_blob("app", data)

    async def go() -> None:
        async with (
            RegistryClient("source.test", transport=source) as src,
            RegistryClient("target.test", transport=target, chunk_size=2048) as dst,
        ):
            chunks = src.open_blob("app", blob.digest)
            await dst.upload_blob("app", blob.digest, blob.size, chunks)
            with pytest.raises(StopAsyncIteration):
                await anext(chunks)  # closed by upload_blob once read
            assert dst.stats.bytes_sent == src.stats.bytes_received == len(data)

    run(go())
    assert target.blob("app", blob.digest) == data
    assert [e.body_size for e in target.exchanges(method="PATCH")] == [2048, 2048, 904]


@pytest.mark.parametrize("docker", [False, True])
def test_multi_platform_index_from_the_fake(docker: bool) -> None:
    fake = FakeRegistry()
    amd = fake.put_image("app", None, [b"amd"], docker=docker)
    arm = fake.put_image("app", None, [b"arm"], docker=docker, platform="linux/arm64/v8")
    index = fake.put_index("app", "1.0", [amd, arm], docker=docker)

    async def go() -> None:
        async with client(fake) as c:
            got = await c.get_manifest("app", "1.0")
            assert got.raw == index.raw and got.is_index
            assert got.media_type == (oci.DOCKER_MANIFEST_LIST if docker else oci.OCI_INDEX)
            assert [str(d.platform) for d in oci.children_of(got)] == ["linux/amd64", "linux/arm64/v8"]
            for child in oci.children_of(got):
                image = await c.get_manifest("app", child.digest)
                assert image.media_type == (oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST)
                for blob in oci.blobs_of(image):
                    assert await c.blob_size("app", blob.digest) == blob.size

    run(go())
