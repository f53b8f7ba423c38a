"""The client library's order books: the sans-IO book logic under random streams with drops,
duplicates, reorders and corruption (it never holds a wrong book), and `feed.book()` end to end
over real loopback with the real server."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import pytest
import trio
from _book_streams import ASKS, BIDS, DEPTH, change_st, fault_st, true_book, with_faults
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed import Book, BookUpdate, Gap, connect
from tickwire.feed import protocol as p
from tickwire.feed.client.book import ClientBooks
from tickwire.feed.hub import bookwire
from tickwire.feed.protocol import book as b
from tickwire.feed.server.server import Server, ServerConfig


@pytest.fixture
async def server(nursery: trio.Nursery) -> Server:
    """A real server with 20-level books on 127.0.0.1, any free port."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=200, book_depth=20))
    await nursery.start(srv.run)
    return srv


def _server_stream(
    ops: list[tuple[bool, list[tuple[int, int, int]]]],
) -> tuple[list[dict[str, Any]], dict[int, b.Ladder], b.Levels]:
    """A true book and the `book` messages that describe it: (messages, view by seq, book)."""
    srv = true_book()
    truth = {0: srv.view(DEPTH)}
    msgs: list[dict[str, Any]] = []
    for conflate, changes in ops:
        before, since = srv.view(DEPTH), srv.seq
        applied = []
        for side, i, size in changes:
            units = (ASKS if side else BIDS)[i]
            if size or len(srv.asks if side else srv.bids) > 1:  # a side never empties
                srv.set(side, units, size)
                applied.append((side, srv.price(units), size))
        if not applied:
            continue
        srv.seq += len(applied)
        after = truth[srv.seq] = srv.view(DEPTH)
        crc = b.checksum(after)
        if conflate:  # the current size of each level that differs from the book sent
            diff = [(s, srv.price(u), z) for s, u, z in b.diff(before, after)]
            entry = b.change_entry("X", srv.seq, diff, crc, srv.seq, since=since)
        else:
            entry = b.change_entry("X", srv.seq, applied, crc, srv.seq)
        msgs.append({"type": "book", "seq": len(msgs) + 2, "books": [entry]})
    return msgs, truth, srv


def _snapshot(levels: b.Levels) -> dict[str, Any]:
    return {"type": "book_snapshot", "seq": 1, "books": [b.snapshot_entry("X", levels, DEPTH)]}


def _corrupt(msg: dict[str, Any]) -> dict[str, Any]:
    """The message with its book's checksum refuted."""
    entry = dict(msg["books"][0])
    entry["checksum"] ^= 1
    return {**msg, "books": [entry]}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(change_st, max_size=6)), max_size=40), fault_st)
def test_client_book_never_accepts_a_wrong_book(
    ops: list[tuple[bool, list[tuple[int, int, int]]]], faults: list[tuple[str, int]]
) -> None:
    msgs, truth, _ = _server_stream(ops)
    start = b.Levels(2, 1)
    start.load(truth[0], 0, 0)
    stream = with_faults([_snapshot(start), *msgs], faults, _corrupt)
    books = ClientBooks()
    books.want(["X"], DEPTH)
    accepted = gaps = 0
    for msg in stream:
        events = books.receive(orjson.loads(orjson.dumps(msg)))
        gaps += sum(isinstance(e, Gap) and e.reason == "book" for e in events)
        held = books.book("X")
        if held is not None:  # whatever it holds is the true book at its seq
            want = truth[held.seq]
            assert held.bids["size"].tolist() == [s for _, s in want[0]]
            assert (held.bids["price"] * 100).round().astype(int).tolist() == [
                u for u, _ in want[0]
            ]
            assert held.asks["size"].tolist() == [s for _, s in want[1]]
            accepted += any(isinstance(e, BookUpdate) for e in events)
        if books.take_resync():  # what the server does when asked again: a fresh snapshot
            now = b.Levels(2, 1)
            now.load(truth[max(truth)], max(truth), 0)
            books.receive(orjson.loads(orjson.dumps(_snapshot(now))))
    if not faults:
        assert gaps == 0 and accepted == len(stream)


def test_a_gap_in_book_seq_resyncs_and_reports_it() -> None:
    msgs, truth, _ = _server_stream([(False, [(0, 9, 3)]), (False, [(1, 0, 2)])])
    start = b.Levels(2, 1)
    start.load(truth[0], 0, 0)
    books = ClientBooks()
    books.want(["X"], 5)
    assert [type(e) for e in books.receive(_snapshot(start))] == [BookUpdate]
    events = books.receive(msgs[1])  # the first change never came
    assert events == [Gap("book", None, ("X",))]
    assert books.book("X") is None and books.take_resync() == {5: ["X"]}
    assert books.receive(msgs[0]) == []  # no book held: waits for its snapshot


