"""What clients would experience: the traffic split of a backend service and DNS answers,
following drains, outages, scale-ups and record changes."""

from __future__ import annotations

import time

import pytest
from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator


def _shares(emulator: RunningEmulator, service: str = "checkout-backend") -> dict[str, float]:
    body = emulator.admin.get(f"/emulator/v1/traffic/{service}").raise_for_status().json()
    return {region: r["share"] for region, r in body["regions"].items()}


def _drain(compute: ComputeClients, region: str) -> None:
    current = compute.backend_services.get(project=compute.project, backend_service="checkout-backend")
    changed = compute_v1.BackendService(current)
    for backend in changed.backends:
        if f"/regions/{region}/" in backend.group:
            backend.capacity_scaler = 0.0
    compute.backend_services.patch(project=compute.project, backend_service="checkout-backend", backend_service_resource=changed)


def test_traffic_is_shared_by_healthy_capacity(emulator: RunningEmulator) -> None:
    assert _shares(emulator) == {"europe-west1": 0.75, "us-central1": 0.25}


def test_a_drained_region_receives_nothing(emulator: RunningEmulator, compute: ComputeClients) -> None:
    _drain(compute, "europe-west1")

    assert _shares(emulator) == {"europe-west1": 0.0, "us-central1": 1.0}


def test_an_outage_moves_traffic_and_scaled_up_capacity_counts_once_warm(
    emulator: RunningEmulator, compute: ComputeClients
) -> None:
    emulator.outage("europe-west1")
    assert _shares(emulator) == {"europe-west1": 0.0, "us-central1": 1.0}

    emulator.recover("europe-west1")
    compute.region_groups.resize(project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", size=3)
    assert _shares(emulator) == {"europe-west1": 0.75, "us-central1": 0.25}, "new instances still warming"
    time.sleep(emulator.settings.warmup)
    assert _shares(emulator) == {"europe-west1": 0.5, "us-central1": 0.5}


def test_with_every_region_down_nothing_is_served(emulator: RunningEmulator) -> None:
    emulator.outage("europe-west1")
    emulator.outage("us-central1")

    body = emulator.admin.get("/emulator/v1/traffic/checkout-backend").json()

    assert body["served"] is False
    assert {r["share"] for r in body["regions"].values()} == {0.0}


def test_resolve_answers_a_change_once_it_is_done(emulator: RunningEmulator) -> None:
    path = "/dns/v1/projects/evac-demo/managedZones/shop-zone/changes"
    change = (
        emulator.admin.post(
            path,
            json={
                "deletions": [{"name": "checkout.shop.example.com.", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.10"]}],
                "additions": [{"name": "checkout.shop.example.com.", "type": "A", "ttl": 60, "rrdatas": ["198.51.100.10"]}],
            },
        )
        .raise_for_status()
        .json()
    )

    pending = emulator.admin.get("/emulator/v1/resolve", params={"name": "checkout.shop.example.com"}).json()
    time.sleep(emulator.settings.operation_delay)
    done = emulator.admin.get("/emulator/v1/resolve", params={"name": "checkout.shop.example.com"}).json()

    assert change["status"] == "pending" and pending["rrdatas"] == ["203.0.113.10"], "not served while pending"
    assert done == {
        "name": "checkout.shop.example.com.",
        "type": "A",
        "zone": "shop-zone",
        "ttl": 60,
        "rrdatas": ["198.51.100.10"],
    }


def test_a_change_that_never_completes_is_never_served(emulator: RunningEmulator) -> None:
    emulator.add_fault(path="/dns/*", operation="never_done")
    emulator.admin.post(
        "/dns/v1/projects/evac-demo/managedZones/shop-zone/rrsets",
        json={"name": "new.shop.example.com.", "type": "A", "ttl": 60, "rrdatas": ["198.51.100.1"]},
    )
    time.sleep(emulator.settings.operation_delay)

    assert emulator.admin.get("/emulator/v1/resolve", params={"name": "new.shop.example.com"}).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/emulator/v1/resolve?name=nothing.shop.example.com.",
        "/emulator/v1/resolve?name=example.org.",
        "/emulator/v1/traffic/no-such-backend",
    ],
)
def test_unknown_names_are_not_found(emulator: RunningEmulator, path: str) -> None:
    response = emulator.admin.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"
