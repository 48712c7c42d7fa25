"""``evac readiness check``: would these plans work now? One evaluation against live state, in a
worker (its credentials are the ones a run uses); it changes nothing."""

from __future__ import annotations

from pathlib import Path

import typer

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
from evac.control import readiness
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError
from evac.readiness import ReadinessReport, report_lines


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
