"""An evacuation's audit record as people read it: a terminal summary, Markdown, and one
self-contained HTML file with a Gantt chart of its child runs, tier by tier.

All three render the same parts: the summary (who started it and why, the region and target, the
window, the outcome, the chain of runs and their digests), the timeline (tiers starting and ending,
services that did not leave, aborts and Temporal's own requests, each continue-as-new, the
fail-backs, the outcome), the tiers, every service with its run, the targets chosen and why, what
was left changed or is owed. Rendering is a pure function of the record, as for a failover's
(:mod:`evac.audit.render`): ``evac audit verify`` renders an export again and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from evac.audit import render as base
from evac.audit.evacuation import ChildRun, EvacuationAction, EvacuationAuditRecord, TierRecord, marker
from evac.audit.record import embedded_record
from evac.plan import format_duration

iso, offset, seconds_text, md_cell = base.iso, base.offset, base.seconds_text, base.md_cell

EntryKind = Literal["start", "tier", "service", "operator", "continue", "failback", "end"]


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str
    detail: str
    kind: EntryKind


# --- words shared by every renderer -------------------------------------------------------------


def last_time(record: EvacuationAuditRecord) -> datetime:
    return record.ended_at or record.provenance.last_event_at


def target_text(record: EvacuationAuditRecord) -> str:
    return record.target or "auto-target (per service, the healthy region with the most headroom to take its load)"


def trigger_text(record: EvacuationAuditRecord) -> str:
    t = record.trigger
    text = f"{t.kind} by {t.by}" + (f": {t.reason}" if t.reason else "")
    if t.schedule_id:
        text += f"; schedule {t.schedule_id}"
    if t.blackout_override:
        text += f"; started inside a blackout, overridden: {t.blackout_override}"
    if t.evidence:
        text += f"; evidence {', '.join(t.evidence)}"
    return text


def abort_text(record: EvacuationAuditRecord) -> str:
    a = record.abort
    if a is None:
        return "-"
    then = (
        "every service that had left failed back (rollback_all)" if a.rollback_all else "services that had left stay failed over"
    )
    return f"by {a.by}: {a.reason}; {then}"


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items()) or "none"


def _services(count: int) -> str:
    return f"{count} service" + ("" if count == 1 else "s")


def took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return seconds_text((end - start).total_seconds())


def run_text(child: ChildRun) -> str:
    if child.workflow_id is None:
        return "-"
    return f"{child.workflow_id} run {child.run_id}" if child.run_id else f"{child.workflow_id} (not started)"


def problem_text(child: ChildRun) -> str:
    """What went wrong or is still to do for a service: its error, what it left changed, what it owes."""
    parts = []
    if child.error:
        parts.append(child.error)
    if child.left_changed:
        parts.append("LEFT CHANGED: " + "; ".join(child.left_changed))
    if child.ungraceful:
        parts.append("ungraceful: went on without the region's API")
    if child.owed:
        parts.append("owed: " + "; ".join(child.owed))
    if child.failback is not None:
        f = child.failback
        parts.append(f"fail back: {f.calls} call(s)" + (f", {f.failed} failed" if f.failed else ""))
    parts += [f"{name}: {value}" for name, value in child.details.items()]
    return "; ".join(parts) or "-"


def action_text(action: EvacuationAction) -> str:
    if action.by:
        text = f"by {action.by}" + (f" (identity {action.identity})" if action.identity and action.identity != action.by else "")
    else:
        text = f"by identity {action.identity or 'unknown'}"
    if action.reason:
        text += f": {action.reason}"
    if action.rollback_all:
        text += "; rollback_all: fail back every service that had left"
    if action.outcome == "failed":
        text += f"; refused: {action.detail}"
    return text


def summary_rows(record: EvacuationAuditRecord) -> list[tuple[str, str]]:
    """The summary every renderer shows, as (field, value) pairs."""
    p = record.provenance
    ended = iso(record.ended_at) if record.ended_at else f"not ended (histories read to {iso(p.last_event_at)})"
    lasted = f" ({offset(record.ended_at, record.started_at)})" if record.ended_at else ""
    kind = record.kind + (" (dry run: nothing was changed)" if record.kind == "dry_run" else "")
    rows = [
        ("kind", kind),
        ("outcome", record.summary),
        ("region", record.region + (f" (project {record.project})" if record.project else "")),
        ("target", target_text(record)),
        ("trigger", trigger_text(record)),
        ("client identity", record.starter_identity or "-"),
        ("tiers", " → ".join(g.name for g in record.groups) or "-"),
        ("services", f"{len(record.children)}; window {record.window}, at most {record.peak_in_flight} in flight"),
        ("abort", abort_text(record)),
    ]
    rows += [(name.replace("_", " "), value) for name, value in record.details.items()]
    rows += [
        ("started", iso(record.started_at)),
        ("ended", ended + lasted),
        ("workflow", f"{p.workflow_id} ({p.workflow_type}, namespace {p.namespace}, task queue {p.task_queue})"),
        ("runs", f"{len(p.runs)}" + (" (continued as new)" if len(p.runs) > 1 else "")),
    ]
    for i, run in enumerate(p.runs, start=1):
        rows.append(
            (
                f"run {i}",
                f"{run.run_id}: {run.history_events} events, {run.ended_as.replace('_', ' ')}, sha256 {run.history_sha256}",
            )
        )
    rows += [
        ("history", f"{p.history_events} events" + (", closed" if p.closed else ", not closed: the evacuation was still going")),
        ("chain sha256", p.chain_sha256),
        ("record from", f"the last run's {record.record_source}"),
    ]
    return rows


def timeline(record: EvacuationAuditRecord) -> list[Entry]:
    """The evacuation's timeline, in time order (ties keep the order added)."""
    entries: list[Entry] = []

    def add(at: datetime, what: str, detail: str, kind: EntryKind) -> None:
        entries.append(Entry(at, what, detail, kind))

    scope = {"evacuation": "evacuation", "dry_run": "dry-run evacuation", "failback": "failback"}[record.kind]
    add(
        record.started_at,
        f"{scope} started",
        f"{_services(len(record.children))} of {record.region} → {record.target or 'auto-target'}, tiers "
        f"{', '.join(g.name for g in record.groups) or '-'}, window {record.window}; {trigger_text(record)}; "
        f"client identity {record.starter_identity or '-'}",
        "start",
    )
    for tier in record.groups:
        if tier.started_at is not None:
            add(tier.started_at, f"tier '{tier.name}' started", _services(tier.services), "tier")
        if tier.ended_at is not None:
            add(
                tier.ended_at,
                f"tier '{tier.name}' ended",
                f"{counts_text(tier.counts)}; took {took(tier.started_at, tier.ended_at)}",
                "tier",
            )
    for child in record.children:
        quiet = child.status in ("succeeded", "failed_back", "running", "waiting", "not_started")
        if quiet and not (child.left_changed or child.owed or child.ungraceful):
            continue  # (the tiers and the services table hold them)
        at = child.ended_at or child.started_at or last_time(record)
        add(at, f"{child.service} {child.status.replace('_', ' ')}", problem_text(child), "service")
    for action in record.operator_actions:
        add(action.at, action.action if action.action != "other" else f"other ({action.name})", action_text(action), "operator")
    runs = record.provenance.runs
    for i, (run, following) in enumerate(zip(runs, runs[1:], strict=False), start=1):
        add(
            run.last_event_at,
            f"continued as new: run {i + 1}",
            f"run {run.run_id} ({run.history_events} events) → run {following.run_id}",
            "continue",
        )
    spans = [c.failback for c in record.children if c.failback is not None]
    if spans:
        ends = [s.ended_at for s in spans]
        add(min(s.started_at for s in spans), "fail back started", _services(len(spans)), "failback")
        if all(e is not None for e in ends):
            failed = sum(1 for c in record.children if c.status == "failback_failed")
            add(
                max(e for e in ends if e is not None),
                "fail back ended",
                f"{failed} could not be failed back" if failed else "every one failed back",
                "failback",
            )
    end = last_time(record)
    outcome = record.outcome + ("" if record.provenance.closed else " (the histories end here; the evacuation was still going)")
    add(end, f"outcome: {outcome}", record.summary, "end")
    return [e for _, e in sorted(enumerate(entries), key=lambda pair: (pair[1].at, pair[1].kind == "end", pair[0]))]


