"""A bad topology is refused with every error located: file, path inside the document, line, message."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from evac.documents import DocumentError, format_path
from evac.topology import Topology, load_topology
from tests.conftest import DEMO
from tests.unit.docs import edit, errors_of, line_of, write

TOPOLOGY = """\
# A topology for the tests.
project: evac-test
dns_zones:
  shop-zone:
    dns_name: shop.example.com.
services:
  checkout:
    primary_region: europe-west1
    dns:
      managed_zone: shop-zone
      record: checkout.shop.example.com.
      ttl: 300
    regions:
      europe-west1:
        backend_service: checkout-backend
        instance_group: checkout-ew1
        address: 203.0.113.10
      us-central1:
        backend_service: checkout-backend
        instance_group: checkout-uc1
        address: 198.51.100.10
  catalog:
    primary_region: europe-west1
    dns:
      managed_zone: shop-zone
      record: catalog.shop.example.com.
      type: AAAA
    regions:
      europe-west1:
        backend_service: catalog-backend
        instance_group: catalog-ew1
        address: 2001:db8::20
      us-east1:
        backend_service: catalog-backend
        instance_group: catalog-ue1
        address: 2001:db8:1::20
emulator:
  default_group_size: 2
  group_sizes:
    us-central1/checkout-uc1: 1
