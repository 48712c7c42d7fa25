"""The emulator's own API, under ``/emulator/v1``: outages, regional quotas, renaming or deleting
a backend service, faults, the write quota, call latency, the state snapshot, the request log,
reset (IAM permissions: ``emulator/iam.py``).

Not part of Google Cloud: this is how a rehearsal breaks a region and how a test sees what
a run did.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError
from emulator.faults import FaultSpec
from emulator.quota import LatencySpec, QuotaSpec
from emulator.state import BackendService, new_fingerprint

router = APIRouter(prefix="/emulator/v1")


class OutageSpec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_errors: bool = False
    """Also answer 503 to API calls about the region's resources (its instance groups,
    operations), as when a region's control plane is down."""


def _known_region(emulator: Emulator, region: str) -> None:
    if region not in emulator.world.regions():
        raise ApiError(404, "notFound", f"Region '{region}' has no instance group in this emulator.")


@router.post("/regions/{region}/outage")
async def start_outage(region: str, spec: OutageSpec | None = Body(None), emulator: Emulator = Depends(get_emulator)) -> Any:
    """Every instance in the region reports UNHEALTHY until ``/recover``."""
    _known_region(emulator, region)
    api_errors = spec is not None and spec.api_errors
    world = emulator.world
    if region not in world.outages:
        world.outages.append(region)
        world.outage_since[region] = emulator.now()
    if api_errors and region not in world.api_outages:
        world.api_outages.append(region)
    return {"region": region, "outage": True, "apiErrors": region in world.api_outages}


