"""Running the emulator inside a test process, and the real clients pointed at it.

``running_emulator(topology)`` serves the app with uvicorn on a free loopback port in a
background thread; ``ComputeClients.connect(url, project)`` and ``dns_client(url, project)``
build the real google-cloud-compute and google-cloud-dns clients the way GCP.md prescribes
(anonymous credentials, endpoint override).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud import dns as cloud_dns  # type: ignore[attr-defined]

from emulator.app import create_app
from emulator.core import Settings
from evac.topology import Topology


@dataclass
class RunningEmulator:
    url: str
    topology: Topology
    settings: Settings
    admin: httpx.Client
    """An httpx client based at ``url``, for the admin API and raw calls."""
    dns_address: tuple[str, int] | None = None
    """Where the UDP name server listens, when started with ``dns_address=``."""

    @property
    def project(self) -> str:
        return self.topology.project

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.admin.get("/emulator/v1/state").raise_for_status().json()
        return state

    def requests(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = self.admin.get("/emulator/v1/requests").raise_for_status().json()["requests"]
        return requests

    def outage(self, region: str, *, api_errors: bool = False) -> None:
        self.admin.post(f"/emulator/v1/regions/{region}/outage", json={"apiErrors": api_errors}).raise_for_status()

    def recover(self, region: str) -> None:
        self.admin.post(f"/emulator/v1/regions/{region}/recover").raise_for_status()

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """Inject a fault (see ``emulator.faults.FaultSpec`` for the fields, in camelCase)."""
        fault: dict[str, Any] = self.admin.post("/emulator/v1/faults", json=spec).raise_for_status().json()
        return fault

    def set_quota(self, writes_per_second: int | None = None, writes_per_minute: int | None = None) -> dict[str, Any]:
        """Replace the project's write quota (None: no limit); answers the quota and its counts."""
        spec = {"writesPerSecond": writes_per_second, "writesPerMinute": writes_per_minute}
        quota: dict[str, Any] = self.admin.put("/emulator/v1/quota", json=spec).raise_for_status().json()
        return quota

    def quota(self) -> dict[str, Any]:
        quota: dict[str, Any] = self.admin.get("/emulator/v1/quota").raise_for_status().json()
        return quota

    def set_region_quota(self, region: str, *, instances: int | None = None, cpus: int | None = None) -> dict[str, Any]:
        """Replace a region's quota limits (a metric left out: the limit it was seeded with);
        answers its limits, usage and waitingInstances. Instances waiting for room are created
        at once if there is room now."""
        spec = {"INSTANCES": instances, "CPUS": cpus}
        quotas: dict[str, Any] = self.admin.put(f"/emulator/v1/regions/{region}/quotas", json=spec).raise_for_status().json()
        return quotas

    def region_quota(self, region: str) -> dict[str, Any]:
        """A region's quota limits, usage and waitingInstances."""
        quotas: dict[str, Any] = self.admin.get(f"/emulator/v1/regions/{region}/quotas").raise_for_status().json()
        return quotas

    def set_latency(self, **spec: float) -> dict[str, Any]:
        """Seconds added to every API call (``seconds=``) or per kind (``readSeconds=``, ``writeSeconds=``)."""
        latency: dict[str, Any] = self.admin.put("/emulator/v1/latency", json=spec).raise_for_status().json()
        return latency

    def set_replication_lag(self, instance: str, seconds: float) -> dict[str, Any]:
        """A Cloud SQL replica's base lag behind its primary, in seconds."""
        path = f"/emulator/v1/sql/instances/{instance}/replicationLag"
        answer: dict[str, Any] = self.admin.put(path, json={"seconds": seconds}).raise_for_status().json()
        return answer

    def reset(self) -> None:
        """Back to the seeded world (its regional quotas too), with no faults, an empty request
        log, and the write quota and latency the emulator started with."""
        self.admin.post("/emulator/v1/reset").raise_for_status()


