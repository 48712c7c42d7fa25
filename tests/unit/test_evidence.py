"""The evidence across runs: gaps first, pass rates, last passed drills, failovers by trigger,
each service's readiness over the window, and the Markdown and HTML renderings (the HTML
self-contained and the same every time)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from evac.audit.evidence import (
    EvidenceReport,
    ReadinessEvaluation,
    build_report,
    lookback,
    readiness_over,
    render_html,
    render_markdown,
)
from evac.control.findable import RunRow
from evac.readiness import State

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TOPOLOGY = Path(__file__).parents[2] / "plans" / "demo" / "topology.yaml"
DAYS_90 = timedelta(days=90)
_ids = count(1)


def run(
    service: str | None,
    kind: str,
    days_ago: float,
    outcome: str | None,
    *,
    trigger: str = "manual",
    recovery: float | None = None,
) -> RunRow:
    started = NOW - timedelta(days=days_ago)
    n = next(_ids)
    return RunRow(
        workflow_id=f"evac-{kind}-{service}-{n}",
        run_id=f"run-{n}",
        kind=kind,
        service=service,
        source="europe-west1",
        target="us-central1",
        trigger=trigger,
        initiator="alice@laptop",
        plan="demo",
        plan_digest="abc",
        started_at=started,
        ended_at=None if outcome is None else started + timedelta(minutes=10),
        status="running" if outcome is None else "completed",
        outcome=outcome,
        recovery_seconds=recovery,
    )


def report_of(runs: list[RunRow], services: list[str], **kwargs: object) -> EvidenceReport:
    """The report at NOW; a 90-day window and policy unless given."""
    kwargs.setdefault("since", DAYS_90)
    kwargs.setdefault("policy", DAYS_90)
    return build_report(runs, services, now=NOW, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def typical() -> EvidenceReport:
    runs = [
        run("checkout", "drill", 5, "passed", trigger="schedule", recovery=120.0),
        run("checkout", "drill", 20, "rolled_back", trigger="schedule", recovery=300.0),
        run("checkout", "drill", 40, "passed", trigger="schedule", recovery=150.0),
        run("checkout", "drill", 1, None, trigger="manual"),  # running: not counted as ended
        run("checkout", "failover", 10, "succeeded", trigger="alert", recovery=90.0),
        run("checkout", "failover", 12, "rolled_back", trigger="alert"),
        run("checkout", "failover", 30, "succeeded", trigger="manual", recovery=80.0),
        run("checkout", "dry_run", 2, "succeeded"),
        run("catalog", "drill", 120, "passed", recovery=200.0),  # before the window, older than the policy
        run("catalog", "failover", 3, "succeeded", trigger="manual"),
        run("search", "drill", 6, "rolled_back"),
        run("search", "dry_run", 4, "succeeded"),
        run("legacy", "drill", 8, "passed"),
    ]
    return report_of(runs, ["checkout", "catalog", "search", "payments"], since=timedelta(days=180))


def test_a_never_drilled_service_is_listed_first(typical: EvidenceReport):
    assert typical.never_drilled == ["payments", "search"]  # search drilled, but never passed
    assert [s.service for s in typical.services][:2] == ["payments", "search"]
    assert typical.services[0].gap == "never_drilled" and typical.services[0].drills_run == 0


def test_an_overdue_service_follows_the_never_drilled_with_its_last_pass(typical: EvidenceReport):
    assert typical.overdue == ["catalog"]
    catalog = typical.services[2]
    assert catalog.service == "catalog" and catalog.gap == "overdue"
    assert catalog.last_passed is not None and catalog.last_passed.started_at == NOW - timedelta(days=120)
    assert typical.gaps == 3


def test_services_in_good_standing_come_next_and_unknown_ones_last(typical: EvidenceReport):
    assert [s.service for s in typical.services] == ["payments", "search", "catalog", "checkout", "legacy"]
    assert typical.services[3].gap is None
    legacy = typical.services[4]
    assert not legacy.in_topology and legacy.gap is None and typical.not_in_topology == ["legacy"]


def test_pass_rate_counts_ended_drills_in_the_window():
    runs = [
        run("checkout", "drill", 5, "passed"),
        run("checkout", "drill", 20, "rolled_back"),
        run("checkout", "drill", 40, "passed"),
        run("checkout", "drill", 60, "not_ready"),
        run("checkout", "drill", 1, None),
        run("checkout", "drill", 100, "failed"),  # before the 90-day window
    ]
    checkout = report_of(runs, ["checkout"]).services[0]
    assert (checkout.drills_run, checkout.drills_passed, checkout.drills_running) == (4, 2, 1)
    assert checkout.pass_rate == 0.5
    assert checkout.drill_outcomes == {"not_ready": 1, "passed": 2, "rolled_back": 1}


def test_a_service_without_an_ended_drill_has_no_pass_rate(typical: EvidenceReport):
    payments = typical.services[0]
    assert payments.pass_rate is None and payments.last_passed is None


def test_failovers_are_counted_by_trigger_and_the_unsuccessful_named():
    runs = [
        run("checkout", "failover", 10, "succeeded", trigger="alert"),
        run("checkout", "failover", 12, "rolled_back", trigger="alert"),
        run("checkout", "failover", 30, "succeeded", trigger="manual"),
        run("checkout", "failover", 2, None, trigger="schedule"),  # still running: counted, not a failure
        run("checkout", "failover", 50, "rollback_incomplete", trigger="manual"),
        run("checkout", "drill", 5, "passed", trigger="schedule"),
    ]
    checkout = report_of(runs, ["checkout"]).services[0]
    assert checkout.failovers == 5
    assert checkout.failovers_by_trigger == {"alert": 2, "manual": 2, "schedule": 1}
    assert [link.outcome for link in checkout.failovers_not_succeeded] == ["rolled_back", "rollback_incomplete"]


def test_dry_runs_count_for_nothing_but_are_reported_as_seen():
    runs = [run("checkout", "dry_run", 1, "succeeded", recovery=5.0), run("checkout", "dry_run", 2, "passed")]
    report = report_of(runs, ["checkout"])
    checkout = report.services[0]
    assert report.dry_runs_seen == 2
    assert (checkout.drills_run, checkout.failovers, checkout.recovery_trend, checkout.gap) == (0, 0, [], "never_drilled")


def test_a_passed_drill_found_outside_the_window_settles_the_gap():
    old = run("catalog", "drill", 30, "passed")
    report = build_report([], ["catalog"], now=NOW, since=timedelta(days=7), policy=DAYS_90, last_passed={"catalog": old})
    assert report.gaps == 0 and report.services[0].last_passed is not None
    assert report.services[0].last_passed.workflow_id == old.workflow_id
    assert report.services[0].drills_run == 0  # outside the window: not a drill run of this window


def test_the_newest_of_the_passes_wins():
    older, newer = run("catalog", "drill", 100, "passed"), run("catalog", "drill", 95, "passed")
    report = report_of([newer], ["catalog"], last_passed={"catalog": older})
    assert report.services[0].last_passed is not None and report.services[0].last_passed.run_id == newer.run_id
    assert report.overdue == ["catalog"]


def test_the_most_overdue_service_is_listed_first():
    runs = [run("alpha", "drill", 100, "passed"), run("beta", "drill", 300, "passed")]
    report = build_report(runs, ["alpha", "beta"], now=NOW, since=timedelta(days=365), policy=DAYS_90)
    assert report.overdue == ["beta", "alpha"]


def test_the_recovery_trend_is_oldest_first_with_drills_and_failovers(typical: EvidenceReport):
    checkout = next(s for s in typical.services if s.service == "checkout")
    assert [(p.seconds, p.kind) for p in checkout.recovery_trend] == [
        (150.0, "drill"),
        (80.0, "failover"),
        (300.0, "drill"),
        (90.0, "failover"),
        (120.0, "drill"),
    ]


def test_the_rpo_trend_is_the_replication_lag_runs_recorded_oldest_first():
    lagging = [
        run("checkout", "drill", 9, "passed", recovery=100.0).model_copy(update={"replication_lag_seconds": 2.0}),
        run("checkout", "failover", 4, "succeeded").model_copy(update={"replication_lag_seconds": 40.0}),
        run("checkout", "drill", 2, "passed", recovery=90.0),  # no data step: no reading
    ]
    report = report_of(lagging, ["checkout"])
    [checkout] = report.services
    assert [(p.seconds, p.kind) for p in checkout.rpo_trend] == [(2.0, "drill"), (40.0, "failover")]
    words = (
        "Replication lag before role changes (RPO, oldest first): 2 measured; min 2.0 s, median 21.0 s, max 40.0 s, latest 40.0 s"
    )
    assert words in render_markdown(report)
    assert "Replication lag before role changes (RPO)" in render_html(report)
    assert "Replication lag" not in render_markdown(report_of(lagging[2:], ["checkout"]))


def test_lookbacks_read_as_the_flags_spell_them():
    assert [lookback(t) for t in (DAYS_90, timedelta(hours=12), timedelta(minutes=90), timedelta(seconds=30))] == [
        "90d",
        "12h",
        "90m",
        "30s",
    ]


# --- rendering ------------------------------------------------------------------------------


def test_markdown_puts_the_gaps_first_and_names_every_service(typical: EvidenceReport):
    text = render_markdown(typical)
    sections = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert sections[0] == "Gaps"
    gaps = text.split("## Gaps", 1)[1].split("\n## ", 1)[0]
    assert "**Never drilled**: payments" in gaps and "**Never drilled**: search" in gaps
    assert "**Overdue**: catalog: last passed drill 2026-07-31 12:10Z (119d ago)" in gaps
    assert "within the last 90d" in gaps
    for service in ("checkout", "catalog", "search", "payments", "legacy"):
        assert f"### {service}" in text
    assert "### legacy (not in topology)" in text
    assert "- Generated at: 2026-11-28 12:00Z" in text
    assert "Dry runs seen in the window: 2" in text


def test_markdown_says_so_when_there_is_no_gap():
    report = report_of([run("checkout", "drill", 3, "passed", recovery=60.0)], ["checkout"])
    assert "No gaps: every service in the topology passed a drill within the last 90d." in render_markdown(report)
    assert '<p class="ok">No gaps: every service in the topology passed a drill within the last 90d.</p>' in render_html(report)


def test_markdown_keeps_identifiers_whole_in_code_spans_and_tables():
    report = report_of([run("checkout", "failover", 3, "rolled_back", trigger="manual", recovery=10.0)], ["checkout"])
    report.services[0].failovers_not_succeeded[0].workflow_id = "wf-`odd`"
    report.services[0].recovery_trend[0].workflow_id = "a|b"
    text = render_markdown(report)
    assert "- `` wf-`odd` `` run `run-" in text  # a longer fence than the backticks inside
    table_row = next(line for line in text.splitlines() if "10.0 s" in line and line.startswith("|"))
    assert table_row.count(" | ") == 4 and "`a\\|b`" in table_row  # the pipe escaped, the row still five cells


def test_a_capped_read_is_said_in_the_report():
    report = report_of([run("checkout", "drill", 3, "passed")], ["checkout"], row_cap=10_000)
    assert "Only the newest 10,000 runs were read" in render_markdown(report)
    assert "Only the newest 10,000 runs were read" in render_html(report)


def test_html_is_self_contained_and_fetches_nothing(typical: EvidenceReport):
    page = render_html(typical)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "@media print" in page
    assert re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.IGNORECASE) is None
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page and "@font-face" not in page


def test_html_names_gaps_first_with_the_policy(typical: EvidenceReport):
    page = render_html(typical)
    assert page.index('id="gaps"') < page.index('id="summary"') < page.index('id="services"')
    gaps = page.split('id="gaps"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r'<strong class="gap-service">([^<]+)</strong>', gaps) == ["payments", "search", "catalog"]
    assert "within the last 90d" in gaps


def test_html_has_one_point_per_recovery_measurement(typical: EvidenceReport):
    page = render_html(typical)
    checkout_chart = page.split('<svg class="trend" data-service="checkout"', 1)[1].split("</svg>", 1)[0]
    assert checkout_chart.count('<circle class="trend-point') == 5
    assert ">400 s</text>" in checkout_chart and ">300 s</text>" in checkout_chart  # y axis: 0 to 400 s in seconds


def test_html_escapes_every_value():
    runs = [run("checkout", "failover", 3, "rolled_back", trigger="manual", recovery=10.0)]
    report = report_of(runs, ["checkout"])
    report.services[0].failovers_not_succeeded[0].workflow_id = "<img src=x onerror=alert(1)>"
    report.services[0].recovery_trend[0].workflow_id = '"><script>alert(1)</script>'
    page = render_html(report)
    assert "<img" not in page and "<script" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_rendering_is_deterministic(typical: EvidenceReport):
    again = EvidenceReport.model_validate_json(typical.model_dump_json())
    assert render_html(typical) == render_html(again)
    assert render_markdown(typical) == render_markdown(again)


# --- the command's arguments, refused before connecting -------------------------------------


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    """``evac audit report`` with its arguments, no config file and nothing to connect to."""
    from evac.cli.evidence import report

    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("EVAC_DRILL_POLICY", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: a test that connected would fail
    app = typer.Typer()
    app.command()(report)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    return invoke


def test_a_bad_since_is_refused_naming_the_flag(command: Callable[..., Result]):
    result = command("--since", "9x", "--topology", str(TOPOLOGY))
    assert result.exit_code == 2 and "--since '9x' is not a lookback" in result.stderr


def test_a_bad_policy_is_refused_naming_the_flag(command: Callable[..., Result]):
    result = command("--policy", "0d", "--topology", str(TOPOLOGY))
    assert result.exit_code == 2 and "--policy '0d' must be more than nothing" in result.stderr


def test_a_bad_drill_policy_setting_is_refused_naming_the_variable(
    command: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EVAC_DRILL_POLICY", "quarterly")
    result = command("--topology", str(TOPOLOGY))
    assert result.exit_code == 2 and "drill_policy (EVAC_DRILL_POLICY or" in result.stderr and "'quarterly'" in result.stderr


def test_a_missing_topology_is_refused(command: Callable[..., Result], tmp_path: Path):
    result = command("--topology", str(tmp_path / "nowhere.yaml"))
    assert result.exit_code == 2 and "nowhere.yaml" in result.stderr and "file not found" in result.stderr


def test_the_drill_policy_setting_comes_from_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from evac.config import Settings
    from evac.errors import ConfigError

    config = tmp_path / "config.toml"
    monkeypatch.setenv("EVAC_CONFIG", str(config))
    monkeypatch.delenv("EVAC_DRILL_POLICY", raising=False)
    assert Settings.load().drill_policy == "90d"  # no file: the default
    config.write_text('drill_policy = "30d"\n')
    assert Settings.load().drill_policy == "30d"
    config.write_text("drill_policy = 30\n")
    with pytest.raises(
        ConfigError, match=rf"drill_policy \(EVAC_DRILL_POLICY or {re.escape(str(config))}\) '30' is not a lookback"
    ):
        Settings.load()


def test_the_recovery_chart_spans_its_runs_not_the_whole_window() -> None:
    import re as regex

    from evac.audit.evidence import TrendPoint, trend_svg

    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    trend = [
        TrendPoint(started_at=now - timedelta(hours=h), seconds=s, kind="drill", outcome="passed", workflow_id=f"d{h}")
        for h, s in ((3, 40.0), (2, 55.0), (1, 35.0))
    ]
    svg = trend_svg("checkout", trend, start=now - timedelta(days=90), end=now)
    xs = [float(x) for x in regex.findall(r'<circle class="trend-point[^"]*" cx="([0-9.]+)"', svg)]
    # Three runs an hour apart in a 90-day window: spread over the plot, not one vertical line.
    assert len(xs) == 3 and xs[2] - xs[0] > 400
    assert "window 2026-08-30 12:00Z to 2026-11-28 12:00Z" in svg  # the window, named separately
    assert "11-28 09:" in svg  # ticks to the minute for a span of hours


def test_evacuations_are_counted_with_their_outcomes_not_as_runs_without_a_service():
    def evacuation(days_ago: float, outcome: str | None, workflow_id: str = "evacuation/europe-west1") -> RunRow:
        return run(None, "evacuation", days_ago, outcome).model_copy(update={"workflow_id": workflow_id})

    runs = [
        evacuation(1, "succeeded"),
        evacuation(2, "aborted"),
        evacuation(3, "succeeded"),
        evacuation(0.1, None),  # still going
        evacuation(200, "completed_with_failures"),  # before the window
        evacuation(1, "succeeded", "dry-run/evacuation/europe-west1/abc"),  # a dry run changes nothing
        run("checkout", "failover", 1, "succeeded", trigger="manual"),
    ]
    report = report_of(runs, ["checkout"])
    assert report.evacuations == 4
    assert report.evacuation_outcomes == {"aborted": 1, "running": 1, "succeeded": 2}
    assert report.runs_without_service == 0 and report.dry_runs_seen == 1 and report.runs_read == len(runs)
    markdown = render_markdown(report)
    assert "- Evacuations: 4 in the window; aborted 1, running 1, succeeded 2" in markdown
    assert "Evacuations" in render_html(report) and "aborted 1, running 1, succeeded 2" in render_html(report)
    assert "- Evacuations: none in the window" in render_markdown(report_of(runs[-1:], ["checkout"]))


# --- readiness over the window --------------------------------------------------------------


def evaluations(*states: tuple[float, State | None], service: str = "checkout") -> list[ReadinessEvaluation]:
    """One evaluation per (hours ago, the service's state; None: it did not cover the service)."""
    return [
        ReadinessEvaluation(
            workflow_id=f"readiness/check/{hours}",
            run_id=f"r{hours}",
            ended_at=NOW - timedelta(hours=hours),
            services={} if state is None else {service: state},
        )
        for hours, state in states
    ]


def test_a_service_never_found_not_ready_has_no_stretch():
    found = readiness_over(evaluations((5, "ready"), (3, "ready"), (1, "ready")), "checkout", now=NOW)
    assert found is not None
    assert (found.evaluations, found.ready, found.share_ready, found.latest) == (3, 3, 1.0, "ready")
    assert found.longest_not_ready is None


def test_the_longest_stretch_runs_from_the_first_not_ready_evaluation_to_the_next_ready_one():
    history = evaluations(
        (10, "ready"),
        (9, "not_ready"),  # 1 h: 9 → 8
        (8, "ready"),
        (7, "not_ready"),  # 3 h: 7 → 4, whatever came between
        (6, "not_ready"),
        (5, None),  # an evaluation of other plans: not counted for checkout
        (4, "ready"),
        (2, "ready"),
    )
    found = readiness_over(reversed(history), "checkout", now=NOW)  # any order
    assert found is not None and found.evaluations == 7 and found.ready == 4
    stretch = found.longest_not_ready
    assert stretch is not None
    assert (stretch.started_at, stretch.ended_at) == (NOW - timedelta(hours=7), NOW - timedelta(hours=4))
    assert (stretch.evaluations, stretch.first_workflow_id) == (2, "readiness/check/7")
    assert (found.latest, found.latest_at) == ("ready", NOW - timedelta(hours=2))


def test_a_stretch_still_open_runs_to_now():
    found = readiness_over(evaluations((12, "not_ready"), (11, "ready"), (6, "not_ready"), (1, "not_ready")), "checkout", now=NOW)
    assert found is not None and found.latest == "not_ready"
    stretch = found.longest_not_ready
    assert stretch is not None and stretch.ended_at is None and stretch.started_at == NOW - timedelta(hours=6)
    assert stretch.length(NOW) == timedelta(hours=6)  # longer than the closed hour before it


def test_ready_with_warnings_counts_as_ready_and_ends_a_stretch():
    found = readiness_over(evaluations((4, "warnings"), (3, "not_ready"), (2, "warnings"), (1, "ready")), "checkout", now=NOW)
    assert found is not None
    assert (found.evaluations, found.ready, found.share_ready) == (4, 3, 0.75)
    stretch = found.longest_not_ready
    assert stretch is not None and stretch.ended_at == NOW - timedelta(hours=2)


def test_a_service_no_evaluation_covered_has_no_figure():
    assert readiness_over([], "checkout", now=NOW) is None
    assert readiness_over(evaluations((1, "ready"), service="catalog"), "checkout", now=NOW) is None


def test_the_report_gives_each_service_its_readiness_and_says_when_there_is_none():
    history = [
        *evaluations((30, "ready"), (20, "not_ready"), (19, "warnings"), (3, "not_ready")),
        *evaluations((24 * 100, "not_ready")),  # before the window: left out
    ]
    report = report_of([run("checkout", "drill", 3, "passed")], ["checkout", "payments"], evaluations=history)
    checkout, payments = (next(s for s in report.services if s.service == name) for name in ("checkout", "payments"))
    assert payments.readiness is None
    assert checkout.readiness is not None and checkout.readiness.evaluations == 4 and checkout.readiness.ready == 2
    assert report.readiness_evaluations == 4

    text = render_markdown(report)
    section = text.split("### checkout", 1)[1].split("\n### ", 1)[0]
    assert (
        "- Readiness: ready in 50% of the 4 evaluation(s) in the window that covered it (2 ready, with warnings or not)"
        in section
    )
    assert (  # longer than the hour 20 to 19 h ago that ended with warnings (ready)
        "- Longest not-ready stretch: 3h 0m, since 2026-11-28 09:00Z: still not ready "
        "(1 evaluation(s) found it not ready), first found by evaluation `readiness/check/3`" in section
    )
    assert "- Latest readiness: NOT READY (2026-11-28 09:00Z)" in section
    assert "- Readiness: no readiness evaluation in the window" in text.split("### payments", 1)[1]
    assert "a service ready with warnings counts as ready" in text
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| 50% of 4 |" in summary and summary.count("| - |") >= 1

    page = render_html(report)
    assert "<dt>Readiness in the window</dt><dd>ready in 50% of the 4 evaluation(s)" in page
    assert "first found by evaluation <code>readiness/check/3</code>" in page
    assert "<dt>Readiness in the window</dt><dd>no readiness evaluation in the window</dd>" in page


def test_a_stretch_that_ended_says_from_when_to_when():
    report = report_of([], ["checkout"], evaluations=evaluations((5, "not_ready"), (4, "not_ready"), (2, "warnings")))
    assert (
        "- Longest not-ready stretch: 3h 0m, 2026-11-28 07:00Z to 2026-11-28 10:00Z "
        "(2 evaluation(s) found it not ready, then one found it ready)"
    ) in render_markdown(report)
    assert "- Latest readiness: ready, with warnings (2026-11-28 10:00Z)" in render_markdown(report)
    none = report_of([], ["checkout"], evaluations=evaluations((1, "ready")))
    assert "- Longest not-ready stretch: none: no evaluation in the window found it not ready" in render_markdown(none)


def test_the_report_says_what_it_could_not_count():
    old = ReadinessEvaluation(workflow_id="readiness/check/old", run_id="r", ended_at=NOW - timedelta(hours=1), services={})
    report = report_of([], ["checkout"], evaluations=[old], readiness_cap=10_000)
    assert report.services[0].readiness is None
    text = render_markdown(report)
    assert "1 readiness evaluation(s) in the window recorded no service's state" in text
    assert "Only the newest 10,000 readiness evaluations were read" in text


def test_readiness_words_are_escaped_as_data():
    history = evaluations((3, "not_ready"), (1, "ready"), service="checkout")
    history[0].workflow_id = "<script>alert(1)</script>`x`"
    report = report_of([], ["checkout"], evaluations=history)
    assert "<script" not in render_html(report) and "&lt;script&gt;" in render_html(report)
    assert "`` <script>alert(1)</script>`x` ``" in render_markdown(report)
