"""Alert-driven failover: the evidence a region guardian keeps, the policy it decides by, and
its record of every decision.

The alert receiver (``evac alerts serve``) turns each Alertmanager, Cloud Monitoring or Pub/Sub
delivery into :class:`AlertEvidence` and signals it to the region's guardian
(``RegionGuardianWorkflow``, id :func:`guardian_workflow_id`). The guardian keeps the firing
alerts, and decides with :mod:`evac.alerting.policy` — pure code, property-tested —
whether to start a failover for each service its region's automatic plans name: ``assess``
(is the evidence complete?) and ``judge`` (does a guard forbid it?). Facts the
decision needs from the world (the target's health and alerts, recent failovers, the kill
switch) are read by activities and handed in as :class:`WorldFacts`; the decision and its
reason are recorded in :class:`GuardianState`, which ``evac alerts status`` shows and
continue-as-new carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evac.evacuation import EvacuationInput
from evac.runs import FailoverInput

GUARDIAN_ID_PREFIX = "guardian/"
AUTO_SWITCH_ID = "evac-auto-switch"
# The guardian's state is carried by continue-as-new beside its configuration and read by every
# status query: each part has a bound below, chosen so that all of them at their largest stay
# near half of Temporal's 2 MB payload limit (tests/unit/test_guardian_bounds.py proves it).
#
# How many decisions the guardian keeps (newest last); older ones are in its earlier runs' histories.
MAX_DECISIONS = 100
# The firing alerts a guardian keeps, per service (region-wide ones count as one more service)
# and in all: enough to show a service's evidence, and a state (carried by continue-as-new, read
# by every query) far below Temporal's payload limits however many alerts are sent.
MAX_FIRING_PER_SERVICE = 100
MAX_FIRING = 300
# How many started failovers (and, apart, evacuations) a guardian keeps in its state (newest last).
MAX_STARTED = 50
# How many evidence keys a started failover records in its trigger (the rest are counted).
MAX_EVIDENCE = 50
# An alert's fields as evidence, bounded in the model itself: the guardian's signal decoding
# drops a delivery that breaks them (a namespace user can signal it directly, not only the
# receiver), so each alert is at most about 1 KiB.
MAX_ALERT_KEY = 200
MAX_ALERT_NAME = 200
MAX_ALERT_SERVICE = 100
MAX_ALERT_SUMMARY = 500
# Alerts per signal: a signal stays near 250 KiB, far below Temporal's 2 MB payload limit.
MAX_BATCH_ALERTS = 250
# A decision's reason as kept in the guardian's record, and the evidence keys a decision or a
# started run keeps (in order, while they fit MAX_KEPT_EVIDENCE_CHARS; a started run's trigger
# holds up to MAX_EVIDENCE in its own input).
MAX_DECISION_REASON = 500
MAX_KEPT_EVIDENCE_CHARS = 800
# The most a configure signal (policy, plans, evacuation) may weigh as JSON: about 180 services'
# plans out of one region.
MAX_CONFIG_BYTES = 320 * 1024


def kept_evidence(keys: Sequence[str]) -> list[str]:
    """The evidence keys a guardian keeps of ``keys``: in order, while they fit MAX_KEPT_EVIDENCE_CHARS."""
    kept: list[str] = []
    room = MAX_KEPT_EVIDENCE_CHARS
    for key in keys:
        if len(key) > room:
            break
        kept.append(key)
        room -= len(key)
    return kept


def guardian_workflow_id(region: str) -> str:
    """One guardian per region: every alert for the region reaches the same one."""
    return f"{GUARDIAN_ID_PREFIX}{region}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


AlertSource = Literal["alertmanager", "cloud_monitoring"]


class AlertEvidence(_Model):
    """One alert as a sender reported it: firing or resolved, for a region (and maybe a service)."""

    source: AlertSource
    key: str = Field(
        min_length=1,
        max_length=MAX_ALERT_KEY,
        description="Alertmanager fingerprint, or Cloud Monitoring incident id: what identifies the alert",
    )
    name: str = Field(max_length=MAX_ALERT_NAME, description="alertname, or the alerting policy's name")
    region: str = Field(min_length=1, max_length=63)
    service: str | None = Field(
        default=None, max_length=MAX_ALERT_SERVICE, description="None: the alert concerns the whole region"
    )
    firing: bool = Field(description="False: the sender says it resolved (it withdraws its evidence)")
    starts_at: datetime
    ends_at: datetime | None = None
    summary: str = Field(default="", max_length=MAX_ALERT_SUMMARY)


class AlertBatch(_Model):
    """What one delivery says about one region (the receiver's signal to the guardian)."""

    alerts: list[AlertEvidence] = Field(min_length=1, max_length=MAX_BATCH_ALERTS)
    received_at: datetime = Field(description="When the receiver accepted the delivery")


class GuardianPolicy(_Model):
    """When evidence is enough, and the guards around acting on it (configuration: [alerts])."""

    min_duration: timedelta = Field(
        default=timedelta(seconds=60), description="Fire only after the evidence has held this long (debounce)"
    )
    min_alerts: int = Field(default=1, ge=1, description="… and comes from at least this many distinct alerts")
    min_services: int = Field(
        default=1, ge=1, description="… or, for region-wide evidence, names at least this many distinct services"
    )
    cooldown: timedelta = Field(
        default=timedelta(minutes=30), description="No automatic failover of a service this soon after any failover of it"
    )
    max_per_hour: int = Field(default=5, ge=1, description="At most this many automatic failovers started in any hour")
    approvers: list[str] = Field(
        default_factory=list,
        description="Who approves a failover by a plan not marked auto: true (it starts with an approval step)",
    )
    approval_timeout: timedelta = Field(
        default=timedelta(minutes=30), gt=timedelta(0), le=timedelta(days=7), description="How long the approval step waits"
    )
    region_wide: Literal["failover", "evacuate"] = Field(
        default="failover",
        description="What complete region-wide evidence (alerts with no service) starts: a failover of each planned "
        "service (failover), or one evacuation of the whole region, each service to its healthiest region (evacuate)",
    )


class GuardianPlan(_Model):
    """One service's plan out of the guardian's region: the input a failover would start with."""

    service: str
    plan_name: str
    target: str
    auto: bool = Field(description="true: runs with no human; false: starts with an approval step")
    input: FailoverInput = Field(description="Trigger and evidence are filled in when it fires")


class GuardianInput(_Model):
    """A guardian's start (and continue-as-new) input: its region, policy, plans and state."""

    region: str
    policy: GuardianPolicy = Field(default_factory=GuardianPolicy)
    plans: list[GuardianPlan] = Field(default_factory=list)
    evacuation: EvacuationInput | None = Field(
        default=None, description="The region's evacuation (region_wide = evacuate); its trigger is filled in when it fires"
    )
    state: GuardianState | None = Field(default=None, description="Carried over by continue-as-new")


class GuardianConfig(_Model):
    """The receiver's ``configure`` signal: the current policy and plans (on every receiver start)."""

    policy: GuardianPolicy
    plans: list[GuardianPlan]
    evacuation: EvacuationInput | None = Field(default=None, description="Set only when the policy's region_wide is evacuate")

    def size_problem(self, region: str) -> str | None:
        """Why this configuration is too large for a guardian to keep (None: it is not). The
        receiver refuses to start with one; the guardian ignores one sent to it directly."""
        size = len(self.model_dump_json())
        if size <= MAX_CONFIG_BYTES:
            return None
        return (
            f"the guardian of {region} would hold {size // 1024:,} KiB of plans ({len(self.plans)} services); "
            f"at most {MAX_CONFIG_BYTES // 1024:,} KiB, to stay far below Temporal's payload limit: "
            "split the plans over more than one receiver's folder"
        )


class KillSwitch(_Model):
    """``evac auto disable | enable``: the global switch for automatic decisions."""

    enabled: bool = True
    by: str = ""
    reason: str = ""
    at: datetime | None = None


class SwitchChange(_Model):
    enabled: bool
    by: str
    reason: str


class ServiceFacts(_Model):
    """What an activity read about one service just before a decision (never decided there)."""

    service: str
    target: str
    target_healthy: int | None = Field(description="Healthy backends in the target now; None: unreadable")
    target_required: int = Field(description="The plan's guard: the least healthy backends the target must have")
    target_alerts: list[str] = Field(default_factory=list, description="Alerts firing for the target region (its guardian's)")
    busy: str | None = Field(default=None, description="The run the service already has, if any")
    last_failover_at: datetime | None = Field(default=None, description="The newest failover of the service, any trigger")


class WorldFacts(_Model):
    switch: KillSwitch
    automatic_last_hour: int = Field(description="Automatic (trigger alert) failovers started in the last hour")
    services: list[ServiceFacts]


Verdict = Literal["fire", "hold", "suppressed", "withdrawn"]


class Decision(_Model):
    """One decision of the guardian: what it did, why, and on what evidence."""

    at: datetime
    service: str | None = None
    verdict: Verdict
    reason: str
    guard: str | None = Field(
        default=None,
        description="The guard that suppressed it: kill_switch, busy, cooldown, cap, target_alerting, target_unhealthy, "
        "no_approvers, invalid_plan, no_plan",
    )
    evidence: list[str] = Field(default_factory=list, description="The alert keys it rested on")
    plan: str | None = None
    target: str | None = None
    workflow_id: str | None = Field(default=None, description="The failover it started")
    run_id: str | None = None


class StartedFailover(_Model):
    service: str
    workflow_id: str
    run_id: str
    target: str
    at: datetime
    evidence: list[str]
    approval_required: bool


class StartedEvacuation(_Model):
    """An evacuation of the whole region the guardian started (region_wide = evacuate)."""

    workflow_id: str
    run_id: str
    at: datetime
    services: int
    evidence: list[str]


class GuardianState(_Model):
    """Everything a guardian knows; queried by ``evac alerts status``, carried by continue-as-new."""

    region: str
    firing: dict[str, AlertEvidence] = Field(default_factory=dict, description="Firing alerts by key")
    evidence_since: datetime | None = Field(default=None, description="Since when evidence has held without a gap")
    received: int = Field(default=0, description="Alerts received (duplicates included)")
    duplicates: int = 0
    not_kept: int = Field(
        default=0,
        exclude_if=lambda v: v == 0,
        description=f"Firing alerts not kept: a service (or the region as a whole) already had {MAX_FIRING_PER_SERVICE} "
        f"firing, or the region {MAX_FIRING}; its evidence holds without them",
    )
    decisions: list[Decision] = Field(default_factory=list, description=f"The newest {MAX_DECISIONS}, oldest first")
    started: list[StartedFailover] = Field(default_factory=list)
    evacuations: list[StartedEvacuation] = Field(default_factory=list, description="Evacuations it started, newest last")
    runs: int = Field(default=1, description="This guardian's run count (continue-as-new starts another)")


GuardianInput.model_rebuild()
