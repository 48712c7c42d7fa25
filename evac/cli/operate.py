"""Operator commands on a running run: ``evac approve``, ``evac reject``, ``evac pause``,
``evac resume`` and ``evac watch``.

The four controls are Temporal Updates (see :mod:`evac.control.operate`): the run's validator
refuses what must not happen with one sentence (exit 3) and the run is untouched. Who acts is
``EVAC_IDENTITY`` (default user@host) — asserted by this client, not proven: a real deployment
decides who may call the namespace with Temporal's own authorization (docs/operator-controls.md).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from pydantic import BaseModel
from rich.live import Live
from temporalio.client import Client

from evac import control, render
from evac.cli import evacuate
from evac.cli.base import (
    Output,
    address_option,
    begin,
    client,
    err,
    namespace_option,
    out,
    output_option,
    reason_or_fail,
    run_async,
)
from evac.cli.run import report
from evac.config import Settings
from evac.control import operate
from evac.evacuation import is_evacuation_id
from evac.runs import ApprovalDecision, ApprovalRecord, FailoverProgress, PauseRecord, PauseRequest, ResumeRequest, workflow_id_of

M = TypeVar("M", bound=BaseModel)

RUN_HELP = "Run id (failover/<service>) or service name"
WATCH_HELP = "Run id (failover/<service>, evacuation/<region>) or service name"


def _text(value: str | None, option: str, *, required: bool) -> str:
    return reason_or_fail(value, option=option, required=required, not_done="nothing was changed")


def _send(
    run: str,
    output: Output,
    address: str | None,
    namespace: str | None,
    call: Callable[[Client, str, Settings], Awaitable[M]],
    said: Callable[[str, M], str],
) -> None:
    """Connect, send one control to the run, and say what it did (JSON: the record it returned)."""
    config = begin(output, address, namespace)
    workflow_id = workflow_id_of(run)

    async def go() -> M:
        return await call(await client(config), workflow_id, config)

    result = run_async(go)
    if output == Output.json:
        out.print_json(json.dumps({"workflow_id": workflow_id, **result.model_dump(mode="json")}))
    else:
        out.print(said(workflow_id, result), highlight=False, soft_wrap=True)


def approve(
    run: str = typer.Argument(..., help=RUN_HELP),
    step: str = typer.Option(None, "--step", help="The approval step's name (default: the one waiting now)"),
    reason: str = typer.Option("", "--reason", help="Why (recorded with who approved and when)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Approve the run's waiting approval step, as EVAC_IDENTITY: the run goes on."""
    why = _text(reason, "--reason", required=False)

    held: list[PauseRecord] = []

    async def call(temporal: Client, workflow_id: str, config: Settings) -> ApprovalRecord:
        approval = await operate.approve(temporal, workflow_id, ApprovalDecision(step=step, by=config.identity, reason=why))
        pause = (await control.progress(temporal, workflow_id)).pause
        held.extend([pause] if pause is not None else [])
        return approval

    def said(workflow_id: str, approval: ApprovalRecord) -> str:
        if held:  # an approval does not lift a pause: the run holds before its next step
            return (
                f"approved by {approval.by}: {workflow_id} stays paused (by {held[0].by}: {held[0].reason}) "
                f"until 'evac resume {workflow_id}'"
            )
        return f"approved by {approval.by}: {workflow_id} goes on"

    _send(run, output, address, namespace, call, said)


def reject(
    run: str = typer.Argument(..., help=RUN_HELP),
    reason: str = typer.Option(..., "--reason", help="Why (required; recorded with who rejected and when)"),
    step: str = typer.Option(None, "--step", help="The approval step's name (default: the one waiting now)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Reject the run's waiting approval step, as EVAC_IDENTITY: the step fails and the run rolls back."""
    why = _text(reason, "--reason", required=True)

    async def call(temporal: Client, workflow_id: str, config: Settings) -> ApprovalRecord:
        return await operate.reject(temporal, workflow_id, ApprovalDecision(step=step, by=config.identity, reason=why))

    _send(run, output, address, namespace, call, lambda wf, a: f"rejected by {a.by}: {wf} rolls back what it changed")


def pause(
    run: str = typer.Argument(..., help=RUN_HELP),
    reason: str = typer.Option(..., "--reason", help="Why (required; recorded with who paused and when)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Hold the run before its next plan step (the step in flight finishes; never mid-rollback)."""
    why = _text(reason, "--reason", required=True)

    async def call(temporal: Client, workflow_id: str, config: Settings) -> PauseRecord:
        return await operate.pause(temporal, workflow_id, PauseRequest(by=config.identity, reason=why))

    _send(
        run,
        output,
        address,
        namespace,
        call,
        lambda wf, p: f"paused by {p.by}: {wf} holds before its next step; 'evac resume {wf}' goes on",
    )


def resume(
    run: str = typer.Argument(..., help=RUN_HELP),
    reason: str = typer.Option("", "--reason", help="Why (recorded with who resumed and when)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Resume a paused run from the step boundary where it holds."""
    why = _text(reason, "--reason", required=False)

    async def call(temporal: Client, workflow_id: str, config: Settings) -> PauseRecord:
        return await operate.resume(temporal, workflow_id, ResumeRequest(by=config.identity, reason=why))

    _send(run, output, address, namespace, call, lambda wf, p: f"resumed by {p.resumed_by}: {wf} goes on")


def watch(
    run: str = typer.Argument(..., help=WATCH_HELP),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Follow a run live until it ends: its current step, what it waits for (bake, approval by whom,
    pause by whom), its stop conditions. Exit 0 if it succeeded (or still runs), 1 if not.
    An evacuation (evacuation/<region>): per group done / running / waiting / failed, in flight, ETA."""
    config = begin(output, address, namespace)
    if is_evacuation_id(run):
        evacuate.watch(run, output, config)
    workflow_id = workflow_id_of(run)

    async def go() -> int:
        temporal = await client(config)
        record = await _watch(temporal, workflow_id, output, config)
        return report(temporal, [record], output, config, single=True)

    raise typer.Exit(run_async(go))


async def _watch(temporal: Client, workflow_id: str, output: Output, config: Settings) -> FailoverProgress:
    """A live panel on a terminal; one line per change otherwise; nothing but the end with JSON."""
    interactive = output == Output.text and out.is_terminal
    live = Live(console=out, refresh_per_second=4, transient=False) if interactive else None
    last_line = ""
    told_waiting = False
    if live:
        live.start()
    try:
        snapshot = control.Snapshot()
        async for snapshot in control.follow(temporal, [control.RunRef(workflow_id)], worker_wait=config.worker_wait):
            if snapshot.waiting_for_worker and output == Output.text and not told_waiting:
                told_waiting = True
                err.print(f"[yellow]waiting for a worker to answer for {workflow_id}…[/]", highlight=False)
            record = snapshot.records.get(workflow_id)
            if record is None:
                continue
            if live:
                live.update(render.watch_view(record, now=datetime.now(UTC)))
            elif output == Output.text:
                line = render.watch_line(record)
                if line != last_line:
                    last_line = line
                    stamp = datetime.now(UTC).strftime("%H:%M:%S")
                    out.print(f"{stamp} {line}", highlight=False, soft_wrap=True)
        return snapshot.records[workflow_id]
    finally:
        if live:
            live.stop()


__all__ = ["approve", "pause", "reject", "resume", "watch"]
