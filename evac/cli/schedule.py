"""``evac schedule``: drills on a cadence, as Temporal Schedules.

Each command turns its options into a call of :mod:`evac.control.schedules` and shows the
result (``--output json`` for scripts); errors are one sentence with an exit code.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from evac import control
from evac.cli.base import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    Output,
    address_option,
    begin,
    client,
    fail_with,
    namespace_option,
    out,
    output_option,
    print_json,
    run_async,
)
from evac.config import Settings
from evac.control import schedules
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError
from evac.plan import format_duration
from evac.schedules import ScheduledOutcome, ScheduledRun, schedule_id
from evac.times import utc_and_local

OUTCOME_STYLE = {
    ScheduledOutcome.RUNNING: "bold cyan",
    ScheduledOutcome.PASSED: "bold green",
    ScheduledOutcome.FAILED: "bold red",
    ScheduledOutcome.SKIPPED: "bold yellow",
}


def name_argument() -> Any:
    return typer.Argument(..., help="The schedule's name (its Temporal schedule id is evac-drill/<name>)")


def _when(moment: datetime | None, timezone: str) -> str:
    return "-" if moment is None else utc_and_local(moment, timezone)


def _outcome(run: ScheduledRun | None, timezone: str) -> str:
    if run is None:
        return "[dim]no run yet[/]"
    style = OUTCOME_STYLE[run.outcome]
    why = f" — {run.reason}" if run.reason else ""
    return f"[{style}]{run.outcome.value}[/] {_when(run.started_at, timezone)}{why}"


def _spec_line(view: schedules.ScheduleView) -> str:
    jitter = f", jitter {format_duration(view.jitter)}" if view.jitter else ""
    bake = f"bake {format_duration(view.bake)}" if view.bake else "the plan's own bake (drill.bake)"
    return (
        f'cron "{view.cron}" {view.timezone}{jitter}; plan {view.plan_name} (digest {view.plan_digest[:12]}) '
        f"for {', '.join(view.services)}, {bake}"
    )


# --- create -----------------------------------------------------------------------------


def create(
    name: str = name_argument(),
    plan_file: Path = typer.Option(..., "--plan", "-p", help="The drill plan YAML file (kind: drill), validated now"),
    cron: str = typer.Option(..., "--cron", help='When, as a cron expression: "0 10 * * TUE" (10:00 every Tuesday)'),
    jitter: str = typer.Option(None, "--jitter", help="Start up to this much later, at random (e.g. 30m)"),
    timezone: str = typer.Option(None, "--timezone", help="IANA time zone the cron is read in (default UTC)"),
    bake: str = typer.Option(None, "--bake", help="Hold the failed-over state this long (default: the plan's)"),
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML (default: topology.yaml beside the plan)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Schedule a drill plan (overlap: skip — a drill never overlaps itself); the plan is checked
    first with the same errors as 'evac plan check'."""
    config = begin(output, address, namespace)
    try:
        plan, topo = control.load_documents(plan_file, topology)
        control.check_project(topo, config)
        schedules.check_name(name)
        bake_time = schedules.check_bake(plan, bake)
        jitter_time = schedules.parse_jitter(jitter)
        schedules.check_cron(cron)
        if timezone is not None:
            schedules.check_timezone(timezone)
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)

    async def go() -> schedules.ScheduleView:
        return await schedules.create_schedule(
            await client(config),
            name,
            plan,
            topo,
            cron=cron,
            task_queue=config.task_queue,
            identity=config.identity,
            timezone=timezone,
            jitter=jitter_time,
            bake=bake_time,
            approver_groups=config.approver_groups,
        )

    view = run_async(go)
    if output == Output.json:
        print_json(view.model_dump(mode="json"))
        return
    out.print(f"[green]created schedule {view.name}[/] ({view.schedule_id}): {_spec_line(view)}", highlight=False)
    out.print(f"  next runs: {', '.join(_when(t, view.timezone) for t in view.next_runs) or '-'}", highlight=False)


# --- list, describe ----------------------------------------------------------------------


