"""The on-premises daemons a topology names, run on a laptop and in the end-to-end tests: Debian's
BIND 9 and HAProxy, configured from the topology's ``provider: onprem`` bindings, as the emulator
stands in for Google Cloud.

- For each set of DNS servers a record names: the first runs as the zone's primary (it takes the
  updates signed with the record's TSIG key), every other as a secondary that follows it by NOTIFY
  and zone transfer. The zone starts with each record pointing at its service's primary region.
  The keys are made with ``tsig-keygen`` into ``<state>/tsig/<name>.key``: the folder the stack's
  worker gets as ``EVAC_TSIG_KEY_DIR``.
- For each HAProxy Runtime API address: one haproxy with that API (level admin) and a backend per
  name the topology gives, its servers (``servers``, or s1 and s2) without health checks, so that
  HAProxy reports them UP with nothing behind them.

Ports are the topology's: a topology for a laptop names fixed loopback ports; a test writes one
with free ports. Only loopback addresses are served.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from evac.topology import Topology
from providers.onprem.bindings import OnPremRegionBinding, Rfc2136DnsBinding
from providers.onprem.dns import absolute, split_server

DEFAULT_SERVERS = ("s1", "s2")


class MissingDaemon(RuntimeError):
    """A Debian package the topology's on-premises part needs is not installed."""


def debian_program(name: str, package: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        raise MissingDaemon(f"'{name}' is not installed: apt-get install {package} (the topology names on-premises parts)")
    return found


@dataclass
class Zone:
    """One zone on one set of servers, and the records it starts with."""

    name: str
    servers: tuple[str, ...]
    key: str
    records: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # name -> (type, ttl, address)


@dataclass
class Haproxy:
    api: str
    backends: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Daemon:
    """A daemon to run: its name (for its log), its command and the port that says it is up."""

    name: str
    command: list[str]
    port: int
    dns_zone: str | None = None


def plan(topology: Topology) -> tuple[list[Zone], list[Haproxy]]:
    """The zones and haproxies the topology's on-premises bindings name."""
    zones: dict[tuple[tuple[str, ...], str], Zone] = {}
    proxies: dict[str, Haproxy] = {}
    for spec in topology.services.values():
        dns = spec.dns
        if isinstance(dns, Rfc2136DnsBinding):
            key = (tuple(dns.servers), absolute(dns.zone))
            zone = zones.setdefault(key, Zone(name=key[1], servers=key[0], key=dns.tsig_key))
            zone.records[absolute(dns.record)] = (dns.type, dns.ttl, spec.regions[spec.primary_region].address)
        for binding in spec.regions.values():
            if isinstance(binding, OnPremRegionBinding):
                proxy = proxies.setdefault(binding.haproxy.api, Haproxy(api=binding.haproxy.api))
                servers = proxy.backends.setdefault(binding.haproxy.backend, [])
                for server in binding.haproxy.servers or DEFAULT_SERVERS:
                    if server not in servers:
                        servers.append(server)
    return list(zones.values()), list(proxies.values())


def _zone_file(zone: Zone) -> str:
    lines = [
        "$TTL 60",
        f"@ IN SOA ns1.{zone.name} hostmaster.{zone.name} 1 60 30 3600 60",
        f"@ IN NS ns1.{zone.name}",
        f"ns1.{zone.name} IN A 127.0.0.1",
    ]
    lines += [f"{name} {ttl} IN {rtype} {address}" for name, (rtype, ttl, address) in sorted(zone.records.items())]
    return "\n".join(lines) + "\n"


def named_conf(folder: Path, port: int, zone_clause: str, key_file: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "named.conf"
    conf.write_text(
        f'include "{key_file}";\n'
        f'options {{ directory "{folder}"; pid-file "{folder}/named.pid"; session-keyfile "{folder}/session.key";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; dnssec-validation no;\n"
        f"  notify-delay 0; }};\n"
        f"{zone_clause}\n"
    )
    return conf


def tsig_key(key_dir: Path, name: str) -> Path:
    """``key_dir/<name>.key``, made with tsig-keygen when it is not there yet."""
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / f"{name}.key"
    if not path.exists():
        made = subprocess.run(
            [debian_program("tsig-keygen", "bind9"), "-a", "hmac-sha256", name], capture_output=True, text=True, check=True
        )
        path.write_text(made.stdout)
        path.chmod(0o600)
    return path


def daemons(topology: Topology, state_dir: Path) -> list[Daemon]:
    """Every daemon the topology's on-premises part needs, configured under ``state_dir/onprem``,
    in the order to start them (a zone's primary before its secondaries)."""
    zones, proxies = plan(topology)
    if not zones and not proxies:
        return []
    folder = (state_dir / "onprem").resolve()
    key_dir = (state_dir / "tsig").resolve()
    as_root = ["-u", "root"] if os.getuid() == 0 else []  # as root, named switches to user bind unless told
    found: list[Daemon] = []
    for z, zone in enumerate(zones):
        named = debian_program("named", "bind9")
        key_file = tsig_key(key_dir, zone.key)
        primary_host, primary_port = split_server(zone.servers[0])
        for i, server in enumerate(zone.servers):
            host, port = split_server(server)
            where = folder / f"zone{z}-{i}"
            if i == 0:
                notify = "".join(f"{h} port {p}; " for h, p in map(split_server, zone.servers[1:]))
                clause = (
                    f'zone "{zone.name}" {{ type primary; file "{where}/zone"; notify yes; also-notify {{ {notify}}};\n'
                    f"  allow-transfer {{ 127.0.0.1; }}; update-policy {{ grant {zone.key} zonesub ANY; }}; }};"
                )
            else:
                clause = (
                    f'zone "{zone.name}" {{ type secondary; primaries {{ {primary_host} port {primary_port}; }}; '
                    f'file "{where}/zone"; }};'
                )
            conf = named_conf(where, port, clause, key_file)
            if i == 0:
                (where / "zone").write_text(_zone_file(zone))
                for journal in where.glob("zone.jnl"):
                    journal.unlink()  # a fresh start: the zone as the topology says
            if host not in ("127.0.0.1", "::1"):
                raise MissingDaemon(f"DNS server {server}: the local stack serves loopback addresses only")
            found.append(Daemon(f"named-{z}-{i}", [named, "-g", "-n", "1", "-c", str(conf), *as_root], port, zone.name))
    for p, proxy in enumerate(proxies):
        binary = debian_program("haproxy", "haproxy")
        if proxy.api.startswith("/"):
            socket_line = f"  stats socket {proxy.api} level admin"
            port = 0
        else:
            host, _, port_text = proxy.api.rpartition(":")
            socket_line, port = f"  stats socket ipv4@{host}:{port_text} level admin", int(port_text)
        backends = "".join(
            f"backend {name}\n  balance roundrobin\n"
            + "".join(f"  server {server} 127.0.0.1:{9 + i}\n" for i, server in enumerate(servers))
            for name, servers in proxy.backends.items()
        )
        where = folder / f"haproxy{p}"
        where.mkdir(parents=True, exist_ok=True)
        cfg = where / "haproxy.cfg"
        cfg.write_text(
            "global\n"
            f"{socket_line}\n"
            "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
            f"{backends}"
        )
        found.append(Daemon(f"haproxy-{p}", [binary, "-f", str(cfg), "-db"], port))
    return found
