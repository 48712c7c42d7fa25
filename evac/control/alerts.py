"""Reading the region guardians and turning automatic failover off and on.

``status`` asks each guardian (``guardian/<region>``) its ``status`` query: its firing alerts,
its evidence, every decision with its reason, the failovers it started. ``disable`` and
``enable`` signal-with-start the kill switch (``evac-auto-switch``), which records who changed
it, why and when; every guardian reads it before each decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from evac.alerting.models import AUTO_SWITCH_ID, GUARDIAN_ID_PREFIX, KillSwitch, SwitchChange, guardian_workflow_id
from evac.alerting.status import GuardianStatus, SwitchRecord
from evac.control.records import worker_polling
from evac.document_types import Region
from evac.errors import BadInput, NamespaceNotFound, NoWorkerAnswered, Refused, from_rpc
from workflows.auto_switch import AutoSwitchWorkflow
from workflows.guardian import RegionGuardianWorkflow

# A query waits for a worker; past this (twice), none answered.
QUERY_TIMEOUT = timedelta(seconds=5)
QUERY_ATTEMPTS = 2
T = TypeVar("T")
RUNNING_GUARDIANS = "WorkflowType = 'RegionGuardianWorkflow' AND ExecutionStatus = 'Running'"
MAX_REASON = 500
_REGION: TypeAdapter[str] = TypeAdapter(Region)


class InvalidAlertsRequest(BadInput):
    """A region or reason that ``evac alerts status`` / ``evac auto`` cannot use."""


class GuardianNotFound(Refused):
    def __init__(self, region: str):
        super().__init__(
            f"no guardian is running for region '{region}' ({guardian_workflow_id(region)}); one starts with the first "
            "alert for the region, or when 'evac alerts serve' starts with plans out of it ('evac alerts status' lists them)"
        )


def check_region(region: str) -> str:
    try:
        return _REGION.validate_python(region)
    except ValidationError:
        raise InvalidAlertsRequest(f"region '{region}' is not a region name (like europe-west1)") from None


def check_reason(reason: str | None, *, required: bool, option: str = "--reason") -> str:
    text = " ".join((reason or "").split())
    if required and not text:
        raise InvalidAlertsRequest(f"{option} must say why (it is recorded with who changed the switch); nothing was changed")
    if len(text) > MAX_REASON:
        raise InvalidAlertsRequest(f"{option} is {len(text)} characters; at most {MAX_REASON} are recorded; nothing was changed")
    if not text.isprintable():
        raise InvalidAlertsRequest(f"{option} must be printable text (no control characters); nothing was changed")
    return text


# --- guardians --------------------------------------------------------------------------


async def _query(
    client: Client, handle: WorkflowHandle[Any, Any], query: Callable[[Any], T], attempts: int = QUERY_ATTEMPTS
) -> T | None:
    """The query's answer; None when the workflow has ended or does not exist.

    A query that reached a run just as it continued as new is lost with that run (it times out):
    it is asked once more, of the new run.
    """
    for attempt in range(attempts):
        try:
            answer: T = await handle.query(query, reject_condition=QueryRejectCondition.NOT_OPEN, rpc_timeout=QUERY_TIMEOUT)
            return answer
        except WorkflowQueryRejectedError:
            return None
        except WorkflowQueryFailedError as exc:
            raise NoWorkerAnswered(handle.id, str(exc)) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                translated = from_rpc(exc, namespace=client.namespace)
                if isinstance(translated, NamespaceNotFound):
                    raise translated from exc
                return None
            if exc.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise from_rpc(exc, namespace=client.namespace) from exc
            if attempt + 1 == attempts:
                waited = QUERY_TIMEOUT.total_seconds() * attempts
                raise NoWorkerAnswered(handle.id, f"nothing answered in {waited:.0f}s") from exc
    raise AssertionError("unreachable")


async def _query_guardian(client: Client, workflow_id: str) -> GuardianStatus | None:
    """The guardian's status; None when it has ended or does not exist."""
    handle = client.get_workflow_handle_for(RegionGuardianWorkflow.run, workflow_id)
    return await _query(client, handle, RegionGuardianWorkflow.status)


async def status(client: Client, region: str | None = None) -> list[GuardianStatus]:
    """The guardian of ``region``, or (None) every running guardian, by region."""
    if region is not None:
        found = await _query_guardian(client, guardian_workflow_id(check_region(region)))
        if found is None:
            raise GuardianNotFound(region)
        return [found]
    try:
        ids = sorted({execution.id async for execution in client.list_workflows(RUNNING_GUARDIANS)})
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    ids = [workflow_id for workflow_id in ids if workflow_id.startswith(GUARDIAN_ID_PREFIX)]
    found_all = await asyncio.gather(*(_query_guardian(client, workflow_id) for workflow_id in ids))
    return sorted((found for found in found_all if found is not None), key=lambda found: found.region)


# --- the kill switch ----------------------------------------------------------------------


async def read_switch(client: Client, attempts: int = QUERY_ATTEMPTS) -> SwitchRecord:
    """The switch and its changes; never set (or ended) → enabled, with no changes."""
    handle = client.get_workflow_handle_for(AutoSwitchWorkflow.run, AUTO_SWITCH_ID)
    return await _query(client, handle, AutoSwitchWorkflow.switch, attempts) or SwitchRecord()


async def _set(client: Client, change: SwitchChange, task_queue: str) -> KillSwitch:
    """Signal-with-start the switch; the switch as it then is (as asked, when no worker answered yet)."""
    try:
        await client.start_workflow(
            AutoSwitchWorkflow.run,
            SwitchRecord(),
            id=AUTO_SWITCH_ID,
            task_queue=task_queue,
            start_signal="set",
            start_signal_args=[change],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="the kill switch of automatic failover ('evac auto disable | enable')",
        )
    except RPCError as exc:
        raise from_rpc(exc, namespace=client.namespace) from exc
    asked = KillSwitch(enabled=change.enabled, by=change.by, reason=change.reason)
    if not await worker_polling(client, task_queue):
        return asked  # recorded in the switch's history; a worker applies it when one runs
    try:
        record = await read_switch(client, attempts=1)
    except NoWorkerAnswered:
        return asked
    return record.switch


async def disable(client: Client, by: str, reason: str, *, task_queue: str = "evac") -> KillSwitch:
    """Turn automatic failover off everywhere (recorded with ``by`` and ``reason``)."""
    change = SwitchChange(enabled=False, by=by, reason=check_reason(reason, required=True))
    return await _set(client, change, task_queue)


async def enable(client: Client, by: str, reason: str | None = None, *, task_queue: str = "evac") -> KillSwitch:
    """Turn automatic failover back on (recorded with ``by`` and the reason, if given), and ask
    every running guardian to decide again at once rather than at its next re-check."""
    change = SwitchChange(enabled=True, by=by, reason=check_reason(reason, required=False))
    switch = await _set(client, change, task_queue)
    await recheck_all(client)
    return switch


async def recheck_all(client: Client) -> None:
    """Signal ``recheck`` to every running guardian (one that ended meanwhile is skipped). Best
    effort: a server without visibility (the time-skipping test server) lists none, and the
    guardians then decide at their next re-check, within GUARDIAN_RECHECK."""
    try:
        ids = sorted({execution.id async for execution in client.list_workflows(RUNNING_GUARDIANS)})
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return
        raise from_rpc(exc, namespace=client.namespace) from exc
    for workflow_id in ids:
        try:
            await client.get_workflow_handle(workflow_id).signal("recheck")
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise from_rpc(exc, namespace=client.namespace, workflow_id=workflow_id) from exc
