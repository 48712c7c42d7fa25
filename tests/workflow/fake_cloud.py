"""An in-memory cloud whose activities stand in for the real ones, registered by name.

It keeps the same state the real activities change (capacity scalers, group sizes, DNS
records, health), follows the same contract (idempotent, returns the before-state) and
records every call, so workflow tests can assert order and before-states.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac.drills import ConditionReading, ConditionReadings
from evac.notifications import SEND_NOTIFICATION, Delivery, Notification, NotificationResult, TargetKind
from evac.resources import (
    ActivityName,
    BackendCapacity,
    BeforeChange,
    Change,
    CheckBackendHealth,
    CheckStopConditions,
    DatabaseLeader,
    DatabaseRole,
    DnsRecord,
    GroupSize,
    HealthReport,
    HealthWait,
    PreflightReadings,
    PreflightReads,
    ReadBackendCapacity,
    ReadBeforeChange,
    ReadDatabaseLeader,
    ReadDatabaseRole,
    ReadDnsRecord,
    ReadGroupSize,
    ReadReplicationLag,
    ReplicationLag,
    ResizeGroup,
    SetBackendCapacity,
    SetDatabaseLeader,
    SetDatabaseRole,
    SetDnsRecord,
    StepContext,
    WaitForHealthy,
)


@dataclass
class Call:
    activity: str
    step: str
    desired: object | None = None
    before: object | None = None
    plane: str | None = None  # whose API the call needed: "global" or a region (None: no cloud resource)


# How long a call into a hanging region's API blocks when the workflow gave it no budget: long
# enough that a test which waits on it times out, not forever.
HANG_WITHOUT_BUDGET = 30.0


def plane_of(input: object) -> str | None:
    """The control plane of the resource a stand-in's input is about (see evac.resources)."""
    for name in ("backend", "group", "record", "database"):
        ref = getattr(input, name, None)
        if ref is not None:
            return str(ref.control_plane)
    return None


def budgeted(context: StepContext, seconds: float | None) -> StepContext:
    return context.model_copy(update={"budget_seconds": seconds})


