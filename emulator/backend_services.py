"""Compute Engine v1: global and regional backend services and their health checks.

Paths, JSON names and rules follow the published API (``compute.v1`` discovery document):
``backendServices`` and ``regionBackendServices`` list/get/patch/update/getHealth,
``healthChecks`` and ``regionHealthChecks`` list/get. Both scopes share one implementation
(``region`` None: global). A patch or update takes effect at once and answers with an
Operation (global or regional, as the service).
"""

from __future__ import annotations

from typing import Any

import pydantic
from fastapi import APIRouter, Body, Depends, Query, Request

from emulator.core import Emulator, get_emulator
from emulator.errors import condition_not_met, invalid, validation_error
from emulator.listing import ListQuery, compute_list
from emulator.merge_patch import merge_patch
from emulator.operations import operation_json
from emulator.query import refuse_unknown_parameters
from emulator.requestlog import DUPLICATE
from emulator.state import (
    COMPUTE_URL,
    ApiModel,
    BackendService,
    HealthCheck,
    World,
    location_path,
    new_fingerprint,
    rfc3339,
)

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])

# Fields the server sets; a patch may carry them (a copy of a read resource does) but
# cannot change them.
_OUTPUT_ONLY = ("kind", "id", "selfLink", "creationTimestamp", "region")


class ResourceGroupReference(ApiModel):
    group: str


def normalize_link(link: str, project: str) -> str:
    """Accept a full, host-less or project-relative resource URL, as Compute Engine does."""
    for prefix in (f"{COMPUTE_URL}/", "https://compute.googleapis.com/compute/v1/"):
        if link.startswith(prefix):
            return f"{COMPUTE_URL}/{link.removeprefix(prefix)}"
    if link.startswith("projects/"):
        return f"{COMPUTE_URL}/{link}"
    if link.startswith(("regions/", "zones/", "global/")):
        return f"{COMPUTE_URL}/projects/{project}/{link}"
    return link


def _checked_backend_service(
    current: BackendService, body: dict[str, Any], world: World, region: str | None, *, replace: bool
) -> BackendService:
    """The backend service ``body`` makes of ``current`` — merged into it (patch) or
    replacing it (update) — or the API's refusal. A regional service (``region``) takes
    instance groups of its region and health checks of its region."""
    if "name" in body and body["name"] != current.name:
        raise invalid(f"Invalid value for field 'resource.name': '{body['name']}'. The name cannot be changed.")
    current_json = current.api_json()
    merged = dict(body) if replace else merge_patch(current_json, body)
    for field in (*_OUTPUT_ONLY, "name", "fingerprint"):
        if field in current_json:
            merged[field] = current_json[field]
        else:
            merged.pop(field, None)
    try:
        updated = BackendService.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None

    seen: set[str] = set()
    for index, backend in enumerate(updated.backends):
        where = f"resource.backends[{index}]"
        scaler = backend.capacity_scaler
        if not (scaler == 0 or 0.1 <= scaler <= 1.0):
            raise invalid(f"Invalid value for field '{where}.capacityScaler': '{scaler}'. Must be 0 or between 0.1 and 1.0.")
        if scaler == 0 and len(updated.backends) == 1:
            raise invalid(
                f"Invalid value for field '{where}.capacityScaler': '0'. "
                "A backend service with a single backend cannot be drained to 0."
            )
        backend.group = normalize_link(backend.group, world.project)
        group = world.group_by_url(backend.group)
        if group is None:
            raise invalid(f"Invalid value for field '{where}.group': '{backend.group}'. The resource was not found.")
        if region is not None and group.region != region:
            raise invalid(
                f"Invalid value for field '{where}.group': '{backend.group}'. "
                f"A regional backend service in {region} can only have backends in {region}."
            )
        if backend.group in seen:
            raise invalid(f"Invalid value for field '{where}.group': '{backend.group}'. Duplicate backend group.")
        seen.add(backend.group)
    known_checks = {check.self_link(world.project) for check in world.health_checks.values() if check.region == region}
    for index, link in enumerate(updated.health_checks):
        updated.health_checks[index] = normalize_link(link, world.project)
        if updated.health_checks[index] not in known_checks:
            raise invalid(f"Invalid value for field 'resource.healthChecks[{index}]': '{link}'. The resource was not found.")
    updated.fingerprint = new_fingerprint()
    return updated


def _write_backend_service(
    request: Request,
    emulator: Emulator,
    project: str,
    name: str,
    body: dict[str, Any],
    request_id: str | None,
    *,
    replace: bool,
    region: str | None = None,
) -> dict[str, Any]:
    """``patch`` (merge) or ``update`` (replace) of a global or (``region``) regional backend
    service: requestId first, then fingerprint, then rules.

    A patch is checked against its fingerprint when it carries one; an update must carry the
    current one ("An up-to-date fingerprint must be provided in order to update the
    BackendService", says the API description)."""
    current = emulator.backend_service(project, name, region)
    earlier = emulator.earlier_operation(request_id)
    if earlier is not None:
        request.state.effect = DUPLICATE
        return operation_json(earlier, project, emulator.now())
    given = body.get("fingerprint")
    if replace and given is None:
        raise condition_not_met(f"An update of backend service '{name}' must carry its current fingerprint.")
    if given is not None and given != current.fingerprint:
        raise condition_not_met(
            f"Supplied fingerprint '{given}' does not match the current fingerprint of backend service "
            f"'{name}'; read it again and retry."
        )
    updated = _checked_backend_service(current, body, emulator.world, region, replace=replace)

    def apply() -> None:
        if region is None:
            emulator.world.backend_services[current.name] = updated
        else:
            emulator.world.region_backend_services[f"{region}/{current.name}"] = updated

    op = emulator.mutate(
        request,
        apply,
        operation_type="update" if replace else "patch",
        target_link=updated.self_link,
        target_id=updated.id,
        region=region,
        request_id=request_id,
    )
    return operation_json(op, project, emulator.now())


