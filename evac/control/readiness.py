"""The readiness check's front door: plans and their topologies in, one evaluation out.

The evaluation runs in a worker (``ReadinessWorkflow``): the reads are made with the worker's
own credentials, the ones a run would use, never the caller's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client

from evac import workflow_types
from evac.config import Settings
from evac.control.records import worker_polling
from evac.control.start import check_project, load_documents
from evac.errors import NoWorker
from evac.readiness import PlanToEvaluate, ReadinessInput, ReadinessReport

WORKFLOW_ID_PREFIX = "readiness/"


def readiness_input(paths: Sequence[Path], topology: Path | None, settings: Settings) -> ReadinessInput:
    """Each plan checked against its topology (``topology``, else the one beside it); every
    document error of every plan raises at once (``InvalidDocument``)."""
    items = []
    for path in paths:
        plan, topo = load_documents(path, topology)
        check_project(topo, settings)
        topologies = {service: topo.services[service] for service in plan.services}
        items.append(PlanToEvaluate(file=str(path), plan=plan, project=topo.project, topologies=topologies))
    return ReadinessInput(plans=items)


async def check_readiness(
    client: Client, input: ReadinessInput, task_queue: str, *, require_worker: bool = True
) -> ReadinessReport:
    """One evaluation now, waited for. Refused (``NoWorker``) when no worker polls ``task_queue``."""
    if require_worker and not await worker_polling(client, task_queue):
        raise NoWorker(task_queue, client.namespace)
    report: ReadinessReport = await client.execute_workflow(
        workflow_types.READINESS,
        input,
        id=f"{WORKFLOW_ID_PREFIX}check/{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=ReadinessReport,
    )
    return report
