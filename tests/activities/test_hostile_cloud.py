"""The activities when the cloud's control plane is at its worst: operations slower than the
heartbeat timeout, retries that find their change already made, cancellation before and
after a mutation is submitted, bursts of 503 and 429, and health that takes its time.

Real activities, real clients, the emulator; each activity runs in Temporal's
ActivityEnvironment (heartbeats, attempt, heartbeat details and cancellation as a worker
gives them).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import compute_v1
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.capacity import CapacityActivities
from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from emulator.testing import RunningEmulator
from evac.failures import FailureType
from evac.resources import (
    BackendCapacity,
    Change,
    CloudDnsRecordRef,
    DnsRecord,
    GcpBackendRef,
    GcpGroupRef,
    GroupSize,
    HealthReport,
    ReadBackendCapacity,
    ResizeGroup,
    SetBackendCapacity,
    SetDnsRecord,
    StepContext,
    WaitForHealthy,
)
from providers.gcp.clients import GcpClients
from providers.gcp.operations import OperationRef
from providers.registry import Providers

PROJECT = "evac-demo"
CTX = StepContext(service="checkout", step="test")
EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="checkout-ew1")
UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")
BACKEND = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=EW1)
UC1_BACKEND = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=UC1)
RECORD = CloudDnsRecordRef(project=PROJECT, managed_zone="shop-zone", name="checkout.shop.example.com.", type="A")
PRIMARY = DnsRecord(ttl=300, rrdatas=["203.0.113.10"])
STANDBY = DnsRecord(ttl=60, rrdatas=["198.51.100.10"])
HEARTBEAT_TIMEOUT = timedelta(seconds=1)
DONE = compute_v1.Operation.Status.DONE


class Heartbeats:
    """What the activity heartbeated, and when (monotonic seconds)."""

    def __init__(self, then: Callable[[Any], None] | None = None):
        self.times: list[float] = []
        self.details: list[Any] = []
        self._then = then

    def __call__(self, *details: Any) -> None:
        self.times.append(time.monotonic())
        self.details.append(details[0] if details else None)
        if self._then is not None:
            self._then(details[0] if details else None)


def environment(
    *, attempt: int = 1, earlier: dict[str, Any] | None = None, then: Callable[[Any], None] | None = None
) -> tuple[ActivityEnvironment, Heartbeats]:
    """An activity environment as a worker gives a mutation: a heartbeat timeout, an attempt,
    the previous attempt's last heartbeat details."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        ActivityEnvironment.default_info(),
        attempt=attempt,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        heartbeat_details=[earlier] if earlier is not None else [],
    )
    beats = Heartbeats(then)
    env.on_heartbeat = beats
    return env, beats


def pending_work(clients: GcpClients) -> list[str]:
    """Every Compute operation and DNS change not yet done, by name."""
    ops = [
        *clients.global_operations.list(project=PROJECT),
        *clients.region_operations.list(project=PROJECT, region="us-central1"),
        *clients.region_operations.list(project=PROJECT, region="europe-west1"),
    ]
    changes = clients.dns_for(PROJECT).zone(RECORD.managed_zone).list_changes()
    return [op.name for op in ops if op.status != DONE] + [f"dns/{c.name}" for c in changes if c.status != "done"]


def mutations(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["effect"] is not None]


# --- The three mutations, run as the workflow runs them, and submitted by hand ----------


def drain(env: ActivityEnvironment, clients: GcpClients) -> Change:
    return env.run(
        TrafficActivities(Providers.of(clients)).set_backend_capacity,
        SetBackendCapacity(
            context=CTX,
            backend=BACKEND,
            desired=BackendCapacity(capacity_scaler=0.0),
            prior=BackendCapacity(capacity_scaler=1.0),
            request_key="hostile/drain",
        ),
    )


def grow(env: ActivityEnvironment, clients: GcpClients) -> Change:
    return env.run(
        CapacityActivities(Providers.of(clients)).resize_group,
        ResizeGroup(
            context=CTX, group=UC1, desired=GroupSize(target_size=3), prior=GroupSize(target_size=1), request_key="hostile/grow"
        ),
    )


