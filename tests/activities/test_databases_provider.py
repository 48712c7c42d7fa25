"""The Google Cloud data provider (providers/gcp/databases.py) through the real clients against
the emulator: Cloud SQL roles, replica lag, Spanner's default leader; retries, faults, outages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import structlog
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities._common import request_id
from activities.budget import serving
from emulator.testing import RunningEmulator
from evac.resources import DatabaseLeader, DatabaseRole, SetDatabaseLeader, SetDatabaseRole, StepContext
from providers.gcp.clients import GcpClients
from providers.gcp.databases import GcpDatabases, GcpLeaders
from providers.gcp.refs import CloudSqlInstanceRef, SpannerDatabaseRef
from providers.registry import Providers

P = "evac-data"
CTX = StepContext(service="checkout", step="test")
EW1 = CloudSqlInstanceRef(project=P, instance="checkout-db-ew1", region="europe-west1")
UC1 = CloudSqlInstanceRef(project=P, instance="checkout-db-uc1", region="us-central1")
AE1 = CloudSqlInstanceRef(project=P, instance="checkout-db-ae1", region="asia-east1")
CATALOG = SpannerDatabaseRef(project=P, instance="catalog-spanner", database="catalog")
PRIMARY = DatabaseRole(role="primary")
ABSENT = DatabaseRole(role="absent")
LOG = structlog.get_logger("test")
T = TypeVar("T")


def replica_of(name: str) -> DatabaseRole:
    return DatabaseRole(role="replica", replicates=name)


def run(call: Callable[[], T]) -> T:
    """In an activity's context (heartbeats, attempt number), as the activities call it."""
    return ActivityEnvironment().run(call)


@pytest.fixture(scope="module")
def clients(shared_data_emulator: RunningEmulator) -> GcpClients:
    return GcpClients.create(shared_data_emulator.url)


@pytest.fixture
def databases(data_emulator: RunningEmulator, clients: GcpClients) -> GcpDatabases:
    provider = Providers.of(clients).databases(EW1)
    assert isinstance(provider, GcpDatabases)
    return provider


@pytest.fixture
def leaders(data_emulator: RunningEmulator, clients: GcpClients) -> GcpLeaders:
    provider = Providers.of(clients).leaders(CATALOG)
    assert isinstance(provider, GcpLeaders)
    return provider


def sql_mutations(emulator: RunningEmulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in emulator.requests() if r["method"] != "GET"]


def set_role(databases: GcpDatabases, ref: CloudSqlInstanceRef, desired: DatabaseRole, **more: Any) -> Any:
    change = SetDatabaseRole(context=CTX, database=ref, desired=desired, request_key=f"t/{ref.instance}", **more)
    return run(lambda: databases.set_role(change, LOG))


def test_roles_read_from_the_instance_itself(databases):
    assert run(lambda: databases.read_role(EW1)) == PRIMARY
    assert run(lambda: databases.read_role(UC1)) == replica_of("checkout-db-ew1")
    gone = CloudSqlInstanceRef(project=P, instance="checkout-db-xx", region="asia-east1")
    assert run(lambda: databases.read_role(gone)) == ABSENT


def test_a_switchover_and_its_undo_each_change_once(data_emulator, databases):
    seeded = data_emulator.state()["sqlInstances"]

    first = set_role(databases, UC1, PRIMARY)
    again = set_role(databases, UC1, PRIMARY)

    assert (first.before, first.after, first.changed) == (replica_of("checkout-db-ew1"), PRIMARY, True)
    assert (again.before, again.changed) == (PRIMARY, False)
    assert run(lambda: databases.read_role(EW1)) == replica_of("checkout-db-uc1")
    assert sql_mutations(data_emulator) == [("POST", "switchover")]

    undo = set_role(databases, UC1, replica_of("checkout-db-ew1"), prior=PRIMARY)  # switchover called on ew1
    assert undo.changed and undo.after == replica_of("checkout-db-ew1")
    assert data_emulator.state()["sqlInstances"] == seeded


def test_with_the_primarys_region_down_its_read_fails_as_transient_but_promotion_works(data_emulator, databases):
    data_emulator.outage("europe-west1", api_errors=True)
    budgeted = StepContext(service="checkout", step="test", budget_seconds=1.0)

    def read_source() -> DatabaseRole:
        with serving(budgeted):
            return databases.read_role(EW1)

    with pytest.raises(ApplicationError) as caught:
        run(read_source)
    assert caught.value.type in ("CloudTransientError", "CloudUnreachable") and "checkout-db-ew1" in str(caught.value)

    promoted = set_role(databases, UC1, PRIMARY, promote=True)
    assert promoted.changed and promoted.after == PRIMARY
    assert sql_mutations(data_emulator) == [("POST", "promoteReplica")]


