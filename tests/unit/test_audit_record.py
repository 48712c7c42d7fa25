"""The audit record derived from real histories (tests/workflow/histories), its JSON Schema,
and `verify`: a true export verifies, a tampered export or history fails naming the fact."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from temporalio.client import WorkflowHistory

from evac.audit import record as audit
from evac.control import audit as control

HISTORIES = Path(__file__).parents[1] / "workflow" / "histories"
SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "audit-record.schema.json"
# A schedule's launcher, a region guardian, region evacuations (each service's run is audited).
NOT_RUNS = {
    "scheduled_drill_passed",
    "guardian_fired",
    "evacuation_completed_with_failures",
    "evacuation_aborted_rollback_all",
    "readiness_evaluated",
}
AUDITABLE = sorted(p.stem for p in HISTORIES.glob("*.json") if p.stem not in NOT_RUNS)


def history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json("failover/checkout", (HISTORIES / f"{name}.json").read_text())


def record(name: str) -> audit.AuditRecord:
    return audit.derive(history(name), "default")


def test_the_published_schema_is_the_models_schema() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == json.loads(json.dumps(audit.json_schema(), sort_keys=True)), (
        "docs/audit-record.schema.json is stale: regenerate it with python -c 'import json; "
        "from evac.audit.record import json_schema; print(json.dumps(json_schema(), indent=2, sort_keys=True))'"
    )


@pytest.mark.parametrize("name", AUDITABLE)
def test_every_export_validates_against_the_published_schema(name: str) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    exported = json.loads(control.export(record(name), control.Format.JSON))
    jsonschema.Draft202012Validator(schema).validate(exported)


@pytest.mark.parametrize("name", AUDITABLE)
def test_the_record_is_a_pure_function_of_the_history(name: str) -> None:
    first, second = record(name), record(name)
    assert first == second
    again = WorkflowHistory.from_json("failover/checkout", history(name).to_json())
    assert audit.history_digest(again) == first.provenance.history_sha256
    assert first.provenance.closed and first.provenance.history_events == len(history(name).events)


def test_a_drill_with_approval_and_pause_names_who_did_what() -> None:
    r = record("drill_approved_paused")
    assert (r.kind, r.outcome, r.record_source) == ("drill", "passed", "result")
    actions = [(a.action, a.by, a.outcome) for a in r.operator_actions]
    assert actions == [
        ("pause", "dave@desk", "accepted"),
        ("resume", "dave@desk", "accepted"),
        ("approve", "alice@laptop", "accepted"),
    ]
    approve = r.operator_actions[-1]
    assert approve.detail == "approved" and approve.identity  # Temporal's record of the caller
    approval = next(s.approval for s in r.run.steps if s.approval is not None)
    assert approval.decision == "approved" and approval.by == "alice@laptop"
    assert r.recovery.target_seconds == 300 and r.recovery.met is True and r.recovery.source == "run"
    assert any(a.role == "stop_condition" for a in r.activities)
    compensated = {a.step for a in r.activities if a.role == "compensation"}
    assert compensated == {s.name for s in r.run.steps if s.undo_to is not None}  # the failback, step by step


def test_a_rolled_back_failover_shows_the_failure_and_every_undo() -> None:
    r = record("failover_rolled_back")
    assert (r.kind, r.outcome, r.record_source) == ("failover", "rolled_back", "failure")
    failed = [a for a in r.activities if a.outcome == "failed"]
    assert failed and failed[0].activity == "set_dns_record" and "zone is locked" in (failed[0].failure or "")
    undone = [s for s in r.run.steps if s.status == "compensated"]
    assert [s.name for s in undone] == ["scale", "drain", "dns"] and all(
        any(a.step == s.name and a.role == "compensation" for a in r.activities) for s in undone
    )
    assert r.recovery.seconds is None


def test_an_abort_is_recorded_with_who_and_why() -> None:
    """``evac abort``'s record rides on the cancel request: who and why, and the caller's identity."""
    r = record("notifications_cancelled")
    abort = next(a for a in r.operator_actions if a.action == "abort")
    assert (abort.name, abort.by, abort.reason) == ("cancel", "history-fixture", "recorded") and abort.identity
    assert r.outcome == "cancelled"


def test_a_schedule_launcher_is_not_audited_as_a_run() -> None:
    launcher = WorkflowHistory.from_json("evac-drill/x", (HISTORIES / "scheduled_drill_passed.json").read_text())
    with pytest.raises(audit.NotAuditable, match="ScheduledDrillWorkflow"):
        audit.derive(launcher, "default")


def test_a_run_still_going_is_recorded_as_far_as_it_went() -> None:
    full = history("failover_succeeded")
    partial = audit.prefix(full, 40)
    r = audit.derive(partial, "default")
    assert not r.provenance.closed and r.record_source == "input" and r.ended_at is None
    # An export of the running run still verifies once the run has gone on: its first 40 events.
    document = control.read_export(control.export(r, control.Format.JSON), "export.json")
    assert control.verify(document, full).verified


def test_a_run_still_going_shows_an_approval_it_accepted() -> None:
    full = history("drill_approved_paused")
    approved = next(
        i
        for i, e in enumerate(full.events)
        if e.HasField("workflow_execution_update_completed_event_attributes")
        and e.workflow_execution_update_completed_event_attributes.outcome.success.payloads
        and b"approved" in e.workflow_execution_update_completed_event_attributes.outcome.success.payloads[0].data
    )
    r = audit.derive(audit.prefix(full, approved + 1), "default")
    assert r.record_source == "input" and not r.provenance.closed
    [step] = [s for s in r.run.steps if s.kind == "approval"]
    assert step.status == "succeeded" and step.approval is not None
    assert (step.approval.decision, step.approval.by) == ("approved", "alice@laptop")


# --- verify ----------------------------------------------------------------------------------


def json_export(name: str) -> str:
    return control.export(record(name), control.Format.JSON)


def test_a_true_json_export_verifies_fact_by_fact() -> None:
    text = json_export("drill_approved_paused")
    result = control.verify(control.read_export(text, "x.json"), history("drill_approved_paused"))
    assert result.verified and result.first_difference is None
    assert result.facts_checked > 100


def test_a_tampered_json_export_fails_naming_the_first_differing_fact() -> None:
    exported = json.loads(json_export("failover_succeeded"))
    step = next(i for i, s in enumerate(exported["run"]["steps"]) if s["kind"] == "drain")
    exported["run"]["steps"][step]["after"]["capacity_scaler"] = 0.5
    document = control.read_export(json.dumps(exported), "x.json")
    result = control.verify(document, history("failover_succeeded"))
    assert not result.verified
    assert result.first_difference is not None
    assert result.first_difference.startswith(f"run.steps[{step}].after.capacity_scaler: the export says 0.5")


def test_a_value_of_the_wrong_type_is_named_as_a_difference_not_refused() -> None:
    exported = json.loads(json_export("failover_succeeded"))
    exported["run"]["steps"][0]["attempts"] = "many"
    result = control.verify(control.read_export(json.dumps(exported), "x.json"), history("failover_succeeded"))
    assert not result.verified and (result.first_difference or "").startswith('run.steps[0].attempts: the export says "many"')


def test_an_approver_rewritten_in_the_export_is_caught() -> None:
    exported = json.loads(json_export("drill_approved_paused"))
    action = next(a for a in exported["operator_actions"] if a["action"] == "approve")
    action["by"] = "mallory@laptop"
    result = control.verify(control.read_export(json.dumps(exported), "x.json"), history("drill_approved_paused"))
    assert not result.verified and 'the export says "mallory@laptop"' in (result.first_difference or "")


def test_a_tampered_history_fails_on_its_digest() -> None:
    raw = json.loads(history("failover_succeeded").to_json())
    for event in raw["events"]:
        if event["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" or "identity" in json.dumps(event):
            break
    event["eventTime"] = "2020-01-01T00:00:00Z"
    tampered = control.history_from_file(json.dumps(raw), "failover/checkout", "h.json")
    result = control.verify(control.read_export(json_export("failover_succeeded"), "x.json"), tampered)
    assert not result.verified and (result.first_difference or "").startswith("provenance.history_sha256")


def test_a_shorter_history_than_the_export_was_made_from_fails() -> None:
    short = audit.prefix(history("failover_succeeded"), 10)
    result = control.verify(control.read_export(json_export("failover_succeeded"), "x.json"), short)
    assert not result.verified and "made from" in (result.first_difference or "")


def test_files_that_are_no_export_are_refused_in_one_sentence() -> None:
    with pytest.raises(control.NotAnExport, match="is JSON but not an Evac audit record \\(its provenance"):
        control.read_export('{"hello": 1}', "notes.json")
    with pytest.raises(control.NotAnExport, match="no JSON record and no evac-audit marker"):
        control.read_export("# My postmortem\n", "pm.md")
    with pytest.raises(Exception, match="is not a Temporal history"):
        control.history_from_file("not json", "failover/x", "--history h.json")


@pytest.mark.parametrize("format", [control.Format.MD, control.Format.HTML])
def test_markdown_and_html_exports_verify_and_a_changed_line_is_named(format: control.Format) -> None:
    r = record("failover_rolled_back")
    text = control.export(r, format)
    assert control.verify(control.read_export(text, f"x.{format.value}"), history("failover_rolled_back")).verified
    tampered = text.replace("rolled_back", "succeeded", 1)
    assert tampered != text
    result = control.verify(control.read_export(tampered, f"x.{format.value}"), history("failover_rolled_back"))
    assert not result.verified
    assert result.first_difference is not None and ("line " in result.first_difference or "." in result.first_difference)


def test_no_value_can_break_out_of_the_html_exports_embedded_record() -> None:
    r = record("failover_succeeded")
    hostile = r.model_copy(
        update={"trigger": r.trigger.model_copy(update={"reason": "</script><!--<script>alert(1)</script> & >"})}
    )
    block = audit.embedded_record(hostile)
    inner = block.removeprefix('<script type="application/json" id="evac-audit-record">').removesuffix("</script>")
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert audit.read_embedded_record(f"<html>{block}</html>") == json.loads(hostile.model_dump_json())


def test_an_alert_triggered_run_names_its_evidence() -> None:
    r = record("failover_alert_triggered")
    assert r.trigger.kind == "alert" and r.trigger.by == "evac-guardian/europe-west1"
    assert r.trigger.evidence == ["alertmanager:fp-1", "alertmanager:fp-2"]
    markdown = control.export(r, control.Format.MD)
    assert "alertmanager:fp-1" in markdown and "alertmanager:fp-2" in markdown


def test_the_history_of_another_run_is_named_as_another_run() -> None:
    document = control.read_export(json_export("failover_succeeded"), "x.json")
    other = history("failover_rolled_back")
    result = control.verify(document, other)
    mine = document.marker.run_id
    assert not result.verified and result.first_difference == (
        f"provenance.run_id: the export is of run {mine}, the history given is of run {other.run_id}"
    )


def test_a_changed_line_is_shown_where_it_differs_and_line_endings_and_trailing_spaces_are_one_rule() -> None:
    text = control.export(record("failover_rolled_back"), control.Format.MD)
    target = next(line for line in text.splitlines() if len(line) > 120 and "zone is locked" in line)
    at = target.index("zone is locked", 100)  # far along the line: a cut to one prefix would hide it
    injected = text.replace(target, target[:at] + "<p>" + target[at:], 1)
    result = control.verify(control.read_export(injected, "x.md"), history("failover_rolled_back"))
    difference = result.first_difference or ""
    assert f"column {at + 1}:" in difference and "<p>zone is locked" in difference
    # The same line endings and trailing spaces rule: neither CRLF nor spaces at a line's end is a difference.
    for variant in (text.replace("\n", "\r\n"), text.replace("\n", "  \n")):
        assert control.verify(control.read_export(variant, "x.md"), history("failover_rolled_back")).verified


def test_an_export_whose_own_proof_is_damaged_is_not_verified_exit_1_while_a_non_export_is_bad_input(tmp_path) -> None:
    from typer.testing import CliRunner

    from evac.cli import app

    text = control.export(record("failover_rolled_back"), control.Format.MD)
    damaged = tmp_path / "damaged.md"
    import re

    damaged.write_text(re.sub(r'("schema_version":\s*)1', r"\g<1>9", text))  # the marker: no longer an ExportMarker
    html = control.export(record("failover_rolled_back"), control.Format.HTML)
    gutted = tmp_path / "gutted.html"
    gutted.write_text(html.replace('id="evac-audit-record"', 'id="something-else"'))
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    env = {"EVAC_CONFIG": "/nonexistent/evac.toml"}
    for path in (damaged, gutted):
        result = CliRunner().invoke(app, ["audit", "verify", str(path)], env=env)
        assert result.exit_code == 1 and "NOT verified:" in result.stdout and "damaged" in result.stdout, result.output
    assert CliRunner().invoke(app, ["audit", "verify", str(notes)], env=env).exit_code == 2
