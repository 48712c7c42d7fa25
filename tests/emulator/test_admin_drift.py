"""Drift the readiness check must catch: a backend service renamed or deleted behind Evac's back
(admin calls), seen through the real client; a reset brings it back."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from emulator.testing import ComputeClients, RunningEmulator

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"


def test_a_renamed_backend_service_is_found_only_under_its_new_name(emulator: RunningEmulator, compute: ComputeClients) -> None:
    answer = emulator.admin.post("/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-v2"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["selfLink"] == f"{COMPUTE}/global/backendServices/checkout-v2"
    with pytest.raises(exceptions.NotFound):
        compute.backend_services.get(project=compute.project, backend_service="checkout-backend", retry=None)
    renamed = compute.backend_services.get(project=compute.project, backend_service="checkout-v2")
    assert renamed.self_link == f"{COMPUTE}/global/backendServices/checkout-v2" and len(renamed.backends) == 2
    assert sorted(emulator.state()["backendServices"]) == ["catalog-backend", "checkout-v2"]
    assert emulator.requests()[-1]["effect"] is None, "admin calls are not in the request log; the read is"

    emulator.reset()
    assert compute.backend_services.get(project=compute.project, backend_service="checkout-backend").name == "checkout-backend"


def test_a_renamed_backend_service_is_followed_by_its_url_map(emulator: RunningEmulator, compute: ComputeClients) -> None:
    before = compute.url_maps.get(project=compute.project, url_map="checkout-backend-map")

    emulator.admin.post("/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-v2"}).raise_for_status()

    # The chain from the forwarding rule still ends at the backend service, under its new name.
    rule = compute.global_forwarding_rules.get(project=compute.project, forwarding_rule="checkout-backend-us-central1-fr")
    proxy = compute.target_http_proxies.get(project=compute.project, target_http_proxy=rule.target.rsplit("/", 1)[-1])
    url_map = compute.url_maps.get(project=compute.project, url_map=proxy.url_map.rsplit("/", 1)[-1])
    assert url_map.default_service == f"{COMPUTE}/global/backendServices/checkout-v2"
    assert url_map.fingerprint != before.fingerprint, "the map changed"
    assert (
        compute.backend_services.get(project=compute.project, backend_service="checkout-v2").self_link == url_map.default_service
    )
    other = compute.url_maps.get(project=compute.project, url_map="catalog-backend-map")
    assert other.default_service == f"{COMPUTE}/global/backendServices/catalog-backend"

    emulator.reset()
    restored = compute.url_maps.get(project=compute.project, url_map="checkout-backend-map")
    assert restored.default_service == f"{COMPUTE}/global/backendServices/checkout-backend"


def test_a_regional_rename_moves_its_forwarding_rule(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    answer = regional_emulator.admin.post(
        "/emulator/v1/backendServices/payments-uc1/rename", params={"region": "us-central1"}, json={"to": "payments-uc1-v2"}
    )

    assert answer.status_code == 200, answer.text
    rule = compute.forwarding_rules.get(
        project=compute.project, region="us-central1", forwarding_rule="payments-uc1-us-central1-fr"
    )
    assert rule.backend_service == f"{COMPUTE}/regions/us-central1/backendServices/payments-uc1-v2"


def test_a_deleted_backend_service_is_gone(emulator: RunningEmulator, compute: ComputeClients) -> None:
    assert emulator.admin.delete("/emulator/v1/backendServices/catalog-backend").status_code == 200

    with pytest.raises(exceptions.NotFound):
        compute.backend_services.get(project=compute.project, backend_service="catalog-backend", retry=None)
    # Its URL map still names it: the chain from its forwarding rules ends at a missing resource.
    url_map = compute.url_maps.get(project=compute.project, url_map="catalog-backend-map")
    assert url_map.default_service == f"{COMPUTE}/global/backendServices/catalog-backend"
    # The simulated clients and the traffic view carry on without it.
    assert emulator.admin.get("/metrics").status_code == 200
    assert emulator.admin.get("/emulator/v1/traffic/catalog-backend").status_code == 404


@pytest.mark.parametrize(
    ("verb", "path", "body", "status"),
    [
        ("POST", "/emulator/v1/backendServices/nope/rename", {"to": "x"}, 404),
        ("POST", "/emulator/v1/backendServices/checkout-backend/rename", {"to": "catalog-backend"}, 409),
        ("POST", "/emulator/v1/backendServices/checkout-backend/rename", {"to": "Bad_Name"}, 400),
        ("DELETE", "/emulator/v1/backendServices/checkout-backend?region=us-central1", None, 404),
    ],
)
def test_bad_renames_and_deletes_change_nothing(
    emulator: RunningEmulator, verb: str, path: str, body: object, status: int
) -> None:
    before = emulator.state()

    assert emulator.admin.request(verb, path, json=body).status_code == status
    assert emulator.state() == before
