"""Topology discovery: the services a Google Cloud project serves, rebuilt from its APIs alone.

Reads only (lists and gets). A service is found from a DNS record, through the wiring Google
keeps:

    record value ─► forwarding rule with that address ─► (target HTTP proxy ─► URL map's default
    service, for a global rule; its backendService, for a regional one) ─► backend service ─►
    its backends' managed instance groups, by region

A global backend service has groups in several regions, so one record leads to all of them;
each region's address is the one a forwarding rule to that backend service serves for that
region. A global rule has no region of its own: it says which region's address it serves with
the label ``evac-region``. Regional backend services are each one region's; forwarding rules
that carry the same label ``evac-service`` belong to one service, across regions. The service
is named by that label, or else by the record's first label (``checkout.shop.example.com.``:
``checkout``); the region whose address the record holds now is its primary region.

What cannot be placed this way is listed in ``unplaced``, each with why, never guessed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import budget
from activities.budget import call_timeout
from activities.errors import worth_repeating
from providers.gcp.clients import GcpClients
from providers.gcp.errors import idempotent

T = TypeVar("T")

REGION_LABEL = "evac-region"
SERVICE_LABEL = "evac-service"

_LOCATION = re.compile(r"/(regions|zones)/([a-z0-9-]+)/")


@dataclass(frozen=True, order=True)
class BackendKey:
    """A backend service: global (``region`` None) or one region's."""

    name: str
    region: str | None = None

    def __str__(self) -> str:
        return f"backend service {self.name}" + ("" if self.region is None else f" ({self.region})")


@dataclass(frozen=True)
class Group:
    """A backend's instance group: its region, its name, its zone (None: a regional group)."""

    region: str
    name: str
    zone: str | None = None

    def __str__(self) -> str:
        return f"instance group {self.zone or self.region}/{self.name}"


@dataclass(frozen=True)
class FrontEnd:
    """A forwarding rule: the address it serves, the backend service it leads to (None: it
    could not be followed) and the region its address is for (None: not said)."""

    rule: str
    address: str
    backend: BackendKey | None
    region: str | None
    service: str | None

    def __str__(self) -> str:
        where = "global" if self.region is None else self.region
        return (
            f"forwarding rule {self.rule} ({self.address})"
            if where == "global"
            else f"forwarding rule {self.rule} ({self.address}, {where})"
        )


@dataclass(frozen=True)
class Record:
    zone: str
    zone_dns_name: str
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"record {self.name} ({self.type}) in zone {self.zone}"


@dataclass
class Inventory:
    """What the project has in the regions looked at, as read."""

    project: str
    regions: list[str]
    backends: dict[BackendKey, list[Group]] = field(default_factory=dict)
    groups: set[Group] = field(default_factory=set)  # the managed instance groups
    front_ends: list[FrontEnd] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    # The regions whose own API did not answer, and what it said.
    unread: dict[str, str] = field(default_factory=dict)


@dataclass
class Discovery:
    """The topology found (a mapping in ``topology.yaml``'s shape) and what could not be placed."""

    project: str
    regions: list[str]
    topology: dict[str, Any]
    unplaced: list[str]
    unread: dict[str, str] = field(default_factory=dict)


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _location(url: str) -> tuple[str, str] | None:
    found = _LOCATION.search(url)
    return (found.group(1), found.group(2)) if found else None


def region_of_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


# How long a worker keeps a readiness evaluation's discovery (or its failure) for the
# evaluation's other services, read at the same time.
RECENT_SECONDS = 60.0


@dataclass
class _Reading:
    """One evaluation's discovery: its answer (or failure) once read, behind its own lock."""

    at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: Discovery | Exception | None = None


