"""What monitoring sees: a probe per service and region, and ``/metrics`` in Prometheus's
text format. Not part of Google Cloud: these stand in for a service's own health endpoint
and for the metrics a monitoring system scrapes, so that a drill's ``http_probe`` and
``prometheus`` stop conditions have something real to watch (the model is in ``load.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from emulator.core import Emulator, get_emulator
from emulator.errors import ApiError
from emulator.load import SimulatedLoad, observe, observe_one

router = APIRouter()

LABELS = ["service", "region"]


@router.get("/emulator/v1/probe/{service}/{region}")
async def probe(service: str, region: str, emulator: Emulator = Depends(get_emulator)) -> Any:
    """200 while the service has a healthy instance in the region, 503 while it has none
    (an outage, or every instance still warming up or removed)."""
    if service not in emulator.topology.services:
        raise ApiError(404, "notFound", f"There is no service '{service}' in this emulator's topology.")
    found = observe_one(emulator, service, region, emulator.now())
    if found is None:
        regions = ", ".join(emulator.topology.services[service].regions)
        raise ApiError(404, "notFound", f"Service '{service}' has no region '{region}' (it has: {regions}).")
    body = {
        "service": service,
        "region": region,
        "serving": found.serving,
        "healthyBackends": found.healthy_backends,
        "backends": found.backends,
    }
    return JSONResponse(body, status_code=200 if found.serving else 503)


def get_load(request: Request) -> SimulatedLoad:
    """FastAPI dependency: the simulated load the app counts."""
    load: SimulatedLoad = request.app.state.load
    return load


@router.get("/metrics")
async def metrics(load: SimulatedLoad = Depends(get_load)) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Metrics(load))
    # The classic text format (0.0.4): what every Prometheus 2 reads.
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class _Metrics(Collector):
    """The metric families at the moment of the scrape."""

    def __init__(self, load: SimulatedLoad):
        self._load = load

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        load, emulator = self._load, self._load.emulator
        load.advance()
        now = emulator.now()
        entries = observe(emulator, now)
        families = {
            "backends": GaugeMetricFamily(
                "evac_emulator_backends", "Instances of the service's instance group in the region.", labels=LABELS
            ),
            "healthy": GaugeMetricFamily(
                "evac_emulator_healthy_backends",
                "Healthy instances of the service's instance group in the region (an outage makes them 0).",
                labels=LABELS,
            ),
            "scaler": GaugeMetricFamily(
                "evac_emulator_capacity_scaler",
                "Capacity scaler of the region's backend in the service's backend service (0: drained).",
                labels=LABELS,
            ),
            "share": GaugeMetricFamily(
                "evac_emulator_traffic_share",
                "Share of the service's requests the region serves now, 0 to 1 (as /emulator/v1/traffic splits them).",
                labels=LABELS,
            ),
        }
        for entry in entries:
            labels = [entry.service, entry.region]
            families["backends"].add_metric(labels, entry.backends)
            families["healthy"].add_metric(labels, entry.healthy_backends)
            families["scaler"].add_metric(labels, entry.capacity_scaler)
            families["share"].add_metric(labels, round(entry.share, 4))
        yield from families.values()

        requests = CounterMetricFamily(
            "evac_emulator_requests", "Requests of the simulated clients, by the region they were sent to.", labels=LABELS
        )
        errors = CounterMetricFamily(
            "evac_emulator_errors",
            "Requests answered with an error because no region could serve them, by the region they were sent to.",
            labels=LABELS,
        )
        for entry in entries:
            key = (entry.service, entry.region)
            requests.add_metric(list(key), math.floor(load.requests[key]))
            errors.add_metric(list(key), math.floor(load.errors[key]))
        yield requests
        yield errors

        outage = GaugeMetricFamily(
            "evac_emulator_region_outage", "1 while the region is in an emulated outage.", labels=["region"]
        )
        for region in sorted(emulator.world.regions()):
            outage.add_metric([region], 1.0 if region in emulator.world.outages else 0.0)
        yield outage
