"""A sync as a plan you can print before anything runs: phases, waves, hooks and prunes, in Argo CD's order.

The executor (engine) applies the tasks in order, waits between waves for health,
runs hooks, and records an :class:`Operation`. Everything it needs to decide *what*
and *in which order* is computed here, from data, so ``funade app sync --dry-run``
and the real sync cannot disagree, and the ordering rules are unit-tested.

The rules are gitops-engine's ``pkg/sync`` (``sync_context.getSyncTasks``,
``sync_tasks.go``, ``sync_phase.go``, ``hook/``, ``syncwaves/``) and Argo CD's
sync-options documentation:

* phases PreSync → Sync → PostSync (SyncFail runs only when the sync fails);
* within a phase, waves (``argocd.argoproj.io/sync-wave``, else Helm's
  ``helm.sh/hook-weight``, else 0), then kind (Namespace, NetworkPolicy, … APIService,
  then every other kind), then name; a Namespace moves before the first resource in
  it, a CRD before the first resource of its kind;
* prune tasks swap waves symmetrically (the last wave to be created is pruned first);
  with PruneLast they form one extra wave after the last Sync wave;
* hooks come from ``argocd.argoproj.io/hook`` (or Helm's ``helm.sh/hook``: pre-* →
  PreSync, post-install/upgrade → PostSync), are skipped in a selective sync, and get a
  name from ``generateName`` + revision, phase and start time.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from funade.core.gitops import diff, health
from funade.core.gitops.diff import ResourceKey, SyncStatus

__all__ = [
    "DELETION_APPROVED_ANNOTATION",
    "HELM_HOOK_DELETE_POLICY_ANNOTATION",
    "HELM_HOOK_WEIGHT_ANNOTATION",
    "HOOK_DELETE_POLICY_ANNOTATION",
    "KIND_ORDER",
    "WAVE_ANNOTATION",
    "WAVE_DELAY_SECONDS",
    "Action",
    "DeletePolicy",
    "HookType",
    "Operation",
    "OperationPhase",
    "Permission",
    "PlanError",
    "PlanResource",
    "PlanRow",
    "ResourceResult",
    "ResourceSelector",
    "ResultCode",
    "SyncOptions",
    "SyncPhase",
    "SyncPlan",
    "SyncTask",
    "delete_permission",
    "delete_policies",
    "hook_phase",
    "hook_types",
    "kind_rank",
    "pair",
    "plan",
    "prune_permission",
    "prune_result",
    "sync_phases",
    "wave_of",
]

Obj = dict[str, Any]

WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
HOOK_DELETE_POLICY_ANNOTATION = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight"
HELM_HOOK_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy"
DELETION_APPROVED_ANNOTATION = "argocd.argoproj.io/deletion-approved"
"""Set on the Application (an ISO timestamp) to confirm ``Prune=confirm`` / ``Delete=confirm``."""
WAVE_DELAY_SECONDS = 2.0
"""Argo CD waits this long between waves (``ARGOCD_SYNC_WAVE_DELAY``) so controllers see the change."""

KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
"""Creation order of kinds inside a wave (gitops-engine ``sync_tasks.go``, after Helm's kind sorter).
Every other kind (custom resources) comes after these."""

_KIND_RANK = {kind: i - len(KIND_ORDER) for i, kind in enumerate(KIND_ORDER)}


class PlanError(ValueError):
    """Options or selectors the planner cannot use; the message says which."""


class SyncPhase(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"


_PHASE_RANK = {SyncPhase.PRE_SYNC: -1, SyncPhase.SYNC: 0, SyncPhase.POST_SYNC: 1, SyncPhase.SYNC_FAIL: 2}


class HookType(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"
    SKIP = "Skip"
    PRE_DELETE = "PreDelete"
    POST_DELETE = "PostDelete"


_HELM_HOOK_TYPES = {
    "pre-install": HookType.PRE_SYNC,
    "pre-upgrade": HookType.PRE_SYNC,
    "post-install": HookType.POST_SYNC,
    "post-upgrade": HookType.POST_SYNC,
}


class DeletePolicy(StrEnum):
    HOOK_SUCCEEDED = "HookSucceeded"
    HOOK_FAILED = "HookFailed"
    BEFORE_HOOK_CREATION = "BeforeHookCreation"


_HELM_DELETE_POLICIES = {
    "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED,
    "hook-failed": DeletePolicy.HOOK_FAILED,
    "before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
}


class Action(StrEnum):
    """What a task does to its resource."""

    APPLY = "apply"  # create or update a managed resource
    PRUNE = "prune"  # delete a live resource no manifest names any more
    HOOK = "hook"  # create (or re-create) a hook and wait for it to finish


class Permission(StrEnum):
    """A ``Prune=`` or ``Delete=`` sync option."""

    ALLOW = "true"
    DENY = "false"
    CONFIRM = "confirm"


class ResultCode(StrEnum):
    """What happened to one resource in a sync (gitops-engine ``ResultCode``)."""

    SYNCED = "Synced"
    SYNC_FAILED = "SyncFailed"
    PRUNED = "Pruned"
    PRUNE_SKIPPED = "PruneSkipped"


class OperationPhase(StrEnum):
    """The phase of a sync operation, or of a hook inside it."""

    RUNNING = "Running"
    TERMINATING = "Terminating"
    FAILED = "Failed"
    ERROR = "Error"
    SUCCEEDED = "Succeeded"

    @property
    def completed(self) -> bool:
        return self in (OperationPhase.FAILED, OperationPhase.ERROR, OperationPhase.SUCCEEDED)

    @property
    def successful(self) -> bool:
        return self is OperationPhase.SUCCEEDED


# --- reading annotations ---------------------------------------------------------------------


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _annotation_int(obj: Mapping[str, Any], name: str) -> int | None:
    value = (((obj.get("metadata") or {}).get("annotations")) or {}).get(name)
    return int(value) if isinstance(value, str) and _GO_INT.fullmatch(value) else None


def wave_of(obj: Mapping[str, Any]) -> int:
    """The sync wave: ``argocd.argoproj.io/sync-wave``, else ``helm.sh/hook-weight``, else 0.

    A value that is not an integer counts as absent, as in gitops-engine.
    """
    wave = _annotation_int(obj, WAVE_ANNOTATION)
    if wave is None:
        wave = _annotation_int(obj, HELM_HOOK_WEIGHT_ANNOTATION)
    return wave or 0


def hook_types(obj: Mapping[str, Any]) -> tuple[HookType, ...]:
    """The hook types a manifest declares; Helm's are used only when there are no Argo CD ones."""
    values = {t.value for t in HookType}
    found = [HookType(t) for t in diff.annotation_options(obj, diff.HOOK_ANNOTATION) if t in values]
    if not found:
        found = [
            _HELM_HOOK_TYPES[t]
            for t in diff.annotation_options(obj, diff.HELM_HOOK_ANNOTATION)
            if t in _HELM_HOOK_TYPES
        ]
    return tuple(dict.fromkeys(found))


def sync_phases(obj: Mapping[str, Any]) -> tuple[SyncPhase, ...]:
    """The phases a manifest runs in: none for ``Skip``, its hook phases for a hook, else Sync."""
    if diff.is_skipped(obj):
        return ()
    if diff.is_hook(obj):
        names = {p.value for p in SyncPhase}
        phases = {SyncPhase(t.value) for t in hook_types(obj) if t.value in names}
        return tuple(sorted(phases, key=_PHASE_RANK.__getitem__))
    return (SyncPhase.SYNC,)


def delete_policies(obj: Mapping[str, Any]) -> tuple[DeletePolicy, ...]:
    """A hook's delete policies (Argo CD's and Helm's together); BeforeHookCreation when none."""
    values = {p.value for p in DeletePolicy}
    found = [DeletePolicy(p) for p in diff.annotation_options(obj, HOOK_DELETE_POLICY_ANNOTATION) if p in values]
    found += [
        _HELM_DELETE_POLICIES[p]
        for p in diff.annotation_options(obj, HELM_HOOK_DELETE_POLICY_ANNOTATION)
        if p in _HELM_DELETE_POLICIES
    ]
    return tuple(dict.fromkeys(found)) or (DeletePolicy.BEFORE_HOOK_CREATION,)


def kind_rank(kind: str) -> int:
    """Where a kind sorts inside a wave: negative for :data:`KIND_ORDER`, 0 (last) for any other."""
    return _KIND_RANK.get(kind, 0)


def _permission(obj: Mapping[str, Any] | None, option: str, default: Permission) -> Permission:
    for value in reversed(diff.annotation_options(obj, diff.SYNC_OPTIONS_ANNOTATION)):
        name, _, setting = value.partition("=")
        if name == option and setting in {p.value for p in Permission}:
            return Permission(setting)
    return default


def prune_permission(live: Mapping[str, Any] | None, options: SyncOptions) -> Permission:
    """``Prune=`` of a live resource; the resource's annotation overrides the app's sync option."""
    return _permission(live, "Prune", options.prune_default)


def delete_permission(live: Mapping[str, Any] | None, options: SyncOptions) -> Permission:
    """``Delete=`` of a live resource: whether deleting the *application* deletes it (not prune)."""
    return _permission(live, "Delete", options.delete_default)


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceSelector:
    """A ``--resource`` selection (selective sync). Each part may use ``*``; None matches any.

    Written as Argo CD's ``GROUP:KIND:NAME`` / ``GROUP:KIND:NAMESPACE/NAME`` or funade's
    shorter ``KIND/NAME``. Kinds compare case-insensitively.
    """

    kind: str
    name: str
    group: str | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, text: str) -> ResourceSelector:
        """Read a selector.

        Raises:
            PlanError: neither ``GROUP:KIND:[NAMESPACE/]NAME`` nor ``KIND/NAME``.
        """
        if text.count(":") == 2:
            group, kind, rest = text.split(":")
            namespace, _, name = rest.rpartition("/")
            if kind and name:
                return cls(kind=kind, name=name, group=group, namespace=namespace or None)
        elif ":" not in text and text.count("/") == 1:
            kind, name = text.split("/")
            if kind and name:
                return cls(kind=kind, name=name)
        raise PlanError(f"--resource {text!r}: expected GROUP:KIND:[NAMESPACE/]NAME or KIND/NAME")

    def matches(self, key: ResourceKey) -> bool:
        return (
            fnmatch.fnmatchcase(key.kind.lower(), self.kind.lower())
            and fnmatch.fnmatchcase(key.name, self.name)
            and (self.group is None or fnmatch.fnmatchcase(key.group, self.group))
            and (self.namespace is None or fnmatch.fnmatchcase(key.namespace, self.namespace))
        )


