"""Operator controls of a running run: approve or reject its waiting approval step, pause it
before its next step, resume it.

Each is a Temporal Update of the run (``PlanWorkflow``) sent by reference and awaited until the
workflow has taken it. The workflow's validator refuses what must not happen — an unknown step,
a step not waiting, an identity not among the approvers, the starter under four eyes, a pause
of a paused run … — with one sentence, writing nothing to the history; that sentence comes back
here as :class:`UpdateRefused` (the CLI's exit 3).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from evac.control.records import describe, worker_polling
from evac.errors import NotRunning, NoWorkerAnswered, Refused, from_rpc
from evac.runs import ApprovalDecision, ApprovalRecord, PauseRecord, PauseRequest, ResumeRequest
from workflows.failover import FailoverWorkflow

# An update waits for a worker to take it; past this the caller hears that none answered.
UPDATE_TIMEOUT = timedelta(seconds=15)


class UpdateRefused(Refused):
    """The run refused the request (its validator's sentence); nothing changed."""


async def approve(client: Client, workflow_id: str, decision: ApprovalDecision) -> ApprovalRecord:
    """The run's waiting approval step (or ``decision.step``) goes on."""
    result: ApprovalRecord = await _update(client, workflow_id, FailoverWorkflow.approve, decision, "approve")
    return result


async def reject(client: Client, workflow_id: str, decision: ApprovalDecision) -> ApprovalRecord:
    """The run's waiting approval step fails; the run rolls back what it changed."""
    result: ApprovalRecord = await _update(client, workflow_id, FailoverWorkflow.reject, decision, "reject")
    return result


async def pause(client: Client, workflow_id: str, request: PauseRequest) -> PauseRecord:
    """The run holds before its next plan step (the step in flight finishes first)."""
    result: PauseRecord = await _update(client, workflow_id, FailoverWorkflow.pause, request, "pause")
    return result


async def resume(client: Client, workflow_id: str, request: ResumeRequest) -> PauseRecord:
    """The paused run goes on; returns the pause it ends."""
    result: PauseRecord = await _update(client, workflow_id, FailoverWorkflow.resume, request, "resume")
    return result


async def _update(client: Client, workflow_id: str, update: Any, arg: Any, what: str) -> Any:
    description = await describe(client, workflow_id)
    await check_takes_update(client, workflow_id, description, what)
    handle = client.get_workflow_handle_for(FailoverWorkflow.run, workflow_id, run_id=description.run_id)
    return await send_update(client, handle, update, arg, what)


async def check_takes_update(client: Client, workflow_id: str, description: WorkflowExecutionDescription, what: str) -> None:
    """A run can take an update only while it runs and a worker polls its task queue."""
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise NotRunning(workflow_id, what)
    if not await worker_polling(client, description.task_queue):
        raise NoWorkerAnswered(workflow_id, f"no worker polls task queue '{description.task_queue}' to take the {what}")


async def send_update(
    client: Client, handle: WorkflowHandle[Any, Any], update: Any, arg: Any, what: str, timeout: timedelta = UPDATE_TIMEOUT
) -> Any:
    """Send the update and wait until the workflow has taken it; its refusal is UpdateRefused, no
    answer in ``timeout`` NoWorkerAnswered, a run that ended meanwhile NotRunning."""
    workflow_id = handle.id
    try:
        return await handle.execute_update(update, arg, rpc_timeout=timeout)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise UpdateRefused(cause.message if isinstance(cause, ApplicationError) else str(cause)) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise NoWorkerAnswered(
            workflow_id,
            f"the {what} was not taken in {timeout.total_seconds():.0f}s and may still be applied when a worker "
            f"answers: check 'evac status {workflow_id}'",
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and "completed" in exc.message.lower():
            raise NotRunning(workflow_id, what) from exc
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
