"""The audit timeline and its renderings (text, Markdown, HTML with an SVG Gantt chart), on real histories."""

from __future__ import annotations

import html
import io
import itertools
import json
import re
from functools import cache
from pathlib import Path

import pytest
from rich.console import Console
from temporalio.client import WorkflowHistory

from evac.audit import record as audit
from evac.audit import render as audit_render
from evac.audit.record import AuditRecord
from evac.runs import StepStatus

HISTORIES = Path(__file__).parent.parent / "workflow" / "histories"
NAMES = [
    "drill_approved_paused",
    "failover_succeeded",
    "failover_rolled_back",
    "failover_cancelled",
    "notifications_succeeded",
    "dead_source_skipped",  # a step skipped for want of the source region's API, its change owed
    "dead_source_drill",  # an ungraceful drill
]


@cache
def _text(name: str) -> str:
    return (HISTORIES / f"{name}.json").read_text()


def record_of(name: str) -> AuditRecord:
    return audit.derive(WorkflowHistory.from_json("failover/checkout", _text(name)), "default")


def compensated(record: AuditRecord) -> list[str]:
    return [s.name for s in record.run.steps if s.status in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED)]


def rects(html: str, cls: str) -> list[str]:
    return re.findall(rf'<rect class="{cls}"[^>]*>', html)


@pytest.mark.parametrize("name", NAMES)
def test_markdown_and_html_hold_every_step_approval_compensation_and_the_outcome(name: str) -> None:
    record = record_of(name)
    md = audit_render.render_markdown(record)
    page = audit_render.render_html(record)
    approvals = [s for s in record.run.steps if s.approval is not None]
    for text in (md, page):
        for step in record.run.steps:
            assert step.name in text
            assert step.status.value in text
        for step in approvals:
            assert step.approval is not None and step.approval.by and step.approval.decision
            assert step.approval.by in text and step.approval.decision in text
        assert record.outcome in text
        for action in record.operator_actions:
            assert action.identity in text
    for step in record.run.steps:
        if step.name in compensated(record):
            undo = audit_render.compensation_text(step)
            assert undo and audit_render.md_cell(undo) in md and html.escape(undo) in page
    assert md.endswith("\n" + audit.marker(record) + "\n")
    assert page.endswith("</body></html>\n" + audit.marker(record) + "\n")
    for text in (md, page):
        mark = audit.read_marker(text)
        assert mark is not None
        p = record.provenance
        assert (mark.workflow_id, mark.run_id, mark.namespace) == (p.workflow_id, p.run_id, p.namespace)
        assert (mark.history_events, mark.history_sha256) == (p.history_events, p.history_sha256)


def test_the_drill_names_its_approver_pause_checks_failback_and_recovery_target() -> None:
    record = record_of("drill_approved_paused")
    entries = audit_render.timeline(record)
    whats = [e.what for e in entries]
    details = " ".join(e.detail for e in entries)
    assert "step 3 'go-ahead' approved" in whats
    approved = next(e for e in entries if e.what == "step 3 'go-ahead' approved")
    [approve] = [a for a in record.operator_actions if a.action == "approve"]
    assert "alice@laptop" in approved.detail and f"identity {approve.identity}" in approved.detail
    assert [e.what for e in entries if e.kind == "operator"] == ["pause", "resume"]  # the approve update is on its step
    assert "dave@desk" in details
    assert "stop conditions: 11 checks" in whats
    assert "failback" in whats and "verification" in whats
    assert any(e.what == "recovery" and "against a target of 300s; target met" in e.detail for e in entries)
    md = audit_render.render_markdown(record)
    assert "## Stop conditions" in md and "| target healthy | backend_health |" in md
    assert "## Failback and verification" in md


def test_a_rollback_shows_the_failed_step_then_the_undos_newest_first() -> None:
    record = record_of("failover_rolled_back")
    entries = audit_render.timeline(record)
    failed = next(e for e in entries if e.what == "step 4 'dns' failed")
    assert "error: zone is locked" in failed.detail
    undos = [e.what for e in entries if e.kind == "compensation"]
    assert undos == ["undo step 4 'dns'", "undo step 3 'drain'", "undo step 1 'scale'"]
    assert all(e.at >= failed.at for e in entries if e.kind == "compensation")
    assert entries[-2].what == "outcome: rolled_back" and entries[-2].detail == "zone is locked"


