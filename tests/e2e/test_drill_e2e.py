"""A DR drill as an operator runs it: dev server, emulator, worker and the evac CLI."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from emulator.requestlog import is_api_call, is_mutation
from tests.conftest import DEMO
from tests.e2e.conftest import E2E


@pytest.fixture
def drill_file(e2e: E2E, tmp_path: Path) -> Path:
    """The demo drill beside its topology (its probe follows the worker's emulator: {gcp_endpoint})."""
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    plan = tmp_path / "drill.yaml"
    plan.write_text((DEMO / "drill.yaml").read_text())
    return plan


def test_a_drill_passes_reports_its_times_and_leaves_the_world_as_it_was(e2e: E2E, drill_file: Path):
    before = e2e.state()
    [result] = e2e.evac_json("drill", "--plan", str(drill_file), "--bake", "3s")

    assert result["kind"] == "drill" and result["status"] == "succeeded"
    report = result["drill"]
    assert report["outcome"] == "passed"
    assert report["bake_seconds"] == 3
    assert report["recovery_seconds"] > 0 and report["failback_seconds"] > 0
    assert report["rto_target_seconds"] == 120 and report["over_rto"] is False
    assert [c["kind"] for c in report["conditions"]] == ["backend_health", "http_probe"]
    assert all(c["checks"] >= 1 and c["breaches"] == 0 for c in report["conditions"])
    assert report["mismatches"] == [] and len(report["verification"]) == 3
    assert result["trigger"]["kind"] == "drill"
    # Everything the drill moved is back: scalers, sizes, DNS.
    assert e2e.state() == before


def test_an_outage_in_the_target_during_the_bake_breaches_and_rolls_back(e2e: E2E, drill_file: Path):
    before = e2e.state()

    def outage_once_baking() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = e2e.evac("status", "checkout", "--output", "json")
            if '"phase": "bake"' in status.stdout:
                e2e.admin.post("/emulator/v1/regions/us-central1/outage").raise_for_status()
                return
            time.sleep(0.3)

    injector = threading.Thread(target=outage_once_baking)
    injector.start()
    result = e2e.evac("drill", "--plan", str(drill_file), "--bake", "2m", "--output", "json")
    injector.join()
    e2e.admin.post("/emulator/v1/regions/us-central1/recover").raise_for_status()

    assert result.returncode == 1, result.stderr + result.stdout
    assert '"outcome": "rolled_back"' in result.stdout
    # Both conditions see the outage: no healthy backend, and the probe answers 503.
    assert "stop condition 'us-central1 serving' breached: observed 0" in result.stdout
    assert "stop condition 'checkout answers' breached: observed 503" in result.stdout
    after = e2e.state()
    assert {k: v for k, v in after.items() if k in ("backendServices", "managedZones")} == {
        k: v for k, v in before.items() if k in ("backendServices", "managedZones")
    }


def test_a_failover_plan_is_not_a_drill_and_a_drill_plan_is_not_a_failover(e2e: E2E, drill_file: Path):
    drill = e2e.evac("drill", "--plan", str(DEMO / "failover.yaml"))
    assert drill.returncode == 2 and "is a failover plan: a drill needs 'kind: drill'" in drill.stderr
    failover = e2e.evac("failover", "--plan", str(drill_file), "--reason", "x")
    assert failover.returncode == 2 and "is a drill (kind: drill): run it with 'evac drill" in failover.stderr


def test_a_dry_run_shows_what_would_change_and_changes_nothing(e2e: E2E, drill_file: Path):
    before = e2e.state()
    records = e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--dry-run", "--reason", "preview")
    drill = e2e.evac("drill", "--plan", str(drill_file), "--dry-run")

    assert {r["service"]: (r["status"], r["dry_run"]) for r in records} == {
        "checkout": ("succeeded", True),
        "catalog": ("succeeded", True),
    }
    checkout = next(r for r in records if r["service"] == "checkout")
    assert checkout["workflow_id"].startswith("dry-run/checkout/")
    # A dry run is found again by the id it printed.
    again = e2e.evac_json("status", checkout["workflow_id"])
    assert (again["workflow_id"], again["run_id"], again["dry_run"]) == (checkout["workflow_id"], checkout["run_id"], True)
    scale = checkout["steps"][0]
    assert (scale["before"]["target_size"], scale["after"]["target_size"]) == (1, 3)
    assert drill.returncode == 0, drill.stderr + drill.stdout
    assert "dry run: nothing was changed" in drill.stdout and "now → would be" in drill.stdout
    # Nothing changed, and not one mutating call reached the cloud.
    assert e2e.state() == before
    mutating = [r for r in e2e.requests() if is_api_call(r["path"]) and is_mutation(r["method"], r["path"])]
    assert mutating == []
