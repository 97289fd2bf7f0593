"""`funade registry …`: the embedded registry (up, down, status, gc) and rules for any registry.

Tag mutability, ECR lifecycle policies and GHCR-style cleanup work on any OCI registry;
evaluation is pure (:mod:`funade.core.lifecycle`), the inventory and the deletes are the
engine's (:mod:`funade.engine.registry`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.table import Table
from rich.text import Text

from funade.adapters.registry.client import RegistryError as RegistryClientError
from funade.adapters.registry.server import DEFAULT_ADDRESS, RegistryServer, RegistryStatus, ServerError
from funade.adapters.registry.settings import RepositorySettings, SettingsError
from funade.cli import consoles, registries
from funade.cli.client import DEFAULT_ADDRESS as SERVER_ADDRESS
from funade.cli.client import ApiError, funade_home
from funade.core import imagebuild, immutability, lifecycle, oci, registryevents
from funade.engine import registry as registry_engine

__all__ = ["app"]

app = typer.Typer(help="The embedded image registry (CNCF distribution).", no_args_is_help=True)
AddressOpt = typer.Option(DEFAULT_ADDRESS, "--address", envvar="FUNADE_REGISTRY", help="HOST:PORT on loopback")
OutputOpt = typer.Option("text", "-o", "--output", help="text | json")
IgnoreWorkloadsOpt = typer.Option(
    False, "--ignore-workloads", help="do not ask the server which images workloads run (they are then not protected)"
)
NoGcOpt = typer.Option(False, "--no-gc", help="do not run the embedded registry's garbage collection afterwards")


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
                ensure_ascii=False,
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


# -- tag mutability --------------------------------------------------------------------------------


@app.command("tag-mutability")
def tag_mutability(
    repository: str = typer.Argument(..., help="REPOSITORY or REGISTRY/REPOSITORY"),
    mode: str | None = typer.Argument(
        None, help="MUTABLE | IMMUTABLE | IMMUTABLE_WITH_EXCLUSION | MUTABLE_WITH_EXCLUSION; none: show"
    ),
    exclude: list[str] = typer.Option([], "--exclude", help="a WILDCARD exclusion filter, e.g. 'latest' (repeatable)"),
    output: str = OutputOpt,
) -> None:
    """Show or set which tags of a repository may be moved (ECR's imageTagMutability).

    funade enforces it on `image push` and `image promote`: overwriting an immutable tag
    fails with ECR's ImageTagAlreadyExistsException message.
    """
    ref = _repository(repository)
    settings = RepositorySettings(funade_home())
    try:
        if mode is not None:
            setting = immutability.parse(
                {
                    "imageTagMutability": mode,
                    **(
                        {
                            "imageTagMutabilityExclusionFilters": [
                                {"filterType": "WILDCARD", "filter": f} for f in exclude
                            ]
                        }
                        if exclude
                        else {}
                    ),
                }
            )
            settings.set_mutability(ref.registry, ref.repository, setting)
        current = settings.mutability(ref.registry, ref.repository)
    except (immutability.MutabilityError, SettingsError) as exc:
        consoles.err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1 if isinstance(exc, SettingsError) else 2) from exc
    if output == "json":
        print(
            json.dumps(
                {"registry": ref.registry, "repository": ref.repository, **current.to_json()},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        excluded = f" (except {', '.join(current.exclusions)})" if current.exclusions else ""
        consoles.out.print(f"{ref.name}: {current.mode.value}{excluded}", highlight=False)


def _filters(patterns: Sequence[str]) -> list[dict[str, str]]:
    return [{"filterType": "WILDCARD", "filter": pattern} for pattern in patterns]


def _repository(text: str) -> oci.Reference:
    try:
        ref = registries.parse(text)
    except oci.InvalidReference as exc:
        consoles.err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    if ref.tag or ref.digest:
        consoles.err.print(f"[red]error:[/red] {text}: give a repository, without tag or digest", highlight=False)
        raise typer.Exit(2)
    return ref


# -- lifecycle and cleanup -------------------------------------------------------------------------


PolicyOpt = typer.Option(..., "--policy", help="an ECR lifecycle policy JSON file")
ReposArg = typer.Argument(None, help="repositories (REPOSITORY or REGISTRY/REPOSITORY)")


@dataclass
class _Plan:
    ref: oci.Reference
    images: list[registry_engine.Image]
    evaluation: lifecycle.Evaluation
    undated: list[registry_engine.Image]
    dates_from_pushes: bool


def _load_policy(path: Path) -> lifecycle.LifecyclePolicy:
    try:
        return lifecycle.parse_policy(json.loads(path.read_text()), str(path))
    except OSError as exc:
        consoles.err.print(f"[red]error:[/red] {path}: {exc.strerror}", highlight=False)
        raise typer.Exit(2) from exc
    except ValueError as exc:  # JSON or ECR validation, both name the file
        message = str(exc) if isinstance(exc, lifecycle.PolicyError) else f"{path}: invalid JSON: {exc}"
        consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
        raise typer.Exit(2) from exc


def _in_use(required: bool) -> list[tuple[str, tuple[str, ...]]] | None:
    try:
        return registries.uses()
    except ApiError as exc:
        if required:
            consoles.err.print(
                f"[red]error:[/red] cannot tell which images workloads run ({exc}); "
                "start the server or pass --ignore-workloads",
                highlight=False,
            )
            raise typer.Exit(1) from exc
        consoles.err.print(f"[yellow]warning:[/yellow] images run by workloads are not protected: {exc}")
        return None


async def _plans(
    refs: Sequence[oci.Reference],
    decide: Callable[[list[lifecycle.ImageRecord]], lifecycle.Evaluation],
    uses: list[tuple[str, tuple[str, ...]]] | None,
) -> list[_Plan]:
    plans: list[_Plan] = []
    for ref in refs:
        history = registries.history(ref.registry, ref.repository, quiet=bool(plans))
        server = registries.embedded(ref.registry)
        known = server.stored_manifests(ref.repository) if server else []
        async with registries.client_for(ref.registry) as client:
            images = await registry_engine.inventory(client, ref.repository, history=history, known=known)
        records, undated = registry_engine.records(images)
        in_use = registry_engine.in_use_digests(uses or [], ref.registry, ref.repository, images)
        evaluation = lifecycle.safeguard(decide(records), records, in_use)
        plans.append(_Plan(ref, images, evaluation, undated, history is not None))
    return plans


def plan_table(evaluation: lifecycle.Evaluation) -> Table:
    """One row per image: what happens to it, its date (and where that came from), the rule and why."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("ACTION", "DIGEST", "TAGS", "PUSHED", "DATED BY", "RULE", "REASON"):
        table.add_column(column, no_wrap=column not in ("TAGS", "REASON"))
    rows = [("expire", d) for d in evaluation.expired] + [("keep", d) for d in evaluation.kept]
    for action, decision in sorted(rows, key=lambda r: (r[1].pushed_at, r[1].digest), reverse=True):
        table.add_row(
            Text(action, style="red" if action == "expire" else "green"),
            decision.digest.removeprefix("sha256:")[:12],
            ", ".join(decision.tags) or Text("<untagged>", style="dim"),
            f"{decision.pushed_at:%Y-%m-%d %H:%M}",
            {"push": "push record", "created": "creation time", "inventory": "inventory"}.get(
                decision.pushed_at_source, decision.pushed_at_source
            ),
            str(decision.rule_priority) if decision.rule_priority is not None else "-",
            decision.reason,
        )
    return table


def _plan_json(plan: _Plan) -> dict[str, object]:
    return {
        "registry": plan.ref.registry,
        "repository": plan.ref.repository,
        "expired": [d.to_json() for d in plan.evaluation.expired],
        "kept": [d.to_json() for d in plan.evaluation.kept],
        "undated": [i.digest for i in plan.undated],
        "pushRecords": plan.dates_from_pushes,
    }


def _show_plan(plan: _Plan) -> None:
    sizes = {i.digest: i.size for i in plan.images}
    freed = sum(sizes.get(d.digest, 0) for d in plan.evaluation.expired)
    consoles.out.print(
        f"[bold]{plan.ref.name}[/bold]: expire {len(plan.evaluation.expired)} of {len(plan.images)} images "
        f"({imagebuild.human_size(freed)})",
        highlight=False,
    )
    if plan.images:
        consoles.out.print(plan_table(plan.evaluation))
    for image in plan.undated:
        consoles.out.print(f"  kept {image.digest[7:19]}: no push record and no creation time", highlight=False)


def _run(
    action: Action,
    repositories: Sequence[str],
    decide: Callable[[list[lifecycle.ImageRecord]], lifecycle.Evaluation],
    ignore_workloads: bool,
    no_gc: bool,
    output: str,
) -> None:
    """Plan each repository (inventory, rules, safeguard), show it, and on apply delete and collect garbage."""
    apply = action is Action.APPLY
    if not repositories:
        _usage("name at least one repository")
    if not apply and (ignore_workloads or no_gc):
        _usage(ApplyOnly.format("--ignore-workloads" if ignore_workloads else "--no-gc"))
    refs = [_repository(r) for r in repositories]
    uses = None if ignore_workloads else _in_use(required=apply)
    try:
        with consoles.err.status("reading the repositories…"):
            plans = asyncio.run(_plans(refs, decide, uses))
    except RegistryClientError as exc:
        consoles.err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    documents = [_plan_json(p) for p in plans]
    outcomes: list[list[registry_engine.DeleteResult]] = []
    freed: dict[str, int] = {}
    if apply:
        outcomes = [asyncio.run(_delete(plan)) for plan in plans]
        if not no_gc:
            freed = _collect_garbage({p.ref.registry for p in plans})
        for document, results in zip(documents, outcomes, strict=True):
            document["deleted"] = [r.digest for r in results if r.error is None]
            document["errors"] = {r.digest: r.error for r in results if r.error is not None}
            document["freedBytes"] = freed.get(str(document["registry"]))
    if output == "json":
        print(json.dumps({"repositories": documents}, indent=2, ensure_ascii=False))
    else:
        for index, plan in enumerate(plans):
            _show_plan(plan)
            if apply:
                done = [r for r in outcomes[index] if r.error is None]
                consoles.out.print(f"deleted {len(done)} images", highlight=False)
                for result in outcomes[index]:
                    if result.error is not None:
                        consoles.err.print(f"[red]error:[/red] {result.digest}: {result.error}", highlight=False)
        for host, freed_bytes in freed.items():
            consoles.out.print(f"{host}: garbage collection freed {imagebuild.human_size(freed_bytes)}")
    if any(r.error for results in outcomes for r in results):
        raise typer.Exit(1)


async def _delete(plan: _Plan) -> list[registry_engine.DeleteResult]:
    async with registries.client_for(plan.ref.registry) as client:
        return await registry_engine.delete_images(
            client, plan.ref.repository, plan.evaluation.expired_digests, plan.images
        )


def _collect_garbage(hosts: set[str]) -> dict[str, int]:
    """Run the embedded registry's garbage collection when it is among ``hosts``; bytes freed per host."""
    freed = {}
    for host in sorted(hosts):
        server = registries.embedded(host)
        if server is None:
            continue  # another registry collects its own garbage
        try:
            with consoles.err.status(f"collecting garbage on {host} (the registry pauses)…"):
                freed[host] = server.garbage_collect()
        except ServerError as exc:
            consoles.err.print(f"[yellow]warning:[/yellow] {exc}", highlight=False)
    return freed


def _inventory_preview(policy: lifecycle.LifecyclePolicy, images: Path, now: str | None, output: str) -> None:
    """Evaluate a policy on an `aws ecr describe-images` export instead of a live registry."""
    try:
        at = registryevents.parse_timestamp(now) if now else datetime.now(UTC)
        records = lifecycle.parse_inventory(json.loads(images.read_text()), str(images))
    except (OSError, ValueError) as exc:
        consoles.err.print(f"[red]error:[/red] {images if isinstance(exc, OSError) else ''} {exc}", highlight=False)
        raise typer.Exit(2) from exc
    evaluation = lifecycle.evaluate(policy, records, at)
    if output == "json":
        print(
            json.dumps(
                {
                    "source": str(images),
                    "now": at.isoformat(),
                    "expired": [d.to_json() for d in evaluation.expired],
                    "kept": [d.to_json() for d in evaluation.kept],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    consoles.out.print(
        f"[bold]{images}[/bold]: expire {len(evaluation.expired)} of {len(records)} images", highlight=False
    )
    consoles.out.print(plan_table(evaluation))


class Action(enum.StrEnum):
    PREVIEW = "preview"
    APPLY = "apply"


ActionArg = typer.Argument(..., help="preview: show what would go and why; apply: delete it")
ApplyOnly = "{} goes with apply (preview deletes nothing)"


@app.command("lifecycle")
def lifecycle_command(
    action: Action = ActionArg,
    repositories: list[str] | None = ReposArg,
    policy: Path = PolicyOpt,
    images: Path | None = typer.Option(None, "--images", help="an `aws ecr describe-images` JSON export (preview)"),
    now: str | None = typer.Option(None, "--now", help="evaluate as of this RFC 3339 time (with --images)"),
    ignore_workloads: bool = IgnoreWorkloadsOpt,
    no_gc: bool = NoGcOpt,
    output: str = OutputOpt,
) -> None:
    """Evaluate an ECR lifecycle policy on repositories: preview, or apply (delete by digest, then GC).

    ECR's semantics: rules in rulePriority order, each image expired by at most one rule,
    an image a higher rule selects is protected from lower rules but still counted by them.
    Images are dated by funade's push records, else by their creation time (shown).
    Untagged platform images of a kept index, subjects and referrers of kept images, and
    images workloads run are never expired. `preview --images FILE [--now T]` evaluates an
    ECR export instead of a live registry.
    """
    parsed = _load_policy(policy)
    if images is not None:
        if repositories or action is Action.APPLY:
            _usage("--images goes with preview and no repositories (an export cannot be deleted from)")
        _inventory_preview(parsed, images, now, output)
        return
    if now is not None:
        _usage("--now goes with --images (a live registry is evaluated now)")
    at = datetime.now(UTC)

    def decide(records: list[lifecycle.ImageRecord]) -> lifecycle.Evaluation:
        return lifecycle.evaluate(parsed, records, at)

    _run(action, repositories or [], decide, ignore_workloads, no_gc, output)


@app.command("cleanup")
def cleanup_command(
    action: Action = ActionArg,
    repositories: list[str] = typer.Argument(..., help="repositories (REPOSITORY or REGISTRY/REPOSITORY)"),
    min_versions_to_keep: int = typer.Option(-1, "--min-versions-to-keep", help="keep the newest N (-1: off)"),
    num_old_versions_to_delete: int | None = typer.Option(
        None, "--num-old-versions-to-delete", help="delete the oldest N (default 1)"
    ),
    delete_only_untagged_versions: bool = typer.Option(
        False, "--delete-only-untagged-versions", help="only untagged versions"
    ),
    delete_only_pre_release_versions: bool = typer.Option(
        False, "--delete-only-pre-release-versions", help="only non-numeric version names"
    ),
    ignore_versions: str = typer.Option("^$", "--ignore-versions", help="a regex; matching names (digests) are kept"),
    ignore_workloads: bool = IgnoreWorkloadsOpt,
    no_gc: bool = NoGcOpt,
    output: str = OutputOpt,
) -> None:
    """The seed's GHCR cleanup (actions/delete-package-versions v5 inputs), made safe: preview or apply.

    The action's semantics (oldest first, at most 100 per run); unlike the action, a
    platform image of a surviving index, the subject of a surviving referrer and an image
    a workload runs are never deleted.
    """
    try:
        options = lifecycle.CleanupOptions(
            min_versions_to_keep=min_versions_to_keep,
            num_old_versions_to_delete=num_old_versions_to_delete,
            delete_only_untagged=delete_only_untagged_versions,
            delete_only_pre_release=delete_only_pre_release_versions,
            ignore_versions=ignore_versions,
        )
    except lifecycle.PolicyError as exc:
        _usage(str(exc))

    def decide(records: list[lifecycle.ImageRecord]) -> lifecycle.Evaluation:
        return lifecycle.cleanup(options, records)

    _run(action, repositories, decide, ignore_workloads, no_gc, output)


def _usage(message: str) -> NoReturn:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


@app.command()
def gc(address: str = AddressOpt, output: str = OutputOpt) -> None:
    """Remove blobs no manifest references from the embedded registry (it pauses meanwhile)."""
    server = _server(address)
    try:
        with consoles.err.status("collecting garbage…"):
            freed = server.garbage_collect()
    except ServerError as exc:
        consoles.err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    if output == "json":
        print(json.dumps({"address": server.address, "freedBytes": freed}))
    else:
        consoles.out.print(f"garbage collection freed {imagebuild.human_size(freed)}")
