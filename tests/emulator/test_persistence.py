"""``--state-file``: an emulator restarted on the same file continues where it stopped."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from google.cloud import compute_v1

from emulator.app import create_app
from emulator.persistence import StateFileError, StateStore
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
        url_map = compute.url_maps.get(project=first.project, url_map="checkout-backend-map")

    with running_emulator(demo_topology, state_file=state_file) as second:
        compute = ComputeClients.connect(second.url, second.project)
        assert second.state() == before
        assert (
            compute.backend_services.get(project=second.project, backend_service="checkout-backend").fingerprint == fingerprint
        ), "a fingerprint read before the restart is still current"
        assert compute.url_maps.get(project=second.project, url_map="checkout-backend-map") == url_map
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


def test_a_slow_state_file_write_holds_up_only_the_call_that_changed_the_world(
    demo_topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state file is written off the event loop: while one write is stuck on a slow disk,
    the emulator answers other calls; the changing call answers once its state is saved."""
    state_file = tmp_path / "world.json"
    stuck, writing, release = threading.Event(), threading.Event(), threading.Event()
    write = StateStore.write

    def slow_write(store: StateStore, text: str) -> None:
        if stuck.is_set():
            writing.set()
            release.wait(30)
        write(store, text)

    monkeypatch.setattr(StateStore, "write", slow_write)
    with running_emulator(demo_topology, state_file=state_file) as running, ThreadPoolExecutor(1) as pool:
        stuck.set()
        outage = pool.submit(httpx.post, f"{running.url}/emulator/v1/regions/europe-west1/outage", timeout=30)
        assert writing.wait(10), "the outage was saved"
        try:
            assert running.admin.get("/emulator/v1/healthz").status_code == 200
            assert running.state()["outages"] == ["europe-west1"]
            assert not outage.done(), "the outage call answers only once its state is saved"
        finally:
            stuck.clear()
            release.set()
        assert outage.result(10).status_code == 200
        assert json.loads(state_file.read_text())["outages"] == ["europe-west1"]
