"""The admin API: snapshots a test can compare, the request log, outages."""

from __future__ import annotations

import time

from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator

SERVICE = "checkout-backend"


def _set_scaler(compute: ComputeClients, index: int, scaler: float) -> None:
    current = compute.backend_services.get(project=compute.project, backend_service=SERVICE)
    changed = compute_v1.BackendService(current)
    changed.backends[index].capacity_scaler = scaler
    op = compute.backend_services.patch(project=compute.project, backend_service=SERVICE, backend_service_resource=changed)
    compute.wait(op.name)


def test_snapshot_after_a_change_and_its_undo_equals_the_one_before(emulator: RunningEmulator, compute: ComputeClients) -> None:
    before = emulator.state()

    _set_scaler(compute, 0, 0.0)
    drained = emulator.state()
    _set_scaler(compute, 0, 1.0)

    assert drained != before
    assert emulator.state() == before, "fingerprints, ids and times are not part of the snapshot"


def test_snapshot_describes_the_world(emulator: RunningEmulator) -> None:
    state = emulator.state()

    assert state["backendServices"][SERVICE]["backends"][0] == {
        "group": "https://www.googleapis.com/compute/v1/projects/evac-demo/regions/europe-west1/instanceGroups/checkout-ew1",
        "balancingMode": "UTILIZATION",
        "capacityScaler": 1.0,
    }
    standby = state["instanceGroupManagers"]["us-central1/checkout-uc1"]
    assert standby["targetSize"] == 1
    assert [(i["status"], i["health"]) for i in standby["instances"]] == [("RUNNING", "HEALTHY")]
    assert standby["instances"][0]["name"].startswith("checkout-uc1-")
    assert {"name": "checkout.shop.example.com.", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.10"]} in state["managedZones"][
        "shop-zone"
    ]["rrsets"]


def test_outage_is_in_the_snapshot_until_recovery(emulator: RunningEmulator) -> None:
    emulator.outage("us-central1")
    down = emulator.state()
    emulator.recover("us-central1")

    assert down["outages"] == ["us-central1"]
    assert down["instanceGroupManagers"]["us-central1/catalog-uc1"]["instances"][0]["health"] == "UNHEALTHY"
    assert emulator.state()["outages"] == []


def test_outage_of_an_unknown_region_is_not_found(emulator: RunningEmulator) -> None:
    response = emulator.admin.post("/emulator/v1/regions/mars-north1/outage")

    assert response.status_code == 404
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"


def test_request_log_lists_api_calls_in_order_and_can_be_cleared(emulator: RunningEmulator, compute: ComputeClients) -> None:
    _set_scaler(compute, 1, 0.5)

    log = emulator.requests()
    service_path = f"/compute/v1/projects/evac-demo/global/backendServices/{SERVICE}"
    assert [(r["method"], r["path"], r["status"], r["effect"]) for r in log[:2]] == [
        ("GET", service_path, 200, None),
        ("PATCH", service_path, 200, "applied"),
    ]
    assert log[2]["method"] == "POST" and log[2]["path"].endswith("/wait") and log[2]["effect"] is None
    assert all(r["time"].endswith("Z") for r in log)
    emulator.admin.delete("/emulator/v1/requests").raise_for_status()
    assert emulator.requests() == []


def test_healthz(emulator: RunningEmulator) -> None:
    assert emulator.admin.get("/emulator/v1/healthz").json() == {"status": "ok"}


def test_time_does_not_change_a_settled_snapshot(emulator: RunningEmulator) -> None:
    before = emulator.state()
    time.sleep(0.05)
    assert emulator.state() == before
