"""DNS records on authoritative servers we run ourselves: RFC 2136 dynamic updates signed with
TSIG (RFC 8945), through dnspython, against BIND 9 or any server that speaks them.

* :meth:`DnsClient.read` asks the primary (over TCP) what a record holds now.
* :meth:`DnsClient.swap` is a compare-and-swap in one update message: its prerequisite says the
  record holds exactly ``old`` (RFC 2136 §2.4.2, "RRset exists, value dependent"; or, when
  ``old`` is None, §2.4.3 "RRset does not exist"), then it deletes the record and adds ``new``.
  The server applies all of it or none of it: if someone changed the record since it was read,
  the server answers NXRRSET/YXRRSET and nothing changes (:attr:`~ErrorKind.CONTENDED`).
  Undo is the same call the other way round: ``swap(new, old)``.
* :meth:`DnsClient.wait_served` waits until every listed server (the primary and its
  secondaries) answers the new values, at a zone serial at least the primary's.

Errors become :class:`~providers.errors.ProviderError` here, the cause kept:

* no answer in time, connection refused or closed, SERVFAIL — TRANSIENT;
* NOTAUTH, REFUSED, NOTZONE, FORMERR, a TSIG error (BADKEY, BADSIG, BADTIME) — REFUSED;
* NXRRSET, YXRRSET (a prerequisite that no longer holds) — CONTENDED.

Servers are given as addresses (``127.0.0.1:5353``, ``[2001:db8::53]:53``), not host names:
resolving the DNS servers' names through DNS in the middle of a DNS failover would make the
failover depend on what it is changing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.tsig
import dns.update
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from providers.errors import ErrorKind, ProviderError

DEFAULT_TIMEOUT = 5.0
# How often wait_served asks the servers again while some still answer the old values.
POLL_INTERVAL = 0.1
TSIG_ALGORITHMS = frozenset(
    {"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"},
)

# What an update's answer code means for the caller (NOERROR is success; anything else REFUSED).
UPDATE_RCODE_KINDS = {
    dns.rcode.NXRRSET: ErrorKind.CONTENDED,  # the record no longer holds `old`
    dns.rcode.YXRRSET: ErrorKind.CONTENDED,  # `old` was None but the record exists now
    dns.rcode.SERVFAIL: ErrorKind.TRANSIENT,
}


# --- TSIG keys -------------------------------------------------------------------------------


class TsigKeyFileError(ValueError):
    """A TSIG key file that cannot be read or is not in BIND's ``key`` format (the file named)."""


class TsigKey(BaseModel):
    """A TSIG key: its name, algorithm and secret (base64; never shown in repr or str)."""

    model_config = ConfigDict(frozen=True)

    name: str
    algorithm: str = "hmac-sha256"
    secret: SecretStr


_KEY_BLOCK = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.DOTALL)
_KEY_ALGORITHM = re.compile(r'algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;')
_KEY_SECRET = re.compile(r'secret\s+"([^"]*)"\s*;')
_COMMENT = re.compile(r"(//|#)[^\n]*|/\*.*?\*/", re.DOTALL)


def load_tsig_key(path: Path | str, name: str | None = None) -> TsigKey:
    """The key in a BIND key file (``key "NAME" { algorithm hmac-sha256; secret "…"; };``, as
    ``tsig-keygen`` writes it); ``name`` picks one when the file holds several."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TsigKeyFileError(f"cannot read the TSIG key file {path}: {exc}") from exc
    blocks = {key_name.rstrip("."): body for key_name, body in _KEY_BLOCK.findall(_COMMENT.sub("", text))}
    expected = 'key "NAME" { algorithm hmac-sha256; secret "BASE64"; };'
    if not blocks:
        raise TsigKeyFileError(f"the TSIG key file {path} holds no key in BIND's format ({expected})")
    if name is None and len(blocks) > 1:
        raise TsigKeyFileError(f"the TSIG key file {path} holds several keys ({', '.join(blocks)}): name the one to use")
    key_name = name.rstrip(".") if name is not None else next(iter(blocks))
    if key_name not in blocks:
        raise TsigKeyFileError(f"the TSIG key file {path} holds no key named {key_name} (it holds {', '.join(blocks)})")
    body = blocks[key_name]
    algorithm, secret = _KEY_ALGORITHM.search(body), _KEY_SECRET.search(body)
    if algorithm is None or secret is None:
        raise TsigKeyFileError(f"the TSIG key {key_name} in {path} lacks an algorithm or a secret ({expected})")
    if algorithm.group(1).lower() not in TSIG_ALGORITHMS:
        raise TsigKeyFileError(f"the TSIG key {key_name} in {path} uses an unknown algorithm {algorithm.group(1)}")
    try:
        base64.b64decode(secret.group(1), validate=True)
    except binascii.Error as exc:
        raise TsigKeyFileError(f"the secret of the TSIG key {key_name} in {path} is not base64") from exc
    return TsigKey(name=key_name, algorithm=algorithm.group(1).lower(), secret=SecretStr(secret.group(1)))


# --- configuration and records -----------------------------------------------------------------


def split_server(server: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"`` → ``("127.0.0.1", 5353)``; ``"[::1]:53"`` → ``("::1", 53)``; no port: 53."""
    host, port = server, "53"
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif server.count(":") == 1:
        host, port = server.split(":")
    ipaddress.ip_address(host)  # ValueError: a name, not an address
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{server}: the port must be a number from 1 to 65535")
    return host, int(port)


