"""Benchmark: how long Evac takes to fail N services over, on the embedded stack.

Starts the Temporal dev server, the emulator (fast operations) and one worker on free
loopback ports, generates a topology with N services, runs one plan over all of them and
prints wall time, per-run durations and the orchestration overhead per step.

    .venv/bin/python bench/failover_throughput.py [--services 20] [--operation-delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import loopback_config  # noqa: E402
from evac import control  # noqa: E402
from evac.config import connect_temporal  # noqa: E402
from evac.plan import load_plan  # noqa: E402
from evac.runs import FailoverProgress, RunStatus, Trigger  # noqa: E402
from evac.stack import Stack, StackConfig  # noqa: E402
from evac.topology import load_topology  # noqa: E402


def write_world(folder: Path, services: int) -> tuple[Path, Path]:
    topology = {
        "project": "evac-bench",
        "dns_zones": {"bench-zone": {"dns_name": "bench.example.com."}},
        "services": {
            f"svc{i}": {
                "primary_region": "europe-west1",
                "dns": {"managed_zone": "bench-zone", "record": f"svc{i}.bench.example.com."},
                "regions": {
                    "europe-west1": {
                        "backend_service": f"svc{i}-backend",
                        "instance_group": f"svc{i}-ew1",
                        "address": f"203.0.{i // 250}.{i % 250 + 1}",
                    },
                    "us-central1": {
                        "backend_service": f"svc{i}-backend",
                        "instance_group": f"svc{i}-uc1",
                        "address": f"198.51.{i // 250}.{i % 250 + 1}",
                    },
                },
            }
            for i in range(services)
        },
        "emulator": {"default_group_size": 2},
    }
    plan = {
        "name": "bench",
        "services": [f"svc{i}" for i in range(services)],
        "source": "europe-west1",
        "target": "us-central1",
        "steps": [
            {"kind": "scale_target", "min_size": 3},
            {"kind": "verify_health", "min_healthy": 3, "timeout": "2m", "interval": "0.5s"},
            {"kind": "drain", "capacity_scaler": 0},
            {"kind": "shift_dns", "ttl": 60},
        ],
    }
    (folder / "topology.yaml").write_text(yaml.safe_dump(topology))
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    return folder / "plan.yaml", folder / "topology.yaml"


async def run(config: StackConfig, plan_path: Path, topology_path: Path) -> tuple[float, list[FailoverProgress]]:
    topology = load_topology(topology_path)
    plan = load_plan(plan_path, topology)
    client = await connect_temporal(config.temporal_address, "default")
    started_at = time.monotonic()
    runs = await control.start_failover(client, control.failover_inputs(plan, topology, Trigger(by="bench")), config.task_queue)
    results = [
        await client.get_workflow_handle(r.workflow_id, run_id=r.run_id, result_type=FailoverProgress).result() for r in runs
    ]
    return time.monotonic() - started_at, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--operation-delay", type=float, default=0.1, help="emulator seconds per operation")
    parser.add_argument("--warmup", type=float, default=0.5, help="emulator seconds until a new instance serves")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan_path, topology_path = write_world(folder, args.services)
        config = loopback_config(
            topology_path,
            folder / "state",
            operation_delay=args.operation_delay,
            warmup=args.warmup,
        )
        with Stack(config):
            wall, results = asyncio.run(run(config, plan_path, topology_path))
    assert all(r.status == RunStatus.SUCCEEDED for r in results), [r.error for r in results]
    durations = sorted((r.ended_at - r.started_at).total_seconds() for r in results)  # type: ignore[operator]
    steps = [s for r in results for s in r.steps]
    # Time per step beyond the cloud's own operation time: orchestration overhead.
    mutating = [s.duration_seconds or 0.0 for s in steps if s.kind in ("drain", "shift_dns")]
    print(f"services failed over:         {len(results)} (one workflow each, one worker)")
    print(f"emulator operation delay:     {args.operation_delay:.2f}s, warm-up {args.warmup:.2f}s")
    print(f"wall time, start to all done: {wall:.2f}s")
    print(
        f"per-run duration p50 / p95:   {statistics.median(durations):.2f}s / {durations[int(0.95 * (len(durations) - 1))]:.2f}s"
    )
    print(f"drain/shift_dns step p50:     {statistics.median(mutating):.2f}s (includes guard reads and one operation)")


if __name__ == "__main__":
    main()
