"""Google Cloud's data tier: a Cloud SQL instance's role (primary, replica, none) and its
replication lag, and a Spanner database's default leader.

The calls keep the discipline of the other Google Cloud modules: every call has a timeout cut to
the budget (``activities.budget``), reads are retried in place (``idempotent``), errors are
translated at one boundary (``cloud_call``), a submitted operation is recorded in the heartbeat
so a retried attempt waits for it instead of submitting another, and the wait for an operation
is never abandoned on a cancel (only a budget ends it). Cloud SQL has no request ids: a retry
re-reads the instance first and reports ``changed=False`` (with the before-state the workflow
recorded) when it is already as desired. A Spanner schema change carries an ``operationId``
derived from the request key, so a retry that submits it again is refused as ALREADY_EXISTS and
waits for the first one.

The replica lag is read from Cloud Monitoring (``timeSeries.list`` of
``cloudsql.googleapis.com/database/replication/replica_lag``) over an authorized HTTP session:
google-cloud-monitoring's ``MetricServiceClient`` has no REST transport.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from google.api_core import exceptions as gexc
from google.cloud import sqladmin_v1beta4
from google.longrunning import operations_pb2

from activities import budget
from activities._common import attempt, found_before, request_id
from activities.budget import call_timeout
from activities.errors import step_failure, worth_repeating
from activities.heartbeat import Heartbeat, heartbeating
from activities.retry import jittered, pause, stop_if_cancelled
from evac.failures import FailureType
from evac.refs import DatabaseRef, LeaderRef
from evac.resources import Change, DatabaseLeader, DatabaseRole, ReplicationLag, SetDatabaseLeader, SetDatabaseRole
from providers.base import Log
from providers.gcp.clients import GcpClients
from providers.gcp.errors import cloud_call, idempotent
from providers.gcp.refs import CloudSqlInstanceRef, SpannerDatabaseRef, ours

REPLICA_LAG_METRIC = "cloudsql.googleapis.com/database/replication/replica_lag"
LAG_WINDOW = timedelta(minutes=5)
"""How far back a lag reading looks for the metric's latest point (it is sampled every minute)."""
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
# Heartbeat progress keys: the operation a mutating call submitted.
SQL_OPERATION = "sql_operation"
SPANNER_OPERATION = "spanner_operation"

SqlDone = sqladmin_v1beta4.Operation.SqlOperationStatus.DONE
log = structlog.get_logger("evac.activity")


def _short(name: str) -> str:
    """``project:instance`` (how Cloud SQL names a primary) -> ``instance``."""
    return name.rsplit(":", 1)[-1]


def role_of(instance: sqladmin_v1beta4.DatabaseInstance | None) -> DatabaseRole:
    if instance is None:
        return DatabaseRole(role="absent")
    if instance.master_instance_name:
        return DatabaseRole(role="replica", replicates=_short(instance.master_instance_name))
    return DatabaseRole(role="primary")


def _poll(what: str, name: str, read: Callable[[], bool]) -> None:
    """Call ``read`` (True when done) until it is, with a growing pause; never abandoned on a
    cancel (what was submitted must be seen through), transient errors waited out, ended only by
    a spent budget (as ``CloudUnreachable``)."""
    poll = FIRST_POLL_SECONDS
    last_error = "it was not done"
    while True:
        try:
            if read():
                return
        except Exception as exc:
            if not worth_repeating(exc):
                raise
            last_error = str(exc)
            log.info("transient error reading an operation; polling on", operation=name, error=last_error)
        rest = budget.left()
        if rest is not None and rest <= 0:
            raise step_failure(
                FailureType.CLOUD_UNREACHABLE,
                f"{what}: operation {name} not done within the time a failover waits on the region it leaves ({last_error})",
            )
        delay = jittered(poll)
        pause(delay if rest is None else min(delay, rest), abandon_on_cancel=False)
        poll = min(poll * 1.5, MAX_POLL_SECONDS)


