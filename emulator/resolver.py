"""What a DNS name resolves to now, from the managed zones: plain record sets answer their
``rrdatas``; routing-policy record sets answer what their policy chooses, with targets in a
region under an emulated outage counted as down. Used by ``/emulator/v1/resolve`` and by the
UDP name server.

Like Cloud DNS's name servers, they answer a change only once it is ``done``: while a change
is pending (or stuck, by an injected fault), the records from before it are served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.core import Emulator
from emulator.routing import answer
from emulator.state import RecordSet, Zone


@dataclass(frozen=True)
class Resolution:
    name: str
    """The fully qualified name asked for (with its final '.')."""
    type: str
    zone: Zone | None
    """The most specific managed zone holding the name; None when no zone does."""
    record: RecordSet | None
    """The record set of that name and type; None when the zone has none."""
    rrdatas: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    """How a routing policy chose the answer (empty for a plain record set)."""

    name_exists: bool = False
    """Whether the zone serves a record set of any type at the name (NODATA, not NXDOMAIN)."""


def down_addresses(emulator: Emulator) -> set[str]:
    """Addresses of topology regions that are in an outage."""
    return {
        binding.address
        for service in emulator.topology.services.values()
        for region, binding in service.regions.items()
        if region in emulator.world.outages
    }


def served_record_sets(zone: Zone, now: float) -> dict[tuple[str, str], RecordSet]:
    """The zone's record sets with every change that is not yet done undone, newest first."""
    records = {r.key: r for r in zone.rrsets}
    for change in reversed(zone.changes):
        if change.status(now) == "done":
            continue
        for added in change.additions:
            records.pop(added.key, None)
        for deleted in change.deletions:
            records[deleted.key] = deleted
    return records


def resolve(emulator: Emulator, name: str, type_: str, location: str | None = None, at: float | None = None) -> Resolution:
    """What ``name`` answers now (or at the time ``at``, for the world as it is)."""
    fqdn = (name if name.endswith(".") else name + ".").lower()
    zones = [z for z in emulator.world.zones.values() if fqdn == z.dns_name or fqdn.endswith("." + z.dns_name)]
    if not zones:
        return Resolution(fqdn, type_, zone=None, record=None)
    zone = max(zones, key=lambda z: len(z.dns_name))
    served = served_record_sets(zone, emulator.now() if at is None else at)
    record = served.get((fqdn, type_))
    exists = any(served_name == fqdn for served_name, _ in served)
    if record is None:
        return Resolution(fqdn, type_, zone=zone, record=None, name_exists=exists)
    if record.routing_policy is None:
        return Resolution(fqdn, type_, zone=zone, record=record, rrdatas=list(record.rrdatas), name_exists=True)
    chosen = answer(record.routing_policy, location=location, down=down_addresses(emulator))
    rrdatas = chosen.pop("rrdatas")
    return Resolution(fqdn, type_, zone=zone, record=record, rrdatas=rrdatas, policy=chosen, name_exists=True)
