"""The failover as a user runs it while the cloud's control plane is at its worst: operations
slower than the heartbeat timeout, and one call in five answered 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from evac.stack import Stack, StackConfig, free_port
from tests.conftest import DEMO
from tests.e2e.conftest import E2E, write_world

pytestmark = pytest.mark.e2e

# Longer than the 10 s heartbeat timeout of mutating steps: one blocking call per operation
# would time every attempt out.
SLOW_OPERATION_SECONDS = 15
MUTATING_KINDS = {"scale_target", "drain", "shift_dns"}
FAILED_OVER = {
    "checkout-backend": ("checkout-ew1", "checkout.shop.example.com.", "198.51.100.10"),
    "catalog-backend": ("catalog-ew1", "catalog.shop.example.com.", "198.51.100.20"),
}


@pytest.fixture(scope="module")
def slow_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """A stack of its own whose emulator takes 15 s per operation and DNS change (and whose
    operations.wait blocks up to two minutes, as Google's does)."""
    state_dir = tmp_path_factory.mktemp("evac-e2e-slow")
    config = StackConfig(
        topology=write_world(state_dir),
        state_dir=state_dir,
        temporal_port=free_port(),
        emulator_port=free_port(),
        ui=False,
        operation_delay=SLOW_OPERATION_SECONDS,
        warmup=2.0,
        task_queue="evac-e2e-slow",
    )
    with Stack(config) as stack, httpx.Client(base_url=config.emulator_url, timeout=10) as admin:
        yield E2E(stack, admin)


def assert_failed_over(e2e: E2E, results: list[dict]) -> None:
    assert {r["service"]: r["status"] for r in results} == {"checkout": "succeeded", "catalog": "succeeded"}, [
        r.get("error") for r in results
    ]
    state = e2e.state()
    for backend_service, (group, name, address) in FAILED_OVER.items():
        [backend] = [b for b in state["backendServices"][backend_service]["backends"] if b["group"].endswith("/" + group)]
        assert backend["capacityScaler"] == 0.0
        [rrset] = [r for r in state["managedZones"]["shop-zone"]["rrsets"] if r["name"] == name and r["type"] == "A"]
        assert rrset["rrdatas"] == [address]


def test_operations_slower_than_the_heartbeat_timeout_succeed_at_the_first_attempt(slow_cloud: E2E):
    results = slow_cloud.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--wait", "--reason", "slow cloud")

    assert_failed_over(slow_cloud, results)
    attempts = {(r["service"], s["name"]): s["attempts"] for r in results for s in r["steps"] if s["kind"] in MUTATING_KINDS}
    assert attempts and set(attempts.values()) == {1}, attempts
    # Each mutation was submitted once, and each step ended after its operation was DONE.
    assert all(r["effect"] == "applied" for r in slow_cloud.requests() if r["effect"] is not None)


def test_an_evacuation_rides_operations_slower_than_the_heartbeat_timeout(slow_cloud: E2E):
    """`evac evacuate`: the services leave at once (each its own run), each of their mutations
    waiting 15 s for its operation, each at the first attempt."""
    slow_cloud.admin.post("/emulator/v1/reset").raise_for_status()
    topology = str(slow_cloud.stack.config.topology)
    record = slow_cloud.evac_json(
        "evacuate", "--region", "europe-west1", "--to", "us-central1", "--topology", topology,
        "--services", "checkout,catalog", "--reason", "slow cloud",
    )  # fmt: skip

    assert record["status"] == "succeeded", [(s["service"], s["error"]) for s in record["services"]]
    runs = [slow_cloud.evac_json("status", s["workflow_id"], "--run-id", s["run_id"]) for s in record["services"]]
    assert_failed_over(slow_cloud, runs)
    attempts = {(r["service"], s["name"]): s["attempts"] for r in runs for s in r["steps"] if s["kind"] in MUTATING_KINDS}
    assert attempts and set(attempts.values()) == {1}, attempts
    assert all(r["effect"] == "applied" for r in slow_cloud.requests() if r["effect"] is not None)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_failover_succeeds_while_one_call_in_five_answers_503(e2e: E2E, seed: int):
    e2e.admin.post("/emulator/v1/faults", json={"status": 503, "rate": 0.2, "seed": seed}).raise_for_status()

    results = e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--wait", "--reason", f"503 seed {seed}")

    assert_failed_over(e2e, results)
    struck = e2e.admin.get("/emulator/v1/faults").json()["faults"][0]["struck"]
    assert struck > 0, "the fault struck some calls"


def test_a_scheduled_drill_passes_and_fails_back_while_calls_answer_503_and_429(e2e: E2E, tmp_path: Path):
    """A scheduled drill (issue 9) through a storm: one call in five 503, one in ten 429."""
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    drill = (DEMO / "drill.yaml").read_text().replace("check_interval: 5s", "check_interval: 1s")
    (tmp_path / "drill.yaml").write_text(drill)
    e2e.admin.post("/emulator/v1/faults", json={"status": 503, "rate": 0.2, "seed": 21}).raise_for_status()
    e2e.admin.post("/emulator/v1/faults", json={"status": 429, "rate": 0.1, "seed": 22}).raise_for_status()
    before = e2e.state()

    e2e.evac_json(
        "schedule", "create", "hostile", "--plan", str(tmp_path / "drill.yaml"), "--cron", "0 10 * * TUE", "--bake", "2s"
    )
    try:
        triggered = e2e.evac_json("schedule", "trigger", "hostile", "--wait")
    finally:
        e2e.evac("schedule", "delete", "hostile")

    [checkout] = triggered["record"]["services"]
    assert (checkout["outcome"], checkout["drill_outcome"]) == ("passed", "passed"), checkout
    drill_record = e2e.evac_json("status", "checkout", "--run-id", checkout["run_id"])
    assert not drill_record["drill"]["mismatches"] and drill_record["left_changed"] == []
    struck = [f["struck"] for f in e2e.admin.get("/emulator/v1/faults").json()["faults"]]
    assert all(n > 0 for n in struck), struck
    e2e.admin.delete("/emulator/v1/faults").raise_for_status()
    after = e2e.state()
    assert {k: after[k] for k in ("backendServices", "managedZones")} == {
        k: before[k] for k in ("backendServices", "managedZones")
    }
