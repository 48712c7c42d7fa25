"""A real emulator server per test, and the real Google clients pointed at it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud import dns as cloud_dns

from emulator.app import create_app
from evac.topology import Topology, load_topology

DEMO_TOPOLOGY = Path(__file__).parents[2] / "plans" / "demo" / "topology.yaml"

# Fast enough for a quick suite, slow enough to observe PENDING and warming instances.
FAST = {"operation_delay": 0.3, "warmup": 0.8, "wait_deadline": 1.0}


@dataclass
class RunningEmulator:
    url: str
    topology: Topology
    admin: httpx.Client
    """An httpx client for raw calls (admin API, malformed requests), based at ``url``."""

    @property
    def project(self) -> str:
        return self.topology.project

    def state(self) -> dict[str, Any]:
        return self.admin.get("/emulator/v1/state").raise_for_status().json()

    def requests(self) -> list[dict[str, Any]]:
        return self.admin.get("/emulator/v1/requests").raise_for_status().json()["requests"]


@contextmanager
def running_emulator(topology: Topology, **options: Any) -> Iterator[RunningEmulator]:
    """Serve ``create_app(topology, **options)`` with uvicorn on a free loopback port in a
    background thread; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(topology, **options), ws="none", log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as admin:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the emulator server did not start")
                thread.join(0.01)
            yield RunningEmulator(url=url, topology=topology, admin=admin)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def demo_topology() -> Topology:
    return load_topology(DEMO_TOPOLOGY)


@pytest.fixture
def emulator(demo_topology: Topology) -> Iterator[RunningEmulator]:
    with running_emulator(demo_topology, **FAST) as running:
        yield running


@dataclass
class ComputeClients:
    backend_services: compute_v1.BackendServicesClient
    region_groups: compute_v1.RegionInstanceGroupManagersClient
    global_operations: compute_v1.GlobalOperationsClient
    region_operations: compute_v1.RegionOperationsClient


@pytest.fixture
def compute(emulator: RunningEmulator) -> ComputeClients:
    options = {"credentials": AnonymousCredentials(), "client_options": ClientOptions(api_endpoint=emulator.url)}
    return ComputeClients(
        backend_services=compute_v1.BackendServicesClient(**options),
        region_groups=compute_v1.RegionInstanceGroupManagersClient(**options),
        global_operations=compute_v1.GlobalOperationsClient(**options),
        region_operations=compute_v1.RegionOperationsClient(**options),
    )


@pytest.fixture
def dns_client(emulator: RunningEmulator) -> cloud_dns.Client:
    return cloud_dns.Client(
        project=emulator.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )
