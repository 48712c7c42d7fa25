"""Blackout windows: times when no drill or failover may start (change freezes, peak hours).

A window has a name, an IANA ``timezone`` and either a date range or a weekly window::

    windows:
      - name: year-end freeze
        timezone: Europe/Stockholm
        start: 2026-12-20          # a date: from that day's 00:00 local
        end: 2027-01-02            # a date: through that whole day (a datetime: up to that moment)
      - name: peak hours
        timezone: America/New_York
        days: [fri, sat]
        from: "22:00"              # crossing midnight: Friday 22:00 to Saturday 02:00, …
        to: "02:00"

Windows come from the worker's (and the CLI's) blackouts file — path from configuration
(``blackouts``: ``EVAC_BLACKOUTS``, default ``~/.config/evac/blackouts.yaml``; a missing file is
no windows) — and from a plan's own ``blackouts:`` list. :func:`active_window` is the one rule
that says whether a moment falls inside one; local times are read in the window's zone, so a
weekly window keeps its wall-clock hours across daylight-saving changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from evac.document_types import StrictModel
from evac.documents import InvalidDocument, read_yaml, rule_violations, validate
from evac.errors import Refused

CHECK_BLACKOUTS = "check_blackouts"  # the activity's registered name
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])\Z")
# Adjacent windows (every day 00:00-24:00 …) are followed this far to say when a blackout ends.
_MAX_CHAIN = 60


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone (like Europe/Stockholm or UTC)") from None
    return value


def _clock(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
        # YAML 1.1 reads an unquoted 22:00 as the number 1320 (minutes, base 60)
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not _CLOCK.match(value) or (value.startswith("24") and value != "24:00"):
        raise ValueError(f"'{value}' is not a time of day written as \"HH:MM\" (00:00 to 24:00)")
    return value


def _moment(value: Any) -> Any:
    """A date (``2026-12-20``) or a local date and time (``2026-12-20 18:00``); no offset."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"'{value}' is not a date (2026-12-20) or a local date and time (2026-12-20 18:00)") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"'{value}' has a UTC offset; write the local time, the window's timezone gives the offset")
        return value
    if isinstance(value, date):
        return value
    raise ValueError(f"'{value}' is not a date (2026-12-20) or a local date and time (2026-12-20 18:00)")


Moment = Annotated[datetime | date, BeforeValidator(_moment)]
Clock = Annotated[str, BeforeValidator(_clock)]


