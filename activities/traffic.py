"""Traffic: a region's share of a service's load balancing (its backend's capacity scaler), read
and set through the reference's provider."""

from __future__ import annotations

from temporalio import activity

from activities.budget import serving
from activities.errors import provider_call
from evac.resources import ActivityName, BackendCapacity, Change, ReadBackendCapacity, SetBackendCapacity
from providers.registry import Providers


class TrafficActivities:
    def __init__(self, providers: Providers):
        self._providers = providers

    @activity.defn(name=ActivityName.READ_BACKEND_CAPACITY, no_thread_cancel_exception=True)
    def read_backend_capacity(self, input: ReadBackendCapacity) -> BackendCapacity:
        with serving(input.context), provider_call():
            return self._providers.traffic(input.backend).read_share(input.backend)

    @activity.defn(name=ActivityName.SET_BACKEND_CAPACITY, no_thread_cancel_exception=True)
    def set_backend_capacity(self, input: SetBackendCapacity) -> Change:
        """Set the share of one region's backend; returns what it found before. Reports only once
        the change is done. A cancel request stops it before the change is submitted; after, it
        waits for the change and reports as usual."""
        with serving(input.context) as log, provider_call():
            return self._providers.traffic(input.backend).set_share(input, log)