class GcpDiscovery:
    def __init__(self, clients: GcpClients):
        self._clients = clients
        self._lock = threading.Lock()
        self._recent: dict[tuple[Any, ...], _Reading] = {}

    def shared(
        self, reading: str, project: str, regions: Iterable[str], deadlines: Mapping[str, float] | None = None
    ) -> Discovery:
        """:meth:`discover` once per ``reading`` (a readiness evaluation's run id) and question:
        its answer, or its failure, serves the other services of the same evaluation; a later
        evaluation reads the cloud again. Kept at most :data:`RECENT_SECONDS`."""
        key = (reading, project, tuple(sorted(regions)), tuple(sorted((deadlines or {}).items())))
        with self._lock:  # the table only: readings of other evaluations go on at the same time
            now = time.monotonic()
            self._recent = {k: v for k, v in self._recent.items() if now - v.at < RECENT_SECONDS}
            slot = self._recent.setdefault(key, _Reading(at=now))
        with slot.lock:  # the evaluation's other services wait for its one reading
            if slot.answer is None:
                try:
                    slot.answer = self.discover(project, key[2], deadlines)
                except Exception as exc:  # noqa: BLE001 - the same failure answers the same question
                    slot.answer = exc
            answer = slot.answer
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _read(self, what: str, call: Callable[[], T]) -> T:
        # Inside an activity a cancel ends the wait between tries; the CLI has no activity.
        return idempotent(what, call, abandon_on_cancel=activity.in_activity())

    def inventory(
        self, project: str, regions: Iterable[str] | None = None, deadlines: Mapping[str, float] | None = None
    ) -> Inventory:
        """Read the project's load balancing, groups and DNS records (``regions``: only these).

        A region whose own API does not answer (5xx, timeouts, after the usual retries; within
        ``deadlines[region]`` seconds when given) is left unread, and said so: what the global
        APIs serve is enough to place a global backend service's groups there."""
        c, timeout = self._clients, call_timeout
        self._clients.require_project(project)
        all_regions = {
            r.name: [_name(z) for z in r.zones]
            for r in self._read("list regions", lambda: list(c.regions.list(project=project, timeout=timeout(), retry=None)))
        }
        wanted = list(all_regions) if regions is None else list(regions)
        unknown = [r for r in wanted if r not in all_regions]
        if unknown:
            known = ", ".join(sorted(all_regions)) or "none"
            raise ValueError(f"project {project} has no region {', '.join(unknown)} (it has: {known})")
        found = Inventory(project=project, regions=sorted(wanted))
        listed = self._read(
            "list global backend services",
            lambda: list(c.backend_services.list(project=project, timeout=timeout(), retry=None)),
        )
        for service in listed:
            self._backends_of(found, BackendKey(service.name), service)
        self._global_front_ends(found)
        self._records(found)
        for region in found.regions:
            try:
                with budget.within((deadlines or {}).get(region)):
                    self._regional(found, region, all_regions[region])
            except Exception as exc:
                if not worth_repeating(exc):
                    raise
                found.unread[region] = exc.message if isinstance(exc, ApplicationError) else str(exc)
        return found

    def _backends_of(self, found: Inventory, key: BackendKey, service: Any) -> None:
        groups: list[Group] = []
        for backend in service.backends:
            where = _location(backend.group)
            if where is None:
                found.unplaced.append(f"{key}: backend {backend.group} names no region or zone")
                continue
            kind, place = where
            region = place if kind == "regions" else region_of_zone(place)
            if region in found.regions:
                groups.append(Group(region=region, name=_name(backend.group), zone=None if kind == "regions" else place))
        found.backends[key] = groups

    def _regional(self, found: Inventory, region: str, zones: list[str]) -> None:
        """One region's own resources: taken into ``found`` only once all are read."""
        c, timeout, project = self._clients, call_timeout, found.project
        services = self._read(
            f"list backend services of {region}",
            lambda: list(c.region_backend_services.list(project=project, region=region, timeout=timeout(), retry=None)),
        )
        managers = self._read(
            f"list managed instance groups of {region}",
            lambda: list(c.instance_group_managers.list(project=project, region=region, timeout=timeout(), retry=None)),
        )
        groups = {Group(region=region, name=m.name) for m in managers}
        for zone in zones:
            managers = self._read(
                f"list managed instance groups of {zone}",
                lambda: list(c.zonal_instance_group_managers.list(project=project, zone=zone, timeout=timeout(), retry=None)),  # noqa: B023
            )
            groups.update(Group(region=region, name=m.name, zone=zone) for m in managers)
        rules = self._read(
            f"list forwarding rules of {region}",
            lambda: list(c.forwarding_rules.list(project=project, region=region, timeout=timeout(), retry=None)),
        )
        for service in services:
            self._backends_of(found, BackendKey(service.name, region), service)
        found.groups.update(groups)
        for rule in rules:
            labels = dict(rule.labels)
            backend: BackendKey | None = None
            if rule.backend_service:
                backend = BackendKey(_name(rule.backend_service), region)
            else:
                found.unplaced.append(f"forwarding rule {rule.name} ({region}): it sends to no backend service")
            found.front_ends.append(FrontEnd(rule.name, rule.I_p_address, backend, region, labels.get(SERVICE_LABEL)))

    def _global_front_ends(self, found: Inventory) -> None:
        c, timeout, project = self._clients, call_timeout, found.project
        maps: dict[str, str] = {}  # target proxy URL -> its URL map's default service URL ("" none)

        def default_service(proxy_url: str) -> str:
            if proxy_url not in maps:
                proxy = self._read(
                    f"get target HTTP proxy {_name(proxy_url)}",
                    lambda: c.target_http_proxies.get(
                        project=project, target_http_proxy=_name(proxy_url), timeout=timeout(), retry=None
                    ),
                )
                url_map = self._read(
                    f"get URL map {_name(proxy.url_map)}",
                    lambda: c.url_maps.get(project=project, url_map=_name(proxy.url_map), timeout=timeout(), retry=None),
                )
                maps[proxy_url] = url_map.default_service
            return maps[proxy_url]

        rules = self._read(
            "list global forwarding rules",
            lambda: list(c.global_forwarding_rules.list(project=project, timeout=timeout(), retry=None)),
        )
        for rule in rules:
            labels = dict(rule.labels)
            backend: BackendKey | None = None
            if "/targetHttpProxies/" in rule.target:
                service_url = default_service(rule.target)
                if "/global/backendServices/" in service_url:
                    backend = BackendKey(_name(service_url))
                else:
                    found.unplaced.append(f"forwarding rule {rule.name}: its URL map sends to no global backend service")
            else:
                found.unplaced.append(f"forwarding rule {rule.name}: its target {rule.target or '(none)'} is not followed")
            region = labels.get(REGION_LABEL)
            if region is not None and region not in found.regions:
                continue  # another region's address: out of scope
            found.front_ends.append(FrontEnd(rule.name, rule.I_p_address, backend, region, labels.get(SERVICE_LABEL)))

    def _records(self, found: Inventory) -> None:
        client = self._clients.dns_for(found.project)
        zones = self._read("list managed zones", lambda: list(client.list_zones()))
        for zone in zones:
            rrsets = self._read(f"list the records of zone {zone.name}", lambda: list(zone.list_resource_record_sets()))  # noqa: B023
            for rrset in rrsets:
                if rrset.record_type in ("A", "AAAA"):
                    values = tuple(rrset.rrdatas)
                    found.records.append(Record(zone.name, zone.dns_name, rrset.name, rrset.record_type, rrset.ttl, values))

    def discover(
        self, project: str, regions: Iterable[str] | None = None, deadlines: Mapping[str, float] | None = None
    ) -> Discovery:
        return place(self.inventory(project, regions, deadlines))


