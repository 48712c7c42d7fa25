"""Instance templates and machine types through the real google-cloud-compute clients: each
group's template names its machine type (the topology's ``emulator.machine_types``, default
``e2-standard-2``), a machine type answers its vCPUs, and the region's CPUS quota counts each
instance's vCPUs — so a readiness check can compute the CPUs a scale-up needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.testing import ComputeClients, RunningEmulator, running_emulator
from evac.topology import Topology

COMPUTE = "https://www.googleapis.com/compute/v1/projects/evac-demo"
REGION = "us-central1"


@pytest.fixture(scope="module")
def sized(demo_topology: Topology) -> Iterator[tuple[RunningEmulator, ComputeClients]]:
    """The demo with checkout's us-central1 group on e2-standard-4 and 16 CPUs in us-central1."""
    document = demo_topology.model_dump()
    document["emulator"]["machine_types"] = {f"{REGION}/checkout-uc1": "e2-standard-4"}
    document["emulator"]["region_quotas"] = {REGION: {"CPUS": 16}}
    with running_emulator(Topology.model_validate(document), operation_delay=0.05, warmup=0.0, wait_deadline=0.5) as running:
        yield running, ComputeClients.connect(running.url, running.project)


def _quotas(compute: ComputeClients) -> dict[str, tuple[float, float]]:
    region = compute.regions.get(project=compute.project, region=REGION)
    return {q.metric: (q.limit, q.usage) for q in region.quotas}


def test_a_group_s_template_names_its_machine_type_and_the_type_its_vcpus(sized: tuple[RunningEmulator, ComputeClients]) -> None:
    running, compute = sized
    running.reset()
    group = compute.region_groups.get(project=compute.project, region=REGION, instance_group_manager="checkout-uc1")
    name = group.instance_template.rsplit("/", 1)[-1]

    template = compute.instance_templates.get(project=compute.project, instance_template=name)
    machine_type = template.properties.machine_type
    machine = compute.machine_types.get(project=compute.project, zone=f"{REGION}-b", machine_type=machine_type)

    assert template.self_link == group.instance_template == f"{COMPUTE}/global/instanceTemplates/checkout-uc1-template"
    assert template.properties.machine_type == "e2-standard-4"
    assert (machine.guest_cpus, machine.memory_mb) == (4, 16384)
    assert machine.zone == f"{REGION}-b"
    others = {t.name: t.properties.machine_type for t in compute.instance_templates.list(project=compute.project)}
    assert others == {
        "checkout-ew1-template": "e2-standard-2",
        "checkout-uc1-template": "e2-standard-4",
        "catalog-ew1-template": "e2-standard-2",
        "catalog-uc1-template": "e2-standard-2",
    }
    instances = compute.instances.list(project=compute.project, zone=f"{REGION}-b")
    assert {i.name[: -len("-xxxx")]: i.machine_type.rsplit("/", 1)[-1] for i in instances} == {
        "checkout-uc1": "e2-standard-4",
        "catalog-uc1": "e2-standard-2",
    }


def test_cpus_usage_counts_each_instance_s_vcpus_and_binds_a_scale_up(sized: tuple[RunningEmulator, ComputeClients]) -> None:
    running, compute = sized
    running.reset()
    # checkout-uc1: 1 × 4 vCPUs; catalog-uc1: 1 × 2 vCPUs.
    assert _quotas(compute)["CPUS"] == (16.0, 6.0)
    assert _quotas(compute)["INSTANCES"] == (1000000.0, 2.0)

    request = compute_v1.ResizeRegionInstanceGroupManagerRequest(
        project=compute.project, region=REGION, instance_group_manager="checkout-uc1", size=4, request_id=str(uuid.uuid4())
    )
    compute.wait(compute.region_groups.resize(request).name, region=REGION)

    # Room for 10 vCPUs: two more e2-standard-4 instances, the third waits for room.
    assert _quotas(compute)["CPUS"] == (16.0, 14.0)
    managed = compute.region_groups.list_managed_instances(
        project=compute.project, region=REGION, instance_group_manager="checkout-uc1"
    ).managed_instances
    waiting = [m for m in managed if m.last_attempt.errors.errors]
    assert len(managed) == 4 and len(waiting) == 1
    assert waiting[0].last_attempt.errors.errors[0].message == "Quota 'CPUS' exceeded.  Limit: 16.0 in region us-central1."


def test_default_machine_types_and_the_catalogue(emulator: RunningEmulator, compute: ComputeClients) -> None:
    names = [m.name for m in compute.machine_types.list(project=compute.project, zone="europe-west1-b")]
    template = compute.instance_templates.get(project=compute.project, instance_template="checkout-ew1-template")

    assert "e2-standard-2" in names and "e2-standard-4" in names
    assert template.properties.machine_type == "e2-standard-2"
    standard_2 = compute.machine_types.get(project=compute.project, zone="europe-west1-b", machine_type="e2-standard-2")
    assert (standard_2.guest_cpus, standard_2.memory_mb) == (2, 8192)
    with pytest.raises(exceptions.NotFound):
        compute.machine_types.get(project=compute.project, zone="europe-west1-b", machine_type="bogus", retry=None)
    with pytest.raises(exceptions.NotFound):
        compute.instance_templates.get(project=compute.project, instance_template="nope-template", retry=None)
    with pytest.raises(exceptions.NotFound):
        compute.machine_types.get(project=compute.project, zone="asia-east1-b", machine_type="e2-standard-2", retry=None)


def test_a_machine_type_for_no_group_or_not_a_machine_type_is_refused(demo_topology: Topology) -> None:
    document = demo_topology.model_dump()
    document["emulator"]["machine_types"] = {"us-central1/checkout-uc9": "e2-standard-4"}
    assert Topology.model_validate(document).reference_problems() == [
        (
            ("emulator", "machine_types", "us-central1/checkout-uc9"),
            "names no '<region>/<instance_group>' of any service (did you mean 'us-central1/checkout-uc1'?)",
        )
    ]
    document["emulator"]["machine_types"] = {"us-central1/checkout-uc1": "standard-4"}
    with pytest.raises(ValueError, match="machine_types"):
        Topology.model_validate(document)
    assert "machine_types" not in demo_topology.model_dump()["emulator"], "a digest of an older topology does not change"
