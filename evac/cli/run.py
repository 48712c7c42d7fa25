"""Run commands: ``evac plan check``, ``evac failover``, ``evac status``, ``evac abort``.

Each turns its options into calls of :mod:`evac.control` and shows the result; every wait is
bounded, every error is one sentence with an exit code (see the table in README.md).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from temporalio.client import Client

from evac import control, dependencies, render
from evac.cli import evacuate
from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_PAST_POINT_OF_NO_RETURN,
    EXIT_RUN_FAILED,
    FollowNotices,
    Output,
    State,
    address_option,
    blackouts_for,
    client,
    connection,
    err,
    fail,
    fail_with,
    namespace_option,
    out,
    output_option,
    reason_or_fail,
    run_async,
    set_output,
    settings,
    started_json,
    tell_overridden,
)
from evac.config import Settings
from evac.control import readiness
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError
from evac.evacuation import is_evacuation_id
from evac.plan import MAX_BAKE_CHECKS, Plan, format_duration, parse_duration
from evac.readiness import STATE_WORDS
from evac.runs import (
    AbortRequest,
    FailoverInput,
    FailoverProgress,
    RunStatus,
    Trigger,
    workflow_id_of,
)
from evac.times import utc_text
from evac.topology import Topology


def topology_option() -> Any:
    return typer.Option(None, "--topology", "-t", help="Topology YAML (default: topology.yaml beside the plan)")


def allow_no_worker_option() -> Any:
    return typer.Option(False, "--allow-no-worker", help="Start even when no worker polls the task queue (the runs wait for one)")


def exit_code(records: list[FailoverProgress]) -> int:
    """0 when every run succeeded or is still going; 5 when any stopped past its point of no
    return (nothing rolled back: finish by hand); 1 when any other ended without succeeding.

    ``evac status`` and ``evac status --watch`` agree on an ended run; ``evac failover`` waits
    for the end, so 0 from it means every run succeeded.
    """
    if any(r.status == RunStatus.STOPPED_PAST_POINT_OF_NO_RETURN for r in records):
        return EXIT_PAST_POINT_OF_NO_RETURN
    ok = all(r.status == RunStatus.SUCCEEDED or not r.status.finished for r in records)
    return EXIT_OK if ok else EXIT_RUN_FAILED


def _url(config: Settings, client: Client, workflow_id: str, run_id: str) -> str:
    return render.history_url(config.temporal_ui, client.namespace, workflow_id, run_id)


# --- plan check ---------------------------------------------------------------------


def plan_check(
    file: Path = typer.Argument(..., help="The plan YAML file"),
    topology: Path = topology_option(),
    output: Output = output_option(),
) -> None:
    """Validate a plan against its topology; every error names file, line, place and problem."""
    set_output(output)
    try:
        plan, topo = control.load_documents(file, topology)
    except InvalidDocument as exc:
        fail_with(exc)
    needs = {s: dependencies.depends_on(plan, topo.project, topo.services[s], s) for s in plan.services}
    point = plan.point_of_no_return()
    if output == Output.json:
        document = {"file": str(file), "valid": True, "digest": plan.digest(), "plan": plan.model_dump(mode="json")}
        document["point_of_no_return"] = (
            None if point is None else {"index": point, "name": plan.steps[point].label(point), "kind": plan.steps[point].kind}
        )
        out.print_json(json.dumps({**document, "dependencies": needs}))
        return
    out.print(
        f"[green]{file}: valid[/] — plan '{plan.name}': {', '.join(plan.services)} "
        f"{plan.source} → {plan.target}, {len(plan.steps)} steps, digest {plan.digest()[:12]}",
        highlight=False,
    )
    deadline = plan.retries.source_deadline
    within = f"each within retries.source_deadline {format_duration(deadline)}" if deadline else "never called: source_deadline 0"
    for service, text in needs.items():
        out.print(f"  {service}: {text}", highlight=False, soft_wrap=True)
    if any("source-only:" in text for text in needs.values()):
        out.print(f"  (source-only calls: {within}; a run goes on without them, ungraceful)", highlight=False)
    if any(step.kind == "sql_switchover" for step in plan.steps):
        out.print(
            f"  sql_switchover needs {plan.source}'s Cloud SQL primary to answer (a graceful move): with "
            f"{plan.source} down, a plan promotes the replica instead (sql_promote_replica)",
            highlight=False,
            soft_wrap=True,
        )
    if point is not None:
        step = plan.steps[point]
        out.print(
            f"  [bold]point of no return[/]: step {point + 1} '{step.label(point)}' ({step.kind}) cannot be undone; "
            "once it is sent, a failure or abort stops the run instead of rolling back",
            highlight=False,
            soft_wrap=True,
        )


# --- failover -------------------------------------------------------------------------


async def follow_and_show(client: Client, runs: list[control.RunRef], output: Output, config: Settings) -> list[FailoverProgress]:
    """Show the runs' steps as they go (a live table on a terminal, one line per step transition
    otherwise, nothing but the end with --output json) until every run has ended."""
    interactive = output == Output.text and out.is_terminal
    seen: dict[tuple[str, int], str] = {}
    drills: dict[str, dict[str, object]] = {}
    notices = FollowNotices(config.worker_wait)
    live = Live(console=out, refresh_per_second=4, transient=False) if interactive else None
    if live:
        live.start()
    try:
        snapshot = control.Snapshot()
        async for snapshot in control.follow(client, runs, worker_wait=config.worker_wait):
            if output == Output.text:
                notices.tell(snapshot.waiting_for_worker, snapshot.temporal_unavailable)
            if live:
                live.update(render.runs_view(snapshot.records.values(), now=datetime.now(UTC)))
            elif output == Output.text:
                for record in snapshot.records.values():
                    for step in record.steps:
                        key = (record.workflow_id, step.index)
                        if step.status.value != "pending" and seen.get(key) != step.status.value:
                            seen[key] = step.status.value
                            out.print(render.step_line(record, step), highlight=False, soft_wrap=True)
                    for line in render.drill_progress_lines(record, drills.setdefault(record.workflow_id, {})):
                        out.print(line, highlight=False, soft_wrap=True)
        return [snapshot.records[run.workflow_id] for run in runs]
    finally:
        if live:
            live.stop()


def report(client: Client, results: list[FailoverProgress], output: Output, config: Settings, *, single: bool = False) -> int:
    """Print the final records; the exit code says whether every run succeeded."""
    if output == Output.json:
        out.print(render.to_json(results[0] if single else results), highlight=False, soft_wrap=True, markup=False)
    else:
        out.print()
        for record in results:
            if record.dry_run:
                out.print(render.dry_run_table(record))
            for line in render.outcome_lines(record):
                out.print(line, highlight=False, soft_wrap=True)
            out.print(f"  Web UI: {_url(config, client, record.workflow_id, record.run_id)}", highlight=False)
    return exit_code(results)


async def failover_run(
    plan: Plan,
    topology: Topology,
    trigger: Trigger,
    config: Settings,
    *,
    wait: bool,
    output: Output,
    require_worker: bool = True,
    connected: Client | None = None,
    drill: bool = False,
    bake: timedelta | None = None,
    dry_run: bool = False,
    ungraceful: bool = False,
    blackouts: control.Blackouts = control.NO_BLACKOUTS,
    override_blackout: bool = False,
) -> int:
    """Start the runs (``control.start_failover`` applies the start policy: reasons, ``blackouts``
    and the plan's, ``override_blackout``), say what it recorded, and follow them unless not ``wait``."""
    temporal = connected or await client(config)
    inputs: Sequence[FailoverInput] = (
        control.drill_inputs(
            plan, topology, trigger, bake, dry_run=dry_run, approver_groups=config.approver_groups, ungraceful=ungraceful
        )
        if drill
        else control.failover_inputs(plan, topology, trigger, dry_run=dry_run, approver_groups=config.approver_groups)
    )
    wait = wait or dry_run  # a dry run's result is the point: always shown
    started = await control.start_failover(
        temporal,
        inputs,
        config.task_queue,
        require_worker=require_worker,
        blackouts=blackouts,
        override_blackout=override_blackout,
    )
    State.started = started
    tell_overridden(run.blackout_override for run in started)
    urls = {run.workflow_id: _url(config, temporal, run.workflow_id, run.run_id) for run in started}
    if output == Output.text:
        for run in started:
            out.print(f"started [bold]{run.workflow_id}[/] (run {run.run_id})  Web UI: {urls[run.workflow_id]}", highlight=False)
        await show_readiness(temporal, plan)
    if not wait:
        if output == Output.json:
            out.print_json(json.dumps([{**started_json(run), "web_ui": urls[run.workflow_id]} for run in started]))
        return EXIT_OK
    results = await follow_and_show(temporal, [control.RunRef(r.workflow_id, r.run_id) for r in started], output, config)
    return report(temporal, results, output, config)


# How long following a run's start may wait for its plan's latest readiness evaluation.
READINESS_LOOKUP_SECONDS = 5.0


async def show_readiness(temporal: Client, plan: Plan) -> None:
    """The plan's latest readiness evaluation, if there is one, on stderr as its runs start (stdout
    stays the runs'; never in their way: a lookup that fails, or takes longer than
    READINESS_LOOKUP_SECONDS while Temporal's visibility is slow, says nothing)."""
    try:
        latest = await asyncio.wait_for(readiness.latest_of_plan(temporal, plan.digest()), READINESS_LOOKUP_SECONDS)
    except (FrontDoorError, TimeoutError):
        return
    if latest is None:
        return
    when, found = latest
    style = {"ready": "green", "warnings": "yellow", "not_ready": "bold red"}[found.state]
    err.print(
        f"readiness at {utc_text(when)}: [{style}]{STATE_WORDS[found.state]}[/]",
        highlight=False,
    )
    for service in found.services:
        for finding in service.findings:
            label = "NOT READY" if finding.severity == "not_ready" else "warning"
            err.print(f"  {service.service}: {label}: {finding.line()}", highlight=False, soft_wrap=True)


def _prepare(
    plan_file: Path, topology: Path | None, reason: str | None, output: Output, address: str | None, namespace: str | None
) -> tuple[Settings, str, Plan, Topology]:
    """What starting any run needs first: settings, the reason (none: "", for a drill's default),
    the plan and topology checked."""
    set_output(output)
    connection(address, namespace)
    config = settings()
    why = "" if reason is None else reason_or_fail(reason)
    try:
        plan, topo = control.load_documents(plan_file, topology)
        control.check_project(topo, config)
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)
    return config, why, plan, topo


