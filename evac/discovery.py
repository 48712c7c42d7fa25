"""What discovery found, as a topology, and the drift between a topology file and the cloud.

``providers/gcp/discovery.py`` reads the project and groups what it read into services; here
each service is checked by the same model as ``topology.yaml`` (one it refuses is listed as not
placed, with the model's reason), written as YAML, and compared with a file (``evac topology
diff``, and the readiness check's drift findings). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from evac.topology import ServiceTopology, Topology, gcp_regions
from providers.gcp.bindings import CloudDnsBinding, GcpRegionBinding
from providers.gcp.discovery import Discovery

# The fields of a region's binding that discovery reads from the cloud (the rest, such as
# max_size, are the operator's own and never drift).
REGION_FIELDS = ("backend_service", "backend_service_scope", "instance_group", "instance_group_zone", "address")
DNS_FIELDS = ("managed_zone", "record", "type", "ttl")


class Found(BaseModel):
    """A discovery, checked: the services as the topology model reads them, and what is not placed."""

    project: str
    regions: list[str]
    services: dict[str, ServiceTopology]
    dns_zones: dict[str, dict[str, str]]
    unplaced: list[str]
    # The regions whose own API did not answer, and what it said.
    unread: dict[str, str] = {}

    def topology(self) -> Topology | None:
        """The topology found (None when no service was)."""
        if not self.services:
            return None
        return Topology.model_validate(
            {
                "project": self.project,
                "dns_zones": self.dns_zones,
                "services": {k: v.model_dump() for k, v in self.services.items()},
            }
        )


def checked(discovery: Discovery) -> Found:
    """Each service of ``discovery`` as the topology model reads it; one it refuses is not placed."""
    services: dict[str, ServiceTopology] = {}
    unplaced = list(discovery.unplaced)
    for name, body in discovery.topology["services"].items():
        try:
            services[name] = ServiceTopology.model_validate(body)
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            unplaced.append(f"service {name} (record {body['dns']['record']}): {reasons}")
    zones = {z: v for z, v in discovery.topology["dns_zones"].items() if any(_zone(s) == z for s in services.values())}
    return Found(
        project=discovery.project,
        regions=discovery.regions,
        services=services,
        dns_zones=zones,
        unplaced=unplaced,
        unread=discovery.unread,
    )


def _zone(service: ServiceTopology) -> str | None:
    return service.dns.managed_zone if isinstance(service.dns, CloudDnsBinding) else None


def topology_yaml(found: Found, *, at: datetime) -> str:
    """``found`` as a ``topology.yaml``: what was placed, then what was not, as comments."""
    regions = ", ".join(found.regions)
    head = [
        f"# Discovered by 'evac discover' from project {found.project} (regions: {regions}) at {at:%Y-%m-%d %H:%M:%S}Z.",
        "# The primary region of each service is the one its DNS record points at now.",
    ]
    topology = found.topology()
    body = ""
    if topology is not None:
        body = yaml.safe_dump(plain(topology), sort_keys=False, allow_unicode=True)
    tail = ["# Not placed (not guessed):", *(f"#   - {line}" for line in found.unplaced)] if found.unplaced else []
    return "\n".join(head) + "\n" + body + ("\n".join(tail) + "\n" if tail else "")


def plain(topology: Topology) -> dict[str, Any]:
    """``topology`` as a file would say it: no emulator seed, no unset fields, a global backend
    service's scope left to its default."""
    body = topology.model_dump(mode="json", exclude={"emulator"}, exclude_none=True)
    for service in body["services"].values():
        for binding in service["regions"].values():
            if binding.get("backend_service_scope") == "global":
                del binding["backend_service_scope"]
    return body


@dataclass(frozen=True)
class Drift:
    """One difference between the file and the cloud: the service, where in the file, what."""

    service: str
    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.service}: {self.where}: {self.text}" if self.where else f"{self.service}: {self.text}"


@dataclass(frozen=True)
class Comparison:
    drift: list[Drift]
    # What is so but is no drift: the region serving now, what was not compared.
    notes: list[str]


