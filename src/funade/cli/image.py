"""``funade image …``: commands about container images (lint today; build, push, ls later).

``funade image lint`` runs hadolint and funade's own Dockerfile rules
(:mod:`funade.core.policy.dockerfile`) and prints one report: a table, JSON, or SARIF 2.1.0
for GitHub code scanning. The renderers here are pure functions of the findings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from funade import __version__
from funade.adapters import hadolint
from funade.cli import consoles
from funade.core import policy
from funade.core.policy import Finding, Severity
from funade.core.policy import dockerfile as rules
from funade.engine import lint as lint_engine

__all__ = ["app", "findings_table", "to_json", "to_sarif"]

app = typer.Typer(help="Container images: lint Dockerfiles.", no_args_is_help=True)

_OUTPUTS = ("table", "json", "sarif")
_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "green", Severity.STYLE: "cyan"}
_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.STYLE: "note"}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_INFO_URI = "https://github.com/hadolint/hadolint"


def _fail(message: str, code: int = 2) -> typer.Exit:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


# -- renderers -------------------------------------------------------------------------------------


def findings_table(findings: Sequence[Finding]) -> Table:
    """The table ``funade image lint`` prints: line, rule, severity, message, fix."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("LINE", justify="right", no_wrap=True)
    table.add_column("RULE", no_wrap=True)
    table.add_column("SEVERITY", no_wrap=True)
    table.add_column("MESSAGE", ratio=3)
    table.add_column("FIX", ratio=2)
    for finding in findings:
        table.add_row(
            str(finding.line),
            finding.rule,
            Text(finding.severity.value, style=_STYLES[finding.severity]),
            finding.message,
            finding.fix,
        )
    return table


def summary(findings: Sequence[Finding], threshold: Severity | None) -> str:
    """One line: how many findings of each severity, and whether they fail the threshold."""
    if not findings:
        return "no findings"
    counts = [f"{n} {severity.value}" for severity in Severity if (n := sum(f.severity is severity for f in findings))]
    failing = policy.failing(findings, threshold)
    limit = threshold.value if threshold else "none"
    verdict = f"{len(failing)} at or above the failure threshold ({limit})" if failing else f"threshold {limit} passed"
    noun = "finding" if len(findings) == 1 else "findings"
    return f"{len(findings)} {noun} ({', '.join(counts)}); {verdict}"


def to_json(path: str, findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The findings as JSON objects (hadolint's keys, plus ``fix``)."""
    return [
        {
            "file": path,
            "line": f.line,
            "code": f.rule,
            "level": f.severity.value,
            "message": f.message,
            "fix": f.fix,
        }
        for f in findings
    ]


def _rule_descriptor(rule_id: str, example: Finding) -> dict[str, Any]:
    spec = rules.RULES.get(rule_id)
    if spec is not None:
        return {
            "id": spec.id,
            "name": spec.title.replace(" ", ""),
            "shortDescription": {"text": spec.title},
            "fullDescription": {"text": spec.description},
            "help": {"text": spec.fix, "markdown": f"**{spec.title}**\n\n{spec.description}\n\nFix: {spec.fix}"},
            "defaultConfiguration": {"level": _SARIF_LEVELS[spec.severity]},
            "properties": {"tags": ["dockerfile", "funade"]},
        }
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": example.message or rule_id},
        "help": {"text": f"See {example.fix}", "markdown": f"See [{rule_id}]({example.fix})"},
        "helpUri": example.fix,
        "defaultConfiguration": {"level": _SARIF_LEVELS[example.severity]},
        "properties": {"tags": ["dockerfile", "hadolint" if rule_id.startswith("DL") else "shellcheck"]},
    }


def to_sarif(uri: str, findings: Sequence[Finding]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of the findings, as GitHub code scanning reads it.

    Args:
        uri: the Dockerfile's path relative to the repository root, ``/``-separated.
        findings: what to report.
    """
    order: list[str] = []
    examples: dict[str, Finding] = {}
    for finding in findings:
        if finding.rule not in examples:
            order.append(finding.rule)
            examples[finding.rule] = finding
    index = {rule_id: i for i, rule_id in enumerate(order)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVELS[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": f.line},
                    }
                }
            ],
            "properties": {"severity": f.severity.value},
        }
        for f in findings
    ]
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "funade",
                        "version": __version__,
                        "informationUri": _INFO_URI,
                        "rules": [_rule_descriptor(rule_id, examples[rule_id]) for rule_id in order],
                    }
                },
                "results": results,
            }
        ],
    }


# -- the command --------------------------------------------------------------------------------------


def _sarif_uri(path: Path) -> str:
    relative = os.path.relpath(path.resolve(), Path.cwd())
    if relative.startswith(".."):
        return path.resolve().as_uri()
    return Path(relative).as_posix()


def _read_dockerignore(path: Path, context: Path) -> str | None:
    """BuildKit's order: ``<Dockerfile>.dockerignore`` beside the Dockerfile, then ``<context>/.dockerignore``."""
    for candidate in (path.with_name(path.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            try:
                return candidate.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise _fail(f"cannot read {candidate}: {exc.strerror or exc}") from exc
    return None


@app.command()
def lint(
    dockerfile: Path = typer.Argument(Path("Dockerfile"), help="the Dockerfile to lint", show_default=True),
    context: Path | None = typer.Option(
        None, "--context", "-c", help="the build context (for .dockerignore); default: the Dockerfile's directory"
    ),
    output: str = typer.Option("table", "-o", "--output", help="table | json | sarif"),
    failure_threshold: str = typer.Option(
        "info",
        "-t",
        "--failure-threshold",
        help="exit 1 when a finding is at or above this severity: error | warning | info | style | none. "
        "The default, info, is hadolint's: style findings alone do not fail.",
    ),
) -> None:
    """Lint a Dockerfile with hadolint and funade's own rules (FUN001-FUN006).

    Silence rules with `# funade ignore=FUN003,DL3008` on the line before an instruction, or in
    the file's header (or `# funade global ignore=…`) for the whole file; hadolint's own
    `# hadolint ignore=DL3008` works too. Exit codes: 0 clean, 1 a finding reached the
    failure threshold, 2 usage error (no such file, unreadable, hadolint missing).
    """
    if output not in _OUTPUTS:
        raise _fail(f"invalid output {output!r}: use one of {', '.join(_OUTPUTS)}")
    try:
        threshold = policy.parse_threshold(failure_threshold)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if not dockerfile.exists():
        raise _fail(f"Dockerfile {dockerfile} does not exist")
    if not dockerfile.is_file():
        raise _fail(f"{dockerfile} is not a file (give the path of the Dockerfile)")
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _fail(f"cannot read Dockerfile {dockerfile}: {reason}") from exc
    context_dir = context if context is not None else dockerfile.parent
    if not context_dir.is_dir():
        raise _fail(f"build context {context_dir} is not a directory")
    dockerignore = _read_dockerignore(dockerfile, context_dir)

    try:
        findings = lint_engine.lint(dockerfile, text, dockerignore, hadolint.Hadolint())
    except hadolint.HadolintError as exc:
        raise _fail(str(exc)) from exc

    if output == "json":
        print(json.dumps(to_json(str(dockerfile), findings), indent=2))
    elif output == "sarif":
        print(json.dumps(to_sarif(_sarif_uri(dockerfile), findings), indent=2))
    else:
        consoles.out.print(Text(str(dockerfile), style="bold"))
        if findings:
            consoles.out.print(findings_table(findings))
        consoles.out.print(summary(findings, threshold), highlight=False)
    if policy.failing(findings, threshold):
        raise typer.Exit(1)
