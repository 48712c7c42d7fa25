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

from collections import defaultdict
from dataclasses import dataclass, field

from emulator.core import Emulator
from emulator.resolver import resolve
from emulator.state import HEALTHY, BackendService
from emulator.traffic import split
from evac.topology import ServiceTopology

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
    binding = service.regions[region]
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
    for region, binding in service.regions.items():
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
class SimulatedLoad:
    """The requests and errors every service has had, per region, since the emulator started."""

    emulator: Emulator
    since: float
    requests: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    errors: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def advance(self) -> None:
        """Count the requests from ``since`` to now, with the world as it has been meanwhile."""
        now = self.emulator.now()
        if now <= self.since:
            return
        world = self.emulator.world
        marks = {i.ready_at for g in world.groups.values() for i in g.instances}
        marks |= {c.done_at for z in world.zones.values() for c in z.changes if c.done_at is not None}
        start = self.since
        for end in [*sorted(m for m in marks if self.since < m < now), now]:
            seconds = end - start
            for entry in observe(self.emulator, (start + end) / 2):
                key = (entry.service, entry.region)
                self.requests[key] += REQUESTS_PER_SECOND * seconds * (entry.share + entry.failing)
                self.errors[key] += REQUESTS_PER_SECOND * seconds * entry.failing
            start = end
        self.since = now
