"""Sync notifications: who asked to hear about an Application, when to tell them, and what to say.

People already subscribe their Argo CD Applications with annotations, so funade reads the
same ones (argoproj/notifications-engine ``pkg/subscriptions``):

- ``notifications.argoproj.io/subscribe.<trigger>.<service>: rcpt1;rcpt2`` (``;``
  separates recipients; an empty value is one empty recipient, as webhooks use);
- ``notifications.argoproj.io/subscribe.<service>: rcpt`` (no trigger: the configured
  default triggers, per service or global);
- ``notifications.argoproj.io/subscriptions``: a YAML list of
  ``{trigger: [...], destinations: [{service, recipients: [...]}]}``.

The triggers are Argo's catalog conditions on the app status
(notifications_catalog/triggers/*.yaml). Only the status-driven ones are supported;
``on-created`` and ``on-deleted`` are reported as unsupported, not dropped silently.

    on-sync-succeeded       operation phase Succeeded
    on-sync-failed          operation phase Failed or Error
    on-sync-running         operation phase Running
    on-sync-status-unknown  sync status Unknown
    on-health-degraded      health Degraded
    on-deployed             phase Succeeded and health Healthy, once per synced revision
                            (Argo's ``oncePer: app.status.operationState.syncResult.revision``)

A notification goes out when a condition *becomes* true, never again while it stays true,
and again after it has been false. That is the notifications-engine state machine. Its
record of what was sent is :class:`Notified`, which the controller persists next to the
app (Argo keeps it in the ``notified.notifications.argoproj.io`` annotation). So a restart
neither repeats nor loses a notification, and :func:`triggered` stays a pure function of
that record and the current status. For ``on-deployed`` the record keeps the revisions
already announced (the last 100, like Argo's history cap), so health flapping
Healthy→Progressing→Healthy on one revision is announced once. One difference from
Argo: the record is kept per trigger, not per destination. A destination subscribed
while a condition already holds hears about it at the next transition, not at once.

:func:`message` builds the text once. :func:`slack_payload` and :func:`webhook_payload`
render it for a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat) and for
a plain JSON webhook. Delivery is an adapter's job (``funade.adapters.notify``) behind
:class:`Sender`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from funade.core.gitops import diff, health, plan

__all__ = [
    "ANNOTATION_PREFIX",
    "DEPLOYED_HISTORY",
    "SUBSCRIPTIONS_ANNOTATION",
    "AppStatus",
    "Decision",
    "Delivery",
    "Destination",
    "Health",
    "Notification",
    "Notified",
    "Phase",
    "Sender",
    "Subscriptions",
    "SyncStatus",
    "Trigger",
    "conditions",
    "message",
    "parse_subscriptions",
    "slack_payload",
    "triggered",
    "webhook_payload",
]

ANNOTATION_PREFIX = "notifications.argoproj.io"
SUBSCRIPTIONS_ANNOTATION = f"{ANNOTATION_PREFIX}/subscriptions"
_SUBSCRIBE_PREFIX = f"{ANNOTATION_PREFIX}/subscribe."
#: How many deployed revisions the record remembers (notifications-engine keeps 100 entries).
DEPLOYED_HISTORY = 100
_UNSUPPORTED_TRIGGERS = frozenset({"on-created", "on-deleted"})


class Trigger(enum.StrEnum):
    """The notification triggers funade evaluates (Argo CD catalog names)."""

    ON_SYNC_RUNNING = "on-sync-running"
    ON_SYNC_SUCCEEDED = "on-sync-succeeded"
    ON_SYNC_FAILED = "on-sync-failed"
    ON_SYNC_STATUS_UNKNOWN = "on-sync-status-unknown"
    ON_HEALTH_DEGRADED = "on-health-degraded"
    ON_DEPLOYED = "on-deployed"


Phase = plan.OperationPhase
"""The phase of the app's last sync operation (gitops-engine ``OperationPhase``)."""
Health = health.HealthStatus
"""Application health (gitops-engine ``pkg/health``)."""
SyncStatus = diff.SyncStatus
"""Whether live state matches git."""


