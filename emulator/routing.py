"""Cloud DNS routing policies (``routingPolicy`` of a record set): weighted round robin
(``wrr``), geolocation (``geo``) and failover (``primaryBackup``) — their JSON form, the rules
the API checks, and what a resolver would answer now.

Targets are healthy unless their address is the ``address`` of a topology region that is
in an emulated outage, so an outage makes a ``primaryBackup`` record answer its backups.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from emulator.state import ApiModel


class LoadBalancerTarget(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyLoadBalancerTarget"] = "dns#rRSetRoutingPolicyLoadBalancerTarget"
    ip_address: str | None = None
    ip_protocol: Literal["tcp", "udp", "undefined"] | None = None
    load_balancer_type: Literal["none", "globalL7ilb", "regionalL4ilb", "regionalL7ilb"] | None = None
    network_url: str | None = None
    port: str | None = None
    project: str | None = None
    region: str | None = None


class HealthCheckTargets(ApiModel):
    internal_load_balancers: list[LoadBalancerTarget] | None = None
    external_endpoints: list[str] | None = None

    def addresses(self) -> list[str]:
        internal = [t.ip_address for t in self.internal_load_balancers or [] if t.ip_address]
        return [*internal, *(self.external_endpoints or [])]


class WrrItem(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyWrrPolicyWrrPolicyItem"] = "dns#rRSetRoutingPolicyWrrPolicyWrrPolicyItem"
    weight: float = Field(ge=0)
    rrdatas: list[str] | None = None
    signature_rrdatas: list[str] | None = None
    health_checked_targets: HealthCheckTargets | None = None


class WrrPolicy(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyWrrPolicy"] = "dns#rRSetRoutingPolicyWrrPolicy"
    items: list[WrrItem] = Field(min_length=1)


class GeoItem(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyGeoPolicyGeoPolicyItem"] = "dns#rRSetRoutingPolicyGeoPolicyGeoPolicyItem"
    location: str
    rrdatas: list[str] | None = None
    signature_rrdatas: list[str] | None = None
    health_checked_targets: HealthCheckTargets | None = None


class GeoPolicy(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyGeoPolicy"] = "dns#rRSetRoutingPolicyGeoPolicy"
    items: list[GeoItem] = Field(min_length=1)
    enable_fencing: bool | None = None


class PrimaryBackupPolicy(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicyPrimaryBackupPolicy"] = "dns#rRSetRoutingPolicyPrimaryBackupPolicy"
    primary_targets: HealthCheckTargets
    backup_geo_targets: GeoPolicy
    trickle_traffic: float | None = Field(default=None, ge=0, le=1)


class RoutingPolicy(ApiModel):
    kind: Literal["dns#rRSetRoutingPolicy"] = "dns#rRSetRoutingPolicy"
    wrr: WrrPolicy | None = None
    geo: GeoPolicy | None = None
    primary_backup: PrimaryBackupPolicy | None = None
    health_check: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RoutingPolicy:
        given = [name for name in ("wrr", "geo", "primary_backup") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a routing policy has exactly one of wrr, geo or primaryBackup")
        return self

    def api_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def rrdatas(self) -> list[str]:
        """Every address the policy can answer (for checking their syntax)."""
        items: list[WrrItem | GeoItem] = []
        if self.wrr:
            items += self.wrr.items
        if self.geo:
            items += self.geo.items
        if self.primary_backup:
            items += self.primary_backup.backup_geo_targets.items
        return [data for item in items for data in item.rrdatas or []]


def _healthy(targets: HealthCheckTargets | None, down: set[str]) -> bool:
    if targets is None:
        return True
    addresses = targets.addresses()
    return not addresses or any(address not in down for address in addresses)


def _item_answer(item: WrrItem | GeoItem) -> list[str]:
    if item.rrdatas:
        return list(item.rrdatas)
    return item.health_checked_targets.addresses() if item.health_checked_targets else []


def _geo_answer(policy: GeoPolicy, location: str | None, down: set[str]) -> dict[str, Any]:
    healthy = [i for i in policy.items if _healthy(i.health_checked_targets, down)] or policy.items
    chosen = next((i for i in healthy if i.location == location), healthy[0])
    return {"location": chosen.location, "rrdatas": _item_answer(chosen)}


def answer(policy_json: dict[str, Any], *, location: str | None, down: set[str]) -> dict[str, Any]:
    """What the record answers now: ``rrdatas`` plus how the policy chose them.

    ``location`` is the client's region for geo policies (default: the first item);
    ``down`` the addresses whose region is in an outage."""
    policy = RoutingPolicy.model_validate(policy_json)
    if policy.wrr is not None:
        live = [i for i in policy.wrr.items if i.weight > 0 and _healthy(i.health_checked_targets, down)]
        total = sum(i.weight for i in live)
        weights = [{"rrdatas": _item_answer(i), "weight": i.weight, "share": round(i.weight / total, 4)} for i in live]
        rrdatas = [d for i in live for d in _item_answer(i)]
        return {"policy": "wrr", "rrdatas": rrdatas, "weights": weights}
    if policy.geo is not None:
        return {"policy": "geo", **_geo_answer(policy.geo, location, down)}
    assert policy.primary_backup is not None
    failover = policy.primary_backup
    if _healthy(failover.primary_targets, down):
        return {"policy": "primaryBackup", "serving": "primary", "rrdatas": failover.primary_targets.addresses()}
    return {"policy": "primaryBackup", "serving": "backup", **_geo_answer(failover.backup_geo_targets, location, down)}
