"""ReadinessWorkflow on the time-skipping server (issue 24): every service of every plan is
evaluated, states roll up (a plan is as ready as its least ready service), and a service whose
evaluation could not run is reported, not dropped."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac import workflow_types
from evac.notifications import SEND_NOTIFICATION, Notification, NotificationEvent, NotificationResult, headline
from evac.plan import load_plan
from evac.readiness import (
    EVALUATE_READINESS,
    MEMO_SERVICES,
    MEMO_STATES,
    PREVIOUS_READINESS,
    EvaluateService,
    Finding,
    PlanToEvaluate,
    PreviousReadiness,
    PreviousStates,
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
        handle = await env.client.start_workflow(
            workflow_types.READINESS,
            input,
            id=f"readiness/test/{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=ReadinessReport,
        )
        report = await handle.result()
        described = await handle.describe()

    failover, drill = report.plans
    assert (failover.plan, failover.state) == ("demo-failover", "not_ready")
    # catalog's evaluation could not run: its readiness is unknown, and said so.
    assert [(s.service, s.state) for s in failover.services] == [("checkout", "not_ready"), ("catalog", "warnings")]
    assert (drill.plan, drill.state) == ("checkout-drill", "ready")
    [why] = failover.services[1].findings
    assert why.severity == "warning" and why.text == "the evaluation could not run: the worker cannot reach the cloud"
    assert report.state == "not_ready"
    # Each service's worst state across the plans, findable afterwards (evac audit report reads it):
    # checkout is ready for the drill but not for the failover.
    assert await described.memo_value(MEMO_SERVICES) == {"catalog": "warnings", "checkout": "not_ready"}
    lines = report_lines(report)
    assert f"{failover.file}: plan '{failover.plan}': NOT READY" in lines
    assert "    NOT READY: instance group us-central1/checkout-uc1: too small" in lines
    assert "    warning: the evaluation could not run: the worker cannot reach the cloud" in lines


async def test_a_scheduled_evaluation_notifies_only_the_plans_whose_state_changed(env, task_queue, demo_topology):
    failover, drill = load_plan(DEMO / "failover.yaml", demo_topology), load_plan(DEMO / "drill.yaml", demo_topology)
    sent: list[Notification] = []

    @activity.defn(name=PREVIOUS_READINESS)
    async def previous_readiness(input: PreviousReadiness) -> PreviousStates:
        # Last time both were ready; now the failover is not (the stand-in evaluation finds it so).
        return PreviousStates(states={"failover.yaml": "ready", "drill.yaml": "ready"})

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(input: Notification) -> NotificationResult:
        sent.append(input)
        return NotificationResult(configured=True)

    @activity.defn(name=EVALUATE_READINESS)
    async def evaluate(input: EvaluateService) -> ServiceCheck:
        group = "instance group us-central1/checkout-uc1"
        bad = Finding(service=input.service, resource=group, severity="not_ready", text="quota too small")
        return ServiceCheck(findings=[bad] if input.plan.name == "demo-failover" else [])

    input = ReadinessInput(
        schedule_id="evac-readiness/test",
        plans=[
            PlanToEvaluate(file=f"{name}.yaml", plan=plan, project=demo_topology.project, topologies=dict(demo_topology.services))
            for name, plan in (("failover", failover), ("drill", drill))
        ],
    )
    async with running_worker(env.client, task_queue, [evaluate, previous_readiness, send_notification]):
        handle = await env.client.start_workflow(
            workflow_types.READINESS, input, id=f"readiness/test/{uuid.uuid4()}", task_queue=task_queue
        )
        await handle.result()
        memo = await (await handle.describe()).memo_value(MEMO_STATES)

    assert memo == {"failover.yaml": "not_ready", "drill.yaml": "ready"}
    [notice] = sent
    assert (notice.event, notice.plan, notice.status) == (NotificationEvent.READINESS_CHANGED, "demo-failover", "not_ready")
    assert notice.detail == (
        "failover.yaml: was ready, now NOT READY: checkout: instance group us-central1/checkout-uc1: quota too small; "
        "catalog: instance group us-central1/checkout-uc1: quota too small"
    )
    assert headline(notice) == "Evac readiness of plan demo-failover (checkout, catalog): not ready"


async def test_a_first_scheduled_evaluation_notifies_only_the_plans_not_ready(env, task_queue, demo_topology):
    failover, drill = load_plan(DEMO / "failover.yaml", demo_topology), load_plan(DEMO / "drill.yaml", demo_topology)
    sent: list[Notification] = []

    @activity.defn(name=PREVIOUS_READINESS)
    async def previous_readiness(input: PreviousReadiness) -> PreviousStates:
        return PreviousStates(states=None)  # the schedule's first evaluation

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(input: Notification) -> NotificationResult:
        sent.append(input)
        return NotificationResult(configured=True)

    @activity.defn(name=EVALUATE_READINESS)
    async def evaluate(input: EvaluateService) -> ServiceCheck:
        group = "instance group us-central1/checkout-uc1"
        bad = input.plan.name == "demo-failover"
        finding = Finding(service=input.service, resource=group, severity="not_ready" if bad else "warning", text="quota")
        return ServiceCheck(findings=[finding])

    input = ReadinessInput(
        schedule_id="evac-readiness/first",
        plans=[
            PlanToEvaluate(file=f"{name}.yaml", plan=plan, project=demo_topology.project, topologies=dict(demo_topology.services))
            for name, plan in (("failover", failover), ("drill", drill))
        ],
    )
    async with running_worker(env.client, task_queue, [evaluate, previous_readiness, send_notification]):
        handle = await env.client.start_workflow(
            workflow_types.READINESS, input, id=f"readiness/test/{uuid.uuid4()}", task_queue=task_queue
        )
        await handle.result()
        memo = await (await handle.describe()).memo_value(MEMO_STATES)

    # Ready with warnings is ready (as the evac_plan_ready gauge says): only the failover is news.
    assert memo == {"failover.yaml": "not_ready", "drill.yaml": "warnings"}
    assert [(n.plan, n.status) for n in sent] == [("demo-failover", "not_ready")]
