"""The one place that turns a topology's bindings into the resource references the engine hands
to activities.

The engine (``workflows/``) knows only resource *kinds* (``evac/refs.py``) — a region's share of
the load balancing and its health, its group size, the service's DNS record — and passes these
references through without looking inside. Each provider's binding (``providers/<name>/bindings.py``)
makes its own references; a region whose capacity is fixed (a data centre) has no group.
"""

from __future__ import annotations

from evac.refs import BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef
from evac.topology import ServiceTopology


class NoDatabase(ValueError):
    """A service (or a region of it) without the database a data step names."""


class NoGroup(ValueError):
    """A region whose capacity cannot be resized (a data centre's) was asked for its group."""


def group_ref(project: str, topology: ServiceTopology, region: str) -> GroupRef:
    """The resizable group that serves the service in ``region`` (plan checks refuse a scale
    step where there is none: NoGroup here is a bug)."""
    found = topology.regions[region].group_ref(project, region)
    if found is None:
        raise NoGroup(f"{region} has no resizable group (its provider's capacity is fixed)")
    return found


def group_refs(project: str, topology: ServiceTopology, regions: list[str]) -> list[GroupRef]:
    """The resizable groups of ``regions``, in their order (a region whose capacity is fixed has none)."""
    return [g for region in regions if (g := topology.regions[region].group_ref(project, region)) is not None]


def backend_ref(project: str, topology: ServiceTopology, region: str) -> BackendRef:
    """``region``'s share of the service's load balancing."""
    return topology.regions[region].backend_ref(project, region)


def dns_record_ref(project: str, topology: ServiceTopology) -> DnsRecordRef:
    """The record that sends the service's clients to the serving region."""
    return topology.dns.record_ref(project)


def database_ref(project: str, topology: ServiceTopology, region: str, instance: str | None = None) -> DatabaseRef:
    """The service's Cloud SQL instance in ``region`` (``instance``: one by that name there, e.g.
    a replica a re-protect creates)."""
    if topology.cloud_sql is None:
        raise NoDatabase("the service has no Cloud SQL database (cloud_sql)")
    found = topology.cloud_sql.instance_ref(project, region, instance)
    if found is None:
        raise NoDatabase(f"the service's Cloud SQL database has no instance in {region}")
    return found


def database_regions(topology: ServiceTopology) -> list[str]:
    """The regions the service's Cloud SQL database has an instance in ([] when it has none),
    the primary's first."""
    if topology.cloud_sql is None:
        return []
    primary = topology.cloud_sql.primary_region(topology.primary_region)
    return [primary, *(region for region in topology.cloud_sql.instances if region != primary)]


def database_primary_region(topology: ServiceTopology) -> str:
    """The region whose Cloud SQL instance is primary in normal operation."""
    if topology.cloud_sql is None:
        raise NoDatabase("the service has no Cloud SQL database (cloud_sql)")
    return topology.cloud_sql.primary_region(topology.primary_region)


def leader_ref(project: str, topology: ServiceTopology) -> LeaderRef:
    """The service's multi-region database whose leader region a data step sets (Spanner)."""
    if topology.spanner is None:
        raise NoDatabase("the service has no Spanner database (spanner)")
    return topology.spanner.database_ref(project)
