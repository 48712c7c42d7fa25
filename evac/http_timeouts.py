"""Read timeouts for the alert receiver's HTTP server (issue 20, item 10).

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``) but waits for ever
for the headers of a request that is sent slowly or never finished: 2,000 half-sent requests
held 2,000 file descriptors until their senders gave up. :class:`HeaderTimeoutH11` is uvicorn's
own h11 protocol with one more timer: a connection whose request headers have not all arrived
``HEADER_TIMEOUT`` seconds after it opened (or after its previous response) is closed. The body's
own timeout is the receiver's (``evac.alerting.receiver.BODY_TIMEOUT``: 408)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are late."""

    header_timeout: float = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:  # no request under way: its headers never came
            self.transport.close()

    def handle_events(self) -> None:
        had = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not had:
            self._disarm()  # a request's headers arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same time for its headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def with_header_timeout(seconds: float) -> type[HeaderTimeoutH11]:
    """The protocol with another header timeout (tests use a short one)."""
    return type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout": seconds})
