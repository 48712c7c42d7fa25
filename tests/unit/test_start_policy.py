"""The start policy (evac/control/policy.py) as a caller of ``evac.control`` meets it, no CLI in
between: a start inside a blackout window is refused, a malformed reason too, and nothing is
asked of Temporal; an override records the window in the input that starts. The client is a
stand-in that records every call (so "nothing was started" is checked, not assumed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from evac import control
from evac.blackouts import BlackoutInEffect, BlackoutWindow
from evac.cli.base import EXIT_BAD_INPUT, EXIT_CODES, EXIT_REFUSED
from evac.config import Settings
from evac.errors import BadInput
from evac.evacuation import EvacuationInput, EvacuationProgress
from evac.plan import Plan
from evac.runs import FailoverInput, Trigger
from evac.topology import Topology, load_topology
from tests.conftest import DEMO

ALWAYS = BlackoutWindow.model_validate({"name": "always", "timezone": "UTC", "start": "2000-01-01", "end": "2100-01-01"})
LONG_AGO = BlackoutWindow.model_validate({"name": "long ago", "timezone": "UTC", "start": "2001-01-01", "end": "2001-01-02"})
FREEZE = control.Blackouts([ALWAYS], "blackouts file /etc/evac/blackouts.yaml")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class NotFound:
    """A run that does not exist (so no service is busy)."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def describe(self) -> Any:
        self.calls.append("describe")
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


class RecordingClient:
    """A stand-in for temporalio's Client: every call is recorded; a start always succeeds."""

    namespace = "default"
    identity = "test@host"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started: list[Any] = []

    def get_workflow_handle_for(self, *args: Any, **kwargs: Any) -> NotFound:
        self.calls.append("get_workflow_handle_for")
        return NotFound(self.calls)

    async def start_workflow(self, workflow: Any, arg: Any = None, *, args: Any = (), **options: Any) -> Any:
        self.calls.append(f"start_workflow {options['id']}")
        self.started.append(arg if arg is not None else args[0])
        return SimpleNamespace(result_run_id=f"run-{len(self.started)}")


def code_of(exc: Exception) -> int:
    return next(code for kind, code in EXIT_CODES.items() if isinstance(exc, kind))


@pytest.fixture(scope="module")
def demo() -> tuple[Plan, Plan, Topology]:
    failover, topology = control.load_documents(DEMO / "failover.yaml")
    drill, _ = control.load_documents(DEMO / "drill.yaml")
    return failover, drill, topology


def failovers(demo: tuple[Plan, Plan, Topology], reason: str = "incident 42", **more: Any) -> list[FailoverInput]:
    plan, _, topology = demo
    return control.failover_inputs(plan, topology, Trigger(by="ops@host", reason=reason), **more)


# --- the reason ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("  ", "--reason must say why (it is recorded in the run's history); nothing was started"),
        ("x" * 1001, "--reason is 1001 characters long; at most 1000; nothing was started"),
        ("fine\n✔ approved by ceo", "--reason must be printable text on one line (no control characters); nothing was started"),
        ("fine\x1b[31m", "--reason must be printable text on one line (no control characters); nothing was started"),
    ],
)
def test_a_malformed_reason_is_bad_input_in_one_sentence(value: str, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        control.recorded_reason(value)
    assert str(refused.value) == message and code_of(refused.value) == EXIT_BAD_INPUT


def test_a_reason_is_recorded_stripped_and_an_optional_one_may_be_empty() -> None:
    assert control.recorded_reason("  region down \t") == "region down"
    assert control.recorded_reason(None, option="--reason", required=False) == ""
    assert control.recorded_reason("x" * 1000) == "x" * 1000
    with pytest.raises(BadInput, match="^--note is 1001 characters long; at most 1000; nothing was changed$"):
        control.recorded_reason("x" * 1001, option="--note", required=False, not_done="nothing was changed")


# --- the blackout decision ----------------------------------------------------------------


def test_outside_every_window_nothing_is_refused_or_recorded() -> None:
    past = control.Blackouts([LONG_AGO])
    assert control.blackout_override(past, [LONG_AGO], override=False, reason_given=False, now=NOW) is None
    assert control.blackout_override(control.NO_BLACKOUTS, override=True, reason_given=True, now=NOW) is None


def test_inside_a_window_a_start_is_refused_unless_overridden_with_a_reason() -> None:
    with pytest.raises(BlackoutInEffect) as refused:
        control.blackout_override(FREEZE, override=False, reason_given=True, now=NOW)
    assert code_of(refused.value) == EXIT_REFUSED
    assert str(refused.value) == (
        "blackout window 'always' (2000-01-01 to 2100-01-01 UTC, blackouts file /etc/evac/blackouts.yaml) is in effect "
        "until 2100-01-02 00:00 UTC; nothing was started (to start anyway: --override-blackout --reason TEXT, which is recorded)"
    )
    with pytest.raises(BadInput) as no_reason:
        control.blackout_override(FREEZE, override=True, reason_given=False, now=NOW)
    assert code_of(no_reason.value) == EXIT_BAD_INPUT
    assert str(no_reason.value).endswith(
        "is in effect until 2100-01-02 00:00 UTC: --override-blackout needs --reason saying why (it is recorded); "
        "nothing was started"
    )
    overridden = control.blackout_override(FREEZE, override=True, reason_given=True, now=NOW)
    assert overridden is not None
    assert overridden.startswith("blackout window 'always' (2000-01-01 to 2100-01-01 UTC, blackouts file")


def test_the_plan_s_own_windows_count_and_are_named_as_the_plan_s() -> None:
    with pytest.raises(BlackoutInEffect, match=r"blackout window 'always' \(2000-01-01 to 2100-01-01 UTC, the plan\)"):
        control.blackout_override(control.NO_BLACKOUTS, [ALWAYS], override=False, reason_given=True, now=NOW)


def test_the_blackouts_file_is_read_naming_it_and_a_missing_one_is_no_windows(tmp_path: Path) -> None:
    assert control.Blackouts.load(tmp_path / "none.yaml").windows == ()
    path = tmp_path / "blackouts.yaml"
    path.write_text("windows:\n  - {name: always, timezone: UTC, start: 2000-01-01, end: 2100-01-01}\n")
    loaded = control.Blackouts.load(path)
    assert loaded.windows == (ALWAYS,) and loaded.where == f"blackouts file {path}"


# --- start_failover, called directly -----------------------------------------------------


async def test_a_direct_start_inside_a_blackout_is_refused_and_asks_nothing_of_temporal(
    demo: tuple[Plan, Plan, Topology],
) -> None:
    client = RecordingClient()
    with pytest.raises(BlackoutInEffect, match="blackout window 'always'"):
        await control.start_failover(client, failovers(demo), "evac", require_worker=True, blackouts=FREEZE)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="--override-blackout needs --reason"):
        await control.start_failover(client, failovers(demo, reason=""), "evac", blackouts=FREEZE, override_blackout=True)  # type: ignore[arg-type]
    assert client.calls == []


