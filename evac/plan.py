"""The plan: an ordered list of failover steps for one or more services.

Plans are data, validated before anything runs: field by field here, and against a
topology by :func:`check_plan`. Every error names the file, the place and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from evac.approvals import approver_problem
from evac.blackouts import BlackoutWindow
from evac.document_types import Count, Region, StrictModel
from evac.documents import DocumentError, InvalidDocument, Problem, did_you_mean, read_yaml, rule_violations, validate
from evac.topology import ResourceName, Topology

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?\Z")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?\Z")
_HOW = "use seconds or text like '30s', '5m', '1h30m'"
MAX_DURATION = timedelta(days=30)


def parse_duration(value: Any) -> timedelta:
    """``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"`` -> timedelta (to the microsecond, at most
    30 days). Refuses anything else with a message saying what is wrong."""
    if isinstance(value, timedelta):
        _seconds(value.total_seconds())  # the same bounds
        return value
    if value is None:
        raise ValueError(f"no duration given ({_HOW})")
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s', '5m', '1h30m'")
    if isinstance(value, (int, float)):
        return _seconds(value)
    if isinstance(value, str):
        text = value.strip()
        if _SECONDS.match(text):
            return _seconds(float(text))
        match = _DURATION.match(text)
        if match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            return _seconds(h * 3600 + m * 60 + s)
    raise ValueError(f"'{value}' is not a duration ({_HOW})")


def _seconds(seconds: float) -> timedelta:
    """A number of seconds as a duration; the bounds are checked first (timedelta overflows)."""
    if seconds != seconds:  # NaN (math.isnan would overflow on a huge int)
        raise ValueError(f"NaN is not a duration ({_HOW})")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError("a duration cannot be longer than 30 days (720h)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``"1h30m"``, ``"0.25s"``, ``"0.00001s"``.

    Seconds are written in fixed point to the microsecond, so every duration round-trips exactly.
    """
    micros = value // timedelta(microseconds=1)
    h, rest = divmod(micros, 3600 * 10**6)
    m, rest = divmod(rest, 60 * 10**6)
    s, us = divmod(rest, 10**6)
    text = "".join(f"{n}{unit}" for n, unit in ((h, "h"), (m, "m")) if n)
    if us:
        return text + f"{s}.{us:06d}".rstrip("0") + "s"
    return text + (f"{s}s" if s or not text else "")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


class _Step(StrictModel):
    name: str | None = Field(default=None, description="A label shown in progress and history")
    # A step whose change has no undo: once it is sent, the run is past its point of no return.
    IRREVERSIBLE: ClassVar[bool] = False

    def label(self, index: int) -> str:
        return self.name or f"{index + 1}. {self.kind}"  # type: ignore[attr-defined]


class ScaleTargetStep(_Step):
    """Resize the target region's instance group to at least ``min_size``."""

    kind: Literal["scale_target"]
    min_size: Count = Field(ge=1, le=1000)


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


class VerifyHealthStep(_Step):
    """Wait until at least ``min_healthy`` backends in ``region`` are healthy, or fail at ``timeout``."""

    kind: Literal["verify_health"]
    region: Region | None = Field(default=None, description="Defaults to the plan's target")
    min_healthy: Count = Field(ge=1, le=1000)
    timeout: Duration = timedelta(minutes=5)
    interval: Annotated[Duration, AfterValidator(_longer_than_zero)] = timedelta(seconds=5)

    @model_validator(mode="after")
    def _timeout(self) -> VerifyHealthStep:
        if self.timeout < self.interval:
            message = f"timeout must be at least one interval ({format_duration(self.interval)}) long"
            raise rule_violations(type(self).__name__, [(("timeout",), message)])
        return self


class DrainStep(_Step):
    """Set the capacity scaler of the region's backends (0 drains fully; a fraction drains gradually)."""

    kind: Literal["drain"]
    region: Region | None = Field(default=None, description="Defaults to the plan's source")
    # Strict: YAML reads 'off' as false, and false must never become 0 (a full drain).
    capacity_scaler: Annotated[float, Strict()] = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("capacity_scaler")
    @classmethod
    def _scaler(cls, value: float) -> float:
        if 0.0 < value < 0.1:
            raise ValueError("capacity_scaler must be 0 or between 0.1 and 1.0 (Google Cloud's rule)")
        return value


class ShiftDnsStep(_Step):
    """Make the service's DNS record hold the target region's address."""

    kind: Literal["shift_dns"]
    ttl: Count | None = Field(default=None, ge=1, le=86400, description="Defaults to the topology's ttl")


