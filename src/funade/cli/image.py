"""``funade image lint|build``: Dockerfiles and images on the Docker Engine (push, ls and promote: imagestore).

``funade image lint`` runs hadolint and funade's own Dockerfile rules
(:mod:`funade.core.policy.dockerfile`) and prints one report: a table, JSON, or SARIF 2.1.0
for GitHub code scanning. ``funade image build`` builds with the Docker Engine, tags the
image from git the way docker/metadata-action does, and prints a per-layer size report.
The renderers here are pure functions of the findings, the build progress and the result.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from funade.adapters import buildcontext, git, hadolint
from funade.adapters.docker import DockerBuilder, DockerClient, DockerError
from funade.cli import consoles, sarif
from funade.core import imagebuild, policy, tagging
from funade.core.policy import Finding, Severity
from funade.core.policy import dockerfile as rules
from funade.engine import build as build_engine
from funade.engine import lint as lint_engine

__all__ = ["app", "build_progress", "build_to_json", "findings_table", "size_table", "to_json", "to_sarif"]

app = typer.Typer(help="Container images: lint, build, push, list and promote.", no_args_is_help=True)

_OUTPUTS = ("table", "json", "sarif")
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
            Text(finding.severity.value, style=sarif.STYLES[finding.severity]),
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
            "defaultConfiguration": {"level": sarif.LEVELS[spec.severity]},
            "properties": {"tags": ["dockerfile", "funade"]},
        }
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": example.message or rule_id},
        "help": {"text": f"See {example.fix}", "markdown": f"See [{rule_id}]({example.fix})"},
        "helpUri": example.fix,
        "defaultConfiguration": {"level": sarif.LEVELS[example.severity]},
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
            "level": sarif.LEVELS[f.severity],
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
    return sarif.log([_rule_descriptor(rule_id, examples[rule_id]) for rule_id in order], results, _INFO_URI)


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


# -- image build ------------------------------------------------------------------------------------

_BUILD_OUTPUTS = ("table", "json")
#: Output lines the live view keeps under the current step.
_TAIL = 6


def build_progress(step: imagebuild.BuildStep | None, lines: Sequence[str], refs: Sequence[str]) -> RenderableType:
    """The live view of a running build: what is built, the current step, its last lines."""
    title = Text("building ", style="bold")
    title.append(refs[0] if refs else "image", style="cyan")
    current = Text(f"  {step}" if step else "  sending the context", style="bold yellow")
    tail = [Text(f"    {line}", style="dim", overflow="ellipsis", no_wrap=True) for line in lines[-_TAIL:]]
    return Group(title, current, *tail)


def size_table(report: imagebuild.SizeReport) -> Table:
    """One row per layer, oldest first: its ID, size and the instruction that made it."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("LAYER", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("INSTRUCTION", overflow="fold")
    for layer in report.layers:
        short = layer.id.removeprefix("sha256:")[:12] if layer.id.startswith("sha256:") else layer.id
        table.add_row(short, imagebuild.human_size(layer.size), imagebuild.instruction(layer.created_by))
    return table


def build_summary(result: build_engine.BuildResult) -> Group:
    """What ``funade image build`` prints when the build succeeded."""
    head = Text.assemble(("image ", "bold"), result.image_id)
    tags = Text.assemble(("tags  ", "bold"), ", ".join(result.refs))
    base = Text.assemble(("base  ", "bold"), result.report.base)
    total = Text.assemble(("total ", "bold"), imagebuild.human_size(result.report.total))
    total.append(f" ({result.report.total} bytes, {len(result.report.layers)} layers)")
    return Group(head, tags, base, size_table(result.report), total)


def build_to_json(result: build_engine.BuildResult) -> dict[str, Any]:
    """The ``-o json`` document of a build."""
    return {
        "image_id": result.image_id,
        "tags": list(result.refs),
        "labels": dict(result.labels),
        "base": result.report.base,
        "layers": [
            {
                "id": layer.id,
                "created_by": layer.created_by,
                "instruction": imagebuild.instruction(layer.created_by),
                "size": layer.size,
                "tags": list(layer.tags),
            }
            for layer in result.report.layers
        ],
        "total": result.report.total,
    }


def _build_args(values: Sequence[str]) -> dict[str, str]:
    """``K=V`` pairs; a bare ``K`` takes its value from the environment, as ``docker build`` does."""
    args: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not key:
            raise _fail(f"invalid --build-arg {value!r}: use NAME=VALUE")
        if not sep:
            if key not in os.environ:
                raise _fail(f"--build-arg {key} has no value and {key} is not set in the environment")
            rest = os.environ[key]
        args[key] = rest
    return args


