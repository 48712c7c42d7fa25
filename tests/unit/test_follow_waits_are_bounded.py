"""Following runs: transient trouble is waited out within a bound, a permanent refusal ends the
follow at once, and a run no worker answers for is given up on after ``worker_wait``."""

from __future__ import annotations

import importlib
import time
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from evac.cli.run import _url
from evac.config import Settings
from evac.control.follow import RunRef, follow
from evac.errors import NoWorkerAnswered, TemporalRefused, TemporalUnavailable, WorkerWaitExpired, from_rpc

RUN = [RunRef("failover/checkout")]
follow_module = importlib.import_module("evac.control.follow")  # the module, not the function evac.control exports


def failing_with(error: Exception) -> Any:
    calls = []

    async def progress(client: Any, workflow_id: str, run_id: str | None) -> Any:
        calls.append(time.monotonic())
        raise error

    progress.calls = calls  # type: ignore[attr-defined]
    return progress


async def drain(**options: Any) -> None:
    async for _ in follow(SimpleNamespace(namespace="default"), RUN, poll_seconds=0.01, **options):  # type: ignore[arg-type]
        pass


async def test_a_permanent_refusal_ends_the_follow_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    denied = from_rpc(RPCError("not allowed", RPCStatusCode.PERMISSION_DENIED, b""), namespace="default")
    assert isinstance(denied, TemporalRefused)
    progress = failing_with(denied)
    monkeypatch.setattr(follow_module, "progress", progress)
    with pytest.raises(TemporalRefused, match="Temporal refused the request: not allowed"):
        await drain(worker_wait=60, transient_wait=60)
    assert len(progress.calls) == 1


async def test_transient_unavailability_is_waited_out_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = from_rpc(RPCError("overloaded", RPCStatusCode.UNAVAILABLE, b""), namespace="default")
    assert isinstance(busy, TemporalUnavailable)
    progress = failing_with(busy)
    monkeypatch.setattr(follow_module, "progress", progress)
    started = time.monotonic()
    with pytest.raises(TemporalUnavailable):
        await drain(worker_wait=60, transient_wait=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert len(progress.calls) > 2  # it did try again meanwhile


async def test_no_worker_is_given_up_on_after_worker_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_module, "progress", failing_with(NoWorkerAnswered("failover/checkout")))
    started = time.monotonic()
    with pytest.raises(WorkerWaitExpired, match="the run exists"):
        await drain(worker_wait=0.3, transient_wait=60)
    assert time.monotonic() - started < 5


def test_web_ui_links_name_the_namespace_the_client_is_connected_to() -> None:
    client = SimpleNamespace(namespace="prod-eu")  # e.g. from TEMPORAL_NAMESPACE or a profile, not --namespace
    url = _url(Settings(temporal_ui="https://ui.example"), client, "failover/checkout", "run-1")  # type: ignore[arg-type]
    assert url == "https://ui.example/namespaces/prod-eu/workflows/failover%2Fcheckout/run-1/history"