class GcpDatabases:
    """A service's Cloud SQL instance in one region: its role and its replication lag."""

    def __init__(self, clients: GcpClients):
        self._clients = clients

    # --- reads -----------------------------------------------------------------------------

    def _get(self, project: str, instance: str) -> sqladmin_v1beta4.DatabaseInstance | None:
        """The instance, or None when there is none (404)."""
        self._clients.require_project(project)

        def get() -> sqladmin_v1beta4.DatabaseInstance | None:
            try:
                found: sqladmin_v1beta4.DatabaseInstance = self._clients.sql_instances.get(
                    request={"project": project, "instance": instance}, timeout=call_timeout(), retry=None
                )
            except gexc.NotFound:
                return None
            return found

        return idempotent(f"read Cloud SQL instance {instance}", get)

    def read_role(self, ref: DatabaseRef) -> DatabaseRole:
        ref = ours(ref, CloudSqlInstanceRef)
        return role_of(self._get(ref.project, ref.instance))

    def replication_lag(self, ref: DatabaseRef) -> ReplicationLag:
        ref = ours(ref, CloudSqlInstanceRef)
        self._clients.require_project(ref.project)
        now = datetime.now(UTC)
        database_id = f"{ref.project}:{ref.instance}"
        params = {
            "filter": f'metric.type = "{REPLICA_LAG_METRIC}" AND resource.labels.database_id = "{database_id}"',
            "interval.startTime": (now - LAG_WINDOW).isoformat().replace("+00:00", "Z"),
            "interval.endTime": now.isoformat().replace("+00:00", "Z"),
        }
        url = f"{self._clients.monitoring_url}/v3/projects/{ref.project}/timeSeries"

        def read() -> dict[str, Any]:
            response = self._clients.rest_session().get(url, params=params, timeout=call_timeout())
            if response.status_code >= 400:
                raise gexc.from_http_response(response)  # type: ignore[no-untyped-call]
            answer: dict[str, Any] = response.json()
            return answer

        answer = idempotent(f"read the replica lag of {ref}", read)
        points = [p for series in answer.get("timeSeries", []) for p in series.get("points", [])]
        if not points:
            source = (
                f"{REPLICA_LAG_METRIC} of {database_id}: no point in the last {int(LAG_WINDOW.total_seconds() // 60)} minutes"
            )
            return ReplicationLag(seconds=None, measured_at=now, source=source)
        latest = max(points, key=lambda p: p["interval"]["endTime"])
        value = latest["value"]
        seconds = float(value.get("doubleValue", value.get("int64Value", 0)))
        at = latest["interval"]["endTime"]
        return ReplicationLag(seconds=seconds, measured_at=now, source=f"{REPLICA_LAG_METRIC} of {database_id} at {at}")

    # --- the change --------------------------------------------------------------------------

    def _wait(self, project: str, name: str, *, what: str, raise_on_error: bool = True) -> sqladmin_v1beta4.Operation:
        found: list[sqladmin_v1beta4.Operation] = []

        def read() -> bool:
            with cloud_call(f"{what}: read operation {name}"):
                op = self._clients.sql_operations.get(
                    request={"project": project, "operation": name}, timeout=call_timeout(), retry=None
                )
            found[:] = [op]
            return bool(op.status == SqlDone)

        _poll(what, name, read)
        op = found[0]
        if raise_on_error and op.error.errors:
            detail = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors)
            raise step_failure(FailureType.CLOUD_OPERATION_FAILED, f"{what}: operation {name} failed: {detail}")
        return op

    def _finish_earlier_attempt(self, project: str, beat: Heartbeat, what: str) -> None:
        name = beat.earlier.get(SQL_OPERATION)
        if not name:
            return
        log.info("waiting for the operation an earlier attempt submitted", operation=name)
        try:
            self._wait(project, name, what=what, raise_on_error=False)
        except Exception as exc:
            if worth_repeating(exc):
                raise
            log.info("the earlier attempt's operation cannot be read", operation=name, error=str(exc))

    def _wait_for_pending(self, project: str, instance: str, what: str) -> None:
        """A change found already made counts once no operation on the instance is pending."""

        def pending() -> list[str]:
            listed = self._clients.sql_operations.list(
                request={"project": project, "instance": instance}, timeout=call_timeout(), retry=None
            )
            return [op.name for op in listed.items if op.status != SqlDone]

        for name in idempotent(f"{what}: list pending operations", pending, abandon_on_cancel=False):
            self._wait(project, name, what=what, raise_on_error=False)

    def _submit(self, ref: CloudSqlInstanceRef, current: DatabaseRole, change: SetDatabaseRole) -> sqladmin_v1beta4.Operation:
        """The one call that moves ``ref`` from ``current`` to the desired role."""
        desired, sql = change.desired, self._clients.sql_instances
        project, timeout = ref.project, call_timeout()
        if current.role == "replica" and desired.role == "primary":
            if change.promote:
                return sql.promote_replica(request={"project": project, "instance": ref.instance}, timeout=timeout)
            return sql.switchover(request={"project": project, "instance": ref.instance}, timeout=timeout)
        if current.role == "primary" and desired.role == "replica" and desired.replicates:
            # A switchover called on the DR replica that is to become the primary.
            return sql.switchover(request={"project": project, "instance": desired.replicates}, timeout=timeout)
        if current.role == "absent" and desired.role == "replica" and desired.replicates:
            primary = self._get(project, desired.replicates)
            if primary is None or primary.master_instance_name:
                found = role_of(primary).summary()
                raise step_failure(
                    FailureType.CLOUD_REFUSED,
                    f"create {ref} as a replica of {desired.replicates}: that instance is not a primary ({found})",
                )
            body = sqladmin_v1beta4.DatabaseInstance(
                name=ref.instance,
                region=ref.region,
                master_instance_name=f"{project}:{desired.replicates}",
                database_version=primary.database_version,
                instance_type=sqladmin_v1beta4.SqlInstanceType.READ_REPLICA_INSTANCE,
                settings=sqladmin_v1beta4.Settings(tier=primary.settings.tier),
            )
            return sql.insert(request={"project": project, "body": body}, timeout=timeout)
        if current.role == "replica" and desired.role == "absent":
            return sql.delete(request={"project": project, "instance": ref.instance}, timeout=timeout)
        raise step_failure(
            FailureType.CLOUD_REFUSED,
            f"{ref} is {current.summary()}: Evac cannot make it {desired.summary()} in one step "
            "(switchover, promotion, creating a replica or deleting one)",
        )

    def set_role(self, change: SetDatabaseRole, log: Log) -> Change:
        """Switch over, promote, create or delete; done when the operation is DONE and the role
        reads back as desired. Idempotent: found already as desired, it reports changed=False."""
        ref, desired = ours(change.database, CloudSqlInstanceRef), change.desired
        what = f"make {ref} {desired.summary()}"
        with heartbeating() as beat:
            self._finish_earlier_attempt(ref.project, beat, what)
            current = role_of(self._get(ref.project, ref.instance))
            if current == desired:
                if current.role != "absent":
                    self._wait_for_pending(ref.project, ref.instance, what)
                log.info("database already as desired", database=str(ref), role=desired.summary())
                return Change(before=found_before(current, change.prior), after=current, changed=False, attempt=attempt())
            stop_if_cancelled(what)
            with cloud_call(what):
                operation = self._submit(ref, current, change)
            beat.record(**{SQL_OPERATION: operation.name})
            self._wait(ref.project, operation.name, what=what)
            after = role_of(self._get(ref.project, ref.instance))
            if after != desired:
                raise step_failure(
                    FailureType.CLOUD_OPERATION_FAILED,
                    f"{what}: operation {operation.name} is DONE but the instance reads back as {after.summary()}",
                )
            log.info("database role changed", database=str(ref), before=current.summary(), after=after.summary())
            return Change(before=current, after=after, changed=True, attempt=attempt())


