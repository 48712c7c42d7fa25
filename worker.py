"""The Evac worker: registers every workflow and activity on the task queue and runs them.

Scale out by running more of these processes against the same Temporal namespace and task
queue. Stops gracefully on SIGTERM/SIGINT (in-flight activities get time to finish).

    python worker.py            # or: evac worker
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker

from activities.clients import GcpClients
from activities.notify import NotificationTargets
from activities.registry import all_activities
from evac.config import Settings, connect_temporal
from evac.logging import configure_logging
from workflows import WORKFLOWS

# The Google Cloud clients are synchronous: activities run in this many threads.
ACTIVITY_THREADS = 32

log = structlog.get_logger("evac.worker")


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    clients = GcpClients.create(settings.gcp_endpoint, settings.gcp_project)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=all_activities(
            clients,
            settings.prometheus_url,
            NotificationTargets(settings.notify_webhook_url, settings.slack_webhook_url, settings.temporal_ui),
            temporal_client=client,
        ),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings, address: str | None = None, namespace: str | None = None) -> None:
    client = await connect_temporal(address, namespace, identity=f"evac worker {os.getpid()}@{socket.gethostname()}")
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
        worker = build_worker(client, settings, executor)
        loop = asyncio.get_running_loop()
        # Kept referenced: the event loop holds tasks weakly, and a collected shutdown task
        # would leave the worker running.
        shutdown: set[asyncio.Task[None]] = set()

        def stop() -> None:
            # A second signal gets the default action: the process stops at once.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log.info("shutting down; a second signal forces it")
            task = asyncio.create_task(worker.shutdown())
            shutdown.add(task)
            task.add_done_callback(shutdown.discard)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            gcp_endpoint=settings.gcp_endpoint or "Google Cloud",
            gcp_project=settings.gcp_project or "any (from each run's topology)",
        )
        await worker.run()
        log.info("worker stopped")


def forward_core_logs() -> None:
    """The SDK's native core logs to stderr on its own; send its warnings through our logging
    so that the worker writes JSON lines only."""
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False)


def main(address: str | None = None, namespace: str | None = None) -> None:
    configure_logging()
    forward_core_logs()
    asyncio.run(run_worker(Settings.load(), address, namespace))


if __name__ == "__main__":
    main()
