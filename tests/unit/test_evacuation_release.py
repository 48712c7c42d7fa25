"""The evacuation's go-ahead across a tier (``EvacuationWorkflow._release_due``): a run's "warm"
signal can be handled in the same activation as, and before, its start's resolution. Released
then, it was never told to go (no handle to signal) and waited for ever; now the tier is
released once every held run's handle is there. Seen as an e2e dry-run evacuation that hung."""

from __future__ import annotations

from types import SimpleNamespace

from evac.evacuation import ServiceStatus
from workflows.evacuation import EvacuationWorkflow


def tier(held: set[str], handles: set[str]) -> EvacuationWorkflow:
    flow = EvacuationWorkflow.__new__(EvacuationWorkflow)
    flow._held, flow._slots, flow._released = set(held), set(held), set()  # type: ignore[attr-defined]
    flow._children = {service: object() for service in handles}  # type: ignore[attr-defined]
    flow._records = {s: SimpleNamespace(status=ServiceStatus.RUNNING) for s in held}  # type: ignore[attr-defined]
    flow._input = SimpleNamespace(window=50)  # type: ignore[attr-defined]
    flow._progress = SimpleNamespace(abort=None)  # type: ignore[attr-defined]
    return flow


def group(*services: str) -> SimpleNamespace:
    return SimpleNamespace(services=[SimpleNamespace(name=s) for s in services])


def test_a_warm_run_whose_start_is_not_yet_resolved_holds_the_release():
    flow = tier({"svc-1", "svc-2"}, handles={"svc-1"})
    assert flow._release_due(group("svc-1", "svc-2")) is False  # type: ignore[arg-type]


def test_the_tier_is_released_once_every_held_run_has_its_handle():
    flow = tier({"svc-1", "svc-2"}, handles={"svc-1", "svc-2"})
    assert flow._release_due(group("svc-1", "svc-2")) is True  # type: ignore[arg-type]
