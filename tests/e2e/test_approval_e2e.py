"""An approval step as operators meet it: the run waits, a refused approve exits 3 with the
validator's sentence and changes nothing, and an approve from another process (another identity)
lets the run go on to succeed. Pause and resume from the CLI, and `evac watch`, too."""

from __future__ import annotations

import json
import subprocess

from evac.stack import find_binary
from tests.conftest import DEMO
from tests.e2e.conftest import E2E

PLAN = DEMO / "failover-approval.yaml"
STARTER = {"EVAC_IDENTITY": "alice@ops-laptop"}
APPROVAL = 2  # the plan's approval step


def test_an_approval_from_a_second_shell_lets_the_run_succeed_and_refusals_exit_3(e2e: E2E):
    before = e2e.state()
    started = e2e.evac("failover", "--plan", str(PLAN), "--no-wait", "--reason", "e2e approval", env=STARTER)
    assert started.returncode == 0, started.stderr + started.stdout
    # `evac watch` follows from a process of its own, one line per change (no terminal).
    watcher = subprocess.Popen(
        [find_binary("evac"), "watch", "checkout"],
        env=e2e.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        e2e.wait_for("the approval step to wait", lambda: e2e.step_status("checkout", APPROVAL) == "running", timeout=90)
        waiting = e2e.evac_json("status", "checkout")
        assert waiting["steps"][APPROVAL]["approval"]["approvers"] == ["alice", "bob"]
        assert [s["status"] for s in waiting["steps"][APPROVAL + 1 :]] == ["pending", "pending"]

        # Refused: somebody not among the approvers, and the starter under four eyes.
        refused = e2e.evac("approve", "checkout", env={"EVAC_IDENTITY": "mallory@elsewhere"})
        assert refused.returncode == 3, refused.stderr + refused.stdout
        assert "'mallory@elsewhere' is not among the approvers of step 'go-ahead to move traffic' (alice, bob)" in refused.stderr
        # alice is an approver, but she started the run: under four eyes, from any host, she may not approve.
        own = e2e.evac_json("approve", "checkout", expect=3, env={"EVAC_IDENTITY": "alice@laptop"})
        assert own["error"] == (
            "the plan requires four eyes: run failover/checkout was started by 'alice@ops-laptop', so 'alice@laptop' "
            "may not approve step 'go-ahead to move traffic'; another approver must"
        )
        untouched = e2e.evac_json("status", "checkout")
        assert untouched["steps"][APPROVAL]["status"] == "running"
        assert "decision" not in untouched["steps"][APPROVAL]["approval"] or (
            untouched["steps"][APPROVAL]["approval"]["decision"] is None
        )

        # Paused while waiting, then resumed: both recorded.
        paused = e2e.evac_json("pause", "checkout", "--reason", "checking dashboards", env={"EVAC_IDENTITY": "carol@desk"})
        assert (paused["by"], paused["reason"]) == ("carol@desk", "checking dashboards")
        again = e2e.evac("pause", "failover/checkout", "--reason", "twice")
        assert again.returncode == 3 and "is already paused by carol@desk (checking dashboards)" in again.stderr

        # Approved while paused: the approval does not lift the pause, and the answer says so.
        approved = e2e.evac(
            "approve", "checkout", "--step", "go-ahead to move traffic", "--reason", "dashboards green",
            env={"EVAC_IDENTITY": "bob@desk"},
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == (
            "approved by bob@desk: failover/checkout stays paused (by carol@desk: checking dashboards) "
            "until 'evac resume failover/checkout'"
        )
        assert e2e.evac("resume", "checkout", env={"EVAC_IDENTITY": "carol@desk"}).returncode == 0
        final = e2e.evac_json("status", "checkout", "--watch")
        watched, watch_errors = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()

    assert final["status"] == "succeeded"
    approval = final["steps"][APPROVAL]["approval"]
    assert (approval["decision"], approval["by"], approval["reason"]) == ("approved", "bob@desk", "dashboards green")
    [pause] = final["pauses"]
    assert (pause["by"], pause["resumed_by"]) == ("carol@desk", "carol@desk")
    assert e2e.state() != before  # the failover happened
    # The watcher saw the wait for approval and the end, each once, and exited like `status --watch`.
    assert watcher.returncode == 0, watch_errors
    assert "waiting for approval of step 'go-ahead to move traffic' by alice, bob" in watched
    assert watched.count("checkout: ended succeeded") == 1
    shown = e2e.evac("status", "checkout")
    assert "approval 'go-ahead to move traffic': approved by bob@desk" in shown.stdout
    assert "paused by carol@desk" in shown.stdout


def test_an_ended_run_refuses_approve_and_a_rejection_rolls_back(e2e: E2E):
    before = e2e.state()
    started = e2e.evac("failover", "--plan", str(PLAN), "--no-wait", "--reason", "e2e rejection", env=STARTER)
    assert started.returncode == 0, started.stderr + started.stdout
    e2e.wait_for("the approval step to wait", lambda: e2e.step_status("checkout", APPROVAL) == "running", timeout=90)
    no_reason = e2e.evac("reject", "checkout", "--reason", " ", env={"EVAC_IDENTITY": "bob"})
    assert no_reason.returncode == 2 and "--reason must say why" in no_reason.stderr
    rejected = e2e.evac("reject", "checkout", "--reason", "peak traffic", env={"EVAC_IDENTITY": "bob"})
    assert rejected.returncode == 0, rejected.stderr + rejected.stdout
    final = e2e.evac_json("status", "checkout", "--watch", expect=1)

    assert final["status"] == "rolled_back"
    assert final["error"] == "step 'go-ahead to move traffic' rejected by bob: peak traffic"
    assert e2e.state() == before
    late = e2e.evac("approve", "checkout", "--output", "json", env={"EVAC_IDENTITY": "alice"})
    assert late.returncode == 3
    assert json.loads(late.stdout)["error"] == "run 'failover/checkout' has already ended; there is nothing to approve"
