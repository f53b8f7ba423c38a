"""`BookMirror`'s bookkeeping against brute force: changes numbered one by one, whole books
replacing the one held with the changes that make it, and the top of each book; a batch of
level records applied in arrays against the same records row by row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.simulators.book import LEVEL_DTYPE
from tickwire.simulators.bookmirror import _BATCH, BookMirror


def _set(levels: dict[int, int], units: int, size: int) -> None:
    if size:
        levels[units] = size
    else:
        levels.pop(units, None)


def test_changes_whole_books_and_tops_agree_with_brute_force() -> None:
    rng = np.random.default_rng(7)
    mirror = BookMirror(np.array([0.01, 0.5]), depth=50)
    held: list[tuple[dict[int, int], dict[int, int]]] = [({}, {}), ({}, {})]
    seq = [0, 0]
    for step in range(5000):
        s = int(rng.integers(2))
        if step % 500 == 499:  # a whole book now and then: the changes that make it
            book = ({int(u): 1 + int(rng.integers(9)) for u in rng.integers(900, 1000, 20)}, {})
            book[1].update({int(u): 1 + int(rng.integers(9)) for u in rng.integers(1001, 1100, 20)})
            changes = mirror.replace(s, book, step)
            for side, u, size, k in changes:
                seq[s] += 1
                assert k == seq[s]
                _set(held[s][side], u, size)
            assert held[s] == book
        else:
            side = int(rng.integers(2))
            u = int(rng.integers(900, 1000) if side == 0 else rng.integers(1001, 1100))
            size = int(rng.integers(0, 4))  # a quarter removals
            seq[s] += 1
            assert mirror.change(s, side, u, size, step) == seq[s]
            _set(held[s][side], u, size)
        bids, asks = held[s]
        want = (max(bids), bids[max(bids)], min(asks), asks[min(asks)]) if bids and asks else None
        assert mirror.top(s) == want


_TICKS = np.array([0.01, 0.5, 0.01, 0.25, 1.0])


def _rows(rng: np.random.Generator, n: int, books: int, band: int, gone: float) -> np.ndarray:
    """Level records of `books` books in a band of `band` prices: a level set, changed and
    removed many times in one batch, removals (share `gone`) of levels never held."""
    rows = np.zeros(n, LEVEL_DTYPE)
    sym = rng.integers(0, books, n)
    rows["sym"], rows["side"] = sym, rng.integers(0, 2, n)
    rows["price"] = rng.integers(1, band + 1, n) * np.round(_TICKS * 100)[sym] / 100
    rows["size"] = np.where(rng.random(n) < gone, 0, rng.integers(1, 4, n))
    rows["seq"] = np.arange(1, n + 1) * 3
    rows["ts"] = np.cumsum(rng.integers(0, 5, n))
    return rows


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(_BATCH, 3 * _BATCH), min_size=1, max_size=3),
    st.integers(1, 5),
    st.integers(1, 40),
    st.floats(0, 1),
)
def test_a_batch_applied_in_arrays_makes_the_books_row_by_row_does(
    seed: int, sizes: list[int], books: int, band: int, gone: float
) -> None:
    """`apply` of a batch of many rows a book (in arrays) against the same rows one by one (the
    loop): every book, seq, ts and top the same, then the same changes to a whole book."""
    rng = np.random.default_rng(seed)
    batches = [_rows(rng, n, books, band, gone) for n in sizes]
    fast, slow = BookMirror(_TICKS, depth=90), BookMirror(_TICKS, depth=90)
    start = _rows(rng, 40, 5, band, 0.0)  # books held before, loaded whole
    for s in (0, 2):
        mine = start[start["sym"] == s]
        if len(mine):
            fast.load(mine)
            slow.load(mine)
    calls = []
    real = BookMirror._apply_batch

    def spy(self: BookMirror, *args: object) -> None:
        calls.append(1)
        real(self, *args)  # type: ignore[arg-type]

    BookMirror._apply_batch = spy  # type: ignore[method-assign]
    try:
        for rows in batches:
            fast.apply(rows)
            for k in range(len(rows)):
                slow.apply(rows[k : k + 1])
    finally:
        BookMirror._apply_batch = real  # type: ignore[method-assign]
    assert len(calls) == len(batches)  # the array path was taken, once a batch
    assert fast.snapshot().tobytes() == slow.snapshot().tobytes()
    for s in range(len(_TICKS)):
        assert fast.top(s) == slow.top(s)
    whole = ({5: 1, 7: 2}, {30: 4, 31: 1})
    for s in range(len(_TICKS)):
        assert fast.replace(s, whole, 99) == slow.replace(s, whole, 99)
