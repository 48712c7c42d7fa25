"""The alert receiver's HTTP side with a stand-in for Temporal: what is signalled, what is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from fastapi import FastAPI
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from evac.alerting.models import AlertBatch, AlertEvidence, GuardianConfig, GuardianInput, GuardianPolicy
from evac.alerting.payloads import Labels
from evac.alerting.receiver import ReceiverConfig, TemporalSignaller, create_app, load_guardian_plans
from evac.cli.alert_serve import serve
from evac.config import Settings
from evac.documents import InvalidDocument
from evac.errors import BadInput, ConfigError, TemporalUnreachable, Unavailable
from evac.http_timeouts import with_header_timeout
from evac.stack import free_port
from tests.conftest import DEMO
from tests.unit.test_alert_payloads import alertmanager, am_alert, cloud_monitoring, pubsub

ROOT = Path(__file__).resolve().parents[2]
AUTO = ROOT / "plans" / "demo" / "auto"
TOKEN = "s3cret-token-4f9a2c"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


class FakeSignaller:
    """Records every signal; can fail like Temporal does, or take its time."""

    def __init__(self) -> None:
        self.alerts_sent: list[tuple[str, AlertBatch, GuardianInput]] = []
        self.configured: list[tuple[str, GuardianConfig, GuardianInput]] = []
        self.failure: Exception | None = None
        self.configure_failure: Exception | None = None
        self.delay = 0.0

    async def alerts(self, region: str, batch: AlertBatch, start: GuardianInput) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        self.alerts_sent.append((region, batch, start))

    async def configure(self, region: str, config: GuardianConfig, start: GuardianInput) -> None:
        if self.configure_failure is not None:
            raise self.configure_failure
        self.configured.append((region, config, start))

    async def unreachable(self) -> str | None:
        return str(self.failure) if self.failure is not None else None


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    shutil.copytree(AUTO, folder)
    return folder


@pytest.fixture
def signaller() -> FakeSignaller:
    return FakeSignaller()


def config(plans: Path | None = None, **more: Any) -> ReceiverConfig:
    return ReceiverConfig(token=TOKEN, plans_dir=plans, **more)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan: plans loaded, guardians configured) and a client talking to it."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client:
            yield client


@pytest.fixture
async def client(plans: Path, signaller: FakeSignaller) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(config(plans), signaller)) as test_client:
        yield test_client


def unreachable() -> TemporalUnreachable:
    return TemporalUnreachable("localhost:7233", "Connection refused")


# --- Accepted deliveries --------------------------------------------------------------------------


async def test_an_alertmanager_delivery_is_signalled_to_each_regions_guardian_before_202(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    other = am_alert(labels={"alertname": "Down", "region": "us-central1"}, fingerprint="beef")
    resolved = am_alert(status="resolved", fingerprint="c0ffee0002")
    response = await client.post("/alertmanager", content=alertmanager(am_alert(), other, resolved), headers=BEARER)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "regions": ["europe-west1", "us-central1"]}
    sent = {region: (batch, start) for region, batch, start in signaller.alerts_sent}
    assert set(sent) == {"europe-west1", "us-central1"}
    batch, start = sent["europe-west1"]
    assert [(a.key, a.firing, a.service) for a in batch.alerts] == [
        ("c0ffee0001", True, "checkout"),
        ("c0ffee0002", False, "checkout"),
    ]
    assert start.region == "europe-west1" and start.state is None
    assert [(p.service, p.auto, p.target) for p in start.plans] == [
        ("catalog", True, "us-central1"),
        ("checkout", True, "us-central1"),
    ]
    assert sent["us-central1"][1].plans == []  # the region has no plans; its guardian still keeps its alerts


async def test_cloud_monitoring_and_pubsub_deliveries_are_signalled(client: httpx.AsyncClient, signaller: FakeSignaller) -> None:
    assert (await client.post("/cloud-monitoring", content=cloud_monitoring(), headers=BEARER)).status_code == 202
    assert (await client.post("/pubsub", content=pubsub(cloud_monitoring(state="closed")), headers=BEARER)).status_code == 202
    [(_, opened, _), (_, closed, _)] = signaller.alerts_sent
    assert [(a.source, a.key, a.firing) for a in opened.alerts + closed.alerts] == [
        ("cloud_monitoring", "0.mkr2gvb7u9k0", True),
        ("cloud_monitoring", "0.mkr2gvb7u9k0", False),
    ]


async def test_http_basic_auth_with_the_token_as_password_is_accepted(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    basic = base64.b64encode(f"cloud-monitoring:{TOKEN}".encode()).decode()
    response = await client.post("/cloud-monitoring", content=cloud_monitoring(), headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 202
    assert len(signaller.alerts_sent) == 1


async def test_the_configured_label_names_are_used(plans: Path, signaller: FakeSignaller) -> None:
    app = create_app(config(plans, labels=Labels(region="gcp_region", service="app")), signaller)
    alert = am_alert(labels={"alertname": "Down", "gcp_region": "europe-west1", "app": "catalog"})
    async with running(app) as client:
        assert (await client.post("/alertmanager", content=alertmanager(alert), headers=BEARER)).status_code == 202
    [(region, batch, _)] = signaller.alerts_sent
    assert (region, batch.alerts[0].service) == ("europe-west1", "catalog")


async def test_without_a_token_the_receiver_accepts_unauthenticated_deliveries(signaller: FakeSignaller) -> None:
    async with running(create_app(ReceiverConfig(token=None), signaller)) as client:
        assert (await client.post("/alertmanager", content=alertmanager())).status_code == 202
    assert len(signaller.alerts_sent) == 1


# --- Refused deliveries: nothing signalled ----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Token {TOKEN}"},
        {"Authorization": "Basic " + base64.b64encode(b"alertmanager:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},  # no user:password
        {"Authorization": "Basic %%%"},
    ],
)
async def test_no_or_wrong_credentials_get_401_and_nothing_is_signalled(
    client: httpx.AsyncClient, signaller: FakeSignaller, headers: dict[str, str]
) -> None:
    response = await client.post("/alertmanager", content=alertmanager(), headers=headers)
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"] and "Basic" in response.headers["www-authenticate"]
    assert "credentials" in response.json()["error"]
    assert TOKEN not in response.text
    assert signaller.alerts_sent == []


async def test_an_oversized_body_gets_413_whether_announced_or_streamed(plans: Path, signaller: FakeSignaller) -> None:
    body = alertmanager(am_alert(annotations={"summary": "x" * 2000}))
    async with running(create_app(config(plans, max_body=1000), signaller)) as client:
        announced = await client.post("/alertmanager", content=body, headers=BEARER)
        assert announced.status_code == 413
        assert announced.json() == {"error": "the body is over 1000 bytes, the receiver's limit; nothing was signalled"}

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
            for i in range(0, len(body), 100):
                yield body[i : i + 100].encode()

        streamed = await client.post("/alertmanager", content=chunks(), headers=BEARER)
        assert streamed.status_code == 413
        assert (await client.post("/alertmanager", content=alertmanager(), headers=BEARER)).status_code == 202
    assert len(signaller.alerts_sent) == 1


async def test_an_oversized_body_without_credentials_is_401_not_read(client: httpx.AsyncClient, signaller: FakeSignaller) -> None:
    assert (await client.post("/alertmanager", content=b"x" * (2 * 1024 * 1024))).status_code == 401
    assert signaller.alerts_sent == []


@pytest.mark.parametrize(
    ("endpoint", "body", "error"),
    [
        ("/alertmanager", "{", "the body is not JSON"),
        ("/alertmanager", alertmanager(am_alert(status="flapping")), "alerts[0].status: input should be"),
        (
            "/alertmanager",
            alertmanager(am_alert(), am_alert(labels={"alertname": "Latency"})),
            "alerts[1].labels has no 'region' (alert 'Latency')",
        ),
        ("/cloud-monitoring", alertmanager(), 'version "4" is not the Cloud Monitoring notification version 1.2'),
        ("/cloud-monitoring", json.dumps({"version": "1.2"}), "incident is required"),
        ("/cloud-monitoring", cloud_monitoring(resource={"labels": {}}, policy_user_labels={}), "incident has no 'region'"),
        ("/pubsub", json.dumps({"message": {"data": "???"}}), "message.data is not base64"),
    ],
)
async def test_a_malformed_delivery_or_an_alert_without_region_gets_422_and_nothing_is_signalled(
    client: httpx.AsyncClient, signaller: FakeSignaller, endpoint: str, body: str, error: str
) -> None:
    response = await client.post(endpoint, content=body, headers=BEARER)
    assert response.status_code == 422
    assert response.json()["error"].startswith(error)
    assert response.json()["error"].endswith("; nothing was signalled")
    assert signaller.alerts_sent == []


async def test_an_alert_for_a_region_no_loaded_topology_has_starts_no_guardian(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    mars = am_alert(labels={"alertname": "Down", "region": "mars-east1"}, fingerprint="beef")
    alone = await client.post("/alertmanager", content=alertmanager(mars), headers=BEARER)
    assert alone.status_code == 422
    assert alone.json()["error"] == (
        "region 'mars-east1' is in no loaded topology (it has: europe-west1, us-central1); nothing was signalled"
    )
    assert signaller.alerts_sent == []
    # Beside a known region's alert: that one is signalled (no evidence is lost), the other named.
    mixed = await client.post("/alertmanager", content=alertmanager(am_alert(), mars), headers=BEARER)
    assert mixed.status_code == 202
    assert mixed.json() == {"accepted": 1, "regions": ["europe-west1"], "unknown_regions": ["mars-east1"]}
    assert [region for region, _, _ in signaller.alerts_sent] == ["europe-west1"]
    metrics = (await client.get("/metrics")).text
    assert "evac_alert_receiver_alerts_unknown_region_total 2.0" in metrics


async def test_readyz_fails_while_temporal_is_unreachable_and_healthz_stays_alive(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    signaller.failure = unreachable()
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert ready.json()["error"].startswith("Temporal cannot be reached: ")
    assert (await client.get("/healthz")).status_code == 200  # alive: a restart would not help


async def test_temporal_unreachable_gets_503_so_the_sender_retries(client: httpx.AsyncClient, signaller: FakeSignaller) -> None:
    signaller.failure = unreachable()
    response = await client.post("/alertmanager", content=alertmanager(), headers=BEARER)
    assert response.status_code == 503
    assert response.json()["error"].startswith(
        "the alerts could not be handed to Temporal, retry the delivery: cannot reach Temporal at localhost:7233"
    )
    signaller.failure = None
    assert (await client.post("/alertmanager", content=alertmanager(), headers=BEARER)).status_code == 202


async def test_an_unexpected_failure_is_500_without_a_traceback(client: httpx.AsyncClient, signaller: FakeSignaller) -> None:
    signaller.failure = RuntimeError("boom in the signaller")
    response = await client.post("/alertmanager", content=alertmanager(), headers=BEARER)
    assert response.status_code == 500
    assert set(response.json()) == {"error"}
    assert "Traceback" not in response.text and "boom" not in response.text


# --- Storm relief ---------------------------------------------------------------------------------


async def test_concurrent_duplicates_are_signalled_once_and_each_is_accepted(plans: Path, signaller: FakeSignaller) -> None:
    signaller.delay = 0.2
    app = create_app(config(plans), signaller)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        body = alertmanager()
        responses = await asyncio.gather(*(client.post("/alertmanager", content=body, headers=BEARER) for _ in range(50)))
        assert {r.status_code for r in responses} == {202}
        assert sum(r.json()["accepted"] for r in responses) == 50
        assert len(signaller.alerts_sent) == 1
        # Signalled moments ago in the same state: not again. Resolved: a change, signalled at once.
        assert (await client.post("/alertmanager", content=body, headers=BEARER)).status_code == 202
        assert len(signaller.alerts_sent) == 1
        resolved = alertmanager(am_alert(status="resolved"))
        assert (await client.post("/alertmanager", content=resolved, headers=BEARER)).status_code == 202
        assert [batch.alerts[0].firing for _, batch, _ in signaller.alerts_sent] == [True, False]
        metrics = (await client.get("/metrics")).text
    assert "evac_alert_receiver_alerts_coalesced_total 50.0" in metrics


async def test_duplicates_waiting_on_a_failed_signal_get_503_too(plans: Path, signaller: FakeSignaller) -> None:
    signaller.delay, signaller.failure = 0.1, unreachable()
    app = create_app(config(plans), signaller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as client:
        body = alertmanager()
        responses = await asyncio.gather(*(client.post("/alertmanager", content=body, headers=BEARER) for _ in range(5)))
        assert {r.status_code for r in responses} == {503}
        signaller.failure = None
        assert (await client.post("/alertmanager", content=body, headers=BEARER)).status_code == 202
    assert len(signaller.alerts_sent) == 1


async def test_coalescing_can_be_turned_off(plans: Path, signaller: FakeSignaller) -> None:
    async with running(create_app(config(plans, coalesce_window=0), signaller)) as client:
        for _ in range(3):
            assert (await client.post("/alertmanager", content=alertmanager(), headers=BEARER)).status_code == 202
    assert len(signaller.alerts_sent) == 3


# --- Startup: plans and the guardians' configuration -------------------------------------------------


async def test_startup_configures_each_region_that_has_plans(plans: Path, signaller: FakeSignaller) -> None:
    policy = GuardianPolicy(min_alerts=2, approvers=["alice"])
    async with running(create_app(config(plans, policy=policy), signaller)) as client:
        [(region, configured, start)] = signaller.configured
        assert region == "europe-west1"
        assert configured.policy == policy and start.policy == policy
        assert [p.service for p in configured.plans] == ["catalog", "checkout"]
        plan = configured.plans[0]
        assert (plan.plan_name, plan.input.service, plan.input.trigger.kind) == ("demo-auto-failover", "catalog", "alert")
        assert plan.input.plan_digest == plan.input.plan.digest()
        health = (await client.get("/healthz")).json()
    assert health == {
        "status": "ok",
        "plans": {"europe-west1": ["catalog", "checkout"]},
        "configured": ["europe-west1"],
        "pending": [],
    }


async def test_plans_too_large_for_one_guardian_refuse_the_start_naming_the_region(
    plans: Path, signaller: FakeSignaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: a guardian keeps its plans in every continue-as-new input; more than it can keep
    far below Temporal's payload limit refuse the receiver's start, not the guardian's next task."""
    monkeypatch.setattr("evac.alerting.models.MAX_CONFIG_BYTES", 2048)
    with pytest.raises(BadInput, match=r"the guardian of europe-west1 would hold \d+ KiB of plans \(2 services\); at most 2 KiB"):
        async with running(create_app(config(plans), signaller)):
            pass
    assert signaller.configured == []


