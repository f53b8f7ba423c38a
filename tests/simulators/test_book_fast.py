"""The book's fast paths: the same bytes as the plain numpy model, and each kernel exact."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from tickwire.simulators import Market, Universe
from tickwire.simulators import book as bk
from tickwire.simulators._book_kernels import (
    DistanceLaw,
    Scratch,
    grouped_order,
    pareto_lots,
    stable_order,
)
from tickwire.simulators.scenario import parse

START = 1_700_000_000_000_000_000
DROUGHT = '[[event]]\nkind = "drought"\nat = "1s"\nduration = "3s"\nspread = 3\nthin = 0.2\n'


def _digest(market: Market, until_ns: int, step_ns: int) -> str:
    """sha256 (16 hex digits) of every tick and level update, then the final snapshot."""
    h = hashlib.sha256()
    now = market.now_ns
    while now < until_ns:
        now += step_ns
        ticks, levels = market.step_book(now)
        h.update(ticks.tobytes())
        h.update(levels.tobytes())
    h.update(market.book_snapshot().tobytes())
    return h.hexdigest()[:16]


# Digests of the plain numpy model (searchsorted, Generator.pareto, np.where, argsort) that
# the fast paths replace: a seed must give these same bytes. Taken again when the model's flow
# gained its refill after moves (the kernels unchanged, each checked against numpy below).
# One-second chunks where the digests were taken so (books now default to 0.5 s chunks).
def _case(case: str) -> str:
    s = 10**9
    if case == "stocks":
        m = Market(Universe.synthetic(30, seed=1), 9, START, chunk_s=1.0, book_depth=20)
        return _digest(m, START + 3 * s, 7_000_000)
    if case == "crypto":
        u = Universe.crypto_pairs()
        m = Market(u, seed=4, start_ns=START, session="24h", chunk_s=1.0, book_depth=25)
        return _digest(m, START + 2 * s, 50_000_000)
    if case == "drought":  # a thinning book: the draws for orders that fail to arrive
        u = Universe.synthetic(6, seed=1)
        m = Market(u, 2, 0, session="24h", chunk_s=1.0, book_depth=10, scenario=parse(DROUGHT, u))
        return _digest(m, 5 * s, 100_000_000)
    if case == "one level":
        m = Market(Universe.synthetic(12, seed=2), seed=3, chunk_s=1.0, book_depth=1)
        return _digest(m, 3 * s, 10**7)
    if case == "penny stocks":  # bids a few ticks above the lowest price: levels below it
        u = Universe.synthetic(6, seed=1)
        u = dataclasses.replace(u, price=np.array([0.05, 0.08, 0.12, 0.3, 1.5, 20.0]))
        m = Market(u, seed=3, start_ns=START, session="24h", chunk_s=1.0, book_depth=20)
        return _digest(m, START + 3 * s, 10_000_000)
    if case == "1000 levels":
        m = Market(Universe.synthetic(5, seed=2), seed=3, chunk_s=1.0, book_depth=1000)
        return _digest(m, 2 * s, 10**8)
    if case == "60 s chunks":  # event times past 2^32 ns into a chunk: three radix passes
        u = Universe.synthetic(30, seed=5)
        m = Market(u, seed=8, book_depth=20, activity=0.01, chunk_s=60.0)
        return _digest(m, 130 * s, s)
    # 700 symbols 30 deep: more than 2^16 segments, sorted in blocks of whole symbols
    return _digest(Market(Universe.synthetic(700, seed=1), seed=2, book_depth=30), 2 * s, 10**8)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("stocks", "9916e524229de4fd"),
        ("crypto", "b1f9970054b65af8"),
        ("drought", "77706330446a5325"),
        ("one level", "42cbe6774da1"),
        ("penny stocks", "bd50df87dd4ceedd"),  # taken with the fast paths as they were before
        ("1000 levels", "a8e7165ebefe"),
        ("60 s chunks", "19f8f29bcead"),
        ("700 symbols", "e5b1f385e298"),
    ],
)
def test_a_seed_gives_the_same_book_bytes_as_the_plain_model(case, expected):
    assert _case(case)[: len(expected)] == expected


def test_pareto_lots_are_numpys_from_the_same_draws():
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for size in (1, 1000, 1_000_000, (2, 3001)):
        want = np.floor(a.pareto(bk.ORDER_TAIL, size) + 1)
        got = pareto_lots(b, bk.ORDER_TAIL, size)
        assert got.shape == want.shape and got.tobytes() == want.tobytes()
    assert a.random() == b.random()  # the stream is where numpy leaves it


@pytest.mark.parametrize("depth", [*range(1, 41), 100, 333, 999, 1000])
def test_distance_law_is_searchsorted(depth):
    d = np.arange(depth)
    w = (d + bk.D0) ** -(1 + bk.MU)
    cdf = np.cumsum(w / w.sum())
    u = np.random.default_rng(depth).random(20_000)
    edges = np.arange(1 << 12) / (1 << 12)
    near = np.concatenate((cdf, np.nextafter(cdf, 0), np.nextafter(cdf, 2)))
    u = np.concatenate((u, edges, near, [np.nextafter(1.0, 0)]))
    u = u[u < 1]
    want = np.minimum(np.searchsorted(cdf, u, "right"), depth - 1)
    got = DistanceLaw(cdf)(u)
    assert np.array_equal(got, want)


def test_distance_law_too_fine_for_a_table_still_searches():
    cdf = np.array([0.5, 0.5 + 1e-9, 1.0])  # two values closer than 2^-20 apart
    u = np.array([0.0, 0.5, 0.5 + 5e-10, 0.5 + 2e-9, 0.99])
    assert np.array_equal(DistanceLaw(cdf)(u), np.minimum(np.searchsorted(cdf, u, "right"), 2))


@pytest.mark.parametrize("bound", [1, 7, 1 << 16, (1 << 16) + 1, 1 << 33, 1 << 49])
def test_stable_order_is_a_stable_argsort(bound):
    key = np.random.default_rng(bound).integers(0, bound, 50_000)
    key[::7] = key[0]  # many ties: stability shows
    assert np.array_equal(stable_order(key, bound), np.argsort(key, kind="stable"))


def test_level_batches_a_caller_keeps_are_never_written_again():
    """The book reuses the memory of batches nobody holds any more, never of one still held."""
    u = Universe.synthetic(20, seed=3)
    market = Market(u, seed=1, start_ns=START, book_depth=10, chunk_s=0.1)
    kept: list[tuple[np.ndarray, bytes]] = []
    for k in range(1, 301):  # 30 chunks of 0.1 s, 10 ms steps
        _, levels = market.step_book(START + k * 10_000_000)
        if k % 7 == 0:  # keep some views of pending chunks, let the rest go
            kept.append((levels, levels.tobytes()))
    assert len(kept) > 30 and sum(len(v) for v, _ in kept) > 1000
    for view, seen in kept:
        assert view.tobytes() == seen


@pytest.mark.parametrize("spans", [[5, 9, 3], [40_000] * 7, [30_000, 70_000, 10], [1 << 17]])
def test_grouped_order_is_a_stable_argsort(spans):
    """Keys in groups of ascending ranges (a symbol's segments): blocks of 16 bits or wider."""
    rng = np.random.default_rng(len(spans))
    hi = np.cumsum(spans)
    lo = hi - spans
    sizes = rng.integers(1, 5000, len(spans))
    key = np.concatenate([rng.integers(a, b, k) for a, b, k in zip(lo, hi, sizes, strict=True)])
    start = np.cumsum(sizes) - sizes
    got = grouped_order(key, lo, hi, start, Scratch())
    assert np.array_equal(got, np.argsort(key, kind="stable"))


def test_scratch_names_share_bytes_across_types_and_growth_drops_old_views():
    """A name is one block of bytes whatever the type asked; when one type's request outgrows
    it, the next request of any type gets the new block, never a view kept of the old one."""
    w = Scratch()
    a = w("x", 100)
    a[:] = 7
    b = w("x", 800, np.uint8)
    assert np.shares_memory(a, b) and b.view(np.int64)[0] == 7
    big = w("x", 10_000, np.uint8)  # grows: a new block
    big[:] = 1
    again = w("x", 100)  # an int64 view of the new block, not of the old one
    assert np.shares_memory(again, big) and not np.shares_memory(again, a)
    assert again[0] == 0x0101010101010101
    rec = w("r", 3, bk.LEVEL_DTYPE)
    assert rec.dtype == bk.LEVEL_DTYPE and rec.size == 3 and not rec.tobytes().strip(b"\0")


@pytest.mark.parametrize("ticks", ["cents", "nickels too"])
def test_books_make_level_prices_as_ticks_make_theirs(ticks, monkeypatch):
    """With the market's units and scale, a book's level prices are ticks * units / scale (the
    product skipped where units are one), bit for bit what the same book gives in ticks."""
    u = Universe.synthetic(12, seed=4)
    if ticks == "nickels too":  # ticks of 5 units of 0.01: the product is made
        u = dataclasses.replace(u, tick_size=np.where(np.arange(12) % 2, 0.05, 0.01))
    market = Market(u, seed=6, start_ns=START, session="24h", book_depth=15)
    assert market.book is not None and market.book.prices is not None
    units, scale = market.book.prices  # the market's, as its ticks make their prices
    assert (ticks == "cents") == bool(np.all(units == 1))
    books = [
        bk.Book(market.book.lot, 15, np.random.default_rng(5), p) for p in (None, (units, scale))
    ]
    captured: list[tuple] = []
    steps = bk.Book.steps

    def spy(self, rec, prev_bid, prev_ask, t0_ns):  # the market's chunk, fed to both books too
        captured.append((rec, prev_bid.copy(), prev_ask.copy(), t0_ns))
        return (yield from steps(self, rec, prev_bid, prev_ask, t0_ns))

    monkeypatch.setattr(bk.Book, "steps", spy)
    market.step(START + 10**9)
    monkeypatch.undo()
    in_ticks, in_prices = (book.step(*captured[-1])[0] for book in books)
    assert len(in_ticks) > 500
    sym = in_ticks["sym"].astype(np.intp)
    expected = in_ticks.copy()
    expected["price"] = in_ticks["price"] * units[sym] / scale[sym]
    assert in_prices.tobytes() == expected.tobytes()
