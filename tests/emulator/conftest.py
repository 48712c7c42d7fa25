"""The real Google clients pointed at the shared emulators (tests/conftest.py: the demo world
and the regional one), which are reset to their seeded worlds before each test."""

from __future__ import annotations

import pytest
from google.cloud import dns as cloud_dns

from emulator.testing import ComputeClients, RunningEmulator, dns_client


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
def shared_regional_compute(shared_regional_emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(shared_regional_emulator.url, shared_regional_emulator.project)


@pytest.fixture
def regional_compute(regional_emulator: RunningEmulator, shared_regional_compute: ComputeClients) -> ComputeClients:
    """Compute clients on the freshly reset regional emulator."""
    return shared_regional_compute
