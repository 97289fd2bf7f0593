"""The registry client against the real distribution registry (Debian ``docker-registry`` 2.8).

Each test starts the embedded registry on a free loopback port with a home of its own,
pushes content generated in the test and reads it back through `RegistryClient`; no
Docker daemon is involved. Distribution 2.8 has no referrers API, so referrers go
through the tag schema here, and it ignores ``n`` on tag lists (pagination is still
exercised on the catalog, which it does page).
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.registry import auth
from funade.adapters.registry.client import ManifestUnknown, NameUnknown, RegistryClient, Unauthorized
from funade.adapters.registry.server import RegistryServer
from funade.core import oci
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
MiB = 1024 * 1024
SIG = "application/vnd.example.signature"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry of the test's own; yields its address."""
    server = RegistryServer(tmp_path / "home", f"127.0.0.1:{free_port()}")
    server.up()
    try:
        yield server.address
    finally:
        server.down()


async def push_blob(client: RegistryClient, repository: str, data: bytes, media_type: str) -> oci.Descriptor:
    descriptor = oci.Descriptor(media_type, oci.digest_of(data), len(data))
    await client.upload_blob(repository, descriptor.digest, descriptor.size, data)
    return descriptor


async def push_image(
    client: RegistryClient,
    repository: str,
    tag: str | None,
    layers: list[bytes],
    *,
    docker: bool = False,
    arch: str = "amd64",
) -> oci.Manifest:
    """Push layers, a config and a manifest (indented JSON: copies must keep the exact bytes)."""
    layer_type = oci.DOCKER_LAYER if docker else oci.OCI_LAYER
    descriptors = [await push_blob(client, repository, data, layer_type) for data in layers]
    config = {
        "architecture": arch,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in descriptors]},
    }
    config_type = oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG
    config_descriptor = await push_blob(client, repository, json.dumps(config).encode(), config_type)
    media_type = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config_descriptor.to_json(),
        "layers": [d.to_json() for d in descriptors],
    }
    raw = json.dumps(body, indent=3).encode()
    digest = await client.put_manifest(repository, tag or oci.digest_of(raw), raw, media_type)
    manifest = oci.parse_manifest(raw, media_type)
    assert digest == manifest.digest
    return manifest


async def read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_push_and_read_back_monolithic_and_chunked(registry: str) -> None:
    small, large, streamed = os.urandom(512 * 1024), os.urandom(3 * MiB + 12345), os.urandom(2 * MiB + 7)

    async def go() -> None:
        async with RegistryClient(registry, chunk_size=MiB) as client:
            await client.ping()
            image = await push_image(client, "it/app", "1.0", [small, large])
            sent = client.stats.bytes_sent
            digest = oci.digest_of(streamed)
            await client.upload_blob("it/app", digest, len(streamed), pieces(streamed, 300_000))
            assert client.stats.bytes_sent - sent == len(streamed)

            assert await client.head_manifest("it/app", "1.0") == image.descriptor()
            for reference in ("1.0", image.digest):
                got = await client.get_manifest("it/app", reference)
                assert got.raw == image.raw
            for data in (small, large, streamed):
                assert await client.blob_size("it/app", oci.digest_of(data)) == len(data)
                assert await read(client.open_blob("it/app", oci.digest_of(data))) == data
            assert await client.blob_size("it/app", "sha256:" + "0" * 64) is None
            assert client.stats.bytes_received >= len(small) + len(large) + len(streamed)

    run(go())


