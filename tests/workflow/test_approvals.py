"""Approval steps on the time-skipping server: approve and reject are Temporal Updates whose
validators refuse, in one sentence and changing nothing, whatever must not be decided."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from evac.approvals import UnknownApproverGroup
from evac.control import failover_inputs, progress, start_failover
from evac.control.operate import UpdateRefused, approve, reject
from evac.plan import Plan
from evac.resources import ActivityName
from evac.runs import ApprovalDecision, FailoverProgress, RunStatus, StepStatus, Trigger, failover_workflow_id
from evac.topology import Topology
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_abort_and_retries import abort
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud
from workflows.failover import FailoverWorkflow

STARTER = "carol@desk"
GROUPS = {"sre": ["bob@laptop", "dave"]}
WAITING = 1  # the approval step's index


def approval_plan(on_timeout: str = "abort", four_eyes: bool = False, approvers: list[str] | None = None) -> Plan:
    return Plan.model_validate(
        {
            "name": "approval-test",
            "retries": {"initial_interval": 0.01, "maximum_interval": 0.05},
            "services": ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "four_eyes": four_eyes,
            "steps": [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {
                    "name": "go?",
                    "kind": "approval",
                    "approvers": approvers or ["alice", "group:sre", "carol"],
                    "timeout": "30m",
                    "on_timeout": on_timeout,
                },
                {"name": "drain", "kind": "drain", "capacity_scaler": 0},
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
            ],
        }
    )


async def start(env, task_queue: str, plan: Plan, topology: Topology) -> WorkflowHandle:
    """Started by the client itself: only its handles skip time while awaiting the result."""
    [input] = failover_inputs(plan, topology, Trigger(by=STARTER, reason="test"), approver_groups=GROUPS)
    return await env.client.start_workflow(
        FailoverWorkflow.run, input, id=failover_workflow_id("checkout"), task_queue=task_queue, result_type=FailoverProgress
    )


async def waiting_for_approval(env, handle: WorkflowHandle) -> FailoverProgress:
    for _ in range(400):
        record = await progress(env.client, handle.id)
        if record.steps[WAITING].approval is not None:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError("the approval step never started waiting")


async def test_an_approval_lets_the_run_go_on_and_is_recorded(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        waiting = await waiting_for_approval(env, handle)
        # Nothing after the approval step has started while it waits.
        assert [s.status for s in waiting.steps] == [
            StepStatus.SUCCEEDED,
            StepStatus.RUNNING,
            StepStatus.PENDING,
            StepStatus.PENDING,
        ]
        assert waiting.steps[WAITING].detail == "waiting up to 30m for approval by alice, group:sre, carol"
        assert {c.step for c in cloud.calls} <= {"preflight", "scale"}
        # A member of the group, by its bare name: dave from any host.
        decided = await approve(env.client, handle.id, ApprovalDecision(by="dave@elsewhere", reason="looks fine"))
        result = await handle.result()

    assert decided.decision == "approved" and decided.by == "dave@elsewhere"
    assert result.status == RunStatus.SUCCEEDED
    approval = result.steps[WAITING].approval
    assert approval is not None
    assert (approval.decision, approval.by, approval.reason) == ("approved", "dave@elsewhere", "looks fine")
    assert approval.at is not None and approval.waiting_since <= approval.at <= approval.deadline
    assert result.steps[WAITING].detail == "approved by dave@elsewhere: looks fine"
    assert cloud.capacity[SOURCE] == 0.0


async def test_a_rejection_fails_the_step_and_rolls_the_run_back(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        await waiting_for_approval(env, handle)
        await reject(env.client, handle.id, ApprovalDecision(step="go?", by="alice@laptop", reason="peak traffic"))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "rolled_back"
    assert record.status == RunStatus.ROLLED_BACK
    assert record.error == "step 'go?' rejected by alice@laptop: peak traffic"
    step = record.steps[WAITING]
    assert step.status == StepStatus.FAILED and step.approval is not None
    assert (step.approval.decision, step.approval.by, step.approval.reason) == ("rejected", "alice@laptop", "peak traffic")
    assert [s.status for s in record.steps] == [
        StepStatus.COMPENSATED,
        StepStatus.FAILED,
        StepStatus.NOT_RUN,
        StepStatus.NOT_RUN,
    ]
    assert cloud.snapshot() == before


async def test_a_timeout_with_on_timeout_abort_fails_the_step_and_rolls_back(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(on_timeout="abort"), demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()  # the test server skips the 30 minutes
        record = await progress(env.client, handle.id)

    assert record.status == RunStatus.ROLLED_BACK
    assert record.error == "step 'go?': no approval by alice, group:sre, carol within 30m (on_timeout: abort)"
    step = record.steps[WAITING]
    assert step.status == StepStatus.FAILED
    assert step.approval is not None and step.approval.decision == "timed_out" and step.approval.by is None
    assert step.approval.at is not None and step.approval.at - step.approval.waiting_since >= timedelta(minutes=30)
    assert [s.status for s in record.steps[WAITING + 1 :]] == [StepStatus.NOT_RUN] * 2
    assert cloud.snapshot() == before


async def test_a_timeout_with_on_timeout_continue_goes_on_and_records_it(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(on_timeout="continue"), demo_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    step = result.steps[WAITING]
    assert step.status == StepStatus.SUCCEEDED
    assert step.approval is not None and step.approval.decision == "timed_out"
    assert step.detail == "no approval by alice, group:sre, carol within 30m; continued (on_timeout: continue)"
    assert cloud.capacity[SOURCE] == 0.0


async def decisions_in_history(handle: WorkflowHandle) -> list[str]:
    """The history's events other than workflow tasks (the test server records a task for a
    refused update too; the real server drops it): an accepted update would show here."""
    return [
        EventType.Name(e.event_type)
        async for e in handle.fetch_history_events()
        if not EventType.Name(e.event_type).startswith("EVENT_TYPE_WORKFLOW_TASK_")
    ]


async def assert_refused(env, handle: WorkflowHandle, send, decision: ApprovalDecision, sentence: str) -> None:
    """The update is refused with ``sentence`` and the run is untouched: still waiting, nothing decided."""
    history_before = await decisions_in_history(handle)
    with pytest.raises(UpdateRefused) as refused:
        await send(env.client, handle.id, decision)
    assert str(refused.value) == sentence
    record = await progress(env.client, handle.id)
    assert record.status == RunStatus.RUNNING
    assert record.steps[WAITING].status == StepStatus.RUNNING
    assert record.steps[WAITING].approval is not None and record.steps[WAITING].approval.decision is None
    assert await decisions_in_history(handle) == history_before


def hold(cloud: FakeCloud, activity: str, step: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the first call of ``activity`` for ``step``; returns (arrived, release)."""
    arrived, release = asyncio.Event(), asyncio.Event()

    def gate(input: object) -> asyncio.Event | None:
        if input.context.step != step or arrived.is_set():  # type: ignore[attr-defined]
            return None
        arrived.set()
        return release

    cloud.gates[activity] = gate
    return arrived, release


