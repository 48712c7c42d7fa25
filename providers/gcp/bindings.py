"""Google Cloud's topology bindings: what serves a service in a Google Cloud region (a backend
service's backend that is a managed instance group), a record in a Cloud DNS zone, and the
service's databases (Cloud SQL instances by region, a multi-region Spanner database)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from evac.document_types import Count, DnsName, IpAddress, StrictModel
from providers.gcp.names import REGION_NAME, Region, ResourceName, Zone, instance_group_url
from providers.gcp.refs import CloudDnsRecordRef, CloudSqlInstanceRef, GcpBackendRef, GcpGroupRef, SpannerDatabaseRef


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


# Cloud SQL: an instance name is a lowercase letter, then lowercase letters, digits and hyphens,
# at most 98 characters (with the project id it must fit in 100 characters of a connection name).
CLOUD_SQL_INSTANCE = re.compile(r"^[a-z][-a-z0-9]{0,97}\Z")
# Spanner: an instance id is 2-64 characters, a database id 2-30.
SPANNER_INSTANCE = re.compile(r"^[a-z][-a-z0-9]{0,62}[a-z0-9]\Z")
SPANNER_DATABASE = re.compile(r"^[a-z][a-z0-9_\-]{0,28}[a-z0-9]\Z")


def _cloud_sql_instance(value: str) -> str:
    if not CLOUD_SQL_INSTANCE.match(value):
        raise ValueError(
            f"'{value}' is not a Cloud SQL instance name (a lowercase letter, then lowercase letters, digits and "
            "'-', at most 98 characters)"
        )
    return value


def _spanner_instance(value: str) -> str:
    if not SPANNER_INSTANCE.match(value):
        raise ValueError(
            f"'{value}' is not a Spanner instance id (2-64 characters: a lowercase letter, then lowercase letters, "
            "digits and '-', not ending with '-')"
        )
    return value


def _spanner_database(value: str) -> str:
    if not SPANNER_DATABASE.match(value):
        raise ValueError(
            f"'{value}' is not a Spanner database id (2-30 characters: a lowercase letter, then lowercase letters, "
            "digits, '_' and '-', ending with a letter or digit)"
        )
    return value


CloudSqlInstanceName = Annotated[str, AfterValidator(_cloud_sql_instance)]
SpannerInstanceId = Annotated[str, AfterValidator(_spanner_instance)]
SpannerDatabaseId = Annotated[str, AfterValidator(_spanner_database)]


class CloudSqlBinding(StrictModel):
    """A service's Cloud SQL database: one instance per region, one of them the primary, the
    others its cross-region replicas (the first of them its DR replica)."""

    primary: Region | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The region whose instance is primary in normal operation (default: the service's primary_region)",
    )
    instances: dict[Region, CloudSqlInstanceName] = Field(
        min_length=2, description="Region -> Cloud SQL instance name, each one of the service's Google Cloud regions"
    )

    def primary_region(self, service_primary: str) -> str:
        return self.primary or service_primary

    def instance_ref(self, project: str, region: str, name: str | None = None) -> CloudSqlInstanceRef | None:
        """The instance in ``region``: the topology's, or one named ``name`` there (a new replica)."""
        name = name or self.instances.get(region)
        return None if name is None else CloudSqlInstanceRef(project=project, instance=name, region=region)

    def problems(self, regions: list[str], service_primary: str) -> list[tuple[tuple[str, ...], str]]:
        """What is wrong with it in a service served from ``regions`` (its Google Cloud ones)."""
        found: list[tuple[tuple[str, ...], str]] = []
        for region in self.instances:
            if region not in regions:
                message = f"'{region}' is not one of the service's Google Cloud regions (it has: {', '.join(regions)})"
                found.append((("instances", region), message))
        primary = self.primary_region(service_primary)
        if primary not in self.instances:
            where: tuple[str, ...] = ("primary",) if self.primary is not None else ("instances",)
            message = f"the primary region '{primary}' has no instance (instances: {', '.join(self.instances)})"
            found.append((where, message))
        return found


class SpannerBinding(StrictModel):
    """A service's multi-region Spanner database, whose default leader is one of its regions."""

    instance: SpannerInstanceId
    database: SpannerDatabaseId
    leader: Region | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The default leader in normal operation (default: the service's primary_region)",
    )

    def leader_region(self, service_primary: str) -> str:
        return self.leader or service_primary

    def database_ref(self, project: str) -> SpannerDatabaseRef:
        return SpannerDatabaseRef(project=project, instance=self.instance, database=self.database)

    def problems(self, regions: list[str]) -> list[tuple[tuple[str, ...], str]]:
        if self.leader is not None and self.leader not in regions:
            message = f"'{self.leader}' is not one of the service's Google Cloud regions (it has: {', '.join(regions)})"
            return [(("leader",), message)]
        return []
