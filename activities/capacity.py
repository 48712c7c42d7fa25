"""Capacity: the size of a region's managed instance group."""

from __future__ import annotations

from google.cloud import compute_v1
from temporalio import activity
from temporalio.exceptions import CancelledError

from activities._common import attempt, found_before, request_id
from activities.clients import CALL_TIMEOUT_SECONDS, GcpClients
from activities.errors import cloud_call
from activities.operations import wait_for_operation
from evac.logging import step_logging
from evac.resources import ActivityName, Change, GroupRef, GroupSize, ReadGroupSize, ResizeGroup

STABLE_POLL_SECONDS = 1.0


class CapacityActivities:
    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _get(self, ref: GroupRef) -> compute_v1.InstanceGroupManager:
        self._clients.require_project(ref.project)
        # retry=None: Temporal retries; the client's own retry ignores the timeout.
        client, location = self._clients.group_managers_for(ref)
        with cloud_call(f"read {ref}"):
            manager: compute_v1.InstanceGroupManager = client.get(
                project=ref.project, instance_group_manager=ref.group, **location,
                timeout=CALL_TIMEOUT_SECONDS, retry=None,
            )  # fmt: skip
        return manager

    def _resize(self, ref: GroupRef, size: int, request_id: str) -> compute_v1.Operation:
        if ref.zone:
            return self._clients.zonal_instance_group_managers.resize_unary(
                request=compute_v1.ResizeInstanceGroupManagerRequest(
                    project=ref.project, zone=ref.zone, instance_group_manager=ref.group,
                    size=size, request_id=request_id,
                ),
                timeout=CALL_TIMEOUT_SECONDS,
            )  # fmt: skip
        return self._clients.instance_group_managers.resize_unary(
            request=compute_v1.ResizeRegionInstanceGroupManagerRequest(
                project=ref.project, region=ref.region, instance_group_manager=ref.group,
                size=size, request_id=request_id,
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )  # fmt: skip

    def _wait_until_stable(self, ref: GroupRef) -> None:
        while True:
            manager = self._get(ref)
            if manager.status.is_stable:
                return
            activity.heartbeat(f"{ref} is not stable yet")
            # Sleeps, but wakes at once when the activity is cancelled.
            activity.wait_for_cancelled_sync(STABLE_POLL_SECONDS)
            if activity.is_cancelled():
                raise CancelledError(f"cancelled while waiting for {ref} to become stable")

    @activity.defn(name=ActivityName.READ_GROUP_SIZE)
    def read_group_size(self, input: ReadGroupSize) -> GroupSize:
        with step_logging(input.context):
            return GroupSize(target_size=self._get(input.group).target_size)

    @activity.defn(name=ActivityName.RESIZE_GROUP)
    def resize_group(self, input: ResizeGroup) -> Change:
        """Resize a managed instance group (regional or zonal) and wait until it is stable."""
        ref, desired = input.group, input.desired
        with step_logging(input.context) as log:
            current = GroupSize(target_size=self._get(ref).target_size)
            if current.target_size == desired.target_size:
                self._wait_until_stable(ref)
                log.info("group already at size", target_size=desired.target_size)
                return Change(before=found_before(current, input.prior), after=current, changed=False, attempt=attempt())
            with cloud_call(f"resize {ref}"):
                operation = self._resize(
                    ref, desired.target_size, request_id(input.request_key, f"size={current.target_size}")
                )
            wait_for_operation(self._clients, ref.project, operation, what=f"resize {ref}")
            self._wait_until_stable(ref)
            log.info("group resized", group=str(ref), before=current.target_size, after=desired.target_size)
            return Change(before=current, after=desired, changed=True, attempt=attempt())
