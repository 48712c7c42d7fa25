"""Benchmark: evacuate a whole region against a write quota (issue 12, benchmark 2).

Starts the Temporal dev server, the emulator (a generated topology of N services, every API
call answered after ``--latency`` seconds, a write quota of ``--quota`` mutating calls a
second) and one worker as its own process (``worker.py``, with ``EVAC_WRITE_RATE_LIMIT`` =
the quota and ``EVAC_WRITE_CONCURRENCY`` = ``--write-concurrency``) on free loopback ports.
Then evacuates europe-west1 to us-central1 as ``evac evacuate`` does
(``evac.control.evacuate``: one ``EvacuationWorkflow``, every service of the
region a child failover run), prints its progress while it runs, and at the end:

- the total time, start to result, and the quota floor: the mutating calls the emulator's
  quota admitted (its request log) ÷ the quota, and their ratio; the 429s it refused; the
  most writes it took in any one second;
- the worker's peak RSS (``VmHWM`` of its process) and the CPU seconds of every process of
  the stack, against what two cores give in that time, and the load average;
- the largest history (events) of any workflow: of the evacuation's runs (its own
  ``largest_history``, and each run of its continue-as-new chain as Temporal counts it) and of
  its child failover runs (all of them, from visibility); the evacuation's runs;
- where the time goes: how fast the evacuation started its children (its workflow tasks, the
  gap between two child starts) and, over a sample of child runs, each activity's wait for a
  worker slot or the writes queue's rate limit and its call;
- services succeeded / failed, and the final state read from the emulator: services drained
  in europe-west1 and services whose DNS record holds their us-central1 address.

The emulator runs as ``evac emulator serve`` does, its simulated client load counted (since
the load is counted per service that changed, that costs well under a millisecond a call even
at 2,000 services).

It ends with the line ``quota ratio X.XX`` (total time ÷ quota floor; issue 12's target is at
most 1.25 at 1,000 services) and exits 1 when a service did not fail over or the final state
is wrong.

    .venv/bin/python bench/evacuation.py --services 100 [--latency 0.05] [--quota 20] [--window 50]
        [--operation-delay 0] [--write-concurrency 200]

With slow operations (``--operation-delay``) the writes in flight, not the quota, can bound
the run: at most ``--window`` runs and ``--write-concurrency`` mutations at once, each taking
the operation's time, so both must be at least quota x operation seconds to reach the quota.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory  # noqa: E402

from bench._common import bounded, loopback_config  # noqa: E402
from emulator.generate import MAX_SERVICES, generate_topology, topology_yaml, validated  # noqa: E402
from evac.config import DEFAULT_WRITE_CONCURRENCY, MAX_WRITE_CONCURRENCY, Settings, connect_temporal  # noqa: E402  # noqa: E402
from evac.control.evacuate import (  # noqa: E402
    StartedEvacuation,
    evacuation_input,
    evacuation_progress,
    follow_evacuation,
    start_evacuation,
)
from evac.control.records import worker_polling  # noqa: E402
from evac.evacuation import DEFAULT_WINDOW, MAX_WINDOW, EvacuationProgress, ServiceStatus  # noqa: E402
from evac.runs import Trigger  # noqa: E402
from evac.stack import Stack  # noqa: E402
from evac.topology import Topology  # noqa: E402

REGION, TARGET = "europe-west1", "us-central1"
PROGRESS_EVERY = 15.0  # seconds between two progress lines
HISTORY_LIMIT = 10_240  # Temporal warns past this many events; issue 12: no workflow over it
RSS_TARGET_KIB = 1024 * 1024
SAMPLED_CHILDREN = 20  # child runs whose histories say where a service's time goes


# --- the stack's processes ----------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After "pid (comm)": state is field 3, utime 14, stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack, and of this one."""
    used = {name: cpu_seconds(p.pid) for name, p in stack.processes.items() if p.poll() is None}
    return {**used, "bench": time.process_time()}


# --- the emulator's record ----------------------------------------------------------------------


@dataclass
class Writes:
    calls: int  # every Compute and DNS call, reads too
    admitted: int  # mutating calls the write quota let through (applied or otherwise answered)
    applied: int
    refused_quota: int  # 429 rateLimitExceeded
    busiest_second: int  # most admitted writes taken in within one calendar second

    @classmethod
    def from_log(cls, requests: list[dict[str, Any]]) -> Writes:
        mutations = [r for r in requests if r["effect"] is not None]
        refused = [r for r in mutations if r["status"] == 429]
        admitted = [r for r in mutations if r["status"] != 429]
        per_second = Counter(datetime.fromisoformat(r["time"]).replace(microsecond=0) for r in admitted)
        return cls(
            calls=len(requests),
            admitted=len(admitted),
            applied=sum(1 for r in admitted if r["effect"] == "applied"),
            refused_quota=len(refused),
            busiest_second=max(per_second.values(), default=0),
        )


