"""The region guardian's policy as pure functions: what its evidence is, when it is enough, and
which guard (if any) stops a failover — decided from the guardian's state, its policy and the
facts an activity read, never from the clock or the world directly (``now`` is handed in).

The guardian (``RegionGuardianWorkflow``) calls them in this order for every batch of alerts and
every wake-up:

1. :func:`apply_batch` — the batch's firing alerts join the evidence, resolved ones withdraw it;
2. :func:`assess` — which services have complete evidence (:class:`Candidate`), which wait and
   why (hold decisions), and when to look again (``wake_at``);
3. :func:`judge` — for the candidates, with :class:`~evac.alerting.models.WorldFacts` read just before:
   fire, or suppressed by the first guard that applies;
4. :func:`record` — every decision, storms collapsed;
5. :func:`failover_input` — the input of the failover a ``fire`` starts.

An *evidence episode* is the time the region's firing evidence holds without a gap: it starts
when the first alert fires (``GuardianState.evidence_since``) and ends when the last one resolves.
A service fails over at most once per episode.

With the policy's ``region_wide = "evacuate"``, region-wide alerts (no service) are not evidence
against each service: they are the evidence of one evacuation of the whole region
(:func:`assess_evacuation`, :func:`judge_evacuation`, :func:`evacuation_input`), at most once per
episode; alerts naming a service still fail that service over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from evac.alerting.models import (
    MAX_DECISION_REASON,
    MAX_DECISIONS,
    MAX_EVIDENCE,
    MAX_FIRING,
    MAX_FIRING_PER_SERVICE,
    MAX_STARTED,
    AlertBatch,
    AlertEvidence,
    Decision,
    GuardianPlan,
    GuardianPolicy,
    GuardianState,
    ServiceFacts,
    StartedEvacuation,
    StartedFailover,
    WorldFacts,
    kept_evidence,
)
from evac.approvals import GROUP_PREFIX
from evac.evacuation import EvacuationInput, evacuation_workflow_id
from evac.plan import ApprovalStep, DrainStep, Plan, ScaleTargetStep, ShiftDnsStep, format_duration
from evac.runs import FailoverInput, Trigger, failover_workflow_id

# The guards, in the order judge() applies them (the first that applies wins); assess() holds with NO_PLAN.
GUARDS = ("kill_switch", "busy", "cooldown", "cap", "target_alerting", "target_unhealthy", "no_approvers")
NO_PLAN = "no_plan"
# The guards of a region evacuation, in the order judge_evacuation() applies them; busy is the
# child start's own refusal (the region already has an evacuation running).
EVACUATION_GUARDS = ("kill_switch", "cap")
# What an evacuation decision names as its plan and target (Decision.plan, Decision.target).
EVACUATION_PLAN = "evacuation"
AUTO_TARGET = "auto-target"
CAP_WINDOW = timedelta(hours=1)
# The approval step a failover by a plan not marked auto starts with.
APPROVAL_STEP_NAME = "approve the automatic failover"
# How a hold that waits for more evidence begins its reason ("evidence held 12s of 60s; 1 of 2 alerts").
WAITING = "evidence held "
# How many alert names a reason lists before it counts the rest.
NAMES_IN_REASON = 5


@dataclass(frozen=True)
class Candidate:
    """A service whose evidence is complete, with the plan it would fail over by.

    ``evidence``: the alert keys (``source:key``), sorted, at most MAX_EVIDENCE of them;
    ``alerts``: how many distinct alerts there were in all; ``names``: their distinct names,
    sorted; ``held``: how long the evidence had held when it was assessed.
    """

    service: str
    plan: GuardianPlan
    evidence: list[str]
    alerts: int = 0
    names: tuple[str, ...] = ()
    held: timedelta = timedelta(0)


@dataclass(frozen=True)
class Assessment:
    """What assess() found: candidates to judge, holds to record, and when to look again (None:
    only a new batch can change anything)."""

    candidates: list[Candidate]
    holds: list[Decision] = field(default_factory=list)
    wake_at: datetime | None = None


# --- evidence ------------------------------------------------------------------------------


def evidence_key(alert: AlertEvidence) -> str:
    """What identifies an alert across senders: ``alertmanager:<fingerprint>``,
    ``cloud_monitoring:<incident id>``. The firing alerts are kept by it."""
    return f"{alert.source}:{alert.key}"


def apply_batch(state: GuardianState, batch: AlertBatch, now: datetime) -> GuardianState:
    """A new state with the batch applied (``state`` is not changed).

    Firing alerts are added by key; a repeat of a firing key counts as a duplicate and keeps the
    earliest ``starts_at`` (its other fields are the newest report's). Resolved alerts withdraw
    their evidence; a resolved alert for an unknown key changes nothing. Alerts for another region
    are counted as received and otherwise ignored. The set is bounded: a new firing key beyond
    ``MAX_FIRING_PER_SERVICE`` for its service (or for the region as a whole) or ``MAX_FIRING`` in
    all is counted in ``not_kept`` and not kept (the service's evidence holds without it).
    ``evidence_since`` becomes ``now`` when the firing alerts go from none to some over the
    batch, and None when none are left: a batch that resolves one alert and fires another in one
    delivery does not end the episode.
    """
    new = state.model_copy(deep=True)
    had_evidence = bool(new.firing)
    new.received += len(batch.alerts)
    for alert in batch.alerts:
        if alert.region != new.region:
            continue
        key = evidence_key(alert)
        known = new.firing.get(key)
        if not alert.firing:
            new.firing.pop(key, None)
        elif known is None:
            same = sum(1 for kept in new.firing.values() if kept.service == alert.service)
            if same >= MAX_FIRING_PER_SERVICE or len(new.firing) >= MAX_FIRING:
                new.not_kept += 1  # the evidence it would add is there already: bounded state
                continue
            new.firing[key] = alert.model_copy(deep=True)
        else:
            new.duplicates += 1
            new.firing[key] = alert.model_copy(update={"starts_at": min(known.starts_at, alert.starts_at)}, deep=True)
    if not new.firing:
        new.evidence_since = None
    elif not had_evidence or new.evidence_since is None:
        new.evidence_since = now
    return new


def service_evidence(state: GuardianState, service: str, *, region_wide: bool = True) -> list[AlertEvidence]:
    """The firing alerts that are evidence against ``service``: its own and (unless ``region_wide``
    is False: they evacuate the region instead) the region-wide ones, by key."""
    concerned = (service, None) if region_wide else (service,)
    return [state.firing[key] for key in sorted(state.firing) if state.firing[key].service in concerned]


def region_wide_evidence(state: GuardianState) -> list[AlertEvidence]:
    """The firing alerts that name no service (they concern the whole region), by key."""
    return [state.firing[key] for key in sorted(state.firing) if state.firing[key].service is None]


def named_services(state: GuardianState) -> list[str]:
    """The distinct services the region's firing alerts name, sorted."""
    return sorted({alert.service for alert in state.firing.values() if alert.service is not None})


def region_plans(plans: Sequence[GuardianPlan], region: str) -> dict[str, GuardianPlan]:
    """Each service's plan out of ``region``: the first plan given that names it (plans whose
    source is another region are not this guardian's)."""
    chosen: dict[str, GuardianPlan] = {}
    for plan in plans:
        if plan.input.plan.source == region and plan.service not in chosen:
            chosen[plan.service] = plan
    return chosen


def held_for(state: GuardianState, now: datetime) -> timedelta:
    """How long the region's evidence has held at ``now`` (0 with no evidence)."""
    if not state.firing or state.evidence_since is None:
        return timedelta(0)
    return now - state.evidence_since


def is_complete(alerts: int, services: int, held: timedelta, policy: GuardianPolicy) -> bool:
    """Whether evidence is enough: held for min_duration, and from min_alerts distinct alerts or
    naming min_services distinct services. The services alternative counts only when min_services
    is set above 1: with its default, any alert naming a service would otherwise make min_alerts moot."""
    enough_services = policy.min_services > 1 and services >= policy.min_services
    return held >= policy.min_duration and (alerts >= policy.min_alerts or enough_services)


def episode_failover(state: GuardianState, service: str) -> StartedFailover | None:
    """The failover the guardian started for ``service`` in the current evidence episode, if any."""
    if state.evidence_since is None or not state.firing:
        return None
    for started in reversed(state.started):
        if started.service == service and started.at >= state.evidence_since:
            return started
    return None


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _held_text(held: timedelta) -> str:
    """A held time to the second (the policy's durations are written exactly)."""
    return format_duration(timedelta(seconds=max(0, int(held.total_seconds()))))


def assess(
    state: GuardianState, policy: GuardianPolicy, plans: Sequence[GuardianPlan], now: datetime, *, region_wide: bool = True
) -> Assessment:
    """Which services have complete evidence, which wait and why, and when to look again.

    Evidence against a service is its own firing alerts and the region-wide ones (so region-wide
    alerts concern every service with a plan out of the region); with ``region_wide`` False (the
    policy evacuates the region on them, :func:`assess_evacuation`) only its own. A service named by alerts with no
    plan out of the region is held with guard ``no_plan``; a service already failed over in this
    episode is held (never twice per episode); one whose evidence is not complete is held with
    what it lacks, and ``wake_at`` is when the region's evidence will have held min_duration.
    """
    by_service = region_plans(plans, state.region)
    named = named_services(state)
    services = set(named)
    if region_wide and any(alert.service is None for alert in state.firing.values()):
        services |= set(by_service)
    held = held_for(state, now)
    candidates: list[Candidate] = []
    holds: list[Decision] = []
    wake_at: datetime | None = None
    for service in sorted(services):
        alerts = service_evidence(state, service, region_wide=region_wide)
        keys = [evidence_key(alert) for alert in alerts]
        evidence = keys[:MAX_EVIDENCE]
        plan = by_service.get(service)
        if plan is None:
            reason = (
                f"no plan out of {state.region} names service '{service}', so its alerts are recorded and no failover will start"
            )
            holds.append(Decision(at=now, service=service, verdict="hold", reason=reason, guard=NO_PLAN, evidence=evidence))
            continue
        where = {"plan": plan.plan_name, "target": plan.target}
        started = episode_failover(state, service)
        if started is not None:
            reason = (
                f"already failed over at {_time(started.at)} ({started.workflow_id}) on this evidence, "
                "which has held without a gap since; a service fails over once per episode"
            )
            holds.append(Decision(at=now, service=service, verdict="hold", reason=reason, evidence=evidence, **where))
            continue
        if is_complete(len(alerts), len(named), held, policy):
            names = tuple(sorted({alert.name for alert in alerts}))
            candidates.append(Candidate(service, plan, evidence, alerts=len(alerts), names=names, held=held))
            continue
        reason = (
            f"{WAITING}{_held_text(held)} of {format_duration(policy.min_duration)}; "
            f"{len(alerts)} of {_plural(policy.min_alerts, 'alert')}"
        )
        if policy.min_services > 1:
            reason += f" (or {len(named)} of {_plural(policy.min_services, 'service')} named)"
        holds.append(Decision(at=now, service=service, verdict="hold", reason=reason, evidence=evidence, **where))
        if held < policy.min_duration and state.evidence_since is not None:
            due = state.evidence_since + policy.min_duration
            wake_at = due if wake_at is None else min(wake_at, due)
    return Assessment(candidates=candidates, holds=holds, wake_at=wake_at)


def withdrawn(
    before: GuardianState, after: GuardianState, plans: Sequence[GuardianPlan], now: datetime, *, region_wide: bool = True
) -> list[Decision]:
    """``withdrawn`` decisions for the services whose evidence the batch between ``before`` and
    ``after`` resolved entirely (and that had not failed over in that episode). With
    ``region_wide`` False (the policy evacuates on region-wide alerts) a service's evidence is its
    own alerts, and the region's evidence withdrawn is one decision for the region (service None)."""
    planned = region_plans(plans, before.region)
    decisions: list[Decision] = []
    wide = region_wide and _region_wide(before)
    for service in sorted(set(named_services(before)) | (set(planned) if wide else set())):
        gone = service_evidence(before, service, region_wide=region_wide)
        if not gone or service_evidence(after, service, region_wide=region_wide) or episode_failover(before, service) is not None:
            continue
        held = held_for(before, now)
        reason = f"{_plural(len(gone), 'alert')} resolved after the evidence held {_held_text(held)}: evidence withdrawn"
        plan = planned.get(service)
        decisions.append(
            Decision(
                at=now,
                service=service,
                verdict="withdrawn",
                reason=reason,
                evidence=[evidence_key(alert) for alert in gone][:MAX_EVIDENCE],
                plan=plan.plan_name if plan else None,
                target=plan.target if plan else None,
            )
        )
    if not region_wide:
        gone = region_wide_evidence(before)
        if gone and not region_wide_evidence(after) and episode_evacuation(before) is None:
            held = held_for(before, now)
            reason = (
                f"{_plural(len(gone), 'region-wide alert')} resolved after the evidence held {_held_text(held)}: "
                "evidence withdrawn"
            )
            keys = [evidence_key(alert) for alert in gone][:MAX_EVIDENCE]
            decisions.append(
                Decision(at=now, verdict="withdrawn", reason=reason, evidence=keys, plan=EVACUATION_PLAN, target=AUTO_TARGET)
            )
    return decisions


def _region_wide(state: GuardianState) -> bool:
    return any(alert.service is None for alert in state.firing.values())


# --- guards --------------------------------------------------------------------------------


def _missing_groups(policy: GuardianPolicy, plan: GuardianPlan) -> list[str]:
    """Groups the policy's approvers name that the plan's input does not resolve."""
    return [
        entry
        for entry in policy.approvers
        if entry.startswith(GROUP_PREFIX) and entry.removeprefix(GROUP_PREFIX) not in plan.input.approver_groups
    ]


def recent_failovers(state: GuardianState, service: str | None, since: datetime) -> list[StartedFailover]:
    """The failovers the guardian started after ``since`` (of one service, or of all: None)."""
    return [s for s in state.started if s.at > since and (service is None or s.service == service)]


def recent_evacuations(state: GuardianState, since: datetime) -> list[StartedEvacuation]:
    """The evacuations the guardian started after ``since`` (each counts once against the cap)."""
    return [e for e in state.evacuations if e.at > since]


def _switch_off(facts: WorldFacts, what: str) -> str:
    switch = facts.switch
    when = f" at {_time(switch.at)}" if switch.at else ""
    by = f" by {switch.by}" if switch.by else ""
    why = f": {switch.reason}" if switch.reason else ""
    return f"automatic {what} is disabled{by}{when}{why} ('evac auto enable' turns it back on)"


def _guard(
    candidate: Candidate,
    facts: WorldFacts,
    service: ServiceFacts | None,
    policy: GuardianPolicy,
    state: GuardianState,
    now: datetime,
    granted: Sequence[Candidate],
) -> tuple[str, str] | None:
    """The first guard that stops the candidate, with its reason (None: nothing does)."""
    plan = candidate.plan
    switch = facts.switch
    if not switch.enabled:
        return "kill_switch", _switch_off(facts, "failover")
    if service is not None and service.busy:
        return "busy", f"service '{candidate.service}' already has a run ({service.busy})"
    if any(other.service == candidate.service for other in granted):
        return "busy", f"service '{candidate.service}' fails over once per decision"
    last = [s.at for s in recent_failovers(state, candidate.service, now - policy.cooldown)]
    if service is not None and service.last_failover_at is not None and now - service.last_failover_at < policy.cooldown:
        last.append(service.last_failover_at)
    if last:
        newest = max(last)
        return "cooldown", (
            f"service '{candidate.service}' failed over at {_time(newest)}, within the "
            f"{format_duration(policy.cooldown)} cooldown (until {_time(newest + policy.cooldown)})"
        )
    own = len(recent_failovers(state, None, now - CAP_WINDOW)) + len(recent_evacuations(state, now - CAP_WINDOW))
    started = max(facts.automatic_last_hour, own) + len(granted)
    if started >= policy.max_per_hour:
        return "cap", (
            f"{_plural(started, 'automatic failover')} started in the last hour, and the cap is {policy.max_per_hour} an hour"
        )
    if service is None:
        return "target_unhealthy", (
            f"nothing could be read about service '{candidate.service}' or its target {plan.target}, "
            f"so {plan.target} cannot be shown able to serve it"
        )
    if service.target_alerts:
        shown = ", ".join(service.target_alerts[:NAMES_IN_REASON])
        more = f" and {len(service.target_alerts) - NAMES_IN_REASON} more" if len(service.target_alerts) > NAMES_IN_REASON else ""
        return "target_alerting", f"the target {plan.target} has firing alerts of its own ({shown}{more})"
    if service.target_healthy is None or service.target_healthy < service.target_required:
        source = plan.input.plan.source
        has = (
            f"the target {plan.target}'s health could not be read"
            if service.target_healthy is None
            else f"the target {plan.target} has {_plural(service.target_healthy, 'healthy backend')} "
            f"of the {service.target_required} required"
        )
        return "target_unhealthy", (
            f"{has}; failing over would drain {source} into a region that cannot serve '{candidate.service}'"
        )
    if not plan.auto:
        if not policy.approvers:
            return "no_approvers", (
                f"plan '{plan.plan_name}' is not marked auto, so it needs an approval, and the policy names no approvers"
            )
        missing = _missing_groups(policy, plan)
        if missing:
            return "no_approvers", (
                f"the policy's approvers name {', '.join(missing)}, which plan '{plan.plan_name}' was not given "
                "the members of (the configuration's approver_groups)"
            )
    return None


def judge(
    candidates: Sequence[Candidate], facts: WorldFacts, policy: GuardianPolicy, state: GuardianState, now: datetime
) -> list[Decision]:
    """One decision per candidate, in order: ``fire``, or ``suppressed`` by the first guard that
    applies — kill_switch, busy, cooldown, cap, target_alerting, target_unhealthy, no_approvers.

    The cap counts the larger of the visibility figure (``facts.automatic_last_hour``, which lags)
    and the guardian's own failovers in the last hour, plus the fires granted earlier in this call.
    A candidate without ServiceFacts is suppressed as target_unhealthy (nothing shows the target
    can serve). A ``fire`` names the failover's workflow id; the guardian adds the run id.
    """
    facts_of = {service.service: service for service in facts.services}
    granted: list[Candidate] = []
    decisions: list[Decision] = []
    for candidate in candidates:
        service = facts_of.get(candidate.service)
        stopped = _guard(candidate, facts, service, policy, state, now, granted)
        common: dict[str, Any] = {
            "at": now,
            "service": candidate.service,
            "evidence": list(candidate.evidence),
            "plan": candidate.plan.plan_name,
            "target": candidate.plan.target,
        }
        if stopped is not None:
            guard, reason = stopped
            decisions.append(Decision(verdict="suppressed", reason=reason, guard=guard, **common))
            continue
        granted.append(candidate)
        decisions.append(
            Decision(
                verdict="fire",
                reason=_fire_reason(candidate, service, policy),
                workflow_id=failover_workflow_id(candidate.service),
                **common,
            )
        )
    return decisions


def _fire_reason(candidate: Candidate, service: ServiceFacts | None, policy: GuardianPolicy) -> str:
    alerts = candidate.alerts or len(candidate.evidence)
    target = candidate.plan.target
    health = (
        f"; {target} has {_plural(service.target_healthy, 'healthy backend')} ({service.target_required} required)"
        if service is not None and service.target_healthy is not None
        else ""
    )
    approval = "" if candidate.plan.auto else ", starting with an approval"
    return (
        f"evidence complete: {_plural(alerts, 'alert')} held {_held_text(candidate.held)} "
        f"(policy: {format_duration(policy.min_duration)}){health}; failing over to {target}{approval}"
    )


# --- a region evacuation (region_wide = "evacuate") -------------------------------------------


@dataclass(frozen=True)
class EvacuationCandidate:
    """Complete region-wide evidence: the region evacuates on it. ``evidence``: the region-wide
    alert keys, sorted, at most MAX_EVIDENCE; ``alerts``: how many there were; ``names``: their
    distinct names; ``held``: how long the region's evidence had held."""

    evidence: list[str]
    alerts: int
    names: tuple[str, ...]
    held: timedelta


@dataclass(frozen=True)
class EvacuationAssessment:
    """What assess_evacuation() found: a candidate, or a hold to record, or nothing (no region-wide
    alert); ``wake_at``: when the evidence will have held min_duration."""

    candidate: EvacuationCandidate | None = None
    hold: Decision | None = None
    wake_at: datetime | None = None


def episode_evacuation(state: GuardianState) -> StartedEvacuation | None:
    """The evacuation the guardian started in the current evidence episode, if any."""
    if state.evidence_since is None or not state.firing:
        return None
    for started in reversed(state.evacuations):
        if started.at >= state.evidence_since:
            return started
    return None


def assess_evacuation(
    state: GuardianState, policy: GuardianPolicy, evacuation: EvacuationInput | None, now: datetime
) -> EvacuationAssessment:
    """Whether the region-wide evidence (alerts with no service) is complete, by the same rules as a
    service's: held min_duration, and min_alerts region-wide alerts (or, with min_services above 1,
    alerts naming that many services). Nothing without a region-wide alert; a hold when the region
    was evacuated in this episode already (once per episode), when the guardian has no evacuation
    (guard ``no_plan``: the receiver found no service it could move), or while the evidence waits."""
    alerts = region_wide_evidence(state)
    if not alerts:
        return EvacuationAssessment()
    evidence = [evidence_key(alert) for alert in alerts][:MAX_EVIDENCE]
    common: dict[str, Any] = {"at": now, "verdict": "hold", "evidence": evidence, "plan": EVACUATION_PLAN}
    if evacuation is None:
        reason = (
            f"region-wide alerts evacuate {state.region} (policy region_wide = evacuate), but the guardian has no "
            f"evacuation of it: the topology beside the plans has no service that can leave {state.region}"
        )
        return EvacuationAssessment(hold=Decision(reason=reason, guard=NO_PLAN, **common))
    common["target"] = AUTO_TARGET
    started = episode_evacuation(state)
    if started is not None:
        reason = (
            f"already evacuated at {_time(started.at)} ({started.workflow_id}) on this evidence, which has held "
            "without a gap since; a region evacuates once per episode"
        )
        return EvacuationAssessment(hold=Decision(reason=reason, **common))
    held = held_for(state, now)
    named = named_services(state)
    if is_complete(len(alerts), len(named), held, policy):
        names = tuple(sorted({alert.name for alert in alerts}))
        return EvacuationAssessment(candidate=EvacuationCandidate(evidence, len(alerts), names, held))
    reason = (
        f"{WAITING}{_held_text(held)} of {format_duration(policy.min_duration)}; "
        f"{len(alerts)} of {_plural(policy.min_alerts, 'region-wide alert')}"
    )
    if policy.min_services > 1:
        reason += f" (or {len(named)} of {_plural(policy.min_services, 'service')} named)"
    wake_at = None
    if held < policy.min_duration and state.evidence_since is not None:
        wake_at = state.evidence_since + policy.min_duration
    return EvacuationAssessment(hold=Decision(reason=reason, **common), wake_at=wake_at)


def judge_evacuation(
    candidate: EvacuationCandidate,
    facts: WorldFacts,
    policy: GuardianPolicy,
    state: GuardianState,
    evacuation: EvacuationInput,
    now: datetime,
) -> Decision:
    """``fire``, or ``suppressed`` by the first of the region's guards that applies: kill_switch,
    cap. The cap counts the guardian's own failovers and evacuations in the last hour, an
    evacuation as one (the visibility figure counts each failover an evacuation started, so it is
    not used here). That the region already has an evacuation running is the child start's
    refusal (``busy``, in the workflow)."""
    common: dict[str, Any] = {
        "at": now,
        "evidence": list(candidate.evidence),
        "plan": EVACUATION_PLAN,
        "target": AUTO_TARGET,
        "workflow_id": evacuation_workflow_id(state.region),
    }
    if not facts.switch.enabled:
        return Decision(verdict="suppressed", guard="kill_switch", reason=_switch_off(facts, "evacuation"), **common)
    own = len(recent_failovers(state, None, now - CAP_WINDOW)) + len(recent_evacuations(state, now - CAP_WINDOW))
    if own >= policy.max_per_hour:
        reason = (
            f"{_plural(own, 'automatic run')} (failovers, and evacuations counted once each) started by this guardian "
            f"in the last hour, and the cap is {policy.max_per_hour} an hour"
        )
        return Decision(verdict="suppressed", guard="cap", reason=reason, **common)
    services = len(evacuation.service_names())
    reason = (
        f"region-wide evidence complete: {_plural(candidate.alerts, 'alert')} held {_held_text(candidate.held)} "
        f"(policy: {format_duration(policy.min_duration)}); evacuating {_plural(services, 'service')} "
        f"out of {state.region}, each to its healthiest region"
    )
    return Decision(verdict="fire", reason=reason, **common)


def evacuation_input(candidate: EvacuationCandidate, evacuation: EvacuationInput, region: str) -> EvacuationInput:
    """The input of the evacuation a ``fire`` starts: the guardian's evacuation, auto-target,
    with trigger ``alert`` by ``evac-guardian/<region>``, the alerts named, their keys as evidence."""
    names = ", ".join(candidate.names[:NAMES_IN_REASON]) or "none recorded"
    if len(candidate.names) > NAMES_IN_REASON:
        names += f" and {len(candidate.names) - NAMES_IN_REASON} more"
    trigger = Trigger(
        kind="alert",
        by=f"evac-guardian/{region}",
        reason=f"{_plural(candidate.alerts, 'region-wide alert')} in {region} held {_held_text(candidate.held)}: {names}",
        evidence=list(candidate.evidence),
    )
    return evacuation.model_copy(update={"target": None, "trigger": trigger, "carried": None}, deep=True)


# --- the record ----------------------------------------------------------------------------


def _previous(state: GuardianState, service: str | None) -> int | None:
    for index in range(len(state.decisions) - 1, -1, -1):
        if state.decisions[index].service == service:
            return index
    return None


def record(state: GuardianState, decision: Decision) -> None:
    """Append ``decision`` to the guardian's record (in place), keeping the newest MAX_DECISIONS.

    A decision that repeats the service's previous one (same verdict, reason and guard) is not
    recorded: storms must not flood the record. A waiting hold (no guard) that follows a waiting
    hold of the service on the same evidence replaces it (moved to the end): the record shows how
    long the evidence has held without a line per second of it.

    A decision is kept clipped (``clipped``): however long its reason and evidence, each of the
    MAX_DECISIONS weighs a few KiB at most.
    """
    decision = clipped(decision)
    index = _previous(state, decision.service)
    if index is not None:
        previous = state.decisions[index]
        if (previous.verdict, previous.reason, previous.guard) == (decision.verdict, decision.reason, decision.guard):
            return
        if (
            decision.verdict == previous.verdict == "hold"
            and decision.guard is None
            and previous.guard is None
            and decision.evidence == previous.evidence
            and previous.reason.startswith(WAITING)
            and decision.reason.startswith(WAITING)
        ):
            del state.decisions[index]
    state.decisions.append(decision)
    if len(state.decisions) > MAX_DECISIONS:
        del state.decisions[: len(state.decisions) - MAX_DECISIONS]


# --- the failover it starts ----------------------------------------------------------------


def trigger_reason(candidate: Candidate, region: str) -> str:
    """One sentence naming the alerts a failover rests on."""
    alerts = candidate.alerts or len(candidate.evidence)
    if candidate.names:
        names = ", ".join(candidate.names[:NAMES_IN_REASON])
        if len(candidate.names) > NAMES_IN_REASON:
            names += f" and {len(candidate.names) - NAMES_IN_REASON} more"
    else:
        names = ", ".join(candidate.evidence[:NAMES_IN_REASON]) or "none recorded"
    return f"{_plural(alerts, 'alert')} in {region} concerning '{candidate.service}' held {_held_text(candidate.held)}: {names}"


def approval_plan(plan: Plan, approvers: Iterable[str], timeout: timedelta) -> Plan:
    """``plan`` with an approval step first (``approvers`` in order, each once; abort on timeout),
    validated as a plan file is. Raises ValueError naming what is wrong."""
    unique = list(dict.fromkeys(approvers))
    if not unique:
        raise ValueError(f"plan '{plan.name}' is not marked auto and the guardian's policy names no approvers")
    step = ApprovalStep(kind="approval", name=APPROVAL_STEP_NAME, approvers=unique, timeout=timeout, on_timeout="abort")
    data = plan.model_dump()
    data["steps"] = [step.model_dump(), *data["steps"]]
    with_approval = Plan.model_validate(data)
    problems = with_approval.structure_problems()
    if problems:
        loc, message = problems[0]
        raise ValueError(f"plan '{plan.name}' with an approval step first is invalid at {'.'.join(map(str, loc))}: {message}")
    return with_approval


def failover_input(candidate: Candidate, policy: GuardianPolicy, region: str, now: datetime) -> FailoverInput:
    """The input of the failover a ``fire`` starts: the plan's input with trigger ``alert`` (by
    ``evac-guardian/<region>``, the alerts named, their keys as evidence). A plan not marked auto
    gets an approval step first (the policy's approvers and timeout, abort on timeout) and its
    digest recomputed. ``now`` is not recorded: the run's own history has its start time."""
    del now  # part of the contract: the decision's time is in the guardian's record
    base = candidate.plan.input
    trigger = Trigger(
        kind="alert",
        by=f"evac-guardian/{region}",
        reason=trigger_reason(candidate, region),
        evidence=list(candidate.evidence),
    )
    if candidate.plan.auto:
        return base.model_copy(update={"trigger": trigger}, deep=True)
    missing = _missing_groups(policy, candidate.plan)
    if missing:
        raise ValueError(
            f"the guardian's approvers name {', '.join(missing)}, which plan '{candidate.plan.plan_name}' "
            "was not given the members of"
        )
    plan = approval_plan(base.plan, policy.approvers, policy.approval_timeout)
    data = base.model_dump(exclude={"plan", "plan_digest", "trigger"})
    return FailoverInput.model_validate({**data, "plan": plan, "plan_digest": plan.digest(), "trigger": trigger})


def target_required(plan: Plan) -> int:
    """The healthy backends the target must have *now* for a guardian to fire.

    A plan that scales the target up before its first drain or DNS shift grows the target
    itself, and its own guard (``min_healthy_target``) is checked by the failover before each of
    those steps, against the scaled-up target: here the target need only be serving (one healthy
    backend). A plan that shifts traffic without scaling first needs the guard's count now.
    """
    for step in plan.steps:
        if isinstance(step, ScaleTargetStep):
            return 1
        if isinstance(step, (DrainStep, ShiftDnsStep)):
            break
    return plan.guards.min_healthy_target


def clipped(decision: Decision) -> Decision:
    """``decision`` with its reason cut to MAX_DECISION_REASON characters and its evidence keys
    those ``kept_evidence`` keeps (the same decision if it fits)."""
    kept = kept_evidence(decision.evidence)
    reason = decision.reason
    if len(reason) > MAX_DECISION_REASON:
        reason = reason[: MAX_DECISION_REASON - 1] + "…"
    if reason == decision.reason and len(kept) == len(decision.evidence):
        return decision
    return decision.model_copy(update={"reason": reason, "evidence": kept})


def note_started(state: GuardianState, started: StartedFailover | StartedEvacuation) -> None:
    """Keep a run the guardian started in its state (in place): the newest MAX_STARTED of each
    kind, each with the evidence keys ``kept_evidence`` keeps."""
    started = started.model_copy(update={"evidence": kept_evidence(started.evidence)})
    if isinstance(started, StartedFailover):
        state.started = [*state.started, started][-MAX_STARTED:]
    else:
        state.evacuations = [*state.evacuations, started][-MAX_STARTED:]
