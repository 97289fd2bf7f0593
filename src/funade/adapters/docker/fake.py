"""An in-memory Docker Engine for unit tests: `FakeDocker`.

The local target's kubelet decides everything from what Docker reports (labels,
states, exit codes and times), so its unit tests need an Engine whose answers they
control, time included. `FakeDocker` has the same async methods, arguments and
return types as `DockerClient` and keeps containers, images, networks and volumes
in dictionaries. It rejects what the real Engine rejects where funade relies on it
(a taken name, a removed container, killing one that is not running, a missing
image or network, a bind mount of a missing path), with the Engine's exception
classes and messages.

No process runs: a started container stays running until the test calls
`FakeDocker.exit`, or funade stops, kills or force-removes it. The test hooks make
everything else happen on cue: failed starts and pulls, exec results, log lines,
and a clock that only moves when the test moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import re
import signal as signals
import tarfile
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from ._errors import Conflict, DockerError, DockerUnavailable, ImagePullError, ImagePushError, NotFound
from ._models import (
    LOOPBACK,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerSummary,
    DockerEvent,
    ExecResult,
    ImageInfo,
    LogLine,
    NetworkAttachment,
    NetworkEndpoint,
    NetworkInfo,
    PublishedPort,
    StreamName,
    VolumeInfo,
)
from ._wire import split_image_ref
from .engine import MAX_API_VERSION

__all__ = ["ExecScript", "FakeDocker"]

#: Answers an exec in a running container: given the container and the command.
ExecScript = Callable[[ContainerInfo, tuple[str, ...]], ExecResult]

#: Where the fake clock starts unless told otherwise (2023-11-14T22:13:20Z).
DEFAULT_START = 1_700_000_000.0

_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PREDEFINED_NETWORKS = ("bridge", "host", "none")
# Signals whose default action is to do nothing: the process survives them.
_HARMLESS_SIGNALS = frozenset({"SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"})
_CHANGE_INSTRUCTIONS = frozenset(
    {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
)
_FIRST_EPHEMERAL_PORT = 32768


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def _normalize_ref(ref: str) -> str:
    """An image reference as the Engine files it: ``busybox`` is ``busybox:latest``."""
    repo, tag = split_image_ref(ref)
    for prefix in ("docker.io/", "index.docker.io/"):
        if repo.startswith(prefix):
            repo = repo.removeprefix(prefix)
    if "/" not in repo.removeprefix("library/"):
        repo = repo.removeprefix("library/")
    return f"{repo}@{tag}" if tag.startswith("sha256:") else f"{repo}:{tag}"


def _signal_number(name: str) -> int:
    text = name.strip().upper()
    if not text.isdigit() and not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signals.Signals(int(text)) if text.isdigit() else signals.Signals[text])
    except (KeyError, ValueError):
        raise DockerError(400, f"Invalid signal: {name}") from None


def _since(seconds: float) -> str:
    """Docker's ``Up 5 seconds`` wording of a duration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes"
    return f"{int(seconds // 3600)} hours"


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def _merge_env(image_env: Sequence[str], env: Sequence[str]) -> tuple[str, ...]:
    """The container's environment: the image's, overridden key by key by the spec's."""
    merged = {_env_key(item): item for item in image_env}
    merged.update({_env_key(item): item for item in env})
    return tuple(merged.values())


def _labels_match(labels: Mapping[str, str], wanted: Mapping[str, str | None] | None) -> bool:
    if not wanted:
        return True
    return all(key in labels and (value is None or labels[key] == value) for key, value in wanted.items())


@dataclass
class _Image:
    id: str
    tags: list[str]
    digests: list[str]
    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    size: int = 0
    created: float = DEFAULT_START
    layers: tuple[bytes, ...] = ()
    platform: str = "linux/amd64"


def _diff_id(layer: bytes) -> str:
    """A layer's digest as the Engine keeps it: of the uncompressed tar."""
    return "sha256:" + hashlib.sha256(gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer).hexdigest()


def _image_config(image: _Image) -> bytes:
    """The image config the Engine would keep for ``image`` (its digest is the image ID)."""
    config: dict[str, object] = {
        "User": image.user,
        "Env": list(image.env),
        "Entrypoint": None if image.entrypoint is None else list(image.entrypoint),
        "Cmd": None if image.cmd is None else list(image.cmd),
        "WorkingDir": image.working_dir,
        "Labels": dict(image.labels),
        "ExposedPorts": {port: {} for port in image.exposed_ports},
    }
    rootfs = {"type": "layers", "diff_ids": [_diff_id(layer) for layer in image.layers]}
    os_name, arch, *variant = image.platform.split("/")
    document = {"architecture": arch, "os": os_name, "config": config, "rootfs": rootfs}
    if variant:
        document["variant"] = variant[0]
    return json.dumps(document, sort_keys=True).encode()


def _saved(image: _Image) -> bytes:
    """``docker save`` of one image in the Engine's classic layout: ``ID/layer.tar`` per layer, a layer
    saved twice linked to its first copy, the config as ``HEX.json``, then ``manifest.json``."""
    config = _image_config(image)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        saved: dict[str, str] = {}
        paths: list[str] = []
        chain = ""
        for layer in image.layers:
            diff_id = _diff_id(layer)
            chain = _digest("layer", chain, diff_id)
            path = f"{chain}/layer.tar"
            add(chain)
            add(f"{chain}/VERSION", b"1.0")
            if diff_id in saved:
                add(path, link=f"../{saved[diff_id]}")
            else:
                add(path, gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer)
                saved[diff_id] = path
            paths.append(path)
        config_name = f"{hashlib.sha256(config).hexdigest()}.json"
        add(config_name, config)
        manifest = [{"Config": config_name, "RepoTags": list(image.tags) or None, "Layers": paths}]
        add("manifest.json", json.dumps(manifest).encode())
    return raw.getvalue()


@dataclass
class _Endpoint:
    network_id: str
    aliases: tuple[str, ...]
    ip: str = ""


