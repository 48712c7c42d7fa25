"""The real daemons the on-premises provider talks to, on free loopback ports in a test's own
folder: BIND 9 (a primary that takes signed updates, a secondary that follows it by NOTIFY and
zone transfer, and a stale server that never gets an update) and HAProxy (a backend whose
servers answer TCP checks from tiny listeners). Readiness is polled, never slept for."""

from __future__ import annotations

import os
import socketserver
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from evac.onprem_daemons import named_conf
from evac.stack import free_port
from providers.errors import ProviderError
from providers.onprem.dns import DnsClient, DnsConfig, TsigKey, load_tsig_key
from providers.onprem.haproxy import HAProxyConfig, HAProxyRuntime
from tests.debian import debian_binary

ZONE = "example.test."
ZONE_FILE = """$TTL 60
@    IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@    IN NS  ns1.example.test.
ns1  IN A   127.0.0.1
www  IN A   192.0.2.10
"""
START_TIMEOUT = 30.0


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float = START_TIMEOUT,
    logs: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` (and the daemon's last log lines) when
    the time is up or, at once, when the daemon ``process`` has exited."""
    deadline = time.monotonic() + timeout
    while not check():
        exited = process is not None and process.poll() is not None
        if exited or time.monotonic() > deadline:
            tail = "\n".join(logs.read_text().splitlines()[-20:]) if logs and logs.exists() else ""
            reason = f"the daemon exited ({process.returncode})" if exited and process else "timed out"
            raise AssertionError(f"{reason} waiting for {what}\n{tail}")
        time.sleep(0.05)


@contextmanager
def daemon(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in the foreground, its output in ``log``; stopped (SIGTERM, then SIGKILL) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# --- BIND ----------------------------------------------------------------------------------------


@dataclass
class Bind:
    """Three named on loopback: ``primary`` (takes the updates), ``secondary`` (transfers the zone
    from it on NOTIFY) and ``stale`` (the zone's first version, never updated)."""

    primary: str
    secondary: str
    stale: str
    key_file: Path
    key: TsigKey

    def config(self, servers: tuple[str, ...] | None = None, **fields: Any) -> DnsConfig:
        settings: dict[str, Any] = {"tsig_key_file": self.key_file, "timeout": 3.0, **fields}
        return DnsConfig(servers=servers or (self.primary, self.secondary), zone=ZONE, **settings)

    def client(self, servers: tuple[str, ...] | None = None, **fields: Any) -> DnsClient:
        return DnsClient(self.config(servers, **fields))


def answers_authoritatively(port: int) -> bool:
    query = dns.message.make_query(ZONE, "SOA")
    try:
        answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.flags & dns.flags.AA) and bool(answer.answer)


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    named = debian_binary("named", "bind9")
    keygen = debian_binary("tsig-keygen", "bind9")
    key_file = tmp_path_factory.mktemp("tsig") / "evac.key"
    key_file.write_text(
        subprocess.run([keygen, "-a", "hmac-sha256", "evac-key"], capture_output=True, text=True, check=True).stdout
    )
    # free_port() finds a free TCP port; named also needs the same UDP port, which another test
    # may hold: a daemon that cannot bind exits, and the three start again on other ports.
    for attempt in range(1, 4):
        running = ExitStack()
        try:
            found = _start_bind(running, named, tmp_path_factory.mktemp("bind"), key_file)
        except AssertionError:
            running.close()
            if attempt == 3:
                raise
            continue
        with running:
            yield found
        return


def _start_bind(running: ExitStack, named: str, folder: Path, key_file: Path) -> Bind:
    """A primary, its secondary and a stale primary of ZONE on free ports, in ``running``."""
    p_port, s_port, x_port = free_port(), free_port(), free_port()
    zones = {
        "primary": (
            p_port,
            f'zone "{ZONE}" {{ type primary; file "{folder}/primary/zone"; notify yes;\n'
            f"  also-notify {{ 127.0.0.1 port {s_port}; }}; allow-transfer {{ 127.0.0.1; }};\n"
            "  update-policy { grant evac-key zonesub ANY; }; };",
        ),
        "secondary": (
            s_port,
            f'zone "{ZONE}" {{ type secondary; primaries {{ 127.0.0.1 port {p_port}; }}; file "{folder}/secondary/zone"; }};',
        ),
        "stale": (x_port, f'zone "{ZONE}" {{ type primary; file "{folder}/stale/zone"; }};'),
    }
    confs = {name: named_conf(folder / name, port, zone, key_file) for name, (port, zone) in zones.items()}
    for name in ("primary", "stale"):
        (folder / name / "zone").write_text(ZONE_FILE)
    as_root = ["-u", "root"] if os.getuid() == 0 else []  # as root, named switches to user bind unless told
    # One after the other: a secondary whose first refresh finds its primary not serving yet
    # backs off for minutes before it asks again.
    for name in ("primary", "stale", "secondary"):
        process = running.enter_context(
            daemon([named, "-g", "-n", "1", "-c", str(confs[name]), *as_root], folder / f"{name}.log")
        )
        wait_until(
            f"named ({name}) to serve {ZONE}",
            lambda port=zones[name][0]: answers_authoritatively(port),
            logs=folder / f"{name}.log",
            process=process,
        )
    return Bind(
        primary=f"127.0.0.1:{p_port}",
        secondary=f"127.0.0.1:{s_port}",
        stale=f"127.0.0.1:{x_port}",
        key_file=key_file,
        key=load_tsig_key(key_file),
    )


@pytest.fixture
def record_name() -> str:
    """A name of the zone no other test touches."""
    return f"t-{uuid.uuid4().hex[:10]}.{ZONE}"


# --- TCP listeners -------------------------------------------------------------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@contextmanager
def tcp_listener(handle: Callable[[socketserver.BaseRequestHandler], None] = lambda _: None) -> Iterator[int]:
    """A loopback TCP server whose connections ``handle`` serves (by default: closed at once); its port."""
    handler = type("Handler", (socketserver.BaseRequestHandler,), {"handle": handle})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- HAProxy -------------------------------------------------------------------------------------


@dataclass
class HAProxy:
    """A running haproxy: backend ``web`` with ``s1`` and ``s2`` (listeners behind them, UP) and
    ``s3`` (nothing listening, DOWN), its Runtime API on TCP ``address``."""

    address: str
    unix_socket: Path
    log: Path

    def runtime(self, timeout: float = 3.0, address: str | None = None) -> HAProxyRuntime:
        return HAProxyRuntime(HAProxyConfig(address=address or self.address, timeout=timeout))


def haproxy_cfg(api_port: int, unix_socket: Path, server_ports: list[int]) -> str:
    servers = "\n".join(
        f"  server s{i} 127.0.0.1:{port} check inter 100ms rise 1 fall 1" for i, port in enumerate(server_ports, 1)
    )
    return (
        "global\n"
        f"  stats socket ipv4@127.0.0.1:{api_port} level admin\n"
        f"  stats socket {unix_socket} level admin\n"
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
        f"backend web\n  balance roundrobin\n{servers}\n"
    )


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HAProxy]:
    """A haproxy of the test's own (tests change its servers), once s1 and s2 are UP and s3 DOWN."""
    binary = debian_binary("haproxy", "haproxy")
    # A UNIX socket's path is limited to 107 bytes: a short folder of its own, not tmp_path.
    with tempfile.TemporaryDirectory(prefix="evac-haproxy-") as short, tcp_listener() as first, tcp_listener() as second:
        api_port, unix_socket = free_port(), Path(short) / "api.sock"
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_cfg(api_port, unix_socket, [first, second, free_port()]))
        log = tmp_path / "haproxy.log"
        with daemon([binary, "-f", str(cfg), "-db"], log) as process:
            running = HAProxy(address=f"127.0.0.1:{api_port}", unix_socket=unix_socket, log=log)
            runtime = running.runtime()

            def settled() -> bool:
                try:
                    return [s.operational for s in runtime.servers("web")] == ["UP", "UP", "DOWN"]
                except ProviderError:
                    return False

            wait_until("haproxy's checks to find s1 and s2 UP and s3 DOWN", settled, logs=log, process=process)
            yield running
