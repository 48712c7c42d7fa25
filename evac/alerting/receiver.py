"""The alert receiver (``evac alerts serve``): a FastAPI app that takes Alertmanager, Cloud
Monitoring and Pub/Sub push deliveries and hands each region's alerts to its guardian.

Every delivery goes through the same stages, and a refused one signals nothing:

1. authentication (on unless the receiver was built without a token): ``Authorization: Bearer
   <token>``, or HTTP basic auth with the token as the password (any user); else 401;
2. size: a body over ``max_body`` (Content-Length, and counted while reading) is 413;
3. parsing (:mod:`evac.alerting.payloads`): a malformed delivery, or an alert without a region, is
   422 with ``{"error": "<one sentence>"}``;
4. one signal-with-start per region (``RegionGuardianWorkflow``, id ``guardian/<region>``,
   signal ``alerts``), awaited before the answer: 202 ``{"accepted": n, "regions": [...]}``,
   or 503 when Temporal cannot be reached in time, so the sender retries (Alertmanager does).

The receiver keeps no evidence (the guardians do). As storm relief it coalesces an alert that is
already being signalled, or was signalled in the last few seconds in the same state, with that
signal (still counted as accepted). At startup it loads the plans folder (every ``*.yaml`` but
``topology.yaml``, each checked against ``topology.yaml``), groups the plans by source region,
and sends each such region's guardian its policy and plans (signal ``configure``).

The token is never logged, and neither is the Authorization header.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from evac import workflow_types
from evac.alerting.models import (
    MAX_BATCH_ALERTS,
    AlertBatch,
    AlertEvidence,
    GuardianConfig,
    GuardianInput,
    GuardianPlan,
    GuardianPolicy,
)
from evac.alerting.models import guardian_workflow_id as guardian_id
from evac.alerting.payloads import (
    AlertmanagerWebhook,
    CloudMonitoringNotification,
    Labels,
    ParseError,
    Parser,
    PubSubPush,
    parse,
)
from evac.control.start import failover_inputs
from evac.documents import DocumentError, InvalidDocument
from evac.errors import BadInput, TemporalUnavailable, Unavailable, WrongProject, from_rpc
from evac.evacuation import EvacuationInput, EvacuationRefused, plan_groups
from evac.plan import load_plan
from evac.runs import Trigger
from evac.topology import load_topology

log = structlog.get_logger("evac.alert_receiver")

GUARDIAN_WORKFLOW = workflow_types.GUARDIAN
"""The guardian's workflow type, by name: the receiver never imports workflow code."""
ALERTS_SIGNAL = "alerts"
CONFIGURE_SIGNAL = "configure"
MAX_BODY = 1024 * 1024
# Alerts per signal to a guardian (each at most about 1 KiB as evidence: the model bounds them).
SIGNAL_ALERTS = MAX_BATCH_ALERTS
# Deliveries read and parsed at once: a parse of a maximum body takes tens of MiB at its peak.
PARSE_CONCURRENCY = 4
BODY_TIMEOUT = 30.0
PARSE_WAIT = 30.0
TOPOLOGY_FILE = "topology.yaml"
MAX_RECENT = 50_000
_CHALLENGE = 'Bearer realm="evac-alerts", Basic realm="evac-alerts"'
_SIGNAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# --- Configuration and plans ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverConfig:
    """How the receiver authenticates, parses and what it configures the guardians with."""

    token: str | None = field(repr=False)
    """The shared secret senders present; None only on purpose (``--insecure-no-auth``)."""
    plans_dir: Path | None = None
    """The folder of plans alerts may start (loaded at startup); None: no plans."""
    labels: Labels = Labels()
    policy: GuardianPolicy = field(default_factory=GuardianPolicy)
    approver_groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    gcp_project: str | None = None
    """The project guard (EVAC_GCP_PROJECT): plans of another project's topology are refused."""
    max_body: int = MAX_BODY
    body_timeout: float = BODY_TIMEOUT
    """Seconds a delivery's body may take to arrive once its turn came (408 after)."""
    parse_concurrency: int = PARSE_CONCURRENCY
    """Deliveries read and parsed at once (each body up to ``max_body``); the rest wait their turn."""
    parse_wait: float = PARSE_WAIT
    """Seconds a delivery waits for its turn before it is refused 503 (the sender retries)."""
    coalesce_window: float = 5.0
    """Seconds an alert signalled in one state is not signalled again in the same state (0: off)."""
    configure_retry: float = 10.0
    """Seconds between attempts to configure the guardians while Temporal cannot be reached."""
    readiness_refresh: float = 30.0
    """Seconds a scrape of /metrics serves the readiness gauges from the last read of Temporal (0: read at every scrape)."""

    def __post_init__(self) -> None:
        if self.token is not None and not self.token:
            raise ValueError("the receiver's token is empty; give a token, or None to turn authentication off on purpose")
        if self.max_body < 1:
            raise ValueError(f"max_body must be at least 1 byte, not {self.max_body}")
        if not self.readiness_refresh >= 0:
            raise ValueError(f"readiness_refresh must be at least 0 seconds, not {self.readiness_refresh}")


