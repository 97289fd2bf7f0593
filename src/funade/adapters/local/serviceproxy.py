"""In-cluster Service proxies: one HAProxy container per Service on the pods' network.

Pods reach a Service the way they do in Kubernetes: ``web``, ``web.shop``,
``web.shop.svc`` and ``web.shop.svc.cluster.local``. Docker's embedded DNS answers the
network aliases of containers, so every Service gets a container of its own (its
"ClusterIP") carrying those names as aliases, and a pod's sandbox searches
``<ns>.svc.cluster.local`` first (see `LocalRuntime.create_sandbox`), so a bare name
finds the Service of the pod's own namespace. One container per Service, not one for
all: two Services may both listen on port 80, and only an address of their own tells
them apart for a TCP client.

The container runs the host's own HAProxy from an image funade builds itself, FROM
scratch (Docker Hub may be out of reach): the binary plus the shared libraries ``ldd``
lists, at the same paths, tagged by a hash of their contents so it is built once per
HAProxy version. It is never published, runs as the user funade runs as with no
capability and a read-only root, in master-worker mode. Its configuration, maps and
runtime sockets live in a host directory bind-mounted at ``/funade``, so the host
drives it the way it drives its own HAProxy: runtime-API commands for endpoint and
weight changes, a seamless reload through the master CLI for anything else (listeners
stay open), a start when the container stopped.

State is Docker's: each pass lists the proxies labelled with this home's instance,
adopts what it finds after a server restart (its first change is then a reload: the
plane a running proxy carries is only known once funade applied one), recreates a
proxy whose names or image changed, and removes the proxies of Services that are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from funade.adapters.docker import Conflict, ContainerSpec, ContainerSummary, Docker, DockerError, Mount, NotFound
from funade.adapters.haproxy import CommandError, RuntimeClient, find_binary
from funade.core import services, traffic

from .runtime import MANAGED, NETWORK, ROLE, instance_id

__all__ = ["PROXY_REPO", "ServiceProxies", "ServiceProxyError", "files_of", "image_files"]

PROXY_REPO = "funade/service-proxy"
PROXY_ROLE = "service-proxy"
SERVICE = "funade.service"  # namespace/name
SPEC = "funade.service-proxy.spec"  # hash of what the container was created with
HASH_LABEL = "funade.service-proxy.hash"
MOUNT = "/funade"

_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; keep a margin
_RELOAD_TIMEOUT = 10.0
_PARALLEL = 8  # proxies created or reloaded at once (a server starting with many Services)
_LIB = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


class ServiceProxyError(Exception):
    """A Service's in-cluster proxy could not be built, configured or reloaded."""


def image_files(binary: str) -> dict[str, Path]:
    """What the proxy image holds: path in the image → file on the host (the binary and what ``ldd`` lists).

    Raises:
        ServiceProxyError: ``ldd`` failed or a library is missing.
    """
    try:
        done = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise ServiceProxyError(f"cannot list HAProxy's libraries (ldd {binary}): {exc}") from exc
    if done.returncode != 0:
        raise ServiceProxyError(f"ldd {binary} failed: {done.stderr.strip() or done.stdout.strip()}")
    missing = [line.split()[0] for line in done.stdout.splitlines() if "not found" in line]
    if missing:
        raise ServiceProxyError(f"HAProxy's libraries are missing on this host: {', '.join(missing)}")
    files = {binary: Path(binary)}
    for line in done.stdout.splitlines():
        found = _LIB.search(line)
        if found:
            files[found.group(1)] = Path(found.group(1))
    return files


def _image_tar(files: dict[str, Path]) -> tuple[bytes, str]:
    """The image's root filesystem as a tar, and the sha256 of its contents."""
    digest = hashlib.sha256()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        mount = tarfile.TarInfo(MOUNT.lstrip("/"))
        mount.type, mount.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(mount)
        for path in sorted(files):
            data = files[path].read_bytes()  # symlinks followed: the library itself, at the path ldd names
            digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), digest.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text)
    scratch.replace(path)


def _write_files(plane: traffic.DataPlane, directory: Path, *, seen_at: str) -> None:
    """``plane``'s haproxy.cfg and maps in ``directory``, which HAProxy sees at ``seen_at``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    maps = traffic.render_maps(plane)
    map_dir = directory / "maps"
    map_dir.mkdir(exist_ok=True)
    for name, text in maps.items():
        _atomic_write(map_dir / name, text)
    for stale in map_dir.glob("*.map"):
        if stale.name not in maps:
            stale.unlink()
    config = traffic.render_config(plane, runtime_socket=f"{seen_at}/runtime.sock", map_dir=f"{seen_at}/maps")
    _atomic_write(directory / "haproxy.cfg", config)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def files_of(home: Path) -> Path:
    """Where the proxies of ``home`` keep their files: in the home, or under the temp directory when the
    home's path is too long for their unix sockets (``funade down --delete-workloads`` removes it)."""
    base = home / "service-proxies"
    if len(str(base / ("0" * 16) / "master.sock")) > _MAX_SOCKET_PATH:
        base = Path(tempfile.gettempdir()) / f"funade-svc-{_digest(home.resolve())[:12]}"
    return base


