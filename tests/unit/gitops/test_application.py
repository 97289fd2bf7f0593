"""Argo CD Application model: defaults, sync policy, retries and field-path errors, checked against Argo CD.

Defaults and retry semantics follow pkg/apis/application/v1alpha1/types.go (RetryStrategy.NextRetryAt,
SyncPolicyAutomated) and controller/appcontroller.go (autoSync's RetryStrategy{Limit: 5}; retry while
RetryCount < Limit || Limit < 0); subscriptions follow notifications-engine pkg/subscriptions/annotations.go.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.core.gitops import application as ap

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def seed() -> dict[str, Any]:
    doc = yaml.safe_load((FIXTURES / "application.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def minimal(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"repoURL": "https://git.example/app.git"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
    }
    body.update(spec)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "web"}, "spec": body}


def with_policy(policy: Any) -> ap.Application:
    return ap.parse(minimal(syncPolicy=policy))


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ap.ApplicationError) as info:
        ap.parse(doc)
    return str(info.value)


# ---------------------------------------------------------------------------- the seed


def test_seed_application_parses_unchanged_with_every_field() -> None:
    app = ap.parse(seed())
    assert app.name == "myapp-production"
    assert app.namespace == "argocd"
    assert app.finalizers == ("resources-finalizer.argocd.argoproj.io",)
    assert app.cascade is ap.PropagationPolicy.FOREGROUND
    assert app.project == "default"
    assert app.source == ap.Source(
        repo_url="https://github.com/myorg/myapp-k8s-manifests.git",
        target_revision="main",
        path="k8s/overlays/production",
    )
    assert app.destination.namespace == "production"
    assert app.target == "local"
    assert (app.auto_sync, app.auto_prune, app.self_heal, app.allow_empty) == (True, True, True, False)
    options = app.sync_policy.options
    assert options.create_namespace and options.prune_last
    assert options.prune_propagation_policy is ap.PropagationPolicy.FOREGROUND
    assert options.validate and not options.server_side_apply
    assert app.sync_policy.retry == ap.RetryPolicy(limit=3, backoff=ap.Backoff(5.0, 2, 180.0))
    assert app.ignore_differences == (
        ap.IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",)),
    )
    assert app.revision_history_limit == 10
    assert app.warnings == ()


def test_seed_subscriptions_name_trigger_service_and_recipients() -> None:
    assert ap.parse(seed()).subscriptions == (
        ap.Subscription("on-sync-failed", "slack", ("deployments-alerts",)),
        ap.Subscription("on-sync-succeeded", "slack", ("deployments",)),
    )


def test_seed_retry_waits_5_10_20_then_stops_after_three_retries() -> None:
    retry = ap.parse(seed()).sync_policy.effective_retry
    assert retry is not None
    assert [ap.retry_delay(retry, n) for n in range(3)] == [5.0, 10.0, 20.0]
    assert [ap.should_retry(retry, n) for n in range(5)] == [True, True, True, False, False]


@pytest.mark.parametrize("doc", [seed(), minimal()], ids=["seed", "minimal"])
def test_to_dict_round_trips(doc: dict[str, Any]) -> None:
    app = ap.parse(doc)
    again = ap.parse(app.to_dict())
    assert again == app
    assert again.to_dict() == app.to_dict()


def test_to_dict_round_trips_every_supported_field() -> None:
    doc = minimal(
        project="team",
        source={
            "repoURL": "https://git.example/app.git",
            "targetRevision": "v1.2.0",
            "path": "deploy",
            "directory": {"recurse": True},
            "kustomize": {
                "images": ["web=registry.local/web:2"],
                "namePrefix": "p-",
                "nameSuffix": "-s",
                "commonLabels": {"team": "a"},
                "commonAnnotations": {"owner": "b"},
            },
        },
        syncPolicy={
            "automated": {"prune": True, "enabled": False},
            "syncOptions": ["Validate=false", "PrunePropagationPolicy=orphan", "Replace=true"],
            "retry": {"limit": -1, "refresh": True, "backoff": {"duration": "1m30s", "factor": 3, "maxDuration": "0"}},
            "managedNamespaceMetadata": {"labels": {"a": "b"}},
        },
        ignoreDifferences=[
            {"kind": "ConfigMap", "name": "cm", "namespace": "web", "jqPathExpressions": [".data.x"]},
        ],
        revisionHistoryLimit=3,
        info=[{"name": "docs", "value": "https://docs.example"}],
    )
    doc["metadata"]["labels"] = {"tier": "web"}
    app = ap.parse(doc)
    assert ap.parse(app.to_dict()) == app
    assert app.sync_policy.retry == ap.RetryPolicy(limit=-1, backoff=ap.Backoff(90.0, 3, 0.0), refresh=True)


# ---------------------------------------------------------------------------- defaults


def test_defaults_follow_argo() -> None:
    app = ap.parse(minimal())
    assert app.namespace == "argocd"
    assert app.project == "default"
    assert app.source.target_revision == "HEAD"
    assert app.source.path == "."
    assert app.revision_history_limit == 10
    assert not app.auto_sync and app.automated is None
    assert app.sync_policy.effective_retry is None
    assert app.sync_policy.options == ap.SyncOptions()
    assert app.cascade is None


def test_empty_project_and_path_mean_default_and_root() -> None:
    doc = minimal(project="")
    doc["spec"]["source"]["path"] = ""
    app = ap.parse(doc)
    assert (app.project, app.source.path) == ("default", ".")


# ---------------------------------------------------------------------------- automated sync


def test_empty_automated_means_automatic_without_prune_or_self_heal() -> None:
    app = with_policy({"automated": {}})
    assert app.auto_sync
    assert app.automated == ap.Automated()
    assert not app.auto_prune and not app.self_heal


def test_bare_automated_key_also_turns_automatic_sync_on() -> None:
    assert ap.parse(yaml.safe_load(yaml.safe_dump(minimal(syncPolicy={"automated": None})))).auto_sync


def test_automated_enabled_false_switches_automatic_sync_off() -> None:
    app = with_policy({"automated": {"prune": True, "selfHeal": True, "enabled": False}})
    assert not app.auto_sync
    assert app.automated is None
    assert not app.auto_prune and not app.self_heal
    assert app.sync_policy.automated == ap.Automated(prune=True, self_heal=True, enabled=False)


def test_no_sync_policy_is_manual() -> None:
    assert not with_policy({"syncOptions": ["CreateNamespace=true"]}).auto_sync


def test_automated_flags_must_be_booleans() -> None:
    assert error_of(minimal(syncPolicy={"automated": {"prune": "true"}})).startswith(
        "spec.syncPolicy.automated.prune: expected true or false"
    )


# ---------------------------------------------------------------------------- retries


def test_automated_sync_without_retry_gets_argos_five_retries() -> None:
    retry = with_policy({"automated": {}}).sync_policy.effective_retry
    assert retry == ap.RetryPolicy(limit=5)
    assert retry is not None
    assert [ap.retry_delay(retry, n) for n in range(5)] == [5.0, 10.0, 20.0, 40.0, 80.0]
    assert ap.should_retry(retry, 4) and not ap.should_retry(retry, 5)


def test_manual_sync_without_retry_does_not_retry() -> None:
    policy = with_policy({"syncOptions": []}).sync_policy
    assert policy.effective_retry is None
    assert not ap.should_retry(policy.effective_retry, 0)


def test_retry_without_limit_means_no_retries_even_when_automated() -> None:
    retry = with_policy({"automated": {}, "retry": {"backoff": {"duration": "1s"}}}).sync_policy.effective_retry
    assert retry is not None and retry.limit == 0
    assert not ap.should_retry(retry, 0)


def test_negative_limit_retries_forever() -> None:
    retry = with_policy({"retry": {"limit": -1}}).sync_policy.retry
    assert retry is not None and retry.unlimited
    assert ap.should_retry(retry, 10_000)


def test_backoff_is_capped_at_max_duration() -> None:
    retry = ap.RetryPolicy(limit=10)
    assert [ap.retry_delay(retry, n) for n in range(9)] == [5, 10, 20, 40, 80, 160, 180, 180, 180]


def test_backoff_without_positive_max_duration_is_uncapped() -> None:
    retry = with_policy({"retry": {"limit": 9, "backoff": {"duration": "1h30m", "factor": 3, "maxDuration": "0s"}}})
    policy = retry.sync_policy.retry
    assert policy is not None
    assert ap.retry_delay(policy, 0) == 5400.0
    assert ap.retry_delay(policy, 2) == 5400.0 * 9


def test_huge_attempt_numbers_stay_capped() -> None:
    assert ap.retry_delay(ap.RetryPolicy(limit=-1), 100_000) == 180.0


def test_retry_delay_refuses_a_negative_attempt() -> None:
    with pytest.raises(ValueError, match="attempt"):
        ap.retry_delay(ap.RetryPolicy(), -1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("30", 30.0), ("3m", 180.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5m", 90.0), ("0", 0.0)],
)
def test_backoff_durations_accept_seconds_and_go_syntax(text: str, seconds: float) -> None:
    assert ap.parse_duration_seconds(text, "x") == seconds


@pytest.mark.parametrize(
    ("backoff", "message"),
    [
        ({"duration": "5 minutes"}, "spec.syncPolicy.retry.backoff.duration: invalid duration '5 minutes'"),
        ({"duration": 5}, "spec.syncPolicy.retry.backoff.duration: expected a duration string"),
        ({"maxDuration": "3x"}, "spec.syncPolicy.retry.backoff.maxDuration: invalid duration"),
        ({"factor": 1.5}, "spec.syncPolicy.retry.backoff.factor: expected an integer"),
        ({"duration": "-5s"}, "spec.syncPolicy.retry.backoff.duration: must not be negative"),
    ],
)
def test_bad_backoff_names_the_field(backoff: dict[str, Any], message: str) -> None:
    assert error_of(minimal(syncPolicy={"retry": {"limit": 2, "backoff": backoff}})).startswith(message)


# ---------------------------------------------------------------------------- sync options


def test_sync_options_map_to_flags() -> None:
    options = with_policy(
        {
            "syncOptions": [
                "Validate=false",
                "ApplyOutOfSyncOnly=true",
                "RespectIgnoreDifferences=true",
                "PrunePropagationPolicy=background",
                "Replace=true",
                "FailOnSharedResource=true",
                "SkipDryRunOnMissingResource=true",
            ]
        }
    ).sync_policy.options
    assert not options.validate
    assert options.apply_out_of_sync_only and options.respect_ignore_differences
    assert options.prune_propagation_policy is ap.PropagationPolicy.BACKGROUND
    assert options.replace and options.fail_on_shared_resource and options.skip_dry_run_on_missing_resource
    assert not options.create_namespace


def test_server_side_apply_is_accepted_with_a_note() -> None:
    app = with_policy({"syncOptions": ["ServerSideApply=true"]})
    assert app.sync_policy.options.server_side_apply
    assert app.warnings == (
        "spec.syncPolicy.syncOptions[0]: ServerSideApply=true is recorded; "
        "only targets with server-side apply honour it",
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("AutoPrune=true", "spec.syncPolicy.syncOptions[1]: unknown sync option 'AutoPrune'"),
        ("CreateNamespace=yes", "spec.syncPolicy.syncOptions[1]: 'CreateNamespace=yes': expected CreateNamespace=true"),
        ("PrunePropagationPolicy=cascade", "spec.syncPolicy.syncOptions[1]: 'PrunePropagationPolicy=cascade': use"),
        ("PruneLast", "spec.syncPolicy.syncOptions[1]: 'PruneLast' is not Key=Value"),
        ("Validate=false", "spec.syncPolicy.syncOptions[1]: Validate is already set at spec.syncPolicy.syncOptions[0]"),
    ],
)
def test_bad_sync_options_name_the_option(option: str, message: str) -> None:
    assert error_of(minimal(syncPolicy={"syncOptions": ["Validate=true", option]})).startswith(message)


def test_managed_namespace_metadata_is_kept() -> None:
    app = with_policy(
        {"syncOptions": ["CreateNamespace=true"], "managedNamespaceMetadata": {"labels": {"env": "prod"}}}
    )
    assert app.sync_policy.managed_namespace_metadata == ap.ManagedNamespaceMetadata(labels={"env": "prod"})


# ---------------------------------------------------------------------------- destination


@pytest.mark.parametrize(
    ("destination", "target"),
    [
        ({"server": "https://kubernetes.default.svc"}, "local"),
        ({"server": "https://kubernetes.default.svc/"}, "local"),
        ({"name": "in-cluster"}, "local"),
        ({"server": "https://prod.example.com:6443"}, "https://prod.example.com:6443"),
        ({"name": "ecs-prod"}, "ecs-prod"),
    ],
)
def test_destination_target(destination: dict[str, str], target: str) -> None:
    assert ap.parse(minimal(destination=destination)).target == target


def test_destination_with_server_and_name_is_refused() -> None:
    assert error_of(minimal(destination={"server": "https://a", "name": "b"})).startswith(
        "spec.destination: set server or name, not both"
    )


def test_destination_without_server_or_name_is_refused() -> None:
    assert error_of(minimal(destination={"namespace": "web"})) == "spec.destination: server or name is required"


def test_destination_namespace_must_be_a_namespace_name() -> None:
    assert error_of(minimal(destination={"name": "in-cluster", "namespace": "Web_1"})).startswith(
        "spec.destination.namespace: 'Web_1'"
    )


# ---------------------------------------------------------------------------- errors by field path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["spec"]["source"].pop("repoURL"), "spec.source.repoURL: expected a non-empty string, got None"),
        (lambda d: d["spec"].pop("source"), "spec.source: required"),
        (lambda d: d["spec"]["source"].update(helm={"valueFiles": ["v.yaml"]}), "spec.source.helm: Helm sources"),
        (lambda d: d["spec"]["source"].update(chart="nginx"), "spec.source.chart: Helm chart repositories"),
        (lambda d: d["spec"]["source"].update(plugin={"name": "x"}), "spec.source.plugin:"),
        (lambda d: d["spec"]["source"].update(directory={"jsonnet": {"tlas": []}}), "spec.source.directory.jsonnet"),
        (lambda d: d["spec"]["source"].update(directory={"include": "*.yaml"}), "spec.source.directory.include"),
        (
            lambda d: d["spec"]["source"].update(kustomize={"patches": [{"path": "p.yaml"}]}),
            "spec.source.kustomize.patches",
        ),
        (
            lambda d: d["spec"]["source"].update(kustomize={"replicas": [{"name": "w", "count": 2}]}),
            "spec.source.kustomize.replicas",
        ),
        (lambda d: d["spec"]["source"].update(path="../../etc"), "spec.source.path: '../../etc' leaves the repository"),
        (lambda d: d["spec"].update(sourceHydrator={"drySource": {}}), "spec.sourceHydrator: source hydration"),
        (lambda d: d["metadata"].update(name="Web App"), "metadata.name: 'Web App' is not a valid name"),
        (lambda d: d["metadata"].pop("name"), "metadata.name: expected a non-empty string"),
        (lambda d: d.update(kind="Deployment"), "kind: expected argoproj.io/v1alpha1 Application"),
        (lambda d: d["spec"].update(revisionHistoryLimit=-1), "spec.revisionHistoryLimit: must be >= 0"),
        (lambda d: d["spec"].update(ignoreDifferences=[{"group": "apps"}]), "spec.ignoreDifferences[0].kind: expected"),
        (
            lambda d: d["spec"].update(ignoreDifferences=[{"kind": "Deployment", "jsonPointers": ["spec/replicas"]}]),
            "spec.ignoreDifferences[0].jsonPointers[0]: 'spec/replicas' is not a JSON pointer",
        ),
        (
            lambda d: d["spec"].update(
                ignoreDifferences=[{"kind": "Deployment", "jqPathExpressions": [".a | map(.)"]}]
            ),
            "spec.ignoreDifferences[0].jqPathExpressions[0]: jq path expression '.a | map(.)'",
        ),
        (lambda d: d["metadata"].update(annotations={"a": 1}), "metadata.annotations.a: expected a string, got 1"),
        (lambda d: d["spec"].update(syncPolicy=["automated"]), "spec.syncPolicy: expected a mapping, got list"),
    ],
)
def test_errors_start_with_the_field_path(mutate: Any, message: str) -> None:
    doc = minimal()
    mutate(doc)
    assert error_of(doc).startswith(message)


def test_multiple_sources_are_refused_clearly() -> None:
    source = {"repoURL": "https://git.example/a.git", "path": "a"}
    message = error_of(minimal(sources=[source, {**source, "path": "b"}]))
    assert message.startswith("spec.sources: multiple sources (2) are not supported")


def test_a_single_entry_in_sources_is_the_source() -> None:
    doc = minimal(sources=[{"repoURL": "https://git.example/b.git", "path": "b", "ref": "values"}])
    app = ap.parse(doc)
    assert app.source == ap.Source(repo_url="https://git.example/b.git", path="b")
    assert app.warnings == (
        "spec.source: not supported, ignored (spec.sources takes precedence, as in Argo CD)",
        "spec.sources[0].ref: not supported, ignored (it only matters with several sources)",
    )


# ---------------------------------------------------------------------------- warnings


def test_unknown_fields_are_warnings_named_by_path() -> None:
    doc = minimal(foo=1, syncPolicy={"automatic": {"prune": True}})
    doc["spec"]["destination"]["cluster"] = "x"
    app = ap.parse(doc)
    assert not app.auto_sync  # the typo does not turn automated sync on, as in Argo CD
    assert set(app.warnings) >= {
        "spec.foo: not supported, ignored",
        "spec.syncPolicy.automatic: not supported, ignored",
    }


def test_managed_fields_managers_are_kept_with_a_warning() -> None:
    app = ap.parse(
        minimal(ignoreDifferences=[{"group": "*", "kind": "*", "managedFieldsManagers": ["kube-controller-manager"]}])
    )
    assert app.ignore_differences[0].managed_fields_managers == ("kube-controller-manager",)
    assert app.warnings == (
        "spec.ignoreDifferences[0].managedFieldsManagers: not supported, ignored "
        "(funade does not track field managers)",
    )


def test_kustomize_overrides_are_read_and_version_is_a_warning() -> None:
    doc = minimal()
    doc["spec"]["source"]["kustomize"] = {
        "version": "v5.4.0",
        "images": ["ghcr.io/myorg/myapp:1.2"],
        "namePrefix": "prod-",
        "commonLabels": {"env": "prod"},
    }
    app = ap.parse(doc)
    assert app.source.kustomize == ap.Kustomize(
        images=("ghcr.io/myorg/myapp:1.2",), name_prefix="prod-", common_labels={"env": "prod"}
    )
    assert app.warnings == ("spec.source.kustomize.version: not supported, ignored (funade runs its own kustomize)",)


def test_warnings_do_not_take_part_in_equality() -> None:
    plain = ap.parse(minimal())
    noisy = ap.parse(minimal(foo="bar"))
    assert noisy.warnings and plain == noisy


def test_supported_jq_expressions_are_kept() -> None:
    rule = {
        "kind": "ConfigMap",
        "jqPathExpressions": ['.data["config.yaml"]', '.spec.containers[] | select(.name == "x")'],
    }
    app = ap.parse(minimal(ignoreDifferences=[rule]))
    assert app.ignore_differences[0].jq_path_expressions == tuple(rule["jqPathExpressions"])


# ---------------------------------------------------------------------------- notifications and finalizers


def test_subscription_recipients_split_on_semicolons_and_trim() -> None:
    subs = ap.parse_subscriptions({"notifications.argoproj.io/subscribe.on-deployed.email": " a@x ; b@x;;c@x "})
    assert subs == (ap.Subscription("on-deployed", "email", ("a@x", "b@x", "c@x")),)


def test_subscription_without_trigger_uses_the_default_triggers() -> None:
    assert ap.parse_subscriptions({"notifications.argoproj.io/subscribe.slack": "ops"}) == (
        ap.Subscription(None, "slack", ("ops",)),
    )


def test_subscription_with_empty_value_has_one_empty_recipient() -> None:
    assert ap.parse_subscriptions({"notifications.argoproj.io/subscribe.on-created.webhook": ""}) == (
        ap.Subscription("on-created", "webhook", ("",)),
    )


def test_other_annotations_are_not_subscriptions() -> None:
    assert ap.parse_subscriptions({"argocd.argoproj.io/sync-wave": "1", "notifications.argoproj.io/other": "x"}) == ()


def test_yaml_subscriptions_annotation() -> None:
    value = yaml.safe_dump(
        [
            {
                "trigger": ["on-sync-failed", "on-health-degraded"],
                "destinations": [{"service": "slack", "recipients": ["ops"]}],
            }
        ]
    )
    subs = ap.parse_subscriptions({"notifications.argoproj.io/subscriptions": value})
    assert subs == (
        ap.Subscription("on-health-degraded", "slack", ("ops",)),
        ap.Subscription("on-sync-failed", "slack", ("ops",)),
    )
    assert ap.parse_subscriptions({"notifications.argoproj.io/subscriptions": "[: not yaml"}) == ()


@pytest.mark.parametrize(
    ("finalizer", "cascade"),
    [
        ("resources-finalizer.argocd.argoproj.io", ap.PropagationPolicy.FOREGROUND),
        ("resources-finalizer.argocd.argoproj.io/foreground", ap.PropagationPolicy.FOREGROUND),
        ("resources-finalizer.argocd.argoproj.io/background", ap.PropagationPolicy.BACKGROUND),
        ("example.com/other", None),
    ],
)
def test_cascade_follows_the_resources_finalizer(finalizer: str, cascade: ap.PropagationPolicy | None) -> None:
    doc = minimal()
    doc["metadata"]["finalizers"] = [finalizer]
    assert ap.parse(doc).cascade is cascade


def test_parse_does_not_modify_its_input() -> None:
    doc = seed()
    before = copy.deepcopy(doc)
    ap.parse(doc)
    assert doc == before
