"""The topology: which resources serve which service in which region (Google Cloud's names,
URLs and validators are providers/gcp/names.py's).

A topology is data (``topology.yaml``). Plans refer to its services and regions; the
emulator seeds its world from it; workflows receive the slice of it that a run needs.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from evac.documents import InvalidDocument, Problem, did_you_mean, read_yaml, rule_violations, validate

# A region is named as Google Cloud names its regions, a resource as it names resources (the
# only provider the topology binds yet); plans check their regions with the same type.
from providers.gcp.names import ProjectId, Zone, instance_group_url
from providers.gcp.names import Region as Region
from providers.gcp.names import ResourceName as ResourceName

# A whole number that must be written as one: YAML reads true/false/yes/no/on/off as booleans,
# and a boolean must never become a count of 1 or 0.
Count = Annotated[int, Strict()]


def _fully_qualified(value: str) -> str:
    if not value.endswith("."):
        raise ValueError(f"'{value}' must be fully qualified (end with '.')")
    return value


class StrictModel(BaseModel):
    """Every document model refuses unknown keys: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionBinding(StrictModel):
    """What serves one service in one region."""

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
    address: str = Field(description="The address the DNS record holds when this region serves")
    max_size: Count | None = Field(
        default=None,
        ge=0,
        le=2000,
        exclude_if=lambda v: v is None,
        description="Most instances its group may have (an autoscaler's maximum, a budget): an evacuation never "
        "scales it further, and refuses to send the service here if that is too few",
    )

    @field_validator("address")
    @classmethod
    def _address_is_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv4 or IPv6 address") from None
        return value

    def group_url(self, project: str, region: str) -> str:
        return instance_group_url(project, self.instance_group, region=region, zone=self.instance_group_zone)


class DnsBinding(StrictModel):
    """The DNS record that sends clients of a service to the serving region."""

    managed_zone: ResourceName
    record: Annotated[str, AfterValidator(_fully_qualified)] = Field(description="Fully qualified record name, ending with '.'")
    type: Literal["A", "AAAA"] = "A"
    ttl: Count = Field(default=300, ge=1, le=86400)


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
            zone = binding.instance_group_zone
            if zone is not None and not zone.startswith(region + "-"):
                problems.append((("regions", region, "instance_group_zone"), f"zone '{zone}' is not in region {region}"))
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
        if problems:
            raise rule_violations(type(self).__name__, problems)
        return self


class ManagedZone(StrictModel):
    dns_name: Annotated[str, AfterValidator(_fully_qualified)] = Field(description="The zone's DNS name, ending with '.'")


QuotaMetric = Literal["INSTANCES", "CPUS"]
"""The regional Compute Engine quotas the emulator models (``regions.get`` answers them)."""


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


class Topology(StrictModel):
    project: ProjectId
    dns_zones: dict[ResourceName, ManagedZone] = Field(min_length=1)
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
            zone = self.dns_zones.get(service.dns.managed_zone)
            if zone is None:
                problems.append(
                    (("services", name, "dns", "managed_zone"), f"zone '{service.dns.managed_zone}' is not in dns_zones")
                )
            elif not _inside(service.dns.record, zone.dns_name):
                problems.append(
                    (("services", name, "dns", "record"), f"'{service.dns.record}' is not inside zone '{zone.dns_name}'")
                )
            for region, binding in service.regions.items():
                groups.add(f"{region}/{binding.instance_group}")
        for key in self.emulator.group_sizes:
            if key not in groups:
                problems.append((("emulator", "group_sizes", key), "names no '<region>/<instance_group>' of any service"))
        regions = sorted({region for service in self.services.values() for region in service.regions})
        for region in self.emulator.region_quotas:
            if region not in regions:
                hint = did_you_mean(region, regions)
                message = f"'{region}' is not a region of any service{hint} (they are: {', '.join(regions)})"
                problems.append((("emulator", "region_quotas", region), message))
        return problems


def _inside(record: str, zone: str) -> bool:
    """Whether a DNS name is the zone's apex or below it (DNS names ignore case)."""
    record, zone = record.lower(), zone.lower()
    return record == zone or record.endswith("." + zone)


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file; raises InvalidDocument with every error located."""
    doc = read_yaml(path)
    topology = validate(doc, Topology)
    problems = topology.reference_problems()
    if problems:
        raise InvalidDocument([doc.error(loc, message) for loc, message in problems])
    return topology
