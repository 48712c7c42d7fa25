"""The provider seam: the one place that turns a topology's Google Cloud section into the
resource references that the engine hands to activities.

The engine (``workflows/``) knows only resource *kinds* — a region's backend capacity, its
group size, the service's DNS record, backend health — and passes these references through
without looking inside. What a reference names (backend services, managed instance groups,
Cloud DNS zones; their URL patterns and client choice) is Google Cloud's, and is read only
here and in ``activities/``. A second provider (Route 53, a generic DNS API) would add its own
topology section, its references here and its activities — not change the engine.
"""

from __future__ import annotations

from evac.resources import CloudDnsRecordRef, GcpBackendRef, GcpGroupRef, GroupRef
from evac.topology import ServiceTopology


def group_ref(project: str, topology: ServiceTopology, region: str) -> GcpGroupRef:
    """The managed instance group that serves the service in ``region``."""
    binding = topology.regions[region]
    return GcpGroupRef(project=project, region=region, group=binding.instance_group, zone=binding.instance_group_zone)


def group_refs(project: str, topology: ServiceTopology, regions: list[str]) -> list[GroupRef]:
    """The resizable groups of ``regions``, in their order (a region whose capacity is fixed has none)."""
    return [group_ref(project, topology, region) for region in regions]


def backend_ref(project: str, topology: ServiceTopology, region: str) -> GcpBackendRef:
    """The backend (of the service's backend service) that is ``region``'s group."""
    binding = topology.regions[region]
    return GcpBackendRef(
        project=project,
        backend_service=binding.backend_service,
        scope=binding.backend_service_scope,
        group=group_ref(project, topology, region),
    )


def dns_record_ref(project: str, topology: ServiceTopology) -> CloudDnsRecordRef:
    """The record that sends the service's clients to the serving region."""
    dns = topology.dns
    return CloudDnsRecordRef(project=project, managed_zone=dns.managed_zone, name=dns.record, type=dns.type)
