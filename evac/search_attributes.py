"""The custom search attributes Evac sets on every run, in one list.

They let operators and auditors find runs (``EvacService = 'checkout'``). A namespace must
have them registered; the embedded dev server is started with them. They are not
encrypted by a payload codec: nothing secret goes into them.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from evac.runs import FailoverInput

EVAC_SERVICE = SearchAttributeKey.for_keyword("EvacService")
EVAC_PLAN = SearchAttributeKey.for_keyword("EvacPlan")
EVAC_TRIGGER = SearchAttributeKey.for_keyword("EvacTrigger")
EVAC_SOURCE_REGION = SearchAttributeKey.for_keyword("EvacSourceRegion")
EVAC_TARGET_REGION = SearchAttributeKey.for_keyword("EvacTargetRegion")
EVAC_SCHEDULE_ID = SearchAttributeKey.for_keyword("EvacScheduleId")

ALL = [EVAC_SERVICE, EVAC_PLAN, EVAC_TRIGGER, EVAC_SOURCE_REGION, EVAC_TARGET_REGION, EVAC_SCHEDULE_ID]


def dev_server_flags() -> list[str]:
    """``temporal server start-dev`` flags that register every attribute."""
    return [arg for key in ALL for arg in ("--search-attribute", f"{key.name}=Keyword")]


def for_run(input: FailoverInput) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(EVAC_SERVICE, input.service),
        SearchAttributePair(EVAC_PLAN, input.plan.name),
        SearchAttributePair(EVAC_TRIGGER, input.trigger.kind),
        SearchAttributePair(EVAC_SOURCE_REGION, input.plan.source),
        SearchAttributePair(EVAC_TARGET_REGION, input.plan.target),
    ]
    if input.trigger.schedule_id:
        pairs.append(SearchAttributePair(EVAC_SCHEDULE_ID, input.trigger.schedule_id))
    return TypedSearchAttributes(pairs)
