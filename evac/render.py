"""How runs look on a terminal (rich) and to scripts (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from rich.console import Group
from rich.table import Table
from rich.text import Text

from evac.drills import DrillReport
from evac.runs import FailoverProgress, RunStatus, StepRecord, StepStatus

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
}
RUN_STYLE = {
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.ROLLING_BACK: "bold yellow",
    RunStatus.ROLLED_BACK: "bold yellow",
    RunStatus.CANCELLED: "bold yellow",
    RunStatus.ROLLBACK_INCOMPLETE: "bold red",
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
        table.add_row(
            str(step.index + 1),
            step.name,
            Text(step.status.value, STEP_STYLE.get(step.status, "")),
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
    if progress.preflight:
        lines.append(Text(f"  preflight {progress.preflight}", "dim"))
    if progress.error:
        lines.append(Text(f"  cause: {progress.error}"))
    for resource in progress.left_changed:
        lines.append(Text(f"  LEFT CHANGED, restore by hand: {resource}", "bold red"))
    if progress.drill is not None:
        lines += drill_lines(progress.drill)
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def drill_lines(report: DrillReport) -> list[Text]:
    """A drill's report: outcome, readiness, measured times against the RTO, checks, verification."""
    outcome = report.outcome.value if report.outcome else f"in progress ({report.phase.value})"
    lines = [Text.assemble("  drill: ", (outcome, "bold"))]
    for line in report.readiness:
        lines.append(Text(f"  readiness: {line}", "dim" if report.ready else "yellow"))
    rto = ""
    if report.rto_target_seconds is not None:
        rto = f" (RTO target {report.rto_target_seconds:g}s{', OVER TARGET' if report.over_rto else ', met'})"
    lines.append(Text(f"  recovery {_seconds(report.recovery_seconds)}{rto}; failback {_seconds(report.failback_seconds)}"))
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


def step_line(progress: FailoverProgress, step: StepRecord) -> str:
    """One line per step transition, for terminals that are not interactive (CI, pipes)."""
    took = _duration(step, None)
    tail = _detail(step)
    return (
        f"{progress.service}: step {step.index + 1} '{step.name}' {step.status.value}"
        + (f" in {took}" if took else "")
        + (f": {tail}" if tail else "")
    )


def history_url(ui_base: str, namespace: str, workflow_id: str, run_id: str) -> str:
    """The run's page in the Temporal Web UI, in the namespace the client is connected to."""
    return (
        f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}/{quote(run_id, safe='')}/history"
    )


def to_json(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value], indent=2)
    if hasattr(value, "model_dump"):
        return str(value.model_dump_json(indent=2))
    return json.dumps(value, indent=2)