@router.post("/regions/{region}/recover")
async def end_outage(region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    _known_region(emulator, region)
    for regions in (emulator.world.outages, emulator.world.api_outages):
        if region in regions:
            regions.remove(region)
    emulator.world.outage_since.pop(region, None)
    return {"region": region, "outage": False, "apiErrors": False}


class RegionQuotaSpec(BaseModel):
    """What a client puts to ``/emulator/v1/regions/{region}/quotas``: each metric's limit, a
    whole number of at least 0; a metric left out or null gets the limit the world was seeded
    with (the topology's ``emulator.region_quotas``, else the default)."""

    model_config = ConfigDict(extra="forbid")

    instances: int | None = Field(default=None, alias="INSTANCES", ge=0, strict=True)
    cpus: int | None = Field(default=None, alias="CPUS", ge=0, strict=True)


def _region_quotas(emulator: Emulator, region: str) -> dict[str, Any]:
    world = emulator.world
    return {
        "region": region,
        "limits": world.quota_limits(region),
        "usage": world.quota_usage(region),
        "waitingInstances": sum(g.missing for g in world.groups_in(region)),
    }


@router.get("/regions/{region}/quotas")
async def get_region_quotas(region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    """The region's quota limits, what its instances use, and how many instances wait for room."""
    _known_region(emulator, region)
    return _region_quotas(emulator, region)


@router.put("/regions/{region}/quotas")
async def set_region_quotas(region: str, spec: RegionQuotaSpec, emulator: Emulator = Depends(get_emulator)) -> Any:
    """Replace the region's quota limits (a metric left out: its seeded limit); instances
    waiting for room are created at once if there is room now."""
    _known_region(emulator, region)
    emulator.set_region_quotas(region, {"INSTANCES": spec.instances, "CPUS": spec.cpus})
    return _region_quotas(emulator, region)


class RenameSpec(BaseModel):
    """What a client posts to ``/emulator/v1/backendServices/{name}/rename``."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", description="The new name (a Compute Engine resource name)")


def _backend_service_key(emulator: Emulator, name: str, region: str | None) -> tuple[dict[str, BackendService], str]:
    world = emulator.world
    services, key = (world.backend_services, name) if region is None else (world.region_backend_services, f"{region}/{name}")
    if key not in services:
        where = "global" if region is None else f"in {region}"
        raise ApiError(404, "notFound", f"There is no backend service '{name}' ({where}).")
    return services, key


@router.post("/backendServices/{name}/rename")
async def rename_backend_service(
    name: str, spec: RenameSpec, region: str | None = None, emulator: Emulator = Depends(get_emulator)
) -> Any:
    """Someone renamed a backend service (on Google Cloud: made a copy under another name, moved
    what sent to it over, deleted the old one): the old name is gone, the regional forwarding
    rules and the URL maps (their ``defaultService``, with a new fingerprint) that sent to it
    send to the new one. ``?region=``: a regional one."""
    services, key = _backend_service_key(emulator, name, region)
    new_key = spec.to if region is None else f"{region}/{spec.to}"
    if new_key in services:
        raise ApiError(409, "alreadyExists", f"A backend service '{spec.to}' exists already.")
    service = services.pop(key)
    old_link = service.self_link
    service.name = spec.to
    service.self_link = old_link.rsplit("/", 1)[0] + f"/{spec.to}"
    service.fingerprint = new_fingerprint()
    services[new_key] = service
    for rule in emulator.world.forwarding_rules.values():
        if rule.backend_service == old_link:
            rule.backend_service = service.self_link
    for url_map in emulator.world.url_maps.values():
        if url_map.default_service == old_link:
            url_map.default_service = service.self_link
            url_map.fingerprint = new_fingerprint()
    return {"backendService": spec.to, "renamedFrom": name, "selfLink": service.self_link}


@router.delete("/backendServices/{name}")
async def delete_backend_service(name: str, region: str | None = None, emulator: Emulator = Depends(get_emulator)) -> Any:
    """Someone deleted a backend service: it is gone (its health check and groups stay; a
    regional forwarding rule or a URL map that sent to it now names a missing resource).
    ``?region=``: a regional one."""
    services, key = _backend_service_key(emulator, name, region)
    service = services.pop(key)
    return {"backendService": name, "deleted": True, "selfLink": service.self_link}


class ReplicationLagSpec(BaseModel):
    """What a client puts to ``/emulator/v1/sql/instances/{instance}/replicationLag``."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=86400 * 365)


@router.put("/sql/instances/{instance}/replicationLag")
async def set_replication_lag(instance: str, spec: ReplicationLagSpec, emulator: Emulator = Depends(get_emulator)) -> Any:
    """A Cloud SQL replica's base lag behind its primary (the replica-lag metric adds the time
    since an outage of its primary's region or its own began)."""
    world = emulator.world
    world.settle_data(emulator.now())
    found = world.sql_instances.get(instance)
    if found is None:
        raise ApiError(404, "notFound", f"There is no Cloud SQL instance '{instance}'.")
    if found.master is None:
        raise ApiError(400, "badRequest", f"'{instance}' is a primary, not a replica: it has no replication lag.")
    found.base_lag = spec.seconds
    return {"instance": instance, "seconds": spec.seconds, "replicaLag": world.replica_lag(found, emulator.now())}


@router.post("/faults")
async def add_fault(spec: FaultSpec, emulator: Emulator = Depends(get_emulator)) -> Any:
    return emulator.faults.add(spec).as_json()


@router.get("/faults")
async def list_faults(emulator: Emulator = Depends(get_emulator)) -> Any:
    return {"faults": [f.as_json() for f in emulator.faults.faults]}


@router.delete("/faults")
async def clear_faults(emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.faults.clear()
    return {"faults": []}


@router.delete("/faults/{fault_id}")
async def remove_fault(fault_id: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    fault = emulator.faults.find(fault_id)
    if fault is None:
        raise ApiError(404, "notFound", f"There is no fault '{fault_id}'.")
    emulator.faults.faults.remove(fault)
    return fault.as_json()


@router.get("/quota")
async def get_quota(emulator: Emulator = Depends(get_emulator)) -> Any:
    """The write limits and how many writes were accepted in the last second and minute."""
    return emulator.quota.as_json(time.time())


@router.put("/quota")
async def set_quota(spec: QuotaSpec, emulator: Emulator = Depends(get_emulator)) -> Any:
    """Replace the write limits: a limit left out or null is removed."""
    emulator.quota.set(spec.writes_per_second, spec.writes_per_minute)
    return emulator.quota.as_json(time.time())


@router.delete("/quota")
async def clear_quota(emulator: Emulator = Depends(get_emulator)) -> Any:
    """No write limits."""
    emulator.quota.set(None, None)
    return emulator.quota.as_json(time.time())


@router.get("/latency")
async def get_latency(emulator: Emulator = Depends(get_emulator)) -> Any:
    return emulator.latency.as_json()


@router.put("/latency")
async def set_latency(spec: LatencySpec, emulator: Emulator = Depends(get_emulator)) -> Any:
    """Seconds added before answering each Compute and DNS call, for all or per kind."""
    emulator.latency.read, emulator.latency.write = spec.read(), spec.write()
    return emulator.latency.as_json()


@router.get("/state")
async def get_state(emulator: Emulator = Depends(get_emulator)) -> Any:
    return emulator.world.snapshot(emulator.now())


@router.get("/requests")
async def get_requests(emulator: Emulator = Depends(get_emulator)) -> Any:
    return emulator.requests.as_json()


@router.delete("/requests")
async def clear_requests(emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.requests.clear()
    return {"requests": []}


@router.post("/reset")
async def reset(emulator: Emulator = Depends(get_emulator)) -> Any:
    """Back to the world the topology seeds: no outages, no faults, an empty request log, the
    seeded regional quotas."""
    emulator.reset()
    return emulator.world.snapshot(emulator.now())


@router.get("/healthz")
async def healthz() -> Any:
    return {"status": "ok"}
