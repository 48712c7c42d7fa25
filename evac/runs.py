"""A failover run as Temporal sees it: its input, its live progress and its result.

One run fails one service over (workflow id ``failover/<service>``); a plan that names
several services starts one run per service. The progress record is what the ``progress``
query returns while the run goes on, and the run's result when it ends: the audit record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evac import dependencies
from evac.drills import DrillReport
from evac.notifications import NotificationRecord
from evac.plan import Plan
from evac.resources import ReplicationLag, ResourceState
from evac.topology import ServiceTopology

WORKFLOW_ID_PREFIX = "failover/"
DRY_RUN_PREFIX = "dry-run/"
# The memo key under which a run leaves its final FailoverProgress.
MEMO_PROGRESS = "progress"


def failover_workflow_id(service: str) -> str:
    """One run per service at a time: the id is derived from the service alone."""
    return f"{WORKFLOW_ID_PREFIX}{service}"


def dry_run_workflow_id(service: str, token: str) -> str:
    """A dry run changes nothing, so it holds no lock: its id is its own (``token``: unique)."""
    return f"{DRY_RUN_PREFIX}{service}/{token}"


def workflow_id_of(run: str) -> str:
    """What an operator names a run by: ``failover/checkout`` or ``dry-run/checkout/<id>`` (as
    is), or just the service, ``checkout`` (its failover run)."""
    return run if run.startswith((WORKFLOW_ID_PREFIX, DRY_RUN_PREFIX)) else failover_workflow_id(run)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Trigger(_Model):
    """Who or what started a run, and why. Recorded in the input, so in the history."""

    kind: Literal["manual", "alert", "schedule", "drill"] = "manual"
    by: str = Field(description="A person (user@host) or a system (alertmanager)")
    reason: str = ""
    schedule_id: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="The schedule that started the run (evac-drill/<name>)"
    )
    blackout_override: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The blackout window the run was started inside, with --override-blackout",
    )
    evidence: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="What an automatic run rests on: alert fingerprints or incident ids (source:key)",
    )
    evacuation: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The region evacuation that started this run (its workflow id)",
    )


class FailoverInput(_Model):
    plan: Plan
    plan_digest: str = Field(description="SHA-256 of the canonical plan")
    service: str
    project: str
    topology: ServiceTopology = Field(description="The service's slice of the topology, as it was at start")
    trigger: Trigger
    dry_run: bool = Field(
        default=False, description="Plan mode: read live state and record the change each step would make; change nothing"
    )
    approver_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        description="The members of each approver group the plan names, resolved from configuration at start",
    )
    hold_before_traffic: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="An evacuation's run: once every step before its first drain or DNS shift is done (its target "
        "scaled and healthy), tell the evacuation (signal 'warm') and wait for its go-ahead, so that a tier's "
        "capacity is warm before any of its traffic moves",
    )
    ungraceful: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="Run as if the source region's API were gone: never call it ('evac drill --ungraceful')",
    )


# The signal an evacuation's run sends its evacuation once its target is warm, and the one it
# waits for before moving traffic (FailoverInput.hold_before_traffic).
WARM_SIGNAL = "warm"
GO_AHEAD_SIGNAL = "go_ahead"


class DrillInput(FailoverInput):
    """A drill of one service: the failover input, and the bake time if not the plan's."""

    bake: timedelta | None = Field(default=None, description="Overrides the plan's drill.bake ('evac drill --bake')")


# The mark of an ``evac abort`` record in a Temporal cancel request's reason.
CANCEL_REASON_PREFIX = "evac-abort "


class AbortRequest(_Model):
    """Who aborts a run and why. It travels as the reason of the Temporal cancel request itself
    (``cancel_reason``), so the record belongs to whoever's cancel ended the run: there is no
    separate message that someone else could send first, or in between."""

    by: str
    reason: str

    def cancel_reason(self) -> str:
        return CANCEL_REASON_PREFIX + self.model_dump_json()

    @classmethod
    def from_cancel_reason(cls, reason: str | None) -> AbortRequest | None:
        """The record a cancel request carries (None: a cancel that did not come from Evac, or
        whose reason is not one). Its form is checked by the workflow (``message_problem``)."""
        if not reason or not reason.startswith(CANCEL_REASON_PREFIX) or len(reason) > 4 * 1024:
            return None
        try:
            return cls.model_validate_json(reason.removeprefix(CANCEL_REASON_PREFIX))
        except ValueError:
            return None


