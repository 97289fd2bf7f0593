"""`funade app …`: Argo CD-style Applications (create, list, get, diff, sync, history, rollback…).

The verbs mirror ``argocd app``; `app get -o json` prints the Application with Argo CD's
status layout so existing tooling reads it. `app sync` waits for the operation and shows
each resource's result as it lands (rich Live), exiting non-zero when the sync fails.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import typer
import yaml
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from funade.cli import consoles, sources
from funade.cli.client import ApiError, Client
from funade.core import manifests

__all__ = ["app", "app_table", "resources_table"]

Obj = dict[str, Any]
console = consoles.out
err = consoles.err
app = typer.Typer(help="GitOps: Argo CD Applications that keep the target equal to git.", no_args_is_help=True)

_SYNC_STYLE = {"Synced": "green", "OutOfSync": "yellow", "Unknown": "dim"}
_HEALTH_STYLE = {
    "Healthy": "green",
    "Progressing": "cyan",
    "Degraded": "red",
    "Suspended": "magenta",
    "Missing": "yellow",
    "Unknown": "dim",
}
OutputOpt = typer.Option("", "-o", "--output", help="json | yaml")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _call(method: str, path: str, body: Obj | None = None, **params: Any) -> Any:
    client = Client(timeout=120.0)
    try:
        if method == "GET":
            return client.get(path, **params)
        if method == "DELETE":
            return client.delete(path, **params)
        return client.post(path, body or {})
    except ApiError as exc:
        raise _fail(str(exc)) from exc


def _styled(value: str, styles: dict[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def app_table(items: list[Obj]) -> Table:
    """`app list`: one row per Application (status columns first, long locations last and folded)."""
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "STATUS", "HEALTH", "SYNCPOLICY", "REVISION"):
        table.add_column(column, no_wrap=True)
    for column in ("NAMESPACE", "REPO", "PATH", "TARGET"):
        table.add_column(column, overflow="fold")
    for obj in items:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        destination, source = spec.get("destination") or {}, spec.get("source") or {}
        automated = "automated" in (spec.get("syncPolicy") or {})
        suspended = "funade.io/auto-sync-suspended" in (obj["metadata"].get("annotations") or {})
        policy = "Auto (suspended)" if automated and suspended else ("Auto" if automated else "Manual")
        if automated and (spec["syncPolicy"]["automated"] or {}).get("prune"):
            policy += "-Prune"
        sync = (status.get("sync") or {}).get("status") or "Unknown"
        healthy = (status.get("health") or {}).get("status") or "Unknown"
        table.add_row(
            obj["metadata"]["name"], _styled(sync, _SYNC_STYLE), _styled(healthy, _HEALTH_STYLE), policy,
            str((status.get("sync") or {}).get("revision") or "")[:7], destination.get("namespace") or "",
            source.get("repoURL") or "", source.get("path") or ".", source.get("targetRevision") or "HEAD",
        )  # fmt: skip
    return table


def resources_table(rows: list[Obj]) -> Table:
    """The Application's resources with their own sync status and health."""
    table = Table(box=None, pad_edge=False)
    for column in ("GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for row in rows:
        status = row.get("status") or ""
        if row.get("requiresPruning"):
            status += " (requires pruning)"
        healthy = (row.get("health") or {}).get("status") or ""
        table.add_row(
            row.get("group") or "", row.get("kind") or "", row.get("namespace") or "", row.get("name") or "",
            Text(status, style="yellow") if row.get("requiresPruning") else _styled(status, _SYNC_STYLE),
            _styled(healthy, _HEALTH_STYLE), (row.get("health") or {}).get("message") or row.get("message") or "",
        )  # fmt: skip
    return table


def app_view(obj: Obj) -> RenderableType:
    """`app get`: summary, conditions, last operation and resources."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    source = spec.get("source") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Name:", f"{obj['metadata'].get('namespace', 'argocd')}/{obj['metadata']['name']}")
    grid.add_row("Project:", spec.get("project") or "default")
    grid.add_row("Repo:", source.get("repoURL") or "")
    grid.add_row("Target:", source.get("targetRevision") or "HEAD")
    grid.add_row("Path:", source.get("path") or ".")
    grid.add_row("SyncPolicy:", "Automated" if "automated" in (spec.get("syncPolicy") or {}) else "Manual")
    suspended = (obj["metadata"].get("annotations") or {}).get("funade.io/auto-sync-suspended")
    if suspended:
        grid.add_row("", Text(f"auto-sync suspended: {suspended}", style="yellow"))
    sync = status.get("sync") or {}
    revision = str(sync.get("revision") or "")[:7]
    grid.add_row(
        "Sync Status:",
        Text.assemble(
            _styled(sync.get("status") or "Unknown", _SYNC_STYLE),
            f" to {source.get('targetRevision') or 'HEAD'} ({revision})",
        ),
    )
    healthy = status.get("health") or {}
    grid.add_row("Health Status:", _styled(healthy.get("status") or "Unknown", _HEALTH_STYLE))
    parts: list[RenderableType] = [grid]
    for condition in status.get("conditions") or []:
        parts.append(
            Text(
                f"{condition['type']}: {condition.get('message', '')}",
                style="red" if "Error" in condition["type"] else "yellow",
            )
        )
    operation = status.get("operationState") or {}
    if operation:
        parts.append(Text(f"\nOperation:  Sync ({operation.get('phase')}) {operation.get('message', '')}"))
    parts.append(Text(""))
    parts.append(resources_table(status.get("resources") or []))
    return Group(*parts)


@app.command("create")
def create(
    file: list[str] = typer.Option(..., "-f", "--file", help="Application / ApplicationSet manifests"),
    output: str = OutputOpt,
) -> None:
    """Create or update Applications and ApplicationSets (in namespace argocd)."""
    try:
        texts = sources.read_sources(file, None, False, verb="app create")
        docs = [d.obj for name, text in texts for d in manifests.load_documents(text, name)]
    except (sources.SourceError, manifests.ManifestError) as exc:
        raise _fail(str(exc)) from exc
    result = _call("POST", "/v1/apps", {"objects": docs})
    if output == "json":
        print(json.dumps(result, indent=2))
        return
    for item in result["items"]:
        group = "application" if item["kind"] == "Application" else "applicationset"
        console.print(f"{group}.argoproj.io/{item['name']} {item['action']}", highlight=False)


@app.command("list")
def list_(output: str = OutputOpt) -> None:
    """List Applications with their sync and health status."""
    items = _call("GET", "/v1/apps")["items"]
    if output in ("json", "yaml"):
        _dump(items, output)
        return
    console.print(app_table(items))


def _dump(data: Any, output: str) -> None:
    print(
        json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data, sort_keys=False),
        end="\n" if output == "json" else "",
    )


@app.command("get")
def get(
    name: str, output: str = OutputOpt, refresh: bool = typer.Option(False, "--refresh", help="fetch git first")
) -> None:
    """Show an Application: sync and health status, revision, conditions, resources."""
    if refresh:
        _refresh_and_wait(name)
    obj = _call("GET", f"/v1/apps/{name}")
    if output in ("json", "yaml"):
        _dump(obj, output)
        return
    console.print(app_view(obj))


def _refresh_and_wait(name: str) -> Obj:
    """Fetch git and compare now; the server answers once the comparison is written."""
    result: Obj = _call("POST", f"/v1/apps/{name}/refresh")
    return result


@app.command("refresh")
def refresh(name: str, output: str = OutputOpt) -> None:
    """Fetch git now and compare again (what a webhook does)."""
    obj = _refresh_and_wait(name)
    if output == "json":
        print(json.dumps(obj, indent=2))
        return
    status = obj.get("status") or {}
    console.print(
        f"application {name}: {(status.get('sync') or {}).get('status')} "
        f"at {str((status.get('sync') or {}).get('revision'))[:7]}",
        highlight=False,
    )
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ComparisonError":
            err.print(f"[red]ComparisonError:[/red] {condition.get('message')}", highlight=False)
            raise typer.Exit(1)


@app.command("diff")
def diff(name: str, revision: str = typer.Option("", "--revision"), output: str = OutputOpt) -> None:
    """Show what a sync would change (Secret values masked); exits 1 when there are differences, as argocd does."""
    result = _call("GET", f"/v1/apps/{name}/diff", revision=revision or None)
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        for item in result["resources"]:
            if item["diff"]:
                console.print(item["diff"], highlight=False, markup=False, end="")
    raise typer.Exit(1 if result["sync"] == "OutOfSync" else 0)


def _operation_view(operation: Obj) -> RenderableType:
    table = Table(box=None, pad_edge=False)
    for column in ("KIND", "NAMESPACE", "NAME", "PHASE", "RESULT", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for r in (operation.get("syncResult") or {}).get("resources") or []:
        table.add_row(
            r.get("kind") or "",
            r.get("namespace") or "",
            r.get("name") or "",
            r.get("syncPhase") or "",
            r.get("status") or "…",
            r.get("message") or "",
        )
    return Group(Text(f"Operation: Sync  Phase: {operation.get('phase')}  {operation.get('message', '')}"), table)


def _wait_operation(name: str, started_after: str, timeout: float, output: str) -> Obj:
    deadline = time.monotonic() + timeout
    operation: Obj = {}
    live = (
        Live(console=console, refresh_per_second=4, transient=False)
        if output != "json" and console.is_terminal
        else None
    )
    try:
        if live:
            live.start()
        while time.monotonic() < deadline:
            obj = _call("GET", f"/v1/apps/{name}")
            operation = (obj.get("status") or {}).get("operationState") or {}
            if (operation.get("startedAt") or "") >= started_after and operation.get("phase") in (
                "Succeeded",
                "Failed",
                "Error",
            ):
                break
            if live and operation:
                live.update(_operation_view(operation))
            time.sleep(0.25)
        else:
            raise _fail(f"sync of {name} still running after {timeout:.0f}s (see `funade app get {name}`)")
    finally:
        if live:
            live.stop()
    return operation


@app.command("sync")
def sync(
    name: str,
    prune: bool = typer.Option(False, "--prune", help="delete resources no longer in git"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and show the plan; change nothing"),
    resource: list[str] = typer.Option([], "--resource", help="KIND/NAME (or GROUP:KIND:NAME) to sync only that"),
    revision: str = typer.Option("", "--revision", help="sync this revision instead of the target"),
    timeout: float = typer.Option(600.0, "--timeout"),
    output: str = OutputOpt,
) -> None:
    """Sync an Application now and wait for the result (non-zero exit when it fails)."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"prune": prune, "dryRun": dry_run, "resources": resource, "revision": revision or None}
    _call("POST", f"/v1/apps/{name}/sync", body)
    operation = _wait_operation(name, started, timeout, output)
    if output == "json":
        print(json.dumps(operation, indent=2))
    else:
        console.print(_operation_view(operation))
    raise typer.Exit(0 if operation.get("phase") == "Succeeded" else 1)


@app.command("history")
def history(name: str, output: str = OutputOpt) -> None:
    """Past syncs: id, when, revision, who."""
    items = (_call("GET", f"/v1/apps/{name}").get("status") or {}).get("history") or []
    if output in ("json", "yaml"):
        _dump(items, output)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "DATE", "REVISION", "INITIATED BY"):
        table.add_column(column)
    for h in items:
        by = h.get("initiatedBy") or {}
        table.add_row(
            str(h.get("id")),
            h.get("deployedAt") or "",
            str(h.get("revision") or "")[:12],
            "automated" if by.get("automated") else by.get("username") or "",
        )
    console.print(table)


