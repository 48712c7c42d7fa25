"""Who may decide an approval step (identity matching, groups), approval steps and four_eyes in
plans (every error located), and the approver groups of the configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evac.approvals import (
    UnknownApproverGroup,
    approval_refusal,
    groups_used,
    matches,
    may_decide,
    pause_refusal,
    resolve_groups,
    resume_refusal,
)
from evac.config import Settings
from evac.documents import DocumentError
from evac.errors import ConfigError
from evac.plan import ApprovalStep, load_plan
from evac.runs import ApprovalDecision, ApprovalRecord, FailoverInput, FailoverProgress, RunStatus, StepStatus, Trigger
from evac.topology import Topology, load_topology
from tests.conftest import DEMO
from tests.unit.docs import edit, errors_of, line_of, write
from tests.unit.test_plan_validation import PLAN

GROUPS = {"sre": ["alice", "bob@laptop"], "dba": ["erin@db1"]}


# --- identity matching --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "identity", "expected"),
    [
        ("alice@laptop", "alice@laptop", True),
        ("alice@laptop", "alice@desktop", False),  # with a host: exactly that identity
        ("alice@laptop", "alice", False),
        ("alice", "alice@laptop", True),  # a bare name: that user from any host
        ("alice", "alice@desktop", True),
        ("alice", "alice", True),
        ("alice", "alicia@laptop", False),
        ("alice", "al", False),
        ("alice", "malice@laptop", False),
        ("al", "alice@laptop", False),  # a prefix of the name is not the name
    ],
)
def test_an_entry_matches_exactly_with_a_host_and_any_host_without(entry: str, identity: str, expected: bool) -> None:
    assert matches(entry, identity) is expected


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("carol@desk", True),  # listed by name and host
        ("alice@anywhere", True),  # in group sre by bare name
        ("bob@laptop", True),  # in group sre with its host
        ("bob@desktop", False),  # bob only from his laptop
        ("erin@db1", False),  # in a group the step does not name
        ("mallory", False),
    ],
)
def test_groups_expand_to_their_members(identity: str, expected: bool) -> None:
    assert may_decide(["group:sre", "carol@desk"], identity, GROUPS) is expected


def test_a_group_missing_from_the_recorded_groups_names_nobody() -> None:
    assert may_decide(["group:ops"], "alice@laptop", GROUPS) is False


# --- plans --------------------------------------------------------------------------------

APPROVAL = """\
  - name: go ahead?
    kind: approval
    approvers: [alice, group:sre, bob@laptop]
    timeout: 20m
    on_timeout: continue
