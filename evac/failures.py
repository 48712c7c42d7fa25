"""Every way a step can fail, in one list: the ``type`` of the ``ApplicationError`` that
carries it through Temporal, what it means, and whether Temporal retries it.

::

    Transient — retried until the step's deadline (plan ``retries.step_deadline``):
      CloudTransientError   the API answered 408, 429 or 5xx, or an operation ended in such an error
      CloudUnreachable      no answer: connection refused or reset, or a call timed out
      ResourceContended     someone else kept changing the resource under us (stale fingerprint,
                            a DNS deletion that no longer matches)

    Permanent — the step fails at once and the run rolls back:
      CloudRequestRefused   the API refused the request (400, 403, 404, 409 …): retrying cannot help
      CloudOperationFailed  the API accepted the change but its operation ended in a non-transient error
      WrongProject          this worker is bound to another Google Cloud project (EVAC_GCP_PROJECT)
      UnsupportedRecord     the DNS record uses a routing policy, which Evac does not shift

    Decided by the workflow (never retried):
      GuardRefused          a safety guard refused the step (e.g. the target is unhealthy or drained)
      HealthCheckFailed     a verify_health step did not see enough healthy backends in time
      PreflightFailed       a resource the plan touches could not be read before the run changed anything
      UnknownStepKind       the plan holds a step kind this worker does not know (a newer plan?)
      NotReady              a drill's readiness check refused it (every reason listed); nothing changed
      StopConditionBreached a drill's stop condition failed during the bake (value and threshold named)
      ApprovalRejected      an approver rejected an approval step (who and why named)
      ApprovalTimedOut      no approver decided an approval step in time (its on_timeout: abort)
      SourceUnreachable     every step that would move traffic needed the source region's API, which
                            gave no answer in time: the run moved nothing

Cancellation (``evac abort``) is not a failure: it ends the run ``cancelled``.
Raise these with :func:`failure`; keep the cause chained (``raise failure(...) from exc``)
where there is one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from temporalio.exceptions import ApplicationError

# A failure's message travels in the history; a cloud error body can be large.
MAX_FAILURE_TEXT = 2000


class FailureType(StrEnum):
    CLOUD_TRANSIENT = "CloudTransientError"
    CLOUD_UNREACHABLE = "CloudUnreachable"
    RESOURCE_CONTENDED = "ResourceContended"
    CLOUD_REFUSED = "CloudRequestRefused"
    CLOUD_OPERATION_FAILED = "CloudOperationFailed"
    WRONG_PROJECT = "WrongProject"
    UNSUPPORTED_RECORD = "UnsupportedRecord"
    GUARD_REFUSED = "GuardRefused"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    PREFLIGHT_FAILED = "PreflightFailed"
    UNKNOWN_STEP_KIND = "UnknownStepKind"
    NOT_READY = "NotReady"
    STOP_CONDITION_BREACHED = "StopConditionBreached"
    APPROVAL_REJECTED = "ApprovalRejected"
    APPROVAL_TIMED_OUT = "ApprovalTimedOut"
    SOURCE_UNREACHABLE = "SourceUnreachable"

    @property
    def retryable(self) -> bool:
        return self in TRANSIENT


TRANSIENT = frozenset({FailureType.CLOUD_TRANSIENT, FailureType.CLOUD_UNREACHABLE, FailureType.RESOURCE_CONTENDED})
# For RetryPolicy(non_retryable_error_types=...): belt and braces beside non_retryable=True.
NON_RETRYABLE_TYPES = [t.value for t in FailureType if t not in TRANSIENT]


def cap(text: str) -> str:
    return text if len(text) <= MAX_FAILURE_TEXT else text[: MAX_FAILURE_TEXT - 1] + "…"


def failure(kind: FailureType, message: str, *details: Any) -> ApplicationError:
    """The ``ApplicationError`` for ``kind``: retryable exactly when the kind is transient."""
    return ApplicationError(cap(message), *details, type=kind.value, non_retryable=not kind.retryable)
