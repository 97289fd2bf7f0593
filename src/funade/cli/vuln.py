"""`funade vuln db …`: keep the local OSV vulnerability data current (update, import, status).

Scans read advisories from a SQLite file under ``$FUNADE_HOME``
(:class:`funade.adapters.vulndb.VulnDB`); these commands fill it from osv.dev's
per-ecosystem archives (or a mirror: ``--url-base`` / ``$FUNADE_OSV_URL_BASE``) or from a
zip or directory on disk, and say how fresh it is.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.progress import BarColumn, DownloadColumn, TaskID, TextColumn, TransferSpeedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from funade.adapters import vulndb
from funade.cli import consoles
from funade.cli.client import ApiError, Client, funade_home

__all__ = ["app", "parse_age"]

app = typer.Typer(help="Vulnerability data (OSV) for image scans.", no_args_is_help=True)
db_app = typer.Typer(help="The local OSV database: update, import, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")

OutputOpt = typer.Option("text", "-o", "--output", help="text | json")
DEFAULT_MAX_AGE = "5d"
_MAX_PROBLEMS_SHOWN = 20
_DEFAULT_ECOSYSTEMS = ", ".join(vulndb.DEFAULT_ECOSYSTEMS)


def _fail(message: str, code: int = 1) -> NoReturn:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _check_output(output: str) -> None:
    if output not in ("text", "json"):
        _fail(f"--output: expected text or json, got {output!r}", 2)


def _open() -> vulndb.VulnDB:
    try:
        return vulndb.VulnDB(vulndb.default_path(funade_home()))
    except Exception as exc:  # sqlite3.Error or OSError: say which file
        _fail(f"{vulndb.default_path(funade_home())}: {exc}")


def parse_age(text: str) -> float:
    """``5d``, ``36h``, ``90m``, ``30s`` or a bare number of days → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if not match:
        raise ValueError(f"expected an age like 5d, 36h or 90m, got {text!r}")
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 86400}[match.group(2)]
    return float(match.group(1)) * unit


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)}h"
    return f"{seconds / 86400:.1f}d"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_problems(problems: tuple[vulndb.Problem, ...]) -> None:
    for problem in problems[:_MAX_PROBLEMS_SHOWN]:
        consoles.err.print(f"[yellow]skipped[/yellow] {problem.item}: {problem.message}", highlight=False)
    if len(problems) > _MAX_PROBLEMS_SHOWN:
        consoles.err.print(f"… and {len(problems) - _MAX_PROBLEMS_SHOWN} more skipped", highlight=False)


def _stats_line(stats: vulndb.ImportStats) -> str:
    return (
        f"{stats.imported} advisories ({stats.added} new, {stats.replaced} updated, {stats.unchanged} unchanged, "
        f"{stats.withdrawn} withdrawn), {len(stats.problems)} skipped"
    )


@db_app.command("update")
def update(
    ecosystem: list[str] = typer.Option(
        [], "--ecosystem", "-e", help=f"an OSV ecosystem (repeatable); default: {_DEFAULT_ECOSYSTEMS}"
    ),
    url_base: str | None = typer.Option(
        None,
        "--url-base",
        help=f"where {{ecosystem}}/all.zip live; default $FUNADE_OSV_URL_BASE or {vulndb.DEFAULT_URL_BASE}",
    ),
    output: str = OutputOpt,
) -> None:
    """Download the OSV archives (resumable) and import the ones that changed.

    Every archive is downloaded before any is imported: an unreachable URL changes nothing.
    """
    _check_output(output)
    urls = vulndb.default_urls(ecosystem or vulndb.DEFAULT_ECOSYSTEMS, url_base)
    db = _open()
    try:
        if output == "text" and consoles.err.is_terminal:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
            )
            with RichProgress(*columns, console=consoles.err, transient=True) as bar:
                tasks: dict[str, TaskID] = {}

                def show(event: vulndb.Progress) -> None:
                    task = tasks.get(event.ecosystem)
                    if task is None:
                        task = tasks[event.ecosystem] = bar.add_task(event.ecosystem, total=None)
                    if event.phase == "download":
                        bar.update(task, completed=event.received, total=event.total)
                    else:
                        bar.update(task, description=f"{event.ecosystem} ({event.phase})")

                results = db.update(urls, on_progress=show)
        else:
            results = db.update(urls)
    except vulndb.ImportRefused as exc:
        _print_problems(exc.problems)
        _fail(str(exc))
    except vulndb.VulnDBError as exc:
        _fail(f"{exc}; the vulnerability data was not changed")
    finally:
        db.close()
    if any(not r.unchanged for r in results):
        _rescan()
    if output == "json":
        print(json.dumps({"results": [r.to_json() for r in results]}, indent=2, ensure_ascii=False))
        return
    for result in results:
        if result.unchanged:
            consoles.out.print(f"{result.ecosystem}: unchanged ({result.url})", highlight=False)
        elif result.stats is not None:
            resumed = f", resumed at {result.resumed_from} bytes" if result.resumed_from else ""
            consoles.out.print(f"{result.ecosystem}: {_stats_line(result.stats)}{resumed}", highlight=False)
            _print_problems(result.stats.problems)