def test_a_replica_is_deleted_and_created_again_with_its_primarys_settings(data_emulator, databases):
    gone = set_role(databases, AE1, ABSENT)
    assert (gone.before, gone.after) == (replica_of("checkout-db-ew1"), ABSENT)

    created = set_role(databases, AE1, replica_of("checkout-db-ew1"))
    assert (created.before, created.after, created.changed) == (ABSENT, replica_of("checkout-db-ew1"), True)
    assert data_emulator.state()["sqlInstances"]["checkout-db-ae1"] == {
        "region": "asia-east1",
        "state": "RUNNABLE",
        "role": "replica",
        "replicates": "checkout-db-ew1",
    }
    assert sql_mutations(data_emulator) == [("DELETE", "checkout-db-ae1"), ("POST", "instances")]


def test_a_503_burst_on_reads_is_retried_in_place(data_emulator, databases):
    data_emulator.add_fault(path="/sql/*/instances/checkout-db-uc1", status=503, count=2)
    assert set_role(databases, UC1, PRIMARY).changed
    assert [r["status"] for r in data_emulator.requests() if r["faults"]] == [503, 503]


def test_a_slow_operation_is_waited_for_and_a_failed_one_raises_googles_text(data_emulator, databases):
    data_emulator.add_fault(path="/sql/*/operations/*", latency=0.3, count=2)  # a slow API while polling
    assert set_role(databases, UC1, PRIMARY).after == PRIMARY

    data_emulator.add_fault(path="*/switchover", operation="error", operationErrorCode="INTERNAL_ERROR")
    with pytest.raises(ApplicationError) as caught:
        set_role(databases, EW1, PRIMARY)
    assert caught.value.type == "CloudOperationFailed" and "INTERNAL_ERROR" in str(caught.value)


def test_a_change_evac_cannot_make_in_one_step_is_refused(databases):
    with pytest.raises(ApplicationError) as caught:
        set_role(databases, UC1, replica_of("checkout-db-ae1"))
    assert caught.value.type == "CloudRequestRefused"
    assert "cannot make it replica of checkout-db-ae1" in str(caught.value)


def test_the_replication_lag_is_the_metrics_latest_point(data_emulator, databases):
    assert run(lambda: databases.replication_lag(UC1)).seconds == 0.0
    data_emulator.set_replication_lag("checkout-db-uc1", 42)
    lag = run(lambda: databases.replication_lag(UC1))
    assert lag.seconds == 42.0 and "replica_lag of evac-data:checkout-db-uc1 at " in lag.source
    none = run(lambda: databases.replication_lag(EW1))  # a primary: no point
    assert none.seconds is None and "no point in the last 5 minutes" in none.source


def test_the_leader_moves_once(data_emulator, leaders):
    change = SetDatabaseLeader(context=CTX, database=CATALOG, desired=DatabaseLeader(leader="us-central1"), request_key="t/1")

    first = run(lambda: leaders.set_leader(change, LOG))
    again = run(lambda: leaders.set_leader(change, LOG))

    assert (first.before, first.after, first.changed) == (DatabaseLeader(leader="europe-west1"), change.desired, True)
    assert not again.changed and run(lambda: leaders.read_leader(CATALOG)) == change.desired
    assert [r["method"] for r in data_emulator.requests() if r["method"] == "PATCH"] == ["PATCH"]


def test_a_retry_whose_schema_change_was_already_submitted_waits_for_it(data_emulator, leaders):
    change = SetDatabaseLeader(context=CTX, database=CATALOG, desired=DatabaseLeader(leader="us-central1"), request_key="t/2")
    operation_id = "evac_" + request_id("t/2", "leader=us-central1").replace("-", "_")
    database = "/v1/projects/evac-data/instances/catalog-spanner/databases/catalog"
    statement = "ALTER DATABASE catalog SET OPTIONS (default_leader = 'us-central1')"
    data_emulator.admin.patch(f"{database}/ddl", json={"statements": [statement], "operationId": operation_id}).raise_for_status()

    result = run(lambda: leaders.set_leader(change, LOG))

    assert result.changed and result.after == change.desired
    assert [r["status"] for r in data_emulator.requests() if r["method"] == "PATCH"] == [200, 409]


def test_a_leader_the_config_does_not_offer_is_refused(leaders):
    change = SetDatabaseLeader(context=CTX, database=CATALOG, desired=DatabaseLeader(leader="asia-east1"), request_key="t/3")
    with pytest.raises(ApplicationError) as caught:
        run(lambda: leaders.set_leader(change, LOG))
    assert caught.value.type == "CloudRequestRefused" and "not one of the leader options" in str(caught.value)
