"""The readiness check's front door: plans and their topologies in, one evaluation out.

The evaluation runs in a worker (``ReadinessWorkflow``): the reads are made with the worker's
own credentials, the ones a run would use, never the caller's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from evac import search_attributes, workflow_types
from evac.config import Settings
from evac.control.findable import parse_since
from evac.control.records import worker_polling
from evac.control.schedules import check_name
from evac.control.start import check_project, load_documents
from evac.errors import BadInput, NoWorker, Refused, from_rpc
from evac.plan import format_duration
from evac.readiness import (
    MEMO_DIGESTS,
    MEMO_STATES,
    PlanReadiness,
    PlanToEvaluate,
    ReadinessInput,
    ReadinessReport,
    ServiceReadiness,
    State,
)

WORKFLOW_ID_PREFIX = "readiness/"


def readiness_input(paths: Sequence[Path], topology: Path | None, settings: Settings) -> ReadinessInput:
    """Each plan checked against its topology (``topology``, else the one beside it); every
    document error of every plan raises at once (``InvalidDocument``)."""
    items = []
    for path in paths:
        plan, topo = load_documents(path, topology)
        check_project(topo, settings)
        topologies = {service: topo.services[service] for service in plan.services}
        items.append(PlanToEvaluate(file=str(path), plan=plan, project=topo.project, topologies=topologies))
    return ReadinessInput(plans=items, drill_policy=parse_since(settings.drill_policy, "drill_policy"))


async def check_readiness(
    client: Client, input: ReadinessInput, task_queue: str, *, require_worker: bool = True
) -> ReadinessReport:
    """One evaluation now, waited for. Refused (``NoWorker``) when no worker polls ``task_queue``."""
    if require_worker and not await worker_polling(client, task_queue):
        raise NoWorker(task_queue, client.namespace)
    report: ReadinessReport = await client.execute_workflow(
        workflow_types.READINESS,
        input,
        id=f"{WORKFLOW_ID_PREFIX}check/{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=ReadinessReport,
    )
    return report


# --- continuous evaluation: a Temporal Schedule per folder of plans -------------------------

SCHEDULE_ID_PREFIX = "evac-readiness/"
EVERY = timedelta(minutes=30)
MIN_EVERY = timedelta(minutes=1)
# The schedule's memo key: the plan files it evaluates.
MEMO_PLANS = "readiness_plans"
# How far back `status` looks for the start of a plan's current state (newest evaluations first).
HISTORY_LOOKBACK = 200


class ReadinessScheduleNotFound(Refused):
    def __init__(self, name: str) -> None:
        super().__init__(f"no readiness schedule '{name}' ('evac readiness serve --plans DIR --name {name}' creates it)")


class PlanStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str
    plan: str
    state: State
    since: datetime = Field(description="The first evaluation of the plan's current state that status found")
    services: list[ServiceReadiness]


class ReadinessStatus(BaseModel):
    """A readiness schedule and what its latest evaluation found."""

    model_config = ConfigDict(extra="forbid")

    name: str
    schedule_id: str
    every: timedelta
    paused: bool
    note: str = ""
    plans_count: int
    next_runs: list[datetime] = Field(default_factory=list)
    evaluated_at: datetime | None = Field(default=None, description="The latest evaluation (None: none yet)")
    plans: list[PlanStatus] = Field(default_factory=list)


def plans_in(folder: Path) -> list[Path]:
    """The plan files of a folder: its YAML files but the topology (``topology.yaml``)."""
    if not folder.is_dir():
        raise BadInput(f"--plans {folder}: not a folder of plans")
    found = sorted(p for p in folder.glob("*.y*ml") if p.stem != "topology")
    if not found:
        raise BadInput(f"--plans {folder}: no plan files (*.yaml) in it")
    return found


def check_every(every: timedelta) -> timedelta:
    if every < MIN_EVERY:
        raise BadInput(f"--every {format_duration(every)}: at most once a minute (an evaluation reads every resource)")
    return every


async def serve(client: Client, name: str, folder: Path, every: timedelta, settings: Settings, identity: str) -> ReadinessStatus:
    """Create the schedule ``evac-readiness/<name>`` that evaluates every plan of ``folder`` every
    ``every`` (the plans as they are now), starting now; run again, it replaces what it evaluates
    and how often. Every plan is checked first: one with an error creates nothing."""
    sid = SCHEDULE_ID_PREFIX + check_name(name)
    input = readiness_input(plans_in(folder), None, settings).model_copy(update={"schedule_id": sid})
    action = ScheduleActionStartWorkflow(
        workflow_types.READINESS,
        input,
        id=f"readiness/{name}",  # Temporal appends the action's time
        task_queue=settings.task_queue,
        typed_search_attributes=TypedSearchAttributes([SearchAttributePair(search_attributes.EVAC_SCHEDULE_ID, sid)]),
        static_summary=f"readiness of {len(input.plans)} plan(s) from {folder}",
    )
    schedule = Schedule(
        action=action,
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=check_every(every))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"served by {identity} from {folder}"),
    )
    memo = {MEMO_PLANS: [p.file for p in input.plans]}
    try:
        try:
            await client.create_schedule(sid, schedule, trigger_immediately=True, memo=memo)
        except ScheduleAlreadyRunningError:
            # Replaced whole (a schedule's memo cannot be updated): its evaluations so far stay.
            await client.get_schedule_handle(sid).delete()
            await client.create_schedule(sid, schedule, trigger_immediately=True, memo=memo)
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    return await status(client, name)


async def _described(client: Client, name: str) -> tuple[ScheduleHandle, ScheduleDescription]:
    handle = client.get_schedule_handle(SCHEDULE_ID_PREFIX + check_name(name))
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ReadinessScheduleNotFound(name) from None
        raise from_rpc(exc, namespace=client.namespace) from exc


async def status(client: Client, name: str) -> ReadinessStatus:
    """The schedule and its latest evaluation: each plan's state, since when, and its findings."""
    _, described = await _described(client, name)
    intervals = described.schedule.spec.intervals
    view = ReadinessStatus(
        name=name,
        schedule_id=described.id,
        every=intervals[0].every if intervals else EVERY,
        paused=described.schedule.state.paused,
        note=described.schedule.state.note or "",
        plans_count=len(await described.memo_value(MEMO_PLANS, [])),
        next_runs=list(described.info.next_action_times[:3]),
    )
    query = f"WorkflowType = '{workflow_types.READINESS}' AND EvacScheduleId = '{described.id}' AND ExecutionStatus = 'Completed'"
    try:
        runs = [run async for run in client.list_workflows(query, limit=HISTORY_LOOKBACK)]
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    if not runs:
        return view
    latest = runs[0]
    report: ReadinessReport = await client.get_workflow_handle(
        latest.id, run_id=latest.run_id, result_type=ReadinessReport
    ).result()
    states = [await run.memo_value(MEMO_STATES, {}) for run in runs]
    for plan in report.plans:
        since = report.evaluated_at
        for run, memo in zip(runs, states, strict=True):
            if memo.get(plan.file) != plan.state:
                break
            since = run.start_time
        view.plans.append(PlanStatus(file=plan.file, plan=plan.plan, state=plan.state, since=since, services=plan.services))
    view.evaluated_at = report.evaluated_at
    return view


