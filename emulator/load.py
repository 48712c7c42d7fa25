"""Simulated clients: what each service of the topology looks like from outside, per region,
and a steady load of requests counted as served or failed.

Every service receives ``REQUESTS_PER_SECOND`` requests a second. Clients follow the
service's DNS record as it resolves at that moment (a DNS change counts once it is done):
the requests go, in equal parts, to the backend services of the regions whose address the
record answers (for a global backend service that is the same one whichever region DNS
names; an answer naming none of the service's addresses sends them to the primary region's).
A backend service spreads its requests between regions as ``/emulator/v1/traffic`` shows
(``capacityScaler × healthy instances``). When none of its backends can take traffic (every
region drained, in an outage or still warming up), the load balancer answers every request
with an error: those requests count against the regions it would send them to by capacity
(``capacityScaler × instances``; equally, when that is 0 everywhere) — so a region in an
outage that still holds its share of the capacity collects the errors.

The counters are exact, not sampled: before every call the emulator serves, the time since
the previous call is counted with the world as it was, split at the moments an instance
finished warming up or a DNS change became done in between.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from emulator.core import Emulator
from emulator.resolver import ZoneIndex, resolve
from emulator.state import HEALTHY, BackendService, ManagedGroup, RecordSet, World, Zone
from emulator.traffic import split
from evac.topology import ServiceTopology, gcp_regions

REQUESTS_PER_SECOND = 10.0
"""The simulated load of every service."""


@dataclass(frozen=True)
class ServiceRegion:
    """One service in one region, as its clients and a prober see it at one moment."""

    service: str
    region: str
    backends: int
    """Instances of the service's instance group in the region."""
    healthy_backends: int
    capacity_scaler: float
    """Of the region's backend in the service's backend service (0 when it has none)."""
    share: float
    """Share of the service's requests the region serves."""
    failing: float
    """Share of the service's requests answered with an error, counted against the region."""

    @property
    def serving(self) -> bool:
        """Whether a request sent to the region now would be answered: a healthy instance."""
        return self.healthy_backends > 0


def observe(emulator: Emulator, at: float) -> list[ServiceRegion]:
    """Every service in every region of the topology, at the time ``at``."""
    return [entry for name, service in emulator.topology.services.items() for entry in _service(emulator, name, service, at)]


def observe_one(emulator: Emulator, service: str, region: str, at: float) -> ServiceRegion | None:
    """One service in one region; None when the topology has no such pair."""
    topology = emulator.topology.services.get(service)
    if topology is None or region not in topology.regions:
        return None
    return next(entry for entry in _service(emulator, service, topology, at) if entry.region == region)


def _backend_service(emulator: Emulator, service: ServiceTopology, region: str) -> BackendService | None:
    binding = gcp_regions(service).get(region)
    if binding is None:
        return None
    if binding.backend_service_scope == "regional":
        return emulator.world.region_backend_services.get(f"{region}/{binding.backend_service}")
    return emulator.world.backend_services.get(binding.backend_service)


def _service(emulator: Emulator, name: str, service: ServiceTopology, at: float) -> list[ServiceRegion]:
    world = emulator.world
    share: dict[str, float] = defaultdict(float)
    failing: dict[str, float] = defaultdict(float)
    for part, entry in _entries(emulator, service, at):
        regions = split(world, entry, at)
        served = {region: s.capacity_scaler * s.healthy_instances for region, s in regions.items()}
        capacity = {region: s.capacity_scaler * s.instances for region, s in regions.items()}
        if sum(served.values()) > 0:
            weights, into = served, share
        elif sum(capacity.values()) > 0:
            weights, into = capacity, failing
        else:
            weights, into = dict.fromkeys(regions, 1.0), failing
        total = sum(weights.values())
        for region, weight in weights.items():
            into[region] += part * weight / total
    found: list[ServiceRegion] = []
    for region, binding in gcp_regions(service).items():
        group = world.groups.get(f"{binding.instance_group_zone or region}/{binding.instance_group}")
        instances = group.instances if group is not None else []
        healthy = sum(1 for i in instances if group is not None and world.instance_health(group, i, at) == HEALTHY)
        backend_service = _backend_service(emulator, service, region)
        url = binding.group_url(world.project, region)
        scaler = next((b.capacity_scaler for b in backend_service.backends if b.group == url), 0.0) if backend_service else 0.0
        found.append(ServiceRegion(name, region, len(instances), healthy, scaler, share[region], failing[region]))
    return found


