"""Probes: measure a drill's stop conditions once — healthy backends, an HTTP probe's status,
a PromQL instant query's value. Only measuring: whether a reading is a breach is the
workflow's decision (``evac/drills.py``). A probe that cannot read a value says why
(``value`` None with a ``detail``); it never raises for a failed probe, because a failed probe
is exactly what a stop condition is there to catch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx
from temporalio import activity

from activities.health import HealthActivities
from evac.drills import ConditionReading, ConditionReadings
from evac.failures import FailureType, failure
from evac.logging import step_logging
from evac.plan import GCP_ENDPOINT, BackendHealthCondition, HttpProbeCondition, PrometheusCondition, StopCondition
from evac.refs import BackendRef
from evac.resources import ActivityName, CheckBackendHealth, CheckStopConditions, StepContext

PROMETHEUS_TIMEOUT_SECONDS = 10.0


class ProbeActivities:
    def __init__(self, health: HealthActivities, prometheus_url: str | None = None, gcp_endpoint: str | None = None):
        self._health = health
        self._prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self._gcp_endpoint = gcp_endpoint.rstrip("/") if gcp_endpoint else None

    @activity.defn(name=ActivityName.CHECK_STOP_CONDITIONS)
    def check_stop_conditions(self, input: CheckStopConditions) -> ConditionReadings:
        with step_logging(input.context) as log:
            readings = [self._measure(i, c, input.backends, input.context) for i, c in enumerate(input.conditions)]
            log.info("stop conditions measured", values=[r.value for r in readings])
            return ConditionReadings(readings=readings)

    def _measure(
        self, index: int, condition: StopCondition, backends: Mapping[str, BackendRef], context: StepContext
    ) -> ConditionReading:
        if isinstance(condition, BackendHealthCondition):
            region = condition.region or next(iter(backends))
            backend = backends.get(region)
            if backend is None:
                raise failure(
                    FailureType.CLOUD_REFUSED, f"no backend known for region {region} (a bug: the workflow passes them)"
                )
            # A getHealth that keeps failing raises: Temporal retries the check, as for any read.
            report = self._health.check_backend_health(CheckBackendHealth(context=context, backend=backend))
            return ConditionReading(index=index, value=float(report.healthy), detail=report.summary())
        if isinstance(condition, HttpProbeCondition):
            if condition.url.startswith(GCP_ENDPOINT):
                if self._gcp_endpoint is None:
                    detail = f"this worker calls Google Cloud itself (no EVAC_GCP_ENDPOINT) for the probe URL's {GCP_ENDPOINT}"
                    return ConditionReading(index=index, value=None, detail=detail)
                url = self._gcp_endpoint + condition.url.removeprefix(GCP_ENDPOINT)
                return _http_probe(index, condition.model_copy(update={"url": url}))
            return _http_probe(index, condition)
        assert isinstance(condition, PrometheusCondition)
        return self._prometheus(index, condition)

    def _prometheus(self, index: int, condition: PrometheusCondition) -> ConditionReading:
        if self._prometheus_url is None:
            return ConditionReading(
                index=index, value=None, detail="no Prometheus server configured on the worker (EVAC_PROMETHEUS_URL)"
            )
        try:
            response = httpx.get(
                f"{self._prometheus_url}/api/v1/query",
                params={"query": condition.query},
                timeout=PROMETHEUS_TIMEOUT_SECONDS,
            )
            body: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return ConditionReading(index=index, value=None, detail=f"Prometheus did not answer: {exc}")
        if response.status_code != 200 or body.get("status") != "success":
            error = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) else response.status_code
            return ConditionReading(index=index, value=None, detail=f"Prometheus refused the query: {error}")
        return _sample(index, body.get("data", {}))


def _http_probe(index: int, condition: HttpProbeCondition) -> ConditionReading:
    try:
        response = httpx.get(condition.url, timeout=condition.timeout.total_seconds(), follow_redirects=False)
    except httpx.TimeoutException:
        return ConditionReading(index=index, value=None, detail=f"no answer within {condition.timeout.total_seconds():g}s")
    except httpx.HTTPError as exc:
        return ConditionReading(index=index, value=None, detail=f"request failed: {exc}")
    return ConditionReading(index=index, value=float(response.status_code), detail=f"HTTP {response.status_code}")


def _sample(index: int, data: dict[str, Any]) -> ConditionReading:
    """One number from an instant query's result: a scalar, or a vector of exactly one sample."""
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            value = float(result[1])  # type: ignore[index]
        elif kind == "vector" and isinstance(result, list):
            if len(result) != 1:
                return ConditionReading(index=index, value=None, detail=f"the query returned {len(result)} series, not one")
            value = float(result[0]["value"][1])
        else:
            return ConditionReading(index=index, value=None, detail=f"the query returned a {kind}, not a number")
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        return ConditionReading(index=index, value=None, detail=f"unreadable answer: {exc}")
    if math.isnan(value):
        return ConditionReading(index=index, value=None, detail="the query's value is NaN")
    return ConditionReading(index=index, value=value, detail=f"{value:g}")