@dataclass(frozen=True, slots=True)
class Destination:
    """One place a notification goes: a configured service and a recipient on it ("" for webhooks)."""

    service: str
    recipient: str = ""

    def __str__(self) -> str:
        return f"{self.service}:{self.recipient}" if self.recipient else self.service


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """Who is subscribed to which trigger, plus the annotations that could not be honoured."""

    entries: tuple[tuple[Trigger, Destination], ...] = ()
    problems: tuple[str, ...] = ()

    def destinations(self, trigger: Trigger) -> tuple[Destination, ...]:
        """The destinations subscribed to ``trigger``, in annotation order."""
        return tuple(dest for t, dest in self.entries if t is trigger)

    @property
    def triggers(self) -> frozenset[Trigger]:
        """Every trigger with at least one destination."""
        return frozenset(t for t, _ in self.entries)


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The part of an Application's status that triggers look at.

    Attributes:
        phase: the last sync operation's phase; None before the first sync.
        health: the app's health.
        sync: the app's sync status.
        revision: the revision the last operation synced (``operationState.syncResult.revision``).
        message: the last operation's message (the failure reason, for instance).
    """

    phase: Phase | None
    health: Health = Health.UNKNOWN
    sync: SyncStatus = SyncStatus.UNKNOWN
    revision: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Notified:
    """What has already been announced for one app; persist it between evaluations.

    Attributes:
        active: triggers whose condition held at the last evaluation and were announced.
        deployed: revisions ``on-deployed`` has announced, oldest first.
    """

    active: frozenset[Trigger] = frozenset()
    deployed: tuple[str, ...] = ()

    @classmethod
    def baseline(cls, status: AppStatus) -> Notified:
        """A record that counts everything true now as already announced.

        Use it when funade adopts an existing app, so the first evaluation does not
        announce a sync that finished long ago.
        """
        return triggered(cls(), status).notified

    def to_json(self) -> str:
        """The record as compact JSON, for the store."""
        return json.dumps(
            {"active": sorted(t.value for t in self.active), "deployed": list(self.deployed)},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Notified:
        """Read :meth:`to_json` output; anything unreadable is an empty record."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {t.value for t in Trigger}
        active = data.get("active")
        deployed = data.get("deployed")
        return cls(
            active=frozenset(Trigger(t) for t in active if t in known) if isinstance(active, list) else frozenset(),
            deployed=tuple(r for r in deployed if isinstance(r, str)) if isinstance(deployed, list) else (),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The triggers to announce now and the record to persist once they are sent."""

    fire: tuple[Trigger, ...]
    notified: Notified


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about one app, independent of where it is delivered."""

    trigger: Trigger
    app: str
    title: str
    text: str
    fields: tuple[tuple[str, str], ...]
    color: str
    revision: str = ""
    health: str = ""
    sync: str = ""
    detail: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending one notification to one destination went (failures are values, not exceptions)."""

    destination: Destination
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


class Sender(Protocol):
    """Delivers notifications; implemented by ``funade.adapters.notify.Notifier`` and its fake."""

    async def send(self, notification: Notification, destination: Destination) -> Delivery:
        """Deliver one notification to one destination; never raises for delivery failures."""
        ...


# --- subscriptions -------------------------------------------------------------------------


def parse_subscriptions(
    annotations: Mapping[str, str] | None,
    *,
    default_triggers: Sequence[str] = (),
    service_default_triggers: Mapping[str, Sequence[str]] | None = None,
) -> Subscriptions:
    """Read an Application's (or AppProject's) subscription annotations.

    Args:
        annotations: ``metadata.annotations``.
        default_triggers: the triggers for a subscription that names none (Argo's
            ``defaultTriggers``).
        service_default_triggers: the same per service (Argo's ``defaultTriggers.<service>``).

    Returns:
        The subscriptions, and one message per annotation (or trigger) that cannot be
        honoured: an unknown or unsupported trigger, a missing service, unreadable YAML.
    """
    per_service = service_default_triggers or {}
    raw: list[tuple[str, str, tuple[str, ...], str]] = []  # (trigger, service, recipients, annotation key)
    problems: list[str] = []
    for key in sorted(annotations or {}):
        value = (annotations or {})[key]
        if key.startswith(_SUBSCRIBE_PREFIX):
            parts = key[len(_SUBSCRIBE_PREFIX) :].split(".")
            named, service = (parts[0], parts[1]) if len(parts) >= 2 else ("", parts[0])
            raw.append((named, service, _recipients(value), key))
        elif key == SUBSCRIPTIONS_ANNOTATION:
            raw.extend(_yaml_subscriptions(key, value, problems))
    entries: list[tuple[Trigger, Destination]] = []
    for trigger_name, service, recipients, key in raw:
        if not service:
            problems.append(f"{key}: no notification service named")
            continue
        names = [trigger_name] if trigger_name else list(per_service.get(service, default_triggers))
        if not names:
            problems.append(f"{key}: names no trigger and no default triggers are configured for {service}")
        for name in names:
            trigger = _trigger(name, key, problems)
            if trigger is None:
                continue
            for recipient in recipients:
                entry = (trigger, Destination(service, recipient))
                if entry not in entries:
                    entries.append(entry)
    return Subscriptions(tuple(entries), tuple(problems))


def _recipients(value: str) -> tuple[str, ...]:
    if value == "":
        return ("",)
    return tuple(r for part in value.split(";") if (r := part.strip()))


def _yaml_subscriptions(key: str, value: str, problems: list[str]) -> list[tuple[str, str, tuple[str, ...], str]]:
    try:
        data = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        problems.append(f"{key}: not YAML ({str(exc).splitlines()[0]})")
        return []
    if not isinstance(data, list):
        problems.append(f"{key}: expected a list of {{trigger, destinations}}")
        return []
    result: list[tuple[str, str, tuple[str, ...], str]] = []
    for index, item in enumerate(data):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object with trigger and destinations")
            continue
        triggers = _str_list(item.get("trigger"))
        destinations = item.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            problems.append(f"{where}: no destinations")
            continue
        for dest in destinations:
            if not isinstance(dest, dict) or not isinstance(dest.get("service"), str):
                problems.append(f"{where}: a destination without a service")
                continue
            recipients = tuple(_str_list(dest.get("recipients"))) or ("",)
            for trigger in triggers or [""]:
                result.append((trigger, dest["service"], recipients, where))
    return result


def _str_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _trigger(name: str, key: str, problems: list[str]) -> Trigger | None:
    try:
        return Trigger(name)
    except ValueError:
        supported = ", ".join(t.value for t in Trigger)
        if name in _UNSUPPORTED_TRIGGERS:
            problems.append(f"{key}: trigger {name} is not supported yet (supported: {supported})")
        else:
            problems.append(f"{key}: unknown trigger {name} (supported: {supported})")
        return None


# --- triggers ------------------------------------------------------------------------------


def conditions(status: AppStatus) -> frozenset[Trigger]:
    """The triggers whose condition holds for ``status`` (Argo's catalog ``when`` expressions)."""
    holds: set[Trigger] = set()
    if status.phase is Phase.RUNNING:
        holds.add(Trigger.ON_SYNC_RUNNING)
    if status.phase is Phase.SUCCEEDED:
        holds.add(Trigger.ON_SYNC_SUCCEEDED)
        if status.health is Health.HEALTHY:
            holds.add(Trigger.ON_DEPLOYED)
    if status.phase in (Phase.FAILED, Phase.ERROR):
        holds.add(Trigger.ON_SYNC_FAILED)
    if status.sync is SyncStatus.UNKNOWN:
        holds.add(Trigger.ON_SYNC_STATUS_UNKNOWN)
    if status.health is Health.DEGRADED:
        holds.add(Trigger.ON_HEALTH_DEGRADED)
    return frozenset(holds)


def triggered(previous: Notified, current: AppStatus) -> Decision:
    """Which triggers to announce for ``current``, given what ``previous`` says was announced.

    A trigger fires when its condition holds and it is not already announced; it is
    re-armed when the condition stops holding. ``on-deployed`` fires once per
    revision, whatever happens between (an empty revision falls back to the plain rule).
    """
    holds = conditions(current)
    fire: list[Trigger] = []
    active = set(previous.active)
    deployed = list(previous.deployed)
    for trigger in Trigger:
        if trigger is Trigger.ON_DEPLOYED and current.revision:
            if trigger in holds and current.revision not in deployed:
                fire.append(trigger)
                deployed.append(current.revision)
            active.discard(trigger)
            continue
        if trigger in holds and trigger not in active:
            fire.append(trigger)
            active.add(trigger)
        elif trigger not in holds:
            active.discard(trigger)
    return Decision(tuple(fire), Notified(frozenset(active), tuple(deployed[-DEPLOYED_HISTORY:])))


# --- messages ------------------------------------------------------------------------------

_GREEN, _YELLOW, _RED, _BLUE = "#18be52", "#f4c030", "#E96D76", "#0DADEA"  # Argo's catalog colours
_COLORS = {
    Trigger.ON_DEPLOYED: _GREEN,
    Trigger.ON_SYNC_SUCCEEDED: _GREEN,
    Trigger.ON_HEALTH_DEGRADED: _YELLOW,
    Trigger.ON_SYNC_FAILED: _RED,
    Trigger.ON_SYNC_STATUS_UNKNOWN: _RED,
    Trigger.ON_SYNC_RUNNING: _BLUE,
}
_SLACK_ICONS = {
    Trigger.ON_DEPLOYED: ":white_check_mark:",
    Trigger.ON_SYNC_SUCCEEDED: ":white_check_mark:",
    Trigger.ON_HEALTH_DEGRADED: ":exclamation:",
    Trigger.ON_SYNC_FAILED: ":exclamation:",
    Trigger.ON_SYNC_STATUS_UNKNOWN: ":exclamation:",
    Trigger.ON_SYNC_RUNNING: ":arrows_counterclockwise:",
}


def message(
    trigger: Trigger,
    app_name: str,
    revision: str,
    health: Health | str,
    sync: SyncStatus | str,
    message: str = "",
    *,
    repo_url: str = "",
    url: str = "",
) -> Notification:
    """The notification for ``trigger`` about ``app_name``.

    Args:
        trigger: what happened.
        app_name: the Application.
        revision: the synced revision (shortened to 7 characters in the text when it is a SHA).
        health: the app's health.
        sync: the app's sync status.
        message: the operation's message (a failure reason); shown when present.
        repo_url: the source repository, shown as a field when given.
        url: a link to the app in the dashboard, when funade's is reachable.
    """
    short = _short(revision)
    at = f" at {short}" if short else ""
    detail = message.strip()
    title, text = {
        Trigger.ON_DEPLOYED: (
            f"{app_name} is running a new version",
            f"Application {app_name} is synced and healthy{at}.",
        ),
        Trigger.ON_SYNC_SUCCEEDED: (f"{app_name} synced", f"Application {app_name} synced successfully{at}."),
        Trigger.ON_SYNC_FAILED: (f"{app_name} failed to sync", f"The sync of application {app_name}{at} failed."),
        Trigger.ON_SYNC_RUNNING: (f"{app_name} is syncing", f"Application {app_name} started syncing{at}."),
        Trigger.ON_SYNC_STATUS_UNKNOWN: (
            f"{app_name} sync status is Unknown",
            f"Application {app_name} cannot tell whether it matches git.",
        ),
        Trigger.ON_HEALTH_DEGRADED: (f"{app_name} is degraded", f"Application {app_name} has degraded."),
    }[trigger]
    if detail:
        text = f"{text} {detail}"
    fields: list[tuple[str, str]] = [("Sync Status", str(sync)), ("Health Status", str(health))]
    if revision:
        fields.append(("Revision", revision))
    if repo_url:
        fields.append(("Repository", repo_url))
    return Notification(
        trigger=trigger,
        app=app_name,
        title=title,
        text=text,
        fields=tuple(fields),
        color=_COLORS[trigger],
        revision=revision,
        health=str(health),
        sync=str(sync),
        detail=detail,
        url=url,
    )


def slack_payload(notification: Notification, recipient: str = "") -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` plus one coloured attachment with the fields.

    ``recipient`` becomes ``channel``. Classic Slack webhooks, Mattermost and Rocket.Chat
    honour it; Slack app webhooks post to their own channel and ignore it.
    """
    attachment: dict[str, Any] = {
        "fallback": notification.title,
        "title": notification.app,
        "color": notification.color,
        "fields": [{"title": name, "value": value, "short": True} for name, value in notification.fields],
    }
    if notification.url:
        attachment["title_link"] = notification.url
    payload: dict[str, Any] = {
        "text": f"{_SLACK_ICONS[notification.trigger]} {notification.text}",
        "attachments": [attachment],
    }
    if recipient:
        payload["channel"] = recipient
    return payload


def webhook_payload(notification: Notification) -> dict[str, Any]:
    """A plain JSON body for a generic webhook receiver."""
    return {
        "trigger": notification.trigger.value,
        "app": notification.app,
        "title": notification.title,
        "text": notification.text,
        "revision": notification.revision,
        "health": notification.health,
        "sync": notification.sync,
        "message": notification.detail,
        "url": notification.url,
        "fields": dict(notification.fields),
    }


def _short(revision: str) -> str:
    is_sha = len(revision) >= 12 and all(c in "0123456789abcdef" for c in revision.lower())
    return revision[:7] if is_sha else revision