def final_state(state: dict[str, Any], topology: Topology) -> tuple[int, int]:
    """Services whose europe-west1 backend is drained (scaler 0), and services whose DNS record
    holds exactly their us-central1 address, in the emulator's world now."""
    rrsets = {(zone, r["name"], r["type"]): r["rrdatas"] for zone, z in state["managedZones"].items() for r in z["rrsets"]}
    drained = pointed = 0
    for spec in topology.services.values():
        source, target = spec.regions[REGION], spec.regions[TARGET]
        backends = state["backendServices"][source.backend_service]["backends"]
        scalers = [b["capacityScaler"] for b in backends if b["group"].endswith(f"/{source.instance_group}")]
        drained += scalers == [0.0]
        pointed += rrsets.get((spec.dns.managed_zone, spec.dns.record, spec.dns.type)) == [target.address]
    return drained, pointed


# --- where a child run's time goes ---------------------------------------------------------------


@dataclass
class ActivityTimes:
    """Per activity type, over sampled child runs: ms from scheduled to started (waiting for a
    worker slot or the writes queue's rate limit) and from started to completed (the call)."""

    waiting: dict[str, list[float]]
    running: dict[str, list[float]]
    durations: list[float]  # each sampled child run, start to close, seconds

    @classmethod
    def of(cls, histories: list[WorkflowHistory]) -> ActivityTimes:
        times = cls(defaultdict(list), defaultdict(list), [])
        for history in histories:
            events = list(history.events)
            times.durations.append((events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()).total_seconds())
            names: dict[int, str] = {}
            began: dict[int, datetime] = {}
            for event in events:
                at = event.event_time.ToDatetime()
                if event.HasField("activity_task_scheduled_event_attributes"):
                    names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
                    began[event.event_id] = at
                elif event.HasField("activity_task_started_event_attributes"):
                    scheduled = event.activity_task_started_event_attributes.scheduled_event_id
                    times.waiting[names[scheduled]].append(_ms(at, began[scheduled]))
                    began[scheduled] = at
                elif event.HasField("activity_task_completed_event_attributes"):
                    scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
                    times.running[names[scheduled]].append(_ms(at, began[scheduled]))
        return times

    def lines(self) -> list[str]:
        rows = [
            f"  {name:<26} {len(self.running[name]):>5}  {_median(self.waiting[name]):9.0f}  {_median(self.running[name]):8.0f}"
            for name in self.running
        ]
        return [
            f"child run, start to close:    median {_median(self.durations):.1f} s, max {max(self.durations, default=0):.1f} s "
            f"({len(self.durations)} sampled runs)",
            "  activity                   calls  waiting ms  running ms  (medians over the sampled runs)",
            *rows,
        ]


# --- where the evacuation's own time goes ---------------------------------------------------------


def parent_lines(chain: list[WorkflowHistory]) -> list[str]:
    """From the evacuation's runs: its workflow tasks (ms queued, ms on the worker) and its child
    starts (ms from the start command to the child's start, and between two start commands)."""
    queued: list[float] = []
    worked: list[float] = []
    starting: list[float] = []
    gaps: list[float] = []
    for history in chain:
        at: dict[int, datetime] = {}
        last_initiated: datetime | None = None
        for event in history.events:
            now = event.event_time.ToDatetime()
            at[event.event_id] = now
            if event.HasField("workflow_task_started_event_attributes"):
                queued.append(_ms(now, at[event.workflow_task_started_event_attributes.scheduled_event_id]))
            elif event.HasField("workflow_task_completed_event_attributes"):
                worked.append(_ms(now, at[event.workflow_task_completed_event_attributes.started_event_id]))
            elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                if last_initiated is not None:
                    gaps.append(_ms(now, last_initiated))
                last_initiated = now
            elif event.HasField("child_workflow_execution_started_event_attributes"):
                starting.append(_ms(now, at[event.child_workflow_execution_started_event_attributes.initiated_event_id]))
    return [
        f"evacuation workflow tasks:    {len(worked)}, median {_median(queued):.0f} ms queued + {_median(worked):.0f} ms on "
        f"the worker (p90 {_p90(worked):.0f} ms)",
        f"evacuation child starts:      median {_median(gaps):.0f} ms between two start commands (p90 {_p90(gaps):.0f}); "
        f"command to child started {_median(starting):.0f} ms",
    ]


def _ms(later: datetime, earlier: datetime) -> float:
    return 1000 * (later - earlier).total_seconds()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))] if values else 0.0


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    progress: EvacuationProgress
    cpu: dict[str, float]  # CPU seconds each process used from the start to the result
    chain: list[WorkflowHistory]  # each evacuation run's history, oldest first
    children: list[int]  # history events of each child failover run
    times: ActivityTimes
    writes: Writes
    drained: int
    pointed: int


