"""Determinism: the stored histories must replay on today's workflow code, and workflow log
lines must not be written again when a workflow is replayed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from evac.runs import FailoverProgress
from tests.workflow.conftest import running_worker
from tests.workflow.fake_cloud import FakeCloud
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, start
from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Evacuations recorded as chains of runs (one file each, as `evac audit export --raw` writes it).
CHAINS = sorted((Path(__file__).parent / "histories" / "chains").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_stored_history_replays_on_the_current_workflow(path: Path):
    history = WorkflowHistory.from_json("failover/checkout", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"


@pytest.mark.parametrize("path", CHAINS, ids=[p.stem for p in CHAINS])
async def test_every_run_of_a_stored_chain_replays_on_the_current_workflow(path: Path):
    from evac.control.audit import histories_from_file

    runs = histories_from_file(path.read_text(), "evacuation/europe-west1", path.name)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    for history in runs:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name} run {history.run_id} no longer replays: {result.replay_failure}"


def test_every_outcome_of_each_scenario_is_stored():
    """One version of each workflow (Evac is pre-1.0): each scenario's histories, recorded by
    ``python -m tests.workflow.record_histories <set>`` with today's code."""
    assert {p.stem for p in HISTORIES} == {
        # The demo failover: succeeded, rolled back (its DNS shift refused), cancelled mid-bake.
        "failover_succeeded",
        "failover_rolled_back",
        "failover_cancelled",
        # The same, notifying (started, rollback_started, ended) a webhook and Slack.
        "notifications_succeeded",
        "notifications_rolled_back",
        "notifications_cancelled",
        # A failover out of a region whose API is dead: unread, skipped and owed; an ungraceful drill.
        "dead_source_ungraceful",
        "dead_source_skipped",
        "dead_source_drill",
        # Region evacuations (the parent's history): partial failure; an abort with rollback_all.
        "evacuation_completed_with_failures",
        "evacuation_aborted_rollback_all",
        # Alert-driven: a region guardian that fired, and a failover it started (trigger alert).
        "guardian_fired",
        "failover_alert_triggered",
        # Operator controls: a drill approved while paused and resumed; a schedule's launcher.
        "drill_approved_paused",
        "scheduled_drill_passed",
        # The data tier: a drill that switched the primary and moved a leader over and back; a
        # failover stopped past its point of no return (a promotion).
        "data_drill_passed",
        "data_past_point_of_no_return",
        # One readiness evaluation of two plans.
        "readiness_evaluated",
    }


async def test_workflow_lines_are_not_written_again_on_replay(env, task_queue, demo_topology, caplog):
    cloud: FakeCloud = fresh_cloud()
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    # No workflow cache: every workflow task replays the history from the start.
    async with running_worker(env.client, task_queue, cloud.activities(), max_cached_workflows=0):
        handle = await start(env, task_queue, make_plan(), demo_topology)
        result: FailoverProgress = await handle.result()
    started = [r for r in caplog.records if r.getMessage().startswith("step started")]
    assert [r.step for r in started] == [s.name for s in result.steps]
