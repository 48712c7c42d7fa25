"""The emulator's own API, under ``/emulator/v1``: outages, the state snapshot, the request log.

Not part of Google Cloud: this is how a rehearsal breaks a region and how a test sees what
a run did.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError

router = APIRouter(prefix="/emulator/v1")


def _known_region(emulator: Emulator, region: str) -> None:
    if region not in emulator.world.regions():
        raise ApiError(404, "notFound", f"Region '{region}' has no instance group in this emulator.")


@router.post("/regions/{region}/outage")
async def start_outage(region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    """Every instance in the region reports UNHEALTHY until ``/recover``."""
    _known_region(emulator, region)
    if region not in emulator.world.outages:
        emulator.world.outages.append(region)
    return {"region": region, "outage": True}


@router.post("/regions/{region}/recover")
async def end_outage(region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    _known_region(emulator, region)
    if region in emulator.world.outages:
        emulator.world.outages.remove(region)
    return {"region": region, "outage": False}


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


@router.get("/healthz")
async def healthz() -> Any:
    return {"status": "ok"}
