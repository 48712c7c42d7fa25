"""The notification activity: post one run event to every target the worker is configured with.

The targets come from the worker's settings alone (``notify_webhook_url``, ``slack_webhook_url``);
nothing a run carries names one. A webhook URL holds its token in its path, so the URL never
leaves this module: not in the result, not in an error, not in a log line. httpx's own
request log line (INFO, with the URL) is silenced, and a failure is described by its HTTP
status or its exception class only.

Each target is tried a few times in place with a short backoff (a small budget, well inside the
activity's start-to-close timeout); a target that keeps failing is reported in the result and
never raised, so a notification can never fail a run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from temporalio import activity

from evac.notifications import (
    SEND_NOTIFICATION,
    Delivery,
    Notification,
    NotificationResult,
    TargetKind,
    slack_message,
    webhook_body,
)
from evac.render import history_url

# httpx logs every request, URL and all, at INFO; httpcore logs connection details at DEBUG.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

log = structlog.get_logger("evac.activity")

ATTEMPTS = 3
REQUEST_TIMEOUT = httpx.Timeout(4.0)
BACKOFF_SECONDS = (1.0, 2.0)  # the waits between the tries: 3 tries take at most ~15 s
# A receiver's answer that another try may change (any other 4xx will not).
RETRYABLE_CLIENT_ERRORS = {408, 425, 429}


@dataclass(frozen=True)
class NotificationTargets:
    """Where the worker posts notifications, and the Web UI its links point at."""

    webhook_url: str | None = field(default=None, repr=False)
    slack_url: str | None = field(default=None, repr=False)
    temporal_ui: str = "http://localhost:8233"

    def configured(self) -> list[tuple[TargetKind, str]]:
        targets = [(TargetKind.WEBHOOK, self.webhook_url), (TargetKind.SLACK, self.slack_url)]
        return [(kind, url) for kind, url in targets if url]


def _failure(exc: BaseException) -> str:
    """What went wrong, without the URL httpx puts into its messages."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _final(exc: BaseException) -> bool:
    """A 4xx answer (a revoked token, a refused body) does not get better by trying again."""
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    status = exc.response.status_code
    return 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS


class NotifyActivities:
    def __init__(self, targets: NotificationTargets) -> None:
        self._targets = targets

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, input: Notification) -> NotificationResult:
        targets = self._targets.configured()
        if not targets:
            return NotificationResult(configured=False)
        info = activity.info()
        namespace, workflow_id, run_id = info.workflow_namespace or "", info.workflow_id or "", info.workflow_run_id or ""
        web_ui = history_url(self._targets.temporal_ui, namespace, workflow_id, run_id)
        bodies: dict[TargetKind, dict[str, Any]] = {
            TargetKind.WEBHOOK: webhook_body(input, web_ui, workflow_id, run_id),
            TargetKind.SLACK: slack_message(input, web_ui),
        }
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, follow_redirects=False) as client:
            deliveries = await asyncio.gather(*(_post(client, kind, url, bodies[kind]) for kind, url in targets))
        for d in deliveries:
            fields = {"notification": input.event.value, "target": d.target.value, "attempts": d.attempts}
            if d.delivered:
                log.info("notification delivered", **fields)
            else:
                log.warning("notification not delivered", **fields, error=d.error)
        return NotificationResult(configured=True, deliveries=list(deliveries))


async def _post(client: httpx.AsyncClient, kind: TargetKind, url: str, body: dict[str, Any]) -> Delivery:
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await client.post(url, json=body)
            response.raise_for_status()
            return Delivery(target=kind, delivered=True, attempts=attempt)
        except Exception as exc:  # every failure is reported by its kind only: never raised, never the URL
            error = _failure(exc)
            if _final(exc):
                return Delivery(target=kind, delivered=False, attempts=attempt, error=error)
        if attempt < ATTEMPTS:
            await asyncio.sleep(BACKOFF_SECONDS[attempt - 1])
    return Delivery(target=kind, delivered=False, attempts=ATTEMPTS, error=error)
