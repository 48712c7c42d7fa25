"""The audit record of a region evacuation (or a failback), derived from its Temporal histories alone.

An evacuation (``evacuation/<region>``, ``dry-run/evacuation/<region>/<id>``; a failback of one,
``failback/…``) is one workflow that starts a child ``FailoverWorkflow`` per service, tier after
tier, and continues as new when its history grows: its record is a *chain* of runs. This module
answers an auditor's questions from the histories of every run of that chain, oldest first, and
nothing else: who started it and why (the first run's input and its client identity), where each
service went and why (each service's target and ``target_reason``), the tiers in order and the
window, each child run (its workflow and run id, status, start and end, error, what it left
changed or owes, a Web UI link), every abort (who, why, ``rollback_all``; the ``abort`` update
with the caller's identity as Temporal recorded it), Temporal's own cancels and terminations, the
fail-backs, and the outcome. :func:`derive` is a pure function of the histories, the namespace and
the Web UI base its links point at (like the namespace, not part of any history: an export names
both, and ``evac audit verify`` takes them from it).

Which record: the workflow's own (``EvacuationProgress``: its result, its failure's details, its
memo), from the last run of the chain; for a chain still going, or ended by Temporal before it
wrote one, the record it carried into its last run (or its input), brought forward from the child
and activity events. The derivation keys on that record's *shape*, not on the workflow type's
name: any workflow whose record is an ``EvacuationProgress`` is audited so (a fail-back, an
``EvacuationWorkflow`` run under ``failback/…``, writes one too). Fields of the record this code
does not name are tolerated: those holding a string are kept under ``details`` and shown, by name.

The JSON form is the export, versioned by :data:`SCHEMA_VERSION` and published as a JSON Schema in
``docs/evacuation-audit-record.schema.json``. Its provenance names every run of the chain with the
SHA-256 of its raw history (as :func:`evac.audit.record.history_digest` computes it) and one over them all,
``chain_sha256``, so an export can be proven against the histories later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from evac import workflow_types
from evac.audit.record import NotAuditable, decode_payload, event_time, failure_message, history_digest
from evac.evacuation import (
    DRY_RUN_EVACUATION_PREFIX,
    EVACUATION_PREFIX,
    EvacServiceRecord,
    EvacuationAbort,
    EvacuationInput,
    EvacuationProgress,
    EvacuationStatus,
    RecordedChange,
    ServiceStatus,
    TargetReadings,
    choose_target,
)
from evac.render import history_url
from evac.runs import MEMO_PROGRESS, WARM_SIGNAL, Trigger

SCHEMA_VERSION: Literal[1] = 1
SCHEMA_ID = "https://evac.dev/schemas/evacuation-audit-record/v1.json"
FAILBACK_PREFIX = "failback/"
# Workflow types audited as evacuations even before they wrote a record (a chain still going).
EVACUATION_TYPES = (workflow_types.EVACUATION,)
# The most runs one chain is followed through (a loop in the links would otherwise never end).
MAX_CHAIN_RUNS = 1000


def is_chain_id(workflow_id: str) -> bool:
    """An id under which runs continue as new: an evacuation, its dry run, a failback."""
    return workflow_id.startswith((EVACUATION_PREFIX, DRY_RUN_EVACUATION_PREFIX, FAILBACK_PREFIX))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


RunEnding = Literal["continued_as_new", "completed", "failed", "canceled", "terminated", "timed_out", "running"]


class RunProvenance(_Model):
    """One run of the chain: its history's digest and how it ended."""

    run_id: str
    history_sha256: str = Field(
        description="SHA-256 (hex) of the run's raw history: WorkflowHistory.to_json() of its first history_events events, "
        "in canonical JSON (keys sorted, no whitespace)"
    )
    history_events: int = Field(description="How many of the run's events the record was derived from")
    ended_as: RunEnding = Field(description="How the run's history ends (running: it had not ended)")
    first_event_at: datetime
    last_event_at: datetime
    link: str | None = Field(description="The run in the Temporal Web UI (None: no Web UI was named)")


class ChainProvenance(_Model):
    """Which histories the record was derived from: every run of the chain, oldest first."""

    namespace: str
    workflow_id: str
    workflow_type: str = Field(description="EvacuationWorkflow, or another workflow whose record is an evacuation's")
    task_queue: str
    web_ui: str | None = Field(
        description="The Temporal Web UI the links point at, as configured where the record was made (not from a history; "
        "verify takes it from the export, like the namespace)"
    )
    runs: list[RunProvenance] = Field(description="Every run of the chain, oldest first (continue-as-new starts the next)")
    chain_sha256: str = Field(
        description="SHA-256 (hex) of the runs' history_sha256 values, oldest first, each followed by a newline"
    )
    history_events: int = Field(description="Events of every run together")
    closed: bool = Field(description="Whether the last run had ended (false: the evacuation was still going)")
    first_event_at: datetime
    last_event_at: datetime


