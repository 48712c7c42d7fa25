"""The one classification of failures every provider uses.

A provider's client translates what its library or daemon raised, at one boundary, into a
:class:`ProviderError` whose :class:`ErrorKind` says what a caller can do about it, keeping the
original exception as the cause (``raise ProviderError(...) from exc``)::

    TRANSIENT   no answer, a timeout, a server failure, a connection closed before the answer
                was complete: the same call, made again, may succeed
    REFUSED     the server refused the request (a bad or unknown key, not authorised, a request
                it rejects): retrying the same call cannot help
    NOT_FOUND   the thing named (a record, a backend, a server) does not exist there
    CONTENDED   a compare-and-swap's precondition no longer holds: someone else changed the
                resource since it was read; read it again before deciding

The message names what was done and where (server address, record name, backend/server), so
that it stands on its own in a run's record.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    CONTENDED = "contended"


class ProviderError(Exception):
    """A provider call failed; ``kind`` says how, the message says what and where."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ProviderError({self.kind.value!r}, {self.message!r})"
