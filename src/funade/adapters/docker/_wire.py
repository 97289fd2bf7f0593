"""Translation between funade's typed values and the Engine's JSON.

Pure functions, no I/O: the client in ``engine`` sends what these build and
hands what it receives to these parsers, so the mapping can be unit-tested
byte for byte. The accessors tolerate Docker's habit of sending ``null`` for
empty lists and maps, and of omitting fields older API versions lack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from ._models import (
    LOOPBACK,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerSummary,
    DockerEvent,
    ImageInfo,
    Mount,
    NetworkAttachment,
    NetworkEndpoint,
    NetworkInfo,
    PublishedPort,
    VolumeInfo,
)

__all__ = [
    "JsonObject",
    "container_create_body",
    "label_filters",
    "parse_container_info",
    "parse_container_summary",
    "parse_event",
    "parse_image_info",
    "parse_network_info",
    "parse_time",
    "parse_volume_info",
    "split_image_ref",
]

JsonObject = Mapping[str, object]

_EMPTY: JsonObject = {}


# --- accessors over untyped JSON -------------------------------------------------------


def as_object(value: object) -> JsonObject:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else _EMPTY


def get_obj(d: JsonObject, key: str) -> JsonObject:
    return as_object(d.get(key))


def get_str(d: JsonObject, key: str, default: str = "") -> str:
    value = d.get(key)
    return value if isinstance(value, str) else default


def get_int(d: JsonObject, key: str, default: int = 0) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def get_bool(d: JsonObject, key: str) -> bool:
    return d.get(key) is True


def get_strs(d: JsonObject, key: str) -> tuple[str, ...]:
    value = d.get(key)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def get_opt_strs(d: JsonObject, key: str) -> tuple[str, ...] | None:
    """A list of strings, or ``None`` when the field is absent or null ("use the default")."""
    value = d.get(key)
    if isinstance(value, str):  # the Engine accepts and may echo a plain string
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return None


def get_str_map(d: JsonObject, key: str) -> dict[str, str]:
    return {k: v for k, v in get_obj(d, key).items() if isinstance(v, str)}


def error_message(body: bytes, fallback: str) -> str:
    """The ``message`` of an Engine error body, or the raw body, or ``fallback``."""
    try:
        message = get_str(as_object(json.loads(body)), "message")
    except ValueError:
        message = ""
    if message:
        return message
    text = body.decode("utf-8", errors="replace").strip()
    return text or fallback


# --- time ------------------------------------------------------------------------------

_TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def parse_time(text: str) -> datetime | None:
    """Parse the Engine's RFC 3339 timestamps (nanosecond precision) to aware UTC.

    Returns ``None`` for the empty string, for Go's zero time
    ``0001-01-01T00:00:00Z`` (Docker's "never") and for anything unparsable.
    """
    match = _TIME_RE.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if year <= 1:
        return None
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    zone = match.group(8) or "Z"
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        stamp = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError:
        return None
    return stamp.astimezone(UTC)


def format_since(seconds: float) -> str:
    """Format an epoch time the way the Engine's ``since``/``until`` accept it."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    return f"{whole}.{min(nanos, 999_999_999):09d}"


# --- inputs ----------------------------------------------------------------------------


def label_filters(labels: Mapping[str, str | None] | None) -> list[str]:
    """Engine ``label`` filter terms: ``key=value``, or ``key`` for "has the label"."""
    if not labels:
        return []
    return [key if value is None else f"{key}={value}" for key, value in labels.items()]


def encode_filters(filters: Mapping[str, list[str]]) -> str | None:
    """The ``filters`` query parameter, or ``None`` when there is nothing to filter on."""
    kept = {key: values for key, values in filters.items() if values}
    return json.dumps(kept, sort_keys=True) if kept else None


def split_image_ref(ref: str) -> tuple[str, str]:
    """Split an image reference into the repository and the tag or digest to pull.

    A colon only starts a tag after the last ``/``, so a registry port is part of
    the repository (``localhost:5000/app:1`` → ``("localhost:5000/app", "1")``).
    A missing tag means ``latest``: the Engine would otherwise pull every tag.
    """
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        # name:tag@digest: the digest wins, as in `docker pull`.
        colon = repo.rfind(":")
        if colon > repo.rfind("/"):
            repo = repo[:colon]
        return repo, digest
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def _user_network(mode: str | None) -> str | None:
    if mode is None or mode.startswith("container:"):
        return None
    if mode in {"bridge", "host", "none", "default"}:
        return None
    return mode


def _mount_json(mount: Mount) -> dict[str, object]:
    body: dict[str, object] = {
        "Type": mount.type,
        "Target": mount.target,
        "ReadOnly": mount.read_only,
    }
    if mount.type != "tmpfs":
        body["Source"] = mount.source
    else:
        tmpfs: dict[str, object] = {}
        if mount.tmpfs_size_bytes is not None:
            tmpfs["SizeBytes"] = mount.tmpfs_size_bytes
        if mount.tmpfs_mode is not None:
            tmpfs["Mode"] = mount.tmpfs_mode
        if tmpfs:
            body["TmpfsOptions"] = tmpfs
    return body


def container_create_body(spec: ContainerSpec) -> dict[str, object]:
    """The ``POST /containers/create`` body for ``spec`` (the name goes in the query)."""
    exposed: dict[str, object] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in spec.ports:
        key = f"{port.container_port}/{port.protocol}"
        exposed[key] = {}
        host_port = "" if port.host_port is None else str(port.host_port)
        bindings.setdefault(key, []).append({"HostIp": LOOPBACK, "HostPort": host_port})

    host: dict[str, object] = {
        "AutoRemove": False,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "ReadonlyRootfs": spec.readonly_rootfs,
        "Privileged": spec.privileged,
        "Init": spec.init,
        "PublishAllPorts": False,
    }
    optional_host: dict[str, object | None] = {
        "NetworkMode": spec.network_mode,
        "IpcMode": spec.ipc_mode,
        "PidMode": spec.pid_mode,
        "NanoCpus": spec.nano_cpus,
        "CpuShares": spec.cpu_shares,
        "Memory": spec.memory,
        "MemorySwap": spec.memory_swap,
        "MemoryReservation": spec.memory_reservation,
        "Mounts": [_mount_json(m) for m in spec.mounts] or None,
        "PortBindings": bindings or None,
        "CapAdd": list(spec.cap_add) or None,
        "CapDrop": list(spec.cap_drop) or None,
        "SecurityOpt": list(spec.security_opt) or None,
        "Dns": list(spec.dns) or None,
        "DnsSearch": list(spec.dns_search) or None,
        "DnsOptions": list(spec.dns_options) or None,
        "ExtraHosts": list(spec.extra_hosts) or None,
        "Sysctls": dict(spec.sysctls) or None,
        "GroupAdd": list(spec.group_add) or None,
    }
    host.update({k: v for k, v in optional_host.items() if v is not None})

    body: dict[str, object] = {
        "Image": spec.image,
        "Env": list(spec.env),
        "Labels": dict(spec.labels),
        "Tty": False,
        "OpenStdin": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": host,
    }
    optional: dict[str, object | None] = {
        "Entrypoint": None if spec.entrypoint is None else list(spec.entrypoint),
        "Cmd": None if spec.cmd is None else list(spec.cmd),
        "User": spec.user,
        "WorkingDir": spec.working_dir,
        "Hostname": spec.hostname,
        "StopSignal": spec.stop_signal,
        "StopTimeout": spec.stop_timeout,
        "ExposedPorts": exposed or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})

    network = _user_network(spec.network_mode)
    if network is not None and spec.network_aliases:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: {"Aliases": list(spec.network_aliases)}}}
    return body


