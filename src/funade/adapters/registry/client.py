"""An async OCI distribution client: how funade moves images between registries.

Promotion copies an image by digest without a Docker daemon (HEAD the blobs, mount or
stream the missing ones, PUT the byte-identical manifest); cleanup lists tags and
deletes manifests. `RegistryClient` does exactly those requests on one registry host,
over httpx, and nothing more: the engine decides what to copy.

It speaks the OCI distribution spec v1.1 and what the CNCF distribution registry 2.8
(funade's embedded registry) actually does:

- Authentication as Docker does it: anonymous first; on 401 answer the challenge,
  Basic with the credentials, or Bearer by fetching a token for the repository's
  scope from the challenge's realm (GET with Basic credentials, or an OAuth2 POST with
  an identity token). Tokens are cached per scope until they expire.
- Retries with exponential back-off and jitter on 429/502/503/504 and connection
  errors, honouring ``Retry-After``, for idempotent requests. Uploads are not replayed
  blindly: a chunk is resumed from the offset the registry reports (416 or a lost
  reply), and a session the registry lost is restarted when the content is in memory.
- Digests are checked: a manifest fetched by digest must hash to it, a streamed blob
  must hash to its digest, and the digest a registry reports for a PUT must match.
- Referrers: the referrers API, else the referrers tag schema (``sha256-<hex>`` tag
  holding an index), which is what distribution 2.8 needs. Pushing a manifest with a
  ``subject`` to a registry that does not answer ``OCI-Subject`` updates that index.

Distribution 2.8 cannot delete a tag alone (DELETE by tag is a post-1.1 addition);
deleting a manifest by digest removes every tag pointing at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import random
import re
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx

import funade
from funade.core import oci

from . import auth

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "USER_AGENT",
    "BlobUnknown",
    "Denied",
    "DigestMismatch",
    "ManifestUnknown",
    "NameUnknown",
    "NotFound",
    "RegistryClient",
    "RegistryError",
    "Stats",
    "TooManyRequests",
    "Unauthorized",
    "Unreachable",
    "Unsupported",
]

#: Sent with every request; the registry's notifications carry it, so funade's own reads are not counted as pulls.
USER_AGENT = f"funade/{funade.__version__}"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
DEFAULT_TIMEOUT_S = 30.0
#: A registry asking to wait longer than this is answered with `TooManyRequests`, not a wait.
MAX_RETRY_AFTER_S = 120.0
_MAX_BACKOFF_S = 30.0
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_LOOPBACK_HOSTS = frozenset({"localhost", "[::1]"})
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}
_MANIFEST_ACCEPT = ", ".join(oci.MANIFEST_ACCEPT)
_OCTET_STREAM = "application/octet-stream"
_CLIENT_ID = "funade"
_DEFAULT_TOKEN_LIFETIME_S = 60

_log = logging.getLogger(__name__)


# -- errors -------------------------------------------------------------------------------------


class RegistryError(Exception):
    """A registry refused or failed a request.

    Attributes:
        registry: The registry host.
        repository: The repository, when the request was about one.
        reference: The tag or digest, when there was one.
        status: The HTTP status, or None when there was no answer.
        code: The first OCI error code of the body (``MANIFEST_UNKNOWN``...), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        registry: str,
        repository: str | None = None,
        reference: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class Unreachable(RegistryError):
    """No usable answer: connection errors, timeouts, or 502/503/504 after every retry."""


class Unauthorized(RegistryError):
    """Authentication failed or is needed and we have no credentials (401)."""


class Denied(RegistryError):
    """Authenticated, but not allowed (403 or ``DENIED``)."""


class NotFound(RegistryError):
    """The repository, manifest or blob does not exist (404)."""


class ManifestUnknown(NotFound):
    """No manifest with that tag or digest (``MANIFEST_UNKNOWN``)."""


class BlobUnknown(NotFound):
    """No blob with that digest in the repository (``BLOB_UNKNOWN``)."""


class NameUnknown(NotFound):
    """The repository does not exist (``NAME_UNKNOWN``)."""


class TooManyRequests(RegistryError):
    """Still rate limited after every retry (429 or ``TOOMANYREQUESTS``)."""


class Unsupported(RegistryError):
    """The registry does not do this (405 or ``UNSUPPORTED``), e.g. deletes are disabled."""


class DigestMismatch(RegistryError):
    """Content does not match its digest or size, or the registry reports another digest."""


@dataclass
class Stats:
    """What a client moved: HTTP requests (retries, redirects and token fetches included) and body bytes."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    """What a request is for, to name it in errors and to map a bare 404."""

    action: str
    repository: str | None = None
    reference: str | None = None
    kind: str = ""  # manifest | blob | upload | ""


@dataclass
class _Token:
    value: str
    scopes: frozenset[str]
    expires: float


class _SessionLost(Exception):
    """An upload session is gone or unusable; restart it when the content allows."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.message)
        self.error = error


