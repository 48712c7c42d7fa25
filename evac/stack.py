"""The embedded stack: Temporal dev server, emulator and worker as child processes.

``evac dev up`` and ``evac demo`` start it; the end-to-end tests start the same pieces.
Each process logs to ``<state_dir>/logs/<name>.log``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evac import search_attributes

ROOT = Path(__file__).resolve().parent.parent

# The history service reads a shard's transfer queue at most this often a second (server default
# 20): a run making more than ~20 workflow tasks a second drains the reader's burst and then every
# workflow task waits for the next 50 ms tick before it reaches the worker (bench/step_overhead.py).
TRANSFER_POLL_RPS = 1000
# One partition per task queue (server default 4). The writes queue's rate limit is split evenly
# over its partitions while its tasks are not: with 4, a backlog in one partition drains at a
# quarter of the limit and a burst of writes takes longer than writes ÷ limit; with 1, the queue
# dispatches exactly at the limit (docs/architecture.md, "Write rate limit"). A single dev server
# gains nothing from partitions.
TASK_QUEUE_PARTITIONS = 1


def find_binary(name: str) -> str:
    """A console script of this environment (``temporal``, ``temporal-test-server``…).

    Looks beside the running interpreter first (the project's .venv), then on PATH.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"'{name}' is not installed in this environment; run 'make test' or 'pip install -e .[test]'")
    return found


class StackError(Exception):
    """A piece of the embedded stack could not start; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _daemon_up(port: int, zone: str | None) -> bool:
    """A DNS server: it serves its zone; another daemon: its port (0: a UNIX socket) is open."""
    return serves(port, zone) if zone is not None else port == 0 or port_in_use(port)


def serves(port: int, zone: str) -> bool:
    """Whether a DNS server on loopback ``port`` answers for ``zone`` with authority."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode

    try:
        answer = dns.query.udp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.flags & dns.flags.AA) and bool(answer.answer)


@dataclass
class StackConfig:
    topology: Path
    state_dir: Path = Path(".evac")
    temporal_port: int = 7233
    ui_port: int = 8233
    emulator_port: int = 8480
    ui: bool = True
    fresh_history: bool = False
    operation_delay: float = 0.5
    warmup: float = 2.0
    # The emulator's write quota (mutating calls accepted per second / per minute; None: no
    # limit) and the seconds it adds before answering every Compute and DNS call.
    write_quota_per_second: int | None = None
    write_quota_per_minute: int | None = None
    call_latency: float = 0.0
    task_queue: str = "evac"
    # The Prometheus server the worker's drills query (EVAC_PROMETHEUS_URL); None: the worker
    # takes it from this process's environment or config file, as any worker does.
    prometheus_url: str | None = None
    # The blackouts file the worker and the CLI of this stack read (EVAC_BLACKOUTS); None: each
    # takes it from its own environment or config file, as any worker or CLI does.
    blackouts: Path | None = None

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def client_env(self) -> dict[str, str]:
        """The environment a worker or the CLI needs to use this stack."""
        env = {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": "default",
            "EVAC_GCP_ENDPOINT": self.emulator_url,
            "EVAC_TASK_QUEUE": self.task_queue,
            "EVAC_TEMPORAL_UI": self.ui_url,
        }
        if self.blackouts is not None:
            env["EVAC_BLACKOUTS"] = str(Path(self.blackouts).resolve())
        return env

    @property
    def tsig_key_dir(self) -> Path:
        """Where the stack's on-premises DNS keys are made (evac/onprem_daemons.py)."""
        return (self.state_dir / "tsig").resolve()

    def worker_env(self) -> dict[str, str]:
        """What a worker of this stack runs with: the client's environment, the on-premises DNS
        keys, and the Prometheus server when one is configured here."""
        env = {**self.client_env(), "EVAC_TSIG_KEY_DIR": str(self.tsig_key_dir)}
        if self.prometheus_url is not None:
            env["EVAC_PROMETHEUS_URL"] = self.prometheus_url
        return env


