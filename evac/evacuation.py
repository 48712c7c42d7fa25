"""A region evacuation: every service a topology places in a region fails over, each as its own
``FailoverWorkflow`` run (workflow id ``failover/<service>``: the same lock as a manual failover),
started by one ``EvacuationWorkflow`` (id ``evacuation/<region>``).

This module is the data and the pure decisions: the input (services in groups, in order), the
live record (``progress`` query; the evacuation's result), the plan each service runs (capacity
before traffic: scale the target, wait for it, then drain and shift DNS), the sizing of each
target and the choice by headroom (``--auto-target``), and what a fail-back restores. No I/O.

- **Groups:** the topology's ``tiers`` in order, each with its services; services with no tier
  leave last. Groups go one after another; services within a group in parallel, at most
  ``window`` runs at a time (a sliding window: a finished run frees its slot at once).
- **Partial failure:** a service that cannot fail over is recorded (its own run rolled its
  changes back) and the others go on; the evacuation ends ``completed_with_failures``.
- **Abort:** no new run starts, the runs in flight are aborted (each rolls back its own
  changes); finished services stay failed over unless ``rollback_all`` asks to fail them back.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from evac import bindings
from evac.plan import DrainStep, Guards, Plan, Retries, ScaleTargetStep, ShiftDnsStep, Step, VerifyHealthStep
from evac.resources import (
    AnyBackendRef,
    AnyDnsRecordRef,
    AnyGroupRef,
    HealthReport,
    ResourceState,
    StepContext,
)
from evac.runs import StepRecord, StepStatus, Trigger
from evac.topology import ServiceTopology, Topology

EVACUATION_PREFIX = "evacuation/"
DRY_RUN_EVACUATION_PREFIX = "dry-run/evacuation/"
FAILBACK_PREFIX = "failback/"
# Services with no tier leave in this last group.
UNTIERED = "untiered"
# Runs in flight at once, by default; each holds one service and a few activity slots.
DEFAULT_WINDOW = 50
MAX_WINDOW = 500
# Most services one evacuation takes: its input (each service's slice of the topology) and its
# record must each fit Temporal's 2 MB payload limit (2,000 services: about 1.3 MB each at most).
MAX_SERVICES = 2000
# Continue as new when the history passes this many events (Temporal's hard limit is 51,200 and
# it warns at 10,240): every run in flight adds a few events as it ends, so there is margin.
HISTORY_EVENTS_BEFORE_CONTINUE = 6000
# A target takes the load the region serves with times this (--capacity-ratio).
DEFAULT_CAPACITY_RATIO = 1.0
MAX_CAPACITY_RATIO = 10.0


def evacuation_workflow_id(region: str) -> str:
    """One evacuation of a region at a time."""
    return f"{EVACUATION_PREFIX}{region}"


def dry_run_evacuation_id(region: str, token: str) -> str:
    return f"{DRY_RUN_EVACUATION_PREFIX}{region}/{token}"


def failback_workflow_id(of: str) -> str:
    """The fail-back of a finished evacuation or failover (``of``: its workflow id): one at a time."""
    return f"{FAILBACK_PREFIX}{of}"


def is_evacuation_id(workflow_id: str) -> bool:
    """An EvacuationWorkflow's id: an evacuation, its dry run, or a fail-back (one restores the
    before-states a finished evacuation or failover recorded)."""
    return workflow_id.startswith((EVACUATION_PREFIX, DRY_RUN_EVACUATION_PREFIX, FAILBACK_PREFIX))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvacService(_Model):
    """One service to evacuate: its slice of the topology, as it was at start."""

    name: str
    topology: ServiceTopology


class EvacGroup(_Model):
    name: str
    services: list[EvacService]


class EvacuationInput(_Model):
    region: str = Field(description="The region every service leaves")
    target: str | None = Field(description="Where every service goes; None: per service, the best healthy region")
    project: str
    groups: list[EvacGroup] = Field(description="In order; services within a group leave in parallel")
    trigger: Trigger
    window: int = Field(default=DEFAULT_WINDOW, ge=1, le=MAX_WINDOW, description="Most runs in flight at once")
    dry_run: bool = False
    guards: Guards = Field(default_factory=Guards)
    retries: Retries = Field(default_factory=Retries)
    history_events_before_continue: int = Field(default=HISTORY_EVENTS_BEFORE_CONTINUE, ge=50)
    failback_of: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A fail-back: the finished evacuation or failover (workflow id and run) whose recorded "
        "before-states it restores; the record of its services is the run's second argument",
    )
    force: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="A fail-back: restore a service even when the region it returns to is not healthy",
    )
    capacity_ratio: float = Field(
        default=DEFAULT_CAPACITY_RATIO,
        ge=0.0,
        le=MAX_CAPACITY_RATIO,
        description="Each target must have this share of the healthy backends serving in the region before its "
        "drain (a service's topology capacity_ratio overrides it)",
    )

    def service_names(self) -> list[str]:
        return [s.name for g in self.groups for s in g.services]


class ServiceStatus(StrEnum):
    WAITING = "waiting"  # not started yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # failed over
    FAILED = "failed"  # could not fail over; its own run rolled its changes back (or says what it left)
    ABORTED = "aborted"  # in flight when the evacuation was aborted; its run rolled back
    NOT_STARTED = "not_started"  # the evacuation was aborted before it started
    FAILED_BACK = "failed_back"  # failed over, then failed back by an abort with rollback_all
    FAILBACK_FAILED = "failback_failed"  # rollback_all tried to fail it back and could not

    @property
    def finished(self) -> bool:
        return self not in (ServiceStatus.WAITING, ServiceStatus.RUNNING)


class EvacuationStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    ABORTING = "aborting"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self not in (EvacuationStatus.RUNNING, EvacuationStatus.ABORTING)


class RecordedChange(_Model):
    """One change a finished run made: what a fail-back (abort with rollback_all) restores."""

    before: ResourceState
    after: ResourceState
    backend: AnyBackendRef | None = Field(
        default=None, exclude_if=lambda v: v is None, description="The backend whose capacity a drain changed"
    )
    record: AnyDnsRecordRef | None = Field(
        default=None, exclude_if=lambda v: v is None, description="The DNS record a shift changed"
    )
    group: AnyGroupRef | None = Field(
        default=None, exclude_if=lambda v: v is None, description="The target's group a scale-up resized"
    )

    @property
    def resource(self) -> str:
        return str(self.backend or self.record or self.group)


def _unset(value: object) -> bool:
    return value is None or value == "" or value == []


class EvacServiceRecord(_Model):
    """One service of the evacuation. Unset fields are left out of its JSON: a record holds up
    to 2,000 of these and must fit Temporal's payload limit."""

    service: str
    group: str
    status: ServiceStatus = ServiceStatus.WAITING
    target: str | None = Field(default=None, exclude_if=_unset)
    target_reason: str = Field(
        default="", exclude_if=_unset, description="Why this target (auto-target: the readings it chose by)"
    )
    capacity: str = Field(
        default="",
        exclude_if=_unset,
        description="The capacity its target needs before the drain, and what the target had, could reach and was scaled to",
    )
    workflow_id: str | None = Field(default=None, exclude_if=_unset)
    run_id: str | None = Field(default=None, exclude_if=_unset)
    started_at: datetime | None = Field(default=None, exclude_if=_unset)
    ended_at: datetime | None = Field(default=None, exclude_if=_unset)
    error: str | None = Field(default=None, exclude_if=_unset)
    left_changed: list[str] = Field(default_factory=list, exclude_if=_unset)
    changes: list[RecordedChange] = Field(default_factory=list, exclude_if=_unset)
    ungraceful: bool = Field(
        default=False, exclude_if=_unset, description="Its run went on without the region's own API (it did not answer)"
    )
    owed: list[str] = Field(
        default_factory=list, exclude_if=_unset, description="Changes its run skipped for want of the region's API: still to make"
    )


