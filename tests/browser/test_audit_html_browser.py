"""The HTML audit export in a real headless browser: it loads cleanly, fetches nothing, draws one
Gantt bar per step and one per compensated step, shows who approved, and prints to PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from evac.audit import record as audit
from evac.audit import render as audit_render
from evac.runs import StepStatus

HISTORIES = Path(__file__).parent.parent / "workflow" / "histories"


def record_of(name: str) -> audit.AuditRecord:
    text = (HISTORIES / f"{name}.json").read_text()
    return audit.derive(WorkflowHistory.from_json("failover/checkout", text), "default")


@pytest.mark.parametrize("name", ["drill_approved_paused", "failover_rolled_back"])
def test_the_html_export_opens_cleanly_and_draws_the_run(name: str, browser: Any, tmp_path: Path) -> None:
    record = record_of(name)
    path = tmp_path / f"{name}.html"
    path.write_text(audit_render.render_html(record), encoding="utf-8")
    shot = tmp_path / f"{name}.png"

    opened = browser.open(path, screenshot=shot)

    opened.assert_clean()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = opened.page
    assert page.locator("svg rect.step-bar").count() == len(record.run.steps)
    drawn = page.eval_on_selector_all("svg rect.step-bar", "bars => bars.map(b => b.getAttribute('data-step'))")
    assert drawn == [s.name for s in record.run.steps]
    undone = [s for s in record.run.steps if s.status in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED)]
    assert undone and page.locator("svg rect.compensation-bar").count() == len(undone)
    widths = page.eval_on_selector_all("svg rect.step-bar", "bars => bars.map(b => b.getBoundingClientRect().width)")
    assert min(widths) >= 3  # every bar is visible on screen, however short the step
    body = page.inner_text("body")
    for step in record.run.steps:
        assert step.name in body
    assert record.outcome in body
    for step in record.run.steps:
        if step.approval is not None:
            assert f"approved by {step.approval.by}" in body
    assert audit.read_embedded_record(page.content()) is not None

    pdf = tmp_path / f"{name}.pdf"
    page.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_the_drills_page_names_its_approver_and_the_pause(browser: Any, tmp_path: Path) -> None:
    record = record_of("drill_approved_paused")
    path = tmp_path / "drill.html"
    path.write_text(audit_render.render_html(record), encoding="utf-8")
    opened = browser.open(path)
    opened.assert_clean()
    approvals = opened.page.inner_text("#approvals")
    assert "alice@laptop" in approvals and "approved" in approvals and "alice, bob" in approvals
    actions = opened.page.inner_text("#operator-actions")
    assert "pause" in actions and "resume" in actions and "dave@desk" in actions
    tooltip = opened.page.eval_on_selector("svg rect.step-bar[data-step='go-ahead'] title", "t => t.textContent")
    assert "approved by alice@laptop" in tooltip
