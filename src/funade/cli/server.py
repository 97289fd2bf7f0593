"""`funade server`, `up`, `down` and `status`: running the controller process.

`up` starts the server in the background with its pid and log under ``$FUNADE_HOME``
and waits until it answers; `down` stops it (workloads keep running and are adopted
again by the next `up`, unless `--delete-workloads`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.markup import escape

import funade
from funade.adapters.haproxy import HAProxy
from funade.adapters.prometheus.server import DEFAULT_ADDRESS as PROMETHEUS_ADDRESS
from funade.adapters.prometheus.server import PrometheusServer
from funade.adapters.prometheus.server import ServerError as PrometheusError
from funade.adapters.registry.server import DEFAULT_ADDRESS as REGISTRY_ADDRESS
from funade.adapters.registry.server import RegistryServer, ServerError
from funade.cli import consoles
from funade.cli.client import DEFAULT_ADDRESS, ApiError, Client, funade_home

__all__ = ["register"]

console = consoles.out
err = consoles.err


def _pid_file(home: Path) -> Path:
    return home / "server.pid"


def _read_pid(home: Path) -> int | None:
    try:
        pid = int(_pid_file(home).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        if not ipaddress.ip_address(host.strip("[]")).is_loopback:
            raise typer.BadParameter(f"{host} is not a loopback address: funade listens on 127.0.0.1 only")
    except ValueError as exc:
        raise typer.BadParameter(f"{address!r} is not HOST:PORT") from exc
    return host, int(port)


def server(
    address: str = typer.Option(
        DEFAULT_ADDRESS, "--address", envvar="FUNADE_ADDRESS", help="HOST:PORT to listen on (loopback)"
    ),
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Run the API and the controllers in the foreground."""
    import logging

    import uvicorn

    from funade.api.app import create_app

    host, port = _split(address)
    home = funade_home()
    home.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _pid_file(home).write_text(str(os.getpid()))
    try:
        uvicorn.run(create_app(home), host=host, port=port, log_level=log_level, lifespan="on")
    finally:
        if _read_pid(home) == os.getpid():
            _pid_file(home).unlink(missing_ok=True)


