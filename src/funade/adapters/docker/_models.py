"""Typed values exchanged with the Docker Engine adapter.

The Engine speaks loosely typed JSON; the rest of funade should not. Inputs
(`ContainerSpec`, `Mount`, `PortBinding`) are validated when built, so a bad
spec fails in the caller's frame rather than as an Engine 400 later. Outputs
are frozen snapshots parsed from the Engine's answers (see ``_wire``), with
Docker's quirks already smoothed out: no leading ``/`` on names, ``None``
instead of ``0001-01-01T00:00:00Z``, tuples instead of ``null`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "LOOPBACK",
    "ContainerInfo",
    "ContainerSpec",
    "ContainerState",
    "ContainerStats",
    "ContainerSummary",
    "DockerEvent",
    "ExecResult",
    "ImageInfo",
    "LogLine",
    "Mount",
    "MountType",
    "NetworkAttachment",
    "NetworkEndpoint",
    "NetworkInfo",
    "PortBinding",
    "PortProtocol",
    "PublishedPort",
    "StreamName",
    "VolumeInfo",
]

MountType = Literal["bind", "volume", "tmpfs"]
PortProtocol = Literal["tcp", "udp", "sctp"]
StreamName = Literal["stdout", "stderr"]

#: The only host address funade ever publishes container ports on.
LOOPBACK = "127.0.0.1"

# Network modes that are not user-defined networks; aliases only exist on the latter.
_BUILTIN_NETWORK_MODES = frozenset({"bridge", "host", "none", "default"})


@dataclass(frozen=True, slots=True)
class Mount:
    """One filesystem mount of a container (``HostConfig.Mounts``).

    Attributes:
        type: ``bind`` (host path), ``volume`` (named Docker volume; empty
            source means anonymous) or ``tmpfs`` (memory-backed, no source).
        target: Absolute path inside the container.
        source: Host path for ``bind``, volume name for ``volume``.
        read_only: Mount read-only.
        tmpfs_size_bytes: Size limit of a ``tmpfs`` mount.
        tmpfs_mode: Permission bits of a ``tmpfs`` mount's root, e.g. ``0o1777``.
    """

    type: MountType
    target: str
    source: str = ""
    read_only: bool = False
    tmpfs_size_bytes: int | None = None
    tmpfs_mode: int | None = None

    def __post_init__(self) -> None:
        if not self.target.startswith("/"):
            raise ValueError(f"mount target must be an absolute path, got {self.target!r}")
        if self.type == "tmpfs":
            if self.source:
                raise ValueError(f"tmpfs mount at {self.target} cannot have a source")
        elif self.tmpfs_size_bytes is not None or self.tmpfs_mode is not None:
            raise ValueError(f"tmpfs options given for a {self.type} mount at {self.target}")
        if self.type == "bind" and not self.source.startswith("/"):
            raise ValueError(f"bind mount at {self.target} needs an absolute host path")

    @classmethod
    def bind(cls, source: str, target: str, *, read_only: bool = False) -> Mount:
        """Mount the host path ``source`` at ``target``."""
        return cls(type="bind", source=source, target=target, read_only=read_only)

    @classmethod
    def volume(cls, name: str, target: str, *, read_only: bool = False) -> Mount:
        """Mount the named volume ``name`` at ``target``."""
        return cls(type="volume", source=name, target=target, read_only=read_only)

    @classmethod
    def tmpfs(cls, target: str, *, size_bytes: int | None = None, mode: int | None = None) -> Mount:
        """Mount a fresh memory-backed filesystem at ``target``."""
        return cls(type="tmpfs", target=target, tmpfs_size_bytes=size_bytes, tmpfs_mode=mode)


@dataclass(frozen=True, slots=True)
class PortBinding:
    """Publish ``container_port`` on the host's loopback interface.

    There is deliberately no host IP field: funade publishes on ``127.0.0.1``
    only. ``host_port=None`` lets the Engine pick a free port (read it back
    from `ContainerInfo.published_ports`).
    """

    container_port: int
    protocol: PortProtocol = "tcp"
    host_port: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.container_port < 65536:
            raise ValueError(f"container port out of range: {self.container_port}")
        if self.host_port is not None and not 0 < self.host_port < 65536:
            raise ValueError(f"host port out of range: {self.host_port}")


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything funade sets when it creates a container.

    ``None`` and empty collections mean "the image's or Engine's default". The
    restart policy is always ``no`` and auto-remove always off: funade's own
    controllers restart containers and read their exit state.

    Attributes:
        network_mode: ``bridge``/``host``/``none``, ``container:<id>`` to join
            another container's network namespace (a pod's pause container), or
            the name of a user-defined network.
        network_aliases: DNS aliases on the user-defined network named by
            ``network_mode``.
        env: ``KEY=value`` strings.
        extra_hosts: ``hostname:ip`` strings added to ``/etc/hosts``.
        dns_search: Search domains written to ``/etc/resolv.conf`` (``HostConfig.DnsSearch``).
        dns_options: resolver options such as ``ndots:1`` (``HostConfig.DnsOptions``).
        ipc_mode: e.g. ``container:<id>`` to share a pod's IPC namespace.
        pid_mode: e.g. ``container:<id>`` for ``shareProcessNamespace``.
        nano_cpus: CPU limit in 1e-9 CPUs (``limits.cpu``).
        cpu_shares: Relative CPU weight (``requests.cpu``).
        memory: Memory limit in bytes (``limits.memory``).
        memory_swap: Memory plus swap limit; set equal to ``memory`` for no swap.
        memory_reservation: Soft memory limit in bytes (``requests.memory``).
        stop_timeout: Seconds between the stop signal and SIGKILL.
        init: Run Docker's init as PID 1 to reap zombies and forward signals.
    """

    name: str
    image: str
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    env: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    network_mode: str | None = None
    network_aliases: Sequence[str] = ()
    ipc_mode: str | None = None
    pid_mode: str | None = None
    mounts: Sequence[Mount] = ()
    ports: Sequence[PortBinding] = ()
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    readonly_rootfs: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    security_opt: Sequence[str] = ()
    privileged: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    init: bool = False
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    extra_hosts: Sequence[str] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    group_add: Sequence[str] = ()

    def __post_init__(self) -> None:
        # Catch what the Engine would reject with a vaguer 400, and plain
        # strings passed where a list of arguments belongs.
        for attr in (
            "entrypoint",
            "cmd",
            "env",
            "network_aliases",
            "cap_add",
            "cap_drop",
            "security_opt",
            "dns",
            "dns_search",
            "dns_options",
            "extra_hosts",
            "group_add",
        ):
            if isinstance(getattr(self, attr), str):
                raise TypeError(f"ContainerSpec.{attr} must be a list of strings, not a string")
        for item in self.env:
            if "=" not in item:
                raise ValueError(f"env entry {item!r} is not KEY=value")
        mode = self.network_mode or "default"
        shares_namespace = mode.startswith("container:")
        if self.network_aliases and (shares_namespace or mode in _BUILTIN_NETWORK_MODES):
            raise ValueError(f"network aliases need a user-defined network, not network mode {mode!r}")
        if shares_namespace:
            clashes = [
                what
                for what, given in (
                    ("hostname", self.hostname),
                    ("ports", self.ports),
                    ("dns", self.dns),
                    ("dns_search", self.dns_search),
                    ("dns_options", self.dns_options),
                    ("extra_hosts", self.extra_hosts),
                )
                if given
            ]
            if clashes:
                raise ValueError(
                    f"{', '.join(clashes)} cannot be set on a container that joins "
                    f"another's network namespace ({mode}); set them on that container"
                )


