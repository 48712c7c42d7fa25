"""The evidence across runs (``evac audit report``): what auditors ask of a DR programme.

Per service: the drills it ran and passed in the window, its pass rate, its last passed drill
(which may be older than the window), how long recovery took over time, and its failovers by
trigger with those that did not succeed. Listed first, the gaps: services of the topology that
never passed a drill, or not within the drill policy period. Region evacuations (whose services'
runs are counted as failovers) are counted in the header, with their outcomes. And per service,
its readiness over the window, from the readiness evaluations that ended in it: how many covered
the service, the share that found it ready (ready with warnings counts as ready, as the
``evac_plan_ready`` gauge counts it), its longest not-ready stretch and its latest state.

Pure code, no I/O: :func:`build_report` computes an :class:`EvidenceReport` from run rows
and readiness evaluations (the visibility records :mod:`evac.control.evidence` reads);
:func:`render_markdown` and :func:`render_html` write it. The HTML is one self-contained file:
inline CSS with a print stylesheet, charts as inline SVG drawn here, no scripts, fonts or links
to fetch. The same report always renders to the same text.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from evac.control.findable import RunRow
from evac.readiness import STATE_WORDS, State
from evac.text import visible
from evac.times import utc_text

Gap = Literal["never_drilled", "overdue"]
DRILL, FAILOVER, DRY_RUN, EVACUATION = "drill", "failover", "dry_run", "evacuation"
DRY_RUN_EVACUATION_PREFIX = "dry-run/evacuation/"
PASSED, SUCCEEDED = "passed", "succeeded"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunLink(_Model):
    """One run, as an auditor finds it again (``evac audit show <workflow id> --run-id <run id>``)."""

    workflow_id: str
    run_id: str
    started_at: datetime
    ended_at: datetime | None
    trigger: str | None
    outcome: str | None


class TrendPoint(_Model):
    """One measured recovery: how many seconds a run took to move the service's traffic."""

    started_at: datetime
    seconds: float
    kind: str
    outcome: str | None
    workflow_id: str


class ReadinessEvaluation(_Model):
    """One readiness evaluation that ended: when, and each service's state it found (its memo)."""

    workflow_id: str
    run_id: str
    ended_at: datetime
    services: dict[str, State]


class NotReadyStretch(_Model):
    """Consecutive evaluations that found a service not ready: from the first of them to the next
    evaluation that found it ready (``ended_at`` None: none has yet, it is still not ready)."""

    started_at: datetime
    ended_at: datetime | None
    first_workflow_id: str  # the evaluation that first found it not ready: its findings say why
    evaluations: int

    def length(self, now: datetime) -> timedelta:
        return (self.ended_at or now) - self.started_at


class ServiceReadinessEvidence(_Model):
    """A service's readiness over the window, from the evaluations that covered it."""

    evaluations: int
    ready: int  # of those, the ones that found it ready, with warnings or not
    latest: State
    latest_at: datetime
    longest_not_ready: NotReadyStretch | None  # None: no evaluation found it not ready

    @property
    def share_ready(self) -> float:
        return self.ready / self.evaluations


class ServiceEvidence(_Model):
    service: str
    in_topology: bool
    gap: Gap | None = None
    drills_run: int  # ended drills started within the window
    drills_passed: int
    drills_running: int
    pass_rate: float | None  # passed / ended drills; None without an ended drill
    drill_outcomes: dict[str, int]
    last_passed: RunLink | None  # the newest passed drill known, of any age
    recovery_trend: list[TrendPoint]  # oldest first, drills and failovers
    rpo_trend: list[TrendPoint] = []  # oldest first: the replication lag data steps saw before changing roles
    failovers: int
    failovers_by_trigger: dict[str, int]
    failovers_not_succeeded: list[RunLink]  # newest first
    readiness: ServiceReadinessEvidence | None = None  # None: no readiness evaluation covered it in the window


class EvidenceReport(_Model):
    now: datetime
    since: timedelta  # the window: runs started within it are counted
    policy: timedelta  # every service of the topology passes a drill at least this often
    namespace: str | None = None
    never_drilled: list[str]  # topology services with no passed drill on record
    overdue: list[str]  # topology services whose last passed drill is older than the policy
    not_in_topology: list[str]  # services seen in runs that the topology does not name
    services: list[ServiceEvidence]  # gaps first (never drilled, then most overdue), then by name
    dry_runs_seen: int  # in the window; they change nothing, so count for nothing
    evacuations: int = 0  # region evacuations started in the window (dry runs not counted)
    evacuation_outcomes: dict[str, int] = {}  # of those, by outcome ("running" while one goes on)
    runs_without_service: int
    runs_read: int
    row_cap: int | None = None  # set when only the newest this-many runs were read
    readiness_evaluations: int = 0  # readiness evaluations that ended in the window and were read
    readiness_without_services: int = 0  # of those, the ones whose memo names no service (older code's)
    readiness_cap: int | None = None  # set when only the newest this-many evaluations were read

    @property
    def gaps(self) -> int:
        return len(self.never_drilled) + len(self.overdue)

    @property
    def window_start(self) -> datetime:
        return self.now - self.since