async def test_a_guardian_configuration_that_cannot_reach_temporal_is_retried(plans: Path, signaller: FakeSignaller) -> None:
    signaller.configure_failure = unreachable()
    async with running(create_app(config(plans, configure_retry=0.05), signaller)) as client:
        assert (await client.get("/healthz")).json()["pending"] == ["europe-west1"]
        signaller.configure_failure = None
        for _ in range(100):
            if (await client.get("/healthz")).json()["configured"]:
                break
            await asyncio.sleep(0.02)
        assert (await client.get("/healthz")).json()["configured"] == ["europe-west1"]
    assert len(signaller.configured) == 1


async def test_a_bad_plan_refuses_the_startup_naming_file_and_error(plans: Path, signaller: FakeSignaller) -> None:
    failover = plans / "failover.yaml"
    failover.write_text(failover.read_text().replace("capacity_scaler: 0\n", "capacity_scaler: 7\n"))
    with pytest.raises(InvalidDocument) as raised:
        async with running(create_app(config(plans), signaller)):
            pass
    [error] = raised.value.errors
    assert error.file == str(failover) and error.path == "steps[2].capacity_scaler" and error.line is not None
    assert signaller.configured == []


def test_plans_folder_errors_name_the_folder_or_every_file(tmp_path: Path, plans: Path) -> None:
    with pytest.raises(BadInput, match="is not a folder"):
        load_guardian_plans(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match=r"has no topology\.yaml"):
        load_guardian_plans(empty)
    shutil.copy(AUTO / "topology.yaml", empty)
    with pytest.raises(BadInput, match=r"has no plans \(\*\.yaml files besides topology\.yaml\)"):
        load_guardian_plans(empty)
    demo = ROOT / "plans" / "demo"
    shutil.copy(demo / "drill.yaml", plans)
    shutil.copy(demo / "bake.yaml", plans / "zz-bake.yaml")
    with pytest.raises(InvalidDocument) as raised:
        load_guardian_plans(plans)
    found = {(Path(e.file).name, e.path): e.message for e in raised.value.errors}
    assert "alerts start failovers only" in found[("drill.yaml", "kind")]
    assert found[("zz-bake.yaml", "services[0]")].startswith(f"service 'checkout' out of europe-west1 is also in {plans}")


