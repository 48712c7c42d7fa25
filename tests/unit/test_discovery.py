"""Discovery's grouping (``providers.gcp.discovery.place``) and the drift comparison
(``evac.discovery``) on inventories made by hand: what is wired is placed, what is not is listed
with why, never guessed; a file is compared field by field."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from evac.discovery import checked, compare, topology_yaml
from evac.topology import Topology
from providers.gcp.discovery import BackendKey, FrontEnd, Group, Inventory, Record, place

EW1, UC1 = "europe-west1", "us-central1"


def demo_like(**changes: object) -> Inventory:
    """One global backend service with a group in each region, a labelled global rule per region,
    and the record holding europe-west1's address."""
    web = BackendKey("web-backend")
    found = Inventory(project="evac-demo", regions=[EW1, UC1])
    found.backends[web] = [Group(EW1, "web-ew1"), Group(UC1, "web-uc1")]
    found.groups = {Group(EW1, "web-ew1"), Group(UC1, "web-uc1")}
    found.front_ends = [
        FrontEnd("web-ew1-fr", "203.0.113.10", web, EW1, None),
        FrontEnd("web-uc1-fr", "198.51.100.10", web, UC1, None),
    ]
    found.records = [Record("shop-zone", "shop.example.com.", "web.shop.example.com.", "A", 300, ("203.0.113.10",))]
    for key, value in changes.items():
        setattr(found, key, value)
    return found


def test_a_global_backend_service_and_its_record_make_a_service():
    found = checked(place(demo_like()))
    assert found.unplaced == []
    topology = found.topology()
    assert topology is not None
    web = topology.services["web"]
    assert web.primary_region == EW1
    assert web.dns.record == "web.shop.example.com." and web.dns.managed_zone == "shop-zone"
    assert {r: (b.backend_service, b.instance_group, b.address) for r, b in web.regions.items()} == {
        EW1: ("web-backend", "web-ew1", "203.0.113.10"),
        UC1: ("web-backend", "web-uc1", "198.51.100.10"),
    }
    assert topology.dns_zones["shop-zone"].dns_name == "shop.example.com."
    # The YAML is a topology the model reads back the same, with what could not be placed as comments.
    text = topology_yaml(found, at=datetime(2026, 12, 7, tzinfo=UTC))
    assert text.startswith("# Discovered by 'evac discover' from project evac-demo")
    assert Topology.model_validate(yaml.safe_load(text)) == topology
    assert "backend_service_scope" not in text and "null" not in text


def test_the_record_says_which_region_serves_now():
    found = demo_like()
    found.records = [Record("shop-zone", "shop.example.com.", "web.shop.example.com.", "A", 60, ("198.51.100.10",))]
    web = checked(place(found)).services["web"]
    assert web.primary_region == UC1 and web.dns.ttl == 60


def test_a_global_rule_that_does_not_say_its_region_is_listed_not_guessed():
    found = demo_like()
    found.front_ends[1] = FrontEnd("web-uc1-fr", "198.51.100.10", BackendKey("web-backend"), None, None)
    result = checked(place(found))
    assert result.services == {}
    assert any("serves europe-west1 only" in line for line in result.unplaced), result.unplaced
    found.front_ends[0] = FrontEnd("web-ew1-fr", "203.0.113.10", BackendKey("web-backend"), None, None)
    result = checked(place(found))
    assert any("does not say its region (label evac-region)" in line for line in result.unplaced), result.unplaced


def test_what_nothing_leads_to_is_listed():
    found = demo_like()
    found.backends[BackendKey("orphan-backend")] = [Group(EW1, "orphan-ew1")]
    found.groups = found.groups | {Group(EW1, "orphan-ew1"), Group(UC1, "loose-uc1", "us-central1-a")}
    found.records.append(Record("shop-zone", "shop.example.com.", "mail.shop.example.com.", "A", 300, ("192.0.2.1",)))
    result = checked(place(found))
    assert set(result.services) == {"web"}
    assert "backend service orphan-backend: no DNS record holds an address it serves" in result.unplaced
    assert "instance group europe-west1/orphan-ew1: no placed backend service has it as a backend" in result.unplaced
    assert "instance group us-central1-a/loose-uc1: no placed backend service has it as a backend" in result.unplaced
    # A record of something that no forwarding rule serves is someone else's: not listed.
    assert not any("mail.shop" in line for line in result.unplaced)


def test_a_backend_that_is_no_managed_instance_group_is_not_placed():
    found = demo_like()
    found.groups = {Group(EW1, "web-ew1")}
    result = checked(place(found))
    assert result.services == {}
    assert (
        "backend service web-backend: its backend instance group us-central1/web-uc1 is not a managed instance group"
        in result.unplaced
    )


