"""Benchmark: what one drain step costs in Evac, against the same work without Temporal and
against Temporal's own floor (issue 12, benchmark 1).

Starts the Temporal dev server and the emulator (operation delay 0, no added latency) on free
loopback ports, and in this one process the Evac worker (worker.build_workers, the production
registration) plus a second worker for a minimal workflow defined here. One service, a plan
of 20 drain steps whose capacity scaler alternates, so that every step really patches. Each
repeat times, in this order:

(a) Evac: FailoverWorkflow started with evac.control, result awaited; ms per step from the
    run's step records (each step's end minus its start, workflow time);
(b) plain: the real activity implementations from activities/, called in sequence without
    Temporal with the inputs the workflow builds (target health, target capacity, source
    capacity, set capacity), each in an activity context (temporalio.testing.ActivityEnvironment);
(c) floor: a workflow of 20 sequential no-op activities on the same server and worker
    process (same activity thread pool); ms per step from workflow time.

It prints the median ms per step of each, Evac − plain, Evac ÷ floor, a profile of where an
Evac step's time goes (from the history of one run; reads run as local activities show as
markers inside a workflow task, see workflows/steps.py) and ends with the line
``step ratio X.XX`` (Evac ÷ floor). ``--what-if`` also times two prototype shapes of the same
step on the bench's worker: (d) the three reads as local activities, (e) one activity doing the
guard's reads and the mutation (whose own read is the before-state).

    .venv/bin/python bench/step_overhead.py [--repeats 5] [--steps 20] [--warmups 1] [--what-if]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from temporalio import activity, workflow

# The sandbox runs this file again (as __main__) for FloorWorkflow: everything else passes through.
with workflow.unsafe.imports_passed_through():
    import yaml
    from pydantic import BaseModel
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowHistory
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment
    from temporalio.worker import Worker

    if not workflow.unsafe.in_sandbox():
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from activities.health import HealthActivities
    from activities.traffic import TrafficActivities
    from evac import activity_api, bindings, control
    from evac.config import Settings, connect_temporal
    from evac.errors import TemporalUnreachable
    from evac.logging import configure_logging
    from evac.plan import load_plan
    from evac.resources import (
        BackendCapacity,
        BackendRef,
        Change,
        CheckBackendHealth,
        ReadBackendCapacity,
        SetBackendCapacity,
        StepContext,
    )
    from evac.runs import FailoverInput, FailoverProgress, RunStatus, Trigger
    from evac.stack import Stack, StackConfig, free_port
    from evac.topology import load_topology
    from providers.gcp.clients import GcpClients
    from providers.gcp.refs import GcpBackendRef
    from providers.registry import Providers
    from worker import ACTIVITY_THREADS, build_workers, executor_threads

SERVICE = "bench-svc"
SOURCE, TARGET = "europe-west1", "us-central1"
EVAC_QUEUE = "evac-bench"
FLOOR_QUEUE = "evac-bench-floor"
# The source backend starts at 1.0; odd steps set LOW, even steps set it back to 1.0, so every
# step changes it and a plan of an even number of steps leaves it as it found it.
LOW = 0.5

T = TypeVar("T")


# --- (c) Temporal's floor: a workflow of N sequential no-op activities ----------------------


@activity.defn(name="bench_noop")
def noop(index: int) -> int:
    """Does nothing: a step whose whole cost is Temporal's (sync, in the worker's thread pool)."""
    return index


@dataclasses.dataclass
class FloorResult:
    seconds: float


@workflow.defn(name="BenchFloorWorkflow")
class FloorWorkflow:
    @workflow.run
    async def run(self, steps: int) -> FloorResult:
        started = workflow.now()
        for index in range(steps):
            await workflow.execute_activity(noop, index, start_to_close_timeout=timedelta(minutes=1))
        return FloorResult(seconds=(workflow.now() - started).total_seconds())


# --- what-if prototypes (--what-if): the same drain step shaped as the issue proposes ------------
# Not Evac's engine: no saga, records or undo here; they only measure what the two shapes cost.


class WhatIfInput(BaseModel):
    mode: Literal["local", "folded"]
    service: str
    source: BackendRef
    target: BackendRef
    scalers: list[float]
    min_healthy: int


class FoldedDrain(BaseModel):
    context: StepContext
    source: GcpBackendRef
    target: GcpBackendRef
    desired: BackendCapacity
    min_healthy: int
    request_key: str


class FoldedActivities:
    """One activity per drain step: the guard's reads, then the mutation, whose own read of
    the service is the before-state (returned in its Change)."""

    def __init__(self, clients: GcpClients):
        self.traffic = TrafficActivities(Providers.of(clients))
        self.health = HealthActivities(Providers.of(clients))

    @activity.defn(name="bench_folded_drain")
    def drain(self, input: FoldedDrain) -> Change:
        report = self.health.check_backend_health(CheckBackendHealth(context=input.context, backend=input.target))
        capacity = self.traffic.read_backend_capacity(ReadBackendCapacity(context=input.context, backend=input.target))
        if report.healthy < input.min_healthy or capacity.capacity_scaler == 0:
            raise ApplicationError(f"guard refused: {report.summary()}, {capacity.summary()}", non_retryable=True)
        return self.traffic.set_backend_capacity(
            SetBackendCapacity(context=input.context, backend=input.source, desired=input.desired, request_key=input.request_key)
        )


@workflow.defn(name="BenchWhatIfWorkflow")
class WhatIfWorkflow:
    @workflow.run
    async def run(self, input: WhatIfInput) -> FloorResult:
        started = workflow.now()
        info = workflow.info()
        read = timedelta(minutes=2)
        for index, scaler in enumerate(input.scalers):
            context = StepContext(service=input.service, step=f"drain-{index + 1}")
            key = f"{info.workflow_id}/{info.run_id}/step-{index}/apply"
            desired = BackendCapacity(capacity_scaler=scaler)
            if input.mode == "folded":
                await workflow.execute_activity_method(
                    FoldedActivities.drain,
                    FoldedDrain(
                        context=context,
                        source=input.source,
                        target=input.target,
                        desired=desired,
                        min_healthy=input.min_healthy,
                        request_key=key,
                    ),
                    schedule_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(seconds=10),
                )
                continue
            report = await workflow.execute_local_activity(
                activity_api.check_backend_health,
                CheckBackendHealth(context=context, backend=input.target),
                start_to_close_timeout=read,
            )
            capacity = await workflow.execute_local_activity(
                activity_api.read_backend_capacity,
                ReadBackendCapacity(context=context, backend=input.target),
                start_to_close_timeout=read,
            )
            if report.healthy < input.min_healthy or capacity.capacity_scaler == 0:
                raise ApplicationError(f"guard refused: {report.summary()}, {capacity.summary()}", non_retryable=True)
            before = await workflow.execute_local_activity(
                activity_api.read_backend_capacity,
                ReadBackendCapacity(context=context, backend=input.source),
                start_to_close_timeout=read,
            )
            await workflow.execute_activity(
                activity_api.set_backend_capacity,
                SetBackendCapacity(context=context, backend=input.source, desired=desired, prior=before, request_key=key),
                schedule_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=10),
            )
        return FloorResult(seconds=(workflow.now() - started).total_seconds())


def what_if_activities(endpoint: str, project: str) -> list[Callable[..., object]]:
    """The real implementations the what-if workflow calls, plus the folded one."""
    clients = GcpClients.create(endpoint, project)
    traffic, health = TrafficActivities(Providers.of(clients)), HealthActivities(Providers.of(clients))
    return [
        health.check_backend_health,
        traffic.read_backend_capacity,
        traffic.set_backend_capacity,
        FoldedActivities(clients).drain,
    ]


# --- the world ------------------------------------------------------------------------------


def write_world(folder: Path, steps: int) -> tuple[Path, Path]:
    topology = {
        "project": "evac-bench",
        "dns_zones": {"bench-zone": {"dns_name": "bench.example.com."}},
        "services": {
            SERVICE: {
                "primary_region": SOURCE,
                "dns": {"managed_zone": "bench-zone", "record": f"{SERVICE}.bench.example.com."},
                "regions": {
                    SOURCE: {
                        "backend_service": f"{SERVICE}-backend",
                        "instance_group": f"{SERVICE}-ew1",
                        "address": "203.0.113.1",
                    },
                    TARGET: {
                        "backend_service": f"{SERVICE}-backend",
                        "instance_group": f"{SERVICE}-uc1",
                        "address": "198.51.100.1",
                    },
                },
            }
        },
        "emulator": {"default_group_size": 2},
    }
    plan = {
        "name": "step-overhead",
        "services": [SERVICE],
        "source": SOURCE,
        "target": TARGET,
        "steps": [{"kind": "drain", "capacity_scaler": LOW if i % 2 == 0 else 1.0} for i in range(steps)],
    }
    (folder / "topology.yaml").write_text(yaml.safe_dump(topology))
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    return folder / "plan.yaml", folder / "topology.yaml"


# --- (b) the same activity calls without Temporal -------------------------------------------


class Plain:
    """A drain step's four activity calls, the real implementations, in sequence."""

    def __init__(self, endpoint: str, input: FailoverInput):
        clients = GcpClients.create(endpoint, input.project)
        self.traffic = TrafficActivities(Providers.of(clients))
        self.health = HealthActivities(Providers.of(clients))
        self.input = input
        self.source = bindings.backend_ref(input.project, input.topology, SOURCE)
        self.target = bindings.backend_ref(input.project, input.topology, TARGET)
        # The engine's activity options: reads without a heartbeat timeout, the mutation with one.
        self.read_env = ActivityEnvironment()
        self.mutate_env = ActivityEnvironment()
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.mutate_env.info = dataclasses.replace(ActivityEnvironment.default_info(), heartbeat_timeout=timedelta(seconds=10))

    def _call(self, env: ActivityEnvironment, what: str, fn: Callable[[Any], T], arg: object) -> T:
        began = time.perf_counter()
        result = env.run(fn, arg)
        self.calls[what].append(1000 * (time.perf_counter() - began))
        return result

    def run(self, repeat: int, steps: list[float]) -> float:
        """Run every step; returns seconds per step."""
        started = time.perf_counter()
        for index, scaler in enumerate(steps):
            context = StepContext(service=self.input.service, step=f"drain-{index + 1}")
            report = self._call(
                self.read_env,
                "target health",
                self.health.check_backend_health,
                CheckBackendHealth(context=context, backend=self.target),
            )
            capacity = self._call(
                self.read_env,
                "target capacity",
                self.traffic.read_backend_capacity,
                ReadBackendCapacity(context=context, backend=self.target),
            )
            if report.healthy < self.input.plan.guards.min_healthy_target or capacity.capacity_scaler == 0:
                raise SystemExit(f"plain run, step {index + 1}: the guard refused ({report.summary()}, {capacity.summary()})")
            before = self._call(
                self.read_env,
                "before-read",
                self.traffic.read_backend_capacity,
                ReadBackendCapacity(context=context, backend=self.source),
            )
            change = self._call(
                self.mutate_env,
                "set capacity",
                self.traffic.set_backend_capacity,
                SetBackendCapacity(
                    context=context,
                    backend=self.source,
                    desired=BackendCapacity(capacity_scaler=scaler),
                    prior=before,
                    request_key=f"bench-plain/{repeat}/step-{index}/apply",
                ),
            )
            if not change.changed:
                raise SystemExit(f"plain run, step {index + 1}: the backend was already at {scaler}; the bench expects a change")
        return (time.perf_counter() - started) / len(steps)


