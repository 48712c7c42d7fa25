"""``evac failback``: after the fact, restore what a finished evacuation or failover changed.

An evacuation that ended (succeeded, or aborted without ``--rollback-all``) leaves its services
failed over, and a failover that succeeded leaves its service so; both recorded every change's
before-state. A fail-back is an ``EvacuationWorkflow`` run in fail-back mode under
``failback/<what it fails back>`` (one at a time): its input names the services (with their
topology, for the region's health) and its second argument is their record, changes included.
It restores them newest change first, groups in reverse order, on the rate-limited writes queue,
and refuses a service whose region is not healthy again unless forced. It is recorded, watched,
aborted and audited like an evacuation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from evac import search_attributes as sa
from evac import workflow_types
from evac.control.evacuate import StartedEvacuation, evacuation_progress
from evac.control.policy import recorded_reason
from evac.control.records import describe, progress, running_run_id, worker_polling
from evac.errors import EvacuationNotFound, InvalidEvacuation, NoWorker, Refused, RunNotFound, from_rpc
from evac.evacuation import (
    DEFAULT_WINDOW,
    EVACUATION_PREFIX,
    UNTIERED,
    EvacGroup,
    EvacService,
    EvacServiceRecord,
    EvacuationInput,
    EvacuationProgress,
    EvacuationRefused,
    ServiceStatus,
    failback_start,
    failback_workflow_id,
    recorded_changes,
)
from evac.runs import WORKFLOW_ID_PREFIX, FailoverInput, RunStatus, Trigger
from workflows.evacuation import EvacuationWorkflow


class FailbackRefused(Refused):
    """The fail-back asked for cannot start now; the message says why. Nothing was started."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}; nothing was started")


async def failback_input(
    client: Client,
    of: str,
    trigger: Trigger,
    *,
    services: Iterable[str] | None = None,
    force: bool = False,
    window: int = DEFAULT_WINDOW,
) -> tuple[EvacuationInput, EvacuationProgress]:
    """The fail-back of ``of`` (``evacuation/<region>`` or ``failover/<service>``), checked:
    it has ended, it left services failed over, and ``services`` are among them."""
    if of.startswith(EVACUATION_PREFIX):
        return await _of_evacuation(client, of, trigger, services, force, window)
    if of.startswith(WORKFLOW_ID_PREFIX):
        if services is not None:
            raise InvalidEvacuation("--services is for an evacuation's fail-back; a failover run has one service")
        return await _of_failover(client, of, trigger, force)
    raise InvalidEvacuation(f"'{of}' is not an evacuation or a failover: name evacuation/<region> or failover/<service>")


async def _still_running(client: Client, of: str, how: str) -> None:
    running = await running_run_id(client, of)
    if running is not None:
        raise FailbackRefused(f"{of} is still running (run {running}): {how}")


async def _earlier_failback(client: Client, of: str, run_id: str) -> set[str]:
    """The services an earlier fail-back of the same run restored already."""
    try:
        earlier = await evacuation_progress(client, failback_workflow_id(of))
    except EvacuationNotFound:
        return set()
    if earlier.failback_of != f"{of} run {run_id}":
        return set()
    if not earlier.status.finished:
        raise FailbackRefused(
            f"{earlier.workflow_id} is failing it back already; watch it with 'evac watch {earlier.workflow_id}'"
        )
    return {r.service for r in earlier.services if r.status == ServiceStatus.FAILED_BACK}


