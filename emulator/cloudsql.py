"""Cloud SQL Admin API v1beta4: ``instances.list/get/insert/delete/switchover/promoteReplica``
and ``operations.list/get``, over the instances ``emulator.databases`` models.

A switchover is called on a primary's DR replica and swaps the two when its operation is DONE
(the old primary, and the primary's other replicas, then replicate from the new one); it needs
the primary, so it is refused while the primary's region is in an outage. ``promoteReplica``
turns a replica into a standalone primary without asking its primary: it works during that
outage, which is what it is for. ``insert`` with ``masterInstanceName`` creates a cross-region
replica (``PENDING_CREATE`` until its operation is DONE); ``delete`` refuses a primary that
still has replicas. Only one operation at a time runs on an instance, as on Google Cloud.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from google.cloud import sqladmin_v1beta4
from pydantic import BeforeValidator, Field

from emulator.core import Emulator, get_emulator
from emulator.databases import SQL_URL, SqlInstance, SqlOperation, SqlOperationType, apply_sql, replica_names
from emulator.errors import ApiError
from emulator.faults import operation_effect, operation_fault
from emulator.query import refuse_unknown_parameters
from emulator.state import ApiModel, rfc3339

router = APIRouter(prefix="/sql/v1beta4/projects/{project}", dependencies=[Depends(refuse_unknown_parameters)])

EDITION = "ENTERPRISE_PLUS"
"""DR replicas (and switchover) are an Enterprise Plus feature."""


def instance_not_found() -> ApiError:
    return ApiError(404, "instanceDoesNotExist", "The Cloud SQL instance does not exist.")


def _in_progress(name: str) -> ApiError:
    return ApiError(
        409,
        "operationInProgress",
        f"Operation failed because another operation was already in progress on instance '{name}'. "
        "Try your request after the current operation is complete.",
    )


def _enum(kind: Any) -> Any:
    """An enum field as the real client sends it: with ``$alt=json;enum-encoding=int`` the
    google-cloud-sql REST transport writes enums as numbers; Google accepts names too."""

    def name(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return kind(value).name
            except ValueError:
                raise ValueError(f"{value} is not a value of {kind.__name__}") from None
        return value

    return BeforeValidator(name)


DatabaseVersion = Annotated[str, _enum(sqladmin_v1beta4.SqlDatabaseVersion)]
InstanceType = Annotated[Literal["CLOUD_SQL_INSTANCE", "READ_REPLICA_INSTANCE"], _enum(sqladmin_v1beta4.SqlInstanceType)]


class SettingsBody(ApiModel):
    """The ``settings`` an insert may carry (the emulator keeps ``tier``)."""

    tier: str | None = None
    edition: Annotated[str, _enum(sqladmin_v1beta4.Settings.Edition)] | None = None
    availability_type: Annotated[str, _enum(sqladmin_v1beta4.SqlAvailabilityType)] | None = None
    kind: str | None = None


class DatabaseInstanceBody(ApiModel):
    """What ``instances.insert`` accepts: a ``DatabaseInstance``'s identifying fields and
    settings; Google's other fields are refused as unknown (the emulator would ignore them)."""

    name: str = Field(pattern=r"^[a-z][-a-z0-9]{0,97}$")
    project: str | None = None
    region: str | None = None
    database_version: DatabaseVersion | None = None
    master_instance_name: str | None = None
    instance_type: InstanceType | None = None
    settings: SettingsBody | None = None
    kind: str | None = None


def _short(name: str) -> str:
    """``project:instance`` (how Google names a master) -> ``instance``."""
    return name.rsplit(":", 1)[-1]


def instance_json(emulator: Emulator, instance: SqlInstance) -> dict[str, Any]:
    project = emulator.world.project
    body: dict[str, Any] = {
        "kind": "sql#instance",
        "name": instance.name,
        "project": project,
        "region": instance.region,
        "gceZone": f"{instance.region}-b",
        "databaseVersion": instance.database_version,
        "backendType": "SECOND_GEN",
        "state": instance.state,
        "instanceType": "READ_REPLICA_INSTANCE" if instance.master else "CLOUD_SQL_INSTANCE",
        "connectionName": f"{project}:{instance.region}:{instance.name}",
        "createTime": rfc3339(instance.created_at),
        "selfLink": f"{SQL_URL}/projects/{project}/instances/{instance.name}",
        "settings": {
            "kind": "sql#settings",
            "tier": instance.tier,
            "edition": EDITION,
            "availabilityType": "REGIONAL",
            "settingsVersion": "1",
        },
    }
    replicas = replica_names(emulator.world.sql_instances, instance.name)
    if replicas:
        body["replicaNames"] = replicas
    if instance.master:
        body["masterInstanceName"] = f"{project}:{instance.master}"
        master = emulator.world.sql_instances.get(instance.master)
        body["replicationCluster"] = {"drReplica": master is not None and master.dr_replica == instance.name}
    elif instance.dr_replica:
        body["replicationCluster"] = {"failoverDrReplicaName": f"{project}:{instance.dr_replica}"}
    return body


