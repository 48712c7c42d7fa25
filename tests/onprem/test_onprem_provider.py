"""The on-premises provider behind Evac's activities, against real daemons: the same activities
a run calls (TrafficActivities, HealthActivities, DnsActivities), dispatched on the references'
provider tag, changing a real HAProxy's servers and a record on a real BIND primary that a real
secondary transfers. Before-states restore exactly; a change is done when every server serves it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import dns.message
import dns.query
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.dns import DnsActivities
from activities.health import HealthActivities
from activities.traffic import TrafficActivities
from evac.failures import FailureType
from evac.resources import (
    BackendCapacity,
    CheckBackendHealth,
    DnsRecord,
    MemberShare,
    ReadBackendCapacity,
    ReadDnsRecord,
    SetBackendCapacity,
    SetDnsRecord,
    StepContext,
)
from evac.stack import free_port
from providers.gcp.clients import GcpClients
from providers.onprem.dns import split_server
from providers.onprem.refs import HaproxyBackendRef, Rfc2136RecordRef
from providers.registry import Providers
from tests.onprem.conftest import ZONE, Bind, HAProxy

CTX = StepContext(service="shop", step="test")


def providers(key_dir: Path | None = None) -> Providers:
    return Providers.of(GcpClients.create("http://127.0.0.1:9"), key_dir)


def backend(haproxy: HAProxy, servers: tuple[str, ...] = ()) -> HaproxyBackendRef:
    return HaproxyBackendRef(site="dc-ams", api=haproxy.address, backend="web", servers=servers)


def test_a_drain_and_its_undo_restore_every_server_exactly(haproxy: HAProxy) -> None:
    haproxy.runtime().set_state("web", "s3", "maint")  # an operator's, before the run
    haproxy.runtime().set_weight("web", "s2", 2)
    traffic = TrafficActivities(providers())
    env = ActivityEnvironment()
    ref = backend(haproxy)
    before = env.run(traffic.read_backend_capacity, ReadBackendCapacity(context=CTX, backend=ref))
    assert before.members == (
        MemberShare(name="s1", weight=1, state="ready"),
        MemberShare(name="s2", weight=2, state="ready"),
        MemberShare(name="s3", weight=1, state="maint"),
    )
    assert before.capacity_scaler == 1.0  # s1 and s2 at (more than) their configured weight: capped at 1

    drain = SetBackendCapacity(context=CTX, backend=ref, desired=BackendCapacity(capacity_scaler=0), request_key="k1")
    change = env.run(traffic.set_backend_capacity, drain)
    assert change.changed and change.before == before and change.after.capacity_scaler == 0
    states = {s.server: (s.admin, s.weight) for s in haproxy.runtime().servers("web")}
    assert states == {"s1": ("drain", 1), "s2": ("drain", 2), "s3": ("maint", 1)}  # read with HAProxy's own socket

    again = env.run(traffic.set_backend_capacity, drain.model_copy(update={"prior": before}))
    assert not again.changed  # idempotent: nothing sent

    undo = SetBackendCapacity(context=CTX, backend=ref, desired=before, prior=change.after, request_key="k2")
    restored = env.run(traffic.set_backend_capacity, undo)
    assert restored.changed and restored.after == before
    states = {s.server: (s.admin, s.weight) for s in haproxy.runtime().servers("web")}
    assert states == {"s1": ("ready", 1), "s2": ("ready", 2), "s3": ("maint", 1)}


def test_health_counts_servers_up_and_not_in_maintenance(haproxy: HAProxy) -> None:
    health = HealthActivities(providers())
    env = ActivityEnvironment()
    report = env.run(health.check_backend_health, CheckBackendHealth(context=CTX, backend=backend(haproxy)))
    assert (report.healthy, report.total) == (2, 3)  # s3 has nothing behind it: DOWN
    only_up = env.run(health.check_backend_health, CheckBackendHealth(context=CTX, backend=backend(haproxy, ("s1", "s2"))))
    assert (only_up.healthy, only_up.total) == (2, 2)


def test_an_unknown_backend_or_server_is_refused_and_haproxy_not_answering_is_transient(haproxy: HAProxy) -> None:
    traffic = TrafficActivities(providers())
    env = ActivityEnvironment()
    for ref in (backend(haproxy).model_copy(update={"backend": "nope"}), backend(haproxy, ("s1", "s9"))):
        with pytest.raises(ApplicationError) as refused:
            env.run(traffic.read_backend_capacity, ReadBackendCapacity(context=CTX, backend=ref))
        assert refused.value.type == FailureType.CLOUD_REFUSED.value, refused.value
    dead = backend(haproxy).model_copy(update={"api": f"127.0.0.1:{free_port()}"})
    budget = CTX.model_copy(update={"budget_seconds": 1.0})
    with pytest.raises(ApplicationError) as transient:
        env.run(traffic.read_backend_capacity, ReadBackendCapacity(context=budget, backend=dead))
    assert transient.value.type == FailureType.CLOUD_TRANSIENT.value, transient.value


@pytest.fixture
def key_dir(bind: Bind, tmp_path: Path) -> Path:
    shutil.copy(bind.key_file, tmp_path / f"{bind.key.name}.key")
    return tmp_path


def record(bind: Bind, name: str) -> Rfc2136RecordRef:
    return Rfc2136RecordRef(name=name, type="A", zone=ZONE, servers=(bind.primary, bind.secondary), tsig_key=bind.key.name)


def served(server: str, name: str) -> list[str]:
    """What ``server`` answers for ``name`` (as dig would ask it: UDP, no recursion)."""
    host, port = split_server(server)
    answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=port, timeout=3)
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


def test_a_record_changes_by_compare_and_swap_and_is_served_by_every_server(bind: Bind, key_dir: Path, record_name: str) -> None:
    activities = DnsActivities(providers(key_dir))
    env = ActivityEnvironment()
    ref = record(bind, record_name)
    first = SetDnsRecord(context=CTX, record=ref, desired=DnsRecord(ttl=60, rrdatas=["10.1.0.10"]))
    created = env.run(activities.set_dns_record, first)
    assert created.changed and not created.before.exists  # type: ignore[union-attr]

    shift = SetDnsRecord(context=CTX, record=ref, desired=DnsRecord(ttl=60, rrdatas=["10.2.0.10"]), prior=created.after)
    change = env.run(activities.set_dns_record, shift)
    assert change.changed and change.before == DnsRecord(ttl=60, rrdatas=["10.1.0.10"])
    assert served(bind.primary, record_name) == served(bind.secondary, record_name) == ["10.2.0.10"]
    assert env.run(activities.read_dns_record, ReadDnsRecord(context=CTX, record=ref)) == shift.desired
    assert not env.run(activities.set_dns_record, shift).changed  # a retry finds it done

    undo = SetDnsRecord(context=CTX, record=ref, desired=change.before, prior=change.after)  # type: ignore[arg-type]
    assert env.run(activities.set_dns_record, undo).changed
    assert served(bind.secondary, record_name) == ["10.1.0.10"]


def test_without_the_key_or_with_a_wrong_one_nothing_changes(bind: Bind, tmp_path: Path, record_name: str) -> None:
    env = ActivityEnvironment()
    ref = record(bind, record_name)
    change = SetDnsRecord(context=CTX, record=ref, desired=DnsRecord(ttl=60, rrdatas=["10.9.9.9"]))
    with pytest.raises(ApplicationError) as no_dir:
        env.run(DnsActivities(providers(None)).set_dns_record, change)
    assert no_dir.value.type == FailureType.CLOUD_REFUSED.value and "EVAC_TSIG_KEY_DIR" in no_dir.value.message
    wrong = tmp_path / f"{bind.key.name}.key"
    wrong.write_text(f'key "{bind.key.name}" {{ algorithm hmac-sha256; secret "{"A" * 43}="; }};\n')
    with pytest.raises(ApplicationError) as refused:
        env.run(DnsActivities(providers(tmp_path)).set_dns_record, change)
    assert refused.value.type == FailureType.CLOUD_REFUSED.value, refused.value
    assert served(bind.primary, record_name) == []


def test_a_retried_drain_that_an_earlier_attempt_half_made_reports_the_recorded_before_state(haproxy: HAProxy) -> None:
    """HAProxy's servers are set one by one: an attempt that drained ams1 and died leaves a mixed
    state. The retry finishes the drain and reports the state the workflow recorded before the
    step, so the undo restores every server, not the half-drained mix."""
    traffic = TrafficActivities(providers())
    ref = backend(haproxy)
    recorded = ActivityEnvironment().run(traffic.read_backend_capacity, ReadBackendCapacity(context=CTX, backend=ref))
    haproxy.runtime().set_state("web", "s1", "drain")  # the first attempt's one command before it died
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)
    drain = SetBackendCapacity(
        context=CTX, backend=ref, desired=BackendCapacity(capacity_scaler=0), prior=recorded, request_key="k1"
    )
    change = retry.run(traffic.set_backend_capacity, drain)
    assert change.changed and change.before == recorded and change.attempt == 2
    assert {s.server: s.admin for s in haproxy.runtime().servers("web")} == {"s1": "drain", "s2": "drain", "s3": "drain"}
