"""Generated topologies: valid, deterministic, seeding an emulator the real clients can use,
written as YAML that ``load_topology`` reads back; and the command-line arguments that
serve or write one."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from emulator.generate import DEFAULT_REGIONS, generate_topology, generated_topology, topology_yaml
from emulator.seed import seed_world
from emulator.testing import ComputeClients, running_emulator
from evac.cli.dev import emulator_generate, emulator_serve
from evac.stack import ROOT, free_port
from evac.topology import Topology, load_topology


@pytest.fixture(scope="module")
def thousand() -> Topology:
    return generated_topology(1000)


def test_a_generated_topology_of_1000_services_is_valid_and_complete(thousand: Topology) -> None:
    assert len(thousand.services) == 1000
    assert thousand.project == "evac-gen"
    assert list(thousand.dns_zones) == ["gen-zone"]
    addresses = []
    for name, service in thousand.services.items():
        assert list(service.regions) == list(DEFAULT_REGIONS), name
        assert service.dns.managed_zone == "gen-zone" and service.dns.record == f"{name}.gen.example.com."
        assert {b.backend_service for b in service.regions.values()} == {name}
        addresses += [ipaddress.ip_address(b.address) for b in service.regions.values()]
    assert len(set(addresses)) == 3000, "every service has its own address in every region"
    assert thousand.reference_problems() == []
    primaries = [s.primary_region for s in thousand.services.values()]
    assert {r: primaries.count(r) for r in DEFAULT_REGIONS} == {"europe-west1": 334, "us-central1": 333, "asia-east1": 333}
    assert list(thousand.services) == sorted(thousand.services)


def test_the_same_size_gives_the_same_topology() -> None:
    assert generate_topology(250) == generate_topology(250)
    assert generate_topology(250) != generate_topology(251)


def test_generation_takes_the_regions_and_project_asked_for() -> None:
    topology = generated_topology(10, ["us-east1", "europe-west4"], project="my-own-project")

    assert topology.project == "my-own-project"
    assert {tuple(s.regions) for s in topology.services.values()} == {("us-east1", "europe-west4")}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"services": 0}, "the number of services must be a whole number from 1 to 60000, not 0"),
        ({"services": 5, "regions": ["europe-west1"]}, "needs 2 to 200 regions"),
        ({"services": 5, "regions": ["europe-west1", "Mars"]}, "'Mars' is not a Google Cloud region name"),
        ({"services": 5, "regions": ["europe-west1", "europe-west1"]}, "region europe-west1 is named more than once"),
        ({"services": 5, "project": "X"}, "project: 'X' is not a valid Google Cloud project id"),
    ],
)
def test_a_bad_generation_argument_is_named(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as error:
        generated_topology(**arguments)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_the_generated_world_seeds_and_serves(thousand: Topology) -> None:
    world = seed_world(thousand, time.time())
    assert (len(world.groups), len(world.backend_services)) == (3000, 1000)
    assert len(world.zones["gen-zone"].rrsets) == 1000 + 2  # a record per service, SOA and NS
    assert world.groups["europe-west1/svc-0000-europe-west1"].target_size == 2  # primary
    assert world.groups["us-central1/svc-0000-us-central1"].target_size == 1  # standby

    with running_emulator(thousand, operation_delay=0.05, warmup=0.1) as emulator:
        compute = ComputeClients.connect(emulator.url, emulator.project)
        backend = compute.backend_services.get(project="evac-gen", backend_service="svc-0999")
        assert [b.group.rsplit("/", 1)[-1] for b in backend.backends] == [
            "svc-0999-europe-west1",
            "svc-0999-us-central1",
            "svc-0999-asia-east1",
        ]
        operation = compute.region_groups.resize(
            project="evac-gen", region="asia-east1", instance_group_manager="svc-0999-asia-east1", size=4
        )
        compute.wait(operation.name, region="asia-east1")
        group = compute.region_groups.get(project="evac-gen", region="asia-east1", instance_group_manager="svc-0999-asia-east1")
        assert group.target_size == 4
        # Its front ends and templates: the address each region's binding names, served by a rule.
        rule = compute.global_forwarding_rules.get(project="evac-gen", forwarding_rule="svc-0999-asia-east1-fr")
        assert rule.I_p_address == thousand.services["svc-0999"].regions["asia-east1"].address
        address = compute.global_addresses.get(project="evac-gen", address="svc-0999-asia-east1-ip")
        assert address.address == rule.I_p_address and list(address.users) == [rule.self_link]
        template = compute.instance_templates.get(project="evac-gen", instance_template="svc-0999-asia-east1-template")
        assert template.properties.machine_type == "e2-standard-2"
    assert (len(world.forwarding_rules), len(world.addresses)) == (3000, 3000)


def test_the_yaml_reads_back_as_the_same_topology(thousand: Topology, tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(topology_yaml(generate_topology(1000)))

    assert load_topology(path) == thousand


# --- Command line ------------------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("serve")(emulator_serve)
    app.command("generate")(emulator_generate)
    return app


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["serve"], "name the world to serve: --topology FILE, or --generate N"),
        (["serve", "--topology", "plans/demo/topology.yaml", "--generate", "5"], "--topology and --generate both name"),
        (["serve", "--topology", "plans/demo/topology.yaml", "--generated-topology-out", "x.yaml"], "it needs --generate N"),
        (["serve", "--generate", "0"], "--generate: the number of services must be a whole number from 1 to 60000, not 0"),
        (["generate", "0"], "the number of services must be a whole number from 1 to 60000, not 0"),
        (["generate", "5", "--regions", "europe-west1"], "needs 2 to 200 regions"),
        (["generate", "5", "-o", "/no/such/folder/t.yaml"], "--output-file /no/such/folder/t.yaml: cannot write"),
    ],
)
def test_command_line_errors_exit_2_with_one_sentence(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(_cli(), arguments)

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_the_generate_command_writes_a_usable_topology(tmp_path: Path) -> None:
    path = tmp_path / "gen.yaml"
    written = CliRunner().invoke(_cli(), ["generate", "20", "-o", str(path), "--project", "evac-bench"])
    printed = CliRunner().invoke(_cli(), ["generate", "20", "--project", "evac-bench"])

    assert written.exit_code == 0 and printed.exit_code == 0, written.output + printed.output
    assert printed.stdout == path.read_text()
    topology = load_topology(path)
    assert (len(topology.services), topology.project) == (20, "evac-bench")


def test_python_m_emulator_generate_prints_a_topology(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator.generate", "7"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    path = tmp_path / "t.yaml"
    path.write_text(result.stdout)

    assert len(load_topology(path).services) == 7


def test_python_m_emulator_refuses_both_a_topology_and_a_generated_world() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--topology", "plans/demo/topology.yaml", "--generate", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "argument --generate: not allowed with argument --topology" in result.stderr


def test_python_m_emulator_serves_a_generated_world_with_quota_and_latency(tmp_path: Path) -> None:
    out = tmp_path / "generated.yaml"
    port = free_port()
    args = [sys.executable, "-m", "emulator", "--generate", "50", "--generated-topology-out", str(out), "--port", str(port)]
    args += ["--write-quota-per-second", "5", "--write-quota-per-minute", "100", "--call-latency", "0.01"]
    log = tmp_path / "emulator.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(args, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/emulator/v1/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the emulator did not answer within 30 s"
            time.sleep(0.1)

        quota = httpx.get(f"{url}/emulator/v1/quota").json()
        latency = httpx.get(f"{url}/emulator/v1/latency").json()
        state = httpx.get(f"{url}/emulator/v1/state").json()
    finally:
        server.terminate()
        server.wait(10)

    assert (quota["writesPerSecond"], quota["writesPerMinute"]) == (5, 100)
    assert latency == {"readSeconds": 0.01, "writeSeconds": 0.01}
    assert len(load_topology(out).services) == 50
    assert state["project"] == "evac-gen"
