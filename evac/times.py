"""One rule for the times Evac prints: UTC, written ``2026-11-28 10:00:00Z`` (to the minute where
seconds would be noise); a local zone, where one matters (a schedule's), only in brackets after."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utc_text(moment: datetime, *, seconds: bool = True) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def utc_and_local(moment: datetime, zone: str) -> str:
    """``2026-12-01 09:00Z (10:00 CET)``: UTC first, the zone's wall clock after (none for UTC)."""
    text = utc_text(moment, seconds=False)
    if zone in ("UTC", "Etc/UTC"):
        return text
    local = moment.astimezone(ZoneInfo(zone))
    return f"{text} ({local:%H:%M %Z}{'' if local.date() == moment.astimezone(UTC).date() else f', {local:%a %d %b}'})"
