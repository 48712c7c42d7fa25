"""The notification bodies: the generic JSON webhook's documented schema and the Slack
message's blocks; and the configuration of the targets, whose values are never shown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evac.config import ConfigError, Settings
from evac.notifications import Notification, NotificationEvent, slack_message, webhook_body

WEB_UI = "http://localhost:8233/namespaces/default/workflows/failover%2Fcheckout/run-1/history"
DOCS = Path(__file__).parents[2] / "docs" / "notifications.md"


def notification(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "event": NotificationEvent.ENDED,
        "service": "checkout",
        "kind": "failover",
        "plan": "checkout-to-east",
        "source": "us-central1",
        "target": "us-east1",
        "step": None,
        "status": "rolled_back",
        "outcome": "rolled_back",
        "detail": "guard: target us-east1 has 0/3 healthy backends; rolled back",
        "trigger_kind": "manual",
        "trigger_by": "alice@laptop",
        "at": datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
    }
    return Notification.model_validate({**fields, **changes})


def test_the_webhook_body_is_version_1_with_every_documented_field() -> None:
    body = webhook_body(notification(), WEB_UI, "failover/checkout", "run-1")
    assert body == {
        "version": 1,
        "event": "ended",
        "service": "checkout",
        "kind": "failover",
        "plan": "checkout-to-east",
        "source": "us-central1",
        "target": "us-east1",
        "step": None,
        "status": "rolled_back",
        "outcome": "rolled_back",
        "detail": "guard: target us-east1 has 0/3 healthy backends; rolled back",
        "trigger": {"kind": "manual", "by": "alice@laptop"},
        "workflow_id": "failover/checkout",
        "run_id": "run-1",
        "at": "2026-11-28T10:00:00+00:00",
        "text": "Evac failover of checkout: ended (rolled_back)",
        "web_ui": WEB_UI,
    }
    json.dumps(body)  # it is JSON as it stands


def test_the_documented_example_body_has_exactly_the_fields_the_code_sends() -> None:
    text = DOCS.read_text()
    start = text.index("```json\n", text.index("## The JSON webhook")) + len("```json\n")
    example = json.loads(text[start : text.index("```", start)])
    assert set(example) == set(webhook_body(notification(), WEB_UI, "w", "r"))
    assert example["version"] == 1


def field_texts(message: dict) -> dict[str, str]:
    [fields] = [b["fields"] for b in message["blocks"] if b["type"] == "section" and "fields" in b]
    return dict(f["text"].lstrip("*").split("*\n", 1) for f in fields)


def test_the_slack_message_shows_service_kind_step_outcome_and_the_web_ui_link() -> None:
    message = slack_message(
        notification(event=NotificationEvent.APPROVAL_NEEDED, step="approve", status="running", outcome=None), WEB_UI
    )
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == "Evac failover of checkout: waits for approval"
    fields = field_texts(message)
    assert fields["Service"] == "checkout"
    assert fields["Kind"] == "failover"
    assert fields["Step"] == "approve"
    assert fields["Outcome"] == "in progress"
    link = [b for b in message["blocks"] if b["type"] == "section" and WEB_UI in b.get("text", {}).get("text", "")]
    assert link and link[0]["text"]["text"] == f"<{WEB_UI}|Open the run in the Temporal Web UI>"
    # The fallback text names the event, the step and the link too.
    assert "checkout" in message["text"] and "approve" in message["text"] and WEB_UI in message["text"]


def test_the_slack_message_of_an_end_shows_the_outcome_and_escapes_the_detail() -> None:
    message = slack_message(notification(detail="a <b> & c"), WEB_UI)
    assert field_texts(message)["Outcome"] == "rolled_back"
    assert message["blocks"][0]["text"]["text"] == "Evac failover of checkout: ended (rolled_back)"
    assert {"type": "section", "text": {"type": "mrkdwn", "text": "a &lt;b&gt; &amp; c"}} in message["blocks"]


def test_a_drill_end_shows_its_outcome() -> None:
    message = slack_message(notification(kind="drill", status="succeeded", outcome="passed", detail=""), WEB_UI)
    assert field_texts(message)["Kind"] == "drill"
    assert field_texts(message)["Outcome"] == "passed"
    assert message["blocks"][0]["text"]["text"] == "Evac drill of checkout: ended (passed)"


SECRET = "T0P-SECRET-abc123"


@pytest.mark.parametrize("variable", ["EVAC_NOTIFY_WEBHOOK_URL", "EVAC_SLACK_WEBHOOK_URL"])
def test_a_target_is_read_from_the_environment_and_not_shown(monkeypatch, tmp_path, variable) -> None:
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv(variable, f"https://hooks.example.com/hook/{SECRET}")
    settings = Settings.load()
    assert getattr(settings, variable.removeprefix("EVAC_").lower()) == f"https://hooks.example.com/hook/{SECRET}"
    assert SECRET not in repr(settings)


@pytest.mark.parametrize("value", [f"ftp://example.com/{SECRET}", f"hooks.example.com/{SECRET}", f"https:///{SECRET}"])
def test_a_target_that_is_not_an_http_url_is_refused_without_showing_it(monkeypatch, tmp_path, value) -> None:
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("EVAC_SLACK_WEBHOOK_URL", value)
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    message = str(raised.value)
    assert "slack_webhook_url (EVAC_SLACK_WEBHOOK_URL" in message and "http:// or https://" in message
    assert SECRET not in message


def test_a_target_in_the_config_file_is_checked_too(monkeypatch, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'notify_webhook_url = "mailto:{SECRET}"\n')
    monkeypatch.setenv("EVAC_CONFIG", str(config))
    monkeypatch.delenv("EVAC_NOTIFY_WEBHOOK_URL", raising=False)
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    assert "notify_webhook_url" in str(raised.value) and SECRET not in str(raised.value)
