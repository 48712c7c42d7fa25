"""Health: how many of a region's backends the load balancer sees as healthy, once or until
enough are."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.budget import serving
from activities.errors import provider_call, worth_repeating
from activities.heartbeat import heartbeating
from activities.retry import idempotent, pause
from evac.refs import BackendRef
from evac.resources import ActivityName, CheckBackendHealth, HealthReport, HealthWait, WaitForHealthy
from providers.registry import Providers


class HealthActivities:
    def __init__(self, providers: Providers):
        self._providers = providers

    def read_health(self, ref: BackendRef) -> HealthReport:
        """One reading through the reference's provider, its errors translated (not retried)."""
        with provider_call():
            return self._providers.traffic(ref).read_health(ref)

    @activity.defn(name=ActivityName.CHECK_BACKEND_HEALTH, no_thread_cancel_exception=True)
    def check_backend_health(self, input: CheckBackendHealth) -> HealthReport:
        with serving(input.context) as log:
            report = idempotent(f"get health of {input.backend}", lambda: self.read_health(input.backend))
            log.info("backend health", healthy=report.healthy, total=report.total)
            return report

    @activity.defn(name=ActivityName.WAIT_FOR_HEALTHY, no_thread_cancel_exception=True)
    def wait_for_healthy_backends(self, input: WaitForHealthy) -> HealthWait:
        """Poll ``getHealth`` every ``interval_seconds`` until ``min_healthy`` backends are
        healthy (``reached``) or ``deadline`` passes (not reached: the workflow decides).

        Transient errors are tolerated until the deadline (the last one is reported); a
        refusal raises. Polls and the last report travel in the heartbeat, so a retried
        attempt continues the count. A cancel request stops the wait at once.
        """
        ref = input.backend
        with serving(input.context) as log, heartbeating() as beat:
            polls = int(beat.earlier.get("polls", 0))
            earlier_report = beat.earlier.get("report")
            report = HealthReport.model_validate(earlier_report) if earlier_report else HealthReport(healthy=0, total=0)
            last_error: str | None = beat.earlier.get("last_error")
            while True:
                polls += 1
                try:
                    report = self.read_health(ref)
                except Exception as exc:
                    if not worth_repeating(exc):
                        raise
                    last_error = str(exc)
                    log.info("transient error polling health; polling on", error=last_error)
                beat.record(polls=polls, report=report.model_dump(), last_error=last_error)
                if report.healthy >= input.min_healthy:
                    log.info("backends healthy", healthy=report.healthy, total=report.total, polls=polls)
                    return HealthWait(report=report, reached=True, polls=polls, last_error=last_error)
                left = (input.deadline - datetime.now(UTC)).total_seconds()
                if left <= 0:
                    log.info("backends not healthy by the deadline", healthy=report.healthy, total=report.total)
                    return HealthWait(report=report, reached=False, polls=polls, last_error=last_error)
                pause(min(input.interval_seconds, left), abandon_on_cancel=True)
