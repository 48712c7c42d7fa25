"""List methods: Compute Engine filters, ordering and pages through the real clients, and
the filter grammar on its own."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from emulator.errors import ApiError
from emulator.listing import compute_filter
from emulator.testing import ComputeClients


def _service_names(compute: ComputeClients, **request: Any) -> list[str]:
    listed = compute.backend_services.list(request=compute_v1.ListBackendServicesRequest(project=compute.project, **request))
    return [service.name for service in listed]


def test_backend_services_are_listed_by_name(compute: ComputeClients) -> None:
    assert _service_names(compute) == ["catalog-backend", "checkout-backend"]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('name = "checkout-backend"', ["checkout-backend"]),
        ("name != checkout-backend", ["catalog-backend"]),
        ("name eq check.*", ["checkout-backend"]),
        ("name ne .*-backend", []),
        ('(name = "checkout-backend") OR (name = "catalog-backend")', ["catalog-backend", "checkout-backend"]),
        ("(protocol = HTTP) (name = catalog-backend)", ["catalog-backend"]),
    ],
)
def test_backend_services_can_be_filtered(compute: ComputeClients, filter_: str, expected: list[str]) -> None:
    assert _service_names(compute, filter=filter_) == expected


def test_the_client_pages_through_a_list_with_max_results(compute: ComputeClients) -> None:
    pager = compute.backend_services.list(request=compute_v1.ListBackendServicesRequest(project=compute.project, max_results=1))

    pages = [[service.name for service in page.items] for page in pager.pages]

    assert pages == [["catalog-backend"], ["checkout-backend"]]


def test_groups_filtered_by_size_and_operations_by_status(compute: ComputeClients) -> None:
    op = compute.region_groups.resize(
        project=compute.project, region="us-central1", instance_group_manager="checkout-uc1", size=3
    )
    compute.wait(op.name, region="us-central1")

    large = compute.region_groups.list(
        request=compute_v1.ListRegionInstanceGroupManagersRequest(
            project=compute.project, region="us-central1", filter="targetSize > 1"
        )
    )
    done = compute.region_operations.list(
        request=compute_v1.ListRegionOperationsRequest(project=compute.project, region="us-central1", filter="status = DONE")
    )

    assert [group.name for group in large] == ["checkout-uc1"]
    assert [o.name for o in done] == [op.name]
    assert list(compute.global_operations.list(project=compute.project)) == []


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"filter": "name"}, id="no-operator"),
        pytest.param({"filter": "(name eq x) (name = y)"}, id="regex-mixed-with-comparison"),
        pytest.param({"filter": "name eq ("}, id="bad-regex"),
        pytest.param({"max_results": 501}, id="page-too-large"),
        pytest.param({"page_token": "yesterday"}, id="foreign-page-token"),
        pytest.param({"order_by": "fingerprint"}, id="unsupported-order"),
    ],
)
def test_bad_list_requests_are_refused(compute: ComputeClients, request_: dict[str, Any]) -> None:
    with pytest.raises(exceptions.BadRequest):
        _service_names(compute, **request_)


RESOURCE = {"name": "web-1", "status": {"isStable": True}, "targetSize": 3, "zones": ["a", "b"]}


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("status.isStable = true", True),
        ("targetSize >= 3", True),
        ("targetSize < 3", False),
        ("zones:b", True),
        ("labels:*", False),
        ("name:*", True),
        ("(name = other) OR (targetSize = 3)", True),
        ("(name = other) OR (targetSize = 3) (status.isStable = false)", False),
        ("name eq 'web-[0-9]+'", True),
        ("name eq web", False),
        ("", True),
    ],
)
def test_filter_grammar(expression: str, matches: bool) -> None:
    assert compute_filter(expression)(RESOURCE) is matches


@pytest.mark.parametrize("expression", ["name =", "(name = a) XOR (name = b)", "garbage (name = a)"])
def test_malformed_filters_are_refused(expression: str) -> None:
    with pytest.raises(ApiError) as refused:
        compute_filter(expression)
    assert refused.value.code == 400
