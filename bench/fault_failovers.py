"""Benchmark: how the demo failover fares when the cloud answers a share of calls with 503.

Starts the embedded stack (Temporal dev server, emulator, one worker) on free loopback ports
and runs the demo failover (plans/demo/failover.yaml, two services) N times through the
``evac`` CLI, as an operator would. Before each run the emulator is reset and a fault
answering 503 to a share R of every Compute and DNS call is injected (seed: --seed + run).
Each run ends one of three ways:

* succeeded — both services failed over;
* restored — a run rolled back and what serves traffic (capacity scalers, group sizes, DNS
  records) is exactly as before the run;
* other — anything else (a rollback that left something changed, a CLI error, a timeout).

    .venv/bin/python bench/fault_failovers.py [--rate 0.2] [--runs 20] [--seed 1]

The last line is the summary: ``faults rate R: succeeded S/N, restored X, other Y``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import loopback_config  # noqa: E402
from evac.stack import Stack, StackConfig, find_binary  # noqa: E402

DEMO = ROOT / "plans" / "demo"
RUN_TIMEOUT_SECONDS = 900


def serving(state: dict[str, Any]) -> dict[str, Any]:
    """What serves traffic, from an emulator snapshot: scalers, group sizes, DNS records."""
    scalers = {
        f"{kind}/{name}": {b["group"].rsplit("/", 1)[-1]: b["capacityScaler"] for b in service["backends"]}
        for kind in ("backendServices", "regionBackendServices")
        for name, service in state.get(kind, {}).items()
    }
    sizes = {name: group["targetSize"] for name, group in state["instanceGroupManagers"].items()}
    records = {
        zone: sorted((r["name"], r["type"], r.get("ttl"), tuple(r.get("rrdatas", []))) for r in body["rrsets"])
        for zone, body in state["managedZones"].items()
    }
    return {"scalers": scalers, "sizes": sizes, "records": records}


def run_once(config: StackConfig, admin: httpx.Client, rate: float, seed: int) -> tuple[str, str]:
    """One failover under faults: its outcome and a one-line detail."""
    admin.post("/emulator/v1/reset").raise_for_status()
    before = serving(admin.get("/emulator/v1/state").raise_for_status().json())
    admin.post("/emulator/v1/faults", json={"status": 503, "rate": rate, "seed": seed}).raise_for_status()
    env = {**os.environ, **config.client_env()}
    try:
        result = subprocess.run(
            [find_binary("evac"), "failover", "--plan", str(DEMO / "failover.yaml"), "--wait",
             "--reason", f"bench 503 rate {rate} seed {seed}", "--output", "json"],
            env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "other", f"no answer in {RUN_TIMEOUT_SECONDS}s"
    struck = admin.get("/emulator/v1/faults").json()["faults"][0]["struck"]
    admin.delete("/emulator/v1/faults").raise_for_status()
    try:
        runs = json.loads(result.stdout)
    except json.JSONDecodeError:
        return "other", f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[:200]}"
    statuses = {r["service"]: r["status"] for r in runs}
    detail = f"{struck} calls struck; " + ", ".join(f"{s} {st}" for s, st in sorted(statuses.items()))
    if all(st == "succeeded" for st in statuses.values()):
        return "succeeded", detail
    after = serving(admin.get("/emulator/v1/state").raise_for_status().json())
    errors = "; ".join(str(r.get("error")) for r in runs if r["status"] != "succeeded")
    if all(st in ("succeeded", "rolled_back") for st in statuses.values()) and after == before:
        return "restored", f"{detail}; {errors}"[:300]
    return "other", f"{detail}; world {'as before' if after == before else 'changed'}; {errors}"[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.2, help="share of cloud calls answered 503")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="fault seed of the first run (then +1 per run)")
    parser.add_argument("--operation-delay", type=float, default=0.2, help="emulator seconds per operation")
    parser.add_argument("--warmup", type=float, default=0.5, help="emulator seconds until a new instance serves")
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = loopback_config(
            DEMO / "topology.yaml",
            Path(tmp) / "state",
            operation_delay=args.operation_delay,
            warmup=args.warmup,
            task_queue="evac-bench-faults",
        )
        with Stack(config), httpx.Client(base_url=config.emulator_url, timeout=30) as admin:
            for i in range(args.runs):
                started = time.monotonic()
                outcome, detail = run_once(config, admin, args.rate, args.seed + i)
                outcomes[outcome] += 1
                print(
                    f"run {i + 1:>3}/{args.runs} seed {args.seed + i}: {outcome:<9} {time.monotonic() - started:6.1f}s  {detail}",
                    flush=True,
                )
    print(
        f"faults rate {args.rate:g}: succeeded {outcomes['succeeded']}/{args.runs}, "
        f"restored {outcomes['restored']}, other {outcomes['other']}"
    )


if __name__ == "__main__":
    main()
