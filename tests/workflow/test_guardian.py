"""RegionGuardianWorkflow and AutoSwitchWorkflow on the time-skipping server.

The guardian runs for real, with its pure policy; what it reads from the world comes from a
stand-in ``gather_facts`` (health, runs, visibility), except the kill switch and the target
region's alerts, which the real activity code reads from the real workflows on the test server.
The failover it starts is a stand-in registered as ``FailoverWorkflow``: it reports its input to
the test and holds ``failover/<service>`` until told to finish.

Each test has a test server of its own: a guardian and its failovers never end on their own,
and the kill switch is one per namespace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import pytest
    import typer
    from temporalio.client import Client, WorkflowHandle, WorkflowHistory
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
    from temporalio.worker import Replayer, Worker
    from typer.testing import CliRunner, Result

    from activities.guardian import GuardianActivities
    from emulator.testing import RunningEmulator
    from evac import search_attributes
    from evac.activity_api import GATHER_FACTS, FactsRequest, ServiceQuery
    from evac.alerting import status as guardian_status
    from evac.alerting.models import (
        MAX_BATCH_ALERTS,
        MAX_CONFIG_BYTES,
        AlertBatch,
        AlertEvidence,
        Decision,
        GuardianConfig,
        GuardianInput,
        GuardianPlan,
        GuardianPolicy,
        ServiceFacts,
        WorldFacts,
        guardian_workflow_id,
    )
    from evac.alerting.status import GuardianStatus
    from evac.bindings import backend_ref
    from evac.cli import alerts as alerts_cli
    from evac.control import alerts as control
    from evac.control.start import failover_inputs, load_documents
    from evac.evacuation import EvacuationInput, evacuation_workflow_id, plan_groups
    from evac.plan import Plan
    from evac.runs import FailoverInput, Trigger, failover_workflow_id
    from evac.stack import find_binary
    from evac.topology import Topology
    from evac.workflow_types import FAILOVER as FAILOVER_WORKFLOW
    from providers.gcp.clients import GcpClients
    from providers.registry import Providers
    from tests.conftest import DEMO
    from tests.workflow.conftest import asleep
    from workflows.auto_switch import AutoSwitchWorkflow
    from workflows.failover import FailoverWorkflow
    from workflows.guardian import RegionGuardianWorkflow

REGION = "europe-west1"
TARGET = "us-central1"
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
FAILOVER_STARTED = "test_failover_started"
EVACUATION_STARTED = "test_evacuation_started"
POLICY = GuardianPolicy(min_duration=timedelta(seconds=60), cooldown=timedelta(minutes=30), max_per_hour=5)


# --- the stand-ins ------------------------------------------------------------------------


@workflow.defn(name="FailoverWorkflow")
class RecordingFailover:
    """Stands in for the failover a guardian starts: tells the test its input, then holds the
    service's lock (its workflow id) until the ``finish`` signal."""

    def __init__(self) -> None:
        self._finish = False

    @workflow.signal
    def finish(self) -> None:
        self._finish = True

    @workflow.run
    async def run(self, input: FailoverInput) -> str:
        await workflow.execute_activity(FAILOVER_STARTED, input, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self._finish)
        return "finished"


@workflow.defn(name="EvacuationWorkflow")
class RecordingEvacuation:
    """Stands in for the evacuation a guardian starts: tells the test its input, then holds
    ``evacuation/<region>`` until the ``finish`` signal."""

    def __init__(self) -> None:
        self._finish = False

    @workflow.signal
    def finish(self) -> None:
        self._finish = True

    @workflow.run
    async def run(self, input: EvacuationInput) -> str:
        await workflow.execute_activity(EVACUATION_STARTED, input, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self._finish)
        return "finished"


@dataclass
class World:
    """What ``gather_facts`` reports, and what the guardian asked and started."""

    client: Client
    healthy: dict[str, int | None] = field(default_factory=lambda: {TARGET: 3})
    busy: dict[str, str] = field(default_factory=dict)
    automatic_last_hour: int = 0
    requests: list[FactsRequest] = field(default_factory=list)
    started: list[FailoverInput] = field(default_factory=list)
    evacuations: list[EvacuationInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., object]]:
        real = GuardianActivities(self.client, Providers.of(GcpClients.create("http://127.0.0.1:9")))

        @activity.defn(name=GATHER_FACTS)
        async def gather_facts(input: FactsRequest) -> WorldFacts:
            self.requests.append(input)
            targets = sorted({query.target for query in input.services})
            alerts = dict(zip(targets, await asyncio.gather(*(real.target_alerts(t) for t in targets)), strict=True))
            return WorldFacts(
                switch=await real.read_switch(),
                automatic_last_hour=self.automatic_last_hour,
                services=[
                    ServiceFacts(
                        service=query.service,
                        target=query.target,
                        target_healthy=self.healthy.get(query.target),
                        target_required=query.target_required,
                        target_alerts=alerts[query.target],
                        busy=self.busy.get(query.service),
                    )
                    for query in input.services
                ],
            )

        @activity.defn(name=FAILOVER_STARTED)
        async def failover_started(input: FailoverInput) -> None:
            self.started.append(input)

        @activity.defn(name=EVACUATION_STARTED)
        async def evacuation_started(input: EvacuationInput) -> None:
            self.evacuations.append(input)

        return [gather_facts, failover_started, evacuation_started]


