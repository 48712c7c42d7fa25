"""The audit record of a region evacuation, derived from recorded histories (tests/workflow/histories:
two single-run evacuations; chains/: one that continued as new twice and was aborted, one terminated
in Temporal), its JSON Schema, its renderings, and `verify` of its exports against every run."""

from __future__ import annotations

import base64
import json
import random
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from temporalio.client import WorkflowHistory

from evac.audit import evacuation as evacuation_audit
from evac.audit import evacuation_render as evacuation_audit_render
from evac.audit import record as audit
from evac.audit.evacuation import EvacuationAuditRecord
from evac.control import audit as control

HISTORIES = Path(__file__).parents[1] / "workflow" / "histories"
SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "evacuation-audit-record.schema.json"
UI = "http://localhost:8233"
WORKFLOW_ID = "evacuation/europe-west1"
NAMES = [
    "evacuation_completed_with_failures",
    "evacuation_aborted_rollback_all",
    "evacuation_chain_aborted",
    "evacuation_terminated",
]


@cache
def _text(name: str) -> str:
    path = HISTORIES / f"{name}.json"
    return (path if path.exists() else HISTORIES / "chains" / f"{name}.json").read_text()


def histories(name: str) -> list[WorkflowHistory]:
    return control.histories_from_file(_text(name), WORKFLOW_ID, name)


def record(name: str, web_ui: str | None = UI) -> EvacuationAuditRecord:
    return evacuation_audit.derive(histories(name), "default", web_ui)


# --- the schema ----------------------------------------------------------------------------------


