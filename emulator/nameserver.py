"""A small authoritative DNS server on UDP, answering from the managed zones, so
``dig @127.0.0.1 -p PORT checkout.shop.example.com`` shows a failover's DNS shift.

It answers A and AAAA questions (other types get an empty answer), with the record's TTL,
and says NXDOMAIN for a name its zone does not hold and REFUSED for a name outside every
managed zone. Routing policies answer what ``resolver.resolve`` chooses. Wire format per
RFC 1035 section 4; no recursion, no EDNS, no TCP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from typing import cast

import structlog

from emulator.core import Emulator
from emulator.resolver import resolve

log = structlog.get_logger()

_HEADER = struct.Struct("!HHHHHH")  # id, flags, question, answer, authority, additional counts
_QR, _AA, _RD = 0x8000, 0x0400, 0x0100
NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 3, 4, 5
_TYPES = {1: "A", 28: "AAAA"}
_CLASS_IN = 1


class MalformedQuery(ValueError):
    pass


def _read_question(packet: bytes) -> tuple[str, int, int, int]:
    """The name, type and class of a query's single question, and where the question ends."""
    labels = []
    offset = _HEADER.size
    while True:
        if offset >= len(packet):
            raise MalformedQuery("truncated name")
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length > 63 or offset + length > len(packet):
            raise MalformedQuery("bad label")
        labels.append(packet[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    if offset + 4 > len(packet):
        raise MalformedQuery("truncated question")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    return ".".join(labels) + ".", qtype, qclass, offset + 4


def _answer_record(qtype: int, ttl: int, address: str) -> bytes:
    """One answer pointing back at the question's name (offset 12)."""
    data = ipaddress.ip_address(address).packed
    return struct.pack("!HHHIH", 0xC00C, qtype, _CLASS_IN, ttl, len(data)) + data


def reply(emulator: Emulator, packet: bytes) -> bytes | None:
    """The response to one query datagram; None when it is too short to answer at all."""
    if len(packet) < _HEADER.size:
        return None
    query_id, flags, questions, _, _, _ = _HEADER.unpack_from(packet)
    opcode = flags & 0x7800
    head = query_id, _QR | opcode | _AA | (flags & _RD)
    if flags & _QR:
        return None  # a response, not a query
    if opcode != 0 or questions != 1:
        return _HEADER.pack(head[0], head[1] | (NOTIMP if opcode else FORMERR), 0, 0, 0, 0)
    try:
        name, qtype, qclass, end = _read_question(packet)
    except MalformedQuery:
        return _HEADER.pack(head[0], head[1] | FORMERR, 0, 0, 0, 0)
    question = packet[_HEADER.size : end]

    answers: list[bytes] = []
    code = NOERROR
    if qclass != _CLASS_IN:
        code = REFUSED
    else:
        found = resolve(emulator, name, _TYPES.get(qtype, ""))
        if found.zone is None:
            code = REFUSED
        elif found.record is None and not found.name_exists:
            code = NXDOMAIN
        elif found.record is not None and qtype in _TYPES:
            version = 4 if qtype == 1 else 6
            answers = [_answer_record(qtype, found.record.ttl, data) for data in found.rrdatas if _is_ip(data, version)]
    return _HEADER.pack(head[0], head[1] | code, 1, len(answers), 0, 0) + question + b"".join(answers)


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


class NameServer(asyncio.DatagramProtocol):
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's datagram transport does not subclass asyncio's, but behaves as one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        response = reply(self.emulator, data)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


async def start_name_server(emulator: Emulator, host: str, port: int) -> asyncio.DatagramTransport:
    """Listen on UDP ``host:port`` (0: any free port); close the transport to stop."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: NameServer(emulator), local_addr=(host, port))
    log.info("emulator.dns_listening", address=transport.get_extra_info("sockname")[:2])
    return transport