def compare(services: Mapping[str, ServiceTopology], found: Found, *, whole: bool = True) -> Comparison:
    """How the cloud differs from a file's ``services``, in the regions discovery looked at;
    ``whole``: the file is a whole topology, so the cloud's services it lacks are noted (not
    drift: another team's file may hold them; a readiness check asks about its plan's only)."""
    drift: list[Drift] = []
    notes: list[str] = []
    by_record = {_record(s): n for n, s in found.services.items()}
    matched: set[str] = set()
    for name, mine in services.items():
        if not isinstance(mine.dns, CloudDnsBinding):
            notes.append(f"{name}: not compared (its DNS is {mine.dns.provider}'s, not Google Cloud's)")
            continue
        cloud_name = name if name in found.services else by_record.get(_record(mine))
        if cloud_name is None:
            dark = [r for r in gcp_regions(mine) if r in found.unread]
            if dark:
                notes.append(f"{name}: not compared ({', '.join(dark)} did not answer: its services there are unknown)")
            else:
                drift.append(Drift(name, "", f"not found in the cloud: {_why_missing(mine, found)}"))
            continue
        matched.add(cloud_name)
        drift += _service_drift(name, mine, found.services[cloud_name], cloud_name, found.regions, found.unread)
        cloud = found.services[cloud_name]
        if cloud.primary_region != mine.primary_region:
            notes.append(f"{name}: serves from {cloud.primary_region} now (its primary_region: {mine.primary_region})")
        others = [r for r, b in mine.regions.items() if not isinstance(b, GcpRegionBinding)]
        if others:
            notes.append(f"{name}: {', '.join(others)} not compared (not Google Cloud's)")
        if mine.cloud_sql is not None or mine.spanner is not None:
            notes.append(f"{name}: its databases are not compared (discovery reads load balancing and DNS)")
    if whole:
        for cloud_name in sorted(set(found.services) - matched):
            record = _record(found.services[cloud_name])
            notes.append(f"{cloud_name}: in the cloud (record {record}), not in the file")
    return Comparison(drift=drift, notes=notes)


def _record(service: ServiceTopology) -> str:
    return service.dns.record


def _why_missing(mine: ServiceTopology, found: Found) -> str:
    record = _record(mine)
    about = [line for line in found.unplaced if record in line]
    if about:
        return "; ".join(about)
    return f"no DNS record {record} leads to a backend service serving two of the regions looked at ({', '.join(found.regions)})"


def _service_drift(
    name: str, mine: ServiceTopology, cloud: ServiceTopology, cloud_name: str, looked_at: list[str], unread: Mapping[str, str]
) -> list[Drift]:
    found: list[Drift] = []
    if cloud_name != name:
        found.append(Drift(name, "", f"the cloud's service with its record is named {cloud_name} (label evac-service)"))
    assert isinstance(mine.dns, CloudDnsBinding) and isinstance(cloud.dns, CloudDnsBinding)
    for key in DNS_FIELDS:
        ours, theirs = getattr(mine.dns, key), getattr(cloud.dns, key)
        if ours != theirs:
            found.append(Drift(name, f"dns.{key}", f"the file says {ours}; the cloud has {theirs}"))
    cloud_regions = gcp_regions(cloud)
    for region, binding in gcp_regions(mine).items():
        if region not in looked_at:
            continue
        there = cloud_regions.get(region)
        if there is None and region in unread:
            continue  # its own API did not answer: a regional backend service there is unknown
        if there is None:
            found.append(Drift(name, f"regions.{region}", "the cloud serves the service from no such region"))
            continue
        for key in REGION_FIELDS:
            ours, theirs = getattr(binding, key), getattr(there, key)
            if ours != theirs:
                found.append(
                    Drift(name, f"regions.{region}.{key}", f"the file says {_shown(ours)}; the cloud has {_shown(theirs)}")
                )
    for region in sorted(set(cloud_regions) - set(mine.regions)):
        there = cloud_regions[region]
        serving = f"{there.backend_service}, {there.instance_group}, {there.address}"
        found.append(Drift(name, f"regions.{region}", f"not in the file; the cloud serves it from {region} too ({serving})"))
    return found


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


__all__ = ["Comparison", "Drift", "Found", "checked", "compare", "plain", "topology_yaml"]