def test_a_plan_naming_an_approver_group_the_configuration_lacks_is_named(plans: Path) -> None:
    failover = plans / "failover.yaml"
    failover.write_text(
        failover.read_text().replace(
            "  - name: drain europe-west1\n",
            "  - {name: ok, kind: approval, approvers: ['group:sre']}\n  - name: drain europe-west1\n",
        )
    )
    with pytest.raises(BadInput, match=rf"^{failover}: .*sre"):
        load_guardian_plans(plans)
    [plan, *_] = load_guardian_plans(plans, approver_groups={"sre": ["alice"]})["europe-west1"]
    assert plan.input.approver_groups == {"sre": ["alice"]}


def test_plans_of_another_project_are_refused(plans: Path) -> None:
    with pytest.raises(BadInput, match="the topology is for project 'evac-demo' but EVAC_GCP_PROJECT is 'other-project'"):
        load_guardian_plans(plans, gcp_project="other-project")


# --- Metrics, health, OpenAPI, secrets ----------------------------------------------------------------


async def test_metrics_count_requests_by_endpoint_and_code_alerts_and_signal_latency(client: httpx.AsyncClient) -> None:
    await client.post("/alertmanager", content=alertmanager(am_alert(), am_alert(fingerprint="two")), headers=BEARER)
    await client.post("/alertmanager", content=alertmanager())
    await client.post("/cloud-monitoring", content="{", headers=BEARER)
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'evac_alert_receiver_requests_total{code="202",endpoint="/alertmanager"} 1.0' in lines
    assert 'evac_alert_receiver_requests_total{code="401",endpoint="/alertmanager"} 1.0' in lines
    assert 'evac_alert_receiver_requests_total{code="422",endpoint="/cloud-monitoring"} 1.0' in lines
    assert 'evac_alert_receiver_alerts_accepted_total{source="alertmanager",state="firing"} 2.0' in lines
    assert 'evac_alert_receiver_signal_seconds_count{signal="alerts"} 1.0' in lines
    assert 'evac_alert_receiver_signal_seconds_count{signal="configure"} 1.0' in lines


