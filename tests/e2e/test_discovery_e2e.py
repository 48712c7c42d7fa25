"""`evac discover` and `evac topology diff` as an operator runs them (issue 24), on the shared
stack (the demo and regional services): the discovered topology is the world's but for its
emulator seed, `evac plan check` accepts it and the demo plan fails over with it; discovered
again, the standby is primary; a renamed backend service is drift, named in the diff and in
the readiness check; bad arguments change nothing and say what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from evac.discovery import plain
from evac.topology import Topology, load_topology
from tests.conftest import DEMO
from tests.e2e.conftest import E2E, record


def discover(e2e: E2E, out: Path) -> Topology:
    result = e2e.evac("discover", "--project", "evac-demo", "-o", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "wrote " in result.stderr and "not placed" not in result.stderr, result.stderr
    return load_topology(out)


def test_a_discovered_topology_is_the_worlds_and_fails_over(e2e: E2E, tmp_path: Path) -> None:
    folder = tmp_path / "discovered"
    folder.mkdir()
    shutil.copy(DEMO / "failover.yaml", folder / "failover.yaml")
    found = discover(e2e, folder / "topology.yaml")
    world = load_topology(e2e.stack.config.topology)
    assert plain(found) == plain(world)
    assert (folder / "topology.yaml").read_text().startswith("# Discovered by 'evac discover' from project evac-demo")

    checked = e2e.evac("plan", "check", str(folder / "failover.yaml"))
    assert checked.returncode == 0, checked.stderr + checked.stdout
    ran = e2e.evac("failover", "--plan", str(folder / "failover.yaml"), "--wait", "--reason", "discovered topology")
    assert ran.returncode == 0, ran.stderr + ran.stdout[-3000:]
    state = e2e.admin.get("/emulator/v1/state").raise_for_status().json()
    assert record(state, "checkout.shop.example.com.") == ["198.51.100.10"]

    # After the failover the record points at us-central1: discovery says it serves from there,
    # and the diff notes it without calling it drift; the TTL the plan's DNS shift set is drift.
    again = discover(e2e, tmp_path / "after.yaml")
    assert again.services["checkout"].primary_region == "us-central1"
    diff = e2e.evac("topology", "diff", str(folder / "topology.yaml"))
    assert diff.returncode == 1, diff.stderr + diff.stdout
    lines = [" ".join(line.split()) for line in diff.stdout.splitlines()[1:]]
    assert lines == [
        "catalog: dns.ttl: the file says 300; the cloud has 60",
        "checkout: dns.ttl: the file says 300; the cloud has 60",
        "note: catalog: serves from us-central1 now (its primary_region: europe-west1)",
        "note: checkout: serves from us-central1 now (its primary_region: europe-west1)",
    ]


def test_a_renamed_backend_service_is_drift_in_the_diff_and_the_readiness_check(e2e: E2E, tmp_path: Path) -> None:
    topology = DEMO / "topology.yaml"
    same = e2e.evac("topology", "diff", str(topology), "--output", "json")
    assert same.returncode == 0, same.stderr + same.stdout
    assert json.loads(same.stdout)["drift"] == []
    e2e.admin.post("/emulator/v1/backendServices/checkout-backend/rename", json={"to": "checkout-lb"}).raise_for_status()

    diff = e2e.evac("topology", "diff", str(topology))
    assert diff.returncode == 1, diff.stderr + diff.stdout
    lines = [" ".join(line.split()) for line in diff.stdout.splitlines()]
    assert "checkout: regions.europe-west1.backend_service: the file says checkout-backend; the cloud has checkout-lb" in lines
    assert "checkout: regions.us-central1.backend_service: the file says checkout-backend; the cloud has checkout-lb" in lines

    check = e2e.evac("readiness", "check", str(DEMO / "failover.yaml"), "--output", "json")
    assert check.returncode == 1, check.stderr + check.stdout
    [plan] = json.loads(check.stdout)["plans"]
    checkout = next(s for s in plan["services"] if s["service"] == "checkout")
    drift = [(f["severity"], f["resource"], f["text"]) for f in checkout["findings"] if f["text"].startswith("drift:")]
    assert drift == [
        (
            "warning",
            f"topology regions.{region}.backend_service",
            "drift: the file says checkout-backend; the cloud has checkout-lb",
        )
        for region in ("europe-west1", "us-central1")
    ]


def test_bad_arguments_are_refused_by_name(e2e: E2E, tmp_path: Path) -> None:
    bad = e2e.evac("discover", "--project", "Not_A_Project")
    assert bad.returncode == 2 and "--project: 'Not_A_Project' is not a valid Google Cloud project id" in bad.stderr
    bad = e2e.evac("discover", "--project", "evac-demo", "--regions", "europe_west1")
    assert bad.returncode == 2 and "--regions: 'europe_west1' is not a Google Cloud region name" in bad.stderr
    bad = e2e.evac("discover", "--project", "evac-demo", "--regions", "asia-east1", "--output", "json")
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["error"] == "project evac-demo has no region asia-east1 (it has: europe-west1, us-central1)"
    broken = tmp_path / "topology.yaml"
    broken.write_text(yaml.safe_dump({"project": "evac-demo", "services": {}}))
    bad = e2e.evac("topology", "diff", str(broken))
    assert bad.returncode == 2 and "services" in bad.stderr