class WaitStep(_Step):
    """Bake time: do nothing for ``duration``."""

    kind: Literal["wait"]
    duration: Duration


def _approver(entry: str) -> str:
    problem = approver_problem(entry)
    if problem is not None:
        raise ValueError(problem)
    return entry


class ApprovalStep(_Step):
    """Wait for a named person to approve (``evac approve``); ``evac reject`` fails the step and
    the run rolls back. Without a decision within ``timeout``, ``on_timeout`` decides."""

    kind: Literal["approval"]
    approvers: list[Annotated[str, AfterValidator(_approver)]] = Field(
        min_length=1, description="Who may decide: user (any host), user@host, or group:NAME (configuration approver_groups)"
    )
    timeout: Annotated[Duration, AfterValidator(_longer_than_zero)] = timedelta(hours=1)
    on_timeout: Literal["abort", "continue"] = Field(
        default="abort", description="abort: fail the step and roll back; continue: go on, the timeout recorded"
    )


# --- the data tier ------------------------------------------------------------------------


class _DataStep(_Step):
    services: list[ResourceName] | None = Field(
        default=None,
        min_length=1,
        exclude_if=lambda v: v is None,
        description="Which of the plan's services the step is for (default: all); each must have the database",
    )

    def applies_to(self, service: str) -> bool:
        return self.services is None or service in self.services


class SqlSwitchoverStep(_DataStep):
    """Planned: the target's Cloud SQL replica becomes the primary and the old primary its
    replica (Cloud SQL switchover; no data is lost). Undo: switch over back."""

    kind: Literal["sql_switchover"]
    region: Region | None = Field(default=None, description="The region whose instance becomes primary; defaults to the target")


class SqlPromoteReplicaStep(_DataStep):
    """Unplanned: promote the target's Cloud SQL replica to a primary of its own, without the
    old primary (its region is gone). It cannot be undone: the run's point of no return."""

    IRREVERSIBLE: ClassVar[bool] = True
    kind: Literal["sql_promote_replica"]
    region: Region | None = Field(default=None, description="The region whose replica is promoted; defaults to the target")
    max_replication_lag: Duration = Field(
        default=timedelta(seconds=30),
        description="Refuse to promote a replica further behind its primary than this (the data a promotion would lose)",
    )
    allow_data_loss: Annotated[bool, Strict()] = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="true: promote a replica behind by more than max_replication_lag when the source region is "
        "unreachable (its writes since the lag are lost: the run records the window)",
    )


class SqlCreateReplicaStep(_DataStep):
    """Re-protect after a promotion: create a cross-region replica of the new primary in a region
    that is back. Undo: delete the replica it created."""

    kind: Literal["sql_create_replica"]
    region: Region = Field(description="Where the replica goes (a region that answers again)")
    instance: ResourceName | None = Field(
        default=None,
        description="The new replica's name; defaults to the topology's instance of that region (which must then be gone)",
    )


class SpannerLeaderStep(_DataStep):
    """Make the target region the Spanner database's default leader (a schema change). Undo:
    set the recorded leader back."""

    kind: Literal["spanner_leader"]
    region: Region | None = Field(default=None, description="The new leader region; defaults to the target")


# The data steps that change which region takes a database's writes: the source's traffic must
# have left it before (no two writers).
PRIMARY_MOVES = frozenset({"sql_switchover", "sql_promote_replica", "spanner_leader"})


Step = Annotated[
    ScaleTargetStep
    | VerifyHealthStep
    | DrainStep
    | ShiftDnsStep
    | WaitStep
    | ApprovalStep
    | SqlSwitchoverStep
    | SqlPromoteReplicaStep
    | SqlCreateReplicaStep
    | SpannerLeaderStep,
    Field(discriminator="kind"),
]
# The kinds, derived from the union: a new kind is added there and nowhere else in this file.
STEP_CLASSES: tuple[type[_Step], ...] = get_args(get_args(Step)[0])
STEP_KINDS = frozenset(get_args(cls.model_fields["kind"].annotation)[0] for cls in STEP_CLASSES)


class Guards(StrictModel):
    """Safety checks made in preflight and again just before each mutating step."""

    min_healthy_target: Count = Field(
        default=1,
        ge=1,
        description="Healthy backends the target must have before traffic is drained or shifted to it",
    )