def operation_json(emulator: Emulator, op: SqlOperation) -> dict[str, Any]:
    project, now = emulator.world.project, emulator.now()
    status = op.status(now)
    body: dict[str, Any] = {
        "kind": "sql#operation",
        "name": op.name,
        "operationType": op.operation_type,
        "status": status,
        "targetId": op.target,
        "targetProject": project,
        "targetLink": f"{SQL_URL}/projects/{project}/instances/{op.target}",
        "user": "evac-emulator@example.com",
        "insertTime": rfc3339(op.insert_time),
        "selfLink": f"{SQL_URL}/projects/{project}/operations/{op.name}",
    }
    if status != "PENDING":
        body["startTime"] = rfc3339(op.insert_time + op.duration / 5)
    if status == "DONE":
        body["endTime"] = rfc3339(op.insert_time + op.duration)
        if op.failure == "error":
            message = f"The {op.operation_type} operation on instance '{op.target}' failed (injected {op.fault_id})."
            error = {"kind": "sql#operationError", "code": op.error_code or "INTERNAL_ERROR", "message": message}
            body["error"] = {"kind": "sql#operationErrors", "errors": [error]}
    return body


def _settled(emulator: Emulator, project: str) -> None:
    emulator.check_project(project)
    emulator.world.settle_data(emulator.now())


def _instance(emulator: Emulator, project: str, name: str) -> SqlInstance:
    _settled(emulator, project)
    instance = emulator.world.sql_instances.get(name)
    if instance is None:
        raise instance_not_found()
    return instance


def _pending(emulator: Emulator, *names: str) -> None:
    """Refuse a second operation on an instance while one runs."""
    now = emulator.now()
    for op in emulator.world.sql_operations.values():
        if op.target in names and op.status(now) != "DONE" and op.failure != "never_done":
            raise _in_progress(op.target)


def _start(emulator: Emulator, request: Request, kind: SqlOperationType, target: SqlInstance) -> SqlOperation:
    """Start an operation on ``target``. An injected ``error`` fault makes it fail and change
    nothing; a ``never_done`` fault applies its effect now, and it never completes."""
    fault = operation_fault(request)
    op = SqlOperation(
        name=str(uuid.uuid4()),
        operation_type=kind,
        target=target.name,
        target_region=target.region,
        insert_time=emulator.now(),
        duration=emulator.settings.operation_delay,
        failure=fault.outcome if fault else None,
        error_code=fault.error_code if fault else None,
        fault_id=fault.fault_id if fault else None,
    )
    emulator.world.sql_operations[op.name] = op
    request.state.effect = operation_effect(fault)
    if fault is not None and fault.outcome != "error":  # never completes: the change applies at once
        apply_sql(emulator.world.sql_instances, kind, target)
        op.applied = True
    return op


