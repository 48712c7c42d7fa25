"""One emulator server (real uvicorn, free loopback port) reset to the seeded world before
each test, and the real Google clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud import dns as cloud_dns

from emulator.testing import ComputeClients, RunningEmulator, dns_client, running_emulator
from evac.topology import Topology, load_topology

DEMO_TOPOLOGY = Path(__file__).parents[2] / "plans" / "demo" / "topology.yaml"

# Fast enough for a quick suite, slow enough to observe PENDING operations and warming instances.
FAST = {"operation_delay": 0.3, "warmup": 0.8, "wait_deadline": 1.0}


@pytest.fixture
def demo_topology() -> Topology:
    return load_topology(DEMO_TOPOLOGY)


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[RunningEmulator]:
    with running_emulator(load_topology(DEMO_TOPOLOGY), **FAST) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: RunningEmulator) -> RunningEmulator:
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def compute(emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(emulator.url, emulator.project)


@pytest.fixture
def dns(emulator: RunningEmulator) -> cloud_dns.Client:
    return dns_client(emulator.url, emulator.project)
