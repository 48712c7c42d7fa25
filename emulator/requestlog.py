"""The request log: every Google API call (Compute, DNS, Cloud SQL, Spanner, Monitoring), with what it did.

Tests read it (``GET /emulator/v1/requests``) to prove idempotency and ordering: a retried
mutation with the same ``requestId`` shows ``"duplicate requestId: returned existing
operation"`` instead of a second ``"applied"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

API_PREFIXES = ("/compute/", "/dns/", "/sql/", "/v1/projects/", "/v3/projects/")
"""Compute Engine, Cloud DNS, Cloud SQL Admin, Spanner (database admin), Cloud Resource Manager
(``/v1/projects/{p}:testIamPermissions``) and Cloud Monitoring."""

# POST methods of the APIs that only read.
_READ_ONLY_VERBS = {"getHealth", "wait", "listManagedInstances", "testIamPermissions"}

APPLIED = "applied"
DUPLICATE = "duplicate requestId: returned existing operation"


def is_api_call(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def is_mutation(method: str, path: str) -> bool:
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    # A custom method is the last segment (``…/getHealth``) or after a colon (``…/p:testIamPermissions``).
    return path.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] not in _READ_ONLY_VERBS


@dataclass(frozen=True)
class LoggedRequest:
    time: str
    method: str
    path: str
    requestId: str | None  # noqa: N815 - the JSON name
    status: int
    effect: str | None
    """For a mutation: "applied", "duplicate requestId: ...", "refused: <code> <reason>", or
    what an injected operation fault did; None for reads."""
    faults: list[str] = field(default_factory=list)
    """Ids of the injected faults that struck this call."""


class RequestLog:
    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()

    def as_json(self) -> dict[str, Any]:
        return {"requests": [asdict(e) for e in self._entries]}
