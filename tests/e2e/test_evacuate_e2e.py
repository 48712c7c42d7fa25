"""A region evacuation as a user runs it: 50 generated services in three tiers leave
europe-west1 through `evac evacuate`, against an emulator with a write quota of 10 a second and
a worker whose write rate limit is the same, on a stack of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.generate import generate_topology
from tests.e2e.conftest import E2E, most_in_one_second, quota_stack

pytestmark = pytest.mark.e2e

SERVICES = 50
QUOTA = 10  # writes a second: the emulator's quota and the worker's write_rate_limit
TIERS = {"data": range(0, 10), "api": range(10, 25)}  # the other 25 have no tier and leave last
REGION, TARGET = "europe-west1", "us-central1"


def _world() -> dict[str, Any]:
    document = generate_topology(SERVICES)
    names = list(document["services"])
    document["tiers"] = list(TIERS)
    for tier, indexes in TIERS.items():
        for index in indexes:
            document["services"][names[index]]["tier"] = tier
    return document


@pytest.fixture(scope="module")
def evac_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, Path, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("evac-evacuate")
    world = _world()
    topology = folder / "topology.yaml"
    topology.write_text(yaml.safe_dump(world))
    with quota_stack(topology, folder, QUOTA, "evac-evacuate-e2e") as e2e:
        yield e2e, topology, world


@pytest.fixture
def stack(evac_stack: tuple[E2E, Path, dict[str, Any]]) -> tuple[E2E, Path, dict[str, Any]]:
    e2e = evac_stack[0]
    e2e.admin.post("/emulator/v1/reset").raise_for_status()
    e2e.admin.put("/emulator/v1/latency", json={"seconds": 0}).raise_for_status()
    return evac_stack


def scaler(state: dict[str, Any], service: str, region: str) -> float:
    [backend] = [b for b in state["backendServices"][service]["backends"] if b["group"].endswith(f"/{service}-{region}")]
    return float(backend["capacityScaler"])


def address(state: dict[str, Any], service: str) -> list[str]:
    [rrset] = [r for r in state["managedZones"]["gen-zone"]["rrsets"] if r["name"] == f"{service}.gen.example.com."]
    return list(rrset["rrdatas"])


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_fifty_services_leave_the_region_tier_by_tier_within_the_write_quota(stack: tuple[E2E, Path, dict[str, Any]]):
    e2e, topology, world = stack
    result = e2e.evac(
        "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--reason", "e2e", "--output", "json"
    )
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    record = json.loads(result.stdout)

    assert record["status"] == "succeeded" and record["workflow_id"] == f"evacuation/{REGION}"
    assert record["groups"] == ["data", "api", "untiered"]
    assert len(record["services"]) == SERVICES
    assert {s["status"] for s in record["services"]} == {"succeeded"}
    # The world, service by service: the region drained, DNS holding the target's address.
    state = e2e.state()
    for name, service in world["services"].items():
        assert scaler(state, name, REGION) == 0.0, name
        assert address(state, name) == [service["regions"][TARGET]["address"]], name
    # Groups in order: every run of a tier ended before any run of the next one started.
    by_group = {g: [s for s in record["services"] if s["group"] == g] for g in record["groups"]}
    for earlier, later in zip(record["groups"], record["groups"][1:], strict=False):
        assert max(_at(s["ended_at"]) for s in by_group[earlier]) <= min(_at(s["started_at"]) for s in by_group[later])
    # The write quota held in every sliding second, and no write it refused failed a service.
    writes = [r for r in e2e.requests() if r["effect"] is not None]
    accepted = sorted(_at(r["time"]).timestamp() for r in writes if r["status"] == 200)
    # One drain each, one DNS change each whose record did not point at the target already, and
    # one resize each whose target was smaller than the load it takes (its capacity verdict says so).
    dns_changes = sum(1 for service in world["services"].values() if service["primary_region"] != TARGET)
    scaled = sum("; scale to " in s["capacity"] for s in record["services"])
    assert scaled == sum(r["effect"] == "applied" and r["path"].endswith("/resize") for r in writes) > 0
    assert sum(r["effect"] == "applied" for r in writes) == SERVICES + dns_changes + scaled
    assert most_in_one_second(accepted) <= QUOTA
    # Evac kept to the quota itself: the emulator had to refuse few writes, if any (each was retried).
    refused = sum(1 for r in writes if r["status"] == 429)
    assert refused <= len(writes) // 4, f"{refused} of {len(writes)} writes refused with 429"

    # `evac status` and `evac watch` on the evacuation tell the same story after it ended.
    status = e2e.evac("status", f"evacuation/{REGION}")
    assert status.returncode == 0, status.stderr
    assert "succeeded: 50 succeeded" in status.stdout and "data" in status.stdout and "untiered" in status.stdout
    watched = e2e.evac_json("watch", f"evacuation/{REGION}")
    assert watched["status"] == "succeeded"

    def listed() -> list[dict[str, Any]]:
        rows = e2e.evac_json("runs", "list", "--kind", "evacuation", "--outcome", "succeeded")
        return [r for r in rows if r["workflow_id"] == f"evacuation/{REGION}"]

    e2e.wait_for("the evacuation's outcome to be visible", lambda: bool(listed()))
    [row] = listed()
    assert (row["source"], row["target"], row["trigger"]) == (REGION, TARGET, "manual")
    # An abort of an evacuation that has ended is refused.
    refused = e2e.evac("abort", f"evacuation/{REGION}", "--reason", "too late")
    assert refused.returncode == 3 and "has already ended" in refused.stderr, refused.stderr


def test_an_abort_stops_new_runs_rolls_back_those_in_flight_and_leaves_finished_ones_failed_over(
    stack: tuple[E2E, Path, dict[str, Any]],
):
    e2e, topology, world = stack
    before = e2e.state()
    e2e.admin.put("/emulator/v1/latency", json={"writeSeconds": 1}).raise_for_status()  # slow enough to catch mid-way
    started = e2e.evac(
        "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--tier", "data",
        "--window", "2", "--no-wait", "--reason", "e2e abort",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert f"evac abort evacuation/{REGION}" in started.stdout

    def finished_some() -> bool:
        shown = e2e.evac("status", f"evacuation/{REGION}", "--output", "json")
        return shown.returncode == 0 and sum(s["status"] == "succeeded" for s in json.loads(shown.stdout)["services"]) >= 2

    e2e.wait_for("two services to fail over", finished_some)
    aborted = e2e.evac("abort", f"evacuation/{REGION}", "--reason", "e2e: stop")
    assert aborted.returncode == 0, aborted.stderr
    assert "stay failed over" in aborted.stdout
    again = e2e.evac("abort", f"evacuation/{REGION}", "--reason", "twice")
    # Refused, as being aborted already (or, if its runs in flight rolled back that fast, as ended).
    assert again.returncode == 3, again.stderr + again.stdout
    assert "being aborted already" in again.stderr or "ended" in again.stderr, again.stderr

    final = e2e.evac_json("watch", f"evacuation/{REGION}", expect=1)
    assert final["status"] == "aborted" and final["abort"]["reason"] == "e2e: stop"
    statuses = {s["service"]: s["status"] for s in final["services"]}
    assert set(statuses.values()) <= {"succeeded", "aborted", "not_started"}
    assert "not_started" in statuses.values()
    state = e2e.state()
    for name, status in statuses.items():
        if status == "succeeded":  # finished ones stay failed over
            assert scaler(state, name, REGION) == 0.0, name
            assert address(state, name) == [world["services"][name]["regions"][TARGET]["address"]], name
        else:  # in flight: rolled back; waiting: never touched
            assert scaler(state, name, REGION) == scaler(before, name, REGION), name
            assert address(state, name) == address(before, name), name

    # After the fact, `evac failback` puts the services the abort left failed over back exactly.
    e2e.admin.put("/emulator/v1/latency", json={"seconds": 0}).raise_for_status()
    back = e2e.evac_json("failback", f"evacuation/{REGION}", "--reason", "e2e: the region is back")
    assert back["workflow_id"] == f"failback/evacuation/{REGION}" and back["status"] == "succeeded"
    assert back["failback_of"].startswith(f"evacuation/{REGION} run ")
    left_over = sorted(name for name, status in statuses.items() if status == "succeeded")
    assert sorted(s["service"] for s in back["services"] if s["status"] == "failed_back") == left_over
    after = e2e.state()
    for part in ("backendServices", "managedZones"):
        assert after[part] == before[part], part
    sizes = {k: g["targetSize"] for k, g in after["instanceGroupManagers"].items()}
    assert sizes == {k: g["targetSize"] for k, g in before["instanceGroupManagers"].items()}
    again = e2e.evac("failback", f"evacuation/{REGION}", "--reason", "twice")
    assert again.returncode == 3 and "nothing to fail back" in again.stderr, again.stderr


def test_a_tier_leaves_while_one_call_in_five_answers_503_and_one_in_ten_429(stack: tuple[E2E, Path, dict[str, Any]]):
    """The control plane at its worst, beside the quota's own refusals: 503s and 429s on every
    kind of call (reads, writes, operation polls). No service fails, and each change is applied
    once (a retry finds it made)."""
    e2e, topology, world = stack
    e2e.admin.post("/emulator/v1/faults", json={"status": 503, "rate": 0.2, "seed": 31}).raise_for_status()
    e2e.admin.post("/emulator/v1/faults", json={"status": 429, "rate": 0.1, "seed": 32}).raise_for_status()
    try:
        record = e2e.evac_json(
            "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--tier", "data",
            "--reason", "e2e storm",
        )  # fmt: skip
        struck = [f["struck"] for f in e2e.admin.get("/emulator/v1/faults").json()["faults"]]
    finally:
        e2e.admin.delete("/emulator/v1/faults").raise_for_status()

    failed = [(s["service"], s["error"]) for s in record["services"] if s["status"] != "succeeded"]
    assert record["status"] == "succeeded" and not failed, failed
    assert all(n > 0 for n in struck), struck
    names = [list(world["services"])[index] for index in TIERS["data"]]
    state = e2e.state()
    for name in names:
        assert scaler(state, name, REGION) == 0.0, name
        assert address(state, name) == [world["services"][name]["regions"][TARGET]["address"]], name
    dns_changes = sum(1 for name in names if world["services"][name]["primary_region"] != TARGET)
    scaled = sum("; scale to " in s["capacity"] for s in record["services"])
    assert sum(r["effect"] == "applied" for r in e2e.requests()) == len(names) + dns_changes + scaled


def test_a_dry_run_shows_what_each_service_would_change_and_changes_nothing(stack: tuple[E2E, Path, dict[str, Any]]):
    e2e, topology, _ = stack
    before = e2e.state()
    result = e2e.evac(
        "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--tier", "data", "--dry-run",
        "--reason", "e2e plan",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    assert result.stdout.count("dry run: nothing was changed") == len(TIERS["data"])
    assert "succeeded: 10 succeeded  (dry-run/evacuation/europe-west1/" in result.stdout
    assert e2e.state() == before
    assert not [r for r in e2e.requests() if r["effect"] is not None]
