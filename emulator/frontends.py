"""Compute Engine v1: the load balancers' front ends — forwarding rules, the addresses they serve,
and the target HTTP proxies and URL maps between a global rule and its backend service.

``globalForwardingRules`` / ``forwardingRules`` (regional), ``globalAddresses`` / ``addresses``
(regional), ``targetHttpProxies`` and ``urlMaps`` (global) list and get, as the published API
(``compute.v1`` discovery document) defines them. Read only: the world seeds them from the
topology (``seed.seed_load_balancer_frontends``): per service and region, the address its DNS
record holds when that region serves, and the forwarding rule that serves it — a global one
labelled ``evac-region`` and sending to ``<backend_service>-proxy``, whose URL map
``<backend_service>-map`` names the backend service. So a readiness check can see that a region's
address is the one its forwarding rule serves, and discovery can rebuild the topology from the
cloud (rule → proxy → URL map → backend service).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends

from emulator.core import Emulator, get_emulator
from emulator.errors import not_found
from emulator.listing import ListQuery, compute_list
from emulator.query import refuse_unknown_parameters
from emulator.state import (
    COMPUTE_URL,
    Address,
    ForwardingRule,
    TargetHttpProxy,
    UrlMap,
    labels_fingerprint,
    location_path,
    rfc3339,
)

Resource = TypeVar("Resource", ForwardingRule, Address, TargetHttpProxy, UrlMap)
Render = Callable[[Resource, str], dict[str, Any]]

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
    if rule.labels:
        body["labels"] = rule.labels
    body["labelFingerprint"] = labels_fingerprint(rule.labels)
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


def target_http_proxy_json(proxy: TargetHttpProxy, project: str) -> dict[str, Any]:
    return {
        "kind": "compute#targetHttpProxy",
        "id": str(proxy.id),
        "creationTimestamp": rfc3339(proxy.created_at),
        "name": proxy.name,
        "description": proxy.description,
        "selfLink": proxy.self_link(project),
        "urlMap": proxy.url_map,
        "fingerprint": proxy.fingerprint,
    }


def url_map_json(url_map: UrlMap, project: str) -> dict[str, Any]:
    return {
        "kind": "compute#urlMap",
        "id": str(url_map.id),
        "creationTimestamp": rfc3339(url_map.created_at),
        "name": url_map.name,
        "description": url_map.description,
        "selfLink": url_map.self_link(project),
        "defaultService": url_map.default_service,
        "fingerprint": url_map.fingerprint,
    }


def _rules(emulator: Emulator, region: str | None) -> list[ForwardingRule]:
    return [r for r in emulator.world.forwarding_rules.values() if r.region == region]


def _addresses(emulator: Emulator, region: str | None) -> list[Address]:
    return [a for a in emulator.world.addresses.values() if a.region == region]


def _list(
    emulator: Emulator,
    project: str,
    region: str | None,
    collection: str,
    kind: str,
    resources: Iterable[Resource],
    render: Render[Resource],
    query: ListQuery,
) -> dict[str, Any]:
    """``<collection>.list`` of a location (``region`` None: global): a page of ``resources`` as
    ``render`` shows them, in a list of ``kind``."""
    emulator.check_project(project)
    where = location_path(region)
    return compute_list(
        [render(resource, project) for resource in resources],
        kind=kind,
        list_id=f"projects/{project}/{where}/{collection}",
        self_link=f"{COMPUTE_URL}/projects/{project}/{where}/{collection}",
        **query.as_kwargs(),
    )


def _get(
    emulator: Emulator,
    project: str,
    region: str | None,
    collection: str,
    name: str,
    resources: Iterable[Resource],
    render: Render[Resource],
) -> dict[str, Any]:
    """``<collection>.get``: the resource named ``name`` (or with that id) among ``resources``, or 404."""
    emulator.check_project(project)
    found = next((r for r in resources if name in (r.name, str(r.id))), None)
    if found is None:
        raise not_found(f"projects/{project}/{location_path(region)}/{collection}/{name}")
    return render(found, project)


@router.get("/global/forwardingRules")
async def list_global_forwarding_rules(
    project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    rules = _rules(emulator, None)
    return _list(emulator, project, None, "forwardingRules", "compute#forwardingRuleList", rules, forwarding_rule_json, query)


@router.get("/global/forwardingRules/{forwarding_rule}")
async def get_global_forwarding_rule(project: str, forwarding_rule: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, None, "forwardingRules", forwarding_rule, _rules(emulator, None), forwarding_rule_json)


@router.get("/regions/{region}/forwardingRules")
async def list_forwarding_rules(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    rules = _rules(emulator, region)
    return _list(emulator, project, region, "forwardingRules", "compute#forwardingRuleList", rules, forwarding_rule_json, query)


@router.get("/regions/{region}/forwardingRules/{forwarding_rule}")
async def get_forwarding_rule(project: str, region: str, forwarding_rule: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, region, "forwardingRules", forwarding_rule, _rules(emulator, region), forwarding_rule_json)


@router.get("/global/addresses")
async def list_global_addresses(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    addresses = _addresses(emulator, None)
    return _list(emulator, project, None, "addresses", "compute#addressList", addresses, address_json, query)


@router.get("/global/addresses/{address}")
async def get_global_address(project: str, address: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, None, "addresses", address, _addresses(emulator, None), address_json)


@router.get("/regions/{region}/addresses")
async def list_addresses(
    project: str, region: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)
) -> Any:
    addresses = _addresses(emulator, region)
    return _list(emulator, project, region, "addresses", "compute#addressList", addresses, address_json, query)


@router.get("/regions/{region}/addresses/{address}")
async def get_address(project: str, region: str, address: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, region, "addresses", address, _addresses(emulator, region), address_json)


@router.get("/global/targetHttpProxies")
async def list_target_http_proxies(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    proxies = emulator.world.target_http_proxies.values()
    return _list(
        emulator, project, None, "targetHttpProxies", "compute#targetHttpProxyList", proxies, target_http_proxy_json, query
    )


@router.get("/global/targetHttpProxies/{target_http_proxy}")
async def get_target_http_proxy(project: str, target_http_proxy: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    proxies = emulator.world.target_http_proxies.values()
    return _get(emulator, project, None, "targetHttpProxies", target_http_proxy, proxies, target_http_proxy_json)


@router.get("/global/urlMaps")
async def list_url_maps(project: str, query: ListQuery = Depends(), emulator: Emulator = Depends(get_emulator)) -> Any:
    url_maps = emulator.world.url_maps.values()
    return _list(emulator, project, None, "urlMaps", "compute#urlMapList", url_maps, url_map_json, query)


@router.get("/global/urlMaps/{url_map}")
async def get_url_map(project: str, url_map: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return _get(emulator, project, None, "urlMaps", url_map, emulator.world.url_maps.values(), url_map_json)
