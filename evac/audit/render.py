"""An audit record as people read it: a terminal timeline, Markdown, and one self-contained HTML file.

All three render one list, :func:`timeline`, so they agree: the trigger and its evidence, the
preflight, each step's start and end (attempts, errors, before → after, guard), approvals, the
operators' actions (with the Temporal identity of the caller), a drill's bake and stop-condition
checks, the compensations (what each undo found and restored), a drill's failback and verification,
the outcome and the recovery time against its target.

Rendering is a pure function of the record: no clock, no random ids, nothing fetched. ``evac audit
verify`` re-renders an export from the history and compares, so the same record must always give the
same bytes. The HTML file needs no network and runs no script: inline CSS, an inline SVG Gantt chart
of the steps and compensations, and the record itself as a JSON data block.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from evac.audit.record import ActivityCall, AuditRecord, OperatorAction, embedded_record, marker
from evac.plan import format_duration
from evac.runs import RunStatus, StepRecord, StepStatus
from evac.text import visible

EntryKind = Literal[
    "start",
    "preflight",
    "readiness",
    "step",
    "approval",
    "operator",
    "bake",
    "check",
    "compensation",
    "failback",
    "notify",
    "end",
]


@dataclass(frozen=True)
class Entry:
    """One line of a run's timeline: when, what happened, and the evidence."""

    at: datetime
    what: str
    detail: str
    kind: EntryKind


# --- words shared by every renderer --------------------------------------------------------------


def iso(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds: ``2026-11-28T06:42:40.898Z``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def offset(value: datetime, start: datetime) -> str:
    """How long after ``start``: ``+0.086s``, ``+12.3s``, ``+10m00.2s``, ``+1h02m03.4s``."""
    seconds = (value - start).total_seconds()
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.3f}s"
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{sign}{int(minutes)}m{rest:04.1f}s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{sign}{hours}h{minutes:02d}m{rest:04.1f}s"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}s" if value < 10 else f"{value:.1f}s"


def change_text(step: StepRecord) -> str:
    """What the step itself did to its resource (before → after), whatever was undone later."""
    if step.kind == "approval":
        return step.detail
    if step.before is None or step.kind == "verify_health":
        return step.after.summary() if step.after is not None and not step.detail else step.detail
    if step.after is None:
        return f"{step.before.summary()} ({step.detail})" if step.detail else step.before.summary()
    if step.after == step.before:
        return f"{step.before.summary()} (unchanged)"
    return f"{step.before.summary()} → {step.after.summary()}"


def compensation_text(step: StepRecord) -> str:
    """What the undo of a step did: ``restored size 3 → size 1``, or that it found nothing to restore."""
    if step.undo_to is not None:
        if step.undo_changed is False or step.undo_from is None:
            return f"nothing to restore ({step.undo_to.summary()} already)"
        return f"restored {step.undo_from.summary()} → {step.undo_to.summary()}"
    if step.before is not None and step.kind != "verify_health":
        return f"restored {step.before.summary()}"
    return "undone"


def owed_lines(record: AuditRecord) -> list[str]:
    """The changes a run skipped for want of the source region's API, and still owes (an
    ungraceful drill's rehearsal owes nothing: its report names what would be skipped)."""
    drill = record.run.drill
    if drill is not None and drill.ungraceful:
        return []
    return [f"step {s.index + 1} '{s.name}': {s.owed}" for s in record.run.steps if s.owed]


def rehearsal_lines(record: AuditRecord) -> list[str]:
    """An ungraceful drill: a sentence, then what a real outage of the source's API would skip."""
    drill = record.run.drill
    if drill is None or not drill.ungraceful:
        return []
    head = f"No call was made to {record.source}'s API. In a real outage of it, this plan"
    if not drill.would_skip:
        ran = drill.recovery_seconds is not None or drill.phase.value not in ("readiness", "failover")
        return [f"{head} would skip nothing." if ran else f"No call was made to {record.source}'s API; the failover did not run."]
    return [f"{head} would skip:", *drill.would_skip]


def ended_as(step: StepRecord) -> str:
    """How the step itself ended (a compensated step first succeeded, or failed)."""
    if step.status in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED, StepStatus.COMPENSATING):
        return "failed" if step.error else "succeeded"
    return step.status.value


def compensation_spans(record: AuditRecord) -> dict[str, tuple[datetime, datetime | None, list[ActivityCall]]]:
    """Each compensated step's undo: its activities' first schedule → last end (None: still going)."""
    calls: dict[str, list[ActivityCall]] = {}
    for call in record.activities:
        if call.role == "compensation" and call.step is not None:
            calls.setdefault(call.step, []).append(call)
    spans: dict[str, tuple[datetime, datetime | None, list[ActivityCall]]] = {}
    for step in record.run.steps:
        found = calls.get(step.name)
        if not found:
            continue
        ends = [c.ended_at for c in found]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        spans[step.name] = (min(c.scheduled_at for c in found), end, found)
    return spans


def last_time(record: AuditRecord) -> datetime:
    """When the record ends: the run's close, or its last event (a run still going)."""
    return record.ended_at or record.provenance.last_event_at


def recovery_text(record: AuditRecord) -> str:
    r = record.recovery
    if r.seconds is None:
        measured = "not measured"
    else:
        measured = seconds_text(r.seconds) + (" (recorded by the run)" if r.source == "run" else " (computed from step times)")
    if r.target_seconds is None:
        return f"{measured}; no target set"
    if r.met is None:
        verdict = "" if r.seconds is None else f"; not judged: the run ended {record.outcome}"
    else:
        verdict = "; target met" if r.met else "; OVER TARGET"
    return f"{measured} against a target of {r.target_seconds:g}s{verdict}"


def trigger_text(record: AuditRecord) -> str:
    t = record.trigger
    text = f"{t.kind} by {t.by}" + (f": {t.reason}" if t.reason else "")
    text += f"; client identity {record.starter_identity or '-'}"
    if t.schedule_id:
        text += f"; schedule {t.schedule_id}"
    if t.blackout_override:
        text += f"; started inside a blackout, overridden: {t.blackout_override}"
    if t.evidence:
        text += f"; evidence {', '.join(t.evidence)}"
    return text


