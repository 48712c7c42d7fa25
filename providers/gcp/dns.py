"""Google Cloud DNS: the record that sends a service's clients to a region, changed through Cloud DNS.

A change is done when Cloud DNS says ``done``, not when the record reads as changed. As with
Compute operations, a submitted change is waited for even on a cancel request, and a record
found already as desired counts only once no change touching it is pending.
"""

from __future__ import annotations

from typing import Any

import structlog
from google.api_core import exceptions as gexc
from google.api_core import page_iterator
from google.cloud import dns  # type: ignore[attr-defined]

from activities._common import attempt, found_before
from activities.errors import step_failure, worth_repeating
from activities.heartbeat import Heartbeat, heartbeating
from activities.retry import jittered, pause, stop_if_cancelled
from evac.failures import FailureType
from evac.refs import DnsRecordRef
from evac.resources import Change, DnsRecord, SetDnsRecord
from providers.base import Log
from providers.gcp.clients import GcpClients
from providers.gcp.errors import cloud_call, idempotent
from providers.gcp.refs import CloudDnsRecordRef, ours

FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
# A concurrent change to the same record (deletion no longer matches) is re-read this often.
CONFLICT_RETRIES = 5
# How far back (newest first) to look for a pending change: Cloud DNS applies a zone's
# changes in order, so the scan stops at the first one that is done.
PENDING_SCAN_LIMIT = 50
# The heartbeat progress key of the change a set_dns_record attempt submitted.
SUBMITTED = "dns_change"

log = structlog.get_logger("evac.activity")


def _touches(change: dict[str, Any], ref: CloudDnsRecordRef) -> bool:
    records = [*change.get("additions", []), *change.get("deletions", [])]
    return any(r.get("name") == ref.name and r.get("type") == ref.type for r in records)


