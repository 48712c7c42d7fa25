"""RegionGuardianWorkflow: one per region (id ``guardian/<region>``), it keeps the region's firing
alerts and decides, by its policy, whether to fail the region's services over.

The alert receiver signal-with-starts it: ``alerts`` (an :class:`AlertBatch`, applied to the
state at once, so duplicates and storms collapse into one evidence set) and ``configure`` (the
current policy and plans). Its loop, each time something changed or a timer it set fires:

1. **assess** — pure code (:mod:`evac.alerting.policy`) says which services have complete evidence
   (candidates) and which are held, and why; a held service's evidence completes at ``wake_at``,
   when a timer wakes the guardian again.
2. **facts** — one activity (``gather_facts``) reads what the guards need about the candidates
   only: the kill switch, the target's health and alerts, runs and recent failovers.
3. **judge** — pure code gives each candidate ``fire`` or ``suppressed`` by the first guard that
   applies. Every decision is recorded in the state (the ``status`` query, ``evac alerts
   status``) and logged.
4. **fire** — a ``FailoverWorkflow`` child (by name; its result is never awaited) under the
   service's lock (``failover/<service>``), with the alert trigger and its evidence,
   ``ParentClosePolicy.ABANDON``: the failover outlives this run and its continue-as-new. A
   service that already has a run is suppressed ``busy``.

With the policy's ``region_wide = "evacuate"``, region-wide
alerts are the evidence of one ``EvacuationWorkflow`` child of the whole region (id
``evacuation/<region>``, auto-target, ``ParentClosePolicy.ABANDON``) instead of a failover of
each service; a region that already has one running is suppressed ``busy``.

Suppressed candidates are decided again after ``GUARDIAN_RECHECK`` (a target recovers, a
cooldown ends). Before its history grows large the guardian continues as new with its state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, search_attributes, workflow_types
    from evac.activity_api import FactsRequest, ServiceQuery
    from evac.alerting import policy as alert_policy
    from evac.alerting import status as guardian_status
    from evac.alerting.models import (
        AlertBatch,
        Decision,
        GuardianConfig,
        GuardianInput,
        GuardianPlan,
        GuardianState,
        StartedEvacuation,
        StartedFailover,
        WorldFacts,
    )
    from evac.alerting.policy import Candidate, EvacuationCandidate
    from evac.alerting.status import GuardianStatus, PlanSummary
    from evac.bindings import backend_ref
    from evac.evacuation import EvacuationInput, evacuation_workflow_id
    from evac.logging import workflow_log_extra
    from evac.plan import format_duration
    from evac.resources import BackendRef
    from evac.runs import failover_workflow_id
    from workflows.children import start_service_run_unawaited
    from workflows.saga import failure_text

FACTS_TIMEOUT = timedelta(seconds=30)
FACTS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
# Never spin: a timer is at least this long, whatever a computed wake time says.
MIN_WAIT = timedelta(seconds=1)
STEP = "guardian"
# EvacTargetRegion of an auto-target evacuation (as evac/control/evacuate.py sets it).
AUTO_TARGET_ATTRIBUTE = "auto"


@workflow.defn(name=workflow_types.GUARDIAN)
class RegionGuardianWorkflow:
    @workflow.init
    def __init__(self, input: GuardianInput) -> None:
        self._region = input.region
        self._policy = input.policy
        self._plans: list[GuardianPlan] = list(input.plans)
        self._evacuation: EvacuationInput | None = input.evacuation
        state = input.state.model_copy(deep=True) if input.state is not None else GuardianState(region=input.region)
        self._state = state
        self._wake_at: datetime | None = None
        self._changed = True  # the first pass decides on the state it was given (a continue-as-new's too)
        # Deliveries not applied yet: a storm's hundreds of signals in one workflow task are applied
        # as one batch (one copy of the state, not one each), within the task's time limit.
        self._pending: list[AlertBatch] = []

    # --- messages ---------------------------------------------------------------------

    @workflow.signal
    def alerts(self, batch: AlertBatch) -> None:
        """Queue a delivery; the loop applies every queued one in the same workflow task."""
        self._pending.append(batch)
        self._changed = True

    @workflow.signal
    def recheck(self) -> None:
        """Decide again now (``evac auto enable`` sends it: a suppressed failover need not wait
        for the next re-check)."""
        self._changed = True

    @workflow.signal
    def configure(self, config: GuardianConfig) -> None:
        """The receiver's current policy and plans (sent on every receiver start)."""
        problem = config.size_problem(self._region)
        if problem is not None:  # sent by someone other than the receiver, which refuses it first
            self._log("configure ignored", error=problem)
            return
        self._policy = config.policy
        self._plans = list(config.plans)
        self._evacuation = config.evacuation
        self._changed = True
        self._log("guardian configured", plans=len(self._plans), auto=sum(1 for plan in self._plans if plan.auto))

    @workflow.query
    def status(self) -> GuardianStatus:
        info = workflow.info()
        return GuardianStatus(
            region=self._region,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            policy=self._policy,
            plans=[PlanSummary.of(plan) for plan in self._plans],
            state=_applied(self._state, self._pending, workflow.now()),
            wake_at=self._wake_at,
        )

    # --- the loop -----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: GuardianInput) -> None:
        self._log("guardian started", runs=self._state.runs, firing=len(self._state.firing))
        while True:
            self._changed = False
            self._wake_at = await self._decide()
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._continue_as_new()
            await self._sleep()

    async def _sleep(self) -> None:
        """Until something changes, or until the wake time (if any)."""
        if self._changed:
            return
        timeout: timedelta | None = None
        if self._wake_at is not None:
            timeout = max(self._wake_at - workflow.now(), MIN_WAIT)
        try:
            await workflow.wait_condition(lambda: self._changed, timeout=timeout)
        except TimeoutError:
            pass

    def _evacuates(self) -> bool:
        """Whether region-wide alerts evacuate the region (the policy says so)."""
        return self._policy.region_wide == "evacuate"

    def _apply_pending(self) -> None:
        """Apply the queued deliveries (firing added, resolved withdrawn, duplicates counted)."""
        if not self._pending:
            return
        before, now = self._state, workflow.now()
        self._state = _applied(before, self._pending, now)
        self._pending = []
        wide = not self._evacuates()
        for decision in alert_policy.withdrawn(before, self._state, self._plans, now, region_wide=wide):
            self._record(decision)

    async def _decide(self) -> datetime | None:
        """One pass: the services, then (region_wide = evacuate) the region. Returns when to decide again."""
        wake_at = await self._decide_services()
        if self._evacuates():
            wake_at = _earliest(wake_at, await self._decide_evacuation())
        return wake_at

    async def _decide_services(self) -> datetime | None:
        """Assess, gather facts for the candidates, judge, fire. Returns when to decide again."""
        self._apply_pending()
        wide = not self._evacuates()
        assessment = alert_policy.assess(self._state, self._policy, self._plans, workflow.now(), region_wide=wide)
        for hold in assessment.holds:
            self._record(hold)
        wake_at = assessment.wake_at
        if not assessment.candidates:
            return wake_at
        facts = await self._gather(assessment.candidates)
        now = workflow.now()
        if isinstance(facts, str):
            for candidate in assessment.candidates:
                self._record(self._unreadable(candidate, facts, now))
            return _earliest(wake_at, now + guardian_status.GUARDIAN_RECHECK)
        # Alerts may have arrived or resolved while the facts were read: judge the evidence as it is now.
        self._apply_pending()
        fresh = alert_policy.assess(self._state, self._policy, self._plans, now, region_wide=not self._evacuates())
        gathered = {candidate.service for candidate in assessment.candidates}
        candidates = [candidate for candidate in fresh.candidates if candidate.service in gathered]
        if len(candidates) < len(fresh.candidates):
            self._changed = True  # a new candidate: its facts are read on the next pass
        by_service = {candidate.service: candidate for candidate in candidates}
        recheck = False
        for decision in alert_policy.judge(candidates, facts, self._policy, self._state, now):
            if decision.verdict == "fire" and decision.service in by_service:
                decision = await self._fire(by_service[decision.service], decision)
            if decision.verdict != "fire":
                recheck = True
            self._record(decision)
        return _earliest(fresh.wake_at, now + guardian_status.GUARDIAN_RECHECK if recheck else None)

    async def _decide_evacuation(self) -> datetime | None:
        """The region's evacuation: assess, read the kill switch, judge, start. Returns when to decide again."""
        self._apply_pending()
        assessment = alert_policy.assess_evacuation(self._state, self._policy, self._evacuation, workflow.now())
        if assessment.hold is not None:
            self._record(assessment.hold)
        if assessment.candidate is None or self._evacuation is None:
            return assessment.wake_at
        facts = await self._gather([])
        now = workflow.now()
        recheck = now + guardian_status.GUARDIAN_RECHECK
        if isinstance(facts, str):
            self._record(
                Decision(
                    at=now,
                    verdict="hold",
                    reason=(
                        f"the facts the guards need could not be read ({facts}); deciding again in "
                        f"{format_duration(guardian_status.GUARDIAN_RECHECK)}"
                    ),
                    evidence=list(assessment.candidate.evidence),
                    plan=alert_policy.EVACUATION_PLAN,
                    target=alert_policy.AUTO_TARGET,
                )
            )
            return recheck
        # Alerts may have arrived or resolved while the facts were read: judge the evidence as it is now.
        self._apply_pending()
        fresh = alert_policy.assess_evacuation(self._state, self._policy, self._evacuation, now)
        if fresh.candidate is None:
            if fresh.hold is not None:
                self._record(fresh.hold)
            return fresh.wake_at
        decision = alert_policy.judge_evacuation(fresh.candidate, facts, self._policy, self._state, self._evacuation, now)
        if decision.verdict == "fire":
            decision = await self._evacuate(fresh.candidate, self._evacuation, decision)
        self._record(decision)
        return None if decision.verdict == "fire" else recheck

    async def _evacuate(self, candidate: EvacuationCandidate, evacuation: EvacuationInput, decision: Decision) -> Decision:
        """Start the region's evacuation; its decision with the run it started, or suppressed ``busy``."""
        now = workflow.now()
        workflow_id = evacuation_workflow_id(self._region)
        input = alert_policy.evacuation_input(candidate, evacuation, self._region)
        by = input.trigger.by
        try:
            # By name, never awaited: the evacuation outlives this run and its continue-as-new.
            handle = await workflow.start_child_workflow(
                workflow_types.EVACUATION,
                input,
                id=workflow_id,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(search_attributes.EVAC_KIND, "evacuation"),
                        SearchAttributePair(search_attributes.EVAC_SOURCE_REGION, self._region),
                        SearchAttributePair(search_attributes.EVAC_TARGET_REGION, AUTO_TARGET_ATTRIBUTE),
                        SearchAttributePair(search_attributes.EVAC_TRIGGER, input.trigger.kind),
                        SearchAttributePair(search_attributes.EVAC_INITIATOR, by),
                    ]
                ),
                static_summary=f"evacuation (alert) of {self._region}: {len(input.service_names())} services -> auto-target",
            )
        except WorkflowAlreadyStartedError:
            return decision.model_copy(
                update={
                    "verdict": "suppressed",
                    "guard": "busy",
                    "reason": f"{workflow_id} was already running when the evacuation was to start; nothing was started",
                }
            )
        run_id = handle.first_execution_run_id or ""
        started = StartedEvacuation(
            workflow_id=workflow_id,
            run_id=run_id,
            at=now,
            services=len(input.service_names()),
            evidence=list(candidate.evidence),
        )
        alert_policy.note_started(self._state, started)
        return decision.model_copy(update={"run_id": run_id})

    async def _gather(self, candidates: Sequence[Candidate]) -> WorldFacts | str:
        """The facts for the candidates, or why they could not be read."""
        request = FactsRequest(
            region=self._region,
            services=[
                ServiceQuery(
                    service=candidate.service,
                    target=candidate.plan.target,
                    target_required=alert_policy.target_required(candidate.plan.input.plan),
                    target_backend=_target_backend(candidate.plan),
                )
                for candidate in candidates
            ],
        )
        try:
            return await workflow.execute_activity(
                activity_api.gather_facts, request, start_to_close_timeout=FACTS_TIMEOUT, retry_policy=FACTS_RETRY
            )
        except FailureError as err:
            if is_cancelled_exception(err):
                raise
            return failure_text(err)

    async def _fire(self, candidate: Candidate, decision: Decision) -> Decision:
        """Start the failover; its decision with the run it started, or suppressed ``busy``."""
        now = workflow.now()
        plan = candidate.plan
        workflow_id = failover_workflow_id(candidate.service)
        try:
            input = alert_policy.failover_input(candidate, self._policy, self._region, now)
        except ValueError as err:  # a plan not marked auto that an approval step cannot be added to
            return decision.model_copy(
                update={"verdict": "suppressed", "guard": "invalid_plan", "reason": f"{err}; nothing was started"}
            )
        try:
            # Never awaited: the failover outlives the guardian (start_service_run_unawaited).
            summary = f"{plan.plan_name} (alert): {candidate.service} {self._region} -> {plan.target}"
            handle = await start_service_run_unawaited(input, summary)
        except WorkflowAlreadyStartedError:
            return decision.model_copy(
                update={
                    "verdict": "suppressed",
                    "guard": "busy",
                    "reason": f"{workflow_id} was already running when the failover was to start; nothing was started",
                    "workflow_id": workflow_id,
                }
            )
        run_id = handle.first_execution_run_id or ""
        started = StartedFailover(
            service=candidate.service,
            workflow_id=workflow_id,
            run_id=run_id,
            target=plan.target,
            at=now,
            evidence=list(candidate.evidence),
            approval_required=not plan.auto,
        )
        alert_policy.note_started(self._state, started)
        return decision.model_copy(
            update={"workflow_id": workflow_id, "run_id": run_id, "plan": plan.plan_name, "target": plan.target}
        )

    # --- the record ---------------------------------------------------------------------

    def _record(self, decision: Decision) -> None:
        """Record a decision (a repeat of the service's previous one is not) and log what was recorded."""
        alert_policy.record(self._state, decision)
        decisions = self._state.decisions
        if decisions and decisions[-1] == decision:
            self._log(
                f"guardian decision: {decision.verdict}",
                service=decision.service or "-",
                verdict=decision.verdict,
                guard=decision.guard,
                reason=decision.reason,
                workflow_id=decision.workflow_id,
            )

    def _unreadable(self, candidate: Candidate, why: str, now: datetime) -> Decision:
        return Decision(
            at=now,
            service=candidate.service,
            verdict="hold",
            reason=(
                f"the facts the guards need could not be read ({why}); deciding again in "
                f"{format_duration(guardian_status.GUARDIAN_RECHECK)}"
            ),
            evidence=list(candidate.evidence),
            plan=candidate.plan.plan_name,
            target=candidate.plan.target,
        )

    # --- continue-as-new ------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > guardian_status.GUARDIAN_HISTORY_LIMIT

    def _continue_as_new(self) -> NoReturn:
        self._apply_pending()  # nothing queued is left behind: the new run starts from the whole state
        state = self._state.model_copy(update={"runs": self._state.runs + 1})
        self._log("guardian continues as new", runs=state.runs, firing=len(state.firing), received=state.received)
        workflow.continue_as_new(
            GuardianInput(region=self._region, policy=self._policy, plans=self._plans, evacuation=self._evacuation, state=state)
        )

    def _log(self, message: str, service: str = "-", **extra: object) -> None:
        workflow.logger.info(message, extra={**workflow_log_extra(service, STEP), "region": self._region, **extra})


def _target_backend(plan: GuardianPlan) -> BackendRef | None:
    """The target's backend the plan's topology names (None: the topology has no such region)."""
    if plan.target not in plan.input.topology.regions:
        return None
    return backend_ref(plan.input.project, plan.input.topology, plan.target)


def _applied(state: GuardianState, pending: Sequence[AlertBatch], now: datetime) -> GuardianState:
    """``state`` with the queued deliveries applied as one batch, in order (all at ``now``, the
    same instant: an alert resolved and fired again within one workflow task leaves no gap)."""
    if not pending:
        return state
    # Built, not validated: each delivery was, and together they may hold more than one signal takes.
    merged = AlertBatch.model_construct(
        alerts=[alert for batch in pending for alert in batch.alerts], received_at=max(b.received_at for b in pending)
    )
    return alert_policy.apply_batch(state, merged, now)


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None
