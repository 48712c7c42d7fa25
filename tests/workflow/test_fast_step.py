"""A mutating step is one Temporal step (issue 12): its reads — the guard's and the
before-state — are one local activity recorded in the history before the mutation is
scheduled, the mutation is the step's one activity, and the guard's verdict is still on the
step, refusing as before."""

from __future__ import annotations

import json

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError

from evac.control import progress
from evac.resources import ActivityName
from evac.runs import RunStatus, StepStatus
from tests.workflow.conftest import running_worker
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud, make_plan, start

MUTATIONS = {ActivityName.SET_BACKEND_CAPACITY, ActivityName.RESIZE_GROUP, ActivityName.SET_DNS_RECORD}


def local_activity(event) -> str | None:  # type: ignore[no-untyped-def]
    attrs = event.marker_recorded_event_attributes
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED or attrs.marker_name != "core_local_activity":
        return None
    return str(json.loads(attrs.details["data"].payloads[0].data)["activity_type"])


async def test_each_mutating_step_reads_in_one_local_activity_recorded_before_its_mutation(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result = await handle.result()
        history = await handle.fetch_history()

    assert result.status == RunStatus.SUCCEEDED
    order: list[str] = []
    read_activities: list[bool] = []  # per read scheduled as an activity: is it preflight's?
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            order.append(attrs.activity_type.name)
            if attrs.activity_type.name.startswith(("read_", "check_", "preflight_")):
                read_activities.append(attrs.activity_type.name == ActivityName.PREFLIGHT_READS)
        elif (local := local_activity(event)) is not None:
            order.append(f"local {local}")
    steps = [name for name in order if name in MUTATIONS or name == f"local {ActivityName.READ_BEFORE_CHANGE}"]
    # scale, drain, shift_dns: each step's reads (one marker) come right before its mutation.
    assert steps == [
        f"local {ActivityName.READ_BEFORE_CHANGE}",
        ActivityName.RESIZE_GROUP,
        f"local {ActivityName.READ_BEFORE_CHANGE}",
        ActivityName.SET_BACKEND_CAPACITY,
        f"local {ActivityName.READ_BEFORE_CHANGE}",
        ActivityName.SET_DNS_RECORD,
    ]
    # The only read that is an activity of its own is preflight's, one for all five resources
    # (abortable at once).
    assert read_activities == [True]
    assert result.preflight == "passed: 5 resources readable"
    scale, _, drain, dns = result.steps
    assert drain.guard is not None and drain.guard.startswith(f"passed: target {TARGET} has 3/3 healthy")
    assert dns.guard is not None and dns.guard.startswith("passed:")
    assert scale.guard is None  # scaling the target up has no guard
    assert (drain.before.capacity_scaler, drain.after.capacity_scaler) == (1.0, 0.0)


@pytest.mark.parametrize("drained_target", [False, True], ids=["unhealthy", "drained"])
async def test_a_refusing_guard_fails_the_step_before_its_before_read_and_rolls_back(
    env, task_queue, demo_topology, drained_target: bool
):
    cloud = fresh_cloud()
    if drained_target:
        cloud.capacity[TARGET] = 0.0
    else:
        cloud.new_instances_get_healthy = False  # the scaled-up target stays at 1 healthy
    plan = make_plan().model_copy(update={"steps": [make_plan().steps[0], make_plan().steps[2]]})  # scale, drain
    plan = plan.model_copy(update={"guards": plan.guards.model_copy(update={"min_healthy_target": 2})})
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        record = (await progress(env.client, handle.id)).steps

    drain = record[1]
    assert drain.status == StepStatus.FAILED
    assert drain.guard is not None and drain.guard == drain.error
    assert ("drained itself" in drain.guard) if drained_target else ("has 1/3 healthy backends" in drain.guard)
    # The drain read the target's capacity only when its health passed, never the source's
    # before-state, and sent no mutation.
    drain_calls = [c.activity for c in cloud.calls if c.step == drain.name]
    capacity_reads = [ActivityName.READ_BACKEND_CAPACITY] if drained_target else []
    assert drain_calls == [ActivityName.CHECK_BACKEND_HEALTH, *capacity_reads]
    assert cloud.snapshot() == before  # the scale was undone
    assert cloud.capacity[SOURCE] == 1.0
