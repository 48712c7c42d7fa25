"""The Evac worker: registers every workflow and activity on the task queue and runs them.

It polls two task queues: the run's own (workflows and every activity) and its writes queue
(``<task_queue>-writes``: the mutating activities only), whose rate limit, set by every worker to
``write_rate_limit``, Temporal enforces across all workers together, so that Evac keeps within
the project's API write quota however many workers run (docs/architecture.md, "Write rate limit").

Scale out by running more of these processes against the same Temporal namespace and task
queue. Stops gracefully on SIGTERM/SIGINT (in-flight activities get time to finish).

    python worker.py            # or: evac worker
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from activities.notify import NotificationTargets
from activities.registry import all_activities
from evac.config import MUTATING_ACTIVITIES, Settings, activity_name, connect_temporal, writes_task_queue
from evac.logging import configure_logging, forward_core_logs
from providers.gcp.clients import GcpClients
from workflows.registry import WORKFLOWS

# The Google Cloud clients are synchronous: the main worker runs at most this many activities at
# once, the writes worker ``write_concurrency`` mutations, in threads of one pool big enough for
# both (a mutation never waits for a thread, or its heartbeats would stop).
ACTIVITY_THREADS = 32


def executor_threads(settings: Settings) -> int:
    return ACTIVITY_THREADS + settings.write_concurrency


log = structlog.get_logger("evac.worker")


GRACEFUL_SHUTDOWN = timedelta(seconds=10)


class WritePacer:
    """Spaces the starts of one worker's writes at least ``1 / rate`` seconds apart.

    Temporal's task-queue rate limit is a token bucket whose burst is one second's worth: after
    a lull it hands out up to twice the rate within one second (docs/architecture.md, "Write
    rate limit"). The server's limit bounds all workers together over time; this bounds each
    worker's bursts, so that one worker never starts more than ``rate`` writes in any second.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = float("-inf")

    def reserve(self, now: float) -> float:
        """Take the next start slot; how long to wait for it from ``now``, in seconds."""
        at = max(now, self._next)
        self._next = at + self.interval
        return at - now

    async def wait(self) -> None:
        delay = self.reserve(asyncio.get_running_loop().time())
        if delay > 0:
            await asyncio.sleep(delay)


class PaceWrites(Interceptor):
    """Runs every activity of the worker it is given to through one :class:`WritePacer`."""

    def __init__(self, rate: float) -> None:
        self.pacer = WritePacer(rate)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _PacedActivity(next, self.pacer)


class _PacedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, pacer: WritePacer) -> None:
        super().__init__(next)
        self._pacer = pacer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        await self._pacer.wait()  # on the event loop, before the activity's thread starts
        return await super().execute_activity(input)


def build_workers(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> list[Worker]:
    """The main worker (workflows and every activity) and the writes worker (the mutating
    activities, at most ``settings.write_rate_limit`` started a second across all workers).
    ``executor`` has ``executor_threads(settings)`` threads: both run their activities in it."""
    clients = GcpClients.create(settings.gcp_endpoint, settings.gcp_project)
    activities = all_activities(
        clients,
        settings.prometheus_url,
        NotificationTargets(settings.notify_webhook_url, settings.slack_webhook_url, settings.temporal_ui),
        temporal_client=client,
        tsig_key_dir=Path(settings.tsig_key_dir).expanduser() if settings.tsig_key_dir else None,
    )
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        # Every activity, the mutating ones too (the workflows schedule mutations on the writes
        # queue only; registering them here as well is harmless).
        activities=activities,
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
    writes = Worker(
        client,
        task_queue=writes_task_queue(settings.task_queue),
        activities=[fn for fn in activities if activity_name(fn) in MUTATING_ACTIVITIES],
        activity_executor=executor,
        # Each waits for its cloud operation (seconds to a minute on Google Cloud): few slots
        # would bound the writes below the rate limit.
        max_concurrent_activities=settings.write_concurrency,
        # Enforced by the server for the queue as a whole, whichever worker polls; the pacer
        # smooths this worker's share of it (no burst).
        max_task_queue_activities_per_second=settings.write_rate_limit,
        interceptors=[PaceWrites(settings.write_rate_limit)],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
    return [main, writes]


async def run_worker(settings: Settings, address: str | None = None, namespace: str | None = None) -> None:
    client = await connect_temporal(address, namespace, identity=f"evac worker {os.getpid()}@{socket.gethostname()}")
    with ThreadPoolExecutor(max_workers=executor_threads(settings), thread_name_prefix="activity") as executor:
        workers = build_workers(client, settings, executor)
        loop = asyncio.get_running_loop()
        # Kept referenced: the event loop holds tasks weakly, and a collected shutdown task
        # would leave the worker running.
        shutdown: set[asyncio.Task[None]] = set()

        def stop() -> None:
            # A second signal gets the default action: the process stops at once.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log.info("shutting down; a second signal forces it")
            for worker in workers:
                task = asyncio.create_task(worker.shutdown())
                shutdown.add(task)
                task.add_done_callback(shutdown.discard)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            writes_task_queue=writes_task_queue(settings.task_queue),
            write_rate_limit=settings.write_rate_limit,
            write_concurrency=settings.write_concurrency,
            namespace=client.namespace,
            gcp_endpoint=settings.gcp_endpoint or "Google Cloud",
            gcp_project=settings.gcp_project or "any (from each run's topology)",
        )
        await _run_all(workers)
        log.info("worker stopped")


async def _run_all(workers: list[Worker]) -> None:
    """Run every worker until all have stopped; when one fails, shut the others down and raise."""
    runs = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        await asyncio.gather(*runs)
    except BaseException:
        for worker, run in zip(workers, runs, strict=True):
            if not run.done():
                await worker.shutdown()
        raise


def main(address: str | None = None, namespace: str | None = None) -> None:
    configure_logging()
    forward_core_logs()
    asyncio.run(run_worker(Settings.load(), address, namespace))


if __name__ == "__main__":
    main()
