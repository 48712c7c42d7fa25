"""``evac evacuate``: every service a topology places in a region fails over, tier by tier; and
the evacuation's side of ``evac status``, ``evac watch`` and ``evac abort`` (ids
``evacuation/<region>``).

Options become calls of :mod:`evac.control.evacuate`; bad input is refused in one sentence
(exit 2) before anything connects or starts. Exit codes: 0 the evacuation succeeded (or, for
``status``, still runs); 1 it ended ``completed_with_failures`` or ``aborted``; the rest as
every command (README.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.live import Live
from temporalio.client import Client

from evac import control, render
from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUN_FAILED,
    FollowNotices,
    Output,
    State,
    address_option,
    begin,
    blackouts_for,
    client,
    fail,
    fail_with,
    namespace_option,
    out,
    output_option,
    reason_or_fail,
    run_async,
    started_json,
    tell_overridden,
)
from evac.config import Settings
from evac.control import StartedRun
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError
from evac.evacuation import (
    DEFAULT_CAPACITY_RATIO,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    EvacuationAbort,
    EvacuationProgress,
    EvacuationStatus,
    ServiceStatus,
)
from evac.runs import Trigger
from evac.topology import load_topology

DRY_RUNS_SHOWN = 20
TOPOLOGY_NEEDED = (
    "--topology is required: the topology names the services the region holds and where each can go "
    "(e.g. plans/demo/topology.yaml, the world 'evac dev up' serves); nothing was started"
)


def _names(values: list[str] | None, option: str) -> list[str] | None:
    """``a,b`` or the option repeated, as one list (None when not given)."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        fail(
            f"{option} has an empty name in {','.join(values)!r}; give names separated by commas; nothing was started",
            EXIT_BAD_INPUT,
        )
    return names


# What an evacuation's (and a fail-back's) reason lacks when empty.
EVACUATION_REASON = "why the region is evacuated (it is recorded in the evacuation's history and every run's)"


def exit_code(record: EvacuationProgress) -> int:
    """0 when it succeeded or still runs; 1 when it ended any other way."""
    return EXIT_OK if record.status == EvacuationStatus.SUCCEEDED or not record.status.finished else EXIT_RUN_FAILED


def evacuate(
    region: str = typer.Option(..., "--region", "-r", help="The region every service leaves"),
    to: str = typer.Option(None, "--to", help="Where every service goes (each must be served there)"),
    auto_target: bool = typer.Option(
        False,
        "--auto-target",
        help="Per service, the healthy region with the most headroom (room it can reach within max_size and quota, "
        "less what it serves) that can hold the load",
    ),
    capacity_ratio: float = typer.Option(
        DEFAULT_CAPACITY_RATIO,
        "--capacity-ratio",
        help="Before its drain, each target is scaled to and must have this share of the instances serving in the "
        "region (a service's topology capacity_ratio overrides it)",
    ),
    services: list[str] = typer.Option(None, "--services", help="Only these services (comma list)"),
    tiers: list[str] = typer.Option(None, "--tier", help="Only the services of these tiers (repeat, or a comma list)"),
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML naming the services (required)"),
    window: int = typer.Option(DEFAULT_WINDOW, "--window", help=f"Most service runs in flight at once (1 to {MAX_WINDOW})"),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the history of the evacuation and every run"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Plan mode: each service's run reads live state and shows what it would change; nothing changes"
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Follow it live until it ends (exit 0 only if every service failed over)"
    ),
    allow_no_worker: bool = typer.Option(
        False, "--allow-no-worker", help="Start even when no worker polls the task queue (it waits for one)"
    ),
    override: bool = typer.Option(
        False,
        "--override-blackout",
        help="Start even inside a blackout window (needs --reason; the window is recorded in the evacuation's input)",
    ),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Evacuate a region: every service the topology places there fails over, tier by tier (the
    topology's `tiers`, untiered last), at most --window at a time, within the write rate limit."""
    config = begin(output, address, namespace)
    if (to is not None) == auto_target:  # both, or neither
        fail(
            "give exactly one of --to REGION (every service goes there) or --auto-target (per service, the healthy "
            "region with the most headroom to take its load); nothing was started",
            EXIT_BAD_INPUT,
        )
    if topology is None:
        fail(TOPOLOGY_NEEDED, EXIT_BAD_INPUT)
    why = reason_or_fail(reason, must_say=EVACUATION_REASON)
    chosen = _names(services, "--services")
    chosen_tiers = _names(tiers, "--tier")
    blackouts = blackouts_for(config, None, override, bool(why), dry_run)
    try:
        trigger = Trigger(kind="manual", by=config.identity, reason=why)
        topo = load_topology(topology)
        input = control.evacuation_input(
            topo,
            config,
            region,
            trigger,
            target=to,
            services=chosen,
            tiers=chosen_tiers,
            window=window,
            dry_run=dry_run,
            capacity_ratio=capacity_ratio,
        )
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)

    async def go() -> int:
        temporal = await client(config)
        started = await control.start_evacuation(
            temporal,
            input,
            config.task_queue,
            require_worker=not allow_no_worker,
            blackouts=blackouts,
            override_blackout=override,
        )
        State.started = [StartedRun("*", started.workflow_id, started.run_id)]
        tell_overridden([started.blackout_override], "evacuation")
        url = render.history_url(config.temporal_ui, temporal.namespace, started.workflow_id, started.run_id)
        if output == Output.text:
            out.print(
                f"started [bold]{started.workflow_id}[/] (run {started.run_id}): {started.services} services "
                f"in {len(started.groups)} group(s) ({', '.join(started.groups)}) → {started.target or 'auto-target'}, "
                f"window {input.window}  Web UI: {url}",
                highlight=False,
            )
        if not (wait or dry_run):
            if output == Output.json:
                out.print_json(json.dumps({**started_json(started), "web_ui": url}))
            else:
                out.print(
                    f"watch: evac watch {started.workflow_id}   abort: evac abort {started.workflow_id} --reason …",
                    highlight=False,
                )
            return EXIT_OK
        record = await follow_and_show(temporal, started.workflow_id, output, config)
        if dry_run and output == Output.text:
            await show_dry_runs(temporal, record)
        return report(record, output)

    raise typer.Exit(run_async(go))


