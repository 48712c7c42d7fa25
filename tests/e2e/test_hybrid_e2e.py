"""Plans across providers, end to end: shop in Google Cloud's europe-west1 and us-central1 (the
emulator) and in the dc-ams data centre (a real HAProxy), its record on real BIND 9 (a primary
and a secondary that transfers from it), all from plans/hybrid/ with free ports. The CLI is driven
as a user would; what changed is read back with `dig` and HAProxy's own socket, not through Evac."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from evac.stack import free_port
from tests.debian import debian_binary
from tests.e2e.conftest import E2E, scaler, world_stack

HYBRID = Path(__file__).resolve().parents[2] / "plans" / "hybrid"
EW1, DC = "203.0.113.30", "192.0.2.30"


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, dict[str, Any]]]:
    for program, package in (("named", "bind9"), ("haproxy", "haproxy"), ("dig", "bind9-dnsutils")):
        debian_binary(program, package)
    state_dir = tmp_path_factory.mktemp("evac-hybrid")
    topology = yaml.safe_load((HYBRID / "topology.yaml").read_text())
    shop = topology["services"]["shop"]
    shop["dns"]["servers"] = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    shop["regions"]["dc-ams"]["haproxy"]["api"] = f"127.0.0.1:{free_port()}"
    path = state_dir / "topology.yaml"
    path.write_text(yaml.safe_dump(topology))
    for plan in ("failover.yaml", "drill.yaml", "from-dc.yaml"):
        (state_dir / plan).write_text((HYBRID / plan).read_text())
    with world_stack(state_dir, "evac-hybrid", topology=path, warmup=1.0) as e2e:
        yield e2e, shop


def dig(server: str) -> list[str]:
    host, port = server.rsplit(":", 1)
    found = subprocess.run(
        [debian_binary("dig", "bind9-dnsutils"), "+short", "+norecurse", f"@{host}", "-p", port, "www.shop.internal.", "A"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return sorted(found.split())


def served(e2e: E2E, shop: dict[str, Any], address: str) -> None:
    """Until both of the zone's servers answer ``address`` (the secondary follows by NOTIFY)."""
    e2e.wait_for(f"both DNS servers to answer {address}", lambda: all(dig(s) == [address] for s in shop["dns"]["servers"]))


