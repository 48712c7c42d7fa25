"""What clients would experience now: how a backend service splits requests between
regions, and what a DNS name resolves to. Admin API, under ``/emulator/v1``.

``?region=`` picks a regional backend service (needed only when several regions have one
of that name). The split is a simple model of a load balancer: each backend receives a share
proportional to ``capacityScaler × healthy instances``. (Google's UTILIZATION mode prefers
the region closest to the client until it is full; the proportional model is enough to see
a drain or a failover take effect.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Depends, Query

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError
from emulator.resolver import resolve
from emulator.state import HEALTHY, BackendService, World

router = APIRouter(prefix="/emulator/v1")


def _backend_service(world: World, name: str, region: str | None) -> BackendService:
    """The global backend service ``name``, else the regional one of that name (in ``region``,
    which is needed only when regions share the name)."""
    if region is None and name in world.backend_services:
        return world.backend_services[name]
    regional = [
        service
        for key, service in world.region_backend_services.items()
        if service.name == name and (region is None or key == f"{region}/{name}")
    ]
    if not regional:
        where = f" in {region}" if region else ""
        raise ApiError(404, "notFound", f"There is no backend service '{name}'{where}.")
    if len(regional) > 1:
        raise ApiError(400, "invalid", f"Regional backend services '{name}' exist in several regions: add ?region=.")
    return regional[0]


@dataclass(frozen=True)
class RegionSplit:
    """How much of a backend service's traffic one region's backend receives now."""

    group: str
    capacity_scaler: float
    instances: int
    healthy_instances: int
    share: float
    """``capacity_scaler × healthy_instances`` over the sum of that product for every backend."""


def split(world: World, service: BackendService, now: float) -> dict[str, RegionSplit]:
    """Each backend's share of the service's requests, by region (the model above); every
    share is 0 when no backend can take traffic."""
    weighed: list[tuple[str, RegionSplit, float]] = []
    for backend in service.backends:
        group = world.group_by_url(backend.group)
        if group is None:
            continue
        healthy = sum(1 for i in group.instances if world.instance_health(group, i, now) == HEALTHY)
        entry = RegionSplit(backend.group, backend.capacity_scaler, len(group.instances), healthy, 0.0)
        weighed.append((group.region, entry, backend.capacity_scaler * healthy))
    total = sum(weight for _, _, weight in weighed)
    return {region: replace(entry, share=round(weight / total, 4) if total else 0.0) for region, entry, weight in weighed}


def served(regions: dict[str, RegionSplit]) -> bool:
    """Whether any backend can take traffic."""
    return any(entry.capacity_scaler * entry.healthy_instances > 0 for entry in regions.values())


@router.get("/traffic/{backend_service}")
async def traffic(
    backend_service: str,
    region: str | None = Query(None, description="The region of a regional backend service"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    service = _backend_service(emulator.world, backend_service, region)
    regions = split(emulator.world, service, emulator.now())
    body: dict[str, Any] = {"backendService": backend_service}
    if service.region is not None:
        body["region"] = service.region.rsplit("/", 1)[-1]
    return body | {
        "served": served(regions),
        "regions": {
            name: {
                "group": entry.group,
                "capacityScaler": entry.capacity_scaler,
                "instances": entry.instances,
                "healthyInstances": entry.healthy_instances,
                "share": entry.share,
            }
            for name, entry in regions.items()
        },
    }


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