def _entries(emulator: Emulator, service: ServiceTopology, at: float) -> list[tuple[float, BackendService]]:
    """The backend services the service's clients reach (by its DNS record), each with its part."""
    answer = set(resolve(emulator, service.dns.record, service.dns.type, at=at).rrdatas)
    regions = [region for region, binding in service.regions.items() if binding.address in answer] or [service.primary_region]
    entries: list[BackendService] = []
    for region in regions:
        backend_service = _backend_service(emulator, service, region)
        if backend_service is not None and all(backend_service is not e for e in entries):
            entries.append(backend_service)
    return [(1 / len(entries), entry) for entry in entries]


@dataclass
class _Timeline:
    """One service's load from ``start`` on, as long as the world it depends on stays as it was
    when the timeline was made: its rates are constant between two ``bounds`` (the moments an
    instance it reaches finishes warming up or a change of its DNS record is done)."""

    bounds: list[float]
    """Ascending, all later than the timeline's start."""
    rates: list[list[tuple[str, float, float]]]
    """Per stretch (start → first bound, …, last bound → on): (region, share + failing, failing)."""
    links: set[str]
    """Self links of the backend services and instance groups it depends on."""
    counted: float
    """Counted up to this moment."""

    def count_until(
        self, until: float, service: str, requests: dict[tuple[str, str], float], errors: dict[tuple[str, str], float]
    ) -> None:
        start = self.counted
        stretch = bisect.bisect_right(self.bounds, start)
        while start < until:
            end = min(self.bounds[stretch], until) if stretch < len(self.bounds) else until
            seconds = end - start
            for region, sent, failing in self.rates[stretch]:
                key = (service, region)
                requests[key] += REQUESTS_PER_SECOND * seconds * sent
                errors[key] += REQUESTS_PER_SECOND * seconds * failing
            start = end
            stretch += 1
        self.counted = max(self.counted, until)


@dataclass(frozen=True)
class _Seen:
    """What ``advance()`` compares to find the calls that changed the world."""

    world: World
    outages: tuple[str, ...]
    operations: int
    zones: tuple[tuple[list[RecordSet], int], ...]
    """Each zone's record-set list and number of changes."""
    filled: int
    """How many times a group got instances because room appeared in its region's quota."""

    @classmethod
    def of(cls, world: World) -> _Seen:
        zones = tuple((z.rrsets, len(z.changes)) for z in world.zones.values())
        return cls(world, tuple(world.outages), len(world.operations), zones, len(world.filled()))

    def same(self, other: _Seen) -> bool:
        return (
            self.world is other.world
            and self.outages == other.outages
            and self.operations == other.operations
            and self.filled == other.filled
            and len(self.zones) == len(other.zones)
            and all(a[0] is b[0] and a[1] == b[1] for a, b in zip(self.zones, other.zones, strict=True))
        )


