"""The pure side of a region evacuation (evac/evacuation.py): which services, in which groups,
the target choice, the record's views, and that the biggest evacuation fits Temporal's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator.generate import generated_topology
from evac import bindings
from evac.evacuation import (
    MAX_SERVICES,
    UNTIERED,
    EvacService,
    EvacServiceRecord,
    EvacuationInput,
    EvacuationProgress,
    EvacuationRefused,
    RecordedChange,
    RegionReading,
    ServiceStatus,
    Sizing,
    TargetReadings,
    choose_target,
    plan_groups,
    service_plan,
    size_target,
)
from evac.plan import Guards, Retries
from evac.resources import BackendCapacity, DnsRecord, HealthReport
from evac.runs import Trigger
from evac.topology import Topology

SOURCE, TARGET, THIRD = "europe-west1", "us-central1", "asia-east1"
# Temporal's default limit for one payload (a workflow input, a memo, a query result).
PAYLOAD_LIMIT = 2 * 1024 * 1024


def tiered(services: int, tiers: dict[str, int]) -> Topology:
    topology = generated_topology(services)
    names, updated, i = list(topology.services), dict(topology.services), 0
    for tier, count in tiers.items():
        for name in names[i : i + count]:
            updated[name] = updated[name].model_copy(update={"tier": tier})
        i += count
    return topology.model_copy(update={"services": updated, "tiers": list(tiers)})


def test_groups_follow_the_topologys_tiers_and_untiered_services_leave_last():
    topology = tiered(6, {"data": 2, "api": 1})
    groups = plan_groups(topology, SOURCE, target=TARGET)
    assert [(g.name, len(g.services)) for g in groups] == [("data", 2), ("api", 1), (UNTIERED, 3)]


def test_services_and_tiers_narrow_the_evacuation():
    topology = tiered(6, {"data": 2, "api": 1})
    names = list(topology.services)
    assert [g.name for g in plan_groups(topology, SOURCE, target=TARGET, tiers=["api", UNTIERED])] == ["api", UNTIERED]
    [group] = plan_groups(topology, SOURCE, target=TARGET, services=[names[0]])
    assert group.name == "data" and [s.name for s in group.services] == [names[0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"services": ["nope"]}, "unknown service(s): nope"),
        ({"tiers": ["cache"]}, "unknown tier(s): cache"),
        ({"target": SOURCE}, "must differ from the region being evacuated"),
    ],
)
def test_bad_selections_are_refused_by_name(kwargs, message):
    topology = tiered(3, {"data": 1})
    options = {"target": TARGET, **kwargs}
    with pytest.raises(EvacuationRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_groups(topology, SOURCE, **options)


def test_a_region_no_service_is_in_is_refused_naming_the_regions():
    with pytest.raises(EvacuationRefused, match="no service of the topology is in region 'us-east1'"):
        plan_groups(generated_topology(2), "us-east1", target=TARGET)


def test_a_fixed_target_must_serve_every_service():
    topology = generated_topology(3, regions=(SOURCE, TARGET))
    with pytest.raises(EvacuationRefused, match="not served in asia-east1: .*--auto-target"):
        plan_groups(topology, SOURCE, target=THIRD)


def test_a_topology_with_a_data_centre_plans_its_evacuations_like_any_other():
    from evac.topology import load_topology
    from tests.conftest import ROOT

    hybrid = load_topology(ROOT / "plans" / "hybrid" / "topology.yaml")
    for target in (None, "dc-ams", "us-central1"):
        assert [s.name for g in plan_groups(hybrid, "europe-west1", target=target) for s in g.services] == ["shop"]
    assert [s.name for g in plan_groups(hybrid, "dc-ams", target="europe-west1") for s in g.services] == ["shop"]


def test_more_services_than_one_evacuation_takes_is_refused_with_advice():
    topology = generated_topology(MAX_SERVICES + 1)
    with pytest.raises(EvacuationRefused, match="split it with --tier or --services"):
        plan_groups(topology, SOURCE, target=None)


def test_the_largest_evacuation_fits_temporals_payload_limit_at_every_step():
    """2,000 services: the input at start, and at a continue-as-new the record of every service
    (each with the two changes a fail-back needs) beside the input of those still waiting."""
    topology = generated_topology(MAX_SERVICES)
    groups = plan_groups(topology, SOURCE, target=None)
    trigger = Trigger(by="alice@laptop", reason="region down")
    input = EvacuationInput(region=SOURCE, target=None, project=topology.project, groups=groups, trigger=trigger)
    assert len(input.model_dump_json()) < PAYLOAD_LIMIT * 0.7
    now = datetime(2026, 11, 28, tzinfo=UTC)
    spec = topology.services[groups[0].services[0].name]
    change = [
        RecordedChange(
            before=BackendCapacity(capacity_scaler=1.0),
            after=BackendCapacity(capacity_scaler=0.0),
            backend=bindings.backend_ref(topology.project, spec, SOURCE),
        ),
        RecordedChange(
            before=DnsRecord(ttl=300, rrdatas=[spec.regions[SOURCE].address]),
            after=DnsRecord(ttl=300, rrdatas=[spec.regions[TARGET].address]),
            record=bindings.dns_record_ref(topology.project, spec),
        ),
    ]
    record = EvacuationProgress(
        workflow_id=f"evacuation/{SOURCE}",
        region=SOURCE,
        target=None,
        trigger=trigger,
        window=50,
        groups=[g.name for g in groups],
        services=[
            EvacServiceRecord(
                service=s.name,
                group=g.name,
                status=ServiceStatus.SUCCEEDED,
                target=TARGET,
                target_reason="us-central1: 2/2 healthy, scaler 1 (spare 2 vs asia-east1 2)",
                workflow_id=f"failover/{s.name}",
                run_id="0198c3a1-7c1e-7a66-9b5e-2f1d3c4b5a69",
                started_at=now,
                ended_at=now + timedelta(seconds=3),
                changes=change,
            )
            for g in groups
            for s in g.services
        ],
    )
    # The record of every service, finished, is one payload (the memo at the end, the second
    # argument of a continue-as-new); the input of those still waiting is the other.
    assert len(record.model_dump_json()) < PAYLOAD_LIMIT * 0.9


def reading(
    region: str,
    healthy: int | None,
    scaler: float | None,
    *,
    total: int = 4,
    size: int | None = 4,
    room: int | None = None,
    max_size: int | None = None,
) -> RegionReading:
    health = HealthReport(healthy=healthy, total=total) if healthy is not None else None
    return RegionReading(
        region=region,
        health=health,
        capacity_scaler=scaler,
        error=None if health else "HTTP 503",
        size=size if health else None,
        quota_room=room,
        quota="" if room is None else f"INSTANCES {room} free",
        max_size=max_size,
    )


SERVING_3 = reading(SOURCE, 3, 1.0, total=3)


def test_the_target_is_the_region_with_most_headroom_not_the_one_serving_most():
    # us-central1 serves 4 and may grow to 10 (headroom 6); asia-east1 serves 2 and may grow to 20.
    busy = reading(TARGET, 4, 1.0, total=4, size=4, room=6)
    roomy = reading(THIRD, 2, 1.0, total=2, size=2, room=18)
    choice = choose_target(TargetReadings(service="s", source=SERVING_3, regions=[busy, roomy]), SOURCE, min_healthy=1)
    assert choice.target == THIRD
    assert choice.reason.startswith("asia-east1: headroom 18; needs 3 healthy in asia-east1 (1 × 3 instances serving")
    assert choice.reason.endswith("headroom of the others: us-central1 6")
    assert choice.sizing is not None and (choice.sizing.need, choice.sizing.scale_to) == (3, 3)


def test_unhealthy_drained_unreadable_excluded_and_too_small_regions_are_passed_over_with_reasons():
    readings = TargetReadings(
        service="s",
        source=SERVING_3,
        regions=[
            reading(TARGET, 0, 1.0),
            reading(THIRD, 4, 0.0),
            reading("us-east1", None, None),
            reading("us-west1", 3, 1.0),
            reading("us-west2", 1, 1.0, total=1, size=1, room=1),
        ],
    )
    choice = choose_target(readings, SOURCE, min_healthy=1, excluded=["us-west1"])
    assert choice.target is None and choice.sizing is None
    for why in (
        "us-central1 has 0/4 healthy",
        "asia-east1 is drained",
        "us-east1 unreadable (HTTP 503)",
        "us-west1 excluded",
        "us-west2 cannot hold it: needs 3 (1 × 3 instances serving in europe-west1), can reach 2 "
        "(size 1 + 1 quota room (INSTANCES 1 free))",
    ):
        assert why in choice.reason


def test_ties_go_to_the_region_the_topology_names_first():
    readings = TargetReadings(service="s", source=SERVING_3, regions=[reading(THIRD, 2, 1.0), reading(TARGET, 2, 1.0)])
    assert choose_target(readings, SOURCE, min_healthy=1).target == THIRD


def test_the_need_is_the_ratio_times_what_the_source_serves_with_and_at_least_the_guard():
    target = reading(TARGET, 1, 1.0, total=1, size=1)
    half = reading(SOURCE, 4, 0.5, total=4)  # 4 instances at half its share
    sizing, _ = size_target(half, target, 1.5, min_healthy=1)
    assert sizing is not None and (sizing.need, sizing.scale_to) == (3, 3)  # ceil(1.5 × 2)
    assert sizing.verdict == (
        "needs 3 healthy in us-central1 (1.5 × 4 instances × scaler 0.5 serving in europe-west1); "
        "has 1/1 healthy, size 1; scale to 3; no max_size, quota unread"
    )
    drained = reading(SOURCE, 0, 0.0, total=4)
    sizing, _ = size_target(drained, target, 1.0, min_healthy=2)
    assert sizing is not None and (sizing.need, sizing.scale_to) == (2, 2)  # the guard's minimum
    # A region in an outage: every backend unhealthy still counts as load to carry.
    down = reading(SOURCE, 0, 1.0, total=3)
    sizing, _ = size_target(down, target, 1.0, min_healthy=1)
    assert sizing is not None and sizing.need == 3


def test_a_source_that_cannot_be_read_needs_only_the_guards_minimum_and_says_so():
    target = reading(TARGET, 2, 1.0, total=2, size=2)
    sizing, _ = size_target(reading(SOURCE, None, None), target, 1.0, min_healthy=1)
    assert sizing is not None and (sizing.need, sizing.scale_to) == (1, None)
    assert sizing.verdict.startswith(
        "needs 1 healthy in us-central1 (europe-west1's load unknown (HTTP 503); the guard's minimum)"
    )


def test_max_size_and_quota_bound_what_a_region_can_reach():
    target = reading(TARGET, 2, 1.0, total=2, size=2, room=5, max_size=4)
    sizing, refusal = size_target(reading(SOURCE, 6, 1.0, total=6), target, 1.0, min_healthy=1)
    assert sizing is None and refusal == (
        "us-central1 cannot hold it: needs 6 (1 × 6 instances serving in europe-west1), can reach 4 (max_size 4)"
    )


def test_each_service_scales_its_target_waits_for_the_capacity_then_drains_and_shifts_dns(demo_topology):
    service = EvacService(name="checkout", topology=demo_topology.services["checkout"])
    sizing = Sizing(need=3, scale_to=3, verdict="needs 3")
    plan = service_plan(SOURCE, TARGET, service, sizing, Guards(), Retries())
    assert [(s.kind, getattr(s, "region", None)) for s in plan.steps] == [
        ("scale_target", None),
        ("verify_health", TARGET),
        ("drain", SOURCE),
        ("shift_dns", None),
    ]
    assert plan.steps[0].min_size == 3 and plan.steps[1].min_healthy == 3  # type: ignore[union-attr]
    assert plan.source == SOURCE and plan.target == TARGET and plan.services == ["checkout"]
    assert plan.structure_problems() == []
    # Big enough already: no scale-up, the capacity is still waited for.
    plan = service_plan(SOURCE, TARGET, service, Sizing(need=1, scale_to=None, verdict="needs 1"), Guards(), Retries())
    assert [s.kind for s in plan.steps] == ["verify_health", "drain", "shift_dns"]


def test_a_service_behind_a_regional_backend_service_moves_by_dns_alone(regional_topology):
    name, spec = next(
        (n, s) for n, s in regional_topology.services.items() if s.regions[SOURCE].backend_service_scope == "regional"
    )
    plan = service_plan(
        SOURCE, TARGET, EvacService(name=name, topology=spec), Sizing(need=1, scale_to=None, verdict="v"), Guards(), Retries()
    )
    assert [s.kind for s in plan.steps] == ["verify_health", "shift_dns"]
    assert "DNS only" in plan.description


def test_eta_is_the_pace_so_far_and_none_before_anything_finished():
    start = datetime(2026, 11, 28, tzinfo=UTC)
    record = EvacuationProgress(
        workflow_id="evacuation/x",
        region=SOURCE,
        target=TARGET,
        trigger=Trigger(by="t"),
        window=2,
        started_at=start,
        services=[EvacServiceRecord(service=f"s{i}", group=UNTIERED) for i in range(4)],
    )
    assert record.eta_seconds(start + timedelta(seconds=10)) is None
    record.services[0].status = ServiceStatus.SUCCEEDED
    record.services[1].status = ServiceStatus.FAILED
    assert record.eta_seconds(start + timedelta(seconds=10)) == pytest.approx(10.0)  # 2 left at 5 s each
    assert record.summary() == "running: 2 waiting, 1 succeeded, 1 failed"
    assert [r.service for r in record.failed()] == ["s1"]


def test_a_data_centre_target_holds_what_is_racked_there_and_is_never_scaled():
    """A region with no group to resize (a data centre): its size is its backends, all it can
    reach; an evacuation sends a service there only if that is enough, and plans no scale-up."""
    racked = reading(TARGET, 2, 1.0, total=2, size=2).model_copy(update={"fixed": True})
    sizing, why = size_target(reading(SOURCE, 2, 1.0, total=2), racked, 1.0, 1)
    assert why == "" and sizing is not None and (sizing.need, sizing.scale_to) == (2, None)
    assert "can reach 2 (fixed capacity: 2 backends, no group to resize)" in sizing.verdict
    too_small, why = size_target(SERVING_3, racked, 1.0, 1)
    assert too_small is None
    assert why == (
        f"{TARGET} cannot hold it: needs 3 (1 × 3 instances serving in {SOURCE}), "
        "can reach 2 (fixed capacity: 2 backends, no group to resize)"
    )