def _list_backend_services(emulator: Emulator, project: str, region: str | None, query: ListQuery) -> dict[str, Any]:
    emulator.check_project(project)
    where = location_path(region)
    return compute_list(
        [service.api_json() for service in emulator.backend_services(region)],
        kind="compute#backendServiceList",
        list_id=f"projects/{project}/{where}/backendServices",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/backendServices",
        **query.as_kwargs(),
    )


def _backend_service_health(
    emulator: Emulator, project: str, name: str, region: str | None, reference: ResourceGroupReference
) -> dict[str, Any]:
    service = emulator.backend_service(project, name, region)
    url = normalize_link(reference.group, project)
    group = emulator.world.group_by_url(url)
    if group is None or all(b.group != url for b in service.backends):
        raise invalid(
            f"Invalid value for field 'resourceGroupReference.group': '{reference.group}'. "
            f"It is not a backend of backend service '{name}'."
        )
    now = emulator.now()
    body: dict[str, Any] = {"kind": "compute#backendServiceGroupHealth"}
    statuses = [
        {
            "instance": f"{COMPUTE_URL}/projects/{project}/zones/{i.zone}/instances/{i.name}",
            "ipAddress": i.ip_address,
            "port": 80,
            "healthState": emulator.world.instance_health(group, i, now),
        }
        for i in sorted(group.instances, key=lambda i: i.name)
    ]
    if statuses:
        body["healthStatus"] = statuses
    return body


@router.get("/global/backendServices")
async def list_backend_services(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    return _list_backend_services(emulator, project, None, query)


@router.get("/regions/{region}/backendServices")
async def list_region_backend_services(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_backend_services(emulator, project, region, query)


@router.get("/global/backendServices/{backend_service}")
async def get_backend_service(project: str, backend_service: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return emulator.backend_service(project, backend_service).api_json()


@router.get("/regions/{region}/backendServices/{backend_service}")
async def get_region_backend_service(
    project: str, region: str, backend_service: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    return emulator.backend_service(project, backend_service, region).api_json()


@router.patch("/global/backendServices/{backend_service}")
async def patch_backend_service(
    request: Request,
    project: str,
    backend_service: str,
    body: dict[str, Any] = Body(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _write_backend_service(request, emulator, project, backend_service, body, request_id, replace=False)


@router.patch("/regions/{region}/backendServices/{backend_service}")
async def patch_region_backend_service(
    request: Request,
    project: str,
    region: str,
    backend_service: str,
    body: dict[str, Any] = Body(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _write_backend_service(request, emulator, project, backend_service, body, request_id, replace=False, region=region)


@router.put("/global/backendServices/{backend_service}")
async def update_backend_service(
    request: Request,
    project: str,
    backend_service: str,
    body: dict[str, Any] = Body(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _write_backend_service(request, emulator, project, backend_service, body, request_id, replace=True)


@router.put("/regions/{region}/backendServices/{backend_service}")
async def update_region_backend_service(
    request: Request,
    project: str,
    region: str,
    backend_service: str,
    body: dict[str, Any] = Body(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _write_backend_service(request, emulator, project, backend_service, body, request_id, replace=True, region=region)


@router.post("/global/backendServices/{backend_service}/getHealth")
async def get_backend_service_health(
    project: str,
    backend_service: str,
    reference: ResourceGroupReference,
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _backend_service_health(emulator, project, backend_service, None, reference)


@router.post("/regions/{region}/backendServices/{backend_service}/getHealth")
async def get_region_backend_service_health(
    project: str,
    region: str,
    backend_service: str,
    reference: ResourceGroupReference,
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _backend_service_health(emulator, project, backend_service, region, reference)


def health_check_json(check: HealthCheck, project: str) -> dict[str, Any]:
    body = {
        "kind": "compute#healthCheck",
        "id": str(check.id),
        "creationTimestamp": rfc3339(check.created_at),
        "name": check.name,
        "checkIntervalSec": 5,
        "timeoutSec": 5,
        "unhealthyThreshold": 2,
        "healthyThreshold": 2,
        "type": "HTTP",
        "httpHealthCheck": {"port": 80, "requestPath": "/healthz", "proxyHeader": "NONE"},
        "selfLink": check.self_link(project),
    }
    if check.region is not None:
        body["region"] = f"{COMPUTE_URL}/projects/{project}/regions/{check.region}"
    return body


def _list_health_checks(emulator: Emulator, project: str, region: str | None, query: ListQuery) -> dict[str, Any]:
    emulator.check_project(project)
    where = location_path(region)
    return compute_list(
        [health_check_json(check, project) for check in emulator.health_checks(region)],
        kind="compute#healthCheckList",
        list_id=f"projects/{project}/{where}/healthChecks",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/healthChecks",
        **query.as_kwargs(),
    )


@router.get("/global/healthChecks")
async def list_health_checks(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    return _list_health_checks(emulator, project, None, query)


@router.get("/regions/{region}/healthChecks")
async def list_region_health_checks(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_health_checks(emulator, project, region, query)


@router.get("/global/healthChecks/{health_check}")
async def get_health_check(project: str, health_check: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return health_check_json(emulator.health_check(project, health_check), project)


@router.get("/regions/{region}/healthChecks/{health_check}")
async def get_region_health_check(
    project: str, region: str, health_check: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    return health_check_json(emulator.health_check(project, health_check, region), project)
