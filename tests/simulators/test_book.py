"""The order book: one market with the ticks, exact, seeded, never crossed."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.simulators import Market, TickFlag, Universe
from tickwire.simulators.book import LEVEL_DTYPE, Reason, ladder_dtype
from tickwire.simulators.stylized import book_report

BOOK_FACTS = [
    "depth profile: deepest level (ticks from best)",
    "  deepest / best level mean depth",
    "spread at 1 tick (large-tick names)",
    "  spread >= 5 ticks vs a geometric law",
    "cancellations per trade",
    "limit order size tail (Hill, top 1%)",
    "best-level imbalance calls the next mid move",
]

START = 1_700_000_000_000_000_000


def _books(snap: np.ndarray) -> list[list[dict[float, int]]]:
    """A snapshot as plain dicts: [symbol][side] -> {price: size} (non-empty levels)."""
    out = []
    sides = ("bid", "ask")
    for r in snap:
        pairs = (zip(r[f"{s}_price"].tolist(), r[f"{s}_size"].tolist(), strict=True) for s in sides)
        bids, asks = ({p: s for p, s in side if s} for side in pairs)
        out.append([bids, asks])
    return out


def _replay(market: Market, until_ns: int, step_ns: int, watch: set[int]) -> dict[str, int]:
    """Step the market, apply every level update to a plain book, check it at every tick."""
    books = _books(market.book_snapshot())
    seq = market.book_snapshot()["seq"].astype(np.int64)
    seen = {"ticks": 0, "updates": 0, "trades": 0}
    now, steps = market.now_ns, 0
    mine = np.array(sorted(watch))
    taken: dict[int, int] = {}  # symbol -> size a TRADE update took, until its tick
    while now < until_ns:
        now += step_ns
        steps += 1
        ticks, levels = market.step_book(now)
        assert levels.dtype == LEVEL_DTYPE
        assert np.all(np.diff(levels["ts"]) >= 0)
        # the book seq of every symbol: +1 an update, no gaps, across steps and chunks
        order = np.argsort(levels["sym"], kind="stable")
        by_sym = levels[order]
        per = np.bincount(by_sym["sym"], minlength=len(seq))
        first = np.cumsum(per) - per
        expect = np.arange(len(by_sym)) - np.repeat(first, per) + np.repeat(seq, per) + 1
        assert np.array_equal(by_sym["seq"].astype(np.int64), expect), "book seq without gaps"
        seq += per
        levels = levels[np.isin(levels["sym"], mine)]
        ticks = ticks[np.isin(ticks["sym"], mine)]
        # merge by time; at one ts a symbol's level updates come before its tick
        kind = np.concatenate((np.zeros(len(levels), int), np.ones(len(ticks), int)))
        ts = np.concatenate((levels["ts"], ticks["ts"]))
        order = np.lexsort((kind, ts))
        for i in order.tolist():
            if kind[i] == 0:
                u = levels[i]
                s = int(u["sym"])
                side, price, size = int(u["side"]), float(u["price"]), int(u["size"])
                book = books[s][side]
                before = book.get(price, 0)
                assert size != before, "an update changes its level"
                assert size < 1 << 40, "sizes never wrap below zero"
                if u["reason"] == Reason.TRADE:
                    assert s not in taken, "one trade per tick"
                    taken[s] = before - size
                if size:
                    book[price] = size
                else:
                    book.pop(price, None)
                bids, asks = books[s]
                if bids and asks:
                    assert max(bids) < min(asks), "never crossed nor locked"
                seen["updates"] += 1
            else:
                t = ticks[i - len(levels)]
                s = int(t["sym"])
                # the level gave exactly what the tick says was traded, no more than it held
                traded = int(t["flags"]) & TickFlag.TRADE
                assert taken.pop(s, 0) == (int(t["last_size"]) if traded else 0)
                bids, asks = books[s]
                best_bid, best_ask = max(bids), min(asks)
                assert (best_bid, bids[best_bid]) == (float(t["bid"]), int(t["bid_size"]))
                assert (best_ask, asks[best_ask]) == (float(t["ask"]), int(t["ask_size"]))
                seen["ticks"] += 1
                seen["trades"] += int(t["flags"]) & TickFlag.TRADE
        if steps % 50:
            continue
        # the snapshot is the replayed book, within its depth
        snap = _books(market.book_snapshot())
        for s in watch:
            depth = market.book.depth if market.book else 0
            for side in (0, 1):
                best = (max if side == 0 else min)(books[s][side])
                tick = float(market.universe.tick_size[s])
                near = {
                    p: v for p, v in books[s][side].items() if abs(p - best) < (depth - 0.5) * tick
                }
                assert snap[s][side] == near, (s, side, best, sorted(snap[s][side]), sorted(near))
    return seen


def test_every_tick_is_the_top_of_the_book_and_the_book_never_crosses():
    u = Universe.default()
    market = Market(u, seed=3, start_ns=START, book_depth=20)
    watch = {u.index(s) for s in ("AAPL", "NVDA", "SPY", "INTC", "COST")}
    seen = _replay(market, START + 10 * 10**9, 7_000_000, watch)
    assert seen["ticks"] > 2000 and seen["trades"] > 300 and seen["updates"] > 30_000


def test_crypto_books_are_exact_in_lots():
    u = Universe.crypto_pairs()
    market = Market(u, seed=4, start_ns=START, session="24h", book_depth=25)
    seen = _replay(market, START + 10 * 10**9, 10_000_000, set(range(len(u))))
    assert seen["ticks"] > 1000 and seen["updates"] > 10_000
    snap = market.book_snapshot()
    assert snap.dtype == ladder_dtype(25)
    btc = snap[u.index("BTC-USD")]
    # sizes are integer counts of 0.00001 BTC; prices sit on the 0.01 grid
    assert btc["bid_size"].dtype == np.uint64 and btc["bid_size"].max() > 0
    cents = btc["bid_price"] * 100
    assert np.allclose(cents, np.round(cents), rtol=0, atol=1e-6)


def test_same_seed_same_book_byte_for_byte_whatever_the_step():
    u = Universe.synthetic(40, seed=1)
    a = Market(u, seed=9, start_ns=START, book_depth=20)
    b = Market(u, seed=9, start_ns=START, book_depth=20)
    ta, la = a.step_book(START + 3 * 10**9)
    parts = [b.step_book(START + k * 1_000_000) for k in range(1, 3001)]
    tb = np.concatenate([p[0] for p in parts])
    lb = np.concatenate([p[1] for p in parts])
    assert ta.tobytes() == tb.tobytes() and la.tobytes() == lb.tobytes()
    assert a.book_snapshot().tobytes() == b.book_snapshot().tobytes()
    c = Market(u, seed=10, start_ns=START, book_depth=20)
    assert c.step_book(START + 3 * 10**9)[1].tobytes() != la.tobytes()


def test_books_change_only_the_quoted_sizes():
    """Prices, trades and times are the market's with or without books: its facts still hold."""
    u = Universe.synthetic(30, seed=2)
    off = Market(u, seed=5, start_ns=START, chunk_s=10.0).step(START + 40 * 10**9)
    on = Market(u, seed=5, start_ns=START, chunk_s=10.0, book_depth=20)
    ticks = on.step(START + 40 * 10**9)
    sizes = ["bid_size", "ask_size"]
    rest = [f for f in ticks.dtype.names or () if f not in sizes]
    assert np.array_equal(ticks[rest], off[rest])
    assert not np.array_equal(ticks[sizes], off[sizes])


