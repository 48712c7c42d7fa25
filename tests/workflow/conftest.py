"""Workflow tests run on Temporal's time-skipping test server: hours of bake time take ms."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from evac import search_attributes
from evac.config import MUTATING_ACTIVITIES, activity_name, writes_task_queue
from evac.stack import find_binary
from workflows.registry import WORKFLOWS


async def start_test_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=find_binary("temporal-test-server")
    )


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server needs custom search attributes registered up front."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(search_attributes.indexed_value_type(key)) for key in search_attributes.ALL
            },
        )
    )


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        yield env


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of the test's own, for a test that leaves an activity abandoned (a read
    that a cancelled run no longer waits for): the test server counts such an activity as
    running until its timeout and skips no time meanwhile, which would stall later tests."""
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        yield env


@pytest.fixture
def task_queue() -> str:
    return f"evac-test-{uuid.uuid4()}"


def is_mutating(activity: Callable[..., object]) -> bool:
    return activity_name(activity) in MUTATING_ACTIVITIES


@asynccontextmanager
async def running_worker(
    client: Client, task_queue: str, activities: list[Callable[..., object]], **options: Any
) -> AsyncIterator[Worker]:
    """One helper for every test: the real workflows with the given stand-in activities.

    As worker.py does, a second worker serves the writes queue with the mutating stand-ins;
    unlike it, the main worker does not have them, so a mutation scheduled anywhere but on the
    writes queue fails the test (no worker could run it). ``options`` go to the main worker.

    Heartbeats are sent at once (not throttled to 80% of the heartbeat timeout) so that a
    cancellation reaches a heartbeating stand-in within a test's patience.
    """
    heartbeats: dict[str, Any] = {
        "max_heartbeat_throttle_interval": timedelta(milliseconds=50),
        "default_heartbeat_throttle_interval": timedelta(milliseconds=50),
    }
    writes = [a for a in activities if is_mutating(a)]
    async with AsyncExitStack() as stack:
        worker = await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=WORKFLOWS,
                activities=[a for a in activities if not is_mutating(a)],
                **{**heartbeats, **options},
            )
        )
        if writes:
            await stack.enter_async_context(
                Worker(client, task_queue=writes_task_queue(task_queue), activities=writes, **heartbeats)
            )
        yield worker


async def asleep(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the workflow's newest run waits with nothing in flight: running, no activity
    pending, every workflow task it was given completed. On the time-skipping server a cancel
    or a signal that races an activity's completion or a continue-as-new can wedge the run;
    tests that send one wait for this first."""
    description = await handle.describe()
    if description.status is None or description.status.name != "RUNNING":
        return False
    if description.raw_description.pending_activities:
        return False
    events = [event async for event in handle.fetch_history_events()]
    scheduled = sum(1 for e in events if e.HasField("workflow_task_scheduled_event_attributes"))
    ended = sum(
        1
        for e in events
        if e.HasField("workflow_task_completed_event_attributes")
        or e.HasField("workflow_task_failed_event_attributes")
        or e.HasField("workflow_task_timed_out_event_attributes")
    )
    return scheduled == ended
