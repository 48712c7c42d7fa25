"""Issue 20, item 10: the alert receiver's server closes a connection whose request headers do
not arrive in time (2,000 half-sent requests held 2,000 descriptors for ever), and a body that
does not arrive in time is refused 408. A real uvicorn server on a loopback port, with a short
header timeout; the test waits for the server to close, not for a time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from evac.alert_receiver import create_app
from evac.http_timeouts import with_header_timeout
from evac.stack import free_port
from tests.unit.test_alert_receiver import BEARER, FakeSignaller, alertmanager, config, running


async def _closed(sock: socket.socket, within: float = 30.0) -> bool:
    """Whether the server closed ``sock`` (a read gives end of file) within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        data = await asyncio.wait_for(loop.sock_recv(sock, 1024), within)
    except (TimeoutError, ConnectionResetError):
        return False
    return data == b"" or data.startswith(b"HTTP/1.1 4")


async def test_half_sent_requests_are_closed_when_their_headers_are_late(plans: Path, signaller: FakeSignaller) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config(plans), signaller),
            host="127.0.0.1",
            port=port,
            http=with_header_timeout(0.5),
            log_level="warning",
            log_config=None,
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        half_sent = []
        for _ in range(20):
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, b"POST /alertmanager HTTP/1.1\r\nHost: receiver\r\nContent-Le")
            half_sent.append(sock)
        assert all(await asyncio.gather(*(_closed(sock) for sock in half_sent)))
        for sock in half_sent:
            sock.close()
    finally:
        server.should_exit = True
        await serving


async def test_a_body_that_does_not_arrive_in_time_is_refused_408(plans: Path, signaller: FakeSignaller) -> None:
    body = alertmanager().encode()
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield body[:10]
        await never.wait()
        yield body[10:]

    async with running(create_app(config(plans, body_timeout=0.2), signaller)) as client:
        answer = await client.post("/alertmanager", content=stalled(), headers=BEARER)
    assert answer.status_code == 408 and "did not arrive within 0.2s" in answer.json()["error"]
    assert signaller.alerts_sent == []


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    import shutil

    from tests.unit.test_alert_receiver import AUTO

    folder = tmp_path / "plans"
    shutil.copytree(AUTO, folder)
    return folder


@pytest.fixture
def signaller() -> FakeSignaller:
    return FakeSignaller()
