"""FailoverWorkflow on the time-skipping server, activities replaced by an in-memory cloud."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from evac.control import failover_inputs, progress, start_failover
from evac.errors import ServiceBusy
from evac.plan import Plan
from evac.resources import ActivityName, DnsRecord
from evac.runs import AbortRequest, FailoverProgress, RunStatus, StepStatus, Trigger
from evac.topology import Topology
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud, permanent

SOURCE, TARGET = "europe-west1", "us-central1"


def make_plan(*extra_steps: dict, services: list[str] | None = None) -> Plan:
    return Plan.model_validate(
        {
            "name": "wf-test",
            # The test server skips timers but not retry back-off: keep retries quick.
            "retries": {"initial_interval": 0.01, "maximum_interval": 0.05},
            "services": services or ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "steps": [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {"name": "verify", "kind": "verify_health", "min_healthy": 3, "timeout": "10m", "interval": "30s"},
                {"name": "drain", "kind": "drain", "capacity_scaler": 0},
                *extra_steps,
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
            ],
        }
    )


def fresh_cloud() -> FakeCloud:
    return FakeCloud(
        capacity={SOURCE: 1.0, TARGET: 1.0},
        sizes={SOURCE: 3, TARGET: 1},
        healthy={SOURCE: 3, TARGET: 1},
        record=DnsRecord(ttl=300, rrdatas=["203.0.113.10"]),
    )


def refuse_the_dns_shift(cloud: FakeCloud) -> None:
    """The DNS API refuses the shift to the target for good (its undo still goes through)."""
    cloud.failures[ActivityName.SET_DNS_RECORD] = lambda input: (
        permanent("zone is locked") if input.desired.rrdatas == ["198.51.100.10"] else None
    )


async def step_reaches(env, handle: WorkflowHandle, index: int, status: StepStatus) -> None:
    while (await progress(env.client, handle.id)).steps[index].status != status:
        await asyncio.sleep(0.05)


async def start(env, task_queue: str, plan: Plan, topology: Topology) -> WorkflowHandle:
    [run] = await start_failover(
        env.client, failover_inputs(plan, topology, Trigger(by="test")), task_queue, require_worker=False
    )
    return env.client.get_workflow_handle(run.workflow_id, run_id=run.run_id, result_type=FailoverProgress)


async def test_plan_runs_to_success_and_records_every_step(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED] * 4
    assert cloud.capacity[SOURCE] == 0.0
    assert cloud.sizes[TARGET] == 3
    assert cloud.record == DnsRecord(ttl=60, rrdatas=["198.51.100.10"])
    scale, verify, drain, dns = result.steps
    assert (scale.before.target_size, scale.after.target_size) == (1, 3)
    assert (drain.before.capacity_scaler, drain.after.capacity_scaler) == (1.0, 0.0)
    assert dns.before.rrdatas == ["203.0.113.10"] and dns.after.rrdatas == ["198.51.100.10"]
    assert verify.detail == "3/3 healthy, need 3"
    assert result.plan_digest == make_plan().digest()
    assert result.preflight == "passed: 5 resources readable"
    assert result.trigger.by == "test"


async def test_failure_at_step_k_compensates_k_to_1_in_reverse_with_before_states(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    # The last step (shift_dns, k=4) fails for good: the DNS API refuses the change.
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "rolled_back"
    assert "zone is locked" in cause.message
    # The failed step's own undo (a no-op: it changed nothing), then drain, then scale.
    undo = [(c.activity, c.step, c.desired) for c in cloud.mutations()[3:]]
    assert undo == [
        (ActivityName.SET_DNS_RECORD, "dns", DnsRecord(ttl=300, rrdatas=["203.0.113.10"])),
        (ActivityName.SET_BACKEND_CAPACITY, "drain", record.steps[2].before),
        (ActivityName.RESIZE_GROUP, "scale", record.steps[0].before),
    ]
    assert cloud.snapshot() == before
    assert record.status == RunStatus.ROLLED_BACK
    assert [s.status for s in record.steps] == [
        StepStatus.COMPENSATED,
        StepStatus.SUCCEEDED,  # verify changes nothing and has nothing to undo
        StepStatus.COMPENSATED,
        StepStatus.COMPENSATED,
    ]
    assert record.steps[3].error == "zone is locked"


async def test_preflight_finds_a_missing_resource_before_anything_changes(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.failures[ActivityName.READ_DNS_RECORD] = lambda input: permanent("HTTP 404 zone shop-zone not found")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)
    assert failure.value.cause.message.startswith("preflight: HTTP 404 zone shop-zone not found; nothing was changed")
    assert record.preflight == "failed: HTTP 404 zone shop-zone not found"
    assert [s.status for s in record.steps] == [StepStatus.NOT_RUN] * 4
    assert cloud.mutations() == []


async def test_a_finished_run_s_record_is_read_from_history_when_no_worker_answers(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    # The worker is gone: the query cannot be answered, the failure's details can.
    record = await progress(env.client, handle.id)
    assert record.status == RunStatus.ROLLED_BACK
    assert record.steps[3].error == "zone is locked"


async def test_an_aborted_run_s_record_is_read_from_its_memo_when_no_worker_answers(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        await step_reaches(env, handle, 3, StepStatus.RUNNING)
        await handle.cancel(reason=AbortRequest(by="carol", reason="end of drill").cancel_reason())
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    record = await progress(env.client, handle.id)
    assert record.status == RunStatus.CANCELLED
    assert record.error == "aborted by carol: end of drill"
    assert record.steps[0].status == StepStatus.COMPENSATED


async def test_guard_refuses_to_drain_into_an_unhealthy_target(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    plan = Plan.model_validate(
        {
            "name": "no-scale",
            "services": ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "guards": {"min_healthy_target": 2},
            "steps": [{"kind": "drain"}],
        }
    )
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "guard: target us-central1 has 1/1 healthy backends" in failure.value.cause.message
    assert cloud.mutations() == []
    assert cloud.capacity[SOURCE] == 1.0


async def test_a_step_that_gives_a_drained_target_its_share_back_is_not_refused_for_it(env, task_queue, demo_topology):
    """A target an earlier run drained takes traffic again by a drain step on the target itself
    (capacity_scaler > 0), before the rest of the plan; its health is still the guard's."""
    cloud = fresh_cloud()
    cloud.capacity[TARGET] = 0.0
    steps = [
        {"name": "undrain", "kind": "drain", "region": TARGET, "capacity_scaler": 1},
        {"name": "drain", "kind": "drain", "capacity_scaler": 0},
        {"name": "dns", "kind": "shift_dns"},
    ]
    plan = Plan.model_validate({"name": "back", "services": ["checkout"], "source": SOURCE, "target": TARGET, "steps": steps})
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await (await start(env, task_queue, plan, demo_topology)).result()
    assert result.status == RunStatus.SUCCEEDED, result.error
    assert cloud.capacity == {SOURCE: 0.0, TARGET: 1.0}
    assert result.steps[0].guard is not None and result.steps[0].guard.startswith("passed: target us-central1 has 1/1")


