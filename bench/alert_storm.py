"""Benchmark: an alert storm against ``evac alerts serve`` on the embedded stack.

Starts the Temporal dev server, the emulator and one worker on free loopback ports (as
bench/failover_throughput.py does), then ``evac alerts serve`` (the real CLI, under uvicorn)
with a plans folder failing K services over from europe-west1 to us-central1 and a short
``[alerts_policy] min_duration``. Then posts N Alertmanager webhook deliveries (authenticated,
``--distinct`` different alerts for europe-west1 repeated over and over: a storm of duplicates)
as fast as ``--concurrency`` connections allow, and prints:

- the receiver's latency per delivery (p50 / p99 / max, as the sender sees it) and the rate;
- how many deliveries were accepted (202) and how many alerts the receiver counted;
- how many failovers the storm started (it must be exactly one per service);
- the decision latency: from the moment the evidence was complete (the guardian's
  ``evidence_since`` + ``min_duration``) to the guardian's ``fire`` decision, and to the
  failover's start as Temporal recorded it;

and one summary line against the targets (p99 ≤ 100 ms, one failover per service, decision
≤ 1 s). Exits 1 when a delivery was refused or the failovers are not exactly one per service.

The world's standby region runs 3 instances per service, so the guardian's target guards pass.

    .venv/bin/python bench/alert_storm.py [--posts 10000] [--concurrency 4] [--services 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import loopback_config  # noqa: E402
from evac.alerting.models import Decision  # noqa: E402
from evac.alerting.status import GuardianStatus  # noqa: E402
from evac.config import connect_temporal  # noqa: E402
from evac.control import alerts  # noqa: E402
from evac.stack import Stack, StackConfig, find_binary, free_port  # noqa: E402

REGION, TARGET = "europe-west1", "us-central1"
TARGET_P99 = 0.100
TARGET_DECISION = 1.0


def write_plans(folder: Path, services: int, min_duration: float) -> tuple[Path, Path]:
    """A world of ``services`` services, an ``auto: true`` plan over all of them, a config file."""
    names = [f"svc{i}" for i in range(services)]
    topology = {
        "project": "evac-bench",
        "dns_zones": {"bench-zone": {"dns_name": "bench.example.com."}},
        "services": {
            name: {
                "primary_region": REGION,
                "dns": {"managed_zone": "bench-zone", "record": f"{name}.bench.example.com."},
                "regions": {
                    REGION: {
                        "backend_service": f"{name}-backend",
                        "instance_group": f"{name}-ew1",
                        "address": f"203.0.113.{i + 1}",
                    },
                    TARGET: {
                        "backend_service": f"{name}-backend",
                        "instance_group": f"{name}-uc1",
                        "address": f"198.51.100.{i + 1}",
                    },
                },
            }
            for i, name in enumerate(names)
        },
        "emulator": {"default_group_size": 3},
    }
    plan = {
        "name": "bench-auto",
        "services": names,
        "source": REGION,
        "target": TARGET,
        "auto": True,
        "guards": {"min_healthy_target": 2},
        "steps": [
            {"name": "scale up", "kind": "scale_target", "min_size": 3},
            {"name": "healthy", "kind": "verify_health", "min_healthy": 3, "timeout": "2m", "interval": "0.5s"},
            {"name": "drain", "kind": "drain", "capacity_scaler": 0},
            {"name": "dns", "kind": "shift_dns", "ttl": 60},
        ],
    }
    plans = folder / "plans"
    plans.mkdir()
    (plans / "topology.yaml").write_text(yaml.safe_dump(topology))
    (plans / "auto.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    config = folder / "config.toml"
    config.write_text(f'[alerts_policy]\nmin_duration = "{min_duration:g}s"\nmax_per_hour = {max(5, services)}\n')
    return plans, config


def delivery(index: int) -> dict[str, Any]:
    """Alertmanager's webhook body for alert number ``index``: firing in europe-west1, region-wide."""
    labels = {"alertname": "RegionDegraded", "region": REGION, "severity": "page", "probe": f"probe-{index}"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="RegionDegraded"}',
        "status": "firing",
        "receiver": "evac",
        "groupLabels": {"alertname": "RegionDegraded"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.bench",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{REGION} degraded (probe {index})"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": f"{index:016x}",
            }
        ],
    }


@dataclass
class Storm:
    latencies: list[float]
    codes: dict[int, int]
    wall: float


async def storm(url: str, token: str, posts: int, concurrency: int, distinct: int) -> Storm:
    bodies = [httpx.Request("POST", url, json=delivery(i)).content for i in range(distinct)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue = iter(range(posts))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:

        async def sender() -> None:
            for i in queue:
                started = time.perf_counter()
                response = await client.post(url, content=bodies[i % distinct])
                latencies.append(time.perf_counter() - started)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return Storm(latencies, codes, wall)


def accepted_alerts(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).raise_for_status().text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("evac_alert_receiver_alerts_accepted_total{")
        )
    )


def coalesced_alerts(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).raise_for_status().text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("evac_alert_receiver_alerts_coalesced_total")
        )
    )


@dataclass
class Outcome:
    guardian: GuardianStatus
    fires: list[Decision]
    started: dict[str, datetime]  # service → the failover's start, as Temporal recorded it
    automatic: int  # FailoverWorkflow runs with trigger alert (visibility)