def approval_summary(step: StepRecord, identity: str | None) -> str:
    a = step.approval
    if a is None:
        return ""
    who = ", ".join(a.approvers)
    if a.decision is None:
        return f"waiting for {who} until {iso(a.deadline)} (then {a.on_timeout})"
    if a.decision == "timed_out":
        then = "continued" if a.on_timeout == "continue" else "the run rolled back"
        return f"timed out: nobody of {who} decided within {format_duration(a.timeout)}; {then}"
    text = f"{a.decision} by {a.by}" + (f" at {iso(a.at)}" if a.at else "") + (f": {a.reason}" if a.reason else "")
    return text + (f"; identity {identity}" if identity else "")


def approval_identities(record: AuditRecord) -> tuple[dict[int, OperatorAction], set[int]]:
    """Each decided approval step's operator action (by step index), and those actions' positions."""
    verbs = {"approved": "approve", "rejected": "reject"}
    used: set[int] = set()
    found: dict[int, OperatorAction] = {}
    for step in record.run.steps:
        a = step.approval
        if a is None or a.decision not in verbs:
            continue
        for i, action in enumerate(record.operator_actions):
            if i in used or action.action != verbs[a.decision] or action.outcome != "accepted":
                continue
            if action.by == (a.by or "") and (action.step in (None, step.name)):
                used.add(i)
                found[step.index] = action
                break
    return found, used


def action_text(action: OperatorAction) -> str:
    if action.by:
        text = f"by {action.by}" + (f" (identity {action.identity})" if action.identity and action.identity != action.by else "")
    else:
        text = f"by identity {action.identity or 'unknown'}"
    if action.step:
        text += f", step '{action.step}'"
    if action.reason:
        text += f": {action.reason}"
    if action.outcome == "failed":
        text += f"; refused: {action.detail}"
    elif action.detail and action.action not in ("approve", "reject"):
        text += f"; {action.detail}"
    return text


def retried(record: AuditRecord, step: StepRecord) -> list[str]:
    """The step's activity calls that took more than one attempt, or failed other than as the step did."""
    out = []
    for call in record.activities:
        if call.step != step.name or call.role != "step":
            continue
        if call.attempt > 1 or (call.failure and call.failure != step.error):
            text = f"{call.activity} took {call.attempt} attempts" if call.attempt > 1 else f"{call.activity} {call.outcome}"
            out.append(text + (f", last failure: {call.failure}" if call.failure else ""))
    return out


# --- the timeline --------------------------------------------------------------------------------


def timeline(record: AuditRecord) -> list[Entry]:
    """The run's timeline, in time order (ties keep the order the events tell them)."""
    run = record.run
    entries: list[Entry] = []

    def add(at: datetime, what: str, detail: str, kind: EntryKind) -> None:
        entries.append(Entry(at, what, detail, kind))

    scope = "dry run" if run.dry_run else record.kind
    add(
        record.started_at,
        f"{scope} started",
        f"{record.service} {record.source} → {record.target}, plan {record.plan_name} ({record.plan_digest[:12]}); "
        + trigger_text(record),
        "start",
    )
    preflight = [c for c in record.activities if c.role == "preflight"]
    if preflight or run.preflight:
        at = min((c.scheduled_at for c in preflight), default=run.started_at or record.started_at)
        ends = [c.ended_at for c in preflight if c.ended_at is not None]
        calls = f"{len(preflight)} {'activity' if len(preflight) == 1 else 'activities'}"
        took = f"; {calls} in {seconds_text((max(ends) - at).total_seconds())}" if ends else ""
        failed = [f"{c.activity}: {c.failure}" for c in preflight if c.outcome != "completed" and c.failure]
        add(at, "preflight", (run.preflight or "no verdict recorded") + took + "".join(f"; {f}" for f in failed), "preflight")
    drill = run.drill
    if drill is not None and (drill.readiness or drill.ready is not None):
        checks = [c for c in record.activities if c.step == "readiness"]
        at = min((c.scheduled_at for c in checks), default=entries[-1].at)
        verdict = "ready" if drill.ready else ("refused" if drill.ready is False else "undecided")
        add(at, "readiness", f"{verdict}: " + "; ".join(drill.readiness), "readiness")

    identities, used = approval_identities(record)
    for step in run.steps:
        label = f"step {step.index + 1} '{step.name}'"
        if step.started_at is None:
            add(last_time(record), label, f"{step.kind}: {step.status.value.replace('_', ' ')}", "step")
            continue
        if step.approval is not None:
            a = step.approval
            add(
                step.started_at,
                f"{label} waits for approval",
                f"by one of {', '.join(a.approvers)} within {format_duration(a.timeout)} (then {a.on_timeout})",
                "approval",
            )
            action = identities.get(step.index)
            if step.ended_at is not None or a.decision is not None:
                at = a.at or step.ended_at or a.deadline
                add(
                    at,
                    f"{label} {a.decision or step.status.value}",
                    approval_summary(step, action.identity if action else None),
                    "approval",
                )
            continue
        start = f"{step.kind}" + (f" on {step.resource}" if step.resource else "")
        if step.guard:
            start += f"; guard {step.guard}"
        add(step.started_at, f"{label} started", start, "step")
        if step.ended_at is not None:
            parts = [f"attempts {step.attempts}", f"took {seconds_text(step.duration_seconds)}", change_text(step)]
            if step.error:
                parts.append(f"error: {step.error}")
            if step.owed:
                parts.append(f"owed: {step.owed}")
            parts += retried(record, step)
            add(step.ended_at, f"{label} {ended_as(step)}", "; ".join(p for p in parts if p), "step")
        elif step.status in (StepStatus.RUNNING, StepStatus.ABORTED):
            add(last_time(record), f"{label} {step.status.value}", step.error or "no end recorded", "step")

    for i, action in enumerate(record.operator_actions):
        if i in used:
            continue
        add(
            action.at,
            f"{action.action} ({action.name})" if action.action == "other" else action.action,
            action_text(action),
            "operator",
        )
    for pause in run.pauses:
        if pause.held_at is not None:
            add(pause.held_at, "held", f"paused by {pause.by} before step '{pause.held_before}': {pause.reason}", "operator")

    if drill is not None:
        if drill.bake_started_at is not None:
            add(
                drill.bake_started_at,
                "bake started",
                f"hold {drill.bake_seconds:g}s, stop conditions checked every {drill.check_interval_seconds:g}s",
                "bake",
            )
        checks = [c for c in record.activities if c.role == "stop_condition"]
        for call in checks:
            if call.outcome != "completed":
                add(
                    call.ended_at or call.scheduled_at,
                    "stop-condition check failed",
                    f"{call.outcome}: {call.failure or '-'}",
                    "check",
                )
        if drill.conditions or checks:
            last = max((c.ended_at or c.scheduled_at for c in checks), default=drill.bake_ends_at or last_time(record))
            summary = "; ".join(
                f"{c.label} ({c.rule}): {c.checks} checks, {c.breaches} breaches, worst {_num(c.worst)}" for c in drill.conditions
            )
            add(last, f"stop conditions: {len(checks)} checks", summary or "no conditions", "check")
            if drill.breach:
                add(last, "stop condition breached", drill.breach, "check")

    if drill is not None and (drill.failback_seconds is not None or drill.verification or drill.mismatches):
        comp = [c for c in record.activities if c.role == "compensation"]
        first = min((c.scheduled_at for c in comp), default=last_time(record))
        ends = [c.ended_at for c in comp if c.ended_at is not None]
        add(first, "failback", f"took {seconds_text(drill.failback_seconds)}", "failback")
        lines = [f"as before: {v}" for v in drill.verification] + [f"NOT AS BEFORE: {m}" for m in drill.mismatches]
        add(max(ends, default=first), "verification", "; ".join(lines) or "nothing verified", "failback")

    spans = compensation_spans(record)
    for step in run.steps:
        span = spans.get(step.name)
        if span is None and step.status not in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED):
            continue
        at = span[0] if span is not None else last_time(record)
        detail = compensation_text(step)
        if step.compensation_error:
            detail += f"; compensation failed: {step.compensation_error}"
        elif span is not None:
            detail += f"; {len(span[2])} call{'s' if len(span[2]) != 1 else ''}" + (
                f", took {seconds_text((span[1] - span[0]).total_seconds())}" if span[1] else ""
            )
        add(at, f"undo step {step.index + 1} '{step.name}'", detail, "compensation")
    for note in run.notifications:
        add(note.at, f"notified {note.event.value}", (f"step '{note.step}': " if note.step else "") + note.summary(), "notify")

    end = last_time(record)
    outcome = record.outcome + ("" if record.provenance.closed else " (the history ends here; the run was still going)")
    cause = run.error or ""
    if run.left_changed:
        cause += ("; " if cause else "") + "LEFT CHANGED: " + "; ".join(run.left_changed)
    add(end, f"outcome: {outcome}", cause or "-", "end")
    add(end, "recovery", recovery_text(record), "end")
    # In time order; at one instant, what operators did comes first (a resume is taken in by the same
    # workflow task that starts the next step), then in the order added.
    return [e for _, e in sorted(enumerate(entries), key=lambda pair: (pair[1].at, pair[1].kind != "operator", pair[0]))]