def override_blackout_option() -> Any:
    return typer.Option(
        False,
        "--override-blackout",
        help="Start even inside a blackout window (needs --reason; the window is recorded in the run's input)",
    )


def failover(
    plan_file: Path = typer.Option(..., "--plan", "-p", help="The plan YAML file"),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the run's history with who started it"),
    topology: Path = topology_option(),
    wait: bool = typer.Option(
        True,
        "--wait/--no-wait",
        help="Follow the runs until they end (exit 0 only if all succeeded); --no-wait exits once they started",
    ),
    allow_no_worker: bool = allow_no_worker_option(),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Plan mode: read live state, show what each step would change and each guard's verdict"
    ),
    override: bool = override_blackout_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Start a failover by a plan (one run per service, all or none) and follow it to its end."""
    config, why, plan, topo = _prepare(plan_file, topology, reason, output, address, namespace)
    if plan.kind == "drill":
        fail(
            f"plan '{plan.name}' is a drill (kind: drill): run it with 'evac drill --plan {plan_file}'; nothing was started",
            EXIT_BAD_INPUT,
        )
    blackouts = blackouts_for(config, plan, override, True, dry_run)
    trigger = Trigger(kind="manual", by=config.identity, reason=why)
    code = run_async(
        lambda: failover_run(
            plan,
            topo,
            trigger,
            config,
            wait=wait,
            output=output,
            require_worker=not allow_no_worker,
            dry_run=dry_run,
            blackouts=blackouts,
            override_blackout=override,
        )
    )
    raise typer.Exit(code)


# --- drill ------------------------------------------------------------------------------


def drill(
    plan_file: Path = typer.Option(..., "--plan", "-p", help="The drill plan YAML file (kind: drill)"),
    bake: str = typer.Option(None, "--bake", help="Hold the failed-over state this long (e.g. 30m); default: the plan's"),
    reason: str = typer.Option(
        None, "--reason", help="Why: recorded in the run's history with who started it (default: 'DR drill')"
    ),
    topology: Path = topology_option(),
    wait: bool = typer.Option(
        True,
        "--wait/--no-wait",
        help="Follow the drills until they end (exit 0 only if all passed); --no-wait exits once started",
    ),
    allow_no_worker: bool = allow_no_worker_option(),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Plan mode: readiness and what each step would change; no bake, nothing changed"
    ),
    ungraceful: bool = typer.Option(
        False,
        "--ungraceful",
        help="Rehearse the disaster: fail over as if the source region's API were gone (no call to it at all), "
        "then fail back; the report names what would be skipped (also: the plan's drill.ungraceful: true)",
    ),
    override: bool = override_blackout_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Run a DR drill (one run per service, all or none): readiness, failover, bake under the stop
    conditions, failback, verification, and a report with measured recovery and failback times."""
    # Without --reason, the start records "DR drill" (control.DRILL_REASON): no reason for an override.
    config, why, plan, topo = _prepare(plan_file, topology, reason, output, address, namespace)
    bake_time: timedelta | None = None
    if bake is not None:
        try:
            bake_time = parse_duration(bake)
        except ValueError as exc:
            fail(f"--bake: {exc}; nothing was started", EXIT_BAD_INPUT)
        if bake_time <= timedelta(0):
            fail("--bake must be longer than 0s; nothing was started", EXIT_BAD_INPUT)
    if plan.kind != "drill":
        fail(
            f"plan '{plan.name}' is a failover plan: a drill needs 'kind: drill' (and, optionally, a drill section "
            "with bake, stop_conditions, readiness, rto_target); nothing was started",
            EXIT_BAD_INPUT,
        )
    settings_of = plan.drill_settings
    if bake_time is not None and bake_time / settings_of.check_interval > MAX_BAKE_CHECKS:
        fail(
            f"--bake {bake} checked every {format_duration(settings_of.check_interval)} makes more than "
            f"{MAX_BAKE_CHECKS} checks; give a shorter bake; nothing was started",
            EXIT_BAD_INPUT,
        )
    blackouts = blackouts_for(config, plan, override, reason is not None, dry_run)
    trigger = Trigger(kind="drill", by=config.identity, reason=why)
    code = run_async(
        lambda: failover_run(
            plan,
            topo,
            trigger,
            config,
            wait=wait,
            output=output,
            require_worker=not allow_no_worker,
            drill=True,
            bake=bake_time,
            dry_run=dry_run,
            ungraceful=ungraceful,
            blackouts=blackouts,
            override_blackout=override,
        )
    )
    raise typer.Exit(code)