async def outcome(config: StackConfig, services: int, timeout: float) -> Outcome:
    """Wait for a fire decision per service (and a little longer: nothing more may start)."""
    client = await connect_temporal(config.temporal_address, "default")
    deadline = time.monotonic() + timeout
    while True:
        [guardian] = await alerts.status(client, REGION)
        fires = [d for d in guardian.state.decisions if d.verdict == "fire"]
        if len({d.service for d in fires}) >= services or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # past another decision: a second failover would show now
    [guardian] = await alerts.status(client, REGION)
    fires = [d for d in guardian.state.decisions if d.verdict == "fire"]
    started: dict[str, datetime] = {}
    for decision in fires:
        if decision.workflow_id and decision.service:
            described = await client.get_workflow_handle(decision.workflow_id, run_id=decision.run_id).describe()
            started[decision.service] = described.start_time
    query = "WorkflowType = 'FailoverWorkflow' AND EvacTrigger = 'alert'"
    automatic = 0
    for _ in range(20):  # visibility lags the start by a moment
        automatic = (await client.count_workflows(query)).count
        if automatic >= len(fires):
            break
        await asyncio.sleep(0.5)
    return Outcome(guardian, fires, started, automatic)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_receiver(
    config: StackConfig, plans: Path, settings: Path, token: str, folder: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **config.client_env(), "EVAC_ALERTS_TOKEN": token, "EVAC_CONFIG": str(settings)}
    log = open(folder / "receiver.log", "ab")  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(
        [find_binary("evac"), "alerts", "serve", "--host", "127.0.0.1", "--port", str(port), "--plans", str(plans)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"evac alerts serve exited with {process.returncode}: {(folder / 'receiver.log').read_text()}")
        try:
            health = httpx.get(f"{url}/healthz", timeout=2).json()
            if REGION in health["configured"]:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"evac alerts serve did not configure the {REGION} guardian in 60s: {(folder / 'receiver.log').read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000, help="webhook deliveries to send")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="deliveries in flight at once (4 saturates a 2-core machine; more only queues)"
    )
    parser.add_argument("--distinct", type=int, default=20, help="different alerts among them (the rest are repeats)")
    parser.add_argument("--services", type=int, default=2, help="services the europe-west1 plan fails over")
    parser.add_argument("--min-duration", type=float, default=2.0, help="seconds the evidence must hold ([alerts_policy])")
    args = parser.parse_args()
    for name in ("posts", "concurrency", "distinct", "services"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plans, settings = write_plans(folder, args.services, args.min_duration)
        config = loopback_config(
            plans / "topology.yaml",
            folder / "state",
            operation_delay=0.1,
            warmup=0.5,
            task_queue="evac-bench-alerts",
        )
        with Stack(config):
            receiver, url = start_receiver(config, plans, settings, token, folder)
            try:
                result = asyncio.run(storm(f"{url}/alertmanager", token, args.posts, args.concurrency, args.distinct))
                accepted, coalesced = accepted_alerts(url), coalesced_alerts(url)
                found = asyncio.run(outcome(config, args.services, timeout=60 + args.min_duration))
            finally:
                stop(receiver)
    report(args, result, accepted, coalesced, found)


def report(args: argparse.Namespace, result: Storm, accepted: int, coalesced: int, found: Outcome) -> None:
    state, policy = found.guardian.state, found.guardian.policy
    p50, p99 = statistics.median(result.latencies), percentile(result.latencies, 0.99)
    ok = result.codes.get(202, 0)
    per_service = {service: sum(1 for d in found.fires if d.service == service) for service in {d.service for d in found.fires}}
    one_each = (
        len(per_service) == args.services and all(n == 1 for n in per_service.values()) and found.automatic == args.services
    )
    to_decision: list[float] = []
    to_start: list[float] = []
    if state.evidence_since is not None:
        complete = state.evidence_since + policy.min_duration
        to_decision = [(d.at - complete).total_seconds() for d in found.fires]
        to_start = [(at - complete).total_seconds() for at in found.started.values()]
    decision = max(to_start, default=float("nan"))
    print(
        f"deliveries posted:            {len(result.latencies)} ({args.distinct} distinct alerts, {args.concurrency} in flight)"
    )
    print(f"wall time / rate:             {result.wall:.2f}s / {len(result.latencies) / result.wall:.0f} deliveries/s")
    print(f"receiver latency p50 / p99:   {p50 * 1000:.1f} ms / {p99 * 1000:.1f} ms (max {max(result.latencies) * 1000:.1f} ms)")
    print(f"answers:                      {', '.join(f'{code}: {n}' for code, n in sorted(result.codes.items()))}")
    print(f"alerts accepted (receiver):   {accepted} ({coalesced} coalesced with a signal moments before)")
    print(f"alerts the guardian received: {state.received} ({state.duplicates} duplicates)")
    print(f"failovers started:            {found.automatic} (trigger alert) for {args.services} services: {per_service}")
    print(f"evidence complete → fire:     {', '.join(f'{s:.3f}s' for s in to_decision) or '-'}")
    print(
        f"evidence complete → started:  {', '.join(f'{s:.3f}s' for s in to_start) or '-'} (min_duration {args.min_duration:g}s)"
    )
    verdicts = [
        f"p99 {p99 * 1000:.0f} ms {'≤' if p99 <= TARGET_P99 else '>'} 100 ms",
        f"{'exactly one' if one_each else 'NOT one'} failover per service",
        f"decision {decision:.2f}s {'≤' if decision <= TARGET_DECISION else '>'} 1 s",
    ]
    met = p99 <= TARGET_P99 and one_each and decision <= TARGET_DECISION
    print(
        f"alert_storm: {ok}/{args.posts} accepted at {len(result.latencies) / result.wall:.0f}/s; "
        + "; ".join(verdicts)
        + f" — {'all targets met' if met else 'TARGETS MISSED'}"
    )
    if ok != args.posts or not one_each:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