@pytest.mark.parametrize("encoding", ["json", "binary"])
@pytest.mark.parametrize("mode", ["all", "latest"])
async def test_feed_keeps_books_that_match_the_server(
    server: Server, encoding: Literal["json", "binary"], mode: Literal["all", "latest"]
) -> None:
    with trio.fail_after(30):
        async with connect(server.url, encoding=encoding) as feed:
            await feed.subscribe(["AAPL", "MSFT"], book=True, mode=mode)
            await feed.subscribe(["NVDA"], book=4)
            updates = conflated = 0
            async for event in feed:
                assert not isinstance(event, Gap), event
                if isinstance(event, BookUpdate):
                    updates += event.kind == "book"
                    conflated += event.conflated
                    if updates >= 200:
                        break
            assert conflated > 0  # NVDA at 4 levels: conflated changes
            book = feed.book("AAPL")
            assert isinstance(book, Book) and book.depth == 20
            assert book.bids["price"][0] < book.asks["price"][0]
            assert np.all(np.diff(book.bids["price"]) < 0)
            assert np.all(np.diff(book.asks["price"]) > 0)
            assert book.bids.dtype.names == ("price", "size") and book.bids["size"].min() > 0
            small = feed.book("NVDA")
            assert small is not None and small.depth == 4
            tick = 0.01
            assert small.bids["price"][0] - small.bids["price"][-1] < 4 * tick
            assert feed.book("TSLA") is None and feed.book_resyncs == 0
            await feed.unsubscribe(["NVDA"])
            assert feed.book("NVDA") is None


async def test_books_come_back_after_a_reconnect(server: Server) -> None:
    with trio.fail_after(30):
        async with connect(server.url, backoff_initial_s=0.01) as feed:
            await feed.subscribe(["AAPL"], book=True)
            await feed.subscribe(["MSFT"], book=3)
            snapshots: list[tuple[str, ...]] = []
            dropped = False
            gaps = []
            async for event in feed:
                if isinstance(event, Gap):
                    gaps.append(event.reason)
                if isinstance(event, BookUpdate) and event.kind == "book_snapshot":
                    snapshots.append(event.symbols)
                    if dropped and {s for x in snapshots[2:] for s in x} == {"AAPL", "MSFT"}:
                        break
                if isinstance(event, BookUpdate) and event.kind == "book" and not dropped:
                    before = feed.book("AAPL")
                    assert before is not None
                    dropped = True
                    for conn in list(server.connections):
                        conn.close(p.CloseCode.GOING_AWAY, "test drops the connection")
            assert gaps == ["reconnected"] and len(snapshots) >= 4
            after, small = feed.book("AAPL"), feed.book("MSFT")
            assert after is not None and after.seq >= before.seq and after.depth == 20
            assert small is not None and small.depth == 3  # each at the depth it asked for
            stats = await feed.stats()
            assert stats["books"] == 2 and stats["server"]["book_depth"] == 20
            assert feed.book_resyncs == 0


def test_binary_books_apply_in_order_and_a_lost_frame_resyncs() -> None:
    """Binary frames from the server's own Books on a real market, through the client's books:
    every frame applies (checked), and losing one is caught by the book seq."""
    from tickwire.feed.hub.books import Books
    from tickwire.simulators import Market, Universe

    u = Universe.default()
    market = Market(u, seed=2, start_ns=0, book_depth=DEPTH)
    market.step_book(10**8)
    books = Books(
        np.array(u.symbols, dtype=object), u.tick_size, DEPTH, market.book_snapshot, 10**9
    )
    reader = books.attach(lambda: None)
    seq = iter(range(1, 10**6))
    frames = bookwire.binary_frames(
        books, reader, books.book(reader, np.array([0, 1]), DEPTH), seq.__next__
    )
    for k in range(1, 200):
        _, levels = market.step_book(10**8 + k * 10**6)
        books.publish(levels)
        frames += bookwire.binary_frames(books, reader, books.take(reader), seq.__next__)
    client = ClientBooks()
    refs = zip(u.symbols, u.tick_size.tolist(), strict=True)
    client.learn([{"symbol": s, "tick_size": t} for s, t in refs])
    client.server_depth = DEPTH
    client.want(["AAPL", "MSFT"], True)
    lost = len(frames) // 2
    for i, frame in enumerate(frames):
        if i == lost:
            continue  # this frame never arrives
        events = client.receive_binary(frame)
        if i < lost:
            assert not any(isinstance(e, Gap) for e in events)
        elif gaps := [e for e in events if isinstance(e, Gap)]:
            assert gaps[0].reason == "book" and set(gaps[0].symbols) <= {"AAPL", "MSFT"}
            assert client.take_resync() == {True: list(gaps[0].symbols)}
            assert all(client.book(s) is None for s in gaps[0].symbols)
            break
    else:
        raise AssertionError("a lost book frame went unnoticed")


def test_unsubscribing_one_symbol_of_a_wildcard_book_keeps_the_others_wanted() -> None:
    books = ClientBooks()
    books.learn([{"symbol": s, "tick_size": 0.01} for s in ("A", "B", "C")])
    books.want(["*"], 5)
    books.forget(["B"])  # restored after a reconnect as A and C, never "*" again
    assert books.wanted == {"A": 5, "C": 5}
    books.forget(["*"])
    assert books.wanted == {}
