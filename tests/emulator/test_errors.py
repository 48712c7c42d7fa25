"""Bad requests get Google's error body with a 4xx code — never a 500 or a traceback."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.testing import RunningEmulator

BS = "/compute/v1/projects/evac-demo/global/backendServices/checkout-backend"
MIG = "/compute/v1/projects/evac-demo/regions/us-central1/instanceGroupManagers/checkout-uc1"
CHANGES = "/dns/v1/projects/evac-demo/managedZones/shop-zone/changes"
JSON = {"content-type": "application/json"}

BAD_REQUESTS: list[Any] = [
    pytest.param("PATCH", BS, {"content": b"{not json", "headers": JSON}, 400, "badRequest", id="malformed-json"),
    pytest.param("PATCH", BS, {"content": b"[1, 2]", "headers": JSON}, 400, "badRequest", id="body-not-an-object"),
    pytest.param("PATCH", BS, {"json": {"backendz": []}}, 400, "badRequest", id="unknown-field"),
    pytest.param("PATCH", BS, {"json": {"backends": [{"group": 7}]}}, 400, "badRequest", id="wrong-type"),
    pytest.param("PATCH", BS, {"json": {"backends": "all"}}, 400, "badRequest", id="list-expected"),
    pytest.param("PATCH", BS, {"json": {"name": "renamed"}}, 400, "invalid", id="rename"),
    pytest.param("POST", f"{BS}/getHealth", {"json": {}}, 400, "badRequest", id="missing-group"),
    pytest.param("POST", f"{MIG}/resize", {}, 400, "badRequest", id="resize-without-size"),
    pytest.param("POST", f"{MIG}/resize", {"params": {"size": "three"}}, 400, "badRequest", id="size-not-a-number"),
    pytest.param("POST", CHANGES, {"json": {"additions": [{"name": "x."}]}}, 400, "badRequest", id="rrset-missing-fields"),
    pytest.param("POST", CHANGES, {"json": {}}, 400, "required", id="empty-change"),
    pytest.param(
        "POST",
        CHANGES,
        {"json": {"additions": [{"name": "a.shop.example.com.", "type": "A", "ttl": "soon", "rrdatas": ["1.2.3.4"]}]}},
        400,
        "badRequest",
        id="ttl-not-a-number",
    ),
    pytest.param(
        "GET",
        "/compute/v1/projects/other-project/global/backendServices/checkout-backend",
        {},
        404,
        "notFound",
        id="unknown-project",
    ),
    pytest.param("GET", "/dns/v1/projects/evac-demo/managedZones/nope/rrsets", {}, 404, "notFound", id="unknown-zone"),
    pytest.param("GET", "/compute/v1/projects/evac-demo/global/nothingHere", {}, 404, "notFound", id="unknown-route"),
    pytest.param("DELETE", BS, {}, 405, "httpMethodNotAllowed", id="unserved-method"),
]


@pytest.mark.parametrize(("method", "path", "options", "code", "reason"), BAD_REQUESTS)
def test_bad_request_gets_googles_error_body(
    emulator: RunningEmulator, method: str, path: str, options: dict[str, Any], code: int, reason: str
) -> None:
    response = emulator.admin.request(method, path, **options)

    assert response.status_code == code
    error = response.json()["error"]
    assert error["code"] == code
    assert error["status"] in ("INVALID_ARGUMENT", "NOT_FOUND", "METHOD_NOT_ALLOWED")
    assert error["message"] and "Traceback" not in error["message"]
    assert error["errors"] == [{"message": error["message"], "domain": "global", "reason": reason}]


def test_a_payload_error_names_the_offending_field(emulator: RunningEmulator) -> None:
    response = emulator.admin.patch(BS, json={"backends": [{"group": "g", "capacityScaler": 1, "weight": 3}]})

    assert "Unknown name \"weight\" at 'resource.backends[0]'" in response.json()["error"]["message"]


def test_refused_mutations_change_nothing_and_are_logged_as_refused(emulator: RunningEmulator) -> None:
    before = emulator.state()

    emulator.admin.patch(BS, json={"backends": [{"group": 7}]})
    emulator.admin.patch(BS, json={"fingerprint": "stale"})

    assert emulator.state() == before
    assert [r["effect"] for r in emulator.requests()] == ["refused: 400 badRequest", "refused: 412 conditionNotMet"]


def test_a_bug_in_the_emulator_is_answered_as_googles_500_without_a_traceback(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr("emulator.backend_services.BackendService.api_json", broken)

    response = emulator.admin.get(BS)

    assert response.status_code == 500
    assert response.json()["error"]["errors"][0]["reason"] == "backendError"
    assert "a bug" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(f"{MIG}/resize", {"size": 2, "sise": 3}, id="misspelt"),
        pytest.param("/dns/v1/projects/evac-demo/managedZones/shop-zone/rrsets", {"filter": "x"}, id="unsupported"),
    ],
)
def test_a_query_parameter_the_method_does_not_define_is_refused(
    emulator: RunningEmulator, path: str, params: dict[str, Any]
) -> None:
    response = emulator.admin.request("POST" if path.endswith("resize") else "GET", path, params=params)

    assert response.status_code == 400
    assert "Cannot bind query parameter" in response.json()["error"]["message"]
    assert emulator.state()["instanceGroupManagers"]["us-central1/checkout-uc1"]["targetSize"] == 1


def test_system_parameters_the_clients_send_are_accepted(emulator: RunningEmulator) -> None:
    response = emulator.admin.get(BS, params={"$alt": "json;enum-encoding=int", "prettyPrint": "false", "alt": "json"})

    assert response.status_code == 200
