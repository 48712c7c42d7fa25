"""Reading a run as it is and acting on it: its record, its Temporal status, workers, abort.

A run's record (:class:`FailoverProgress`) comes from the workflow's ``progress`` query while it
runs (a worker answers), and from the memo it leaves when it ends (no worker needed). Temporal's
own status has the last word: a run terminated or timed out in Temporal never wrote an ending,
so its record is completed from the history (who ended it, why) and shows what it left changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from evac import workflow_types
from evac.config import writes_task_queue
from evac.errors import NotRunning, NoWorkerAnswered, RunNotFound, from_rpc
from evac.evacuation import EvacuationStatus
from evac.runs import (
    MEMO_PROGRESS,
    AbortRequest,
    DrillInput,
    FailoverInput,
    FailoverProgress,
    RunStatus,
    ended_by_temporal,
)
from workflows.failover import FailoverWorkflow

# A query waits for a worker; past this, the run's record is read from Temporal instead.
QUERY_TIMEOUT = timedelta(seconds=5)
# A worker long-polls its task queue; one seen polling this recently is there.
POLLER_FRESH = timedelta(seconds=90)

# Temporal's status of a run that the workflow itself did not end (it wrote no final record).
ENDED_BY_TEMPORAL = {
    WorkflowExecutionStatus.TERMINATED: RunStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: RunStatus.TIMED_OUT,
    WorkflowExecutionStatus.FAILED: RunStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: RunStatus.CANCELLED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: RunStatus.TERMINATED,
}


def handle(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHandle[FailoverWorkflow, FailoverProgress]:
    return client.get_workflow_handle_for(FailoverWorkflow.run, workflow_id, run_id=run_id)


async def describe(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowExecutionDescription:
    try:
        return await handle(client, workflow_id, run_id).describe()
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id, run_id=run_id) from exc


async def running_run_id(client: Client, workflow_id: str) -> str | None:
    """The run id of the running execution under ``workflow_id``, or None (none, or ended)."""
    try:
        description = await describe(client, workflow_id)
    except RunNotFound:
        return None
    return description.run_id if description.status == WorkflowExecutionStatus.RUNNING else None


async def worker_polling(client: Client, task_queue: str) -> bool:
    """Whether workers have polled lately both the task queue for workflow tasks and its writes
    queue (``<task_queue>-writes``) for the mutating activities, without which a run would hang at
    its first change (Temporal's task-queue description lists the pollers and when each last polled)."""
    polled = await asyncio.gather(
        _polled(client, task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        _polled(client, writes_task_queue(task_queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    )
    return all(polled)


async def _polled(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> bool:
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=kind,
    )
    try:
        response = await client.workflow_service.describe_task_queue(request)
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return True  # a server that cannot tell (the time-skipping test server): let the query decide
        raise from_rpc(exc, namespace=client.namespace) from exc
    now = datetime.now(UTC)
    return any(now - poller.last_access_time.ToDatetime(tzinfo=UTC) < POLLER_FRESH for poller in response.pollers)


class EndedRecord(Protocol):
    """What every kind of record has: a status that says whether it ended."""

    @property
    def status(self) -> RunStatus | EvacuationStatus: ...


R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class RecordSource(Generic[R]):
    """How one kind of workflow's record is read: its model and its query, and how a record is
    built when the workflow wrote none (from its input; completed from how Temporal ended it)."""

    model: type[R]
    query: Callable[..., R]
    from_input: Callable[[Client, WorkflowHandle[Any, Any], WorkflowExecutionDescription], Awaitable[R]]
    ended_by_temporal: Callable[[R, WorkflowExecutionDescription, WorkflowHandle[Any, Any]], Awaitable[R]]


async def read_record(client: Client, description: WorkflowExecutionDescription, source: RecordSource[R]) -> R:
    """The record of the run ``description`` describes: live while it runs (a worker answers),
    final once it ended. Raises NoWorkerAnswered when a running run's record needs a worker and
    none answered."""
    workflow_id, run_id = description.id, description.run_id
    workflow: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=run_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        if not await worker_polling(client, description.task_queue):  # answer at once, not at the query's timeout
            raise NoWorkerAnswered(workflow_id, f"no worker polls task queue '{description.task_queue}'")
        record = await _query(client, workflow, source)
        if record is None:
            raise NoWorkerAnswered(workflow_id, f"nothing answered in {QUERY_TIMEOUT.total_seconds():.0f}s")
        return record
    record = await _recorded(description, workflow, source.model)
    if record is None and await worker_polling(client, description.task_queue):
        record = await _query(client, workflow, source)
    if record is None:
        record = await source.from_input(client, workflow, description)
    if not cast(EndedRecord, record).status.finished:
        record = await source.ended_by_temporal(record, description, workflow)
    return record


async def progress(client: Client, workflow_id: str, run_id: str | None = None) -> FailoverProgress:
    """A failover's or drill's record (see :func:`read_record`)."""
    return await read_record(client, await describe(client, workflow_id, run_id), FAILOVER_RECORD)


async def _query(client: Client, workflow: WorkflowHandle[Any, Any], source: RecordSource[R]) -> R | None:
    """The workflow's query's answer; None when no worker answered in time."""
    try:
        answer = await workflow.query(source.query, rpc_timeout=QUERY_TIMEOUT)
    except WorkflowQueryFailedError:
        return None  # the worker could not answer (a workflow task failing): as good as none
    except RPCError as exc:
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return None
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow.id, run_id=workflow.run_id) from exc
    return source.model.model_validate(answer)


async def _recorded(description: WorkflowExecutionDescription, workflow: WorkflowHandle[Any, Any], model: type[R]) -> R | None:
    """An ended run's record without a worker: its memo, or (runs from before the memo) its
    result or its failure's details."""
    recorded = await description.memo_value(MEMO_PROGRESS, None, type_hint=model)
    if recorded is not None:
        return recorded
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return model.model_validate(await workflow.result())
    if description.status == WorkflowExecutionStatus.FAILED:
        try:
            await workflow.result()
        except WorkflowFailureError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
                return model.model_validate(cause.details[0])
    return None


async def _from_input(
    client: Client, workflow: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> FailoverProgress:
    """A record built from the run's input alone: its steps, none of them known to have run."""
    async for event in workflow.fetch_history_events(page_size=1):
        attributes = event.workflow_execution_started_event_attributes
        drill = description.workflow_type == workflow_types.DRILL
        [input] = await client.data_converter.decode(attributes.input.payloads, [DrillInput if drill else FailoverInput])
        record = FailoverProgress.for_input(input, description.id, description.run_id)
        record.started_at = description.start_time
        return record
    raise RunNotFound(description.id, description.run_id)


async def _ended_by_temporal(
    record: FailoverProgress, description: WorkflowExecutionDescription, workflow: WorkflowHandle[Any, Any]
) -> FailoverProgress:
    """The record of a run that Temporal ended (terminate, timeout) before the workflow wrote
    its ending: Temporal's status, who ended it and why, and what its steps left changed."""
    status = ENDED_BY_TEMPORAL.get(description.status, RunStatus.TERMINATED)  # type: ignore[arg-type]
    why = f"{description.status.name.lower() if description.status else 'ended'} in Temporal"
    async for event in workflow.fetch_history_events(event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            attributes = event.workflow_execution_terminated_event_attributes
            who = f" by {attributes.identity}" if attributes.identity else ""
            reason = f": {attributes.reason}" if attributes.reason else ""
            why = f"terminated in Temporal{who}{reason}"
    return ended_by_temporal(record, status, why, description.close_time)


FAILOVER_RECORD = RecordSource(FailoverProgress, FailoverWorkflow.progress, _from_input, _ended_by_temporal)


@dataclass(frozen=True)
class AbortOutcome:
    workflow_id: str
    run_id: str
    worker_polling: bool
    """False: the abort is recorded and takes effect when a worker picks the run up."""


async def abort(client: Client, workflow_id: str, request: AbortRequest) -> AbortOutcome:
    """Cancel the run with who aborts and why as the cancel's reason (the run's abort record):
    the run restores what it changed, newest first.

    A run that ends between the check and the signal is NotRunning, like one that had ended.
    """
    description = await describe(client, workflow_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise NotRunning(workflow_id)
    workflow = handle(client, workflow_id, description.run_id)
    try:
        await workflow.cancel(reason=request.cancel_reason())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # "workflow execution already completed"
            raise NotRunning(workflow_id) from exc
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
    polling = await worker_polling(client, description.task_queue)
    return AbortOutcome(workflow_id, description.run_id, polling)
