"""Cloud DNS through the real google-cloud-dns client: seeded zone and records, atomic
changes that go pending -> done, and the refusals that keep a change from clobbering."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import dns as cloud_dns
from google.cloud.dns import ResourceRecordSet
from google.cloud.dns.zone import ManagedZone

from emulator.testing import RunningEmulator

RECORD = "checkout.shop.example.com."
PRIMARY = "203.0.113.10"
STANDBY = "198.51.100.10"


@pytest.fixture
def zone(dns: cloud_dns.Client) -> ManagedZone:
    return dns.zone("shop-zone", "shop.example.com.")


def _records(zone: ManagedZone) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {(r.name, r.record_type): (r.ttl, r.rrdatas) for r in zone.list_resource_record_sets()}


def _record(zone: ManagedZone, ttl: int, *rrdatas: str) -> ResourceRecordSet:
    return zone.resource_record_set(RECORD, "A", ttl, list(rrdatas))


def test_zone_is_seeded_with_each_service_pointing_at_its_primary_region(dns: cloud_dns.Client, zone: ManagedZone) -> None:
    assert [z.name for z in dns.list_zones()] == ["shop-zone"]
    records = _records(zone)
    assert records[(RECORD, "A")] == (300, [PRIMARY])
    assert records[("catalog.shop.example.com.", "A")] == (300, ["203.0.113.20"])
    assert {("shop.example.com.", "SOA"), ("shop.example.com.", "NS")} <= records.keys()


def test_change_moves_the_record_and_is_pending_then_done(emulator: RunningEmulator, zone: ManagedZone) -> None:
    change = zone.changes()
    change.delete_record_set(_record(zone, 300, PRIMARY))
    change.add_record_set(_record(zone, 60, STANDBY))

    change.create()  # google-cloud-dns sends the ttl as a string: "300"

    assert change.status == "pending"
    assert _records(zone)[(RECORD, "A")] == (60, [STANDBY]), "the change is visible at once"
    time.sleep(emulator.settings.operation_delay)
    change.reload()
    assert change.status == "done"
    assert [(r.name, r.ttl, r.rrdatas) for r in change.additions] == [(RECORD, 60, [STANDBY])]


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param((60, [PRIMARY]), id="other-ttl"),
        pytest.param((300, [STANDBY]), id="other-rrdatas"),
        pytest.param((300, [PRIMARY, STANDBY]), id="extra-rrdata"),
    ],
)
def test_deletion_that_does_not_match_the_record_refuses_the_whole_change(
    zone: ManagedZone, stale: tuple[int, list[str]]
) -> None:
    before = _records(zone)
    change = zone.changes()
    change.delete_record_set(_record(zone, stale[0], *stale[1]))
    change.add_record_set(_record(zone, 60, STANDBY))

    with pytest.raises(exceptions.PreconditionFailed) as refused:
        change.create()

    assert refused.value.errors[0]["reason"] == "conditionNotMet"
    assert _records(zone) == before


def test_deletion_of_a_missing_record_is_not_found(zone: ManagedZone) -> None:
    change = zone.changes()
    change.delete_record_set(zone.resource_record_set("missing.shop.example.com.", "A", 300, [PRIMARY]))

    with pytest.raises(exceptions.NotFound):
        change.create()


def test_adding_a_record_that_exists_is_refused_and_nothing_changes(zone: ManagedZone) -> None:
    before = _records(zone)
    change = zone.changes()
    change.add_record_set(zone.resource_record_set("new.shop.example.com.", "A", 60, [STANDBY]))
    change.add_record_set(_record(zone, 60, STANDBY))

    with pytest.raises(exceptions.Conflict) as refused:
        change.create()

    assert refused.value.errors[0]["reason"] == "alreadyExists"
    assert _records(zone) == before, "the first addition of the refused change was not applied"


def test_record_outside_the_zone_is_refused(zone: ManagedZone) -> None:
    change = zone.changes()
    change.add_record_set(zone.resource_record_set("checkout.other.example.org.", "A", 60, [STANDBY]))

    with pytest.raises(exceptions.BadRequest):
        change.create()


def test_record_listing_pages_with_max_results_and_page_token(emulator: RunningEmulator, zone: ManagedZone) -> None:
    # The client's max_results caps the total, not the page size: page by hand.
    path = f"/dns/v1/projects/{emulator.project}/managedZones/shop-zone/rrsets"
    seen, token, pages = [], None, 0
    while True:
        params = {"maxResults": 1} | ({"pageToken": token} if token else {})
        body = emulator.admin.get(path, params=params).raise_for_status().json()
        pages += 1
        seen += [(r["name"], r["type"]) for r in body["rrsets"]]
        token = body.get("nextPageToken")
        if token is None:
            break

    assert pages == len(seen) == 4
    assert set(seen) == _records(zone).keys()


def test_ttl_may_be_sent_as_a_number(emulator: RunningEmulator) -> None:
    path = f"/dns/v1/projects/{emulator.project}/managedZones/shop-zone/changes"
    body = {
        "deletions": [{"name": RECORD, "type": "A", "ttl": 300, "rrdatas": [PRIMARY]}],
        "additions": [{"name": RECORD, "type": "A", "ttl": 60, "rrdatas": [STANDBY]}],
    }

    assert emulator.admin.post(path, json=body).status_code == 200
    rrsets = emulator.state()["managedZones"]["shop-zone"]["rrsets"]
    assert {"name": RECORD, "type": "A", "ttl": 60, "rrdatas": [STANDBY]} in rrsets


def test_record_sets_can_be_listed_by_name_and_type(emulator: RunningEmulator) -> None:
    path = f"/dns/v1/projects/{emulator.project}/managedZones/shop-zone/rrsets"

    found = emulator.admin.get(path, params={"name": RECORD, "type": "A"}).json()["rrsets"]

    assert [(r["name"], r["type"], r["rrdatas"]) for r in found] == [(RECORD, "A", [PRIMARY])]


def test_changes_are_listed_newest_first_on_request(emulator: RunningEmulator, zone: ManagedZone) -> None:
    change = zone.changes()
    change.delete_record_set(_record(zone, 300, PRIMARY))
    change.add_record_set(_record(zone, 60, STANDBY))
    change.create()
    path = f"/dns/v1/projects/{emulator.project}/managedZones/shop-zone/changes"

    newest = emulator.admin.get(path, params={"sortOrder": "descending", "maxResults": 1}).json()["changes"]

    assert [c["id"] for c in newest] == [change.name]
    assert [c.name for c in zone.list_changes()] == ["0", change.name]


def test_a_zone_is_also_addressed_by_its_numeric_id(emulator: RunningEmulator, dns: cloud_dns.Client) -> None:
    seeded = next(iter(dns.list_zones()))

    by_id = dns.zone(seeded.zone_id, "shop.example.com.")
    by_id.reload()

    assert (by_id.dns_name, by_id.zone_id) == ("shop.example.com.", seeded.zone_id)
    assert (RECORD, "A") in _records(by_id)
