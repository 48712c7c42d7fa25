"""Fixtures shared by every test level: the demo topology and one emulator server."""

from __future__ import annotations

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
