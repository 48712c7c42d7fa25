"""``evac audit``: a run's record from its history, its exports, and their proof.

:func:`history` fetches a run's whole history from Temporal; :func:`evac.audit.record.derive` turns
it into the record; :func:`export` writes the record as JSON, Markdown or HTML (or the raw
history); :func:`verify` proves an export against the history: the history's SHA-256 first,
then every fact, naming the first that differs.

An evacuation (or a failback) is a chain of runs (it continues as new): :func:`histories`
fetches every run of the chain, oldest first, whichever run was named, and
:func:`evac.audit.evacuation.derive` makes one record of them; its exports name every run with
its history's digest, and :func:`verify` proves each.
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

from evac.audit import evacuation as evacuation_audit
from evac.audit import evacuation_render as evacuation_audit_render
from evac.audit import record as audit
from evac.audit import render as audit_render
from evac.audit.evacuation import ChainProvenance, EvacuationAuditRecord, EvacuationExportMarker
from evac.audit.record import AuditRecord, ExportMarker, NotAuditable, Provenance
from evac.control.records import describe
from evac.errors import BadInput, EvacuationNotFound, Refused, RunNotFound, from_rpc
from evac.evacuation import is_evacuation_id

AnyRecord = AuditRecord | EvacuationAuditRecord
AnyMarker = ExportMarker | EvacuationExportMarker


class Format(StrEnum):
    JSON = "json"
    MD = "md"
    HTML = "html"


class NotAnAuditRun(Refused):
    """The workflow is not a failover, drill or evacuation run (a schedule's launcher, say)."""


class FailbackNotFound(RunNotFound):
    def __init__(self, workflow_id: str, run_id: str | None = None):
        which = f"run {run_id} of '{workflow_id}'" if run_id else f"failback '{workflow_id}'"
        Refused.__init__(self, f"no {which}")


class NotAnExport(BadInput):
    """The file given to ``evac audit verify`` is not an Evac audit export."""


class DamagedExport(NotAnExport):
    """An export whose own proof is damaged (its marker or its embedded record): it is an export,
    and it is NOT verified (``evac audit verify`` exits 1, not 2)."""


async def history(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
    """The run's whole history (the latest run under ``workflow_id`` unless ``run_id``)."""
    description = await _describe(client, workflow_id, run_id)  # RunNotFound, with its sentence
    return await _fetch(client, workflow_id, description.run_id)


async def _describe(client: Client, workflow_id: str, run_id: str | None) -> Any:
    try:
        return await describe(client, workflow_id, run_id)
    except RunNotFound as exc:
        if is_evacuation_id(workflow_id):
            raise EvacuationNotFound(workflow_id, run_id) from exc
        if workflow_id.startswith(evacuation_audit.FAILBACK_PREFIX):
            raise FailbackNotFound(workflow_id, run_id) from exc
        raise


async def _fetch(client: Client, workflow_id: str, run_id: str) -> WorkflowHistory:
    try:
        return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id, run_id=run_id) from exc


async def histories(client: Client, workflow_id: str, run_id: str | None = None) -> list[WorkflowHistory]:
    """The histories a record is made of, oldest first: a failover's or drill's run alone; for any
    other workflow (an evacuation) every run of the chain the named run belongs to (the latest
    run unless ``run_id``), followed back to its first run and on to its last."""
    description = await _describe(client, workflow_id, run_id)
    chain = [await _fetch(client, workflow_id, description.run_id)]
    if description.workflow_type in audit.AUDITABLE_TYPES:
        return chain
    while len(chain) < evacuation_audit.MAX_CHAIN_RUNS:
        earlier = evacuation_audit.continued_from(chain[0])
        if earlier is None:
            break
        chain.insert(0, await _fetch(client, workflow_id, earlier))
    while len(chain) < evacuation_audit.MAX_CHAIN_RUNS:
        later = evacuation_audit.continued_as(chain[-1])
        if later is None:
            break
        chain.append(await _fetch(client, workflow_id, later))
    return chain


def derive(fetched: WorkflowHistory, namespace: str) -> AuditRecord:
    try:
        return audit.derive(fetched, namespace)
    except NotAuditable as exc:
        raise NotAnAuditRun(str(exc)) from None


def derive_any(fetched: list[WorkflowHistory], namespace: str, web_ui: str | None) -> AnyRecord:
    """A failover's or drill's record from its one history; any other workflow's, from the runs
    of its chain, as an evacuation's (NotAnAuditRun: it is neither)."""
    try:
        if fetched and fetched[0].events:
            kind = fetched[0].events[0].workflow_execution_started_event_attributes.workflow_type.name
            if kind in audit.AUDITABLE_TYPES:
                if len(fetched) != 1:
                    raise NotAuditable(f"a {kind} is one run; {len(fetched)} histories were given")
                return audit.derive(fetched[0], namespace)
        return evacuation_audit.derive(fetched, namespace, web_ui)
    except NotAuditable as exc:
        raise NotAnAuditRun(str(exc)) from None


async def record(client: Client, workflow_id: str, run_id: str | None = None) -> tuple[AuditRecord, WorkflowHistory]:
    fetched = await history(client, workflow_id, run_id)
    return derive(fetched, client.namespace), fetched


async def any_record(
    client: Client, workflow_id: str, run_id: str | None = None, web_ui: str | None = None
) -> tuple[AnyRecord, list[WorkflowHistory]]:
    """The record of a failover, drill or evacuation (its whole chain), and the histories it is made of."""
    fetched = await histories(client, workflow_id, run_id)
    return derive_any(fetched, client.namespace, web_ui), fetched


def export(record: AnyRecord, format: Format) -> str:
    """The record as a document. Deterministic: the same history always gives the same text."""
    if format == Format.JSON:
        return record.model_dump_json(indent=2) + "\n"
    if isinstance(record, EvacuationAuditRecord):
        if format == Format.MD:
            return evacuation_audit_render.render_markdown(record)
        return evacuation_audit_render.render_html(record)
    if format == Format.MD:
        return audit_render.render_markdown(record)
    return audit_render.render_html(record)


def raw(record: AnyRecord, fetched: list[WorkflowHistory]) -> str:
    """``export --raw``: the histories the record was made from (each cut where the record was
    made): one run's as Temporal writes it, a chain's as a JSON list of them, oldest first."""
    if isinstance(record, AuditRecord):
        return audit.prefix(fetched[0], record.provenance.history_events).to_json()
    counts = {r.run_id: r.history_events for r in record.provenance.runs}
    return evacuation_audit.raw_histories([audit.prefix(h, counts[h.run_id]) for h in fetched if h.run_id in counts])


async def named_histories(client: Client, mark: AnyMarker) -> list[WorkflowHistory]:
    """The histories an export names, fetched from Temporal."""
    if isinstance(mark, ExportMarker):
        return [await history(client, mark.workflow_id, mark.run_id)]
    return [await _fetch(client, mark.workflow_id, run.run_id) for run in mark.runs]


# --- verify ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """An export read back: its format, the marker that names its history, its facts."""

    format: Format
    text: str
    marker: AnyMarker
    facts: dict[str, Any] | None  # the JSON record (a JSON export, or the one an HTML export embeds)


def read_export(text: str, where: str) -> Export:
    """Recognise an export (JSON, HTML or Markdown) and what history it names."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        # Only the provenance must be readable (it names the history): any other fact, however
        # mangled, is for verify to compare, so a tampered value is named, not refused.
        try:
            facts = json.loads(text)
            named = facts.get("provenance") if isinstance(facts, dict) else None
            mark: AnyMarker
            if isinstance(named, dict) and "runs" in named:  # an evacuation's: a chain of runs
                mark = EvacuationExportMarker.of_provenance(ChainProvenance.model_validate(named))
            else:
                mark = ExportMarker.of_provenance(Provenance.model_validate(named))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise NotAnExport(f"{where} is JSON but not an Evac audit record (its provenance: {first})") from None
        return Export(Format.JSON, text, mark, facts)
    found: AnyMarker | None
    try:
        found = evacuation_audit.read_marker(text) or audit.read_marker(text)
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
    runs: tuple[str, ...] = ()  # an evacuation's: every run of the chain the export was made from

    @property
    def verified(self) -> bool:
        return self.verdict == Verdict.VERIFIED


def history_from_file(text: str, workflow_id: str, where: str) -> WorkflowHistory:
    """A raw history (``evac audit export --raw``, or the Temporal CLI's JSON) read back."""
    try:
        return WorkflowHistory.from_json(workflow_id, text)
    except Exception as exc:  # the SDK's parser raises json and protobuf errors alike
        raise BadInput(f"{where} is not a Temporal history in JSON ({type(exc).__name__}: {exc})") from None


def histories_from_file(text: str, workflow_id: str, where: str) -> list[WorkflowHistory]:
    """Raw histories read back: one history (as ``export --raw`` writes a single run, or the
    Temporal CLI's JSON), or a JSON list of them (``export --raw`` of an evacuation's chain)."""
    stripped = text.lstrip()
    if not stripped.startswith("["):
        return [history_from_file(text, workflow_id, where)]
    try:
        items = json.loads(text)
        return [WorkflowHistory.from_json(workflow_id, item) for item in items]
    except Exception as exc:  # the SDK's parser raises json and protobuf errors alike
        raise BadInput(f"{where} is not a list of Temporal histories in JSON ({type(exc).__name__}: {exc})") from None


def verify(document: Export, fetched: WorkflowHistory | list[WorkflowHistory]) -> Verification:
    """Prove ``document`` against the history (an evacuation's: the histories of its runs): the
    digest of the events it was made from, then every fact re-derived from them. Names the first
    fact that differs."""
    offered = fetched if isinstance(fetched, list) else [fetched]
    if isinstance(document.marker, EvacuationExportMarker):
        return _verify_chain(document, document.marker, offered)
    mark = document.marker
    fetched = next((h for h in offered if h.events and _run_of(h) == mark.run_id), offered[0])
    base: dict[str, Any] = dict(workflow_id=mark.workflow_id, run_id=mark.run_id, history_sha256=mark.history_sha256)
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
    checked, difference = _compare(document, derived)
    if difference is not None:
        return _mismatch(mark, checked, difference)
    return Verification(Verdict.VERIFIED, **base, history_events=mark.history_events, facts_checked=checked)


def _compare(document: Export, derived: AnyRecord) -> tuple[int, str | None]:
    """Every fact of the export against the record re-derived (JSON and HTML), then every line of a
    fresh rendering (Markdown and HTML): how many were checked, and the first difference."""
    checked = 0
    if document.facts is not None:
        truth = json.loads(derived.model_dump_json())
        for checked, difference in enumerate(_differences(document.facts, truth), start=1):
            if difference is not None:
                return checked, difference
    if document.format != Format.JSON:
        expected = export(derived, document.format)
        difference = _first_line_difference(document.text, expected)
        checked += len(expected.splitlines())
        if difference is not None:
            return checked, difference
    return checked, None


def _verify_chain(document: Export, mark: EvacuationExportMarker, given: list[WorkflowHistory]) -> Verification:
    """An evacuation's export against the histories of its runs: each run's digest over the
    events it was made from, the chain's digest, then every fact."""
    runs = tuple(r.run_id for r in mark.runs)
    total = sum(r.history_events for r in mark.runs)

    def result(verdict: Verdict, checked: int, difference: str | None = None) -> Verification:
        return Verification(
            verdict,
            workflow_id=mark.workflow_id,
            run_id=mark.run_id,
            history_sha256=mark.chain_sha256,
            history_events=total,
            facts_checked=checked,
            first_difference=difference,
            runs=runs,
        )

    by_run = {_run_of(h): h for h in given}
    made_from = []
    for i, run in enumerate(mark.runs):
        where = f"provenance.runs[{i}]"
        found = by_run.get(run.run_id)
        if found is None:
            have = ", ".join(sorted(r for r in by_run if r)) or "none"
            return result(
                Verdict.MISMATCH,
                0,
                f"{where}.run_id: the export was made from run {run.run_id}, the histories given are of {have}",
            )
        if len(found.events) < run.history_events:
            made, have_events = run.history_events, len(found.events)
            difference = f"{where}.history_events: the export was made from {made} events, the history has {have_events}"
            return result(Verdict.MISMATCH, 0, difference)
        cut = audit.prefix(found, run.history_events)
        digest = audit.history_digest(cut)
        if digest != run.history_sha256:
            return result(
                Verdict.MISMATCH,
                0,
                f"{where}.history_sha256: the export says {run.history_sha256}, the history hashes to {digest}",
            )
        made_from.append(cut)
    chain = evacuation_audit.chain_digest([r.history_sha256 for r in mark.runs])
    if chain != mark.chain_sha256:
        return result(
            Verdict.MISMATCH, 0, f"provenance.chain_sha256: the export says {mark.chain_sha256}, the runs' digests give {chain}"
        )
    try:
        derived = evacuation_audit.derive(made_from, mark.namespace, mark.web_ui)
    except NotAuditable as exc:
        raise NotAnExport(f"the histories the export names are not an evacuation Evac audits: {exc}") from None
    checked, differs = _compare(document, derived)
    return result(Verdict.MISMATCH if differs else Verdict.VERIFIED, checked, differs)


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
