"""An abort that races the run's end: the run was running when looked at, and had ended when
the abort's cancel request arrived. That is 'the run has ended' (exit 3), not 'Temporal refused' (4)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from evac import control
from evac.cli.base import EXIT_CODES, EXIT_REFUSED
from evac.errors import NotRunning
from evac.runs import AbortRequest


class EndsBeforeTheCancel:
    async def describe(self) -> Any:
        return SimpleNamespace(status=WorkflowExecutionStatus.RUNNING, run_id="run-1", task_queue="evac", id="failover/checkout")

    async def cancel(self, reason: str = "") -> None:
        assert AbortRequest.from_cancel_reason(reason) == AbortRequest(by="me@host", reason="late")
        raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")


class FakeClient:
    namespace = "default"

    def get_workflow_handle_for(self, *args: Any, **kwargs: Any) -> EndsBeforeTheCancel:
        return EndsBeforeTheCancel()


async def test_an_abort_that_races_the_end_of_the_run_is_refused_as_ended() -> None:
    with pytest.raises(NotRunning) as caught:
        await control.abort(FakeClient(), "failover/checkout", AbortRequest(by="me@host", reason="late"))  # type: ignore[arg-type]
    assert str(caught.value) == "run 'failover/checkout' has already ended; there is nothing to abort"
    assert next(code for kind, code in EXIT_CODES.items() if isinstance(caught.value, kind)) == EXIT_REFUSED