class EvacuationAbort(_Model):
    """``evac evacuate abort``: who, why, and whether finished services fail back too."""

    by: str
    reason: str
    rollback_all: bool = False


class EvacuationProgress(_Model):
    workflow_id: str
    region: str
    target: str | None = Field(description="None: chosen per service (auto-target)")
    trigger: Trigger
    dry_run: bool = False
    window: int
    status: EvacuationStatus = EvacuationStatus.RUNNING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    groups: list[str] = Field(default_factory=list, description="Group names, in the order they leave")
    current_group: str | None = None
    services: list[EvacServiceRecord] = Field(default_factory=list)
    abort: EvacuationAbort | None = None
    failback_of: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="A fail-back: what it fails back (workflow id and run)"
    )
    runs: int = Field(default=1, description="Workflow runs so far (continue-as-new starts another)")
    largest_history: int = Field(default=0, description="The most events any run of this evacuation had")
    peak_in_flight: int = 0

    @classmethod
    def for_input(cls, input: EvacuationInput, workflow_id: str, started_at: datetime | None = None) -> EvacuationProgress:
        """The record of an evacuation that has started nothing yet: every service waiting."""
        return cls(
            workflow_id=workflow_id,
            region=input.region,
            target=input.target,
            trigger=input.trigger,
            dry_run=input.dry_run,
            window=input.window,
            started_at=started_at,
            groups=[g.name for g in input.groups],
            services=[EvacServiceRecord(service=s.name, group=g.name) for g in input.groups for s in g.services],
        )

    # --- read-only views -----------------------------------------------------------------

    def counts(self, group: str | None = None) -> dict[ServiceStatus, int]:
        counted = Counter(r.status for r in self.services if group is None or r.group == group)
        return {status: counted.get(status, 0) for status in ServiceStatus}

    def in_flight(self) -> int:
        return sum(1 for r in self.services if r.status == ServiceStatus.RUNNING)

    def failed(self) -> list[EvacServiceRecord]:
        bad = (ServiceStatus.FAILED, ServiceStatus.FAILBACK_FAILED)
        return [r for r in self.services if r.status in bad]

    def eta_seconds(self, now: datetime) -> float | None:
        """Time left at the pace so far (finished services per second since the start)."""
        if self.started_at is None or self.status.finished:
            return None
        finished = sum(1 for r in self.services if r.status.finished)
        left = len(self.services) - finished
        elapsed = (now - self.started_at).total_seconds()
        if finished == 0 or elapsed <= 0:
            return None
        return left * elapsed / finished

    @property
    def kind(self) -> str:
        return "fail-back" if self.failback_of else "evacuation"

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[s]} {s.value.replace('_', ' ')}" for s in ServiceStatus if c[s]]
        return f"{self.status.value}: " + ", ".join(parts)


