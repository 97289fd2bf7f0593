"""GitOps use cases: compare an Application's git source with the target, and sync it.

:meth:`Apps.compare` resolves the revision, renders the source (cached per commit by
:class:`~funade.engine.render.Renderer`), labels every manifest with the app's tracking
label, reads the live objects the app owns and diffs them (:mod:`funade.core.gitops.diff`)
and assesses their health. A revision that cannot be resolved, a render that fails, or
an empty render without ``allowEmpty`` is a ComparisonError: the comparison carries the
message and no desired state, and :meth:`Apps.sync` refuses it, so nothing is ever pruned
from a failed render.

:meth:`Apps.sync` runs the plan of :mod:`funade.core.gitops.plan` wave by wave on the
local target: each wave is one atomic apply (all of it or none), prunes delete, and the
next wave starts once the previous one is healthy. Hooks run as pods to completion.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from funade.core.gitops import application, diff, health, plan
from funade.core.ports import ObjectKey, Store
from funade.engine import render, workloads
from funade.engine.render import Rendered, Renderer, RenderError, RenderSpec

__all__ = ["APP_KIND", "APP_NAMESPACE", "Apps", "Comparison", "Source", "application_of"]

Obj = dict[str, Any]
APP_KIND = "Application"
APP_NAMESPACE = "argocd"
_HEALTH_WAIT_SECONDS = 300.0


class Source(Protocol):
    """Git repositories as the engine needs them (``funade.adapters.gitsource.GitSource``)."""

    def resolve(self, repo_url: str, revision: str = "HEAD", *, refresh: bool = False) -> str: ...

    def changed_paths(self, repo_url: str, old: str | None, new: str) -> set[str]: ...


@dataclass(frozen=True)
class Comparison:
    """Desired (git) against live (target) for one Application at one revision."""

    app: application.Application
    revision: str = ""
    desired: tuple[Obj, ...] = ()
    live: tuple[Obj, ...] = ()
    diffs: tuple[diff.ResourceDiff, ...] = ()
    sync: diff.SyncStatus = diff.SyncStatus.UNKNOWN
    health: health.Health = field(default_factory=lambda: health.Health(health.HealthStatus.UNKNOWN))
    error: str = ""
    deps: frozenset[str] = frozenset()
    source_type: str = ""

    def resources(self) -> list[Obj]:
        """``status.resources`` as Argo CD lists them: each with its sync status and health."""
        by_key = {diff.ResourceKey.of(o): o for o in self.live}
        rows = []
        for item in self.diffs:
            row: Obj = {
                "group": item.key.group,
                "kind": item.key.kind,
                "namespace": item.key.namespace,
                "name": item.key.name,
                "status": item.status.value,
            }
            if item.requires_pruning:
                row["requiresPruning"] = True
            live = by_key.get(item.key)
            assessed = health.assess(live, local=True) if live is not None else None
            if live is None and not item.requires_pruning:
                row["health"] = {"status": health.HealthStatus.MISSING.value}
            elif assessed is not None:
                row["health"] = {"status": assessed.status.value, "message": assessed.message}
            rows.append(row)
        return rows


def application_of(obj: Mapping[str, Any]) -> application.Application:
    """The typed Application of a stored object (raises ApplicationError naming the field)."""
    return application.parse(obj)


def _ignore_rules(app: application.Application) -> list[diff.IgnoreRule]:
    return [
        diff.IgnoreRule(
            group=rule.group,
            kind=rule.kind,
            name=rule.name or "",
            namespace=rule.namespace or "",
            json_pointers=rule.json_pointers,
            jq_path_expressions=rule.jq_path_expressions,
        )
        for rule in app.ignore_differences
    ]


class Apps:
    """Compare and sync Applications against the local target."""

    def __init__(
        self,
        store: Store,
        source: Source,
        renderer: Renderer,
        gate: Callable[[list[Obj], str, str], Awaitable[object]] | None = None,
        targets: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        """``gate(objects, namespace, actor)`` checks everything a sync would apply (the deploy gate of
        ``funade apply``; the actor is ``application/NAME@REVISION``, for the audit log of overrides) and
        raises :class:`~funade.engine.workloads.WorkloadError` to refuse it; nothing is applied then.
        ``targets`` maps destination servers and cluster names to funade targets (Argo CD's
        registered clusters): ``{"https://dev-cluster.example.com": "local"}``."""
        self.store = store
        self.source = source
        self.renderer = renderer
        self.gate = gate
        self.targets = targets
        self.workloads = workloads.Workloads(store)
        self._last: dict[RenderSpec, Rendered] = {}
        self._changes: dict[tuple[str, str, str], set[str]] = {}
        self.reused = 0  # renders saved because a new commit did not touch the app's paths

    def _render(self, spec: RenderSpec, sha: str) -> Rendered:
        """Render ``spec`` at ``sha``, or reuse its render at an earlier commit when the new one touches
        none of the paths that render read (a monorepo push re-renders only the apps it changes)."""
        previous = self._last.get(spec)
        if previous is not None and previous.commit == sha and render.REMOTE not in previous.deps:
            return replace(previous, objects=copy.deepcopy(previous.objects))  # the steady state: no render
        if previous is not None and previous.commit != sha and render.REMOTE not in previous.deps:
            key = (spec.repo_url, previous.commit, sha)
            if key not in self._changes:
                if len(self._changes) > 1024:
                    self._changes.clear()
                self._changes[key] = self.source.changed_paths(spec.repo_url, previous.commit, sha)
            if not render.affected(previous.deps, self._changes[key]):
                self.reused += 1
                reused = replace(previous, commit=sha)
                self._last[spec] = reused
                return replace(reused, objects=copy.deepcopy(previous.objects))
        rendered = self.renderer.render(spec, sha)
        self._last[spec] = replace(rendered, objects=copy.deepcopy(rendered.objects))
        return rendered

    # -- compare ----------------------------------------------------------------------

    def resolve(self, app: application.Application, *, refresh: bool = False, revision: str | None = None) -> str:
        return self.source.resolve(app.source.repo_url, revision or app.source.target_revision, refresh=refresh)

    def compare(
        self,
        obj: Mapping[str, Any],
        *,
        revision: str | None = None,
        refresh: bool = False,
        live: Sequence[Obj] | None = None,
    ) -> Comparison:
        """Resolve, render and diff; failures come back as a Comparison with ``error`` set.

        Args:
            revision: compare this revision instead of the app's target (rollback, diff).
            refresh: fetch git first.
            live: the app's live objects, when the caller has indexed them (:meth:`live_index`).
        """
        app = application_of(obj)
        target = app.destination.target
        if target != application.LOCAL_TARGET and self.targets().get(target.rstrip("/")) != application.LOCAL_TARGET:
            where = app.destination.server or app.destination.name
            return Comparison(
                app,
                error=f"spec.destination: {where} is not a known target; funade runs the local target "
                "(Argo CD's in-cluster); map this server to it in $FUNADE_HOME/targets.yaml "
                f"(servers: {{{where}: local}})",
            )
        try:
            sha = (
                revision if revision and len(revision) == 40 else self.resolve(app, refresh=refresh, revision=revision)
            )
        except Exception as exc:  # the source's errors name the repo (redacted) and revision
            return Comparison(app, error=f"revision {revision or app.source.target_revision}: {exc}")
        try:
            rendered = self._render(RenderSpec.from_source(obj["spec"]["source"]), sha)
        except (RenderError, ValueError) as exc:
            return Comparison(app, revision=sha, error=f"rendering {app.source.path} at {sha[:7]}: {exc}")
        except Exception as exc:  # the checkout failed
            return Comparison(app, revision=sha, error=f"checking out {sha[:7]}: {exc}")
        desired = [self._placed(app, self._label(app, dict(o))) for o in rendered.objects]
        allow_empty = app.automated.allow_empty if app.automated else False
        if not desired and not allow_empty:
            return Comparison(
                app, revision=sha, deps=rendered.deps,
                error=f"{app.source.path} at {sha[:7]} rendered no manifests (allowEmpty is off, so nothing is pruned)",
            )  # fmt: skip
        source_type = rendered.source_type.value
        live = list(live) if live is not None else self.live_objects(app)
        try:
            diffs = diff.compare(desired, live, _ignore_rules(app), namespace=self._namespace(app), app_name=app.name)
        except diff.DiffError as exc:
            return Comparison(app, revision=sha, error=str(exc), deps=rendered.deps)
        by_key = {diff.ResourceKey.of(o): o for o in live}
        wanted = {diff.ResourceKey.of(o): o for o in desired}
        pairs = [(wanted.get(d.key), by_key.get(d.key)) for d in diffs if not d.requires_pruning]
        return Comparison(
            app=app,
            revision=sha,
            desired=tuple(desired),
            live=tuple(live),
            diffs=tuple(diffs),
            sync=diff.app_sync_status(diffs),
            health=health.app_health(pairs, local=True),
            deps=rendered.deps,
            source_type=source_type,
        )

    @staticmethod
    def _namespace(app: application.Application) -> str:
        return app.destination.namespace or "default"

    @classmethod
    def _placed(cls, app: application.Application, obj: Obj) -> Obj:
        """Manifests without a namespace go to the destination's (cluster-scoped kinds have none)."""
        meta = obj["metadata"]
        if obj.get("kind") in workloads.CLUSTER_SCOPED:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            meta["namespace"] = cls._namespace(app)
        return obj

    @staticmethod
    def _label(app: application.Application, obj: Obj) -> Obj:
        meta = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), diff.TRACKING_LABEL: app.name}
        obj["metadata"] = meta
        return obj

    def live_objects(self, app: application.Application) -> list[Obj]:
        """Every object on the target labelled as this app's (Argo CD's label tracking)."""
        return [
            o
            for o in self.store.labelled(diff.TRACKING_LABEL, app.name)
            if o.get("kind") not in (APP_KIND, "ApplicationSet")
        ]

    def live_index(self) -> dict[str, list[Obj]]:
        """The target's tracked objects by app name, read once for a whole pass over the apps."""
        index: dict[str, list[Obj]] = {}
        for kind in self.store.kinds():
            if kind in (APP_KIND, "ApplicationSet", "Event"):
                continue
            for obj in self.store.list_objects(kind):
                owner = ((obj.get("metadata") or {}).get("labels") or {}).get(diff.TRACKING_LABEL)
                if owner:
                    index.setdefault(str(owner), []).append(obj)
        return index

    # -- sync -------------------------------------------------------------------------

    def plan_sync(
        self,
        comparison: Comparison,
        *,
        prune: bool,
        dry_run: bool = False,
        resources: Sequence[str] = (),
    ) -> plan.SyncPlan:
        """The ordered tasks a sync of ``comparison`` runs (``resources``: ``KIND/NAME`` selections)."""
        app = comparison.app
        options = plan.SyncOptions.parse(
            app.sync_policy.options.raw,
            prune=prune,
            dry_run=dry_run,
            namespace=self._namespace(app),
            revision=comparison.revision,
            started_at=time.time(),
            resources=tuple(plan.ResourceSelector.parse(r) for r in resources),
        )
        namespace_exists = self.store.get(ObjectKey("Namespace", "", self._namespace(app))) is not None
        inputs = plan.pair(comparison.desired, comparison.live, comparison.diffs)
        return plan.plan(inputs, options, namespace_exists=namespace_exists)

    async def sync(
        self,
        comparison: Comparison,
        *,
        prune: bool,
        dry_run: bool = False,
        resources: Sequence[str] = (),
        healthy: Callable[[Sequence[Obj]], Awaitable[str]] | None = None,
        progress: Callable[[plan.Operation], None] = lambda op: None,
    ) -> plan.Operation:
        """Run the sync plan; returns the finished operation (Succeeded, Failed or Error).

        Args:
            healthy: waits until the given objects are healthy and returns "" (or why not);
                by default the store's status is polled for up to five minutes.
            progress: called with the operation after every step, for live output.
        """
        started = time.time()
        operation = plan.Operation(
            plan.OperationPhase.RUNNING, "running", revision=comparison.revision, started_at=started, dry_run=dry_run
        )
        if comparison.error:
            return operation.finish(plan.OperationPhase.ERROR, f"ComparisonError: {comparison.error}", time.time())
        try:
            sync_plan = self.plan_sync(comparison, prune=prune, dry_run=dry_run, resources=resources)
        except plan.PlanError as exc:
            return operation.finish(plan.OperationPhase.ERROR, str(exc), time.time())
        wait = healthy or self._wait_healthy
        steps = sync_plan.steps()
        if self.gate is not None and not dry_run:
            everything = [dict(t.desired) for _, _, tasks in steps for t in tasks if not t.is_prune and t.desired]
            try:
                actor = f"application/{comparison.app.name}@{comparison.revision[:12]}"
                await self.gate(everything, sync_plan.options.namespace, actor)
            except workloads.WorkloadError as exc:
                return operation.finish(plan.OperationPhase.FAILED, str(exc), time.time())
        for index, (phase, wave, tasks) in enumerate(steps):
            applied: list[Obj] = []
            to_apply = [t for t in tasks if t.action is not plan.Action.PRUNE and t.desired is not None]
            for task in [t for t in tasks if t.is_prune]:
                if task.needs_confirmation:
                    operation = operation.with_result(
                        plan.ResourceResult(
                            task.key,
                            task.phase,
                            task.wave,
                            plan.ResultCode.PRUNE_SKIPPED,
                            "waiting for prune confirmation",
                        )
                    )
                    continue
                result = plan.prune_result(task, dry_run=dry_run)
                if result.status is plan.ResultCode.PRUNED and not dry_run:
                    self.workloads.delete(ObjectKey(task.key.kind, task.key.namespace, task.key.name))
                operation = operation.with_result(result)
            if to_apply:
                for task in to_apply:
                    if task.delete_before_creation and not dry_run:
                        self.workloads.delete(ObjectKey(task.key.kind, task.key.namespace, task.key.name))
                objs = [dict(t.desired) for t in to_apply if t.desired is not None]
                try:
                    results = self.workloads.apply(objs, namespace=sync_plan.options.namespace, dry_run=dry_run)
                except workloads.WorkloadError as exc:
                    for task in to_apply:
                        operation = operation.with_result(
                            plan.ResourceResult(task.key, task.phase, task.wave, plan.ResultCode.SYNC_FAILED, str(exc))
                        )
                    progress(operation)
                    return await self._fail(
                        operation, sync_plan, f"wave {wave} of {phase.value} failed: {exc}", dry_run
                    )
                for task, applied_result in zip(to_apply, results, strict=False):
                    operation = operation.with_result(
                        plan.ResourceResult(
                            task.key, task.phase, task.wave, plan.ResultCode.SYNCED, applied_result.action
                        )
                    )
                applied = [self.store.get(r.key) or {} for r in results]
            progress(operation)
            hooks = [t for t in to_apply if t.is_hook]
            if hooks and not dry_run:
                failed = await self._run_hooks(hooks)
                if failed:
                    return await self._fail(operation, sync_plan, failed, dry_run)
            if applied and not dry_run and index < len(steps) - 1:
                problem = await wait([o for o in applied if o])
                if problem:
                    return await self._fail(
                        operation, sync_plan, f"wave {wave} did not become healthy: {problem}", dry_run
                    )
        message = "successfully synced (all tasks run)" if not dry_run else "dry run: nothing changed"
        return operation.finish(plan.OperationPhase.SUCCEEDED, message, time.time())

    async def _fail(
        self, operation: plan.Operation, sync_plan: plan.SyncPlan, message: str, dry_run: bool
    ) -> plan.Operation:
        """Run the SyncFail hooks (if any), then finish as Failed."""
        fail_hooks = [t for t in sync_plan.sync_fail if t.desired is not None]
        if fail_hooks and not dry_run:
            try:
                self.workloads.apply(
                    [dict(t.desired) for t in fail_hooks if t.desired is not None],
                    namespace=sync_plan.options.namespace,
                )
                await self._run_hooks(fail_hooks)
            except workloads.WorkloadError as exc:
                message += f"; SyncFail hooks could not run: {exc}"
        return operation.finish(plan.OperationPhase.FAILED, message, time.time())

    async def _run_hooks(self, hooks: Sequence[plan.SyncTask], timeout: float = _HEALTH_WAIT_SECONDS) -> str:
        """Wait for hook Pods and Jobs to complete; returns why one failed, or ""."""
        deadline = time.monotonic() + timeout
        pending = list(hooks)
        while pending:
            for task in list(pending):
                if task.key.kind not in ("Pod", "Job"):
                    return f"hook {task.key}: the local target runs hooks of kind Pod or Job"
                live = self.store.get(ObjectKey(task.key.kind, task.key.namespace, task.key.name))
                if live is None:
                    continue
                phase, message = plan.hook_phase(live, local=True)
                if phase is plan.OperationPhase.SUCCEEDED:
                    pending.remove(task)
                    if plan.DeletePolicy.HOOK_SUCCEEDED in task.delete_policies:
                        self.workloads.delete(ObjectKey.of(live))
                elif phase.completed:
                    if plan.DeletePolicy.HOOK_FAILED in task.delete_policies:
                        self.workloads.delete(ObjectKey.of(live))
                    return f"hook {task.key} {phase.value}: {message}"
            if time.monotonic() > deadline:
                return f"hooks still running after {timeout:.0f}s: {', '.join(str(t.key) for t in pending)}"
            if pending:
                await asyncio.sleep(0.5)
        return ""

    async def _wait_healthy(self, objs: Sequence[Obj], timeout: float = _HEALTH_WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            worst: list[str] = []
            for obj in objs:
                live = self.store.get(ObjectKey.of(obj))
                assessed = (
                    health.assess(live, local=True) if live is not None else health.Health(health.HealthStatus.MISSING)
                )
                if assessed is not None and assessed.status not in (
                    health.HealthStatus.HEALTHY,
                    health.HealthStatus.SUSPENDED,
                ):
                    worst.append(
                        f"{obj.get('kind')}/{obj['metadata']['name']} {assessed.status.value} "
                        f"{assessed.message}".strip()
                    )
                    if assessed.status is health.HealthStatus.DEGRADED:
                        return worst[-1]
            if not worst:
                return ""
            last = "; ".join(worst)
            await asyncio.sleep(0.5)
        return f"still not healthy after {timeout:.0f}s: {last}"


def with_revision(obj: Mapping[str, Any], revision: str) -> Obj:
    """The Application with ``targetRevision`` replaced (a rollback syncs an earlier commit)."""
    spec = dict(obj["spec"])
    spec["source"] = dict(spec["source"], targetRevision=revision)
    return dict(obj, spec=spec)
