"""What `evac status` prints under a run's steps: where it came from and whom it told; and the
run it is asked about."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evac.cli.base import FollowNotices
from evac.drills import DrillOutcome, DrillPhase, DrillReport
from evac.notifications import Delivery, NotificationEvent, NotificationRecord
from evac.render import drill_lines, outcome_lines, step_line
from evac.resources import GroupSize
from evac.runs import FailoverProgress, RunStatus, StepRecord, StepStatus, Trigger, workflow_id_of

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def _record(trigger: Trigger, notifications: list[NotificationRecord]) -> FailoverProgress:
    return FailoverProgress(
        workflow_id="failover/checkout",
        run_id="r1",
        service="checkout",
        plan_name="checkout-drill",
        plan_digest="0" * 64,
        source="europe-west1",
        target="us-central1",
        trigger=trigger,
        notifications=notifications,
    )


def _text(record: FailoverProgress) -> str:
    return "\n".join(line.plain for line in outcome_lines(record))


def test_a_scheduled_run_names_its_schedule_and_an_override_names_the_window():
    trigger = Trigger(
        kind="schedule",
        by="schedule/weekly",
        schedule_id="evac-drill/weekly",
        blackout_override="blackout window 'year-end freeze' until 2027-01-04 00:00 Europe/Stockholm",
    )
    text = _text(_record(trigger, []))
    assert "started by schedule/weekly (schedule)" in text
    assert "schedule evac-drill/weekly" in text
    assert "started inside a blackout, overridden: blackout window 'year-end freeze'" in text


def test_each_notification_shows_what_became_of_it_at_each_target_without_its_url():
    notifications = [
        NotificationRecord(event=NotificationEvent.STARTED, at=AT, deliveries=[Delivery(target="webhook", delivered=True)]),
        NotificationRecord(
            event=NotificationEvent.ENDED,
            at=AT,
            deliveries=[Delivery(target="slack", delivered=False, attempts=3, error="HTTP 500")],
        ),
    ]
    text = _text(_record(Trigger(by="alice@laptop", reason="drill"), notifications))
    assert "notified started: webhook: delivered" in text
    assert "notified ended: slack: failed after 3 tries (HTTP 500)" in text
    assert "http" not in text.replace("HTTP 500", "")


@pytest.mark.parametrize(
    ("named", "workflow_id"),
    [
        ("checkout", "failover/checkout"),
        ("failover/checkout", "failover/checkout"),
        ("dry-run/checkout/3f2a9c1b7d4e", "dry-run/checkout/3f2a9c1b7d4e"),
    ],
)
def test_a_run_is_named_by_its_service_or_its_workflow_id(named: str, workflow_id: str):
    assert workflow_id_of(named) == workflow_id


def test_a_follow_says_once_per_run_that_it_waits_for_a_worker_and_once_that_temporal_is_away(capsys):
    notices = FollowNotices(worker_wait=30)
    notices.tell(["failover/checkout"], None)
    notices.tell(["failover/checkout", "failover/catalog"], "Temporal at 127.0.0.1:7233 is unavailable")
    notices.tell(["failover/checkout", "failover/catalog"], "Temporal at 127.0.0.1:7233 is unavailable")

    told = capsys.readouterr().err.splitlines()
    assert told == [
        "waiting for a worker to answer for failover/checkout (giving up after 30s)…",
        "waiting for a worker to answer for failover/catalog (giving up after 30s)…",
        "Temporal at 127.0.0.1:7233 is unavailable; still trying…",
    ]


def _drill(outcome: DrillOutcome | None, recovery: float | None, phase: DrillPhase = DrillPhase.DONE) -> str:
    report = DrillReport(
        outcome=outcome,
        phase=phase,
        bake_seconds=60,
        check_interval_seconds=5,
        rto_target_seconds=120,
        recovery_seconds=recovery,
        over_rto=None if recovery is None else recovery > 120,
    )
    return "\n".join(line.plain for line in drill_lines(report))


@pytest.mark.parametrize(
    ("outcome", "recovery", "phase", "verdict"),
    [
        (DrillOutcome.PASSED, 4.5, DrillPhase.DONE, "recovery 4.5s (RTO target 120s, met)"),
        (DrillOutcome.PASSED, 130.0, DrillPhase.DONE, "recovery 130.0s (RTO target 120s, OVER TARGET)"),
        (DrillOutcome.ROLLED_BACK, 4.5, DrillPhase.DONE, "recovery 4.5s (RTO target 120s, not met: the drill rolled back)"),
        (DrillOutcome.NOT_READY, None, DrillPhase.DONE, "recovery - (RTO target 120s, not measured)"),
        (None, 4.5, DrillPhase.BAKE, "recovery 4.5s (RTO target 120s, within it so far)"),
        (None, None, DrillPhase.DONE, "recovery - (RTO target 120s, not measured)"),
    ],
)
def test_a_drill_met_its_rto_target_only_when_it_passed_and_recovery_was_measured(outcome, recovery, phase, verdict):
    assert verdict in _drill(outcome, recovery, phase)


def test_a_drill_that_ended_without_an_outcome_is_a_dry_run_not_in_progress():
    text = _drill(None, None)
    assert "in progress" not in text and "drill: dry run:" in text


def _undo(status: StepStatus, drill: DrillReport | None, run: RunStatus) -> str:
    step = StepRecord(
        index=0,
        name="scale",
        kind="scale_target",
        status=status,
        started_at=AT,
        ended_at=AT.replace(second=3),
        before=GroupSize(target_size=1),
        after=GroupSize(target_size=3),
        undo_from=GroupSize(target_size=3) if status == StepStatus.COMPENSATED else None,
        undo_to=GroupSize(target_size=1) if status == StepStatus.COMPENSATED else None,
        undo_changed=True if status == StepStatus.COMPENSATED else None,
    )
    record = _record(Trigger(by="alice@laptop"), []).model_copy(update={"steps": [step], "drill": drill, "status": run})
    return step_line(record, step)


def test_an_undo_line_says_what_it_restores_and_whether_it_is_a_rollback_or_a_failback():
    rolling = _undo(StepStatus.COMPENSATING, None, RunStatus.ROLLING_BACK)
    assert rolling == "checkout: step 1 'scale' rolling back: restoring size 3 → size 1"
    done = _undo(StepStatus.COMPENSATED, None, RunStatus.ROLLED_BACK)
    assert done == "checkout: step 1 'scale' rolled back: restored size 3 → size 1"
    failback = DrillReport(phase=DrillPhase.FAILBACK, bake_seconds=60, check_interval_seconds=5)
    failing = _undo(StepStatus.COMPENSATING, failback, RunStatus.RUNNING)
    assert failing.startswith("checkout: step 1 'scale' failing back: restoring")
    passed = failback.model_copy(update={"phase": DrillPhase.DONE, "outcome": DrillOutcome.PASSED})
    assert _undo(StepStatus.COMPENSATED, passed, RunStatus.SUCCEEDED).startswith("checkout: step 1 'scale' failed back: restored")
    rolled = failback.model_copy(update={"phase": DrillPhase.DONE, "outcome": DrillOutcome.ROLLED_BACK})
    assert " rolled back: " in _undo(StepStatus.COMPENSATED, rolled, RunStatus.ROLLED_BACK)


def test_a_watch_of_a_wait_counts_down_what_remains():
    from rich.console import Console

    from evac.render import progress_table, waiting_for

    step = StepRecord(
        index=3, name="bake", kind="wait", status=StepStatus.RUNNING, started_at=AT, detail="waiting 10m",
        waits_until=AT.replace(minute=10),
    )  # fmt: skip
    record = _record(Trigger(by="alice@laptop"), []).model_copy(update={"steps": [step]})
    now = AT.replace(minute=1, second=48)
    assert waiting_for(record, now) == "the wait of step 4 'bake' (8m12s left)"
    assert waiting_for(record) == "the wait of step 4 'bake' (until 2026-11-28 10:10:00Z)"
    console = Console(width=200, record=True)
    console.print(progress_table(record, now))
    assert "waiting 10m: 8m12s left" in console.export_text()


def test_plain_columns_keep_every_value_whole_and_aligned():
    from evac.render import plain_columns

    text = plain_columns(["ID", "OUTCOME"], [["failover/a-very-long-service-name-indeed", "passed"], ["failover/b", "-"]])
    head, first, second = text.splitlines()
    assert first == "failover/a-very-long-service-name-indeed  passed"
    assert head == "ID".ljust(40) + "  OUTCOME" and second == "failover/b".ljust(40) + "  -"


def test_a_drill_followed_line_by_line_says_when_it_bakes_and_what_each_check_read():
    from evac.drills import ConditionSummary
    from evac.render import drill_progress_lines

    report = DrillReport(
        phase=DrillPhase.BAKE,
        bake_seconds=600,
        check_interval_seconds=5,
        bake_started_at=AT,
        bake_ends_at=AT.replace(minute=10),
        conditions=[
            ConditionSummary(index=0, label="us-central1 serving", kind="backend_health", rule="r", checks=1, last="3/3")
        ],
    )
    record = _record(Trigger(by="alice@laptop"), []).model_copy(update={"drill": report})
    seen: dict[str, object] = {}
    assert drill_progress_lines(record, seen) == [
        "checkout: drill bake: holding the failed-over state until 2026-11-28 10:10:00Z, stop conditions checked every 5s",
        "checkout: stop conditions, check 1: us-central1 serving: 3/3",
    ]
    assert drill_progress_lines(record, seen) == []  # nothing new: nothing printed again
    later = report.model_copy(
        update={"conditions": [report.conditions[0].model_copy(update={"checks": 2, "last": "0/3", "breaches": 1})]}
    )
    assert drill_progress_lines(record.model_copy(update={"drill": later}), seen) == [
        "checkout: stop conditions, check 2: us-central1 serving: 0/3 BREACHED"
    ]


def test_times_are_utc_with_a_z_and_a_schedules_own_zone_only_in_brackets():
    from evac.cli.schedule import _when
    from evac.times import utc_text

    winter = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert utc_text(winter) == "2026-12-01 09:00:00Z"
    assert _when(winter, "Europe/Stockholm") == "2026-12-01 09:00Z (10:00 CET)"
    assert _when(winter, "UTC") == "2026-12-01 09:00Z"
    assert _when(datetime(2026, 12, 1, 23, 30, tzinfo=UTC), "Europe/Stockholm") == "2026-12-01 23:30Z (00:30 CET, Wed 02 Dec)"


def test_a_drill_refused_for_a_silent_source_says_what_did_not_answer_not_that_it_went_on():
    refused = DrillReport(
        phase=DrillPhase.DONE, outcome=DrillOutcome.NOT_READY, ready=False, bake_seconds=60, check_interval_seconds=5
    )
    cause = "preflight: europe-west1's API gave no answer within 30s: read instance group europe-west1/checkout-ew1"
    record = _record(Trigger(by="alice@laptop"), []).model_copy(update={"drill": refused, "ungraceful": [cause]})
    text = "\n".join(line.plain for line in outcome_lines(record))
    assert "europe-west1's API did not answer:" in text and "went on without" not in text
    went_on = record.model_copy(update={"drill": None})
    assert "UNGRACEFUL: went on without europe-west1's API:" in "\n".join(line.plain for line in outcome_lines(went_on))