# --- following, showing ----------------------------------------------------------------


async def follow_and_show(temporal: Client, workflow_id: str, output: Output, config: Settings) -> EvacuationProgress:
    """A live view on a terminal; one line per change otherwise (and one per service that
    fails); nothing but the end with --output json."""
    interactive = output == Output.text and out.is_terminal
    live = Live(console=out, refresh_per_second=2, transient=False) if interactive else None
    last_line = ""
    told_failed: set[str] = set()
    notices = FollowNotices(config.worker_wait)
    if live:
        live.start()
    try:
        snapshot = control.EvacuationSnapshot()
        async for snapshot in control.follow_evacuation(temporal, workflow_id, worker_wait=config.worker_wait):
            if output == Output.text:
                notices.tell([workflow_id] if snapshot.waiting_for_worker else [], snapshot.temporal_unavailable)
            record = snapshot.record
            if record is None:
                continue
            if live:
                live.update(render.evacuation_view(record, now=datetime.now(UTC)))
            elif output == Output.text:
                stamp = datetime.now(UTC).strftime("%H:%M:%S")
                for failed in record.failed():
                    if failed.service not in told_failed:
                        told_failed.add(failed.service)
                        out.print(f"{stamp} {failed.service}: {failed.status.value}: {failed.error}", highlight=False)
                line = render.evacuation_line(record)
                if line != last_line:
                    last_line = line
                    out.print(f"{stamp} {line}", highlight=False, soft_wrap=True)
        assert snapshot.record is not None  # the follow ends only on a record that has ended
        return snapshot.record
    finally:
        if live:
            live.stop()


async def show_dry_runs(temporal: Client, record: EvacuationProgress, shown: int = DRY_RUNS_SHOWN) -> None:
    """What each service's dry run would change (the first ``shown``; the rest by id)."""
    runs = [r for r in record.services if r.workflow_id is not None]
    for service in runs[:shown]:
        assert service.workflow_id is not None
        out.print(render.dry_run_table(await control.progress(temporal, service.workflow_id, service.run_id)))
    if len(runs) > shown:
        out.print(
            f"and {len(runs) - shown} more dry runs: their ids are in 'evac status {record.workflow_id} --output json'",
            highlight=False,
        )


def show(record: EvacuationProgress, output: Output) -> None:
    if output == Output.json:
        out.print(record.model_dump_json(indent=2), highlight=False, soft_wrap=True, markup=False)
        return
    out.print(render.evacuation_view(record, now=datetime.now(UTC)))
    for line in render.evacuation_outcome_lines(record):
        out.print(line, highlight=False, soft_wrap=True)


def report(record: EvacuationProgress, output: Output) -> int:
    """The evacuation's record at its end (on a terminal the live view already shows it: only
    the outcome follows); the exit code says whether every service failed over."""
    if output == Output.text and out.is_terminal:
        for line in render.evacuation_outcome_lines(record):
            out.print(line, highlight=False, soft_wrap=True)
        return exit_code(record)
    if output == Output.text:
        out.print()
    show(record, output)
    return exit_code(record)


