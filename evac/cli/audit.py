"""``evac audit show | export | verify``: a run's timeline from its history, exported and proven.

A failover or drill is one run; an evacuation (``evacuation/<region>``, ``dry-run/evacuation/…``,
``failback/…``) is every run of its chain (it continues as new), whichever run ``--run-id`` names.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import typer

from evac.audit import evacuation_render as evacuation_audit_render
from evac.audit import render as audit_render
from evac.audit.evacuation import EvacuationAuditRecord, EvacuationExportMarker, is_chain_id
from evac.audit.record import AuditRecord
from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_RUN_FAILED,
    Output,
    State,
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
from evac.control import audit
from evac.errors import FrontDoorError
from evac.runs import workflow_id_of

MAX_EXPORT_BYTES = 256 * 1024 * 1024


def _run(run: str, run_id: str | None) -> tuple[str, str | None]:
    """``failover/checkout``, ``dry-run/…``, ``evacuation/<region>``, ``failback/…`` or just
    ``checkout``; a --run-id must be a UUID."""
    workflow_id = run if is_chain_id(run) else workflow_id_of(run)
    if run_id is not None:
        try:
            uuid.UUID(run_id)
        except ValueError:
            fail(f"--run-id '{run_id}' is not a run id (a UUID, as 'evac status' and the Web UI show it)", EXIT_BAD_INPUT)
    return workflow_id, run_id


def run_argument() -> Any:
    return typer.Argument(
        ...,
        help="Run: failover/<service>, dry-run/<service>/<id>, a service name, evacuation/<region>, "
        "dry-run/evacuation/<region>/<id> or failback/…",
    )


def run_id_option() -> Any:
    return typer.Option(
        None, "--run-id", help="A specific earlier run (default: the latest); of an evacuation, any run of its chain"
    )


def show(
    run: str = run_argument(),
    run_id: str | None = run_id_option(),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """A run's timeline, from its Temporal history: trigger, plan, steps, approvals, compensations, outcome.
    An evacuation's: every run of its chain, its tiers and every service's run."""
    config = begin(output, address, namespace)
    workflow_id, wanted_run = _run(run, run_id)

    async def go() -> AuditRecord | EvacuationAuditRecord:
        record, _ = await audit.any_record(await client(config), workflow_id, wanted_run, config.temporal_ui)
        return record

    record = run_async(go)
    if output == Output.json:
        out.print(record.model_dump_json(indent=2), highlight=False, soft_wrap=True, markup=False)
        return
    if isinstance(record, EvacuationAuditRecord):
        out.print(evacuation_audit_render.render_text(record))
        return
    out.print(audit_render.render_text(record))


def export(
    run: str = run_argument(),
    run_id: str | None = run_id_option(),
    format: audit.Format = typer.Option(audit.Format.JSON, "--format", "-f", help="json, md (Markdown) or html"),
    raw: bool = typer.Option(
        False, "--raw", help="Write the raw Temporal history (JSON; an evacuation that continued as new: a list of them)"
    ),
    output_file: Path = typer.Option(None, "--output-file", "-o", help="Write here instead of to standard output"),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Export a run's record (JSON schema in docs/, Markdown, self-contained HTML) or its raw history."""
    config = begin(Output.text, address, namespace)
    workflow_id, wanted_run = _run(run, run_id)
    if output_file is not None and output_file.is_dir():
        fail(f"--output-file {output_file} is a folder; name a file", EXIT_BAD_INPUT)

    async def go() -> tuple[str, AuditRecord | EvacuationAuditRecord]:
        record, histories = await audit.any_record(await client(config), workflow_id, wanted_run, config.temporal_ui)
        return (audit.raw(record, histories) if raw else audit.export(record, format)), record

    text, record = run_async(go)
    if output_file is None:
        out.file.write(text)
        return
    try:
        output_file.write_text(text)
    except OSError as exc:
        fail(f"--output-file {output_file}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    what = "raw history" if raw else f"{format.value} export"
    if isinstance(record, EvacuationAuditRecord):
        c = record.provenance
        if len(c.runs) == 1:
            runs = f"run {c.runs[0].run_id} ({c.history_events} events, history SHA-256 {c.runs[0].history_sha256}; "
        else:
            runs = f"{len(c.runs)} runs, {c.runs[0].run_id} … {c.runs[-1].run_id} ({c.history_events} events; "
            what = "raw histories (a JSON list, oldest first)" if raw else what
        out.print(
            f"wrote {output_file}: {what} of {c.workflow_id} {runs}chain SHA-256 {c.chain_sha256})",
            highlight=False,
            soft_wrap=True,
        )
        return
    p = record.provenance
    out.print(
        f"wrote {output_file}: {what} of {p.workflow_id} run {p.run_id} "
        f"({p.history_events} events, history SHA-256 {p.history_sha256})",
        highlight=False,
        soft_wrap=True,
    )


def verify(
    export_file: Path = typer.Argument(..., help="An export: JSON, Markdown or HTML from 'evac audit export'"),
    history_file: Path = typer.Option(None, "--history", help="Check against this raw history ('export --raw'), not Temporal"),
    output: Output = output_option(),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Prove an export: the history's SHA-256 and every fact in the export, re-derived from the history."""
    config = begin(output, address, namespace)
    text = _read(export_file, "EXPORT")
    try:
        document = audit.read_export(text, str(export_file))
    except audit.DamagedExport as exc:  # an export that cannot prove itself: not verified
        if output == Output.json:
            print_json({"verified": False, "first_difference": str(exc)})
        else:
            out.print(f"[bold red]NOT verified:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_RUN_FAILED) from None
    except FrontDoorError as exc:
        fail_with(exc)
    try:
        raw = _read(history_file, "--history") if history_file is not None else None
        fetched = audit.histories_from_file(raw, document.marker.workflow_id, f"--history {history_file}") if raw else None
    except FrontDoorError as exc:
        fail_with(exc)
    mark = document.marker
    if fetched is None and not State.namespace:
        State.namespace = mark.namespace  # the namespace the export names, unless told otherwise

    async def go() -> audit.Verification:
        histories = fetched if fetched is not None else await audit.named_histories(await client(config), mark)
        return audit.verify(document, histories)

    result = run_async(go)
    source = f"--history {history_file}" if history_file is not None else f"Temporal namespace '{mark.namespace}'"
    chain = isinstance(mark, EvacuationExportMarker)
    of = (
        f"the histories of {result.workflow_id} ({_runs_text(result.runs)})"
        if chain
        else (f"the history of {result.workflow_id} run {result.run_id}")
    )
    digest = "chain SHA-256" if chain else "SHA-256"
    if output == Output.json:
        print_json(
            {
                "verified": result.verified,
                "format": document.format.value,
                "workflow_id": result.workflow_id,
                "run_id": result.run_id,
                "history_sha256": result.history_sha256,
                "history_events": result.history_events,
                "facts_checked": result.facts_checked,
                "first_difference": result.first_difference,
                "history_from": source,
                "export_sha256": hashlib.sha256(text.encode()).hexdigest(),
                **({"runs": list(result.runs)} if chain else {}),
            }
        )
    elif result.verified:
        out.print(
            f"verified: {export_file} ({document.format.value}) matches {of} from {source}: "
            f"{digest} {result.history_sha256} over {result.history_events} events, {result.facts_checked} facts",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            f"[bold red]NOT verified:[/] {export_file} does not match {of} from {source}: {result.first_difference}",
            highlight=False,
            soft_wrap=True,
        )
    if not result.verified:
        raise typer.Exit(EXIT_RUN_FAILED)


def _runs_text(runs: tuple[str, ...]) -> str:
    return f"run {runs[0]}" if len(runs) == 1 else f"{len(runs)} runs, {runs[0]} … {runs[-1]}"


def _read(path: Path, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            fail(f"{what} {path} is {size} bytes; at most {MAX_EXPORT_BYTES}", EXIT_BAD_INPUT)
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{what} {path} does not exist", EXIT_BAD_INPUT)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{what} {path} cannot be read: {exc}", EXIT_BAD_INPUT)
