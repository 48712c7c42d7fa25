"""Compute Engine v1: ``regions.get`` and ``regions.list``, with each region's quotas.

The regions are those the world has instance groups in. A region answers its ``INSTANCES``
and ``CPUS`` quotas: the limits (``DEFAULT_REGION_QUOTAS``, the topology's
``emulator.region_quotas``, or the admin API's ``PUT /emulator/v1/regions/{region}/quotas``)
and the usage of the instances that exist in its groups, regional and zonal (every instance is
an ``e2-standard-2``: 2 vCPUs). It also answers ``IN_USE_ADDRESSES``: the regional external
addresses in use in the region (by a forwarding rule), against a fixed limit
(``IN_USE_ADDRESSES_LIMIT``; not enforced: the emulator reserves no addresses at run time).
Google lists many more quota metrics; Evac reads these.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.errors import not_found
from emulator.listing import ListQuery, compute_list
from emulator.query import refuse_unknown_parameters
from emulator.state import COMPUTE_URL, IN_USE_ADDRESSES_LIMIT, World, rfc3339

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def region_id(region: str) -> int:
    """A region's numeric id: the same for a region name in every emulator and after a reset."""
    return 1000 + int.from_bytes(hashlib.sha256(region.encode()).digest()[:4], "big")


def region_json(world: World, region: str) -> dict[str, Any]:
    """A ``compute#region`` as the API answers it. Its zones are those its instances run in."""
    project = world.project
    base = f"{COMPUTE_URL}/projects/{project}"
    zones = sorted({g.instance_zone for g in world.groups_in(region)})
    limits, usage = world.quota_limits(region), world.quota_usage(region)
    return {
        "kind": "compute#region",
        "id": str(region_id(region)),
        "creationTimestamp": rfc3339(0),
        "name": region,
        "description": region,
        "status": "UP",
        "zones": [f"{base}/zones/{zone}" for zone in zones],
        "quotas": [
            *(
                {"metric": metric, "limit": float(limits[metric]), "usage": float(usage[metric])}
                for metric in ("CPUS", "INSTANCES")
            ),
            {
                "metric": "IN_USE_ADDRESSES",
                "limit": float(IN_USE_ADDRESSES_LIMIT),
                "usage": float(world.addresses_in_use(region)),
            },
        ],
        "selfLink": f"{base}/regions/{region}",
        "supportsPzs": False,
    }


@router.get("/regions")
async def list_regions(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    world = emulator.world
    return compute_list(
        [region_json(world, region) for region in sorted(world.regions())],
        kind="compute#regionList",
        list_id=f"projects/{project}/regions",
        self_link=f"{COMPUTE_URL}/projects/{project}/regions",
        **query.as_kwargs(),
    )


@router.get("/regions/{region}")
async def get_region(project: str, region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    world = emulator.world
    # Google addresses a region by name or id.
    found = next((r for r in world.regions() if region in (r, str(region_id(r)))), None)
    if found is None:
        raise not_found(f"projects/{project}/regions/{region}")
    return region_json(world, found)
