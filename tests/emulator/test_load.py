"""The simulated load is counted lazily (``emulator/load.py``) but must count exactly what
counting every service before every call counts. A seeded run of drains, resizes, DNS changes,
outages, injected faults, regional quota limits and a reset on a generated topology, on a clock the test moves,
compares it after every call with that definition."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emulator.app import create_app
from emulator.core import Emulator
from emulator.generate import ZONE_NAME, generate_topology, validated
from emulator.load import REQUESTS_PER_SECOND, SimulatedLoad, observe
from emulator.resolver import resolve
from emulator.state import RecordSet, Zone
from evac.topology import Topology

SERVICES = 6
REGIONS = ("europe-west1", "us-central1")
PROJECT = "evac-gen"


@dataclass
class EveryCallCount:
    """The definition: before every call, the whole topology counted from the previous call,
    split at every warm-up and DNS change completion in between."""

    emulator: Emulator
    since: float
    requests: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    errors: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def advance(self) -> None:
        now = self.emulator.now()
        if now <= self.since:
            return
        world = self.emulator.world
        marks = {i.ready_at for g in world.groups.values() for i in g.instances}
        marks |= {c.done_at for z in world.zones.values() for c in z.changes if c.done_at is not None}
        start = self.since
        for end in [*sorted(m for m in marks if self.since < m < now), now]:
            for entry in observe(self.emulator, (start + end) / 2):
                key = (entry.service, entry.region)
                self.requests[key] += REQUESTS_PER_SECOND * (end - start) * (entry.share + entry.failing)
                self.errors[key] += REQUESTS_PER_SECOND * (end - start) * entry.failing
            start = end
        self.since = now


def served_record_sets(zone: Zone, now: float) -> dict[tuple[str, str], RecordSet]:
    """The definition of what a zone serves: its record sets with every change not yet done
    undone, newest first."""
    records = {r.key: r for r in zone.rrsets}
    for change in reversed(zone.changes):
        if change.status(now) == "done":
            continue
        for added in change.additions:
            records.pop(added.key, None)
        for deleted in change.deletions:
            records[deleted.key] = deleted
    return records


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    client: httpx.AsyncClient
    clock: Clock
    load: SimulatedLoad
    definition: EveryCallCount
    answered: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call, the definition counted just before it as the emulator counts its load."""
        self.definition.advance()
        response = await self.client.request(method, path, **kwargs)
        self.answered[response.status_code < 400] += 1
        is_json = response.headers["content-type"].startswith("application/json")
        return response.json() if response.status_code < 400 and is_json else None

    def assert_same_answers(self) -> None:
        """Every record, now and just before and when each recent or pending change is done,
        answers as defined."""
        emulator = self.load.emulator
        zone = emulator.world.zones[ZONE_NAME]
        recent = [t for c in zone.changes if (t := c.done_at) is not None and t > self.clock.now - 2]
        for moment in {self.clock.now, *(t + d for t in recent for d in (-1e-3, 0.0))}:
            served = served_record_sets(zone, moment)
            for service in emulator.topology.services.values():
                found = resolve(emulator, service.dns.record, "A", at=moment)
                defined = served.get((service.dns.record, "A"))
                assert found.record == defined
                if defined is not None and defined.routing_policy is None:
                    assert found.rrdatas == defined.rrdatas
                missing = resolve(emulator, service.dns.record, "AAAA", at=moment)
                assert missing.record is None and missing.name_exists == (defined is not None)

    def assert_same_counts(self) -> None:
        keys = {(name, region) for name, s in self.load.emulator.topology.services.items() for region in s.regions}
        for counted, defined in ((self.load.requests, self.definition.requests), (self.load.errors, self.definition.errors)):
            assert {k: counted.get(k, 0.0) for k in keys} == pytest.approx(
                {k: defined.get(k, 0.0) for k in keys}, rel=1e-9, abs=1e-9
            )


def _topology(scope: str) -> Topology:
    """A generated topology; ``regional``: a regional backend service per region, so that DNS
    decides where the requests go."""
    document = generate_topology(SERVICES, REGIONS)
    if scope == "regional":
        for name, service in document["services"].items():
            for region, binding in service["regions"].items():
                binding |= {"backend_service": f"{name}-{region}", "backend_service_scope": "regional"}
    return validated(document)