# --- the history profile ----------------------------------------------------------------------


def _time(event_time: object) -> datetime:
    return event_time.ToDatetime()  # type: ignore[attr-defined, no-any-return]


def _ms(delta: timedelta) -> float:
    return delta.total_seconds() * 1000


@dataclasses.dataclass
class Profile:
    """Where a run's step activities spent their time, from its history (ms)."""

    queued: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    running: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    # From one step activity's completion to the next one's schedule: the workflow task between.
    turnaround: list[float] = dataclasses.field(default_factory=list)
    # Local activities (their markers), by type: they run inside a workflow task, not on the server.
    local: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))
    wft_queued: list[float] = dataclasses.field(default_factory=list)
    wft_running: list[float] = dataclasses.field(default_factory=list)


def profile(history: WorkflowHistory, step_activities: set[str]) -> Profile:
    """Activities of the types in ``step_activities`` only; preflight reads (their input names
    the step 'preflight') and background notifications are left out."""
    result = Profile()
    scheduled: dict[int, tuple[str, datetime]] = {}
    started: dict[int, datetime] = {}
    wft_scheduled: datetime | None = None
    wft_started: datetime | None = None
    last_completed: datetime | None = None
    for event in history.events:
        at = _time(event.event_time)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            if name not in step_activities or any(b'"preflight"' in p.data for p in attrs.input.payloads):
                continue
            scheduled[event.event_id] = (name, at)
            if last_completed is not None:
                result.turnaround.append(_ms(at - last_completed))
                last_completed = None
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            if attrs_c.scheduled_event_id in scheduled:
                name, at_scheduled = scheduled[attrs_c.scheduled_event_id]
                at_started = started[attrs_c.scheduled_event_id]
                result.queued[name].append(_ms(at_started - at_scheduled))
                result.running[name].append(_ms(at - at_started))
                last_completed = at
        elif (local := _local_activity(event)) in step_activities:
            result.local[str(local)] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wft_scheduled = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft_started = at
            if wft_scheduled is not None:
                result.wft_queued.append(_ms(at - wft_scheduled))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and wft_started is not None:
            result.wft_running.append(_ms(at - wft_started))
    return result


