"""An in-memory OCI registry for unit tests: `FakeRegistry`.

It is an httpx transport, so unit tests run the real `RegistryClient` (auth, retries,
pagination, uploads) against it with no process and no socket. It keeps manifests,
tags and blobs in dictionaries and answers the distribution API the way the spec and
distribution 2.8 do where funade depends on it: blob links per repository (a mount
needs the blob in the source repository), manifest PUTs refused when a referenced blob
or child is missing, chunked uploads with ``Content-Range`` and 416 out of order,
``n``/``last`` pagination with ``Link`` headers, deleting a manifest untags it.

Knobs a test can turn, before or between requests: an auth mode (Basic, or Bearer
with a token service served by the same transport), the referrers API (off answers 404
like distribution 2.8), mounting, blob redirects to a storage host, absolute ``Link``
URLs, and faults (the next N requests to a path answer 429/503 or lose the
connection). Every request is logged as an `Exchange`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import httpx

from funade.core import oci

__all__ = ["STORAGE_HOST", "Exchange", "FakeRegistry"]

#: Where blob GETs are redirected when ``blob_redirect`` is on (like S3 behind a registry).
STORAGE_HOST = "storage.test"

_Headers = dict[str, str]


@dataclass(frozen=True)
class Exchange:
    """One request the fake answered (or dropped): what was asked and the status given (0: dropped)."""

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    status: int
    body_size: int = 0

    @property
    def params(self) -> dict[str, str]:
        """The query as a dict (the last of repeated parameters wins)."""
        return dict(self.query)


@dataclass
class _Repository:
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (media type, raw)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)


@dataclass
class _Upload:
    repository: str
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    method: str | None
    remaining: int
    status: int | None  # None: drop the connection
    retry_after: str | None = None
    code: str | None = None
    after: bool = False  # drop the reply after doing the work


@dataclass(frozen=True)
class _Need:
    """What a request needs from a bearer token: (resource, action) pairs, and the challenge scope."""

    grants: frozenset[tuple[str, str]]
    scope: str


def _error(status: int, code: str, message: str, headers: _Headers | None = None) -> httpx.Response:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})}, content=body)


def _json(status: int, value: object, headers: _Headers | None = None) -> httpx.Response:
    content = json.dumps(value).encode()
    return httpx.Response(status, headers={"Content-Type": "application/json", **(headers or {})}, content=content)


def _range(size: int) -> str:
    # Distribution's way: "0-<last byte>", and "0-0" for an empty upload as well.
    return f"0-{max(size - 1, 0)}"


def _parse_scope(scope: str) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    for item in scope.split():
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        grants.update((f"{kind}:{name}", action) for action in actions.split(",") if action)
    return grants


class FakeRegistry(httpx.AsyncBaseTransport):
    """An OCI registry in memory, served as an httpx transport.

    Args:
        host: The registry's host name (the realm and Locations use it).
        auth: ``"none"``, ``"basic"`` or ``"bearer"``.
        users: username → password, for Basic and for the token service.
        identity_tokens: refresh tokens the token service accepts (OAuth2 POST).
        anonymous_pull: In bearer mode, give anonymous callers pull tokens.
        token_lifetime: ``expires_in`` of the tokens handed out.
        referrers_api: Serve ``/referrers/``; off, it answers 404 as distribution 2.8 does.
        mount: Honour cross-repository mounts; off, a mount opens an upload (202).
        blob_redirect: Answer blob GETs with a 307 to `STORAGE_HOST`, which refuses
            requests carrying an Authorization header.
        absolute_links: Write ``Link`` headers with absolute URLs.
        page_size: Paginate the referrers API and listings without ``n`` by this many.
    """

    def __init__(
        self,
        host: str = "registry.test",
        *,
        auth: str = "none",
        users: Mapping[str, str] | None = None,
        identity_tokens: Sequence[str] = (),
        anonymous_pull: bool = False,
        token_lifetime: int = 300,
        referrers_api: bool = True,
        mount: bool = True,
        blob_redirect: bool = False,
        absolute_links: bool = False,
        page_size: int | None = None,
    ) -> None:
        if auth not in ("none", "basic", "bearer"):
            raise ValueError(f"auth must be none, basic or bearer, not {auth!r}")
        self.host = host
        self.auth = auth
        self.users = dict(users or {})
        self.identity_tokens = set(identity_tokens)
        self.anonymous_pull = anonymous_pull
        self.token_lifetime = token_lifetime
        self.referrers_api = referrers_api
        self.mount = mount
        self.blob_redirect = blob_redirect
        self.absolute_links = absolute_links
        self.page_size = page_size
        self.log: list[Exchange] = []
        self._repositories: dict[str, _Repository] = {}
        self._blobs: dict[str, bytes] = {}
        self._uploads: dict[str, _Upload] = {}
        self._tokens: dict[str, frozenset[tuple[str, str]]] = {}
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)

    # -- test hooks -----------------------------------------------------------------------------

    def fail(
        self,
        pattern: str,
        status: int = 503,
        *,
        times: int = 1,
        method: str | None = None,
        retry_after: float | str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path matches ``pattern`` (a regex) with ``status``."""
        after = (
            None
            if retry_after is None
            else (f"{retry_after:g}" if isinstance(retry_after, float | int) else retry_after)
        )
        self._faults.append(_Fault(re.compile(pattern), method, times, status, after, code))

    def disconnect(self, pattern: str, *, times: int = 1, method: str | None = None, after: bool = False) -> None:
        """Drop the connection of the next ``times`` matching requests; with ``after``, once the work is done."""
        self._faults.append(_Fault(re.compile(pattern), method, times, None, after=after))

    def expire_tokens(self) -> None:
        """Forget every bearer token handed out (the next request gets a 401 and a new challenge)."""
        self._tokens.clear()

    def tamper(self, digest: str, data: bytes) -> None:
        """Serve ``data`` for the blob or manifest stored under ``digest`` (to test digest checks)."""
        if digest in self._blobs:
            self._blobs[digest] = data
        for repo in self._repositories.values():
            if digest in repo.manifests:
                repo.manifests[digest] = (repo.manifests[digest][0], data)

    def exchanges(self, pattern: str | None = None, method: str | None = None) -> list[Exchange]:
        """The logged requests whose path matches ``pattern`` and whose method is ``method``."""
        regex = re.compile(pattern) if pattern is not None else None
        return [
            e for e in self.log if (regex is None or regex.search(e.path)) and (method is None or e.method == method)
        ]

    @property
    def open_uploads(self) -> int:
        """Upload sessions started and neither completed nor cancelled."""
        return len(self._uploads)

    # -- seeding and inspection -----------------------------------------------------------------

    def _repo(self, name: str) -> _Repository:
        return self._repositories.setdefault(oci.validate_repository(name), _Repository())

    def put_blob(self, repository: str, data: bytes, media_type: str = oci.OCI_LAYER) -> oci.Descriptor:
        """Store a blob in a repository; returns its descriptor."""
        digest = oci.digest_of(data)
        self._blobs[digest] = data
        self._repo(repository).blobs.add(digest)
        return oci.Descriptor(media_type, digest, len(data))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store a manifest as a PUT would (its blobs and children must be there); returns its digest."""
        response = self._store_manifest(repository, reference, raw, media_type)
        if response.status_code != 201:
            raise ValueError(f"cannot store the manifest: {response.content.decode()}")
        return oci.digest_of(raw)

    def put_image(
        self,
        repository: str,
        tag: str | None,
        layers: Sequence[bytes] = (),
        *,
        docker: bool = False,
        platform: str = "linux/amd64",
        artifact_type: str | None = None,
        subject: oci.Descriptor | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> oci.Manifest:
        """Store an image: its layers, a config and a manifest (OCI, or Docker v2 with ``docker``).

        With ``artifact_type`` the config is the empty descriptor (an OCI artifact, e.g. a
        signature, usually with a ``subject``).
        """
        layer_type = oci.DOCKER_LAYER if docker else oci.OCI_LAYER
        layer_descriptors = [self.put_blob(repository, data, layer_type) for data in layers]
        if artifact_type is not None:
            config = self.put_blob(repository, oci.EMPTY_JSON, oci.OCI_EMPTY)
        else:
            os_name, _, arch = platform.partition("/")
            arch, _, variant = arch.partition("/")
            image_config: dict[str, object] = {
                "architecture": arch,
                "os": os_name,
                "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layer_descriptors]},
                "config": {},
            }
            if variant:
                image_config["variant"] = variant
            raw_config = json.dumps(image_config, sort_keys=True).encode()
            config = self.put_blob(repository, raw_config, oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG)
        media_type = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
        body: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type}
        if artifact_type is not None:
            body["artifactType"] = artifact_type
        body["config"] = config.to_json()
        body["layers"] = [d.to_json() for d in layer_descriptors]
        if subject is not None:
            body["subject"] = subject.to_json()
        if annotations:
            body["annotations"] = dict(annotations)
        raw = json.dumps(body, indent=2).encode()  # indented on purpose: copies must keep these bytes
        self.put_manifest(repository, tag or oci.digest_of(raw), raw, media_type)
        return oci.parse_manifest(raw, media_type)

    def put_index(
        self,
        repository: str,
        tag: str | None,
        manifests: Sequence[oci.Manifest | oci.Descriptor],
        *,
        docker: bool = False,
        annotations: Mapping[str, str] | None = None,
    ) -> oci.Manifest:
        """Store an index (or a Docker manifest list) of manifests already in the repository.

        A `Manifest` gets its platform from its config's ``os``/``architecture``.
        """
        children = [m if isinstance(m, oci.Descriptor) else self._child(repository, m) for m in manifests]
        media_type = oci.DOCKER_MANIFEST_LIST if docker else oci.OCI_INDEX
        body: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [c.to_json() for c in children],
        }
        if annotations:
            body["annotations"] = dict(annotations)
        raw = json.dumps(body, indent=3).encode()
        self.put_manifest(repository, tag or oci.digest_of(raw), raw, media_type)
        return oci.parse_manifest(raw, media_type)

    def _child(self, repository: str, manifest: oci.Manifest) -> oci.Descriptor:
        descriptor = manifest.descriptor()
        if manifest.config is None:
            return descriptor
        try:
            config = json.loads(self._blobs.get(manifest.config.digest, b"{}"))
        except ValueError:
            return descriptor
        if isinstance(config, dict) and config.get("os") and config.get("architecture"):
            platform = oci.Platform(str(config["os"]), str(config["architecture"]), config.get("variant"))
            return replace(descriptor, platform=platform)
        return descriptor

    def manifest(self, repository: str, reference: str) -> bytes | None:
        """The manifest bytes under a tag or digest, or None."""
        repo = self._repositories.get(repository)
        if repo is None:
            return None
        digest = repo.tags.get(reference, reference)
        found = repo.manifests.get(digest)
        return None if found is None else found[1]

    def blob(self, repository: str, digest: str) -> bytes | None:
        """A blob's bytes when linked into the repository, or None."""
        repo = self._repositories.get(repository)
        return self._blobs.get(digest) if repo is not None and digest in repo.blobs else None

    def tag_names(self, repository: str) -> list[str]:
        repo = self._repositories.get(repository)
        return sorted(repo.tags) if repo is not None else []

    # -- the transport --------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = urllib.parse.unquote(request.url.path)
        params = dict(request.url.params.multi_items())
        fault = self._fault(request.method, path)
        if fault is not None and fault.status is not None:
            response = self._faulty(fault)
        elif fault is not None and not fault.after:
            self._record(request, path, 0, len(body))
            raise httpx.ConnectError("connection refused (injected)", request=request)
        else:
            response = self._route(request, path, params, body)
        if fault is not None and fault.after:
            self._record(request, path, 0, len(body))
            raise httpx.ReadError("connection reset after the request was handled (injected)", request=request)
        self._record(request, path, response.status_code, len(body))
        if request.method == "HEAD":  # headers only, as on the wire
            return httpx.Response(response.status_code, headers=response.headers)
        return response

    def _record(self, request: httpx.Request, path: str, status: int, size: int) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = tuple(request.url.params.multi_items())
        self.log.append(Exchange(request.method, request.url.host, path, query, headers, status, size))

    def _fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and (fault.method in (None, method)) and fault.pattern.search(path):
                fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _faulty(fault: _Fault) -> httpx.Response:
        assert fault.status is not None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        codes = {429: "TOOMANYREQUESTS", 401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED"}
        code = fault.code or codes.get(fault.status, "UNAVAILABLE")
        return _error(fault.status, code, "injected failure", headers)

    def _link(self, path: str, query: Mapping[str, str | int]) -> str:
        target = f"{path}?{urllib.parse.urlencode(query)}"
        if self.absolute_links:
            target = f"https://{self.host}{target}"
        return f'<{target}>; rel="next"'

    _ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
        ("ping", re.compile(r"^/v2/?$")),
        ("catalog", re.compile(r"^/v2/_catalog$")),
        ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
        ("manifest", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")),
        ("uploads", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")),
        ("upload", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$")),
        ("blob", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$")),
        ("referrers", re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")),
        ("token", re.compile(r"^/token$")),
    )

    def _route(self, request: httpx.Request, path: str, params: dict[str, str], body: bytes) -> httpx.Response:
        if request.url.host == STORAGE_HOST:
            return self._storage(request, path)
        for route, pattern in self._ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            groups = match.groupdict()
            if route == "token":
                return self._token(request, params, body)
            if route == "referrers" and not self.referrers_api:
                return httpx.Response(404, headers={"Content-Type": "text/plain"}, content=b"404 page not found\n")
            name = groups.get("name", "")
            if name:
                try:
                    oci.validate_repository(name)
                except oci.InvalidReference:
                    return _error(400, "NAME_INVALID", f"invalid repository name {name!r}")
            denied = self._authorize(request, self._need(route, request.method, name, params))
            if denied is not None:
                return denied
            return self._dispatch(route, request, groups, params, body)
        return httpx.Response(404, headers={"Content-Type": "text/plain"}, content=b"404 page not found\n")

    def _dispatch(
        self, route: str, request: httpx.Request, groups: dict[str, str], params: dict[str, str], body: bytes
    ) -> httpx.Response:
        method = request.method
        name = groups.get("name", "")
        if route == "ping" and method in ("GET", "HEAD"):
            return _json(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
        if route == "catalog" and method == "GET":
            return self._catalog(params)
        if route == "tags" and method == "GET":
            return self._tags(name, params)
        if route == "manifest":
            return self._manifest(request, name, groups["ref"], body)
        if route == "uploads" and method == "POST":
            return self._start_upload(name, params, body)
        if route == "upload":
            return self._upload(request, name, groups["id"], params, body)
        if route == "blob":
            return self._blob(method, name, groups["digest"])
        if route == "referrers" and method == "GET":
            return self._referrers(name, groups["digest"], params)
        return _error(405, "UNSUPPORTED", f"{method} is not allowed here")

    # -- auth -----------------------------------------------------------------------------------

    @staticmethod
    def _need(route: str, method: str, name: str, params: Mapping[str, str]) -> _Need:
        if route == "ping":
            return _Need(frozenset(), "")
        if route == "catalog":
            return _Need(frozenset({("registry:catalog", "*")}), "registry:catalog:*")
        resource = f"repository:{name}"
        actions: tuple[str, ...]
        if method in ("GET", "HEAD") and route != "upload":
            actions = ("pull",)
        elif method == "DELETE" and route in ("manifest", "blob"):
            actions = ("delete",)
        else:
            actions = ("pull", "push")
        grants = {(resource, a) for a in actions}
        scope = f"{resource}:{','.join(actions)}"
        source = params.get("from")
        if route == "uploads" and params.get("mount") and source:
            grants.add((f"repository:{source}", "pull"))
            scope += f" repository:{source}:pull"
        return _Need(frozenset(grants), scope)

    def _authorize(self, request: httpx.Request, need: _Need) -> httpx.Response | None:
        if self.auth == "none":
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if self.auth == "basic":
            if scheme.lower() == "basic" and self._basic_user(value) is not None:
                return None
            return _error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": 'Basic realm="fake"'})
        granted = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if granted is not None and need.grants <= granted:
            return None
        challenge = f'Bearer realm="https://{self.host}/token",service="{self.host}"'
        if need.scope:
            challenge += f',scope="{need.scope}"'
        if granted is not None:
            challenge += ',error="insufficient_scope"'
        return _error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    def _basic_user(self, value: str) -> str | None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if user in self.users and self.users[user] == password else None

    def _token(self, request: httpx.Request, params: Mapping[str, str], body: bytes) -> httpx.Response:
        if request.method == "POST":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            ok = (form.get("grant_type") == "refresh_token" and form.get("refresh_token") in self.identity_tokens) or (
                form.get("grant_type") == "password"
                and self.users.get(form.get("username", "")) == form.get("password")
            )
            if not ok:
                return _error(401, "UNAUTHORIZED", "invalid grant")
            scopes = form.get("scope", "")
            return self._issue(_parse_scope(scopes), access_only=True)
        requested = _parse_scope(" ".join(v for k, v in request.url.params.multi_items() if k == "scope"))
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            if self._basic_user(value) is None:
                return _error(401, "UNAUTHORIZED", "invalid username or password")
            return self._issue(requested)
        if not self.anonymous_pull:
            return _error(401, "UNAUTHORIZED", "authentication required")
        return self._issue({g for g in requested if g[1] == "pull"})

    def _issue(self, grants: set[tuple[str, str]], access_only: bool = False) -> httpx.Response:
        token = f"token-{next(self._ids)}"
        self._tokens[token] = frozenset(grants)
        answer: dict[str, object] = {"access_token": token, "expires_in": self.token_lifetime}
        if not access_only:
            answer["token"] = token
        return _json(200, answer)

    # -- listings -------------------------------------------------------------------------------

    def _page(self, path: str, names: list[str], params: Mapping[str, str]) -> tuple[list[str], _Headers]:
        last = params.get("last")
        if last is not None:
            names = [n for n in names if n > last]
        size = int(params["n"]) if params.get("n", "").isdigit() else self.page_size
        if size is None:
            return names, {}
        page = names[:size]
        if len(names) > size and page:
            return page, {"Link": self._link(path, {"n": size, "last": page[-1]})}
        return page, {}

    def _catalog(self, params: Mapping[str, str]) -> httpx.Response:
        names = sorted(n for n, r in self._repositories.items() if r.manifests or r.blobs)
        page, headers = self._page("/v2/_catalog", names, params)
        return _json(200, {"repositories": page}, headers)

    def _tags(self, name: str, params: Mapping[str, str]) -> httpx.Response:
        repo = self._repositories.get(name)
        if repo is None:
            return _error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
        page, headers = self._page(f"/v2/{name}/tags/list", sorted(repo.tags), params)
        return _json(200, {"name": name, "tags": page}, headers)

    def _referrers(self, name: str, digest: str, params: Mapping[str, str]) -> httpx.Response:
        repo = self._repositories.get(name, _Repository())
        found: list[oci.Descriptor] = []
        for media_type, raw in repo.manifests.values():
            manifest = oci.parse_manifest(raw, media_type)
            if manifest.subject is not None and manifest.subject.digest == digest:
                found.append(oci.as_referrer(manifest))
        headers = {"Content-Type": oci.OCI_INDEX}
        wanted = params.get("artifactType")
        if wanted:
            found = [d for d in found if d.artifact_type == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        found.sort(key=lambda d: d.digest)
        last = params.get("last")
        if last:
            found = [d for d in found if d.digest > last]
        if self.page_size is not None and len(found) > self.page_size:
            found = found[: self.page_size]
            query: dict[str, str | int] = {"last": found[-1].digest}
            if wanted:
                query["artifactType"] = wanted
            headers["Link"] = self._link(f"/v2/{name}/referrers/{digest}", query)
        return httpx.Response(200, headers=headers, content=oci.index_bytes(found))

    # -- manifests ------------------------------------------------------------------------------

    def _manifest(self, request: httpx.Request, name: str, ref: str, body: bytes) -> httpx.Response:
        method = request.method
        if method == "PUT":
            return self._store_manifest(name, ref, body, request.headers.get("Content-Type", ""))
        repo = self._repositories.get(name)
        if repo is None:
            return _error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
        if method == "DELETE":
            if ":" not in ref:
                return _error(405, "UNSUPPORTED", "deleting a tag is not supported: delete the manifest by digest")
            if ref not in repo.manifests:
                return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
            del repo.manifests[ref]
            repo.tags = {t: d for t, d in repo.tags.items() if d != ref}
            return httpx.Response(202)
        if method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", f"{method} is not allowed on manifests")
        digest = repo.tags.get(ref, ref)
        found = repo.manifests.get(digest)
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
        media_type, raw = found
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest, "Content-Length": str(len(raw))}
        return httpx.Response(200, headers=headers, content=b"" if method == "HEAD" else raw)

    def _store_manifest(self, name: str, ref: str, raw: bytes, media_type: str) -> httpx.Response:
        try:
            manifest = oci.parse_manifest(raw, media_type)
        except oci.InvalidManifest as exc:
            return _error(400, "MANIFEST_INVALID", str(exc))
        is_digest = ":" in ref
        if is_digest and ref != manifest.digest:
            return _error(400, "DIGEST_INVALID", f"the manifest's digest is {manifest.digest}, not {ref}")
        if not is_digest:
            try:
                oci.validate_tag(ref)
            except oci.InvalidReference as exc:
                return _error(400, "TAG_INVALID", str(exc))
        repo = self._repositories.get(name, _Repository())
        for blob in oci.blobs_of(manifest):
            if blob.digest not in repo.blobs:
                return _error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {blob.digest}")
        for child in oci.children_of(manifest):
            if child.digest not in repo.manifests:
                return _error(400, "MANIFEST_BLOB_UNKNOWN", f"manifest unknown to registry: {child.digest}")
        self._repositories[name] = repo
        repo.manifests[manifest.digest] = (manifest.media_type, raw)
        if not is_digest:
            repo.tags[ref] = manifest.digest
        headers = {"Location": f"/v2/{name}/manifests/{manifest.digest}", "Docker-Content-Digest": manifest.digest}
        if manifest.subject is not None and self.referrers_api:
            headers["OCI-Subject"] = manifest.subject.digest
        return httpx.Response(201, headers=headers)

    # -- blobs and uploads ----------------------------------------------------------------------

    def _blob(self, method: str, name: str, digest: str) -> httpx.Response:
        repo = self._repositories.get(name)
        if repo is None or digest not in repo.blobs:
            return _error(404, "BLOB_UNKNOWN", f"blob unknown to registry: {digest}")
        if method == "DELETE":
            repo.blobs.discard(digest)
            return httpx.Response(202)
        data = self._blobs[digest]
        if method == "GET" and self.blob_redirect:
            return httpx.Response(307, headers={"Location": f"https://{STORAGE_HOST}/blobs/{digest}"})
        headers = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "Content-Length": str(len(data)),
        }
        return httpx.Response(200, headers=headers, content=b"" if method == "HEAD" else data)

    def _storage(self, request: httpx.Request, path: str) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(400, content=b"only one auth mechanism allowed")
        data = self._blobs.get(path.rpartition("/")[2])
        if data is None:
            return httpx.Response(404, content=b"no such key")
        return httpx.Response(200, headers={"Content-Type": "application/octet-stream"}, content=data)

    def _upload_headers(self, name: str, upload_id: str, size: int) -> _Headers:
        return {
            "Location": f"/v2/{name}/blobs/uploads/{upload_id}?_state={upload_id}-{size}",
            "Range": _range(size),
            "Docker-Upload-UUID": upload_id,
        }

    def _start_upload(self, name: str, params: Mapping[str, str], body: bytes) -> httpx.Response:
        mount, source = params.get("mount"), params.get("from")
        if mount and source and self.mount:
            source_repo = self._repositories.get(source)
            if source_repo is not None and mount in source_repo.blobs:
                self._repo(name).blobs.add(mount)
                headers = {"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount}
                return httpx.Response(201, headers=headers)
        digest = params.get("digest")
        if digest:  # a monolithic upload in the POST itself
            if oci.digest_of(body) != digest:
                return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            self._blobs[digest] = body
            self._repo(name).blobs.add(digest)
            headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
            return httpx.Response(201, headers=headers)
        upload_id = f"upload-{next(self._ids)}"
        self._uploads[upload_id] = _Upload(name)
        return httpx.Response(202, headers=self._upload_headers(name, upload_id, 0))

    def _upload(
        self, request: httpx.Request, name: str, upload_id: str, params: Mapping[str, str], body: bytes
    ) -> httpx.Response:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.repository != name:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        method = request.method
        if method == "DELETE":
            del self._uploads[upload_id]
            return httpx.Response(204)
        if method == "GET":
            return httpx.Response(204, headers=self._upload_headers(name, upload_id, len(upload.data)))
        content_range = request.headers.get("Content-Range")
        if content_range and body:
            match = re.fullmatch(r"(?:bytes )?(\d+)-(\d+)", content_range.strip())
            if match is None:
                return _error(400, "BLOB_UPLOAD_INVALID", f"invalid Content-Range {content_range!r}")
            start, end = int(match.group(1)), int(match.group(2))
            if start != len(upload.data):
                headers = self._upload_headers(name, upload_id, len(upload.data))
                return _error(416, "BLOB_UPLOAD_INVALID", "requested range not satisfiable", headers)
            if end - start + 1 != len(body):
                return _error(400, "SIZE_INVALID", "the Content-Range does not match the body")
        if method == "PATCH":
            upload.data += body
            return httpx.Response(202, headers=self._upload_headers(name, upload_id, len(upload.data)))
        if method != "PUT":
            return _error(405, "UNSUPPORTED", f"{method} is not allowed on uploads")
        upload.data += body
        digest = params.get("digest", "")
        data = bytes(upload.data)
        if oci.digest_of(data) != digest:
            del self._uploads[upload_id]
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        del self._uploads[upload_id]
        self._blobs[digest] = data
        self._repo(name).blobs.add(digest)
        headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        return httpx.Response(201, headers=headers)