async def _first_input(client: Client, workflow_id: str, run_id: str, types: list[type]) -> Any:
    """The input the first run of ``workflow_id``'s chain (or run ``run_id``) was started with."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        return (await client.data_converter.decode(payloads[: len(types)], types))[0]
    raise RunNotFound(workflow_id, run_id)


async def _of_evacuation(
    client: Client, of: str, trigger: Trigger, services: Iterable[str] | None, force: bool, window: int
) -> tuple[EvacuationInput, EvacuationProgress]:
    await _still_running(client, of, f"stop it with 'evac abort {of} --reason … --rollback-all' instead")
    try:
        description = await describe(client, of)
    except RunNotFound as exc:
        raise EvacuationNotFound(of) from exc
    record = await evacuation_progress(client, of)
    done = await _earlier_failback(client, of, description.run_id)
    if done:
        record = record.model_copy(
            update={
                "services": [
                    r.model_copy(update={"status": ServiceStatus.FAILED_BACK, "error": "put back by an earlier fail-back"})
                    if r.service in done
                    else r
                    for r in record.services
                ]
            }
        )
    # The chain's first run holds every service's slice of the topology (later runs only those left).
    first_run = description.raw_description.workflow_execution_info.first_run_id or description.run_id
    first: EvacuationInput = await _first_input(client, of, first_run, [EvacuationInput])
    try:
        chosen, start = failback_start(of, description.run_id, record, services)
    except EvacuationRefused as exc:
        raise FailbackRefused(str(exc)) from None
    topologies = {s.name: s for g in first.groups for s in g.services}
    by_name = {r.service: r for r in start.services}
    groups = [
        EvacGroup(name=g, services=[topologies[s] for s in chosen if s in topologies and by_name[s].group == g])
        for g in start.groups
    ]
    input = EvacuationInput(
        region=record.region,
        target=record.target,
        project=first.project,
        groups=[g for g in groups if g.services],
        trigger=trigger,
        window=window,
        guards=first.guards,
        retries=first.retries,
        failback_of=start.failback_of,
        force=force,
    )
    return input, start


async def _of_failover(client: Client, of: str, trigger: Trigger, force: bool) -> tuple[EvacuationInput, EvacuationProgress]:
    await _still_running(client, of, "abort it with 'evac abort' (it rolls back) instead")
    description = await describe(client, of)
    if description.workflow_type != workflow_types.FAILOVER:
        raise FailbackRefused(f"{of}'s latest run is a {description.workflow_type}, not a failover (a drill fails back itself)")
    run = await progress(client, of, description.run_id)
    if run.status != RunStatus.SUCCEEDED or run.dry_run:
        state = "a dry run" if run.dry_run else f"ended {run.status.value}"
        raise FailbackRefused(f"{of}'s latest run (run {description.run_id}) {state}: it left nothing failed over")
    failover: FailoverInput = await _first_input(client, of, description.run_id, [FailoverInput])
    plan = failover.plan
    changes = recorded_changes(failover.project, failover.topology, plan, run.steps)
    if not changes:
        raise FailbackRefused(f"{of}'s latest run changed nothing: nothing to fail back")
    if run.service in await _earlier_failback(client, of, description.run_id):
        raise FailbackRefused(f"{failback_workflow_id(of)} failed this run back already")
    record = EvacuationProgress(
        workflow_id=failback_workflow_id(of),
        region=plan.source,
        target=plan.target,
        trigger=trigger,
        window=1,
        groups=[UNTIERED],
        failback_of=f"{of} run {description.run_id}",
        services=[
            EvacServiceRecord(
                service=run.service,
                group=UNTIERED,
                status=ServiceStatus.SUCCEEDED,
                target=plan.target,
                workflow_id=of,
                run_id=description.run_id,
                changes=changes,
            )
        ],
    )
    input = EvacuationInput(
        region=plan.source,
        target=plan.target,
        project=failover.project,
        groups=[EvacGroup(name=UNTIERED, services=[EvacService(name=run.service, topology=failover.topology)])],
        trigger=trigger,
        window=1,
        guards=plan.guards,
        retries=plan.retries,
        failback_of=record.failback_of,
        force=force,
    )
    return input, record


async def start_failback(
    client: Client, input: EvacuationInput, record: EvacuationProgress, task_queue: str, *, require_worker: bool = True
) -> StartedEvacuation:
    """Start the fail-back under ``failback/<what it fails back>``; refused while one runs.

    Its reason must be one printable line of at most MAX_REASON characters (the start policy,
    :mod:`evac.control.policy`). Blackout windows do not refuse it: a fail-back restores the
    state from before a failover, which a change freeze should not hold a service away from."""
    reason = recorded_reason(input.trigger.reason, option="the trigger's reason", required=False)
    trigger = input.trigger.model_copy(update={"reason": reason})
    input = input.model_copy(update={"trigger": trigger})
    record = record.model_copy(update={"trigger": trigger})
    if require_worker and not await worker_polling(client, task_queue):
        raise NoWorker(task_queue, client.namespace)
    workflow_id = record.workflow_id
    names = [r.service for r in record.services]
    summary = f"fail back {input.failback_of}: {len(names)} service(s) back to {input.region}" + (
        " (forced)" if input.force else ""
    )
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(sa.EVAC_KIND, "failback"),
            SearchAttributePair(sa.EVAC_SOURCE_REGION, input.target or "auto"),
            SearchAttributePair(sa.EVAC_TARGET_REGION, input.region),
            SearchAttributePair(sa.EVAC_TRIGGER, input.trigger.kind),
            SearchAttributePair(sa.EVAC_INITIATOR, input.trigger.by),
        ]
    )
    try:
        handle = await client.start_workflow(
            EvacuationWorkflow.run,
            args=[input, record],
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=attributes,
            static_summary=summary,
        )
    except WorkflowAlreadyStartedError as exc:
        raise FailbackRefused(f"{workflow_id} is running already; watch it with 'evac watch {workflow_id}'") from exc
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
    return StartedEvacuation(
        workflow_id=workflow_id,
        run_id=handle.result_run_id or "",
        region=input.region,
        target=input.target,
        services=len(names),
        groups=[g.name for g in input.groups],
    )


__all__ = ["FailbackRefused", "failback_input", "start_failback"]