"""


def in_service(text: str, service: str, old: str, new: str) -> str:
    """Replace the one ``old`` inside the block of ``service`` (services share many lines)."""
    start = text.index(f"\n  {service}:\n") + 1
    body = text.index("\n", start) + 1
    following = re.search(r"^ {0,2}\S", text[body:], re.MULTILINE)  # the next service or top-level key
    end = body + following.start() if following else len(text)
    return text[:start] + edit(text[start:end], old, new) + text[end:]


def topology_file(tmp_path: Path, text: str) -> Path:
    return write(tmp_path, text, "topology.yaml")


def errors(tmp_path: Path, text: str) -> tuple[str, list[DocumentError]]:
    path = topology_file(tmp_path, text)
    return str(path), errors_of(load_topology, path)


# --- valid documents ------------------------------------------------------------------------


def test_demo_topology_is_valid(demo_topology: Topology) -> None:
    assert demo_topology.project == "evac-demo"
    assert set(demo_topology.services) == {"checkout", "catalog"}
    checkout = demo_topology.services["checkout"]
    assert checkout.primary_region == "europe-west1"
    assert set(checkout.regions) == {"europe-west1", "us-central1"}
    assert demo_topology.emulator.group_sizes == {"us-central1/checkout-uc1": 1, "us-central1/catalog-uc1": 1}
    assert load_topology(DEMO / "topology.yaml") == demo_topology


def test_test_topology_is_valid_with_defaults_and_ipv6(tmp_path: Path) -> None:
    topology = load_topology(topology_file(tmp_path, TOPOLOGY))
    assert topology.services["checkout"].dns.type == "A"
    assert topology.services["catalog"].dns.ttl == 300
    assert topology.services["catalog"].regions["us-east1"].address == "2001:db8:1::20"
    assert topology.services["checkout"].regions["us-central1"].group_url("evac-test", "us-central1") == (
        "https://www.googleapis.com/compute/v1/projects/evac-test/regions/us-central1/instanceGroups/checkout-uc1"
    )


def test_record_at_the_zone_apex_is_inside_the_zone(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "record: checkout.shop.example.com.", "record: shop.example.com.")
    assert load_topology(topology_file(tmp_path, text)).services["checkout"].dns.record == "shop.example.com."


# --- field errors ----------------------------------------------------------------------------


def test_bad_region_name_as_a_region_key(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "      us-central1:\n", "      us_central1:\n")
    f, errs = errors(tmp_path, text)
    # The key itself is what is wrong: its path and its line.
    assert errs == [
        DocumentError(
            f,
            "services.checkout.regions.us_central1",
            "'us_central1' is not a region name (like europe-west1, or a data centre like dc-ams)",
            line_of(text, "us_central1:"),
        )
    ]


def test_a_path_through_a_dictionary_key_ends_at_the_key() -> None:
    assert format_path(("services", "checkout", "regions", "us_central1", "[key]")) == ("services.checkout.regions.us_central1")


def test_bad_primary_region_name(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "checkout", "primary_region: europe-west1", "primary_region: Europe")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.primary_region",
            "'Europe' is not a region name (like europe-west1, or a data centre like dc-ams)",
            line_of(text, "primary_region: Europe"),
        )
    ]


def test_bad_project_id(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "project: evac-test", "project: Evac_Test")
    f, errs = errors(tmp_path, text)
    assert errs == [DocumentError(f, "project", "'Evac_Test' is not a valid Google Cloud project id", line_of(text, "project:"))]


def test_bad_resource_name(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "instance_group: checkout-uc1", "instance_group: Checkout_UC1")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.regions.us-central1.instance_group",
            "'Checkout_UC1' is not a valid resource name (lowercase letters, digits and '-', 1-63 characters)",
            line_of(text, "Checkout_UC1"),
        )
    ]


def test_address_that_is_not_an_ip(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "address: 203.0.113.10", "address: checkout.example.com")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.regions.europe-west1.address",
            "'checkout.example.com' is not an IPv4 or IPv6 address",
            line_of(text, "address: checkout.example.com"),
        )
    ]


def test_ipv6_address_in_an_a_record_service(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "address: 198.51.100.10", "address: 2001:db8::10")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.regions.us-central1.address",
            "'2001:db8::10' is not an IPv4 address, as a DNS record of type A needs",
            line_of(text, "address: 2001:db8::10"),
        )
    ]


def test_ipv4_address_in_an_aaaa_record_service(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "address: 2001:db8:1::20", "address: 198.51.100.20")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.catalog.regions.us-east1.address",
            "'198.51.100.20' is not an IPv6 address, as a DNS record of type AAAA needs",
            line_of(text, "address: 198.51.100.20"),
        )
    ]


def test_record_type_other_than_a_or_aaaa(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "type: AAAA", "type: CNAME")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(f, "services.catalog.dns.type", "'CNAME' is not one of 'A' or 'AAAA'", line_of(text, "type: CNAME"))
    ]


def test_ttl_out_of_range(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "ttl: 300", "ttl: 0")
    f, errs = errors(tmp_path, text)
    assert errs == [DocumentError(f, "services.checkout.dns.ttl", "must be at least 1 (it is 0)", line_of(text, "ttl: 0"))]


def test_record_that_is_not_fully_qualified(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "record: checkout.shop.example.com.", "record: checkout.shop.example.com")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.dns.record",
            "'checkout.shop.example.com' must be fully qualified (end with '.')",
            line_of(text, "record: checkout"),
        )
    ]


def test_zone_dns_name_that_is_not_fully_qualified(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "dns_name: shop.example.com.", "dns_name: shop.example.com")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "dns_zones.shop-zone.dns_name",
            "'shop.example.com' must be fully qualified (end with '.')",
            line_of(text, "dns_name:"),
        )
    ]


def test_service_with_one_region(tmp_path: Path) -> None:
    text = edit(
        TOPOLOGY,
        "      us-east1:\n        backend_service: catalog-backend\n"
        "        instance_group: catalog-ue1\n        address: 2001:db8:1::20\n",
        "",
    )
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.catalog.regions",
            "must have at least 2 entries (it has 1)",
            line_of(text, "address: 2001:db8::20") - 4,  # the regions: key of catalog
        )
    ]


def test_unknown_key_in_a_region_binding(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "address: 198.51.100.10\n", "address: 198.51.100.10\n        zone: us-central1-a\n")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(f, "services.checkout.regions.us-central1.zone", "unknown key", line_of(text, "zone: us-central1-a"))
    ]


def test_missing_dns_of_a_service(tmp_path: Path) -> None:
    text = edit(
        TOPOLOGY,
        "    dns:\n      managed_zone: shop-zone\n      record: catalog.shop.example.com.\n      type: AAAA\n",
        "",
    )
    f, errs = errors(tmp_path, text)
    assert errs == [DocumentError(f, "services.catalog.dns", "required key is missing", line_of(text, "  catalog:"))]


# --- cross-references --------------------------------------------------------------------------


def test_primary_region_not_among_regions(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "catalog", "primary_region: europe-west1", "primary_region: us-central1")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.catalog.primary_region",
            "'us-central1' is not one of the service's regions (it has: europe-west1, us-east1)",
            line_of(text, "primary_region: us-central1"),
        )
    ]


def test_managed_zone_not_in_dns_zones(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "checkout", "managed_zone: shop-zone", "managed_zone: other-zone")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.dns.managed_zone",
            "zone 'other-zone' is not in dns_zones",
            line_of(text, "other-zone"),
        )
    ]


def test_record_not_inside_its_zone(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "record: checkout.shop.example.com.", "record: checkout.example.org.")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.dns.record",
            "'checkout.example.org.' is not inside zone 'shop.example.com.'",
            line_of(text, "checkout.example.org."),
        )
    ]


def test_record_that_only_ends_like_the_zone_is_not_inside_it(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "record: checkout.shop.example.com.", "record: checkoutshop.example.com.")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.dns.record",
            "'checkoutshop.example.com.' is not inside zone 'shop.example.com.'",
            line_of(text, "checkoutshop"),
        )
    ]


def test_group_sizes_key_naming_no_group(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "us-central1/checkout-uc1: 1", "us-central1/checkout-ew1: 1")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "emulator.group_sizes.us-central1/checkout-ew1",
            "names no '<region>/<instance_group>' of any service",
            line_of(text, "us-central1/checkout-ew1"),
        )
    ]


def test_several_reference_errors_are_all_reported_each_located(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "catalog", "managed_zone: shop-zone", "managed_zone: store-zone")
    text = edit(text, "record: checkout.shop.example.com.", "record: checkout.example.org.")
    text = edit(text, "us-central1/checkout-uc1: 1\n", "us-central1/checkout-uc1: 1\n    europe-west1/nothing: 4\n")
    f, errs = errors(tmp_path, text)
    assert sorted(errs, key=lambda e: e.line or 0) == [
        DocumentError(
            f,
            "services.checkout.dns.record",
            "'checkout.example.org.' is not inside zone 'shop.example.com.'",
            line_of(text, "checkout.example.org."),
        ),
        DocumentError(
            f, "services.catalog.dns.managed_zone", "zone 'store-zone' is not in dns_zones", line_of(text, "store-zone")
        ),
        DocumentError(
            f,
            "emulator.group_sizes.europe-west1/nothing",
            "names no '<region>/<instance_group>' of any service",
            line_of(text, "europe-west1/nothing"),
        ),
    ]


def test_several_field_errors_are_all_reported_each_located(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "project: evac-test", "project: X")
    text = edit(text, "ttl: 300", "ttl: 100000")
    text = edit(text, "type: AAAA", "type: MX")
    text = edit(text, "  default_group_size: 2\n", "  default_group_size: 2\n  seed: 7\n")
    f, errs = errors(tmp_path, text)
    assert sorted(errs, key=lambda e: e.line or 0) == [
        DocumentError(f, "project", "'X' is not a valid Google Cloud project id", line_of(text, "project:")),
        DocumentError(f, "services.checkout.dns.ttl", "must be at most 86400 (it is 100000)", line_of(text, "ttl:")),
        DocumentError(f, "services.catalog.dns.type", "'MX' is not one of 'A' or 'AAAA'", line_of(text, "type: MX")),
        DocumentError(f, "emulator.seed", "unknown key", line_of(text, "seed: 7")),
    ]


# --- files that are not topologies at all ----------------------------------------------------


def test_topology_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    assert errors_of(load_topology, path) == [DocumentError(str(path), "(document)", "file not found", None)]


def test_topology_that_is_a_list(tmp_path: Path) -> None:
    f, errs = errors(tmp_path, "- project: evac-test\n")
    assert errs == [DocumentError(f, "(document)", "expected a mapping of keys to values at the top level", 1)]


def test_topology_with_invalid_yaml(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "    dns_name: shop.example.com.", "    dns_name: 'shop.example.com.")
    f, errs = errors(tmp_path, text)
    # The quote runs to the end of the file: where it began is what the user needs.
    assert errs == [
        DocumentError(
            f,
            "(document)",
            "not valid YAML: found unexpected end of stream "
            f"(while scanning a quoted scalar that began on line {line_of(text, 'dns_name:')})",
            len(text.splitlines()) + 1,
        )
    ]


def test_empty_topology(tmp_path: Path) -> None:
    f, errs = errors(tmp_path, "# nothing yet\n")
    assert errs == [DocumentError(f, "(document)", "the file is empty")]


def test_repeated_key_deep_inside_a_service(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "address: 198.51.100.10\n", "address: 198.51.100.10\n        address: 198.51.100.11\n")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.regions.us-central1.address",
            f"duplicate key (first given on line {line_of(text, '198.51.100.10')})",
            line_of(text, "198.51.100.11"),
        )
    ]


def test_repeated_service_is_refused(tmp_path: Path) -> None:
    catalog = TOPOLOGY[TOPOLOGY.index("  catalog:\n") : TOPOLOGY.index("emulator:")]
    text = edit(TOPOLOGY, "emulator:\n", catalog + "emulator:\n")
    f, errs = errors(tmp_path, text)
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line == "  catalog:"]
    assert errs == [DocumentError(f, "services.catalog", f"duplicate key (first given on line {lines[0]})", lines[1])]


def test_a_group_sizes_key_that_is_not_text(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "us-central1/checkout-uc1: 1\n", "us-central1/checkout-uc1: 1\n    12: 1\n")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f, "emulator.group_sizes.12", "invalid key: a key must be text (write it quoted: '12')", line_of(text, "12: 1")
        )
    ]


@pytest.mark.parametrize("missing", ["project", "services"])
def test_missing_top_level_key(tmp_path: Path, missing: str) -> None:
    text = "\n".join(f"{k}: {{}}" for k in ("project", "services") if k != missing) + "\n"
    text = text.replace("project: {}", "project: evac-test")
    f, errs = errors(tmp_path, text)
    # The other keys are empty, which is an error of their own: all are reported, in line order.
    assert errs[0] == DocumentError(f, missing, "required key is missing", 1)
    assert [e.path for e in errs] == [missing] + [k for k in ("services",) if k != missing]


def test_a_cloud_dns_record_needs_its_zone_among_dns_zones(tmp_path: Path) -> None:
    """dns_zones may be left out (a topology whose records are all on premises); a Cloud DNS
    record then names a zone that is not there."""
    text = (DEMO / "topology.yaml").read_text()
    start = text.index("dns_zones:")
    end = text.index("services:")
    f, errs = errors(tmp_path, text[:start] + text[end:])
    assert [(e.path, e.message) for e in errs][0] == (
        "services.checkout.dns.managed_zone",
        "zone 'shop-zone' is not in dns_zones",
    )


# --- YAML booleans are never numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("ttl: 300", "ttl: yes", "services.checkout.dns.ttl"),
        ("default_group_size: 2", "default_group_size: off", "emulator.default_group_size"),
        ("us-central1/checkout-uc1: 1", "us-central1/checkout-uc1: true", "emulator.group_sizes.us-central1/checkout-uc1"),
    ],
)
def test_a_yaml_boolean_is_never_taken_for_a_number(tmp_path: Path, old: str, new: str, path: str) -> None:
    text = edit(TOPOLOGY, old, new)
    f, errs = errors(tmp_path, text)
    message = "expected an integer, not a boolean (YAML reads true/false/yes/no/on/off as booleans)"
    assert errs == [DocumentError(f, path, message, line_of(text, new))]


# --- rules of a service --------------------------------------------------------------------------


def test_negative_group_size_is_refused(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "us-central1/checkout-uc1: 1", "us-central1/checkout-uc1: -1")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "emulator.group_sizes.us-central1/checkout-uc1",
            "must be at least 0 (it is -1)",
            line_of(text, "checkout-uc1: -1"),
        )
    ]


def test_group_size_zero_is_accepted(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "us-central1/checkout-uc1: 1", "us-central1/checkout-uc1: 0")
    assert load_topology(topology_file(tmp_path, text)).emulator.group_sizes == {"us-central1/checkout-uc1": 0}


@pytest.mark.parametrize(
    ("old", "new", "service", "region", "first"),
    [
        ("address: 198.51.100.10", "address: 203.0.113.10", "checkout", "us-central1", "europe-west1"),
        # The same IPv6 address, written another way.
        ("address: 2001:db8:1::20", "address: 2001:db8:0:0::20", "catalog", "us-east1", "europe-west1"),
    ],
)
def test_two_regions_of_a_service_with_the_same_address(
    tmp_path: Path, old: str, new: str, service: str, region: str, first: str
) -> None:
    text = edit(TOPOLOGY, old, new)
    f, errs = errors(tmp_path, text)
    address = new.split(": ")[1]
    assert errs == [
        DocumentError(
            f,
            f"services.{service}.regions.{region}.address",
            f"'{address}' is also the address of {first}: shifting DNS between them would change nothing",
            max(i for i, line in enumerate(text.splitlines(), 1) if new in line),  # the second one
        )
    ]


def test_two_services_may_share_an_address(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "catalog", "type: AAAA", "type: A")
    text = edit(text, "address: 2001:db8::20", "address: 203.0.113.10")
    text = edit(text, "address: 2001:db8:1::20", "address: 198.51.100.10")
    assert load_topology(topology_file(tmp_path, text)).services["catalog"].regions["us-east1"].address == ("198.51.100.10")


@pytest.mark.parametrize(
    ("record", "zone"),
    [("Checkout.Shop.Example.COM.", "shop.example.com."), ("checkout.shop.example.com.", "SHOP.example.com.")],
)
def test_record_inside_its_zone_ignores_case(tmp_path: Path, record: str, zone: str) -> None:
    text = edit(TOPOLOGY, "record: checkout.shop.example.com.", f"record: {record}")
    text = edit(text, "dns_name: shop.example.com.", f"dns_name: {zone}")
    assert load_topology(topology_file(tmp_path, text)).services["checkout"].dns.record == record


def test_every_rule_of_a_service_is_reported_at_once(tmp_path: Path) -> None:
    text = in_service(TOPOLOGY, "checkout", "primary_region: europe-west1", "primary_region: us-east1")
    text = edit(text, "address: 198.51.100.10", "address: 2001:db8::10")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.primary_region",
            "'us-east1' is not one of the service's regions (it has: europe-west1, us-central1)",
            line_of(text, "primary_region: us-east1"),
        ),
        DocumentError(
            f,
            "services.checkout.regions.us-central1.address",
            "'2001:db8::10' is not an IPv4 address, as a DNS record of type A needs",
            line_of(text, "2001:db8::10"),
        ),
    ]


def test_rules_of_a_service_are_checked_even_when_other_fields_are_wrong(tmp_path: Path) -> None:
    text = edit(TOPOLOGY, "project: evac-test", "project: X")
    text = in_service(text, "catalog", "primary_region: europe-west1", "primary_region: us-central1")
    f, errs = errors(tmp_path, text)
    assert [(e.path, e.line) for e in errs] == [
        ("project", line_of(text, "project: X")),
        ("services.catalog.primary_region", line_of(text, "primary_region: us-central1")),
    ]


# --- the emulator's regional quotas ---------------------------------------------------------------

QUOTAS = "  region_quotas:\n    us-central1:\n      INSTANCES: 4\n"


def test_region_quotas_are_read(tmp_path: Path) -> None:
    text = TOPOLOGY + "  region_quotas:\n    us-central1: {INSTANCES: 4, CPUS: 8}\n    us-east1: {CPUS: 0}\n"
    topology = load_topology(topology_file(tmp_path, text))
    assert topology.emulator.region_quotas == {"us-central1": {"INSTANCES": 4, "CPUS": 8}, "us-east1": {"CPUS": 0}}


def test_no_region_quotas_leave_the_topology_as_it_was(tmp_path: Path) -> None:
    topology = load_topology(topology_file(tmp_path, TOPOLOGY))
    assert topology.emulator.region_quotas == {}
    assert "region_quotas" not in topology.model_dump()["emulator"], "a digest of an older topology does not change"


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("INSTANCES: 4", "GPUS: 4", "us-central1.GPUS", "'GPUS' is not one of 'INSTANCES' or 'CPUS' (did you mean 'CPUS'?)"),
        ("INSTANCES: 4", "INSTANCES: -1", "us-central1.INSTANCES", "must be at least 0 (it is -1)"),
        ("INSTANCES: 4", "INSTANCES: 4.5", "us-central1.INSTANCES", "expected a whole number, not 4.5"),
        (
            "INSTANCES: 4",
            "INSTANCES: yes",
            "us-central1.INSTANCES",
            "expected an integer, not a boolean (YAML reads true/false/yes/no/on/off as booleans)",
        ),
        (
            "us-central1:",
            "us_central1:",
            "us_central1",
            "'us_central1' is not a region name (like europe-west1, or a data centre like dc-ams)",
        ),
        (
            "us-central1:",
            "asia-south1:",
            "asia-south1",
            "'asia-south1' is not a region of any service (they are: europe-west1, us-central1, us-east1)",
        ),
    ],
)
def test_a_bad_region_quota_is_refused_naming_the_field(tmp_path: Path, old: str, new: str, path: str, message: str) -> None:
    text = TOPOLOGY + edit(QUOTAS, old, new)
    f, errs = errors(tmp_path, text)
    assert errs == [DocumentError(f, f"emulator.region_quotas.{path}", message, line_of(text, new))]


@pytest.mark.parametrize("name", ["europe-west1\n", "checkout\n"])
def test_a_name_with_a_trailing_newline_is_refused(name: str) -> None:
    """Issue 20, item 8: every name pattern ended in '$', which also matches before a final
    newline: 'europe-west1\\n' passed as a region (and started a look-alike guardian)."""
    from evac.document_types import Region
    from evac.topology import ResourceName

    kind = Region if name.startswith("europe") else ResourceName
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(kind).validate_python(name)
