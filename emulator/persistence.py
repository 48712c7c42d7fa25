"""Saving the world to a JSON file, so an emulator restarted with the same ``--state-file``
continues where it stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import structlog

from emulator.state import World

log = structlog.get_logger()


class StateFileError(Exception):
    """The state file exists but is not one this emulator wrote."""


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> World | None:
        """The saved world, or None when there is no file yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateFileError(f"cannot read the state file {self.path}: {exc}") from None
        try:
            world = World.model_validate_json(text)
        except pydantic.ValidationError as exc:
            raise StateFileError(
                f"{self.path} is not a state file of this emulator ({exc.error_count()} problems); "
                "move it away to start from the topology"
            ) from None
        log.info("emulator.state_loaded", path=str(self.path))
        return world

    def save(self, world: World) -> None:
        """Write atomically: a crash mid-write leaves the previous state, never half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(world.model_dump_json(indent=1), encoding="utf-8")
        os.replace(partial, self.path)