@pytest.mark.parametrize("depth", [0, -3, 1001, 2.5, True])
def test_depth_out_of_range_is_one_line(depth):
    with pytest.raises(ValueError, match=r"^book depth must be"):
        Market(Universe.default(), book_depth=depth)


def test_step_book_needs_books():
    with pytest.raises(ValueError, match="this market has no books: make it with book_depth=N"):
        Market(Universe.default()).step_book(10**9)


@pytest.fixture(scope="module")
def book_facts():
    """20 symbols, two minutes at the open, books 20 deep, sampled every second (~4 s)."""
    u = Universe.synthetic(20, seed=2)
    market = Market(u, seed=5, start_ns=START, book_depth=20)
    ticks, levels, ladders = [], [], []
    for k in range(1, 121):
        t, lv = market.step_book(START + k * 10**9)
        ticks.append(t)
        levels.append(lv)
        ladders.append(market.book_snapshot())
    rows = book_report(np.concatenate(ticks), np.concatenate(levels), np.stack(ladders), u)
    return {row.name: row for row in rows}


@pytest.mark.parametrize("name", BOOK_FACTS)
def test_book_stylized_fact(book_facts, name):
    row = book_facts[name]
    assert row.passed, f"{name}: {row.value:.3f}, target {row.target}"


def test_quiet_chunks_without_events_keep_the_book():
    """A chunk with no event at all (one quiet symbol) leaves the book and its snapshot as is."""
    u = Universe.synthetic(2, seed=1)
    market = Market(u, seed=2, start_ns=START, activity=0.002, book_depth=5, chunk_s=0.1)
    before = market.book_snapshot()
    quiet = 0
    for k in range(1, 400):
        ticks, levels = market.step_book(START + k * 50_000_000)
        snap = market.book_snapshot()
        assert np.all(snap["seq"] >= before["seq"])
        if not len(ticks) and not len(levels):
            quiet += 1
            assert snap.tobytes() == before.tobytes()
        before = snap
    assert quiet > 50


