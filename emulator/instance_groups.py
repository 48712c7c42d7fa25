"""Compute Engine v1: regional and zonal managed instance groups and their instances.

``regionInstanceGroupManagers`` and ``instanceGroupManagers`` (zonal)
list/get/resize/listManagedInstances, and ``instances.list/get``, as the published API
(``compute.v1`` discovery document) defines them. Both scopes share one implementation
(``zone`` None: regional). ``resize`` sets the target size at once and answers with a
regional or zonal Operation; new instances serve after the warm-up, and those the region's
quota has no room for wait, ``CREATING``, until it has (``World.make_room``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from emulator.core import Emulator, get_emulator
from emulator.errors import invalid, not_found
from emulator.listing import ListQuery, compute_list
from emulator.operations import operation_json
from emulator.query import refuse_unknown_parameters
from emulator.requestlog import DUPLICATE
from emulator.state import (
    COMPUTE_URL,
    Instance,
    ManagedGroup,
    instance_name,
    location_path,
    new_fingerprint,
    rfc3339,
)

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def group_manager_json(group: ManagedGroup, project: str, now: float) -> dict[str, Any]:
    """A regional group names its ``region`` and the zones it spreads over; a zonal one its ``zone``.

    ``currentActions.creating`` counts the instances warming up and those the region's quota
    has no room for yet (``missing``); the group is stable when there are none."""
    warming = sum(1 for i in group.instances if now < i.ready_at)
    creating = warming + group.missing
    template = group.template_url(project)
    body: dict[str, Any] = {
        "kind": "compute#instanceGroupManager",
        "id": str(group.id),
        "creationTimestamp": rfc3339(group.created_at),
        "name": group.name,
    }
    if group.zone is None:
        body["region"] = f"{COMPUTE_URL}/projects/{project}/regions/{group.region}"
        body["distributionPolicy"] = {
            "zones": [{"zone": f"{COMPUTE_URL}/projects/{project}/zones/{group.instance_zone}"}],
            "targetShape": "EVEN",
        }
    else:
        body["zone"] = f"{COMPUTE_URL}/projects/{project}/zones/{group.zone}"
    return body | {
        "instanceTemplate": template,
        "versions": [{"instanceTemplate": template}],
        "instanceGroup": group.group_url(project),
        "baseInstanceName": group.name,
        "fingerprint": group.fingerprint,
        "currentActions": {
            "none": len(group.instances) - warming,
            "creating": creating,
            "creatingWithoutRetries": 0,
            "verifying": 0,
            "recreating": 0,
            "deleting": 0,
            "abandoning": 0,
            "restarting": 0,
            "refreshing": 0,
        },
        "status": {"isStable": creating == 0, "versionTarget": {"isReached": True}},
        "targetSize": group.target_size,
        "selfLink": group.self_link(project),
        "listManagedInstancesResults": "PAGELESS",
    }


def _list_groups(
    emulator: Emulator, project: str, query: ListQuery, *, region: str | None = None, zone: str | None = None
) -> dict[str, Any]:
    emulator.check_project(project)
    now = emulator.now()
    where = location_path(region, zone)
    return compute_list(
        [group_manager_json(g, project, now) for g in emulator.groups(region, zone)],
        kind="compute#regionInstanceGroupManagerList" if zone is None else "compute#instanceGroupManagerList",
        list_id=f"projects/{project}/{where}/instanceGroupManagers",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/instanceGroupManagers",
        **query.as_kwargs(),
    )


def _resize(
    request: Request,
    emulator: Emulator,
    project: str,
    name: str,
    size: int,
    request_id: str | None,
    *,
    region: str | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    """requestId first (a retry returns the first operation), then the size rule."""
    group = emulator.group(project, name, region=region, zone=zone)
    earlier = emulator.earlier_operation(request_id)
    if earlier is not None:
        request.state.effect = DUPLICATE
        return operation_json(earlier, project, emulator.now())
    if not 0 <= size <= 2000:
        raise invalid(f"Invalid value for field 'size': '{size}'. Must be between 0 and 2000.")

    def apply() -> None:
        group.resize(size, now=emulator.now(), warmup=emulator.settings.warmup, world=emulator.world)
        group.fingerprint = new_fingerprint()

    op = emulator.mutate(
        request,
        apply,
        operation_type="compute.instanceGroupManagers.resize" if zone else "compute.regionInstanceGroupManagers.resize",
        target_link=group.self_link(project),
        target_id=group.id,
        region=region,
        zone=zone,
        request_id=request_id,
    )
    return operation_json(op, project, emulator.now())


def _managed_instances(
    emulator: Emulator, project: str, name: str, *, region: str | None = None, zone: str | None = None
) -> dict[str, Any]:
    """The group's instances; those its region's quota has no room for yet are ``CREATING``
    without an instance status or id, their last attempt failed with ``QUOTA_EXCEEDED``, as on
    Google Cloud."""
    group = emulator.group(project, name, region=region, zone=zone)
    now = emulator.now()
    zone_url = f"{COMPUTE_URL}/projects/{project}/zones/{group.instance_zone}"
    managed: list[dict[str, Any]] = [
        {
            "instance": f"{COMPUTE_URL}/projects/{project}/zones/{i.zone}/instances/{i.name}",
            "id": str(i.id),
            "name": i.name,
            "instanceStatus": "RUNNING" if now >= i.ready_at else "STAGING",
            "currentAction": "NONE" if now >= i.ready_at else "CREATING",
        }
        for i in group.instances
    ]
    if group.missing:
        metric, limit = emulator.world.binding_quota(group.region, group.vcpus)
        message = f"Quota '{metric}' exceeded.  Limit: {float(limit)} in region {group.region}."
        error = {"code": "QUOTA_EXCEEDED", "message": message}
        for slot in group.missing_slots():
            name = instance_name(group.name, slot)
            managed.append(
                {
                    "instance": f"{zone_url}/instances/{name}",
                    "name": name,
                    "currentAction": "CREATING",
                    "lastAttempt": {"errors": {"errors": [error]}},
                }
            )
    return {"managedInstances": sorted(managed, key=lambda m: m["name"])}


@router.get("/regions/{region}/instanceGroupManagers")
async def list_region_group_managers(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_groups(emulator, project, query, region=region)


@router.get("/zones/{zone}/instanceGroupManagers")
async def list_zone_group_managers(
    project: str, zone: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_groups(emulator, project, query, zone=zone)


@router.get("/regions/{region}/instanceGroupManagers/{manager}")
async def get_region_group_manager(project: str, region: str, manager: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return group_manager_json(emulator.group(project, manager, region=region), project, emulator.now())


@router.get("/zones/{zone}/instanceGroupManagers/{manager}")
async def get_zone_group_manager(project: str, zone: str, manager: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return group_manager_json(emulator.group(project, manager, zone=zone), project, emulator.now())


@router.post("/regions/{region}/instanceGroupManagers/{manager}/resize")
async def resize_region_group_manager(
    request: Request,
    project: str,
    region: str,
    manager: str,
    size: int = Query(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _resize(request, emulator, project, manager, size, request_id, region=region)


@router.post("/zones/{zone}/instanceGroupManagers/{manager}/resize")
async def resize_zone_group_manager(
    request: Request,
    project: str,
    zone: str,
    manager: str,
    size: int = Query(),
    request_id: str | None = Query(None, alias="requestId"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _resize(request, emulator, project, manager, size, request_id, zone=zone)


@router.post("/regions/{region}/instanceGroupManagers/{manager}/listManagedInstances")
async def list_region_managed_instances(
    project: str, region: str, manager: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _managed_instances(emulator, project, manager, region=region)


@router.post("/zones/{zone}/instanceGroupManagers/{manager}/listManagedInstances")
async def list_zone_managed_instances(project: str, zone: str, manager: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _managed_instances(emulator, project, manager, zone=zone)


def instance_json(group: ManagedGroup, instance: Instance, project: str, now: float) -> dict[str, Any]:
    zone = f"{COMPUTE_URL}/projects/{project}/zones/{instance.zone}"
    return {
        "kind": "compute#instance",
        "id": str(instance.id),
        "creationTimestamp": rfc3339(instance.created_at),
        "name": instance.name,
        "zone": zone,
        "machineType": f"{zone}/machineTypes/{group.machine_type}",
        "status": "RUNNING" if now >= instance.ready_at else "STAGING",
        "networkInterfaces": [
            {
                "kind": "compute#networkInterface",
                "name": "nic0",
                "network": f"{COMPUTE_URL}/projects/{project}/global/networks/default",
                "networkIP": instance.ip_address,
            }
        ],
        # A managed instance names its group, as on Google Cloud.
        "metadata": {"kind": "compute#metadata", "items": [{"key": "created-by", "value": group.self_link(project)}]},
        "selfLink": f"{zone}/instances/{instance.name}",
    }


def _instances_in(emulator: Emulator, zone: str) -> list[tuple[ManagedGroup, Instance]]:
    return [(g, i) for g in emulator.world.groups.values() for i in g.instances if i.zone == zone]


@router.get("/zones/{zone}/instances")
async def list_instances(
    project: str, zone: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    emulator.check_project(project)
    now = emulator.now()
    return compute_list(
        [instance_json(g, i, project, now) for g, i in _instances_in(emulator, zone)],
        kind="compute#instanceList",
        list_id=f"projects/{project}/zones/{zone}/instances",
        self_link=f"{COMPUTE_URL}/projects/{project}/zones/{zone}/instances",
        **query.as_kwargs(),
    )


@router.get("/zones/{zone}/instances/{instance}")
async def get_instance(project: str, zone: str, instance: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    found = next(((g, i) for g, i in _instances_in(emulator, zone) if instance in (i.name, str(i.id))), None)
    if found is None:
        raise not_found(f"projects/{project}/zones/{zone}/instances/{instance}")
    return instance_json(*found, project, emulator.now())
