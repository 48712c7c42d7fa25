"""Every workflow the worker registers (and the replay tests replay against).

Kept out of ``workflows/__init__.py`` on purpose: the sandbox imports a workflow's module afresh
for every run it creates, and with it the ``workflows`` package; a package that imported every
workflow would have each new run import all of them (bench/evacuation.py: a tenth of the
worker's samples went to those imports).
"""

from __future__ import annotations

from workflows.auto_switch import AutoSwitchWorkflow
from workflows.drill import DrillWorkflow
from workflows.evacuation import EvacuationWorkflow
from workflows.failover import FailoverWorkflow
from workflows.guardian import RegionGuardianWorkflow
from workflows.readiness import ReadinessWorkflow
from workflows.scheduled import ScheduledDrillWorkflow

WORKFLOWS = [
    FailoverWorkflow,
    DrillWorkflow,
    ScheduledDrillWorkflow,
    RegionGuardianWorkflow,
    AutoSwitchWorkflow,
    EvacuationWorkflow,
    ReadinessWorkflow,
]
