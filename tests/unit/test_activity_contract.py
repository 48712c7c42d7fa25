"""Every activity the workflows call through ``evac/activity_api.py`` has an implementation
in ``activities/registry.py`` under the same name, taking and returning the same types."""

from __future__ import annotations

from temporalio import activity

from activities.registry import all_activities
from evac import activity_api
from providers.gcp.clients import GcpClients


def _definitions(functions: list) -> dict[str, activity._Definition]:
    found = [activity._Definition.must_from_callable(f) for f in functions]
    return {d.name: d for d in found if d.name is not None}


def test_every_stub_has_an_implementation_with_the_same_name_input_and_result() -> None:
    stubs = _definitions(activity_api.ALL)
    implementations = _definitions(all_activities(GcpClients.create("http://127.0.0.1:9")))

    assert set(stubs) <= set(implementations), f"not implemented: {sorted(set(stubs) - set(implementations))}"
    for name, stub in stubs.items():
        real = implementations[name]
        assert real.arg_types == stub.arg_types, f"{name}: input {real.arg_types} != {stub.arg_types}"
        assert real.ret_type == stub.ret_type, f"{name}: result {real.ret_type} != {stub.ret_type}"


def test_the_worker_registers_nothing_the_contract_does_not_name() -> None:
    stubs = _definitions(activity_api.ALL)
    implementations = _definitions(all_activities(GcpClients.create("http://127.0.0.1:9")))
    assert set(implementations) == set(stubs)