class ServiceProxies:
    """Runs the in-cluster proxies of one funade home (`services.ClusterProxies`).

    Args:
        docker: the Engine the pods run on.
        home: the funade home; each proxy's files go to ``home/service-proxies/<hash>``
            (under the system's temp directory when that path is too long for a socket).
        network: the pods' network.
        binary: the HAProxy to put in the image (default: the host's, `find_binary`).
    """

    def __init__(self, docker: Docker, home: Path, network: str = NETWORK, binary: str | None = None) -> None:
        self.docker = docker
        self.home = home
        self.instance = instance_id(home)
        self.network = network
        self._binary = binary
        self._image: str | None = None
        # What each running proxy carries, when known (set by funade since it started).
        self._applied: dict[str, traffic.DataPlane] = {}
        self.base = files_of(home)

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = str(Path(find_binary()).resolve())
        return self._binary

    def directory(self, ref: str) -> Path:
        """The host directory mounted at ``/funade`` in the proxy of Service ``ref``."""
        return self.base / _digest(ref)[:16]

    def container_name(self, ref: str) -> str:
        namespace, name = ref.split("/", 1)
        return f"funade_svc_{namespace}_{name}_{self.instance[:8]}"

    # -- the image ------------------------------------------------------------------------------

    async def image(self) -> str:
        """The proxy image's reference, built (imported) when this HAProxy has none yet."""
        if self._image is not None:
            return self._image
        files = await asyncio.to_thread(image_files, self.binary)
        tar, digest = await asyncio.to_thread(_image_tar, files)
        ref = f"{PROXY_REPO}:{digest[:16]}"
        if not await self.docker.image_exists(ref):
            repo, tag = ref.rsplit(":", 1)
            await self.docker.import_image(
                tar,
                repo,
                tag,
                changes=[f"LABEL {HASH_LABEL}={digest}", f'CMD ["{self.binary}", "-v"]'],
            )
        self._image = ref
        return ref

    # -- reconciling ----------------------------------------------------------------------------

    async def ensure(self, proxies: Sequence[services.ClusterProxy]) -> list[str]:
        """Run exactly ``proxies``: create, update, reload or restart them; remove the others.

        One proxy failing (a configuration HAProxy refuses, a reload that does not finish)
        does not stop the others; the failures are raised together at the end.
        """
        wanted = {proxy.ref: proxy for proxy in proxies}
        done: list[str] = []
        found: dict[str, ContainerSummary] = {}
        for summary in await self.docker.list_containers(all=True, labels={MANAGED: self.instance, ROLE: PROXY_ROLE}):
            ref = summary.labels.get(SERVICE, "")
            if ref in wanted and ref not in found:
                found[ref] = summary
                continue
            await self.docker.remove(summary.id, force=True, missing_ok=True)
            self._applied.pop(ref, None)
            if ref not in wanted:
                shutil.rmtree(self.directory(ref), ignore_errors=True)
                done.append(f"removed {ref}")
        for ref in set(self._applied) - set(wanted):
            del self._applied[ref]
        self._remove_stale_directories(wanted)
        if wanted:
            await self.image()  # once, before the proxies that need it
        limit = asyncio.Semaphore(_PARALLEL)

        async def one(proxy: services.ClusterProxy) -> str | None:
            async with limit:
                return await self._ensure_one(proxy, found.get(proxy.ref))

        refs = sorted(wanted)
        results = await asyncio.gather(*(one(wanted[ref]) for ref in refs), return_exceptions=True)
        failures = []
        for ref, result in zip(refs, results, strict=True):
            if isinstance(result, ServiceProxyError | traffic.TrafficError | OSError | CommandError | DockerError):
                failures.append(f"{ref}: {result}")
            elif isinstance(result, BaseException):
                raise result
            elif result:
                done.append(f"{result} {ref}")
        if failures:
            raise ServiceProxyError("; ".join(failures))
        return done

    def _remove_stale_directories(self, wanted: Collection[str]) -> None:
        keep = {self.directory(ref).name for ref in wanted}
        if self.base.is_dir():
            for entry in self.base.iterdir():
                if entry.is_dir() and entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True)

    async def _ensure_one(self, proxy: services.ClusterProxy, summary: ContainerSummary | None) -> str | None:
        ref = proxy.ref
        image = await self.image()
        user = f"{os.getuid()}:{os.getgid()}"
        spec_hash = _digest(image, self.network, proxy.aliases, user, self.directory(ref))[:16]
        if summary is not None and summary.labels.get(SPEC) != spec_hash:
            await self.docker.remove(summary.id, force=True, missing_ok=True)
            self._applied.pop(ref, None)
            summary = None
        if summary is None:
            await self._configure(proxy)
            await self._create(proxy, image, user, spec_hash)
            self._applied[ref] = proxy.plane
            return "created"
        if summary.state != "running":
            await self._configure(proxy)
            await self.docker.start(summary.id)
            self._applied[ref] = proxy.plane
            return "started"
        current = self._applied.get(ref)
        if current == proxy.plane:
            return None
        if current is not None:
            commands = traffic.runtime_commands(current, proxy.plane, map_dir=f"{MOUNT}/maps")
            if commands == []:
                self._write(proxy.plane, self.directory(ref))
                self._applied[ref] = proxy.plane
                return None
            if commands is not None:
                try:
                    await RuntimeClient(self.directory(ref) / "runtime.sock").execute(commands)
                except (CommandError, OSError):
                    pass  # e.g. the proxy is still starting: the reload below converges
                else:
                    self._write(proxy.plane, self.directory(ref))
                    self._applied[ref] = proxy.plane
                    return "updated"
        await self._configure(proxy)
        self._applied.pop(ref, None)  # unknown until the reload is through
        await self._reload(self.directory(ref))
        self._applied[ref] = proxy.plane
        return "reloaded"

    async def _create(self, proxy: services.ClusterProxy, image: str, user: str, spec_hash: str) -> None:
        spec = ContainerSpec(
            name=self.container_name(proxy.ref),
            image=image,
            entrypoint=[self.binary, "-W", "-S", f"{MOUNT}/master.sock,mode,600", "-f", f"{MOUNT}/haproxy.cfg"],
            labels={
                MANAGED: self.instance,
                ROLE: PROXY_ROLE,
                SERVICE: proxy.ref,
                SPEC: spec_hash,
            },
            user=user,
            network_mode=self.network,
            network_aliases=list(proxy.aliases),
            mounts=[Mount.bind(str(self.directory(proxy.ref)), MOUNT)],
            readonly_rootfs=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            # Service ports below 1024 without a capability (Docker sets this too since 20.10).
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
            stop_timeout=2,
        )
        try:
            container_id = await self.docker.create_container(spec)
        except NotFound:
            self._image = None  # removed behind funade's back: built again on the next pass
            raise
        except Conflict:
            # A leftover of a crash between create and labelling, or of a container being removed.
            await self.docker.remove(spec.name, force=True, missing_ok=True)
            container_id = await self.docker.create_container(spec)
        await self.docker.start(container_id)

    # -- files ----------------------------------------------------------------------------------

    async def _configure(self, proxy: services.ClusterProxy) -> None:
        """Check the plane with ``haproxy -c`` (host paths), then write it where the container reads it."""
        directory = self.directory(proxy.ref)
        check = directory / "check"
        _write_files(proxy.plane, check, seen_at=str(check))
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            "-f",
            str(check / "haproxy.cfg"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            lines = output.decode(errors="replace").strip().splitlines()
            message = "\n".join([line for line in lines if "[ALERT]" in line] or lines)
            raise ServiceProxyError(f"HAProxy refused the configuration of {proxy.ref}:\n{message}")
        self._write(proxy.plane, directory)

    @staticmethod
    def _write(plane: traffic.DataPlane, directory: Path) -> None:
        """The configuration and maps the container reads (its paths: ``/funade/...``)."""
        _write_files(plane, directory, seen_at=MOUNT)

    # -- the running proxy ----------------------------------------------------------------------

    async def _reload(self, directory: Path) -> None:
        """A seamless reload through the master CLI: a new worker takes the listening sockets over."""
        master = RuntimeClient(directory / "master.sock", timeout=5.0)
        before = await master.proc()
        with contextlib.suppress(OSError):
            await master.raw("reload")  # the master closes the connection as it re-executes
        deadline = time.monotonic() + _RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, CommandError):
                proc = await master.proc()
                if proc.failed_reloads > before.failed_reloads:
                    raise ServiceProxyError("HAProxy could not reload; it runs the previous configuration")
                if proc.reloads > before.reloads and proc.workers and proc.workers[0] not in before.workers:
                    return
            await asyncio.sleep(0.05)
        raise ServiceProxyError(f"HAProxy did not finish reloading within {_RELOAD_TIMEOUT:g}s")

    async def servers(self, refs: Collection[str]) -> dict[str, list[traffic.ServerStatus]]:
        """Per Service among ``refs`` whose proxy funade configured, its servers (``show stat``)."""
        found: dict[str, list[traffic.ServerStatus]] = {}
        for ref in refs:
            if ref not in self._applied:
                continue
            with contextlib.suppress(OSError, CommandError):
                found[ref] = await RuntimeClient(self.directory(ref) / "runtime.sock").servers()
        return found