def _when(value: datetime | None, start: datetime) -> str:
    return "-" if value is None else f"{iso(value)} ({offset(value, start)})"


def tier_rows(record: EvacuationAuditRecord) -> list[list[str]]:
    start = record.started_at
    return [
        [
            t.name,
            str(t.services),
            counts_text(t.counts),
            _when(t.started_at, start),
            _when(t.ended_at, start),
            took(t.started_at, t.ended_at),
        ]
        for t in record.groups
    ]


def child_rows(record: EvacuationAuditRecord) -> list[list[str]]:
    """Services: service, tier, status, target, run, start, end, took, error / left changed / owed."""
    start = record.started_at
    return [
        [
            c.service,
            c.group,
            c.status,
            c.target or "-",
            run_text(c),
            _when(c.started_at, start),
            _when(c.ended_at, start),
            took(c.started_at, c.ended_at),
            problem_text(c),
        ]
        for c in record.children
    ]


TIER_HEADER = ["Tier", "Services", "By status", "Started", "Ended", "Took"]
RUN_HEADER = ["#", "Run", "Events", "Ended as", "History SHA-256"]
CHILD_HEADER = ["Service", "Tier", "Status", "Target", "Run", "Start", "End", "Took", "Error, left changed, owed"]


def target_rows(record: EvacuationAuditRecord) -> list[list[str]]:
    return [[c.service, c.target or "none", c.target_reason] for c in record.children if c.target_reason]


