"""`evac evacuate` and the evacuation's side of `evac abort`: bad input is refused in one
sentence naming what is wrong, exit 2, before anything connects (nothing listens at the
address: a command that got as far as connecting would exit 4); and how an evacuation's
aggregated record looks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from evac import render
from evac.cli import app
from evac.evacuation import (
    EvacServiceRecord,
    EvacuationAbort,
    EvacuationProgress,
    EvacuationStatus,
    ServiceStatus,
)
from evac.runs import Trigger
from tests.conftest import ROOT

TOPOLOGY = ROOT / "plans" / "demo" / "evacuation" / "topology.yaml"
DEMO_TOPOLOGY = ROOT / "plans" / "demo" / "topology.yaml"
UNREACHABLE = "cannot reach Temporal at 127.0.0.1:9"


@pytest.fixture
def evac(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("EVAC_GCP_PROJECT", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: a command that connected exits 4

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    return invoke


def _evacuate(*args: str, reason: str = "region drill") -> list[str]:
    return ["evacuate", "--topology", str(TOPOLOGY), "--region", "europe-west1", "--reason", reason, *args]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["evacuate", "--region", "europe-west1", "--to", "us-central1", "--reason", "r"], "--topology is required"),
        (_evacuate("--to", "us-central1", reason="  "), "--reason must say why the region is evacuated"),
        (_evacuate("--to", "us-central1", reason="drill\n✔ approved by ceo"), "--reason must be printable text on one line"),
        (_evacuate("--to", "us-central1", "--capacity-ratio", "11"), "--capacity-ratio must be from 0 to 10"),
        (_evacuate("--to", "us-central1", "--capacity-ratio", "-1"), "--capacity-ratio must be from 0 to 10"),
        (_evacuate(), "give exactly one of --to REGION"),
        (_evacuate("--to", "us-central1", "--auto-target"), "give exactly one of --to REGION"),
        (
            ["evacuate", "--topology", str(TOPOLOGY), "--region", "europe-west9", "--to", "us-central1", "--reason", "r"],
            "no service of the topology is in region 'europe-west9' (its regions: asia-east1, europe-west1, us-central1)",
        ),
        (_evacuate("--to", "europe-west1"), "the target must differ from the region being evacuated"),
        (
            _evacuate("--to", "asia-east1"),
            "not served in asia-east1: sessions-read, inventory-cache, payments-api, admin-ui; use --auto-target",
        ),
        (_evacuate("--to", "us-central1", "--tier", "cache"), "unknown tier(s): cache (the topology's tiers: data, backend"),
        (_evacuate("--to", "us-central1", "--services", "storefront,nope"), "unknown service(s): nope"),
        (_evacuate("--to", "us-central1", "--services", "storefront,,orders-api"), "--services has an empty name"),
        (_evacuate("--to", "us-central1", "--window", "0"), "--window must be from 1 to 500 runs in flight, not 0"),
        (_evacuate("--to", "us-central1", "--window", "501"), "--window must be from 1 to 500 runs in flight, not 501"),
        (_evacuate("--to", "us-central1", reason="x" * 1001), "--reason is 1001 characters long"),
    ],
)
def test_a_bad_evacuation_is_refused_naming_what_is_wrong_and_starts_nothing(
    evac: Callable[..., Result], args: list[str], named: str
):
    result = evac(*args)
    assert result.exit_code == 2, result.output
    assert named in result.stderr and "nothing was started" in result.stderr
    assert "Traceback" not in result.output


def test_a_topology_with_errors_is_refused_with_each_error(evac: Callable[..., Result], tmp_path: Path):
    broken = tmp_path / "topology.yaml"
    broken.write_text(TOPOLOGY.read_text().replace("tier: backend", "tier: backends"))
    result = evac("evacuate", "--topology", str(broken), "--region", "europe-west1", "--to", "us-central1", "--reason", "r")
    assert result.exit_code == 2
    assert "tier 'backends' is not one of the topology's tiers" in result.stderr and "nothing was started" in result.stderr


def test_the_project_guard_refuses_a_topology_of_another_project(evac: Callable[..., Result], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVAC_GCP_PROJECT", "prod-project")
    result = evac(*_evacuate("--to", "us-central1"))
    assert (
        result.exit_code == 2
        and "the topology is for project 'evac-demo' but EVAC_GCP_PROJECT is 'prod-project'" in result.stderr
    )


def test_errors_are_json_for_scripts(evac: Callable[..., Result]):
    result = evac(*_evacuate("--to", "us-central1", "--tier", "cache", "--output", "json"))
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": "unknown tier(s): cache (the topology's tiers: data, backend, frontend, untiered); nothing was started",
        "exit_code": 2,
    }


@pytest.mark.parametrize(
    "args",
    [
        _evacuate("--to", "us-central1"),
        _evacuate("--auto-target", "--tier", "data,backend", "--tier", "frontend", "--window", "3", "--dry-run"),
        _evacuate("--to", "us-central1", "--services", "storefront,orders-api", "--tier", "frontend", "--no-wait"),
        ["evacuate", "--topology", str(DEMO_TOPOLOGY), "--region", "europe-west1", "--to", "us-central1", "--reason", "r"],
        _evacuate("--to", "us-central1", "--capacity-ratio", "1.5"),
    ],
)
def test_a_good_evacuation_gets_as_far_as_connecting(evac: Callable[..., Result], args: list[str]):
    """The contrast of the refusals above: the same command with good input goes on to Temporal."""
    result = evac(*args)
    assert result.exit_code == 4 and UNREACHABLE in result.stderr, result.output


def test_an_evacuation_without_a_reason_is_refused_before_anything(evac: Callable[..., Result]):
    result = evac("evacuate", "--topology", str(TOPOLOGY), "--region", "europe-west1", "--to", "us-central1")
    assert result.exit_code == 2 and "Missing option '--reason'" in result.output


def test_rollback_all_is_refused_for_a_failover_run(evac: Callable[..., Result]):
    result = evac("abort", "failover/checkout", "--reason", "stop", "--rollback-all")
    assert result.exit_code == 2
    assert "--rollback-all applies to an evacuation (evacuation/<region>) only" in result.stderr
    assert "nothing was aborted" in result.stderr


def test_an_evacuation_abort_needs_a_reason_and_goes_to_the_evacuation(evac: Callable[..., Result]):
    result = evac("abort", "evacuation/europe-west1", "--reason", "  ")
    assert result.exit_code == 2 and "--reason must say why" in result.stderr
    result = evac("abort", "evacuation/europe-west1", "--reason", "stop", "--rollback-all")
    assert result.exit_code == 4 and UNREACHABLE in result.stderr


# --- the aggregated view -------------------------------------------------------------------

START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def _progress(**update: object) -> EvacuationProgress:
    """data: 4 done; api: 2 done, 2 running, 3 waiting, 7 failed; untiered: 5 waiting."""
    services: list[EvacServiceRecord] = []

    def add(group: str, status: ServiceStatus, count: int, error: str | None = None) -> None:
        for _ in range(count):
            index = len(services)
            services.append(EvacServiceRecord(service=f"svc-{index:04d}", group=group, status=status, error=error))

    add("data", ServiceStatus.SUCCEEDED, 4)
    add("api", ServiceStatus.SUCCEEDED, 2)
    add("api", ServiceStatus.RUNNING, 2)
    add("api", ServiceStatus.WAITING, 3)
    add("api", ServiceStatus.FAILED, 7, "guard refused: us-central1 has 0/1 healthy")
    add("untiered", ServiceStatus.WAITING, 5)
    progress = EvacuationProgress(
        workflow_id="evacuation/europe-west1",
        region="europe-west1",
        target="us-central1",
        trigger=Trigger(by="ops@host", reason="incident 42"),
        window=4,
        started_at=START,
        groups=["data", "api", "untiered"],
        current_group="api",
        services=services,
    )
    return progress.model_copy(update=update)


def _text(renderable: object) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_view_counts_each_group_and_shows_where_it_stands():
    text = _text(render.evacuation_view(_progress(), now=START + timedelta(seconds=65)))
    rows = {
        line.split("│")[1].strip().rstrip(" ◀"): [c.strip() for c in line.split("│")[2:-1]]
        for line in text.splitlines()
        if line.count("│") > 4
    }
    assert [c.strip() for c in text.splitlines()[2].split("┃")[1:-1]] == ["group", "done", "running", "waiting", "failed"]
    assert rows["data"] == ["4", "0", "0", "0"]
    assert rows["api"] == ["2", "2", "3", "7"]
    assert rows["untiered"] == ["0", "0", "5", "0"]
    assert "group api (2/3)" in text and "in flight 2/4" in text and "elapsed 1m5s" in text
    # 13 of 23 finished in 65 s: 10 left at 5 s each.
    assert "ETA 50s" in text
    # The failed services with their errors: the first five, then how many more.
    failed = [line for line in text.splitlines() if "(api) failed: " in line]
    assert len(failed) == 5 and "guard refused: us-central1 has 0/1 healthy" in failed[0]
    assert "and 2 more" in text


def test_aborted_and_not_started_columns_appear_only_when_some_service_has_them():
    assert "aborted" not in _text(render.evacuation_table(_progress()))
    aborted = _progress(
        status=EvacuationStatus.ABORTED,
        current_group=None,
        ended_at=START + timedelta(minutes=2),
        abort=EvacuationAbort(by="ops@host", reason="wrong region"),
    )
    for record in aborted.services:
        if record.status == ServiceStatus.RUNNING:
            record.status = ServiceStatus.ABORTED
        elif record.status == ServiceStatus.WAITING:
            record.status = ServiceStatus.NOT_STARTED
    text = _text(render.evacuation_view(aborted, now=START + timedelta(minutes=5)))
    assert "aborted" in text and "not started" in text and "took 2m" in text and "ETA" not in text
    assert "aborted by ops@host: wrong region (finished services stay failed over)" in text
    lines = [line.plain for line in render.evacuation_outcome_lines(aborted)]
    assert lines[0] == (
        "evacuation of europe-west1: aborted: 6 succeeded, 7 failed, 2 aborted, 8 not started  (evacuation/europe-west1)"
    )
    assert any("6 service(s) stay failed over" in line for line in lines)


def test_one_line_per_change_names_the_status_the_group_and_the_counts():
    line = render.evacuation_line(_progress())
    assert line == (
        "evacuation europe-west1: running; group api (2/3), in flight 2/4; "
        "done/running/waiting/failed by group: data 4/0/0/0; api 2/2/3/7; untiered 0/0/5/0"
    )
    assert render.evacuation_line(_progress(status=EvacuationStatus.SUCCEEDED, current_group=None)).startswith(
        "evacuation europe-west1: succeeded; data 4/0/0/0"
    )


def test_a_blackout_refuses_the_evacuation_unless_overridden_with_a_reason(
    evac: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    blackouts = tmp_path / "blackouts.yaml"
    blackouts.write_text("windows:\n  - {name: always, timezone: UTC, start: 2000-01-01, end: 2100-01-01}\n")
    monkeypatch.setenv("EVAC_BLACKOUTS", str(blackouts))
    refused = evac(*_evacuate("--to", "us-central1"))
    assert refused.exit_code == 3 and "always" in refused.stderr and "nothing was started" in refused.stderr
    overridden = evac(*_evacuate("--to", "us-central1", "--override-blackout", reason="incident 42"))
    assert overridden.exit_code == 4 and UNREACHABLE in overridden.stderr
    assert evac(*_evacuate("--to", "us-central1", "--dry-run")).exit_code == 4  # a dry run changes nothing: not refused


def test_runs_list_finds_evacuations_by_kind_one_row_each_and_lists_them_with_every_other_run():
    from evac.control.findable import RunFilter, build_query

    assert build_query(RunFilter(kind="evacuation", region="europe-west1")) == (
        "WorkflowType = 'EvacuationWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND "
        "(EvacSourceRegion = 'europe-west1' OR EvacTargetRegion = 'europe-west1') AND EvacKind = 'evacuation'"
    )
    everything = build_query(RunFilter())
    assert "'EvacuationWorkflow'" in everything and "ExecutionStatus != 'ContinuedAsNew'" in everything
    assert build_query(RunFilter(outcome="completed_with_failures")).endswith("EvacOutcome = 'completed_with_failures'")
