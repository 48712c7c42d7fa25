"""Durations read and written the way users write them; a plan's digest identifies what it does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evac.documents import DocumentError
from evac.plan import Plan, format_duration, load_plan, parse_duration
from evac.topology import Topology
from tests.conftest import DEMO
from tests.unit.docs import edit, errors_of, line_of, write

# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds", "canonical"),
    [
        ("90s", 90, "1m30s"),
        ("1m30s", 90, "1m30s"),
        ("0.25s", 0.25, "0.25s"),
        ("1h2m5.5s", 3725.5, "1h2m5.5s"),
        ("1h", 3600, "1h"),
        ("5m", 300, "5m"),
        ("1h30m", 5400, "1h30m"),
        ("1h90m", 9000, "2h30m"),
        ("0s", 0, "0s"),
        ("100h", 360000, "100h"),
        (" 30s ", 30, "30s"),
        (90, 90, "1m30s"),
        (0.25, 0.25, "0.25s"),
        (0, 0, "0s"),
        (3599.5, 3599.5, "59m59.5s"),
        (86400, 86400, "24h"),
        ("30", 30, "30s"),
        (" 2.5 ", 2.5, "2.5s"),
        ("10.123456s", 10.123456, "10.123456s"),
        ("0.00001s", 0.00001, "0.00001s"),
        ("0.000001s", 0.000001, "0.000001s"),
        ("1.100000s", 1.1, "1.1s"),
        ("1h0.5s", 3600.5, "1h0.5s"),
        ("720h", 30 * 86400, "720h"),
        ("719h59m59.999999s", 30 * 86400 - 0.000001, "719h59m59.999999s"),
    ],
)
def test_duration_round_trip(written: str | float, seconds: float, canonical: str) -> None:
    parsed = parse_duration(written)
    assert parsed == timedelta(seconds=seconds)
    assert format_duration(parsed) == canonical
    assert parse_duration(canonical) == parsed
    assert format_duration(parse_duration(canonical)) == canonical


def test_timedelta_passes_through() -> None:
    assert parse_duration(timedelta(minutes=2)) == timedelta(minutes=2)


@pytest.mark.parametrize(
    "micros",
    [1, 9, 10, 999_999, 1_000_001, 10_123_456, 59_999_999, 3_599_999_999, 3_600_000_001, 2_592_000_000_000]
    + [7**k for k in range(1, 15)],
)
def test_every_microsecond_duration_round_trips_exactly(micros: int) -> None:
    value = timedelta(microseconds=micros)
    text = format_duration(value)
    assert "e" not in text
    assert parse_duration(text) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "'5 minutes' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("-5s", "'-5s' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("1h 30m", "'1h 30m' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("1d", "'1d' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("5S", "'5S' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("1.5h", "'1.5h' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("30s5m", "'30s5m' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("", "'' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("PT5M", "'PT5M' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ([30], "'[30]' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        (-1, "a duration cannot be negative"),
        (-0.5, "a duration cannot be negative"),
        (True, "a duration is a number of seconds or text like '30s', '5m', '1h30m'"),
        (False, "a duration is a number of seconds or text like '30s', '5m', '1h30m'"),
        (None, "no duration given (use seconds or text like '30s', '5m', '1h30m')"),
        ("-30", "'-30' is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        (float("nan"), "NaN is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        (float("inf"), "a duration cannot be longer than 30 days (720h)"),
        (float("-inf"), "a duration cannot be negative"),
        (1e300, "a duration cannot be longer than 30 days (720h)"),
        (10**400, "a duration cannot be longer than 30 days (720h)"),
        ("99999999999h", "a duration cannot be longer than 30 days (720h)"),
        ("9" * 400 + "s", "a duration cannot be longer than 30 days (720h)"),
        ("721h", "a duration cannot be longer than 30 days (720h)"),
        ("720h0.000001s", "a duration cannot be longer than 30 days (720h)"),
        (30 * 86400 + 1, "a duration cannot be longer than 30 days (720h)"),
        (timedelta(days=31), "a duration cannot be longer than 30 days (720h)"),
        (timedelta(seconds=-1), "a duration cannot be negative"),
    ],
)
def test_bad_duration_is_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


def test_plan_durations_are_written_canonically_in_json(tmp_path: Path, demo_topology: Topology) -> None:
    plan = load_plan(DEMO / "failover.yaml", demo_topology)
    dumped = plan.model_dump(mode="json")
    assert dumped["steps"][1]["timeout"] == "2m" and dumped["steps"][1]["interval"] == "1s"
    assert dumped["steps"][3]["duration"] == "3s"
    assert dumped["retries"]["initial_interval"] == "1s" and dumped["retries"]["maximum_interval"] == "30s"


def test_plan_survives_the_json_round_trip_workflows_use(demo_topology: Topology) -> None:
    plan = load_plan(DEMO / "failover.yaml", demo_topology)
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan
    assert again.digest() == plan.digest()


def test_plan_with_microsecond_durations_survives_the_json_round_trip(tmp_path: Path) -> None:
    text = edit(PLAN, "duration: 90s", "duration: 0.00001s")
    text = edit(text, "    min_healthy: 2\n", "    min_healthy: 2\n    interval: 10.123456s\n    timeout: 1h0.000001s\n")
    plan = load_plan(write(tmp_path, text, "plan.yaml"))
    dumped = plan.model_dump(mode="json")
    assert dumped["steps"][3]["duration"] == "0.00001s"
    assert (dumped["steps"][1]["interval"], dumped["steps"][1]["timeout"]) == ("10.123456s", "1h0.000001s")
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan and again.digest() == plan.digest()


# --- digest ----------------------------------------------------------------------------------

PLAN = """\
name: digest-test
services: [checkout]
source: europe-west1
target: us-central1
steps:
  - kind: scale_target
    min_size: 3
  - kind: verify_health
    min_healthy: 2
  - kind: drain
  - kind: wait
    duration: 90s
  - kind: shift_dns
