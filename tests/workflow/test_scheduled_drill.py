"""ScheduledDrillWorkflow on the time-skipping server: the launcher a schedule starts.

Run directly (a schedule only adds the timestamped id): a blackout skips it with nothing
started, a busy service is skipped alone, and a normal run's drill is started under the
service's lock and its outcome recorded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import CancelledError
from temporalio.worker import Replayer

from evac.blackouts import CHECK_BLACKOUTS, BlackoutCheck, BlackoutVerdict, BlackoutWindow, active_window
from evac.control import progress
from evac.control.schedules import scheduled_input
from evac.drills import DrillOutcome
from evac.errors import FrontDoorError
from evac.plan import Plan
from evac.runs import FailoverProgress, RunStatus, failover_workflow_id
from evac.schedules import MEMO_SCHEDULED_RUN, ScheduledDrillInput, ScheduledOutcome, ScheduledRun
from evac.search_attributes import EVAC_SCHEDULE_ID, EVAC_TRIGGER
from evac.topology import Topology
from tests.workflow.conftest import asleep, running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_abort_and_retries import wait_until_async
from tests.workflow.test_drill_workflow import drill_plan, outcome_of, start_drill
from tests.workflow.test_failover_workflow import fresh_cloud
from workflows.registry import WORKFLOWS
from workflows.scheduled import ScheduledDrillWorkflow

ALL_WEEK = {"name": "freeze", "timezone": "Europe/Stockholm", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def blackouts_stand_in(file_windows: list[BlackoutWindow], checks: list[BlackoutCheck]) -> activity._Definition:
    """The worker's blackout check, with ``file_windows`` as its blackouts file."""

    @activity.defn(name=CHECK_BLACKOUTS)
    async def check_blackouts(input: BlackoutCheck) -> BlackoutVerdict:
        checks.append(input)
        windows = [*file_windows, *input.plan_windows]
        where = ["blackouts file"] * len(file_windows) + ["the plan"] * len(input.plan_windows)
        return BlackoutVerdict(match=active_window(windows, input.at, where))

    return check_blackouts


def launcher_input(plan: Plan, topology: Topology, name: str = "weekly") -> ScheduledDrillInput:
    return scheduled_input(name, plan, topology, "lead@test", bake=timedelta(minutes=2))


async def launch(env, task_queue: str, input: ScheduledDrillInput) -> WorkflowHandle[ScheduledDrillWorkflow, ScheduledRun]:
    return await env.client.start_workflow(
        ScheduledDrillWorkflow.run,
        input,
        id=f"{input.schedule_id}-2026-12-01T10:00:00Z",
        task_queue=task_queue,
    )


async def assert_replays(handle: WorkflowHandle) -> None:
    """The launcher's history replays on its code: every path it took is deterministic."""
    history = await handle.fetch_history()
    result = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


async def test_inside_a_blackout_nothing_is_started_and_the_skip_names_the_window(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    checks: list[BlackoutCheck] = []
    freeze = BlackoutWindow.model_validate({**ALL_WEEK, "from": "00:00", "to": "24:00"})
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([freeze], checks)]):
        handle = await launch(env, task_queue, launcher_input(drill_plan(), demo_topology))
        record = await handle.result()

    assert record.outcome == ScheduledOutcome.SKIPPED
    assert record.blackout is not None and record.blackout.window == "freeze"
    assert "blackout window 'freeze'" in record.reason and "nothing was started" in record.reason
    assert [s.outcome for s in record.services] == [ScheduledOutcome.SKIPPED]
    assert record.services[0].workflow_id is None  # no drill was started
    assert cloud.calls == [] and cloud.snapshot() == before
    # The check was made at the workflow's own time, with the plan's windows (none here).
    [check] = checks
    # (The test server's clock runs ahead by every timer skipped this session: compare with the run's own.)
    assert check.plan_windows == [] and check.at == record.started_at
    # The record is in the memo too: `evac schedule describe` reads it without a worker.
    memo = await (await handle.describe()).memo_value(MEMO_SCHEDULED_RUN, type_hint=ScheduledRun)
    assert memo == record
    await assert_replays(handle)


async def test_a_plans_own_blackout_skips_it_too(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    plan = Plan.model_validate(
        {**drill_plan().model_dump(mode="json"), "blackouts": [{**ALL_WEEK, "from": "00:00", "to": "24:00"}]}
    )
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([], [])]):
        record = await (await launch(env, task_queue, launcher_input(plan, demo_topology))).result()

    assert record.outcome == ScheduledOutcome.SKIPPED
    assert record.blackout is not None and record.blackout.where == "the plan"
    assert cloud.calls == []


