"""Issue 24's readiness sequence end to end, through a readiness schedule as an operator runs it:
`evac readiness serve` over a copy of the demo plan, evaluated by a worker of its own whose
notifications go to a webhook receiver in this test, and `evac alerts serve` exporting the
schedule's `evac_plan_ready` gauge on its real `/metrics`.

The demo plan is green (ready, with only the drill policy's warning a fresh world has). Revoking
the worker's dns.changes.create, shrinking us-central1's CPU quota below the scale-up, and renaming
checkout's backend service each turn it not ready at the next evaluation: `evac readiness status`
exits 1 with a finding that names the cause, a `readiness_changed` notification says not ready,
and the gauge reads 0. Restoring each turns it green again: status exit 0, a notification back,
the gauge at 1. Each evaluation is the schedule's own, triggered at once with the Temporal CLI
(`temporal schedule trigger`), as an operator who will not wait an hour does.

The receiver reads readiness at every scrape (``EVAC_READINESS_REFRESH=0``) so the gauge follows
each evaluation at once instead of up to 30 s later. What `evac readiness status` said at each
step is kept in the test's tmp folder (readiness-status.txt) and printed (`-s` shows it).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from evac.alerting.models import GUARDIAN_ID_PREFIX
from evac.config import connect_temporal
from evac.stack import StackConfig, find_binary, free_port
from tests.activities.test_notify import Receiver, start_receiver
from tests.conftest import DEMO, ROOT
from tests.e2e.conftest import E2E, SECRETS
from tests.e2e.test_alerts_e2e import Process, spawn, wait_http

pytestmark = pytest.mark.e2e

QUEUE = "evac-e2e-readiness-sequence"
WEBHOOK_PATH = "/hook/readiness"
DNS_PERMISSION = "/emulator/v1/iam/permissions/dns.changes.create"
QUOTAS = "/emulator/v1/regions/us-central1/quotas"
RENAME = "/emulator/v1/backendServices/{}/rename"
DRILL_POLICY = "the drill policy ("  # the only finding a green plan has: a service not drilled within it


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = start_receiver(found)
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def notifying_worker(e2e_stack: E2E, receiver: Receiver, tmp_path: Path) -> Iterator[None]:
    """A worker on a task queue of its own whose notifications go to ``receiver``."""
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        **e2e_stack.stack.config.worker_env(),
        "EVAC_TASK_QUEUE": QUEUE,
        "EVAC_NOTIFY_WEBHOOK_URL": f"{receiver.base}{WEBHOOK_PATH}",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        e2e_stack.wait_for("the readiness worker to start", lambda: b"worker started" in log.read_bytes())
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    """The folder the schedule evaluates (and the alert receiver loads): the demo plan and topology."""
    folder = tmp_path / "plans"
    folder.mkdir()
    for name in ("failover.yaml", "topology.yaml"):
        (folder / name).write_text((DEMO / name).read_text())
    return folder


async def _terminate_guardians(config: StackConfig, regions: list[str]) -> None:
    client = await connect_temporal(config.temporal_address, "default")
    for region in regions:
        await client.get_workflow_handle(f"{GUARDIAN_ID_PREFIX}{region}").terminate(
            reason="test_readiness_sequence_e2e.py is over"
        )


@pytest.fixture
def metrics_url(e2e_stack: E2E, plans: Path, tmp_path: Path) -> Iterator[str]:
    """`evac alerts serve` for this test, once it answers /healthz; its URL. It reads readiness
    at every scrape (readiness_refresh 0)."""
    token = f"evac-e2e-readiness-{secrets.token_hex(16)}"
    SECRETS.add(token)  # the stack scans every history for it when it stops
    port = free_port()
    command = ["alerts", "serve", "--host", "127.0.0.1", "--port", str(port), "--plans", str(plans)]
    env = {**e2e_stack.env, "EVAC_ALERTS_TOKEN": token, "EVAC_READINESS_REFRESH": "0"}
    process: Process = spawn("alerts-serve", [find_binary("evac"), *command], tmp_path, env=env)
    url = f"http://127.0.0.1:{port}"
    configured: list[str] = []
    try:
        wait_http(process, f"{url}/healthz")
        yield url
        configured = httpx.get(f"{url}/healthz", timeout=5).json()["configured"]
    finally:
        process.stop()
        # The guardians it configured (plans folder: the demo plan out of europe-west1) end with it.
        asyncio.run(_terminate_guardians(e2e_stack.stack.config, configured))


class Sequence:
    """The schedule ``evac-readiness/<name>`` and what the operator reads of it."""

    def __init__(self, e2e: E2E, receiver: Receiver, metrics_url: str, plans: Path, log: Path) -> None:
        self.e2e, self.receiver, self.metrics_url, self.log = e2e, receiver, metrics_url, log
        self.name = f"seq-{uuid.uuid4().hex[:8]}"
        self.sid = f"evac-readiness/{self.name}"
        self.plan = str(plans / "failover.yaml")
        self.env = {"EVAC_TASK_QUEUE": QUEUE}  # the schedule's evaluations run on the notifying worker
        self.evaluated_at: str | None = None
        self.notified = 0

    def serve(self, folder: Path) -> dict[str, Any]:
        args = ("--plans", str(folder), "--every", "1h", "--name", self.name)
        served: dict[str, Any] = self.e2e.evac_json("readiness", "serve", *args, env=self.env)
        return served

    def trigger(self) -> None:
        """Evaluate now: the schedule's action, started by Temporal's own CLI. Even when the
        schedule's own hourly evaluation happens to be running (AllowAll): this one starts after
        the change the test just made."""
        config = self.e2e.stack.config
        result = subprocess.run(
            [find_binary("temporal"), "schedule", "trigger", "--schedule-id", self.sid, "--overlap-policy", "AllowAll",
             "--address", config.temporal_address, "--namespace", "default"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout

    def evaluated(self, heading: str, state: str | None = None) -> tuple[dict[str, Any], str, int]:
        """Once an evaluation newer than the last one seen has ended (that found the plan in
        ``state``, if given): `evac readiness status` (JSON, its text, its exit code); the text is
        kept under ``heading``. The state is waited for, not asserted of the first newer evaluation,
        only because the schedule's hourly evaluation may fall into the test, started before its change."""
        found: dict[str, Any] = {}

        def newer() -> bool:
            result = self.e2e.evac("readiness", "status", "--name", self.name, "--output", "json", env=self.env)
            assert result.returncode in (0, 1), result.stderr + result.stdout
            found.clear()
            found.update(json.loads(result.stdout))
            at = found["evaluated_at"]
            if at is None or (self.evaluated_at is not None and moment(at) <= moment(self.evaluated_at)):
                return False
            return state is None or [p["state"] for p in found["plans"]] == [state]

        wanted = f" finding the plan {state}" if state else ""
        self.e2e.wait_for(f"an evaluation of {self.sid} newer than {self.evaluated_at}{wanted}", newer, timeout=120)
        self.evaluated_at = found["evaluated_at"]
        text = self.e2e.evac("readiness", "status", "--name", self.name, env=self.env)
        assert text.returncode in (0, 1), text.stderr + text.stdout
        with open(self.log, "a") as out:
            out.write(f"## {heading}\n\n$ evac readiness status --name {self.name}   # exit {text.returncode}\n")
            out.write(text.stdout.rstrip() + "\n\n")
        return found, text.stdout, text.returncode

    def gauge(self) -> float | None:
        """``evac_plan_ready{schedule=<name>, plan=<file>}`` on the alert receiver's /metrics."""
        text = httpx.get(f"{self.metrics_url}/metrics", timeout=10).raise_for_status().text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "evac_plan_ready" and sample.labels == {"schedule": self.name, "plan": self.plan}:
                    return sample.value
        return None

    def gauge_reads(self, value: float) -> None:
        self.e2e.wait_for(f"evac_plan_ready of {self.name} to read {value:g}", lambda: self.gauge() == value, timeout=90)

    def notifications(self) -> list[dict[str, Any]]:
        """The readiness_changed notifications of this schedule since the last call."""
        bodies = [
            b for b in self.receiver.bodies(WEBHOOK_PATH)
            if b.get("event") == "readiness_changed" and b.get("trigger", {}).get("by") == self.sid
        ]  # fmt: skip
        new, self.notified = bodies[self.notified :], len(bodies)
        return new

    def notified_once(self) -> dict[str, Any]:
        """The one change notification since the last look (sent before its evaluation ended).
        Were the hourly evaluation to overlap the triggered one, each could tell of the change."""
        new = self.notifications()
        assert new and all(n["status"] == new[0]["status"] for n in new), new
        return new[-1]


