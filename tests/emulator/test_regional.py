"""Regional backend services and zonal managed instance groups (plans/regional/topology.yaml)
through the real google-cloud-compute clients: seeding, fingerprints, request ids, resize with
warm-up, health through an outage, zone operations, traffic, reset and the state file."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator, running_emulator
from evac.topology import Topology

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"
REGION = "europe-west1"
SERVICE = "payments-ew1"
EW1_ZONE, EW1_GROUP = "europe-west1-b", "payments-ew1-b"
UC1_ZONE, UC1_GROUP = "us-central1-a", "payments-uc1-a"
EW1_GROUP_URL = f"{COMPUTE}/zones/{EW1_ZONE}/instanceGroups/{EW1_GROUP}"
UC1_GROUP_URL = f"{COMPUTE}/zones/{UC1_ZONE}/instanceGroups/{UC1_GROUP}"
Status = compute_v1.Operation.Status


def _service(compute: ComputeClients) -> compute_v1.BackendService:
    return compute.region_backend_services.get(project=compute.project, region=REGION, backend_service=SERVICE)


def _patch(compute: ComputeClients, resource: compute_v1.BackendService, request_id: str | None = None) -> compute_v1.Operation:
    request = compute_v1.PatchRegionBackendServiceRequest(
        project=compute.project,
        region=REGION,
        backend_service=SERVICE,
        backend_service_resource=resource,
        request_id=request_id,
    )
    extended = compute.region_backend_services.patch(request)
    return compute.region_operations.get(project=compute.project, region=REGION, operation=extended.name)


def _with_scaler(current: compute_v1.BackendService, scaler: float) -> compute_v1.BackendService:
    changed = compute_v1.BackendService(current)  # keeps the fingerprint
    changed.backends[0].capacity_scaler = scaler
    return changed


def _scaler(emulator: RunningEmulator) -> float:
    backends = emulator.state()["regionBackendServices"][f"{REGION}/{SERVICE}"]["backends"]
    assert len(backends) == 1
    return float(backends[0]["capacityScaler"])


def _group(compute: ComputeClients, zone: str = UC1_ZONE, name: str = UC1_GROUP) -> compute_v1.InstanceGroupManager:
    return compute.zone_groups.get(project=compute.project, zone=zone, instance_group_manager=name)


def _resize(compute: ComputeClients, size: int, request_id: str | None = None) -> str:
    request = compute_v1.ResizeInstanceGroupManagerRequest(
        project=compute.project, zone=UC1_ZONE, instance_group_manager=UC1_GROUP, size=size, request_id=request_id
    )
    return compute.zone_groups.resize(request).name


def _health(compute: ComputeClients, region: str, service: str, group_url: str) -> list[compute_v1.HealthStatus]:
    result = compute.region_backend_services.get_health(
        project=compute.project,
        region=region,
        backend_service=service,
        resource_group_reference_resource=compute_v1.ResourceGroupReference(group=group_url),
    )
    return list(result.health_status)


def test_regional_world_is_seeded_from_the_topology(regional_emulator: RunningEmulator, regional_compute: ComputeClients) -> None:
    compute = regional_compute
    service = _service(compute)
    check = compute.region_health_checks.get(project=compute.project, region=REGION, health_check=f"{SERVICE}-hc")
    primary, standby = _group(compute, EW1_ZONE, EW1_GROUP), _group(compute)

    assert service.region == f"{COMPUTE}/regions/{REGION}"
    assert service.self_link == f"{COMPUTE}/regions/{REGION}/backendServices/{SERVICE}"
    assert [(b.group, b.capacity_scaler) for b in service.backends] == [(EW1_GROUP_URL, 1.0)]
    assert list(service.health_checks) == [check.self_link]
    assert check.self_link == f"{COMPUTE}/regions/{REGION}/healthChecks/{SERVICE}-hc"
    assert (primary.target_size, standby.target_size) == (3, 1)
    assert standby.zone == f"{COMPUTE}/zones/{UC1_ZONE}" and not standby.region
    assert standby.self_link == f"{COMPUTE}/zones/{UC1_ZONE}/instanceGroupManagers/{UC1_GROUP}"
    assert standby.instance_group == UC1_GROUP_URL and standby.status.is_stable
    assert [s.name for s in compute.region_backend_services.list(project=compute.project, region=REGION)] == [SERVICE]
    assert list(compute.backend_services.list(project=compute.project)) == [], "no global backend service"
    with pytest.raises(exceptions.NotFound):
        compute.region_backend_services.get(project=compute.project, region="us-central1", backend_service=SERVICE)
    with pytest.raises(exceptions.NotFound):
        compute.region_groups.get(project=compute.project, region=REGION, instance_group_manager=EW1_GROUP)

    state = regional_emulator.state()
    assert state["backendServices"] == {}
    assert sorted(state["regionBackendServices"]) == ["europe-west1/payments-ew1", "us-central1/payments-uc1"]
    assert sorted(state["instanceGroupManagers"]) == ["europe-west1-b/payments-ew1-b", "us-central1-a/payments-uc1-a"]
    instances = state["instanceGroupManagers"]["us-central1-a/payments-uc1-a"]["instances"]
    assert [(i["status"], i["health"]) for i in instances] == [("RUNNING", "HEALTHY")]


def test_regional_patch_takes_effect_and_a_stale_fingerprint_is_refused(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    before = _service(compute)

    op = _patch(compute, _with_scaler(before, 0.5), request_id=str(uuid.uuid4()))
    assert _scaler(regional_emulator) == 0.5
    done = compute.wait(op.name, region=REGION)
    assert (done.operation_type, done.target_link, done.region) == ("patch", before.self_link, f"{COMPUTE}/regions/{REGION}")

    with pytest.raises(exceptions.PreconditionFailed):
        _patch(compute, _with_scaler(before, 1.0))  # the fingerprint read before the first patch
    stale_update = compute_v1.BackendService(before)
    stale_update.fingerprint = ""
    with pytest.raises(exceptions.PreconditionFailed):
        compute.region_backend_services.update(
            project=compute.project, region=REGION, backend_service=SERVICE, backend_service_resource=stale_update
        )
    assert _scaler(regional_emulator) == 0.5
    assert [r["effect"] for r in regional_emulator.requests() if r["method"] in ("PATCH", "PUT")] == [
        "applied",
        "refused: 412 conditionNotMet",
        "refused: 412 conditionNotMet",
    ]


def test_regional_update_with_the_current_fingerprint_replaces_the_service(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    op = compute.region_backend_services.update(
        project=compute.project,
        region=REGION,
        backend_service=SERVICE,
        backend_service_resource=_with_scaler(_service(compute), 0.25),
    )

    assert compute.wait(op.name, region=REGION).operation_type == "update"
    assert _scaler(regional_emulator) == 0.25


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"capacity_scaler": 0.0}, "single backend"),
        ({"capacity_scaler": 0.05}, "between 0.1 and 1.0"),
        ({"group": UC1_GROUP_URL}, "only have backends in europe-west1"),
    ],
)
def test_regional_backend_rules_are_google_s(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients, change: dict[str, object], rule: str
) -> None:
    changed = compute_v1.BackendService(_service(regional_compute))
    for field, value in change.items():
        setattr(changed.backends[0], field, value)

    with pytest.raises(exceptions.BadRequest, match=rule):
        _patch(regional_compute, changed)
    assert _scaler(regional_emulator) == 1.0


def test_regional_patch_retried_with_the_same_request_id_happens_once(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    request_id = str(uuid.uuid4())
    first = _patch(compute, _with_scaler(_service(compute), 0.5), request_id=request_id)
    _patch(compute, _with_scaler(_service(compute), 0.8))  # a later change

    retry = _patch(compute, _with_scaler(_service(compute), 0.5), request_id=request_id)

    assert retry.name == first.name
    assert _scaler(regional_emulator) == 0.8
    assert [r["effect"] for r in regional_emulator.requests() if r["method"] == "PATCH"] == [
        "applied",
        "applied",
        "duplicate requestId: returned existing operation",
    ]


def test_zonal_resize_warms_up_then_the_group_is_stable(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    operation = _resize(compute, 3, request_id=str(uuid.uuid4()))

    warming = _group(compute)
    assert warming.target_size == 3 and not warming.status.is_stable
    assert warming.current_actions.creating == 2
    health = _health(compute, "us-central1", "payments-uc1", UC1_GROUP_URL)
    assert sorted(s.health_state for s in health) == ["HEALTHY", "UNHEALTHY", "UNHEALTHY"]
    managed = compute.zone_groups.list_managed_instances(project=compute.project, zone=UC1_ZONE, instance_group_manager=UC1_GROUP)
    assert sorted(i.current_action for i in managed) == ["CREATING", "CREATING", "NONE"]

    done = compute.wait(operation, zone=UC1_ZONE)
    assert done.status == Status.DONE and done.progress == 100
    assert done.operation_type == "compute.instanceGroupManagers.resize"
    assert done.zone == f"{COMPUTE}/zones/{UC1_ZONE}" and not done.region
    assert done.self_link == f"{COMPUTE}/zones/{UC1_ZONE}/operations/{operation}"
    assert done.insert_time <= done.start_time <= done.end_time
    time.sleep(regional_emulator.settings.warmup)
    assert _group(compute).status.is_stable
    health = _health(compute, "us-central1", "payments-uc1", UC1_GROUP_URL)
    assert [s.health_state for s in health] == ["HEALTHY"] * 3
    assert all(f"/zones/{UC1_ZONE}/instances/" in s.instance for s in health)


def test_zonal_resize_retried_with_the_same_request_id_happens_once(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    request_id = str(uuid.uuid4())
    first = _resize(compute, 2, request_id=request_id)
    _resize(compute, 1)

    assert _resize(compute, 2, request_id=request_id) == first
    assert _group(compute).target_size == 1
    assert [r["effect"] for r in regional_emulator.requests() if r["path"].endswith("/resize")] == [
        "applied",
        "applied",
        "duplicate requestId: returned existing operation",
    ]


def test_get_health_follows_an_outage_of_the_zone_s_region(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    regional_emulator.outage(REGION)

    down = _health(compute, REGION, SERVICE, EW1_GROUP_URL)
    traffic = regional_emulator.admin.get(f"/emulator/v1/traffic/{SERVICE}").json()
    standby = _health(compute, "us-central1", "payments-uc1", UC1_GROUP_URL)
    regional_emulator.recover(REGION)

    assert [s.health_state for s in down] == ["UNHEALTHY"] * 3
    assert traffic["served"] is False and traffic["region"] == REGION
    assert [s.health_state for s in standby] == ["HEALTHY"]
    zone, name = down[0].instance.split("/zones/")[1].split("/instances/")
    instance = compute.instances.get(project=compute.project, zone=zone, instance=name)
    assert zone == EW1_ZONE and instance.network_interfaces[0].network_i_p == down[0].ip_address
    assert [s.health_state for s in _health(compute, REGION, SERVICE, EW1_GROUP_URL)] == ["HEALTHY"] * 3


def test_an_api_outage_of_the_region_refuses_zonal_calls(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    regional_emulator.outage("us-central1", api_errors=True)

    with pytest.raises(exceptions.ServiceUnavailable):
        regional_compute.zone_groups.get(
            project=regional_compute.project, zone=UC1_ZONE, instance_group_manager=UC1_GROUP, retry=None
        )
    assert _group(regional_compute, EW1_ZONE, EW1_GROUP).target_size == 3, "other regions answer"


def test_a_zone_operation_is_found_only_in_its_zone(regional_compute: ComputeClients) -> None:
    compute = regional_compute
    name = _resize(compute, 2)

    waited = compute.zone_operations.wait(project=compute.project, zone=UC1_ZONE, operation=name)
    listed = compute.zone_operations.list(project=compute.project, zone=UC1_ZONE)

    assert waited.name == name and [op.name for op in listed] == [name]
    with pytest.raises(exceptions.NotFound):
        compute.zone_operations.get(project=compute.project, zone=EW1_ZONE, operation=name)
    with pytest.raises(exceptions.NotFound):
        compute.region_operations.get(project=compute.project, region="us-central1", operation=name)


def test_traffic_of_a_regional_backend_service(regional_emulator: RunningEmulator) -> None:
    traffic = regional_emulator.admin.get(f"/emulator/v1/traffic/{SERVICE}", params={"region": REGION}).json()
    elsewhere = regional_emulator.admin.get(f"/emulator/v1/traffic/{SERVICE}", params={"region": "us-central1"})

    assert traffic == {
        "backendService": SERVICE,
        "region": REGION,
        "served": True,
        "regions": {REGION: {"group": EW1_GROUP_URL, "capacityScaler": 1.0, "instances": 3, "healthyInstances": 3, "share": 1.0}},
    }
    assert elsewhere.status_code == 404


def test_reset_and_the_state_file_cover_regional_resources(regional_topology: Topology, tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    with running_emulator(regional_topology, state_file=state_file, operation_delay=0, warmup=0) as first:
        seeded = first.state()
        compute = ComputeClients.connect(first.url, first.project)
        _patch(compute, _with_scaler(_service(compute), 0.5))
        resize = _resize(compute, 2)
        changed = first.state()
        fingerprint = _service(compute).fingerprint

    with running_emulator(regional_topology, state_file=state_file) as second:
        compute = ComputeClients.connect(second.url, second.project)
        assert second.state() == changed != seeded
        assert _service(compute).fingerprint == fingerprint
        assert compute.zone_operations.get(project=compute.project, zone=UC1_ZONE, operation=resize).status == Status.DONE
        second.reset()
        assert second.state() == seeded


def test_a_zonal_resize_whose_operation_fails_changes_nothing(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    regional_emulator.add_fault(
        method="POST", path="*/zones/*/resize", operation="error", operationErrorCode="ZONE_RESOURCE_POOL_EXHAUSTED"
    )

    failed = regional_compute.wait(_resize(regional_compute, 3), zone=UC1_ZONE)

    assert [e.code for e in failed.error.errors] == ["ZONE_RESOURCE_POOL_EXHAUSTED"]
    assert failed.http_error_status_code == 500
    assert _group(regional_compute).target_size == 1
