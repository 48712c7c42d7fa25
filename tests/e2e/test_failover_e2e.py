"""The failover as a user runs it: dev server, emulator, worker and the evac CLI."""

from __future__ import annotations

import json
import os
import signal

from tests.conftest import DEMO, REGIONAL
from tests.e2e.conftest import E2E, record, scaler

SOURCE_BACKENDS = {"checkout-backend": "checkout-ew1", "catalog-backend": "catalog-ew1"}
TARGET_ADDRESSES = {"checkout.shop.example.com.": "198.51.100.10", "catalog.shop.example.com.": "198.51.100.20"}


def test_the_demo_plan_drains_the_source_and_moves_dns_to_the_target(e2e: E2E):
    results = e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--wait", "--reason", "e2e")

    assert {r["service"]: r["status"] for r in results} == {"checkout": "succeeded", "catalog": "succeeded"}
    assert all(step["status"] == "succeeded" for r in results for step in r["steps"])
    assert all(r["trigger"]["reason"] == "e2e" and r["plan_digest"] for r in results)
    state = e2e.state()
    for backend_service, group in SOURCE_BACKENDS.items():
        assert scaler(state, backend_service, group) == 0.0
    for name, address in TARGET_ADDRESSES.items():
        assert record(state, name) == [address]
    assert state["instanceGroupManagers"]["us-central1/checkout-uc1"]["targetSize"] == 3
    # `evac status` tells the same story after the run.
    status = e2e.evac_json("status", "failover/checkout")
    assert status["status"] == "succeeded" and len(status["steps"]) == 7


def test_an_aborted_run_leaves_the_world_exactly_as_it_was(e2e: E2E, bake_plan):
    before = e2e.state()
    started = e2e.evac("failover", "--plan", str(bake_plan), "--no-wait", "--reason", "e2e drill")
    assert started.returncode == 0, started.stderr
    e2e.wait_for("the bake step", lambda: e2e.step_status("checkout", 4) == "running")
    assert e2e.state() != before  # drained and shifted by now

    # A second run for the same service is refused while this one holds it.
    second = e2e.evac("failover", "--plan", str(bake_plan), "--no-wait", "--reason", "e2e second")
    assert second.returncode == 3
    assert "already has a failover running: failover/checkout" in second.stderr
    assert "Traceback" not in second.stderr

    aborted = e2e.evac("abort", "failover/checkout", "--reason", "drill over")
    assert aborted.returncode == 0, aborted.stderr
    final = e2e.evac_json("status", "failover/checkout", "--watch", expect=1)

    assert final["status"] == "cancelled"
    assert final["error"].endswith(": drill over")
    assert [s["status"] for s in final["steps"]] == ["compensated", "succeeded", "compensated", "compensated", "aborted"]
    assert e2e.state() == before
    # What the screen shows: the undo's own change, and the bake step aborted (not failed).
    shown = e2e.evac("status", "checkout")
    assert shown.returncode == 1, shown.stderr  # as with --watch: the run did not succeed
    lines = {line.split("│")[2].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 5}
    assert "restored size 3 → size 1" in lines["scale"]
    assert "restored scaler 0 → scaler 1" in lines["drain"]
    assert "aborted" in lines["bake"] and "failed" not in lines["bake"]


def test_a_worker_killed_mid_step_is_replaced_and_the_run_completes_without_double_mutations(e2e: E2E, bake_plan, tmp_path):
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    plan = tmp_path / "short-drill.yaml"
    plan.write_text(bake_plan.read_text().replace("duration: 10m", "duration: 1s"))
    e2e.evac("failover", "--plan", str(plan), "--no-wait", "--reason", "e2e worker killed")
    # Kill the worker while the resize waits for the new instances to warm up.
    e2e.wait_for(
        "the resize to be sent",
        lambda: any(r["path"].endswith("/resize") for r in e2e.requests()),
    )
    worker = e2e.stack.processes["worker"]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    e2e.stack.start_worker()

    final = e2e.evac_json("status", "failover/checkout", "--watch")

    assert final["status"] == "succeeded"
    scale = final["steps"][0]
    assert scale["before"]["target_size"] == 1 and scale["after"]["target_size"] == 3
    assert scale["attempts"] >= 2  # the step's activity was retried on the new worker
    applied = [(r["method"], r["path"]) for r in e2e.requests() if r["effect"] == "applied"]
    assert len(applied) == len(set(applied)) == 3  # resize, patch, DNS change: each once


