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
FAST = {"operation_delay": 0.3, "warmup": 1.0, "wait_deadline": 0.5}


@pytest.fixture(scope="session")
def demo_topology() -> Topology:
    return load_topology(DEMO_TOPOLOGY)


@pytest.fixture(scope="session")
def shared_emulator(demo_topology: Topology) -> Iterator[RunningEmulator]:
    with running_emulator(demo_topology, **FAST) as running:
        yield running


@pytest.fixture
def emulator(shared_emulator: RunningEmulator) -> RunningEmulator:
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture(scope="session")
def shared_compute(shared_emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(shared_emulator.url, shared_emulator.project)


@pytest.fixture(scope="session")
def shared_dns(shared_emulator: RunningEmulator) -> cloud_dns.Client:
    return dns_client(shared_emulator.url, shared_emulator.project)


@pytest.fixture
def compute(emulator: RunningEmulator, shared_compute: ComputeClients) -> ComputeClients:
    """Compute clients on the freshly reset emulator."""
    return shared_compute


@pytest.fixture
def dns(emulator: RunningEmulator, shared_dns: cloud_dns.Client) -> cloud_dns.Client:
    """A Cloud DNS client on the freshly reset emulator."""
    return shared_dns
