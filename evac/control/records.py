"""What the front doors (CLI, alert receiver) do with Temporal: start, inspect, abort runs.

Plain async functions over a connected client; the CLI only turns options into calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from evac import search_attributes
from evac.plan import Plan
from evac.runs import MEMO_PROGRESS, AbortRequest, FailoverInput, FailoverProgress, Trigger, failover_workflow_id
from evac.topology import Topology

WORKFLOW_NAME = "FailoverWorkflow"
# A query waits for a worker; past this, a run that has ended is read from its history.
QUERY_TIMEOUT = timedelta(seconds=5)


class ServiceBusy(Exception):
    """A service already has a run; Evac never starts a second one for it."""

    def __init__(self, service: str, workflow_id: str, run_id: str | None):
        self.service, self.workflow_id, self.run_id = service, workflow_id, run_id
        held = f" (run {run_id})" if run_id else ""
        super().__init__(
            f"service '{service}' already has a failover running: {workflow_id}{held}; "
            f"watch it with 'evac status {workflow_id}' or stop it with 'evac abort {workflow_id}'"
        )


class NoWorkerAnswered(Exception):
    """A run's live record needs a worker to answer the query, and none did."""

    def __init__(self, workflow_id: str, detail: str):
        super().__init__(
            f"no worker answered for run '{workflow_id}' ({detail}); start one with 'evac worker', "
            "or read the run's history in the Temporal Web UI"
        )


class RunNotFound(Exception):
    def __init__(self, workflow_id: str):
        super().__init__(f"no failover run '{workflow_id}' (runs are named failover/<service>)")


@dataclass(frozen=True)
class StartedRun:
    service: str
    workflow_id: str
    run_id: str


def failover_inputs(plan: Plan, topology: Topology, trigger: Trigger) -> list[FailoverInput]:
    """One input per service of the plan, each with its slice of the topology."""
    digest = plan.digest()
    return [
        FailoverInput(
            plan=plan,
            plan_digest=digest,
            service=service,
            project=topology.project,
            topology=topology.services[service],
            trigger=trigger,
        )
        for service in plan.services
    ]


async def running_run_id(client: Client, workflow_id: str) -> str | None:
    """The run id of the running execution under ``workflow_id``, or None."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.run_id if description.status == WorkflowExecutionStatus.RUNNING else None


async def start_failover(client: Client, inputs: list[FailoverInput], task_queue: str) -> list[StartedRun]:
    """Start one run per service; refuse all of them if any service already has a run."""
    for input in inputs:
        workflow_id = failover_workflow_id(input.service)
        run_id = await running_run_id(client, workflow_id)
        if run_id is not None:
            raise ServiceBusy(input.service, workflow_id, run_id)
    started = []
    for input in inputs:
        workflow_id = failover_workflow_id(input.service)
        try:
            handle = await client.start_workflow(
                WORKFLOW_NAME,
                input,
                id=workflow_id,
                task_queue=task_queue,
                # The id-conflict policy is the real guard: the check above only avoids
                # starting some services of a plan and not others.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=search_attributes.for_run(input),
                static_summary=f"{input.plan.name}: {input.service} {input.plan.source} -> {input.plan.target}",
                result_type=FailoverProgress,
            )
        except WorkflowAlreadyStartedError:
            raise ServiceBusy(input.service, workflow_id, await running_run_id(client, workflow_id)) from None
        started.append(StartedRun(input.service, workflow_id, handle.result_run_id or ""))
    return started


def _handle(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHandle[Any, FailoverProgress]:
    return client.get_workflow_handle(workflow_id, run_id=run_id, result_type=FailoverProgress)


async def progress(client: Client, workflow_id: str, run_id: str | None = None) -> FailoverProgress:
    """The run's progress record (live while it runs, final once it ended).

    A query needs a worker. When none answers, a run that ended still has its record: in its
    memo, or (runs from before the memo) as its result or in its failure's details.
    """
    handle = _handle(client, workflow_id, run_id)
    try:
        return await handle.query("progress", result_type=FailoverProgress, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RunNotFound(workflow_id) from None
        recorded = await _recorded_progress(handle)
        if recorded is None:
            raise NoWorkerAnswered(workflow_id, exc.message) from None
        return recorded


async def _recorded_progress(handle: WorkflowHandle[Any, FailoverProgress]) -> FailoverProgress | None:
    description = await handle.describe()
    recorded = await description.memo_value(MEMO_PROGRESS, None, type_hint=FailoverProgress)
    if recorded is not None:
        return recorded  # type: ignore[no-any-return]
    status = description.status
    if status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    if status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.details:
                return FailoverProgress.model_validate(cause.details[0])
    return None


async def abort(client: Client, workflow_id: str, request: AbortRequest) -> str:
    """Record who aborts and why, then cancel: the run compensates what it changed."""
    run_id = await running_run_id(client, workflow_id)
    if run_id is None:
        raise RunNotFound(workflow_id) if not await _exists(client, workflow_id) else NotRunning(workflow_id)
    handle = _handle(client, workflow_id, run_id)
    await handle.signal("record_abort", request)
    await handle.cancel()
    return run_id


class NotRunning(Exception):
    def __init__(self, workflow_id: str):
        super().__init__(f"run '{workflow_id}' has already ended; there is nothing to abort")


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await _handle(client, workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
