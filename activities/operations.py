"""Waiting for Compute Engine operations, heartbeating so that cancellation reaches us."""

from __future__ import annotations

from google.cloud import compute_v1
from temporalio import activity

from activities.clients import CALL_TIMEOUT_SECONDS, GcpClients
from activities.errors import TRANSIENT_STATUS, cloud_call, permanent, transient

DONE = compute_v1.Operation.Status.DONE


def wait_for_operation(
    clients: GcpClients, project: str, operation: compute_v1.Operation, *, what: str
) -> compute_v1.Operation:
    """Block until ``operation`` is DONE (heartbeating), then raise if it ended in error.

    Uses ``operations.wait`` (which returns after at most its own deadline even when the
    operation is not done) in a loop; global, regional or zonal according to the operation.
    """
    zone = operation.zone.rsplit("/", 1)[-1] if operation.zone else None
    region = operation.region.rsplit("/", 1)[-1] if operation.region else None
    while operation.status != DONE:
        activity.heartbeat(f"waiting for operation {operation.name}")
        with cloud_call(f"{what}: wait for operation {operation.name}"):
            if zone:
                operation = clients.zone_operations.wait(
                    project=project, zone=zone, operation=operation.name, timeout=CALL_TIMEOUT_SECONDS
                )
            elif region:
                operation = clients.region_operations.wait(
                    project=project, region=region, operation=operation.name, timeout=CALL_TIMEOUT_SECONDS
                )
            else:
                operation = clients.global_operations.wait(
                    project=project, operation=operation.name, timeout=CALL_TIMEOUT_SECONDS
                )
    if operation.error and operation.error.errors:
        detail = "; ".join(f"{e.code}: {e.message}" for e in operation.error.errors)
        text = f"{what}: operation {operation.name} failed: {detail}"
        if operation.http_error_status_code in TRANSIENT_STATUS:
            raise transient(text)
        raise permanent(text, type="CloudOperationFailed")
    return operation
