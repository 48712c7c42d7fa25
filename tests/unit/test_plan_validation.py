"""A bad plan is refused with every error located: file, path inside the document, line, message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evac.documents import DocumentError, InvalidDocument
from evac.plan import DrainStep, Plan, VerifyHealthStep, WaitStep, load_plan
from evac.topology import Topology, load_topology
from tests.conftest import DEMO
from tests.unit.docs import edit, errors_of, line_of, only_error, write

PLAN = """\
# A failover plan for the tests.
name: test-failover
description: Move checkout and catalog to us-central1.
services: [checkout, catalog]
source: europe-west1
target: us-central1
steps:
  - name: scale
    kind: scale_target
    min_size: 3
  - name: healthy
    kind: verify_health
    min_healthy: 3
    timeout: 2m
    interval: 1s
  - name: drain half
    kind: drain
    capacity_scaler: 0.5
  - name: bake
    kind: wait
    duration: 3s
  - name: dns
    kind: shift_dns
"""

# catalog is served from europe-west1 and us-east1 only: it has no us-central1.
SPLIT_TOPOLOGY = """\
project: evac-test
dns_zones:
  shop-zone:
    dns_name: shop.example.com.
services:
  checkout:
    primary_region: europe-west1
    dns: {managed_zone: shop-zone, record: checkout.shop.example.com.}
    regions:
      europe-west1: {backend_service: checkout-backend, instance_group: checkout-ew1, address: 203.0.113.10}
      us-central1: {backend_service: checkout-backend, instance_group: checkout-uc1, address: 198.51.100.10}
  catalog:
    primary_region: europe-west1
    dns: {managed_zone: shop-zone, record: catalog.shop.example.com.}
    regions:
      europe-west1: {backend_service: catalog-backend, instance_group: catalog-ew1, address: 203.0.113.20}
      us-east1: {backend_service: catalog-backend, instance_group: catalog-ue1, address: 198.51.100.20}
