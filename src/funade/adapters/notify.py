"""Delivering sync notifications over HTTP: Slack-compatible incoming webhooks and plain JSON webhooks.

A notification is a courtesy, not a step of the deploy: a Slack outage must never fail or
stall a sync. So :class:`Notifier` never raises for a delivery problem. It retries what
may succeed later (connection errors, timeouts, 408, 429 and 5xx answers) up to three
attempts with exponential backoff, honouring a ``Retry-After`` of a few seconds. It gives
up at once on answers that will not change (400, 403, 404, 410: a bad payload, a revoked
or unknown webhook). It logs each failure and returns a :class:`~funade.core.gitops.notify.Delivery`.

Services are configured by name, which is the ``<service>`` of the subscription
annotations, in ``$FUNADE_HOME/notifications.yaml``::

    services:
      slack:                       # notifications.argoproj.io/subscribe.on-sync-failed.slack: alerts
        kind: slack
        url: https://hooks.slack.com/services/T000/B000/XXXX
      deploy-log:
        kind: webhook
        url: http://127.0.0.1:9000/hooks/deploys
        headers: {Authorization: Bearer s3cret}
        timeout: 5

``kind: slack`` posts :func:`~funade.core.gitops.notify.slack_payload` (the recipient
becomes ``channel``). ``kind: webhook`` posts
:func:`~funade.core.gitops.notify.webhook_payload` and ignores the recipient, like
Argo's webhook service. URLs are never logged, since a Slack webhook URL is its secret.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from funade.core.gitops.notify import Delivery, Destination, Notification, slack_payload, webhook_payload

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_ATTEMPTS",
    "DEFAULT_BACKOFF",
    "DEFAULT_TIMEOUT",
    "ConfigError",
    "Notifier",
    "RecordingSender",
    "Service",
    "ServiceKind",
    "load_services",
    "parse_services",
]

CONFIG_FILE = "notifications.yaml"
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 0.5  # seconds before the 2nd attempt; doubled for each further one
DEFAULT_TIMEOUT = 10.0
_MAX_DELAY = 10.0  # no single wait longer than this, whatever Retry-After says
_RETRYABLE = frozenset({408, 425, 429})

_log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ConfigError(ValueError):
    """notifications.yaml (or the mapping passed in) does not describe valid services."""


class ServiceKind(enum.StrEnum):
    """How a service wants its notifications."""

    SLACK = "slack"  # Slack-compatible incoming webhook (also Mattermost, Rocket.Chat)
    WEBHOOK = "webhook"  # plain JSON POST


@dataclass(frozen=True, slots=True)
class Service:
    """One configured notification service."""

    name: str
    kind: ServiceKind
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT


def parse_services(data: object, source: str = CONFIG_FILE) -> dict[str, Service]:
    """Services from the parsed YAML document (``{"services": {name: {...}}}``).

    Raises:
        ConfigError: naming the service and field that is wrong.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with 'services'")
    services = data.get("services") or {}
    if not isinstance(services, Mapping):
        raise ConfigError(f"{source}: 'services' must map names to services")
    result: dict[str, Service] = {}
    for name, spec in services.items():
        where = f"{source}: services.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with kind and url")
        try:
            kind = ServiceKind(spec.get("kind", ""))
        except ValueError:
            kinds = ", ".join(k.value for k in ServiceKind)
            raise ConfigError(f"{where}.kind: {spec.get('kind')!r} is not one of {kinds}") from None
        url = spec.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: expected an http:// or https:// URL")
        headers = spec.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str | int) for v in headers.values()):
            raise ConfigError(f"{where}.headers: expected a mapping of header names to strings")
        timeout = spec.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
            raise ConfigError(f"{where}.timeout: expected seconds between 0 and 300")
        result[str(name)] = Service(
            name=str(name),
            kind=kind,
            url=url,
            headers=tuple((str(k), str(v)) for k, v in headers.items()),
            timeout=float(timeout),
        )
    return result


def load_services(path: Path) -> dict[str, Service]:
    """Services from a notifications.yaml file; a missing file configures none.

    ``path`` may be the file or the ``$FUNADE_HOME`` directory holding it.
    """
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc
    return parse_services(data, str(path))


class Notifier:
    """Sends notifications to configured services with retries; implements ``notify.Sender``.

    Args:
        services: the configured services by name.
        attempts: tries per delivery (at least 1).
        backoff: seconds before the second try; doubled for each further one.
        transport: an httpx transport (``httpx.MockTransport`` in tests).
        sleep: the wait between tries (inject a recorder in tests).

    Use it as an async context manager or call :meth:`aclose`.
    """

    def __init__(
        self,
        services: Mapping[str, Service],
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.services = dict(services)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, notification: Notification, destination: Destination) -> Delivery:
        """Deliver ``notification`` to ``destination``; failures come back as a Delivery, logged."""
        service = self.services.get(destination.service)
        if service is None:
            error = f"no notification service named {destination.service!r} is configured"
            return self._failed(notification, destination, 0, None, error)
        body = (
            slack_payload(notification, destination.recipient)
            if service.kind is ServiceKind.SLACK
            else webhook_payload(notification)
        )
        status: int | None = None
        error = ""
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response = await self._http.post(
                    service.url, json=body, headers=dict(service.headers), timeout=service.timeout
                )
            except httpx.TimeoutException as exc:
                status, error = None, f"timed out after {service.timeout:g}s ({type(exc).__name__})"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if response.is_success:
                    return Delivery(destination, ok=True, attempts=attempt, status=status)
                error = f"HTTP {status}: {_snippet(response.text)}"
                if not _retryable(status):
                    return self._failed(notification, destination, attempt, status, error)
                delay = _retry_after(response, default=delay)
            if attempt < self.attempts:
                await self._sleep(min(delay, _MAX_DELAY))
        return self._failed(notification, destination, self.attempts, status, error)

    async def send_all(self, notification: Notification, destinations: Iterable[Destination]) -> list[Delivery]:
        """Deliver to every destination concurrently; one result per destination, in order."""
        return list(await asyncio.gather(*(self.send(notification, d) for d in destinations)))

    def _failed(
        self, notification: Notification, destination: Destination, attempts: int, status: int | None, error: str
    ) -> Delivery:
        _log.warning(
            "notification %s for app %s to %s failed after %d attempt(s): %s",
            notification.trigger.value,
            notification.app,
            destination,
            attempts,
            error,
        )
        return Delivery(destination, ok=False, attempts=attempts, status=status, error=error)


class RecordingSender:
    """A fake ``notify.Sender`` for engine and controller tests: records, and fails the services named."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.sent: list[tuple[Notification, Destination]] = []
        self.failing = frozenset(failing)

    async def send(self, notification: Notification, destination: Destination) -> Delivery:
        self.sent.append((notification, destination))
        if destination.service in self.failing:
            return Delivery(destination, ok=False, attempts=1, error="configured to fail")
        return Delivery(destination, ok=True, attempts=1, status=200)


def _retryable(status: int) -> bool:
    return status in _RETRYABLE or status >= 500


def _retry_after(response: httpx.Response, default: float) -> float:
    """Seconds from a numeric ``Retry-After`` (429/503); the backoff otherwise."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


def _snippet(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
