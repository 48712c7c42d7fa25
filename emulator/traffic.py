"""What clients would experience now: how a backend service splits requests between
regions, and what a DNS name resolves to. Admin API, under ``/emulator/v1``.

The split is a simple model of a global load balancer: each backend receives a share
proportional to ``capacityScaler × healthy instances``. (Google's UTILIZATION mode prefers
the region closest to the client until it is full; the proportional model is enough to see
a drain or a failover take effect.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError
from emulator.resolver import resolve
from emulator.state import HEALTHY

router = APIRouter(prefix="/emulator/v1")


@router.get("/traffic/{backend_service}")
async def traffic(backend_service: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    world = emulator.world
    service = world.backend_services.get(backend_service)
    if service is None:
        raise ApiError(404, "notFound", f"There is no backend service '{backend_service}'.")
    now = emulator.now()
    regions: dict[str, dict[str, Any]] = {}
    for backend in service.backends:
        group = world.group_by_url(backend.group)
        if group is None:
            continue
        healthy = sum(1 for i in group.instances if world.instance_health(group, i, now) == HEALTHY)
        regions[group.region] = {
            "group": backend.group,
            "capacityScaler": backend.capacity_scaler,
            "instances": len(group.instances),
            "healthyInstances": healthy,
            "weight": backend.capacity_scaler * healthy,
        }
    total = sum(r["weight"] for r in regions.values())
    for region in regions.values():
        region["share"] = round(region.pop("weight") / total, 4) if total else 0.0
    return {"backendService": backend_service, "served": total > 0, "regions": regions}


@router.get("/resolve")
async def resolve_name(
    name: str = Query(description="DNS name; the final '.' is optional"),
    type_: str = Query("A", alias="type"),
    location: str | None = Query(None, description="The client's region, for geo routing policies"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    """The answer a resolver gets now; for a routing policy, also how the policy chose it."""
    found = resolve(emulator, name, type_, location)
    if found.zone is None:
        raise ApiError(404, "notFound", f"No managed zone holds '{found.name}'.")
    if found.record is None:
        raise ApiError(404, "notFound", f"Zone '{found.zone.name}' has no {type_} record named '{found.name}'.")
    return {
        "name": found.name,
        "type": type_,
        "zone": found.zone.name,
        "ttl": found.record.ttl,
        "rrdatas": found.rrdatas,
        **found.policy,
    }
