"""Google Cloud's topology bindings: what serves a service in a Google Cloud region (a backend
service's backend that is a managed instance group), and a record in a Cloud DNS zone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evac.document_types import Count, DnsName, IpAddress, StrictModel
from providers.gcp.names import REGION_NAME, ResourceName, Zone, instance_group_url
from providers.gcp.refs import CloudDnsRecordRef, GcpBackendRef, GcpGroupRef


class GcpRegionBinding(StrictModel):
    """What serves one service in one Google Cloud region (``provider: gcp``, the default)."""

    provider: Literal["gcp"] = Field(default="gcp", exclude_if=lambda v: v == "gcp")
    backend_service: ResourceName = Field(description="Backend service whose backends include this region's instance group")
    backend_service_scope: Literal["global", "regional"] = Field(
        default="global",
        description="global: a global backend service (backendServices); "
        "regional: a regional backend service in this region (regionBackendServices)",
    )
    instance_group: ResourceName = Field(description="Managed instance group (and its instance group) serving in this region")
    instance_group_zone: Zone | None = Field(
        default=None,
        description="The zone of a zonal managed instance group; unset: a regional managed instance group",
    )
    address: IpAddress = Field(description="The address the DNS record holds when this region serves")
    max_size: Count | None = Field(
        default=None,
        ge=0,
        le=2000,
        exclude_if=lambda v: v is None,
        description="Most instances its group may have (an autoscaler's maximum, a budget): an evacuation never "
        "scales it further, and refuses to send the service here if that is too few",
    )

    @property
    def drainable(self) -> bool:
        """Whether its share can go to 0 while it is the service's only backend there: Google
        refuses to drain a regional backend service's only backend (the DNS shift moves it)."""
        return self.backend_service_scope == "global"

    def problems(self, region: str) -> list[tuple[tuple[str, ...], str]]:
        """What is wrong with it as ``region``'s binding (paths below the binding)."""
        found: list[tuple[tuple[str, ...], str]] = []
        if not REGION_NAME.match(region):
            found.append(((), f"'{region}' is not a Google Cloud region name (like europe-west1); a data centre's "
                              "binding says provider: onprem"))  # fmt: skip
        zone = self.instance_group_zone
        if zone is not None and not zone.startswith(region + "-"):
            found.append((("instance_group_zone",), f"zone '{zone}' is not in region {region}"))
        return found

    def group_url(self, project: str, region: str) -> str:
        return instance_group_url(project, self.instance_group, region=region, zone=self.instance_group_zone)

    def group_ref(self, project: str, region: str) -> GcpGroupRef | None:
        return GcpGroupRef(project=project, region=region, group=self.instance_group, zone=self.instance_group_zone)

    def backend_ref(self, project: str, region: str) -> GcpBackendRef:
        return GcpBackendRef(
            project=project,
            backend_service=self.backend_service,
            scope=self.backend_service_scope,
            group=GcpGroupRef(project=project, region=region, group=self.instance_group, zone=self.instance_group_zone),
        )


class CloudDnsBinding(StrictModel):
    """The Cloud DNS record that sends clients of a service to the serving region (the default)."""

    provider: Literal["gcp"] = Field(default="gcp", exclude_if=lambda v: v == "gcp")
    managed_zone: ResourceName
    record: DnsName = Field(description="Fully qualified record name, ending with '.'")
    type: Literal["A", "AAAA"] = "A"
    ttl: Count = Field(default=300, ge=1, le=86400)

    def record_ref(self, project: str) -> CloudDnsRecordRef:
        return CloudDnsRecordRef(project=project, managed_zone=self.managed_zone, name=self.record, type=self.type)
