"""Notifications end to end: a worker of its own, configured with a JSON webhook and a Slack
webhook whose URLs carry a secret token, both pointing at a receiver in this test; a real
failover through the CLI. The receiver gets started … ended with the right fields and the Web
UI link; while it answers 500 the run still succeeds and `evac status` shows the failures; and
the secret appears in no history, no worker log line and no CLI output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evac.config import connect_temporal
from evac.render import history_url
from tests.activities.test_notify import Receiver, start_receiver
from tests.conftest import DEMO
from tests.e2e.conftest import E2E, SECRETS, history_text

ROOT = Path(__file__).parents[2]
SECRET = "T0P-SECRET-e2e-5b2f0a9c"
QUEUE = "evac-e2e-notify"
WEBHOOK_PATH = f"/hook/{SECRET}-json"
SLACK_PATH = f"/services/{SECRET}-slack"
SECRETS.add(SECRET)  # the stack scans every history for it when it stops


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = start_receiver(found)
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def notifying_worker(e2e_stack: E2E, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A worker on a task queue of its own with both notification targets; its log file."""
    log = tmp_path_factory.mktemp("notify-worker") / "worker.log"
    env = {
        **os.environ,
        **e2e_stack.stack.config.worker_env(),
        "EVAC_TASK_QUEUE": QUEUE,
        "EVAC_NOTIFY_WEBHOOK_URL": f"{receiver.base}{WEBHOOK_PATH}",
        "EVAC_SLACK_WEBHOOK_URL": f"{receiver.base}{SLACK_PATH}",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        e2e_stack.wait_for("the notifying worker to start", lambda: b"worker started" in log.read_bytes())
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def failover(e2e: E2E, reason: str) -> tuple[list[dict[str, Any]], str]:
    """Fail the demo services over through the CLI on the notifying worker's queue."""
    result = e2e.evac(
        "failover",
        "--plan",
        str(DEMO / "failover.yaml"),
        "--wait",
        "--reason",
        reason,
        "--output",
        "json",
        env={"EVAC_TASK_QUEUE": QUEUE},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout), result.stdout + result.stderr


def checkout_bodies(receiver: Receiver, path: str) -> list[Any]:
    return [b for b in receiver.bodies(path) if b.get("service") == "checkout" or "checkout" in b.get("text", "")]


async def history_json(e2e: E2E, workflow_id: str, run_id: str) -> str:
    client = await connect_temporal(e2e.stack.config.temporal_address, "default")
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return history_text(history.to_json())  # payloads decoded


def test_a_failover_notifies_both_targets_and_no_secret_leaks(e2e: E2E, receiver: Receiver, notifying_worker: Path):
    receiver.received.clear()
    receiver.status = 200
    results, cli_output = failover(e2e, "notifications e2e")
    [checkout] = [r for r in results if r["service"] == "checkout"]
    assert checkout["status"] == "succeeded"

    link = history_url(e2e.stack.config.ui_url, "default", checkout["workflow_id"], checkout["run_id"])
    bodies = [b for b in receiver.bodies(WEBHOOK_PATH) if b["service"] == "checkout"]
    assert [b["event"] for b in bodies] == ["started", "ended"]
    started, ended = bodies
    assert started["version"] == 1 and started["kind"] == "failover" and started["plan"] == "demo-failover"
    assert (started["status"], started["detail"], started["trigger"]["kind"]) == ("running", "notifications e2e", "manual")
    assert (ended["status"], ended["outcome"]) == ("succeeded", "succeeded")
    assert (ended["workflow_id"], ended["run_id"], ended["web_ui"]) == (checkout["workflow_id"], checkout["run_id"], link)

    slack = [m for m in receiver.bodies(SLACK_PATH) if "of checkout" in m["text"]]
    assert len(slack) == 2
    fields = " ".join(f["text"] for m in slack for b in m["blocks"] for f in b.get("fields", []))
    assert "*Service*\ncheckout" in fields and "*Kind*\nfailover" in fields and "*Outcome*\nsucceeded" in fields
    assert all(f"<{link}|" in json.dumps(m["blocks"]) for m in slack)

    delivered = [(n["event"], [(d["target"], d["delivered"]) for d in n["deliveries"]]) for n in checkout["notifications"]]
    assert delivered == [
        ("started", [("webhook", True), ("slack", True)]),
        ("ended", [("webhook", True), ("slack", True)]),
    ]
    assert_no_secret(e2e, results, cli_output, notifying_worker)


def test_a_receiver_answering_500_is_recorded_and_the_run_still_succeeds(e2e: E2E, receiver: Receiver, notifying_worker: Path):
    receiver.received.clear()
    receiver.status = 500
    began = time.monotonic()
    results, cli_output = failover(e2e, "receiver down")
    assert time.monotonic() - began < 120
    assert {r["service"]: r["status"] for r in results} == {"checkout": "succeeded", "catalog": "succeeded"}

    status = e2e.evac("status", "failover/checkout", "--output", "json", env={"EVAC_TASK_QUEUE": QUEUE})
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert [n["event"] for n in record["notifications"]] == ["started", "ended"]
    for notification in record["notifications"]:
        assert {(d["target"], d["delivered"], d["attempts"], d["error"]) for d in notification["deliveries"]} == {
            ("webhook", False, 3, "HTTP 500"),
            ("slack", False, 3, "HTTP 500"),
        }
    # Each was tried three times at each target.
    assert len([b for b in receiver.bodies(WEBHOOK_PATH) if b["service"] == "checkout"]) == 6
    assert_no_secret(e2e, results, cli_output + status.stdout + status.stderr, notifying_worker)
    receiver.status = 200


def assert_no_secret(e2e: E2E, results: list[dict[str, Any]], cli_output: str, worker_log: Path) -> None:
    for run in results:
        history = asyncio.run(history_json(e2e, run["workflow_id"], run["run_id"]))
        assert "send_notification" in history  # the notifications are in it, and …
        assert SECRET not in history, f"the webhook token is in the history of {run['workflow_id']}"
        for format in ("json", "html"):  # nor in what an auditor exports
            exported = e2e.evac("audit", "export", run["workflow_id"], "--run-id", run["run_id"], "--format", format)
            assert exported.returncode == 0 and "send_notification" in exported.stdout, exported.stderr
            assert SECRET not in exported.stdout, f"the webhook token is in the {format} export of {run['workflow_id']}"
    log = worker_log.read_text()
    assert "notification delivered" in log or "notification not delivered" in log
    assert SECRET not in log, "the webhook token is in the worker's log"
    assert SECRET not in cli_output, "the webhook token is in the CLI's output"
