"""One run of a plan for one service: its record, its saga and engine, and the phases every
workflow composes — preflight, the plan's steps, the rollback and the end of the run.

``FailoverWorkflow`` is preflight + steps; ``DrillWorkflow`` adds readiness, a bake under stop
conditions, a failback and a verification around the same pieces. Workflow code only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, search_attributes
    from evac.approvals import (
        MAX_PAUSES,
        approval_refusal,
        message_problem,
        pause_refusal,
        resume_refusal,
        waiting_approval,
    )
    from evac.failures import FailureType, failure
    from evac.logging import workflow_log_extra
    from evac.notifications import NotificationEvent
    from evac.plan import (
        ShiftDnsStep,
        SpannerLeaderStep,
        SqlCreateReplicaStep,
        SqlPromoteReplicaStep,
        SqlSwitchoverStep,
        format_duration,
    )
    from evac.resources import (
        BackendRef,
        DatabaseRef,
        DnsRecordRef,
        GroupRef,
        LeaderRef,
        PreflightReads,
    )
    from evac.runs import (
        CANCEL_REASON_PREFIX,
        GO_AHEAD_SIGNAL,
        MEMO_PROGRESS,
        WARM_SIGNAL,
        AbortRequest,
        ApprovalDecision,
        ApprovalRecord,
        FailoverInput,
        FailoverProgress,
        PauseRecord,
        PauseRequest,
        ResumeRequest,
        RunStatus,
        StepRecord,
        StepStatus,
        recovery_seconds,
    )
    from evac.text import visible
    from workflows.notify import Notifier
    from workflows.saga import Saga, failure_text
    from workflows.steps import TRAFFIC_KINDS, Engine, SourceUnreachable, run_step


class PlanRun:
    def __init__(self, input: FailoverInput) -> None:
        info = workflow.info()
        self.input = input
        self.saga = Saga(input.service)
        self.progress = FailoverProgress.for_input(input, info.workflow_id, info.run_id)
        self.engine = Engine(input, self.saga, self.progress)
        self.notifier = self.engine.notifier = Notifier(input, self.progress)
        self.go_ahead = False  # an evacuation's go-ahead to move traffic (hold_before_traffic)

    def log(self, message: str, step: str = "-", **extra: Any) -> None:
        workflow.logger.info(message, extra={**workflow_log_extra(self.input.service, step), **extra})

    def notify(self, event: NotificationEvent, step: str | None = None, detail: str = "") -> None:
        """Post ``event`` in the background (workflows/notify.py): never raises, never waits."""
        self.notifier.send(event, step, detail)

    def is_abort(self, err: BaseException) -> bool:
        return self.saga.abort_requested or is_cancelled_exception(err)

    # --- preflight and steps --------------------------------------------------------

    async def preflight(self) -> None:
        """Read every resource the plan will touch before changing any: a missing backend,
        group or record fails the run here, with nothing changed.

        What only the source region's API serves is read within the source budget (or not at
        all, without one): unanswered, it is recorded and the run goes on, ungraceful."""
        engine, plan = self.engine, self.input.plan
        regions = list(dict.fromkeys([plan.source, plan.target]))
        request = PreflightReads(
            context=engine.context("preflight"),
            backends=[engine.backend(region) for region in regions],
            groups=engine.groups(regions),
            records=[engine.dns_ref()] if any(isinstance(step, ShiftDnsStep) for step in plan.steps) else [],
            databases=self.databases(),
            leaders=[engine.leader()] if any(isinstance(step, SpannerLeaderStep) for step in self.data_steps()) else [],
        )
        reads: list[Awaitable[Any]] = []
        budget = engine.source_budget
        skipped: list[str] = []
        if budget is None:
            everything: list[BackendRef | GroupRef | DnsRecordRef | DatabaseRef | LeaderRef] = [
                *request.backends,
                *request.groups,
                *request.records,
                *request.databases,
                *request.leaders,
            ]
            skipped = [str(r) for r in everything if engine.source_only(r)]
            request = request.model_copy(
                update={
                    "backends": [b for b in request.backends if not engine.source_only(b)],
                    "groups": [g for g in request.groups if not engine.source_only(g)],
                    "databases": [d for d in request.databases if not engine.source_only(d)],
                }
            )
        else:
            request = request.model_copy(update={"source_region": plan.source, "source_budget_seconds": budget.total_seconds()})
        reads.append(engine.read(activity_api.preflight_reads, request, budget=budget))
        try:
            results = await asyncio.gather(*reads)
        except (FailureError, asyncio.CancelledError) as err:
            if self.is_abort(err):
                self.progress.preflight = "aborted"
                raise
            self.progress.preflight = f"failed: {failure_text(err)}"
            raise failure(FailureType.PREFLIGHT_FAILED, f"preflight: {failure_text(err)}; nothing was changed") from None
        unreachable: list[str] = results[0].unreachable
        readable = request.count() - len(unreachable)
        self.progress.preflight = f"passed: {readable} resources readable"
        for resource in skipped:
            engine.went_on_without_source(f"preflight: read {resource}: {engine.not_calling_source()}")
        if unreachable:
            assert budget is not None
            wait = format_duration(budget)
            for error in unreachable:
                engine.went_on_without_source(f"preflight: {plan.source}'s API gave no answer within {wait}: {error}")
        if skipped or unreachable:
            self.progress.preflight += f"; {len(skipped) + len(unreachable)} of {plan.source}'s own not read (ungraceful)"

    def data_steps(self) -> list[Any]:
        """The plan's data steps that are for this run's service."""
        return [step for step in self.input.plan.steps if getattr(step, "applies_to", lambda _: False)(self.input.service)]

    def databases(self) -> list[DatabaseRef]:
        """The database instances the plan's data steps read or change (the source's and the
        target's for a switchover or promotion; none for a re-protect's new replica: it does not
        exist yet)."""
        engine, plan = self.engine, self.input.plan
        regions: list[str] = []
        for step in self.data_steps():
            if isinstance(step, (SqlSwitchoverStep, SqlPromoteReplicaStep)):
                regions += [plan.source, step.region or plan.target]
            elif isinstance(step, SqlCreateReplicaStep):
                regions.append(plan.target)
        return [engine.database(region) for region in dict.fromkeys(regions)]

    async def run_steps(self) -> None:
        held = not self.input.hold_before_traffic
        for index, step in enumerate(self.input.plan.steps):
            self.saga.check_abort()
            await self.hold_if_paused(self.progress.steps[index])
            if not held and step.kind in TRAFFIC_KINDS:
                held = True
                await self.wait_for_go_ahead(self.progress.steps[index])
            await self.run_step(self.progress.steps[index], step)
        skipped = self.progress.skipped
        traffic = [r for r in self.progress.steps if r.kind in TRAFFIC_KINDS]
        if skipped and traffic and all(r.status == StepStatus.SKIPPED for r in traffic):
            names = ", ".join(f"'{r.name}'" for r in skipped)
            raise failure(
                FailureType.SOURCE_UNREACHABLE,
                f"moved no traffic: every step that would ({names}) needs {self.input.plan.source}'s API, "
                "which gave no answer in time",
            )

    async def wait_for_go_ahead(self, before: StepRecord) -> None:
        """An evacuation's run, its target warm: tell the evacuation and wait until it says go
        (every run of the tier warm, or the window full). An abort ends the wait (the run rolls
        back); with no evacuation to tell, it goes on."""
        parent = workflow.info().parent
        if parent is None:
            return
        before.detail = "target warm: waiting for the evacuation's go-ahead (the rest of its tier warming up)"
        try:
            # The latest run of the evacuation: it may have continued as new since this run started.
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(WARM_SIGNAL, self.input.service)
        except Exception as err:  # noqa: BLE001 - the evacuation is gone: nobody will say go
            self.log("the evacuation could not be told; going on", before.name, error=failure_text(err))
            before.detail = ""
            return
        self.log("target warm; waiting for the evacuation's go-ahead", before.name)
        await workflow.wait_condition(lambda: self.go_ahead or self.saga.abort_requested)
        before.detail = ""
        self.saga.check_abort()

    async def hold_if_paused(self, before: StepRecord) -> None:
        """``evac pause``: hold here, between two plan steps, until ``evac resume``. An abort while
        held cancels the wait and the run rolls back. No pause: no wait, no command."""
        while (pause := self.progress.pause) is not None:
            pause.held_before, pause.held_at = before.name, workflow.now()
            self.log("paused", before.name, by=pause.by, reason=pause.reason)
            try:
                await workflow.wait_condition(lambda: self.progress.pause is not pause)
            finally:
                if self.progress.pause is pause:  # the wait ended without a resume: an abort
                    pause.resume_reason = "the run was aborted while paused"
                    self.progress.pause = None
            self.saga.check_abort()
            self.log("resumed", before.name, by=pause.resumed_by or "-")

    async def run_step(self, record: StepRecord, step: Any) -> None:
        record.status = StepStatus.RUNNING
        record.started_at = workflow.now()
        self.log("step started", record.name)
        try:
            await run_step(self.engine, record, step)
        except SourceUnreachable as skip:
            record.status = StepStatus.SKIPPED
            record.ended_at = workflow.now()
            record.owed = skip.owed
            record.detail = f"skipped: source region unreachable: {skip.cause}"
            self.engine.went_on_without_source(f"step '{record.name}' skipped ({skip.cause}); owed: {skip.owed}")
            workflow.logger.warning(
                "step skipped: source region unreachable",
                extra={**workflow_log_extra(self.input.service, record.name), "owed": skip.owed, "cause": skip.cause},
            )
            return
        except BaseException as err:
            record.ended_at = workflow.now()
            if self.is_abort(err):
                record.status = StepStatus.ABORTED
                record.error = self.abort_text()
            else:
                record.status = StepStatus.FAILED
                record.error = failure_text(err)
                record.attempts = max(record.attempts, _attempts_of(err))
            workflow.logger.warning(
                "step stopped",
                extra={
                    **workflow_log_extra(self.input.service, record.name),
                    "status": record.status.value,
                    "error": record.error,
                },
            )
            raise
        record.status = StepStatus.SUCCEEDED
        record.ended_at = workflow.now()
        self.log("step succeeded", record.name)

    # --- the end of a run -----------------------------------------------------------

    def take_abort_record(self) -> None:
        """The run is being aborted: its record is the one the cancel request carries
        (``evac abort`` puts who and why in the cancel's reason), checked for its form like every
        operator message. A cancel without one (``temporal workflow cancel``) records no one."""
        if self.progress.abort is not None:
            return
        request = AbortRequest.from_cancel_reason(workflow.cancellation_reason())
        if request is None:
            return
        problem = message_problem(request.by, request.reason)
        if problem is not None:
            self.log("abort record ignored", error=problem, by=visible(request.by[:80]))
            return
        self.progress.abort = request

    def abort_text(self) -> str:
        self.take_abort_record()
        abort = self.progress.abort
        if abort is not None:
            return f"aborted by {abort.by}: {abort.reason}"
        text = "aborted: cancelled through Temporal (no 'evac abort' record of who or why)"
        reason = workflow.cancellation_reason()
        if reason and not reason.startswith(CANCEL_REASON_PREFIX):
            text += f"; its reason: {visible(reason[:200])}"
        return text

    async def roll_back(self, err: BaseException, aborted: bool) -> RunStatus:
        """Undo what the run changed; the status it ends with (``failed`` when it had changed
        nothing, so nothing was rolled back; ``stopped_past_point_of_no_return`` when it had sent
        a change that cannot be undone, so nothing is rolled back either)."""
        self.progress.error = self.abort_text() if aborted else failure_text(err)
        if not aborted and not self.saga.changed_anything and (not self.started_a_step or _moved_nothing(err)):
            return RunStatus.FAILED
        if self.saga.crossed is not None:
            return self.stop_past_point_of_no_return()
        self.progress.status = RunStatus.ROLLING_BACK
        self.notify(NotificationEvent.ROLLBACK_STARTED, detail=self.progress.error)
        self.progress.left_changed = await self.saga.compensate()
        if self.progress.left_changed:
            return RunStatus.ROLLBACK_INCOMPLETE
        return RunStatus.CANCELLED if aborted else RunStatus.ROLLED_BACK

    def stop_past_point_of_no_return(self) -> RunStatus:
        """The run failed or was aborted after its point of no return: nothing is rolled back
        (traffic put back in front of a database that is no longer primary would split the
        service); what is left to do is named for the operator."""
        crossed = self.saga.crossed
        assert crossed is not None
        left: list[str] = []
        for record in self.progress.steps[crossed.index :]:
            if record.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
                continue
            state = {StepStatus.PENDING: "not run", StepStatus.FAILED: "failed", StepStatus.ABORTED: "aborted"}
            left.append(f"step '{record.name}' ({record.kind}): {state.get(record.status, record.status.value)}")
        self.progress.left_to_do = left
        self.log("stopped past the point of no return", crossed.name, left_to_do=len(left))
        return RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN

    @property
    def started_a_step(self) -> bool:
        return any(record.started_at is not None for record in self.progress.steps)

    def finish(self, status: RunStatus, ended_at: datetime | None = None) -> None:
        self.progress.status = status
        self.progress.ended_at = ended_at or workflow.now()
        for record in self.progress.steps:
            if record.status == StepStatus.PENDING:
                record.status = StepStatus.NOT_RUN
        # The final record in the memo: `describe` reads it, no worker needed, whatever the outcome.
        workflow.upsert_memo({MEMO_PROGRESS: self.progress})
        # Findable by how it ended: `evac runs list --outcome`, `EvacRecoverySeconds > 300`.
        workflow.upsert_search_attributes(search_attributes.at_end(self.progress, status, self.recovery_seconds(status)))
        self.log(f"{self.progress.kind} ended", status=status.value)

    def measure_recovery(self) -> float | None:
        """First mutation start → last plan step end (evac.runs.recovery_seconds)."""
        steps = self.progress.steps
        return recovery_seconds(self.saga.first_change, steps[-1] if steps else None)

    def recovery_seconds(self, status: RunStatus) -> float | None:
        """The recovery this run measured: a drill's report, or a failover that succeeded."""
        p = self.progress
        if p.dry_run:
            return None
        if p.drill is not None:
            return p.drill.recovery_seconds
        return self.measure_recovery() if status == RunStatus.SUCCEEDED else None

    async def end(self, status: RunStatus) -> FailoverProgress:
        """Finish the run: return its record on success, else end it as Temporal should show it."""
        ended_at = workflow.now()
        await self.send_ended(status)
        self.finish(status, ended_at)
        await self.saga.shielded(workflow.wait_condition(workflow.all_handlers_finished))
        if status == RunStatus.SUCCEEDED:
            return self.progress
        if status == RunStatus.CANCELLED and self.saga.cancel_requested:
            raise CancelledError(self.progress.error or "cancelled")  # Temporal shows the run CANCELED
        raise ApplicationError(
            self.summary(), self.progress.model_dump(mode="json"), type=status.value, non_retryable=True
        ) from None

    async def send_ended(self, status: RunStatus) -> None:
        """Post the run's end and wait (bounded) for its outstanding notifications, before the
        record is final: its memo and result then hold what became of each."""
        p = self.progress
        outcome = p.drill.outcome.value if p.drill is not None and p.drill.outcome is not None else status.value
        detail = self.without_source() if status == RunStatus.SUCCEEDED else self.summary(status)
        self.notifier.send(NotificationEvent.ENDED, detail=detail, outcome=outcome, status=status)
        await self.notifier.drain(self.saga)

    def without_source(self) -> str:
        """What a run that succeeded did without the source region's API ("": nothing)."""
        p = self.progress
        if not p.ungraceful or (p.drill is not None and p.drill.ungraceful):
            return ""
        owed = "; ".join(f"step '{step.name}': {step.owed}" for step in p.skipped)
        return f"ungraceful: went on without {p.source}'s API" + (f"; owed once it answers: {owed}" if owed else "")

    def summary(self, status: RunStatus | None = None) -> str:
        p = self.progress
        status = status or p.status
        if status == RunStatus.ROLLBACK_INCOMPLETE:
            return f"{p.error}; rollback incomplete, left changed: {'; '.join(p.left_changed)}"
        if status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN:
            todo = "; ".join(p.left_to_do) or "nothing"
            return (
                f"{p.error}; stopped past the point of no return (step '{p.point_of_no_return}'): nothing was rolled "
                f"back; left to do by hand: {todo}"
            )
        if status in (RunStatus.ROLLED_BACK, RunStatus.CANCELLED):
            return f"{p.error}; rolled back"
        if status == RunStatus.FAILED and p.error and "nothing was changed" not in p.error:
            return f"{p.error}; nothing was changed"
        return p.error or status.value


class PlanWorkflow:
    """The messages every plan workflow answers (subclasses set ``_run`` in their init)."""

    _run: PlanRun

    @workflow.query
    def progress(self) -> FailoverProgress:
        return self._run.progress

    @workflow.signal(name=GO_AHEAD_SIGNAL)
    def go_ahead(self) -> None:
        """The evacuation's go-ahead (hold_before_traffic): its tier's capacity is warm."""
        self._run.go_ahead = True

    # --- operator controls: Updates whose validators refuse, changing nothing ------------

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalRecord:
        """``evac approve``: the waiting approval step goes on."""
        return self._decide(decision, "approved")

    @approve.validator
    def _approve_allowed(self, decision: ApprovalDecision) -> None:
        self._refuse_approval(decision, "approve")

    @workflow.update
    def reject(self, decision: ApprovalDecision) -> ApprovalRecord:
        """``evac reject``: the waiting approval step fails and the run rolls back."""
        return self._decide(decision, "rejected")

    @reject.validator
    def _reject_allowed(self, decision: ApprovalDecision) -> None:
        self._refuse_approval(decision, "reject")

    @workflow.update
    def pause(self, request: PauseRequest) -> PauseRecord:
        """``evac pause``: hold before the next plan step (never mid-step, never mid-rollback)."""
        pause = PauseRecord(by=request.by, reason=request.reason, at=workflow.now())
        self._run.progress.pause = pause
        self._run.progress.pauses.append(pause)
        self._run.log("pause requested", by=request.by, reason=request.reason)
        return pause

    @pause.validator
    def _pause_allowed(self, request: PauseRequest) -> None:
        _refuse(message_problem(request.by, request.reason))
        _refuse(pause_refusal(self._run.progress, self._run.saga.abort_requested))
        if not request.reason.strip():
            _refuse("a pause needs a reason")
        if len(self._run.progress.pauses) >= MAX_PAUSES:
            _refuse(f"run {self._run.progress.workflow_id} has been paused {MAX_PAUSES} times; it takes no more pauses")

    @workflow.update
    def resume(self, request: ResumeRequest) -> PauseRecord:
        """``evac resume``: the run goes on from where it held (or would have held)."""
        pause = self._run.progress.pause
        assert pause is not None  # the validator saw to it
        pause.resumed_by, pause.resumed_at, pause.resume_reason = request.by, workflow.now(), request.reason
        self._run.progress.pause = None
        self._run.log("resume requested", by=request.by)
        return pause

    @resume.validator
    def _resume_allowed(self, request: ResumeRequest) -> None:
        _refuse(message_problem(request.by, request.reason))
        _refuse(resume_refusal(self._run.progress))

    def _refuse_approval(self, decision: ApprovalDecision, action: Literal["approve", "reject"]) -> None:
        run = self._run
        _refuse(message_problem(decision.by, decision.reason))
        if decision.step is not None and (len(decision.step) > 200 or not decision.step.isprintable()):
            _refuse("step: a step name is printable text of at most 200 characters")
        if run.saga.abort_requested:
            _refuse(f"run {run.progress.workflow_id} is being aborted; no approval step is waiting")
        _refuse(approval_refusal(run.input, run.progress, decision, action))

    def _decide(self, decision: ApprovalDecision, verdict: Literal["approved", "rejected"]) -> ApprovalRecord:
        run = self._run
        record = waiting_approval(run.progress)
        assert record is not None and record.approval is not None  # the validator saw to it
        approval = record.approval
        approval.decision, approval.by, approval.at, approval.reason = verdict, decision.by, workflow.now(), decision.reason
        run.log(f"approval {verdict}", record.name, by=decision.by)
        return approval


def _refuse(refusal: str | None) -> None:
    """A validator's refusal: the update is rejected, nothing is written to the history."""
    if refusal is not None:
        raise ApplicationError(refusal, type="Refused", non_retryable=True)


def _moved_nothing(err: BaseException) -> bool:
    """The run failed because every traffic step needed the unreachable source region."""
    return isinstance(err, ApplicationError) and err.type == FailureType.SOURCE_UNREACHABLE.value


def _attempts_of(err: BaseException) -> int:
    cause = err.cause if isinstance(err, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return int(cause.details[0].get("attempt", 0))
    return 0
