"""The audit record of one run, derived from its Temporal history alone.

An auditor's questions (who or what started the run and why, which plan, who approved, what
changed before → after, what was rolled back, how long recovery took) are answered from the
history, which Temporal keeps and nobody edits: the run's input (start event), the activity
calls (scheduled, started, completed or failed, with their attempts), the operators' updates
and signals (approve, reject, pause, resume, abort, with the caller's identity), the search
attributes it upserted, and the final record the run wrote (its result, failure details or
memo). Nothing comes from logs or a side store, so the same history always gives the same
record: :func:`derive` is a pure function of the history's events and the namespace.

The record's JSON form is the export format, versioned by :data:`SCHEMA_VERSION` and
published as a JSON Schema in ``docs/audit-record.schema.json`` (generated from these
models; a test keeps the file equal to them). It carries the SHA-256 of the raw history
(``WorkflowHistory.to_json()``, canonical JSON) so an export can be proven against the history later
(:mod:`evac.control.audit`'s ``verify``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from evac import search_attributes as sa
from evac import workflow_types
from evac.runs import (
    MEMO_PROGRESS,
    AbortRequest,
    ApprovalRecord,
    DrillInput,
    FailoverInput,
    FailoverProgress,
    RunStatus,
    StepStatus,
    Trigger,
    ended_by_temporal,
    recovery_seconds,
)

SCHEMA_VERSION: Literal[1] = 1
SCHEMA_ID = "https://evac.dev/schemas/audit-record/v1.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    """Which history the record was derived from, and that history's digest."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str = Field(description="FailoverWorkflow or DrillWorkflow")
    task_queue: str
    history_sha256: str = Field(
        description="SHA-256 (hex) of the raw history: WorkflowHistory.to_json() of its first history_events events, "
        "in canonical JSON (keys sorted, no whitespace)",
    )
    history_events: int = Field(description="How many events the record was derived from (a running run's history grows)")
    closed: bool = Field(description="Whether the history ends with the run's close event (false: the run was still going)")
    first_event_at: datetime
    last_event_at: datetime


ActivityRole = Literal["preflight", "step", "compensation", "stop_condition", "notification", "other"]
ActivityOutcome = Literal["completed", "failed", "timed_out", "canceled", "running"]


class ActivityCall(_Model):
    """One activity the run scheduled, as its events tell it."""

    activity_id: str
    activity: str = Field(description="The activity type, e.g. set_backend_capacity")
    step: str | None = Field(description="The plan step it served (its StepContext), or None")
    role: ActivityRole
    scheduled_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempt: int = Field(default=0, description="The attempt that ended it (1: the first try succeeded or failed for good)")
    outcome: ActivityOutcome = "running"
    failure: str | None = Field(default=None, description="The last failure's message (the final one, or the last retried one)")


OperatorActionName = Literal["approve", "reject", "pause", "resume", "abort", "cancel", "terminate", "other"]


class OperatorAction(_Model):
    """An operator's (or a system's) action on the running run: an update, a signal, a
    cancel or terminate request, with the identity Temporal recorded for the caller."""

    at: datetime
    action: OperatorActionName
    name: str = Field(description="The update or signal name as sent, or the Temporal request")
    identity: str = Field(description="The caller's Temporal client identity (evac sets user@host)")
    by: str = Field(default="", description="Who the request says acted (its 'by' field), if it says")
    reason: str = ""
    step: str | None = None
    outcome: Literal["accepted", "failed", "recorded"] = Field(
        description="accepted: an update the run took; failed: one the run accepted but whose handler failed; "
        "recorded: a signal or request"
    )
    detail: str = ""


class Recovery(_Model):
    """How long recovery took against the plan's recovery target."""

    seconds: float | None = Field(description="First mutating step started → last failover step done; None: not measured")
    target_seconds: float | None = Field(description="The plan's drill.rto_target, if set")
    met: bool | None = Field(
        description="seconds <= target_seconds; None when either is unknown or the run did not succeed (nothing to judge)"
    )
    source: Literal["run", "computed", "none"] = Field(
        description="run: the value the run upserted as EvacRecoverySeconds; computed: from the step times; none"
    )


AuditKind = Literal["failover", "drill", "dry_run"]


