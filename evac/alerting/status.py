"""What a region guardian and the kill switch answer when asked, and the limits of their runs.

``RegionGuardianWorkflow`` (``workflows/guardian.py``) answers its ``status`` query with a
:class:`GuardianStatus`; ``AutoSwitchWorkflow`` (``workflows/auto_switch.py``) answers its
``switch`` query with a :class:`SwitchRecord`: the switch as it is and every change of it (who,
why, when), so that turning automation off is itself on the record. ``evac alerts status`` and
``evac auto disable | enable`` (``evac/control/alerts.py``) read and write them.

The limits below are read by the workflows at run time (this module is passed through their
sandbox), so a test may lower them to force a continue-as-new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from evac.alerting.models import GuardianPlan, GuardianPolicy, GuardianState, KillSwitch

# A guardian continues as new once its history passes this many events (or when Temporal
# suggests it), carrying its state; far below Temporal's warning at 10,240 events.
GUARDIAN_HISTORY_LIMIT = 2_000
# A guardian whose candidates were suppressed or whose facts were unreadable decides again
# this long after (a target may recover, a cooldown or the hourly cap may pass).
GUARDIAN_RECHECK = timedelta(seconds=60)
# The kill switch continues as new after this many changes, carrying the newest SWITCH_CHANGES_KEPT.
SWITCH_CHANGES_LIMIT = 500
SWITCH_CHANGES_KEPT = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanSummary(_Model):
    """One plan a guardian would run, as ``evac alerts status`` lists it."""

    service: str
    plan: str
    target: str
    auto: bool

    @classmethod
    def of(cls, plan: GuardianPlan) -> PlanSummary:
        return cls(service=plan.service, plan=plan.plan_name, target=plan.target, auto=plan.auto)


class GuardianStatus(_Model):
    """A guardian's answer to its ``status`` query: its policy, its plans and everything it knows."""

    region: str
    workflow_id: str = ""
    run_id: str = ""
    policy: GuardianPolicy
    plans: list[PlanSummary] = Field(default_factory=list)
    state: GuardianState
    wake_at: datetime | None = Field(default=None, description="When it will decide again without a new alert")


class SwitchChangeRecord(_Model):
    """One ``evac auto disable | enable``: who, why, and when the switch applied it."""

    enabled: bool
    by: str
    reason: str
    at: datetime


class SwitchRecord(_Model):
    """The kill switch's state and its changes (newest last): its start input and its query's answer."""

    switch: KillSwitch = Field(default_factory=KillSwitch)
    changes: list[SwitchChangeRecord] = Field(default_factory=list)
    runs: int = Field(default=1, description="The switch's run count (continue-as-new starts another)")
