"""DNS: the record that sends a service's clients to a region, changed through Cloud DNS."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import dns  # type: ignore[attr-defined]
from temporalio import activity
from temporalio.exceptions import CancelledError

from activities._common import attempt, found_before
from activities.clients import GcpClients
from activities.errors import cloud_call, permanent, transient
from evac.logging import step_logging
from evac.resources import ActivityName, Change, DnsRecord, DnsRecordRef, ReadDnsRecord, SetDnsRecord

CHANGE_POLL_SECONDS = 0.5
# A concurrent change to the same record (deletion no longer matches) is re-read this often.
CONFLICT_RETRIES = 5


class DnsActivities:
    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _zone(self, ref: DnsRecordRef) -> dns.ManagedZone:
        self._clients.require_project(ref.project)
        return self._clients.dns_for(ref.project).zone(ref.managed_zone)

    def _read(self, ref: DnsRecordRef) -> DnsRecord:
        zone = self._zone(ref)
        with cloud_call(f"read {ref}"):
            iterator = zone.list_resource_record_sets()
            # The API filters by name and type; the library has no argument for it.
            iterator.extra_params = {"name": ref.name, "type": ref.type}
            try:
                for rrset in iterator:
                    if rrset.name == ref.name and rrset.record_type == ref.type:
                        return DnsRecord(ttl=int(rrset.ttl), rrdatas=sorted(rrset.rrdatas))
            except KeyError as exc:
                # google-cloud-dns cannot parse a record set without rrdatas: one with a routing policy.
                raise permanent(
                    f"{ref} uses a routing policy (no plain rrdatas, missing {exc}); "
                    "Evac shifts plain records only: change it by hand or give the service a plain record"
                ) from None
        return DnsRecord()

    def _wait_done(self, change: dns.Changes, ref: DnsRecordRef) -> None:
        while change.status != "done":
            activity.heartbeat(f"waiting for DNS change {change.name}")
            # Sleeps, but wakes at once when the activity is cancelled.
            activity.wait_for_cancelled_sync(CHANGE_POLL_SECONDS)
            if activity.is_cancelled():
                raise CancelledError(f"cancelled while waiting for DNS change {change.name} to {ref}")
            with cloud_call(f"read DNS change {change.name}"):
                change.reload()

    @activity.defn(name=ActivityName.READ_DNS_RECORD)
    def read_dns_record(self, input: ReadDnsRecord) -> DnsRecord:
        with step_logging(input.context):
            return self._read(input.record)

    @activity.defn(name=ActivityName.SET_DNS_RECORD)
    def set_dns_record(self, input: SetDnsRecord) -> Change:
        """Make the record hold ``desired`` in one atomic change; returns what it found before."""
        ref, desired = input.record, input.desired
        with step_logging(input.context) as log:
            for _ in range(CONFLICT_RETRIES):
                current = self._read(ref)
                if current == desired:
                    log.info("record already as desired", rrdatas=desired.rrdatas, ttl=desired.ttl)
                    return Change(
                        before=found_before(current, input.prior), after=current, changed=False, attempt=attempt()
                    )
                zone = self._zone(ref)
                change = zone.changes()
                # Cloud DNS deletes only an exact match of the current record.
                if current.exists:
                    change.delete_record_set(zone.resource_record_set(ref.name, ref.type, current.ttl, current.rrdatas))
                if desired.exists:
                    change.add_record_set(zone.resource_record_set(ref.name, ref.type, desired.ttl, desired.rrdatas))
                with cloud_call(f"change {ref}"):
                    try:
                        change.create()
                    except (gexc.PreconditionFailed, gexc.Conflict, gexc.NotFound) as exc:
                        log.warning("record changed under us; re-reading", error=str(exc.message))
                        continue
                self._wait_done(change, ref)
                log.info("record changed", before=current.rrdatas, after=desired.rrdatas, ttl=desired.ttl)
                return Change(before=current, after=desired, changed=True, attempt=attempt())
            raise transient(f"{ref}: the record kept changing while we changed it")
