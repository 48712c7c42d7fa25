"""Each workflow run's command sequence, one line per command, from its history.

A history holds, besides what happened to a run, the events its own commands produced: the
activities it scheduled, its timers, children, signals and cancels to other workflows, its
markers (a local activity, a patch), its search attribute and memo upserts and how it ended.
Replaying a run means its code must issue those commands again in that order, so this sequence
is what a change to workflow code must keep for running workflows to replay. It carries no ids,
times or payload values: only what the command was (an activity's type and whether it went to
the writes queue, a search attribute's or memo's keys, a child's workflow type, …).

``BASELINE`` (command_fingerprints.json) holds the sequence of every stored history;
``python -m tests.workflow.record_histories all`` rewrites it with the histories.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

HISTORIES = Path(__file__).parent / "histories"
BASELINE = Path(__file__).parent / "command_fingerprints.json"
WRITES_SUFFIX = "-writes"  # evac.config.writes_task_queue


def _payload_json(payload_data: bytes) -> object:
    try:
        return json.loads(payload_data)
    except ValueError:
        return None


def _marker(event: HistoryEvent) -> str:
    a = event.marker_recorded_event_attributes
    if a.marker_name == "core_local_activity" and "data" in a.details:
        data = _payload_json(a.details["data"].payloads[0].data)
        if isinstance(data, dict) and "activity_type" in data:
            return f"local activity {data['activity_type']}"
    if a.marker_name == "core_patch" and "patch-data" in a.details:
        data = _payload_json(a.details["patch-data"].payloads[0].data)
        if isinstance(data, dict):
            return f"patch {data.get('id')}" + (" (deprecated)" if data.get("deprecated") else "")
    return f"marker {a.marker_name}"


def command(event: HistoryEvent) -> str | None:
    """The command that produced ``event``, as one normalised line (None: no command did)."""
    t = event.event_type
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        a = event.activity_task_scheduled_event_attributes
        queue = " on the writes queue" if a.task_queue.name.endswith(WRITES_SUFFIX) else ""
        return f"activity {a.activity_type.name}{queue}"
    if t == EventType.EVENT_TYPE_TIMER_STARTED:
        return "timer"
    if t == EventType.EVENT_TYPE_TIMER_CANCELED:
        return "cancel timer"
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
        return "cancel activity"
    if t == EventType.EVENT_TYPE_MARKER_RECORDED:
        return _marker(event)
    if t == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        return f"start child {event.start_child_workflow_execution_initiated_event_attributes.workflow_type.name}"
    if t == EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return f"signal external {event.signal_external_workflow_execution_initiated_event_attributes.signal_name}"
    if t == EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
        return "cancel external"
    if t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        keys = sorted(event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        return f"upsert search attributes {', '.join(keys)}"
    if t == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        return f"upsert memo {', '.join(sorted(event.workflow_properties_modified_event_attributes.upserted_memo.fields))}"
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return "complete"
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return "fail"
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        return "cancel (as cancelled)"
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return "continue as new"
    return None


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def commands(history: WorkflowHistory) -> list[str]:
    return [line for line in map(command, history.events) if line is not None]


def runs_of(path: Path) -> list[WorkflowHistory]:
    """A stored file's runs: one history, or a chain's (a JSON list, oldest first)."""
    data = json.loads(path.read_text())
    items = data if isinstance(data, list) else [data]
    return [WorkflowHistory.from_json(f"{path.stem}-{i}", json.dumps(item)) for i, item in enumerate(items)]


def key(path: Path, run: int, runs: int, root: Path = HISTORIES) -> str:
    """A run's name in the baseline: its file's path under histories/, and its place in a chain."""
    name = path.relative_to(root).with_suffix("").as_posix()
    return f"{name}#{run + 1}" if runs > 1 else name


def fingerprints(root: Path = HISTORIES) -> dict[str, dict[str, Any]]:
    """Every stored run under ``root``: its workflow type and command sequence, by :func:`key`."""
    result: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.json")):
        runs = runs_of(path)
        for i, history in enumerate(runs):
            result[key(path, i, len(runs), root)] = {"workflow_type": workflow_type(history), "commands": commands(history)}
    return result


def write_baseline(root: Path = HISTORIES, baseline: Path = BASELINE) -> None:
    baseline.write_text(json.dumps(fingerprints(root), indent=1, ensure_ascii=False) + "\n")


def read_baseline(baseline: Path = BASELINE) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = json.loads(baseline.read_text())
    return result