# Waiting longer than this on the region being left is waiting on the failed region.
MAX_SOURCE_DEADLINE = timedelta(minutes=5)
SOURCE_DEADLINE = timedelta(seconds=30)


class Retries(StrictModel):
    """How long Evac keeps retrying transient cloud errors (429, 5xx, timeouts) before a step,
    or its rollback, gives up. Time, not counts: Temporal retries with unlimited attempts
    inside the deadline; permanent errors (400, 403, 404) stop at once whatever the deadline."""

    step_deadline: Annotated[Duration, AfterValidator(_longer_than_zero)] = Field(
        default=timedelta(minutes=10), description="All attempts of one step's cloud call together"
    )
    rollback_deadline: Annotated[Duration, AfterValidator(_longer_than_zero)] = Field(
        default=timedelta(hours=1), description="All attempts of one undo together: rollback tries harder"
    )
    source_deadline: Duration = Field(
        default=SOURCE_DEADLINE,
        # Left out of the canonical plan at its default: the digests of plans written before it stay the same.
        exclude_if=lambda v: v == SOURCE_DEADLINE,
        description="All attempts of one read or change that only the source region's API serves (its regional "
        "backend service, its instance groups): a failover never waits longer on the region it leaves; what does "
        "not answer in time is recorded unreadable or skipped and the run goes on. 0: never call it",
    )
    initial_interval: Annotated[Duration, AfterValidator(_longer_than_zero)] = timedelta(seconds=1)
    maximum_interval: Duration = timedelta(seconds=30)
    # Replaced by the deadlines; still read from the inputs of runs recorded before, so that
    # their histories replay. A plan file that sets them is refused (see structure_problems).
    step_attempts: Count | None = Field(default=None, exclude_if=lambda v: v is None)
    rollback_attempts: Count | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _intervals(self) -> Retries:
        if self.maximum_interval < self.initial_interval:
            initial = format_duration(self.initial_interval)
            message = f"maximum_interval must not be shorter than initial_interval ({initial})"
            raise rule_violations(type(self).__name__, [(("maximum_interval",), message)])
        if self.source_deadline > MAX_SOURCE_DEADLINE:
            message = (
                f"source_deadline is how long a failover may wait on the region it leaves: at most "
                f"{format_duration(MAX_SOURCE_DEADLINE)}"
            )
            raise rule_violations(type(self).__name__, [(("source_deadline",), message)])
        return self


# --- drills ----------------------------------------------------------------------------


class _Condition(StrictModel):
    name: str | None = Field(default=None, description="A label shown in checks and the report")

    def label(self, index: int) -> str:
        return self.name or f"{index + 1}. {self.kind}"  # type: ignore[attr-defined]


class BackendHealthCondition(_Condition):
    """Holds while at least ``min_healthy`` backends of ``region`` are healthy."""

    kind: Literal["backend_health"]
    region: Region | None = Field(default=None, description="Defaults to the plan's target")
    min_healthy: Count = Field(ge=1, le=1000)


# An http_probe URL may start with this: the worker puts its own Google Cloud endpoint there
# (EVAC_GCP_ENDPOINT: the emulator's), so a demo plan follows the stack it runs on.
GCP_ENDPOINT = "{gcp_endpoint}"


def _http_url(value: str) -> str:
    if not re.match(r"^(https?://[^\s/]+|\{gcp_endpoint\})(/\S*)?$", value):
        raise ValueError(f"'{value}' is not an http:// or https:// URL (nor one that starts with {GCP_ENDPOINT})")
    return value


def _probe_timeout(value: timedelta) -> timedelta:
    if not timedelta(0) < value <= timedelta(minutes=1):
        raise ValueError("must be longer than 0s and at most 1m")
    return value


class HttpProbeCondition(_Condition):
    """Holds while ``url`` answers ``expect_status`` within ``timeout``. A ``url`` starting with
    ``{gcp_endpoint}`` is read at the worker's own Google Cloud endpoint (the emulator's, in a demo)."""

    kind: Literal["http_probe"]
    url: Annotated[str, AfterValidator(_http_url)]
    expect_status: Count = Field(default=200, ge=100, le=599)
    timeout: Annotated[Duration, AfterValidator(_probe_timeout)] = timedelta(seconds=5)


