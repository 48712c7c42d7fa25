"""Benchmark: ``evac alerts serve`` under 200 concurrent maximum-size deliveries (issue 20).

Starts the embedded stack (Temporal dev server, emulator, worker) and ``evac alerts serve`` as
bench/alert_storm.py does, then sends ``--deliveries`` valid Alertmanager webhook bodies just
under the receiver's 1 MiB limit, all at once (``--concurrency``), while it asks ``/healthz``
every 100 ms. Each body holds ``--alerts`` alerts for europe-west1 with long descriptions (the
receiver keeps 500 characters of each), the same alerts in every body (a storm of repeats).

It prints the receiver's peak resident memory (VmHWM, from /proc), the deliveries' latency as
the sender sees it (p50 / p99 / max) and their answers, the /healthz latency during the load
(p99 / max), and one line ``receiver_load: …``.

    .venv/bin/python bench/receiver_load.py [--deliveries 200] [--concurrency 200] [--alerts 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bounded, loopback_config  # noqa: E402
from bench.alert_storm import REGION, percentile, start_receiver, stop, write_plans  # noqa: E402
from evac.alerting.receiver import MAX_BODY  # noqa: E402
from evac.stack import Stack  # noqa: E402


def body(alerts: int, limit: int = MAX_BODY) -> bytes:
    """A valid Alertmanager delivery of ``alerts`` alerts, padded by their descriptions to just
    under ``limit`` bytes."""

    def build(pad: int) -> bytes:
        return json.dumps(
            {
                "version": "4",
                "groupKey": '{}:{alertname="RegionDown"}',
                "status": "firing",
                "receiver": "evac",
                "groupLabels": {},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": f"RegionDown{i}", "region": REGION},
                        "annotations": {"summary": f"load test alert {i}", "description": "x" * pad},
                        "startsAt": "2026-12-06T10:00:00Z",
                        "fingerprint": f"load{i:06d}",
                    }
                    for i in range(alerts)
                ],
            }
        ).encode()

    empty = len(build(0))
    pad = max(0, (limit - 1024 - empty) // alerts)
    return build(pad)


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    answers: Counter[int] = field(default_factory=Counter)
    health: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def load(url: str, token: str, payload: bytes, deliveries: int, concurrency: int) -> Load:
    result = Load()
    done = asyncio.Event()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def deliver() -> None:
            async with gate:
                started = time.perf_counter()
                answer = await client.post(
                    f"{url}/alertmanager",
                    content=payload,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                result.latencies.append(time.perf_counter() - started)
                result.answers[answer.status_code] += 1

        async def healthz() -> None:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    await client.get(f"{url}/healthz", timeout=30)
                    result.health.append(time.perf_counter() - started)
                except httpx.HTTPError:
                    result.health.append(float("inf"))
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(healthz())
        began = time.perf_counter()
        await asyncio.gather(*(deliver() for _ in range(deliveries)))
        result.seconds = time.perf_counter() - began
        done.set()
        await watcher
    return result


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=bounded(int, 1, 100_000), default=200, help="deliveries to send")
    parser.add_argument("--concurrency", type=bounded(int, 1, 1000), default=200, help="deliveries in flight at once")
    parser.add_argument("--alerts", type=bounded(int, 1, 10_000), default=100, help="alerts in each delivery")
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    payload = body(args.alerts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plans, settings = write_plans(folder, 1, 3600.0)  # evidence never old enough to fire: load only
        config = loopback_config(plans / "topology.yaml", folder / "state", task_queue="evac-bench-receiver")
        with Stack(config):
            receiver, url = start_receiver(config, plans, settings, token, folder)
            try:
                idle = peak_rss_mib(receiver.pid)
                result = asyncio.run(load(url, token, payload, args.deliveries, args.concurrency))
                peak = peak_rss_mib(receiver.pid)
            finally:
                stop(receiver)
    answers = ", ".join(f"{code}: {count}" for code, count in sorted(result.answers.items()))
    p50, p99 = percentile(result.latencies, 0.5), percentile(result.latencies, 0.99)
    health_p99 = percentile(result.health, 0.99) if result.health else float("nan")
    slowest, health_max = max(result.latencies), max(result.health, default=0)
    sent = f"{args.deliveries} of {len(payload):,} bytes ({args.alerts} alerts each), {args.concurrency} at once"
    print(f"deliveries:          {sent}")
    print(f"answers:             {answers}")
    print(f"latency:             p50 {p50:.2f} s, p99 {p99:.2f} s, max {slowest:.2f} s; all in {result.seconds:.1f} s")
    print(f"/healthz meanwhile:  p99 {health_p99 * 1000:.0f} ms, max {health_max * 1000:.0f} ms ({len(result.health)} asked)")
    print(f"receiver RSS:        {idle:.0f} MiB before, peak {peak:.0f} MiB")
    print(f"receiver_load: peak RSS {peak:.0f} MiB, p99 {p99:.2f} s, healthz p99 {health_p99 * 1000:.0f} ms, answers {answers}")


if __name__ == "__main__":
    main()
