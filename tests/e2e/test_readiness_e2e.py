"""`evac readiness check` as an operator runs it (issue 24), on the shared stack: the demo plan is
ready; revoking dns.changes.create from the worker, shrinking us-central1's CPU quota below the
scale-up, and renaming the backend service each make it not ready with a finding that names the
cause; restoring each makes it ready again; and no evaluation changes anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from emulator.requestlog import is_api_call, is_mutation
from tests.conftest import DEMO
from tests.e2e.conftest import E2E

PLAN = str(DEMO / "failover.yaml")


def check(e2e: E2E) -> tuple[int, dict[str, Any]]:
    result = e2e.evac("readiness", "check", PLAN, "--output", "json")
    assert result.returncode in (0, 1), result.stderr + result.stdout
    return result.returncode, json.loads(result.stdout)


def findings(report: dict[str, Any]) -> list[str]:
    return [f"{f['resource']}: {f['text']}" for p in report["plans"] for s in p["services"] for f in s["findings"]]


def not_ready_then_ready(e2e: E2E, cause: str, breaks: Callable[[], None], mends: Callable[[], None]) -> None:
    breaks()
    code, report = check(e2e)
    assert (code, report["state"]) == (1, "not_ready"), report
    assert any(cause in line for line in findings(report)), findings(report)
    mends()
    code, report = check(e2e)
    assert (code, report["state"]) == (0, "ready"), findings(report)


def test_readiness_follows_what_a_run_would_meet_and_changes_nothing(e2e: E2E) -> None:
    code, report = check(e2e)
    assert (code, report["state"]) == (0, "ready"), findings(report)
    [plan] = report["plans"]
    assert [s["service"] for s in plan["services"]] == ["checkout", "catalog"]
    text = e2e.evac("readiness", "check", PLAN)
    assert text.returncode == 0 and "plan 'demo-failover': ready" in text.stdout

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
