"""ReadinessWorkflow on the time-skipping server (issue 24): every service of every plan is
evaluated, states roll up (a plan is as ready as its least ready service), and a service whose
evaluation could not run is reported, not dropped."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac import workflow_types
from evac.plan import load_plan
from evac.readiness import (
    EVALUATE_READINESS,
    EvaluateService,
    Finding,
    PlanToEvaluate,
    ReadinessInput,
    ReadinessReport,
    ServiceCheck,
    report_lines,
)
from tests.conftest import DEMO
from tests.workflow.conftest import running_worker


@activity.defn(name=EVALUATE_READINESS)
async def evaluate_readiness(input: EvaluateService) -> ServiceCheck:
    if input.service == "catalog":
        raise ApplicationError("the worker cannot reach the cloud", type="CloudRequestRefused", non_retryable=True)
    quota = Finding(
        service=input.service, resource="instance group us-central1/checkout-uc1", severity="not_ready", text="too small"
    )
    findings = [quota] if input.plan.name == "demo-failover" else []
    return ServiceCheck(findings=findings, checked=["backend: scaler 1"])


async def test_one_evaluation_covers_every_service_and_rolls_the_states_up(env, task_queue, demo_topology):
    plans = [load_plan(DEMO / "failover.yaml", demo_topology), load_plan(DEMO / "drill.yaml", demo_topology)]
    input = ReadinessInput(
        plans=[
            PlanToEvaluate(
                file=f"{plan.name}.yaml",
                plan=plan,
                project=demo_topology.project,
                topologies={s: demo_topology.services[s] for s in plan.services},
            )
            for plan in plans
        ]
    )
    async with running_worker(env.client, task_queue, [evaluate_readiness]):
        report = await env.client.execute_workflow(
            workflow_types.READINESS,
            input,
            id=f"readiness/test/{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=ReadinessReport,
        )

    failover, drill = report.plans
    assert (failover.plan, failover.state) == ("demo-failover", "not_ready")
    # catalog's evaluation could not run: its readiness is unknown, and said so.
    assert [(s.service, s.state) for s in failover.services] == [("checkout", "not_ready"), ("catalog", "warnings")]
    assert (drill.plan, drill.state) == ("checkout-drill", "ready")
    [why] = failover.services[1].findings
    assert why.severity == "warning" and why.text == "the evaluation could not run: the worker cannot reach the cloud"
    assert report.state == "not_ready"
    lines = report_lines(report)
    assert f"{failover.file}: plan '{failover.plan}': NOT READY" in lines
    assert "    NOT READY: instance group us-central1/checkout-uc1: too small" in lines
    assert "    warning: the evaluation could not run: the worker cannot reach the cloud" in lines
