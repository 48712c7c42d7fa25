"""Generated topologies of any size, for benchmarks and evacuation rehearsals.

``generate_topology(1000)`` is a topology of 1,000 services, each with a global backend
service whose backends are a regional managed instance group in every region, and a DNS
record in one managed zone pointing at its primary region. Every fourth service (index 0,
4, 8 …) has a Cloud SQL database with an instance in every region, primary in its primary
region; every eighth (index 1, 9, 17 …) a multi-region Spanner database led from there. Primary regions take turns
(service ``i`` is primary in ``regions[i % len(regions)]``), so every region has services
to evacuate. The same arguments always give the same topology.

``python -m emulator.generate 1000 > topology.yaml`` prints one; ``evac emulator serve
--generate 1000`` serves one without a file.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from evac.topology import Topology

DEFAULT_REGIONS = ("europe-west1", "us-central1", "asia-east1")
DEFAULT_PROJECT = "evac-gen"
ZONE_NAME = "gen-zone"
ZONE_DNS_NAME = "gen.example.com."
MAX_SERVICES = 60_000
"""Each region's addresses come from one /16 (10.<region>.0.0/16)."""
MAX_REGIONS = 200
PRIMARY_GROUP_SIZE = 2
"""Instances per group in a service's primary region; the other regions run one, as a
standby that a failover scales up."""
STANDBY_GROUP_SIZE = 1

_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+\Z")


def service_name(index: int, services: int) -> str:
    """``svc-0007``: zero-padded to the width of the largest index, so names sort in order."""
    return f"svc-{index:0{max(4, len(str(services - 1)))}d}"


def _check(services: int, regions: list[str]) -> None:
    if isinstance(services, bool) or not isinstance(services, int) or not 1 <= services <= MAX_SERVICES:
        raise ValueError(f"the number of services must be a whole number from 1 to {MAX_SERVICES}, not {services!r}")
    if not 2 <= len(regions) <= MAX_REGIONS:
        raise ValueError(
            f"a generated topology needs 2 to {MAX_REGIONS} regions (a service fails over between them), not {len(regions)}"
        )
    for region in regions:
        if not _REGION.match(region):
            raise ValueError(f"'{region}' is not a Google Cloud region name (like europe-west1)")
    repeated = sorted({r for r in regions if regions.count(r) > 1})
    if repeated:
        raise ValueError(f"region {repeated[0]} is named more than once")


def generate_topology(
    services: int, regions: list[str] | tuple[str, ...] = DEFAULT_REGIONS, project: str = DEFAULT_PROJECT
) -> dict[str, Any]:
    """A valid Evac topology document (the dict a topology YAML holds) of ``services``
    services served in every one of ``regions``. Raises ``ValueError`` naming the bad argument."""
    regions = list(regions)
    _check(services, regions)
    service_docs: dict[str, Any] = {}
    group_sizes: dict[str, int] = {}
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for index in range(services):
        name = service_name(index, services)
        primary = regions[index % len(regions)]
        bindings: dict[str, Any] = {}
        for r, region in enumerate(regions):
            group = f"{name}-{region}"
            # 10.<r+1>.x.y: unique per service and region; host part never .0 or .255 of a /24 tail.
            host = index + 1
            address = str(ipaddress.IPv4Address(base + ((r + 1) << 16) + host))
            bindings[region] = {"backend_service": name, "instance_group": group, "address": address}
            if region == primary:
                group_sizes[f"{region}/{group}"] = PRIMARY_GROUP_SIZE
        service_docs[name] = {
            "primary_region": primary,
            "dns": {"managed_zone": ZONE_NAME, "record": f"{name}.{ZONE_DNS_NAME}", "type": "A", "ttl": 60},
            "regions": bindings,
        }
        if index % 4 == 0:
            # Every fourth service has a Cloud SQL database: its primary in the service's primary region
            # (not more: the largest evacuation's input, which carries the topologies, must stay
            # well below Temporal's payload limit).
            service_docs[name]["cloud_sql"] = {"instances": {region: f"{name}-db-{region}" for region in regions}}
        if index % 8 == 1:
            # Every eighth has a multi-region Spanner database led from its primary region.
            service_docs[name]["spanner"] = {"instance": f"{name}-spanner", "database": "db"}
    return {
        "project": project,
        "dns_zones": {ZONE_NAME: {"dns_name": ZONE_DNS_NAME}},
        "services": service_docs,
        "emulator": {"default_group_size": STANDBY_GROUP_SIZE, "group_sizes": group_sizes},
    }


def generated_topology(
    services: int, regions: list[str] | tuple[str, ...] = DEFAULT_REGIONS, project: str = DEFAULT_PROJECT
) -> Topology:
    """``generate_topology(...)`` validated as a :class:`~evac.topology.Topology`. Raises
    ``ValueError`` naming the bad argument (e.g. a project id Google would refuse)."""
    return validated(generate_topology(services, regions, project))


def validated(document: dict[str, Any]) -> Topology:
    """A generated document as a Topology; a ValueError names the first bad field."""
    try:
        topology = Topology.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    problems = topology.reference_problems()
    if problems:  # pragma: no cover - the generator only writes consistent references
        raise ValueError(f"the generated topology is inconsistent: {problems[0]}")
    return topology


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """The C emitter when PyYAML has it (a 2,000-service topology in well under a second)."""


def topology_yaml(document: dict[str, Any]) -> str:
    """The topology as YAML, a comment saying how it was made, inner mappings on one line
    (so a 1,000-service file stays small)."""
    count = len(document["services"])
    header = f"# Generated by emulator.generate: {count} services in {', '.join(_regions_of(document))}.\n"
    body: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=200)
    return header + body


def _regions_of(document: dict[str, Any]) -> list[str]:
    first = next(iter(document["services"].values()))
    return list(first["regions"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.generate", description="Print a generated topology as YAML.")
    parser.add_argument("services", type=int, help="how many services")
    parser.add_argument("--regions", default=",".join(DEFAULT_REGIONS), help="comma-separated regions each service is served in")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    try:
        document = generate_topology(args.services, [r.strip() for r in args.regions.split(",")], args.project)
        validated(document)
    except ValueError as exc:
        parser.exit(2, f"python -m emulator.generate: {exc}\n")
    sys.stdout.write(topology_yaml(document))


if __name__ == "__main__":
    main()
