"""How runs look on a terminal (rich) and to scripts (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from evac.drills import DrillOutcome, DrillPhase, DrillReport
from evac.evacuation import EvacuationProgress, EvacuationStatus, ServiceStatus
from evac.plan import format_duration
from evac.runs import ApprovalRecord, FailoverProgress, PauseRecord, RunStatus, StepRecord, StepStatus
from evac.times import utc_text

STEP_STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.RUNNING: "bold cyan",
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.ABORTED: "bold yellow",
    StepStatus.COMPENSATING: "yellow",
    StepStatus.COMPENSATED: "yellow",
    StepStatus.COMPENSATION_FAILED: "bold red",
    StepStatus.NOT_RUN: "dim",
    StepStatus.SKIPPED: "bold yellow",
}
RUN_STYLE = {
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.ROLLING_BACK: "bold yellow",
    RunStatus.ROLLED_BACK: "bold yellow",
    RunStatus.CANCELLED: "bold yellow",
    RunStatus.ROLLBACK_INCOMPLETE: "bold red",
    RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN: "bold red",
    RunStatus.TERMINATED: "bold red",
    RunStatus.TIMED_OUT: "bold red",
    RunStatus.FAILED: "bold red",
}


def _duration(step: StepRecord, now: datetime | None) -> str:
    if step.started_at is None:
        return ""
    end = step.ended_at or now
    if end is None:
        return ""
    return f"{(end - step.started_at).total_seconds():.1f}s"


def _change(step: StepRecord) -> str:
    """What the step did to its resource: ``size 1 → size 3``; once undone, what the undo did
    (``restored size 3 → size 1``); the detail alone for steps that change nothing."""
    if step.status in (StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED) and step.undo_to is not None:
        if step.undo_changed is False or step.undo_from is None:
            return f"undo: nothing to restore ({step.undo_to.summary()} already)"
        return f"restored {step.undo_from.summary()} → {step.undo_to.summary()}"
    if step.status == StepStatus.COMPENSATED and step.before is not None and step.kind != "verify_health":
        return f"restored {step.before.summary()}"
    if step.before is None or step.kind == "verify_health":
        return step.detail
    if step.after is None or step.after == step.before:
        return f"{step.before.summary()} ({step.detail})" if step.detail else step.before.summary()
    return f"{step.before.summary()} → {step.after.summary()}"


def _detail(step: StepRecord) -> str:
    if step.status == StepStatus.SKIPPED:
        return f"{step.detail}; owed: {step.owed}"
    if step.compensation_error:
        return f"rollback failed: {step.compensation_error}"
    if step.status == StepStatus.FAILED and step.error:
        return step.error
    if step.status == StepStatus.ABORTED:
        why = step.error if step.error and step.error != "aborted" else None  # the state already says aborted
        return "; ".join(part for part in (why, _change(step)) if part)
    return _change(step)


def progress_table(progress: FailoverProgress, now: datetime | None = None) -> Table:
    title = Text.assemble(
        (progress.service, "bold"),
        f"  {progress.source} → {progress.target}  ",
        (progress.status.value, RUN_STYLE.get(progress.status, "bold")),
    )
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("state")
    table.add_column("attempts", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("change / detail", overflow="fold")
    for step in progress.steps:
        detail = _detail(step)
        if step.status == StepStatus.RUNNING and step.waits_until is not None and now is not None:
            detail = f"{detail}: {_left(step.waits_until, now)} left"
        table.add_row(
            str(step.index + 1),
            step.name,
            Text(state_word(progress, step), STEP_STYLE.get(step.status, "")),
            str(step.attempts or ""),
            _duration(step, now),
            detail,
        )
    return table


def dry_run_table(progress: FailoverProgress) -> Table:
    """What a run would change, step by step: the live state now → what the step would leave,
    and each guard's verdict. Nothing was changed."""
    title = Text.assemble(
        (progress.service, "bold"), f"  {progress.source} → {progress.target}  ", ("dry run: nothing was changed", "bold")
    )
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("resource", overflow="fold")
    table.add_column("now → would be", overflow="fold")
    table.add_column("guard", overflow="fold")
    for step in progress.steps:
        if step.before is not None and step.after is not None and step.kind != "verify_health":
            change = (
                f"{step.before.summary()} → {step.after.summary()}"
                if step.after != step.before
                else f"{step.before.summary()} (already as desired)"
            )
        else:
            change = step.error or step.detail
        guard = Text(step.guard or "", "bold red" if (step.guard or "").startswith("refuses") else "green")
        table.add_row(str(step.index + 1), step.name, step.resource, change, guard)
    return table


