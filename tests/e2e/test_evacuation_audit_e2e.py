"""Auditing a real region evacuation through the CLI, as an auditor would: `evac evacuate` of twelve
generated services in three tiers, then `evac audit show evacuation/<region>` (its JSON against the
published schema), `export` (JSON, Markdown, HTML opened in a real browser, the raw history) and
`verify` of true and tampered exports; `evac runs list` listing it with everything else. Then an
evacuation that continues as new (a low history threshold) and is aborted with `evac abort` mid-way:
one record for its whole chain, whichever run `--run-id` names, the abort with who did it and the
identity Temporal recorded, and its exports proven against every run. On a stack of its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from emulator.generate import generate_topology
from evac.config import connect_temporal
from evac.control.evacuate import start_evacuation
from evac.evacuation import EvacuationInput, plan_groups
from evac.runs import Trigger
from evac.topology import load_topology
from tests.browser.conftest import Browser, open_browser
from tests.e2e.conftest import E2E, quota_stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "docs" / "evacuation-audit-record.schema.json").read_text())
REGION, TARGET = "europe-west1", "us-central1"
WORKFLOW_ID = f"evacuation/{REGION}"
TIERS = {"data": range(0, 4), "api": range(4, 8)}  # the other four untiered


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from open_browser()


@pytest.fixture(scope="module")
def evac_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, Path]]:
    folder = tmp_path_factory.mktemp("evac-evacuation-audit")
    world = generate_topology(12)
    names = list(world["services"])
    world["tiers"] = list(TIERS)
    for tier, indexes in TIERS.items():
        for index in indexes:
            world["services"][names[index]]["tier"] = tier
    topology = folder / "topology.yaml"
    topology.write_text(yaml.safe_dump(world))
    with quota_stack(topology, folder, 100, "evac-evacuation-audit-e2e") as e2e:
        yield e2e, topology


def test_an_evacuation_is_shown_exported_and_verified_through_the_cli(
    evac_stack: tuple[E2E, Path], tmp_path: Path, browser: Browser
) -> None:
    e2e, topology = evac_stack
    e2e.admin.post("/emulator/v1/reset").raise_for_status()
    done = e2e.evac(
        "evacuate", "--region", REGION, "--to", TARGET, "--topology", str(topology), "--window", "3",
        "--reason", "audit e2e: region drill",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout[-3000:]

    shown = e2e.evac("audit", "show", WORKFLOW_ID)
    assert shown.returncode == 0, shown.stderr + shown.stdout
    for words in ("evacuation of europe-west1", "succeeded: 12 succeeded", "audit e2e: region drill", "data → api → untiered"):
        assert words in shown.stdout, words
    record = e2e.evac_json("audit", "show", WORKFLOW_ID)
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    assert (record["kind"], record["outcome"], record["region"], record["target"]) == ("evacuation", "succeeded", REGION, TARGET)
    assert [g["name"] for g in record["groups"]] == ["data", "api", "untiered"]
    assert len(record["children"]) == 12 and {c["status"] for c in record["children"]} == {"succeeded"}
    ui = e2e.env["EVAC_TEMPORAL_UI"]
    for child in record["children"]:
        assert child["workflow_id"] == f"failover/{child['service']}" and child["run_outcome"] == "completed"
        assert child["link"].startswith(f"{ui}/namespaces/default/workflows/failover%2F{child['service']}/{child['run_id']}")
    [run] = record["provenance"]["runs"]
    assert record["provenance"]["closed"] and run["ended_as"] == "completed"
    # Each child's run is a real run of its own: its audit names the evacuation that started it.
    first = record["children"][0]
    child = e2e.evac_json("audit", "show", first["workflow_id"], "--run-id", first["run_id"])
    assert child["trigger"]["evacuation"] == WORKFLOW_ID and child["outcome"] == "succeeded"

    files = {}
    for format in ("json", "md", "html"):
        files[format] = tmp_path / f"evacuation.{format}"
        made = e2e.evac("audit", "export", WORKFLOW_ID, "--format", format, "-o", str(files[format]))
        assert made.returncode == 0 and run["run_id"] in made.stdout, made.stderr + made.stdout
    raw = tmp_path / "evacuation-history.json"
    assert e2e.evac("audit", "export", WORKFLOW_ID, "--raw", "-o", str(raw)).returncode == 0
    # One run: one history, as Temporal writes it.
    assert json.loads(raw.read_text())["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    for format, path in files.items():
        checked = e2e.evac_json("audit", "verify", str(path))
        assert checked["verified"] and checked["format"] == format and checked["runs"] == [run["run_id"]], checked
        offline = e2e.evac("audit", "verify", str(path), "--history", str(raw))
        assert offline.returncode == 0 and offline.stdout.startswith("verified:"), offline.stderr + offline.stdout

    opened = browser.open(files["html"], screenshot=tmp_path / "evacuation.png")
    opened.assert_clean()
    assert opened.page.locator("svg rect.child-bar").count() == 12  # type: ignore[attr-defined]

    tampered = tmp_path / "tampered.md"
    service = record["children"][5]["service"]
    text = files["md"].read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {service} | api | succeeded |"))
    tampered.write_text(text.replace(row, row.replace("| succeeded |", "| failed |", 1)))
    refused = e2e.evac("audit", "verify", str(tampered))
    assert refused.returncode == 1 and "NOT verified" in refused.stdout and "line " in refused.stdout, refused.stdout

    def listed() -> list[dict[str, Any]]:
        return [r for r in e2e.evac_json("runs", "list", "--since", "1h") if r["workflow_id"] == WORKFLOW_ID]

    e2e.wait_for("the evacuation's outcome to be visible", lambda: any(r["outcome"] == "succeeded" for r in listed()))
    assert {r["kind"] for r in listed()} == {"evacuation"}
    table = e2e.evac("runs", "list", "--since", "1h")
    assert table.returncode == 0 and WORKFLOW_ID in table.stdout and "failover/" in table.stdout

    missing = e2e.evac("audit", "show", "evacuation/asia-east1")
    assert missing.returncode == 3 and "no evacuation 'evacuation/asia-east1'" in missing.stderr, missing.stderr


def test_an_evacuation_that_continued_as_new_and_was_aborted_is_one_record_of_its_whole_chain(
    evac_stack: tuple[E2E, Path], tmp_path: Path
) -> None:
    e2e, topology = evac_stack
    e2e.admin.post("/emulator/v1/reset").raise_for_status()
    e2e.admin.put("/emulator/v1/latency", json={"writeSeconds": 0.4}).raise_for_status()  # slow enough to abort mid-way
    try:
        loaded = load_topology(topology)
        input = EvacuationInput(
            region=REGION,
            target=TARGET,
            project=loaded.project,
            groups=plan_groups(loaded, REGION, target=TARGET),
            trigger=Trigger(by="carol@desk", reason="audit e2e: a long evacuation"),
            window=2,
            history_events_before_continue=50,
        )

        async def start() -> str:
            client = await connect_temporal(e2e.stack.config.temporal_address, "default")
            return (await start_evacuation(client, input, e2e.stack.config.task_queue)).run_id

        # In a thread of its own: the browser of this module keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as thread:
            first_run = thread.submit(asyncio.run, start()).result()

        def continued() -> bool:
            shown = e2e.evac("status", WORKFLOW_ID, "--output", "json")
            return shown.returncode == 0 and json.loads(shown.stdout)["runs"] >= 2

        e2e.wait_for("the evacuation to continue as new", continued, timeout=120)
        aborted = e2e.evac("abort", WORKFLOW_ID, "--reason", "audit e2e: stop here", env={"EVAC_IDENTITY": "dave@desk"})
        assert aborted.returncode == 0, aborted.stderr
        final = e2e.evac_json("watch", WORKFLOW_ID, expect=1)
        assert final["status"] == "aborted"
    finally:
        e2e.admin.put("/emulator/v1/latency", json={"seconds": 0}).raise_for_status()

    record = e2e.evac_json("audit", "show", WORKFLOW_ID, "--run-id", first_run)
    runs = [r["run_id"] for r in record["provenance"]["runs"]]
    assert runs[0] == first_run and len(runs) >= 2 and record["provenance"]["runs"][-1]["ended_as"] == "failed"
    assert all(r["ended_as"] == "continued_as_new" for r in record["provenance"]["runs"][:-1])
    assert e2e.evac_json("audit", "show", WORKFLOW_ID, "--run-id", runs[-1]) == record  # any run: the whole chain
    assert e2e.evac_json("audit", "show", WORKFLOW_ID) == record  # the latest chain
    assert (record["outcome"], record["trigger"]["by"]) == ("aborted", "carol@desk")
    [abort] = [a for a in record["operator_actions"] if a["action"] == "abort"]
    assert (abort["by"], abort["identity"], abort["reason"], abort["rollback_all"]) == (
        "dave@desk",
        "dave@desk",
        "audit e2e: stop here",
        False,
    )
    assert abort["evacuation_run_id"] in runs[1:]
    assert {c["status"] for c in record["children"]} >= {"succeeded", "not_started"}
    started_by = {c["evacuation_run_id"] for c in record["children"] if c["run_id"]}
    assert len(started_by) >= 2  # children were started by more than one run of the chain

    html, raw = tmp_path / "chain.html", tmp_path / "chain-histories.json"
    assert e2e.evac("audit", "export", WORKFLOW_ID, "--format", "html", "-o", str(html)).returncode == 0
    made = e2e.evac("audit", "export", WORKFLOW_ID, "--run-id", first_run, "--raw", "-o", str(raw))
    assert made.returncode == 0 and f"{len(runs)} runs" in made.stdout, made.stderr + made.stdout
    histories = json.loads(raw.read_text())
    assert isinstance(histories, list) and len(histories) == len(runs)
    checked = e2e.evac_json("audit", "verify", str(html))
    assert checked["verified"] and checked["runs"] == runs, checked
    offline = e2e.evac("audit", "verify", str(html), "--history", str(raw))
    assert offline.returncode == 0 and f"{len(runs)} runs" in offline.stdout, offline.stderr + offline.stdout
    # One run's history changed: named by its place in the chain.
    histories[0]["events"][2]["eventTime"] = "2020-01-01T00:00:00Z"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(histories))
    result = e2e.evac_json("audit", "verify", str(html), "--history", str(forged), expect=1)
    assert result["first_difference"].startswith("provenance.runs[0].history_sha256"), result