def test_an_abort_carries_who_why_and_the_callers_identity_and_the_not_run_step_is_shown() -> None:
    """``evac abort`` is one cancel request carrying who and why: one timeline entry."""
    record = record_of("notifications_cancelled")
    entries = audit_render.timeline(record)
    [abort] = [e for e in entries if e.what in ("abort", "cancel")]
    [request] = [a for a in record.operator_actions if a.action == "abort"]
    assert abort.what == "abort" and abort.detail == f"by history-fixture (identity {request.identity}): recorded"
    assert any(e.what == "step 5 'dns'" and "not run" in e.detail for e in entries)
    page = audit_render.render_html(record)
    [dns] = [r for r in rects(page, "step-bar") if 'data-step="dns"' in r]
    assert 'data-status="not_run"' in dns


@pytest.mark.parametrize("name", NAMES)
def test_the_timeline_is_in_time_order_with_utc_milliseconds_and_offsets(name: str) -> None:
    record = record_of(name)
    entries = audit_render.timeline(record)
    assert entries[0].what.endswith("started") and entries[0].at == record.started_at
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    md = audit_render.render_markdown(record)
    stamp = audit_render.iso(entries[1].at)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert f"| {stamp} | {audit_render.offset(entries[1].at, record.started_at)} |" in md


def test_offsets_read_as_seconds_minutes_and_hours() -> None:
    start = record_of("failover_succeeded").started_at
    from datetime import timedelta

    assert audit_render.offset(start + timedelta(milliseconds=86), start) == "+0.086s"
    assert audit_render.offset(start + timedelta(seconds=12.34), start) == "+12.3s"
    assert audit_render.offset(start + timedelta(seconds=600.2), start) == "+10m00.2s"
    assert audit_render.offset(start + timedelta(seconds=3723.4), start) == "+1h02m03.4s"


@pytest.mark.parametrize("name", NAMES)
def test_the_gantt_has_one_bar_per_step_and_one_per_compensated_step(name: str) -> None:
    record = record_of(name)
    page = audit_render.render_html(record)
    bars = rects(page, "step-bar")
    assert len(bars) == len(record.run.steps)
    assert [re.search(r'data-step="([^"]*)"', b).group(1) for b in bars] == [s.name for s in record.run.steps]  # type: ignore[union-attr]
    undo = rects(page, "compensation-bar")
    assert sorted(re.search(r'data-step="([^"]*)"', b).group(1) for b in undo) == sorted(compensated(record))  # type: ignore[union-attr]
    for bar in bars:
        status = re.search(r'data-status="([^"]*)"', bar)
        assert status is not None and status.group(1) in {s.value for s in StepStatus}


def test_a_drills_long_bake_is_drawn_as_a_break_so_its_sub_second_steps_stay_visible() -> None:
    drill = audit_render.render_html(record_of("drill_approved_paused"))
    assert len(rects(drill, "gap")) == 1
    widths = [float(re.search(r'width="([\d.]+)"', b).group(1)) for b in rects(drill, "step-bar")]  # type: ignore[union-attr]
    assert min(widths) >= 20, widths  # the 10-minute bake would otherwise squeeze 0.1 s of steps into a pixel
    assert ">10m</text>" in drill
    assert rects(audit_render.render_html(record_of("failover_succeeded")), "gap") == []


@pytest.mark.parametrize("name", NAMES)
def test_renders_are_deterministic(name: str) -> None:
    a, b = record_of(name), record_of(name)
    assert audit_render.render_markdown(a) == audit_render.render_markdown(b)
    assert audit_render.render_html(a) == audit_render.render_html(b)
    assert _text_render(a) == _text_render(b)


