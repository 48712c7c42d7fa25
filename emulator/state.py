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
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PrivateAttr
from pydantic.alias_generators import to_camel

COMPUTE_URL = "https://www.googleapis.com/compute/v1"

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
    instances: list[Instance] = Field(default_factory=list)

    @property
    def location(self) -> str:
        """``regions/R`` or ``zones/Z``."""
        return location_path(self.region, self.zone)

    @property
    def instance_zone(self) -> str:
        """The zone its instances run in."""
        return self.zone or f"{self.region}-b"

    def group_url(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{self.location}/instanceGroups/{self.name}"

    def self_link(self, project: str) -> str:
        return f"{COMPUTE_URL}/projects/{project}/{self.location}/instanceGroupManagers/{self.name}"

    def resize(self, size: int, *, now: float, warmup: float, world: World) -> None:
        """Set the target size at once: shrinking removes the newest instances, growing adds
        instances (in the lowest free slots) that serve after ``warmup`` seconds."""
        self.target_size = size
        while len(self.instances) > size:
            self.instances.remove(max(self.instances, key=lambda i: (i.created_at, i.slot)))
        used = {i.slot for i in self.instances}
        slot = 0
        while len(self.instances) < size:
            while slot in used:
                slot += 1
            used.add(slot)
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
    operations: dict[str, Operation] = Field(default_factory=dict)
    request_ids: dict[str, str] = Field(default_factory=dict, description="requestId -> operation name")
    outages: list[str] = Field(default_factory=list, description="Regions whose instances are all unhealthy")
    api_outages: list[str] = Field(default_factory=list, description="Regions whose resources also answer API calls with 503")
    last_id: int = 4_000_000_000_000_000_000
    _groups_by_url: Derived[dict[str, ManagedGroup]] = PrivateAttr(default_factory=lambda: Derived[dict[str, ManagedGroup]]({}))

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def regions(self) -> set[str]:
        return {group.region for group in self.groups.values()}

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

    def snapshot(self, now: float) -> dict[str, Any]:
        """What a test compares before and after a run: no fingerprints, ids or times."""

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
        }


def instance_name(group: str, slot: int) -> str:
    """``checkout-ew1-k3fa``: the same group and slot always give the same name, so a
    group scaled down and back up again has the instances it had before."""
    digest = hashlib.sha256(f"{group}/{slot}".encode()).digest()
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return group + "-" + "".join(letters[b % len(letters)] for b in digest[:4])
