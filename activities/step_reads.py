"""The reads of a mutating step, in one call: the guard's readings of the target region, then
the before-state of the resource the step changes.

The workflow runs it as a *local* activity just before it sends the mutation (see
workflows/steps.py): one call in the worker instead of three activity round trips through
the server. It reuses the read activities' own implementations, so a read here is the same
read (same cloud calls, same in-place retries of transient errors, same errors) as there.
"""

from __future__ import annotations

from temporalio import activity

from activities.capacity import CapacityActivities
from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from evac.logging import step_logging
from evac.resources import (
    ActivityName,
    BackendCapacity,
    BeforeChange,
    CheckBackendHealth,
    ReadBackendCapacity,
    ReadBeforeChange,
    ReadDnsRecord,
    ReadGroupSize,
    ResourceState,
)


class StepReadActivities:
    def __init__(self, traffic: TrafficActivities, capacity: CapacityActivities, dns: DnsActivities, health: HealthActivities):
        self._traffic = traffic
        self._capacity = capacity
        self._dns = dns
        self._health = health

    def _before(self, input: ReadBeforeChange) -> ResourceState:
        if input.backend is not None:
            return self._traffic.read_backend_capacity(ReadBackendCapacity(context=input.context, backend=input.backend))
        if input.group is not None:
            return self._capacity.read_group_size(ReadGroupSize(context=input.context, group=input.group))
        assert input.record is not None  # the model's validator saw to it
        return self._dns.read_dns_record(ReadDnsRecord(context=input.context, record=input.record))

    @activity.defn(name=ActivityName.READ_BEFORE_CHANGE, no_thread_cancel_exception=True)
    def read_before_change(self, input: ReadBeforeChange) -> BeforeChange:
        """The target's health; its capacity scaler only if enough backends are healthy; then
        the before-state, unless the guard's readings refuse and ``stop_on_refusal`` holds."""
        with step_logging(input.context):
            if input.guard is None:
                return BeforeChange(before=self._before(input))
            health = self._health.check_backend_health(CheckBackendHealth(context=input.context, backend=input.guard))
            capacity: BackendCapacity | None = None
            if health.healthy >= input.min_healthy:
                capacity = self._traffic.read_backend_capacity(ReadBackendCapacity(context=input.context, backend=input.guard))
            if input.stop_on_refusal and input.refused_by(health, capacity):
                return BeforeChange(health=health, capacity=capacity)
            return BeforeChange(health=health, capacity=capacity, before=self._before(input))
