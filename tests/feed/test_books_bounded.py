"""The server's books stay bounded in a long replay whose prices drift far: a recorded book (as
Tardis incremental_book_L2 gives it) leaves levels behind deep and seldom removes them, so the
levels it touches grow without bound; the server keeps those near each best only, and still
serves the replay's book exactly: a client that keeps only its depth holds every checksum."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub import books as hb
from tickwire.feed.protocol import book as b
from tickwire.simulators._replay_book import ReplayBook
from tickwire.simulators.book import LEVEL_DTYPE, Reason

DEPTH = 10
TICK = 0.01


def _drifting(steps: int, seed: int) -> tuple[NDArray[np.void], NDArray[np.bool_], int]:
    """One symbol's recorded rows: an opening book, then a random walk of the best (ticks)
    that drifts up for the first half and down for the second. Each step adds the new best on
    one side and removes the other side's best; levels left behind are never removed. Also
    the most levels its book held at once."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, float, int, int]] = []  # ts, seq, price ticks, size, side
    bids, asks = {0: 5}, {1: 5}
    for side, levels in ((0, bids), (1, asks)):
        for u, z in levels.items():
            rows.append((0, 1, u, z, side))
    opening = len(rows)
    mid, seq, peak = 0, 1, 0
    for k in range(1, steps + 1):
        up = rng.random() < (0.8 if k < steps // 2 else 0.2)
        changes = []
        if up:  # the best ask is taken, a new best bid comes
            changes += [(1, mid + 1, 0), (0, mid + 1, int(rng.integers(1, 9)))]
            mid += 1
            changes.append((1, mid + 1, int(rng.integers(1, 9))))
        else:  # the best bid is taken, a new best ask comes
            changes += [(0, mid, 0), (1, mid, int(rng.integers(1, 9)))]
            mid -= 1
            changes.append((0, mid, bids.get(mid) or int(rng.integers(1, 9))))
        for _ in range(2):  # noise within the depth, never removed
            side = int(rng.integers(0, 2))
            u = (
                mid - int(rng.integers(1, DEPTH))
                if side == 0
                else mid + 1 + int(rng.integers(1, DEPTH))
            )
            changes.append((side, u, int(rng.integers(1, 9))))
        for side, u, z in changes:
            levels = asks if side else bids
            if z:
                levels[u] = z
            else:
                levels.pop(u, None)
            seq += 1
            rows.append((k * 1000, seq, u, z, side))
        peak = max(peak, len(bids) + len(asks))
    out = np.zeros(len(rows), LEVEL_DTYPE)
    ts, sq, units, size, side = (np.array(c) for c in zip(*rows, strict=True))
    out["ts"], out["seq"], out["size"], out["side"] = ts, sq, size, side
    out["price"] = np.round(units * TICK, 2)
    snapshot = np.zeros(len(rows), np.bool_)
    snapshot[:opening] = True
    return out, snapshot, peak


def test_a_drifting_replay_keeps_the_books_bounded_and_every_checksum() -> None:
    steps = 6000
    records, snapshot, peak = _drifting(steps, seed=5)
    replay = ReplayBook(records, snapshot, np.array([TICK]), DEPTH)
    books = hb.Books(np.array(["X"], object), np.array([TICK]), DEPTH, replay.snapshot, 10**12)
    reader = books.attach(lambda: None, paces=False)
    books.book(reader, np.array([0], np.intp), DEPTH)
    lv = books.levels[0]
    assert lv is not None
    client = b.Levels.for_tick(TICK, lv.seq, lv.ts)  # a client at the server's depth
    for side, levels in enumerate(books.view(0, DEPTH)):
        for u, z in levels:
            client.set(side, u, z)
    held, revealed = [], 0
    for k in range(1, steps + 1):
        released = replay.release(k * 1000)
        books.publish(released)
        revealed += int((released["reason"] == Reason.REVEAL).sum())
        units = np.round(released["price"] / TICK).astype(np.int64) * lv.tick_units
        sides, sizes = released["side"].tolist(), released["size"].tolist()
        changes = zip(sides, units.tolist(), sizes, strict=True)
        # the client keeps its depth only, and checks the server's checksum (BookError if not)
        client.apply(changes, DEPTH, books.crc(0, DEPTH), lv.seq, lv.ts)
        assert client.view(DEPTH) == books.view(0, DEPTH)
        held.append(len(lv.bids) + len(lv.asks))
    # The recorded book (every level touched and not removed) grew far beyond the depth...
    assert peak > 1500 and replay.snapshot()["seq"][0] == lv.seq
    # ...while the server's book stayed within its bound all along, the levels the falling
    # best brought back within the depth coming as the replay's REVEAL records.
    assert revealed > 100, revealed
    bound = 2 * (hb.TRIM_LEVELS * DEPTH + hb.TRIM_SLACK)
    assert max(held) <= bound, max(held)