async def test_a_direct_start_inside_the_plan_s_own_window_is_refused_without_being_told_of_any_window(
    demo: tuple[Plan, Plan, Topology],
) -> None:
    plan, _, topology = demo
    frozen = plan.model_copy(update={"blackouts": [ALWAYS]})
    client = RecordingClient()
    with pytest.raises(BlackoutInEffect, match=r"\(2000-01-01 to 2100-01-01 UTC, the plan\)"):
        await control.start_failover(client, control.failover_inputs(frozen, topology, Trigger(by="a@b", reason="r")), "evac")  # type: ignore[arg-type]
    assert client.calls == []


@pytest.mark.parametrize("reason", ["x" * 1001, "ok\n✔ approved by ceo", "ok\x1b[2J"])
async def test_a_direct_start_with_a_malformed_reason_is_refused_and_starts_nothing(
    demo: tuple[Plan, Plan, Topology], reason: str
) -> None:
    client = RecordingClient()
    with pytest.raises(BadInput, match="^the trigger's reason (is 1001 characters long|must be printable)"):
        await control.start_failover(client, failovers(demo, reason=reason), "evac")  # type: ignore[arg-type]
    assert client.calls == []


async def test_an_overridden_blackout_is_recorded_in_every_input_that_starts(demo: tuple[Plan, Plan, Topology]) -> None:
    client = RecordingClient()
    started = await control.start_failover(
        client,  # type: ignore[arg-type]
        failovers(demo, reason="  hotfix for incident 42 "),
        "evac",
        blackouts=FREEZE,
        override_blackout=True,
    )
    assert [s.workflow_id for s in started] == ["failover/checkout", "failover/catalog"]
    window = "blackout window 'always' (2000-01-01 to 2100-01-01 UTC, blackouts file /etc/evac/blackouts.yaml)"
    for input in client.started:
        assert input.trigger.blackout_override.startswith(window)
        assert input.trigger.reason == "hotfix for incident 42"
    assert all(s.blackout_override == client.started[0].trigger.blackout_override for s in started)


async def test_a_recorded_override_is_the_start_s_own_decision_not_the_caller_s(demo: tuple[Plan, Plan, Topology]) -> None:
    """A caller cannot write an override into the trigger: outside a window none is recorded."""
    plan, _, topology = demo
    claimed = Trigger(by="ops@host", reason="r", blackout_override="a window that is not in effect")
    client = RecordingClient()
    await control.start_failover(client, control.failover_inputs(plan, topology, claimed), "evac")  # type: ignore[arg-type]
    assert [input.trigger.blackout_override for input in client.started] == [None, None]


