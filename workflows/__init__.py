"""Workflows: deterministic orchestration, no I/O. One module per workflow; the engine they
compose is ``saga.py`` (undos and rollback), ``steps.py`` (the step table) and
``plan_run.py`` (preflight, steps, rollback and the end of a run)."""

from __future__ import annotations

from workflows.auto_switch import AutoSwitchWorkflow
from workflows.drill import DrillWorkflow
from workflows.evacuation import EvacuationWorkflow
from workflows.failover import FailoverWorkflow
from workflows.guardian import RegionGuardianWorkflow
from workflows.scheduled import ScheduledDrillWorkflow

# Every workflow the worker registers (and the replay tests replay against).
WORKFLOWS = [
    FailoverWorkflow,
    DrillWorkflow,
    ScheduledDrillWorkflow,
    RegionGuardianWorkflow,
    AutoSwitchWorkflow,
    EvacuationWorkflow,
]
