"""The custom search attributes Evac sets on every run, in one list, each with its type.

They let operators and auditors find runs (``EvacService = 'checkout'``,
``EvacRecoverySeconds > 300``). A namespace must have them registered: ``evac setup`` does it
on a cluster, the embedded dev server is started with them, and the test fixtures register the
same list. They are not encrypted by a payload codec: nothing secret goes into them.

Start-time attributes are set when a run starts (:func:`for_run`); the end-time ones
(:func:`at_end`) are upserted by the workflow when it finishes.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

from evac.runs import DrillInput, FailoverInput, FailoverProgress, RunStatus

EVAC_SERVICE = SearchAttributeKey.for_keyword("EvacService")
EVAC_PLAN = SearchAttributeKey.for_keyword("EvacPlan")
EVAC_TRIGGER = SearchAttributeKey.for_keyword("EvacTrigger")
EVAC_SOURCE_REGION = SearchAttributeKey.for_keyword("EvacSourceRegion")
EVAC_TARGET_REGION = SearchAttributeKey.for_keyword("EvacTargetRegion")
EVAC_SCHEDULE_ID = SearchAttributeKey.for_keyword("EvacScheduleId")
EVAC_KIND = SearchAttributeKey.for_keyword("EvacKind")  # failover | drill | dry_run | evacuation
EVAC_INITIATOR = SearchAttributeKey.for_keyword("EvacInitiator")  # trigger.by
EVAC_PLAN_DIGEST = SearchAttributeKey.for_keyword("EvacPlanDigest")
EVAC_OUTCOME = SearchAttributeKey.for_keyword("EvacOutcome")  # at the end: RunStatus, or a drill's outcome
EVAC_RECOVERY_SECONDS = SearchAttributeKey.for_float("EvacRecoverySeconds")  # at the end, when measured
# At the end of a run with data steps: the largest replication lag they observed (its RPO).
EVAC_REPLICATION_LAG_SECONDS = SearchAttributeKey.for_float("EvacReplicationLagSeconds")

ALL: list[SearchAttributeKey[Any]] = [
    EVAC_SERVICE,
    EVAC_PLAN,
    EVAC_TRIGGER,
    EVAC_SOURCE_REGION,
    EVAC_TARGET_REGION,
    EVAC_SCHEDULE_ID,
    EVAC_KIND,
    EVAC_INITIATOR,
    EVAC_PLAN_DIGEST,
    EVAC_OUTCOME,
    EVAC_RECOVERY_SECONDS,
    EVAC_REPLICATION_LAG_SECONDS,
]

KINDS = ("failover", "drill", "dry_run", "evacuation", "failback")


def type_name(key: SearchAttributeKey[Any]) -> str:
    """The type as Temporal's CLI spells it: ``Keyword``, ``Double`` …"""
    return {"KEYWORD": "Keyword", "FLOAT": "Double"}.get(key.indexed_value_type.name, key.indexed_value_type.name.title())


def indexed_value_type(key: SearchAttributeKey[Any]) -> int:
    """The type as the operator service's ``IndexedValueType`` enum value."""
    return int(key.indexed_value_type.value)


def dev_server_flags() -> list[str]:
    """``temporal server start-dev`` flags that register every attribute."""
    return [arg for key in ALL for arg in ("--search-attribute", f"{key.name}={type_name(key)}")]


def kind_of(input: FailoverInput) -> str:
    if input.dry_run:
        return "dry_run"
    return "drill" if isinstance(input, DrillInput) else "failover"


def for_run(input: FailoverInput) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(EVAC_SERVICE, input.service),
        SearchAttributePair(EVAC_PLAN, input.plan.name),
        SearchAttributePair(EVAC_TRIGGER, input.trigger.kind),
        SearchAttributePair(EVAC_SOURCE_REGION, input.plan.source),
        SearchAttributePair(EVAC_TARGET_REGION, input.plan.target),
        SearchAttributePair(EVAC_KIND, kind_of(input)),
        SearchAttributePair(EVAC_INITIATOR, input.trigger.by),
        SearchAttributePair(EVAC_PLAN_DIGEST, input.plan_digest),
    ]
    if input.trigger.schedule_id:
        pairs.append(SearchAttributePair(EVAC_SCHEDULE_ID, input.trigger.schedule_id))
    return TypedSearchAttributes(pairs)


def outcome_of(progress: FailoverProgress, status: RunStatus) -> str:
    """A drill's outcome when it has one, else the run's final status."""
    if progress.drill is not None and progress.drill.outcome is not None:
        return progress.drill.outcome.value
    return status.value


def at_end(progress: FailoverProgress, status: RunStatus, recovery_seconds: float | None) -> list[SearchAttributeUpdate[Any]]:
    """The attributes a run upserts when it ends."""
    updates: list[SearchAttributeUpdate[Any]] = [EVAC_OUTCOME.value_set(outcome_of(progress, status))]
    if recovery_seconds is not None:
        updates.append(EVAC_RECOVERY_SECONDS.value_set(recovery_seconds))
    lags = [s.replication_lag.seconds for s in progress.steps if s.replication_lag is not None and not progress.dry_run]
    measured = [lag for lag in lags if lag is not None]
    if measured:
        updates.append(EVAC_REPLICATION_LAG_SECONDS.value_set(max(measured)))
    return updates
