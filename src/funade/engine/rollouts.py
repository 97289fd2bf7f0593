"""Rollout operations as use cases: promote, abort, retry, undo, and the view `rollout get` shows.

Each operation is the status rewrite of :mod:`funade.core.rollout` (what ``kubectl argo
rollouts`` patches), applied to the state the rollout controller keeps under
``status.funade``; the controller takes the next step from it on its next pass. ``undo``
writes an earlier revision's pod template into ``spec.template``, which the controller
sees as a new revision (rolling back to the stable one skips the steps, as in Argo).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from funade.core import analysis, revisions
from funade.core import rollout as ro
from funade.core.ports import Event, ObjectKey, Store

__all__ = ["HASH_LABEL", "RolloutOpError", "Rollouts", "owned"]

Obj = dict[str, Any]
HASH_LABEL = ro.POD_HASH_LABEL


class RolloutOpError(Exception):
    """An operation that cannot apply; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def owned(store: Store, kind: str, rollout: Obj) -> list[Obj]:
    """The objects of ``kind`` a Rollout controls (its ReplicaSets, its AnalysisRuns), oldest first."""
    meta = rollout["metadata"]
    found = []
    for obj in store.list_objects(kind, meta.get("namespace", "default")):
        refs = obj["metadata"].get("ownerReferences") or []
        if any(r.get("uid") == meta["uid"] and r.get("controller") for r in refs):
            found.append(obj)
    return sorted(found, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))


class Rollouts:
    """The user's operations on Rollouts."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def _get(self, namespace: str, name: str) -> Obj:
        obj = self.store.get(ObjectKey("Rollout", namespace, name))
        if obj is None:
            raise RolloutOpError(f'rollouts.argoproj.io "{name}" not found in namespace {namespace}', 404)
        return obj

    def _state(self, obj: Obj) -> tuple[ro.Rollout, ro.RolloutStatus]:
        try:
            parsed = ro.parse(obj)
        except ro.RolloutError as exc:
            raise RolloutOpError(f"rollout {obj['metadata']['name']}: {exc}") from exc
        raw = (obj.get("status") or {}).get("funade")
        if not isinstance(raw, Mapping):
            raise RolloutOpError(f"rollout {obj['metadata']['name']} has not been reconciled yet; try again", 409)
        return parsed, ro.status_from_dict(raw)

    def _save(self, obj: Obj, state: ro.RolloutStatus, reason: str, message: str) -> Obj:
        status = dict(obj.get("status") or {}, funade=ro.status_to_dict(state))
        self.store.put_status(ObjectKey.of(obj), status)
        meta = obj["metadata"]
        self.store.add_event(
            Event(
                self.clock().timestamp(), meta.get("namespace", ""), "Rollout", meta["name"], "Normal", reason, message
            )
        )
        return self.store.get(ObjectKey.of(obj)) or obj

    def _runs(self, obj: Obj) -> dict[str, ro.RunStatus]:
        found = {}
        for run in owned(self.store, "AnalysisRun", obj):
            raw = run.get("status") or {}
            phase = analysis.Phase(raw.get("phase") or analysis.Phase.PENDING.value)
            found[run["metadata"]["name"]] = ro.RunStatus(phase, str(raw.get("message") or ""))
        return found

    def promote(self, namespace: str, name: str, full: bool = False) -> Obj:
        """``promote``: past the current pause or step; ``full``: skip every remaining step and analysis."""
        obj = self._get(namespace, name)
        parsed, state = self._state(obj)
        if state.abort:
            raise RolloutOpError(f"rollout {name} is aborted; use `funade rollout retry {name}` to start it over", 409)
        new = ro.promote(parsed, state, full=full, runs=self._runs(obj))
        if new == state:
            raise RolloutOpError(f"rollout {name} has nothing to promote (fully promoted already)", 409)
        return self._save(obj, new, "RolloutPromoted", "promoted to the end (--full)" if full else "promoted")

    def abort(self, namespace: str, name: str) -> Obj:
        """``abort``: traffic back to the stable revision now; the canary scales down after its delay."""
        obj = self._get(namespace, name)
        _, state = self._state(obj)
        if state.current_hash == state.stable_hash:
            raise RolloutOpError(f"rollout {name} is not updating: nothing to abort", 409)
        new = ro.abort(state, self.clock(), "aborted by user")
        return self._save(obj, new, "RolloutAborted", "aborted by user")

    def retry(self, namespace: str, name: str) -> Obj:
        """``retry``: clear the abort and run the same revision's steps again from the first."""
        obj = self._get(namespace, name)
        _, state = self._state(obj)
        if not state.abort:
            raise RolloutOpError(f"rollout {name} is not aborted: nothing to retry", 409)
        return self._save(obj, ro.retry(state, self.clock()), "RolloutRetried", "retrying from step 0")

    def history(self, namespace: str, name: str) -> list[tuple[int, Obj]]:
        """(revision, pod template) of the revisions the Rollout still keeps, oldest first."""
        obj = self._get(namespace, name)
        kept = []
        for rs in owned(self.store, "ReplicaSet", obj):
            revision = int((rs["metadata"].get("annotations") or {}).get(revisions.REVISION_ANNOTATION, "0"))
            template = json.loads(json.dumps(rs["spec"]["template"]))
            (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
            kept.append((revision, template))
        return sorted(kept, key=lambda item: item[0])

    def undo(self, namespace: str, name: str, to_revision: int | None = None) -> tuple[Obj, int]:
        """Apply an earlier revision's template (default: the one before the current)."""
        obj = self._get(namespace, name)
        if "workloadRef" in (obj.get("spec") or {}):
            ref = obj["spec"]["workloadRef"]
            raise RolloutOpError(f"rollout {name} runs the template of {ref.get('kind')} {ref.get('name')}; undo that")
        history = self.history(namespace, name)
        current = max((n for n, _ in history), default=0)
        try:
            template = ro.undo(history, current, to_revision)
        except ro.RolloutError as exc:
            raise RolloutOpError(str(exc), 404) from exc
        chosen = next(n for n, t in history if t == template)
        updated = json.loads(json.dumps(obj))
        updated["spec"]["template"] = template
        stored, _ = self.store.put_many([updated])[0]
        meta = obj["metadata"]
        self.store.add_event(
            Event(
                self.clock().timestamp(), meta.get("namespace", ""), "Rollout", name, "Normal", "RolloutUndo",
                f"rolled back to the template of revision {chosen}",
            )
        )  # fmt: skip
        return stored, chosen

    def view(self, namespace: str, name: str, pods: list[Obj]) -> Obj:
        """Everything `rollout get` shows: the Rollout, its revisions, their pods and the analysis runs."""
        obj = self._get(namespace, name)
        replica_sets: list[Obj] = []
        owned_rs = sorted(
            owned(self.store, "ReplicaSet", obj),
            key=lambda rs: -int((rs["metadata"].get("annotations") or {}).get(revisions.REVISION_ANNOTATION, "0")),
        )
        for rs in owned_rs:
            uid = rs["metadata"]["uid"]
            its_pods = [p for p in pods if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]
            replica_sets.append({"replicaSet": rs, "pods": its_pods})
        runs = owned(self.store, "AnalysisRun", obj)
        return {"rollout": obj, "replicaSets": replica_sets, "analysisRuns": runs}