# --- terminal (evac audit show) ------------------------------------------------------------------

_KIND_STYLE: dict[str, str] = {
    "start": "bold",
    "approval": "magenta",
    "operator": "yellow",
    "compensation": "yellow",
    "check": "cyan",
    "end": "bold",
}


def rpo_text(record: AuditRecord) -> str | None:
    """The replication lag each data step observed just before it changed roles, against the
    drill's RPO target (None: the run has no data step that read one, and no target)."""
    readings = [(s, s.replication_lag) for s in record.run.steps if s.replication_lag is not None]
    drill = record.run.drill
    target = drill.rpo_target_seconds if drill is not None else None
    if not readings and target is None and not (drill is not None and drill.rpo_synchronous):
        return None
    parts = [f"step '{s.name}': {lag.summary()} ({lag.source})" for s, lag in readings]
    if drill is not None and drill.rpo_synchronous and not parts:
        synchronous = "none to measure (Spanner replicates synchronously)"
        return synchronous + ("" if target is None else f"; target {target:g}s")
    text = "; ".join(parts) if parts else "not measured (no data step read a replica's lag)"
    if target is not None:
        worst = drill.rpo_seconds if drill is not None else None
        verdict = "not judged: not measured" if worst is None else ("OVER TARGET" if worst > target else "target met")
        text += f"; against a target of {target:g}s: {verdict}"
    return text


def point_of_no_return_text(record: AuditRecord) -> str | None:
    run = record.run
    if run.point_of_no_return is None:
        return None
    text = f"crossed at step '{run.point_of_no_return}' (it cannot be undone)"
    if run.status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN:
        text += "; the run stopped after it and rolled nothing back"
    return text


def data_loss_lines(record: AuditRecord) -> list[str]:
    lines = []
    for step in record.run.steps:
        if step.data_loss_window is not None:
            start, end = step.data_loss_window
            lines.append(f"step '{step.name}': writes to the old primary from {iso(start)} to {iso(end)} may be lost")
    return lines


