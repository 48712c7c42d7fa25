"""``evac readiness check``: would these plans work now? One evaluation against live state, in a
worker (its credentials are the ones a run uses); it changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUN_FAILED,
    Output,
    address_option,
    begin,
    client,
    fail,
    fail_with,
    namespace_option,
    out,
    output_option,
    print_json,
    run_async,
)
from evac.config import Settings
from evac.control import readiness
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError
from evac.plan import format_duration, parse_duration
from evac.readiness import STATE_WORDS, ReadinessReport, report_lines
from evac.times import utc_text


def check(
    plans: list[Path] = typer.Argument(..., help="Plan YAML files (each checked against the topology beside it)"),
    topology: Path = typer.Option(None, "--topology", "-t", help="Topology YAML for every plan (default: beside each)"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Evaluate plans against live state now: resources and their wiring, capacity, quota, the
    databases' roles. Exit 0 when every plan is ready (warnings included), 1 when one is not."""
    config = begin(output, address, namespace)
    try:
        input = readiness.readiness_input(plans, topology, config)
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)

    async def go() -> ReadinessReport:
        return await readiness.check_readiness(await client(config), input, config.task_queue)

    report = run_async(go)
    if output == Output.json:
        print_json({**report.model_dump(mode="json"), "state": report.state})
    else:
        for line in report_lines(report):
            out.print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_RUN_FAILED if report.state == "not_ready" else EXIT_OK)


def name_option() -> Any:
    return typer.Option("plans", "--name", help="The readiness schedule's name (evac-readiness/NAME)")


def serve(
    plans: Path = typer.Option(..., "--plans", help="A folder of plans (its YAML files but topology.yaml)"),
    every: str = typer.Option("30m", "--every", help="How often to evaluate them (at least 1m)"),
    name: str = name_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Evaluate every plan of a folder now and every --every (a Temporal Schedule driving the
    readiness workflow); run again, it replaces the plans and the interval. 'evac readiness
    status' shows what the evaluations found."""
    config = begin(output, address, namespace)
    try:
        interval = parse_duration(every)
    except ValueError as exc:
        fail(f"--every {every}: {exc}", EXIT_BAD_INPUT)

    async def go() -> readiness.ReadinessStatus:
        return await readiness.serve(await client(config), name, plans, interval, config, config.identity)

    show(run_async(go), output)


def status(
    name: str = name_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """What the schedule's latest evaluation found: each plan ready, with warnings or not ready,
    since when, and its findings. Exit 1 when a plan is not ready."""
    config = begin(output, address, namespace)

    async def go() -> readiness.ReadinessStatus:
        return await readiness.status(await client(config), name)

    view = run_async(go)
    show(view, output)
    raise typer.Exit(EXIT_RUN_FAILED if any(p.state == "not_ready" for p in view.plans) else EXIT_OK)


def show(view: readiness.ReadinessStatus, output: Output) -> None:
    if output == Output.json:
        print_json(view.model_dump(mode="json"))
        return
    paused = f"; PAUSED: {view.note}" if view.paused else ""
    out.print(
        f"readiness schedule {view.name} ({view.schedule_id}): {view.plans_count} plan(s) every "
        f"{format_duration(view.every)}{paused}",
        highlight=False,
    )
    if view.next_runs:
        out.print(f"  next evaluation {utc_text(view.next_runs[0])}", highlight=False)
    if view.evaluated_at is None:
        out.print("  no evaluation has ended yet", highlight=False)
        return
    out.print(f"  latest evaluation {utc_text(view.evaluated_at)}", highlight=False)
    for plan in view.plans:
        out.print(f"{plan.file}: plan '{plan.plan}': {STATE_WORDS[plan.state]} since {utc_text(plan.since)}", highlight=False)
        for service in plan.services:
            out.print(f"  {service.service}: {STATE_WORDS[service.state]}", highlight=False)
            for finding in service.findings:
                label = "NOT READY" if finding.severity == "not_ready" else "warning"
                out.print(f"    {label}: {finding.line()}", highlight=False, soft_wrap=True)


def pause(
    name: str = name_option(),
    reason: str = typer.Option(..., "--reason", help="Why: the schedule's note"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Stop evaluating until 'evac readiness unpause'."""
    config = begin(output, address, namespace)
    run_async(lambda: _act(config, name, "pause", reason))
    _said(output, f"readiness schedule {name} paused: {reason}")


def unpause(
    name: str = name_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Evaluate again, on the schedule's interval."""
    config = begin(output, address, namespace)
    run_async(lambda: _act(config, name, "unpause", None))
    _said(output, f"readiness schedule {name} unpaused")


def delete(
    name: str = name_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Delete the schedule (its evaluations stay in Temporal's history)."""
    config = begin(output, address, namespace)
    run_async(lambda: _act(config, name, "delete", None))
    _said(output, f"readiness schedule {name} deleted")


async def _act(config: Settings, name: str, action: str, note: str | None) -> None:
    connected = await client(config)
    if action == "pause":
        await readiness.pause(connected, name, note or "")
    elif action == "unpause":
        await readiness.unpause(connected, name)
    else:
        await readiness.delete(connected, name)


def _said(output: Output, text: str) -> None:
    if output == Output.json:
        print_json({"done": text})
    else:
        out.print(text, highlight=False)