async def test_refusals_name_what_is_wrong_and_leave_the_run_untouched(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    scaling, scaled = hold(cloud, ActivityName.RESIZE_GROUP, "scale")
    draining, drained = hold(cloud, ActivityName.SET_BACKEND_CAPACITY, "drain")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(four_eyes=True), demo_topology)
        run = handle.id
        try:
            # Before the approval step waits, there is nothing to decide.
            await asyncio.wait_for(scaling.wait(), 30)
            with pytest.raises(UpdateRefused) as early:
                await approve(env.client, run, ApprovalDecision(by="alice"))
            assert str(early.value) == f"no approval step of run {run} is waiting now"
            with pytest.raises(UpdateRefused) as early:
                await approve(env.client, run, ApprovalDecision(step="go?", by="alice"))
            assert str(early.value) == f"step 'go?' of run {run} is not waiting for approval (it is pending)"
            scaled.set()

            await waiting_for_approval(env, handle)
            listed = "(alice, group:sre, carol)"
            cases = [
                (approve, ApprovalDecision(by="mallory@h"), f"'mallory@h' is not among the approvers of step 'go?' {listed}"),
                # bob is in the group as bob@laptop: only that identity may decide.
                (approve, ApprovalDecision(by="bob@desktop"), f"'bob@desktop' is not among the approvers of step 'go?' {listed}"),
                (
                    approve,
                    ApprovalDecision(by=STARTER),
                    f"the plan requires four eyes: run {run} was started by '{STARTER}', so '{STARTER}' "
                    "may not approve step 'go?'; another approver must",
                ),
                # The same user from another host is the same person.
                (
                    approve,
                    ApprovalDecision(by="carol@home"),
                    f"the plan requires four eyes: run {run} was started by '{STARTER}', so 'carol@home' "
                    "may not approve step 'go?'; another approver must",
                ),
                (
                    approve,
                    ApprovalDecision(step="nope", by="alice"),
                    f"run {run} has no step named 'nope' (its steps: 'scale', 'go?', 'drain', 'dns')",
                ),
                (
                    approve,
                    ApprovalDecision(step="drain", by="alice"),
                    f"step 'drain' of run {run} is a drain step, not an approval step",
                ),
                (reject, ApprovalDecision(by="alice", reason="  "), "a rejection of step 'go?' needs a reason"),
                (
                    reject,
                    ApprovalDecision(by="mallory@h", reason="no"),
                    f"'mallory@h' is not among the approvers of step 'go?' {listed}",
                ),
            ]
            for send, decision, sentence in cases:
                await assert_refused(env, handle, send, decision, sentence)

            await approve(env.client, run, ApprovalDecision(by="bob@laptop"))
            await asyncio.wait_for(draining.wait(), 30)
            # Decided once: a second decision is refused while the run goes on.
            with pytest.raises(UpdateRefused) as again:
                await reject(env.client, run, ApprovalDecision(step="go?", by="alice", reason="too late"))
            assert str(again.value) == f"step 'go?' of run {run} is not waiting for approval (it is approved by bob@laptop)"
            drained.set()
            result = await handle.result()
        finally:
            scaled.set()
            drained.set()

    assert result.status == RunStatus.SUCCEEDED
    approval = result.steps[WAITING].approval
    assert approval is not None and (approval.decision, approval.by) == ("approved", "bob@laptop")


