"""``evac alerts serve``: the alert receiver (:mod:`evac.alerting.receiver`) under uvicorn."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evac.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_UNAVAILABLE,
    State,
    address_option,
    connection,
    err,
    fail,
    fail_with,
    namespace_option,
    settings,
)
from evac.config import Settings, connect_temporal
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError

if TYPE_CHECKING:
    from temporalio.client import Client

    from evac.alerting.receiver import ReceiverConfig

DEFAULT_PORT = 8490
NO_TOKEN = (
    "the alert receiver needs a token to authenticate senders: set EVAC_ALERTS_TOKEN (or alerts_token in the config file), "
    "or pass --insecure-no-auth to receive without authentication; nothing was started"
)


def receiver_config(config: Settings, plans: Path | None, insecure_no_auth: bool) -> ReceiverConfig:
    """The receiver's configuration from settings and flags; exits 2 (one sentence) without a token
    (unless ``insecure_no_auth``) or a plans folder, or with a plan that cannot be used."""
    from evac.alerting.payloads import Labels
    from evac.alerting.receiver import ReceiverConfig, load_guardian_plans

    if not config.alerts_token and not insecure_no_auth:
        fail(NO_TOKEN, EXIT_BAD_INPUT)
    folder = plans or (Path(config.alerts_plans).expanduser() if config.alerts_plans else None)
    if folder is None:
        fail(
            "no plans folder: pass --plans DIR (or set alerts_plans / EVAC_ALERTS_PLANS), e.g. --plans plans/demo/auto",
            EXIT_BAD_INPUT,
        )
    try:
        load_guardian_plans(
            folder,
            approver_groups=config.approver_groups,
            gcp_project=config.gcp_project,
            policy_approvers=config.alerts_policy.approvers,
        )
    except (FrontDoorError, InvalidDocument) as exc:
        fail_with(exc)
    return ReceiverConfig(
        token=None if insecure_no_auth else config.alerts_token,
        plans_dir=folder,
        labels=Labels(region=config.alerts_region_label, service=config.alerts_service_label),
        policy=config.alerts_policy,
        approver_groups=config.approver_groups,
        gcp_project=config.gcp_project,
        readiness_refresh=config.readiness_refresh,
    )


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535),
    plans: Path = typer.Option(
        None, "--plans", help="Folder of plans alerts may start, with its topology.yaml (config alerts_plans)"
    ),
    insecure_no_auth: bool = typer.Option(
        False, "--insecure-no-auth", help="Accept deliveries without a token (a test on loopback only)"
    ),
    address: str = address_option(),
    namespace: str = namespace_option(),
) -> None:
    """Receive Alertmanager, Cloud Monitoring and Pub/Sub push alerts and hand them to each
    region's guardian, until Ctrl-C or SIGTERM (POST /alertmanager, /cloud-monitoring, /pubsub;
    GET /healthz, /metrics, /docs)."""
    import uvicorn

    from evac.alerting.receiver import TemporalSignaller, create_app
    from evac.cli.dev import _port_taken
    from evac.http_timeouts import HeaderTimeoutH11
    from evac.logging import configure_logging, forward_core_logs

    connection(address, namespace)
    config = settings()
    receiver = receiver_config(config, plans, insecure_no_auth)
    taken = _port_taken(host, port)
    if taken:
        fail(f"cannot receive alerts on {host}:{port}: {taken.lower()} (choose another --port)", EXIT_UNAVAILABLE)
    if receiver.token is None:
        err.print(
            "[bold yellow]warning:[/] --insecure-no-auth: anyone who can reach "
            f"{host}:{port} can send alerts that start failovers",
            highlight=False,
        )
    target_address, target_namespace = State.address, State.namespace

    async def connect() -> Client:
        return await connect_temporal(target_address, target_namespace, identity=config.identity)

    signaller = TemporalSignaller(connect, config.task_queue)

    async def readiness_states() -> Mapping[str, Mapping[str, str]]:
        from evac.control.readiness import latest_states

        return await latest_states(await connect())

    configure_logging()
    forward_core_logs()  # the Temporal core's own warnings as JSON lines too, not its coloured text
    err.print(
        f"receiving alerts on http://{host}:{port} (POST /alertmanager, /cloud-monitoring, /pubsub; "
        f"plans from {receiver.plans_dir}); Ctrl-C stops",
        highlight=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(receiver, signaller, readiness_states),
            host=host,
            port=port,
            ws="none",
            http=HeaderTimeoutH11,  # a request's headers must arrive within 10 s (evac/http_timeouts.py)
            log_level="warning",
            log_config=None,
            access_log=False,
        )
    )
    server.run()
    if not server.started:
        fail(f"the alert receiver did not start on {host}:{port} (the lines above say why)", EXIT_UNAVAILABLE)
