"""The guardian's policy by example: debounce, withdrawal, K alerts, every guard with its reason,
the record collapsing storms, and the failover input an alert starts (auto or with an approval)."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from evac.alerting.models import (
    MAX_DECISIONS,
    AlertBatch,
    AlertEvidence,
    Decision,
    GuardianPlan,
    GuardianPolicy,
    GuardianState,
    KillSwitch,
    ServiceFacts,
    StartedEvacuation,
    StartedFailover,
    WorldFacts,
)
from evac.alerting.policy import (
    MAX_EVIDENCE,
    Candidate,
    EvacuationAssessment,
    apply_batch,
    assess,
    assess_evacuation,
    evacuation_input,
    evidence_key,
    failover_input,
    judge,
    judge_evacuation,
    record,
    target_required,
    withdrawn,
)
from evac.alerting.receiver import create_app
from evac.config import ConfigError, Settings
from evac.control.start import failover_inputs, load_documents
from evac.evacuation import EvacuationInput, plan_groups
from evac.plan import ApprovalStep, Plan, check_plan
from evac.runs import FailoverInput, Trigger
from evac.topology import Topology
from tests.conftest import DEMO

REGION = "europe-west1"
TARGET = "us-central1"
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


@cache
def demo() -> tuple[Plan, Topology]:
    return load_documents(DEMO / "failover.yaml", None)


def guardian_plans(*, auto: bool = True) -> list[GuardianPlan]:
    """The demo plan's services (checkout, catalog) out of europe-west1, as the receiver hands them."""
    plan, topology = demo()
    inputs = failover_inputs(plan, topology, Trigger(by="evac-alerts"))
    return [GuardianPlan(service=item.service, plan_name=plan.name, target=plan.target, auto=auto, input=item) for item in inputs]


def alert(
    key: str,
    *,
    service: str | None = "checkout",
    firing: bool = True,
    name: str = "HighErrorRate",
    region: str = REGION,
    starts_at: datetime = T0,
    source: str = "alertmanager",
) -> AlertEvidence:
    return AlertEvidence.model_validate(
        {
            "source": source,
            "key": key,
            "name": name,
            "region": region,
            "service": service,
            "firing": firing,
            "starts_at": starts_at,
        }
    )


def batch(*alerts: AlertEvidence, at: datetime = T0) -> AlertBatch:
    return AlertBatch(alerts=list(alerts), received_at=at)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state_with(*alerts: AlertEvidence, now: datetime = T0) -> GuardianState:
    return apply_batch(GuardianState(region=REGION), batch(*alerts, at=now), now)


def healthy(service: str, **changes: object) -> ServiceFacts:
    values: dict[str, object] = {"service": service, "target": TARGET, "target_healthy": 3, "target_required": 2}
    return ServiceFacts.model_validate(values | changes)


def world(*services: ServiceFacts, enabled: bool = True, automatic_last_hour: int = 0) -> WorldFacts:
    switch = KillSwitch(enabled=enabled, by="alice@laptop", reason="maintenance", at=T0) if not enabled else KillSwitch()
    return WorldFacts(switch=switch, automatic_last_hour=automatic_last_hour, services=list(services))


def candidate(service: str = "checkout", *, auto: bool = True, evidence: tuple[str, ...] = ("alertmanager:a",)) -> Candidate:
    plan = next(p for p in guardian_plans(auto=auto) if p.service == service)
    return Candidate(service, plan, list(evidence), alerts=len(evidence), names=("HighErrorRate",), held=timedelta(seconds=75))


def started(service: str, moment: datetime) -> StartedFailover:
    return StartedFailover(
        service=service,
        workflow_id=f"failover/{service}",
        run_id="run-1",
        target=TARGET,
        at=moment,
        evidence=["alertmanager:a"],
        approval_required=False,
    )


# --- apply_batch -------------------------------------------------------------------------------


def test_a_firing_alert_starts_an_episode_and_leaves_the_old_state_alone() -> None:
    before = GuardianState(region=REGION)
    after = apply_batch(before, batch(alert("a")), at(5))
    assert list(after.firing) == ["alertmanager:a"]
    assert after.evidence_since == at(5)
    assert after.received == 1
    assert before.firing == {} and before.received == 0 and before.evidence_since is None