# --- the plan each service runs --------------------------------------------------------

# How long a service's run waits for its target's capacity (new instances warming up) before
# it gives up, rolls its scale-up back and leaves the source serving.
CAPACITY_WAIT = timedelta(minutes=10)
CAPACITY_POLL = timedelta(seconds=5)
# What one plan step may scale a group to (ScaleTargetStep / VerifyHealthStep allow no more).
MAX_PLANNED_SIZE = 1000


class Sizing(_Model):
    """What one service's evacuation needs of its target, judged on the readings before it starts."""

    need: int = Field(description="Healthy backends the target must have before the source is drained")
    scale_to: int | None = Field(description="Resize the target's group to this first; None: it is big enough")
    verdict: str = Field(description="The numbers, in words")


def evacuation_steps(region: str, target: str, sizing: Sizing, *, drain: bool = True) -> list[Step]:
    """Capacity before traffic: scale the target up (if it is too small), wait until enough of
    it is healthy, then drain the region's backends and point DNS at the target. ``drain``
    False: the region's backend service is regional and has no other backend to take the
    traffic (Google refuses to drain its only backend to 0): the DNS shift moves it."""
    steps: list[Step] = []
    if sizing.scale_to is not None:
        steps.append(ScaleTargetStep(kind="scale_target", name=f"scale {target} to {sizing.scale_to}", min_size=sizing.scale_to))
    steps.append(
        VerifyHealthStep(
            kind="verify_health",
            name=f"capacity: {sizing.need} healthy in {target}",
            region=target,
            min_healthy=sizing.need,
            timeout=CAPACITY_WAIT,
            interval=CAPACITY_POLL,
        )
    )
    if drain:
        steps.append(DrainStep(kind="drain", name=f"drain {region}", region=region, capacity_scaler=0.0))
    steps.append(ShiftDnsStep(kind="shift_dns", name="shift DNS"))
    return steps


def service_plan(region: str, target: str, service: EvacService, sizing: Sizing, guards: Guards, retries: Retries) -> Plan:
    drain = service.topology.regions[region].drainable
    return Plan(
        name=f"evacuate-{region}",
        description=f"region evacuation of {region}: {sizing.verdict}"
        + ("" if drain else f"; DNS only: {region}'s regional backend service has no other backend to drain to"),
        services=[service.name],
        source=region,
        target=target,
        guards=guards,
        retries=retries,
        steps=evacuation_steps(region, target, sizing, drain=drain),
    )


