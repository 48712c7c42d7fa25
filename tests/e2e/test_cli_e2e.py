"""The CLI as an operator meets it at 3 a.m. and as a script meets it in cron: no hangs, no
tracebacks, exit codes that tell the truth. Each test drives `evac` the way it was tried."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from evac.stack import find_binary, free_port
from tests.conftest import DEMO
from tests.e2e.conftest import E2E

NO_TRACE = ("Traceback", "UserWarning", "Warning:")


def clean(result: subprocess.CompletedProcess[str]) -> None:
    for word in NO_TRACE:
        assert word not in result.stdout + result.stderr, result.stdout + result.stderr


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    clean(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def terminate(e2e: E2E, workflow_id: str) -> None:
    subprocess.run(
        [find_binary("temporal"), "workflow", "terminate", "--address", e2e.stack.config.temporal_address,
         "-w", workflow_id, "--reason", "test cleanup"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip


def latest_run_id(e2e: E2E, service: str) -> str | None:
    result = e2e.evac("status", service, "--output", "json")
    return json.loads(result.stdout).get("run_id") if result.returncode in (0, 1) else None


def test_failover_in_cron_waits_for_the_end_and_prints_each_step_and_the_web_ui_link(e2e: E2E):
    result = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "cron drill")

    assert result.returncode == 0, result.stderr
    clean(result)
    for service in ("checkout", "catalog"):
        assert f"{service}: step 1 'scale up us-central1' succeeded" in result.stdout
        assert f"{service}: step 6 'point DNS at us-central1' succeeded" in result.stdout
        assert f"{service}: succeeded" in result.stdout
        assert re.search(rf"Web UI: http://\S+/namespaces/default/workflows/failover%2F{service}/\S+/history", result.stdout)
    # The run records its trigger: who (the configured identity) and why.
    status = e2e.evac_json("status", "checkout")
    assert status["trigger"]["reason"] == "cron drill" and "@" in status["trigger"]["by"]


def test_a_reason_is_required_to_start_a_failover(e2e: E2E):
    result = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"))
    assert result.returncode == 2
    assert "--reason" in result.stderr
    blank = e2e.evac("failover", "--plan", str(DEMO / "failover.yaml"), "--reason", "  ")
    assert blank.returncode == 2 and "nothing was started" in one_sentence(blank)


def test_with_no_worker_nothing_hangs_and_the_words_say_what_happens(e2e: E2E):
    nobody = {"EVAC_TASK_QUEUE": f"nobody-{uuid.uuid4().hex[:8]}", "EVAC_WORKER_WAIT": "2"}
    before = latest_run_id(e2e, "checkout")

    refused = e2e.evac("failover", "--plan", str(DEMO / "bake.yaml"), "--reason", "no worker", env=nobody, timeout=30)
    assert refused.returncode == 4
    assert "no worker polls task queue" in one_sentence(refused) and "nothing was started" in refused.stderr
    assert latest_run_id(e2e, "checkout") == before

    queued = e2e.evac(
        "failover", "--plan", str(DEMO / "bake.yaml"), "--reason", "queued", "--allow-no-worker", env=nobody, timeout=30
    )
    try:
        assert queued.returncode == 4, queued.stderr
        assert "the run exists" in queued.stderr and "evac abort failover/checkout" in queued.stderr
        clean(queued)
        watched = e2e.evac("status", "checkout", "--watch", env=nobody, timeout=30)
        assert watched.returncode == 4 and "no worker has picked up failover/checkout" in watched.stderr

        aborted = e2e.evac("abort", "checkout", "--reason", "nobody home", env=nobody, timeout=30)
        assert aborted.returncode == 0, aborted.stderr
        assert "abort recorded" in aborted.stdout and "when a worker picks the run up" in aborted.stdout
        assert "rolling back" not in aborted.stdout
    finally:
        terminate(e2e, "failover/checkout")

    # Terminated in Temporal: shown as such (not 'running'), the same exit code with or without --watch.
    shown = e2e.evac_json("status", "checkout", expect=1, env=nobody)
    assert shown["status"] == "terminated" and "test cleanup" in shown["error"]
    assert e2e.evac("status", "checkout", "--watch", env=nobody).returncode == 1


def test_ctrl_c_leaves_the_runs_going_and_says_how_to_follow_and_abort_them(e2e: E2E, bake_plan):
    process = subprocess.Popen(
        [find_binary("evac"), "failover", "--plan", str(bake_plan), "--reason", "ctrl-c"],
        env={**e2e.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("started failover/checkout"), first
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "the run(s) continue" in stderr
    assert "evac status failover/checkout --watch" in stderr and "evac abort failover/checkout" in stderr
    assert "Traceback" not in stderr
    # It did go on: abort it and watch it end.
    assert e2e.evac("abort", "checkout", "--reason", "after ctrl-c").returncode == 0
    assert e2e.evac_json("status", "checkout", "--watch", expect=1)["status"] == "cancelled"


def test_identity_is_who_the_history_shows_for_start_and_abort(e2e: E2E, bake_plan):
    alice = {"EVAC_IDENTITY": "alice@oncall-laptop"}
    started = e2e.evac("failover", "--plan", str(bake_plan), "--reason", "identity", "--no-wait", env=alice)
    assert started.returncode == 0, started.stderr
    e2e.wait_for("the run to start", lambda: e2e.step_status("checkout", 0) not in (None, "pending"))
    assert e2e.evac("abort", "checkout", "--reason", "identity check", env={"EVAC_IDENTITY": "bob@desk"}).returncode == 0
    final = e2e.evac_json("status", "checkout", "--watch", expect=1)

    assert final["trigger"]["by"] == "alice@oncall-laptop"
    assert final["abort"]["by"] == "bob@desk"
    history = subprocess.run(
        [find_binary("temporal"), "workflow", "show", "--address", e2e.stack.config.temporal_address,
         "-w", "failover/checkout", "--output", "json"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    events = json.loads(history)["events"]
    assert events[0]["workflowExecutionStartedEventAttributes"]["identity"] == "alice@oncall-laptop"
    # The abort is one cancel request: its caller's identity, and who and why in its reason.
    [cancel] = [
        e["workflowExecutionCancelRequestedEventAttributes"]
        for e in events
        if "workflowExecutionCancelRequestedEventAttributes" in e
    ]
    assert cancel["identity"] == "bob@desk" and '"by":"bob@desk"' in cancel["cause"] and "identity check" in cancel["cause"]
    assert str(os.getpid()) not in history.split('"identity"')[1][:40]


def test_bad_connection_settings_are_one_sentence_and_exit_2_or_4(e2e: E2E):
    bogus = e2e.evac("status", "checkout", "--run-id", "bogus")
    assert bogus.returncode == 2 and "is not a run id" in one_sentence(bogus)
    unknown = e2e.evac("status", "checkout", "--run-id", str(uuid.uuid4()))
    assert unknown.returncode == 3, unknown.stderr
    one_sentence(unknown)

    for address in ("localhost:72333", "http://localhost:7233", "no port"):
        flag = e2e.evac("status", "checkout", "--address", address)
        assert flag.returncode == 2, flag.stderr
        assert address in one_sentence(flag)
        before = e2e.evac("--address", address, "status", "checkout")
        assert before.returncode == 2
        env = e2e.evac("status", "checkout", env={"TEMPORAL_ADDRESS": address})
        assert env.returncode == 2 and "TEMPORAL_ADDRESS" in one_sentence(env)

    nons = e2e.evac("status", "checkout", "--namespace", "nosuchns")
    assert nons.returncode == 4
    assert "namespace 'nosuchns' does not exist" in one_sentence(nons)
    # The connection flags work before and after the command.
    after = e2e.evac("status", "checkout", "--address", e2e.stack.config.temporal_address, "--namespace", "default")
    before = e2e.evac("--address", e2e.stack.config.temporal_address, "--namespace", "default", "status", "checkout")
    assert after.returncode == before.returncode and after.returncode in (0, 1, 3)
    unreachable = e2e.evac("status", "checkout", "--address", f"127.0.0.1:{free_port()}")
    assert unreachable.returncode == 4 and "cannot reach Temporal" in one_sentence(unreachable)


def test_errors_are_json_on_stdout_with_output_json(e2e: E2E, tmp_path):
    cases = [
        (("status", "no-such-service"), 3),
        (("status", "checkout", "--address", "localhost:72333"), 2),
        (("plan", "check", str(tmp_path)), 2),
        (("failover", "--plan", str(DEMO / "failover.yaml")), 2),  # --reason missing
    ]
    for args, code in cases:
        result = e2e.evac(*args, "--output", "json")
        assert result.returncode == code, (args, result.stdout, result.stderr)
        answer = json.loads(result.stdout)
        assert answer["exit_code"] == code and answer["error"], answer
        assert result.stderr == "", result.stderr


def test_plan_check_says_what_is_wrong_with_the_file_itself(e2e: E2E, tmp_path):
    directory = e2e.evac("plan", "check", str(tmp_path))
    assert directory.returncode == 2 and "is a directory" in directory.stderr
    binary = tmp_path / "plan.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    refused = e2e.evac("plan", "check", str(binary))
    assert refused.returncode == 2 and "not UTF-8 text" in refused.stderr
    swapped = e2e.evac("plan", "check", str(DEMO / "failover.yaml"), "--topology", str(DEMO / "bake.yaml"))
    assert swapped.returncode == 2
    assert "expected a topology" in swapped.stderr and "this is a plan" in swapped.stderr
    for result in (directory, refused, swapped):
        clean(result)


def test_version_and_emulator_on_a_port_in_use(e2e: E2E):
    version = e2e.evac("--version")
    assert version.returncode == 0 and re.fullmatch(r"evac \d+\.\d+\.\d+\S*\n", version.stdout)

    taken = e2e.evac(
        "emulator", "serve", "--topology", str(DEMO / "topology.yaml"), "--port", str(e2e.stack.config.emulator_port), timeout=30
    )
    assert taken.returncode == 4
    assert f":{e2e.stack.config.emulator_port}" in one_sentence(taken)
    assert taken.stdout == ""


def test_dev_up_stops_and_says_so_when_a_piece_of_the_stack_dies(tmp_path: Path):
    ports = [str(free_port()) for _ in range(3)]
    process = subprocess.Popen(
        [find_binary("evac"), "dev", "up", "--headless", "--state-dir", str(tmp_path),
         "--temporal-port", ports[0], "--emulator-port", ports[1], "--ui-port", ports[2]],
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        up = process.stdout.readline()
        assert "embedded stack is up" in up, up + (process.stderr.read() if process.poll() is not None and process.stderr else "")
        worker_pid = int(re.search(r"worker (\d+)", up).group(1))  # type: ignore[union-attr]
        os.kill(worker_pid, signal.SIGKILL)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        assert time.monotonic() - started < 30
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    assert process.returncode == 4
    assert "the worker exited" in stderr and "stopped the rest of the stack" in stderr


@pytest.mark.asyncio
async def test_a_plan_starts_all_its_services_or_none_even_when_a_run_appears_after_the_check(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    """A run for catalog appears between the check and the start: checkout, started just
    before, is withdrawn with the reason recorded, and its undo leaves the world as it was."""
    from evac import control
    from evac.config import connect_temporal
    from evac.control import start as start_module
    from evac.errors import ServiceBusy
    from evac.runs import Trigger

    before = e2e.state()
    plan_path = tmp_path / "catalog-drill.yaml"
    plan_path.write_text((DEMO / "bake.yaml").read_text().replace("service: checkout", "service: catalog"))
    (tmp_path / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    held = e2e.evac("failover", "--plan", str(plan_path), "--reason", "holds catalog", "--no-wait")
    assert held.returncode == 0, held.stderr

    async def checked_too_early(client: object, workflow_id: str) -> None:
        return None  # the check saw no run: catalog's appears "after" it

    monkeypatch.setattr(start_module, "running_run_id", checked_too_early)
    client = await connect_temporal(e2e.stack.config.temporal_address, "default", identity="plan-test@e2e")
    plan, topology = control.load_documents(DEMO / "failover.yaml")  # checkout, then catalog
    inputs = control.failover_inputs(plan, topology, Trigger(by="plan-test@e2e", reason="all or none"))
    with pytest.raises(ServiceBusy):
        await control.start_failover(client, inputs, e2e.stack.config.task_queue, require_worker=True)
    monkeypatch.undo()

    checkout = e2e.evac_json("status", "checkout", "--watch", expect=1)
    assert checkout["status"] == "cancelled"
    assert checkout["abort"]["reason"].startswith("withdrawn at start: plan 'demo-failover' could not start every service")
    assert "catalog" in checkout["abort"]["reason"]
    assert e2e.evac("abort", "catalog", "--reason", "done").returncode == 0
    assert e2e.evac_json("status", "catalog", "--watch", expect=1)["status"] == "cancelled"
    assert e2e.state() == before
