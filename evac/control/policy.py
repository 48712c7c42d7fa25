"""The start policy every front door applies: a recorded reason's form, and blackout windows.

The control start functions (:func:`evac.control.start_failover`,
:func:`evac.control.start_evacuation`, :func:`evac.control.start_failback`) apply it themselves,
so a caller of :mod:`evac.control` (the CLI, a script, a future API) cannot start a run inside a
blackout, or record a malformed reason, by forgetting a check. A front door may call the same
functions earlier (the CLI does, to refuse before it connects); the start decides again.

- :func:`recorded_reason` — a reason as it is recorded: stripped, at most
  :data:`evac.approvals.MAX_REASON` characters, one printable line (BadInput otherwise).
- :func:`blackout_override` — inside a blackout window (the configuration's, then the plan's) a
  start is refused (BlackoutInEffect) unless overridden with a reason; the window's text is
  what the run records as overridden.
- :func:`admitted_trigger` — both, applied to a run's trigger as a start records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from evac.approvals import MAX_REASON
from evac.blackouts import BlackoutInEffect, BlackoutWindow, active_window, load_blackouts
from evac.errors import BadInput
from evac.runs import Trigger

# What a drill started without a reason records; it counts as no reason for --override-blackout.
DRILL_REASON = "DR drill"
RECORDED_IN_THE_RUN = "why (it is recorded in the run's history)"


def recorded_reason(
    value: str | None,
    *,
    option: str = "--reason",
    required: bool = True,
    not_done: str = "nothing was started",
    must_say: str = RECORDED_IN_THE_RUN,
) -> str:
    """``value`` stripped, as it is recorded; BadInput naming ``option`` when it is empty (and
    ``required``), longer than MAX_REASON or not one printable line. ``not_done`` ends the
    sentence (what did not happen), ``must_say`` says what an empty one lacks."""
    text = (value or "").strip()
    if required and not text:
        raise BadInput(f"{option} must say {must_say}; {not_done}")
    if len(text) > MAX_REASON:
        raise BadInput(f"{option} is {len(text)} characters long; at most {MAX_REASON}; {not_done}")
    if not text.isprintable():
        raise BadInput(f"{option} must be printable text on one line (no control characters); {not_done}")
    return text


@dataclass(frozen=True)
class Blackouts:
    """The configuration's blackout windows (a plan's own are in the plan), and where they are
    written, as a refusal names it."""

    windows: Sequence[BlackoutWindow] = ()
    where: str = "the configuration"

    @classmethod
    def load(cls, path: str | Path) -> Blackouts:
        """The windows of the blackouts file (``Settings.blackouts``): a missing file is none, an
        invalid one an InvalidDocument naming the file, line and place of every error."""
        return cls(tuple(load_blackouts(path)), f"blackouts file {path}")


NO_BLACKOUTS = Blackouts()


def blackout_override(
    blackouts: Blackouts,
    plan_windows: Sequence[BlackoutWindow] = (),
    *,
    override: bool,
    reason_given: bool,
    now: datetime,
) -> str | None:
    """None outside every window (the configuration's first, then the plan's); inside one,
    BlackoutInEffect without ``override``, BadInput with it but no reason; with both, the
    window's text, which the run records as overridden. ``now``: an aware datetime."""
    windows = [*blackouts.windows, *plan_windows]
    where = [blackouts.where] * len(blackouts.windows) + ["the plan"] * len(plan_windows)
    match = active_window(windows, now, where)
    if match is None:
        return None
    if not override:
        raise BlackoutInEffect(match)
    if not reason_given:
        raise BadInput(f"{match.text}: --override-blackout needs --reason saying why (it is recorded); nothing was started")
    return match.text


def admitted_trigger(
    trigger: Trigger,
    plan_windows: Sequence[BlackoutWindow] = (),
    *,
    blackouts: Blackouts,
    override_blackout: bool,
    dry_run: bool,
    now: datetime,
    default_reason: str = "",
) -> Trigger:
    """The trigger a start records: its reason checked and stripped (``default_reason`` when it
    has none, which still counts as no reason for an override), and the blackout window it was
    started inside with an override, or None. A dry run changes nothing: never refused."""
    reason = recorded_reason(trigger.reason, option="the trigger's reason", required=False)
    overridden = (
        None
        if dry_run
        else blackout_override(blackouts, plan_windows, override=override_blackout, reason_given=bool(reason), now=now)
    )
    return trigger.model_copy(update={"reason": reason or default_reason, "blackout_override": overridden})


__all__ = [
    "DRILL_REASON",
    "NO_BLACKOUTS",
    "Blackouts",
    "admitted_trigger",
    "blackout_override",
    "recorded_reason",
]