_BOOL_OPTIONS = {
    "PruneLast": "prune_last",
    "ApplyOutOfSyncOnly": "apply_out_of_sync_only",
    "CreateNamespace": "create_namespace",
}


@dataclass(frozen=True)
class SyncOptions:
    """How to sync: the operation's flags plus the Application's ``syncOptions``.

    ``prune`` is the sync's permission to delete (``argocd app sync --prune``,
    ``automated.prune``); without it prune tasks are planned but skipped ("ignored
    (requires pruning)"). ``namespace`` is the destination namespace: manifests without
    one go there, and ``create_namespace`` creates it. ``revision`` and ``started_at``
    (Unix seconds) name hooks that only have a ``generateName``. ``extra`` keeps the
    sync options the plan does not interpret (``ServerSideApply=true``...) for the executor.
    """

    prune: bool = False
    dry_run: bool = False
    prune_last: bool = False
    apply_out_of_sync_only: bool = False
    create_namespace: bool = False
    namespace: str = ""
    skip_hooks: bool = False
    resources: tuple[ResourceSelector, ...] = ()
    prune_confirmed: bool = False
    prune_default: Permission = Permission.ALLOW
    delete_default: Permission = Permission.ALLOW
    revision: str = ""
    started_at: float = 0.0
    extra: tuple[str, ...] = ()

    @classmethod
    def parse(cls, sync_options: Iterable[str], **fields: Any) -> SyncOptions:
        """Options from an Application's ``syncPolicy.syncOptions`` (``PruneLast=true``...) plus ``fields``.

        Raises:
            PlanError: an entry is not ``Name=value``, or a known option has a bad value.
        """
        values: dict[str, Any] = {}
        extra: list[str] = []
        for entry in sync_options:
            name, sep, value = entry.strip().partition("=")
            if not sep or not name:
                raise PlanError(f"sync option {entry!r}: expected Name=value")
            if name in _BOOL_OPTIONS:
                if value not in ("true", "false"):
                    raise PlanError(f"sync option {entry!r}: expected {name}=true or {name}=false")
                values[_BOOL_OPTIONS[name]] = value == "true"
            elif name in ("Prune", "Delete"):
                if value not in {p.value for p in Permission}:
                    raise PlanError(f"sync option {entry!r}: expected {name}=true, false or confirm")
                values["prune_default" if name == "Prune" else "delete_default"] = Permission(value)
            else:
                extra.append(entry.strip())
        values["extra"] = tuple(extra)
        values.update(fields)
        return cls(**values)