def test_a_repeat_counts_as_duplicate_and_keeps_the_earliest_start() -> None:
    state = state_with(alert("a", starts_at=at(10)))
    state = apply_batch(state, batch(alert("a", starts_at=at(3)), alert("a", starts_at=at(20))), at(30))
    assert state.duplicates == 2
    assert state.received == 3
    assert state.firing["alertmanager:a"].starts_at == at(3)
    assert state.evidence_since == T0  # the episode goes on


def test_the_same_key_from_two_senders_is_two_alerts() -> None:
    state = state_with(alert("7", source="alertmanager"), alert("7", source="cloud_monitoring"))
    assert sorted(state.firing) == ["alertmanager:7", "cloud_monitoring:7"]
    assert state.duplicates == 0


def test_resolved_alerts_withdraw_evidence_and_end_the_episode() -> None:
    state = state_with(alert("a"), alert("b"))
    state = apply_batch(state, batch(alert("a", firing=False)), at(10))
    assert list(state.firing) == ["alertmanager:b"] and state.evidence_since == T0
    state = apply_batch(state, batch(alert("b", firing=False)), at(20))
    assert state.firing == {} and state.evidence_since is None
    state = apply_batch(state, batch(alert("c")), at(30))
    assert state.evidence_since == at(30)  # a new episode


def test_a_resolved_alert_for_an_unknown_key_changes_nothing_but_the_count() -> None:
    state = state_with(alert("a"))
    after = apply_batch(state, batch(alert("zzz", firing=False)), at(10))
    assert after.firing == state.firing and after.evidence_since == state.evidence_since
    assert after.received == state.received + 1


def test_alerts_for_another_region_are_counted_and_ignored() -> None:
    state = apply_batch(GuardianState(region=REGION), batch(alert("a", region=TARGET)), T0)
    assert state.firing == {} and state.evidence_since is None and state.received == 1


def test_one_delivery_that_resolves_one_alert_and_fires_another_keeps_the_episode() -> None:
    state = state_with(alert("a"))
    state = apply_batch(state, batch(alert("a", firing=False), alert("b")), at(40))
    assert list(state.firing) == ["alertmanager:b"]
    assert state.evidence_since == T0


# --- assess ------------------------------------------------------------------------------------


def test_debounce_holds_until_min_duration_then_the_service_is_a_candidate() -> None:
    state = state_with(alert("a"))
    early = assess(state, GuardianPolicy(), guardian_plans(), at(12))
    assert early.candidates == []
    assert [(d.service, d.verdict, d.reason) for d in early.holds] == [
        ("checkout", "hold", "evidence held 12s of 1m; 1 of 1 alert")
    ]
    assert early.holds[0].plan == "demo-failover" and early.holds[0].target == TARGET
    assert early.wake_at == at(60)
    ready = assess(state, GuardianPolicy(), guardian_plans(), at(60))
    assert ready.holds == [] and ready.wake_at is None
    assert [(c.service, c.evidence, c.names, c.held) for c in ready.candidates] == [
        ("checkout", ["alertmanager:a"], ("HighErrorRate",), timedelta(seconds=60))
    ]


def test_evidence_withdrawn_before_the_window_ends_never_becomes_a_candidate() -> None:
    plans = guardian_plans()
    before = state_with(alert("a"))
    after = apply_batch(before, batch(alert("a", firing=False)), at(30))
    later = assess(after, GuardianPolicy(), plans, at(90))
    assert later.candidates == [] and later.holds == [] and later.wake_at is None
    [decision] = withdrawn(before, after, plans, at(30))
    assert decision.verdict == "withdrawn" and decision.service == "checkout"
    assert decision.reason == "1 alert resolved after the evidence held 30s: evidence withdrawn"
    assert decision.evidence == ["alertmanager:a"]


def test_a_service_that_still_has_evidence_is_not_withdrawn() -> None:
    before = state_with(alert("a"), alert("b"))
    after = apply_batch(before, batch(alert("a", firing=False)), at(30))
    assert withdrawn(before, after, guardian_plans(), at(30)) == []