async def pause(client: Client, name: str, note: str) -> None:
    handle, _ = await _described(client, name)
    await handle.pause(note=note)


async def unpause(client: Client, name: str, note: str | None = None) -> None:
    handle, _ = await _described(client, name)
    await handle.unpause(note=note)


async def delete(client: Client, name: str) -> None:
    handle, _ = await _described(client, name)
    await handle.delete()


async def latest_of_plan(client: Client, digest: str, lookback: int = 50) -> tuple[datetime, PlanReadiness] | None:
    """The newest evaluation that has ended of the plan with ``digest`` (among the namespace's last
    ``lookback`` evaluations): when, and what it found; None when there is none."""
    query = f"WorkflowType = '{workflow_types.READINESS}' AND ExecutionStatus = 'Completed'"
    try:
        async for run in client.list_workflows(query, limit=lookback):
            digests: dict[str, str] = await run.memo_value(MEMO_DIGESTS, {})
            if digest not in digests:
                continue
            handle = client.get_workflow_handle(run.id, run_id=run.run_id, result_type=ReadinessReport)
            report: ReadinessReport = await handle.result()
            found = next((plan for plan in report.plans if plan.digest == digest), None)
            return None if found is None else (report.evaluated_at, found)
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    return None


async def latest_states(client: Client, lookback: int = HISTORY_LOOKBACK) -> dict[str, dict[str, State]]:
    """Each readiness schedule's latest ended evaluation: its plans' states by file, by schedule id."""
    query = f"WorkflowType = '{workflow_types.READINESS}' AND ExecutionStatus = 'Completed'"
    found: dict[str, dict[str, State]] = {}
    try:
        async for run in client.list_workflows(query, limit=lookback):
            sid = run.typed_search_attributes.get(search_attributes.EVAC_SCHEDULE_ID)
            if sid is None or sid in found:
                continue  # a one-off check, or a schedule whose newer evaluation was read
            found[sid] = await run.memo_value(MEMO_STATES, {})
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    return found
