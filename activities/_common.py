"""Small helpers shared by the mutating activities."""

from __future__ import annotations

import uuid

from temporalio import activity

from evac.resources import ResourceState

_REQUEST_NAMESPACE = uuid.UUID("6f6c0c3e-8f7a-4a53-9a0e-5e7a2c1f0b11")


def request_id(request_key: str, precondition: str) -> str:
    """A request id that a retry of the same mutation reuses (so the API applies it once).

    ``precondition`` is what the mutation was computed against (a fingerprint, a size):
    a new computation after someone else's change gets a new id.
    """
    return str(uuid.uuid5(_REQUEST_NAMESPACE, f"{request_key}/{precondition}"))


def found_before(current: ResourceState, prior: ResourceState | None) -> ResourceState:
    """The before-state of a mutation that finds the resource already as desired.

    On a first attempt that is the truth: nothing had to change. On a retry, an earlier
    attempt of this same activity may have applied the change and died before reporting;
    the state the workflow recorded before the step (``prior``) is then the real before.
    """
    if prior is not None and activity.info().attempt > 1:
        return prior
    return current


def attempt() -> int:
    return activity.info().attempt
