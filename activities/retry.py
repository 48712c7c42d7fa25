"""Retrying idempotent cloud calls in place, and pausing inside an activity.

A read, an ``operations.get``, a DNS change read or a ``getHealth`` can be repeated without
harm. When one answers 429/5xx or times out, :func:`idempotent` repeats it a few times with
jittered exponential backoff (0.2 s doubling to 2 s, five tries) before failing the
activity: one step makes dozens of calls, and failing the whole step on the first 503 would
multiply the cloud's error rate by that number. Refusals (400, 403, 404 …) are raised at
once. Mutations are never repeated here: Temporal retries the whole activity, and compute
mutations reuse their request id, so they apply once.

Under a budget (``activities.budget.within``: a call to the region being left) the repeats go
on until the budget is spent instead of five tries, and never past it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import CancelledError

from activities import budget
from activities.errors import worth_repeating

T = TypeVar("T")

TRIES = 5
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 2.0

log = structlog.get_logger("evac.activity")


def jittered(seconds: float) -> float:
    """Between half and all of ``seconds``, so that many callers do not retry in step."""
    return random.uniform(seconds / 2, seconds)


def pause(seconds: float, *, abandon_on_cancel: bool) -> None:
    """Sleep ``seconds``. With ``abandon_on_cancel``, wake at once on a cancel request and
    raise ``CancelledError``; without (work already submitted must be seen through), sleep on."""
    if not abandon_on_cancel:
        time.sleep(seconds)
        return
    activity.wait_for_cancelled_sync(seconds)
    if activity.is_cancelled():
        raise CancelledError("cancelled")


def idempotent(what: str, call: Callable[[], T], *, abandon_on_cancel: bool = True) -> T:
    """``call()`` (an idempotent call doing ``what``, whose errors its provider has translated:
    ``providers/gcp/errors.idempotent`` wraps this), repeated in place on transient failures
    (five tries; under a budget, until it is spent)."""
    backoff = FIRST_BACKOFF_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            rest = budget.left()
            if not worth_repeating(exc) or (attempt >= TRIES if rest is None else rest <= 0):
                raise
            log.info("transient cloud error; calling again", call=what, error=str(exc), tries=attempt)
        delay = jittered(backoff)
        pause(delay if rest is None else min(delay, rest), abandon_on_cancel=abandon_on_cancel)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def stop_if_cancelled(what: str) -> None:
    """Before submitting a mutation: a cancel request stops the activity with nothing changed."""
    if activity.is_cancelled():
        raise CancelledError(f"cancelled before {what}; nothing was changed")
