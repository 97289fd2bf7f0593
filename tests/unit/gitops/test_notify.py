"""Sync notifications: subscription annotations, once-per-transition triggers and message payloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from funade.core.gitops import notify
from funade.core.gitops.notify import (
    AppStatus,
    Destination,
    Health,
    Notified,
    Phase,
    SyncStatus,
    Trigger,
)

pytestmark = pytest.mark.unit

SEED = Path("/work/shared/seed-examples/argocd/application.yaml")
P = "notifications.argoproj.io/"


# --- subscriptions -------------------------------------------------------------------------


@pytest.mark.skipif(not SEED.exists(), reason="seed examples not present")
def test_the_seed_applications_annotations_subscribe_two_slack_channels() -> None:
    app = yaml.safe_load(SEED.read_text())
    subs = notify.parse_subscriptions(app["metadata"]["annotations"])
    assert subs.problems == ()
    assert subs.destinations(Trigger.ON_SYNC_SUCCEEDED) == (Destination("slack", "deployments"),)
    assert subs.destinations(Trigger.ON_SYNC_FAILED) == (Destination("slack", "deployments-alerts"),)
    assert subs.triggers == {Trigger.ON_SYNC_SUCCEEDED, Trigger.ON_SYNC_FAILED}


def test_recipients_are_semicolon_separated_and_an_empty_value_is_one_empty_recipient() -> None:
    subs = notify.parse_subscriptions(
        {
            P + "subscribe.on-deployed.slack": " team-a ; team-b;;",
            P + "subscribe.on-deployed.deploy-log": "",
            "unrelated/annotation": "x",
        }
    )
    assert subs.destinations(Trigger.ON_DEPLOYED) == (
        Destination("deploy-log", ""),
        Destination("slack", "team-a"),
        Destination("slack", "team-b"),
    )


def test_a_subscription_without_trigger_uses_the_default_triggers() -> None:
    annotations = {P + "subscribe.slack": "ops", P + "subscribe.mattermost": "dev"}
    subs = notify.parse_subscriptions(
        annotations,
        default_triggers=["on-sync-status-unknown"],
        service_default_triggers={"mattermost": ["on-sync-running", "on-sync-succeeded"]},
    )
    assert subs.destinations(Trigger.ON_SYNC_STATUS_UNKNOWN) == (Destination("slack", "ops"),)
    assert subs.destinations(Trigger.ON_SYNC_RUNNING) == (Destination("mattermost", "dev"),)
    assert subs.destinations(Trigger.ON_SYNC_SUCCEEDED) == (Destination("mattermost", "dev"),)
    none_configured = notify.parse_subscriptions(annotations)
    assert none_configured.entries == ()
    assert len(none_configured.problems) == 2
    assert "no default triggers are configured for slack" in none_configured.problems[1]


def test_the_subscriptions_yaml_annotation() -> None:
    value = """
- trigger: [on-sync-succeeded, on-health-degraded]
  destinations:
    - service: slack
      recipients: [deployments, alerts]
    - service: deploy-log
- trigger: on-deployed
  destinations:
    - service: slack
      recipients: [releases]
