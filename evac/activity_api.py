"""The activity contract, typed: what workflows call and what the worker registers.

Each function here is a stub that only carries an activity's registered name and its input
and result types, so that ``workflow.execute_activity(activity_api.set_backend_capacity, …)``
is checked by mypy at the call site. The implementations live in ``activities/`` (they need
Google Cloud clients, which never enter the workflow sandbox) and register under the same
names; workflow tests register stand-ins under them too. ``tests/unit`` checks that every
stub has an implementation with the same input and result types.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from evac.alerting.models import WorldFacts
from evac.blackouts import CHECK_BLACKOUTS, BlackoutCheck, BlackoutVerdict
from evac.drills import ConditionReadings
from evac.evacuation import ReadTargets, ReadTargetsResult
from evac.notifications import SEND_NOTIFICATION, Notification, NotificationResult
from evac.readiness import (
    EVALUATE_READINESS,
    LAST_PASSED_DRILL,
    PREVIOUS_READINESS,
    DrillSeen,
    EvaluateService,
    LastPassedDrill,
    PreviousReadiness,
    PreviousStates,
    ServiceCheck,
)
from evac.resources import (
    ActivityName,
    AnyBackendRef,
    BackendCapacity,
    BeforeChange,
    Change,
    CheckBackendHealth,
    CheckStopConditions,
    DatabaseLeader,
    DatabaseRole,
    DnsRecord,
    GroupSize,
    HealthReport,
    HealthWait,
    PreflightReadings,
    PreflightReads,
    ReadBackendCapacity,
    ReadBeforeChange,
    ReadDatabaseLeader,
    ReadDatabaseRole,
    ReadDnsRecord,
    ReadGroupSize,
    ReadReplicationLag,
    ReplicationLag,
    ResizeGroup,
    SetBackendCapacity,
    SetDatabaseLeader,
    SetDatabaseRole,
    SetDnsRecord,
    WaitForHealthy,
)

GATHER_FACTS = "gather_facts"
READ_TARGETS = "read_targets"


class ServiceQuery(BaseModel):
    """One candidate service whose facts a guardian needs: where it would go, and the target's guard."""

    model_config = ConfigDict(extra="forbid")

    service: str
    target: str
    target_required: int = Field(description="The plan's guard: the least healthy backends the target must have")
    target_backend: AnyBackendRef | None = Field(
        description="The target's backend to read health from; None: not in the topology"
    )


class FactsRequest(BaseModel):
    """What a region's guardian asks ``gather_facts`` about, for its candidates only."""

    model_config = ConfigDict(extra="forbid")

    region: str
    services: list[ServiceQuery]


def _stub(name: str) -> NotImplementedError:
    return NotImplementedError(f"activity '{name}' is a contract stub; the worker registers the implementation")


@activity.defn(name=ActivityName.READ_BACKEND_CAPACITY)
def read_backend_capacity(input: ReadBackendCapacity) -> BackendCapacity:
    """The capacity scaler of one region's backend in its backend service."""
    raise _stub(ActivityName.READ_BACKEND_CAPACITY)


@activity.defn(name=ActivityName.SET_BACKEND_CAPACITY)
def set_backend_capacity(input: SetBackendCapacity) -> Change:
    """Set the capacity scaler; waits until the cloud's operation is DONE; returns the before-state."""
    raise _stub(ActivityName.SET_BACKEND_CAPACITY)


@activity.defn(name=ActivityName.READ_GROUP_SIZE)
def read_group_size(input: ReadGroupSize) -> GroupSize:
    """The target size of one region's managed instance group."""
    raise _stub(ActivityName.READ_GROUP_SIZE)


@activity.defn(name=ActivityName.RESIZE_GROUP)
def resize_group(input: ResizeGroup) -> Change:
    """Resize the group; waits for the operation and for the group to be stable; returns the before-state."""
    raise _stub(ActivityName.RESIZE_GROUP)


@activity.defn(name=ActivityName.READ_DNS_RECORD)
def read_dns_record(input: ReadDnsRecord) -> DnsRecord:
    """The service's DNS record as Cloud DNS holds it now."""
    raise _stub(ActivityName.READ_DNS_RECORD)


@activity.defn(name=ActivityName.SET_DNS_RECORD)
def set_dns_record(input: SetDnsRecord) -> Change:
    """Replace the record in one atomic change; waits until the change is done; returns the before-state."""
    raise _stub(ActivityName.SET_DNS_RECORD)


@activity.defn(name=ActivityName.READ_DATABASE_ROLE)
def read_database_role(input: ReadDatabaseRole) -> DatabaseRole:
    """What one region's instance of a service's database is: primary, a replica, or absent."""
    raise _stub(ActivityName.READ_DATABASE_ROLE)


@activity.defn(name=ActivityName.SET_DATABASE_ROLE)
def set_database_role(input: SetDatabaseRole) -> Change:
    """Switch over, promote, create or delete a database instance; returns the before-state."""
    raise _stub(ActivityName.SET_DATABASE_ROLE)


