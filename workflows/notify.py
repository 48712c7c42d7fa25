"""A run's notifications: sent in the background, in order, never in the run's way.

:meth:`Notifier.send` starts a notification and returns at once. Each one is an activity
(``send_notification``) with its own timeouts and a small retry policy, run in a task of its
own after the previous notification of the run has finished (so a receiver sees a run's events
in the order they happened). Its outcome — delivered or failed, per target — goes into the run's
record (``FailoverProgress.notifications``); a failure is recorded and never fails the run.
:meth:`Notifier.drain` waits for the outstanding ones before the run ends, shielded from
cancellation and bounded by :data:`DRAIN_TIMEOUT`.

When the worker has no target configured, its first answer says so and the run sends nothing
more: one activity per run. Dry runs send nothing.

Workflow code only: no I/O, deterministic.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from evac import activity_api
    from evac.notifications import Notification, NotificationEvent, NotificationRecord
    from evac.runs import FailoverInput, FailoverProgress, RunStatus
    from workflows.saga import Saga, failure_text

# One attempt posts to every target, each retried in place within ~15 s.
NOTIFY_START_TO_CLOSE = timedelta(seconds=30)
NOTIFY_SCHEDULE_TO_CLOSE = timedelta(seconds=60)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
)
# The longest the end of a run waits for its outstanding notifications.
DRAIN_TIMEOUT = NOTIFY_SCHEDULE_TO_CLOSE


class Notifier:
    def __init__(self, input: FailoverInput, progress: FailoverProgress) -> None:
        self._input = input
        self._progress = progress
        self._last: asyncio.Task[None] | None = None
        self._outstanding: list[Notification] = []
        # None until the worker first answers; False: it has no target, send nothing more.
        self._configured: bool | None = None

    def send(
        self,
        event: NotificationEvent | str,
        step: str | None = None,
        detail: str = "",
        outcome: str | None = None,
        status: RunStatus | None = None,
    ) -> None:
        """Start a notification of ``event`` in the background; never raises, never waits.
        ``status``: the run's, when its record does not hold it yet (at its end)."""
        if self._input.dry_run or self._configured is False:
            return
        p = self._progress
        notification = Notification(
            event=NotificationEvent(event),
            service=p.service,
            kind=p.kind,
            plan=p.plan_name,
            source=p.source,
            target=p.target,
            step=step,
            status=(status or p.status).value,
            outcome=outcome,
            detail=detail,
            trigger_kind=p.trigger.kind,
            trigger_by=p.trigger.by,
            at=workflow.now(),
        )
        self._outstanding.append(notification)
        self._last = asyncio.ensure_future(self._deliver(notification, self._last))

    async def _deliver(self, notification: Notification, previous: asyncio.Task[None] | None) -> None:
        try:
            if previous is not None:
                await workflow.wait([previous])  # its own failures are recorded by itself
            if self._configured is False:
                return
            try:
                result = await workflow.execute_activity(
                    activity_api.send_notification,
                    notification,
                    start_to_close_timeout=NOTIFY_START_TO_CLOSE,
                    schedule_to_close_timeout=NOTIFY_SCHEDULE_TO_CLOSE,
                    retry_policy=NOTIFY_RETRY,
                    summary=f"notify: {notification.event.value}",
                )
            except (FailureError, asyncio.CancelledError) as err:
                self._record(notification, error=f"the notification activity failed: {failure_text(err)}")
                return
            if not result.configured:
                self._configured = False
                return
            self._configured = True
            self._progress.notifications.append(
                NotificationRecord(
                    event=notification.event, step=notification.step, at=notification.at, deliveries=result.deliveries
                )
            )
        finally:
            self._outstanding.remove(notification)

    def _record(self, notification: Notification, error: str) -> None:
        self._progress.notifications.append(
            NotificationRecord(event=notification.event, step=notification.step, at=notification.at, error=error)
        )

    async def drain(self, saga: Saga) -> None:
        """Wait for the outstanding notifications (at most DRAIN_TIMEOUT, even if the run is
        cancelled meanwhile); record the ones still unfinished then."""
        if not self._outstanding:
            return
        try:
            await saga.shielded(workflow.wait_condition(lambda: not self._outstanding, timeout=DRAIN_TIMEOUT))
        except TimeoutError:
            waited = int(DRAIN_TIMEOUT.total_seconds())
            for notification in list(self._outstanding):
                self._record(notification, error=f"still unsent when the run ended (it waited {waited}s for it)")
