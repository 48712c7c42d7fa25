"""Cloud DNS record sets as requests carry them, the rules a record set must follow, and
applying a change to a zone — all or nothing."""

from __future__ import annotations

import ipaddress
from typing import Literal

from emulator.errors import ApiError, already_exists, condition_not_met, invalid, required
from emulator.routing import RoutingPolicy
from emulator.state import ApiModel, RecordSet, Zone

TYPES = {"A", "AAAA", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV", "SVCB", "TXT"}


class ResourceRecordSetBody(ApiModel):
    """A record set in a request. ``ttl`` may be a number or a string (google-cloud-dns
    sends ``"ttl": "300"``). It holds either ``rrdatas`` or a ``routingPolicy``."""

    kind: Literal["dns#resourceRecordSet"] = "dns#resourceRecordSet"
    name: str
    type: str
    ttl: int
    rrdatas: list[str] | None = None
    signature_rrdatas: list[str] | None = None
    routing_policy: RoutingPolicy | None = None

    def record(self) -> RecordSet:
        policy = self.routing_policy.api_json() if self.routing_policy else None
        return RecordSet(name=self.name, type=self.type, ttl=self.ttl, rrdatas=self.rrdatas or [], routing_policy=policy)


class ChangeBody(ApiModel):
    kind: Literal["dns#change"] = "dns#change"
    additions: list[ResourceRecordSetBody] = []
    deletions: list[ResourceRecordSetBody] = []
    is_serving: bool | None = None


def check_record(zone: Zone, body: ResourceRecordSetBody, where: str) -> None:
    """Refuse a record set the API would refuse to add to ``zone``."""
    if not (body.name == zone.dns_name or body.name.endswith("." + zone.dns_name)):
        raise invalid(f"Invalid value for '{where}.name': '{body.name}' is not inside zone '{zone.dns_name}'.")
    if body.type not in TYPES:
        raise invalid(f"Invalid value for '{where}.type': '{body.type}'.")
    if not 0 <= body.ttl <= 2_147_483_647:
        raise invalid(f"Invalid value for '{where}.ttl': '{body.ttl}'.")
    if bool(body.rrdatas) == (body.routing_policy is not None):
        if body.routing_policy is None:
            raise required(f"Required field '{where}.rrdatas' is missing.")
        raise invalid(f"Invalid value for '{where}': a record set holds either rrdatas or a routingPolicy, not both.")
    if body.type in ("A", "AAAA"):
        version = 4 if body.type == "A" else 6
        addresses = body.rrdatas or (body.routing_policy.rrdatas() if body.routing_policy else [])
        for data in addresses:
            try:
                ok = ipaddress.ip_address(data).version == version
            except ValueError:
                ok = False
            if not ok:
                raise invalid(f"Invalid value for '{where}.rrdata': '{data}' is not an IPv{version} address.")


def _same(current: RecordSet, wanted: RecordSet) -> bool:
    return (
        current.ttl == wanted.ttl
        and sorted(current.rrdatas) == sorted(wanted.rrdatas)
        and current.routing_policy == wanted.routing_policy
    )


def apply_change(zone: Zone, additions: list[ResourceRecordSetBody], deletions: list[ResourceRecordSetBody]) -> list[RecordSet]:
    """The zone's record sets after the change, or the API's refusal; the zone is not touched.

    Each deletion must match the current record set exactly (missing: 404 ``notFound``,
    different: 412 ``conditionNotMet``); an addition must not exist (409 ``alreadyExists``)."""
    if not additions and not deletions:
        raise required("The 'entity.change' parameter is required but was missing.")
    records = {r.key: r for r in zone.rrsets}
    for index, deletion in enumerate(deletions):
        wanted = deletion.record()
        where = f"entity.change.deletions[{index}]"
        current = records.get(wanted.key)
        if current is None:
            raise ApiError(404, "notFound", f"The '{where}' resource named '{wanted.name} ({wanted.type})' does not exist.")
        if not _same(current, wanted):
            raise condition_not_met(f"Precondition not met for '{where}'")
        del records[wanted.key]
    for index, addition in enumerate(additions):
        where = f"entity.change.additions[{index}]"
        check_record(zone, addition, where)
        record = addition.record()
        if record.key in records:
            raise already_exists(f"The resource '{where}' named '{record.name} ({record.type})' already exists")
        records[record.key] = record
    return sorted(records.values(), key=lambda r: r.key)


def body_of(record: RecordSet) -> ResourceRecordSetBody:
    """A stored record set as a request would carry it (to delete or replace it)."""
    return ResourceRecordSetBody.model_validate(record.api_json())
