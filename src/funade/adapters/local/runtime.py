"""Pods on the local Docker Engine: sandboxes, containers, volumes and probes.

A pod is a pause container (the sandbox) that holds the network namespace, plus one
container per run of each pod container, joined to the sandbox's namespace. Everything
funade needs to rebuild its view after a crash is written on the containers as labels:
the pod object on the sandbox, the container name, its kind and restart count on each
run. Nothing here decides *when* to do anything; the kubelet controller does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from funade.adapters.docker import (
    Conflict,
    ContainerInfo,
    ContainerSpec,
    Docker,
    DockerError,
    LogLine,
    Mount,
    NotFound,
)
from funade.core import quantity, services

__all__ = ["ContainerRun", "LocalRuntime", "Sandbox", "instance_id"]

Obj = dict[str, Any]

MANAGED = "funade.managed"
ROLE = "funade.role"
POD_UID = "funade.pod.uid"
POD_NAME = "funade.pod.name"
POD_NAMESPACE = "funade.pod.namespace"
POD_OBJECT = "funade.pod"
CONTAINER = "funade.container"
CONTAINER_KIND = "funade.container.kind"
RESTARTS = "funade.restarts"

PAUSE_IMAGE = "funade/pause:1"
NETWORK = "funade"
_PAUSE_SCRIPT = "trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 3600 & wait $!; done"


@dataclass(frozen=True)
class Sandbox:
    """A pod's pause container and the pod object it carries."""

    id: str
    pod: Obj
    running: bool
    ip: str
    created: float

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])


@dataclass(frozen=True)
class ContainerRun:
    """One run of one pod container."""

    id: str
    name: str
    kind: str  # "init" | "app"
    restarts: int
    info: ContainerInfo


def instance_id(home: Path) -> str:
    """This funade home's identity, written on every container it creates.

    Two servers with different homes on one Docker Engine never adopt or collect each
    other's pods.
    """
    path = home / "instance-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        home.mkdir(parents=True, exist_ok=True)
        value = os.urandom(6).hex()
        path.write_text(value)
        return value


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _name_part(value: str) -> str:
    return value.replace("/", "-")


