"""Topology discovery through the real Google clients against the emulator (issue 24): the demo
world gives back plans/demo/topology.yaml and the regional one plans/regional/topology.yaml (but
for their emulator seeds and comments); it reads only; it holds through 5xx bursts and 429s; a
region whose API is down fails it naming the call; a renamed backend service is drift."""

from __future__ import annotations

import httpx
import pytest

from emulator.requestlog import is_mutation
from emulator.testing import RunningEmulator
from evac.discovery import Found, checked, compare, plain
from evac.topology import Topology
from providers.gcp.clients import GcpClients
from providers.gcp.discovery import GcpDiscovery


def discover(emulator: RunningEmulator, regions: list[str] | None = None) -> Found:
    return checked(GcpDiscovery(GcpClients.create(emulator.url)).discover(emulator.project, regions))


def test_the_demo_world_gives_back_the_demo_topology_and_nothing_changes(emulator, demo_topology: Topology):
    found = discover(emulator)
    assert found.unplaced == []
    topology = found.topology()
    assert topology is not None
    assert plain(topology) == plain(demo_topology)
    assert found.regions == ["europe-west1", "us-central1"]
    assert not [r for r in emulator.requests() if is_mutation(r["method"], r["path"])]


def test_the_regional_world_is_joined_by_its_rules_service_label(regional_emulator, regional_topology: Topology):
    found = discover(regional_emulator)
    assert found.unplaced == []
    topology = found.topology()
    assert topology is not None and plain(topology) == plain(regional_topology)


def test_one_region_is_not_enough_to_place_a_service(emulator):
    found = discover(emulator, ["europe-west1"])
    assert found.services == {}
    assert any("checkout.shop.example.com." in line and "serves europe-west1 only" in line for line in found.unplaced)


def test_an_unknown_region_is_refused_by_name(emulator):
    with pytest.raises(ValueError, match="project evac-demo has no region mars-north1"):
        discover(emulator, ["mars-north1"])


def test_it_holds_through_5xx_bursts_and_429s(emulator, demo_topology: Topology):
    emulator.add_fault(status=503, count=3, path="*/global/backendServices")
    emulator.add_fault(status=429, count=2, path="*/forwardingRules")
    found = discover(emulator)
    assert found.topology() is not None and plain(found.topology()) == plain(demo_topology)  # type: ignore[arg-type]


def test_a_region_whose_api_is_down_is_left_unread_and_said_so(emulator, demo_topology: Topology):
    emulator.outage("europe-west1", api_errors=True)
    found = discover(emulator)
    # Global load balancing: what the global APIs serve places both regions' groups.
    assert found.topology() is not None and plain(found.topology()) == plain(demo_topology)  # type: ignore[arg-type]
    [(region, why)] = found.unread.items()
    assert region == "europe-west1" and "HTTP 503" in why
    assert found.unplaced == [f"europe-west1: its own API was not read ({why}); what only it serves is unknown"]
    result = compare(demo_topology.services, found)
    assert result.drift == [] and result.notes == []


def test_a_global_api_that_never_answers_fails_it_naming_the_call(emulator):
    emulator.add_fault(status=503, path="*/global/urlMaps/*")
    with pytest.raises(Exception, match="get URL map .*-backend-map: HTTP 503"):
        discover(emulator)


def test_a_renamed_backend_service_is_drift_naming_both_names(emulator, demo_topology: Topology):
    httpx.post(
        f"{emulator.url}/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-lb"}
    ).raise_for_status()
    result = compare(demo_topology.services, discover(emulator))
    assert [str(d) for d in result.drift] == [
        "checkout: regions.europe-west1.backend_service: the file says checkout-backend; the cloud has checkout-lb",
        "checkout: regions.us-central1.backend_service: the file says checkout-backend; the cloud has checkout-lb",
    ]


def test_one_reading_serves_one_evaluation_and_the_next_reads_again(emulator):
    discovery = GcpDiscovery(GcpClients.create(emulator.url))
    first = discovery.shared("evaluation-1", emulator.project, ["europe-west1", "us-central1"])
    calls = len(emulator.requests())
    assert discovery.shared("evaluation-1", emulator.project, ["us-central1", "europe-west1"]) is first
    assert len(emulator.requests()) == calls  # the same evaluation's other service: no call
    httpx.post(
        f"{emulator.url}/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-lb"}
    ).raise_for_status()
    again = checked(discovery.shared("evaluation-2", emulator.project, ["europe-west1", "us-central1"]))
    assert again.services["checkout"].regions["europe-west1"].backend_service == "checkout-lb"  # type: ignore[union-attr]
