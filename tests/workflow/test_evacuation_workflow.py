"""EvacuationWorkflow on the time-skipping server: groups in order, the sliding window,
continue-as-new, partial failure, abort (with and without rollback_all) and auto-target.

The stand-in cloud here holds many services: a capacity scaler per (backend service, region),
a DNS record per name, healthy backends per region. Every child is a real FailoverWorkflow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from emulator.generate import generated_topology
from evac.activity_api import READ_TARGETS
from evac.evacuation import (
    CandidateRegion,
    EvacuationAbort,
    EvacuationInput,
    EvacuationProgress,
    EvacuationStatus,
    ReadTargets,
    ReadTargetsResult,
    RegionReading,
    ServiceStatus,
    TargetReadings,
    evacuation_workflow_id,
    plan_groups,
)
from evac.notifications import SEND_NOTIFICATION, Notification, NotificationResult
from evac.plan import Retries
from evac.resources import (
    ActivityName,
    BackendCapacity,
    Change,
    CheckBackendHealth,
    DnsRecord,
    GroupSize,
    HealthReport,
    HealthWait,
    ReadBackendCapacity,
    ReadDnsRecord,
    ReadGroupSize,
    ResizeGroup,
    SetBackendCapacity,
    SetDnsRecord,
    WaitForHealthy,
)
from evac.runs import FailoverProgress, Trigger
from evac.topology import Topology
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import preflight_reads_from, read_before_change_from
from workflows.evacuation import EvacuationWorkflow

SOURCE, TARGET, THIRD = "europe-west1", "us-central1", "asia-east1"
QUICK = Retries.model_validate({"initial_interval": 0.01, "maximum_interval": 0.05, "step_deadline": "1m"})


@dataclass
class Cloud:
    """Many services' backends and records, in memory. ``gates``: service -> event its drain waits on
    (heartbeating, so an abort's cancel reaches it; never released in the abort tests: the
    time-skipping server refuses a cancel that races the activity's completion)."""

    topology: Topology
    capacity: dict[tuple[str, str], float] = field(default_factory=dict)  # (backend service, region)
    records: dict[str, DnsRecord] = field(default_factory=dict)
    healthy: dict[str, int] = field(default_factory=dict)  # region -> healthy backends of every service
    refuse_drain: set[str] = field(default_factory=set)  # backend services whose drain is refused for good
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)  # services with a mutation in progress
    peak_active: int = 0
    drained_order: list[str] = field(default_factory=list)
    target_reads: int = 0
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, region) -> target size; 2 unless set
    quota_room: dict[str, int] = field(default_factory=dict)  # region -> INSTANCES room; unset: not read
    order: list[str] = field(default_factory=list)  # "resize <group>" / "drain <service>", as they happened

    def __post_init__(self) -> None:
        for spec in self.topology.services.values():
            for region, binding in spec.regions.items():
                self.capacity[(binding.backend_service, region)] = 1.0
            self.records[spec.dns.record] = DnsRecord(ttl=300, rrdatas=[spec.regions[spec.primary_region].address])
        self.healthy = {SOURCE: 2, TARGET: 2, THIRD: 2}

    def size(self, group: str, region: str) -> int:
        return self.sizes.get((group, region), 2)

    def health(self, group: str, region: str) -> HealthReport:
        """Every instance healthy but those the region's ``healthy`` count leaves out of two."""
        size = self.size(group, region)
        return HealthReport(healthy=max(0, size - max(0, 2 - self.healthy[region])), total=size)

    def service_of(self, backend_service: str) -> str:
        return next(
            n for n, s in self.topology.services.items() if any(b.backend_service == backend_service for b in s.regions.values())
        )

    def activities(self) -> list[Callable[..., Any]]:
        cloud = self

        @activity.defn(name=ActivityName.READ_BACKEND_CAPACITY)
        async def read_backend_capacity(input: ReadBackendCapacity) -> BackendCapacity:
            return BackendCapacity(capacity_scaler=cloud.capacity[(input.backend.backend_service, input.backend.group.region)])

        @activity.defn(name=ActivityName.SET_BACKEND_CAPACITY)
        async def set_backend_capacity(input: SetBackendCapacity) -> Change:
            key = (input.backend.backend_service, input.backend.group.region)
            service = cloud.service_of(input.backend.backend_service)
            if input.desired.capacity_scaler == 0 and input.backend.backend_service in cloud.refuse_drain:
                raise ApplicationError(
                    "backend service is locked", {"attempt": 1}, type="CloudRequestRefused", non_retryable=True
                )
            cloud.active.add(service)
            cloud.peak_active = max(cloud.peak_active, len(cloud.active))
            try:
                gate = cloud.gates.get(service) if input.desired.capacity_scaler == 0 else None  # undos pass
                while gate is not None and not gate.is_set():
                    activity.heartbeat()
                    await asyncio.sleep(0.02)
                before = BackendCapacity(capacity_scaler=cloud.capacity[key])
                cloud.capacity[key] = input.desired.capacity_scaler
                if input.desired.capacity_scaler == 0:
                    cloud.drained_order.append(service)
                    cloud.order.append(f"drain {service}")
                return Change(before=before, after=input.desired, changed=before != input.desired)
            finally:
                cloud.active.discard(service)

        @activity.defn(name=ActivityName.READ_GROUP_SIZE)
        async def read_group_size(input: ReadGroupSize) -> GroupSize:
            return GroupSize(target_size=cloud.size(input.group.group, input.group.region))

        @activity.defn(name=ActivityName.RESIZE_GROUP)
        async def resize_group(input: ResizeGroup) -> Change:
            key = (input.group.group, input.group.region)
            before = GroupSize(target_size=cloud.size(*key))
            cloud.sizes[key] = input.desired.target_size
            cloud.order.append(f"resize {input.group.group} to {input.desired.target_size}")
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.WAIT_FOR_HEALTHY)
        async def wait_for_healthy_backends(input: WaitForHealthy) -> HealthWait:
            report = cloud.health(input.backend.group.group, input.backend.group.region)
            return HealthWait(report=report, reached=report.healthy >= input.min_healthy, polls=1)

        @activity.defn(name=ActivityName.READ_DNS_RECORD)
        async def read_dns_record(input: ReadDnsRecord) -> DnsRecord:
            return cloud.records[input.record.name]

        @activity.defn(name=ActivityName.SET_DNS_RECORD)
        async def set_dns_record(input: SetDnsRecord) -> Change:
            before = cloud.records[input.record.name]
            cloud.records[input.record.name] = input.desired
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.CHECK_BACKEND_HEALTH)
        async def check_backend_health(input: CheckBackendHealth) -> HealthReport:
            return cloud.health(input.backend.group.group, input.backend.group.region)

        @activity.defn(name=SEND_NOTIFICATION)
        async def send_notification(input: Notification) -> NotificationResult:
            return NotificationResult(configured=False, deliveries=[])

        @activity.defn(name=READ_TARGETS)
        async def read_targets(input: ReadTargets) -> ReadTargetsResult:
            cloud.target_reads += 1

            def reading(c: CandidateRegion) -> RegionReading:
                room = cloud.quota_room.get(c.region)
                return RegionReading(
                    region=c.region,
                    health=cloud.health(c.group.group, c.region),
                    capacity_scaler=cloud.capacity[(c.backend.backend_service, c.region)],
                    size=cloud.size(c.group.group, c.region),
                    max_size=c.max_size,
                    quota_room=room,
                    quota="" if room is None else f"INSTANCES {room} free",
                )

            return ReadTargetsResult(
                readings=[
                    TargetReadings(service=s.service, source=reading(s.source), regions=[reading(c) for c in s.regions])
                    for s in input.services
                ]
            )

        return [
            read_backend_capacity,
            set_backend_capacity,
            read_group_size,
            resize_group,
            wait_for_healthy_backends,
            read_dns_record,
            set_dns_record,
            check_backend_health,
            read_before_change_from(check_backend_health, read_backend_capacity, read_group_size, read_dns_record),
            preflight_reads_from(read_backend_capacity, read_group_size, read_dns_record),
            send_notification,
            read_targets,
        ]

    def address(self, service: str, region: str) -> str:
        return self.topology.services[service].regions[region].address

    def evacuated(self, service: str, target: str) -> bool:
        spec = self.topology.services[service]
        drained = self.capacity[(spec.regions[SOURCE].backend_service, SOURCE)] == 0
        return drained and self.records[spec.dns.record].rrdatas == [self.address(service, target)]

    def untouched(self, service: str) -> bool:
        spec = self.topology.services[service]
        serving = self.capacity[(spec.regions[SOURCE].backend_service, SOURCE)] == 1.0
        return serving and self.records[spec.dns.record].rrdatas == [self.address(service, spec.primary_region)]


