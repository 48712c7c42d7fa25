"""Regional managed instance groups through the real client: seeded sizes, resize with
warm-up, shrinking, request ids."""

from __future__ import annotations

import time
import uuid

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator

REGION = "us-central1"
GROUP = "checkout-uc1"
GROUP_URL = f"https://www.googleapis.com/compute/v1/projects/evac-demo/regions/{REGION}/instanceGroups/{GROUP}"


def _get(compute: ComputeClients) -> compute_v1.InstanceGroupManager:
    return compute.region_groups.get(project=compute.project, region=REGION, instance_group_manager=GROUP)


def _resize(compute: ComputeClients, size: int, request_id: str | None = None) -> str:
    request = compute_v1.ResizeRegionInstanceGroupManagerRequest(
        project=compute.project, region=REGION, instance_group_manager=GROUP, size=size, request_id=request_id
    )
    return compute.region_groups.resize(request).name


def _health(compute: ComputeClients) -> list[str]:
    result = compute.backend_services.get_health(
        project=compute.project,
        backend_service="checkout-backend",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(group=GROUP_URL),
    )
    return sorted(status.health_state for status in result.health_status)


def _instances(emulator: RunningEmulator) -> list[dict[str, str]]:
    return emulator.state()["instanceGroupManagers"][f"{REGION}/{GROUP}"]["instances"]


def test_groups_are_seeded_with_the_topology_sizes(compute: ComputeClients) -> None:
    standby = _get(compute)
    primary = compute.region_groups.get(project=compute.project, region="europe-west1", instance_group_manager="checkout-ew1")

    assert (standby.target_size, primary.target_size) == (1, 3)
    assert standby.instance_group == GROUP_URL
    assert standby.status.is_stable
    assert _health(compute) == ["HEALTHY"]


def test_scaled_up_instances_serve_only_after_warmup(emulator: RunningEmulator, compute: ComputeClients) -> None:
    operation = _resize(compute, 3, request_id=str(uuid.uuid4()))

    warming = _get(compute)
    assert warming.target_size == 3, "the target size is set at once"
    assert not warming.status.is_stable
    assert warming.current_actions.creating == 2
    assert _health(compute) == ["HEALTHY", "UNHEALTHY", "UNHEALTHY"]
    assert sorted(i["status"] for i in _instances(emulator)) == ["CREATING", "CREATING", "RUNNING"]

    assert compute.wait(operation, region=REGION).operation_type == "compute.regionInstanceGroupManagers.resize"
    time.sleep(emulator.settings.warmup)
    assert _get(compute).status.is_stable
    assert _health(compute) == ["HEALTHY"] * 3


def test_scaling_down_removes_the_newest_instances(emulator: RunningEmulator, compute: ComputeClients) -> None:
    original = _instances(emulator)
    _resize(compute, 4)

    _resize(compute, 1)

    assert _instances(emulator) == original
    assert _get(compute).target_size == 1


def test_a_group_scaled_down_and_up_again_has_the_instances_it_had(emulator: RunningEmulator, compute: ComputeClients) -> None:
    before = emulator.state()
    primary = dict(project=compute.project, region="europe-west1", instance_group_manager="checkout-ew1")
    compute.region_groups.resize(request=compute_v1.ResizeRegionInstanceGroupManagerRequest(**primary, size=1))
    compute.region_groups.resize(request=compute_v1.ResizeRegionInstanceGroupManagerRequest(**primary, size=3))

    time.sleep(emulator.settings.warmup)
    assert emulator.state() == before


def test_resize_retried_with_the_same_request_id_happens_once(emulator: RunningEmulator, compute: ComputeClients) -> None:
    request_id = str(uuid.uuid4())
    first = _resize(compute, 2, request_id=request_id)
    _resize(compute, 1)  # a later change

    retry = _resize(compute, 2, request_id=request_id)

    assert retry == first
    assert _get(compute).target_size == 1
    assert [r["effect"] for r in emulator.requests() if r["path"].endswith("/resize")] == [
        "applied",
        "applied",
        "duplicate requestId: returned existing operation",
    ]


def test_negative_size_is_refused(compute: ComputeClients) -> None:
    with pytest.raises(exceptions.BadRequest):
        _resize(compute, -1)
    assert _get(compute).target_size == 1


def test_managed_instances_show_creation_in_progress(compute: ComputeClients) -> None:
    _resize(compute, 2)

    listed = compute.region_groups.list_managed_instances(project=compute.project, region=REGION, instance_group_manager=GROUP)

    assert sorted(i.current_action for i in listed) == ["CREATING", "NONE"]


def test_unknown_group_is_not_found(compute: ComputeClients) -> None:
    with pytest.raises(exceptions.NotFound):
        compute.region_groups.get(project=compute.project, region=REGION, instance_group_manager="nope")


def test_instances_named_by_health_checks_are_served_with_their_group_and_address(compute: ComputeClients) -> None:
    health = compute.backend_services.get_health(
        project=compute.project,
        backend_service="checkout-backend",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(group=GROUP_URL),
    ).health_status[0]
    zone, name = health.instance.split("/zones/")[1].split("/instances/")

    instance = compute.instances.get(project=compute.project, zone=zone, instance=name)
    in_zone = compute.instances.list(
        request=compute_v1.ListInstancesRequest(project=compute.project, zone=zone, filter=f"name = {name}")
    )

    assert instance.self_link == health.instance
    assert instance.network_interfaces[0].network_i_p == health.ip_address
    assert instance.status == "RUNNING"
    assert {item.key: item.value for item in instance.metadata.items}["created-by"].endswith(f"/{GROUP}")
    assert [i.name for i in in_zone] == [name]
