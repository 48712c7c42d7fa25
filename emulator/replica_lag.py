"""Cloud Monitoring API v3, ``projects.timeSeries.list``, for the one metric Evac reads: a Cloud
SQL replica's lag behind its primary, ``cloudsql.googleapis.com/database/replication/replica_lag``
(GAUGE, DOUBLE, seconds), on monitored resource ``cloudsql_database`` (label ``database_id`` =
``project:instance``).

Each replica has one point: its lag at the end of the asked interval (or now, if that is
earlier). The lag is the replica's base lag (``emulator.replication_lag`` in the topology, or
``PUT /emulator/v1/sql/instances/{instance}/replicationLag``) plus, while its primary's region
or its own is in an outage, the time since the outage began. A filter on another metric
answers no time series, as for a metric without data.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from emulator.core import Emulator, get_emulator
from emulator.errors import RpcError
from emulator.query import refuse_unknown_parameters
from emulator.state import rfc3339

router = APIRouter(prefix="/v3/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])

METRIC = "cloudsql.googleapis.com/database/replication/replica_lag"
RESOURCE = "cloudsql_database"
_TERM = re.compile(r'\s*(?P<key>[a-z_.]+)\s*=\s*"(?P<value>[^"]*)"\s*(?:AND\s+|$)')
_KEYS = {"metric.type", "resource.type", "resource.labels.database_id", "resource.label.database_id"}


def _filter_terms(text: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            raise RpcError(400, f'The emulator understands only filters of key = "value" terms joined by AND; got: {text}')
        if match["key"] not in _KEYS:
            raise RpcError(400, f"The emulator cannot filter on '{match['key']}' (it understands: {', '.join(sorted(_KEYS))})")
        terms[match["key"].replace("resource.label.", "resource.labels.")] = match["value"]
        position = match.end()
    if "metric.type" not in terms:
        raise RpcError(400, "The filter must name a metric.type.")
    return terms


def _time(text: str, name: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RpcError(400, f"Invalid value for {name}: '{text}' is not an RFC 3339 time.") from None


@router.get("/timeSeries")
async def list_time_series(
    project: str,
    filter: str = Query(...),
    end_time: str = Query(..., alias="interval.endTime"),
    start_time: str | None = Query(None, alias="interval.startTime"),
    view: Literal["FULL", "HEADERS"] = Query("FULL"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    emulator.check_project(project)
    terms = _filter_terms(filter)
    end = _time(end_time, "interval.endTime")
    start = _time(start_time, "interval.startTime") if start_time else end
    if start > end:
        raise RpcError(400, "The interval's startTime is after its endTime.")
    if terms["metric.type"] != METRIC or terms.get("resource.type", RESOURCE) != RESOURCE:
        return {}
    world, now = emulator.world, emulator.now()
    world.settle_data(now)
    at = min(now, end)
    series = []
    for instance in sorted(world.sql_instances.values(), key=lambda i: i.name):
        database_id = f"{project}:{instance.name}"
        if terms.get("resource.labels.database_id", database_id) != database_id or instance.state != "RUNNABLE":
            continue
        lag = world.replica_lag(instance, at)
        if lag is None:
            continue
        one: dict[str, Any] = {
            "metric": {"type": METRIC},
            "resource": {
                "type": RESOURCE,
                "labels": {"project_id": project, "database_id": database_id, "region": instance.region},
            },
            "metricKind": "GAUGE",
            "valueType": "DOUBLE",
            "unit": "s",
        }
        if view == "FULL":
            point = {"interval": {"startTime": rfc3339(at), "endTime": rfc3339(at)}, "value": {"doubleValue": round(lag, 3)}}
            one["points"] = [point] if at >= start else []
        series.append(one)
    return {"timeSeries": series, "unit": "s"} if series else {}
