"""Every mutation and every undo is scheduled on the writes queue, whose rate limit all workers
share; reads stay on the run's own queue. (``running_worker`` registers the mutating stand-ins
on the writes queue only, so a mutation scheduled elsewhere would find no worker at all.)"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError

from evac.config import MUTATING_ACTIVITIES, Settings, writes_task_queue
from evac.resources import ActivityName
from evac.runs import RunStatus
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, refuse_the_dns_shift, start
from worker import ACTIVITY_THREADS, build_workers, executor_threads

READS = (
    ActivityName.READ_BACKEND_CAPACITY,
    ActivityName.READ_GROUP_SIZE,
    ActivityName.READ_DNS_RECORD,
    ActivityName.WAIT_FOR_HEALTHY,
)


def record_queues(cloud: FakeCloud) -> list[tuple[str, str]]:
    """(activity, task queue) of every mutation and read the stand-ins take, in order."""
    seen: list[tuple[str, str]] = []
    for name in [*MUTATING_ACTIVITIES, *READS]:
        failing = cloud.failures.get(name)

        def check(
            input: object, name: str = name, failing: Callable[[object], Exception | None] | None = failing
        ) -> Exception | None:
            seen.append((name, activity.info().task_queue))
            return failing(input) if failing else None

        cloud.failures[name] = check
    return seen


async def test_the_mutations_of_a_run_go_to_the_writes_queue_and_its_reads_to_its_own(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    seen = record_queues(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        result = await (await start(env, task_queue, make_plan(), demo_topology)).result()

    assert result.status == RunStatus.SUCCEEDED
    mutations = [(name, queue) for name, queue in seen if name in MUTATING_ACTIVITIES]
    assert [name for name, _ in mutations] == [
        ActivityName.RESIZE_GROUP,
        ActivityName.SET_BACKEND_CAPACITY,
        ActivityName.SET_DNS_RECORD,
    ]
    assert {queue for _, queue in mutations} == {writes_task_queue(task_queue)}
    # The verify step's health wait at least, whatever reads the engine makes as activities.
    assert (ActivityName.WAIT_FOR_HEALTHY, task_queue) in seen
    assert {queue for name, queue in seen if name in READS} == {task_queue}


async def test_the_undos_of_a_rolled_back_run_go_to_the_writes_queue_too(env, task_queue, demo_topology):
    cloud = fresh_cloud()
    before = cloud.snapshot()
    refuse_the_dns_shift(cloud)
    seen = record_queues(cloud)
    async with running_worker(env.client, task_queue, cloud.activities()):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    assert cloud.snapshot() == before  # every change undone
    mutations = [(name, queue) for name, queue in seen if name in MUTATING_ACTIVITIES]
    # scale, drain, the refused DNS shift; then its undo, the drain's and the scale's.
    assert len(mutations) == 6
    assert {queue for _, queue in mutations} == {writes_task_queue(task_queue)}


async def test_the_worker_runs_write_concurrency_mutations_at_once_within_the_rate_limit(env):
    """What the worker process builds: a main worker of ACTIVITY_THREADS activities, a writes
    worker of ``write_concurrency`` mutations rate-limited to ``write_rate_limit``, and threads
    enough for both."""
    settings = replace(
        Settings(), task_queue="evac-build", gcp_endpoint="http://127.0.0.1:9", write_rate_limit=12.0, write_concurrency=300
    )
    with ThreadPoolExecutor(max_workers=executor_threads(settings)) as executor:
        main, writes = build_workers(env.client, settings, executor)
    assert main.config()["task_queue"] == "evac-build"
    assert main.config()["max_concurrent_activities"] == ACTIVITY_THREADS
    assert writes.config()["task_queue"] == writes_task_queue("evac-build")
    assert writes.config()["max_concurrent_activities"] == 300
    assert writes.config()["max_task_queue_activities_per_second"] == 12.0
    assert executor_threads(settings) == ACTIVITY_THREADS + 300
