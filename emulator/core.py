"""The running emulator: the world, its settings, the clock, and the lookups every route shares."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from fastapi import Request

from emulator.errors import invalid, not_found
from emulator.faults import FaultBook, operation_effect, operation_fault
from emulator.persistence import StateStore, StateWriter
from emulator.quota import CallLatency, WriteQuota
from emulator.requestlog import RequestLog
from emulator.seed import seed_world
from emulator.state import BackendService, HealthCheck, ManagedGroup, Operation, World, Zone, location_path
from evac.topology import QuotaMetric, Topology


@dataclass(frozen=True)
class Settings:
    operation_delay: float = 0.5
    """Seconds an operation (or DNS change) takes to go from PENDING to DONE."""
    warmup: float = 2.0
    """Seconds a new instance takes to become RUNNING and HEALTHY."""
    wait_deadline: float = 120.0
    """The longest ``operations.wait`` blocks before answering with a not-yet-DONE operation
    (Google: "about 2 minutes")."""
    write_quota_per_second: int | None = None
    """Most mutating API calls accepted in any 1-second window at start (None: unlimited)."""
    write_quota_per_minute: int | None = None
    """Most mutating API calls accepted in any 60-second window at start (None: unlimited)."""
    call_latency: float = 0.0
    """Seconds added before answering every Compute and DNS call at start."""


@dataclass
class Emulator:
    topology: Topology
    world: World
    settings: Settings
    store: StateStore | None = None
    clock: Callable[[], float] = time.time
    requests: RequestLog = field(default_factory=RequestLog)
    faults: FaultBook = field(default_factory=FaultBook)
    writer: StateWriter | None = field(init=False, default=None)
    quota: WriteQuota = field(init=False)
    latency: CallLatency = field(init=False)

    def __post_init__(self) -> None:
        if self.store is not None:
            self.writer = StateWriter(self.store, lambda: self.world)
        self.quota = WriteQuota(self.world.project)
        self.latency = CallLatency()
        self._limits_as_started()

    def _limits_as_started(self) -> None:
        """The write quota and call latency the emulator was started with, counts at zero."""
        s = self.settings
        self.quota.set(s.write_quota_per_second, s.write_quota_per_minute)
        self.quota.clear_counts()
        self.latency.read = self.latency.write = s.call_latency

    def now(self) -> float:
        return self.clock()

    def save_now(self) -> None:
        """Write the state file from this thread (before serving)."""
        if self.store is not None:
            self.store.save(self.world)

    async def save(self) -> None:
        """Write the state file without blocking the event loop; returns once it holds the
        world as it is now (or newer)."""
        if self.writer is not None:
            await self.writer.save()

    def reset(self) -> None:
        """Back to the world the topology seeds, with no faults, an empty request log, and
        the write quota and call latency it was started with.
        (The route that calls it saves the state file, as after every admin change.)"""
        self.world = seed_world(self.topology, self.now())
        self.requests.clear()
        self.faults.clear()
        self.faults.last_id = 0  # fault ids start again at fault-1, as in a fresh emulator
        self._limits_as_started()

    def set_region_quotas(self, region: str, limits: Mapping[QuotaMetric, int | None]) -> None:
        """Replace the region's quota limits: a metric not given (or None) gets the limit the
        world was seeded with. Instances waiting for room are created if there is room now."""
        seeded = self.topology.emulator.region_quotas.get(region, {})
        chosen = {**seeded, **{metric: limit for metric, limit in limits.items() if limit is not None}}
        if chosen:
            self.world.region_quotas[region] = chosen
        else:
            self.world.region_quotas.pop(region, None)
        self.world.make_room(region, now=self.now(), warmup=self.settings.warmup)

    def check_project(self, project: str) -> None:
        if project != self.world.project:
            raise not_found(f"projects/{project}")

    # Google APIs address a resource by its name or by its numeric id.

    def backend_service(self, project: str, name: str, region: str | None = None) -> BackendService:
        """A global backend service, or (``region`` given) a regional one of that region."""
        self.check_project(project)
        service = _by_name_or_id(self.backend_services(region), name)
        if service is None:
            raise not_found(f"projects/{project}/{location_path(region)}/backendServices/{name}")
        return service

    def backend_services(self, region: str | None) -> list[BackendService]:
        """The global backend services, or the regional ones of ``region``."""
        if region is None:
            return list(self.world.backend_services.values())
        return [s for key, s in self.world.region_backend_services.items() if key.startswith(f"{region}/")]

    def health_checks(self, region: str | None) -> list[HealthCheck]:
        """The global health checks, or the regional ones of ``region``."""
        return [check for check in self.world.health_checks.values() if check.region == region]

    def health_check(self, project: str, name: str, region: str | None = None) -> HealthCheck:
        self.check_project(project)
        check = _by_name_or_id(self.health_checks(region), name)
        if check is None:
            raise not_found(f"projects/{project}/{location_path(region)}/healthChecks/{name}")
        return check

    def groups(self, region: str | None = None, zone: str | None = None) -> list[ManagedGroup]:
        """The regional managed instance groups of ``region``, or the zonal ones of ``zone``."""
        if zone is not None:
            return [g for g in self.world.groups.values() if g.zone == zone]
        return [g for g in self.world.groups.values() if g.zone is None and g.region == region]

    def group(self, project: str, name: str, *, region: str | None = None, zone: str | None = None) -> ManagedGroup:
        """A regional (``region``) or zonal (``zone``) managed instance group."""
        self.check_project(project)
        group = _by_name_or_id(self.groups(region, zone), name)
        if group is None:
            raise not_found(f"projects/{project}/{location_path(region, zone)}/instanceGroupManagers/{name}")
        return group

    def zone(self, project: str, name: str) -> Zone:
        self.check_project(project)
        zone = _by_name_or_id(self.world.zones.values(), name)
        if zone is None:
            raise not_found(f"projects/{project}/managedZones/{name}")
        return zone

    def operation(self, project: str, name: str, *, region: str | None = None, zone: str | None = None) -> Operation:
        """A global operation, or a regional (``region``) or zonal (``zone``) one."""
        self.check_project(project)
        op = self.world.operations.get(name)
        if op is None or (op.region, op.zone) != (region, zone):
            raise not_found(f"projects/{project}/{location_path(region, zone)}/operations/{name}")
        return op

    def earlier_operation(self, request_id: str | None) -> Operation | None:
        """The operation an earlier call with this requestId started, if any.

        Compute Engine requires the id to be a UUID other than the zero UUID."""
        if request_id is None:
            return None
        try:
            parsed = uuid.UUID(request_id)
        except ValueError:
            parsed = None
        if parsed is None or parsed.int == 0:
            raise invalid(
                f"Invalid value for field 'requestId': '{request_id}'. "
                "The request ID must be a valid UUID with the exception that zero UUID is not supported."
            )
        name = self.world.request_ids.get(request_id)
        return self.world.operations[name] if name else None

    def mutate(
        self,
        request: Request,
        apply: Callable[[], None],
        *,
        operation_type: str,
        target_link: str,
        target_id: int,
        region: str | None,
        request_id: str | None,
        zone: str | None = None,
    ) -> Operation:
        """Apply a checked mutation and start its operation.

        An injected ``error`` fault leaves the world untouched and fails the operation;
        a ``never_done`` fault applies the change but the operation never completes."""
        fault = operation_fault(request)
        if fault is None or fault.outcome != "error":
            apply()
        request.state.effect = operation_effect(fault)
        now = self.now()
        op = Operation(
            id=self.world.next_id(),
            name=f"operation-{int(now * 1000)}-{secrets.token_hex(6)}",
            operation_type=operation_type,
            target_link=target_link,
            target_id=target_id,
            region=region,
            zone=zone,
            request_id=request_id,
            insert_time=now,
            duration=self.settings.operation_delay,
            failure=fault.outcome if fault else None,
            error_code=fault.error_code if fault else None,
            fault_id=fault.fault_id if fault else None,
        )
        self.world.operations[op.name] = op
        if request_id is not None:
            self.world.request_ids[request_id] = op.name
        return op


class _Named(Protocol):
    name: str
    id: int


N = TypeVar("N", bound=_Named)


def _by_name_or_id(resources: Iterable[N], name_or_id: str) -> N | None:
    return next((r for r in resources if name_or_id in (r.name, str(r.id))), None)


def get_emulator(request: Request) -> Emulator:
    """FastAPI dependency: the emulator the app was created with."""
    emulator: Emulator = request.app.state.emulator
    return emulator
