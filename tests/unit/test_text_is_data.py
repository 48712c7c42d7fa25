"""Issue 20, item 6: text from outside is data. An alert's name or summary, an operator's reason,
a cloud's error: whatever control characters, markup or mentions it holds, the terminal, the
Markdown exports and Slack show it, and none of them obeys it."""

from __future__ import annotations

import io
import json

from evac.alerting.payloads import parse
from evac.audit.render import md_cell
from evac.cli.base import _Console
from evac.text import visible
from tests.unit.test_alert_payloads import alertmanager, am_alert

HOSTILE = (
    "disk full\n✔ approved by ceo@corp \x1b[2J\x1b[31m red \u202eevil [/] <https://evil.example|Click to approve> <!channel>"
)


def test_every_control_and_bidirectional_character_is_written_as_an_escape():
    assert visible("a\x1b[2Jb\x07c\u202ed\te\nf\x9bg") == "a\\x1b[2Jb\\x07c\\u202ed\te\nf\\x9bg"
    assert visible("plain text, ünïcödé ✔") == "plain text, ünïcödé ✔"


def test_the_terminal_shows_escape_codes_and_broken_markup_instead_of_obeying_them():
    buffer = io.StringIO()
    console = _Console(file=buffer, soft_wrap=True, force_terminal=True)
    console.print(f"reason: {HOSTILE}", highlight=False)  # '[/]' is broken markup: no MarkupError
    console.print("[bold]ours[/] styled")
    shown = buffer.getvalue()
    assert "\x1b[2J" not in shown and "\\x1b[2J" in shown and "\\u202e" in shown and "[/]" in shown
    assert "\x1b[1mours" in shown  # our own styles still reach the terminal


def test_an_alert_s_name_and_summary_become_one_line_of_visible_text():
    alert = am_alert(labels={"alertname": HOSTILE, "region": "europe-west1"}, annotations={"summary": HOSTILE})
    [evidence] = parse("alertmanager", alertmanager(alert))
    for text in (evidence.name, evidence.summary):
        assert "\n" not in text and "\x1b" not in text and "\u202e" not in text
        assert text.startswith("disk full ✔ approved by ceo@corp \\x1b[2J")


def test_markdown_cells_and_slack_messages_escape_their_markup_and_controls():
    from datetime import UTC, datetime

    from evac.notifications import Notification, NotificationEvent, slack_message

    cell = md_cell(HOSTILE)
    assert "\x1b" not in cell and "\n" not in cell and "<" not in cell and "\\|" in cell
    notification = Notification(
        event=NotificationEvent.STARTED,
        service="checkout",
        kind="failover",
        plan="demo",
        source="europe-west1",
        target="us-central1",
        trigger_kind="alert",
        trigger_by="evac-guardian/europe-west1",
        status="running",
        at=datetime(2026, 12, 6, tzinfo=UTC),
        detail=HOSTILE,
    )
    message = slack_message(notification, "http://localhost:8233/x")
    texts = [message["text"]] + [json.dumps(block) for block in message["blocks"][:-1]]
    for text in texts:
        assert "<!channel>" not in text and "<https://evil.example" not in text and "\x1b" not in text
    assert "&lt;!channel&gt;" in message["text"]
