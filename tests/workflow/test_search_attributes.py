"""A run is findable by how it ended: its outcome and recovery time are upserted at the end."""

from __future__ import annotations

from temporalio.client import WorkflowHandle

from evac.search_attributes import (
    EVAC_INITIATOR,
    EVAC_KIND,
    EVAC_OUTCOME,
    EVAC_PLAN_DIGEST,
    EVAC_RECOVERY_SECONDS,
    EVAC_SERVICE,
)
from tests.workflow.conftest import running_worker
from tests.workflow.test_drill_workflow import drill_plan, outcome_of, start_drill
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, refuse_the_dns_shift, start


async def _attributes(handle: WorkflowHandle):
    return (await handle.describe()).typed_search_attributes


async def test_a_succeeded_failover_is_findable_by_kind_initiator_outcome_and_recovery(env, task_queue, demo_topology):
    plan = make_plan()
    async with running_worker(env.client, task_queue, fresh_cloud().activities()):
        handle = await start(env, task_queue, plan, demo_topology)
        result = await outcome_of(env, handle)
    attributes = await _attributes(handle)
    assert attributes.get(EVAC_SERVICE) == "checkout"
    assert attributes.get(EVAC_KIND) == "failover"
    assert attributes.get(EVAC_INITIATOR) == "test"
    assert attributes.get(EVAC_PLAN_DIGEST) == plan.digest()
    assert attributes.get(EVAC_OUTCOME) == "succeeded"
    first = next(s for s in result.steps if s.before is not None)
    expected = (result.steps[-1].ended_at - first.started_at).total_seconds()
    assert attributes.get(EVAC_RECOVERY_SECONDS) == expected and expected > 0


async def test_a_rolled_back_failover_has_an_outcome_and_no_recovery_time(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        await outcome_of(env, handle)
    attributes = await _attributes(handle)
    assert attributes.get(EVAC_OUTCOME) == "rolled_back"
    assert attributes.get(EVAC_RECOVERY_SECONDS) is None


async def test_a_drill_upserts_its_outcome_and_measured_recovery(env, task_queue, demo_topology):
    async with running_worker(env.client, task_queue, fresh_cloud().activities()):
        handle = await start_drill(env, task_queue, drill_plan(), demo_topology)
        result = await outcome_of(env, handle)
    attributes = await _attributes(handle)
    assert result.drill is not None and result.drill.recovery_seconds is not None
    assert attributes.get(EVAC_OUTCOME) == "passed"
    assert attributes.get(EVAC_RECOVERY_SECONDS) == result.drill.recovery_seconds