def summary_rows(record: AuditRecord) -> list[tuple[str, str]]:
    """The summary every renderer shows, as (field, value) pairs."""
    p = record.provenance
    ended = iso(record.ended_at) if record.ended_at else f"not ended (history read to {iso(p.last_event_at)})"
    took = f" ({offset(record.ended_at, record.started_at)})" if record.ended_at else ""
    rows = [
        ("service", f"{record.service} (project {record.project})"),
        ("kind", record.kind + (" (dry run: nothing was changed)" if record.run.dry_run else "")),
        ("outcome", record.outcome + (f": {record.run.error}" if record.run.error else "")),
        ("plan", record.plan_name),
        ("plan sha256", record.plan_digest),
        ("regions", f"{record.source} → {record.target}"),
        (
            "trigger",
            f"{record.trigger.kind} by {record.trigger.by}" + (f": {record.trigger.reason}" if record.trigger.reason else ""),
        ),
        ("client identity", record.starter_identity or "-"),
    ]
    if record.trigger.schedule_id:
        rows.append(("schedule", record.trigger.schedule_id))
    if record.trigger.blackout_override:
        rows.append(("blackout override", record.trigger.blackout_override))
    if record.trigger.evidence:
        rows.append(("evidence", ", ".join(record.trigger.evidence)))
    if record.run.depends_on:
        rows.append(("control planes", record.run.depends_on))
    if record.run.ungraceful:
        rehearsal = record.run.drill is not None and record.run.drill.ungraceful
        what = "rehearsed without" if rehearsal else "went on without"
        rows.append(("ungraceful", f"{what} {record.source}'s API: " + "; ".join(record.run.ungraceful)))
    rows += [
        ("started", iso(record.started_at)),
        ("ended", ended + took),
        ("recovery", recovery_text(record)),
    ]
    rpo = rpo_text(record)
    if rpo is not None:
        rows.append(("replication lag (RPO)", rpo))
    crossed = point_of_no_return_text(record)
    if crossed is not None:
        rows.append(("point of no return", crossed))
    rows += [("data loss window", line) for line in data_loss_lines(record)]
    rows += [
        ("workflow", f"{p.workflow_id} ({p.workflow_type}, namespace {p.namespace}, task queue {p.task_queue})"),
        ("run id", p.run_id),
        ("history", f"{p.history_events} events" + (", closed" if p.closed else ", not closed: the run was still going")),
        ("history sha256", p.history_sha256),
        ("record from", f"the run's {record.record_source}"),
    ]
    return rows


def render_text(record: AuditRecord) -> RenderableType:
    """``evac audit show``: a header panel (ids, trigger, plan, outcome, recovery), then the timeline."""
    header = Table.grid(padding=(0, 1))
    header.add_column(style="bold", no_wrap=True)
    header.add_column(overflow="fold")
    for field, value in summary_rows(record):
        header.add_row(field, value)
    title = Text.assemble((record.service, "bold"), f"  {record.kind}  ", (record.outcome, "bold"))
    panel = Panel(header, title=title, title_align="left")
    same_day = record.started_at.date() == last_time(record).date()
    table = Table(title="timeline (UTC)", title_justify="left", expand=False)
    table.add_column("at", no_wrap=True)
    table.add_column("offset", justify="right", no_wrap=True)
    table.add_column("what", overflow="fold", max_width=28)
    table.add_column("detail", overflow="fold")
    for entry in timeline(record):
        stamp = iso(entry.at)
        table.add_row(
            stamp[11:] if same_day else stamp,
            offset(entry.at, record.started_at),
            Text(entry.what, _KIND_STYLE.get(entry.kind, "")),
            entry.detail,
        )
    return Group(panel, table)


# --- Markdown --------------------------------------------------------------------------------------


def md_cell(value: object) -> str:
    """A Markdown table cell: ``|`` escaped, one line, no raw HTML."""
    text = visible(str(value)).replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split()) or "-"


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _when(value: datetime | None, start: datetime) -> str:
    return "-" if value is None else f"{iso(value)} ({offset(value, start)})"


def step_rows(record: AuditRecord) -> list[list[str]]:
    """The steps table: #, name, kind, status, start, end, attempts, before → after, error."""
    start = record.started_at
    rows = []
    for s in record.run.steps:
        error = s.error or ""
        if s.compensation_error:
            error += ("; " if error else "") + f"compensation failed: {s.compensation_error}"
        error = "; ".join(part for part in [error, *retried(record, s)] if part)
        rows.append(
            [
                str(s.index + 1),
                s.name,
                s.kind,
                s.status.value,
                _when(s.started_at, start),
                _when(s.ended_at, start),
                str(s.attempts),
                change_text(s),
                error or "-",
            ]
        )
    return rows


def approval_rows(record: AuditRecord) -> list[list[str]]:
    """Approvals: step, approvers, decision, by, identity, at, reason."""
    identities, _ = approval_identities(record)
    rows = []
    for s in record.run.steps:
        a = s.approval
        if a is None:
            continue
        action = identities.get(s.index)
        rows.append(
            [
                s.name,
                ", ".join(a.approvers),
                a.decision or "waiting",
                a.by or "-",
                action.identity if action else "-",
                iso(a.at) if a.at else "-",
                a.reason or "-",
            ]
        )
    return rows


def action_rows(record: AuditRecord) -> list[list[str]]:
    """Operator actions: at, action, by, identity, reason, outcome."""
    rows = []
    for a in record.operator_actions:
        outcome = a.outcome + (f": {a.detail}" if a.detail else "")
        rows.append(
            [iso(a.at), a.action if a.action != "other" else a.name, a.by or "-", a.identity or "-", a.reason or "-", outcome]
        )
    return rows


def compensation_rows(record: AuditRecord) -> list[list[str]]:
    """Compensations: step, started, ended, undo, error."""
    spans = compensation_spans(record)
    rows = []
    end = last_time(record)
    for s in sorted(record.run.steps, key=lambda s: (spans[s.name][0] if s.name in spans else end, -s.index)):
        span = spans.get(s.name)
        if span is None and s.status not in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED):
            continue
        started = _when(span[0], record.started_at) if span else "-"
        ended = _when(span[1], record.started_at) if span else "-"
        rows.append([s.name, started, ended, compensation_text(s), s.compensation_error or "-"])
    return rows


def condition_rows(record: AuditRecord) -> list[list[str]]:
    drill = record.run.drill
    if drill is None:
        return []
    return [
        [c.label, c.kind, c.rule, str(c.checks), str(c.breaches), "-" if c.worst is None else f"{c.worst:g}", c.last or "-"]
        for c in drill.conditions
    ]


