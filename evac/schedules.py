"""A scheduled drill as Temporal sees it: the launcher's input and its record.

A Temporal Schedule appends a timestamp to the id of each workflow it starts, so it cannot
start a drill under the service's lock (``failover/<service>``) itself. It starts
``ScheduledDrillWorkflow`` instead, which checks the blackout windows, starts one
``DrillWorkflow`` per service under that lock, waits for them and keeps a ``ScheduledRun``
record (its query, its memo and its result): what ``evac schedule describe`` shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from evac.blackouts import BlackoutMatch
from evac.plan import Plan
from evac.runs import DrillInput

SCHEDULE_ID_PREFIX = "evac-drill/"
# The memo key under which a launcher keeps its ScheduledRun (read with no worker).
MEMO_SCHEDULED_RUN = "scheduled_run"
# The memo key under which a schedule keeps what it runs (the plan, its digest, the bake).
MEMO_SCHEDULE = "evac_schedule"


def schedule_id(name: str) -> str:
    """``weekly-checkout`` -> ``evac-drill/weekly-checkout`` (Evac's schedules, apart from any other)."""
    return f"{SCHEDULE_ID_PREFIX}{name}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduledDrillInput(_Model):
    """What every action of a schedule runs: the plan as validated at ``evac schedule create``."""

    schedule_id: str
    plan: Plan
    plan_digest: str
    bake: timedelta | None = Field(default=None, description="Overrides the plan's drill.bake")
    drills: list[DrillInput] = Field(min_length=1, description="One drill per service of the plan")


class ScheduledOutcome(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing was started (blackout, service busy); nothing was changed


class ServiceOutcome(_Model):
    service: str
    outcome: ScheduledOutcome = ScheduledOutcome.RUNNING
    reason: str = Field(default="", description="Why it did not pass, or why it was skipped")
    workflow_id: str | None = None
    run_id: str | None = None
    status: str | None = Field(default=None, description="The drill's run status (succeeded, rolled_back …)")
    drill_outcome: str | None = Field(default=None, description="The drill report's outcome (passed, not_ready …)")


class ScheduledRun(_Model):
    """One action of a schedule: when, what, and the outcome of each service's drill."""

    schedule_id: str
    workflow_id: str
    run_id: str
    plan_name: str
    plan_digest: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: ScheduledOutcome = ScheduledOutcome.RUNNING
    reason: str = ""
    blackout: BlackoutMatch | None = Field(default=None, description="The window the run fell in (it was skipped)")
    services: list[ServiceOutcome] = Field(default_factory=list)

    def conclude(self) -> None:
        """The overall outcome from the services': failed if any failed, passed if all passed,
        else skipped (some or all were not started)."""
        outcomes = [s.outcome for s in self.services]
        if ScheduledOutcome.FAILED in outcomes:
            self.outcome = ScheduledOutcome.FAILED
            self.reason = "; ".join(f"{s.service}: {s.reason}" for s in self.services if s.outcome == ScheduledOutcome.FAILED)
        elif all(o == ScheduledOutcome.PASSED for o in outcomes):
            self.outcome = ScheduledOutcome.PASSED
            self.reason = ""
        else:
            self.outcome = ScheduledOutcome.SKIPPED
            self.reason = "; ".join(f"{s.service}: {s.reason}" for s in self.services if s.outcome == ScheduledOutcome.SKIPPED)
