"""Async client for the Docker Engine API: how funade runs containers locally.

The local target's controllers are asyncio loops that must follow logs and the
event stream without threads and reason about typed state, so this is a small
client written on httpx rather than docker-py. It speaks to the Engine's unix
socket (or ``DOCKER_HOST``), negotiates the API version once, maps HTTP
failures to the exceptions in ``_errors``, and returns the frozen values of
``_models``; no untyped JSON leaves this package.

One instance belongs to one event loop (httpx connection pools do). Streaming
methods (`DockerClient.logs`, `DockerClient.events`) are async generators:
wrap them in ``contextlib.aclosing`` to release the connection promptly when
stopping early.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Self

import httpx

from ._errors import Conflict, DockerError, DockerUnavailable, ImagePullError, ImagePushError, NotFound
from ._models import (
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
from ._stream import Demultiplexer, LineAssembler, stream_name
from ._wire import (
    JsonObject,
    as_object,
    container_create_body,
    encode_filters,
    error_message,
    format_since,
    get_int,
    get_obj,
    get_str,
    label_filters,
    parse_container_info,
    parse_container_stats,
    parse_container_summary,
    parse_event,
    parse_image_info,
    parse_network_info,
    parse_volume_info,
    split_image_ref,
)

__all__ = [
    "DEFAULT_SOCKET",
    "MAX_API_VERSION",
    "DockerClient",
    "negotiate_api_version",
]

DEFAULT_SOCKET = "/var/run/docker.sock"
#: Newest API version funade is written against; older Engines are spoken to in theirs.
MAX_API_VERSION = "1.43"
DEFAULT_TIMEOUT_S = 30.0
_EXPORT_CHUNK = 1 << 20

_Params = list[tuple[str, str]]


def negotiate_api_version(server: str, maximum: str = MAX_API_VERSION) -> str:
    """The API version to use: the lower of the server's and ours."""
    try:
        return min(server, maximum, key=_version_key)
    except ValueError:
        return maximum


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _resolve_host(host: str | None) -> tuple[str, str | None, str]:
    """``(base URL, unix socket path or None, where to tell users we looked)``."""
    spec = host or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if spec.startswith("unix://"):
        path = spec.removeprefix("unix://") or DEFAULT_SOCKET
        return "http://docker", path, path
    if spec.startswith("/"):
        return "http://docker", spec, spec
    if spec.startswith(("tcp://", "http://")):
        address = spec.split("://", 1)[1].rstrip("/")
        return f"http://{address}", None, address
    raise ValueError(f"unsupported Docker host {spec!r}: use unix:///path/to/docker.sock or tcp://host:port")


def _params(**values: str | int | bool | None) -> _Params:
    """Query parameters without the unset ones, booleans spelled the Engine's way."""
    params: _Params = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params.append((key, "1" if value else "0"))
        else:
            params.append((key, str(value)))
    return params


def _segment(name: str) -> str:
    """Quote an ID or name for use as one path segment."""
    return urllib.parse.quote(name, safe=":@")


def _image_path(ref: str) -> str:
    """Quote an image reference; the Engine routes ``/images/{name:.*}``, so ``/`` stays."""
    return urllib.parse.quote(ref, safe="/:@")


def _error_for(status: int, message: str) -> DockerError:
    if status == 404:
        return NotFound(status, message)
    if status == 409:
        return Conflict(status, message)
    return DockerError(status, message)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _stream_error(message: JsonObject) -> str | None:
    """The failure a JSON progress stream reports in-band, if this message is one."""
    return get_str(message, "error") or get_str(get_obj(message, "errorDetail"), "message") or None


def _progress_text(message: JsonObject) -> str:
    layer = get_str(message, "id")
    parts = (f"{layer}:" if layer else "", get_str(message, "status"), get_str(message, "progress"))
    return " ".join(part for part in parts if part)


async def _json_lines(response: httpx.Response) -> AsyncIterator[JsonObject]:
    async for line in response.aiter_lines():
        text = line.strip()
        if not text:
            continue
        try:
            value: object = json.loads(text)
        except ValueError as exc:
            raise DockerError(None, f"unexpected data from the Engine: {text[:200]!r}") from exc
        yield as_object(value)