def render_markdown(record: AuditRecord) -> str:
    """The record as Markdown for a postmortem; its last line is the export's marker."""
    start = record.started_at
    lines = [f"# Evac audit: {md_cell(record.service)} {record.kind} ({md_cell(record.outcome)})", ""]
    lines += ["## Summary", ""]
    lines += md_table(["Field", "Value"], summary_rows(record))
    lines += ["## Timeline", ""]
    lines += md_table(
        ["At (UTC)", "Offset", "Event", "Detail"], [[iso(e.at), offset(e.at, start), e.what, e.detail] for e in timeline(record)]
    )
    lines += ["## Steps", ""]
    header = ["#", "Step", "Kind", "Status", "Start", "End", "Attempts", "Before → after", "Error"]
    lines += md_table(header, step_rows(record))
    lines += ["## Approvals", ""]
    approvals = approval_rows(record)
    lines += (
        md_table(["Step", "Approvers", "Decision", "By", "Identity", "At", "Reason"], approvals) if approvals else ["None.", ""]
    )
    lines += ["## Operator actions", ""]
    actions = action_rows(record)
    lines += md_table(["At (UTC)", "Action", "By", "Identity", "Reason", "Outcome"], actions) if actions else ["None.", ""]
    drill = record.run.drill
    if drill is not None:
        lines += ["## Stop conditions", ""]
        bake = f"Bake {drill.bake_seconds:g}s"
        if drill.bake_started_at is not None:
            bake += f" from {_when(drill.bake_started_at, start)}"
        lines += [md_cell(f"{bake}; checked every {drill.check_interval_seconds:g}s."), ""]
        rows = condition_rows(record)
        header = ["Condition", "Kind", "Rule", "Checks", "Breaches", "Worst", "Last"]
        lines += md_table(header, rows) if rows else ["No stop conditions.", ""]
        if drill.breach:
            lines += [f"**Breach:** {md_cell(drill.breach)}", ""]
    lines += ["## Compensations", ""]
    comps = compensation_rows(record)
    lines += md_table(["Step", "Started", "Ended", "Undo", "Error"], comps) if comps else ["None: nothing was undone.", ""]
    if drill is not None:
        lines += ["## Failback and verification", ""]
        lines += [md_cell(f"Failback took {seconds_text(drill.failback_seconds)}."), ""]
        checks = [["as before", v] for v in drill.verification] + [["NOT AS BEFORE", m] for m in drill.mismatches]
        lines += md_table(["Verdict", "Resource"], checks) if checks else ["Nothing verified.", ""]
    if record.run.left_changed:
        lines += ["## Left changed", "", "Restore these by hand:", ""]
        lines += [f"- {md_cell(r)}" for r in record.run.left_changed] + [""]
    if record.run.left_to_do:
        lines += ["## Left to do", "", "Past the point of no return nothing was rolled back. Finish these by hand:", ""]
        lines += [f"- {md_cell(r)}" for r in record.run.left_to_do] + [""]
    rehearsed = rehearsal_lines(record)
    if rehearsed:
        lines += ["## Ungraceful rehearsal", "", md_cell(rehearsed[0]), ""]
        lines += [f"- {md_cell(line)}" for line in rehearsed[1:]] + ([""] if rehearsed[1:] else [])
    owed = owed_lines(record)
    if owed:
        lines += ["## Owed", "", f"Skipped: {md_cell(record.source)}'s API gave no answer. Make these once it does:", ""]
        lines += [f"- {md_cell(line)}" for line in owed] + [""]
    return "\n".join(lines) + marker(record) + "\n"


# --- HTML with an SVG Gantt chart -------------------------------------------------------------------

_STATUS_COLOUR: dict[str, str] = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "aborted": "#e65100",
    "compensated": "#f9a825",
    "compensation_failed": "#8e0000",
    "compensating": "#fbc02d",
    "running": "#1565c0",
    "pending": "#9e9e9e",
    "not_run": "#9e9e9e",
    "skipped": "#b26a00",  # the source region's API did not answer: its change is owed
}
_COMPENSATION_COLOUR = "#6a1b9a"
_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1a1a1a;
  background: #fff; margin: 2rem auto; max-width: 1200px; padding: 0 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.sub { color: #555; margin: 0 0 1rem; }
