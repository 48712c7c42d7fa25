"""The engine's promises under aborts and a flaky control plane, on the time-skipping server.

- Once an abort is requested, no further step starts, whatever the in-flight activity does
  (it may honour the cancel, or finish its cloud operation and report): the run compensates,
  the in-flight step included, and ends ``cancelled`` with who and why. Tried at every step
  kind and at every moment of a step: before its mutation, during it, and as it completes.
- An abort during preflight ends ``cancelled`` (Temporal: CANCELED), not rolled back.
- Transient errors are retried until the step's deadline, not a count.
- An unknown step kind fails the run instead of passing silently.
- History stays small and readable: a health wait is one activity; undos say they are undos.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from evac.control import progress
from evac.plan import Plan, WaitStep
from evac.resources import ActivityName, DnsRecord
from evac.runs import AbortRequest, RunStatus, StepStatus
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud, start
from workflows import steps

STEPS = ["scale", "verify", "drain", "dns", "bake", "after"]


def abort_plan() -> Plan:
    return Plan.model_validate(
        {
            "name": "abort-test",
            "retries": {"initial_interval": 0.01, "maximum_interval": 0.05},
            "services": ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "steps": [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {"name": "verify", "kind": "verify_health", "min_healthy": 3, "timeout": "10m", "interval": "30s"},
                {"name": "drain", "kind": "drain", "capacity_scaler": 0},
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
                {"name": "bake", "kind": "wait", "duration": "1h"},
                {"name": "after", "kind": "drain", "capacity_scaler": 0},
            ],
        }
    )


@dataclass(frozen=True)
class Moment:
    step: str
    when: str  # before | during | completes
    activity: str | None  # the held activity; None: the bake's timer


MOMENTS = [
    Moment("scale", "before", ActivityName.READ_GROUP_SIZE),
    Moment("scale", "during", ActivityName.RESIZE_GROUP),
    Moment("scale", "completes", ActivityName.RESIZE_GROUP),
    Moment("verify", "during", ActivityName.WAIT_FOR_HEALTHY),
    Moment("verify", "completes", ActivityName.WAIT_FOR_HEALTHY),
    Moment("drain", "before", ActivityName.CHECK_BACKEND_HEALTH),
    Moment("drain", "during", ActivityName.SET_BACKEND_CAPACITY),
    Moment("drain", "completes", ActivityName.SET_BACKEND_CAPACITY),
    Moment("dns", "before", ActivityName.READ_DNS_RECORD),
    Moment("dns", "during", ActivityName.SET_DNS_RECORD),
    Moment("dns", "completes", ActivityName.SET_DNS_RECORD),
    Moment("bake", "during", None),
]


def hold_first_call(cloud: FakeCloud, moment: Moment) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the step's first call of ``moment.activity``; returns (arrived, release)."""
    arrived, release = asyncio.Event(), asyncio.Event()
    assert moment.activity is not None

    def gate(input: object) -> asyncio.Event | None:
        if input.context.step != moment.step or arrived.is_set():  # type: ignore[attr-defined]
            return None
        arrived.set()
        return release

    cloud.gates[moment.activity] = gate
    if moment.when == "completes":
        cloud.finish_despite_cancel.add(moment.activity)
    return arrived, release


async def abort(handle: WorkflowHandle, by: str = "alice", reason: str = "game day over") -> None:
    await handle.cancel(reason=AbortRequest(by=by, reason=reason).cancel_reason())


HELD_READS = [m for m in MOMENTS if m.when == "before"]
HELD_OTHERWISE = [m for m in MOMENTS if m.when != "before"]


@pytest.mark.parametrize("moment", HELD_OTHERWISE, ids=[f"{m.step}-{m.when}" for m in HELD_OTHERWISE])
async def test_an_abort_stops_the_run_at_once_and_restores_everything(env, task_queue, demo_topology, moment: Moment):
    await abort_at(env, task_queue, demo_topology, moment)


@pytest.mark.parametrize("moment", HELD_READS, ids=[f"{m.step}-{m.when}" for m in HELD_READS])
async def test_an_abort_before_a_step_s_mutation_stops_the_run_and_restores_everything(
    own_env, task_queue, demo_topology, moment: Moment
):
    # The held read is abandoned by the abort (reads are not waited for): a server of its own.
    await abort_at(own_env, task_queue, demo_topology, moment)


async def abort_at(env, task_queue: str, demo_topology, moment: Moment) -> None:
    cloud = fresh_cloud()
    before = cloud.snapshot()
    release = asyncio.Event()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        try:
            if moment.activity is None:
                await step_reaches(env, handle, STEPS.index(moment.step), StepStatus.RUNNING)
            else:
                arrived, release = hold_first_call(cloud, moment)
                await asyncio.wait_for(arrived.wait(), 30)
            await abort(handle)
            if moment.when == "completes":
                # The cancel reaches the activity, which finishes its operation all the same.
                await wait_until(lambda: moment.activity in cloud.cancelled)
                release.set()
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
        finally:
            release.set()
        record = await progress(env.client, handle.id)
        description = await handle.describe()

    assert isinstance(failure.value.cause, CancelledError)
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert record.status == RunStatus.CANCELLED
    assert record.error == "aborted by alice: game day over"
    # Everything the run changed is back, including what the in-flight step changed.
    assert cloud.snapshot() == before
    held = STEPS.index(moment.step)
    # No step after the one in flight started: no call of theirs reached the cloud.
    assert {c.step for c in cloud.calls} <= {"preflight", *STEPS[: held + 1]}
    assert [s.status for s in record.steps[held + 1 :]] == [StepStatus.NOT_RUN] * (len(STEPS) - held - 1)
    assert record.steps[held].status in (StepStatus.ABORTED, StepStatus.COMPENSATED)
    assert record.steps[held].error == "aborted by alice: game day over"


