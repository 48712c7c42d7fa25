"""The emulated world: backend services, instance groups, DNS zones and operations.

Everything here is plain data (pydantic models, so the world can be saved to a file and
read back). Time-dependent facts — is an instance still warming up, is an operation done —
are not stored but computed from timestamps and the clock, so nothing runs in the
background. The routers (``backend_services``, ``instance_groups``, ``operations``, ``dns``)
read and change this model and render it in the API's JSON shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PrivateAttr
from pydantic.alias_generators import to_camel

from emulator.databases import (
    SpannerDatabase,
    SpannerInstance,
    SpannerOperation,
    SqlInstance,
    SqlOperation,
    replica_lag,
    settle_spanner,
    settle_sql,
)
from emulator.machine_types import DEFAULT_MACHINE_TYPE, vcpus_of
from evac.topology import QuotaMetric

COMPUTE_URL = "https://www.googleapis.com/compute/v1"

MACHINE_TYPE = DEFAULT_MACHINE_TYPE
"""The machine type of a group's instances unless the topology sets another
(``emulator.machine_types``)."""
VCPUS_PER_INSTANCE = 2
"""The vCPUs of ``MACHINE_TYPE``: what one of its instances counts against its region's CPUS quota."""

DEFAULT_REGION_QUOTAS: dict[QuotaMetric, int] = {"CPUS": 2_000_000, "INSTANCES": 1_000_000}
"""A region's quota limits unless the topology (``emulator.region_quotas``) or the admin API
sets others. Far above anything the tests and benches create, so that the default limits never
bind: the largest generated topology (``emulator.generate.MAX_SERVICES``, 60,000 services in 3
regions) seeds about 80,000 instances a region, the demo 2 to 6. CPUS is INSTANCES ×
``VCPUS_PER_INSTANCE``, so neither binds before the other."""

IN_USE_ADDRESSES_LIMIT = 1_000_000
"""A region's ``IN_USE_ADDRESSES`` limit: the regional external addresses in use it allows
(reported by ``regions.get``, never reached: addresses are only seeded)."""

HEALTHY = "HEALTHY"
UNHEALTHY = "UNHEALTHY"

# uint64 identifiers travel as JSON strings in Google APIs; accept a number or a string.
Uint64 = Annotated[int, PlainSerializer(str, return_type=str)]


def rfc3339(timestamp: float) -> str:
    """Seconds since the epoch -> ``2026-11-26T14:42:35.123Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_fingerprint() -> str:
    """A fresh opaque fingerprint, base64 of 8 random bytes like Compute Engine's."""
    return base64.b64encode(secrets.token_bytes(8)).decode()


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A resource's ``labelFingerprint``: base64 of 8 bytes of a hash of its labels, so the same
    labels always have the same fingerprint (``{}`` included)."""
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(hashlib.sha256(canonical).digest()[:8]).decode()


T = TypeVar("T")


class Derived(Generic[T]):
    """An index computed from a model's fields and kept on it (a private attribute): not part of
    the model's value, so models compare equal whatever their indexes hold."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Derived)

    __hash__ = None  # type: ignore[assignment]


