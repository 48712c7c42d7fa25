"""DNS through RFC 2136 updates signed with TSIG, against real BIND 9 servers (a primary, its
secondary and a server that never gets the updates): the compare-and-swap, its undo, its faults
and the wait until every server answers the new values."""

from __future__ import annotations

import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from evac.stack import free_port
from providers.errors import ErrorKind, ProviderError
from providers.onprem.dns import (
    DnsClient,
    DnsConfig,
    RecordSet,
    TsigKeyFileError,
    load_tsig_key,
    serial_at_least,
    split_server,
)
from tests.debian import debian_binary
from tests.onprem.conftest import ZONE, Bind, tcp_listener


def a_record(name: str, *values: str, ttl: int = 60) -> RecordSet:
    return RecordSet(name=name, rtype="A", ttl=ttl, values=values)


def nsupdate(bind: Bind, script: str) -> None:
    """Someone else changing the zone: BIND's own nsupdate, with the same key."""
    binary = debian_binary("nsupdate", "bind9-dnsutils")
    host, port = bind.primary.split(":")
    commands = f"server {host} {port}\nzone {ZONE}\n{script}\nsend\n"
    subprocess.run([binary, "-k", str(bind.key_file)], input=commands, text=True, check=True, timeout=20, capture_output=True)


# --- the key and the configuration --------------------------------------------------------------


def test_the_key_tsig_keygen_wrote_is_loaded_and_its_secret_never_shown(bind: Bind) -> None:
    key = load_tsig_key(bind.key_file)
    config = bind.config()
    secret = key.secret.get_secret_value()
    assert (key.name, key.algorithm, config.tsig_key_name, config.tsig_algorithm) == (
        "evac-key",
        "hmac-sha256",
        "evac-key",
        "hmac-sha256",
    )
    assert config.tsig_secret.get_secret_value() == secret
    for shown in (repr(config), str(config), config.model_dump_json(), repr(key), str(key)):
        assert secret not in shown


@pytest.mark.parametrize(
    "content",
    [
        "",
        'key "k" { algorithm hmac-sha256; };',
        'key "k" { algorithm hmac-sha256; secret "not base64!"; };',
        'key "k" { algorithm rot13; secret "c2VjcmV0"; };',
        'key "a" { algorithm hmac-sha256; secret "c2VjcmV0"; };\nkey "b" { algorithm hmac-sha256; secret "c2VjcmV0"; };',
    ],
    ids=["empty", "no-secret", "secret-not-base64", "unknown-algorithm", "two-keys-none-named"],
)
def test_a_malformed_key_file_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.key"
    path.write_text(content)
    with pytest.raises(TsigKeyFileError, match=str(path)):
        load_tsig_key(path)
    # The same sentence when the configuration names the file.
    with pytest.raises(ValidationError, match=str(path)):
        DnsConfig(servers=("127.0.0.1:53",), zone=ZONE, tsig_key_file=path)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TsigKeyFileError, match=str(tmp_path / "absent.key")):
        load_tsig_key(tmp_path / "absent.key")


def test_servers_are_addresses_not_names() -> None:
    with pytest.raises(ValidationError, match="ns1.example.test:53"):
        DnsConfig(servers=("ns1.example.test:53",), zone=ZONE, tsig_key_name="k", tsig_secret="c2VjcmV0")


# --- the compare-and-swap -----------------------------------------------------------------------


def test_swap_creates_changes_and_the_reverse_swap_undoes(bind: Bind, record_name: str) -> None:
    client = bind.client()
    assert client.read(record_name, "A") is None
    first = a_record(record_name, "192.0.2.1")
    assert client.swap(None, first) is None  # the state before: no record
    assert client.read(record_name, "A") == first

    second = a_record(record_name, "192.0.2.3", "192.0.2.2", ttl=30)
    assert client.swap(first, second) == first
    assert client.read(record_name, "A") == second  # both values, sorted, and the new TTL

    assert client.swap(second, first) == second  # the undo: the same call the other way round
    assert client.read(record_name, "A") == first


def test_a_retried_swap_whose_change_is_already_made_sends_nothing(bind: Bind, record_name: str) -> None:
    client = bind.client()
    new = a_record(record_name, "192.0.2.5")
    assert client.swap(None, new) is None
    serial = client.serial()
    # A retry after a lost answer: sent again, its prerequisite ("no such record") would now fail.
    assert client.swap(None, new) is None
    assert client.serial() == serial  # no update reached the zone
    assert client.read(record_name, "A") == new


def test_a_record_changed_by_someone_else_meanwhile_is_contended_and_keeps_their_value(bind: Bind, record_name: str) -> None:
    client = bind.client()
    client.swap(None, a_record(record_name, "192.0.2.1"))
    seen = client.read(record_name, "A")
    nsupdate(bind, f"update delete {record_name} A\nupdate add {record_name} 60 A 192.0.2.77")

    with pytest.raises(ProviderError) as raised:
        client.swap(seen, a_record(record_name, "192.0.2.2"))
    assert raised.value.kind is ErrorKind.CONTENDED
    assert "NXRRSET" in raised.value.message and record_name in raised.value.message and bind.primary in raised.value.message
    assert client.read(record_name, "A") == a_record(record_name, "192.0.2.77")

    # Creating what someone else has created meanwhile is contended too.
    with pytest.raises(ProviderError) as raised:
        client.swap(None, a_record(record_name, "192.0.2.3"))
    assert raised.value.kind is ErrorKind.CONTENDED and "YXRRSET" in raised.value.message
    assert client.read(record_name, "A") == a_record(record_name, "192.0.2.77")


