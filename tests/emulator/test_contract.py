"""Contract tests: the emulator against Google's own published API description.

The Compute Engine v1 and Cloud DNS v1 discovery documents ship in google-api-python-client.
For every Google route the emulator serves, there must be a discovery method with the same
HTTP verb and path template; the query parameters and request-body fields the emulator
accepts must be the method's; and the JSON it actually answers (recorded while every route
is exercised) may use only fields of the method's response schema, with the right JSON types.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import httpx
import pydantic
import pytest
from fastapi.routing import APIRoute

from emulator.app import GOOGLE_API_ROUTERS
from emulator.backend_services import ResourceGroupReference
from emulator.cloudsql import DatabaseInstanceBody
from emulator.iam import TestIamPermissionsBody
from emulator.query import query_parameters
from emulator.records import ChangeBody, ResourceRecordSetBody
from emulator.spanner import UpdateDatabaseDdlBody
from emulator.state import BackendService
from emulator.testing import RunningEmulator, running_emulator
from evac.topology import Topology

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
GOOGLE_PREFIXES = ("/compute/", "/dns/", "/sql/", "/v1/projects/", "/v3/projects/")
DOCUMENT_NAMES = ("compute.v1", "dns.v1", "sqladmin.v1beta4", "spanner.v1", "monitoring.v3", "cloudresourcemanager.v1")

# Every method Evac's activities call; the emulator must serve each.
CALLED_BY_ACTIVITIES = {
    "compute.backendServices.get",
    "compute.backendServices.patch",
    "compute.backendServices.getHealth",
    "compute.regionInstanceGroupManagers.get",
    "compute.regionInstanceGroupManagers.resize",
    "compute.regionInstanceGroupManagers.listManagedInstances",
    "compute.globalOperations.get",
    "compute.globalOperations.wait",
    "compute.regionOperations.get",
    "compute.regionOperations.wait",
    "compute.regionBackendServices.get",
    "compute.regionBackendServices.patch",
    "compute.regionBackendServices.getHealth",
    "compute.instanceGroupManagers.get",
    "compute.instanceGroupManagers.resize",
    "compute.instanceGroupManagers.listManagedInstances",
    "compute.zoneOperations.get",
    "compute.zoneOperations.wait",
    "dns.managedZones.list",
    "dns.managedZones.get",
    "dns.resourceRecordSets.list",
    "dns.changes.create",
    "dns.changes.get",
    # The data tier's provider (providers/gcp/databases.py).
    "sql.instances.get",
    "sql.instances.insert",
    "sql.instances.delete",
    "sql.instances.switchover",
    "sql.instances.promoteReplica",
    "sql.operations.get",
    "sql.operations.list",
    "spanner.projects.instances.databases.get",
    "spanner.projects.instances.databases.updateDdl",
    "spanner.projects.instances.databases.operations.get",
    "monitoring.projects.timeSeries.list",
}

# What each method's request body is validated with, when the route takes the body as a dict.
BODY_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "compute.backendServices.patch": BackendService,
    "compute.backendServices.update": BackendService,
    "compute.backendServices.getHealth": ResourceGroupReference,
    "compute.regionBackendServices.patch": BackendService,
    "compute.regionBackendServices.update": BackendService,
    "compute.regionBackendServices.getHealth": ResourceGroupReference,
    "dns.changes.create": ChangeBody,
    "dns.resourceRecordSets.create": ResourceRecordSetBody,
    "dns.resourceRecordSets.patch": ResourceRecordSetBody,
    "sql.instances.insert": DatabaseInstanceBody,
    "spanner.projects.instances.databases.updateDdl": UpdateDatabaseDdlBody,
    "cloudresourcemanager.projects.testIamPermissions": TestIamPermissionsBody,
}


@dataclass(frozen=True)
class Method:
    id: str
    verb: str
    path: str
    parameters: dict[str, Any]
    request: str | None
    response: str | None
    document: str

    @property
    def query_parameters(self) -> set[str]:
        return {name for name, p in self.parameters.items() if p.get("location") == "query"}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@cache
def _document(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"{name}.json").read_text(encoding="utf-8"))


def _walk(resources: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in resources.values():
        yield from resource.get("methods", {}).values()
        yield from _walk(resource.get("resources", {}))


@cache
def discovery_methods() -> dict[tuple[str, str], Method]:
    """(verb, path template) -> method, over every document (a ``{+name}`` path by its flatPath)."""
    methods = {}
    for name in DOCUMENT_NAMES:
        doc = _document(name)
        for m in _walk(doc["resources"]):
            path = "/" + doc["servicePath"] + m.get("flatPath", m["path"])
            methods[(m["httpMethod"], _template(path))] = Method(
                id=m["id"],
                verb=m["httpMethod"],
                path=path,
                parameters=m.get("parameters", {}),
                request=m.get("request", {}).get("$ref"),
                response=m.get("response", {}).get("$ref"),
                document=name,
            )
    return methods


def google_routes() -> list[tuple[str, APIRoute]]:
    routes = [
        (verb, route)
        for router in GOOGLE_API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for verb in sorted(route.methods)
    ]
    assert routes and all(route.path.startswith(GOOGLE_PREFIXES) for _, route in routes)
    return routes


def method_for(verb: str, path: str) -> Method | None:
    return discovery_methods().get((verb, _template(path)))


def method_of_call(verb: str, url_path: str) -> Method:
    """The discovery method a concrete call (``/compute/v1/projects/p/...``) belongs to."""
    for (m_verb, template), method in discovery_methods().items():
        pattern = "^" + re.escape(template).replace(r"\{\}", "[^/]+") + "$"
        if m_verb == verb and re.match(pattern, url_path):
            return method
    raise AssertionError(f"no discovery method for {verb} {url_path}")


# --- schema checks ---------------------------------------------------------------------


def _schema(document: str, ref_or_inline: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_inline.get("$ref")
    return _document(document)["schemas"][ref] if ref else ref_or_inline


def json_problems(value: Any, schema: dict[str, Any], document: str, where: str) -> list[str]:
    """Everything in ``value`` that the discovery schema does not allow."""
    schema = _schema(document, schema)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r}"]
        problems = []
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                problems += json_problems(item, properties[key], document, f"{where}.{key}")
            elif extra is not None:
                problems += json_problems(item, extra, document, f"{where}.{key}")
            else:
                problems.append(f"{where}.{key}: not a field of {schema.get('id', 'the schema')}")
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {value!r}"]
        return [p for i, item in enumerate(value) for p in json_problems(item, schema["items"], document, f"{where}[{i}]")]
    if kind == "string":
        return [] if isinstance(value, str) else [f"{where}: expected a string ({fmt or 'text'}), got {value!r}"]
    if kind == "integer":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: expected an integer"]
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if kind == "any":
        return []
    return [f"{where}: schema type {kind!r} not understood by this test"]


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            assert len(args) == 1, f"unexpected union {annotation}"
            annotation = args[0]
        else:
            return annotation


def _json_kind(annotation: Any) -> tuple[str, ...]:
    """The discovery types a Python annotation may stand for."""
    if annotation is bool:
        return ("boolean",)
    if annotation is int:
        return ("integer", "string")  # int64/uint64 travel as strings
    if annotation is float:
        return ("number",)
    if annotation is str or typing.get_origin(annotation) is typing.Literal:
        return ("string",)
    raise AssertionError(f"annotation {annotation} not understood by this test")


def model_problems(model: type[pydantic.BaseModel], schema: dict[str, Any], document: str, where: str) -> list[str]:
    """Fields the emulator accepts (``model``) that the discovery schema does not have, or
    has with another JSON type."""
    schema = _schema(document, schema)
    properties = schema.get("properties", {})
    problems = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        at = f"{where}.{alias}"
        if alias not in properties:
            problems.append(f"{at}: accepted, but not a field of {schema.get('id', 'the schema')}")
            continue
        prop = _schema(document, properties[alias])
        annotation = _unwrap(field.annotation)
        if typing.get_origin(annotation) is list:
            if prop.get("type") != "array":
                problems.append(f"{at}: a list here, {prop.get('type')} in the API")
                continue
            annotation, prop = _unwrap(typing.get_args(annotation)[0]), _schema(document, prop["items"])
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            problems += model_problems(annotation, prop, document, at)
        elif prop.get("type") not in _json_kind(annotation):
            problems.append(f"{at}: {annotation} here, {prop.get('type')} in the API")
    return problems


# --- static checks: routes, parameters, accepted bodies ------------------------------------


def test_every_served_google_route_is_a_published_method() -> None:
    unknown = [f"{verb} {route.path}" for verb, route in google_routes() if method_for(verb, route.path) is None]

    assert unknown == []


def test_every_method_the_activities_call_is_served() -> None:
    served = {m.id for verb, route in google_routes() if (m := method_for(verb, route.path))}

    assert CALLED_BY_ACTIVITIES - served == set()


def test_query_parameters_accepted_are_the_methods_own() -> None:
    problems = []
    for verb, route in google_routes():
        method = method_for(verb, route.path)
        assert method is not None
        for name in query_parameters(route.dependant):
            if name not in method.query_parameters:
                problems.append(f"{method.id}: query parameter {name!r} is not in the API")

    assert problems == []


def test_request_bodies_accepted_use_only_the_methods_fields() -> None:
    problems = []
    for verb, route in google_routes():
        method = method_for(verb, route.path)
        assert method is not None
        if route.body_field is None:
            continue
        model = BODY_MODELS.get(method.id)
        assert model is not None, f"{method.id} takes a body: name its model in BODY_MODELS"
        assert method.request is not None, f"{method.id} takes no body in the API"
        problems += model_problems(model, {"$ref": method.request}, method.document, method.id)

    assert problems == []


def test_record_sets_accepted_in_changes_are_resource_record_sets() -> None:
    assert model_problems(ResourceRecordSetBody, {"$ref": "ResourceRecordSet"}, "dns.v1", "rrset") == []


# --- dynamic checks: what the emulator answers -------------------------------------------


@dataclass
class Exchange:
    verb: str
    path: str
    status: int
    request: Any
    response: Any


def _recorder(exchanges: list[Exchange]) -> Callable[[httpx.Response], None]:
    """An httpx response hook that records every call in ``exchanges``."""

    def record(response: httpx.Response) -> None:
        response.read()
        body = json.loads(response.request.content) if response.request.content else None
        exchanges.append(
            Exchange(response.request.method, response.request.url.path, response.status_code, body, response.json())
        )

    return record


def exercise_every_route(emulator: RunningEmulator) -> list[Exchange]:
    """Call each served Google method at least once with a valid request; record everything."""
    exchanges: list[Exchange] = []
    client = httpx.Client(base_url=emulator.url, event_hooks={"response": [_recorder(exchanges)]}, timeout=10)
    compute = "/compute/v1/projects/evac-demo"
    zone = "/dns/v1/projects/evac-demo/managedZones/shop-zone"
    with client:
        service = client.get(f"{compute}/global/backendServices/checkout-backend").json()
        service["backends"][0]["capacityScaler"] = 0.0
        op = client.patch(
            f"{compute}/global/backendServices/checkout-backend",
            params={"requestId": "0b6a4d1e-4a8e-4f39-9e5c-8d1f6f0b2a11"},
            json=service,
        ).json()
        client.get(f"{compute}/global/operations/{op['name']}")
        current = client.get(f"{compute}/global/backendServices/checkout-backend").json()
        client.put(f"{compute}/global/backendServices/checkout-backend", json=current)
        client.get(f"{compute}/global/healthChecks", params={"filter": "type = HTTP"})
        client.get(f"{compute}/global/healthChecks/checkout-backend-hc")
        client.get(f"{compute}/global/operations", params={"filter": "status = DONE", "maxResults": 5})
        client.get(f"{compute}/global/backendServices", params={"maxResults": 1, "orderBy": "name"})
        client.get(f"{compute}/regions/us-central1/instanceGroupManagers", params={"filter": "name eq checkout.*"})
        client.post(f"{compute}/global/operations/{op['name']}/wait")
        client.post(
            f"{compute}/global/backendServices/checkout-backend/getHealth", json={"group": service["backends"][0]["group"]}
        )
        group = f"{compute}/regions/us-central1/instanceGroupManagers/checkout-uc1"
        client.get(group)
        resize = client.post(f"{group}/resize", params={"size": 2}).json()
        instance = client.post(f"{group}/listManagedInstances").json()["managedInstances"][0]["instance"]
        client.get(instance.removeprefix("https://www.googleapis.com"))
        client.get(f"{compute}/zones/us-central1-b/instances", params={"filter": "status = RUNNING"})
        client.get(f"{compute}/regions/us-central1/operations/{resize['name']}")
        client.get(f"{compute}/regions/us-central1/operations", params={"pageToken": "0"})
        client.post(f"{compute}/regions/us-central1/operations/{resize['name']}/wait")
        client.get(f"{compute}/regions", params={"filter": "status = UP", "orderBy": "name"})
        client.get(f"{compute}/regions/us-central1")
        # The load balancers' front ends: a global address and forwarding rule per region, the
        # target HTTP proxy and URL map between a rule and its backend service.
        client.get(f"{compute}/global/forwardingRules", params={"filter": 'IPAddress = "203.0.113.10"'})
        client.get(f"{compute}/global/forwardingRules/checkout-backend-europe-west1-fr")
        client.get(f"{compute}/global/addresses", params={"orderBy": "name"})
        client.get(f"{compute}/global/addresses/checkout-backend-us-central1-ip")
        client.get(f"{compute}/global/targetHttpProxies", params={"orderBy": "name", "maxResults": 1})
        client.get(f"{compute}/global/targetHttpProxies/checkout-backend-proxy")
        client.get(f"{compute}/global/urlMaps", params={"filter": "name eq checkout.*"})
        client.get(f"{compute}/global/urlMaps/checkout-backend-map")
        # What the groups' instances are made of.
        template = client.get(group).json()["instanceTemplate"]
        client.get(template.removeprefix("https://www.googleapis.com"))
        client.get(f"{compute}/global/instanceTemplates", params={"filter": "name eq checkout.*"})
        client.get(f"{compute}/zones/us-central1-b/machineTypes/e2-standard-2")
        client.get(f"{compute}/zones/us-central1-b/machineTypes", params={"filter": "guestCpus >= 4", "maxResults": 2})
        # Beyond the region's quota: the instance it has no room for is CREATING, its last
        # attempt failed with QUOTA_EXCEEDED (the limit is set through the admin API, unrecorded).
        emulator.set_region_quota("us-central1", instances=3)
        client.post(f"{group}/resize", params={"size": 3})
        client.post(f"{group}/listManagedInstances")
        client.get(group)
        client.get("/dns/v1/projects/evac-demo/managedZones", params={"maxResults": 10})
        client.get(zone)
        client.get(f"{zone}/rrsets", params={"name": "checkout.shop.example.com.", "type": "A", "maxResults": 1})
        change = client.post(
            f"{zone}/changes",
            json={
                "deletions": [{"name": "checkout.shop.example.com.", "type": "A", "ttl": 300, "rrdatas": ["203.0.113.10"]}],
                "additions": [{"name": "checkout.shop.example.com.", "type": "A", "ttl": "60", "rrdatas": ["198.51.100.10"]}],
            },
        ).json()
        client.get(f"{zone}/changes/{change['id']}")
        rrsets = f"{zone}/rrsets"
        client.post(rrsets, json={"name": "api.shop.example.com.", "type": "A", "ttl": 60, "rrdatas": ["203.0.113.99"]})
        client.get(f"{rrsets}/api.shop.example.com./A")
        client.patch(f"{rrsets}/api.shop.example.com./A", json={"ttl": 30})
        client.delete(f"{rrsets}/api.shop.example.com./A")
        client.post(
            rrsets,
            json={
                "name": "wrr.shop.example.com.",
                "type": "A",
                "ttl": 60,
                "routingPolicy": {
                    "wrr": {"items": [{"weight": 3, "rrdatas": ["203.0.113.10"]}, {"weight": 1, "rrdatas": ["198.51.100.10"]}]}
                },
            },
        )
        client.post(
            rrsets,
            json={
                "name": "failover.shop.example.com.",
                "type": "A",
                "ttl": 60,
                "routingPolicy": {
                    "primaryBackup": {
                        "primaryTargets": {"externalEndpoints": ["203.0.113.10"]},
                        "backupGeoTargets": {"items": [{"location": "us-central1", "rrdatas": ["198.51.100.10"]}]},
                        "trickleTraffic": 0.1,
                    }
                },
            },
        )
        client.get(rrsets)
        client.get(f"{zone}/changes", params={"maxResults": 1, "sortOrder": "descending", "sortBy": "changeSequence"})
    return exchanges


def exercise_regional_routes(emulator: RunningEmulator) -> list[Exchange]:
    """The routes of regional backend services, regional health checks, zonal groups and zone
    operations, on a world seeded from plans/regional/topology.yaml."""
    exchanges: list[Exchange] = []
    client = httpx.Client(base_url=emulator.url, event_hooks={"response": [_recorder(exchanges)]}, timeout=10)
    compute = "/compute/v1/projects/evac-demo"
    service_path = f"{compute}/regions/europe-west1/backendServices/payments-ew1"
    with client:
        service = client.get(service_path).json()
        service["backends"][0]["capacityScaler"] = 0.5
        op = client.patch(service_path, params={"requestId": "6f1c1f9e-3a51-4d55-a1c8-0c5b5f2e7d21"}, json=service).json()
        client.get(f"{compute}/regions/europe-west1/operations/{op['name']}")
        client.put(service_path, json=client.get(service_path).json())
        client.get(f"{compute}/regions/europe-west1/backendServices", params={"filter": "name = payments-ew1"})
        client.post(f"{service_path}/getHealth", json={"group": service["backends"][0]["group"]})
        client.get(f"{compute}/regions/europe-west1/healthChecks", params={"maxResults": 1})
        client.get(f"{compute}/regions/europe-west1/healthChecks/payments-ew1-hc")
        zone = f"{compute}/zones/us-central1-a"
        client.get(f"{zone}/instanceGroupManagers", params={"orderBy": "name"})
        client.get(f"{zone}/instanceGroupManagers/payments-uc1-a")
        resize = client.post(
            f"{zone}/instanceGroupManagers/payments-uc1-a/resize",
            params={"size": 2, "requestId": "1d0e3c8a-9b7f-4f0e-8a43-2b6c1e9d5f10"},
        ).json()
        managed = client.post(f"{zone}/instanceGroupManagers/payments-uc1-a/listManagedInstances").json()
        client.get(managed["managedInstances"][0]["instance"].removeprefix("https://www.googleapis.com"))
        client.get(f"{zone}/operations/{resize['name']}")
        client.post(f"{zone}/operations/{resize['name']}/wait")
        client.get(f"{zone}/operations", params={"filter": "status = DONE"})
        # Regional backend services: a regional address and forwarding rule per region.
        client.get(f"{compute}/regions/europe-west1/forwardingRules", params={"maxResults": 5})
        client.get(f"{compute}/regions/europe-west1/forwardingRules/payments-ew1-europe-west1-fr")
        client.get(f"{compute}/regions/us-central1/addresses", params={"filter": "status = IN_USE"})
        client.get(f"{compute}/regions/us-central1/addresses/payments-uc1-us-central1-ip")
        client.get(f"{compute}/regions/us-central1")
    return exchanges


def exercise_data_routes(emulator: RunningEmulator) -> list[Exchange]:
    """The Cloud SQL, Spanner and Cloud Monitoring routes, on tests/data_topology.yaml."""
    exchanges: list[Exchange] = []
    client = httpx.Client(base_url=emulator.url, event_hooks={"response": [_recorder(exchanges)]}, timeout=10)
    sql = "/sql/v1beta4/projects/evac-data"
    spanner = "/v1/projects/evac-data"
    database = f"{spanner}/instances/catalog-spanner/databases/catalog"
    with client:
        client.get(f"{sql}/instances", params={"maxResults": 2})
        client.get(f"{sql}/instances/checkout-db-ew1")
        switch = client.post(f"{sql}/instances/checkout-db-uc1/switchover", params={"dbTimeout": "60s"}).json()
        client.get(f"{sql}/operations/{switch['name']}")
        client.get(f"{sql}/instances/checkout-db-uc1")
        client.get(f"{sql}/instances/checkout-db-ew1")
        client.post(f"{sql}/instances/checkout-db-ae1/promoteReplica", params={"failover": "false"})
        client.post(
            f"{sql}/instances",
            json={
                "name": "checkout-db-ae2",
                "region": "asia-east1",
                "databaseVersion": "POSTGRES_15",
                "instanceType": "READ_REPLICA_INSTANCE",
                "masterInstanceName": "evac-data:checkout-db-uc1",
                "settings": {"tier": "db-perf-optimized-N-2", "edition": "ENTERPRISE_PLUS", "availabilityType": "REGIONAL"},
            },
        )
        client.get(f"{sql}/instances/checkout-db-ae2")
        client.delete(f"{sql}/instances/checkout-db-ae2")
        client.get(f"{sql}/operations", params={"instance": "checkout-db-uc1", "maxResults": 5})
        now = datetime.now(UTC)
        client.get(
            "/v3/projects/evac-data/timeSeries",
            params={
                "filter": 'metric.type = "cloudsql.googleapis.com/database/replication/replica_lag" '
                'AND resource.labels.database_id = "evac-data:checkout-db-ew1"',
                "interval.startTime": (now - timedelta(minutes=5)).isoformat(),
                "interval.endTime": now.isoformat(),
            },
        )
        db = client.get(database).json()
        client.get(f"{database}/ddl")
        ddl = client.patch(
            f"{database}/ddl",
            json={
                "statements": ["ALTER DATABASE catalog SET OPTIONS (default_leader = 'us-central1')"],
                "operationId": "leader_1",
            },
        ).json()
        client.get(f"/v1/{ddl['name']}")
        instance = client.get(f"{spanner}/instances/catalog-spanner").json()
        client.get(f"/v1/{instance['config']}")
        client.post(
            "/v1/projects/evac-data:testIamPermissions",
            json={"permissions": ["compute.backendServices.update", "cloudsql.instances.failover"]},
        )
        assert db["name"].endswith("/databases/catalog")
    return exchanges


@pytest.fixture(scope="module")
def exchanges(demo_topology: Topology, regional_topology: Topology, data_topology: Topology) -> Iterator[list[Exchange]]:
    with running_emulator(demo_topology, operation_delay=0) as emulator:
        demo = exercise_every_route(emulator)
    with running_emulator(data_topology, operation_delay=0) as emulator:
        demo += exercise_data_routes(emulator)
    with running_emulator(regional_topology, operation_delay=0) as emulator:
        yield demo + exercise_regional_routes(emulator)


def test_the_exercise_covers_every_served_route(exchanges: list[Exchange]) -> None:
    served = {m.id for verb, route in google_routes() if (m := method_for(verb, route.path))}
    exercised = {method_of_call(e.verb, e.path).id for e in exchanges if e.status == 200}

    assert served - exercised == set(), "add a call for each new route to exercise_every_route"


def test_responses_use_only_the_methods_response_fields(exchanges: list[Exchange]) -> None:
    problems = []
    for exchange in exchanges:
        assert exchange.status == 200, exchange
        method = method_of_call(exchange.verb, exchange.path)
        assert method.response is not None, f"{method.id} answers nothing in the API"
        problems += json_problems(exchange.response, {"$ref": method.response}, method.document, method.id)

    assert problems == []


def test_requests_in_the_exercise_are_valid_for_the_api(exchanges: list[Exchange]) -> None:
    problems = []
    for exchange in exchanges:
        method = method_of_call(exchange.verb, exchange.path)
        if exchange.request is not None:
            assert method.request is not None
            request = _numbers_as_sent_by_google_clients(exchange.request)
            problems += json_problems(request, {"$ref": method.request}, method.document, f"{method.id} request")

    assert problems == []


def _numbers_as_sent_by_google_clients(value: Any) -> Any:
    """google-cloud-dns sends ttl as a string; the API accepts either for an integer."""
    if isinstance(value, dict):
        return {
            k: (int(v) if k == "ttl" and isinstance(v, str) else _numbers_as_sent_by_google_clients(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_numbers_as_sent_by_google_clients(v) for v in value]
    return value
