"""Turning cloud API errors into Temporal failures that say whether a retry can help.

429, 5xx, timeouts and lost connections are transient: Temporal's retry policy retries
them. 400, 403, 404 and other refusals cannot be fixed by retrying: they are raised as
non-retryable with a message that names the resource and what the API said.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import requests
from google.api_core import exceptions as gexc
from temporalio import activity
from temporalio.exceptions import ApplicationError

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Temporal's payload limit is far above this; a cloud error body is not.
MAX_ERROR_TEXT = 2000


def _attempt() -> int:
    return activity.info().attempt if activity.in_activity() else 1


def _cap(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def permanent(message: str, *, type: str = "CloudRequestRefused") -> ApplicationError:
    """A failure that retrying cannot fix."""
    return ApplicationError(_cap(message), {"attempt": _attempt()}, type=type, non_retryable=True)


def transient(message: str, *, type: str = "CloudTransientError") -> ApplicationError:
    """A failure that Temporal's retry policy should retry."""
    return ApplicationError(_cap(message), {"attempt": _attempt()}, type=type)


@contextlib.contextmanager
def cloud_call(what: str) -> Iterator[None]:
    """Classify errors raised while doing ``what`` (e.g. "patch backend service web")."""
    try:
        yield
    except gexc.GoogleAPICallError as exc:
        code = int(exc.code) if exc.code is not None else 0
        text = f"{what}: HTTP {code} {exc.message}"
        if code in TRANSIENT_STATUS:
            raise transient(text) from None
        raise permanent(text) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise transient(f"{what}: cannot reach the API: {exc}", type="CloudUnreachable") from None