def _placeholder_trigger(region: str) -> Trigger:
    return Trigger(kind="alert", by=f"evac-guardian/{region}", reason="(the guardian fills in the alerts it fires on)")


def load_guardian_plans(
    folder: Path,
    *,
    approver_groups: Mapping[str, Sequence[str]] | None = None,
    gcp_project: str | None = None,
    policy_approvers: Sequence[str] = (),
) -> dict[str, list[GuardianPlan]]:
    """The plans folder as each source region's guardian plans (one per service), by region.

    Every ``*.yaml`` in ``folder`` except ``topology.yaml`` is a plan, checked against
    ``folder/topology.yaml``. Raises InvalidDocument with every error of every file (a plan that
    does not validate, a ``kind: drill`` plan, a service that two plans fail over out of the same
    region), or BadInput naming the folder (not a folder, no topology, no plans) or the plan (an
    approver group the configuration lacks), or WrongProject.

    A plan not marked ``auto`` starts with an approval step by ``policy_approvers``
    (``[alerts_policy] approvers``): the members of the groups they name are resolved here, into
    each such plan's input, as ``evac failover`` resolves a plan's own groups.
    """
    groups = approver_groups or {}
    named = [a.removeprefix("group:") for a in policy_approvers if a.startswith("group:")]
    unknown = [name for name in named if name not in groups]
    if unknown:
        raise BadInput(
            f"alerts_policy.approvers names group '{unknown[0]}', which [approver_groups] in the config file does not define"
        )
    policy_groups = {name: list(groups[name]) for name in named}
    where = f"plans folder '{folder}'"
    if not folder.is_dir():
        raise BadInput(f"{where} is not a folder (--plans or alerts_plans names the folder of plans alerts may start)")
    topology_path = folder / TOPOLOGY_FILE
    if not topology_path.is_file():
        raise BadInput(f"{where} has no {TOPOLOGY_FILE}; the plans in it are checked against that topology")
    paths = sorted(path for path in folder.glob("*.yaml") if path.name != TOPOLOGY_FILE)
    if not paths:
        raise BadInput(f"{where} has no plans (*.yaml files besides {TOPOLOGY_FILE})")
    topology = load_topology(topology_path)
    if gcp_project and gcp_project != topology.project:
        raise WrongProject(topology.project, gcp_project)
    errors: list[DocumentError] = []
    plans: dict[str, list[GuardianPlan]] = {}
    owner: dict[tuple[str, str], Path] = {}
    for path in paths:
        try:
            plan = load_plan(path, topology)
        except InvalidDocument as invalid:
            errors += invalid.errors
            continue
        if plan.kind == "drill":
            errors.append(
                DocumentError(
                    str(path),
                    "kind",
                    "a kind: drill plan runs with 'evac drill', and alerts start failovers only; move it out of the plans folder",
                )
            )
            continue
        clashes = [(i, s) for i, s in enumerate(plan.services) if (plan.source, s) in owner]
        for i, service in clashes:
            errors.append(
                DocumentError(
                    str(path),
                    f"services[{i}]",
                    f"service '{service}' out of {plan.source} is also in {owner[(plan.source, service)]}; "
                    "an alert must name one plan, so keep one",
                )
            )
        if clashes:
            continue
        try:
            inputs = failover_inputs(plan, topology, _placeholder_trigger(plan.source), approver_groups=approver_groups)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None
        for input in inputs:
            if not plan.auto and policy_groups:
                input.approver_groups = {**input.approver_groups, **policy_groups}
            owner[(plan.source, input.service)] = path
            plans.setdefault(plan.source, []).append(
                GuardianPlan(service=input.service, plan_name=plan.name, target=plan.target, auto=plan.auto, input=input)
            )
    if errors:
        raise InvalidDocument(errors)
    return {region: sorted(found, key=lambda p: p.service) for region, found in sorted(plans.items())}


