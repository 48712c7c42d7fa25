"""Where Google Cloud client errors become Evac failures (``evac/failures.py``).

Every call to a Google Cloud client runs inside :func:`cloud_call`, which maps what the
client raised to a :class:`~evac.failures.FailureType` and keeps the client's exception as
the cause (like httpx's ``_transports/default.py``):

* 408, 429, 5xx — ``CloudTransientError``;
* a refused or lost connection, a call past its timeout — ``CloudUnreachable``;
* any other HTTP error (400, 403, 404, 409, 412 …) — ``CloudRequestRefused``, not retried.

The first two are what :func:`idempotent` retries in place for idempotent calls and what
Temporal retries for whole activities; the others fail the step at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests
from google.api_core import exceptions as gexc

from activities import retry
from activities.errors import step_failure
from evac.failures import FailureType

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


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


def idempotent(what: str, call: Callable[[], T], *, abandon_on_cancel: bool = True) -> T:
    """``call()`` translated by :func:`cloud_call`, repeated in place on transient failures
    (``activities.retry.idempotent``)."""

    def translated() -> T:
        with cloud_call(what):
            return call()

    return retry.idempotent(what, translated, abandon_on_cancel=abandon_on_cancel)
