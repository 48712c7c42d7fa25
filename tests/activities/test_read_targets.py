"""``read_targets`` (an evacuation's --auto-target readings) through the real Google clients
against the emulator: what it reads per candidate region, that a region the cloud refuses to
read is reported unreadable (and passed over), and that a transient error still there after
the in-place retries fails the activity, for Temporal to retry, instead of passing a healthy
region over."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.evacuation import EvacuationActivities
from emulator.testing import RunningEmulator
from evac.evacuation import CandidateRegion, ReadTargets, ReadTargetsResult, TargetQuery
from evac.failures import FailureType
from evac.resources import GcpBackendRef, GcpGroupRef, StepContext
from providers.gcp.clients import GcpClients
from providers.registry import Providers

PROJECT = "evac-demo"
UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")
EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="checkout-ew1")
PAY_EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="payments-ew1-b", zone="europe-west1-b")
# A test that is not bounded by its budget would block on the emulator this long.
GUARD_SECONDS = 120


def read(
    emulator: RunningEmulator,
    backend_service: str = "checkout-backend",
    *,
    source: CandidateRegion | None = None,
    budget: float | None = 30.0,
) -> ReadTargetsResult:
    backend = GcpBackendRef(project=PROJECT, backend_service=backend_service, group=UC1)
    source = source or CandidateRegion(
        region="europe-west1", backend=GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=EW1), group=EW1
    )
    query = TargetQuery(
        service="checkout", source=source, regions=[CandidateRegion(region="us-central1", backend=backend, group=UC1)]
    )
    request = ReadTargets(
        context=StepContext(service="*", step="read capacity"),
        source="europe-west1",
        services=[query],
        source_budget_seconds=budget,
    )
    activities = EvacuationActivities(Providers.of(GcpClients.create(emulator.url)))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ActivityEnvironment().run, activities.read_targets, request).result(timeout=GUARD_SECONDS)


def test_each_regions_health_capacity_and_size_are_read_and_the_sources_load(emulator: RunningEmulator):
    [readings] = read(emulator).readings
    [region] = readings.regions
    assert readings.service == "checkout" and region.region == "us-central1"
    assert region.health is not None and region.health.healthy >= 1
    assert region.capacity_scaler == 1.0 and region.error is None
    groups = emulator.state()["instanceGroupManagers"]
    assert region.size == next(g["targetSize"] for key, g in groups.items() if key.endswith("checkout-uc1"))
    usage = emulator.region_quota("us-central1")["usage"]["INSTANCES"]
    assert region.quota == f"INSTANCES {usage}/1e+06" and region.quota_room == 1_000_000 - usage
    source = readings.source
    assert source.region == "europe-west1" and source.health is not None and source.health.total >= 1
    assert source.capacity_scaler == 1.0 and source.size is None  # the source's own group API is not called


def test_a_hanging_source_costs_the_read_no_more_than_its_budget_and_the_targets_are_still_read(
    regional_emulator: RunningEmulator,
):
    """payments' europe-west1 backend service is regional: its API is the region's, which hangs."""
    regional_emulator.add_fault(path="*europe-west1*", latency=3600)
    source = CandidateRegion(
        region="europe-west1",
        backend=GcpBackendRef(project=PROJECT, backend_service="payments-ew1", scope="regional", group=PAY_EW1),
        group=PAY_EW1,
    )
    pay_uc1 = GcpGroupRef(project=PROJECT, region="us-central1", group="payments-uc1-a", zone="us-central1-a")
    target = CandidateRegion(
        region="us-central1",
        backend=GcpBackendRef(project=PROJECT, backend_service="payments-uc1", scope="regional", group=pay_uc1),
        group=pay_uc1,
    )
    request = ReadTargets(
        context=StepContext(service="*", step="read capacity"),
        source="europe-west1",
        services=[TargetQuery(service="payments", source=source, regions=[target])],
        source_budget_seconds=1.5,
    )
    activities = EvacuationActivities(Providers.of(GcpClients.create(regional_emulator.url)))
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(ActivityEnvironment().run, activities.read_targets, request).result(timeout=GUARD_SECONDS)
    [readings] = result.readings
    assert readings.source.health is None and readings.source.error is not None
    assert "timeout" in readings.source.error.lower()
    assert readings.regions[0].readable and readings.regions[0].size is not None


def test_the_quota_left_in_the_region_is_its_room(emulator: RunningEmulator):
    emulator.set_region_quota("us-central1", instances=10)
    usage = emulator.region_quota("us-central1")["usage"]["INSTANCES"]
    [readings] = read(emulator).readings
    assert readings.regions[0].quota_room == 10 - usage and readings.regions[0].quota == f"INSTANCES {usage}/10"


def test_a_source_deadline_of_0_never_calls_the_source(emulator: RunningEmulator):
    [readings] = read(emulator, budget=0).readings
    assert readings.source.health is None and "source_deadline is 0" in (readings.source.error or "")
    assert not [r for r in emulator.requests() if "europe-west1" in r["path"] or "checkout-ew1" in str(r.get("body"))]


def test_a_region_the_cloud_refuses_to_read_is_unreadable_with_why(emulator: RunningEmulator):
    [readings] = read(emulator, backend_service="no-such-backend").readings
    [region] = readings.regions
    assert region.health is None and region.capacity_scaler is None
    assert region.error is not None and "404" in region.error


def test_a_short_5xx_burst_is_retried_in_place(emulator: RunningEmulator):
    emulator.add_fault(method="GET", path="*/backendServices/checkout-backend", status=503, count=1)
    [readings] = read(emulator).readings
    assert readings.regions[0].capacity_scaler == 1.0


def test_a_lasting_5xx_fails_the_read_for_temporal_to_retry_not_the_region(emulator: RunningEmulator):
    emulator.add_fault(method="GET", path="*/backendServices/checkout-backend", status=503)
    with pytest.raises(ApplicationError) as raised:
        read(emulator, budget=2)  # (the source's reads of the same backend service give up within it)
    assert raised.value.type == FailureType.CLOUD_TRANSIENT.value and not raised.value.non_retryable
