"""The blackout check a scheduled drill makes before it starts anything.

It reads the worker's blackouts file at that moment (the path from the worker's configuration,
``EVAC_BLACKOUTS``), so a freeze added to the file after a schedule was created still holds.
"""

from __future__ import annotations

from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evac.blackouts import CHECK_BLACKOUTS, BlackoutCheck, BlackoutVerdict, blackout_at
from evac.config import Settings
from evac.documents import InvalidDocument
from evac.errors import FrontDoorError


class BlackoutActivities:
    def __init__(self, path: Path | None = None) -> None:
        # None: the path from the worker's configuration, read at each check.
        self._path = path

    @activity.defn(name=CHECK_BLACKOUTS)
    def check_blackouts(self, input: BlackoutCheck) -> BlackoutVerdict:
        """The blackout window (the worker's file, then the plan's) in effect at ``input.at``, if any."""
        try:
            path = self._path or Path(Settings.load().blackouts)
            return BlackoutVerdict(match=blackout_at(path, input.plan_windows, input.at))
        except (InvalidDocument, FrontDoorError) as exc:
            # A file that cannot be read will not read better on a retry: the drill is not started.
            raise ApplicationError(
                f"the worker's blackouts file cannot be used: {exc}", type="InvalidBlackouts", non_retryable=True
            ) from None
