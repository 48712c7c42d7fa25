"""DrillWorkflow: prove a service can leave a region and come back.

A composition of the engine (``workflows/plan_run.py``), in phases:

1. **readiness** — before any change: every resource readable (the preflight), the target
   healthy and not drained, and the capacity proof (after the plan's ``scale_target`` steps the
   target would serve at least ``readiness.min_target_ratio`` of the source's healthy backends).
   Every reason is listed; any reason ends the drill ``not_ready`` with nothing changed.
2. **failover** — the plan's steps, through the step table.
3. **bake** — hold the failed-over state for the bake time, measuring the stop conditions every
   ``check_interval``; a breach ends the bake at once and everything is rolled back.
4. **failback** — the recorded undos, run on purpose, newest first (never written by hand).
5. **verify** — read every touched resource back; one unlike its before-state fails the drill.
6. **report** — outcome, recovery time (first mutation → last failover step done), failback
   time, the RTO target beside them, every stop condition summarised.

An abort at any point before the failback rolls back like a failover's; an abort (or a
breach) during the failback does not interrupt it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, workflow_types
    from evac.drills import (
        ConditionSummary,
        DrillOutcome,
        DrillPhase,
        DrillReport,
        breach_text,
        capacity_proof,
        holds,
        rule_text,
        worse,
    )
    from evac.failures import FailureType, failure
    from evac.notifications import NotificationEvent
    from evac.plan import BackendHealthCondition
    from evac.resources import CheckStopConditions, HealthReport
    from evac.runs import DrillInput, FailoverProgress, RunStatus, StepStatus
    from workflows.plan_run import PlanRun, PlanWorkflow
    from workflows.saga import failure_text

OUTCOME_STATUS = {
    DrillOutcome.PASSED: RunStatus.SUCCEEDED,
    DrillOutcome.NOT_READY: RunStatus.NOT_READY,
    DrillOutcome.ABORTED: RunStatus.CANCELLED,
    DrillOutcome.ROLLED_BACK: RunStatus.ROLLED_BACK,
    DrillOutcome.FAILED: RunStatus.FAILED,
}


@workflow.defn(name=workflow_types.DRILL)
class DrillWorkflow(PlanWorkflow):
    """Answers the ``progress`` query and the operators' updates (see PlanWorkflow)."""

    @workflow.init
    def __init__(self, input: DrillInput) -> None:
        self._input = input
        self._run = PlanRun(input)
        settings = input.plan.drill_settings
        self._bake = input.bake if input.bake is not None else settings.bake
        self._report = DrillReport(
            bake_seconds=self._bake.total_seconds(),
            check_interval_seconds=settings.check_interval.total_seconds(),
            rto_target_seconds=settings.rto_target.total_seconds() if settings.rto_target else None,
            rpo_target_seconds=settings.rpo_target.total_seconds() if settings.rpo_target else None,
            conditions=[
                ConditionSummary(index=i, label=c.label(i), kind=c.kind, rule=rule_text(c, input.plan.target))
                for i, c in enumerate(settings.stop_conditions)
            ],
        )
        self._report.ungraceful = input.ungraceful
        self._run.progress.drill = self._report

    @workflow.run
    async def run(self, input: DrillInput) -> FailoverProgress:
        run, report = self._run, self._report
        run.progress.started_at = workflow.now()
        run.log("drill started", plan=input.plan.name, digest=input.plan_digest, bake=self._bake.total_seconds())
        run.notify(NotificationEvent.STARTED, detail=input.trigger.reason)
        if input.dry_run:
            return await self._dry_run()
        try:
            await run.saga.run(self._forward)
        except BaseException as err:
            aborted = run.is_abort(err)
            if not aborted and not isinstance(err, FailureError):
                raise  # a bug in this code: fail the workflow task, do not compensate on it
            if report.ready is False:
                run.progress.error = failure_text(err)
                return await self._end(DrillOutcome.NOT_READY)
            status = await run.roll_back(err, aborted)
            report.phase = DrillPhase.DONE
            if status in (RunStatus.ROLLBACK_INCOMPLETE, RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN):
                report.outcome = DrillOutcome.ROLLED_BACK
                return await run.end(status)
            return await self._end(DrillOutcome.ABORTED if aborted else DrillOutcome.ROLLED_BACK)
        return await self._fail_back_and_verify()

    async def _dry_run(self) -> FailoverProgress:
        """Plan mode: readiness (its verdict shown, not enforced) and the steps' would-be
        changes; no bake, no failback: nothing was changed."""
        run = self._run

        async def forward() -> None:
            await self._readiness(enforce=False)
            self._report.phase = DrillPhase.FAILOVER
            await run.run_steps()

        try:
            await run.saga.run(forward)
        except BaseException as err:
            if not run.is_abort(err) and not isinstance(err, FailureError):
                raise
            return await run.end(await run.roll_back(err, run.is_abort(err)))
        self._report.phase = DrillPhase.DONE
        return await run.end(RunStatus.SUCCEEDED)

    async def _forward(self) -> None:
        await self._readiness()
        self._report.phase = DrillPhase.FAILOVER
        await self._run.run_steps()
        if self._ungraceful:
            self._report.would_skip = list(self._run.progress.ungraceful)
        self._measure_recovery()
        await self._hold()

    # --- phases ---------------------------------------------------------------------

    async def _readiness(self, enforce: bool = True) -> None:
        run, plan, report = self._run, self._input.plan, self._report
        engine = run.engine
        reasons: list[str] = []
        if self._ungraceful:
            report.readiness.append(
                f"ungraceful: rehearsing the loss of {plan.source}'s API; no call is made to it, and what would be "
                "skipped is reported"
            )
        try:
            await run.preflight()
            report.readiness.append(f"every resource the plan touches is readable ({run.progress.preflight})")
        except FailureError as err:
            if run.is_abort(err):
                raise
            reasons.append(failure_text(err))
        if run.progress.ungraceful and not self._ungraceful:
            # A drill is a planned switchover: it needs the region it leaves to answer.
            reasons.append(
                f"the source region {plan.source}'s API is needed for a planned switchover and did not answer: "
                + "; ".join(run.progress.ungraceful)
                + " (rehearse its loss with 'evac drill --ungraceful')"
            )
        healthy: dict[str, HealthReport] = {}
        for region in (plan.source, plan.target):
            if engine.source_only(engine.backend(region)) and engine.source_budget is None:
                report.readiness.append(f"{region}'s health not read ({engine.not_calling_source()})")
                continue
            try:
                healthy[region] = await engine.health("readiness", region)
            except FailureError as err:
                if run.is_abort(err):
                    raise
                reasons.append(f"cannot read the health of {region}: {failure_text(err)}")
        target = healthy.get(plan.target)
        source = healthy.get(plan.source)
        need = plan.guards.min_healthy_target
        if target is not None and target.healthy < need:
            reasons.append(f"target {plan.target} has {target.summary()} backends, the plan requires at least {need}")
        if target is not None and source is not None:
            enough, proof = capacity_proof(plan, source.healthy, target.healthy)
            (report.readiness if enough else reasons).append(proof)
        if reasons:
            report.ready = False
            report.readiness = reasons
            if enforce:
                raise failure(FailureType.NOT_READY, "not ready: " + "; ".join(reasons))
            return
        if self._input.dry_run:
            report.readiness.append("a dry run holds no lock: another run of the service may start meanwhile")
        else:
            report.readiness.append(f"the service is held by this run ({run.progress.workflow_id}); no other run can start")
        report.ready = True

    @property
    def _ungraceful(self) -> bool:
        return self._input.ungraceful

    def _measure_recovery(self) -> None:
        lags = [r.replication_lag.seconds for r in self._run.progress.steps if r.replication_lag is not None]
        known = [lag for lag in lags if lag is not None]
        steps = self._run.progress.steps
        moved_leader = any(r.kind == "spanner_leader" and r.status == StepStatus.SUCCEEDED for r in steps)
        self._report.rpo_synchronous = moved_leader and not lags
        if known:
            self._report.rpo_seconds = max(known)
            if self._report.rpo_target_seconds is not None:
                self._report.over_rpo = self._report.rpo_seconds > self._report.rpo_target_seconds
        measured = self._run.measure_recovery()
        if measured is None:
            return
        self._report.recovery_seconds = measured
        target = self._report.rto_target_seconds
        if target is not None:
            self._report.over_rto = self._report.recovery_seconds > target

    async def _hold(self) -> None:
        """The bake: hold the failed-over state, measuring the stop conditions every interval."""
        run, report = self._run, self._report
        settings = self._input.plan.drill_settings
        report.phase = DrillPhase.BAKE
        start = workflow.now()
        ends = start + self._bake
        report.bake_started_at, report.bake_ends_at = start, ends
        conditions = settings.stop_conditions
        regions = {c.region or self._input.plan.target for c in conditions if isinstance(c, BackendHealthCondition)}
        backends = {region: run.engine.backend(region) for region in sorted(regions)}
        while True:
            if conditions:
                measured = await run.engine.read(
                    activity_api.check_stop_conditions,
                    CheckStopConditions(context=run.engine.context("bake"), conditions=conditions, backends=backends),
                )
                breaches: list[str] = []
                for reading in measured.readings:  # every reading counts, even after a breach
                    condition, summary = conditions[reading.index], report.conditions[reading.index]
                    summary.checks += 1
                    summary.worst = worse(condition, summary.worst, reading.value)
                    summary.last = reading.detail
                    if not holds(condition, reading):
                        summary.breaches += 1
                        breaches.append(breach_text(condition, summary.label, reading, self._input.plan.target))
                if breaches:
                    report.breach = "; ".join(breaches)
                    run.log("stop condition breached", "bake", breach=report.breach)
                    run.notify(NotificationEvent.STOP_CONDITION_BREACHED, "bake", report.breach)
                    raise failure(FailureType.STOP_CONDITION_BREACHED, report.breach)
            remaining = ends - workflow.now()
            if remaining <= timedelta(0):
                return
            await workflow.sleep(min(settings.check_interval, remaining))
            run.saga.check_abort()

    async def _fail_back_and_verify(self) -> FailoverProgress:
        run, report = self._run, self._report
        if run.saga.crossed is not None:
            # A drill told to rehearse a step that cannot be undone (allow_irreversible): it
            # cannot fail back by undoing; what is left is the operator's.
            run.progress.error = f"the drill crossed its point of no return (step '{run.saga.crossed.name}'): it cannot fail back"
            report.outcome = DrillOutcome.FAILED
            report.phase = DrillPhase.DONE
            return await run.end(run.stop_past_point_of_no_return())
        report.phase = DrillPhase.FAILBACK
        started = workflow.now()
        run.log("failback started")
        run.progress.left_changed = await run.saga.compensate()
        if run.progress.left_changed:
            run.progress.error = "failback could not restore every resource"
            report.outcome = DrillOutcome.FAILED
            report.phase = DrillPhase.DONE
            return await run.end(RunStatus.ROLLBACK_INCOMPLETE)
        report.phase = DrillPhase.VERIFY
        await run.saga.shielded(self._verify())
        report.failback_seconds = (workflow.now() - started).total_seconds()
        report.phase = DrillPhase.DONE
        if report.mismatches:
            run.progress.error = "after failback: " + "; ".join(report.mismatches)
            return await self._end(DrillOutcome.FAILED)
        if report.over_rto and self._input.plan.drill_settings.fail_over_rto:
            run.progress.error = (
                f"recovery took {report.recovery_seconds:g}s, over the plan's RTO target of {report.rto_target_seconds:g}s"
            )
            return await self._end(DrillOutcome.FAILED)
        return await self._end(DrillOutcome.PASSED)

    async def _verify(self) -> None:
        """Every resource the failback restored must read back equal to its before-state."""
        checks = [(u, u.read_back) for u in self._run.saga.undone if u.read_back is not None]
        reads = await asyncio.gather(*(read_back() for _, read_back in checks))
        for (undo, _), now in zip(checks, reads, strict=True):
            record, before = undo.record, undo.record.before
            if before is not None and now != before:
                self._report.mismatches.append(
                    f"{record.resource} reads {now.summary()}, before the drill it was {before.summary()}"
                )
            else:
                self._report.verification.append(f"{record.resource}: {now.summary()}, as before the drill")

    async def _end(self, outcome: DrillOutcome) -> FailoverProgress:
        self._report.outcome = outcome
        self._report.phase = DrillPhase.DONE
        return await self._run.end(OUTCOME_STATUS[outcome])
