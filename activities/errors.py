"""Failures as activities report them: the step failure with the attempt in its details, which
failures a repeated idempotent call can cure, and a provider's classified errors
(:class:`providers.errors.ProviderError`) as Evac failures (``evac/failures.py``).

Google Cloud's own translation is ``providers/gcp/errors.py``'s ``cloud_call``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac.failures import FailureType, failure
from providers.errors import ErrorKind, ProviderError

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


# What each kind of provider error is as a step failure.
_KINDS = {
    ErrorKind.TRANSIENT: FailureType.CLOUD_TRANSIENT,
    ErrorKind.REFUSED: FailureType.CLOUD_REFUSED,
    ErrorKind.NOT_FOUND: FailureType.CLOUD_REFUSED,
    ErrorKind.CONTENDED: FailureType.RESOURCE_CONTENDED,
}


@contextlib.contextmanager
def provider_call() -> Iterator[None]:
    """Translate a :class:`ProviderError` raised in the block into the step failure of its kind."""
    try:
        yield
    except ProviderError as exc:
        raise step_failure(_KINDS[exc.kind], str(exc)) from exc