async def test_a_busy_service_is_skipped_and_its_run_left_alone(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([], [])]):
        manual = await start_drill(env, task_queue, drill_plan(), demo_topology)  # holds failover/checkout (30m bake)
        launcher = await launch(env, task_queue, launcher_input(drill_plan(), demo_topology))
        record = await launcher.result()
        manual_record = await manual.result()
        await assert_replays(launcher)

    [checkout] = record.services
    assert record.outcome == ScheduledOutcome.SKIPPED
    assert checkout.outcome == ScheduledOutcome.SKIPPED
    assert checkout.reason.startswith("busy: failover/checkout is already running")
    # The manual drill ran to its own end, untouched by the launcher.
    assert manual_record.status == RunStatus.SUCCEEDED and manual_record.trigger.kind == "manual"
    assert manual_record.run_id == manual.result_run_id


async def test_outside_blackouts_the_drill_runs_under_the_service_lock_and_its_outcome_is_recorded(
    env, task_queue, demo_topology
):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    tuesdays = BlackoutWindow.model_validate({"name": "never now", "timezone": "UTC", "start": "2001-01-01", "end": "2001-01-02"})
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([tuesdays], [])]):
        handle = await launch(env, task_queue, launcher_input(drill_plan(), demo_topology))
        record = await handle.result()
        drill = env.client.get_workflow_handle(failover_workflow_id("checkout"), result_type=FailoverProgress)
        drill_record = await drill.result()
        drill_attributes = (await drill.describe()).typed_search_attributes
        await assert_replays(handle)

    assert record.outcome == ScheduledOutcome.PASSED and record.reason == ""
    [checkout] = record.services
    assert checkout.outcome == ScheduledOutcome.PASSED
    assert (checkout.workflow_id, checkout.run_id) == ("failover/checkout", drill_record.run_id)
    assert (checkout.status, checkout.drill_outcome) == ("succeeded", "passed")
    assert record.started_at is not None and record.ended_at is not None and record.ended_at >= record.started_at
    # The drill knows who started it, and says so in its input and search attributes.
    assert drill_record.trigger.kind == "schedule" and drill_record.trigger.schedule_id == "evac-drill/weekly"
    assert drill_record.drill is not None and drill_record.drill.bake_seconds == 120
    assert drill_attributes.get(EVAC_SCHEDULE_ID) == "evac-drill/weekly"
    assert drill_attributes.get(EVAC_TRIGGER) == "schedule"
    assert cloud.snapshot() == before


async def test_a_drill_that_rolls_back_makes_the_scheduled_run_failed(env, task_queue, demo_topology):
    cloud: FakeCloud = fresh_cloud()
    cloud.condition_value = lambda check, index: 0.0 if check >= 2 else None  # the target stops serving mid-bake
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([], [])]):
        record = await (await launch(env, task_queue, launcher_input(drill_plan(), demo_topology))).result()

    [checkout] = record.services
    assert record.outcome == ScheduledOutcome.FAILED
    assert (checkout.outcome, checkout.status, checkout.drill_outcome) == (ScheduledOutcome.FAILED, "rolled_back", "rolled_back")
    assert "target healthy" in checkout.reason and record.reason.startswith("checkout: ")


async def test_a_cancelled_launcher_cancels_its_drill_which_rolls_back_and_is_recorded(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, [*cloud.activities(), blackouts_stand_in([], [])]):
        launcher = await launch(env, task_queue, launcher_input(drill_plan(bake="2h"), demo_topology))
        drill = env.client.get_workflow_handle(failover_workflow_id("checkout"), result_type=FailoverProgress)

        async def phase() -> str | None:
            try:
                record = await progress(env.client, drill.id)
            except FrontDoorError:
                return None  # not started yet
            return record.drill.phase.value if record.drill else None

        await wait_until_async(phase, "bake")
        # Not while the bake's first check is completing (the time-skipping server can wedge a
        # cancel that races an activity's completion).
        await wait_until_async(lambda: asleep(drill), True)
        await launcher.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await launcher.result()
        drill_record = await outcome_of(env, drill)
        record = await (await launcher.describe()).memo_value(MEMO_SCHEDULED_RUN, type_hint=ScheduledRun)
        await assert_replays(launcher)

    assert isinstance(ended.value.cause, CancelledError)
    assert drill_record.status == RunStatus.CANCELLED
    assert drill_record.drill is not None and drill_record.drill.outcome == DrillOutcome.ABORTED
    assert cloud.snapshot() == before  # everything the drill changed was restored
    [checkout] = record.services
    assert record.outcome == ScheduledOutcome.FAILED
    assert (checkout.status, checkout.drill_outcome) == ("cancelled", "aborted")
    assert checkout.reason == "cancelled with its scheduled run; the drill restored what it had changed"
    assert record.ended_at is not None