@dataclass(frozen=True, slots=True)
class ContainerState:
    """``State`` of an inspected container; timestamps are ``None`` for "never"."""

    status: str
    running: bool
    paused: bool
    restarting: bool
    oom_killed: bool
    dead: bool
    pid: int
    exit_code: int
    error: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """How an inspected container is attached to one network."""

    network_id: str
    ip_address: str
    gateway: str
    mac_address: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A container port the Engine actually bound on the host."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """A container as ``GET /containers/{id}/json`` describes it.

    Attributes:
        image: ID of the image the container runs.
        config_image: The reference it was created with (e.g. ``app:1``).
        networks: Attachments keyed by network name.
    """

    id: str
    name: str
    image: str
    config_image: str
    labels: Mapping[str, str]
    created: datetime | None
    state: ContainerState
    networks: Mapping[str, NetworkAttachment]
    network_mode: str
    published_ports: tuple[PublishedPort, ...]
    user: str
    env: tuple[str, ...]
    tty: bool


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    """A container as ``GET /containers/json`` lists it (cheaper than inspect)."""

    id: str
    names: tuple[str, ...]
    image: str
    image_id: str
    labels: Mapping[str, str]
    state: str
    status: str
    created: datetime


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """One resource sample of a container (``GET /containers/{id}/stats?stream=false&one-shot=true``).

    Attributes:
        read_at: When the Engine took the sample.
        cpu_total_ns: CPU time the container used since it started (a counter: rates come
            from two samples).
        memory_working_set: Memory in use minus the inactive file cache, the figure the
            kubelet reports to metrics-server (cgroup v1 ``total_inactive_file``, v2 ``inactive_file``).
    """

    read_at: datetime | None
    cpu_total_ns: int
    memory_working_set: int


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image as ``GET /images/{name}/json`` describes it."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    user: str
    env: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    working_dir: str
    exposed_ports: tuple[str, ...]
    labels: Mapping[str, str]
    size: int
    created: datetime | None
    platform: str = "linux/amd64"  # os/architecture[/variant] of the image config


@dataclass(frozen=True, slots=True)
class ExecResult:
    """Outcome of a finished exec.

    Attributes:
        exit_code: The command's exit status.
        output: stdout and stderr interleaved in the order the Engine sent them.
        stdout: stdout alone.
        stderr: stderr alone.
    """

    exit_code: int
    output: bytes
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def text(self) -> str:
        """``output`` decoded as UTF-8, undecodable bytes replaced."""
        return self.output.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a container's log, without its line ending.

    ``timestamp`` is set only when the logs were requested with timestamps.
    """

    stream: StreamName
    text: str
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class NetworkEndpoint:
    """A container attached to an inspected network."""

    container_id: str
    name: str
    ipv4_address: str
    mac_address: str


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """A Docker network.

    ``subnet`` and ``gateway`` come from the first IPAM config, if any;
    ``containers`` is only filled by inspect, never by list.
    """

    id: str
    name: str
    driver: str
    scope: str
    internal: bool
    labels: Mapping[str, str]
    subnet: str | None
    gateway: str | None
    containers: Mapping[str, NetworkEndpoint]
    created: datetime | None


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """A Docker volume; volumes are identified by name (they have no separate ID)."""

    name: str
    driver: str
    mountpoint: str
    labels: Mapping[str, str]
    options: Mapping[str, str]
    created: datetime | None


@dataclass(frozen=True, slots=True)
class DockerEvent:
    """One entry of the Engine's event stream, e.g. a container ``die``.

    Attributes:
        type: Object type: ``container``, ``image``, ``network``, ``volume``...
        action: What happened: ``start``, ``die``, ``oom``, ``exec_start: sh -c ...``.
        actor_id: ID of the object.
        actor_attributes: Its labels plus event details (``name``, ``exitCode``...).
        time: When it happened (UTC).
        time_nano: The same instant in nanoseconds since the epoch, exact
            enough to resume a stream with ``since``.
    """

    type: str
    action: str
    actor_id: str
    actor_attributes: Mapping[str, str]
    time: datetime
    time_nano: int
    scope: str = "local"
