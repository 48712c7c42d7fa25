"""Issue 20: no sequence of accepted messages can push a guardian past Temporal's payload limit.

A guardian's state is carried by continue-as-new beside its configuration and returned by every
status query. Whatever deliveries arrive (each signal at most MAX_BATCH_ALERTS alerts, each
alert's fields bounded by the model the signal is decoded into), whatever it decides and starts,
and however large an accepted configuration is, that payload stays below half of the 2 MB
limit. The sequences are hypothesis's; every alert, decision and started run is as large as the
model lets it be. The workflow applies its messages with these same functions
(``apply_batch``, ``record``, ``note_started``), and ignores a configuration ``size_problem``
refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from evac.alerting.models import (
    MAX_ALERT_KEY,
    MAX_ALERT_NAME,
    MAX_ALERT_SERVICE,
    MAX_ALERT_SUMMARY,
    MAX_BATCH_ALERTS,
    MAX_CONFIG_BYTES,
    MAX_DECISIONS,
    MAX_FIRING,
    AlertBatch,
    AlertEvidence,
    Decision,
    GuardianConfig,
    GuardianInput,
    GuardianPlan,
    GuardianPolicy,
    GuardianState,
    StartedEvacuation,
    StartedFailover,
)
from evac.alerting.policy import apply_batch, note_started, record
from evac.alerting.status import GuardianStatus, PlanSummary
from tests.unit.test_alert_policy_properties import demo_inputs

REGION = "europe-west1"
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
# Temporal's payload limit is 2 MB; everything at its largest stays below half of it.
HALF_THE_LIMIT = 1024 * 1024
SERVICES = [f"{i:0{MAX_ALERT_SERVICE}d}" for i in range(12)]


def big_alert(key: int, service: str | None, firing: bool = True) -> AlertEvidence:
    return AlertEvidence(
        source="alertmanager",
        key=f"{key:0{MAX_ALERT_KEY}d}",
        name="N" * MAX_ALERT_NAME,
        region=REGION,
        service=service,
        firing=firing,
        starts_at=T0,
        ends_at=T0,
        summary="S" * MAX_ALERT_SUMMARY,
    )


def big_decision(at: datetime, service: str | None, n: int) -> Decision:
    return Decision(
        at=at,
        service=service,
        verdict="hold",
        reason=f"{n} " + "R" * 5000,  # a new reason each time: every decision is kept
        guard="target_unhealthy",
        evidence=[f"alertmanager:{i:0{MAX_ALERT_KEY}d}" for i in range(50)],
        plan="P" * 100,
        target="us-central1",
        workflow_id="failover/" + "W" * 100,
        run_id="0" * 36,
    )


def big_started(at: datetime, n: int) -> tuple[StartedFailover, StartedEvacuation]:
    evidence = [f"alertmanager:{i:0{MAX_ALERT_KEY}d}" for i in range(50)]
    failover = StartedFailover(
        service=SERVICES[n % len(SERVICES)],
        workflow_id="failover/" + "W" * 100,
        run_id="0" * 36,
        target="us-central1",
        at=at,
        evidence=evidence,
        approval_required=True,
    )
    evacuation = StartedEvacuation(
        workflow_id="evacuation/" + "W" * 100, run_id="0" * 36, at=at, services=1000, evidence=evidence
    )
    return failover, evacuation


@cache
def largest_config() -> GuardianConfig:
    """The demo's plans, repeated up to the largest configuration a guardian accepts."""
    demo = list(demo_inputs().values())
    plans: list[GuardianPlan] = []
    while True:
        more = demo[len(plans) % len(demo)].model_copy(update={"service": f"svc-{len(plans):04d}"})
        config = GuardianConfig(policy=GuardianPolicy(), plans=[*plans, more])
        if config.size_problem(REGION) is not None:
            return GuardianConfig(policy=GuardianPolicy(), plans=plans)
        plans.append(more)


@cache
def around_the_state() -> tuple[int, int]:
    """The bytes of the continue-as-new input and of a status query's answer, but for the state's
    own (each holds the state once, as JSON: the sizes add up exactly)."""
    config, empty = largest_config(), GuardianState(region=REGION)
    input = GuardianInput(region=REGION, policy=config.policy, plans=config.plans, state=empty)
    status = GuardianStatus(
        region=REGION,
        workflow_id="guardian/" + REGION,
        run_id="0" * 36,
        policy=config.policy,
        plans=[PlanSummary.of(plan) for plan in config.plans],
        state=empty,
        wake_at=T0,
    )
    state = len(empty.model_dump_json())
    return len(input.model_dump_json()) - state, len(status.model_dump_json()) - state


