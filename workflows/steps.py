"""The step table: plan step kind → handler, and the engine the handlers share.

The kinds are listed once, in the plan model's ``Step`` union; :data:`HANDLERS` maps each of
its classes to a handler here (``tests/unit`` checks that none is missing), and a step whose
class has no handler fails the run with ``UnknownStepKind`` instead of passing silently.
Adding a step kind touches the plan model, one handler here, its activity and its docs.

A handler reads and records the before-state of what it changes, pushes the undo onto the
saga *before* sending the mutation, and leaves the step record (resource, before, after,
detail) filled in. Guards are checked just before every drain and DNS shift.

The shape of a mutating step (issue 12, "A faster step"): its reads
— the guard's (the target's health, then its capacity scaler) and the before-state — are one
*local* activity, ``read_before_change``, and the mutation is the step's one regular activity.
A local activity runs in the worker inside the workflow task, and its result goes into the
history as a marker with the task's completion, in the same completion that schedules the
mutation: the before-state is recorded before the change is sent, and the undo is pushed with
it first, exactly as before. Measured with bench/step_overhead.py on 2 cores: four activities
cost 95–97 ms a step (4.7–5.2× a bare Temporal step); its what-if prototypes, reads as three
local activities about 3×, one activity folding the reads into the mutation 2.2–2.4×; this
shape 57–60 ms (2.6–3.2×). A failover of 100 services (bench/failover_throughput.py
--operation-delay 0.05) took 63–71 s before and 25–32 s after (18–19 s once preflight became
one activity).

Why not fold the reads into the mutating activity, which reads the resource anyway and returns
what it found? Its before-state would reach the history only with its result. The undo pushed
before the mutation would not know the state to restore, and a worker that dies after the
cloud accepted the change leaves a retry that finds the change made and can no longer tell what
was there (``prior``, the recorded before-state, is what it reports today; a heartbeat is not a
reliable record, being sent asynchronously and perhaps not before the crash). The local activity
keeps that guarantee at a cost of one extra workflow activation, not a server round trip.

Local activities have the regular ones' options (start-to-close, schedule-to-close = the step
deadline, the same retry policy); a retry whose backoff passes ``local_retry_threshold`` (1 min)
waits on a timer. One difference: a workflow task stays open while its local activity runs, so
an abort that arrives during a read is seen when the read ends, or at the task's heartbeat (80 %
of the 10 s workflow task timeout) if the read stalls. If the read ends first, the step's
mutation may be scheduled in that task: the abort then meets it as it meets any mutation in
flight (it stops before sending its change, or finishes and is undone; its undo was pushed
first). Other reads stay regular activities: preflight's (once a run, and an abort during
preflight must stop it at once; every resource in one ``preflight_reads`` activity,
workflows/plan_run.py), a drill's read-backs and a dry run's health readings.

Static stability (issue 18): a resource only the source region's API serves (its regional
backend service, its instance groups) is read and changed within ``retries.source_deadline``,
never the step deadline. A step whose before-state read or change gets no answer in time
raises :class:`SourceUnreachable`: the run records it ``skipped``, its change owed, pushes no
undo for it, and goes on. Guards read only the target and global state.

Workflow code only: no I/O, deterministic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from evac import activity_api, bindings
    from evac.approvals import approvers_text
    from evac.config import writes_task_queue
    from evac.failures import NON_RETRYABLE_TYPES, FailureType, cap, failure
    from evac.notifications import NotificationEvent
    from evac.plan import (
        STEP_CLASSES,
        ApprovalStep,
        DrainStep,
        Retries,
        ScaleTargetStep,
        ShiftDnsStep,
        SpannerLeaderStep,
        SqlCreateReplicaStep,
        SqlPromoteReplicaStep,
        SqlSwitchoverStep,
        Step,
        VerifyHealthStep,
        WaitStep,
        format_duration,
    )
    from evac.resources import (
        BackendCapacity,
        BackendRef,
        BeforeChange,
        Change,
        CheckBackendHealth,
        DatabaseLeader,
        DatabaseRef,
        DatabaseRole,
        DnsRecord,
        DnsRecordRef,
        GroupRef,
        GroupSize,
        HealthReport,
        LeaderRef,
        ReadBackendCapacity,
        ReadBeforeChange,
        ReadDatabaseLeader,
        ReadDatabaseRole,
        ReadDnsRecord,
        ReadGroupSize,
        ReplicationLag,
        ResizeGroup,
        ResourceState,
        SetBackendCapacity,
        SetDatabaseLeader,
        SetDatabaseRole,
        SetDnsRecord,
        StepContext,
        WaitForHealthy,
    )
    from evac.runs import ApprovalRecord, FailoverInput, FailoverProgress, StepRecord, StepStatus
    from workflows.notify import Notifier
    from workflows.saga import Saga, failure_text

In = TypeVar("In")
Out = TypeVar("Out")
State = TypeVar("State", BackendCapacity, GroupSize, DnsRecord, DatabaseRole, DatabaseLeader)

# A mutating activity heartbeats (from a background thread while it blocks); a worker that
# dies is noticed within this, and a cancellation reaches the activity within 80 % of it.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# One attempt of a read (which retries its calls in place a few times) takes at most this.
READ_ATTEMPT_TIMEOUT = timedelta(minutes=2)
# A health wait may run this much past its own deadline (a last poll, a retried attempt).
HEALTH_WAIT_MARGIN = timedelta(minutes=2)
# A budgeted call to the source region ends on its own when the budget is spent; Temporal's
# timeout is this much later, for the activity to say why.
SOURCE_MARGIN = timedelta(seconds=5)
# The kinds of step that move traffic: a run that skipped steps and moved no traffic failed.
TRAFFIC_KINDS = frozenset({"drain", "shift_dns"})
POINT_OF_NO_RETURN_TEXT = "the point of no return: it cannot be undone, and the run no longer rolls back after it"

Resource = BackendRef | GroupRef | DnsRecordRef | DatabaseRef | LeaderRef


class SourceUnreachable(Exception):
    """A step that needs only the source region's API, which gave no answer in time (or is not
    to be called): the run skips it, records its change as owed, and goes on."""

    def __init__(self, owed: str, cause: str) -> None:
        super().__init__(cause)
        self.owed = owed
        self.cause = cause


def unreachable(err: BaseException) -> bool:
    """Whether a budgeted activity failed for want of an answer (a timeout, a 5xx, no connection),
    not because the API refused the request."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, TemporalTimeout):
        return True
    return isinstance(cause, ApplicationError) and cause.type not in NON_RETRYABLE_TYPES


