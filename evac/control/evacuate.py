"""Region evacuations from the front doors: build the input, start it (one per region), read its
record, follow it, abort it.

The record (:class:`EvacuationProgress`) comes from the workflow's ``progress`` query while it
runs (a worker answers), and from the memo, result or failure it leaves when it ends (no worker
needed). An evacuation ended by Temporal itself (terminated, timed out) wrote no ending: its
record is the last one known, marked aborted with what Temporal said. Its runs in flight go on
(children are started with ``ParentClosePolicy.ABANDON``): the record says so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from evac import search_attributes as sa
from evac.config import Settings
from evac.control.operate import UPDATE_TIMEOUT, check_takes_update, send_update
from evac.control.policy import NO_BLACKOUTS, Blackouts, admitted_trigger
from evac.control.records import RecordSource, describe, read_record, running_run_id, worker_polling
from evac.control.start import check_project
from evac.errors import (
    EvacuationNotFound,
    EvacuationRunning,
    InvalidEvacuation,
    NoWorker,
    NoWorkerAnswered,
    RunNotFound,
    TemporalUnavailable,
    WorkerWaitExpired,
    from_rpc,
)
from evac.evacuation import (
    DEFAULT_CAPACITY_RATIO,
    DEFAULT_WINDOW,
    MAX_CAPACITY_RATIO,
    MAX_WINDOW,
    EvacuationAbort,
    EvacuationInput,
    EvacuationProgress,
    EvacuationRefused,
    EvacuationStatus,
    dry_run_evacuation_id,
    evacuation_workflow_id,
    plan_groups,
)
from evac.runs import Trigger
from evac.topology import Topology
from workflows.evacuation import EvacuationWorkflow

AUTO_TARGET = "auto"
POLL_SECONDS = 1.0
TRANSIENT_WAIT = 30.0

Handle = WorkflowHandle[EvacuationWorkflow, EvacuationProgress]


@dataclass(frozen=True)
class StartedEvacuation:
    workflow_id: str
    run_id: str
    region: str
    target: str | None
    services: int
    groups: list[str]
    # The blackout window it was started inside, overridden (as its input records it).
    blackout_override: str | None = None


def evacuation_input(
    topology: Topology,
    config: Settings,
    region: str,
    trigger: Trigger,
    *,
    target: str | None,
    services: Iterable[str] | None = None,
    tiers: Iterable[str] | None = None,
    window: int = DEFAULT_WINDOW,
    dry_run: bool = False,
    capacity_ratio: float = DEFAULT_CAPACITY_RATIO,
) -> EvacuationInput:
    """The evacuation of ``region`` as asked, checked: the project guard, the window, and every
    service, tier and target (InvalidEvacuation names what is wrong; nothing starts)."""
    check_project(topology, config)
    if not 1 <= window <= MAX_WINDOW:
        raise InvalidEvacuation(f"--window must be from 1 to {MAX_WINDOW} runs in flight, not {window}")
    if not 0 <= capacity_ratio <= MAX_CAPACITY_RATIO or capacity_ratio != capacity_ratio:
        raise InvalidEvacuation(
            f"--capacity-ratio must be from 0 to {MAX_CAPACITY_RATIO:g} (a share of the load the region serves "
            f"with), not {capacity_ratio:g}; nothing was started"
        )
    try:
        groups = plan_groups(topology, region, target=target, services=services, tiers=tiers)
    except EvacuationRefused as exc:
        raise InvalidEvacuation(str(exc)) from None
    return EvacuationInput(
        region=region,
        target=target,
        project=topology.project,
        groups=groups,
        trigger=trigger,
        window=window,
        dry_run=dry_run,
        capacity_ratio=capacity_ratio,
    )


def _search_attributes(input: EvacuationInput) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.EVAC_KIND, "evacuation"),
            SearchAttributePair(sa.EVAC_SOURCE_REGION, input.region),
            SearchAttributePair(sa.EVAC_TARGET_REGION, input.target or AUTO_TARGET),
            SearchAttributePair(sa.EVAC_TRIGGER, input.trigger.kind),
            SearchAttributePair(sa.EVAC_INITIATOR, input.trigger.by),
        ]
    )


def _summary(input: EvacuationInput) -> str:
    count = len(input.service_names())
    groups = ", ".join(g.name for g in input.groups)
    mode = " (dry run)" if input.dry_run else ""
    return (
        f"evacuation of {input.region}{mode}: {count} services -> {input.target or 'auto-target'}, "
        f"groups {groups}, window {input.window}"
    )


async def start_evacuation(
    client: Client,
    input: EvacuationInput,
    task_queue: str,
    *,
    require_worker: bool = True,
    blackouts: Blackouts = NO_BLACKOUTS,
    override_blackout: bool = False,
) -> StartedEvacuation:
    """Start the evacuation under ``evacuation/<region>`` (a dry run under an id of its own).

    The start policy (:mod:`evac.control.policy`) comes first, before anything is asked of
    Temporal: the reason must be one printable line of at most MAX_REASON characters, and a real
    evacuation inside a blackout window (``blackouts``: the configuration's, e.g.
    ``Blackouts.load(Settings.blackouts)``) is refused unless ``override_blackout`` and a reason;
    the window overridden is recorded in the input's ``trigger.blackout_override``.

    Refused before anything starts when the region already has an evacuation running, or (with
    ``require_worker``) when no worker polls the task queue. The id-conflict policy is the real
    guard: one that appears between the check and the start refuses this start."""
    trigger = admitted_trigger(
        input.trigger, blackouts=blackouts, override_blackout=override_blackout, dry_run=input.dry_run, now=datetime.now(UTC)
    )
    input = input.model_copy(update={"trigger": trigger})
    if require_worker and not await worker_polling(client, task_queue):
        raise NoWorker(task_queue, client.namespace)
    if input.dry_run:
        workflow_id = dry_run_evacuation_id(input.region, uuid.uuid4().hex[:12])
    else:
        workflow_id = evacuation_workflow_id(input.region)
        running = await running_run_id(client, workflow_id)
        if running is not None:
            raise EvacuationRunning(input.region, workflow_id, running)
    try:
        handle = await client.start_workflow(
            EvacuationWorkflow.run,
            input,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_search_attributes(input),
            static_summary=_summary(input),
        )
    except WorkflowAlreadyStartedError as exc:
        raise EvacuationRunning(input.region, workflow_id, await running_run_id(client, workflow_id)) from exc
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
    return StartedEvacuation(
        workflow_id=workflow_id,
        run_id=handle.result_run_id or "",
        region=input.region,
        target=input.target,
        services=len(input.service_names()),
        groups=[g.name for g in input.groups],
        blackout_override=trigger.blackout_override,
    )


# --- reading the record ----------------------------------------------------------------


def _handle(client: Client, workflow_id: str, run_id: str | None = None) -> Handle:
    return client.get_workflow_handle_for(EvacuationWorkflow.run, workflow_id, run_id=run_id)


async def _describe(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowExecutionDescription:
    try:
        return await describe(client, workflow_id, run_id)
    except RunNotFound as exc:
        raise EvacuationNotFound(workflow_id, run_id) from exc


async def evacuation_progress(client: Client, workflow_id: str, run_id: str | None = None) -> EvacuationProgress:
    """The evacuation's record: live while it runs (a worker answers), final once it ended.

    Without ``run_id`` the latest run (an evacuation continues as new as it goes). Raises
    NoWorkerAnswered when a running evacuation's record needs a worker and none answered."""
    description = await _describe(client, workflow_id, run_id)
    if description.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
        description = await _describe(client, workflow_id)  # the run it continued as
    return await read_record(client, description, EVACUATION_RECORD)


