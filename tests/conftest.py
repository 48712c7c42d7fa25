"""Fixtures shared by every test level."""

from __future__ import annotations

from pathlib import Path

import pytest

from evac.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "plans" / "demo"


@pytest.fixture(scope="session")
def demo_topology() -> Topology:
    return load_topology(DEMO / "topology.yaml")
