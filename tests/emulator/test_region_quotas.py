"""Regional quotas: ``regions.get`` / ``regions.list`` through the real client, usage that
follows resizes, and Google's enforcement — a resize beyond the region's room is accepted, but
the instances it has no room for are not created (the group stays unstable, they never serve)
until room appears. The limits come from the topology and the admin API; a reset restores the
seeded ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.app import create_app
from emulator.seed import seed_world
from emulator.state import DEFAULT_REGION_QUOTAS
from emulator.testing import ComputeClients, RunningEmulator, running_emulator
from evac.topology import Topology

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"
REGION = "us-central1"
CHECKOUT, CATALOG = "checkout-uc1", "catalog-uc1"
SEEDED_LIMIT = 4
"""us-central1's INSTANCES limit in this module's topology; its two groups start with 1 instance each."""
# No warm-up: an instance that is created serves at once, so what does not serve is what is missing.
FAST = {"operation_delay": 0.05, "warmup": 0.0, "wait_deadline": 0.5}


def with_region_quotas(topology: Topology, quotas: dict[str, dict[str, int]]) -> Topology:
    document = topology.model_dump()
    document["emulator"]["region_quotas"] = quotas
    return Topology.model_validate(document)


@pytest.fixture(scope="module")
def quota_topology(demo_topology: Topology) -> Topology:
    return with_region_quotas(demo_topology, {REGION: {"INSTANCES": SEEDED_LIMIT}})


@pytest.fixture(scope="module")
def shared_quota_emulator(quota_topology: Topology) -> Iterator[RunningEmulator]:
    with running_emulator(quota_topology, **FAST) as running:
        yield running


@pytest.fixture
def limited(shared_quota_emulator: RunningEmulator) -> RunningEmulator:
    shared_quota_emulator.reset()
    return shared_quota_emulator


@pytest.fixture(scope="module")
def limited_compute(shared_quota_emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(shared_quota_emulator.url, shared_quota_emulator.project)


def _region(compute: ComputeClients, region: str = REGION) -> compute_v1.Region:
    return compute.regions.get(project=compute.project, region=region)


def _quotas(region: compute_v1.Region) -> dict[str, tuple[float, float]]:
    """metric -> (limit, usage), of the metrics that limit instances (``IN_USE_ADDRESSES``, the
    addresses in use, is test_frontends.py's)."""
    return {q.metric: (q.limit, q.usage) for q in region.quotas if q.metric in ("CPUS", "INSTANCES")}


def _resize(compute: ComputeClients, group: str, size: int) -> compute_v1.Operation:
    """Resize and wait for the operation (a DONE operation, whatever the quota)."""
    request = compute_v1.ResizeRegionInstanceGroupManagerRequest(
        project=compute.project, region=REGION, instance_group_manager=group, size=size, request_id=str(uuid.uuid4())
    )
    return compute.wait(compute.region_groups.resize(request).name, region=REGION)


def _group(compute: ComputeClients, group: str = CHECKOUT) -> compute_v1.InstanceGroupManager:
    return compute.region_groups.get(project=compute.project, region=REGION, instance_group_manager=group)


def _health(compute: ComputeClients, group: str = CHECKOUT) -> list[str]:
    backend = "checkout-backend" if group == CHECKOUT else "catalog-backend"
    result = compute.backend_services.get_health(
        project=compute.project,
        backend_service=backend,
        resource_group_reference_resource=compute_v1.ResourceGroupReference(
            group=f"{COMPUTE}/regions/{REGION}/instanceGroups/{group}"
        ),
    )
    return sorted(status.health_state for status in result.health_status)


def _managed(compute: ComputeClients, group: str = CHECKOUT) -> list[compute_v1.ManagedInstance]:
    return list(
        compute.region_groups.list_managed_instances(project=compute.project, region=REGION, instance_group_manager=group)
    )


# --- regions.get / regions.list ------------------------------------------------------------


def test_a_region_read_through_the_real_client_has_its_quotas(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    region = _region(limited_compute)

    assert region.name == REGION
    assert region.status == "UP"
    assert region.self_link == f"{COMPUTE}/regions/{REGION}"
    assert list(region.zones) == [f"{COMPUTE}/zones/{REGION}-b"]
    assert region.id > 0 and region.creation_timestamp
    # Two instances of e2-standard-2 (2 vCPUs each); the topology sets INSTANCES, CPUS keeps its default.
    assert _quotas(region) == {"CPUS": (2000000.0, 4.0), "INSTANCES": (4.0, 2.0)}
    assert DEFAULT_REGION_QUOTAS == {"CPUS": 2_000_000, "INSTANCES": 1_000_000}
    assert _quotas(_region(limited_compute, "europe-west1")) == {"CPUS": (2000000.0, 12.0), "INSTANCES": (1000000.0, 6.0)}


def test_the_region_resource_is_google_s_json(limited: RunningEmulator) -> None:
    body = limited.admin.get(f"/compute/v1/projects/evac-demo/regions/{REGION}").raise_for_status().json()

    assert body == {
        "kind": "compute#region",
        "id": body["id"],
        "creationTimestamp": "1970-01-01T00:00:00.000Z",
        "name": REGION,
        "description": REGION,
        "status": "UP",
        "zones": [f"{COMPUTE}/zones/{REGION}-b"],
        "quotas": [
            {"metric": "CPUS", "limit": 2000000.0, "usage": 4.0},
            {"metric": "INSTANCES", "limit": 4.0, "usage": 2.0},
            # The demo's addresses are global (its backend services are): none in use in the region.
            {"metric": "IN_USE_ADDRESSES", "limit": 1000000.0, "usage": 0.0},
        ],
        "selfLink": f"{COMPUTE}/regions/{REGION}",
        "supportsPzs": False,
    }
    assert body["id"].isdigit()
    by_id = limited.admin.get(f"/compute/v1/projects/evac-demo/regions/{body['id']}").raise_for_status().json()
    assert by_id == body, "a region is found by its id too"


def test_regions_list_the_regions_with_groups(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    regions = list(limited_compute.regions.list(project=limited_compute.project))

    assert [r.name for r in regions] == ["europe-west1", REGION]
    assert _quotas(regions[1]) == _quotas(_region(limited_compute))
    raw = limited.admin.get("/compute/v1/projects/evac-demo/regions", params={"filter": "name = us-central1"}).json()
    assert raw["kind"] == "compute#regionList" and [r["name"] for r in raw["items"]] == [REGION]


def test_an_unknown_region_or_project_is_not_found(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    with pytest.raises(exceptions.NotFound, match="projects/evac-demo/regions/asia-east1"):
        _region(limited_compute, "asia-east1")
    with pytest.raises(exceptions.NotFound):
        limited_compute.regions.get(project="other-project", region=REGION)
    with pytest.raises(exceptions.NotFound):
        list(limited_compute.regions.list(project="other-project"))


def test_zonal_groups_count_in_their_region(regional_emulator: RunningEmulator, regional_compute: ComputeClients) -> None:
    region = regional_compute.regions.get(project=regional_compute.project, region=REGION)

    assert list(region.zones) == [f"{COMPUTE}/zones/{REGION}-a"]
    assert _quotas(region)["INSTANCES"] == (1000000.0, 1.0)

    regional_emulator.set_region_quota(REGION, instances=2)
    request = compute_v1.ResizeInstanceGroupManagerRequest(
        project=regional_compute.project, zone=f"{REGION}-a", instance_group_manager="payments-uc1-a", size=4
    )
    regional_compute.zone_groups.resize(request)
    group = regional_compute.zone_groups.get(
        project=regional_compute.project, zone=f"{REGION}-a", instance_group_manager="payments-uc1-a"
    )

    assert (group.target_size, group.current_actions.creating, group.status.is_stable) == (4, 3, False)
    assert _quotas(regional_compute.regions.get(project=regional_compute.project, region=REGION))["INSTANCES"] == (2.0, 2.0)


# --- usage and enforcement ------------------------------------------------------------------


def test_usage_follows_resizes(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    _resize(limited_compute, CHECKOUT, 3)
    assert _quotas(_region(limited_compute)) == {"CPUS": (2000000.0, 8.0), "INSTANCES": (4.0, 4.0)}

    _resize(limited_compute, CATALOG, 0)
    assert _quotas(_region(limited_compute))["INSTANCES"] == (4.0, 3.0)
    assert limited.region_quota(REGION) == {
        "region": REGION,
        "limits": {"CPUS": 2000000, "INSTANCES": 4},
        "usage": {"CPUS": 6, "INSTANCES": 3},
        "waitingInstances": 0,
    }


def test_a_resize_beyond_the_quota_is_accepted_but_creates_only_what_fits(
    limited: RunningEmulator, limited_compute: ComputeClients
) -> None:
    operation = _resize(limited_compute, CHECKOUT, 5)

    # The operation succeeds and the target size is set, as on Google Cloud.
    assert operation.status == compute_v1.Operation.Status.DONE and not operation.error.errors
    group = _group(limited_compute)
    assert group.target_size == 5
    # Room for 2 of the 4 new instances: the other 2 are CREATING, and stay so.
    assert (group.current_actions.none, group.current_actions.creating) == (3, 2)
    assert not group.status.is_stable
    assert _health(limited_compute) == ["HEALTHY"] * 3, "a missing instance never serves"
    assert _quotas(_region(limited_compute))["INSTANCES"] == (4.0, 4.0)
    assert limited.region_quota(REGION)["waitingInstances"] == 2

    managed = _managed(limited_compute)
    assert len(managed) == 5
    waiting = [m for m in managed if m.last_attempt.errors.errors]
    assert [(m.current_action, m.instance_status) for m in waiting] == [("CREATING", "")] * 2
    assert {e.code for m in waiting for e in m.last_attempt.errors.errors} == {"QUOTA_EXCEEDED"}
    assert waiting[0].last_attempt.errors.errors[0].message == "Quota 'INSTANCES' exceeded.  Limit: 4.0 in region us-central1."
    # They are not instances yet.
    with pytest.raises(exceptions.NotFound):
        limited_compute.instances.get(project=limited_compute.project, zone=f"{REGION}-b", instance=waiting[0].name)
    traffic = limited.admin.get("/emulator/v1/traffic/checkout-backend").json()
    assert traffic["regions"][REGION]["instances"] == 3
    snapshot = limited.state()["instanceGroupManagers"][f"{REGION}/{CHECKOUT}"]
    assert snapshot["targetSize"] == 5 and len(snapshot["instances"]) == 3


def test_raising_the_limit_creates_the_missing_instances(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    _resize(limited_compute, CHECKOUT, 5)

    answer = limited.set_region_quota(REGION, instances=10)

    assert answer["limits"]["INSTANCES"] == 10 and answer["waitingInstances"] == 0
    group = _group(limited_compute)
    assert (group.target_size, group.current_actions.creating, group.status.is_stable) == (5, 0, True)
    assert _health(limited_compute) == ["HEALTHY"] * 5
    assert _quotas(_region(limited_compute))["INSTANCES"] == (10.0, 6.0)
    assert all(not m.last_attempt.errors.errors and m.current_action == "NONE" for m in _managed(limited_compute))


def test_another_group_shrinking_makes_room(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    _resize(limited_compute, CHECKOUT, 5)  # 2 created, 2 waiting

    _resize(limited_compute, CATALOG, 0)

    assert _group(limited_compute).current_actions.creating == 1
    _resize(limited_compute, CHECKOUT, 4)  # no instance removed: one fewer waiting
    group = _group(limited_compute)
    assert (group.target_size, group.current_actions.creating, group.status.is_stable) == (4, 0, True)
    assert _health(limited_compute) == ["HEALTHY"] * 4


def test_room_goes_to_the_waiting_groups_in_the_order_they_were_created(
    limited: RunningEmulator, limited_compute: ComputeClients
) -> None:
    _resize(limited_compute, CATALOG, 3)  # takes the room: 2 created
    _resize(limited_compute, CHECKOUT, 3)  # 2 waiting
    _resize(limited_compute, CATALOG, 5)  # 2 waiting

    limited.set_region_quota(REGION, instances=6)

    # checkout-uc1 was created before catalog-uc1 (the topology's order): it gets the room.
    assert _group(limited_compute, CHECKOUT).current_actions.creating == 0
    assert _group(limited_compute, CATALOG).current_actions.creating == 2
    assert limited.region_quota(REGION)["waitingInstances"] == 2


def test_the_cpus_quota_binds_too(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_region_quota(REGION, cpus=6)  # 2 instances use 4 vCPUs: room for 1 more

    _resize(limited_compute, CHECKOUT, 3)

    assert _group(limited_compute).current_actions.creating == 1
    message = next(m for m in _managed(limited_compute) if m.last_attempt.errors.errors).last_attempt.errors.errors[0].message
    assert message == "Quota 'CPUS' exceeded.  Limit: 6.0 in region us-central1."
    assert _quotas(_region(limited_compute)) == {"CPUS": (6.0, 6.0), "INSTANCES": (4.0, 3.0)}


def test_lowering_a_limit_below_usage_deletes_nothing(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_region_quota(REGION, instances=0)

    assert _quotas(_region(limited_compute))["INSTANCES"] == (0.0, 2.0)
    assert _health(limited_compute) == ["HEALTHY"]
    _resize(limited_compute, CHECKOUT, 2)
    assert _group(limited_compute).current_actions.creating == 1


# --- limits: the admin API, the topology, reset ----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"GPUS": 4},
        {"INSTANCES": -1},
        {"INSTANCES": 4, "extra": True},
        {"INSTANCES": 4.5},
        {"INSTANCES": "4"},
        {"CPUS": True},
        {"instances": 4},
    ],
)
def test_a_bad_limit_is_refused_and_changes_nothing(limited: RunningEmulator, body: dict[str, Any]) -> None:
    before = limited.region_quota(REGION)

    answer = limited.admin.put(f"/emulator/v1/regions/{REGION}/quotas", json=body)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["errors"][0]["reason"] == "badRequest"
    assert limited.region_quota(REGION) == before


def test_the_quotas_of_a_region_without_groups_are_not_found(limited: RunningEmulator) -> None:
    assert limited.admin.get("/emulator/v1/regions/asia-east1/quotas").status_code == 404
    assert limited.admin.put("/emulator/v1/regions/asia-east1/quotas", json={"INSTANCES": 1}).status_code == 404


def test_a_metric_left_out_gets_its_seeded_limit(limited: RunningEmulator) -> None:
    limited.set_region_quota(REGION, instances=9, cpus=30)

    assert limited.set_region_quota(REGION, cpus=20)["limits"] == {"CPUS": 20, "INSTANCES": SEEDED_LIMIT}
    assert limited.admin.put(f"/emulator/v1/regions/{REGION}/quotas", json={}).json()["limits"] == {
        "CPUS": 2000000,
        "INSTANCES": SEEDED_LIMIT,
    }


def test_reset_restores_the_seeded_limits(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_region_quota(REGION, instances=1, cpus=2)
    limited.set_region_quota("europe-west1", instances=100)

    limited.reset()

    assert limited.region_quota(REGION)["limits"] == {"CPUS": 2000000, "INSTANCES": SEEDED_LIMIT}
    assert _quotas(_region(limited_compute, "europe-west1"))["INSTANCES"] == (1000000.0, 6.0)


def test_the_seeded_instances_exist_whatever_the_limit(demo_topology: Topology) -> None:
    topology = with_region_quotas(demo_topology, {REGION: {"INSTANCES": 1}})
    with running_emulator(topology, **FAST) as emulator:
        compute = ComputeClients.connect(emulator.url, emulator.project)

        assert _quotas(_region(compute))["INSTANCES"] == (1.0, 2.0)
        assert _group(compute, CATALOG).status.is_stable


async def test_a_restart_on_the_state_file_keeps_the_limits_set(quota_topology: Topology, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    first = create_app(quota_topology, state_file=state_file, **FAST)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://emulator") as client:
        (await client.put(f"/emulator/v1/regions/{REGION}/quotas", json={"INSTANCES": 7})).raise_for_status()

    again = create_app(quota_topology, state_file=state_file, **FAST)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=again), base_url="http://emulator") as client:
        answer = (await client.get(f"/emulator/v1/regions/{REGION}/quotas")).json()

    assert answer["limits"]["INSTANCES"] == 7


def test_usage_follows_groups_added_or_removed(quota_topology: Topology) -> None:
    world = seed_world(quota_topology, 0.0)
    assert world.quota_usage(REGION)["INSTANCES"] == 2

    removed = world.groups.pop(f"{REGION}/{CATALOG}")
    assert world.quota_usage(REGION)["INSTANCES"] == 1
    world.groups[f"{REGION}/{CATALOG}"] = removed
    assert [g.name for g in world.groups_in(REGION)] == [CHECKOUT, CATALOG]
    assert world.quota_usage(REGION)["INSTANCES"] == 2
