"""FailoverWorkflow: fails one service over from a source to a target region by a plan.

The workflow interprets the plan step by step. Before each mutating step it records the
resource's current state (a read activity) and the compensation that restores it; the
mutating activity then changes the resource. When a step fails for good, a guard refuses,
or the run is cancelled (``evac abort``), the compensations of every step that started
run in reverse order, each restoring exactly the recorded before-state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac.logging import workflow_log_extra
    from evac.plan import DrainStep, Retries, format_duration, ScaleTargetStep, ShiftDnsStep, Step, VerifyHealthStep, WaitStep
    from evac.resources import (
        ActivityName,
        BackendCapacity,
        BackendRef,
        Change,
        CheckBackendHealth,
        DnsRecord,
        DnsRecordRef,
        GroupRef,
        GroupSize,
        HealthReport,
        ReadBackendCapacity,
        ReadDnsRecord,
        ReadGroupSize,
        ResizeGroup,
        SetBackendCapacity,
        SetDnsRecord,
        StepContext,
    )
    from evac.runs import (
        MEMO_PROGRESS,
        AbortRequest,
        FailoverInput,
        FailoverProgress,
        RunStatus,
        StepRecord,
        StepStatus,
    )

T = TypeVar("T")

# Versioned change: runs started before it did not write their final record to the memo.
FINAL_RECORD_IN_MEMO = "final-record-in-memo"

# Reads are cheap and safe to retry quickly.
READ_OPTIONS: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5
    ),
)


def _mutation_options(retries: Retries, attempts: int) -> dict[str, Any]:
    """Mutations wait for cloud operations; they heartbeat, so a dead worker is noticed in
    10 s, and the workflow waits for a cancelled mutation to stop before compensating it."""
    return dict(
        start_to_close_timeout=timedelta(minutes=15),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=RetryPolicy(
            initial_interval=retries.initial_interval,
            maximum_interval=retries.maximum_interval,
            maximum_attempts=attempts,
        ),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


@dataclass
class _Undo:
    """The compensation of one step: restore ``resource`` to its recorded before-state."""

    step: StepRecord
    restore: Callable[[], Awaitable[Change]]


@workflow.defn(name="FailoverWorkflow")
class FailoverWorkflow:
    @workflow.init
    def __init__(self, input: FailoverInput) -> None:
        info = workflow.info()
        self._input = input
        self._undo: list[_Undo] = []
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
            await self._preflight()
            for index, step in enumerate(input.plan.steps):
                await self._run_step(self._progress.steps[index], step)
        except BaseException as err:
            cancelled = is_cancelled_exception(err)
            if not cancelled and not isinstance(err, FailureError):
                raise  # a bug in this code: fail the workflow task, do not compensate on it
            self._progress.error = self._cause(err, cancelled)
            await self._compensate()
            self._finish(
                RunStatus.CANCELLED if cancelled and not self._progress.left_changed else self._final_failure()
            )
            await workflow.wait_condition(workflow.all_handlers_finished)
            if cancelled:
                raise
            raise ApplicationError(
                self._summary(), self._progress.model_dump(mode="json"), type=self._progress.status.value, non_retryable=True
            ) from None
        self._finish(RunStatus.SUCCEEDED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._progress

    def _final_failure(self) -> RunStatus:
        return RunStatus.ROLLBACK_INCOMPLETE if self._progress.left_changed else RunStatus.ROLLED_BACK

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

    def _cause(self, err: BaseException, cancelled: bool) -> str:
        if cancelled:
            abort = self._progress.abort
            return f"aborted by {abort.by}: {abort.reason}" if abort else "cancelled"
        return _failure_text(err)

    def _summary(self) -> str:
        p = self._progress
        if p.status == RunStatus.ROLLBACK_INCOMPLETE:
            return f"{p.error}; rollback incomplete, left changed: {'; '.join(p.left_changed)}"
        return f"{p.error}; rolled back"

    # --- steps ----------------------------------------------------------------------

    async def _preflight(self) -> None:
        """Read every resource the plan will touch before changing any: a missing backend,
        group or record fails the run here, with nothing changed."""
        context = StepContext(service=self._input.service, step="preflight")
        plan = self._input.plan
        reads: list[Awaitable[Any]] = []
        for region in dict.fromkeys([plan.source, plan.target]):
            backend = self._backend(region)
            reads.append(
                workflow.execute_activity(
                    ActivityName.READ_BACKEND_CAPACITY,
                    ReadBackendCapacity(context=context, backend=backend),
                    result_type=BackendCapacity,
                    **READ_OPTIONS,
                )
            )
            reads.append(
                workflow.execute_activity(
                    ActivityName.READ_GROUP_SIZE,
                    ReadGroupSize(context=context, group=backend.group),
                    result_type=GroupSize,
                    **READ_OPTIONS,
                )
            )
        if any(isinstance(step, ShiftDnsStep) for step in plan.steps):
            reads.append(
                workflow.execute_activity(
                    ActivityName.READ_DNS_RECORD,
                    ReadDnsRecord(context=context, record=self._dns_ref()),
                    result_type=DnsRecord,
                    **READ_OPTIONS,
                )
            )
        try:
            await asyncio.gather(*reads)
        except FailureError as err:
            self._progress.preflight = f"failed: {_failure_text(err)}"
            raise ApplicationError(
                f"preflight: {_failure_text(err)}; nothing was changed", type="PreflightFailed", non_retryable=True
            ) from None
        self._progress.preflight = f"passed: {len(reads)} resources readable"

    def _dns_ref(self) -> DnsRecordRef:
        dns = self._input.topology.dns
        return DnsRecordRef(project=self._input.project, managed_zone=dns.managed_zone, name=dns.record, type=dns.type)

    async def _run_step(self, record: StepRecord, step: Step) -> None:
        record.status = StepStatus.RUNNING
        record.started_at = workflow.now()
        workflow.logger.info("step started", extra=workflow_log_extra(self._input.service, record.name))
        try:
            if isinstance(step, ScaleTargetStep):
                await self._scale_target(record, step)
            elif isinstance(step, VerifyHealthStep):
                await self._verify_health(record, step)
            elif isinstance(step, DrainStep):
                await self._drain(record, step)
            elif isinstance(step, ShiftDnsStep):
                await self._shift_dns(record, step)
            elif isinstance(step, WaitStep):
                record.detail = f"waiting {format_duration(step.duration)}"
                await workflow.sleep(step.duration)
                record.detail = f"waited {format_duration(step.duration)}"
        except BaseException as err:
            record.status = StepStatus.FAILED
            record.ended_at = workflow.now()
            record.error = "aborted" if is_cancelled_exception(err) else _failure_text(err)
            record.attempts = max(record.attempts, _attempts_of(err))
            workflow.logger.warning(
                "step failed", extra={**workflow_log_extra(self._input.service, record.name), "error": record.error}
            )
            raise
        record.status = StepStatus.SUCCEEDED
        record.ended_at = workflow.now()
        workflow.logger.info("step succeeded", extra=workflow_log_extra(self._input.service, record.name))

    def _context(self, record: StepRecord) -> StepContext:
        return StepContext(service=self._input.service, step=record.name)

    def _request_key(self, record: StepRecord, purpose: str) -> str:
        info = workflow.info()
        return f"{info.workflow_id}/{info.run_id}/step-{record.index}/{purpose}"

    def _group(self, region: str) -> GroupRef:
        binding = self._input.topology.regions[region]
        return GroupRef(
            project=self._input.project, region=region, group=binding.instance_group, zone=binding.instance_group_zone
        )

    def _backend(self, region: str) -> BackendRef:
        binding = self._input.topology.regions[region]
        return BackendRef(
            project=self._input.project,
            backend_service=binding.backend_service,
            scope=binding.backend_service_scope,
            group=self._group(region),
        )

    async def _health(self, record: StepRecord, region: str) -> HealthReport:
        return await workflow.execute_activity(
            ActivityName.CHECK_BACKEND_HEALTH,
            CheckBackendHealth(context=self._context(record), backend=self._backend(region)),
            result_type=HealthReport,
            **READ_OPTIONS,
        )

    async def _guard_target_healthy(self, record: StepRecord) -> None:
        """Never move traffic into a region that cannot take it, nor drain the last healthy one."""
        target = self._input.plan.target
        need = self._input.plan.guards.min_healthy_target
        report = await self._health(record, target)
        if report.healthy < need:
            raise ApplicationError(
                f"guard: target {target} has {report.healthy}/{report.total} healthy backends, "
                f"the plan requires at least {need} before moving traffic there",
                type="GuardRefused",
                non_retryable=True,
            )
        capacity = await workflow.execute_activity(
            ActivityName.READ_BACKEND_CAPACITY,
            ReadBackendCapacity(context=self._context(record), backend=self._backend(target)),
            result_type=BackendCapacity,
            **READ_OPTIONS,
        )
        if capacity.capacity_scaler == 0:
            raise ApplicationError(
                f"guard: target {target} is drained itself (capacity scaler 0); it would take no traffic",
                type="GuardRefused",
                non_retryable=True,
            )

    async def _mutate(
        self,
        record: StepRecord,
        activity: str,
        make_input: Callable[[Any, Any, str], Any],
        before: Any,
        desired: Any,
        resource: str,
    ) -> None:
        """Record the before-state and the undo, then apply ``desired``."""
        record.resource = resource
        record.before = before
        retries = self._input.plan.retries
        if before == desired:
            record.after = before
            record.detail = "already as desired; nothing to change"
            return

        async def restore() -> Change:
            # record.before is the state the mutation itself found, once it has reported.
            return await workflow.execute_activity(
                activity,
                make_input(record.before, desired, self._request_key(record, "undo")),
                result_type=Change,
                **_mutation_options(retries, retries.rollback_attempts),
            )

        self._undo.append(_Undo(record, restore))
        change = await workflow.execute_activity(
            activity,
            make_input(desired, before, self._request_key(record, "apply")),
            result_type=Change,
            **_mutation_options(retries, retries.step_attempts),
        )
        record.attempts = change.attempt
        record.before = change.before
        record.after = change.after
        record.detail = "changed" if change.changed else "already as desired; nothing to change"

    async def _scale_target(self, record: StepRecord, step: ScaleTargetStep) -> None:
        group = self._group(self._input.plan.target)
        before = await workflow.execute_activity(
            ActivityName.READ_GROUP_SIZE,
            ReadGroupSize(context=self._context(record), group=group),
            result_type=GroupSize,
            **READ_OPTIONS,
        )
        desired = GroupSize(target_size=max(before.target_size, step.min_size))
        await self._mutate(
            record,
            ActivityName.RESIZE_GROUP,
            lambda want, prior, key: ResizeGroup(
                context=self._context(record), group=group, desired=want, prior=prior, request_key=key
            ),
            before,
            desired,
            str(group),
        )

    async def _verify_health(self, record: StepRecord, step: VerifyHealthStep) -> None:
        region = step.region or self._input.plan.target
        record.resource = str(self._backend(region))
        deadline = workflow.now() + step.timeout
        while True:
            report = await self._health(record, region)
            record.attempts += 1
            record.after = report
            record.detail = f"{report.healthy}/{report.total} healthy, need {step.min_healthy}"
            if report.healthy >= step.min_healthy:
                return
            if workflow.now() + step.interval > deadline:
                raise ApplicationError(
                    f"{region}: only {report.healthy}/{report.total} backends healthy after {format_duration(step.timeout)}, "
                    f"the step requires {step.min_healthy}",
                    type="HealthCheckFailed",
                    non_retryable=True,
                )
            await workflow.sleep(step.interval)

    async def _drain(self, record: StepRecord, step: DrainStep) -> None:
        region = step.region or self._input.plan.source
        await self._guard_target_healthy(record)
        backend = self._backend(region)
        before = await workflow.execute_activity(
            ActivityName.READ_BACKEND_CAPACITY,
            ReadBackendCapacity(context=self._context(record), backend=backend),
            result_type=BackendCapacity,
            **READ_OPTIONS,
        )
        await self._mutate(
            record,
            ActivityName.SET_BACKEND_CAPACITY,
            lambda want, prior, key: SetBackendCapacity(
                context=self._context(record), backend=backend, desired=want, prior=prior, request_key=key
            ),
            before,
            BackendCapacity(capacity_scaler=step.capacity_scaler),
            str(backend),
        )

    async def _shift_dns(self, record: StepRecord, step: ShiftDnsStep) -> None:
        await self._guard_target_healthy(record)
        dns = self._input.topology.dns
        ref = self._dns_ref()
        before = await workflow.execute_activity(
            ActivityName.READ_DNS_RECORD,
            ReadDnsRecord(context=self._context(record), record=ref),
            result_type=DnsRecord,
            **READ_OPTIONS,
        )
        target_address = self._input.topology.regions[self._input.plan.target].address
        desired = DnsRecord(ttl=step.ttl or dns.ttl, rrdatas=[target_address])
        await self._mutate(
            record,
            ActivityName.SET_DNS_RECORD,
            lambda want, prior, _key: SetDnsRecord(context=self._context(record), record=ref, desired=want, prior=prior),
            before,
            desired,
            str(ref),
        )

    # --- compensation ---------------------------------------------------------------

    async def _compensate(self) -> None:
        """Run the undo of every started step, newest first; note what could not be restored.

        An abort that arrives while rolling back does not interrupt it: each undo runs
        shielded, and the rollback goes on to the end.
        """
        self._progress.status = RunStatus.ROLLING_BACK
        for undo in reversed(self._undo):
            record = undo.step
            record.status = StepStatus.COMPENSATING
            extra = workflow_log_extra(self._input.service, record.name)
            workflow.logger.info("compensating step", extra=extra)
            try:
                await _uncancellable(undo.restore())
            except FailureError as err:
                record.status = StepStatus.COMPENSATION_FAILED
                record.compensation_error = _failure_text(err)
                restore_to = record.before.summary() if record.before else "its state before the run"
                self._progress.left_changed.append(f"{record.resource} (step '{record.name}', restore to {restore_to})")
                workflow.logger.error("compensation failed", extra={**extra, "error": record.compensation_error})
                continue
            record.status = StepStatus.COMPENSATED


async def _uncancellable(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if the workflow is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            continue


def _failure_text(err: BaseException) -> str:
    """The innermost message of a Temporal failure chain: what actually went wrong."""
    if isinstance(err, ActivityError) and err.cause is not None:
        return _failure_text(err.cause)
    if isinstance(err, FailureError):
        return err.message
    return str(err)


def _attempts_of(err: BaseException) -> int:
    cause = err.cause if isinstance(err, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return int(cause.details[0].get("attempt", 0))
    return 0
