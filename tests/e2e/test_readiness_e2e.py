"""`evac readiness check` as an operator runs it (issue 24), on the shared stack: the demo plan is
ready; revoking dns.changes.create from the worker, shrinking us-central1's CPU quota below the
scale-up, and renaming the backend service each make it not ready with a finding that names the
cause; restoring each makes it ready again; and no evaluation changes anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from emulator.requestlog import is_api_call, is_mutation
from evac.config import connect_temporal
from evac.control.readiness import latest_states
from tests.conftest import DEMO
from tests.e2e.conftest import E2E

PLAN = str(DEMO / "failover.yaml")


def check(e2e: E2E) -> tuple[int, dict[str, Any]]:
    result = e2e.evac("readiness", "check", PLAN, "--output", "json")
    assert result.returncode in (0, 1), result.stderr + result.stdout
    return result.returncode, json.loads(result.stdout)


async def latest_of_schedules(e2e: E2E) -> dict[str, dict[str, str]]:
    client = await connect_temporal(e2e.env["TEMPORAL_ADDRESS"], e2e.env.get("TEMPORAL_NAMESPACE", "default"))
    return {sid: dict(states) for sid, states in (await latest_states(client)).items()}


def findings(report: dict[str, Any]) -> list[str]:
    return [f"{f['resource']}: {f['text']}" for p in report["plans"] for s in p["services"] for f in s["findings"]]


NEVER_DRILLED = ": no passed drill on record; the drill policy (90d)"


def green(code: int, report: dict[str, Any]) -> bool:
    """Ready but for the one warning a fresh world has: its services were never drilled."""
    return code == 0 and report["state"] == "warnings" and set(findings(report)) == {NEVER_DRILLED}


def not_ready_then_ready(e2e: E2E, cause: str, breaks: Callable[[], None], mends: Callable[[], None]) -> None:
    breaks()
    code, report = check(e2e)
    assert (code, report["state"]) == (1, "not_ready"), report
    assert any(cause in line for line in findings(report)), findings(report)
    mends()
    code, report = check(e2e)
    assert green(code, report), findings(report)


def test_readiness_follows_what_a_run_would_meet_and_changes_nothing(e2e: E2E) -> None:
    code, report = check(e2e)
    assert green(code, report), findings(report)
    [plan] = report["plans"]
    assert [s["service"] for s in plan["services"]] == ["checkout", "catalog"]
    text = e2e.evac("readiness", "check", PLAN)
    assert text.returncode == 0 and "plan 'demo-failover': ready, with warnings" in text.stdout

    permission = "/emulator/v1/iam/permissions/dns.changes.create"
    not_ready_then_ready(
        e2e,
        "the worker's credentials lack dns.changes.create (for shift_dns)",
        lambda: e2e.admin.delete(permission).raise_for_status(),
        lambda: e2e.admin.put(permission).raise_for_status(),
    )
    cpus = e2e.admin.get("/emulator/v1/regions/us-central1/quotas").raise_for_status().json()["limits"]["CPUS"]
    not_ready_then_ready(
        e2e,
        "instance group us-central1/checkout-uc1: the scale-up to 3 needs 2 more instances; CPUS",
        lambda: e2e.admin.put("/emulator/v1/regions/us-central1/quotas", json={"CPUS": 4}).raise_for_status(),
        lambda: e2e.admin.put("/emulator/v1/regions/us-central1/quotas", json={"CPUS": cpus}).raise_for_status(),
    )
    rename = "/emulator/v1/backendServices/{}/rename"
    not_ready_then_ready(
        e2e,
        "checkout-backend",
        lambda: e2e.admin.post(rename.format("checkout-backend"), json={"to": "checkout-lb"}).raise_for_status(),
        lambda: e2e.admin.post(rename.format("checkout-lb"), json={"to": "checkout-backend"}).raise_for_status(),
    )
    # Seven evaluations, and the cloud saw reads only.
    assert not [r for r in e2e.requests() if is_api_call(r["path"]) and is_mutation(r["method"], r["path"])]

    # checkout passes a drill: within the drill policy now, catalog still never drilled.
    drilled = e2e.evac("drill", "--plan", str(DEMO / "drill.yaml"), "--bake", "1s", "--reason", "readiness e2e")
    assert drilled.returncode == 0, drilled.stderr + drilled.stdout[-2000:]
    code, report = check(e2e)
    [plan] = report["plans"]
    checkout, catalog = plan["services"]
    assert checkout["state"] == "ready", checkout
    assert any("the last passed drill (failover/checkout) ended" in line and "within the drill policy (90d)" in line
               for line in checkout["checked"]), checkout["checked"]  # fmt: skip
    assert [f["text"] for f in catalog["findings"]] == ["no passed drill on record; the drill policy (90d)"]

    # A run of the plan shows its latest evaluation before it starts.
    dry = e2e.evac("failover", "--plan", PLAN, "--dry-run", "--reason", "what would it meet")
    assert dry.returncode == 0, dry.stderr + dry.stdout[-2000:]
    said = " ".join(dry.stderr.split())  # stdout stays the run's
    assert "readiness at " in said and ": ready, with warnings" in said
    assert "catalog: warning: no passed drill on record; the drill policy (90d)" in said


def test_a_readiness_schedule_evaluates_says_since_when_and_is_paused_and_deleted(e2e: E2E, tmp_path) -> None:
    folder = tmp_path / "plans"
    folder.mkdir()
    for name in ("failover.yaml", "topology.yaml"):
        (folder / name).write_text((DEMO / name).read_text())

    def serve() -> dict[str, Any]:
        result = e2e.evac("readiness", "serve", "--plans", str(folder), "--every", "1h", "--name", "e2e", "--output", "json")
        assert result.returncode == 0, result.stderr + result.stdout
        return json.loads(result.stdout)

    def evaluated_after(moment: str | None) -> dict[str, Any]:
        """The status once an evaluation newer than ``moment`` has ended (serve starts one at once)."""
        found: dict[str, Any] = {}

        def newer() -> bool:
            result = e2e.evac("readiness", "status", "--name", "e2e", "--output", "json")
            assert result.returncode in (0, 1), result.stderr + result.stdout
            found.update(json.loads(result.stdout))
            return found["evaluated_at"] is not None and (moment is None or found["evaluated_at"] > moment)

        e2e.wait_for("an evaluation to end", newer, timeout=120)
        return found

    served = serve()
    assert (served["schedule_id"], served["plans_count"], served["every"]) == ("evac-readiness/e2e", 1, "PT1H")
    first = evaluated_after(None)
    [plan] = first["plans"]
    assert plan["state"] == "warnings" and plan["since"] <= first["evaluated_at"]

    e2e.admin.delete("/emulator/v1/iam/permissions/dns.changes.create").raise_for_status()
    serve()  # replaced, and evaluated at once
    broken = evaluated_after(first["evaluated_at"])
    [plan] = broken["plans"]
    assert plan["state"] == "not_ready" and plan["since"] > first["evaluated_at"]
    text = e2e.evac("readiness", "status", "--name", "e2e")
    assert text.returncode == 1
    assert "the worker's credentials lack dns.changes.create (for shift_dns)" in " ".join(text.stdout.split())

    # What the alert receiver's evac_plan_ready gauges read: the schedule's latest states.
    latest = asyncio.run(latest_of_schedules(e2e))
    assert latest["evac-readiness/e2e"] == {str(folder / "failover.yaml"): "not_ready"}

    paused = e2e.evac("readiness", "pause", "--name", "e2e", "--reason", "change freeze")
    assert paused.returncode == 0, paused.stderr
    assert "PAUSED: change freeze" in e2e.evac("readiness", "status", "--name", "e2e").stdout
    assert e2e.evac("readiness", "delete", "--name", "e2e").returncode == 0
    gone = e2e.evac("readiness", "status", "--name", "e2e")
    assert gone.returncode == 3 and "no readiness schedule 'e2e'" in gone.stdout + gone.stderr
