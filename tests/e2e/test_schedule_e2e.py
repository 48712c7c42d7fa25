"""Schedules and blackout windows as an operator meets them: the real CLI against the dev
server, the emulator and a worker (whose blackouts file this test writes)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from evac.stack import find_binary
from tests.conftest import DEMO
from tests.e2e.conftest import E2E

CRON = "0 10 * * TUE"
ALL_WEEK = "[mon, tue, wed, thu, fri, sat, sun]"


@pytest.fixture
def plans(e2e: E2E, tmp_path: Path) -> Path:
    """The demo plans beside their topology; the drill's conditions checked every second."""
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    drill = (DEMO / "drill.yaml").read_text().replace("check_interval: 5s", "check_interval: 1s")
    (tmp_path / "drill.yaml").write_text(drill)
    (tmp_path / "failover.yaml").write_text((DEMO / "failover.yaml").read_text())
    return tmp_path


@pytest.fixture
def schedules(e2e: E2E) -> Iterator[list[str]]:
    """Names of schedules a test created: deleted at its end, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        e2e.evac("schedule", "delete", name)


@pytest.fixture
def blackouts(e2e: E2E) -> Iterator[Path]:
    """The blackouts file the stack's worker and CLI read (EVAC_BLACKOUTS): removed at the end."""
    path = e2e.stack.config.blackouts
    assert path is not None
    yield path
    path.unlink(missing_ok=True)


