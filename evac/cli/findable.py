"""``evac setup`` and ``evac runs list``: register Evac's search attributes, and find runs."""

from __future__ import annotations

import typer

from evac import render
from evac.cli.base import (
    Output,
    address_option,
    begin,
    client,
    namespace_option,
    out,
    output_option,
    print_json,
    run_async,
)
from evac.control import findable
from evac.times import utc_text


def setup(
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Register Evac's search attributes on the namespace (only those missing); says what it did."""
    config = begin(output, address, namespace)

    async def go() -> tuple[str, list[findable.AttributeSetup]]:
        connected = await client(config)
        return connected.namespace, await findable.setup(connected)

    namespace_name, report = run_async(go)
    if output == Output.json:
        print_json({"namespace": namespace_name, "attributes": [item.model_dump() for item in report]})
        return
    added = sum(1 for item in report if item.action == "added")
    for item in report:
        mark = "[green]added[/]" if item.action == "added" else "already present"
        out.print(f"{item.name} ({item.type}): {mark}", highlight=False)
    out.print(f"namespace '{namespace_name}': {added} added, {len(report) - added} already present", highlight=False)


def runs_list(
    service: str = typer.Option(None, "--service", help="Runs of this service"),
    region: str = typer.Option(None, "--region", help="Runs whose source or target is this region"),
    kind: str = typer.Option(None, "--kind", help="Only this kind: failover, drill, dry_run or evacuation (default: every kind)"),
    trigger: str = typer.Option(None, "--trigger", help="manual, alert, schedule or drill"),
    outcome: str = typer.Option(None, "--outcome", help="succeeded, rolled_back, passed … or running"),
    since: str = typer.Option(None, "--since", help="Started within this lookback: 30d, 12h, 90m"),
    limit: int = typer.Option(50, "--limit", help="At most this many runs, newest first"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Evac's failovers, drills and region evacuations, newest first, found by their search attributes."""
    config = begin(output, address, namespace)
    filter = findable.RunFilter(
        service=service, region=region, kind=kind, trigger=trigger, outcome=outcome, since=since, limit=limit
    )

    async def go() -> list[findable.RunRow]:
        filter.validate()  # a bad filter is refused before connecting
        return await findable.list_runs(await client(config), filter)

    rows = run_async(go)
    if output == Output.json:
        print_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        out.print("no runs match", highlight=False)
        return
    header = ["WORKFLOW ID", "KIND", "SERVICE", "SOURCE → TARGET", "TRIGGER / BY", "STARTED", "OUTCOME", "RECOVERY"]
    lines = [
        [
            row.workflow_id,
            row.kind or "-",
            row.service or "-",
            f"{row.source or '?'} → {row.target or '?'}",  # an evacuation's target may be 'auto'
            f"{row.trigger or '-'} / {row.initiator or '-'}",
            utc_text(row.started_at),
            row.outcome or "running",
            f"{row.recovery_seconds:.1f}s" if row.recovery_seconds is not None else "-",
        ]
        for row in rows
    ]
    # Plain columns, every value whole, whatever the terminal's width (a pipe gets them too).
    out.print(render.plain_columns(header, lines), highlight=False, markup=False, soft_wrap=True)
