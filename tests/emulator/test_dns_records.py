"""Record-set methods (resourceRecordSets create/get/patch/delete) and routing policies,
through google-api-python-client — the client an activity uses for what google-cloud-dns
cannot express (routingPolicy)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from emulator.testing import RunningEmulator

ZONE = "shop-zone"
FAILOVER = {
    "name": "failover.shop.example.com.",
    "type": "A",
    "ttl": 30,
    "routingPolicy": {
        "primaryBackup": {
            "primaryTargets": {"externalEndpoints": ["203.0.113.10"]},
            "backupGeoTargets": {"items": [{"location": "us-central1", "rrdatas": ["198.51.100.10"]}]},
            "trickleTraffic": 0.0,
        }
    },
}


@pytest.fixture
def rrsets(emulator: RunningEmulator) -> Any:
    service = discovery.build(
        "dns",
        "v1",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
        static_discovery=True,
    )
    yield service.resourceRecordSets()
    service.close()


def _resolve(emulator: RunningEmulator, name: str, **params: str) -> dict[str, Any]:
    """What the name servers answer once every change to the zone is done."""
    changes = f"/dns/v1/projects/{emulator.project}/managedZones/{ZONE}/changes"
    deadline = time.monotonic() + 5
    while any(c["status"] != "done" for c in emulator.admin.get(changes).json()["changes"]):
        assert time.monotonic() < deadline, "the zone's changes did not complete"
        time.sleep(0.05)
    return emulator.admin.get("/emulator/v1/resolve", params={"name": name, **params}).raise_for_status().json()


def test_record_set_lifecycle(emulator: RunningEmulator, rrsets: Any) -> None:
    record = {"name": "api.shop.example.com.", "type": "A", "ttl": 60, "rrdatas": ["203.0.113.99"]}

    created = rrsets.create(project=emulator.project, managedZone=ZONE, body=record).execute()
    patched = rrsets.patch(project=emulator.project, managedZone=ZONE, name=record["name"], type="A", body={"ttl": 30}).execute()
    fetched = rrsets.get(project=emulator.project, managedZone=ZONE, name=record["name"], type="A").execute()
    rrsets.delete(project=emulator.project, managedZone=ZONE, name=record["name"], type="A").execute()

    assert created["rrdatas"] == ["203.0.113.99"]
    assert (patched["ttl"], fetched["ttl"], fetched["rrdatas"]) == (30, 30, ["203.0.113.99"])
    with pytest.raises(HttpError) as missing:
        rrsets.get(project=emulator.project, managedZone=ZONE, name=record["name"], type="A").execute()
    assert missing.value.status_code == 404
    changes = emulator.admin.get(f"/dns/v1/projects/{emulator.project}/managedZones/{ZONE}/changes").json()["changes"]
    assert len(changes) == 4, "the seeding change, then one change per write"


def test_creating_an_existing_record_set_is_a_conflict(emulator: RunningEmulator, rrsets: Any) -> None:
    existing = {"name": "checkout.shop.example.com.", "type": "A", "ttl": 300, "rrdatas": ["198.51.100.10"]}

    with pytest.raises(HttpError) as refused:
        rrsets.create(project=emulator.project, managedZone=ZONE, body=existing).execute()

    assert refused.value.status_code == 409


def test_routing_policy_is_stored_and_returned_as_the_api_defines_it(emulator: RunningEmulator, rrsets: Any) -> None:
    rrsets.create(project=emulator.project, managedZone=ZONE, body=FAILOVER).execute()

    fetched = rrsets.get(project=emulator.project, managedZone=ZONE, name=FAILOVER["name"], type="A").execute()

    policy = fetched["routingPolicy"]["primaryBackup"]
    assert policy["primaryTargets"]["externalEndpoints"] == ["203.0.113.10"]
    assert policy["backupGeoTargets"]["items"][0]["rrdatas"] == ["198.51.100.10"]
    assert "rrdatas" not in fetched, "a routing-policy record holds no rrdatas"


def test_failover_policy_answers_the_backup_while_the_primary_region_is_down(emulator: RunningEmulator, rrsets: Any) -> None:
    rrsets.create(project=emulator.project, managedZone=ZONE, body=FAILOVER).execute()
    assert _resolve(emulator, FAILOVER["name"])["rrdatas"] == ["203.0.113.10"]

    emulator.outage("europe-west1")

    answer = _resolve(emulator, FAILOVER["name"])
    assert (answer["serving"], answer["rrdatas"]) == ("backup", ["198.51.100.10"])


def test_weighted_and_geo_policies_answer_by_weight_and_location(emulator: RunningEmulator, rrsets: Any) -> None:
    wrr = {
        "name": "wrr.shop.example.com.",
        "type": "A",
        "ttl": 30,
        "routingPolicy": {
            "wrr": {"items": [{"weight": 3, "rrdatas": ["203.0.113.10"]}, {"weight": 1, "rrdatas": ["198.51.100.10"]}]}
        },
    }
    geo = {
        "name": "geo.shop.example.com.",
        "type": "A",
        "ttl": 30,
        "routingPolicy": {
            "geo": {
                "items": [
                    {"location": "europe-west1", "rrdatas": ["203.0.113.10"]},
                    {"location": "us-central1", "rrdatas": ["198.51.100.10"]},
                ]
            }
        },
    }
    for body in (wrr, geo):
        rrsets.create(project=emulator.project, managedZone=ZONE, body=body).execute()

    weights = _resolve(emulator, "wrr.shop.example.com.")["weights"]
    near_us = _resolve(emulator, "geo.shop.example.com.", location="us-central1")

    assert [(w["rrdatas"], w["share"]) for w in weights] == [(["203.0.113.10"], 0.75), (["198.51.100.10"], 0.25)]
    assert near_us["rrdatas"] == ["198.51.100.10"]


@pytest.mark.parametrize(
    "routing_policy",
    [
        pytest.param({}, id="no-policy-kind"),
        pytest.param(
            {
                "wrr": {"items": [{"weight": 1, "rrdatas": ["1.2.3.4"]}]},
                "geo": {"items": [{"location": "x", "rrdatas": ["1.2.3.4"]}]},
            },
            id="two-policy-kinds",
        ),
        pytest.param({"wrr": {"items": [{"weight": -1, "rrdatas": ["1.2.3.4"]}]}}, id="negative-weight"),
        pytest.param({"wrr": {"items": [{"weight": 1, "rrdatas": ["not-an-ip"]}]}}, id="bad-address"),
    ],
)
def test_malformed_routing_policies_are_refused(emulator: RunningEmulator, rrsets: Any, routing_policy: dict[str, Any]) -> None:
    body = {"name": "bad.shop.example.com.", "type": "A", "ttl": 30, "routingPolicy": routing_policy}

    with pytest.raises(HttpError) as refused:
        rrsets.create(project=emulator.project, managedZone=ZONE, body=body).execute()

    assert refused.value.status_code == 400


def test_a_record_set_with_both_rrdatas_and_a_policy_is_refused(emulator: RunningEmulator, rrsets: Any) -> None:
    body = FAILOVER | {"rrdatas": ["203.0.113.10"]}

    with pytest.raises(HttpError) as refused:
        rrsets.create(project=emulator.project, managedZone=ZONE, body=body).execute()

    assert refused.value.status_code == 400


def test_deleting_a_policy_record_in_a_change_must_match_its_policy(emulator: RunningEmulator, rrsets: Any) -> None:
    rrsets.create(project=emulator.project, managedZone=ZONE, body=FAILOVER).execute()
    stale = FAILOVER | {"routingPolicy": {"wrr": {"items": [{"weight": 1, "rrdatas": ["203.0.113.10"]}]}}}
    path = f"/dns/v1/projects/{emulator.project}/managedZones/{ZONE}/changes"

    assert emulator.admin.post(path, json={"deletions": [stale]}).status_code == 412
    assert emulator.admin.post(path, json={"deletions": [FAILOVER]}).status_code == 200
