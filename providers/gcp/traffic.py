"""Google Cloud traffic: the capacity scaler of a region's backend in a backend service, and
the health the load balancer sees of the region's group."""

from __future__ import annotations

import math

from google.api_core import exceptions as gexc
from google.cloud import compute_v1

from activities._common import attempt, found_before, request_id
from activities.budget import call_timeout
from activities.errors import step_failure
from activities.heartbeat import heartbeating
from activities.retry import stop_if_cancelled
from evac.failures import FailureType
from evac.refs import BackendRef
from evac.resources import BackendCapacity, Change, HealthReport, SetBackendCapacity
from providers.base import Log
from providers.gcp.clients import GcpClients
from providers.gcp.errors import cloud_call, idempotent
from providers.gcp.operations import (
    finish_earlier_attempt,
    submitted,
    wait_for_operation,
    wait_for_pending_operations,
)
from providers.gcp.refs import GcpBackendRef, ours

# A stale fingerprint (someone else changed the service) is re-read and retried this often.
FINGERPRINT_RETRIES = 5
HEALTHY = "HEALTHY"


def _group_path(url: str) -> str:
    """``…/projects/p/regions/r/instanceGroups/g`` -> ``projects/p/regions/r/instanceGroups/g``."""
    return url[url.find("projects/") :]


class GcpTraffic:
    """A region's backend in a backend service (global or regional): its capacity scaler, and
    the health the load balancer sees of its group's instances."""

    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _get(self, ref: GcpBackendRef) -> tuple[compute_v1.BackendService, compute_v1.Backend]:
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

    def _patch(self, ref: GcpBackendRef, resource: compute_v1.BackendService, request_id: str) -> compute_v1.Operation:
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

    def read_share(self, ref: BackendRef) -> BackendCapacity:
        _, backend = self._get(ours(ref, GcpBackendRef))
        return BackendCapacity(capacity_scaler=backend.capacity_scaler)

    def read_health(self, ref: BackendRef) -> HealthReport:
        """One ``getHealth`` call (translated by ``cloud_call``)."""
        ref = ours(ref, GcpBackendRef)
        self._clients.require_project(ref.project)
        client, location = self._clients.backend_services_for(ref)
        with cloud_call(f"get health of {ref}"):
            health = client.get_health(
                project=ref.project,
                backend_service=ref.backend_service,
                **location,
                resource_group_reference_resource=compute_v1.ResourceGroupReference(group=ref.group.url),
                timeout=call_timeout(),
            )
        statuses = list(health.health_status)
        return HealthReport(healthy=sum(1 for s in statuses if s.health_state == HEALTHY), total=len(statuses))

    def set_share(self, input: SetBackendCapacity, log: Log) -> Change:
        """Set the capacity scaler of one region's backend; returns what it found before.

        Reports only once the patch's operation is DONE. A cancel request stops it before
        the patch is submitted; after, it waits for the operation and reports as usual.
        """
        ref, desired = ours(input.backend, GcpBackendRef), input.desired
        what = f"patch {ref.service_label}"
        region = ref.group.region if ref.scope == "regional" else None
        with heartbeating() as beat:
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

    def front_end(self, ref: BackendRef, address: str) -> str | None:
        """The forwarding rule that serves ``address`` for the region's load balancing (a global
        rule for a global backend service, one in the region for a regional one), by name; None
        when no rule holds it."""
        ref = ours(ref, GcpBackendRef)
        self._clients.require_project(ref.project)
        project = ref.project
        if ref.scope == "regional":
            region = ref.group.region
            rules = idempotent(
                f"list forwarding rules of {region}",
                lambda: list(
                    self._clients.forwarding_rules.list(project=project, region=region, timeout=call_timeout(), retry=None)
                ),
            )
        else:
            rules = idempotent(
                "list global forwarding rules",
                lambda: list(self._clients.global_forwarding_rules.list(project=project, timeout=call_timeout(), retry=None)),
            )
        return next((rule.name for rule in rules if rule.I_p_address == address), None)
