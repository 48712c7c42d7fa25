"""Starting runs: load and check the plan, refuse what must not start, start all or none."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from evac import search_attributes
from evac.approvals import resolve_groups
from evac.config import Settings
from evac.control.policy import DRILL_REASON, NO_BLACKOUTS, Blackouts, admitted_trigger
from evac.control.records import running_run_id, worker_polling
from evac.documents import DocumentError, InvalidDocument, read_yaml
from evac.errors import FrontDoorError, NoWorker, ServiceBusy, WrongProject, from_rpc
from evac.plan import Plan, default_topology_path, load_plan
from evac.runs import (
    AbortRequest,
    DrillInput,
    FailoverInput,
    FailoverProgress,
    Trigger,
    dry_run_workflow_id,
    failover_workflow_id,
)
from evac.topology import Topology, load_topology
from workflows.drill import DrillWorkflow
from workflows.failover import FailoverWorkflow


@dataclass(frozen=True)
class StartedRun:
    service: str
    workflow_id: str
    run_id: str
    # The blackout window the run was started inside, overridden (as its input records it).
    blackout_override: str | None = None


def load_documents(plan_path: Path, topology_path: Path | None = None) -> tuple[Plan, Topology]:
    """The plan and its topology (default: ``topology.yaml`` beside the plan), both validated.

    Raises InvalidDocument with every error found in either, the plan's first, each with file,
    line and path; a plan whose topology is unusable is still checked on its own.
    """
    read_yaml(plan_path)  # a plan that cannot be read at all (missing, a directory, binary) is the one error
    errors: list[DocumentError] = []
    topology: Topology | None = None
    try:
        topology = load_topology(topology_path or default_topology_path(plan_path))
    except InvalidDocument as invalid:
        errors = [_beside_the_plan(e, plan_path) if topology_path is None else e for e in invalid.errors]
    try:
        plan = load_plan(plan_path, topology)
    except InvalidDocument as invalid:
        errors = invalid.errors + errors
    if errors or topology is None:
        raise InvalidDocument(errors)
    return plan, topology


def _beside_the_plan(error: DocumentError, plan_path: Path) -> DocumentError:
    """A missing default topology: say where it was looked for, and how to name another."""
    if error.message != "file not found":
        return error
    return DocumentError(
        error.file,
        error.path,
        f"file not found: the topology of plan {plan_path} is looked up beside it, as topology.yaml; "
        "name another with --topology FILE",
    )


def check_project(topology: Topology, settings: Settings) -> None:
    """The project guard: with EVAC_GCP_PROJECT set, only topologies of that project run."""
    if settings.gcp_project and settings.gcp_project != topology.project:
        raise WrongProject(topology.project, settings.gcp_project)


def failover_inputs(
    plan: Plan,
    topology: Topology,
    trigger: Trigger,
    *,
    dry_run: bool = False,
    approver_groups: Mapping[str, Sequence[str]] | None = None,
) -> list[FailoverInput]:
    """One input per service of the plan, each with its slice of the topology and the members of
    the approver groups the plan names (``approver_groups``: the configuration's table, e.g.
    ``Settings.approver_groups``); a group it lacks raises UnknownApproverGroup (bad input)."""
    digest = plan.digest()
    groups = resolve_groups(plan, approver_groups or {})
    return [
        FailoverInput(
            plan=plan,
            plan_digest=digest,
            service=service,
            project=topology.project,
            topology=topology.services[service],
            trigger=trigger,
            dry_run=dry_run,
            approver_groups=groups,
        )
        for service in plan.services
    ]


def drill_inputs(
    plan: Plan,
    topology: Topology,
    trigger: Trigger,
    bake: timedelta | None = None,
    *,
    dry_run: bool = False,
    approver_groups: Mapping[str, Sequence[str]] | None = None,
    ungraceful: bool = False,
) -> list[DrillInput]:
    """One drill input per service of the plan; ``bake`` overrides the plan's bake time;
    ``ungraceful`` (or the plan's ``drill.ungraceful``) rehearses the source region's API as gone."""
    drill = trigger.model_copy(update={"kind": "drill"})
    rehearse = ungraceful or plan.drill_settings.ungraceful
    return [
        DrillInput(**input.model_dump(exclude={"ungraceful"}), bake=bake, ungraceful=rehearse)
        for input in failover_inputs(plan, topology, drill, dry_run=dry_run, approver_groups=approver_groups)
    ]


def workflow_id_for(input: FailoverInput) -> str:
    """The service's lock for a real run; an id of its own for a dry run (it changes nothing)."""
    if input.dry_run:
        return dry_run_workflow_id(input.service, uuid.uuid4().hex[:12])
    return failover_workflow_id(input.service)


async def start_failover(
    client: Client,
    inputs: Sequence[FailoverInput],
    task_queue: str,
    *,
    require_worker: bool = False,
    blackouts: Blackouts = NO_BLACKOUTS,
    override_blackout: bool = False,
) -> list[StartedRun]:
    """Start one run per service, all or none: a ``DrillWorkflow`` for drill inputs, else a
    ``FailoverWorkflow``. Both hold the same per-service id, so a drill and a failover of one
    service never run at once.

    The start policy (:mod:`evac.control.policy`) comes first, before anything is asked of
    Temporal: every input's reason must be one printable line of at most MAX_REASON characters
    (a drill without one records "DR drill"), and a real run inside a blackout window
    (``blackouts``, the configuration's, e.g. ``Blackouts.load(Settings.blackouts)``, then its
    plan's) is refused unless ``override_blackout`` and a reason; the window overridden is
    recorded in the input's ``trigger.blackout_override`` and in the StartedRun.

    Refused before anything starts when a service already has a run, or (with
    ``require_worker``, as the CLI asks) when no worker polls the task queue. The id-conflict policy is the
    real guard: a run that appears between the check and the start refuses its start, and the
    runs this call had already started are withdrawn (aborted with the reason recorded, so they
    undo anything they did) before ServiceBusy is raised.
    """
    inputs = admitted_inputs(inputs, blackouts=blackouts, override_blackout=override_blackout, now=datetime.now(UTC))
    if require_worker and not await worker_polling(client, task_queue):
        raise NoWorker(task_queue, client.namespace)
    for input in inputs:
        if input.dry_run:
            continue
        workflow_id = failover_workflow_id(input.service)
        run_id = await running_run_id(client, workflow_id)
        if run_id is not None:
            raise ServiceBusy(input.service, workflow_id, run_id)
    started: list[tuple[StartedRun, WorkflowHandle[Any, FailoverProgress]]] = []
    for input in inputs:
        workflow_id = workflow_id_for(input)
        try:
            # Typed by reference: the workflow name and its input type are checked here.
            handle = await (
                client.start_workflow(DrillWorkflow.run, input, **_start_options(input, workflow_id, task_queue))
                if isinstance(input, DrillInput)
                else client.start_workflow(FailoverWorkflow.run, input, **_start_options(input, workflow_id, task_queue))
            )
        except (WorkflowAlreadyStartedError, RPCError) as exc:
            if isinstance(exc, WorkflowAlreadyStartedError):
                refusal: FrontDoorError = ServiceBusy(input.service, workflow_id, await running_run_id(client, workflow_id))
            else:
                refusal = from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id)
            await _withdraw(
                client, [h for _, h in started], f"plan '{input.plan.name}' could not start every service ({refusal})"
            )
            raise refusal from exc
        run = StartedRun(input.service, workflow_id, handle.result_run_id or "", input.trigger.blackout_override)
        started.append((run, handle))
    return [run for run, _ in started]


