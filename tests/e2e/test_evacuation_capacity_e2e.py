"""Never fail into a cold region (issue 19), as a user meets it: the demo evacuation world (six
services in three tiers) with a warm standby of one instance per group in us-central1, a quota
there that holds only some of the scale-ups, and one service whose standby may have at most 2.

`evac evacuate` scales each target to the source's size and waits until it is healthy before
that service's drain (the request log shows each resize before its drain); a service whose
target cannot reach the load is not started, with the numbers; `evac failback` afterwards puts
every service back exactly, the scale-ups too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DEMO
from tests.e2e.conftest import E2E, quota_stack

pytestmark = pytest.mark.e2e

REGION, TARGET = "europe-west1", "us-central1"
SOURCE_SIZE = 3  # every europe-west1 group (the world's default_group_size)
CAPPED = "payments-api"  # its us-central1 group may have at most 2 (max_size)


def _world() -> dict[str, Any]:
    document = yaml.safe_load((DEMO / "evacuation" / "topology.yaml").read_text())
    services = document["services"]
    document["emulator"]["group_sizes"] = {
        f"{region}/{spec['regions'][region]['instance_group']}": 1
        for spec in services.values()
        for region in spec["regions"]
        if region != REGION
    }
    services[CAPPED]["regions"][TARGET]["max_size"] = 2
    return document


@pytest.fixture(scope="module")
def capacity_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, Path, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("evac-capacity")
    world = _world()
    topology = folder / "topology.yaml"
    topology.write_text(yaml.safe_dump(world))
    with quota_stack(topology, folder, 50, "evac-capacity-e2e") as e2e:
        yield e2e, topology, world


def _group(world: dict[str, Any], service: str, region: str) -> str:
    return str(world["services"][service]["regions"][region]["instance_group"])


def _size(state: dict[str, Any], world: dict[str, Any], service: str, region: str) -> int:
    return int(state["instanceGroupManagers"][f"{region}/{_group(world, service, region)}"]["targetSize"])


def _healthy(state: dict[str, Any], world: dict[str, Any], service: str, region: str) -> int:
    instances = state["instanceGroupManagers"][f"{region}/{_group(world, service, region)}"]["instances"]
    return sum(1 for i in instances if i["health"] == "HEALTHY")


def test_each_target_is_scaled_and_healthy_before_its_drain_and_a_fail_back_restores_it_all(
    capacity_stack: tuple[E2E, Path, dict[str, Any]],
):
    e2e, topology, world = capacity_stack
    e2e.admin.post("/emulator/v1/reset").raise_for_status()
    before = e2e.state()
    usage = e2e.admin.get(f"/emulator/v1/regions/{TARGET}/quotas").raise_for_status().json()["usage"]["INSTANCES"]
    # Room for three scale-ups of 1 → 3: the data tier's two and orders-api's (payments-api is
    # capped by its max_size); none is left for the front end and admin-ui.
    e2e.admin.put(f"/emulator/v1/regions/{TARGET}/quotas", json={"INSTANCES": usage + 6}).raise_for_status()
    try:
        record = e2e.evac_json(
            "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--reason", "e2e: capacity",
            expect=1,
        )  # fmt: skip
        state = e2e.state()
        log = e2e.requests()
    finally:
        e2e.admin.put(f"/emulator/v1/regions/{TARGET}/quotas", json={}).raise_for_status()

    assert record["status"] == "completed_with_failures"
    by_name = {s["service"]: s for s in record["services"]}
    moved = ["sessions-read", "inventory-cache", "orders-api"]
    assert sorted(n for n, s in by_name.items() if s["status"] == "succeeded") == sorted(moved)
    for name in moved:
        service = by_name[name]
        assert service["capacity"].startswith(f"needs {SOURCE_SIZE} healthy in {TARGET} (1 × 3 instances serving in {REGION})")
        # At least the source's former size, and healthy: the run waited for it before its drain.
        assert _size(state, world, name, TARGET) >= SOURCE_SIZE and _healthy(state, world, name, TARGET) >= SOURCE_SIZE
        paths = [r["path"] for r in log if r["effect"] == "applied"]
        resize = next(
            i for i, p in enumerate(paths) if p.endswith(f"/instanceGroupManagers/{_group(world, name, TARGET)}/resize")
        )
        backend = world["services"][name]["regions"][REGION]["backend_service"]
        drain = next(i for i, p in enumerate(paths) if p.endswith(f"/backendServices/{backend}"))
        assert resize < drain, name
    # Refused for that service, with the numbers; nothing of theirs was touched.
    assert by_name[CAPPED]["error"] == (
        f"not started: no region can take it: {TARGET} cannot hold it: needs 3 (1 × 3 instances serving in {REGION}), "
        "can reach 2 (max_size 2)"
    )
    for name in ("storefront", "admin-ui"):
        error = by_name[name]["error"]
        assert error.startswith(f"not started: no region can take it: {TARGET} cannot hold it: needs 3"), error
        assert "can reach 1 (size 1 + 0 quota room (INSTANCES" in error, error
    for name in (CAPPED, "storefront", "admin-ui"):
        assert by_name[name].get("workflow_id") is None
        assert _size(state, world, name, TARGET) == 1
        assert (
            state["backendServices"][world["services"][name]["regions"][REGION]["backend_service"]]
            == (before["backendServices"][world["services"][name]["regions"][REGION]["backend_service"]])
        )

    # The region is back: the fail-back restores every change, newest first, the scale-ups last.
    back = e2e.evac_json("failback", f"evacuation/{REGION}", "--reason", "e2e: the region is back")
    assert back["status"] == "succeeded" and sorted(s["service"] for s in back["services"]) == sorted(moved)
    after = e2e.state()
    for part in ("backendServices", "managedZones"):
        assert after[part] == before[part], part
    sizes = {k: g["targetSize"] for k, g in after["instanceGroupManagers"].items()}
    assert sizes == {k: g["targetSize"] for k, g in before["instanceGroupManagers"].items()}


def test_auto_target_goes_where_there_is_headroom_and_says_why(capacity_stack: tuple[E2E, Path, dict[str, Any]]):
    """orders-api and storefront are served in us-central1 and asia-east1: with no quota room left
    in us-central1, asia-east1 is the one that can take them."""
    e2e, topology, _ = capacity_stack
    e2e.admin.post("/emulator/v1/reset").raise_for_status()
    usage = e2e.admin.get(f"/emulator/v1/regions/{TARGET}/quotas").raise_for_status().json()["usage"]["INSTANCES"]
    e2e.admin.put(f"/emulator/v1/regions/{TARGET}/quotas", json={"INSTANCES": usage}).raise_for_status()
    try:
        record = e2e.evac_json(
            "evacuate", "--region", REGION, "--auto-target", "--services", "orders-api,storefront",
            "--topology", str(topology), "--reason", "e2e: headroom", "--dry-run",
        )  # fmt: skip
    finally:
        e2e.admin.put(f"/emulator/v1/regions/{TARGET}/quotas", json={}).raise_for_status()
    for service in record["services"]:
        assert service["target"] == "asia-east1", service
        assert service["target_reason"].startswith("asia-east1: headroom "), service["target_reason"]
        assert f"{TARGET} cannot hold it: needs 3" in service["target_reason"]
    assert not [r for r in e2e.requests() if r["effect"] is not None]  # a dry run changes nothing