def load_guardian_evacuations(folder: Path, *, gcp_project: str | None = None) -> dict[str, EvacuationInput]:
    """Each region's evacuation, from ``folder/topology.yaml``, for ``[alerts_policy] region_wide =
    "evacuate"``: every service the topology places in the region, by tier, auto-target (each to
    its healthiest region); the trigger is filled in when a guardian fires. Raises BadInput naming
    the folder (no topology) or WrongProject; the topology's own errors as load_topology does."""
    topology_path = folder / TOPOLOGY_FILE
    if not topology_path.is_file():
        raise BadInput(f"plans folder '{folder}' has no {TOPOLOGY_FILE}; region_wide = evacuate moves the services it names")
    topology = load_topology(topology_path)
    if gcp_project and gcp_project != topology.project:
        raise WrongProject(topology.project, gcp_project)
    regions = sorted({region for spec in topology.services.values() for region in spec.regions})
    try:
        return {
            region: EvacuationInput(
                region=region,
                target=None,
                project=topology.project,
                groups=plan_groups(topology, region, target=None),
                trigger=_placeholder_trigger(region),
            )
            for region in regions
        }
    except EvacuationRefused as exc:
        raise BadInput(f"plans folder '{folder}': region_wide = evacuate cannot evacuate every region: {exc}") from None


# --- Signalling the guardians -----------------------------------------------------------------


class Signaller(Protocol):
    """How the receiver reaches the guardians. Raises :class:`evac.errors.Unavailable` when
    Temporal cannot be reached or does not answer in time (the receiver answers 503)."""

    async def alerts(self, region: str, batch: AlertBatch, start: GuardianInput) -> None: ...

    async def configure(self, region: str, config: GuardianConfig, start: GuardianInput) -> None: ...

    async def unreachable(self) -> str | None:
        """Why Temporal cannot be reached now (None: it answers): what ``/readyz`` reports."""
        ...