class BlackoutWindow(StrictModel):
    """One window: a date range (``start``/``end``) or a weekly one (``days``, ``from``, ``to``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True)

    name: str = Field(min_length=1, max_length=200)
    timezone: Annotated[str, AfterValidator(_timezone)]
    start: Moment | None = Field(default=None, description="A date (from its 00:00) or a local date and time")
    end: Moment | None = Field(default=None, description="A date (through its end) or a local date and time (exclusive)")
    days: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    from_: Clock | None = Field(default=None, alias="from", description="Local start time on each of the days, HH:MM")
    to: Clock | None = Field(default=None, description="Local end time, HH:MM; at or before 'from': the next day")
    reason: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_form(self) -> BlackoutWindow:
        dated = self.start is not None or self.end is not None
        weekly = self.days is not None or self.from_ is not None or self.to is not None
        name = type(self).__name__
        if dated and weekly:
            raise rule_violations(name, [(("days",), "give either start/end (a date range) or days/from/to (weekly), not both")])
        if not dated and not weekly:
            raise rule_violations(name, [(("start",), "give start and end (a date range) or days, from and to (weekly)")])
        if dated:
            missing = [key for key in ("start", "end") if getattr(self, key) is None]
            if missing:
                raise rule_violations(name, [((key,), f"a date range needs '{key}' too") for key in missing])
            try:
                start, end = self._range()
            except (OverflowError, ValueError):  # the day after 9999-12-31, or its UTC time, does not exist
                message = "is beyond the dates a window can hold (from 0001-01-02 through 9999-12-30)"
                raise rule_violations(name, [((self._unrepresentable(),), message)]) from None
            if end <= start:
                raise rule_violations(name, [(("end",), "the window ends before it starts")])
            return self
        missing = [alias for key, alias in (("days", "days"), ("from_", "from"), ("to", "to")) if getattr(self, key) is None]
        if missing:
            raise rule_violations(name, [((key,), f"a weekly window needs '{key}' too") for key in missing])
        if self.from_ == self.to:
            raise rule_violations(
                name, [(("to",), "'from' and 'to' are equal; for whole days write from: \"00:00\" and to: \"24:00\"")]
            )
        if self.from_ == "24:00":
            raise rule_violations(name, [(("from",), "a window starts at 23:59 at the latest")])
        if self.days is not None and len(set(self.days)) != len(self.days):
            raise rule_violations(name, [(("days",), "a day is listed twice")])
        return self

    def _unrepresentable(self) -> str:
        """Which of start and end has no moment in UTC (the day after 9999-12-31 has none)."""
        assert self.start is not None
        start = self.start if isinstance(self.start, datetime) else datetime.combine(self.start, time(0))
        try:
            self._local(start.date(), start.time())
        except (OverflowError, ValueError):
            return "start"
        return "end"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _local(self, day: date, clock: time | None = None) -> datetime:
        """A local wall-clock time in UTC; a time that does not exist (the hour the clocks skip)
        is read as if they had not changed yet, a repeated one as its first occurrence."""
        return datetime.combine(day, clock or time(0), tzinfo=self.zone).astimezone(UTC)

    def _range(self) -> tuple[datetime, datetime]:
        assert self.start is not None and self.end is not None
        start = self.start if isinstance(self.start, datetime) else datetime.combine(self.start, time(0))
        end = self.end if isinstance(self.end, datetime) else datetime.combine(self.end + timedelta(days=1), time(0))
        return self._local(start.date(), start.time()), self._local(end.date(), end.time())

    def occurrence(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The stretch of this window (start, end; UTC) that holds ``at``, or None."""
        at = at.astimezone(UTC)
        if self.start is not None:
            start, end = self._range()
            return (start, end) if start <= at < end else None
        assert self.days is not None and self.from_ is not None and self.to is not None
        local = at.astimezone(self.zone).date()
        begin, finish = _clock_time(self.from_), _clock_time(self.to)
        for day in (local - timedelta(days=1), local):
            if DAYS[day.weekday()] not in self.days:
                continue
            start = self._local(day + timedelta(days=begin[0]), begin[1])
            end_day = day + timedelta(days=finish[0] + (1 if self.to <= self.from_ else 0))
            end = self._local(end_day, finish[1])
            if start <= at < end:
                return start, end
        return None

    def describe(self) -> str:
        if self.start is not None:
            return f"{_text(self.start)} to {_text(self.end)} {self.timezone}"
        assert self.days is not None
        days = "every day" if len(self.days) == len(DAYS) else ",".join(self.days)
        return f"{days} {self.from_}-{self.to} {self.timezone}"


def _clock_time(value: str) -> tuple[int, time]:
    """``"22:00"`` -> (0, 22:00); ``"24:00"`` -> (1, 00:00): a day later."""
    hours, minutes = (int(part) for part in value.split(":"))
    return (1, time(0)) if hours == 24 else (0, time(hours, minutes))


def _text(value: date | datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="minutes") if isinstance(value, datetime) else str(value)


class BlackoutMatch(StrictModel):
    """The window a moment falls in, and when the blackout ends (adjacent windows followed)."""

    window: str
    where: str = Field(description="Where the window is written: the blackouts file or the plan")
    description: str
    timezone: str
    started_at: datetime
    ends_at: datetime
    open_ended: bool = Field(default=False, description="The windows go on past ends_at (followed only so far)")

    @property
    def text(self) -> str:
        local = self.ends_at.astimezone(ZoneInfo(self.timezone))
        until = "until at least" if self.open_ended else "until"
        where = f", {self.where}" if self.where else ""
        return (
            f"blackout window '{self.window}' ({self.description}{where}) is in effect {until} "
            f"{local:%Y-%m-%d %H:%M} {self.timezone}"
        )