def _default_scheme(registry: str) -> str:
    host = registry[: registry.index("]") + 1] if registry.startswith("[") else registry.split(":", 1)[0]
    return "http" if host in _LOOPBACK_HOSTS or host.startswith("127.") else "https"


def _is_digest(reference: str) -> bool:
    return ":" in reference


def _check_reference(reference: str) -> str:
    return oci.validate_digest(reference) if _is_digest(reference) else oci.validate_tag(reference)


def _pull(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull",)


def _push(repository: str) -> tuple[str, ...]:
    return (f"repository:{repository}:pull,push",)


def _error_body(body: bytes) -> tuple[str | None, str]:
    """The first OCI error code and a readable detail of an error body."""
    try:
        value: object = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode(errors="replace").strip()
        return None, text[:200]
    errors = value.get("errors") if isinstance(value, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = first.get("code")
        message = first.get("message")
        return (str(code) if code else None), (str(message) if message else "")
    return None, ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_LINK_RE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL_NEXT_RE = re.compile(r'rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?', re.IGNORECASE)


def _next_link(response: httpx.Response) -> httpx.URL | None:
    """The ``Link: <url>; rel="next"`` target, resolved against the request URL."""
    for value in response.headers.get_list("link"):
        for match in _LINK_RE.finditer(value):
            if _REL_NEXT_RE.search(match.group(2)):
                return response.url.join(match.group(1))
    return None


def _received(range_header: str | None, expected: int) -> int | None:
    """Bytes an upload holds per its ``Range: 0-<end>`` header (None when absent or odd).

    Distribution answers ``0-0`` both for nothing and for one byte; ``expected`` decides.
    """
    if not range_header:
        return None
    match = re.fullmatch(r"\s*(?:bytes=)?0-(\d+)\s*", range_header)
    if match is None:
        return None
    end = int(match.group(1))
    if end == 0:
        return 1 if expected == 1 else 0
    return end + 1


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";", 1)[0].strip()


async def _rechunk(source: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Re-slice a byte stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    async for piece in source:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


# -- the client ---------------------------------------------------------------------------------


class RegistryClient:
    """Async client of one OCI registry host.

    Args:
        registry: ``host[:port]`` as in image references (``docker.io`` is Docker Hub).
        credentials: For registries that ask for them; see `auth.docker_credentials`.
        transport: An httpx transport, e.g. a `FakeRegistry` in unit tests.
        scheme: ``http`` or ``https``; by default http on loopback, https elsewhere.
        retries: Retries after the first attempt of an idempotent request.
        backoff: First back-off delay in seconds; doubles per retry, with jitter.
        chunk_size: Upload chunk size; blobs up to it in memory go up in one PUT.
        timeout: Seconds for connecting and between bytes read.
        sleep: How to wait between retries (tests pass a recorder).

    One client belongs to one event loop. Use it as an async context manager or call
    `close`. Nothing here logs or raises a credential.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: auth.Credentials | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        scheme: str | None = None,
        retries: int = 4,
        backoff: float = 0.2,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float = DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        scheme = scheme or _default_scheme(registry)
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {scheme!r}")
        self.registry = registry
        self.stats = Stats()
        self._credentials = credentials
        self._retries = max(0, retries)
        self._backoff = backoff
        self._chunk_size = chunk_size
        self._sleep = sleep
        self._base = f"{scheme}://{_API_HOSTS.get(registry, registry)}"
        self._http = httpx.AsyncClient(
            base_url=self._base,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._basic = False  # the registry asked for Basic: send it up front
        self._bearer: auth.Challenge | None = None  # the registry's token service, once known
        self._tokens: list[_Token] = []
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RegistryClient({self.registry!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- errors ---------------------------------------------------------------------------------

    def _where(self, op: _Op) -> str:
        if op.repository is None:
            return self.registry
        where = f"{self.registry}/{op.repository}"
        if op.reference:
            where += f"@{op.reference}" if _is_digest(op.reference) else f":{op.reference}"
        return where

    def _fail(
        self,
        cls: type[RegistryError],
        op: _Op,
        detail: str,
        status: int | None = None,
        code: str | None = None,
    ) -> RegistryError:
        return cls(
            f"{op.action} {self._where(op)}: {detail}",
            registry=self.registry,
            repository=op.repository,
            reference=op.reference,
            status=status,
            code=code,
        )

    def _error(self, op: _Op, response: httpx.Response) -> RegistryError:
        """The exception for an unexpected answer (its body must have been read)."""
        status = response.status_code
        code, detail = _error_body(response.content)
        cls: type[RegistryError] = RegistryError
        if status == 401 or code == "UNAUTHORIZED":
            cls = Unauthorized
            if self._credentials is not None:
                detail = "the registry rejected the credentials" + (f": {detail}" if detail else "")
            else:
                detail = detail or "authentication required"
                detail += f"; no credentials given (docker login {self.registry})"
        elif status == 403 or code == "DENIED":
            cls = Denied
        elif status == 429 or code == "TOOMANYREQUESTS":
            cls = TooManyRequests
        elif status in _RETRY_STATUSES:
            cls = Unreachable
        elif status == 405 or code == "UNSUPPORTED":
            cls = Unsupported
        elif code == "MANIFEST_UNKNOWN" or (status == 404 and code is None and op.kind == "manifest"):
            cls = ManifestUnknown
        elif code == "BLOB_UNKNOWN" or (status == 404 and code is None and op.kind == "blob"):
            cls = BlobUnknown
        elif code == "NAME_UNKNOWN":
            cls = NameUnknown
        elif status == 404:
            cls = NotFound
        reason = detail or response.reason_phrase or "failed"
        suffix = f"HTTP {status}" + (f" {code}" if code else "")
        return self._fail(cls, op, f"{reason} ({suffix})", status, code)

    async def _failure(self, op: _Op, response: httpx.Response) -> RegistryError:
        """`_error` for a response whose body may still be unread (streamed)."""
        await self._read(response)
        return self._error(op, response)

    async def _read(self, response: httpx.Response) -> bytes:
        """Read a streamed body (counting it) and release the connection."""
        if response.is_stream_consumed:
            return response.content
        try:
            body = await response.aread()
        except httpx.TransportError:
            body = b""
        self.stats.bytes_received += len(body)
        return body

    # -- sending --------------------------------------------------------------------------------

    async def _pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is None:
            base = min(self._backoff * 2**attempt, _MAX_BACKOFF_S)
            retry_after = base * random.uniform(0.5, 1.0)
        await self._sleep(retry_after)

    async def _send(
        self,
        op: _Op,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        retry: bool = True,
        stream: bool = False,
        follow: bool = False,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one request: authenticate, retry what may be retried, and count.

        Returns whatever the registry finally answered; callers map unexpected statuses
        with `_failure`. A streamed response must be read or closed by the caller.
        """
        attempt = 0
        challenged = False
        answer: str | None = None  # the credentials a challenge asked for, used on the retry
        while True:
            request = self._http.build_request(method, url, headers=headers, params=params, content=content)
            authorization = answer or (await self._authorization(op, scopes) if authenticate else None)
            if authorization is not None:
                request.headers["Authorization"] = authorization
            self.stats.requests += 1
            self.stats.bytes_sent += len(content or b"")
            try:
                response = await self._http.send(request, stream=stream, follow_redirects=follow)
            except httpx.TransportError as exc:
                _log.debug("%s %s failed: %s", method, request.url, type(exc).__name__)
                if retry and attempt < self._retries:
                    await self._pause(attempt, None)
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise self._fail(
                    Unreachable, op, f"cannot reach {self._base}{tries}: {str(exc) or type(exc).__name__}"
                ) from None
            except httpx.RequestError as exc:  # too many redirects, a realm that is no URL...
                raise self._fail(RegistryError, op, f"{type(exc).__name__}: {exc}") from None
            self.stats.requests += len(response.history)
            if not stream:
                self.stats.bytes_received += len(response.content)
            _log.debug("%s %s -> %s", method, request.url, response.status_code)
            status = response.status_code
            if status == 401 and authenticate and not challenged:
                challenged = True
                await self._read(response)
                answer = await self._answer(op, response, scopes, sent=authorization is not None)
                continue
            if status in _RETRY_STATUSES and retry and attempt < self._retries:
                wait = _retry_after(response)
                if wait is None or wait <= MAX_RETRY_AFTER_S:
                    await self._read(response)
                    await self._pause(attempt, wait)
                    attempt += 1
                    continue
            return response

    # -- authentication -------------------------------------------------------------------------

    async def _authorization(self, op: _Op, scopes: tuple[str, ...]) -> str | None:
        """The Authorization header to send up front, once the registry said how."""
        if self._basic and self._credentials is not None:
            return self._credentials.basic_authorization()
        if self._bearer is None:
            return None
        wanted = frozenset(scopes)
        async with self._token_lock:
            token = self._cached_token(wanted)
            if token is None:
                token = await self._fetch_token(op, self._bearer, wanted)
        return f"Bearer {token}"

    def _cached_token(self, scopes: frozenset[str]) -> str | None:
        now = time.monotonic()
        self._tokens = [t for t in self._tokens if t.expires > now]
        for token in self._tokens:
            if scopes <= token.scopes:
                return token.value
        return None

    async def _answer(self, op: _Op, response: httpx.Response, scopes: tuple[str, ...], sent: bool) -> str:
        """The Authorization header answering a 401's challenge; raises `Unauthorized` when we cannot."""
        challenges = auth.parse_challenges(response.headers.get_list("WWW-Authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            if not bearer.params.get("realm"):
                raise self._fail(Unauthorized, op, "the registry's Bearer challenge names no token realm", 401)
            self._bearer = bearer
            wanted = frozenset(scopes) | frozenset(bearer.scopes)
            async with self._token_lock:
                self._tokens = [t for t in self._tokens if not wanted <= t.scopes]  # the one sent was refused
                token = await self._fetch_token(op, bearer, wanted)
            return f"Bearer {token}"
        if basic is not None:
            if self._credentials is None:
                raise self._fail(
                    Unauthorized,
                    op,
                    f"authentication required and no credentials given (docker login {self.registry})",
                    401,
                )
            if not self._credentials.can_basic:
                raise self._fail(Unauthorized, op, "the registry wants Basic credentials, not an identity token", 401)
            if self._basic and sent:
                raise self._fail(Unauthorized, op, "the registry rejected the credentials", 401)
            self._basic = True
            return self._credentials.basic_authorization()
        raise self._fail(Unauthorized, op, "authentication required, with no challenge funade can answer", 401)

    async def _fetch_token(self, op: _Op, challenge: auth.Challenge, scopes: frozenset[str]) -> str:
        """Get a bearer token for ``scopes`` from the challenge's realm and cache it."""
        realm = challenge.params["realm"]
        service = challenge.params.get("service")
        credentials = self._credentials
        headers: dict[str, str] = {}
        what = _Op("get a token for", op.repository, op.reference, "token")
        if credentials is not None and credentials.identity_token:
            form = [("grant_type", "refresh_token"), ("refresh_token", credentials.identity_token)]
            form += [("client_id", _CLIENT_ID)]
            if service:
                form.append(("service", service))
            if scopes:
                form.append(("scope", " ".join(sorted(scopes))))
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urllib.parse.urlencode(form).encode()
            response = await self._send(what, "POST", realm, headers=headers, content=body, authenticate=False)
        else:
            query: list[tuple[str, str | int | float | bool | None]] = [("service", service)] if service else []
            query += [("scope", s) for s in sorted(scopes)]
            url = httpx.URL(realm).copy_merge_params(query)
            if credentials is not None and credentials.can_basic:
                headers["Authorization"] = credentials.basic_authorization()
            response = await self._send(what, "GET", url, headers=headers, authenticate=False)
        host = httpx.URL(realm).host
        if response.status_code in (401, 403):
            who = "the credentials" if credentials is not None else "anonymous access"
            raise self._fail(
                Unauthorized, what, f"the token service {host} refused {who} (HTTP {response.status_code})", 401
            )
        if response.status_code != 200:
            raise self._error(what, response)
        try:
            answer: object = response.json()
        except ValueError:
            answer = None
        token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise self._fail(RegistryError, what, f"the token service {host} answered without a token")
        lifetime = answer.get("expires_in", _DEFAULT_TOKEN_LIFETIME_S) if isinstance(answer, dict) else 0
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool):
            lifetime = _DEFAULT_TOKEN_LIFETIME_S
        self._tokens.insert(0, _Token(token, scopes, time.monotonic() + 0.9 * float(lifetime)))
        return token

    # -- the API --------------------------------------------------------------------------------

    def _url(self, repository: str, kind: str, reference: str) -> str:
        return f"/v2/{oci.validate_repository(repository)}/{kind}/{urllib.parse.quote(reference, safe=':')}"

    async def ping(self) -> None:
        """Check that the registry answers the distribution API (authenticating if it asks)."""
        op = _Op("ping")
        response = await self._send(op, "GET", "/v2/")
        if response.status_code == 200:
            return
        if response.status_code == 404:
            raise self._fail(Unsupported, op, "does not serve the distribution API (GET /v2/ answered 404)", 404)
        raise await self._failure(op, response)

    async def head_manifest(self, repository: str, reference: str) -> oci.Descriptor | None:
        """The descriptor of a manifest by tag or digest, or None when there is none."""
        op = _Op("head manifest", repository, _check_reference(reference), "manifest")
        response = await self._send(
            op,
            "HEAD",
            self._url(repository, "manifests", reference),
            scopes=_pull(repository),
            headers={"Accept": _MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise await self._failure(op, response)
        digest = response.headers.get("Docker-Content-Digest")
        media_type = _media_type(response)
        length = response.headers.get("Content-Length", "")
        if not digest or media_type not in oci.MANIFEST_MEDIA_TYPES or not length.isdigit():
            return (await self.get_manifest(repository, reference)).descriptor()
        if _is_digest(reference) and digest != reference:
            raise self._fail(DigestMismatch, op, f"the registry reports digest {digest}")
        return oci.Descriptor(media_type, digest, int(length))

    async def get_manifest(self, repository: str, reference: str) -> oci.Manifest:
        """Fetch a manifest or index by tag or digest, verifying its digest.

        Raises:
            ManifestUnknown: there is no such manifest.
            DigestMismatch: the body does not hash to the digest asked for or reported.
        """
        op = _Op("get manifest", repository, _check_reference(reference), "manifest")
        response = await self._send(
            op,
            "GET",
            self._url(repository, "manifests", reference),
            scopes=_pull(repository),
            headers={"Accept": _MANIFEST_ACCEPT},
        )
        if response.status_code != 200:
            raise await self._failure(op, response)
        raw = response.content
        for expected in (reference if _is_digest(reference) else None, response.headers.get("Docker-Content-Digest")):
            if expected:
                self._verify(op, raw, expected, "the manifest")
        try:
            return oci.parse_manifest(raw, _media_type(response))
        except oci.InvalidManifest as exc:
            raise self._fail(RegistryError, op, f"the registry served an unusable manifest: {exc}") from None

    def _verify(self, op: _Op, data: bytes, digest: str, what: str) -> None:
        algorithm = digest.split(":", 1)[0]
        try:
            actual = oci.digest_of(data, algorithm)
        except oci.InvalidDigest:
            raise self._fail(Unsupported, op, f"cannot verify a {algorithm} digest") from None
        if actual != digest:
            raise self._fail(DigestMismatch, op, f"{what} hashes to {actual}, not {digest}")

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store manifest bytes under a tag or their digest; returns their digest.

        The bytes go up unchanged. When the manifest has a ``subject`` and the registry
        does not answer ``OCI-Subject`` (no referrers API), the subject's referrers tag
        index is updated too.

        Raises:
            oci.InvalidManifest: ``raw`` is not a manifest of ``media_type``.
            DigestMismatch: ``reference`` is a digest of other bytes, or the registry
                reports another digest.
        """
        op = _Op("put manifest", repository, _check_reference(reference), "manifest")
        manifest = oci.parse_manifest(raw, media_type)
        if _is_digest(reference):
            self._verify(op, raw, reference, "the manifest")
        response = await self._send(
            op,
            "PUT",
            self._url(repository, "manifests", reference),
            scopes=_push(repository),
            headers={"Content-Type": media_type},
            content=raw,
        )
        if response.status_code not in (200, 201):
            raise await self._failure(op, response)
        reported = response.headers.get("Docker-Content-Digest")
        if reported and reported != manifest.digest and reported.split(":", 1)[0] == "sha256":
            raise self._fail(DigestMismatch, op, f"the registry stored it as {reported}, not {manifest.digest}")
        if manifest.subject is not None and "OCI-Subject" not in response.headers:
            await self._add_fallback_referrer(repository, manifest)
        return manifest.digest

    async def delete_manifest(self, repository: str, digest: str, *, subject: str | None = None) -> bool:
        """Delete a manifest by digest (and, on distribution, every tag pointing at it).

        Args:
            subject: The digest the manifest's ``subject`` names, if it has one: it is then
                also removed from the subject's referrers tag index, where one exists.

        Returns:
            True when deleted, False when there was no such manifest.

        Raises:
            Unsupported: the registry does not allow deletes.
        """
        op = _Op("delete manifest", repository, oci.validate_digest(digest), "manifest")
        response = await self._send(op, "DELETE", self._url(repository, "manifests", digest), scopes=_push(repository))
        if response.status_code == 404:
            deleted = False
        elif response.status_code in (200, 202, 204):
            deleted = True
        else:
            raise await self._failure(op, response)
        if subject is not None:
            await self._remove_fallback_referrer(repository, oci.validate_digest(subject), digest)
        return deleted

    async def blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob in the repository, or None when it has none."""
        op = _Op("head blob", repository, oci.validate_digest(digest), "blob")
        response = await self._send(
            op, "HEAD", self._url(repository, "blobs", digest), scopes=_pull(repository), follow=True
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise await self._failure(op, response)
        length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise self._fail(RegistryError, op, "the registry did not say the blob's size (no Content-Length)")
        return int(length)

    async def open_blob(self, repository: str, digest: str) -> AsyncGenerator[bytes, None]:
        """Stream a blob's bytes, following redirects to storage, and verify its digest at the end.

        Use it as ``async with contextlib.aclosing(client.open_blob(...)) as chunks``
        when the loop may stop early. The digest check raises `DigestMismatch` after
        the last chunk, so a consumer must not commit what it received before the loop ends.
        """
        op = _Op("get blob", repository, oci.validate_digest(digest), "blob")
        algorithm = digest.split(":", 1)[0]
        response = await self._send(
            op, "GET", self._url(repository, "blobs", digest), scopes=_pull(repository), stream=True, follow=True
        )
        try:
            if response.status_code != 200:
                raise await self._failure(op, response)
            hasher = hashlib.new(algorithm) if algorithm in ("sha256", "sha512") else None
            try:
                async for chunk in response.aiter_bytes():
                    self.stats.bytes_received += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    yield chunk
            except httpx.TransportError as exc:
                raise self._fail(Unreachable, op, f"the download broke off: {str(exc) or type(exc).__name__}") from None
            if hasher is not None and f"{algorithm}:{hasher.hexdigest()}" != digest:
                raise self._fail(DigestMismatch, op, f"the blob hashes to {algorithm}:{hasher.hexdigest()}")
        finally:
            await response.aclose()

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Link a blob of another repository on this registry into ``repository``, without moving it.

        Returns:
            True when mounted (201); False when the registry opened an upload instead
            (202: it cannot mount, or the source has no such blob). That session is cancelled.
        """
        op = _Op("mount blob", repository, oci.validate_digest(digest), "blob")
        oci.validate_repository(from_repository)
        response = await self._send(
            op,
            "POST",
            f"/v2/{oci.validate_repository(repository)}/blobs/uploads/",
            params={"mount": digest, "from": from_repository},
            scopes=(*_push(repository), *_pull(from_repository)),
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            location = response.headers.get("Location")
            if location:
                await self._cancel(op, response.url.join(location), repository)
            return False
        raise await self._failure(op, response)

    # -- uploads --------------------------------------------------------------------------------

    async def upload_blob(self, repository: str, digest: str, size: int, data: bytes | AsyncIterable[bytes]) -> None:
        """Upload a blob: in one PUT when it fits in a chunk, else in chunks (PATCH with Content-Range).

        Content in memory is checked against ``digest`` and ``size`` first and may be
        sent again from the start if the registry loses the session; a stream is hashed
        on the way and the upload is cancelled, not committed, if it does not match; it
        is closed (``aclose``) once read. A stream whose session the registry loses midway
        cannot be replayed: that raises.

        Raises:
            DigestMismatch: the content is not ``size`` bytes hashing to ``digest``.
        """
        op = _Op("upload blob", oci.validate_repository(repository), oci.validate_digest(digest), "blob")
        if isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
            self._check_content(op, payload, digest, size)
            await self._restartable(lambda: self._upload_bytes(op, repository, digest, payload))
            return
        chunks = _rechunk(data, self._chunk_size)
        try:
            first = await anext(chunks, b"")
            if len(first) < self._chunk_size:
                self._check_content(op, first, digest, size)
                await self._restartable(lambda: self._upload_bytes(op, repository, digest, first))
                return
            await self._upload_stream(op, repository, digest, size, first, chunks)
        except _SessionLost as lost:
            raise lost.error from None
        finally:
            close = getattr(data, "aclose", None)  # e.g. open_blob's generator: release its connection
            if close is not None:
                await close()

    def _check_content(self, op: _Op, payload: bytes, digest: str, size: int) -> None:
        if len(payload) != size:
            raise self._fail(DigestMismatch, op, f"the content has {len(payload)} bytes, not {size}")
        self._verify(op, payload, digest, "the content")

    async def _restartable(self, upload: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            try:
                await upload()
                return
            except _SessionLost as lost:
                if attempt >= self._retries:
                    raise lost.error from None
                _log.debug("upload session lost (%s); starting again", lost.error.message)
            await self._pause(attempt, None)
            attempt += 1

    async def _upload_bytes(self, op: _Op, repository: str, digest: str, payload: bytes) -> None:
        location = await self._start_upload(op, repository)
        if len(payload) <= self._chunk_size:
            await self._finish(op, repository, location, digest, len(payload), payload)
            return
        offset = 0
        for start in range(0, len(payload), self._chunk_size):
            location, offset = await self._patch(
                op, repository, location, payload[start : start + self._chunk_size], offset
            )
        await self._finish(op, repository, location, digest, offset)

    async def _upload_stream(
        self, op: _Op, repository: str, digest: str, size: int, first: bytes, rest: AsyncIterator[bytes]
    ) -> None:
        algorithm = digest.split(":", 1)[0]
        if algorithm not in ("sha256", "sha512"):
            raise self._fail(Unsupported, op, f"cannot verify a {algorithm} digest")
        hasher = hashlib.new(algorithm)
        location = await self._start_upload(op, repository)
        offset = 0
        chunk: bytes | None = first
        # The next chunk is read from the source while this one is sent: download and upload overlap.
        following: asyncio.Task[bytes | None] | None = None
        try:
            while chunk is not None:
                hasher.update(chunk)
                following = asyncio.ensure_future(anext(rest, None))
                location, offset = await self._patch(op, repository, location, chunk, offset)
                chunk = await following
                following = None
        except Exception as exc:
            if following is not None:
                following.cancel()
                with contextlib.suppress(BaseException):
                    await following
            if not isinstance(exc, _SessionLost):
                await self._cancel(op, location, repository)  # the source failed: leave nothing half done
            raise
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest or offset != size:
            await self._cancel(op, location, repository)
            raise self._fail(DigestMismatch, op, f"the stream gave {offset} bytes hashing to {actual}, expected {size}")
        await self._finish(op, repository, location, digest, size)

    def _location(self, op: _Op, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise self._fail(RegistryError, op, f"the registry answered {response.status_code} without a Location")
        return response.url.join(location)

    async def _start_upload(self, op: _Op, repository: str) -> httpx.URL:
        response = await self._send(op, "POST", f"/v2/{repository}/blobs/uploads/", scopes=_push(repository))
        if response.status_code != 202:
            raise await self._failure(op, response)
        return self._location(op, response)

    async def _upload_status(
        self, op: _Op, repository: str, location: httpx.URL, expected: int
    ) -> tuple[httpx.URL, int]:
        """Ask how much of an upload the registry holds (``GET`` on the session, 204 with Range)."""
        try:
            response = await self._send(op, "GET", location, scopes=_push(repository))
        except Unreachable as exc:
            raise _SessionLost(exc) from None
        if response.status_code not in (200, 204):
            raise _SessionLost(self._error(op, response))
        have = _received(response.headers.get("Range"), expected)
        if have is None:
            raise _SessionLost(
                self._fail(RegistryError, op, "the registry did not say how much of the upload it holds")
            )
        next_location = self._location(op, response) if response.headers.get("Location") else location
        return next_location, have

    async def _patch(
        self, op: _Op, repository: str, location: httpx.URL, chunk: bytes, offset: int
    ) -> tuple[httpx.URL, int]:
        """Send ``chunk`` at ``offset``; resume from what the registry holds after a 416 or lost reply."""
        end = offset + len(chunk)
        done = 0
        attempt = 0
        while True:
            start = offset + done
            headers = {"Content-Type": _OCTET_STREAM, "Content-Range": f"{start}-{end - 1}"}
            failure: RegistryError
            wait: float | None = None
            try:
                response = await self._send(
                    op, "PATCH", location, scopes=_push(repository), headers=headers, content=chunk[done:], retry=False
                )
            except Unreachable as exc:
                failure = exc
            else:
                if response.status_code == 202:
                    location = self._location(op, response)
                    have = _received(response.headers.get("Range"), end)
                    if have is None or have == end:
                        return location, end
                    failure = self._fail(RegistryError, op, f"the registry holds {have} bytes, not {end}")
                elif response.status_code == 416 or response.status_code in _RETRY_STATUSES:
                    failure = self._error(op, response)
                    wait = _retry_after(response)
                else:
                    raise _SessionLost(self._error(op, response))
            if attempt >= self._retries:
                raise _SessionLost(failure)
            if failure.status != 416:
                await self._pause(attempt, wait)
            attempt += 1
            location, have = await self._upload_status(op, repository, location, end)
            if not offset <= have <= end:
                raise _SessionLost(
                    self._fail(
                        RegistryError, op, f"the registry holds {have} bytes, outside this chunk ({offset}-{end})"
                    )
                )
            if have == end:
                return location, end
            done = have - offset

    async def _finish(
        self, op: _Op, repository: str, location: httpx.URL, digest: str, size: int, content: bytes = b""
    ) -> None:
        """Close an upload with ``PUT ?digest=`` (carrying the blob when it is monolithic)."""
        url = location.copy_merge_params({"digest": digest})
        headers = {"Content-Type": _OCTET_STREAM}
        try:
            response = await self._send(
                op, "PUT", url, scopes=_push(repository), headers=headers, content=content, retry=False
            )
        except Unreachable as exc:
            if await self.blob_size(repository, digest) == size:  # it landed; only the reply was lost
                return
            raise _SessionLost(exc) from None
        if response.status_code in (201, 204):
            reported = response.headers.get("Docker-Content-Digest")
            if reported and reported != digest:
                raise self._fail(DigestMismatch, op, f"the registry stored it as {reported}")
            return
        error = self._error(op, response)
        if response.status_code in _RETRY_STATUSES or error.code in ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"):
            if await self.blob_size(repository, digest) == size:
                return
            raise _SessionLost(error)
        raise error

    async def _cancel(self, op: _Op, location: httpx.URL, repository: str) -> None:
        """Cancel an upload session; failing to is harmless (sessions expire)."""
        try:
            response = await self._send(op, "DELETE", location, scopes=_push(repository), retry=False)
        except RegistryError:
            return
        _log.debug("cancelled upload %s: %s", location.path, response.status_code)

    # -- listing --------------------------------------------------------------------------------

    async def _pages(
        self, op: _Op, url: str, params: Mapping[str, str | int] | None, scopes: tuple[str, ...]
    ) -> AsyncGenerator[httpx.Response, None]:
        """Each page (a 200 response) of a paginated listing, following ``Link: rel="next"``."""
        target: str | httpx.URL | None = url
        seen: set[str] = set()
        while target is not None:
            response = await self._send(op, "GET", target, scopes=scopes, params=params)
            if response.status_code != 200:
                raise await self._failure(op, response)
            yield response
            params = None  # the next link carries its own query
            seen.add(str(response.url))
            target = _next_link(response)
            if target is not None and str(target) in seen:
                raise self._fail(RegistryError, op, f"the listing loops back to {target}")

    async def _listing(self, op: _Op, url: str, key: str, page_size: int | None, scopes: tuple[str, ...]) -> list[str]:
        names: list[str] = []
        params = None if page_size is None else {"n": page_size}
        async for response in self._pages(op, url, params, scopes):
            try:
                body: object = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise self._fail(RegistryError, op, "the registry answered something that is not a JSON object")
            values = body.get(key) or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise self._fail(RegistryError, op, f"{key} is not a list of strings")
            names.extend(str(v) for v in values)
        return sorted(names)  # the spec's lexical order; distribution 2.8 lists tags in storage order

    async def tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of a repository, sorted; fetched page by page (``n``) when ``page_size`` is given.

        Raises:
            NameUnknown: the repository does not exist.
        """
        op = _Op("list tags of", repository)
        url = f"/v2/{oci.validate_repository(repository)}/tags/list"
        return await self._listing(op, url, "tags", page_size, _pull(repository))

    async def catalog(self, page_size: int | None = None) -> list[str]:
        """Every repository of the registry (``GET /v2/_catalog``), sorted; page by page with ``page_size``."""
        return await self._listing(
            _Op("list repositories of"), "/v2/_catalog", "repositories", page_size, ("registry:catalog:*",)
        )

    # -- referrers ------------------------------------------------------------------------------

    async def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> list[oci.Descriptor]:
        """The manifests whose ``subject`` is ``digest`` (signatures, SBOMs, attestations).

        Uses the referrers API; where the registry answers 400/404/405/406 or something
        that is not an index (no API, e.g. distribution 2.8), reads the referrers tag schema.
        """
        op = _Op("list referrers of", repository, oci.validate_digest(digest))
        url = self._url(repository, "referrers", digest)
        params = {"artifactType": artifact_type} if artifact_type else None
        found: list[oci.Descriptor] = []
        filtered = True
        supported = True
        pages = self._pages(op, url, params, _pull(repository))
        try:
            async with contextlib.aclosing(pages):
                async for response in pages:
                    if _media_type(response) != oci.OCI_INDEX:
                        if found:
                            raise self._fail(RegistryError, op, f"a page of referrers is {_media_type(response)!r}")
                        supported = False
                        break
                    try:
                        index = oci.parse_manifest(response.content, oci.OCI_INDEX)
                    except oci.InvalidManifest as exc:
                        raise self._fail(RegistryError, op, f"the referrers list is not an index: {exc}") from None
                    found.extend(index.manifests)
                    applied = [f.strip() for f in response.headers.get("OCI-Filters-Applied", "").split(",")]
                    filtered = filtered and "artifactType" in applied
        except RegistryError as exc:
            if found or exc.status not in (400, 404, 405, 406):
                raise
            supported = False
        if not supported:
            return await self._fallback_referrers(repository, digest, artifact_type)
        if artifact_type and not filtered:
            found = [d for d in found if d.artifact_type == artifact_type]
        return found

    async def _fallback_index(self, repository: str, subject: str) -> oci.Manifest | None:
        try:
            index = await self.get_manifest(repository, oci.referrers_tag(subject))
        except NotFound:
            return None
        return index if index.is_index else None

    async def _fallback_referrers(
        self, repository: str, digest: str, artifact_type: str | None
    ) -> list[oci.Descriptor]:
        index = await self._fallback_index(repository, digest)
        if index is None:
            return []
        return [d for d in index.manifests if artifact_type is None or d.artifact_type == artifact_type]

    async def _add_fallback_referrer(self, repository: str, manifest: oci.Manifest) -> None:
        """Add ``manifest`` to its subject's referrers tag index (read, extend, put back)."""
        assert manifest.subject is not None
        subject = manifest.subject.digest
        index = await self._fallback_index(repository, subject)
        listed = list(index.manifests) if index is not None else []
        if any(d.digest == manifest.digest for d in listed):
            return
        raw = oci.index_bytes([*listed, oci.as_referrer(manifest)])
        await self.put_manifest(repository, oci.referrers_tag(subject), raw, oci.OCI_INDEX)

    async def _remove_fallback_referrer(self, repository: str, subject: str, digest: str) -> None:
        index = await self._fallback_index(repository, subject)
        if index is None or all(d.digest != digest for d in index.manifests):
            return
        rest = [d for d in index.manifests if d.digest != digest]
        if rest:
            await self.put_manifest(repository, oci.referrers_tag(subject), oci.index_bytes(rest), oci.OCI_INDEX)
        else:
            await self.delete_manifest(repository, index.digest)
