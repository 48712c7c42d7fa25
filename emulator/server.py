"""Running the emulator as a server."""

from __future__ import annotations

from pathlib import Path

import structlog
import uvicorn

from emulator.app import create_app
from evac.logging import configure_logging
from evac.topology import load_topology

log = structlog.get_logger()


def serve(
    topology_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8480,
    *,
    operation_delay: float = 0.5,
    warmup: float = 2.0,
    state_file: str | Path | None = None,
    wait_deadline: float = 120.0,
    dns_port: int | None = None,
) -> None:
    """Serve the emulator for the topology in ``topology_path`` until SIGINT or SIGTERM.

    Point the clients at ``http://{host}:{port}`` (see docs/emulator.md). Raises
    ``evac.documents.InvalidDocument`` when the topology is unusable and
    ``emulator.persistence.StateFileError`` when ``state_file`` exists but is not one the
    emulator wrote. ``operation_delay``:
    seconds an operation or DNS change takes to be DONE; ``warmup``: seconds a new instance
    takes to serve; ``state_file``: JSON file the world is kept in across restarts;
    ``wait_deadline``: longest an ``operations.wait`` call blocks; ``dns_port``: also answer
    DNS queries from the managed zones on this UDP port of ``host``.

    On SIGINT/SIGTERM the server stops accepting connections and answers the calls in
    flight before returning; a second signal stops it at once. (uvicorn then re-raises the
    signal, so the process's exit status says it was stopped by that signal.)
    """
    configure_logging()
    topology = load_topology(topology_path)
    app = create_app(
        topology,
        operation_delay=operation_delay,
        warmup=warmup,
        state_file=state_file,
        wait_deadline=wait_deadline,
        dns_address=(host, dns_port) if dns_port is not None else None,
    )
    log.info("emulator.starting", project=topology.project, url=f"http://{host}:{port}")
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, ws="none", log_level="warning", log_config=None)).run()
