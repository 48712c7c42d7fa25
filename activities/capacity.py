"""Capacity: the size of a region's resizable group, read and set through the reference's provider."""

from __future__ import annotations

from temporalio import activity

from activities.budget import serving
from activities.errors import provider_call
from evac.resources import ActivityName, Change, GroupSize, ReadGroupSize, ResizeGroup
from providers.registry import Providers


class CapacityActivities:
    def __init__(self, providers: Providers):
        self._providers = providers

    @activity.defn(name=ActivityName.READ_GROUP_SIZE, no_thread_cancel_exception=True)
    def read_group_size(self, input: ReadGroupSize) -> GroupSize:
        with serving(input.context), provider_call():
            return self._providers.capacity(input.group).read_size(input.group)

    @activity.defn(name=ActivityName.RESIZE_GROUP, no_thread_cancel_exception=True)
    def resize_group(self, input: ResizeGroup) -> Change:
        """Resize a group; returns what it found before. Reports once the resize is done (not once
        its new instances are healthy: that is verify_health's). A cancel request stops it
        before the resize is submitted; after, it waits for it and reports as usual."""
        with serving(input.context) as log, provider_call():
            return self._providers.capacity(input.group).set_size(input, log)
