"""Each workflow's command sequence against the committed baseline (command_fingerprints.json).

A running workflow replays its history on whatever code the worker has: a change to the
commands a workflow issues (an activity added, removed, reordered or renamed, a timer, a child,
a memo or search attribute upsert) breaks the runs in flight. Evac is pre-1.0 and keeps no
versioning branches (``workflow.patched``), so such a change must be seen in review: it changes
the baseline file in the same commit.

- Every stored history's sequence is the baseline's (histories and baseline recorded together).
- Fresh canonical runs, with today's code on the time-skipping server, issue the baseline's
  sequences: the scenarios of record_histories whose commands do not depend on timing (the demo
  failover's three outcomes; the failover and drill out of a region whose API is dead; the
  approved drill and a schedule's launcher).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow

from tests.workflow import record_histories
from tests.workflow.fingerprints import BASELINE, fingerprints, read_baseline
from workflows.registry import WORKFLOWS

RECORD_AGAIN = (
    "this changes what running workflows replay (their command sequence). If that is intended "
    "(Evac is pre-1.0: no versioning branches), record the histories and the baseline again with "
    "`python -m tests.workflow.record_histories all` and commit both; otherwise keep the commands as they were."
)
# Scenarios whose runs issue the same commands however the test server schedules them.
FRESH = ["failover", "dead_source", "operator"]
# Registered workflows with no stored history: the kill switch only takes signals (no command
# but its continue-as-new after SWITCH_CHANGES_LIMIT changes).
NOT_STORED = {"AutoSwitchWorkflow"}


def _differences(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            lines.append(f"{name}: in the baseline, not recorded")
            continue
        if name not in expected:
            lines.append(f"{name}: recorded, not in the baseline")
            continue
        want, got = expected[name], actual[name]
        if want == got:
            continue
        lines.append(f"{name} ({got['workflow_type']}):")
        diff = difflib.unified_diff(
            [str(c) for c in want["commands"]],
            [str(c) for c in got["commands"]],
            "baseline",
            "now",
            lineterm="",
        )
        lines.extend(f"  {line}" for line in diff)
        if want["workflow_type"] != got["workflow_type"]:
            lines.append(f"  workflow type {want['workflow_type']} -> {got['workflow_type']}")
    return "\n".join(lines)


def test_every_stored_history_issues_the_commands_of_the_baseline() -> None:
    baseline, stored = read_baseline(), fingerprints()
    assert stored == baseline, (
        f"{BASELINE.name} and the stored histories differ:\n{_differences(baseline, stored)}\n{RECORD_AGAIN}"
    )


def test_every_registered_workflow_has_a_baseline() -> None:
    registered = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}
    covered = {str(entry["workflow_type"]) for entry in read_baseline().values()}
    assert registered - NOT_STORED <= covered, f"no stored history of {sorted(registered - NOT_STORED - covered)}"
    assert not NOT_STORED & covered, "a history is stored now: take it off NOT_STORED"


@pytest.mark.parametrize("name", FRESH)
async def test_a_fresh_run_issues_the_commands_of_the_baseline(name: str, tmp_path: Path) -> None:
    await record_histories.SETS[name](tmp_path)
    fresh = fingerprints(tmp_path)
    assert fresh, f"the set {name} recorded nothing"
    baseline = read_baseline()
    expected = {key: baseline[key] for key in fresh if key in baseline}
    assert fresh == expected, (
        f"a fresh run of the set '{name}' differs from {BASELINE.name}:\n{_differences(expected, fresh)}\n{RECORD_AGAIN}"
    )