def shift(env: ActivityEnvironment, clients: GcpClients) -> Change:
    return env.run(
        DnsActivities(Providers.of(clients)).set_dns_record,
        SetDnsRecord(context=CTX, record=RECORD, desired=STANDBY, prior=PRIMARY),
    )


def drain_by_hand(clients: GcpClients) -> dict[str, Any]:
    """What attempt 1 of ``drain`` submitted before it was lost: the heartbeat it recorded."""
    service = clients.backend_services.get(project=PROJECT, backend_service="checkout-backend")
    backends = []
    for backend in service.backends:
        copy = compute_v1.Backend(backend)
        if copy.group.endswith("/checkout-ew1"):
            copy.capacity_scaler = 0.0
        backends.append(copy)
    operation = clients.backend_services.patch_unary(
        request=compute_v1.PatchBackendServiceRequest(
            project=PROJECT,
            backend_service="checkout-backend",
            backend_service_resource=compute_v1.BackendService(backends=backends, fingerprint=service.fingerprint),
            request_id=str(uuid.uuid4()),
        )
    )
    return {"operation": OperationRef.of(operation).model_dump()}


def grow_by_hand(clients: GcpClients) -> dict[str, Any]:
    operation = clients.instance_group_managers.resize_unary(
        request=compute_v1.ResizeRegionInstanceGroupManagerRequest(
            project=PROJECT, region="us-central1", instance_group_manager="checkout-uc1", size=3,
            request_id=str(uuid.uuid4()),
        )
    )  # fmt: skip
    return {"operation": OperationRef.of(operation).model_dump()}


def shift_by_hand(clients: GcpClients) -> dict[str, Any]:
    zone = clients.dns_for(PROJECT).zone(RECORD.managed_zone)
    change = zone.changes()
    change.delete_record_set(zone.resource_record_set(RECORD.name, RECORD.type, PRIMARY.ttl, PRIMARY.rrdatas))
    change.add_record_set(zone.resource_record_set(RECORD.name, RECORD.type, STANDBY.ttl, STANDBY.rrdatas))
    change.create()
    return {"dns_change": {"zone": RECORD.managed_zone, "id": change.name}}


MUTATIONS = {"drain": (drain, drain_by_hand), "grow": (grow, grow_by_hand), "shift": (shift, shift_by_hand)}


@pytest.fixture
def slow_clients(slow_emulator: RunningEmulator) -> GcpClients:
    return GcpClients.create(slow_emulator.url)


@pytest.fixture
def clients(emulator: RunningEmulator) -> GcpClients:
    return GcpClients.create(emulator.url)


# --- Operations slower than the heartbeat timeout -------------------------------------


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_mutation_slower_than_the_heartbeat_timeout_heartbeats_throughout_and_reports_once_done(
    slow_emulator, slow_clients, mutation
):
    run, _ = MUTATIONS[mutation]
    env, beats = environment()

    started = time.monotonic()
    change = run(env, slow_clients)
    ended = time.monotonic()

    assert change.changed
    assert pending_work(slow_clients) == [], "it reported before the cloud was done"
    moments = [started, *beats.times, ended]
    longest_silence = max(b - a for a, b in zip(moments, moments[1:], strict=False))
    assert longest_silence < HEARTBEAT_TIMEOUT.total_seconds(), "Temporal would have timed the attempt out"
    assert any(isinstance(d, dict) and ({"operation", "dns_change"} & d.keys()) for d in beats.details), (
        "the submitted operation is in the heartbeat, for a retry to find"
    )