def test_k_distinct_alerts_are_needed_after_the_window() -> None:
    policy = GuardianPolicy(min_alerts=2)
    state = state_with(alert("a"))
    one = assess(state, policy, guardian_plans(), at(120))
    assert one.candidates == []
    assert [d.reason for d in one.holds] == ["evidence held 2m of 1m; 1 of 2 alerts"]
    assert one.wake_at is None  # time will not help: only another alert can
    state = apply_batch(state, batch(alert("a")), at(121))  # a duplicate is not a second alert
    assert assess(state, policy, guardian_plans(), at(121)).candidates == []
    state = apply_batch(state, batch(alert("b", name="Latency")), at(122))
    [ready] = assess(state, policy, guardian_plans(), at(122)).candidates
    assert ready.evidence == ["alertmanager:a", "alertmanager:b"]
    assert ready.names == ("HighErrorRate", "Latency")


def test_alerts_naming_enough_services_complete_the_evidence() -> None:
    policy = GuardianPolicy(min_alerts=3, min_services=2)
    state = state_with(alert("a", service="checkout"))
    held = assess(state, policy, guardian_plans(), at(60))
    assert [d.reason for d in held.holds] == ["evidence held 1m of 1m; 1 of 3 alerts (or 1 of 2 services named)"]
    state = apply_batch(state, batch(alert("b", service="catalog")), at(61))
    assert [c.service for c in assess(state, policy, guardian_plans(), at(61)).candidates] == ["catalog", "checkout"]


def test_a_region_wide_alert_is_evidence_for_every_planned_service() -> None:
    state = state_with(alert("r", service=None, name="RegionDown"), alert("c", service="checkout"))
    result = assess(state, GuardianPolicy(), guardian_plans(), at(60))
    evidence = {c.service: c.evidence for c in result.candidates}
    assert evidence == {"catalog": ["alertmanager:r"], "checkout": ["alertmanager:c", "alertmanager:r"]}


def test_a_service_without_a_plan_is_held_and_recorded_once() -> None:
    state = state_with(alert("s", service="search"))
    first = assess(state, GuardianPolicy(), guardian_plans(), at(60))
    assert first.candidates == []
    [hold] = first.holds
    assert (hold.service, hold.guard) == ("search", "no_plan")
    assert (
        hold.reason == "no plan out of europe-west1 names service 'search', so its alerts are recorded and no failover will start"
    )
    record(state, hold)
    for second in range(61, 70):
        state = apply_batch(state, batch(alert("s", service="search")), at(second))
        for again in assess(state, GuardianPolicy(), guardian_plans(), at(second)).holds:
            record(state, again)
    assert [d.guard for d in state.decisions] == ["no_plan"]


def test_plans_out_of_another_region_are_not_this_guardians() -> None:
    state = apply_batch(GuardianState(region=TARGET), batch(alert("a", region=TARGET)), T0)
    [hold] = assess(state, GuardianPolicy(), guardian_plans(), at(60)).holds
    assert hold.guard == "no_plan"


def test_a_service_fails_over_once_per_episode() -> None:
    state = state_with(alert("a"))
    state.started.append(started("checkout", at(60)))
    result = assess(state, GuardianPolicy(), guardian_plans(), at(600))
    assert result.candidates == []
    [hold] = result.holds
    assert hold.reason.startswith("already failed over at 2026-03-01T03:01:00+00:00 (failover/checkout)")
    # The episode ends and a new one begins: the service is a candidate again once it holds.
    state = apply_batch(state, batch(alert("a", firing=False)), at(700))
    state = apply_batch(state, batch(alert("b")), at(800))
    assert [c.service for c in assess(state, GuardianPolicy(), guardian_plans(), at(860)).candidates] == ["checkout"]


def test_evidence_is_capped_and_sorted_but_every_alert_counts() -> None:
    alerts = [alert(f"k{i:03d}") for i in range(MAX_EVIDENCE + 7)]
    [ready] = assess(state_with(*reversed(alerts)), GuardianPolicy(), guardian_plans(), at(60)).candidates
    assert ready.evidence == sorted(evidence_key(a) for a in alerts)[:MAX_EVIDENCE]
    assert ready.alerts == MAX_EVIDENCE + 7