@dataclass
class SimulatedLoad:
    """The requests and errors every service has had, per region, since the emulator started.

    Counted lazily, but with the same result as counting every service before every call:
    ``advance()`` (before every call) only finds which services the calls since the previous
    one changed — by the Compute operations they started (their target), the groups that got
    instances when room appeared in their region's quota, the DNS changes they made (their
    record sets), an outage, a reset — and closes those services' counts at the
    previous call, with the world as it was then; the other services' rates have not changed.
    Reading ``requests`` or ``errors`` brings every service's count up to the latest ``advance()``.
    """

    emulator: Emulator
    since: float
    _requests: dict[tuple[str, str], float] = field(init=False, default_factory=lambda: defaultdict(float))
    _errors: dict[tuple[str, str], float] = field(init=False, default_factory=lambda: defaultdict(float))
    _counted: float = field(init=False)
    """Every service is counted up to this moment."""
    _timelines: dict[str, _Timeline] = field(init=False, default_factory=dict)
    _by_link: dict[str, set[str]] = field(init=False, default_factory=lambda: defaultdict(set))
    """Services by the self link of each backend service and instance group they depend on."""
    _by_record: dict[tuple[str, str], set[str]] = field(init=False, default_factory=lambda: defaultdict(set))
    """Services by their DNS record (lower-case name, type)."""
    _seen: _Seen = field(init=False)

    def __post_init__(self) -> None:
        for name, service in self.emulator.topology.services.items():
            self._by_record[(_fqdn(service.dns.record), service.dns.type)].add(name)
        self._counted = self.since
        self._seen = _Seen.of(self.emulator.world)
        self._restart(set(self.emulator.topology.services))

    @property
    def requests(self) -> dict[tuple[str, str], float]:
        """Requests per (service, region), up to the latest ``advance()``."""
        self._count_all()
        return self._requests

    @property
    def errors(self) -> dict[tuple[str, str], float]:
        """Errors per (service, region), up to the latest ``advance()``."""
        self._count_all()
        return self._errors

    def advance(self) -> None:
        """Count the requests from ``since`` to now, with the world as it has been meanwhile."""
        now = self.emulator.now()
        if now <= self.since:
            return
        changed = self._changed()
        if changed:
            self._restart(changed)
        self.since = now

    def _count_all(self) -> None:
        if self._counted < self.since:
            for name, timeline in self._timelines.items():
                timeline.count_until(self.since, name, self._requests, self._errors)
            self._counted = self.since

    def _changed(self) -> set[str]:
        """The services whose world the calls since the previous ``advance()`` may have changed."""
        seen, now = self._seen, _Seen.of(self.emulator.world)
        if seen.same(now):
            return set()
        self._seen = now
        everything = set(self.emulator.topology.services)
        if seen.world is not now.world or seen.outages != now.outages or seen.operations > now.operations:
            return everything
        if len(seen.zones) != len(now.zones):
            return everything
        changed: set[str] = set()
        for op in itertools.islice(reversed(now.world.operations.values()), now.operations - seen.operations):
            changed |= self._by_link.get(op.target_link, set())
        for link in now.world.filled()[seen.filled : now.filled]:
            changed |= self._by_link.get(link, set())
        for zone, (rrsets_before, count_before), (rrsets_now, count_now) in zip(
            now.world.zones.values(), seen.zones, now.zones, strict=True
        ):
            if count_now < count_before or (rrsets_now is not rrsets_before and count_now == count_before):
                return everything  # not a change the API makes: look at every service
            for change in zone.changes[count_before:count_now]:
                for record in (*change.additions, *change.deletions):
                    changed |= self._by_record.get((_fqdn(record.name), record.type), set())
        return changed

    def _restart(self, services: set[str]) -> None:
        """Close the services' counts at ``since`` and count on with the world as it is now."""
        topology = self.emulator.topology
        for name in sorted(services):
            old = self._timelines.get(name)
            if old is not None:
                old.count_until(self.since, name, self._requests, self._errors)
                for link in old.links:
                    self._by_link[link].discard(name)
            timeline = self._timeline(name, topology.services[name], self.since)
            self._timelines[name] = timeline
            for link in timeline.links:
                self._by_link[link].add(name)

    def _timeline(self, name: str, service: ServiceTopology, start: float) -> _Timeline:
        """The service's load from ``start`` on, with the world as it is now."""
        emulator, world = self.emulator, self.emulator.world
        groups: dict[int, ManagedGroup] = {}
        links: set[str] = set()
        for region, binding in gcp_regions(service).items():
            group = world.groups.get(f"{binding.instance_group_zone or region}/{binding.instance_group}")
            backend_service = _backend_service(emulator, service, region)
            reached = [world.group_by_url(b.group) for b in backend_service.backends] if backend_service else []
            if backend_service is not None:
                links.add(backend_service.self_link)
            for found in (group, *reached):
                if found is not None:
                    groups[id(found)] = found
                    links.add(found.self_link(world.project))
        marks = {i.ready_at for group in groups.values() for i in group.instances if i.ready_at > start}
        zone, record = _zone(emulator, service.dns.record), (_fqdn(service.dns.record), service.dns.type)
        for change in ZoneIndex.of(zone).pending(start) if zone is not None else []:
            touched = {(_fqdn(r.name), r.type) for r in (*change.additions, *change.deletions)}
            if change.done_at is not None and record in touched:
                marks.add(change.done_at)
        bounds = sorted(marks)
        rates = []
        for stretch in range(len(bounds) + 1):
            low = start if stretch == 0 else bounds[stretch - 1]
            at = (low + bounds[stretch]) / 2 if stretch < len(bounds) else low + 1.0
            rates.append([(e.region, e.share + e.failing, e.failing) for e in _service(emulator, name, service, at)])
        return _Timeline(bounds=bounds, rates=rates, links=links, counted=start)


def _fqdn(name: str) -> str:
    return (name if name.endswith(".") else name + ".").lower()


def _zone(emulator: Emulator, record: str) -> Zone | None:
    """The managed zone that answers for ``record`` (the most specific one)."""
    fqdn = _fqdn(record)
    zones = [z for z in emulator.world.zones.values() if fqdn == z.dns_name or fqdn.endswith("." + z.dns_name)]
    return max(zones, key=lambda z: len(z.dns_name)) if zones else None
