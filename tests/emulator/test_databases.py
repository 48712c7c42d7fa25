"""The data tier through the real clients: Cloud SQL (google-cloud-sql's v1beta4 REST client),
Spanner (google-cloud-spanner's DatabaseAdminClient over REST) and the replica-lag metric of
Cloud Monitoring (google-api-python-client: google-cloud-monitoring has no REST transport)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import spanner_admin_database_v1, sqladmin_v1beta4
from google.longrunning import operations_pb2
from googleapiclient import discovery

from emulator.testing import RunningEmulator, running_emulator
from evac.topology import Topology

P = "evac-data"
DB = f"projects/{P}/instances/catalog-spanner/databases/catalog"
Status = sqladmin_v1beta4.Operation.SqlOperationStatus
LAG = "cloudsql.googleapis.com/database/replication/replica_lag"


def _options(emulator: RunningEmulator) -> dict[str, Any]:
    return {
        "transport": "rest",
        "credentials": AnonymousCredentials(),  # type: ignore[no-untyped-call]
        "client_options": ClientOptions(api_endpoint=emulator.url),
    }


@pytest.fixture(scope="session")
def shared_sql(shared_data_emulator: RunningEmulator) -> Iterator[sqladmin_v1beta4.SqlInstancesServiceClient]:
    with sqladmin_v1beta4.SqlInstancesServiceClient(**_options(shared_data_emulator)) as client:
        yield client


@pytest.fixture
def sql(
    data_emulator: RunningEmulator, shared_sql: sqladmin_v1beta4.SqlInstancesServiceClient
) -> sqladmin_v1beta4.SqlInstancesServiceClient:
    return shared_sql


@pytest.fixture(scope="session")
def shared_sql_ops(shared_data_emulator: RunningEmulator) -> Iterator[sqladmin_v1beta4.SqlOperationsServiceClient]:
    with sqladmin_v1beta4.SqlOperationsServiceClient(**_options(shared_data_emulator)) as client:
        yield client


@pytest.fixture
def sql_ops(
    data_emulator: RunningEmulator, shared_sql_ops: sqladmin_v1beta4.SqlOperationsServiceClient
) -> sqladmin_v1beta4.SqlOperationsServiceClient:
    return shared_sql_ops


@pytest.fixture(scope="session")
def shared_spanner(shared_data_emulator: RunningEmulator) -> Iterator[spanner_admin_database_v1.DatabaseAdminClient]:
    with spanner_admin_database_v1.DatabaseAdminClient(**_options(shared_data_emulator)) as client:
        yield client


@pytest.fixture
def spanner(
    data_emulator: RunningEmulator, shared_spanner: spanner_admin_database_v1.DatabaseAdminClient
) -> spanner_admin_database_v1.DatabaseAdminClient:
    return shared_spanner


def get(sql: sqladmin_v1beta4.SqlInstancesServiceClient, name: str) -> sqladmin_v1beta4.DatabaseInstance:
    return sql.get(request={"project": P, "instance": name}, retry=None)


def wait(ops: sqladmin_v1beta4.SqlOperationsServiceClient, op: sqladmin_v1beta4.Operation) -> sqladmin_v1beta4.Operation:
    while True:
        found = ops.get(request={"project": P, "operation": op.name})
        if found.status == Status.DONE:
            return found
        time.sleep(0.05)


def roles(emulator: RunningEmulator) -> dict[str, str | None]:
    return {name: i.get("replicates") for name, i in emulator.state()["sqlInstances"].items()}


def test_the_topology_seeds_a_primary_its_dr_replica_and_a_read_replica(data_emulator, sql):
    primary, dr, read = get(sql, "checkout-db-ew1"), get(sql, "checkout-db-uc1"), get(sql, "checkout-db-ae1")

    assert primary.instance_type == sqladmin_v1beta4.SqlInstanceType.CLOUD_SQL_INSTANCE
    assert list(primary.replica_names) == ["checkout-db-uc1", "checkout-db-ae1"]
    assert primary.replication_cluster.failover_dr_replica_name == f"{P}:checkout-db-uc1"
    assert dr.instance_type == sqladmin_v1beta4.SqlInstanceType.READ_REPLICA_INSTANCE
    assert dr.master_instance_name == f"{P}:checkout-db-ew1"
    assert dr.replication_cluster.dr_replica and not read.replication_cluster.dr_replica
    assert dr.region == "us-central1" and dr.connection_name == f"{P}:us-central1:checkout-db-uc1"
    assert dr.state == sqladmin_v1beta4.DatabaseInstance.SqlInstanceState.RUNNABLE


def test_a_switchover_swaps_the_roles_when_its_operation_is_done(data_emulator, sql, sql_ops):
    op = sql.switchover(request={"project": P, "instance": "checkout-db-uc1"})

    assert op.operation_type == sqladmin_v1beta4.Operation.SqlOperationType.SWITCHOVER
    assert op.status != Status.DONE and get(sql, "checkout-db-uc1").master_instance_name  # not yet
    done = wait(sql_ops, op)
    assert not done.error.errors and done.end_time
    new = get(sql, "checkout-db-uc1")
    assert not new.master_instance_name and new.replication_cluster.failover_dr_replica_name == f"{P}:checkout-db-ew1"
    assert roles(data_emulator) == {
        "checkout-db-ae1": "checkout-db-uc1",
        "checkout-db-ew1": "checkout-db-uc1",
        "checkout-db-uc1": None,
    }
    assert get(sql, "checkout-db-ew1").replication_cluster.dr_replica


def test_a_second_operation_on_an_instance_waits_for_the_first(data_emulator, sql):
    sql.switchover(request={"project": P, "instance": "checkout-db-uc1"})
    with pytest.raises(gexc.Conflict, match="another operation was already in progress"):
        sql.promote_replica(request={"project": P, "instance": "checkout-db-uc1"})


@pytest.mark.parametrize(
    ("instance", "message"),
    [("checkout-db-ew1", "is not a replica"), ("checkout-db-ae1", "is not the DR replica of 'checkout-db-ew1'")],
)
def test_a_switchover_is_called_on_the_dr_replica(data_emulator, sql, instance, message):
    with pytest.raises(gexc.BadRequest, match=message):
        sql.switchover(request={"project": P, "instance": instance})


def test_during_the_primarys_outage_switchover_is_refused_but_promotion_works(data_emulator, sql, sql_ops):
    data_emulator.outage("europe-west1", api_errors=True)

    with pytest.raises(gexc.ServiceUnavailable):
        get(sql, "checkout-db-ew1")  # the primary's region answers nothing
    with pytest.raises(gexc.Conflict, match="promote the replica instead"):
        sql.switchover(request={"project": P, "instance": "checkout-db-uc1"})
    done = wait(sql_ops, sql.promote_replica(request={"project": P, "instance": "checkout-db-uc1"}))

    assert done.operation_type == sqladmin_v1beta4.Operation.SqlOperationType.PROMOTE_REPLICA and not done.error.errors
    promoted = get(sql, "checkout-db-uc1")
    assert not promoted.master_instance_name and promoted.instance_type == sqladmin_v1beta4.SqlInstanceType.CLOUD_SQL_INSTANCE
    data_emulator.recover("europe-west1")
    assert list(get(sql, "checkout-db-ew1").replica_names) == ["checkout-db-ae1"]
    assert not get(sql, "checkout-db-ew1").replication_cluster.failover_dr_replica_name


def test_inserting_a_replica_creates_it_in_its_region_once_its_operation_is_done(data_emulator, sql, sql_ops):
    data_emulator.admin.post("/emulator/v1/regions/asia-east1/outage")  # not the new replica's region's API
    body = sqladmin_v1beta4.DatabaseInstance(
        name="checkout-db-ae2",
        region="asia-east1",
        master_instance_name=f"{P}:checkout-db-ew1",
        database_version=sqladmin_v1beta4.SqlDatabaseVersion.POSTGRES_15,
        settings=sqladmin_v1beta4.Settings(tier="db-perf-optimized-N-2"),
    )
    op = sql.insert(request={"project": P, "body": body})

    assert op.operation_type == sqladmin_v1beta4.Operation.SqlOperationType.CREATE_REPLICA
    assert get(sql, "checkout-db-ae2").state == sqladmin_v1beta4.DatabaseInstance.SqlInstanceState.PENDING_CREATE
    wait(sql_ops, op)
    created = get(sql, "checkout-db-ae2")
    assert created.state == sqladmin_v1beta4.DatabaseInstance.SqlInstanceState.RUNNABLE
    assert created.master_instance_name == f"{P}:checkout-db-ew1" and created.region == "asia-east1"
    assert "checkout-db-ae2" in get(sql, "checkout-db-ew1").replica_names
    with pytest.raises(gexc.Conflict, match="already exists"):
        sql.insert(request={"project": P, "body": body})


def test_delete_refuses_a_primary_with_replicas_and_removes_a_replica(data_emulator, sql, sql_ops):
    with pytest.raises(gexc.BadRequest, match="has replicas"):
        sql.delete(request={"project": P, "instance": "checkout-db-ew1"})
    done = wait(sql_ops, sql.delete(request={"project": P, "instance": "checkout-db-ae1"}))

    assert done.operation_type == sqladmin_v1beta4.Operation.SqlOperationType.DELETE
    with pytest.raises(gexc.NotFound, match="does not exist"):
        get(sql, "checkout-db-ae1")
    assert list(get(sql, "checkout-db-ew1").replica_names) == ["checkout-db-uc1"]


def test_faults_strike_cloud_sql_calls_and_operations(data_emulator, sql, sql_ops):
    data_emulator.add_fault(path="/sql/*/checkout-db-uc1", status=503, count=1)
    with pytest.raises(gexc.ServiceUnavailable):
        get(sql, "checkout-db-uc1")
    assert get(sql, "checkout-db-uc1").name == "checkout-db-uc1"  # the burst is over

    fault = data_emulator.add_fault(path="*/switchover", operation="error", operationErrorCode="INTERNAL_ERROR")
    done = wait(sql_ops, sql.switchover(request={"project": P, "instance": "checkout-db-uc1"}))
    assert done.error.errors[0].code == "INTERNAL_ERROR"
    assert roles(data_emulator)["checkout-db-uc1"] == "checkout-db-ew1"  # nothing changed
    effects = [r["effect"] for r in data_emulator.requests() if r["method"] == "POST"]
    assert effects == [f"not applied: operation ends in error (injected {fault['id']})"]


def test_operations_list_names_an_instances_pending_operations_first(data_emulator, sql, sql_ops):
    op = sql.switchover(request={"project": P, "instance": "checkout-db-uc1"})
    listed = sql_ops.list(request={"project": P, "instance": "checkout-db-uc1"})
    assert [o.name for o in listed.items] == [op.name]
    assert sql_ops.list(request={"project": P, "instance": "checkout-db-ae1"}).items == []


def _lag(emulator: RunningEmulator, instance: str | None = None) -> dict[str, float]:
    now = datetime.now(UTC)
    query = f'metric.type = "{LAG}"' + (f' AND resource.labels.database_id = "{P}:{instance}"' if instance else "")
    with discovery.build(
        "monitoring",
        "v3",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emulator.url},
        static_discovery=True,
    ) as monitoring:
        answer = (
            monitoring.projects()
            .timeSeries()
            .list(
                name=f"projects/{P}",
                filter=query,
                interval_startTime=(now - timedelta(minutes=5)).isoformat(),
                interval_endTime=now.isoformat(),
            )
            .execute()
        )
    return {s["resource"]["labels"]["database_id"]: s["points"][-1]["value"]["doubleValue"] for s in answer.get("timeSeries", [])}


def test_the_replica_lag_metric_has_a_point_for_each_replica(data_emulator):
    assert _lag(data_emulator) == {f"{P}:checkout-db-ae1": 0.0, f"{P}:checkout-db-uc1": 0.0}
    data_emulator.set_replication_lag("checkout-db-uc1", 12.5)
    assert _lag(data_emulator, "checkout-db-uc1") == {f"{P}:checkout-db-uc1": 12.5}
    assert _lag(data_emulator, "checkout-db-ew1") == {}  # a primary has no lag


def test_a_replica_stops_replicating_while_its_primarys_region_is_down(data_emulator):
    data_emulator.set_replication_lag("checkout-db-uc1", 2)
    data_emulator.outage("europe-west1")
    time.sleep(0.3)
    lag = _lag(data_emulator, "checkout-db-uc1")[f"{P}:checkout-db-uc1"]
    assert lag >= 2.3
    time.sleep(0.2)
    assert _lag(data_emulator, "checkout-db-uc1")[f"{P}:checkout-db-uc1"] >= lag + 0.2
    data_emulator.recover("europe-west1")
    assert _lag(data_emulator, "checkout-db-uc1")[f"{P}:checkout-db-uc1"] == 2.0


def test_the_admin_api_refuses_a_lag_for_a_primary_or_an_unknown_instance(data_emulator):
    assert (
        data_emulator.admin.put("/emulator/v1/sql/instances/checkout-db-ew1/replicationLag", json={"seconds": 1}).status_code
        == 400
    )
    assert data_emulator.admin.put("/emulator/v1/sql/instances/nope/replicationLag", json={"seconds": 1}).status_code == 404
    assert (
        data_emulator.admin.put("/emulator/v1/sql/instances/checkout-db-uc1/replicationLag", json={"seconds": -1}).status_code
        == 400
    )


def _ddl(spanner, statements: list[str], operation_id: str = "") -> Any:
    return spanner.update_database_ddl(request={"database": DB, "statements": statements, "operation_id": operation_id})


def _done(spanner, name: str) -> operations_pb2.Operation:
    while not (op := spanner.get_operation(operations_pb2.GetOperationRequest(name=name))).done:
        time.sleep(0.05)
    return op


def test_spanner_moves_the_default_leader_when_the_schema_change_is_done(data_emulator, spanner):
    assert spanner.get_database(name=DB).default_leader == "europe-west1"

    lro = _ddl(spanner, ["ALTER DATABASE catalog SET OPTIONS (default_leader = 'us-central1')"], "leader_1")

    assert lro.operation.name == f"{DB}/operations/leader_1" and not lro.operation.done
    assert spanner.get_database(name=DB).default_leader == "europe-west1"
    assert not _done(spanner, lro.operation.name).HasField("error")
    assert spanner.get_database(name=DB).default_leader == "us-central1"
    ddl = spanner.get_database_ddl(database=DB).statements
    assert "default_leader = 'us-central1'" in ddl[0]


def test_spanner_refuses_a_leader_outside_the_configs_options_a_repeated_id_and_other_ddl(data_emulator, spanner):
    with pytest.raises(gexc.BadRequest, match="not one of the leader options"):
        _ddl(spanner, ["ALTER DATABASE catalog SET OPTIONS (default_leader = 'asia-east1')"])
    _ddl(spanner, ["ALTER DATABASE catalog SET OPTIONS (default_leader = NULL)"], "unset_1")
    with pytest.raises(gexc.Conflict):
        _ddl(spanner, ["ALTER DATABASE catalog SET OPTIONS (default_leader = NULL)"], "unset_1")
    with pytest.raises(gexc.BadRequest, match="supports only ALTER DATABASE"):
        _ddl(spanner, ["CREATE TABLE t (id INT64) PRIMARY KEY (id)"])
    answer = data_emulator.admin.patch(f"/v1/{DB}/ddl", json={"statements": ["DROP TABLE Items"]}).json()
    assert set(answer["error"]) == {"code", "message", "status"} and answer["error"]["status"] == "INVALID_ARGUMENT"


def test_spanners_instance_config_offers_the_services_regions_and_ignores_outages(data_emulator, spanner):
    data_emulator.outage("europe-west1", api_errors=True)
    instance = data_emulator.admin.get(f"/v1/projects/{P}/instances/catalog-spanner").json()
    config = data_emulator.admin.get(f"/v1/{instance['config']}").json()
    assert config["leaderOptions"] == ["europe-west1", "us-central1"]
    assert spanner.get_database(name=DB).default_leader == "europe-west1"


def test_a_state_file_keeps_the_data_tier(tmp_path, data_topology: Topology):
    state = tmp_path / "state.json"
    with running_emulator(data_topology, operation_delay=0, state_file=state) as first:
        first.admin.post(f"/sql/v1beta4/projects/{P}/instances/checkout-db-uc1/switchover").raise_for_status()
        first.set_replication_lag("checkout-db-ae1", 7)
        before = first.state()
    with running_emulator(data_topology, operation_delay=0, state_file=state) as second:
        assert second.state() == before
        assert before["sqlInstances"]["checkout-db-uc1"]["role"] == "primary"
        assert _lag(second, "checkout-db-ae1") == {f"{P}:checkout-db-ae1": 7.0}


def test_generated_worlds_have_databases() -> None:
    from emulator.generate import generated_topology
    from emulator.seed import seed_world

    topology = generated_topology(8)
    world = seed_world(topology, 0.0)

    assert sorted({i.name.rsplit("-db-", 1)[0] for i in world.sql_instances.values()}) == ["svc-0000", "svc-0004"]
    assert world.sql_instances["svc-0004-db-us-central1"].master is None  # primary in the service's primary region
    assert sorted(world.spanner_databases) == ["svc-0001-spanner/db"]
    assert world.spanner_databases["svc-0001-spanner/db"].default_leader == "us-central1"