# --- judge -------------------------------------------------------------------------------------


def test_a_candidate_fires_when_no_guard_applies() -> None:
    state = state_with(alert("a"))
    [decision] = judge([candidate()], world(healthy("checkout")), GuardianPolicy(), state, at(75))
    assert decision.verdict == "fire" and decision.guard is None
    assert decision.workflow_id == "failover/checkout"
    assert (decision.plan, decision.target, decision.evidence) == ("demo-failover", TARGET, ["alertmanager:a"])
    assert decision.reason == (
        "evidence complete: 1 alert held 1m15s (policy: 1m); us-central1 has 3 healthy backends (2 required); "
        "failing over to us-central1"
    )


@pytest.mark.parametrize(
    ("facts", "guard", "reason"),
    [
        (
            world(healthy("checkout"), enabled=False),
            "kill_switch",
            "automatic failover is disabled by alice@laptop at 2026-03-01T03:00:00+00:00: maintenance "
            "('evac auto enable' turns it back on)",
        ),
        (
            world(healthy("checkout", busy="failover/checkout (run r-9)")),
            "busy",
            "service 'checkout' already has a run (failover/checkout (run r-9))",
        ),
        (
            world(healthy("checkout", last_failover_at=at(-600))),
            "cooldown",
            "service 'checkout' failed over at 2026-03-01T02:50:00+00:00, within the 30m cooldown "
            "(until 2026-03-01T03:20:00+00:00)",
        ),
        (
            world(healthy("checkout"), automatic_last_hour=5),
            "cap",
            "5 automatic failovers started in the last hour, and the cap is 5 an hour",
        ),
        (
            world(healthy("checkout", target_alerts=["alertmanager:t1 HighLatency"])),
            "target_alerting",
            "the target us-central1 has firing alerts of its own (alertmanager:t1 HighLatency)",
        ),
        (
            world(healthy("checkout", target_healthy=1)),
            "target_unhealthy",
            "the target us-central1 has 1 healthy backend of the 2 required; failing over would drain europe-west1 "
            "into a region that cannot serve 'checkout'",
        ),
        (
            world(healthy("checkout", target_healthy=None)),
            "target_unhealthy",
            "the target us-central1's health could not be read; failing over would drain europe-west1 into a region "
            "that cannot serve 'checkout'",
        ),
        (
            world(),
            "target_unhealthy",
            "nothing could be read about service 'checkout' or its target us-central1, so us-central1 cannot be shown "
            "able to serve it",
        ),
    ],
)
def test_each_guard_suppresses_with_its_reason(facts: WorldFacts, guard: str, reason: str) -> None:
    [decision] = judge([candidate()], facts, GuardianPolicy(), state_with(alert("a")), at(75))
    assert (decision.verdict, decision.guard, decision.reason) == ("suppressed", guard, reason)
    assert decision.workflow_id is None and decision.evidence == ["alertmanager:a"]


def test_the_first_guard_that_applies_wins() -> None:
    everything_wrong = healthy(
        "checkout", busy="failover/checkout", last_failover_at=at(0), target_alerts=["x"], target_healthy=0
    )
    order = []
    policy = GuardianPolicy()
    for facts in (
        world(everything_wrong, enabled=False, automatic_last_hour=9),
        world(everything_wrong, automatic_last_hour=9),
        world(everything_wrong.model_copy(update={"busy": None}), automatic_last_hour=9),
        world(everything_wrong.model_copy(update={"busy": None, "last_failover_at": None}), automatic_last_hour=9),
        world(everything_wrong.model_copy(update={"busy": None, "last_failover_at": None})),
        world(everything_wrong.model_copy(update={"busy": None, "last_failover_at": None, "target_alerts": []})),
    ):
        [decision] = judge([candidate()], facts, policy, state_with(alert("a")), at(75))
        order.append(decision.guard)
    assert order == ["kill_switch", "busy", "cooldown", "cap", "target_alerting", "target_unhealthy"]


