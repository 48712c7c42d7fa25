"""A topology's databases (Cloud SQL instances by region, a Spanner database) are validated with
every error located, and turned into the references the data steps act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from evac.bindings import NoDatabase, database_ref, database_regions, leader_ref
from evac.documents import DocumentError
from evac.topology import Topology, load_topology
from providers.gcp.refs import CloudSqlInstanceRef, SpannerDatabaseRef
from tests.conftest import ROOT
from tests.unit.docs import edit, errors_of, line_of, write

DATA = ROOT / "tests" / "data_topology.yaml"
TEXT = DATA.read_text(encoding="utf-8")


def errors(tmp_path: Path, text: str) -> tuple[str, list[DocumentError]]:
    path = write(tmp_path, text, "topology.yaml")
    return str(path), errors_of(load_topology, path)


@pytest.fixture(scope="module")
def data() -> Topology:
    return load_topology(DATA)


def test_the_data_topology_is_valid_and_makes_references(data: Topology) -> None:
    checkout, catalog = data.services["checkout"], data.services["catalog"]

    assert database_ref("evac-data", checkout, "us-central1") == CloudSqlInstanceRef(
        project="evac-data", instance="checkout-db-uc1", region="us-central1"
    )
    assert database_regions(checkout) == ["europe-west1", "us-central1", "asia-east1"]
    assert database_regions(catalog) == []
    spanner = SpannerDatabaseRef(project="evac-data", instance="catalog-spanner", database="catalog")
    assert leader_ref("evac-data", catalog) == spanner


def test_a_service_without_the_database_asked_for_raises_no_database(data: Topology) -> None:
    with pytest.raises(NoDatabase, match="no Cloud SQL database"):
        database_ref("evac-data", data.services["catalog"], "europe-west1")
    with pytest.raises(NoDatabase, match="no Spanner database"):
        leader_ref("evac-data", data.services["checkout"])
    checkout = data.services["checkout"]
    assert checkout.cloud_sql is not None
    two = checkout.cloud_sql.model_copy(update={"instances": {"europe-west1": "a", "us-central1": "b"}})
    two_regions = checkout.model_copy(update={"cloud_sql": two})
    with pytest.raises(NoDatabase, match="no instance in asia-east1"):
        database_ref("evac-data", two_regions, "asia-east1")


def test_the_primary_defaults_to_the_services_primary_region(tmp_path: Path) -> None:
    text = edit(TEXT, "      primary: europe-west1\n", "")
    topology = load_topology(write(tmp_path, text, "topology.yaml"))
    assert database_regions(topology.services["checkout"])[0] == "europe-west1"


def test_topologies_without_databases_serialize_as_before(demo_topology: Topology) -> None:
    dumped = demo_topology.services["checkout"].model_dump()
    assert "cloud_sql" not in dumped and "spanner" not in dumped
    assert "replication_lag" not in demo_topology.emulator.model_dump()


def test_a_bad_cloud_sql_instance_name(tmp_path: Path) -> None:
    text = edit(TEXT, "us-central1: checkout-db-uc1", "us-central1: Checkout_DB")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.cloud_sql.instances.us-central1",
            "'Checkout_DB' is not a Cloud SQL instance name (a lowercase letter, then lowercase letters, digits and '-', "
            "at most 98 characters)",
            line_of(text, "Checkout_DB"),
        )
    ]


def test_a_cloud_sql_instance_name_of_99_characters_is_refused(tmp_path: Path) -> None:
    long = "c" + "x" * 98
    f, errs = errors(tmp_path, edit(TEXT, "checkout-db-ae1", long))
    assert [e.path for e in errs] == ["services.checkout.cloud_sql.instances.asia-east1"]
    assert load_topology(write(tmp_path, edit(TEXT, "checkout-db-ae1", long[:98]), "ok.yaml"))


def test_an_instance_outside_the_services_regions(tmp_path: Path) -> None:
    text = edit(TEXT, "asia-east1: checkout-db-ae1", "europe-west4: checkout-db-ew4")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.cloud_sql.instances.europe-west4",
            "'europe-west4' is not one of the service's Google Cloud regions (it has: europe-west1, us-central1, asia-east1)",
            line_of(text, "europe-west4"),
        )
    ]


def test_a_primary_without_an_instance(tmp_path: Path) -> None:
    text = edit(TEXT, "      primary: europe-west1\n", "      primary: asia-east2\n")
    text = edit(text, "asia-east1: checkout-db-ae1", "asia-east2: checkout-db-ae2")
    f, errs = errors(tmp_path, text)
    assert {e.path for e in errs} == {"services.checkout.cloud_sql.instances.asia-east2"}
    text = edit(TEXT, "      primary: europe-west1\n", "      primary: asia-east1\n")
    text = edit(text, "        asia-east1: checkout-db-ae1\n", "")
    f, errs = errors(tmp_path, text)
    assert errs == [
        DocumentError(
            f,
            "services.checkout.cloud_sql.primary",
            "the primary region 'asia-east1' has no instance (instances: europe-west1, us-central1)",
            line_of(text, "primary: asia-east1"),
        )
    ]


def test_a_database_needs_two_instances(tmp_path: Path) -> None:
    text = edit(TEXT, "        us-central1: checkout-db-uc1\n        asia-east1: checkout-db-ae1\n", "")
    f, errs = errors(tmp_path, text)
    assert [e.path for e in errs] == ["services.checkout.cloud_sql.instances"]


def test_instance_names_are_unique_across_the_topology(tmp_path: Path) -> None:
    text = edit(
        TEXT,
        "    spanner:\n",
        "    cloud_sql:\n      instances:\n        europe-west1: catalog-db-ew1\n"
        "        us-central1: checkout-db-uc1\n    spanner:\n",
    )
    f, errs = errors(tmp_path, text)
    assert [(e.path, e.message) for e in errs] == [
        (
            "services.catalog.cloud_sql.instances.us-central1",
            "Cloud SQL instance 'checkout-db-uc1' is also checkout's (names are unique in a project)",
        )
    ]


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("instance: catalog-spanner", "instance: c", "services.catalog.spanner.instance", "'c' is not a Spanner instance id"),
        ("instance: catalog-spanner", "instance: catalog-", "services.catalog.spanner.instance", "is not a Spanner instance id"),
        ("database: catalog", "database: Catalog", "services.catalog.spanner.database", "'Catalog' is not a Spanner database id"),
        ("database: catalog", "database: " + "c" * 31, "services.catalog.spanner.database", "is not a Spanner database id"),
        ("leader: europe-west1", "leader: asia-east1", "services.catalog.spanner.leader", "'asia-east1' is not one of the"),
    ],
)
def test_bad_spanner_bindings(tmp_path: Path, old: str, new: str, path: str, message: str) -> None:
    f, errs = errors(tmp_path, edit(TEXT, old, new))
    assert [e.path for e in errs] == [path]
    assert message in errs[0].message


def test_a_replication_lag_seed_must_name_an_instance(tmp_path: Path) -> None:
    text = edit(TEXT, "  default_group_size: 1\n", "  default_group_size: 1\n  replication_lag:\n    checkout-db-uc2: 5\n")
    f, errs = errors(tmp_path, text)
    assert [e.path for e in errs] == ["emulator.replication_lag.checkout-db-uc2"]
    assert "did you mean 'checkout-db-uc1'" in errs[0].message
