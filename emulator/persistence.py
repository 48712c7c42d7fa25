"""Saving the world to a JSON file, so an emulator restarted with the same ``--state-file``
continues where it stopped.

While serving, the file is written off the event loop (:class:`StateWriter`): a slow disk
delays the call that changed the world, never the other calls in flight.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
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
        """Write now, from the calling thread (at start-up, before serving)."""
        self.write(serialize(world))

    def write(self, text: str) -> None:
        """Write atomically: a crash mid-write leaves the previous state, never half a file.
        Blocking; one write at a time (they share the temporary file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)


def serialize(world: World) -> str:
    return world.model_dump_json(indent=1)


class StateWriter:
    """Saves the world from the event loop without blocking it.

    The world is serialized on the loop (the one consistent view of it) and written in a
    worker thread. Writes happen one at a time and in order; a save that finds a later one
    already written returns at once, so a burst of changes costs one or two writes. When
    :meth:`save` returns, the file holds the world as it was when it was called, or newer.
    """

    def __init__(self, store: StateStore, world: Callable[[], World]):
        self._store = store
        self._world = world
        self._lock = asyncio.Lock()
        self._requested = 0
        self._written = 0

    async def save(self) -> None:
        self._requested += 1
        mine = self._requested
        async with self._lock:
            if self._written >= mine:
                return  # a write that started after our change covered it
            covers = self._requested
            text = serialize(self._world())
            await asyncio.to_thread(self._store.write, text)
            self._written = covers