async def test_openapi_describes_the_bodies_and_the_refusals(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {"/alertmanager", "/cloud-monitoring", "/pubsub", "/healthz", "/metrics"} <= set(schema["paths"])
    post = schema["paths"]["/alertmanager"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/AlertmanagerWebhook"}
    assert {"202", "401", "413", "422", "503"} <= set(post["responses"])
    components = schema["components"]["schemas"]
    assert {"AlertmanagerWebhook", "AlertmanagerAlert", "CloudMonitoringNotification", "Incident", "PubSubPush"} <= set(
        components
    )
    assert "startsAt" in components["AlertmanagerAlert"]["properties"]
    assert (await client.get("/docs")).status_code == 200


async def test_the_token_never_appears_in_logs(
    plans: Path, signaller: FakeSignaller, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver_config = config(plans)
    assert TOKEN not in repr(receiver_config)
    async with running(create_app(receiver_config, signaller)) as client:
        await client.post("/alertmanager", content=alertmanager(), headers=BEARER)
        await client.post("/alertmanager", content=alertmanager(), headers={"Authorization": f"Bearer {TOKEN}-almost"})
        basic = base64.b64encode(f"u:{TOKEN}".encode()).decode()
        await client.post("/alertmanager", content="{", headers={"Authorization": f"Basic {basic}"})
        signaller.failure = unreachable()
        await client.post("/alertmanager", content=alertmanager(am_alert(fingerprint="new")), headers=BEARER)
        signaller.failure = RuntimeError("boom")
        await client.post("/alertmanager", content=alertmanager(am_alert(fingerprint="newer")), headers=BEARER)
    out, err = capsys.readouterr()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records) + out + err
    assert "alerts.accepted" in logged and "alerts.refused" in logged and "alerts.failed" in logged
    assert TOKEN not in logged
    assert basic not in logged


# --- TemporalSignaller: the signal-with-start it makes ---------------------------------------------------


class FakeTemporal:
    namespace = "default"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, Any, dict[str, Any]]] = []

    async def start_workflow(self, workflow: Any, arg: Any, **options: Any) -> None:
        self.calls.append((workflow, arg, options))
        if self.error is not None:
            raise self.error