@dataclass
class FakeCloud:
    capacity: dict[str, float] = field(default_factory=dict)  # region -> scaler
    sizes: dict[str, int] = field(default_factory=dict)  # region -> target size
    healthy: dict[str, int] = field(default_factory=dict)  # region -> healthy backends
    record: DnsRecord = field(default_factory=DnsRecord)
    calls: list[Call] = field(default_factory=list)
    # activity name -> predicate on the input; when it returns an exception, that is raised
    failures: dict[str, Callable[[object], Exception | None]] = field(default_factory=dict)
    # activity name -> predicate on the input; when it returns an event, the call waits on it
    gates: dict[str, Callable[[object], asyncio.Event | None]] = field(default_factory=dict)

    new_instances_get_healthy: bool = True
    # check number (1, 2, …) and condition index -> the value a stop-condition check measures;
    # None: every condition reads the target's healthy backends
    condition_value: Callable[[int, int], float | None] | None = None
    condition_checks: int = 0
    # activity names whose gated calls complete (with their result) even when cancelled
    finish_despite_cancel: set[str] = field(default_factory=set)
    entered: list[str] = field(default_factory=list)  # activity names, as calls arrive (before gates)
    cancelled: list[str] = field(default_factory=list)  # activity names that saw a cancellation
    # How many seconds of polling a health wait is allowed (None: until its deadline would pass
    # on the workflow's clock, reckoned from the interval; the stand-in does not sleep for real).
    health_timeout: float | None = None
    # The notification targets the stand-in worker "has" (none: like a worker with none
    # configured), and every notification it was asked to send, in order.
    notify_targets: list[TargetKind] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    # region -> how its own API fails: "errors" (every call about a resource only it serves
    # answers 503) or "hang" (no answer: the call blocks for its budget, then times out)
    api_down: dict[str, str] = field(default_factory=dict)
    # The data tier: each Cloud SQL instance's role (by name), each replica's lag in seconds
    # (None: no reading), and the Spanner database's leader.
    sql: dict[str, DatabaseRole] = field(default_factory=dict)
    lag: dict[str, float | None] = field(default_factory=dict)
    leader: str | None = None

    def calls_to(self, plane: str) -> list[Call]:
        return [c for c in self.calls if c.plane == plane]

    def health_wait_budget(self, input: WaitForHealthy) -> float:
        return self.health_timeout if self.health_timeout is not None else 3600.0

    def snapshot(self) -> tuple:
        return (dict(self.capacity), dict(self.sizes), self.record)

    def mutations(self) -> list[Call]:
        return [c for c in self.calls if c.activity.startswith(("set_", "resize_"))]

    def set_role(self, input: SetDatabaseRole) -> DatabaseRole:
        """What Cloud SQL does for each change of role (see SetDatabaseRole); returns the before."""
        name, desired = input.database.name, input.desired
        before = self.sql.get(name, DatabaseRole(role="absent"))
        if before == desired:
            return before
        if desired.role == "primary" and before.role == "replica":
            old = before.replicates
            assert old is not None
            self.sql[name] = desired
            if not input.promote:  # a switchover: the old primary becomes this one's replica
                self.sql[old] = DatabaseRole(role="replica", replicates=name)
        elif desired.role == "replica" and before.role == "primary":
            new = desired.replicates
            assert new is not None and self.sql.get(new) == DatabaseRole(role="replica", replicates=name)
            self.sql[new], self.sql[name] = DatabaseRole(role="primary"), desired
        elif desired.role == "replica" and before.role == "absent":
            self.sql[name] = desired
        elif desired.role == "absent":
            self.sql.pop(name, None)
        else:
            raise permanent(f"{name}: cannot go from {before.summary()} to {desired.summary()}")
        return before

    async def _enter(self, name: str, input: object, step: str, desired: object | None = None) -> None:
        hold = self.gates.get(name)
        gate = hold(input) if hold else None
        self.entered.append(name)
        while gate is not None and not gate.is_set():
            # Heartbeat like the real activities do, so that a cancellation reaches this call
            # (and raises CancelledError here) — unless this call plays a mutation whose cloud
            # operation was already sent: that one finishes despite the cancel, as the real ones do.
            activity.heartbeat()
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.cancelled.append(name)
                if name not in self.finish_despite_cancel:
                    raise
        check = self.failures.get(name)
        error = check(input) if check else None
        plane = plane_of(input)
        self.calls.append(Call(name, step, desired, plane=plane))
        if error is not None:
            raise error
        down = self.api_down.get(plane or "")
        if down is not None:
            await self._down(down, plane or "", input)

    async def _down(self, how: str, region: str, input: object) -> None:
        """A call into a region whose API is down: 503, or a hang until the call's budget ends."""
        if how == "errors":
            raise ApplicationError(
                f"{region}: HTTP 503 The service is currently unavailable", {"attempt": 1}, type="CloudTransientError"
            )
        context = getattr(input, "context", None)
        budget = getattr(context, "budget_seconds", None)
        await asyncio.sleep(budget if budget is not None else HANG_WITHOUT_BUDGET)
        raise ApplicationError(f"{region}: cannot reach the API: read timed out", {"attempt": 1}, type="CloudUnreachable")

    def activities(self) -> list[Callable]:
        cloud = self

        @activity.defn(name=ActivityName.READ_BACKEND_CAPACITY)
        async def read_backend_capacity(input: ReadBackendCapacity) -> BackendCapacity:
            await cloud._enter(ActivityName.READ_BACKEND_CAPACITY, input, input.context.step)
            return BackendCapacity(capacity_scaler=cloud.capacity[input.backend.group.region])

        @activity.defn(name=ActivityName.SET_BACKEND_CAPACITY)
        async def set_backend_capacity(input: SetBackendCapacity) -> Change:
            await cloud._enter(ActivityName.SET_BACKEND_CAPACITY, input, input.context.step, input.desired)
            region = input.backend.group.region
            before = BackendCapacity(capacity_scaler=cloud.capacity[region])
            cloud.capacity[region] = input.desired.capacity_scaler
            cloud.calls[-1].before = before
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.READ_GROUP_SIZE)
        async def read_group_size(input: ReadGroupSize) -> GroupSize:
            await cloud._enter(ActivityName.READ_GROUP_SIZE, input, input.context.step)
            return GroupSize(target_size=cloud.sizes[input.group.region])

        @activity.defn(name=ActivityName.RESIZE_GROUP)
        async def resize_group(input: ResizeGroup) -> Change:
            await cloud._enter(ActivityName.RESIZE_GROUP, input, input.context.step, input.desired)
            region = input.group.region
            before = GroupSize(target_size=cloud.sizes[region])
            cloud.sizes[region] = input.desired.target_size
            if cloud.new_instances_get_healthy:
                cloud.healthy[region] = input.desired.target_size
            cloud.calls[-1].before = before
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.READ_DNS_RECORD)
        async def read_dns_record(input: ReadDnsRecord) -> DnsRecord:
            await cloud._enter(ActivityName.READ_DNS_RECORD, input, input.context.step)
            return cloud.record

        @activity.defn(name=ActivityName.SET_DNS_RECORD)
        async def set_dns_record(input: SetDnsRecord) -> Change:
            await cloud._enter(ActivityName.SET_DNS_RECORD, input, input.context.step, input.desired)
            before = cloud.record
            cloud.record = input.desired
            cloud.calls[-1].before = before
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.CHECK_BACKEND_HEALTH)
        async def check_backend_health(input: CheckBackendHealth) -> HealthReport:
            await cloud._enter(ActivityName.CHECK_BACKEND_HEALTH, input, input.context.step)
            region = input.backend.group.region
            return HealthReport(healthy=cloud.healthy[region], total=cloud.sizes[region])

        @activity.defn(name=ActivityName.READ_DATABASE_ROLE)
        async def read_database_role(input: ReadDatabaseRole) -> DatabaseRole:
            await cloud._enter(ActivityName.READ_DATABASE_ROLE, input, input.context.step)
            return cloud.sql.get(input.database.name, DatabaseRole(role="absent"))

        @activity.defn(name=ActivityName.SET_DATABASE_ROLE)
        async def set_database_role(input: SetDatabaseRole) -> Change:
            await cloud._enter(ActivityName.SET_DATABASE_ROLE, input, input.context.step, input.desired)
            before = cloud.set_role(input)
            cloud.calls[-1].before = before
            return Change(before=before, after=input.desired, changed=before != input.desired)

        @activity.defn(name=ActivityName.READ_REPLICATION_LAG)
        async def read_replication_lag(input: ReadReplicationLag) -> ReplicationLag:
            await cloud._enter(ActivityName.READ_REPLICATION_LAG, input, input.context.step)
            seconds = cloud.lag.get(input.database.name, 0.0)
            return ReplicationLag(seconds=seconds, measured_at=datetime.now(UTC), source="fake replica_lag")

        @activity.defn(name=ActivityName.READ_DATABASE_LEADER)
        async def read_database_leader(input: ReadDatabaseLeader) -> DatabaseLeader:
            await cloud._enter(ActivityName.READ_DATABASE_LEADER, input, input.context.step)
            return DatabaseLeader(leader=cloud.leader)

        @activity.defn(name=ActivityName.SET_DATABASE_LEADER)
        async def set_database_leader(input: SetDatabaseLeader) -> Change:
            await cloud._enter(ActivityName.SET_DATABASE_LEADER, input, input.context.step, input.desired)
            before = DatabaseLeader(leader=cloud.leader)
            cloud.leader = input.desired.leader
            cloud.calls[-1].before = before
            return Change(before=before, after=input.desired, changed=before != input.desired)

        data = DataReads(read_database_role, read_database_leader, read_replication_lag)
        read_before_change = read_before_change_from(
            check_backend_health, read_backend_capacity, read_group_size, read_dns_record, data
        )
        preflight_reads = preflight_reads_from(read_backend_capacity, read_group_size, read_dns_record, data)

        @activity.defn(name=ActivityName.WAIT_FOR_HEALTHY)
        async def wait_for_healthy_backends(input: WaitForHealthy) -> HealthWait:
            """Polls the in-memory health every interval of workflow time until the deadline."""
            region = input.backend.group.region
            polls = 0
            while True:
                await cloud._enter(ActivityName.WAIT_FOR_HEALTHY, input, input.context.step)
                polls += 1
                report = HealthReport(healthy=cloud.healthy[region], total=cloud.sizes[region])
                if report.healthy >= input.min_healthy:
                    return HealthWait(report=report, reached=True, polls=polls)
                # The test server's clock is the workflow's: the deadline is in that time.
                if polls * input.interval_seconds >= cloud.health_wait_budget(input):
                    return HealthWait(report=report, reached=False, polls=polls)
                activity.heartbeat(polls)
                await asyncio.sleep(0.01)

        @activity.defn(name=ActivityName.CHECK_STOP_CONDITIONS)
        async def check_stop_conditions(input: CheckStopConditions) -> ConditionReadings:
            await cloud._enter(ActivityName.CHECK_STOP_CONDITIONS, input, input.context.step)
            cloud.condition_checks += 1
            readings = []
            for index, _ in enumerate(input.conditions):
                if cloud.condition_value is not None:
                    value = cloud.condition_value(cloud.condition_checks, index)
                else:
                    [backend] = input.backends.values()
                    value = float(cloud.healthy[backend.group.region])
                readings.append(ConditionReading(index=index, value=value, detail="fake"))
            return ConditionReadings(readings=readings)

        @activity.defn(name=SEND_NOTIFICATION)
        async def send_notification(input: Notification) -> NotificationResult:
            cloud.notifications.append(input)
            deliveries = [Delivery(target=target, delivered=True, attempts=1) for target in cloud.notify_targets]
            return NotificationResult(configured=bool(cloud.notify_targets), deliveries=deliveries)

        return [
            send_notification,
            check_stop_conditions,
            wait_for_healthy_backends,
            read_backend_capacity,
            set_backend_capacity,
            read_group_size,
            resize_group,
            read_dns_record,
            set_dns_record,
            check_backend_health,
            read_before_change,
            preflight_reads,
            read_database_role,
            set_database_role,
            read_replication_lag,
            read_database_leader,
            set_database_leader,
        ]


