"""The alert receiver's readiness gauges (issue 24): ``evac_plan_ready`` per schedule and plan
from the latest evaluations, read at most every ``readiness_refresh`` (30 s by default); a read
that fails keeps the last values and says so in ``evac_readiness_read_ok``, and never fails the
scrape."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from evac.alerting.receiver import ReadinessSource, ReceiverConfig, create_app
from evac.config import ConfigError, Settings
from tests.unit.test_alert_receiver import FakeSignaller, running


def reading(states: Mapping[str, Mapping[str, str]], reads: list[str], fail_after: int = 1_000_000) -> ReadinessSource:
    """A readiness source that counts its reads and fails (as a Temporal that does not answer) after ``fail_after``."""

    async def source() -> Mapping[str, Mapping[str, str]]:
        reads.append("read")
        if len(reads) > fail_after:
            raise TimeoutError("Temporal did not answer")
        return states

    return source


STATES = {"evac-readiness/plans": {"plans/demo/failover.yaml": "not_ready", "plans/demo/drill.yaml": "warnings"}}


async def test_the_latest_evaluations_are_gauges_read_at_most_every_30_seconds() -> None:
    reads: list[str] = []
    async with running(create_app(ReceiverConfig(token=None), FakeSignaller(), reading(STATES, reads))) as client:
        first = (await client.get("/metrics")).text
        again = (await client.get("/metrics")).text  # within 30 s: not read again

    assert 'evac_plan_ready{plan="plans/demo/failover.yaml",schedule="plans"} 0.0' in first
    assert 'evac_plan_ready{plan="plans/demo/drill.yaml",schedule="plans"} 1.0' in first
    assert "evac_readiness_read_ok 1.0" in first
    assert again == first and len(reads) == 1  # served from the first read


async def test_a_failed_read_keeps_the_gauges_and_says_so() -> None:
    reads: list[str] = []
    config = ReceiverConfig(token=None, readiness_refresh=0)  # the readiness_refresh setting: read at every scrape
    async with running(create_app(config, FakeSignaller(), reading(STATES, reads, fail_after=1))) as client:
        first = (await client.get("/metrics")).text
        failed = (await client.get("/metrics")).text

    assert "evac_readiness_read_ok 1.0" in first
    assert len(reads) == 2  # the first, and the one that failed
    assert 'evac_plan_ready{plan="plans/demo/failover.yaml",schedule="plans"} 0.0' in failed
    assert "evac_readiness_read_ok 0.0" in failed


def test_the_refresh_is_a_setting_from_0_to_3600_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("EVAC_READINESS_REFRESH", raising=False)
    assert Settings.load().readiness_refresh == 30.0
    (tmp_path / "config.toml").write_text("readiness_refresh = 120\n")
    assert Settings.load().readiness_refresh == 120.0
    monkeypatch.setenv("EVAC_READINESS_REFRESH", "2.5")
    assert Settings.load().readiness_refresh == 2.5
    for bad in ("soon", "-1", "3601", "nan"):
        monkeypatch.setenv("EVAC_READINESS_REFRESH", bad)
        with pytest.raises(ConfigError, match=r"readiness_refresh \(EVAC_READINESS_REFRESH or "):
            Settings.load()


async def test_without_a_readiness_source_there_are_no_readiness_gauges() -> None:
    async with running(create_app(ReceiverConfig(token=None), FakeSignaller())) as client:
        text = (await client.get("/metrics")).text
    assert "evac_plan_ready" not in text and "evac_readiness_read_ok" not in text
