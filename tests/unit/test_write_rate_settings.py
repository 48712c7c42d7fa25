"""The shared write rate limit's setting, the writes worker's concurrency, and the writes task
queue's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.registry import all_activities
from evac.config import MUTATING_ACTIVITIES, ConfigError, Settings, activity_name, writes_task_queue
from evac.resources import ActivityName
from providers.gcp.clients import GcpClients


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("EVAC_CONFIG", str(path))
    monkeypatch.delenv("EVAC_WRITE_RATE_LIMIT", raising=False)
    monkeypatch.delenv("EVAC_WRITE_CONCURRENCY", raising=False)
    return path


def test_the_default_is_20_writes_a_second(no_config: Path) -> None:
    assert Settings.load().write_rate_limit == 20.0


def test_the_environment_sets_it_over_the_config_file_and_a_flag_over_both(
    no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_config.write_text("write_rate_limit = 12\n")
    assert Settings.load().write_rate_limit == 12.0
    monkeypatch.setenv("EVAC_WRITE_RATE_LIMIT", "2.5")
    assert Settings.load().write_rate_limit == 2.5
    assert Settings.load(write_rate_limit=7.0).write_rate_limit == 7.0


@pytest.mark.parametrize("value", ["fast", "0", "-3", "nan", "inf", "1e9", ""])
def test_a_bad_environment_value_is_refused_naming_the_variable(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EVAC_WRITE_RATE_LIMIT", value)
    if value == "":  # an empty variable counts as unset, like every EVAC_* variable
        assert Settings.load().write_rate_limit == 20.0
        return
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    message = str(raised.value)
    assert "write_rate_limit (EVAC_WRITE_RATE_LIMIT or " in message
    assert repr(value) in message


@pytest.mark.parametrize("line", ["write_rate_limit = true", 'write_rate_limit = "lots"', "write_rate_limit = 0"])
def test_a_bad_config_file_value_is_refused_naming_the_file(no_config: Path, line: str) -> None:
    no_config.write_text(line + "\n")
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    assert str(no_config) in str(raised.value)
    assert "write_rate_limit" in str(raised.value)


def test_the_writes_worker_runs_200_mutations_at_once_unless_told_otherwise(
    no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.load().write_concurrency == 200
    no_config.write_text("write_concurrency = 600\n")
    assert Settings.load().write_concurrency == 600
    monkeypatch.setenv("EVAC_WRITE_CONCURRENCY", "40")
    assert Settings.load().write_concurrency == 40


@pytest.mark.parametrize("value", ["many", "0", "-1", "2.5", "1e3", "2001"])
def test_a_bad_write_concurrency_is_refused_naming_the_variable(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EVAC_WRITE_CONCURRENCY", value)
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    message = str(raised.value)
    assert "write_concurrency (EVAC_WRITE_CONCURRENCY or " in message and repr(value) in message


@pytest.mark.parametrize("line", ["write_concurrency = true", "write_concurrency = 2.5", 'write_concurrency = "lots"'])
def test_a_bad_write_concurrency_in_the_config_file_is_refused_naming_the_file(no_config: Path, line: str) -> None:
    no_config.write_text(line + "\n")
    with pytest.raises(ConfigError) as raised:
        Settings.load()
    assert str(no_config) in str(raised.value) and "write_concurrency" in str(raised.value)


def test_the_writes_queue_is_named_after_the_task_queue() -> None:
    assert writes_task_queue("evac") == "evac-writes"
    assert writes_task_queue("evac-e2e") == "evac-e2e-writes"


def test_the_mutating_activities_are_the_registered_ones_that_change_resources() -> None:
    registered = {activity_name(fn) for fn in all_activities(GcpClients.create("http://127.0.0.1:9", "p"))}
    assert {
        ActivityName.SET_BACKEND_CAPACITY,
        ActivityName.RESIZE_GROUP,
        ActivityName.SET_DNS_RECORD,
        ActivityName.SET_DATABASE_ROLE,
        ActivityName.SET_DATABASE_LEADER,
    } == MUTATING_ACTIVITIES
    assert MUTATING_ACTIVITIES <= registered
