"""Blackout windows: what a valid window is, and which moments fall inside one (time zones,
daylight saving, midnight, date ranges)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from evac.blackouts import BlackoutWindow, active_window, blackout_at, load_blackouts
from evac.config import Settings
from evac.documents import InvalidDocument
from evac.plan import Plan, load_plan
from tests.conftest import DEMO


def window(**fields: object) -> BlackoutWindow:
    return BlackoutWindow.model_validate({"name": "w", "timezone": "Europe/Stockholm", **fields})


def weekly(days: list[str], start: str, end: str, timezone: str = "Europe/Stockholm") -> BlackoutWindow:
    return window(days=days, timezone=timezone, **{"from": start, "to": end})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def inside(w: BlackoutWindow, at: datetime) -> bool:
    return active_window([w], at) is not None


def errors_of(**fields: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        window(**fields)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]


# --- matching: weekly windows ---------------------------------------------------------


def test_a_weekly_window_holds_from_its_start_up_to_but_not_including_its_end():
    # Friday 27 November 2026, Stockholm is UTC+1 in winter: 09:00-17:00 local is 08:00-16:00 UTC.
    office = weekly(["fri"], "09:00", "17:00")
    assert not inside(office, utc(2026, 11, 27, 7, 59))
    assert inside(office, utc(2026, 11, 27, 8, 0))
    assert inside(office, utc(2026, 11, 27, 15, 59))
    assert not inside(office, utc(2026, 11, 27, 16, 0))
    assert not inside(office, utc(2026, 11, 26, 10, 0))  # Thursday is not listed


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts_on():
    late = weekly(["fri"], "22:00", "02:00")  # Friday 22:00 to Saturday 02:00, local
    assert inside(late, utc(2026, 11, 27, 21, 0))  # Friday 22:00 local
    assert inside(late, utc(2026, 11, 28, 0, 30))  # Saturday 01:30 local: Friday's window
    assert not inside(late, utc(2026, 11, 28, 1, 0))  # Saturday 02:00 local: over
    assert not inside(late, utc(2026, 11, 28, 21, 30))  # Saturday 22:30: Saturday is not listed
    assert not inside(late, utc(2026, 11, 26, 23, 30))  # Friday 00:30 is Thursday's night: not listed
    match = active_window([late], utc(2026, 11, 28, 0, 30))
    assert match is not None and match.ends_at == utc(2026, 11, 28, 1, 0)


def test_whole_days_are_written_00_00_to_24_00():
    sunday = weekly(["sun"], "00:00", "24:00")
    assert inside(sunday, utc(2026, 11, 28, 23, 0))  # Sunday 00:00 local
    assert inside(sunday, utc(2026, 11, 29, 22, 59))  # Sunday 23:59 local
    assert not inside(sunday, utc(2026, 11, 29, 23, 0))  # Monday 00:00 local


def test_a_weekly_window_keeps_its_wall_clock_hours_across_daylight_saving():
    hours = weekly(["wed"], "10:00", "12:00")
    # January: UTC+1; July: UTC+2 — the same local hours, an hour apart in UTC.
    assert inside(hours, utc(2026, 1, 7, 9, 30)) and not inside(hours, utc(2026, 1, 7, 8, 30))
    assert inside(hours, utc(2026, 7, 8, 8, 30)) and not inside(hours, utc(2026, 7, 8, 10, 30))


def test_the_night_the_clocks_go_forward_the_window_is_an_hour_shorter():
    # Sunday 29 March 2026, Stockholm: 02:00 CET becomes 03:00 CEST.
    night = weekly(["sun"], "01:00", "04:00")
    match = active_window([night], utc(2026, 3, 29, 0, 30))
    assert match is not None
    assert (match.started_at, match.ends_at) == (utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0))
    assert not inside(night, utc(2026, 3, 29, 2, 0))


def test_the_night_the_clocks_go_back_the_window_is_an_hour_longer():
    # Sunday 25 October 2026, Stockholm: 03:00 CEST becomes 02:00 CET.
    night = weekly(["sun"], "01:00", "04:00")
    match = active_window([night], utc(2026, 10, 25, 2, 30))
    assert match is not None
    assert (match.started_at, match.ends_at) == (utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0))


def test_a_start_in_the_skipped_hour_is_read_as_if_the_clocks_had_not_changed_yet():
    # 02:30 does not exist on 29 March in Stockholm; read at the winter offset it is 01:30 UTC.
    gap = weekly(["sun"], "02:30", "05:00")
    match = active_window([gap], utc(2026, 3, 29, 1, 45))
    assert match is not None and match.started_at == utc(2026, 3, 29, 1, 30)
    assert not inside(gap, utc(2026, 3, 29, 1, 15))


def test_the_windows_own_time_zone_decides_which_day_it_is():
    # 03:00 UTC on Saturday is still Friday 22:00 in New York.
    friday_evening = weekly(["fri"], "20:00", "23:00", timezone="America/New_York")
    assert inside(friday_evening, utc(2026, 11, 28, 3, 0))
    in_tokyo = weekly(["sat"], "10:00", "11:00", timezone="Asia/Tokyo")
    assert inside(in_tokyo, utc(2026, 11, 28, 1, 30))  # Saturday 10:30 in Tokyo
    assert not inside(in_tokyo, utc(2026, 11, 28, 10, 30))  # 10:30 UTC is 19:30 in Tokyo


# --- matching: date ranges ------------------------------------------------------------


def test_a_date_range_runs_from_the_first_days_midnight_through_the_whole_last_day_local():
    freeze = window(start="2026-12-20", end="2027-01-02")
    assert not inside(freeze, utc(2026, 12, 19, 22, 59))  # 23:59 local on the 19th
    assert inside(freeze, utc(2026, 12, 19, 23, 0))  # 00:00 local on the 20th
    assert inside(freeze, utc(2027, 1, 2, 22, 59))  # 23:59 local on the last day
    assert not inside(freeze, utc(2027, 1, 2, 23, 0))


def test_a_range_of_local_datetimes_ends_at_its_end_exclusively():
    release = window(start="2026-12-01 18:00", end="2026-12-01T20:30")
    assert inside(release, utc(2026, 12, 1, 17, 0))
    assert inside(release, utc(2026, 12, 1, 19, 29))
    assert not inside(release, utc(2026, 12, 1, 19, 30))


def test_yaml_dates_and_datetimes_are_read_as_written():
    from datetime import date

    w = window(start=date(2026, 12, 20), end=datetime(2026, 12, 21, 6, 0))
    assert inside(w, utc(2026, 12, 21, 4, 59)) and not inside(w, utc(2026, 12, 21, 5, 0))


# --- matching: several windows ----------------------------------------------------------


def test_the_first_matching_window_is_named_and_back_to_back_windows_end_together():
    monday = weekly(["mon"], "00:00", "24:00").model_copy(update={"name": "monday"})
    tuesday_morning = weekly(["tue"], "00:00", "12:00").model_copy(update={"name": "tuesday morning"})
    unrelated = window(start="2026-06-01", end="2026-06-02").model_copy(update={"name": "june"})
    match = active_window([unrelated, monday, tuesday_morning], utc(2026, 11, 30, 9, 0), ["file", "file", "plan"])
    assert match is not None
    assert (match.window, match.where) == ("monday", "file")
    assert match.ends_at == utc(2026, 12, 1, 11, 0)  # Tuesday 12:00 Stockholm
    assert match.text == (
        "blackout window 'monday' (mon 00:00-24:00 Europe/Stockholm, file) is in effect until 2026-12-01 12:00 Europe/Stockholm"
    )
    assert active_window([unrelated, monday], utc(2026, 12, 1, 11, 0)) is None


def test_a_window_that_never_ends_is_followed_only_so_far():
    always = weekly(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "24:00")
    match = active_window([always], utc(2026, 11, 28, 12, 0))
    assert match is not None and timedelta(days=30) < match.ends_at - utc(2026, 11, 28) < timedelta(days=90)
    assert match.open_ended and "(every day 00:00-24:00 Europe/Stockholm) is in effect until at least " in match.text


def test_a_moment_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="aware"):
        active_window([weekly(["mon"], "00:00", "01:00")], datetime(2026, 11, 30, 0, 30))


# --- validation ---------------------------------------------------------------------------


def test_an_unknown_time_zone_is_refused_by_name():
    assert errors_of(timezone="Europe/Stokholm", start="2026-12-20", end="2026-12-21") == [
        ("timezone", "Value error, 'Europe/Stokholm' is not an IANA time zone (like Europe/Stockholm or UTC)")
    ]


def test_a_window_is_a_date_range_or_a_weekly_window_not_both_nor_neither():
    assert errors_of(start="2026-12-20", end="2026-12-21", days=["mon"]) == [
        ("days", "give either start/end (a date range) or days/from/to (weekly), not both")
    ]
    assert errors_of() == [("start", "give start and end (a date range) or days, from and to (weekly)")]
    assert errors_of(start="2026-12-20") == [("end", "a date range needs 'end' too")]
    assert errors_of(days=["mon"], to="10:00") == [("from", "a weekly window needs 'from' too")]


def test_a_range_that_ends_before_it_starts_is_refused():
    assert errors_of(start="2026-12-21", end="2026-12-20") == [("end", "the window ends before it starts")]
    assert errors_of(start="2026-12-20 10:00", end="2026-12-20 10:00") == [("end", "the window ends before it starts")]


def test_times_of_day_are_hh_mm_and_an_empty_window_is_refused():
    assert errors_of(days=["mon"], **{"from": "25:00", "to": "10:00"}) == [
        ("from", "Value error, '25:00' is not a time of day written as \"HH:MM\" (00:00 to 24:00)")
    ]
    assert errors_of(days=["mon"], **{"from": "9:00", "to": "24:30"})[0][0] == "from"
    assert errors_of(days=["mon"], **{"from": "10:00", "to": "10:00"}) == [
        ("to", "'from' and 'to' are equal; for whole days write from: \"00:00\" and to: \"24:00\"")
    ]
    assert errors_of(days=["mon"], **{"from": "24:00", "to": "10:00"}) == [("from", "a window starts at 23:59 at the latest")]


def test_days_are_the_three_letter_names_each_once():
    assert errors_of(days=["monday"], **{"from": "10:00", "to": "11:00"})[0][0] == "days.0"
    assert errors_of(days=["mon", "mon"], **{"from": "10:00", "to": "11:00"}) == [("days", "a day is listed twice")]
    assert errors_of(days=[], **{"from": "10:00", "to": "11:00"})[0][0] == "days"


def test_a_datetime_with_an_offset_is_refused_the_zone_gives_it():
    [(where, message)] = errors_of(start="2026-12-20T10:00:00+02:00", end="2026-12-21")
    assert where == "start" and "has a UTC offset; write the local time" in message


def test_an_unquoted_yaml_time_is_read_as_the_time_it_looks_like(tmp_path: Path):
    # YAML 1.1 reads 22:00 as the sexagesimal number 1320.
    path = tmp_path / "blackouts.yaml"
    path.write_text("windows:\n  - {name: late, timezone: UTC, days: [fri], from: 22:00, to: 02:00}\n")
    [late] = load_blackouts(path)
    assert (late.from_, late.to) == ("22:00", "02:00")


# --- the file, the plan, the configuration --------------------------------------------------


def test_a_missing_blackouts_file_is_no_windows(tmp_path: Path):
    assert load_blackouts(tmp_path / "nothing-here.yaml") == []
    assert blackout_at(tmp_path / "nothing-here.yaml", [], utc(2026, 11, 28)) is None


def test_an_invalid_blackouts_file_names_the_file_line_and_place_of_every_error(tmp_path: Path):
    path = tmp_path / "blackouts.yaml"
    path.write_text(
        "windows:\n"
        "  - name: freeze\n"
        "    timezone: Mars/Olympus\n"
        "    start: 2026-12-20\n"
        "    end: 2027-01-02\n"
        "  - name: peak\n"
        "    timezone: UTC\n"
        "    days: [fri]\n"
        "    form: '10:00'\n"
    )
    with pytest.raises(InvalidDocument) as caught:
        load_blackouts(path)
    lines = [str(e) for e in caught.value.errors]
    assert lines[0] == f"{path}:3: windows[0].timezone: 'Mars/Olympus' is not an IANA time zone (like Europe/Stockholm or UTC)"
    assert any(line.startswith(f"{path}:9: windows[1].form: ") for line in lines), lines


def test_the_file_is_read_before_the_plans_windows_and_each_says_where_it_is_from(tmp_path: Path):
    path = tmp_path / "blackouts.yaml"
    path.write_text("windows:\n  - {name: file-freeze, timezone: UTC, start: 2026-11-28, end: 2026-11-28}\n")
    plan_window = window(name="plan-freeze", start="2026-11-01", end="2026-12-31")
    match = blackout_at(path, [plan_window], utc(2026, 11, 28, 12))
    assert match is not None and (match.window, match.where) == ("file-freeze", f"blackouts file {path}")
    match = blackout_at(path, [plan_window], utc(2026, 11, 29, 12))
    assert match is not None and (match.window, match.where) == ("plan-freeze", "the plan")


def test_a_plan_without_blackouts_keeps_its_digest_and_a_plans_bad_window_is_located(tmp_path: Path):
    plan = load_plan(DEMO / "drill.yaml")
    assert "blackouts" not in plan.model_dump(mode="json")
    with_window = Plan.model_validate(
        {
            **plan.model_dump(mode="json"),
            "blackouts": [{"name": "x", "timezone": "UTC", "days": ["mon"], "from": "09:00", "to": "10:00"}],
        }
    )
    assert with_window.digest() != plan.digest()
    assert with_window.model_dump(mode="json")["blackouts"][0]["from"] == "09:00"  # written back as the file has it
    bad = tmp_path / "drill.yaml"
    bad.write_text(
        (DEMO / "drill.yaml").read_text()
        + "blackouts:\n  - {name: x, timezone: Nowhere, days: [mon], from: '09:00', to: '10:00'}\n"
    )
    with pytest.raises(InvalidDocument) as caught:
        load_plan(bad)
    [error] = caught.value.errors
    assert error.path == "blackouts[0].timezone" and error.line is not None


def test_the_blackouts_path_comes_from_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVAC_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("EVAC_BLACKOUTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.load().blackouts == str(tmp_path / ".config" / "evac" / "blackouts.yaml")
    monkeypatch.setenv("EVAC_BLACKOUTS", "~/freezes.yaml")
    assert Settings.load().blackouts == str(tmp_path / "freezes.yaml")


def test_the_example_blackouts_file_in_the_docs_is_valid_and_means_what_it_says(tmp_path: Path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "schedules.md").read_text()
    example = text.split("```yaml\n# ~/.config/evac/blackouts.yaml", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "blackouts.yaml"
    path.write_text(example)
    freeze, peak, batch = load_blackouts(path)
    assert inside(freeze, utc(2027, 1, 2, 22, 0)) and not inside(freeze, utc(2027, 1, 2, 23, 0))
    assert inside(peak, utc(2026, 11, 27, 11, 0)) and not inside(peak, utc(2026, 11, 27, 10, 59))  # 06:00 New York
    assert inside(batch, utc(2026, 11, 28, 0, 30)) and not inside(batch, utc(2026, 11, 28, 1, 0))  # Sat 01:30 / 02:00 local


def test_the_blackouts_file_takes_a_plans_spelling_too_and_its_errors_are_where_written(tmp_path: Path):
    window = '{name: freeze, timezone: UTC, days: [mon], from: "00:00", to: "24:00"}'
    as_a_plan = tmp_path / "plan-style.yaml"
    as_a_plan.write_text(f"blackouts:\n  - {window}\n")
    [read] = load_blackouts(as_a_plan)
    assert read.name == "freeze"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text('blackouts:\n  - {name: x, timezone: UTC, days: [mon], from: "25:00", to: "24:00"}\n')
    with pytest.raises(InvalidDocument) as caught:
        load_blackouts(wrong)
    assert [(e.path, e.line) for e in caught.value.errors] == [("blackouts[0].from", 2)]
    both = tmp_path / "both.yaml"
    both.write_text(f"windows:\n  - {window}\nblackouts:\n  - {window}\n")
    with pytest.raises(InvalidDocument) as twice:
        load_blackouts(both)
    assert [e.message for e in twice.value.errors] == ["give 'windows' or 'blackouts' (the same list), not both"]


def test_an_end_no_calendar_can_follow_is_a_document_error_not_an_overflow(tmp_path: Path):
    """Issue 20, item 11: `end: 9999-12-31` (through that whole day: the next day does not exist)
    raised OverflowError, a traceback in every `evac failover` while the file was configured."""
    path = tmp_path / "blackouts.yaml"
    path.write_text("windows:\n  - {name: forever, timezone: UTC, start: 2026-01-01, end: 9999-12-31}\n")
    with pytest.raises(InvalidDocument) as caught:
        load_blackouts(path)
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:2: windows[0].end: is beyond the dates a window can hold (from 0001-01-02 through 9999-12-30)"
    ]


def test_an_impossible_date_is_a_document_error_at_its_line(tmp_path: Path):
    path = tmp_path / "blackouts.yaml"
    path.write_text("windows:\n  - name: leap\n    timezone: UTC\n    start: 2026-02-30\n    end: 2026-03-01\n")
    with pytest.raises(InvalidDocument) as caught:
        load_blackouts(path)
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:4: (document): not valid YAML: '2026-02-30' is not a real date or time (day is out of range for "
        "month); quote it to mean text"
    ]
