"""What a run depends on: the control plane each of its cloud calls needs.

A failover must not wait on the region it leaves (its API is often down with it). Each call a
run makes is about a resource that some API serves: a global one (global backend services,
Cloud DNS), the target region's, or the source region's own. This module lists them for a plan
and one service, from the same references the engine uses (``evac/bindings.py``), so that
``evac plan check`` and every dry run can say before an incident which calls need only the
source region — those the engine makes within ``retries.source_deadline`` and goes on without.

Pure code: the workflows compute it too (the run's record carries it).
"""

from __future__ import annotations

from dataclasses import dataclass

from evac import bindings
from evac.plan import (
    BackendHealthCondition,
    DrainStep,
    Plan,
    ScaleTargetStep,
    ShiftDnsStep,
    SpannerLeaderStep,
    SqlCreateReplicaStep,
    SqlPromoteReplicaStep,
    SqlSwitchoverStep,
    VerifyHealthStep,
)
from evac.resources import GLOBAL, BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef
from evac.topology import ServiceTopology


@dataclass(frozen=True)
class Call:
    """One read or change a run makes, and the control plane that serves it."""

    action: str  # "read", "read health of", "change"
    resource: str
    plane: str  # "global" or a region

    def __str__(self) -> str:
        return f"{self.action} {self.resource}"


def plan_calls(plan: Plan, project: str, topology: ServiceTopology, service: str) -> list[Call]:
    """Every call a run of ``plan`` for ``service`` makes, in the order it makes them, once each."""
    calls: list[Call] = []

    def add(action: str, ref: BackendRef | GroupRef | DnsRecordRef | DatabaseRef | LeaderRef) -> None:
        call = Call(action, str(ref), ref.control_plane)
        if call not in calls:
            calls.append(call)

    def backend(region: str) -> BackendRef:
        return bindings.backend_ref(project, topology, region)

    regions = list(dict.fromkeys([plan.source, plan.target]))
    for region in regions:  # the preflight
        add("read", backend(region))
        for group in bindings.group_refs(project, topology, [region]):
            add("read", group)
    dns = bindings.dns_record_ref(project, topology)
    if any(isinstance(step, ShiftDnsStep) for step in plan.steps):
        add("read", dns)
    data = [s for s in plan.steps if getattr(s, "applies_to", lambda _: False)(service)]
    for step in data:  # the preflight reads the instances a switchover or promotion swaps
        if isinstance(step, (SqlSwitchoverStep, SqlPromoteReplicaStep)):
            add("read", bindings.database_ref(project, topology, plan.source))
            add("read", bindings.database_ref(project, topology, step.region or plan.target))
        elif isinstance(step, SpannerLeaderStep):
            add("read", bindings.leader_ref(project, topology))
    if plan.kind == "drill":  # readiness reads both regions' health
        for region in regions:
            add("read health of", backend(region))
    for step in plan.steps:
        if isinstance(step, ScaleTargetStep):
            add("change", bindings.group_ref(project, topology, plan.target))
        elif isinstance(step, VerifyHealthStep):
            add("read health of", backend(step.region or plan.target))
        elif isinstance(step, DrainStep):
            add("read health of", backend(plan.target))
            add("change", backend(step.region or plan.source))
        elif isinstance(step, ShiftDnsStep):
            add("read health of", backend(plan.target))
            add("change", dns)
        elif step not in data:
            continue
        elif isinstance(step, SqlSwitchoverStep):
            # Called on the target's replica; Cloud SQL then needs the old primary to answer.
            add("switch over to", bindings.database_ref(project, topology, step.region or plan.target))
        elif isinstance(step, SqlPromoteReplicaStep):
            add("promote", bindings.database_ref(project, topology, step.region or plan.target))
        elif isinstance(step, SqlCreateReplicaStep):
            add("read", bindings.database_ref(project, topology, plan.target))
            add("create", bindings.database_ref(project, topology, step.region, instance=step.instance))
        elif isinstance(step, SpannerLeaderStep):
            add("change", bindings.leader_ref(project, topology))
    if plan.drill is not None:
        for condition in plan.drill.stop_conditions:
            if isinstance(condition, BackendHealthCondition):
                add("read health of", backend(condition.region or plan.target))
    return calls


def depends_on(plan: Plan, project: str, topology: ServiceTopology, service: str) -> str:
    """In one line: the control planes a run waits on, and the calls that need only the source,
    e.g. ``depends on: global, us-central1; source-only: read instance group europe-west1/checkout-ew1``."""
    calls = plan_calls(plan, project, topology, service)
    waited = sorted({c.plane for c in calls if c.plane != plan.source}, key=lambda p: (p != GLOBAL, p))
    source_only = [str(c) for c in calls if c.plane == plan.source]
    text = f"depends on: {', '.join(waited) or 'nothing'}"
    if source_only:
        return f"{text}; source-only: {'; '.join(source_only)}"
    return f"{text}; nothing needs {plan.source}'s own API"