def carried(state: GuardianState) -> int:
    """The larger of the continue-as-new input and a status query's answer, in bytes."""
    return max(around_the_state()) + len(state.model_dump_json())


# One message to the guardian, as it applies it: a delivery, a decision, a run started.
deliveries = st.tuples(
    st.just("deliver"),
    st.integers(1, MAX_BATCH_ALERTS),  # alerts in the signal
    st.integers(0, 10**6),  # the first key
    st.sampled_from([None, *SERVICES]),
    st.booleans(),  # firing (or resolving what those keys fired)
)
messages = st.one_of(
    deliveries,
    st.tuples(st.just("decide"), st.integers(1, 3 * MAX_DECISIONS), st.sampled_from([None, *SERVICES]), st.just(True)),
    st.tuples(st.just("start"), st.integers(1, 120), st.just(None), st.just(True)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(messages, min_size=1, max_size=12))
def test_no_sequence_of_accepted_messages_carries_more_than_half_the_payload_limit(sequence) -> None:
    state = GuardianState(region=REGION)
    now = T0
    for message in sequence:
        now += timedelta(seconds=1)
        if message[0] == "deliver":
            _, count, first, service, firing = message
            alerts = [big_alert(first + i, service, firing) for i in range(count)]
            state = apply_batch(state, AlertBatch(alerts=alerts, received_at=now), now)
        elif message[0] == "decide":
            _, count, service, _ = message
            for n in range(count):
                record(state, big_decision(now, service, n))
        else:
            _, count, _, _ = message
            for n in range(count):
                for started in big_started(now, n):
                    note_started(state, started)
        assert carried(state) < HALF_THE_LIMIT


def test_every_bound_at_once_stays_below_half_the_payload_limit() -> None:
    """The worst case outright: the largest configuration, every firing slot taken by the largest
    alert, every decision and started run kept at its largest."""
    state = GuardianState(region=REGION)
    key = 0
    while len(state.firing) < MAX_FIRING:
        service = SERVICES[key % len(SERVICES)] if key % 7 else None
        state = apply_batch(state, AlertBatch(alerts=[big_alert(key, service)], received_at=T0), T0)
        key += 1
    for n in range(2 * MAX_DECISIONS):
        record(state, big_decision(T0, SERVICES[n % len(SERVICES)], n))
        for started in big_started(T0, n):
            note_started(state, started)
    size = carried(state)
    print(f"largest guardian payload: {size:,} bytes ({len(largest_config().plans)} services' plans)")
    assert size < HALF_THE_LIMIT


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key", "k" * (MAX_ALERT_KEY + 1)),
        ("name", "n" * (MAX_ALERT_NAME + 1)),
        ("service", "s" * (MAX_ALERT_SERVICE + 1)),
        ("summary", "x" * (MAX_ALERT_SUMMARY + 1)),
        ("region", "r" * 64),
    ],
)
def test_an_alert_beyond_its_bounds_does_not_decode(field: str, value: str) -> None:
    """A guardian decodes its signals into these models: one that breaks them is dropped there,
    whoever sent it (the receiver never does)."""
    raw = big_alert(1, None).model_dump(mode="json") | {field: value}
    with pytest.raises(ValidationError, match=field):
        AlertEvidence.model_validate(raw)


def test_a_delivery_of_more_alerts_than_a_signal_takes_does_not_decode() -> None:
    alerts = [big_alert(i, None).model_dump(mode="json") for i in range(MAX_BATCH_ALERTS + 1)]
    with pytest.raises(ValidationError, match="alerts"):
        AlertBatch.model_validate({"alerts": alerts, "received_at": T0.isoformat()})


def test_a_configuration_larger_than_a_guardian_keeps_is_refused_with_its_size() -> None:
    config = largest_config()
    assert config.size_problem(REGION) is None
    more = config.plans[0].model_copy(update={"service": "one-too-many"})
    problem = GuardianConfig(policy=config.policy, plans=[*config.plans, more]).size_problem(REGION)
    assert problem is not None and problem.startswith(f"the guardian of {REGION} would hold ")
    assert f"at most {MAX_CONFIG_BYTES // 1024:,} KiB" in problem