def absolute(name: str) -> str:
    """A domain name in one spelling: lower case, ending with a dot (ValueError: not a name)."""
    try:
        return dns.name.from_text(name).to_text().lower()
    except dns.exception.DNSException as exc:
        raise ValueError(f"{name!r} is not a domain name: {exc}") from exc


class DnsConfig(BaseModel):
    """Where the zone is served and the key that may update it.

    ``servers`` are the zone's authoritative servers as ``address:port``; the first is the
    primary, which takes the updates; the others are what :meth:`DnsClient.wait_served` waits
    for as well. The key comes from configuration (``tsig_key_name``, ``tsig_algorithm``,
    ``tsig_secret``) or from a BIND key file (``tsig_key_file``, read once when the config is
    built). The secret never shows in the config's repr, str or dump.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    servers: tuple[str, ...] = Field(min_length=1)
    zone: str
    tsig_key_name: str
    tsig_algorithm: str = "hmac-sha256"
    tsig_secret: SecretStr
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, description="seconds for one query or update")

    @model_validator(mode="before")
    @classmethod
    def _key_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("tsig_key_file") is None:
            return data
        if data.get("tsig_secret") is not None:
            raise ValueError("give the TSIG secret either in tsig_secret or in tsig_key_file, not both")
        fields = {k: v for k, v in data.items() if k != "tsig_key_file"}
        key = load_tsig_key(data["tsig_key_file"], fields.get("tsig_key_name"))
        return {**fields, "tsig_key_name": key.name, "tsig_algorithm": key.algorithm, "tsig_secret": key.secret}

    @field_validator("servers")
    @classmethod
    def _addresses(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for server in servers:
            try:
                split_server(server)
            except ValueError as exc:
                raise ValueError(f"a DNS server is an address:port, not {server!r} ({exc})") from exc
        return servers

    @field_validator("zone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return absolute(zone)

    @field_validator("tsig_algorithm")
    @classmethod
    def _algorithm(cls, algorithm: str) -> str:
        if algorithm.lower().rstrip(".") not in TSIG_ALGORITHMS:
            raise ValueError(f"unknown TSIG algorithm {algorithm} (one of {', '.join(sorted(TSIG_ALGORITHMS))})")
        return algorithm.lower().rstrip(".")

    @property
    def primary(self) -> str:
        return self.servers[0]


class RecordSet(BaseModel):
    """One record set (RRset): name, type, TTL and its values, in canonical text, sorted, each once."""

    model_config = ConfigDict(frozen=True)

    name: str
    rtype: str
    ttl: int = Field(ge=0, le=2**31 - 1)
    values: tuple[str, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return absolute(name)

    @field_validator("rtype")
    @classmethod
    def _rtype(cls, rtype: str) -> str:
        try:
            return dns.rdatatype.to_text(dns.rdatatype.from_text(rtype.upper()))
        except dns.exception.DNSException as exc:
            raise ValueError(f"{rtype!r} is not a record type") from exc

    @field_validator("values")
    @classmethod
    def _values(cls, values: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        rtype = info.data.get("rtype")
        if rtype is None:
            return values
        canonical = set()
        for value in values:
            try:
                rdata = dns.rdata.from_text(dns.rdataclass.IN, rtype, value, origin=dns.name.root, relativize=False)
                canonical.add(rdata.to_text())
            except dns.exception.DNSException as exc:
                raise ValueError(f"{value!r} is not a value of a {rtype} record: {exc}") from exc
        return tuple(sorted(canonical))

    def rdataset(self) -> dns.rdataset.Rdataset:
        return dns.rdataset.from_text_list(dns.rdataclass.IN, self.rtype, self.ttl, list(self.values))

    def describe(self) -> str:
        return f"{self.name} {self.rtype} {' '.join(self.values)}"


# --- the client --------------------------------------------------------------------------------


@contextlib.contextmanager
def _dns_call(what: str, server: str, timeout: float) -> Iterator[None]:
    """Translate what dnspython raised while doing ``what`` at ``server``."""
    try:
        yield
    except (dns.tsig.PeerError, dns.tsig.BadSignature, dns.tsig.BadTime, dns.message.UnknownTSIGKey) as exc:
        raise ProviderError(ErrorKind.REFUSED, f"{what} at {server}: TSIG refused: {exc}") from exc
    except dns.exception.Timeout as exc:
        raise ProviderError(ErrorKind.TRANSIENT, f"{what} at {server}: no answer within {timeout:g} s") from exc
    except (OSError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or "the connection closed before the answer"
        raise ProviderError(ErrorKind.TRANSIENT, f"{what} at {server}: {reason}") from exc
    except dns.exception.DNSException as exc:
        raise ProviderError(ErrorKind.TRANSIENT, f"{what} at {server}: a malformed answer: {exc}") from exc


def serial_at_least(serial: int, reference: int) -> bool:
    """Whether zone serial ``serial`` is ``reference`` or newer, in RFC 1982 serial arithmetic
    (serials wrap around at 2**32)."""
    return (serial - reference) % 2**32 < 2**31


class DnsClient:
    """Reads and compare-and-swaps record sets in one zone (see the module's docstring)."""

    def __init__(self, config: DnsConfig) -> None:
        self.config = config

    # reads

    def read(self, name: str, rtype: str) -> RecordSet | None:
        """What the primary holds for ``name``/``rtype`` now (TCP); None when there is none."""
        return self._read_at(self.config.primary, absolute(name), rtype.upper(), self.config.timeout, tcp=True)

    def serial(self, server: str | None = None, timeout: float | None = None) -> int:
        """The zone's SOA serial at ``server`` (default: the primary)."""
        server = server or self.config.primary
        rdataset = self._ask(server, self.config.zone, "SOA", timeout or self.config.timeout, tcp=False)
        soa = next(iter(rdataset), None) if rdataset is not None else None
        if not isinstance(soa, dns.rdtypes.ANY.SOA.SOA):
            raise ProviderError(ErrorKind.NOT_FOUND, f"no SOA record for zone {self.config.zone} at {server}")
        return int(soa.serial)

    def _read_at(self, server: str, name: str, rtype: str, timeout: float, *, tcp: bool) -> RecordSet | None:
        rdataset = self._ask(server, name, rtype, timeout, tcp=tcp)
        if rdataset is None:
            return None
        return RecordSet(name=name, rtype=rtype, ttl=rdataset.ttl, values=tuple(r.to_text() for r in rdataset))

    def _ask(self, server: str, name: str, rtype: str, timeout: float, *, tcp: bool) -> dns.rdataset.Rdataset | None:
        """The authoritative answer of ``server`` for ``name``/``rtype`` (None: no such record)."""
        self._check_in_zone(name)
        what = f"query {name} {rtype}"
        address, port = split_server(server)
        query = dns.message.make_query(name, rtype)
        with _dns_call(what, server, timeout):
            if tcp:
                answer = dns.query.tcp(query, address, timeout=timeout, port=port)
            else:
                answer, _ = dns.query.udp_with_fallback(query, address, timeout=timeout, port=port)
        rcode = answer.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return None
        if rcode == dns.rcode.SERVFAIL:
            raise ProviderError(ErrorKind.TRANSIENT, f"{what} at {server}: SERVFAIL")
        if rcode != dns.rcode.NOERROR or not answer.flags & dns.flags.AA:
            reason = dns.rcode.to_text(rcode) if rcode != dns.rcode.NOERROR else "not authoritative"
            raise ProviderError(ErrorKind.REFUSED, f"{what} at {server}: {reason} (does it serve zone {self.config.zone}?)")
        rrset = answer.get_rrset(answer.answer, dns.name.from_text(name), dns.rdataclass.IN, dns.rdatatype.from_text(rtype))
        return rrset if rrset else None

    def _check_in_zone(self, name: str) -> None:
        if not dns.name.from_text(name).is_subdomain(dns.name.from_text(self.config.zone)):
            raise ProviderError(ErrorKind.REFUSED, f"{name} is not in zone {self.config.zone}")

    # the change

    def swap(self, old: RecordSet | None, new: RecordSet) -> RecordSet | None:
        """Make the record ``new`` if it still holds exactly ``old`` (None: if there is none),
        in one signed update to the primary; returns ``old``, the state before.

        Idempotent: when the primary already holds ``new`` (a retry after an answer that was
        lost), nothing is sent and ``old`` is returned, as the first call would have. Otherwise
        the update is always sent, whatever the read said: the server's prerequisite, not our
        read, decides whether the record still holds ``old`` (CONTENDED when it does not).
        """
        if old is not None and (old.name, old.rtype) != (new.name, new.rtype):
            raise ValueError(f"swap {old.describe()} for {new.describe()}: not the same name and type")
        if self.read(new.name, new.rtype) == new:
            return old
        update = dns.update.UpdateMessage(self.config.zone)
        if old is None:
            update.absent(new.name, new.rtype)
        else:
            update.present(new.name, *old.rdataset())  # rdatas, not the rdataset: a prerequisite's TTL is 0
        update.delete(new.name, new.rtype)
        update.add(new.name, new.rdataset())
        update.use_tsig(self._key())
        server = self.config.primary
        address, port = split_server(server)
        what = f"update {new.name} {new.rtype} to {' '.join(new.values)}"
        with _dns_call(what, server, self.config.timeout):
            answer = dns.query.tcp(update, address, timeout=self.config.timeout, port=port)
        rcode = answer.rcode()
        if rcode != dns.rcode.NOERROR:
            kind = UPDATE_RCODE_KINDS.get(rcode, ErrorKind.REFUSED)
            expected = f"holds {' '.join(old.values)}" if old is not None else "does not exist"
            hint = (
                f": the record no longer {expected} (someone else changed it; read it again)"
                if kind is ErrorKind.CONTENDED
                else ""
            )
            raise ProviderError(kind, f"{what} at {server}: {dns.rcode.to_text(rcode)}{hint}")
        return old

    def _key(self) -> dns.tsig.Key:
        config = self.config
        return dns.tsig.Key(config.tsig_key_name, config.tsig_secret.get_secret_value(), config.tsig_algorithm)

    # propagation

    def wait_served(self, new: RecordSet, timeout: float) -> None:
        """Return as soon as every server answers exactly ``new``'s values at a zone serial no
        older than the primary's (read first, after the update); TRANSIENT after ``timeout``
        seconds, naming the servers that still disagree and what they answer."""
        deadline = time.monotonic() + timeout
        reference: int | None = None
        pending = {server: "not asked yet" for server in self.config.servers}
        while True:
            if reference is None:
                try:
                    reference = self.serial()
                except ProviderError as exc:
                    pending[self.config.primary] = f"its serial unknown: {exc}"
            if reference is not None:
                for server in list(pending):
                    budget = max(min(self.config.timeout, deadline - time.monotonic()), 0.05)
                    disagreement = self._disagreement(server, new, reference, budget)
                    if disagreement is None:
                        del pending[server]
                    else:
                        pending[server] = disagreement
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                lagging = "; ".join(f"{server} ({state})" for server, state in pending.items())
                raise ProviderError(
                    ErrorKind.TRANSIENT,
                    f"{new.describe()} not served everywhere within {timeout:g} s: still disagreeing: {lagging}",
                )
            time.sleep(min(POLL_INTERVAL, left))

    def _disagreement(self, server: str, new: RecordSet, reference: int, timeout: float) -> str | None:
        """None when ``server`` answers ``new``'s values at serial ``reference`` or newer; else how it differs."""
        try:
            served = self._read_at(server, new.name, new.rtype, timeout, tcp=False)
            serial = self.serial(server, timeout)
        except ProviderError as exc:
            return exc.message
        if served is None or served.values != new.values:
            return f"answers {' '.join(served.values) if served else 'no record'}"
        if not serial_at_least(serial, reference):
            return f"at serial {serial}, older than the primary's {reference}"
        return None
