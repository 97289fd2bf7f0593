"""Unit tests of the Docker Engine client against `httpx.MockTransport`.

They pin down the wire behaviour the controllers rely on without a running
Engine: version negotiation, error mapping, the multiplexed stream format,
in-band pull errors and the exact container-create JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from funade.adapters.docker import (
    Conflict,
    ContainerSpec,
    ContainerStats,
    DockerClient,
    DockerError,
    DockerUnavailable,
    FakeDocker,
    ImagePullError,
    ImagePushError,
    LogLine,
    Mount,
    NotFound,
    PortBinding,
    split_image_ref,
)

pytestmark = pytest.mark.unit

T = TypeVar("T")
Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeEngine:
    """Route requests by (method, path without the version prefix) and record them."""

    def __init__(self, api_version: str = "1.41") -> None:
        self.api_version = api_version
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def reply(self, method: str, path: str, status: int, body: object = None) -> None:
        self.on(method, path, lambda _req: httpx.Response(status, json=body))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/version":
            return httpx.Response(
                200,
                json={"Version": "99.0", "ApiVersion": self.api_version, "Os": "linux"},
            )
        path = re.sub(r"^/v\d+\.\d+/", "/", path)
        handler = self.routes.get((request.method, path))
        if handler is None:
            return httpx.Response(404, json={"message": f"page not found: {path}"})
        result = handler(request)
        return result if isinstance(result, httpx.Response) else await result

    def engine(self, **kwargs: Any) -> DockerClient:
        return DockerClient(transport=httpx.MockTransport(self), **kwargs)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(lines: AsyncIterator[LogLine]) -> list[LogLine]:
    return [line async for line in lines]


def json_lines(messages: Iterable[object]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\r\n" for m in messages)


# --- version negotiation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "used"), [("1.41", "1.41"), ("1.43", "1.43"), ("1.45", "1.43"), ("1.9", "1.9")]
)
def test_negotiates_lower_of_server_and_client_version(server: str, used: str) -> None:
    fake = FakeEngine(api_version=server)
    fake.reply("GET", "/containers/json", 200, [])

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.list_containers()
            await engine.list_containers()
            assert engine.api_version == used

    run(scenario())
    assert fake.paths() == ["/version", f"/v{used}/containers/json", f"/v{used}/containers/json"]


def test_version_is_negotiated_once_under_concurrency() -> None:
    fake = FakeEngine()
    fake.reply("GET", "/containers/json", 200, [])

    async def scenario() -> None:
        async with fake.engine() as engine:
            await asyncio.gather(*(engine.list_containers() for _ in range(5)))

    run(scenario())
    assert fake.paths().count("/version") == 1


def test_pinned_api_version_skips_negotiation() -> None:
    fake = FakeEngine()
    fake.reply("GET", "/containers/json", 200, [])

    async def scenario() -> None:
        async with fake.engine(api_version="1.40") as engine:
            await engine.list_containers()

    run(scenario())
    assert fake.paths() == ["/v1.40/containers/json"]


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"), [(404, NotFound), (409, Conflict), (500, DockerError), (400, DockerError)]
)
def test_http_errors_map_to_exceptions_with_engine_message(
    status: int, kind: type[DockerError]
) -> None:
    fake = FakeEngine()
    fake.reply("POST", "/containers/abc/start", status, {"message": "the engine says no"})

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.start("abc")

    with pytest.raises(DockerError) as caught:
        run(scenario())
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.message == "the engine says no"
    assert "the engine says no" in str(caught.value)


def test_error_without_json_body_keeps_the_text() -> None:
    fake = FakeEngine()
    fake.on("GET", "/containers/abc/json", lambda _r: httpx.Response(500, text="boom\n"))

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.inspect_container("abc")

    with pytest.raises(DockerError, match="boom"):
        run(scenario())


def test_remove_missing_ok_ignores_not_found_only() -> None:
    fake = FakeEngine()
    fake.reply("DELETE", "/containers/gone", 404, {"message": "No such container: gone"})
    fake.reply("DELETE", "/containers/busy", 409, {"message": "removal in progress"})

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.remove("gone", missing_ok=True)
            with pytest.raises(NotFound, match="No such container"):
                await engine.remove("gone")
            with pytest.raises(Conflict):
                await engine.remove("busy", missing_ok=True)

    run(scenario())


def test_create_with_missing_image_raises_not_found_naming_it() -> None:
    fake = FakeEngine()
    fake.reply("POST", "/containers/create", 404, {"message": "No such image: app:1"})

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.create_container(ContainerSpec(name="c", image="app:1"))

    with pytest.raises(NotFound, match="app:1"):
        run(scenario())


def test_missing_socket_raises_docker_unavailable_with_instructions(tmp_path: Path) -> None:
    socket = tmp_path / "nowhere" / "docker.sock"

    async def scenario() -> None:
        async with DockerClient(f"unix://{socket}") as engine:
            await engine.ping()

    with pytest.raises(DockerUnavailable) as caught:
        run(scenario())
    assert caught.value.status is None
    message = str(caught.value)
    assert f"no answer on {socket}" in message
    assert "dockerd &" in message
    assert "systemctl start docker" in message


def test_docker_host_environment_variable_chooses_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = tmp_path / "env.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")

    async def scenario() -> None:
        async with DockerClient() as engine:
            await engine.version()

    with pytest.raises(DockerUnavailable, match=str(socket)):
        run(scenario())


def test_unsupported_host_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported Docker host"):
        DockerClient("ssh://somewhere")


# --- container create JSON -------------------------------------------------------------


def test_container_spec_becomes_create_json() -> None:
    fake = FakeEngine()
    sent: list[httpx.Request] = []

    def create(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"Id": "c0ffee", "Warnings": []})

    fake.on("POST", "/containers/create", create)
    spec = ContainerSpec(
        name="web-1",
        image="app:1",
        entrypoint=["/app"],
        cmd=["serve", "--port", "8080"],
        env=["A=1", "B=two"],
        labels={"funade.io/pod": "web-1"},
        user="1000:1000",
        working_dir="/srv",
        hostname="web-1",
        network_mode="funade-default",
        network_aliases=["web", "web-1"],
        mounts=[
            Mount.tmpfs("/tmp", size_bytes=64 * 1024 * 1024, mode=0o1777),
            Mount.bind("/host/data", "/data", read_only=True),
            Mount.volume("cache", "/cache"),
        ],
        ports=[PortBinding(8080, host_port=18080), PortBinding(53, "udp")],
        nano_cpus=500_000_000,
        cpu_shares=512,
        memory=128 * 1024 * 1024,
        memory_swap=128 * 1024 * 1024,
        memory_reservation=64 * 1024 * 1024,
        readonly_rootfs=True,
        cap_add=["NET_BIND_SERVICE"],
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        stop_signal="SIGQUIT",
        stop_timeout=30,
        init=True,
        dns=["10.0.0.2"],
        extra_hosts=["registry.local:127.0.0.1"],
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        group_add=["2000"],
    )

    async def scenario() -> str:
        async with fake.engine() as engine:
            return await engine.create_container(spec)

    assert run(scenario()) == "c0ffee"
    (request,) = sent
    assert request.url.params["name"] == "web-1"
    body = json.loads(request.content)
    assert body == {
        "Image": "app:1",
        "Entrypoint": ["/app"],
        "Cmd": ["serve", "--port", "8080"],
        "Env": ["A=1", "B=two"],
        "Labels": {"funade.io/pod": "web-1"},
        "User": "1000:1000",
        "WorkingDir": "/srv",
        "Hostname": "web-1",
        "StopSignal": "SIGQUIT",
        "StopTimeout": 30,
        "Tty": False,
        "OpenStdin": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "HostConfig": {
            "AutoRemove": False,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "ReadonlyRootfs": True,
            "Privileged": False,
            "Init": True,
            "PublishAllPorts": False,
            "NetworkMode": "funade-default",
            "NanoCpus": 500_000_000,
            "CpuShares": 512,
            "Memory": 134217728,
            "MemorySwap": 134217728,
            "MemoryReservation": 67108864,
            "Mounts": [
                {
                    "Type": "tmpfs",
                    "Target": "/tmp",
                    "ReadOnly": False,
                    "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 0o1777},
                },
                {"Type": "bind", "Target": "/data", "ReadOnly": True, "Source": "/host/data"},
                {"Type": "volume", "Target": "/cache", "ReadOnly": False, "Source": "cache"},
            ],
            "PortBindings": {
                "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            },
            "CapAdd": ["NET_BIND_SERVICE"],
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Dns": ["10.0.0.2"],
            "ExtraHosts": ["registry.local:127.0.0.1"],
            "Sysctls": {"net.ipv4.ip_unprivileged_port_start": "0"},
            "GroupAdd": ["2000"],
        },
        "NetworkingConfig": {"EndpointsConfig": {"funade-default": {"Aliases": ["web", "web-1"]}}},
    }


def test_minimal_spec_leaves_image_defaults_alone() -> None:
    fake = FakeEngine()
    bodies: list[dict[str, Any]] = []

    def create(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"Id": "x"})

    fake.on("POST", "/containers/create", create)

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.create_container(
                ContainerSpec(name="app", image="app:1", network_mode="container:pause")
            )

    run(scenario())
    (body,) = bodies
    for absent in ("Entrypoint", "Cmd", "User", "Hostname", "ExposedPorts", "NetworkingConfig"):
        assert absent not in body
    assert body["HostConfig"]["NetworkMode"] == "container:pause"
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert "PortBindings" not in body["HostConfig"]


def test_spec_rejects_what_the_engine_would() -> None:
    with pytest.raises(ValueError, match="user-defined network"):
        ContainerSpec(name="a", image="i", network_mode="container:p", network_aliases=["x"])
    with pytest.raises(ValueError, match="network namespace"):
        ContainerSpec(name="a", image="i", network_mode="container:p", ports=[PortBinding(80)])
    with pytest.raises(ValueError, match="KEY=value"):
        ContainerSpec(name="a", image="i", env=["NOVALUE"])
    with pytest.raises(TypeError, match="list of strings"):
        ContainerSpec(name="a", image="i", cmd="sleep 10")
    with pytest.raises(ValueError, match="cannot have a source"):
        Mount(type="tmpfs", target="/t", source="/x")
    with pytest.raises(ValueError, match="tmpfs options"):
        Mount(type="bind", source="/x", target="/t", tmpfs_size_bytes=1)
    with pytest.raises(ValueError, match="out of range"):
        PortBinding(70000)


# --- inspect parsing -------------------------------------------------------------------

INSPECT: dict[str, Any] = {
    "Id": "abc123",
    "Name": "/web-1",
    "Image": "sha256:feed",
    "Created": "2024-05-01T10:00:00.123456789Z",
    "State": {
        "Status": "created",
        "Running": False,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": "0001-01-01T00:00:00Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    },
    "Config": {"Image": "app:1", "Labels": {"a": "b"}, "User": "", "Env": None, "Tty": False},
    "HostConfig": {"NetworkMode": "funade-default"},
    "NetworkSettings": {
        "Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}], "9/udp": None},
        "Networks": {
            "funade-default": {
                "NetworkID": "n1",
                "IPAddress": "172.18.0.2",
                "Gateway": "172.18.0.1",
                "MacAddress": "02:42:ac:12:00:02",
                "Aliases": ["web", "abc123"],
            }
        },
    },
}


def test_inspect_maps_zero_times_to_none_and_strips_the_name_slash() -> None:
    fake = FakeEngine()
    fake.reply("GET", "/containers/web-1/json", 200, INSPECT)

    async def scenario() -> Any:
        async with fake.engine() as engine:
            return await engine.inspect_container("web-1")

    info = run(scenario())
    assert info.name == "web-1"
    assert info.image == "sha256:feed"
    assert info.config_image == "app:1"
    assert info.created == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert info.state.started_at is None
    assert info.state.finished_at is None
    assert info.env == ()
    assert info.networks["funade-default"].ip_address == "172.18.0.2"
    assert info.networks["funade-default"].aliases == ("web", "abc123")
    assert [(p.container_port, p.host_ip, p.host_port) for p in info.published_ports] == [
        (8080, "127.0.0.1", 32768)
    ]


def test_inspect_parses_real_finish_time_with_offset() -> None:
    state = dict(INSPECT["State"])
    state.update(StartedAt="2024-05-01T12:00:00+02:00", FinishedAt="2024-05-01T10:00:05.5Z")
    fake = FakeEngine()
    fake.reply("GET", "/containers/x/json", 200, {**INSPECT, "State": state})

    async def scenario() -> Any:
        async with fake.engine() as engine:
            return await engine.inspect_container("x")

    info = run(scenario())
    assert info.state.started_at == datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert info.state.finished_at == datetime(2024, 5, 1, 10, 0, 5, 500000, tzinfo=UTC)


def test_list_containers_sends_label_filters() -> None:
    fake = FakeEngine()
    seen: list[httpx.Request] = []

    def listing(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json=[
                {
                    "Id": "abc",
                    "Names": ["/web-1"],
                    "Image": "app:1",
                    "ImageID": "sha256:feed",
                    "Labels": {"app": "web"},
                    "State": "running",
                    "Status": "Up 2 seconds",
                    "Created": 1714557600,
                }
            ],
        )

    fake.on("GET", "/containers/json", listing)

    async def scenario() -> Any:
        async with fake.engine() as engine:
            return await engine.list_containers(labels={"app": "web", "funade.io/pod": None})

    (summary,) = run(scenario())
    assert summary.names == ("web-1",)
    assert summary.created == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    params = seen[0].url.params
    assert params["all"] == "1"
    assert json.loads(params["filters"]) == {"label": ["app=web", "funade.io/pod"]}


# --- logs ------------------------------------------------------------------------------


def logs_fake(body: bytes, chunk_size: int, *, tty: bool = False) -> FakeEngine:
    fake = FakeEngine()
    config = {**INSPECT["Config"], "Tty": tty}
    fake.reply("GET", "/containers/c/json", 200, {**INSPECT, "Config": config})
    fake.on(
        "GET",
        "/containers/c/logs",
        lambda _r: httpx.Response(200, content=chunks(body, chunk_size)),
    )
    return fake


MULTIPLEXED = (
    frame(1, b"first line\nsecond ")
    + frame(2, b"an error\n")
    + frame(1, b"line, continued")
    + frame(1, b" across frames\n")
    + frame(2, "ünïcode spl".encode())
    + frame(2, b"it\nlast without newline")
)
EXPECTED = [
    LogLine("stdout", "first line"),
    LogLine("stderr", "an error"),
    LogLine("stdout", "second line, continued across frames"),
    LogLine("stderr", "ünïcode split"),
    LogLine("stderr", "last without newline"),
]


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 9, 1000])
def test_logs_demultiplex_frames_into_lines(chunk_size: int) -> None:
    fake = logs_fake(MULTIPLEXED, chunk_size)

    async def scenario() -> list[LogLine]:
        async with fake.engine() as engine:
            return await collect(engine.logs("c", tail=10, since=1714557600.5))

    assert run(scenario()) == EXPECTED
    params = fake.requests[-1].url.params
    assert params["stdout"] == params["stderr"] == "1"
    assert params["follow"] == "0"
    assert params["tail"] == "10"
    assert params["since"] == "1714557600.500000000"


def test_logs_with_timestamps_strip_the_prefix_per_message() -> None:
    body = (
        frame(1, b"2024-05-01T10:00:00.000000001Z hello\n")
        + frame(2, b"2024-05-01T10:00:01.5Z partial ")
        + frame(2, b"2024-05-01T10:00:02Z rest\n")
    )
    fake = logs_fake(body, 5)

    async def scenario() -> list[LogLine]:
        async with fake.engine() as engine:
            return await collect(engine.logs("c", timestamps=True))

    assert run(scenario()) == [
        LogLine("stdout", "hello", datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
        LogLine("stderr", "partial rest", datetime(2024, 5, 1, 10, 0, 1, 500000, tzinfo=UTC)),
    ]
    assert fake.requests[-1].url.params["timestamps"] == "1"


def test_logs_of_tty_container_are_raw_stdout() -> None:
    fake = logs_fake(b"one\r\ntwo\r\nthr", 4, tty=True)

    async def scenario() -> list[LogLine]:
        async with fake.engine() as engine:
            return await collect(engine.logs("c"))

    assert run(scenario()) == [
        LogLine("stdout", "one"),
        LogLine("stdout", "two"),
        LogLine("stdout", "thr"),
    ]


# --- exec ------------------------------------------------------------------------------


def exec_fake(start: Handler) -> FakeEngine:
    fake = FakeEngine()
    fake.reply("POST", "/containers/c/exec", 201, {"Id": "e1"})
    fake.on("POST", "/exec/e1/start", start)
    polls = iter([{"Running": True, "ExitCode": None}, {"Running": False, "ExitCode": 3}])
    fake.on("GET", "/exec/e1/json", lambda _r: httpx.Response(200, json=next(polls)))
    return fake


def test_exec_collects_output_and_exit_code() -> None:
    output = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"more")
    fake = exec_fake(lambda _r: httpx.Response(200, content=chunks(output, 5)))

    async def scenario() -> Any:
        async with fake.engine() as engine:
            return await engine.exec("c", ["sh", "-c", "x"], timeout_s=5, user="1000", env=["A=1"])

    result = run(scenario())
    assert result.exit_code == 3
    assert result.output == b"out\nerr\nmore"
    assert (result.stdout, result.stderr) == (b"out\nmore", b"err\n")
    created = json.loads(fake.requests[1].content)
    assert created["Cmd"] == ["sh", "-c", "x"]
    assert created["User"] == "1000"
    assert created["Env"] == ["A=1"]
    assert created["AttachStdout"] and created["AttachStderr"]


def test_exec_timeout_raises_timeout_error() -> None:
    async def never_finishes(_request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    fake = exec_fake(never_finishes)

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.exec("c", ["sleep", "100"], timeout_s=0.05)

    with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s"):
        run(scenario())


# --- images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "repo", "tag"),
    [
        ("busybox", "busybox", "latest"),
        ("app:1", "app", "1"),
        ("localhost:5000/app", "localhost:5000/app", "latest"),
        ("localhost:5000/team/app:1.2", "localhost:5000/team/app", "1.2"),
        ("app@sha256:abcd", "app", "sha256:abcd"),
        ("localhost:5000/app:1@sha256:abcd", "localhost:5000/app", "sha256:abcd"),
    ],
)
def test_split_image_ref(ref: str, repo: str, tag: str) -> None:
    assert split_image_ref(ref) == (repo, tag)


def test_pull_error_inside_a_200_stream_raises_image_pull_error() -> None:
    body = json_lines(
        [
            {"status": "Pulling from team/app", "id": "1"},
            {"status": "Downloading", "id": "abc", "progress": "[=>  ] 1MB/3MB"},
            {"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"},
        ]
    )
    fake = FakeEngine()
    fake.on("POST", "/images/create", lambda _r: httpx.Response(200, content=chunks(body, 7)))
    progress: list[str] = []

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.pull("localhost:5000/team/app:1", on_progress=progress.append)

    with pytest.raises(ImagePullError, match="manifest unknown") as caught:
        run(scenario())
    assert "localhost:5000/team/app:1" in caught.value.message
    assert progress == ["1: Pulling from team/app", "abc: Downloading [=>  ] 1MB/3MB"]
    params = fake.requests[-1].url.params
    assert (params["fromImage"], params["tag"]) == ("localhost:5000/team/app", "1")


def test_pull_http_error_is_an_image_pull_error_too() -> None:
    fake = FakeEngine()
    fake.reply("POST", "/images/create", 500, {"message": "dial tcp: connection refused"})

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.pull("localhost:1/nope:1")

    with pytest.raises(ImagePullError, match="connection refused") as caught:
        run(scenario())
    assert caught.value.status == 500


def test_successful_pull_returns_quietly() -> None:
    body = json_lines([{"status": "Status: Downloaded newer image for app:1"}])
    fake = FakeEngine()
    fake.on("POST", "/images/create", lambda _r: httpx.Response(200, content=body))

    async def scenario() -> None:
        async with fake.engine() as engine:
            await engine.pull("app:1")

    run(scenario())


def test_push_sends_credentials_and_returns_the_registry_digest() -> None:
    digest = "sha256:" + "ab" * 32
    body = json_lines(
        [
            {"status": "The push refers to repository [127.0.0.1:5000/team/app]"},
            {"status": "Pushed", "id": "abc"},
            {"status": f"1: digest: {digest} size: 528"},
            {"progress": "", "aux": {"Tag": "1", "Digest": digest, "Size": 528}},
        ]
    )
    fake = FakeEngine()
    fake.on("POST", "/images/127.0.0.1:5000/team/app/push", lambda _r: httpx.Response(200, content=chunks(body, 5)))
    progress: list[str] = []

    async def scenario() -> str:
        async with fake.engine() as engine:
            return await engine.push(
                "127.0.0.1:5000/team/app:1", progress.append, auth={"username": "u", "password": "p"}
            )

    assert run(scenario()) == digest
    request = fake.requests[-1]
    assert request.url.params["tag"] == "1"
    sent = json.loads(base64.urlsafe_b64decode(request.headers["X-Registry-Auth"]))
    assert sent == {"username": "u", "password": "p"}
    assert "abc: Pushed" in progress


def test_push_failure_inside_the_stream_and_a_missing_digest_raise() -> None:
    fake = FakeEngine()
    failing = json_lines([{"errorDetail": {"message": "denied"}, "error": "denied: requested access"}])
    fake.on("POST", "/images/team/app/push", lambda _r: httpx.Response(200, content=failing))
    fake.on("POST", "/images/team/other/push", lambda _r: httpx.Response(200, content=json_lines([{"status": "ok"}])))

    async def scenario(ref: str) -> str:
        async with fake.engine() as engine:
            return await engine.push(ref)

    with pytest.raises(ImagePushError, match="cannot push team/app:1: denied"):
        run(scenario("team/app:1"))
    with pytest.raises(ImagePushError, match="did not report a digest"):
        run(scenario("team/other:1"))


def test_import_image_sends_tar_and_changes() -> None:
    fake = FakeEngine()
    seen: list[httpx.Request] = []

    async def create(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, content=json_lines([{"status": "sha256:beef"}]))

    fake.on("POST", "/images/create", create)

    async def scenario() -> str:
        async with fake.engine() as engine:
            return await engine.import_image(
                b"TAR", "funade/pause", "1", changes=['CMD ["/bin/sh"]', "USER 65535"]
            )

    assert run(scenario()) == "sha256:beef"
    (request,) = seen
    assert request.content == b"TAR"
    assert request.headers["content-type"] == "application/x-tar"
    assert request.url.params.get_list("changes") == ['CMD ["/bin/sh"]', "USER 65535"]
    assert (request.url.params["fromSrc"], request.url.params["repo"]) == ("-", "funade/pause")


def test_image_exists_and_inspect_quote_registry_refs() -> None:
    fake = FakeEngine()
    fake.reply(
        "GET",
        "/images/localhost:5000/app:1/json",
        200,
        {"Id": "sha256:1", "RepoTags": ["localhost:5000/app:1"], "Config": {"Cmd": ["/app"]}},
    )

    async def scenario() -> tuple[bool, bool]:
        async with fake.engine() as engine:
            info = await engine.inspect_image("localhost:5000/app:1")
            assert info.cmd == ("/app",)
            assert info.entrypoint is None
            return await engine.image_exists("localhost:5000/app:1"), await engine.image_exists(
                "other"
            )

    assert run(scenario()) == (True, False)


# --- events ----------------------------------------------------------------------------


def test_events_are_parsed_from_the_json_stream() -> None:
    body = json_lines(
        [
            {
                "Type": "container",
                "Action": "die",
                "Actor": {"ID": "abc", "Attributes": {"exitCode": "137", "name": "web-1"}},
                "scope": "local",
                "time": 1714557600,
                "timeNano": 1714557600123456789,
            },
            {"Type": "container", "Action": "oom", "Actor": {"ID": "abc"}, "time": 1714557601},
        ]
    )
    fake = FakeEngine()
    fake.on("GET", "/events", lambda _r: httpx.Response(200, content=chunks(body, 10)))

    async def scenario() -> list[Any]:
        async with fake.engine() as engine:
            stream = engine.events({"type": ["container"], "event": ["die", "oom"]}, since=5.25)
            return [event async for event in stream]

    die, oom = run(scenario())
    assert (die.type, die.action, die.actor_id) == ("container", "die", "abc")
    assert die.actor_attributes == {"exitCode": "137", "name": "web-1"}
    assert die.time == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert die.time_nano == 1714557600123456789
    assert oom.action == "oom"
    assert oom.time == datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)
    params = fake.requests[-1].url.params
    assert params["since"] == "5.250000000"
    assert json.loads(params["filters"]) == {"event": ["die", "oom"], "type": ["container"]}


def test_stats_take_one_sample_and_count_the_working_set_on_cgroup_v1_and_v2() -> None:
    fake = FakeEngine()
    v1 = {"usage": 50 << 20, "stats": {"total_inactive_file": 20 << 20, "inactive_file": 1}}
    v2 = {"usage": 50 << 20, "stats": {"inactive_file": 30 << 20}}
    body = {"read": "2026-11-29T04:00:00.5Z", "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}}}
    fake.reply("GET", "/containers/v1/stats", 200, {**body, "memory_stats": v1})
    fake.reply("GET", "/containers/v2/stats", 200, {**body, "memory_stats": v2})

    async def scenario() -> list[ContainerStats]:
        async with fake.engine() as engine:
            return [await engine.stats("v1"), await engine.stats("v2")]

    first, second = run(scenario())
    assert (first.cpu_total_ns, first.memory_working_set) == (1_500_000_000, 30 << 20)
    assert second.memory_working_set == 20 << 20 and second.read_at == datetime(2026, 11, 29, 4, 0, 0, 500000, UTC)
    assert next(dict(r.url.params) for r in fake.requests if "stats" in r.url.path) == {"stream": "0", "one-shot": "1"}


def test_the_fake_engine_counts_what_its_containers_use() -> None:
    docker = FakeDocker()
    docker.add_image("app:1")

    async def scenario() -> tuple[ContainerStats, ContainerStats]:
        container = await docker.create_container(ContainerSpec(name="web", image="app:1"))
        created = await docker.stats(container)
        await docker.start(container)
        docker.use(container, cpu_seconds=0.25, memory=10 << 20)
        return created, await docker.stats(container)

    created, busy = run(scenario())
    assert created == ContainerStats(None, 0, 0)
    assert (busy.cpu_total_ns, busy.memory_working_set) == (250_000_000, 10 << 20) and busy.read_at is not None
