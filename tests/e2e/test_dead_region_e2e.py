"""Failing over out of a region that is really gone (issue 18), as a user runs it: dev server,
emulator, worker and the evac CLI, with europe-west1's own API answering 503 to every call or
hanging. The runs wait at most ``retries.source_deadline`` on what only europe-west1's API
serves, record it as not read (ungraceful), skip and owe a change only it could make, and fail
over through the global APIs and the target's.

Each run out of a dead source spends its source budget (30 s by default) first; the figure a
user cares about, the time from a run's start to DNS pointing at the target, is printed (run
with -s), never asserted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO, REGIONAL
from tests.e2e.conftest import E2E, dead_api, record, scaler, stop_emulator_at_once, world_stack

pytestmark = pytest.mark.e2e

SOURCE, TARGET = "europe-west1", "us-central1"
DEMO_SERVICES = ("checkout", "catalog")
# Each demo service's backend service, its group in the source, its record and the target's address.
DEMO_WORLD = {
    "checkout": ("checkout-backend", "checkout-ew1", "checkout.shop.example.com.", "198.51.100.10"),
    "catalog": ("catalog-backend", "catalog-ew1", "catalog.shop.example.com.", "198.51.100.20"),
}
PAYMENTS_RECORD, PAYMENTS_TARGET_ADDRESS = "api.pay.example.com.", "198.51.100.50"
# How calls about the source region's own resources look: regional ones, and zonal ones in its zones.
SOURCE_PATHS = (f"/regions/{SOURCE}/", f"/zones/{SOURCE}-")


def seconds_to_dns(run: dict[str, Any]) -> float:
    """From the run's start to the end of its DNS step: when clients began to be sent to the target."""
    [dns] = [step for step in run["steps"] if step["kind"] == "shift_dns"]
    return (datetime.fromisoformat(dns["ended_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()


def source_calls(e2e: E2E) -> list[dict[str, Any]]:
    """The calls the emulator took about europe-west1's own resources."""
    return [r for r in e2e.requests() if any(part in r["path"] for part in SOURCE_PATHS)]


def with_source_deadline(plan: Path, topology: Path, folder: Path, deadline: str) -> Path:
    """A copy of ``plan`` beside a copy of its topology, waiting at most ``deadline`` on the source."""
    (folder / "topology.yaml").write_text(topology.read_text())
    copy = folder / plan.name
    copy.write_text(plan.read_text() + f"\nretries:\n  source_deadline: {deadline}\n")
    return copy


def assert_demo_failed_over_without_the_source(e2e: E2E, what: str) -> None:
    """Both demo services failed over (their record via `evac status`), each run ungraceful for
    want of europe-west1's API, nothing of them skipped or owed; the world: europe-west1 drained
    and DNS at us-central1. Prints each run's time to DNS."""
    runs = {service: e2e.evac_json("status", service) for service in DEMO_SERVICES}
    state = e2e.state()
    for service, (backend_service, group, name, address) in DEMO_WORLD.items():
        run = runs[service]
        assert run["status"] == "succeeded", run["error"]
        # Why it went on: europe-west1's own instance group, read through europe-west1's API.
        assert run.get("ungraceful"), run
        assert all(SOURCE in cause for cause in run["ungraceful"]), run["ungraceful"]
        assert any(f"instance group {SOURCE}/{group}" in cause for cause in run["ungraceful"]), run["ungraceful"]
        assert run["preflight"].endswith(f"1 of {SOURCE}'s own not read (ungraceful)"), run["preflight"]
        # The drains go through the global backend service's API: made, nothing owed.
        assert [s["status"] for s in run["steps"]] == ["succeeded"] * len(run["steps"])
        assert not any(s.get("owed") for s in run["steps"])
        assert scaler(state, backend_service, group) == 0.0, service
        assert record(state, name) == [address], service
        print(f"\n{what}: {service} from start to DNS at {TARGET} in {seconds_to_dns(run):.1f}s")


def test_the_demo_failover_goes_on_while_the_source_api_answers_503_to_every_call(e2e: E2E):
    with dead_api(e2e, SOURCE):
        result = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e: europe-west1 API gone")
        refused = [r for r in source_calls(e2e) if r["status"] == 503]

    assert result.returncode == 0, result.stderr + result.stdout
    assert_demo_failed_over_without_the_source(e2e, "europe-west1 answering 503")
    # The screen says so, once per service, and names the region.
    assert result.stdout.count(f"UNGRACEFUL: went on without {SOURCE}'s API") == len(DEMO_SERVICES), result.stdout
    assert refused, "europe-west1's API was asked and answered 503"


@pytest.fixture
def hanging_stack(tmp_path: Path) -> Iterator[E2E]:
    """A stack of the test's own. The calls to europe-west1 it makes hang in the emulator for
    300 s, well past the test: on a shared stack they would be answered and logged minutes later,
    in another test's request log. Its emulator is stopped at once, not waited for."""
    with world_stack(tmp_path, "evac-e2e-hanging") as e2e:
        try:
            yield e2e
        finally:
            stop_emulator_at_once(e2e)


def test_the_demo_failover_goes_on_while_every_call_to_the_source_hangs(hanging_stack: E2E):
    e2e = hanging_stack
    fault = e2e.admin.post("/emulator/v1/faults", json={"path": f"*{SOURCE}*", "latency": 300}).raise_for_status().json()
    try:
        result = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e: europe-west1 API hangs")
        [struck] = [f["struck"] for f in e2e.admin.get("/emulator/v1/faults").json()["faults"] if f["id"] == fault["id"]]
    finally:
        e2e.admin.delete("/emulator/v1/faults").raise_for_status()

    assert result.returncode == 0, result.stderr + result.stdout
    assert_demo_failed_over_without_the_source(e2e, "europe-west1 hanging")
    assert result.stdout.count(f"UNGRACEFUL: went on without {SOURCE}'s API") == len(DEMO_SERVICES), result.stdout
    assert struck >= len(DEMO_SERVICES), "each run's call to europe-west1 hung"


def test_a_regional_load_balancer_fails_over_by_dns_while_the_source_api_is_dead(e2e: E2E, tmp_path: Path):
    # Before an incident, `evac plan check` says what needs only europe-west1's API.
    check = e2e.evac("plan", "check", str(REGIONAL / "failover.yaml"))
    assert check.returncode == 0, check.stderr
    assert "payments: depends on: global, us-central1; source-only: " in check.stdout, check.stdout
    assert f"regional backend service {SOURCE}/payments-ew1" in check.stdout
    assert f"instance group {SOURCE}-b/payments-ew1-b" in check.stdout
    # The real plan, waiting at most 10 s on the dead region instead of 30 s.
    plan = with_source_deadline(REGIONAL / "failover.yaml", REGIONAL / "topology.yaml", tmp_path, "10s")

    with dead_api(e2e, SOURCE):
        result = e2e.evac("failover", "--plan", str(plan), "--reason", "e2e: europe-west1 API gone", "--output", "json")

    assert result.returncode == 0, result.stderr + result.stdout
    [run] = json.loads(result.stdout)
    assert run["status"] == "succeeded", run["error"]
    # Neither of europe-west1's own resources (its regional backend service, its zonal group) was read.
    unread = " ".join(run.get("ungraceful", []))
    assert f"regional backend service {SOURCE}/payments-ew1" in unread and f"{SOURCE}-b/payments-ew1-b" in unread, unread
    state = e2e.state()
    assert record(state, PAYMENTS_RECORD, zone="pay-zone") == [PAYMENTS_TARGET_ADDRESS]
    assert state["instanceGroupManagers"]["us-central1-a/payments-uc1-a"]["targetSize"] == 3
    print(f"\nregional, europe-west1 answering 503: payments from start to DNS at {TARGET} in {seconds_to_dns(run):.1f}s")


def test_an_evacuation_leaves_a_region_whose_api_is_dead(e2e: E2E):
    topology = str(e2e.stack.config.topology)  # checkout and catalog (global), payments (regional)
    with dead_api(e2e, SOURCE):
        result = e2e.evac("evacuate", "--region", SOURCE, "--to", TARGET, "--topology", topology, "--reason", "e2e: region gone")

    assert result.returncode == 0, result.stderr + result.stdout
    evacuation = e2e.evac_json("status", f"evacuation/{SOURCE}")
    assert evacuation["status"] == "succeeded"
    services = {s["service"]: s for s in evacuation["services"]}
    assert {name: s["status"] for name, s in services.items()} == {
        "checkout": "succeeded",
        "catalog": "succeeded",
        "payments": "succeeded",
    }
    # Every run went on without europe-west1's API, and the evacuation says so.
    assert all(s.get("ungraceful") for s in services.values()), services
    assert f"UNGRACEFUL: 3 run(s) went on without {SOURCE}'s API" in result.stdout, result.stdout
    state = e2e.state()
    for backend_service, group, name, address in DEMO_WORLD.values():
        assert scaler(state, backend_service, group) == 0.0, backend_service
        assert record(state, name) == [address], name
    # checkout and catalog sit behind global backend services: their load in europe-west1 (3
    # instances each, all unhealthy now) is read through the global API, so each target was
    # scaled to 3 before its drain. payments sits behind a regional backend service with a single
    # backend: its evacuation moves it by DNS alone (no drain, which Google refuses for the only
    # backend), and its load, behind europe-west1's dead API, is unknown: the guard's minimum.
    assert not any(s.get("owed") for s in services.values()), services
    for name in ("checkout", "catalog"):
        assert services[name]["capacity"].startswith(f"needs 3 healthy in {TARGET} (1 × 3 instances serving in {SOURCE})")
    assert services["payments"]["capacity"].startswith(f"needs 1 healthy in {TARGET} ({SOURCE}'s load unknown (")
    assert record(state, PAYMENTS_RECORD, zone="pay-zone") == [PAYMENTS_TARGET_ADDRESS]
    [payments_backend] = state["regionBackendServices"][f"{SOURCE}/payments-ew1"]["backends"]
    assert payments_backend["capacityScaler"] == 1.0  # DNS alone moved it
    payments = e2e.evac_json("status", "payments")
    assert [(s["name"], s["status"]) for s in payments["steps"]] == [
        (f"capacity: 1 healthy in {TARGET}", "succeeded"),
        ("shift DNS", "succeeded"),
    ]


def test_an_ungraceful_drill_makes_no_call_to_the_source_region_and_names_what_it_would_skip(e2e: E2E):
    before = e2e.state()  # the `e2e` fixture emptied the request log

    [drill] = e2e.evac_json("drill", "--plan", str(DEMO / "drill.yaml"), "--ungraceful", "--bake", "5s")

    assert drill["status"] == "succeeded" and drill["drill"]["outcome"] == "passed", drill["error"]
    assert drill["drill"]["ungraceful"] is True
    assert any(f"read instance group {SOURCE}/checkout-ew1" in line for line in drill["drill"]["would_skip"]), drill["drill"]
    # Not one call about europe-west1's own resources in the drill's time span, though it drained
    # europe-west1 (through the global backend service) and put everything back.
    started, ended = datetime.fromisoformat(drill["started_at"]), datetime.fromisoformat(drill["ended_at"])
    during = [r for r in e2e.requests() if started <= datetime.fromisoformat(r["time"]) <= ended]
    assert any(r["effect"] == "applied" for r in during), during
    assert [r["path"] for r in during if any(part in r["path"] for part in SOURCE_PATHS)] == []
    assert e2e.state() == before


def test_a_planned_drill_refuses_a_source_whose_api_is_dead_and_points_at_ungraceful(e2e: E2E, tmp_path: Path):
    # The demo drill, waiting at most 10 s on the dead region instead of 30 s.
    plan = with_source_deadline(DEMO / "drill.yaml", DEMO / "topology.yaml", tmp_path, "10s")
    with dead_api(e2e, SOURCE):
        before = e2e.state()
        [drill] = e2e.evac_json("drill", "--plan", str(plan), "--bake", "5s", expect=1)
        asked = source_calls(e2e)
        after = e2e.state()

    assert drill["drill"]["outcome"] == "not_ready", drill
    assert f"the source region {SOURCE}'s API is needed for a planned switchover" in drill["error"], drill["error"]
    assert "evac drill --ungraceful" in drill["error"], drill["error"]
    assert [s["status"] for s in drill["steps"]] == ["not_run"] * len(drill["steps"])
    assert after == before  # nothing changed
    # Unlike an ungraceful drill, it asked europe-west1's API.
    assert asked and all(r["status"] == 503 for r in asked), asked