@dataclass
class Stack:
    """Start and stop the dev server, the emulator and workers."""

    config: StackConfig
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.config.state_dir / "logs"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=ROOT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the CLI, which stops them in order
            )
        self.processes[name] = process
        return process

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"{name} exited with status {process.returncode}; see {self.log_path(name)}")
            if ready():
                return
            time.sleep(0.1)
        raise StackError(f"{name} did not become ready in {timeout:.0f}s; see {self.log_path(name)}")

    @staticmethod
    def _require_free(port: int, what: str) -> None:
        if port_in_use(port):
            raise StackError(f"port {port} ({what}) is already in use: is another 'evac dev up' or demo running?")

    def start_temporal(self) -> None:
        c = self.config
        self._require_free(c.temporal_port, "Temporal")
        c.state_dir.mkdir(parents=True, exist_ok=True)
        db = c.state_dir / "temporal.db"
        if c.fresh_history:
            db.unlink(missing_ok=True)
        existing = db.exists()
        args = [
            find_binary("temporal"), "server", "start-dev",
            "--ip", "127.0.0.1",
            "--port", str(c.temporal_port),
            "--db-filename", str(db.resolve()),
            "--log-level", "warn",
            "--dynamic-config-value", f"history.transferProcessorMaxPollRPS={TRANSFER_POLL_RPS}",
            "--dynamic-config-value", f"matching.numTaskqueueReadPartitions={TASK_QUEUE_PARTITIONS}",
            "--dynamic-config-value", f"matching.numTaskqueueWritePartitions={TASK_QUEUE_PARTITIONS}",
            *search_attributes.dev_server_flags(),
        ]  # fmt: skip
        if c.ui:
            self._require_free(c.ui_port, "Temporal Web UI")
            args += ["--ui-port", str(c.ui_port)]
        else:
            args += ["--headless"]
        self._spawn("temporal", args)
        self._wait("temporal", lambda: port_in_use(c.temporal_port), timeout=60)
        if existing:
            self._register_search_attributes()

    def _register_search_attributes(self) -> None:
        """The dev server registers its --search-attribute flags only in a new database: one
        written by an older Evac lacks the attributes added since. Add them as 'evac setup' does."""
        from temporalio.client import Client

        from evac.control.findable import setup
        from evac.errors import FrontDoorError

        async def register() -> None:
            await setup(await Client.connect(self.config.temporal_address, namespace="default"))

        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(register())
                return
            except (RuntimeError, FrontDoorError) as exc:  # the frontend is not answering yet
                if time.monotonic() > deadline:
                    raise StackError(f"could not register Evac's search attributes on the dev server: {exc}") from None
                time.sleep(0.5)

    def start_emulator(self) -> None:
        c = self.config
        self._require_free(c.emulator_port, "emulator")
        self._spawn(
            "emulator",
            [
                sys.executable, "-m", "emulator",
                "--topology", str(Path(c.topology).resolve()),
                "--port", str(c.emulator_port),
                "--operation-delay", str(c.operation_delay),
                "--warmup", str(c.warmup),
                "--call-latency", str(c.call_latency),
                *(["--write-quota-per-second", str(c.write_quota_per_second)] if c.write_quota_per_second is not None else []),
                *(["--write-quota-per-minute", str(c.write_quota_per_minute)] if c.write_quota_per_minute is not None else []),
            ],
        )  # fmt: skip

        def healthy() -> bool:
            try:
                return httpx.get(f"{c.emulator_url}/emulator/v1/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait("emulator", healthy, timeout=30)

    def start_onprem(self) -> None:
        """BIND 9 and HAProxy as the topology's on-premises bindings name them (none: nothing)."""
        from evac import onprem_daemons
        from evac.topology import load_topology

        try:
            daemons = onprem_daemons.daemons(load_topology(self.config.topology), self.config.state_dir)
        except onprem_daemons.MissingDaemon as exc:
            raise StackError(str(exc)) from None
        for daemon in daemons:
            if daemon.port:
                self._require_free(daemon.port, daemon.name)
            self._spawn(daemon.name, daemon.command)
            self._wait(daemon.name, functools.partial(_daemon_up, daemon.port, daemon.dns_zone), timeout=30)

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        """Start a worker and wait until it polls (its log says so after this start)."""
        log = self.log_path(name)
        offset = log.stat().st_size if log.exists() else 0

        def polling() -> bool:
            with open(log, "rb") as f:
                f.seek(offset)
                return b"worker started" in f.read()

        process = self._spawn(name, [sys.executable, str(ROOT / "worker.py")], env=self.config.worker_env())
        self._wait(name, polling, timeout=60)
        return process

    def start(self) -> None:
        try:
            self.start_temporal()
            self.start_emulator()
            self.start_onprem()
            self.start_worker()
        except BaseException:
            self.stop()
            raise

    def exited(self) -> tuple[str, int] | None:
        """The first process of the stack that has exited, and its status; None while all run."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM everything in reverse start order; SIGKILL what has not stopped in time."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
