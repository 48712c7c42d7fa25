"""Gathering the evidence across runs (``evac audit report``) from Temporal's visibility store.

One query reads Evac's plan runs started within the longer of the window and the drill policy
(newest first, at most :data:`ROW_CAP`); then, for each service of the topology without a passed
drill among them, one query finds its newest passed drill of any age. :mod:`evac.audit.evidence`
computes the report from those rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.client import Client

from evac.audit.evidence import DRILL, PASSED, EvidenceReport, build_report
from evac.control.findable import RunFilter, RunRow, build_query, query_rows
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
    return build_report(
        rows,
        list(topology.services),
        now=now,
        since=since,
        policy=policy,
        last_passed=last_passed,
        namespace=client.namespace,
        row_cap=row_cap if capped else None,
    )


__all__ = ["ROW_CAP", "gather"]
