"""What an auditor reads of a data-tier run (issue 23), derived from its recorded history: the
replication lag beside the RPO target, the point of no return, what is left to do, the window of
writes a promotion may have lost; the same in the terminal, Markdown and HTML."""

from __future__ import annotations

from rich.console import Console

from evac.audit import record as audit
from evac.audit.render import render_text
from evac.control import audit as control
from tests.unit.test_audit_record import history


def rows(name: str) -> dict[str, str]:
    from evac.audit.render import summary_rows

    return dict(summary_rows(audit.derive(history(name), "default")))


def test_a_drill_s_lag_is_shown_beside_its_rpo_target() -> None:
    summary = rows("data_drill_passed")
    assert summary["replication lag (RPO)"] == ("step 'switchover': 4s (fake replica_lag); against a target of 30s: target met")
    assert "point of no return" not in summary


def test_a_run_past_its_point_of_no_return_says_so_everywhere() -> None:
    record = audit.derive(history("data_past_point_of_no_return"), "default")
    assert record.outcome == "stopped_past_point_of_no_return"
    summary = rows("data_past_point_of_no_return")
    assert summary["point of no return"] == (
        "crossed at step 'promote' (it cannot be undone); the run stopped after it and rolled nothing back"
    )
    assert summary["data loss window"].startswith("step 'promote': writes to the old primary from ")
    assert summary["replication lag (RPO)"] == "step 'promote': 1s (fake replica_lag)"
    markdown = control.export(record, control.Format.MD)
    assert "## Left to do" in markdown and "- step 'dns' (shift_dns): failed" in markdown
    html = control.export(record, control.Format.HTML)
    assert '<section id="left-to-do"' in html and "step &#x27;dns&#x27; (shift_dns): failed" in html
    console = Console(width=200, record=True)
    console.print(render_text(record))
    text = console.export_text()
    assert "point of no return" in text and "data loss window" in text
    # Nothing was compensated: the drain stayed as the promotion left it.
    assert not [call for call in record.activities if call.role == "compensation"]