def outcome_lines(progress: FailoverProgress) -> list[Text]:
    lines = [
        Text.assemble(
            (f"{progress.service}: ", "bold"),
            (progress.status.value, RUN_STYLE.get(progress.status, "bold")),
            f"  ({progress.workflow_id}, run {progress.run_id})",
        )
    ]
    trigger = progress.trigger
    lines.append(Text(f"  started by {trigger.by} ({trigger.kind})" + (f": {trigger.reason}" if trigger.reason else ""), "dim"))
    if trigger.schedule_id:
        lines.append(Text(f"  schedule {trigger.schedule_id}", "dim"))
    if trigger.blackout_override:
        lines.append(Text(f"  started inside a blackout, overridden: {trigger.blackout_override}", "bold yellow"))
    if progress.preflight:
        lines.append(Text(f"  preflight {progress.preflight}", "dim"))
    lines += source_lines(progress)
    if progress.error:
        lines.append(Text(f"  cause: {progress.error}"))
    for resource in progress.left_changed:
        lines.append(Text(f"  LEFT CHANGED, restore by hand: {resource}", "bold red"))
    if progress.point_of_no_return is not None:
        crossed = f"  PAST THE POINT OF NO RETURN: step '{progress.point_of_no_return}' cannot be undone"
        lines.append(Text(crossed + ("; nothing was rolled back" if progress.left_to_do else ""), "bold red"))
    for todo in progress.left_to_do:
        lines.append(Text(f"  LEFT TO DO, finish by hand: {todo}", "bold red"))
    for record in progress.steps:
        if record.data_loss_window is not None:
            start, end = record.data_loss_window
            window = f"from {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"
            text = f"  DATA LOSS WINDOW ({record.name}): writes to the old primary {window} may be lost"
            lines.append(Text(text, "bold yellow"))
    lines += operator_lines(progress)
    for notification in progress.notifications:
        failed = notification.error is not None or any(not d.delivered for d in notification.deliveries)
        text = f"  notified {notification.event.value}: {notification.summary()}"
        lines.append(Text(text, "yellow" if failed else "dim"))
    if progress.drill is not None:
        lines += drill_lines(progress.drill)
    return lines


def source_lines(progress: FailoverProgress) -> list[Text]:
    """What the run depends on, and what it did without the source region's API: the reads it
    could not make and the changes it owes (a drill that rehearsed it says so in its report)."""
    lines: list[Text] = []
    if progress.depends_on:
        lines.append(Text(f"  {progress.depends_on}", "dim"))
    rehearsal = progress.drill is not None and progress.drill.ungraceful
    refused = progress.drill is not None and progress.drill.ready is False
    if progress.ungraceful and not rehearsal:
        # A drill refused for it went on with nothing: it says what did not answer, not that it went on.
        head = f"{progress.source}'s API did not answer:" if refused else f"UNGRACEFUL: went on without {progress.source}'s API:"
        lines.append(Text(f"  {head}", "bold yellow"))
        lines += [Text(f"    {cause}", "yellow") for cause in progress.ungraceful]
    for step in [] if rehearsal else progress.skipped:
        lines.append(Text(f"  OWED, make it once {progress.source} answers: step '{step.name}': {step.owed}", "bold yellow"))
    return lines


# --- operator controls: approvals, pauses, and what a run waits for ------------------------


def _at(value: datetime | None) -> str:
    return "-" if value is None else utc_text(value)


def _left(until: datetime | None, now: datetime | None) -> str:
    if until is None or now is None:
        return ""
    seconds = max(0.0, (until - now).total_seconds())
    return format_duration(timedelta(seconds=round(seconds)))


