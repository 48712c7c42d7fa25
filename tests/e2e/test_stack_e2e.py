"""The embedded stack on a Temporal database an older Evac wrote: the dev server registers its
--search-attribute flags only in a new database, so the stack adds the attributes added since."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from evac import search_attributes
from evac.stack import Stack, StackConfig, find_binary, free_port
from tests.conftest import DEMO

pytestmark = pytest.mark.e2e


def _attributes(address: str) -> str:
    listed = subprocess.run(
        [find_binary("temporal"), "operator", "search-attribute", "list", "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return listed.stdout if listed.returncode == 0 else ""


def test_a_database_from_an_older_evac_gets_the_search_attributes_added_since(tmp_path: Path):
    port = free_port()
    old = subprocess.Popen(
        [
            find_binary("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
            "--db-filename", str(tmp_path / "temporal.db"), "--search-attribute", "EvacService=Keyword",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "EvacService" not in _attributes(f"127.0.0.1:{port}"):
            assert time.monotonic() < deadline, "the old dev server did not come up"
            time.sleep(0.5)
        assert "EvacOutcome" not in _attributes(f"127.0.0.1:{port}")
    finally:
        old.terminate()
        old.wait(30)

    config = StackConfig(topology=DEMO / "topology.yaml", state_dir=tmp_path, temporal_port=free_port(), ui=False)
    stack = Stack(config)
    try:
        stack.start_temporal()
        listed = _attributes(config.temporal_address)
    finally:
        stack.stop()
    missing = [key.name for key in search_attributes.ALL if key.name not in listed]
    assert missing == [], missing
    assert "EvacRecoverySeconds" in listed and "Double" in listed.split("EvacRecoverySeconds")[1].splitlines()[0]
