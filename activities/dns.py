"""DNS: the record that sends a service's clients to a region, read and changed (compare-and-swap)
through the reference's provider."""

from __future__ import annotations

from temporalio import activity

from activities.errors import provider_call
from evac.logging import step_logging
from evac.resources import ActivityName, Change, DnsRecord, ReadDnsRecord, SetDnsRecord
from providers.registry import Providers


class DnsActivities:
    def __init__(self, providers: Providers):
        self._providers = providers

    @activity.defn(name=ActivityName.READ_DNS_RECORD, no_thread_cancel_exception=True)
    def read_dns_record(self, input: ReadDnsRecord) -> DnsRecord:
        with step_logging(input.context), provider_call():
            return self._providers.dns(input.record).read_record(input.record)

    @activity.defn(name=ActivityName.SET_DNS_RECORD, no_thread_cancel_exception=True)
    def set_dns_record(self, input: SetDnsRecord) -> Change:
        """Make the record hold ``desired`` in one atomic change; returns what it found before.
        Reports only once the change is served. A cancel request stops it before the change is
        submitted; after, it waits for the change and reports as usual."""
        with step_logging(input.context) as log, provider_call():
            return self._providers.dns(input.record).set_record(input, log)