def recorded_changes(project: str, topology: ServiceTopology, plan: Plan, steps: Sequence[StepRecord]) -> list[RecordedChange]:
    """What a finished run of ``plan`` changed, in order, with the resources: what a fail-back
    restores (newest first). Steps that changed nothing (or were skipped) are left out."""
    changes = []
    for step, record in zip(plan.steps, steps, strict=False):
        before, after = record.before, record.after
        if before is None or after is None or before == after or record.status != StepStatus.SUCCEEDED:
            continue
        if isinstance(step, DrainStep):
            backend = bindings.backend_ref(project, topology, step.region or plan.source)
            changes.append(RecordedChange(before=before, after=after, backend=backend))
        elif isinstance(step, ShiftDnsStep):
            changes.append(RecordedChange(before=before, after=after, record=bindings.dns_record_ref(project, topology)))
        elif isinstance(step, ScaleTargetStep):
            changes.append(RecordedChange(before=before, after=after, group=bindings.group_ref(project, topology, plan.target)))
    return changes


def failback_start(
    of: str, run_id: str, record: EvacuationProgress, services: Iterable[str] | None = None
) -> tuple[list[str], EvacuationProgress]:
    """What failing back the finished ``record`` (an evacuation's, or one failover's) restores:
    its services still failed over (``services``: only these), each with its recorded changes.
    Returns their names and the record the fail-back starts with; refuses (EvacuationRefused)
    unknown names and services that are not failed over, naming them."""
    over = {r.service: r for r in record.services if r.status == ServiceStatus.SUCCEEDED}
    if services is None:
        chosen = list(over)
    else:
        chosen = list(dict.fromkeys(services))
        known = {r.service: r for r in record.services}
        unknown = [s for s in chosen if s not in known]
        if unknown:
            raise EvacuationRefused(f"not in {of}: {', '.join(unknown)}")
        not_over = [f"{s} ({known[s].status.value.replace('_', ' ')})" for s in chosen if s not in over]
        if not_over:
            raise EvacuationRefused(f"not failed over by {of}, nothing to fail back: {', '.join(not_over)}")
    if not chosen:
        raise EvacuationRefused(f"{of} left no service failed over: nothing to fail back")
    start = record.model_copy(
        update={
            "workflow_id": failback_workflow_id(of),
            "status": EvacuationStatus.RUNNING,
            "started_at": None,
            "ended_at": None,
            "current_group": None,
            "abort": None,
            "failback_of": f"{of} run {run_id}",
            "runs": 1,
            "largest_history": 0,
            "peak_in_flight": 0,
            # Those an earlier fail-back of the same run put back stay in the record, as they are:
            # the latest fail-back's record names every service put back so far.
            "services": [
                over[r.service].model_copy(update={"error": None, "left_changed": []}) if r.service in chosen else r
                for r in record.services
                if r.service in chosen or r.status == ServiceStatus.FAILED_BACK
            ],
        }
    )
    return chosen, start


# --- building the input: which services, in which groups ----------------------------------


class EvacuationRefused(ValueError):
    """The evacuation asked for cannot start as given; nothing was started."""


def plan_groups(
    topology: Topology,
    region: str,
    *,
    target: str | None,
    services: Iterable[str] | None = None,
    tiers: Iterable[str] | None = None,
) -> list[EvacGroup]:
    """The services the topology places in ``region`` (optionally only ``services`` / those of
    ``tiers``), grouped by tier in the topology's order, untiered last. Refuses (naming them) a
    region no service is in, unknown services or tiers, services not in the region, and with a
    fixed ``target`` services that have no binding there."""
    in_region = {name: spec for name, spec in topology.services.items() if region in spec.regions}
    if not in_region:
        regions = sorted({r for spec in topology.services.values() for r in spec.regions})
        raise EvacuationRefused(f"no service of the topology is in region '{region}' (its regions: {', '.join(regions)})")
    chosen = dict(in_region)
    if services is not None:
        wanted = list(dict.fromkeys(services))
        unknown = [s for s in wanted if s not in topology.services]
        if unknown:
            raise EvacuationRefused(f"unknown service(s): {', '.join(unknown)} (not in the topology)")
        elsewhere = [s for s in wanted if s not in in_region]
        if elsewhere:
            raise EvacuationRefused(f"not in {region}: {', '.join(elsewhere)}")
        chosen = {s: in_region[s] for s in wanted}
    if tiers is not None:
        wanted_tiers = list(dict.fromkeys(tiers))
        known = [*topology.tiers, UNTIERED]
        unknown = [t for t in wanted_tiers if t not in known]
        if unknown:
            raise EvacuationRefused(f"unknown tier(s): {', '.join(unknown)} (the topology's tiers: {', '.join(known)})")
        chosen = {s: spec for s, spec in chosen.items() if (spec.tier or UNTIERED) in wanted_tiers}
        if not chosen:
            raise EvacuationRefused(f"no service of tier(s) {', '.join(wanted_tiers)} is in {region}")
    if target is not None:
        if target == region:
            raise EvacuationRefused(f"the target must differ from the region being evacuated ('{region}')")
        lacking = [s for s, spec in chosen.items() if target not in spec.regions]
        if lacking:
            shown = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more" if len(lacking) > 10 else "")
            raise EvacuationRefused(f"not served in {target}: {shown}; use --auto-target to choose per service")
    else:
        alone = [s for s, spec in chosen.items() if len(spec.regions) < 2]
        if alone:
            raise EvacuationRefused(f"served in no other region: {', '.join(alone)}")
    if len(chosen) > MAX_SERVICES:
        raise EvacuationRefused(
            f"{len(chosen)} services are more than one evacuation takes ({MAX_SERVICES}); "
            "split it with --tier or --services into evacuations one after another"
        )
    groups: list[EvacGroup] = []
    for tier in [*topology.tiers, UNTIERED]:
        # An evacuation moves traffic, not databases (a data step belongs to a plan): each
        # service's slice leaves its database bindings out, which keeps the input small.
        members = [
            EvacService(name=s, topology=spec.model_copy(update={"cloud_sql": None, "spanner": None}))
            for s, spec in chosen.items()
            if (spec.tier or UNTIERED) == tier
        ]
        if members:
            groups.append(EvacGroup(name=tier, services=members))
    return groups