"""
    subs = notify.parse_subscriptions({notify.SUBSCRIPTIONS_ANNOTATION: value})
    assert subs.problems == ()
    assert subs.destinations(Trigger.ON_HEALTH_DEGRADED) == (
        Destination("slack", "deployments"),
        Destination("slack", "alerts"),
        Destination("deploy-log", ""),
    )
    assert subs.destinations(Trigger.ON_DEPLOYED) == (Destination("slack", "releases"),)


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ({P + "subscribe.on-created.slack": "x"}, "trigger on-created is not supported yet"),
        ({P + "subscribe.on-rollout-aborted.slack": "x"}, "unknown trigger on-rollout-aborted"),
        ({P + "subscribe.on-deployed.": "x"}, "no notification service named"),
        ({notify.SUBSCRIPTIONS_ANNOTATION: "- trigger: [on-deployed\n"}, "not YAML"),
        ({notify.SUBSCRIPTIONS_ANNOTATION: "trigger: on-deployed"}, "expected a list"),
        ({notify.SUBSCRIPTIONS_ANNOTATION: "- trigger: [on-deployed]"}, "no destinations"),
    ],
)
def test_subscriptions_that_cannot_be_honoured_are_reported_by_annotation(
    annotations: dict[str, str], problem: str
) -> None:
    subs = notify.parse_subscriptions(annotations)
    assert subs.entries == ()
    assert len(subs.problems) == 1
    assert problem in subs.problems[0]
    assert subs.problems[0].startswith(next(iter(annotations)))


# --- triggers ------------------------------------------------------------------------------

REV_A = "a" * 40
REV_B = "b" * 40


def _status(
    phase: Phase | None, health: Health, revision: str = REV_A, sync: SyncStatus = SyncStatus.SYNCED
) -> AppStatus:
    return AppStatus(phase=phase, health=health, sync=sync, revision=revision)


def _run(statuses: list[AppStatus], start: Notified | None = None) -> list[tuple[Trigger, ...]]:
    record = start or Notified()
    fired = []
    for status in statuses:
        decision = notify.triggered(record, status)
        fired.append(decision.fire)
        # The record survives a round trip through the store at every step.
        record = Notified.from_json(decision.notified.to_json())
    return fired


def test_conditions_follow_argo_cds_catalog() -> None:
    assert notify.conditions(_status(Phase.SUCCEEDED, Health.HEALTHY)) == {
        Trigger.ON_SYNC_SUCCEEDED,
        Trigger.ON_DEPLOYED,
    }
    assert notify.conditions(_status(Phase.SUCCEEDED, Health.PROGRESSING)) == {Trigger.ON_SYNC_SUCCEEDED}
    assert notify.conditions(_status(Phase.ERROR, Health.HEALTHY)) == {Trigger.ON_SYNC_FAILED}
    assert notify.conditions(_status(Phase.FAILED, Health.DEGRADED)) == {
        Trigger.ON_SYNC_FAILED,
        Trigger.ON_HEALTH_DEGRADED,
    }
    assert notify.conditions(_status(Phase.RUNNING, Health.HEALTHY, sync=SyncStatus.UNKNOWN)) == {
        Trigger.ON_SYNC_RUNNING,
        Trigger.ON_SYNC_STATUS_UNKNOWN,
    }
    assert notify.conditions(_status(None, Health.MISSING, sync=SyncStatus.OUT_OF_SYNC)) == set()


def test_a_sync_announces_running_succeeded_and_deployed_once_each() -> None:
    fired = _run(
        [
            _status(Phase.RUNNING, Health.HEALTHY),
            _status(Phase.SUCCEEDED, Health.PROGRESSING),
            _status(Phase.SUCCEEDED, Health.HEALTHY),
            _status(Phase.SUCCEEDED, Health.HEALTHY),  # resync: nothing new
        ]
    )
    assert fired == [
        (Trigger.ON_SYNC_RUNNING,),
        (Trigger.ON_SYNC_SUCCEEDED,),
        (Trigger.ON_DEPLOYED,),
        (),
    ]


def test_on_deployed_fires_once_per_revision_even_when_health_flaps() -> None:
    fired = _run(
        [
            _status(Phase.SUCCEEDED, Health.HEALTHY, REV_A),
            _status(Phase.SUCCEEDED, Health.PROGRESSING, REV_A),
            _status(Phase.SUCCEEDED, Health.HEALTHY, REV_A),
            _status(Phase.RUNNING, Health.HEALTHY, REV_A),
            _status(Phase.SUCCEEDED, Health.HEALTHY, REV_B),
        ]
    )
    deployed = [Trigger.ON_DEPLOYED in f for f in fired]
    assert deployed == [True, False, False, False, True]


def test_failed_and_degraded_re_arm_after_they_clear() -> None:
    fired = _run(
        [
            _status(Phase.FAILED, Health.DEGRADED),
            _status(Phase.FAILED, Health.DEGRADED),
            _status(Phase.RUNNING, Health.HEALTHY),
            _status(Phase.ERROR, Health.DEGRADED),
        ]
    )
    assert fired == [
        (Trigger.ON_SYNC_FAILED, Trigger.ON_HEALTH_DEGRADED),
        (),
        (Trigger.ON_SYNC_RUNNING,),
        (Trigger.ON_SYNC_FAILED, Trigger.ON_HEALTH_DEGRADED),
    ]


def test_without_a_revision_on_deployed_falls_back_to_once_per_transition() -> None:
    fired = _run(
        [
            _status(Phase.SUCCEEDED, Health.HEALTHY, revision=""),
            _status(Phase.SUCCEEDED, Health.HEALTHY, revision=""),
            _status(Phase.SUCCEEDED, Health.PROGRESSING, revision=""),
            _status(Phase.SUCCEEDED, Health.HEALTHY, revision=""),
        ]
    )
    assert [Trigger.ON_DEPLOYED in f for f in fired] == [True, False, False, True]


def test_a_baseline_keeps_an_adopted_app_quiet_until_something_changes() -> None:
    current = _status(Phase.SUCCEEDED, Health.HEALTHY, REV_A)
    baseline = Notified.baseline(current)
    assert notify.triggered(baseline, current).fire == ()
    assert notify.triggered(baseline, _status(Phase.SUCCEEDED, Health.DEGRADED)).fire == (Trigger.ON_HEALTH_DEGRADED,)


def test_the_deployed_history_is_bounded() -> None:
    record = Notified()
    for i in range(notify.DEPLOYED_HISTORY + 5):
        record = notify.triggered(record, _status(Phase.SUCCEEDED, Health.HEALTHY, f"{i:040x}")).notified
    assert len(record.deployed) == notify.DEPLOYED_HISTORY
    assert record.deployed[-1] == f"{notify.DEPLOYED_HISTORY + 4:040x}"
    assert f"{0:040x}" not in record.deployed


def test_an_unreadable_record_is_an_empty_one() -> None:
    for text in (None, "", "not json", "[]", '{"active": "x", "deployed": 3}'):
        assert Notified.from_json(text) == Notified()
    record = Notified.from_json('{"active": ["on-sync-failed", "on-something-else"], "deployed": ["r1", 2]}')
    assert record == Notified(frozenset({Trigger.ON_SYNC_FAILED}), ("r1",))


# --- messages ------------------------------------------------------------------------------


def test_a_failure_message_carries_the_reason_and_status_fields() -> None:
    n = notify.message(
        Trigger.ON_SYNC_FAILED,
        "myapp-production",
        REV_A,
        Health.DEGRADED,
        SyncStatus.OUT_OF_SYNC,
        "one or more objects failed to apply: Deployment web: spec.replicas: Invalid value",
        repo_url="https://github.com/myorg/myapp-k8s-manifests.git",
    )
    assert n.title == "myapp-production failed to sync"
    assert n.text.startswith("The sync of application myapp-production at aaaaaaa failed.")
    assert n.text.endswith("spec.replicas: Invalid value")
    assert dict(n.fields) == {
        "Sync Status": "OutOfSync",
        "Health Status": "Degraded",
        "Revision": REV_A,
        "Repository": "https://github.com/myorg/myapp-k8s-manifests.git",
    }
    assert n.color == "#E96D76"


@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_trigger_has_a_message(trigger: Trigger) -> None:
    n = notify.message(trigger, "web", "v1.2.0", "Healthy", "Synced")
    assert "web" in n.title
    assert "web" in n.text
    assert n.color.startswith("#")


def test_slack_payload_has_text_one_coloured_attachment_and_the_channel() -> None:
    n = notify.message(
        Trigger.ON_DEPLOYED, "web", REV_B, Health.HEALTHY, SyncStatus.SYNCED, url="http://127.0.0.1:7180/apps/web"
    )
    payload = notify.slack_payload(n, "deployments")
    assert payload["text"] == ":white_check_mark: Application web is synced and healthy at bbbbbbb."
    assert payload["channel"] == "deployments"
    [attachment] = payload["attachments"]
    assert attachment["title"] == "web"
    assert attachment["title_link"] == "http://127.0.0.1:7180/apps/web"
    assert attachment["color"] == "#18be52"
    assert {"title": "Revision", "value": REV_B, "short": True} in attachment["fields"]
    assert "channel" not in notify.slack_payload(n)
    json.dumps(payload)  # serialisable as is


def test_webhook_payload_is_flat_json() -> None:
    n = notify.message(Trigger.ON_HEALTH_DEGRADED, "api", "main", Health.DEGRADED, SyncStatus.SYNCED, "pod crashloop")
    payload = notify.webhook_payload(n)
    assert payload == {
        "trigger": "on-health-degraded",
        "app": "api",
        "title": "api is degraded",
        "text": "Application api has degraded. pod crashloop",
        "revision": "main",
        "health": "Degraded",
        "sync": "Synced",
        "message": "pod crashloop",
        "url": "",
        "fields": {"Sync Status": "Synced", "Health Status": "Degraded", "Revision": "main"},
    }