@pytest.mark.parametrize(
    ("key_name", "secret"),
    [("evac-key", "d3Jvbmcgc2VjcmV0IG9mIHRoaXJ0eS10d28gYnl0ZXMhIQ=="), ("nobody-key", None)],
    ids=["wrong-secret", "unknown-key"],
)
def test_an_update_with_a_wrong_key_is_refused_and_changes_nothing(
    bind: Bind, record_name: str, key_name: str, secret: str | None
) -> None:
    client = bind.client()
    before = a_record(record_name, "192.0.2.1")
    client.swap(None, before)
    serial = client.serial()
    wrong = DnsClient(
        DnsConfig(
            servers=(bind.primary,),
            zone=ZONE,
            tsig_key_name=key_name,
            tsig_secret=secret or bind.key.secret.get_secret_value(),
            timeout=3.0,
        )
    )
    with pytest.raises(ProviderError) as raised:
        wrong.swap(before, a_record(record_name, "192.0.2.9"))
    assert raised.value.kind is ErrorKind.REFUSED
    assert "TSIG" in raised.value.message and bind.primary in raised.value.message
    assert client.read(record_name, "A") == before
    assert client.serial() == serial


def test_a_name_outside_the_zone_is_refused(bind: Bind) -> None:
    with pytest.raises(ProviderError) as raised:
        bind.client().read("www.elsewhere.test.", "A")
    assert raised.value.kind is ErrorKind.REFUSED and ZONE in raised.value.message


# --- servers that do not answer -----------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that takes connections and queries and never answers them."""
    stop = threading.Event()

    def hold(handler: socketserver.BaseRequestHandler) -> None:
        stop.wait(30)

    with tcp_listener(hold) as port:
        yield f"127.0.0.1:{port}"
        stop.set()


def test_a_server_nobody_listens_on_is_transient(bind: Bind, record_name: str) -> None:
    client = bind.client(servers=(f"127.0.0.1:{free_port()}",))
    with pytest.raises(ProviderError) as raised:
        client.swap(None, a_record(record_name, "192.0.2.1"))
    assert raised.value.kind is ErrorKind.TRANSIENT and "127.0.0.1:" in raised.value.message


def test_a_server_that_never_answers_is_transient_within_the_timeout(bind: Bind, silent_server: str, record_name: str) -> None:
    client = bind.client(servers=(silent_server,), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        client.read(record_name, "A")
    assert time.monotonic() - started < 5
    assert raised.value.kind is ErrorKind.TRANSIENT
    assert silent_server in raised.value.message and "no answer within 1 s" in raised.value.message


# --- every server serving the change ------------------------------------------------------------


def test_wait_served_returns_once_the_secondary_answers_the_new_values(bind: Bind, record_name: str) -> None:
    client = bind.client(servers=(bind.primary, bind.secondary))
    new = a_record(record_name, "192.0.2.40", "192.0.2.41")
    client.swap(None, new)
    client.wait_served(new, timeout=20)
    # The secondary serves it now, at the primary's serial or newer (it got it by zone transfer).
    secondary = bind.client(servers=(bind.secondary,))
    assert secondary.read(record_name, "A") == new
    assert secondary.serial() >= client.serial()

    undo = client.swap(new, a_record(record_name, "192.0.2.42"))
    assert undo == new
    client.wait_served(a_record(record_name, "192.0.2.42"), timeout=20)
    assert secondary.read(record_name, "A") == a_record(record_name, "192.0.2.42")


def test_wait_served_times_out_naming_the_server_that_never_gets_the_change(bind: Bind, record_name: str) -> None:
    new = a_record(record_name, "192.0.2.50")
    bind.client().swap(None, new)
    bind.client().wait_served(new, timeout=20)  # primary and secondary agree

    client = bind.client(servers=(bind.primary, bind.secondary, bind.stale))
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        client.wait_served(new, timeout=1.0)
    assert time.monotonic() - started < 5
    assert raised.value.kind is ErrorKind.TRANSIENT
    message = raised.value.message
    assert f"{bind.stale} (answers no record)" in message
    assert bind.secondary not in message and f"{bind.primary} (" not in message


# --- the pure parts -----------------------------------------------------------------------------


def test_a_record_set_is_kept_in_one_spelling() -> None:
    spelled = RecordSet(name="WWW.Example.Test", rtype="cname", ttl=60, values=("Target.Example.Test.",))
    assert (spelled.name, spelled.rtype, spelled.values) == ("www.example.test.", "CNAME", ("Target.Example.Test.",))
    assert a_record("a.example.test", "192.0.2.2", "192.0.2.1", "192.0.2.2").values == ("192.0.2.1", "192.0.2.2")
    for bad in ({"values": ("not-an-address",)}, {"rtype": "NOPE"}, {"values": ()}, {"name": "a..b"}):
        with pytest.raises(ValidationError):
            RecordSet(**{"name": "a.example.test", "rtype": "A", "ttl": 60, "values": ("192.0.2.1",), **bad})


def test_zone_serials_compare_across_the_wrap() -> None:
    assert serial_at_least(5, 5) and serial_at_least(6, 5) and not serial_at_least(4, 5)
    assert serial_at_least(3, 2**32 - 2)  # 4294967294 → 3: newer, after the wrap
    assert not serial_at_least(2**32 - 2, 3)


def test_servers_are_split_into_address_and_port() -> None:
    assert split_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert split_server("[2001:db8::53]:53") == ("2001:db8::53", 53)
    assert split_server("2001:db8::53") == ("2001:db8::53", 53)
    assert split_server("192.0.2.53") == ("192.0.2.53", 53)
