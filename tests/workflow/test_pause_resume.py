"""Pause and resume on the time-skipping server: a paused run holds at the next step boundary
(never mid-step), resumes where it held, and an abort while paused still rolls back."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from evac.control import progress
from evac.control.operate import UpdateRefused, pause, resume
from evac.errors import NotRunning
from evac.resources import ActivityName
from evac.runs import FailoverProgress, PauseRequest, ResumeRequest, RunStatus, StepStatus
from tests.workflow.conftest import running_worker
from tests.workflow.test_abort_and_retries import abort
from tests.workflow.test_approvals import approval_plan, hold, start
from tests.workflow.test_failover_workflow import SOURCE, fresh_cloud


async def held(env, handle: WorkflowHandle) -> FailoverProgress:
    for _ in range(400):
        record = await progress(env.client, handle.id)
        if record.pause is not None and record.pause.held_at is not None:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError("the run never held")


async def test_a_pause_holds_the_run_at_the_next_step_boundary_until_resumed(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    scaling, scaled = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    plan = approval_plan(on_timeout="continue")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        run = handle.id
        try:
            await asyncio.wait_for(scaling.wait(), 30)
            paused = await pause(env.client, run, PauseRequest(by="alice@laptop", reason="checking dashboards"))
            assert (paused.by, paused.reason, paused.held_before) == ("alice@laptop", "checking dashboards", None)
            # The step in flight is not interrupted: it finishes, then the run holds.
            scaled.set()
            record = await held(env, handle)
        finally:
            scaled.set()
        assert record.pause is not None and record.pause.held_before == "go?"
        assert record.status == RunStatus.RUNNING
        assert record.steps[0].status == StepStatus.SUCCEEDED
        assert [s.status for s in record.steps[1:]] == [StepStatus.PENDING] * 3
        calls_when_held = len(cloud.calls)

        # Refused while paused: a second pause. Held for a while: no step starts.
        with pytest.raises(UpdateRefused) as twice:
            await pause(env.client, run, PauseRequest(by="bob", reason="me too"))
        assert str(twice.value) == f"run {run} is already paused by alice@laptop (checking dashboards)"
        await asyncio.sleep(0.5)
        still = await progress(env.client, run)
        assert [s.status for s in still.steps[1:]] == [StepStatus.PENDING] * 3
        assert len(cloud.calls) == calls_when_held

        resumed = await resume(env.client, run, ResumeRequest(by="bob@desk", reason="dashboards fine"))
        assert (resumed.resumed_by, resumed.resume_reason) == ("bob@desk", "dashboards fine")
        with pytest.raises(UpdateRefused) as not_paused:
            await resume(env.client, run, ResumeRequest(by="bob@desk"))
        assert str(not_paused.value) == f"run {run} is not paused"
        result = await handle.result()  # the approval times out (continue): the run goes on

    assert result.status == RunStatus.SUCCEEDED
    assert result.pause is None
    [recorded] = result.pauses
    assert (recorded.by, recorded.reason, recorded.held_before) == ("alice@laptop", "checking dashboards", "go?")
    assert (recorded.resumed_by, recorded.resume_reason) == ("bob@desk", "dashboards fine")
    assert recorded.at <= recorded.held_at <= recorded.resumed_at  # type: ignore[operator]
    # The approval step started only after the resume.
    assert result.steps[1].started_at is not None and result.steps[1].started_at >= recorded.resumed_at  # type: ignore[operator]
    assert cloud.capacity[SOURCE] == 0.0


async def test_an_abort_while_paused_rolls_back(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    scaling, scaled = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        try:
            await asyncio.wait_for(scaling.wait(), 30)
            await pause(env.client, handle.id, PauseRequest(by="alice", reason="hold on"))
            scaled.set()
            await held(env, handle)
        finally:
            scaled.set()
        await abort(handle, by="alice", reason="calling it off")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)
        description = await handle.describe()

    assert description.status == WorkflowExecutionStatus.CANCELED
    assert record.status == RunStatus.CANCELLED
    assert record.error == "aborted by alice: calling it off"
    assert record.steps[0].status == StepStatus.COMPENSATED
    assert [s.status for s in record.steps[1:]] == [StepStatus.NOT_RUN] * 3
    assert record.pause is None
    [recorded] = record.pauses
    assert recorded.resumed_by is None and recorded.resume_reason == "the run was aborted while paused"
    assert cloud.snapshot() == before


async def test_a_pause_is_refused_when_no_plan_step_is_left_or_the_run_has_ended(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    draining, drained = hold(cloud, ActivityName.SET_DNS_RECORD, "dns")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(on_timeout="continue"), demo_topology)
        run = handle.id
        try:
            outcome = asyncio.ensure_future(handle.result())  # skips the approval's timeout
            await asyncio.wait_for(draining.wait(), 30)
            with pytest.raises(UpdateRefused) as last:
                await pause(env.client, run, PauseRequest(by="alice", reason="wait"))
            assert str(last.value) == f"run {run} has no plan step left to hold before; it can no longer be paused"
        finally:
            drained.set()
        result = await outcome
        with pytest.raises(NotRunning) as ended:
            await pause(env.client, run, PauseRequest(by="alice", reason="wait"))

    assert str(ended.value) == f"run '{run}' has already ended; there is nothing to pause"
    assert result.status == RunStatus.SUCCEEDED and result.pauses == []
