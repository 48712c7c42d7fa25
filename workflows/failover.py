"""FailoverWorkflow: fails one service over from a source to a target region by a plan.

A composition of the engine: preflight (read every resource the plan touches), then the
plan's steps through the step table (``workflows/steps.py``), all inside the saga
(``workflows/saga.py``). When a step fails for good, a guard refuses, or the run is aborted
(``evac abort``: who and why by signal, then Temporal's cancellation), no further step
starts and the undos of every step that started run newest first, each restoring exactly
the recorded before-state. The outcome is one of :class:`~evac.runs.RunStatus`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac import activity_api
    from evac.failures import FailureType, failure
    from evac.logging import workflow_log_extra
    from evac.plan import ShiftDnsStep
    from evac.resources import ReadBackendCapacity, ReadDnsRecord, ReadGroupSize
    from evac.runs import (
        MEMO_PROGRESS,
        AbortRequest,
        FailoverInput,
        FailoverProgress,
        RunStatus,
        StepRecord,
        StepStatus,
    )
    from workflows.saga import Saga, failure_text
    from workflows.steps import Engine, run_step

# Versioned change: runs started before it did not write their final record to the memo.
FINAL_RECORD_IN_MEMO = "final-record-in-memo"


@workflow.defn(name="FailoverWorkflow")
class FailoverWorkflow:
    @workflow.init
    def __init__(self, input: FailoverInput) -> None:
        info = workflow.info()
        self._input = input
        self._saga = Saga(input.service)
        self._engine = Engine(input, self._saga)
        self._progress = FailoverProgress(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            service=input.service,
            plan_name=input.plan.name,
            plan_digest=input.plan_digest,
            source=input.plan.source,
            target=input.plan.target,
            trigger=input.trigger,
            steps=[StepRecord(index=i, name=s.label(i), kind=s.kind) for i, s in enumerate(input.plan.steps)],
        )

    # --- messages -------------------------------------------------------------------

    @workflow.query
    def progress(self) -> FailoverProgress:
        return self._progress

    @workflow.signal
    def record_abort(self, request: AbortRequest) -> None:
        """Who aborts and why; ``evac abort`` sends this, then cancels the run."""
        if self._progress.abort is None:
            self._progress.abort = request

    # --- the run --------------------------------------------------------------------

    @workflow.run
    async def run(self, input: FailoverInput) -> FailoverProgress:
        self._progress.started_at = workflow.now()
        workflow.logger.info(
            "failover started",
            extra={**workflow_log_extra(input.service, "-"), "plan": input.plan.name, "digest": input.plan_digest},
        )
        try:
            await self._saga.run(self._forward)
        except BaseException as err:
            aborted = self._saga.abort_requested or is_cancelled_exception(err)
            if not aborted and not isinstance(err, FailureError):
                raise  # a bug in this code: fail the workflow task, do not compensate on it
            await self._roll_back(err, aborted)
        self._finish(RunStatus.SUCCEEDED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._progress

    async def _forward(self) -> None:
        await self._preflight()
        for index, step in enumerate(self._input.plan.steps):
            self._saga.check_abort()
            await self._run_step(self._progress.steps[index], step)

    async def _roll_back(self, err: BaseException, aborted: bool) -> None:
        """Undo what the run changed, record the outcome, and end the run accordingly."""
        self._progress.error = self._abort_text() if aborted else failure_text(err)
        self._progress.status = RunStatus.ROLLING_BACK
        self._progress.left_changed = await self._saga.compensate()
        if aborted and not self._progress.left_changed:
            status = RunStatus.CANCELLED
        elif self._progress.left_changed:
            status = RunStatus.ROLLBACK_INCOMPLETE
        else:
            status = RunStatus.ROLLED_BACK
        self._finish(status)
        await self._saga.shielded(workflow.wait_condition(workflow.all_handlers_finished))
        if aborted and self._saga.cancel_requested and status == RunStatus.CANCELLED:
            raise CancelledError(self._progress.error)  # Temporal shows the run CANCELED
        raise ApplicationError(
            self._summary(), self._progress.model_dump(mode="json"), type=status.value, non_retryable=True
        ) from None

    def _abort_text(self) -> str:
        abort = self._progress.abort
        if abort is None:
            return "aborted: cancelled through Temporal (no 'evac abort' record of who or why)"
        return f"aborted by {abort.by}: {abort.reason}"

    def _finish(self, status: RunStatus) -> None:
        self._progress.status = status
        self._progress.ended_at = workflow.now()
        for record in self._progress.steps:
            if record.status == StepStatus.PENDING:
                record.status = StepStatus.NOT_RUN
        if workflow.patched(FINAL_RECORD_IN_MEMO):
            # The final record in the memo: `describe` reads it, no worker needed, whatever the outcome.
            workflow.upsert_memo({MEMO_PROGRESS: self._progress})
        workflow.logger.info(
            "failover ended", extra={**workflow_log_extra(self._input.service, "-"), "status": status.value}
        )

    def _summary(self) -> str:
        p = self._progress
        if p.status == RunStatus.ROLLBACK_INCOMPLETE:
            return f"{p.error}; rollback incomplete, left changed: {'; '.join(p.left_changed)}"
        return f"{p.error}; rolled back"

    # --- preflight and steps --------------------------------------------------------

    async def _preflight(self) -> None:
        """Read every resource the plan will touch before changing any: a missing backend,
        group or record fails the run here, with nothing changed."""
        engine, plan = self._engine, self._input.plan
        context = engine.context("preflight")
        reads: list[Awaitable[Any]] = []
        for region in dict.fromkeys([plan.source, plan.target]):
            backend = engine.backend(region)
            reads.append(engine.read(activity_api.read_backend_capacity, ReadBackendCapacity(context=context, backend=backend)))
            reads.append(engine.read(activity_api.read_group_size, ReadGroupSize(context=context, group=backend.group)))
        if any(isinstance(step, ShiftDnsStep) for step in plan.steps):
            reads.append(engine.read(activity_api.read_dns_record, ReadDnsRecord(context=context, record=engine.dns_ref())))
        try:
            await asyncio.gather(*reads)
        except FailureError as err:
            if self._saga.abort_requested or is_cancelled_exception(err):
                self._progress.preflight = "aborted"
                raise
            self._progress.preflight = f"failed: {failure_text(err)}"
            raise failure(
                FailureType.PREFLIGHT_FAILED, f"preflight: {failure_text(err)}; nothing was changed"
            ) from None
        except asyncio.CancelledError:
            self._progress.preflight = "aborted"
            raise
        self._progress.preflight = f"passed: {len(reads)} resources readable"

    async def _run_step(self, record: StepRecord, step: Any) -> None:
        record.status = StepStatus.RUNNING
        record.started_at = workflow.now()
        workflow.logger.info("step started", extra=workflow_log_extra(self._input.service, record.name))
        try:
            await run_step(self._engine, record, step)
        except BaseException as err:
            record.ended_at = workflow.now()
            if self._saga.abort_requested or is_cancelled_exception(err):
                record.status = StepStatus.ABORTED
                record.error = self._abort_text()
            else:
                record.status = StepStatus.FAILED
                record.error = failure_text(err)
                record.attempts = max(record.attempts, _attempts_of(err))
            workflow.logger.warning(
                "step stopped",
                extra={**workflow_log_extra(self._input.service, record.name), "status": record.status.value, "error": record.error},
            )
            raise
        record.status = StepStatus.SUCCEEDED
        record.ended_at = workflow.now()
        workflow.logger.info("step succeeded", extra=workflow_log_extra(self._input.service, record.name))


def _attempts_of(err: BaseException) -> int:
    from temporalio.exceptions import ActivityError

    cause = err.cause if isinstance(err, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return int(cause.details[0].get("attempt", 0))
    return 0
