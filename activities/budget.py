"""How long a call may take: every cloud call's own timeout, and the budget of work that a
failover must not wait on for long — the source region's API (issue 18, static stability).

A region in an outage often takes its API down with it: its calls answer 503, or hang. A run
leaving that region gives its source-only reads and changes ``retries.source_deadline`` in all
(:func:`within`, entered by :func:`serving` from the activity's ``StepContext.budget_seconds``):
each call's timeout is cut to what is left of it (:func:`call_timeout`), in-place retries
(``activities.retry.idempotent``) and operation waits (``providers/gcp/operations``) stop when it
is spent, and the activity then fails as ``CloudUnreachable``, which the workflow records as
unreadable or skipped, never as a reason to wait longer.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

import structlog

from evac.logging import step_logging
from evac.resources import StepContext

# Every API call gets a deadline: a hung connection must not hang a failover, and a call may
# block only while the activity's background heartbeat runs. Reads also pass retry=None: the
# compute client would otherwise retry a 503 for up to 600 s whatever the timeout, out of
# sight of cancellation; activities.retry retries them in place instead, briefly.
CALL_TIMEOUT_SECONDS = 30.0
# A call under a nearly spent budget still gets this long (a timeout of 0 is no timeout).
MIN_CALL_TIMEOUT_SECONDS = 0.5

_ends: contextvars.ContextVar[float | None] = contextvars.ContextVar("evac_budget_ends", default=None)


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block under a budget of ``seconds`` (None: no budget; an enclosing one holds)."""
    if seconds is None:
        yield
        return
    token = _ends.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ends.reset(token)


def left() -> float | None:
    """Seconds left of the budget in force (never below 0), or None when there is none."""
    ends = _ends.get()
    return None if ends is None else max(0.0, ends - time.monotonic())


def spent() -> bool:
    rest = left()
    return rest is not None and rest <= 0


def call_timeout() -> float:
    """The timeout of one cloud call: the usual one, cut to what is left of a budget."""
    rest = left()
    return CALL_TIMEOUT_SECONDS if rest is None else max(MIN_CALL_TIMEOUT_SECONDS, min(CALL_TIMEOUT_SECONDS, rest))


@contextlib.contextmanager
def serving(context: StepContext) -> Iterator[structlog.stdlib.BoundLogger]:
    """An activity serving a step: its log lines carry service and step, and its calls keep to
    the step's budget, if it has one."""
    with step_logging(context) as log, within(context.budget_seconds):
        yield log.bind(budget_seconds=context.budget_seconds) if context.budget_seconds is not None else log