class TemporalSignaller:
    """Signal-with-start of the region's ``RegionGuardianWorkflow``.

    ``client``: a connected client, or an async function that connects (called on first use, and
    again after a failed attempt, so the receiver can start before Temporal does).
    """

    def __init__(self, client: Client | Callable[[], Awaitable[Client]], task_queue: str, *, timeout: float = 5.0) -> None:
        self._client: Client | None = client if isinstance(client, Client) else None
        self._connect = None if isinstance(client, Client) else client
        self._lock = asyncio.Lock()
        self.task_queue = task_queue
        self.timeout = timeout

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                assert self._connect is not None
                try:
                    self._client = await asyncio.wait_for(self._connect(), self.timeout)
                except TimeoutError:
                    raise TemporalUnavailable(f"connecting took longer than {self.timeout:g}s") from None
            return self._client

    async def alerts(self, region: str, batch: AlertBatch, start: GuardianInput) -> None:
        await self._signal_with_start(region, ALERTS_SIGNAL, batch, start)

    async def unreachable(self) -> str | None:
        try:
            client = await self.client()
            if not await client.service_client.check_health(timeout=timedelta(seconds=self.timeout)):
                return "its health check says it is not serving"
        except (Unavailable, TemporalUnavailable) as exc:
            return str(exc)
        except RPCError as exc:
            return f"Temporal did not answer its health check: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a connection that cannot be made at all (refused, bad address)
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    async def configure(self, region: str, config: GuardianConfig, start: GuardianInput) -> None:
        await self._signal_with_start(region, CONFIGURE_SIGNAL, config, start)

    async def _signal_with_start(self, region: str, signal: str, arg: BaseModel, start: GuardianInput) -> None:
        client = await self.client()
        workflow_id = guardian_id(region)
        try:
            await asyncio.wait_for(
                client.start_workflow(
                    GUARDIAN_WORKFLOW,
                    start,
                    id=workflow_id,
                    task_queue=self.task_queue,
                    start_signal=signal,
                    start_signal_args=[arg],
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    rpc_timeout=timedelta(seconds=self.timeout),
                    static_summary=f"Evac guardian of {region}: decides automatic failovers on its alerts",
                ),
                self.timeout + 1,
            )
        except RPCError as exc:
            raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
        except TimeoutError:
            raise TemporalUnavailable(f"signalling {workflow_id} took longer than {self.timeout:g}s") from None


# --- The HTTP side ----------------------------------------------------------------------------


class Accepted(BaseModel):
    accepted: int
    regions: list[str]
    unknown_regions: list[str] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Regions of alerts that were not signalled: no loaded topology has them (counted in /metrics)",
    )


class Problem(BaseModel):
    error: str


class ReceiverMetrics:
    """The receiver's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "evac_alert_receiver_requests",
            "Deliveries received, by endpoint and HTTP status code",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "evac_alert_receiver_alerts_accepted",
            "Alerts accepted (handed to a guardian, or coalesced with a signal that was)",
            ["source", "state"],
            registry=self.registry,
        )
        self.coalesced = Counter(
            "evac_alert_receiver_alerts_coalesced",
            "Accepted alerts not signalled again: the same alert in the same state was signalled moments before",
            registry=self.registry,
        )
        self.signal_seconds = Histogram(
            "evac_alert_receiver_signal_seconds",
            "Time to signal-with-start a guardian",
            ["signal"],
            buckets=_SIGNAL_BUCKETS,
            registry=self.registry,
        )
        self.unknown_region = Counter(
            "evac_alert_receiver_alerts_unknown_region",
            "Alerts not signalled because no loaded topology has their region (no guardian is started for it)",
            registry=self.registry,
        )
        self.signal_failures = Counter(
            "evac_alert_receiver_signal_failures",
            "Signals that failed (the delivery was answered 503 or 500)",
            ["signal"],
            registry=self.registry,
        )


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


_Identity = tuple[str, str, str]  # region, source, key
_AlertState = tuple[bool, datetime]  # firing, starts_at


def _authorized(header: str | None, token: bytes) -> bool:
    """Bearer <token>, or Basic with the token as the password (any user); compared in constant time."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        supplied = value.encode()
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        _, colon, supplied = decoded.partition(b":")
        if not colon:
            return False
    else:
        return False
    return secrets.compare_digest(supplied, token)