@dataclass
class _Container:
    id: str
    name: str
    spec: ContainerSpec
    image_id: str
    labels: dict[str, str]
    env: tuple[str, ...]
    user: str
    created: float
    network_mode: str
    networks: dict[str, _Endpoint]
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    published: list[PublishedPort] = field(default_factory=list)
    logs: list[tuple[float, StreamName, str]] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    anonymous_volumes: list[str] = field(default_factory=list)
    cpu_total_ns: int = 0
    memory_working_set: int = 0

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class _Network:
    id: str
    name: str
    driver: str
    internal: bool
    labels: dict[str, str]
    prefix: str  # the first two octets of the /16 subnet, e.g. "172.18"
    created: float
    predefined: bool = False

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0.0/16"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.0.1"


@dataclass
class _Volume:
    name: str
    driver: str
    labels: dict[str, str]
    options: dict[str, str]
    created: float


@dataclass
class _StartFailure:
    message: str
    remaining: int
    name_contains: str | None


class FakeDocker:
    """`DockerClient`'s methods on in-memory state, for unit tests.

    Args:
        clock: Epoch seconds for every timestamp the fake writes (created,
            started, finished, events). Without it the fake keeps its own clock in
            `now`, which only moves when the test sets it or calls `advance`.
        start: Where the fake's own clock starts.

    Attributes:
        creates: Every spec `create_container` accepted, in order.
        pulls: Every reference `pull` was asked for, in order.
        pull_errors: Reference → message: pulls of it fail with `ImagePullError`
            carrying the message until the entry is removed.
        execs: ``(container ID, command)`` of every exec, in order.
        exec_handler: Answers execs that `queue_exec` has no result for; by
            default every command exits 0 with no output.
        stop_exit_code: Exit code of a container `stop` ends; ``None`` means
            128 + the stop signal's number (143 for SIGTERM), as a process
            without a signal handler would.
        unavailable: While true, every call raises `DockerUnavailable`, as when
            the Engine is down.
    """

    def __init__(self, *, clock: Callable[[], float] | None = None, start: float = DEFAULT_START) -> None:
        self._clock = clock
        self._now = start
        self.creates: list[ContainerSpec] = []
        self.pulls: list[str] = []
        self.pushes: list[str] = []
        self.pull_errors: dict[str, str] = {}
        self.execs: list[tuple[str, tuple[str, ...]]] = []
        self.exec_handler: ExecScript | None = None
        self.stop_exit_code: int | None = None
        self.unavailable = False
        self.closed = False
        self._containers: dict[str, _Container] = {}
        self._images: dict[str, _Image] = {}
        self._remote: dict[str, _Image] = {}
        self._networks: dict[str, _Network] = {}
        self._volumes: dict[str, _Volume] = {}
        self._events: list[DockerEvent] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._exec_queue: dict[str, deque[ExecResult | Exception]] = {}
        self._start_failures: list[_StartFailure] = []
        self._serial = 0
        self._pid = 100
        self._next_host_port = _FIRST_EPHEMERAL_PORT
        for number, name in enumerate(_PREDEFINED_NETWORKS):
            self._networks[name] = _Network(
                id=self._new_id("network"),
                name=name,
                driver={"bridge": "bridge", "host": "host", "none": "null"}[name],
                internal=False,
                labels={},
                prefix=f"172.{17 + number}" if name == "bridge" else "",
                created=self.now,
                predefined=True,
            )
        self._next_subnet = 18

    # --- test hooks: time --------------------------------------------------------------

    @property
    def now(self) -> float:
        """The fake's current time in epoch seconds."""
        return self._clock() if self._clock is not None else self._now

    @now.setter
    def now(self, value: float) -> None:
        if self._clock is not None:
            raise TypeError("this FakeDocker reads an injected clock; move that clock instead")
        self._now = value
        self._notify()

    def clock(self) -> float:
        """`now` as a callable, to hand to whatever else must share the fake's time."""
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the fake's own clock forward; returns the new time."""
        self.now = self.now + seconds
        return self.now

    # --- test hooks: what happens to containers ----------------------------------------

    def exit(self, container_id: str, code: int = 0, *, oom_killed: bool = False, error: str = "") -> None:
        """The container's process ends on its own with ``code`` (emits ``die``).

        Raises:
            NotFound: No such container.
            Conflict: It is not running, so it cannot exit.
        """
        container = self._container(container_id)
        if not container.running:
            raise Conflict(409, f"Container {container.id} is not running")
        if oom_killed:
            self._emit_container("oom", container)
        self._terminate(container, code, oom_killed=oom_killed, error=error)

    def fail_start(
        self, message: str = "OCI runtime create failed", *, times: int = 1, name_contains: str | None = None
    ) -> None:
        """Make the next ``times`` starts fail (of containers whose name contains ``name_contains``).

        A failed start leaves the container as it was, with ``State.Error`` set and
        exit code 128, as the Engine does.
        """
        self._start_failures.append(_StartFailure(message, times, name_contains))

    def use(self, container_id: str, *, cpu_seconds: float = 0.0, memory: int | None = None) -> None:
        """Let a running container use ``cpu_seconds`` more CPU time and set its memory working set (bytes)."""
        container = self._container(container_id)
        container.cpu_total_ns += int(cpu_seconds * 1e9)
        if memory is not None:
            container.memory_working_set = memory

    def add_log(self, container_id: str, text: str, stream: StreamName = "stdout") -> None:
        """Append lines (split on newlines) to a container's log, stamped with `now`."""
        container = self._container(container_id)
        for line in text.splitlines() or [""]:
            container.logs.append((self.now, stream, line))
        self._notify()

    def queue_exec(self, container_id: str, *results: ExecResult | Exception) -> None:
        """Answer the container's next execs with ``results`` in order (an exception is raised)."""
        container = self._container(container_id)
        self._exec_queue.setdefault(container.id, deque()).extend(results)

    def spec_of(self, container_id: str) -> ContainerSpec:
        """The spec a container was created with."""
        return self._container(container_id).spec

    # --- test hooks: images ------------------------------------------------------------

    def add_image(
        self,
        ref: str,
        *,
        user: str = "",
        env: Sequence[str] = (),
        entrypoint: Sequence[str] | None = None,
        cmd: Sequence[str] | None = None,
        working_dir: str = "",
        labels: Mapping[str, str] | None = None,
        exposed_ports: Sequence[str] = (),
        size: int = 0,
        layers: Sequence[bytes] = (),
        platform: str = "linux/amd64",
    ) -> str:
        """Make an image present locally under ``ref``; returns its ID.

        With ``layers`` (layer tars, plain or gzipped) `export_image` saves them, and the ID
        is the digest of the image config, as in the Engine. ``platform`` is ``os/arch[/variant]``.
        """
        image = self._make_image(ref, user, env, entrypoint, cmd, working_dir, labels, exposed_ports, size, digest=None)
        image.platform = platform
        if layers:
            image.layers = tuple(layers)
            image.id = "sha256:" + hashlib.sha256(_image_config(image)).hexdigest()
        self._store_image(image)
        return image.id

    def add_remote_image(
        self,
        ref: str,
        *,
        user: str = "",
        env: Sequence[str] = (),
        entrypoint: Sequence[str] | None = None,
        cmd: Sequence[str] | None = None,
        working_dir: str = "",
        labels: Mapping[str, str] | None = None,
        exposed_ports: Sequence[str] = (),
        size: int = 0,
    ) -> str:
        """Make ``ref`` pullable from a registry (not present locally); returns its ID."""
        digest = "sha256:" + _digest("manifest", ref)
        image = self._make_image(
            ref, user, env, entrypoint, cmd, working_dir, labels, exposed_ports, size, digest=digest
        )
        self._remote[_normalize_ref(ref)] = image
        return image.id

    def _make_image(
        self,
        ref: str,
        user: str,
        env: Sequence[str],
        entrypoint: Sequence[str] | None,
        cmd: Sequence[str] | None,
        working_dir: str,
        labels: Mapping[str, str] | None,
        exposed_ports: Sequence[str],
        size: int,
        *,
        digest: str | None,
    ) -> _Image:
        norm = _normalize_ref(ref)
        repo = norm.rsplit("@", 1)[0] if "@" in norm else norm.rsplit(":", 1)[0]
        return _Image(
            id="sha256:" + _digest("image", norm, user, tuple(env), entrypoint, cmd, working_dir, labels),
            tags=[] if "@" in norm else [norm],
            digests=[f"{repo}@{digest}"] if digest else [],
            user=user,
            env=tuple(env),
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            cmd=None if cmd is None else tuple(cmd),
            working_dir=working_dir,
            exposed_ports=tuple(exposed_ports),
            labels=dict(labels or {}),
            size=size,
            created=self.now,
        )

    def _store_image(self, image: _Image) -> None:
        for tag in image.tags:
            self._untag_everywhere(tag)
        existing = self._images.get(image.id)
        if existing is not None:
            existing.tags.extend(t for t in image.tags if t not in existing.tags)
            existing.digests.extend(d for d in image.digests if d not in existing.digests)
        else:
            self._images[image.id] = image

    def _untag_everywhere(self, tag: str) -> None:
        for other in self._images.values():
            if tag in other.tags:
                other.tags.remove(tag)

    # --- lifecycle ---------------------------------------------------------------------

    async def close(self) -> None:
        """Nothing to release; kept for parity with `DockerClient`."""
        self.closed = True

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
        """The API version the fake pretends to speak."""
        return MAX_API_VERSION

    # --- plumbing ----------------------------------------------------------------------

    def _check(self) -> None:
        if self.unavailable:
            raise DockerUnavailable(None, "Docker Engine is not running (FakeDocker.unavailable is set).")

    def _new_id(self, kind: str) -> str:
        self._serial += 1
        return _digest(kind, self._serial)

    def _notify(self) -> None:
        """Wake every coroutine waiting for the fake's state (or clock) to change."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)

    async def _changed(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _emit(self, type_: str, action: str, actor_id: str, attributes: Mapping[str, str]) -> None:
        now = self.now
        time_nano = round(now * 1e9)
        seconds, nanos = divmod(time_nano, 1_000_000_000)
        self._events.append(
            DockerEvent(
                type=type_,
                action=action,
                actor_id=actor_id,
                actor_attributes=dict(attributes),
                time=datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000),
                time_nano=time_nano,
            )
        )
        self._notify()

    def _emit_container(self, action: str, container: _Container, **extra: str) -> None:
        attributes = {**container.labels, "image": container.spec.image, "name": container.name, **extra}
        self._emit("container", action, container.id, attributes)

    def _container(self, ref: str) -> _Container:
        """A container by ID, name or unique ID prefix."""
        found = self._containers.get(ref)
        if found is not None:
            return found
        name = ref.removeprefix("/")
        for container in self._containers.values():
            if container.name == name:
                return container
        matches = [c for c in self._containers.values() if ref and c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DockerError(400, f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(404, f"No such container: {ref}")

    def _image(self, ref: str) -> _Image:
        """A local image by reference, digest reference or (short) ID."""
        if ref in self._images:
            return self._images[ref]
        norm = _normalize_ref(ref)
        for image in self._images.values():
            if norm in image.tags or norm in image.digests:
                return image
        bare = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{4,64}", bare):
            matches = [i for i in self._images.values() if i.id.removeprefix("sha256:").startswith(bare)]
            if len(matches) == 1:
                return matches[0]
        raise NotFound(404, f"No such image: {ref}")

    def _network(self, ref: str) -> _Network:
        """A network by name, ID or unique ID prefix."""
        if ref in self._networks:
            return self._networks[ref]
        matches = [n for n in self._networks.values() if ref and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(404, f"network {ref} not found")

    def _joined(self, mode: str | None) -> str | None:
        """The container a ``container:<ref>`` mode joins, if that is the mode."""
        if mode is None or not mode.startswith("container:"):
            return None
        return mode.removeprefix("container:")

    # --- system ------------------------------------------------------------------------

    async def ping(self) -> None:
        """Answer like a healthy Engine (or raise `DockerUnavailable` when `unavailable`)."""
        self._check()

    async def version(self) -> dict[str, str]:
        """The fake Engine's version fields."""
        self._check()
        return {
            "Version": "fake",
            "ApiVersion": MAX_API_VERSION,
            "MinAPIVersion": "1.24",
            "Os": "linux",
            "Arch": "amd64",
        }

    # --- containers --------------------------------------------------------------------

    async def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; return its ID.

        Raises:
            NotFound: The image, the network or the joined container does not exist.
            Conflict: The name is taken.
            DockerError: Invalid name, or a bind mount of a path that does not exist.
        """
        self._check()
        name = spec.name.removeprefix("/")
        if name:
            if not _NAME_RE.match(spec.name):
                raise DockerError(
                    400, f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            for other in self._containers.values():
                if other.name == name:
                    raise Conflict(
                        409,
                        f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                        "You have to remove (or rename) that container to be able to reuse that name.",
                    )
        image = self._image(spec.image)
        mode = spec.network_mode or "default"
        networks: dict[str, _Endpoint] = {}
        # A container:<ref> mode has no networks of its own; the joined container is
        # looked up when this one starts, as the Engine does.
        if mode in ("default", "bridge"):
            networks["bridge"] = _Endpoint(self._networks["bridge"].id, ())
        elif mode in ("host", "none"):
            networks[mode] = _Endpoint(self._networks[mode].id, ())
        elif self._joined(mode) is None:
            network = self._network(mode)
            networks[network.name] = _Endpoint(network.id, tuple(spec.network_aliases))
        container_id = self._new_id("container")
        volumes: list[str] = []
        anonymous: list[str] = []
        for mount in spec.mounts:
            if mount.type == "bind" and not Path(mount.source).exists():
                raise DockerError(
                    400, f'invalid mount config for type "bind": bind source path does not exist: {mount.source}'
                )
        for mount in spec.mounts:
            if mount.type != "volume":
                continue
            volume_name = mount.source or _digest("anonymous", container_id, mount.target)
            if volume_name not in self._volumes:
                self._volumes[volume_name] = _Volume(volume_name, "local", {}, {}, self.now)
                self._emit("volume", "create", volume_name, {"driver": "local"})
            volumes.append(volume_name)
            if not mount.source:
                anonymous.append(volume_name)
        container = _Container(
            id=container_id,
            name=name or f"fake_{container_id[:12]}",
            spec=spec,
            image_id=image.id,
            labels={**image.labels, **spec.labels},
            env=_merge_env(image.env, spec.env),
            user=image.user if spec.user is None else spec.user,
            created=self.now,
            network_mode=mode,
            networks=networks,
            volumes=volumes,
            anonymous_volumes=anonymous,
        )
        self._containers[container_id] = container
        self.creates.append(spec)
        self._emit_container("create", container)
        return container_id

    async def start(self, container_id: str) -> None:
        """Start a container; starting a running one is not an error.

        Raises:
            NotFound: No such container (a removed one, say), or its network is gone.
            Conflict: It joins the namespace of a container that is not running.
            DockerError: A start failure scripted with `fail_start`, or a host
                port another running container holds.
        """
        self._check()
        container = self._container(container_id)
        if container.running:
            return
        spec = container.spec
        for mode, what in ((spec.network_mode, "network"), (spec.ipc_mode, "IPC"), (spec.pid_mode, "PID")):
            joined = self._joined(mode)
            if joined is None:
                continue
            try:
                other = self._container(joined)
            except NotFound:
                raise self._start_failed(container, NotFound(404, f"No such container: {joined}")) from None
            if not other.running:
                raise self._start_failed(
                    container, Conflict(409, f"cannot join {what} of a non running container: {other.id}")
                )
        for net_name in container.networks:
            if net_name not in self._networks:
                raise self._start_failed(container, NotFound(404, f"network {net_name} not found"))
        for rule in self._start_failures:
            if rule.remaining > 0 and (rule.name_contains is None or rule.name_contains in container.name):
                rule.remaining -= 1
                raise self._start_failed(container, DockerError(500, rule.message))
        taken = {
            (p.host_port, p.protocol) for other in self._containers.values() if other.running for p in other.published
        }
        published: list[PublishedPort] = []
        for binding in spec.ports:
            host_port = binding.host_port
            if host_port is None:
                while (self._next_host_port, binding.protocol) in taken:
                    self._next_host_port += 1
                host_port = self._next_host_port
                self._next_host_port += 1
            if (host_port, binding.protocol) in taken:
                raise self._start_failed(
                    container,
                    DockerError(
                        500,
                        f"driver failed programming external connectivity on endpoint {container.name}: "
                        f"Bind for {LOOPBACK}:{host_port} failed: port is already allocated",
                    ),
                )
            taken.add((host_port, binding.protocol))
            published.append(PublishedPort(binding.container_port, binding.protocol, LOOPBACK, host_port))
        self._pid += 1
        container.status = "running"
        container.pid = self._pid
        container.exit_code = 0
        container.error = ""
        container.oom_killed = False
        container.started_at = self.now
        container.published = published
        for net_name, endpoint in container.networks.items():
            endpoint.ip = self._allocate_ip(self._networks[net_name])
        self._emit_container("start", container)

    def _start_failed(self, container: _Container, exc: DockerError) -> DockerError:
        container.error = exc.message
        container.exit_code = 128
        self._notify()
        return exc

    def _allocate_ip(self, network: _Network) -> str:
        if not network.prefix:  # host and none: no address of the container's own
            return ""
        used = {
            endpoint.ip
            for other in self._containers.values()
            for name, endpoint in other.networks.items()
            if name == network.name and endpoint.ip
        }
        for host in range(2, 65535):
            ip = f"{network.prefix}.{host // 256}.{host % 256}"
            if ip not in used:
                return ip
        raise DockerError(500, f"no available IPv4 addresses on network {network.name}")

    def _terminate(self, container: _Container, code: int, *, oom_killed: bool = False, error: str = "") -> None:
        container.status = "exited"
        container.pid = 0
        container.exit_code = code
        container.oom_killed = oom_killed
        container.error = error
        container.finished_at = self.now
        container.published = []
        for endpoint in container.networks.values():
            endpoint.ip = ""
        self._emit_container("die", container, exitCode=str(code))

    async def stop(self, container_id: str, timeout_s: float = 10) -> None:
        """Stop a running container at once (stopped ones are fine); emits ``kill``, ``die``, ``stop``."""
        self._check()
        container = self._container(container_id)
        if not container.running:
            return
        stop_signal = container.spec.stop_signal or "SIGTERM"
        number = _signal_number(stop_signal)
        self._emit_container("kill", container, signal=str(number))
        code = self.stop_exit_code if self.stop_exit_code is not None else 128 + number
        self._terminate(container, code)
        self._emit_container("stop", container)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Send ``signal``; raises `Conflict` if the container is not running."""
        self._check()
        container = self._container(container_id)
        number = _signal_number(signal)
        if not container.running:
            raise Conflict(409, f"Cannot kill container: {container_id}: Container {container.id} is not running")
        self._emit_container("kill", container, signal=str(number))
        if signals.Signals(number).name not in _HARMLESS_SIGNALS:
            self._terminate(container, 128 + number)

    async def remove(
        self,
        container_id: str,
        *,
        force: bool = False,
        volumes: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """Remove a container (``force`` kills it first; ``volumes`` drops anonymous ones)."""
        self._check()
        try:
            container = self._container(container_id)
        except NotFound:
            if missing_ok:
                return
            raise
        if container.running:
            if not force:
                raise Conflict(
                    409,
                    f"You cannot remove a running container {container.id}. Stop the container before "
                    "attempting removal or force remove",
                )
            self._emit_container("kill", container, signal=str(int(signals.SIGKILL)))
            self._terminate(container, 128 + int(signals.SIGKILL))
        del self._containers[container.id]
        self._exec_queue.pop(container.id, None)
        if volumes:
            for name in container.anonymous_volumes:
                if self._volumes.pop(name, None) is not None:
                    self._emit("volume", "destroy", name, {"driver": "local"})
        self._emit_container("destroy", container)

    async def rename(self, container_id: str, new_name: str) -> None:
        """Give a container a new name."""
        self._check()
        container = self._container(container_id)
        name = new_name.removeprefix("/")
        if not _NAME_RE.match(new_name):
            raise DockerError(400, f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        for other in self._containers.values():
            if other.name == name and other is not container:
                raise Conflict(
                    409,
                    f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                    "You have to remove (or rename) that container to be able to reuse that name.",
                )
        old = container.name
        container.name = name
        self._emit_container("rename", container, oldName=f"/{old}")

    def _info(self, container: _Container) -> ContainerInfo:
        networks: dict[str, NetworkAttachment] = {}
        for name, endpoint in container.networks.items():
            network = self._networks.get(name)
            ip = endpoint.ip
            networks[name] = NetworkAttachment(
                network_id=endpoint.network_id,
                ip_address=ip,
                gateway=network.gateway if ip and network is not None else "",
                mac_address="02:42:" + ":".join(f"{int(o):02x}" for o in ip.split(".")) if ip else "",
                aliases=endpoint.aliases,
            )
        return ContainerInfo(
            id=container.id,
            name=container.name,
            image=container.image_id,
            config_image=container.spec.image,
            labels=dict(container.labels),
            created=_dt(container.created),
            state=ContainerState(
                status=container.status,
                running=container.running,
                paused=False,
                restarting=False,
                oom_killed=container.oom_killed,
                dead=False,
                pid=container.pid,
                exit_code=container.exit_code,
                error=container.error,
                started_at=_dt(container.started_at),
                finished_at=_dt(container.finished_at),
            ),
            networks=networks,
            network_mode=container.network_mode,
            published_ports=tuple(container.published),
            user=container.user,
            env=container.env,
            tty=False,
        )

    async def inspect_container(self, container_id: str) -> ContainerInfo:
        """Full state of one container (by ID, name or unique ID prefix)."""
        self._check()
        return self._info(self._container(container_id))

    async def stats(self, container_id: str) -> ContainerStats:
        """The container's CPU time and memory so far (see :meth:`use`), sampled now; zeros when it is not
        running, as the Engine answers."""
        self._check()
        container = self._container(container_id)
        if not container.running:
            return ContainerStats(None, 0, 0)
        return ContainerStats(_dt(self.now), container.cpu_total_ns, container.memory_working_set)

    async def list_containers(
        self, *, all: bool = True, labels: Mapping[str, str | None] | None = None
    ) -> list[ContainerSummary]:
        """Containers carrying ``labels``, newest first; stopped ones too unless ``all=False``."""
        self._check()
        now = self.now
        result: list[ContainerSummary] = []
        for container in sorted(self._containers.values(), key=lambda c: c.created, reverse=True):
            if (not all and not container.running) or not _labels_match(container.labels, labels):
                continue
            if container.running:
                status = f"Up {_since(now - (container.started_at or now))}"
            elif container.finished_at is not None:
                status = f"Exited ({container.exit_code}) {_since(now - container.finished_at)} ago"
            else:
                status = "Created"
            result.append(
                ContainerSummary(
                    id=container.id,
                    names=(container.name,),
                    image=container.spec.image,
                    image_id=container.image_id,
                    labels=dict(container.labels),
                    state=container.status,
                    status=status,
                    created=datetime.fromtimestamp(int(container.created), UTC),
                )
            )
        return result

    async def wait(self, container_id: str) -> int:
        """Wait until the container is not running; return its exit code."""
        self._check()
        container = self._container(container_id)
        while container.running:
            await self._changed()
        return container.exit_code

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
        """Yield the lines `add_log` gave the container; ``follow`` waits for more until it stops."""
        self._check()
        container = self._container(container_id)

        def wanted(entry: tuple[float, StreamName, str]) -> bool:
            at, stream, _ = entry
            return (stdout if stream == "stdout" else stderr) and (since is None or at >= since)

        def line(entry: tuple[float, StreamName, str]) -> LogLine:
            at, stream, text = entry
            return LogLine(stream=stream, text=text, timestamp=_dt(at) if timestamps else None)

        existing = [entry for entry in container.logs if wanted(entry)]
        if tail is not None:
            existing = existing[len(existing) - tail :] if tail > 0 else []
        for entry in existing:
            yield line(entry)
        if not follow:
            return
        seen = len(container.logs)
        while True:
            while seen < len(container.logs):
                entry = container.logs[seen]
                seen += 1
                if wanted(entry):
                    yield line(entry)
            if not container.running or container.id not in self._containers:
                return
            await self._changed()

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
        """Answer from `queue_exec`, else `exec_handler`, else exit 0.

        Raises:
            NotFound: No such container.
            Conflict: The container is not running.
        """
        if isinstance(cmd, str):
            raise TypeError("exec cmd must be a list of arguments, not a string")
        self._check()
        container = self._container(container_id)
        if not container.running:
            raise Conflict(409, f"Container {container.id} is not running")
        command = tuple(cmd)
        self.execs.append((container.id, command))
        self._emit_container("exec_start: " + " ".join(command), container)
        queued = self._exec_queue.get(container.id)
        if queued:
            result = queued.popleft()
            if isinstance(result, Exception):
                raise result
            return result
        if self.exec_handler is not None:
            return self.exec_handler(self._info(container), command)
        return ExecResult(exit_code=0, output=b"")

    # --- images ------------------------------------------------------------------------

    def _image_info(self, image: _Image) -> ImageInfo:
        return ImageInfo(
            id=image.id,
            repo_tags=tuple(image.tags),
            repo_digests=tuple(image.digests),
            user=image.user,
            env=image.env,
            entrypoint=image.entrypoint,
            cmd=image.cmd,
            working_dir=image.working_dir,
            exposed_ports=tuple(sorted(image.exposed_ports)),
            labels=dict(image.labels),
            size=image.size,
            created=_dt(image.created),
            platform=image.platform,
        )

    async def inspect_image(self, ref: str) -> ImageInfo:
        """Describe a local image; raises `NotFound` if it is not present."""
        self._check()
        return self._image_info(self._image(ref))

    async def image_exists(self, ref: str) -> bool:
        """Whether the image is present locally."""
        try:
            await self.inspect_image(ref)
        except NotFound:
            return False
        return True

    async def pull(self, ref: str, on_progress: Callable[[str], None] | None = None) -> None:
        """Copy ``ref`` from the fake registry (`add_remote_image`) to the local images.

        Raises:
            ImagePullError: ``ref`` is in `pull_errors`, or the registry does not have it.
        """
        self._check()
        self.pulls.append(ref)
        norm = _normalize_ref(ref)
        repo, tag = split_image_ref(ref)
        error = self.pull_errors.get(ref, self.pull_errors.get(norm))
        if error is not None:
            raise ImagePullError(None, f"cannot pull {ref}: {error}")
        remote = self._remote.get(norm)
        if remote is None:
            raise ImagePullError(
                404,
                f"cannot pull {ref}: pull access denied for {repo}, repository does not exist or may require "
                "'docker login': denied: requested access to the resource is denied",
            )
        if on_progress is not None:
            on_progress(f"{tag}: Pulling from {repo}")
            for digest in remote.digests:
                on_progress(f"Digest: {digest.rsplit('@', 1)[1]}")
            on_progress(f"Status: Downloaded newer image for {norm}")
        self._store_image(
            _Image(
                id=remote.id,
                tags=list(remote.tags),
                digests=list(remote.digests),
                user=remote.user,
                env=remote.env,
                entrypoint=remote.entrypoint,
                cmd=remote.cmd,
                working_dir=remote.working_dir,
                exposed_ports=remote.exposed_ports,
                labels=dict(remote.labels),
                size=remote.size,
                created=remote.created,
            )
        )
        self._emit("image", "pull", norm, {"name": norm})

    async def import_image(self, tar: bytes, repo: str, tag: str = "latest", changes: Sequence[str] = ()) -> str:
        """Create an image from ``tar`` (not unpacked) and the Dockerfile ``changes``; return its ID.

        Understands ``CMD``, ``ENTRYPOINT`` (JSON or shell form), ``ENV``, ``USER``,
        ``WORKDIR``, ``LABEL`` and ``EXPOSE``; the other instructions the Engine
        allows are accepted and ignored, and anything else is refused.
        """
        self._check()
        image = _Image(
            id="sha256:" + _digest("import", hashlib.sha256(tar).hexdigest(), repo, tag, tuple(changes)),
            tags=[_normalize_ref(f"{repo}:{tag}")],
            digests=[],
            size=len(tar),
            layers=(tar,),
            created=self.now,
        )
        for change in changes:
            _apply_change(image, change)
        self._store_image(image)
        self._emit("image", "import", image.id, {"name": image.tags[0]})
        return image.id

    async def push(
        self, ref: str, on_progress: Callable[[str], None] | None = None, *, auth: Mapping[str, str] | None = None
    ) -> str:
        """Copy the local image ``ref`` to the fake registry; returns its manifest digest.

        Raises:
            ImagePushError: there is no local image of that name.
        """
        self._check()
        norm = _normalize_ref(ref)
        try:
            image = self._image(ref)
        except NotFound as exc:
            raise ImagePushError(404, f"cannot push {ref}: An image does not exist locally with the tag") from exc
        self.pushes.append(ref)
        digest = "sha256:" + _digest("manifest", image.id)
        if on_progress is not None:
            on_progress(f"{split_image_ref(ref)[1]}: digest: {digest}")
        repo = split_image_ref(norm)[0]
        if f"{repo}@{digest}" not in image.digests:
            image.digests.append(f"{repo}@{digest}")
        self._remote[norm] = image
        return digest

    async def export_image(self, ref: str) -> AsyncGenerator[bytes, None]:
        """The local image ``ref`` as ``docker save`` writes it, in 64 KiB chunks.

        Raises:
            NotFound: There is no such local image (on the first iteration, as the Engine).
        """
        self._check()
        data = _saved(self._image(ref))
        for at in range(0, len(data), 64 << 10):
            yield data[at : at + (64 << 10)]

    async def tag_image(self, ref: str, repo: str, tag: str = "latest") -> None:
        """Add the name ``repo:tag`` to the image ``ref`` (moving it off any other image)."""
        self._check()
        image = self._image(ref)
        name = _normalize_ref(f"{repo}:{tag}")
        self._untag_everywhere(name)
        image.tags.append(name)
        self._emit("image", "tag", image.id, {"name": name})

    async def remove_image(self, ref: str, *, force: bool = False, missing_ok: bool = False) -> None:
        """Untag ``ref`` and delete the image if no other name or container refers to it."""
        self._check()
        try:
            image = self._image(ref)
        except NotFound:
            if missing_ok:
                return
            raise
        users = [c for c in self._containers.values() if c.image_id == image.id]
        norm = _normalize_ref(ref)
        short = image.id.removeprefix("sha256:")[:12]
        if norm in image.tags:
            if len(image.tags) > 1:
                image.tags.remove(norm)
                self._emit("image", "untag", image.id, {"name": norm})
                return
            if users and not force:
                raise Conflict(
                    409,
                    f'conflict: unable to remove repository reference "{ref}" (must force) - container '
                    f"{users[0].id[:12]} is using its referenced image {short}",
                )
            image.tags.remove(norm)
            self._emit("image", "untag", image.id, {"name": norm})
        else:
            running = [c for c in users if c.running]
            if running:
                raise Conflict(
                    409,
                    f"conflict: unable to delete {short} (cannot be forced) - image is being used by running "
                    f"container {running[0].id[:12]}",
                )
            if (len(image.tags) > 1 or users) and not force:
                why = (
                    "image is referenced in multiple repositories"
                    if len(image.tags) > 1
                    else f"image is being used by stopped container {users[0].id[:12]}"
                )
                raise Conflict(409, f"conflict: unable to delete {short} (must be forced) - {why}")
            image.tags.clear()
        if not users:
            del self._images[image.id]
            self._emit("image", "delete", image.id, {"name": norm})

    # --- networks ----------------------------------------------------------------------

    async def create_network(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        internal: bool = False,
        driver: str = "bridge",
    ) -> str:
        """Create a network with its own /16 subnet; raises `Conflict` if the name exists."""
        self._check()
        if name in self._networks:
            raise Conflict(409, f"network with name {name} already exists")
        network = _Network(
            id=self._new_id("network"),
            name=name,
            driver=driver,
            internal=internal,
            labels=dict(labels or {}),
            prefix=f"172.{self._next_subnet}",
            created=self.now,
        )
        self._next_subnet += 1
        self._networks[name] = network
        self._emit("network", "create", network.id, {"name": name, "type": driver})
        return network.id

    def _network_info(self, network: _Network, *, with_containers: bool) -> NetworkInfo:
        containers: dict[str, NetworkEndpoint] = {}
        if with_containers:
            for container in self._containers.values():
                endpoint = container.networks.get(network.name)
                if endpoint is not None and container.running:
                    mac = "02:42:" + ":".join(f"{int(o):02x}" for o in endpoint.ip.split(".")) if endpoint.ip else ""
                    containers[container.id] = NetworkEndpoint(
                        container_id=container.id,
                        name=container.name,
                        ipv4_address=f"{endpoint.ip}/16" if endpoint.ip else "",
                        mac_address=mac,
                    )
        return NetworkInfo(
            id=network.id,
            name=network.name,
            driver=network.driver,
            scope="local",
            internal=network.internal,
            labels=dict(network.labels),
            subnet=network.subnet if network.prefix else None,
            gateway=network.gateway if network.prefix else None,
            containers=containers,
            created=_dt(network.created),
        )

    async def inspect_network(self, name: str) -> NetworkInfo:
        """Describe a network (by name or ID), with its running containers."""
        self._check()
        return self._network_info(self._network(name), with_containers=True)

    async def list_networks(self, labels: Mapping[str, str | None] | None = None) -> list[NetworkInfo]:
        """Networks carrying ``labels`` (``None`` value: the label exists)."""
        self._check()
        return [
            self._network_info(network, with_containers=False)
            for network in sorted(self._networks.values(), key=lambda n: n.name)
            if _labels_match(network.labels, labels)
        ]

    async def remove_network(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove a network; refused (403) for predefined ones and while containers run on it."""
        self._check()
        try:
            network = self._network(name)
        except NotFound:
            if missing_ok:
                return
            raise
        if network.predefined:
            raise DockerError(403, f"{network.name} is a pre-defined network and cannot be removed")
        if any(c.running and network.name in c.networks for c in self._containers.values()):
            raise DockerError(
                403, f"error while removing network: network {network.name} id {network.id} has active endpoints"
            )
        del self._networks[network.name]
        self._emit("network", "destroy", network.id, {"name": network.name, "type": network.driver})

    async def connect(self, network: str, container_id: str, aliases: Sequence[str] = ()) -> None:
        """Attach a container to a network under extra DNS ``aliases``."""
        self._check()
        net = self._network(network)
        container = self._container(container_id)
        if self._joined(container.network_mode) is not None or container.network_mode in ("host", "none"):
            raise DockerError(
                400,
                "container sharing network namespace with another container or host cannot be connected to "
                "any other network",
            )
        if net.name in container.networks:
            raise DockerError(403, f"endpoint with name {container.name} already exists in network {net.name}")
        endpoint = _Endpoint(net.id, tuple(aliases))
        if container.running:
            endpoint.ip = self._allocate_ip(net)
        container.networks[net.name] = endpoint
        self._emit("network", "connect", net.id, {"container": container.id, "name": net.name})

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> None:
        """Detach a container from a network."""
        self._check()
        net = self._network(network)
        container = self._container(container_id)
        if container.networks.pop(net.name, None) is None:
            raise DockerError(403, f"container {container.id} is not connected to network {net.name}")
        self._emit("network", "disconnect", net.id, {"container": container.id, "name": net.name})

    # --- volumes -----------------------------------------------------------------------

    def _volume_info(self, volume: _Volume) -> VolumeInfo:
        return VolumeInfo(
            name=volume.name,
            driver=volume.driver,
            mountpoint=f"/var/lib/docker/volumes/{volume.name}/_data",
            labels=dict(volume.labels),
            options=dict(volume.options),
            created=_dt(volume.created),
        )

    async def create_volume(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        driver: str = "local",
        driver_opts: Mapping[str, str] | None = None,
    ) -> VolumeInfo:
        """Create a named volume (returns the existing one if the name is taken)."""
        self._check()
        volume = self._volumes.get(name)
        if volume is None:
            volume = _Volume(name, driver, dict(labels or {}), dict(driver_opts or {}), self.now)
            self._volumes[name] = volume
            self._emit("volume", "create", name, {"driver": driver})
        return self._volume_info(volume)

    async def inspect_volume(self, name: str) -> VolumeInfo:
        """Describe a volume; raises `NotFound` if it does not exist."""
        self._check()
        volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(404, f"get {name}: no such volume")
        return self._volume_info(volume)

    async def list_volumes(self, labels: Mapping[str, str | None] | None = None) -> list[VolumeInfo]:
        """Volumes carrying ``labels`` (``None`` value: the label exists)."""
        self._check()
        return [
            self._volume_info(volume)
            for volume in sorted(self._volumes.values(), key=lambda v: v.name)
            if _labels_match(volume.labels, labels)
        ]

    async def remove_volume(self, name: str, *, force: bool = False, missing_ok: bool = False) -> None:
        """Remove a volume; raises `Conflict` while any container (even a stopped one) uses it."""
        self._check()
        if name not in self._volumes:
            if missing_ok or force:
                return
            raise NotFound(404, f"get {name}: no such volume")
        users = [c.id for c in self._containers.values() if name in c.volumes]
        if users:
            raise Conflict(409, f"remove {name}: volume is in use - [{', '.join(users)}]")
        del self._volumes[name]
        self._emit("volume", "destroy", name, {"driver": "local"})

    # --- events ------------------------------------------------------------------------

    async def events(
        self,
        filters: Mapping[str, list[str]] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> AsyncGenerator[DockerEvent, None]:
        """Yield the fake's events as they happen, filtered as the Engine filters them.

        Args:
            filters: ``type``, ``event``, ``label``, ``container``, ``image``,
                ``network`` and ``volume`` terms: any value of one key matches, every
                key must match, and every ``label`` term must match.
            since: Replay the events from this epoch time first.
            until: Stop at this epoch time; with the fake clock, the stream ends
                once the replay reaches it and `now` has passed it.
        """
        self._check()
        wanted = {key: values for key, values in (filters or {}).items() if values}
        index = 0 if since is not None else len(self._events)
        while True:
            while index < len(self._events):
                event = self._events[index]
                index += 1
                at = event.time_nano / 1e9
                if since is not None and at < since:
                    continue
                if until is not None and at > until:
                    return
                if self._event_matches(event, wanted):
                    yield event
            if until is not None and self.now >= until:
                return
            await self._changed()

    def _event_matches(self, event: DockerEvent, filters: Mapping[str, list[str]]) -> bool:
        attributes = event.actor_attributes
        for key, values in filters.items():
            if key == "type":
                ok = event.type in values
            elif key == "event":
                ok = any(event.action == v or event.action.split(":", 1)[0] == v for v in values)
            elif key == "label":
                ok = all(
                    (attributes.get(k) == v) if sep else (k in attributes)
                    for k, sep, v in (term.partition("=") for term in values)
                )
            elif key in ("container", "image", "network", "volume"):
                if key == "container" and event.type != "container":
                    ok = False
                else:
                    names = {event.actor_id, attributes.get("name", ""), attributes.get(key, "")}
                    if key == "image":
                        names.add(_normalize_ref(attributes.get("image", event.actor_id) or event.actor_id))
                    ok = any(v in names or any(n.startswith(v) for n in names if n) for v in values)
            else:
                ok = True  # the fake does not model this filter; it lets everything through
            if not ok:
                return False
        return True


def _apply_change(image: _Image, change: str) -> None:
    """Apply one Dockerfile instruction of an import's ``changes`` to ``image``."""
    instruction, _, rest = change.strip().partition(" ")
    instruction = instruction.upper()
    rest = rest.strip()
    if instruction not in _CHANGE_INSTRUCTIONS:
        raise DockerError(400, f"{instruction} is not a valid change command")
    if instruction in ("CMD", "ENTRYPOINT"):
        args = _exec_form(rest)
        if instruction == "CMD":
            image.cmd = args
        else:
            image.entrypoint = args
    elif instruction == "ENV":
        key, sep, value = rest.partition("=")
        if not sep:
            key, _, value = rest.partition(" ")
        image.env = _merge_env(image.env, [f"{key.strip()}={value.strip().strip(chr(34))}"])
    elif instruction == "USER":
        image.user = rest
    elif instruction == "WORKDIR":
        image.working_dir = rest
    elif instruction == "LABEL":
        key, _, value = rest.partition("=")
        image.labels[key.strip().strip('"')] = value.strip().strip('"')
    elif instruction == "EXPOSE":
        ports = [p if "/" in p else f"{p}/tcp" for p in rest.split()]
        image.exposed_ports = tuple(sorted({*image.exposed_ports, *ports}))


def _exec_form(text: str) -> tuple[str, ...]:
    """``["a", "b"]`` as given, or the shell form wrapped in ``/bin/sh -c``."""
    if text.startswith("["):
        try:
            value: object = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(str(v) for v in value)
    return ("/bin/sh", "-c", text)
