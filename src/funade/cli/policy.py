"""``funade policy check``: manifests against the Pod Security Standards and the seed's anti-patterns.

The rules live in :mod:`funade.core.policy.manifests`; this module reads the manifests
(``-f`` files, directories or stdin, ``-k`` kustomizations, as ``funade apply`` does),
renders the findings as a table, JSON or SARIF 2.1.0, and turns them into an exit code:
0 clean, 1 a finding at or above ``--failure-threshold``, 2 a usage error.
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

from funade.cli import consoles, sarif, sources
from funade.core import manifests
from funade.core import policy as core_policy
from funade.core.policy import Severity
from funade.core.policy import manifests as rules
from funade.core.policy.manifests import ManifestFinding, Profile

__all__ = ["app", "findings_table", "load_documents", "summary", "to_json", "to_sarif"]

app = typer.Typer(help="Policy checks over Kubernetes manifests.", no_args_is_help=True)

_OUTPUTS = ("table", "json", "sarif")
_THRESHOLDS = ("error", "warning", "info", "none")
_INFO_URI = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"


def _fail(message: str, code: int = 2) -> typer.Exit:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


# -- reading manifests ---------------------------------------------------------------------------


def _sources(files: Sequence[str], kustomize_dir: str | None, recursive: bool) -> list[tuple[str, str]]:
    try:
        return sources.read_sources(files, kustomize_dir, recursive, "check")
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc


def load_documents(
    files: Sequence[str], kustomize_dir: str | None = None, recursive: bool = False
) -> list[manifests.Document]:
    """Every object of the given manifests, with the lines it came from (exits 2 on a bad file)."""
    documents: list[manifests.Document] = []
    for source, text in _sources(files, kustomize_dir, recursive):
        try:
            documents += manifests.load_documents(text, source)
        except manifests.ManifestError as exc:
            raise _fail(str(exc)) from exc
    return documents


# -- renderers ---------------------------------------------------------------------------------------


def findings_table(findings: Sequence[ManifestFinding]) -> Table:
    """The table ``funade policy check`` prints: where, rule, severity, message, fix."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("WHERE", no_wrap=True)
    table.add_column("RULE", no_wrap=True)
    table.add_column("SEVERITY", no_wrap=True)
    table.add_column("MESSAGE", ratio=3)
    table.add_column("FIX", ratio=2)
    for finding in findings:
        table.add_row(
            f"{finding.source}:{finding.line}",
            finding.rule,
            Text(finding.severity.value, style=sarif.STYLES[finding.severity]),
            finding.message,
            finding.fix,
        )
    return table


def summary(findings: Sequence[ManifestFinding], threshold: Severity | None, objects: int) -> str:
    """One line: objects checked, findings per severity, and the verdict against the threshold."""
    limit = threshold.value if threshold else "none"
    checked = f"{objects} object{'s' if objects != 1 else ''} checked"
    if not findings:
        return f"{checked}: no findings"
    counts = [f"{n} {s.value}" for s in Severity if (n := sum(f.severity is s for f in findings))]
    failing = core_policy.failing(findings, threshold)
    verdict = f"{len(failing)} at or above the failure threshold ({limit})" if failing else f"threshold {limit} passed"
    noun = "finding" if len(findings) == 1 else "findings"
    return f"{checked}: {len(findings)} {noun} ({', '.join(counts)}); {verdict}"


def _peers(rule_id: str) -> dict[str, str]:
    return dict(rules.RULES[rule_id].peers.items())


def to_json(findings: Sequence[ManifestFinding]) -> list[dict[str, Any]]:
    """The findings as JSON objects."""
    return [
        {
            "file": f.source,
            "line": f.line,
            "object": f.object,
            "field": f.path,
            "rule": f.rule,
            "level": f.severity.value,
            "message": f.message,
            "fix": f.fix,
            "peers": _peers(f.rule),
        }
        for f in findings
    ]


