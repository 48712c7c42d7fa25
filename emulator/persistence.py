"""Saving the world to a JSON file, so an emulator restarted with the same ``--state-file``
continues where it stopped."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from emulator.state import World

log = structlog.get_logger()


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> World | None:
        """The saved world, or None when there is no file yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        world = World.model_validate_json(text)
        log.info("emulator.state_loaded", path=str(self.path))
        return world

    def save(self, world: World) -> None:
        """Write atomically: a crash mid-write leaves the previous state, never half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(world.model_dump_json(indent=1), encoding="utf-8")
        os.replace(partial, self.path)
