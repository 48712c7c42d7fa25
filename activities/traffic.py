"""Traffic: the capacity scaler of a region's backends in a backend service."""

from __future__ import annotations

import math

from google.api_core import exceptions as gexc
from google.cloud import compute_v1
from temporalio import activity

from activities._common import attempt, found_before, request_id
from activities.budget import call_timeout, serving
from activities.clients import GcpClients
from activities.errors import cloud_call, step_failure
from activities.heartbeat import heartbeating
from activities.operations import (
    finish_earlier_attempt,
    submitted,
    wait_for_operation,
    wait_for_pending_operations,
)
from activities.retry import idempotent, stop_if_cancelled
from evac.failures import FailureType
from evac.resources import (
    ActivityName,
    BackendCapacity,
    BackendRef,
    Change,
    ReadBackendCapacity,
    SetBackendCapacity,
)

# A stale fingerprint (someone else changed the service) is re-read and retried this often.
FINGERPRINT_RETRIES = 5


def _group_path(url: str) -> str:
    """``…/projects/p/regions/r/instanceGroups/g`` -> ``projects/p/regions/r/instanceGroups/g``."""
    return url[url.find("projects/") :]


class TrafficActivities:
    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _get(self, ref: BackendRef) -> tuple[compute_v1.BackendService, compute_v1.Backend]:
        self._clients.require_project(ref.project)
        # retry=None: the client's own retry ignores the timeout; idempotent() retries in place.
        client, location = self._clients.backend_services_for(ref)
        service: compute_v1.BackendService = idempotent(
            f"read {ref.service_label}",
            lambda: client.get(
                project=ref.project,
                backend_service=ref.backend_service,
                **location,
                timeout=call_timeout(),
                retry=None,
            ),
        )
        want = _group_path(ref.group.url)
        for backend in service.backends:
            if _group_path(backend.group) == want:
                return service, backend
        raise step_failure(FailureType.CLOUD_REFUSED, f"{ref.service_label} has no backend for {ref.group}")

    def _patch(self, ref: BackendRef, resource: compute_v1.BackendService, request_id: str) -> compute_v1.Operation:
        if ref.scope == "regional":
            return self._clients.region_backend_services.patch_unary(
                request=compute_v1.PatchRegionBackendServiceRequest(
                    project=ref.project,
                    region=ref.group.region,
                    backend_service=ref.backend_service,
                    backend_service_resource=resource,
                    request_id=request_id,
                ),
                timeout=call_timeout(),
            )
        return self._clients.backend_services.patch_unary(
            request=compute_v1.PatchBackendServiceRequest(
                project=ref.project,
                backend_service=ref.backend_service,
                backend_service_resource=resource,
                request_id=request_id,
            ),
            timeout=call_timeout(),
        )

    @activity.defn(name=ActivityName.READ_BACKEND_CAPACITY, no_thread_cancel_exception=True)
    def read_backend_capacity(self, input: ReadBackendCapacity) -> BackendCapacity:
        with serving(input.context):
            _, backend = self._get(input.backend)
            return BackendCapacity(capacity_scaler=backend.capacity_scaler)

    @activity.defn(name=ActivityName.SET_BACKEND_CAPACITY, no_thread_cancel_exception=True)
    def set_backend_capacity(self, input: SetBackendCapacity) -> Change:
        """Set the capacity scaler of one region's backend; returns what it found before.

        Reports only once the patch's operation is DONE. A cancel request stops it before
        the patch is submitted; after, it waits for the operation and reports as usual.
        """
        ref, desired = input.backend, input.desired
        what = f"patch {ref.service_label}"
        region = ref.group.region if ref.scope == "regional" else None
        with serving(input.context) as log, heartbeating() as beat:
            finish_earlier_attempt(self._clients, ref.project, beat, what=what)
            for _ in range(FINGERPRINT_RETRIES):
                service, backend = self._get(ref)
                current = BackendCapacity(capacity_scaler=backend.capacity_scaler)
                if math.isclose(current.capacity_scaler, desired.capacity_scaler, abs_tol=1e-9):
                    # Made already, perhaps by an earlier attempt or a forward step still in flight.
                    wait_for_pending_operations(
                        self._clients, ref.project, service.self_link, region=region, zone=None, what=what
                    )
                    log.info("backend already at capacity scaler", capacity_scaler=desired.capacity_scaler)
                    return Change(before=found_before(current, input.prior), after=current, changed=False, attempt=attempt())
                # backendServices.patch replaces the backends list whole: send every backend.
                backends = []
                for b in service.backends:
                    copy = compute_v1.Backend(b)
                    if _group_path(b.group) == _group_path(ref.group.url):
                        copy.capacity_scaler = desired.capacity_scaler
                    backends.append(copy)
                resource = compute_v1.BackendService(backends=backends, fingerprint=service.fingerprint)
                stop_if_cancelled(what)
                with cloud_call(what):
                    try:
                        operation = self._patch(ref, resource, request_id(input.request_key, service.fingerprint))
                    except gexc.PreconditionFailed:
                        operation = None
                if operation is None:
                    log.warning("backend service changed under us; re-reading", fingerprint=service.fingerprint)
                    continue
                wait_for_operation(self._clients, ref.project, submitted(beat, operation), what=what)
                log.info(
                    "capacity scaler set",
                    backend=str(ref),
                    before=current.capacity_scaler,
                    after=desired.capacity_scaler,
                )
                return Change(before=current, after=desired, changed=True, attempt=attempt())
            raise step_failure(
                FailureType.RESOURCE_CONTENDED,
                f"{ref}: the backend service kept changing while we patched it (stale fingerprint)",
            )