class AuditRecord(_Model):
    """One run, as its history proves it (export schema version 1)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"$id": SCHEMA_ID, "title": "Evac audit record"},
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    provenance: Provenance
    kind: AuditKind
    project: str
    service: str
    plan_name: str
    plan_digest: str = Field(description="SHA-256 of the canonical plan, as recorded at start")
    source: str
    target: str
    trigger: Trigger = Field(description="Who or what started the run, and why (the run's input)")
    starter_identity: str = Field(description="The Temporal client identity that started the run, as Temporal recorded it")
    outcome: str = Field(description="The run's status, or a drill's outcome (passed, failed, rolled_back…)")
    started_at: datetime
    ended_at: datetime | None
    run: FailoverProgress = Field(
        description="The run's record as the history holds it: its final result, failure details or memo; "
        "for a run Temporal ended (or still running), rebuilt from its input and events"
    )
    record_source: Literal["result", "failure", "memo", "input"] = Field(description="Where in the history 'run' came from")
    activities: list[ActivityCall] = Field(default_factory=list, description="Every activity call, in schedule order")
    operator_actions: list[OperatorAction] = Field(default_factory=list, description="Updates, signals and requests, in order")
    recovery: Recovery


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of an export (docs/audit-record.schema.json)."""
    schema = AuditRecord.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# --- derivation: history -> record ---------------------------------------------------------

MUTATING_ACTIVITIES = frozenset(
    {"set_backend_capacity", "resize_group", "set_dns_record", "set_database_role", "set_database_leader"}
)
NOTIFICATION_ACTIVITIES = frozenset({"send_notification"})
STOP_CONDITION_ACTIVITIES = frozenset({"check_stop_conditions"})
OPERATOR_UPDATES: dict[str, OperatorActionName] = {"approve": "approve", "reject": "reject", "pause": "pause", "resume": "resume"}
AUDITABLE_TYPES = (workflow_types.FAILOVER, workflow_types.DRILL)


class NotAuditable(ValueError):
    """The history is not a run Evac audits (another workflow type, or no start event)."""


