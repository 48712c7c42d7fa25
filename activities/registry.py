"""Every activity the worker registers, bound to one set of clients.

Each is registered under the name of its stub in ``evac/activity_api.py``, with the same input
and result types (``tests/unit/test_activity_contract.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from activities.blackouts import BlackoutActivities
from activities.capacity import CapacityActivities
from activities.databases import DatabaseActivities
from activities.dns import DnsActivities
from activities.evacuation import EvacuationActivities
from activities.guardian import GuardianActivities
from activities.health import HealthActivities
from activities.notify import NotificationTargets, NotifyActivities
from activities.probes import ProbeActivities
from activities.readiness import ReadinessActivities
from activities.step_reads import StepReadActivities
from activities.traffic import TrafficActivities
from providers.gcp.clients import GcpClients
from providers.registry import Providers


def all_activities(
    clients: GcpClients,
    prometheus_url: str | None = None,
    notification_targets: NotificationTargets | None = None,
    temporal_client: Client | None = None,
    tsig_key_dir: Path | None = None,
) -> list[Callable[..., object]]:
    """``temporal_client``: the worker's own, for the guardian's facts (None: those facts are unknown);
    ``tsig_key_dir``: the on-premises DNS keys (None: no on-premises DNS)."""
    providers = Providers.of(clients, tsig_key_dir)
    traffic = TrafficActivities(providers)
    capacity = CapacityActivities(providers)
    dns = DnsActivities(providers)
    health = HealthActivities(providers)
    probes = ProbeActivities(health, prometheus_url, clients.endpoint)
    blackouts = BlackoutActivities()
    notify = NotifyActivities(notification_targets or NotificationTargets())
    guardian = GuardianActivities(temporal_client, providers)
    databases = DatabaseActivities(providers)
    step_reads = StepReadActivities(traffic, capacity, dns, health, databases)
    evacuation = EvacuationActivities(providers)
    readiness = ReadinessActivities(providers, temporal_client)
    return [
        traffic.read_backend_capacity,
        traffic.set_backend_capacity,
        capacity.read_group_size,
        capacity.resize_group,
        dns.read_dns_record,
        dns.set_dns_record,
        databases.read_database_role,
        databases.set_database_role,
        databases.read_replication_lag,
        databases.read_database_leader,
        databases.set_database_leader,
        health.check_backend_health,
        step_reads.read_before_change,
        step_reads.preflight_reads,
        health.wait_for_healthy_backends,
        probes.check_stop_conditions,
        blackouts.check_blackouts,
        notify.send_notification,
        guardian.gather_facts,
        evacuation.read_targets,
        readiness.evaluate_readiness,
        readiness.previous_readiness,
        readiness.last_passed_drill,
    ]
