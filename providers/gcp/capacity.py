"""Google Cloud capacity: the size of a region's managed instance group, and its region's quota."""

from __future__ import annotations

from google.cloud import compute_v1
from temporalio.exceptions import ApplicationError, CancelledError

from activities._common import attempt, found_before, request_id
from activities.budget import call_timeout
from activities.errors import worth_repeating
from activities.heartbeat import heartbeating
from activities.retry import pause, stop_if_cancelled
from evac.refs import GroupRef
from evac.resources import Change, GroupSize, ResizeGroup
from providers.base import Log, Quota
from providers.gcp.clients import GcpClients
from providers.gcp.errors import cloud_call, idempotent
from providers.gcp.operations import (
    finish_earlier_attempt,
    submitted,
    wait_for_operation,
    wait_for_pending_operations,
)
from providers.gcp.refs import GcpGroupRef, ours

STABLE_POLL_SECONDS = 1.0
INSTANCES = "INSTANCES"
CPUS = "CPUS"


class GcpCapacity:
    """A region's managed instance group (regional or zonal): its target size, and the room the
    region's INSTANCES quota leaves."""

    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _get(self, ref: GcpGroupRef) -> compute_v1.InstanceGroupManager:
        self._clients.require_project(ref.project)
        # retry=None: the client's own retry ignores the timeout; idempotent() retries in place.
        client, location = self._clients.group_managers_for(ref)
        manager: compute_v1.InstanceGroupManager = idempotent(
            f"read {ref}",
            lambda: client.get(
                project=ref.project, instance_group_manager=ref.group, **location,
                timeout=call_timeout(), retry=None,
            ),
        )  # fmt: skip
        return manager

    def _resize(self, ref: GcpGroupRef, size: int, request_id: str) -> compute_v1.Operation:
        if ref.zone:
            return self._clients.zonal_instance_group_managers.resize_unary(
                request=compute_v1.ResizeInstanceGroupManagerRequest(
                    project=ref.project, zone=ref.zone, instance_group_manager=ref.group,
                    size=size, request_id=request_id,
                ),
                timeout=call_timeout(),
            )  # fmt: skip
        return self._clients.instance_group_managers.resize_unary(
            request=compute_v1.ResizeRegionInstanceGroupManagerRequest(
                project=ref.project, region=ref.region, instance_group_manager=ref.group,
                size=size, request_id=request_id,
            ),
            timeout=call_timeout(),
        )  # fmt: skip

    def _wait_until_stable(self, ref: GcpGroupRef) -> None:
        """Poll until the group is stable; a cancel request stops the wait (nothing is pending)."""
        while True:
            manager = self._get(ref)
            if manager.status.is_stable:
                return
            # Sleeps, but wakes at once (raising CancelledError) when the activity is cancelled.
            pause(STABLE_POLL_SECONDS, abandon_on_cancel=True)

    def read_size(self, ref: GroupRef) -> GroupSize:
        return GroupSize(target_size=self._get(ours(ref, GcpGroupRef)).target_size)

    def room(self, ref: GroupRef) -> Quota:
        """The region's ``INSTANCES`` quota (``regions.get``): limit less usage. A refusal (403 …)
        leaves it unknown, said why; a transient failure raises."""
        ref = ours(ref, GcpGroupRef)
        try:
            self._clients.require_project(ref.project)
            found = idempotent(
                f"read region {ref.region}",
                lambda: self._clients.regions.get(project=ref.project, region=ref.region, timeout=call_timeout(), retry=None),
            )
        except ApplicationError as exc:
            if worth_repeating(exc):
                raise
            return Quota(None, f"quota unread: {str(exc)[:200]}")
        for quota in found.quotas:
            if quota.metric == INSTANCES:
                # Over its limit (a limit lowered below usage) is no room, not less than none.
                return Quota(max(0, int(quota.limit - quota.usage)), f"INSTANCES {quota.usage:g}/{quota.limit:g}")
        return Quota(None, "no INSTANCES quota listed")

    def cpu_room(self, ref: GroupRef) -> Quota:
        """How many more of the group's instances the region's ``CPUS`` quota has room for: the
        quota's limit less usage, over the vCPUs of the machine type of the group's instance
        template (``instanceGroupManagers.get``, ``instanceTemplates.get``, ``machineTypes.get``
        in the group's zone, or the first zone it distributes to)."""
        ref = ours(ref, GcpGroupRef)
        self._clients.require_project(ref.project)
        manager = self._get(ref)
        template_name = manager.instance_template.rsplit("/", 1)[-1]
        template = idempotent(
            f"read instance template {template_name}",
            lambda: self._clients.instance_templates.get(
                project=ref.project, instance_template=template_name, timeout=call_timeout(), retry=None
            ),
        )
        machine = template.properties.machine_type.rsplit("/", 1)[-1]
        zones = [z.zone.rsplit("/", 1)[-1] for z in manager.distribution_policy.zones] if not ref.zone else [ref.zone]
        if not zones:
            return Quota(None, f"CPUS unknown: {ref} names no zone to read machine type {machine} in")
        shape = idempotent(
            f"read machine type {machine}",
            lambda: self._clients.machine_types.get(
                project=ref.project, zone=zones[0], machine_type=machine, timeout=call_timeout(), retry=None
            ),
        )
        region = idempotent(
            f"read region {ref.region}",
            lambda: self._clients.regions.get(project=ref.project, region=ref.region, timeout=call_timeout(), retry=None),
        )
        cpus = max(1, shape.guest_cpus)
        for quota in region.quotas:
            if quota.metric == CPUS:
                left = quota.limit - quota.usage
                text = f"CPUS {quota.usage:g}/{quota.limit:g}, {cpus} vCPUs per {machine} instance"
                return Quota(max(0, int(left // cpus)), text)
        return Quota(None, "no CPUS quota listed")

    def set_size(self, input: ResizeGroup, log: Log) -> Change:
        """Resize a managed instance group (regional or zonal) and wait until it is stable.

        Reports only once the resize operation is DONE. A cancel request stops it before the
        resize is submitted; after, it waits for the operation and reports at once (without
        waiting for the new instances), so that the workflow can undo it.
        """
        ref, desired = ours(input.group, GcpGroupRef), input.desired
        what = f"resize {ref}"
        region = None if ref.zone else ref.region
        with heartbeating() as beat:
            finish_earlier_attempt(self._clients, ref.project, beat, what=what)
            manager = self._get(ref)
            current = GroupSize(target_size=manager.target_size)
            if current.target_size == desired.target_size:
                # Made already, perhaps by an earlier attempt or a forward step still in flight.
                wait_for_pending_operations(
                    self._clients, ref.project, manager.self_link, region=region, zone=ref.zone, what=what
                )
                self._wait_until_stable(ref)
                log.info("group already at size", target_size=desired.target_size)
                return Change(before=found_before(current, input.prior), after=current, changed=False, attempt=attempt())
            stop_if_cancelled(what)
            with cloud_call(what):
                operation = self._resize(ref, desired.target_size, request_id(input.request_key, f"size={current.target_size}"))
            wait_for_operation(self._clients, ref.project, submitted(beat, operation), what=what)
            try:
                self._wait_until_stable(ref)
            except CancelledError:
                log.info("cancelled while the group settles; the resize itself is done", group=str(ref))
            log.info("group resized", group=str(ref), before=current.target_size, after=desired.target_size)
            return Change(before=current, after=desired, changed=True, attempt=attempt())
