"""The on-premises provider's resource references: a data centre's servers in an HAProxy
backend, and a record in a zone served by RFC 2136-capable DNS servers."""

from __future__ import annotations

from typing import Literal

from evac.refs import GLOBAL, BackendRef, DnsRecordRef, narrowed


class HaproxyBackendRef(BackendRef):
    """A data centre's servers in one HAProxy backend, through its Runtime API."""

    provider: Literal["onprem"] = "onprem"
    site: str  # the data centre (the region's name); its HAProxy is its own control plane
    api: str
    backend: str
    servers: tuple[str, ...] = ()  # () = every server of the backend

    @property
    def region(self) -> str:
        return self.site

    @property
    def control_plane(self) -> str:
        """The data centre's HAProxy answers for it: in a dead data centre, it is dead too."""
        return self.site

    def __str__(self) -> str:
        which = f" servers {', '.join(self.servers)}" if self.servers else ""
        return f"HAProxy backend {self.backend}{which} in {self.site}"


class Rfc2136RecordRef(DnsRecordRef):
    """A record changed by RFC 2136 dynamic updates signed with a TSIG key (BIND 9, PowerDNS …)."""

    provider: Literal["onprem"] = "onprem"
    zone: str
    servers: tuple[str, ...]  # address:port; the first is the primary, which takes updates
    tsig_key: str  # the key's name: its secret is the worker's, never a run's

    @property
    def control_plane(self) -> str:
        """Authoritative servers in more than one place: no one region's."""
        return GLOBAL

    def __str__(self) -> str:
        return f"DNS record {self.name} ({self.type}) in zone {self.zone}"


# The provider's code narrows a reference it was given to its own class.
ours = narrowed