def history_digest(history: WorkflowHistory) -> str:
    """SHA-256 (hex) of the raw history, ``history.to_json()``, in canonical form (keys sorted,
    no whitespace): protobuf writes map fields (search attributes, memo) in no fixed order, so
    the same history can serialise differently from one fetch to the next; its canonical form
    cannot. The digest every export carries."""
    canonical = json.dumps(json.loads(history.to_json()), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def prefix(history: WorkflowHistory, events: int) -> WorkflowHistory:
    """The history's first ``events`` events (a running run's history grows past an export)."""
    return WorkflowHistory(history.workflow_id, list(history.events[:events]))


def derive(history: WorkflowHistory, namespace: str) -> AuditRecord:
    """The audit record of one run, from its history alone (a pure function of its events)."""
    return _Derivation(history, namespace).record()


def event_time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def decode_payload(payloads: Sequence[Payload], hint: type[Any] | None = None) -> Any:
    """The first payload's value (None when there is none)."""
    if not payloads:
        return None
    [value] = _PAYLOADS.from_payloads([payloads[0]], [hint] if hint is not None else None)
    return value


def failure_message(failure: Failure) -> str:
    message = failure.message or "failed"
    if failure.HasField("cause") and failure.cause.message and failure.cause.message != message:
        message = f"{message}: {failure.cause.message}"
    return message


_PAYLOADS = pydantic_data_converter.payload_converter


class _Derivation:
    """One pass over the events: the start, the activities, the operators, the ending."""

    def __init__(self, history: WorkflowHistory, namespace: str) -> None:
        self.history = history
        self.namespace = namespace
        self.events = list(history.events)
        if not self.events or self.events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            raise NotAuditable(f"history of '{history.workflow_id}' has no start event")
        self.start = self.events[0].workflow_execution_started_event_attributes
        self.workflow_type = self.start.workflow_type.name
        if self.workflow_type not in AUDITABLE_TYPES:
            raise NotAuditable(
                f"'{history.workflow_id}' is a {self.workflow_type}; audit covers failover and drill runs "
                f"({', '.join(AUDITABLE_TYPES)})"
            )
        drill = self.workflow_type == workflow_types.DRILL
        self.input: FailoverInput = decode_payload(self.start.input.payloads, DrillInput if drill else FailoverInput)
        self.activities: dict[int, ActivityCall] = {}  # by scheduled event id
        self.actions: list[OperatorAction] = []
        self.updates: dict[str, OperatorAction] = {}  # by update id
        self.task_started_at: datetime | None = None
        self.approvals: list[tuple[OperatorAction, ApprovalRecord]] = []  # decisions the run accepted
        self.recovery_upserted: float | None = None
        self.memo: FailoverProgress | None = None
        self.result: FailoverProgress | None = None
        self.failure_record: FailoverProgress | None = None
        self.close: HistoryEvent | None = None

    def record(self) -> AuditRecord:
        for event in self.events[1:]:
            self.visit(event)
        run, source = self.run_record()
        recovery = self.recovery(run)
        last = self.events[-1]
        provenance = Provenance(
            namespace=self.namespace,
            workflow_id=self.history.workflow_id,
            run_id=self.history.run_id,
            workflow_type=self.workflow_type,
            task_queue=self.start.task_queue.name,
            history_sha256=history_digest(self.history),
            history_events=len(self.events),
            closed=self.close is not None,
            first_event_at=event_time(self.events[0]),
            last_event_at=event_time(last),
        )
        kind: AuditKind = "dry_run" if self.input.dry_run else ("drill" if run.kind == "drill" else "failover")
        outcome = run.drill.outcome.value if run.drill is not None and run.drill.outcome is not None else run.status.value
        return AuditRecord(
            provenance=provenance,
            kind=kind,
            project=self.input.project,
            service=self.input.service,
            plan_name=self.input.plan.name,
            plan_digest=self.input.plan_digest,
            source=self.input.plan.source,
            target=self.input.plan.target,
            trigger=self.input.trigger,
            starter_identity=self.start.identity,
            outcome=outcome,
            started_at=event_time(self.events[0]),
            ended_at=event_time(self.close) if self.close is not None else None,
            run=run,
            record_source=source,
            activities=[self.activities[k] for k in sorted(self.activities)],
            operator_actions=self.actions,
            recovery=recovery,
        )

    # --- events ---------------------------------------------------------------------

    def visit(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            # The workflow's clock (workflow.now()) in the task that follows: an update it accepts
            # in that task was taken in at this time, whatever time its acceptance was written.
            self.task_started_at = event_time(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            self.scheduled(event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = event.activity_task_started_event_attributes
            call = self.activities[a.scheduled_event_id]
            call.started_at, call.attempt = event_time(event), a.attempt
            if a.HasField("last_failure"):
                call.failure = failure_message(a.last_failure)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            self.ended(event.activity_task_completed_event_attributes.scheduled_event_id, event, "completed", None)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            f = event.activity_task_failed_event_attributes
            self.ended(f.scheduled_event_id, event, "failed", failure_message(f.failure))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            t = event.activity_task_timed_out_event_attributes
            self.ended(t.scheduled_event_id, event, "timed_out", failure_message(t.failure))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            self.ended(event.activity_task_canceled_event_attributes.scheduled_event_id, event, "canceled", "canceled")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            self.update_accepted(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            self.update_completed(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            self.signaled(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            c = event.workflow_execution_cancel_requested_event_attributes
            abort = AbortRequest.from_cancel_reason(c.cause)  # evac abort: who and why ride on the cancel
            self.actions.append(
                OperatorAction(
                    at=event_time(event),
                    action="cancel" if abort is None else "abort",
                    name="cancel",
                    identity=c.identity,
                    by="" if abort is None else abort.by,
                    reason=c.cause if abort is None else abort.reason,
                    outcome="recorded",
                )
            )
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if sa.EVAC_RECOVERY_SECONDS.name in fields:
                self.recovery_upserted = float(decode_payload([fields[sa.EVAC_RECOVERY_SECONDS.name]]))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
            if MEMO_PROGRESS in memo:
                self.memo = decode_payload([memo[MEMO_PROGRESS]], FailoverProgress)
        elif kind in _CLOSE_EVENTS:
            self.closed(event)

    def scheduled(self, event: HistoryEvent) -> None:
        a = event.activity_task_scheduled_event_attributes
        arguments = decode_payload(a.input.payloads)
        context = arguments.get("context") if isinstance(arguments, dict) else None
        step = context.get("step") if isinstance(context, dict) else None
        request_key = arguments.get("request_key") if isinstance(arguments, dict) else None
        name = a.activity_type.name
        role: ActivityRole
        if name in NOTIFICATION_ACTIVITIES:
            role = "notification"
        elif name in STOP_CONDITION_ACTIVITIES:
            role = "stop_condition"
        elif step == "preflight":
            role = "preflight"
        elif step is None:
            role = "other"
        elif isinstance(request_key, str) and request_key.endswith("/undo"):
            role = "compensation"
        else:
            role = "step"  # compensation or not is settled against the step's end (see run_record)
        self.activities[event.event_id] = ActivityCall(
            activity_id=a.activity_id, activity=name, step=step, role=role, scheduled_at=event_time(event)
        )

    def ended(self, scheduled_id: int, event: HistoryEvent, outcome: ActivityOutcome, failure: str | None) -> None:
        call = self.activities[scheduled_id]
        call.ended_at, call.outcome = event_time(event), outcome
        if failure is not None:
            call.failure = failure

    def update_accepted(self, event: HistoryEvent) -> None:
        a = event.workflow_execution_update_accepted_event_attributes
        request = a.accepted_request
        args = decode_payload(request.input.args.payloads)
        args = args if isinstance(args, dict) else {}
        name = request.input.name
        action = OperatorAction(
            at=self.task_started_at or event_time(event),
            action=OPERATOR_UPDATES.get(name, "other"),
            name=name,
            identity=request.meta.identity,
            by=str(args.get("by") or ""),
            reason=str(args.get("reason") or ""),
            step=args.get("step") if isinstance(args.get("step"), str) else None,
            outcome="accepted",
        )
        self.updates[request.meta.update_id] = action
        self.actions.append(action)

    def update_completed(self, event: HistoryEvent) -> None:
        a = event.workflow_execution_update_completed_event_attributes
        action = self.updates.get(a.meta.update_id)
        if action is None:
            return
        if a.outcome.HasField("failure"):
            action.outcome, action.detail = "failed", failure_message(a.outcome.failure)
        else:
            value = decode_payload(a.outcome.success.payloads)
            if isinstance(value, dict) and isinstance(value.get("decision"), str):
                action.detail = value["decision"]
                self.approvals.append((action, ApprovalRecord.model_validate(value)))
            if action.step is None and isinstance(value, dict) and isinstance(value.get("held_before"), str):
                action.step = value["held_before"]

    def signaled(self, event: HistoryEvent) -> None:
        a = event.workflow_execution_signaled_event_attributes
        args = decode_payload(a.input.payloads)
        args = args if isinstance(args, dict) else {}
        self.actions.append(
            OperatorAction(
                at=event_time(event),
                action="other",
                name=a.signal_name,
                identity=a.identity,
                by=str(args.get("by") or ""),
                reason=str(args.get("reason") or ""),
                outcome="recorded",
            )
        )

    def closed(self, event: HistoryEvent) -> None:
        self.close = event
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            self.result = decode_payload(event.workflow_execution_completed_event_attributes.result.payloads, FailoverProgress)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = event.workflow_execution_failed_event_attributes.failure
            details = failure.application_failure_info.details.payloads
            if details:
                self.failure_record = decode_payload(details, FailoverProgress)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            t = event.workflow_execution_terminated_event_attributes
            self.actions.append(
                OperatorAction(
                    at=event_time(event),
                    action="terminate",
                    name="terminate",
                    identity=t.identity,
                    reason=t.reason,
                    outcome="recorded",
                )
            )

    # --- the ending -----------------------------------------------------------------

    def run_record(self) -> tuple[FailoverProgress, Literal["result", "failure", "memo", "input"]]:
        """The run's own record: its result, its failure's details, its memo; else rebuilt."""
        source: Literal["result", "failure", "memo", "input"]
        if self.result is not None:
            run, source = self.result, "result"
        elif self.failure_record is not None:
            run, source = self.failure_record, "failure"
        elif self.memo is not None:
            run, source = self.memo, "memo"
        else:
            run, source = self.rebuilt(), "input"
        self.settle_roles(run)
        return run, source

    def rebuilt(self) -> FailoverProgress:
        """A run that wrote no record (Temporal ended it, or it still runs): its steps as its
        activity calls show them, ended as Temporal ended it."""
        run = FailoverProgress.for_input(self.input, self.history.workflow_id, self.history.run_id)
        run.started_at = event_time(self.events[0])
        for step in run.steps:
            calls = [c for c in self.activities.values() if c.step == step.name]
            if not calls:
                continue
            step.status = StepStatus.RUNNING
            step.started_at = calls[0].scheduled_at
            step.attempts = max(c.attempt for c in calls)
            ends = [c.ended_at for c in calls if c.ended_at is not None]
            if len(ends) == len(calls) and all(c.outcome == "completed" for c in calls):
                step.status, step.ended_at = StepStatus.SUCCEEDED, max(ends)
            failed = [c for c in calls if c.failure]
            if failed:
                step.error = failed[-1].failure
        self.decide_approvals(run)
        if self.close is None:
            return run
        kind = self.close.event_type
        status = _ENDED_BY_TEMPORAL.get(kind, RunStatus.TERMINATED)
        why = "ended in Temporal"
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            t = self.close.workflow_execution_terminated_event_attributes
            why = "terminated in Temporal" + (f" by {t.identity}" if t.identity else "") + (f": {t.reason}" if t.reason else "")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
            why = "timed out in Temporal"
        return ended_by_temporal(run, status, why, event_time(self.close))

    def decide_approvals(self, run: FailoverProgress) -> None:
        """An approval step has no activity: its decision is the update the run accepted (the
        step the update named, else the first approval step still undecided)."""
        for action, approval in self.approvals:
            undecided = [s for s in run.steps if s.kind == "approval" and s.approval is None]
            step = next((s for s in undecided if s.name == action.step), undecided[0] if undecided else None)
            if step is None:
                continue
            approved = approval.decision == "approved"
            step.approval, step.started_at = approval, approval.waiting_since
            step.status, step.ended_at = (StepStatus.SUCCEEDED if approved else StepStatus.FAILED), approval.at

    def settle_roles(self, run: FailoverProgress) -> None:
        """A step's activity scheduled after the step ended is its undo (rollback or failback)."""
        ends = {step.name: step.ended_at for step in run.steps}
        for call in self.activities.values():
            end = ends.get(call.step or "")
            if call.role == "step" and end is not None and call.scheduled_at >= end:
                call.role = "compensation"

    def recovery(self, run: FailoverProgress) -> Recovery:
        target = self.input.plan.drill.rto_target if self.input.plan.drill is not None else None
        target_seconds = target.total_seconds() if target is not None else None
        seconds: float | None
        source: Literal["run", "computed", "none"]
        if self.recovery_upserted is not None:
            seconds, source = self.recovery_upserted, "run"
        elif run.drill is not None and run.drill.recovery_seconds is not None:
            seconds, source = run.drill.recovery_seconds, "run"
        elif run.status == RunStatus.SUCCEEDED and not run.dry_run:
            first = next((s for s in run.steps if s.kind != "approval" and s.before is not None and s.after != s.before), None)
            seconds, source = recovery_seconds(first, run.steps[-1] if run.steps else None), "computed"
            if seconds is None:
                source = "none"
        else:
            seconds, source = None, "none"
        # A target is met only by a run that succeeded: a drill that rolled back met none.
        judged = run.status == RunStatus.SUCCEEDED and not run.dry_run
        met = None if seconds is None or target_seconds is None or not judged else seconds <= target_seconds
        return Recovery(seconds=seconds, target_seconds=target_seconds, met=met, source=source)


_CLOSE_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)
_ENDED_BY_TEMPORAL = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: RunStatus.TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: RunStatus.TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: RunStatus.FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: RunStatus.CANCELLED,
}


# --- the marker md and html exports carry (what `evac audit verify` re-derives them from) ----

MARKER = "evac-audit"
_MARKER_LINE = re.compile(r"<!-- evac-audit (\{.*?\}) -->")
RECORD_ELEMENT_ID = "evac-audit-record"
_RECORD_SCRIPT = re.compile(r'<script type="application/json" id="evac-audit-record">(.*?)</script>', re.DOTALL)


class ExportMarker(_Model):
    """Which history a Markdown or HTML export was rendered from: enough to fetch it again."""

    schema_version: Literal[1] = SCHEMA_VERSION
    namespace: str
    workflow_id: str
    run_id: str
    history_events: int
    history_sha256: str

    @classmethod
    def of(cls, record: AuditRecord) -> ExportMarker:
        return cls.of_provenance(record.provenance)

    @classmethod
    def of_provenance(cls, p: Provenance) -> ExportMarker:
        return cls(
            namespace=p.namespace,
            workflow_id=p.workflow_id,
            run_id=p.run_id,
            history_events=p.history_events,
            history_sha256=p.history_sha256,
        )


def marker(record: AuditRecord) -> str:
    """The one-line HTML comment a Markdown or HTML export ends with (invisible when rendered)."""
    return f"<!-- {MARKER} {ExportMarker.of(record).model_dump_json()} -->"


def read_marker(text: str) -> ExportMarker | None:
    """The marker of a Markdown or HTML export (None: the text carries none)."""
    found = _MARKER_LINE.findall(text)
    return ExportMarker.model_validate_json(found[-1]) if found else None


def embedded_record(record: BaseModel) -> str:
    """The record as an HTML export embeds it (a JSON data block; never executed). ``<``, ``>``
    and ``&`` are written as JSON escapes, so no value (a reason with ``<!--<script>``) can end
    the block or open a comment in it; ``json.loads`` reads them back unchanged."""
    data = record.model_dump_json().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{RECORD_ELEMENT_ID}">{data}</script>'


def read_embedded_record(text: str) -> dict[str, Any] | None:
    """The record an HTML export embeds, as JSON (None: none embedded)."""
    found = _RECORD_SCRIPT.search(text)
    if found is None:
        return None
    value = json.loads(found.group(1))
    return value if isinstance(value, dict) else None