def admitted_inputs(
    inputs: Sequence[FailoverInput], *, blackouts: Blackouts, override_blackout: bool, now: datetime
) -> list[FailoverInput]:
    """The inputs as :func:`start_failover` starts them: each trigger admitted by the start policy
    (:func:`evac.control.policy.admitted_trigger`) against the configuration's windows and its plan's."""
    return [
        input.model_copy(
            update={
                "trigger": admitted_trigger(
                    input.trigger,
                    input.plan.blackouts,
                    blackouts=blackouts,
                    override_blackout=override_blackout,
                    dry_run=input.dry_run,
                    now=now,
                    default_reason=DRILL_REASON if isinstance(input, DrillInput) else "",
                )
            }
        )
        for input in inputs
    ]


def _start_options(input: FailoverInput, workflow_id: str, task_queue: str) -> dict[str, Any]:
    kind = ("drill" if isinstance(input, DrillInput) else "failover") + (", dry run" if input.dry_run else "")
    return dict(
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=search_attributes.for_run(input),
        static_summary=f"{input.plan.name} ({kind}): {input.service} {input.plan.source} -> {input.plan.target}",
    )


async def _withdraw(client: Client, handles: list[WorkflowHandle[Any, FailoverProgress]], why: str) -> None:
    """Abort runs this call started, recording why: a plan starts all its services or none."""
    # One printable line of at most 1,000 characters: the workflow keeps no other abort record.
    request = AbortRequest(by=client.identity, reason=" ".join(f"withdrawn at start: {why}".split())[:1000])
    for handle in handles:
        try:
            await handle.cancel(reason=request.cancel_reason())
        except RPCError:
            pass  # it ended already; the refusal that follows names the service that was busy