async def watch(client: Client, workflow_id: str, started: float) -> None:
    """A progress line every PROGRESS_EVERY seconds, as ``evac watch`` follows the evacuation."""
    async for snapshot in follow_evacuation(client, workflow_id, worker_wait=60, poll_seconds=PROGRESS_EVERY):
        p = snapshot.record
        if p is not None and not p.status.finished:
            print(
                f"  {time.monotonic() - started:6.0f}s  {p.summary()}; run {p.runs}, history {p.largest_history}, "
                f"peak in flight {p.peak_in_flight}",
                flush=True,
            )


async def until_worker_polls(client: Client, task_queue: str) -> None:
    """The worker logs that it started a moment before its pollers reach Temporal, and
    ``start_evacuation`` refuses to start with no worker polling: wait for them (30 s at most)."""
    deadline = time.monotonic() + 30
    while not await worker_polling(client, task_queue):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bench's worker has not polled task queue '{task_queue}' in 30 s")
        await asyncio.sleep(0.2)


async def wait_for_end(client: Client, started: StartedEvacuation) -> None:
    """Until the evacuation's last run has ended, however (its record says how)."""
    try:
        await client.get_workflow_handle(started.workflow_id, run_id=started.run_id).result()
    except WorkflowFailureError:
        pass  # completed_with_failures or aborted: the record names the services


async def histories(client: Client, workflow_id: str, services: int) -> tuple[list[WorkflowHistory], list[int]]:
    """Each evacuation run's history (fetched) and each child run's event count (visibility)."""
    chain: list[WorkflowHistory] = []
    async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        chain.append(await client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history())
    chain.reverse()  # visibility lists the newest first
    children: list[int] = []
    deadline = time.monotonic() + 30
    while True:  # visibility records a closed run a moment after it closes
        children = [w.history_length async for w in client.list_workflows("WorkflowType = 'FailoverWorkflow'")]
        if len(children) >= services or time.monotonic() > deadline:
            return chain, children
        await asyncio.sleep(1)