def test_cooldown_counts_the_guardians_own_failovers_and_ends() -> None:
    state = state_with(alert("a"))
    state.started.append(started("checkout", at(0)))
    facts = world(healthy("checkout"))
    [inside] = judge([candidate()], facts, GuardianPolicy(), state, at(29 * 60))
    assert inside.guard == "cooldown"
    [after] = judge([candidate()], facts, GuardianPolicy(), state, at(30 * 60))
    assert after.verdict == "fire"


def test_the_cap_counts_fires_granted_in_the_same_call_and_the_state_when_visibility_lags() -> None:
    state = state_with(alert("a", service=None))
    facts = world(healthy("checkout"), healthy("catalog"), automatic_last_hour=0)
    policy = GuardianPolicy(max_per_hour=1)
    decisions = judge([candidate("catalog"), candidate("checkout")], facts, policy, state, at(75))
    assert [(d.service, d.verdict, d.guard) for d in decisions] == [("catalog", "fire", None), ("checkout", "suppressed", "cap")]
    # Visibility has not seen the guardian's own failover yet: the state's count is used.
    state.started.append(started("catalog", at(75)))
    [later] = judge([candidate("checkout")], facts, policy, state, at(80))
    assert (later.guard, later.reason) == ("cap", "1 automatic failover started in the last hour, and the cap is 1 an hour")
    [next_hour] = judge([candidate("checkout")], facts, policy, state, at(75 + 3600))
    assert next_hour.verdict == "fire"


def test_a_plan_not_marked_auto_needs_approvers() -> None:
    facts = world(healthy("checkout"))
    state = state_with(alert("a"))
    [refused] = judge([candidate(auto=False)], facts, GuardianPolicy(), state, at(75))
    assert (refused.guard, refused.reason) == (
        "no_approvers",
        "plan 'demo-failover' is not marked auto, so it needs an approval, and the policy names no approvers",
    )
    [unresolved] = judge([candidate(auto=False)], facts, GuardianPolicy(approvers=["group:sre"]), state, at(75))
    assert unresolved.guard == "no_approvers" and "group:sre" in unresolved.reason
    [fired] = judge([candidate(auto=False)], facts, GuardianPolicy(approvers=["alice"]), state, at(75))
    assert fired.verdict == "fire" and fired.reason.endswith("failing over to us-central1, starting with an approval")


# --- record ------------------------------------------------------------------------------------


def decision(service: str | None, verdict: str = "suppressed", reason: str = "r", guard: str | None = "cap") -> Decision:
    return Decision.model_validate({"at": T0, "service": service, "verdict": verdict, "reason": reason, "guard": guard})


def test_record_drops_a_repeat_of_the_services_previous_decision() -> None:
    state = GuardianState(region=REGION)
    for _ in range(1000):
        record(state, decision("checkout"))
    record(state, decision("catalog"))
    record(state, decision("checkout"))  # the same as checkout's previous, catalog's in between
    record(state, decision("checkout", reason="other"))
    record(state, decision("checkout", guard="busy", reason="other"))
    record(state, decision(None, verdict="withdrawn", guard=None))
    record(state, decision(None, verdict="withdrawn", guard=None))
    assert [(d.service, d.reason, d.guard) for d in state.decisions] == [
        ("checkout", "r", "cap"),
        ("catalog", "r", "cap"),
        ("checkout", "other", "cap"),
        ("checkout", "other", "busy"),
        (None, "r", None),
    ]


def test_record_keeps_one_waiting_hold_per_evidence() -> None:
    state = state_with(alert("a"))
    for second in range(0, 60, 5):
        for hold in assess(state, GuardianPolicy(), guardian_plans(), at(second)).holds:
            record(state, hold)
    [hold] = state.decisions
    assert hold.reason == "evidence held 55s of 1m; 1 of 1 alert" and hold.at == at(55)
    state = apply_batch(state, batch(alert("b")), at(56))
    for hold in assess(state, GuardianPolicy(), guardian_plans(), at(56)).holds:
        record(state, hold)
    assert [d.evidence for d in state.decisions] == [["alertmanager:a"], ["alertmanager:a", "alertmanager:b"]]


