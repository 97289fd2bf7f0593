"""The notification adapter: service configuration, delivery, retries, and one real loopback delivery."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from funade.adapters import notify as adapter
from funade.adapters.notify import ConfigError, Notifier, RecordingSender, Service, ServiceKind
from funade.core.gitops import notify
from funade.core.gitops.notify import Delivery, Destination, Health, SyncStatus, Trigger

pytestmark = pytest.mark.unit

SLACK_URL = "https://hooks.slack.test/services/T000/B000/XXXX"
HOOK_URL = "https://hooks.example.test/deploys"
SERVICES = {
    "slack": Service("slack", ServiceKind.SLACK, SLACK_URL),
    "deploy-log": Service(
        "deploy-log", ServiceKind.WEBHOOK, HOOK_URL, headers=(("Authorization", "Bearer s3cret"),), timeout=2.0
    ),
}
NOTE = notify.message(Trigger.ON_SYNC_FAILED, "web", "a" * 40, Health.DEGRADED, SyncStatus.OUT_OF_SYNC, "apply failed")


class Waits:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _deliver(
    handler: Callable[[httpx.Request], httpx.Response],
    destination: Destination,
    waits: Waits | None = None,
    services: dict[str, Service] | None = None,
) -> Delivery:
    async def scenario() -> Delivery:
        transport = httpx.MockTransport(handler)
        async with Notifier(services or SERVICES, transport=transport, sleep=waits or Waits()) as notifier:
            return await notifier.send(NOTE, destination)

    return asyncio.run(scenario())


def _replies(*responses: httpx.Response | Exception) -> tuple[Callable[[httpx.Request], httpx.Response], list[Any]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handler, seen


# --- configuration -------------------------------------------------------------------------


def test_services_load_from_notifications_yaml_in_funade_home(tmp_path: Path) -> None:
    (tmp_path / "notifications.yaml").write_text(
        """
services:
  slack:
    kind: slack
    url: https://hooks.slack.test/services/T/B/X
  deploy-log:
    kind: webhook
    url: http://127.0.0.1:9000/hooks
    headers: {Authorization: Bearer x, X-Retry: 1}
    timeout: 5