async def evacuate(stack: Stack, topology: Topology, window: int) -> Outcome:
    config = stack.config
    client = await connect_temporal(config.temporal_address, "default", identity="evac evacuation bench")
    trigger = Trigger(by="bench", reason=f"bench/evacuation.py: {len(topology.services)} services")
    evacuation = evacuation_input(topology, Settings(), REGION, trigger, target=TARGET, window=window)
    services = len(evacuation.service_names())
    await until_worker_polls(client, config.task_queue)
    cpu_before = process_cpu(stack)
    began = time.monotonic()
    started = await start_evacuation(client, evacuation, config.task_queue)
    progress_lines = asyncio.create_task(watch(client, started.workflow_id, began))
    try:
        await wait_for_end(client, started)
    finally:
        progress_lines.cancel()
    seconds = time.monotonic() - began
    cpu = {name: used - cpu_before[name] for name, used in process_cpu(stack).items()}
    progress = await evacuation_progress(client, started.workflow_id)
    chain, children = await histories(client, started.workflow_id, services)
    runs = [r for r in progress.services if r.workflow_id and r.run_id]
    sampled = [
        await client.get_workflow_handle(r.workflow_id, run_id=r.run_id).fetch_history()  # type: ignore[arg-type]
        for r in runs[:: max(1, len(runs) // SAMPLED_CHILDREN)]
    ]
    async with httpx.AsyncClient(base_url=config.emulator_url, timeout=60) as admin:
        requests = (await admin.get("/emulator/v1/requests")).raise_for_status().json()["requests"]
        state = (await admin.get("/emulator/v1/state")).raise_for_status().json()
    drained, pointed = final_state(state, topology)
    times, writes = ActivityTimes.of(sampled), Writes.from_log(requests)
    return Outcome(seconds, progress, cpu, chain, children, times, writes, drained, pointed)


def report(outcome: Outcome, args: argparse.Namespace, rss_kib: int, load: tuple[float, ...]) -> bool:
    """Print the figures; True when every service failed over and the final state says so."""
    p, w = outcome.progress, outcome.writes
    counts = p.counts()
    services = len(p.services)
    floor = w.admitted / args.quota
    ratio = outcome.seconds / floor if floor else float("inf")
    largest_run = max((len(h.events) for h in outcome.chain), default=0)
    largest_child = max(outcome.children, default=0)
    busy = sum(outcome.cpu.values())
    print()
    print(f"services:                     {services} (generated topology), {REGION} -> {TARGET}, window {args.window}")
    print(f"emulator:                     {args.latency * 1000:.0f} ms per API call, operation delay {args.operation_delay:g} s")
    print(f"write quota / worker limit:   {args.quota}/s (emulator) / {args.quota}/s (EVAC_WRITE_RATE_LIMIT)")
    print(f"writes at once (worker):      {args.write_concurrency} (EVAC_WRITE_CONCURRENCY)")
    print(f"total time, start to result:  {outcome.seconds:.1f} s")
    print(f"API calls the emulator took:  {w.calls} ({w.calls / services:.1f} a service)")
    print(f"writes admitted by the quota: {w.admitted} ({w.applied} applied); refused 429: {w.refused_quota}")
    print(f"busiest second:               {w.busiest_second} writes (quota {args.quota})")
    print(f"quota floor (writes / quota): {floor:.1f} s")
    print(f"time / floor:                 {ratio:.2f}")
    print(f"worker peak RSS:              {rss_kib / 1024:.0f} MiB (target <= {RSS_TARGET_KIB // 1024} MiB)")
    print(
        "CPU seconds:                  "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in outcome.cpu.items())
        + f" = {busy:.0f} of the {2 * outcome.seconds:.0f} two cores give in that time"
    )
    print(f"load average (1/5/15 min):    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end (2 cores, maybe shared)")
    print(
        f"evacuation runs:              {p.runs} (continue-as-new {p.runs - 1}); largest history {p.largest_history} events "
        f"(its record), {largest_run} (Temporal, largest of {len(outcome.chain)} runs: "
        + " ".join(str(len(h.events)) for h in outcome.chain)
        + ")"
    )
    print(f"child failover runs:          {len(outcome.children)}; largest history {largest_child} events")
    print(f"largest history, any run:     {max(largest_run, largest_child, p.largest_history)} events (limit {HISTORY_LIMIT})")
    starts = sorted(r.started_at for r in p.services if r.started_at is not None)
    span = (starts[-1] - starts[0]).total_seconds() if len(starts) > 1 else 0.0
    print(
        f"child runs started:           {len(starts) / span if span else 0:.1f} a second (first to last start, "
        f"{span:.1f} s); peak in flight {p.peak_in_flight} of window {args.window}"
    )
    for line in [*parent_lines(outcome.chain), *outcome.times.lines()]:
        print(line)
    print(
        f"evacuation:                   {p.status.value}: {counts[ServiceStatus.SUCCEEDED]} succeeded, "
        f"{counts[ServiceStatus.FAILED]} failed" + "".join(f"; {r.service}: {r.error}" for r in p.failed()[:5])
    )
    print(
        f"final state:                  {outcome.drained}/{services} drained in {REGION}, "
        f"{outcome.pointed}/{services} DNS at {TARGET}"
    )
    print(f"quota ratio {ratio:.2f}")
    return counts[ServiceStatus.SUCCEEDED] == services == outcome.drained == outcome.pointed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--services",
        type=bounded(int, 1, MAX_SERVICES),
        default=100,
        help="services in the generated topology (all leave europe-west1)",
    )
    seconds = bounded(float, 0.0, 60.0)
    parser.add_argument("--latency", type=seconds, default=0.05, help="seconds the emulator adds before answering every API call")
    parser.add_argument("--quota", type=bounded(int, 1, 100_000), default=20, help="the project's write quota, writes a second")
    parser.add_argument("--window", type=bounded(int, 1, MAX_WINDOW), default=DEFAULT_WINDOW, help="most runs in flight at once")
    parser.add_argument("--operation-delay", type=seconds, default=0.0, help="emulator seconds until an operation is done")
    parser.add_argument(
        "--write-concurrency",
        type=bounded(int, 1, MAX_WRITE_CONCURRENCY),
        default=DEFAULT_WRITE_CONCURRENCY,
        help="mutations the worker runs at once (EVAC_WRITE_CONCURRENCY)",
    )
    args = parser.parse_args()
    document = generate_topology(args.services, [REGION, TARGET, "asia-east1"])
    topology = validated(document)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "topology.yaml").write_text(topology_yaml(document))
        config = loopback_config(
            folder / "topology.yaml",
            folder / "state",
            operation_delay=args.operation_delay,
            warmup=0.0,
            write_quota_per_second=args.quota,
            call_latency=args.latency,
        )
        # The worker process inherits this environment: Temporal holds its writes to the quota.
        os.environ["EVAC_WRITE_RATE_LIMIT"] = str(args.quota)
        os.environ["EVAC_WRITE_CONCURRENCY"] = str(args.write_concurrency)
        with Stack(config) as stack:
            worker = stack.processes["worker"]
            outcome = asyncio.run(evacuate(stack, topology, args.window))
            rss = peak_rss_kib(worker.pid)
            load = os.getloadavg()
    if not report(outcome, args, rss, load):
        sys.exit(1)


if __name__ == "__main__":
    main()