class LocalRuntime:
    """Pod-level operations over the Docker Engine."""

    def __init__(self, docker: Docker, home: Path, network: str = NETWORK) -> None:
        self.docker = docker
        self.home = home
        self.instance = instance_id(home)
        self.network = network
        self._http = httpx.AsyncClient(follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    # -- set-up -----------------------------------------------------------------------

    async def prepare(self) -> None:
        """Make sure the pods' network and the pause image exist."""
        await self.docker.ping()
        try:
            await self.docker.inspect_network(self.network)
        except NotFound:
            await self.docker.create_network(self.network, labels={MANAGED: self.instance})
        if not await self.docker.image_exists(PAUSE_IMAGE):
            await self._import_pause_image()

    async def _import_pause_image(self) -> None:
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not Path(busybox).exists():
            raise RuntimeError("busybox-static is needed to make funade's pause image: apt-get install busybox-static")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(busybox, arcname="bin/busybox")
        repo, tag = PAUSE_IMAGE.rsplit(":", 1)
        await self.docker.import_image(
            buf.getvalue(),
            repo,
            tag,
            changes=[f'CMD ["/bin/busybox", "sh", "-c", "{_PAUSE_SCRIPT}"]', "USER 65535:65535"],
        )

    # -- reading live state -----------------------------------------------------------

    async def sandboxes(self) -> list[Sandbox]:
        """Every pod sandbox funade created, running or not."""
        result: list[Sandbox] = []
        for summary in await self.docker.list_containers(all=True, labels={MANAGED: self.instance, ROLE: "sandbox"}):
            try:
                pod = json.loads(summary.labels[POD_OBJECT])
            except (KeyError, ValueError):
                continue
            ip = ""
            running = summary.state == "running"
            if running:
                try:
                    info = await self.docker.inspect_container(summary.id)
                except NotFound:
                    continue
                net = info.networks.get(self.network)
                ip = net.ip_address if net else ""
            result.append(Sandbox(summary.id, pod, running, ip, summary.created.timestamp()))
        return result

    async def sandbox(self, sandbox_id: str) -> Sandbox | None:
        try:
            info = await self.docker.inspect_container(sandbox_id)
        except NotFound:
            return None
        net = info.networks.get(self.network)
        return Sandbox(
            info.id,
            json.loads(info.labels[POD_OBJECT]),
            info.state.running,
            net.ip_address if net else "",
            _ts(info.created) or time.time(),
        )

    async def runs(self, pod_uid: str) -> list[ContainerRun]:
        """Every container run of a pod, oldest first."""
        runs: list[ContainerRun] = []
        for summary in await self.docker.list_containers(
            all=True, labels={MANAGED: self.instance, ROLE: "container", POD_UID: pod_uid}
        ):
            try:
                info = await self.docker.inspect_container(summary.id)
            except NotFound:
                continue
            runs.append(
                ContainerRun(
                    info.id,
                    info.labels[CONTAINER],
                    info.labels.get(CONTAINER_KIND, "app"),
                    int(info.labels.get(RESTARTS, "0")),
                    info,
                )
            )
        runs.sort(key=lambda r: (r.restarts, _ts(r.info.created) or 0.0))
        return runs

    async def orphan_runs(self, known_uids: set[str]) -> list[str]:
        """Containers of pods that no longer have a sandbox."""
        return [
            s.id
            for s in await self.docker.list_containers(all=True, labels={MANAGED: self.instance, ROLE: "container"})
            if s.labels.get(POD_UID) not in known_uids
        ]

    # -- sandboxes --------------------------------------------------------------------

    async def create_sandbox(self, pod: Obj) -> Sandbox:
        """Create and start the pause container that carries ``pod``."""
        meta = pod["metadata"]
        spec = ContainerSpec(
            name=f"funade_{_name_part(meta['namespace'])}_{meta['name']}_{meta['uid'][:8]}_pause",
            image=PAUSE_IMAGE,
            labels={
                MANAGED: self.instance,
                ROLE: "sandbox",
                POD_UID: meta["uid"],
                POD_NAME: meta["name"],
                POD_NAMESPACE: meta["namespace"],
                POD_OBJECT: json.dumps(pod, separators=(",", ":")),
            },
            hostname=str(pod["spec"].get("hostname") or meta["name"])[:63],
            network_mode=self.network,
            network_aliases=[meta["name"]],
            # Containers that join the sandbox share its resolv.conf: `web` is the namespace's Service.
            dns_search=list(services.search_domains(meta["namespace"])),
            dns_options=list(services.DNS_OPTIONS),
            ipc_mode="shareable",
            stop_timeout=1,
        )
        try:
            container_id = await self.docker.create_container(spec)
        except Conflict:
            # Created by an earlier attempt that failed to start it (the name holds the pod's uid).
            container_id = spec.name
        info = await self.docker.inspect_container(container_id)
        if not info.state.running:
            await self.docker.start(info.id)
        sandbox = await self.sandbox(info.id)
        if sandbox is None:
            raise NotFound(404, f"pod sandbox {spec.name} vanished while starting")
        return sandbox

    async def start_sandbox(self, sandbox: Sandbox) -> Sandbox:
        await self.docker.start(sandbox.id)
        again = await self.sandbox(sandbox.id)
        return again or sandbox

    async def remove_pod(self, pod_uid: str, sandbox_id: str) -> None:
        """Remove every container of a pod, its sandbox and its volume files."""
        for run in await self.runs(pod_uid):
            await self.docker.remove(run.id, force=True, volumes=True, missing_ok=True)
        await self.docker.remove(sandbox_id, force=True, missing_ok=True)
        for volume in await self.docker.list_volumes(labels={POD_UID: pod_uid}):
            await self.docker.remove_volume(volume.name, force=True)
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)

    # -- containers -------------------------------------------------------------------

    async def image_user(self, image: str) -> str | None:
        """The image's USER, or None when the image is not present."""
        try:
            return (await self.docker.inspect_image(image)).user
        except NotFound:
            return None

    async def pull(self, image: str) -> None:
        await self.docker.pull(image)

    async def create_run(
        self,
        pod: Obj,
        sandbox: Sandbox,
        container: Obj,
        kind: str,
        restarts: int,
        env: list[str],
        mounts: list[Mount],
        user: str | None,
    ) -> ContainerRun:
        """Create and start one run of ``container`` inside the pod's sandbox."""
        meta = pod["metadata"]
        spec = pod["spec"]
        sc = container.get("securityContext") or {}
        pod_sc = spec.get("securityContext") or {}
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        security_opt: list[str] = []
        if sc.get("allowPrivilegeEscalation") is False:
            security_opt.append("no-new-privileges:true")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined":
            security_opt.append("seccomp=unconfined")
        caps = sc.get("capabilities") or {}
        groups = [str(g) for g in pod_sc.get("supplementalGroups") or []]
        if pod_sc.get("fsGroup") is not None:
            groups.append(str(pod_sc["fsGroup"]))
        memory = quantity.memory_bytes(limits["memory"]) if "memory" in limits else None
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
        name = f"funade_{_name_part(meta['namespace'])}_{meta['name']}_{meta['uid'][:8]}_{container['name']}_{restarts}"
        docker_spec = ContainerSpec(
            name=name,
            image=container["image"],
            entrypoint=container.get("command"),
            cmd=container.get("args") if container.get("command") or container.get("args") else None,
            env=env,
            labels={
                MANAGED: self.instance,
                ROLE: "container",
                POD_UID: meta["uid"],
                POD_NAME: meta["name"],
                POD_NAMESPACE: meta["namespace"],
                CONTAINER: container["name"],
                CONTAINER_KIND: kind,
                RESTARTS: str(restarts),
            },
            user=user,
            working_dir=container.get("workingDir"),
            network_mode=f"container:{sandbox.id}",
            ipc_mode=f"container:{sandbox.id}",
            mounts=mounts,
            nano_cpus=quantity.cpu_millis(limits["cpu"]) * 1_000_000 if "cpu" in limits else None,
            cpu_shares=max(2, quantity.cpu_millis(requests["cpu"]) * 1024 // 1000) if "cpu" in requests else None,
            memory=memory,
            memory_swap=memory,
            memory_reservation=quantity.memory_bytes(requests["memory"]) if "memory" in requests else None,
            readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
            cap_add=list(caps.get("add") or []),
            cap_drop=list(caps.get("drop") or []),
            security_opt=security_opt,
            privileged=bool(sc.get("privileged")),
            stop_timeout=grace,
            group_add=groups,
        )
        try:
            container_id = await self.docker.create_container(docker_spec)
        except Conflict:
            # The name is taken by a leftover of a crash between create and start.
            await self.docker.remove(name, force=True, missing_ok=True)
            container_id = await self.docker.create_container(docker_spec)
        try:
            await self.docker.start(container_id)
        except DockerError:
            # A run that never started is not a run: leave nothing behind to be mistaken for one.
            await self.docker.remove(container_id, force=True, missing_ok=True)
            raise
        info = await self.docker.inspect_container(container_id)
        return ContainerRun(container_id, container["name"], kind, restarts, info)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            return await self.docker.inspect_container(container_id)
        except NotFound:
            return None

    async def stop(self, container_id: str, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        with contextlib.suppress(NotFound):
            await self.docker.stop(container_id, timeout_s=max(0, int(grace)))

    async def remove(self, container_id: str) -> None:
        await self.docker.remove(container_id, force=True, missing_ok=True)

    def logs(self, container_id: str, *, follow: bool, tail: int | None) -> AsyncIterator[LogLine]:
        return self.docker.logs(container_id, follow=follow, tail=tail, since=None, timestamps=False)

    # -- volumes ----------------------------------------------------------------------

    def pod_dir(self, pod_uid: str) -> Path:
        return self.home / "pods" / pod_uid

    async def prepare_volumes(
        self, pod: Obj, configmaps: Mapping[str, Obj], secrets: Mapping[str, Obj]
    ) -> dict[str, tuple[str, str]]:
        """Materialise the pod's volumes; returns name → (mount type, source).

        emptyDir is a world-writable directory (or a tmpfs volume for medium Memory),
        shared by the pod's containers; configMap and secret volumes are files written
        once per pod. Raises LookupError naming a missing ConfigMap or Secret.
        """
        uid = pod["metadata"]["uid"]
        fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
        result: dict[str, tuple[str, str]] = {}
        for volume in pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.pod_dir(uid) / "volumes" / name
            if "emptyDir" in volume:
                empty = volume["emptyDir"] or {}
                if empty.get("medium") == "Memory":
                    vol_name = f"funade_{uid[:12]}_{name}"
                    size = empty.get("sizeLimit")
                    opts = {"type": "tmpfs", "device": "tmpfs", "o": "mode=1777"}
                    if size:
                        opts["o"] += f",size={quantity.memory_bytes(size)}"
                    await self.docker.create_volume(
                        vol_name, labels={MANAGED: self.instance, POD_UID: uid}, driver_opts=opts
                    )
                    result[name] = ("volume", vol_name)
                    continue
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)
                result[name] = ("bind", str(target))
            elif "configMap" in volume or "secret" in volume:
                is_secret = "secret" in volume
                source = volume["secret"] if is_secret else volume["configMap"]
                ref = source.get("secretName") if is_secret else source.get("name")
                found = (secrets if is_secret else configmaps).get(ref or "")
                if found is None:
                    if source.get("optional"):
                        files: dict[str, bytes] = {}
                    else:
                        what = "secret" if is_secret else "configmap"
                        raise LookupError(f'{what} "{ref}" not found')
                elif is_secret:
                    files = {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}
                else:
                    files = {k: str(v).encode() for k, v in (found.get("data") or {}).items()}
                    files.update({k: base64.b64decode(v) for k, v in (found.get("binaryData") or {}).items()})
                default_mode = int(source.get("defaultMode", 0o644))
                modes = dict.fromkeys(files, default_mode)
                items = source.get("items")
                if items:
                    files = {i["path"]: files[i["key"]] for i in items if i["key"] in files}
                    modes = {i["path"]: int(i.get("mode", default_mode)) for i in items}
                if target.exists():
                    shutil.rmtree(target)
                target.mkdir(parents=True)
                target.chmod(0o755)
                for rel, content in files.items():
                    path = target / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
                    mode = modes.get(rel, default_mode)
                    if fs_group is not None:
                        # As the kubelet does with fsGroup: the group owns the files and may read them.
                        os.chown(path, -1, fs_group)
                        mode |= 0o440
                    os.chmod(path, mode)
                result[name] = ("bind", str(target))
            else:
                kinds = sorted(k for k in volume if k != "name")
                raise ValueError(f"volume {name!r}: {', '.join(kinds)} volumes are not supported on the local target")
        return result

    # -- probes and handlers ----------------------------------------------------------

    async def http_get(self, url: str, headers: Mapping[str, str], timeout: float) -> tuple[bool, str]:
        try:
            response = await self._http.get(url, headers=dict(headers), timeout=timeout)
        except httpx.TimeoutException:
            return False, f'Get "{url}": context deadline exceeded'
        except httpx.HTTPError as exc:
            return False, f'Get "{url}": {exc}'
        if 200 <= response.status_code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {response.status_code}"

    async def tcp_connect(self, host: str, port: int, timeout: float) -> tuple[bool, str]:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            return False, f"dial tcp {host}:{port}: {exc or 'i/o timeout'}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, ""

    async def exec(self, container_id: str, command: list[str], timeout: float) -> tuple[bool, str]:
        try:
            result = await self.docker.exec(container_id, command, timeout_s=timeout)
        except TimeoutError:
            return False, f"command timed out after {timeout:g}s"
        except NotFound:
            return False, "container is gone"
        if result.exit_code == 0:
            return True, ""
        return False, f"command {command!r} exited with {result.exit_code}: {result.text.strip()[:200]}"
