"""``evac audit report``: the evidence across runs, gaps first, as Markdown or one HTML file."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

import typer

from evac.audit import evidence
from evac.cli.base import EXIT_BAD_INPUT, Output, address_option, begin, client, fail, fail_with, namespace_option, out, run_async
from evac.control import check_project
from evac.control import evidence as gathering
from evac.control.findable import parse_since
from evac.documents import InvalidDocument
from evac.errors import BadInput, FrontDoorError
from evac.topology import load_topology


class ReportFormat(str, Enum):  # noqa: UP042 (typer offers the members of a (str, Enum) as choices)
    md = "md"
    html = "html"


RENDERERS = {ReportFormat.md: evidence.render_markdown, ReportFormat.html: evidence.render_html}


def report(
    since: str = typer.Option("90d", "--since", help="Count the runs started within this lookback: 90d, 12h, 90m"),
    policy: str = typer.Option(
        None, "--policy", help="Flag services without a passed drill within this period (default: drill_policy setting, 90d)"
    ),
    format: ReportFormat = typer.Option(
        None, "--format", help="md or html (default: html when --output-file ends in .html, else md)"
    ),
    output_file: Path = typer.Option(None, "--output-file", "-o", help="Write the report to this file instead of stdout"),
    topology: Path = typer.Option(..., "--topology", "-t", help="Topology YAML: the services that must be drilled"),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Per service: drills run and passed, last passed drill, recovery trend, failovers by trigger,
    readiness over the window; first, the services never drilled or not within the policy period.
    Exit 0 even with gaps."""
    config = begin(Output.text, address, namespace)
    try:
        window = parse_since(since, "--since")
        period = parse_since(policy, "--policy") if policy is not None else parse_since(config.drill_policy, "drill_policy")
        topo = load_topology(topology)
        check_project(topo, config)
        if output_file is not None:
            _check_writable(output_file)
    except (InvalidDocument, FrontDoorError) as exc:
        fail_with(exc)
    chosen = format or (ReportFormat.html if output_file and output_file.suffix.lower() in (".html", ".htm") else ReportFormat.md)
    now = datetime.now(UTC)

    async def go() -> evidence.EvidenceReport:
        return await gathering.gather(await client(config), topo, since=window, policy=period, now=now)

    result = run_async(go)
    text = RENDERERS[chosen](result)
    if output_file is None:
        typer.echo(text, nl=False)
        return
    try:
        output_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the report to --output-file {output_file}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    out.print(
        f"wrote the evidence report ({chosen.value}) to {output_file}: {_count(len(result.services), 'service')}, "
        f"{_count(result.gaps, 'gap')} ({len(result.never_drilled)} never drilled, {len(result.overdue)} overdue; "
        f"policy {evidence.lookback(result.policy)})",
        highlight=False,
        markup=False,
    )


def _check_writable(path: Path) -> None:
    """Refuse an --output-file that cannot be written before reading any run."""
    if path.is_dir():
        raise BadInput(f"--output-file {path} is a directory; name a file")
    if not path.parent.is_dir():
        raise BadInput(f"--output-file {path}: the folder {path.parent} does not exist")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