async def test_guard_refuses_to_move_traffic_into_a_drained_target(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.capacity[TARGET] = 0.0
    plan = Plan.model_validate(
        {"name": "into-drained", "services": ["checkout"], "source": SOURCE, "target": TARGET, "steps": [{"kind": "shift_dns"}]}
    )
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "guard: target us-central1 is drained itself" in failure.value.cause.message
    assert cloud.mutations() == []
    assert cloud.record == DnsRecord(ttl=300, rrdatas=["203.0.113.10"])


async def test_abort_mid_step_compensates_and_ends_cancelled(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        # Wait (in server time, skipped) until the bake step runs, then abort.
        await step_reaches(env, handle, 3, StepStatus.RUNNING)
        await handle.cancel(reason=AbortRequest(by="alice", reason="drill over").cancel_reason())
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    assert isinstance(failure.value.cause, CancelledError)
    assert record.status == RunStatus.CANCELLED
    assert record.error == "aborted by alice: drill over"
    assert cloud.snapshot() == before
    assert [s.status for s in record.steps] == [
        StepStatus.COMPENSATED,
        StepStatus.SUCCEEDED,
        StepStatus.COMPENSATED,
        StepStatus.ABORTED,  # the bake: it changed nothing, so there is nothing to undo
        StepStatus.NOT_RUN,
    ]


async def test_an_abort_during_rollback_does_not_interrupt_it(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    refuse_the_dns_shift(cloud)
    release = asyncio.Event()
    # Hold the undo of the scale-up (back to size 1) until the abort has been sent.
    cloud.gates[ActivityName.RESIZE_GROUP] = lambda input: release if input.desired.target_size == 1 else None
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        await step_reaches(env, handle, 0, StepStatus.COMPENSATING)
        await handle.cancel(reason=AbortRequest(by="bob", reason="impatient").cancel_reason())
        await asyncio.sleep(1)  # ample time for a cancellation to reach the held undo, were it sent
        release.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)

    assert record.status == RunStatus.ROLLED_BACK
    assert record.left_changed == []
    assert record.steps[0].status == StepStatus.COMPENSATED
    assert cloud.snapshot() == before


async def test_a_compensation_that_keeps_failing_is_reported_with_what_was_left_changed(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    plan = make_plan()
    # The undo is retried until its deadline; keep that short here (the default is an hour).
    plan = plan.model_copy(update={"retries": plan.retries.model_copy(update={"rollback_deadline": timedelta(seconds=2)})})
    refuse_the_dns_shift(cloud)
    # Restoring the drained backend (back to 1.0) fails every time.
    cloud.failures[ActivityName.SET_BACKEND_CAPACITY] = lambda input: (
        ApplicationError("503 backend unavailable", {"attempt": 1}) if input.desired.capacity_scaler == 1.0 else None
    )
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)

    assert failure.value.cause.type == "rollback_incomplete"
    assert record.status == RunStatus.ROLLBACK_INCOMPLETE
    assert record.steps[2].status == StepStatus.COMPENSATION_FAILED
    assert "503 backend unavailable" in record.steps[2].compensation_error
    assert record.left_changed == [
        "backend europe-west1/checkout-ew1 of backend service checkout-backend (step 'drain', restore to scaler 1)"
    ]
    # The retry policy tried the restore again and again until the rollback deadline.
    restores = [c for c in cloud.calls if c.activity == ActivityName.SET_BACKEND_CAPACITY and c.desired.capacity_scaler == 1.0]
    assert len(restores) > 3
    # Other compensations still ran: the target was scaled back.
    assert cloud.sizes[TARGET] == 1


async def test_a_second_run_for_a_busy_service_is_refused(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(ServiceBusy) as busy:
            await start(env, task_queue, plan, demo_topology)
        assert busy.value.workflow_id == "failover/checkout"
        assert busy.value.run_id == handle.run_id
        assert "already has a failover running" in str(busy.value)
        # Cancelled in its wait, not its preflight: the time-skipping server mishandles a cancel
        # racing the preflight's reads when the run then waits (for its notifications).
        await step_reaches(env, handle, 3, StepStatus.RUNNING)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
