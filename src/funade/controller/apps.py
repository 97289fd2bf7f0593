"""The GitOps controller: keeps every Application equal to its git source, as Argo CD does.

Each pass compares every Application (renders come from the cache; git is fetched only
every poll interval, default 60 s, or when a webhook or `app refresh` asks), writes
Argo CD's status layout (``status.sync``, ``status.health``, ``status.resources``,
``status.conditions``, ``status.operationState``, ``status.history``) and starts syncs:

- automated apps sync a new revision once; with ``selfHeal`` they also sync drift at the
  same revision (a deleted object, a changed field), so drift is healed within a pass;
- a failed automated sync is retried with the app's backoff, up to its limit;
- a ComparisonError (unreachable repo, render failure, empty render) never syncs, so
  nothing is pruned.

Syncs of one app are serialised (one task per app); different apps sync in parallel,
at most :data:`PARALLEL_SYNCS` at a time. A rollback syncs an earlier revision and, beyond
Argo CD, also works with auto-sync on: auto-sync is suspended for that app (annotation
:data:`SUSPENDED`) until `app set --sync-policy automated`.

ApplicationSets are expanded on every poll: generated Applications are created or
updated, and ones no longer generated are deleted (with their resources when they
carry the resources finalizer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from funade.core import revisions
from funade.core.gitops import application as appmodel
from funade.core.gitops import appset, diff, notify, plan
from funade.core.ports import Event, ObjectKey, Store
from funade.engine.gitops import APP_KIND, APP_NAMESPACE, Apps, Comparison, with_revision
from funade.engine.workloads import WorkloadError

__all__ = ["PARALLEL_SYNCS", "POLL_SECONDS", "SUSPENDED", "AppController"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

POLL_SECONDS = 60.0
"""How often git is fetched for an app without webhooks (Argo CD: 120 s + jitter)."""
POLL_ANNOTATION = "funade.io/poll-interval"
"""Per-app poll interval in seconds."""
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
SUSPENDED = "funade.io/auto-sync-suspended"
APPSET_LABEL = "funade.io/applicationset"
PARALLEL_SYNCS = 4
RECONCILED_EVERY = 10.0
"""An unchanged comparison updates ``status.reconciledAt`` at most this often (seconds)."""
_FINALIZER = "resources-finalizer.argocd.argoproj.io"


@dataclass
class _AppState:
    polled_at: float = 0.0
    revision: str = ""
    refresh: bool = False
    task: asyncio.Task[None] | None = None
    attempts: int = 0
    retry_at: float = 0.0
    last_comparison: Comparison | None = field(default=None, repr=False)


class AppController:
    """Reconciles Applications and ApplicationSets."""

    def __init__(
        self,
        store: Store,
        apps: Apps,
        repo_view: appset.RepoView | None = None,
        sender: notify.Sender | None = None,
    ) -> None:
        self.store = store
        self.apps = apps
        self.repo_view = repo_view
        self.sender = sender
        self._sending: set[asyncio.Task[object]] = set()
        self._wake: asyncio.Event | None = None
        self._fetched: set[str] = set()  # repositories fetched in the current pass
        self._state: dict[str, _AppState] = {}
        self._sync_slots = asyncio.Semaphore(PARALLEL_SYNCS)
        self._appsets_polled: dict[str, float] = {}

    # -- requests from the API ---------------------------------------------------------

    def refresh(self, name: str) -> None:
        """Fetch git and compare again on the next pass (webhook, `app refresh`)."""
        self._state.setdefault(name, _AppState()).refresh = True

    async def refresh_now(self, obj: Obj) -> None:
        """Fetch git and compare this app now (`app refresh` waits for it); auto-sync may follow."""
        name = obj["metadata"]["name"]
        self._state.setdefault(name, _AppState()).refresh = True
        self._fetched.discard(str((obj["spec"].get("source") or {}).get("repoURL")))
        live = (await asyncio.to_thread(self.apps.live_index)).get(name, [])
        await self._app(obj, live)

    def comparison(self, name: str) -> Comparison | None:
        state = self._state.get(name)
        return state.last_comparison if state else None

    def start_sync(
        self,
        obj: Obj,
        *,
        prune: bool,
        dry_run: bool = False,
        resources: tuple[str, ...] = (),
        revision: str | None = None,
        initiated_by: str = "user",
    ) -> None:
        """Start a sync now (manual sync, rollback); refused while one runs for the app."""
        name = obj["metadata"]["name"]
        state = self._state.setdefault(name, _AppState())
        if state.task is not None and not state.task.done():
            raise RuntimeError(f"another operation is already in progress for application {name}")
        state.task = asyncio.create_task(
            self._sync(obj, prune=prune, dry_run=dry_run, resources=resources, revision=revision, by=initiated_by),
            name=f"sync {name}",
        )

    def busy(self, name: str) -> bool:
        state = self._state.get(name)
        return bool(state and state.task and not state.task.done())

    async def run(self, wake: asyncio.Event, every: float = 1.0) -> None:
        """Reconcile forever: every ``every`` seconds, or sooner when ``wake`` is set."""
        self._wake = wake
        while True:
            try:
                await self.reconcile()
            except Exception:
                log.exception("gitops pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), every)
            wake.clear()

    async def stop(self) -> None:
        tasks = [s.task for s in self._state.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the pass ---------------------------------------------------------------------

    async def reconcile(self) -> None:
        await self._appsets()
        names = set()
        index = await asyncio.to_thread(self.apps.live_index)
        self._fetched = set()
        for obj in self.store.list_objects(APP_KIND):
            names.add(obj["metadata"]["name"])
            try:
                await self._app(obj, index.get(obj["metadata"]["name"], []))
            except Exception:
                log.exception("application %s: reconcile failed", obj["metadata"]["name"])
        for gone in set(self._state) - names:
            state = self._state.pop(gone)
            if state.task is not None:
                state.task.cancel()

    async def _app(self, obj: Obj, live: list[Obj]) -> None:
        name = obj["metadata"]["name"]
        state = self._state.setdefault(name, _AppState())
        if state.task is not None and not state.task.done():
            return
        try:
            app = appmodel.parse(obj)
        except appmodel.ApplicationError as exc:
            self._status(
                obj,
                {
                    "conditions": [_condition("InvalidSpecError", str(exc))],
                    "sync": {"status": "Unknown"},
                    "health": {"status": "Unknown"},
                },
            )
            return
        now = time.time()
        annotations = obj["metadata"].get("annotations") or {}
        interval = _seconds(annotations.get(POLL_ANNOTATION), POLL_SECONDS)
        hard = annotations.get(REFRESH_ANNOTATION)
        refresh = state.refresh or bool(hard) or not state.revision or now - state.polled_at >= interval
        revision = None if refresh else state.revision
        repo = app.source.repo_url
        fetch = refresh and repo not in self._fetched  # one fetch per repository per pass, however many apps
        comparison = await asyncio.to_thread(self.apps.compare, obj, revision=revision, refresh=fetch, live=live)
        if fetch:
            self._fetched.add(repo)
        if refresh:
            state.polled_at, state.refresh = now, False
            if hard:
                self._clear_annotation(obj, REFRESH_ANNOTATION)
        if comparison.revision:
            state.revision = comparison.revision
        state.last_comparison = comparison
        self._write_comparison(obj, comparison)
        self._notify(obj)
        if not comparison.error and app.auto_sync and not annotations.get(SUSPENDED):
            self._maybe_auto_sync(obj, app, comparison, state, now)

    def _maybe_auto_sync(
        self, obj: Obj, app: appmodel.Application, comparison: Comparison, state: _AppState, now: float
    ) -> None:
        if comparison.sync is not diff.SyncStatus.OUT_OF_SYNC:
            state.attempts = 0
            return
        operation = (obj.get("status") or {}).get("operationState") or {}
        last_revision = (operation.get("syncResult") or {}).get("revision")
        failed = operation.get("phase") in ("Failed", "Error")
        new_revision = last_revision != comparison.revision
        if failed and last_revision == comparison.revision:
            policy = app.sync_policy.effective_retry
            if policy is None or not appmodel.should_retry(policy, state.attempts) or now < state.retry_at:
                return  # Argo CD: a failed revision is not auto-synced again without retries left
            state.attempts += 1
        elif not new_revision and not app.self_heal:
            return
        self.start_sync(obj, prune=app.auto_prune, initiated_by="automated", revision=comparison.revision)

    async def _sync(
        self, obj: Obj, *, prune: bool, dry_run: bool, resources: tuple[str, ...], revision: str | None, by: str
    ) -> None:
        name = obj["metadata"]["name"]
        async with self._sync_slots:
            target = with_revision(obj, revision) if revision else obj
            comparison = await asyncio.to_thread(self.apps.compare, target, revision=revision)
            self._operation(
                obj,
                {
                    "phase": "Running",
                    "message": "syncing",
                    "startedAt": _now(),
                    "syncResult": {"revision": comparison.revision},
                },
            )
            self._event(obj, "Normal", "OperationStarted", f"sync of {comparison.revision[:7] or '?'} started by {by}")

            def progress(op: plan.Operation) -> None:
                self._operation(obj, _operation_state(op, comparison.revision, by, dry_run))

            operation = await self.apps.sync(
                comparison, prune=prune, dry_run=dry_run, resources=resources, progress=progress
            )
        self._operation(obj, _operation_state(operation, comparison.revision, by, dry_run))
        state = self._state.setdefault(name, _AppState())
        if operation.phase is plan.OperationPhase.SUCCEEDED:
            state.attempts = 0
            if not dry_run:
                self._record_history(obj, comparison, operation, by)
            self._event(obj, "Normal", "OperationCompleted", f"sync of {comparison.revision[:7]} succeeded")
        else:
            try:
                policy = appmodel.parse(obj).sync_policy.effective_retry
            except appmodel.ApplicationError:
                policy = None
            if policy is not None:
                state.retry_at = time.time() + appmodel.retry_delay(policy, state.attempts)
            self._event(
                obj,
                "Warning",
                "OperationCompleted",
                f"sync of {comparison.revision[:7]} {operation.phase.value}: {operation.message}",
            )
        if self._wake is not None:
            self._wake.set()  # compare again at once with the new live state (git has not changed)
        self._notify(obj)

    # -- notifications ----------------------------------------------------------------

    def _notify(self, obj: Obj) -> None:
        """Announce what changed to the app's subscribers (notifications.argoproj.io annotations), once each."""
        current = self.store.get(ObjectKey.of(obj))
        if current is None:
            return
        subscriptions = notify.parse_subscriptions(current["metadata"].get("annotations") or {})
        if not subscriptions.entries:
            return
        status = current.get("status") or {}
        operation = status.get("operationState") or {}
        phase = operation.get("phase")
        now = notify.AppStatus(
            phase=notify.Phase(phase) if phase in {p.value for p in notify.Phase} else None,
            health=_enum(notify.Health, (status.get("health") or {}).get("status"), notify.Health.UNKNOWN),
            sync=_enum(notify.SyncStatus, (status.get("sync") or {}).get("status"), notify.SyncStatus.UNKNOWN),
            revision=str((operation.get("syncResult") or {}).get("revision") or ""),
            message=str(operation.get("message") or ""),
        )
        raw = status.get("notified")
        previous = notify.Notified.from_json(raw) if isinstance(raw, str) else notify.Notified.baseline(now)
        decision = notify.triggered(previous, now)
        if decision.notified != previous or raw is None:
            self._status(current, {"notified": decision.notified.to_json()})
        if self.sender is None:
            return
        for trigger in decision.fire:
            text = notify.message(
                trigger, current["metadata"]["name"], now.revision, now.health, now.sync, now.message,
                repo_url=str((current["spec"].get("source") or {}).get("repoURL") or ""),
            )  # fmt: skip
            for destination in subscriptions.destinations(trigger):
                task = asyncio.create_task(self.sender.send(text, destination))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    # -- ApplicationSets ----------------------------------------------------------------

    async def _appsets(self) -> None:
        now = time.time()
        for obj in self.store.list_objects("ApplicationSet"):
            meta = obj["metadata"]
            key = f"{meta.get('namespace', '')}/{meta['name']}/{meta.get('uid')}/{meta.get('generation')}"
            if now - self._appsets_polled.get(key, 0.0) < POLL_SECONDS:
                continue
            self._appsets_polled[key] = now
            try:
                parsed = appset.parse(obj)
                generated = await asyncio.to_thread(appset.generate, parsed, self.repo_view)
            except (appset.ApplicationSetError, appmodel.ApplicationError) as exc:
                self.store.put_status(ObjectKey.of(obj), {"conditions": [_condition("ErrorOccurred", str(exc))]})
                continue
            except Exception as exc:  # the repository is unreachable
                self.store.put_status(ObjectKey.of(obj), {"conditions": [_condition("ErrorOccurred", str(exc))]})
                continue
            wanted: list[Obj] = []
            for app in generated:
                doc: Obj = dict(app.to_dict())
                doc_meta = dict(doc.get("metadata") or {})
                doc_meta["namespace"] = APP_NAMESPACE
                doc_meta["labels"] = {**(doc_meta.get("labels") or {}), APPSET_LABEL: meta["name"]}
                doc["metadata"] = doc_meta
                wanted.append(doc)
            names = {d["metadata"]["name"] for d in wanted}
            self._ensure_namespace()
            self.store.put_many(wanted)
            for existing in self.store.list_objects(APP_KIND, APP_NAMESPACE):
                labels = existing["metadata"].get("labels") or {}
                if labels.get(APPSET_LABEL) == meta["name"] and existing["metadata"]["name"] not in names:
                    self.delete(existing, cascade=_FINALIZER in (existing["metadata"].get("finalizers") or []))
            self.store.put_status(
                ObjectKey.of(obj),
                {
                    "conditions": [_condition("ResourcesUpToDate", f"{len(wanted)} application(s) generated", "True")],
                    "applications": sorted(names),
                },
            )

    def _ensure_namespace(self) -> None:
        if self.store.get(ObjectKey("Namespace", "", APP_NAMESPACE)) is None:
            self.store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NAMESPACE}}])

    def delete(self, obj: Obj, *, cascade: bool) -> list[str]:
        """Delete an Application; with ``cascade`` also every resource it tracks."""
        removed = []
        if cascade:
            app = appmodel.parse(obj)
            # Reverse sync order: workloads before Services and ConfigMaps, Namespaces last.
            doomed = sorted(self.apps.live_objects(app), key=lambda o: -plan.kind_rank(str(o.get("kind"))))
            for live in doomed:
                try:
                    self.apps.workloads.delete(ObjectKey.of(live))
                except WorkloadError as exc:
                    if exc.status != 404:  # gone already (its namespace took it)
                        raise
                removed.append(f"{live['kind']}/{live['metadata']['name']}")
        self.store.delete(ObjectKey.of(obj))
        return removed

    # -- status -----------------------------------------------------------------------

    def _status(self, obj: Obj, changes: Mapping[str, Any]) -> None:
        key = ObjectKey.of(obj)
        current = self.store.get(key)
        if current is None:
            return
        status = dict(current.get("status") or {})
        status.update(changes)
        self.store.put_status(key, status)

    def _write_comparison(self, obj: Obj, comparison: Comparison) -> None:
        app = comparison.app
        changes: Obj = {
            "reconciledAt": _now(),
            "sourceType": comparison.source_type or "Unknown",
        }
        if comparison.error:
            changes["sync"] = {"status": "Unknown", "revision": comparison.revision, "comparedTo": _compared_to(app)}
            changes["health"] = {"status": "Unknown", "message": comparison.error}
            changes["conditions"] = [_condition("ComparisonError", comparison.error)]
        else:
            changes["sync"] = {
                "status": comparison.sync.value,
                "revision": comparison.revision,
                "comparedTo": _compared_to(app),
            }
            changes["health"] = {"status": comparison.health.status.value, "message": comparison.health.message}
            changes["resources"] = comparison.resources()
            changes["conditions"] = [_condition("SyncWarning", w, "True") for w in app.warnings]
        current = (self.store.get(ObjectKey.of(obj)) or {}).get("status") or {}
        same = all(current.get(k) == v for k, v in changes.items() if k != "reconciledAt")
        last = current.get("reconciledAt")
        if same and last and time.time() - revisions.parse_time(last) < RECONCILED_EVERY:
            return  # nothing new: no write (1,000 apps, one pass a second)
        self._status(obj, changes)

    def _operation(self, obj: Obj, state: Obj) -> None:
        self._status(obj, {"operationState": state})

    def _record_history(self, obj: Obj, comparison: Comparison, operation: plan.Operation, by: str) -> None:
        current = self.store.get(ObjectKey.of(obj)) or obj
        history = list((current.get("status") or {}).get("history") or [])
        next_id = max((int(h.get("id", 0)) for h in history), default=-1) + 1
        history.append(
            {
                "id": next_id,
                "revision": comparison.revision,
                "deployedAt": _now(),
                "deployStartedAt": revisions.rfc3339(operation.started_at),
                "source": dict(obj["spec"]["source"]),
                "initiatedBy": {"automated": True} if by == "automated" else {"username": by},
            }
        )
        self._status(obj, {"history": history[-comparison.app.revision_history_limit :]})

    def _clear_annotation(self, obj: Obj, name: str) -> None:
        current = self.store.get(ObjectKey.of(obj))
        if current is None:
            return
        annotations = current["metadata"].get("annotations") or {}
        if name in annotations:
            del annotations[name]
            self.store.put_many([current])

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        self.store.add_event(
            Event(time.time(), meta.get("namespace", APP_NAMESPACE), APP_KIND, meta["name"], type_, reason, message)
        )


