"""The IAM permissions Evac needs on Google Cloud, in one place.

Two tables, one derived from the other:

- ``METHOD_PERMISSIONS``: each Google API method Evac calls (its discovery id, e.g.
  ``compute.backendServices.patch``) -> the IAM permissions the caller must hold for it (e.g.
  ``compute.backendServices.update``). The emulator refuses a mutating call with Google's
  ``403 PERMISSION_DENIED`` when one of its permissions is revoked (``emulator/iam.py``).
- ``STEP_PERMISSIONS``: each plan step kind that touches Google Cloud -> the permissions its
  ``reads`` (before-state, waiting for operations, guards) and its ``writes`` (the change and its
  undo) need. ``step_permissions(kind, regional_backend_service=True)`` swaps in the regional
  backend service permissions for a binding with ``backend_service_scope: regional``.

A readiness check asks Cloud Resource Manager's ``projects.testIamPermissions`` for the union of
the permissions of a plan's steps and reports those missing. The names are Google's (the IAM
permissions reference); Cloud SQL's ``switchover`` is granted by ``cloudsql.instances.failover``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

METHOD_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    # Compute Engine: backend services and health.
    "compute.backendServices.get": ("compute.backendServices.get",),
    "compute.backendServices.getHealth": ("compute.backendServices.get",),
    "compute.backendServices.patch": ("compute.backendServices.update",),
    "compute.backendServices.update": ("compute.backendServices.update",),
    "compute.regionBackendServices.get": ("compute.regionBackendServices.get",),
    "compute.regionBackendServices.getHealth": ("compute.regionBackendServices.get",),
    "compute.regionBackendServices.patch": ("compute.regionBackendServices.update",),
    "compute.regionBackendServices.update": ("compute.regionBackendServices.update",),
    # Compute Engine: managed instance groups (regional and zonal share the permissions).
    "compute.regionInstanceGroupManagers.get": ("compute.instanceGroupManagers.get",),
    "compute.regionInstanceGroupManagers.listManagedInstances": ("compute.instanceGroupManagers.get",),
    "compute.regionInstanceGroupManagers.resize": ("compute.instanceGroupManagers.update",),
    "compute.instanceGroupManagers.get": ("compute.instanceGroupManagers.get",),
    "compute.instanceGroupManagers.listManagedInstances": ("compute.instanceGroupManagers.get",),
    "compute.instanceGroupManagers.resize": ("compute.instanceGroupManagers.update",),
    # Compute Engine: operations, regions and their quotas, what instances are made of.
    "compute.globalOperations.get": ("compute.globalOperations.get",),
    "compute.globalOperations.wait": ("compute.globalOperations.get",),
    "compute.regionOperations.get": ("compute.regionOperations.get",),
    "compute.regionOperations.wait": ("compute.regionOperations.get",),
    "compute.zoneOperations.get": ("compute.zoneOperations.get",),
    "compute.zoneOperations.wait": ("compute.zoneOperations.get",),
    "compute.regions.get": ("compute.regions.get",),
    "compute.instanceTemplates.get": ("compute.instanceTemplates.get",),
    "compute.machineTypes.get": ("compute.machineTypes.get",),
    # Compute Engine: load balancer front ends (readiness, discovery).
    "compute.globalForwardingRules.get": ("compute.globalForwardingRules.get",),
    "compute.globalForwardingRules.list": ("compute.globalForwardingRules.list",),
    "compute.forwardingRules.get": ("compute.forwardingRules.get",),
    "compute.forwardingRules.list": ("compute.forwardingRules.list",),
    "compute.globalAddresses.get": ("compute.globalAddresses.get",),
    "compute.globalAddresses.list": ("compute.globalAddresses.list",),
    "compute.addresses.get": ("compute.addresses.get",),
    "compute.addresses.list": ("compute.addresses.list",),
    # Cloud DNS.
    "dns.managedZones.get": ("dns.managedZones.get",),
    "dns.managedZones.list": ("dns.managedZones.list",),
    "dns.resourceRecordSets.list": ("dns.resourceRecordSets.list",),
    "dns.resourceRecordSets.create": ("dns.resourceRecordSets.create",),
    "dns.resourceRecordSets.patch": ("dns.resourceRecordSets.update",),
    "dns.resourceRecordSets.delete": ("dns.resourceRecordSets.delete",),
    "dns.changes.create": ("dns.changes.create",),
    "dns.changes.get": ("dns.changes.get",),
    # Cloud SQL Admin.
    "sql.instances.get": ("cloudsql.instances.get",),
    "sql.instances.switchover": ("cloudsql.instances.failover",),
    "sql.instances.promoteReplica": ("cloudsql.instances.promoteReplica",),
    "sql.instances.insert": ("cloudsql.instances.create",),
    "sql.instances.delete": ("cloudsql.instances.delete",),
    "sql.operations.get": ("cloudsql.instances.get",),
    "sql.operations.list": ("cloudsql.instances.get",),
    # Spanner database admin and Cloud Monitoring.
    "spanner.projects.instances.databases.get": ("spanner.databases.get",),
    "spanner.projects.instances.databases.updateDdl": ("spanner.databases.updateDdl",),
    "spanner.projects.instances.databases.operations.get": ("spanner.databaseOperations.get",),
    "monitoring.projects.timeSeries.list": ("monitoring.timeSeries.list",),
}
"""Google API method (discovery id) -> the IAM permissions it needs."""

StepKind = Literal[
    "scale_target",
    "verify_health",
    "drain",
    "shift_dns",
    "sql_switchover",
    "sql_promote_replica",
    "sql_create_replica",
    "spanner_leader",
]


@dataclass(frozen=True)
class StepPermissions:
    """What one step kind needs: ``reads`` to look (never change anything), ``writes`` to make
    its change and undo it."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.reads, *self.writes)))


