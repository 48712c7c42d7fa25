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
    from evac import activity_api, workflow_types
    from evac.readiness import (
        MEMO_STATES,
        EvaluateService,
        Finding,
        PlanReadiness,
        PlanToEvaluate,
        ReadinessInput,
        ReadinessReport,
        ServiceCheck,
        ServiceReadiness,
        plan_readiness,
        service_readiness,
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
        plans = await asyncio.gather(*(self._plan(item) for item in input.plans))
        workflow.upsert_memo({MEMO_STATES: {plan.file: plan.state for plan in plans}})
        return ReadinessReport(evaluated_at=workflow.now(), plans=list(plans))

    async def _plan(self, item: PlanToEvaluate) -> PlanReadiness:
        services = await asyncio.gather(*(self._service(item, service) for service in item.plan.services))
        return plan_readiness(item, list(services))

    async def _service(self, item: PlanToEvaluate, service: str) -> ServiceReadiness:
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
        return service_readiness(service, check)