async def test_an_in_flight_mutation_that_completes_despite_the_abort_is_undone(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    arrived, release = hold_first_call(cloud, Moment("drain", "completes", ActivityName.SET_BACKEND_CAPACITY))
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        await asyncio.wait_for(arrived.wait(), 30)
        await abort(handle)
        await wait_until(lambda: ActivityName.SET_BACKEND_CAPACITY in cloud.cancelled)
        release.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)

    drains = [c.desired for c in cloud.mutations() if c.activity == ActivityName.SET_BACKEND_CAPACITY]
    # The drain went through (its operation was already sent), and was then restored.
    assert [d.capacity_scaler for d in drains] == [0.0, 1.0]
    assert record.steps[2].status == StepStatus.COMPENSATED
    assert (record.steps[2].undo_to.capacity_scaler, record.steps[2].undo_changed) == (1.0, True)
    assert cloud.capacity[SOURCE] == 1.0


async def test_an_abort_during_preflight_ends_cancelled_with_who_and_why(own_env, task_queue, demo_topology):
    env = own_env  # the held read is abandoned by the abort
    cloud = fresh_cloud()
    arrived, release = hold_first_call(cloud, Moment("preflight", "before", ActivityName.READ_DNS_RECORD))
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        try:
            await asyncio.wait_for(arrived.wait(), 30)
            await abort(handle, by="dave", reason="wrong plan")
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
        finally:
            release.set()
        record = await progress(env.client, handle.id)
        description = await handle.describe()

    assert isinstance(failure.value.cause, CancelledError)
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert record.status == RunStatus.CANCELLED
    assert record.error == "aborted by dave: wrong plan"
    assert record.preflight == "aborted"
    assert [s.status for s in record.steps] == [StepStatus.NOT_RUN] * len(STEPS)
    assert cloud.mutations() == []


async def test_a_bare_temporal_cancel_is_an_abort_too(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        await step_reaches(env, handle, STEPS.index("bake"), StepStatus.RUNNING)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = await progress(env.client, handle.id)
    assert record.status == RunStatus.CANCELLED
    assert record.error.startswith("aborted: cancelled through Temporal")
    assert cloud.snapshot() == before


async def test_transient_errors_are_retried_past_any_attempt_count_until_the_step_succeeds(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    failures = iter(range(12))

    def flaky(input: object) -> Exception | None:
        # The first twelve drain attempts meet a 503 (the old engine gave up after six).
        if input.desired.capacity_scaler == 0.0 and next(failures, None) is not None:  # type: ignore[attr-defined]
            return ApplicationError("HTTP 503 backend service unavailable", type="CloudTransientError")
        return None

    cloud.failures[ActivityName.SET_BACKEND_CAPACITY] = flaky
    plan = abort_plan().model_copy(update={"steps": abort_plan().steps[:4]})
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        result = await handle.result()
    assert result.status == RunStatus.SUCCEEDED
    assert cloud.capacity[SOURCE] == 0.0
    assert len([c for c in cloud.calls if c.activity == ActivityName.SET_BACKEND_CAPACITY]) == 13


async def test_an_unknown_step_kind_fails_the_run_and_rolls_back(env, task_queue, demo_topology, monkeypatch):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    # A worker that does not know 'wait' (as an old worker would not know a new kind).
    monkeypatch.delitem(steps.HANDLERS, WaitStep)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, abort_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        record = await progress(env.client, handle.id)
    assert failure.value.cause.type == "rolled_back"
    assert "step 'bake' has kind 'wait', which this worker cannot run" in record.error
    assert record.steps[4].status == StepStatus.FAILED
    assert cloud.snapshot() == before


def test_every_step_kind_of_the_plan_model_has_a_handler():
    assert steps.MISSING_HANDLERS == []


async def test_a_failed_health_wait_is_one_activity_and_undos_are_named_in_the_history(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.health_timeout = 600  # the wait reports after its 10 minutes
    cloud.new_instances_get_healthy = False  # the scale-up never gets healthy
    plan = abort_plan()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        history = await handle.fetch_history()

    assert failure.value.cause.type == "rolled_back"
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    waits = [a for a in scheduled if a.activity_type.name == ActivityName.WAIT_FOR_HEALTHY]
    assert len(waits) == 1
    summaries = [
        e.user_metadata.summary.data.decode()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and e.HasField("user_metadata")
    ]
    assert any(s.startswith("\"undo 'scale': restore instance group us-central1/checkout-uc1 to size 1") for s in summaries)
    assert cloud.record == DnsRecord(ttl=300, rrdatas=["203.0.113.10"])


async def step_reaches(env, handle: WorkflowHandle, index: int, status: StepStatus) -> None:
    await wait_until_async(lambda: _status(env, handle, index), status)


async def _status(env, handle: WorkflowHandle, index: int) -> StepStatus:
    return (await progress(env.client, handle.id)).steps[index].status


async def wait_until_async(get, want, timeout: float = 30) -> None:
    async def loop() -> None:
        while await get() != want:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


async def wait_until(check, timeout: float = 30) -> None:
    async def loop() -> None:
        while not check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)
