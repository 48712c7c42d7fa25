"""What a DNS name resolves to now, from the managed zones: plain record sets answer their
``rrdatas``; routing-policy record sets answer what their policy chooses, with targets in a
region under an emulated outage counted as down. Used by ``/emulator/v1/resolve`` and by the
UDP name server.

Like Cloud DNS's name servers, they answer a change only once it is ``done``: while a change
is pending (or stuck, by an injected fault), the records from before it are served.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from emulator.core import Emulator
from emulator.routing import answer
from emulator.state import Change, RecordSet, Zone
from evac.topology import Topology


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


_addresses: tuple[Topology, dict[str, frozenset[str]]] | None = None
"""The last topology asked about, with its addresses by region."""


def down_addresses(emulator: Emulator) -> set[str]:
    """Addresses of topology regions that are in an outage."""
    global _addresses
    if _addresses is None or _addresses[0] is not emulator.topology:
        by_region: dict[str, set[str]] = {}
        for service in emulator.topology.services.values():
            for region, binding in service.regions.items():
                by_region.setdefault(region, set()).add(binding.address)
        _addresses = (emulator.topology, {region: frozenset(found) for region, found in by_region.items()})
    by_region_now = _addresses[1]
    return {address for region in emulator.world.outages for address in by_region_now.get(region, ())}


@dataclass
class ZoneIndex:
    """A zone's record sets by key and by name, and its changes ordered by when they are done,
    kept up to date as the zone gains changes (so one name is answered without going over the
    whole zone)."""

    rrsets: list[RecordSet]
    """The list indexed (the zone's ``rrsets``, replaced as a whole by every change)."""
    records: dict[tuple[str, str], RecordSet]
    types: dict[str, set[str]]
    """Types of the record sets of each name."""
    changes: list[Change]
    """The list whose changes are indexed (the zone's ``changes``, appended to)."""
    done: list[tuple[float, int]] = field(default_factory=list)
    """(when done — infinity for never —, position in ``changes``), ascending."""

    @classmethod
    def of(cls, zone: Zone) -> ZoneIndex:
        """The zone's index, brought up to date (or built) first."""
        index = zone._served_index.value
        if not isinstance(index, ZoneIndex) or index.changes is not zone.changes or len(index.done) > len(zone.changes):
            index = ZoneIndex(rrsets=[], records={}, types={}, changes=zone.changes)
            zone._served_index.value = index
        if index.rrsets is not zone.rrsets or len(index.records) != len(zone.rrsets):
            index.rrsets = zone.rrsets
            index.records = {r.key: r for r in zone.rrsets}
            index.types = {}
            for name, type_ in index.records:
                index.types.setdefault(name, set()).add(type_)
        for position in range(len(index.done), len(zone.changes)):
            done_at = zone.changes[position].done_at
            bisect.insort(index.done, (math.inf if done_at is None else done_at, position))
        return index

    def pending(self, now: float) -> list[Change]:
        """The changes not yet done at ``now``, newest first."""
        first = bisect.bisect_right(self.done, (now, math.inf))
        return [self.changes[position] for _, position in sorted(self.done[first:], key=lambda p: p[1], reverse=True)]


def served_record(index: ZoneIndex, key: tuple[str, str], pending: list[Change]) -> RecordSet | None:
    """The record set of ``key`` as served: with every change of ``pending`` (newest first) undone."""
    record = index.records.get(key)
    for change in pending:
        if any(added.key == key for added in change.additions):
            record = None
        for deleted in change.deletions:
            if deleted.key == key:
                record = deleted
    return record


def resolve(emulator: Emulator, name: str, type_: str, location: str | None = None, at: float | None = None) -> Resolution:
    """What ``name`` answers now (or at the time ``at``, for the world as it is)."""
    fqdn = (name if name.endswith(".") else name + ".").lower()
    zones = [z for z in emulator.world.zones.values() if fqdn == z.dns_name or fqdn.endswith("." + z.dns_name)]
    if not zones:
        return Resolution(fqdn, type_, zone=None, record=None)
    zone = max(zones, key=lambda z: len(z.dns_name))
    index = ZoneIndex.of(zone)
    pending = index.pending(emulator.now() if at is None else at)
    record = served_record(index, (fqdn, type_), pending)
    if record is None:
        types = index.types.get(fqdn, set()) | {r.type for c in pending for r in (*c.additions, *c.deletions) if r.name == fqdn}
        exists = any(served_record(index, (fqdn, other), pending) is not None for other in types)
        return Resolution(fqdn, type_, zone=zone, record=None, name_exists=exists)
    if record.routing_policy is None:
        return Resolution(fqdn, type_, zone=zone, record=record, rrdatas=list(record.rrdatas), name_exists=True)
    chosen = answer(record.routing_policy, location=location, down=down_addresses(emulator))
    rrdatas = chosen.pop("rrdatas")
    return Resolution(fqdn, type_, zone=zone, record=record, rrdatas=rrdatas, policy=chosen, name_exists=True)
