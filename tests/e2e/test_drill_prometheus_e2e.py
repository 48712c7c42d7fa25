"""DR drills watched by a real Prometheus (Debian's ``prometheus``) scraping the emulator's
/metrics, and by an HTTP probe of the emulator's per-region probe, driven through the CLI.

A stack of its own (dev server, emulator, worker) for this module, because its worker must
know the Prometheus server (EVAC_PROMETHEUS_URL): Prometheus starts first, on a port chosen up
front, scraping the emulator's port every second; the stack follows; the tests start once
Prometheus has scraped the emulator. Under CI (CI=true) a missing prometheus fails the tests.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from evac.stack import Stack, StackConfig, free_port
from tests.conftest import DEMO
from tests.debian import debian_binary
from tests.e2e.conftest import E2E, _worker_polls

pytestmark = pytest.mark.e2e

CHECKOUT_UC1_HEALTHY = 'evac_emulator_healthy_backends{service="checkout",region="us-central1"}'


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).raise_for_status().json()
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_prometheus(binary: str, folder: Path, port: int, emulator_port: int) -> Prometheus:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "evac-emulator", "static_configs": [{"targets": [f"127.0.0.1:{emulator_port}"]}]}],
    }
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = folder / "prometheus.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Prometheus(f"http://127.0.0.1:{port}", process, log)


@dataclass
class Watched:
    """The module's stack, the Prometheus scraping its emulator, and its folder for plans."""

    e2e: E2E
    prometheus: Prometheus
    folder: Path

    @property
    def probe_url(self) -> str:
        return f"{self.e2e.stack.config.emulator_url}/emulator/v1/probe/checkout/us-central1"

    def plan(self, name: str, conditions: list[dict[str, Any]]) -> Path:
        """The demo drill with these stop conditions, beside a copy of the demo topology."""
        drill = yaml.safe_load((DEMO / "drill.yaml").read_text())
        # Monitoring sees the failed-over state one scrape (1 s) after it is reached: let it
        # catch up before the bake judges it.
        drill["steps"].append({"name": "let monitoring catch up", "kind": "wait", "duration": "2s"})
        drill["drill"] = {"check_interval": "1s", "stop_conditions": conditions, "rto_target": "2m"}
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(drill, sort_keys=False))
        return path

    def serving(self) -> dict[str, Any]:
        """What serves traffic: capacity scalers, group sizes, DNS records."""
        state = self.e2e.state()
        return {
            "scalers": {name: [b["capacityScaler"] for b in s["backends"]] for name, s in state["backendServices"].items()},
            "sizes": {name: g["targetSize"] for name, g in state["instanceGroupManagers"].items()},
            "records": {name: z["rrsets"] for name, z in state["managedZones"].items()},
        }

    def drill_with_outage_mid_bake(self, plan: Path) -> subprocess.CompletedProcess[str]:
        """Run the drill; once `evac status` shows its bake, put us-central1 in an outage."""
        injected = threading.Event()

        def outage_once_baking() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = self.e2e.evac("status", "checkout", "--output", "json")
                if '"phase": "bake"' in status.stdout:
                    self.e2e.admin.post("/emulator/v1/regions/us-central1/outage").raise_for_status()
                    injected.set()
                    return
                time.sleep(0.3)

        injector = threading.Thread(target=outage_once_baking)
        injector.start()
        try:
            return self.e2e.evac("drill", "--plan", str(plan), "--bake", "1m", "--output", "json")
        finally:
            injector.join()
            assert injected.is_set(), "the drill never reached its bake"
            self.e2e.admin.post("/emulator/v1/regions/us-central1/recover").raise_for_status()


