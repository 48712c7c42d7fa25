"""A run's notifications on the time-skipping server, the notification activity replaced by a
stand-in under its registered name: the events, in order, for a success, a rollback, an abort
and a drill; one activity only when the worker has no target; nothing for a dry run; and a
notification that keeps failing is recorded and neither fails nor holds up the run."""

from __future__ import annotations

import time

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from evac.control import failover_inputs, progress, start_failover
from evac.control.operate import approve
from evac.drills import DrillOutcome
from evac.notifications import SEND_NOTIFICATION, Notification, NotificationEvent, NotificationResult, TargetKind
from evac.runs import ApprovalDecision, FailoverProgress, RunStatus, StepStatus, Trigger
from tests.workflow.conftest import running_worker
from tests.workflow.test_abort_and_retries import STEPS, abort, abort_plan, step_reaches
from tests.workflow.test_approvals import approval_plan, waiting_for_approval
from tests.workflow.test_approvals import start as start_approval
from tests.workflow.test_drill_workflow import drill_plan, outcome_of, start_drill
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, refuse_the_dns_shift, start
from workflows.notify import DRAIN_TIMEOUT

BOTH = [TargetKind.WEBHOOK, TargetKind.SLACK]
STARTED, ENDED = NotificationEvent.STARTED, NotificationEvent.ENDED
ROLLBACK_STARTED = NotificationEvent.ROLLBACK_STARTED


def events(notifications: list[Notification]) -> list[NotificationEvent]:
    return [n.event for n in notifications]


async def test_a_successful_failover_notifies_its_start_and_its_end(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = BOTH
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result = await handle.result()
        record = await progress(env.client, handle.id)

    assert events(cloud.notifications) == [STARTED, ENDED]
    started, ended = cloud.notifications
    assert (started.service, started.kind, started.plan, started.status) == ("checkout", "failover", "wf-test", "running")
    assert (started.source, started.target, started.trigger_kind, started.trigger_by) == (
        "europe-west1",
        "us-central1",
        "manual",
        "test",
    )
    assert (ended.status, ended.outcome, ended.detail) == ("succeeded", "succeeded", "")
    # Each outcome is in the run's record: its result, and the final record in the memo.
    for found in (result, record):
        assert [(r.event, [(d.target, d.delivered) for d in r.deliveries]) for r in found.notifications] == [
            (STARTED, [(TargetKind.WEBHOOK, True), (TargetKind.SLACK, True)]),
            (ENDED, [(TargetKind.WEBHOOK, True), (TargetKind.SLACK, True)]),
        ]


async def test_a_rolled_back_failover_notifies_the_rollback_then_the_end(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = [TargetKind.SLACK]
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)

    assert events(cloud.notifications) == [STARTED, ROLLBACK_STARTED, ENDED]
    _, rollback, ended = cloud.notifications
    assert rollback.status == "rolling_back" and "zone is locked" in rollback.detail
    assert (ended.status, ended.outcome) == ("rolled_back", "rolled_back")
    assert ended.detail.endswith("; rolled back")
    assert record.status == RunStatus.ROLLED_BACK
    assert [r.event for r in record.notifications] == [STARTED, ROLLBACK_STARTED, ENDED]


async def test_an_aborted_run_still_notifies_the_rollback_and_the_end(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = [TargetKind.WEBHOOK]
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        await step_reaches(env, handle, STEPS.index("bake"), StepStatus.RUNNING)
        await abort(handle, by="erin", reason="pager went off")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)

    assert events(cloud.notifications) == [STARTED, ROLLBACK_STARTED, ENDED]
    assert cloud.notifications[1].detail == "aborted by erin: pager went off"
    assert cloud.notifications[2].outcome == "cancelled"
    assert record.status == RunStatus.CANCELLED
    assert [(r.event, r.summary()) for r in record.notifications] == [
        (STARTED, "webhook: delivered"),
        (ROLLBACK_STARTED, "webhook: delivered"),
        (ENDED, "webhook: delivered"),
    ]


async def test_a_drill_notifies_a_breach_and_the_rollback_but_not_its_planned_failback(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = BOTH
    cloud.condition_value = lambda check, _index: 0.0 if check >= 3 else 3.0
    async with running_worker(env.client, task_queue, cloud.activities()):
        record = await outcome_of(env, await start_drill(env, task_queue, drill_plan(), demo_topology))
    assert record.drill.outcome == DrillOutcome.ROLLED_BACK
    assert events(cloud.notifications) == [STARTED, NotificationEvent.STOP_CONDITION_BREACHED, ROLLBACK_STARTED, ENDED]
    breach = cloud.notifications[1]
    assert (breach.kind, breach.step, breach.detail) == ("drill", "bake", record.drill.breach)
    assert cloud.notifications[3].outcome == "rolled_back"

    passed = fresh_cloud()
    passed.notify_targets = BOTH
    async with running_worker(env.client, task_queue, passed.activities()):
        handle = await start_drill(env, task_queue, drill_plan(bake="5m"), demo_topology)
        result: FailoverProgress = await handle.result()
    assert result.drill.outcome == DrillOutcome.PASSED
    assert events(passed.notifications) == [STARTED, ENDED]
    assert (passed.notifications[1].kind, passed.notifications[1].outcome) == ("drill", "passed")


async def test_with_no_target_configured_a_run_asks_once_and_records_nothing(env, task_queue, demo_topology):
    cloud = fresh_cloud()  # its stand-in answers: no target configured
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)
    assert events(cloud.notifications) == [STARTED]
    assert record.notifications == []
    assert "notifications" not in record.model_dump(mode="json")


async def test_a_dry_run_sends_nothing(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = BOTH
    async with running_worker(env.client, task_queue, cloud.activities()):
        [run] = await start_failover(
            env.client,
            failover_inputs(make_plan(), demo_topology, Trigger(by="test"), dry_run=True),
            task_queue,
            require_worker=False,
        )
        result = await env.client.get_workflow_handle(run.workflow_id, result_type=FailoverProgress).result()
    assert result.dry_run and cloud.notifications == []


async def test_a_notification_that_keeps_failing_is_recorded_and_does_not_fail_or_hold_the_run(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    tried: list[NotificationEvent] = []

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(input: Notification) -> NotificationResult:
        tried.append(input.event)
        raise ApplicationError("the notification service is down")

    stand_ins = [a for a in cloud.activities() if getattr(a, "__name__", "") != "send_notification"]
    began = time.monotonic()
    async with running_worker(env.client, task_queue, [*stand_ins, send_notification]):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result = await handle.result()
    took = time.monotonic() - began

    assert result.status == RunStatus.SUCCEEDED
    # Each notification is tried by its own retry policy (3 attempts), then recorded as failed.
    assert tried == [STARTED] * 3 + [ENDED] * 3
    assert [(r.event, r.error) for r in result.notifications] == [
        (STARTED, "the notification activity failed: the notification service is down"),
        (ENDED, "the notification activity failed: the notification service is down"),
    ]
    assert took < DRAIN_TIMEOUT.total_seconds()


async def test_an_approval_step_notifies_that_it_waits_and_for_whom(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.notify_targets = [TargetKind.SLACK]
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_approval(env, task_queue, approval_plan(), demo_topology)
        await waiting_for_approval(env, handle)
        await approve(env.client, handle.id, ApprovalDecision(by="alice", reason="go"))
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert events(cloud.notifications) == [STARTED, NotificationEvent.APPROVAL_NEEDED, ENDED]
    needed = cloud.notifications[1]
    assert (needed.step, needed.status) == ("go?", "running")
    assert needed.detail == "waiting up to 30m for approval by alice, group:sre, carol"