def evidence() -> AlertEvidence:
    from evac.alerting.payloads import parse_alertmanager

    return parse_alertmanager(alertmanager())[0]


async def test_the_signaller_signal_with_starts_the_regions_guardian_by_name() -> None:
    temporal = FakeTemporal()

    async def connect() -> Any:
        return temporal

    signaller = TemporalSignaller(connect, "evac-queue", timeout=2)
    batch = AlertBatch(alerts=[evidence()], received_at=evidence().starts_at)
    start = GuardianInput(region="europe-west1")
    await signaller.alerts("europe-west1", batch, start)
    await signaller.configure("europe-west1", GuardianConfig(policy=GuardianPolicy(), plans=[]), start)
    [(workflow, arg, options), (_, _, configure)] = temporal.calls
    assert (workflow, arg) == ("RegionGuardianWorkflow", start)
    assert options["id"] == "guardian/europe-west1" and options["task_queue"] == "evac-queue"
    assert (options["start_signal"], options["start_signal_args"]) == ("alerts", [batch])
    assert options["id_conflict_policy"] == WorkflowIDConflictPolicy.USE_EXISTING
    assert configure["start_signal"] == "configure"


@pytest.mark.parametrize("status", [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED])
async def test_the_signaller_turns_temporal_unavailable_into_unavailable(status: RPCStatusCode) -> None:
    temporal = FakeTemporal(RPCError("server down", status, b""))

    async def connect() -> Any:
        return temporal

    with pytest.raises(Unavailable):
        await TemporalSignaller(connect, "evac").alerts(
            "europe-west1",
            AlertBatch(alerts=[evidence()], received_at=evidence().starts_at),
            GuardianInput(region="europe-west1"),
        )