def moment(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def words(text: str) -> str:
    return " ".join(text.split())


def test_each_break_turns_the_scheduled_plan_not_ready_and_each_restore_green_again(
    e2e: E2E, receiver: Receiver, notifying_worker: None, metrics_url: str, plans: Path, tmp_path: Path
) -> None:
    log = tmp_path / "readiness-status.txt"
    seq = Sequence(e2e, receiver, metrics_url, plans, log)
    try:
        served = seq.serve(plans)
        assert (served["schedule_id"], served["plans_count"], served["every"]) == (seq.sid, 1, "PT1H")

        # Green: ready, its only findings the drill policy's warnings (a fresh world: never drilled;
        # other test files may have drilled a service by now). The first evaluation tells of a
        # state other than plain ready, so what it sent is not looked at.
        status, text, code = seq.evaluated("the demo plan, as seeded")
        [plan] = status["plans"]
        green = plan["state"]
        findings = [f for s in plan["services"] for f in s["findings"]]
        assert code == 0 and green in ("ready", "warnings"), text
        assert all(f["severity"] == "warning" and DRILL_POLICY in f["text"] for f in findings), text
        seq.gauge_reads(1)
        seq.notifications()

        cpus = e2e.admin.get(QUOTAS).raise_for_status().json()["limits"]["CPUS"]
        steps: list[tuple[str, str, Callable[[], object], Callable[[], object]]] = [
            (
                "dns.changes.create revoked from the worker",
                "the worker's credentials lack dns.changes.create (for shift_dns)",
                lambda: e2e.admin.delete(DNS_PERMISSION).raise_for_status(),
                lambda: e2e.admin.put(DNS_PERMISSION).raise_for_status(),
            ),
            (
                "us-central1's CPUS quota shrunk to 4",
                "instance group us-central1/checkout-uc1: the scale-up to 3 needs 2 more instances; CPUS",
                lambda: e2e.admin.put(QUOTAS, json={"CPUS": 4}).raise_for_status(),
                lambda: e2e.admin.put(QUOTAS, json={"CPUS": cpus}).raise_for_status(),
            ),
            (
                "backend service checkout-backend renamed checkout-lb",
                "checkout-backend",
                lambda: e2e.admin.post(RENAME.format("checkout-backend"), json={"to": "checkout-lb"}).raise_for_status(),
                lambda: e2e.admin.post(RENAME.format("checkout-lb"), json={"to": "checkout-backend"}).raise_for_status(),
            ),
        ]
        for what, cause, breaks, restores in steps:
            before = seq.evaluated_at
            breaks()
            seq.trigger()
            status, text, code = seq.evaluated(what, "not_ready")
            [plan] = status["plans"]
            assert code == 1, text
            assert moment(plan["since"]) > moment(before), plan  # not ready since this evaluation
            assert "plan 'demo-failover': NOT READY since" in text and cause in words(text), text
            notice = seq.notified_once()
            assert (notice["event"], notice["status"], notice["plan"], notice["service"]) == (
                "readiness_changed", "not_ready", "demo-failover", "checkout, catalog"
            ), notice  # fmt: skip
            assert (notice["kind"], notice["source"], notice["target"]) == ("failover", "europe-west1", "us-central1")
            assert notice["trigger"] == {"kind": "schedule", "by": seq.sid}
            assert notice["workflow_id"].startswith(f"readiness/{seq.name}"), notice
            assert f"{seq.plan}: was " in notice["detail"] and "now NOT READY" in notice["detail"], notice
            assert cause in notice["detail"], notice["detail"]
            seq.gauge_reads(0)

            restores()
            seq.trigger()
            status, text, code = seq.evaluated(f"{what}: restored", green)
            assert code == 0, text
            notice = seq.notified_once()
            assert (notice["event"], notice["status"], notice["plan"]) == ("readiness_changed", green, "demo-failover")
            assert f"{seq.plan}: was NOT READY, now ready" in notice["detail"], notice["detail"]
            seq.gauge_reads(1)
    finally:
        if log.exists():
            print(f"\n# evac readiness status through issue 24's sequence ({log})\n\n{log.read_text()}")
        deleted = e2e.evac("readiness", "delete", "--name", seq.name, env=seq.env)
    assert deleted.returncode == 0, deleted.stderr + deleted.stdout
    gone = e2e.evac("readiness", "status", "--name", seq.name)
    assert gone.returncode == 3, gone.stderr + gone.stdout