def approval_text(step: StepRecord, approval: ApprovalRecord) -> str:
    """An approval step's decision (or wait) in one line."""
    who = ", ".join(approval.approvers)
    why = f": {approval.reason}" if approval.reason else ""
    if approval.decision == "timed_out":
        then = "continued" if approval.on_timeout == "continue" else "the run rolled back"
        return f"approval '{step.name}': nobody of {who} decided within {format_duration(approval.timeout)}; {then}"
    if approval.decision is not None:
        return f"approval '{step.name}': {approval.decision} by {approval.by} at {_at(approval.at)}{why}"
    return f"approval '{step.name}': waiting for {who} until {_at(approval.deadline)} (then {approval.on_timeout})"


def pause_text(pause: PauseRecord) -> str:
    """One pause in one line: who, why, where it held, who resumed it."""
    text = f"paused by {pause.by} at {_at(pause.at)}: {pause.reason}"
    if pause.held_before is not None:
        text += f"; held before step '{pause.held_before}' from {_at(pause.held_at)}"
    if pause.resumed_by is not None:
        text += f"; resumed by {pause.resumed_by} at {_at(pause.resumed_at)}"
        text += f" ({pause.resume_reason})" if pause.resume_reason else ""
    elif pause.resume_reason:
        text += f"; {pause.resume_reason}"
    return text


def operator_lines(progress: FailoverProgress) -> list[Text]:
    """Approvals decided or awaited, and every pause, for `evac status` and the end of a run."""
    lines: list[Text] = []
    for step in progress.steps:
        if step.approval is not None:
            style = "bold yellow" if step.approval.decision is None else "dim"
            lines.append(Text(f"  {approval_text(step, step.approval)}", style))
    for pause in progress.pauses:
        style = "bold yellow" if pause == progress.pause else "dim"
        lines.append(Text(f"  {pause_text(pause)}", style))
    return lines


def current_step(progress: FailoverProgress) -> StepRecord | None:
    """The step in flight (or being undone), if any."""
    for status in (StepStatus.COMPENSATING, StepStatus.RUNNING):
        for step in progress.steps:
            if step.status == status:
                return step
    return None


def waiting_for(progress: FailoverProgress, now: datetime | None = None) -> str:
    """What the run waits for now, in words: a pause, an approval, the bake, a step, the end.

    With ``now`` the time left is shown (a live view); without it the text changes only when
    the run does (one line per change)."""
    if progress.status.finished:
        return f"nothing: the run ended {progress.status.value}"
    if progress.status == RunStatus.ROLLING_BACK:
        step = current_step(progress)
        return f"the rollback{f' (undoing {step.name!r})' if step else ''}"
    pause = progress.pause
    if pause is not None and pause.held_at is not None:
        return f"a resume: paused by {pause.by} before step '{pause.held_before}' ({pause.reason}); 'evac resume' goes on"
    parts: list[str] = []
    step = current_step(progress)
    approval = step.approval if step is not None else None
    if step is not None and approval is not None and approval.decision is None:
        left = _left(approval.deadline, now)
        until = f"{left} left" if left else f"until {_at(approval.deadline)}"
        parts.append(f"approval of step '{step.name}' by {', '.join(approval.approvers)} ({until}, then {approval.on_timeout})")
    elif step is not None and step.waits_until is not None and step.status == StepStatus.RUNNING:
        left = _left(step.waits_until, now)
        until = f"{left} left" if left else f"until {_at(step.waits_until)}"
        parts.append(f"the wait of step {step.index + 1} '{step.name}' ({until})")
    elif step is not None:
        parts.append(f"step {step.index + 1} '{step.name}' to finish")
    drill = progress.drill
    if drill is not None and drill.phase == DrillPhase.BAKE and drill.bake_ends_at is not None:
        left = _left(drill.bake_ends_at, now)
        parts.append(f"the bake ({left} left)" if left else f"the bake (until {_at(drill.bake_ends_at)})")
    elif drill is not None and step is None and drill.phase != DrillPhase.DONE:
        parts.append(f"the drill's {drill.phase.value}")
    if not parts and not progress.preflight:
        parts.append("the preflight")
    if pause is not None:
        parts.append(f"then a hold: pause requested by {pause.by} ({pause.reason})")
    return "; ".join(parts) or "the next step"


