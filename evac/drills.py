"""A drill's record and the pure rules that judge it.

A DR drill fails a service over by its plan, holds the failed-over state for a bake time
while stop conditions are checked, fails back by running the recorded undos on purpose,
verifies that every touched resource reads back as it was, and reports how fast recovery
and failback were. Activities only *measure* a stop condition (a healthy count, an HTTP
status, a PromQL value); whether that is a breach is decided here, in code the workflow
and the tests share.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from evac.plan import BackendHealthCondition, HttpProbeCondition, Plan, PrometheusCondition, ScaleTargetStep, StopCondition


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DrillOutcome(StrEnum):
    PASSED = "passed"  # failed over, held, failed back, every resource verified as it was
    NOT_READY = "not_ready"  # readiness refused it; nothing changed
    ABORTED = "aborted"  # an operator aborted it; everything it changed was restored
    ROLLED_BACK = "rolled_back"  # a step failed or a stop condition breached; everything restored
    FAILED = "failed"  # failback left a resource unlike its before-state, or the RTO was missed (when enforced)


class DrillPhase(StrEnum):
    READINESS = "readiness"
    FAILOVER = "failover"
    BAKE = "bake"
    FAILBACK = "failback"
    VERIFY = "verify"
    DONE = "done"


class ConditionReading(_Model):
    """What one check of one stop condition observed (measured by an activity, not judged)."""

    index: int
    value: float | None = Field(description="Healthy backends, HTTP status, or the PromQL sample; None: no value")
    detail: str = Field(default="", description="Why there is no value (an error, no sample), or what was read")


class ConditionReadings(_Model):
    readings: list[ConditionReading]


class ConditionSummary(_Model):
    """Every check of one stop condition during the bake, summarised."""

    index: int
    label: str
    kind: str
    rule: str = Field(description="What holds, e.g. 'healthy backends in us-central1 >= 2'")
    checks: int = 0
    breaches: int = 0
    worst: float | None = Field(default=None, description="The value furthest toward a breach")
    last: str = ""


class DrillReport(_Model):
    outcome: DrillOutcome | None = None
    phase: DrillPhase = DrillPhase.READINESS
    bake_seconds: float
    bake_started_at: datetime | None = None
    bake_ends_at: datetime | None = None
    check_interval_seconds: float
    readiness: list[str] = Field(default_factory=list, description="What readiness proved, or every reason it refused")
    ready: bool | None = None
    conditions: list[ConditionSummary] = Field(default_factory=list)
    breach: str | None = Field(default=None, description="The stop condition that ended the bake, with value and threshold")
    recovery_seconds: float | None = Field(
        default=None, description="First mutating step started → last failover step done (target serving, verified)"
    )
    failback_seconds: float | None = Field(default=None, description="Failback started → every resource verified")
    rto_target_seconds: float | None = None
    over_rto: bool | None = None
    rpo_seconds: float | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The largest replication lag the data steps observed just before changing roles (None: none read)",
    )
    rpo_target_seconds: float | None = Field(default=None, exclude_if=lambda v: v is None)
    rpo_synchronous: bool = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="The drill's data steps changed only databases that replicate synchronously (a Spanner leader): "
        "no lag to measure",
    )
    over_rpo: bool | None = Field(default=None, exclude_if=lambda v: v is None)
    verification: list[str] = Field(default_factory=list, description="Each touched resource, as verified after failback")
    mismatches: list[str] = Field(default_factory=list, description="Resources that did not read back as before")
    ungraceful: bool = Field(
        default=False, exclude_if=lambda v: not v, description="Rehearsed as if the source region's API were gone"
    )
    would_skip: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="An ungraceful drill: each read and step of the failover that needs the source region's API, and "
        "so would be skipped in a real outage of it",
    )


def capacity_proof(plan: Plan, source_healthy: int, target_healthy: int) -> tuple[bool, str]:
    """Whether the target, after the plan's scale-ups, would have at least the drill's
    ``min_target_ratio`` of the source's healthy backends now; and the proof in words."""
    ratio = plan.drill_settings.readiness.min_target_ratio
    scale_to = max((s.min_size for s in plan.steps if isinstance(s, ScaleTargetStep)), default=0)
    projected = max(target_healthy, scale_to)
    required = math.ceil(ratio * source_healthy - 1e-9)
    proof = (
        f"capacity: after scale-up {plan.target} would have {projected} healthy backends; "
        f"{ratio:g} × {source_healthy} healthy in {plan.source} requires {required}"
    )
    return projected >= required, proof


def rule_text(condition: StopCondition, target: str) -> str:
    """What must hold, in words."""
    if isinstance(condition, BackendHealthCondition):
        return f"healthy backends in {condition.region or target} >= {condition.min_healthy}"
    if isinstance(condition, HttpProbeCondition):
        return f"GET {condition.url} answers {condition.expect_status}"
    bounds = []
    if condition.at_least is not None:
        bounds.append(f">= {condition.at_least:g}")
    if condition.at_most is not None:
        bounds.append(f"<= {condition.at_most:g}")
    return f"{condition.query} {' and '.join(bounds)}"


def holds(condition: StopCondition, reading: ConditionReading) -> bool:
    """Whether a reading satisfies its condition. No value never satisfies one: a check that
    cannot prove the service healthy stops the drill (rolling back is the safe direction)."""
    value = reading.value
    if value is None or math.isnan(value):
        return False
    if isinstance(condition, BackendHealthCondition):
        return value >= condition.min_healthy
    if isinstance(condition, HttpProbeCondition):
        return int(value) == condition.expect_status
    assert isinstance(condition, PrometheusCondition)
    if condition.at_least is not None and value < condition.at_least:
        return False
    if condition.at_most is not None and value > condition.at_most:
        return False
    return True


def worse(condition: StopCondition, a: float | None, b: float | None) -> float | None:
    """The reading further toward a breach (for the summary's 'worst')."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(condition, HttpProbeCondition):
        return b if abs(b - condition.expect_status) > abs(a - condition.expect_status) else a
    if isinstance(condition, PrometheusCondition) and condition.at_least is None:
        return max(a, b)
    return min(a, b)


def breach_text(condition: StopCondition, label: str, reading: ConditionReading, target: str) -> str:
    observed = "no value" if reading.value is None else f"{reading.value:g}"
    detail = f" ({reading.detail})" if reading.detail else ""
    return f"stop condition '{label}' breached: observed {observed}{detail}; required {rule_text(condition, target)}"
