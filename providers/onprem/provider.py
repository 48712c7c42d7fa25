"""The on-premises provider behind Evac's protocol (``providers/base.py``): a data centre's share
of the load balancing is its servers' state and weight in HAProxy, its health what HAProxy's
checks see, and the service's record a compare-and-swap through RFC 2136 dynamic updates.

What each change guarantees:

- **HAProxy share.** A share ``s`` puts every one of the region's servers at weight
  ``round(s × its configured weight)`` and ``ready`` (``drain`` when ``s`` is 0, weights left
  alone); a server an operator put in maintenance is left there. The share read is the ready
  servers' weight over the configured weight of all. The Runtime API applies a change at once,
  server by server: it is done when every server reads back as set. The before-state lists each
  server's weight and state, so an undo restores exactly what was there.
- **DNS record.** One signed update whose prerequisite is the record as just read: it applies
  only if no one changed the record meanwhile (else it is read again and retried, as Cloud DNS's
  conflicts are). It is done when every listed authoritative server answers the new values at
  the primary's serial or newer.
- **Capacity.** A data centre's capacity is what is racked there: no group to resize.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from activities._common import attempt, found_before
from activities.budget import call_timeout
from activities.errors import provider_call, step_failure
from activities.heartbeat import heartbeating
from activities.retry import idempotent, stop_if_cancelled
from evac.failures import FailureType
from evac.refs import BackendRef, DnsRecordRef, GroupRef
from evac.resources import (
    BackendCapacity,
    Change,
    DnsRecord,
    GroupSize,
    HealthReport,
    MemberShare,
    ResizeGroup,
    SetBackendCapacity,
    SetDnsRecord,
)
from providers.base import Log, Quota
from providers.errors import ErrorKind, ProviderError
from providers.onprem.dns import DnsClient, DnsConfig, RecordSet
from providers.onprem.haproxy import HAProxyConfig, HAProxyRuntime, ServerState
from providers.onprem.refs import HaproxyBackendRef, Rfc2136RecordRef, ours

T = TypeVar("T")
# A record someone else keeps changing under us is read again this often before giving up.
CONFLICT_RETRIES = 5
# How long a changed record may take to reach every listed server.
SERVED_WITHIN_SECONDS = 120.0


def _read(what: str, call: Callable[[], T]) -> T:
    """An idempotent read: its provider errors translated, transient ones retried in place."""

    def translated() -> T:
        with provider_call():
            return call()

    return idempotent(what, translated)


class HaproxyTraffic:
    """A data centre's servers in an HAProxy backend, through the Runtime API."""

    def _runtime(self, ref: HaproxyBackendRef) -> HAProxyRuntime:
        return HAProxyRuntime(HAProxyConfig(address=ref.api, timeout=call_timeout()))

    def _servers(self, ref: HaproxyBackendRef) -> list[ServerState]:
        servers = self._runtime(ref).servers(ref.backend)
        if not servers:
            raise ProviderError(ErrorKind.NOT_FOUND, f"{ref}: HAProxy at {ref.api} has no backend {ref.backend} with servers")
        if not ref.servers:
            return servers
        found = {s.server: s for s in servers}
        missing = [name for name in ref.servers if name not in found]
        if missing:
            raise ProviderError(ErrorKind.NOT_FOUND, f"{ref}: backend {ref.backend} has no server {', '.join(missing)}")
        return [found[name] for name in ref.servers]

    def _share(self, servers: list[ServerState]) -> BackendCapacity:
        full = sum(s.initial_weight for s in servers)
        serving = sum(s.weight for s in servers if s.admin == "ready")
        scaler = 0.0 if full == 0 else min(1.0, serving / full)
        members = tuple(MemberShare(name=s.server, weight=s.weight, state=s.admin) for s in servers)
        return BackendCapacity(capacity_scaler=round(scaler, 6), members=members)

    def read_share(self, ref: BackendRef) -> BackendCapacity:
        ref = ours(ref, HaproxyBackendRef)
        return _read(f"read {ref}", lambda: self._share(self._servers(ref)))

    def read_health(self, ref: BackendRef) -> HealthReport:
        """Servers HAProxy's checks see UP and that are not in maintenance (a drained server is
        healthy capacity: it takes no new traffic, but it could)."""
        ref = ours(ref, HaproxyBackendRef)
        servers = self._servers(ref)
        return HealthReport(healthy=sum(1 for s in servers if s.operational == "UP" and s.admin != "maint"), total=len(servers))

    def _wanted(self, servers: list[ServerState], desired: BackendCapacity) -> dict[str, tuple[int, str]]:
        """Each server's weight and state for ``desired``: its members exactly, when it lists them
        (an undo), else the share applied to every server."""
        if desired.members:
            return {m.name: (m.weight, m.state) for m in desired.members}
        s = desired.capacity_scaler
        wanted: dict[str, tuple[int, str]] = {}
        for server in servers:
            if server.admin == "maint":
                wanted[server.server] = (server.weight, "maint")  # an operator's: left as it is
            elif s == 0:
                wanted[server.server] = (server.weight, "drain")
            else:
                wanted[server.server] = (math.floor(s * server.initial_weight + 0.5), "ready")
        return wanted

    def set_share(self, change: SetBackendCapacity, log: Log) -> Change:
        ref = ours(change.backend, HaproxyBackendRef)
        with heartbeating():
            servers = _read(f"read {ref}", lambda: self._servers(ref))
            current = self._share(servers)
            wanted = self._wanted(servers, change.desired)
            if all((s.weight, s.admin) == wanted.get(s.server, (s.weight, s.admin)) for s in servers):
                log.info("HAProxy servers already as desired", backend=ref.backend, scaler=current.capacity_scaler)
                return Change(before=found_before(current, change.prior), after=current, changed=False, attempt=attempt())
            runtime = self._runtime(ref)
            stop_if_cancelled(f"change {ref}")
            with provider_call():
                for server in servers:
                    weight, state = wanted.get(server.server, (server.weight, server.admin))
                    if server.weight != weight:
                        runtime.set_weight(ref.backend, server.server, weight)
                    if server.admin != state:
                        runtime.set_state(ref.backend, server.server, state)  # type: ignore[arg-type]
            after = self._share(_read(f"read {ref}", lambda: self._servers(ref)))
            # Server by server is not atomic: an earlier attempt may have set some servers and died.
            # What it found is then the state the workflow recorded before the step (``prior``).
            before = change.prior if attempt() > 1 and change.prior is not None else current
            log.info("HAProxy servers set", backend=ref.backend, before=before.capacity_scaler, after=after.capacity_scaler)
            return Change(before=before, after=after, changed=True, attempt=attempt())


