"""Record the workflow histories that test_replay.py replays.

Run ``.venv/bin/python -m tests.workflow.record_histories`` only after a deliberate, versioned
change to FailoverWorkflow: the stored histories stand for runs already in production, and a
change that cannot replay them would break those runs. It writes ``notifications_<outcome>.json``
(succeeded, rolled_back, cancelled: runs that notify a webhook and Slack) and leaves the
histories of earlier versions alone (``engine_*``: before notifications).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from temporalio.client import WorkflowFailureError, WorkflowHandle

from evac.control import failover_inputs, start_failover
from evac.notifications import TargetKind
from evac.runs import AbortRequest, StepStatus, Trigger
from evac.topology import load_topology
from tests.conftest import DEMO
from tests.workflow.conftest import register_search_attributes, running_worker, start_test_server
from tests.workflow.test_failover_workflow import fresh_cloud, make_plan, refuse_the_dns_shift, step_reaches
from workflows.failover import FailoverWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def record() -> None:
    topology = load_topology(DEMO / "topology.yaml")
    async with await start_test_server() as env:
        await register_search_attributes(env.client)
        for outcome in ("succeeded", "rolled_back", "cancelled"):
            cloud = fresh_cloud()
            cloud.notify_targets = [TargetKind.WEBHOOK, TargetKind.SLACK]
            plan = make_plan()
            if outcome == "rolled_back":
                refuse_the_dns_shift(cloud)
            if outcome == "cancelled":
                plan = make_plan({"name": "bake", "kind": "wait", "duration": "1h"})
            queue = f"record-{outcome}"
            async with running_worker(env.client, queue, cloud.activities()):
                inputs = failover_inputs(plan, topology, Trigger(by="history-fixture"))
                [run] = await start_failover(env.client, inputs, queue, require_worker=False)
                handle: WorkflowHandle = env.client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
                if outcome == "cancelled":
                    await step_reaches(env, handle, 3, StepStatus.RUNNING)
                    await handle.signal(FailoverWorkflow.record_abort, AbortRequest(by="history-fixture", reason="recorded"))
                    await handle.cancel()
                try:
                    await handle.result()
                except WorkflowFailureError:
                    pass
                history = await handle.fetch_history()
            (HISTORIES / f"notifications_{outcome}.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(record())
    # Skip interpreter teardown, which the Temporal client's native threads can abort
    # (temporalio/sdk-python#300; the evac CLI does the same).
    os._exit(0)
