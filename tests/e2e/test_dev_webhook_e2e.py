"""`evac dev webhook`: the local receiver a new user points the worker's notifications at."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from evac.stack import find_binary, free_port

pytestmark = pytest.mark.e2e


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [find_binary("evac"), "dev", "webhook", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/hooks/evac"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"not json", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("evac dev webhook did not start listening")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    return stdout, stderr


def test_it_prints_one_line_per_notification_and_stops_on_ctrl_c():
    process, url = _start()
    body = {"version": 1, "event": "ended", "service": "checkout", "kind": "failover", "status": "succeeded"}
    assert httpx.post(url, json=body, timeout=5).status_code == 200
    assert httpx.post(url, json={"text": "Evac: checkout failover started"}, timeout=5).status_code == 200
    assert httpx.post(url, content=b"{broken", timeout=5).status_code == 400
    stdout, stderr = _stop(process)
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    assert lines[0].endswith("ended checkout failover status=succeeded")
    assert lines[1].endswith("slack: Evac: checkout failover started")
    assert "receiving notifications" in stderr and "stopped" in stderr


def test_it_can_rehearse_a_failing_receiver_and_print_json():
    process, url = _start("--status", "500", "--output", "json")
    answer = httpx.post(url, json={"event": "started", "service": "catalog"}, timeout=5)
    assert answer.status_code == 500
    stdout, _ = _stop(process)
    assert stdout.strip() == '{"event":"started","service":"catalog"}'


def test_a_port_in_use_is_refused_in_one_sentence():
    process, url = _start()
    port = url.split(":")[2].split("/")[0]
    try:
        second = subprocess.run(
            [find_binary("evac"), "dev", "webhook", "--port", port], capture_output=True, text=True, timeout=30
        )
    finally:
        _stop(process)
    assert second.returncode == 4
    assert "cannot receive on 127.0.0.1:" in second.stderr