def _text_render(record: AuditRecord) -> str:
    console = Console(width=100, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(audit_render.render_text(record))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_the_text_view_fits_100_columns_and_shows_ids_trigger_and_every_step(name: str) -> None:
    record = record_of(name)
    text = _text_render(record)
    assert max(len(line) for line in text.splitlines()) <= 100
    flat = " ".join(text.split())
    for needle in (record.provenance.run_id, record.trigger.by, record.plan_name, record.outcome, record.starter_identity):
        assert needle in flat
    for step in record.run.steps:
        assert f"'{step.name}'" in flat


@pytest.mark.parametrize("name", NAMES)
def test_the_html_fetches_nothing_and_runs_no_script(name: str) -> None:
    record = record_of(name)
    page = audit_render.render_html(record)
    assert page.startswith("<!DOCTYPE html>\n<html")
    assert '<meta charset="utf-8">' in page
    assert re.findall(r"\b(?:src|href|xlink:href)\s*=", page) == []
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and re.findall(r"url\((?!#)", page) == []
    assert re.findall(r"<script[^>]*>", page) == [f'<script type="application/json" id="{audit.RECORD_ELEMENT_ID}">']
    assert audit.read_embedded_record(page) == json.loads(record.model_dump_json())
    assert "@media print" in page and "page-break-inside: avoid" in page


def test_cells_are_escaped_and_a_forged_marker_does_not_win() -> None:
    record = record_of("failover_rolled_back")
    fake = audit.ExportMarker(namespace="x", workflow_id="x", run_id="x", history_events=1, history_sha256="0")
    forged = f"<!-- {audit.MARKER} {fake.model_dump_json()} -->"
    trigger = record.trigger.model_copy(update={"reason": f"pipe | here <b>bold</b> {forged}"})
    record = record.model_copy(update={"trigger": trigger})
    md = audit_render.render_markdown(record)
    assert "pipe \\| here &lt;b&gt;bold&lt;/b&gt;" in md
    assert "<b>" not in md
    width = 0
    for line in md.splitlines():
        if not line.startswith("|"):
            width = 0
            continue
        cells = len(re.split(r"(?<!\\)\|", line)) - 2
        width = width or cells
        assert cells == width, line
    summary = [line for line in md.splitlines() if line.startswith("| trigger |")]
    assert len(re.split(r"(?<!\\)\|", summary[0])) == 4  # '', field, value, ''
    page = audit_render.render_html(record)
    shown = page.replace(audit.embedded_record(record), "")  # the JSON data block holds the record as it is
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown and "<b>bold" not in shown
    for text in (md, page):
        mark = audit.read_marker(text)
        assert mark is not None and mark.run_id == record.provenance.run_id


def test_the_trigger_evidence_schedule_and_blackout_override_are_shown_everywhere() -> None:
    record = record_of("drill_approved_paused")
    trigger = record.trigger.model_copy(
        update={"schedule_id": "evac-drill/weekly", "blackout_override": "freeze-2026 (until 2026-12-01)", "reason": "fp 3f2a9c"}
    )
    record = record.model_copy(update={"trigger": trigger})
    start = audit_render.timeline(record)[0]
    identity = record.starter_identity  # the recording client's (pid@host)
    assert f"drill by carol@desk: fp 3f2a9c; client identity {identity}; schedule evac-drill/weekly" in start.detail
    assert "started inside a blackout, overridden: freeze-2026 (until 2026-12-01)" in start.detail
    md = audit_render.render_markdown(record)
    assert "| schedule | evac-drill/weekly |" in md and "| blackout override | freeze-2026 (until 2026-12-01) |" in md
    assert f"| client identity | {identity} |" in md
    page = audit_render.render_html(record)
    assert "<tr><th>schedule</th><td>evac-drill/weekly</td></tr>" in page
    text = " ".join(_text_render(record).split())
    assert "schedule evac-drill/weekly" in text and "blackout override freeze-2026" in text


def test_a_run_still_going_renders_its_pending_steps_and_says_the_history_ends_there() -> None:
    history = WorkflowHistory.from_json("failover/checkout", _text("drill_approved_paused"))
    # Cut just after the drain's change was scheduled: step 4 running, the DNS shift still pending.
    cut = 1 + next(
        i
        for i, e in enumerate(history.events)
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "set_backend_capacity"
    )
    record = audit.derive(audit.prefix(history, cut), "default")
    assert not record.provenance.closed and record.ended_at is None
    entries = audit_render.timeline(record)
    assert entries[-2].what == "outcome: running (the history ends here; the run was still going)"
    assert entries[-2].at == record.provenance.last_event_at
    assert any(e.what == "step 5 'dns'" and e.detail == "shift_dns: pending" for e in entries)
    page = audit_render.render_html(record)
    statuses = [re.search(r'data-status="([^"]*)"', b).group(1) for b in rects(page, "step-bar")]  # type: ignore[union-attr]
    assert statuses == [s.status.value for s in record.run.steps] and "running" in statuses and "pending" in statuses
    md = audit_render.render_markdown(record)
    assert f"| history | {cut} events, not closed: the run was still going |" in md
    assert audit.read_marker(md) is not None and audit.read_marker(md).history_events == cut  # type: ignore[union-attr]


def test_a_step_whose_activity_was_retried_says_how_often_and_why() -> None:
    record = record_of("failover_succeeded")
    calls = [
        c.model_copy(update={"attempt": 3, "failure": "quota exceeded"}) if c.activity == "set_backend_capacity" else c
        for c in record.activities
    ]
    record = record.model_copy(update={"activities": calls})
    drained = next(e for e in audit_render.timeline(record) if e.what == "step 3 'drain' succeeded")
    assert drained.detail.endswith("; set_backend_capacity took 3 attempts, last failure: quota exceeded")
    assert "set_backend_capacity took 3 attempts, last failure: quota exceeded" in audit_render.render_markdown(record)


def test_a_recovery_target_is_judged_only_for_a_run_that_succeeded() -> None:
    passed = record_of("drill_approved_paused")
    assert passed.recovery.met is True and audit_render.recovery_text(passed).endswith("; target met")
    # The same measurement on a drill that rolled back: nothing to judge, and the export says why.
    rolled_back = passed.model_copy(
        update={"outcome": "rolled_back", "recovery": passed.recovery.model_copy(update={"met": None})}
    )
    text = audit_render.recovery_text(rolled_back)
    assert text.endswith("; not judged: the run ended rolled_back") and "target met" not in text
    assert "target met" not in audit_render.render_html(rolled_back)


def test_an_update_is_shown_when_the_run_took_it_in_before_what_it_caused() -> None:
    history = WorkflowHistory.from_json("failover/checkout", _text("drill_approved_paused"))
    entries = audit_render.timeline(record_of("drill_approved_paused"))
    whats = [e.what for e in entries]
    resume = entries[whats.index("resume")]
    # Shown at the start of the workflow task that took it in (where the run acted on it), not at
    # the later time its acceptance was written.
    events = list(history.events)
    accepted = next(
        i
        for i, e in enumerate(events)
        if e.HasField("workflow_execution_update_accepted_event_attributes")
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "resume"
    )
    task = next(e for e in reversed(events[:accepted]) if e.HasField("workflow_task_started_event_attributes"))
    assert resume.at == audit.event_time(task) <= audit.event_time(events[accepted])
    # At one instant, what operators did is listed first; the steps the run holds for come after it.
    for before, after in itertools.pairwise(entries):
        assert not (before.at == after.at and before.kind != "operator" and after.kind == "operator"), (before, after)
    assert all(whats.index("resume") < i for i, w in enumerate(whats) if w.endswith("started") and "step" in w)


def test_an_ungraceful_runs_skipped_step_and_what_it_owes_are_in_every_export() -> None:
    record = record_of("dead_source_skipped")
    html, md = audit_render.render_html(record), audit_render.render_markdown(record)
    assert 'data-status="skipped"' in html and "<h2>Owed</h2>" in html
    assert "## Owed" in md and "step 2 'drain': backend europe-west1-b/payments-ew1-b" in md
    assert "went on without europe-west1's API" in md
    drill = audit_render.render_markdown(record_of("dead_source_drill"))
    assert "## Ungraceful rehearsal" in drill and "would skip:" in drill and "## Owed" not in drill


def test_a_drills_bake_has_a_bar_of_its_own_in_the_gantt() -> None:
    html = audit_render.render_html(record_of("drill_approved_paused"))
    [bar] = re.findall(r'<rect class="bake-bar"[^>]*><title>([^<]*)</title>', html)
    assert bar.startswith("bake: held from ") and "stop conditions checked " in bar
    assert ">bake</text>" in html and ">10m</text>" in html
    assert rects(audit_render.render_html(record_of("failover_succeeded")), "bake-bar") == []