"""


def approval_plan_text(step: str = APPROVAL, top: str = "") -> str:
    return edit(PLAN, "steps:\n", f"{top}steps:\n{step}")


def test_an_approval_step_is_read_with_its_defaults(tmp_path: Path, demo_topology: Topology) -> None:
    plan = load_plan(write(tmp_path, approval_plan_text(), "plan.yaml"), demo_topology)
    step = plan.steps[0]
    assert isinstance(step, ApprovalStep)
    assert (step.approvers, step.timeout, step.on_timeout) == (
        ["alice", "group:sre", "bob@laptop"],
        timedelta(minutes=20),
        "continue",
    )
    bare = load_plan(write(tmp_path, approval_plan_text("  - {kind: approval, approvers: [alice]}\n"), "bare.yaml"))
    assert isinstance(bare.steps[0], ApprovalStep)
    assert (bare.steps[0].timeout, bare.steps[0].on_timeout, bare.four_eyes) == (timedelta(hours=1), "abort", False)
    assert groups_used(plan) == ["sre"]


def test_four_eyes_is_off_by_default_and_leaves_the_digest_of_plans_without_it_alone(tmp_path: Path) -> None:
    plain = load_plan(write(tmp_path, approval_plan_text(), "plain.yaml"))
    assert "four_eyes" not in plain.model_dump(mode="json")
    strict = load_plan(write(tmp_path, approval_plan_text(top="four_eyes: true\n"), "strict.yaml"))
    assert strict.four_eyes is True and strict.digest() != plain.digest()


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            "approvers: [alice, group:sre, bob@laptop]",
            "approvers: []",
            "steps[0].approvers",
            "must have at least one item (it has 0)",
        ),
        (
            "approvers: [alice, group:sre, bob@laptop]",
            "approvers: [alice, 'group:', bob@laptop]",
            "steps[0].approvers[1]",
            "'group:': a group is written group:NAME, NAME letters, digits, '_', '.' or '-'",
        ),
        (
            "approvers: [alice, group:sre, bob@laptop]",
            "approvers: [alice, 'bob smith']",
            "steps[0].approvers[1]",
            "'bob smith' is not a user name or user@host (no spaces, at most one '@', at most 200 characters)",
        ),
        (
            "approvers: [alice, group:sre, bob@laptop]",
            "approvers: [a@b@c]",
            "steps[0].approvers[0]",
            "'a@b@c' is not a user name or user@host (no spaces, at most one '@', at most 200 characters)",
        ),
        ("timeout: 20m", "timeout: 0s", "steps[0].timeout", "must be longer than 0s"),
        ("on_timeout: continue", "on_timeout: skip", "steps[0].on_timeout", "'skip' is not one of 'abort' or 'continue'"),
    ],
)
def test_a_bad_approval_step_is_refused_where_it_is_wrong(
    tmp_path: Path, demo_topology: Topology, old: str, new: str, path: str, message: str
) -> None:
    text = approval_plan_text(edit(APPROVAL, old, new))
    file = write(tmp_path, text, "plan.yaml")
    [error] = errors_of(load_plan, file, demo_topology)
    assert (error.path, error.line) == (path, line_of(text, new))
    assert error.message == message


def test_an_approver_listed_twice_is_refused(tmp_path: Path, demo_topology: Topology) -> None:
    text = approval_plan_text(edit(APPROVAL, "bob@laptop]", "alice]"))
    file = write(tmp_path, text, "plan.yaml")
    assert errors_of(load_plan, file, demo_topology) == [
        DocumentError(str(file), "steps[0].approvers", "an approver is listed twice", line_of(text, "approvers:"))
    ]


def test_four_eyes_without_an_approval_step_is_refused(tmp_path: Path, demo_topology: Topology) -> None:
    text = edit(PLAN, "steps:\n", "four_eyes: true\nsteps:\n")
    file = write(tmp_path, text, "plan.yaml")
    assert errors_of(load_plan, file, demo_topology) == [
        DocumentError(
            str(file), "four_eyes", "four_eyes applies to approval steps, and this plan has none", line_of(text, "four_eyes:")
        )
    ]


def test_four_eyes_must_be_a_boolean(tmp_path: Path, demo_topology: Topology) -> None:
    text = approval_plan_text(top="four_eyes: 1\n")
    [error] = errors_of(load_plan, write(tmp_path, text, "plan.yaml"), demo_topology)
    assert error.path == "four_eyes"


def test_groups_are_resolved_from_configuration_and_an_unknown_one_is_bad_input(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, approval_plan_text(), "plan.yaml"))
    assert resolve_groups(plan, GROUPS) == {"sre": ["alice", "bob@laptop"]}
    with pytest.raises(UnknownApproverGroup) as unknown:
        resolve_groups(plan, {})
    assert str(unknown.value) == (
        "plan 'test-failover' names approver group group:sre, which the configuration's approver_groups "
        "does not define (it defines: none); nothing was started"
    )


# --- configuration ------------------------------------------------------------------------


def settings_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str) -> Settings:
    config = write(tmp_path, toml, "config.toml")
    monkeypatch.setenv("EVAC_CONFIG", str(config))
    monkeypatch.delenv("EVAC_APPROVER_GROUPS", raising=False)
    return Settings.load()


def test_approver_groups_come_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(tmp_path, monkeypatch, '[approver_groups]\nsre = ["alice", "bob@laptop"]\ndba = ["erin"]\n')
    assert settings.approver_groups == {"sre": ["alice", "bob@laptop"], "dba": ["erin"]}
    assert settings_from(tmp_path, monkeypatch, "").approver_groups == {}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('approver_groups = "sre"', "must be a table"),
        ("[approver_groups]\nsre = []", "group 'sre' must be a non-empty list of user names or user@host"),
        ('[approver_groups]\nsre = "alice"', "group 'sre' must be a non-empty list of user names or user@host"),
        ('[approver_groups]\nsre = ["group:dba"]', "group 'sre': 'group:dba': groups do not nest; list the members themselves"),
        ('[approver_groups]\nsre = ["bob smith"]', "group 'sre': 'bob smith' is not a user name or user@host"),
        ('[approver_groups]\n"s r e" = ["alice"]', "group name 's r e' must be letters, digits"),
    ],
)
def test_bad_approver_groups_are_a_config_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError) as bad:
        settings_from(tmp_path, monkeypatch, toml)
    assert f"approver_groups in {tmp_path / 'config.toml'}" in str(bad.value)
    assert message in str(bad.value)


def test_approver_groups_are_not_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("EVAC_APPROVER_GROUPS", "sre=alice")
    with pytest.raises(ConfigError) as refused:
        Settings.load()
    assert str(refused.value).startswith("EVAC_APPROVER_GROUPS is not read: approver groups are set in the config file")


# --- the validators' rules, on a record ---------------------------------------------------


def waiting_run(tmp_path: Path, four_eyes: bool) -> tuple[FailoverInput, FailoverProgress]:
    plan = load_plan(write(tmp_path, approval_plan_text(top="four_eyes: true\n" if four_eyes else ""), "plan.yaml"))
    input = FailoverInput(
        plan=plan,
        plan_digest=plan.digest(),
        service="checkout",
        project="p",
        topology=load_topology(DEMO / "topology.yaml").services["checkout"],
        trigger=Trigger(by="alice@laptop"),
        approver_groups=resolve_groups(plan, GROUPS),
    )
    progress = FailoverProgress.for_input(input, "failover/checkout", "run")
    now = datetime(2026, 11, 28, tzinfo=UTC)
    step = progress.steps[0]
    step.status = StepStatus.RUNNING
    step.approval = ApprovalRecord(
        approvers=["alice", "group:sre", "bob@laptop"], timeout=timedelta(hours=1), waiting_since=now, deadline=now
    )
    return input, progress


def test_without_four_eyes_the_starter_may_approve_and_with_it_only_reject(tmp_path: Path) -> None:
    input, progress = waiting_run(tmp_path, four_eyes=False)
    assert approval_refusal(input, progress, ApprovalDecision(by="alice@laptop"), "approve") is None
    input, progress = waiting_run(tmp_path, four_eyes=True)
    refusal = approval_refusal(input, progress, ApprovalDecision(by="alice@desk"), "approve")
    assert refusal is not None and refusal.startswith("the plan requires four eyes")
    assert approval_refusal(input, progress, ApprovalDecision(by="alice@desk", reason="no"), "reject") is None
    assert approval_refusal(input, progress, ApprovalDecision(by="bob@laptop"), "approve") is None


def test_a_pause_is_refused_once_no_step_is_pending_or_the_run_is_rolling_back(tmp_path: Path) -> None:
    _, progress = waiting_run(tmp_path, four_eyes=False)
    assert pause_refusal(progress, abort_requested=False) is None
    assert pause_refusal(progress, abort_requested=True) == (
        "run failover/checkout is being aborted; only a running run that has a plan step left can be paused"
    )
    rolling_back = progress.model_copy(update={"status": RunStatus.ROLLING_BACK})
    assert pause_refusal(rolling_back, abort_requested=False) == (
        "run failover/checkout is rolling back; only a running run that has a plan step left can be paused"
    )
    for step in progress.steps:
        step.status = StepStatus.SUCCEEDED
    assert pause_refusal(progress, abort_requested=False) == (
        "run failover/checkout has no plan step left to hold before; it can no longer be paused"
    )
    assert resume_refusal(progress) == "run failover/checkout is not paused"
