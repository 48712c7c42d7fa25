"""The data tier on the time-skipping server (issue 23): a Cloud SQL switchover and its undo, a
promotion that is the run's point of no return, the lag guard, a Spanner leader, and a drill
that fails all of it back. The in-memory cloud plays Cloud SQL's roles and Spanner's leader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from evac.control import progress
from evac.control.operate import approve
from evac.drills import DrillOutcome
from evac.plan import Plan
from evac.resources import ActivityName, DatabaseLeader, DatabaseRole, DnsRecord
from evac.runs import (
    AbortRequest,
    ApprovalDecision,
    DrillInput,
    FailoverProgress,
    RunStatus,
    StepStatus,
    Trigger,
    failover_workflow_id,
)
from evac.topology import Topology, load_topology
from tests.conftest import ROOT
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud, permanent
from tests.workflow.test_failover_workflow import SOURCE, TARGET, start
from workflows.drill import DrillWorkflow

EW1, UC1 = "checkout-db-ew1", "checkout-db-uc1"
FAST = {"initial_interval": 0.01, "maximum_interval": 0.05, "source_deadline": "2s"}
PRIMARY, REPLICA = DatabaseRole(role="primary"), DatabaseRole(role="replica", replicates=EW1)


@pytest.fixture(scope="module")
def data_plans_topology() -> Topology:
    return load_topology(ROOT / "plans" / "data" / "topology.yaml")


def data_cloud(lag: float | None = 2.0) -> FakeCloud:
    return FakeCloud(
        capacity={SOURCE: 1.0, TARGET: 1.0},
        sizes={SOURCE: 3, TARGET: 3},
        healthy={SOURCE: 3, TARGET: 3},
        record=DnsRecord(ttl=300, rrdatas=["203.0.113.10"]),
        sql={EW1: PRIMARY, UC1: REPLICA},
        lag={UC1: lag},
        leader=SOURCE,
    )


def plan(*steps: dict[str, Any], kind: str = "failover", **extra: Any) -> Plan:
    return Plan.model_validate(
        {
            "name": "data-test",
            "kind": kind,
            "retries": FAST,
            "services": ["checkout"],
            "source": SOURCE,
            "target": TARGET,
            "steps": [{"name": "drain", "kind": "drain", "capacity_scaler": 0}, *steps],
            **extra,
        }
    )


SWITCHOVER = {"name": "switchover", "kind": "sql_switchover"}
DNS = {"name": "dns", "kind": "shift_dns", "ttl": 60}
APPROVAL = {"name": "go?", "kind": "approval", "approvers": ["alice"]}
PROMOTE = {"name": "promote", "kind": "sql_promote_replica", "max_replication_lag": "30s"}


def refuse_the_dns_shift(cloud: FakeCloud) -> None:
    cloud.failures[ActivityName.SET_DNS_RECORD] = lambda input: (
        permanent("zone is locked") if input.desired.rrdatas == ["198.51.100.10"] else None
    )


async def ended(env, handle: WorkflowHandle) -> FailoverProgress:
    try:
        await handle.result()
    except WorkflowFailureError:
        pass
    return await progress(env.client, handle.id)


async def entered(cloud: FakeCloud, name: str) -> None:
    while name not in cloud.entered:
        await asyncio.sleep(0.02)


async def approval_waits(env, handle: WorkflowHandle, index: int) -> None:
    while (await progress(env.client, handle.id)).steps[index].approval is None:
        await asyncio.sleep(0.05)


async def test_a_switchover_moves_the_primary_after_the_traffic_and_records_the_lag(env, task_queue, data_plans_topology):
    cloud = data_cloud(lag=2.5)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(SWITCHOVER, DNS), data_plans_topology)
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED
    assert cloud.sql == {UC1: PRIMARY, EW1: DatabaseRole(role="replica", replicates=UC1)}
    switchover = result.steps[1]
    assert (switchover.before, switchover.after) == (REPLICA, PRIMARY)
    assert switchover.replication_lag is not None and switchover.replication_lag.seconds == 2.5
    assert switchover.guard == "passed: europe-west1's traffic has left it (step 'drain')"
    assert "lag 2.5s" in switchover.detail
    assert [c.activity for c in cloud.mutations()] == [
        ActivityName.SET_BACKEND_CAPACITY,
        ActivityName.SET_DATABASE_ROLE,
        ActivityName.SET_DNS_RECORD,
    ]
    # Preflight read both instances before anything changed.
    assert "7 resources readable" in result.preflight


async def test_a_failure_after_the_switchover_switches_back_in_reverse_order(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(SWITCHOVER, DNS), data_plans_topology)
        record = await ended(env, handle)

    assert record.status == RunStatus.ROLLED_BACK
    assert cloud.sql == {EW1: PRIMARY, UC1: REPLICA}
    assert cloud.capacity[SOURCE] == 1.0
    undo = [(c.activity, c.step) for c in cloud.mutations()[3:]]
    assert undo == [
        (ActivityName.SET_DNS_RECORD, "dns"),
        (ActivityName.SET_DATABASE_ROLE, "switchover"),
        (ActivityName.SET_BACKEND_CAPACITY, "drain"),
    ]


async def test_a_data_step_before_the_traffic_left_is_refused_at_run_time(env, task_queue, data_plans_topology):
    # Plan checks refuse such a plan (evac plan check, evac failover); the workflow's guard holds
    # for a plan that reaches it anyway.
    unsafe = plan(SWITCHOVER)
    unsafe.steps.pop(0)
    cloud = data_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, unsafe, data_plans_topology)
        record = await ended(env, handle)
    assert record.status == RunStatus.ROLLED_BACK  # a guard's refusal: nothing had changed
    assert "europe-west1 still takes checkout's traffic" in (record.error or "")
    assert "would leave two writers" in (record.error or "")
    assert cloud.sql == {EW1: PRIMARY, UC1: REPLICA}


async def test_a_failure_past_the_promotion_stops_without_rolling_anything_back(env, task_queue, data_plans_topology):
    cloud = data_cloud(lag=1.0)
    refuse_the_dns_shift(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice", reason="region is gone"))
        record = await ended(env, handle)

    assert record.status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN
    assert record.point_of_no_return == "promote"
    assert record.left_to_do == ["step 'dns' (shift_dns): failed"]
    # Nothing was undone: the source stays drained, the promoted replica a primary of its own.
    assert cloud.capacity[SOURCE] == 0.0
    assert cloud.sql == {EW1: PRIMARY, UC1: PRIMARY}
    assert [c.activity for c in cloud.mutations()] == [
        ActivityName.SET_BACKEND_CAPACITY,
        ActivityName.SET_DATABASE_ROLE,
        ActivityName.SET_DNS_RECORD,
    ]
    promote = record.steps[2]
    assert promote.irreversible and promote.status == StepStatus.SUCCEEDED
    assert promote.data_loss_window is not None
    start_at, end_at = promote.data_loss_window
    # From the lag before the reading (wall clock) to the promotion (the time-skipping clock, ahead of it).
    assert (end_at - start_at).total_seconds() >= 0.9
    assert record.steps[0].status == StepStatus.SUCCEEDED  # not compensated


async def test_an_abort_past_the_promotion_stops_and_says_what_is_left(env, task_queue, data_plans_topology):
    cloud = data_cloud(lag=0.0)
    cloud.gates[ActivityName.SET_DNS_RECORD] = lambda input: asyncio.Event()  # never released
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice", reason="region is gone"))
        await entered(cloud, ActivityName.SET_DNS_RECORD)
        await handle.cancel(reason=AbortRequest(by="bob", reason="stop here").cancel_reason())
        record = await ended(env, handle)

    assert record.status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN
    assert record.abort is not None and record.abort.by == "bob"
    assert record.left_to_do == ["step 'dns' (shift_dns): aborted"]
    assert cloud.sql[UC1] == PRIMARY and cloud.capacity[SOURCE] == 0.0


async def test_an_abort_before_the_promotion_still_rolls_back(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await handle.cancel(reason=AbortRequest(by="bob", reason="not yet").cancel_reason())
        record = await ended(env, handle)
    assert record.status == RunStatus.CANCELLED
    assert record.point_of_no_return is None
    assert cloud.capacity[SOURCE] == 1.0 and cloud.sql == {EW1: PRIMARY, UC1: REPLICA}


async def test_a_promotion_refuses_a_replica_behind_by_more_than_the_limit(env, task_queue, data_plans_topology):
    cloud = data_cloud(lag=95.0)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice"))
        record = await ended(env, handle)

    assert record.status == RunStatus.ROLLED_BACK
    assert record.point_of_no_return is None
    assert "95s behind its primary, over the step's max_replication_lag of 30s" in (record.error or "")
    assert "switch over instead" in (record.error or "")
    assert cloud.sql == {EW1: PRIMARY, UC1: REPLICA} and cloud.capacity[SOURCE] == 1.0


@pytest.mark.parametrize("allow", [False, True])
async def test_with_the_source_gone_a_lagging_replica_is_promoted_only_when_data_loss_is_allowed(
    env, task_queue, data_plans_topology, allow
):
    cloud = data_cloud(lag=95.0)
    cloud.api_down = {SOURCE: "errors"}
    promote = {**PROMOTE, "allow_data_loss": allow}
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, promote, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice"))
        record = await ended(env, handle)

    # The source's instance could not be read (its region's API answers 503): the run went on.
    assert any("europe-west1's API gave no answer" in line for line in record.ungraceful), record.ungraceful
    if not allow:
        assert record.status == RunStatus.ROLLED_BACK
        assert "allow_data_loss: true" in (record.error or "")
        assert cloud.sql[UC1] == REPLICA
        return
    assert record.status == RunStatus.SUCCEEDED
    assert cloud.sql[UC1] == PRIMARY
    step = record.steps[2]
    assert step.guard is not None and step.guard.startswith("passed with data loss accepted")
    assert step.data_loss_window is not None
    start_at, end_at = step.data_loss_window
    assert (end_at - start_at).total_seconds() >= 94  # the lag, to the promotion (clocks differ by ms)
    assert "may be lost" in step.detail
    # No call needed the source's own API after preflight found it gone, beyond its budget.
    assert all(c.activity != ActivityName.SET_DATABASE_ROLE or c.plane == TARGET for c in cloud.calls)


async def test_a_dry_run_shows_the_point_of_no_return_and_changes_nothing(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    from evac.control import failover_inputs, start_failover

    inputs = failover_inputs(plan(APPROVAL, PROMOTE, DNS), data_plans_topology, Trigger(by="test"), dry_run=True)
    async with running_worker(env.client, task_queue, cloud.activities()):
        [run] = await start_failover(env.client, inputs, task_queue, require_worker=False)
        handle = env.client.get_workflow_handle(run.workflow_id, run_id=run.run_id, result_type=FailoverProgress)
        record = await handle.result()
    assert record.status == RunStatus.SUCCEEDED
    assert "the point of no return" in record.steps[2].detail
    assert cloud.mutations() == []


async def test_a_drill_moves_primary_and_leader_bakes_fails_back_and_verifies_them(env, task_queue, data_plans_topology):
    cloud = data_cloud(lag=4.0)
    drill = plan(
        SWITCHOVER,
        {"name": "leader", "kind": "spanner_leader", "services": ["checkout"]},
        DNS,
        kind="drill",
        drill={"bake": "10m", "check_interval": "1m", "rpo_target": "30s"},
    )
    # checkout has no Spanner database in the data topology: give it catalog's for this test.
    services = dict(data_plans_topology.services)
    services["checkout"] = services["checkout"].model_copy(update={"spanner": services["catalog"].spanner})
    topology = data_plans_topology.model_copy(update={"services": services})
    input = DrillInput(
        plan=drill,
        plan_digest=drill.digest(),
        service="checkout",
        project=topology.project,
        topology=topology.services["checkout"],
        trigger=Trigger(by="test"),
    )
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await env.client.start_workflow(
            DrillWorkflow.run, input, id=failover_workflow_id("checkout"), task_queue=task_queue, result_type=FailoverProgress
        )
        record = await handle.result()

    report = record.drill
    assert report is not None and report.outcome == DrillOutcome.PASSED, record.error
    assert cloud.sql == {EW1: PRIMARY, UC1: REPLICA}
    assert cloud.leader == SOURCE
    assert report.rpo_seconds == 4.0 and report.over_rpo is False
    verified = "\n".join(report.verification)
    assert f"Cloud SQL instance {TARGET}/{UC1}: replica of {EW1}, as before the drill" in verified
    assert "leader europe-west1, as before the drill" in verified
    switched = [c.desired for c in cloud.mutations() if c.activity == ActivityName.SET_DATABASE_ROLE]
    assert switched == [PRIMARY, REPLICA]
    leaders = [c.desired for c in cloud.mutations() if c.activity == ActivityName.SET_DATABASE_LEADER]
    assert leaders == [DatabaseLeader(leader=TARGET), DatabaseLeader(leader=SOURCE)]


async def test_a_re_protect_creates_a_replica_of_the_new_primary_and_its_undo_deletes_it(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    cloud.sql = {EW1: PRIMARY, UC1: PRIMARY}  # after a promotion: the old primary stands alone
    refuse_the_dns_shift(cloud)
    create = {"name": "re-protect", "kind": "sql_create_replica", "region": SOURCE, "instance": "checkout-db-ew1-r"}
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(create, DNS), data_plans_topology)
        record = await ended(env, handle)

    assert record.status == RunStatus.ROLLED_BACK  # the DNS shift was refused: everything undone
    created = [c.desired for c in cloud.mutations() if c.activity == ActivityName.SET_DATABASE_ROLE]
    assert created == [DatabaseRole(role="replica", replicates=UC1), DatabaseRole(role="absent")]
    assert "checkout-db-ew1-r" not in cloud.sql
    step = record.steps[1]
    assert (step.before, step.after) == (DatabaseRole(role="absent"), DatabaseRole(role="replica", replicates=UC1))
    assert step.resource == "Cloud SQL instance europe-west1/checkout-db-ew1-r"


async def test_a_re_protect_refuses_a_name_that_is_taken(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    cloud.sql = {EW1: PRIMARY, UC1: PRIMARY}
    create = {"name": "re-protect", "kind": "sql_create_replica", "region": SOURCE}  # the topology's: checkout-db-ew1
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(create), data_plans_topology)
        record = await ended(env, handle)
    assert record.status == RunStatus.ROLLED_BACK
    assert "Cloud SQL instance europe-west1/checkout-db-ew1 exists already (primary)" in (record.error or "")
    assert [c.activity for c in cloud.mutations()] == [ActivityName.SET_BACKEND_CAPACITY, ActivityName.SET_BACKEND_CAPACITY]


async def test_a_promotion_refused_by_the_cloud_crossed_nothing_and_rolls_back(env, task_queue, data_plans_topology):
    cloud = data_cloud()
    cloud.failures[ActivityName.SET_DATABASE_ROLE] = lambda input: permanent("HTTP 403 not authorized to promote")
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice"))
        record = await ended(env, handle)
    assert record.status == RunStatus.ROLLED_BACK, record.error
    assert record.point_of_no_return is None and record.left_to_do == []
    assert cloud.capacity[SOURCE] == 1.0 and cloud.sql[UC1] == REPLICA


@pytest.mark.parametrize("sent", [False, True], ids=["before-it-is-sent", "while-it-runs"])
async def test_an_abort_during_the_promotion_stops_past_it_only_if_it_happened(env, task_queue, data_plans_topology, sent):
    cloud = data_cloud()
    release = asyncio.Event()
    cloud.gates[ActivityName.SET_DATABASE_ROLE] = lambda input: release
    if sent:  # the promotion was submitted: the activity sees it through despite the cancel
        cloud.finish_despite_cancel.add(ActivityName.SET_DATABASE_ROLE)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, plan(APPROVAL, PROMOTE, DNS), data_plans_topology)
        await approval_waits(env, handle, 1)
        await approve(env.client, handle.id, ApprovalDecision(by="alice"))
        await entered(cloud, ActivityName.SET_DATABASE_ROLE)
        await handle.cancel(reason=AbortRequest(by="bob", reason="wait").cancel_reason())
        while ActivityName.SET_DATABASE_ROLE not in cloud.cancelled:
            await asyncio.sleep(0.02)
        release.set()
        record = await ended(env, handle)
    if sent:
        assert record.status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN
        assert cloud.sql[UC1] == PRIMARY and cloud.capacity[SOURCE] == 0.0
        assert record.left_to_do == ["step 'promote' (sql_promote_replica): aborted", "step 'dns' (shift_dns): not run"]
    else:
        assert record.status == RunStatus.CANCELLED
        assert record.point_of_no_return is None
        assert cloud.sql[UC1] == REPLICA and cloud.capacity[SOURCE] == 1.0
