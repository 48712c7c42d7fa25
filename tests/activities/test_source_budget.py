"""Calls to the region being left keep to its budget (``retries.source_deadline``), through the
real Google clients against the emulator: each call's timeout is cut to what is left of the
budget, 5xx bursts are ridden out until it is spent (not just five tries), an operation that
never finishes is given up at its end, and the reads that serve a run report what did not
answer instead of failing (a refusal still fails)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import budget
from activities.capacity import CapacityActivities
from activities.databases import DatabaseActivities
from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.step_reads import StepReadActivities
from activities.traffic import TrafficActivities
from evac.failures import FailureType
from evac.resources import (
    BackendCapacity,
    GcpBackendRef,
    GcpGroupRef,
    GroupSize,
    PreflightReads,
    ReadBeforeChange,
    ReadGroupSize,
    SetBackendCapacity,
    StepContext,
)
from providers.gcp.clients import GcpClients
from providers.registry import Providers

T = TypeVar("T")
PROJECT = "evac-demo"
CTX = StepContext(service="checkout", step="preflight")
EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="checkout-ew1")
UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="checkout-uc1")
GLOBAL_EW1 = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=EW1)
GLOBAL_UC1 = GcpBackendRef(project=PROJECT, backend_service="checkout-backend", group=UC1)
PAY_EW1 = GcpGroupRef(project=PROJECT, region="europe-west1", group="payments-ew1-b", zone="europe-west1-b")
PAY_UC1 = GcpGroupRef(project=PROJECT, region="us-central1", group="payments-uc1-a", zone="us-central1-a")
REGIONAL_EW1 = GcpBackendRef(project=PROJECT, backend_service="payments-ew1", scope="regional", group=PAY_EW1)
REGIONAL_UC1 = GcpBackendRef(project=PROJECT, backend_service="payments-uc1", scope="regional", group=PAY_UC1)
# A test that is not bounded by its budget would block on the emulator this long: it fails by
# this generous guard instead of hanging the suite.
GUARD_SECONDS = 120


def bounded(call: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=GUARD_SECONDS)


def reads_of(clients: GcpClients) -> StepReadActivities:
    providers = Providers.of(clients)
    traffic, capacity, dns, health = (TrafficActivities(providers), CapacityActivities(providers), DnsActivities(providers),
                                      HealthActivities(providers))  # fmt: skip
    return StepReadActivities(traffic, capacity, dns, health, DatabaseActivities(providers))


def test_a_hanging_region_costs_a_call_no_more_than_its_budget(emulator):
    emulator.add_fault(path="*europe-west1*", latency=3600)
    read = ReadGroupSize(context=CTX.model_copy(update={"budget_seconds": 1.5}), group=EW1)
    with pytest.raises(ApplicationError) as failed:
        capacity = CapacityActivities(Providers.of(GcpClients.create(emulator.url)))
        bounded(lambda: ActivityEnvironment().run(capacity.read_group_size, read))
    assert failed.value.type == FailureType.CLOUD_UNREACHABLE.value
    # The client was told to give up within the budget, not after the usual 30 s.
    timeouts = [float(t) for t in re.findall(r"read timeout=([0-9.]+)", failed.value.message)]
    assert timeouts and max(timeouts) <= 1.5


def test_under_a_budget_a_5xx_burst_longer_than_five_tries_is_ridden_out(emulator):
    emulator.add_fault(path="*/instanceGroupManagers/checkout-ew1", status=503, count=7)
    capacity = CapacityActivities(Providers.of(GcpClients.create(emulator.url)))
    env = ActivityEnvironment()
    # Without a budget: five tries, then the step's own retry (Temporal's) would take over.
    with pytest.raises(ApplicationError) as failed:
        env.run(capacity.read_group_size, ReadGroupSize(context=CTX, group=EW1))
    assert failed.value.type == FailureType.CLOUD_TRANSIENT.value
    # With one: repeated in place until it answers (two more 503s, then the read).
    read = ReadGroupSize(context=CTX.model_copy(update={"budget_seconds": 30}), group=EW1)
    assert bounded(lambda: env.run(capacity.read_group_size, read)) == GroupSize(target_size=3)


def test_preflight_reports_the_dead_sources_own_resources_and_reads_the_rest(emulator):
    emulator.outage("europe-west1", api_errors=True)
    request = PreflightReads(
        context=CTX,
        backends=[GLOBAL_EW1, GLOBAL_UC1],
        groups=[EW1, UC1],
        source_region="europe-west1",
        source_budget_seconds=2,
    )
    readings = bounded(lambda: ActivityEnvironment().run(reads_of(GcpClients.create(emulator.url)).preflight_reads, request))
    # The global backend service answers for both regions' backends; only the group is the source's own.
    assert readings.backends == [BackendCapacity(capacity_scaler=1.0), BackendCapacity(capacity_scaler=1.0)]
    assert readings.groups == [None, GroupSize(target_size=1)]
    [why] = readings.unreachable
    assert why.startswith("read instance group europe-west1/checkout-ew1: HTTP 503")


def test_preflight_still_fails_on_a_refusal_from_the_source(emulator):
    missing = GcpGroupRef(project=PROJECT, region="europe-west1", group="no-such-group")
    request = PreflightReads(context=CTX, groups=[missing, UC1], source_region="europe-west1", source_budget_seconds=2)
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(reads_of(GcpClients.create(emulator.url)).preflight_reads, request)
    assert failed.value.type == FailureType.CLOUD_REFUSED.value


def test_a_step_whose_source_before_state_does_not_answer_gets_the_guard_and_the_reason(regional_emulator):
    regional_emulator.outage("europe-west1", api_errors=True)
    read = ReadBeforeChange(context=CTX, guard=REGIONAL_UC1, min_healthy=1, backend=REGIONAL_EW1, resource_budget_seconds=2)
    reads = reads_of(GcpClients.create(regional_emulator.url))
    result = bounded(lambda: ActivityEnvironment().run(reads.read_before_change, read))
    assert result.health is not None and result.health.healthy == 1
    assert result.before is None
    assert result.unreachable is not None and "regional backend service europe-west1/payments-ew1" in result.unreachable


def test_a_change_the_source_never_finishes_is_given_up_at_the_end_of_its_budget(regional_emulator):
    regional_emulator.add_fault(path="*/regions/europe-west1/backendServices/payments-ew1", operation="never_done")
    change = SetBackendCapacity(
        context=StepContext(service="payments", step="drain", budget_seconds=2),
        backend=REGIONAL_EW1,
        desired=BackendCapacity(capacity_scaler=0.5),
        request_key="budget/1",
    )
    traffic = TrafficActivities(Providers.of(GcpClients.create(regional_emulator.url)))
    with pytest.raises(ApplicationError) as failed:
        bounded(lambda: ActivityEnvironment().run(traffic.set_backend_capacity, change))
    assert failed.value.type == FailureType.CLOUD_UNREACHABLE.value
    assert "not DONE within the time a failover waits on the region it leaves" in failed.value.message


def test_a_call_timeout_is_the_usual_one_outside_a_budget_and_never_zero_inside():
    assert budget.call_timeout() == budget.CALL_TIMEOUT_SECONDS
    with budget.within(0):
        assert budget.spent() and budget.call_timeout() == budget.MIN_CALL_TIMEOUT_SECONDS
    with budget.within(10):
        assert 0 < budget.call_timeout() <= 10
        with budget.within(None):  # no budget of its own: the enclosing one holds
            assert budget.call_timeout() <= 10
    assert budget.left() is None