def condition_lines(report: DrillReport) -> list[str]:
    """The stop conditions' last and worst values, one line each."""
    lines = []
    for c in report.conditions:
        worst = "-" if c.worst is None else f"{c.worst:g}"
        last = c.last or "-"
        lines.append(f"{c.label} ({c.rule}): last {last}, worst {worst}, {c.checks} checks, {c.breaches} breaches")
    return lines


def watch_line(progress: FailoverProgress) -> str:
    """One line of ``evac watch`` when not on a terminal: printed whenever it changes."""
    if progress.status.finished:
        return f"{progress.service}: ended {progress.status.value}" + (f": {progress.error}" if progress.error else "")
    line = f"{progress.service}: {progress.status.value}; waiting for {waiting_for(progress)}"
    if progress.drill is not None and progress.drill.conditions and progress.drill.phase == DrillPhase.BAKE:
        line += "; " + "; ".join(condition_lines(progress.drill))
    return line


def watch_view(progress: FailoverProgress, now: datetime | None = None) -> Group:
    """``evac watch`` on a terminal: what the run waits for, its stop conditions, its steps."""
    step = current_step(progress)
    body = [
        Text.assemble(("current step: ", "bold"), step.name if step else "-"),
        Text.assemble(("waiting for: ", "bold"), waiting_for(progress, now)),
    ]
    if progress.drill is not None:
        body.append(Text.assemble(("drill phase: ", "bold"), progress.drill.phase.value))
        body += [Text(f"  {line}", "dim") for line in condition_lines(progress.drill)]
        if progress.drill.breach:
            body.append(Text(f"  {progress.drill.breach}", "bold yellow"))
    body += operator_lines(progress)
    title = Text.assemble(
        (progress.service, "bold"), f"  {progress.kind}  ", (progress.status.value, RUN_STYLE.get(progress.status, "bold"))
    )
    panel = Panel(Group(*body), title=title, title_align="left", expand=False)
    return Group(panel, progress_table(progress, now))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def rto_verdict(report: DrillReport) -> str:
    """Against the RTO target: met only when a recovery was measured and the drill passed."""
    if report.recovery_seconds is None:
        return ", not measured"
    if report.over_rto:
        return ", OVER TARGET"
    if report.outcome == DrillOutcome.PASSED:
        return ", met"
    if report.outcome is None:
        return ", within it so far"
    return f", not met: the drill {report.outcome.value.replace('_', ' ')}"


def rpo_text(report: DrillReport) -> str:
    """The data the drill's role changes could have lost, against the RPO target: met only when measured."""
    target = "" if report.rpo_target_seconds is None else f" (RPO target {report.rpo_target_seconds:g}s"
    if report.rpo_seconds is None and report.rpo_synchronous:
        return f"replication lag: none to measure (Spanner replicates synchronously){target}{')' if target else ''}"
    if report.rpo_seconds is None:
        return f"replication lag not measured{target}{', not measured)' if target else ''}"
    verdict = ", OVER TARGET)" if report.over_rpo else ", met)"
    return f"replication lag {report.rpo_seconds:g}s before the roles changed{target}{verdict if target else ''}"