def action_rows(record: EvacuationAuditRecord) -> list[list[str]]:
    rows = []
    for a in record.operator_actions:
        outcome = a.outcome + (f": {a.detail}" if a.detail else "")
        rollback = "-" if a.rollback_all is None else ("yes" if a.rollback_all else "no")
        rows.append(
            [
                iso(a.at),
                a.action if a.action != "other" else a.name,
                a.by or "-",
                a.identity or "-",
                a.reason or "-",
                rollback,
                outcome,
            ]
        )
    return rows


ACTION_HEADER = ["At (UTC)", "Action", "By", "Identity", "Reason", "Rollback all", "Outcome"]


def left_changed_lines(record: EvacuationAuditRecord) -> list[str]:
    return [f"{c.service}: {r}" for c in record.children for r in c.left_changed]


def owed_lines(record: EvacuationAuditRecord) -> list[str]:
    return [f"{c.service}: {o}" for c in record.children for o in c.owed]


# --- terminal (evac audit show) ---------------------------------------------------------------------

_KIND_STYLE = {"start": "bold", "operator": "yellow", "service": "red", "failback": "magenta", "end": "bold"}
_STATUS_STYLE = {"succeeded": "green", "failed": "red", "failback_failed": "red", "aborted": "yellow", "running": "blue"}


def render_text(record: EvacuationAuditRecord) -> RenderableType:
    """``evac audit show`` of an evacuation: the summary, the timeline, the tiers, every service."""
    header = Table.grid(padding=(0, 1))
    header.add_column(style="bold", no_wrap=True)
    header.add_column(overflow="fold")
    for name, value in summary_rows(record):
        header.add_row(name, value)
    title = Text.assemble((f"{record.kind} of {record.region}", "bold"), "  ", (record.outcome, "bold"))
    start = record.started_at
    same_day = start.date() == last_time(record).date()
    events = Table(title="timeline (UTC)", title_justify="left")
    events.add_column("at", no_wrap=True)
    events.add_column("offset", justify="right", no_wrap=True)
    events.add_column("what", overflow="fold", max_width=30)
    events.add_column("detail", overflow="fold")
    for e in timeline(record):
        stamp = iso(e.at)
        events.add_row(
            stamp[11:] if same_day else stamp, offset(e.at, start), Text(e.what, _KIND_STYLE.get(e.kind, "")), e.detail
        )
    tiers = Table(title="tiers, in order", title_justify="left")
    for column in ("tier", "services", "by status", "took"):
        tiers.add_column(column, overflow="fold")
    for t in record.groups:
        tiers.add_row(t.name, str(t.services), counts_text(t.counts), took(t.started_at, t.ended_at))
    services = Table(title="services", title_justify="left")
    for column in ("service", "tier", "status", "target", "run id", "start", "took", "error, left changed, owed"):
        services.add_column(column, overflow="fold")
    for c in record.children:
        services.add_row(
            c.service,
            c.group,
            Text(c.status, _STATUS_STYLE.get(c.status, "")),
            c.target or "-",
            c.run_id or "-",
            offset(c.started_at, start) if c.started_at else "-",
            took(c.started_at, c.ended_at),
            problem_text(c),
        )
    parts: list[RenderableType] = [Panel(header, title=title, title_align="left"), events, tiers, services]
    reasons = target_rows(record)
    if reasons and record.target is None:
        chosen = Table(title="targets chosen", title_justify="left")
        for column in ("service", "target", "why"):
            chosen.add_column(column, overflow="fold")
        for row in reasons:
            chosen.add_row(*row)
        parts.append(chosen)
    return Group(*parts)