@pytest.mark.slow
def test_books_stay_the_top_across_the_overnight_roll():
    """The overnight move jumps the quote many ticks: the book clears and stays consistent."""
    from tickwire.simulators.market import SESSION_S

    u = Universe.synthetic(3, seed=4)
    market = Market(u, seed=1, start_ns=START, activity=0.2, book_depth=10, chunk_s=60.0)
    roll = START + int(SESSION_S) * 10**9
    market.step(roll - 30 * 10**9)  # level updates skipped: the snapshot still follows
    seen = _replay(market, roll + 30 * 10**9, 20_000_000, {0, 1, 2})
    assert seen["ticks"] > 100


def _window_fill(universe: Universe, seconds: int) -> np.ndarray:
    """Per sample (every second from the 5th: the starting profile has given way to the flow
    by then) and symbol: the share of its 20 ticks a side that hold orders."""
    market = Market(universe, seed=1, start_ns=0, book_depth=20)
    fills = []
    for k in range(1, seconds + 1):
        market.step_book(k * 10**9)
        if k >= 5:
            snap = market.book_snapshot()
            fills.append(((snap["bid_size"] > 0).mean(1) + (snap["ask_size"] > 0).mean(1)) / 2)
    return np.array(fills)


def test_btc_usd_book_window_is_mostly_filled_after_every_move():
    # BTC-USD's best moves tens of 0.01 USD ticks a record, more than the whole window: the
    # levels a move empties are refilled with it, so even right after one the book is full
    u = Universe.crypto_pairs()
    fill = _window_fill(u, 30)
    btc = fill[:, u.index("BTC-USD")]
    assert btc.mean() >= 0.85 and np.percentile(btc, 10) >= 0.75, btc.round(2)
    by_sym = dict(zip(u.symbols, fill.mean(0).round(2).tolist(), strict=True))
    assert min(by_sym.values()) >= 0.7, by_sym


def test_every_default_stock_book_window_is_mostly_filled():
    fill = _window_fill(Universe.default(), 30).mean(0)
    assert fill.min() >= 0.7 and fill.mean() >= 0.8, fill.round(2)
