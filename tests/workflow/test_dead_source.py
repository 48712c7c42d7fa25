"""A failover out of a region whose own API is dead (issue 18): nothing waits on it.

The in-memory cloud plays a region whose API answers 503 to every call about a resource only
it serves, or hangs until the call's budget ends; global resources (a global backend service,
Cloud DNS) and the target keep answering. Budgets are short here (``source_deadline: 2s``) so
a hanging region costs the tests real seconds, not minutes.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from evac.control import progress
from evac.drills import DrillOutcome
from evac.notifications import TargetKind
from evac.plan import Plan
from evac.resources import ActivityName, BackendCapacity, DnsRecord
from evac.runs import DrillInput, FailoverProgress, RunStatus, StepStatus, Trigger
from evac.topology import Topology
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud, permanent, transient
from tests.workflow.test_drill_workflow import drill_plan
from tests.workflow.test_failover_workflow import SOURCE, TARGET, fresh_cloud, make_plan, start
from workflows.drill import DrillWorkflow

FAST = {"initial_interval": 0.01, "maximum_interval": 0.05, "source_deadline": "2s"}


def with_budget(plan: Plan, **retries: object) -> Plan:
    data = plan.model_dump(mode="json")
    data["retries"] = {**FAST, **retries}
    return Plan.model_validate(data)


def regional_plan(*steps: dict) -> Plan:
    """payments, behind regional backend services: its source backend is the source's own."""
    return Plan.model_validate(
        {
            "name": "regional-test",
            "retries": FAST,
            "services": ["payments"],
            "source": SOURCE,
            "target": TARGET,
            "steps": list(steps)
            or [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {"name": "drain", "kind": "drain", "capacity_scaler": 0.5},
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
            ],
        }
    )


def regional_cloud() -> FakeCloud:
    return FakeCloud(
        capacity={SOURCE: 1.0, TARGET: 1.0},
        sizes={SOURCE: 3, TARGET: 1},
        healthy={SOURCE: 3, TARGET: 1},
        record=DnsRecord(ttl=300, rrdatas=["203.0.113.50"]),
    )


async def finished(handle: WorkflowHandle) -> FailoverProgress:
    try:
        return await handle.result()
    except WorkflowFailureError:
        return await progress(handle._client, handle.id)


@pytest.mark.parametrize("how", ["errors", "hang"])
async def test_a_failover_leaves_a_region_whose_api_is_dead_without_waiting_on_it(env, task_queue, demo_topology, how):
    cloud = fresh_cloud()
    cloud.api_down = {SOURCE: how}
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, with_budget(make_plan()), demo_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED] * 4
    # The drain goes through the global backend service and DNS is global: traffic moved.
    assert cloud.capacity[SOURCE] == 0.0 and cloud.record.rrdatas == ["198.51.100.10"]
    [cause] = result.ungraceful
    assert cause.startswith(f"preflight: {SOURCE}'s API gave no answer within 2s: ")
    assert "ungraceful" in result.preflight
    assert "source-only: read instance group europe-west1/checkout-ew1" in result.depends_on
    # The one source-only call was the preflight's read of the source's group, under the budget.
    assert [(c.activity, c.step) for c in cloud.calls_to(SOURCE)] == [(ActivityName.READ_GROUP_SIZE, "preflight")]


async def test_a_change_only_the_dead_source_can_make_is_skipped_and_owed_and_the_run_succeeds(
    env, task_queue, regional_topology
):
    cloud = regional_cloud()
    cloud.api_down = {SOURCE: "errors"}
    cloud.notify_targets = [TargetKind.WEBHOOK]
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, regional_plan(), regional_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    scale, drain, dns = result.steps
    assert (scale.status, dns.status) == (StepStatus.SUCCEEDED, StepStatus.SUCCEEDED)
    assert drain.status == StepStatus.SKIPPED
    assert drain.owed == f"backend {SOURCE}-b/payments-ew1-b of regional backend service {SOURCE}/payments-ew1: → scaler 0.5"
    assert drain.detail.startswith("skipped: source region unreachable: ")
    assert [s.name for s in result.skipped] == ["drain"]
    assert any(c.startswith("step 'drain' skipped") for c in result.ungraceful)
    assert cloud.capacity[SOURCE] == 1.0 and cloud.record.rrdatas == ["198.51.100.50"]
    # The end notification names what is owed.
    [ended] = [n for n in cloud.notifications if n.event.value == "ended"]
    assert "owed once it answers: step 'drain'" in ended.detail


async def test_a_rollback_skips_what_was_skipped_and_restores_everything_else(env, task_queue, regional_topology):
    cloud = regional_cloud()
    cloud.api_down = {SOURCE: "errors"}
    cloud.failures[ActivityName.SET_DNS_RECORD] = lambda input: (
        permanent("zone is locked") if input.desired.rrdatas == ["198.51.100.50"] else None
    )
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, regional_plan(), regional_topology)
        result = await finished(handle)

    assert result.status == RunStatus.ROLLED_BACK
    # (the failed DNS step had its undo pushed before its change was sent: it is undone too)
    assert [s.status for s in result.steps] == [StepStatus.COMPENSATED, StepStatus.SKIPPED, StepStatus.COMPENSATED]
    assert cloud.snapshot() == before
    # No undo was sent to the source's backend: its change was never made.
    assert not [c for c in cloud.calls_to(SOURCE) if c.activity == ActivityName.SET_BACKEND_CAPACITY]


