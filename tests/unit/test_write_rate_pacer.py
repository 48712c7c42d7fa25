"""The worker's write pacer: starts at least 1 / rate apart, never a burst, no debt after a lull."""

from __future__ import annotations

import pytest

from worker import WritePacer


def test_writes_arriving_together_are_spaced_one_interval_apart() -> None:
    pacer = WritePacer(rate=4.0)
    assert [pacer.reserve(now=10.0) for _ in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_no_more_than_rate_writes_start_in_any_second_however_they_arrive() -> None:
    pacer = WritePacer(rate=5.0)
    arrivals = [0.0] * 12 + [0.1, 0.15, 3.0, 3.01, 3.02] + [7.5] * 8
    starts = sorted(now + pacer.reserve(now) for now in arrivals)
    for first, at in enumerate(starts):
        assert sum(1 for later in starts[first:] if later < at + 1.0 - 1e-9) <= 5  # rounding of 5 × 0.2


def test_a_lull_does_not_bank_a_burst() -> None:
    pacer = WritePacer(rate=2.0)
    assert pacer.reserve(now=0.0) == 0.0
    # Long after: the next write starts at once, and the one after it waits a whole interval.
    assert pacer.reserve(now=100.0) == 0.0
    assert pacer.reserve(now=100.0) == pytest.approx(0.5)
