"""Diffs must say Synced exactly when applying the manifests would change nothing, and never leak secrets.

Argo CD facts checked here: ignoreDifferences matching (glob on group and kind, exact name
and namespace; argo-cd ``util/argo/normalizers``), JSON pointers per RFC 6901 with pointers
that miss being skipped, Secret ``stringData`` compared as ``data`` and values masked with
``++++++++`` growing by ``++++`` per distinct value (gitops-engine ``HideSecretData``), hooks
left out of the comparison, ``IgnoreExtraneous`` not counting for the app's sync status
(``controller/state.go``), and the ``===== group/Kind namespace/name ======`` header of
``argocd app diff``. The "live" objects come from funade's own apply and store, so
normalization is tested against what the local target really stores.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from funade.adapters.store.sqlite import SqliteStore
from funade.core import objects
from funade.core.gitops import diff, jq
from funade.core.gitops.diff import IgnoreRule, ResourceKey, SyncStatus
from funade.core.ports import ObjectKey
from funade.engine import workloads

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


def deployment(image: str = "app:1", replicas: int | None = None, namespace: str | None = "default") -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": image,
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                    }
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    meta: Obj = {"name": "web", "labels": {"app": "web"}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def secret(**string_data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "stringData": dict(string_data),
    }


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


@pytest.fixture
def engine(tmp_path: Path) -> workloads.Workloads:
    w = workloads.Workloads(SqliteStore(tmp_path / "db.sqlite"))
    w.ensure_default_namespace()
    return w


def stored(engine: workloads.Workloads, obj: Obj) -> Obj:
    """``obj`` applied through the local target, read back as live state (with a status)."""
    engine.apply([copy.deepcopy(obj)])
    key = ObjectKey(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    engine.store.put_status(key, {"observedGeneration": 1, "replicas": 1})
    live = engine.store.get(key)
    assert live is not None
    return live


# --- normalization against the real apply -------------------------------------------------------


def test_a_manifest_without_defaults_equals_what_the_local_target_stores(engine: workloads.Workloads) -> None:
    live = stored(engine, deployment())
    assert live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "uid" in live["metadata"] and "status" in live
    result = diff.diff(deployment(), live)
    assert result.status is SyncStatus.SYNCED
    assert result.text == ""


def test_without_defaults_the_api_defaults_show_as_drift(engine: workloads.Workloads) -> None:
    live = stored(engine, deployment())
    result = diff.diff(deployment(), live, defaults=False)
    assert result.status is SyncStatus.OUT_OF_SYNC
    assert "+    imagePullPolicy" not in result.text
    assert "-        imagePullPolicy: IfNotPresent" in result.text


def test_a_changed_image_is_out_of_sync_and_the_diff_shows_it(engine: workloads.Workloads) -> None:
    live = stored(engine, deployment("app:1"))
    result = diff.diff(deployment("app:2"), live)
    assert result.status is SyncStatus.OUT_OF_SYNC
    assert result.modified
    assert "-      - image: app:1\n" in result.text
    assert "+      - image: app:2\n" in result.text
    assert result.text.startswith("===== apps/Deployment default/web ======\n--- live apps/Deployment default/web\n")


def test_replicas_set_by_scale_are_kept_when_the_manifest_omits_them(engine: workloads.Workloads) -> None:
    stored(engine, deployment())
    engine.scale(ObjectKey("Deployment", "default", "web"), 5)
    live = engine.store.get(ObjectKey("Deployment", "default", "web"))
    assert live is not None and live["spec"]["replicas"] == 5
    assert diff.diff(deployment(), live).status is SyncStatus.SYNCED
    # …but a manifest that names a count is compared on it.
    assert diff.diff(deployment(replicas=2), live).status is SyncStatus.OUT_OF_SYNC


def test_replicas_an_autoscaler_set_are_not_drift_even_when_the_manifest_names_a_count(
    engine: workloads.Workloads,
) -> None:
    stored(engine, deployment(replicas=2))
    engine.scale(ObjectKey("Deployment", "default", "web"), 5)
    live = engine.store.get(ObjectKey("Deployment", "default", "web"))
    assert live is not None
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 9},
    }
    found = {r.key.kind: r.status for r in diff.compare([deployment(replicas=2), hpa], [live], namespace="default")}
    assert found["Deployment"] is SyncStatus.SYNCED  # the apply keeps the autoscaler's 5
    assert diff.diff(deployment(replicas=2), live).status is SyncStatus.OUT_OF_SYNC  # without the autoscaler


def test_a_restart_annotation_is_kept_like_kubectl_apply_keeps_it(engine: workloads.Workloads) -> None:
    stored(engine, deployment())
    engine.restart(ObjectKey("Deployment", "default", "web"))
    live = engine.store.get(ObjectKey("Deployment", "default", "web"))
    assert live is not None
    assert "kubectl.kubernetes.io/restartedAt" in live["spec"]["template"]["metadata"]["annotations"]
    assert diff.diff(deployment(), live).status is SyncStatus.SYNCED


def test_a_service_with_its_local_ports_annotation_is_synced(engine: workloads.Workloads) -> None:
    live = stored(engine, service())
    assert "local.funade.io/ports" in live["metadata"]["annotations"]
    assert diff.diff(service(), live).status is SyncStatus.SYNCED


def test_normalize_drops_what_the_target_owns_and_keeps_user_metadata() -> None:
    live = deployment()
    live["metadata"].update(
        uid="u-1",
        resourceVersion="42",
        generation=3,
        creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "kubectl"}],
        selfLink="/x",
        annotations={
            diff.LAST_APPLIED_ANNOTATION: "{}",
            "funade.io/rollback-generation": "2",
            diff.TRACKING_ANNOTATION: "app:apps/Deployment:default/web",
            "team": "payments",
        },
    )
    live["metadata"]["labels"][diff.TRACKING_LABEL] = "app"
    live["status"] = {"replicas": 1}
    meta = diff.normalize(live, defaults=False)["metadata"]
    assert meta == {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
        "annotations": {"team": "payments"},
    }
    assert "status" not in diff.normalize(live)


def test_empty_label_and_annotation_maps_disappear() -> None:
    obj = deployment()
    obj["metadata"]["labels"] = {diff.TRACKING_LABEL: "app"}
    obj["metadata"]["annotations"] = {diff.LAST_APPLIED_ANNOTATION: "{}"}
    meta = diff.normalize(obj)["metadata"]
    assert "labels" not in meta and "annotations" not in meta


def test_the_tracking_label_is_a_parameter() -> None:
    obj = deployment()
    obj["metadata"]["labels"]["argocd.argoproj.io/instance"] = "app"
    obj["metadata"]["labels"][diff.TRACKING_LABEL] = "helm-release"
    labels = diff.normalize(obj, tracking_label="argocd.argoproj.io/instance")["metadata"]["labels"]
    assert labels == {"app": "web", diff.TRACKING_LABEL: "helm-release"}


def test_generic_kinds_are_compared_as_written() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minReplicas": 1, "maxReplicas": 3},
    }
    assert diff.normalize(hpa) == hpa


def test_an_invalid_manifest_is_compared_without_defaults_instead_of_raising() -> None:
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    assert diff.normalize(bad)["spec"]["template"]["spec"]["containers"][0]["imagee"] == "typo"


def test_integral_floats_equal_ints_but_booleans_do_not() -> None:
    a = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"n": 1.0, "b": True}}
    b = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"n": 1, "b": True}}
    c = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"n": 1, "b": 1}}
    assert diff.diff(a, b).status is SyncStatus.SYNCED
    assert diff.diff(b, c).status is SyncStatus.OUT_OF_SYNC


# --- secrets --------------------------------------------------------------------------------------


def test_string_data_equals_the_stored_base64_data(engine: workloads.Workloads) -> None:
    live = stored(engine, secret(password="hunter2", user="admin"))
    assert "stringData" not in live
    assert live["data"]["password"] == base64.b64encode(b"hunter2").decode()
    assert diff.diff(secret(password="hunter2", user="admin"), live).status is SyncStatus.SYNCED


def test_a_changed_secret_value_is_detected_but_never_shown(engine: workloads.Workloads) -> None:
    live = stored(engine, secret(password="hunter2", user="admin"))
    result = diff.diff(secret(password="correct-horse", user="admin"), live)
    assert result.status is SyncStatus.OUT_OF_SYNC
    assert result.desired is not None and result.live is not None
    assert result.desired["data"] == {"password": "++++++++", "user": "++++++++"}
    assert result.live["data"] == {"password": "++++++++++++", "user": "++++++++"}
    everything = result.text + repr(result)
    for clear in ("hunter2", "correct-horse", "admin"):
        assert clear not in everything
        assert base64.b64encode(clear.encode()).decode() not in everything
    assert "-  password: ++++++++++++\n" in result.text
    assert "+  password: ++++++++\n" in result.text


def test_secrets_are_masked_even_when_synced_and_when_one_side_is_missing() -> None:
    desired = secret(token="abc")
    synced = diff.diff(desired, objects.to_dict(objects.parse(desired)))
    assert synced.status is SyncStatus.SYNCED
    assert synced.live is not None and synced.live["data"] == {"token": "++++++++"}
    missing = diff.diff(desired, None)
    assert missing.missing and missing.desired is not None
    assert missing.desired["data"] == {"token": "++++++++"}
    assert "abc" not in missing.text and "YWJj" not in missing.text


def test_a_key_only_on_one_side_is_masked_too() -> None:
    desired, live = diff.mask_secrets(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "eg=="}},
    )
    assert desired is not None and live is not None
    assert desired["data"] == {"a": "++++++++", "b": "++++++++"}
    assert live["data"] == {"a": "++++++++++++"}


# --- ignoreDifferences ----------------------------------------------------------------------------


def test_json_pointer_rule_hides_replicas_managed_by_an_hpa(engine: workloads.Workloads) -> None:
    live = stored(engine, deployment(replicas=2))
    rule = IgnoreRule(group="apps", kind="Deployment", json_pointers=("/spec/replicas",))
    assert diff.diff(deployment(replicas=7), live).status is SyncStatus.OUT_OF_SYNC
    assert diff.diff(deployment(replicas=7), live, [rule]).status is SyncStatus.SYNCED


@pytest.mark.parametrize(
    ("rule", "applies"),
    [
        (IgnoreRule(kind="Deployment", group="apps"), True),
        (IgnoreRule(kind="Deployment"), False),  # the core group "" is not apps
        (IgnoreRule(kind="*", group="*"), True),
        (IgnoreRule(kind="Deploy*", group="app?"), True),
        (IgnoreRule(kind="Deployment", group="apps", name="web"), True),
        (IgnoreRule(kind="Deployment", group="apps", name="api"), False),
        (IgnoreRule(kind="Deployment", group="apps", namespace="default"), True),
        (IgnoreRule(kind="Deployment", group="apps", namespace="prod"), False),
        (IgnoreRule(kind="StatefulSet", group="apps"), False),
    ],
)
def test_rule_matching(rule: IgnoreRule, applies: bool) -> None:
    assert rule.matches(deployment()) is applies


def test_pointer_escapes_follow_rfc_6901() -> None:
    obj = deployment()
    obj["metadata"]["annotations"] = {"example.com/a~b": "1", "keep": "2"}
    rule = IgnoreRule(kind="*", group="*", json_pointers=("/metadata/annotations/example.com~1a~0b",))
    assert rule.apply(obj)["metadata"]["annotations"] == {"keep": "2"}


def test_pointer_into_a_list_and_pointers_that_miss_are_skipped() -> None:
    obj = deployment()
    rule = IgnoreRule(
        kind="Deployment",
        group="apps",
        json_pointers=(
            "/spec/template/spec/containers/0/readinessProbe",
            "/spec/template/spec/containers/9/image",
            "/spec/nothing/here",
            "/spec/template/spec/containers/01",
            "/spec/template/spec/containers/-",
        ),
    )
    result = rule.apply(obj)
    assert "readinessProbe" not in result["spec"]["template"]["spec"]["containers"][0]
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1"
    assert "readinessProbe" in obj["spec"]["template"]["spec"]["containers"][0]  # input untouched


@pytest.mark.parametrize("pointer", ["spec/replicas", "", "/spec/a~2b"])
def test_malformed_pointers_are_refused_when_the_rule_is_made(pointer: str) -> None:
    with pytest.raises(diff.DiffError, match="JSON pointer"):
        IgnoreRule(kind="Deployment", json_pointers=(pointer,))


def test_jq_rule_hides_an_injected_sidecar(engine: workloads.Workloads) -> None:
    live = stored(engine, deployment())
    live["spec"]["template"]["spec"]["containers"].append({"name": "istio-proxy", "image": "proxy:1"})
    rule = IgnoreRule(
        kind="Deployment",
        group="apps",
        jq_path_expressions=('.spec.template.spec.containers[] | select(.name == "istio-proxy")',),
    )
    assert diff.diff(deployment(), live).status is SyncStatus.OUT_OF_SYNC
    assert diff.diff(deployment(), live, [rule]).status is SyncStatus.SYNCED


def test_a_jq_expression_that_cannot_run_on_an_object_is_skipped_for_it() -> None:
    rule = IgnoreRule(kind="*", group="*", jq_path_expressions=(".spec.initContainers[].image", ".spec.replicas"))
    obj = deployment(replicas=3)
    assert "replicas" not in rule.apply(obj)["spec"]


def test_unsupported_jq_is_refused_naming_the_expression() -> None:
    with pytest.raises(jq.JqError, match=r"'\.spec \| to_entries'"):
        IgnoreRule(kind="*", jq_path_expressions=(".spec | to_entries",))


def test_rule_from_an_application_spec() -> None:
    rule = IgnoreRule.from_spec(
        {
            "group": "apps",
            "kind": "Deployment",
            "name": "web",
            "jsonPointers": ["/spec/replicas"],
            "jqPathExpressions": [".spec.template.metadata.annotations"],
        }
    )
    assert rule == IgnoreRule(
        kind="Deployment",
        group="apps",
        name="web",
        json_pointers=("/spec/replicas",),
        jq_path_expressions=(".spec.template.metadata.annotations",),
    )


def test_managed_fields_managers_are_left_out_of_the_rule() -> None:
    rule = IgnoreRule.from_spec({"group": "*", "kind": "*", "managedFieldsManagers": ["kube-controller-manager"]})
    assert rule == IgnoreRule(kind="*", group="*")
    assert rule.apply(deployment()) == deployment()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kind": "Deployment", "jsonPointer": ["/spec"]}, "unknown field"),
        ({"group": "apps"}, "kind is required"),
    ],
)
def test_rule_spec_errors(raw: Obj, message: str) -> None:
    with pytest.raises(diff.DiffError, match=message):
        IgnoreRule.from_spec(raw)


# --- compare ----------------------------------------------------------------------------------------


def cm(name: str, namespace: str | None = "default", **annotations: str) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def test_compare_pairs_by_group_kind_namespace_and_name() -> None:
    crd_thing = {
        "apiVersion": "example.com/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {},
    }
    desired = [deployment(), cm("settings")]
    live = [objects.to_dict(objects.parse(deployment())), crd_thing, cm("settings", "other")]
    result = {str(d.key): d for d in diff.compare(desired, live)}
    assert result["apps/Deployment/default/web"].status is SyncStatus.SYNCED
    assert result["example.com/Deployment/default/web"].requires_pruning
    assert result["/ConfigMap/default/settings"].missing
    assert result["/ConfigMap/other/settings"].requires_pruning
    assert all(d.modified for k, d in result.items() if k != "apps/Deployment/default/web")


def test_compare_places_manifests_in_the_destination_namespace() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "namespace": "ignored"}}
    result = diff.compare([cm("settings", None), namespace], [cm("settings", "shop")], namespace="shop")
    keys = [d.key for d in result]
    assert keys == [ResourceKey("", "ConfigMap", "shop", "settings"), ResourceKey("", "Namespace", "", "shop")]
    assert result[0].status is SyncStatus.SYNCED


def test_an_unknown_cluster_scoped_kind_pairs_with_its_live_object() -> None:
    issuer = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "le"}, "spec": {}}
    result = diff.compare([issuer], [issuer], namespace="shop")
    assert [(d.key.namespace, d.status) for d in result] == [("", SyncStatus.SYNCED)]


def test_compare_leaves_hooks_and_skipped_manifests_out() -> None:
    hook = cm("migrate", **{diff.HOOK_ANNOTATION: "PreSync"})
    helm_hook = cm("helm-test", **{diff.HELM_HOOK_ANNOTATION: "post-install"})
    skipped = cm("draft", **{diff.HOOK_ANNOTATION: "Skip"})
    old_hook = cm("old-hook", **{diff.HOOK_ANNOTATION: "PostSync"})
    result = diff.compare([hook, helm_hook, skipped, cm("settings")], [old_hook, cm("settings")])
    assert [d.key.name for d in result] == ["settings"]


def test_a_helm_crd_install_annotation_is_not_a_hook() -> None:
    crd = cm("x", **{diff.HELM_HOOK_ANNOTATION: "crd-install"})
    assert not diff.is_hook(crd)
    assert diff.is_hook(cm("y", **{diff.HOOK_ANNOTATION: "Skip,PreSync"}))
    assert not diff.is_hook(cm("z", **{diff.HOOK_ANNOTATION: "Skip"}))
    assert diff.is_skipped(cm("z", **{diff.HOOK_ANNOTATION: " Skip "}))


def test_with_an_app_name_only_tracked_live_objects_are_pruned() -> None:
    mine = cm("mine")
    mine["metadata"]["labels"] = {diff.TRACKING_LABEL: "shop"}
    by_annotation = cm("annotated")
    by_annotation["metadata"]["annotations"] = {diff.TRACKING_ANNOTATION: diff.tracking_id("shop", by_annotation)}
    copied = cm("copied")  # an annotation copied from another object does not make it ours
    copied["metadata"]["annotations"] = {diff.TRACKING_ANNOTATION: "shop:/ConfigMap:default/original"}
    theirs = cm("theirs")
    theirs["metadata"]["labels"] = {diff.TRACKING_LABEL: "other"}
    untracked_but_desired = cm("settings")
    result = diff.compare(
        [cm("settings")], [mine, by_annotation, copied, theirs, untracked_but_desired], app_name="shop"
    )
    assert [(d.key.name, d.requires_pruning) for d in result] == [
        ("annotated", True),
        ("mine", True),
        ("settings", False),
    ]


def test_tracking_id_format() -> None:
    assert diff.tracking_id("shop", deployment()) == "shop:apps/Deployment:default/web"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    assert diff.tracking_id("shop", namespace) == "shop:/Namespace:/shop"


def test_duplicates_are_refused() -> None:
    with pytest.raises(diff.DiffError, match="twice in the desired"):
        diff.compare([cm("a"), cm("a")], [])
    with pytest.raises(diff.DiffError, match="twice in the live"):
        diff.compare([], [cm("a"), cm("a")])


def test_diff_needs_one_side() -> None:
    with pytest.raises(diff.DiffError):
        diff.diff(None, None)


def test_prune_diff_shows_the_whole_live_object_as_removed() -> None:
    result = diff.diff(None, cm("old"))
    assert result.requires_pruning and result.status is SyncStatus.OUT_OF_SYNC
    assert result.text.startswith("===== /ConfigMap default/old ======\n")
    assert "-kind: ConfigMap\n" in result.text
    assert "\n+" not in result.text.split("+++", 1)[1]


def test_app_sync_status_ignores_extraneous_resources_marked_so() -> None:
    extraneous = cm("generated", **{diff.COMPARE_OPTIONS_ANNOTATION: "IgnoreExtraneous"})
    result = diff.compare([cm("settings")], [cm("settings"), extraneous])
    assert [d.key.name for d in result if d.requires_pruning] == ["generated"]
    assert diff.app_sync_status(result) is SyncStatus.SYNCED
    result = diff.compare([cm("settings")], [cm("settings"), cm("stray")])
    assert diff.app_sync_status(result) is SyncStatus.OUT_OF_SYNC
    # IgnoreExtraneous does not hide a resource that is missing.
    missing = cm("wanted", **{diff.COMPARE_OPTIONS_ANNOTATION: "IgnoreExtraneous"})
    assert diff.app_sync_status(diff.compare([missing], [])) is SyncStatus.OUT_OF_SYNC


def test_annotation_options_are_trimmed_csv() -> None:
    obj = cm("x", **{diff.SYNC_OPTIONS_ANNOTATION: " Prune=false , PruneLast=true,,"})
    assert diff.annotation_options(obj, diff.SYNC_OPTIONS_ANNOTATION) == ("Prune=false", "PruneLast=true")
    assert diff.has_option(obj, diff.SYNC_OPTIONS_ANNOTATION, "PruneLast=true")
    assert not diff.has_option(obj, diff.SYNC_OPTIONS_ANNOTATION, "Prune=true")
