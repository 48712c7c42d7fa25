"""DrillWorkflow on the time-skipping server: a 30-minute bake takes milliseconds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from evac.control import progress
from evac.drills import DrillOutcome, DrillPhase
from evac.plan import Plan
from evac.resources import ActivityName
from evac.runs import DrillInput, FailoverProgress, RunStatus, StepStatus, Trigger, failover_workflow_id
from evac.topology import Topology
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_abort_and_retries import abort, wait_until_async
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud
from workflows.drill import DrillWorkflow


def drill_plan(**drill: object) -> Plan:
    return Plan.model_validate(
        {
            "name": "drill-test",
            "kind": "drill",
            "retries": {"initial_interval": 0.01, "maximum_interval": 0.05},
            "services": ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "steps": [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {"name": "verify", "kind": "verify_health", "min_healthy": 3, "timeout": "10m", "interval": "30s"},
                {"name": "drain", "kind": "drain", "capacity_scaler": 0},
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
            ],
            "drill": {
                "bake": "30m",
                "check_interval": "1m",
                "stop_conditions": [{"name": "target healthy", "kind": "backend_health", "min_healthy": 2}],
                "rto_target": "5m",
                **drill,
            },
        }
    )


async def start_drill(env, task_queue: str, plan: Plan, topology: Topology, bake: timedelta | None = None) -> WorkflowHandle:
    input = DrillInput(
        plan=plan,
        plan_digest=plan.digest(),
        service="checkout",
        project=topology.project,
        topology=topology.services["checkout"],
        trigger=Trigger(by="test"),
        bake=bake,
    )
    return await env.client.start_workflow(
        DrillWorkflow.run, input, id=failover_workflow_id("checkout"), task_queue=task_queue, result_type=FailoverProgress
    )


async def outcome_of(env, handle: WorkflowHandle) -> FailoverProgress:
    try:
        await handle.result()
    except WorkflowFailureError:
        pass
    return await progress(env.client, handle.id)


async def test_a_drill_fails_over_holds_fails_back_and_leaves_every_resource_as_it_was(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(), demo_topology)
        result: FailoverProgress = await handle.result()

    report = result.drill
    assert result.kind == "drill" and result.status == RunStatus.SUCCEEDED
    assert report.outcome == DrillOutcome.PASSED and report.phase == DrillPhase.DONE
    assert cloud.snapshot() == before
    # The failover happened in between: the fake saw the drain and the DNS shift, then their undos.
    drains = [c.desired.capacity_scaler for c in cloud.mutations() if c.activity == ActivityName.SET_BACKEND_CAPACITY]
    assert drains == [0.0, 1.0]
    assert all(s.status == StepStatus.COMPENSATED for s in result.steps if s.kind != "verify_health")
    # 30 minutes checked every minute: the first check, then one after each minute.
    [condition] = report.conditions
    assert (condition.checks, condition.breaches, condition.worst) == (31, 0, 3.0)
    assert report.bake_seconds == 1800
    assert report.recovery_seconds is not None and report.recovery_seconds >= 0
    assert report.rto_target_seconds == 300 and report.over_rto is False
    assert report.failback_seconds is not None
    assert len(report.verification) == 3 and report.mismatches == []
    assert any(line.startswith("capacity: after scale-up us-central1 would have 3 healthy") for line in report.readiness)


async def test_the_bake_can_be_overridden_at_start(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(), demo_topology, bake=timedelta(minutes=3))
        result: FailoverProgress = await handle.result()
    assert result.drill.bake_seconds == 180
    assert result.drill.conditions[0].checks == 4


async def test_a_breach_mid_bake_rolls_everything_back_and_names_value_and_threshold(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    # The target loses its backends at the sixth check.
    cloud.condition_value = lambda check, _index: 0.0 if check >= 6 else 3.0
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    assert failure.value.cause.type == "rolled_back"
    assert record.status == RunStatus.ROLLED_BACK
    report = record.drill
    assert report.outcome == DrillOutcome.ROLLED_BACK
    assert report.breach == (
        "stop condition 'target healthy' breached: observed 0 (fake); required healthy backends in us-central1 >= 2"
    )
    assert (report.conditions[0].checks, report.conditions[0].breaches, report.conditions[0].worst) == (6, 1, 0.0)
    assert cloud.snapshot() == before
    assert report.failback_seconds is None  # a rollback, not a failback


async def test_a_breach_during_failback_does_not_interrupt_it(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    checks_in_bake = 31
    # Every reading after the bake would breach (the target empties as traffic leaves it).
    cloud.condition_value = lambda check, _index: 3.0 if check <= checks_in_bake else 0.0
    release = asyncio.Event()
    # Hold the DNS undo (the first of the failback) until a breaching reading would be seen.
    cloud.gates[ActivityName.SET_DNS_RECORD] = lambda input: release if input.desired.rrdatas == ["203.0.113.10"] else None
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(), demo_topology)
        # The test server skips time only while someone waits for a result: wait for it meanwhile.
        outcome = asyncio.ensure_future(handle.result())
        await wait_until_async(lambda: _phase(env, handle), DrillPhase.FAILBACK)
        release.set()
        result: FailoverProgress = await outcome
    assert result.drill.outcome == DrillOutcome.PASSED
    assert cloud.condition_checks == checks_in_bake  # no condition is checked while failing back
    assert cloud.snapshot() == before


async def test_an_abort_during_the_bake_rolls_back_and_ends_aborted(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(bake="8h", check_interval="1h"), demo_topology)
        await wait_until_async(lambda: _phase(env, handle), DrillPhase.BAKE)
        await abort(handle, by="erin", reason="pager went off")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)
        description = await handle.describe()
    assert isinstance(failure.value.cause, CancelledError)
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert record.status == RunStatus.CANCELLED and record.drill.outcome == DrillOutcome.ABORTED
    assert record.error == "aborted by erin: pager went off"
    assert cloud.snapshot() == before


async def test_not_ready_when_the_target_would_be_short_of_capacity(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    data = drill_plan().model_dump(mode="json")
    data["steps"][0]["min_size"] = 2
    plan = Plan.model_validate(data)
    cloud.healthy[TARGET] = 0  # and the target is unhealthy now, too
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    assert failure.value.cause.type == "not_ready"
    assert record.status == RunStatus.NOT_READY and record.drill.outcome == DrillOutcome.NOT_READY
    assert record.drill.readiness == [
        "target us-central1 has 0/1 healthy backends, the plan requires at least 1",
        "capacity: after scale-up us-central1 would have 2 healthy backends; 1 × 3 healthy in europe-west1 requires 3",
    ]
    assert cloud.mutations() == []
    assert [s.status for s in record.steps] == [StepStatus.NOT_RUN] * 4


async def test_a_resource_that_does_not_read_back_as_before_fails_the_drill(env, task_queue, demo_topology):
    cloud: FakeCloud = fresh_cloud()
    # Someone resizes the target group by hand during the bake: the failback restores the size
    # it recorded, but the verification reads the group again and the hand change wins.
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, drill_plan(bake="2h", check_interval="1h"), demo_topology)
        await wait_until_async(lambda: _phase(env, handle), DrillPhase.BAKE)
        # Time stands still until the result is awaited below: the bake has not ended yet.
        cloud.gates[ActivityName.READ_GROUP_SIZE] = lambda input: _resize_by_hand(cloud)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)
    assert failure.value.cause.type == "failed"
    assert record.drill.outcome == DrillOutcome.FAILED
    assert record.drill.mismatches == ["instance group us-central1/checkout-uc1 reads size 5, before the drill it was size 1"]


def _resize_by_hand(cloud: FakeCloud) -> None:
    cloud.sizes[TARGET] = 5
    return None


async def _phase(env, handle: WorkflowHandle) -> DrillPhase | None:
    record = await progress(env.client, handle.id)
    return record.drill.phase if record.drill else None
