"""The server's order books, sans-IO (`hub.books.Books` on a real market with books): every
change in order for a reader that keeps up, conflated changes for a latest reader, a fresh
snapshot for a reader past the lag bound, and books kept only while someone holds them."""

from __future__ import annotations

import numpy as np

from tickwire.feed.hub import bookwire
from tickwire.feed.hub.books import MAX_TAKE, Books
from tickwire.feed.protocol import book as b
from tickwire.simulators import Market, Universe

MS = 1_000_000


def _setup(keep_ns: int = 10**9) -> tuple[Market, Books, list[int]]:
    u = Universe.default()
    m = Market(u, seed=4, start_ns=0, book_depth=20)
    m.step_book(100 * MS)
    names = np.array(u.symbols, dtype=object)
    woken: list[int] = []
    return m, Books(names, u.tick_size, 20, m.book_snapshot, keep_ns), woken


def _step(m: Market, books: Books, until_ns: int) -> None:
    _, levels = m.step_book(until_ns)
    books.publish(levels)


def _market_view(m: Market, i: int, depth: int) -> b.Ladder:
    lad = m.book_snapshot()[i]
    lv = b.Levels.for_tick(float(m.universe.tick_size[i]))
    for side, name in ((0, "bid"), (1, "ask")):
        for price, size in zip(lad[f"{name}_price"], lad[f"{name}_size"], strict=True):
            if size:
                lv.set(side, lv.units(float(price)), int(size))
    return lv.view(depth)


def _client(books: Books, reader: object, taken: object) -> dict[str, tuple[b.Levels, int]]:
    snaps, _ = bookwire.json_entries(books, reader, taken)  # type: ignore[arg-type]
    return {e["symbol"]: b.load_snapshot(e) for e in snaps}


def test_a_reader_that_keeps_up_gets_every_change_and_the_markets_book() -> None:
    m, books, woken = _setup()
    reader = books.attach(lambda: woken.append(1))
    held = _client(books, reader, books.book(reader, np.array([0, 1]), 20))
    changes = 0
    for t in range(101, 400):
        _step(m, books, t * MS)
        snaps, entries = bookwire.json_entries(books, reader, books.take(reader))
        assert not snaps
        for e in entries:
            assert "conflated" not in e
            levels, depth = held[e["symbol"]]
            b.apply_entry(levels, e, depth)  # raises on a seq gap or a wrong checksum
            changes += len(e["changes"])
    assert changes > 300 and woken
    for i, name in ((0, "AAPL"), (1, "MSFT")):
        assert held[name][0].view(20) == _market_view(m, i, 20)


def test_a_latest_reader_gets_conflated_changes_to_the_same_book() -> None:
    m, books, _ = _setup()
    reader = books.attach(lambda: None)
    books.set_latest(reader, True)
    held = _client(books, reader, books.book(reader, np.array([0]), 5))
    for t in range(1, 30):
        _step(m, books, 100 * MS + t * 20 * MS)  # 20 ms of changes folded into each take
        _, entries = bookwire.json_entries(books, reader, books.take(reader))
        for e in entries:
            assert e["conflated"] is True
            levels, depth = held[e["symbol"]]
            b.apply_entry(levels, e, depth)
    assert held["AAPL"][0].view(5) == _market_view(m, 0, 5)


def test_a_reader_past_the_lag_bound_gets_a_fresh_snapshot() -> None:
    m, books, _ = _setup(keep_ns=50 * MS)
    reader = books.attach(lambda: None)
    books.book(reader, np.array([0]), 20)
    for t in range(101, 400):  # 300 ms without a take: the updates it needs are gone
        _step(m, books, t * MS)
    taken = books.take(reader)
    assert taken.snaps == [0]
    held = _client(books, reader, taken)
    assert held["AAPL"][0].view(20) == _market_view(m, 0, 20)
    assert held["AAPL"][0].seq == books.levels[0].seq  # type: ignore[union-attr]
    _step(m, books, 401 * MS)
    snaps, entries = bookwire.json_entries(books, reader, books.take(reader))
    assert not snaps and all("conflated" not in e for e in entries)


def test_books_are_kept_only_while_someone_holds_them() -> None:
    m, books, _ = _setup()
    one, two = books.attach(lambda: None), books.attach(lambda: None)
    books.book(one, np.array([0, 2]), 20)
    books.book(two, np.array([0]), 3)
    assert books.tracked.nonzero()[0].tolist() == [0, 2]
    books.drop(one, np.array([0]))
    assert books.tracked[0]  # `two` still holds it
    books.detach(two)
    books.detach(one)
    assert not books.tracked.any() and books.levels[0] is None
    _step(m, books, 200 * MS)  # untracked: nothing kept
    assert not books.recent


def test_a_reader_far_behind_gets_snapshots_not_a_huge_message() -> None:
    m, books, _ = _setup()
    reader = books.attach(lambda: None)
    ids = np.arange(len(m.universe))
    books.book(reader, ids, 20)
    for t in range(101, 400):  # 300 ms of every book: more than MAX_TAKE level updates
        _step(m, books, t * MS)
    taken = books.take(reader)
    assert taken.snaps == ids.tolist() and not len(taken.records)
    held = _client(books, reader, taken)
    assert held["AAPL"][0].view(20) == _market_view(m, 0, 20)
    _step(m, books, 401 * MS)
    assert 0 < len(books.take(reader).records) <= MAX_TAKE  # and every change from there