def drill_lines(report: DrillReport) -> list[Text]:
    """A drill's report: outcome, readiness, measured times against the RTO, checks, verification."""
    if report.outcome is not None:
        outcome = report.outcome.value
    elif report.phase == DrillPhase.DONE:  # ended with no outcome: a dry run
        outcome = "dry run: readiness and the changes the failover would make; no bake, no failback, nothing changed"
    else:
        outcome = f"in progress ({report.phase.value})"
    lines = [Text.assemble("  drill: ", (outcome, "bold"))]
    if report.ungraceful:
        lines.append(Text("  ungraceful rehearsal: no call was made to the source region's API", "bold"))
        if report.would_skip:
            lines += [Text(f"  in a real outage, would skip: {line}", "yellow") for line in report.would_skip]
        elif report.phase not in (DrillPhase.READINESS, DrillPhase.FAILOVER):
            lines.append(Text("  in a real outage, nothing of the failover would be skipped", "green"))
    for line in report.readiness:
        lines.append(Text(f"  readiness: {line}", "dim" if report.ready else "yellow"))
    rto = ""
    if report.rto_target_seconds is not None:
        rto = f" (RTO target {report.rto_target_seconds:g}s{rto_verdict(report)})"
    lines.append(Text(f"  recovery {_seconds(report.recovery_seconds)}{rto}; failback {_seconds(report.failback_seconds)}"))
    if report.rpo_seconds is not None or report.rpo_target_seconds is not None or report.rpo_synchronous:
        lines.append(Text(f"  {rpo_text(report)}"))
    lines.append(Text(f"  bake {report.bake_seconds:g}s, stop conditions checked every {report.check_interval_seconds:g}s"))
    for c in report.conditions:
        worst = "-" if c.worst is None else f"{c.worst:g}"
        lines.append(Text(f"    {c.label}: {c.rule}: {c.checks} checks, {c.breaches} breaches, worst {worst}", "dim"))
    if report.breach:
        lines.append(Text(f"  {report.breach}", "bold yellow"))
    for line in report.verification:
        lines.append(Text(f"  verified: {line}", "dim"))
    for line in report.mismatches:
        lines.append(Text(f"  NOT AS BEFORE: {line}", "bold red"))
    return lines


def runs_view(runs: Iterable[FailoverProgress], now: datetime | None = None) -> Group:
    return Group(*(progress_table(p, now) for p in runs))


UNDOING = (StepStatus.COMPENSATING, StepStatus.COMPENSATED, StepStatus.COMPENSATION_FAILED)


def _failing_back(progress: FailoverProgress) -> bool:
    """Whether the run's undos are a drill's failback (on purpose), not a rollback."""
    drill = progress.drill
    if drill is None:
        return False
    return drill.phase in (DrillPhase.FAILBACK, DrillPhase.VERIFY) or drill.outcome in (DrillOutcome.PASSED, DrillOutcome.FAILED)


def state_word(progress: FailoverProgress, step: StepRecord) -> str:
    """A step's state in words: an undo says whether it is a rollback or a drill's failback."""
    if step.status not in UNDOING:
        return step.status.value
    back = "failing back" if _failing_back(progress) else "rolling back"
    done = "failed back" if _failing_back(progress) else "rolled back"
    failed = "failback failed" if _failing_back(progress) else "rollback failed"
    return {StepStatus.COMPENSATING: back, StepStatus.COMPENSATED: done}.get(step.status, failed)


def step_line(progress: FailoverProgress, step: StepRecord) -> str:
    """One line per step transition, for terminals that are not interactive (CI, pipes). An undo's
    line says what it restores, not the forward change, and carries no forward duration."""
    if step.status in UNDOING:
        tail = _detail(step)
        if step.status == StepStatus.COMPENSATING and step.before is not None and step.kind != "verify_health":
            now = step.after.summary() if step.after is not None else "its changed state"
            tail = f"restoring {now} → {step.before.summary()}"
        return f"{progress.service}: step {step.index + 1} '{step.name}' {state_word(progress, step)}" + (
            f": {tail}" if tail else ""
        )
    took = _duration(step, None)
    tail = _detail(step)
    return (
        f"{progress.service}: step {step.index + 1} '{step.name}' {step.status.value}"
        + (f" in {took}" if took else "")
        + (f": {tail}" if tail else "")
    )


def drill_progress_lines(progress: FailoverProgress, seen: dict[str, object]) -> list[str]:
    """For a drill followed line by line: a line when its phase changes (the bake says until when)
    and one per check of its stop conditions (each condition's reading). ``seen`` is the caller's
    memory of what it printed, per run."""
    drill = progress.drill
    if drill is None or progress.dry_run:
        return []
    lines: list[str] = []
    if seen.get("phase") != drill.phase:
        seen["phase"] = drill.phase
        if drill.phase == DrillPhase.BAKE and drill.bake_ends_at is not None:
            lines.append(
                f"{progress.service}: drill bake: holding the failed-over state until {_at(drill.bake_ends_at)}, "
                f"stop conditions checked every {drill.check_interval_seconds:g}s"
            )
        elif drill.phase not in (DrillPhase.READINESS, DrillPhase.DONE):
            lines.append(f"{progress.service}: drill {drill.phase.value}")
    checks = max((c.checks for c in drill.conditions), default=0)
    if checks and seen.get("checks") != checks:
        seen["checks"] = checks
        readings = "; ".join(f"{c.label}: {c.last or '-'}" + (" BREACHED" if c.breaches else "") for c in drill.conditions)
        lines.append(f"{progress.service}: stop conditions, check {checks}: {readings}")
    return lines