class _Receiver:
    """The app's state: plans, which guardians are configured, signals in flight and recent."""

    def __init__(self, config: ReceiverConfig, signaller: Signaller, metrics: ReceiverMetrics) -> None:
        self.config = config
        self.signaller = signaller
        self.metrics = metrics
        self.token = config.token.encode() if config.token is not None else None
        self.plans: dict[str, list[GuardianPlan]] = {}
        self.evacuations: dict[str, EvacuationInput] = {}
        # The regions of the loaded topology (None: no plans folder, every region is taken).
        self.known_regions: set[str] | None = None
        self.configured: set[str] = set()
        self._inflight: dict[_Identity, tuple[_AlertState, asyncio.Future[None]]] = {}
        self._recent: dict[_Identity, tuple[_AlertState, float]] = {}
        # At most this many deliveries are read and parsed at once, each in a thread: the event
        # loop stays free (/healthz answers under load) and the memory bodies and their parses
        # take is bounded, however many deliveries arrive together. The others wait unread.
        self._parsing = asyncio.Semaphore(config.parse_concurrency)

    def guardian_config(self, region: str) -> GuardianConfig:
        return GuardianConfig(
            policy=self.config.policy, plans=self.plans.get(region, []), evacuation=self.evacuations.get(region)
        )

    def start_input(self, region: str) -> GuardianInput:
        return GuardianInput(
            region=region,
            policy=self.config.policy,
            plans=self.plans.get(region, []),
            evacuation=self.evacuations.get(region),
        )

    def regions(self) -> list[str]:
        """The regions whose guardian the receiver configures: those with plans, and (region_wide =
        evacuate) those with an evacuation."""
        return sorted(set(self.plans) | set(self.evacuations))

    # Startup: configure every region that has plans.

    async def configure_all(self) -> list[str]:
        """Configure the guardians not configured yet; the regions still pending (Temporal unreachable)."""
        pending = [region for region in self.regions() if region not in self.configured]
        for region in pending:
            config = self.guardian_config(region)
            started = time.perf_counter()
            try:
                await self.signaller.configure(region, config, self.start_input(region))
            except Unavailable as exc:
                self.metrics.signal_failures.labels(CONFIGURE_SIGNAL).inc()
                log.warning("alerts.configure_failed", region=region, error=str(exc), retry_in=self.config.configure_retry)
                continue
            self.metrics.signal_seconds.labels(CONFIGURE_SIGNAL).observe(time.perf_counter() - started)
            self.configured.add(region)
            log.info("alerts.guardian_configured", region=region, workflow_id=guardian_id(region), plans=len(config.plans))
        return [region for region in self.regions() if region not in self.configured]

    async def keep_configuring(self) -> None:
        """Retry the guardians still pending until each is configured (a background task)."""
        try:
            while await self.configure_all():
                await asyncio.sleep(self.config.configure_retry)
        except Exception as exc:  # not transient (a refusal): said once, and the alerts still carry the plans
            log.error(
                "alerts.configure_gave_up",
                error=f"{type(exc).__name__}: {exc}",
                pending=sorted(set(self.regions()) - self.configured),
            )

    # A delivery.

    def authenticate(self, request: Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("authorization")
        if not _authorized(header, self.token):
            reason = (
                "the request has no credentials: send 'Authorization: Bearer <token>', or basic auth with the token as password"
                if not header
                else "the credentials were not accepted (a bearer token, or HTTP basic auth with the token as password)"
            )
            raise _Refusal(401, reason, {"WWW-Authenticate": _CHALLENGE})

    async def read_and_parse(self, request: Request, kind: Parser) -> list[AlertEvidence]:
        """The delivery's alerts, read and parsed in its turn (``parse_concurrency`` at once, the
        parse in a thread); a delivery that waited ``parse_wait`` for its turn is refused 503."""
        try:
            async with asyncio.timeout(self.config.parse_wait):  # a cancelled acquire passes its turn on
                await self._parsing.acquire()
        except TimeoutError:
            raise _Refusal(
                503, f"the receiver is busy: no turn to read the delivery within {self.config.parse_wait:g}s; retry it"
            ) from None
        try:
            body = await self.read_body(request)
            return await asyncio.to_thread(parse, kind, body, self.config.labels)
        except ParseError as exc:
            raise _Refusal(422, f"{exc}; nothing was signalled") from None
        finally:
            self._parsing.release()

    async def read_body(self, request: Request) -> bytes:
        limit = self.config.max_body
        too_big = f"the body is over {limit} bytes, the receiver's limit; nothing was signalled"
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _Refusal(400, "the Content-Length header is not a number of bytes")
            if int(length) > limit:
                raise _Refusal(413, too_big)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.config.body_timeout):  # a body sent slowly holds a turn no longer
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _Refusal(413, too_big)
                    chunks.append(chunk)
        except TimeoutError:
            raise _Refusal(408, f"the body did not arrive within {self.config.body_timeout:g}s; nothing was signalled") from None
        return b"".join(chunks)

    async def deliver(self, alerts: list[AlertEvidence]) -> list[str]:
        """Signal each region's alerts (concurrently); the regions. Raises Unavailable if any failed."""
        received_at = datetime.now(UTC)
        by_region: dict[str, list[AlertEvidence]] = {}
        for alert in alerts:
            by_region.setdefault(alert.region, []).append(alert)
        results = await asyncio.gather(
            *(self._signal_region(region, found, received_at) for region, found in by_region.items()), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        for failure in failures:
            if not isinstance(failure, Exception):
                raise failure
        if failures:
            raise failures[0]
        for alert in alerts:
            self.metrics.alerts.labels(alert.source, "firing" if alert.firing else "resolved").inc()
        return list(by_region)

    async def _signal_region(self, region: str, alerts: list[AlertEvidence], received_at: datetime) -> None:
        now = time.monotonic()
        fresh: list[AlertEvidence] = []
        waits: list[asyncio.Future[None]] = []
        for alert in alerts:
            identity, state = (region, alert.source, alert.key), (alert.firing, alert.starts_at)
            flying = self._inflight.get(identity)
            recent = self._recent.get(identity)
            if flying is not None and flying[0] == state:
                waits.append(flying[1])
            elif recent is not None and recent[0] == state and now - recent[1] < self.config.coalesce_window:
                self.metrics.coalesced.inc()
            else:
                fresh.append(alert)
        # One signal per SIGNAL_ALERTS alerts: each stays far below Temporal's payload limit
        # however many alerts one delivery holds (14,000 in 1 MiB would be a 2.6 MB signal).
        for start in range(0, len(fresh), SIGNAL_ALERTS):
            await self._signal(region, fresh[start : start + SIGNAL_ALERTS], received_at)
        for wait in waits:
            await asyncio.shield(wait)
            self.metrics.coalesced.inc()

    async def _signal(self, region: str, alerts: list[AlertEvidence], received_at: datetime) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        identities = [((region, a.source, a.key), (a.firing, a.starts_at)) for a in alerts]
        for identity, state in identities:
            self._inflight[identity] = (state, future)
        started = time.perf_counter()
        try:
            await self.signaller.alerts(region, AlertBatch(alerts=alerts, received_at=received_at), self.start_input(region))
        except BaseException as exc:
            self.metrics.signal_failures.labels(ALERTS_SIGNAL).inc()
            future.set_exception(exc if isinstance(exc, Exception) else TemporalUnavailable("the signal was cancelled"))
            future.exception()  # retrieved: whoever waits on it raises it too
            raise
        else:
            self.metrics.signal_seconds.labels(ALERTS_SIGNAL).observe(time.perf_counter() - started)
            future.set_result(None)
            done = time.monotonic()
            for identity, state in identities:
                self._recent[identity] = (state, done)
            self._prune(done)
        finally:
            for identity, _ in identities:
                if identity in self._inflight and self._inflight[identity][1] is future:
                    del self._inflight[identity]

    def _prune(self, now: float) -> None:
        if len(self._recent) <= MAX_RECENT:
            return
        window = self.config.coalesce_window
        self._recent = {key: value for key, value in self._recent.items() if now - value[1] < window}
        if len(self._recent) > MAX_RECENT:
            self._recent.clear()

    async def receive(self, request: Request, kind: Parser) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.authenticate(request)
        alerts = await self.read_and_parse(request, kind)
        unknown = sorted({a.region for a in alerts} - self.known_regions) if self.known_regions is not None else []
        if unknown:
            # A guardian of a region no topology has would decide nothing, for ever: none is started.
            self.metrics.unknown_region.inc(sum(1 for a in alerts if a.region in unknown))
            alerts = [a for a in alerts if a.region not in unknown]
            named, known = ", ".join(repr(r) for r in unknown), ", ".join(sorted(self.known_regions or ()))
            log.warning("alerts.unknown_region", regions=unknown, known=sorted(self.known_regions or ()))
            if not alerts:
                raise _Refusal(422, f"region {named} is in no loaded topology (it has: {known}); nothing was signalled")
        try:
            regions = await self.deliver(alerts)
        except Unavailable as exc:
            raise _Refusal(503, f"the alerts could not be handed to Temporal, retry the delivery: {exc}") from None
        log.info("alerts.accepted", source=kind, alerts=len(alerts), regions=regions)
        return 202, Accepted(accepted=len(alerts), regions=regions, unknown_regions=unknown).model_dump(), {}


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the endpoint reads itself (to bound its size before parsing)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No or wrong credentials; nothing was signalled"},
    408: {"model": Problem, "description": "The body did not arrive in time; nothing was signalled"},
    413: {"model": Problem, "description": "The body is over the receiver's limit; nothing was signalled"},
    422: {"model": Problem, "description": "Malformed, or an alert without a region; nothing was signalled"},
    503: {"model": Problem, "description": "Temporal could not be reached in time; retry the delivery"},
}
_BODIES: tuple[type[BaseModel], ...] = (AlertmanagerWebhook, CloudMonitoringNotification, PubSubPush)