@pytest.fixture
def world(own_env: WorkflowEnvironment) -> World:
    return World(own_env.client)


@asynccontextmanager
async def guardian_worker(env: WorkflowEnvironment, task_queue: str, world: World) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[RegionGuardianWorkflow, AutoSwitchWorkflow, RecordingFailover, RecordingEvacuation],
        activities=world.activities(),
    ) as worker:
        yield worker


# --- inputs and helpers -------------------------------------------------------------------


@cache
def demo() -> tuple[Plan, Topology]:
    return load_documents(DEMO / "failover.yaml", None)


def guardian_plans(*, auto: bool = True) -> list[GuardianPlan]:
    """The demo plan's services (checkout, catalog) out of europe-west1, as the receiver hands them."""
    plan, topology = demo()
    inputs = failover_inputs(plan, topology, Trigger(by="evac-alerts"))
    return [GuardianPlan(service=i.service, plan_name=plan.name, target=plan.target, auto=auto, input=i) for i in inputs]


def alert(key: str, *, service: str | None = "checkout", firing: bool = True, region: str = REGION) -> AlertEvidence:
    return AlertEvidence(
        source="alertmanager",
        key=key,
        name="BackendsUnhealthy",
        region=region,
        service=service,
        firing=firing,
        starts_at=T0,
    )