ChildOutcome = Literal["completed", "failed", "canceled", "terminated", "timed_out", "running", "start_failed", "not_started"]


class Span(_Model):
    """Work of the evacuation's own on one service (its fail-back's activities): first start → last end."""

    started_at: datetime
    ended_at: datetime | None = Field(description="None: a call had not ended")
    calls: int
    failed: int = Field(description="Calls that ended other than completed")


class ChildRun(_Model):
    """One service of the evacuation, and the run it started for it (if any)."""

    service: str
    group: str = Field(description="The tier (group) it left with")
    status: str = Field(description="As the evacuation recorded it: succeeded, failed, aborted, not_started, failed_back…")
    target: str | None = None
    target_reason: str = Field(default="", description="Why this target (auto-target: the readings it chose by)")
    workflow_id: str | None = Field(default=None, description="Its run's workflow id (failover/<service>, dry-run/…)")
    run_id: str | None = None
    link: str | None = Field(default=None, description="Its run in the Temporal Web UI")
    evacuation_run_id: str | None = Field(default=None, description="The run of the evacuation's chain that started it")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    run_outcome: ChildOutcome = Field(
        description="How its run ended, as the evacuation's history tells (start_failed: Temporal refused to start it, "
        "the service was busy; not_started: no run was started)"
    )
    error: str | None = None
    left_changed: list[str] = Field(default_factory=list, description="What its run (or its fail-back) could not restore")
    owed: list[str] = Field(default_factory=list, description="Changes its run skipped for want of the region's API")
    ungraceful: bool = Field(default=False, description="Its run went on without the region's own API")
    changes: list[str] = Field(default_factory=list, description="What its run changed (what a fail-back restores)")
    failback: Span | None = Field(default=None, description="The evacuation's fail-back of it (abort with rollback_all)")
    details: dict[str, str] = Field(
        default_factory=dict, description="Other text its record carries (fields this schema does not name), by field name"
    )


class TierRecord(_Model):
    """One group of services (a tier of the topology), in the order they left."""

    name: str
    services: int
    counts: dict[str, int] = Field(description="Services by status (only statuses present)")
    started_at: datetime | None = Field(description="Its first run's start")
    ended_at: datetime | None = Field(description="Its last run's end (None: one had not ended, or none started)")


ActionName = Literal["abort", "cancel", "terminate", "other"]


class EvacuationAction(_Model):
    """An operator's (or a system's) action on the evacuation, with the identity Temporal recorded."""

    at: datetime
    action: ActionName
    name: str = Field(description="The update or signal name as sent, or the Temporal request")
    identity: str = Field(description="The caller's Temporal client identity (evac sets user@host)")
    by: str = Field(default="", description="Who the request says acted (its 'by' field), if it says")
    reason: str = ""
    rollback_all: bool | None = Field(default=None, description="An abort's: fail back the services that had left too")
    outcome: Literal["accepted", "failed", "recorded"]
    detail: str = ""
    evacuation_run_id: str = Field(description="The run of the chain that received it")


class AbortRecord(_Model):
    by: str
    reason: str
    rollback_all: bool


EvacuationKind = Literal["evacuation", "dry_run", "failback"]
RecordSource = Literal["result", "failure", "memo", "input"]


class EvacuationAuditRecord(_Model):
    """One evacuation (every run of its chain), as its histories prove it (export schema version 1)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"$id": SCHEMA_ID, "title": "Evac evacuation audit record"},
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    record: Literal["evacuation"] = Field(default="evacuation", description="Which record this is (failovers have their own)")
    provenance: ChainProvenance
    kind: EvacuationKind
    project: str | None
    region: str = Field(description="The region every service leaves (a failback: the region they return to, as recorded)")
    target: str | None = Field(description="Where every service goes; None: chosen per service (auto-target)")
    window: int = Field(description="Most service runs in flight at once")
    trigger: Trigger = Field(description="Who or what started it, and why (the first run's input)")
    starter_identity: str = Field(description="The Temporal client identity that started it, as Temporal recorded it")
    outcome: str = Field(description="succeeded, completed_with_failures, aborted; running or aborting while it went on")
    summary: str = Field(description="The outcome and the services by status, in one line")
    started_at: datetime = Field(description="The first run's start")
    ended_at: datetime | None = Field(description="The last run's end (None: still going)")
    groups: list[TierRecord] = Field(description="The tiers, in the order they left")
    children: list[ChildRun] = Field(description="Every service, tier by tier, with its run")
    abort: AbortRecord | None = Field(description="The abort the record holds (who, why, whether everything fails back)")
    operator_actions: list[EvacuationAction] = Field(default_factory=list, description="Updates, signals and requests")
    peak_in_flight: int
    record_source: RecordSource = Field(description="Where in the last run's history the record came from")
    details: dict[str, str] = Field(
        default_factory=dict,
        description="Other text the evacuation's record carries (fields this schema does not name, e.g. which run a "
        "failback fails back), by field name",
    )


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of an evacuation export (docs/evacuation-audit-record.schema.json)."""
    schema = EvacuationAuditRecord.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def chain_digest(digests: Sequence[str]) -> str:
    """SHA-256 over the runs' digests, oldest first, each followed by a newline."""
    return hashlib.sha256("".join(f"{d}\n" for d in digests).encode()).hexdigest()