def place(found: Inventory) -> Discovery:
    """Group what was read into services (pure: no I/O)."""
    unplaced = list(found.unplaced)
    unplaced += [
        f"{region}: its own API was not read ({why}); what only it serves is unknown" for region, why in found.unread.items()
    ]
    by_address: dict[str, list[FrontEnd]] = {}
    for front in found.front_ends:
        by_address.setdefault(front.address, []).append(front)
    services: dict[str, dict[str, Any]] = {}
    zones: dict[str, dict[str, str]] = {}
    used_backends: set[BackendKey] = set()
    used_groups: set[Group] = set()
    used_fronts: set[FrontEnd] = set()
    for record in sorted(found.records, key=lambda r: (r.zone, r.name, r.type)):
        fronts = [f for value in record.values for f in by_address.get(value, [])]
        if not fronts:
            continue  # a record of something else: not a load balancer's address
        if len(record.values) != 1 or len(fronts) != 1:
            unplaced.append(f"{record}: holds {', '.join(record.values)}, served by {len(fronts)} forwarding rules; "
                            "a service's record holds the one address of the region serving it")  # fmt: skip
            continue
        [anchor] = fronts
        if anchor.backend is None or anchor.region is None:
            why = (
                "it leads to no backend service"
                if anchor.backend is None
                else f"it does not say its region (label {REGION_LABEL})"
            )
            unplaced.append(f"{record}: holds the address of {anchor}, but {why}")
            continue
        members = _members(anchor, found.front_ends)
        regions: dict[str, dict[str, Any]] = {}
        for region in sorted({f.region for f in members if f.region is not None}):
            here = [f for f in members if f.region == region and f.backend is not None]
            placed = _binding(region, here, found, unplaced)
            if placed is not None:
                regions[region], group = placed
                used_fronts.update(here)
                used_backends.update(f.backend for f in here if f.backend is not None)
                used_groups.add(group)
        name = anchor.service or record.name.split(".", 1)[0]
        if len(regions) < 2:
            unplaced.append(f"{record}: {anchor.backend} serves {' and '.join(regions) or 'no region'} only; "
                            "a service needs two regions to fail over between")  # fmt: skip
            continue
        if name in services:
            unplaced.append(f"{record}: another record's service is named '{name}' already")
            continue
        services[name] = {
            "primary_region": anchor.region,
            "dns": {"managed_zone": record.zone, "record": record.name, "type": record.type, "ttl": record.ttl},
            "regions": regions,
        }
        zones[record.zone] = {"dns_name": record.zone_dns_name}
    for key in sorted(set(found.backends) - used_backends):
        unplaced.append(f"{key}: no DNS record holds an address it serves")
    for group in sorted(found.groups - used_groups, key=str):
        unplaced.append(f"{group}: no placed backend service has it as a backend")
    for front in found.front_ends:
        if front not in used_fronts and front.backend is not None and front.backend in used_backends:
            unplaced.append(f"{front}: leads to {front.backend} but was not placed in a region")
    topology: dict[str, Any] = {"project": found.project, "dns_zones": zones, "services": services}
    return Discovery(project=found.project, regions=found.regions, topology=topology, unplaced=unplaced, unread=found.unread)


