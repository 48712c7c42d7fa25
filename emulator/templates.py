"""Compute Engine v1: instance templates and machine types — what a group's instances are made of.

``instanceTemplates`` (global) list/get: each managed instance group's ``instanceTemplate``
(``<group>-template``), whose ``properties.machineType`` is the group's machine type (the
topology's ``emulator.machine_types``, default ``e2-standard-2``). ``machineTypes`` (zonal)
list/get: a machine type's ``guestCpus`` and ``memoryMb``, so a readiness check can compute the
vCPUs a scale-up needs against the region's ``CPUS`` quota. Read only, derived from the groups.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.errors import not_found
from emulator.listing import ListQuery, compute_list
from emulator.machine_types import CATALOGUE, MachineType, machine_type
from emulator.query import refuse_unknown_parameters
from emulator.state import COMPUTE_URL, ManagedGroup, rfc3339

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])

TEMPLATE_SUFFIX = "-template"


def _templates(emulator: Emulator) -> dict[str, ManagedGroup]:
    """Template name -> the (first) group made from it."""
    found: dict[str, ManagedGroup] = {}
    for group in sorted(emulator.world.groups.values(), key=lambda g: g.ordinal):
        found.setdefault(f"{group.name}{TEMPLATE_SUFFIX}", group)
    return found


def template_json(name: str, group: ManagedGroup, project: str) -> dict[str, Any]:
    template_id = 3000 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    return {
        "kind": "compute#instanceTemplate",
        "id": str(template_id),
        "creationTimestamp": rfc3339(group.created_at),
        "name": name,
        "description": f"Instances of {group.name}",
        "properties": {
            "machineType": group.machine_type,
            "canIpForward": False,
            "networkInterfaces": [
                {"kind": "compute#networkInterface", "network": f"{COMPUTE_URL}/projects/{project}/global/networks/default"}
            ],
            "disks": [
                {
                    "kind": "compute#attachedDisk",
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "boot": True,
                    "autoDelete": True,
                    "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"},
                }
            ],
        },
        "selfLink": group.template_url(project),
    }


@router.get("/global/instanceTemplates")
async def list_instance_templates(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    return compute_list(
        [template_json(name, group, project) for name, group in _templates(emulator).items()],
        kind="compute#instanceTemplateList",
        list_id=f"projects/{project}/global/instanceTemplates",
        self_link=f"{COMPUTE_URL}/projects/{project}/global/instanceTemplates",
        **query.as_kwargs(),
    )


@router.get("/global/instanceTemplates/{instance_template}")
async def get_instance_template(project: str, instance_template: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    for name, group in _templates(emulator).items():
        body = template_json(name, group, project)
        if instance_template in (name, body["id"]):
            return body
    raise not_found(f"projects/{project}/global/instanceTemplates/{instance_template}")


def _known_zone(emulator: Emulator, project: str, zone: str) -> None:
    """A zone of a region the world has groups in (``<region>-a`` … ``-f``)."""
    emulator.check_project(project)
    region, _, letter = zone.rpartition("-")
    if region not in emulator.world.regions() or len(letter) != 1 or letter not in "abcdef":
        raise not_found(f"projects/{project}/zones/{zone}")


def machine_type_json(found: MachineType, project: str, zone: str) -> dict[str, Any]:
    return {
        "kind": "compute#machineType",
        "id": str(found.id),
        "creationTimestamp": rfc3339(0),
        "name": found.name,
        "description": found.description,
        "guestCpus": found.guest_cpus,
        "memoryMb": found.memory_mb,
        "imageSpaceGb": 0,
        "maximumPersistentDisks": 128,
        "maximumPersistentDisksSizeGb": "263168",
        "isSharedCpu": found.shared_cpu,
        "zone": zone,
        "selfLink": f"{COMPUTE_URL}/projects/{project}/zones/{zone}/machineTypes/{found.name}",
    }


@router.get("/zones/{zone}/machineTypes")
async def list_machine_types(
    project: str, zone: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    _known_zone(emulator, project, zone)
    names = sorted({*CATALOGUE, *(g.machine_type for g in emulator.world.groups.values())})
    return compute_list(
        [machine_type_json(found, project, zone) for name in names if (found := machine_type(name)) is not None],
        kind="compute#machineTypeList",
        list_id=f"projects/{project}/zones/{zone}/machineTypes",
        self_link=f"{COMPUTE_URL}/projects/{project}/zones/{zone}/machineTypes",
        **query.as_kwargs(),
    )


@router.get("/zones/{zone}/machineTypes/{name}")
async def get_machine_type(project: str, zone: str, name: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    _known_zone(emulator, project, zone)
    found = machine_type(name)
    if found is None:
        raise not_found(f"projects/{project}/zones/{zone}/machineTypes/{name}")
    return machine_type_json(found, project, zone)
