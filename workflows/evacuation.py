"""EvacuationWorkflow: every service of a region fails over, each as its own FailoverWorkflow.

What it decides (the data and pure choices are in ``evac/evacuation.py``):

1. **Groups in order** — the topology's tiers, untiered last. A group starts only when every
   run of the one before has ended (data stores' read paths before the front ends that use them).
2. **A sliding window** — within a group at most ``window`` runs are in flight; each that ends
   frees its slot at once. Each run is a child ``FailoverWorkflow`` under ``failover/<service>``,
   the service's own lock: a service already held by another run is reported busy, not waited for.
3. **Targets and capacity** — just before its group starts, one read (``read_targets``) takes
   each service's load in the region (within the source budget) and each candidate's health,
   size and room; a fixed ``--to`` region, or per service the one with most headroom, that can
   hold the load. Each run scales its target up and waits for that capacity, then signals
   ``warm`` and waits for the go-ahead, given to the tier's runs together: every target of the
   tier is warm before any of its traffic moves.
4. **Partial failure** — a run that fails rolls its own changes back; the service is recorded
   failed and the others go on. The evacuation ends ``completed_with_failures`` naming them.
5. **Abort** (the ``abort`` update, or Temporal's cancel) — no new run starts; the runs in
   flight are aborted and roll back; finished services stay failed over (and the record says
   so) unless ``rollback_all``, which restores each one's recorded before-states, newest first,
   groups in reverse order (the parent's own compensation: the same undo activities).
6. **Fail-back** (``failback_of``) — the same workflow under ``failback/<what>`` restores the
   recorded before-states of a finished evacuation's (or failover's) services, refusing a
   service whose region is not healthy again unless forced.
7. **Continue-as-new** — past ``history_events_before_continue`` events the window drains (no
   new starts, the runs in flight end) and the workflow continues as new with its record, so
   no history grows large however many services the region has.

Children are started with ``ParentClosePolicy.ABANDON``: terminating the evacuation never
cancels a failover mid-way (``abort`` is how to stop them, with their rollbacks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, bindings, search_attributes, workflow_types
    from evac.approvals import MAX_REASON, message_problem
    from evac.config import writes_task_queue
    from evac.evacuation import (
        CandidateRegion,
        EvacGroup,
        EvacService,
        EvacServiceRecord,
        EvacuationAbort,
        EvacuationInput,
        EvacuationProgress,
        EvacuationStatus,
        ReadTargets,
        ServiceStatus,
        Sizing,
        TargetQuery,
        choose_target,
        recorded_changes,
        service_plan,
    )
    from evac.logging import workflow_log_extra
    from evac.resources import (
        BackendCapacity,
        Change,
        CheckBackendHealth,
        DnsRecord,
        GroupSize,
        ResizeGroup,
        SetBackendCapacity,
        SetDnsRecord,
        StepContext,
    )
    from evac.runs import (
        GO_AHEAD_SIGNAL,
        MEMO_PROGRESS,
        WARM_SIGNAL,
        AbortRequest,
        FailoverInput,
        FailoverProgress,
        dry_run_workflow_id,
        failover_workflow_id,
    )
    from workflows.children import start_service_run
    from workflows.failover import FailoverWorkflow
    from workflows.saga import failure_text
    from workflows.steps import HEARTBEAT_TIMEOUT, READ_ATTEMPT_TIMEOUT, retry_policy

In = TypeVar("In")

# Services whose targets one read_targets call assesses (bounds its input and its duration).
TARGETS_PER_READ = 100


@workflow.defn(name=workflow_types.EVACUATION)
class EvacuationWorkflow:
    @workflow.init
    def __init__(self, input: EvacuationInput, carried: EvacuationProgress | None = None) -> None:
        # Temporal applies the type hints only when every argument is given: a first run, started
        # with the input alone, receives it as plain JSON data.
        input = EvacuationInput.model_validate(input)
        carried = None if carried is None else EvacuationProgress.model_validate(carried)
        self._input = input
        info = workflow.info()
        if carried is not None and input.failback_of is not None:  # a fail-back: the services it restores
            self._progress = carried.model_copy(
                update={"workflow_id": info.workflow_id, "trigger": input.trigger, "failback_of": input.failback_of}
            )
        elif carried is not None:  # the record so far: this run continues an earlier one
            self._progress = carried.model_copy(update={"runs": carried.runs + 1})
        else:
            self._progress = EvacuationProgress.for_input(input, info.workflow_id)
        self._records = {r.service: r for r in self._progress.services}
        self._slots: set[str] = set()  # services whose run is starting or running: the window's occupants
        self._children: dict[str, workflow.ChildWorkflowHandle[FailoverWorkflow, FailoverProgress]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancelled = False
        self._sizing: dict[str, Sizing] = {}  # per service: what its target needs, read before its group starts
        self._topologies = {s.name: s for g in input.groups for s in g.services}
        # Runs whose target is warm, waiting for the go-ahead; and those told to go, still running.
        self._held: set[str] = set()
        self._released: set[str] = set()

    # --- messages --------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> EvacuationProgress:
        return self._progress

    @workflow.signal(name=WARM_SIGNAL)
    def warm(self, service: str) -> None:
        """A service's run has its target warm and waits for the go-ahead to move traffic."""
        if service in self._slots:
            self._held.add(service)

    @workflow.update
    async def abort(self, request: EvacuationAbort) -> EvacuationProgress:
        """``evac abort evacuation/<region>``: stop starting runs, abort those in flight."""
        self._request_abort(request)
        return self._progress

    @abort.validator
    def _abort_allowed(self, request: EvacuationAbort) -> None:
        problem = message_problem(request.by, request.reason)
        if problem is not None:
            raise ApplicationError(problem, type="Refused")
        p = self._progress
        if p.status.finished:
            raise ApplicationError(f"evacuation {p.workflow_id} has ended ({p.status.value})", type="Refused")
        if p.abort is not None and not (request.rollback_all and not p.abort.rollback_all):
            raise ApplicationError(
                f"evacuation {p.workflow_id} is being aborted already (by {p.abort.by}: {p.abort.reason})", type="Refused"
            )
        if not request.reason.strip():
            raise ApplicationError("an abort needs a reason", type="Refused")
        if request.rollback_all and self._input.failback_of is not None:
            raise ApplicationError(
                f"{p.workflow_id} is a fail-back: an abort stops it between services; what it restored stays "
                "restored (--rollback-all is for evacuations)",
                type="Refused",
            )

    def _request_abort(self, request: EvacuationAbort) -> None:
        p = self._progress
        first = p.abort is None
        p.abort = request if first else p.abort.model_copy(update={"rollback_all": True})  # type: ignore[union-attr]
        p.status = EvacuationStatus.ABORTING
        self._log("abort requested", by=request.by, reason=request.reason, rollback_all=request.rollback_all)
        if first:
            for service, child in list(self._children.items()):
                self._spawn(self._abort_child(service, child, request))

    async def _abort_child(
        self, service: str, child: workflow.ChildWorkflowHandle[FailoverWorkflow, FailoverProgress], request: EvacuationAbort
    ) -> None:
        reason = f"evacuation of {self._input.region} aborted: {request.reason}"
        why = AbortRequest(by=request.by, reason=reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…")
        try:
            child.cancel(why.cancel_reason())  # the record travels with the cancel request
        except Exception as err:  # noqa: BLE001 - it ended already: its own result is recorded
            self._log("abort of a run not delivered", service=service, error=failure_text(err))

    # --- the run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: EvacuationInput, carried: EvacuationProgress | None = None) -> EvacuationProgress:
        """``carried``: the record so far, when continuing as new (a payload of its own beside the
        input: each must fit Temporal's 2 MB limit). Both as read in ``__init__``."""
        p = self._progress
        if p.started_at is None:
            p.started_at = workflow.now()
            target = self._input.target or "auto"
            self._log("evacuation started", services=len(p.services), window=self._input.window, target=target)
        forward = asyncio.ensure_future(self._forward())
        while not forward.done():
            try:
                await asyncio.shield(forward)
            except asyncio.CancelledError:
                # Temporal cancelled the evacuation: an abort with no one's record of who or why.
                self._cancelled = True
                if p.abort is None:
                    self._request_abort(_abort_of_cancel(workflow.cancellation_reason()))
        forward.result()  # a continue-as-new, or a bug in this code, surfaces here
        return await _shielded(self._finish())

    async def _forward(self) -> None:
        p = self._progress
        if self._input.failback_of is not None:
            await self._fail_back_all()
            return
        for group in self._input.groups:
            if p.abort is not None:
                return
            await self._run_group(group)
            if self._continue_suggested() and p.abort is None:
                await self._continue_as_new()

    async def _run_group(self, group: EvacGroup) -> None:
        p = self._progress
        waiting = [s for s in group.services if self._records[s.name].status == ServiceStatus.WAITING]
        if not waiting:
            return
        p.current_group = group.name
        self._log("group started", group=group.name, services=len(waiting))
        await self._read_and_size(waiting)
        releasing = asyncio.ensure_future(self._release_warm(group))
        for service in waiting:
            record = self._records[service.name]
            if record.status != ServiceStatus.WAITING:
                continue  # no target could take it
            await workflow.wait_condition(self._room)
            if p.abort is not None or self._continue_suggested():
                break
            self._launch(service, record)  # no wait: one workflow task starts as many as the window has room for
        await workflow.wait_condition(lambda: not self._slots)
        releasing.cancel()
        if not self._continue_suggested():
            self._log("group ended", group=group.name, **{k.value: v for k, v in p.counts(group.name).items() if v})

    async def _release_warm(self, group: EvacGroup) -> None:
        """Capacity before traffic across the tier: a run whose target is warm waits until no
        other run of the tier is still warming up and none is left to start (or the window is
        full of warm runs, or the evacuation stops starting runs), then all go at once."""
        while True:
            await workflow.wait_condition(lambda: self._release_due(group))
            for service in sorted(self._held):
                self._held.discard(service)
                self._released.add(service)
                child = self._children.get(service)
                if child is not None:
                    self._spawn(self._say_go(service, child))

    def _release_due(self, group: EvacGroup) -> bool:
        if not self._held or self._slots - self._held - self._released:
            return False  # nobody waits, or some run is still starting or warming up
        if any(service not in self._children for service in self._held):
            # A run's "warm" can be handled before its start is (both in one activation): it is
            # told to go once its handle is here, or it would wait for a go-ahead never sent.
            return False
        to_start = any(self._records[s.name].status == ServiceStatus.WAITING for s in group.services)
        full = len(self._slots) >= self._input.window
        return not to_start or full or self._progress.abort is not None or self._continue_suggested()

    async def _say_go(self, service: str, child: workflow.ChildWorkflowHandle[FailoverWorkflow, FailoverProgress]) -> None:
        try:
            await child.signal(GO_AHEAD_SIGNAL)
        except Exception as err:  # noqa: BLE001 - it ended already: its own result is recorded
            self._log("go-ahead not delivered", service=service, error=failure_text(err))

    def _room(self) -> bool:
        """A slot is free — or no service is to start now (an abort, or a continue-as-new is due)."""
        return len(self._slots) < self._input.window or self._progress.abort is not None or self._continue_suggested()

    def _continue_suggested(self) -> bool:
        info = workflow.info()
        too_long = info.get_current_history_length() >= self._input.history_events_before_continue
        return too_long or info.is_continue_as_new_suggested()

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(lambda: not self._slots)
        await workflow.wait_condition(workflow.all_handlers_finished)
        p = self._progress
        p.largest_history = max(p.largest_history, workflow.info().get_current_history_length())
        # The next run's input holds only the services still waiting (a finished service's
        # record carries what a fail-back needs); the record is a payload of its own beside it.
        waiting = [
            EvacGroup(name=g.name, services=[s for s in g.services if self._records[s.name].status == ServiceStatus.WAITING])
            for g in self._input.groups
        ]
        left = [g for g in waiting if g.services]
        self._log(
            "continuing as new", history=workflow.info().get_current_history_length(), left=sum(len(g.services) for g in left)
        )
        workflow.continue_as_new(args=[self._input.model_copy(update={"groups": left}), p])

    # --- targets ---------------------------------------------------------------------------

    async def _read_and_size(self, services: list[EvacService]) -> None:
        """Before a group starts: each service's load in the region, and where it can go (the
        ``--to`` region, or per service the one with most headroom). A service no region can
        take with its load is failed "not started", with the numbers; nothing changes for it."""
        i = self._input
        budget = i.retries.source_deadline
        for start in range(0, len(services), TARGETS_PER_READ):
            chunk = services[start : start + TARGETS_PER_READ]
            queries = [
                TargetQuery(
                    service=s.name,
                    source=_candidate(i.project, s, i.region),
                    regions=[
                        _candidate(i.project, s, r)
                        for r in s.topology.regions
                        if r != i.region and (i.target is None or r == i.target)
                    ],
                )
                for s in chunk
            ]
            result = await workflow.execute_activity(
                activity_api.read_targets,
                ReadTargets(
                    context=StepContext(service="*", step="read capacity"),
                    source=i.region,
                    services=queries,
                    source_budget_seconds=budget.total_seconds(),
                ),
                start_to_close_timeout=READ_ATTEMPT_TIMEOUT + budget,
                schedule_to_close_timeout=i.retries.step_deadline,
                retry_policy=retry_policy(i.retries),
                summary=f"read capacity for {len(chunk)} services",
            )
            by_name = {s.name: s for s in chunk}
            for readings in result.readings:
                service = by_name[readings.service]
                ratio = service.topology.capacity_ratio
                choice = choose_target(
                    readings, i.region, i.guards.min_healthy_target, i.capacity_ratio if ratio is None else ratio
                )
                record = self._records[readings.service]
                if i.target is None:
                    record.target_reason = choice.reason
                if choice.target is None or choice.sizing is None:
                    record.status = ServiceStatus.FAILED
                    record.error = f"not started: {choice.reason}"
                    record.ended_at = workflow.now()
                else:
                    record.target = choice.target
                    record.capacity = choice.sizing.verdict
                    self._sizing[readings.service] = choice.sizing

    # --- one service -----------------------------------------------------------------------

    def _child_input(self, service: EvacService, target: str) -> FailoverInput:
        i = self._input
        plan = service_plan(i.region, target, service, self._sizing[service.name], i.guards, i.retries)
        reason = f"evacuation of {i.region}" + (f": {i.trigger.reason}" if i.trigger.reason else "")
        trigger = i.trigger.model_copy(update={"reason": reason, "evacuation": self._progress.workflow_id})
        return FailoverInput(
            plan=plan,
            plan_digest=plan.digest(),
            service=service.name,
            project=i.project,
            topology=service.topology,
            trigger=trigger,
            dry_run=i.dry_run,
            hold_before_traffic=True,
        )

    def _launch(self, service: EvacService, record: EvacServiceRecord) -> None:
        """Take a slot of the window and start the service's run in its own task."""
        record.target = record.target or self._input.target
        record.status = ServiceStatus.RUNNING
        record.started_at = workflow.now()
        self._slots.add(service.name)
        self._progress.peak_in_flight = max(self._progress.peak_in_flight, len(self._slots))
        self._spawn(self._run_service(service, record))

    async def _run_service(self, service: EvacService, record: EvacServiceRecord) -> None:
        try:
            await self._start_and_wait(service, record)
        except GeneratorExit:
            raise  # the worker evicted this run from its cache: it replays elsewhere, nothing to record
        except BaseException:
            self._release(service, record)
            raise
        self._release(service, record)

    def _release(self, service: EvacService, record: EvacServiceRecord) -> None:
        record.ended_at = workflow.now()
        self._children.pop(service.name, None)
        self._slots.discard(service.name)
        self._held.discard(service.name)
        self._released.discard(service.name)

    async def _start_and_wait(self, service: EvacService, record: EvacServiceRecord) -> None:
        target = record.target or ""
        child_input = self._child_input(service, target)
        workflow_id = (
            dry_run_workflow_id(service.name, str(workflow.uuid4())[:12])
            if self._input.dry_run
            else failover_workflow_id(service.name)
        )
        record.workflow_id = workflow_id
        try:
            child = await start_service_run(
                child_input, f"evacuation of {self._input.region}: {service.name} -> {target}", workflow_id=workflow_id
            )
        except WorkflowAlreadyStartedError:
            record.status = ServiceStatus.FAILED
            record.error = f"busy: {workflow_id} is already running (another failover or drill holds the service); not started"
            return
        record.run_id = child.first_execution_run_id
        self._children[service.name] = child
        abort = self._progress.abort
        if abort is not None:  # the abort came while this run was starting
            self._spawn(self._abort_child(service.name, child, abort))
        try:
            result = await child
        except ChildWorkflowError as err:
            record.status, record.error, record.left_changed = _failed(err, self._progress.abort is not None)
            return
        record.status = ServiceStatus.SUCCEEDED
        record.changes = recorded_changes(self._input.project, service.topology, child_input.plan, result.steps)
        record.ungraceful = bool(result.ungraceful)
        record.owed = [f"step '{step.name}': {step.owed}" for step in result.skipped]

    def _spawn(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the end ---------------------------------------------------------------------------

    async def _finish(self) -> EvacuationProgress:
        p = self._progress
        await workflow.wait_condition(lambda: not self._slots)
        if p.abort is not None:
            for record in p.services:
                if record.status == ServiceStatus.WAITING:
                    record.status = ServiceStatus.NOT_STARTED
            if p.abort.rollback_all:
                await self._fail_back_all()
            p.status = EvacuationStatus.ABORTED
        elif p.failed():
            p.status = EvacuationStatus.COMPLETED_WITH_FAILURES
        else:
            p.status = EvacuationStatus.SUCCEEDED
        p.current_group = None
        p.ended_at = workflow.now()
        p.largest_history = max(p.largest_history, workflow.info().get_current_history_length())
        workflow.upsert_memo({MEMO_PROGRESS: p})
        workflow.upsert_search_attributes([search_attributes.EVAC_OUTCOME.value_set(p.status.value)])
        self._log("evacuation ended", status=p.status.value, summary=p.summary())
        await workflow.wait_condition(workflow.all_handlers_finished)
        if p.status == EvacuationStatus.SUCCEEDED:
            return p
        failed = ", ".join(r.service for r in p.failed()[:20])
        message = p.summary() + (f"; failed: {failed}" if failed else "")
        if self._cancelled:
            message = "cancelled through Temporal; " + message
        raise ApplicationError(message, p.model_dump(mode="json"), type=p.status.value, non_retryable=True)

    async def _fail_back_all(self) -> None:
        """``rollback_all``, or a fail-back: restore every failed-over service's recorded
        before-states, newest change first, groups in reverse order, at most ``window`` services
        at a time. A fail-back first checks that the region is healthy again for each service
        (unless forced), and an abort of it stops it between services."""
        p = self._progress
        failback = self._input.failback_of is not None
        for group in reversed(p.groups):
            members = [r for r in p.services if r.group == group and r.status == ServiceStatus.SUCCEEDED]
            if not members:
                continue
            p.current_group = group
            self._log("failing back", group=group, services=len(members))
            for i in range(0, len(members), self._input.window):
                if failback and p.abort is not None:
                    return
                chunk = members[i : i + self._input.window]
                await asyncio.gather(*(self._fail_back(r, failback=failback) for r in chunk))

    async def _region_refuses(self, record: EvacServiceRecord) -> str | None:
        """Why the region should not take ``record``'s service back now (None: it may): it has
        fewer healthy backends for it than the guard requires."""
        service = self._topologies.get(record.service)
        if service is None:
            return f"its topology is not in the fail-back's input; cannot check {self._input.region}'s health"
        backend = bindings.backend_ref(self._input.project, service.topology, self._input.region)
        try:
            report = await workflow.execute_activity(
                activity_api.check_backend_health,
                CheckBackendHealth(context=StepContext(service=record.service, step="fail back: region health"), backend=backend),
                start_to_close_timeout=READ_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=self._input.retries.step_deadline,
                retry_policy=retry_policy(self._input.retries),
                summary=f"fail back {record.service}: health of {self._input.region}",
            )
        except FailureError as err:
            return f"cannot read {self._input.region}'s health: {failure_text(err)}"
        need = self._input.guards.min_healthy_target
        if report.healthy < need:
            return f"{self._input.region} has {report.summary()} backends for it (need {need})"
        return None

    async def _fail_back(self, record: EvacServiceRecord, failback: bool = False) -> None:
        """Restore one service. ``failback``: this run is a fail-back, and the record's times are
        the fail-back's (an abort's rollback_all keeps those of the service's run)."""
        if not failback:
            await self._restore_changes(record)
            return
        record.status, record.started_at = ServiceStatus.RUNNING, workflow.now()
        try:
            refusal = None if self._input.force else await self._region_refuses(record)
            if refusal is None:
                await self._restore_changes(record)
            else:
                record.status = ServiceStatus.FAILBACK_FAILED
                record.error = f"not failed back: {refusal}; nothing restored ('evac failback --force' restores anyway)"
                record.left_changed = [c.resource for c in reversed(record.changes)]
        finally:
            record.ended_at = workflow.now()

    async def _restore_changes(self, record: EvacServiceRecord) -> None:
        if self._input.dry_run or not record.changes:
            record.status = ServiceStatus.FAILED_BACK
            record.error = "dry run: nothing was changed" if self._input.dry_run else "nothing to restore"
            return
        info = workflow.info()
        left: list[str] = []
        errors: list[str] = []
        for index, change in reversed(list(enumerate(record.changes))):
            key = f"{info.workflow_id}/{info.run_id}/failback/{record.service}/{index}"
            context = StepContext(service=record.service, step="fail back")
            summary = f"fail back {record.service}: restore {change.resource} to {change.before.summary()}"
            arg: SetBackendCapacity | SetDnsRecord | ResizeGroup
            if change.backend is not None:
                assert isinstance(change.before, BackendCapacity) and isinstance(change.after, BackendCapacity)
                arg = SetBackendCapacity(
                    context=context, backend=change.backend, desired=change.before, prior=change.after, request_key=key
                )
                call = self._restore(activity_api.set_backend_capacity, arg, summary)
            elif change.group is not None:
                assert isinstance(change.before, GroupSize) and isinstance(change.after, GroupSize)
                arg = ResizeGroup(context=context, group=change.group, desired=change.before, prior=change.after, request_key=key)
                call = self._restore(activity_api.resize_group, arg, summary)
            else:
                assert change.record is not None
                assert isinstance(change.before, DnsRecord) and isinstance(change.after, DnsRecord)
                arg = SetDnsRecord(context=context, record=change.record, desired=change.before, prior=change.after)
                call = self._restore(activity_api.set_dns_record, arg, summary)
            try:
                await call
            except FailureError as err:
                left.append(change.resource)
                errors.append(f"{change.resource}: {failure_text(err)}")
        if errors:
            record.status = ServiceStatus.FAILBACK_FAILED
            record.error = "fail back incomplete: " + "; ".join(errors)
            record.left_changed = left
        else:
            record.status = ServiceStatus.FAILED_BACK

    def _restore(self, activity: Callable[[In], Change], arg: In, summary: str) -> Awaitable[Change]:
        """One undo on the writes queue (within the write rate limit), retried to the rollback deadline."""
        retries = self._input.retries
        return workflow.execute_activity(
            activity,
            arg,
            task_queue=writes_task_queue(workflow.info().task_queue),
            schedule_to_close_timeout=retries.rollback_deadline,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(retries),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )

    def _log(self, message: str, **extra: object) -> None:
        workflow.logger.info(message, extra={**workflow_log_extra("*", "evacuation"), "region": self._input.region, **extra})


def _candidate(project: str, service: EvacService, region: str) -> CandidateRegion:
    return CandidateRegion(
        region=region,
        backend=bindings.backend_ref(project, service.topology, region),
        group=service.topology.regions[region].group_ref(project, region),
        max_size=service.topology.regions[region].max_size,
    )


def _failed(err: ChildWorkflowError, aborting: bool) -> tuple[ServiceStatus, str, list[str]]:
    """A child run that did not succeed: how the service is recorded."""
    cause = err.cause
    if is_cancelled_exception(err):
        return ServiceStatus.ABORTED, "aborted with the evacuation; its run rolled back", []
    if isinstance(cause, ApplicationError):
        left: list[str] = []
        if cause.details and isinstance(cause.details[0], dict):
            left = list(cause.details[0].get("left_changed") or [])
        status = ServiceStatus.ABORTED if aborting and cause.type == "cancelled" else ServiceStatus.FAILED
        return status, cause.message, left
    return ServiceStatus.FAILED, failure_text(err), []


async def _shielded(work: object) -> EvacuationProgress:
    """Finish even when the workflow was cancelled: the end runs in its own task."""
    task: asyncio.Task[EvacuationProgress] = asyncio.create_task(work)  # type: ignore[arg-type]
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()


def _abort_of_cancel(reason: str | None) -> EvacuationAbort:
    """The abort record of a Temporal cancel of the evacuation itself (``evac abort`` uses the
    ``abort`` update): the one its reason carries when well-formed, else "temporal"."""
    request = AbortRequest.from_cancel_reason(reason)
    if request is not None and message_problem(request.by, request.reason) is None:
        return EvacuationAbort(by=request.by, reason=request.reason)
    return EvacuationAbort(by="temporal", reason="cancelled through Temporal (no 'evac abort' record of who or why)")