def active_window(windows: Sequence[BlackoutWindow], at: datetime, where: Sequence[str] = ()) -> BlackoutMatch | None:
    """The first window that holds ``at`` (an aware datetime), or None.

    ``where`` names each window's origin (same order); the match's end follows windows that
    continue it, so a blackout made of back-to-back windows ends when the last one does.
    """
    if at.tzinfo is None:
        raise ValueError("active_window needs an aware datetime")
    for index, window in enumerate(windows):
        found = window.occurrence(at)
        if found is None:
            continue
        ends, open_ended = found[1], True
        for _ in range(_MAX_CHAIN):
            later = [o[1] for o in (w.occurrence(ends) for w in windows) if o is not None and o[1] > ends]
            if not later:
                open_ended = False
                break
            ends = max(later)
        return BlackoutMatch(
            window=window.name,
            where=where[index] if index < len(where) else "",
            description=window.describe(),
            timezone=window.timezone,
            started_at=found[0],
            ends_at=ends,
            open_ended=open_ended,
        )
    return None


class BlackoutsFile(StrictModel):
    """``blackouts.yaml``: the windows every run of this installation honours, under ``windows:``
    (or ``blackouts:``, as a plan lists its own)."""

    windows: list[BlackoutWindow] = Field(default_factory=list, max_length=500)


def default_blackouts_path() -> Path:
    return Path.home() / ".config" / "evac" / "blackouts.yaml"


def load_blackouts(path: str | Path) -> list[BlackoutWindow]:
    """The windows of a blackouts file; a missing file is no windows, an invalid one an
    InvalidDocument naming the file, line and place of every error."""
    file = Path(path).expanduser()
    if not file.exists():
        return []
    doc = read_yaml(file)
    if isinstance(doc.data, dict) and "blackouts" in doc.data:
        # A plan lists its windows under 'blackouts:'; the file takes that spelling too.
        if "windows" in doc.data:
            raise InvalidDocument([doc.error(("blackouts",), "give 'windows' or 'blackouts' (the same list), not both")])
        doc.data = {("windows" if key == "blackouts" else key): value for key, value in doc.data.items()}
        doc.written_as[("windows",)] = ("blackouts",)
    return validate(doc, BlackoutsFile).windows


def blackout_at(path: str | Path, plan_windows: Sequence[BlackoutWindow], at: datetime) -> BlackoutMatch | None:
    """The blackout in effect at ``at``: the file's windows first, then the plan's."""
    file_windows = load_blackouts(path)
    windows = [*file_windows, *plan_windows]
    where = [f"blackouts file {path}"] * len(file_windows) + ["the plan"] * len(plan_windows)
    return active_window(windows, at, where)


class BlackoutInEffect(Refused):
    """A manual run inside a blackout, without ``--override-blackout``."""

    def __init__(self, match: BlackoutMatch):
        self.match = match
        super().__init__(
            f"{match.text}; nothing was started (to start anyway: --override-blackout --reason TEXT, which is recorded)"
        )


class BlackoutCheck(StrictModel):
    """The blackout activity's input: the plan's own windows and the moment to check."""

    plan_windows: list[BlackoutWindow] = Field(default_factory=list)
    at: datetime


class BlackoutVerdict(StrictModel):
    match: BlackoutMatch | None = None


__all__ = [
    "BlackoutCheck",
    "BlackoutInEffect",
    "BlackoutMatch",
    "BlackoutVerdict",
    "BlackoutWindow",
    "BlackoutsFile",
    "InvalidDocument",
    "active_window",
    "blackout_at",
    "load_blackouts",
]
