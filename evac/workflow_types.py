"""Every workflow's type name, in one place. Each workflow is declared under its constant
(``@workflow.defn(name=FAILOVER)``); code that refers to a type without importing the workflow
(visibility queries, the audit reading a history, the alert receiver, a guardian starting a run
it never awaits) uses the same constant, never a string of its own."""

from __future__ import annotations

FAILOVER = "FailoverWorkflow"
DRILL = "DrillWorkflow"
EVACUATION = "EvacuationWorkflow"
GUARDIAN = "RegionGuardianWorkflow"
AUTO_SWITCH = "AutoSwitchWorkflow"
SCHEDULED_DRILL = "ScheduledDrillWorkflow"
READINESS = "ReadinessWorkflow"