class _Progress:
    """Feeds build events to a live view on a terminal, or to plain lines on stderr otherwise."""

    def __init__(self, refs: Sequence[str], live: Live | None) -> None:
        self.refs = refs
        self.live = live
        self.step: imagebuild.BuildStep | None = None
        self.lines: deque[str] = deque(maxlen=_TAIL)

    def __call__(self, event: imagebuild.BuildEvent) -> None:
        if isinstance(event, imagebuild.BuildStep):
            self.step = event
            self.lines.clear()
            text = str(event)
        elif isinstance(event, imagebuild.BuildOutput):
            self.lines.append(event.text)
            text = f"  {event.text}"
        else:
            text = f"  built {event.image_id}"
        if self.live is not None:
            self.live.update(build_progress(self.step, list(self.lines), self.refs))
        else:
            consoles.err.print(Text(text), highlight=False)


async def _build(
    build_plan: build_engine.BuildPlan, packed: buildcontext.BuildContext, progress: _Progress
) -> build_engine.BuildResult:
    async with DockerClient() as docker:
        return await build_engine.run(build_plan, packed.tar, packed.dockerfile, DockerBuilder(docker), progress)


def _git_state(context: Path) -> tagging.GitState | None:
    try:
        return git.state(context)
    except git.NotARepository:
        return None
    except git.GitError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def build(
    context: Path = typer.Argument(Path("."), help="the build context directory", show_default=True),
    file: Path | None = typer.Option(None, "-f", "--file", help="the Dockerfile; default: CONTEXT/Dockerfile"),
    repo: str | None = typer.Option(None, "--repo", help="the image repository; default: the context directory's name"),
    tag: list[str] = typer.Option([], "-t", "--tag", help="an extra tag, or a full name:tag reference (repeatable)"),
    target: str | None = typer.Option(None, "--target", help="the stage to build"),
    build_arg: list[str] = typer.Option([], "--build-arg", help="NAME=VALUE for an ARG (repeatable)"),
    platform: str | None = typer.Option(None, "--platform", help="os/arch[/variant] to build for"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not reuse cached steps"),
    pull: bool = typer.Option(False, "--pull", help="pull newer base images first (off: no registry needed)"),
    sha_format: tagging.ShaFormat = typer.Option(
        tagging.ShaFormat.PREFIXED, "--sha-format", help="prefixed: sha-1a2b3c4; short: 1a2b3c4"
    ),
    default_branch: str | None = typer.Option(
        None, "--default-branch", help="the branch that gets `latest`; default: main or master"
    ),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="build uncommitted changes, or a directory outside git (tagged sha-unknown)"
    ),
    output: str = typer.Option("table", "-o", "--output", help="table | json"),
) -> None:
    """Build an image with the Docker Engine, tagged from git, and report its layers' sizes.

    Tags follow docker/metadata-action: `sha-<7 chars of HEAD>`, the version of a `v*`
    semver tag at HEAD (`v1.2.3` gives `1.2.3`; only the `{{version}}` pattern), and `latest`
    when HEAD is the default branch; plus `-t` tags. The image gets the OCI labels source,
    revision, created and version. A dirty work tree is refused unless --allow-dirty.
    Exit codes: 0 built, 1 refused or the build failed, 2 usage error.
    """
    if output not in _BUILD_OUTPUTS:
        raise _fail(f"invalid output {output!r}: use one of {', '.join(_BUILD_OUTPUTS)}")
    if not context.is_dir():
        raise _fail(f"build context {context} is not a directory")
    dockerfile = file if file is not None else context / "Dockerfile"
    if not dockerfile.is_file():
        raise _fail(f"Dockerfile {dockerfile} does not exist")
    repository = repo if repo is not None else tagging.repository_name(context.resolve().name)
    request = build_engine.BuildRequest(
        repository=repository,
        extra_tags=tuple(tag),
        target=target,
        build_args=_build_args(build_arg),
        platform=platform,
        no_cache=no_cache,
        pull=pull,
        allow_dirty=allow_dirty,
        default_branch=default_branch,
        sha_format=sha_format,
    )
    state = _git_state(context)
    try:
        build_plan = build_engine.plan(request, state, datetime.now(UTC))
    except build_engine.BuildRefused as exc:
        raise _fail(str(exc), 1) from exc
    if state is None:
        consoles.err.print("[yellow]warning:[/yellow] not a git repository: no commit to tag the image from")
    elif state.dirty_paths:
        consoles.err.print(f"[yellow]warning:[/yellow] building uncommitted changes ({len(state.dirty_paths)} paths)")
    try:
        packed = buildcontext.pack(context, dockerfile)
    except buildcontext.ContextError as exc:
        raise _fail(str(exc)) from exc

    live = consoles.err.is_terminal and output == "table"
    try:
        if live:
            with Live(build_progress(None, [], build_plan.refs), console=consoles.err, transient=True) as view:
                result = asyncio.run(_build(build_plan, packed, _Progress(build_plan.refs, view)))
        else:
            result = asyncio.run(_build(build_plan, packed, _Progress(build_plan.refs, None)))
    except imagebuild.BuildError as exc:
        raise _fail(f"build failed: {exc}", 1) from exc
    except DockerError as exc:
        raise _fail(str(exc), 1) from exc

    if output == "json":
        print(json.dumps(build_to_json(result), indent=2))
    else:
        consoles.out.print(build_summary(result))