def _members(anchor: FrontEnd, fronts: list[FrontEnd]) -> list[FrontEnd]:
    """The front ends of ``anchor``'s service: those to its backend service, and those that
    carry its ``evac-service`` label (and theirs, to a fixed point)."""
    backends = {anchor.backend}
    labels = {anchor.service} - {None}
    while True:
        members = [f for f in fronts if f.backend in backends or (f.service is not None and f.service in labels)]
        grown_backends = backends | {f.backend for f in members}
        grown_labels = labels | {f.service for f in members if f.service is not None}
        if grown_backends == backends and grown_labels == labels:
            return members
        backends, labels = grown_backends, grown_labels


def _binding(region: str, fronts: list[FrontEnd], found: Inventory, unplaced: list[str]) -> tuple[dict[str, Any], Group] | None:
    """One region's binding from the front ends that serve it, and its group; or None (and why,
    in ``unplaced``)."""
    if len({f.address for f in fronts}) != 1 or len({f.backend for f in fronts}) != 1:
        listed = ", ".join(str(f) for f in fronts)
        unplaced.append(f"{region}: {listed} serve more than one address or backend service for one region")
        return None
    front = fronts[0]
    assert front.backend is not None
    if front.backend not in found.backends:
        unplaced.append(f"{front}: leads to {front.backend}, which does not exist")
        return None
    groups = [g for g in found.backends[front.backend] if g.region == region]
    if len(groups) != 1:
        has = ", ".join(str(g) for g in groups) or "none"
        unplaced.append(f"{front.backend}: one instance group in {region} was expected as its backend (it has: {has})")
        return None
    [group] = groups
    if group not in found.groups and region not in found.unread:
        unplaced.append(f"{front.backend}: its backend {group} is not a managed instance group")
        return None
    binding: dict[str, Any] = {"backend_service": front.backend.name}
    if front.backend.region is not None:
        binding["backend_service_scope"] = "regional"
    binding["instance_group"] = group.name
    if group.zone is not None:
        binding["instance_group_zone"] = group.zone
    binding["address"] = front.address
    return binding, group


__all__ = ["REGION_LABEL", "SERVICE_LABEL", "Discovery", "GcpDiscovery", "Inventory", "place"]
