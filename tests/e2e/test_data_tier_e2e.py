"""The data tier end to end (issue 23): plans/data on a stack of its own. checkout's Cloud SQL
primary and catalog's Spanner leader move with their traffic; what changed is read back through
the published Cloud SQL Admin and Spanner APIs the emulator serves, not through Evac."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import E2E, dead_api, record, scaler, world_stack

DATA = Path(__file__).resolve().parents[2] / "plans" / "data"
PROJECT = "evac-demo"
EW1_DB, UC1_DB = "checkout-db-ew1", "checkout-db-uc1"
ALICE = {"EVAC_IDENTITY": "alice@ops"}


@pytest.fixture(scope="module")
def data_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    state_dir = tmp_path_factory.mktemp("evac-data")
    (state_dir / "topology.yaml").write_text((DATA / "topology.yaml").read_text())  # beside the edited plans
    with world_stack(state_dir, "evac-data", topology=DATA / "topology.yaml", warmup=1.0) as e2e:
        yield e2e


@pytest.fixture
def data(data_stack: E2E) -> E2E:
    """The stack's emulator back at the world plans/data/topology.yaml seeds."""
    data_stack.admin.post("/emulator/v1/reset").raise_for_status()
    return data_stack


def role(e2e: E2E, instance: str) -> str:
    """What Cloud SQL's instances.get says the instance is."""
    found = e2e.admin.get(f"/sql/v1beta4/projects/{PROJECT}/instances/{instance}").raise_for_status().json()
    master = found.get("masterInstanceName")
    return f"replica of {master.split(':')[-1]}" if master else "primary"


def leader(e2e: E2E) -> str:
    """What Spanner's databases.get says the catalog database's default leader is."""
    path = f"/v1/projects/{PROJECT}/instances/catalog-spanner/databases/catalog"
    return str(e2e.admin.get(path).raise_for_status().json()["defaultLeader"])


def plan_with(e2e: E2E, name: str, after: str, step: dict[str, Any]) -> Path:
    """plans/data/``name`` with ``step`` inserted after the step named ``after``."""
    document = yaml.safe_load((DATA / name).read_text())
    at = next(i for i, s in enumerate(document["steps"]) if s["name"] == after)
    document["steps"].insert(at + 1, step)
    path = e2e.stack.config.state_dir / f"{step['name'].replace(' ', '-')}-{name}"
    path.write_text(yaml.safe_dump(document))
    return path


def waits_for_approval(e2e: E2E, index: int) -> None:
    e2e.wait_for("the approval step to wait", lambda: e2e.step_status("checkout", index) == "running", timeout=120)


def test_the_data_drill_moves_primary_and_leader_bakes_fails_back_and_verifies(data: E2E) -> None:
    results = data.evac_json("drill", "--plan", str(DATA / "drill.yaml"), "--bake", "3s")
    by_service = {r["service"]: r for r in results}
    assert set(by_service) == {"checkout", "catalog"}, results
    for run in results:
        assert run["status"] == "succeeded" and run["drill"]["outcome"] == "passed", run
        assert run["drill"]["mismatches"] == []
    checkout, catalog = by_service["checkout"], by_service["catalog"]
    switchover = checkout["steps"][3]
    assert (switchover["before"]["role"], switchover["after"]["role"]) == ("replica", "primary")
    assert switchover["replication_lag"]["seconds"] == 0.0
    assert "replica_lag" in switchover["replication_lag"]["source"]
    assert checkout["drill"]["rpo_seconds"] == 0.0 and checkout["drill"]["over_rpo"] is False
    assert any(f"{UC1_DB}: replica of {EW1_DB}, as before the drill" in v for v in checkout["drill"]["verification"])
    assert any("leader europe-west1, as before the drill" in v for v in catalog["drill"]["verification"])
    # The step that is not for a service did nothing there.
    assert catalog["steps"][3]["detail"] == "not for catalog: the step is for checkout"
    # Read back from the APIs: the primary is in europe-west1 again, the leader back.
    assert role(data, EW1_DB) == "primary" and role(data, UC1_DB) == f"replica of {EW1_DB}"
    assert leader(data) == "europe-west1"
    switched = [r for r in data.requests() if r["method"] == "POST" and r["path"].endswith("/switchover")]
    assert [r["path"].rsplit("/", 2)[-2] for r in switched] == [UC1_DB, EW1_DB]
    # The terminal report says the RPO beside its target, measured.
    text = data.evac("status", "checkout").stdout
    assert "replication lag 0s before the roles changed (RPO target 60s, met)" in " ".join(text.split())
    assert catalog["drill"]["rpo_synchronous"] is True and "rpo_seconds" not in catalog["drill"]
    text = data.evac("status", "catalog").stdout
    assert "replication lag: none to measure (Spanner replicates synchronously) (RPO target 60s)" in " ".join(text.split())


