"""Finding runs: register Evac's search attributes on a namespace (``evac setup``) and list
runs with a visibility query (``evac runs list``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from evac import search_attributes as sa
from evac import workflow_types
from evac.drills import DrillOutcome
from evac.errors import BadInput, SearchAttributeConflict, from_rpc
from evac.evacuation import EvacuationStatus
from evac.runs import RunStatus, Trigger

# --- evac setup -------------------------------------------------------------------------


class AttributeSetup(BaseModel):
    name: str
    type: str
    action: Literal["added", "already present"]


async def setup(client: Client) -> list[AttributeSetup]:
    """Register every attribute of the one list that the namespace lacks; idempotent.

    A name registered with another type raises SearchAttributeConflict before anything is added.
    """
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    registered = {**listed.system_attributes, **listed.custom_attributes}
    report: list[AttributeSetup] = []
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in sa.ALL:
        wanted = IndexedValueType.ValueType(sa.indexed_value_type(key))
        if key.name in registered:
            have = registered[key.name]
            if have != wanted:
                raise SearchAttributeConflict(key.name, _type_name(have), sa.type_name(key), client.namespace)
            report.append(AttributeSetup(name=key.name, type=sa.type_name(key), action="already present"))
        else:
            missing[key.name] = wanted
            report.append(AttributeSetup(name=key.name, type=sa.type_name(key), action="added"))
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        except RPCError as exc:
            raise from_rpc(exc, namespace=client.namespace) from exc
    return report


def _type_name(value: int) -> str:
    name = IndexedValueType.Name(IndexedValueType.ValueType(value)).removeprefix("INDEXED_VALUE_TYPE_")
    return {"KEYWORD": "Keyword", "DOUBLE": "Double"}.get(name, name.title())


# --- evac runs list ---------------------------------------------------------------------

PLAN_WORKFLOW_TYPES = (workflow_types.FAILOVER, workflow_types.DRILL)
# What `evac runs list` lists by default: plan runs, region evacuations and their fail-backs
# (EvacuationWorkflow runs too, EvacKind 'failback').
RUN_WORKFLOW_TYPES = (*PLAN_WORKFLOW_TYPES, workflow_types.EVACUATION)
KIND_OF_TYPE = {workflow_types.DRILL: "drill", workflow_types.EVACUATION: "evacuation"}
TRIGGERS: tuple[str, ...] = Trigger.model_fields["kind"].annotation.__args__  # type: ignore[union-attr]
OUTCOMES: tuple[str, ...] = tuple(
    dict.fromkeys([*(s.value for s in RunStatus), *(o.value for o in DrillOutcome), *(e.value for e in EvacuationStatus)])
)
MAX_LOOKBACK = timedelta(days=3650)
MAX_LIMIT = 1000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_LOOKBACK = re.compile(r"^(\d{1,7})([dhm])\Z")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_since(text: str, flag: str = "--since") -> timedelta:
    """``30d``, ``12h``, ``90m``: how far back to look (at most ten years); errors name ``flag``."""
    match = _LOOKBACK.match(text.strip())
    if not match:
        raise BadInput(f"{flag} '{text}' is not a lookback; use a whole number of days, hours or minutes like 30d, 12h, 90m")
    amount = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if amount <= timedelta(0) or amount > MAX_LOOKBACK:
        raise BadInput(f"{flag} '{text}' must be more than nothing and at most 3650d")
    return amount


@dataclass(frozen=True)
class RunFilter:
    service: str | None = None
    region: str | None = None
    kind: str | None = None
    trigger: str | None = None
    outcome: str | None = None
    since: str | None = None
    limit: int = 50

    def validate(self) -> None:
        """Refuse a bad filter value in one sentence (BadInput: exit 2)."""
        for flag, value in (("--service", self.service), ("--region", self.region)):
            if value is not None and not _NAME.match(value):
                raise BadInput(f"{flag} '{value}' is not a name (lowercase letters, digits and '-')")
        for flag, value, allowed in (
            ("--kind", self.kind, sa.KINDS),
            ("--trigger", self.trigger, TRIGGERS),
            ("--outcome", self.outcome, OUTCOMES),
        ):
            if value is not None and value not in allowed:
                raise BadInput(f"{flag} '{value}' is not one of: {', '.join(allowed)}")
        if self.since is not None:
            parse_since(self.since)
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadInput(f"--limit {self.limit} must be between 1 and {MAX_LIMIT}")


def quote(value: str) -> str:
    """A visibility-query string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(moment: datetime) -> str:
    """A visibility-query time literal (UTC, to the second)."""
    return quote(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def build_query(filter: RunFilter, now: datetime | None = None) -> str:
    """The visibility query for ``filter`` (validated first): Evac's runs only (failovers, drills,
    evacuations and their failbacks), one row per evacuation, not one per run it continued as."""
    filter.validate()
    types = ", ".join(quote(t) for t in RUN_WORKFLOW_TYPES)
    clauses = [f"WorkflowType IN ({types})", "ExecutionStatus != 'ContinuedAsNew'"]
    if filter.kind == "evacuation":
        clauses = [f"WorkflowType = '{workflow_types.EVACUATION}'", "ExecutionStatus != 'ContinuedAsNew'"]
    if filter.service is not None:
        clauses.append(f"{sa.EVAC_SERVICE.name} = {quote(filter.service)}")
    if filter.region is not None:
        region = quote(filter.region)
        clauses.append(f"({sa.EVAC_SOURCE_REGION.name} = {region} OR {sa.EVAC_TARGET_REGION.name} = {region})")
    if filter.kind is not None:
        clauses.append(f"{sa.EVAC_KIND.name} = {quote(filter.kind)}")
    if filter.trigger is not None:
        clauses.append(f"{sa.EVAC_TRIGGER.name} = {quote(filter.trigger)}")
    if filter.outcome == "running":
        clauses.append("ExecutionStatus = 'Running'")
    elif filter.outcome is not None:
        clauses.append(f"{sa.EVAC_OUTCOME.name} = {quote(filter.outcome)}")
    if filter.since is not None:
        start = (now or datetime.now(UTC)) - parse_since(filter.since)
        clauses.append(f"StartTime >= {time_literal(start)}")
    return " AND ".join(clauses)  # newest first: the visibility store's own order


class RunRow(BaseModel):
    workflow_id: str
    run_id: str
    kind: str | None
    service: str | None
    source: str | None
    target: str | None
    trigger: str | None
    initiator: str | None
    plan: str | None
    plan_digest: str | None
    started_at: datetime
    ended_at: datetime | None
    status: str
    outcome: str | None
    recovery_seconds: float | None
    replication_lag_seconds: float | None = None


def row_of(execution: WorkflowExecution) -> RunRow:
    attrs = execution.typed_search_attributes
    status = execution.status
    kind = attrs.get(sa.EVAC_KIND) or KIND_OF_TYPE.get(execution.workflow_type or "", "failover")
    outcome = attrs.get(sa.EVAC_OUTCOME)
    if outcome is None and status is not None and status != WorkflowExecutionStatus.RUNNING:
        outcome = status.name.lower()  # ended without recording one (an older run, or terminated)
    return RunRow(
        workflow_id=execution.id,
        run_id=execution.run_id,
        kind=kind,
        service=attrs.get(sa.EVAC_SERVICE),
        source=attrs.get(sa.EVAC_SOURCE_REGION),
        target=attrs.get(sa.EVAC_TARGET_REGION),
        trigger=attrs.get(sa.EVAC_TRIGGER),
        initiator=attrs.get(sa.EVAC_INITIATOR),
        plan=attrs.get(sa.EVAC_PLAN),
        plan_digest=attrs.get(sa.EVAC_PLAN_DIGEST),
        started_at=execution.start_time,
        ended_at=execution.close_time,
        status=status.name.lower() if status is not None else "unknown",
        outcome=outcome,
        recovery_seconds=attrs.get(sa.EVAC_RECOVERY_SECONDS),
        replication_lag_seconds=attrs.get(sa.EVAC_REPLICATION_LAG_SECONDS),
    )


async def list_runs(client: Client, filter: RunFilter) -> list[RunRow]:
    """Evac's runs matching ``filter``, newest first, at most ``filter.limit``."""
    return await query_rows(client, build_query(filter), filter.limit)


async def query_rows(client: Client, query: str, limit: int) -> list[RunRow]:
    """The runs a visibility query finds, in the visibility store's order (newest first), at most ``limit``."""
    rows: list[RunRow] = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            rows.append(row_of(execution))
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    return rows


__all__: list[Any] = ["AttributeSetup", "RunFilter", "RunRow", "build_query", "list_runs", "parse_since", "query_rows", "setup"]
