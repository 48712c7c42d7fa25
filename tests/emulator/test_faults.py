"""Injected faults, seen through the real clients: API errors, latency, operations that fail
or never finish, regional API outages — all reproducible."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1
from google.cloud import dns as cloud_dns

from emulator.testing import ComputeClients, RunningEmulator

SERVICE_PATH = "/compute/v1/projects/evac-demo/global/backendServices/checkout-backend"


def _get_service(compute: ComputeClients, **options: Any) -> compute_v1.BackendService:
    return compute.backend_services.get(project=compute.project, backend_service="checkout-backend", **options)


def _resize(compute: ComputeClients, size: int) -> str:
    return compute.region_groups.resize(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", size=size
    ).name


def _target_size(compute: ComputeClients, **options: Any) -> int:
    return compute.region_groups.get(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", **options
    ).target_size


@pytest.mark.parametrize(
    ("status", "exception"),
    [(503, exceptions.ServiceUnavailable), (429, exceptions.TooManyRequests), (500, exceptions.InternalServerError)],
)
def test_injected_error_reaches_the_caller_of_a_mutation(
    emulator: RunningEmulator, compute: ComputeClients, status: int, exception: type[Exception]
) -> None:
    fault = emulator.add_fault(method="POST", path="*/resize", status=status, count=1)

    with pytest.raises(exception):
        _resize(compute, 3)
    compute.wait(_resize(compute, 3), region="us-central1")  # the fault struck once and expired

    assert [(r["status"], r["faults"]) for r in emulator.requests() if r["path"].endswith("/resize")] == [
        (status, [fault["id"]]),
        (200, []),
    ]
    assert _target_size(compute) == 3


def test_the_compute_client_retries_a_read_through_transient_503s(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.add_fault(method="GET", path=SERVICE_PATH, status=503, count=2)

    assert _get_service(compute).name == "checkout-backend"

    assert [r["status"] for r in emulator.requests()] == [503, 503, 200]


def test_a_mutation_refused_by_a_fault_changes_nothing(emulator: RunningEmulator, compute: ComputeClients) -> None:
    failing_operation = emulator.add_fault(method="POST", path="*/resize", operation="error", count=1)
    refusal = emulator.add_fault(method="POST", path="*/resize", status=503, count=1)

    with pytest.raises(exceptions.ServiceUnavailable):
        _resize(compute, 3)

    assert _target_size(compute) == 1
    # The refused call started no operation, so the operation fault is still armed.
    done = compute.wait(_resize(compute, 3), region="us-central1")
    assert done.error.errors[0].code == "INTERNAL_ERROR"
    resizes = [(r["effect"], r["faults"]) for r in emulator.requests() if r["path"].endswith("/resize")]
    assert resizes == [
        ("refused: 503 backendError", [refusal["id"]]),
        (f"not applied: operation ends in error (injected {failing_operation['id']})", [failing_operation["id"]]),
    ]


def test_faults_with_a_rate_strike_the_same_calls_given_the_same_seed(emulator: RunningEmulator, compute: ComputeClients) -> None:
    def pattern() -> list[bool]:
        emulator.reset()
        emulator.add_fault(method="GET", path=SERVICE_PATH, status=503, rate=0.5, seed=7)
        outcome = []
        for _ in range(10):
            try:
                _get_service(compute, retry=None)  # by default the client would retry a 503
                outcome.append(True)
            except exceptions.ServiceUnavailable:
                outcome.append(False)
        return outcome

    first = pattern()

    assert first == pattern()
    assert True in first and False in first


def test_latency_delays_the_answer(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.add_fault(path=SERVICE_PATH, latency=0.3)

    started = time.monotonic()
    _get_service(compute)

    assert time.monotonic() - started >= 0.3


def test_operation_that_ends_in_error_reports_it_and_changes_nothing(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.add_fault(path="*/resize", operation="error", operationErrorCode="ZONE_RESOURCE_POOL_EXHAUSTED")

    done = compute.wait(_resize(compute, 3), region="us-central1")

    assert done.error.errors[0].code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert done.http_error_status_code == 500
    assert _target_size(compute) == 1
    assert emulator.requests()[0]["effect"].startswith("not applied: operation ends in error")


def test_operation_that_never_completes_stays_running_past_every_wait(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.add_fault(path="*/resize", operation="never_done", count=1)
    name = _resize(compute, 2)

    op = compute.region_operations.wait(project=compute.project, region="us-central1", operation=name)

    assert op.status == compute_v1.Operation.Status.RUNNING
    assert _target_size(compute) == 2, "the change itself was made"
    compute.wait(_resize(compute, 1), region="us-central1")  # the fault has expired


def test_dns_change_that_never_completes_stays_pending(emulator: RunningEmulator, dns: cloud_dns.Client) -> None:
    emulator.add_fault(path="*/changes", operation="never_done")
    zone = dns.zone("shop-zone", "shop.example.com.")
    change = zone.changes()
    change.add_record_set(zone.resource_record_set("new.shop.example.com.", "A", 60, ["198.51.100.1"]))
    change.create()

    time.sleep(0.4)
    change.reload()

    assert change.status == "pending"


def test_regional_api_outage_refuses_calls_about_that_region_only(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.outage("us-central1", api_errors=True)

    with pytest.raises(exceptions.ServiceUnavailable):
        _target_size(compute, retry=None)  # by default the client retries a 503 for 10 minutes
    assert _get_service(compute).name == "checkout-backend", "global resources still answer"

    emulator.recover("us-central1")
    assert _target_size(compute) == 1


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"path": "*"}, id="does-nothing"),
        pytest.param({"status": 503, "operation": "error"}, id="status-and-operation"),
        pytest.param({"status": 404}, id="unsupported-status"),
        pytest.param({"status": 503, "rate": 2}, id="rate-above-one"),
        pytest.param({"status": 503, "colour": "red"}, id="unknown-field"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused(emulator: RunningEmulator, spec: dict[str, object]) -> None:
    response = emulator.admin.post("/emulator/v1/faults", json=spec)

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_faults_are_listed_with_their_counts_and_can_be_removed(emulator: RunningEmulator, compute: ComputeClients) -> None:
    fault = emulator.add_fault(method="GET", path=SERVICE_PATH, status=503, rate=0.0)
    _get_service(compute)

    listed = emulator.admin.get("/emulator/v1/faults").json()["faults"]
    assert [(f["id"], f["matched"], f["struck"]) for f in listed] == [(fault["id"], 1, 0)]
    emulator.admin.delete(f"/emulator/v1/faults/{fault['id']}").raise_for_status()
    assert emulator.admin.get("/emulator/v1/faults").json() == {"faults": []}
    assert emulator.admin.delete(f"/emulator/v1/faults/{fault['id']}").status_code == 404
