"""What monitoring sees: the probe per service and region, and /metrics in Prometheus's text
format (parsed with prometheus_client's own parser), following drains, outages, warm-ups and
DNS. The counters are checked on an emulator whose clock the test moves, so every count is exact."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from emulator.testing import RunningEmulator, running_emulator
from evac.topology import Topology

PROJECT = "/compute/v1/projects/evac-demo"
UC1_GROUP = "https://www.googleapis.com/compute/v1/projects/evac-demo/regions/us-central1/instanceGroups/checkout-uc1"
EW1_GROUP = "https://www.googleapis.com/compute/v1/projects/evac-demo/regions/europe-west1/instanceGroups/checkout-ew1"

Samples = dict[tuple[str, str, str], float]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


class Metered:
    """An emulator on a clock the test moves."""

    def __init__(self, client: httpx.Client, clock: Clock):
        self.client = client
        self.clock = clock

    def metrics(self) -> Samples:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return samples(response.text)

    def post(self, path: str, **json: object) -> None:
        self.client.post(path, json=json or None).raise_for_status()


def samples(text: str) -> Samples:
    """Every sample of a metrics page, keyed by (name, service, region)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("service", ""), sample.labels["region"])] = sample.value
    return found


def _metered(topology: Topology, warmup: float = 2.0) -> Iterator[Metered]:
    clock = Clock()
    with running_emulator(topology, operation_delay=1.0, warmup=warmup, clock=clock) as running:
        yield Metered(running.admin, clock)


@pytest.fixture
def metered(demo_topology: Topology) -> Iterator[Metered]:
    yield from _metered(demo_topology)


@pytest.fixture
def metered_regional(regional_topology: Topology) -> Iterator[Metered]:
    yield from _metered(regional_topology)


def _drain_europe(metered: Metered) -> None:
    backends = [
        {"group": EW1_GROUP, "balancingMode": "UTILIZATION", "capacityScaler": 0.0},
        {"group": UC1_GROUP, "balancingMode": "UTILIZATION", "capacityScaler": 1.0},
    ]
    metered.client.patch(f"{PROJECT}/global/backendServices/checkout-backend", json={"backends": backends}).raise_for_status()


def test_metrics_describe_every_service_and_region_with_prometheus_types(metered: Metered) -> None:
    families = {f.name: f for f in text_string_to_metric_families(metered.client.get("/metrics").text)}

    assert {name: f.type for name, f in families.items()} == {
        "evac_emulator_backends": "gauge",
        "evac_emulator_healthy_backends": "gauge",
        "evac_emulator_capacity_scaler": "gauge",
        "evac_emulator_traffic_share": "gauge",
        "evac_emulator_requests": "counter",
        "evac_emulator_errors": "counter",
        "evac_emulator_region_outage": "gauge",
    }
    found = metered.metrics()
    assert found[("evac_emulator_healthy_backends", "checkout", "europe-west1")] == 3
    assert found[("evac_emulator_healthy_backends", "checkout", "us-central1")] == 1
    assert found[("evac_emulator_traffic_share", "catalog", "europe-west1")] == 0.75
    assert found[("evac_emulator_region_outage", "", "us-central1")] == 0
    assert {service for _, service, _ in found} == {"checkout", "catalog", ""}


def test_requests_follow_the_traffic_split_and_nothing_fails_while_a_region_serves(metered: Metered) -> None:
    metered.clock.tick(10)
    found = metered.metrics()

    assert found[("evac_emulator_requests_total", "checkout", "europe-west1")] == 75
    assert found[("evac_emulator_requests_total", "checkout", "us-central1")] == 25

    metered.post("/emulator/v1/regions/us-central1/outage")
    metered.clock.tick(10)
    found = metered.metrics()

    assert found[("evac_emulator_requests_total", "checkout", "europe-west1")] == 175, "europe-west1 takes it all"
    assert found[("evac_emulator_requests_total", "checkout", "us-central1")] == 25
    assert found[("evac_emulator_traffic_share", "checkout", "us-central1")] == 0
    assert found[("evac_emulator_region_outage", "", "us-central1")] == 1
    assert {v for (name, _, _), v in found.items() if name == "evac_emulator_errors_total"} == {0}


def test_an_outage_in_the_region_that_serves_everything_turns_its_requests_into_errors(metered: Metered) -> None:
    _drain_europe(metered)
    metered.clock.tick(5)
    failed_over = metered.metrics()
    assert failed_over[("evac_emulator_traffic_share", "checkout", "us-central1")] == 1
    assert failed_over[("evac_emulator_capacity_scaler", "checkout", "europe-west1")] == 0

    metered.post("/emulator/v1/regions/us-central1/outage")
    metered.clock.tick(5)
    found = metered.metrics()

    def grew(name: str, service: str, region: str) -> float:
        return found[(name, service, region)] - failed_over[(name, service, region)]

    assert grew("evac_emulator_errors_total", "checkout", "us-central1") == 50
    assert grew("evac_emulator_requests_total", "checkout", "us-central1") == 50
    assert grew("evac_emulator_requests_total", "checkout", "europe-west1") == 0, "drained: the balancer sends it nothing"
    assert found[("evac_emulator_healthy_backends", "checkout", "us-central1")] == 0
    assert found[("evac_emulator_traffic_share", "checkout", "us-central1")] == 0
    assert grew("evac_emulator_errors_total", "catalog", "europe-west1") == 0, "catalog still serves from europe-west1"

    metered.post("/emulator/v1/regions/us-central1/recover")
    metered.clock.tick(5)
    recovered = metered.metrics()
    assert (
        recovered[("evac_emulator_errors_total", "checkout", "us-central1")]
        == found[("evac_emulator_errors_total", "checkout", "us-central1")]
    )