class NoCapacity:
    """A data centre has no group to resize: plan checks refuse a scale step there."""

    def read_size(self, ref: GroupRef) -> GroupSize:
        raise step_failure(FailureType.CLOUD_REFUSED, f"{ref}: the on-premises provider has no resizable groups")

    def set_size(self, change: ResizeGroup, log: Log) -> Change:
        raise step_failure(FailureType.CLOUD_REFUSED, f"{change.group}: the on-premises provider has no resizable groups")

    def room(self, ref: GroupRef) -> Quota:
        return Quota(None, "a data centre's capacity is fixed")

    def cpu_room(self, ref: GroupRef) -> Quota:
        return self.room(ref)


class Rfc2136Dns:
    """Records in zones whose servers take signed dynamic updates. ``key_dir`` holds each TSIG
    key as ``<name>.key`` (what ``tsig-keygen NAME`` prints): the worker's, never a run's."""

    def __init__(self, key_dir: Path | None) -> None:
        self._key_dir = key_dir

    def _client(self, ref: Rfc2136RecordRef) -> DnsClient:
        if self._key_dir is None:
            raise step_failure(
                FailureType.CLOUD_REFUSED,
                f"{ref}: this worker has no TSIG keys (EVAC_TSIG_KEY_DIR names the folder holding {ref.tsig_key}.key)",
            )
        path = self._key_dir / f"{ref.tsig_key}.key"
        try:
            fields = {"servers": ref.servers, "zone": ref.zone, "tsig_key_name": ref.tsig_key, "tsig_key_file": path}
            config = DnsConfig.model_validate({**fields, "timeout": call_timeout()})
        except (ValueError, OSError) as exc:
            raise step_failure(FailureType.CLOUD_REFUSED, f"{ref}: TSIG key {ref.tsig_key}: {exc}") from exc
        return DnsClient(config)

    def _read(self, ref: Rfc2136RecordRef) -> DnsRecord:
        found = self._client(ref).read(ref.name, ref.type)
        return DnsRecord() if found is None else DnsRecord(ttl=found.ttl, rrdatas=sorted(found.values))

    def read_record(self, ref: DnsRecordRef) -> DnsRecord:
        ref = ours(ref, Rfc2136RecordRef)
        return _read(f"read {ref}", lambda: self._read(ref))

    def set_record(self, change: SetDnsRecord, log: Log) -> Change:
        ref, desired = ours(change.record, Rfc2136RecordRef), change.desired
        if not desired.exists or desired.ttl is None:
            raise step_failure(FailureType.CLOUD_REFUSED, f"{ref}: a record is changed to values, not deleted")
        new = RecordSet(name=ref.name, rtype=ref.type, ttl=desired.ttl, values=tuple(desired.rrdatas))
        with heartbeating():
            client = self._client(ref)
            for _ in range(CONFLICT_RETRIES):
                current = _read(f"read {ref}", lambda: self._read(ref))
                if current == desired:
                    self._served(client, new, log)
                    log.info("record already as desired", rrdatas=desired.rrdatas, ttl=desired.ttl)
                    return Change(before=found_before(current, change.prior), after=current, changed=False, attempt=attempt())
                old = (
                    RecordSet(name=ref.name, rtype=ref.type, ttl=current.ttl or desired.ttl, values=tuple(current.rrdatas))
                    if current.exists
                    else None
                )
                stop_if_cancelled(f"change {ref}")
                try:
                    client.swap(old, new)
                except ProviderError as exc:
                    if exc.kind is ErrorKind.CONTENDED:
                        log.warning("record changed under us; re-reading", error=str(exc))
                        continue
                    with provider_call():
                        raise
                self._served(client, new, log)
                log.info("record changed", before=current.rrdatas, after=desired.rrdatas, ttl=desired.ttl)
                return Change(before=current, after=desired, changed=True, attempt=attempt())
            raise step_failure(FailureType.RESOURCE_CONTENDED, f"{ref}: the record kept changing while we changed it")

    def _served(self, client: DnsClient, new: RecordSet, log: Log) -> None:
        """Until every listed server answers ``new`` (never abandoned on a cancel: the update is sent)."""
        with provider_call():
            client.wait_served(new, SERVED_WITHIN_SECONDS)
        log.info("record served by every server", servers=len(client.config.servers))


class OnPremProvider:
    def __init__(self, tsig_key_dir: Path | None = None) -> None:
        self.traffic = HaproxyTraffic()
        self.capacity = NoCapacity()
        self.dns = Rfc2136Dns(tsig_key_dir)