class ApiModel(BaseModel):
    """A resource as the API spells it: camelCase JSON names, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Backend(ApiModel):
    group: str
    balancing_mode: Literal["UTILIZATION", "RATE", "CONNECTION", "CUSTOM_METRICS"] = "UTILIZATION"
    capacity_scaler: float = 1.0
    max_utilization: float | None = None
    max_rate_per_instance: float | None = None
    description: str | None = None
    failover: bool | None = None


class ConnectionDraining(ApiModel):
    draining_timeout_sec: int | None = None


class BackendService(ApiModel):
    """A global or regional backend service, stored in its API form so a merge-patch applies
    directly. A regional one has ``region`` (the region's URL)."""

    kind: Literal["compute#backendService"] = "compute#backendService"
    id: Uint64
    name: str
    description: str | None = None
    self_link: str
    region: str | None = None
    creation_timestamp: str
    fingerprint: str
    backends: list[Backend] = Field(default_factory=list)
    health_checks: list[str] = Field(default_factory=list)
    protocol: Literal["HTTP", "HTTPS", "HTTP2", "TCP", "SSL", "UDP", "GRPC", "UNSPECIFIED"] = "HTTP"
    port_name: str = "http"
    port: int | None = None
    timeout_sec: int = 30
    load_balancing_scheme: Literal["EXTERNAL", "EXTERNAL_MANAGED", "INTERNAL_MANAGED", "INTERNAL_SELF_MANAGED"] = (
        "EXTERNAL_MANAGED"
    )
    session_affinity: str = "NONE"
    affinity_cookie_ttl_sec: int | None = None
    connection_draining: ConnectionDraining | None = None

    def api_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def location_path(region: str | None = None, zone: str | None = None) -> str:
    """Where a resource lives in its URL: ``global``, ``regions/R`` or ``zones/Z``."""
    if zone is not None:
        return f"zones/{zone}"
    return f"regions/{region}" if region is not None else "global"


class HealthCheck(BaseModel):
    """An HTTP health check on port 80, one per backend service: global for a global backend
    service, regional (``regionHealthChecks``) for a regional one."""

    name: str
    id: int
    created_at: float
    region: str | None = None

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{location_path(self.region)}/healthChecks/{self.name}"


class Instance(BaseModel):
    """One VM of a managed instance group; it serves once ``ready_at`` has passed."""

    name: str
    slot: int
    id: int
    zone: str
    ip_address: str
    created_at: float
    ready_at: float


class ManagedGroup(BaseModel):
    """A managed instance group (and the instance group it manages): regional, or zonal when
    ``zone`` is set (``region`` is then the zone's region)."""

    name: str
    region: str
    zone: str | None = None
    id: int
    created_at: float
    fingerprint: str
    target_size: int
    ordinal: int = Field(description="Position among all groups; keeps instance addresses distinct")
    machine_type: str = Field(default=MACHINE_TYPE, description="Its instance template's machine type")
    instances: list[Instance] = Field(default_factory=list)

    @property
    def location(self) -> str:
        """``regions/R`` or ``zones/Z``."""
        return location_path(self.region, self.zone)

    @property
    def vcpus(self) -> int:
        """What each of its instances counts against the region's CPUS quota."""
        return vcpus_of(self.machine_type)

    def template_url(self, project: str) -> str:
        """Its instance template (``instanceTemplates``, global): ``<group>-template``."""
        return f"{COMPUTE_URL}/projects/{project}/global/instanceTemplates/{self.name}-template"

    @property
    def instance_zone(self) -> str:
        """The zone its instances run in."""
        return self.zone or f"{self.region}-b"

    def group_url(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{self.location}/instanceGroups/{self.name}"

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{self.location}/instanceGroupManagers/{self.name}"

    @property
    def missing(self) -> int:
        """Instances the target size asks for that do not exist: the region's quota had no
        room for them (they are created when it has, ``World.make_room``)."""
        return max(0, self.target_size - len(self.instances))

    def resize(self, size: int, *, now: float, warmup: float, world: World, within_quota: bool = True) -> None:
        """Set the target size at once: shrinking removes the newest instances, growing adds
        instances (in the lowest free slots) that serve after ``warmup`` seconds.

        As on Google Cloud, a resize beyond the region's quota is accepted, but only the
        instances the quota has room for are created (``within_quota``; False: all of them,
        as when the world is seeded); the others are ``missing`` until room appears. Removing
        instances makes room, which the region's waiting groups take at once."""
        self.target_size = size
        removed = False
        while len(self.instances) > size:
            self.instances.remove(max(self.instances, key=lambda i: (i.created_at, i.slot)))
            removed = True
        if self.missing:
            most = world.instance_room(self.region, self.vcpus) if within_quota else self.missing
            self.create_missing(most, now=now, warmup=warmup, world=world)
        if removed:
            world.make_room(self.region, now=now, warmup=warmup)

    def missing_slots(self) -> list[int]:
        """The slots its missing instances will take: the lowest free ones."""
        used = {i.slot for i in self.instances}
        free: list[int] = []
        slot = 0
        while len(free) < self.missing:
            if slot not in used:
                free.append(slot)
            slot += 1
        return free

    def create_missing(self, most: int, *, now: float, warmup: float, world: World) -> int:
        """Create up to ``most`` of the missing instances, in the lowest free slots, serving
        after ``warmup`` seconds; answers how many were created."""
        slots = self.missing_slots()[: max(0, most)]
        for slot in slots:
            self.instances.append(
                Instance(
                    name=instance_name(self.name, slot),
                    slot=slot,
                    id=world.next_id(),
                    zone=self.instance_zone,
                    ip_address=f"10.{self.ordinal % 256}.{slot // 250}.{slot % 250 + 2}",
                    created_at=now,
                    ready_at=now + warmup,
                )
            )
        return len(slots)


class Address(BaseModel):
    """A reserved external IPv4 address: global (``globalAddresses``, ``region`` None) or
    regional (``addresses``), in use by the forwarding rule ``user``."""

    name: str
    id: int
    created_at: float
    address: str
    region: str | None = None
    user: str | None = Field(default=None, description="Self link of the forwarding rule that uses it")
    description: str = ""

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{location_path(self.region)}/addresses/{self.name}"


class ForwardingRule(BaseModel):
    """A forwarding rule that serves ``ip_address``: global (``globalForwardingRules``, ``region``
    None) sending to a target proxy (``target``), or regional (``forwardingRules``) sending to a
    regional backend service (``backend_service``). ``labels``: the API's labels (a global rule's
    ``evac-region`` names the region whose address it serves)."""

    name: str
    id: int
    created_at: float
    ip_address: str
    region: str | None = None
    target: str | None = None
    backend_service: str | None = None
    load_balancing_scheme: str = "EXTERNAL_MANAGED"
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{location_path(self.region)}/forwardingRules/{self.name}"


class UrlMap(BaseModel):
    """A global URL map (``urlMaps``) that sends every request to ``default_service``, a backend
    service's URL (no host rules or path matchers)."""

    name: str
    id: int
    created_at: float
    default_service: str
    fingerprint: str
    description: str = ""

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/global/urlMaps/{self.name}"


class TargetHttpProxy(BaseModel):
    """A global target HTTP proxy (``targetHttpProxies``): what a global forwarding rule sends to;
    it routes by its URL map ``url_map`` (the map's URL)."""

    name: str
    id: int
    created_at: float
    url_map: str
    fingerprint: str
    description: str = ""

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/global/targetHttpProxies/{self.name}"


class RecordSet(BaseModel):
    name: str
    type: str
    ttl: int
    rrdatas: list[str] = Field(default_factory=list)
    routing_policy: dict[str, Any] | None = Field(default=None, description="API JSON of its routingPolicy")

    def api_json(self) -> dict[str, Any]:
        """As the API returns it: ``rrdatas`` left out when empty (a routing-policy record)."""
        body: dict[str, Any] = {"kind": "dns#resourceRecordSet", "name": self.name, "type": self.type, "ttl": self.ttl}
        if self.rrdatas:
            body["rrdatas"] = self.rrdatas
        if self.routing_policy is not None:
            body["routingPolicy"] = self.routing_policy
        return body

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)


class Change(BaseModel):
    id: str
    start_time: float
    done_at: float | None = Field(description="When it is done; None: never (an injected fault)")
    additions: list[RecordSet] = Field(default_factory=list)
    deletions: list[RecordSet] = Field(default_factory=list)

    def status(self, now: float) -> Literal["pending", "done"]:
        return "done" if self.done_at is not None and now >= self.done_at else "pending"


class Zone(BaseModel):
    name: str
    dns_name: str
    id: int
    created_at: float
    description: str = ""
    rrsets: list[RecordSet] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    _served_index: Derived[Any] = PrivateAttr(default_factory=lambda: Derived(None))
    """``resolver.ZoneIndex``: the record sets by key and the changes by completion, kept
    by the resolver (not saved)."""

    def find(self, name: str, type_: str) -> RecordSet | None:
        return next((r for r in self.rrsets if r.key == (name, type_)), None)


class Operation(BaseModel):
    """A Compute Engine operation. Its effect is applied when it is created; its status
    moves PENDING -> RUNNING -> DONE with the clock (see ``status``)."""

    id: int
    name: str
    operation_type: str
    target_link: str
    target_id: int
    region: str | None = Field(default=None, description="Region name of a regional operation")
    zone: str | None = Field(default=None, description="Zone name of a zonal operation (region and zone None: global)")
    request_id: str | None = None
    insert_time: float
    duration: float
    failure: Literal["error", "never_done"] | None = Field(
        default=None, description="Set by an injected fault: ends in error, or never completes"
    )
    error_code: str | None = None
    fault_id: str | None = None

    @property
    def location(self) -> str:
        """``global``, ``regions/R`` or ``zones/Z``."""
        return location_path(self.region, self.zone)

    def status(self, now: float) -> Literal["PENDING", "RUNNING", "DONE"]:
        elapsed = now - self.insert_time
        if elapsed >= self.duration and self.failure != "never_done":
            return "DONE"
        return "PENDING" if elapsed < self.duration / 5 else "RUNNING"


class World(BaseModel):
    """Everything the emulator knows; saved whole to the state file."""

    project: str
    backend_services: dict[str, BackendService] = Field(default_factory=dict, description="Global ones, by name")
    region_backend_services: dict[str, BackendService] = Field(
        default_factory=dict, description="Regional ones, by '<region>/<name>'"
    )
    health_checks: dict[str, HealthCheck] = Field(
        default_factory=dict, description="By name (global) or '<region>/<name>' (regional)"
    )
    groups: dict[str, ManagedGroup] = Field(
        default_factory=dict, description="By '<region>/<name>' (regional) or '<zone>/<name>' (zonal)"
    )
    zones: dict[str, Zone] = Field(default_factory=dict)
    addresses: dict[str, Address] = Field(default_factory=dict, description="By name (global) or '<region>/<name>' (regional)")
    forwarding_rules: dict[str, ForwardingRule] = Field(
        default_factory=dict, description="By name (global) or '<region>/<name>' (regional)"
    )
    target_http_proxies: dict[str, TargetHttpProxy] = Field(default_factory=dict, description="Global ones, by name")
    url_maps: dict[str, UrlMap] = Field(default_factory=dict, description="Global ones, by name")
    operations: dict[str, Operation] = Field(default_factory=dict)
    request_ids: dict[str, str] = Field(default_factory=dict, description="requestId -> operation name")
    outages: list[str] = Field(default_factory=list, description="Regions whose instances are all unhealthy")
    api_outages: list[str] = Field(default_factory=list, description="Regions whose resources also answer API calls with 503")
    region_quotas: dict[str, dict[QuotaMetric, int]] = Field(
        default_factory=dict,
        description="Quota limits by region and metric, as seeded from the topology or set through the admin API; "
        "a limit not here is DEFAULT_REGION_QUOTAS's",
    )
    revoked_permissions: list[str] = Field(
        default_factory=list, description="IAM permissions the caller does not hold (every other one it does)"
    )
    outage_since: dict[str, float] = Field(
        default_factory=dict, description="When each region's outage began (a replica's lag grows from then)"
    )
    sql_instances: dict[str, SqlInstance] = Field(default_factory=dict, description="Cloud SQL instances by name")
    sql_operations: dict[str, SqlOperation] = Field(default_factory=dict, description="Cloud SQL operations by name")
    spanner_instances: dict[str, SpannerInstance] = Field(default_factory=dict, description="Spanner instances by id")
    spanner_databases: dict[str, SpannerDatabase] = Field(
        default_factory=dict, description="Spanner databases by '<instance>/<database>'"
    )
    spanner_operations: dict[str, SpannerOperation] = Field(
        default_factory=dict, description="Spanner schema-change operations by full name"
    )
    last_id: int = 4_000_000_000_000_000_000
    _groups_by_url: Derived[dict[str, ManagedGroup]] = PrivateAttr(default_factory=lambda: Derived[dict[str, ManagedGroup]]({}))
    _keys_by_region: Derived[tuple[int, dict[str, list[str]]]] = PrivateAttr(
        default_factory=lambda: Derived[tuple[int, dict[str, list[str]]]]((-1, {}))
    )
    """(how many groups it indexes, the keys of ``groups`` by region): see ``groups_in``."""
    _filled: Derived[list[str]] = PrivateAttr(default_factory=lambda: Derived[list[str]]([]))
    """Self links of the groups that got instances because room appeared in their region
    (another group's call or a raised limit): what the simulated load must look at again."""

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def regions(self) -> set[str]:
        return {group.region for group in self.groups.values()}

    def quota_limits(self, region: str) -> dict[QuotaMetric, int]:
        return DEFAULT_REGION_QUOTAS | self.region_quotas.get(region, {})

    def groups_in(self, region: str) -> list[ManagedGroup]:
        """The region's groups, regional and zonal, in the order they were created.

        Through an index of their keys by region, so that a resize looks at its region's groups
        only; rebuilt when ``groups`` holds other keys (a key names the group's region or zone,
        so it is right as long as the keys are the same)."""
        count, by_region = self._keys_by_region.value
        if count != len(self.groups) or any(key not in self.groups for key in by_region.get(region, ())[:1]):
            by_region = {}
            for key, group in sorted(self.groups.items(), key=lambda item: item[1].ordinal):
                by_region.setdefault(group.region, []).append(key)
            self._keys_by_region.value = (len(self.groups), by_region)
        try:
            return [self.groups[key] for key in by_region.get(region, ())]
        except KeyError:  # as many groups as indexed, but other keys
            self._keys_by_region.value = (-1, {})
            return self.groups_in(region)

    def quota_usage(self, region: str) -> dict[QuotaMetric, int]:
        """What the instances that exist in the region use (missing ones use nothing)."""
        groups = self.groups_in(region)
        instances = sum(len(g.instances) for g in groups)
        return {"CPUS": sum(len(g.instances) * g.vcpus for g in groups), "INSTANCES": instances}

    def addresses_in_use(self, region: str) -> int:
        """The region's regional addresses that a forwarding rule uses (``IN_USE_ADDRESSES``)."""
        return sum(1 for a in self.addresses.values() if a.region == region and a.user)

    def instance_room(self, region: str, vcpus: int = VCPUS_PER_INSTANCE) -> int:
        """How many more instances of ``vcpus`` vCPUs the region's quotas have room for (0 when
        over a limit)."""
        return max(0, min(self._room_by_metric(region, vcpus).values()))

    def binding_quota(self, region: str, vcpus: int = VCPUS_PER_INSTANCE) -> tuple[QuotaMetric, int]:
        """The metric that leaves the least room for instances of ``vcpus`` vCPUs, and its limit."""
        room = self._room_by_metric(region, vcpus)
        metric = min(room, key=lambda m: room[m])
        return metric, self.quota_limits(region)[metric]

    def _room_by_metric(self, region: str, vcpus: int) -> dict[QuotaMetric, int]:
        limits, usage = self.quota_limits(region), self.quota_usage(region)
        return {
            "INSTANCES": limits["INSTANCES"] - usage["INSTANCES"],
            "CPUS": (limits["CPUS"] - usage["CPUS"]) // vcpus,
        }

    def make_room(self, region: str, *, now: float, warmup: float) -> None:
        """Create the region's missing instances that its quota now has room for, the groups
        in the order they were created (deterministic)."""
        waiting = [g for g in self.groups_in(region) if g.target_size > len(g.instances)]
        for group in waiting:
            room = self.instance_room(region, group.vcpus)
            if room <= 0:
                continue  # another group's smaller machines may still fit
            created = group.create_missing(room, now=now, warmup=warmup, world=self)
            if created:
                self._filled.value.append(group.self_link(self.project))

    def filled(self) -> list[str]:
        """Self links of the groups that got instances because room appeared, in order (not
        saved; a new list for a new world)."""
        return self._filled.value

    def instance_health(self, group: ManagedGroup, instance: Instance, now: float) -> str:
        if group.region in self.outages or now < instance.ready_at:
            return UNHEALTHY
        return HEALTHY

    def group_by_url(self, url: str) -> ManagedGroup | None:
        """The group whose instance group URL is ``url`` (an index, rebuilt when ``groups``
        gains or loses a group or holds another one under an indexed key)."""
        index = self._groups_by_url
        group = index.value.get(url)
        if len(index.value) != len(self.groups) or (
            group is not None and self.groups.get(f"{group.zone or group.region}/{group.name}") is not group
        ):
            index.value = {g.group_url(self.project): g for g in self.groups.values()}
            group = index.value.get(url)
        return group

    def settle_data(self, now: float) -> bool:
        """Apply the Cloud SQL and Spanner operations that are done (``emulator.databases``)."""
        sql = settle_sql(self.sql_instances, self.sql_operations, now)
        return settle_spanner(self.spanner_databases, self.spanner_operations, now) or sql

    def replica_lag(self, instance: SqlInstance, now: float) -> float | None:
        return replica_lag(instance, self.sql_instances, self.outage_since, now)

    def snapshot(self, now: float) -> dict[str, Any]:
        """What a test compares before and after a run: no fingerprints, ids or times (the data
        tier's keys only in a world that has databases)."""
        data = self._data_snapshot(now)

        def backends(service: BackendService) -> dict[str, Any]:
            return {
                "backends": [
                    {"group": b.group, "balancingMode": b.balancing_mode, "capacityScaler": b.capacity_scaler}
                    for b in service.backends
                ]
            }

        return {
            "project": self.project,
            "outages": sorted(self.outages),
            "backendServices": {name: backends(service) for name, service in sorted(self.backend_services.items())},
            "regionBackendServices": {key: backends(service) for key, service in sorted(self.region_backend_services.items())},
            "instanceGroupManagers": {
                key: {
                    "targetSize": group.target_size,
                    "instances": [
                        {
                            "name": i.name,
                            "status": "RUNNING" if now >= i.ready_at else "CREATING",
                            "health": self.instance_health(group, i, now),
                        }
                        for i in sorted(group.instances, key=lambda i: i.name)
                    ],
                }
                for key, group in sorted(self.groups.items())
            },
            "managedZones": {
                name: {
                    "dnsName": zone.dns_name,
                    "rrsets": [
                        {key: value for key, value in r.api_json().items() if key != "kind"}
                        for r in sorted(zone.rrsets, key=lambda r: r.key)
                    ],
                }
                for name, zone in sorted(self.zones.items())
            },
            **data,
        }

    def _data_snapshot(self, now: float) -> dict[str, Any]:
        self.settle_data(now)
        data: dict[str, Any] = {}
        if self.sql_instances:
            data["sqlInstances"] = {
                name: {
                    "region": i.region,
                    "state": i.state,
                    "role": "replica" if i.master else "primary",
                    **({"replicates": i.master} if i.master else {}),
                    **({"drReplica": i.dr_replica} if i.dr_replica else {}),
                }
                for name, i in sorted(self.sql_instances.items())
            }
        if self.spanner_databases:
            data["spannerDatabases"] = {
                key: {"defaultLeader": d.default_leader} for key, d in sorted(self.spanner_databases.items())
            }
        return data


def instance_name(group: str, slot: int) -> str:
    """``checkout-ew1-k3fa``: the same group and slot always give the same name, so a
    group scaled down and back up again has the instances it had before."""
    digest = hashlib.sha256(f"{group}/{slot}".encode()).digest()
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return group + "-" + "".join(letters[b % len(letters)] for b in digest[:4])
