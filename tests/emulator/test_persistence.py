"""``--state-file``: an emulator restarted on the same file continues where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.cloud import compute_v1

from emulator.app import create_app
from emulator.persistence import StateFileError
from emulator.testing import ComputeClients, running_emulator
from evac.topology import Topology


def test_restart_on_the_same_state_file_keeps_the_world(demo_topology: Topology, tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with running_emulator(demo_topology, state_file=state_file, operation_delay=0) as first:
        compute = ComputeClients.connect(first.url, first.project)
        op = compute.region_groups.resize(
            project=first.project, region="us-central1", instance_group_manager="checkout-uc1", size=2
        )
        first.outage("europe-west1")
        before = first.state()
        fingerprint = compute.backend_services.get(project=first.project, backend_service="checkout-backend").fingerprint

    with running_emulator(demo_topology, state_file=state_file) as second:
        compute = ComputeClients.connect(second.url, second.project)
        assert second.state() == before
        assert compute.backend_services.get(
            project=second.project, backend_service="checkout-backend"
        ).fingerprint == fingerprint, "a fingerprint read before the restart is still current"
        done = compute.region_operations.get(project=second.project, region="us-central1", operation=op.name)
        assert done.status == compute_v1.Operation.Status.DONE


def test_reset_goes_back_to_the_seeded_world_and_saves_it(demo_topology: Topology, tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with running_emulator(demo_topology, state_file=state_file) as running:
        seeded = running.state()
        running.outage("us-central1")
        running.reset()
        assert running.state() == seeded

    with running_emulator(demo_topology, state_file=state_file) as restarted:
        assert restarted.state() == seeded


def test_a_state_file_of_another_project_is_refused(demo_topology: Topology, tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    create_app(demo_topology, state_file=state_file)
    other = demo_topology.model_copy(update={"project": "other-project"})

    with pytest.raises(StateFileError, match="holds project 'evac-demo'"):
        create_app(other, state_file=state_file)
