"""The cloud state Evac reads and changes, and the inputs of the activities that do so.

Every mutating activity takes the state the workflow recorded just before (``prior``) and
the state it wants (``desired``), and returns a :class:`Change` with the state it found
before changing anything. Its compensation is the same activity with the two swapped.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from evac.plan import StopCondition
from evac.refs import GLOBAL, BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef
from providers.gcp.refs import CloudDnsRecordRef, CloudSqlInstanceRef, GcpBackendRef, GcpGroupRef, SpannerDatabaseRef
from providers.onprem.refs import HaproxyBackendRef, Rfc2136RecordRef


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- References: which resource, tagged by provider -------------------------------------
#
# The engine checks a reference's kind against evac/refs.py's classes; a field that carries one
# is one of these unions, tagged by ``provider``.

# Statically a field holds the kind (code above providers/ may use only what every provider's
# reference has); at run time pydantic reads it back as the provider's own class.
if TYPE_CHECKING:
    AnyGroupRef: TypeAlias = GroupRef
    AnyBackendRef: TypeAlias = BackendRef
    AnyDnsRecordRef: TypeAlias = DnsRecordRef
    AnyDatabaseRef: TypeAlias = DatabaseRef
    AnyLeaderRef: TypeAlias = LeaderRef
else:

    def _provider(value: Any) -> str:
        """A reference's provider tag (one recorded before the tag existed is Google Cloud's)."""
        found = value.get("provider", "gcp") if isinstance(value, dict) else getattr(value, "provider", "gcp")
        return str(found)

    def _tagged(*kinds: tuple[type[BaseModel], str]) -> Any:
        union = Union[tuple(Annotated[kind, Tag(tag)] for kind, tag in kinds)]  # noqa: UP007 - built at run time
        return Annotated[union, Discriminator(_provider)]

    AnyGroupRef = GcpGroupRef  # the on-premises provider has no resizable groups
    AnyBackendRef = _tagged((GcpBackendRef, "gcp"), (HaproxyBackendRef, "onprem"))
    AnyDnsRecordRef = _tagged((CloudDnsRecordRef, "gcp"), (Rfc2136RecordRef, "onprem"))
    # Databases are Google Cloud's only (Cloud SQL, Spanner), for now.
    AnyDatabaseRef = CloudSqlInstanceRef
    AnyLeaderRef = SpannerDatabaseRef


# --- States: what a resource looked like --------------------------------------------


class MemberShare(_Model):
    """One member of a share that its provider sets member by member (an HAProxy server)."""

    name: str
    weight: int
    state: Literal["ready", "drain", "maint"]


class BackendCapacity(_Model):
    kind: Literal["backend_capacity"] = "backend_capacity"
    capacity_scaler: float
    members: tuple[MemberShare, ...] = Field(
        default=(),
        exclude_if=lambda v: not v,
        description="Where the provider sets the share member by member (HAProxy's servers): each one's weight and "
        "state, so that an undo restores exactly what was there",
    )

    def summary(self) -> str:
        if not self.members:
            return f"scaler {self.capacity_scaler:g}"
        parts = ", ".join(f"{m.name} {m.state} {m.weight}" for m in self.members)
        return f"scaler {self.capacity_scaler:g} ({parts})"


class GroupSize(_Model):
    kind: Literal["group_size"] = "group_size"
    target_size: int

    def summary(self) -> str:
        return f"size {self.target_size}"


class DnsRecord(_Model):
    kind: Literal["dns_record"] = "dns_record"
    ttl: int | None = Field(default=None, description="None when the record does not exist")
    rrdatas: list[str] = Field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.rrdatas)

    def summary(self) -> str:
        return f"{' '.join(self.rrdatas)} ttl {self.ttl}" if self.exists else "(no record)"


class HealthReport(_Model):
    kind: Literal["health"] = "health"
    healthy: int
    total: int

    def summary(self) -> str:
        return f"{self.healthy}/{self.total} healthy"


class DatabaseRole(_Model):
    """What one region's instance of a replicated database is: the primary (takes writes), a
    replica of another instance, or not there at all."""

    kind: Literal["database_role"] = "database_role"
    role: Literal["primary", "replica", "absent"]
    replicates: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="A replica: the instance it replicates from"
    )

    @model_validator(mode="after")
    def _replica_names_its_primary(self) -> DatabaseRole:
        if (self.role == "replica") != (self.replicates is not None):
            raise ValueError("a replica names the instance it replicates (replicates), and only a replica does")
        return self

    def summary(self) -> str:
        if self.role == "replica":
            return f"replica of {self.replicates}"
        return "primary" if self.role == "primary" else "(no instance)"


class DatabaseLeader(_Model):
    """Which region leads a multi-region database's writes (None: the database names none)."""

    kind: Literal["database_leader"] = "database_leader"
    leader: str | None

    def summary(self) -> str:
        return f"leader {self.leader}" if self.leader else "(no default leader)"


ResourceState = Annotated[
    BackendCapacity | GroupSize | DnsRecord | HealthReport | DatabaseRole | DatabaseLeader, Field(discriminator="kind")
]


