"""`funade registry up|down|status`: the embedded distribution registry on 127.0.0.1:5000."""

from __future__ import annotations

import json
import os

import typer

from funade.adapters.registry.server import DEFAULT_ADDRESS, RegistryServer, RegistryStatus, ServerError
from funade.cli import consoles
from funade.cli.client import DEFAULT_ADDRESS as SERVER_ADDRESS
from funade.cli.client import funade_home

__all__ = ["app"]

app = typer.Typer(help="The embedded image registry (CNCF distribution).", no_args_is_help=True)
AddressOpt = typer.Option(DEFAULT_ADDRESS, "--address", envvar="FUNADE_REGISTRY", help="HOST:PORT on loopback")
OutputOpt = typer.Option("text", "-o", "--output", help="text | json")


def _server(address: str) -> RegistryServer:
    try:
        return RegistryServer(funade_home(), address, notify=os.environ.get("FUNADE_ADDRESS") or SERVER_ADDRESS)
    except ServerError as exc:
        consoles.err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _show(status: RegistryStatus, output: str, text: str) -> None:
    if output == "json":
        print(
            json.dumps(
                {
                    "running": status.running,
                    "address": status.address,
                    "pid": status.pid,
                    "storage": str(status.storage),
                },
                indent=2,
            )
        )
    else:
        consoles.out.print(text)


@app.command()
def up(address: str = AddressOpt, output: str = OutputOpt) -> None:
    """Start the registry (storage under $FUNADE_HOME/registry, deletes enabled)."""
    server = _server(address)
    try:
        with consoles.err.status(f"starting the registry on {address}…"):
            status = server.up()
    except ServerError as exc:
        consoles.err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _show(status, output, f"registry running on {address} (pid {status.pid}, storage {status.storage})")


@app.command()
def down(address: str = AddressOpt, output: str = OutputOpt) -> None:
    """Stop the registry (its images stay on disk)."""
    server = _server(address)
    stopped = server.down()
    _show(server.status(), output, "registry stopped" if stopped else "the registry was not running")


@app.command()
def status(address: str = AddressOpt, output: str = OutputOpt) -> None:
    """Say whether the registry runs; exits 1 when it does not."""
    current = _server(address).status()
    _show(current, output, f"registry {'running' if current.running else 'not running'} on {address}")
    if not current.running:
        raise typer.Exit(1)
