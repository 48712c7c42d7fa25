"""`evac failback failover/<service>` (issue 19): a finished failover of the demo world is put back
after the fact, exactly as it was, and only that service; what cannot be failed back is refused
in one sentence."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEMO
from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e


def _backends(state: dict[str, Any], name: str) -> Any:
    return state["backendServices"][name]


def _rrset(state: dict[str, Any], record: str) -> Any:
    return next(r for r in state["managedZones"]["shop-zone"]["rrsets"] if r["name"] == record)


def test_a_finished_failover_is_failed_back_exactly_and_only_its_service(e2e: E2E):
    before = e2e.state()
    done = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "e2e: failover")
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    failed_over = e2e.state()
    assert _backends(failed_over, "checkout-backend") != _backends(before, "checkout-backend")

    back = e2e.evac_json("failback", "failover/checkout", "--reason", "e2e: the region is back")
    assert back["workflow_id"] == "failback/failover/checkout" and back["status"] == "succeeded"
    [service] = back["services"]
    assert service["service"] == "checkout" and service["status"] == "failed_back"
    after = e2e.state()
    # checkout: every change undone, newest first (DNS, both drains, the scale-up of us-central1).
    assert _backends(after, "checkout-backend") == _backends(before, "checkout-backend")
    assert _rrset(after, "checkout.shop.example.com.") == _rrset(before, "checkout.shop.example.com.")
    size = "us-central1/checkout-uc1"
    assert after["instanceGroupManagers"][size]["targetSize"] == before["instanceGroupManagers"][size]["targetSize"]
    # catalog was not asked for: it stays failed over.
    assert _backends(after, "catalog-backend") == _backends(failed_over, "catalog-backend")

    again = e2e.evac("failback", "failover/checkout", "--reason", "twice")
    assert again.returncode == 3 and "failed this run back already" in again.stderr, again.stderr
    wrong = e2e.evac("failback", "checkout", "--reason", "what")
    assert wrong.returncode == 2 and "name evacuation/<region> or failover/<service>" in wrong.stderr, wrong.stderr