@router.get("/instances")
async def list_instances(
    project: str,
    request: Request,
    max_results: int | None = Query(None, alias="maxResults", ge=1),
    page_token: str | None = Query(None, alias="pageToken"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    _settled(emulator, project)
    items = [instance_json(emulator, i) for i in sorted(emulator.world.sql_instances.values(), key=lambda i: i.name)]
    return _page(items, "sql#instancesList", max_results, page_token)


def _page(items: list[dict[str, Any]], kind: str, max_results: int | None, page_token: str | None) -> dict[str, Any]:
    start = int(page_token) if page_token and page_token.isdigit() else 0
    end = len(items) if max_results is None else start + max_results
    body: dict[str, Any] = {"kind": kind, "items": items[start:end]}
    if end < len(items):
        body["nextPageToken"] = str(end)
    return body


@router.get("/instances/{instance}")
async def get_instance(project: str, instance: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    return instance_json(emulator, _instance(emulator, project, instance))


@router.post("/instances")
async def insert_instance(
    project: str, body: DatabaseInstanceBody, request: Request, emulator: Emulator = Depends(get_emulator)
) -> Any:
    _settled(emulator, project)
    world = emulator.world
    if body.name in world.sql_instances:
        raise ApiError(409, "instanceAlreadyExists", f"The Cloud SQL instance '{body.name}' already exists.")
    master = None
    if body.master_instance_name:
        master = world.sql_instances.get(_short(body.master_instance_name))
        if master is None:
            raise ApiError(404, "instanceDoesNotExist", f"The primary instance '{body.master_instance_name}' does not exist.")
        if master.master is not None:
            raise ApiError(400, "invalidRequest", f"'{master.name}' is itself a replica: a replica's primary must be a primary.")
        if master.region in world.outages:
            raise ApiError(
                409, "primaryInstanceUnavailable", f"The primary instance '{master.name}' is unavailable (its region is down)."
            )
        _pending(emulator, master.name)
    elif body.instance_type == "READ_REPLICA_INSTANCE":
        raise ApiError(400, "invalidRequest", "A read replica needs masterInstanceName.")
    region = body.region or (master.region if master else "us-central1")
    version = body.database_version or (master.database_version if master else None)
    if master is not None and version != master.database_version:
        raise ApiError(400, "invalidRequest", f"A replica's databaseVersion must be its primary's ({master.database_version}).")
    tier = body.settings.tier if body.settings and body.settings.tier else (master.tier if master else None)
    instance = SqlInstance(
        name=body.name,
        region=region,
        database_version=version or "POSTGRES_15",
        tier=tier or "db-perf-optimized-N-2",
        master=master.name if master else None,
        created_at=emulator.now(),
        state="PENDING_CREATE",
    )
    world.sql_instances[instance.name] = instance
    if master is not None and master.dr_replica is None:
        # Emulator simplification: a primary without a DR replica designates its new replica
        # (on Google Cloud that is a separate patch of replicationCluster.failoverDrReplicaName).
        master.dr_replica = instance.name
    return operation_json(emulator, _start(emulator, request, "CREATE_REPLICA" if master else "CREATE", instance))


@router.delete("/instances/{instance}")
async def delete_instance(project: str, instance: str, request: Request, emulator: Emulator = Depends(get_emulator)) -> Any:
    found = _instance(emulator, project, instance)
    replicas = replica_names(emulator.world.sql_instances, found.name)
    if replicas:
        raise ApiError(
            400,
            "invalidOperation",
            f"The instance '{found.name}' has replicas ({', '.join(replicas)}): delete or promote them first.",
        )
    _pending(emulator, found.name)
    found.state = "PENDING_DELETE"
    return operation_json(emulator, _start(emulator, request, "DELETE", found))


@router.post("/instances/{instance}/switchover")
async def switchover(
    project: str,
    instance: str,
    request: Request,
    db_timeout: str | None = Query(None, alias="dbTimeout"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = _instance(emulator, project, instance)
    world = emulator.world
    master = world.sql_instances.get(found.master) if found.master else None
    if master is None:
        raise ApiError(
            400,
            "invalidOperation",
            f"The instance '{found.name}' is not a replica: switchover is called on a primary's DR replica.",
        )
    if master.dr_replica != found.name:
        raise ApiError(
            400,
            "invalidOperation",
            f"The instance '{found.name}' is not the DR replica of '{master.name}' "
            f"(its DR replica is {master.dr_replica or 'not set'}): only a DR replica can be switched over to.",
        )
    if master.region in world.outages:
        raise ApiError(
            409,
            "primaryInstanceUnavailable",
            f"Switchover needs the primary instance '{master.name}', which is unavailable (its region {master.region} is down); "
            "promote the replica instead.",
        )
    _pending(emulator, found.name, master.name)
    return operation_json(emulator, _start(emulator, request, "SWITCHOVER", found))


@router.post("/instances/{instance}/promoteReplica")
async def promote_replica(
    project: str,
    instance: str,
    request: Request,
    failover: bool | None = Query(None),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    found = _instance(emulator, project, instance)
    if found.master is None:
        raise ApiError(400, "invalidOperation", f"The instance '{found.name}' is not a replica: there is nothing to promote.")
    _pending(emulator, found.name)
    return operation_json(emulator, _start(emulator, request, "PROMOTE_REPLICA", found))


@router.get("/operations")
async def list_operations(
    project: str,
    instance: str | None = Query(None),
    max_results: int | None = Query(None, alias="maxResults", ge=1),
    page_token: str | None = Query(None, alias="pageToken"),
    emulator: Emulator = Depends(get_emulator),
) -> Any:
    """Newest first; ``instance``: the operations on that instance only."""
    _settled(emulator, project)
    ops = [op for op in emulator.world.sql_operations.values() if instance is None or op.target == instance]
    items = [operation_json(emulator, op) for op in sorted(ops, key=lambda op: op.insert_time, reverse=True)]
    return _page(items, "sql#operationsList", max_results, page_token)


@router.get("/operations/{operation}")
async def get_operation(project: str, operation: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    _settled(emulator, project)
    op = emulator.world.sql_operations.get(operation)
    if op is None:
        raise ApiError(404, "operationDoesNotExist", f"The Cloud SQL operation '{operation}' does not exist.")
    return operation_json(emulator, op)


def instance_region(emulator: Emulator, path: str) -> str | None:
    """The region of the Cloud SQL instance a call is about (its path names it, or its operation's
    target), for the regional outage with ``apiErrors``; None for other calls."""
    parts = path.split("/")
    # /sql/v1beta4/projects/{p}/instances/{i}[/verb] or /sql/v1beta4/projects/{p}/operations/{op}
    if len(parts) < 7 or parts[1] != "sql":
        return None
    world = emulator.world
    if parts[5] == "instances":
        instance = world.sql_instances.get(parts[6])
        return instance.region if instance else None
    if parts[5] == "operations":
        op = world.sql_operations.get(parts[6])
        return op.target_region if op else None
    return None
