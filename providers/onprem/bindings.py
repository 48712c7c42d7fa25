"""The on-premises provider's topology bindings: a data centre's servers behind HAProxy, and a
record in a zone whose servers take RFC 2136 dynamic updates signed with TSIG."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from evac.document_types import Count, DnsName, IpAddress, StrictModel
from providers.onprem.refs import HaproxyBackendRef, Rfc2136RecordRef

_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


def _token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"'{value}' is not an HAProxy name (letters, digits, '.', '_', ':' or '-', at most 64)")
    return value


def _endpoint(value: str) -> str:
    """``address:port`` (an IP address: looking DNS servers up in DNS during a DNS failover is circular)."""
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{value}' is not address:port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"'{value}': '{host}' is not an IP address (a server is named by its address)") from None
    return value


class HaproxyBinding(StrictModel):
    api: str = Field(description="HAProxy's Runtime API: address:port (stats socket … level admin) or a UNIX socket path")
    backend: str = Field(description="The HAProxy backend whose servers serve the service in this data centre")
    servers: list[str] = Field(default_factory=list, description="This data centre's servers in it (default: all of them)")

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        return value if value.startswith("/") else _endpoint(value)

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        return _token(value)

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        return [_token(server) for server in value]


class OnPremRegionBinding(StrictModel):
    """What serves one service in a data centre (``provider: onprem``): servers behind HAProxy.
    Its capacity is what is racked there: there is no group to resize."""

    provider: Literal["onprem"]
    haproxy: HaproxyBinding
    address: IpAddress = Field(description="The address the DNS record holds when this data centre serves")

    @property
    def max_size(self) -> int | None:
        return None

    @property
    def drainable(self) -> bool:
        return True

    def problems(self, region: str) -> list[tuple[tuple[str, ...], str]]:
        return []

    def group_ref(self, project: str, region: str) -> None:
        return None

    def backend_ref(self, project: str, region: str) -> HaproxyBackendRef:
        h = self.haproxy
        return HaproxyBackendRef(site=region, api=h.api, backend=h.backend, servers=tuple(h.servers))


class Rfc2136DnsBinding(StrictModel):
    """A record in a zone served by authoritative servers that take RFC 2136 dynamic updates
    (``provider: onprem``): BIND 9, PowerDNS, Knot …"""

    provider: Literal["onprem"]
    zone: DnsName = Field(description="The zone, fully qualified")
    record: DnsName = Field(description="Fully qualified record name, ending with '.'")
    type: Literal["A", "AAAA"] = "A"
    ttl: Count = Field(default=300, ge=1, le=86400)
    servers: list[str] = Field(
        min_length=1,
        description="The zone's authoritative servers as address:port; the first is the primary, which takes the "
        "updates; a change is done when every one answers it",
    )
    tsig_key: str = Field(
        description="The name of the TSIG key that may update the zone; its secret is the worker's "
        "(EVAC_TSIG_KEY_DIR/<name>.key, as tsig-keygen writes it), never in a topology or a run"
    )

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        return [_endpoint(server) for server in value]

    @field_validator("tsig_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(f"'{value}' is not a TSIG key name (letters, digits, '.', '_' or '-')")
        return value

    def record_ref(self, project: str) -> Rfc2136RecordRef:
        return Rfc2136RecordRef(
            name=self.record, type=self.type, zone=self.zone, servers=tuple(self.servers), tsig_key=self.tsig_key
        )