def test_regional_backend_services_join_by_the_service_label():
    pay_ew1, pay_uc1 = BackendKey("pay-ew1", EW1), BackendKey("pay-uc1", UC1)
    found = Inventory(project="evac-demo", regions=[EW1, UC1])
    found.backends = {pay_ew1: [Group(EW1, "pay-ew1-b", "europe-west1-b")], pay_uc1: [Group(UC1, "pay-uc1-a", "us-central1-a")]}
    found.groups = {Group(EW1, "pay-ew1-b", "europe-west1-b"), Group(UC1, "pay-uc1-a", "us-central1-a")}
    found.front_ends = [
        FrontEnd("pay-ew1-fr", "203.0.113.50", pay_ew1, EW1, "payments"),
        FrontEnd("pay-uc1-fr", "198.51.100.50", pay_uc1, UC1, "payments"),
    ]
    found.records = [Record("pay-zone", "pay.example.com.", "api.pay.example.com.", "A", 300, ("203.0.113.50",))]
    payments = checked(place(found)).services["payments"]
    uc1 = payments.regions[UC1]
    assert (uc1.backend_service, uc1.backend_service_scope, uc1.instance_group, uc1.instance_group_zone) == (
        "pay-uc1", "regional", "pay-uc1-a", "us-central1-a"
    )  # fmt: skip
    # Without the label, nothing in the cloud says the two regions are one service's.
    found.front_ends = [FrontEnd(f.rule, f.address, f.backend, f.region, None) for f in found.front_ends]
    result = checked(place(found))
    assert result.services == {}
    assert any("api.pay.example.com." in line and "serves europe-west1 only" in line for line in result.unplaced)


def test_a_record_holding_two_regions_addresses_is_not_placed():
    found = demo_like()
    found.records = [
        Record("shop-zone", "shop.example.com.", "web.shop.example.com.", "A", 300, ("203.0.113.10", "198.51.100.10"))
    ]
    result = checked(place(found))
    assert result.services == {}
    assert any("holds 203.0.113.10, 198.51.100.10" in line for line in result.unplaced)


def test_a_service_the_model_refuses_is_listed_with_its_reason():
    found = demo_like()
    found.records = [Record("shop-zone", "shop.example.com.", "web.shop.example.com.", "AAAA", 300, ("203.0.113.10",))]
    result = checked(place(found))
    assert result.services == {}
    assert any(line.startswith("service web (record web.shop.example.com.)") and "IPv6" in line for line in result.unplaced)


def file_topology(**region_changes: str) -> Topology:
    body = checked(place(demo_like())).topology()
    assert body is not None
    data = body.model_dump(mode="json", exclude_none=True)
    data["services"]["web"]["regions"][EW1].update(region_changes)
    return Topology.model_validate(data)


def test_no_drift_between_a_file_and_the_cloud_it_came_from():
    result = compare(file_topology().services, checked(place(demo_like())))
    assert (result.drift, result.notes) == ([], [])


def test_a_renamed_backend_service_is_drift_that_names_both_names():
    found = demo_like()
    renamed = BackendKey("web-lb")
    found.backends = {renamed: found.backends[BackendKey("web-backend")]}
    found.front_ends = [FrontEnd(f.rule, f.address, renamed, f.region, None) for f in found.front_ends]
    result = compare(file_topology().services, checked(place(found)))
    assert [str(d) for d in result.drift] == [
        "web: regions.europe-west1.backend_service: the file says web-backend; the cloud has web-lb",
        "web: regions.us-central1.backend_service: the file says web-backend; the cloud has web-lb",
    ]


def test_drift_in_an_address_and_the_services_the_file_lacks():
    found = demo_like()
    found.records.append(Record("shop-zone", "shop.example.com.", "api.shop.example.com.", "A", 300, ("192.0.2.7",)))
    api = BackendKey("api-backend")
    found.backends[api] = [Group(EW1, "api-ew1"), Group(UC1, "api-uc1")]
    found.groups = found.groups | {Group(EW1, "api-ew1"), Group(UC1, "api-uc1")}
    found.front_ends += [FrontEnd("api-ew1", "192.0.2.7", api, EW1, None), FrontEnd("api-uc1", "192.0.2.8", api, UC1, None)]
    result = compare(file_topology(address="203.0.113.99").services, checked(place(found)))
    assert [str(d) for d in result.drift] == [
        "web: regions.europe-west1.address: the file says 203.0.113.99; the cloud has 203.0.113.10",
    ]
    # The cloud's services the file lacks are noted, not drift: another file may hold them.
    assert result.notes == ["api: in the cloud (record api.shop.example.com.), not in the file"]
    # Asked about its own services only (as a readiness check is), they are not even noted.
    assert compare(file_topology().services, checked(place(found)), whole=False).notes == []


def test_a_service_gone_from_the_cloud_says_why_and_serving_elsewhere_is_a_note_not_drift():
    found = demo_like()
    found.front_ends = [found.front_ends[1]]
    result = compare(file_topology().services, checked(place(found)))
    [gone] = result.drift
    assert gone.service == "web" and gone.text.startswith("not found in the cloud: no DNS record web.shop.example.com. leads")
    found = demo_like()
    found.records = [Record("shop-zone", "shop.example.com.", "web.shop.example.com.", "A", 300, ("198.51.100.10",))]
    result = compare(file_topology().services, checked(place(found)))
    assert result.drift == [] and result.notes == ["web: serves from us-central1 now (its primary_region: europe-west1)"]
