"""``read_before_change``, a mutating step's reads in one local activity, through the real
Google clients against the emulator: the guard's readings and the before-state it returns are
what the separate read activities return, a refusing guard stops it before the before-read
(except in a dry run), and a bad input names what is wrong. And ``preflight_reads``, a run's
preflight in one activity: every resource read, bursts ridden out, a refusal before a 5xx."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.capacity import CapacityActivities
from activities.databases import DatabaseActivities
from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.step_reads import StepReadActivities
from activities.traffic import TrafficActivities
from emulator.testing import RunningEmulator
from evac.failures import FailureType
from evac.resources import (
    BackendCapacity,
    BeforeChange,
    CloudDnsRecordRef,
    DnsRecord,
    GcpBackendRef,
    GcpGroupRef,
    GroupSize,
    HealthReport,
    PreflightReadings,
    PreflightReads,
    ReadBeforeChange,
    StepContext,
)
from providers.gcp.clients import GcpClients
from providers.registry import Providers

PROJECT = "evac-demo"
CTX = StepContext(service="checkout", step="drain")
EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="checkout-ew1")
UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")
SOURCE = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=EW1)
TARGET = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=UC1)
RECORD = CloudDnsRecordRef(project=PROJECT, managed_zone="shop-zone", name="checkout.shop.example.com.", type="A")


@pytest.fixture
def reads(emulator: RunningEmulator) -> StepReadActivities:
    clients = GcpClients.create(emulator.url)
    traffic, health = TrafficActivities(Providers.of(clients)), HealthActivities(Providers.of(clients))
    providers = Providers.of(clients)
    return StepReadActivities(
        traffic, CapacityActivities(providers), DnsActivities(providers), health, DatabaseActivities(providers)
    )


def read(reads: StepReadActivities, **fields: object) -> BeforeChange:
    return ActivityEnvironment().run(reads.read_before_change, ReadBeforeChange(context=CTX, **fields))


def test_a_guarded_drain_reads_the_target_then_the_source(emulator, reads):
    result = read(reads, guard=TARGET, min_healthy=1, backend=SOURCE)
    assert result.health is not None and result.health.healthy >= 1
    assert result.capacity == BackendCapacity(capacity_scaler=1.0)
    assert result.before == BackendCapacity(capacity_scaler=1.0)
    # The calls the separate read activities made: getHealth, then the backend service twice.
    calls = [r["path"].rsplit("/", 1)[-1] for r in emulator.requests()]
    assert calls == ["getHealth", "checkout-backend", "checkout-backend"]


def test_each_resource_kind_reads_its_own_before_state(emulator, reads):
    assert isinstance(read(reads, group=UC1).before, GroupSize)
    dns = read(reads, guard=TARGET, min_healthy=1, record=RECORD).before
    assert isinstance(dns, DnsRecord) and dns.rrdatas


def test_a_refusing_guard_stops_before_the_before_read_except_in_a_dry_run(emulator, reads):
    emulator.outage("us-central1")
    refused = read(reads, guard=TARGET, min_healthy=1, backend=SOURCE)
    assert refused.health == HealthReport(healthy=0, total=refused.health.total)  # type: ignore[union-attr]
    # Health refused: neither the target's capacity nor the before-state was read.
    assert (refused.capacity, refused.before) == (None, None)
    # A dry run reads it all: it judges as if its earlier scale-ups had happened, and goes on.
    dry = read(reads, guard=TARGET, min_healthy=1, stop_on_refusal=False, backend=SOURCE)
    assert dry.capacity == BackendCapacity(capacity_scaler=1.0) and dry.before == BackendCapacity(capacity_scaler=1.0)


def test_a_missing_resource_fails_as_its_own_read_does(reads):
    missing = GcpBackendRef(project=PROJECT, backend_service="no-such-backend", group=EW1)
    with pytest.raises(ApplicationError) as error:
        read(reads, backend=missing)
    assert error.value.non_retryable and "no-such-backend" in error.value.message


@pytest.mark.parametrize("resources", [{}, {"backend": SOURCE, "record": RECORD}])
def test_exactly_one_resource_must_be_named(resources):
    with pytest.raises(ValidationError, match="exactly one resource"):
        ReadBeforeChange(context=CTX, **resources)


# --- preflight_reads: a run's preflight, every resource in one activity -------------------------


def preflight(reads: StepReadActivities, **fields: object) -> PreflightReadings:
    request = PreflightReads(context=StepContext(service="checkout", step="preflight"), **fields)
    return ActivityEnvironment().run(reads.preflight_reads, request)


def test_preflight_reads_every_resource_in_one_call_in_the_order_asked(emulator, reads):
    found = preflight(reads, backends=[SOURCE, TARGET], groups=[EW1, UC1], records=[RECORD])
    assert found.backends == [BackendCapacity(capacity_scaler=1.0)] * 2
    assert [g.target_size for g in found.groups] == [3, 1] and found.records[0].rrdatas
    calls = sorted(r["path"].rsplit("/", 1)[-1] for r in emulator.requests())
    assert calls == sorted(["checkout-backend", "checkout-backend", "checkout-ew1", "checkout-uc1", "rrsets"])


@pytest.mark.parametrize("status", [503, 429])
def test_preflight_rides_out_a_short_burst_in_place(emulator, reads, status: int):
    emulator.add_fault(method="GET", path="*/instanceGroupManagers/*", status=status, count=2)
    found = preflight(reads, backends=[SOURCE], groups=[EW1, UC1])
    assert [g.target_size for g in found.groups] == [3, 1]


def test_preflight_fails_as_a_missing_resource_does_even_beside_a_lasting_5xx(emulator, reads):
    """A refusal says the run cannot go; a 5xx only that it cannot go yet: the refusal wins, so the
    run fails at once instead of being retried to its deadline."""
    emulator.add_fault(method="GET", path="*/instanceGroupManagers/*", status=503)
    missing = GcpBackendRef(project=PROJECT, backend_service="no-such-backend", group=EW1)
    with pytest.raises(ApplicationError) as error:
        preflight(reads, backends=[SOURCE, missing], groups=[EW1])
    assert error.value.non_retryable and "no-such-backend" in error.value.message


def test_preflight_fails_for_temporal_to_retry_while_a_5xx_lasts(emulator, reads):
    emulator.add_fault(method="GET", path="*/managedZones/*", status=503)
    with pytest.raises(ApplicationError) as error:
        preflight(reads, backends=[SOURCE], records=[RECORD])
    assert error.value.type == FailureType.CLOUD_TRANSIENT.value and not error.value.non_retryable