async def test_a_dry_run_is_never_refused_by_a_blackout(demo: tuple[Plan, Plan, Topology]) -> None:
    client = RecordingClient()
    started = await control.start_failover(client, failovers(demo, dry_run=True), "evac", blackouts=FREEZE)  # type: ignore[arg-type]
    assert len(started) == 2 and all(input.trigger.blackout_override is None for input in client.started)


async def test_a_drill_without_a_reason_records_dr_drill_which_is_no_reason_for_an_override(
    demo: tuple[Plan, Plan, Topology],
) -> None:
    _, plan, topology = demo
    inputs = control.drill_inputs(plan, topology, Trigger(by="ops@host"))
    client = RecordingClient()
    with pytest.raises(BadInput, match="--override-blackout needs --reason"):
        await control.start_failover(client, inputs, "evac", blackouts=FREEZE, override_blackout=True)  # type: ignore[arg-type]
    assert client.calls == []
    await control.start_failover(client, inputs, "evac")  # type: ignore[arg-type]
    assert [input.trigger.reason for input in client.started] == [control.DRILL_REASON] * len(inputs)


# --- start_evacuation and start_failback, called directly ---------------------------------


def evacuation(reason: str = "region down", dry_run: bool = False) -> EvacuationInput:
    topology = load_topology(DEMO / "evacuation" / "topology.yaml")
    trigger = Trigger(by="ops@host", reason=reason)
    return control.evacuation_input(topology, Settings(), "europe-west1", trigger, target="us-central1", dry_run=dry_run)


async def test_a_direct_evacuation_inside_a_blackout_is_refused_unless_overridden_and_then_records_it() -> None:
    client = RecordingClient()
    with pytest.raises(BlackoutInEffect):
        await control.start_evacuation(client, evacuation(), "evac", blackouts=FREEZE)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="^the trigger's reason must be printable"):
        await control.start_evacuation(client, evacuation("ok\r\nforged line"), "evac")  # type: ignore[arg-type]
    assert client.calls == []

    started = await control.start_evacuation(
        client,  # type: ignore[arg-type]
        evacuation(),
        "evac",
        require_worker=False,
        blackouts=FREEZE,
        override_blackout=True,
    )
    [input] = client.started
    assert started.workflow_id == "evacuation/europe-west1"
    assert input.trigger.blackout_override.startswith("blackout window 'always'")
    assert started.blackout_override == input.trigger.blackout_override
    dry = await control.start_evacuation(client, evacuation(dry_run=True), "evac", require_worker=False, blackouts=FREEZE)  # type: ignore[arg-type]
    assert dry.blackout_override is None


async def test_a_direct_failback_with_a_malformed_reason_is_refused_and_starts_nothing() -> None:
    input = evacuation("x" * 1001).model_copy(update={"failback_of": "evacuation/europe-west1 run r"})
    record = EvacuationProgress.for_input(input, "failback/evacuation/europe-west1")
    client = RecordingClient()
    with pytest.raises(BadInput, match="^the trigger's reason is 1001 characters long"):
        await control.start_failback(client, input, record, "evac")  # type: ignore[arg-type]
    assert client.calls == []


# --- the CLI: the same decisions, refused before it connects --------------------------------


@pytest.fixture
def evac(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    from typer.testing import CliRunner

    from evac.cli import app

    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("EVAC_GCP_PROJECT", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # nothing listens: a command that connected exits 4
    blackouts = tmp_path / "blackouts.yaml"
    blackouts.write_text("windows:\n  - {name: always, timezone: UTC, start: 2000-01-01, end: 2100-01-01}\n")
    monkeypatch.setenv("EVAC_BLACKOUTS", str(blackouts))
    return lambda *args: CliRunner().invoke(app, list(args))


def test_the_cli_refuses_what_the_start_would_refuse_before_connecting(evac: Any) -> None:
    failover = ["failover", "--plan", str(DEMO / "failover.yaml")]
    drill = ["drill", "--plan", str(DEMO / "drill.yaml")]
    refused = evac(*failover, "--reason", "test")
    assert refused.exit_code == 3 and "blackout window 'always'" in refused.stderr and "nothing was started" in refused.stderr
    no_reason = evac(*drill, "--override-blackout")  # 'DR drill' is no reason for an override
    assert no_reason.exit_code == 2 and "--override-blackout needs --reason" in no_reason.stderr
    assert evac(*failover, "--reason", "x" * 1001).exit_code == 2
    for overridden in (evac(*failover, "--reason", "hotfix", "--override-blackout"), evac(*drill, "--dry-run")):
        assert overridden.exit_code == 4 and "cannot reach Temporal" in overridden.stderr


def test_operator_controls_check_their_reason_as_a_start_does(evac: Any) -> None:
    paused = evac("pause", "checkout", "--reason", "  ")
    assert paused.exit_code == 2
    assert "--reason must say why (it is recorded in the run's history); nothing was changed" in paused.stderr
    resumed = evac("resume", "checkout", "--reason", "ok\x1b[31m")
    assert resumed.exit_code == 2 and "--reason must be printable text on one line" in resumed.stderr
