"""The one place where cloud client errors become Evac failures (``evac/failures.py``).

Every call to a Google Cloud client runs inside :func:`cloud_call`, which maps what the
client raised to a :class:`~evac.failures.FailureType` and keeps the client's exception as
the cause (like httpx's ``_transports/default.py``):

* 408, 429, 5xx — ``CloudTransientError``;
* a refused or lost connection, a call past its timeout — ``CloudUnreachable``;
* any other HTTP error (400, 403, 404, 409, 412 …) — ``CloudRequestRefused``, not retried.

The first two are what :mod:`activities.retry` retries in place for idempotent calls and
what Temporal retries for whole activities; the others fail the step at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from google.api_core import exceptions as gexc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac.failures import FailureType, failure

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The failures a repeated idempotent call can cure (ResourceContended needs a re-read, not a repeat).
CALL_FAILURES_WORTH_REPEATING = frozenset({FailureType.CLOUD_TRANSIENT.value, FailureType.CLOUD_UNREACHABLE.value})


def _attempt() -> int:
    return activity.info().attempt if activity.in_activity() else 1


def step_failure(kind: FailureType, message: str) -> ApplicationError:
    """``failure(kind, message)`` with the activity attempt in its details (the workflow records it)."""
    return failure(kind, message, {"attempt": _attempt()})


def worth_repeating(error: BaseException) -> bool:
    """Whether the same idempotent call, made again, may succeed (a transient cloud failure)."""
    return isinstance(error, ApplicationError) and error.type in CALL_FAILURES_WORTH_REPEATING


@contextlib.contextmanager
def cloud_call(what: str) -> Iterator[None]:
    """Translate errors raised while doing ``what`` (e.g. "patch backend service web")."""
    try:
        yield
    except gexc.GoogleAPICallError as exc:
        code = int(exc.code) if exc.code is not None else 0
        text = f"{what}: HTTP {code} {exc.message}"
        kind = FailureType.CLOUD_TRANSIENT if code in TRANSIENT_STATUS else FailureType.CLOUD_REFUSED
        raise step_failure(kind, text) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise step_failure(FailureType.CLOUD_UNREACHABLE, f"{what}: cannot reach the API: {exc}") from exc