async def send(
    env: WorkflowEnvironment,
    task_queue: str,
    *alerts: AlertEvidence,
    region: str = REGION,
    policy: GuardianPolicy = POLICY,
    evacuation: EvacuationInput | None = None,
) -> WorkflowHandle[RegionGuardianWorkflow, None]:
    """What the receiver does with a delivery: signal-with-start the region's guardian."""
    return await env.client.start_workflow(
        RegionGuardianWorkflow.run,
        GuardianInput(region=region, policy=policy, plans=guardian_plans() if region == REGION else [], evacuation=evacuation),
        id=guardian_workflow_id(region),
        task_queue=task_queue,
        start_signal="alerts",
        start_signal_args=[AlertBatch(alerts=list(alerts), received_at=T0)],
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def status(env: WorkflowEnvironment, region: str = REGION) -> GuardianStatus:
    [found] = await control.status(env.client, region)
    return found


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


async def received(env: WorkflowEnvironment, count: int, region: str = REGION) -> GuardianStatus:
    """The guardian's status once it has applied ``count`` alerts (and decided on them)."""

    async def applied() -> bool:
        return (await status(env, region)).state.received == count

    await eventually(applied)
    return await status(env, region)


async def settled(env: WorkflowEnvironment, region: str = REGION) -> None:
    """Until the guardian's newest run is asleep (see tests/workflow/conftest.asleep).

    The time-skipping server's continue-as-new is not atomic (temporalio/sdk-java#1538): a
    signal-with-start that lands while a run is completing with continue-as-new can leave a
    workflow task of the closed run counted as in flight, and from then on the server skips no
    time, so a test's ``env.sleep`` takes real time. Tests that drive a guardian through
    continue-as-new on that server deliver one alert at a time, each once the guardian has
    settled; the test on the dev server sends them back to back, as a receiver does.
    """
    handle = env.client.get_workflow_handle(guardian_workflow_id(region))

    async def quiet() -> bool:
        return await asleep(handle)

    await eventually(quiet)


async def started(world: World, count: int) -> None:
    async def enough() -> bool:
        return len(world.started) >= count

    await eventually(enough)


def decisions(found: GuardianStatus, verdict: str, service: str | None = "checkout") -> list[Decision]:
    return [d for d in found.state.decisions if d.verdict == verdict and d.service == service]


async def decided(env: WorkflowEnvironment, verdict: str, service: str | None = "checkout", guard: str | None = None) -> Decision:
    """The newest decision of ``verdict`` (and ``guard``) for the service, once there is one."""

    async def there() -> bool:
        return any(d.guard == guard for d in decisions(await status(env), verdict, service))

    await eventually(there)
    return [d for d in decisions(await status(env), verdict, service) if d.guard == guard][-1]


async def assert_replays(history: WorkflowHistory) -> None:
    """The guardian's history replays on its code: every path it took is deterministic."""
    replayer = Replayer(
        workflows=[RegionGuardianWorkflow, AutoSwitchWorkflow, RecordingFailover, RecordingEvacuation],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def finish(env: WorkflowEnvironment, service: str) -> None:
    handle = env.client.get_workflow_handle(failover_workflow_id(service))
    await handle.signal(RecordingFailover.finish)
    await handle.result()


# --- debounce and withdrawal --------------------------------------------------------------


async def test_a_failover_fires_only_once_the_evidence_held_the_policys_minimum(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp1"))
        found = await received(own_env, 1)
        [hold] = decisions(found, "hold")
        assert hold.reason.startswith("evidence held 0s of 1m")
        assert found.state.evidence_since is not None
        assert found.wake_at == found.state.evidence_since + timedelta(seconds=60)

        await own_env.sleep(timedelta(seconds=30))
        found = await status(own_env)
        assert world.started == [] and world.requests == []  # not even the facts were read
        assert decisions(found, "fire") == []

        await own_env.sleep(timedelta(seconds=35))
        await started(world, 1)
        fire = await decided(own_env, "fire")
        found = await status(own_env)
        await assert_replays(await own_env.client.get_workflow_handle(guardian_workflow_id(REGION)).fetch_history())

    [failover] = world.started
    assert failover.service == "checkout" and failover.plan.target == TARGET
    assert failover.trigger.kind == "alert" and failover.trigger.by == f"evac-guardian/{REGION}"
    assert failover.trigger.evidence == ["alertmanager:fp1"] and "BackendsUnhealthy" in failover.trigger.reason
    # Only the facts of the one candidate were read, once; the decision names the run it started.
    [request] = world.requests
    assert [q.service for q in request.services] == ["checkout"] and request.services[0].target_backend is not None
    assert fire.workflow_id == "failover/checkout" and fire.run_id
    [record] = found.state.started
    assert (record.service, record.run_id, record.evidence) == ("checkout", fire.run_id, ["alertmanager:fp1"])
    assert (fire.at - found.state.evidence_since) >= timedelta(seconds=60)


async def test_alerts_resolved_before_the_window_ends_start_nothing(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=30))
        await send(own_env, task_queue, alert("fp1", firing=False))
        found = await received(own_env, 2)
        assert found.state.firing == {} and found.state.evidence_since is None
        [withdrawn] = decisions(found, "withdrawn")
        assert "evidence withdrawn" in withdrawn.reason and withdrawn.evidence == ["alertmanager:fp1"]

        await own_env.sleep(timedelta(minutes=5))
        found = await status(own_env)

    assert world.started == [] and world.requests == []
    assert decisions(found, "fire") == [] and found.wake_at is None


# --- region_wide = "evacuate" --------------------------------------------------------------

EVACUATE = POLICY.model_copy(update={"region_wide": "evacuate"})


def region_evacuation() -> EvacuationInput:
    """The demo topology's europe-west1 evacuation, as the receiver hands it (auto-target)."""
    _, topology = demo()
    groups = plan_groups(topology, REGION, target=None)
    trigger = Trigger(kind="alert", by=f"evac-guardian/{REGION}", reason="(filled in when it fires)")
    return EvacuationInput(region=REGION, target=None, project=topology.project, groups=groups, trigger=trigger)


async def test_region_wide_alerts_start_one_evacuation_and_a_second_episode_while_it_runs_is_busy(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("r1", service=None), policy=EVACUATE, evacuation=region_evacuation())
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))

        async def evacuating() -> bool:
            return len(world.evacuations) == 1

        await eventually(evacuating)
        found = await status(own_env)
        [fire] = decisions(found, "fire", service=None)
        assert fire.workflow_id == evacuation_workflow_id(REGION) and fire.run_id
        [record] = found.state.evacuations
        assert (record.run_id, record.evidence, record.services) == (fire.run_id, ["alertmanager:r1"], 2)

        # The episode ends and a new one begins while the evacuation still runs: busy, nothing started.
        await send(own_env, task_queue, alert("r1", service=None, firing=False))
        await received(own_env, 2)
        await send(own_env, task_queue, alert("r2", service=None))
        await received(own_env, 3)
        await own_env.sleep(timedelta(seconds=61))
        busy = await decided(own_env, "suppressed", service=None, guard="busy")
        assert "was already running" in busy.reason
        await assert_replays(await own_env.client.get_workflow_handle(guardian_workflow_id(REGION)).fetch_history())
        shown = await invoke(own_env, task_queue, "status", REGION)

    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "region-wide alerts evacuate the region" in text and "evacuations it started" in text
    assert f"evacuation/{REGION}" in text
    [evacuation] = world.evacuations
    assert world.started == []  # no failover of each service on region-wide evidence
    assert evacuation.target is None and sorted(evacuation.service_names()) == ["catalog", "checkout"]
    assert (evacuation.trigger.kind, evacuation.trigger.by) == ("alert", f"evac-guardian/{REGION}")
    assert evacuation.trigger.evidence == ["alertmanager:r1"]