def _rule_descriptor(rule_id: str) -> dict[str, Any]:
    spec = rules.RULES[rule_id]
    peers = "; ".join(f"{tool}: {check}" for tool, check in spec.peers.items())
    markdown = f"**{spec.title}**\n\n{spec.description}\n\nFix: {spec.fix}"
    if peers:
        markdown += f"\n\nEquivalent checks: {peers}"
    return {
        "id": spec.id,
        "name": "".join(word.capitalize() for word in spec.title.replace("/", " ").split() if word.isalnum()),
        "shortDescription": {"text": spec.title},
        "fullDescription": {"text": spec.description},
        "help": {"text": spec.fix, "markdown": markdown},
        "defaultConfiguration": {"level": sarif.LEVELS[spec.severity]},
        "properties": {
            "tags": ["kubernetes", "funade", *(["production"] if spec.production_only else [])],
            "control": spec.control,
            "peers": dict(spec.peers.items()),
        },
    }


def _sarif_uri(source: str) -> str:
    if source == manifests.STDIN:
        return "stdin"
    path = Path(source.removesuffix(sources.KUSTOMIZE_SUFFIX))
    relative = os.path.relpath(path.resolve(), Path.cwd())
    if relative.startswith(".."):
        return path.resolve().as_uri()
    return Path(relative).as_posix()


def to_sarif(findings: Sequence[ManifestFinding]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of the findings, as GitHub code scanning reads it."""
    order = list(dict.fromkeys(f.rule for f in findings))
    index = {rule_id: i for i, rule_id in enumerate(order)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": sarif.LEVELS[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _sarif_uri(f.source)},
                        "region": {"startLine": f.line},
                    },
                    "logicalLocations": [{"name": f.path, "fullyQualifiedName": f"{f.object}: {f.path}"}],
                }
            ],
            "properties": {"severity": f.severity.value, "object": f.object, "field": f.path},
        }
        for f in findings
    ]
    return sarif.log([_rule_descriptor(rule_id) for rule_id in order], results, _INFO_URI)


# -- the command ---------------------------------------------------------------------------------------


@app.command()
def check(
    filename: list[str] = typer.Option([], "-f", "--filename", help="FILE, DIR or - (stdin); repeatable"),
    kustomize_dir: str | None = typer.Option(None, "-k", "--kustomize", help="a kustomization directory"),
    recursive: bool = typer.Option(False, "-R", "--recursive", help="read directories recursively"),
    profile: str = typer.Option("default", "--profile", help="default | production"),
    failure_threshold: str = typer.Option(
        "warning",
        "-t",
        "--failure-threshold",
        help="exit 1 when a finding is at or above this severity: error | warning | info | none",
    ),
    output: str = typer.Option("table", "-o", "--output", help="table | json | sarif"),
) -> None:
    """Check Kubernetes manifests against the Pod Security Standards and the seed's anti-patterns.

    Pod templates of Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs
    and Argo Rollouts are checked; PodDisruptionBudgets, NetworkPolicies and HPAs in the same
    input count for the presence rules. `--profile production` adds the replica (>= 3), PDB,
    topology-spread and pinned-image rules. Silence rules per object with the annotations
    `funade.io/ignore-checks: "FUN-K8S-025,FUN-K8S-026"` and `funade.io/ignore-reason: "…"`
    (an ignore without a reason is not honoured). Exit codes: 0 clean, 1 a finding reached
    the failure threshold, 2 usage error (bad option, unreadable or invalid file).
    """
    if output not in _OUTPUTS:
        raise _fail(f"invalid output {output!r}: use one of {', '.join(_OUTPUTS)}")
    try:
        chosen = Profile(profile.strip().lower())
    except ValueError:
        raise _fail(f"invalid profile {profile!r}: use one of {', '.join(p.value for p in Profile)}") from None
    if failure_threshold.strip().lower() not in _THRESHOLDS:
        raise _fail(f"invalid failure threshold {failure_threshold!r}: use one of {', '.join(_THRESHOLDS)}")
    threshold = core_policy.parse_threshold(failure_threshold)

    documents = load_documents(filename, kustomize_dir, recursive)
    if not documents:
        raise _fail("no objects in the input")
    findings = rules.check(documents, chosen)

    if output == "json":
        print(json.dumps(to_json(findings), indent=2))
    elif output == "sarif":
        print(json.dumps(to_sarif(findings), indent=2))
    else:
        if findings:
            consoles.out.print(findings_table(findings))
        consoles.out.print(summary(findings, threshold, len(documents)), highlight=False)
    if core_policy.failing(findings, threshold):
        raise typer.Exit(1)