@activity.defn(name=ActivityName.READ_REPLICATION_LAG)
def read_replication_lag(input: ReadReplicationLag) -> ReplicationLag:
    """How far a replica is behind its primary."""
    raise _stub(ActivityName.READ_REPLICATION_LAG)


@activity.defn(name=ActivityName.READ_DATABASE_LEADER)
def read_database_leader(input: ReadDatabaseLeader) -> DatabaseLeader:
    """A multi-region database's leader region."""
    raise _stub(ActivityName.READ_DATABASE_LEADER)


@activity.defn(name=ActivityName.SET_DATABASE_LEADER)
def set_database_leader(input: SetDatabaseLeader) -> Change:
    """Make a region the database's leader; returns the before-state."""
    raise _stub(ActivityName.SET_DATABASE_LEADER)


@activity.defn(name=ActivityName.CHECK_BACKEND_HEALTH)
def check_backend_health(input: CheckBackendHealth) -> HealthReport:
    """How many of a region's backends the load balancer sees as healthy, once."""
    raise _stub(ActivityName.CHECK_BACKEND_HEALTH)


@activity.defn(name=ActivityName.READ_BEFORE_CHANGE)
def read_before_change(input: ReadBeforeChange) -> BeforeChange:
    """A mutating step's reads in one call (run as a local activity): the target's health and,
    if enough are healthy, its capacity (the guard's readings); then the before-state."""
    raise _stub(ActivityName.READ_BEFORE_CHANGE)


@activity.defn(name=ActivityName.PREFLIGHT_READS)
def preflight_reads(input: PreflightReads) -> PreflightReadings:
    """Every resource a run's plan touches, read at once; fails as the first failing read does."""
    raise _stub(ActivityName.PREFLIGHT_READS)


@activity.defn(name=ActivityName.WAIT_FOR_HEALTHY)
def wait_for_healthy_backends(input: WaitForHealthy) -> HealthWait:
    """Poll health until the threshold is met or the timeout passes (one heartbeating activity)."""
    raise _stub(ActivityName.WAIT_FOR_HEALTHY)


@activity.defn(name=ActivityName.CHECK_STOP_CONDITIONS)
def check_stop_conditions(input: CheckStopConditions) -> ConditionReadings:
    """Measure every stop condition of a drill once: healthy backends, HTTP status, PromQL value."""
    raise _stub(ActivityName.CHECK_STOP_CONDITIONS)


@activity.defn(name=SEND_NOTIFICATION)
def send_notification(input: Notification) -> NotificationResult:
    """Post one notification to every target the worker is configured with, each retried in
    place a few times; a delivery failure is in the result, never raised."""
    raise _stub(SEND_NOTIFICATION)


@activity.defn(name=CHECK_BLACKOUTS)
def check_blackouts(input: BlackoutCheck) -> BlackoutVerdict:
    """The blackout window in effect at ``input.at``: the worker's blackouts file (read now), then the plan's."""
    raise _stub(CHECK_BLACKOUTS)


@activity.defn(name=GATHER_FACTS)
def gather_facts(input: FactsRequest) -> WorldFacts:
    """The world as a guardian's decision needs it: the kill switch, automatic failovers in the
    last hour, and per service the target's health and alerts, its run, its newest failover.
    An unreadable fact is unknown (None, or the safe reading), never an error."""
    raise _stub(GATHER_FACTS)


@activity.defn(name=READ_TARGETS)
def read_targets(input: ReadTargets) -> ReadTargetsResult:
    """Per service, every candidate region's healthy backends and capacity scaler, read now (an
    evacuation's --auto-target chooses from them). An unreadable region is reported unreadable."""
    raise _stub(READ_TARGETS)


@activity.defn(name=EVALUATE_READINESS)
def evaluate_readiness(input: EvaluateService) -> ServiceCheck:
    """Read what a run of the plan for one service would touch, and what it would meet; change nothing."""
    raise _stub(EVALUATE_READINESS)


@activity.defn(name=PREVIOUS_READINESS)
def previous_readiness(input: PreviousReadiness) -> PreviousStates:
    """The plans' states at a readiness schedule's latest evaluation that has ended."""
    raise _stub(PREVIOUS_READINESS)


@activity.defn(name=LAST_PASSED_DRILL)
def last_passed_drill(input: LastPassedDrill) -> DrillSeen:
    """A service's newest passed drill."""
    raise _stub(LAST_PASSED_DRILL)


ALL = [
    check_blackouts,
    read_backend_capacity,
    set_backend_capacity,
    read_group_size,
    resize_group,
    read_dns_record,
    set_dns_record,
    read_database_role,
    set_database_role,
    read_replication_lag,
    read_database_leader,
    set_database_leader,
    check_backend_health,
    read_before_change,
    preflight_reads,
    wait_for_healthy_backends,
    check_stop_conditions,
    send_notification,
    gather_facts,
    read_targets,
    evaluate_readiness,
    previous_readiness,
    last_passed_drill,
]