def _rescan() -> None:
    """Tell a running server the data changed, so stored images are scanned again now (it rechecks anyway)."""
    client = Client(timeout=5)
    try:
        client.post("/v1/scans/refresh", {})
    except ApiError:
        pass  # no server: it rescans when it next starts
    finally:
        client.close()


@db_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="an OSV zip (all.zip) or a directory of OSV JSON files"),
    output: str = OutputOpt,
) -> None:
    """Import advisories from a zip or a directory; invalid files are skipped and listed.

    When more than half the files are invalid the import is refused and nothing changes.
    """
    _check_output(output)
    db = _open()
    try:
        stats = db.import_path(path)
    except vulndb.ImportRefused as exc:
        _print_problems(exc.problems)
        _fail(str(exc))
    except vulndb.VulnDBError as exc:
        _fail(str(exc))
    finally:
        db.close()
    _rescan()
    if output == "json":
        print(json.dumps(stats.to_json(), indent=2, ensure_ascii=False))
        return
    consoles.out.print(f"{path}: {_stats_line(stats)}", highlight=False)
    _print_problems(stats.problems)


@db_app.command("status")
def status(
    max_age: str = typer.Option(DEFAULT_MAX_AGE, "--max-age", help="warn when the data is older (5d, 36h, 90m)"),
    output: str = OutputOpt,
) -> None:
    """Sources, advisories per ecosystem and the data's age; exits 1 when there is no data."""
    _check_output(output)
    try:
        limit = parse_age(max_age)
    except ValueError as exc:
        _fail(f"--max-age: {exc}", 2)
    db = _open()
    try:
        sources, counts, at = db.sources(), db.stats(), db.imported_at()
    finally:
        db.close()
    now = time.time()
    warnings = []
    if at is None:
        warnings.append("no vulnerability data: run `funade vuln db update` or `funade vuln db import PATH`")
    for source in sources:
        if now - source.checked_at > limit:
            warnings.append(f"{source.name}: data is {_age(now - source.checked_at)} old (more than {max_age})")
    if output == "json":
        document = {
            "path": str(vulndb.default_path(funade_home())),
            "imported_at": at,
            "age_seconds": None if at is None else now - at,
            "max_age_seconds": limit,
            "stale": any(now - s.checked_at > limit for s in sources),
            "sources": [s.to_json() for s in sources],
            "ecosystems": [c.to_json() for c in counts],
            "warnings": warnings,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        if sources:
            table = Table("SOURCE", "ADVISORIES", "IMPORTED", "CHECKED", "AGE", "SHA256", box=None)
            for s in sources:
                checksum = (s.checksum or "-").removeprefix("sha256:")[:12]
                table.add_row(
                    s.name, str(s.count), _when(s.imported_at), _when(s.checked_at), _age(now - s.checked_at), checksum
                )
            consoles.out.print(table)
        if counts:
            table = Table("ECOSYSTEM", "ADVISORIES", "WITHDRAWN", "PACKAGES", box=None)
            for c in counts:
                table.add_row(c.ecosystem, str(c.advisories), str(c.withdrawn), str(c.packages))
            consoles.out.print(table)
        for warning in warnings:
            consoles.err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if at is None:
        raise typer.Exit(1)
