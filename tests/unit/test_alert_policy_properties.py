"""The guardian's policy under any sequence of alerts, time steps and world facts (hypothesis):
the guards are never violated. The test drives the pure functions the way the guardian does
(apply the batch, assess, judge the candidates, record, start the fires) and checks every fire
against its own model of the evidence, not against the code under test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from hypothesis import given, settings, target
from hypothesis import strategies as st

from evac.alerting.models import (
    MAX_DECISIONS,
    AlertBatch,
    AlertEvidence,
    GuardianPlan,
    GuardianPolicy,
    GuardianState,
    KillSwitch,
    ServiceFacts,
    StartedFailover,
    WorldFacts,
)
from evac.alerting.policy import Candidate, apply_batch, assess, failover_input, judge, record
from evac.control.start import failover_inputs, load_documents
from evac.plan import ApprovalStep, Plan
from evac.runs import Trigger
from tests.conftest import DEMO

REGION = "europe-west1"
TARGET = "us-central1"
SERVICES = ("checkout", "catalog")
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@cache
def demo_inputs() -> dict[str, GuardianPlan]:
    plan, topology = load_documents(DEMO / "failover.yaml", None)
    return {
        item.service: GuardianPlan(service=item.service, plan_name=plan.name, target=plan.target, auto=True, input=item)
        for item in failover_inputs(plan, topology, Trigger(by="evac-alerts"))
    }


# --- strategies --------------------------------------------------------------------------------

policies = st.builds(
    GuardianPolicy,
    min_duration=st.sampled_from([timedelta(0), timedelta(seconds=30), timedelta(seconds=60), timedelta(minutes=5)]),
    min_alerts=st.integers(1, 3),
    min_services=st.integers(1, 3),
    cooldown=st.sampled_from([timedelta(0), timedelta(minutes=1), timedelta(minutes=30), timedelta(hours=2)]),
    max_per_hour=st.integers(1, 4),
    approvers=st.sampled_from([[], ["alice"]]),
)

alerts = st.builds(
    AlertEvidence,
    source=st.sampled_from(["alertmanager", "cloud_monitoring"]),
    key=st.sampled_from(["a", "b", "c", "d"]),
    name=st.sampled_from(["HighErrorRate", "RegionDown"]),
    region=st.sampled_from([REGION, REGION, REGION, TARGET]),
    service=st.sampled_from(["checkout", "catalog", None, "search"]),
    firing=st.sampled_from([True, True, False]),
    starts_at=st.just(T0),
)

# A delivery that resolves every alert of the region: the episode ends (and a later one may begin).
CLEAR = [
    AlertEvidence(source=source, key=key, name="HighErrorRate", region=REGION, firing=False, starts_at=T0)
    for source in ("alertmanager", "cloud_monitoring")
    for key in "abcd"
]

# Seconds between steps: often within one debounce window, sometimes across cooldowns and hours.
advances = st.one_of(st.integers(0, 90), st.sampled_from([300, 1800, 3600, 7200]))


# What may stand in a service's way, one thing at a time (so that each guard is met alone).
DEFECTS = ["none", "none", "none", "busy", "alerting", "unhealthy", "unreadable", "failed_over", "no_facts"]


@st.composite
def service_facts(draw: st.DrawFn, service: str, now: datetime) -> ServiceFacts | None:
    defect = draw(st.sampled_from(DEFECTS))
    if defect == "no_facts":
        return None
    healthy = {"unhealthy": draw(st.integers(0, 1)), "unreadable": None}.get(defect, draw(st.integers(2, 5)))
    ago = draw(st.sampled_from([10, 120, 1800, 7200])) if defect == "failed_over" else None
    return ServiceFacts(
        service=service,
        target=TARGET,
        target_healthy=healthy,
        target_required=2,
        target_alerts=["alertmanager:t"] if defect == "alerting" else [],
        busy="failover/x (run r)" if defect == "busy" else None,
        last_failover_at=None if ago is None else now - timedelta(seconds=ago),
    )


@st.composite
def world_facts(draw: st.DrawFn, now: datetime) -> WorldFacts:
    enabled = draw(st.sampled_from([True, True, True, True, True, False]))
    switch = KillSwitch() if enabled else KillSwitch(enabled=False, by="alice", reason="storm", at=now)
    services = [facts for service in SERVICES if (facts := draw(service_facts(service, now))) is not None]
    visibility = draw(st.sampled_from([0, 0, 0, 1, 2, 5]))  # visibility lags: often it has seen nothing yet
    return WorldFacts(switch=switch, automatic_last_hour=visibility, services=services)


@dataclass
class Fire:
    service: str
    at: datetime
    episode: int


@dataclass
class Model:
    """The test's own account of the region's evidence: which alerts fire, since when."""

    firing: dict[str, str | None] = field(default_factory=dict)  # key -> service
    since: datetime | None = None
    episode: int = 0
    fires: list[Fire] = field(default_factory=list)

    def apply(self, batch: AlertBatch, now: datetime) -> None:
        had = bool(self.firing)
        for alert in batch.alerts:
            if alert.region != REGION:
                continue
            key = f"{alert.source}:{alert.key}"
            if alert.firing:
                self.firing[key] = alert.service
            else:
                self.firing.pop(key, None)
        if not self.firing:
            self.since = None
        elif not had:
            self.since = now
            self.episode += 1


def check_fire(service: str, evidence: list[str], now: datetime, facts: WorldFacts, policy: GuardianPolicy, model: Model) -> None:
    """Every promise the guardian makes about a failover it starts."""
    assert facts.switch.enabled, "fired while automatic failover was disabled"
    [seen] = [s for s in facts.services if s.service == service]
    assert not seen.target_alerts, "fired into an alerting target"
    assert seen.target_healthy is not None and seen.target_healthy >= seen.target_required, "fired into an unhealthy target"
    assert seen.busy is None, "fired while the service had a run"
    assert seen.last_failover_at is None or now - seen.last_failover_at >= policy.cooldown, "fired inside the cooldown"
    mine = [f for f in model.fires if f.service == service]
    assert all(now - f.at >= policy.cooldown for f in mine), "fired twice inside the cooldown"
    assert all(f.episode != model.episode for f in mine), "fired twice in one evidence episode"
    in_hour = [f for f in model.fires if now - f.at < HOUR]
    assert len(in_hour) + 1 <= policy.max_per_hour, "more fires in an hour than the cap"
    assert facts.automatic_last_hour < policy.max_per_hour, "fired while visibility already counted the cap"
    assert model.since is not None and now - model.since >= policy.min_duration, "fired before the evidence held"
    assert evidence and all(key in model.firing and model.firing[key] in (service, None) for key in evidence)
    assert len({key for key, named in model.firing.items() if named in (service, None)}) >= policy.min_alerts or (
        len({named for named in model.firing.values() if named is not None}) >= policy.min_services > 1
    ), "fired on too few alerts"


Step = tuple[int, list[AlertEvidence] | None, WorldFacts]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[GuardianPolicy, dict[str, bool], list[Step]]:
    policy = draw(policies)
    auto = {service: draw(st.booleans()) for service in SERVICES}
    steps: list[Step] = []
    now = T0
    for _ in range(draw(st.integers(1, 40))):
        advance = draw(advances)
        now += timedelta(seconds=advance)
        batch = draw(st.one_of(st.none(), st.lists(alerts, min_size=1, max_size=4), st.just(CLEAR)))
        steps.append((advance, batch, draw(world_facts(now))))
    return policy, auto, steps


@settings(deadline=None, max_examples=150)
@given(scenarios())
def test_no_sequence_of_alerts_and_facts_breaks_a_guard(scenario: tuple[GuardianPolicy, dict[str, bool], list[Step]]) -> None:
    policy, auto, steps = scenario
    plans = [plan.model_copy(update={"auto": auto[service]}) for service, plan in demo_inputs().items()]
    state = GuardianState(region=REGION)
    model = Model()
    now = T0
    for advance, batch, facts in steps:
        now += timedelta(seconds=advance)
        if batch is not None:
            delivery = AlertBatch(alerts=batch, received_at=now)
            state = apply_batch(state, delivery, now)
            model.apply(delivery, now)
        assert set(state.firing) == set(model.firing) and state.evidence_since == model.since
        assessment = assess(state, policy, plans, now)
        if assessment.wake_at is not None:
            assert assessment.wake_at > now
        for hold in assessment.holds:
            record(state, hold)
        for decision in judge(assessment.candidates, facts, policy, state, now):
            record(state, decision)
            if decision.verdict != "fire":
                continue
            assert decision.service is not None
            check_fire(decision.service, decision.evidence, now, facts, policy, model)
            [ready] = [c for c in assessment.candidates if c.service == decision.service]
            started_with = failover_input(ready, policy, REGION, now)
            assert started_with.trigger.kind == "alert" and started_with.trigger.evidence == decision.evidence
            first = started_with.plan.steps[0]
            assert isinstance(first, ApprovalStep) is (not ready.plan.auto)
            assert started_with.plan_digest == started_with.plan.digest()
            model.fires.append(Fire(decision.service, now, model.episode))
            state.started.append(
                StartedFailover(
                    service=decision.service,
                    workflow_id=f"failover/{decision.service}",
                    run_id=f"r{len(model.fires)}",
                    target=TARGET,
                    at=now,
                    evidence=decision.evidence,
                    approval_required=not ready.plan.auto,
                )
            )
        assert len(state.decisions) <= MAX_DECISIONS
    # Steer the search towards busy histories: many fires, and fires close together.
    target(float(len(model.fires)), label="fires")
    target(float(sum(1 for a, b in zip(model.fires, model.fires[1:], strict=False) if b.at - a.at < HOUR)), label="close fires")


# A storm's alerts: an alert's labels (its service) are what its fingerprint is made of, so they
# stay the same across re-deliveries.
SERVICE_OF = {"a": "checkout", "b": "catalog", "c": None, "d": "search"}
storm_alerts = st.builds(
    lambda source, key: AlertEvidence(
        source=source, key=key, name="RegionDown", region=REGION, service=SERVICE_OF[key], firing=True, starts_at=T0
    ),
    st.sampled_from(["alertmanager", "cloud_monitoring"]),
    st.sampled_from(sorted(SERVICE_OF)),
)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.lists(storm_alerts, min_size=1, max_size=6), min_size=1, max_size=30), policies)
def test_a_storm_of_repeats_fires_each_service_at_most_once(
    deliveries: list[list[AlertEvidence]], policy: GuardianPolicy
) -> None:
    """Alerts that never resolve (deliveries repeated over three hours): one episode, so at most one
    fire per service however long it lasts, and the record does not grow with the storm."""
    plans = list(demo_inputs().values())
    state = GuardianState(region=REGION)
    facts = WorldFacts(
        switch=KillSwitch(),
        automatic_last_hour=0,
        services=[ServiceFacts(service=s, target=TARGET, target_healthy=3, target_required=2) for s in SERVICES],
    )
    storm = deliveries
    fired: list[str] = []
    for second in range(0, 3 * 3600, 97):
        now = T0 + timedelta(seconds=second)
        state = apply_batch(state, AlertBatch(alerts=storm[second % len(storm)], received_at=now), now)
        assessment = assess(state, policy, plans, now)
        for hold in assessment.holds:
            record(state, hold)
        for decision in judge(assessment.candidates, facts, policy, state, now):
            record(state, decision)
            if decision.verdict == "fire" and decision.service is not None:
                fired.append(decision.service)
                state.started.append(
                    StartedFailover(
                        service=decision.service,
                        workflow_id=f"failover/{decision.service}",
                        run_id="r",
                        target=TARGET,
                        at=now,
                        evidence=decision.evidence,
                        approval_required=False,
                    )
                )
    assert len(fired) == len(set(fired))
    # A line per service for each change of its evidence or outcome, not one per delivery.
    keys = {f"{a.source}:{a.key}" for delivery in storm for a in delivery if a.region == REGION}
    assert len(state.decisions) <= (len(keys) + 4) * (len(SERVICES) + 1)


@settings(deadline=None, max_examples=40)
@given(st.lists(st.text(alphabet="abcdefghij-", min_size=1, max_size=12), min_size=1, max_size=4, unique=True))
def test_a_plan_not_auto_always_validates_with_its_approval_step(approvers: list[str]) -> None:
    plan = next(iter(demo_inputs().values())).model_copy(update={"auto": False})
    policy = GuardianPolicy(approvers=[*approvers, approvers[0]])
    started_with = failover_input(Candidate(plan.service, plan, ["alertmanager:a"]), policy, REGION, T0)
    again = Plan.model_validate(started_with.plan.model_dump(mode="json"))
    assert again.digest() == started_with.plan_digest
    first = again.steps[0]
    assert isinstance(first, ApprovalStep) and first.approvers == approvers


@settings(deadline=None, max_examples=100)
@given(
    policies,
    st.lists(st.tuples(st.sampled_from(SERVICES), st.integers(0, 180)), max_size=6),  # minutes ago
    st.integers(0, 6),
    st.lists(st.sampled_from(SERVICES), min_size=1, max_size=4),
)
def test_judge_alone_keeps_cooldown_and_cap_when_visibility_lags(
    policy: GuardianPolicy, history: list[tuple[str, int]], visibility: int, services: list[str]
) -> None:
    """The guardian's own record of failovers keeps the cooldown and the cap even when the world's
    facts have not caught up (no last failover seen, visibility counting fewer), and fires granted
    in one call count against the cap."""
    plans = demo_inputs()
    now = T0 + timedelta(hours=3)
    state = GuardianState(region=REGION)
    state.started = [
        StartedFailover(
            service=service,
            workflow_id=f"failover/{service}",
            run_id="r",
            target=TARGET,
            at=now - timedelta(minutes=ago),
            evidence=["alertmanager:a"],
            approval_required=False,
        )
        for service, ago in sorted(history, key=lambda item: -item[1])
    ]
    facts = WorldFacts(
        switch=KillSwitch(),
        automatic_last_hour=visibility,
        services=[ServiceFacts(service=s, target=TARGET, target_healthy=3, target_required=2) for s in SERVICES],
    )
    candidates = [Candidate(service, plans[service], ["alertmanager:a"]) for service in services]
    decisions = judge(candidates, facts, policy, state, now)
    assert [d.service for d in decisions] == services
    fired = [d.service for d in decisions if d.verdict == "fire"]
    own_last_hour = sum(1 for s in state.started if now - s.at < HOUR)
    assert len(fired) <= max(0, policy.max_per_hour - max(visibility, own_last_hour))
    assert len(fired) == len(set(fired))
    for service in fired:
        assert all(now - s.at >= policy.cooldown for s in state.started if s.service == service)