# --- status, abort --------------------------------------------------------------------


def status(
    run: str = typer.Argument(
        ..., help="Run id (failover/<service>, dry-run/<service>/<id>, evacuation/<region>) or service name"
    ),
    run_id: str = typer.Option(None, "--run-id", help="A specific earlier run (default: the latest)"),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep following until the run ends"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Show a run's steps: state, attempts, duration, what changed (exit 1 if it ended without succeeding).
    On an evacuation (evacuation/<region>): per group done / running / waiting / failed."""
    set_output(output)
    connection(address, namespace)
    workflow_id = workflow_id_of(run)
    if run_id is not None:
        try:
            uuid.UUID(run_id)
        except ValueError:
            fail(f"--run-id '{run_id}' is not a run id (a UUID, as 'evac failover' and the Web UI show it)", EXIT_BAD_INPUT)
    config = settings()
    if is_evacuation_id(run):
        evacuate.status(run, run_id, watch, output, config)

    async def show() -> int:
        temporal = await client(config)
        if watch:
            results = await follow_and_show(temporal, [control.RunRef(workflow_id, run_id)], output, config)
            return report(temporal, results, output, config, single=True)
        record = await control.progress(temporal, workflow_id, run_id)
        if output == Output.json:
            out.print(render.to_json(record), highlight=False, soft_wrap=True, markup=False)
        else:
            out.print(render.progress_table(record, now=datetime.now(UTC)))
            for line in render.outcome_lines(record):
                out.print(line, highlight=False, soft_wrap=True)
            out.print(f"  Web UI: {_url(config, temporal, record.workflow_id, record.run_id)}", highlight=False)
        return exit_code([record])

    raise typer.Exit(run_async(show))


def abort(
    run: str = typer.Argument(..., help="Run id (failover/<service>, evacuation/<region>) or service name"),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the run's history with who aborted it"),
    rollback_all: bool = typer.Option(
        False, "--rollback-all", help="Evacuations only: also fail back the services that already failed over"
    ),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Abort a running failover or drill: it stops and restores what it changed, newest first.
    An evacuation (evacuation/<region>) starts no new run and aborts those in flight; the services
    that already failed over stay so unless --rollback-all."""
    set_output(output)
    connection(address, namespace)
    workflow_id = workflow_id_of(run)
    why = reason_or_fail(reason, not_done="nothing was aborted")
    if is_evacuation_id(run):
        evacuate.abort(run, why, rollback_all, output, settings())
        return
    if rollback_all:
        fail(
            f"--rollback-all applies to an evacuation (evacuation/<region>) only: aborting {workflow_id} always "
            "restores everything it changed; nothing was aborted",
            EXIT_BAD_INPUT,
        )
    config = settings()
    request = AbortRequest(by=config.identity, reason=why)

    async def go() -> control.AbortOutcome:
        return await control.abort(await client(config), workflow_id, request)

    outcome = run_async(go)
    if output == Output.json:
        out.print_json(
            json.dumps(
                {
                    "workflow_id": workflow_id,
                    "run_id": outcome.run_id,
                    "aborted_by": request.by,
                    "reason": why,
                    "worker_polling": outcome.worker_polling,
                }
            )
        )
    elif outcome.worker_polling:
        out.print(
            f"abort requested for {workflow_id} (run {outcome.run_id}); it is restoring what it changed. "
            f"Follow: evac status {workflow_id} --watch",
            highlight=False,
        )
    else:
        out.print(
            f"abort recorded for {workflow_id} (run {outcome.run_id}); no worker polls its task queue now, so it takes "
            f"effect when a worker picks the run up (start one with 'evac worker'). Follow: evac status {workflow_id} --watch",
            highlight=False,
        )