def haproxy_servers(shop: dict[str, Any]) -> dict[str, str]:
    """Each dc-ams server's admin state, asked of HAProxy's Runtime API directly."""
    host, port = shop["regions"]["dc-ams"]["haproxy"]["api"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as api:
        api.sendall(b"show servers state shop\n")
        answer = b""
        while chunk := api.recv(65536):
            answer += chunk
    lines = [line.split() for line in answer.decode().splitlines()[1:] if line and not line.startswith("#")]
    header = answer.decode().splitlines()[1].lstrip("# ").split()
    rows = [dict(zip(header, line, strict=False)) for line in lines]
    return {row["srv_name"]: "drain" if int(row["srv_admin_state"]) & 0x18 else "ready" for row in rows}


def with_bake(e2e: E2E, plan: str) -> Path:
    """``plan`` with a long bake after its steps: a run to abort while it holds."""
    folder = e2e.stack.config.state_dir
    document = yaml.safe_load((folder / plan).read_text())
    document["steps"].append({"name": "bake", "kind": "wait", "duration": "1h"})
    path = folder / f"baked-{plan}"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_drill_from_the_cloud_into_the_data_centre_bakes_and_fails_back(hybrid: tuple[E2E, dict[str, Any]]) -> None:
    e2e, shop = hybrid
    folder = e2e.stack.config.state_dir
    served(e2e, shop, EW1)
    [result] = e2e.evac_json("drill", "--plan", str(folder / "drill.yaml"), "--bake", "5s")
    assert result["status"] == "succeeded" and result["drill"]["outcome"] == "passed", result
    report = result["drill"]
    assert [c["kind"] for c in report["conditions"]] == ["backend_health"]
    assert all(c["checks"] >= 1 and c["breaches"] == 0 for c in report["conditions"])
    assert report["mismatches"] == [] and report["failback_seconds"] > 0
    served(e2e, shop, EW1)  # failed back: both servers answer europe-west1 again
    assert scaler(e2e.state(), "shop-backend", "shop-ew1") == 1.0


def test_an_evacuation_into_the_data_centre_and_its_fail_back(hybrid: tuple[E2E, dict[str, Any]]) -> None:
    """A data centre's capacity is what is racked there: the evacuation sizes it by its servers,
    plans no scale-up, and moves shop there; the fail-back restores both providers."""
    e2e, shop = hybrid
    folder = e2e.stack.config.state_dir
    result = e2e.evac(
        "evacuate", "--region", "europe-west1", "--to", "dc-ams", "--topology", str(folder / "topology.yaml"),
        "--reason", "hybrid evacuation", "--output", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    record = json.loads(result.stdout)
    [service] = record["services"]
    assert service["status"] == "succeeded" and service["target"] == "dc-ams"
    assert "fixed capacity: 2 backends" in service["capacity"], service
    served(e2e, shop, DC)
    assert scaler(e2e.state(), "shop-backend", "shop-ew1") == 0.0

    back = e2e.evac_json("failback", "evacuation/europe-west1", "--reason", "europe-west1 is back")
    assert back["status"] == "succeeded", back
    served(e2e, shop, EW1)
    assert scaler(e2e.state(), "shop-backend", "shop-ew1") == 1.0


def test_across_providers_a_failover_an_abort_that_restores_all_and_a_dead_data_centre(
    hybrid: tuple[E2E, dict[str, Any]],
) -> None:
    e2e, shop = hybrid
    folder = e2e.stack.config.state_dir

    # Ready across providers: HAProxy's servers, BIND's record, Google Cloud's side and IAM.
    ready = e2e.evac("readiness", "check", str(folder / "failover.yaml"), "--output", "json")
    # (ready, or with the warning that shop has no passed drill when this test runs alone)
    assert ready.returncode == 0 and json.loads(ready.stdout)["state"] != "not_ready", ready.stdout + ready.stderr

    # Google Cloud into the data centre: europe-west1 drained, the record on BIND at dc-ams.
    result = e2e.evac_json("failover", "--plan", str(folder / "failover.yaml"), "--reason", "hybrid e2e")
    assert [r["status"] for r in result] == ["succeeded"]
    served(e2e, shop, DC)
    assert scaler(e2e.state(), "shop-backend", "shop-ew1") == 0.0
    assert haproxy_servers(shop) == {"ams1": "ready", "ams2": "ready"}

    # Back to the cloud, aborted while it bakes: the scale-up (Google Cloud), the drain (HAProxy)
    # and the record (BIND) are all restored, read back from each daemon itself.
    started = e2e.evac("failover", "--plan", str(with_bake(e2e, "from-dc.yaml")), "--reason", "abort me", "--no-wait")
    assert started.returncode == 0, started.stderr
    e2e.wait_for("the bake to start", lambda: e2e.step_status("shop", 5) == "running", timeout=120)
    served(e2e, shop, EW1)
    assert haproxy_servers(shop) == {"ams1": "drain", "ams2": "drain"}
    assert e2e.evac("abort", "shop", "--reason", "restore both").returncode == 0
    final = e2e.evac_json("status", "shop", "--watch", expect=1)
    assert final["status"] == "cancelled", final
    served(e2e, shop, DC)
    assert haproxy_servers(shop) == {"ams1": "ready", "ams2": "ready"}
    groups = e2e.state()["instanceGroupManagers"]
    assert next(g["targetSize"] for key, g in groups.items() if key.endswith("/shop-ew1")) == 2

    # The data centre dies, HAProxy with it: the run makes no wait on it (its drain is skipped and
    # owed) and still moves the traffic by DNS.
    haproxy = next(name for name in e2e.stack.processes if name.startswith("haproxy"))
    e2e.stack.processes[haproxy].kill()
    e2e.stack.processes[haproxy].wait(10)
    gone = e2e.evac_json("failover", "--plan", str(folder / "from-dc.yaml"), "--reason", "dc-ams is down")
    [run] = gone
    assert run["status"] == "succeeded", run
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded", "succeeded", "skipped", "succeeded"]
    assert run["ungraceful"] and "dc-ams" in json.dumps(run["ungraceful"])
    served(e2e, shop, EW1)
