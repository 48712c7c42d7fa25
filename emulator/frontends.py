"""Compute Engine v1: the load balancers' front ends — forwarding rules and the addresses they serve.

``globalForwardingRules`` / ``forwardingRules`` (regional) and ``globalAddresses`` /
``addresses`` (regional) list and get, as the published API (``compute.v1`` discovery document)
defines them. Read only: the world seeds them from the topology (``seed.seed_load_balancer_frontends``):
per service and region, the address its DNS record holds when that region serves, and the
forwarding rule that serves it. So a readiness check can see that a region's address is the one
its forwarding rule serves, and discovery can rebuild the topology from the cloud.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.errors import not_found
from emulator.listing import ListQuery, compute_list
from emulator.query import refuse_unknown_parameters
from emulator.state import COMPUTE_URL, Address, ForwardingRule, location_path, rfc3339

router = APIRouter(prefix="/compute/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])


def forwarding_rule_json(rule: ForwardingRule, project: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "compute#forwardingRule",
        "id": str(rule.id),
        "creationTimestamp": rfc3339(rule.created_at),
        "name": rule.name,
        "description": rule.description,
        "IPAddress": rule.ip_address,
        "IPProtocol": "TCP",
        "portRange": "80-80",
        "loadBalancingScheme": rule.load_balancing_scheme,
        "networkTier": "PREMIUM",
        "selfLink": rule.self_link(project),
    }
    if rule.region is not None:
        body["region"] = f"{COMPUTE_URL}/projects/{project}/regions/{rule.region}"
    else:
        body["ipVersion"] = "IPV4"
    if rule.target is not None:
        body["target"] = rule.target
    if rule.backend_service is not None:
        body["backendService"] = rule.backend_service
    return body


def address_json(address: Address, project: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "compute#address",
        "id": str(address.id),
        "creationTimestamp": rfc3339(address.created_at),
        "name": address.name,
        "description": address.description,
        "address": address.address,
        "addressType": "EXTERNAL",
        "networkTier": "PREMIUM",
        "status": "IN_USE" if address.user else "RESERVED",
        "selfLink": address.self_link(project),
    }
    if address.region is not None:
        body["region"] = f"{COMPUTE_URL}/projects/{project}/regions/{address.region}"
    else:
        body["ipVersion"] = "IPV4"
    if address.user:
        body["users"] = [address.user]
    return body


def _rules(emulator: Emulator, region: str | None) -> list[ForwardingRule]:
    return [r for r in emulator.world.forwarding_rules.values() if r.region == region]


def _addresses(emulator: Emulator, region: str | None) -> list[Address]:
    return [a for a in emulator.world.addresses.values() if a.region == region]


def _list_rules(emulator: Emulator, project: str, region: str | None, query: ListQuery) -> dict[str, Any]:
    emulator.check_project(project)
    where = location_path(region)
    return compute_list(
        [forwarding_rule_json(rule, project) for rule in _rules(emulator, region)],
        kind="compute#forwardingRuleList",
        list_id=f"projects/{project}/{where}/forwardingRules",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/forwardingRules",
        **query.as_kwargs(),
    )


def _get_rule(emulator: Emulator, project: str, name: str, region: str | None) -> dict[str, Any]:
    emulator.check_project(project)
    rule = next((r for r in _rules(emulator, region) if name in (r.name, str(r.id))), None)
    if rule is None:
        raise not_found(f"projects/{project}/{location_path(region)}/forwardingRules/{name}")
    return forwarding_rule_json(rule, project)


def _list_addresses(emulator: Emulator, project: str, region: str | None, query: ListQuery) -> dict[str, Any]:
    emulator.check_project(project)
    where = location_path(region)
    return compute_list(
        [address_json(address, project) for address in _addresses(emulator, region)],
        kind="compute#addressList",
        list_id=f"projects/{project}/{where}/addresses",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/addresses",
        **query.as_kwargs(),
    )


def _get_address(emulator: Emulator, project: str, name: str, region: str | None) -> dict[str, Any]:
    emulator.check_project(project)
    address = next((a for a in _addresses(emulator, region) if name in (a.name, str(a.id))), None)
    if address is None:
        raise not_found(f"projects/{project}/{location_path(region)}/addresses/{name}")
    return address_json(address, project)


@router.get("/global/forwardingRules")
async def list_global_forwarding_rules(
    project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_rules(emulator, project, None, query)


@router.get("/global/forwardingRules/{forwarding_rule}")
async def get_global_forwarding_rule(project: str, forwarding_rule: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get_rule(emulator, project, forwarding_rule, None)


@router.get("/regions/{region}/forwardingRules")
async def list_forwarding_rules(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_rules(emulator, project, region, query)


@router.get("/regions/{region}/forwardingRules/{forwarding_rule}")
async def get_forwarding_rule(project: str, region: str, forwarding_rule: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get_rule(emulator, project, forwarding_rule, region)


@router.get("/global/addresses")
async def list_global_addresses(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    return _list_addresses(emulator, project, None, query)


@router.get("/global/addresses/{address}")
async def get_global_address(project: str, address: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get_address(emulator, project, address, None)


@router.get("/regions/{region}/addresses")
async def list_addresses(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    return _list_addresses(emulator, project, region, query)


@router.get("/regions/{region}/addresses/{address}")
async def get_address(project: str, region: str, address: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get_address(emulator, project, address, region)