"""
    )
    services = adapter.load_services(tmp_path)
    assert services["slack"] == Service("slack", ServiceKind.SLACK, "https://hooks.slack.test/services/T/B/X")
    assert services["deploy-log"].headers == (("Authorization", "Bearer x"), ("X-Retry", "1"))
    assert services["deploy-log"].timeout == 5.0
    assert adapter.load_services(tmp_path / "missing.yaml") == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "expected a mapping"),
        ({"services": ["slack"]}, "'services' must map"),
        ({"services": {"x": {"kind": "email", "url": "https://a"}}}, r"services.x.kind: 'email' is not one of"),
        ({"services": {"x": {"kind": "slack", "url": "ftp://a"}}}, r"services.x.url"),
        ({"services": {"x": {"kind": "webhook", "url": "https://a", "headers": ["A: b"]}}}, r"services.x.headers"),
        ({"services": {"x": {"kind": "webhook", "url": "https://a", "timeout": 0}}}, r"services.x.timeout"),
    ],
)
def test_bad_service_configuration_names_the_field(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        adapter.parse_services(data)


# --- delivery ------------------------------------------------------------------------------


def test_slack_delivery_posts_the_slack_payload_with_the_channel() -> None:
    handler, seen = _replies(httpx.Response(200, text="ok"))
    result = _deliver(handler, Destination("slack", "deployments-alerts"))
    assert result == Delivery(Destination("slack", "deployments-alerts"), ok=True, attempts=1, status=200)
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == SLACK_URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == notify.slack_payload(NOTE, "deployments-alerts")


def test_webhook_delivery_posts_the_json_payload_with_the_configured_headers() -> None:
    handler, seen = _replies(httpx.Response(204))
    result = _deliver(handler, Destination("deploy-log"))
    assert result.ok
    [request] = seen
    assert str(request.url) == HOOK_URL
    assert request.headers["authorization"] == "Bearer s3cret"
    assert json.loads(request.content) == notify.webhook_payload(NOTE)


def test_server_errors_are_retried_with_backoff_until_one_succeeds() -> None:
    handler, seen = _replies(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    waits = Waits()
    result = _deliver(handler, Destination("slack"), waits)
    assert (result.ok, result.attempts, result.status) == (True, 3, 200)
    assert len(seen) == 3
    assert waits.delays == [0.5, 1.0]


def test_giving_up_after_three_attempts_is_logged_and_returned(caplog: pytest.LogCaptureFixture) -> None:
    handler, seen = _replies(*[httpx.Response(500, text="upstream\nbroke")] * 3)
    waits = Waits()
    with caplog.at_level(logging.WARNING, logger="funade.adapters.notify"):
        result = _deliver(handler, Destination("slack", "ops"), waits)
    assert (result.ok, result.attempts, result.status) == (False, 3, 500)
    assert result.error == "HTTP 500: upstream broke"
    assert len(seen) == 3
    assert waits.delays == [0.5, 1.0]
    [record] = caplog.records
    assert "on-sync-failed for app web to slack:ops failed after 3 attempt(s): HTTP 500" in record.getMessage()
    assert SLACK_URL not in record.getMessage()  # the webhook URL is the secret


def test_client_errors_are_not_retried() -> None:
    handler, seen = _replies(httpx.Response(404, text="no_service"))
    waits = Waits()
    result = _deliver(handler, Destination("slack"), waits)
    assert (result.ok, result.attempts, result.status, result.error) == (False, 1, 404, "HTTP 404: no_service")
    assert len(seen) == 1
    assert waits.delays == []


def test_rate_limits_wait_as_long_as_retry_after_says_within_a_cap() -> None:
    handler, _ = _replies(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200),
    )
    waits = Waits()
    assert _deliver(handler, Destination("slack"), waits).ok
    assert waits.delays == [3.0, 10.0]


def test_timeouts_and_connection_errors_are_retried_then_reported() -> None:
    request = httpx.Request("POST", HOOK_URL)
    handler, seen = _replies(
        httpx.ConnectError("connection refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.ReadTimeout("slow", request=request),
    )
    result = _deliver(handler, Destination("deploy-log"))
    assert (result.ok, result.attempts, result.status) == (False, 3, None)
    assert result.error == "timed out after 2s (ReadTimeout)"
    assert len(seen) == 3


def test_an_unconfigured_service_fails_without_a_request() -> None:
    handler, seen = _replies()
    result = _deliver(handler, Destination("pagerduty", "oncall"))
    assert (result.ok, result.attempts) == (False, 0)
    assert "no notification service named 'pagerduty'" in result.error
    assert seen == []


def test_send_all_reports_each_destination_in_order() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.host == "hooks.slack.test" else 400)

    async def scenario() -> list[Delivery]:
        async with Notifier(SERVICES, transport=httpx.MockTransport(handler), sleep=Waits()) as notifier:
            return await notifier.send_all(
                NOTE, [Destination("slack", "a"), Destination("deploy-log"), Destination("x")]
            )

    results = asyncio.run(scenario())
    assert [(r.destination.service, r.ok) for r in results] == [("slack", True), ("deploy-log", False), ("x", False)]


def test_the_recording_fake_records_and_fails_what_it_is_told() -> None:
    fake = RecordingSender(failing=["slack"])
    sent = asyncio.run(fake.send(NOTE, Destination("slack", "a")))
    ok = asyncio.run(fake.send(NOTE, Destination("deploy-log")))
    assert (sent.ok, ok.ok) == (False, True)
    assert [d for _, d in fake.sent] == [Destination("slack", "a"), Destination("deploy-log")]


# --- a real HTTP server on loopback --------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]
    statuses: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, dict(self.headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_real_server_on_loopback_receives_the_webhook_after_one_retry(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    base, handler = receiver
    handler.statuses.append(503)
    services = {"hook": Service("hook", ServiceKind.WEBHOOK, f"{base}/hooks/deploys", headers=(("X-Token", "t"),))}
    waits = Waits()

    async def scenario() -> Delivery:
        async with Notifier(services, sleep=waits) as notifier:
            return await notifier.send(NOTE, Destination("hook"))

    result = asyncio.run(scenario())
    assert (result.ok, result.attempts, result.status) == (True, 2, 200)
    assert waits.delays == [0.5]
    assert len(handler.received) == 2
    path, headers, body = handler.received[-1]
    assert path == "/hooks/deploys"
    assert headers["X-Token"] == "t"
    assert json.loads(body) == notify.webhook_payload(NOTE)
