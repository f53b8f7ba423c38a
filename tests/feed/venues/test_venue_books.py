"""The venues' book plumbing, sans-IO (`venues.books.VenueBooks` on a real market with books):
one shared hub reader per venue and depth, each connection's snapshot from its codec, every
change taken once and encoded once per depth, readers released with the last connection; and a
venue's own error when the server keeps no books."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tickwire.feed.hub.books import Books
from tickwire.feed.protocol import book as b
from tickwire.feed.venues import HandshakeRefused, Upgrade, route
from tickwire.feed.venues._common import Frame, Services, Shared
from tickwire.feed.venues.binance import BinanceSession
from tickwire.feed.venues.books import BookNews, VenueBooks
from tickwire.simulators import Market, Universe

MS = 1_000_000


class Codec:
    """A venue codec that records what it is asked: snapshots as the view's JSON, and every
    change of a take in order (so a client copy can be rebuilt from the frames alone)."""

    def __init__(self) -> None:
        self.encoded: list[BookNews] = []

    def book_snapshot(self, sym: int, depth: int, books: Books, now_ns: int) -> list[Frame]:
        lv = books.levels[sym]
        assert lv is not None
        return [Frame(orjson.dumps({"sym": sym, "seq": lv.seq, "view": books.view(sym, depth)}))]

    def encode_books(self, news: BookNews, now_ns: int) -> Shared:
        self.encoded.append(news)
        out = Shared(now_ns, {})
        records, units = news.take.records, news.take.units
        for r, u in zip(records.tolist(), units.tolist(), strict=True):
            out.add(int(r[4]), "level", (int(r[1]), int(r[6]), u, int(r[3])))
        return out


def _setup() -> tuple[Market, Books]:
    u = Universe.default()
    m = Market(u, seed=4, start_ns=0, book_depth=20)
    m.step_book(100 * MS)
    names = np.array(u.symbols, dtype=object)
    return m, Books(names, u.tick_size, 20, m.book_snapshot, 10**9)


def test_connections_share_one_reader_per_depth_and_get_their_own_snapshot() -> None:
    m, books = _setup()
    woken: list[int] = []
    codec = Codec()
    vb = VenueBooks(codec, books, lambda: woken.append(1))
    first = vb.set("a", {0: 20, 1: 20}, 0)
    assert [orjson.loads(f.data)["sym"] for f in first] == [0, 1]
    assert vb.set("b", {0: 20}, 0)[0].data == first[0].data  # the same book, its own copy
    assert len(vb.readers) == 1 and books.statistics()["books_tracked"] == 2
    assert vb.set("c", {0: 5}, 0)  # another depth: a second shared reader
    assert sorted(vb.readers) == [5, 20]
    _, levels = m.step_book(200 * MS)
    books.publish(levels)
    assert woken  # the books woke the venue's stream
    taken = vb.take()
    assert [d for d, _ in taken] == [5, 20]
    chunks = vb.encode(taken, 200 * MS)
    exact = [n for n in codec.encoded if n.depth == 20]
    assert len(exact) == 1  # one take and one encoding per depth, whoever reads it
    records = exact[0].take.records
    assert len(records) and set(records["sym"].tolist()) == {0, 1}
    for i in (0, 1):  # every change of the shared reader's symbols, in order, no gap
        seq = records["seq"][records["sym"] == i].astype(np.int64)
        assert (np.diff(seq) == 1).all()
    assert len(chunks) == 1  # the conflated depth-5 take carries no records: nothing to send
    vb.leave("a")
    assert books.statistics()["books_tracked"] == 1  # symbol 1 was only "a"'s
    vb.leave("b")
    vb.leave("c")
    assert not vb.readers and books.statistics()["books_tracked"] == 0


def test_a_symbol_booked_later_follows_from_its_snapshot() -> None:
    """A connection that joins a booked symbol gets a snapshot at the shared reader's point:
    the changes the stream delivers after it apply to it exactly (checksums match)."""
    m, books = _setup()
    vb = VenueBooks(Codec(), books, lambda: None)
    vb.set("a", {0: 20}, 0)
    held: b.Levels | None = None
    for t in range(101, 300):
        _, levels = m.step_book(t * MS)
        books.publish(levels)
        taken = vb.take()
        if held is not None:
            for _, take in taken:
                r = take.records
                for rec, u in zip(r, take.units.tolist(), strict=True):
                    assert int(rec["seq"]) == held.seq + 1
                    held.set(int(rec["side"]), u, int(rec["size"]))
                    held.seq = int(rec["seq"])
        if t == 150:  # a second connection books symbol 0 between two takes
            (frame,) = vb.set("b", {0: 20}, t * MS)
            snap = orjson.loads(frame.data)
            held = b.Levels.for_tick(float(m.universe.tick_size[0]), snap["seq"])
            for side, ladder in enumerate(snap["view"]):
                for units, size in ladder:
                    held.set(side, units, size)
    assert held is not None and held.seq > 150
    assert held.view(20) == books.view(0, 20)


def test_depth_beyond_the_server_is_refused_by_the_plumbing() -> None:
    _, books = _setup()
    vb = VenueBooks(Codec(), books, lambda: None)
    with pytest.raises(ValueError, match="1 to 20"):
        vb.set("a", {0: 21}, 0)


def _binance(path: str, depth: int) -> object:
    factory = route(path)
    assert factory is not None
    up = Upgrade(path, "", {}, Universe.default(), (), 0, Services(book_depth=depth))
    return factory(up)


def test_binance_depth_without_server_books_says_how_to_turn_them_on() -> None:
    with pytest.raises(HandshakeRefused) as refused:
        _binance("/binance/ws/aapl@depth", 0)
    assert refused.value.status == 400 and "--book-depth N" in refused.value.reason
    s = BinanceSession("/binance/ws", {}, Universe.default(), 0)
    reply = s.receive(b'{"method":"SUBSCRIBE","params":["aapl@depth@100ms"],"id":7}', 1)
    err = orjson.loads(reply.frames[0].data)
    assert err["id"] == 7 and err["error"]["code"] == 2
    assert "start tickwire serve with --book-depth N" in err["error"]["msg"]
    assert reply.books is None and not s.streams
    # a partial book deeper than the server's: the depth it needs
    s = BinanceSession("/binance/ws", {}, Universe.default(), 0, book_depth=10)
    reply = s.receive(b'{"method":"SUBSCRIBE","params":["aapl@depth20"],"id":1}', 1)
    assert "--book-depth 20 or more" in orjson.loads(reply.frames[0].data)["error"]["msg"]


def test_binance_session_books_at_the_server_depth_and_drops_on_unsubscribe() -> None:
    s = _binance("/binance/ws/aapl@depth", 20)
    assert isinstance(s, BinanceSession)
    assert s.opened(0).books == {0: 20}
    r = s.receive(b'{"method":"SUBSCRIBE","params":["msft@depth5@100ms","msft@trade"],"id":1}', 1)
    assert r.books == {0: 20, 1: 20}
    r = s.receive(b'{"method":"SUBSCRIBE","params":["aapl@trade"],"id":2}', 2)
    assert r.books is None  # unchanged
    r = s.receive(b'{"method":"UNSUBSCRIBE","params":["aapl@depth"],"id":3}', 3)
    assert r.books == {1: 20}
