"""Running the emulator as a server."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

import structlog
import uvicorn

from emulator.app import create_app
from evac.logging import configure_logging
from evac.topology import Topology, load_topology

log = structlog.get_logger()


def serve(
    topology_path: str | Path | Topology,
    host: str = "127.0.0.1",
    port: int = 8480,
    *,
    operation_delay: float = 0.5,
    warmup: float = 2.0,
    state_file: str | Path | None = None,
    wait_deadline: float = 120.0,
    dns_port: int | None = None,
    write_quota_per_second: int | None = None,
    write_quota_per_minute: int | None = None,
    call_latency: float = 0.0,
) -> None:
    """Serve the emulator for the topology in ``topology_path`` (or a Topology, e.g. a
    generated one) until SIGINT or SIGTERM.

    Point the clients at ``http://{host}:{port}`` (see docs/emulator.md). Raises
    ``evac.documents.InvalidDocument`` when the topology is unusable and
    ``emulator.persistence.StateFileError`` when ``state_file`` exists but is not one the
    emulator wrote. ``operation_delay``:
    seconds an operation or DNS change takes to be DONE; ``warmup``: seconds a new instance
    takes to serve; ``state_file``: JSON file the world is kept in across restarts;
    ``wait_deadline``: longest an ``operations.wait`` call blocks; ``dns_port``: also answer
    DNS queries from the managed zones on this UDP port of ``host``;
    ``write_quota_per_second`` / ``write_quota_per_minute``: the project's write quota (None:
    no limit); ``call_latency``: seconds added before answering every API call.

    On SIGINT/SIGTERM the server stops accepting connections and answers the calls in
    flight before returning; a second signal stops it at once. (uvicorn then re-raises the
    signal, so the process's exit status says it was stopped by that signal.)
    """
    configure_logging()
    topology = topology_path if isinstance(topology_path, Topology) else load_topology(topology_path)
    app = create_app(
        topology,
        operation_delay=operation_delay,
        warmup=warmup,
        state_file=state_file,
        wait_deadline=wait_deadline,
        dns_address=(host, dns_port) if dns_port is not None else None,
        write_quota_per_second=write_quota_per_second,
        write_quota_per_minute=write_quota_per_minute,
        call_latency=call_latency,
    )
    log.info("emulator.starting", project=topology.project, url=f"http://{host}:{port}")
    _Server(uvicorn.Config(app, host=host, port=port, ws="none", log_level="warning", log_config=None)).run()


class _Server(uvicorn.Server):
    """uvicorn's server, but a second SIGTERM (not only a second SIGINT) stops it at once: a
    call held by a hanging-API fault must not keep a stopping emulator up for its whole latency."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        super().handle_exit(sig, frame)
