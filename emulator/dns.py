"""Cloud DNS v1 routes: managed zones, record sets and changes.

Every write — ``changes.create`` or the ``resourceRecordSets`` create/patch/delete methods —
is one atomic change (see ``records.apply_change``), applied at once and reported
``pending`` until ``operation_delay`` has passed, then ``done``.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from fastapi import APIRouter, Body, Depends, Query, Request

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError, invalid, validation_error
from emulator.faults import operation_fault
from emulator.listing import page
from emulator.merge_patch import merge_patch
from emulator.query import refuse_unknown_parameters
from emulator.records import ChangeBody, ResourceRecordSetBody, apply_change, body_of
from emulator.seed import NAME_SERVERS
from emulator.state import Change, RecordSet, Zone, rfc3339

router = APIRouter(prefix="/dns/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def zone_json(zone: Zone) -> dict[str, Any]:
    return {
        "kind": "dns#managedZone",
        "name": zone.name,
        "dnsName": zone.dns_name,
        "description": zone.description,
        "id": str(zone.id),
        "nameServers": list(NAME_SERVERS),
        "creationTime": rfc3339(zone.created_at),
        "visibility": "public",
    }


def change_json(change: Change, now: float) -> dict[str, Any]:
    return {
        "kind": "dns#change",
        "id": change.id,
        "startTime": rfc3339(change.start_time),
        "status": change.status(now),
        "additions": [r.api_json() for r in change.additions],
        "deletions": [r.api_json() for r in change.deletions],
        "isServing": True,
    }


def _commit(
    request: Request,
    emulator: Emulator,
    zone: Zone,
    additions: list[ResourceRecordSetBody],
    deletions: list[ResourceRecordSetBody],
) -> Change:
    """Apply one atomic change to ``zone`` and keep it in the zone's history."""
    zone.rrsets = apply_change(zone, additions, deletions)
    fault = operation_fault(request)
    if fault is not None:
        request.state.effect = f"applied: change never completes (injected {fault.fault_id})"
    now = emulator.now()
    change = Change(
        id=str(len(zone.changes)),
        start_time=now,
        done_at=None if fault is not None else now + emulator.settings.operation_delay,
        additions=[a.record() for a in additions],
        deletions=[d.record() for d in deletions],
    )
    zone.changes.append(change)
    return change


def _record(zone: Zone, name: str, type_: str) -> RecordSet:
    record = zone.find(name, type_)
    if record is None:
        raise ApiError(404, "notFound", f"The 'parameters.name' resource named '{name} ({type_})' does not exist.")
    return record


@router.get("/managedZones")
async def list_managed_zones(
    project: str,
    dns_name: str | None = Query(None, alias="dnsName"),
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    emulator.check_project(project)
    zones = [z for _, z in sorted(emulator.world.zones.items()) if dns_name is None or z.dns_name == dns_name]
    shown, next_token = page(zones, max_results, page_token)
    body: dict[str, Any] = {"kind": "dns#managedZonesListResponse", "managedZones": [zone_json(z) for z in shown]}
    if next_token:
        body["nextPageToken"] = next_token
    return body


@router.get("/managedZones/{zone}")
async def get_managed_zone(project: str, zone: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return zone_json(emulator.zone(project, zone))


@router.get("/managedZones/{zone}/rrsets")
async def list_record_sets(
    project: str,
    zone: str,
    name: str | None = Query(None),
    type_: str | None = Query(None, alias="type"),
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = emulator.zone(project, zone)
    if type_ is not None and name is None:
        raise invalid("The 'type' parameter requires the 'name' parameter.")
    records = [r for r in found.rrsets if (name is None or r.name == name) and (type_ is None or r.type == type_)]
    shown, next_token = page(records, max_results, page_token)
    body: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse", "rrsets": [r.api_json() for r in shown]}
    if next_token:
        body["nextPageToken"] = next_token
    return body


@router.post("/managedZones/{zone}/rrsets")
async def create_record_set(
    request: Request, project: str, zone: str, body: ResourceRecordSetBody, emulator: Emulator = Depends(get_emulator)
) -> Any:
    found = emulator.zone(project, zone)
    _commit(request, emulator, found, additions=[body], deletions=[])
    return body.record().api_json()


@router.get("/managedZones/{zone}/rrsets/{record_name}/{record_type}")
async def get_record_set(
    project: str, zone: str, record_name: str, record_type: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _record(emulator.zone(project, zone), record_name, record_type).api_json()


@router.patch("/managedZones/{zone}/rrsets/{record_name}/{record_type}")
async def patch_record_set(
    request: Request,
    project: str,
    zone: str,
    record_name: str,
    record_type: str,
    patch: dict[str, Any] = Body(),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    """A merge-patch of the record set (``ttl``, ``rrdatas``, ``routingPolicy``); its name and
    type stay."""
    found = emulator.zone(project, zone)
    current = _record(found, record_name, record_type)
    for field, value in (("name", record_name), ("type", record_type)):
        if patch.get(field, value) != value:
            raise invalid(f"Invalid value for 'entity.rrset.{field}': '{patch[field]}'. It cannot be changed.")
    try:
        replacement = ResourceRecordSetBody.model_validate(merge_patch(current.api_json(), patch))
    except pydantic.ValidationError as exc:
        raise validation_error(exc, prefix="entity.rrset") from None
    _commit(request, emulator, found, additions=[replacement], deletions=[body_of(current)])
    return replacement.record().api_json()


@router.delete("/managedZones/{zone}/rrsets/{record_name}/{record_type}")
async def delete_record_set(
    request: Request,
    project: str,
    zone: str,
    record_name: str,
    record_type: str,
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = emulator.zone(project, zone)
    current = _record(found, record_name, record_type)
    _commit(request, emulator, found, additions=[], deletions=[body_of(current)])
    return {}


@router.post("/managedZones/{zone}/changes")
async def create_change(
    request: Request, project: str, zone: str, body: ChangeBody, emulator: Emulator = Depends(get_emulator)
) -> Any:
    found = emulator.zone(project, zone)
    change = _commit(request, emulator, found, additions=body.additions, deletions=body.deletions)
    return change_json(change, emulator.now())


@router.get("/managedZones/{zone}/changes/{change_id}")
async def get_change(project: str, zone: str, change_id: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    found = emulator.zone(project, zone)
    change = next((c for c in found.changes if c.id == change_id), None)
    if change is None:
        raise ApiError(404, "notFound", f"The 'parameters.changeId' resource named '{change_id}' does not exist.")
    return change_json(change, emulator.now())


@router.get("/managedZones/{zone}/changes")
async def list_changes(
    project: str,
    zone: str,
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    sort_by: Literal["changeSequence"] = Query("changeSequence", alias="sortBy"),
    sort_order: Literal["ascending", "descending"] = Query("ascending", alias="sortOrder"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    """Changes in sequence order (``sortBy`` has the one value ``changeSequence``)."""
    found = emulator.zone(project, zone)
    ordered = found.changes if sort_order == "ascending" else found.changes[::-1]
    shown, next_token = page(ordered, max_results, page_token)
    now = emulator.now()
    body: dict[str, Any] = {"kind": "dns#changesListResponse", "changes": [change_json(c, now) for c in shown]}
    if next_token:
        body["nextPageToken"] = next_token
    return body
