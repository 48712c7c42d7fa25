"""The load balancers' front ends through the real google-cloud-compute clients: per service and
region, the address its DNS record holds when the region serves, and the forwarding rule that
serves it — global for a global backend service (the demo), regional for a regional one."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from emulator.testing import ComputeClients, RunningEmulator

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"


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


def test_reading_the_front_ends_is_logged_as_reads(emulator: RunningEmulator, compute: ComputeClients) -> None:
    list(compute.global_forwarding_rules.list(project=compute.project))
    compute.global_addresses.get(project=compute.project, address="catalog-backend-us-central1-ip")

    logged = emulator.requests()
    assert [(r["method"], r["effect"]) for r in logged] == [("GET", None), ("GET", None)]
    assert logged[1]["path"].endswith("/global/addresses/catalog-backend-us-central1-ip")
