"""The real Google clients pointed at the shared emulator (tests/conftest.py), which is reset
to the seeded world before each test; and a second emulator seeded from
plans/regional/topology.yaml (regional backend services, zonal groups)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.cloud import dns as cloud_dns

from emulator.testing import ComputeClients, RunningEmulator, dns_client, running_emulator
from evac.topology import Topology, load_topology
from tests.conftest import FAST_EMULATOR, ROOT

REGIONAL = ROOT / "plans" / "regional"


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
def shared_regional_compute(shared_regional_emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(shared_regional_emulator.url, shared_regional_emulator.project)


@pytest.fixture
def regional_compute(regional_emulator: RunningEmulator, shared_regional_compute: ComputeClients) -> ComputeClients:
    """Compute clients on the freshly reset regional emulator."""
    return shared_regional_compute
