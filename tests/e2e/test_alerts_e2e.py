"""Automatic failover on regional alerts, end to end, with the real senders: the emulator's
/metrics → Debian's ``prometheus`` (plans/demo/alerting/rules.yml) → Debian's
``prometheus-alertmanager`` (plans/demo/alerting/alertmanager.yml, bearer token from a file) →
``evac alerts serve`` → the region's guardian → failovers, with no human action.

The module runs the committed alerting configs with only their ports changed, and the receiver
with ``--plans plans/demo/auto`` (a copy) and a short ``[alerts_policy]``: evidence held 3s,
and no cooldown, because the shared stack's other test files fail checkout and catalog over
too (a cooldown would suppress this module's episodes); "never twice per evidence episode"
is what keeps each episode to one failover per service here. Each test starts from a calm
europe-west1: no outage, the emulator at its seeded world, no firing alert in the guardian, no
run of the demo services going on. Runs are told apart from other files' by their start time.
Under CI (CI=true) a missing prometheus or alertmanager fails the tests; elsewhere they skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from evac.alerting.models import GUARDIAN_ID_PREFIX
from evac.config import connect_temporal
from evac.stack import StackConfig, find_binary, free_port
from tests.conftest import DEMO, ROOT
from tests.debian import debian_binary
from tests.e2e.conftest import E2E, SECRETS, dead_api, record, scaler

pytestmark = pytest.mark.e2e

ALERTING = DEMO / "alerting"
AUTO = DEMO / "auto"
REGION, TARGET = "europe-west1", "us-central1"
SERVICES = ("checkout", "catalog")
TARGET_ADDRESSES = {"checkout": "198.51.100.10", "catalog": "198.51.100.20"}  # in us-central1
TOKEN_FILE = "evac-alerts-token"  # alertmanager.yml's credentials_file, beside it
POLICY = """
[alerts_policy]
min_duration = "3s"
min_alerts = 1
cooldown = "0s"
max_per_hour = 100
"""
CHAIN_TIMEOUT = 150.0


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with status {self.process.returncode}: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn(name: str, command: list[str], folder: Path, env: dict[str, str] | None = None) -> Process:
    log = folder / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    return Process(name, process, log)


def wait_http(process: Process, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.alive()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{process.name} did not answer {url} within {timeout:g}s: {process.log.read_text()[-3000:]}")


@dataclass
class Chain:
    e2e: E2E
    folder: Path
    token: str
    receiver_url: str
    prometheus_url: str
    alertmanager_url: str
    processes: list[Process]
    receiver_env: dict[str, str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def alive(self) -> None:
        for process in self.processes:
            process.alive()

    def guardian(self, region: str = REGION) -> dict[str, Any]:
        """``evac alerts status REGION --output json``: the region's guardian."""
        found = self.e2e.evac_json("alerts", "status", region)
        [guardian] = found["guardians"]
        assert isinstance(guardian, dict)
        return guardian

    def alert_runs(self, since: datetime) -> list[dict[str, Any]]:
        """``evac runs list --trigger alert``: the automatic failovers started since ``since``."""
        rows: list[dict[str, Any]] = self.e2e.evac_json("runs", "list", "--trigger", "alert", "--limit", "500")
        return [row for row in rows if datetime.fromisoformat(row["started_at"]) >= since]

    def running(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.e2e.evac_json("runs", "list", "--outcome", "running", "--limit", "500")
        return [row for row in rows if row["service"] in SERVICES]

    def accepted(self) -> float:
        """The receiver's count of accepted alerts (its /metrics)."""
        text = httpx.get(f"{self.receiver_url}/metrics", timeout=5).raise_for_status().text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("evac_alert_receiver_alerts_accepted_total{")
        )

    def calm(self) -> None:
        """europe-west1 without an outage, the seeded world, no firing alert in its guardian
        (Alertmanager's resolved delivery withdraws Prometheus's), no run of the demo services."""
        admin = self.e2e.admin
        admin.post(f"/emulator/v1/regions/{REGION}/recover").raise_for_status()
        self.e2e.wait_for("no run of checkout or catalog going on", lambda: not self.running(), timeout=CHAIN_TIMEOUT)
        admin.post("/emulator/v1/reset").raise_for_status()
        self.e2e.wait_for(
            f"the {REGION} guardian to hold no firing alert", lambda: not self.guardian()["state"]["firing"], timeout=90
        )
        self.alive()

    def succeeded(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Each demo service's automatic failover started since ``since``, once all have succeeded."""
        found: dict[str, dict[str, Any]] = {}

        def done() -> bool:
            self.alive()
            runs = self.alert_runs(since)
            found.clear()
            found.update({row["service"]: row for row in runs if row["service"] in SERVICES})
            failed = [row for row in runs if row["status"] not in ("running", "completed")]
            assert not failed, f"an automatic failover did not succeed: {failed}"
            # Nothing in this module's episodes should meet a guard: say which one did, at once.
            suppressed = [
                f"{d['service']}: {d['guard']}: {d['reason']}"
                for d in self.guardian()["state"]["decisions"]
                if d["verdict"] == "suppressed" and datetime.fromisoformat(d["at"]) >= since
            ]
            assert not suppressed, f"the guardian suppressed: {suppressed}"
            return set(found) == set(SERVICES) and all(row["outcome"] == "succeeded" for row in found.values())

        try:
            self.e2e.wait_for("automatic failovers of checkout and catalog to succeed", done, timeout=CHAIN_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; found {found}; {self.diagnosis()}") from None
        return dict(found)

    def diagnosis(self) -> str:
        """What each piece of the chain saw, for a failure's message."""
        parts = [f"guardian: {json.dumps(self.e2e.evac_json('alerts', 'status', REGION), default=str)[-4000:]}"]
        for path in (self.prometheus_url + "/api/v1/alerts", self.alertmanager_url + "/api/v2/alerts"):
            try:
                parts.append(f"{path}: {httpx.get(path, timeout=5).text[-1500:]}")
            except httpx.HTTPError as exc:
                parts.append(f"{path}: {exc}")
        parts += [f"{p.name} log: {p.log.read_text()[-1500:]}" for p in self.processes]
        return "\n".join(parts)


def alertmanager_delivery(fingerprint: str, status: str = "firing", region: str = REGION, **labels: str) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4) holding one alert."""
    alert_labels = {"alertname": "EvacE2EAlert", "region": region, "severity": "page", **labels}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="EvacE2EAlert", region="{region}"}}',
        "status": status,
        "receiver": "evac",
        "groupLabels": {"alertname": "EvacE2EAlert", "region": region},
        "commonLabels": alert_labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": alert_labels,
                "annotations": {"summary": "a test alert of test_alerts_e2e.py"},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(UTC).isoformat(),
                "generatorURL": "",
                "fingerprint": fingerprint,
            }
        ],
    }


def installed(folder: Path, replacements: dict[str, str], source: Path) -> None:
    """Copy ``source``'s YAML files into ``folder``, with the demo ports replaced by the test's."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix not in (".yml", ".yaml"):
            continue
        text = path.read_text()
        for demo, ours in replacements.items():
            text = text.replace(demo, ours)
        (folder / path.name).write_text(text)


def start_receiver(e2e: E2E, folder: Path, name: str, env: dict[str, str], port: int, *args: str) -> tuple[Process, str]:
    """``evac alerts serve`` on ``port`` with the plans in ``folder/plans``, once it answers /healthz."""
    command = ["alerts", "serve", "--host", "127.0.0.1", "--port", str(port), "--plans", str(folder / "plans"), *args]
    process = spawn(name, [find_binary("evac"), *command], folder, env={**e2e.env, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(process, f"{url}/healthz")
    except AssertionError:
        process.stop()
        raise
    return process, url


async def _terminate_guardians(config: StackConfig) -> None:
    """This module's guardians end with it: none decides in another file's test."""
    client = await connect_temporal(config.temporal_address, "default")
    query = "WorkflowType = 'RegionGuardianWorkflow' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        if execution.id.startswith(GUARDIAN_ID_PREFIX):
            await client.get_workflow_handle(execution.id).terminate(reason="test_alerts_e2e.py is over")


@pytest.fixture(scope="module")
def chain(e2e_stack: E2E, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    prometheus_bin = debian_binary("prometheus", "prometheus")
    alertmanager_bin = debian_binary("prometheus-alertmanager", "prometheus-alertmanager")
    folder = tmp_path_factory.mktemp("evac-alerts")
    token = f"evac-e2e-alerts-{secrets.token_hex(16)}"
    SECRETS.add(token)  # the stack scans every history for it when it stops
    emulator = e2e_stack.stack.config.emulator_url.removeprefix("http://")
    prometheus_port, alertmanager_port, receiver_port = free_port(), free_port(), free_port()
    replacements = {
        "localhost:8480": emulator,
        "localhost:9093": f"127.0.0.1:{alertmanager_port}",
        "localhost:8490": f"127.0.0.1:{receiver_port}",
    }
    installed(folder, replacements, ALERTING)
    installed(folder / "plans", replacements, AUTO)
    (folder / TOKEN_FILE).write_text(token)
    (folder / "config.toml").write_text(POLICY)
    receiver_env = {"EVAC_ALERTS_TOKEN": token, "EVAC_CONFIG": str(folder / "config.toml")}
    processes: list[Process] = []
    try:
        receiver, receiver_url = start_receiver(e2e_stack, folder, "receiver", receiver_env, receiver_port)
        processes.append(receiver)
        e2e_stack.wait_for(
            f"the receiver to configure the {REGION} guardian",
            lambda: REGION in httpx.get(f"{receiver_url}/healthz", timeout=5).json()["configured"],
        )
        alertmanager = spawn(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={folder / 'alertmanager.yml'}",
                f"--storage.path={folder / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            folder,
        )
        processes.append(alertmanager)
        alertmanager_url = f"http://127.0.0.1:{alertmanager_port}"
        wait_http(alertmanager, f"{alertmanager_url}/-/ready")
        prometheus = spawn(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            folder,
        )
        processes.append(prometheus)
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_http(prometheus, f"{prometheus_url}/-/ready")
        yield Chain(
            e2e_stack, folder, token, receiver_url, prometheus_url, alertmanager_url, processes, receiver_env=receiver_env
        )
    finally:
        for process in reversed(processes):
            process.stop()
        asyncio.run(_terminate_guardians(e2e_stack.stack.config))
        e2e_stack.admin.post(f"/emulator/v1/regions/{REGION}/recover")
        e2e_stack.admin.post("/emulator/v1/reset")


@pytest.fixture
def calm(chain: Chain) -> Chain:
    chain.calm()
    return chain


def test_a_regional_outage_fails_the_demo_services_over_through_prometheus_and_alertmanager_with_no_human(calm: Chain):
    chain, e2e = calm, calm.e2e
    since = datetime.now(UTC) - timedelta(seconds=1)

    e2e.admin.post(f"/emulator/v1/regions/{REGION}/outage").raise_for_status()
    runs = chain.succeeded(since)

    # Prometheus fired the rule on the emulator's healthy backends, Alertmanager delivered it.
    firing = httpx.get(f"{chain.prometheus_url}/api/v1/alerts", timeout=5).raise_for_status().json()["data"]["alerts"]
    assert any(a["labels"] == {"alertname": "RegionNoHealthyBackends", "region": REGION, "severity": "page"} for a in firing)
    delivered = httpx.get(f"{chain.alertmanager_url}/api/v2/alerts", timeout=5).raise_for_status().json()
    evidence = sorted(
        f"alertmanager:{a['fingerprint']}" for a in delivered if a["labels"]["alertname"] == "RegionNoHealthyBackends"
    )
    guardian = chain.guardian()
    assert evidence and set(evidence) <= set(guardian["state"]["firing"]), (evidence, guardian["state"]["firing"])
    for service in SERVICES:
        [status] = [chain.e2e.evac_json("status", service)]
        assert status["run_id"] == runs[service]["run_id"] and status["status"] == "succeeded"
        trigger = status["trigger"]
        assert trigger["kind"] == "alert" and trigger["by"] == f"evac-guardian/{REGION}"
        assert trigger["evidence"] and all(key.startswith("alertmanager:") for key in trigger["evidence"])
        assert trigger["evidence"] == evidence, "the failover rests on the fingerprint Alertmanager delivered"
        assert runs[service]["source"] == REGION and runs[service]["target"] == TARGET
        # Why it fired is on the guardian's record, with the run it started.
        fires = [d for d in guardian["state"]["decisions"] if d["service"] == service and d["verdict"] == "fire"]
        assert any(d["run_id"] == runs[service]["run_id"] and d["workflow_id"] == f"failover/{service}" for d in fires), fires
        # The auditor sees the same trigger in the run's history.
        record = e2e.evac_json("audit", "show", service)
        assert record["run"]["run_id"] == runs[service]["run_id"]
        assert record["trigger"]["kind"] == "alert" and record["trigger"]["evidence"] == trigger["evidence"]
        assert record["outcome"] == "succeeded"
    # Traffic left europe-west1: its backends drained in both services.
    state = e2e.state()
    for service in SERVICES:
        backends = state["backendServices"][f"{service}-backend"]["backends"]
        assert [b["capacityScaler"] for b in backends if REGION in b["group"]] == [0]

    # The outage goes on, Alertmanager repeats: no second failover in the same episode.
    time.sleep(5)
    again = chain.alert_runs(since)
    assert sorted(row["service"] for row in again) == sorted(SERVICES), again


def test_an_outage_that_takes_the_regions_api_down_too_still_fails_the_demo_services_over_with_no_human(calm: Chain):
    """The region is really gone (issue 18): its API answers 503 to every call about its own
    resources. The alert fires as before, and each failover goes on without that API."""
    chain, e2e = calm, calm.e2e
    since = datetime.now(UTC) - timedelta(seconds=1)

    with dead_api(e2e, REGION):
        runs = chain.succeeded(since)
        state = e2e.state()

    for service in SERVICES:
        status = e2e.evac_json("status", service)
        assert status["run_id"] == runs[service]["run_id"] and status["status"] == "succeeded"
        assert status["trigger"]["kind"] == "alert" and status["trigger"]["by"] == f"evac-guardian/{REGION}"
        # It went on without europe-west1's API: what only that API serves is recorded as not read.
        assert status.get("ungraceful") and all(REGION in cause for cause in status["ungraceful"]), status
        # Traffic left europe-west1: drained through the global backend service, DNS at us-central1.
        assert scaler(state, f"{service}-backend", f"{service}-ew1") == 0.0, service
        assert record(state, f"{service}.shop.example.com.") == [TARGET_ADDRESSES[service]], service


def test_a_thousand_duplicate_alerts_sent_at_once_start_exactly_one_failover_per_service(calm: Chain):
    chain = calm
    since = datetime.now(UTC) - timedelta(seconds=1)
    accepted_before = chain.accepted()
    received_before = chain.guardian()["state"]["received"]
    fingerprint = uuid.uuid4().hex[:16]
    body = alertmanager_delivery(fingerprint, episode=fingerprint)

    async def storm() -> list[int]:
        limit = asyncio.Semaphore(50)
        async with httpx.AsyncClient(base_url=chain.receiver_url, headers=chain.auth, timeout=30) as client:

            async def post() -> int:
                async with limit:
                    return (await client.post("/alertmanager", json=body)).status_code

            return await asyncio.gather(*(post() for _ in range(1000)))

    try:
        codes = asyncio.run(storm())
        assert codes == [202] * 1000, {code: codes.count(code) for code in set(codes)}
        assert chain.accepted() - accepted_before == 1000

        runs = chain.succeeded(since)
        time.sleep(5)  # past another min_duration: nothing more starts
        started = chain.alert_runs(since)
        assert sorted(row["service"] for row in started) == sorted(SERVICES), started
        guardian = chain.guardian()
        assert guardian["state"]["received"] > received_before
        for service in SERVICES:
            fires = [d for d in guardian["state"]["decisions"] if d["service"] == service and d["verdict"] == "fire"]
            assert fires[-1]["run_id"] == runs[service]["run_id"]
            assert fires[-1]["evidence"] == [f"alertmanager:{fingerprint}"]
    finally:
        resolved = httpx.post(
            f"{chain.receiver_url}/alertmanager",
            json=alertmanager_delivery(fingerprint, "resolved", episode=fingerprint),
            headers=chain.auth,
            timeout=30,
        )
        assert resolved.status_code == 202, resolved.text


def test_unauthenticated_malformed_and_oversized_deliveries_are_refused_and_start_nothing(calm: Chain):
    chain = calm
    since = datetime.now(UTC) - timedelta(seconds=1)
    before = chain.guardian()["state"]
    accepted_before = chain.accepted()
    valid = alertmanager_delivery(uuid.uuid4().hex[:16])
    url = f"{chain.receiver_url}/alertmanager"
    oversized = json.dumps({**valid, "padding": "x" * (2 * 1024 * 1024)})

    refused = {
        "no credentials": httpx.post(url, json=valid, timeout=10),
        "a wrong token": httpx.post(url, json=valid, headers={"Authorization": "Bearer not-the-token"}, timeout=10),
        "not JSON": httpx.post(url, content=b"{not json", headers=chain.auth, timeout=10),
        "no region label": httpx.post(
            url, json={**valid, "alerts": [{**valid["alerts"][0], "labels": {"alertname": "X"}}]}, headers=chain.auth, timeout=10
        ),
        "over the size limit": httpx.post(
            url, content=oversized, headers={**chain.auth, "Content-Type": "application/json"}, timeout=30
        ),
    }

    codes = {what: response.status_code for what, response in refused.items()}
    assert codes == {
        "no credentials": 401,
        "a wrong token": 401,
        "not JSON": 422,
        "no region label": 422,
        "over the size limit": 413,
    }
    for what, response in refused.items():
        error = response.json()["error"]
        assert error and chain.token not in error, (what, error)
    assert "region" in refused["no region label"].json()["error"]
    time.sleep(3)  # a signal would have reached the guardian by now
    after = chain.guardian()["state"]
    assert (after["received"], after["firing"], after["decisions"]) == (before["received"], before["firing"], before["decisions"])
    assert chain.accepted() == accepted_before
    assert chain.alert_runs(since) == []


def test_the_docs_show_the_alerting_configs_exactly_as_this_module_runs_them():
    docs = (ROOT / "docs" / "alerts.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", docs, re.S | re.M)
    for name in ("rules.yml", "prometheus.yml", "alertmanager.yml"):
        assert (ALERTING / name).read_text() in blocks, f"docs/alerts.md does not show plans/demo/alerting/{name} as it is"


def test_a_receiver_that_cannot_reach_temporal_answers_503_so_the_sender_retries(chain: Chain, tmp_path: Path):
    dead = f"127.0.0.1:{free_port()}"
    shutil.copytree(chain.folder / "plans", tmp_path / "plans")
    receiver, url = start_receiver(chain.e2e, tmp_path, "dead-receiver", chain.receiver_env, free_port(), "--address", dead)
    try:
        response = httpx.post(
            f"{url}/alertmanager", json=alertmanager_delivery(uuid.uuid4().hex[:16]), headers=chain.auth, timeout=60
        )
        assert response.status_code == 503, response.text
        assert "retry" in response.json()["error"]
        assert httpx.get(f"{url}/healthz", timeout=5).json()["pending"] == [REGION]
        # Alive, but not ready: a load balancer checking /readyz sends deliveries elsewhere.
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["error"].startswith("Temporal cannot be reached: ")
        receiver.alive()
    finally:
        receiver.stop()
    # Its log is JSON lines only: the Temporal core's own warnings come through structlog too.
    lines = [line for line in receiver.log.read_text().splitlines() if line.strip()]
    assert lines and "\x1b[" not in receiver.log.read_text()
    assert all(line.startswith(("{", "receiving alerts on", "warning:")) for line in lines), lines[:5]


def test_when_its_temporal_goes_away_the_receivers_log_stays_json_lines(chain: Chain, tmp_path: Path):
    """The Temporal core retries a call to a server that went away and warns on each retry: those
    warnings reach the receiver's log through structlog, as JSON lines, not as the core's own
    coloured text."""
    port = free_port()
    server = spawn(
        "lost-temporal",
        [find_binary("temporal"), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
         "--db-filename", str(tmp_path / "lost.db"), "--log-level", "error"],
        tmp_path,
    )  # fmt: skip
    shutil.copytree(chain.folder / "plans", tmp_path / "plans")
    receiver, url = start_receiver(
        chain.e2e, tmp_path, "orphaned-receiver", chain.receiver_env, free_port(), "--address", f"127.0.0.1:{port}"
    )
    try:
        wait_http(receiver, f"{url}/readyz")  # connected to its Temporal
        server.stop()
        response = httpx.post(
            f"{url}/alertmanager", json=alertmanager_delivery(uuid.uuid4().hex[:16]), headers=chain.auth, timeout=60
        )
        assert response.status_code == 503, response.text
        receiver.alive()
    finally:
        receiver.stop()
        server.stop()
    log = receiver.log.read_text()
    assert "\x1b[" not in log, log[-2000:]
    retried = [json.loads(line) for line in log.splitlines() if line.startswith("{") and "retried" in line]
    assert retried and all(entry["logger"].startswith("temporalio") for entry in retried), log[-2000:]
