"""The plan: an ordered list of failover steps for one or more services.

Plans are data, validated before anything runs: field by field here, and against a
topology by :func:`check_plan`. Every error names the file, the place and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from evac.documents import InvalidDocument, RawDocument, read_yaml, validate
from evac.topology import Region, ResourceName, StrictModel, Topology

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: Any) -> timedelta:
    """``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` -> timedelta. Refuses anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s', '5m', '1h30m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            return timedelta(hours=h, minutes=m, seconds=s)
    raise ValueError(f"'{value}' is not a duration (use seconds or text like '30s', '5m', '1h30m')")


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``"1h30m"``, ``"0.25s"``."""
    h, rest = divmod(value.total_seconds(), 3600)
    m, s = divmod(rest, 60)
    text = "".join(f"{int(n)}{u}" for n, u in ((h, "h"), (m, "m")) if n)
    return text + (f"{round(s, 6):g}s" if s or not text else "")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


class _Step(StrictModel):
    name: str | None = Field(default=None, description="A label shown in progress and history")

    def label(self, index: int) -> str:
        return self.name or f"{index + 1}. {self.kind}"  # type: ignore[attr-defined]


class ScaleTargetStep(_Step):
    """Resize the target region's instance group to at least ``min_size``."""

    kind: Literal["scale_target"]
    min_size: int = Field(ge=1, le=1000)


class VerifyHealthStep(_Step):
    """Wait until at least ``min_healthy`` backends in ``region`` are healthy, or fail at ``timeout``."""

    kind: Literal["verify_health"]
    region: Region | None = Field(default=None, description="Defaults to the plan's target")
    min_healthy: int = Field(ge=1, le=1000)
    timeout: Duration = timedelta(minutes=5)
    interval: Duration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _interval(self) -> "VerifyHealthStep":
        if self.interval <= timedelta(0):
            raise ValueError("interval must be longer than 0s")
        if self.timeout < self.interval:
            raise ValueError("timeout must be at least one interval long")
        return self


class DrainStep(_Step):
    """Set the capacity scaler of the region's backends (0 drains fully; a fraction drains gradually)."""

    kind: Literal["drain"]
    region: Region | None = Field(default=None, description="Defaults to the plan's source")
    capacity_scaler: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _scaler(self) -> "DrainStep":
        if 0.0 < self.capacity_scaler < 0.1:
            raise ValueError("capacity_scaler must be 0 or between 0.1 and 1.0 (Google Cloud's rule)")
        return self


class ShiftDnsStep(_Step):
    """Make the service's DNS record hold the target region's address."""

    kind: Literal["shift_dns"]
    ttl: int | None = Field(default=None, ge=1, le=86400, description="Defaults to the topology's ttl")


class WaitStep(_Step):
    """Bake time: do nothing for ``duration``."""

    kind: Literal["wait"]
    duration: Duration


Step = Annotated[
    Union[ScaleTargetStep, VerifyHealthStep, DrainStep, ShiftDnsStep, WaitStep],
    Field(discriminator="kind"),
]
STEP_KINDS = frozenset({"scale_target", "verify_health", "drain", "shift_dns", "wait"})


class Guards(StrictModel):
    """Safety checks made in preflight and again just before each mutating step."""

    min_healthy_target: int = Field(
        default=1,
        ge=1,
        description="Healthy backends the target must have before traffic is drained or shifted to it",
    )


class Retries(StrictModel):
    """How hard Temporal retries a failing cloud call before the step (or its rollback) gives up."""

    step_attempts: int = Field(default=6, ge=1, le=100)
    rollback_attempts: int = Field(default=10, ge=1, le=1000, description="Rollback tries harder")
    initial_interval: Duration = timedelta(seconds=1)
    maximum_interval: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _intervals(self) -> "Retries":
        if self.initial_interval <= timedelta(0):
            raise ValueError("initial_interval must be longer than 0s")
        if self.maximum_interval < self.initial_interval:
            raise ValueError("maximum_interval must not be shorter than initial_interval")
        return self


class Plan(StrictModel):
    name: ResourceName
    description: str = ""
    services: list[ResourceName] = Field(min_length=1)
    source: Region
    target: Region
    guards: Guards = Field(default_factory=Guards)
    retries: Retries = Field(default_factory=Retries)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_service(cls, data: Any) -> Any:
        if isinstance(data, dict) and "service" in data and "services" not in data:
            data = dict(data)
            data["services"] = [data.pop("service")]
        return data

    def structure_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.source == self.target:
            problems.append((("target",), f"the target must differ from the source ('{self.source}')"))
        seen: set[str] = set()
        for i, service in enumerate(self.services):
            if service in seen:
                problems.append((("services", i), f"service '{service}' is listed twice"))
            seen.add(service)
        for i, step in enumerate(self.steps):
            if isinstance(step, DrainStep) and step.region == self.target:
                problems.append(
                    (("steps", i, "region"), f"'{self.target}' is the plan's target; a drain must not drain the target")
                )
        return problems

    def digest(self) -> str:
        """SHA-256 of the canonical plan (validated, defaults filled in, keys sorted)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def check_plan(plan: Plan, topology: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of a structurally valid plan against a topology, each with its location."""
    problems = plan.structure_problems()
    for i, service in enumerate(plan.services):
        spec = topology.services.get(service)
        if spec is None:
            known = ", ".join(sorted(topology.services))
            problems.append((("services", i), f"unknown service '{service}' (the topology has: {known})"))
            continue
        for key in ("source", "target"):
            region = getattr(plan, key)
            if region not in spec.regions:
                problems.append(
                    ((key,), f"service '{service}' has no region '{region}' (it has: {', '.join(spec.regions)})")
                )
        for j, step in enumerate(plan.steps):
            region = getattr(step, "region", None)
            if region is not None and region not in spec.regions:
                problems.append((("steps", j, "region"), f"service '{service}' has no region '{region}'"))
    return problems


def _located(doc: RawDocument, problems: list[tuple[tuple[str | int, ...], str]]) -> InvalidDocument:
    return InvalidDocument([doc.error(loc, message) for loc, message in problems])


def load_plan(path: str | Path, topology: Topology | None = None) -> Plan:
    """Read and validate a plan (and check it against a topology when one is given).

    Raises InvalidDocument carrying every error found, each with file, path and line.
    """
    doc = read_yaml(path)
    plan = validate(doc, Plan, union_tags=STEP_KINDS)
    problems = check_plan(plan, topology) if topology is not None else plan.structure_problems()
    if problems:
        raise _located(doc, problems)
    return plan


def default_topology_path(plan_path: str | Path) -> Path:
    """A plan's topology defaults to ``topology.yaml`` beside it."""
    return Path(plan_path).parent / "topology.yaml"