def _enum(kind: Any, value: object, default: Any) -> Any:
    return kind(value) if value in {m.value for m in kind} else default


def _now() -> str:
    return revisions.rfc3339(time.time())


def _seconds(value: object, default: float) -> float:
    try:
        return float(str(value).removesuffix("s")) if value else default
    except ValueError:
        return default


def _condition(kind: str, message: str, status: str = "True") -> Obj:
    return {"type": kind, "message": message, "status": status, "lastTransitionTime": _now()}


def _compared_to(app: appmodel.Application) -> Obj:
    return {
        "source": {
            "repoURL": app.source.repo_url,
            "path": app.source.path,
            "targetRevision": app.source.target_revision,
        },
        "destination": {"server": app.destination.server, "namespace": app.destination.namespace},
    }


def _operation_state(op: plan.Operation, revision: str, by: str, dry_run: bool) -> Obj:
    return {
        "phase": op.phase.value,
        "message": op.message,
        "startedAt": revisions.rfc3339(op.started_at),
        "finishedAt": revisions.rfc3339(op.finished_at) if op.finished_at else None,
        "operation": {
            "sync": {"revision": revision, "dryRun": dry_run},
            "initiatedBy": {"automated": True} if by == "automated" else {"username": by},
        },
        "syncResult": {
            "revision": revision,
            "resources": [
                {
                    "group": r.key.group,
                    "kind": r.key.kind,
                    "namespace": r.key.namespace,
                    "name": r.key.name,
                    "status": r.status.value if r.status else None,
                    "message": r.message,
                    "syncPhase": r.phase.value,
                    "hookPhase": r.hook_phase.value if r.hook_phase else None,
                }
                for r in op.results
            ],
        },
    }
