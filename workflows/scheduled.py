"""ScheduledDrillWorkflow: what a schedule starts — a launcher for the plan's drills.

1. **blackouts** — an activity reads the worker's blackouts file now, and the plan's own
   windows, at ``workflow.now()``. Inside a window the launcher ends ``skipped`` with the
   window named; nothing is started and nothing is changed.
2. **drills** — one child ``DrillWorkflow`` per service under the service's lock
   (``failover/<service>``). A service that already has a run is recorded skipped
   ("busy: …"). A launcher that is cancelled or terminated asks its drills to cancel, and
   they roll back (never terminated mid-change).
3. **record** — it waits for them and keeps the ``ScheduledRun``: query, memo and result.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, workflow_types
    from evac.blackouts import BlackoutCheck
    from evac.drills import DrillOutcome
    from evac.runs import DrillInput, FailoverProgress, RunStatus, failover_workflow_id
    from evac.schedules import (
        MEMO_SCHEDULED_RUN,
        ScheduledDrillInput,
        ScheduledOutcome,
        ScheduledRun,
        ServiceOutcome,
    )
    from workflows.children import start_service_run
    from workflows.drill import DrillWorkflow
    from workflows.saga import failure_text

BLACKOUT_CHECK_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=workflow_types.SCHEDULED_DRILL)
class ScheduledDrillWorkflow:
    @workflow.init
    def __init__(self, input: ScheduledDrillInput) -> None:
        info = workflow.info()
        self._record = ScheduledRun(
            schedule_id=input.schedule_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            plan_name=input.plan.name,
            plan_digest=input.plan_digest,
            services=[ServiceOutcome(service=drill.service) for drill in input.drills],
        )

    @workflow.query
    def record(self) -> ScheduledRun:
        return self._record

    @workflow.run
    async def run(self, input: ScheduledDrillInput) -> ScheduledRun:
        record = self._record
        record.started_at = workflow.now()
        workflow.upsert_memo({MEMO_SCHEDULED_RUN: record})
        workflow.logger.info("scheduled drill started", extra={"schedule": input.schedule_id, "plan": input.plan.name})
        try:
            verdict = await workflow.execute_activity(
                activity_api.check_blackouts,
                BlackoutCheck(plan_windows=input.plan.blackouts, at=workflow.now()),
                start_to_close_timeout=BLACKOUT_CHECK_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
            )
        except FailureError as err:
            if is_cancelled_exception(err):
                self._skip_all("cancelled before any drill started; nothing was started")
                raise
            return self._skip_all(f"the blackout check failed ({failure_text(err)}); nothing was started")
        if verdict.match is not None:
            record.blackout = verdict.match
            return self._skip_all(f"{verdict.match.text}; nothing was started")
        handles: list[tuple[ServiceOutcome, workflow.ChildWorkflowHandle[DrillWorkflow, FailoverProgress]]] = []
        for drill, outcome in zip(input.drills, record.services, strict=True):
            handle = await self._start(drill, outcome)
            if handle is not None:
                handles.append((outcome, handle))
        workflow.upsert_memo({MEMO_SCHEDULED_RUN: record})
        try:
            await asyncio.gather(*(self._await(outcome, handle) for outcome, handle in handles))
        except asyncio.CancelledError:
            self._end()  # cancelled: the drills were asked to cancel, rolled back, and are recorded so
            raise
        return self._end()

    async def _start(
        self, drill: DrillInput, outcome: ServiceOutcome
    ) -> workflow.ChildWorkflowHandle[DrillWorkflow, FailoverProgress] | None:
        workflow_id = failover_workflow_id(drill.service)
        try:
            summary = f"{drill.plan.name} (scheduled drill): {drill.service} {drill.plan.source} -> {drill.plan.target}"
            handle = await start_service_run(drill, summary, parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL)
        except WorkflowAlreadyStartedError:
            outcome.outcome = ScheduledOutcome.SKIPPED
            outcome.reason = f"busy: {workflow_id} is already running; nothing was started for {drill.service}"
            outcome.workflow_id = workflow_id
            return None
        outcome.workflow_id = workflow_id
        outcome.run_id = handle.first_execution_run_id
        return handle

    async def _await(
        self, outcome: ServiceOutcome, handle: workflow.ChildWorkflowHandle[DrillWorkflow, FailoverProgress]
    ) -> None:
        progress: FailoverProgress | None
        try:
            progress = await handle
        except (FailureError, asyncio.CancelledError) as err:
            progress = _progress_in(err)
            outcome.outcome = ScheduledOutcome.FAILED
            outcome.reason = failure_text(err)
            if progress is None and is_cancelled_exception(err):
                # A drill ends cancelled only once it has restored everything it changed.
                outcome.status, outcome.drill_outcome = RunStatus.CANCELLED.value, DrillOutcome.ABORTED.value
                outcome.reason = "cancelled with its scheduled run; the drill restored what it had changed"
        else:
            outcome.outcome = ScheduledOutcome.PASSED if progress.status == RunStatus.SUCCEEDED else ScheduledOutcome.FAILED
            outcome.reason = progress.error or ""
        if progress is not None:
            outcome.status = progress.status.value
            if progress.drill is not None and progress.drill.outcome is not None:
                outcome.drill_outcome = progress.drill.outcome.value

    def _skip_all(self, reason: str) -> ScheduledRun:
        for outcome in self._record.services:
            outcome.outcome = ScheduledOutcome.SKIPPED
            outcome.reason = reason
        return self._end(reason)

    def _end(self, reason: str | None = None) -> ScheduledRun:
        """``reason``: one reason for every service (a blackout, a failed check), said once."""
        record = self._record
        record.conclude()
        if reason is not None:
            record.reason = reason
        record.ended_at = workflow.now()
        workflow.upsert_memo({MEMO_SCHEDULED_RUN: record})
        workflow.logger.info("scheduled drill ended", extra={"schedule": record.schedule_id, "outcome": record.outcome.value})
        return record


def _progress_in(err: BaseException) -> FailoverProgress | None:
    """The drill's record, carried in the details of the failure it ended with."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        try:
            return FailoverProgress.model_validate(cause.details[0])
        except ValueError:
            return None
    return None