async def _from_input(client: Client, workflow: Handle, description: WorkflowExecutionDescription) -> EvacuationProgress:
    """A record built from the run's input: what it carried, or its services, none started."""
    async for event in workflow.fetch_history_events(page_size=1):
        attributes = event.workflow_execution_started_event_attributes
        payloads = attributes.input.payloads
        if len(payloads) > 1:  # a continued run: its input and the record so far
            [_, carried] = await client.data_converter.decode(payloads, [EvacuationInput, EvacuationProgress])
            return carried  # type: ignore[no-any-return]
        [input] = await client.data_converter.decode(payloads, [EvacuationInput])
        return EvacuationProgress.for_input(input, description.id, description.start_time)
    raise EvacuationNotFound(description.id, description.run_id)


async def _ended_by_temporal(
    record: EvacuationProgress, description: WorkflowExecutionDescription, workflow: Handle
) -> EvacuationProgress:
    """An evacuation Temporal ended before it wrote its ending: aborted, by whom Temporal says."""
    what = description.status.name.lower() if description.status else "ended"
    by, why = "temporal", f"{what} in Temporal"
    async for event in workflow.fetch_history_events(event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            attributes = event.workflow_execution_terminated_event_attributes
            by = attributes.identity or by
            why = "terminated in Temporal" + (f": {attributes.reason}" if attributes.reason else "")
    running = record.in_flight()
    if running:
        why += f"; {running} service run(s) in flight were not stopped and go on (each under failover/<service>)"
    return record.model_copy(
        update={
            "status": EvacuationStatus.ABORTED,
            "abort": record.abort or EvacuationAbort(by=by, reason=why),
            "ended_at": description.close_time,
            "current_group": None,
        }
    )


EVACUATION_RECORD = RecordSource(EvacuationProgress, EvacuationWorkflow.progress, _from_input, _ended_by_temporal)


# --- following -------------------------------------------------------------------------


@dataclass
class EvacuationSnapshot:
    """What a poll saw: the latest record, and what is being waited for."""

    record: EvacuationProgress | None = None
    waiting_for_worker: bool = False
    temporal_unavailable: str | None = None

    @property
    def done(self) -> bool:
        return self.record is not None and self.record.status.finished and not self.waiting_for_worker


async def follow_evacuation(
    client: Client,
    workflow_id: str,
    *,
    worker_wait: float,
    transient_wait: float = TRANSIENT_WAIT,
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[EvacuationSnapshot]:
    """Yield a snapshot after every poll until the evacuation has ended (the last one says so).

    Bounded like :func:`evac.control.follow`: no worker answering for ``worker_wait`` is
    WorkerWaitExpired, Temporal unavailable for ``transient_wait`` re-raises; anything else at once."""
    snapshot = EvacuationSnapshot()
    no_worker_since: float | None = None
    unavailable_since: float | None = None
    while True:
        snapshot.waiting_for_worker = False
        snapshot.temporal_unavailable = None
        asked = time.monotonic()
        try:
            snapshot.record = await evacuation_progress(client, workflow_id)
            no_worker_since = unavailable_since = None
        except NoWorkerAnswered:
            no_worker_since = no_worker_since or asked
            if time.monotonic() - no_worker_since >= worker_wait:
                raise WorkerWaitExpired([workflow_id], time.monotonic() - no_worker_since) from None
            snapshot.waiting_for_worker = True
        except TemporalUnavailable as exc:
            unavailable_since = unavailable_since or asked
            if time.monotonic() - unavailable_since >= transient_wait:
                raise
            snapshot.temporal_unavailable = str(exc)
        yield snapshot
        if snapshot.done:
            return
        await asyncio.sleep(poll_seconds)


# --- abort -----------------------------------------------------------------------------


async def abort_evacuation(
    client: Client, workflow_id: str, request: EvacuationAbort, timeout: timedelta = UPDATE_TIMEOUT
) -> EvacuationProgress:
    """The ``abort`` update: no new run starts, the runs in flight roll back; finished services
    stay failed over unless ``rollback_all``. The workflow's refusal (ended, being aborted
    already) is UpdateRefused; an evacuation that has ended is NotRunning."""
    description = await _describe(client, workflow_id)
    await check_takes_update(client, workflow_id, description, "abort")
    workflow = _handle(client, workflow_id)  # the current run, whichever it continued as
    result: Any = await send_update(client, workflow, EvacuationWorkflow.abort, request, "abort", timeout)
    progress: EvacuationProgress = result
    return progress