@dataclass(frozen=True)
class PlanResource:
    """One resource of the application: its manifest, its live object, and its sync status."""

    desired: Mapping[str, Any] | None = None
    live: Mapping[str, Any] | None = None
    status: SyncStatus = SyncStatus.OUT_OF_SYNC

    def __post_init__(self) -> None:
        if self.desired is None and self.live is None:
            raise PlanError("a plan resource needs a desired or a live object")

    @property
    def key(self) -> ResourceKey:
        return ResourceKey.of(self.desired if self.desired is not None else self.live or {})


def pair(
    desired: Iterable[Mapping[str, Any]],
    live: Iterable[Mapping[str, Any]],
    diffs: Iterable[diff.ResourceDiff],
) -> list[PlanResource]:
    """Plan inputs from :func:`diff.compare`'s result plus the raw objects it compared.

    ``desired`` must carry the namespaces compare gave them (objects without one are
    matched as they are). The diffs decide which live objects belong to the application;
    hooks in ``desired`` are added with the live object of the same key, if any.
    """
    targets = {ResourceKey.of(obj): obj for obj in desired}
    current = {ResourceKey.of(obj): obj for obj in live}
    result = [PlanResource(targets.get(d.key), current.get(d.key), d.status) for d in diffs]
    for key, obj in targets.items():
        if diff.is_hook(obj):
            result.append(PlanResource(obj, current.get(key), SyncStatus.OUT_OF_SYNC))
    return result


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncTask:
    """One step of a sync.

    ``wave`` is the effective wave (after prune reversal, PruneLast and dependency
    moves). For a prune task, ``skip_reason`` says why it will only be recorded as
    PruneSkipped, and ``needs_confirmation`` that it waits for ``Prune=confirm`` to be
    confirmed. ``delete_policies`` are a hook's.
    """

    phase: SyncPhase
    wave: int
    key: ResourceKey
    action: Action
    desired: Mapping[str, Any] | None = field(default=None, repr=False)
    live: Mapping[str, Any] | None = field(default=None, repr=False)
    status: SyncStatus = SyncStatus.OUT_OF_SYNC
    delete_policies: tuple[DeletePolicy, ...] = ()
    skip_reason: str = ""
    needs_confirmation: bool = False
    prune_last: bool = False

    @property
    def is_hook(self) -> bool:
        return self.action is Action.HOOK

    @property
    def is_prune(self) -> bool:
        return self.action is Action.PRUNE

    @property
    def delete_before_creation(self) -> bool:
        """A hook whose previous run still exists and must be deleted before it is created again."""
        return self.is_hook and self.live is not None and DeletePolicy.BEFORE_HOOK_CREATION in self.delete_policies

    def _sort_key(self) -> tuple[int, int, int, str, str, str]:
        return (
            _PHASE_RANK[self.phase],
            self.wave,
            kind_rank(self.key.kind),
            self.key.name,
            self.key.namespace,
            self.key.group,
        )