class ApprovalDecision(_Model):
    """``evac approve`` / ``evac reject``: which step (default: the one waiting), who, and why."""

    step: str | None = None
    by: str
    reason: str = ""


class ApprovalRecord(_Model):
    """An approval step's wait and its decision, recorded on its step."""

    approvers: list[str]
    timeout: timedelta
    on_timeout: Literal["abort", "continue"] = "abort"
    waiting_since: datetime
    deadline: datetime
    decision: Literal["approved", "rejected", "timed_out"] | None = None
    by: str | None = None
    at: datetime | None = None
    reason: str = ""


class PauseRequest(_Model):
    by: str
    reason: str


class ResumeRequest(_Model):
    by: str
    reason: str = ""


class PauseRecord(_Model):
    """One pause: who asked and why, where the run held, and who resumed it."""

    by: str
    reason: str
    at: datetime
    held_before: str | None = Field(default=None, description="The step the run held before (None: not held yet)")
    held_at: datetime | None = None
    resumed_by: str | None = None
    resumed_at: datetime | None = None
    resume_reason: str = ""


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    NOT_RUN = "not_run"
    # It needs only the source region's API, which did not answer in time: nothing was changed,
    # nothing is to undo, and its change is owed (StepRecord.owed).
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    ROLLBACK_INCOMPLETE = "rollback_incomplete"
    NOT_READY = "not_ready"  # a drill's readiness refused it: nothing was changed
    # Ended by Temporal itself, not by the workflow (read from the workflow's Temporal status):
    # `temporal workflow terminate`, a run timeout, or a failure outside Evac's own handling.
    # Nothing was rolled back.
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    # A failure or abort after a step that cannot be undone (a promotion): nothing was rolled
    # back, since traffic put back in front of a database that is no longer primary would split
    # the service. FailoverProgress.left_to_do says what is left to do by hand.
    STOPPED_PAST_POINT_OF_NO_RETURN = "stopped_past_point_of_no_return"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.RUNNING, RunStatus.ROLLING_BACK)


class StepRecord(_Model):
    index: int
    name: str
    kind: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    resource: str = Field(default="", description="The resource the step reads or changes")
    before: ResourceState | None = None
    after: ResourceState | None = None
    detail: str = ""
    error: str | None = None
    compensation_error: str | None = None
    undo_from: ResourceState | None = Field(default=None, description="What the undo found before restoring (None: no undo ran)")
    undo_to: ResourceState | None = Field(default=None, description="What the undo left: the recorded before-state")
    undo_changed: bool | None = Field(default=None, description="False when the undo found nothing to restore")
    guard: str | None = Field(default=None, description="The guard's verdict before this step (dry runs show every one)")
    approval: ApprovalRecord | None = Field(
        default=None, exclude_if=lambda v: v is None, description="An approval step's wait and decision"
    )
    owed: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A skipped step's intended change, still to make once the source region's API answers",
    )
    waits_until: datetime | None = Field(
        default=None, exclude_if=lambda v: v is None, description="A wait step's end (what a watch counts down to)"
    )
    replication_lag: ReplicationLag | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A data step: how far the replica was behind its primary just before the roles changed (RPO)",
    )
    data_loss_window: tuple[datetime, datetime] | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="An unplanned promotion: writes to the old primary in this window may be lost",
    )
    irreversible: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="The step cannot be undone: sent, the run is past its point of no return",
    )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def recovery_seconds(first: StepRecord | None, last: StepRecord | None) -> float | None:
    """How long recovery took: the first mutation's start to the last failover step's end
    (None when either is unknown). Drills and failovers measure it this one way."""
    if first is None or last is None or first.started_at is None or last.ended_at is None:
        return None
    return (last.ended_at - first.started_at).total_seconds()