# --- A retry that finds its change already made ----------------------------------------


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded-in-heartbeat", "found-by-listing"])
@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_retry_that_finds_the_change_made_waits_for_the_operation_that_made_it(slow_emulator, slow_clients, mutation, recorded):
    """Attempt 1 submitted the change and was lost (its heartbeat timed out, say); attempt 2
    finds the resource as desired. It reports only once the earlier operation is DONE —
    found through attempt 1's last heartbeat, or, when that heartbeat never arrived, by
    looking for pending operations on the target."""
    run, by_hand = MUTATIONS[mutation]
    earlier = by_hand(slow_clients)
    assert pending_work(slow_clients), "attempt 1's operation is still pending"
    env, _ = environment(attempt=2, earlier=earlier if recorded else None)

    change = run(env, slow_clients)

    assert not change.changed  # found made, reported with the recorded before-state
    assert pending_work(slow_clients) == []
    assert len(mutations(slow_emulator)) == 1, "the retry submitted nothing"


def test_an_undo_that_finds_nothing_to_undo_waits_for_the_forward_change_still_in_flight(slow_emulator, slow_clients):
    """A first attempt, too: the resource reads as desired while an operation on it is pending."""
    drain_by_hand(slow_clients)
    env, _ = environment()
    change = drain(env, slow_clients)
    assert not change.changed
    assert pending_work(slow_clients) == []


# --- Cancellation -------------------------------------------------------------------


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_cancel_before_the_mutation_is_submitted_stops_it_with_nothing_changed(emulator, clients, mutation):
    run, _ = MUTATIONS[mutation]
    env, _ = environment()
    start = emulator.state()
    env.cancel()

    with pytest.raises(CancelledError):
        run(env, clients)

    assert mutations(emulator) == []
    assert emulator.state() == start


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_cancel_after_the_mutation_is_submitted_waits_for_it_to_be_done_and_reports_it(slow_emulator, slow_clients, mutation):
    """The workflow compensates right after: an undo racing a pending forward operation
    would read the old value and do nothing, then the forward change would land."""
    run, _ = MUTATIONS[mutation]
    env: ActivityEnvironment | None = None

    def cancel_once_submitted(_: Any) -> None:
        assert env is not None
        if mutations(slow_emulator):
            env.cancel()

    env, _ = environment(then=cancel_once_submitted)

    change = run(env, slow_clients)

    assert change.changed
    assert pending_work(slow_clients) == []


# --- Transient errors are absorbed in place ----------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
def test_a_burst_of_transient_errors_on_a_read_is_absorbed_in_place(emulator, clients, status):
    fault = emulator.add_fault(method="GET", path="*/backendServices/checkout-backend", status=status, count=3)
    env, _ = environment()
    traffic = TrafficActivities(Providers.of(clients))
    capacity = env.run(traffic.read_backend_capacity, ReadBackendCapacity(context=CTX, backend=BACKEND))
    assert capacity == BackendCapacity(capacity_scaler=1.0)
    assert emulator.admin.get("/emulator/v1/faults").json()["faults"][0]["struck"] == 3
    assert fault["id"]


def test_a_read_that_keeps_failing_gives_up_after_a_few_tries_as_a_retryable_failure(emulator, clients):
    emulator.add_fault(method="GET", path="*/backendServices/checkout-backend", status=503)
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(
            TrafficActivities(Providers.of(clients)).read_backend_capacity, ReadBackendCapacity(context=CTX, backend=BACKEND)
        )
    assert error.value.type == FailureType.CLOUD_TRANSIENT and not error.value.non_retryable
    assert isinstance(error.value.__cause__, Exception), "the client's error is kept as the cause"
    assert len(emulator.requests()) == 5


def test_a_refusal_is_not_called_again(emulator, clients):
    missing = GcpBackendRef(project=PROJECT, backend_service="no-such-backend", group=EW1)
    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(
            TrafficActivities(Providers.of(clients)).read_backend_capacity, ReadBackendCapacity(context=CTX, backend=missing)
        )
    assert error.value.type == FailureType.CLOUD_REFUSED and error.value.non_retryable
    assert len(emulator.requests()) == 1


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_mutation_rides_out_flaky_reads_of_its_resource_and_of_its_operation(emulator, clients, mutation):
    """Reads (resource, operation, DNS change) answer 503 half the time, four times in all
    (fewer than a read's tries): the step still succeeds, with one submission."""
    emulator.add_fault(method="GET", path="*", status=503, rate=0.5, seed=7, count=4)
    run, _ = MUTATIONS[mutation]
    env, _ = environment()
    assert run(env, clients).changed
    assert [r["effect"] for r in mutations(emulator)] == ["applied"]


