"""The real activities, through the real Google clients, against the emulator.

Each mutating activity is run twice: the second run changes nothing. Transient errors are
retryable, refusals are not, and every message names the resource.
"""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.capacity import CapacityActivities
from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from emulator.testing import RunningEmulator
from evac.resources import (
    BackendCapacity,
    CheckBackendHealth,
    CloudDnsRecordRef,
    DnsRecord,
    GcpBackendRef,
    GcpGroupRef,
    GroupSize,
    ReadBackendCapacity,
    ReadDnsRecord,
    ResizeGroup,
    SetBackendCapacity,
    SetDnsRecord,
    StepContext,
)
from providers.gcp.clients import GcpClients
from providers.registry import Providers

PROJECT = "evac-demo"
CTX = StepContext(service="checkout", step="test")
EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="checkout-ew1")
UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")
BACKEND = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=EW1)
RECORD = CloudDnsRecordRef(project=PROJECT, managed_zone="shop-zone", name="checkout.shop.example.com.", type="A")


@pytest.fixture
def clients(emulator: RunningEmulator) -> GcpClients:
    return GcpClients.create(emulator.url)


def mutations(emulator: RunningEmulator) -> list[dict]:
    return [
        r
        for r in emulator.requests()
        if r["method"] in ("POST", "PATCH", "PUT", "DELETE") and not r["path"].endswith(("/wait", "/getHealth"))
    ]


def test_set_backend_capacity_twice_changes_once_and_returns_the_before_state(emulator, clients):
    traffic = TrafficActivities(Providers.of(clients))
    env = ActivityEnvironment()
    input = SetBackendCapacity(context=CTX, backend=BACKEND, desired=BackendCapacity(capacity_scaler=0.0), request_key="t/1")

    first = env.run(traffic.set_backend_capacity, input)
    state_after_first = emulator.state()
    second = env.run(traffic.set_backend_capacity, input)

    assert first.changed and first.before == BackendCapacity(capacity_scaler=1.0)
    assert not second.changed and second.before == BackendCapacity(capacity_scaler=0.0)
    assert emulator.state() == state_after_first
    assert [r["method"] for r in mutations(emulator)] == ["PATCH"]
    backends = state_after_first["backendServices"]["checkout-backend"]["backends"]
    scalers = {b["group"].rsplit("/", 1)[-1]: b["capacityScaler"] for b in backends}
    assert scalers == {"checkout-ew1": 0.0, "checkout-uc1": 1.0}  # the other region's backend untouched


def test_a_retry_after_a_lost_result_reports_the_recorded_before_state(emulator, clients):
    """Attempt 1 applied the change and died before reporting; attempt 2 finds it done."""
    traffic = TrafficActivities(Providers.of(clients))
    input = SetBackendCapacity(
        context=CTX,
        backend=BACKEND,
        desired=BackendCapacity(capacity_scaler=0.0),
        prior=BackendCapacity(capacity_scaler=1.0),
        request_key="t/2",
    )
    ActivityEnvironment().run(traffic.set_backend_capacity, input)
    retry_env = ActivityEnvironment()
    retry_env.info = dataclasses.replace(ActivityEnvironment.default_info(), attempt=2)
    retry = retry_env.run(traffic.set_backend_capacity, input)
    assert not retry.changed
    assert retry.before == BackendCapacity(capacity_scaler=1.0)
    assert len(mutations(emulator)) == 1


def test_undo_restores_the_emulator_to_its_exact_state(emulator, clients):
    providers = Providers.of(clients)
    traffic, capacity, dns = TrafficActivities(providers), CapacityActivities(providers), DnsActivities(providers)
    env = ActivityEnvironment()
    start = emulator.state()
    drained = env.run(
        traffic.set_backend_capacity,
        SetBackendCapacity(context=CTX, backend=BACKEND, desired=BackendCapacity(capacity_scaler=0.0), request_key="u/1"),
    )
    grown = env.run(
        capacity.resize_group,
        ResizeGroup(context=CTX, group=UC1, desired=GroupSize(target_size=3), request_key="u/2"),
    )
    shifted = env.run(
        dns.set_dns_record,
        SetDnsRecord(context=CTX, record=RECORD, desired=DnsRecord(ttl=60, rrdatas=["198.51.100.10"])),
    )
    assert emulator.state() != start
    env.run(dns.set_dns_record, SetDnsRecord(context=CTX, record=RECORD, desired=shifted.before, prior=shifted.after))
    env.run(
        capacity.resize_group,
        ResizeGroup(context=CTX, group=UC1, desired=grown.before, prior=grown.after, request_key="u/2-undo"),
    )
    env.run(
        traffic.set_backend_capacity,
        SetBackendCapacity(context=CTX, backend=BACKEND, desired=drained.before, prior=drained.after, request_key="u/1-undo"),
    )
    assert emulator.state() == start


