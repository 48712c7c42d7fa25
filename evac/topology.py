"""The topology: which resources serve which service in which region (Google Cloud's names,
URLs and validators are providers/gcp/names.py's).

A topology is data (``topology.yaml``). Plans refer to its services and regions; the
emulator seeds its world from it; workflows receive the slice of it that a run needs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Strict, Tag, model_validator

from evac.document_types import Count, DnsName, Region, StrictModel, inside
from evac.documents import InvalidDocument, Problem, did_you_mean, read_yaml, rule_violations, validate
from providers.gcp.bindings import CloudDnsBinding, CloudSqlBinding, GcpRegionBinding, SpannerBinding
from providers.gcp.names import ProjectId
from providers.gcp.names import ResourceName as ResourceName
from providers.onprem.bindings import OnPremRegionBinding, Rfc2136DnsBinding

# The providers a binding may name (``provider:``); a binding that names none is Google Cloud's.
PROVIDERS = frozenset({"gcp", "onprem"})


def _provider(value: Any) -> str:
    """A binding's provider: its ``provider`` key; none given is Google Cloud."""
    found = value.get("provider", "gcp") if isinstance(value, dict) else getattr(value, "provider", "gcp")
    return str(found)


# What serves a service in one region, by provider (``provider:`` in the binding; gcp when left out).
RegionBinding = Annotated[
    Annotated[GcpRegionBinding, Tag("gcp")] | Annotated[OnPremRegionBinding, Tag("onprem")],
    Discriminator(_provider, custom_error_type="provider", custom_error_message="provider is gcp (the default) or onprem"),
]
# The record that sends a service's clients to the serving region, by provider.
DnsBinding = Annotated[
    Annotated[CloudDnsBinding, Tag("gcp")] | Annotated[Rfc2136DnsBinding, Tag("onprem")],
    Discriminator(_provider, custom_error_type="provider", custom_error_message="provider is gcp (the default) or onprem"),
]


class ServiceTopology(StrictModel):
    primary_region: Region = Field(description="The region that serves in normal operation")
    dns: DnsBinding
    regions: dict[Region, RegionBinding] = Field(min_length=2)
    tier: ResourceName | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The evacuation group this service leaves a region with (one of the topology's tiers)",
    )
    capacity_ratio: Annotated[float, Strict()] | None = Field(
        default=None,
        ge=0.0,
        le=10.0,
        exclude_if=lambda v: v is None,
        description="Evacuation: the target must have this share of the healthy backends serving in the region "
        "being left before its drain (overrides 'evac evacuate --capacity-ratio'; e.g. 2.0 when the target "
        "already carries as much load of its own)",
    )
    cloud_sql: CloudSqlBinding | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The service's Cloud SQL database: its instance in each region, which one is primary",
    )
    spanner: SpannerBinding | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The service's multi-region Spanner database and its default leader",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServiceTopology:
        """Rules across the service's fields, each reported at the field it concerns."""
        problems: list[Problem] = []
        if self.primary_region not in self.regions:
            message = f"'{self.primary_region}' is not one of the service's regions (it has: {', '.join(self.regions)})"
            problems.append((("primary_region",), message))
        version = 4 if self.dns.type == "A" else 6
        region_of: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
        for region, binding in self.regions.items():
            problems += [(("regions", region, *path), message) for path, message in binding.problems(region)]
            where = ("regions", region, "address")
            address = ipaddress.ip_address(binding.address)
            if address.version != version:
                fit = f"as a DNS record of type {self.dns.type} needs"
                problems.append((where, f"'{binding.address}' is not an IPv{version} address, {fit}"))
            elif address in region_of:
                same = f"is also the address of {region_of[address]}: shifting DNS between them would change nothing"
                problems.append((where, f"'{binding.address}' {same}"))
            else:
                region_of[address] = region
        google_regions = list(gcp_regions(self))
        if self.cloud_sql is not None:
            problems += [
                (("cloud_sql", *path), message) for path, message in self.cloud_sql.problems(google_regions, self.primary_region)
            ]
        if self.spanner is not None:
            problems += [(("spanner", *path), message) for path, message in self.spanner.problems(google_regions)]
        if problems:
            raise rule_violations(type(self).__name__, problems)
        return self


class ManagedZone(StrictModel):
    dns_name: DnsName = Field(description="The zone's DNS name, ending with '.'")


QuotaMetric = Literal["INSTANCES", "CPUS"]
"""The regional Compute Engine quotas the emulator models (``regions.get`` answers them)."""


MACHINE_TYPE_PATTERN = r"^(e2-(micro|small|medium)|[a-z][a-z0-9]*-(standard|highmem|highcpu)-[1-9][0-9]{0,2})$"
"""A predefined Compute Engine machine type (``e2-standard-4``): the emulator derives its vCPUs
and memory from the name (``emulator/machine_types.py``)."""


