"""Integration tests of the Docker Engine client against the real local Engine.

No registry access is assumed: the module imports a tiny image built in Python
from the static busybox binary. Everything created is named
``funade-it-docker-<run>-...`` and labelled with the run ID, and is swept after
every test, pass or fail.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, TypeVar

import pytest

from funade.adapters.docker import (
    LOOPBACK,
    ContainerSpec,
    ContainerStats,
    DockerClient,
    DockerEvent,
    ImagePullError,
    LogLine,
    Mount,
    NotFound,
    PortBinding,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")

RUN_ID = uuid.uuid4().hex[:8]
PREFIX = f"funade-it-docker-{RUN_ID}"
RUN_LABEL = "funade-it-docker.run"
LABELS = {RUN_LABEL: RUN_ID}
IMAGE_REPO = f"funade-it-docker-busybox-{RUN_ID}"
IMAGE = f"{IMAGE_REPO}:1"
BUSYBOX = Path("/bin/busybox")


def run(coro: Coroutine[Any, Any, T], deadline_s: float = 60) -> T:
    """Run one scenario on a fresh loop, failing rather than hanging past the deadline."""

    async def bounded() -> T:
        async with asyncio.timeout(deadline_s):
            return await coro

    return asyncio.run(bounded())


def busybox_rootfs() -> bytes:
    """A root filesystem tar: static busybox plus a symlink per applet."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "etc", "root", "proc", "sys", "dev"):
            add_dir(directory)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
                tar.addfile(link)
        add_file(
            "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        )
        add_file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    return buffer.getvalue()


async def sweep() -> None:
    """Remove everything this run labelled, whatever state the test left it in."""
    async with DockerClient() as engine:
        for container in await engine.list_containers(labels=LABELS):
            await engine.remove(container.id, force=True, volumes=True, missing_ok=True)
        for network in await engine.list_networks(labels=LABELS):
            await engine.remove_network(network.id, missing_ok=True)
        for volume in await engine.list_volumes(labels=LABELS):
            await engine.remove_volume(volume.name, force=True, missing_ok=True)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    async def build() -> str:
        async with DockerClient() as engine:
            return await engine.import_image(
                busybox_rootfs(),
                IMAGE_REPO,
                "1",
                changes=['CMD ["/bin/sh"]', "ENV FUNADE_IT=1", "WORKDIR /root"],
            )

    async def remove() -> None:
        await sweep()
        async with DockerClient() as engine:
            await engine.remove_image(IMAGE, force=True, missing_ok=True)

    try:
        run(build())
        yield IMAGE
    finally:
        run(remove())


@pytest.fixture(autouse=True)
def _sweep_after_each_test() -> Iterator[None]:
    yield
    run(sweep())


def spec(image: str, suffix: str, **overrides: Any) -> ContainerSpec:
    fields: dict[str, Any] = {"cmd": ["sleep", "300"], "labels": LABELS, **overrides}
    return ContainerSpec(name=f"{PREFIX}-{suffix}", image=image, **fields)


async def started(engine: DockerClient, container: ContainerSpec) -> str:
    container_id = await engine.create_container(container)
    await engine.start(container_id)
    return container_id


def test_imported_image_carries_the_changes(image: str) -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            info = await engine.inspect_image(image)
            assert image in info.repo_tags
            assert info.cmd == ("/bin/sh",)
            assert "FUNADE_IT=1" in info.env
            assert info.working_dir == "/root"
            arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
            assert info.platform == f"linux/{arch}"  # docker import makes an image for the engine's own platform
            assert await engine.image_exists(image)

    run(scenario())


def test_container_on_user_network_lifecycle(image: str) -> None:
    network = f"{PREFIX}-net"

    async def scenario() -> None:
        async with DockerClient() as engine:
            await engine.create_network(network, LABELS)
            container_id = await started(
                engine,
                spec(
                    image,
                    "web",
                    labels={**LABELS, "role": "web"},
                    network_mode=network,
                    network_aliases=["web"],
                    ports=[PortBinding(8080)],
                ),
            )

            info = await engine.inspect_container(container_id)
            assert info.name == f"{PREFIX}-web"
            assert info.config_image == image
            assert info.labels["role"] == "web"
            assert info.state.running and info.state.status == "running"
            assert info.state.started_at is not None
            assert info.state.finished_at is None
            attachment = info.networks[network]
            assert attachment.ip_address
            assert "web" in attachment.aliases
            assert [(p.container_port, p.host_ip) for p in info.published_ports] == [
                (8080, LOOPBACK)
            ]

            net = await engine.inspect_network(network)
            assert net.labels == LABELS
            assert net.subnet and net.gateway
            assert container_id in net.containers
            assert [n.name for n in await engine.list_networks(LABELS)] == [network]

            listed = await engine.list_containers(labels={RUN_LABEL: RUN_ID, "role": None})
            assert [c.id for c in listed] == [container_id]
            assert listed[0].names == (f"{PREFIX}-web",)
            assert await engine.list_containers(labels={RUN_LABEL: "someone-else"}) == []

            # sleep as PID 1 ignores SIGTERM, so the stop timeout ends in SIGKILL.
            await engine.stop(container_id, timeout_s=1)
            stopped = await engine.inspect_container(container_id)
            assert not stopped.state.running
            assert stopped.state.exit_code == 137
            assert stopped.state.finished_at is not None

    run(scenario())


def test_exec_output_exit_code_and_timeout(image: str) -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            container_id = await started(engine, spec(image, "exec"))

            result = await engine.exec(
                container_id,
                ["sh", "-c", 'echo "out $GREETING"; echo err >&2; exit 3'],
                timeout_s=10,
                env=["GREETING=hello"],
            )
            assert result.exit_code == 3
            assert result.stdout == b"out hello\n"
            assert result.stderr == b"err\n"
            assert sorted(result.text.splitlines()) == ["err", "out hello"]

            whoami = await engine.exec(container_id, ["id", "-u"], timeout_s=10, user="65534")
            assert (whoami.exit_code, whoami.output) == (0, b"65534\n")

            with pytest.raises(TimeoutError):
                await engine.exec(container_id, ["sleep", "30"], timeout_s=0.5)

    run(scenario())


def test_logs_carry_stdout_and_stderr_lines(image: str) -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            container_id = await started(
                engine,
                spec(image, "logs", cmd=["sh", "-c", "echo out1; echo err1 >&2; echo out2"]),
            )
            assert await engine.wait(container_id) == 0

            lines = [line async for line in engine.logs(container_id)]
            assert [line for line in lines if line.stream == "stdout"] == [
                LogLine("stdout", "out1"),
                LogLine("stdout", "out2"),
            ]
            assert [line for line in lines if line.stream == "stderr"] == [
                LogLine("stderr", "err1")
            ]

            # follow on a stopped container ends once the log is drained.
            stamped = [
                line async for line in engine.logs(container_id, follow=True, timestamps=True)
            ]
            assert sorted(line.text for line in stamped) == ["err1", "out1", "out2"]
            assert all(line.timestamp is not None for line in stamped)

            # The Engine applies tail before the stream filter, and stderr can land last.
            tail = [line.text async for line in engine.logs(container_id, tail=1)]
            assert len(tail) == 1
            assert tail[0] in {"out2", "err1"}

    run(scenario())


def test_events_stream_reports_container_die(image: str) -> None:
    async def scenario() -> DockerEvent:
        async with DockerClient() as engine:
            container_id = await started(engine, spec(image, "events"))
            since = time.time()
            await engine.kill(container_id)
            # `since` replays the die even if it happened before the stream opened.
            events = engine.events(
                {"type": ["container"], "event": ["die"], "container": [container_id]},
                since=since - 1,
            )
            async with aclosing(events) as stream:
                async for event in stream:
                    if event.actor_id == container_id:
                        return event
            raise AssertionError("event stream ended without a die event")

    event = run(scenario(), deadline_s=30)
    assert event.action == "die"
    assert event.actor_attributes["exitCode"] == "137"
    assert event.actor_attributes["name"] == f"{PREFIX}-events"


def test_pull_of_unreachable_image_raises_image_pull_error() -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            await engine.pull("localhost:1/nope:1")

    with pytest.raises(ImagePullError, match="localhost:1/nope:1") as caught:
        run(scenario())
    assert caught.value.message.startswith("cannot pull localhost:1/nope:1: ")
    assert len(caught.value.message) > len("cannot pull localhost:1/nope:1: ")


def test_create_with_missing_image_raises_not_found() -> None:
    missing = f"{PREFIX}-missing:never"

    async def scenario() -> None:
        async with DockerClient() as engine:
            await engine.create_container(spec(missing, "missing"))

    with pytest.raises(NotFound, match=missing):
        run(scenario())


def test_tmpfs_size_and_readonly_rootfs(image: str) -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            container_id = await started(
                engine,
                spec(
                    image,
                    "fs",
                    readonly_rootfs=True,
                    mounts=[Mount.tmpfs("/scratch", size_bytes=2 * 1024 * 1024, mode=0o1777)],
                ),
            )
            mounts = await engine.exec(container_id, ["cat", "/proc/mounts"], timeout_s=10)
            scratch = [line for line in mounts.text.splitlines() if " /scratch " in line]
            assert len(scratch) == 1
            assert scratch[0].split()[2] == "tmpfs"
            assert "size=2048k" in scratch[0]

            writable = await engine.exec(container_id, ["touch", "/scratch/ok"], timeout_s=10)
            assert writable.exit_code == 0
            readonly = await engine.exec(container_id, ["touch", "/root/nope"], timeout_s=10)
            assert readonly.exit_code != 0
            assert "Read-only file system" in readonly.text

    run(scenario())


def test_volumes_are_created_listed_and_removed() -> None:
    name = f"{PREFIX}-vol"

    async def scenario() -> None:
        async with DockerClient() as engine:
            options = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
            created = await engine.create_volume(name, LABELS, driver_opts=options)
            assert (created.name, created.driver, created.labels) == (name, "local", LABELS)
            assert (await engine.inspect_volume(name)).options == options
            assert [v.name for v in await engine.list_volumes(LABELS)] == [name]
            await engine.remove_volume(name)
            assert await engine.list_volumes(LABELS) == []
            with pytest.raises(NotFound):
                await engine.remove_volume(name)
            await engine.remove_volume(name, missing_ok=True)

    run(scenario())


def test_stats_count_cpu_time_and_memory_of_a_busy_container(image: str) -> None:
    async def scenario() -> None:
        async with DockerClient() as engine:
            busy = spec(image, "busy", cmd=["sh", "-c", "while :; do :; done"])
            container_id = await started(engine, busy)
            try:
                first = await engine.stats(container_id)
                deadline = time.monotonic() + 30
                while (second := await engine.stats(container_id)).cpu_total_ns - first.cpu_total_ns < 200_000_000:
                    assert time.monotonic() < deadline, "the busy loop used under 0.2 s of CPU in 30 s"
                    await asyncio.sleep(0.1)
                assert first.read_at is not None and second.read_at is not None and second.read_at > first.read_at
                assert 0 < second.memory_working_set < 64 << 20  # a shell loop: some KiB, not the page cache
            finally:
                await engine.remove(container_id, force=True)
            stopped = await engine.create_container(spec(image, "idle"))
            try:
                assert await engine.stats(stopped) == ContainerStats(None, 0, 0)  # never started: zeros
            finally:
                await engine.remove(stopped, force=True)

    run(scenario())
