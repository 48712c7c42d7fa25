"""Readings for a region evacuation: each service's load where it is, and where it may go.

``read_targets`` reads, per service:

- in the region being left, its backend's health (``getHealth``) and capacity scaler: the load
  the target must take. These reads share the source budget (``source_budget_seconds``, from
  ``retries.source_deadline``): a region whose API is down or hangs costs no more than that,
  and its services are reported with their load unknown, never a reason to wait longer;
- in every region it may go to, the backend's health and scaler, its group's target size, and
  the region's ``INSTANCES`` quota (``regions.get``, once per region per call): what the choice
  and the capacity check (``evac.evacuation.choose_target``) judge by.

Reads run many at once in a small thread pool, each retrying its transient errors in place; a
target-side read still transient after that fails the activity, which Temporal retries until
the step deadline (a 5xx burst must not make a healthy region look unusable). A read the cloud
refuses (404, 403) is reported, with why, and the choice passes that region over.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.budget import within
from activities.errors import provider_call, worth_repeating
from activities.health import HealthActivities
from activities.retry import idempotent
from evac.activity_api import READ_TARGETS
from evac.evacuation import CandidateRegion, ReadTargets, ReadTargetsResult, RegionReading, TargetReadings
from evac.logging import step_logging
from evac.refs import GroupRef
from providers.base import Quota
from providers.registry import Providers

# Reads in flight at once in one read_targets call.
READ_THREADS = 16

T = TypeVar("T")


class EvacuationActivities:
    def __init__(self, providers: Providers) -> None:
        self._providers = providers
        self._health = HealthActivities(providers)

    def _quota(self, group: GroupRef) -> Quota:
        with provider_call():
            return self._providers.capacity(group).room(group)

    def _region(self, candidate: CandidateRegion, quota: Quota | None, *, sized: bool) -> RegionReading:
        """One region of one service: health and scaler (and, for a target, size and quota)."""
        ref = candidate.backend
        reading = RegionReading(region=candidate.region, health=None, capacity_scaler=None, max_size=candidate.max_size)
        try:
            reading.health = idempotent(f"get health of {ref}", lambda: self._health.read_health(ref))
            with provider_call():
                reading.capacity_scaler = self._providers.traffic(ref).read_share(ref).capacity_scaler
                if sized and candidate.group is None:
                    reading.size, reading.fixed = reading.health.total, True  # what is racked there is all it has
                elif sized and candidate.group is not None:
                    reading.size = self._providers.capacity(candidate.group).read_size(candidate.group).target_size
        except ApplicationError as exc:
            if worth_repeating(exc) and sized:
                raise  # a target still transient after the in-place retries: Temporal retries the whole read
            # refused (404, 403 …), or the region being left did not answer in its budget
            reading.health = reading.capacity_scaler = reading.size = None
            reading.error = str(exc)[:300]
            return reading
        if quota is not None:
            reading.quota_room, reading.quota = quota.room, quota.text
        return reading

    def _source(self, candidate: CandidateRegion, ends: float | None) -> RegionReading:
        """The region being left, within what is left of the shared source budget."""
        rest = None if ends is None else ends - time.monotonic()
        if rest is not None and rest <= 0:
            return RegionReading(
                region=candidate.region, health=None, capacity_scaler=None, error="not read: the source budget is spent"
            )
        with within(rest):
            return self._region(candidate, None, sized=False)

    @activity.defn(name=READ_TARGETS, no_thread_cancel_exception=True)
    def read_targets(self, input: ReadTargets) -> ReadTargetsResult:
        with step_logging(input.context) as log:
            budget = input.source_budget_seconds
            ends = None if budget is None else time.monotonic() + budget
            # One group per region stands for it in the quota read (the quota is the region's).
            groups = {c.region: c.group for s in input.services for c in s.regions if c.group is not None}
            regions = sorted(groups)
            with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="read-targets") as pool:

                def submit(call: Callable[..., T], *args: object, **kwargs: object) -> Future[T]:
                    # Each read runs in the activity's context (a copy each: the in-place retries
                    # heartbeat and watch for a cancel through it).
                    context = contextvars.copy_context()
                    return pool.submit(lambda: context.run(call, *args, **kwargs))

                quota_reads = {r: submit(self._quota, groups[r]) for r in regions}
                quotas = {r: f.result() for r, f in quota_reads.items()}
                sources = [
                    submit(self._source, s.source, ends)
                    if budget != 0
                    else _unread(s.source, "not read: retries.source_deadline is 0 (never call the region being left)")
                    for s in input.services
                ]
                targets = [[submit(self._region, c, quotas.get(c.region), sized=True) for c in s.regions] for s in input.services]
                result = ReadTargetsResult(
                    readings=[
                        TargetReadings(
                            service=s.service,
                            source=src.result() if isinstance(src, Future) else src,
                            regions=[f.result() for f in found],
                        )
                        for s, src, found in zip(input.services, sources, targets, strict=True)
                    ]
                )
            unreadable = sum(1 for t in result.readings for r in t.regions if not r.readable)
            source_unread = sum(1 for t in result.readings if not t.source.readable)
            log.info(
                "evacuation readings",
                services=len(input.services),
                regions=len(regions),
                unreadable=unreadable,
                source_unread=source_unread,
            )
            return result


def _unread(candidate: CandidateRegion, why: str) -> RegionReading:
    return RegionReading(region=candidate.region, health=None, capacity_scaler=None, error=why)