# --- reading a record leniently ------------------------------------------------------------

# The fields of the evacuation's record (and of each service's) that this record names; any other
# field holding text is kept under `details`.
_PROGRESS_FIELDS = frozenset(
    {
        "workflow_id",
        "region",
        "target",
        "trigger",
        "dry_run",
        "window",
        "status",
        "started_at",
        "ended_at",
        "groups",
        "current_group",
        "services",
        "abort",
        "runs",
        "largest_history",
        "peak_in_flight",
    }
)
_SERVICE_FIELDS = frozenset(
    {
        "service",
        "group",
        "status",
        "target",
        "target_reason",
        "workflow_id",
        "run_id",
        "started_at",
        "ended_at",
        "error",
        "left_changed",
        "changes",
        "ungraceful",
        "owed",
    }
)


def _known(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in model.model_fields}


def _text_fields(data: dict[str, Any], named: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in sorted(data.items()) if k not in named and isinstance(v, str)}


@dataclass
class _Read:
    """A record as read: the model (fields it does not know dropped), and its other text fields."""

    progress: EvacuationProgress
    details: dict[str, str]
    service_details: dict[str, dict[str, str]]


def read_progress(data: Any) -> _Read | None:
    """An ``EvacuationProgress`` from its JSON, tolerating fields the model does not know; None
    when the data is no evacuation record."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), list) or "region" not in data:
        return None
    try:
        services = [EvacServiceRecord.model_validate(_known(EvacServiceRecord, s)) for s in data["services"]]
        abort = data.get("abort")
        trigger = data.get("trigger")
        progress = EvacuationProgress.model_validate(
            {
                **_known(EvacuationProgress, data),
                "services": services,
                "abort": EvacuationAbort.model_validate(_known(EvacuationAbort, abort)) if isinstance(abort, dict) else None,
                "trigger": Trigger.model_validate(_known(Trigger, trigger)) if isinstance(trigger, dict) else trigger,
            }
        )
    except (ValidationError, TypeError, AttributeError):
        return None
    return _Read(
        progress=progress,
        details=_text_fields(data, _PROGRESS_FIELDS),
        service_details={
            str(s.get("service")): _text_fields(s, _SERVICE_FIELDS) for s in data["services"] if isinstance(s, dict)
        },
    )


def _read_input(data: Any) -> EvacuationInput | None:
    if not isinstance(data, dict):
        return None
    try:
        return EvacuationInput.model_validate(_known(EvacuationInput, data))
    except ValidationError:
        return None


# --- the chain -----------------------------------------------------------------------------


def _start(history: WorkflowHistory) -> Any:
    events = history.events
    if not events or events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        raise NotAuditable(f"history of '{history.workflow_id}' has no start event")
    return events[0].workflow_execution_started_event_attributes


def continued_from(history: WorkflowHistory) -> str | None:
    """The run this one continued (its start event says), or None for a chain's first run."""
    return _start(history).continued_execution_run_id or None


def continued_as(history: WorkflowHistory) -> str | None:
    """The run this one continued as, if its history ends so."""
    if history.events and history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return history.events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None
    return None


def order_chain(histories: Sequence[WorkflowHistory]) -> list[WorkflowHistory]:
    """The histories as one chain, oldest first (in whatever order given); NotAuditable when they
    are not the runs of one chain, each continuing the one before."""
    if not histories:
        raise NotAuditable("no history given")
    by_run = {h.run_id: h for h in histories}
    if len(by_run) != len(histories):
        raise NotAuditable("the histories given name one run twice")
    firsts = [h for h in histories if continued_from(h) not in by_run]
    if len(firsts) != 1:
        raise NotAuditable(f"the {len(histories)} histories given are not one chain of runs (each continuing the one before)")
    chain = [firsts[0]]
    while len(chain) < len(histories):
        following = [h for h in histories if continued_from(h) == chain[-1].run_id]
        if len(following) != 1 or continued_as(chain[-1]) not in (None, following[0].run_id):
            raise NotAuditable(f"the histories given are not one chain of runs: run {chain[-1].run_id} is not continued once")
        chain.append(following[0])
    return chain


# --- derivation ----------------------------------------------------------------------------


