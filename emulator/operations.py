"""Compute Engine operations: their JSON form and the ``globalOperations`` /
``regionOperations`` list, get and wait methods.

A mutation's effect is applied when it is requested; its operation then goes
PENDING -> RUNNING -> DONE over ``operation_delay`` seconds, so code that waits for DONE
before reading (as it must on Google Cloud) behaves the same here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query

from emulator.core import Emulator, get_emulator
from emulator.listing import compute_list
from emulator.query import refuse_unknown_parameters
from emulator.state import COMPUTE_URL, Operation, rfc3339

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def operation_json(op: Operation, project: str, now: float) -> dict[str, Any]:
    status = op.status(now)
    where = f"regions/{op.region}" if op.region else "global"
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
        "selfLink": f"{COMPUTE_URL}/projects/{project}/{where}/operations/{op.name}",
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
    if op.region:
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
    emulator: Emulator,
    project: str,
    region: str | None,
    filter_: str | None,
    max_results: int | None,
    page_token: str | None,
    order_by: str | None,
) -> dict[str, Any]:
    emulator.check_project(project)
    now = emulator.now()
    where = f"regions/{region}" if region else "global"
    ops = sorted((op for op in emulator.world.operations.values() if op.region == region), key=lambda op: op.insert_time)
    return compute_list(
        [operation_json(op, project, now) for op in ops],
        kind="compute#operationList",
        list_id=f"projects/{project}/{where}/operations",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/operations",
        filter_=filter_,
        max_results=max_results,
        page_token=page_token,
        order_by=order_by,
    )


@router.get("/global/operations")
async def list_global_operations(
    project: str,
    filter_: str | None = Query(None, alias="filter"),
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    order_by: str | None = Query(None, alias="orderBy"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _list(emulator, project, None, filter_, max_results, page_token, order_by)


@router.get("/regions/{region}/operations")
async def list_region_operations(
    project: str,
    region: str,
    filter_: str | None = Query(None, alias="filter"),
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    order_by: str | None = Query(None, alias="orderBy"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    return _list(emulator, project, region, filter_, max_results, page_token, order_by)


@router.get("/global/operations/{operation}")
async def get_global_operation(project: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    op = emulator.operation(project, operation, region=None)
    return operation_json(op, project, emulator.now())


@router.post("/global/operations/{operation}/wait")
async def wait_global_operation(project: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    op = emulator.operation(project, operation, region=None)
    await _wait(emulator, op)
    return operation_json(op, project, emulator.now())


@router.get("/regions/{region}/operations/{operation}")
async def get_region_operation(
    project: str, region: str, operation: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    op = emulator.operation(project, operation, region=region)
    return operation_json(op, project, emulator.now())


@router.post("/regions/{region}/operations/{operation}/wait")
async def wait_region_operation(
    project: str, region: str, operation: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    op = emulator.operation(project, operation, region=region)
    await _wait(emulator, op)
    return operation_json(op, project, emulator.now())
