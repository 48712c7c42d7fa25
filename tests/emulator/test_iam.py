"""IAM: Cloud Resource Manager's testIamPermissions through google-api-python-client, the admin
calls that revoke and grant a permission, and the 403 a mutating call answers without it — the
same permission names Evac's readiness check asks for (``evac.permissions``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from googleapiclient import discovery

from emulator.app import GOOGLE_API_ROUTERS
from emulator.iam import MUTATING_METHODS, method_of
from emulator.requestlog import is_mutation
from emulator.testing import ComputeClients, RunningEmulator
from evac.permissions import (
    ALL_PERMISSIONS,
    METHOD_PERMISSIONS,
    STEP_PERMISSIONS,
    permissions_for,
    step_permissions,
)

COMPUTE = "/compute/v1/projects/evac-demo"
GROUP = "https://www.googleapis.com/compute/v1/projects/evac-demo/regions/europe-west1/instanceGroups/checkout-ew1"


@pytest.fixture
def revoke(emulator: RunningEmulator) -> Iterator[Any]:
    def revoke(permission: str) -> dict[str, Any]:
        answer: dict[str, Any] = emulator.admin.delete(f"/emulator/v1/iam/permissions/{permission}").raise_for_status().json()
        return answer

    yield revoke


@pytest.fixture
def resource_manager(emulator: RunningEmulator) -> Iterator[Any]:
    """Cloud Resource Manager v1 through google-api-python-client, pointed at the emulator."""
    service = discovery.build(
        "cloudresourcemanager",
        "v1",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emulator.url},
        static_discovery=True,
    )
    yield service
    service.close()


def test_test_iam_permissions_answers_the_held_subset(emulator: RunningEmulator, resource_manager: Any, revoke: Any) -> None:
    crm = resource_manager
    asked = ["compute.backendServices.update", "dns.changes.create", "cloudsql.instances.failover"]

    everything = crm.projects().testIamPermissions(resource="evac-demo", body={"permissions": asked}).execute()
    revoke("dns.changes.create")
    revoke("cloudsql.instances.failover")
    some = crm.projects().testIamPermissions(resource="evac-demo", body={"permissions": asked}).execute()
    revoke("compute.backendServices.update")
    none = crm.projects().testIamPermissions(resource="evac-demo", body={"permissions": asked}).execute()

    assert everything == {"permissions": asked}
    assert some == {"permissions": ["compute.backendServices.update"]}
    assert none == {}
    # Asking changes nothing: the log shows three reads, no mutation.
    logged = [(r["method"], r["path"], r["effect"]) for r in emulator.requests()]
    assert logged == [("POST", "/v1/projects/evac-demo:testIamPermissions", None)] * 3


def test_a_mutation_without_its_permission_is_refused_with_google_s_403(
    emulator: RunningEmulator, compute: ComputeClients, revoke: Any
) -> None:
    before = emulator.state()
    revoke("compute.backendServices.update")
    service = compute.backend_services.get(project=compute.project, backend_service="checkout-backend")
    service.backends[0].capacity_scaler = 0.0

    with pytest.raises(exceptions.Forbidden) as refused:
        compute.backend_services.patch(
            compute_v1.PatchBackendServiceRequest(
                project=compute.project,
                backend_service="checkout-backend",
                backend_service_resource=service,
                request_id=str(uuid.uuid4()),
            )
        )
    raw = emulator.admin.patch(f"{COMPUTE}/global/backendServices/checkout-backend", json={})

    assert "Required 'compute.backendServices.update' permission" in str(refused.value)
    assert raw.status_code == 403
    resource = "projects/evac-demo/global/backendServices/checkout-backend"
    message = f"Required 'compute.backendServices.update' permission for '{resource}'"
    assert raw.json() == {
        "error": {
            "code": 403,
            "message": message,
            "status": "PERMISSION_DENIED",
            "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
        }
    }
    assert emulator.state() == before
    refusals = [r for r in emulator.requests() if r["method"] == "PATCH"]
    assert [r["effect"] for r in refusals] == ["refused: 403 forbidden"] * 2
    # Reads still work; a grant lets the same patch through.
    emulator.admin.put("/emulator/v1/iam/permissions/compute.backendServices.update").raise_for_status()
    compute.backend_services.patch(project=compute.project, backend_service="checkout-backend", backend_service_resource=service)
    assert emulator.state()["backendServices"]["checkout-backend"]["backends"][0]["capacityScaler"] == 0.0


@pytest.mark.parametrize(
    ("permission", "verb", "path", "body"),
    [
        (
            "compute.instanceGroupManagers.update",
            "POST",
            f"{COMPUTE}/regions/us-central1/instanceGroupManagers/checkout-uc1/resize?size=3",
            None,
        ),
        (
            "dns.changes.create",
            "POST",
            "/dns/v1/projects/evac-demo/managedZones/shop-zone/changes",
            {"additions": [{"name": "x.shop.example.com.", "type": "A", "ttl": 60, "rrdatas": ["192.0.2.1"]}]},
        ),
    ],
)
def test_each_mapped_mutation_is_refused_without_its_permission(
    emulator: RunningEmulator, revoke: Any, permission: str, verb: str, path: str, body: Any
) -> None:
    before = emulator.state()
    revoke(permission)

    answer = emulator.admin.request(verb, path, json=body)

    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["message"].startswith(f"Required '{permission}' permission for 'projects/evac-demo/")
    assert emulator.state() == before


def test_the_data_tier_s_mutations_need_their_permissions(data_emulator: RunningEmulator) -> None:
    admin = data_emulator.admin
    admin.delete("/emulator/v1/iam/permissions/cloudsql.instances.failover").raise_for_status()
    admin.delete("/emulator/v1/iam/permissions/spanner.databases.updateDdl").raise_for_status()

    switch = admin.post("/sql/v1beta4/projects/evac-data/instances/checkout-db-uc1/switchover")
    ddl = admin.patch(
        "/v1/projects/evac-data/instances/catalog-spanner/databases/catalog/ddl",
        json={"statements": ["ALTER DATABASE catalog SET OPTIONS (default_leader = 'us-central1')"]},
    )

    assert switch.status_code == 403 and "cloudsql.instances.failover" in switch.json()["error"]["message"]
    assert ddl.status_code == 403
    assert ddl.json() == {
        "error": {
            "code": 403,
            "message": "Caller is missing IAM permission spanner.databases.updateDdl on resource "
            "projects/evac-data/instances/catalog-spanner/databases/catalog.",
            "status": "PERMISSION_DENIED",
        }
    }
    # promoteReplica needs its own permission, still held.
    assert admin.post("/sql/v1beta4/projects/evac-data/instances/checkout-db-ae1/promoteReplica").status_code == 200


def test_the_admin_calls_list_and_reset_grants_everything_again(emulator: RunningEmulator, revoke: Any) -> None:
    listed = revoke("dns.changes.create")

    assert listed["revoked"] == ["dns.changes.create"]
    assert "dns.changes.create" not in listed["granted"] and "compute.backendServices.update" in listed["granted"]
    assert emulator.admin.delete("/emulator/v1/iam/permissions/not-a-permission").status_code == 400
    emulator.reset()
    assert emulator.admin.get("/emulator/v1/iam/permissions").json()["revoked"] == []


def test_bad_questions_are_refused(emulator: RunningEmulator) -> None:
    wildcard = emulator.admin.post("/v1/projects/evac-demo:testIamPermissions", json={"permissions": ["compute.*"]})
    other = emulator.admin.post("/v1/projects/someone-else:testIamPermissions", json={"permissions": []})

    assert wildcard.status_code == 400
    assert other.status_code == 403 and other.json()["error"]["status"] == "PERMISSION_DENIED"


def test_every_mutating_route_has_a_permission() -> None:
    """Each mutating Google route the emulator serves is in MUTATING_METHODS, whose methods are
    all in evac.permissions.METHOD_PERMISSIONS."""
    unmapped = []
    for router in GOOGLE_API_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for verb in route.methods:
                concrete = route.path.replace("{", "").replace("}", "")
                if is_mutation(verb, concrete) and method_of(verb, concrete) is None:
                    unmapped.append(f"{verb} {route.path}")

    assert unmapped == []
    assert {method for _, _, method in MUTATING_METHODS} <= set(METHOD_PERMISSIONS)


def test_the_step_permission_map() -> None:
    drain = step_permissions("drain")
    regional = step_permissions("drain", regional_backend_service=True)

    assert drain.writes == ("compute.backendServices.update",)
    assert regional.writes == ("compute.regionBackendServices.update",)
    assert "compute.regionBackendServices.get" in regional.reads
    assert step_permissions("scale_target").writes == ("compute.instanceGroupManagers.update",)
    assert step_permissions("shift_dns").writes == ("dns.changes.create",)
    assert step_permissions("sql_switchover").writes == ("cloudsql.instances.failover",)
    assert step_permissions("sql_promote_replica").writes == ("cloudsql.instances.promoteReplica",)
    assert step_permissions("sql_create_replica").writes == ("cloudsql.instances.create", "cloudsql.instances.delete")
    assert step_permissions("spanner_leader").writes == ("spanner.databases.updateDdl",)
    assert set(permissions_for(STEP_PERMISSIONS)) <= ALL_PERMISSIONS
