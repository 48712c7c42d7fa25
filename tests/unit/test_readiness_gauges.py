"""The alert receiver's readiness gauges (issue 24): ``evac_plan_ready`` per schedule and plan
from the latest evaluations, read at most every 30 s; a read that fails keeps the last values and
says so in ``evac_readiness_read_ok``, and never fails the scrape."""

from __future__ import annotations

from collections.abc import Mapping

from evac.alerting import receiver as receiving
from evac.alerting.receiver import ReceiverConfig, create_app
from tests.unit.test_alert_receiver import FakeSignaller, running


async def test_the_latest_evaluations_are_gauges_and_a_failed_read_keeps_them(monkeypatch) -> None:
    reads: list[str] = []
    states: dict[str, dict[str, str]] = {
        "evac-readiness/plans": {"plans/demo/failover.yaml": "not_ready", "plans/demo/drill.yaml": "warnings"}
    }

    async def source() -> Mapping[str, Mapping[str, str]]:
        reads.append("read")
        if len(reads) > 1:
            raise TimeoutError("Temporal did not answer")
        return states

    async with running(create_app(ReceiverConfig(token=None), FakeSignaller(), source)) as client:
        first = (await client.get("/metrics")).text
        again = (await client.get("/metrics")).text  # within 30 s: not read again
        monkeypatch.setattr(receiving, "READINESS_REFRESH_SECONDS", 0.0)
        failed = (await client.get("/metrics")).text

    assert 'evac_plan_ready{plan="plans/demo/failover.yaml",schedule="plans"} 0.0' in first
    assert 'evac_plan_ready{plan="plans/demo/drill.yaml",schedule="plans"} 1.0' in first
    assert "evac_readiness_read_ok 1.0" in first
    assert again == first  # served from the first read
    assert len(reads) == 2  # the first, and the one that failed
    assert 'evac_plan_ready{plan="plans/demo/failover.yaml",schedule="plans"} 0.0' in failed
    assert "evac_readiness_read_ok 0.0" in failed


async def test_without_a_readiness_source_there_are_no_readiness_gauges() -> None:
    async with running(create_app(ReceiverConfig(token=None), FakeSignaller())) as client:
        text = (await client.get("/metrics")).text
    assert "evac_plan_ready" not in text and "evac_readiness_read_ok" not in text