class GcpLeaders:
    """A multi-region Spanner database's default leader."""

    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _read(self, ref: SpannerDatabaseRef) -> DatabaseLeader:
        self._clients.require_project(ref.project)
        database = idempotent(
            f"read {ref}",
            lambda: self._clients.spanner_databases.get_database(name=_name(ref), timeout=call_timeout(), retry=None),
        )
        return DatabaseLeader(leader=database.default_leader or None)

    def read_leader(self, ref: LeaderRef) -> DatabaseLeader:
        return self._read(ours(ref, SpannerDatabaseRef))

    def _wait(self, name: str, what: str) -> None:
        found: list[operations_pb2.Operation] = []

        def read() -> bool:
            with cloud_call(f"{what}: read operation {name}"):
                op = self._clients.spanner_databases.get_operation(
                    operations_pb2.GetOperationRequest(name=name), timeout=call_timeout(), retry=None
                )
            found[:] = [op]
            return bool(op.done)

        _poll(what, name, read)
        if found[0].HasField("error"):
            raise step_failure(FailureType.CLOUD_OPERATION_FAILED, f"{what}: operation {name} failed: {found[0].error.message}")

    def set_leader(self, change: SetDatabaseLeader, log: Log) -> Change:
        """Set the default leader with ``ALTER DATABASE … SET OPTIONS (default_leader = …)``; done
        when its schema change is. A retry reuses the operation id (derived from the request key
        and the leader asked for): Spanner refuses it as ALREADY_EXISTS, and the retry waits for it."""
        ref, desired = ours(change.database, SpannerDatabaseRef), change.desired
        what = f"set the default leader of {ref} to {desired.leader or 'none'}"
        operation_id = "evac_" + request_id(change.request_key, f"leader={desired.leader}").replace("-", "_")
        name = f"{_name(ref)}/operations/{operation_id}"
        with heartbeating() as beat:
            if beat.earlier.get(SPANNER_OPERATION):
                self._wait_if_exists(name, what)
            current = self._read(ref)
            if current == desired:
                self._wait_if_exists(name, what)
                log.info("leader already as desired", database=str(ref), leader=desired.leader)
                return Change(before=found_before(current, change.prior), after=current, changed=False, attempt=attempt())
            stop_if_cancelled(what)
            value = f"'{desired.leader}'" if desired.leader else "NULL"
            statement = f"ALTER DATABASE `{ref.database}` SET OPTIONS (default_leader = {value})"
            try:
                with cloud_call(what):
                    try:
                        self._clients.spanner_databases.update_database_ddl(
                            request={"database": _name(ref), "statements": [statement], "operation_id": operation_id},
                            timeout=call_timeout(),
                        )
                    except (gexc.Conflict, gexc.AlreadyExists):
                        log.info("the schema change was submitted before; waiting for it", operation=name)
            finally:
                beat.record(**{SPANNER_OPERATION: name})
            self._wait(name, what)
            after = self._read(ref)
            if after != desired:
                raise step_failure(
                    FailureType.CLOUD_OPERATION_FAILED,
                    f"{what}: operation {name} is done but the leader reads back as {after.summary()}",
                )
            log.info("leader changed", database=str(ref), before=current.leader, after=after.leader)
            return Change(before=current, after=after, changed=True, attempt=attempt())

    def _wait_if_exists(self, name: str, what: str) -> None:
        """Wait for our own schema change, if it was submitted (a change found made counts once it is done)."""
        try:
            self._wait(name, what)
        except Exception as exc:
            if worth_repeating(exc) or not isinstance(exc.__cause__, gexc.NotFound):
                raise


def _name(ref: SpannerDatabaseRef) -> str:
    return f"projects/{ref.project}/instances/{ref.instance}/databases/{ref.database}"