def tiered(services: int, tiers: dict[str, int]) -> Topology:
    """A generated topology whose first services are put in tiers: {tier: how many}."""
    topology = generated_topology(services)
    names = list(topology.services)
    updated, i = dict(topology.services), 0
    for tier, count in tiers.items():
        for name in names[i : i + count]:
            updated[name] = updated[name].model_copy(update={"tier": tier})
        i += count
    return topology.model_copy(update={"services": updated, "tiers": list(tiers)})


def evacuation_input(topology: Topology, *, target: str | None = TARGET, window: int = 4, **extra: Any) -> EvacuationInput:
    return EvacuationInput(
        region=SOURCE,
        target=target,
        project=topology.project,
        groups=plan_groups(topology, SOURCE, target=target),
        trigger=Trigger(by="test", reason="workflow test"),
        window=window,
        retries=QUICK,
        **extra,
    )


async def until(check: Callable[[], Any], what: str, seconds: float = 20.0) -> None:
    """Wait (real time) until ``check()`` (sync or async) holds; fail naming ``what`` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"never happened within {seconds}s: {what}")
        await asyncio.sleep(0.02)


async def start(client: Client, task_queue: str, input: EvacuationInput) -> WorkflowHandle[Any, EvacuationProgress]:
    return await client.start_workflow(
        EvacuationWorkflow.run,
        input,
        id=f"{evacuation_workflow_id(SOURCE)}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )


async def outcome(handle: WorkflowHandle[Any, EvacuationProgress]) -> EvacuationProgress:
    """The final record whether the evacuation succeeded or not (its failure carries it)."""
    try:
        return await asyncio.wait_for(handle.result(), 60)
    except TimeoutError:
        record = await handle.query(EvacuationWorkflow.progress)
        children = []
        for r in record.services:
            if r.status == ServiceStatus.RUNNING and r.workflow_id:
                child = handle._client.get_workflow_handle(r.workflow_id, run_id=r.run_id)
                desc = await child.describe()
                history = await child.fetch_history()
                children.append(f"{r.service}: {desc.status} {[(e.event_type) for e in history.events][-8:]}")
        raise AssertionError(f"the evacuation did not end: {record.summary()} {children}") from None
    except WorkflowFailureError as err:
        assert isinstance(err.cause, ApplicationError), err
        return EvacuationProgress.model_validate(err.cause.details[0])


async def test_groups_leave_in_order_within_the_window(env, task_queue):
    topology = tiered(12, {"data": 3, "api": 4})  # the other 5 untiered: they leave last
    cloud = Cloud(topology)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=2))
        result = await handle.result()

    assert result.status == EvacuationStatus.SUCCEEDED
    assert result.groups == ["data", "api", "untiered"]
    assert all(cloud.evacuated(s, TARGET) for s in topology.services)
    # Every service of a group ended before any of the next group started.
    for before, after in zip(result.groups, result.groups[1:], strict=False):
        last_end = max(r.ended_at for r in result.services if r.group == before)  # type: ignore[type-var]
        first_start = min(r.started_at for r in result.services if r.group == after)  # type: ignore[type-var]
        assert last_end <= first_start, (before, after)
    tier_of = {name: spec.tier or "untiered" for name, spec in topology.services.items()}
    assert [tier_of[s] for s in cloud.drained_order] == ["data"] * 3 + ["api"] * 4 + ["untiered"] * 5
    assert result.peak_in_flight == 2
    assert cloud.peak_active <= 2
    first = result.services[0]
    child = env.client.get_workflow_handle(first.workflow_id or "", run_id=first.run_id, result_type=FailoverProgress)
    record = await child.result()
    assert record.trigger.evacuation == handle.id
    assert record.trigger.reason == "evacuation of europe-west1: workflow test"


async def test_the_window_is_never_exceeded_and_a_freed_slot_is_used_at_once(env, task_queue):
    topology = generated_topology(6)
    cloud = Cloud(topology)
    names = list(topology.services)
    slow = names[0]
    cloud.gates[slow] = asyncio.Event()  # the first service's drain holds until released
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=3))
        # With one slot held by the slow service, the other two slots carry the remaining five.
        done: list[str] = []

        async def five_done() -> bool:
            record = await handle.query(EvacuationWorkflow.progress)
            assert record.in_flight() <= 3
            done[:] = [r.service for r in record.services if r.status == ServiceStatus.SUCCEEDED]
            return len(done) == 5

        await until(five_done, "five services done while the first is held")
        assert slow not in done
        cloud.gates[slow].set()
        result = await handle.result()

    assert result.status == EvacuationStatus.SUCCEEDED
    assert result.peak_in_flight == 3
    assert cloud.peak_active <= 3


async def test_a_service_that_cannot_fail_over_is_reported_and_the_others_go_on(env, task_queue):
    topology = tiered(6, {"data": 2})
    cloud = Cloud(topology)
    bad = list(topology.services)[0]  # in the first group: the next groups still run
    cloud.refuse_drain.add(topology.services[bad].regions[SOURCE].backend_service)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        result = await outcome(handle)

    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "completed_with_failures"
    assert bad in failed.value.cause.message
    assert result.status == EvacuationStatus.COMPLETED_WITH_FAILURES
    [failed_record] = result.failed()
    assert failed_record.service == bad and "locked" in (failed_record.error or "")
    assert cloud.untouched(bad)  # its own run rolled back what it changed (nothing: the drain was refused)
    assert all(cloud.evacuated(s, TARGET) for s in topology.services if s != bad)


async def test_continue_as_new_keeps_progress_and_no_history_grows_large(env, task_queue):
    topology = tiered(24, {"data": 8})
    cloud = Cloud(topology)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=4, history_events_before_continue=60))
        result = await handle.result()

    assert result.status == EvacuationStatus.SUCCEEDED
    assert result.runs >= 3, result.runs  # it continued as new, more than once
    assert len(result.services) == 24
    assert all(r.status == ServiceStatus.SUCCEEDED for r in result.services)
    assert all(cloud.evacuated(s, TARGET) for s in topology.services)
    assert sorted(cloud.drained_order) == sorted(topology.services)  # each service once: nothing started twice
    # Each run of the chain stayed near its threshold (it drains its window before continuing):
    # each run in flight adds up to about 20 events as it ends (its warm signal, the go-ahead,
    # its close, and the workflow tasks they wake).
    assert result.largest_history < 60 + 4 * 20, result.largest_history
    # The chain's first run continued as new: its history ends so, and holds fewer events than the threshold allows.
    first = await env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")


async def test_abort_stops_new_runs_rolls_back_those_in_flight_and_leaves_finished_ones(env, task_queue):
    topology = generated_topology(6)
    cloud = Cloud(topology)
    names = list(topology.services)
    held = names[2]
    cloud.gates[held] = asyncio.Event()  # held mid-drain when the abort comes
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=1))
        await until(lambda: held in cloud.active, f"{held}'s drain in progress")
        await handle.execute_update(EvacuationWorkflow.abort, EvacuationAbort(by="alice", reason="false alarm"))
        result = await outcome(handle)

    assert result.status == EvacuationStatus.ABORTED
    statuses = [r.status for r in result.services]
    assert statuses == [ServiceStatus.SUCCEEDED] * 2 + [ServiceStatus.ABORTED] + [ServiceStatus.NOT_STARTED] * 3
    assert all(cloud.evacuated(s, TARGET) for s in names[:2])  # finished: left failed over, and said so
    assert all(cloud.untouched(s) for s in names[2:])  # in flight: rolled back; the rest never started
    assert result.abort is not None and result.abort.by == "alice"


async def test_abort_with_rollback_all_fails_finished_services_back(env, task_queue):
    topology = tiered(5, {"data": 2})
    cloud = Cloud(topology)
    names = list(topology.services)
    held = names[3]
    cloud.gates[held] = asyncio.Event()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=1))
        await until(lambda: held in cloud.active, f"{held}'s drain in progress")
        request = EvacuationAbort(by="alice", reason="wrong region", rollback_all=True)
        await handle.execute_update(EvacuationWorkflow.abort, request)
        result = await outcome(handle)

    assert result.status == EvacuationStatus.ABORTED
    statuses = [r.status for r in result.services]
    assert statuses == [ServiceStatus.FAILED_BACK] * 3 + [ServiceStatus.ABORTED, ServiceStatus.NOT_STARTED]
    assert all(cloud.untouched(s) for s in names)  # every recorded before-state restored


async def refusal(handle: WorkflowHandle[Any, EvacuationProgress], request: EvacuationAbort) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(EvacuationWorkflow.abort, request)
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "Refused"
    return refused.value.cause.message


async def test_a_second_abort_is_refused_and_changes_nothing(env, task_queue):
    topology = generated_topology(3)
    cloud = Cloud(topology)
    held = list(topology.services)[0]
    cloud.gates[held] = asyncio.Event()
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=1))
        await until(lambda: held in cloud.active, f"{held}'s drain in progress")
        assert "needs a reason" in await refusal(handle, EvacuationAbort(by="bob", reason=" "))
        await handle.execute_update(EvacuationWorkflow.abort, EvacuationAbort(by="alice", reason="stop"))
        assert "being aborted already" in await refusal(handle, EvacuationAbort(by="bob", reason="me too"))
        result = await outcome(handle)
    assert result.abort is not None and result.abort.by == "alice"


async def test_auto_target_picks_the_region_with_most_headroom_and_says_why(env, task_queue):
    """us-central1's quota has room for 1 more instance, asia-east1's for 10: the headroom
    (room it can reach less what it serves) decides, not how much a region already serves."""
    topology = generated_topology(4)
    cloud = Cloud(topology)
    names = list(topology.services)
    cloud.healthy[TARGET] = 2
    cloud.quota_room = {TARGET: 1, THIRD: 10}
    # One service's asia-east1 backend is drained: for it, us-central1 is the only choice.
    cloud.capacity[(topology.services[names[0]].regions[THIRD].backend_service, THIRD)] = 0.0
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, target=None))
        result = await handle.result()

    targets = {r.service: r.target for r in result.services}
    assert targets == {names[0]: TARGET, **{n: THIRD for n in names[1:]}}
    first, second = result.services[0], result.services[1]
    assert "asia-east1 is drained" in first.target_reason
    assert second.target_reason.startswith("asia-east1: headroom 10; needs 2 healthy in asia-east1")
    assert "can reach 12 (size 2 + 10 quota room" in second.target_reason  # less the 2 it serves: 10
    assert second.target_reason.endswith("headroom of the others: us-central1 1")  # 2 + 1 room - 2 serving
    assert all(cloud.evacuated(s, targets[s] or "") for s in names)
    assert cloud.target_reads == 1


async def test_capacity_comes_before_the_drain_and_a_target_that_cannot_hold_the_load_is_refused(env, task_queue):
    """The source serves with 3 healthy: each target is scaled to 3 and healthy before its drain;
    a service whose target may have at most 2 (its max_size) is not started, with the numbers."""
    topology = generated_topology(3)
    names = list(topology.services)
    small = names[2]
    spec = topology.services[small]
    bounded = spec.model_copy(
        update={"regions": {**spec.regions, TARGET: spec.regions[TARGET].model_copy(update={"max_size": 2})}}
    )
    topology = topology.model_copy(update={"services": {**topology.services, small: bounded}})
    cloud = Cloud(topology)
    cloud.healthy[SOURCE] = 3
    for service in topology.services.values():
        cloud.sizes[(service.regions[SOURCE].instance_group, SOURCE)] = 3
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology))
        result = await outcome(handle)

    assert result.status == EvacuationStatus.COMPLETED_WITH_FAILURES
    refused = next(r for r in result.services if r.service == small)
    assert refused.status == ServiceStatus.FAILED and refused.workflow_id is None
    assert refused.error == (
        "not started: no region can take it: us-central1 cannot hold it: needs 3 "
        "(1 × 3 instances serving in europe-west1), can reach 2 (max_size 2)"
    )
    assert cloud.untouched(small)
    for name in names[:2]:
        group = topology.services[name].regions[TARGET].instance_group
        assert cloud.size(group, TARGET) == 3 and cloud.evacuated(name, TARGET)
        assert cloud.order.index(f"resize {group} to 3") < cloud.order.index(f"drain {name}")
        record = next(r for r in result.services if r.service == name)
        assert record.capacity.startswith("needs 3 healthy in us-central1 (1 × 3 instances serving in europe-west1)")
        assert [c.resource for c in record.changes][0] == f"instance group {TARGET}/{group}"  # undone last


async def test_auto_target_with_no_healthy_region_fails_only_those_services(env, task_queue):
    topology = generated_topology(3)
    cloud = Cloud(topology)
    cloud.healthy[TARGET] = 0
    cloud.healthy[THIRD] = 0
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, target=None))
        result = await outcome(handle)

    assert result.status == EvacuationStatus.COMPLETED_WITH_FAILURES
    assert all(r.status == ServiceStatus.FAILED and "no region can take it" in (r.error or "") for r in result.services)
    assert all(r.workflow_id is None for r in result.services)  # nothing was started
    assert all(cloud.untouched(s) for s in topology.services)


async def test_a_fail_back_restores_every_change_newest_first_and_refuses_a_region_still_unhealthy(env, task_queue):
    """After an evacuation that scaled each target up: the fail-back of its record puts every
    service back exactly (DNS, the region's scaler, the target's size), except a service whose
    region has too few healthy backends for it, which is refused until forced."""
    topology = generated_topology(3)
    names = list(topology.services)
    cloud = Cloud(topology)
    cloud.healthy[SOURCE] = 3
    for service in topology.services.values():
        cloud.sizes[(service.regions[SOURCE].instance_group, SOURCE)] = 3
    before = (dict(cloud.capacity), dict(cloud.records))
    async with running_worker(env.client, task_queue, cloud.activities()):
        evacuated = await (await start(env.client, task_queue, evacuation_input(topology))).result()
        assert evacuated.status == EvacuationStatus.SUCCEEDED
        # The region is back, but one service's group there is down to no healthy backend.
        sick = names[2]
        cloud.sizes[(topology.services[sick].regions[SOURCE].instance_group, SOURCE)] = 0
        record = evacuated.model_copy(update={"workflow_id": f"failback/{evacuated.workflow_id}"})
        input = evacuation_input(topology).model_copy(update={"failback_of": f"{evacuated.workflow_id} run r1"})
        handle = await env.client.start_workflow(
            EvacuationWorkflow.run, args=[input, record], id=f"failback/{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        failed_back = await outcome(handle)

        assert failed_back.status == EvacuationStatus.COMPLETED_WITH_FAILURES
        assert failed_back.failback_of == f"{evacuated.workflow_id} run r1" and failed_back.trigger.by == "test"
        statuses = {r.service: r.status for r in failed_back.services}
        assert statuses == {
            names[0]: ServiceStatus.FAILED_BACK,
            names[1]: ServiceStatus.FAILED_BACK,
            sick: ServiceStatus.FAILBACK_FAILED,
        }
        refused = next(r for r in failed_back.services if r.service == sick)
        assert refused.error is not None and refused.error.startswith(f"not failed back: {SOURCE} has 0/0 healthy backends")
        for name in names[:2]:
            assert cloud.untouched(name)
            assert cloud.size(topology.services[name].regions[TARGET].instance_group, TARGET) == 2  # scaled back down
        assert not cloud.untouched(sick)
        # Newest change first: DNS, then the region's scaler, then the target's size.
        group = topology.services[names[0]].regions[TARGET].instance_group
        assert cloud.order[-1].startswith("resize") and f"resize {group} to 2" in cloud.order

        forced = evacuation_input(topology).model_copy(update={"failback_of": "again", "force": True})
        only_sick = record.model_copy(update={"services": [r for r in record.services if r.service == sick]})
        handle = await env.client.start_workflow(
            EvacuationWorkflow.run, args=[forced, only_sick], id=f"failback/{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        assert (await handle.result()).status == EvacuationStatus.SUCCEEDED
    assert cloud.untouched(sick)
    assert cloud.capacity == before[0] and cloud.records == before[1]


@pytest.mark.parametrize("window", [4, 2])
async def test_within_a_tier_every_target_is_warm_before_any_of_its_traffic_moves(env, task_queue, window):
    """Each run waits, target warm, for the evacuation's go-ahead: with the window holding the
    whole tier, every resize comes before the first drain; with a smaller window, the runs in
    the window go once all of them are warm (none waits for a run that cannot start yet)."""
    topology = generated_topology(4)
    cloud = Cloud(topology)
    cloud.healthy[SOURCE] = 3
    for service in topology.services.values():
        cloud.sizes[(service.regions[SOURCE].instance_group, SOURCE)] = 3
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env.client, task_queue, evacuation_input(topology, window=window))
        result = await handle.result()

    assert result.status == EvacuationStatus.SUCCEEDED
    kinds = [entry.split()[0] for entry in cloud.order]
    assert kinds.count("resize") == 4 and kinds.count("drain") == 4
    # The first window's worth of resizes before any drain; every service's own before its drain.
    assert kinds[:window] == ["resize"] * window, cloud.order
    for name, service in topology.services.items():
        group = service.regions[TARGET].instance_group
        assert cloud.order.index(f"resize {group} to 3") < cloud.order.index(f"drain {name}")