def test_instances_count_from_the_moment_they_finish_warming_up(metered: Metered) -> None:
    before = metered.metrics()
    metered.post(f"{PROJECT}/regions/us-central1/instanceGroupManagers/checkout-uc1/resize?size=3")
    metered.clock.tick(4)  # 2 s warming (3 : 1), then 2 s of 3 : 3
    found = metered.metrics()

    def grew(region: str) -> float:
        key = ("evac_emulator_requests_total", "checkout", region)
        return found[key] - before[key]

    assert (grew("europe-west1"), grew("us-central1")) == (25, 15)
    assert found[("evac_emulator_backends", "checkout", "us-central1")] == 3
    assert found[("evac_emulator_traffic_share", "checkout", "us-central1")] == 0.5


def test_counters_keep_counting_across_a_reset(metered: Metered) -> None:
    metered.clock.tick(10)
    metered.post("/emulator/v1/reset")
    metered.clock.tick(10)

    assert metered.metrics()[("evac_emulator_requests_total", "checkout", "europe-west1")] == 150


def test_with_regional_load_balancers_dns_decides_which_region_gets_the_requests(metered_regional: Metered) -> None:
    metered_regional.post("/emulator/v1/regions/europe-west1/outage")
    metered_regional.clock.tick(10)
    found = metered_regional.metrics()

    # DNS still names europe-west1: its regional load balancer has no healthy backend left.
    assert found[("evac_emulator_errors_total", "payments", "europe-west1")] == 100
    assert found[("evac_emulator_requests_total", "payments", "us-central1")] == 0

    change = {
        "additions": [{"name": "api.pay.example.com.", "type": "A", "ttl": 300, "rrdatas": ["198.51.100.50"]}],
        "deletions": [{"name": "api.pay.example.com.", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.50"]}],
    }
    metered_regional.client.post("/dns/v1/projects/evac-demo/managedZones/pay-zone/changes", json=change).raise_for_status()
    metered_regional.clock.tick(10)  # the change is done after 1 s: 1 s more of errors, then us-central1 serves
    found = metered_regional.metrics()

    assert found[("evac_emulator_errors_total", "payments", "europe-west1")] == 110
    assert found[("evac_emulator_requests_total", "payments", "us-central1")] == 90
    assert found[("evac_emulator_traffic_share", "payments", "us-central1")] == 1


def test_the_traffic_share_is_the_traffic_endpoints(emulator: RunningEmulator) -> None:
    emulator.outage("europe-west1")
    emulator.admin.post(f"{PROJECT}/regions/us-central1/instanceGroupManagers/checkout-uc1/resize?size=2").raise_for_status()
    traffic = emulator.admin.get("/emulator/v1/traffic/checkout-backend").json()["regions"]
    found = samples(emulator.admin.get("/metrics").text)

    for region, entry in traffic.items():
        assert found[("evac_emulator_traffic_share", "checkout", region)] == entry["share"]
        assert found[("evac_emulator_healthy_backends", "checkout", region)] == entry["healthyInstances"]


def test_the_probe_answers_200_while_the_region_serves_and_503_during_its_outage(emulator: RunningEmulator) -> None:
    url = "/emulator/v1/probe/checkout/us-central1"
    serving = emulator.admin.get(url)
    assert serving.status_code == 200
    assert serving.json() == {
        "service": "checkout",
        "region": "us-central1",
        "serving": True,
        "healthyBackends": 1,
        "backends": 1,
    }

    emulator.outage("us-central1")
    down = emulator.admin.get(url)
    assert down.status_code == 503 and down.json()["serving"] is False
    assert emulator.admin.get("/emulator/v1/probe/checkout/europe-west1").status_code == 200, "only the region in outage fails"

    emulator.recover("us-central1")
    assert emulator.admin.get(url).status_code == 200


def test_the_probe_of_an_unknown_service_or_region_is_a_404_in_one_sentence(emulator: RunningEmulator) -> None:
    unknown_service = emulator.admin.get("/emulator/v1/probe/billing/us-central1")
    unknown_region = emulator.admin.get("/emulator/v1/probe/checkout/asia-east1")

    assert unknown_service.status_code == 404
    assert unknown_service.json()["error"]["message"] == "There is no service 'billing' in this emulator's topology."
    assert unknown_region.status_code == 404
    assert (
        unknown_region.json()["error"]["message"]
        == "Service 'checkout' has no region 'asia-east1' (it has: europe-west1, us-central1)."
    )
