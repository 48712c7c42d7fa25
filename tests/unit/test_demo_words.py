"""What `evac demo` says about the links it prints: they answer only while it runs (the stack
stops with it), and how to get the runs back. The stack and the run are stand-ins here; the
real ones run in `make demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evac.cli import app
from evac.cli import dev as dev_cli


class _StoppedStack:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("code", [0, 1])
def test_the_demo_says_its_web_ui_links_stop_answering_when_it_stops(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: int):
    stack = _StoppedStack()
    monkeypatch.setattr(dev_cli, "_start_stack", lambda config: stack)
    monkeypatch.setattr(dev_cli, "run_async", lambda make: code)
    monkeypatch.setattr(dev_cli, "_show_world", lambda *args: None)
    env: dict[str, Any] = {"EVAC_CONFIG": "/nonexistent/evac.toml"}
    result = CliRunner().invoke(app, ["demo", "--state-dir", str(tmp_path / "demo")], env=env)
    assert result.exit_code == code and stack.stopped
    text = " ".join(result.stdout.split())
    assert "(while the demo runs: 'evac demo --keep' keeps them up after it)" in text
    assert (
        f"the stack is stopped, so the Web UI links above no longer answer: 'evac dev up --state-dir {tmp_path / 'demo'}' "
        "brings these runs back, or run 'evac demo --keep'"
    ) in text
