"""Traffic: the capacity scaler of a region's backends in a backend service."""

from __future__ import annotations

import math

from google.api_core import exceptions as gexc
from google.cloud import compute_v1
from temporalio import activity

from activities._common import attempt, found_before, request_id
from activities.clients import CALL_TIMEOUT_SECONDS, GcpClients
from activities.errors import cloud_call, permanent, transient
from activities.operations import wait_for_operation
from evac.logging import step_logging
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
        # retry=None: Temporal retries; the client's own retry ignores the timeout.
        client, location = self._clients.backend_services_for(ref)
        with cloud_call(f"read {ref.service_label}"):
            service = client.get(
                project=ref.project,
                backend_service=ref.backend_service,
                **location,
                timeout=CALL_TIMEOUT_SECONDS,
                retry=None,
            )
        want = _group_path(ref.group.url)
        for backend in service.backends:
            if _group_path(backend.group) == want:
                return service, backend
        raise permanent(f"{ref.service_label} has no backend for {ref.group}")

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
                timeout=CALL_TIMEOUT_SECONDS,
            )
        return self._clients.backend_services.patch_unary(
            request=compute_v1.PatchBackendServiceRequest(
                project=ref.project,
                backend_service=ref.backend_service,
                backend_service_resource=resource,
                request_id=request_id,
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    @activity.defn(name=ActivityName.READ_BACKEND_CAPACITY)
    def read_backend_capacity(self, input: ReadBackendCapacity) -> BackendCapacity:
        with step_logging(input.context):
            _, backend = self._get(input.backend)
            return BackendCapacity(capacity_scaler=backend.capacity_scaler)

    @activity.defn(name=ActivityName.SET_BACKEND_CAPACITY)
    def set_backend_capacity(self, input: SetBackendCapacity) -> Change:
        """Set the capacity scaler of one region's backend; returns what it found before."""
        ref, desired = input.backend, input.desired
        with step_logging(input.context) as log:
            for _ in range(FINGERPRINT_RETRIES):
                service, backend = self._get(ref)
                current = BackendCapacity(capacity_scaler=backend.capacity_scaler)
                if math.isclose(current.capacity_scaler, desired.capacity_scaler, abs_tol=1e-9):
                    log.info("backend already at capacity scaler", capacity_scaler=desired.capacity_scaler)
                    return Change(
                        before=found_before(current, input.prior), after=current, changed=False, attempt=attempt()
                    )
                # backendServices.patch replaces the backends list whole: send every backend.
                backends = []
                for b in service.backends:
                    copy = compute_v1.Backend(b)
                    if _group_path(b.group) == _group_path(ref.group.url):
                        copy.capacity_scaler = desired.capacity_scaler
                    backends.append(copy)
                resource = compute_v1.BackendService(backends=backends, fingerprint=service.fingerprint)
                with cloud_call(f"patch {ref.service_label}"):
                    try:
                        operation = self._patch(ref, resource, request_id(input.request_key, service.fingerprint))
                    except gexc.PreconditionFailed:
                        operation = None
                if operation is None:
                    log.warning("backend service changed under us; re-reading", fingerprint=service.fingerprint)
                    continue
                wait_for_operation(self._clients, ref.project, operation, what=f"patch {ref.service_label}")
                log.info(
                    "capacity scaler set",
                    backend=str(ref),
                    before=current.capacity_scaler,
                    after=desired.capacity_scaler,
                )
                return Change(before=current, after=desired, changed=True, attempt=attempt())
            raise transient(f"{ref}: the backend service kept changing while we patched it (stale fingerprint)")