"""

# The same plan: keys reordered, comments, flow style, singular service, another duration
# spelling, and every default written out explicitly.
SAME_PLAN = """\
# Same plan, written differently.
target: us-central1   # where traffic goes
source: europe-west1
service: checkout
description: ""
guards: {min_healthy_target: 1}
retries:
  maximum_interval: 30s
  initial_interval: 1
  rollback_deadline: 60m
  step_deadline: 600
steps:
  - {min_size: 3, kind: scale_target, name: null}
  - kind: verify_health
    interval: 5s
    timeout: 5m
    region: null
    min_healthy: 2
  - kind: drain
    capacity_scaler: 0.0
  - duration: 1m30s
    kind: wait
  - kind: shift_dns
    ttl: null
name: digest-test
"""


def digest_of(tmp_path: Path, text: str, name: str = "plan.yaml") -> str:
    return load_plan(write(tmp_path, text, name)).digest()


def test_digest_is_a_sha256_hex(tmp_path: Path) -> None:
    digest = digest_of(tmp_path, PLAN)
    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def test_digest_is_the_same_however_the_plan_is_written(tmp_path: Path) -> None:
    assert digest_of(tmp_path, PLAN, "a.yaml") == digest_of(tmp_path, SAME_PLAN, "b.yaml")


def test_digest_does_not_depend_on_the_file(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    assert digest_of(tmp_path, PLAN) == digest_of(tmp_path / "elsewhere", PLAN, "other-name.yaml")


def test_digest_is_stable_across_loads_of_the_demo_plan(demo_topology: Topology) -> None:
    first = load_plan(DEMO / "failover.yaml", demo_topology).digest()
    assert load_plan(DEMO / "failover.yaml").digest() == first
    assert load_plan(DEMO / "failover.yaml", demo_topology).digest() == first


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("min_size: 3", "min_size: 4"),
        ("min_healthy: 2", "min_healthy: 1"),
        ("  - kind: drain\n", "  - kind: drain\n    capacity_scaler: 0.5\n"),
        ("  - kind: drain\n", "  - kind: drain\n    region: europe-west1\n"),
        ("duration: 90s", "duration: 91s"),
        ("duration: 90s", "duration: 90.5s"),
        ("duration: 90s", "duration: 90.000001s"),
        ("  - kind: shift_dns\n", "  - kind: shift_dns\n    ttl: 60\n"),
        ("  - kind: shift_dns\n", "  - kind: shift_dns\n    name: point DNS\n"),
        ("  - kind: shift_dns\n", "  - kind: shift_dns\n  - kind: wait\n    duration: 1s\n"),
        ("  - kind: scale_target\n    min_size: 3\n", ""),
        ("    min_healthy: 2\n", "    min_healthy: 2\n    timeout: 1m\n"),
        ("target: us-central1", "target: us-east1"),
        ("services: [checkout]", "services: [checkout, catalog]"),
        ("steps:", "guards: {min_healthy_target: 2}\nsteps:"),
        ("steps:", "retries: {step_deadline: 3m}\nsteps:"),
    ],
)
def test_digest_changes_when_the_plan_changes(tmp_path: Path, old: str, new: str) -> None:
    assert digest_of(tmp_path, PLAN, "a.yaml") != digest_of(tmp_path, edit(PLAN, old, new), "b.yaml")


def test_digest_changes_when_steps_are_reordered(tmp_path: Path) -> None:
    drain_then_wait = "  - kind: drain\n  - kind: wait\n    duration: 90s\n"
    swapped = edit(PLAN, drain_then_wait, "  - kind: wait\n    duration: 90s\n  - kind: drain\n")
    assert digest_of(tmp_path, PLAN, "a.yaml") != digest_of(tmp_path, swapped, "b.yaml")


def test_durations_that_differ_by_a_microsecond_have_different_digests(tmp_path: Path) -> None:
    a = edit(PLAN, "duration: 90s", "duration: 10.123456s")
    b = edit(PLAN, "duration: 90s", "duration: 10.123457s")
    assert digest_of(tmp_path, a, "a.yaml") != digest_of(tmp_path, b, "b.yaml")


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "no duration given (use seconds or text like '30s', '5m', '1h30m')"),
        (".inf", "a duration cannot be longer than 30 days (720h)"),
        (".nan", "NaN is not a duration (use seconds or text like '30s', '5m', '1h30m')"),
        ("99999999999h", "a duration cannot be longer than 30 days (720h)"),
    ],
)
def test_bad_duration_in_a_plan_is_a_located_error(tmp_path: Path, written: str, message: str) -> None:
    text = edit(PLAN, "duration: 90s", f"duration: {written}")
    path = write(tmp_path, text, "plan.yaml")
    assert errors_of(load_plan, path) == [DocumentError(str(path), "steps[3].duration", message, line_of(text, "duration:"))]