def _of(*methods: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for m in methods for p in METHOD_PERMISSIONS[m]))


STEP_PERMISSIONS: Mapping[StepKind, StepPermissions] = {
    "scale_target": StepPermissions(
        reads=_of(
            "compute.regionInstanceGroupManagers.get",
            "compute.regionInstanceGroupManagers.listManagedInstances",
            "compute.regions.get",
            "compute.instanceTemplates.get",
            "compute.machineTypes.get",
            "compute.regionOperations.get",
            "compute.zoneOperations.get",
        ),
        writes=_of("compute.regionInstanceGroupManagers.resize"),
    ),
    "verify_health": StepPermissions(reads=_of("compute.backendServices.getHealth"), writes=()),
    "drain": StepPermissions(
        reads=_of("compute.backendServices.get", "compute.globalOperations.get"),
        writes=_of("compute.backendServices.patch"),
    ),
    "shift_dns": StepPermissions(
        reads=_of("dns.managedZones.get", "dns.resourceRecordSets.list", "dns.changes.get"),
        writes=_of("dns.changes.create"),
    ),
    "sql_switchover": StepPermissions(
        reads=_of("sql.instances.get", "sql.operations.get"), writes=_of("sql.instances.switchover")
    ),
    "sql_promote_replica": StepPermissions(
        reads=_of("sql.instances.get", "sql.operations.get", "monitoring.projects.timeSeries.list"),
        writes=_of("sql.instances.promoteReplica"),
    ),
    "sql_create_replica": StepPermissions(
        reads=_of("sql.instances.get", "sql.operations.get"),
        writes=_of("sql.instances.insert", "sql.instances.delete"),  # the undo deletes what it created
    ),
    "spanner_leader": StepPermissions(
        reads=_of("spanner.projects.instances.databases.get", "spanner.projects.instances.databases.operations.get"),
        writes=_of("spanner.projects.instances.databases.updateDdl"),
    ),
}
"""Plan step kind -> the permissions it needs (a global backend service; see ``step_permissions``)."""

REGIONAL_BACKEND_SERVICE_PERMISSIONS: Mapping[str, str] = {
    "compute.backendServices.get": "compute.regionBackendServices.get",
    "compute.backendServices.update": "compute.regionBackendServices.update",
    "compute.globalOperations.get": "compute.regionOperations.get",
}
"""What a step needs instead for a regional backend service (``backend_service_scope: regional``)."""


def step_permissions(kind: StepKind, *, regional_backend_service: bool = False) -> StepPermissions:
    """The permissions a step of ``kind`` needs (for a regional backend service, its regional
    permissions instead of the global ones)."""
    needed = STEP_PERMISSIONS[kind]
    if not regional_backend_service:
        return needed

    def swap(permissions: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(REGIONAL_BACKEND_SERVICE_PERMISSIONS.get(p, p) for p in permissions))

    return StepPermissions(reads=swap(needed.reads), writes=swap(needed.writes))


def permissions_for(kinds: Iterable[StepKind], *, regional_backend_service: bool = False) -> list[str]:
    """Every permission the step kinds need, sorted (what to ask ``testIamPermissions`` for)."""
    found = {p for kind in kinds for p in step_permissions(kind, regional_backend_service=regional_backend_service).all}
    return sorted(found)


ALL_PERMISSIONS: frozenset[str] = frozenset(p for needed in METHOD_PERMISSIONS.values() for p in needed)
"""Every permission of ``METHOD_PERMISSIONS``."""