# --- Markdown ---------------------------------------------------------------------------------------


def _md_link(text: str, url: str | None) -> str:
    """A Markdown link whose text and target cannot break out of the cell (nor out of the link)."""
    if url is None:
        return md_cell(text)
    return f"[{md_cell(text).replace('[', '(').replace(']', ')')}]({url.replace(' ', '%20').replace(')', '%29')})"


def render_markdown(record: EvacuationAuditRecord) -> str:
    """The record as Markdown for a postmortem; its last line is the export's marker."""
    start = record.started_at
    lines = [f"# Evac audit: {record.kind} of {md_cell(record.region)} ({md_cell(record.outcome)})", ""]
    lines += ["## Summary", ""] + base.md_table(["Field", "Value"], summary_rows(record))
    lines += ["## Timeline", ""]
    lines += base.md_table(
        ["At (UTC)", "Offset", "Event", "Detail"], [[iso(e.at), offset(e.at, start), e.what, e.detail] for e in timeline(record)]
    )
    lines += ["## Tiers", ""] + base.md_table(TIER_HEADER, tier_rows(record))
    lines += ["## Services", ""]
    rows = child_rows(record)
    lines += ["| " + " | ".join(CHILD_HEADER) + " |", "|" + "|".join("---" for _ in CHILD_HEADER) + "|"]
    for child, row in zip(record.children, rows, strict=True):
        cells = [md_cell(c) for c in row]
        cells[4] = _md_link(row[4], child.link).replace("|", "\\|")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    reasons = target_rows(record)
    if reasons:
        lines += ["## Targets", ""] + base.md_table(["Service", "Target", "Why"], reasons)
    actions = action_rows(record)
    lines += ["## Operator actions", ""] + (base.md_table(ACTION_HEADER, actions) if actions else ["None.", ""])
    left = left_changed_lines(record)
    if left:
        lines += ["## Left changed", "", "Restore these by hand:", ""] + [f"- {md_cell(x)}" for x in left] + [""]
    owed = owed_lines(record)
    if owed:
        lines += ["## Owed", "", f"Skipped: {md_cell(record.region)}'s API gave no answer. Make these once it does:", ""]
        lines += [f"- {md_cell(x)}" for x in owed] + [""]
    lines += ["## Runs of the evacuation", ""]
    runs = [
        [str(i), _md_link(r.run_id, r.link), str(r.history_events), r.ended_as, r.history_sha256]
        for i, r in enumerate(record.provenance.runs, start=1)
    ]
    lines += ["| # | Run | Events | Ended as | History SHA-256 |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in runs] + [""]
    return "\n".join(lines) + marker(record) + "\n"


# --- HTML with a Gantt chart of the child runs ---------------------------------------------------------

STATUS_COLOUR: dict[str, str] = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "aborted": "#e65100",
    "failed_back": "#9575cd",
    "failback_failed": "#8e0000",
    "running": "#1565c0",
    "waiting": "#9e9e9e",
    "not_started": "#9e9e9e",
}
_FAILBACK_COLOUR = "#6a1b9a"
_UNKNOWN_COLOUR = "#616161"
_CSS = (
    base._CSS
    + """
a { color: #0b57d0; }
svg .tier-label { font-size: 12px; font-weight: 600; fill: #1a1a1a; }
svg .continue-mark { stroke: #5f6368; stroke-dasharray: 4 3; }
"""
)


def _e(value: object) -> str:
    return base._e(value)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table whose cells are HTML already."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _a(text: str, url: str | None) -> str:
    return f'<a href="{_e(url)}">{_e(text)}</a>' if url else _e(text)


