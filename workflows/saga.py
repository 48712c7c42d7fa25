"""The saga every Evac workflow composes: abortable forward work, recorded undos, and a
shielded rollback in reverse order.

- :meth:`Saga.run` runs the forward work (preflight, then steps) in a task of its own. An
  abort — ``evac abort`` (its signal, then Temporal's cancellation) or a bare Temporal cancel —
  cancels that task *and* raises a flag that the forward work checks before every step and
  after every activity, so no further step starts, whatever the in-flight activity does (it may
  finish its cloud operation despite the cancel: that is the safe thing for it to do).
- :meth:`Saga.push` records the undo of a mutating step *before* the mutation is sent, so a
  step that was in flight when the run failed or was aborted is undone too (its undo is a
  no-op when it changed nothing).
- :meth:`Saga.compensate` runs the undos newest first, each to its end even if another abort
  arrives meanwhile (bounded by the plan's ``rollback_deadline``), and returns what it could
  not restore, for the run's ``left_changed``.

Workflow code only: no I/O, deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from evac.logging import workflow_log_extra
    from evac.resources import Change, ResourceState
    from evac.runs import AbortRequest, StepRecord, StepStatus

T = TypeVar("T")


class Aborted(asyncio.CancelledError):
    """Raised inside the forward work when an abort is requested between two awaits."""


@dataclass
class Undo:
    """The compensation of one step: restore its resource to the recorded before-state, and
    (for a drill's verification) read the resource back afterwards."""

    record: StepRecord
    restore: Callable[[], Awaitable[Change]]
    read_back: Callable[[], Awaitable[ResourceState]] | None = None


class Saga:
    def __init__(self, service: str) -> None:
        self._service = service
        self._undos: list[Undo] = []
        self.undone: list[Undo] = []  # the undos that ran, in the order they ran
        self._forward: asyncio.Task[None] | None = None
        self.abort: AbortRequest | None = None
        self.abort_requested = False
        # Temporal itself was asked to cancel the run (not only our signal).
        self.cancel_requested = False
        # The step that cannot be undone, once sent: the run is past its point of no return.
        self.crossed: StepRecord | None = None

    # --- the forward work ---------------------------------------------------------

    async def run(self, forward: Callable[[], Awaitable[None]]) -> None:
        """Run ``forward`` to its end; on an abort, stop it and raise ``CancelledError``.

        Failures of ``forward`` propagate unchanged. The forward task is always finished
        (not merely abandoned) when this returns or raises, so no activity of it is still
        in flight when the caller compensates.
        """

        self._forward = asyncio.ensure_future(forward())
        try:
            await asyncio.shield(self._forward)
        except asyncio.CancelledError:
            if not self._forward.done():
                # Temporal cancelled the run: stop the forward work and wait until it has
                # stopped (a mutating activity finishes its cloud operation first).
                self.cancel_requested = True
                self.request_abort(None)
                await _settle(self._forward, self)
            raise

    def request_abort(self, request: AbortRequest | None) -> None:
        """Stop the forward work: the in-flight activity gets a cancel, and no step starts."""
        if request is not None and self.abort is None:
            self.abort = request
        if self.abort_requested:
            return
        self.abort_requested = True
        if self._forward is not None and not self._forward.done():
            self._forward.cancel()

    def check_abort(self) -> None:
        """Called by the forward work before each step and after each activity."""
        if self.abort_requested:
            raise Aborted("aborted")

    # --- undos --------------------------------------------------------------------

    def push(
        self,
        record: StepRecord,
        restore: Callable[[], Awaitable[Change]],
        read_back: Callable[[], Awaitable[ResourceState]] | None = None,
    ) -> None:
        self._undos.append(Undo(record, restore, read_back))

    def cross(self, record: StepRecord) -> None:
        """``record``'s change cannot be undone and is about to be sent: from now on the run
        does not roll back (undoing what came before it would split the service)."""
        if self.crossed is None:
            self.crossed = record

    def uncross(self, record: StepRecord) -> None:
        """``record``'s change turned out not to have happened: the run is not past it."""
        if self.crossed is record:
            self.crossed = None

    def withdraw(self, record: StepRecord) -> None:
        """Drop ``record``'s undo: its change was skipped (the source region did not answer), so
        there is nothing of it to restore."""
        self._undos = [undo for undo in self._undos if undo.record is not record]

    @property
    def changed_anything(self) -> bool:
        """Whether any step pushed an undo (began a change), or crossed the point of no return, in this run."""
        return bool(self._undos or self.undone or self.crossed)

    @property
    def first_change(self) -> StepRecord | None:
        """The record of the first step that pushed an undo (the run's first mutation)."""
        undos = self._undos or list(reversed(self.undone))
        return undos[0].record if undos else None

    async def compensate(self) -> list[str]:
        """Run every recorded undo, newest first; return the resources left changed.

        An abort that arrives while rolling back does not interrupt it.
        """
        left_changed: list[str] = []
        for undo in reversed(self._undos):
            record = undo.record
            record.status = StepStatus.COMPENSATING
            extra = workflow_log_extra(self._service, record.name)
            workflow.logger.info("compensating step", extra=extra)
            try:
                change = await self.shielded(undo.restore())
            except FailureError as err:
                record.status = StepStatus.COMPENSATION_FAILED
                record.compensation_error = failure_text(err)
                restore_to = record.before.summary() if record.before else "its state before the run"
                left_changed.append(f"{record.resource} (step '{record.name}', restore to {restore_to})")
                workflow.logger.error("compensation failed", extra={**extra, "error": record.compensation_error})
                continue
            record.undo_from, record.undo_to, record.undo_changed = change.before, change.after, change.changed
            record.status = StepStatus.COMPENSATED
        self.undone.extend(reversed(self._undos))
        self._undos.clear()
        return left_changed

    async def shielded(self, work: Awaitable[T]) -> T:
        """Await ``work`` to its end even if the run is cancelled meanwhile (noting the cancel)."""
        task = asyncio.ensure_future(work)
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done() and task.cancelled():
                    raise
                self.cancel_requested = True


async def _settle(task: asyncio.Task[None], saga: Saga) -> None:
    """Wait for a cancelled forward task to stop; its failure or cancellation is expected,
    anything else is a bug in workflow code and surfaces."""
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                saga.cancel_requested = True
        except FailureError:
            pass
    if not task.cancelled():
        err = task.exception()
        if err is not None and not isinstance(err, FailureError) and not is_cancelled_exception(err):
            raise err


def failure_text(err: BaseException) -> str:
    """The innermost message of a Temporal failure chain: what actually went wrong."""
    if isinstance(err, (ActivityError, ChildWorkflowError)) and err.cause is not None:
        return failure_text(err.cause)
    if isinstance(err, FailureError):
        return err.message
    return str(err)