# --- outputs ---------------------------------------------------------------------------


def _parse_state(d: JsonObject) -> ContainerState:
    return ContainerState(
        status=get_str(d, "Status"),
        running=get_bool(d, "Running"),
        paused=get_bool(d, "Paused"),
        restarting=get_bool(d, "Restarting"),
        oom_killed=get_bool(d, "OOMKilled"),
        dead=get_bool(d, "Dead"),
        pid=get_int(d, "Pid"),
        exit_code=get_int(d, "ExitCode"),
        error=get_str(d, "Error"),
        started_at=parse_time(get_str(d, "StartedAt")),
        finished_at=parse_time(get_str(d, "FinishedAt")),
    )


def _parse_ports(d: JsonObject) -> tuple[PublishedPort, ...]:
    published: list[PublishedPort] = []
    for key, bound in d.items():
        port, _, protocol = key.partition("/")
        if not isinstance(bound, list) or not port.isdigit():
            continue
        for entry in bound:
            host_port = get_str(as_object(entry), "HostPort")
            if host_port.isdigit():
                published.append(
                    PublishedPort(
                        container_port=int(port),
                        protocol=protocol or "tcp",
                        host_ip=get_str(as_object(entry), "HostIp"),
                        host_port=int(host_port),
                    )
                )
    return tuple(published)


def parse_container_stats(d: JsonObject) -> ContainerStats:
    """Parse a one-shot ``GET /containers/{id}/stats``."""
    cpu = get_obj(get_obj(d, "cpu_stats"), "cpu_usage")
    memory = get_obj(d, "memory_stats")
    stats = get_obj(memory, "stats")
    inactive = (
        get_int(stats, "total_inactive_file") if "total_inactive_file" in stats else get_int(stats, "inactive_file")
    )
    usage = get_int(memory, "usage")
    return ContainerStats(
        read_at=parse_time(get_str(d, "read")),
        cpu_total_ns=get_int(cpu, "total_usage"),
        memory_working_set=max(0, usage - inactive),
    )