def test_docker_manifests_and_a_multi_platform_list_keep_their_bytes(registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(registry) as client:
            amd = await push_image(client, "it/multi", None, [b"amd64 layer"], docker=True)
            arm = await push_image(client, "it/multi", None, [b"arm64 layer"], docker=True, arch="arm64")
            children = [
                oci.Descriptor(m.media_type, m.digest, m.size, platform=oci.Platform("linux", arch))
                for m, arch in ((amd, "amd64"), (arm, "arm64"))
            ]
            body = {
                "schemaVersion": 2,
                "mediaType": oci.DOCKER_MANIFEST_LIST,
                "manifests": [c.to_json() for c in children],
            }
            raw = json.dumps(body, indent=2).encode()
            digest = await client.put_manifest("it/multi", "1.0", raw, oci.DOCKER_MANIFEST_LIST)
            listing = await client.get_manifest("it/multi", "1.0")
            assert listing.raw == raw and listing.digest == digest and listing.is_index
            assert [str(c.platform) for c in oci.children_of(listing)] == ["linux/amd64", "linux/arm64"]
            assert (await client.get_manifest("it/multi", arm.digest)).raw == arm.raw

    run(go())


def test_mount_across_repositories(registry: str) -> None:
    layer = os.urandom(256 * 1024)

    async def go() -> None:
        async with RegistryClient(registry) as client:
            blob = await push_blob(client, "it/source", layer, oci.OCI_LAYER)
            sent = client.stats.bytes_sent
            assert await client.mount_blob("it/target", blob.digest, "it/source") is True
            assert client.stats.bytes_sent == sent  # nothing moved
            assert await client.blob_size("it/target", blob.digest) == len(layer)
            # The source does not have it: distribution opens an upload (202), which is cancelled.
            assert await client.mount_blob("it/target", "sha256:" + "1" * 64, "it/source") is False

    run(go())


def test_listing_tags_and_pages_of_the_catalog(registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(registry) as client:
            image = await push_image(client, "it/tags", "v1", [b"x"])
            for tag in ("v4", "v2", "v5", "v3"):
                await client.put_manifest("it/tags", tag, image.raw, image.media_type)
            assert await client.tags("it/tags", page_size=2) == ["v1", "v2", "v3", "v4", "v5"]
            for name in ("it/b", "it/a", "it/c"):
                await push_blob(client, name, name.encode(), oci.OCI_LAYER)
            before = client.stats.requests
            assert await client.catalog(page_size=2) == ["it/a", "it/b", "it/c", "it/tags"]
            assert client.stats.requests - before == 2  # distribution pages the catalog with Link

    run(go())


def test_delete_by_digest_then_404(registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(registry) as client:
            image = await push_image(client, "it/delete", "1.0", [b"doomed"])
            await client.put_manifest("it/delete", "latest", image.raw, image.media_type)
            assert await client.delete_manifest("it/delete", image.digest) is True
            assert await client.head_manifest("it/delete", image.digest) is None
            assert await client.head_manifest("it/delete", "1.0") is None
            with pytest.raises(ManifestUnknown, match="MANIFEST_UNKNOWN"):
                await client.get_manifest("it/delete", image.digest)
            assert await client.tags("it/delete") == []
            assert await client.delete_manifest("it/delete", image.digest) is False

    run(go())


def test_referrers_through_the_tag_schema(registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(registry) as client:
            image = await push_image(client, "it/signed", "1.0", [b"payload"])
            empty = await push_blob(client, "it/signed", oci.EMPTY_JSON, oci.OCI_EMPTY)
            layer = await push_blob(client, "it/signed", b"signature bytes", "application/octet-stream")
            body = {
                "schemaVersion": 2,
                "mediaType": oci.OCI_MANIFEST,
                "artifactType": SIG,
                "config": empty.to_json(),
                "layers": [layer.to_json()],
                "subject": image.descriptor().to_json(),
                "annotations": {"signed-by": "it"},
            }
            raw = json.dumps(body).encode()
            assert await client.referrers("it/signed", image.digest) == []
            digest = await client.put_manifest("it/signed", oci.digest_of(raw), raw, oci.OCI_MANIFEST)
            (referrer,) = await client.referrers("it/signed", image.digest)
            assert (referrer.digest, referrer.artifact_type) == (digest, SIG)
            assert referrer.annotations == {"signed-by": "it"}
            assert await client.referrers("it/signed", image.digest, "application/other") == []
            assert oci.referrers_tag(image.digest) in await client.tags("it/signed")
            assert await client.delete_manifest("it/signed", digest, subject=image.digest)
            assert await client.referrers("it/signed", image.digest) == []
            assert await client.tags("it/signed") == ["1.0"]

    run(go())


class _LoseFirstPatchReply(httpx.AsyncBaseTransport):
    """Delivers requests, but loses the reply to the first PATCH (the registry did the work)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = False
        self.methods: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        response = await self.inner.handle_async_request(request)
        if request.method == "PATCH" and not self.lost:
            self.lost = True
            await response.aclose()
            raise httpx.ReadError("reply lost (test)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_lost_chunk_reply_restarts_the_upload(registry: str) -> None:
    # Asked for the status of an upload whose reply was lost, distribution 2.8 cancels it
    # (the _state in the Location is stale); content in memory is then uploaded again.
    data = os.urandom(3 * MiB)
    transport = _LoseFirstPatchReply()

    async def go() -> None:
        async with RegistryClient(registry, transport=transport, chunk_size=MiB, backoff=0.01) as client:
            await client.upload_blob("it/flaky", oci.digest_of(data), len(data), data)
            assert await read(client.open_blob("it/flaky", oci.digest_of(data))) == data

    run(go())
    assert transport.methods.count("POST") == 2


def test_skopeo_reads_the_same_manifest_bytes(registry: str) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed (the setup script will add it): cannot cross-check with another client")

    async def go() -> oci.Manifest:
        async with RegistryClient(registry) as client:
            return await push_image(client, "it/skopeo", "1.0", [os.urandom(2048)])

    image = run(go())
    done = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{registry}/it/skopeo:1.0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == image.raw


# -- Basic authentication with htpasswd --------------------------------------------------------------


def _bcrypt(password: str) -> str | None:
    """A bcrypt hash from the C library (Python's deprecated crypt module), or None without one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    if crypt.METHOD_BLOWFISH not in crypt.methods:
        return None
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    return hashed if hashed and hashed.startswith("$2") else None


class _HtpasswdRegistry(RegistryServer):
    """The embedded registry with ``auth: htpasswd`` added to its configuration."""

    def __init__(self, home: Path, address: str, htpasswd: Path) -> None:
        super().__init__(home, address)
        self.htpasswd = htpasswd

    def _config(self) -> dict[str, object]:
        config = super()._config()
        config["auth"] = {"htpasswd": {"realm": "funade-test", "path": str(self.htpasswd)}}
        return config

    def answers(self) -> bool:
        # Unauthenticated, the API root answers 401: that is the registry answering.
        try:
            return httpx.get(f"http://{self.address}/v2/", timeout=1.0).status_code == 401
        except httpx.HTTPError:
            return False


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[str]:
    hashed = _bcrypt("it-password")
    if hashed is None:
        pytest.skip("no bcrypt in the C library to write an htpasswd file; Basic auth is covered by FakeRegistry")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"it-user:{hashed}\n")
    server = _HtpasswdRegistry(tmp_path / "home", f"127.0.0.1:{free_port()}", htpasswd)
    server.up()
    try:
        yield server.address
    finally:
        server.down()


def test_basic_auth_with_htpasswd(basic_registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(basic_registry) as anonymous:
            with pytest.raises(Unauthorized, match=r"no credentials given \(docker login"):
                await anonymous.ping()
        wrong = auth.Credentials("it-user", "not-the-password")
        async with RegistryClient(basic_registry, credentials=wrong) as client:
            with pytest.raises(Unauthorized, match="rejected the credentials") as caught:
                await client.tags("it/private")
            assert "not-the-password" not in str(caught.value)
        right = auth.Credentials("it-user", "it-password")
        async with RegistryClient(basic_registry, credentials=right) as client:
            image = await push_image(client, "it/private", "1.0", [b"secret layer"])
            assert (await client.get_manifest("it/private", "1.0")).raw == image.raw
            assert await client.tags("it/private") == ["1.0"]

    run(go())


def test_errors_name_the_registry_repository_and_reference(registry: str) -> None:
    async def go() -> None:
        async with RegistryClient(registry) as client:
            with pytest.raises(ManifestUnknown) as caught:
                await client.get_manifest("it/none", "1.0")
            assert str(caught.value).startswith(f"get manifest {registry}/it/none:1.0: ")
            with pytest.raises(NameUnknown, match=f"list tags of {registry}/it/none: .*NAME_UNKNOWN"):
                await client.tags("it/none")

    run(go())


# -- Bearer tokens: distribution's token auth with a token service of the test's own -------------------


class _TokenService:
    """A minimal Docker token service: Basic credentials in, an RS256 JWT (x5c header) out.

    Distribution verifies the token against ``rootcertbundle``; the JWT is signed with
    ``openssl dgst`` so no crypto library is needed.
    """

    def __init__(self, directory: Path, service: str, issuer: str, users: dict[str, str]) -> None:
        self.key = directory / "token.key"
        self.cert = directory / "token.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=funade-test-token",
             "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        pem = self.cert.read_text()
        self.x5c = "".join(pem.split("-----")[2].split())  # the DER, base64, as x5c wants it
        self.service = service
        self.issuer = issuer
        self.users = users
        self.requests: list[tuple[str | None, list[str]]] = []  # (user, scopes) per token request
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _TokenService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    @staticmethod
    def _b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def token(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{self._b64(json.dumps(header).encode())}.{self._b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(), capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        return f"{signing_input}.{self._b64(signature)}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                scopes = query.get("scope", [])
                user = None
                scheme, _, value = self.headers.get("Authorization", "").partition(" ")
                if scheme == "Basic":
                    name, _, password = base64.b64decode(value).decode().partition(":")
                    if service.users.get(name) != password:
                        self._answer(401, {"details": "invalid credentials"})
                        return
                    user = name
                service.requests.append((user, scopes))
                if user is None:
                    scopes = [s for s in scopes if s.endswith(":pull")]  # anonymous: pull only
                token = service.token(user or "anonymous", scopes)
                self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


class _TokenRegistry(RegistryServer):
    """The embedded registry with ``auth: token`` pointing at a `_TokenService`."""

    def __init__(self, home: Path, address: str, tokens: _TokenService) -> None:
        super().__init__(home, address)
        self.tokens = tokens

    def _config(self) -> dict[str, object]:
        config = super()._config()
        config["auth"] = {
            "token": {
                "realm": self.tokens.realm,
                "service": self.tokens.service,
                "issuer": self.tokens.issuer,
                "rootcertbundle": str(self.tokens.cert),
            }
        }
        return config

    def answers(self) -> bool:
        try:
            return httpx.get(f"http://{self.address}/v2/", timeout=1.0).status_code == 401
        except httpx.HTTPError:
            return False


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[str, _TokenService]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot sign registry tokens; Bearer auth is covered by FakeRegistry")
    with _TokenService(tmp_path, "funade-test", "funade-test-issuer", {"it-user": "it-password"}) as tokens:
        server = _TokenRegistry(tmp_path / "home", f"127.0.0.1:{free_port()}", tokens)
        server.up()
        try:
            yield server.address, tokens
        finally:
            server.down()


def test_bearer_token_auth(token_registry: tuple[str, _TokenService]) -> None:
    address, tokens = token_registry
    credentials = auth.Credentials("it-user", "it-password")

    async def go() -> None:
        async with RegistryClient(address, credentials=credentials) as client:
            await client.ping()
            image = await push_image(client, "it/source", "1.0", [os.urandom(4096)])
            assert (await client.get_manifest("it/source", "1.0")).raw == image.raw
            assert await client.mount_blob("it/target", image.layers[0].digest, "it/source")
            assert await client.catalog() == ["it/source", "it/target"]
            assert await client.delete_manifest("it/source", image.digest)
        async with RegistryClient(address) as anonymous:
            assert await anonymous.tags("it/source") == []  # anonymous pull works with a pull-only token
            with pytest.raises(Unauthorized):
                await anonymous.upload_blob("it/target", oci.EMPTY_DIGEST, 2, oci.EMPTY_JSON)
        async with RegistryClient(address, credentials=auth.Credentials("it-user", "wrong")) as client:
            with pytest.raises(Unauthorized, match=r"token service 127\.0\.0\.1 refused the credentials"):
                await client.ping()

    run(go())
    scopes = [s for _, request in tokens.requests for s in request]
    assert "repository:it/source:pull,push" in scopes
    assert "repository:it/target:pull,push" in scopes and "repository:it/source:pull" in scopes  # the mount
    assert "registry:catalog:*" in scopes
    # One token per scope set: pushing many blobs and a manifest to one repository asked once.
    assert sum(1 for _, request in tokens.requests if request == ["repository:it/source:pull,push"]) == 1
