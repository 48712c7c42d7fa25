"""Fixtures shared by every test level: the demo topology and one emulator server."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing import RunningEmulator, running_emulator
from evac.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "plans" / "demo"
REGIONAL = ROOT / "plans" / "regional"

# Fast enough for a quick suite, slow enough to observe PENDING operations and warming instances.
FAST_EMULATOR = {"operation_delay": 0.3, "warmup": 1.0, "wait_deadline": 0.5}


@pytest.fixture(scope="session")
def demo_topology() -> Topology:
    return load_topology(DEMO / "topology.yaml")


@pytest.fixture(scope="session")
def shared_emulator(demo_topology: Topology) -> Iterator[RunningEmulator]:
    """One emulator (real uvicorn, free loopback port) for the session."""
    with running_emulator(demo_topology, **FAST_EMULATOR) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: RunningEmulator) -> RunningEmulator:
    """The shared emulator, back at its seeded world with no faults and an empty request log."""
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture(scope="session")
def regional_topology() -> Topology:
    return load_topology(REGIONAL / "topology.yaml")


@pytest.fixture(scope="session")
def shared_regional_emulator(regional_topology: Topology) -> Iterator[RunningEmulator]:
    """A second emulator for the session, seeded from the regional topology."""
    with running_emulator(regional_topology, **FAST_EMULATOR) as running:
        yield running


@pytest.fixture
def regional_emulator(shared_regional_emulator: RunningEmulator) -> RunningEmulator:
    """The regional emulator, back at its seeded world with no faults and an empty request log."""
    shared_regional_emulator.reset()
    return shared_regional_emulator


# --- a hung test says where it hangs --------------------------------------------------------
#
# pytest-timeout (``timeout_method = "thread"``) prints every thread's stack and ends the worker
# when a test passes its limit. An async test that waits forever shows only its event loop's
# ``select`` there; so, shortly before the limit, the tasks of every running loop print their
# own stacks too (scheduled onto the loop itself, where reading them is safe).
HANG_DUMP_LEAD = 20.0


def _dump_tasks(nodeid: str) -> None:
    tasks = asyncio.all_tasks()
    print(f"\n=== {nodeid} is about to time out: {len(tasks)} asyncio tasks ===", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(item.config.getoption("timeout") or 0)
    if limit <= HANG_DUMP_LEAD:
        return (yield)

    def dump() -> None:
        for loop in _running_loops():
            loop.call_soon_threadsafe(_dump_tasks, item.nodeid)

    timer = threading.Timer(limit - HANG_DUMP_LEAD, dump)
    timer.daemon = True
    timer.start()
    try:
        return (yield)
    finally:
        timer.cancel()


@pytest.fixture(scope="session")
def data_topology() -> Topology:
    """checkout's Cloud SQL database in three regions, catalog's multi-region Spanner database."""
    return load_topology(ROOT / "tests" / "data_topology.yaml")


@pytest.fixture(scope="session")
def shared_data_emulator(data_topology: Topology) -> Iterator[RunningEmulator]:
    """An emulator for the session seeded from the data topology."""
    with running_emulator(data_topology, **FAST_EMULATOR) as running:
        yield running


@pytest.fixture
def data_emulator(shared_data_emulator: RunningEmulator) -> RunningEmulator:
    """The data emulator, back at its seeded world with no faults and an empty request log."""
    shared_data_emulator.reset()
    return shared_data_emulator
