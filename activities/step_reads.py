"""The reads of a mutating step, in one call: the guard's readings of the target region, then
the before-state of the resource the step changes. And a run's preflight reads, in one call.

The workflow runs it as a *local* activity just before it sends the mutation (see
workflows/steps.py): one call in the worker instead of three activity round trips through
the server. It reuses the read activities' own implementations, so a read here is the same
read (same cloud calls, same in-place retries of transient errors, same errors) as there.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import budget
from activities.capacity import CapacityActivities
from activities.databases import DatabaseActivities
from activities.dns import DnsActivities
from activities.errors import worth_repeating
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from evac.logging import step_logging
from evac.resources import (
    ActivityName,
    BackendCapacity,
    BeforeChange,
    CheckBackendHealth,
    HealthReport,
    PreflightReadings,
    PreflightReads,
    ReadBackendCapacity,
    ReadBeforeChange,
    ReadDatabaseLeader,
    ReadDatabaseRole,
    ReadDnsRecord,
    ReadGroupSize,
    ReadReplicationLag,
    ResourceState,
)

# Reads in flight at once in one preflight_reads call (a plan touches a handful of resources).
PREFLIGHT_THREADS = 8

In = TypeVar("In")
Out = TypeVar("Out")


class StepReadActivities:
    def __init__(
        self,
        traffic: TrafficActivities,
        capacity: CapacityActivities,
        dns: DnsActivities,
        health: HealthActivities,
        databases: DatabaseActivities,
    ):
        self._traffic = traffic
        self._capacity = capacity
        self._dns = dns
        self._health = health
        self._databases = databases

    def _before(self, input: ReadBeforeChange) -> ResourceState:
        with budget.within(input.resource_budget_seconds):
            return self._read_before(input)

    def _read_before(self, input: ReadBeforeChange) -> ResourceState:
        if input.backend is not None:
            return self._traffic.read_backend_capacity(ReadBackendCapacity(context=input.context, backend=input.backend))
        if input.group is not None:
            return self._capacity.read_group_size(ReadGroupSize(context=input.context, group=input.group))
        if input.database is not None:
            return self._databases.read_database_role(ReadDatabaseRole(context=input.context, database=input.database))
        if input.leader is not None:
            return self._databases.read_database_leader(ReadDatabaseLeader(context=input.context, database=input.leader))
        assert input.record is not None  # the model's validator saw to it
        return self._dns.read_dns_record(ReadDnsRecord(context=input.context, record=input.record))

    @activity.defn(name=ActivityName.READ_BEFORE_CHANGE, no_thread_cancel_exception=True)
    def read_before_change(self, input: ReadBeforeChange) -> BeforeChange:
        """The target's health; its capacity scaler if enough backends are healthy (always, when
        not ``stop_on_refusal``: a dry run judges as if its scale-ups had happened); then the
        before-state, unless the guard's readings refuse and ``stop_on_refusal`` holds.

        A before-state read with a budget (the source region's resource) that gets no answer in
        time is reported in ``unreachable``, not raised: the workflow skips the step."""
        with step_logging(input.context):
            health: HealthReport | None = None
            capacity: BackendCapacity | None = None
            if input.guard is not None:
                health = self._health.check_backend_health(CheckBackendHealth(context=input.context, backend=input.guard))
                if health.healthy >= input.min_healthy or not input.stop_on_refusal:
                    capacity = self._traffic.read_backend_capacity(
                        ReadBackendCapacity(context=input.context, backend=input.guard)
                    )
                if input.stop_on_refusal and input.refused_by(health, capacity):
                    return BeforeChange(health=health, capacity=capacity)
            try:
                before = self._before(input)
            except Exception as exc:
                if input.resource_budget_seconds is None or not worth_repeating(exc):
                    raise
                return BeforeChange(health=health, capacity=capacity, unreachable=_text(exc))
            lag = None
            if input.lag_of is not None:
                # Just before the roles change: the data a promotion would lose (the run's RPO).
                lag = self._databases.read_replication_lag(ReadReplicationLag(context=input.context, database=input.lag_of))
            return BeforeChange(health=health, capacity=capacity, before=before, lag=lag)

    @activity.defn(name=ActivityName.PREFLIGHT_READS, no_thread_cancel_exception=True)
    def preflight_reads(self, input: PreflightReads) -> PreflightReadings:
        """Every resource the plan touches, read at once (one activity in the history instead of
        one per resource). Each read is the read activity's own, with its in-place retries; if any
        fails, this fails as it did: a refusal (404, 403 …) before a transient error, so a missing
        resource fails the run at once while a 5xx burst is retried by Temporal to the deadline.

        A resource only ``source_region``'s API serves is read within ``source_budget_seconds``;
        if it gets no answer in time (5xx, timeouts, a hanging API) it reads as None and is named
        in ``unreachable``: the run must not wait on the region it leaves. A refusal still fails."""
        context = input.context
        with step_logging(context) as log, ThreadPoolExecutor(PREFLIGHT_THREADS, thread_name_prefix="preflight") as pool:
            source_only: list[Future[Any]] = []

            def submit(read: Callable[[In], Out], arg: In, plane: str) -> Future[Out]:
                # In a copy of the activity's context: the read's in-place retries heartbeat and
                # watch for a cancel through it.
                seconds = input.source_budget_seconds if plane == input.source_region else None
                future = pool.submit(contextvars.copy_context().run, _within, seconds, read, arg)
                if seconds is not None:
                    source_only.append(future)
                return future

            traffic, capacity, dns = self._traffic, self._capacity, self._dns
            backends = [
                submit(traffic.read_backend_capacity, ReadBackendCapacity(context=context, backend=b), b.control_plane)
                for b in input.backends
            ]
            groups = [
                submit(capacity.read_group_size, ReadGroupSize(context=context, group=g), g.control_plane) for g in input.groups
            ]
            records = [
                submit(dns.read_dns_record, ReadDnsRecord(context=context, record=r), r.control_plane) for r in input.records
            ]
            data = self._databases
            databases = [
                submit(data.read_database_role, ReadDatabaseRole(context=context, database=d), d.control_plane)
                for d in input.databases
            ]
            leaders = [
                submit(data.read_database_leader, ReadDatabaseLeader(context=context, database=d), d.control_plane)
                for d in input.leaders
            ]
            futures: list[Future[Any]] = [*backends, *groups, *records, *databases, *leaders]
            outcomes = [(f, f.exception()) for f in futures]
            unreachable = [(f, e) for f, e in outcomes if e is not None and f in source_only and worth_repeating(e)]
            errors = [e for f, e in outcomes if e is not None and (f, e) not in unreachable]
            if errors:
                refusals = [e for e in errors if not worth_repeating(e)]
                raise (refusals or errors)[0]
            log.info("preflight read", resources=len(futures), unreachable=len(unreachable))
            missing = {f for f, _ in unreachable}
            return PreflightReadings(
                backends=[None if f in missing else f.result() for f in backends],
                groups=[None if f in missing else f.result() for f in groups],
                records=[None if f in missing else f.result() for f in records],
                databases=[None if f in missing else f.result() for f in databases],
                leaders=[None if f in missing else f.result() for f in leaders],
                unreachable=[_text(e) for _, e in unreachable],
            )


def _text(error: BaseException) -> str:
    return error.message if isinstance(error, ApplicationError) else str(error)


def _within(seconds: float | None, read: Callable[[In], Out], arg: In) -> Out:
    with budget.within(seconds):
        return read(arg)
