"""What the front doors (CLI, alert receiver, schedules) do with Temporal: load and check plans,
start runs all or none (under the start policy: reasons, blackout windows), read and follow
them, abort them.

Plain functions over a connected client; a front door only turns its options into calls and
its errors (the tree in :mod:`evac.errors`) into its own words.
"""

from evac.control.evacuate import (
    EvacuationSnapshot,
    StartedEvacuation,
    abort_evacuation,
    evacuation_input,
    evacuation_progress,
    follow_evacuation,
    start_evacuation,
)
from evac.control.failback import FailbackRefused, failback_input, start_failback
from evac.control.follow import RunRef, Snapshot, follow
from evac.control.policy import DRILL_REASON, NO_BLACKOUTS, Blackouts, admitted_trigger, blackout_override, recorded_reason
from evac.control.records import AbortOutcome, abort, describe, progress, running_run_id, worker_polling
from evac.control.start import StartedRun, check_project, drill_inputs, failover_inputs, load_documents, start_failover
from evac.errors import NotRunning, NoWorker, NoWorkerAnswered, RunNotFound, ServiceBusy, WorkerWaitExpired

__all__ = [
    "AbortOutcome",
    "Blackouts",
    "DRILL_REASON",
    "NO_BLACKOUTS",
    "admitted_trigger",
    "blackout_override",
    "recorded_reason",
    "EvacuationSnapshot",
    "FailbackRefused",
    "failback_input",
    "start_failback",
    "StartedEvacuation",
    "abort_evacuation",
    "evacuation_input",
    "evacuation_progress",
    "follow_evacuation",
    "start_evacuation",
    "NoWorker",
    "NoWorkerAnswered",
    "NotRunning",
    "RunNotFound",
    "ServiceBusy",
    "WorkerWaitExpired",
    "RunRef",
    "Snapshot",
    "StartedRun",
    "abort",
    "check_project",
    "describe",
    "drill_inputs",
    "failover_inputs",
    "follow",
    "load_documents",
    "progress",
    "running_run_id",
    "start_failover",
    "worker_polling",
]