def list_(
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Every drill schedule: cron, time zone, paused or not, the next runs and the last run's outcome."""
    config = begin(output, address, namespace)

    async def go() -> list[schedules.ScheduleView]:
        return await schedules.list_schedules(await client(config))

    views = run_async(go)
    if output == Output.json:
        print_json([view.model_dump(mode="json") for view in views])
        return
    if not views:
        out.print("no drill schedules (create one with 'evac schedule create NAME --plan FILE --cron …')", highlight=False)
        return
    table = Table(title="drill schedules", title_justify="left")
    for column in ("name", "plan", "cron", "time zone", "state", "next runs", "last run"):
        table.add_column(column)
    for view in views:
        table.add_row(
            view.name,
            view.plan_name,
            view.cron,
            view.timezone,
            "[yellow]paused[/]" if view.paused else "active",
            "\n".join(_when(t, view.timezone) for t in view.next_runs) or "-",
            ("[cyan]running[/] " if view.running else "") + _outcome(view.last, view.timezone),
        )
    out.print(table)


def describe(
    name: str = name_argument(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """A schedule: its spec and state, the next runs, and its recent runs with each service's outcome."""
    config = begin(output, address, namespace)

    async def go() -> schedules.ScheduleView:
        return await schedules.describe_schedule(await client(config), name)

    view = run_async(go)
    if output == Output.json:
        print_json(view.model_dump(mode="json"))
        return
    out.print(f"[bold]{view.name}[/] ({view.schedule_id}), created by {view.created_by}", highlight=False)
    out.print(f"  {_spec_line(view)}", highlight=False)
    state = "[yellow]paused[/]" if view.paused else "active"
    out.print(f"  state: {state}" + (f" — {view.note}" if view.note else ""), highlight=False)
    out.print(f"  next runs: {', '.join(_when(t, view.timezone) for t in view.next_runs) or '-'}", highlight=False)
    if view.running:
        out.print(f"  running now: {', '.join(view.running)}", highlight=False)
    if not view.recent:
        out.print("  no runs yet ('evac schedule trigger' runs it now)", highlight=False)
        return
    table = Table(title="recent runs (newest last)", title_justify="left")
    for column in ("started", "outcome", "service", "service outcome", "drill run", "why"):
        table.add_column(column, overflow="fold")
    for run in view.recent:
        for i, service in enumerate(run.services):
            table.add_row(
                _when(run.started_at, view.timezone) if i == 0 else "",
                f"[{OUTCOME_STYLE[run.outcome]}]{run.outcome.value}[/]" if i == 0 else "",
                service.service,
                f"[{OUTCOME_STYLE[service.outcome]}]{service.outcome.value}[/]"
                + (f" ({service.drill_outcome})" if service.drill_outcome else ""),
                f"{service.workflow_id} {service.run_id or ''}".strip() if service.run_id else "-",
                service.reason,
            )
    out.print(table)


# --- pause, unpause, trigger, delete --------------------------------------------------------


def pause(
    name: str = name_argument(),
    note: str = typer.Option(..., "--note", help="Why: shown in 'evac schedule describe' with who paused it"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Pause a schedule: no drill starts until it is unpaused ('trigger' still runs it by hand)."""
    config = begin(output, address, namespace)
    _set_paused(config, name, True, f"paused by {config.identity}: {note.strip()}", output)


def unpause(
    name: str = name_argument(),
    note: str = typer.Option(None, "--note", help="Why (shown in 'evac schedule describe')"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Unpause a schedule: its drills start on their cron again."""
    config = begin(output, address, namespace)
    _set_paused(config, name, False, f"unpaused by {config.identity}" + (f": {note.strip()}" if note else ""), output)


def _set_paused(config: Settings, name: str, paused: bool, note: str, output: Output) -> None:
    """Pause or unpause the schedule with its note, and say so."""

    async def go() -> None:
        act = schedules.pause_schedule if paused else schedules.unpause_schedule
        await act(await client(config), name, note)

    run_async(go)
    if output == Output.json:
        print_json({"schedule_id": schedule_id(name), "paused": paused, "note": note})
    else:
        out.print(f"schedule {name} {'paused' if paused else 'unpaused'} ({note})", highlight=False)


def trigger(
    name: str = name_argument(),
    wait: bool = typer.Option(
        False, "--wait/--no-wait", help="Wait for the drill(s) to end and show the outcome (exit 1 if one failed)"
    ),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Run a schedule's drill now, even when paused (blackout windows still hold; refused while its last drill runs)."""
    config = begin(output, address, namespace)

    async def go() -> tuple[str, ScheduledRun | None]:
        temporal = await client(config)
        workflow_id = await schedules.trigger_schedule(temporal, name)
        if output == Output.text:
            out.print(f"triggered schedule {name}: {workflow_id}", highlight=False)
        return workflow_id, (await schedules.wait_for_run(temporal, workflow_id) if wait else None)

    workflow_id, record = run_async(go)
    if output == Output.json:
        print_json(
            {
                "schedule_id": schedule_id(name),
                "workflow_id": workflow_id,
                "record": record and record.model_dump(mode="json"),
            }
        )
    elif record is None:
        out.print(f"  follow it: evac schedule describe {name}", highlight=False)
    else:
        out.print(f"  {_outcome(record, 'UTC')}", highlight=False)
        for service in record.services:
            style = OUTCOME_STYLE[service.outcome]
            why = f" — {service.reason}" if service.reason else ""
            out.print(f"  {service.service}: [{style}]{service.outcome.value}[/]{why}", highlight=False)
    raise typer.Exit(EXIT_RUN_FAILED if record is not None and record.outcome == ScheduledOutcome.FAILED else EXIT_OK)


def delete(
    name: str = name_argument(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Delete a schedule (a drill it started goes on to its end; its record stays in history)."""
    config = begin(output, address, namespace)

    async def go() -> None:
        await schedules.delete_schedule(await client(config), name)

    run_async(go)
    if output == Output.json:
        print_json({"schedule_id": schedule_id(name), "deleted": True})
    else:
        out.print(f"schedule {name} deleted", highlight=False)
