"""The project's API write quota and the added latency of every API call.

Compute Engine limits how many mutating calls a project makes per minute (and, in effect,
per second) and refuses the calls over the limit with ``429`` and reason
``rateLimitExceeded``; a client that floods it gets nothing done. The emulator counts every
mutating Compute and DNS call it takes in (``requestlog.is_mutation``) in a sliding
1-second and 60-second window: a call that would put either window over its limit is
refused with Google's body, changes nothing and is not counted. Reads are never limited.

Both are set when the emulator starts (``create_app(write_quota_per_second=…,
write_quota_per_minute=…, call_latency=…)``) and changed at run time through the admin
API (``PUT /emulator/v1/quota``, ``PUT /emulator/v1/latency``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from emulator.errors import ApiError

SECOND = 1.0
MINUTE = 60.0


class QuotaSpec(BaseModel):
    """What a client puts to ``/emulator/v1/quota``: each limit a count, or null for none."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    writes_per_second: int | None = Field(default=None, ge=1, description="Most writes accepted in any 1-second window")
    writes_per_minute: int | None = Field(default=None, ge=1, description="Most writes accepted in any 60-second window")


class LatencySpec(BaseModel):
    """What a client puts to ``/emulator/v1/latency``: ``seconds`` for every call, or
    ``readSeconds`` / ``writeSeconds`` for one kind (the other kind keeps none)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    seconds: float | None = Field(default=None, ge=0, le=60, description="Added to every API call")
    read_seconds: float | None = Field(default=None, ge=0, le=60, description="Added to every read")
    write_seconds: float | None = Field(default=None, ge=0, le=60, description="Added to every write")

    @model_validator(mode="after")
    def _one_way(self) -> LatencySpec:
        if self.seconds is not None and (self.read_seconds is not None or self.write_seconds is not None):
            raise ValueError("give 'seconds' (every call) or 'readSeconds'/'writeSeconds' (per kind), not both")
        return self

    def read(self) -> float:
        return self.seconds if self.seconds is not None else self.read_seconds or 0.0

    def write(self) -> float:
        return self.seconds if self.seconds is not None else self.write_seconds or 0.0


@dataclass
class CallLatency:
    """Seconds added before answering each API call, by kind."""

    read: float = 0.0
    write: float = 0.0

    def of(self, mutation: bool) -> float:
        return self.write if mutation else self.read

    def as_json(self) -> dict[str, Any]:
        return {"readSeconds": self.read, "writeSeconds": self.write}


def _limit_name(window: float) -> str:
    return "Write requests per second" if window == SECOND else "Write requests per minute"


@dataclass
class WriteQuota:
    """The sliding-window count of accepted writes against the project's limits."""

    project: str
    per_second: int | None = None
    per_minute: int | None = None
    accepted: int = 0
    refused: int = 0
    _times: deque[float] = field(default_factory=deque, repr=False)
    """When each write of the last minute was accepted (oldest first)."""

    def set(self, per_second: int | None, per_minute: int | None) -> None:
        self.per_second, self.per_minute = per_second, per_minute

    def clear_counts(self) -> None:
        self.accepted = self.refused = 0
        self._times.clear()

    def _forget_before(self, now: float) -> None:
        while self._times and self._times[0] <= now - MINUTE:
            self._times.popleft()

    def in_window(self, now: float, window: float) -> int:
        """Writes accepted in the ``window`` seconds up to ``now``."""
        self._forget_before(now)
        if window >= MINUTE:
            return len(self._times)
        count = 0
        for accepted_at in reversed(self._times):
            if accepted_at <= now - window:
                break
            count += 1
        return count

    def admit(self, now: float) -> ApiError | None:
        """Count a write taken in at ``now``, or refuse it (uncounted) when a window is full."""
        for window, limit in ((SECOND, self.per_second), (MINUTE, self.per_minute)):
            if limit is not None and self.in_window(now, window) >= limit:
                self.refused += 1
                return self._exceeded(window, limit)
        self._forget_before(now)
        self._times.append(now)
        self.accepted += 1
        return None

    def _exceeded(self, window: float, limit: int) -> ApiError:
        name = _limit_name(window)
        unit = "second" if window == SECOND else "minute"
        message = (
            f"Quota exceeded for quota metric 'Write requests' and limit '{name}' of service 'compute.googleapis.com' "
            f"for consumer 'project:{self.project}': the limit is {limit} per {unit} (emulated quota)."
        )
        return ApiError(429, "rateLimitExceeded", message, domain="usageLimits")

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "writesPerSecond": self.per_second,
            "writesPerMinute": self.per_minute,
            "acceptedLastSecond": self.in_window(now, SECOND),
            "acceptedLastMinute": self.in_window(now, MINUTE),
            "accepted": self.accepted,
            "refused": self.refused,
        }