def derive(histories: Sequence[WorkflowHistory], namespace: str, web_ui: str | None) -> EvacuationAuditRecord:
    """The record of an evacuation from the histories of its chain's runs (a pure function of
    their events, the namespace and the Web UI base its links point at)."""
    return _Derivation(order_chain(histories), namespace, web_ui).record()


@dataclass
class _Child:
    """A child run as the evacuation's events tell it."""

    evacuation_run_id: str
    workflow_id: str
    service: str | None
    target: str | None
    initiated_at: datetime
    run_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: ChildOutcome = "running"
    failure: str | None = None
    failure_type: str = ""
    left_changed: list[str] = field(default_factory=list)


@dataclass
class _Call:
    name: str
    service: str | None
    step: str | None
    scheduled_at: datetime
    ended_at: datetime | None = None
    outcome: str = "running"
    result: Any = None


@dataclass
class _RunEvents:
    """What one run's events hold beyond its children and activities."""

    history: WorkflowHistory
    memo: Any = None
    result: Any = None
    failure_details: Any = None
    close: HistoryEvent | None = None
    carried: Any = None  # the record the run was continued with (its start's 2nd argument)
    input: Any = None


@dataclass
class _State:
    children: list[_Child] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    actions: list[EvacuationAction] = field(default_factory=list)
    updates: dict[str, EvacuationAction] = field(default_factory=dict)


_CLOSE_EVENTS: dict[int, RunEnding] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}
_CHILD_ENDS: dict[int, ChildOutcome] = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
}
_CALL_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "canceled",
}
FAILBACK_STEP = "fail back"
READ_TARGETS = "read_targets"