def parse_container_info(d: JsonObject) -> ContainerInfo:
    """Parse ``GET /containers/{id}/json``."""
    config = get_obj(d, "Config")
    settings = get_obj(d, "NetworkSettings")
    networks = {
        name: NetworkAttachment(
            network_id=get_str(as_object(net), "NetworkID"),
            ip_address=get_str(as_object(net), "IPAddress"),
            gateway=get_str(as_object(net), "Gateway"),
            mac_address=get_str(as_object(net), "MacAddress"),
            aliases=get_strs(as_object(net), "Aliases"),
        )
        for name, net in get_obj(settings, "Networks").items()
    }
    return ContainerInfo(
        id=get_str(d, "Id"),
        name=get_str(d, "Name").lstrip("/"),
        image=get_str(d, "Image"),
        config_image=get_str(config, "Image"),
        labels=get_str_map(config, "Labels"),
        created=parse_time(get_str(d, "Created")),
        state=_parse_state(get_obj(d, "State")),
        networks=networks,
        network_mode=get_str(get_obj(d, "HostConfig"), "NetworkMode"),
        published_ports=_parse_ports(get_obj(settings, "Ports")),
        user=get_str(config, "User"),
        env=get_strs(config, "Env"),
        tty=get_bool(config, "Tty"),
    )


def parse_container_summary(d: JsonObject) -> ContainerSummary:
    """Parse one entry of ``GET /containers/json``."""
    return ContainerSummary(
        id=get_str(d, "Id"),
        names=tuple(name.lstrip("/") for name in get_strs(d, "Names")),
        image=get_str(d, "Image"),
        image_id=get_str(d, "ImageID"),
        labels=get_str_map(d, "Labels"),
        state=get_str(d, "State"),
        status=get_str(d, "Status"),
        created=datetime.fromtimestamp(get_int(d, "Created"), UTC),
    )


def parse_image_info(d: JsonObject) -> ImageInfo:
    """Parse ``GET /images/{name}/json``."""
    config = get_obj(d, "Config")
    return ImageInfo(
        id=get_str(d, "Id"),
        repo_tags=get_strs(d, "RepoTags"),
        repo_digests=get_strs(d, "RepoDigests"),
        user=get_str(config, "User"),
        env=get_strs(config, "Env"),
        entrypoint=get_opt_strs(config, "Entrypoint"),
        cmd=get_opt_strs(config, "Cmd"),
        working_dir=get_str(config, "WorkingDir"),
        exposed_ports=tuple(sorted(get_obj(config, "ExposedPorts"))),
        labels=get_str_map(config, "Labels"),
        size=get_int(d, "Size"),
        created=parse_time(get_str(d, "Created")),
        platform="/".join(
            part for part in (get_str(d, "Os"), get_str(d, "Architecture"), get_str(d, "Variant")) if part
        ),
    )


def parse_network_info(d: JsonObject) -> NetworkInfo:
    """Parse ``GET /networks/{id}`` or one entry of ``GET /networks``."""
    ipam_configs = get_obj(d, "IPAM").get("Config")
    first = as_object(ipam_configs[0]) if isinstance(ipam_configs, list) and ipam_configs else {}
    containers = {
        container_id: NetworkEndpoint(
            container_id=container_id,
            name=get_str(as_object(ep), "Name"),
            ipv4_address=get_str(as_object(ep), "IPv4Address"),
            mac_address=get_str(as_object(ep), "MacAddress"),
        )
        for container_id, ep in get_obj(d, "Containers").items()
    }
    return NetworkInfo(
        id=get_str(d, "Id"),
        name=get_str(d, "Name"),
        driver=get_str(d, "Driver"),
        scope=get_str(d, "Scope"),
        internal=get_bool(d, "Internal"),
        labels=get_str_map(d, "Labels"),
        subnet=get_str(first, "Subnet") or None,
        gateway=get_str(first, "Gateway") or None,
        containers=containers,
        created=parse_time(get_str(d, "Created")),
    )


def parse_volume_info(d: JsonObject) -> VolumeInfo:
    """Parse ``GET /volumes/{name}``, ``POST /volumes/create`` or a list entry."""
    return VolumeInfo(
        name=get_str(d, "Name"),
        driver=get_str(d, "Driver"),
        mountpoint=get_str(d, "Mountpoint"),
        labels=get_str_map(d, "Labels"),
        options=get_str_map(d, "Options"),
        created=parse_time(get_str(d, "CreatedAt")),
    )


def parse_event(d: JsonObject) -> DockerEvent:
    """Parse one message of ``GET /events``."""
    actor = get_obj(d, "Actor")
    time_nano = get_int(d, "timeNano") or get_int(d, "time") * 1_000_000_000
    seconds, nanos = divmod(time_nano, 1_000_000_000)
    return DockerEvent(
        type=get_str(d, "Type"),
        # "status" is the pre-1.22 name of "Action"; some events still only carry it.
        action=get_str(d, "Action") or get_str(d, "status"),
        actor_id=get_str(actor, "ID") or get_str(d, "id"),
        actor_attributes=get_str_map(actor, "Attributes"),
        time=datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000),
        time_nano=time_nano,
        scope=get_str(d, "scope", "local"),
    )
