"""Documents a user can hand Evac by mistake, or to hurt it: each is refused in one sentence,
fast, before it costs minutes or gigabytes; and the words are plain, with a hint when a name is
close to a known one."""

from __future__ import annotations

from pathlib import Path

import pytest

from evac.control import load_documents
from evac.documents import LIMITS, InvalidDocument
from evac.plan import load_plan
from evac.topology import Topology, load_topology
from tests.conftest import DEMO
from tests.unit.docs import edit, only_error, write

PLAN = (DEMO / "failover.yaml").read_text()
STEP = "  - {name: bake, kind: wait, duration: 3s}\n"


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path: Path, demo_topology: Topology) -> None:
    # What follows the plan is not YAML at all: had it been parsed, that would be the error.
    path = write(tmp_path, PLAN + "key: [unclosed\n" * (LIMITS.file_bytes // 10), "huge.yaml")
    err = only_error(load_plan, path, demo_topology)
    assert err.message.startswith("the file is ") and f"at most {LIMITS.file_bytes:,} are allowed" in err.message


def test_too_many_steps_are_refused_in_one_sentence_without_validating_each(tmp_path: Path, demo_topology: Topology) -> None:
    # Each added step is wrong too: were they validated one by one, there would be 5,000 more errors.
    text = PLAN.rstrip("\n") + "\n" + "  - {kind: no_such_kind, capacity_scaler: lots}\n" * 5000
    path = write(tmp_path, text, "long.yaml")
    err = only_error(load_plan, path, demo_topology)
    assert err.message == "'steps' lists 5007 items; at most 200 are allowed"
    assert err.line == text.splitlines().index("steps:") + 1


def test_a_plan_at_the_step_limit_is_accepted(tmp_path: Path, demo_topology: Topology) -> None:
    text = PLAN.rstrip("\n") + "\n" + STEP * (200 - 7)
    assert len(load_plan(write(tmp_path, text, "long.yaml"), demo_topology).steps) == 200


def test_too_many_services_are_refused(tmp_path: Path) -> None:
    services = ", ".join(f"svc{i}" for i in range(101))
    path = write(tmp_path, edit(PLAN, "services: [checkout, catalog]", f"services: [{services}]"), "wide.yaml")
    assert only_error(load_plan, path).message == "'services' lists 101 items; at most 100 are allowed"


def test_a_very_long_string_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, edit(PLAN, "name: demo-failover", f"name: {'x' * 20000}"), "long-name.yaml")
    err = only_error(load_plan, path)
    assert err.message == "a value is 20000 characters long; at most 10000 are allowed"


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "\n".join(lines) + "\n", "bomb.yaml")
    err = only_error(load_plan, path)  # expanded, it would hold 10^9 values: refused at 100,000 instead
    assert err.message.startswith("the document has more than 100000 values")


def test_deep_nesting_is_refused_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    assert "nested more than 50 levels deep" in only_error(load_plan, path).message


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert only_error(load_plan, path).message.startswith("the file is not UTF-8 text (byte 0 is 0x89)")


def test_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    assert only_error(load_plan, tmp_path).message == "is a directory, not a file"


def test_a_plan_given_as_the_topology_says_what_was_expected_and_found() -> None:
    with pytest.raises(InvalidDocument) as caught:
        load_topology(DEMO / "failover.yaml")
    [err] = caught.value.errors
    assert err.message == "expected a topology, but this is a plan (it has steps, source, target)"
    with pytest.raises(InvalidDocument) as caught:
        load_plan(DEMO / "topology.yaml")
    assert caught.value.errors[0].message == "expected a plan, but this is a topology (it has dns_zones, project)"


def test_an_unknown_step_kind_close_to_a_known_one_gets_a_hint(tmp_path: Path, demo_topology: Topology) -> None:
    path = write(tmp_path, edit(PLAN, "kind: scale_target", "kind: scale_taget"), "typo.yaml")
    err = only_error(load_plan, path, demo_topology)
    assert err.path == "steps[0].kind"
    assert err.message.startswith("unknown kind 'scale_taget' (did you mean 'scale_target'?)")


def test_an_unknown_key_far_from_every_known_one_gets_no_hint(tmp_path: Path, demo_topology: Topology) -> None:
    path = write(tmp_path, edit(PLAN, "source: europe-west1", "zebra: 2\nsource: europe-west1"), "far.yaml")
    assert only_error(load_plan, path, demo_topology).message == "unknown key"


def test_load_documents_reports_the_plan_and_the_topology_errors_together(tmp_path: Path) -> None:
    plan = write(tmp_path, edit(PLAN, "name: demo-failover", "nme: demo-failover"), "failover.yaml")
    write(tmp_path, (DEMO / "topology.yaml").read_text().replace("project: evac-demo", "projet: evac-demo"), "topology.yaml")
    with pytest.raises(InvalidDocument) as caught:
        load_documents(plan)
    shown = [f"{Path(e.file).name}: {e.path}: {e.message}" for e in caught.value.errors]
    assert "failover.yaml: nme: unknown key (did you mean 'name'?)" in shown
    assert "topology.yaml: projet: unknown key (did you mean 'project'?)" in shown
    assert shown.index("failover.yaml: nme: unknown key (did you mean 'name'?)") < shown.index(
        "topology.yaml: projet: unknown key (did you mean 'project'?)"
    )
