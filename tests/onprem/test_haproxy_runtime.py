"""HAProxy's Runtime API against a real haproxy (backend ``web``: s1 and s2 UP behind tiny
listeners, s3 DOWN with nothing behind it): reads, sets read back, undo, and the faults."""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from evac.stack import free_port
from providers.errors import ErrorKind, ProviderError
from providers.onprem.haproxy import HAProxyConfig, HAProxyRuntime
from tests.onprem.conftest import HAProxy, tcp_listener, wait_until

# The start of a real `show stat` answer: what a connection that breaks mid-answer has delivered.
HALF_A_SHOW_STAT = (
    b"# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\nweb,s1,0,0"
)


def kind_and_message(call: Callable[[], object]) -> tuple[ErrorKind, str]:
    with pytest.raises(ProviderError) as raised:
        call()
    return raised.value.kind, raised.value.message


def test_servers_read_weight_states_and_health(haproxy: HAProxy) -> None:
    runtime = haproxy.runtime()
    states = runtime.servers("web")
    assert [(s.server, s.weight, s.admin, s.operational, s.status) for s in states] == [
        ("s1", 1, "ready", "UP", "UP"),
        ("s2", 1, "ready", "UP", "UP"),
        ("s3", 1, "ready", "DOWN", "DOWN"),
    ]
    assert runtime.healthy("web") == (2, 3)
    assert runtime.server("web", "s2") == states[1]


def test_the_unix_socket_serves_the_same_reads(haproxy: HAProxy) -> None:
    assert haproxy.runtime(address=str(haproxy.unix_socket)).servers("web") == haproxy.runtime().servers("web")


def test_set_weight_and_state_read_back_and_the_before_states_undo_them(haproxy: HAProxy) -> None:
    runtime = haproxy.runtime()
    original = runtime.server("web", "s1")

    weight_before = runtime.set_weight("web", "s1", 50)
    drain_before = runtime.set_state("web", "s1", "drain")
    assert (weight_before.weight, drain_before.admin) == (1, "ready")
    drained = runtime.server("web", "s1")
    assert (drained.weight, drained.admin, drained.status) == (50, "drain", "DRAIN")
    assert runtime.healthy("web") == (1, 3)  # UP but drained takes no new traffic

    maint_before = runtime.set_state("web", "s1", "maint")
    assert maint_before.admin == "drain"
    assert (runtime.server("web", "s1").admin, runtime.server("web", "s1").status) == ("maint", "MAINT")

    # The undo: the recorded before-states, newest first.
    runtime.set_state("web", "s1", maint_before.admin)
    runtime.set_state("web", "s1", drain_before.admin)
    runtime.set_weight("web", "s1", weight_before.weight)
    wait_until("s1 to be UP again after maintenance", lambda: runtime.server("web", "s1").operational == "UP", timeout=10)
    assert runtime.server("web", "s1") == original
    assert runtime.healthy("web") == (2, 3)


def test_an_unknown_backend_or_server_is_not_found(haproxy: HAProxy) -> None:
    runtime = haproxy.runtime()
    for call in (
        lambda: runtime.servers("nosuch"),
        lambda: runtime.healthy("nosuch"),
        lambda: runtime.server("web", "s9"),
        lambda: runtime.set_weight("nosuch", "s1", 5),
        lambda: runtime.set_state("web", "s9", "drain"),
    ):
        kind, message = kind_and_message(call)
        assert kind is ErrorKind.NOT_FOUND and haproxy.address in message
    # HAProxy's own answers to a `set` of a server it does not have (the public calls read the
    # server first, so they fail before sending; a server removed in between meets these).
    for backend, server, sentence in (("nosuch", "s1", "No such backend."), ("web", "s9", "No such server.")):
        kind, message = kind_and_message(lambda b=backend, s=server: runtime._set(b, s, "weight 5"))  # type: ignore[misc]
        assert kind is ErrorKind.NOT_FOUND and sentence in message


def test_a_bad_weight_or_state_is_refused_with_haproxys_sentence_and_changes_nothing(haproxy: HAProxy) -> None:
    runtime = haproxy.runtime()
    before = runtime.server("web", "s1")
    kind, message = kind_and_message(lambda: runtime.set_weight("web", "s1", 300))
    assert kind is ErrorKind.REFUSED
    assert "Absolute weight can only be between 0 and 256 inclusive." in message and "web/s1" in message
    kind, message = kind_and_message(lambda: runtime.set_state("web", "s1", "asleep"))  # type: ignore[arg-type]
    assert kind is ErrorKind.REFUSED and "expects 'ready', 'drain' and 'maint'" in message
    kind, message = kind_and_message(lambda: runtime.set_weight("web;disable server web/s2", "s1", 0))
    assert kind is ErrorKind.REFUSED and "not a name" in message  # one command per call, never two
    assert runtime.server("web", "s1") == before


# --- a Runtime API that fails under us -----------------------------------------------------------


@pytest.fixture
def fake_api() -> Iterator[Callable[[bytes, bool], str]]:
    """Start a listener that reads a command, sends ``reply``, then closes (or, ``hold``: keeps the
    connection open without another byte until the test ends); its address."""
    stop = threading.Event()
    with contextlib.ExitStack() as listeners:

        def start(reply: bytes, hold: bool) -> str:
            def handle(handler: socketserver.BaseRequestHandler) -> None:
                handler.request.recv(4096)
                handler.request.sendall(reply)
                if hold:
                    stop.wait(30)

            return f"127.0.0.1:{listeners.enter_context(tcp_listener(handle))}"

        yield start
        stop.set()


@pytest.mark.parametrize(
    ("reply", "received"),
    [(b"", "0 characters"), (HALF_A_SHOW_STAT, f"{len(HALF_A_SHOW_STAT)} characters")],
    ids=["closed-without-answer", "closed-mid-show-stat"],
)
def test_a_connection_closed_before_the_whole_answer_is_transient(
    fake_api: Callable[[bytes, bool], str], reply: bytes, received: str
) -> None:
    address = fake_api(reply, False)
    runtime = HAProxyRuntime(HAProxyConfig(address=address, timeout=3))
    for call in (lambda: runtime.servers("web"), lambda: runtime._set("web", "s1", "weight 5")):
        kind, message = kind_and_message(call)
        assert kind is ErrorKind.TRANSIENT and address in message
        assert "closed before the answer was complete" in message
    kind, message = kind_and_message(lambda: runtime.servers("web"))
    assert received in message


def test_an_api_that_never_finishes_its_answer_is_transient_within_the_timeout(fake_api: Callable[[bytes, bool], str]) -> None:
    address = fake_api(HALF_A_SHOW_STAT, True)
    runtime = HAProxyRuntime(HAProxyConfig(address=address, timeout=0.5))
    started = time.monotonic()
    kind, message = kind_and_message(lambda: runtime.servers("web"))
    assert time.monotonic() - started < 3
    assert kind is ErrorKind.TRANSIENT and "no complete answer within 0.5 s" in message


def test_haproxy_not_listening_is_transient() -> None:
    address = f"127.0.0.1:{free_port()}"
    kind, message = kind_and_message(lambda: HAProxyRuntime(HAProxyConfig(address=address, timeout=2)).servers("web"))
    assert kind is ErrorKind.TRANSIENT and address in message and "refused" in message.lower()
    missing = "/nonexistent/haproxy.sock"
    kind, message = kind_and_message(lambda: HAProxyRuntime(HAProxyConfig(address=missing, timeout=2)).servers("web"))
    assert kind is ErrorKind.TRANSIENT and missing in message
