"""An in-memory cloud whose activities stand in for the real ones, registered by name.

It keeps the same state the real activities change (capacity scalers, group sizes, DNS
records, health), follows the same contract (idempotent, returns the before-state) and
records every call, so workflow tests can assert order and before-states.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
    DnsRecord,
    GroupSize,
    HealthReport,
    HealthWait,
    PreflightReadings,
    PreflightReads,
    ReadBackendCapacity,
    ReadBeforeChange,
    ReadDnsRecord,
    ReadGroupSize,
    ResizeGroup,
    SetBackendCapacity,
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
    for name in ("backend", "group", "record"):
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

    def calls_to(self, plane: str) -> list[Call]:
        return [c for c in self.calls if c.plane == plane]

    def health_wait_budget(self, input: WaitForHealthy) -> float:
        return self.health_timeout if self.health_timeout is not None else 3600.0

    def snapshot(self) -> tuple:
        return (dict(self.capacity), dict(self.sizes), self.record)

    def mutations(self) -> list[Call]:
        return [c for c in self.calls if c.activity.startswith(("set_", "resize_"))]

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

        read_before_change = read_before_change_from(
            check_backend_health, read_backend_capacity, read_group_size, read_dns_record
        )
        preflight_reads = preflight_reads_from(read_backend_capacity, read_group_size, read_dns_record)

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
        ]


def read_before_change_from(
    check_backend_health: Callable[[CheckBackendHealth], Awaitable[HealthReport]],
    read_backend_capacity: Callable[[ReadBackendCapacity], Awaitable[BackendCapacity]],
    read_group_size: Callable[[ReadGroupSize], Awaitable[GroupSize]],
    read_dns_record: Callable[[ReadDnsRecord], Awaitable[DnsRecord]],
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
        before: BackendCapacity | GroupSize | DnsRecord
        context = budgeted(context, input.resource_budget_seconds)
        try:
            if input.backend is not None:
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
        return BeforeChange(health=health, capacity=capacity, before=before)

    return read_before_change


def preflight_reads_from(
    read_backend_capacity: Callable[[ReadBackendCapacity], Awaitable[BackendCapacity]],
    read_group_size: Callable[[ReadGroupSize], Awaitable[GroupSize]],
    read_dns_record: Callable[[ReadDnsRecord], Awaitable[DnsRecord]],
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
        refs = [*input.backends, *input.groups, *input.records]
        results = await asyncio.gather(*backends, *groups, *records, return_exceptions=True)
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
        nb, ng = len(backends), len(groups)
        return PreflightReadings.model_validate(
            {"backends": results[:nb], "groups": results[nb : nb + ng], "records": results[nb + ng :], "unreachable": unreachable}
        )

    return preflight_reads


def permanent(message: str) -> ApplicationError:
    return ApplicationError(message, {"attempt": 1}, type="CloudRequestRefused", non_retryable=True)


def transient(message: str) -> ApplicationError:
    """A 5xx-like failure: Temporal retries it until the call's deadline."""
    return ApplicationError(message, {"attempt": 1}, type="CloudTransientError")