def gantt_svg(record: EvacuationAuditRecord) -> str:
    """The child runs over time, tier by tier: a heading row per tier, then one ``rect.child-bar``
    per child run (coloured by the service's status) and a ``rect.failback-bar`` per service
    failed back; a service with no run gets a hatched ``rect.no-run`` mark, not a bar. Operator
    actions are marks under the axis, each continue-as-new a dashed line."""
    start, end = record.started_at, last_time(record)
    busy = [(c.started_at, c.ended_at or end) for c in record.children if c.started_at is not None and c.run_id]
    busy += [(c.failback.started_at, c.failback.ended_at or end) for c in record.children if c.failback is not None]
    label_w, chart_w, right = 230.0, 880.0, 20.0
    row_h, top = 22.0, 46.0
    scale = base._Scale(start, end, busy, chart_w)
    rows: list[TierRecord | ChildRun] = []
    for tier in record.groups:
        rows.append(tier)
        rows += [c for c in record.children if c.group == tier.name]
    height = top + row_h * max(len(rows), 1) + 80
    width = label_w + chart_w + right
    x0, bottom = label_w, top + row_h * max(len(rows), 1)
    out = [
        f'<svg class="gantt" width="{_f(width)}" height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" '
        'role="img" aria-labelledby="gantt-title">',
        f'<title id="gantt-title">{_e(f"Child runs of the {record.kind} of {record.region}, tier by tier, over time")}</title>',
        "<defs>"
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" stroke-width="2"/>'
        "</pattern></defs>",
    ]
    for t in scale.ticks():
        x = x0 + scale.sx(t)
        out.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top - 6)}" x2="{_f(x)}" y2="{_f(bottom)}"/>')
        out.append(f'<text class="tick" x="{_f(x)}" y="{_f(top - 12)}" text-anchor="middle">{_e(base._tick_label(t))}</text>')
    for g0, g1 in scale.gaps:
        gx, gw = x0 + scale.sx(g0), scale.sx(g1) - scale.sx(g0)
        idle = format_duration(timedelta(seconds=round(g1 - g0)))
        out.append(
            f'<rect class="gap" x="{_f(gx)}" y="{_f(top - 6)}" width="{_f(gw)}" height="{_f(bottom - top + 6)}" fill="#f7f7f7">'
            f"<title>{_e(f'{idle} with no run going (not to scale)')}</title></rect>"
        )
        out.append(f'<text class="gap-label" x="{_f(gx + gw / 2)}" y="{_f(bottom + 22)}" text-anchor="middle">{_e(idle)}</text>')
    out.append(f'<line class="axis" x1="{_f(x0)}" y1="{_f(bottom)}" x2="{_f(x0 + chart_w)}" y2="{_f(bottom)}"/>')
    for i, c in enumerate(rows):
        y = top + row_h * i
        if isinstance(c, TierRecord):
            tier = c
            out.append(
                f'<rect class="tier-band" data-group="{_e(tier.name)}" x="0" y="{_f(y)}" width="{_f(width)}" '
                f'height="{_f(row_h)}" fill="#f2f4f7"/>'
            )
            label = f"tier {tier.name}: {counts_text(tier.counts)}"
            out.append(f'<text class="tier-label" x="8" y="{_f(y + 15)}">{_e(label)}</text>')
            continue
        out.append(f'<text class="label" x="18" y="{_f(y + 15)}">{_e(c.service)}</text>')
        colour = STATUS_COLOUR.get(c.status, _UNKNOWN_COLOUR)
        if c.started_at is None or not c.run_id:
            tip = f"{c.service}: {c.status.replace('_', ' ')}, no run" + (f"; {c.error}" if c.error else "")
            mx = x0 + (scale.x(c.started_at) if c.started_at is not None else 0.0)  # where it was to start, if it was
            out.append(
                f'<rect class="no-run" data-service="{_e(c.service)}" data-group="{_e(c.group)}" data-status="{_e(c.status)}" '
                f'x="{_f(mx)}" y="{_f(y + 5)}" width="10" height="12" fill="url(#hatch)" stroke="#9e9e9e">'
                f"<title>{_e(tip)}</title></rect>"
            )
            note = c.status.replace("_", " ") + (f": {c.error}" if c.error else "")
            note = note if len(note) <= 120 else note[:119] + "…"
            out.append(f'<text class="note" x="{_f(mx + 16)}" y="{_f(y + 15)}">{_e(note)}</text>')
            continue
        bx = x0 + scale.x(c.started_at)
        bw = max(scale.x(c.ended_at or end) - scale.x(c.started_at), 3.0)
        tip = (
            f"{c.service} (tier {c.group}): {c.status}; {run_text(c)}; {iso(c.started_at)} → "
            f"{iso(c.ended_at) if c.ended_at else '-'} ({took(c.started_at, c.ended_at)}); target {c.target or '-'}"
        )
        if problem_text(c) != "-":
            tip += f"; {problem_text(c)}"
        out.append(
            f'<rect class="child-bar" data-service="{_e(c.service)}" data-group="{_e(c.group)}" data-status="{_e(c.status)}" '
            f'x="{_f(bx)}" y="{_f(y + 4)}" width="{_f(bw)}" height="10" rx="2" fill="{colour}"><title>{_e(tip)}</title></rect>'
        )
        nx = bx + bw + 5
        if c.failback is not None:
            f = c.failback
            fx = x0 + scale.x(f.started_at)
            fw = max(scale.x(f.ended_at or end) - scale.x(f.started_at), 3.0)
            ftip = (
                f"fail back {c.service}: {f.calls} call(s), {f.failed} failed; "
                f"{_when(f.started_at, start)} → {_when(f.ended_at, start)}"
            )
            stroke = ' stroke="#c62828" stroke-width="2"' if f.failed or c.status == "failback_failed" else ""
            out.append(
                f'<rect class="failback-bar" data-service="{_e(c.service)}" x="{_f(fx)}" y="{_f(y + 15)}" width="{_f(fw)}" '
                f'height="5" rx="1" fill="{_FAILBACK_COLOUR}"{stroke}><title>{_e(ftip)}</title></rect>'
            )
            nx = max(nx, fx + fw + 5)
        note = took(c.started_at, c.ended_at) + ("" if c.status == "succeeded" else f", {c.status.replace('_', ' ')}")
        anchor = "start"
        if nx + 6 * len(note) > x0 + chart_w:
            nx, anchor = bx - 5, "end"
        out.append(f'<text class="note" x="{_f(nx)}" y="{_f(y + 13)}" text-anchor="{anchor}">{_e(note)}</text>')
    for i, run in enumerate(record.provenance.runs[:-1], start=2):
        cx = x0 + scale.x(run.last_event_at)
        out.append(
            f'<line class="continue-mark" x1="{_f(cx)}" y1="{_f(top - 6)}" x2="{_f(cx)}" y2="{_f(bottom)}">'
            f"<title>{_e(f'continued as new: run {i} from {iso(run.last_event_at)}')}</title></line>"
        )
    for action in record.operator_actions:
        ax = x0 + scale.x(action.at)
        tip = f"{action.action} {action_text(action)} at {iso(action.at)}"
        out.append(
            f'<path class="action-mark" d="M{_f(ax)} {_f(bottom + 2)} l-5 9 h10 z" fill="#b26a00"><title>{_e(tip)}</title></path>'
        )
    ly, lx = bottom + 44, x0
    present = list(dict.fromkeys(c.status for c in record.children))
    for status in sorted(present, key=lambda s: (list(STATUS_COLOUR).index(s) if s in STATUS_COLOUR else 99, s)):
        fill = "url(#hatch)" if status in ("not_started", "waiting") else STATUS_COLOUR.get(status, _UNKNOWN_COLOUR)
        out.append(f'<rect class="legend" x="{_f(lx)}" y="{_f(ly)}" width="14" height="10" fill="{fill}"/>')
        label = status.replace("_", " ")
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">{_e(label)}</text>')
        lx += 30 + 6.5 * len(label)
    if any(c.failback is not None for c in record.children):
        out.append(f'<rect class="legend" x="{_f(lx)}" y="{_f(ly + 3)}" width="14" height="5" fill="{_FAILBACK_COLOUR}"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">fail back</text>')
        lx += 90
    if record.operator_actions:
        out.append(f'<path d="M{_f(lx + 7)} {_f(ly)} l-5 9 h10 z" fill="#b26a00"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">operator action</text>')
        lx += 130
    if len(record.provenance.runs) > 1:
        out.append(f'<line class="continue-mark" x1="{_f(lx)}" y1="{_f(ly + 5)}" x2="{_f(lx + 14)}" y2="{_f(ly + 5)}"/>')
        out.append(f'<text class="tick" x="{_f(lx + 18)}" y="{_f(ly + 9)}">continued as new</text>')
    out.append("</svg>")
    return "\n".join(out)