@dataclass
class DataReads:
    """A test's stand-in reads of the data tier (for read_before_change and preflight_reads)."""

    role: Callable[[ReadDatabaseRole], Awaitable[DatabaseRole]]
    leader: Callable[[ReadDatabaseLeader], Awaitable[DatabaseLeader]]
    lag: Callable[[ReadReplicationLag], Awaitable[ReplicationLag]]


def read_before_change_from(
    check_backend_health: Callable[[CheckBackendHealth], Awaitable[HealthReport]],
    read_backend_capacity: Callable[[ReadBackendCapacity], Awaitable[BackendCapacity]],
    read_group_size: Callable[[ReadGroupSize], Awaitable[GroupSize]],
    read_dns_record: Callable[[ReadDnsRecord], Awaitable[DnsRecord]],
    data: DataReads | None = None,
) -> Callable[[ReadBeforeChange], Awaitable[BeforeChange]]:
    """The stand-in of ``read_before_change`` (a step's reads in one local activity) made of a
    test's stand-in reads, called in the real one's order: their gates and failures hold here too."""

    @activity.defn(name=ActivityName.READ_BEFORE_CHANGE)
    async def read_before_change(input: ReadBeforeChange) -> BeforeChange:
        context = input.context
        health = capacity = None
        if input.guard is not None:
            health = await check_backend_health(CheckBackendHealth(context=context, backend=input.guard))
            if health.healthy >= input.min_healthy or not input.stop_on_refusal:
                capacity = await read_backend_capacity(ReadBackendCapacity(context=context, backend=input.guard))
            if input.stop_on_refusal and input.refused_by(health, capacity):
                return BeforeChange(health=health, capacity=capacity)
        before: BackendCapacity | GroupSize | DnsRecord | DatabaseRole | DatabaseLeader
        context = budgeted(context, input.resource_budget_seconds)
        try:
            if input.database is not None:
                assert data is not None
                before = await data.role(ReadDatabaseRole(context=context, database=input.database))
            elif input.leader is not None:
                assert data is not None
                before = await data.leader(ReadDatabaseLeader(context=context, database=input.leader))
            elif input.backend is not None:
                before = await read_backend_capacity(ReadBackendCapacity(context=context, backend=input.backend))
            elif input.group is not None:
                before = await read_group_size(ReadGroupSize(context=context, group=input.group))
            else:
                assert input.record is not None
                before = await read_dns_record(ReadDnsRecord(context=context, record=input.record))
        except ApplicationError as err:
            # As the real one: a budgeted read that gets no answer is reported, not raised.
            if input.resource_budget_seconds is None or err.non_retryable:
                raise
            return BeforeChange(health=health, capacity=capacity, unreachable=err.message)
        lag = None
        if input.lag_of is not None:
            assert data is not None
            lag = await data.lag(ReadReplicationLag(context=input.context, database=input.lag_of))
        return BeforeChange(health=health, capacity=capacity, before=before, lag=lag)

    return read_before_change


