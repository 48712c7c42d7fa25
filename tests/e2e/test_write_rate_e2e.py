"""The shared write rate limit on a real stack: 30 services fail over at once against an emulator
whose project accepts QUOTA writes a second, with a worker whose ``write_rate_limit`` is QUOTA.

Temporal's task-queue rate limit is a token bucket whose burst is one second's worth of writes
(docs/architecture.md, "Write rate limit"): at the start of a burst of runs it may dispatch up
to twice the limit within one second, and the writes over the quota are refused with 429 and
retried after a backoff. So the emulator's log shows at most QUOTA accepted writes in any
second (the emulator's own guarantee), a handful of refusals (bounded below), every run
succeeds regardless, and the whole takes at least writes ÷ QUOTA: Evac slowed down to the quota
instead of pushing through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.generate import generate_topology
from tests.e2e.conftest import E2E, most_in_one_second, quota_stack

pytestmark = pytest.mark.e2e

SERVICES = 30
QUOTA = 6  # writes a second: the emulator's quota and the worker's write_rate_limit
SOURCE, TARGET = "europe-west1", "us-central1"
WRITES_PER_SERVICE = 2  # the plan's drain and DNS shift


def _world(folder: Path) -> Path:
    """SERVICES services whose primary region is SOURCE, and a plan failing all of them over."""
    topology = generate_topology(2 * SERVICES, regions=[SOURCE, TARGET])
    services = [name for name, service in topology["services"].items() if service["primary_region"] == SOURCE]
    assert len(services) == SERVICES
    (folder / "topology.yaml").write_text(yaml.safe_dump(topology))
    plan = {
        "name": "write-rate",
        "services": services,
        "source": SOURCE,
        "target": TARGET,
        "guards": {"min_healthy_target": 1},
        "steps": [
            {"name": "drain", "kind": "drain", "capacity_scaler": 0},
            {"name": "shift DNS", "kind": "shift_dns", "ttl": 60},
        ],
    }
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    return folder / "plan.yaml"


@pytest.fixture(scope="module")
def rate_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, Path]]:
    folder = tmp_path_factory.mktemp("evac-write-rate")
    plan = _world(folder)
    with quota_stack(folder / "topology.yaml", folder / "state", QUOTA, "evac-write-rate-e2e") as e2e:
        yield e2e, plan


def _seconds(entries: list[dict[str, Any]]) -> list[float]:
    return sorted(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries)


def _timeline(writes: list[dict[str, Any]]) -> str:
    """Writes taken in and refused, second by second from the first (for a failure's message)."""
    start = _seconds(writes)[0]
    taken: dict[int, int] = {}
    refused: dict[int, int] = {}
    for entry in writes:
        second = int(_seconds([entry])[0] - start)
        taken[second] = taken.get(second, 0) + 1
        if entry["effect"] != "applied":
            refused[second] = refused.get(second, 0) + 1
    return ", ".join(f"{s}s: {taken[s]} ({refused.get(s, 0)} refused)" for s in sorted(taken))


def test_thirty_failovers_at_once_keep_to_the_write_quota_and_all_succeed(rate_stack: tuple[E2E, Path]):
    e2e, plan = rate_stack
    result = e2e.evac("failover", "--plan", str(plan), "--wait", "--reason", "write rate e2e", "--output", "json", timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    runs = json.loads(result.stdout)

    # Every run succeeded: a write refused with 429 was retried after a backoff, never a failure.
    assert len(runs) == SERVICES
    assert {r["status"] for r in runs} == {"succeeded"}
    assert all(step["status"] == "succeeded" and step["detail"] == "changed" for r in runs for step in r["steps"])

    writes = [e for e in e2e.requests() if e["effect"] is not None]
    accepted = _seconds([e for e in writes if e["effect"] == "applied"])
    refused = [e for e in writes if e["effect"] != "applied"]
    assert len(accepted) == SERVICES * WRITES_PER_SERVICE
    assert {e["effect"] for e in refused} <= {"refused: 429 rateLimitExceeded"}
    assert most_in_one_second(accepted) <= QUOTA
    # A few writes still reach the cloud a little early (the worker paces the starts of writes,
    # and an activity reads before it writes): measured 8 to 9 refused with 429 over repeated
    # runs at write_rate_limit = quota, 1 to 3 at 90 % of it; without the limit, 56 (half of all
    # attempts). A quarter of the writes tells the two apart with room for a loaded machine.
    assert len(refused) <= len(accepted) // 4, f"{len(refused)} writes refused: the limit did not hold: {_timeline(writes)}"
    # Slowed down to the quota: the writes took at least as long as the quota allows (less one
    # second's worth, the burst).
    floor = len(accepted) / QUOTA
    assert accepted[-1] - accepted[0] >= 0.8 * floor