class _Derivation:
    def __init__(self, chain: list[WorkflowHistory], namespace: str, web_ui: str | None) -> None:
        self.chain = chain
        self.namespace = namespace
        self.web_ui = web_ui
        self.workflow_id = chain[0].workflow_id
        self.first_start = _start(chain[0])
        self.workflow_type = self.first_start.workflow_type.name
        self.runs = [_RunEvents(h) for h in chain]
        self.state = _State()

    def link(self, workflow_id: str, run_id: str | None) -> str | None:
        """The run's page in the Web UI; none unless the Web UI is an http(s) address (an export
        names it, and a verified export must not carry a link that runs anything)."""
        if self.web_ui is None or not self.web_ui.startswith(("http://", "https://")) or not run_id:
            return None
        return history_url(self.web_ui, self.namespace, workflow_id, run_id)

    def record(self) -> EvacuationAuditRecord:
        for run in self.runs:
            self.visit_run(run)
        read, source = self.progress()
        p = read.progress
        provenance = self.provenance()
        last = self.runs[-1]
        kind: EvacuationKind
        if self.workflow_id.startswith(FAILBACK_PREFIX) or p.failback_of:
            kind = "failback"
        else:
            kind = "dry_run" if p.dry_run else "evacuation"
        children = self.children(read)
        first_input = self.runs[0].input
        project = first_input.get("project") if isinstance(first_input, dict) else None
        return EvacuationAuditRecord(
            provenance=provenance,
            kind=kind,
            project=project if isinstance(project, str) else None,
            region=p.region,
            target=p.target,
            window=p.window,
            trigger=p.trigger,
            starter_identity=self.first_start.identity,
            outcome=p.status.value,
            summary=p.summary(),
            started_at=event_time(self.chain[0].events[0]),
            ended_at=event_time(last.close) if last.close is not None else None,
            groups=_tiers(p.groups, children),
            children=children,
            abort=AbortRecord(by=p.abort.by, reason=p.abort.reason, rollback_all=p.abort.rollback_all) if p.abort else None,
            operator_actions=self.state.actions,
            peak_in_flight=p.peak_in_flight,
            record_source=source,
            details=read.details,
        )

    def provenance(self) -> ChainProvenance:
        runs = []
        for run in self.runs:
            h = run.history
            ending: RunEnding = _CLOSE_EVENTS.get(run.close.event_type, "running") if run.close is not None else "running"
            runs.append(
                RunProvenance(
                    run_id=h.run_id,
                    history_sha256=history_digest(h),
                    history_events=len(h.events),
                    ended_as=ending,
                    first_event_at=event_time(h.events[0]),
                    last_event_at=event_time(h.events[-1]),
                    link=self.link(self.workflow_id, h.run_id),
                )
            )
        last = self.runs[-1]
        return ChainProvenance(
            namespace=self.namespace,
            workflow_id=self.workflow_id,
            workflow_type=self.workflow_type,
            task_queue=self.first_start.task_queue.name,
            web_ui=self.web_ui,
            runs=runs,
            chain_sha256=chain_digest([r.history_sha256 for r in runs]),
            history_events=sum(r.history_events for r in runs),
            closed=last.close is not None and last.close.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            first_event_at=runs[0].first_event_at,
            last_event_at=runs[-1].last_event_at,
        )

    # --- events ---------------------------------------------------------------------

    def visit_run(self, run: _RunEvents) -> None:
        events = list(run.history.events)
        start = _start(run.history)
        payloads = list(start.input.payloads)
        run.input = decode_payload(payloads[:1]) if payloads else None
        run.carried = decode_payload(payloads[1:2]) if len(payloads) > 1 else None
        run_id = run.history.run_id
        children: dict[int, _Child] = {}
        calls: dict[int, _Call] = {}
        task_started_at: datetime | None = None
        for event in events[1:]:
            kind = event.event_type
            at = event_time(event)
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                task_started_at = at
            elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                a = event.start_child_workflow_execution_initiated_event_attributes
                data = decode_payload(a.input.payloads)
                service = data.get("service") if isinstance(data, dict) else None
                plan = data.get("plan") if isinstance(data, dict) else None
                target = plan.get("target") if isinstance(plan, dict) else None
                child = _Child(
                    run_id,
                    a.workflow_id,
                    service if isinstance(service, str) else None,
                    target if isinstance(target, str) else None,
                    at,
                )
                children[event.event_id] = child
                self.state.children.append(child)
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                s = event.child_workflow_execution_started_event_attributes
                if s.initiated_event_id in children:
                    started = children[s.initiated_event_id]
                    started.run_id, started.started_at = s.workflow_execution.run_id, at
            elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED:
                f = event.start_child_workflow_execution_failed_event_attributes
                if f.initiated_event_id in children:
                    refused = children[f.initiated_event_id]
                    refused.outcome, refused.ended_at = "start_failed", at
                    held = "another failover or drill holds the service"
                    refused.failure = f"busy: {refused.workflow_id} is already running ({held}); not started"
            elif kind in _CHILD_ENDS:
                self.child_ended(children, event, _CHILD_ENDS[kind])
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                a2 = event.activity_task_scheduled_event_attributes
                arguments = decode_payload(a2.input.payloads)
                context = arguments.get("context") if isinstance(arguments, dict) else None
                service = context.get("service") if isinstance(context, dict) else None
                step = context.get("step") if isinstance(context, dict) else None
                calls[event.event_id] = _Call(
                    a2.activity_type.name,
                    service if isinstance(service, str) else None,
                    step if isinstance(step, str) else None,
                    at,
                )
                self.state.calls.append(calls[event.event_id])
            elif kind in _CALL_ENDS:
                self.call_ended(calls, event, _CALL_ENDS[kind])
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                self.update_accepted(event, task_started_at or at, run_id)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                self.update_completed(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                sig = event.workflow_execution_signaled_event_attributes
                if sig.signal_name == WARM_SIGNAL and (sig.HasField("external_workflow_execution") or not sig.identity):
                    continue  # a service's own run saying its target is warm (no client identity): not an operator's
                args = decode_payload(sig.input.payloads)
                args = args if isinstance(args, dict) else {}
                self.state.actions.append(
                    EvacuationAction(
                        at=at,
                        action="other",
                        name=sig.signal_name,
                        identity=sig.identity,
                        by=str(args.get("by") or ""),
                        reason=str(args.get("reason") or ""),
                        outcome="recorded",
                        evacuation_run_id=run_id,
                    )
                )
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                c = event.workflow_execution_cancel_requested_event_attributes
                self.state.actions.append(
                    EvacuationAction(
                        at=at,
                        action="cancel",
                        name="cancel",
                        identity=c.identity,
                        reason=c.cause,
                        outcome="recorded",
                        evacuation_run_id=run_id,
                    )
                )
            elif kind == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
                memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
                if MEMO_PROGRESS in memo:
                    run.memo = decode_payload([memo[MEMO_PROGRESS]])
            elif kind in _CLOSE_EVENTS:
                self.closed(run, event)

    def child_ended(self, children: dict[int, _Child], event: HistoryEvent, outcome: ChildOutcome) -> None:
        attributes: Any = {
            "completed": event.child_workflow_execution_completed_event_attributes,
            "failed": event.child_workflow_execution_failed_event_attributes,
            "canceled": event.child_workflow_execution_canceled_event_attributes,
            "terminated": event.child_workflow_execution_terminated_event_attributes,
            "timed_out": event.child_workflow_execution_timed_out_event_attributes,
        }[outcome]
        child = children.get(attributes.initiated_event_id)
        if child is None:
            return
        child.outcome, child.ended_at = outcome, event_time(event)
        if outcome == "failed":
            failure = attributes.failure
            child.failure = failure.message or failure_message(failure)
            child.failure_type = failure.application_failure_info.type
            details = decode_payload(failure.application_failure_info.details.payloads)
            if isinstance(details, dict) and isinstance(details.get("left_changed"), list):
                child.left_changed = [str(x) for x in details["left_changed"]]
        elif outcome == "timed_out":
            child.failure = "timed out in Temporal"
        elif outcome == "terminated":
            child.failure = "terminated in Temporal"

    def call_ended(self, calls: dict[int, _Call], event: HistoryEvent, outcome: str) -> None:
        attributes: Any = {
            "completed": event.activity_task_completed_event_attributes,
            "failed": event.activity_task_failed_event_attributes,
            "timed_out": event.activity_task_timed_out_event_attributes,
            "canceled": event.activity_task_canceled_event_attributes,
        }[outcome]
        call = calls.get(attributes.scheduled_event_id)
        if call is None:
            return
        call.ended_at, call.outcome = event_time(event), outcome
        if outcome == "completed" and call.name == READ_TARGETS:
            call.result = decode_payload(attributes.result.payloads)

    def update_accepted(self, event: HistoryEvent, at: datetime, run_id: str) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        args = decode_payload(request.input.args.payloads)
        args = args if isinstance(args, dict) else {}
        name = request.input.name
        rollback_all = args.get("rollback_all")
        action = EvacuationAction(
            at=at,
            action="abort" if name == "abort" else "other",
            name=name,
            identity=request.meta.identity,
            by=str(args.get("by") or ""),
            reason=str(args.get("reason") or ""),
            rollback_all=bool(rollback_all) if name == "abort" else None,
            outcome="accepted",
            evacuation_run_id=run_id,
        )
        self.state.updates[request.meta.update_id] = action
        self.state.actions.append(action)

    def update_completed(self, event: HistoryEvent) -> None:
        a = event.workflow_execution_update_completed_event_attributes
        action = self.state.updates.get(a.meta.update_id)
        if action is not None and a.outcome.HasField("failure"):
            action.outcome, action.detail = "failed", failure_message(a.outcome.failure)

    def closed(self, run: _RunEvents, event: HistoryEvent) -> None:
        run.close = event
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            run.result = decode_payload(event.workflow_execution_completed_event_attributes.result.payloads)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = event.workflow_execution_failed_event_attributes.failure
            details = failure.application_failure_info.details.payloads
            if details:
                run.failure_details = decode_payload(details)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            t = event.workflow_execution_terminated_event_attributes
            self.state.actions.append(
                EvacuationAction(
                    at=event_time(event),
                    action="terminate",
                    name="terminate",
                    identity=t.identity,
                    reason=t.reason,
                    outcome="recorded",
                    evacuation_run_id=run.history.run_id,
                )
            )

    # --- the record -----------------------------------------------------------------

    def progress(self) -> tuple[_Read, RecordSource]:
        """The evacuation's own record from the last run (its result, failure details, memo), else
        rebuilt from what it carried (or its input) and the events."""
        last = self.runs[-1]
        for data, source in ((last.result, "result"), (last.failure_details, "failure"), (last.memo, "memo")):
            read = read_progress(data)
            if read is not None:
                return read, source  # type: ignore[return-value]
        return self.rebuilt(), "input"

    def rebuilt(self) -> _Read:
        """A chain that wrote no final record (still going, or ended by Temporal): the record its
        last run carried, or one from the first run's input, brought forward from the events."""
        last = self.runs[-1]
        read = read_progress(last.carried)
        given = next((r.input for r in (last, self.runs[0]) if _read_input(r.input) is not None), None)
        input = _read_input(given)
        if read is None:
            if input is not None and isinstance(given, dict):
                progress = EvacuationProgress.for_input(input, self.workflow_id, event_time(self.chain[0].events[0]))
                read = _Read(progress, _text_fields(given, frozenset(EvacuationInput.model_fields)), {})
            elif self.workflow_type in EVACUATION_TYPES or is_chain_id(self.workflow_id):
                raise NotAuditable(
                    f"'{self.workflow_id}' ({self.workflow_type}) has written no record yet and its input is not an "
                    "evacuation's: nothing to audit until it does"
                )
            else:
                raise NotAuditable(
                    f"'{self.workflow_id}' is a {self.workflow_type}; audit covers failover, drill and evacuation runs "
                    "(a workflow whose record is a failover's or an evacuation's)"
                )
        p = read.progress.model_copy(deep=True)
        records = {r.service: r for r in p.services}
        for action in self.state.actions:
            if action.action == "abort" and action.outcome == "accepted":
                request = EvacuationAbort(by=action.by, reason=action.reason, rollback_all=bool(action.rollback_all))
                p.abort = request if p.abort is None else p.abort.model_copy(update={"rollback_all": True})
            elif action.action == "cancel" and p.abort is None:
                why = "cancelled through Temporal (no 'evac abort' record of who or why)"
                p.abort = EvacuationAbort(by="temporal", reason=why)
        if input is not None and p.target is None:
            self.targets_chosen(records, input)
        for child in self.state.children:
            record = records.get(child.service or "")
            if record is None:
                record = EvacServiceRecord(service=child.service or child.workflow_id, group="-")
                p.services.append(record)
                records[record.service] = record
            if record.status not in (ServiceStatus.WAITING, ServiceStatus.RUNNING):
                continue
            record.workflow_id, record.run_id = child.workflow_id, child.run_id or record.run_id
            record.target = record.target or child.target
            record.started_at = record.started_at or child.initiated_at
            status, error = _status_of(child, aborting=p.abort is not None)
            record.status = status
            if status != ServiceStatus.RUNNING:
                record.ended_at, record.error, record.left_changed = child.ended_at, error, child.left_changed
        if p.abort is not None and p.status == EvacuationStatus.RUNNING:
            p.status = EvacuationStatus.ABORTING
        p.peak_in_flight = max(p.peak_in_flight, self.peak_in_flight())
        if last.close is not None:
            self.ended_by_temporal(p, last.close)
        return _Read(p, read.details, read.service_details)

    def targets_chosen(self, records: dict[str, EvacServiceRecord], input: EvacuationInput) -> None:
        """Each completed read of the regions (the load to carry, where it can go), and the
        choice and capacity verdict it gives, as the workflow made them."""
        services = {s.name: s for g in input.groups for s in g.services}
        for call in self.state.calls:
            if call.name != READ_TARGETS or not isinstance(call.result, dict):
                continue
            for data in call.result.get("readings") or []:
                try:
                    readings = TargetReadings.model_validate(data)
                except ValidationError:
                    continue
                record = records.get(readings.service)
                if record is None or record.status != ServiceStatus.WAITING or record.target is not None:
                    continue
                service = services.get(readings.service)
                override = service.topology.capacity_ratio if service is not None else None
                ratio = input.capacity_ratio if override is None else override
                choice = choose_target(readings, input.region, input.guards.min_healthy_target, ratio)
                if input.target is None:
                    record.target_reason = choice.reason
                if choice.target is None or choice.sizing is None:
                    record.status, record.error = ServiceStatus.FAILED, f"not started: {choice.reason}"
                    record.ended_at = call.ended_at
                else:
                    record.target = choice.target
                    record.capacity = choice.sizing.verdict

    def peak_in_flight(self) -> int:
        moments = sorted(
            [(c.initiated_at, 1) for c in self.state.children if c.outcome != "start_failed"]
            + [(c.ended_at, -1) for c in self.state.children if c.ended_at is not None and c.outcome != "start_failed"],
            key=lambda m: (m[0], m[1]),
        )
        peak = now = 0
        for _, step in moments:
            now += step
            peak = max(peak, now)
        return peak

    def ended_by_temporal(self, p: EvacuationProgress, close: HistoryEvent) -> None:
        """Ended by Temporal before the evacuation wrote its ending: aborted, by whom Temporal says
        (as ``evac status`` tells it); its runs in flight go on."""
        if close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW or p.status.finished:
            return
        by, why = "temporal", f"{_CLOSE_EVENTS.get(close.event_type, 'ended')} in Temporal"
        if close.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            t = close.workflow_execution_terminated_event_attributes
            by = t.identity or by
            why = "terminated in Temporal" + (f": {t.reason}" if t.reason else "")
        running = p.in_flight()
        if running:
            why += f"; {running} service run(s) in flight were not stopped and go on (each under failover/<service>)"
        p.status = EvacuationStatus.ABORTED
        p.abort = p.abort or EvacuationAbort(by=by, reason=why)
        p.ended_at = event_time(close)
        p.current_group = None

    def children(self, read: _Read) -> list[ChildRun]:
        p = read.progress
        by_workflow: dict[str, list[_Child]] = {}
        for child in self.state.children:
            by_workflow.setdefault(child.workflow_id, []).append(child)
        failbacks = self.failback_spans()
        out = []
        for r in p.services:
            seen = by_workflow.get(r.workflow_id or "", [])
            event = next((c for c in seen if r.run_id and c.run_id == r.run_id), seen[-1] if seen else None)
            run_id = r.run_id or (event.run_id if event else None)
            outcome: ChildOutcome = event.outcome if event is not None else "not_started"
            out.append(
                ChildRun(
                    service=r.service,
                    group=r.group,
                    status=r.status.value,
                    target=r.target,
                    target_reason=r.target_reason,
                    workflow_id=r.workflow_id,
                    run_id=run_id,
                    link=self.link(r.workflow_id, run_id) if r.workflow_id else None,
                    evacuation_run_id=event.evacuation_run_id if event else None,
                    started_at=r.started_at or (event.initiated_at if event else None),
                    ended_at=r.ended_at or (event.ended_at if event else None),
                    run_outcome=outcome,
                    error=r.error,
                    left_changed=r.left_changed,
                    owed=r.owed,
                    ungraceful=r.ungraceful,
                    changes=[_change_text(c) for c in r.changes],
                    failback=failbacks.get(r.service),
                    details=read.service_details.get(r.service, {}),
                )
            )
        return out

    def failback_spans(self) -> dict[str, Span]:
        calls: dict[str, list[_Call]] = {}
        for call in self.state.calls:
            if call.step == FAILBACK_STEP and call.service:
                calls.setdefault(call.service, []).append(call)
        spans = {}
        for service, found in calls.items():
            ends = [c.ended_at for c in found]
            spans[service] = Span(
                started_at=min(c.scheduled_at for c in found),
                ended_at=None if any(e is None for e in ends) else max(e for e in ends if e is not None),
                calls=len(found),
                failed=sum(1 for c in found if c.outcome not in ("completed", "running")),
            )
        return spans


def _status_of(child: _Child, *, aborting: bool) -> tuple[ServiceStatus, str | None]:
    """How the evacuation records a service whose run's end it saw (as the workflow does)."""
    if child.outcome == "running":
        return ServiceStatus.RUNNING, None
    if child.outcome == "completed":
        return ServiceStatus.SUCCEEDED, None
    if child.outcome == "canceled":
        return ServiceStatus.ABORTED, "aborted with the evacuation; its run rolled back"
    if child.outcome == "failed" and aborting and child.failure_type == "cancelled":
        return ServiceStatus.ABORTED, child.failure
    return ServiceStatus.FAILED, child.failure


def _change_text(change: RecordedChange) -> str:
    return f"{change.resource}: {change.before.summary()} → {change.after.summary()}"


_STATUS_ORDER = [s.value for s in ServiceStatus]


def _tiers(groups: list[str], children: list[ChildRun]) -> list[TierRecord]:
    names = list(dict.fromkeys([*groups, *(c.group for c in children)]))
    tiers = []
    for name in names:
        members = [c for c in children if c.group == name]
        counted: dict[str, int] = {}
        for c in members:
            counted[c.status] = counted.get(c.status, 0) + 1
        order = sorted(counted, key=lambda s: (_STATUS_ORDER.index(s) if s in _STATUS_ORDER else len(_STATUS_ORDER), s))
        starts = [c.started_at for c in members if c.started_at is not None]
        ran = [c for c in members if c.started_at is not None]
        ends = [c.ended_at for c in ran]
        tiers.append(
            TierRecord(
                name=name,
                services=len(members),
                counts={s: counted[s] for s in order},
                started_at=min(starts) if starts else None,
                ended_at=None if not ran or any(e is None for e in ends) else max(e for e in ends if e is not None),
            )
        )
    return tiers


# --- the marker md and html exports carry ----------------------------------------------------

MARKER = "evac-evacuation-audit"
_MARKER_LINE = re.compile(r"<!-- evac-evacuation-audit (\{.*?\}) -->")


class MarkedRun(_Model):
    run_id: str
    history_events: int
    history_sha256: str


class EvacuationExportMarker(_Model):
    """Which histories a Markdown or HTML export of an evacuation was rendered from."""

    schema_version: Literal[1] = SCHEMA_VERSION
    namespace: str
    workflow_id: str
    web_ui: str | None
    runs: list[MarkedRun]
    chain_sha256: str

    @classmethod
    def of_provenance(cls, p: ChainProvenance) -> EvacuationExportMarker:
        return cls(
            namespace=p.namespace,
            workflow_id=p.workflow_id,
            web_ui=p.web_ui,
            runs=[MarkedRun(run_id=r.run_id, history_events=r.history_events, history_sha256=r.history_sha256) for r in p.runs],
            chain_sha256=p.chain_sha256,
        )

    @property
    def run_id(self) -> str:
        """The last run named (the one an export of a chain still going was cut in)."""
        return self.runs[-1].run_id


def marker(record: EvacuationAuditRecord) -> str:
    """The one-line HTML comment an evacuation's Markdown or HTML export ends with."""
    return f"<!-- {MARKER} {EvacuationExportMarker.of_provenance(record.provenance).model_dump_json()} -->"


def read_marker(text: str) -> EvacuationExportMarker | None:
    found = _MARKER_LINE.findall(text)
    return EvacuationExportMarker.model_validate_json(found[-1]) if found else None


def raw_histories(histories: Sequence[WorkflowHistory]) -> str:
    """``evac audit export --raw`` of a chain: one run's history as Temporal writes it, several as
    a JSON list of them, oldest first."""
    if len(histories) == 1:
        return histories[0].to_json()
    return json.dumps([h.to_json_dict() for h in histories], indent=2) + "\n"
