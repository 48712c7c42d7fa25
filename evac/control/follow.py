"""Following runs until they end, with every wait bounded.

Polls each run's record and yields what it saw. Transient trouble (Temporal unavailable or slow)
is waited out up to ``transient_wait``; a run that no worker answers for is waited for up to
``worker_wait`` (a worker restarting is normal; none for a minute is not), then
WorkerWaitExpired. Every other error ends the follow at once: waiting cannot mend it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from temporalio.client import Client

from evac.control.records import progress
from evac.errors import NoWorkerAnswered, TemporalUnavailable, WorkerWaitExpired
from evac.runs import FailoverProgress

POLL_SECONDS = 0.5
TRANSIENT_WAIT = 30.0


@dataclass(frozen=True)
class RunRef:
    workflow_id: str
    run_id: str | None = None


@dataclass
class Snapshot:
    """What a poll saw: the latest record of each run that has one, and what is being waited for."""

    records: dict[str, FailoverProgress] = field(default_factory=dict)
    waiting_for_worker: list[str] = field(default_factory=list)
    temporal_unavailable: str | None = None

    @property
    def done(self) -> bool:
        return not self.waiting_for_worker and all(r.status.finished for r in self.records.values())


async def follow(
    client: Client,
    runs: list[RunRef],
    *,
    worker_wait: float,
    transient_wait: float = TRANSIENT_WAIT,
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[Snapshot]:
    """Yield a snapshot after every poll, until every run has ended (the last snapshot says so)."""
    snapshot = Snapshot()
    no_worker_since: dict[str, float] = {}
    unavailable_since: float | None = None
    while True:
        snapshot.waiting_for_worker = []
        snapshot.temporal_unavailable = None
        for run in runs:
            if run.workflow_id in snapshot.records and snapshot.records[run.workflow_id].status.finished:
                continue
            asked = time.monotonic()
            try:
                snapshot.records[run.workflow_id] = await progress(client, run.workflow_id, run.run_id)
                no_worker_since.pop(run.workflow_id, None)
                unavailable_since = None
            except NoWorkerAnswered:
                since = no_worker_since.setdefault(run.workflow_id, asked)
                if time.monotonic() - since >= worker_wait:
                    waiting = sorted(no_worker_since)
                    raise WorkerWaitExpired(waiting, time.monotonic() - min(no_worker_since.values())) from None
                snapshot.waiting_for_worker.append(run.workflow_id)
            except TemporalUnavailable as exc:
                unavailable_since = unavailable_since or asked
                if time.monotonic() - unavailable_since >= transient_wait:
                    raise
                snapshot.temporal_unavailable = str(exc)
        yield snapshot
        if len(snapshot.records) == len(runs) and snapshot.done:
            return
        await asyncio.sleep(poll_seconds)
