"""Finding runs: the one list of search attributes, the visibility query and its filters, setup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType

from evac import search_attributes
from evac.control.findable import RunFilter, build_query, parse_since, quote, setup
from evac.errors import BadInput, SearchAttributeConflict

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PLAN_RUNS = "WorkflowType IN ('FailoverWorkflow', 'DrillWorkflow', 'EvacuationWorkflow') AND ExecutionStatus != 'ContinuedAsNew'"


def test_the_dev_server_flags_give_each_attribute_its_type():
    flags = search_attributes.dev_server_flags()
    pairs = dict(value.split("=") for value in flags[1::2])
    assert flags[::2] == ["--search-attribute"] * len(search_attributes.ALL)
    assert pairs["EvacRecoverySeconds"] == "Double" and pairs["EvacOutcome"] == "Keyword"
    assert list(pairs) == [key.name for key in search_attributes.ALL]


def test_no_filter_lists_evac_s_runs_of_every_kind_one_row_per_evacuation():
    assert build_query(RunFilter()) == PLAN_RUNS


def test_every_filter_becomes_a_clause():
    query = build_query(
        RunFilter(service="checkout", region="us-central1", kind="drill", trigger="schedule", outcome="passed", since="30d"),
        now=NOW,
    )
    assert query == (
        f"{PLAN_RUNS} AND EvacService = 'checkout'"
        " AND (EvacSourceRegion = 'us-central1' OR EvacTargetRegion = 'us-central1')"
        " AND EvacKind = 'drill' AND EvacTrigger = 'schedule' AND EvacOutcome = 'passed'"
        " AND StartTime >= '2026-10-29T12:00:00Z'"
    )


def test_running_is_the_execution_status_not_an_outcome():
    assert build_query(RunFilter(outcome="running")) == f"{PLAN_RUNS} AND ExecutionStatus = 'Running'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)), ("400d", timedelta(days=400))],
)
def test_since_takes_days_hours_or_minutes_beyond_thirty_days(text: str, expected: timedelta):
    assert parse_since(text) == expected


@pytest.mark.parametrize(
    ("filter", "flag"),
    [
        (RunFilter(since="forever"), "--since"),
        (RunFilter(since="0d"), "--since"),
        (RunFilter(since="3651d"), "--since"),
        (RunFilter(since="1.5d"), "--since"),
        (RunFilter(kind="evacuate"), "--kind"),
        (RunFilter(trigger="cron"), "--trigger"),
        (RunFilter(outcome="ok"), "--outcome"),
        (RunFilter(service="x' OR '1'='1"), "--service"),
        (RunFilter(region="US_EAST"), "--region"),
        (RunFilter(limit=0), "--limit"),
        (RunFilter(limit=100_000), "--limit"),
    ],
)
def test_a_bad_filter_is_refused_in_one_sentence_naming_it(filter: RunFilter, flag: str):
    with pytest.raises(BadInput) as refused:
        build_query(filter)
    message = str(refused.value)
    assert message.startswith(flag) and "\n" not in message


def test_values_are_quoted_safely():
    assert quote("it's") == r"'it\'s'"
    assert quote("a\\b") == r"'a\\b'"


class _Operator:
    def __init__(self, registered: dict[str, int]):
        self.registered = dict(registered)
        self.added: list[dict[str, Any]] = []

    async def list_search_attributes(self, request: Any) -> Any:
        return SimpleNamespace(
            system_attributes={"WorkflowType": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}, custom_attributes=self.registered
        )

    async def add_search_attributes(self, request: Any) -> None:
        self.added.append(dict(request.search_attributes))
        self.registered.update(request.search_attributes)


def _client(operator: _Operator) -> Any:
    return SimpleNamespace(namespace="default", operator_service=operator)


def test_setup_adds_only_what_is_missing_and_then_finds_everything():
    operator = _Operator({"EvacService": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    first = asyncio.run(setup(_client(operator)))
    assert [(a.name, a.action) for a in first][:2] == [("EvacService", "already present"), ("EvacPlan", "added")]
    [added] = operator.added
    assert "EvacService" not in added and added["EvacRecoverySeconds"] == IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE
    second = asyncio.run(setup(_client(operator)))
    assert {a.action for a in second} == {"already present"} and len(operator.added) == 1


def test_setup_refuses_a_name_registered_with_another_type_and_adds_nothing():
    operator = _Operator({"EvacRecoverySeconds": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    with pytest.raises(SearchAttributeConflict, match="EvacRecoverySeconds is registered .* as Keyword, Evac needs Double"):
        asyncio.run(setup(_client(operator)))
    assert operator.added == []


def test_a_run_without_a_kind_attribute_is_named_by_its_workflow_type():
    from evac.control.findable import row_of

    def execution(workflow_type: str, attributes: dict[str, Any]) -> Any:
        from temporalio.common import SearchAttributePair, TypedSearchAttributes

        pairs = [SearchAttributePair(key, value) for key, value in attributes.items()]
        return SimpleNamespace(
            id="x",
            run_id="r",
            workflow_type=workflow_type,
            typed_search_attributes=TypedSearchAttributes(pairs),
            status=None,
            start_time=NOW,
            close_time=None,
        )

    kinds = {t: row_of(execution(t, {})).kind for t in ("FailoverWorkflow", "DrillWorkflow", "EvacuationWorkflow")}
    assert kinds == {
        "FailoverWorkflow": "failover",
        "DrillWorkflow": "drill",
        "EvacuationWorkflow": "evacuation",
    }
    assert row_of(execution("EvacuationWorkflow", {search_attributes.EVAC_KIND: "failback"})).kind == "failback"
    assert row_of(execution("EvacuationWorkflow", {search_attributes.EVAC_KIND: "evacuation"})).kind == "evacuation"