@pytest.fixture(params=["global", "regional"])
async def run(request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    clock = Clock()
    app = create_app(_topology(request.param), operation_delay=1.0, warmup=2.0, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator") as client:
        yield Run(client, clock, app.state.load, EveryCallCount(app.state.emulator, since=clock.now))


async def _drain(run: Run, rng: random.Random, service: str) -> None:
    region = rng.choice(REGIONS)
    binding = run.load.emulator.topology.services[service].regions[region]
    where = f"regions/{region}" if binding.backend_service_scope == "regional" else "global"
    path = f"/compute/v1/projects/{PROJECT}/{where}/backendServices/{binding.backend_service}"
    current = await run.call("GET", path)
    backends = current["backends"]
    backends[rng.randrange(len(backends))]["capacityScaler"] = rng.choice([0.0, 0.5, 1.0])
    await run.call("PATCH", path, json={"backends": backends})


async def _resize(run: Run, rng: random.Random, service: str) -> None:
    region = rng.choice(REGIONS)
    path = f"/compute/v1/projects/{PROJECT}/regions/{region}/instanceGroupManagers/{service}-{region}/resize"
    await run.call("POST", path, params={"size": rng.randrange(4)})


async def _point_dns(run: Run, rng: random.Random, service: str) -> None:
    """Point the service's record at one region, or at a failover policy between two."""
    addresses = [b.address for b in run.load.emulator.topology.services[service].regions.values()]
    rng.shuffle(addresses)
    zone = f"/dns/v1/projects/{PROJECT}/managedZones/{ZONE_NAME}"
    current = await run.call("GET", f"{zone}/rrsets/{service}.gen.example.com./A")
    if current is None:
        return
    current.pop("kind")
    wanted = {key: value for key, value in current.items() if key not in ("rrdatas", "routingPolicy")}
    if rng.random() < 0.5:
        wanted["rrdatas"] = addresses[:1]
    else:
        backup = {"items": [{"location": REGIONS[0], "rrdatas": addresses[1:]}]}
        wanted["routingPolicy"] = {
            "primaryBackup": {"primaryTargets": {"externalEndpoints": addresses[:1]}, "backupGeoTargets": backup}
        }
    await run.call("POST", f"{zone}/changes", json={"deletions": [current], "additions": [wanted]})


async def _outage(run: Run, rng: random.Random, service: str) -> None:
    await run.call("POST", f"/emulator/v1/regions/{rng.choice(REGIONS)}/{rng.choice(['outage', 'recover'])}")


async def _fault(run: Run, rng: random.Random, service: str) -> None:
    spec = rng.choice(
        [
            {"path": "*/changes", "operation": "never_done", "count": 1},
            {"path": "*/resize", "operation": "error", "count": 1},
            {"path": "*/backendServices/*", "method": "PATCH", "operation": "never_done", "count": 1},
        ]
    )
    await run.call("POST", "/emulator/v1/faults", json=spec)


async def _region_quota(run: Run, rng: random.Random, service: str) -> None:
    """A limit that often binds (a region starts with 9 instances): resizes then leave
    instances waiting, and a raised limit or a shrink creates them."""
    limit = rng.choice([None, 6, 9, 12])
    await run.call("PUT", f"/emulator/v1/regions/{rng.choice(REGIONS)}/quotas", json={"INSTANCES": limit})


async def _look(run: Run, rng: random.Random, service: str) -> None:
    await run.call("GET", f"/emulator/v1/traffic/{service}")


async def _reset(run: Run, rng: random.Random, service: str) -> None:
    if rng.random() < 0.2:
        await run.call("POST", "/emulator/v1/reset")


ACTIONS: list[Callable[[Run, random.Random, str], Awaitable[None]]] = [
    _drain,
    _drain,
    _resize,
    _resize,
    _resize,
    _point_dns,
    _point_dns,
    _outage,
    _outage,
    _fault,
    _region_quota,
    _look,
    _reset,
]


async def test_the_lazy_count_is_the_count_before_every_call(run: Run) -> None:
    rng = random.Random(12)
    for _ in range(150):
        run.clock.now += rng.choice([0.0, 0.1, 0.4, 0.5, 1.0, 1.7, 2.5])
        await rng.choice(ACTIONS)(run, rng, f"svc-{rng.randrange(SERVICES):04d}")
        run.assert_same_counts()
        run.assert_same_answers()
    run.clock.now += 3.0
    await run.call("GET", "/metrics")
    run.assert_same_counts()
    # The run did change the world (most calls were taken) and exercised both counters.
    assert run.answered[True] > 3 * run.answered[False]
    assert sum(run.definition.errors.values()) > 100
    assert sum(run.definition.requests.values()) > sum(run.definition.errors.values())