# --- building -----------------------------------------------------------------------------


def build_report(
    runs: Sequence[RunRow],
    services: Sequence[str],
    *,
    now: datetime,
    since: timedelta,
    policy: timedelta,
    last_passed: Mapping[str, RunRow] | None = None,
    namespace: str | None = None,
    row_cap: int | None = None,
    evaluations: Sequence[ReadinessEvaluation] = (),
    readiness_cap: int | None = None,
) -> EvidenceReport:
    """The evidence from ``runs`` (any order; those started before ``now - since`` only inform
    the last passed drill) for the topology's ``services``; ``last_passed``: the newest passed
    drill found outside ``runs``, per service. ``row_cap``: the runs were cut at this many.
    ``evaluations``: the readiness evaluations (any order; those that ended before the window
    are left out), cut at ``readiness_cap`` if given."""
    start = now - since
    evaluations = [e for e in evaluations if e.ended_at >= start]
    evacuations = [row for row in runs if row.kind == EVACUATION]
    dry_evacuations = [row for row in evacuations if row.workflow_id.startswith(DRY_RUN_EVACUATION_PREFIX)]
    counted = [row for row in evacuations if row not in dry_evacuations and row.started_at >= start]
    runs = [row for row in runs if row.kind != EVACUATION]
    attributed = [row for row in runs if row.service is not None]
    by_service: dict[str, list[RunRow]] = {}
    for row in attributed:
        if row.kind != DRY_RUN:
            by_service.setdefault(str(row.service), []).append(row)
    topology = set(services)
    evidence = [
        _service_evidence(
            name,
            by_service.get(name, []),
            (last_passed or {}).get(name),
            in_topology=name in topology,
            now=now,
            start=start,
            policy=policy,
            readiness=readiness_over(evaluations, name, now=now),
        )
        for name in sorted(topology | set(by_service))
    ]
    ordered = sorted(evidence, key=_display_order)
    return EvidenceReport(
        now=now,
        since=since,
        policy=policy,
        namespace=namespace,
        never_drilled=[s.service for s in ordered if s.gap == "never_drilled"],
        overdue=[s.service for s in ordered if s.gap == "overdue"],
        not_in_topology=[s.service for s in ordered if not s.in_topology],
        services=ordered,
        dry_runs_seen=sum(
            1 for row in [*runs, *dry_evacuations] if row.kind in (DRY_RUN, EVACUATION) and row.started_at >= start
        ),
        evacuations=len(counted),
        evacuation_outcomes=_counts(row.outcome or "running" for row in counted),
        runs_without_service=len(runs) - len(attributed),
        runs_read=len(runs) + len(evacuations),
        row_cap=row_cap,
        readiness_evaluations=len(evaluations),
        readiness_without_services=sum(1 for e in evaluations if not e.services),
        readiness_cap=readiness_cap,
    )


def readiness_over(evaluations: Iterable[ReadinessEvaluation], service: str, *, now: datetime) -> ServiceReadinessEvidence | None:
    """``service``'s readiness over ``evaluations`` (any order): None when none covered it. Its
    longest not-ready stretch runs from the first of consecutive evaluations that found it not
    ready to the next that found it ready (with warnings or not), or to ``now`` when none has."""
    covering = sorted(
        ((e.ended_at, e.workflow_id, e.services[service]) for e in evaluations if service in e.services),
        key=lambda item: (item[0], item[1]),
    )
    if not covering:
        return None
    stretches: list[NotReadyStretch] = []
    open_stretch: NotReadyStretch | None = None
    for at, workflow_id, state in covering:
        if state == "not_ready":
            if open_stretch is None:
                open_stretch = NotReadyStretch(started_at=at, ended_at=None, first_workflow_id=workflow_id, evaluations=0)
                stretches.append(open_stretch)
            open_stretch.evaluations += 1
        elif open_stretch is not None:
            open_stretch.ended_at = at
            open_stretch = None
    at, _, latest = covering[-1]
    return ServiceReadinessEvidence(
        evaluations=len(covering),
        ready=sum(1 for _, _, state in covering if state != "not_ready"),
        latest=latest,
        latest_at=at,
        longest_not_ready=max(stretches, key=lambda stretch: stretch.length(now), default=None),
    )