@dataclass(frozen=True)
class PlanRow:
    """One printable line of a plan."""

    phase: str
    wave: int
    kind: str
    namespace: str
    name: str
    action: str
    note: str = ""


@dataclass(frozen=True)
class SyncPlan:
    """The ordered tasks of a sync. SyncFail hooks are last and run only if the sync fails."""

    tasks: tuple[SyncTask, ...]
    options: SyncOptions = field(default_factory=SyncOptions)

    @property
    def sync_fail(self) -> tuple[SyncTask, ...]:
        return tuple(t for t in self.tasks if t.phase is SyncPhase.SYNC_FAIL)

    def steps(self) -> list[tuple[SyncPhase, int, tuple[SyncTask, ...]]]:
        """The (phase, wave) groups to run one after another, SyncFail excluded."""
        groups: list[tuple[SyncPhase, int, tuple[SyncTask, ...]]] = []
        for task in self.tasks:
            if task.phase is SyncPhase.SYNC_FAIL:
                continue
            if groups and groups[-1][0] is task.phase and groups[-1][1] == task.wave:
                phase, wave, tasks = groups[-1]
                groups[-1] = (phase, wave, (*tasks, task))
            else:
                groups.append((task.phase, task.wave, (task,)))
        return groups

    @property
    def multi_step(self) -> bool:
        """More than one (phase, wave): the executor waits for each step to be healthy before the next."""
        return len(self.steps()) > 1

    def describe(self) -> list[PlanRow]:
        """The plan as rows (phase, wave, kind, namespace, name, action, note) for a table or JSON."""
        rows = []
        for task in self.tasks:
            notes = []
            action = task.action.value
            if task.is_hook:
                action = "recreate hook" if task.delete_before_creation else "create hook"
                notes.append("delete: " + ", ".join(p.value for p in task.delete_policies))
            elif task.is_prune:
                if task.skip_reason:
                    action = "prune skipped"
                    notes.append(task.skip_reason)
                if task.needs_confirmation:
                    notes.append("waits for confirmation (Prune=confirm)")
                if task.prune_last:
                    notes.append("prune last")
            elif task.live is None:
                action = "create"
            elif task.status is SyncStatus.SYNCED:
                action = "unchanged"
            else:
                action = "update"
            if self.options.dry_run:
                notes.append("dry run")
            rows.append(
                PlanRow(
                    phase=task.phase.value,
                    wave=task.wave,
                    kind=task.key.kind,
                    namespace=task.key.namespace,
                    name=task.key.name,
                    action=action,
                    note="; ".join(notes),
                )
            )
        return rows


