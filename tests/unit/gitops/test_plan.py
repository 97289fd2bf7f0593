"""The sync plan must order, hook and prune exactly as gitops-engine's sync context does.

Facts from gitops-engine ``pkg/sync``: ``sync_tasks.go`` (phase → wave → kind → name, the
kind list, Namespace and CRD dependencies moved forward), ``sync_context.go``
(``getSyncTasks``: symmetric prune-wave swap, PruneLast = last Sync wave + 1, hook names
from generateName + 7-char revision + phase + start time, ``pruneObject`` messages,
``getOperationPhase``), ``sync_phase.go``, ``hook/`` and ``hook/helm/`` (types, delete
policies, BeforeHookCreation default), ``syncwaves/waves.go``; and Argo CD's sync-options
and selective-sync documentation (ApplyOutOfSyncOnly keeps hooks; selective sync runs none).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from funade.core.gitops import diff
from funade.core.gitops import plan as p
from funade.core.gitops.diff import ResourceKey, SyncStatus
from funade.core.gitops.plan import (
    Action,
    DeletePolicy,
    OperationPhase,
    Permission,
    PlanResource,
    ResultCode,
    SyncOptions,
    SyncPhase,
)

pytestmark = pytest.mark.unit

Obj = dict[str, Any]

GITOPS_ENGINE_KINDS = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "IngressClass", "Ingress", "APIService",
]  # fmt: skip


def res(
    kind: str,
    name: str,
    *,
    api: str = "v1",
    namespace: str | None = "app",
    wave: int | str | None = None,
    **annotations: str,
) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if wave is not None:
        annotations[p.WAVE_ANNOTATION] = str(wave)
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def hook(kind: str, name: str, types: str, **annotations: str) -> Obj:
    return res(kind, name, api="batch/v1" if kind == "Job" else "v1", **{diff.HOOK_ANNOTATION: types, **annotations})


def names(plan: p.SyncPlan) -> list[str]:
    return [t.key.name for t in plan.tasks]


def rows(plan: p.SyncPlan) -> list[tuple[str, int, str, str]]:
    return [(r.phase, r.wave, r.kind, r.name) for r in plan.describe()]


# --- waves and kinds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "wave"),
    [
        ({}, 0),
        ({p.WAVE_ANNOTATION: "5"}, 5),
        ({p.WAVE_ANNOTATION: "-2"}, -2),
        ({p.WAVE_ANNOTATION: "+3"}, 3),
        ({p.WAVE_ANNOTATION: "abc"}, 0),
        ({p.WAVE_ANNOTATION: " 4"}, 0),  # Go's Atoi refuses spaces
        ({p.HELM_HOOK_WEIGHT_ANNOTATION: "-5"}, -5),
        ({p.WAVE_ANNOTATION: "2", p.HELM_HOOK_WEIGHT_ANNOTATION: "-5"}, 2),
        ({p.WAVE_ANNOTATION: "x", p.HELM_HOOK_WEIGHT_ANNOTATION: "7"}, 7),
    ],
)
def test_wave_of(annotations: dict[str, str], wave: int) -> None:
    assert p.wave_of(res("ConfigMap", "c", **annotations)) == wave


def test_kind_order_is_gitops_engines_and_unknown_kinds_come_last() -> None:
    assert list(p.KIND_ORDER) == GITOPS_ENGINE_KINDS
    kinds = [*GITOPS_ENGINE_KINDS, "Rollout", "AnalysisTemplate"]
    shuffled = kinds[:]
    random.Random(7).shuffle(shuffled)
    planned = p.plan([PlanResource(res(k, "x", namespace=None)) for k in shuffled])
    # Unknown kinds tie on rank and are ordered by name, then group: both named "x" here.
    assert [t.key.kind for t in planned.tasks][: len(GITOPS_ENGINE_KINDS)] == GITOPS_ENGINE_KINDS
    assert {t.key.kind for t in planned.tasks[len(GITOPS_ENGINE_KINDS) :]} == {"Rollout", "AnalysisTemplate"}
    assert p.kind_rank("Namespace") < p.kind_rank("APIService") < p.kind_rank("Rollout") == 0


def test_phase_then_wave_then_kind_then_name() -> None:
    planned = p.plan(
        [
            PlanResource(res("Deployment", "b")),
            PlanResource(res("Deployment", "a")),
            PlanResource(res("Service", "z")),
            PlanResource(res("ConfigMap", "late", wave=1)),
            PlanResource(res("Secret", "early", wave=-1)),
            PlanResource(hook("Job", "post", "PostSync")),
            PlanResource(hook("Job", "pre", "PreSync", **{p.WAVE_ANNOTATION: "9"})),
            PlanResource(hook("Pod", "cleanup", "SyncFail")),
        ]
    )
    assert rows(planned) == [
        ("PreSync", 9, "Job", "pre"),
        ("Sync", -1, "Secret", "early"),
        ("Sync", 0, "Service", "z"),
        ("Sync", 0, "Deployment", "a"),
        ("Sync", 0, "Deployment", "b"),
        ("Sync", 1, "ConfigMap", "late"),
        ("PostSync", 0, "Job", "post"),
        ("SyncFail", 0, "Pod", "cleanup"),
    ]
    assert [(ph, w, [t.key.name for t in ts]) for ph, w, ts in planned.steps()] == [
        (SyncPhase.PRE_SYNC, 9, ["pre"]),
        (SyncPhase.SYNC, -1, ["early"]),
        (SyncPhase.SYNC, 0, ["z", "a", "b"]),
        (SyncPhase.SYNC, 1, ["late"]),
        (SyncPhase.POST_SYNC, 0, ["post"]),
    ]
    assert [t.key.name for t in planned.sync_fail] == ["cleanup"]
    assert planned.multi_step


def test_a_single_wave_is_one_step() -> None:
    planned = p.plan([PlanResource(res("ConfigMap", "a")), PlanResource(res("Deployment", "b", api="apps/v1"))])
    assert not planned.multi_step


def test_a_namespace_moves_before_the_first_resource_in_it() -> None:
    planned = p.plan(
        [
            PlanResource(res("Namespace", "app", namespace=None, wave=5)),
            PlanResource(res("Deployment", "web", api="apps/v1", wave=1)),
            PlanResource(res("ConfigMap", "cfg", wave=2)),
            PlanResource(res("Namespace", "other", namespace=None, wave=3)),
        ]
    )
    assert rows(planned) == [
        ("Sync", 1, "Namespace", "app"),  # took the wave of the Deployment that needs it
        ("Sync", 1, "Deployment", "web"),
        ("Sync", 2, "ConfigMap", "cfg"),
        ("Sync", 3, "Namespace", "other"),  # nothing in it: stays
    ]


def test_a_crd_moves_before_the_first_resource_of_its_kind() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "annotations": {p.WAVE_ANNOTATION: "3"}},
        "spec": {"group": "example.com", "names": {"kind": "Widget"}},
    }
    planned = p.plan(
        [
            PlanResource(crd),
            PlanResource(res("Widget", "w", api="example.com/v1", wave=-1)),
            PlanResource(res("Gadget", "g", api="example.com/v1", wave=-2)),
        ]
    )
    assert rows(planned) == [
        ("Sync", -2, "Gadget", "g"),
        ("Sync", -1, "CustomResourceDefinition", "widgets.example.com"),
        ("Sync", -1, "Widget", "w"),
    ]


def test_namespaces_of_manifests_without_one_are_filled_in() -> None:
    planned = p.plan([PlanResource(res("ConfigMap", "c", namespace=None))], SyncOptions(namespace="shop"))
    assert planned.tasks[0].key == ResourceKey("", "ConfigMap", "shop", "c")
    assert planned.tasks[0].desired is not None and planned.tasks[0].desired["metadata"]["namespace"] == "shop"


# --- pruning --------------------------------------------------------------------------------------


def prune(name: str, wave: int | None = None, **annotations: str) -> PlanResource:
    return PlanResource(None, res("ConfigMap", name, wave=wave, **annotations))


def test_prune_waves_are_mirrored() -> None:
    planned = p.plan(
        [prune("a", -1), prune("b", 0), prune("c", 2), prune("d", 0), PlanResource(res("Secret", "s", wave=1))],
        SyncOptions(prune=True),
    )
    waves = {t.key.name: t.wave for t in planned.tasks}
    assert waves == {"a": 2, "b": 0, "c": -1, "d": 0, "s": 1}
    assert [t.action for t in planned.tasks] == [Action.PRUNE, Action.PRUNE, Action.PRUNE, Action.APPLY, Action.PRUNE]


def test_prune_last_makes_one_final_wave() -> None:
    resources = [prune("old", -3), PlanResource(res("Deployment", "web", api="apps/v1", wave=4)), prune("older", 1)]
    planned = p.plan(resources, SyncOptions(prune=True, prune_last=True))
    assert rows(planned) == [
        ("Sync", 4, "Deployment", "web"),
        ("Sync", 5, "ConfigMap", "old"),
        ("Sync", 5, "ConfigMap", "older"),
    ]
    assert all(t.prune_last for t in planned.tasks if t.is_prune)
    assert "prune last" in planned.describe()[1].note


def test_prune_last_without_waves_is_wave_one_and_can_be_set_per_resource() -> None:
    planned = p.plan(
        [
            prune("last", **{diff.SYNC_OPTIONS_ANNOTATION: "PruneLast=true"}),
            prune("normal"),
            PlanResource(res("Pod", "x")),
        ],
        SyncOptions(prune=True),
    )
    assert rows(planned) == [
        ("Sync", 0, "ConfigMap", "normal"),
        ("Sync", 0, "Pod", "x"),
        ("Sync", 1, "ConfigMap", "last"),
    ]


def test_prune_permissions_and_results() -> None:
    resources = [
        prune("plain"),
        prune("kept", **{diff.SYNC_OPTIONS_ANNOTATION: "Prune=false"}),
        prune("careful", **{diff.SYNC_OPTIONS_ANNOTATION: "PruneLast=true, Prune=confirm"}),
    ]
    without_prune = p.plan(resources, SyncOptions(prune=False))
    assert {t.key.name: t.skip_reason for t in without_prune.tasks} == {
        "plain": "ignored (requires pruning)",
        "kept": "ignored (requires pruning)",
        "careful": "ignored (requires pruning)",
    }
    assert not any(t.needs_confirmation for t in without_prune.tasks)
    planned = p.plan(resources, SyncOptions(prune=True))
    by_name = {t.key.name: t for t in planned.tasks}
    assert by_name["plain"].skip_reason == "" and not by_name["plain"].needs_confirmation
    assert by_name["kept"].skip_reason == "ignored (no prune)"
    assert by_name["careful"].needs_confirmation
    assert p.prune_result(by_name["plain"]).status is ResultCode.PRUNED
    assert p.prune_result(by_name["plain"]).message == "pruned"
    assert p.prune_result(by_name["plain"], dry_run=True).message == "pruned (dry run)"
    assert p.prune_result(by_name["kept"]).status is ResultCode.PRUNE_SKIPPED
    assert p.prune_result(by_name["kept"]).message == "ignored (no prune)"
    with pytest.raises(p.PlanError):
        p.prune_result(by_name["careful"])
    with pytest.raises(p.PlanError):
        p.prune_result(p.plan([PlanResource(res("Pod", "x"))]).tasks[0])
    confirmed = p.plan(resources, SyncOptions(prune=True, prune_confirmed=True))
    assert not any(t.needs_confirmation for t in confirmed.tasks)


def test_the_resource_prune_option_overrides_the_applications() -> None:
    options = SyncOptions.parse(["Prune=false"], prune=True)
    planned = p.plan([prune("a"), prune("b", **{diff.SYNC_OPTIONS_ANNOTATION: "Prune=true"})], options)
    assert {t.key.name: t.skip_reason for t in planned.tasks} == {"a": "ignored (no prune)", "b": ""}


def test_delete_permission_is_about_deleting_the_application() -> None:
    kept = res("PersistentVolumeClaim", "data", **{diff.SYNC_OPTIONS_ANNOTATION: "Delete=false"})
    assert p.delete_permission(kept, SyncOptions()) is Permission.DENY
    assert p.delete_permission(res("Pod", "x"), SyncOptions.parse(["Delete=confirm"])) is Permission.CONFIRM
    assert p.delete_permission(res("Pod", "x"), SyncOptions()) is Permission.ALLOW
    # Delete=false does not stop a prune (Argo CD's No Resource Deletion is for app deletion).
    planned = p.plan([PlanResource(None, kept)], SyncOptions(prune=True))
    assert planned.tasks[0].skip_reason == ""


def test_a_live_hook_is_never_pruned() -> None:
    old = hook("Job", "migrate-1", "PreSync")
    assert p.plan([PlanResource(None, old)], SyncOptions(prune=True)).tasks == ()


# --- hooks ----------------------------------------------------------------------------------------


def test_hook_types_and_phases() -> None:
    both = hook("Job", "j", "PreSync,PostSync")
    assert p.sync_phases(both) == (SyncPhase.PRE_SYNC, SyncPhase.POST_SYNC)
    assert p.sync_phases(hook("Job", "j", "Skip")) == ()
    assert p.sync_phases(hook("Job", "j", "PreDelete")) == ()  # app deletion only
    assert p.sync_phases(res("ConfigMap", "c")) == (SyncPhase.SYNC,)
    planned = p.plan([PlanResource(both)])
    assert [(t.phase, t.action) for t in planned.tasks] == [
        (SyncPhase.PRE_SYNC, Action.HOOK),
        (SyncPhase.POST_SYNC, Action.HOOK),
    ]


@pytest.mark.parametrize(
    ("helm", "phases"),
    [
        ("pre-install", (SyncPhase.PRE_SYNC,)),
        ("pre-upgrade,pre-install", (SyncPhase.PRE_SYNC,)),
        ("post-install,post-upgrade", (SyncPhase.POST_SYNC,)),
        ("pre-install,post-install", (SyncPhase.PRE_SYNC, SyncPhase.POST_SYNC)),
        ("test", ()),
        ("pre-delete", ()),
    ],
)
def test_helm_hooks_map_onto_argo_phases(helm: str, phases: tuple[SyncPhase, ...]) -> None:
    obj = res("Job", "j", api="batch/v1", **{diff.HELM_HOOK_ANNOTATION: helm})
    assert diff.is_hook(obj)
    assert p.sync_phases(obj) == phases


def test_argo_hook_annotation_wins_over_helms() -> None:
    obj = res("Job", "j", **{diff.HOOK_ANNOTATION: "Sync", diff.HELM_HOOK_ANNOTATION: "pre-install"})
    assert p.hook_types(obj) == (p.HookType.SYNC,)


def test_a_helm_test_hook_is_neither_run_nor_applied() -> None:
    obj = res("Pod", "t", **{diff.HELM_HOOK_ANNOTATION: "test"})
    assert p.plan([PlanResource(obj)]).tasks == ()


def test_skip_is_never_applied() -> None:
    assert p.plan([PlanResource(hook("ConfigMap", "draft", "Skip"))]).tasks == ()


@pytest.mark.parametrize(
    ("annotations", "policies"),
    [
        ({}, (DeletePolicy.BEFORE_HOOK_CREATION,)),
        ({p.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"}, (DeletePolicy.HOOK_SUCCEEDED,)),
        (
            {p.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded,HookFailed"},
            (DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED),
        ),
        ({p.HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded"}, (DeletePolicy.HOOK_SUCCEEDED,)),
        (
            {p.HOOK_DELETE_POLICY_ANNOTATION: "HookFailed", p.HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-failed"},
            (DeletePolicy.HOOK_FAILED,),
        ),
        ({p.HOOK_DELETE_POLICY_ANNOTATION: "Nonsense"}, (DeletePolicy.BEFORE_HOOK_CREATION,)),
    ],
)
def test_delete_policies(annotations: dict[str, str], policies: tuple[DeletePolicy, ...]) -> None:
    assert p.delete_policies(hook("Job", "j", "PreSync", **annotations)) == policies


def generated(types: str) -> Obj:
    obj = hook("Job", "ignored", types)
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "migrate-"
    return obj


@pytest.mark.parametrize(
    ("revision", "name"),
    [
        ("0123456789abcdef", "migrate-0123456-presync-1700000000"),
        ("v1.2.3", "migrate-v1.2.3-presync-1700000000"),
        ("ABCDEFGH", "migrate-abcdefg-presync-1700000000"),
    ],
)
def test_generate_name_hooks_get_deterministic_names(revision: str, name: str) -> None:
    planned = p.plan([PlanResource(generated("PreSync"))], SyncOptions(revision=revision, started_at=1700000000.9))
    assert names(planned) == [name]


def test_a_hook_in_two_phases_gets_one_name_per_phase() -> None:
    planned = p.plan([PlanResource(generated("PreSync,PostSync"))], SyncOptions(revision="abc", started_at=5))
    assert names(planned) == ["migrate-abc-presync-5", "migrate-abc-postsync-5"]


def test_an_existing_hook_is_deleted_before_it_is_created_again() -> None:
    desired = hook("Job", "migrate", "PreSync")
    planned = p.plan([PlanResource(desired, desired)])
    (task,) = planned.tasks
    assert task.delete_before_creation
    assert planned.describe()[0].action == "recreate hook"
    kept = hook("Job", "migrate", "PreSync", **{p.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"})
    assert not p.plan([PlanResource(kept, kept)]).tasks[0].delete_before_creation


def test_skip_hooks_and_selective_sync_run_no_hooks() -> None:
    resources = [PlanResource(hook("Job", "migrate", "PreSync")), PlanResource(res("ConfigMap", "cfg"))]
    assert names(p.plan(resources, SyncOptions(skip_hooks=True))) == ["cfg"]
    selective = SyncOptions(resources=(p.ResourceSelector.parse("ConfigMap/cfg"),))
    assert names(p.plan(resources, selective)) == ["cfg"]


# --- selection and filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "selector"),
    [
        ("Deployment/web", p.ResourceSelector(kind="Deployment", name="web")),
        ("apps:Deployment:web", p.ResourceSelector(kind="Deployment", name="web", group="apps")),
        ("apps:Deployment:app/web", p.ResourceSelector(kind="Deployment", name="web", group="apps", namespace="app")),
        (":ConfigMap:cfg", p.ResourceSelector(kind="ConfigMap", name="cfg", group="")),
    ],
)
def test_selector_parse(text: str, selector: p.ResourceSelector) -> None:
    assert p.ResourceSelector.parse(text) == selector


@pytest.mark.parametrize("text", ["web", "a/b/c", "apps:Deployment", "apps:Deployment:", "/web", "a:b:c:d"])
def test_bad_selectors(text: str) -> None:
    with pytest.raises(p.PlanError, match="--resource"):
        p.ResourceSelector.parse(text)


def test_selective_sync_runs_only_the_chosen_resources() -> None:
    resources = [
        PlanResource(res("Deployment", "web", api="apps/v1")),
        PlanResource(res("Deployment", "api", api="apps/v1")),
        PlanResource(res("Service", "web")),
        prune("old"),
        prune("older"),
    ]
    options = SyncOptions(
        prune=True,
        resources=(p.ResourceSelector.parse("deployment/web"), p.ResourceSelector.parse(":ConfigMap:app/old")),
    )
    assert names(p.plan(resources, options)) == ["old", "web"]
    wildcard = SyncOptions(resources=(p.ResourceSelector.parse("apps:Deployment:*"),))
    assert names(p.plan(resources, wildcard)) == ["api", "web"]
    wrong_group = SyncOptions(resources=(p.ResourceSelector.parse(":Deployment:web"),))
    assert names(p.plan(resources, wrong_group)) == []


def test_apply_out_of_sync_only_skips_synced_resources_but_keeps_hooks_and_prunes() -> None:
    cfg = res("ConfigMap", "same")
    resources = [
        PlanResource(cfg, cfg, SyncStatus.SYNCED),
        PlanResource(res("ConfigMap", "changed"), res("ConfigMap", "changed"), SyncStatus.OUT_OF_SYNC),
        PlanResource(res("ConfigMap", "new")),
        PlanResource(hook("Job", "migrate", "PreSync"), None, SyncStatus.SYNCED),
        prune("old"),
    ]
    assert sorted(names(p.plan(resources, SyncOptions(apply_out_of_sync_only=True)))) == [
        "changed",
        "migrate",
        "new",
        "old",
    ]
    everything = p.plan(resources)
    assert "same" in names(everything)
    assert {r.name: r.action for r in everything.describe()}["same"] == "unchanged"


def test_apply_out_of_sync_only_still_counts_synced_waves_for_prune_last() -> None:
    cfg = res("ConfigMap", "same", wave=7)
    options = SyncOptions(apply_out_of_sync_only=True, prune=True, prune_last=True)
    planned = p.plan([PlanResource(cfg, cfg, SyncStatus.SYNCED), prune("old")], options)
    assert rows(planned) == [("Sync", 8, "ConfigMap", "old")]


# --- CreateNamespace ------------------------------------------------------------------------------


def test_create_namespace_adds_a_first_presync_task_when_it_is_missing() -> None:
    resources = [
        PlanResource(hook("Job", "pre", "PreSync", **{p.WAVE_ANNOTATION: "-5"})),
        PlanResource(res("Pod", "x")),
    ]
    options = SyncOptions(create_namespace=True, namespace="app")
    planned = p.plan(resources, options, namespace_exists=False)
    first = planned.tasks[0]
    assert (first.phase, first.key, first.action, first.live) == (
        SyncPhase.PRE_SYNC,
        ResourceKey("", "Namespace", "", "app"),
        Action.APPLY,
        None,
    )
    assert planned.describe()[0].action == "create"
    assert names(p.plan(resources, options, namespace_exists=True)) == ["pre", "x"]
    assert names(p.plan(resources, SyncOptions(namespace="app"), namespace_exists=False)) == ["pre", "x"]


def test_create_namespace_defers_to_a_declared_namespace() -> None:
    resources = [PlanResource(res("Namespace", "app", namespace=None)), PlanResource(res("Pod", "x"))]
    planned = p.plan(resources, SyncOptions(create_namespace=True, namespace="app"), namespace_exists=False)
    assert [t.key.kind for t in planned.tasks] == ["Namespace", "Pod"]


# --- options, errors, rows ------------------------------------------------------------------------


def test_sync_options_parse() -> None:
    options = SyncOptions.parse(
        ["PruneLast=true", "ApplyOutOfSyncOnly=true", "CreateNamespace=true", "Prune=confirm", "ServerSideApply=true"],
        prune=True,
        namespace="app",
    )
    assert options.prune_last and options.apply_out_of_sync_only and options.create_namespace
    assert options.prune_default is Permission.CONFIRM and options.prune and options.namespace == "app"
    assert options.extra == ("ServerSideApply=true",)
    assert not SyncOptions.parse(["CreateNamespace=false"]).create_namespace


@pytest.mark.parametrize("entry", ["PruneLast", "PruneLast=yes", "Prune=maybe", "=true"])
def test_bad_sync_options(entry: str) -> None:
    with pytest.raises(p.PlanError, match="sync option"):
        SyncOptions.parse([entry])


def test_a_resource_twice_in_a_phase_is_refused() -> None:
    with pytest.raises(p.PlanError, match="twice"):
        p.plan([PlanResource(res("Pod", "x")), PlanResource(res("Pod", "x"))])
    with pytest.raises(p.PlanError):
        PlanResource()


def test_describe_rows() -> None:
    live = res("ConfigMap", "changed")
    planned = p.plan(
        [
            PlanResource(res("ConfigMap", "new")),
            PlanResource(res("ConfigMap", "changed"), live),
            prune("gone"),
            PlanResource(hook("Job", "migrate", "PreSync", **{p.HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded"})),
        ],
        SyncOptions(dry_run=True),
    )
    described = [(r.kind, r.name, r.action, r.note) for r in planned.describe()]
    assert described == [
        ("Job", "migrate", "create hook", "delete: HookSucceeded; dry run"),
        ("ConfigMap", "changed", "update", "dry run"),
        ("ConfigMap", "gone", "prune skipped", "ignored (requires pruning); dry run"),
        ("ConfigMap", "new", "create", "dry run"),
    ]


# --- pairing with compare -------------------------------------------------------------------------


def test_pair_uses_the_diffs_to_decide_what_belongs_to_the_app() -> None:
    mine = res("ConfigMap", "mine")
    mine["metadata"]["labels"] = {diff.TRACKING_LABEL: "shop"}
    stranger = res("ConfigMap", "stranger")
    wanted = res("ConfigMap", "wanted")
    migrate = hook("Job", "migrate", "PreSync")
    desired = [wanted, migrate]
    live = [mine, stranger, migrate]
    diffs = diff.compare(desired, live, app_name="shop")
    resources = p.pair(desired, live, diffs)
    assert {(r.key.name, r.desired is not None, r.live is not None, r.status) for r in resources} == {
        ("mine", False, True, SyncStatus.OUT_OF_SYNC),
        ("wanted", True, False, SyncStatus.OUT_OF_SYNC),
        ("migrate", True, True, SyncStatus.OUT_OF_SYNC),
    }
    planned = p.plan(resources, SyncOptions(prune=True))
    assert [(t.key.name, t.action) for t in planned.tasks] == [
        ("migrate", Action.HOOK),
        ("mine", Action.PRUNE),
        ("wanted", Action.APPLY),
    ]


# --- operation results ----------------------------------------------------------------------------


def test_operation_phases() -> None:
    assert [ph.value for ph in OperationPhase] == ["Running", "Terminating", "Failed", "Error", "Succeeded"]
    assert OperationPhase.FAILED.completed and OperationPhase.ERROR.completed and OperationPhase.SUCCEEDED.completed
    assert not OperationPhase.RUNNING.completed and not OperationPhase.TERMINATING.completed
    assert OperationPhase.SUCCEEDED.successful and not OperationPhase.FAILED.successful
    assert [r.value for r in ResultCode] == ["Synced", "SyncFailed", "Pruned", "PruneSkipped"]


def test_operation_records_results_in_order_and_replaces_them() -> None:
    a, b = ResourceKey("", "ConfigMap", "app", "a"), ResourceKey("batch", "Job", "app", "b")
    op = p.Operation(OperationPhase.RUNNING, revision="abc", started_at=1.0)
    op = op.with_result(p.ResourceResult(a, SyncPhase.SYNC, status=ResultCode.SYNCED, message="configured"))
    op = op.with_result(
        p.ResourceResult(b, SyncPhase.PRE_SYNC, hook_type=p.HookType.PRE_SYNC, hook_phase=OperationPhase.RUNNING)
    )
    op = op.with_result(
        p.ResourceResult(b, SyncPhase.PRE_SYNC, hook_type=p.HookType.PRE_SYNC, hook_phase=OperationPhase.FAILED)
    )
    assert [(r.key.name, r.order) for r in op.results] == [("a", 1), ("b", 2)]
    found = op.result(b, SyncPhase.PRE_SYNC)
    assert found is not None and found.hook_phase is OperationPhase.FAILED
    assert op.result(b, SyncPhase.SYNC) is None
    assert [r.key.name for r in op.failed_results] == ["b"]
    done = op.finish(OperationPhase.FAILED, "one or more synchronization tasks completed unsuccessfully", 9.0)
    assert (done.phase, done.finished_at) == (OperationPhase.FAILED, 9.0)
    with pytest.raises(p.PlanError):
        op.finish(OperationPhase.RUNNING, "", 2.0)


def test_hook_phase_follows_health() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "status": {}}
    assert p.hook_phase(job)[0] is OperationPhase.RUNNING
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert p.hook_phase(job)[0] is OperationPhase.SUCCEEDED
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}
    assert p.hook_phase(job) == (OperationPhase.FAILED, "BackoffLimitExceeded")
    assert p.hook_phase(res("ConfigMap", "seed")) == (OperationPhase.SUCCEEDED, "seed created")