def test_record_keeps_the_newest_decisions() -> None:
    state = GuardianState(region=REGION)
    for i in range(MAX_DECISIONS + 25):
        record(state, decision("checkout", reason=f"r{i}"))
    assert len(state.decisions) == MAX_DECISIONS
    assert state.decisions[0].reason == "r25" and state.decisions[-1].reason == f"r{MAX_DECISIONS + 24}"


# --- failover_input ----------------------------------------------------------------------------


def test_an_auto_plan_starts_with_the_alerts_as_its_trigger() -> None:
    ready = candidate(evidence=("alertmanager:a", "cloud_monitoring:i-1"))
    started_with = failover_input(ready, GuardianPolicy(), REGION, at(75))
    original = ready.plan.input
    assert started_with.trigger == Trigger(
        kind="alert",
        by="evac-guardian/europe-west1",
        reason="2 alerts in europe-west1 concerning 'checkout' held 1m15s: HighErrorRate",
        evidence=["alertmanager:a", "cloud_monitoring:i-1"],
    )
    assert started_with.plan == original.plan and started_with.plan_digest == original.plan_digest
    assert (started_with.service, started_with.topology) == ("checkout", original.topology)
    assert original.trigger.kind == "manual"  # the guardian's plan is not changed
    assert FailoverInput.model_validate_json(started_with.model_dump_json()) == started_with


def test_a_plan_not_auto_starts_with_an_approval_step_and_a_new_digest() -> None:
    ready = candidate(auto=False)
    policy = GuardianPolicy(approvers=["alice", "bob@laptop", "alice"], approval_timeout=timedelta(minutes=20))
    started_with = failover_input(ready, policy, REGION, at(75))
    first, *rest = started_with.plan.steps
    assert isinstance(first, ApprovalStep)
    assert (first.approvers, first.timeout, first.on_timeout) == (["alice", "bob@laptop"], timedelta(minutes=20), "abort")
    assert rest == ready.plan.input.plan.steps
    assert started_with.plan_digest == started_with.plan.digest() != ready.plan.input.plan_digest
    assert started_with.trigger.kind == "alert" and started_with.trigger.evidence == ["alertmanager:a"]
    # Still a valid plan, as a file would be: field rules, structure and the topology.
    plan, topology = demo()
    again = Plan.model_validate(started_with.plan.model_dump(mode="json"))
    assert again == started_with.plan
    assert check_plan(again, topology) == []
    assert FailoverInput.model_validate_json(started_with.model_dump_json()) == started_with


def test_a_plan_not_auto_without_approvers_cannot_start() -> None:
    with pytest.raises(ValueError, match="is not marked auto and the guardian's policy names no approvers"):
        failover_input(candidate(auto=False), GuardianPolicy(), REGION, at(75))
    with pytest.raises(ValueError, match="group:sre"):
        failover_input(candidate(auto=False), GuardianPolicy(approvers=["group:sre"]), REGION, at(75))


def test_a_plan_that_scales_the_target_first_needs_it_serving_now_not_yet_at_its_guard() -> None:
    plan, _ = load_documents(DEMO / "failover.yaml", None)
    assert plan.guards.min_healthy_target == 2 and plan.steps[0].kind == "scale_target"
    assert target_required(plan) == 1
    shifts_first = plan.model_copy(update={"steps": [s for s in plan.steps if s.kind != "scale_target"]})
    assert target_required(shifts_first) == 2


# --- region_wide = "evacuate": one evacuation of the region -------------------------------------

EVACUATE = GuardianPolicy(min_duration=timedelta(seconds=60), region_wide="evacuate")


@cache
def evacuation() -> EvacuationInput:
    _, topology = demo()
    return EvacuationInput(
        region=REGION,
        target=None,
        project=topology.project,
        groups=plan_groups(topology, REGION, target=None),
        trigger=Trigger(kind="alert", by=f"evac-guardian/{REGION}", reason="(filled in when it fires)"),
    )