def preflight_reads_from(
    read_backend_capacity: Callable[[ReadBackendCapacity], Awaitable[BackendCapacity]],
    read_group_size: Callable[[ReadGroupSize], Awaitable[GroupSize]],
    read_dns_record: Callable[[ReadDnsRecord], Awaitable[DnsRecord]],
    data: DataReads | None = None,
) -> Callable[[PreflightReads], Awaitable[PreflightReadings]]:
    """The stand-in of ``preflight_reads`` made of a test's stand-in reads, all at once, failing
    as the real one does (a non-retryable error before a retryable one)."""

    @activity.defn(name=ActivityName.PREFLIGHT_READS)
    async def preflight_reads(input: PreflightReads) -> PreflightReadings:
        def context(ref: object) -> StepContext:
            source = getattr(ref, "control_plane", None) == input.source_region
            return budgeted(input.context, input.source_budget_seconds if source else None)

        backends = [read_backend_capacity(ReadBackendCapacity(context=context(b), backend=b)) for b in input.backends]
        groups = [read_group_size(ReadGroupSize(context=context(g), group=g)) for g in input.groups]
        records = [read_dns_record(ReadDnsRecord(context=context(r), record=r)) for r in input.records]
        databases = [data.role(ReadDatabaseRole(context=context(d), database=d)) for d in input.databases] if data else []
        leaders = [data.leader(ReadDatabaseLeader(context=context(d), database=d)) for d in input.leaders] if data else []
        refs = [*input.backends, *input.groups, *input.records, *input.databases, *input.leaders]
        results = await asyncio.gather(*backends, *groups, *records, *databases, *leaders, return_exceptions=True)
        unreachable: list[str] = []
        for i, (ref, result) in enumerate(zip(refs, results, strict=True)):
            # As the real one: a source-only read that gets no answer in its budget reads as None.
            if isinstance(result, ApplicationError) and not result.non_retryable and context(ref).budget_seconds is not None:
                unreachable.append(result.message)
                results[i] = None
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            permanent = [e for e in errors if isinstance(e, ApplicationError) and e.non_retryable]
            raise (permanent or errors)[0]
        cuts = [0]
        for part in (backends, groups, records, databases, leaders):
            cuts.append(cuts[-1] + len(part))
        names = ("backends", "groups", "records", "databases", "leaders")
        parts = {name: results[cuts[i] : cuts[i + 1]] for i, name in enumerate(names)}
        return PreflightReadings.model_validate({**parts, "unreachable": unreachable})

    return preflight_reads


def permanent(message: str) -> ApplicationError:
    return ApplicationError(message, {"attempt": 1}, type="CloudRequestRefused", non_retryable=True)


def transient(message: str) -> ApplicationError:
    """A 5xx-like failure: Temporal retries it until the call's deadline."""
    return ApplicationError(message, {"attempt": 1}, type="CloudTransientError")