def test_the_published_schema_is_the_models_schema() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == json.loads(json.dumps(evacuation_audit.json_schema(), sort_keys=True)), (
        "docs/evacuation-audit-record.schema.json is stale: regenerate it with python -c 'import json; "
        "from evac.audit.evacuation import json_schema; print(json.dumps(json_schema(), indent=2, sort_keys=True))'"
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_export_validates_against_the_published_schema_and_is_a_pure_function_of_the_histories(name: str) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    first, second = record(name), record(name)
    assert first == second
    jsonschema.Draft202012Validator(schema).validate(json.loads(control.export(first, control.Format.JSON)))
    runs = histories(name)
    assert [r.history_sha256 for r in first.provenance.runs] == [audit.history_digest(h) for h in runs]
    assert first.provenance.chain_sha256 == evacuation_audit.chain_digest([audit.history_digest(h) for h in runs])
    assert first.provenance.history_events == sum(len(h.events) for h in runs) and first.provenance.closed


# --- what the record says ------------------------------------------------------------------------


def test_a_chain_of_runs_is_one_record_from_its_first_start_to_its_last_end() -> None:
    runs = histories("evacuation_chain_aborted")  # three or more, as the recording's timing gave
    r = record("evacuation_chain_aborted")
    p = r.provenance
    assert len(p.runs) == len(runs) >= 3
    assert [x.ended_as for x in p.runs] == ["continued_as_new"] * (len(runs) - 1) + ["failed"]
    assert [x.run_id for x in p.runs] == [h.run_id for h in runs]
    assert r.started_at == audit.event_time(runs[0].events[0]) and r.ended_at == audit.event_time(runs[-1].events[-1])
    # Who started it and why: the first run's input, and the identity Temporal recorded for the caller.
    assert (r.trigger.kind, r.trigger.by, r.trigger.reason) == ("manual", "alice@laptop", "europe-west1 degraded")
    assert r.starter_identity == runs[0].events[0].workflow_execution_started_event_attributes.identity
    assert (r.kind, r.region, r.target, r.window, r.project) == ("evacuation", "europe-west1", None, 2, "evac-gen")
    assert [g.name for g in r.groups] == ["data", "api", "untiered"] and [g.services for g in r.groups] == [6, 6, 4]
    # Children were started by every run of the chain, and each links to its own run in the Web UI.
    assert {c.evacuation_run_id for c in r.children if c.run_id} == {x.run_id for x in p.runs}
    for c in r.children:
        if c.run_id:
            assert c.link == f"{UI}/namespaces/default/workflows/{c.workflow_id.replace('/', '%2F')}/{c.run_id}/history"  # type: ignore[union-attr]
    # Auto-target: each service's target and why.
    assert all(c.target == "us-central1" and "needs 2 healthy in us-central1" in c.target_reason for c in r.children)


def test_each_service_s_fate_is_named_busy_refused_aborted_and_never_started() -> None:
    r = record("evacuation_chain_aborted")
    by_service = {c.service: c for c in r.children}
    busy = by_service["svc-0001"]
    assert (busy.status, busy.run_outcome, busy.run_id) == ("failed", "start_failed", None)
    assert busy.error is not None and busy.error.startswith("busy: failover/svc-0001 is already running")
    refused = by_service["svc-0007"]
    assert (refused.status, refused.run_outcome) == ("failed", "failed") and "locked" in (refused.error or "")
    assert [by_service[s].status for s in ("svc-0013", "svc-0014", "svc-0015")] == ["aborted", "aborted", "not_started"]
    assert by_service["svc-0013"].run_outcome == "canceled" and by_service["svc-0015"].run_outcome == "not_started"
    assert r.outcome == "aborted" and r.summary == "aborted: 11 succeeded, 2 failed, 2 aborted, 1 not started"
    assert [g.counts for g in r.groups] == [
        {"succeeded": 5, "failed": 1},
        {"succeeded": 5, "failed": 1},
        {"succeeded": 1, "aborted": 2, "not_started": 1},
    ]
    succeeded = by_service["svc-0000"]
    assert succeeded.changes and all("→" in change for change in succeeded.changes)


def test_an_abort_names_who_and_why_as_the_update_and_temporal_recorded_them() -> None:
    r = record("evacuation_chain_aborted")
    [abort] = r.operator_actions
    assert (abort.action, abort.by, abort.reason, abort.rollback_all, abort.outcome) == (
        "abort",
        "bob@desk",
        "the region recovered",
        False,
        "accepted",
    )
    assert abort.identity and abort.evacuation_run_id == r.provenance.runs[-1].run_id
    assert r.abort is not None and (r.abort.by, r.abort.rollback_all) == ("bob@desk", False)

    rolled = record("evacuation_aborted_rollback_all")
    assert rolled.abort is not None and rolled.abort.rollback_all
    assert [a.rollback_all for a in rolled.operator_actions] == [True]
    failed_back = [c for c in rolled.children if c.status == "failed_back"]
    assert len(failed_back) == 2 and all(c.failback is not None and c.failback.calls == 2 for c in failed_back)
    assert all(c.failback.started_at > c.ended_at for c in failed_back if c.failback and c.ended_at)  # after its run


def test_an_evacuation_terminated_in_temporal_is_aborted_by_whom_temporal_says_and_its_run_in_flight_goes_on() -> None:
    r = record("evacuation_terminated")
    assert (r.outcome, r.record_source) == ("aborted", "input")
    assert r.abort is not None and r.abort.reason.startswith("terminated in Temporal: operator: stuck, evacuating by hand")
    assert "1 service run(s) in flight were not stopped and go on" in r.abort.reason
    [terminate] = r.operator_actions
    assert terminate.action == "terminate" and terminate.reason == "operator: stuck, evacuating by hand"
    assert [c.status for c in r.children] == ["succeeded", "running", "waiting"]
    assert r.children[1].run_outcome == "running" and r.children[1].run_id


def test_a_chain_still_going_is_recorded_as_far_as_it_went_and_its_export_verifies_once_it_ended() -> None:
    full = histories("evacuation_chain_aborted")
    cut = [full[0], full[1], audit.prefix(full[2], 20)]
    going = evacuation_audit.derive(cut, "default", UI)
    assert not going.provenance.closed and going.ended_at is None and going.record_source == "input"
    assert going.outcome == "running" and going.provenance.runs[-1].ended_as == "running"
    statuses = {c.service: c.status for c in going.children}
    assert statuses["svc-0000"] == "succeeded" and statuses["svc-0015"] == "waiting"  # carried / not reached yet
    for format in control.Format:
        document = control.read_export(control.export(going, format), f"x.{format.value}")
        assert control.verify(document, full).verified, format
    # The runs may be given in any order; a run of another chain is refused.
    shuffled = list(full)
    random.Random(4).shuffle(shuffled)
    assert evacuation_audit.derive(shuffled, "default", UI) == record("evacuation_chain_aborted")
    with pytest.raises(audit.NotAuditable, match="not one chain"):
        evacuation_audit.derive([full[0], histories("evacuation_terminated")[0]], "default", UI)


def test_other_workflows_are_not_audited_as_evacuations_and_failovers_are_as_before() -> None:
    for name in ("guardian_fired", "scheduled_drill_passed"):
        other = WorkflowHistory.from_json("x", (HISTORIES / f"{name}.json").read_text())
        with pytest.raises(control.NotAnAuditRun, match="audit covers failover, drill and evacuation runs"):
            control.derive_any([other], "default", UI)
    failover = WorkflowHistory.from_json("failover/checkout", (HISTORIES / "failover_succeeded.json").read_text())
    assert control.derive_any([failover], "default", UI) == audit.derive(failover, "default")


# --- a record with fields this code does not know: a failback, a capacity verdict ------------------


def _with_record_fields(name: str, top: dict[str, Any], service: dict[str, Any], workflow_type: str) -> WorkflowHistory:
    """The history with its final record carrying more fields, as a newer workflow would write them."""
    raw = json.loads(_text(name))
    for event in raw["events"]:
        if event["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED":
            event["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = workflow_type
        if event["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED":
            payload = event["workflowExecutionFailedEventAttributes"]["failure"]["applicationFailureInfo"]["details"]["payloads"][
                0
            ]
            data = json.loads(base64.b64decode(payload["data"]))
            data.update(top)
            for s in data["services"]:
                s.update(service)
            payload["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    return WorkflowHistory.from_json("failback/europe-west1/1", raw)


def test_a_failback_s_record_with_fields_unknown_here_is_audited_and_its_text_fields_shown() -> None:
    history = _with_record_fields(
        "evacuation_completed_with_failures",
        {"failback_of": "evacuation/europe-west1 run 2893edd9", "attempt": 2},
        {"capacity": "us-central1 has room: 40% spare", "weight": 3},
        "EvacuationWorkflow",
    )
    r = evacuation_audit.derive([history], "default", UI)
    assert r.kind == "failback" and r.provenance.workflow_type == "EvacuationWorkflow"
    assert r.details == {"failback_of": "evacuation/europe-west1 run 2893edd9"}  # text fields only
    assert all(c.details == {"capacity": "us-central1 has room: 40% spare"} for c in r.children)
    md = evacuation_audit_render.render_markdown(r)
    page = evacuation_audit_render.render_html(r)
    for text in (md, page):
        assert "evacuation/europe-west1 run 2893edd9" in text and "capacity: us-central1 has room: 40% spare" in text
    document = control.read_export(page, "failback.html")
    assert control.verify(document, [history]).verified


# --- renderings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_markdown_and_html_name_every_service_its_run_the_trigger_the_aborts_and_every_run(name: str) -> None:
    r = record(name)
    md = evacuation_audit_render.render_markdown(r)
    page = evacuation_audit_render.render_html(r)
    for text in (md, page):
        assert r.trigger.by in text and r.summary in text and r.provenance.chain_sha256 in text
        for c in r.children:
            assert c.service in text and c.status in text
            if c.run_id:
                assert c.run_id in text and (c.link or "") in text
        for action in r.operator_actions:
            assert action.identity in text and action.by in text
        for run in r.provenance.runs:
            assert run.run_id in text and run.history_sha256 in text
    assert md.endswith("\n" + evacuation_audit.marker(r) + "\n") and page.endswith(
        "</body></html>\n" + evacuation_audit.marker(r) + "\n"
    )
    mark = evacuation_audit.read_marker(md)
    assert mark is not None and [x.run_id for x in mark.runs] == [x.run_id for x in r.provenance.runs]
    assert audit.read_embedded_record(page) == json.loads(r.model_dump_json())


@pytest.mark.parametrize("name", NAMES)
def test_the_gantt_has_one_bar_per_child_run_grouped_by_tier_and_a_mark_for_each_service_without_one(name: str) -> None:
    r = record(name)
    svg = evacuation_audit_render.gantt_svg(r)
    bars = re.findall(r'<rect class="child-bar" data-service="([^"]+)" data-group="([^"]+)" data-status="([^"]+)"', svg)
    ran = [c for c in r.children if c.run_id]
    assert [(c.service, c.group, c.status) for c in ran] == bars
    assert len(re.findall(r'<rect class="no-run"', svg)) == len(r.children) - len(ran)
    assert re.findall(r'<rect class="tier-band" data-group="([^"]+)"', svg) == [g.name for g in r.groups]
    assert len(re.findall(r'<rect class="failback-bar"', svg)) == sum(1 for c in r.children if c.failback)
    assert len(re.findall(r'<line class="continue-mark"', svg)) == len(r.provenance.runs) - 1 + (len(r.provenance.runs) > 1)
    colours = dict(re.findall(r'data-status="([^"]+)" x="[^"]+" y="[^"]+" width="[^"]+" height="10" rx="2" fill="([^"]+)"', svg))
    assert all(colours[s] == evacuation_audit_render.STATUS_COLOUR[s] for s in colours)


def test_an_ungraceful_service_s_owed_changes_and_what_was_left_changed_are_shown() -> None:
    r = record("evacuation_completed_with_failures")
    first = r.children[0].model_copy(update={"ungraceful": True, "owed": ["step 'drain europe-west1': set scaler 0"]})
    second = r.children[1].model_copy(update={"left_changed": ["DNS record svc-0001.gen.example.com."]})
    changed = r.model_copy(update={"children": [first, second, *r.children[2:]]})
    md = evacuation_audit_render.render_markdown(changed)
    page = evacuation_audit_render.render_html(changed)
    assert "## Owed" in md and "svc-0000: step 'drain europe-west1': set scaler 0" in md
    assert "## Left changed" in md and "svc-0001: DNS record svc-0001.gen.example.com." in md
    assert 'id="owed"' in page and 'id="left-changed"' in page and "ungraceful" in page


def test_no_value_breaks_out_of_a_markdown_cell_or_an_html_link() -> None:
    r = record("evacuation_completed_with_failures")
    hostile = r.children[1].model_copy(update={"error": "a | b <script>alert(1)</script> ](javascript:x)"})
    r = r.model_copy(update={"children": [r.children[0], hostile, *r.children[2:]]})
    md = evacuation_audit_render.render_markdown(r)
    [row] = [line for line in md.splitlines() if line.startswith("| svc-0001 ")]
    assert row.count(" | ") == len(evacuation_audit_render.CHILD_HEADER) - 1 and "<script>" not in row
    assert "<script>alert" not in evacuation_audit_render.render_html(r).split('id="evac-audit-record"')[0]


# --- verify --------------------------------------------------------------------------------------


@pytest.mark.parametrize("format", list(control.Format))
def test_every_export_of_a_chain_verifies_against_every_run_and_the_raw_export_reads_back(format: control.Format) -> None:
    r = record("evacuation_chain_aborted")
    text = control.export(r, format)
    document = control.read_export(text, f"x.{format.value}")
    assert isinstance(document.marker, evacuation_audit.EvacuationExportMarker)
    result = control.verify(document, histories("evacuation_chain_aborted"))
    assert result.verified and result.runs == tuple(x.run_id for x in r.provenance.runs)
    assert result.history_sha256 == r.provenance.chain_sha256 and result.facts_checked > 100
    raw = control.raw(r, histories("evacuation_chain_aborted"))
    assert json.loads(raw)[0]["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert control.verify(document, control.histories_from_file(raw, WORKFLOW_ID, "raw.json")).verified
    single = record("evacuation_terminated")
    raw_one = control.raw(single, histories("evacuation_terminated"))
    assert isinstance(json.loads(raw_one), dict)  # one run: a history, as Temporal writes it
    assert control.verify(
        control.read_export(control.export(single, format), "x"), control.histories_from_file(raw_one, WORKFLOW_ID, "r")
    ).verified


def test_a_tampered_fact_is_named_by_its_path() -> None:
    exported = json.loads(control.export(record("evacuation_chain_aborted"), control.Format.JSON))
    exported["children"][7]["status"] = "succeeded"
    result = control.verify(control.read_export(json.dumps(exported), "x.json"), histories("evacuation_chain_aborted"))
    assert not result.verified
    assert (result.first_difference or "").startswith(
        'children[7].status: the export says "succeeded", the history says "failed"'
    )
    exported = json.loads(control.export(record("evacuation_chain_aborted"), control.Format.JSON))
    exported["operator_actions"][0]["by"] = "mallory@desk"
    result = control.verify(control.read_export(json.dumps(exported), "x.json"), histories("evacuation_chain_aborted"))
    assert not result.verified and (result.first_difference or "").startswith("operator_actions[0].by")


def test_a_tampered_run_a_missing_run_and_a_forged_chain_digest_fail_naming_the_run() -> None:
    r = record("evacuation_chain_aborted")
    document = control.read_export(control.export(r, control.Format.MD), "x.md")
    runs = histories("evacuation_chain_aborted")
    raw = json.loads(runs[1].to_json())
    raw["events"][3]["eventTime"] = "2020-01-01T00:00:00Z"
    forged = [runs[0], WorkflowHistory.from_json(WORKFLOW_ID, raw), runs[2]]
    result = control.verify(document, forged)
    assert not result.verified and (result.first_difference or "").startswith(
        "provenance.runs[1].history_sha256: the export says"
    )
    result = control.verify(document, [runs[0], runs[2]])
    assert not result.verified and (result.first_difference or "").startswith(
        f"provenance.runs[1].run_id: the export was made from run {runs[1].run_id}"
    )
    text = control.export(r, control.Format.MD).replace(r.provenance.chain_sha256, "0" * 64)
    result = control.verify(control.read_export(text, "x.md"), runs)
    assert not result.verified and (result.first_difference or "").startswith("provenance.chain_sha256")
    # A line of the Markdown changed: named where it differs.
    text = control.export(r, control.Format.MD).replace("| svc-0007 | api | failed |", "| svc-0007 | api | succeeded |")
    result = control.verify(control.read_export(text, "x.md"), runs)
    assert not result.verified and (result.first_difference or "").startswith("line ")


def test_the_web_ui_the_links_point_at_is_taken_from_the_export() -> None:
    r = record("evacuation_terminated", web_ui="https://temporal.example.com")
    assert all(c.link is None or c.link.startswith("https://temporal.example.com/namespaces/") for c in r.children)
    assert any(c.link for c in r.children)
    document = control.read_export(control.export(r, control.Format.HTML), "x.html")
    assert control.verify(document, histories("evacuation_terminated")).verified
    bare = record("evacuation_terminated", web_ui=None)
    assert all(c.link is None for c in bare.children)
    hostile = record("evacuation_terminated", web_ui="javascript:alert(1)//")
    assert all(c.link is None for c in hostile.children) and "href" not in evacuation_audit_render.render_html(hostile)
    assert control.verify(
        control.read_export(control.export(bare, control.Format.MD), "x.md"), histories("evacuation_terminated")
    ).verified
