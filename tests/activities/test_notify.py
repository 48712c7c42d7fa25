"""The notification activity against a local HTTP receiver: delivered to both targets; a
receiver that keeps answering 500 is retried, then recorded as failed without raising; a
refused token is not retried; and no URL (its token) in the result or in any log line."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.notify import NotificationTargets, NotifyActivities
from evac.notifications import Notification, NotificationEvent, TargetKind

SECRET = "T0P-SECRET-7d1c9f"


@dataclass
class Receiver:
    """A webhook receiver on a free loopback port: answers every POST with ``status`` and
    keeps (path, parsed JSON body) of each."""

    status: int = 200
    received: list[tuple[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def bodies(self, path: str) -> list[Any]:
        return [body for p, body in self.received if p == path]


def start_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length") or 0)
            receiver.received.append((self.path, json.loads(self.rfile.read(length) or b"null")))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = start_receiver(found)
    yield found
    server.shutdown()
    server.server_close()


def notification() -> Notification:
    return Notification(
        event=NotificationEvent.STARTED,
        service="checkout",
        kind="failover",
        plan="checkout-to-east",
        source="us-central1",
        target="us-east1",
        status="running",
        detail="scheduled drill",
        trigger_kind="manual",
        trigger_by="alice@laptop",
        at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
    )


def targets(receiver: Receiver) -> NotificationTargets:
    return NotificationTargets(
        webhook_url=f"{receiver.base}/hook/{SECRET}-json",
        slack_url=f"{receiver.base}/services/{SECRET}-slack",
        temporal_ui="http://ui.example:8233",
    )


async def test_delivered_to_both_targets_with_the_web_ui_link(receiver: Receiver) -> None:
    activities = NotifyActivities(targets(receiver))
    result = await ActivityEnvironment().run(activities.send_notification, notification())
    assert result.configured
    assert {(d.target, d.delivered, d.attempts) for d in result.deliveries} == {
        (TargetKind.WEBHOOK, True, 1),
        (TargetKind.SLACK, True, 1),
    }
    [body] = receiver.bodies(f"/hook/{SECRET}-json")
    assert body["version"] == 1 and body["event"] == "started" and body["service"] == "checkout"
    assert body["web_ui"].startswith("http://ui.example:8233/namespaces/")
    [slack] = receiver.bodies(f"/services/{SECRET}-slack")
    assert slack["blocks"][0]["type"] == "header"
    assert body["web_ui"] in slack["text"]


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Every line logged meanwhile: through stdlib logging, or structlog's own output."""
    out, err = capsys.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    return f"{records}\n{out}\n{err}"


async def test_a_failing_receiver_is_retried_then_recorded_failed_without_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.status = 500
    caplog.set_level(logging.DEBUG)
    activities = NotifyActivities(targets(receiver))
    started = time.monotonic()
    result = await ActivityEnvironment().run(activities.send_notification, notification())
    assert time.monotonic() - started < 15
    assert result.configured
    assert {(d.target, d.delivered, d.attempts, d.error) for d in result.deliveries} == {
        (TargetKind.WEBHOOK, False, 3, "HTTP 500"),
        (TargetKind.SLACK, False, 3, "HTTP 500"),
    }
    assert len(receiver.bodies(f"/hook/{SECRET}-json")) == 3
    assert SECRET not in result.model_dump_json()
    lines = logged(caplog, capsys)
    assert "notification not delivered" in lines
    assert SECRET not in lines


async def test_a_refused_token_is_not_tried_again(receiver: Receiver) -> None:
    receiver.status = 404
    result = await ActivityEnvironment().run(NotifyActivities(targets(receiver)).send_notification, notification())
    assert {(d.delivered, d.attempts, d.error) for d in result.deliveries} == {(False, 1, "HTTP 404")}


async def test_an_unreachable_target_is_named_by_its_error_class_only(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    # Nothing listens on the discard port of the loopback address.
    unreachable = NotificationTargets(webhook_url=f"http://127.0.0.1:9/hook/{SECRET}")
    result = await ActivityEnvironment().run(NotifyActivities(unreachable).send_notification, notification())
    [delivery] = result.deliveries
    assert (delivery.target, delivery.delivered, delivery.attempts, delivery.error) == (
        TargetKind.WEBHOOK,
        False,
        3,
        "ConnectError",
    )
    lines = logged(caplog, capsys)
    assert "ConnectError" in lines and SECRET not in lines


async def test_with_no_target_it_says_so_at_once() -> None:
    started = time.monotonic()
    result = await ActivityEnvironment().run(NotifyActivities(NotificationTargets()).send_notification, notification())
    assert (result.configured, result.deliveries) == (False, [])
    assert time.monotonic() - started < 1