.outcome { display: inline-block; padding: .05rem .5rem; border: 2px solid currentColor; border-radius: 4px; font-weight: 600; }
.ok { color: #2e7d32; } .bad { color: #c62828; } .warn { color: #b26a00; }
table { border-collapse: collapse; width: 100%; margin: .25rem 0 1rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .45rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #f2f2f2; font-weight: 600; }
table.summary th { width: 9rem; }
td.t, td.o { white-space: nowrap; font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: 12px; }
tr.k-approval td { background: #f6effa; } tr.k-operator td { background: #fff8e1; }
tr.k-compensation td { background: #fdf3e1; } tr.k-end td { font-weight: 600; }
section { page-break-inside: avoid; break-inside: avoid; }
.chart { overflow-x: auto; border: 1px solid #d0d0d0; padding: .5rem; }
svg { display: block; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
svg .label { font-size: 12px; fill: #1a1a1a; } svg .tick { font-size: 11px; fill: #555; }
svg .note { font-size: 11px; fill: #333; } svg .axis { stroke: #888; } svg .grid { stroke: #e4e4e4; }
svg .gap-label { font-size: 11px; fill: #555; font-style: italic; }
.left-changed { border: 2px solid #c62828; padding: .5rem 1rem; }
footer { margin-top: 2rem; color: #666; font-size: 12px; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 11px; }
  .chart { overflow: visible; border: none; padding: 0; }
  svg { max-width: 100%; height: auto; }
  section, tr, .chart { page-break-inside: avoid; break-inside: avoid; }
  h2 { page-break-after: avoid; break-after: avoid; }
  th { background: #eee; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_e(classes[i])}"' if classes else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Scale:
    """Time → x: linear, except that long idle stretches (no step or undo running, e.g. a drill's
    bake) are drawn as a fixed-width break, so that sub-second steps stay readable beside them."""

    GAP_WIDTH = 70.0

    def __init__(self, start: datetime, end: datetime, busy: list[tuple[datetime, datetime]], width: float) -> None:
        self.start = start
        span = max((end - start).total_seconds(), 1e-3)
        intervals = sorted((max(0.0, (a - start).total_seconds()), min(span, (b - start).total_seconds())) for a, b in busy)
        merged: list[list[float]] = []
        for a, b in intervals:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, max(a, b)])
        edges = [0.0] + [x for m in merged for x in m] + [span]
        gaps = [(edges[i], edges[i + 1]) for i in range(0, len(edges) - 1, 2)]
        self.gaps = [(a, b) for a, b in gaps if b - a > 0.1 * span and b - a > 1.0]
        linear = span - sum(b - a for a, b in self.gaps)
        self.rate = (width - self.GAP_WIDTH * len(self.gaps)) / max(linear, 1e-3)
        self.span = span

    def x(self, at: datetime) -> float:
        return self.sx((at - self.start).total_seconds())

    def sx(self, s: float) -> float:
        s = min(max(s, 0.0), self.span)
        x = 0.0
        done = 0.0
        for a, b in self.gaps:
            if s <= a:
                break
            x += (a - done) * self.rate
            if s < b:
                return x + (s - a) / (b - a) * self.GAP_WIDTH
            x += self.GAP_WIDTH
            done = b
        return x + (s - done) * self.rate

    def segments(self) -> list[tuple[float, float]]:
        """The linear stretches (seconds from start)."""
        out, done = [], 0.0
        for a, b in self.gaps:
            out.append((done, a))
            done = b
        return out + [(done, self.span)]

    def ticks(self) -> list[float]:
        step = next((s for s in _TICK_STEPS if s * self.rate >= 90), _TICK_STEPS[-1])
        out: list[float] = []
        for a, b in self.segments():
            k = int(a // step) + (0 if a % step == 0 else 1)
            while k * step <= b + 1e-9:
                t = round(k * step, 6)
                if not out or self.sx(t) - self.sx(out[-1]) >= 60:
                    out.append(t)
                k += 1
        return out


_TICK_STEPS = [
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.025,
    0.05,
    0.1,
    0.2,
    0.25,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    43200,
    86400,
]


def _tick_label(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 10:
        return f"+{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    return offset(datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds), datetime(2000, 1, 1, tzinfo=UTC))


def _f(value: float) -> str:
    return f"{value:.1f}"


def _bake_span(
    record: AuditRecord, spans: dict[str, tuple[datetime, datetime | None, list[ActivityCall]]], end: datetime
) -> tuple[datetime, datetime, str] | None:
    """A drill's bake: from its start to its end (the first undo after it, or the planned end)."""
    drill = record.run.drill
    if drill is None or drill.bake_started_at is None:
        return None
    begun = drill.bake_started_at
    undos = [a for a, _, _ in spans.values() if a >= begun]
    ended = min(undos, default=min(drill.bake_ends_at or end, end))
    checks = max((c.checks for c in drill.conditions), default=0)
    tip = f"bake: held from {iso(begun)} to {iso(ended)}, stop conditions checked {checks} times"
    if drill.breach:
        tip += f"; {drill.breach}"
    return begun, max(ended, begun), tip


def gantt_svg(record: AuditRecord) -> str:
    """The steps and their compensations as an SVG Gantt chart: one row per plan step, one
    ``rect.step-bar`` per step and one ``rect.compensation-bar`` per compensated step."""
    steps = record.run.steps
    start, end = record.started_at, last_time(record)
    spans = compensation_spans(record)
    busy: list[tuple[datetime, datetime]] = []
    for s in steps:
        if s.started_at is not None:
            busy.append((s.started_at, s.ended_at or end))
    for a, b, _ in spans.values():
        busy.append((a, b or end))
    busy += [(c.scheduled_at, c.ended_at or c.scheduled_at) for c in record.activities if c.role == "preflight"]
    label_w, chart_w, right = 210.0, 900.0, 20.0
    row_h, top = 34.0, 46.0
    scale = _Scale(start, end, busy, chart_w)
    bake = _bake_span(record, spans, end)
    rows = len(steps) + (1 if bake is not None else 0)
    height = top + row_h * max(rows, 1) + 80
    width = label_w + chart_w + right
    out = [
        f'<svg class="gantt" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" aria-labelledby="gantt-title">',
        f'<title id="gantt-title">{_e(f"Steps and compensations of {record.service} over time")}</title>',
        "<defs>"
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" stroke-width="2"/>'
        "</pattern></defs>",
    ]
    x0 = label_w
    bottom = top + row_h * max(rows, 1)
    for t in scale.ticks():
        x = x0 + scale.sx(t)
        out.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top - 6)}" x2="{_f(x)}" y2="{_f(bottom)}"/>')
        out.append(f'<text class="tick" x="{_f(x)}" y="{_f(top - 12)}" text-anchor="middle">{_e(_tick_label(t))}</text>')
    for g0, g1 in scale.gaps:
        gx = x0 + scale.sx(g0)
        gw = scale.sx(g1) - scale.sx(g0)
        idle = format_duration(timedelta(seconds=round(g1 - g0)))
        out.append(
            f'<rect class="gap" x="{_f(gx)}" y="{_f(top - 6)}" width="{_f(gw)}" height="{_f(bottom - top + 6)}" fill="#f7f7f7">'
            f"<title>{_e(f'{idle} with no step running (not to scale)')}</title></rect>"
        )
        for dx in (gw * 0.4, gw * 0.6):
            out.append(f'<path class="axis" d="M{_f(gx + dx - 4)} {_f(bottom + 6)} l8 -12" fill="none" stroke-width="1.5"/>')
        out.append(f'<text class="gap-label" x="{_f(gx + gw / 2)}" y="{_f(bottom + 22)}" text-anchor="middle">{_e(idle)}</text>')
    out.append(f'<line class="axis" x1="{_f(x0)}" y1="{_f(bottom)}" x2="{_f(x0 + chart_w)}" y2="{_f(bottom)}"/>')
    for i, s in enumerate(steps):
        y = top + row_h * i
        out.append(f'<text class="label" x="8" y="{_f(y + 17)}">{_e(f"{s.index + 1}. {s.name}")}</text>')
        out.append(f'<text class="tick" x="8" y="{_f(y + 30)}">{_e(s.kind)}</text>')
        status = s.status.value
        if s.started_at is None:
            tip = f"{s.name} ({s.kind}): {status.replace('_', ' ')}"
            out.append(
                f'<rect class="step-bar" data-step="{_e(s.name)}" data-status="{_e(status)}" x="{_f(x0)}" y="{_f(y + 6)}" '
                f'width="10" height="14" fill="url(#hatch)" stroke="#9e9e9e"><title>{_e(tip)}</title></rect>'
            )
            out.append(f'<text class="note" x="{_f(x0 + 16)}" y="{_f(y + 17)}">{_e(status.replace("_", " "))}</text>')
            continue
        bx = x0 + scale.x(s.started_at)
        bw = max(scale.x(s.ended_at or end) - scale.x(s.started_at), 3.0)
        took = seconds_text((s.ended_at - s.started_at).total_seconds()) if s.ended_at else "no end recorded"
        tip = f"{s.name} ({s.kind}): {status}; {iso(s.started_at)} → {iso(s.ended_at) if s.ended_at else '-'} ({took})"
        tip += f"; attempts {s.attempts}"
        if change_text(s):
            tip += f"; {change_text(s)}"
        if s.error:
            tip += f"; error: {s.error}"
        colour = _STATUS_COLOUR.get(status, "#616161")
        out.append(
            f'<rect class="step-bar" data-step="{_e(s.name)}" data-status="{_e(status)}" x="{_f(bx)}" y="{_f(y + 6)}" '
            f'width="{_f(bw)}" height="14" rx="2" fill="{colour}"><title>{_e(tip)}</title></rect>'
        )
        note = took + (f", attempts {s.attempts}" if s.attempts > 1 else "")
        if s.approval is not None and s.approval.decision:
            note += f", {s.approval.decision}" + (f" by {s.approval.by}" if s.approval.by else "")
        elif s.error:
            note += f", {s.error}"
        span = spans.get(s.name)
        nx = bx + bw + 5
        if span is not None:
            cx = x0 + scale.x(span[0])
            cw = max(scale.x(span[1] or end) - scale.x(span[0]), 3.0)
            failed = s.status == StepStatus.COMPENSATION_FAILED or any(c.outcome != "completed" for c in span[2])
            ctip = f"undo {s.name}: {compensation_text(s)}; {iso(span[0])} → {iso(span[1]) if span[1] else '-'}"
            if s.compensation_error:
                ctip += f"; failed: {s.compensation_error}"
            stroke = ' stroke="#c62828" stroke-width="2"' if failed else ""
            out.append(
                f'<rect class="compensation-bar" data-step="{_e(s.name)}" data-status="{"failed" if failed else "completed"}" '
                f'x="{_f(cx)}" y="{_f(y + 22)}" width="{_f(cw)}" height="8" rx="2" fill="{_COMPENSATION_COLOUR}"{stroke}>'
                f"<title>{_e(ctip)}</title></rect>"
            )
            if cx > nx + 6 * len(note) + 10:
                pass
            elif cx + cw + 6 * len(note) + 10 < x0 + chart_w:
                nx = max(nx, cx + cw + 5)
        anchor = "start"
        if nx + 6 * len(note) > x0 + chart_w:
            nx, anchor = bx - 5, "end"
        out.append(f'<text class="note" x="{_f(nx)}" y="{_f(y + 17)}" text-anchor="{anchor}">{_e(note)}</text>')
    if bake is not None:
        # The bake is a row of its own (drawn across the idle stretch it is, not to scale).
        y, (b0, b1, tip) = top + row_h * len(steps), bake
        bx, bw = x0 + scale.x(b0), max(scale.x(b1) - scale.x(b0), 3.0)
        out.append(f'<text class="label" x="8" y="{_f(y + 17)}">bake</text>')
        out.append(f'<text class="tick" x="8" y="{_f(y + 30)}">drill</text>')
        out.append(
            f'<rect class="bake-bar" x="{_f(bx)}" y="{_f(y + 6)}" width="{_f(bw)}" height="14" rx="2" fill="#0277bd">'
            f"<title>{_e(tip)}</title></rect>"
        )
        note = format_duration(timedelta(seconds=round((b1 - b0).total_seconds())))
        out.append(f'<text class="note" x="{_f(bx + bw + 5)}" y="{_f(y + 17)}">{_e(note)}</text>')
    for action in record.operator_actions:
        ax = x0 + scale.x(action.at)
        tip = f"{action.action} {action_text(action)} at {iso(action.at)}"
        out.append(
            f'<path class="action-mark" d="M{_f(ax)} {_f(bottom + 2)} l-5 9 h10 z" fill="#b26a00"><title>{_e(tip)}</title></path>'
        )
    ly = bottom + 44
    present = sorted({s.status.value for s in steps}, key=list(_STATUS_COLOUR).index)
    lx = x0
    for status in present:
        fill = "url(#hatch)" if status in ("not_run", "pending") else _STATUS_COLOUR[status]
        out.append(f'<rect class="legend" x="{_f(lx)}" y="{_f(ly)}" width="14" height="10" fill="{fill}"/>')
        label = f"step {status.replace('_', ' ')}"
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">{_e(label)}</text>')
        lx += 30 + 6.5 * len(label)
    if spans:
        out.append(f'<rect class="legend" x="{_f(lx)}" y="{_f(ly + 2)}" width="14" height="6" fill="{_COMPENSATION_COLOUR}"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">compensation (undo)</text>')
        lx += 160
    if record.operator_actions:
        out.append(f'<path d="M{_f(lx + 7)} {_f(ly)} l-5 9 h10 z" fill="#b26a00"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">operator action</text>')
        lx += 130
    if scale.gaps:
        out.append(f'<rect x="{_f(lx)}" y="{_f(ly)}" width="14" height="10" fill="#f7f7f7" stroke="#888"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">idle stretch, not to scale</text>')
    out.append("</svg>")
    return "\n".join(out)


def _outcome_class(record: AuditRecord) -> str:
    if record.outcome in ("succeeded", "passed"):
        return "ok"
    if record.outcome in ("rolled_back", "cancelled", "aborted", "not_ready", "running", "rolling_back"):
        return "warn"
    return "bad"


def html_head(title: str, css: str) -> list[str]:
    """The opening of a self-contained export page, up to its ``<body>``."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
    ]


def render_html(record: AuditRecord) -> str:
    """One self-contained HTML5 file (inline CSS and SVG, no scripts, nothing fetched), ending with the marker."""
    start = record.started_at
    title = f"Evac audit: {record.service} {record.kind} {record.outcome} ({iso(start)})"
    parts = [
        *html_head(title, _CSS),
        "<header>",
        f"<h1>{_e(record.service)}: {_e(record.kind)} "
        f'<span class="outcome {_outcome_class(record)}">{_e(record.outcome)}</span></h1>',
        f'<p class="sub">{_e(f"{record.source} → {record.target}, plan {record.plan_name}, started {iso(start)}")}</p>',
        "</header>",
        '<section id="summary"><h2>Summary</h2>',
        '<table class="summary"><tbody>'
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary_rows(record))
        + "</tbody></table></section>",
        '<section id="chart"><h2>Steps over time</h2><div class="chart">',
        gantt_svg(record),
        "</div></section>",
    ]
    entries = timeline(record)
    rows = "".join(
        f'<tr class="k-{e.kind}"><td class="t">{_e(iso(e.at))}</td><td class="o">{_e(offset(e.at, start))}</td>'
        f"<td>{_e(e.what)}</td><td>{_e(e.detail)}</td></tr>"
        for e in entries
    )
    parts.append(
        '<section id="timeline"><h2>Timeline</h2><table><thead><tr><th>At (UTC)</th><th>Offset</th><th>Event</th>'
        f"<th>Detail</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
    header = ["#", "Step", "Kind", "Status", "Start", "End", "Attempts", "Before → after", "Error"]
    parts.append(f'<section id="steps"><h2>Steps</h2>{_html_table(header, step_rows(record))}</section>')
    approvals = approval_rows(record)
    body = (
        _html_table(["Step", "Approvers", "Decision", "By", "Identity", "At", "Reason"], approvals)
        if approvals
        else "<p>None.</p>"
    )
    parts.append(f'<section id="approvals"><h2>Approvals</h2>{body}</section>')
    actions = action_rows(record)
    body = _html_table(["At (UTC)", "Action", "By", "Identity", "Reason", "Outcome"], actions) if actions else "<p>None.</p>"
    parts.append(f'<section id="operator-actions"><h2>Operator actions</h2>{body}</section>')
    drill = record.run.drill
    if drill is not None:
        bake = f"Bake {drill.bake_seconds:g}s" + (f" from {_when(drill.bake_started_at, start)}" if drill.bake_started_at else "")
        conditions = condition_rows(record)
        body = f"<p>{_e(f'{bake}; checked every {drill.check_interval_seconds:g}s.')}</p>"
        header = ["Condition", "Kind", "Rule", "Checks", "Breaches", "Worst", "Last"]
        body += _html_table(header, conditions) if conditions else "<p>No stop conditions.</p>"
        if drill.breach:
            body += f'<p class="bad"><strong>Breach:</strong> {_e(drill.breach)}</p>'
        parts.append(f'<section id="stop-conditions"><h2>Stop conditions</h2>{body}</section>')
    comps = compensation_rows(record)
    body = _html_table(["Step", "Started", "Ended", "Undo", "Error"], comps) if comps else "<p>None: nothing was undone.</p>"
    parts.append(f'<section id="compensations"><h2>Compensations</h2>{body}</section>')
    if drill is not None:
        checks = [["as before", v] for v in drill.verification] + [["NOT AS BEFORE", m] for m in drill.mismatches]
        body = f"<p>{_e(f'Failback took {seconds_text(drill.failback_seconds)}.')}</p>"
        body += _html_table(["Verdict", "Resource"], checks) if checks else "<p>Nothing verified.</p>"
        parts.append(f'<section id="failback"><h2>Failback and verification</h2>{body}</section>')
    if record.run.left_changed:
        items = "".join(f"<li>{_e(r)}</li>" for r in record.run.left_changed)
        parts.append(
            f'<section id="left-changed" class="left-changed"><h2>Left changed</h2><p>Restore these by hand:</p><ul>{items}</ul>'
            "</section>"
        )
    if record.run.left_to_do:
        items = "".join(f"<li>{_e(r)}</li>" for r in record.run.left_to_do)
        intro = "Past the point of no return nothing was rolled back. Finish these by hand:"
        parts.append(f'<section id="left-to-do" class="left-changed"><h2>Left to do</h2><p>{intro}</p><ul>{items}</ul></section>')
    rehearsed = rehearsal_lines(record)
    if rehearsed:
        items = "".join(f"<li>{_e(line)}</li>" for line in rehearsed[1:])
        body = f"<p>{_e(rehearsed[0])}</p>" + (f"<ul>{items}</ul>" if items else "")
        parts.append(f'<section id="ungraceful"><h2>Ungraceful rehearsal</h2>{body}</section>')
    owed = owed_lines(record)
    if owed:
        items = "".join(f"<li>{_e(line)}</li>" for line in owed)
        intro = _e(f"Skipped: {record.source}'s API gave no answer. Make these once it does:")
        parts.append(f'<section id="owed" class="left-changed"><h2>Owed</h2><p>{intro}</p><ul>{items}</ul></section>')
    p = record.provenance
    parts.append(
        f"<footer>{_e(f'Derived from the Temporal history of {p.workflow_id} (run {p.run_id}) in namespace {p.namespace}: ')}"
        f"{_e(f'{p.history_events} events, sha256 {p.history_sha256}. Check it with: evac audit verify FILE')}</footer>"
    )
    parts.append(embedded_record(record))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n" + marker(record) + "\n"
