"""The UDP name server: what ``dig`` would see, before and after a DNS shift."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from emulator.testing import RunningEmulator, dns_client, running_emulator
from evac.topology import Topology

NOERROR, FORMERR, NXDOMAIN, REFUSED = 0, 1, 3, 5
A, AAAA = 1, 28


@pytest.fixture(scope="module")
def with_dns(demo_topology: Topology) -> Iterator[RunningEmulator]:
    with running_emulator(demo_topology, operation_delay=0, dns_address=("127.0.0.1", 0)) as running:
        yield running


@pytest.fixture
def server(with_dns: RunningEmulator) -> RunningEmulator:
    with_dns.reset()
    return with_dns


def _query(name: str, qtype: int = A, query_id: int = 0x1234) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack("!HH", qtype, 1)


def _ask(server: RunningEmulator, packet: bytes) -> bytes:
    assert server.dns_address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(packet, server.dns_address)
        return sock.recv(512)


def _dig(server: RunningEmulator, name: str, qtype: int = A) -> tuple[int, list[tuple[int, str]]]:
    """(response code, [(ttl, address)]) as a resolver reads them."""
    query = _query(name, qtype)
    response = _ask(server, query)
    query_id, flags, _, answers, _, _ = struct.unpack_from("!HHHHHH", response)
    assert query_id == 0x1234 and flags & 0x8000 and flags & 0x0400, "an authoritative response to our query"
    offset, records = len(query), []
    for _ in range(answers):
        _, rtype, _, ttl, length = struct.unpack_from("!HHHIH", response, offset)
        data = response[offset + 12 : offset + 12 + length]
        records.append((ttl, socket.inet_ntop(socket.AF_INET if rtype == A else socket.AF_INET6, data)))
        offset += 12 + length
    return flags & 0x000F, records


def test_answers_the_record_with_its_ttl(server: RunningEmulator) -> None:
    assert _dig(server, "checkout.shop.example.com") == (NOERROR, [(300, "203.0.113.10")])


def test_a_dns_shift_made_through_the_api_is_what_the_name_server_answers(server: RunningEmulator) -> None:
    zone = dns_client(server.url, server.project).zone("shop-zone", "shop.example.com.")
    change = zone.changes()
    change.delete_record_set(zone.resource_record_set("checkout.shop.example.com.", "A", 300, ["203.0.113.10"]))
    change.add_record_set(zone.resource_record_set("checkout.shop.example.com.", "A", 60, ["198.51.100.10"]))
    change.create()

    assert _dig(server, "checkout.shop.example.com") == (NOERROR, [(60, "198.51.100.10")])


@pytest.mark.parametrize(
    ("name", "qtype", "code"),
    [
        pytest.param("nothing.shop.example.com", A, NXDOMAIN, id="missing-name"),
        pytest.param("checkout.shop.example.com", AAAA, NOERROR, id="no-record-of-that-type"),
        pytest.param("example.org", A, REFUSED, id="outside-every-zone"),
    ],
)
def test_names_without_an_answer(server: RunningEmulator, name: str, qtype: int, code: int) -> None:
    assert _dig(server, name, qtype) == (code, [])


def test_a_malformed_query_is_a_format_error(server: RunningEmulator) -> None:
    truncated = _query("checkout.shop.example.com")[:20]

    flags = struct.unpack_from("!H", _ask(server, truncated), 2)[0]

    assert flags & 0x000F == FORMERR