class GcpDns:
    """A Cloud DNS record set, changed by one atomic change (deletion of exactly what it holds,
    addition of what it should hold)."""

    def __init__(self, clients: GcpClients):
        self._clients = clients

    def _zone(self, ref: CloudDnsRecordRef) -> dns.ManagedZone:
        self._clients.require_project(ref.project)
        return self._clients.dns_for(ref.project).zone(ref.managed_zone)

    def _read(self, ref: CloudDnsRecordRef) -> DnsRecord:
        zone = self._zone(ref)

        def read() -> DnsRecord:
            iterator = zone.list_resource_record_sets()
            # The API filters by name and type; the library has no argument for it.
            iterator.extra_params = {"name": ref.name, "type": ref.type}
            try:
                for rrset in iterator:
                    if rrset.name == ref.name and rrset.record_type == ref.type:
                        return DnsRecord(ttl=int(rrset.ttl), rrdatas=sorted(rrset.rrdatas))
            except KeyError as exc:
                # google-cloud-dns cannot parse a record set without rrdatas: one with a routing policy.
                raise step_failure(
                    FailureType.UNSUPPORTED_RECORD,
                    f"{ref} uses a routing policy (no plain rrdatas, missing {exc}); "
                    "Evac shifts plain records only: change it by hand or give the service a plain record",
                ) from exc
            return DnsRecord()

        return idempotent(f"read {ref}", read)

    def _wait_done(self, zone: dns.ManagedZone, change_id: str, ref: CloudDnsRecordRef) -> None:
        """Poll the change until it is done; never abandoned on a cancel request (see the
        module's text), transient errors waited out."""
        change = zone.changes()
        change.name = change_id
        poll = FIRST_POLL_SECONDS
        while True:
            try:
                with cloud_call(f"read DNS change {change_id} of {ref}"):
                    change.reload()
                if change.status == "done":
                    return
            except Exception as exc:
                if not worth_repeating(exc):
                    raise
                log.info("transient error reading a DNS change; polling on", change=change_id, error=str(exc))
            pause(jittered(poll), abandon_on_cancel=False)
            poll = min(poll * 1.5, MAX_POLL_SECONDS)

    def _finish_earlier_attempt(self, beat: Heartbeat, ref: CloudDnsRecordRef) -> None:
        """On a retry, wait for the change the previous attempt submitted (its last heartbeat)."""
        recorded = beat.earlier.get(SUBMITTED)
        if not recorded:
            return
        log.info("waiting for the DNS change an earlier attempt submitted", change=recorded["id"])
        try:
            self._wait_done(self._zone(ref), str(recorded["id"]), ref)
        except Exception as exc:
            if worth_repeating(exc):
                raise
            log.info("the earlier attempt's DNS change cannot be read", change=recorded["id"], error=str(exc))

    def _pending_changes(self, ref: CloudDnsRecordRef) -> list[str]:
        """The ids of the zone's pending changes that touch ``ref``, newest first."""
        client = self._clients.dns_for(ref.project)

        def scan() -> list[str]:
            iterator = page_iterator.HTTPIterator(  # type: ignore[no-untyped-call]
                client=client,
                api_request=client._connection.api_request,
                path=f"/projects/{ref.project}/managedZones/{ref.managed_zone}/changes",
                item_to_value=lambda _, item: item,  # the raw change: no record parsing needed
                items_key="changes",
                max_results=PENDING_SCAN_LIMIT,
                extra_params={"sortOrder": "descending"},
            )
            pending: list[str] = []
            for change in iterator:
                if change.get("status") == "done":
                    break
                if _touches(change, ref):
                    pending.append(str(change["id"]))
            return pending

        return idempotent(f"list pending DNS changes of {ref}", scan, abandon_on_cancel=False)

    def read_record(self, ref: DnsRecordRef) -> DnsRecord:
        return self._read(ours(ref, CloudDnsRecordRef))

    def set_record(self, input: SetDnsRecord, log: Log) -> Change:
        """Make the record hold ``desired`` in one atomic change; returns what it found before.

        Reports only once the change is done. A cancel request stops it before the change is
        submitted; after, it waits for the change and reports as usual.
        """
        ref, desired = ours(input.record, CloudDnsRecordRef), input.desired
        with heartbeating() as beat:
            self._finish_earlier_attempt(beat, ref)
            for _ in range(CONFLICT_RETRIES):
                current = self._read(ref)
                if current == desired:
                    # Made already, perhaps by an earlier attempt or a forward step still in flight.
                    for change_id in self._pending_changes(ref):
                        log.info("waiting for a pending DNS change of the record", change=change_id)
                        self._wait_done(self._zone(ref), change_id, ref)
                    log.info("record already as desired", rrdatas=desired.rrdatas, ttl=desired.ttl)
                    return Change(before=found_before(current, input.prior), after=current, changed=False, attempt=attempt())
                zone = self._zone(ref)
                change = zone.changes()
                # Cloud DNS deletes only an exact match of the current record.
                if current.exists:
                    change.delete_record_set(zone.resource_record_set(ref.name, ref.type, current.ttl, current.rrdatas))
                if desired.exists:
                    change.add_record_set(zone.resource_record_set(ref.name, ref.type, desired.ttl, desired.rrdatas))
                stop_if_cancelled(f"change {ref}")
                with cloud_call(f"change {ref}"):
                    try:
                        change.create()
                    except (gexc.PreconditionFailed, gexc.Conflict, gexc.NotFound) as exc:
                        log.warning("record changed under us; re-reading", error=str(exc.message))
                        continue
                beat.record(**{SUBMITTED: {"zone": ref.managed_zone, "id": change.name}})
                self._wait_done(zone, change.name, ref)
                log.info("record changed", before=current.rrdatas, after=desired.rrdatas, ttl=desired.ttl)
                return Change(before=current, after=desired, changed=True, attempt=attempt())
            raise step_failure(FailureType.RESOURCE_CONTENDED, f"{ref}: the record kept changing while we changed it")
