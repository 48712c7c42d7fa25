"""Spanner database admin API v1: a database (``defaultLeader``), its schema (``getDdl``), a
schema change (``updateDdl``, a long-running operation) and its operation, and the instance and
instance config (whose ``leaderOptions`` are the regions the instance spans).

The only schema change served is the one that moves a database's leader:
``ALTER DATABASE <db> SET OPTIONS (default_leader = '<region>')`` (or ``= NULL``). A leader the
instance config does not offer is ``400 INVALID_ARGUMENT``; a repeated ``operationId`` is
``409 ALREADY_EXISTS``, as on Google Cloud. The leader changes when the operation is done.
Spanner's control plane is global: a region's outage does not stop it.

Errors are ``google.rpc.Status`` JSON (``{"error": {"code", "message", "status"}}``).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from emulator.core import Emulator, get_emulator
from emulator.databases import SpannerDatabase, SpannerInstance, SpannerOperation
from emulator.errors import RpcError
from emulator.faults import operation_effect, operation_fault
from emulator.query import refuse_unknown_parameters
from emulator.state import ApiModel, rfc3339

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])

METADATA_TYPE = "type.googleapis.com/google.spanner.admin.database.v1.UpdateDatabaseDdlMetadata"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
_LEADER_STATEMENT = re.compile(
    r"^\s*ALTER\s+DATABASE\s+`?(?P<database>[A-Za-z][A-Za-z0-9_\-]*)`?\s+SET\s+OPTIONS\s*\(\s*default_leader\s*=\s*"
    r"(?:'(?P<leader>[^']*)'|\"(?P<leader2>[^\"]*)\"|(?P<null>NULL))\s*\)\s*;?\s*$",
    re.IGNORECASE,
)
_OPERATION_ID = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


class UpdateDatabaseDdlBody(ApiModel):
    statements: list[str] = Field(min_length=1)
    operation_id: str | None = None


def _database_name(project: str, instance: str, database: str) -> str:
    return f"projects/{project}/instances/{instance}/databases/{database}"


def _instance(emulator: Emulator, project: str, instance: str) -> SpannerInstance:
    emulator.check_project(project)
    found = emulator.world.spanner_instances.get(instance)
    if found is None:
        raise RpcError(404, f"Instance not found: projects/{project}/instances/{instance}")
    return found


def _database(emulator: Emulator, project: str, instance: str, database: str) -> SpannerDatabase:
    _instance(emulator, project, instance)
    emulator.world.settle_data(emulator.now())
    found = emulator.world.spanner_databases.get(f"{instance}/{database}")
    if found is None:
        raise RpcError(404, f"Database not found: {_database_name(project, instance, database)}")
    return found


def database_json(emulator: Emulator, database: SpannerDatabase) -> dict[str, Any]:
    project = emulator.world.project
    body: dict[str, Any] = {
        "name": _database_name(project, database.instance, database.name),
        "state": "READY",
        "createTime": rfc3339(database.created_at),
        "versionRetentionPeriod": "1h",
        "earliestVersionTime": rfc3339(max(database.created_at, emulator.now() - 3600)),
        "databaseDialect": "GOOGLE_STANDARD_SQL",
        "enableDropProtection": False,
        "reconciling": False,
    }
    if database.default_leader:
        body["defaultLeader"] = database.default_leader
    return body


def _ddl(database: SpannerDatabase) -> list[str]:
    statements = ["CREATE TABLE Items (\n  ItemId STRING(36) NOT NULL,\n  Name STRING(MAX),\n) PRIMARY KEY(ItemId)"]
    if database.default_leader:
        statements.insert(0, f"ALTER DATABASE `{database.name}` SET OPTIONS (\n  default_leader = '{database.default_leader}'\n)")
    return statements


def operation_json(emulator: Emulator, op: SpannerOperation) -> dict[str, Any]:
    now = emulator.now()
    project = emulator.world.project
    instance, database = op.database.split("/", 1)
    done = op.done(now)
    end = op.insert_time + op.duration
    progress: dict[str, Any] = {"progressPercent": 100 if done else 0, "startTime": rfc3339(op.insert_time)}
    metadata: dict[str, Any] = {
        "@type": METADATA_TYPE,
        "database": _database_name(project, instance, database),
        "statements": op.statements,
        "progress": [dict(progress, endTime=rfc3339(end)) if done else progress for _ in op.statements],
    }
    body: dict[str, Any] = {"name": op.name, "metadata": metadata, "done": done}
    if done and op.failure == "error":
        body["error"] = {"code": 13, "message": f"The schema change failed (injected {op.fault_id})."}
    elif done:
        metadata["commitTimestamps"] = [rfc3339(end) for _ in op.statements]
        body["response"] = {"@type": EMPTY_TYPE}
    return body


@router.get("/instanceConfigs/{config}")
async def get_instance_config(project: str, config: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    emulator.check_project(project)
    instance = next((i for i in emulator.world.spanner_instances.values() if i.config == config), None)
    if instance is None:
        raise RpcError(404, f"Instance config not found: projects/{project}/instanceConfigs/{config}")
    return {
        "name": f"projects/{project}/instanceConfigs/{config}",
        "displayName": f"Custom multi-region ({', '.join(instance.regions)})",
        "configType": "USER_MANAGED",
        "replicas": [
            {"location": region, "type": "READ_WRITE", "defaultLeaderLocation": i == 0}
            for i, region in enumerate(instance.regions)
        ],
        "leaderOptions": list(instance.regions),
        "state": "READY",
        "reconciling": False,
    }


@router.get("/instances/{instance}")
async def get_instance(project: str, instance: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    found = _instance(emulator, project, instance)
    return {
        "name": f"projects/{project}/instances/{found.name}",
        "config": f"projects/{project}/instanceConfigs/{found.config}",
        "displayName": found.name,
        "nodeCount": 1,
        "processingUnits": 1000,
        "state": "READY",
        "instanceType": "PROVISIONED",
        "createTime": rfc3339(found.created_at),
        "updateTime": rfc3339(found.created_at),
    }


@router.get("/instances/{instance}/databases/{database}")
async def get_database(project: str, instance: str, database: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return database_json(emulator, _database(emulator, project, instance, database))


@router.get("/instances/{instance}/databases/{database}/ddl")
async def get_database_ddl(project: str, instance: str, database: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return {"statements": _ddl(_database(emulator, project, instance, database))}


@router.patch("/instances/{instance}/databases/{database}/ddl")
async def update_database_ddl(
    project: str,
    instance: str,
    database: str,
    body: UpdateDatabaseDdlBody,
    request: Request,
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = _database(emulator, project, instance, database)
    options = emulator.world.spanner_instances[instance].regions
    leader: str | None = found.default_leader
    for statement in body.statements:
        match = _LEADER_STATEMENT.match(statement)
        if match is None:
            raise RpcError(
                400,
                f"The emulator supports only ALTER DATABASE <database> SET OPTIONS (default_leader = '<region>' | NULL), "
                f"not: {statement.strip()[:120]}",
            )
        if match["database"] != database:
            raise RpcError(400, f"The statement alters database '{match['database']}', not '{database}': {statement.strip()}")
        leader = None if match["null"] else (match["leader"] if match["leader"] is not None else match["leader2"])
        if leader is not None and leader not in options:
            raise RpcError(
                400,
                f"Invalid default_leader '{leader}': it is not one of the leader options of the instance configuration "
                f"({', '.join(options)}).",
            )
    name = _database_name(project, instance, database)
    operation_id = body.operation_id or f"_auto_op_{secrets.token_hex(8)}"
    if body.operation_id is not None and not _OPERATION_ID.match(body.operation_id):
        raise RpcError(400, f"Invalid operation id '{body.operation_id}': it must match [a-z][a-z0-9_]*.")
    op_name = f"{name}/operations/{operation_id}"
    if op_name in emulator.world.spanner_operations:
        raise RpcError(409, f"Operation {op_name} already exists.")
    fault = operation_fault(request)
    op = SpannerOperation(
        name=op_name,
        database=f"{instance}/{database}",
        statements=list(body.statements),
        leader=leader,
        insert_time=emulator.now(),
        duration=emulator.settings.operation_delay,
        failure=fault.outcome if fault else None,
        fault_id=fault.fault_id if fault else None,
    )
    emulator.world.spanner_operations[op.name] = op
    request.state.effect = operation_effect(fault)
    if fault is not None and fault.outcome != "error":  # never completes: the change applies at once
        found.default_leader, op.applied = leader, True
    return operation_json(emulator, op)


@router.get("/instances/{instance}/databases/{database}/operations/{operation}")
async def get_database_operation(
    project: str, instance: str, database: str, operation: str, emulator: Emulator = Depends(get_emulator)
) -> Any:
    _database(emulator, project, instance, database)
    name = f"{_database_name(project, instance, database)}/operations/{operation}"
    op = emulator.world.spanner_operations.get(name)
    if op is None:
        raise RpcError(404, f"Operation not found: {name}")
    return operation_json(emulator, op)
