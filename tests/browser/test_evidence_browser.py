"""The HTML evidence report in a real headless browser: it opens clean (no console or page
errors, nothing fetched), names the gap services first, and plots one point per measurement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from evac.audit.evidence import EvidenceReport, build_report, render_html
from evac.control.findable import RunRow

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _row(n: int, service: str, kind: str, days_ago: float, outcome: str, trigger: str, recovery: float | None) -> RunRow:
    started = NOW - timedelta(days=days_ago)
    return RunRow(
        workflow_id=f"evac-{kind}-{service}-{n:03d}",
        run_id=f"0190c0de-{n:04d}-7000-8000-00000000{n:04d}",
        kind=kind,
        service=service,
        source="europe-west1",
        target="us-central1",
        trigger=trigger,
        initiator="alice@laptop",
        plan=f"{service}-dr",
        plan_digest="9f2c",
        started_at=started,
        ended_at=started + timedelta(minutes=14),
        status="completed",
        outcome=outcome,
        recovery_seconds=recovery,
    )


def realistic_report() -> EvidenceReport:
    """Four services over 90 days: checkout drilled weekly, catalog drilled long ago, payments
    never; failovers by alert and by hand; a few that rolled back."""
    rows: list[RunRow] = []
    n = 0
    for week in range(12):  # checkout: a scheduled drill every week, recovery creeping up
        n += 1
        outcome = "rolled_back" if week in (3, 8) else "passed"
        rows.append(_row(n, "checkout", "drill", 84 - 7 * week, outcome, "schedule", 95.0 + 6 * week + (40 if week == 8 else 0)))
    for days_ago, trigger, outcome, seconds in ((61, "alert", "succeeded", 140.0), (33, "manual", "rolled_back", None)):
        n += 1
        rows.append(_row(n, "checkout", "failover", days_ago, outcome, trigger, seconds))
    for days_ago, seconds in ((80, 410.0), (66, 380.5), (50, 355.0), (29, 362.25), (12, 330.0), (4, 298.0)):
        n += 1
        rows.append(_row(n, "catalog", "failover", days_ago, "succeeded", "alert", seconds))
    n += 1
    catalog_old_pass = _row(n, "catalog", "drill", 140, "passed", "manual", 505.0)
    for days_ago, outcome in ((70, "not_ready"), (45, "rolled_back")):
        n += 1
        rows.append(_row(n, "search", "drill", days_ago, outcome, "schedule", None))
    n += 1
    rows.append(_row(n, "search", "dry_run", 44, "succeeded", "manual", None))
    return build_report(
        rows,
        ["checkout", "catalog", "search", "payments"],
        now=NOW,
        since=timedelta(days=90),
        policy=timedelta(days=90),
        last_passed={"catalog": catalog_old_pass},
        namespace="production",
    )


def test_the_evidence_report_opens_clean_and_shows_the_gaps_and_trends(browser, tmp_path: Path):
    report = realistic_report()
    page_file = tmp_path / "evidence.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    screenshot = tmp_path / "evidence.png"

    opened = browser.open(page_file, screenshot=screenshot)
    opened.assert_clean()
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000

    page = opened.page
    first_section = page.locator("main > section").first
    assert first_section.get_attribute("id") == "gaps"
    assert page.locator("#gaps .gap-service").all_inner_texts() == ["payments", "search", "catalog"]
    assert "never drilled" in page.locator("#gaps li.never-drilled").first.inner_text()
    assert "90d" in page.locator("#gaps .policy").inner_text()

    measured = {s.service: len(s.recovery_trend) for s in report.services if s.recovery_trend}
    assert measured == {"checkout": 13, "catalog": 6}
    for service, points in measured.items():
        chart = page.locator(f'svg.trend[data-service="{service}"]')
        assert chart.count() == 1
        assert chart.locator("circle.trend-point").count() == points
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100  # drawn, not collapsed
    assert page.locator('svg.trend[data-service="payments"]').count() == 0  # nothing measured, no empty chart
    assert page.locator("#service-payments").inner_text().count("No recovery measured in the window") == 1


def test_the_evidence_report_prints_without_errors(browser, tmp_path: Path):
    page_file = tmp_path / "evidence.html"
    page_file.write_text(render_html(realistic_report()), encoding="utf-8")
    opened = browser.open(page_file)
    pdf = tmp_path / "evidence.pdf"
    opened.page.emulate_media(media="print")
    opened.page.pdf(path=str(pdf), format="A4")
    opened.assert_clean()
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    assert opened.page.locator("#gaps").is_visible()
