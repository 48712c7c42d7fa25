"""What a provider offers, per resource kind: the protocol ``activities/`` calls.

A provider implements these in its own terms (Google Cloud's backend services and managed
instance groups; HAProxy's servers; a DNS server's dynamic updates) and in Evac's states
(``evac/resources.py``). Its code runs inside an activity: it keeps to the activity's call
discipline (``activities/budget``: every call's timeout, the source region's budget;
``activities/retry``: in-place retries of idempotent calls, pauses that wake on a cancel;
``activities/heartbeat``: progress a retried attempt can resume from) and fails with
``activities.errors.step_failure`` kinds (``evac/failures.py``), or raises
:class:`providers.errors.ProviderError`, which the activity translates. What each guarantees
(atomicity, what "done" means, the undo) is in ``docs/providers.md``.

Every change is idempotent and returns its before-state (:class:`~evac.resources.Change`):
a retried attempt that finds the resource already as desired reports it unchanged, with the
before-state the workflow recorded (``activities._common.found_before``), and a change is
reported only once it is done (its operation finished, its record served).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from evac.refs import BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef
from evac.resources import (
    BackendCapacity,
    Change,
    DatabaseLeader,
    DatabaseRole,
    DnsRecord,
    GroupSize,
    HealthReport,
    ReplicationLag,
    ResizeGroup,
    SetBackendCapacity,
    SetDatabaseLeader,
    SetDatabaseRole,
    SetDnsRecord,
)

Log = structlog.stdlib.BoundLogger


class Traffic(Protocol):
    """A region's share of a service's load balancing, and the health of what serves it."""

    def read_share(self, ref: BackendRef) -> BackendCapacity:
        """The share, read (idempotent calls retried in place)."""
        ...

    def set_share(self, change: SetBackendCapacity, log: Log) -> Change:
        """Make the share ``change.desired``; done when the load balancer applies it."""
        ...

    def read_health(self, ref: BackendRef) -> HealthReport:
        """One reading of how many of the region's backends are healthy (not retried: callers
        that poll decide what a transient failure means)."""
        ...


@dataclass(frozen=True)
class Quota:
    """A region's room for more instances as read (``room``: None when unknown), in words."""

    room: int | None
    text: str


class Capacity(Protocol):
    """A region's resizable capacity (a managed instance group)."""

    def read_size(self, ref: GroupRef) -> GroupSize: ...

    def set_size(self, change: ResizeGroup, log: Log) -> Change:
        """Resize; done when the resize itself is (the new instances' health is verify_health's)."""
        ...

    def room(self, ref: GroupRef) -> Quota:
        """How many more instances the group's region may hold (its quota), in numbers and words."""
        ...

    def cpu_room(self, ref: GroupRef) -> Quota:
        """How many more of the group's instances the region's CPU quota has room for."""
        ...


class Dns(Protocol):
    """The record that sends a service's clients to the serving region."""

    def read_record(self, ref: DnsRecordRef) -> DnsRecord: ...

    def set_record(self, change: SetDnsRecord, log: Log) -> Change:
        """Compare-and-swap: change the record from what it holds to ``change.desired`` in one
        atomic change; done when the change is served."""
        ...


class Databases(Protocol):
    """A service's replicated database, instance by region (Cloud SQL): who is primary."""

    def read_role(self, ref: DatabaseRef) -> DatabaseRole:
        """The instance's role, read from the instance itself (no other region is asked)."""
        ...

    def set_role(self, change: SetDatabaseRole, log: Log) -> Change:
        """Switch over, promote, create or delete (see :class:`SetDatabaseRole`); done when the
        operation is and the roles read back."""
        ...

    def replication_lag(self, ref: DatabaseRef) -> ReplicationLag:
        """How far the replica ``ref`` is behind its primary, as its monitoring last saw it."""
        ...


class Leaders(Protocol):
    """A multi-region database's leader region (Spanner's default leader)."""

    def read_leader(self, ref: LeaderRef) -> DatabaseLeader: ...

    def set_leader(self, change: SetDatabaseLeader, log: Log) -> Change:
        """Set the leader; done when its schema change (a long-running operation) is."""
        ...
