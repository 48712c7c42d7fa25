"""``evaluate_readiness`` through the real Google clients against the emulator (issue 24): the
demo plan is ready; a target quota too small for the scale-up, a record holding no region's
address and a target drained by hand each make it not ready with a finding naming the cause; a
region whose API does not answer makes it unknown (a warning), not refused; and the evaluation
changes nothing (the request log holds reads only)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.readiness import ReadinessActivities
from activities.traffic import TrafficActivities
from emulator.requestlog import is_mutation
from emulator.testing import RunningEmulator
from evac.plan import Plan, load_plan
from evac.readiness import EvaluateService, ServiceCheck, state_of
from evac.resources import BackendCapacity, GcpBackendRef, GcpGroupRef, SetBackendCapacity, StepContext
from evac.topology import Topology
from providers.gcp.clients import GcpClients
from providers.registry import Providers
from tests.conftest import DEMO, REGIONAL

GUARD_SECONDS = 120


@pytest.fixture(scope="module")
def demo_plan(demo_topology: Topology) -> Plan:
    return load_plan(DEMO / "failover.yaml", demo_topology)


def evaluate(emulator: RunningEmulator, plan: Plan, topology: Topology, service: str = "checkout") -> ServiceCheck:
    request = EvaluateService(
        context=StepContext(service=service, step="readiness"),
        plan=plan,
        service=service,
        project=topology.project,
        topology=topology.services[service],
    )
    activities = ReadinessActivities(Providers.of(GcpClients.create(emulator.url)))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ActivityEnvironment().run, activities.evaluate_readiness, request).result(timeout=GUARD_SECONDS)


def test_the_demo_plan_is_ready_and_the_evaluation_changes_nothing(emulator, demo_plan, demo_topology):
    check = evaluate(emulator, demo_plan, demo_topology)
    assert check.findings == [] and state_of(check.findings) == "ready"
    assert any(line.startswith("capacity: after scale-up us-central1 would have 3") for line in check.checked)
    assert any("serving: europe-west1" in line for line in check.checked)
    assert emulator.requests() and not [r for r in emulator.requests() if is_mutation(r["method"], r["path"])]


def test_a_target_quota_too_small_for_the_scale_up_is_not_ready(emulator, demo_plan, demo_topology):
    emulator.set_region_quota("us-central1", instances=3)
    [finding] = evaluate(emulator, demo_plan, demo_topology).findings
    assert finding.severity == "not_ready" and finding.resource == "instance group us-central1/checkout-uc1"
    assert finding.text.startswith("the scale-up to 3 needs 2 more instances; INSTANCES")


def test_a_record_that_holds_no_regions_address_is_not_ready(emulator, demo_plan, demo_topology):
    with httpx.Client(base_url=emulator.url) as api:
        zone = f"/dns/v1/projects/{emulator.project}/managedZones/shop-zone"
        old = {"name": "checkout.shop.example.com.", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.10"]}
        new = {**old, "rrdatas": ["192.0.2.99"]}
        api.post(f"{zone}/changes", json={"deletions": [old], "additions": [new]}).raise_for_status()
    finding, drift = evaluate(emulator, demo_plan, demo_topology).findings
    assert finding.severity == "not_ready" and finding.resource.startswith("DNS record checkout.shop.example.com.")
    assert finding.text.startswith("holds 192.0.2.99, which is no region's address of the service")
    # Discovery finds no service behind that record either: drift, a warning of its own.
    assert (drift.severity, drift.resource) == ("warning", "topology")
    assert drift.text.startswith("drift: not found in the cloud: no DNS record checkout.shop.example.com. leads")


def test_a_target_drained_by_hand_is_not_ready(emulator, demo_plan, demo_topology):
    group = GcpGroupRef(project=emulator.project, region="us-central1", group="checkout-uc1")
    drain = SetBackendCapacity(
        context=StepContext(service="checkout", step="by hand"),
        backend=GcpBackendRef(project=emulator.project, backend_service="checkout-backend", group=group),
        desired=BackendCapacity(capacity_scaler=0.0),
        request_key="by-hand",
    )
    traffic = TrafficActivities(Providers.of(GcpClients.create(emulator.url)))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(ActivityEnvironment().run, traffic.set_backend_capacity, drain).result(timeout=GUARD_SECONDS)
    findings = evaluate(emulator, demo_plan, demo_topology).findings
    assert [f.text for f in findings] == ["the target us-central1 is drained itself: it would take no traffic"]


def test_with_global_load_balancing_a_dead_source_region_changes_nothing_of_the_verdict(emulator, demo_plan, demo_topology):
    emulator.outage("europe-west1", api_errors=True)  # its instances down, its own API answering 503
    check = evaluate(emulator, demo_plan, demo_topology)
    assert check.findings == []  # every call the plan makes is global or us-central1's
    assert any(line.startswith("backend europe-west1/checkout-ew1") and "0/3 healthy" in line for line in check.checked)


def test_a_source_region_whose_api_does_not_answer_leaves_readiness_unknown_not_refused(regional_emulator, regional_topology):
    plan = load_plan(REGIONAL / "failover.yaml", regional_topology)
    plan = plan.model_copy(update={"retries": plan.retries.model_copy(update={"source_deadline": timedelta(seconds=2)})})
    regional_emulator.outage("europe-west1", api_errors=True)
    check = evaluate(regional_emulator, plan, regional_topology, service="payments")
    assert [(f.severity, f.text.split(":")[0]) for f in check.findings] == [
        ("warning", "its share got no answer, so its readiness is unknown"),
        ("warning", "its health got no answer, so its readiness is unknown"),
        ("warning", "its forwarding rules got no answer, so its readiness is unknown"),
    ]
    assert {f.resource for f in check.findings} == {
        "backend europe-west1-b/payments-ew1-b of regional backend service europe-west1/payments-ew1"
    }


def test_a_permission_the_plan_needs_revoked_from_the_worker_is_not_ready(emulator, demo_plan, demo_topology):
    with httpx.Client(base_url=emulator.url) as api:
        api.delete("/emulator/v1/iam/permissions/dns.changes.create").raise_for_status()
    [finding] = evaluate(emulator, demo_plan, demo_topology).findings
    assert (finding.severity, finding.resource) == ("not_ready", f"project {emulator.project}")
    assert finding.text == ("the worker's credentials lack dns.changes.create (for shift_dns): a run would fail there with 403")


def test_a_cpu_quota_too_small_for_the_scale_up_is_not_ready(emulator, demo_plan, demo_topology):
    quota = emulator.region_quota("us-central1")
    emulator.set_region_quota("us-central1", cpus=int(quota["usage"]["CPUS"]) + 2)  # room for one more 2-vCPU instance
    [finding] = evaluate(emulator, demo_plan, demo_topology).findings
    assert finding.resource == "instance group us-central1/checkout-uc1"
    assert finding.text.startswith("the scale-up to 3 needs 2 more instances; CPUS ")
    assert finding.text.endswith("2 vCPUs per e2-standard-2 instance: room for 1")


def test_a_renamed_backend_service_is_not_ready(emulator, demo_plan, demo_topology):
    with httpx.Client(base_url=emulator.url) as api:
        api.post("/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-backend-v2"}).raise_for_status()
    findings = evaluate(emulator, demo_plan, demo_topology).findings
    refused = [f for f in findings if f.severity == "not_ready"]
    assert refused and all("checkout-backend" in f.resource and "404" in f.text for f in refused), findings
    # The drift says what became of it: both names, each place in the file.
    assert [(f.severity, f.resource, f.text) for f in findings if f not in refused] == [
        (
            "warning",
            f"topology regions.{region}.backend_service",
            "drift: the file says checkout-backend; the cloud has checkout-backend-v2",
        )
        for region in ("europe-west1", "us-central1")
    ]


def test_a_target_address_no_forwarding_rule_serves_is_not_ready(emulator, demo_plan, demo_topology):
    services = dict(demo_topology.services)
    checkout = services["checkout"]
    moved = checkout.regions["us-central1"].model_copy(update={"address": "198.51.100.99"})
    services["checkout"] = checkout.model_copy(update={"regions": {**checkout.regions, "us-central1": moved}})
    topology = demo_topology.model_copy(update={"services": services})
    finding, drift = evaluate(emulator, demo_plan, topology).findings
    assert finding.severity == "not_ready" and finding.resource.startswith("backend us-central1/checkout-uc1")
    assert finding.text == "no forwarding rule serves us-central1's address 198.51.100.99 (the topology's)"
    assert (drift.severity, drift.resource) == ("warning", "topology regions.us-central1.address")
    assert drift.text == "drift: the file says 198.51.100.99; the cloud has 198.51.100.10"