@pytest.fixture(scope="module")
def watched_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    binary = debian_binary("prometheus", "prometheus")
    folder = tmp_path_factory.mktemp("evac-prometheus")
    shutil.copy(DEMO / "topology.yaml", folder / "topology.yaml")
    prometheus_port, emulator_port = free_port(), free_port()
    prometheus = start_prometheus(binary, folder, prometheus_port, emulator_port)
    config = StackConfig(
        topology=folder / "topology.yaml",
        state_dir=folder / "stack",
        temporal_port=free_port(),
        emulator_port=emulator_port,
        ui=False,
        operation_delay=0.2,
        warmup=2.0,
        task_queue="evac-prometheus-e2e",
        prometheus_url=prometheus.url,
    )
    try:
        with Stack(config) as stack, httpx.Client(base_url=config.emulator_url, timeout=10) as admin:
            e2e = E2E(stack, admin)
            e2e.wait_for("the worker to poll its task queue", lambda: asyncio.run(_worker_polls(config)))
            e2e.wait_for("Prometheus to scrape the emulator", lambda: _scraped(prometheus), timeout=60)
            yield Watched(e2e, prometheus, folder)
    finally:
        prometheus.stop()


def _scraped(prometheus: Prometheus) -> bool:
    if prometheus.process.poll() is not None:
        raise AssertionError(f"prometheus exited with status {prometheus.process.returncode}: {prometheus.log.read_text()}")
    try:
        return bool(prometheus.query(CHECKOUT_UC1_HEALTHY))
    except httpx.HTTPError:
        return False


@pytest.fixture
def watched(watched_stack: Watched) -> Watched:
    """The module's stack with the emulator back at its seeded world."""
    watched_stack.e2e.admin.post("/emulator/v1/reset").raise_for_status()
    return watched_stack


def test_prometheus_scrapes_what_the_emulator_serves(watched: Watched):
    [sample] = watched.prometheus.query(CHECKOUT_UC1_HEALTHY)

    assert sample["metric"]["job"] == "evac-emulator"
    assert float(sample["value"][1]) == 1


def test_a_drill_watched_by_prometheus_and_a_probe_passes_and_leaves_the_world_as_it_was(watched: Watched):
    plan = watched.plan(
        "watched",
        [
            {"name": "us-central1 healthy (PromQL)", "kind": "prometheus", "query": CHECKOUT_UC1_HEALTHY, "at_least": 2},
            {"name": "us-central1 probe", "kind": "http_probe", "url": watched.probe_url, "timeout": "2s"},
        ],
    )
    before = watched.e2e.state()

    [result] = watched.e2e.evac_json("drill", "--plan", str(plan), "--bake", "3s")

    report = result["drill"]
    assert result["status"] == "succeeded" and report["outcome"] == "passed", report
    promql, probe = report["conditions"]
    assert promql["checks"] >= 2 and promql["breaches"] == 0
    assert promql["worst"] == 3, "Prometheus saw the three scaled-up us-central1 backends"
    assert probe["checks"] >= 2 and probe["breaches"] == 0 and probe["worst"] == 200
    assert watched.e2e.state() == before


def test_an_outage_mid_bake_is_caught_by_the_http_probe_and_rolled_back(watched: Watched):
    plan = watched.plan("probe", [{"name": "us-central1 probe", "kind": "http_probe", "url": watched.probe_url}])
    before = watched.serving()

    result = watched.drill_with_outage_mid_bake(plan)

    assert result.returncode == 1, result.stderr + result.stdout
    [run] = _runs(result)
    assert run["drill"]["outcome"] == "rolled_back"
    assert run["drill"]["breach"].startswith("stop condition 'us-central1 probe' breached: observed 503 (HTTP 503)")
    assert watched.serving() == before


def test_an_outage_mid_bake_is_caught_by_a_promql_condition_and_rolled_back(watched: Watched):
    plan = watched.plan(
        "promql",
        [{"name": "us-central1 healthy (PromQL)", "kind": "prometheus", "query": CHECKOUT_UC1_HEALTHY, "at_least": 2}],
    )
    before = watched.serving()

    result = watched.drill_with_outage_mid_bake(plan)

    assert result.returncode == 1, result.stderr + result.stdout
    [run] = _runs(result)
    assert run["drill"]["outcome"] == "rolled_back"
    assert run["drill"]["breach"].startswith("stop condition 'us-central1 healthy (PromQL)' breached: observed 0")
    assert CHECKOUT_UC1_HEALTHY in run["drill"]["breach"], "the breach names the query"
    assert watched.serving() == before


def _runs(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs
