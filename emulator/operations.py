"""Compute Engine operations: their JSON form and the ``globalOperations`` /
``regionOperations`` / ``zoneOperations`` list, get and wait methods (one implementation,
by location: a regional operation carries ``region``, a zonal one ``zone``).

A mutation's effect is applied when it is requested; its operation then goes
PENDING -> RUNNING -> DONE over ``operation_delay`` seconds, so code that waits for DONE
before reading (as it must on Google Cloud) behaves the same here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.listing import ListQuery, compute_list
from emulator.query import refuse_unknown_parameters
from emulator.state import COMPUTE_URL, Operation, location_path, rfc3339

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def operation_json(op: Operation, project: str, now: float) -> dict[str, Any]:
    status = op.status(now)
    body: dict[str, Any] = {
        "kind": "compute#operation",
        "id": str(op.id),
        "name": op.name,
        "operationType": op.operation_type,
        "targetLink": op.target_link,
        "targetId": str(op.target_id),
        "status": status,
        "user": "evac-emulator@example.com",
        "progress": _progress(op, now),
        "insertTime": rfc3339(op.insert_time),
        "selfLink": f"{COMPUTE_URL}/projects/{project}/{op.location}/operations/{op.name}",
    }
    if status != "PENDING":
        body["startTime"] = rfc3339(op.insert_time + op.duration / 5)
    if status == "DONE":
        body["endTime"] = rfc3339(op.insert_time + op.duration)
        if op.failure == "error":
            message = f"The operation failed (injected {op.fault_id})."
            body["error"] = {"errors": [{"code": op.error_code, "message": message}]}
            body["httpErrorStatusCode"] = 500
            body["httpErrorMessage"] = "INTERNAL SERVER ERROR"
    if op.zone:
        body["zone"] = f"{COMPUTE_URL}/projects/{project}/zones/{op.zone}"
    elif op.region:
        body["region"] = f"{COMPUTE_URL}/projects/{project}/regions/{op.region}"
    return body


def _progress(op: Operation, now: float) -> int:
    if op.status(now) == "DONE":
        return 100
    if op.duration <= 0:
        return 0
    return max(0, min(99, int(100 * (now - op.insert_time) / op.duration)))


async def _wait(emulator: Emulator, op: Operation) -> None:
    """Sleep until the operation is DONE or the wait deadline passes, whichever is first."""
    deadline = emulator.now() + emulator.settings.wait_deadline
    done_at = op.insert_time + op.duration if op.failure != "never_done" else deadline
    await asyncio.sleep(max(0.0, min(done_at, deadline) - emulator.now()))


def _list(
    emulator: Emulator, project: str, query: ListQuery, *, region: str | None = None, zone: str | None = None
) -> dict[str, Any]:
    emulator.check_project(project)
    now = emulator.now()
    where = location_path(region, zone)
    ops = sorted(
        (op for op in emulator.world.operations.values() if (op.region, op.zone) == (region, zone)),
        key=lambda op: op.insert_time,
    )
    return compute_list(
        [operation_json(op, project, now) for op in ops],
        kind="compute#operationList",
        list_id=f"projects/{project}/{where}/operations",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/operations",
        **query.as_kwargs(),
    )


def _get(emulator: Emulator, project: str, name: str, *, region: str | None = None, zone: str | None = None) -> Any:
    return operation_json(emulator.operation(project, name, region=region, zone=zone), project, emulator.now())


async def _wait_for(emulator: Emulator, project: str, name: str, *, region: str | None = None, zone: str | None = None) -> Any:
    op = emulator.operation(project, name, region=region, zone=zone)
    await _wait(emulator, op)
    return operation_json(op, project, emulator.now())


@router.get("/global/operations")
async def list_global_operations(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    return _list(emulator, project, query)


@router.get("/regions/{region}/operations")
async def list_region_operations(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list(emulator, project, query, region=region)


@router.get("/zones/{zone}/operations")
async def list_zone_operations(
    project: str, zone: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list(emulator, project, query, zone=zone)


@router.get("/global/operations/{operation}")
async def get_global_operation(project: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, operation)


@router.post("/global/operations/{operation}/wait")
async def wait_global_operation(project: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return await _wait_for(emulator, project, operation)


@router.get("/regions/{region}/operations/{operation}")
async def get_region_operation(project: str, region: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, operation, region=region)


@router.post("/regions/{region}/operations/{operation}/wait")
async def wait_region_operation(project: str, region: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return await _wait_for(emulator, project, operation, region=region)


@router.get("/zones/{zone}/operations/{operation}")
async def get_zone_operation(project: str, zone: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, operation, zone=zone)


@router.post("/zones/{zone}/operations/{operation}/wait")
async def wait_zone_operation(project: str, zone: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return await _wait_for(emulator, project, operation, zone=zone)
