"""Readiness reads for a region evacuation: where each service could go (``--auto-target``).

``read_targets`` reads, for every candidate region of every service, the backend's health
(``getHealth``, as ``check_backend_health``) and its capacity scaler (as
``read_backend_capacity``), many at once in a small thread pool. Each read retries its
transient errors in place; one still transient after that fails the activity, which Temporal
retries until the step deadline (a 5xx burst must not make a healthy region look unusable). A
region the cloud refuses to read (404, 403) is reported unreadable, with why, and the choice
passes it over — it never fails the evacuation. The choice itself is the
workflow's (``evac.evacuation.choose_target``).
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clients import GcpClients
from activities.errors import worth_repeating
from activities.health import HealthActivities
from activities.retry import idempotent
from activities.traffic import TrafficActivities
from evac.activity_api import READ_TARGETS
from evac.evacuation import CandidateRegion, ReadTargets, ReadTargetsResult, RegionReading, TargetReadings
from evac.logging import step_logging

# Reads in flight at once in one read_targets call.
READ_THREADS = 16


class EvacuationActivities:
    def __init__(self, clients: GcpClients) -> None:
        self._health = HealthActivities(clients)
        self._traffic = TrafficActivities(clients)

    def _read(self, candidate: CandidateRegion) -> RegionReading:
        ref = candidate.backend
        try:
            health = idempotent(f"get health of {ref}", lambda: self._health._get_health(ref))
            _, backend = idempotent(f"read {ref.service_label}", lambda: self._traffic._get(ref))
        except ApplicationError as exc:
            if worth_repeating(exc):
                raise  # still transient after the in-place retries: Temporal retries the whole read, to its deadline
            # refused (404, 403 …): the choice passes this region over
            return RegionReading(region=candidate.region, health=None, capacity_scaler=None, error=str(exc)[:300])
        return RegionReading(region=candidate.region, health=health, capacity_scaler=backend.capacity_scaler)

    @activity.defn(name=READ_TARGETS, no_thread_cancel_exception=True)
    def read_targets(self, input: ReadTargets) -> ReadTargetsResult:
        with step_logging(input.context) as log:
            candidates = [c for s in input.services for c in s.regions]
            with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="read-targets") as pool:
                # Each read runs in the activity's context (a copy each: the in-place retries
                # heartbeat and watch for a cancel through it).
                futures = [pool.submit(contextvars.copy_context().run, self._read, c) for c in candidates]
                readings = iter([f.result() for f in futures])
            result = ReadTargetsResult(
                readings=[TargetReadings(service=s.service, regions=[next(readings) for _ in s.regions]) for s in input.services]
            )
            unreadable = sum(1 for t in result.readings for r in t.regions if r.health is None)
            log.info("target readiness read", services=len(input.services), regions=len(candidates), unreadable=unreadable)
            return result