class FailoverProgress(_Model):
    kind: Literal["failover", "drill"] = "failover"
    workflow_id: str
    run_id: str
    service: str
    plan_name: str
    plan_digest: str
    source: str
    target: str
    trigger: Trigger
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the run did not succeed")
    abort: AbortRequest | None = None
    preflight: str = Field(default="", description="What the preflight read before any step changed anything")
    depends_on: str = Field(
        default="",
        exclude_if=lambda v: not v,
        description="The control planes the run waits on, and the calls that need only the source region's API "
        "(made within retries.source_deadline; the run goes on without them)",
    )
    left_changed: list[str] = Field(
        default_factory=list, description="Resources a failed rollback left changed: act on these by hand"
    )
    point_of_no_return: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The step that cannot be undone, once the run sent it (the run no longer rolls back)",
    )
    left_to_do: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="A run stopped past its point of no return: the steps it did not finish, to finish by hand",
    )
    ungraceful: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Why the run went on without the source region's API: each read it could not make and "
        "each step it skipped (empty: it never had to)",
    )
    drill: DrillReport | None = Field(default=None, description="A drill's readiness, bake, failback and report")
    dry_run: bool = Field(default=False, description="A plan-mode run: nothing was changed")
    pause: PauseRecord | None = Field(
        default=None, exclude_if=lambda v: v is None, description="The pause in force (held, or holding at the next step)"
    )
    pauses: list[PauseRecord] = Field(default_factory=list, exclude_if=lambda v: not v, description="Every pause, in order")
    notifications: list[NotificationRecord] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Each notification the run sent and what became of it at each target",
    )

    @property
    def skipped(self) -> list[StepRecord]:
        """The steps skipped because the source region's API did not answer: their changes are owed."""
        return [step for step in self.steps if step.status == StepStatus.SKIPPED]

    @classmethod
    def for_input(cls, input: FailoverInput, workflow_id: str, run_id: str) -> FailoverProgress:
        """The record of a run that has not done anything yet: every step pending."""
        return cls(
            kind="drill" if isinstance(input, DrillInput) else "failover",
            workflow_id=workflow_id,
            run_id=run_id,
            service=input.service,
            plan_name=input.plan.name,
            plan_digest=input.plan_digest,
            source=input.plan.source,
            target=input.plan.target,
            trigger=input.trigger,
            steps=[
                StepRecord(index=i, name=s.label(i), kind=s.kind, irreversible=s.IRREVERSIBLE)
                for i, s in enumerate(input.plan.steps)
            ],
            dry_run=input.dry_run,
            depends_on=dependencies.depends_on(input.plan, input.project, input.topology, input.service),
        )


def ended_by_temporal(record: FailoverProgress, status: RunStatus, why: str, ended_at: datetime | None) -> FailoverProgress:
    """The record of a run Temporal ended (terminate, timeout) before the workflow wrote its
    ending: Temporal's status and why, its running steps aborted, and what they left changed."""
    steps, left = [], list(record.left_changed)
    for step in record.steps:
        if step.status in (StepStatus.RUNNING, StepStatus.COMPENSATING):
            step = step.model_copy(update={"status": StepStatus.ABORTED, "error": f"stopped: the run was {why}"})
        elif step.status == StepStatus.PENDING:
            step = step.model_copy(update={"status": StepStatus.NOT_RUN})
        if step.before is not None and step.after is not None and step.after != step.before and step.kind != "verify_health":
            if step.status in (StepStatus.SUCCEEDED, StepStatus.ABORTED, StepStatus.FAILED):
                left.append(f"{step.resource or step.name}: {step.after.summary()} (was {step.before.summary()})")
        steps.append(step)
    error = f"{why}; nothing was rolled back"
    update = {"status": status, "steps": steps, "error": error, "left_changed": left, "ended_at": ended_at}
    return record.model_copy(update=update)