def _hook_name(obj: Mapping[str, Any], phase: SyncPhase, options: SyncOptions) -> Obj:
    """Give a ``generateName``-only hook its deterministic name (gitops-engine ``getSyncTasks``)."""
    result: Obj = copy.deepcopy(dict(obj))
    meta = result.setdefault("metadata", {})
    if not meta.get("name"):
        revision = options.revision[:7] if len(options.revision) >= 8 else options.revision
        suffix = f"{revision}-{phase.value}-{int(options.started_at)}".lower()
        meta["name"] = f"{meta.get('generateName', '')}{suffix}"
    return result


def _placed(obj: Mapping[str, Any], namespace: str) -> Mapping[str, Any]:
    meta = obj.get("metadata") or {}
    if meta.get("namespace") or not namespace or obj.get("kind") in diff.CLUSTER_SCOPED_KINDS:
        return obj
    return {**obj, "metadata": {**meta, "namespace": namespace}}


def _crd_key(obj: Mapping[str, Any]) -> str | None:
    if obj.get("kind") != "CustomResourceDefinition" or diff.group_of(obj.get("apiVersion")) != "apiextensions.k8s.io":
        return None
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    if not isinstance(spec.get("group"), str) or not isinstance(names.get("kind"), str):
        return None
    return f"{spec['group']}/{names['kind']}"


_Key = Callable[[Mapping[str, Any]], str | None]


def _adjust(tasks: list[SyncTask], dependency: _Key, reference: _Key) -> None:
    """Move each dependency before the first task that references it, into that task's phase and wave."""
    first: dict[str, int] = {}
    for i in range(len(tasks)):
        task = tasks[i]
        if task.desired is None:
            continue
        dep = dependency(task.desired)
        if dep is not None:
            index = first.get(dep)
            if index is not None:
                ahead = tasks[index]
                moved = replace(task, phase=ahead.phase, wave=ahead.wave)
                del tasks[i]
                tasks.insert(index, moved)
                for name, at in first.items():
                    if at >= index:
                        first[name] = at + 1
            continue
        ref = reference(task.desired)
        if ref is not None and ref not in first:
            first[ref] = i


def _namespace_dependency(obj: Mapping[str, Any]) -> str | None:
    if obj.get("kind") == "Namespace" and diff.group_of(obj.get("apiVersion")) == "":
        return str((obj.get("metadata") or {}).get("name") or "")
    return None


