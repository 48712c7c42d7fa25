"""IAM in the emulator: which permissions the caller holds, Cloud Resource Manager's
``projects.testIamPermissions``, and the ``403 PERMISSION_DENIED`` of a mutating call whose
permission is revoked.

By default the caller holds every permission. The admin API revokes and grants single
permissions (``DELETE`` / ``PUT /emulator/v1/iam/permissions/{permission}``; a reset grants
them all again); ``testIamPermissions`` answers the subset of the asked permissions held. Each
mutating Compute, DNS, Cloud SQL and Spanner method needs the permissions
``evac.permissions.METHOD_PERMISSIONS`` names for it (the table Evac's readiness check asks
about): with one revoked, the call is refused before it does anything, with Google's body.
Reads are not checked.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError, RpcError
from emulator.query import refuse_unknown_parameters
from evac.permissions import ALL_PERMISSIONS, METHOD_PERMISSIONS

router = APIRouter(prefix="/v1/projects", dependencies=[Depends(refuse_unknown_parameters)])
admin_router = APIRouter(prefix="/emulator/v1/iam")

_P = "[^/]+"
MUTATING_METHODS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (verb, re.compile(f"^{pattern}$"), method)
    for verb, pattern, method in (
        ("PATCH", f"/compute/v1/projects/{_P}/global/backendServices/{_P}", "compute.backendServices.patch"),
        ("PUT", f"/compute/v1/projects/{_P}/global/backendServices/{_P}", "compute.backendServices.update"),
        ("PATCH", f"/compute/v1/projects/{_P}/regions/{_P}/backendServices/{_P}", "compute.regionBackendServices.patch"),
        ("PUT", f"/compute/v1/projects/{_P}/regions/{_P}/backendServices/{_P}", "compute.regionBackendServices.update"),
        (
            "POST",
            f"/compute/v1/projects/{_P}/regions/{_P}/instanceGroupManagers/{_P}/resize",
            "compute.regionInstanceGroupManagers.resize",
        ),
        (
            "POST",
            f"/compute/v1/projects/{_P}/zones/{_P}/instanceGroupManagers/{_P}/resize",
            "compute.instanceGroupManagers.resize",
        ),
        ("POST", f"/dns/v1/projects/{_P}/managedZones/{_P}/changes", "dns.changes.create"),
        ("POST", f"/dns/v1/projects/{_P}/managedZones/{_P}/rrsets", "dns.resourceRecordSets.create"),
        ("PATCH", f"/dns/v1/projects/{_P}/managedZones/{_P}/rrsets/{_P}/{_P}", "dns.resourceRecordSets.patch"),
        ("DELETE", f"/dns/v1/projects/{_P}/managedZones/{_P}/rrsets/{_P}/{_P}", "dns.resourceRecordSets.delete"),
        ("POST", f"/sql/v1beta4/projects/{_P}/instances", "sql.instances.insert"),
        ("DELETE", f"/sql/v1beta4/projects/{_P}/instances/{_P}", "sql.instances.delete"),
        ("POST", f"/sql/v1beta4/projects/{_P}/instances/{_P}/switchover", "sql.instances.switchover"),
        ("POST", f"/sql/v1beta4/projects/{_P}/instances/{_P}/promoteReplica", "sql.instances.promoteReplica"),
        ("PATCH", f"/v1/projects/{_P}/instances/{_P}/databases/{_P}/ddl", "spanner.projects.instances.databases.updateDdl"),
    )
)
"""Every mutating Google route the emulator serves -> its discovery method (a test checks that
none is missing)."""

_PERMISSION = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*){2}\Z")


def method_of(verb: str, path: str) -> str | None:
    """The mutating method a call is, or None (a read, or no route)."""
    return next((method for v, pattern, method in MUTATING_METHODS if v == verb and pattern.match(path)), None)


def _resource(path: str, method: str) -> str:
    """The resource a refusal names: ``projects/p/global/backendServices/bs``."""
    resource = re.sub(r"^/(compute/v1|dns/v1|sql/v1beta4|v1)/", "", path)
    return re.sub(r"/(resize|switchover|promoteReplica|changes|ddl)$", "", resource)


def permission_refusal(emulator: Emulator, verb: str, path: str) -> ApiError | None:
    """Google's 403 when the call needs a permission the caller does not hold, else None."""
    revoked = emulator.world.revoked_permissions
    if not revoked:
        return None
    method = method_of(verb, path)
    if method is None:
        return None
    missing = next((p for p in METHOD_PERMISSIONS[method] if p in revoked), None)
    if missing is None:
        return None
    resource = _resource(path, method)
    if method.startswith("spanner."):
        return RpcError(403, f"Caller is missing IAM permission {missing} on resource {resource}.")
    return ApiError(403, "forbidden", f"Required '{missing}' permission for '{resource}'")


class TestIamPermissionsBody(BaseModel):
    """``TestIamPermissionsRequest``."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False  # not a pytest class

    permissions: list[str] = []


@router.post("/{resource}:testIamPermissions")
async def test_iam_permissions(resource: str, body: TestIamPermissionsBody, emulator: Emulator = Depends(get_emulator)) -> Any:
    """The subset of ``permissions`` the caller holds on the project (``{}`` when none)."""
    if resource != emulator.world.project:
        raise RpcError(403, f"The caller does not have permission (project '{resource}').")
    for permission in body.permissions:
        if "*" in permission or not _PERMISSION.match(permission):
            raise RpcError(400, f"Permission '{permission}' is not a valid permission (wildcards are not allowed).")
    revoked = set(emulator.world.revoked_permissions)
    held = list(dict.fromkeys(p for p in body.permissions if p not in revoked))
    return {"permissions": held} if held else {}


def _permissions_json(emulator: Emulator) -> dict[str, Any]:
    revoked = sorted(emulator.world.revoked_permissions)
    return {"revoked": revoked, "granted": sorted(ALL_PERMISSIONS - set(revoked)), "default": "granted"}


def _checked(permission: str) -> str:
    if not _PERMISSION.match(permission):
        raise ApiError(400, "badRequest", f"'{permission}' is not an IAM permission (service.resource.verb).")
    return permission


@admin_router.get("/permissions")
async def get_permissions(emulator: Emulator = Depends(get_emulator)) -> Any:
    """The revoked permissions, and those of Evac's table still granted (every permission not
    revoked is held)."""
    return _permissions_json(emulator)


@admin_router.delete("/permissions/{permission}")
async def revoke_permission(permission: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    """The caller no longer holds ``permission``: calls that need it answer 403."""
    revoked = emulator.world.revoked_permissions
    if _checked(permission) not in revoked:
        revoked.append(permission)
    return _permissions_json(emulator)


@admin_router.put("/permissions/{permission}")
async def grant_permission(permission: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    """The caller holds ``permission`` again."""
    revoked = emulator.world.revoked_permissions
    if _checked(permission) in revoked:
        revoked.remove(permission)
    return _permissions_json(emulator)
