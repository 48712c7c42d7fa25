"""The arguments of 'evac schedule create', checked before Temporal is asked: one sentence each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evac.control.schedules import InvalidSchedule, check_bake, check_cron, check_name, check_timezone, parse_jitter
from evac.plan import load_plan
from tests.conftest import DEMO


def test_schedule_arguments_that_cannot_be_used_are_refused_in_one_sentence():
    with pytest.raises(InvalidSchedule, match=r"^--cron 'every tuesday' has 2 fields; a cron expression has 5"):
        check_cron("every tuesday")
    assert check_cron("0  10 * *   TUE") == "0 10 * * TUE" and check_cron("@daily") == "@daily"
    with pytest.raises(InvalidSchedule, match=r"^--timezone 'Mars/Olympus' is not an IANA time zone"):
        check_timezone("Mars/Olympus")
    with pytest.raises(InvalidSchedule, match=r"^--jitter: 'soon' is not a duration"):
        parse_jitter("soon")
    with pytest.raises(InvalidSchedule, match=r"^--jitter 48h is longer than 24h$"):
        parse_jitter("48h")
    assert parse_jitter("30m") == timedelta(minutes=30) and parse_jitter(None) is None
    with pytest.raises(InvalidSchedule, match=r"^schedule name 'Weekly_Drill' must be lowercase"):
        check_name("Weekly_Drill")


def test_a_schedule_runs_drill_plans_with_a_bake_the_plan_can_check():
    drill = load_plan(DEMO / "drill.yaml")  # checked every 5s
    assert check_bake(drill, None) is None and check_bake(drill, "10m") == timedelta(minutes=10)
    with pytest.raises(InvalidSchedule, match=r"^plan 'checkout-bake' is a failover plan: a schedule runs drills"):
        check_bake(load_plan(DEMO / "bake.yaml"), None)
    with pytest.raises(InvalidSchedule, match=r"^--bake must be longer than 0s"):
        check_bake(drill, "0s")
    with pytest.raises(InvalidSchedule, match=r"makes more than 1000 checks"):
        check_bake(drill, "2h")


def test_a_schedule_without_its_own_bake_says_it_bakes_as_the_plan_says():
    from datetime import timedelta

    from evac.cli.schedule import _spec_line
    from evac.control.schedules import ScheduleView

    view = ScheduleView(
        name="s1",
        schedule_id="evac-drill/s1",
        cron="0 10 * * TUE",
        timezone="UTC",
        plan_name="checkout-drill",
        plan_digest="a" * 64,
        services=["checkout"],
        created_by="alice@laptop",
        paused=False,
    )
    assert _spec_line(view).endswith("for checkout, the plan's own bake (drill.bake)")
    assert _spec_line(view.model_copy(update={"bake": timedelta(seconds=10)})).endswith("for checkout, bake 10s")