# The delivery endpoints: path, payload kind, its documented model, summary.
ENDPOINTS: tuple[tuple[str, Parser, type[BaseModel], str], ...] = (
    ("/alertmanager", "alertmanager", AlertmanagerWebhook, "An Alertmanager webhook delivery (webhook_configs, version 4)"),
    (
        "/cloud-monitoring",
        "cloud_monitoring",
        CloudMonitoringNotification,
        "A Google Cloud Monitoring webhook notification (schema 1.2)",
    ),
    ("/pubsub", "pubsub", PubSubPush, "A Pub/Sub push delivery of a Cloud Monitoring notification (base64 message.data)"),
)


def _endpoint(
    handle: Callable[[Request, Parser, str], Awaitable[Response]], kind: Parser, path: str
) -> Callable[[Request], Awaitable[Response]]:
    async def receive_delivery(request: Request) -> Response:
        return await handle(request, kind, path)

    return receive_delivery


# What /metrics shows of readiness: each schedule's plans, by file, 'ready', 'warnings' or 'not_ready'.
ReadinessSource = Callable[[], Awaitable[Mapping[str, Mapping[str, str]]]]
READINESS_READ_TIMEOUT = 5.0


class ReadinessGauges:
    """``evac_plan_ready{schedule, plan}``: 1 while a readiness schedule's latest evaluation found
    the plan ready (warnings included), 0 while not ready; ``evac_readiness_read_ok`` says whether
    the last read of Temporal worked (the gauges keep their last values while it does not). A
    scrape reads Temporal at most every ``refresh`` seconds; the others are served from the last read."""

    def __init__(self, source: ReadinessSource, registry: CollectorRegistry, refresh: float) -> None:
        self._source = source
        self._refresh = refresh
        self._read_at = -math.inf
        self.ready = Gauge(
            "evac_plan_ready",
            "1 while the latest readiness evaluation found the plan ready (warnings included), 0 while not ready",
            ["schedule", "plan"],
            registry=registry,
        )
        self.read_ok = Gauge(
            "evac_readiness_read_ok", "1 when the last read of readiness from Temporal worked", registry=registry
        )

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._read_at < self._refresh:
            return
        self._read_at = now
        try:
            states = await asyncio.wait_for(self._source(), READINESS_READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a scrape never fails for readiness: it says so
            self.read_ok.set(0)
            log.warning("alerts.readiness_unread", error=f"{type(exc).__name__}: {exc}")
            return
        self.ready.clear()
        for schedule, plans in states.items():
            for plan, state in plans.items():
                self.ready.labels(schedule.removeprefix("evac-readiness/"), plan).set(0 if state == "not_ready" else 1)
        self.read_ok.set(1)


def create_app(config: ReceiverConfig, signaller: Signaller, readiness: ReadinessSource | None = None) -> FastAPI:
    """The receiver's ASGI app. Its lifespan loads ``config.plans_dir`` (a bad plan fails the
    startup with the file and the error) and configures each region's guardian (retried in the
    background while Temporal cannot be reached). ``readiness``: where /metrics reads the plans'
    readiness from (None: no readiness gauges)."""
    metrics = ReceiverMetrics()
    gauges = ReadinessGauges(readiness, metrics.registry, config.readiness_refresh) if readiness is not None else None
    receiver = _Receiver(config, signaller, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.plans_dir is not None:
            receiver.plans = load_guardian_plans(
                config.plans_dir,
                approver_groups=config.approver_groups,
                gcp_project=config.gcp_project,
                policy_approvers=config.policy.approvers,
            )
            if config.policy.region_wide == "evacuate":
                receiver.evacuations = load_guardian_evacuations(config.plans_dir, gcp_project=config.gcp_project)
            topology = load_topology(config.plans_dir / TOPOLOGY_FILE)
            receiver.known_regions = {region for spec in topology.services.values() for region in spec.regions}
            for region in receiver.regions():
                problem = receiver.guardian_config(region).size_problem(region)
                if problem is not None:
                    raise BadInput(f"plans folder '{config.plans_dir}': {problem}")
        log.info(
            "alerts.receiver_starting",
            plans_dir=str(config.plans_dir) if config.plans_dir else None,
            regions={region: [p.service for p in plans] for region, plans in receiver.plans.items()},
            auth="token" if config.token is not None else "off",
        )
        pending = await receiver.configure_all()
        retrying = asyncio.create_task(receiver.keep_configuring()) if pending else None
        try:
            yield
        finally:
            if retrying is not None:
                retrying.cancel()
                with suppress(asyncio.CancelledError):
                    await retrying

    app = FastAPI(
        title="Evac alert receiver",
        summary="Alertmanager, Cloud Monitoring and Pub/Sub push deliveries, handed to each region's guardian",
        version="1",
        lifespan=lifespan,
    )
    app.state.receiver = receiver
    app.state.metrics = metrics

    async def handle(request: Request, kind: Parser, endpoint: str) -> Response:
        try:
            status, body, headers = await receiver.receive(request, kind)
        except _Refusal as refusal:
            status, body, headers = refusal.status, {"error": refusal.message}, refusal.headers
            log.warning("alerts.refused", endpoint=endpoint, status=status, reason=refusal.message)
        except Exception as exc:  # never a traceback to the sender; the log has it
            status, headers = 500, {}
            body = {"error": "the receiver failed on this delivery (its log says why); nothing may have been signalled"}
            log.error("alerts.failed", endpoint=endpoint, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        metrics.requests.labels(endpoint, str(status)).inc()
        return JSONResponse(body, status_code=status, headers=headers)

    for path, kind, model, summary in ENDPOINTS:
        app.add_api_route(
            path,
            _endpoint(handle, kind, path),
            methods=["POST"],
            name=kind,
            status_code=202,
            response_model=Accepted,
            responses=_REFUSALS,
            openapi_extra=_documented(model),
            summary=summary,
        )

    @app.get("/healthz", summary="Liveness, and which guardians the receiver has configured")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "plans": {region: [plan.service for plan in plans] for region, plans in receiver.plans.items()},
            "configured": sorted(receiver.configured),
            "pending": sorted(set(receiver.regions()) - receiver.configured),
        }

    @app.get("/readyz", summary="Readiness: whether Temporal can be reached (a load balancer routes by it)")
    async def readyz() -> JSONResponse:
        why = await receiver.signaller.unreachable()
        if why is not None:
            return JSONResponse({"status": "not ready", "error": f"Temporal cannot be reached: {why}"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        if gauges is not None:
            await gauges.refresh()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _BODIES:
                body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


__all__ = [
    "ALERTS_SIGNAL",
    "CONFIGURE_SIGNAL",
    "GUARDIAN_WORKFLOW",
    "MAX_BODY",
    "ReceiverConfig",
    "ReceiverMetrics",
    "Signaller",
    "TemporalSignaller",
    "create_app",
    "load_guardian_plans",
]