def up(
    address: str = typer.Option(DEFAULT_ADDRESS, "--address", envvar="FUNADE_ADDRESS"),
    registry_address: str = typer.Option(
        REGISTRY_ADDRESS, "--registry-address", envvar="FUNADE_REGISTRY", help="where the embedded registry listens"
    ),
    no_registry: bool = typer.Option(False, "--no-registry", help="do not start the embedded registry"),
    prometheus_address: str = typer.Option(
        PROMETHEUS_ADDRESS,
        "--prometheus-address",
        envvar="FUNADE_PROMETHEUS",
        help="where the embedded Prometheus listens",
    ),
    no_prometheus: bool = typer.Option(
        False, "--no-prometheus", help="do not start the embedded Prometheus (analysis queries it)"
    ),
    timeout: float = typer.Option(30.0, "--timeout"),
    output: str = typer.Option("text", "-o", "--output"),
) -> None:
    """Start the funade server (and the embedded registry and Prometheus) in the background; wait until they answer."""
    _split(address)
    home = funade_home()
    home.mkdir(parents=True, exist_ok=True)
    client = Client(address)
    registry = None if no_registry else _start_registry(home, registry_address, address)
    prometheus = None if no_prometheus else _start_prometheus(home, prometheus_address)
    if client.alive():
        try:
            running = client.get("/v1/status").get("build")
        except ApiError:
            running = None
        stale = running is not None and running != funade.build_id()
        _say(
            output,
            {
                "running": True,
                "address": address,
                "started": False,
                "registry": registry,
                "prometheus": prometheus,
                "stale": stale,
            },
            f"funade is already running on {address}",
        )
        if stale:
            err.print(
                "[yellow]warning:[/yellow] that server runs older code than this funade (it was started before "
                "an upgrade): `funade down && funade up` restarts it; pods and Services keep running",
                highlight=False,
            )
        return
    log = open(home / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    env = dict(os.environ, FUNADE_HOME=str(home))
    process = subprocess.Popen(
        [sys.executable, "-m", "funade.cli.main", "server", "--address", address],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    with console.status(f"starting funade on {address}…"):
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (home / "server.log").read_text(errors="replace").splitlines()[-15:]
                err.print(f"[red]funade server exited with code {process.returncode}[/red]\n" + "\n".join(tail))
                raise typer.Exit(1)
            if client.alive():
                break
            time.sleep(0.1)
        else:
            err.print(f"[red]funade server did not answer within {timeout:g}s; see {home / 'server.log'}[/red]")
            raise typer.Exit(1)
    registry_line = f"; registry on {registry['address']}" if registry and registry.get("running") else ""
    _say(
        output,
        {
            "running": True,
            "address": address,
            "started": True,
            "pid": process.pid,
            "home": str(home),
            "registry": registry,
            "prometheus": prometheus,
        },
        f"funade is running on {address} (pid {process.pid}, home {home}){registry_line}",
    )


def _start_registry(home: Path, address: str, server: str) -> dict[str, object]:
    """Start this home's registry, notifying ``server``; a registry that cannot start is a warning, not a failure."""
    try:
        status = RegistryServer(home, address, notify=server).up()
    except ServerError as exc:
        err.print(f"[yellow]warning:[/yellow] the embedded registry is not running: {exc}")
        return {"running": False, "address": address, "error": str(exc)}
    return {"running": status.running, "address": status.address, "pid": status.pid}


def _start_prometheus(home: Path, address: str) -> dict[str, object]:
    """Start this home's Prometheus (it scrapes Services annotated prometheus.io/scrape); a failure is a warning."""
    try:
        status = PrometheusServer(home, address).up()
    except PrometheusError as exc:
        err.print(f"[yellow]warning:[/yellow] the embedded Prometheus is not running: {exc}")
        return {"running": False, "address": address, "error": str(exc)}
    return {"running": status.running, "address": status.address, "pid": status.pid}


def down(
    delete_workloads: bool = typer.Option(False, "--delete-workloads", help="also remove every pod funade runs"),
    timeout: float = typer.Option(30.0, "--timeout"),
    output: str = typer.Option("text", "-o", "--output"),
) -> None:
    """Stop the funade server, its registry and Prometheus (pods and the Services in front of them keep
    running unless --delete-workloads)."""
    home = funade_home()
    pid = _read_pid(home)
    stopped = False
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _read_pid(home) == pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            if _read_pid(home) == pid:
                os.kill(pid, signal.SIGKILL)
        _pid_file(home).unlink(missing_ok=True)
        stopped = True
    registry_stopped = RegistryServer.of_home(home).down()
    prometheus_stopped = PrometheusServer.of_home(home).down()
    removed = 0
    proxy_stopped = False
    if delete_workloads:
        removed = _remove_workloads()
        # Services go with their pods; without --delete-workloads both keep serving.
        proxy_stopped = asyncio.run(HAProxy(home).stop())
    message = (
        ("funade stopped" if stopped else "funade was not running")
        + ("; registry stopped" if registry_stopped else "")
        + ("; Prometheus stopped" if prometheus_stopped else "")
        + (f"; removed {removed} container(s)" if delete_workloads else "")
        + ("; HAProxy stopped" if proxy_stopped else "")
    )
    _say(
        output,
        {
            "stopped": stopped,
            "registryStopped": registry_stopped,
            "prometheusStopped": prometheus_stopped,
            "removedContainers": removed,
            "proxyStopped": proxy_stopped,
        },
        message,
    )


def _remove_workloads() -> int:
    from funade.adapters.docker import DockerClient, DockerUnavailable
    from funade.adapters.local.runtime import MANAGED, instance_id
    from funade.adapters.local.serviceproxy import files_of

    instance = instance_id(funade_home())

    async def run() -> int:
        async with DockerClient() as docker:
            found = await docker.list_containers(all=True, labels={MANAGED: instance})
            for c in found:
                await docker.remove(c.id, force=True, volumes=True, missing_ok=True)
            return len(found)

    try:
        removed = asyncio.run(run())
    except DockerUnavailable as exc:
        err.print(f"[yellow]{exc}[/yellow]")
        return 0
    shutil.rmtree(files_of(funade_home()), ignore_errors=True)  # the Service proxies' sockets and configs
    return removed


def status(output: str = typer.Option("text", "-o", "--output")) -> None:
    """Say what is running: the server, Docker, and how many objects and pods."""
    client = Client()
    try:
        info = client.get("/v1/status")
    except ApiError as exc:
        _say(output, {"running": False, "error": str(exc)}, f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    docker = info["docker"]
    lines = [
        f"funade {info['version']} running on {client.address} (pid {info['pid']}, up {info['uptimeSeconds']}s)",
        f"home:    {info['home']}",
        "docker:  " + ("ok" if docker["ok"] else f"[red]{escape(str(docker['error']))}[/red]"),
        "objects: " + (", ".join(f"{k} {v}" for k, v in sorted(info["objects"].items())) or "none"),
    ]
    proxy = info.get("proxy") or {}
    if proxy.get("listeners") or proxy.get("error"):
        state = "running" if proxy.get("running") else "[red]not running[/red]"
        lines.append(f"haproxy: {state}, {proxy.get('listeners', 0)} Service port(s) on 127.0.0.1")
        if proxy.get("error"):
            lines.append(f"         [red]{escape(str(proxy['error']))}[/red]")
    registry = RegistryServer.of_home(Path(info["home"])).status()
    lines.append(f"registry: {'running' if registry.running else 'not running'} on {registry.address}")
    info["registry"] = {"running": registry.running, "address": registry.address, "pid": registry.pid}
    metrics = PrometheusServer.of_home(Path(info["home"])).status()
    lines.append(f"prometheus: {'running' if metrics.running else 'not running'} on {metrics.address}")
    info["prometheus"] = {"running": metrics.running, "address": metrics.address, "pid": metrics.pid}
    _say(output, dict(info, running=True), "\n".join(lines))


def _say(output: str, data: object, text: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        console.print(text)


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(up)
    app.command()(down)
    app.command()(status)