@contextmanager
def running_emulator(topology: Topology, **options: Any) -> Iterator[RunningEmulator]:
    """Serve ``create_app(topology, **options)`` until the block ends."""
    app = create_app(topology, **options)
    # Port 0: the system picks a free port, read back once the server listens.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="none", log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the emulator server did not start")
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as admin:
            yield RunningEmulator(
                url=url,
                topology=topology,
                settings=app.state.emulator.settings,
                admin=admin,
                dns_address=getattr(app.state, "dns_address", None),
            )
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class ComputeClients:
    project: str
    backend_services: compute_v1.BackendServicesClient
    health_checks: compute_v1.HealthChecksClient
    instances: compute_v1.InstancesClient
    region_groups: compute_v1.RegionInstanceGroupManagersClient
    global_operations: compute_v1.GlobalOperationsClient
    region_operations: compute_v1.RegionOperationsClient
    regions: compute_v1.RegionsClient
    region_backend_services: compute_v1.RegionBackendServicesClient
    region_health_checks: compute_v1.RegionHealthChecksClient
    zone_groups: compute_v1.InstanceGroupManagersClient
    zone_operations: compute_v1.ZoneOperationsClient
    global_forwarding_rules: compute_v1.GlobalForwardingRulesClient
    forwarding_rules: compute_v1.ForwardingRulesClient
    global_addresses: compute_v1.GlobalAddressesClient
    addresses: compute_v1.AddressesClient
    target_http_proxies: compute_v1.TargetHttpProxiesClient
    url_maps: compute_v1.UrlMapsClient
    instance_templates: compute_v1.InstanceTemplatesClient
    machine_types: compute_v1.MachineTypesClient

    @classmethod
    def connect(cls, url: str, project: str) -> ComputeClients:
        options: dict[str, Any] = {
            "credentials": AnonymousCredentials(),  # type: ignore[no-untyped-call]
            "client_options": ClientOptions(api_endpoint=url),
        }
        return cls(
            project=project,
            backend_services=compute_v1.BackendServicesClient(**options),
            health_checks=compute_v1.HealthChecksClient(**options),
            instances=compute_v1.InstancesClient(**options),
            region_groups=compute_v1.RegionInstanceGroupManagersClient(**options),
            global_operations=compute_v1.GlobalOperationsClient(**options),
            region_operations=compute_v1.RegionOperationsClient(**options),
            regions=compute_v1.RegionsClient(**options),
            region_backend_services=compute_v1.RegionBackendServicesClient(**options),
            region_health_checks=compute_v1.RegionHealthChecksClient(**options),
            zone_groups=compute_v1.InstanceGroupManagersClient(**options),
            zone_operations=compute_v1.ZoneOperationsClient(**options),
            global_forwarding_rules=compute_v1.GlobalForwardingRulesClient(**options),
            forwarding_rules=compute_v1.ForwardingRulesClient(**options),
            global_addresses=compute_v1.GlobalAddressesClient(**options),
            addresses=compute_v1.AddressesClient(**options),
            target_http_proxies=compute_v1.TargetHttpProxiesClient(**options),
            url_maps=compute_v1.UrlMapsClient(**options),
            instance_templates=compute_v1.InstanceTemplatesClient(**options),
            machine_types=compute_v1.MachineTypesClient(**options),
        )

    def wait(self, operation_name: str, region: str | None = None, zone: str | None = None) -> compute_v1.Operation:
        """Wait as GCP.md prescribes: the operations client's ``wait`` in a loop until DONE
        (``ExtendedOperation.result()`` would poll the real Google endpoint). A zonal
        operation (``zone``) is waited for with the zone operations client."""
        while True:
            if zone is not None:
                op = self.zone_operations.wait(project=self.project, zone=zone, operation=operation_name)
            elif region is not None:
                op = self.region_operations.wait(project=self.project, region=region, operation=operation_name)
            else:
                op = self.global_operations.wait(project=self.project, operation=operation_name)
            if op.status == compute_v1.Operation.Status.DONE:
                return op


def dns_client(url: str, project: str) -> cloud_dns.Client:
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return cloud_dns.Client(project=project, credentials=credentials, client_options={"api_endpoint": url})
