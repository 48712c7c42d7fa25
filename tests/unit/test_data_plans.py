"""Plans with data steps (issue 23): where the point of no return is, what needs an approval
before it, no two writers, and the databases a step needs in the topology."""

from __future__ import annotations

import json

import pytest

from evac.plan import load_plan
from evac.topology import Topology, load_topology
from tests.conftest import ROOT
from tests.unit.docs import edit, errors_of, line_of, only_error, write

DATA = ROOT / "plans" / "data"

INCIDENT = """\
name: checkout-incident
service: checkout
source: europe-west1
target: us-central1
steps:
  - name: drain europe-west1
    kind: drain
    capacity_scaler: 0
  - name: go?
    kind: approval
    approvers: [alice]
  - name: promote
    kind: sql_promote_replica
    max_replication_lag: 1m
  - name: dns
    kind: shift_dns
"""


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(DATA / "topology.yaml")


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.yaml") if p.name != "topology.yaml"))
def test_the_data_plans_are_valid(topology, name):
    load_plan(DATA / name, topology)


def test_the_incident_plan_s_point_of_no_return_is_its_promotion(tmp_path, topology):
    plan = load_plan(write(tmp_path, INCIDENT, "p.yaml"), topology)
    assert plan.point_of_no_return() == 2
    assert load_plan(DATA / "failover.yaml", topology).point_of_no_return() is None


def test_a_promotion_needs_an_approval_before_it(tmp_path, topology):
    text = edit(INCIDENT, "  - name: go?\n    kind: approval\n    approvers: [alice]\n", "")
    path = write(tmp_path, text, "p.yaml")
    err = only_error(load_plan, path, topology)
    assert err.line == line_of(text, "kind: sql_promote_replica")
    assert "cannot be undone (the point of no return): put an approval step before it" in err.message


def test_an_automatic_plan_may_promote_with_no_approval_only_when_it_says_so(tmp_path, topology):
    text = edit(INCIDENT, "  - name: go?\n    kind: approval\n    approvers: [alice]\n", "")
    auto = write(tmp_path, "auto: true\n" + text, "auto.yaml")
    assert "auto: true and allow_irreversible: true" in only_error(load_plan, auto, topology).message
    load_plan(write(tmp_path, "auto: true\nallow_irreversible: true\n" + text, "ok.yaml"), topology)


def test_allow_irreversible_without_such_a_step_is_refused(tmp_path, topology):
    text = "allow_irreversible: true\n" + (DATA / "failover.yaml").read_text()
    err = only_error(load_plan, write(tmp_path, text, "p.yaml"), topology)
    assert err.message.endswith("the plan has no step that cannot be undone")


def test_a_drill_rehearses_only_what_it_can_undo(tmp_path, topology):
    text = "kind: drill\n" + INCIDENT
    err = only_error(load_plan, write(tmp_path, text, "p.yaml"), topology)
    assert "a drill fails back by undoing" in err.message
    load_plan(write(tmp_path, "kind: drill\nallow_irreversible: true\n" + INCIDENT, "ok.yaml"), topology)


def test_a_step_that_moves_the_writes_before_the_traffic_left_is_refused(tmp_path, topology):
    text = (DATA / "failover.yaml").read_text()
    moved = edit(
        text,
        "  - name: drain europe-west1\n    kind: drain\n    capacity_scaler: 0\n",
        "  - name: drain half\n    kind: drain\n    capacity_scaler: 0.5\n",
    )
    err = only_error(load_plan, write(tmp_path, moved, "p.yaml"), topology)
    assert err.line == line_of(moved, "kind: sql_switchover")
    assert "no two writers" in err.message


def test_a_data_step_needs_its_database_in_the_topology(tmp_path, topology):
    text = edit((DATA / "failover.yaml").read_text(), "service: checkout", "service: catalog")
    err = only_error(load_plan, write(tmp_path, text, "p.yaml"), topology)
    assert err.message == "service 'catalog' has no Cloud SQL database in the topology (cloud_sql)"
    leader = edit(INCIDENT, "kind: sql_promote_replica\n    max_replication_lag: 1m", "kind: spanner_leader")
    err = only_error(load_plan, write(tmp_path, leader, "l.yaml"), topology)
    assert err.message == "service 'checkout' has no Spanner database in the topology (spanner)"


def test_a_step_for_some_services_names_only_the_plan_s(tmp_path, topology):
    text = (DATA / "drill.yaml").read_text()
    wrong = edit(text, "services: [catalog]", "services: [payments]")
    errors = errors_of(load_plan, write(tmp_path, wrong, "p.yaml"), topology)
    assert [e.message for e in errors] == ["'payments' is not one of the plan's services (checkout, catalog)"]
    assert errors[0].line == line_of(wrong, "services: [payments]")


def test_a_re_protect_needs_the_new_primary_s_instance(tmp_path, topology):
    text = INCIDENT + "  - name: re-protect\n    kind: sql_create_replica\n    region: europe-west1\n"
    plan = load_plan(write(tmp_path, text, "p.yaml"), topology)  # the topology's europe-west1 instance by default
    assert plan.steps[-1].kind == "sql_create_replica"
    sql = topology.services["checkout"].cloud_sql
    assert sql is not None
    services = dict(topology.services)
    services["checkout"] = services["checkout"].model_copy(
        update={"cloud_sql": sql.model_copy(update={"instances": {"europe-west1": "checkout-db-ew1"}})}
    )
    errors = errors_of(load_plan, write(tmp_path, text, "q.yaml"), topology.model_copy(update={"services": services}))
    assert "service 'checkout' has no Cloud SQL instance in us-central1 (it has one in: europe-west1)" in [
        e.message for e in errors
    ]


def test_a_step_for_no_service_is_refused(tmp_path, topology):
    text = edit((DATA / "drill.yaml").read_text(), "services: [catalog]", "services: []")
    err = only_error(load_plan, write(tmp_path, text, "p.yaml"), topology)
    assert err.line == line_of(text, "services: []") and err.message == "must have at least one item (it has 0)"


def test_plan_check_says_where_the_point_of_no_return_is():
    from typer.testing import CliRunner

    from evac.cli import app

    env = {"EVAC_CONFIG": "/nonexistent/evac.toml", "COLUMNS": "300"}
    text = CliRunner().invoke(app, ["plan", "check", str(DATA / "incident.yaml")], env=env)
    assert text.exit_code == 0, text.stdout
    assert (
        "point of no return: step 5 'promote the replica' (sql_promote_replica) cannot be undone; once it is sent, "
        "a failure or abort stops the run instead of rolling back"
    ) in " ".join(text.stdout.split())
    data = CliRunner().invoke(app, ["plan", "check", str(DATA / "incident.yaml"), "--output", "json"], env=env)
    assert json.loads(data.stdout)["point_of_no_return"] == {
        "index": 4,
        "name": "promote the replica",
        "kind": "sql_promote_replica",
    }
    switchover = CliRunner().invoke(app, ["plan", "check", str(DATA / "failover.yaml")], env=env)
    assert "sql_switchover needs europe-west1's Cloud SQL primary to answer" in " ".join(switchover.stdout.split())
    assert "point of no return" not in switchover.stdout