def test_resize_twice_resizes_once_and_waits_until_the_group_is_stable(emulator, clients):
    capacity, health = CapacityActivities(Providers.of(clients)), HealthActivities(Providers.of(clients))
    env = ActivityEnvironment()
    input = ResizeGroup(context=CTX, group=UC1, desired=GroupSize(target_size=3), request_key="r/1")
    first = env.run(capacity.resize_group, input)
    second = env.run(capacity.resize_group, input)
    assert first.changed and first.before == GroupSize(target_size=1)
    assert not second.changed and second.after == GroupSize(target_size=3)
    assert [r["path"].rsplit("/", 1)[-1] for r in mutations(emulator)] == ["resize"]
    # Stable means the new instances serve: all three are healthy when resize returns.
    report = env.run(
        health.check_backend_health,
        CheckBackendHealth(context=CTX, backend=GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=UC1)),
    )
    assert (report.healthy, report.total) == (3, 3)


def test_set_dns_record_twice_changes_once(emulator, clients):
    dns = DnsActivities(Providers.of(clients))
    env = ActivityEnvironment()
    input = SetDnsRecord(context=CTX, record=RECORD, desired=DnsRecord(ttl=60, rrdatas=["198.51.100.10"]))
    first = env.run(dns.set_dns_record, input)
    second = env.run(dns.set_dns_record, input)
    assert first.changed and first.before == DnsRecord(ttl=300, rrdatas=["203.0.113.10"])
    assert not second.changed
    assert [r["path"].rsplit("/", 1)[-1] for r in mutations(emulator)] == ["changes"]
    resolved = emulator.admin.get("/emulator/v1/resolve", params={"name": RECORD.name, "type": "A"}).json()
    assert "198.51.100.10" in str(resolved)


def test_health_reports_an_outage(emulator, clients):
    health = HealthActivities(Providers.of(clients))
    emulator.outage("europe-west1")
    report = ActivityEnvironment().run(health.check_backend_health, CheckBackendHealth(context=CTX, backend=BACKEND))
    assert (report.healthy, report.total) == (0, 3)


def test_an_unknown_resource_is_a_non_retryable_error_naming_it(emulator, clients):
    traffic = TrafficActivities(Providers.of(clients))
    missing = GcpBackendRef(project=PROJECT, backend_service="no-such-backend", group=EW1)
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(traffic.read_backend_capacity, ReadBackendCapacity(context=CTX, backend=missing))
    assert error.value.non_retryable
    assert "no-such-backend" in error.value.message and "404" in error.value.message


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_unavailability_are_retryable(emulator, clients, status):
    traffic = TrafficActivities(Providers.of(clients))
    emulator.add_fault(method="PATCH", path="*/backendServices/*", status=status, count=1)
    input = SetBackendCapacity(context=CTX, backend=BACKEND, desired=BackendCapacity(capacity_scaler=0.0), request_key="f/1")
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(traffic.set_backend_capacity, input)
    assert not error.value.non_retryable
    assert str(status) in error.value.message
    # The retry Temporal would make succeeds once the fault has passed.
    assert ActivityEnvironment().run(traffic.set_backend_capacity, input).changed


def test_a_worker_bound_to_a_project_refuses_another(emulator):
    clients = GcpClients.create(emulator.url, project="some-other-project")
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(
            TrafficActivities(Providers.of(clients)).read_backend_capacity, ReadBackendCapacity(context=CTX, backend=BACKEND)
        )
    assert error.value.non_retryable
    assert "serves Google Cloud project 'some-other-project'" in error.value.message
    assert emulator.requests() == []


def test_a_request_the_api_refuses_as_invalid_is_not_retried(emulator, clients):
    capacity = CapacityActivities(Providers.of(clients))
    input = ResizeGroup(context=CTX, group=UC1, desired=GroupSize(target_size=-1), request_key="bad/1")
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(capacity.resize_group, input)
    assert error.value.non_retryable
    assert "HTTP 400" in error.value.message and "checkout-uc1" in error.value.message
    assert emulator.state()["instanceGroupManagers"]["us-central1/checkout-uc1"]["targetSize"] == 1


def test_a_record_with_a_routing_policy_is_refused_with_a_clear_message(emulator, clients):
    wrr = {
        "name": "wrr.shop.example.com.",
        "type": "A",
        "ttl": 30,
        "routingPolicy": {"wrr": {"items": [{"weight": 1, "rrdatas": ["203.0.113.10"]}]}},
    }
    emulator.admin.post(f"/dns/v1/projects/{PROJECT}/managedZones/shop-zone/rrsets", json=wrr).raise_for_status()
    ref = RECORD.model_copy(update={"name": "wrr.shop.example.com."})
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(DnsActivities(Providers.of(clients)).read_dns_record, ReadDnsRecord(context=CTX, record=ref))
    assert error.value.non_retryable
    assert "uses a routing policy" in error.value.message and "wrr.shop.example.com." in error.value.message