async def test_a_run_whose_every_traffic_step_needs_the_dead_source_fails_and_changes_nothing(env, task_queue, regional_topology):
    cloud = regional_cloud()
    cloud.api_down = {SOURCE: "hang"}
    before = cloud.snapshot()
    plan = regional_plan({"name": "drain", "kind": "drain", "capacity_scaler": 0.5})
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan, regional_topology)
        result = await finished(handle)

    assert result.status == RunStatus.FAILED
    assert result.error is not None and result.error.startswith("moved no traffic: every step that would ('drain')")
    assert result.steps[0].status == StepStatus.SKIPPED
    assert cloud.snapshot() == before


async def test_a_source_that_answers_again_mid_run_gets_its_change_made_and_undoable(env, task_queue, regional_topology):
    cloud = regional_cloud()
    cloud.api_down = {SOURCE: "errors"}
    resizing, resume = asyncio.Event(), asyncio.Event()

    def gate(input: object) -> asyncio.Event:
        resizing.set()
        return resume

    cloud.gates[ActivityName.RESIZE_GROUP] = gate
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, regional_plan(), regional_topology)
        await asyncio.wait_for(resizing.wait(), 60)
        cloud.api_down = {}  # europe-west1's API is back while the target scales
        resume.set()
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert [s.status for s in result.steps] == [StepStatus.SUCCEEDED] * 3
    drain = result.steps[1]
    assert (drain.before, drain.after) == (BackendCapacity(capacity_scaler=1.0), BackendCapacity(capacity_scaler=0.5))
    assert cloud.capacity[SOURCE] == 0.5
    # Only the preflight went without it.
    assert result.ungraceful and all(cause.startswith("preflight:") for cause in result.ungraceful)


async def test_a_change_the_source_accepts_but_never_finishes_is_skipped_within_the_budget(env, task_queue, regional_topology):
    cloud = regional_cloud()
    cloud.failures[ActivityName.SET_BACKEND_CAPACITY] = lambda input: (
        transient("operation not DONE") if input.backend.group.region == SOURCE else None
    )
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, regional_plan(), regional_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    drain = result.steps[1]
    assert drain.status == StepStatus.SKIPPED
    assert drain.owed is not None and drain.owed.endswith("scaler 1 → scaler 0.5")
    assert "did not finish the change within 2s" in drain.detail
    # Its budget bounded the change; Temporal's retries stopped there, not at the step deadline.
    tries = [c for c in cloud.calls if c.activity == ActivityName.SET_BACKEND_CAPACITY]
    assert tries and all(c.plane == SOURCE for c in tries)


async def test_source_deadline_zero_never_calls_the_source(env, task_queue, regional_topology):
    cloud = regional_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, with_budget(regional_plan(), source_deadline=0), regional_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert cloud.calls_to(SOURCE) == []
    assert result.steps[1].status == StepStatus.SKIPPED
    assert "retries.source_deadline is 0" in result.steps[1].detail


async def test_a_preflight_refusal_fails_the_run_with_nothing_changed_not_rolled_back(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.failures[ActivityName.READ_DNS_RECORD] = lambda input: permanent("zone not found")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result = await finished(handle)

    assert result.status == RunStatus.FAILED
    assert result.error == "preflight: zone not found; nothing was changed"
    assert [s.status for s in result.steps] == [StepStatus.NOT_RUN] * 4


# --- drills ------------------------------------------------------------------------------------


async def start_drill(env, task_queue: str, plan: Plan, topology: Topology, service: str, ungraceful: bool) -> WorkflowHandle:
    input = DrillInput(
        plan=plan,
        plan_digest=plan.digest(),
        service=service,
        project=topology.project,
        topology=topology.services[service],
        trigger=Trigger(by="test"),
        ungraceful=ungraceful,
    )
    # The handle start_workflow gives: on the time-skipping server, waiting on its result skips time.
    return await env.client.start_workflow(
        DrillWorkflow.run, input, id=f"failover/{service}", task_queue=task_queue, result_type=FailoverProgress
    )


async def test_a_planned_drill_refuses_when_the_source_does_not_answer(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    cloud.api_down = {SOURCE: "hang"}
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, with_budget(drill_plan()), demo_topology, "checkout", False)
        result = await finished(handle)

    assert result.status == RunStatus.NOT_READY
    assert result.drill is not None and result.drill.outcome == DrillOutcome.NOT_READY
    assert any("needed for a planned switchover" in r and "--ungraceful" in r for r in result.drill.readiness)
    assert cloud.snapshot() == before


async def test_an_ungraceful_drill_never_calls_the_source_and_reports_what_would_be_skipped(env, task_queue, regional_topology):
    cloud = regional_cloud()
    plan = Plan.model_validate(
        {
            **drill_plan().model_dump(mode="json", exclude={"services"}),
            "services": ["payments"],
            "retries": FAST,
            "steps": [
                {"name": "scale", "kind": "scale_target", "min_size": 3},
                {"name": "drain", "kind": "drain", "capacity_scaler": 0.5},
                {"name": "dns", "kind": "shift_dns", "ttl": 60},
            ],
        }
    )
    before = cloud.snapshot()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start_drill(env, task_queue, plan, regional_topology, "payments", True)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    report = result.drill
    assert report is not None and report.outcome == DrillOutcome.PASSED and report.ungraceful
    assert cloud.calls_to(SOURCE) == []
    assert cloud.snapshot() == before  # failed back: the target's scale-up and DNS restored
    would = report.would_skip
    assert any(w.startswith("step 'drain' skipped") for w in would)
    assert any(w.startswith("preflight: read instance group europe-west1-b/payments-ew1-b") for w in would)
