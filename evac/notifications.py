"""Notifications: what a run tells people, and how each target receives it.

A run posts a :class:`Notification` on five events (:class:`NotificationEvent`). Where it goes
is the worker's configuration alone (``notify_webhook_url`` / ``EVAC_NOTIFY_WEBHOOK_URL``, a
generic JSON webhook; ``slack_webhook_url`` / ``EVAC_SLACK_WEBHOOK_URL``, a Slack incoming
webhook): never a plan, an input or a history. A webhook URL carries its token in its path,
so nothing here holds a URL: the notification, the result and the run's record name a target
by its kind only (``webhook``, ``slack``).

The bodies are built here, pure functions of the notification and the run's Web UI link:
:func:`webhook_body` (documented and versioned, see docs/notifications.md) and
:func:`slack_message` (Block Kit, with a plain ``text`` fallback).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evac.text import visible

# The activity's registered name (workflows call it, tests register stand-ins under it).
SEND_NOTIFICATION = "send_notification"
# The version of the generic JSON body; a change that is not additive raises it.
WEBHOOK_BODY_VERSION = 1


class NotificationEvent(StrEnum):
    STARTED = "started"
    APPROVAL_NEEDED = "approval_needed"
    STOP_CONDITION_BREACHED = "stop_condition_breached"
    ROLLBACK_STARTED = "rollback_started"
    ENDED = "ended"
    # Not a run's: a readiness evaluation found a plan in another state than the one before.
    READINESS_CHANGED = "readiness_changed"


EVENT_TITLES = {
    NotificationEvent.STARTED: "started",
    NotificationEvent.APPROVAL_NEEDED: "waits for approval",
    NotificationEvent.STOP_CONDITION_BREACHED: "stop condition breached",
    NotificationEvent.ROLLBACK_STARTED: "rolling back",
    NotificationEvent.ENDED: "ended",
    NotificationEvent.READINESS_CHANGED: "readiness changed",
}


class TargetKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Notification(_Model):
    """One event of one run, as the workflow knows it. Holds no URL and no secret."""

    event: NotificationEvent
    service: str
    kind: Literal["failover", "drill"]
    plan: str
    source: str
    target: str
    step: str | None = Field(default=None, description="The step the event concerns, if any")
    status: str = Field(description="The run's status when the event happened (its final status for 'ended')")
    outcome: str | None = Field(default=None, description="How the run ended ('ended' only): a drill's outcome, else the status")
    detail: str = Field(default="", description="What happened, in one sentence (an error, a breach, what an approval waits for)")
    trigger_kind: str
    trigger_by: str
    at: datetime


class Delivery(_Model):
    """What became of one notification at one target: never its URL, only its kind."""

    target: TargetKind
    delivered: bool
    attempts: int = 0
    error: str | None = Field(default=None, description="The last failure: an HTTP status or an exception class")

    def summary(self) -> str:
        if self.delivered:
            return f"{self.target}: delivered"
        return f"{self.target}: failed after {self.attempts} tries ({self.error})"


class NotificationResult(_Model):
    configured: bool = Field(description="False: the worker has no notification target; nothing was posted")
    deliveries: list[Delivery] = Field(default_factory=list)


class NotificationRecord(_Model):
    """One notification in a run's record (FailoverProgress.notifications)."""

    event: NotificationEvent
    step: str | None = None
    at: datetime
    deliveries: list[Delivery] = Field(default_factory=list)
    error: str | None = Field(default=None, description="The notification could not be sent at all (its activity failed)")

    def summary(self) -> str:
        if self.error is not None:
            return f"not sent: {self.error}"
        return "; ".join(d.summary() for d in self.deliveries)


# --- the bodies -----------------------------------------------------------------------


def outcome_text(n: Notification) -> str:
    """What to show as the outcome: how it ended, or where it stands."""
    if n.outcome:
        return n.outcome
    return "in progress" if n.status == "running" else n.status.replace("_", " ")


def headline(n: Notification) -> str:
    """One line: ``Evac failover of checkout: started``."""
    if n.event == NotificationEvent.READINESS_CHANGED:
        return f"Evac readiness of plan {n.plan} ({n.service}): {n.status.replace('_', ' ')}"
    line = f"Evac {n.kind} of {n.service}: {EVENT_TITLES[n.event]}"
    if n.event == NotificationEvent.ENDED:
        line += f" ({outcome_text(n)})"
    return line


def webhook_body(n: Notification, web_ui: str, workflow_id: str, run_id: str) -> dict[str, Any]:
    """The generic JSON webhook's body, version 1 (docs/notifications.md lists every field)."""
    return {
        "version": WEBHOOK_BODY_VERSION,
        "event": n.event.value,
        "service": n.service,
        "kind": n.kind,
        "plan": n.plan,
        "source": n.source,
        "target": n.target,
        "step": n.step,
        "status": n.status,
        "outcome": n.outcome,
        "detail": n.detail,
        "trigger": {"kind": n.trigger_kind, "by": n.trigger_by},
        "workflow_id": workflow_id,
        "run_id": run_id,
        "at": n.at.isoformat(),
        "text": headline(n),
        "web_ui": web_ui,
    }


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped (so no ``<!channel>``, no ``<url|forged link>``),
    and no control character is sent as it is (evac/text.py)."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(n: Notification, web_ui: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: a header, the run's fields, the detail and the Web UI
    link as Block Kit blocks, and ``text`` as the fallback notifications and old clients show."""
    fields = [
        ("Service", n.service),
        ("Kind", n.kind),
        ("Step", n.step or "—"),
        ("Outcome", outcome_text(n)),
        ("Plan", n.plan),
        ("Regions", f"{n.source} → {n.target}"),
        ("Trigger", f"{n.trigger_kind} by {n.trigger_by}"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(visible(headline(n)), 150), "emoji": False}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _clip(f"*{name}*\n{_mrkdwn(value)}", 2000)} for name, value in fields],
        },
    ]
    if n.detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(n.detail), 3000)}})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{web_ui}|Open the run in the Temporal Web UI>"}})
    step = f", step {n.step}" if n.step else ""
    detail = f": {n.detail}" if n.detail else ""
    # The fallback text is mrkdwn too (notifications, old clients): escaped like the blocks.
    text = _mrkdwn(f"{headline(n)}{step}{detail}") + f" — {web_ui}"
    return {"text": _clip(text, 3000), "blocks": blocks}
