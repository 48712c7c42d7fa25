"""Health: how many of a region's backends the load balancer sees as healthy."""

from __future__ import annotations

from google.cloud import compute_v1
from temporalio import activity

from activities.clients import CALL_TIMEOUT_SECONDS, GcpClients
from activities.errors import cloud_call
from evac.logging import step_logging
from evac.resources import ActivityName, CheckBackendHealth, HealthReport

HEALTHY = "HEALTHY"


class HealthActivities:
    def __init__(self, clients: GcpClients):
        self._clients = clients

    @activity.defn(name=ActivityName.CHECK_BACKEND_HEALTH)
    def check_backend_health(self, input: CheckBackendHealth) -> HealthReport:
        ref = input.backend
        self._clients.require_project(ref.project)
        with step_logging(input.context) as log, cloud_call(f"get health of {ref}"):
            client, location = self._clients.backend_services_for(ref)
            health = client.get_health(
                project=ref.project,
                backend_service=ref.backend_service,
                **location,
                resource_group_reference_resource=compute_v1.ResourceGroupReference(group=ref.group.url),
                timeout=CALL_TIMEOUT_SECONDS,
            )
            statuses = list(health.health_status)
            healthy = sum(1 for s in statuses if s.health_state == HEALTHY)
            log.info("backend health", healthy=healthy, total=len(statuses))
            return HealthReport(healthy=healthy, total=len(statuses))