# --- choosing a target per service (--auto-target) and sizing it -------------------------


class CandidateRegion(_Model):
    region: str
    backend: AnyBackendRef
    group: AnyGroupRef | None = Field(description="None: its capacity is fixed (a data centre): what is serving is all it has")
    max_size: int | None = Field(default=None, description="The topology's max_size for the group there")


class TargetQuery(_Model):
    service: str
    source: CandidateRegion = Field(description="The region being left: its load, read within the source budget")
    regions: list[CandidateRegion] = Field(description="Where it may go (the --to region, or every other region)")


class ReadTargets(_Model):
    """``read_targets``: the load of each service in the region being left, and the readiness,
    size and room of every region it may go to."""

    context: StepContext
    source: str
    services: list[TargetQuery]
    source_budget_seconds: float | None = Field(
        description="All reads of the region being left, together, get this long (0: none is made)"
    )


class RegionReading(_Model):
    """What the readiness read found in one region of one service."""

    region: str
    health: HealthReport | None = Field(description="None: unreadable")
    capacity_scaler: float | None = Field(description="None: unreadable")
    error: str | None = None
    size: int | None = Field(default=None, description="Its group's target size; None: unread")
    max_size: int | None = Field(default=None, description="The topology's max_size for the group")
    quota_room: int | None = Field(
        default=None, description="Instances the region's INSTANCES quota has room for (limit - usage); None: unread"
    )
    quota: str = Field(default="", description="The quota as read, in words (e.g. 'INSTANCES 8/10')")
    fixed: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="No group to resize: its size is its backends, and it can reach no more",
    )

    @property
    def readable(self) -> bool:
        return self.health is not None and self.capacity_scaler is not None


class TargetReadings(_Model):
    service: str
    source: RegionReading
    regions: list[RegionReading]


class ReadTargetsResult(_Model):
    readings: list[TargetReadings]


class TargetChoice(_Model):
    service: str
    target: str | None = Field(description="None: no region can take it")
    reason: str
    sizing: Sizing | None = None


def serving_size(reading: RegionReading) -> float | None:
    """How many instances the region serves the service with: its backends (healthy or not, as
    ``getHealth`` lists them) times its capacity scaler (at most 1). Counting every backend, not
    only the healthy ones, keeps a region in an outage (all unhealthy) from looking idle; and
    for a global backend service it needs no call to the region's own API."""
    if not reading.readable:
        return None
    assert reading.health is not None and reading.capacity_scaler is not None
    return reading.health.total * min(max(reading.capacity_scaler, 0.0), 1.0)


def reachable(reading: RegionReading) -> tuple[int | None, str]:
    """The largest group the region can have for the service (its max_size, and its size plus
    the room its quota has), and how that was bounded; None: no bound is known."""
    if reading.fixed:
        if reading.size is None:
            return None, "fixed capacity, unread"
        return reading.size, f"fixed capacity: {reading.size} backends, no group to resize"
    bounds: list[tuple[int, str]] = []
    if reading.max_size is not None:
        bounds.append((reading.max_size, f"max_size {reading.max_size}"))
    if reading.size is not None and reading.quota_room is not None:
        room = max(reading.quota_room, 0)
        bounds.append((reading.size + room, f"size {reading.size} + {room} quota room ({reading.quota})"))
    if not bounds:
        return None, "no max_size, quota unread"
    return min(bounds)


