"""The next chunk made ahead, a slice per step (`simulators/_ahead.py`): no step pays for a
whole chunk, and nothing a step returns or a snapshot shows depends on it."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest

from tickwire.simulators import Market, Universe
from tickwire.simulators.scenario import parse

S = 10**9
MS = 10**6


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the stages of chunk making each step runs (a new count per `counts.append(0)`)."""
    counts: list[int] = []
    real = Market._chunk

    def chunk(self: Market) -> Generator[None, None, Any]:
        making = real(self)
        while True:
            counts[-1] += 1
            try:
                next(making)
            except StopIteration as done:
                return done.value
            yield

    monkeypatch.setattr(Market, "_chunk", chunk)
    return counts


def test_a_1ms_step_makes_at_most_one_slice_of_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 0.5 s chunk of the default universe with books costs ~10 ms: made whole by the step
    # that needed it, it would stall every client of a live server that long twice a second.
    counts = _counting(monkeypatch)
    m = Market(Universe.default(), seed=1, start_ns=0, book_depth=20)
    m.steps_make_ahead = True
    counts.append(0)
    m.step_book(1 * MS)  # the first chunk: nothing was made ahead of it
    assert counts[-1] >= 10, "a chunk is made in many slices"
    for k in range(2, 1001):
        counts.append(0)
        m.step_book(k * MS)
    assert max(counts[1:]) == 1
    assert sum(counts[1:]) >= 2 * 10  # the next chunks were made: two, in that second


def _pair(**kw: Any) -> tuple[Market, Market]:
    """A market whose steps make the next chunk ahead, and one whose steps make it when due."""
    u = Universe.default()
    fine, coarse = Market(u, seed=4, start_ns=0, **kw), Market(u, seed=4, start_ns=0, **kw)
    fine.steps_make_ahead = True
    return fine, coarse


def test_made_ahead_or_not_the_same_ticks_levels_and_books() -> None:
    fine, coarse = _pair(book_depth=20)
    got: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(1, 1151):  # 1 ms steps: the next chunk made ahead of each boundary
        got.append(fine.step_book(k * MS))
        if k in (380, 1150):  # mid-chunk, while the next one is being made (or made)
            ticks, levels = coarse.step_book(k * MS)  # one step: made when needed
            assert np.concatenate([t for t, _ in got]).tobytes() == ticks.tobytes()
            assert np.concatenate([lv for _, lv in got]).tobytes() == levels.tobytes()
            assert fine.book_snapshot().tobytes() == coarse.book_snapshot().tobytes()
            assert fine.snapshot().tobytes() == coarse.snapshot().tobytes()
            got.clear()


def test_a_scenario_started_while_a_chunk_is_made_ahead_counts_from_the_chunks_made() -> None:
    u = Universe.default()
    halt = parse('[[event]]\nkind = "halt"\nat = "0s"\nduration = "1s"\nsymbol = "AAPL"\n', u)
    fine, coarse = _pair(book_depth=20)
    for k in range(1, 6):
        fine.step_book(k * MS)
    coarse.step_book(5 * MS)
    # at 5 ms both have made 0.5 s; fine, slices of the chunk after, which it finishes
    assert coarse.start_scenario(halt) == pytest.approx(0.495)
    assert fine.start_scenario(halt) == pytest.approx(0.995)
    for m, start in ((fine, 1000 * MS), (coarse, 500 * MS)):  # halted from there to 1.1 s
        ticks = m.step(1100 * MS)
        aapl = ticks["ts"][ticks["sym"] == 0]
        assert (aapl < start).any() and not (aapl >= start).any()


def test_a_caller_may_make_the_slices_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # A live server steps, sends, then makes a slice: its clients do not wait for the slice.
    counts = _counting(monkeypatch)
    m = Market(Universe.default(), seed=1, start_ns=0, book_depth=20)  # steps make none ahead
    counts.append(0)
    m.step_book(1 * MS)
    for k in range(2, 501):
        counts.append(0)
        m.step_book(k * MS)
        assert counts[-1] == 0  # the step alone makes nothing ahead
        m.make_ahead()
    assert max(counts[1:]) == 1 and sum(counts[1:]) >= 10
    counts.append(0)
    m.step_book(501 * MS)  # the next chunk is due: made already
    assert counts[-1] == 0