def _display_order(service: ServiceEvidence) -> tuple[int, float, str]:
    rank = {"never_drilled": 0, "overdue": 1, None: 2}[service.gap] if service.in_topology else 3
    passed = _passed_at(service.last_passed).timestamp() if service.gap == "overdue" and service.last_passed else 0.0
    return rank, passed, service.service


def _service_evidence(
    name: str,
    rows: list[RunRow],
    older_pass: RunRow | None,
    *,
    in_topology: bool,
    now: datetime,
    start: datetime,
    policy: timedelta,
    readiness: ServiceReadinessEvidence | None = None,
) -> ServiceEvidence:
    recent = [row for row in rows if row.started_at >= start]
    drills = [row for row in recent if row.kind == DRILL]
    ended = [row for row in drills if row.outcome is not None]
    passed = sum(1 for row in ended if row.outcome == PASSED)
    failovers = [row for row in recent if row.kind == FAILOVER]
    last = _last_passed(rows, older_pass)
    return ServiceEvidence(
        service=name,
        in_topology=in_topology,
        gap=_gap(last, now, policy) if in_topology else None,
        drills_run=len(ended),
        drills_passed=passed,
        drills_running=len(drills) - len(ended),
        pass_rate=passed / len(ended) if ended else None,
        drill_outcomes=_counts(str(row.outcome) for row in ended),
        last_passed=last,
        recovery_trend=_trend(recent),
        rpo_trend=_trend(recent, lambda row: row.replication_lag_seconds),
        failovers=len(failovers),
        failovers_by_trigger=_counts(row.trigger or "unknown" for row in failovers),
        failovers_not_succeeded=[
            _link(row)
            for row in sorted(failovers, key=lambda r: r.started_at, reverse=True)
            if row.outcome is not None and row.outcome != SUCCEEDED
        ],
        readiness=readiness,
    )


def _link(row: RunRow) -> RunLink:
    return RunLink(
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        trigger=row.trigger,
        outcome=row.outcome,
    )


def _passed_at(link: RunLink) -> datetime:
    return link.ended_at or link.started_at


def _last_passed(rows: list[RunRow], older_pass: RunRow | None) -> RunLink | None:
    """The newest passed drill among the service's runs and the one found outside them."""
    passes = [_link(row) for row in rows if row.kind == DRILL and row.outcome == PASSED]
    if older_pass is not None:
        passes.append(_link(older_pass))
    return max(passes, key=lambda link: (_passed_at(link), link.workflow_id), default=None)


def _gap(last: RunLink | None, now: datetime, policy: timedelta) -> Gap | None:
    if last is None:
        return "never_drilled"
    return "overdue" if now - _passed_at(last) > policy else None


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _trend(rows: list[RunRow], seconds: Callable[[RunRow], float | None] = lambda row: row.recovery_seconds) -> list[TrendPoint]:
    """The runs that measured ``seconds`` (by default their recovery), oldest first."""
    measured = [(row, value) for row in rows if (value := seconds(row)) is not None]
    return [
        TrendPoint(
            started_at=row.started_at,
            seconds=float(value),
            kind=row.kind or "unknown",
            outcome=row.outcome,
            workflow_id=row.workflow_id,
        )
        for row, value in sorted(measured, key=lambda m: (m[0].started_at, m[0].workflow_id, m[0].run_id))
    ]


# --- words and numbers, shared by both renderers -------------------------------------------