def _namespace_reference(obj: Mapping[str, Any]) -> str | None:
    return str((obj.get("metadata") or {}).get("namespace") or "") or None


def _kind_reference(obj: Mapping[str, Any]) -> str | None:
    return f"{diff.group_of(obj.get('apiVersion'))}/{obj.get('kind', '')}"


def plan(
    resources: Iterable[PlanResource],
    options: SyncOptions | None = None,
    *,
    namespace_exists: bool = True,
) -> SyncPlan:
    """Order a sync of ``resources`` (see the module docstring for the rules).

    ``namespace_exists`` tells whether the destination namespace is live, for
    ``CreateNamespace``: when it is not and no manifest declares it, a PreSync task
    creating it comes first. With ``apply_out_of_sync_only``, Synced resources are left
    out (hooks and prunes stay). A selective sync (``options.resources``) runs only the
    selected resources and no hooks.

    Raises:
        PlanError: two tasks for the same resource and phase.
    """
    options = options or SyncOptions()
    selective = bool(options.resources)
    skip_hooks = options.skip_hooks or selective
    tasks: list[SyncTask] = []
    declared_namespaces: set[str] = set()
    for resource in resources:
        desired = _placed(resource.desired, options.namespace) if resource.desired is not None else None
        live = resource.live
        if desired is not None and _namespace_dependency(desired) is not None:
            declared_namespaces.add(_namespace_dependency(desired) or "")
        if desired is not None and diff.is_hook(desired):
            if skip_hooks:
                continue
            for phase in sync_phases(desired):
                named = _hook_name(desired, phase, options)
                tasks.append(
                    SyncTask(
                        phase=phase,
                        wave=wave_of(named),
                        key=ResourceKey.of(named),
                        action=Action.HOOK,
                        desired=named,
                        live=live if live is not None and ResourceKey.of(live) == ResourceKey.of(named) else None,
                        delete_policies=delete_policies(named),
                    )
                )
            continue
        subject = desired if desired is not None else live
        if subject is None:
            continue
        if desired is None and diff.is_hook(subject):
            continue  # a hook left from an earlier sync: neither applied nor pruned
        key = ResourceKey.of(subject)
        if selective and not any(selector.matches(key) for selector in options.resources):
            continue
        for phase in sync_phases(subject):
            if desired is not None:
                tasks.append(SyncTask(phase, wave_of(desired), key, Action.APPLY, desired, live, resource.status))
                continue
            permission = prune_permission(live, options)
            reason = ""
            if not options.prune:
                reason = "ignored (requires pruning)"
            elif permission is Permission.DENY:
                reason = "ignored (no prune)"
            tasks.append(
                SyncTask(
                    phase,
                    wave_of(subject),
                    key,
                    Action.PRUNE,
                    None,
                    live,
                    resource.status,
                    skip_reason=reason,
                    needs_confirmation=not reason and permission is Permission.CONFIRM and not options.prune_confirmed,
                )
            )

    seen: set[tuple[ResourceKey, SyncPhase]] = set()
    for task in tasks:
        if (task.key, task.phase) in seen:
            raise PlanError(f"{task.key} appears twice in the {task.phase.value} phase")
        seen.add((task.key, task.phase))

    # Prunes run in mirrored waves: what was created last is deleted first.
    prune_waves = sorted({t.wave for t in tasks if t.is_prune})
    mirror = dict(zip(prune_waves, reversed(prune_waves), strict=True))
    tasks = [replace(t, wave=mirror[t.wave]) if t.is_prune else t for t in tasks]
    last_wave = max([0, *(t.wave for t in tasks if t.phase is SyncPhase.SYNC)]) + 1
    tasks = [
        replace(t, wave=last_wave, prune_last=True)
        if t.is_prune
        and (options.prune_last or diff.has_option(t.live, diff.SYNC_OPTIONS_ANNOTATION, "PruneLast=true"))
        else t
        for t in tasks
    ]

    tasks.sort(key=SyncTask._sort_key)
    _adjust(tasks, _namespace_dependency, _namespace_reference)
    _adjust(tasks, _crd_key, _kind_reference)

    if options.apply_out_of_sync_only:
        tasks = [
            t for t in tasks if not (t.action is Action.APPLY and t.live is not None and t.status is SyncStatus.SYNCED)
        ]

    if (
        options.create_namespace
        and options.namespace
        and not namespace_exists
        and options.namespace not in declared_namespaces
    ):
        namespace: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.namespace}}
        tasks.insert(0, SyncTask(SyncPhase.PRE_SYNC, 0, ResourceKey.of(namespace), Action.APPLY, namespace))
    return SyncPlan(tuple(tasks), options)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceResult:
    """What one task did (gitops-engine ``ResourceSyncResult``).

    ``status`` stays None while a hook runs; ``hook_phase`` is the hook's (or a
    resource's while its health is awaited).
    """

    key: ResourceKey
    phase: SyncPhase
    wave: int = 0
    status: ResultCode | None = None
    message: str = ""
    hook_type: HookType | None = None
    hook_phase: OperationPhase | None = None
    order: int = 0