class PrometheusCondition(_Condition):
    """Holds while the PromQL instant query's value is within ``at_least`` / ``at_most``.

    The Prometheus server is configuration (``EVAC_PROMETHEUS_URL``), not plan data. A query
    that returns no sample, or several, cannot prove the service healthy: it counts as a breach.
    """

    kind: Literal["prometheus"]
    query: str = Field(min_length=1, max_length=4000)
    at_least: Annotated[float, Strict()] | None = None
    at_most: Annotated[float, Strict()] | None = None

    @model_validator(mode="after")
    def _bound(self) -> PrometheusCondition:
        if self.at_least is None and self.at_most is None:
            raise rule_violations(type(self).__name__, [(("at_least",), "give at_least, at_most or both")])
        if self.at_least is not None and self.at_most is not None and self.at_most < self.at_least:
            raise rule_violations(type(self).__name__, [(("at_most",), "at_most must not be below at_least")])
        return self


StopCondition = Annotated[
    BackendHealthCondition | HttpProbeCondition | PrometheusCondition,
    Field(discriminator="kind"),
]
CONDITION_CLASSES: tuple[type[_Condition], ...] = get_args(get_args(StopCondition)[0])
CONDITION_KINDS = frozenset(get_args(cls.model_fields["kind"].annotation)[0] for cls in CONDITION_CLASSES)
# A bake checks its conditions at most this often over its whole length: a check is a few
# history events, and a run's history must stay far below Temporal's limits.
MAX_BAKE_CHECKS = 1000


class Readiness(StrictModel):
    """What a drill proves before it changes anything."""

    min_target_ratio: Annotated[float, Strict()] = Field(
        default=1.0,
        ge=0.0,
        le=10.0,
        description="After the plan's scale_target steps, the target's healthy backends must be at least "
        "this share of the source's healthy backends now",
    )


class DrillSettings(StrictModel):
    """How a drill holds the failed-over state, what stops it, and the recovery target."""

    bake: Annotated[Duration, AfterValidator(_longer_than_zero)] = timedelta(minutes=10)
    check_interval: Annotated[Duration, AfterValidator(_longer_than_zero)] = timedelta(seconds=10)
    stop_conditions: list[StopCondition] = Field(default_factory=list, max_length=50)
    readiness: Readiness = Field(default_factory=Readiness)
    rto_target: Duration | None = Field(default=None, description="Recovery time objective: the report compares")
    rpo_target: Duration | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Recovery point objective: the report compares the replication lag its data steps observed",
    )
    fail_over_rto: Annotated[bool, Strict()] = Field(
        default=False, description="true: a recovery slower than rto_target fails the drill"
    )
    ungraceful: Annotated[bool, Strict()] = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="Rehearse the disaster: fail over as if the source region's API were gone (no call to it at "
        "all), then fail back; the report names what would have been skipped ('evac drill --ungraceful')",
    )

    @model_validator(mode="after")
    def _checks(self) -> DrillSettings:
        if self.bake / self.check_interval > MAX_BAKE_CHECKS:
            message = (
                f"a {format_duration(self.bake)} bake checked every {format_duration(self.check_interval)} "
                f"makes more than {MAX_BAKE_CHECKS} checks; check less often"
            )
            raise rule_violations(type(self).__name__, [(("check_interval",), message)])
        return self