def test_throttling_is_retried_by_temporal_and_the_run_still_completes(e2e: E2E):
    fault = {"method": "PATCH", "path": "*/backendServices/checkout-backend", "status": 503, "count": 2}
    e2e.admin.post("/emulator/v1/faults", json=fault).raise_for_status()

    results = e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e throttled")

    checkout = next(r for r in results if r["service"] == "checkout")
    assert checkout["status"] == "succeeded"
    first_drain = checkout["steps"][2]
    assert first_drain["status"] == "succeeded" and first_drain["attempts"] == 3
    refused = [r for r in e2e.requests() if r["method"] == "PATCH" and r["status"] == 503]
    assert len(refused) == 2


def test_an_outage_in_the_target_fails_verify_health_and_the_run_rolls_back(e2e: E2E, tmp_path):
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    plan = tmp_path / "into-outage.yaml"
    plan.write_text(
        (DEMO / "bake.yaml").read_text().replace("timeout: 1m", "timeout: 3s").replace("duration: 10m", "duration: 1s")
    )
    e2e.admin.post("/emulator/v1/regions/us-central1/outage").raise_for_status()
    before = e2e.state()

    result = e2e.evac("failover", "--plan", str(plan), "--reason", "e2e outage", "--output", "json")

    assert result.returncode == 1, result.stderr
    [run] = json.loads(result.stdout)
    assert run["status"] == "rolled_back"
    assert run["error"].startswith("us-central1: only 0/3 backends healthy after")
    assert [s["status"] for s in run["steps"]] == ["compensated", "failed", "not_run", "not_run", "not_run"]
    assert e2e.state() == before  # the scale-up was undone; nothing was drained or shifted
    # `evac status` and `evac status --watch` agree on the ended run: exit 1.
    assert e2e.evac("status", "checkout").returncode == 1
    assert e2e.evac("status", "checkout", "--watch").returncode == 1


def test_cli_errors_are_one_sentence_with_a_meaningful_exit_code(e2e: E2E, tmp_path):
    unknown = e2e.evac("status", "no-such-service")
    assert unknown.returncode == 3
    assert "no failover run 'failover/no-such-service'" in unknown.stderr

    e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e")
    ended = e2e.evac("abort", "checkout", "--reason", "too late")
    assert ended.returncode == 3
    assert "has already ended; there is nothing to abort" in ended.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text((DEMO / "failover.yaml").read_text().replace("target: us-central1", "target: europe-west1"))
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    refused = e2e.evac("failover", "--plan", str(bad), "--reason", "e2e")
    assert refused.returncode == 2
    assert "nothing was started" in refused.stderr
    assert f"{bad}:" in refused.stderr and "target" in refused.stderr

    for result in (unknown, ended, refused):
        assert "Traceback" not in result.stderr + result.stdout


def test_regional_load_balancers_with_zonal_groups_fail_over_by_dns(e2e: E2E):
    results = e2e.evac_json("failover", "--plan", str(REGIONAL / "failover.yaml"), "--reason", "e2e regional")

    [run] = results
    assert run["status"] == "succeeded", run["error"]
    scale = run["steps"][0]
    assert (scale["before"]["target_size"], scale["after"]["target_size"]) == (1, 3)
    assert scale["resource"] == "instance group us-central1-a/payments-uc1-a"
    state = e2e.state()
    assert record(state, "api.pay.example.com.", zone="pay-zone") == ["198.51.100.50"]


def test_worker_log_lines_are_json_with_run_service_and_step(e2e: E2E):
    e2e.evac_json("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e logs")

    # Every line is JSON (the SDK core's own warnings are forwarded through the same logging).
    lines = [json.loads(line) for line in e2e.stack.log_path("worker").read_text().splitlines()]
    ours = [line for line in lines if line["logger"] == "evac.activity"]
    step_lines = [line for line in lines if line["event"] in ("step started", "step succeeded")]
    assert ours and step_lines
    for line in ours + step_lines:
        assert line["workflow_id"].startswith(("failover/", "dry-run/")), line
        assert line["run_id"] and line["service"] in ("checkout", "catalog", "payments") and line["step"], line
    # The SDK's own lines about activities (a retried 503, say) name the run and service too.
    for line in lines:
        if "activity" in line:
            assert line["workflow_id"] and line["run_id"] and line["service"], line
