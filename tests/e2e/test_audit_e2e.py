"""Auditing real runs end to end, as an auditor would with the CLI: `evac audit show`, `export`
(JSON against the published schema, Markdown, HTML opened in a real browser, the raw history),
`verify` of true and tampered exports and histories, and `evac audit report` flagging a service
that was never drilled and giving its readiness over the window after an `evac readiness check`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evac.readiness import STATE_WORDS
from tests.browser.conftest import Browser, open_browser
from tests.conftest import DEMO, REGIONAL
from tests.e2e.conftest import E2E

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "docs" / "audit-record.schema.json").read_text())

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from open_browser()


@pytest.fixture(scope="module")
def failed_over(e2e_stack: E2E) -> list[dict[str, Any]]:
    e2e_stack.admin.post("/emulator/v1/reset").raise_for_status()
    return e2e_stack.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--wait", "--reason", "audit e2e")


def test_show_prints_the_timeline_and_its_json_follows_the_published_schema(e2e_stack: E2E, failed_over: list[dict[str, Any]]):
    checkout = next(r for r in failed_over if r["service"] == "checkout")
    shown = e2e_stack.evac("audit", "show", "checkout", "--run-id", checkout["run_id"])
    assert shown.returncode == 0, shown.stderr + shown.stdout
    for number, _ in enumerate(checkout["steps"], start=1):  # (names wrap in the table's cells)
        assert f"step {number} '" in shown.stdout
    assert checkout["run_id"] in shown.stdout and "audit e2e" in shown.stdout

    record = e2e_stack.evac_json("audit", "show", "failover/checkout", "--run-id", checkout["run_id"])
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert record["provenance"]["run_id"] == checkout["run_id"] and record["provenance"]["closed"]
    assert record["trigger"]["reason"] == "audit e2e" and record["outcome"] == "succeeded"
    assert [s["after"] for s in record["run"]["steps"]] == [s["after"] for s in checkout["steps"]]
    assert record["recovery"]["source"] == "run" and record["recovery"]["seconds"] > 0  # the run's own measurement
    assert any(a["role"] == "step" and a["activity"] == "set_backend_capacity" for a in record["activities"])


def test_every_export_verifies_and_a_tampered_one_fails_naming_the_fact(
    e2e_stack: E2E, failed_over: list[dict[str, Any]], tmp_path: Path, browser: Browser
):
    catalog = next(r for r in failed_over if r["service"] == "catalog")
    files = {}
    for format in ("json", "md", "html"):
        files[format] = tmp_path / f"catalog.{format}"
        made = e2e_stack.evac("audit", "export", "catalog", "--format", format, "-o", str(files[format]))
        assert made.returncode == 0, made.stderr + made.stdout
        assert catalog["run_id"] in made.stdout
    raw = tmp_path / "catalog-history.json"
    assert e2e_stack.evac("audit", "export", "catalog", "--raw", "-o", str(raw)).returncode == 0
    assert json.loads(raw.read_text())["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"

    for format, path in files.items():
        checked = e2e_stack.evac_json("audit", "verify", str(path))
        assert checked["verified"] and checked["format"] == format and checked["run_id"] == catalog["run_id"], checked
        text = e2e_stack.evac("audit", "verify", str(path), "--history", str(raw))
        assert text.returncode == 0 and text.stdout.startswith("verified:"), text.stderr + text.stdout

    # The HTML opens in a real browser, clean, with one bar per step.
    opened = browser.open(files["html"], screenshot=tmp_path / "catalog.png")
    opened.assert_clean()
    assert opened.page.locator("svg rect.step-bar").count() == len(catalog["steps"])  # type: ignore[attr-defined]
    assert (tmp_path / "catalog.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A tampered export: the drained capacity claimed otherwise.
    exported = json.loads(files["json"].read_text())
    drain = next(i for i, s in enumerate(exported["run"]["steps"]) if s["kind"] == "drain")
    exported["run"]["steps"][drain]["after"]["capacity_scaler"] = 0.75
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(exported, indent=2))
    refused = e2e_stack.evac("audit", "verify", str(tampered))
    assert refused.returncode == 1, refused.stderr + refused.stdout
    assert "NOT verified" in refused.stdout and f"run.steps[{drain}].after.capacity_scaler" in refused.stdout

    # A tampered history: one event's time moved.
    history = json.loads(raw.read_text())
    history["events"][-1]["eventTime"] = "2020-01-01T00:00:00Z"
    forged = tmp_path / "forged-history.json"
    forged.write_text(json.dumps(history))
    result = e2e_stack.evac_json("audit", "verify", str(files["md"]), "--history", str(forged), expect=1)
    assert not result["verified"] and result["first_difference"].startswith("provenance.history_sha256")


def test_bad_audit_input_is_refused_in_one_sentence(e2e_stack: E2E, tmp_path: Path):
    missing = e2e_stack.evac("audit", "show", "no-such-service")
    assert missing.returncode == 3 and "failover/no-such-service" in missing.stderr
    bad_run_id = e2e_stack.evac("audit", "export", "checkout", "--run-id", "nope")
    assert bad_run_id.returncode == 2 and "--run-id 'nope'" in bad_run_id.stderr
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    refused = e2e_stack.evac("audit", "verify", str(notes))
    assert refused.returncode == 2 and "not an Evac audit export" in refused.stderr
    absent = e2e_stack.evac("audit", "verify", str(tmp_path / "absent.json"))
    assert absent.returncode == 2 and "does not exist" in absent.stderr


def test_the_evidence_report_lists_a_never_drilled_service_first(
    e2e_stack: E2E, failed_over: list[dict[str, Any]], tmp_path: Path, browser: Browser
):
    # The regional topology's service has failovers in other tests at most, never a drill here.
    topology = REGIONAL / "topology.yaml"
    # One readiness evaluation of its plan, the newest: the report's latest state for payments.
    checked = e2e_stack.evac("readiness", "check", str(REGIONAL / "failover.yaml"), "--output", "json")
    assert checked.returncode in (0, 1), checked.stderr + checked.stdout
    state = json.loads(checked.stdout)["state"]
    markdown = e2e_stack.evac("audit", "report", "--topology", str(topology), "--since", "1d")
    assert markdown.returncode == 0, markdown.stderr + markdown.stdout
    gaps = markdown.stdout.split("## Gaps", 1)[1].split("\n## ", 1)[0]
    assert "payments" in gaps and "never" in gaps.lower()
    assert markdown.stdout.index("## Gaps") < markdown.stdout.index("checkout")  # gaps first; checkout: runs, not in the topology
    payments = markdown.stdout.split("### payments", 1)[1].split("\n### ", 1)[0]
    readiness = next(line for line in payments.splitlines() if line.startswith("- Readiness: "))
    assert " evaluation(s) in the window that covered it (" in readiness, payments
    assert f"- Latest readiness: {STATE_WORDS[state]} (" in payments, payments
    assert "a service ready with warnings counts as ready" in markdown.stdout

    page = tmp_path / "evidence.html"
    written = e2e_stack.evac("audit", "report", "--topology", str(topology), "--format", "html", "-o", str(page))
    assert written.returncode == 0 and "never drilled" in written.stdout, written.stderr + written.stdout
    opened = browser.open(page, screenshot=tmp_path / "evidence.png")
    opened.assert_clean()
    body = opened.page.inner_text("body")  # type: ignore[attr-defined]
    assert "payments" in body and "Readiness in the window" in body and "Longest not-ready stretch" in body

    refused = e2e_stack.evac("audit", "report", "--topology", str(topology), "--since", "forever")
    assert refused.returncode == 2 and "--since 'forever'" in refused.stderr