class Plan(StrictModel):
    name: ResourceName
    kind: Literal["failover", "drill"] = Field(
        default="failover", description="drill: run with 'evac drill' (fail over, bake under watch, fail back, report)"
    )
    description: str = ""
    services: list[ResourceName] = Field(min_length=1)
    source: Region
    target: Region
    guards: Guards = Field(default_factory=Guards)
    retries: Retries = Field(default_factory=Retries)
    steps: list[Step] = Field(min_length=1)
    drill: DrillSettings | None = Field(default=None, description="Drill settings; defaults apply to a kind: drill plan")
    blackouts: list[BlackoutWindow] = Field(
        default_factory=list,
        max_length=100,
        exclude_if=lambda v: not v,
        description="Windows when this plan must not start (beside the blackouts file's)",
    )
    # Strict: YAML reads 'yes'/'on' as booleans too, but a typo must not pass silently either way.
    four_eyes: Annotated[bool, Strict()] = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="The identity that started a run may not approve its approval steps",
    )
    auto: Annotated[bool, Strict()] = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="An alert may start this plan with no human (evac alerts serve); otherwise it starts with an approval step",
    )
    allow_irreversible: Annotated[bool, Strict()] = Field(
        default=False,
        exclude_if=lambda v: not v,
        description="With auto: true, a step that cannot be undone may run with no approval before it; in a drill, "
        "such a step may run at all",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_service(cls, data: Any) -> Any:
        if isinstance(data, dict) and "service" in data and "services" not in data:
            data = dict(data)
            data["services"] = [data.pop("service")]
        return data

    @field_validator("target")
    @classmethod
    def _target_is_not_source(cls, target: str, info: ValidationInfo) -> str:
        # A field rule, so that it is checked even when other fields (not the source) are wrong.
        if target == info.data.get("source"):
            raise ValueError(f"the target must differ from the source ('{target}')")
        return target

    def structure_problems(self) -> list[Problem]:
        """Rules that need the whole valid plan (the field rules have been checked already)."""
        problems: list[Problem] = []
        for old, new in (("step_attempts", "step_deadline"), ("rollback_attempts", "rollback_deadline")):
            if getattr(self.retries, old) is not None:
                problems.append(
                    (
                        ("retries", old),
                        f"'{old}' was replaced by '{new}': Evac retries transient errors until a deadline, e.g. {new}: 10m",
                    )
                )
        for i, service in enumerate(self.services):
            if service in self.services[:i]:
                problems.append((("services", i), f"service '{service}' is listed twice"))
        if self.drill is not None and self.kind != "drill":
            problems.append((("drill",), "a drill section belongs to a plan with kind: drill"))
        if self.four_eyes and not any(isinstance(step, ApprovalStep) for step in self.steps):
            problems.append((("four_eyes",), "four_eyes applies to approval steps, and this plan has none"))
        problems += self._irreversible_problems()
        for i, step in enumerate(self.steps):
            for k, name in enumerate(getattr(step, "services", None) or []):
                if name not in self.services:
                    message = f"'{name}' is not one of the plan's services ({', '.join(self.services)})"
                    problems.append((("steps", i, "services", k), message))
        for i, step in enumerate(self.steps):
            if isinstance(step, ApprovalStep) and len(set(step.approvers)) < len(step.approvers):
                problems.append((("steps", i, "approvers"), "an approver is listed twice"))
            if isinstance(step, DrainStep) and step.region == self.target and step.capacity_scaler < 1:
                problems.append(
                    (
                        ("steps", i, "region"),
                        f"'{self.target}' is the plan's target; a drain must not drain the target "
                        "(capacity_scaler: 1 on the target gives it its whole share back)",
                    )
                )
        return problems

    def _irreversible_problems(self) -> list[Problem]:
        """A step that cannot be undone needs a person's approval before it (unless the plan
        runs with no human and says so), and a drill rehearses only what it can undo."""
        problems: list[Problem] = []
        approved = False
        traffic_moved = False
        for i, step in enumerate(self.steps):
            if step.kind in PRIMARY_MOVES and not traffic_moved:
                message = (
                    f"a {step.kind} step moves the database's writes to the target: drain {self.source} or shift DNS "
                    "in an earlier step, so that the source's servers no longer write (no two writers)"
                )
                problems.append((("steps", i, "kind"), message))
            if isinstance(step, DrainStep) and step.region in (None, self.source) and step.capacity_scaler == 0:
                traffic_moved = True
            traffic_moved = traffic_moved or isinstance(step, ShiftDnsStep)
            approved = approved or isinstance(step, ApprovalStep)
            if not step.IRREVERSIBLE:
                continue
            if self.kind == "drill" and not self.allow_irreversible:
                message = (
                    f"a {step.kind} step cannot be undone, and a drill fails back by undoing: use sql_switchover, "
                    "or say allow_irreversible: true to rehearse a promotion for real"
                )
                problems.append((("steps", i, "kind"), message))
            elif not approved and not (self.auto and self.allow_irreversible):
                message = (
                    f"a {step.kind} step cannot be undone (the point of no return): put an approval step before it, "
                    "or say auto: true and allow_irreversible: true"
                )
                problems.append((("steps", i, "kind"), message))
        if self.allow_irreversible and not any(step.IRREVERSIBLE for step in self.steps):
            problems.append((("allow_irreversible",), "the plan has no step that cannot be undone"))
        return problems

    def point_of_no_return(self) -> int | None:
        """The index of the first step that cannot be undone (None: every step can be)."""
        return next((i for i, step in enumerate(self.steps) if step.IRREVERSIBLE), None)

    @property
    def drill_settings(self) -> DrillSettings:
        """The drill section, or its defaults."""
        return self.drill or DrillSettings()

    def digest(self) -> str:
        """SHA-256 of the canonical plan (validated, defaults filled in, keys sorted)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# Region names all look alike (us-east1, us-central1): suggest one only for a plain typo.
REGION_TYPO = 0.85


def no_region(service: str, region: str, regions: Iterable[str]) -> str:
    has = f"(it has: {', '.join(regions)})"
    return f"service '{service}' has no region '{region}'{did_you_mean(region, regions, REGION_TYPO)} {has}"


def check_plan(plan: Plan, topology: Topology) -> list[Problem]:
    """Problems of a structurally valid plan against a topology, each with its location."""
    problems = plan.structure_problems()
    for service in dict.fromkeys(plan.services):  # a service listed twice is checked once
        i = plan.services.index(service)
        spec = topology.services.get(service)
        if spec is None:
            known = ", ".join(sorted(topology.services))
            hint = did_you_mean(service, topology.services)
            problems.append((("services", i), f"unknown service '{service}'{hint} (the topology has: {known})"))
            continue
        places: list[tuple[tuple[str | int, ...], str | None]] = [((key,), getattr(plan, key)) for key in ("source", "target")]
        places += [(("steps", j, "region"), getattr(step, "region", None)) for j, step in enumerate(plan.steps)]
        if plan.drill is not None:
            places += [
                (("drill", "stop_conditions", j, "region"), getattr(condition, "region", None))
                for j, condition in enumerate(plan.drill.stop_conditions)
            ]
        for loc, region in places:
            if region is not None and region not in spec.regions:
                problems.append((loc, no_region(service, region, spec.regions)))
        target = spec.regions.get(plan.target)
        for j, step in enumerate(plan.steps):
            if (
                isinstance(step, ScaleTargetStep)
                and target is not None
                and target.group_ref(topology.project, plan.target) is None
            ):
                message = (
                    f"service '{service}' has no resizable group in {plan.target} (its capacity there is fixed): "
                    "leave the scale step out, and let verify_health check that what is there is healthy"
                )
                problems.append((("steps", j, "kind"), message))
            problems += _data_step_problems(plan, service, spec, j, step)
    return problems


def _data_step_problems(plan: Plan, service: str, spec: Any, j: int, step: Any) -> list[Problem]:
    """A data step needs the database it acts on in the service's topology."""
    where = ("steps", j, "kind")
    if not isinstance(step, _DataStep) or not step.applies_to(service):
        return []
    if isinstance(step, SpannerLeaderStep):
        if spec.spanner is None:
            return [(where, f"service '{service}' has no Spanner database in the topology (spanner)")]
        return []
    if not isinstance(step, (SqlSwitchoverStep, SqlPromoteReplicaStep, SqlCreateReplicaStep)):
        return []
    sql = spec.cloud_sql
    if sql is None:
        return [(where, f"service '{service}' has no Cloud SQL database in the topology (cloud_sql)")]
    has = ", ".join(sql.instances)
    if isinstance(step, SqlCreateReplicaStep):
        needed = [plan.target] + ([] if step.instance else [step.region])
    else:
        needed = [plan.source, step.region or plan.target]
    return [
        (where, f"service '{service}' has no Cloud SQL instance in {region} (it has one in: {has})")
        for region in dict.fromkeys(needed)
        if region in spec.regions and region not in sql.instances
    ]


def load_plan(path: str | Path, topology: Topology | None = None) -> Plan:
    """Read and validate a plan (and check it against a topology when one is given).

    Raises InvalidDocument carrying every error found, each with file, path and line.
    """
    doc = read_yaml(path)
    errors: list[DocumentError] = []
    if "service" in doc.data and "services" in doc.data:
        errors.append(doc.error(("service",), "give either 'service' or 'services', not both"))
        doc.data = {key: value for key, value in doc.data.items() if key != "service"}
    elif "service" in doc.data:
        doc.written_as[("services", 0)] = ("service",)  # errors about the one service are at its key
    try:
        plan = validate(doc, Plan, union_tags=STEP_KINDS | CONDITION_KINDS)
    except InvalidDocument as invalid:
        raise InvalidDocument(errors + invalid.errors) from None
    problems = check_plan(plan, topology) if topology is not None else plan.structure_problems()
    errors += [doc.error(loc, message) for loc, message in problems]
    if errors:
        raise InvalidDocument(errors)
    return plan


def default_topology_path(plan_path: str | Path) -> Path:
    """A plan's topology defaults to ``topology.yaml`` beside it."""
    return Path(plan_path).parent / "topology.yaml"