@dataclass(frozen=True)
class Operation:
    """A sync operation and its per-resource results, as Argo CD records ``status.operationState``."""

    phase: OperationPhase
    message: str = ""
    results: tuple[ResourceResult, ...] = ()
    revision: str = ""
    started_at: float = 0.0
    finished_at: float | None = None
    dry_run: bool = False

    def result(self, key: ResourceKey, phase: SyncPhase) -> ResourceResult | None:
        return next((r for r in self.results if r.key == key and r.phase is phase), None)

    def with_result(self, result: ResourceResult) -> Operation:
        """This operation with ``result`` recorded (replacing the same resource and phase, keeping its order)."""
        results = list(self.results)
        for i, old in enumerate(results):
            if old.key == result.key and old.phase is result.phase:
                results[i] = replace(result, order=old.order)
                return replace(self, results=tuple(results))
        return replace(self, results=(*results, replace(result, order=len(results) + 1)))

    def finish(self, phase: OperationPhase, message: str, at: float) -> Operation:
        """The operation ended (``phase`` must be a completed one)."""
        if not phase.completed:
            raise PlanError(f"an operation finishes Succeeded, Failed or Error, not {phase.value}")
        return replace(self, phase=phase, message=message, finished_at=at)

    @property
    def failed_results(self) -> tuple[ResourceResult, ...]:
        return tuple(
            r
            for r in self.results
            if r.status is ResultCode.SYNC_FAILED or r.hook_phase in (OperationPhase.FAILED, OperationPhase.ERROR)
        )


def prune_result(task: SyncTask, *, dry_run: bool = False, order: int = 0) -> ResourceResult:
    """The result a prune task records when it runs (gitops-engine ``pruneObject`` wording).

    ``Pruned`` means the executor deletes the object (unless ``dry_run``); a task
    waiting for confirmation has no result yet and must not be passed here.

    Raises:
        PlanError: not a prune task, or one still waiting for confirmation.
    """
    if not task.is_prune or task.needs_confirmation:
        raise PlanError(f"{task.key}: not a prune task ready to run")
    if task.skip_reason:
        return ResourceResult(task.key, task.phase, task.wave, ResultCode.PRUNE_SKIPPED, task.skip_reason, order=order)
    message = "pruned (dry run)" if dry_run else "pruned"
    return ResourceResult(task.key, task.phase, task.wave, ResultCode.PRUNED, message, order=order)


def hook_phase(live: Mapping[str, Any], *, local: bool = False) -> tuple[OperationPhase, str]:
    """A hook's (or an awaited resource's) phase from its live health (gitops-engine ``getOperationPhase``).

    No health check: Succeeded ("<name> created"). Healthy: Succeeded. Progressing or
    Suspended: Running. Degraded or Unknown: Failed.
    """
    assessed = health.assess(live, local=local)
    if assessed is None:
        return OperationPhase.SUCCEEDED, f"{(live.get('metadata') or {}).get('name', '')} created"
    if assessed.status in (health.HealthStatus.DEGRADED, health.HealthStatus.UNKNOWN):
        return OperationPhase.FAILED, assessed.message
    if assessed.status in (health.HealthStatus.PROGRESSING, health.HealthStatus.SUSPENDED):
        return OperationPhase.RUNNING, assessed.message
    return OperationPhase.SUCCEEDED, assessed.message
