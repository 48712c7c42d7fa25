"""Operations through the real operations clients: PENDING -> RUNNING -> DONE, wait with
a deadline, global and regional operations kept apart."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.testing import ComputeClients, running_emulator
from evac.topology import Topology

Status = compute_v1.Operation.Status


def _drain(compute: ComputeClients) -> str:
    current = compute.backend_services.get(project=compute.project, backend_service="checkout-backend")
    changed = compute_v1.BackendService(current)
    changed.backends[0].capacity_scaler = 0.0
    return compute.backend_services.patch(
        project=compute.project, backend_service="checkout-backend", backend_service_resource=changed
    ).name


def test_operation_moves_from_pending_to_done_with_its_timestamps(compute: ComputeClients) -> None:
    name = _drain(compute)

    early = compute.global_operations.get(project=compute.project, operation=name)
    assert early.status in (Status.PENDING, Status.RUNNING)
    assert early.progress < 100 and not early.end_time

    done = compute.wait(name)
    assert done.status == Status.DONE
    assert done.progress == 100
    assert done.insert_time <= done.start_time <= done.end_time
    assert done.self_link.endswith(f"/global/operations/{name}")
    assert not done.error.errors and not done.http_error_status_code


def test_wait_returns_at_its_deadline_when_the_operation_is_not_done(demo_topology: Topology) -> None:
    with running_emulator(demo_topology, operation_delay=30, wait_deadline=0.3) as slow:
        compute = ComputeClients.connect(slow.url, slow.project)
        name = _drain(compute)

        started = time.monotonic()
        op = compute.global_operations.wait(project=compute.project, operation=name)

        assert op.status != Status.DONE
        assert time.monotonic() - started < 5


def test_regional_operation_is_found_only_in_its_region(compute: ComputeClients) -> None:
    name = compute.region_groups.resize(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", size=2
    ).name

    assert compute.wait(name, region="us-central1").region.endswith("/regions/us-central1")
    with pytest.raises(exceptions.NotFound):
        compute.region_operations.get(project=compute.project, region="europe-west1", operation=name)
    with pytest.raises(exceptions.NotFound):
        compute.global_operations.get(project=compute.project, operation=name)


def test_unknown_operation_is_not_found(compute: ComputeClients) -> None:
    with pytest.raises(exceptions.NotFound):
        compute.global_operations.wait(project=compute.project, operation="operation-does-not-exist")


def test_by_default_wait_blocks_until_done_like_google(demo_topology: Topology) -> None:
    """Google's operations.wait returns when the operation is DONE or after about two minutes:
    an operation of a few seconds is waited for whole (the old 3 s default answered PENDING)."""
    with running_emulator(demo_topology, operation_delay=4) as emulator:
        assert emulator.settings.wait_deadline == 120
        compute = ComputeClients.connect(emulator.url, emulator.project)
        name = _drain(compute)

        op = compute.global_operations.wait(project=compute.project, operation=name)

        assert op.status == Status.DONE


def test_pending_operations_on_a_target_are_listed_by_filter(compute: ComputeClients) -> None:
    """What a retried mutation asks to learn whether an operation on its target is still pending."""
    name = _drain(compute)
    target = compute.backend_services.get(project=compute.project, backend_service="checkout-backend").self_link
    query = f'(targetLink = "{target}") (status != "DONE")'

    pending = compute.global_operations.list(
        request=compute_v1.ListGlobalOperationsRequest(project=compute.project, filter=query)
    )
    assert [op.name for op in pending] == [name]

    compute.wait(name)
    assert (
        list(
            compute.global_operations.list(request=compute_v1.ListGlobalOperationsRequest(project=compute.project, filter=query))
        )
        == []
    )
