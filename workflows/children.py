"""Starting a service's run from another workflow, in one place.

An evacuation's failovers, a schedule's drills and a guardian's automatic failovers all start
the run that holds the service's one id (``failover/<service>``: a failover and a drill of a
service never run at once), with the same reuse policy, search attributes and a summary the Web
UI shows. :class:`~temporalio.exceptions.WorkflowAlreadyStartedError` says the service already
has a run (busy); each caller records that in its own words.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from evac import search_attributes, workflow_types
    from evac.runs import DrillInput, FailoverInput, FailoverProgress, failover_workflow_id
    from workflows.drill import DrillWorkflow
    from workflows.failover import FailoverWorkflow

ABANDON = workflow.ParentClosePolicy.ABANDON


async def start_service_run(
    input: FailoverInput,
    summary: str,
    *,
    workflow_id: str | None = None,
    parent_close_policy: workflow.ParentClosePolicy = ABANDON,
) -> workflow.ChildWorkflowHandle[Any, FailoverProgress]:
    """Start ``input``'s run (a DrillWorkflow for a drill's input, else a FailoverWorkflow) under
    ``workflow_id`` (default: the service's one id), for a caller that awaits its record."""
    options: dict[str, Any] = _options(input, summary, workflow_id, parent_close_policy)
    if isinstance(input, DrillInput):
        return await workflow.start_child_workflow(DrillWorkflow.run, input, **options)
    return await workflow.start_child_workflow(FailoverWorkflow.run, input, **options)


async def start_service_run_unawaited(input: FailoverInput, summary: str) -> workflow.ChildWorkflowHandle[Any, Any]:
    """Start ``input``'s failover for a caller that never awaits it (a guardian: the failover
    outlives it). By type name, with no result type: the run's result, possibly of another
    version of Evac, is never decoded by the caller, so it can never fail the caller's task."""
    return await workflow.start_child_workflow(workflow_types.FAILOVER, input, **_options(input, summary, None, ABANDON))


def _options(
    input: FailoverInput, summary: str, workflow_id: str | None, parent_close_policy: workflow.ParentClosePolicy
) -> dict[str, Any]:
    return {
        "id": workflow_id or failover_workflow_id(input.service),
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        "parent_close_policy": parent_close_policy,
        "search_attributes": search_attributes.for_run(input),
        "static_summary": summary,
    }
