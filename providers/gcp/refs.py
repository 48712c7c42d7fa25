"""Google Cloud's resource references: a managed instance group, a backend service's backend
that is a region's group, a Cloud DNS record, a Cloud SQL instance, a Spanner database."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evac.refs import GLOBAL, BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef, narrowed
from providers.gcp.names import instance_group_url


class GcpGroupRef(GroupRef):
    provider: Literal["gcp"] = "gcp"
    project: str
    group: str = Field(description="Managed instance group name (same as its instance group)")
    zone: str | None = Field(default=None, description="Set for a zonal group; None for a regional one")

    @property
    def url(self) -> str:
        return instance_group_url(self.project, self.group, region=self.region, zone=self.zone)

    @property
    def control_plane(self) -> str:
        """Whose API serves calls about it: its region's (a zonal group's too)."""
        return self.region

    def __str__(self) -> str:
        return f"instance group {self.zone or self.region}/{self.group}"


class GcpBackendRef(BackendRef):
    """The backend of one backend service that is one region's instance group."""

    provider: Literal["gcp"] = "gcp"
    project: str
    backend_service: str
    scope: Literal["global", "regional"] = Field(
        default="global", description="regional: a regional backend service in the group's region"
    )
    group: GcpGroupRef

    @property
    def region(self) -> str:
        return self.group.region

    @property
    def control_plane(self) -> str:
        """Whose API serves calls about it: a global backend service is global (its backend in a
        dead region is drained through the global API), a regional one is its region's."""
        return self.group.region if self.scope == "regional" else GLOBAL

    @property
    def service_label(self) -> str:
        if self.scope == "regional":
            return f"regional backend service {self.group.region}/{self.backend_service}"
        return f"backend service {self.backend_service}"

    def __str__(self) -> str:
        return f"backend {self.group.zone or self.group.region}/{self.group.group} of {self.service_label}"


class CloudDnsRecordRef(DnsRecordRef):
    provider: Literal["gcp"] = "gcp"
    project: str
    managed_zone: str

    @property
    def control_plane(self) -> str:
        """Cloud DNS is a global service."""
        return GLOBAL

    def __str__(self) -> str:
        return f"DNS record {self.name} ({self.type}) in zone {self.managed_zone}"


class CloudSqlInstanceRef(DatabaseRef):
    """One region's Cloud SQL instance of a service (its primary, or a cross-region replica)."""

    provider: Literal["gcp"] = "gcp"
    project: str
    instance: str = Field(description="The instance's name (unique in its project)")

    @property
    def name(self) -> str:
        return self.instance

    @property
    def control_plane(self) -> str:
        """The Cloud SQL Admin API is global, but an instance in a region that is down does not
        answer for itself: calls about it depend on its region."""
        return self.region

    def __str__(self) -> str:
        return f"Cloud SQL instance {self.region}/{self.instance}"


class SpannerDatabaseRef(LeaderRef):
    """A database of a multi-region Spanner instance, whose default leader is one of its regions."""

    provider: Literal["gcp"] = "gcp"
    project: str
    instance: str
    database: str

    @property
    def control_plane(self) -> str:
        """A multi-region instance's admin API does not depend on any one of its regions."""
        return GLOBAL

    def __str__(self) -> str:
        return f"Spanner database {self.instance}/{self.database}"


# The provider's code narrows a reference it was given to its own class.
ours = narrowed