# --- Activity inputs and results -----------------------------------------------------


class StepContext(_Model):
    """Which run, service and step an activity call serves; every log line carries it."""

    service: str
    step: str
    budget_seconds: float | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A call to the region being left: its cloud calls, retries and waits together get at most this "
        "long (retries.source_deadline), each call's timeout within it; then it reports the region unreachable",
    )


class ReadBackendCapacity(_Model):
    context: StepContext
    backend: AnyBackendRef


class ReadGroupSize(_Model):
    context: StepContext
    group: AnyGroupRef


class ReadDnsRecord(_Model):
    context: StepContext
    record: AnyDnsRecordRef


class CheckBackendHealth(_Model):
    context: StepContext
    backend: AnyBackendRef


class WaitForHealthy(_Model):
    """Poll a region's backend health until ``min_healthy`` are healthy or ``deadline`` passes.

    One heartbeating activity, however long the wait: the history holds one event pair, not
    one per poll. Transient errors while polling are retried in place until the deadline; a
    retried attempt (a worker died) polls on until the same deadline.
    """

    context: StepContext
    backend: AnyBackendRef
    min_healthy: int = Field(ge=0)
    deadline: datetime = Field(description="Wall-clock time (UTC) after which the wait reports what it saw")
    interval_seconds: float = Field(gt=0)


class HealthWait(_Model):
    """What a :class:`WaitForHealthy` saw: the last report, whether it met the threshold, how many polls."""

    report: HealthReport
    reached: bool
    polls: int
    last_error: str | None = Field(default=None, description="The last transient error seen while polling, if any")


class CheckStopConditions(_Model):
    """Measure each stop condition once (the workflow judges the readings)."""

    context: StepContext
    conditions: list[StopCondition]
    backends: dict[str, AnyBackendRef] = Field(description="Region → backend, for backend_health conditions")


class SetBackendCapacity(_Model):
    context: StepContext
    backend: AnyBackendRef
    desired: BackendCapacity
    prior: BackendCapacity | None = None
    request_key: str = Field(description="Stable per mutation: retries of it reuse the same request id")


class ResizeGroup(_Model):
    context: StepContext
    group: AnyGroupRef
    desired: GroupSize
    prior: GroupSize | None = None
    request_key: str


class SetDnsRecord(_Model):
    context: StepContext
    record: AnyDnsRecordRef
    desired: DnsRecord
    prior: DnsRecord | None = None


class ReadDatabaseRole(_Model):
    context: StepContext
    database: AnyDatabaseRef


class SetDatabaseRole(_Model):
    """Make ``database`` play ``desired``'s role. From replica to primary by switchover (planned:
    the old primary becomes its replica, no data lost) or, with ``promote``, by promotion
    (unplanned: the old primary is not asked; it cannot be undone); from primary back to replica
    of the instance now primary by switchover; from absent to replica by creating it (its settings
    the primary's); from replica to absent by deleting it. Done when the operation is done and the
    roles read back."""

    context: StepContext
    database: AnyDatabaseRef
    desired: DatabaseRole
    prior: DatabaseRole | None = None
    promote: bool = Field(default=False, exclude_if=lambda v: not v)
    request_key: str


class ReadReplicationLag(_Model):
    context: StepContext
    database: AnyDatabaseRef = Field(description="The replica whose lag behind its primary is read")


class ReplicationLag(_Model):
    """How far a replica was behind its primary when read: the data a promotion could lose."""

    seconds: float | None = Field(description="None: no reading (the metric has no recent point)")
    measured_at: datetime
    source: str = Field(description="Where the reading came from, in words (the metric, its latest point's time)")

    def summary(self) -> str:
        return "unknown" if self.seconds is None else f"{self.seconds:g}s"


class ReadDatabaseLeader(_Model):
    context: StepContext
    database: AnyLeaderRef


class SetDatabaseLeader(_Model):
    context: StepContext
    database: AnyLeaderRef
    desired: DatabaseLeader
    prior: DatabaseLeader | None = None
    request_key: str


class Change(_Model):
    """What a mutating activity found before it acted and what it left."""

    before: ResourceState
    after: ResourceState
    changed: bool = Field(description="False when the resource already was as desired")
    attempt: int = Field(default=1, description="The activity attempt that produced this result")