"""

KINDS = (
    "scale_target",
    "verify_health",
    "drain",
    "shift_dns",
    "wait",
    "approval",
    "sql_switchover",
    "sql_promote_replica",
    "sql_create_replica",
    "spanner_leader",
)


@pytest.fixture(scope="module")
def split_topology(tmp_path_factory: pytest.TempPathFactory) -> Topology:
    return load_topology(write(tmp_path_factory.mktemp("topology"), SPLIT_TOPOLOGY, "topology.yaml"))


def plan_file(tmp_path: Path, text: str) -> Path:
    return write(tmp_path, text, "failover.yaml")


# --- valid documents ------------------------------------------------------------------------


def test_demo_plan_is_valid_against_demo_topology(demo_topology: Topology) -> None:
    plan = load_plan(DEMO / "failover.yaml", demo_topology)
    assert plan.name == "demo-failover"
    assert plan.services == ["checkout", "catalog"]
    assert (plan.source, plan.target) == ("europe-west1", "us-central1")
    assert [step.kind for step in plan.steps] == [
        "scale_target",
        "verify_health",
        "drain",
        "wait",
        "drain",
        "shift_dns",
        "verify_health",
    ]


def test_test_plan_is_valid_and_defaults_are_filled_in(tmp_path: Path, demo_topology: Topology) -> None:
    plan = load_plan(plan_file(tmp_path, PLAN), demo_topology)
    assert plan.guards.min_healthy_target == 1
    assert plan.retries.step_deadline == timedelta(minutes=10) and plan.retries.rollback_deadline == timedelta(hours=1)
    drain = plan.steps[2]
    assert isinstance(drain, DrainStep) and drain.region is None and drain.capacity_scaler == 0.5


def test_singular_service_is_accepted_as_a_list_of_one(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "service: checkout")
    plan = load_plan(plan_file(tmp_path, text), demo_topology)
    assert plan.services == ["checkout"]


def test_singular_service_is_still_checked_against_the_topology(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "service: chekout")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "service",
            "unknown service 'chekout' (did you mean 'checkout'?) (the topology has: catalog, checkout)",
            line_of(text, "service: chekout"),
        )
    ]


def test_singular_service_with_a_bad_name_is_located_at_the_service_key(tmp_path: Path) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "service: Check_Out")
    err = only_error(load_plan, plan_file(tmp_path, text))
    assert (err.path, err.line) == ("service", line_of(text, "service: Check_Out"))


def test_service_and_services_together_are_refused_at_the_service_key(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "service: checkout\nservices: [catalog]")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "service",
            "give either 'service' or 'services', not both",
            line_of(text, "service: checkout"),
        )
    ]


def test_service_and_services_together_does_not_hide_other_errors(tmp_path: Path) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "service: checkout\nservices: [catalog]")
    text = edit(text, "min_size: 3", "min_size: 0")
    assert [(e.path, e.line) for e in errors_of(load_plan, plan_file(tmp_path, text))] == [
        ("service", line_of(text, "service: checkout")),
        ("steps[0].min_size", line_of(text, "min_size: 0")),
    ]


def test_drain_of_an_explicit_source_and_edge_scalers_are_accepted(tmp_path: Path, demo_topology: Topology) -> None:
    for scaler in ("0", "0.1", "1.0", "1"):
        text = edit(PLAN, "capacity_scaler: 0.5", f"capacity_scaler: {scaler}\n    region: europe-west1")
        plan = load_plan(plan_file(tmp_path, text), demo_topology)
        assert plan.steps[2].capacity_scaler == float(scaler)


def test_timeout_equal_to_interval_is_accepted(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "timeout: 2m", "timeout: 1s")
    step = load_plan(plan_file(tmp_path, text), demo_topology).steps[1]
    assert isinstance(step, VerifyHealthStep) and step.timeout == step.interval


def test_plan_without_topology_is_checked_for_structure_only(tmp_path: Path) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "services: [not-in-any-topology]")
    assert load_plan(plan_file(tmp_path, text)).services == ["not-in-any-topology"]
    text = edit(PLAN, "target: us-central1", "target: europe-west1")
    err = only_error(load_plan, plan_file(tmp_path, text))
    assert (err.path, err.line) == ("target", line_of(text, "target:"))


# --- unknown, missing and mistyped keys ------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1\n", "target: us-central1\nsoruce: europe-west1\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "soruce", "unknown key (did you mean 'source'?)", line_of(text, "soruce:"))
    ]


def test_unknown_key_inside_a_step(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    duration: 3s\n", "    duration: 3s\n    durration: 4s\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[3].durration", "unknown key (did you mean 'duration'?)", line_of(text, "durration:"))
    ]


def test_unknown_key_inside_guards(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "guards:\n  min_healthy: 2\nsteps:\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path), "guards.min_healthy", "unknown key (did you mean 'min_healthy_target'?)", line_of(text, "  min_healthy: 2")
        )
    ]


def test_unknown_step_kind_names_the_kind_and_the_known_kinds(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "kind: wait", "kind: sleep")
    path = plan_file(tmp_path, text)
    known = ", ".join(f"'{kind}'" for kind in KINDS)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[3].kind", f"unknown kind 'sleep' (known: {known})", line_of(text, "kind: sleep"))
    ]


def test_step_without_kind_is_located_at_the_step(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    kind: wait\n", "")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[3].kind", "required key is missing", line_of(text, "- name: bake"))
    ]


def test_missing_required_top_level_key(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1\n", "")
    path = plan_file(tmp_path, text)
    # Reported where the document's mapping begins (line 1 is a comment).
    assert errors_of(load_plan, path, demo_topology) == [DocumentError(str(path), "target", "required key is missing", 2)]


def test_missing_required_key_in_a_step(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    min_size: 3\n", "")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[0].min_size", "required key is missing", line_of(text, "- name: scale"))
    ]


def test_step_that_is_not_a_mapping_is_located(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "  - name: bake\n    kind: wait\n    duration: 3s\n", "  - wait 3s\n")
    path = plan_file(tmp_path, text)
    err = only_error(load_plan, path, demo_topology)
    assert (err.path, err.line) == ("steps[3]", line_of(text, "- wait 3s"))


def test_empty_steps_are_refused(tmp_path: Path, demo_topology: Topology) -> None:
    text = PLAN[: PLAN.index("steps:")] + "steps: []\n"
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps", "must have at least one item (it has 0)", line_of(text, "steps:"))
    ]


def test_bad_region_name(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "source: europe-west1", "source: Europe-West1")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "source",
            "'Europe-West1' is not a region name (like europe-west1, or a data centre like dc-ams)",
            line_of(text, "source:"),
        )
    ]


def test_min_size_out_of_range(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "min_size: 3", "min_size: 0")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[0].min_size", "must be at least 1 (it is 0)", line_of(text, "min_size:"))
    ]


# --- rules of a failover ---------------------------------------------------------------------


def test_target_equal_to_source(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1", "target: europe-west1")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "target",
            "the target must differ from the source ('europe-west1')",
            line_of(text, "target:"),
        )
    ]


def test_drain_step_whose_region_is_the_target(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "capacity_scaler: 0.5", "capacity_scaler: 0.5\n    region: us-central1")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "steps[2].region",
            "'us-central1' is the plan's target; a drain must not drain the target "
            "(capacity_scaler: 1 on the target gives it its whole share back)",
            line_of(text, "region: us-central1"),
        )
    ]


def test_unknown_service(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "[checkout, catalog]", "[checkout, catlog]")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "services[1]",
            "unknown service 'catlog' (did you mean 'catalog'?) (the topology has: catalog, checkout)",
            line_of(text, "services:"),
        )
    ]


def test_duplicate_service(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "services:\n  - checkout\n  - catalog\n  - checkout  # again")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "services[2]", "service 'checkout' is listed twice", line_of(text, "# again"))
    ]


def test_plan_target_a_service_does_not_have(tmp_path: Path, split_topology: Topology) -> None:
    path = plan_file(tmp_path, PLAN)
    assert errors_of(load_plan, path, split_topology) == [
        DocumentError(
            str(path),
            "target",
            "service 'catalog' has no region 'us-central1' (it has: europe-west1, us-east1)",
            line_of(PLAN, "target:"),
        )
    ]


def test_plan_source_no_service_has_is_reported_for_each_service(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "source: europe-west1", "source: asia-east1")
    path = plan_file(tmp_path, text)
    line = line_of(text, "source:")
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "source", f"service '{s}' has no region 'asia-east1' (it has: europe-west1, us-central1)", line)
        for s in ("checkout", "catalog")
    ]


def test_step_region_a_service_does_not_have(tmp_path: Path, split_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1", "target: us-east1")
    text = edit(text, "services: [checkout, catalog]", "services: [catalog]")
    text = edit(text, "    interval: 1s\n", "    interval: 1s\n    region: us-central1\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, split_topology) == [
        DocumentError(
            str(path),
            "steps[1].region",
            "service 'catalog' has no region 'us-central1' (it has: europe-west1, us-east1)",
            line_of(text, "region: us-central1"),
        )
    ]


def test_capacity_scaler_between_0_and_0_1_is_refused(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "capacity_scaler: 0.5", "capacity_scaler: 0.05")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "steps[2].capacity_scaler",
            "capacity_scaler must be 0 or between 0.1 and 1.0 (Google Cloud's rule)",
            line_of(text, "capacity_scaler: 0.05"),
        )
    ]


@pytest.mark.parametrize(
    ("scaler", "message"),
    [
        ("1.5", "must be at most 1.0 (it is 1.5)"),
        ("-0.5", "must be at least 0.0 (it is -0.5)"),
        ("half", "expected a number, not text ('half')"),
        ("'0.5'", "expected a number, not text ('0.5')"),
    ],
)
def test_capacity_scaler_out_of_range(tmp_path: Path, demo_topology: Topology, scaler: str, message: str) -> None:
    text = edit(PLAN, "capacity_scaler: 0.5", f"capacity_scaler: {scaler}")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[2].capacity_scaler", message, line_of(text, "capacity_scaler:"))
    ]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("5 minutes", "'5 minutes' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("-5", "a duration cannot be negative"),
        ("-0.5", "a duration cannot be negative"),
        ("-5s", "'-5s' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("1.5m", "'1.5m' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("true", "a duration is a number of seconds or text like '30s', '5m', '1h30m'"),
    ],
)
def test_bad_duration(tmp_path: Path, demo_topology: Topology, written: str, message: str) -> None:
    text = edit(PLAN, "duration: 3s", f"duration: {written}")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[3].duration", message, line_of(text, "duration:"))
    ]


def test_bad_duration_in_retries(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "retries:\n  initial_interval: soon\nsteps:\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "retries.initial_interval",
            "'soon' is not a duration (use seconds or text like '30s', '5m', '1h30m')",
            line_of(text, "initial_interval:"),
        )
    ]


def test_verify_health_timeout_shorter_than_interval(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "timeout: 2m", "timeout: 0.5s")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[1].timeout", "timeout must be at least one interval (1s) long", line_of(text, "timeout:"))
    ]


def test_verify_health_default_timeout_shorter_than_interval_is_at_the_step(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    timeout: 2m\n    interval: 1s\n", "    interval: 10m\n")
    path = plan_file(tmp_path, text)
    # The default timeout (5m) is not written: the error is on the step, where timeout would be written.
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path), "steps[1].timeout", "timeout must be at least one interval (10m) long", line_of(text, "- name: healthy")
        )
    ]


def test_verify_health_zero_interval(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "interval: 1s", "interval: 0s")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[1].interval", "must be longer than 0s", line_of(text, "interval: 0s"))
    ]


def test_retries_maximum_shorter_than_initial(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "retries:\n  initial_interval: 10s\n  maximum_interval: 2s\nsteps:\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "retries.maximum_interval",
            "maximum_interval must not be shorter than initial_interval (10s)",
            line_of(text, "maximum_interval:"),
        )
    ]


def test_retries_zero_initial_interval(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "retries:\n  initial_interval: 0\nsteps:\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "retries.initial_interval", "must be longer than 0s", line_of(text, "initial_interval:"))
    ]


# --- files that are not plans at all ---------------------------------------------------------


def test_file_not_found(tmp_path: Path, demo_topology: Topology) -> None:
    path = tmp_path / "missing.yaml"
    assert errors_of(load_plan, path, demo_topology) == [DocumentError(str(path), "(document)", "file not found", None)]


def test_directory_instead_of_file(tmp_path: Path, demo_topology: Topology) -> None:
    err = only_error(load_plan, tmp_path, demo_topology)
    assert (err.path, err.line) == ("(document)", None)
    assert err.message == "is a directory, not a file"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("- name: a\n- name: b\n", 1),
        ("just some words\n", 1),
        ("42\n", 1),
        ("# A plan.\n\n- name: a\n", 3),
        ("---\n~\n", 2),
    ],
)
def test_document_that_is_not_a_mapping_is_reported_on_its_first_line(
    tmp_path: Path, demo_topology: Topology, text: str, line: int
) -> None:
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "(document)", "expected a mapping of keys to values at the top level", line)
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, demo_topology: Topology, text: str) -> None:
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [DocumentError(str(path), "(document)", "the file is empty")]


def test_invalid_yaml_reports_its_line_and_where_the_construct_began(tmp_path: Path, demo_topology: Topology) -> None:
    # The step's keys are indented less than the step: YAML cannot parse that.
    text = edit(PLAN, "    duration: 3s", "  duration: 3s")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "(document)",
            "not valid YAML: expected <block end>, but found '?' "
            f"(while parsing a block collection that began on line {line_of(text, 'steps:') + 1})",
            line_of(text, "  duration: 3s"),
        )
    ]


def test_unclosed_flow_list_names_the_line_it_began_on(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "services: [checkout, catalog")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "(document)",
            "not valid YAML: expected ',' or ']', but got ':' "
            f"(while parsing a flow sequence that began on line {line_of(text, 'services:')})",
            line_of(text, "source:"),
        )
    ]


def test_tab_indentation_reports_its_line(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    min_size: 3", "\tmin_size: 3")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "(document)",
            "not valid YAML: found character '\\t' that cannot start any token",
            line_of(text, "\tmin_size"),
        )
    ]


# --- every error at once ---------------------------------------------------------------------


def test_several_field_errors_are_all_reported_each_located(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1\n", "target: us-central1\nsoruce: x\n")
    text = edit(text, "source: europe-west1", "source: Europe-West1")
    text = edit(text, "min_size: 3", "min_size: 0")
    text = edit(text, "duration: 3s", "duration: 5 minutes")
    text = edit(text, "    kind: shift_dns\n", "    kind: shift_dns\n    ttl: 0\n")
    path = plan_file(tmp_path, text)
    f = str(path)
    errors = errors_of(load_plan, path, demo_topology)
    assert sorted(errors, key=lambda e: e.line or 0) == [
        DocumentError(
            f,
            "source",
            "'Europe-West1' is not a region name (like europe-west1, or a data centre like dc-ams)",
            line_of(text, "source:"),
        ),
        DocumentError(f, "soruce", "unknown key (did you mean 'source'?)", line_of(text, "soruce:")),
        DocumentError(f, "steps[0].min_size", "must be at least 1 (it is 0)", line_of(text, "min_size:")),
        DocumentError(
            f,
            "steps[3].duration",
            "'5 minutes' is not a duration (use seconds or text like '30s', '5m', '1h30m')",
            line_of(text, "duration:"),
        ),
        DocumentError(f, "steps[4].ttl", "must be at least 1 (it is 0)", line_of(text, "ttl: 0")),
    ]


def test_several_plan_rule_errors_are_all_reported_each_located(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "services: [checkout, catalog]", "services: [checkout, catalog, checkout, cart]")
    text = edit(text, "capacity_scaler: 0.5", "capacity_scaler: 0.5\n    region: us-central1")
    text = edit(text, "    interval: 1s\n", "    interval: 1s\n    region: asia-east1\n")
    path = plan_file(tmp_path, text)
    f = str(path)
    services, asia = line_of(text, "services:"), line_of(text, "asia-east1")
    has = "(it has: europe-west1, us-central1)"
    # In line order; the repeated 'checkout' is checked once against the topology.
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(f, "services[2]", "service 'checkout' is listed twice", services),
        DocumentError(f, "services[3]", "unknown service 'cart' (the topology has: catalog, checkout)", services),
        DocumentError(f, "steps[1].region", f"service 'checkout' has no region 'asia-east1' {has}", asia),
        DocumentError(f, "steps[1].region", f"service 'catalog' has no region 'asia-east1' {has}", asia),
        DocumentError(
            f,
            "steps[2].region",
            "'us-central1' is the plan's target; a drain must not drain the target "
            "(capacity_scaler: 1 on the target gives it its whole share back)",
            line_of(text, "region: us-central1"),
        ),
    ]


def test_invalid_document_message_lists_every_error_with_file_and_line(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1\n", "target: us-central1\nsoruce: x\n")
    text = edit(text, "min_size: 3", "min_size: 0")
    path = plan_file(tmp_path, text)
    with pytest.raises(InvalidDocument) as caught:
        load_plan(path, demo_topology)
    assert sorted(str(caught.value).splitlines()) == sorted(
        [
            f"{path}:{line_of(text, 'soruce')}: soruce: unknown key (did you mean 'source'?)",
            f"{path}:{line_of(text, 'min_size')}: steps[0].min_size: must be at least 1 (it is 0)",
        ]
    )
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidDocument, match=r"^.*nope\.yaml: \(document\): file not found$"):
        load_plan(missing, demo_topology)


def test_loaded_steps_have_their_types(tmp_path: Path, demo_topology: Topology) -> None:
    plan: Plan = load_plan(plan_file(tmp_path, PLAN), demo_topology)
    assert isinstance(plan.steps[1], VerifyHealthStep)
    assert isinstance(plan.steps[3], WaitStep) and plan.steps[3].duration.total_seconds() == 3


# --- YAML booleans are never numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path", "expected"),
    [
        ("min_size: 3", "min_size: true", "steps[0].min_size", "an integer"),
        ("min_healthy: 3", "min_healthy: yes", "steps[1].min_healthy", "an integer"),
        ("capacity_scaler: 0.5", "capacity_scaler: off", "steps[2].capacity_scaler", "a number"),
        ("capacity_scaler: 0.5", "capacity_scaler: on", "steps[2].capacity_scaler", "a number"),
        ("capacity_scaler: 0.5", "capacity_scaler: false", "steps[2].capacity_scaler", "a number"),
        ("    kind: shift_dns\n", "    kind: shift_dns\n    ttl: true\n", "steps[4].ttl", "an integer"),
        ("steps:\n", "guards: {min_healthy_target: true}\nsteps:\n", "guards.min_healthy_target", "an integer"),
        ("steps:\n", "retries: {step_deadline: on}\nsteps:\n", "retries.step_deadline", None),
        ("steps:\n", "retries: {rollback_deadline: yes}\nsteps:\n", "retries.rollback_deadline", None),
        ("duration: 3s", "duration: off", "steps[3].duration", None),
    ],
)
def test_a_yaml_boolean_is_never_taken_for_a_number(
    tmp_path: Path, demo_topology: Topology, old: str, new: str, path: str, expected: str | None
) -> None:
    text = edit(PLAN, old, new)
    err = only_error(load_plan, plan_file(tmp_path, text), demo_topology)
    written = next(line for line in new.splitlines() if line not in old)
    assert (err.path, err.line) == (path, line_of(text, written))
    if expected is None:
        assert err.message == "a duration is a number of seconds or text like '30s', '5m', '1h30m'"
    else:
        assert err.message == f"expected {expected}, not a boolean (YAML reads true/false/yes/no/on/off as booleans)"


@pytest.mark.parametrize(
    ("written", "value"),
    [("3.0", "expected a whole number, not 3.0"), ("'3'", "expected a whole number, not text ('3')"), ("3", 3)],
)
def test_counts_are_whole_numbers_written_as_numbers(
    tmp_path: Path, demo_topology: Topology, written: str, value: int | str
) -> None:
    text = edit(PLAN, "min_size: 3", f"min_size: {written}")
    path = plan_file(tmp_path, text)
    if isinstance(value, int):
        assert load_plan(path, demo_topology).steps[0].min_size == value
    else:
        assert only_error(load_plan, path, demo_topology).message == value


# --- keys: repeated, or not text ----------------------------------------------------------------


def test_repeated_top_level_key_is_refused_at_the_repetition(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1\n", "target: us-central1\nsource: us-east1  # again\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "source",
            f"duplicate key (first given on line {line_of(text, 'source: europe')})",
            line_of(text, "# again"),
        )
    ]


def test_repeated_keys_are_refused_at_any_depth_all_at_once(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    capacity_scaler: 0.5\n", "    capacity_scaler: 0.5\n    capacity_scaler: 0  # again\n")
    text = edit(text, "steps:\n", 'retries: {step_deadline: 3m, "step_deadline": 4m}\nsteps:\n')
    path = plan_file(tmp_path, text)
    f = str(path)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            f,
            "retries.step_deadline",
            f"duplicate key (first given on line {line_of(text, 'retries:')})",
            line_of(text, "retries:"),
        ),
        DocumentError(
            f,
            "steps[2].capacity_scaler",
            f"duplicate key (first given on line {line_of(text, 'capacity_scaler: 0.5')})",
            line_of(text, "# again"),
        ),
    ]


@pytest.mark.parametrize(("key", "path"), [("1", "1"), ("yes", "yes"), ("~", "~"), ("2024-01-01", "2024-01-01")])
def test_a_key_that_is_not_text_is_refused_on_its_line(tmp_path: Path, demo_topology: Topology, key: str, path: str) -> None:
    text = edit(PLAN, "    duration: 3s\n", f"    duration: 3s\n    {key}: 4\n")
    file = plan_file(tmp_path, text)
    assert errors_of(load_plan, file, demo_topology) == [
        DocumentError(
            str(file),
            f"steps[3].{path}",
            f"invalid key: a key must be text (write it quoted: '{key}')",
            line_of(text, f"    {key}: 4"),
        )
    ]


def test_a_quoted_key_that_looks_like_a_number_is_text(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "    duration: 3s\n", "    duration: 3s\n    '1': 4\n")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "steps[3].1", "unknown key", line_of(text, "'1': 4"))
    ]


def test_a_merge_key_is_not_a_repeated_key(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "retries: &retries {step_deadline: 3m}\nguards: {<<: {}, min_healthy_target: 2}\nsteps:\n")
    plan = load_plan(plan_file(tmp_path, text), demo_topology)
    assert plan.retries.step_deadline == timedelta(minutes=3) and plan.guards.min_healthy_target == 2


def test_errors_are_listed_in_line_order(tmp_path: Path) -> None:
    text = edit(PLAN, "    kind: shift_dns\n", "    kind: shift_dns\n    ttl: 0\n")
    text = edit(text, "min_size: 3", "min_size: 0")
    text = edit(text, "name: test-failover", "name: Test_Failover")
    text = edit(text, "steps:\n", "retries: {step_deadline: 0}\nsteps:\n")
    errors = errors_of(load_plan, plan_file(tmp_path, text))
    assert [e.path for e in errors] == ["name", "retries.step_deadline", "steps[0].min_size", "steps[4].ttl"]
    assert [e.line for e in errors] == sorted(e.line for e in errors)


# --- rules are checked even when some fields are wrong ----------------------------------------


def test_target_equal_to_source_is_reported_with_field_errors(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1", "target: europe-west1")
    text = edit(text, "min_size: 3", "min_size: 0")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(str(path), "target", "the target must differ from the source ('europe-west1')", line_of(text, "target:")),
        DocumentError(str(path), "steps[0].min_size", "must be at least 1 (it is 0)", line_of(text, "min_size:")),
    ]


def test_step_rules_are_reported_with_errors_of_other_steps(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "min_size: 3", "min_size: 0")
    text = edit(text, "timeout: 2m", "timeout: 0.5s")
    text = edit(text, "capacity_scaler: 0.5", "capacity_scaler: 0.05")
    errors = errors_of(load_plan, plan_file(tmp_path, text), demo_topology)
    assert [(e.path, e.line) for e in errors] == [
        ("steps[0].min_size", line_of(text, "min_size:")),
        ("steps[1].timeout", line_of(text, "timeout:")),
        ("steps[2].capacity_scaler", line_of(text, "capacity_scaler:")),
    ]


def test_rules_that_need_the_whole_plan_wait_for_its_fields(tmp_path: Path, demo_topology: Topology) -> None:
    # A repeated service, a drain of the target and the checks against the topology need a valid plan:
    # they are reported once its field errors are fixed.
    text = edit(PLAN, "services: [checkout, catalog]", "services: [checkout, checkout, cart]")
    text = edit(text, "min_size: 3", "min_size: 0")
    errors = errors_of(load_plan, plan_file(tmp_path, text), demo_topology)
    assert [e.path for e in errors] == ["steps[0].min_size"]


def test_a_control_character_is_reported_on_its_line(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "name: bake", "name: ba\x07ke")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "(document)",
            "not valid YAML: unacceptable character #x0007: special characters are not allowed",
            line_of(text, "name: ba"),
        )
    ]


@pytest.mark.parametrize(("old", "new"), [("step_attempts", "step_deadline"), ("rollback_attempts", "rollback_deadline")])
def test_retry_counts_are_refused_with_the_deadline_that_replaced_them(
    tmp_path: Path, demo_topology: Topology, old: str, new: str
) -> None:
    text = edit(PLAN, "steps:\n", f"retries: {{{old}: 6}}\nsteps:\n")
    [error] = errors_of(load_plan, plan_file(tmp_path, text), demo_topology)
    assert error.path == f"retries.{old}"
    assert error.message.startswith(f"'{old}' was replaced by '{new}'")


def test_a_region_typo_gets_a_suggestion_but_another_region_does_not(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "target: us-central1", "target: us-centrl1")
    errors = errors_of(load_plan, plan_file(tmp_path, text), demo_topology)
    assert errors and all("has no region 'us-centrl1' (did you mean 'us-central1'?)" in e.message for e in errors)


def test_a_plan_with_no_topology_beside_it_is_told_where_it_was_looked_up_and_how_to_name_one(tmp_path):
    from evac.control.start import load_documents

    plan = tmp_path / "plan.yaml"
    plan.write_text((DEMO / "failover.yaml").read_text())
    with pytest.raises(InvalidDocument) as caught:
        load_documents(plan)
    [error] = caught.value.errors
    assert error.file == str(tmp_path / "topology.yaml")
    assert error.message == (
        f"file not found: the topology of plan {plan} is looked up beside it, as topology.yaml; name another with --topology FILE"
    )
    with pytest.raises(InvalidDocument) as named:  # a topology named with --topology is not looked up beside the plan
        load_documents(plan, tmp_path / "nope.yaml")
    assert [e.message for e in named.value.errors] == ["file not found"]


def test_an_impossible_unquoted_date_is_a_document_error_at_its_line(tmp_path: Path, demo_topology: Topology) -> None:
    """Issue 20, item 11: PyYAML reads `2026-02-30` as a date and raised ValueError: a traceback."""
    text = edit(PLAN, "description: Move checkout and catalog to us-central1.", "description: 2026-02-30")
    path = plan_file(tmp_path, text)
    assert errors_of(load_plan, path, demo_topology) == [
        DocumentError(
            str(path),
            "(document)",
            "not valid YAML: '2026-02-30' is not a real date or time (day is out of range for month); quote it to mean text",
            3,
        )
    ]
