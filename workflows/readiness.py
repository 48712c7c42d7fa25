"""ReadinessWorkflow: one evaluation of a set of plans against live state (issue 24).

Each service of each plan is read by one ``evaluate_readiness`` activity, all at once; the
workflow turns what they found into each service's and plan's state. It changes nothing: the
activity only reads. An evaluation that could not run (its activity failed every try) is a
finding of its own, so the report always covers every service asked about.

Workflow code only: no I/O, deterministic.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, search_attributes, workflow_types
    from evac.notifications import Notification, NotificationEvent
    from evac.plan import format_duration
    from evac.readiness import (
        MEMO_DIGESTS,
        MEMO_SERVICES,
        MEMO_STATES,
        EvaluateService,
        Finding,
        LastPassedDrill,
        PlanReadiness,
        PlanToEvaluate,
        PreviousReadiness,
        ReadinessInput,
        ReadinessReport,
        ServiceCheck,
        ServiceReadiness,
        change_detail,
        plan_readiness,
        service_readiness,
        service_states,
        worst,
    )
    from evac.resources import StepContext
    from workflows.saga import failure_text

# One service's reads: the source region's within its budget, the rest retried in place.
EVALUATION_TIMEOUT = timedelta(minutes=5)
EVALUATION_RETRIES = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=3)


@workflow.defn(name=workflow_types.READINESS)
class ReadinessWorkflow:
    @workflow.run
    async def run(self, input: ReadinessInput) -> ReadinessReport:
        plans = await asyncio.gather(*(self._plan(item, input.drill_policy) for item in input.plans))
        if input.schedule_id is not None:
            await self._notify_changes(input, list(plans))
        workflow.upsert_memo(
            {
                MEMO_STATES: {plan.file: plan.state for plan in plans},
                MEMO_DIGESTS: {plan.digest: plan.state for plan in plans},
                MEMO_SERVICES: service_states(plans),
            }
        )
        # Findable: `evac runs`-style queries of evaluations by how they ended.
        workflow.upsert_search_attributes([search_attributes.EVAC_OUTCOME.value_set(worst(p.state for p in plans))])
        return ReadinessReport(evaluated_at=workflow.now(), plans=list(plans))

    async def _notify_changes(self, input: ReadinessInput, plans: list[PlanReadiness]) -> None:
        """A scheduled evaluation tells the worker's notification targets of each plan whose state
        differs from the schedule's previous evaluation (a first evaluation: of each plan not
        ready), not of every evaluation. Best effort: neither a failed read nor a failed post
        changes the report."""
        assert input.schedule_id is not None
        try:
            previous = await workflow.execute_activity(
                activity_api.previous_readiness,
                PreviousReadiness(schedule_id=input.schedule_id),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=EVALUATION_RETRIES,
            )
        except FailureError as err:
            workflow.logger.warning("no previous evaluation to compare with", extra={"error": failure_text(err)})
            return
        items = {item.file: item for item in input.plans}
        for plan in plans:
            before = previous.states.get(plan.file) if previous.states is not None else None
            if plan.state == before or (before is None and plan.state != "not_ready"):
                continue  # no change; or a first evaluation of a plan that is ready (warnings included)
            item = items[plan.file]
            notice = Notification(
                event=NotificationEvent.READINESS_CHANGED,
                service=", ".join(item.plan.services),
                kind=item.plan.kind,
                plan=plan.plan,
                source=item.plan.source,
                target=item.plan.target,
                status=plan.state,
                detail=change_detail(plan, before),
                trigger_kind="schedule",
                trigger_by=input.schedule_id,
                at=workflow.now(),
            )
            try:
                await workflow.execute_activity(
                    activity_api.send_notification,
                    notice,
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=EVALUATION_RETRIES,
                )
            except FailureError as err:
                workflow.logger.warning("readiness notification not sent", extra={"error": failure_text(err)})

    async def _plan(self, item: PlanToEvaluate, policy: timedelta | None) -> PlanReadiness:
        services = await asyncio.gather(*(self._service(item, service, policy) for service in item.plan.services))
        return plan_readiness(item, list(services))

    async def _drilled(self, service: str, policy: timedelta) -> Finding | str:
        """Whether the service passed a drill within the policy: a warning when it did not."""
        try:
            seen = await workflow.execute_activity(
                activity_api.last_passed_drill,
                LastPassedDrill(service=service),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=EVALUATION_RETRIES,
            )
        except FailureError as err:
            return Finding(
                service=service, resource="", severity="warning", text=f"its drills could not be read: {failure_text(err)}"
            )
        period = f"{policy.days}d" if policy == timedelta(days=policy.days) else format_duration(policy)
        within = f"the drill policy ({period})"
        if seen.at is None:
            return Finding(service=service, resource="", severity="warning", text=f"no passed drill on record; {within}")
        age = workflow.now() - seen.at
        when = f"the last passed drill ({seen.workflow_id}) ended {seen.at:%Y-%m-%d %H:%M}Z"
        if age > policy:
            return Finding(service=service, resource="", severity="warning", text=f"{when}, longer ago than {within}")
        return f"{when}, within {within}"

    async def _service(self, item: PlanToEvaluate, service: str, policy: timedelta | None) -> ServiceReadiness:
        evaluate = EvaluateService(
            context=StepContext(service=service, step="readiness"),
            plan=item.plan,
            service=service,
            project=item.project,
            topology=item.topologies[service],
        )
        try:
            check = await workflow.execute_activity(
                activity_api.evaluate_readiness,
                evaluate,
                start_to_close_timeout=EVALUATION_TIMEOUT,
                retry_policy=EVALUATION_RETRIES,
                summary=f"readiness of {service} for plan {item.plan.name}",
            )
        except FailureError as err:
            why = f"the evaluation could not run: {failure_text(err)}"
            check = ServiceCheck(findings=[Finding(service=service, resource="", severity="warning", text=why)])
        if policy is not None:
            drilled = await self._drilled(service, policy)
            if isinstance(drilled, Finding):
                check.findings.append(drilled)
            else:
                check.checked.append(drilled)
        return service_readiness(service, check)
