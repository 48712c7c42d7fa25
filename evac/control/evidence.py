"""Gathering the evidence across runs (``evac audit report``) from Temporal's visibility store.

One query reads Evac's plan runs started within the longer of the window and the drill policy
(newest first, at most :data:`ROW_CAP`); then, for each service of the topology without a passed
drill among them, one query finds its newest passed drill of any age. One more reads the readiness
evaluations that ended (completed) within the window, newest first, at most as many, each with
its services' states from its memo. :mod:`evac.audit.evidence` computes the report from those rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from evac import workflow_types
from evac.audit.evidence import DRILL, PASSED, EvidenceReport, ReadinessEvaluation, build_report
from evac.control.findable import RunFilter, RunRow, build_query, query_rows, quote, time_literal
from evac.errors import from_rpc
from evac.readiness import MEMO_SERVICES
from evac.topology import Topology

ROW_CAP = 10_000


async def gather(
    client: Client, topology: Topology, *, since: timedelta, policy: timedelta, now: datetime, row_cap: int = ROW_CAP
) -> EvidenceReport:
    """The evidence report for ``topology``'s services over the runs started within ``since`` of ``now``."""
    window = max(since, policy)
    query = build_query(RunFilter(since=f"{max(1, int(window.total_seconds()) // 60)}m"), now=now)
    rows = await query_rows(client, query, row_cap + 1)
    capped = len(rows) > row_cap
    rows = rows[:row_cap]
    passed_within = {row.service for row in rows if row.kind == DRILL and row.outcome == PASSED}
    last_passed: dict[str, RunRow] = {}
    for service in sorted(topology.services):
        if service in passed_within:
            continue
        newest = await query_rows(client, build_query(RunFilter(service=service, kind=DRILL, outcome=PASSED)), 1)
        if newest:
            last_passed[service] = newest[0]
    evaluations = await readiness_evaluations(client, since=now - since, limit=row_cap + 1)
    return build_report(
        rows,
        list(topology.services),
        now=now,
        since=since,
        policy=policy,
        last_passed=last_passed,
        namespace=client.namespace,
        row_cap=row_cap if capped else None,
        evaluations=evaluations[:row_cap],
        readiness_cap=row_cap if len(evaluations) > row_cap else None,
    )


async def readiness_evaluations(client: Client, *, since: datetime, limit: int) -> list[ReadinessEvaluation]:
    """The readiness evaluations that completed at or after ``since``, newest first, at most ``limit``,
    each with its services' states (none for an evaluation whose memo has no ``readiness_services``)."""
    query = (
        f"WorkflowType = {quote(workflow_types.READINESS)} AND ExecutionStatus = 'Completed' "
        f"AND CloseTime >= {time_literal(since)}"
    )
    found: list[ReadinessEvaluation] = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            if execution.close_time is None:
                continue
            found.append(
                ReadinessEvaluation(
                    workflow_id=execution.id,
                    run_id=execution.run_id,
                    ended_at=execution.close_time,
                    services=await execution.memo_value(MEMO_SERVICES, {}),
                )
            )
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    return found


__all__ = ["ROW_CAP", "gather", "readiness_evaluations"]