async def test_the_signaller_connects_again_after_temporal_was_unreachable() -> None:
    attempts: list[int] = []
    temporal = FakeTemporal()

    async def connect() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise unreachable()
        return temporal

    signaller = TemporalSignaller(connect, "evac")
    batch = AlertBatch(alerts=[evidence()], received_at=evidence().starts_at)
    with pytest.raises(TemporalUnreachable):
        await signaller.alerts("europe-west1", batch, GuardianInput(region="europe-west1"))
    await signaller.alerts("europe-west1", batch, GuardianInput(region="europe-west1"))
    assert len(attempts) == 2 and len(temporal.calls) == 1


# --- Settings and the command ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("EVAC_ALERTS_TOKEN", "EVAC_ALERTS_PLANS", "EVAC_ALERTS_POLICY", "EVAC_GCP_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    config_file = tmp_path / "config.toml"
    monkeypatch.setenv("EVAC_CONFIG", str(config_file))
    return config_file


def test_settings_read_the_token_hidden_and_the_policy_table(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env.write_text('[alerts_policy]\nmin_duration = "2m"\nmin_alerts = 2\ncooldown = "1h"\napprovers = ["alice"]\n')
    monkeypatch.setenv("EVAC_ALERTS_TOKEN", TOKEN)
    settings = Settings.load()
    assert settings.alerts_token == TOKEN and TOKEN not in repr(settings)
    assert settings.alerts_policy.min_duration.total_seconds() == 120
    assert settings.alerts_policy.min_alerts == 2 and settings.alerts_policy.approvers == ["alice"]
    assert (settings.alerts_region_label, settings.alerts_service_label) == ("region", "service")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[alerts_policy]\nmin_alerts = 0\n", "alerts_policy.min_alerts in "),
        ("[alerts_policy]\nmin_alerts = true\n", "alerts_policy.min_alerts in "),
        ('[alerts_policy]\ncooldown = "soon"\n', "alerts_policy.cooldown in "),
        ("[alerts_policy]\nmax_per_hours = 3\n", "alerts_policy.max_per_hours in "),
        ('alerts_policy = "strict"\n', "alerts_policy in "),
        ('alerts_region_label = "a region"\n', "alerts_region_label (EVAC_ALERTS_REGION_LABEL or "),
    ],
)
def test_bad_alert_settings_name_the_key(clean_env: Path, toml: str, message: str) -> None:
    clean_env.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.load()


