"""Issue 20, items 1 and 4: a namespace user who calls Temporal directly, not through the CLI,
can neither forge a record nor grow a run past Temporal's payload limits. Every update's
validator checks the message's form (an identity of one grammar, a printable reason of at most
1,000 characters) as the CLI does, a malformed abort record is not kept, and pauses are
bounded; the run then still aborts and rolls back."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError

from evac.approvals import MAX_PAUSES
from evac.control import progress
from evac.control.operate import UpdateRefused, approve, pause, resume
from evac.resources import ActivityName
from evac.runs import AbortRequest, ApprovalDecision, PauseRequest, ResumeRequest, RunStatus
from tests.workflow.conftest import running_worker
from tests.workflow.test_abort_and_retries import abort
from tests.workflow.test_approvals import approval_plan, hold, start
from tests.workflow.test_failover_workflow import fresh_cloud

HUGE = "x" * 900_000


@pytest.mark.parametrize(
    ("by", "reason", "refusal"),
    [
        ("alice@laptop\n✔ approved by ceo@corp", "ok", "by: 'alice@laptop\\n✔ approved by ceo@corp' is not a user name"),
        ("alice@\x1b[2J", "ok", "by: 'alice@\\x1b[2J' is not a user name"),
        ("alice", HUGE, "the reason is 900,000 characters long; at most 1,000"),
        ("alice", "fine\x1b[31m", "the reason must be printable text on one line"),
    ],
)
async def test_a_malformed_message_is_refused_by_the_workflow_itself(env, task_queue, demo_topology, by, reason, refusal):
    cloud = fresh_cloud()
    scaling, _ = hold(cloud, ActivityName.RESIZE_GROUP, "scale")  # never released: the abort's cancel reaches it
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        run = handle.id
        await asyncio.wait_for(scaling.wait(), 30)
        for send in (
            lambda: pause(env.client, run, PauseRequest(by=by, reason=reason)),
            lambda: approve(env.client, run, ApprovalDecision(by=by, reason=reason)),
        ):
            with pytest.raises(UpdateRefused) as refused:
                await send()
            assert str(refused.value).startswith(refusal), str(refused.value)
        # A cancel whose abort record has that form still aborts the run, but records no one.
        await abort(handle, by=by, reason=reason)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, run)
    assert record.status == RunStatus.CANCELLED and record.abort is None
    assert record.error == "aborted: cancelled through Temporal (no 'evac abort' record of who or why)"
    assert record.pauses == [] and all(s.approval is None or s.approval.by is None for s in record.steps)


async def test_pauses_are_bounded_and_the_run_still_aborts(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    scaling, scaled = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        run = handle.id
        try:
            await asyncio.wait_for(scaling.wait(), 30)
            long = "r" * 1000  # the most a reason may be
            for _ in range(MAX_PAUSES):
                await pause(env.client, run, PauseRequest(by="alice", reason=long))
                await resume(env.client, run, ResumeRequest(by="alice", reason=long))
            with pytest.raises(UpdateRefused) as refused:
                await pause(env.client, run, PauseRequest(by="alice", reason="once more"))
            assert str(refused.value) == f"run {run} has been paused {MAX_PAUSES} times; it takes no more pauses"
        finally:
            scaled.set()
        await abort(handle, by="alice", reason="enough")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, run)
    assert record.status == RunStatus.CANCELLED and len(record.pauses) == MAX_PAUSES
    assert len(record.model_dump_json()) < 512 * 1024  # far below Temporal's 2 MB payload limit


async def test_the_abort_record_is_the_one_the_ending_cancel_carries(env, task_queue, demo_topology):
    """Issue 20, item 5: a bare record_abort signal (no cancel) was kept, first one wins, and a
    later real `evac abort` by alice ended the run "aborted by mallory@nowhere". Now who and why
    ride on the cancel request itself: a signal records nothing, and no one can slip a claim in
    between someone else's claim and cancel, for there is no separate claim."""
    cloud = fresh_cloud()
    # The scale-up is held (and never released: the abort's cancel reaches it while it waits).
    scaling, _ = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        await asyncio.wait_for(scaling.wait(), 30)
        await handle.signal("record_abort", AbortRequest(by="mallory@nowhere", reason="not me"))
        still = await progress(env.client, handle.id)
        assert still.status == RunStatus.RUNNING and still.abort is None  # a signal alone records nothing
        await abort(handle, by="alice", reason="the real one")  # one cancel request, carrying her record
        await abort(handle, by="mallory@nowhere", reason="me instead")  # a later cancel changes nothing
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)
    assert record.abort is not None and (record.abort.by, record.abort.reason) == ("alice", "the real one")
    assert record.error == "aborted by alice: the real one"


async def test_a_plain_temporal_cancel_records_its_reason_as_text_not_as_someone(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    scaling, _ = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        await asyncio.wait_for(scaling.wait(), 30)
        await handle.cancel(reason="approved by ceo@corp\x1b[2J")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)
    assert record.status == RunStatus.CANCELLED and record.abort is None
    assert record.error == (
        "aborted: cancelled through Temporal (no 'evac abort' record of who or why); its reason: approved by ceo@corp\\x1b[2J"
    )