def _local_activity(event: Any) -> str | None:
    """The activity type of a local activity's marker (its result, recorded in the history), else None."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    attrs = event.marker_recorded_event_attributes
    if attrs.marker_name != "core_local_activity" or "data" not in attrs.details:
        return None
    for payload in attrs.details["data"].payloads:
        try:
            found = json.loads(payload.data).get("activity_type")
        except (ValueError, AttributeError):
            continue
        if found:
            return str(found)
    return None


def print_timeline(history: WorkflowHistory, step: int) -> None:
    """The events of one drain step, from the completion of the previous step's mutation to
    the completion of its own, in ms. Reads run as local activities appear as markers."""
    events = list(history.events)
    mutations = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and events[
            e.activity_task_completed_event_attributes.scheduled_event_id - 1
        ].activity_task_scheduled_event_attributes.activity_type.name
        == "set_backend_capacity"
    ]
    if len(mutations) <= step:
        return
    first, last = mutations[step - 1], mutations[step]
    origin = _time(events[first].event_time)
    print(f"\none Evac step's history (step {step + 1}), ms from the previous step's mutation completing:")
    for event in events[first : last + 1]:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name += f" ({event.activity_task_scheduled_event_attributes.activity_type.name})"
        local = _local_activity(event)
        if local:
            name += f" (local activity {local})"
        print(f"  {_ms(_time(event.event_time) - origin):7.1f}  {name}")


def print_profile(title: str, p: Profile, steps: int) -> None:
    def med(values: list[float]) -> str:
        return f"{statistics.median(values):6.1f}" if values else "     -"

    print(f"\n{title}")
    print("  activity                    calls  schedule→start  start→close  (median ms)")
    for name in p.running:
        print(f"  {name:<28} {len(p.running[name]):>4}  {med(p.queued[name])}          {med(p.running[name])}")
    for name, count in p.local.items():
        print(f"  {name:<28} {count:>4}  (local activity: runs inside the workflow task below)")
    print(f"  workflow task between two step activities (completion → next schedule): {med(p.turnaround)} ms median")
    print(f"    every workflow task of the run: schedule→start {med(p.wft_queued)} ms, start→complete {med(p.wft_running)} ms")
    queued = sum(sum(v) for v in p.queued.values()) / steps
    running = sum(sum(v) for v in p.running.values()) / steps
    turns = sum(p.turnaround) / steps
    print(
        f"  per step (sums ÷ {steps}): activities queued {queued:.1f} + running {running:.1f} + workflow tasks between "
        f"{turns:.1f} = {queued + running + turns:.1f} ms"
    )


# --- the run ------------------------------------------------------------------------------------


async def in_thread(call: Callable[..., T], *args: object) -> T:
    """Run a blocking call off the event loop (the workers' pollers keep running)."""
    return await asyncio.to_thread(call, *args)


async def connect(address: str) -> Client:
    """The dev server's port opens before its frontend answers: retry for a while."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await connect_temporal(address, "default", identity="evac step-overhead bench")
        except TemporalUnreachable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def bench(config: StackConfig, plan_path: Path, topology_path: Path, repeats: int, warmups: int, what_if: bool) -> None:
    topology = load_topology(topology_path)
    plan = load_plan(plan_path, topology)
    steps = [float(s.capacity_scaler) for s in plan.steps]  # type: ignore[union-attr]
    client = await connect(config.temporal_address)
    # No write quota here (the emulator has none): the writes queue's rate limit must not be what is timed.
    settings = Settings(task_queue=EVAC_QUEUE, gcp_endpoint=config.emulator_url, write_rate_limit=1000.0)
    plain = Plain(config.emulator_url, control.failover_inputs(plan, topology, Trigger(by="bench"))[0])

    evac_ms: list[float] = []
    evac_wall_ms: list[float] = []
    plain_ms: list[float] = []
    floor_ms: list[float] = []
    floor_wall_ms: list[float] = []
    last_evac: tuple[str, str] | None = None
    last_floor: str | None = None
    last_durations: list[float] = []
    what_if_ms: dict[str, list[float]] = {"local": [], "folded": []}
    first = plain.input

    with ThreadPoolExecutor(max_workers=executor_threads(settings), thread_name_prefix="activity") as executor:
        evac_worker, writes_worker = build_workers(client, settings, executor)
        floor_worker = Worker(
            client,
            task_queue=FLOOR_QUEUE,
            activities=[noop, *what_if_activities(config.emulator_url, first.project)],
            workflows=[FloorWorkflow, WhatIfWorkflow],
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
        )
        async with evac_worker, writes_worker, floor_worker:
            for repeat in range(warmups + repeats):
                timing = repeat >= warmups
                # (a) Evac
                inputs = control.failover_inputs(plan, topology, Trigger(by="bench", reason=f"step-overhead repeat {repeat}"))
                began = time.perf_counter()
                [run] = await control.start_failover(client, inputs, EVAC_QUEUE)
                progress = await client.get_workflow_handle(
                    run.workflow_id, run_id=run.run_id, result_type=FailoverProgress
                ).result()
                wall = time.perf_counter() - began
                if progress.status != RunStatus.SUCCEEDED:
                    raise SystemExit(f"Evac run {run.workflow_id} ended {progress.status.value}: {progress.error}")
                unchanged = [s.name for s in progress.steps if s.detail != "changed"]
                if unchanged:
                    raise SystemExit(f"Evac run {run.workflow_id}: steps {unchanged} changed nothing; the bench expects a change")
                durations = [(s.ended_at - s.started_at).total_seconds() for s in progress.steps]
                # (b) plain
                per_plain = await in_thread(plain.run, repeat, steps)
                # (c) floor
                floor_id = f"bench-floor-{repeat}-{time.time_ns()}"
                began = time.perf_counter()
                floor = await client.execute_workflow(FloorWorkflow.run, len(steps), id=floor_id, task_queue=FLOOR_QUEUE)
                floor_wall = time.perf_counter() - began
                # (d), (e) what-if shapes of the same step
                for mode in what_if_ms if what_if else ():
                    shaped = await client.execute_workflow(
                        WhatIfWorkflow.run,
                        WhatIfInput(
                            mode=mode,  # type: ignore[arg-type]
                            service=first.service,
                            source=plain.source,
                            target=plain.target,
                            scalers=steps,
                            min_healthy=first.plan.guards.min_healthy_target,
                        ),
                        id=f"bench-what-if-{mode}-{repeat}-{time.time_ns()}",
                        task_queue=FLOOR_QUEUE,
                    )
                    if timing:
                        what_if_ms[mode].append(1000 * shaped.seconds / len(steps))
                if timing:
                    evac_ms.append(1000 * sum(durations) / len(durations))
                    evac_wall_ms.append(1000 * wall / len(steps))
                    plain_ms.append(1000 * per_plain)
                    floor_ms.append(1000 * floor.seconds / len(steps))
                    floor_wall_ms.append(1000 * floor_wall / len(steps))
                    last_evac = (run.workflow_id, run.run_id)
                    last_durations = durations
                    last_floor = floor_id
                    print(
                        f"repeat {repeat - warmups + 1}/{repeats}: Evac {evac_ms[-1]:6.1f}  plain {plain_ms[-1]:6.1f}  "
                        f"floor {floor_ms[-1]:6.1f} ms/step"
                        + "".join(f"  what-if {mode} {values[-1]:6.1f}" for mode, values in what_if_ms.items() if values),
                        flush=True,
                    )
    assert last_evac is not None and last_floor is not None
    evac_history = await client.get_workflow_handle(last_evac[0], run_id=last_evac[1]).fetch_history()
    floor_history = await client.get_workflow_handle(last_floor).fetch_history()
    evac = statistics.median(evac_ms)
    plain_med = statistics.median(plain_ms)
    floor_med = statistics.median(floor_ms)
    print()
    print(f"steps per run:                  {len(steps)} drains (scaler {LOW} / 1.0 alternating), {repeats} repeats")
    print("emulator:                       operation delay 0 s, no added latency")
    print(f"(a) Evac, ms per step:          {evac:7.1f}   (whole run, start to result: {statistics.median(evac_wall_ms):.1f})")
    print(f"(b) plain script, ms per step:  {plain_med:7.1f}   (4 activity calls, no Temporal)")
    print(
        f"(c) Temporal floor, ms per step:{floor_med:7.1f}   (1 no-op activity; whole run {statistics.median(floor_wall_ms):.1f})"
    )
    print(f"Evac − plain, ms per step:      {evac - plain_med:7.1f}")
    print(f"Evac ÷ floor:                   {evac / floor_med:7.2f}")
    if what_if:
        local, folded = statistics.median(what_if_ms["local"]), statistics.median(what_if_ms["folded"])
        print("what-if prototypes (same calls, not Evac's engine: no saga, records or undo):")
        print(f"  (d) 3 reads as local activities + the mutation, ms per step: {local:7.1f}   ÷ floor {local / floor_med:.2f}")
        print(
            f"  (e) one activity: guard reads + mutation (its read is the before), ms per step: {folded:7.1f}"
            f"   ÷ floor {folded / floor_med:.2f}"
        )
    print(
        "\nthe plain script's calls (median ms): " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in plain.calls.items())
    )
    print("Evac's step durations in its last run, ms, in order: " + " ".join(f"{1000 * d:.0f}" for d in last_durations))
    drain_activities = {"check_backend_health", "read_backend_capacity", "set_backend_capacity", "read_before_change"}
    print_profile(f"where an Evac step goes (history of {last_evac[0]}):", profile(evac_history, drain_activities), len(steps))
    for step in sorted({min(2, len(steps) - 1), len(steps) - 1}):
        if step >= 1:
            print_timeline(evac_history, step)
    print_profile(f"the floor, for comparison (history of {last_floor}):", profile(floor_history, {"bench_noop"}), len(steps))
    print(f"\nstep ratio {evac / floor_med:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of (a), (b) and (c)")
    parser.add_argument("--steps", type=int, default=20, help="drain steps in the plan (even: the run ends as it began)")
    parser.add_argument("--warmups", type=int, default=1, help="untimed repeats first (imports, sandbox, connections)")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also time two prototype shapes of the step (local-activity reads; one folded activity)",
    )
    args = parser.parse_args()
    for name in ("repeats", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.steps % 2:
        parser.error(f"--steps must be even (each pair of steps restores the backend), not {args.steps}")
    if args.warmups < 0:
        parser.error(f"--warmups must be 0 or more, not {args.warmups}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan_path, topology_path = write_world(folder, args.steps)
        config = StackConfig(
            topology=topology_path,
            state_dir=folder / "state",
            temporal_port=free_port(),
            emulator_port=free_port(),
            ui=False,
            operation_delay=0.0,
            warmup=0.0,
            task_queue=EVAC_QUEUE,
        )
        # The worker logs as the production one does (JSON lines, INFO), into a file, not here.
        configure_logging(json=True)
        (folder / "state").mkdir()
        log_file = open(folder / "state" / "worker.log", "w")  # noqa: SIM115 - open for the whole run
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)
        stack = Stack(config)
        try:
            stack.start_temporal()
            stack.start_emulator()
            asyncio.run(bench(config, plan_path, topology_path, args.repeats, args.warmups, args.what_if))
        finally:
            stack.stop()
            log_file.close()


if __name__ == "__main__" and not workflow.unsafe.in_sandbox():
    main()
