"""Every provider a worker serves, and which one serves a reference: the ``provider`` tag it
carries (``evac/refs.py``). The activities ask this, and nothing else, which code to call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evac.refs import BackendRef, DatabaseRef, DnsRecordRef, GroupRef, LeaderRef, ResourceRef
from providers.base import Capacity, Databases, Dns, Leaders, Traffic
from providers.gcp.capacity import GcpCapacity
from providers.gcp.clients import GcpClients
from providers.gcp.databases import GcpDatabases, GcpLeaders
from providers.gcp.discovery import GcpDiscovery
from providers.gcp.dns import GcpDns
from providers.gcp.iam import GcpIam
from providers.gcp.traffic import GcpTraffic
from providers.onprem.provider import OnPremProvider


@dataclass
class GcpProvider:
    clients: GcpClients
    traffic: GcpTraffic = field(init=False)
    capacity: GcpCapacity = field(init=False)
    dns: GcpDns = field(init=False)
    databases: GcpDatabases = field(init=False)
    leaders: GcpLeaders = field(init=False)
    iam: GcpIam = field(init=False)
    discovery: GcpDiscovery = field(init=False)

    def __post_init__(self) -> None:
        self.traffic = GcpTraffic(self.clients)
        self.capacity = GcpCapacity(self.clients)
        self.dns = GcpDns(self.clients)
        self.databases = GcpDatabases(self.clients)
        self.leaders = GcpLeaders(self.clients)
        self.iam = GcpIam(self.clients)
        self.discovery = GcpDiscovery(self.clients)


class NoProvider(LookupError):
    """A reference names a provider this worker is not configured for."""


@dataclass
class Providers:
    """The providers of one worker, by the tag their references carry."""

    gcp: GcpProvider
    onprem: OnPremProvider

    @classmethod
    def of(cls, clients: GcpClients, tsig_key_dir: Path | None = None) -> Providers:
        """Google Cloud through ``clients``; on premises with the TSIG keys in ``tsig_key_dir``."""
        return cls(gcp=GcpProvider(clients), onprem=OnPremProvider(tsig_key_dir))

    def _provider(self, ref: ResourceRef) -> GcpProvider | OnPremProvider:
        tag = getattr(ref, "provider", None)
        if tag == "gcp":
            return self.gcp
        if tag == "onprem":
            return self.onprem
        raise NoProvider(f"{ref}: this worker serves no provider '{tag}'")

    def traffic(self, ref: BackendRef) -> Traffic:
        return self._provider(ref).traffic

    def capacity(self, ref: GroupRef) -> Capacity:
        return self._provider(ref).capacity

    def dns(self, ref: DnsRecordRef) -> Dns:
        return self._provider(ref).dns

    def _gcp_only(self, ref: ResourceRef) -> GcpProvider:
        """Databases are Google Cloud's only, for now (Cloud SQL, Spanner)."""
        provider = self._provider(ref)
        if not isinstance(provider, GcpProvider):
            raise NoProvider(f"{ref}: provider '{getattr(ref, 'provider', None)}' has no databases")
        return provider

    def databases(self, ref: DatabaseRef) -> Databases:
        return self._gcp_only(ref).databases

    def leaders(self, ref: LeaderRef) -> Leaders:
        return self._gcp_only(ref).leaders
