"""FailoverWorkflow: fails one service over from a source to a target region by a plan.

A composition of the engine (``workflows/plan_run.py``): preflight (read every resource the
plan touches), then the plan's steps through the step table, inside the saga. When a step
fails for good, a guard refuses, or the run is aborted (``evac abort``: who and why by
signal, then Temporal's cancellation), no further step starts and the undos of every step
that started run newest first, each restoring exactly the recorded before-state.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from evac import workflow_types
    from evac.notifications import NotificationEvent
    from evac.runs import FailoverInput, FailoverProgress, RunStatus
    from workflows.plan_run import PlanRun, PlanWorkflow


@workflow.defn(name=workflow_types.FAILOVER)
class FailoverWorkflow(PlanWorkflow):
    """Answers the ``progress`` query and the operators' updates (see PlanWorkflow)."""

    @workflow.init
    def __init__(self, input: FailoverInput) -> None:
        self._run = PlanRun(input)

    @workflow.run
    async def run(self, input: FailoverInput) -> FailoverProgress:
        run = self._run
        run.progress.started_at = workflow.now()
        run.log("failover started", plan=input.plan.name, digest=input.plan_digest)
        run.notify(NotificationEvent.STARTED, detail=input.trigger.reason)
        try:
            await run.saga.run(self._forward)
        except BaseException as err:
            aborted = run.is_abort(err)
            if not aborted and not isinstance(err, FailureError):
                raise  # a bug in this code: fail the workflow task, do not compensate on it
            return await run.end(await run.roll_back(err, aborted))
        return await run.end(RunStatus.SUCCEEDED)

    async def _forward(self) -> None:
        await self._run.preflight()
        await self._run.run_steps()
