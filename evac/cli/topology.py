"""``evac discover`` and ``evac topology diff``: the topology as the cloud has it, and how a file
differs from it. Both read the Google Cloud APIs directly with your own credentials (Application
Default Credentials; ``EVAC_GCP_ENDPOINT`` for the emulator) and change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_UNAVAILABLE,
    Output,
    err,
    fail,
    fail_with,
    out,
    output_option,
    print_json,
    set_output,
    settings,
)
from evac.discovery import Found, checked, compare, plain, topology_yaml
from evac.documents import InvalidDocument
from evac.topology import gcp_regions, load_topology
from providers.gcp.clients import GcpClients
from providers.gcp.discovery import GcpDiscovery
from providers.gcp.names import REGION_NAME, ProjectId


def _discover(project: str, regions: list[str] | None) -> Found:
    config = settings()
    discovery = GcpDiscovery(GcpClients.create(config.gcp_endpoint))
    try:
        return checked(discovery.discover(project, regions))
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except ApplicationError as exc:
        fail(f"could not read project {project}: {exc.message}", EXIT_UNAVAILABLE)


def discover(
    project: str = typer.Option(..., "--project", help="The Google Cloud project to read"),
    regions: str = typer.Option(None, "--regions", help="Comma-separated regions to look in (default: all of the project's)"),
    output_file: Path = typer.Option(None, "-o", "--out", help="Write the topology here (default: stdout)"),
    output: Output = typer.Option(Output.text, "--output", help="text: the topology's YAML; json for scripts (errors too)"),
) -> None:
    """Build a topology from the cloud: backend services and their groups by region, forwarding
    rules and their addresses, the DNS records that hold them, grouped into services. What
    cannot be placed is listed, not guessed. Reads only."""
    set_output(output)
    try:
        TypeAdapter(ProjectId).validate_python(project)
    except ValidationError as exc:
        fail(f"--project: {exc.errors()[0]['msg'].removeprefix('Value error, ')}", EXIT_BAD_INPUT)
    wanted = [r.strip() for r in regions.split(",") if r.strip()] if regions is not None else None
    if wanted is not None and not wanted:
        fail("--regions names no region", EXIT_BAD_INPUT)
    for region in wanted or []:
        if not REGION_NAME.match(region):
            fail(f"--regions: '{region}' is not a Google Cloud region name (like europe-west1)", EXIT_BAD_INPUT)
    found = _discover(project, wanted)
    topology = found.topology()
    if output == Output.json:
        print_json({"topology": plain(topology) if topology else None, "unplaced": found.unplaced, "regions": found.regions})
    else:
        text = topology_yaml(found, at=datetime.now(UTC))
        if output_file is not None:
            output_file.write_text(text)
            err.print(f"wrote {output_file}: {len(found.services)} service(s) from {', '.join(found.regions)}", highlight=False)
        else:
            out.print(text, highlight=False, soft_wrap=True, markup=False, end="")
        for line in found.unplaced:
            err.print(f"not placed: {line}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(EXIT_OK if topology is not None else EXIT_RUN_FAILED)


def diff(
    topology_file: Path = typer.Argument(..., help="The topology YAML to compare with the cloud"),
    output: Output = output_option(),
) -> None:
    """Show drift between a topology file and the cloud (its project, its regions). Exit 0 when
    they agree, 1 when they drift."""
    set_output(output)
    try:
        topology = load_topology(topology_file)
    except InvalidDocument as exc:
        fail_with(exc)
    regions = sorted({r for s in topology.services.values() for r in gcp_regions(s)})
    if not regions:
        fail(f"{topology_file}: no service has a Google Cloud region to compare", EXIT_BAD_INPUT)
    found = _discover(topology.project, regions)
    result = compare(topology.services, found)
    if output == Output.json:
        print_json(
            {
                "drift": [{"service": d.service, "where": d.where, "text": d.text} for d in result.drift],
                "notes": result.notes,
                "unplaced": found.unplaced,
            }
        )
    else:
        where = f"{topology_file} against project {topology.project} ({', '.join(regions)})"
        if result.drift:
            out.print(f"DRIFT: {len(result.drift)} difference(s), {where}", highlight=False, markup=False)
            for item in result.drift:
                out.print(f"  {item}", highlight=False, soft_wrap=True, markup=False)
        else:
            out.print(f"no drift: {where}", highlight=False, markup=False)
        for note in result.notes:
            out.print(f"  note: {note}", highlight=False, soft_wrap=True, markup=False)
        for line in found.unplaced:
            out.print(f"  not placed: {line}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(EXIT_RUN_FAILED if result.drift else EXIT_OK)
