"""``read_targets`` (an evacuation's --auto-target readings) through the real Google clients
against the emulator: what it reads per candidate region, that a region the cloud refuses to
read is reported unreadable (and passed over), and that a transient error still there after
the in-place retries fails the activity, for Temporal to retry, instead of passing a healthy
region over."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import GcpClients
from activities.evacuation import EvacuationActivities
from emulator.testing import RunningEmulator
from evac.evacuation import CandidateRegion, ReadTargets, ReadTargetsResult, TargetQuery
from evac.failures import FailureType
from evac.resources import BackendRef, GroupRef, StepContext

PROJECT = "evac-demo"
UC1 = GroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")


def read(emulator: RunningEmulator, backend_service: str = "checkout-backend") -> ReadTargetsResult:
    backend = BackendRef(project=PROJECT, backend_service=backend_service, group=UC1)
    query = TargetQuery(service="checkout", regions=[CandidateRegion(region="us-central1", backend=backend)])
    request = ReadTargets(context=StepContext(service="*", step="choose targets"), source="europe-west1", services=[query])
    activities = EvacuationActivities(GcpClients.create(emulator.url))
    return ActivityEnvironment().run(activities.read_targets, request)


def test_each_candidate_regions_health_and_capacity_are_read(emulator: RunningEmulator):
    [readings] = read(emulator).readings
    [region] = readings.regions
    assert readings.service == "checkout" and region.region == "us-central1"
    assert region.health is not None and region.health.healthy >= 1
    assert region.capacity_scaler == 1.0 and region.error is None


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
        read(emulator)
    assert raised.value.type == FailureType.CLOUD_TRANSIENT.value and not raised.value.non_retryable