@app.command("rollback")
def rollback(
    name: str,
    history_id: int | None = typer.Argument(None, help="history id (default: the previous sync)"),
    timeout: float = typer.Option(600.0, "--timeout"),
    output: str = OutputOpt,
) -> None:
    """Sync an earlier revision from history. With auto-sync on, auto-sync is suspended until re-enabled."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = _call("POST", f"/v1/apps/{name}/rollback", {"id": history_id})
    if result.get("note") and output != "json":
        err.print(f"[yellow]note:[/yellow] {result['note']}", highlight=False)
    operation = _wait_operation(name, started, timeout, output)
    if output == "json":
        print(json.dumps({**result, "operation": operation}, indent=2))
    else:
        console.print(
            f"application {name} rolled back to history {result['id']} "
            f"({str(result['revision'])[:7]}): {operation.get('phase')}",
            highlight=False,
        )
    raise typer.Exit(0 if operation.get("phase") == "Succeeded" else 1)


@app.command("set")
def set_(
    name: str, sync_policy: str = typer.Option(..., "--sync-policy", help="none | automated"), output: str = OutputOpt
) -> None:
    """Switch automated sync on (clears a rollback's suspension) or off."""
    result = _call("POST", f"/v1/apps/{name}/set", {"syncPolicy": sync_policy})
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        console.print(f"application {name}: sync policy {sync_policy}", highlight=False)


@app.command("delete")
def delete(
    name: str,
    cascade: bool = typer.Option(True, "--cascade/--no-cascade", help="also delete the resources the app manages"),
    output: str = OutputOpt,
) -> None:
    """Delete an Application (and, by default, its resources)."""
    result = _call("DELETE", f"/v1/apps/{name}", cascade=str(cascade).lower())
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        console.print(
            f"application {name} deleted"
            + (f" with {len(result['resources'])} resource(s)" if result["resources"] else ""),
            highlight=False,
        )
