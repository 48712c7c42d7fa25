"""A slow emulator for the activity tests: operations and DNS changes take longer than the
heartbeat timeout the tests give the activities, and operations.wait blocks as long as
Google's does (up to two minutes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.testing import RunningEmulator, running_emulator
from evac.topology import Topology

# Longer than SHORT_HEARTBEAT_TIMEOUT in the tests (1 s), short enough for a quick suite.
SLOW_OPERATION_SECONDS = 2.5


@pytest.fixture(scope="session")
def shared_slow_emulator(demo_topology: Topology) -> Iterator[RunningEmulator]:
    with running_emulator(demo_topology, operation_delay=SLOW_OPERATION_SECONDS, warmup=0.5) as running:
        yield running


@pytest.fixture
def slow_emulator(shared_slow_emulator: RunningEmulator) -> RunningEmulator:
    """The slow emulator, back at its seeded world with no faults and an empty request log."""
    shared_slow_emulator.reset()
    return shared_slow_emulator
