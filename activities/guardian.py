"""Facts for a region guardian's decision, read just before it decides (never decided here).

``gather_facts`` reads, all at once: the kill switch (the ``evac-auto-switch`` workflow's
``switch`` query), the automatic failovers started in the last hour (visibility), and per
candidate service its target's healthy backends (the same ``getHealth`` read as
``check_backend_health``), its target region's firing alerts (that region's guardian), whether
it has a run now (``failover/<service>``) and its newest failover (visibility).

A fact that cannot be read is unknown, never an error that fails the guardian: an unreadable
target's health is None (the ``target_unhealthy`` guard holds), an unreadable target guardian
counts as an alert in the target (``target_alerting`` holds), an unreadable kill switch reads as
disabled (no automatic decision without it), an unreadable run or newest failover is None (the
child's own start and the guardian's state still guard), an unreadable count is 0 (the
guardian's own count still caps).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from activities.health import HealthActivities
from evac.activity_api import GATHER_FACTS, FactsRequest, ServiceQuery
from evac.alerting.models import AUTO_SWITCH_ID, KillSwitch, ServiceFacts, WorldFacts, guardian_workflow_id
from evac.refs import BackendRef
from evac.runs import failover_workflow_id
from evac.workflow_types import FAILOVER
from providers.registry import Providers
from workflows.auto_switch import AutoSwitchWorkflow
from workflows.guardian import RegionGuardianWorkflow

# Each read is bounded: the decision waits for the slowest of them.
READ_TIMEOUT = timedelta(seconds=5)
# How many of a service's failovers visibility is asked for to find the newest.
NEWEST_OF = 100
CAP_WINDOW = timedelta(hours=1)
GUARDIAN = "evac-guardian"

log = structlog.get_logger("evac.activities.guardian")


def _quoted(value: str) -> str:
    """A value inside a visibility query's single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class GuardianActivities:
    """``temporal_client``: the worker's own (None: every Temporal fact is unknown, as in the
    activity-contract test); ``providers``: for the target's health."""

    def __init__(self, temporal_client: Client | None, providers: Providers) -> None:
        self._temporal = temporal_client
        self._health = HealthActivities(providers)

    @activity.defn(name=GATHER_FACTS)
    async def gather_facts(self, input: FactsRequest) -> WorldFacts:
        targets = sorted({service.target for service in input.services})
        switch, automatic, target_alerts, services = await asyncio.gather(
            self.read_switch(),
            self._automatic_last_hour(),
            asyncio.gather(*(self.target_alerts(target) for target in targets)),
            asyncio.gather(*(self._service(service) for service in input.services)),
        )
        alerts_of = dict(zip(targets, target_alerts, strict=True))
        facts = WorldFacts(
            switch=switch,
            automatic_last_hour=automatic,
            services=[service.model_copy(update={"target_alerts": alerts_of[service.target]}) for service in services],
        )
        log.info(
            "guardian facts",
            region=input.region,
            switch=switch.enabled,
            automatic_last_hour=automatic,
            services={
                s.service: {"healthy": s.target_healthy, "busy": s.busy, "alerts": len(s.target_alerts)} for s in facts.services
            },
        )
        return facts

    # --- Temporal facts -------------------------------------------------------------------

    def _client(self) -> Client:
        if self._temporal is None:
            raise RuntimeError("this worker was given no Temporal client")
        return self._temporal

    async def read_switch(self) -> KillSwitch:
        """The kill switch; not running (never set, or ended) → enabled; unreadable → disabled."""
        try:
            handle = self._client().get_workflow_handle_for(AutoSwitchWorkflow.run, AUTO_SWITCH_ID)
            record = await handle.query(
                AutoSwitchWorkflow.switch, reject_condition=QueryRejectCondition.NOT_OPEN, rpc_timeout=READ_TIMEOUT
            )
            return record.switch
        except WorkflowQueryRejectedError:
            return KillSwitch()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return KillSwitch()
            return self._unreadable_switch(exc)
        except Exception as exc:  # noqa: BLE001 - unreadable: the safe reading, never a failed decision
            return self._unreadable_switch(exc)

    def _unreadable_switch(self, exc: BaseException) -> KillSwitch:
        log.warning("kill switch unreadable", error=_why(exc))
        return KillSwitch(
            enabled=False,
            by=GUARDIAN,
            reason=f"the kill switch ({AUTO_SWITCH_ID}) could not be read ({_why(exc)}), so no automatic decision is made",
            at=datetime.now(UTC),
        )

    async def _automatic_last_hour(self) -> int:
        since = datetime.now(UTC) - CAP_WINDOW
        query = f"WorkflowType = '{FAILOVER}' AND EvacTrigger = 'alert' AND StartTime > {_quoted(_rfc3339(since))}"
        try:
            counted = await self._client().count_workflows(query, rpc_timeout=READ_TIMEOUT)
            return counted.count
        except Exception as exc:  # noqa: BLE001 - unknown: the guardian's own count still caps
            log.warning("automatic failovers in the last hour unreadable", error=_why(exc))
            return 0

    async def target_alerts(self, target: str) -> list[str]:
        """The firing alert keys of the target region's guardian; none running → none."""
        try:
            handle = self._client().get_workflow_handle_for(RegionGuardianWorkflow.run, guardian_workflow_id(target))
            status = await handle.query(
                RegionGuardianWorkflow.status, reject_condition=QueryRejectCondition.NOT_OPEN, rpc_timeout=READ_TIMEOUT
            )
            return sorted(status.state.firing)
        except WorkflowQueryRejectedError:
            return []
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            return self._unreadable_alerts(target, exc)
        except Exception as exc:  # noqa: BLE001 - unreadable: counted as an alert in the target
            return self._unreadable_alerts(target, exc)

    def _unreadable_alerts(self, target: str, exc: BaseException) -> list[str]:
        log.warning("target guardian unreadable", target=target, error=_why(exc))
        return [f"unknown: the guardian of {target} could not be read ({_why(exc)})"]

    async def _busy(self, service: str) -> str | None:
        workflow_id = failover_workflow_id(service)
        try:
            described = await self._client().get_workflow_handle(workflow_id).describe(rpc_timeout=READ_TIMEOUT)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                log.warning("run of the service unreadable", service=service, error=_why(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - unknown: the child's own start refuses a second run
            log.warning("run of the service unreadable", service=service, error=_why(exc))
            return None
        if described.status != WorkflowExecutionStatus.RUNNING:
            return None
        return f"{workflow_id} run {described.run_id} is running"

    async def _last_failover_at(self, service: str) -> datetime | None:
        query = f"WorkflowType = '{FAILOVER}' AND EvacService = {_quoted(service)} AND EvacKind = 'failover'"
        try:
            starts = [
                execution.start_time
                async for execution in self._client().list_workflows(query, limit=NEWEST_OF, rpc_timeout=READ_TIMEOUT)
            ]
        except Exception as exc:  # noqa: BLE001 - unknown: the guardian's own record still cools down
            log.warning("newest failover unreadable", service=service, error=_why(exc))
            return None
        return max(starts, default=None)

    # --- the target's health ------------------------------------------------------------------

    async def _healthy(self, backend: BackendRef | None) -> int | None:
        if backend is None:
            return None
        try:
            report = await asyncio.to_thread(self._health.read_health, backend)
        except Exception as exc:  # noqa: BLE001 - unknown: the target_unhealthy guard holds
            log.warning("target health unreadable", backend=str(backend), error=_why(exc))
            return None
        return report.healthy

    async def _service(self, query: ServiceQuery) -> ServiceFacts:
        healthy, busy, last = await asyncio.gather(
            self._healthy(query.target_backend), self._busy(query.service), self._last_failover_at(query.service)
        )
        return ServiceFacts(
            service=query.service,
            target=query.target,
            target_healthy=healthy,
            target_required=query.target_required,
            busy=busy,
            last_failover_at=last,
        )