def test_an_operation_that_ends_in_a_server_error_fails_the_attempt_with_the_operation_s_error(emulator, clients):
    """The emulator's failed operations carry httpErrorStatusCode 500: worth another attempt."""
    emulator.add_fault(method="PATCH", path="*/backendServices/*", operation="error", operationErrorCode="INTERNAL_ERROR")
    env, _ = environment()
    with pytest.raises(ApplicationError) as error:
        drain(env, clients)
    assert error.value.type == FailureType.CLOUD_TRANSIENT and not error.value.non_retryable
    assert "failed: INTERNAL_ERROR" in error.value.message


# --- Waiting for healthy backends ----------------------------------------------------


def wait_for(clients: GcpClients, env: ActivityEnvironment, backend: GcpBackendRef, min_healthy: int, seconds: float):
    return env.run(
        HealthActivities(Providers.of(clients)).wait_for_healthy_backends,
        WaitForHealthy(
            context=CTX,
            backend=backend,
            min_healthy=min_healthy,
            deadline=datetime.now(UTC) + timedelta(seconds=seconds),
            interval_seconds=0.2,
        ),
    )


def test_wait_for_healthy_backends_returns_once_the_new_instances_serve(emulator, clients):
    ActivityEnvironment().run(
        CapacityActivities(Providers.of(clients)).resize_group,
        ResizeGroup(context=CTX, group=UC1, desired=GroupSize(target_size=3), request_key="h/1"),
    )
    env, beats = environment()
    waited = wait_for(clients, env, UC1_BACKEND, 3, 60)
    assert waited.reached and waited.report == HealthReport(healthy=3, total=3)
    assert beats.details[-1]["polls"] == waited.polls


def test_wait_for_healthy_backends_reports_what_it_saw_when_the_deadline_passes(emulator, clients):
    emulator.outage("europe-west1")
    env, _ = environment()
    waited = wait_for(clients, env, BACKEND, 1, 1.0)
    assert not waited.reached
    assert waited.report == HealthReport(healthy=0, total=3)
    assert waited.polls > 1 and waited.last_error is None


def test_wait_for_healthy_backends_polls_through_transient_errors(emulator, clients):
    emulator.add_fault(method="POST", path="*/getHealth", status=503, count=3)
    env, _ = environment()
    waited = wait_for(clients, env, BACKEND, 3, 60)
    assert waited.reached and waited.polls == 4
    assert waited.last_error is not None and "503" in waited.last_error


def test_a_retried_wait_for_healthy_backends_continues_the_count(emulator, clients):
    earlier = {"polls": 7, "report": {"kind": "health", "healthy": 0, "total": 3}, "last_error": None}
    env, _ = environment(attempt=2, earlier=earlier)
    waited = wait_for(clients, env, BACKEND, 3, 60)
    assert waited.reached and waited.polls == 8


def test_wait_for_healthy_backends_raises_a_refusal_at_once(emulator, clients):
    missing = GcpBackendRef(project=PROJECT, backend_service="no-such-backend", group=EW1)
    env, _ = environment()
    with pytest.raises(ApplicationError) as error:
        wait_for(clients, env, missing, 1, 60)
    assert error.value.type == FailureType.CLOUD_REFUSED and error.value.non_retryable


def test_a_cancel_stops_wait_for_healthy_backends(emulator, clients):
    emulator.outage("europe-west1")
    env, _ = environment()
    env.cancel()
    with pytest.raises(CancelledError):
        wait_for(clients, env, BACKEND, 1, 60)
