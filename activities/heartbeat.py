"""Heartbeats for synchronous activities that block in cloud calls, with resumable progress.

Temporal sends a heartbeat only when the activity calls ``activity.heartbeat()``; a thread
blocked in one HTTP call or a sleep sends none, and the attempt times out although it is
working. :func:`heartbeating` starts a background thread (in a copy of the activity's
context, so ``activity.heartbeat`` knows which activity it serves) that heartbeats at a
fraction of the heartbeat timeout until the block ends — the pattern of PostHog's
``posthog/temporal/common/heartbeat_sync.py``. The SDK's heartbeat is thread-safe.

Each heartbeat carries the activity's progress (a small JSON object: the operation it
submitted, the polls it made). :meth:`Heartbeat.record` sends new progress at once, and a
retried attempt reads what the last attempt recorded with :attr:`Heartbeat.earlier`, so it
can finish that attempt's work instead of starting over.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import structlog
from temporalio import activity

# Heartbeat this often, as a share of the heartbeat timeout (the SDK throttles to 80 % of it).
HEARTBEAT_FRACTION = 0.25

log = structlog.get_logger("evac.activity")


class Heartbeat:
    """The progress an activity reports with every heartbeat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        details = activity.info().heartbeat_details
        self.earlier: dict[str, Any] = dict(details[0]) if details and isinstance(details[0], dict) else {}
        """What the previous attempt recorded last ({} on a first attempt)."""
        # Carried forward until replaced: should this attempt die too, the next one still knows.
        self._progress: dict[str, Any] = dict(self.earlier)

    def record(self, **progress: Any) -> None:
        """Add ``progress`` (JSON values) to what every heartbeat carries, and heartbeat now."""
        with self._lock:
            self._progress.update(progress)
        self.beat()

    def beat(self) -> None:
        with self._lock:
            details = dict(self._progress)
        activity.heartbeat(details)


def _keep_beating(beat: Heartbeat, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            beat.beat()
        except Exception as exc:  # noqa: BLE001 - a failed heartbeat must not kill the thread silently
            log.warning("heartbeat failed", error=str(exc))


@contextlib.contextmanager
def heartbeating() -> Iterator[Heartbeat]:
    """Heartbeat from a background thread while the block runs (when the activity has a
    heartbeat timeout); yields the :class:`Heartbeat` to record progress on."""
    beat = Heartbeat()
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield beat
        return
    beat.beat()  # at once: a cancel requested before we started reaches us before we act
    stop = threading.Event()
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(_keep_beating, beat, stop, timeout.total_seconds() * HEARTBEAT_FRACTION),
        name=f"heartbeat-{activity.info().activity_id}",
        daemon=True,
    )
    thread.start()
    try:
        yield beat
    finally:
        stop.set()
        thread.join()
