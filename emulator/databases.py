"""The emulated data tier: Cloud SQL instances and their operations, Spanner instances,
databases and schema-change operations, and how they change with the clock.

Like Compute Engine's, these operations go PENDING -> RUNNING -> DONE over the operation
delay. Unlike the emulator's Compute changes, which take effect when requested, a Cloud SQL
switchover or promotion and a Spanner leader change take effect when their operation is DONE
(a new instance is ``PENDING_CREATE`` until then, a deleted one ``PENDING_DELETE``), as on
Google Cloud, where the roles swap only at the end of a switchover. Nothing runs in the
background: :func:`settle` applies the operations that are done whenever a route (or the
snapshot) looks at the data tier.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SQL_URL = "https://sqladmin.googleapis.com/sql/v1beta4"
DEFAULT_DATABASE_VERSION = "POSTGRES_15"
DEFAULT_TIER = "db-perf-optimized-N-2"
SqlOperationType = Literal["CREATE_REPLICA", "CREATE", "DELETE", "SWITCHOVER", "PROMOTE_REPLICA"]


class SqlInstance(BaseModel):
    """A Cloud SQL instance: a primary (``master`` None) or a cross-region replica of ``master``.
    A primary names its DR replica (``dr_replica``), the one a switchover promotes."""

    name: str
    region: str
    database_version: str = DEFAULT_DATABASE_VERSION
    tier: str = DEFAULT_TIER
    master: str | None = None
    dr_replica: str | None = None
    created_at: float
    state: Literal["RUNNABLE", "PENDING_CREATE", "PENDING_DELETE"] = "RUNNABLE"
    base_lag: float = Field(default=0.0, description="Seconds behind its primary while both regions are up (admin API)")


class SqlOperation(BaseModel):
    """A Cloud SQL operation on ``target``; its effect applies when it is DONE (see the module)."""

    name: str
    operation_type: SqlOperationType
    target: str
    target_region: str
    insert_time: float
    duration: float
    failure: Literal["error", "never_done"] | None = None
    error_code: str | None = None
    fault_id: str | None = None
    applied: bool = False

    def done_at(self) -> float | None:
        return None if self.failure == "never_done" else self.insert_time + self.duration

    def status(self, now: float) -> Literal["PENDING", "RUNNING", "DONE"]:
        done_at = self.done_at()
        if done_at is not None and now >= done_at:
            return "DONE"
        return "PENDING" if now - self.insert_time < self.duration / 5 else "RUNNING"


class SpannerInstance(BaseModel):
    """A multi-region Spanner instance; its instance config's leader options are ``regions``."""

    name: str
    config: str
    regions: list[str]
    created_at: float


class SpannerDatabase(BaseModel):
    instance: str
    name: str
    default_leader: str | None
    created_at: float


class SpannerOperation(BaseModel):
    """An ``updateDatabaseDdl`` operation; its leader change applies when it is done."""

    name: str = Field(description="projects/p/instances/i/databases/d/operations/<id>")
    database: str = Field(description="'<instance>/<database>'")
    statements: list[str]
    leader: str | None = Field(description="The default leader the statements set (None: unset)")
    insert_time: float
    duration: float
    failure: Literal["error", "never_done"] | None = None
    fault_id: str | None = None
    applied: bool = False

    def done(self, now: float) -> bool:
        return self.failure != "never_done" and now >= self.insert_time + self.duration


def replica_names(instances: dict[str, SqlInstance], primary: str) -> list[str]:
    """The instances replicating from ``primary``, in the order they were created."""
    return [i.name for i in instances.values() if i.master == primary]


def settle_sql(instances: dict[str, SqlInstance], operations: dict[str, SqlOperation], now: float) -> bool:
    """Apply the effects of the Cloud SQL operations that are DONE, in the order they finished.
    Answers whether anything changed."""
    due = [op for op in operations.values() if not op.applied and op.status(now) == "DONE"]
    for op in sorted(due, key=lambda op: op.insert_time + op.duration):
        op.applied = True
        target = instances.get(op.target)
        if target is None:
            continue
        if op.failure == "error":
            if op.operation_type in ("CREATE", "CREATE_REPLICA"):
                _remove(instances, target)  # the failed creation leaves nothing
            elif target.state == "PENDING_DELETE":
                target.state = "RUNNABLE"
            continue
        apply_sql(instances, op.operation_type, target)
    return bool(due)


def apply_sql(instances: dict[str, SqlInstance], kind: SqlOperationType, target: SqlInstance) -> None:
    """What an operation of ``kind`` on ``target`` does once it is done."""
    if kind in ("CREATE", "CREATE_REPLICA"):
        target.state = "RUNNABLE"
    elif kind == "DELETE":
        _remove(instances, target)
    elif kind == "PROMOTE_REPLICA":
        _promote(instances, target)
    elif kind == "SWITCHOVER":
        _switch_over(instances, target)


def _remove(instances: dict[str, SqlInstance], target: SqlInstance) -> None:
    instances.pop(target.name, None)
    for other in instances.values():
        if other.dr_replica == target.name:
            other.dr_replica = None


def _promote(instances: dict[str, SqlInstance], target: SqlInstance) -> None:
    """A replica becomes a standalone primary; its old primary keeps its other replicas."""
    old = instances.get(target.master) if target.master else None
    target.master = None
    target.base_lag = 0.0
    if old is not None and old.dr_replica == target.name:
        old.dr_replica = None


def _switch_over(instances: dict[str, SqlInstance], target: SqlInstance) -> None:
    """The DR replica becomes the primary: the old primary and its other replicas replicate from
    it, and the old primary is its DR replica."""
    old = instances.get(target.master) if target.master else None
    if old is None:
        return
    for other in instances.values():
        if other.master == old.name and other is not target:
            other.master = target.name
    target.master, target.dr_replica, target.base_lag = None, old.name, 0.0
    old.master, old.dr_replica = target.name, None


def settle_spanner(databases: dict[str, SpannerDatabase], operations: dict[str, SpannerOperation], now: float) -> bool:
    """Apply the leader changes of the Spanner operations that are done, in order."""
    due = [op for op in operations.values() if not op.applied and op.done(now)]
    for op in sorted(due, key=lambda op: op.insert_time + op.duration):
        op.applied = True
        database = databases.get(op.database)
        if database is not None and op.failure != "error":
            database.default_leader = op.leader
    return bool(due)


def replica_lag(instance: SqlInstance, instances: dict[str, SqlInstance], since: dict[str, float], now: float) -> float | None:
    """Seconds the replica ``instance`` is behind its primary (None: not a replica). While its
    primary's region or its own is in an outage it does not replicate: the lag grows with the
    clock from the moment the outage began."""
    if instance.master is None:
        return None
    primary = instances.get(instance.master)
    regions = {instance.region, primary.region if primary else instance.region}
    began = [since[r] for r in regions if r in since]
    return instance.base_lag + (max(0.0, now - min(began)) if began else 0.0)