def lookback(amount: timedelta) -> str:
    """A period as ``--since`` spells it: 90d, 12h, 90m (seconds when it is not whole minutes)."""
    seconds = int(amount.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(moment: datetime) -> str:
    return utc_text(moment, seconds=False)


def _age(amount: timedelta) -> str:
    seconds = max(0, int(amount.total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d ago"
    if seconds >= 3600:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 60}m ago"


def _length(amount: timedelta) -> str:
    """A stretch of time in its two largest units: 3d 4h, 2h 10m, 5m 12s."""
    seconds = max(0, int(amount.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _secs(value: float) -> str:
    return f"{value:,.1f} s"


def _rate(service: ServiceEvidence) -> str:
    return "-" if service.pass_rate is None else f"{service.pass_rate * 100:.0f}%"


def _tally(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counts.items()) or "none"


def _last_passed_words(report: EvidenceReport, service: ServiceEvidence) -> str:
    last = service.last_passed
    if last is None:
        return "never"
    return f"{_when(_passed_at(last))} ({_age(report.now - _passed_at(last))})"


def _trend_words(trend: list[TrendPoint]) -> str:
    values = [point.seconds for point in trend]
    return (
        f"{len(values)} measured; min {_secs(min(values))}, median {_secs(statistics.median(values))}, "
        f"max {_secs(max(values))}, latest {_secs(values[-1])}"
    )


def _never_words(service: ServiceEvidence) -> str:
    tried = service.drills_run + service.drills_running
    return "no passed drill on record" + (f" ({tried} drill(s) in the window, none passed)" if tried else "")


NO_READINESS = "no readiness evaluation in the window"


def _ready_share(service: ServiceEvidence) -> str:
    """The summary's cell: the share of the evaluations that found it ready, of how many."""
    readiness = service.readiness
    return "-" if readiness is None else f"{readiness.share_ready * 100:.0f}% of {readiness.evaluations}"


def _readiness_words(service: ServiceEvidence) -> str:
    readiness = service.readiness
    if readiness is None:
        return NO_READINESS
    return (
        f"ready in {readiness.share_ready * 100:.0f}% of the {readiness.evaluations} evaluation(s) in the window "
        f"that covered it ({readiness.ready} ready, with warnings or not)"
    )


def _latest_readiness_words(readiness: ServiceReadinessEvidence) -> str:
    return f"{STATE_WORDS[readiness.latest]} ({_when(readiness.latest_at)})"


def _stretch_words(report: EvidenceReport, stretch: NotReadyStretch | None) -> str:
    """The longest not-ready stretch, without the evaluation that opened it (each renderer names it)."""
    if stretch is None:
        return "none: no evaluation in the window found it not ready"
    length = _length(stretch.length(report.now))
    found = f"{stretch.evaluations} evaluation(s) found it not ready"
    if stretch.ended_at is None:
        return f"{length}, since {_when(stretch.started_at)}: still not ready ({found})"
    return f"{length}, {_when(stretch.started_at)} to {_when(stretch.ended_at)} ({found}, then one found it ready)"


def _flag(service: ServiceEvidence) -> str:
    if not service.in_topology:
        return "not in topology"
    return {"never_drilled": "never drilled", "overdue": "overdue", None: ""}[service.gap]


def _header_lines(report: EvidenceReport) -> list[tuple[str, str]]:
    services = len(report.services)
    in_topology = services - len(report.not_in_topology)
    return [
        ("Generated at", _when(report.now)),
        ("Namespace", report.namespace or "-"),
        ("Window", f"runs started in the last {lookback(report.since)} (since {_when(report.window_start)})"),
        ("Drill policy", f"every service passes a drill at least every {lookback(report.policy)}"),
        ("Services", f"{services} ({in_topology} in the topology); gaps: {report.gaps}"),
        ("Evacuations", _evacuations_words(report)),
        ("Readiness", _readiness_header_words(report)),
    ]


def _readiness_header_words(report: EvidenceReport) -> str:
    if not report.readiness_evaluations:
        return "no readiness evaluation ended in the window"
    return (
        f"{report.readiness_evaluations} evaluation(s) ended in the window; "
        "a service ready with warnings counts as ready, as the evac_plan_ready gauge counts it"
    )


def _evacuations_words(report: EvidenceReport) -> str:
    """How many region evacuations started in the window, and how they ended."""
    if not report.evacuations:
        return "none in the window"
    return f"{report.evacuations} in the window; {_tally(report.evacuation_outcomes)}"


def _policy_sentence(report: EvidenceReport) -> str:
    since = _when(report.now - report.policy)
    return f"Each service in the topology must have passed a drill within the last {lookback(report.policy)} (since {since})."


def _notes(report: EvidenceReport) -> list[str]:
    notes = [f"Dry runs seen in the window: {report.dry_runs_seen} (not counted: a dry run changes nothing)."]
    if report.runs_without_service:
        notes.append(f"{report.runs_without_service} run(s) recorded no service and are not counted.")
    if report.row_cap is not None:
        notes.append(
            f"Only the newest {report.row_cap:,} runs were read: older runs in the window are not counted "
            "(the last passed drill of each service was still looked up)."
        )
    if report.readiness_without_services:
        notes.append(
            f"{report.readiness_without_services} readiness evaluation(s) in the window recorded no service's state "
            "(evaluated before Evac recorded them) and are not counted."
        )
    if report.readiness_cap is not None:
        notes.append(
            f"Only the newest {report.readiness_cap:,} readiness evaluations were read: older ones in the window are not counted."
        )
    if report.not_in_topology:
        notes.append(f"Not in the topology (reported, never flagged as gaps): {', '.join(report.not_in_topology)}.")
    return notes


# --- Markdown -----------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#"} | {"\n": " ", "\r": " "})


def _md(value: object) -> str:
    """Text that Markdown shows as it is ('|' is escaped by the table that holds it)."""
    return visible(str(value)).translate(_MD_SPECIAL)


def _code(value: object) -> str:
    """An identifier (workflow id, outcome …) as an inline code span, fenced past any backticks in it."""
    text = str(value).replace("\n", " ").replace("\r", " ")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_tally(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{_code(key)} {count}" for key, count in counts.items()) or "none"


def render_markdown(report: EvidenceReport) -> str:
    """The report as Markdown: header, Gaps, summary table, each service, notes."""
    parts = [
        _md_header(report),
        _md_gaps(report),
        _md_summary(report),
        "## Services",
        *(_md_service(report, service) for service in report.services),
        _md_notes(report),
    ]
    return "\n\n".join(parts) + "\n"


def _md_header(report: EvidenceReport) -> str:
    lines = [f"- {label}: {_md(value)}" for label, value in _header_lines(report)]
    return "# Evac evidence report\n\n" + "\n".join(lines)


def _md_gaps(report: EvidenceReport) -> str:
    lines = ["## Gaps", "", _md(_policy_sentence(report)), ""]
    if not report.gaps:
        lines.append(f"No gaps: every service in the topology passed a drill within the last {lookback(report.policy)}.")
        return "\n".join(lines)
    by_name = {service.service: service for service in report.services}
    for name in report.never_drilled:
        lines.append(f"- **Never drilled**: {_md(name)}: {_md(_never_words(by_name[name]))}")
    for name in report.overdue:
        last = by_name[name].last_passed
        assert last is not None
        lines.append(
            f"- **Overdue**: {_md(name)}: last passed drill {_last_passed_words(report, by_name[name])}, "
            f"workflow {_code(last.workflow_id)}, run {_code(last.run_id)}"
        )
    return "\n".join(lines)


def _md_table(headings: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; the cells are Markdown already (their '|' escaped here, as GFM asks even inside code)."""
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_summary(report: EvidenceReport) -> str:
    headings = [
        "Service",
        "Flag",
        "Drills ended",
        "Passed",
        "Pass rate",
        "Last passed drill",
        "Failovers",
        "Not succeeded",
        "Ready (evaluations)",
    ]
    rows = [
        [
            _md(s.service),
            _flag(s) or "-",
            str(s.drills_run),
            str(s.drills_passed),
            _rate(s),
            _last_passed_words(report, s),
            str(s.failovers),
            str(len(s.failovers_not_succeeded)),
            _ready_share(s),
        ]
        for s in report.services
    ]
    return "## Summary\n\n" + _md_table(headings, rows)


def _md_service(report: EvidenceReport, service: ServiceEvidence) -> str:
    flag = f" ({_flag(service)})" if _flag(service) else ""
    lines = [f"### {_md(service.service)}{_md(flag)}", ""]
    lines.append(
        f"- Drills: {service.drills_run} ended in the window, {service.drills_passed} passed (pass rate {_rate(service)}); "
        f"outcomes: {_md_tally(service.drill_outcomes)}; running: {service.drills_running}"
    )
    last = service.last_passed
    where = f", workflow {_code(last.workflow_id)}, run {_code(last.run_id)}" if last else ""
    lines.append(f"- Last passed drill: {_md(_last_passed_words(report, service))}{where}")
    lines.append(f"- Failovers: {service.failovers}; by trigger: {_md_tally(service.failovers_by_trigger)}")
    lines.append(f"- Failovers that did not succeed: {len(service.failovers_not_succeeded)}")
    lines += [
        f"  - {_code(link.workflow_id)} run {_code(link.run_id)}, started {_when(link.started_at)}, "
        f"trigger {_code(link.trigger or '-')}: {_code(link.outcome)}"
        for link in service.failovers_not_succeeded
    ]
    lines += _md_readiness(report, service)
    if service.rpo_trend:
        lines.append(f"- Replication lag before role changes (RPO, oldest first): {_trend_words(service.rpo_trend)}")
    if not service.recovery_trend:
        lines.append("- Recovery time: none measured in the window")
        return "\n".join(lines)
    lines += [f"- Recovery time (oldest first): {_trend_words(service.recovery_trend)}", ""]
    rows = [
        [_when(p.started_at), _secs(p.seconds), _code(p.kind), _code(p.outcome or "running"), _code(p.workflow_id)]
        for p in service.recovery_trend
    ]
    lines.append(_md_table(["Started", "Recovery", "Kind", "Outcome", "Workflow"], rows))
    return "\n".join(lines)


def _md_readiness(report: EvidenceReport, service: ServiceEvidence) -> list[str]:
    lines = [f"- Readiness: {_md(_readiness_words(service))}"]
    readiness = service.readiness
    if readiness is None:
        return lines
    stretch = readiness.longest_not_ready
    first = f", first found by evaluation {_code(stretch.first_workflow_id)}" if stretch else ""
    lines.append(f"- Longest not-ready stretch: {_md(_stretch_words(report, stretch))}{first}")
    lines.append(f"- Latest readiness: {_md(_latest_readiness_words(readiness))}")
    return lines


def _md_notes(report: EvidenceReport) -> str:
    return "## Notes\n\n" + "\n".join(f"- {_md(note)}" for note in _notes(report))


# --- HTML ---------------------------------------------------------------------------------


def _h(value: object) -> str:
    return html.escape(str(value), quote=True)


_CSS = """
:root { --ink: #1c2430; --muted: #5b6675; --line: #d5dbe3; --bad: #b42318; --bad-bg: #fdecea;
  --warn: #9a5b00; --warn-bg: #fff4e0; --ok: #1f7a3d; --drill: #2563eb; --failover: #d97706; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f6f7f9;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 20px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 0 0 8px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.never-drilled { color: var(--bad); background: var(--bad-bg); }
.badge.overdue { color: var(--warn); background: var(--warn-bg); }
.badge.not-in-topology { color: var(--muted); background: #eef1f5; }
section.gaps { border: 2px solid var(--bad); border-radius: 8px; padding: 4px 18px 8px; }
section.gaps.none { border-color: var(--ok); }
section.gaps h2 { border: 0; margin-top: 10px; }
ul.gap-list li { margin: 4px 0; }
p.ok { color: var(--ok); font-weight: 600; }
.muted { color: var(--muted); }
article.service { border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
svg.trend { display: block; width: 100%; max-width: 680px; height: auto; }
svg.trend text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.trend .axis { stroke: #8a94a3; stroke-width: 1; }
svg.trend .grid { stroke: var(--line); stroke-width: 1; }
svg.trend .trend-line { fill: none; stroke: #94a3b8; stroke-width: 1.5; }
svg.trend .trend-point { stroke: #fff; stroke-width: 1.5; }
svg .kind-drill { fill: var(--drill); }
svg .kind-failover, svg .kind-unknown { fill: var(--failover); }
svg.trend .trend-point.not-ok { stroke: var(--bad); stroke-width: 2.5; }
.legend { font-size: 13px; color: var(--muted); }
.legend svg { vertical-align: middle; }
@page { size: A4; margin: 14mm; }
@media print {
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  article.service, section.gaps, tr, svg.trend { break-inside: avoid; }
  thead { display: table-header-group; }
}
""".strip()


def render_html(report: EvidenceReport) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; nothing fetched)."""
    title = f"Evac evidence report: {report.namespace or 'namespace -'}, {_when(report.now)}"
    body = "\n".join(
        [
            _html_header(report),
            _html_gaps(report),
            _html_summary(report),
            '<section id="services">\n<h2>Services</h2>',
            *(_html_service(report, service) for service in report.services),
            "</section>",
            _html_notes(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _html_facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; the values are HTML already."""
    items = "".join(f"<dt>{_h(label)}</dt><dd>{value}</dd>" for label, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def _html_header(report: EvidenceReport) -> str:
    facts = _html_facts((label, _h(value)) for label, value in _header_lines(report))
    return f"<header>\n<h1>Evac evidence report</h1>\n{facts}\n</header>"


def _badge(service: ServiceEvidence) -> str:
    flag = _flag(service)
    return f' <span class="badge {flag.replace(" ", "-")}">{_h(flag)}</span>' if flag else ""


def _html_link(link: RunLink) -> str:
    return f"workflow <code>{_h(link.workflow_id)}</code>, run <code>{_h(link.run_id)}</code>"


def _html_gaps(report: EvidenceReport) -> str:
    head = f'<h2>Gaps</h2>\n<p class="policy">{_h(_policy_sentence(report))}</p>'
    if not report.gaps:
        ok = f"No gaps: every service in the topology passed a drill within the last {lookback(report.policy)}."
        return f'<section id="gaps" class="gaps none">\n{head}\n<p class="ok">{_h(ok)}</p>\n</section>'
    by_name = {service.service: service for service in report.services}
    items = [
        f'<li class="gap never-drilled"><span class="badge never-drilled">never drilled</span> '
        f'<strong class="gap-service">{_h(name)}</strong>: {_h(_never_words(by_name[name]))}</li>'
        for name in report.never_drilled
    ]
    for name in report.overdue:
        service = by_name[name]
        assert service.last_passed is not None
        items.append(
            f'<li class="gap overdue"><span class="badge overdue">overdue</span> '
            f'<strong class="gap-service">{_h(name)}</strong>: '
            f"last passed drill {_h(_last_passed_words(report, service))}, {_html_link(service.last_passed)}</li>"
        )
    count = f"<p><strong>{report.gaps} gap(s)</strong> among the services in the topology.</p>"
    return (
        f'<section id="gaps" class="gaps">\n{head}\n{count}\n<ul class="gap-list">\n' + "\n".join(items) + "\n</ul>\n</section>"
    )


def _html_table(headings: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    """A table; the cells are HTML already; ``numeric``: the columns aligned right."""

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{_h(text)}</th>" for i, text in enumerate(headings))
    body = "\n".join("<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _html_summary(report: EvidenceReport) -> str:
    headings = ["Service", "Drills ended", "Passed", "Pass rate", "Last passed drill", "Failovers", "Not succeeded", "Ready"]
    rows = [
        [
            f'<a href="#service-{_h(s.service)}">{_h(s.service)}</a>{_badge(s)}',
            str(s.drills_run),
            str(s.drills_passed),
            _rate(s),
            _h(_last_passed_words(report, s)),
            str(s.failovers),
            str(len(s.failovers_not_succeeded)),
            _h(_ready_share(s)),
        ]
        for s in report.services
    ]
    table = _html_table(headings, rows, numeric=frozenset({1, 2, 3, 5, 6, 7}))
    return f'<section id="summary">\n<h2>Summary</h2>\n{table}\n</section>'


def _html_service(report: EvidenceReport, service: ServiceEvidence) -> str:
    last = service.last_passed
    facts = _html_facts(
        [
            ("Drills ended in the window", f"{service.drills_run} ({service.drills_passed} passed, pass rate {_rate(service)})"),
            ("Drill outcomes", _h(_tally(service.drill_outcomes))),
            ("Drills running", str(service.drills_running)),
            ("Last passed drill", _h(_last_passed_words(report, service)) + (f", {_html_link(last)}" if last else "")),
            ("Failovers", f"{service.failovers}; by trigger: {_h(_tally(service.failovers_by_trigger))}"),
            ("Failovers not succeeded", str(len(service.failovers_not_succeeded))),
            *_html_readiness(report, service),
            *([("Replication lag before role changes (RPO)", _h(_trend_words(service.rpo_trend)))] if service.rpo_trend else []),
        ]
    )
    parts = [
        f'<article class="service" id="service-{_h(service.service)}" data-service="{_h(service.service)}">',
        f"<h3>{_h(service.service)}{_badge(service)}</h3>",
        facts,
        _html_failures(service),
        _html_trend(report, service),
        "</article>",
    ]
    return "\n".join(part for part in parts if part)


def _html_readiness(report: EvidenceReport, service: ServiceEvidence) -> list[tuple[str, str]]:
    """The readiness facts; the values are HTML."""
    facts = [("Readiness in the window", _h(_readiness_words(service)))]
    readiness = service.readiness
    if readiness is None:
        return facts
    stretch = readiness.longest_not_ready
    first = f", first found by evaluation <code>{_h(stretch.first_workflow_id)}</code>" if stretch else ""
    facts.append(("Longest not-ready stretch", _h(_stretch_words(report, stretch)) + first))
    facts.append(("Latest readiness", _h(_latest_readiness_words(readiness))))
    return facts


def _html_failures(service: ServiceEvidence) -> str:
    if not service.failovers_not_succeeded:
        return ""
    rows = [
        [
            f"<code>{_h(link.workflow_id)}</code>",
            f"<code>{_h(link.run_id)}</code>",
            _h(_when(link.started_at)),
            _h(link.trigger or "-"),
            _h(link.outcome),
        ]
        for link in service.failovers_not_succeeded
    ]
    return "<h4>Failovers that did not succeed</h4>\n" + _html_table(["Workflow", "Run", "Started", "Trigger", "Outcome"], rows)


def _html_trend(report: EvidenceReport, service: ServiceEvidence) -> str:
    trend = service.recovery_trend
    if not trend:
        return '<h4>Recovery time</h4>\n<p class="muted">No recovery measured in the window.</p>'
    rows = [
        [
            _h(_when(p.started_at)),
            _h(_secs(p.seconds)),
            _h(p.kind),
            _h(p.outcome or "running"),
            f"<code>{_h(p.workflow_id)}</code>",
        ]
        for p in trend
    ]
    return "\n".join(
        [
            f"<h4>Recovery time</h4>\n<p>{_h(_trend_words(trend))}</p>",
            trend_svg(service.service, trend, start=report.window_start, end=report.now),
            _LEGEND,
            _html_table(["Started", "Recovery", "Kind", "Outcome", "Workflow"], rows, numeric=frozenset({1})),
        ]
    )


_LEGEND = (
    '<p class="legend">'
    '<svg width="12" height="12" aria-hidden="true"><circle class="kind-drill" cx="6" cy="6" r="5"/></svg> drill '
    '<svg width="12" height="12" aria-hidden="true"><circle class="kind-failover" cx="6" cy="6" r="5"/></svg> failover '
    '<svg width="14" height="14" aria-hidden="true">'
    '<circle cx="7" cy="7" r="5" fill="#fff" stroke="#b42318" stroke-width="2.5"/></svg>'
    " did not pass or succeed</p>"
)

_W, _H = 680, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 16, 46


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4, 8 × 10^k that is at least ``value`` (at least 1): its quarters, the
    gridlines, are round numbers."""
    if value <= 1:
        return 1.0
    power = 10.0 ** (len(str(int(value))) - 1)
    for step in (1.0, 2.0, 4.0, 8.0, 10.0):
        if value <= step * power:
            return step * power
    return 10 * power


def trend_svg(service: str, trend: Sequence[TrendPoint], *, start: datetime, end: datetime) -> str:
    """Recovery seconds as an inline SVG: one ``circle.trend-point`` per measurement, joined oldest
    first; y from 0 s, gridlines with their labels in seconds. x spans the measurements, not the
    whole window ``start``..``end`` (a day's runs in a 90-day window would stand in one vertical
    line): the window is named in the title and under the axis."""
    window_start, window_end = start, end
    first, last = min(p.started_at for p in trend), max(p.started_at for p in trend)
    pad = max((last - first) * 0.05, timedelta(minutes=1))
    start, end = max(first - pad, window_start), min(last + pad, window_end)
    if end <= start:
        start, end = first - timedelta(minutes=1), first + timedelta(minutes=1)
    top = _nice_ceiling(max(point.seconds for point in trend))
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    tick = "%Y-%m-%d" if end - start > timedelta(days=3) else "%m-%d %H:%M"

    def x(moment: datetime) -> float:
        fraction = min(max((moment - start).total_seconds() / span, 0.0), 1.0)
        return _LEFT + fraction * plot_w

    def y(seconds: float) -> float:
        return _TOP + plot_h - min(seconds / top, 1.0) * plot_h

    label = f"Recovery seconds of {service}, runs in the window {_when(window_start)} to {_when(window_end)}"
    parts = [f'<svg class="trend" data-service="{_h(service)}" viewBox="0 0 {_W} {_H}" role="img"><title>{_h(label)}</title>']
    for i in range(5):
        value = top * i / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y(value):.1f}" x2="{_W - _RIGHT}" y2="{y(value):.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_h(f"{value:g} s")}</text>'
        )
    bottom = _TOP + plot_h
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>')
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}"/>')
    for fraction, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        moment = start + (end - start) * fraction
        parts.append(
            f'<text x="{_LEFT + fraction * plot_w:.1f}" y="{bottom + 16}" text-anchor="{anchor}">'
            f"{_h(moment.astimezone(UTC).strftime(tick))}</text>"
        )
    parts.append(
        f'<text x="14" y="{_TOP + plot_h / 2:.1f}" text-anchor="middle" transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})">'
        "recovery (seconds)</text>"
    )
    axis = f"run started (UTC); window {_when(window_start)} to {_when(window_end)}"
    parts.append(f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 6}" text-anchor="middle">{_h(axis)}</text>')
    points = " ".join(f"{x(p.started_at):.1f},{y(p.seconds):.1f}" for p in trend)
    parts.append(f'<polyline class="trend-line" points="{points}"/>')
    for p in trend:
        good = p.outcome in (PASSED, SUCCEEDED, None)
        classes = f"trend-point kind-{_h(p.kind if p.kind in (DRILL, FAILOVER) else 'unknown')}{'' if good else ' not-ok'}"
        tip = f"{_when(p.started_at)}: {_secs(p.seconds)}, {p.kind}, {p.outcome or 'running'} ({p.workflow_id})"
        parts.append(
            f'<circle class="{classes}" cx="{x(p.started_at):.1f}" cy="{y(p.seconds):.1f}" r="5">'
            f"<title>{_h(tip)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_notes(report: EvidenceReport) -> str:
    items = "\n".join(f"<li>{_h(note)}</li>" for note in _notes(report))
    return f'<section id="notes">\n<h2>Notes</h2>\n<ul>\n{items}\n</ul>\n</section>'


__all__ = [
    "EvidenceReport",
    "NotReadyStretch",
    "ReadinessEvaluation",
    "RunLink",
    "ServiceEvidence",
    "ServiceReadinessEvidence",
    "TrendPoint",
    "build_report",
    "lookback",
    "readiness_over",
    "render_html",
    "render_markdown",
    "trend_svg",
]
