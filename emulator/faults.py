"""Fault injection: make chosen API calls fail, slow down, or start operations that fail or
never finish — the way Google Cloud misbehaves, on demand and reproducibly.

A fault matches calls by HTTP method and a glob on the path (``*/backendServices/*``). Each
matching call draws from the fault's own random generator, seeded by ``seed``, and is
affected when the draw is below ``rate``; a fault with a ``count`` expires after affecting
that many calls. The same faults and the same sequence of calls always give the same outcome.

The admin API (``admin.py``) manages them under ``/emulator/v1/faults``.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from emulator.errors import ApiError, http_error
from emulator.requestlog import APPLIED, is_mutation

_MESSAGES = {
    429: "Quota exceeded: rate of API requests is too high (injected fault).",
    500: "Internal error (injected fault).",
    503: "The service is currently unavailable (injected fault).",
}


class FaultSpec(BaseModel):
    """What a client posts to ``/emulator/v1/faults``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    method: str = Field(default="*", description="HTTP method to match, or '*'")
    path: str = Field(default="*", description="Glob on the request path, e.g. '*/instanceGroupManagers/*/resize'")
    status: Literal[429, 500, 503] | None = Field(default=None, description="Answer with this error, not serving the call")
    latency: float = Field(default=0.0, ge=0, le=3600, description="Seconds added before answering (a hanging API)")
    operation: Literal["error", "never_done"] | None = Field(
        default=None,
        description="'error': the call is answered but its Operation ends in error and changes nothing; "
        "'never_done': the call takes effect but its Operation (or DNS change) never completes",
    )
    operation_error_code: str = Field(default="INTERNAL_ERROR", description="error.errors[0].code of a failed Operation")
    count: int | None = Field(default=None, ge=1, description="Strike this many times, then expire")
    rate: float = Field(default=1.0, ge=0, le=1, description="Share of matching calls struck")
    seed: int = 0

    @model_validator(mode="after")
    def _does_something(self) -> FaultSpec:
        if self.status is None and self.latency == 0 and self.operation is None:
            raise ValueError("a fault needs a status, a latency or an operation outcome")
        if self.status is not None and self.operation is not None:
            raise ValueError("a call refused with a status starts no operation: give status or operation, not both")
        return self


@dataclass
class Fault:
    id: str
    spec: FaultSpec
    random: random.Random
    matched: int = 0
    struck: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.spec.method.upper() not in ("*", method):
            return False
        if self.spec.operation is not None:
            if not is_mutation(method, path):
                return False  # only mutations start operations
            if self.spec.operation == "error" and not path.startswith(("/compute/", "/sql/", "/v1/projects/")):
                return False  # Compute Engine, Cloud SQL and Spanner operations can end in error (not DNS changes)
        return fnmatch.fnmatchcase(path, self.spec.path)

    @property
    def expired(self) -> bool:
        return self.spec.count is not None and self.struck >= self.spec.count

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(by_alias=True), "matched": self.matched, "struck": self.struck}


@dataclass(frozen=True)
class OperationFault:
    """A struck call's operation outcome, read by the route that starts the operation."""

    fault_id: str
    outcome: Literal["error", "never_done"]
    error_code: str


@dataclass
class Strike:
    """What the faults do to one call."""

    latency: float = 0.0
    error: ApiError | None = None
    operation: OperationFault | None = None
    fault_ids: list[str] = field(default_factory=list)


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    last_id: int = 0

    def add(self, spec: FaultSpec) -> Fault:
        self.last_id += 1
        fault = Fault(id=f"fault-{self.last_id}", spec=spec, random=random.Random(spec.seed))
        self.faults.append(fault)
        return fault

    def strike(self, method: str, path: str) -> Strike:
        """Draw every matching fault once for this call and combine what strikes. Operation
        faults are drawn only when no fault refused the call (a refused call starts nothing)."""
        strike = Strike()
        refusing = [f for f in self.faults if f.spec.operation is None]
        for fault in refusing + [f for f in self.faults if f.spec.operation is not None]:
            if fault.expired or not fault.matches(method, path):
                continue
            if fault.spec.operation is not None and strike.error is not None:
                continue
            fault.matched += 1
            if fault.random.random() >= fault.spec.rate:
                continue
            fault.struck += 1
            strike.fault_ids.append(fault.id)
            strike.latency += fault.spec.latency
            if fault.spec.status is not None and strike.error is None:
                strike.error = http_error(fault.spec.status, _MESSAGES[fault.spec.status])
            if fault.spec.operation is not None and strike.operation is None:
                strike.operation = OperationFault(fault.id, fault.spec.operation, fault.spec.operation_error_code)
        return strike

    def find(self, fault_id: str) -> Fault | None:
        return next((f for f in self.faults if f.id == fault_id), None)

    def clear(self) -> None:
        self.faults.clear()


def operation_fault(request: Request) -> OperationFault | None:
    """The operation outcome a fault imposed on this call, if any."""
    fault: OperationFault | None = getattr(request.state, "operation_fault", None)
    return fault


def operation_effect(fault: OperationFault | None) -> str:
    """What a call that started an operation did, for the request log: applied, or what its
    injected fault made of it (an operation that ends in error applies nothing; one that never
    completes applies its change)."""
    if fault is None:
        return APPLIED
    if fault.outcome == "error":
        return f"not applied: operation ends in error (injected {fault.fault_id})"
    return f"applied: operation never completes (injected {fault.fault_id})"
