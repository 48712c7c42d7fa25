"""Schedules of drills (Temporal Schedules): create, list, describe, pause, unpause, trigger, delete.

Each schedule is ``evac-drill/<name>``; its action starts ``ScheduledDrillWorkflow`` with the
plan as it was validated at creation (the digest is recorded). Overlap policy SKIP: the
launcher spans its drills, so a schedule's drill never overlaps itself. What each action did
is read from the launcher's memo, so ``list`` and ``describe`` need no worker.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecution,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from evac import search_attributes
from evac.control.start import drill_inputs
from evac.errors import BadInput, Refused, Unavailable, from_rpc
from evac.plan import MAX_BAKE_CHECKS, Duration, Plan, format_duration, parse_duration
from evac.runs import Trigger
from evac.schedules import (
    MEMO_SCHEDULE,
    MEMO_SCHEDULED_RUN,
    SCHEDULE_ID_PREFIX,
    ScheduledDrillInput,
    ScheduledOutcome,
    ScheduledRun,
    schedule_id,
)
from evac.topology import Topology
from workflows.scheduled import ScheduledDrillWorkflow

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every ")
NEXT_RUNS = 3
RECENT_RUNS = 10
MAX_JITTER = timedelta(days=1)


class InvalidSchedule(BadInput):
    """A schedule argument that cannot be used (name, cron, time zone, jitter, bake, plan kind)."""


class ScheduleExists(Refused):
    def __init__(self, name: str):
        super().__init__(
            f"schedule '{name}' already exists ({schedule_id(name)}); delete it first "
            f"('evac schedule delete {name}') or choose another name; nothing was created"
        )


class ScheduleNotFound(Refused):
    def __init__(self, name: str):
        super().__init__(f"no schedule '{name}' ({schedule_id(name)}); 'evac schedule list' shows the schedules")


class ScheduleBusy(Refused):
    def __init__(self, name: str, running: list[str]):
        super().__init__(
            f"schedule '{name}' has a drill running ({', '.join(running)}); a trigger now would be skipped "
            "(a schedule's drill never overlaps itself); nothing was triggered"
        )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleMemo(_Model):
    """What a schedule runs, kept in its memo: the server rewrites cron text into calendars."""

    cron: str
    plan_name: str
    plan_digest: str
    services: list[str]
    bake: Duration | None = None
    created_by: str


class ScheduleView(_Model):
    """One schedule as ``list`` and ``describe`` show it."""

    name: str
    schedule_id: str
    cron: str
    timezone: str
    jitter: Duration | None = None
    bake: Duration | None = None
    plan_name: str
    plan_digest: str
    services: list[str]
    created_by: str
    paused: bool
    note: str = ""
    next_runs: list[datetime] = Field(default_factory=list)
    running: list[str] = Field(default_factory=list, description="Launchers running now (workflow ids)")
    recent: list[ScheduledRun] = Field(default_factory=list, description="The latest runs, newest last")

    @property
    def last(self) -> ScheduledRun | None:
        return self.recent[-1] if self.recent else None


# --- checks -------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidSchedule(
            f"schedule name '{name}' must be lowercase letters, digits and '-' (1-63 characters, like weekly-checkout)"
        )
    return name


def check_cron(cron: str) -> str:
    """A first check of the text; Temporal's own parser has the last word (see create_schedule)."""
    text = " ".join(cron.split())
    fields = text.split(" ")
    if not text.startswith(_CRON_MACROS) and not 5 <= len(fields) <= 7:
        raise InvalidSchedule(
            f"--cron '{cron}' has {len(fields) if text else 0} fields; a cron expression has 5 "
            '(minute hour day-of-month month day-of-week, like "0 10 * * TUE") or is a macro like @daily'
        )
    return text


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"--timezone '{timezone}' is not an IANA time zone (like Europe/Stockholm or UTC)") from None
    return timezone


def parse_jitter(jitter: str | None) -> timedelta | None:
    if jitter is None:
        return None
    try:
        value = parse_duration(jitter)
    except ValueError as exc:
        raise InvalidSchedule(f"--jitter: {exc}") from None
    if value > MAX_JITTER:
        raise InvalidSchedule(f"--jitter {jitter} is longer than {format_duration(MAX_JITTER)}")
    return value