def test_region_wide_alerts_evacuate_once_complete_and_no_longer_fail_each_service_over() -> None:
    state = state_with(alert("r1", service=None, name="RegionDown"), alert("c1", service="checkout"))
    early = assess_evacuation(state, EVACUATE, evacuation(), at(30))
    assert early.candidate is None and early.hold is not None and early.hold.service is None
    assert early.hold.reason.startswith("evidence held 30s of 1m; 1 of 1 region-wide alert")
    assert early.wake_at == at(60)

    ready = assess_evacuation(state, EVACUATE, evacuation(), at(61))
    assert ready.candidate is not None and ready.hold is None
    assert ready.candidate.evidence == ["alertmanager:r1"] and ready.candidate.names == ("RegionDown",)
    # The region-wide alert is not evidence against each service: only checkout's own alert is.
    services = assess(state, EVACUATE, guardian_plans(), at(61), region_wide=False)
    assert [(c.service, c.evidence) for c in services.candidates] == [("checkout", ["alertmanager:c1"])]
    # The default (failover) keeps failing every planned service over on it.
    assert {c.service for c in assess(state, POLICY_DEFAULT, guardian_plans(), at(61)).candidates} == {"checkout", "catalog"}


POLICY_DEFAULT = GuardianPolicy(min_duration=timedelta(seconds=60))


def test_no_region_wide_alert_no_evacuation_and_min_alerts_counts_region_wide_alerts() -> None:
    assert assess_evacuation(state_with(alert("c1")), EVACUATE, evacuation(), at(61)) == EvacuationAssessment()
    two = EVACUATE.model_copy(update={"min_alerts": 2})
    state = state_with(alert("r1", service=None), alert("c1"))
    held = assess_evacuation(state, two, evacuation(), at(61))
    assert held.candidate is None and held.hold is not None and "1 of 2 region-wide alerts" in held.hold.reason


def test_without_an_evacuation_region_wide_alerts_are_held_no_plan() -> None:
    found = assess_evacuation(state_with(alert("r1", service=None)), EVACUATE, None, at(61))
    assert found.candidate is None and found.hold is not None
    assert found.hold.guard == "no_plan" and "has no evacuation" in found.hold.reason


def test_a_region_evacuates_once_per_episode() -> None:
    state = state_with(alert("r1", service=None))
    state.evacuations.append(
        StartedEvacuation(workflow_id="evacuation/europe-west1", run_id="r", at=at(61), services=2, evidence=["alertmanager:r1"])
    )
    found = assess_evacuation(state, EVACUATE, evacuation(), at(200))
    assert found.candidate is None and found.hold is not None and "once per episode" in found.hold.reason


def test_the_evacuation_fires_or_is_suppressed_by_the_switch_or_the_cap_counting_it_once() -> None:
    state = state_with(alert("r1", service=None, name="RegionDown"))
    ready = assess_evacuation(state, EVACUATE, evacuation(), at(61)).candidate
    assert ready is not None
    fire = judge_evacuation(ready, world(automatic_last_hour=9), EVACUATE, state, evacuation(), at(61))
    assert (fire.verdict, fire.workflow_id, fire.service) == ("fire", "evacuation/europe-west1", None)
    assert "evacuating 2 services out of europe-west1" in fire.reason

    off = judge_evacuation(ready, world(enabled=False), EVACUATE, state, evacuation(), at(61))
    assert (off.verdict, off.guard) == ("suppressed", "kill_switch") and "automatic evacuation is disabled" in off.reason

    one = EVACUATE.model_copy(update={"max_per_hour": 2})
    state.evacuations.append(
        StartedEvacuation(workflow_id="evacuation/europe-west1", run_id="r", at=at(0), services=40, evidence=["x"])
    )
    # One evacuation of 40 services counts once: one more run is allowed under a cap of 2.
    assert judge_evacuation(ready, world(), one, state, evacuation(), at(61)).verdict == "fire"
    state.started.append(started("checkout", at(10)))
    capped = judge_evacuation(ready, world(), one, state, evacuation(), at(61))
    assert (capped.verdict, capped.guard) == ("suppressed", "cap") and "the cap is 2 an hour" in capped.reason