def status(workflow_id: str, run_id: str | None, watch: bool, output: Output, config: Settings) -> None:
    """``evac status evacuation/<region>``: the aggregated view (``--watch``: until it ends)."""

    async def go() -> int:
        temporal = await client(config)
        if watch:
            return report(await follow_and_show(temporal, workflow_id, output, config), output)
        record = await control.evacuation_progress(temporal, workflow_id, run_id)
        show(record, output)
        return exit_code(record)

    raise typer.Exit(run_async(go))


def watch(workflow_id: str, output: Output, config: Settings) -> None:
    """``evac watch evacuation/<region>``: live until it ends."""
    status(workflow_id, None, True, output, config)


def abort(workflow_id: str, reason: str, rollback_all: bool, output: Output, config: Settings) -> None:
    """``evac abort evacuation/<region>``: no new run starts, the runs in flight roll back;
    finished services stay failed over unless --rollback-all."""
    request = EvacuationAbort(by=config.identity, reason=reason, rollback_all=rollback_all)

    async def go() -> EvacuationProgress:
        return await control.abort_evacuation(await client(config), workflow_id, request)

    record = run_async(go)
    if output == Output.json:
        out.print_json(json.dumps({"workflow_id": workflow_id, **record.model_dump(mode="json")}))
        return
    counts = record.counts()
    done = counts[ServiceStatus.SUCCEEDED]
    if record.failback_of:
        out.print(
            f"abort taken by {workflow_id}: no further service fails back (those in progress finish); "
            f"{done} service(s) stay failed over. Follow: evac watch {workflow_id}",
            highlight=False,
            soft_wrap=True,
        )
        return
    finished = (
        f"the {done} finished service(s) fail back too (--rollback-all)"
        if rollback_all
        else f"the {done} finished service(s) stay failed over (--rollback-all fails them back)"
    )
    out.print(
        f"abort taken by {workflow_id}: no new run starts, {counts[ServiceStatus.RUNNING]} run(s) in flight are aborted "
        f"and roll back their own changes, {counts[ServiceStatus.WAITING]} waiting will not start; {finished}. "
        f"Follow: evac watch {workflow_id}",
        highlight=False,
        soft_wrap=True,
    )


def failback(
    run: str = typer.Argument(..., help="What to fail back: evacuation/<region> or failover/<service>"),
    services: list[str] = typer.Option(None, "--services", help="Only these services of the evacuation (comma list)"),
    reason: str = typer.Option(..., "--reason", help="Why: recorded in the fail-back's history"),
    force: bool = typer.Option(
        False, "--force", help="Restore even a service whose region is not healthy again (its backends failing checks)"
    ),
    window: int = typer.Option(DEFAULT_WINDOW, "--window", help=f"Most services restored at once (1 to {MAX_WINDOW})"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow it live until it ends (exit 0 only if all failed back)"),
    allow_no_worker: bool = typer.Option(
        False, "--allow-no-worker", help="Start even when no worker polls the task queue (it waits for one)"
    ),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Fail back a finished evacuation (or one finished failover): restore each service's recorded
    before-states, newest change first, tiers in reverse, within the write rate limit; a service
    whose region is not healthy again is refused unless --force. Runs as failback/<run>."""
    config = begin(output, address, namespace)
    why = reason_or_fail(reason, must_say=EVACUATION_REASON)
    chosen = _names(services, "--services")
    if not 1 <= window <= MAX_WINDOW:
        fail(f"--window must be from 1 to {MAX_WINDOW}, not {window}; nothing was started", EXIT_BAD_INPUT)
    trigger = Trigger(kind="manual", by=config.identity, reason=why)

    async def go() -> int:
        temporal = await client(config)
        input, record = await control.failback_input(temporal, run, trigger, services=chosen, force=force, window=window)
        started = await control.start_failback(temporal, input, record, config.task_queue, require_worker=not allow_no_worker)
        State.started = [StartedRun("*", started.workflow_id, started.run_id)]
        url = render.history_url(config.temporal_ui, temporal.namespace, started.workflow_id, started.run_id)
        if output == Output.text:
            forced = " (forced: region health not checked)" if force else ""
            out.print(
                f"started [bold]{started.workflow_id}[/] (run {started.run_id}): {started.services} service(s) back to "
                f"{started.region}{forced}  Web UI: {url}",
                highlight=False,
            )
        if not wait:
            if output == Output.json:
                out.print_json(json.dumps({**started_json(started), "web_ui": url}))
            else:
                out.print(f"watch: evac watch {started.workflow_id}", highlight=False)
            return EXIT_OK
        return report(await follow_and_show(temporal, started.workflow_id, output, config), output)

    raise typer.Exit(run_async(go))


__all__ = ["abort", "evacuate", "failback", "status", "watch"]
