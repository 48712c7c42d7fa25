"""Aborts as an operator sends them, against the dev server, the emulator and a real worker.

The defect this guards against: an abort sent while a mutating step was in flight was
swallowed, and the run went on to drain the source and move DNS.
"""

from __future__ import annotations

from typing import Any

from emulator.requestlog import is_api_call, is_mutation
from tests.e2e.conftest import E2E


def mutations(e2e: E2E) -> list[dict[str, Any]]:
    return [r for r in e2e.requests() if is_api_call(r["path"]) and is_mutation(r["method"], r["path"])]


def test_an_abort_during_the_scale_up_stops_the_run_before_any_traffic_moves(e2e: E2E, bake_plan):
    before = e2e.state()
    # The resize's first operation poll answers after 10 s: the scale step is still running when
    # the abort (a CLI process of its own, slow to start on a busy machine) arrives.
    slow = {"method": "GET", "path": "*/operations/*", "latency": 10, "count": 1}
    e2e.admin.post("/emulator/v1/faults", json=slow).raise_for_status()
    try:
        started = e2e.evac("failover", "--plan", str(bake_plan), "--no-wait", "--reason", "e2e abort")
        assert started.returncode == 0, started.stderr + started.stdout
        e2e.wait_for("the resize to be sent", lambda: any(r["path"].endswith("/resize") for r in mutations(e2e)))
        aborted = e2e.evac("abort", "checkout", "--reason", "abort mid-resize")
        assert aborted.returncode == 0, aborted.stderr + aborted.stdout
        final = e2e.evac_json("status", "checkout", "--watch", expect=1)
    finally:
        e2e.admin.delete("/emulator/v1/faults")

    assert final["status"] == "cancelled"
    assert final["error"].endswith(": abort mid-resize")
    assert final["steps"][0]["status"] == "compensated"
    assert [s["status"] for s in final["steps"][1:]] == ["not_run"] * 4
    # Only the resize and its undo reached the cloud: no drain, no DNS change.
    paths = [r["path"] for r in mutations(e2e)]
    assert paths and all(p.endswith("/resize") for p in paths), paths
    assert e2e.state() == before


def test_an_abort_during_preflight_ends_cancelled_with_who_and_why(e2e: E2E, bake_plan):
    before = e2e.state()
    # Slow reads: the preflight is still reading when the abort arrives.
    fault = {"method": "GET", "path": "*/backendServices/*", "latency": 4, "count": 4}
    e2e.admin.post("/emulator/v1/faults", json=fault).raise_for_status()
    try:
        started = e2e.evac("failover", "--plan", str(bake_plan), "--no-wait", "--reason", "e2e preflight")
        assert started.returncode == 0, started.stderr + started.stdout
        aborted = e2e.evac("abort", "checkout", "--reason", "wrong plan")
        assert aborted.returncode == 0, aborted.stderr + aborted.stdout
        final = e2e.evac_json("status", "checkout", "--watch", expect=1)
    finally:
        e2e.admin.delete("/emulator/v1/faults")

    assert final["status"] == "cancelled"
    assert final["preflight"] == "aborted"
    assert final["error"].endswith(": wrong plan") and final["error"].startswith("aborted by ")
    assert [s["status"] for s in final["steps"]] == ["not_run"] * 5
    assert mutations(e2e) == []
    assert e2e.state() == before