def test_a_schedule_is_created_listed_triggered_and_shows_its_drills_outcome(e2e: E2E, plans: Path, schedules: list[str]):
    # A plan with errors is refused with the same errors as `evac plan check`.
    broken = plans / "broken.yaml"
    broken.write_text((plans / "drill.yaml").read_text().replace("min_size: 3", "min_size: many").replace("ttl: 60", "ttl: -1"))
    checked = e2e.evac_json("plan", "check", str(broken), expect=2)
    refused = e2e.evac_json("schedule", "create", "broken", "--plan", str(broken), "--cron", CRON, expect=2)
    assert refused["errors"] == checked["errors"] and len(refused["errors"]) == 2
    # A failover plan, a cron Temporal cannot read: one sentence each, nothing created (the rest: tests/unit).
    failover = e2e.evac_json("schedule", "create", "x", "--plan", str(plans / "failover.yaml"), "--cron", CRON, expect=2)
    assert "is a failover plan: a schedule runs drills" in failover["error"]
    out_of_range = e2e.evac_json(
        "schedule", "create", "x", "--plan", str(plans / "drill.yaml"), "--cron", "0 25 * * TUE", expect=2
    )
    assert out_of_range["error"].startswith("Temporal refused the schedule:")

    schedules.append("weekly-e2e")
    created = e2e.evac_json(
        "schedule", "create", "weekly-e2e", "--plan", str(plans / "drill.yaml"), "--cron", CRON,
        "--timezone", "Europe/Stockholm", "--jitter", "30s", "--bake", "2s",
    )  # fmt: skip
    assert created["schedule_id"] == "evac-drill/weekly-e2e"
    assert (created["cron"], created["timezone"], created["jitter"], created["bake"]) == (CRON, "Europe/Stockholm", "30s", "2s")
    next_runs = [datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Stockholm")) for t in created["next_runs"]]
    assert len(next_runs) == 3 and all((t.weekday(), t.hour, t.minute) == (1, 10, 0) for t in next_runs)
    again = e2e.evac_json("schedule", "create", "weekly-e2e", "--plan", str(plans / "drill.yaml"), "--cron", CRON, expect=3)
    assert "already exists" in again["error"]

    # Listed (visibility may lag a moment) with its next runs and no run yet.
    e2e.wait_for("the schedule to be listed", lambda: any(s["name"] == "weekly-e2e" for s in e2e.evac_json("schedule", "list")))
    [listed] = [s for s in e2e.evac_json("schedule", "list") if s["name"] == "weekly-e2e"]
    assert listed["next_runs"] == created["next_runs"] and listed["recent"] == [] and listed["paused"] is False

    before = e2e.state()
    triggered = e2e.evac_json("schedule", "trigger", "weekly-e2e", "--wait")
    assert triggered["workflow_id"].startswith("evac-drill/weekly-e2e-")
    record = triggered["record"]
    assert record["outcome"] == "passed", record
    [checkout] = record["services"]
    assert (checkout["service"], checkout["outcome"], checkout["drill_outcome"]) == ("checkout", "passed", "passed")
    assert checkout["workflow_id"] == "failover/checkout"
    assert e2e.state() == before  # the drill failed back

    # The drill itself says a schedule started it.
    drill = e2e.evac_json("status", "checkout", "--run-id", checkout["run_id"])
    assert drill["trigger"]["kind"] == "schedule" and drill["trigger"]["schedule_id"] == "evac-drill/weekly-e2e"
    assert drill["drill"]["bake_seconds"] == 2

    [listed] = [s for s in e2e.evac_json("schedule", "list") if s["name"] == "weekly-e2e"]
    assert [r["outcome"] for r in listed["recent"]] == ["passed"]
    text = e2e.evac("schedule", "list")
    assert text.returncode == 0 and "weekly-e2e" in text.stdout and "passed" in text.stdout
    described = e2e.evac_json("schedule", "describe", "weekly-e2e")
    assert described["recent"][-1]["workflow_id"] == triggered["workflow_id"]
    assert described["recent"][-1]["services"][0]["outcome"] == "passed"

    # Paused with a note, unpaused, deleted.
    e2e.evac_json("schedule", "pause", "weekly-e2e", "--note", "region maintenance")
    paused = e2e.evac_json("schedule", "describe", "weekly-e2e")
    assert paused["paused"] is True and paused["note"].endswith(": region maintenance")
    e2e.evac_json("schedule", "unpause", "weekly-e2e")
    assert e2e.evac_json("schedule", "describe", "weekly-e2e")["paused"] is False
    e2e.evac_json("schedule", "delete", "weekly-e2e")
    gone = e2e.evac_json("schedule", "describe", "weekly-e2e", expect=3)
    assert gone["error"].startswith("no schedule 'weekly-e2e'")


def test_a_blackout_skips_a_scheduled_drill_and_refuses_a_manual_run_unless_overridden(
    e2e: E2E, plans: Path, schedules: list[str], blackouts: Path
):
    schedules.append("freeze-e2e")
    e2e.evac_json("schedule", "create", "freeze-e2e", "--plan", str(plans / "drill.yaml"), "--cron", CRON, "--bake", "2s")
    blackouts.write_text(
        f"windows:\n  - {{name: e2e freeze, timezone: Europe/Stockholm, days: {ALL_WEEK}, from: '00:00', to: '24:00'}}\n"
    )
    before, calls_before = e2e.state(), len(e2e.requests())

    record = e2e.evac_json("schedule", "trigger", "freeze-e2e", "--wait")["record"]
    assert record["outcome"] == "skipped"
    assert record["blackout"]["window"] == "e2e freeze"
    assert record["reason"].startswith("blackout window 'e2e freeze' (every day 00:00-24:00 Europe/Stockholm")
    assert record["services"][0]["outcome"] == "skipped" and record["services"][0]["workflow_id"] is None
    assert e2e.state() == before and len(e2e.requests()) == calls_before  # nothing was read or changed
    described = e2e.evac("schedule", "describe", "freeze-e2e")
    assert described.returncode == 0 and "skipped" in described.stdout and "e2e freeze" in described.stdout

    # A manual failover inside it is refused, naming the window and when it ends.
    refused = e2e.evac("failover", "--plan", str(plans / "failover.yaml"), "--reason", "test")
    assert refused.returncode == 3, refused.stderr
    assert "blackout window 'e2e freeze'" in refused.stderr and "is in effect until" in refused.stderr
    assert "nothing was started" in refused.stderr and e2e.state() == before
    # A dry run changes nothing: not refused.
    dry = e2e.evac("drill", "--plan", str(plans / "drill.yaml"), "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    # An override needs a reason of its own ('evac drill' has a default one).
    no_reason = e2e.evac_json("drill", "--plan", str(plans / "drill.yaml"), "--override-blackout", expect=2)
    assert "--override-blackout needs --reason" in no_reason["error"]
    # Overridden with a reason: it runs, and its input records the window.
    results = e2e.evac_json("failover", "--plan", str(plans / "failover.yaml"), "--reason", "hotfix", "--override-blackout")
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert all(r["trigger"]["blackout_override"].startswith("blackout window 'e2e freeze'") for r in results)
    assert json.dumps(results).count("hotfix") == 2


def test_a_terminated_launcher_cancels_its_drill_which_rolls_back(e2e: E2E, plans: Path, schedules: list[str]):
    schedules.append("terminated-e2e")
    e2e.evac_json("schedule", "create", "terminated-e2e", "--plan", str(plans / "drill.yaml"), "--cron", CRON, "--bake", "5m")
    before = e2e.state()
    launcher = e2e.evac_json("schedule", "trigger", "terminated-e2e")["workflow_id"]
    e2e.wait_for("the drill to bake", lambda: '"phase": "bake"' in e2e.evac("status", "checkout", "--output", "json").stdout)
    terminated = subprocess.run(
        [find_binary("temporal"), "workflow", "terminate", "--workflow-id", launcher, "--reason", "test",
         "--address", e2e.stack.config.temporal_address],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert terminated.returncode == 0, terminated.stderr
    # The parent-close policy asks the drill to cancel (never terminates it): it rolls back.
    e2e.wait_for("the drill to end", lambda: e2e.evac("status", "checkout").returncode != 0)
    drill = e2e.evac_json("status", "checkout", expect=1)
    assert drill["status"] == "cancelled" and drill["drill"]["outcome"] == "aborted"
    assert e2e.state() == before
    [run] = e2e.evac_json("schedule", "describe", "terminated-e2e")["recent"]
    assert run["outcome"] == "failed" and "ended as terminated" in run["reason"]


def test_an_invalid_blackouts_file_refuses_a_manual_run_naming_file_and_line(e2e: E2E, plans: Path, blackouts: Path):
    blackouts.write_text("windows:\n  - name: typo\n    timezone: Europe/Stokholm\n    start: 2026-12-20\n    end: 2027-01-02\n")
    refused = e2e.evac_json("failover", "--plan", str(plans / "failover.yaml"), "--reason", "test", expect=2)
    assert refused["errors"] == [
        f"{blackouts.resolve()}:3: windows[0].timezone: 'Europe/Stokholm' is not an IANA time zone (like Europe/Stockholm or UTC)"
    ]