def history_url(ui_base: str, namespace: str, workflow_id: str, run_id: str) -> str:
    """The run's page in the Temporal Web UI, in the namespace the client is connected to."""
    return (
        f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}/{quote(run_id, safe='')}/history"
    )


def plain_columns(header: list[str], rows: list[list[str]]) -> str:
    """Rows as plain columns, as kubectl prints them: every value whole (never cut to a terminal's
    width), columns two spaces apart, padded to their widest value."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def to_json(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value], indent=2)
    if hasattr(value, "model_dump"):
        return str(value.model_dump_json(indent=2))
    return json.dumps(value, indent=2)


# --- region evacuations -----------------------------------------------------------------

EVAC_STYLE = {
    EvacuationStatus.RUNNING: "bold cyan",
    EvacuationStatus.SUCCEEDED: "bold green",
    EvacuationStatus.COMPLETED_WITH_FAILURES: "bold red",
    EvacuationStatus.ABORTING: "bold yellow",
    EvacuationStatus.ABORTED: "bold yellow",
}
# The columns of the per-group table: always these, then the others when any service has them.
EVAC_COLUMNS = (
    ("done", (ServiceStatus.SUCCEEDED,)),
    ("running", (ServiceStatus.RUNNING,)),
    ("waiting", (ServiceStatus.WAITING,)),
    ("failed", (ServiceStatus.FAILED, ServiceStatus.FAILBACK_FAILED)),
)
EVAC_OCCASIONAL = (
    ("aborted", (ServiceStatus.ABORTED,)),
    ("not started", (ServiceStatus.NOT_STARTED,)),
    ("failed back", (ServiceStatus.FAILED_BACK,)),
)
FAILED_SHOWN = 5


def _evac_columns(progress: EvacuationProgress) -> list[tuple[str, tuple[ServiceStatus, ...]]]:
    total = progress.counts()
    return [*EVAC_COLUMNS, *((name, kinds) for name, kinds in EVAC_OCCASIONAL if any(total[k] for k in kinds))]


def _span(seconds: float) -> str:
    return format_duration(timedelta(seconds=max(0, round(seconds))))


def evacuation_facts(progress: EvacuationProgress, now: datetime | None = None) -> list[str]:
    """Where the evacuation stands, as short phrases: the group, in flight vs the window, time."""
    facts = []
    if progress.current_group is not None:
        at = progress.groups.index(progress.current_group) + 1 if progress.current_group in progress.groups else 0
        facts.append(f"group {progress.current_group} ({at}/{len(progress.groups)})")
    if not progress.status.finished:
        facts.append(f"in flight {progress.in_flight()}/{progress.window}")
    if progress.started_at is not None:
        end = progress.ended_at or now
        if end is not None:
            facts.append(f"{'took' if progress.ended_at else 'elapsed'} {_span((end - progress.started_at).total_seconds())}")
    if now is not None and not progress.status.finished:
        eta = progress.eta_seconds(now)
        facts.append(f"ETA {_span(eta)}" if eta is not None else "ETA -")
    return facts


def failed_lines(progress: EvacuationProgress, shown: int = FAILED_SHOWN) -> list[str]:
    """The services that could not fail over (or back), each with its error: the first few, then how many more."""
    failed = progress.failed()
    lines = [f"{r.service} ({r.group}) {r.status.value}: {r.error or 'no error recorded'}" for r in failed[:shown]]
    if len(failed) > shown:
        lines.append(f"and {len(failed) - shown} more (evac status {progress.workflow_id} --output json lists them all)")
    return lines


def evacuation_table(progress: EvacuationProgress, now: datetime | None = None) -> Table:
    title = Text.assemble(
        ("evacuation ", "bold"),
        (progress.region, "bold"),
        f" → {progress.target or 'auto-target'}  ",
        (progress.status.value, EVAC_STYLE.get(progress.status, "bold")),
        ("  (dry run: nothing changes)" if progress.dry_run else "", "bold"),
    )
    table = Table(title=title, title_justify="left", expand=False)
    columns = _evac_columns(progress)
    table.add_column("group")
    for name, _ in columns:
        table.add_column(name, justify="right")
    for group in progress.groups:
        counts = progress.counts(group)
        style = "bold" if group == progress.current_group else ""
        cells = [str(sum(counts[k] for k in kinds)) for _, kinds in columns]
        table.add_row(Text(group + (" ◀" if group == progress.current_group else ""), style), *cells)
    return table


def evacuation_view(progress: EvacuationProgress, now: datetime | None = None) -> Group:
    """``evac watch`` / ``evac status`` on an evacuation: per group done / running / waiting / failed,
    the current group, in flight vs the window, elapsed, ETA, and the failed services."""
    parts: list[Any] = [evacuation_table(progress, now), Text("  " + " · ".join(evacuation_facts(progress, now)), "bold")]
    parts += [Text(f"  {line}", "red") for line in failed_lines(progress)]
    if progress.abort is not None:
        parts.append(Text(f"  {abort_text(progress)}", "bold yellow"))
    return Group(*parts)


def abort_text(progress: EvacuationProgress) -> str:
    abort = progress.abort
    if abort is None:
        return ""
    if progress.failback_of:
        back = "services not failed back yet stay failed over"
    else:
        back = "finished services fail back" if abort.rollback_all else "finished services stay failed over"
    return f"aborted by {abort.by}: {abort.reason} ({back})"


def evacuation_line(progress: EvacuationProgress) -> str:
    """One line of ``evac watch`` / ``evac evacuate`` when not on a terminal: printed when it changes."""
    groups = "; ".join(
        f"{g} " + "/".join(str(sum(progress.counts(g)[k] for k in kinds)) for _, kinds in EVAC_COLUMNS) for g in progress.groups
    )
    head = (
        f"fail-back to {progress.region}: {progress.status.value}"
        if progress.failback_of
        else f"evacuation {progress.region}: {progress.status.value}"
    )
    facts = [f for f in evacuation_facts(progress) if not f.startswith(("elapsed", "took"))]
    return f"{head}; {', '.join(facts)}; done/running/waiting/failed by group: {groups}" if facts else f"{head}; {groups}"


def evacuation_outcome_lines(progress: EvacuationProgress) -> list[Text]:
    """Below the view at the end of an evacuation: its outcome, who started it, the abort and
    what stays failed over, and anything left changed."""
    lines = [
        Text.assemble(
            ("fail-back to " if progress.failback_of else "evacuation of ", "bold"),
            (progress.region, "bold"),
            ": ",
            (progress.summary(), EVAC_STYLE.get(progress.status, "bold")),
            f"  ({progress.workflow_id})",
        )
    ]
    trigger = progress.trigger
    lines.append(Text(f"  started by {trigger.by} ({trigger.kind})" + (f": {trigger.reason}" if trigger.reason else ""), "dim"))
    if progress.failback_of:
        lines.append(Text(f"  restores what {progress.failback_of} changed, newest change first", "dim"))
        for record in progress.services:
            if record.status == ServiceStatus.FAILBACK_FAILED and record.error:
                lines.append(Text(f"  {record.service}: {record.error}", "bold red"))
    if progress.abort is not None:
        stayed = progress.counts()[ServiceStatus.SUCCEEDED]
        if stayed:
            lines.append(Text(f"  {stayed} service(s) stay failed over to their targets", "yellow"))
    ungraceful = [r.service for r in progress.services if r.ungraceful]
    if ungraceful:
        text = f"  UNGRACEFUL: {len(ungraceful)} run(s) went on without {progress.region}'s API: {', '.join(ungraceful)}"
        lines.append(Text(text, "bold yellow"))
    for record in progress.services:
        for owed in record.owed:
            lines.append(Text(f"  OWED, make it once {progress.region} answers: {record.service}: {owed}", "bold yellow"))
        for resource in record.left_changed:
            lines.append(Text(f"  LEFT CHANGED, restore by hand: {record.service}: {resource}", "bold red"))
    return lines