async def test_the_kill_switch_suppresses_an_evacuation(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await control.disable(own_env.client, "oncall@test", "maintenance in europe", task_queue=task_queue)
        await send(own_env, task_queue, alert("r1", service=None), policy=EVACUATE, evacuation=region_evacuation())
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        suppressed = await decided(own_env, "suppressed", service=None, guard="kill_switch")

    assert "automatic evacuation is disabled by oncall@test" in suppressed.reason
    assert world.evacuations == [] and world.started == []


# --- guards -------------------------------------------------------------------------------


async def test_a_service_that_failed_over_is_not_failed_over_again_within_the_cooldown(own_env, task_queue, world, monkeypatch):
    monkeypatch.setattr(guardian_status, "GUARDIAN_RECHECK", timedelta(minutes=10))
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        await started(world, 1)
        await finish(own_env, "checkout")
        # The evidence ends and a new episode begins ten minutes after the failover.
        await send(own_env, task_queue, alert("fp1", firing=False))
        await received(own_env, 2)
        await own_env.sleep(timedelta(minutes=10))
        await send(own_env, task_queue, alert("fp2"))
        await received(own_env, 3)
        await own_env.sleep(timedelta(seconds=61))
        cooldown = await decided(own_env, "suppressed", guard="cooldown")
        assert len(world.started) == 1
        assert "within the 30m cooldown" in cooldown.reason

        # The guardian decides again on its own; once the cooldown has passed, it fires.
        await own_env.sleep(timedelta(minutes=25))
        await started(world, 2)
        first, second = (await status(own_env)).state.started

    assert [f.trigger.evidence for f in world.started] == [["alertmanager:fp1"], ["alertmanager:fp2"]]
    assert second.at - first.at >= POLICY.cooldown


async def test_the_hourly_cap_holds_across_services(own_env, task_queue, world, monkeypatch):
    monkeypatch.setattr(guardian_status, "GUARDIAN_RECHECK", timedelta(minutes=10))
    policy = POLICY.model_copy(update={"max_per_hour": 1})
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp1", service="checkout"), alert("fp2", service="catalog"), policy=policy)
        await received(own_env, 2)
        await own_env.sleep(timedelta(seconds=61))
        await started(world, 1)
        capped = await decided(own_env, "suppressed", service="checkout", guard="cap")
        assert "the cap is 1 an hour" in capped.reason
        assert [f.service for f in world.started] == ["catalog"]

        await own_env.sleep(timedelta(minutes=71))  # the guardian decides again on its own
        await started(world, 2)

    assert [f.service for f in world.started] == ["catalog", "checkout"]


async def test_the_kill_switch_stops_every_automatic_decision_and_is_itself_recorded(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        switch = await control.disable(own_env.client, "oncall@test", "maintenance in europe", task_queue=task_queue)
        assert (switch.enabled, switch.by, switch.reason) == (False, "oncall@test", "maintenance in europe")
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        suppressed = await decided(own_env, "suppressed", guard="kill_switch")
        assert "disabled by oncall@test" in suppressed.reason and "maintenance in europe" in suppressed.reason
        await own_env.sleep(timedelta(minutes=5))  # it decides again, and again the switch holds
        assert world.started == [] and len(world.requests) > 1

        await control.enable(own_env.client, "oncall@test", "maintenance done", task_queue=task_queue)
        await own_env.sleep(guardian_status.GUARDIAN_RECHECK)  # (no visibility here to wake them: see the dev-server test)
        await started(world, 1)
        record = await control.read_switch(own_env.client)

    assert record.switch.enabled and record.switch.reason == "maintenance done"
    assert [(c.enabled, c.by, c.reason) for c in record.changes] == [
        (False, "oncall@test", "maintenance in europe"),
        (True, "oncall@test", "maintenance done"),
    ]
    assert record.changes[0].at is not None and record.changes[0].at <= record.changes[1].at


async def test_no_failover_into_a_target_with_firing_alerts_of_its_own(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("target-fp", service=None, region=TARGET), region=TARGET)
        await received(own_env, 1, region=TARGET)
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        suppressed = await decided(own_env, "suppressed", guard="target_alerting")

    assert "alertmanager:target-fp" in suppressed.reason
    assert world.started == []


async def test_no_failover_into_a_target_without_enough_healthy_backends(own_env, task_queue, world):
    world.healthy[TARGET] = 0
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        suppressed = await decided(own_env, "suppressed", guard="target_unhealthy")

    assert "cannot serve" in suppressed.reason
    assert world.started == []


async def test_a_service_whose_run_started_meanwhile_is_suppressed_busy_and_its_run_left_alone(own_env, task_queue, world):
    manual_input = guardian_plans()[0].input
    async with guardian_worker(own_env, task_queue, world):
        manual = await own_env.client.start_workflow(
            RecordingFailover.run, manual_input, id=failover_workflow_id(manual_input.service), task_queue=task_queue
        )
        await started(world, 1)
        # Visibility has not seen the run yet: the facts say the service is free.
        await send(own_env, task_queue, alert("fp1", service=manual_input.service))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        busy = await decided(own_env, "suppressed", service=manual_input.service, guard="busy")
        description = await manual.describe()

    assert "already running" in busy.reason
    assert world.started == [manual_input]
    assert description.run_id == manual.first_execution_run_id  # the manual run is the one running


# --- storms and continue-as-new -----------------------------------------------------------


async def test_a_storm_of_duplicate_alerts_starts_one_failover_per_service(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        await send(own_env, task_queue, alert("fp-checkout", service="checkout"))
        storm = [alert("fp-checkout" if i % 2 else "fp-catalog", service="checkout" if i % 2 else "catalog") for i in range(499)]
        await asyncio.gather(*(send(own_env, task_queue, one) for one in storm))
        found = await received(own_env, 500)
        assert found.state.duplicates == 498 and sorted(found.state.firing) == [
            "alertmanager:fp-catalog",
            "alertmanager:fp-checkout",
        ]
        await own_env.sleep(timedelta(seconds=61))
        await started(world, 2)
        await own_env.sleep(timedelta(minutes=10))
        found = await status(own_env)

    assert sorted(f.service for f in world.started) == ["catalog", "checkout"]
    assert sorted(d.service or "" for d in found.state.decisions if d.verdict == "fire") == ["catalog", "checkout"]
    # The storm did not flood the record.
    assert len(found.state.decisions) < 20


async def test_continue_as_new_keeps_the_evidence_the_record_and_the_timer(own_env, task_queue, world, monkeypatch):
    monkeypatch.setattr(guardian_status, "GUARDIAN_HISTORY_LIMIT", 40)
    async with guardian_worker(own_env, task_queue, world):
        handle = await send(own_env, task_queue, alert("fp1"))
        first = await received(own_env, 1)
        for i in range(2, 31):
            await settled(own_env)
            await send(own_env, task_queue, alert("fp1" if i % 3 else f"fp{i}"))
        found = await received(own_env, 30)
        assert found.state.runs > 1 and found.run_id != first.run_id
        # Nothing was lost on the way: every alert counted, the episode's start kept, the record kept.
        assert found.state.evidence_since == first.state.evidence_since
        assert len(found.state.firing) == 11 and found.state.duplicates == 19
        assert any(d.verdict == "hold" and d.service == "checkout" for d in found.state.decisions)

        await settled(own_env)
        await own_env.sleep(timedelta(seconds=61))
        await started(world, 1)
        fired = await status(own_env)
        # More alerts of the same episode: more runs, and still one failover, which outlives them all.
        for _ in range(20):
            await settled(own_env)
            await send(own_env, task_queue, alert("fp1"))
        await settled(own_env)
        await own_env.sleep(timedelta(minutes=5))
        found = await received(own_env, 50)
        failover = await own_env.client.get_workflow_handle(failover_workflow_id("checkout")).describe()
        first_run = own_env.client.get_workflow_handle(handle.id, run_id=first.run_id)
        description = await first_run.describe()
        await assert_replays(await first_run.fetch_history())

    assert len(world.started) == 1 and len(world.started[0].trigger.evidence) == 11
    assert found.state.runs > fired.state.runs and found.state.started == fired.state.started
    assert [s.service for s in found.state.started] == ["checkout"]
    assert failover.status is not None and failover.status.name == "RUNNING"
    assert description.status is not None and description.status.name == "CONTINUED_AS_NEW"


async def test_a_configure_signal_replaces_the_policy_and_the_plans(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        handle = await send(own_env, task_queue, alert("fp1", service="payments"))
        found = await received(own_env, 1)
        [no_plan] = decisions(found, "hold", service="payments")
        assert no_plan.guard == "no_plan"
        slow = POLICY.model_copy(update={"min_duration": timedelta(minutes=10)})
        await handle.signal(RegionGuardianWorkflow.configure, GuardianConfig(policy=slow, plans=guardian_plans()[:1]))

        async def configured() -> bool:
            return (await status(own_env)).policy == slow

        await eventually(configured)
        found = await status(own_env)

    assert [p.service for p in found.plans] == [guardian_plans()[0].service]


async def test_messages_beyond_the_guardians_bounds_are_dropped_and_it_goes_on(own_env, task_queue, world):
    """Issue 20: a namespace user can signal a guardian directly. A delivery beyond the model's
    bounds (an alert name of 1 MB, more alerts than a signal takes) does not decode and is
    dropped; a configuration too large to keep is ignored; the guardian still takes what follows."""
    async with guardian_worker(own_env, task_queue, world):
        handle = await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        huge_name = alert("fp2").model_dump(mode="json") | {"name": "N" * 1_000_000}
        await handle.signal("alerts", {"alerts": [huge_name], "received_at": T0.isoformat()})
        too_many = [alert(f"many{i}").model_dump(mode="json") for i in range(MAX_BATCH_ALERTS + 1)]
        await handle.signal("alerts", {"alerts": too_many, "received_at": T0.isoformat()})
        plans = guardian_plans()
        heavy = GuardianConfig(policy=POLICY.model_copy(update={"min_alerts": 9}), plans=plans * (MAX_CONFIG_BYTES // 3000))
        assert heavy.size_problem(REGION) is not None and len(heavy.model_dump_json()) < 1_900_000
        await handle.signal(RegionGuardianWorkflow.configure, heavy)
        await handle.signal("alerts", AlertBatch(alerts=[alert("fp3")], received_at=T0))
        found = await received(own_env, 2)

    assert sorted(found.state.firing) == ["alertmanager:fp1", "alertmanager:fp3"]
    assert found.policy == POLICY and len(found.plans) == len(plans)


async def test_the_kill_switch_continues_as_new_with_its_newest_changes(own_env, task_queue, world, monkeypatch):
    monkeypatch.setattr(guardian_status, "SWITCH_CHANGES_LIMIT", 3)
    monkeypatch.setattr(guardian_status, "SWITCH_CHANGES_KEPT", 2)
    async with guardian_worker(own_env, task_queue, world):
        for i in range(4):
            act = control.enable if i % 2 else control.disable
            await act(own_env.client, "oncall@test", f"change {i}", task_queue=task_queue)

        async def four() -> bool:
            return (await control.read_switch(own_env.client)).switch.reason == "change 3"

        await eventually(four)
        record = await control.read_switch(own_env.client)

    assert record.runs == 2 and record.switch.enabled
    assert [c.reason for c in record.changes] == ["change 1", "change 2", "change 3"]


async def test_a_malformed_kill_switch_change_changes_and_records_nothing(own_env, task_queue, world):
    """Issue 20: the kill switch's `set` signal took any `by` and any reason (a forged "disabled
    by ceo@corp" line, megabytes of reason in every change kept)."""
    from evac.alerting.models import AUTO_SWITCH_ID, SwitchChange
    from workflows.auto_switch import AutoSwitchWorkflow

    async with guardian_worker(own_env, task_queue, world):
        await control.disable(own_env.client, "oncall@test", "maintenance", task_queue=task_queue)
        handle = own_env.client.get_workflow_handle(AUTO_SWITCH_ID)
        for by, reason in (("oncall@test\n✔ enabled by ceo@corp", "x"), ("mallory", "r" * 900_000)):
            await handle.signal(AutoSwitchWorkflow.set, SwitchChange(enabled=True, by=by, reason=reason))
        await control.enable(own_env.client, "oncall@test", "done", task_queue=task_queue)

        async def enabled() -> bool:
            return (await control.read_switch(own_env.client)).switch.enabled

        await eventually(enabled)
        record = await control.read_switch(own_env.client)
    assert [(c.by, c.reason) for c in record.changes] == [("oncall@test", "maintenance"), ("oncall@test", "done")]


# --- the real facts -----------------------------------------------------------------------


def fact_queries() -> list[ServiceQuery]:
    return [
        ServiceQuery(
            service=p.service,
            target=p.target,
            target_required=p.input.plan.guards.min_healthy_target,
            target_backend=backend_ref(p.input.project, p.input.topology, p.target),
        )
        for p in guardian_plans()
    ]


async def test_the_real_facts_read_runs_alerts_and_health_and_call_the_unreadable_unknown(
    own_env, task_queue, world, emulator: RunningEmulator
):
    request = FactsRequest(region=REGION, services=fact_queries())
    manual_input = guardian_plans()[0].input
    async with guardian_worker(own_env, task_queue, world):
        await own_env.client.start_workflow(
            RecordingFailover.run, manual_input, id=failover_workflow_id(manual_input.service), task_queue=task_queue
        )
        await send(own_env, task_queue, alert("target-fp", service=None, region=TARGET), region=TARGET)
        await received(own_env, 1, region=TARGET)
        real = GuardianActivities(own_env.client, Providers.of(GcpClients.create(emulator.url)))
        facts = await ActivityEnvironment().run(real.gather_facts, request)
        emulator.outage(TARGET)
        down = await ActivityEnvironment().run(real.gather_facts, request)
        unreachable = GuardianActivities(own_env.client, Providers.of(GcpClients.create("http://127.0.0.1:9")))
        blind = await ActivityEnvironment().run(unreachable.gather_facts, request)

    by_service = {f.service: f for f in facts.services}
    checkout, catalog = (
        by_service[manual_input.service],
        by_service["catalog" if manual_input.service == "checkout" else "checkout"],
    )
    assert facts.switch.enabled  # never set: enabled
    assert checkout.busy is not None and checkout.busy.startswith(f"failover/{manual_input.service} run ")
    assert catalog.busy is None
    assert checkout.target_alerts == catalog.target_alerts == ["alertmanager:target-fp"]
    assert checkout.target_healthy is not None and checkout.target_healthy >= 1
    assert checkout.target_required == manual_input.plan.guards.min_healthy_target
    # The time-skipping server has no visibility: what it would say is unknown, and no error.
    assert facts.automatic_last_hour == 0 and checkout.last_failover_at is None
    assert [f.target_healthy for f in down.services] == [0, 0]
    assert [f.target_healthy for f in blind.services] == [None, None]


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server (real visibility) of the test's own."""
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=find_binary("temporal"),
        search_attributes=search_attributes.ALL,
        ui=False,
    ) as env:
        yield env


async def test_on_a_real_server_visibility_counts_automatic_failovers_and_lists_the_guardians(dev_env, task_queue):
    world = World(dev_env.client)
    request = FactsRequest(region=REGION, services=fact_queries())
    automatic = guardian_plans()[0].input.model_copy(update={"trigger": Trigger(kind="alert", by="evac-guardian/x")})
    real = GuardianActivities(dev_env.client, Providers.of(GcpClients.create("http://127.0.0.1:9")))
    async with guardian_worker(dev_env, task_queue, world):
        handle = await dev_env.client.start_workflow(
            RecordingFailover.run,
            automatic,
            id=failover_workflow_id(automatic.service),
            task_queue=task_queue,
            search_attributes=search_attributes.for_run(automatic),
        )
        await send(dev_env, task_queue, alert("fp1"))
        await send(dev_env, task_queue, alert("fp9", region=TARGET), region=TARGET)

        async def visible() -> bool:
            facts = await ActivityEnvironment().run(real.gather_facts, request)
            return facts.automatic_last_hour == 1 and len(await control.status(dev_env.client)) == 2

        await eventually(visible)
        facts = await ActivityEnvironment().run(real.gather_facts, request)
        listed = await control.status(dev_env.client)
        started_at = (await handle.describe()).start_time

    assert [g.region for g in listed] == [REGION, TARGET]
    assert list(listed[1].state.firing) == ["alertmanager:fp9"]
    by_service = {f.service: f for f in facts.services}
    assert by_service[automatic.service].last_failover_at == started_at
    assert by_service[automatic.service].busy is not None
    assert [f.target_alerts for f in facts.services] == [["alertmanager:fp9"]] * 2


async def test_on_a_real_server_the_failover_outlives_the_guardians_continue_as_new(dev_env, task_queue, monkeypatch):
    """(The time-skipping server applies no parent close policy; the dev server does.)"""
    monkeypatch.setattr(guardian_status, "GUARDIAN_HISTORY_LIMIT", 40)
    world = World(dev_env.client)
    quick = POLICY.model_copy(update={"min_duration": timedelta(seconds=1)})
    async with guardian_worker(dev_env, task_queue, world):
        await send(dev_env, task_queue, alert("fp1"), policy=quick)
        await started(world, 1)
        fired = await status(dev_env)
        for _ in range(20):
            await send(dev_env, task_queue, alert("fp1"), policy=quick)
        found = await received(dev_env, 21)
        failover = await dev_env.client.get_workflow_handle(failover_workflow_id("checkout")).describe()

    assert found.state.runs > fired.state.runs and len(world.started) == 1
    assert failover.status is not None and failover.status.name == "RUNNING"


async def test_on_a_real_server_enabling_the_switch_wakes_the_guardians_at_once(dev_env, task_queue, monkeypatch):
    monkeypatch.setattr(guardian_status, "GUARDIAN_RECHECK", timedelta(hours=1))  # no re-check would fire it in time
    world = World(dev_env.client)
    quick = POLICY.model_copy(update={"min_duration": timedelta(seconds=1)})
    async with guardian_worker(dev_env, task_queue, world):
        await control.disable(dev_env.client, "oncall@test", "maintenance", task_queue=task_queue)
        await send(dev_env, task_queue, alert("fp1"), policy=quick)
        await decided(dev_env, "suppressed", guard="kill_switch")

        async def listed() -> bool:  # visibility lists the guardian (what enable signals)
            return len(await control.status(dev_env.client)) == 1

        await eventually(listed)
        await control.enable(dev_env.client, "oncall@test", "done", task_queue=task_queue)
        await started(world, 1)  # seconds, not the hour to the next re-check

    assert world.started[0].trigger.kind == "alert"


def test_the_guardian_starts_the_real_failover_workflow_by_its_name():
    assert workflow._Definition.must_from_class(FailoverWorkflow).name == FAILOVER_WORKFLOW
    assert workflow._Definition.must_from_class(RecordingFailover).name == FAILOVER_WORKFLOW


# --- the control functions ----------------------------------------------------------------


async def test_status_names_what_is_wrong_with_a_region(own_env):
    with pytest.raises(control.InvalidAlertsRequest, match="'Europe_West' is not a region name"):
        await control.status(own_env.client, "Europe_West")
    with pytest.raises(control.GuardianNotFound, match="no guardian is running for region 'asia-east1'"):
        await control.status(own_env.client, "asia-east1")
    with pytest.raises(control.InvalidAlertsRequest, match="--reason must say why"):
        await control.disable(own_env.client, "oncall@test", "  ")
    assert (await control.read_switch(own_env.client)).switch.enabled  # never set: enabled


# --- the commands -------------------------------------------------------------------------


def cli() -> typer.Typer:
    """The commands as the lead registers them: 'evac alerts status', 'evac auto disable | enable'."""
    app = typer.Typer()
    app.command("status")(alerts_cli.status)
    app.command("disable")(alerts_cli.auto_disable)
    app.command("enable")(alerts_cli.auto_enable)
    return app


async def invoke(env: WorkflowEnvironment, task_queue: str, *args: str, identity: str = "oncall@test") -> Result:
    """Run a command in a thread (it runs its own event loop) while the worker answers here."""
    address = env.client.service_client.config.target_host
    environment = {
        "TEMPORAL_ADDRESS": address,
        "EVAC_TASK_QUEUE": task_queue,
        "EVAC_IDENTITY": identity,
        "EVAC_CONFIG": "/nonexistent/evac-config.toml",
    }
    return await asyncio.to_thread(CliRunner().invoke, cli(), list(args), env=environment)


async def test_the_commands_show_the_guardians_and_change_the_switch(own_env, task_queue, world):
    async with guardian_worker(own_env, task_queue, world):
        disabled = await invoke(own_env, task_queue, "disable", "--reason", "game day", "--output", "json")
        await send(own_env, task_queue, alert("fp1"))
        await received(own_env, 1)
        await own_env.sleep(timedelta(seconds=61))
        await decided(own_env, "suppressed", guard="kill_switch")
        shown = await invoke(own_env, task_queue, "status", REGION)
        listed = await invoke(own_env, task_queue, "status", REGION, "--output", "json")
        again = await invoke(own_env, task_queue, "disable", "--reason", "twice", identity="second@test")
        blank = await invoke(own_env, task_queue, "disable", "--reason", "  ")
        bad = await invoke(own_env, task_queue, "status", "Europe_West")
        enabled = await invoke(own_env, task_queue, "enable")

    assert disabled.exit_code == 0, disabled.output
    switch = json.loads(disabled.stdout)
    assert (switch["enabled"], switch["by"], switch["reason"]) == (False, "oncall@test", "game day")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "automatic failover: DISABLED by oncall@test" in text and "game day" in text
    assert "firing: 1 alert(s)" in text and "BackendsUnhealthy [alertmanager:fp1] checkout" in text
    assert "suppressed" in text and "kill_switch" in text
    body = json.loads(listed.stdout)
    [guardian] = body["guardians"]
    assert guardian["region"] == REGION and list(guardian["state"]["firing"]) == ["alertmanager:fp1"]
    assert body["switch"]["switch"]["enabled"] is False and len(body["switch"]["changes"]) == 1
    # Disabled again by someone else: the first attribution stays, the second is in the history.
    assert again.exit_code == 0, again.output
    said = " ".join(again.stdout.split())
    assert said.startswith("automatic failover was already disabled by oncall@test since ") and "(game day)" in said
    assert blank.exit_code == 2 and "--reason must say why" in blank.output
    assert bad.exit_code == 2 and "'Europe_West' is not a region name" in bad.output
    assert enabled.exit_code == 0 and "automatic failover: enabled" in enabled.stdout
    assert world.started == []
