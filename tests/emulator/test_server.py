"""``python -m emulator`` as an operator runs it: it serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from evac.stack import free_port
from tests.conftest import DEMO

DEMO_TOPOLOGY = DEMO / "topology.yaml"


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            httpx.get(f"{url}/emulator/v1/healthz", timeout=1).raise_for_status()
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the emulator did not start serving")


def test_module_serves_and_on_sigterm_finishes_the_calls_in_flight_before_exiting() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--topology",
            str(DEMO_TOPOLOGY),
            "--port",
            str(port),
            "--operation-delay",
            "30",
            "--wait-deadline",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_serving(url, process)
        service = f"{url}/compute/v1/projects/evac-demo/global/backendServices/checkout-backend"
        operation = httpx.patch(service, json={}).raise_for_status().json()
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                httpx.post, f"{url}/compute/v1/projects/evac-demo/global/operations/{operation['name']}/wait", timeout=10
            )
            time.sleep(0.3)  # the wait call is now in flight

            process.send_signal(signal.SIGTERM)

            assert waiting.result().status_code == 200, "the call in flight was answered"
        _, stderr = process.communicate(timeout=10)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it.
        assert process.returncode == -signal.SIGTERM
        assert b"Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_module_refuses_a_bad_topology_in_one_message(tmp_path: Path) -> None:
    topology = tmp_path / "topology.yaml"
    topology.write_text("project: evac-demo\nservices: {}\n")

    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--topology", str(topology), "--port", str(free_port())],
        capture_output=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert b"services: must have at least one entry" in result.stderr
    assert b"Traceback" not in result.stderr


def test_module_refuses_a_foreign_state_file_in_one_message(tmp_path: Path) -> None:
    state_file = tmp_path / "world.json"
    state_file.write_text('{"hello": "world"}')

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "--topology",
            str(DEMO_TOPOLOGY),
            "--port",
            str(free_port()),
            "--state-file",
            str(state_file),
        ],
        capture_output=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert b"is not a state file of this emulator" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_second_sigterm_stops_it_at_once_though_a_call_still_hangs() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--topology", str(DEMO_TOPOLOGY), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_serving(url, process)
        httpx.post(f"{url}/emulator/v1/faults", json={"path": "*europe-west1*", "latency": 3600}).raise_for_status()
        with ThreadPoolExecutor(1) as pool:
            hanging = pool.submit(
                httpx.get, f"{url}/compute/v1/projects/evac-demo/regions/europe-west1/instanceGroupManagers/checkout-ew1"
            )
            _until(lambda: any(f["struck"] for f in _faults(url)), "the fault to hold the call")
            process.send_signal(signal.SIGTERM)  # graceful: would wait an hour for the call in flight
            # Until it took the first in (two at once may arrive as one).
            _until(lambda: not _serving(url), "the emulator to stop serving after the first SIGTERM")
            process.send_signal(signal.SIGTERM)  # the second: at once
            process.communicate(timeout=30)  # (a guard: without the second signal's force, an hour)
            assert process.returncode is not None
            try:
                hanging.result(timeout=30)
            except httpx.HTTPError:
                pass  # the connection went with the process: what an abandoned call gets
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _until(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {seconds:g}s: {what}")
        time.sleep(0.05)


def _serving(url: str) -> bool:
    try:
        httpx.get(f"{url}/emulator/v1/healthz", timeout=1)
        return True
    except httpx.TransportError:
        return False


def _faults(url: str) -> list[dict[str, int]]:
    return list(httpx.get(f"{url}/emulator/v1/faults").json()["faults"])