class EmulatorSeed(StrictModel):
    """How the emulator sizes the world it builds from this topology (ignored in production)."""

    default_group_size: Count = Field(default=2, ge=0, le=1000)
    group_sizes: dict[str, Annotated[Count, Field(ge=0)]] = Field(
        default_factory=dict, description="Initial size per '<region>/<instance_group>'"
    )
    region_quotas: dict[Region, dict[QuotaMetric, Annotated[Count, Field(ge=0)]]] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Quota limits per region and metric, e.g. {us-central1: {INSTANCES: 4}}; "
        "a metric left out keeps the emulator's default limit",
    )
    machine_types: dict[str, Annotated[str, Field(pattern=MACHINE_TYPE_PATTERN)]] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Machine type per '<region>/<instance_group>' (its instance template's), e.g. "
        "{us-central1/checkout-uc1: e2-standard-4}; default e2-standard-2 (2 vCPUs)",
    )
    replication_lag: dict[str, Annotated[float, Strict(), Field(ge=0)]] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="Seconds a Cloud SQL replica starts behind its primary, by instance name (default 0)",
    )


class Topology(StrictModel):
    project: ProjectId
    dns_zones: dict[ResourceName, ManagedZone] = Field(
        default_factory=dict, description="The Cloud DNS zones the services' records are in (those with provider gcp)"
    )
    services: dict[ResourceName, ServiceTopology] = Field(min_length=1)
    tiers: list[ResourceName] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Evacuation order: the tiers in the order they leave a region (e.g. data stores' read paths "
        "before front ends); services with no tier leave last",
    )
    emulator: EmulatorSeed = Field(default_factory=EmulatorSeed)

    def reference_problems(self) -> list[Problem]:
        """Cross-references that a field-by-field check cannot see, each with its location."""
        problems: list[Problem] = []
        groups = set()
        for i, tier in enumerate(self.tiers):
            if tier in self.tiers[:i]:
                problems.append((("tiers", i), f"tier '{tier}' is listed twice"))
        for name, service in self.services.items():
            if service.tier is not None and service.tier not in self.tiers:
                declared = ", ".join(self.tiers) or "none"
                hint = did_you_mean(service.tier, self.tiers)
                message = f"tier '{service.tier}' is not one of the topology's tiers{hint} (declared: {declared})"
                problems.append((("services", name, "tier"), message))
            dns = service.dns
            zone_name: str | None = dns.zone if isinstance(dns, Rfc2136DnsBinding) else None
            if isinstance(dns, CloudDnsBinding):
                if dns.managed_zone in self.dns_zones:
                    zone_name = self.dns_zones[dns.managed_zone].dns_name
                else:
                    where = ("services", name, "dns", "managed_zone")
                    problems.append((where, f"zone '{dns.managed_zone}' is not in dns_zones"))
            if zone_name is not None and not inside(dns.record, zone_name):
                problems.append((("services", name, "dns", "record"), f"'{dns.record}' is not inside zone '{zone_name}'"))
            for region, binding in service.regions.items():
                if isinstance(binding, GcpRegionBinding):
                    groups.add(f"{region}/{binding.instance_group}")
        for key in self.emulator.group_sizes:
            if key not in groups:
                problems.append((("emulator", "group_sizes", key), "names no '<region>/<instance_group>' of any service"))
        for key in self.emulator.machine_types:
            if key not in groups:
                hint = did_you_mean(key, sorted(groups))
                message = f"names no '<region>/<instance_group>' of any service{hint}"
                problems.append((("emulator", "machine_types", key), message))
        sql_instances: dict[str, str] = {}
        for name, service in self.services.items():
            if service.cloud_sql is None:
                continue
            for region, instance in service.cloud_sql.instances.items():
                if instance in sql_instances:
                    message = (
                        f"Cloud SQL instance '{instance}' is also {sql_instances[instance]}'s (names are unique in a project)"
                    )
                    problems.append((("services", name, "cloud_sql", "instances", region), message))
                else:
                    sql_instances[instance] = name
        for instance in self.emulator.replication_lag:
            if instance not in sql_instances:
                hint = did_you_mean(instance, list(sql_instances))
                problems.append(
                    (("emulator", "replication_lag", instance), f"'{instance}' is no service's Cloud SQL instance{hint}")
                )
        regions = sorted({region for service in self.services.values() for region in service.regions})
        for region in self.emulator.region_quotas:
            if region not in regions:
                hint = did_you_mean(region, regions)
                message = f"'{region}' is not a region of any service{hint} (they are: {', '.join(regions)})"
                problems.append((("emulator", "region_quotas", region), message))
        return problems


def gcp_regions(service: ServiceTopology) -> dict[str, GcpRegionBinding]:
    """The service's regions that are Google Cloud's (what the emulator serves), by name."""
    return {region: b for region, b in service.regions.items() if isinstance(b, GcpRegionBinding)}


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file; raises InvalidDocument with every error located."""
    doc = read_yaml(path)
    topology = validate(doc, Topology, union_tags=PROVIDERS)
    problems = topology.reference_problems()
    if problems:
        raise InvalidDocument([doc.error(loc, message) for loc, message in problems])
    return topology