def _outcome_class(record: EvacuationAuditRecord) -> str:
    if record.outcome == "succeeded":
        return "ok"
    if record.outcome in ("aborted", "aborting", "running"):
        return "warn"
    return "bad"


def render_html(record: EvacuationAuditRecord) -> str:
    """One self-contained HTML5 file (inline CSS and SVG, no scripts, nothing fetched), ending with the marker."""
    start = record.started_at
    title = f"Evac audit: {record.kind} of {record.region} {record.outcome} ({iso(start)})"
    target = record.target or "auto-target"
    parts = [
        *base.html_head(title, _CSS),
        "<header>",
        f"<h1>{_e(record.kind)} of {_e(record.region)} "
        f'<span class="outcome {_outcome_class(record)}">{_e(record.outcome)}</span></h1>',
        f'<p class="sub">{_e(f"{record.region} → {target}, {len(record.children)} services, started {iso(start)}")}</p>',
        "</header>",
        '<section id="summary"><h2>Summary</h2><table class="summary"><tbody>'
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary_rows(record))
        + "</tbody></table></section>",
        '<section id="chart"><h2>Child runs over time, by tier</h2><div class="chart">',
        gantt_svg(record),
        "</div></section>",
    ]
    rows = "".join(
        f'<tr class="k-{e.kind}"><td class="t">{_e(iso(e.at))}</td><td class="o">{_e(offset(e.at, start))}</td>'
        f"<td>{_e(e.what)}</td><td>{_e(e.detail)}</td></tr>"
        for e in timeline(record)
    )
    parts.append(
        '<section id="timeline"><h2>Timeline</h2><table><thead><tr><th>At (UTC)</th><th>Offset</th><th>Event</th>'
        f"<th>Detail</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
    tiers = [[_e(c) for c in row] for row in tier_rows(record)]
    parts.append(f'<section id="tiers"><h2>Tiers</h2>{_html_table(TIER_HEADER, tiers)}</section>')
    services = []
    for child, row in zip(record.children, child_rows(record), strict=True):
        cells = [_e(c) for c in row]
        cells[4] = _a(row[4], child.link)
        services.append(cells)
    parts.append(f'<section id="services"><h2>Services</h2>{_html_table(CHILD_HEADER, services)}</section>')
    reasons = target_rows(record)
    if reasons:
        body = _html_table(["Service", "Target", "Why"], [[_e(c) for c in row] for row in reasons])
        parts.append(f'<section id="targets"><h2>Targets</h2>{body}</section>')
    actions = action_rows(record)
    body = _html_table(ACTION_HEADER, [[_e(c) for c in row] for row in actions]) if actions else "<p>None.</p>"
    parts.append(f'<section id="operator-actions"><h2>Operator actions</h2>{body}</section>')
    left = left_changed_lines(record)
    if left:
        items = "".join(f"<li>{_e(x)}</li>" for x in left)
        parts.append(
            '<section id="left-changed" class="left-changed"><h2>Left changed</h2>'
            f"<p>Restore these by hand:</p><ul>{items}</ul></section>"
        )
    owed = owed_lines(record)
    if owed:
        items = "".join(f"<li>{_e(x)}</li>" for x in owed)
        intro = _e(f"Skipped: {record.region}'s API gave no answer. Make these once it does:")
        parts.append(f'<section id="owed" class="left-changed"><h2>Owed</h2><p>{intro}</p><ul>{items}</ul></section>')
    runs = [
        [str(i), _a(r.run_id, r.link), str(r.history_events), _e(r.ended_as), _e(r.history_sha256)]
        for i, r in enumerate(record.provenance.runs, start=1)
    ]
    parts.append(f'<section id="runs"><h2>Runs of the evacuation</h2>{_html_table(RUN_HEADER, runs)}</section>')
    p = record.provenance
    parts.append(
        f"<footer>{_e(f'Derived from the Temporal histories of {p.workflow_id} ({len(p.runs)} run(s)) ')}"
        f"{_e(f'in namespace {p.namespace}: ')}"
        f"{_e(f'{p.history_events} events, chain sha256 {p.chain_sha256}. Check it with: evac audit verify FILE')}</footer>"
    )
    parts.append(embedded_record(record))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n" + marker(record) + "\n"