def test_a_bad_token_is_refused_without_showing_it(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAC_ALERTS_TOKEN", "has a space")
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    assert "alerts_token" in str(raised.value) and "has a space" not in str(raised.value)


def command() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve)
    return app


def test_the_command_refuses_to_start_without_a_token(clean_env: Path, plans: Path) -> None:
    result = CliRunner().invoke(command(), ["--plans", str(plans)])
    assert result.exit_code == 2
    assert "the alert receiver needs a token" in result.output and "--insecure-no-auth" in result.output


def test_the_command_refuses_a_missing_or_bad_plans_folder(clean_env: Path, plans: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAC_ALERTS_TOKEN", TOKEN)
    result = CliRunner().invoke(command(), [])
    assert result.exit_code == 2 and "no plans folder" in result.output
    shutil.copy(ROOT / "plans" / "demo" / "drill.yaml", plans)
    result = CliRunner().invoke(command(), ["--plans", str(plans)])
    assert result.exit_code == 2 and "drill.yaml" in result.output
    assert TOKEN not in result.output


def test_auto_is_off_by_default_leaves_digests_alone_and_must_be_a_boolean(plans: Path) -> None:
    from evac.plan import load_plan

    failover = plans / "failover.yaml"
    auto = load_plan(failover)
    assert auto.auto and auto.model_dump(mode="json")["auto"] is True
    failover.write_text(failover.read_text().replace("auto: true", "auto: false"))
    manual = load_plan(failover)
    assert not manual.auto and "auto" not in manual.model_dump(mode="json")
    assert manual.digest() != auto.digest()
    [plan] = load_guardian_plans(plans)["europe-west1"][:1]
    assert plan.auto is False
    failover.write_text(failover.read_text().replace("auto: false", 'auto: "yes"'))
    with pytest.raises(InvalidDocument) as raised:
        load_plan(failover)
    assert [e.path for e in raised.value.errors] == ["auto"]


async def test_a_refusal_while_retrying_the_configuration_is_logged_once(
    plans: Path, signaller: FakeSignaller, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    signaller.configure_failure = unreachable()
    async with running(create_app(config(plans, configure_retry=0.01), signaller)) as client:
        signaller.configure_failure = RuntimeError("refused for good")
        await asyncio.sleep(0.1)
        assert (await client.get("/healthz")).json()["pending"] == ["europe-west1"]
        # deliveries still carry the plans in the guardian's start input
        assert (await client.post("/alertmanager", content=alertmanager(), headers=BEARER)).status_code == 202
    out, err = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records) + out + err
    assert logged.count("alerts.configure_gave_up") == 1 and "refused for good" in logged
    assert len(signaller.alerts_sent[0][2].plans) == 2


def test_the_policys_approver_groups_are_resolved_into_plans_not_marked_auto(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "topology.yaml").write_text((DEMO / "topology.yaml").read_text())
    (plans / "manual.yaml").write_text((DEMO / "failover.yaml").read_text())  # not auto: an approval step is added
    [plan, *_] = load_guardian_plans(plans, approver_groups={"sre": ["alice"]}, policy_approvers=["group:sre"])["europe-west1"]
    assert not plan.auto and plan.input.approver_groups == {"sre": ["alice"]}
    with pytest.raises(BadInput, match="alerts_policy.approvers names group 'oncall'"):
        load_guardian_plans(plans, approver_groups={"sre": ["alice"]}, policy_approvers=["group:oncall"])


async def test_deliveries_are_read_and_parsed_a_few_at_a_time_and_the_rest_wait_or_get_503(
    plans: Path, signaller: FakeSignaller
) -> None:
    """Issue 20, item 9: every delivery was parsed on the event loop at once, unbounded (200
    concurrent maximum bodies: 2.77 GB, /healthz timing out). Now at most parse_concurrency
    are read and parsed at once, each parse in a thread; one that waits parse_wait for its turn
    is refused 503 (the sender retries) without its body ever being read; /healthz answers."""
    body = alertmanager().encode()
    release = asyncio.Event()
    read_second = False

    async def slow() -> AsyncIterator[bytes]:  # holds the one turn until released
        yield body[:10]
        await release.wait()
        yield body[10:]

    async def second() -> AsyncIterator[bytes]:
        nonlocal read_second
        read_second = True
        yield body

    app = create_app(config(plans, parse_concurrency=1, parse_wait=0.3), signaller)
    async with running(app) as client:
        first = asyncio.create_task(client.post("/alertmanager", content=slow(), headers=BEARER))
        await asyncio.sleep(0.05)
        waited = await client.post("/alertmanager", content=second(), headers=BEARER)
        assert waited.status_code == 503 and "the receiver is busy" in waited.json()["error"]
        assert not read_second  # refused before its body was read
        assert (await client.get("/healthz")).status_code == 200  # the loop is free meanwhile
        release.set()
        assert (await first).status_code == 202
    assert len(signaller.alerts_sent) == 1


async def test_a_delivery_of_many_alerts_is_signalled_in_batches_that_fit_temporal(
    client: httpx.AsyncClient, signaller: FakeSignaller
) -> None:
    """Issue 20, item 3: 14,000 alerts without fingerprints in a 997 KB body became one 2.59 MB
    signal (Temporal refused it: 500, the alerts lost). Now one signal per SIGNAL_ALERTS alerts,
    each far below the 2 MB payload limit, and every alert is signalled."""
    from evac.alerting.receiver import SIGNAL_ALERTS

    many = [
        {"status": "firing", "labels": {"alertname": f"A{i}", "region": "europe-west1"}, "startsAt": "2026-12-06T10:00:00Z"}
        for i in range(3 * SIGNAL_ALERTS + 7)
    ]
    body = alertmanager(*many)
    assert len(body) < 1024 * 1024
    answer = await client.post("/alertmanager", content=body, headers=BEARER)
    assert answer.status_code == 202 and answer.json()["accepted"] == len(many)
    batches = [batch for _, batch, _ in signaller.alerts_sent]
    assert [len(batch.alerts) for batch in batches] == [SIGNAL_ALERTS] * 3 + [7]
    assert all(len(batch.model_dump_json()) < 512 * 1024 for batch in batches)


# --- read timeouts (issue 20, item 10) -------------------------------------------------------------
# The server closes a connection whose request headers do not arrive in time (2,000 half-sent
# requests held 2,000 descriptors for ever), and a body that does not arrive in time is refused
# 408. A real uvicorn server on a loopback port, with a short header timeout; the test waits for
# the server to close, not for a time.


async def _closed(sock: socket.socket, within: float = 30.0) -> bool:
    """Whether the server closed ``sock`` (a read gives end of file) within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        data = await asyncio.wait_for(loop.sock_recv(sock, 1024), within)
    except (TimeoutError, ConnectionResetError):
        return False
    return data == b"" or data.startswith(b"HTTP/1.1 4")


async def test_half_sent_requests_are_closed_when_their_headers_are_late(plans: Path, signaller: FakeSignaller) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config(plans), signaller),
            host="127.0.0.1",
            port=port,
            http=with_header_timeout(0.5),
            log_level="warning",
            log_config=None,
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        half_sent = []
        for _ in range(20):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, b"POST /alertmanager HTTP/1.1\r\nHost: receiver\r\nContent-Le")
            half_sent.append(sock)
        assert all(await asyncio.gather(*(_closed(sock) for sock in half_sent)))
        for sock in half_sent:
            sock.close()
    finally:
        server.should_exit = True
        await serving


async def test_a_body_that_does_not_arrive_in_time_is_refused_408(plans: Path, signaller: FakeSignaller) -> None:
    body = alertmanager().encode()
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield body[:10]
        await never.wait()
        yield body[10:]

    async with running(create_app(config(plans, body_timeout=0.2), signaller)) as client:
        answer = await client.post("/alertmanager", content=stalled(), headers=BEARER)
    assert answer.status_code == 408 and "did not arrive within 0.2s" in answer.json()["error"]
    assert signaller.alerts_sent == []