def check_bake(plan: Plan, bake: str | None) -> timedelta | None:
    """``--bake`` as ``evac drill`` reads it; and the plan must be a drill."""
    if plan.kind != "drill":
        raise InvalidSchedule(f"plan '{plan.name}' is a failover plan: a schedule runs drills (kind: drill); nothing was created")
    if bake is None:
        return None
    try:
        value = parse_duration(bake)
    except ValueError as exc:
        raise InvalidSchedule(f"--bake: {exc}; nothing was created") from None
    if value <= timedelta(0):
        raise InvalidSchedule("--bake must be longer than 0s; nothing was created")
    interval = plan.drill_settings.check_interval
    if value / interval > MAX_BAKE_CHECKS:
        raise InvalidSchedule(
            f"--bake {bake} checked every {format_duration(interval)} makes more than {MAX_BAKE_CHECKS} checks; "
            "give a shorter bake; nothing was created"
        )
    return value


# --- create ---------------------------------------------------------------------------


def scheduled_input(
    name: str,
    plan: Plan,
    topology: Topology,
    identity: str,
    bake: timedelta | None = None,
    approver_groups: Mapping[str, Sequence[str]] | None = None,
) -> ScheduledDrillInput:
    """The launcher's input: the plan and one drill input per service, triggered by the schedule
    (approver groups, like the plan, resolved now)."""
    sid = schedule_id(name)
    trigger = Trigger(kind="schedule", by=sid, reason=f"scheduled drill (schedule created by {identity})", schedule_id=sid)
    drills = [
        d.model_copy(update={"trigger": trigger})
        for d in drill_inputs(plan, topology, trigger, bake, approver_groups=approver_groups)
    ]
    return ScheduledDrillInput(schedule_id=sid, plan=plan, plan_digest=plan.digest(), bake=bake, drills=drills)


async def create_schedule(
    client: Client,
    name: str,
    plan: Plan,
    topology: Topology,
    *,
    cron: str,
    task_queue: str,
    identity: str,
    timezone: str | None = None,
    jitter: timedelta | None = None,
    bake: timedelta | None = None,
    approver_groups: Mapping[str, Sequence[str]] | None = None,
) -> ScheduleView:
    """Create the schedule (refused if the name is taken); its view with the next run times."""
    input = scheduled_input(check_name(name), plan, topology, identity, bake, approver_groups)
    sid = input.schedule_id
    memo = ScheduleMemo(
        cron=check_cron(cron),
        plan_name=plan.name,
        plan_digest=input.plan_digest,
        services=list(plan.services),
        bake=bake,
        created_by=identity,
    )
    action = ScheduleActionStartWorkflow(
        ScheduledDrillWorkflow.run,
        input,
        id=sid,  # Temporal appends the action's time: evac-drill/<name>-2026-12-01T10:00:00Z
        task_queue=task_queue,
        typed_search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.EVAC_SCHEDULE_ID, sid),
                SearchAttributePair(search_attributes.EVAC_PLAN, plan.name),
                SearchAttributePair(search_attributes.EVAC_TRIGGER, "schedule"),
            ]
        ),
        static_summary=f"scheduled drill {sid}: plan {plan.name}, {', '.join(plan.services)}",
    )
    schedule = Schedule(
        action=action,
        spec=ScheduleSpec(
            cron_expressions=[memo.cron], jitter=jitter, time_zone_name=check_timezone(timezone) if timezone else None
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"created by {identity}"),
    )
    try:
        await client.create_schedule(sid, schedule, memo={MEMO_SCHEDULE: memo})
    except ScheduleAlreadyRunningError:
        raise ScheduleExists(name) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidSchedule(f"Temporal refused the schedule: {exc.message}; nothing was created") from exc
        raise from_rpc(exc, namespace=client.namespace) from exc
    return await describe_schedule(client, name, recent=0)


# --- read -----------------------------------------------------------------------------


def _started(actions: Sequence[ScheduleActionExecution]) -> list[ScheduleActionExecutionStartWorkflow]:
    return [a for a in actions if isinstance(a, ScheduleActionExecutionStartWorkflow)]


async def _describe(client: Client, name: str) -> tuple[ScheduleHandle, ScheduleDescription]:
    handle = client.get_schedule_handle(schedule_id(name))
    try:
        return handle, await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleNotFound(name) from None
        raise from_rpc(exc, namespace=client.namespace) from exc


async def run_record(client: Client, workflow_id: str, run_id: str | None = None) -> ScheduledRun:
    """A launcher's record from its memo (no worker needed); one that ended outside its own
    code (terminated, timed out) says so."""
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id, run_id=run_id) from exc
    record: ScheduledRun | None = None
    if MEMO_SCHEDULED_RUN in (await described.memo()):
        record = await described.memo_value(MEMO_SCHEDULED_RUN, type_hint=ScheduledRun)
    if record is None:
        record = ScheduledRun(schedule_id="", workflow_id=workflow_id, run_id=described.run_id, plan_name="", plan_digest="")
    status = described.status
    if record.outcome == ScheduledOutcome.RUNNING and status not in (None, WorkflowExecutionStatus.RUNNING):
        record.outcome = ScheduledOutcome.FAILED
        record.reason = f"the scheduled drill's launcher ended as {status.name.lower()} before it recorded an outcome"
        record.ended_at = described.close_time
    return record


