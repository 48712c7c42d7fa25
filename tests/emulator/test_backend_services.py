"""Backend services through the real google-cloud-compute client: reads, patches with
fingerprints and request ids, capacity-scaler rules, health."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator

SERVICE = "checkout-backend"
COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"
EW1 = f"{COMPUTE}/regions/europe-west1/instanceGroups/checkout-ew1"
UC1 = f"{COMPUTE}/regions/us-central1/instanceGroups/checkout-uc1"


def _get(compute: ComputeClients) -> compute_v1.BackendService:
    return compute.backend_services.get(project=compute.project, backend_service=SERVICE)


def _patch(compute: ComputeClients, resource: compute_v1.BackendService, request_id: str | None = None) -> compute_v1.Operation:
    request = compute_v1.PatchBackendServiceRequest(
        project=compute.project, backend_service=SERVICE, backend_service_resource=resource, request_id=request_id
    )
    extended = compute.backend_services.patch(request)
    return compute.global_operations.get(project=compute.project, operation=extended.name)


def _with_scalers(current: compute_v1.BackendService, **scalers: float) -> compute_v1.BackendService:
    """A copy of ``current`` (fingerprint included) with the scaler of each named region changed."""
    changed = compute_v1.BackendService(current)
    for backend in changed.backends:
        region = backend.group.split("/regions/")[1].split("/")[0]
        if region in scalers:
            backend.capacity_scaler = scalers[region]
    return changed


def _scalers(emulator: RunningEmulator) -> dict[str, float]:
    backends = emulator.state()["backendServices"][SERVICE]["backends"]
    return {b["group"]: b["capacityScaler"] for b in backends}


def test_seeded_backend_service_has_one_backend_per_region(compute: ComputeClients) -> None:
    service = _get(compute)

    assert [(b.group, b.balancing_mode, b.capacity_scaler) for b in service.backends] == [
        (EW1, "UTILIZATION", 1.0),
        (UC1, "UTILIZATION", 1.0),
    ]
    assert service.self_link == f"{COMPUTE}/global/backendServices/{SERVICE}"
    assert service.fingerprint


def test_draining_a_region_takes_effect_and_its_operation_completes(emulator: RunningEmulator, compute: ComputeClients) -> None:
    before = _get(compute)

    op = _patch(compute, _with_scalers(before, **{"europe-west1": 0.0}), request_id=str(uuid.uuid4()))

    assert _scalers(emulator) == {EW1: 0.0, UC1: 1.0}, "the effect is visible as soon as the call returns"
    done = compute.wait(op.name)
    assert done.operation_type == "patch"
    assert done.target_link == before.self_link
    assert done.progress == 100 and done.start_time and done.end_time
    assert _get(compute).fingerprint != before.fingerprint


def test_capacity_scaler_of_one_tenth_from_the_client_is_accepted(emulator: RunningEmulator, compute: ComputeClients) -> None:
    _patch(compute, _with_scalers(_get(compute), **{"europe-west1": 0.1}))

    assert _scalers(emulator)[EW1] == pytest.approx(0.1)


@pytest.mark.parametrize("scaler", [0.05, 1.5, -0.5])
def test_capacity_scaler_outside_0_or_tenth_to_one_is_refused(
    emulator: RunningEmulator, compute: ComputeClients, scaler: float
) -> None:
    with pytest.raises(exceptions.BadRequest) as refused:
        _patch(compute, _with_scalers(_get(compute), **{"europe-west1": scaler}))

    assert refused.value.errors[0]["reason"] == "invalid"
    assert "capacityScaler" in refused.value.message
    assert _scalers(emulator) == {EW1: 1.0, UC1: 1.0}


def test_stale_fingerprint_is_refused_with_412_and_changes_nothing(emulator: RunningEmulator, compute: ComputeClients) -> None:
    read_by_a = _get(compute)
    _patch(compute, _with_scalers(read_by_a, **{"us-central1": 0.5}))  # someone else changes it first

    with pytest.raises(exceptions.PreconditionFailed) as refused:
        _patch(compute, _with_scalers(read_by_a, **{"europe-west1": 0.0}))

    assert refused.value.errors[0]["reason"] == "conditionNotMet"
    assert _scalers(emulator) == {EW1: 1.0, UC1: 0.5}


def test_retry_with_the_same_request_id_returns_the_first_operation_without_a_second_effect(
    emulator: RunningEmulator, compute: ComputeClients
) -> None:
    request_id = str(uuid.uuid4())
    drain = _with_scalers(_get(compute), **{"europe-west1": 0.0})
    first = _patch(compute, drain, request_id=request_id)
    _patch(compute, _with_scalers(_get(compute), **{"europe-west1": 0.5}))  # a later, legitimate change

    # The retry carries the now stale fingerprint: it must still get the original operation.
    retry = _patch(compute, drain, request_id=request_id)

    assert retry.name == first.name
    assert _scalers(emulator)[EW1] == 0.5, "the retry did not apply the drain a second time"
    effects = [r["effect"] for r in emulator.requests() if r["method"] == "PATCH"]
    assert effects == ["applied", "applied", "duplicate requestId: returned existing operation"]


def test_request_id_that_is_not_a_uuid_is_refused(compute: ComputeClients) -> None:
    with pytest.raises(exceptions.BadRequest, match="UUID"):
        _patch(compute, _with_scalers(_get(compute), **{"europe-west1": 0.0}), request_id="drain-step-1")


def test_the_only_backend_of_a_service_cannot_be_drained(emulator: RunningEmulator, compute: ComputeClients) -> None:
    only_uc1_drained = compute_v1.BackendService(backends=[compute_v1.Backend(group=UC1, capacity_scaler=0.0)])

    with pytest.raises(exceptions.BadRequest, match="single backend"):
        _patch(compute, only_uc1_drained)

    assert _scalers(emulator) == {EW1: 1.0, UC1: 1.0}


def test_backends_list_is_replaced_whole(emulator: RunningEmulator, compute: ComputeClients) -> None:
    only_uc1 = compute_v1.BackendService(backends=[compute_v1.Backend(group=UC1, capacity_scaler=1.0)])

    _patch(compute, only_uc1)

    assert _scalers(emulator) == {UC1: 1.0}, "a patch that lists one backend removes the others"


def test_patch_naming_an_unknown_group_is_refused(emulator: RunningEmulator, compute: ComputeClients) -> None:
    bogus = compute_v1.BackendService(backends=[compute_v1.Backend(group=EW1.replace("checkout-ew1", "nope"))])

    with pytest.raises(exceptions.BadRequest):
        _patch(compute, bogus)

    assert _scalers(emulator) == {EW1: 1.0, UC1: 1.0}


def test_unknown_backend_service_is_not_found(compute: ComputeClients) -> None:
    with pytest.raises(exceptions.NotFound):
        compute.backend_services.get(project=compute.project, backend_service="no-such-backend")


def _health(compute: ComputeClients, group: str) -> list[str]:
    result = compute.backend_services.get_health(
        project=compute.project,
        backend_service=SERVICE,
        resource_group_reference_resource=compute_v1.ResourceGroupReference(group=group),
    )
    return [status.health_state for status in result.health_status]


def test_get_health_follows_a_regional_outage_and_recovery(emulator: RunningEmulator, compute: ComputeClients) -> None:
    assert _health(compute, EW1) == ["HEALTHY"] * 3

    emulator.outage("europe-west1")
    assert _health(compute, EW1) == ["UNHEALTHY"] * 3
    assert _health(compute, UC1) == ["HEALTHY"], "other regions are unaffected"

    emulator.recover("europe-west1")
    assert _health(compute, EW1) == ["HEALTHY"] * 3


def test_get_health_of_a_group_that_is_not_a_backend_is_refused(compute: ComputeClients) -> None:
    catalog_group = f"{COMPUTE}/regions/europe-west1/instanceGroups/catalog-ew1"

    with pytest.raises(exceptions.BadRequest):
        _health(compute, catalog_group)


def test_update_replaces_the_whole_resource(emulator: RunningEmulator, compute: ComputeClients) -> None:
    current = _get(compute)
    replacement = compute_v1.BackendService(
        name=SERVICE,
        fingerprint=current.fingerprint,
        backends=[compute_v1.Backend(group=UC1, capacity_scaler=1.0)],
        health_checks=list(current.health_checks),
        timeout_sec=10,
    )

    op = compute.backend_services.update(project=compute.project, backend_service=SERVICE, backend_service_resource=replacement)

    assert compute.wait(op.name).operation_type == "update"
    updated = _get(compute)
    assert (updated.timeout_sec, [b.group for b in updated.backends]) == (10, [UC1])


def test_update_with_a_stale_or_no_fingerprint_is_refused(compute: ComputeClients) -> None:
    stale = _get(compute)
    _patch(compute, _with_scalers(stale, **{"us-central1": 0.5}))
    without_fingerprint = compute_v1.BackendService(_get(compute))
    without_fingerprint.fingerprint = None

    for resource in (stale, without_fingerprint):
        with pytest.raises(exceptions.PreconditionFailed):
            compute.backend_services.update(project=compute.project, backend_service=SERVICE, backend_service_resource=resource)


def test_health_checks_are_served_and_must_exist_to_be_referenced(compute: ComputeClients) -> None:
    service = _get(compute)
    check = compute.health_checks.get(project=compute.project, health_check=f"{SERVICE}-hc")
    assert service.health_checks == [check.self_link]
    assert (check.type_, check.http_health_check.port) == ("HTTP", 80)

    changed = compute_v1.BackendService(service)
    changed.health_checks[0] = check.self_link.replace(f"{SERVICE}-hc", "missing-hc")
    with pytest.raises(exceptions.BadRequest):
        _patch(compute, changed)


def test_a_backend_service_is_also_addressed_by_its_numeric_id(emulator: RunningEmulator, compute: ComputeClients) -> None:
    by_name = _get(compute)
    by_id = compute.backend_services.get(project=compute.project, backend_service=str(by_name.id))
    drained = _with_scalers(by_id, **{"europe-west1": 0.0})

    compute.backend_services.patch(project=compute.project, backend_service=str(by_name.id), backend_service_resource=drained)

    assert by_id.self_link == by_name.self_link
    assert list(emulator.state()["backendServices"]) == ["catalog-backend", "checkout-backend"]
    assert _scalers(emulator)[EW1] == 0.0


def test_concurrent_retries_with_one_request_id_apply_once(emulator: RunningEmulator, compute: ComputeClients) -> None:
    request_id = str(uuid.uuid4())
    drain = _with_scalers(_get(compute), **{"europe-west1": 0.0})

    with ThreadPoolExecutor(8) as pool:
        operations = list(pool.map(lambda _: _patch(compute, drain, request_id=request_id).name, range(8)))

    assert len(set(operations)) == 1
    effects = sorted(r["effect"] for r in emulator.requests() if r["method"] == "PATCH")
    assert effects == ["applied"] + ["duplicate requestId: returned existing operation"] * 7
