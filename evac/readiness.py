"""Readiness: whether a plan would work now, found out on a Tuesday afternoon rather than at 3 a.m.

An evaluation reads, for each service of a plan, what a run of it would touch (issue 24): that
every resource exists and is wired as the topology says, the capacity a drill would prove, the
target region's room for the plan's scale-up, the databases' roles. It changes nothing. Each
problem is a :class:`Finding` naming its service, resource and a sentence; a service is
``not_ready`` with any finding of that severity, ``warnings`` with only warnings, else ``ready``.

Pure code: the models, the verdicts and their words. The reads are ``activities/readiness.py``'s;
``workflows/readiness.py`` runs one evaluation of a set of plans.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evac.plan import Plan
from evac.resources import StepContext
from evac.topology import ServiceTopology

State = Literal["ready", "warnings", "not_ready"]
Severity = Literal["not_ready", "warning"]
EVALUATE_READINESS = "evaluate_readiness"
PREVIOUS_READINESS = "previous_readiness"
LAST_PASSED_DRILL = "last_passed_drill"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Model):
    service: str
    resource: str = Field(description="What the finding is about, as the run would name it")
    severity: Severity
    text: str = Field(description="One sentence: what is wrong and what a run would meet")

    def line(self) -> str:
        return f"{self.resource}: {self.text}" if self.resource else self.text


class EvaluateService(_Model):
    """One service of one plan, to evaluate against live state (the activity's input)."""

    context: StepContext
    plan: Plan
    service: str
    project: str
    topology: ServiceTopology


class ServiceReadiness(_Model):
    service: str
    state: State
    findings: list[Finding] = Field(default_factory=list)
    checked: list[str] = Field(default_factory=list, description="What was checked and held, in words")


class PlanReadiness(_Model):
    file: str
    plan: str
    digest: str
    state: State
    services: list[ServiceReadiness]


class PlanToEvaluate(_Model):
    file: str
    plan: Plan
    project: str
    topologies: dict[str, ServiceTopology] = Field(description="Each service's slice of the topology")


class ReadinessInput(_Model):
    plans: list[PlanToEvaluate] = Field(min_length=1)
    schedule_id: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The readiness schedule that started it ('evac readiness serve')",
    )
    drill_policy: timedelta | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Each service passes a drill at least this often (the drill_policy setting); None: not checked",
    )


class LastPassedDrill(_Model):
    service: str


class DrillSeen(_Model):
    """The service's newest passed drill that Temporal's visibility finds (None: none)."""

    at: datetime | None = None
    workflow_id: str | None = None


class PreviousReadiness(_Model):
    """Ask for the plans' states at a schedule's latest evaluation that has ended."""

    schedule_id: str


class PreviousStates(_Model):
    states: dict[str, State] | None = Field(description="Each plan file's state then (None: no evaluation has ended)")


# The memo key under which an evaluation leaves each plan's state (``{file: state}``), so that
# ``evac readiness status`` can tell since when a plan has been as it is without reading histories.
MEMO_STATES = "readiness_states"
# ... and each plan's state by its digest, so that a run of the plan can find its latest evaluation.
MEMO_DIGESTS = "readiness_digests"
# ... and each service's state (``{service: state}``, its worst across the evaluation's plans), so
# that ``evac audit report`` can tell each service's readiness over a window from visibility alone.
MEMO_SERVICES = "readiness_services"


class ReadinessReport(_Model):
    evaluated_at: datetime
    plans: list[PlanReadiness]

    @property
    def state(self) -> State:
        return worst(p.state for p in self.plans)


class ServiceCheck(_Model):
    """What the activity found for one service: its findings and what held."""

    findings: list[Finding] = Field(default_factory=list)
    checked: list[str] = Field(default_factory=list)


_ORDER: dict[State, int] = {"ready": 0, "warnings": 1, "not_ready": 2}


def worst(states: Iterable[State]) -> State:
    return max(states, key=lambda s: _ORDER[s], default="ready")


def state_of(findings: Iterable[Finding]) -> State:
    severities = {f.severity for f in findings}
    if "not_ready" in severities:
        return "not_ready"
    return "warnings" if severities else "ready"


def service_readiness(service: str, check: ServiceCheck) -> ServiceReadiness:
    return ServiceReadiness(service=service, state=state_of(check.findings), findings=check.findings, checked=check.checked)


def service_states(plans: Iterable[PlanReadiness]) -> dict[str, State]:
    """Each service's worst state across ``plans`` (a service may be in more than one), by name."""
    found: dict[str, list[State]] = {}
    for plan in plans:
        for service in plan.services:
            found.setdefault(service.service, []).append(service.state)
    return {name: worst(found[name]) for name in sorted(found)}


def plan_readiness(item: PlanToEvaluate, services: list[ServiceReadiness]) -> PlanReadiness:
    return PlanReadiness(
        file=item.file,
        plan=item.plan.name,
        digest=item.plan.digest(),
        state=worst(s.state for s in services),
        services=services,
    )


STATE_WORDS: dict[State, str] = {"ready": "ready", "warnings": "ready, with warnings", "not_ready": "NOT READY"}


def change_detail(plan: PlanReadiness, before: State | None) -> str:
    """What a readiness notification says: the change, and the first findings."""
    was = STATE_WORDS[before] if before is not None else "not evaluated"
    found = [f"{f.service}: {f.line()}" for s in plan.services for f in s.findings]
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return f"{plan.file}: was {was}, now {STATE_WORDS[plan.state]}" + (": " + "; ".join(found[:3]) + more if found else "")


def report_lines(report: ReadinessReport) -> list[str]:
    """The report in words: a line per plan, per service, and per finding."""
    lines: list[str] = []
    for plan in report.plans:
        lines.append(f"{plan.file}: plan '{plan.plan}': {STATE_WORDS[plan.state]}")
        for service in plan.services:
            lines.append(f"  {service.service}: {STATE_WORDS[service.state]}")
            lines += [f"    {'NOT READY' if f.severity == 'not_ready' else 'warning'}: {f.line()}" for f in service.findings]
            lines += [f"    ok: {line}" for line in service.checked]
    return lines
