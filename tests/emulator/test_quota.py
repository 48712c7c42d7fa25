"""The project's write quota and the added call latency, seen through the real clients:
writes over a limit answer 429 ``rateLimitExceeded`` in Google's shape and change nothing,
reads are never limited, the request log proves no second had more accepted writes than
the quota, and Evac's activities treat the 429 as transient."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import compute_v1
from google.cloud import dns as cloud_dns  # type: ignore[attr-defined]
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.traffic import TrafficActivities
from emulator.testing import ComputeClients, RunningEmulator, dns_client, running_emulator
from evac.failures import FailureType
from evac.resources import BackendCapacity, GcpBackendRef, GcpGroupRef, ReadBackendCapacity, SetBackendCapacity, StepContext
from evac.topology import Topology
from providers.gcp.clients import GcpClients
from providers.registry import Providers

# No warm-up: a new instance serves as soon as its resize is done, so a snapshot taken after it
# does not change while the test goes on.
FAST = {"operation_delay": 0.05, "warmup": 0.0, "wait_deadline": 0.5}
EW1_GROUP_URL = "https://www.googleapis.com/compute/v1/projects/evac-demo/regions/europe-west1/instanceGroups/checkout-ew1"
RESIZE_PATH = "/compute/v1/projects/evac-demo/regions/us-central1/instanceGroupManagers/checkout-uc1/resize"


@pytest.fixture(scope="module")
def shared_quota_emulator(demo_topology: Topology) -> Iterator[RunningEmulator]:
    """An emulator of its own, started with a write quota of 2 per second and 4 per minute."""
    with running_emulator(demo_topology, write_quota_per_second=2, write_quota_per_minute=4, **FAST) as running:
        yield running


@pytest.fixture
def limited(shared_quota_emulator: RunningEmulator) -> RunningEmulator:
    shared_quota_emulator.reset()
    return shared_quota_emulator


@pytest.fixture(scope="module")
def limited_compute(shared_quota_emulator: RunningEmulator) -> ComputeClients:
    return ComputeClients.connect(shared_quota_emulator.url, shared_quota_emulator.project)


@pytest.fixture(scope="module")
def limited_dns(shared_quota_emulator: RunningEmulator) -> cloud_dns.Client:
    return dns_client(shared_quota_emulator.url, shared_quota_emulator.project)


def _resize(compute: ComputeClients, size: int) -> str:
    name: str = compute.region_groups.resize(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", size=size
    ).name
    return name


def _target_size(compute: ComputeClients) -> int:
    return compute.region_groups.get(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1"
    ).target_size


def _writes(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["effect"] is not None]


def test_a_write_over_the_per_second_quota_is_refused_with_google_s_429(
    limited: RunningEmulator, limited_compute: ComputeClients
) -> None:
    limited.set_quota(writes_per_second=1)
    _resize(limited_compute, 2)

    with pytest.raises(exceptions.TooManyRequests) as refused:
        _resize(limited_compute, 3)  # in the same second: the 1-second window is full

    assert refused.value.code == 429
    assert "Write requests per second" in refused.value.message and "the limit is 1 per second" in refused.value.message
    assert [e["reason"] for e in refused.value.errors] == ["rateLimitExceeded"]
    assert _target_size(limited_compute) == 2, "the refused resize changed nothing"


def test_a_write_over_the_per_minute_quota_answers_google_s_body(
    limited: RunningEmulator, limited_compute: ComputeClients
) -> None:
    limited.set_quota(writes_per_minute=2)
    for size in (2, 3):
        _resize(limited_compute, size)

    answer = limited.admin.post(RESIZE_PATH, params={"size": 5})

    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["errors"][0]["reason"] == "rateLimitExceeded"
    assert error["message"].startswith("Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute'")
    assert "the limit is 2 per minute" in error["message"]
    assert _target_size(limited_compute) == 3


def test_a_refused_write_changes_nothing_and_is_not_counted(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_quota(writes_per_minute=1)
    limited_compute.wait(_resize(limited_compute, 2), region="us-central1")
    before = limited.state()

    for size in (5, 6, 7):
        with pytest.raises(exceptions.TooManyRequests):
            _resize(limited_compute, size)

    assert limited.state() == before
    assert [(w["status"], w["effect"]) for w in _writes(limited)] == [(200, "applied")] + [
        (429, "refused: 429 rateLimitExceeded")
    ] * 3
    quota = limited.quota()
    assert (quota["accepted"], quota["refused"], quota["acceptedLastMinute"]) == (1, 3, 1)


def test_dns_changes_count_as_writes(
    limited: RunningEmulator, limited_compute: ComputeClients, limited_dns: cloud_dns.Client
) -> None:
    limited.set_quota(writes_per_minute=1)
    _resize(limited_compute, 2)
    zone = limited_dns.zone("shop-zone", "shop.example.com.")
    change = zone.changes()
    old = zone.resource_record_set("checkout.shop.example.com.", "A", 300, ["203.0.113.10"])
    change.delete_record_set(old)
    change.add_record_set(zone.resource_record_set("checkout.shop.example.com.", "A", 60, ["198.51.100.10"]))

    with pytest.raises(exceptions.TooManyRequests):
        change.create()

    records = {(r.name, r.record_type): r.rrdatas for r in zone.list_resource_record_sets()}
    assert records[("checkout.shop.example.com.", "A")] == ["203.0.113.10"]


def test_reads_are_never_limited(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_quota(writes_per_second=1, writes_per_minute=1)
    _resize(limited_compute, 2)
    with pytest.raises(exceptions.TooManyRequests):
        _resize(limited_compute, 3)

    sizes = [_target_size(limited_compute) for _ in range(10)]
    health = limited_compute.backend_services.get_health(
        project=limited.project,
        backend_service="checkout-backend",
        resource_group_reference_resource=compute_v1.ResourceGroupReference(group=EW1_GROUP_URL),
    )

    assert sizes == [2] * 10
    assert health.health_status
    assert all(r["status"] == 200 for r in limited.requests() if r["effect"] is None)


def test_no_second_of_the_request_log_holds_more_accepted_writes_than_the_quota(
    limited: RunningEmulator, limited_compute: ComputeClients
) -> None:
    limited.set_quota(writes_per_second=3)

    def write(size: int) -> int:
        return limited.admin.post(RESIZE_PATH, params={"size": size % 4 + 1}).status_code

    started = time.monotonic()
    statuses: list[int] = []
    with ThreadPoolExecutor(max_workers=6) as pool:
        while time.monotonic() - started < 2.5:  # a flood over at least two whole seconds
            statuses += pool.map(write, range(12))

    writes = _writes(limited)
    accepted_per_second = Counter(w["time"][:19] for w in writes if w["status"] == 200)
    assert 429 in statuses and 200 in statuses
    assert {w["status"] for w in writes} == {200, 429}
    assert max(accepted_per_second.values()) <= 3
    assert all(w["effect"] == "refused: 429 rateLimitExceeded" for w in writes if w["status"] == 429)
    assert limited.quota()["accepted"] == sum(accepted_per_second.values())


def test_the_admin_api_sets_shows_and_clears_the_quota(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    started_with = limited.quota()
    assert (started_with["writesPerSecond"], started_with["writesPerMinute"]) == (2, 4)

    snake = limited.admin.put("/emulator/v1/quota", json={"writes_per_second": 20, "writes_per_minute": 600}).json()
    assert (snake["writesPerSecond"], snake["writesPerMinute"]) == (20, 600)
    _resize(limited_compute, 2)
    shown = limited.quota()
    assert (shown["acceptedLastSecond"], shown["acceptedLastMinute"], shown["accepted"]) == (1, 1, 1)

    cleared = limited.admin.put("/emulator/v1/quota", json={"writesPerSecond": None, "writesPerMinute": 600}).json()
    assert (cleared["writesPerSecond"], cleared["writesPerMinute"]) == (None, 600)
    removed = limited.admin.delete("/emulator/v1/quota").json()
    assert (removed["writesPerSecond"], removed["writesPerMinute"]) == (None, None)
    for size in range(2, 8):  # more than the quota the emulator started with
        _resize(limited_compute, size)
    assert _target_size(limited_compute) == 7

    limited.reset()
    assert limited.quota() | {"acceptedLastSecond": 0} == {
        "writesPerSecond": 2,
        "writesPerMinute": 4,
        "acceptedLastSecond": 0,
        "acceptedLastMinute": 0,
        "accepted": 0,
        "refused": 0,
    }


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"writesPerSecond": 0}, "writesPerSecond"),
        ({"writesPerMinute": "many"}, "writesPerMinute"),
        ({"writesPerHour": 5}, "writesPerHour"),
    ],
)
def test_a_bad_quota_is_refused_naming_the_field(limited: RunningEmulator, body: dict[str, Any], named: str) -> None:
    answer = limited.admin.put("/emulator/v1/quota", json=body)

    assert answer.status_code == 400
    assert named in answer.json()["error"]["message"]
    assert limited.quota()["writesPerSecond"] == 2, "a refused change leaves the quota as it was"


def test_without_a_quota_writes_are_not_limited(emulator: RunningEmulator, compute: ComputeClients) -> None:
    for size in range(2, 12):
        _resize(compute, size)

    quota = emulator.quota()
    assert (quota["writesPerSecond"], quota["writesPerMinute"], quota["refused"]) == (None, None, 0)
    assert _target_size(compute) == 11


# --- Latency ----------------------------------------------------------------------------


def _timed(call: Any) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_call_latency_set_at_start_delays_every_api_call(demo_topology: Topology) -> None:
    with running_emulator(demo_topology, call_latency=0.2, **FAST) as slow:
        compute = ComputeClients.connect(slow.url, slow.project)
        assert _timed(lambda: _target_size(compute)) >= 0.2
        assert _timed(lambda: _resize(compute, 2)) >= 0.2
        assert slow.admin.get("/emulator/v1/latency").json() == {"readSeconds": 0.2, "writeSeconds": 0.2}


def test_call_latency_set_through_the_admin_api_per_kind(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    assert limited.set_latency(seconds=0.15) == {"readSeconds": 0.15, "writeSeconds": 0.15}
    assert _timed(lambda: _target_size(limited_compute)) >= 0.15

    assert limited.set_latency(writeSeconds=0.3) == {"readSeconds": 0.0, "writeSeconds": 0.3}
    assert _timed(lambda: _resize(limited_compute, 2)) >= 0.3

    refused = limited.admin.put("/emulator/v1/latency", json={"seconds": 0.1, "readSeconds": 0.2})
    assert refused.status_code == 400 and "not both" in refused.json()["error"]["message"]
    limited.reset()
    assert limited.admin.get("/emulator/v1/latency").json() == {"readSeconds": 0.0, "writeSeconds": 0.0}


def test_call_latency_does_not_hold_up_other_calls(limited: RunningEmulator) -> None:
    """A call sleeping out its latency in the emulator does not hold up the others: an admin
    call is answered while the slow read is known (from the emulator's own log) to be inside."""
    latency = 3.0
    limited.set_latency(readSeconds=latency)
    path = "/compute/v1/projects/evac-demo/global/backendServices/checkout-backend"

    def slow_read() -> None:
        with httpx.Client(base_url=limited.url, timeout=10) as client:
            client.get(path).raise_for_status()

    reader = threading.Thread(target=slow_read)
    reader.start()
    answered: list[float] = []  # when each admin call was answered, while the read was out
    while reader.is_alive():
        limited.admin.get("/emulator/v1/healthz").raise_for_status()
        answered.append(time.time())
        time.sleep(0.05)
    reader.join()

    [read] = [r for r in limited.requests() if r["path"] == path]
    # The log stamps a call when the emulator takes it in, after its latency.
    taken_in = datetime.fromisoformat(read["time"]).timestamp()
    arrived = taken_in - latency
    inside = [at for at in answered if arrived + 0.1 < at < taken_in - 0.1]
    assert len(inside) >= 5, (arrived, taken_in, answered)


# --- Evac's activities under the quota --------------------------------------------------

CTX = StepContext(service="checkout", step="test")
EW1 = GcpGroupRef(project="evac-demo", region="europe-west1", group="checkout-ew1")
BACKEND = GcpBackendRef(project="evac-demo", backend_service="checkout-backend", group=EW1)


def test_evac_s_activities_treat_the_429_as_transient(limited: RunningEmulator, limited_compute: ComputeClients) -> None:
    limited.set_quota(writes_per_minute=1)
    _resize(limited_compute, 2)  # the minute's one write
    clients = GcpClients.create(limited.url)
    drain = SetBackendCapacity(
        context=CTX,
        backend=BACKEND,
        desired=BackendCapacity(capacity_scaler=0.0),
        prior=BackendCapacity(capacity_scaler=1.0),
        request_key="quota/drain",
    )

    with pytest.raises(ApplicationError) as error:
        ActivityEnvironment().run(TrafficActivities(Providers.of(clients)).set_backend_capacity, drain)

    assert error.value.type == FailureType.CLOUD_TRANSIENT and not error.value.non_retryable, "Temporal retries it"
    assert isinstance(error.value.__cause__, exceptions.TooManyRequests)
    read = ReadBackendCapacity(context=CTX, backend=BACKEND)
    assert ActivityEnvironment().run(TrafficActivities(Providers.of(clients)).read_backend_capacity, read) == BackendCapacity(
        capacity_scaler=1.0
    )

    limited.set_quota(writes_per_minute=2)  # as when the minute has passed: the retried attempt gets through
    ActivityEnvironment().run(TrafficActivities(Providers.of(clients)).set_backend_capacity, drain)
    assert ActivityEnvironment().run(TrafficActivities(Providers.of(clients)).read_backend_capacity, read) == BackendCapacity(
        capacity_scaler=0.0
    )