async def test_an_abort_while_waiting_for_approval_rolls_back(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, approval_plan(), demo_topology)
        await waiting_for_approval(env, handle)
        await abort(handle, by="alice", reason="not today")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)

    assert record.status == RunStatus.CANCELLED
    assert record.steps[WAITING].status == StepStatus.ABORTED
    assert record.steps[0].status == StepStatus.COMPENSATED
    assert cloud.snapshot() == before


async def test_a_dry_run_does_not_wait_for_approval(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    inputs = failover_inputs(approval_plan(), demo_topology, Trigger(by=STARTER), dry_run=True, approver_groups=GROUPS)
    async with running_worker(env.client, task_queue, cloud.activities()):
        [run] = await start_failover(env.client, inputs, task_queue)
        result = await env.client.get_workflow_handle(run.workflow_id, result_type=FailoverProgress).result()

    assert result.status == RunStatus.SUCCEEDED
    step = result.steps[WAITING]
    assert step.detail == "dry run: would wait up to 30m for approval by alice, group:sre, carol"
    assert step.approval is None
    assert cloud.mutations() == []


def test_a_plan_naming_an_unknown_group_is_bad_input_at_start(demo_topology):
    plan = approval_plan(approvers=["group:dba", "group:sre"])
    with pytest.raises(UnknownApproverGroup) as unknown:
        failover_inputs(plan, demo_topology, Trigger(by=STARTER), approver_groups=GROUPS)
    assert str(unknown.value) == (
        "plan 'approval-test' names approver group group:dba, which the configuration's approver_groups "
        "does not define (it defines: sre); nothing was started"
    )
    # The input records the members of the groups the plan names, and only those.
    [input] = failover_inputs(approval_plan(), demo_topology, Trigger(by=STARTER), approver_groups={**GROUPS, "dba": ["erin"]})
    assert input.approver_groups == GROUPS