def retry_policy(retries: Retries) -> RetryPolicy:
    """Transient errors are retried without a count, until the call's deadline."""
    return RetryPolicy(
        initial_interval=retries.initial_interval,
        maximum_interval=retries.maximum_interval,
        maximum_attempts=0,
        non_retryable_error_types=NON_RETRYABLE_TYPES,
    )


class Engine:
    """What the step handlers of one run share: its input, record and saga, and typed calls."""

    def __init__(self, input: FailoverInput, saga: Saga, progress: FailoverProgress) -> None:
        self.input = input
        self.saga = saga
        self.progress = progress
        # The run's notifications (PlanRun sets it; see workflows/notify.py).
        self.notifier: Notifier | None = None
        # A dry run changes nothing, so later steps would read the state before its scale-ups:
        # per region, the group size its earlier scale_target steps would have left. The guard
        # and verify_health judge by it ("as if the earlier planned steps had happened").
        self.planned_sizes: dict[str, int] = {}

    # --- resources of this run ----------------------------------------------------

    def group(self, region: str) -> GroupRef:
        return bindings.group_ref(self.input.project, self.input.topology, region)

    def groups(self, regions: list[str]) -> list[GroupRef]:
        """The resizable groups of ``regions`` (a region whose capacity is fixed has none)."""
        return bindings.group_refs(self.input.project, self.input.topology, regions)

    def backend(self, region: str) -> BackendRef:
        return bindings.backend_ref(self.input.project, self.input.topology, region)

    def dns_ref(self) -> DnsRecordRef:
        return bindings.dns_record_ref(self.input.project, self.input.topology)

    def database(self, region: str, instance: str | None = None) -> DatabaseRef:
        """The service's database instance in ``region`` (``instance``: by another name there)."""
        return bindings.database_ref(self.input.project, self.input.topology, region, instance=instance)

    def leader(self) -> LeaderRef:
        return bindings.leader_ref(self.input.project, self.input.topology)

    def context(self, record: StepRecord | str, resource: Resource | None = None) -> StepContext:
        """Which service and step a call serves; a call about a source-only ``resource`` carries
        the source budget."""
        step = record if isinstance(record, str) else record.name
        budget = self.source_budget if resource is not None and self.source_only(resource) else None
        return StepContext(service=self.input.service, step=step, budget_seconds=budget.total_seconds() if budget else None)

    # --- the region being left ----------------------------------------------------

    def source_only(self, resource: Resource) -> bool:
        """Whether only the source region's API serves calls about ``resource``."""
        return resource.control_plane == self.input.plan.source

    @property
    def source_budget(self) -> timedelta | None:
        """How long a source-only read or change may take in all; None: the source's API is not called."""
        deadline = self.input.plan.retries.source_deadline
        return None if self.input.ungraceful or deadline <= timedelta(0) else deadline

    def not_calling_source(self) -> str:
        source = self.input.plan.source
        if self.input.ungraceful:
            return f"not called: an ungraceful drill treats {source}'s API as gone"
        return f"not called: the plan's retries.source_deadline is 0 ({source}'s API is never called)"

    def went_on_without_source(self, what: str) -> None:
        """Record on the run that it went on without the source region's API, and why."""
        self.progress.ungraceful.append(cap(what))

    def source_deadline(self, budget: timedelta) -> timedelta:
        return budget + SOURCE_MARGIN

    def request_key(self, record: StepRecord, purpose: str) -> str:
        info = workflow.info()
        return f"{info.workflow_id}/{info.run_id}/step-{record.index}/{purpose}"

    def notify(self, event: NotificationEvent | str, record: StepRecord | str | None = None, detail: str = "") -> None:
        """Post ``event`` to the worker's notification targets in the background: never
        raises, never waits (its outcome goes into the run's record)."""
        if self.notifier is not None:
            step = record.name if isinstance(record, StepRecord) else record
            self.notifier.send(event, step, detail)

    # --- calls --------------------------------------------------------------------

    async def read(
        self,
        activity: Callable[[In], Out],
        arg: In,
        local: bool = False,
        budget: timedelta | None = None,
        source: bool = False,
        stop_on_abort: bool = True,
    ) -> Out:
        """A read: cheap, idempotent, retried until the step deadline; an abort stops after it
        (unless not ``stop_on_abort``: a read the run needs even while it is being aborted).

        ``local``: a local activity (see the module's text) with the same options; a retry whose
        backoff passes ``local_retry_threshold`` (1 min) waits on a timer instead. ``budget``: part
        of it calls the source region, and may take that long more in one attempt; ``source``: all
        of it does, and all its attempts together take no longer than the budget."""
        retries = self.input.plan.retries
        execute = workflow.execute_local_activity if local else workflow.execute_activity
        extra = budget or timedelta(0)
        deadline = self.source_deadline(extra) if source else retries.step_deadline + extra
        result = await execute(
            activity,
            arg,
            start_to_close_timeout=min(READ_ATTEMPT_TIMEOUT + extra, deadline),
            schedule_to_close_timeout=deadline,
            retry_policy=retry_policy(retries),
        )
        if stop_on_abort:
            self.saga.check_abort()
        return result

    async def read_before_change(
        self,
        record: StepRecord,
        guarded: bool,
        kind: type[State],
        resource: Resource,
        intent: str,
        *,
        raises_target: bool = False,
        lag_of: DatabaseRef | None = None,
    ) -> State:
        """The step's reads in one local activity: the guard's (``guarded``: never move traffic
        into a region that cannot take it, nor drain the last healthy one), whose verdict is
        recorded on the step (:meth:`_judge`), then the before-state of ``resource``, which must
        read as a ``kind``.

        A source-only ``resource`` is read within the source budget (not at all without one);
        unread, the step is skipped (:class:`SourceUnreachable`), ``intent`` (the change it would
        make) owed. ``raises_target``: the step gives the target its own share back, so the target
        being drained is not a reason to refuse it (its health still is)."""
        plan = self.input.plan
        budget = self.source_budget if self.source_only(resource) else None
        if self.source_only(resource) and budget is None:
            raise SourceUnreachable(f"{resource}: {intent}", self.not_calling_source())
        reads: BeforeChange = await self.read(
            activity_api.read_before_change,
            ReadBeforeChange(
                context=self.context(record),
                guard=self.backend(plan.target) if guarded else None,
                min_healthy=plan.guards.min_healthy_target,
                drained_target_refuses=not raises_target,
                stop_on_refusal=not self.input.dry_run,
                backend=resource if isinstance(resource, BackendRef) else None,
                group=resource if isinstance(resource, GroupRef) else None,
                record=resource if isinstance(resource, DnsRecordRef) else None,
                database=resource if isinstance(resource, DatabaseRef) else None,
                leader=resource if isinstance(resource, LeaderRef) else None,
                lag_of=lag_of,
                resource_budget_seconds=budget.total_seconds() if budget is not None else None,
            ),
            local=True,
            budget=budget,
        )
        if guarded and reads.health is not None:
            self._judge(record, reads.health, reads.capacity, raises_target)
        if reads.unreachable is not None:
            assert budget is not None  # only a budgeted read answers so
            raise SourceUnreachable(
                f"{resource}: {intent}",
                f"{plan.source}'s API gave no answer within {format_duration(budget)}: {reads.unreachable}",
            )
        if (guarded and reads.health is None) or not isinstance(reads.before, kind):
            # Only a worker whose read_before_change does not follow the contract answers so.
            raise ApplicationError(
                f"step '{record.name}': read_before_change answered without the guard's readings or a "
                f"{kind.__name__} before-state ({reads}); is the worker older than the workflow?",
                type="ReadIncomplete",
                non_retryable=True,
            )
        if lag_of is not None:
            record.replication_lag = reads.lag
        return reads.before

    def _mutation(self, activity: Callable[[In], Change], arg: In, deadline: timedelta, summary: str) -> Awaitable[Change]:
        # Mutations (and their undos) go to the writes task queue, whose rate limit keeps every
        # worker together within the project's write quota.
        return workflow.execute_activity(
            activity,
            arg,
            task_queue=writes_task_queue(workflow.info().task_queue),
            schedule_to_close_timeout=deadline,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(self.input.plan.retries),
            # An aborted mutation is waited for: its undo must not race its own operation.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )

    async def mutate(
        self,
        record: StepRecord,
        activity: Callable[[In], Change],
        make_input: Callable[[Any, Any, str], In],
        before: ResourceState,
        desired: ResourceState,
        ref: Resource,
        read_back: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        """Record the before-state and push the undo, then apply ``desired``. ``read_back``
        reads the resource again (a drill verifies with it after failing back).

        A change to a source-only resource (and its undo) gets the source budget, not the step's
        deadline; one that gets no answer in time is skipped (its undo withdrawn)."""
        resource = str(ref)
        record.resource = resource
        record.before = before
        retries = self.input.plan.retries
        budget = self.source_budget if self.source_only(ref) else None
        if before == desired:
            record.after = before
            record.detail = "already as desired; nothing to change"
            return
        if self.input.dry_run:
            # Plan mode: the live before-state was read; record the change and make none.
            record.after = desired
            record.detail = "dry run: would change" + (f"; {POINT_OF_NO_RETURN_TEXT}" if record.irreversible else "")
            return

        def restore() -> Awaitable[Change]:
            # record.before is the state the mutation itself found, once it has reported.
            want = record.before or before
            return self._mutation(
                activity,
                make_input(want, desired, self.request_key(record, "undo")),
                self.source_deadline(budget) if budget is not None else retries.rollback_deadline,
                f"undo '{record.name}': restore {resource} to {want.summary()}",
            )

        if record.irreversible:
            # No undo: from here on the run no longer rolls back (PlanRun.roll_back).
            self.saga.cross(record)
            self.progress.point_of_no_return = record.name
        else:
            self.saga.push(record, restore, read_back)
        try:
            change = await self._mutation(
                activity,
                make_input(desired, before, self.request_key(record, "apply")),
                self.source_deadline(budget) if budget is not None else retries.step_deadline,
                f"{record.name}: {resource} {before.summary()} → {desired.summary()}",
            )
        except BaseException as err:
            if record.irreversible and read_back is not None and await self._unchanged(before, read_back):
                # It did not happen (refused, or stopped before it was sent): nothing was crossed.
                self.saga.uncross(record)
                self.progress.point_of_no_return = None
            if not isinstance(err, FailureError) or budget is None or self.saga.abort_requested or not unreachable(err):
                raise
            self.saga.withdraw(record)
            raise SourceUnreachable(
                f"{resource}: {before.summary()} → {desired.summary()}",
                f"{self.input.plan.source}'s API did not finish the change within {format_duration(budget)} "
                f"(it may still land when the region answers again): {failure_text(err)}",
            ) from None
        record.attempts = change.attempt
        record.before = change.before
        record.after = change.after
        record.detail = "changed" if change.changed else "already as desired; nothing to change"
        self.saga.check_abort()

    async def _unchanged(self, before: ResourceState, read: Callable[[], Awaitable[Any]]) -> bool:
        """Whether a step that cannot be undone left its resource as it was (its change failed or
        was stopped before it was sent): read to the end even while the run is being aborted."""
        try:
            now = await self.saga.shielded(read())
        except Exception:  # noqa: BLE001 - unread: assume it happened (the safe side)
            return False
        return bool(now == before)

    async def health(self, record: StepRecord | str, region: str) -> HealthReport:
        """How many of ``region``'s backends are healthy; the source's own API only within its budget
        (the caller checks that there is one)."""
        backend = self.backend(region)
        source = self.source_only(backend)
        return await self.read(
            activity_api.check_backend_health,
            CheckBackendHealth(context=self.context(record, backend), backend=backend),
            budget=self.source_budget if source else None,
            source=source,
        )

    def _judge(
        self, record: StepRecord, report: HealthReport, capacity: BackendCapacity | None, raises_target: bool = False
    ) -> None:
        """The guard's verdict on its readings (``capacity`` None: not read, health refused). A
        dry run judges as if its earlier scale-ups had happened (and says so)."""
        target = self.input.plan.target
        need = self.input.plan.guards.min_healthy_target
        now, report = report, self.projected_health(target, report)
        refusal = None
        if report.healthy < need:
            refusal = (
                f"guard: target {target} has {report.healthy}/{report.total} healthy backends, "
                f"the plan requires at least {need} before moving traffic there"
            )
        elif capacity is not None and capacity.capacity_scaler == 0 and not raises_target:
            refusal = f"guard: target {target} is drained itself (capacity scaler 0); it would take no traffic"
        if refusal is None:
            assert capacity is not None  # read, since health passed (as projected, in a dry run)
            record.guard = (
                f"passed: target {target} has {report.summary()} backends{_projection(now, report)} (need {need}), "
                f"{capacity.summary()}"
            )
            return
        record.guard = f"refuses: {refusal.removeprefix('guard: ')}" if self.input.dry_run else refusal
        if not self.input.dry_run:
            raise failure(FailureType.GUARD_REFUSED, refusal)

    def projected_health(self, region: str, report: HealthReport) -> HealthReport:
        """``report`` as a dry run's earlier scale-ups would have left it: the instances they
        would add counted healthy once warm (a real run waits for them: verify_health); those
        unhealthy now stay so."""
        planned = self.planned_sizes.get(region) if self.input.dry_run else None
        if planned is None or planned <= report.total:
            return report
        return HealthReport(healthy=report.healthy + planned - report.total, total=planned)


def _projection(now: HealthReport, projected: HealthReport) -> str:
    """How a projected reading differs from what was read, in words ('' when it does not)."""
    if projected == now:
        return ""
    return f" after the planned scale-up (now {now.summary()})"


# --- handlers, one per step kind ----------------------------------------------------

Handler = Callable[[Engine, StepRecord, Any], Awaitable[None]]


async def scale_target(engine: Engine, record: StepRecord, step: ScaleTargetStep) -> None:
    group = engine.group(engine.input.plan.target)
    read = ReadGroupSize(context=engine.context(record, group), group=group)
    before = await engine.read_before_change(record, False, GroupSize, group, f"size at least {step.min_size}")
    await engine.mutate(
        record,
        activity_api.resize_group,
        lambda want, prior, key: ResizeGroup(
            context=engine.context(record, group), group=group, desired=want, prior=prior, request_key=key
        ),
        before,
        GroupSize(target_size=max(before.target_size, step.min_size)),
        group,
        lambda: engine.read(activity_api.read_group_size, read),
    )
    if engine.input.dry_run:
        region = engine.input.plan.target
        engine.planned_sizes[region] = max(before.target_size, step.min_size, engine.planned_sizes.get(region, 0))


async def verify_health(engine: Engine, record: StepRecord, step: VerifyHealthStep) -> None:
    region = step.region or engine.input.plan.target
    backend = engine.backend(region)
    record.resource = str(backend)
    intent = f"{step.min_healthy} healthy"
    budget = engine.source_budget if engine.source_only(backend) else None
    if engine.source_only(backend) and budget is None:
        raise SourceUnreachable(f"{backend}: {intent}", engine.not_calling_source())
    if engine.input.dry_run:
        report = await engine.health(record, region)
        projected = engine.projected_health(region, report)
        record.after = projected
        would = (
            f"would pass at once ({step.min_healthy} needed)"
            if projected.healthy >= step.min_healthy and projected == report
            else f"would wait up to {format_duration(step.timeout)} for {step.min_healthy}"
        )
        if projected.healthy < step.min_healthy:
            would += f", which even the planned scale-ups would not give (at most {projected.healthy}): it would fail"
        warm = f", {projected.healthy} once the planned scale-up is warm" if projected != report else ""
        record.detail = f"dry run: now {report.summary()}{warm}; {would}"
        return
    retries = engine.input.plan.retries
    timeout = step.timeout if budget is None else min(step.timeout, budget)
    deadline = workflow.now() + timeout
    try:
        wait = await workflow.execute_activity(
            activity_api.wait_for_healthy_backends,
            WaitForHealthy(
                context=engine.context(record, backend),
                backend=backend,
                min_healthy=step.min_healthy,
                deadline=deadline,
                interval_seconds=step.interval.total_seconds(),
            ),
            schedule_to_close_timeout=timeout + (HEALTH_WAIT_MARGIN if budget is None else SOURCE_MARGIN),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(retries),
            # It heartbeats, so a cancel reaches it at once: wait for it to stop, leaving nothing running.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"{record.name}: wait for {step.min_healthy} healthy in {region}",
        )
    except FailureError as err:
        if budget is None or engine.saga.abort_requested or not unreachable(err):
            raise
        raise SourceUnreachable(f"{backend}: {intent}", f"{region}'s API gave no answer: {failure_text(err)}") from None
    engine.saga.check_abort()
    record.attempts = wait.polls
    record.after = wait.report
    record.detail = f"{wait.report.healthy}/{wait.report.total} healthy, need {step.min_healthy}"
    if not wait.reached and budget is not None and wait.last_error is not None:
        raise SourceUnreachable(f"{backend}: {intent}", f"{region}'s API gave no answer in time: {wait.last_error}")
    if not wait.reached:
        seen = f"; last error: {wait.last_error}" if wait.last_error else ""
        raise failure(
            FailureType.HEALTH_CHECK_FAILED,
            f"{region}: only {wait.report.healthy}/{wait.report.total} backends healthy after "
            f"{format_duration(step.timeout)}, the step requires {step.min_healthy}{seen}",
        )


async def drain(engine: Engine, record: StepRecord, step: DrainStep) -> None:
    region = step.region or engine.input.plan.source
    backend = engine.backend(region)
    desired = BackendCapacity(capacity_scaler=step.capacity_scaler)
    read = ReadBackendCapacity(context=engine.context(record, backend), backend=backend)
    # A drain step on the target that gives it a share back is how a drained target takes traffic again.
    raises_target = region == engine.input.plan.target and desired.capacity_scaler > 0
    before = await engine.read_before_change(
        record, True, BackendCapacity, backend, f"→ {desired.summary()}", raises_target=raises_target
    )
    await engine.mutate(
        record,
        activity_api.set_backend_capacity,
        lambda want, prior, key: SetBackendCapacity(
            context=engine.context(record, backend), backend=backend, desired=want, prior=prior, request_key=key
        ),
        before,
        desired,
        backend,
        lambda: engine.read(activity_api.read_backend_capacity, read),
    )


async def shift_dns(engine: Engine, record: StepRecord, step: ShiftDnsStep) -> None:
    ref = engine.dns_ref()
    read = ReadDnsRecord(context=engine.context(record, ref), record=ref)
    target_address = engine.input.topology.regions[engine.input.plan.target].address
    desired = DnsRecord(ttl=step.ttl or engine.input.topology.dns.ttl, rrdatas=[target_address])
    before = await engine.read_before_change(record, True, DnsRecord, ref, f"→ {desired.summary()}")
    await engine.mutate(
        record,
        activity_api.set_dns_record,
        lambda want, prior, _key: SetDnsRecord(context=engine.context(record, ref), record=ref, desired=want, prior=prior),
        before,
        desired,
        ref,
        lambda: engine.read(activity_api.read_dns_record, read),
    )


async def wait(engine: Engine, record: StepRecord, step: WaitStep) -> None:
    if engine.input.dry_run:
        record.detail = f"dry run: would wait {format_duration(step.duration)}"
        return
    record.detail = f"waiting {format_duration(step.duration)}"
    record.waits_until = workflow.now() + step.duration
    await workflow.sleep(step.duration)
    record.detail = f"waited {format_duration(step.duration)}"


async def approval(engine: Engine, record: StepRecord, step: ApprovalStep) -> None:
    """Wait for ``evac approve`` or ``evac reject`` (workflow Updates, validated by
    PlanWorkflow), or the timeout. A rejection, or a timeout with ``on_timeout: abort``,
    fails the step and the run rolls back; an abort while waiting rolls back too."""
    who = approvers_text(step.approvers)
    limit = format_duration(step.timeout)
    if engine.input.dry_run:
        record.detail = f"dry run: would wait up to {limit} for approval by {who}"
        return
    now = workflow.now()
    decided = record.approval = ApprovalRecord(
        approvers=list(step.approvers),
        timeout=step.timeout,
        on_timeout=step.on_timeout,
        waiting_since=now,
        deadline=now + step.timeout,
    )
    record.detail = f"waiting up to {limit} for approval by {who}"
    engine.notify("approval_needed", record, record.detail)
    try:
        await workflow.wait_condition(
            lambda: decided.decision is not None, timeout=step.timeout, timeout_summary=f"approval '{record.name}'"
        )
    except TimeoutError:
        decided.decision, decided.at = "timed_out", workflow.now()
        if step.on_timeout == "abort":
            record.detail = f"no approval by {who} within {limit}; on_timeout: abort"
            raise failure(
                FailureType.APPROVAL_TIMED_OUT,
                f"step '{record.name}': no approval by {who} within {limit} (on_timeout: abort)",
            ) from None
        record.detail = f"no approval by {who} within {limit}; continued (on_timeout: continue)"
        return
    engine.saga.check_abort()
    why = f": {decided.reason}" if decided.reason else ""
    if decided.decision == "rejected":
        record.detail = f"rejected by {decided.by}{why}"
        raise failure(FailureType.APPROVAL_REJECTED, f"step '{record.name}' rejected by {decided.by}{why}")
    record.detail = f"approved by {decided.by}{why}"


# --- the data tier ------------------------------------------------------------------


def require_no_two_writers(engine: Engine, record: StepRecord) -> None:
    """The guard of a step that moves a database's writes: the source's traffic has left it in
    this run (a drain of the source to 0, or the DNS shift, done or skipped for want of the
    source's API), so its servers write no more once the primary moves."""
    plan = engine.input.plan
    for step, done in zip(plan.steps, engine.progress.steps, strict=True):
        if done is record:
            break
        moved = isinstance(step, ShiftDnsStep) or (
            isinstance(step, DrainStep) and step.region in (None, plan.source) and step.capacity_scaler == 0
        )
        if moved and (done.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) or engine.input.dry_run):
            record.guard = f"passed: {plan.source}'s traffic has left it (step '{done.name}')"
            return
    refusal = (
        f"guard: {plan.source} still takes {engine.input.service}'s traffic (no drain of it nor DNS shift before "
        f"step '{record.name}'): moving the database's writes now would leave two writers"
    )
    record.guard = refusal
    raise failure(FailureType.GUARD_REFUSED, refusal)


def source_unreachable(engine: Engine) -> bool:
    """Whether this run has found the source region's API gone (or is not to call it)."""
    return bool(engine.progress.ungraceful) or engine.source_budget is None


def _lag_text(lag: ReplicationLag | None) -> str:
    return "lag unknown (no reading)" if lag is None or lag.seconds is None else f"lag {lag.seconds:g}s ({lag.source})"


async def sql_switchover(engine: Engine, record: StepRecord, step: SqlSwitchoverStep) -> None:
    """Planned: the region's replica becomes primary, the primary its replica (no data lost)."""
    region = step.region or engine.input.plan.target
    database = engine.database(region)
    require_no_two_writers(engine, record)
    read = ReadDatabaseRole(context=engine.context(record, database), database=database)
    before = await engine.read_before_change(record, False, DatabaseRole, database, "→ primary", lag_of=database)
    await engine.mutate(
        record,
        activity_api.set_database_role,
        lambda want, prior, key: SetDatabaseRole(
            context=engine.context(record, database), database=database, desired=want, prior=prior, request_key=key
        ),
        before,
        DatabaseRole(role="primary"),
        database,
        lambda: engine.read(activity_api.read_database_role, read),
    )
    record.detail += f"; {_lag_text(record.replication_lag)} before the switchover"


async def sql_promote_replica(engine: Engine, record: StepRecord, step: SqlPromoteReplicaStep) -> None:
    """Unplanned: the region's replica becomes a primary of its own. No undo: the run's point of
    no return. Refused when the replica is further behind than the plan allows, unless the
    source is unreachable and the plan accepts the loss; the window of writes that may be lost
    is recorded."""
    region = step.region or engine.input.plan.target
    database = engine.database(region)
    require_no_two_writers(engine, record)
    read = ReadDatabaseRole(context=engine.context(record, database), database=database)
    before = await engine.read_before_change(record, False, DatabaseRole, database, "→ primary (promoted)", lag_of=database)
    lag = record.replication_lag
    if before.role == "replica":
        limit = step.max_replication_lag
        behind = None if lag is None else lag.seconds
        if behind is None or behind > limit.total_seconds():
            over = "its lag is unknown" if behind is None else f"it is {behind:g}s behind its primary"
            why = f"guard: {database}: {over}, over the step's max_replication_lag of {format_duration(limit)}"
            if not (step.allow_data_loss and source_unreachable(engine)):
                hint = (
                    "; the source answers, so switch over instead (sql_switchover), or wait for the replica to catch up"
                    if not source_unreachable(engine)
                    else "; say allow_data_loss: true on the step to promote anyway and lose those writes"
                )
                record.guard = why + hint
                if not engine.input.dry_run:
                    raise failure(FailureType.GUARD_REFUSED, why + hint)
            else:
                record.guard = f"passed with data loss accepted: {why.removeprefix('guard: ')} (allow_data_loss: true)"
        else:
            record.guard = f"passed: {database} is {behind:g}s behind (max_replication_lag {format_duration(limit)})"
        if lag is not None and lag.seconds is not None:
            record.data_loss_window = (lag.measured_at - timedelta(seconds=lag.seconds), workflow.now())
    await engine.mutate(
        record,
        activity_api.set_database_role,
        lambda want, prior, key: SetDatabaseRole(
            context=engine.context(record, database),
            database=database,
            desired=want,
            prior=prior,
            promote=True,
            request_key=key,
        ),
        before,
        DatabaseRole(role="primary"),
        database,
        # No undo: read only to tell whether a failed or stopped promotion happened after all.
        lambda: engine.read(activity_api.read_database_role, read, stop_on_abort=False),
    )
    record.detail += f"; {_lag_text(lag)} when promoted"
    if record.data_loss_window is not None:
        start, end = record.data_loss_window
        record.detail += f"; writes to the old primary from {start.isoformat()} to {end.isoformat()} may be lost"


async def sql_create_replica(engine: Engine, record: StepRecord, step: SqlCreateReplicaStep) -> None:
    """Re-protect: a new replica of the primary (the target's instance) in a region that is back."""
    primary = engine.database(engine.input.plan.target)
    database = engine.database(step.region, step.instance)
    read = ReadDatabaseRole(context=engine.context(record, database), database=database)
    desired = DatabaseRole(role="replica", replicates=primary.name)
    before = await engine.read_before_change(record, False, DatabaseRole, database, f"→ {desired.summary()}")
    if before.role != "absent" and before != desired:
        refusal = f"{database} exists already ({before.summary()}): delete it, or name the new replica with the step's instance"
        record.guard = f"refuses: {refusal}" if engine.input.dry_run else refusal
        if not engine.input.dry_run:
            raise failure(FailureType.GUARD_REFUSED, refusal)
    await engine.mutate(
        record,
        activity_api.set_database_role,
        lambda want, prior, key: SetDatabaseRole(
            context=engine.context(record, database), database=database, desired=want, prior=prior, request_key=key
        ),
        before,
        desired,
        database,
        lambda: engine.read(activity_api.read_database_role, read),
    )


async def spanner_leader(engine: Engine, record: StepRecord, step: SpannerLeaderStep) -> None:
    """The region leads the database's writes (Spanner replicates synchronously: no lag to record)."""
    region = step.region or engine.input.plan.target
    leader = engine.leader()
    require_no_two_writers(engine, record)
    read = ReadDatabaseLeader(context=engine.context(record, leader), database=leader)
    desired = DatabaseLeader(leader=region)
    before = await engine.read_before_change(record, False, DatabaseLeader, leader, f"→ {desired.summary()}")
    await engine.mutate(
        record,
        activity_api.set_database_leader,
        lambda want, prior, key: SetDatabaseLeader(
            context=engine.context(record, leader), database=leader, desired=want, prior=prior, request_key=key
        ),
        before,
        desired,
        leader,
        lambda: engine.read(activity_api.read_database_leader, read),
    )


HANDLERS: dict[type, Handler] = {
    ScaleTargetStep: scale_target,
    VerifyHealthStep: verify_health,
    DrainStep: drain,
    ShiftDnsStep: shift_dns,
    WaitStep: wait,
    ApprovalStep: approval,
    SqlSwitchoverStep: sql_switchover,
    SqlPromoteReplicaStep: sql_promote_replica,
    SqlCreateReplicaStep: sql_create_replica,
    SpannerLeaderStep: spanner_leader,
}
MISSING_HANDLERS = [cls.__name__ for cls in STEP_CLASSES if cls not in HANDLERS]


async def run_step(engine: Engine, record: StepRecord, step: Step) -> None:
    services = getattr(step, "services", None)
    if services is not None and engine.input.service not in services:
        record.detail = f"not for {engine.input.service}: the step is for {', '.join(services)}"
        return
    handler = HANDLERS.get(type(step))
    if handler is None:
        raise failure(
            FailureType.UNKNOWN_STEP_KIND,
            f"step '{record.name}' has kind '{record.kind}', which this worker cannot run; is the worker older than the plan?",
        )
    await handler(engine, record, step)
