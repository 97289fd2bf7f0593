"""``funade analysis run``: run AnalysisTemplates against this machine's metrics, as a Rollout would.

Useful on its own to try a template (the seed's ``success-rate`` against the embedded
Prometheus) before a rollout depends on it: every measurement is printed as it is taken,
and the exit code says how the run ended (0 Successful; 1 Failed, Error or Inconclusive).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import typer
import yaml
from rich.text import Text

from funade.adapters.metrics import LocalMetrics
from funade.adapters.prometheus.server import PrometheusServer
from funade.cli import consoles
from funade.cli.client import funade_home
from funade.core import analysis
from funade.core.analysis import AnalysisState, Measurement, Phase
from funade.engine import analysis as analysis_engine

__all__ = ["app", "measurement_line"]

app = typer.Typer(help="Analysis: run AnalysisTemplates against Prometheus and web metrics.", no_args_is_help=True)

_STYLES = {
    Phase.SUCCESSFUL: "green",
    Phase.FAILED: "bold red",
    Phase.ERROR: "red",
    Phase.INCONCLUSIVE: "yellow",
    Phase.RUNNING: "cyan",
    Phase.PENDING: "dim",
}


def _fail(message: str, code: int = 2) -> typer.Exit:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def measurement_line(metric: str, measurement: Measurement, state: AnalysisState) -> Text:
    """One line per measurement: when, which metric, its phase, the value and the counters."""
    result = state.result(metric)
    counts = (
        f"  (successful {result.successful}, failed {result.failed}, inconclusive {result.inconclusive}, "
        f"error {result.error})"
        if result
        else ""
    )
    at = (measurement.finished_at or measurement.started_at).astimezone(UTC)
    line = Text(f"{at:%H:%M:%S}  {metric}  ")
    line.append(measurement.phase.value, style=_STYLES.get(measurement.phase, ""))
    line.append(f"  value={json.dumps(measurement.value, default=str)}")
    if measurement.message:
        line.append(f"  {measurement.message}")
    line.append(counts, style="dim")
    return line


def _templates(files: list[Path], count: int | None, interval: str | None) -> list[analysis.AnalysisTemplate]:
    found = []
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise _fail(f"{path}: {exc}") from exc
        for doc in docs:
            if doc.get("kind") not in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
                continue
            for metric in (doc.get("spec") or {}).get("metrics") or []:
                if count is not None:
                    metric["count"] = count
                if interval is not None:
                    metric["interval"] = interval
            try:
                found.append(analysis.parse_template(doc))
            except analysis.AnalysisError as exc:
                raise _fail(f"{path}: {exc}") from exc
    if not found:
        raise _fail("no AnalysisTemplate or ClusterAnalysisTemplate in " + ", ".join(map(str, files)))
    return found


@app.command("run")
def run_command(
    file: list[Path] = typer.Option(..., "-f", "--filename", help="AnalysisTemplate files (repeatable)"),
    arg: list[str] = typer.Option([], "--arg", help="NAME=VALUE for the templates' args (repeatable)"),
    count: int | None = typer.Option(None, "--count", help="measurements per metric (overrides the templates)"),
    interval: str | None = typer.Option(None, "--interval", help="time between measurements, e.g. 5s (overrides)"),
    output: str = typer.Option("table", "-o", "--output", help="table | json"),
) -> None:
    """Run an analysis now and print each measurement; Ctrl-C terminates it as a promotion would.

    Prometheus addresses that are not on loopback (an in-cluster name such as the seed's
    prometheus.monitoring:9090) are served by the embedded Prometheus (`funade up` starts it).
    """
    if output not in ("table", "json"):
        raise _fail(f"invalid output {output!r}: use table or json")
    args: dict[str, str] = {}
    for item in arg:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise _fail(f"--arg {item!r}: use NAME=VALUE")
        args[name] = value
    try:
        run = analysis.new_run(_templates(file, count, interval), args, name="cli")
    except analysis.AnalysisError as exc:
        raise _fail(str(exc)) from exc
    prometheus = PrometheusServer.of_home(funade_home())
    metrics = LocalMetrics(prometheus.url if prometheus.status().running else None)

    def show(metric: str, measurement: Measurement, state: AnalysisState) -> None:
        if output == "table":
            consoles.out.print(measurement_line(metric, measurement, state))

    async def go() -> AnalysisState:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await analysis_engine.run(run, metrics, lambda: datetime.now(UTC), show, stop=stop)

    state = asyncio.run(go())
    for original, embedded in metrics.mapped.items():
        consoles.err.print(f"note: {original} was served by the embedded Prometheus at {embedded}", highlight=False)
    if output == "json":
        print(json.dumps(analysis.status_of(state), indent=2, default=str))
    else:
        final = Text("analysis ")
        final.append(state.phase.value, style=_STYLES.get(state.phase, "bold"))
        if state.message:
            final.append(f": {state.message}")
        consoles.out.print(final)
    if state.phase is not Phase.SUCCESSFUL:
        raise typer.Exit(1)
