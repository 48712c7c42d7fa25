"""``evac audit``: a run's record from its history, its exports, and their proof.

:func:`history` fetches a run's whole history from Temporal; :func:`evac.audit.derive` turns
it into the record; :func:`export` writes the record as JSON, Markdown or HTML (or the raw
history); :func:`verify` proves an export against the history: the history's SHA-256 first,
then every fact, naming the first that differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from evac import audit, audit_render
from evac.audit import AuditRecord, ExportMarker, NotAuditable, Provenance
from evac.control.records import describe
from evac.errors import BadInput, Refused, from_rpc


class Format(StrEnum):
    JSON = "json"
    MD = "md"
    HTML = "html"


class NotAnAuditRun(Refused):
    """The workflow is not a failover or drill run (a schedule's launcher, say)."""


class NotAnExport(BadInput):
    """The file given to ``evac audit verify`` is not an Evac audit export."""


class DamagedExport(NotAnExport):
    """An export whose own proof is damaged (its marker or its embedded record): it is an export,
    and it is NOT verified (``evac audit verify`` exits 1, not 2)."""


async def history(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
    """The run's whole history (the latest run under ``workflow_id`` unless ``run_id``)."""
    description = await describe(client, workflow_id, run_id)  # RunNotFound, with its sentence
    try:
        return await client.get_workflow_handle(workflow_id, run_id=description.run_id).fetch_history()
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id, run_id=run_id) from exc


def derive(fetched: WorkflowHistory, namespace: str) -> AuditRecord:
    try:
        return audit.derive(fetched, namespace)
    except NotAuditable as exc:
        raise NotAnAuditRun(str(exc)) from None


async def record(client: Client, workflow_id: str, run_id: str | None = None) -> tuple[AuditRecord, WorkflowHistory]:
    fetched = await history(client, workflow_id, run_id)
    return derive(fetched, client.namespace), fetched


def export(record: AuditRecord, format: Format) -> str:
    """The record as a document. Deterministic: the same history always gives the same text."""
    if format == Format.JSON:
        return record.model_dump_json(indent=2) + "\n"
    if format == Format.MD:
        return audit_render.render_markdown(record)
    return audit_render.render_html(record)


# --- verify ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An export read back: its format, the marker that names its history, its facts."""

    format: Format
    text: str
    marker: ExportMarker
    facts: dict[str, Any] | None  # the JSON record (a JSON export, or the one an HTML export embeds)


def read_export(text: str, where: str) -> Export:
    """Recognise an export (JSON, HTML or Markdown) and what history it names."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        # Only the provenance must be readable (it names the history): any other fact, however
        # mangled, is for verify to compare, so a tampered value is named, not refused.
        try:
            facts = json.loads(text)
            provenance = Provenance.model_validate(facts.get("provenance") if isinstance(facts, dict) else None)
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise NotAnExport(f"{where} is JSON but not an Evac audit record (its provenance: {first})") from None
        return Export(Format.JSON, text, ExportMarker.of_provenance(provenance), facts)
    try:
        found = audit.read_marker(text)
    except ValidationError:
        raise DamagedExport(f"{where} has an evac-audit marker that cannot be read (damaged)") from None
    if found is None:
        raise NotAnExport(f"{where} is not an Evac audit export (no JSON record and no evac-audit marker)")
    mark = found
    if "<html" in stripped[:200].lower() or stripped.lower().startswith("<!doctype html"):
        try:
            facts = audit.read_embedded_record(text)
        except ValueError:
            facts = None
        if facts is None:
            raise DamagedExport(
                f"{where} is an HTML export whose embedded record (#{audit.RECORD_ELEMENT_ID}) is missing or damaged"
            )
        return Export(Format.HTML, text, mark, facts)
    return Export(Format.MD, text, mark, None)


class Verdict(StrEnum):
    VERIFIED = "verified"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    workflow_id: str
    run_id: str
    history_sha256: str
    history_events: int
    facts_checked: int
    first_difference: str | None = None

    @property
    def verified(self) -> bool:
        return self.verdict == Verdict.VERIFIED


def history_from_file(text: str, workflow_id: str, where: str) -> WorkflowHistory:
    """A raw history (``evac audit export --raw``, or the Temporal CLI's JSON) read back."""
    try:
        return WorkflowHistory.from_json(workflow_id, text)
    except Exception as exc:  # the SDK's parser raises json and protobuf errors alike
        raise BadInput(f"{where} is not a Temporal history in JSON ({type(exc).__name__}: {exc})") from None


def verify(document: Export, fetched: WorkflowHistory) -> Verification:
    """Prove ``document`` against the history: the digest of the events it was made from, then
    every fact re-derived from them. Names the first fact that differs."""
    mark = document.marker
    base = dict(workflow_id=mark.workflow_id, run_id=mark.run_id, history_sha256=mark.history_sha256)
    have = len(fetched.events)
    if have < mark.history_events:
        return Verification(
            Verdict.MISMATCH,
            **base,
            history_events=have,
            facts_checked=0,
            first_difference=(
                f"provenance.history_events: the export was made from {mark.history_events} events, the history has {have}"
            ),
        )
    given = _run_of(fetched)
    if given is not None and given != mark.run_id:
        return Verification(
            Verdict.MISMATCH,
            **base,
            history_events=have,
            facts_checked=0,
            first_difference=f"provenance.run_id: the export is of run {mark.run_id}, the history given is of run {given}",
        )
    made_from = audit.prefix(fetched, mark.history_events)
    digest = audit.history_digest(made_from)
    if digest != mark.history_sha256:
        return Verification(
            Verdict.MISMATCH,
            **base,
            history_events=mark.history_events,
            facts_checked=0,
            first_difference=f"provenance.history_sha256: the export says {mark.history_sha256}, the history hashes to {digest}",
        )
    try:
        derived = audit.derive(made_from, mark.namespace)
    except NotAuditable as exc:
        raise NotAnExport(f"the history the export names is not a run Evac audits: {exc}") from None
    checked = 0
    if document.facts is not None:
        truth = json.loads(derived.model_dump_json())
        for checked, difference in enumerate(_differences(document.facts, truth), start=1):
            if difference is not None:
                return Verification(
                    Verdict.MISMATCH,
                    **base,
                    history_events=mark.history_events,
                    facts_checked=checked,
                    first_difference=difference,
                )
    if document.format != Format.JSON:
        expected = export(derived, document.format)
        difference = _first_line_difference(document.text, expected)
        checked += len(expected.splitlines())
        if difference is not None:
            return _mismatch(mark, checked, difference)
    return Verification(Verdict.VERIFIED, **base, history_events=mark.history_events, facts_checked=checked)


def _run_of(history: WorkflowHistory) -> str | None:
    """The run a history is of (its start event's), if it says."""
    if not history.events or not history.events[0].HasField("workflow_execution_started_event_attributes"):
        return None
    return history.events[0].workflow_execution_started_event_attributes.original_execution_run_id or None


def _mismatch(mark: ExportMarker, checked: int, difference: str) -> Verification:
    return Verification(
        Verdict.MISMATCH,
        workflow_id=mark.workflow_id,
        run_id=mark.run_id,
        history_sha256=mark.history_sha256,
        history_events=mark.history_events,
        facts_checked=checked,
        first_difference=difference,
    )


def _differences(claimed: Any, truth: Any, path: str = "") -> Iterator[str | None]:
    """Walk both values in document order: None for each fact that matches, else the sentence
    naming it (and the walk stops there)."""
    if isinstance(claimed, dict) and isinstance(truth, dict):
        for key in list(claimed) + [k for k in truth if k not in claimed]:
            where = f"{path}.{key}" if path else key
            if key not in truth:
                yield f"{where}: the export has {_show(claimed[key])}, the history has no such fact"
                return
            if key not in claimed:
                yield f"{where}: the export lacks it, the history has {_show(truth[key])}"
                return
            for difference in _differences(claimed[key], truth[key], where):
                yield difference
                if difference is not None:
                    return
        return
    if isinstance(claimed, list) and isinstance(truth, list):
        for index in range(max(len(claimed), len(truth))):
            where = f"{path}[{index}]"
            if index >= len(truth):
                yield f"{where}: the export has {_show(claimed[index])}, the history has no such item"
                return
            if index >= len(claimed):
                yield f"{where}: the export lacks it, the history has {_show(truth[index])}"
                return
            for difference in _differences(claimed[index], truth[index], where):
                yield difference
                if difference is not None:
                    return
        return
    if claimed == truth and type(claimed) is type(truth):
        yield None
    else:
        yield f"{path}: the export says {_show(claimed)}, the history says {_show(truth)}"


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "…"


def _first_line_difference(claimed: str, truth: str) -> str | None:
    """Where the export's text first differs from the one the history gives. One rule for what is
    not a difference: a line's ending (LF or CRLF) and the spaces at its end; anything else is."""
    claimed_lines, truth_lines = claimed.splitlines(), truth.splitlines()
    for number, (a, b) in enumerate(zip(claimed_lines, truth_lines, strict=False), start=1):
        a, b = a.rstrip(), b.rstrip()
        if a != b:
            column = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            return (
                f"line {number}, column {column + 1}: the export reads {_around(a, column)!r}, "
                f"the history gives {_around(b, column)!r}"
            )
    if len(claimed_lines) != len(truth_lines):
        number = min(len(claimed_lines), len(truth_lines)) + 1
        return f"line {number}: the export has {len(claimed_lines)} lines, the history gives {len(truth_lines)}"
    return None


def _around(text: str, column: int, width: int = 40) -> str:
    """The text around ``column`` (where two lines part), so that the difference shows."""
    start = max(0, column - width)
    end = column + width
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
