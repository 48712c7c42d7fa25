"""The load balancers' front ends through the real google-cloud-compute clients: per service and
region, the address its DNS record holds when the region serves, and the forwarding rule that
serves it — global for a global backend service (the demo: labelled with its region, through a
target HTTP proxy and a URL map), regional for a regional one."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from emulator.testing import ComputeClients, RunningEmulator

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_each_region_of_a_global_backend_service_has_a_global_address_served_by_its_rule(
    emulator: RunningEmulator, compute: ComputeClients
) -> None:
    addresses = {a.name: a for a in compute.global_addresses.list(project=compute.project)}
    rules = {r.name: r for r in compute.global_forwarding_rules.list(project=compute.project)}

    # Every binding of the topology: its address is reserved and served by a rule of that region.
    for service in emulator.topology.services.values():
        for region, binding in service.regions.items():
            address = addresses[f"{binding.backend_service}-{region}-ip"]
            rule = rules[f"{binding.backend_service}-{region}-fr"]
            assert address.address == rule.I_p_address == binding.address
            assert address.status == "IN_USE" and list(address.users) == [rule.self_link]
            assert rule.target == f"{COMPUTE}/global/targetHttpProxies/{binding.backend_service}-proxy"
    assert len(addresses) == len(rules) == 4
    rule = compute.global_forwarding_rules.get(project=compute.project, forwarding_rule="checkout-backend-europe-west1-fr")
    assert rule.I_p_address == "203.0.113.10" and rule.load_balancing_scheme == "EXTERNAL_MANAGED"
    assert rule.self_link == f"{COMPUTE}/global/forwardingRules/checkout-backend-europe-west1-fr"
    assert list(compute.forwarding_rules.list(project=compute.project, region="europe-west1")) == []


def test_each_global_rule_leads_through_its_proxy_and_url_map_to_its_backend_service(
    emulator: RunningEmulator, compute: ComputeClients
) -> None:
    found: dict[tuple[str, str], str] = {}
    for rule in compute.global_forwarding_rules.list(project=compute.project):
        proxy = compute.target_http_proxies.get(project=compute.project, target_http_proxy=_name(rule.target))
        url_map = compute.url_maps.get(project=compute.project, url_map=_name(proxy.url_map))
        service = compute.backend_services.get(project=compute.project, backend_service=_name(url_map.default_service))
        assert (proxy.self_link, url_map.self_link, service.self_link) == (rule.target, proxy.url_map, url_map.default_service)
        found[(service.name, rule.labels["evac-region"])] = rule.I_p_address

    # What discovery rebuilds from the API alone: which address serves which backend service in which region.
    assert found == {
        (binding.backend_service, region): binding.address
        for service in emulator.topology.services.values()
        for region, binding in service.regions.items()
    }
    assert [p.name for p in compute.target_http_proxies.list(project=compute.project)] == [
        "catalog-backend-proxy",
        "checkout-backend-proxy",
    ]
    url_map = compute.url_maps.get(project=compute.project, url_map="checkout-backend-map")
    assert url_map.default_service == f"{COMPUTE}/global/backendServices/checkout-backend"
    assert url_map.fingerprint and not url_map.host_rules and not url_map.path_matchers
    assert [m.name for m in compute.url_maps.list(project=compute.project)] == ["catalog-backend-map", "checkout-backend-map"]


def test_the_label_fingerprint_is_that_of_the_labels(emulator: RunningEmulator, compute: ComputeClients) -> None:
    rules = {r.name: r for r in compute.global_forwarding_rules.list(project=compute.project)}

    assert dict(rules["checkout-backend-us-central1-fr"].labels) == {"evac-region": "us-central1"}
    same_labels = {rules[f"{bs}-europe-west1-fr"].label_fingerprint for bs in ("checkout-backend", "catalog-backend")}
    assert len(same_labels) == 1 and "" not in same_labels
    assert rules["checkout-backend-us-central1-fr"].label_fingerprint not in same_labels


def test_a_regional_backend_service_has_a_regional_address_and_rule(
    regional_emulator: RunningEmulator, regional_compute: ComputeClients
) -> None:
    compute = regional_compute
    rule = compute.forwarding_rules.get(
        project=compute.project, region="us-central1", forwarding_rule="payments-uc1-us-central1-fr"
    )
    address = compute.addresses.get(project=compute.project, region="us-central1", address="payments-uc1-us-central1-ip")

    assert rule.I_p_address == address.address == "198.51.100.50"
    assert rule.backend_service == f"{COMPUTE}/regions/us-central1/backendServices/payments-uc1"
    assert rule.region == address.region == f"{COMPUTE}/regions/us-central1"
    assert list(address.users) == [rule.self_link]
    # Its region says where it serves, and the label evac-service which service its region is of
    # (regional backend services are each one region's); no proxy or URL map in between.
    assert dict(rule.labels) == {"evac-service": "payments"} and rule.label_fingerprint
    service = compute.region_backend_services.get(project=compute.project, region="us-central1", backend_service="payments-uc1")
    assert service.self_link == rule.backend_service
    assert list(compute.target_http_proxies.list(project=compute.project)) == []
    assert list(compute.url_maps.list(project=compute.project)) == []
    assert [a.name for a in compute.addresses.list(project=compute.project, region="europe-west1")] == [
        "payments-ew1-europe-west1-ip"
    ]
    assert list(compute.global_addresses.list(project=compute.project)) == []
    # One regional address in use in each region: IN_USE_ADDRESSES counts it.
    region = compute.regions.get(project=compute.project, region="us-central1")
    assert {q.metric: q.usage for q in region.quotas}["IN_USE_ADDRESSES"] == 1.0


def test_a_rule_or_address_elsewhere_is_not_found(emulator: RunningEmulator, compute: ComputeClients) -> None:
    with pytest.raises(exceptions.NotFound):
        compute.forwarding_rules.get(
            project=compute.project, region="europe-west1", forwarding_rule="checkout-backend-europe-west1-fr", retry=None
        )
    with pytest.raises(exceptions.NotFound):
        compute.global_addresses.get(project=compute.project, address="nope-ip", retry=None)
    with pytest.raises(exceptions.NotFound):
        compute.target_http_proxies.get(project=compute.project, target_http_proxy="nope-proxy", retry=None)
    with pytest.raises(exceptions.NotFound):
        compute.url_maps.get(project=compute.project, url_map="nope-map", retry=None)


@pytest.mark.parametrize("collection", ["targetHttpProxies", "urlMaps"])
def test_proxies_and_url_maps_refuse_parameters_the_api_does_not_define(emulator: RunningEmulator, collection: str) -> None:
    listed = emulator.admin.get(f"/compute/v1/projects/evac-demo/global/{collection}", params={"region": "europe-west1"})
    got = emulator.admin.get(f"/compute/v1/projects/evac-demo/global/{collection}/x", params={"maxResults": 1})

    assert (listed.status_code, got.status_code) == (400, 400)
    assert 'Unknown name "region"' in listed.json()["error"]["message"]


def test_an_injected_fault_strikes_the_url_maps_too(emulator: RunningEmulator, compute: ComputeClients) -> None:
    emulator.add_fault(method="GET", path="*/global/urlMaps/*", status=503, count=1)

    with pytest.raises(exceptions.ServiceUnavailable):
        compute.url_maps.get(project=compute.project, url_map="checkout-backend-map", retry=None)
    assert compute.url_maps.get(project=compute.project, url_map="checkout-backend-map").name == "checkout-backend-map"


def test_reading_the_front_ends_is_logged_as_reads(emulator: RunningEmulator, compute: ComputeClients) -> None:
    list(compute.global_forwarding_rules.list(project=compute.project))
    compute.global_addresses.get(project=compute.project, address="catalog-backend-us-central1-ip")

    logged = emulator.requests()
    assert [(r["method"], r["effect"]) for r in logged] == [("GET", None), ("GET", None)]
    assert logged[1]["path"].endswith("/global/addresses/catalog-backend-us-central1-ip")
