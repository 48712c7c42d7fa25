"""What the benchmarks under ``bench/`` share: the embedded stack's settings for a bench run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from evac.stack import StackConfig, free_port

N = TypeVar("N", int, float)


def loopback_config(topology: Path, state_dir: Path, **settings: Any) -> StackConfig:
    """The dev server and the emulator on free loopback ports, no Web UI, their database and
    logs in ``state_dir``; ``settings``: any other :class:`~evac.stack.StackConfig` field."""
    return StackConfig(
        topology=topology,
        state_dir=state_dir,
        temporal_port=free_port(),
        emulator_port=free_port(),
        ui=False,
        **settings,
    )


def bounded(kind: Callable[[str], N], low: N, high: N) -> Callable[[str], N]:
    """An argparse ``type``: a number of ``kind`` from ``low`` to ``high``; anything else is
    refused with the range (argparse names the option)."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number from {low} to {high}, not {text!r}") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {text}")
        return value

    return parse
