"""An evacuation's HTML audit export in a real headless browser: it loads cleanly and fetches
nothing, draws one Gantt bar per child run under its tier's heading (coloured by the service's
outcome, each visible), a hatched mark for a service that had no run, links each run to the Web UI,
and prints to PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evac.audit import evacuation as evacuation_audit
from evac.audit import evacuation_render as evacuation_audit_render
from evac.control import audit as control

HISTORIES = Path(__file__).parent.parent / "workflow" / "histories"


def record_of(name: str) -> evacuation_audit.EvacuationAuditRecord:
    path = HISTORIES / f"{name}.json"
    path = path if path.exists() else HISTORIES / "chains" / f"{name}.json"
    runs = control.histories_from_file(path.read_text(), "evacuation/europe-west1", path.name)
    return evacuation_audit.derive(runs, "default", "http://localhost:8233")


@pytest.mark.parametrize("name", ["evacuation_chain_aborted", "evacuation_aborted_rollback_all"])
def test_the_evacuation_html_draws_one_bar_per_child_run_by_tier(name: str, browser: Any, tmp_path: Path) -> None:
    record = record_of(name)
    path = tmp_path / f"{name}.html"
    path.write_text(evacuation_audit_render.render_html(record), encoding="utf-8")
    shot = tmp_path / f"{name}.png"

    opened = browser.open(path, screenshot=shot)

    opened.assert_clean()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = opened.page
    ran = [c for c in record.children if c.run_id]
    bars = page.eval_on_selector_all(
        "svg rect.child-bar",
        "bars => bars.map(b => ({service: b.dataset.service, group: b.dataset.group, status: b.dataset.status,"
        " fill: getComputedStyle(b).fill, top: b.getBoundingClientRect().top, width: b.getBoundingClientRect().width}))",
    )
    assert [(b["service"], b["group"], b["status"]) for b in bars] == [(c.service, c.group, c.status) for c in ran]
    assert min(b["width"] for b in bars) >= 3  # every run is visible, however short
    # Grouped by tier: each bar lies below its own tier's heading and above the next tier's.
    bands = page.eval_on_selector_all(
        "svg rect.tier-band", "bands => bands.map(b => [b.dataset.group, b.getBoundingClientRect().top])"
    )
    assert [group for group, _ in bands] == [g.name for g in record.groups]
    tops = dict(bands)
    for bar in bars:
        later = [top for group, top in bands if top > tops[bar["group"]]]
        assert tops[bar["group"]] < bar["top"] < min(later, default=float("inf")), bar
    # Coloured by outcome: one colour per status, different statuses different colours.
    colour_of: dict[str, set[str]] = {}
    for bar in bars:
        colour_of.setdefault(bar["status"], set()).add(bar["fill"])
    assert all(len(fills) == 1 for fills in colour_of.values()), colour_of
    assert len({next(iter(f)) for f in colour_of.values()}) == len(colour_of)
    assert page.locator("svg rect.no-run").count() == len(record.children) - len(ran)
    assert page.locator("svg rect.failback-bar").count() == sum(1 for c in record.children if c.failback)
    # Each run links to its page in the Web UI (a link, never fetched on load: assert_clean above).
    links = page.eval_on_selector_all("#services a", "links => links.map(a => a.href)")
    assert links == [c.link for c in ran]
    body = page.inner_text("body")
    assert record.summary in body and record.trigger.by in body
    for action in record.operator_actions:
        assert action.by in page.inner_text("#operator-actions")
    tooltip = page.eval_on_selector(f"svg rect.child-bar[data-service='{ran[0].service}'] title", "t => t.textContent")
    assert ran[0].run_id in tooltip

    pdf = tmp_path / f"{name}.pdf"
    page.pdf(path=str(pdf), format="A4")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
