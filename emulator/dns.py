"""Cloud DNS v1 routes: managed zones, record sets and changes.

A change is atomic: every deletion must match the current record set exactly (name, type,
ttl, rrdatas) and no addition may exist already, or nothing happens. It is applied at once
and reported ``pending`` until ``operation_delay`` has passed, then ``done``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError, already_exists, condition_not_met, invalid, required
from emulator.faults import operation_fault
from emulator.listing import page
from emulator.seed import NAME_SERVERS
from emulator.state import ApiModel, Change, RecordSet, Zone, rfc3339

router = APIRouter(prefix="/dns/v1/projects/{project}")

_TYPES = {"A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV", "SVCB", "TXT"}


class ResourceRecordSetBody(ApiModel):
    """A record set as a request carries it. ``ttl`` may be a number or a string
    (google-cloud-dns sends ``"ttl": "300"``)."""

    kind: Literal["dns#resourceRecordSet"] = "dns#resourceRecordSet"
    name: str
    type: str
    ttl: int
    rrdatas: list[str]
    signature_rrdatas: list[str] | None = None

    def record(self) -> RecordSet:
        return RecordSet(name=self.name, type=self.type, ttl=self.ttl, rrdatas=self.rrdatas)


class ChangeBody(ApiModel):
    kind: Literal["dns#change"] = "dns#change"
    additions: list[ResourceRecordSetBody] = []
    deletions: list[ResourceRecordSetBody] = []
    is_serving: bool | None = None


def record_json(record: RecordSet) -> dict[str, Any]:
    return {"kind": "dns#resourceRecordSet", "name": record.name, "type": record.type, "ttl": record.ttl, "rrdatas": record.rrdatas}


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


def change_json(change: Change, now: float, delay: float) -> dict[str, Any]:
    return {
        "kind": "dns#change",
        "id": change.id,
        "startTime": rfc3339(change.start_time),
        "status": change.status(now, delay),
        "additions": [record_json(r) for r in change.additions],
        "deletions": [record_json(r) for r in change.deletions],
        "isServing": True,
    }


def _check_addition(zone: Zone, record: RecordSet, where: str) -> None:
    if not (record.name == zone.dns_name or record.name.endswith("." + zone.dns_name)):
        raise invalid(f"Invalid value for '{where}.name': '{record.name}' is not inside zone '{zone.dns_name}'.")
    if record.type not in _TYPES:
        raise invalid(f"Invalid value for '{where}.type': '{record.type}'.")
    if not 0 <= record.ttl <= 2_147_483_647:
        raise invalid(f"Invalid value for '{where}.ttl': '{record.ttl}'.")
    if not record.rrdatas:
        raise required(f"Required field '{where}.rrdatas' is missing.")
    if record.type in ("A", "AAAA"):
        version = 4 if record.type == "A" else 6
        for data in record.rrdatas:
            try:
                ok = ipaddress.ip_address(data).version == version
            except ValueError:
                ok = False
            if not ok:
                raise invalid(f"Invalid value for '{where}.rrdata': '{data}' is not an IPv{version} address.")


def apply_change(zone: Zone, body: ChangeBody) -> list[RecordSet]:
    """The zone's record sets after ``body``, or the API's refusal; the zone is not touched."""
    if not body.additions and not body.deletions:
        raise required("The 'entity.change' parameter is required but was missing.")
    records = {r.key: r for r in zone.rrsets}
    for index, deletion in enumerate(body.deletions):
        wanted = deletion.record()
        where = f"entity.change.deletions[{index}]"
        current = records.get(wanted.key)
        if current is None:
            raise ApiError(
                404, "notFound", f"The '{where}' resource named '{wanted.name} ({wanted.type})' does not exist."
            )
        if current.ttl != wanted.ttl or sorted(current.rrdatas) != sorted(wanted.rrdatas):
            raise condition_not_met(f"Precondition not met for '{where}'")
        del records[wanted.key]
    for index, addition in enumerate(body.additions):
        record = addition.record()
        where = f"entity.change.additions[{index}]"
        _check_addition(zone, record, where)
        if record.key in records:
            raise already_exists(f"The resource '{where}' named '{record.name} ({record.type})' already exists")
        records[record.key] = record
    return sorted(records.values(), key=lambda r: r.key)


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
    body: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse", "rrsets": [record_json(r) for r in shown]}
    if next_token:
        body["nextPageToken"] = next_token
    return body


@router.post("/managedZones/{zone}/changes")
async def create_change(
    request: Request, project: str, zone: str, body: ChangeBody, emulator: Emulator = Depends(get_emulator)
) -> Any:
    found = emulator.zone(project, zone)
    found.rrsets = apply_change(found, body)
    fault = operation_fault(request)
    if fault is not None:
        request.state.effect = f"applied: change never completes (injected {fault.fault_id})"
    change = Change(
        id=str(len(found.changes)),
        start_time=emulator.now(),
        additions=[a.record() for a in body.additions],
        deletions=[d.record() for d in body.deletions],
        never_done=fault is not None,
    )
    found.changes.append(change)
    return change_json(change, emulator.now(), emulator.settings.operation_delay)


@router.get("/managedZones/{zone}/changes/{change_id}")
async def get_change(project: str, zone: str, change_id: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    found = emulator.zone(project, zone)
    change = next((c for c in found.changes if c.id == change_id), None)
    if change is None:
        raise ApiError(404, "notFound", f"The 'parameters.changeId' resource named '{change_id}' does not exist.")
    return change_json(change, emulator.now(), emulator.settings.operation_delay)


@router.get("/managedZones/{zone}/changes")
async def list_changes(
    project: str,
    zone: str,
    max_results: int | None = Query(None, alias="maxResults"),
    page_token: str | None = Query(None, alias="pageToken"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = emulator.zone(project, zone)
    shown, next_token = page(found.changes, max_results, page_token)
    now, delay = emulator.now(), emulator.settings.operation_delay
    body: dict[str, Any] = {"kind": "dns#changesListResponse", "changes": [change_json(c, now, delay) for c in shown]}
    if next_token:
        body["nextPageToken"] = next_token
    return body
