"""Record the workflow histories that test_replay.py replays, and the baseline of their commands.

Evac is pre-1.0 and keeps one version of each workflow: the stored histories are today's code's,
and test_replay.py checks that the code still replays them. test_command_fingerprints.py says
when a change alters the commands a workflow issues (which running workflows would replay
against); if that is intended, record every set again and rewrite the baseline
(command_fingerprints.json, see fingerprints.py) with
``.venv/bin/python -m tests.workflow.record_histories all``. One set alone: ``… record_histories
SET`` (the baseline is rewritten from the files after it too). Each set's function takes the
folder it writes to (tests record into a temporary one). The sets:

- ``failover`` writes ``failover_<outcome>.json`` (succeeded, rolled_back, cancelled: the demo
  failover, whose worker has no notification target);
- ``notifications`` writes ``notifications_<outcome>.json`` (the same three, with a worker that
  notifies a webhook and Slack);
- ``operator`` writes ``drill_approved_paused.json`` (a drill whose approval step was approved
  while the run was paused and resumed) and ``scheduled_drill_passed.json`` (a schedule's
  launcher whose drill passed);
- ``alerts`` writes ``guardian_fired.json`` (a region guardian that debounced two alerts and
  started a failover per service) and ``failover_alert_triggered.json`` (one of those failovers,
  trigger ``alert`` with the alerts' fingerprints as evidence);
- ``evacuation`` writes ``evacuation_completed_with_failures.json`` and
  ``evacuation_aborted_rollback_all.json`` (region evacuations: the parent's history);
- ``evacuation_chains`` writes ``chains/evacuation_chain_aborted.json`` (an auto-target evacuation
  that continued as new twice or more: one service busy with a failover of its own, one whose drain
  is refused, then aborted by a person mid-way) and ``chains/evacuation_terminated.json`` (one
  terminated in Temporal with a service's run in flight). A chain's file is what ``evac audit
  export --raw`` writes: one run's history, or a JSON list of its runs' histories, oldest first.
  ``chains/`` is outside the flat set test_replay.py lists; it replays every run of each.
- ``dead_source`` writes ``dead_source_ungraceful.json`` (the demo failover with the source's API
  dead: its own resources unread, the run goes on), ``dead_source_skipped.json`` (a regional
  failover whose source-only drain is skipped and owed) and ``dead_source_drill.json`` (an
  ungraceful drill of it: no call to the source, failed back).
- ``data_tier`` writes ``data_drill_passed.json`` (a drill that switched checkout's Cloud SQL
  primary and moved a Spanner leader, then failed both back) and
  ``data_past_point_of_no_return.json`` (a failover that promoted the replica after an approval,
  then failed: stopped past its point of no return, nothing rolled back).
- ``readiness`` writes ``readiness_evaluated.json`` (one evaluation of the demo failover and
  drill: a service not ready, one whose evaluation could not run, a plan ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowFailureError, WorkflowHandle

from evac.control import drill_inputs, failover_inputs, progress, start_failover
from evac.control.operate import approve, pause, resume
from evac.control.schedules import scheduled_input
from evac.notifications import TargetKind
from evac.plan import Plan, load_plan
from evac.runs import AbortRequest, ApprovalDecision, PauseRequest, ResumeRequest, StepStatus, Trigger, failover_workflow_id
from evac.topology import load_topology
from tests.conftest import DEMO
from tests.workflow.conftest import register_search_attributes, running_worker, start_test_server
from tests.workflow.fingerprints import BASELINE, write_baseline
from tests.workflow.test_drill_workflow import drill_plan
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, refuse_the_dns_shift, step_reaches
from tests.workflow.test_scheduled_drill import blackouts_stand_in
from workflows.drill import DrillWorkflow
from workflows.failover import FailoverWorkflow
from workflows.scheduled import ScheduledDrillWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def record(prefix: str = "failover", out: Path = HISTORIES) -> None:
    topology = load_topology(DEMO / "topology.yaml")
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        for outcome in ("succeeded", "rolled_back", "cancelled"):
            cloud = fresh_cloud()
            if prefix == "notifications":
                cloud.notify_targets = [TargetKind.WEBHOOK, TargetKind.SLACK]
            plan = make_plan()
            if outcome == "rolled_back":
                refuse_the_dns_shift(cloud)
            if outcome == "cancelled":
                plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
            queue = f"record-{prefix}-{outcome}"
            async with running_worker(env.client, queue, cloud.activities()):
                inputs = failover_inputs(plan, topology, Trigger(by="history-fixture"))
                [run] = await start_failover(env.client, inputs, queue, require_worker=False)
                handle: WorkflowHandle = env.client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
                if outcome == "cancelled":
                    await step_reaches(env, handle, 3, StepStatus.RUNNING)
                    await handle.cancel(reason=AbortRequest(by="history-fixture", reason="recorded").cancel_reason())
                try:
                    await handle.result()
                except WorkflowFailureError:
                    pass
                history = await handle.fetch_history()
            (out / f"{prefix}_{outcome}.json").write_text(history.to_json())


def approval_drill_plan() -> Plan:
    """The test drill with a go-ahead from alice or bob before traffic moves."""
    plan = drill_plan(bake="10m")
    data = plan.model_dump(mode="json")
    data["four_eyes"] = True
    data["steps"].insert(2, {"name": "go-ahead", "kind": "approval", "approvers": ["alice", "bob"], "timeout": "30m"})
    return Plan.model_validate(data)


async def record_operator_controls(out: Path = HISTORIES) -> None:
    topology = load_topology(DEMO / "topology.yaml")
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        cloud = fresh_cloud()
        async with running_worker(env.client, "record-operator", [*cloud.activities(), blackouts_stand_in([], [])]):
            [input] = drill_inputs(approval_drill_plan(), topology, Trigger(by="carol@desk", reason="recorded"))
            handle = await env.client.start_workflow(
                DrillWorkflow.run, input, id=failover_workflow_id("checkout"), task_queue="record-operator"
            )
            await pause(env.client, handle.id, PauseRequest(by="dave@desk", reason="recorded pause"))
            await resume(env.client, handle.id, ResumeRequest(by="dave@desk"))
            for _ in range(400):
                if (await progress(env.client, handle.id)).steps[2].approval is not None:
                    break
                await asyncio.sleep(0.05)
            await approve(env.client, handle.id, ApprovalDecision(by="alice@laptop", reason="recorded"))
            await handle.result()
            (out / "drill_approved_paused.json").write_text((await handle.fetch_history()).to_json())

            launcher = scheduled_input("weekly", drill_plan(), topology, "lead@test", bake=timedelta(minutes=2))
            scheduled = await env.client.start_workflow(
                ScheduledDrillWorkflow.run,
                launcher,
                id=f"{launcher.schedule_id}-2026-12-01T10:00:00Z",
                task_queue="record-operator",
            )
            await scheduled.result()
            (out / "scheduled_drill_passed.json").write_text((await scheduled.fetch_history()).to_json())


async def record_alert_driven(out: Path = HISTORIES) -> None:
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.service import RPCError

    from evac.alerting.models import AlertBatch, GuardianInput, GuardianPolicy, guardian_workflow_id
    from tests.workflow.test_guardian import REGION, T0, World, alert, guardian_plans
    from workflows.guardian import RegionGuardianWorkflow

    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        cloud, world = fresh_cloud(), World(env.client)
        gather_facts = world.activities()[0]
        policy = GuardianPolicy(min_duration=timedelta(seconds=30), cooldown=timedelta(minutes=30))
        async with running_worker(
            env.client,
            "record-alerts",
            [*cloud.activities(), gather_facts],
        ):
            for key in ("fp-1", "fp-2"):
                guardian = await env.client.start_workflow(
                    RegionGuardianWorkflow.run,
                    GuardianInput(region=REGION, policy=policy, plans=guardian_plans()),
                    id=guardian_workflow_id(REGION),
                    task_queue="record-alerts",
                    start_signal="alerts",
                    start_signal_args=[AlertBatch(alerts=[alert(key, service=None)], received_at=T0)],
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
            checkout = env.client.get_workflow_handle(failover_workflow_id("checkout"))
            for _ in range(600):  # until the guardian started it (the server skips the debounce's time)
                try:
                    await checkout.result()  # (waiting on a result lets the time-skipping server skip)
                    break
                except RPCError:  # not started yet
                    await asyncio.sleep(0.05)
            await env.client.get_workflow_handle(failover_workflow_id("catalog")).result()
            (out / "failover_alert_triggered.json").write_text((await checkout.fetch_history()).to_json())
            (out / "guardian_fired.json").write_text((await guardian.fetch_history()).to_json())
            await guardian.terminate("recorded")


async def record_evacuations(out: Path = HISTORIES) -> None:
    """A region evacuation that ends completed_with_failures (two tiers, one service's drain
    refused for good) and one aborted with rollback_all (two services failed back)."""
    from evac.evacuation import EvacuationAbort
    from tests.workflow.test_evacuation_workflow import SOURCE, Cloud, evacuation_input, outcome, start, tiered, until
    from workflows.evacuation import EvacuationWorkflow

    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        topology = tiered(4, {"data": 2})
        cloud = Cloud(topology)
        cloud.refuse_drain.add(topology.services[list(topology.services)[1]].regions[SOURCE].backend_service)
        async with running_worker(env.client, "record-evacuation", cloud.activities()):
            handle = await start(env.client, "record-evacuation", evacuation_input(topology, window=2))
            await outcome(handle)
            (out / "evacuation_completed_with_failures.json").write_text((await handle.fetch_history()).to_json())
        topology = tiered(4, {"data": 2})
        cloud = Cloud(topology)
        held = list(topology.services)[2]
        cloud.gates[held] = asyncio.Event()
        async with running_worker(env.client, "record-evacuation-abort", cloud.activities()):
            handle = await start(env.client, "record-evacuation-abort", evacuation_input(topology, window=1))
            await until(lambda: held in cloud.active, f"{held}'s drain in progress")
            request = EvacuationAbort(by="history-fixture", reason="recorded", rollback_all=True)
            await handle.execute_update(EvacuationWorkflow.abort, request)
            await outcome(handle)
            (out / "evacuation_aborted_rollback_all.json").write_text((await handle.fetch_history()).to_json())


async def record_evacuation_chains(out: Path = HISTORIES) -> None:
    """Evacuations whose audit record spans a chain of runs, for tests/unit/test_evacuation_audit.py."""
    from evac.audit.evacuation import raw_histories
    from evac.control.audit import histories
    from evac.evacuation import EvacService, EvacuationAbort, Sizing, evacuation_workflow_id, service_plan
    from evac.plan import Guards
    from evac.runs import FailoverInput
    from tests.workflow.test_evacuation_workflow import QUICK, SOURCE, TARGET, Cloud, evacuation_input, outcome, tiered, until
    from workflows.evacuation import EvacuationWorkflow

    chains = out / "chains"
    chains.mkdir(exist_ok=True)
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        topology = tiered(16, {"data": 6, "api": 6})
        names = list(topology.services)
        busy, refused, held = names[1], names[7], names[13:15]  # data, api, untiered
        cloud = Cloud(topology)
        cloud.refuse_drain.add(topology.services[refused].regions[SOURCE].backend_service)
        cloud.gates[busy] = asyncio.Event()  # its own failover holds it while the evacuation starts its tier
        for name in held:  # in flight (the window's two runs) when the abort comes; never released
            cloud.gates[name] = asyncio.Event()
        queue = "record-evacuation-chain"
        async with running_worker(env.client, queue, cloud.activities()):
            sizing = Sizing(need=1, scale_to=None, verdict="its own failover: the guard's minimum")
            plan = service_plan(SOURCE, TARGET, EvacService(name=busy, topology=topology.services[busy]), sizing, Guards(), QUICK)
            own = FailoverInput(
                plan=plan,
                plan_digest=plan.digest(),
                service=busy,
                project=topology.project,
                topology=topology.services[busy],
                trigger=Trigger(by="carol@desk", reason="a failover of its own"),
            )
            holder = await env.client.start_workflow(FailoverWorkflow.run, own, id=failover_workflow_id(busy), task_queue=queue)
            await until(lambda: busy in cloud.active, f"{busy}'s own drain in progress")
            input = evacuation_input(topology, target=None, window=2, history_events_before_continue=50)
            input = input.model_copy(update={"trigger": Trigger(by="alice@laptop", reason="europe-west1 degraded")})
            handle = await env.client.start_workflow(
                EvacuationWorkflow.run, input, id=evacuation_workflow_id(SOURCE), task_queue=queue
            )
            await until(lambda: set(held) <= cloud.active, f"{', '.join(held)}'s drains in progress")
            request = EvacuationAbort(by="bob@desk", reason="the region recovered")
            await handle.execute_update(EvacuationWorkflow.abort, request)
            await outcome(handle)
            cloud.gates[busy].set()
            with contextlib.suppress(WorkflowFailureError):  # (the test server may have skipped past its deadline)
                await holder.result()
            chain = await histories(env.client, handle.id)
            assert len(chain) >= 3, f"the evacuation ran {len(chain)} run(s); a chain of three or more was wanted"
            (chains / "evacuation_chain_aborted.json").write_text(raw_histories(chain))

        topology = tiered(3, {"data": 1})
        cloud = Cloud(topology)
        held = list(topology.services)[1]
        cloud.gates[held] = asyncio.Event()
        queue = "record-evacuation-terminated"
        async with running_worker(env.client, queue, cloud.activities()):
            input = evacuation_input(topology, window=1)
            handle = await env.client.start_workflow(
                EvacuationWorkflow.run, input, id=f"{evacuation_workflow_id(SOURCE)}-terminated", task_queue=queue
            )
            await until(lambda: held in cloud.active, f"{held}'s drain in progress")
            await handle.terminate(reason="operator: stuck, evacuating by hand")
            cloud.gates[held].set()  # its run goes on (ABANDON) and ends on its own
            await env.client.get_workflow_handle(failover_workflow_id(held)).result()
            chain = await histories(env.client, handle.id)
            (chains / "evacuation_terminated.json").write_text(raw_histories(chain))


async def record_failovers(out: Path = HISTORIES) -> None:
    await record("failover", out)


async def record_notifications(out: Path = HISTORIES) -> None:
    await record("notifications", out)


async def record_dead_source(out: Path = HISTORIES) -> None:
    from tests.workflow.test_dead_source import regional_cloud, regional_plan, start_drill, with_budget
    from tests.workflow.test_failover_workflow import SOURCE, start

    demo, regional = load_topology(DEMO / "topology.yaml"), load_topology(DEMO.parent / "regional" / "topology.yaml")
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        cloud = fresh_cloud()
        cloud.api_down = {SOURCE: "errors"}
        async with running_worker(env.client, "record-dead-source", cloud.activities()):
            handle = await start(env, "record-dead-source", with_budget(make_plan()), demo)
            await handle.result()
            (out / "dead_source_ungraceful.json").write_text((await handle.fetch_history()).to_json())
        cloud = regional_cloud()
        cloud.api_down = {SOURCE: "errors"}
        async with running_worker(env.client, "record-dead-source-skipped", cloud.activities()):
            handle = await start(env, "record-dead-source-skipped", regional_plan(), regional)
            await handle.result()
            (out / "dead_source_skipped.json").write_text((await handle.fetch_history()).to_json())
        cloud = regional_cloud()
        plan = Plan.model_validate(
            {**regional_plan().model_dump(mode="json"), "name": "drill-test", "kind": "drill", "drill": {"bake": "1m"}}
        )
        async with running_worker(env.client, "record-dead-source-drill", cloud.activities()):
            handle = await start_drill(env, "record-dead-source-drill", plan, regional, "payments", True)
            await handle.result()
            (out / "dead_source_drill.json").write_text((await handle.fetch_history()).to_json())


async def record_data_tier(out: Path = HISTORIES) -> None:
    from tests.workflow.test_data_tier import (
        APPROVAL,
        DNS,
        PROMOTE,
        SWITCHOVER,
        approval_waits,
        data_cloud,
        ended,
        plan,
        refuse_the_dns_shift,
    )
    from tests.workflow.test_failover_workflow import start
    from workflows.drill import DrillWorkflow

    data = load_topology(DEMO.parent / "data" / "topology.yaml")
    services = dict(data.services)
    services["checkout"] = services["checkout"].model_copy(update={"spanner": services["catalog"].spanner})
    both = data.model_copy(update={"services": services})  # checkout with a Spanner database too
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        cloud = data_cloud(lag=4.0)
        leader = {"name": "leader", "kind": "spanner_leader"}
        drill = plan(SWITCHOVER, leader, DNS, kind="drill", drill={"bake": "10m", "rpo_target": "30s"})
        [input] = drill_inputs(drill, both, Trigger(by="test"))
        async with running_worker(env.client, "record-data-drill", cloud.activities()):
            handle = await env.client.start_workflow(
                DrillWorkflow.run, input, id=failover_workflow_id("checkout"), task_queue="record-data-drill"
            )
            await handle.result()
            (out / "data_drill_passed.json").write_text((await handle.fetch_history()).to_json())
        cloud = data_cloud(lag=1.0)
        refuse_the_dns_shift(cloud)
        async with running_worker(env.client, "record-data-promote", cloud.activities()):
            handle = await start(env, "record-data-promote", plan(APPROVAL, PROMOTE, DNS), data)
            await approval_waits(env, handle, 1)
            await approve(env.client, handle.id, ApprovalDecision(by="alice", reason="europe-west1 is gone"))
            await ended(env, handle)
            (out / "data_past_point_of_no_return.json").write_text((await handle.fetch_history()).to_json())


async def record_readiness(out: Path = HISTORIES) -> None:
    from evac import workflow_types
    from evac.readiness import PlanToEvaluate, ReadinessInput
    from tests.workflow.test_readiness_workflow import evaluate_readiness

    demo = load_topology(DEMO / "topology.yaml")
    plans = [load_plan(DEMO / "failover.yaml", demo), load_plan(DEMO / "drill.yaml", demo)]
    input = ReadinessInput(
        plans=[
            PlanToEvaluate(
                file=f"{plan.name}.yaml", plan=plan, project=demo.project, topologies={s: demo.services[s] for s in plan.services}
            )
            for plan in plans
        ]
    )
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        async with running_worker(env.client, "record-readiness", [evaluate_readiness]):
            handle = await env.client.start_workflow(
                workflow_types.READINESS, input, id="readiness/check/recorded", task_queue="record-readiness"
            )
            await handle.result()
            (out / "readiness_evaluated.json").write_text((await handle.fetch_history()).to_json())


SETS: dict[str, Callable[[Path], Awaitable[None]]] = {
    "readiness": record_readiness,
    "data_tier": record_data_tier,
    "dead_source": record_dead_source,
    "failover": record_failovers,
    "notifications": record_notifications,
    "operator": record_operator_controls,
    "alerts": record_alert_driven,
    "evacuation": record_evacuations,
    "evacuation_chains": record_evacuation_chains,
}


async def record_all(out: Path = HISTORIES) -> None:
    """Every set, one after another (about a minute)."""
    for record_set in SETS.values():
        await record_set(out)


async def main(name: str) -> None:
    await (record_all if name == "all" else SETS[name])(HISTORIES)
    write_baseline(HISTORIES, BASELINE)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "all"))
    # Skip interpreter teardown, which the Temporal client's native threads can abort
    # (temporalio/sdk-python#300; the evac CLI does the same).
    os._exit(0)
