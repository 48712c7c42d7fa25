"""Compute Engine operations: waiting until one is DONE, and finding the ones still pending.

A mutation is done when its operation is DONE, not when the resource reads as changed. The
wait polls ``operations.get`` (a short call; a long ``operations.wait`` blocks up to two
minutes) with a growing interval, while the activity's background heartbeat runs. Once a
mutation is submitted the wait is never abandoned, not even on a cancel request: the
workflow compensates right after, and an undo that ran while the forward operation was
still pending would read the old value, do nothing, and then see the forward change land.
Transient errors while polling are therefore waited out too. The one exception is a change
to the region being left, under a budget (``activities.budget``): that wait ends when the budget
is spent, as ``CloudUnreachable``, and the workflow skips the step (it pushes no undo for it).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from google.cloud import compute_v1
from pydantic import BaseModel, ConfigDict

from activities import budget
from activities.budget import call_timeout
from activities.errors import step_failure, worth_repeating
from activities.heartbeat import Heartbeat
from activities.retry import jittered, pause
from evac.failures import FailureType
from providers.gcp.clients import GcpClients
from providers.gcp.errors import TRANSIENT_STATUS, cloud_call, idempotent

DONE = compute_v1.Operation.Status.DONE
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
# The heartbeat progress key of the operation a mutating activity submitted.
SUBMITTED = "operation"

log = structlog.get_logger("evac.activity")


class OperationRef(BaseModel):
    """Which operation: its name and where it lives (global, a region or a zone)."""

    model_config = ConfigDict(frozen=True)

    name: str
    region: str | None = None
    zone: str | None = None

    @classmethod
    def of(cls, operation: compute_v1.Operation) -> OperationRef:
        return cls(
            name=operation.name,
            region=operation.region.rsplit("/", 1)[-1] if operation.region else None,
            zone=operation.zone.rsplit("/", 1)[-1] if operation.zone else None,
        )


def _get(clients: GcpClients, project: str, ref: OperationRef) -> compute_v1.Operation:
    operation: compute_v1.Operation
    if ref.zone:
        operation = clients.zone_operations.get(
            project=project, zone=ref.zone, operation=ref.name, timeout=call_timeout(), retry=None
        )
    elif ref.region:
        operation = clients.region_operations.get(
            project=project, region=ref.region, operation=ref.name, timeout=call_timeout(), retry=None
        )
    else:
        operation = clients.global_operations.get(project=project, operation=ref.name, timeout=call_timeout(), retry=None)
    return operation


def submitted(beat: Heartbeat, operation: compute_v1.Operation) -> OperationRef:
    """Record the operation a mutation just started in the heartbeat, so that a retried
    attempt waits for it; returns its reference."""
    ref = OperationRef.of(operation)
    beat.record(**{SUBMITTED: ref.model_dump()})
    return ref


def wait_for_operation(
    clients: GcpClients, project: str, ref: OperationRef, *, what: str, raise_on_error: bool = True
) -> compute_v1.Operation:
    """Poll until the operation is DONE; then, with ``raise_on_error``, raise if it failed.

    Never abandoned on a cancel request (see the module's text); transient poll errors are
    waited out, a refusal (e.g. 404) is raised.
    """
    poll = FIRST_POLL_SECONDS
    last_error = "it was not DONE"
    while True:
        try:
            with cloud_call(f"{what}: read operation {ref.name}"):
                operation = _get(clients, project, ref)
            if operation.status == DONE:
                break
        except Exception as exc:
            if not worth_repeating(exc):
                raise
            last_error = str(exc)
            log.info("transient error reading an operation; polling on", operation=ref.name, error=last_error)
        rest = budget.left()
        if rest is not None and rest <= 0:
            raise step_failure(
                FailureType.CLOUD_UNREACHABLE,
                f"{what}: operation {ref.name} not DONE within the time a failover waits on the region it leaves ({last_error})",
            )
        delay = jittered(poll)
        pause(delay if rest is None else min(delay, rest), abandon_on_cancel=False)
        poll = min(poll * 1.5, MAX_POLL_SECONDS)
    if raise_on_error and operation.error and operation.error.errors:
        detail = "; ".join(f"{e.code}: {e.message}" for e in operation.error.errors)
        text = f"{what}: operation {ref.name} failed: {detail}"
        if operation.http_error_status_code in TRANSIENT_STATUS:
            raise step_failure(FailureType.CLOUD_TRANSIENT, text)
        raise step_failure(FailureType.CLOUD_OPERATION_FAILED, text)
    return operation


def finish_earlier_attempt(clients: GcpClients, project: str, beat: Heartbeat, *, what: str) -> bool:
    """On a retry, wait for the operation the previous attempt submitted (from its last
    heartbeat), whatever its outcome: the activity then starts from what the cloud holds.
    Returns whether there was one."""
    recorded = beat.earlier.get(SUBMITTED)
    if not recorded:
        return False
    ref = OperationRef.model_validate(recorded)
    log.info("waiting for the operation an earlier attempt submitted", operation=ref.name)
    try:
        wait_for_operation(clients, project, ref, what=what, raise_on_error=False)
    except Exception as exc:
        if worth_repeating(exc):
            raise
        # Gone (operations expire): nothing of it is pending any more.
        log.info("the earlier attempt's operation cannot be read", operation=ref.name, error=str(exc))
    return True


def wait_for_pending_operations(
    clients: GcpClients, project: str, target_link: str, *, region: str | None, zone: str | None, what: str
) -> int:
    """Wait until no operation on ``target_link`` (in that location) is pending: a change
    found already made counts only once the operation that made it is DONE. Returns how many
    operations it waited for."""
    query = f'(targetLink = "{target_link}") (status != "DONE")'

    def pending() -> list[OperationRef]:
        found: Iterable[compute_v1.Operation]
        if zone:
            found = clients.zone_operations.list(
                request=compute_v1.ListZoneOperationsRequest(project=project, zone=zone, filter=query),
                timeout=call_timeout(), retry=None,
            )  # fmt: skip
        elif region:
            found = clients.region_operations.list(
                request=compute_v1.ListRegionOperationsRequest(project=project, region=region, filter=query),
                timeout=call_timeout(), retry=None,
            )  # fmt: skip
        else:
            found = clients.global_operations.list(
                request=compute_v1.ListGlobalOperationsRequest(project=project, filter=query),
                timeout=call_timeout(), retry=None,
            )  # fmt: skip
        return [OperationRef.of(op) for op in found if op.status != DONE]

    refs = idempotent(f"{what}: list pending operations", pending, abandon_on_cancel=False)
    for ref in refs:
        log.info("waiting for a pending operation on the target", operation=ref.name)
        wait_for_operation(clients, project, ref, what=what, raise_on_error=False)
    return len(refs)
