"""A drill's HTTP probe measured through the real activity against the emulator: a URL that starts
with ``{gcp_endpoint}`` is read at the endpoint the worker calls Google Cloud at (the emulator the
stack runs, whatever its port); a worker that calls Google Cloud itself says why it read nothing."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.health import HealthActivities
from activities.probes import ProbeActivities
from emulator.testing import RunningEmulator
from evac.plan import HttpProbeCondition
from evac.resources import CheckStopConditions, StepContext
from providers.gcp.clients import GcpClients
from providers.registry import Providers

PROBE = HttpProbeCondition(kind="http_probe", url="{gcp_endpoint}/emulator/v1/probe/checkout/us-central1")


def measure(probes: ProbeActivities) -> tuple[float | None, str]:
    input = CheckStopConditions(context=StepContext(service="checkout", step="bake"), conditions=[PROBE], backends={})
    [reading] = ActivityEnvironment().run(probes.check_stop_conditions, input).readings
    return reading.value, reading.detail


def test_a_probe_at_the_workers_endpoint_follows_the_stack_it_runs_on(emulator: RunningEmulator):
    clients = GcpClients.create(emulator.url)
    assert measure(ProbeActivities(HealthActivities(Providers.of(clients)), None, emulator.url)) == (200.0, "HTTP 200")
    emulator.outage("us-central1")
    assert measure(ProbeActivities(HealthActivities(Providers.of(clients)), None, emulator.url)) == (503.0, "HTTP 503")


def test_a_worker_without_an_endpoint_of_its_own_reads_no_value_and_says_why(emulator: RunningEmulator):
    value, detail = measure(ProbeActivities(HealthActivities(Providers.of(GcpClients.create(emulator.url))), None, None))
    assert value is None
    assert detail == "this worker calls Google Cloud itself (no EVAC_GCP_ENDPOINT) for the probe URL's {gcp_endpoint}"