class DockerClient:
    """Async Docker Engine API client.

    Args:
        host: ``unix:///path`` or ``tcp://host:port``; defaults to ``$DOCKER_HOST``
            or ``unix:///var/run/docker.sock``.
        transport: An httpx transport to use instead of the socket, e.g.
            ``httpx.MockTransport`` in unit tests.
        api_version: Pin the API version (e.g. ``"1.41"``) instead of
            negotiating it with ``GET /version`` on first use.
        timeout_s: Timeout of ordinary calls. Streaming calls (log follow,
            events, pull, wait, exec output) have no read timeout.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        api_version: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        base_url, socket_path, self._where = _resolve_host(host)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(uds=socket_path)
        self._client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=httpx.Timeout(timeout_s))
        self._timeout_s = timeout_s
        self._stream_timeout = httpx.Timeout(timeout_s, read=None)
        self._api_version = api_version
        self._version_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection pool (and the transport)."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def api_version(self) -> str | None:
        """The API version in use, or ``None`` before the first call negotiated it."""
        return self._api_version

    # --- plumbing ----------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> DockerUnavailable:
        if _caused_by(exc, PermissionError):
            return DockerUnavailable(
                None,
                f"Permission denied on {self._where}: run funade as root or as a user in the `docker` group.",
            )
        return DockerUnavailable(
            None,
            f"Docker Engine is not running (no answer on {self._where}). Start it with "
            "`dockerd &` (or `systemctl start docker`) — `make test` and `make demo` "
            "start it for you.",
        )

    @contextmanager
    def _mapped(self, method: str, path: str) -> Iterator[None]:
        """Translate httpx transport failures into this adapter's exceptions."""
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unavailable(exc) from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"Docker Engine did not answer {method} {path} within {self._timeout_s:g} s") from exc
        except httpx.TransportError as exc:
            raise DockerError(None, f"connection to the Docker Engine failed during {method} {path}: {exc}") from exc

    async def _prefix(self) -> str:
        if self._api_version is None:
            async with self._version_lock:
                if self._api_version is None:
                    server = (await self.version()).get("ApiVersion", "")
                    self._api_version = negotiate_api_version(server)
        return f"/v{self._api_version}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: _Params | None = None,
        json_body: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        versioned: bool = True,
    ) -> httpx.Response:
        url = (await self._prefix() + path) if versioned else path
        with self._mapped(method, path):
            response = await self._client.request(
                method,
                url,
                params=None if params is None else tuple(params),
                json=json_body,
                content=content,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        if response.status_code >= 400:
            raise _error_for(response.status_code, error_message(response.content, response.reason_phrase))
        return response

    async def _json(
        self, method: str, path: str, *, params: _Params | None = None, json_body: object = None
    ) -> JsonObject:
        response = await self._request(method, path, params=params, json_body=json_body)
        return as_object(response.json())

    async def _json_list(self, path: str, *, params: _Params | None = None) -> list[JsonObject]:
        value: object = (await self._request("GET", path, params=params)).json()
        return [as_object(item) for item in value] if isinstance(value, list) else []

    @asynccontextmanager
    async def _stream(
        self,
        method: str,
        path: str,
        *,
        params: _Params | None = None,
        json_body: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        url = await self._prefix() + path
        with self._mapped(method, path):
            async with self._client.stream(
                method,
                url,
                params=None if params is None else tuple(params),
                json=json_body,
                content=content,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise _error_for(response.status_code, error_message(body, response.reason_phrase))
                yield response

    # --- system ------------------------------------------------------------------------

    async def ping(self) -> None:
        """Check that the Engine answers; raise `DockerUnavailable` if it does not."""
        response = await self._request("GET", "/_ping", versioned=False)
        if response.text.strip() != "OK":
            raise DockerError(response.status_code, f"unexpected ping answer {response.text!r}")

    async def version(self) -> dict[str, str]:
        """``Version``, ``ApiVersion``, ``MinAPIVersion``, ``Os`` and ``Arch`` of the Engine."""
        response = await self._request("GET", "/version", versioned=False)
        body = as_object(response.json())
        return {key: get_str(body, key) for key in ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch")}

    # --- containers --------------------------------------------------------------------

    async def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; return its ID.

        Raises:
            NotFound: The image (or network) does not exist locally; pull it first.
            Conflict: The name is taken.
        """
        try:
            body = await self._json(
                "POST",
                "/containers/create",
                params=_params(name=spec.name),
                json_body=container_create_body(spec),
            )
        except NotFound as exc:
            if "image" in exc.message.lower() and spec.image not in exc.message:
                raise NotFound(404, f"No such image: {spec.image} ({exc.message})") from exc
            raise
        return get_str(body, "Id")

    async def start(self, container_id: str) -> None:
        """Start a container; starting a running one is not an error."""
        await self._request("POST", f"/containers/{_segment(container_id)}/start")

    async def stop(self, container_id: str, timeout_s: float = 10) -> None:
        """Send the stop signal, then SIGKILL after ``timeout_s``; stopped ones are fine."""
        grace = max(0, math.ceil(timeout_s))
        await self._request(
            "POST",
            f"/containers/{_segment(container_id)}/stop",
            params=_params(t=grace),
            timeout=httpx.Timeout(self._timeout_s, read=grace + self._timeout_s),
        )

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Send ``signal``; raises `Conflict` if the container is not running."""
        await self._request("POST", f"/containers/{_segment(container_id)}/kill", params=_params(signal=signal))

    async def remove(
        self,
        container_id: str,
        *,
        force: bool = False,
        volumes: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """Remove a container (``force`` kills it first; ``volumes`` drops anonymous ones)."""
        try:
            await self._request(
                "DELETE",
                f"/containers/{_segment(container_id)}",
                params=_params(force=force, v=volumes),
            )
        except NotFound:
            if not missing_ok:
                raise

    async def rename(self, container_id: str, new_name: str) -> None:
        """Give a container a new name."""
        await self._request("POST", f"/containers/{_segment(container_id)}/rename", params=_params(name=new_name))

    async def inspect_container(self, container_id: str) -> ContainerInfo:
        """Full state of one container (by ID or name)."""
        return parse_container_info(await self._json("GET", f"/containers/{_segment(container_id)}/json"))

    async def stats(self, container_id: str) -> ContainerStats:
        """One resource sample of a running container (CPU time so far, memory working set), at once."""
        path = f"/containers/{_segment(container_id)}/stats"
        return parse_container_stats(await self._json("GET", path, params=[("stream", "0"), ("one-shot", "1")]))

    async def list_containers(
        self, *, all: bool = True, labels: Mapping[str, str | None] | None = None
    ) -> list[ContainerSummary]:
        """Containers, stopped ones included unless ``all=False``.

        Args:
            all: Include containers that are not running.
            labels: Keep containers with these labels; a ``None`` value only
                requires the label to exist.
        """
        params = _params(all=all, filters=encode_filters({"label": label_filters(labels)}))
        items = await self._json_list("/containers/json", params=params)
        return [parse_container_summary(item) for item in items]

    async def wait(self, container_id: str) -> int:
        """Wait until the container is not running; return its exit code."""
        response = await self._request(
            "POST",
            f"/containers/{_segment(container_id)}/wait",
            params=_params(condition="not-running"),
            timeout=self._stream_timeout,
        )
        body = as_object(response.json())
        error = get_str(get_obj(body, "Error"), "Message")
        if error:
            raise DockerError(None, f"waiting for {container_id}: {error}")
        return get_int(body, "StatusCode")

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> AsyncGenerator[LogLine, None]:
        """Yield a container's log lines, stdout and stderr in the order logged.

        Args:
            follow: Keep streaming new lines until the container stops.
            tail: Only the last ``tail`` lines of the existing log.
            since: Only lines logged at or after this epoch time.
            timestamps: Set `LogLine.timestamp`.
        """
        info = await self.inspect_container(container_id)
        params = _params(
            stdout=stdout,
            stderr=stderr,
            follow=follow,
            timestamps=timestamps,
            tail="all" if tail is None else max(0, tail),
            since=None if since is None else format_since(since),
        )
        assembler = LineAssembler(timestamps=timestamps)
        demux = None if info.tty else Demultiplexer()
        async with self._stream(
            "GET",
            f"/containers/{_segment(container_id)}/logs",
            params=params,
            timeout=self._stream_timeout if follow else None,
        ) as response:
            async for chunk in response.aiter_raw():
                if demux is None:
                    lines = assembler.feed_raw(chunk)
                else:
                    lines = [
                        line
                        for stream_id, payload in demux.feed(chunk)
                        for line in assembler.feed_frame(stream_name(stream_id), payload)
                    ]
                for line in lines:
                    yield line
        for line in assembler.flush():
            yield line

    # --- exec --------------------------------------------------------------------------

    async def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        *,
        timeout_s: float,
        user: str | None = None,
        env: Sequence[str] | None = None,
        working_dir: str | None = None,
    ) -> ExecResult:
        """Run ``cmd`` in a running container and collect its output and exit code.

        Raises:
            TimeoutError: It did not finish within ``timeout_s``. The process is
                left running in the container (the Engine cannot kill an exec).
            Conflict: The container is not running.
        """
        if isinstance(cmd, str):
            raise TypeError("exec cmd must be a list of arguments, not a string")
        try:
            async with asyncio.timeout(timeout_s):
                return await self._exec(container_id, list(cmd), user=user, env=env, working_dir=working_dir)
        except TimeoutError as exc:
            raise TimeoutError(
                f"exec {list(cmd)!r} in container {container_id[:12]} did not finish within {timeout_s:g} s"
            ) from exc

    async def _exec(
        self,
        container_id: str,
        cmd: list[str],
        *,
        user: str | None,
        env: Sequence[str] | None,
        working_dir: str | None,
    ) -> ExecResult:
        config: dict[str, object] = {
            "Cmd": cmd,
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": False,
        }
        if user is not None:
            config["User"] = user
        if env:
            config["Env"] = list(env)
        if working_dir is not None:
            config["WorkingDir"] = working_dir
        created = await self._json("POST", f"/containers/{_segment(container_id)}/exec", json_body=config)
        exec_id = get_str(created, "Id")

        demux = Demultiplexer()
        output, out, err = bytearray(), bytearray(), bytearray()
        async with self._stream(
            "POST",
            f"/exec/{_segment(exec_id)}/start",
            json_body={"Detach": False, "Tty": False},
            timeout=self._stream_timeout,
        ) as response:
            async for chunk in response.aiter_raw():
                for stream_id, payload in demux.feed(chunk):
                    output += payload
                    (err if stream_name(stream_id) == "stderr" else out).extend(payload)

        # The output stream can end a moment before the Engine records the exit code.
        delay = 0.005
        while True:
            state = await self._json("GET", f"/exec/{_segment(exec_id)}/json")
            exit_code = state.get("ExitCode")
            if state.get("Running") is not True and isinstance(exit_code, int):
                return ExecResult(exit_code=exit_code, output=bytes(output), stdout=bytes(out), stderr=bytes(err))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    # --- images ------------------------------------------------------------------------

    async def inspect_image(self, ref: str) -> ImageInfo:
        """Describe a local image; raises `NotFound` if it is not present."""
        return parse_image_info(await self._json("GET", f"/images/{_image_path(ref)}/json"))

    async def image_exists(self, ref: str) -> bool:
        """Whether the image is present locally."""
        try:
            await self.inspect_image(ref)
        except NotFound:
            return False
        return True

    async def _progress(
        self,
        path: str,
        params: _Params,
        what: str,
        error: type[DockerError],
        on_progress: Callable[[str], None] | None,
        headers: Mapping[str, str] | None = None,
    ) -> list[JsonObject]:
        """Follow an Engine progress stream (pull, push) to its end; returns the ``aux`` objects it carried.

        The Engine reports failures inside a 200 stream as well as up front; both raise ``error``.
        """
        auxes: list[JsonObject] = []
        try:
            async with self._stream(
                "POST", path, params=params, headers=headers, timeout=self._stream_timeout
            ) as response:
                async for message in _json_lines(response):
                    failure = _stream_error(message)
                    if failure is not None:
                        raise error(None, f"cannot {what}: {failure}")
                    aux = message.get("aux")
                    if isinstance(aux, dict):
                        auxes.append(aux)
                    if on_progress is not None:
                        text = _progress_text(message)
                        if text:
                            on_progress(text)
        except (error, DockerUnavailable):
            raise
        except DockerError as exc:
            raise error(exc.status, f"cannot {what}: {exc.message}") from exc
        return auxes

    async def pull(self, ref: str, on_progress: Callable[[str], None] | None = None) -> None:
        """Pull ``ref`` (``latest`` when untagged), reporting progress lines.

        Raises:
            ImagePullError: The Engine refused, or reported a failure inside its
                progress stream (which it does with HTTP 200).
        """
        repo, tag = split_image_ref(ref)
        params = _params(fromImage=repo, tag=tag)
        await self._progress("/images/create", params, f"pull {ref}", ImagePullError, on_progress)

    async def import_image(self, tar: bytes, repo: str, tag: str = "latest", changes: Sequence[str] = ()) -> str:
        """Create an image from a root filesystem tarball; return its ID.

        Args:
            tar: An uncompressed or gzipped tar of the root filesystem.
            changes: Dockerfile instructions to apply, e.g. ``CMD ["/pause"]``,
                ``USER 65535``, ``ENV A=b``.
        """
        params = _params(fromSrc="-", repo=repo, tag=tag)
        params += [("changes", change) for change in changes]
        image_id = ""
        async with self._stream(
            "POST",
            "/images/create",
            params=params,
            content=tar,
            headers={"Content-Type": "application/x-tar"},
            timeout=self._stream_timeout,
        ) as response:
            async for message in _json_lines(response):
                failure = _stream_error(message)
                if failure is not None:
                    raise DockerError(None, f"cannot import {repo}:{tag}: {failure}")
                status = get_str(message, "status")
                if status.startswith("sha256:"):
                    image_id = status
        return image_id or (await self.inspect_image(f"{repo}:{tag}")).id

    async def push(
        self, ref: str, on_progress: Callable[[str], None] | None = None, *, auth: Mapping[str, str] | None = None
    ) -> str:
        """Push ``repo:tag`` to its registry and return the manifest digest the registry stored.

        ``auth`` is the Engine's X-Registry-Auth object (username/password or identitytoken,
        serveraddress); anonymous when None.

        Raises:
            ImagePushError: The Engine refused, or reported a failure inside its progress stream.
        """
        repo, tag = split_image_ref(ref)
        header = base64.urlsafe_b64encode(json.dumps(dict(auth or {})).encode()).decode()
        auxes = await self._progress(
            f"/images/{_image_path(repo)}/push",
            _params(tag=tag),
            f"push {ref}",
            ImagePushError,
            on_progress,
            headers={"X-Registry-Auth": header},
        )
        digests = [aux["Digest"] for aux in auxes if isinstance(aux.get("Digest"), str)]
        if not digests:
            raise ImagePushError(None, f"cannot push {ref}: the Engine did not report a digest")
        return str(digests[-1])

    async def export_image(self, ref: str) -> AsyncGenerator[bytes, None]:
        """Stream one local image as ``docker save`` writes it: a tar of manifest.json, the config and the layers.

        Raises:
            NotFound: The engine has no such image (raised on the first iteration).
        """
        async with self._stream("GET", f"/images/{_image_path(ref)}/get", timeout=self._stream_timeout) as response:
            async for chunk in response.aiter_bytes(_EXPORT_CHUNK):
                yield chunk

    async def tag_image(self, ref: str, repo: str, tag: str = "latest") -> None:
        """Add the name ``repo:tag`` to the image ``ref``."""
        await self._request("POST", f"/images/{_image_path(ref)}/tag", params=_params(repo=repo, tag=tag))

    async def remove_image(self, ref: str, *, force: bool = False, missing_ok: bool = False) -> None:
        """Untag ``ref`` and delete the image if no other name refers to it."""
        try:
            await self._request("DELETE", f"/images/{_image_path(ref)}", params=_params(force=force))
        except NotFound:
            if not missing_ok:
                raise

    # --- networks ----------------------------------------------------------------------

    async def create_network(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        internal: bool = False,
        driver: str = "bridge",
    ) -> str:
        """Create a network; return its ID. Raises `Conflict` if the name exists."""
        body = await self._json(
            "POST",
            "/networks/create",
            json_body={
                "Name": name,
                "CheckDuplicate": True,
                "Driver": driver,
                "Internal": internal,
                "Labels": dict(labels or {}),
            },
        )
        return get_str(body, "Id")

    async def inspect_network(self, name: str) -> NetworkInfo:
        """Describe a network (by name or ID), with its attached containers."""
        return parse_network_info(await self._json("GET", f"/networks/{_segment(name)}"))

    async def list_networks(self, labels: Mapping[str, str | None] | None = None) -> list[NetworkInfo]:
        """Networks carrying ``labels`` (``None`` value: the label exists)."""
        params = _params(filters=encode_filters({"label": label_filters(labels)}))
        items = await self._json_list("/networks", params=params)
        return [parse_network_info(item) for item in items]

    async def remove_network(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove a network; the Engine refuses (403) while containers are attached."""
        try:
            await self._request("DELETE", f"/networks/{_segment(name)}")
        except NotFound:
            if not missing_ok:
                raise

    async def connect(self, network: str, container_id: str, aliases: Sequence[str] = ()) -> None:
        """Attach a container to a network under extra DNS ``aliases``."""
        await self._request(
            "POST",
            f"/networks/{_segment(network)}/connect",
            json_body={"Container": container_id, "EndpointConfig": {"Aliases": list(aliases)}},
        )

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> None:
        """Detach a container from a network."""
        await self._request(
            "POST",
            f"/networks/{_segment(network)}/disconnect",
            json_body={"Container": container_id, "Force": force},
        )

    # --- volumes -----------------------------------------------------------------------

    async def create_volume(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        driver: str = "local",
        driver_opts: Mapping[str, str] | None = None,
    ) -> VolumeInfo:
        """Create a named volume (returns the existing one if the name is taken).

        Args:
            driver_opts: Options of the volume driver, e.g. for a memory-backed
                local volume ``{"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}``.
        """
        body = await self._json(
            "POST",
            "/volumes/create",
            json_body={
                "Name": name,
                "Driver": driver,
                "DriverOpts": dict(driver_opts or {}),
                "Labels": dict(labels or {}),
            },
        )
        return parse_volume_info(body)

    async def inspect_volume(self, name: str) -> VolumeInfo:
        """Describe a volume; raises `NotFound` if it does not exist."""
        return parse_volume_info(await self._json("GET", f"/volumes/{_segment(name)}"))

    async def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeInfo]:
        """Volumes carrying ``labels`` (``None`` value: the label exists)."""
        params = _params(filters=encode_filters({"label": label_filters(labels)}))
        body = await self._json("GET", "/volumes", params=params)
        items = body.get("Volumes")
        if not isinstance(items, list):
            return []
        return [parse_volume_info(as_object(item)) for item in items]

    async def remove_volume(self, name: str, *, force: bool = False, missing_ok: bool = False) -> None:
        """Remove a volume; raises `Conflict` while a container uses it."""
        try:
            await self._request("DELETE", f"/volumes/{_segment(name)}", params=_params(force=force))
        except NotFound:
            if not missing_ok:
                raise

    # --- events ------------------------------------------------------------------------

    async def events(
        self,
        filters: Mapping[str, list[str]] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> AsyncGenerator[DockerEvent, None]:
        """Yield Engine events as they happen (forever, unless ``until`` is given).

        Args:
            filters: Engine event filters, e.g. ``{"type": ["container"],
                "event": ["die", "oom"], "label": ["funade.io/managed"]}``.
            since: Replay events from this epoch time first, so nothing that
                happened between a resync and subscribing is missed.
            until: Stop at this epoch time.

        The stream also ends when the Engine restarts; resubscribe with
        ``since`` set to the last event's time to miss nothing.
        """
        params = _params(
            since=None if since is None else format_since(since),
            until=None if until is None else format_since(until),
            filters=encode_filters(filters or {}),
        )
        async with self._stream("GET", "/events", params=params, timeout=self._stream_timeout) as response:
            async for message in _json_lines(response):
                yield parse_event(message)