async def _view(client: Client, name: str, described: ScheduleDescription, recent: int) -> ScheduleView:
    memo = await described.memo_value(MEMO_SCHEDULE, type_hint=ScheduleMemo)
    spec, info = described.schedule.spec, described.info
    actions = _started([a.action for a in info.recent_actions])[-recent:] if recent else []
    records = await asyncio.gather(*(run_record(client, a.workflow_id, a.first_execution_run_id) for a in actions))
    return ScheduleView(
        name=name,
        schedule_id=described.id,
        cron=memo.cron,
        timezone=spec.time_zone_name or "UTC",
        jitter=spec.jitter or None,
        bake=memo.bake,
        plan_name=memo.plan_name,
        plan_digest=memo.plan_digest,
        services=memo.services,
        created_by=memo.created_by,
        paused=described.schedule.state.paused,
        note=described.schedule.state.note or "",
        next_runs=list(info.next_action_times[:NEXT_RUNS]),
        running=[a.workflow_id for a in _started(info.running_actions)],
        recent=list(records),
    )


async def describe_schedule(client: Client, name: str, recent: int = RECENT_RUNS) -> ScheduleView:
    _, described = await _describe(client, check_name(name))
    return await _view(client, name, described, recent)


async def list_schedules(client: Client) -> list[ScheduleView]:
    """Every Evac schedule of the namespace, by name, each with its last run."""
    try:
        names = sorted(
            [
                s.id.removeprefix(SCHEDULE_ID_PREFIX)
                async for s in await client.list_schedules()
                if s.id.startswith(SCHEDULE_ID_PREFIX)
            ]
        )
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    views: list[ScheduleView] = []
    for name in names:
        try:
            _, described = await _describe(client, name)
        except ScheduleNotFound:
            continue  # deleted since it was listed
        views.append(await _view(client, name, described, recent=1))
    return views


# --- change ---------------------------------------------------------------------------


async def _act(client: Client, name: str, action: str, note: str | None = None) -> None:
    handle, _ = await _describe(client, check_name(name))
    try:
        if action == "pause":
            await handle.pause(note=note)
        elif action == "unpause":
            await handle.unpause(note=note)
        else:
            await handle.delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleNotFound(name) from None
        raise from_rpc(exc, namespace=client.namespace) from exc


async def pause_schedule(client: Client, name: str, note: str) -> None:
    await _act(client, name, "pause", note)


async def unpause_schedule(client: Client, name: str, note: str | None = None) -> None:
    await _act(client, name, "unpause", note)


async def delete_schedule(client: Client, name: str) -> None:
    """Delete the schedule; a drill it started goes on to its end (its record stays in history)."""
    await _act(client, name, "delete")


async def trigger_schedule(client: Client, name: str, wait_for_start: float = 30) -> str:
    """Run the schedule's action now (even when paused); the launcher's workflow id.

    Refused while the schedule has a drill running: its overlap policy would skip the trigger.
    """
    handle, described = await _describe(client, check_name(name))
    running = [a.workflow_id for a in _started(described.info.running_actions)]
    if running:
        raise ScheduleBusy(name, running)
    seen = {a.workflow_id for a in _started([r.action for r in described.info.recent_actions])}
    try:
        await handle.trigger()
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    deadline = time.monotonic() + wait_for_start
    while time.monotonic() < deadline:
        info = (await handle.describe()).info
        started = _started([*info.running_actions, *(r.action for r in info.recent_actions)])
        fresh = [a.workflow_id for a in started if a.workflow_id not in seen]
        if fresh:
            return fresh[0]
        await asyncio.sleep(0.2)
    raise Unavailable(f"schedule '{name}' was triggered but its run did not appear within {wait_for_start:.0f}s")


async def wait_for_run(client: Client, workflow_id: str) -> ScheduledRun:
    """Wait for a launcher to end; its record (the result, or what its memo says)."""
    handle = client.get_workflow_handle(workflow_id, result_type=ScheduledRun)
    try:
        record: ScheduledRun = await handle.result()
        return record
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
    except Exception:  # noqa: BLE001 - it ended outside its own code: the memo says what is known
        return await run_record(client, workflow_id)
