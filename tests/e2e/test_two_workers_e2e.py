"""Two workers on one task queue, as docs/deployment.md runs them in two regions: a region
evacuation is under way when the worker holding one of its mutations dies (SIGKILL), and the
other worker finishes it.

The worker is found by its drain: started by it (Temporal's pending activity names the worker),
applied by the emulator, its operation not done yet. It is frozen (SIGSTOP) at once, so that it
cannot finish that drain before the SIGKILL that follows; found too late, it is let go and
another drain is looked for.

Temporal notices the dead worker at the mutation's heartbeat timeout (10 s) and retries the
activity on the survivor; the retry finds the change already made (the cloud's operation was
under way when its worker died) and applies nothing twice. The emulator's request log says
so: one applied change per backend service and per DNS record, as one clean evacuation makes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from emulator.requestlog import APPLIED, DUPLICATE
from evac.config import connect_temporal, writes_task_queue
from evac.stack import Stack, StackConfig, free_port
from tests.conftest import DEMO
from tests.e2e.conftest import E2E, record, scaler

pytestmark = pytest.mark.e2e

TOPOLOGY = DEMO / "evacuation" / "topology.yaml"
REGION, TARGET = "europe-west1", "us-central1"
EVACUATION = f"evacuation/{REGION}"
WORKERS = ("worker", "worker-2")
# Seconds each drain and DNS change takes to be done: the time a mutation is in flight on its
# worker, after the cloud took the change in and before the activity can complete.
OPERATION_DELAY = 3.0
# Generous: a busy 2-core machine runs this beside another end-to-end file.
TIMEOUT = 300


def _world() -> dict[str, Any]:
    return yaml.safe_load(TOPOLOGY.read_text())


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """A stack of this file's own: dev server, emulator (slow operations) and two workers on
    its task queue. Stopping it reaps every worker, the killed one too."""
    state_dir = tmp_path_factory.mktemp("evac-two-workers")
    config = StackConfig(
        topology=TOPOLOGY,
        state_dir=state_dir,
        temporal_port=free_port(),
        emulator_port=free_port(),
        ui=False,
        operation_delay=OPERATION_DELAY,
        warmup=0.1,
        task_queue="evac-two-workers-e2e",
    )
    with Stack(config) as stack, httpx.Client(base_url=config.emulator_url, timeout=10) as admin:
        stack.start_worker(WORKERS[1])  # the same command line and environment as the first
        e2e = E2E(stack, admin)
        e2e.wait_for("both workers to poll both task queues", lambda: asyncio.run(_both_workers_poll(stack)), timeout=120)
        yield e2e


def _identity_prefix(process: subprocess.Popen[bytes]) -> str:
    """How a worker process names itself to Temporal (worker.py: ``evac worker <pid>@<host>``)."""
    return f"evac worker {process.pid}@"


async def _both_workers_poll(stack: Stack) -> bool:
    """Each worker polls the task queue (workflow tasks) and its writes queue (mutations)."""
    client = await connect_temporal(stack.config.temporal_address, "default")
    queues = [
        (stack.config.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        (writes_task_queue(stack.config.task_queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ]
    for name, kind in queues:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=kind,
            )
        )
        identities = [poller.identity for poller in response.pollers]
        for worker in WORKERS:
            prefix = _identity_prefix(stack.processes[worker])
            if not any(identity.startswith(prefix) for identity in identities):
                return False
    return True


@dataclass(frozen=True)
class InFlight:
    """A drain whose cloud call was applied and whose operation is not done yet."""

    service: str
    worker: str  # the stack's name of the worker running it
    applied_at: float  # when the emulator applied the drain (epoch seconds)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


async def _drain_in_flight(e2e: E2E, world: dict[str, Any]) -> InFlight | None:
    """A service's drain that a worker has started (first attempt) and the emulator has applied
    less than half an operation ago: its activity cannot complete before the operation is done,
    so a worker killed now dies with it in flight."""
    client = await connect_temporal(e2e.stack.config.temporal_address, "default")
    applied = {
        entry["path"]: _epoch(entry["time"])
        for entry in e2e.requests()
        if entry["method"] == "PATCH" and entry["effect"] == APPLIED
    }
    for service, topology in world["services"].items():
        try:
            description = await client.get_workflow_handle(f"failover/{service}").describe()
        except RPCError:  # its run has not started yet
            continue
        for pending in description.raw_description.pending_activities:
            if (
                pending.activity_type.name != "set_backend_capacity"
                or pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                or pending.attempt != 1
            ):
                continue
            backend = topology["regions"][REGION]["backend_service"]
            at = next((t for path, t in applied.items() if path.endswith(f"/global/backendServices/{backend}")), None)
            worker = next(
                (w for w in WORKERS if pending.last_worker_identity.startswith(_identity_prefix(e2e.stack.processes[w]))),
                None,
            )
            if at is not None and worker is not None and time.time() < at + OPERATION_DELAY / 2:
                return InFlight(service, worker, at)
    return None


def test_a_worker_killed_mid_evacuation_leaves_the_other_to_finish_it_and_nothing_is_applied_twice(two_workers: E2E):
    e2e = two_workers
    world = _world()
    services = list(world["services"])
    started = e2e.evac(
        "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(TOPOLOGY),
        "--reason", "e2e: two workers, one dies", "--no-wait",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr + started.stdout

    # Mid-way, as `evac status` shows it: some services have left, others are leaving.
    def mid_way() -> bool:
        shown = e2e.evac("status", EVACUATION, "--output", "json")
        if shown.returncode != 0:
            return False
        statuses = {s["status"] for s in json.loads(shown.stdout)["services"]}
        return {"succeeded", "running"} <= statuses

    e2e.wait_for("some services failed over and others in flight", mid_way, timeout=TIMEOUT)

    # Then the worker running one of the drains dies while the cloud's operation is under way.
    found: list[InFlight] = []

    def drain_in_flight() -> bool:
        hit = asyncio.run(_drain_in_flight(e2e, world))
        if hit is None:
            return False
        worker = e2e.stack.processes[hit.worker]
        os.kill(worker.pid, signal.SIGSTOP)  # frozen: from here on it can complete nothing
        if time.time() < hit.applied_at + OPERATION_DELAY:  # the drain's operation is not done: still in flight
            found.append(hit)
            return True
        os.kill(worker.pid, signal.SIGCONT)  # found too late (a busy machine): let it go on, find another
        return False

    e2e.wait_for("a drain in flight on a worker", drain_in_flight, timeout=TIMEOUT)
    [hit] = found
    victim = e2e.stack.processes[hit.worker]
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    survivor = next(w for w in WORKERS if w != hit.worker)
    assert e2e.stack.processes[survivor].poll() is None

    # The survivor finishes the evacuation.
    watched = e2e.evac("watch", EVACUATION, "--output", "json", timeout=TIMEOUT)
    assert watched.returncode == 0, watched.stderr + watched.stdout[-3000:]
    final = json.loads(watched.stdout)
    assert final["status"] == "succeeded"
    assert {s["service"]: s["status"] for s in final["services"]} == dict.fromkeys(services, "succeeded")

    # Every service left: its europe-west1 backend drained, its DNS record at us-central1.
    state = e2e.state()
    for name, service in world["services"].items():
        source, target = service["regions"][REGION], service["regions"][TARGET]
        assert scaler(state, source["backend_service"], source["instance_group"]) == 0.0, name
        assert record(state, service["dns"]["record"]) == [target["address"]], name

    # The drain the dead worker held was retried on the survivor, which found it made.
    run = json.loads(e2e.evac("status", f"failover/{hit.service}", "--output", "json").stdout)
    drain = next(step for step in run["steps"] if step["kind"] == "drain")
    assert drain["kind"] == "drain" and drain["status"] == "succeeded", drain
    assert drain["attempts"] >= 2, drain
    assert drain["before"]["capacity_scaler"] == 1.0 and drain["after"]["capacity_scaler"] == 0.0, drain

    # Nothing applied twice: one drain per backend service and one DNS change per record (every
    # service's record pointed at europe-west1), as one clean evacuation makes; a retry that
    # resent its call got the first call's operation back.
    writes = [entry for entry in e2e.requests() if entry["effect"] is not None]
    assert {entry["effect"] for entry in writes} <= {APPLIED, DUPLICATE}, writes
    applied = [entry for entry in writes if entry["effect"] == APPLIED]
    drains = Counter(entry["path"].rsplit("/", 1)[-1] for entry in applied if entry["method"] == "PATCH")
    assert drains == Counter({s["regions"][REGION]["backend_service"]: 1 for s in world["services"].values()}), drains
    dns_changes = [entry for entry in applied if entry["method"] == "POST" and entry["path"].endswith("/changes")]
    assert len(dns_changes) == len(services), dns_changes
    # ...and one resize per target the evacuation found smaller than its load (capacity first).
    scaled = sum("; scale to " in s["capacity"] for s in final["services"])
    resizes = [entry for entry in applied if entry["path"].endswith("/resize")]
    assert len(resizes) == scaled, resizes
    assert len(applied) == 2 * len(services) + scaled, applied
    assert all(entry["requestId"] for entry in applied if entry["method"] == "PATCH")