def test_the_evacuation_input_is_auto_target_with_the_alerts_as_its_trigger() -> None:
    state = state_with(alert("r1", service=None, name="RegionDown"))
    ready = assess_evacuation(state, EVACUATE, evacuation(), at(61)).candidate
    assert ready is not None
    made = evacuation_input(ready, evacuation(), REGION)
    assert made.target is None and made.service_names() == evacuation().service_names()
    assert (made.trigger.kind, made.trigger.by) == ("alert", f"evac-guardian/{REGION}")
    assert made.trigger.evidence == ["alertmanager:r1"] and "RegionDown" in made.trigger.reason


def test_region_wide_evidence_withdrawn_is_one_decision_for_the_region() -> None:
    before = state_with(alert("r1", service=None), alert("c1"))
    after = apply_batch(before, batch(alert("r1", service=None, firing=False), at=at(30)), at(30))
    gone = withdrawn(before, after, guardian_plans(), at(30), region_wide=False)
    assert [(d.service, d.verdict, d.evidence) for d in gone] == [(None, "withdrawn", ["alertmanager:r1"])]


async def test_with_region_wide_evacuate_the_receiver_configures_each_regions_evacuation(tmp_path: Path) -> None:
    from tests.unit.test_alert_receiver import AUTO, FakeSignaller, config, running

    plans = tmp_path / "plans"
    shutil.copytree(AUTO, plans)
    signaller = FakeSignaller()
    async with running(create_app(config(plans, policy=EVACUATE), signaller)):
        configured = {region: (sent, start) for region, sent, start in signaller.configured}
    assert sorted(configured) == [REGION, TARGET]  # a region with services and no plans too
    sent, start = configured[REGION]
    assert sent.evacuation is not None and start.evacuation == sent.evacuation
    assert sent.evacuation.target is None and sorted(sent.evacuation.service_names()) == ["catalog", "checkout"]
    assert [p.service for p in sent.plans] == ["catalog", "checkout"] and configured[TARGET][0].plans == []
    # The default policy sends no evacuation, and configures only the regions with plans.
    signaller = FakeSignaller()
    async with running(create_app(config(plans), signaller)):
        assert [(region, sent.evacuation) for region, sent, _ in signaller.configured] == [(REGION, None)]


def test_region_wide_in_the_config_file_is_failover_or_evacuate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "config.toml"
    monkeypatch.setenv("EVAC_CONFIG", str(config_file))
    monkeypatch.delenv("EVAC_ALERTS_POLICY", raising=False)
    config_file.write_text('[alerts_policy]\nregion_wide = "evacuate"\n')
    assert Settings.load().alerts_policy.region_wide == "evacuate"
    config_file.write_text('[alerts_policy]\nregion_wide = "panic"\n')
    with pytest.raises(ConfigError, match=r"alerts_policy\.region_wide in .*'failover' or 'evacuate'"):
        Settings.load()


def test_the_firing_set_is_bounded_per_service_and_in_all_however_many_alerts_arrive() -> None:
    """Issue 20, item 2: three deliveries of 10,000 distinct alerts grew a guardian's state (and
    history) until every task failed with PAYLOADS_TOO_LARGE. Now each service keeps its first
    MAX_FIRING_PER_SERVICE firing alerts and the region MAX_FIRING; the rest are counted."""
    from evac.alerting.models import MAX_BATCH_ALERTS, MAX_FIRING, MAX_FIRING_PER_SERVICE

    state = GuardianState(region=REGION)
    for delivery in range(3):
        alerts = [alert(f"d{delivery}-{i}", service=None if i % 2 else f"svc{i % 40}") for i in range(10_000 // 3)]
        for start in range(0, len(alerts), MAX_BATCH_ALERTS):  # as the receiver signals them
            state = apply_batch(state, batch(*alerts[start : start + MAX_BATCH_ALERTS]), T0)
    per_service = Counter(alert.service for alert in state.firing.values())
    assert len(state.firing) <= MAX_FIRING and max(per_service.values()) <= MAX_FIRING_PER_SERVICE
    assert state.not_kept == 3 * (10_000 // 3) - len(state.firing)
    assert state.evidence_since == T0 and any(a.service == "svc0" for a in state.firing.values())  # the evidence holds
    assert len(state.model_dump_json()) < 1024 * 1024
