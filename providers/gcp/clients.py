"""Google Cloud clients, built once per worker from configuration.

In production the constructors use Application Default Credentials. With an endpoint
override (the emulator) they use anonymous credentials and plain HTTP on that endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import compute_v1, dns, spanner_admin_database_v1, sqladmin_v1beta4  # type: ignore[attr-defined]

from activities.errors import step_failure
from evac.failures import FailureType
from providers.gcp.refs import GcpBackendRef, GcpGroupRef


@dataclass
class GcpClients:
    backend_services: compute_v1.BackendServicesClient
    region_backend_services: compute_v1.RegionBackendServicesClient
    instance_group_managers: compute_v1.RegionInstanceGroupManagersClient
    zonal_instance_group_managers: compute_v1.InstanceGroupManagersClient
    global_operations: compute_v1.GlobalOperationsClient
    region_operations: compute_v1.RegionOperationsClient
    zone_operations: compute_v1.ZoneOperationsClient
    regions: compute_v1.RegionsClient
    global_forwarding_rules: compute_v1.GlobalForwardingRulesClient
    forwarding_rules: compute_v1.ForwardingRulesClient
    target_http_proxies: compute_v1.TargetHttpProxiesClient
    url_maps: compute_v1.UrlMapsClient
    instance_templates: compute_v1.InstanceTemplatesClient
    machine_types: compute_v1.MachineTypesClient
    sql_instances: sqladmin_v1beta4.SqlInstancesServiceClient
    sql_operations: sqladmin_v1beta4.SqlOperationsServiceClient
    spanner_databases: spanner_admin_database_v1.DatabaseAdminClient
    endpoint: str | None = None
    project: str | None = None
    _credentials: Credentials | None = None
    _dns: dict[str, dns.Client] = field(default_factory=dict)
    _dns_lock: threading.Lock = field(default_factory=threading.Lock)
    _session: AuthorizedSession | None = None

    @classmethod
    def create(cls, endpoint: str | None = None, project: str | None = None) -> GcpClients:
        """Clients for Google Cloud (endpoint None) or for an emulator at ``endpoint``.

        With ``project`` set, the worker acts on that project only (see :meth:`require_project`).
        """
        credentials: Credentials | None = AnonymousCredentials() if endpoint else None  # type: ignore[no-untyped-call]
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        return cls(
            backend_services=compute_v1.BackendServicesClient(credentials=credentials, client_options=options),
            region_backend_services=compute_v1.RegionBackendServicesClient(credentials=credentials, client_options=options),
            instance_group_managers=compute_v1.RegionInstanceGroupManagersClient(credentials=credentials, client_options=options),
            zonal_instance_group_managers=compute_v1.InstanceGroupManagersClient(credentials=credentials, client_options=options),
            # Operations are awaited with our own clients: ExtendedOperation.result() would
            # ignore the endpoint override (see docs/emulator.md, "Pointing the real clients at it").
            global_operations=compute_v1.GlobalOperationsClient(credentials=credentials, client_options=options),
            region_operations=compute_v1.RegionOperationsClient(credentials=credentials, client_options=options),
            zone_operations=compute_v1.ZoneOperationsClient(credentials=credentials, client_options=options),
            regions=compute_v1.RegionsClient(credentials=credentials, client_options=options),
            global_forwarding_rules=compute_v1.GlobalForwardingRulesClient(credentials=credentials, client_options=options),
            forwarding_rules=compute_v1.ForwardingRulesClient(credentials=credentials, client_options=options),
            target_http_proxies=compute_v1.TargetHttpProxiesClient(credentials=credentials, client_options=options),
            url_maps=compute_v1.UrlMapsClient(credentials=credentials, client_options=options),
            instance_templates=compute_v1.InstanceTemplatesClient(credentials=credentials, client_options=options),
            machine_types=compute_v1.MachineTypesClient(credentials=credentials, client_options=options),
            # The data tier: sqladmin_v1beta4 and Spanner's database admin over REST (sqladmin_v1
            # ships gRPC transports only), pointed at the same endpoint.
            sql_instances=sqladmin_v1beta4.SqlInstancesServiceClient(
                transport="rest", credentials=credentials, client_options=options
            ),
            sql_operations=sqladmin_v1beta4.SqlOperationsServiceClient(
                transport="rest", credentials=credentials, client_options=options
            ),
            spanner_databases=spanner_admin_database_v1.DatabaseAdminClient(
                transport="rest", credentials=credentials, client_options=options
            ),
            endpoint=endpoint,
            project=project,
            _credentials=credentials,
        )

    def backend_services_for(self, ref: GcpBackendRef) -> tuple[Any, dict[str, str]]:
        """The client for ``ref``'s backend service and the location its calls take."""
        if ref.scope == "regional":
            return self.region_backend_services, {"region": ref.group.region}
        return self.backend_services, {}

    def group_managers_for(self, ref: GcpGroupRef) -> tuple[Any, dict[str, str]]:
        """The client for ``ref``'s managed instance group and the location its calls take."""
        if ref.zone:
            return self.zonal_instance_group_managers, {"zone": ref.zone}
        return self.instance_group_managers, {"region": ref.region}

    def require_project(self, project: str) -> None:
        """A worker configured for one project (EVAC_GCP_PROJECT) refuses to touch another."""
        if self.project and project != self.project:
            raise step_failure(
                FailureType.WRONG_PROJECT,
                f"this worker serves Google Cloud project '{self.project}' (EVAC_GCP_PROJECT); "
                f"the run asks for project '{project}'",
            )

    def dns_for(self, project: str) -> dns.Client:
        """A Cloud DNS client bound to ``project`` (the library binds one project per client)."""
        with self._dns_lock:
            client = self._dns.get(project)
            if client is None:
                options = {"api_endpoint": self.endpoint} if self.endpoint else None
                client = dns.Client(project=project, credentials=self._credentials, client_options=options)
                self._dns[project] = client
            return client

    @property
    def monitoring_url(self) -> str:
        """Where Cloud Monitoring v3 is called (google-cloud-monitoring has no REST transport, so
        its metrics are read with an authorized HTTP session)."""
        return (self.endpoint or "https://monitoring.googleapis.com").rstrip("/")

    @property
    def resource_manager_url(self) -> str:
        """Where Cloud Resource Manager v1 is called (``projects.testIamPermissions``), with the same session."""
        return (self.endpoint or "https://cloudresourcemanager.googleapis.com").rstrip("/")

    def rest_session(self) -> AuthorizedSession:
        """An HTTP session with the clients' credentials (Application Default Credentials in
        production, anonymous against an emulator), built on first use: for the REST APIs Evac
        calls without a client library of theirs (Cloud Monitoring, Resource Manager)."""
        with self._dns_lock:
            if self._session is None:
                credentials = self._credentials
                if credentials is None:
                    import google.auth

                    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
                self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
            return self._session