def headroom(reading: RegionReading) -> float:
    """Room to take more load: what the region can reach, less what it already serves with."""
    reach, _ = reachable(reading)
    serving = serving_size(reading) or 0.0
    return math.inf if reach is None else reach - serving


def size_target(source: RegionReading, target: RegionReading, ratio: float, min_healthy: int) -> tuple[Sizing | None, str]:
    """The capacity ``target`` must have to take the load ``source`` serves with now, times
    ``ratio`` (at least the plan's ``min_healthy``), and whether it can reach it: a Sizing, or
    None and why not (with the numbers)."""
    load = serving_size(source)
    if load is None:
        need = min_healthy
        basis = f"{source.region}'s load unknown ({source.error or 'unread'}); the guard's minimum"
    else:
        need = max(min_healthy, math.ceil(ratio * load - 1e-9))
        assert source.health is not None
        scaled = "" if source.capacity_scaler == 1 else f" × scaler {source.capacity_scaler:g}"
        basis = f"{ratio:g} × {source.health.total} instances{scaled} serving in {source.region}"
    if target.size is None or target.health is None:
        return None, f"{target.region}'s group size is unknown ({target.error or 'unread'})"
    reach, bound = reachable(target)
    if reach is not None and reach < need:
        return None, f"{target.region} cannot hold it: needs {need} ({basis}), can reach {reach} ({bound})"
    if need > MAX_PLANNED_SIZE:
        return None, f"needs {need} healthy in {target.region} ({basis}): more than a plan step scales ({MAX_PLANNED_SIZE})"
    scale_to = need if target.size < need else None
    now = f"has {target.health.summary()}, size {target.size}"
    plan = f"; scale to {scale_to}" if scale_to is not None else ""
    reach_text = f"; can reach {reach} ({bound})" if reach is not None else f"; {bound}"
    verdict = f"needs {need} healthy in {target.region} ({basis}); {now}{plan}{reach_text}"
    return Sizing(need=need, scale_to=scale_to, verdict=verdict), ""


def choose_target(
    readings: TargetReadings, source: str, min_healthy: int, ratio: float = 1.0, excluded: Iterable[str] = ()
) -> TargetChoice:
    """The region (not ``source``, not ``excluded``: e.g. regions with alerts firing) that is
    healthy, undrained, can hold the service's load, and has the most headroom to take it;
    ties go to the region named first in the topology. With one candidate (``--to``) this is
    the capacity check alone."""
    skip = set(excluded)
    fit: list[tuple[RegionReading, Sizing]] = []
    why_not: list[str] = []
    for reading in readings.regions:
        if reading.region == source:
            continue
        if reading.region in skip:
            why_not.append(f"{reading.region} excluded")
            continue
        if not reading.readable:
            why_not.append(f"{reading.region} unreadable ({reading.error or 'no reading'})")
            continue
        assert reading.health is not None
        if reading.health.healthy < min_healthy:
            why_not.append(f"{reading.region} has {reading.health.summary()} (need {min_healthy})")
        elif reading.capacity_scaler == 0:
            why_not.append(f"{reading.region} is drained (capacity scaler 0)")
        else:
            sizing, refusal = size_target(readings.source, reading, ratio, min_healthy)
            if sizing is None:
                why_not.append(refusal)
            else:
                fit.append((reading, sizing))
    if not fit:
        return TargetChoice(service=readings.service, target=None, reason="no region can take it: " + "; ".join(why_not))
    best, sizing = max(fit, key=lambda f: headroom(f[0]))  # max keeps the first of equals: topology order
    others = [f"{r.region} {_room_text(r)}" for r, _ in fit if r is not best]
    reason = f"{best.region}: headroom {_room_text(best)}; {sizing.verdict}"
    if others:
        reason += f"; headroom of the others: {', '.join(others)}"
    if why_not:
        reason += "; not " + "; ".join(why_not)
    return TargetChoice(service=readings.service, target=best.region, reason=reason, sizing=sizing)


def _room_text(reading: RegionReading) -> str:
    room = headroom(reading)
    return "unbounded" if room == math.inf else f"{room:g}"
