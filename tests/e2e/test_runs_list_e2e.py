"""Finding runs on a real dev server: `evac setup` and `evac runs list` after a failover and a drill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evac import search_attributes
from tests.conftest import DEMO
from tests.e2e.conftest import E2E


@pytest.fixture
def drill_file(e2e: E2E, tmp_path: Path) -> Path:
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    plan = tmp_path / "drill.yaml"
    plan.write_text((DEMO / "drill.yaml").read_text())
    return plan


def _runs(e2e: E2E, *filters: str) -> list[dict[str, Any]]:
    return e2e.evac_json("runs", "list", *filters)


def test_runs_list_finds_a_drill_by_its_attributes_and_filters_exclude_the_rest(e2e: E2E, drill_file: Path):
    # The drill first: it leaves the world as it was, the failover then moves it.
    [drill] = e2e.evac_json("drill", "--plan", str(drill_file), "--bake", "2s")
    assert drill["drill"]["outcome"] == "passed"
    failovers = e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--wait", "--reason", "e2e runs list")
    catalog = next(r for r in failovers if r["service"] == "catalog")

    def found(*filters: str, run_id: str) -> dict[str, Any] | None:
        return next((r for r in _runs(e2e, *filters) if r["run_id"] == run_id), None)

    e2e.wait_for(
        "the drill's outcome to be visible",
        lambda: (found("--service", "checkout", "--kind", "drill", run_id=drill["run_id"]) or {}).get("outcome") == "passed",
    )
    row = found("--service", "checkout", "--kind", "drill", run_id=drill["run_id"])
    assert row is not None
    assert row["kind"] == "drill" and row["service"] == "checkout" and row["trigger"] == "drill"
    assert (row["source"], row["target"]) == ("europe-west1", "us-central1")
    assert row["recovery_seconds"] == drill["drill"]["recovery_seconds"] and row["recovery_seconds"] > 0
    assert row["plan_digest"] == drill["plan_digest"] and row["initiator"] == drill["trigger"]["by"]

    e2e.wait_for(
        "the failover's outcome to be visible",
        lambda: found("--service", "catalog", "--outcome", "succeeded", run_id=catalog["run_id"]) is not None,
    )
    failover_row = found("--service", "catalog", run_id=catalog["run_id"])
    assert failover_row is not None and failover_row["kind"] == "failover" and failover_row["trigger"] == "manual"
    assert failover_row["recovery_seconds"] > 0

    # Every filter keeps only what it names.
    assert all(
        r["kind"] == "drill" and r["service"] == "checkout" for r in _runs(e2e, "--service", "checkout", "--kind", "drill")
    )
    assert found("--service", "catalog", "--kind", "drill", run_id=catalog["run_id"]) is None
    assert found("--kind", "failover", run_id=drill["run_id"]) is None
    assert found("--outcome", "rolled_back", run_id=drill["run_id"]) is None
    assert found("--region", "asia-east1", run_id=drill["run_id"]) is None
    assert found("--region", "us-central1", run_id=drill["run_id"]) is not None
    assert found("--trigger", "manual", run_id=drill["run_id"]) is None
    assert found("--since", "1h", run_id=drill["run_id"]) is not None
    assert len(_runs(e2e, "--limit", "1")) == 1
    table = e2e.evac("runs", "list", "--service", "checkout", "--kind", "drill")
    assert table.returncode == 0 and "passed" in table.stdout and "europe-west1 → us-central1" in table.stdout
    # Not on a terminal: plain columns, every value whole, recovery to a tenth of a second.
    [line] = [x for x in table.stdout.splitlines() if drill["run_id"] in x or "failover/checkout" in x][:1]
    assert "failover/checkout" in line and f"{drill['drill']['recovery_seconds']:.1f}s" in line and "…" not in table.stdout


@pytest.mark.parametrize(
    "filters",
    [("--since", "forever"), ("--since", "0d"), ("--kind", "evacuate"), ("--service", "x' OR '1'='1"), ("--limit", "0")],
)
def test_a_bad_filter_is_refused_in_one_sentence_with_exit_2(e2e: E2E, filters: tuple[str, str]):
    error = e2e.evac_json("runs", "list", *filters, expect=2)
    assert filters[0] in error["error"] and error["exit_code"] == 2


def test_setup_on_the_dev_server_finds_everything_present_and_is_idempotent(e2e: E2E):
    for _ in range(2):
        report = e2e.evac_json("setup")
        assert [(a["name"], a["action"]) for a in report["attributes"]] == [
            (key.name, "already present") for key in search_attributes.ALL
        ]
    text = e2e.evac("setup")
    assert text.returncode == 0 and f"0 added, {len(search_attributes.ALL)} already present" in text.stdout
