"""The activities on regional backend services and zonal managed instance groups, through
the real clients, against an emulator seeded with plans/regional/topology.yaml."""

from __future__ import annotations

import pytest
from temporalio.testing import ActivityEnvironment

from activities.capacity import CapacityActivities
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from emulator.testing import RunningEmulator
from evac.resources import (
    BackendCapacity,
    CheckBackendHealth,
    GcpBackendRef,
    GcpGroupRef,
    GroupSize,
    ResizeGroup,
    SetBackendCapacity,
    StepContext,
)
from providers.gcp.clients import GcpClients
from providers.registry import Providers

CTX = StepContext(service="payments", step="test")
EW1 = GcpGroupRef(project="evac-demo", region="europe-west1", group="payments-ew1-b", zone="europe-west1-b")
UC1 = GcpGroupRef(project="evac-demo", region="us-central1", group="payments-uc1-a", zone="us-central1-a")
EW1_BACKEND = GcpBackendRef(project="evac-demo", backend_service="payments-ew1", scope="regional", group=EW1)


@pytest.fixture
def regional(regional_emulator: RunningEmulator) -> RunningEmulator:
    return regional_emulator


@pytest.fixture
def clients(regional: RunningEmulator) -> GcpClients:
    return GcpClients.create(regional.url)


def applied(emulator: RunningEmulator) -> list[str]:
    return [r["path"] for r in emulator.requests() if r["effect"] == "applied"]


def test_a_zonal_group_is_resized_once_and_waited_for(regional, clients):
    env = ActivityEnvironment()
    input = ResizeGroup(context=CTX, group=UC1, desired=GroupSize(target_size=3), request_key="z/1")
    first = env.run(CapacityActivities(Providers.of(clients)).resize_group, input)
    second = env.run(CapacityActivities(Providers.of(clients)).resize_group, input)
    assert first.changed and first.before == GroupSize(target_size=1)
    assert not second.changed
    assert applied(regional) == ["/compute/v1/projects/evac-demo/zones/us-central1-a/instanceGroupManagers/payments-uc1-a/resize"]
    report = env.run(
        HealthActivities(Providers.of(clients)).check_backend_health,
        CheckBackendHealth(
            context=CTX,
            backend=GcpBackendRef(project="evac-demo", backend_service="payments-uc1", scope="regional", group=UC1),
        ),
    )
    assert (report.healthy, report.total) == (3, 3)


def test_a_regional_backend_is_patched_with_its_fingerprint_and_restored(regional, clients):
    env = ActivityEnvironment()
    traffic = TrafficActivities(Providers.of(clients))
    start = regional.state()
    half = env.run(
        traffic.set_backend_capacity,
        SetBackendCapacity(context=CTX, backend=EW1_BACKEND, desired=BackendCapacity(capacity_scaler=0.5), request_key="r/1"),
    )
    assert half.changed and half.before == BackendCapacity(capacity_scaler=1.0)
    env.run(
        traffic.set_backend_capacity,
        SetBackendCapacity(context=CTX, backend=EW1_BACKEND, desired=half.before, prior=half.after, request_key="r/1-undo"),
    )
    assert regional.state() == start
    assert applied(regional) == ["/compute/v1/projects/evac-demo/regions/europe-west1/backendServices/payments-ew1"] * 2


def test_health_of_a_zonal_group_follows_an_outage(regional, clients):
    regional.outage("europe-west1")
    report = ActivityEnvironment().run(
        HealthActivities(Providers.of(clients)).check_backend_health, CheckBackendHealth(context=CTX, backend=EW1_BACKEND)
    )
    assert (report.healthy, report.total) == (0, 3)
