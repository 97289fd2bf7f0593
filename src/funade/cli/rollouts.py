"""`funade rollout get|promote|abort|retry` for Argo Rollouts, and the live view `get --watch` shows.

The view is a pure function of what the server returns (the Rollout, its revisions with
their pods, its AnalysisRuns), so it is tested on a fixed-width console; `--watch`
redraws it with rich Live until the rollout is Healthy or Degraded, or Ctrl-C.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from funade.cli import consoles
from funade.cli.client import ApiError, Client

__all__ = ["register", "view_renderable"]

Obj = dict[str, Any]
console = consoles.out
err = consoles.err

_PHASE_STYLE = {"Healthy": "green", "Progressing": "yellow", "Paused": "cyan", "Degraded": "red"}
_PHASE_ICON = {"Healthy": "✔", "Progressing": "◌", "Paused": "॥", "Degraded": "✖"}
_RUN_STYLE = {
    "Successful": "green",
    "Running": "yellow",
    "Pending": "dim",
    "Inconclusive": "cyan",
    "Error": "red",
    "Failed": "red",
}
HASH_LABEL = "rollouts-pod-template-hash"  # core.rollout.POD_HASH_LABEL (not imported: the CLI starts light)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _post(path: str, body: Obj | None = None) -> Obj:
    try:
        result: Obj = Client().post(path, body or {})
    except ApiError as exc:
        raise _fail(str(exc)) from exc
    return result


def _view(namespace: str, name: str) -> Obj:
    try:
        result: Obj = Client().get(f"/v1/rollouts/{namespace}/{name}/view")
    except ApiError as exc:
        raise _fail(str(exc)) from exc
    return result


def _age(created: str | None, now: datetime) -> str:
    if not created:
        return ""
    seconds = int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    if seconds < 120:
        return f"{max(0, seconds)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _images(template: Obj) -> list[str]:
    return [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]


def _pod_state(pod: Obj) -> tuple[str, str]:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    if ready:
        return "✔ Running", "green"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            return f"◌ {waiting.get('reason', 'Waiting')}", "yellow"
    phase = str(status.get("phase") or "Pending")
    return f"◌ {phase}" + ("" if phase != "Running" else " (not ready)"), "yellow"


def _last_value(run: Obj) -> str:
    parts = []
    for result in (run.get("status") or {}).get("metricResults") or []:
        measurements = result.get("measurements") or []
        counts = f"✔ {result.get('successful', 0)} ✖ {result.get('failed', 0)}"
        if result.get("inconclusive"):
            counts += f" ? {result['inconclusive']}"
        if result.get("error"):
            counts += f" ⚠ {result['error']}"
        value = json.dumps(measurements[-1].get("value")) if measurements else "-"
        parts.append(f"{result.get('name')}={value} ({counts})")
    return "; ".join(parts)


def view_renderable(view: Obj, now: datetime | None = None) -> RenderableType:
    """The `rollout get` view: summary, revisions with their pods, analysis runs and measurements."""
    now = now or datetime.now(UTC)
    rollout = view["rollout"]
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    style = _PHASE_STYLE.get(phase, "")
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("Name:", rollout["metadata"]["name"])
    summary.add_row("Namespace:", rollout["metadata"].get("namespace", "default"))
    summary.add_row("Status:", Text(f"{_PHASE_ICON.get(phase, '?')} {phase}", style=style))
    if status.get("message"):
        summary.add_row("Message:", Text(str(status["message"]), style=style if phase == "Degraded" else ""))
    strategy = spec.get("strategy") or {}
    if "canary" in strategy:
        steps = (strategy["canary"] or {}).get("steps") or []
        weights = (status.get("canary") or {}).get("weights") or {}
        summary.add_row("Strategy:", "Canary")
        summary.add_row("  Step:", f"{status.get('currentStepIndex', 0)}/{len(steps)}")
        summary.add_row(
            "  Weight:",
            f"canary {weights.get('canary', {}).get('weight', 0)}%, "
            f"stable {weights.get('stable', {}).get('weight', 100)}%",
        )
    else:
        bg = status.get("blueGreen") or {}
        summary.add_row("Strategy:", "BlueGreen")
        summary.add_row("  Active:", str(bg.get("activeSelector") or "-"))
        summary.add_row("  Preview:", str(bg.get("previewSelector") or "-"))
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    summary.add_row(
        "Replicas:",
        f"desired {spec.get('replicas', 1)}, current {status.get('replicas', 0)}, "
        f"updated {status.get('updatedReplicas', 0)}, "
        f"ready {status.get('readyReplicas', 0)}, available {status.get('availableReplicas', 0)}",
    )

    tree = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("NAME", "KIND", "STATUS", "AGE", "INFO"):
        tree.add_column(column, no_wrap=column != "INFO")
    for item in view.get("replicaSets") or []:
        rs = item["replicaSet"]
        pod_hash = (rs["metadata"].get("labels") or {}).get(HASH_LABEL)
        revision = (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "?")
        tags = [
            t
            for t, h in (("stable", stable), ("canary" if "canary" in strategy else "preview", current))
            if h == pod_hash
        ]
        if "blueGreen" in strategy and pod_hash == (status.get("blueGreen") or {}).get("activeSelector"):
            tags = ["active", *[t for t in tags if t != "stable"]]
        replicas = int((rs.get("spec") or {}).get("replicas", 0))
        state = (
            "✔ Healthy"
            if replicas and (rs.get("status") or {}).get("availableReplicas", 0) >= replicas
            else ("• ScaledDown" if not replicas else "◌ Progressing")
        )
        info = f"revision:{revision} {','.join(tags)} {' '.join(_images(rs['spec']['template']))}".strip()
        tree.add_row(
            f"⧉ {rs['metadata']['name']}", "ReplicaSet", state, _age(rs["metadata"].get("creationTimestamp"), now), info
        )
        for pod in item.get("pods") or []:
            text, pod_style = _pod_state(pod)
            restarts = sum(
                int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or []
            )
            tree.add_row(
                f"  □ {pod['metadata']['name']}", "Pod", Text(text, style=pod_style),
                _age(pod["metadata"].get("creationTimestamp"), now), f"restarts:{restarts}" if restarts else "",
            )  # fmt: skip
    for run in view.get("analysisRuns") or []:
        run_phase = str((run.get("status") or {}).get("phase") or "Pending")
        tree.add_row(
            f"α {run['metadata']['name']}", "AnalysisRun", Text(run_phase, style=_RUN_STYLE.get(run_phase, "")),
            _age(run["metadata"].get("creationTimestamp"), now), _last_value(run),
        )  # fmt: skip
    return Group(summary, Text(""), tree)


def _done(view: Obj) -> bool:
    phase = ((view["rollout"].get("status") or {}).get("phase")) or ""
    return phase in ("Healthy", "Degraded")


def get(
    name: str = typer.Argument(..., help="the Rollout's name (rollout/NAME also works)"),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    watch: bool = typer.Option(False, "-w", "--watch", help="redraw live until Healthy or Degraded (Ctrl-C stops)"),
    timeout: float = typer.Option(0.0, "--timeout", help="with --watch: give up after this many seconds (0: never)"),
    output: str = typer.Option("", "-o", "--output", help="json"),
) -> None:
    """Show a Rollout: step, weights, revisions with their pods, analysis runs and their measurements."""
    name = name.removeprefix("rollout/").removeprefix("rollouts/")
    view = _view(namespace, name)
    if output == "json":
        print(json.dumps(view, indent=2))
        return
    if not watch:
        console.print(view_renderable(view))
        return
    deadline = time.monotonic() + timeout if timeout else None
    with Live(view_renderable(view), console=console, refresh_per_second=4) as live:
        while not _done(view):
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.5)
            view = _view(namespace, name)
            live.update(view_renderable(view))
    phase = (view["rollout"].get("status") or {}).get("phase")
    raise typer.Exit(0 if phase == "Healthy" else 1)


def _say(verb: str, name: str, output: str, result: Obj) -> None:
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        console.print(f"rollout.argoproj.io/{name} {verb}", highlight=False)


def promote(
    name: str = typer.Argument(...),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    full: bool = typer.Option(False, "--full", help="skip every remaining step, pause and analysis"),
    output: str = typer.Option("", "-o", "--output", help="json"),
) -> None:
    """Move a paused Rollout past its current step (or to the end with --full)."""
    name = name.removeprefix("rollout/")
    _say(
        "promoted" + (" (full)" if full else ""),
        name,
        output,
        _post(f"/v1/rollouts/{namespace}/{name}/promote", {"full": full}),
    )


def abort(
    name: str = typer.Argument(...),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option("", "-o", "--output", help="json"),
) -> None:
    """Stop the update: traffic back to the stable revision at once."""
    name = name.removeprefix("rollout/")
    _say("aborted", name, output, _post(f"/v1/rollouts/{namespace}/{name}/abort"))


def retry(
    name: str = typer.Argument(...),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    output: str = typer.Option("", "-o", "--output", help="json"),
) -> None:
    """Start an aborted update over from its first step."""
    name = name.removeprefix("rollout/")
    _say("retried", name, output, _post(f"/v1/rollouts/{namespace}/{name}/retry"))


def undo(name: str, namespace: str, to_revision: int | None, output: str) -> None:
    """Roll a Rollout back to an earlier revision's template (called by `rollout undo rollout/NAME`)."""
    result = _post(f"/v1/rollouts/{namespace}/{name}/undo", {"toRevision": to_revision})
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        console.print(f"rollout.argoproj.io/{name} rolled back (to revision {result['revision']})", highlight=False)


def register(rollout_app: typer.Typer) -> None:
    rollout_app.command("get")(get)
    rollout_app.command("promote")(promote)
    rollout_app.command("abort")(abort)
    rollout_app.command("retry")(retry)
