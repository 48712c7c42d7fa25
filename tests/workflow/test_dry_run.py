"""Dry runs on the time-skipping server: every step in plan mode, nothing changed."""

from __future__ import annotations

from evac.control import drill_inputs, failover_inputs, start_failover
from evac.plan import Plan
from evac.render import outcome_lines
from evac.resources import DnsRecord
from evac.runs import FailoverProgress, RunStatus, StepStatus, Trigger
from tests.workflow.conftest import running_worker
from tests.workflow.test_drill_workflow import drill_plan
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud, make_plan


async def dry_run(env, task_queue, plan: Plan, topology, *, drill: bool = False) -> FailoverProgress:
    trigger = Trigger(by="test")
    inputs = (
        drill_inputs(plan, topology, trigger, dry_run=True) if drill else failover_inputs(plan, topology, trigger, dry_run=True)
    )
    [run] = await start_failover(env.client, inputs, task_queue)
    assert run.workflow_id.startswith("dry-run/checkout/")
    handle = env.client.get_workflow_handle(run.workflow_id, run_id=run.run_id, result_type=FailoverProgress)
    return await handle.result()


async def test_a_dry_run_records_every_change_it_would_make_and_makes_none(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await dry_run(env, task_queue, plan, demo_topology)

    assert result.status == RunStatus.SUCCEEDED and result.dry_run
    assert cloud.mutations() == [] and cloud.snapshot() == before
    scale, verify, drain, bake, dns = result.steps
    assert (scale.before.target_size, scale.after.target_size, scale.detail) == (1, 3, "dry run: would change")
    assert verify.detail == "dry run: now 1/1 healthy, 3 once the planned scale-up is warm; would wait up to 10m for 3"
    assert (drain.before.capacity_scaler, drain.after.capacity_scaler) == (1.0, 0.0)
    assert bake.detail == "dry run: would wait 1h"
    assert dns.after == DnsRecord(ttl=60, rrdatas=["198.51.100.10"])
    assert all(s.status == StepStatus.SUCCEEDED for s in result.steps)
    # Guards are judged on the live state as the earlier planned steps would leave it (the
    # scale-up did not happen), and say so.
    assert drain.guard == (
        "passed: target us-central1 has 3/3 healthy backends after the planned scale-up (now 1/1 healthy) (need 1), scaler 1"
    )


async def test_a_dry_run_shows_a_guard_that_would_refuse_and_goes_on(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.healthy[TARGET] = 0
    plan = make_plan()
    plan = plan.model_copy(update={"steps": plan.steps[2:]})  # no scale-up: nothing would make the target healthy
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await dry_run(env, task_queue, plan, demo_topology)
    assert result.status == RunStatus.SUCCEEDED
    assert result.steps[0].guard == (
        "refuses: target us-central1 has 0/1 healthy backends, the plan requires at least 1 before moving traffic there"
    )
    assert result.steps[1].after is not None  # the DNS step was still planned
    assert cloud.mutations() == []


async def test_a_dry_run_counts_what_its_scale_up_would_add_not_what_is_unhealthy(env, task_queue, demo_topology):
    """The target's one instance is unhealthy: the planned scale-up to 3 would add two, so the
    guard passes on 2/3, and the verify step says it would fail waiting for 3."""
    cloud = fresh_cloud()
    cloud.healthy[TARGET] = 0
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await dry_run(env, task_queue, make_plan(), demo_topology)
    _, verify, drain, dns = result.steps
    assert verify.detail == (
        "dry run: now 0/1 healthy, 2 once the planned scale-up is warm; would wait up to 10m for 3, "
        "which even the planned scale-ups would not give (at most 2): it would fail"
    )
    assert drain.guard is not None and drain.guard.startswith(
        "passed: target us-central1 has 2/3 healthy backends after the planned scale-up (now 0/1 healthy)"
    )
    assert cloud.mutations() == []


async def test_a_drill_dry_run_shows_readiness_and_planned_steps_without_baking(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await dry_run(env, task_queue, drill_plan(), demo_topology, drill=True)
    assert result.status == RunStatus.SUCCEEDED and result.kind == "drill" and result.dry_run
    assert result.drill.ready is True and result.drill.outcome is None
    assert result.drill.conditions[0].checks == 0  # no bake
    assert cloud.mutations() == [] and cloud.snapshot() == before
    assert cloud.capacity[SOURCE] == 1.0
    # A dry run holds no lock, and its readiness does not claim one.
    assert not any("held by this run" in line for line in result.drill.readiness)
    assert "a dry run holds no lock: another run of the service may start meanwhile" in result.drill.readiness
    text = "\n".join(line.plain for line in outcome_lines(result))
    assert "drill: dry run: readiness and the changes the failover would make" in text
    assert "(RTO target 300s, not measured)" in text and ", met" not in text