class ReadBeforeChange(_Model):
    """What a mutating step reads just before its change, in one call (a local activity): the
    guard's readings of the target region, then the before-state of the one resource it changes
    (exactly one of ``backend``, ``group``, ``record``)."""

    context: StepContext
    guard: AnyBackendRef | None = Field(
        default=None, description="The target's backend whose health and capacity the guard checks; None: no guard"
    )
    min_healthy: int = Field(default=0, ge=0, description="The guard's threshold: below it the target's capacity is not read")
    drained_target_refuses: bool = Field(
        default=True,
        exclude_if=lambda v: v,
        description="A target drained itself (capacity scaler 0) refuses the change; False for a step that gives the "
        "target its share back (it is what makes the target take traffic)",
    )
    stop_on_refusal: bool = Field(
        default=True, description="When the guard's readings refuse, do not read the before-state (a dry run reads it)"
    )
    backend: AnyBackendRef | None = None
    group: AnyGroupRef | None = None
    record: AnyDnsRecordRef | None = None
    database: AnyDatabaseRef | None = Field(default=None, exclude_if=lambda v: v is None)
    leader: AnyLeaderRef | None = Field(default=None, exclude_if=lambda v: v is None)
    lag_of: AnyDatabaseRef | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="A data step: the replica whose replication lag is read after the before-state (the RPO it records)",
    )
    resource_budget_seconds: float | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The resource is the source region's: its read gets at most this long, and a read that does not "
        "answer in time is reported (BeforeChange.unreachable) instead of failing",
    )

    @model_validator(mode="after")
    def _one_resource(self) -> ReadBeforeChange:
        named = [n for n in ("backend", "group", "record", "database", "leader") if getattr(self, n) is not None]
        if len(named) != 1:
            raise ValueError(
                f"name exactly one resource to read (backend, group, record, database or leader), not {named or 'none'}"
            )
        return self

    def refused_by(self, health: HealthReport, capacity: BackendCapacity | None) -> bool:
        """Whether the guard's readings refuse the change (the workflow words the verdict)."""
        drained = capacity is not None and capacity.capacity_scaler == 0 and self.drained_target_refuses
        return health.healthy < self.min_healthy or drained


class BeforeChange(_Model):
    """What a :class:`ReadBeforeChange` read: the guard's readings (None: not read) and the before-state
    (None only when the guard refused and ``stop_on_refusal`` held)."""

    health: HealthReport | None = None
    capacity: BackendCapacity | None = None
    before: ResourceState | None = None
    unreachable: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="Why a budgeted before-state read has no answer"
    )
    lag: ReplicationLag | None = Field(default=None, exclude_if=lambda v: v is None, description="lag_of's replication lag")


class PreflightReads(_Model):
    """Every resource a run's plan touches, read once before it changes any (one activity)."""

    context: StepContext
    backends: list[AnyBackendRef] = Field(default_factory=list)
    groups: list[AnyGroupRef] = Field(default_factory=list)
    records: list[AnyDnsRecordRef] = Field(default_factory=list)
    databases: list[AnyDatabaseRef] = Field(default_factory=list, exclude_if=lambda v: not v)
    leaders: list[AnyLeaderRef] = Field(default_factory=list, exclude_if=lambda v: not v)
    source_region: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The region being left: reads of resources only its API serves get source_budget_seconds, and "
        "one that does not answer in time is reported unreachable instead of failing the preflight",
    )
    source_budget_seconds: float | None = Field(default=None, exclude_if=lambda v: v is None)

    def count(self) -> int:
        return len(self.backends) + len(self.groups) + len(self.records) + len(self.databases) + len(self.leaders)


class PreflightReadings(_Model):
    """What a :class:`PreflightReads` read, in its order (None: a source-only read that did not
    answer within its budget; ``unreachable`` says which and why)."""

    backends: list[BackendCapacity | None] = Field(default_factory=list)
    groups: list[GroupSize | None] = Field(default_factory=list)
    records: list[DnsRecord | None] = Field(default_factory=list)
    databases: list[DatabaseRole | None] = Field(default_factory=list, exclude_if=lambda v: not v)
    leaders: list[DatabaseLeader | None] = Field(default_factory=list, exclude_if=lambda v: not v)
    unreachable: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)


class ActivityName:
    """Registered activity names: workflows call these, tests register stand-ins under them."""

    READ_BACKEND_CAPACITY = "read_backend_capacity"
    SET_BACKEND_CAPACITY = "set_backend_capacity"
    READ_GROUP_SIZE = "read_group_size"
    RESIZE_GROUP = "resize_group"
    READ_DNS_RECORD = "read_dns_record"
    SET_DNS_RECORD = "set_dns_record"
    CHECK_BACKEND_HEALTH = "check_backend_health"
    WAIT_FOR_HEALTHY = "wait_for_healthy_backends"
    CHECK_STOP_CONDITIONS = "check_stop_conditions"
    READ_BEFORE_CHANGE = "read_before_change"
    PREFLIGHT_READS = "preflight_reads"
    READ_DATABASE_ROLE = "read_database_role"
    SET_DATABASE_ROLE = "set_database_role"
    READ_REPLICATION_LAG = "read_replication_lag"
    READ_DATABASE_LEADER = "read_database_leader"
    SET_DATABASE_LEADER = "set_database_leader"


__all__ = [
    "GLOBAL",
    "AnyBackendRef",
    "AnyDatabaseRef",
    "AnyLeaderRef",
    "AnyDnsRecordRef",
    "AnyGroupRef",
    "BackendRef",
    "CloudDnsRecordRef",
    "CloudSqlInstanceRef",
    "DatabaseRef",
    "DnsRecordRef",
    "GcpBackendRef",
    "GcpGroupRef",
    "GroupRef",
    "LeaderRef",
    "SpannerDatabaseRef",
]