def test_an_abort_before_the_switchover_restores_everything(data: E2E) -> None:
    hold = {"name": "hold", "kind": "approval", "approvers": ["alice"]}
    plan = plan_with(data, "failover.yaml", "drain europe-west1", hold)
    started = data.evac("failover", "--plan", str(plan), "--reason", "abort before the database", "--no-wait")
    assert started.returncode == 0, started.stderr
    waits_for_approval(data, 3)
    assert scaler(data.state(), "checkout-backend", "checkout-ew1") == 0.0
    assert data.evac("abort", "checkout", "--reason", "not today").returncode == 0
    final = data.evac_json("status", "checkout", "--watch", expect=1)
    assert final["status"] == "cancelled", final
    assert final.get("point_of_no_return") is None
    assert scaler(data.state(), "checkout-backend", "checkout-ew1") == 1.0
    assert role(data, EW1_DB) == "primary" and role(data, UC1_DB) == f"replica of {EW1_DB}"
    assert not [r for r in data.requests() if r["path"].endswith(("/switchover", "/promoteReplica"))]


def test_a_replica_too_far_behind_is_not_promoted(data: E2E) -> None:
    data.admin.put(f"/emulator/v1/sql/instances/{UC1_DB}/replicationLag", json={"seconds": 600}).raise_for_status()
    started = data.evac("failover", "--plan", str(DATA / "incident.yaml"), "--reason", "lagging", "--no-wait")
    assert started.returncode == 0, started.stderr
    waits_for_approval(data, 3)
    assert data.evac("approve", "checkout", "--reason", "go", env=ALICE).returncode == 0
    final = data.evac_json("status", "checkout", "--watch", expect=1)
    assert final["status"] == "rolled_back", final
    assert "600s behind its primary, over the step's max_replication_lag of 5m" in final["error"]
    assert final.get("point_of_no_return") is None
    assert role(data, UC1_DB) == f"replica of {EW1_DB}"
    assert scaler(data.state(), "checkout-backend", "checkout-ew1") == 1.0


def test_with_europe_west1_dead_the_incident_promotes_after_approval_and_records_the_window(data: E2E) -> None:
    with dead_api(data, "europe-west1"):
        started = data.evac("failover", "--plan", str(DATA / "incident.yaml"), "--reason", "ew1 is down", "--no-wait")
        assert started.returncode == 0, started.stderr
        waits_for_approval(data, 3)
        # Nothing waited on europe-west1: its group and its primary could not be read, and went on.
        live = data.evac_json("status", "checkout")
        assert any("europe-west1's API gave no answer" in line for line in live["ungraceful"]), live
        assert data.evac("approve", "checkout", "--reason", "promote", env=ALICE).returncode == 0
        final = data.evac_json("status", "checkout", "--watch")
        assert final["status"] == "succeeded", final
        promote = final["steps"][4]
        assert promote["irreversible"] and promote["after"]["role"] == "primary"
        assert promote["replication_lag"]["seconds"] > 0  # the replica stopped hearing from its primary
        start, end = promote["data_loss_window"]
        assert start < end
        assert final["point_of_no_return"] == "promote the replica"
        assert record(data.state(), "checkout.shop.example.com.") == ["198.51.100.10"]
        assert role(data, UC1_DB) == "primary"
        promoted = [r for r in data.requests() if r["path"].endswith("/promoteReplica")]
        assert promoted and all(UC1_DB in r["path"] for r in promoted)
        assert not [r for r in data.requests() if r["path"].endswith("/switchover")]
        text = " ".join(data.evac("status", "checkout").stdout.split())
        assert "DATA LOSS WINDOW (promote the replica): writes to the old primary from" in text
    # europe-west1 is back: re-protect the promoted primary with a replica there.
    again = data.evac_json("failover", "--plan", str(DATA / "reprotect.yaml"), "--reason", "europe-west1 is back")
    assert [r["status"] for r in again] == ["succeeded"], again
    assert role(data, "checkout-db-ew1-r") == f"replica of {UC1_DB}"


def test_an_abort_past_the_promotion_stops_there_and_says_what_is_left(data: E2E) -> None:
    bake = {"name": "hold after the promotion", "kind": "wait", "duration": "1h"}
    plan = plan_with(data, "incident.yaml", "promote the replica", bake)
    started = data.evac("failover", "--plan", str(plan), "--reason", "promote, then abort", "--no-wait")
    assert started.returncode == 0, started.stderr
    waits_for_approval(data, 3)
    assert data.evac("approve", "checkout", "--reason", "promote", env=ALICE).returncode == 0
    data.wait_for("the hold after the promotion", lambda: data.step_status("checkout", 5) == "running", timeout=120)
    assert data.evac("abort", "checkout", "--reason", "stop here").returncode == 0
    watched = data.evac("status", "checkout", "--watch", "--output", "json")
    assert watched.returncode == 5, watched.stderr + watched.stdout[-2000:]
    final = json.loads(watched.stdout)
    assert final["status"] == "stopped_past_point_of_no_return", final
    assert final["left_to_do"] == ["step 'hold after the promotion' (wait): aborted", "step 'shift DNS' (shift_dns): not run"]
    # Nothing was rolled back: europe-west1 stays drained, the promoted replica a primary.
    assert scaler(data.state(), "checkout-backend", "checkout-ew1") == 0.0
    assert role(data, UC1_DB) == "primary"
    text = " ".join(data.evac("status", "checkout").stdout.split())
    assert "PAST THE POINT OF NO RETURN: step 'promote the replica' cannot be undone; nothing was rolled back" in text
    assert "LEFT TO DO, finish by hand: step 'shift DNS' (shift_dns): not run" in text
    # The audit export says so too.
    exported = data.evac("audit", "export", "checkout", "--format", "md")
    assert exported.returncode == 0, exported.stderr
    assert "## Left to do" in exported.stdout and "point of no return" in exported.stdout
