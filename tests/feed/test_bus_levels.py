"""Level updates and whole books on the bus, sans-IO: what a producer's write carries and what a
gateway's reader yields, in the order the market made them; and the mirror that mends books."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import write as bw
from tickwire.feed.bus.outbox import Outbox
from tickwire.feed.bus.reader import BusBooks, BusLevels, flush_items
from tickwire.feed.bus.reassemble import Reassembler
from tickwire.simulators import Market, Universe
from tickwire.simulators.bookmirror import BookMirror

OPTS = dict(namespace="ns", epoch=7, maxlen=99, token=b"h:1 07", lease_ms=1200)


def _booked_outbox() -> tuple[Market, Outbox, list[np.ndarray], list[np.ndarray]]:
    market = Market(Universe.synthetic(20, 0), seed=1, start_ns=0, book_depth=20)
    outbox = Outbox(10**6, books=lambda: market.book_snapshot().tobytes())
    outbox.accept()
    outbox.set_levels(True)  # a gateway mirrors books
    batches, levels = [], []
    for k in (1, 2):  # two steps coalesced in one write, each level update before its ticks
        batch, lv = market.step_book(k * 10**8)
        outbox.put_levels(lv)
        outbox.put(batch, 0 if k == 1 else len(batches[0]))
        batches.append(batch)
        levels.append(lv.copy())
    return market, outbox, batches, levels


@pytest.mark.parametrize("shards", [1, 2])
def test_a_write_carries_each_steps_levels_before_its_ticks_then_every_book(shards: int) -> None:
    market, outbox, (b1, b2), (l1, l2) = _booked_outbox()
    assert len(l1) > len(b1) > 0 and len(l2) > 0
    taken = outbox.take()
    assert taken is not None and taken.books == market.book_snapshot().tobytes()
    assert not outbox.want_books  # asked once, sent once
    _, args, _ = bw.flush_command(taken, sent_ns=0, shards=shards, **OPTS)  # type: ignore[arg-type]
    statuses, scenarios, _, levels, books, lost = args[12:18]
    assert not lost
    asm = Reassembler(7, next_flush=1)
    released = []
    parts = bc.split(taken.batch, shards)
    for shard, fields in bc.encode_entries(
        parts, 1, 2, 7, 0, 0, statuses, scenarios, levels, books
    ):
        released += asm.feed(bc.decode_entry(shard, fields))
    assert len(released) == 1 and released[0] is not None
    items = flush_items(released[0], asm.offsets[0], asm.statuses[0], None, asm.levels[0])
    kinds = ["L" if isinstance(i, BusLevels) else len(i) for i, _ in items]
    assert kinds == ["L", len(b1), "L", len(b2)]
    got = [i.records.tobytes() for i, _ in items if isinstance(i, BusLevels)]
    assert got == [l1.tobytes(), l2.tobytes()]
    ladders = bc.decode_books(asm.books[0], 20)
    assert ladders.tobytes() == market.book_snapshot().tobytes()
    assert isinstance(BusBooks(ladders), BusBooks)


def test_the_flush_packer_packs_levels_and_books_as_a_generic_packer() -> None:
    hiredis = pytest.importorskip("hiredis")
    _, outbox, _, _ = _booked_outbox()
    taken = outbox.take()
    assert taken is not None and taken.levels and taken.books
    keys, args, entries = bw.flush_command(taken, sent_ns=55, shards=3, **OPTS)  # type: ignore[arg-type]
    want = hiredis.pack_command((b"EVALSHA", bw.WRITE_SHA, str(len(keys)).encode(), *keys, *args))
    packer = bw.FlushPacker(bw.WRITE_SHA, shards=3, **OPTS)  # type: ignore[arg-type]
    assert packer.pack(taken, 55) == (want, entries)


def test_levels_dropped_or_a_new_writer_make_the_next_write_carry_every_book() -> None:
    market, outbox, _, _ = _booked_outbox()
    outbox.take()
    assert not outbox.want_books
    outbox.stop()  # Redis went down: what comes now is dropped
    _, lv = market.step_book(3 * 10**8)
    assert not outbox.put_levels(lv) and outbox.want_books
    outbox.want_books = False
    outbox.accept()  # a writer again (a new lease): gateways may hold stale books
    assert outbox.want_books
    outbox.want_books = False
    outbox.set_levels(False)
    outbox.accept()  # nobody mirrors: nobody holds books to mend
    assert not outbox.want_books
    plain = Outbox(10)
    plain.accept()
    assert not plain.want_books  # a market without books never sends any


def test_a_write_reply_says_whether_a_gateway_watches_and_wants_books() -> None:
    assert bw.reply_flags(1) == (False, False, False)
    assert bw.reply_flags(2) == (True, False, False)
    assert bw.reply_flags(3) == (False, True, False)
    assert bw.reply_flags(4) == (True, True, False)
    assert bw.reply_flags(5) == (False, False, True)
    assert bw.reply_flags(8) == (True, True, True)


def test_levels_are_left_out_while_no_gateway_mirrors_and_the_write_says_so() -> None:
    market = Market(Universe.synthetic(20, 0), seed=1, start_ns=0, book_depth=20)
    outbox = Outbox(10**6, books=lambda: market.book_snapshot().tobytes())
    outbox.accept()
    assert not outbox.want_books  # nobody mirrors: no books to send
    batch, lv = market.step_book(10**8)
    assert len(lv) and outbox.put_levels(lv)  # kept? no: left out, not dropped
    outbox.put(batch, 0)
    taken = outbox.take()
    assert taken is not None and not taken.levels and not taken.books and taken.levels_lost
    fields = bc.encode_entries(bc.split(taken.batch, 1), 1, 1, 7, 0, levels_lost=True)[0][1]
    assert b"b" not in fields and bc.decode_entry(0, fields).levels_lost
    outbox.set_levels(True)  # a gateway starts mirroring: every book first, then each update
    batch, lv = market.step_book(2 * 10**8)
    outbox.put_levels(lv)
    outbox.put(batch, len(taken.batch))
    taken = outbox.take()
    assert taken is not None and not taken.levels_lost
    assert taken.levels and taken.books == market.book_snapshot().tobytes()
    batch, lv = market.step_book(3 * 10**8)
    outbox.put_levels(lv)
    outbox.put(batch, None)
    taken = outbox.take()
    assert taken is not None and taken.levels and not taken.books and not taken.levels_lost


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same books (`ts` aside: the market stamps a snapshot with its time, not the last
    change's)."""
    names = [f for f in a.dtype.names or () if f != "ts"]
    return all(np.array_equal(a[f], b[f]) for f in names)


def test_the_mirror_mends_a_stale_book_with_changes_that_end_at_its_seq() -> None:
    market = Market(Universe.synthetic(5, 0), seed=2, start_ns=0, book_depth=20)
    market.step_book(10**8)
    mirror = BookMirror(market.universe.tick_size, 20)
    first = market.book_snapshot()
    assert len(mirror.ladders(first))  # from nothing: every level
    assert _same(mirror.snapshot(), first)
    _, lv = market.step_book(2 * 10**8)
    mirror.apply(lv)  # in step: whole books change nothing
    now = market.book_snapshot()
    assert _same(mirror.snapshot(), now)
    assert not len(mirror.ladders(now))
    for k in (3, 4):  # missed (a gap): the mend is the difference, numbered to end at each seq
        market.step_book(k * 10**8)
    later = market.book_snapshot()
    mend = mirror.ladders(later)
    assert len(mend) and _same(mirror.snapshot(), later)
    for sym in np.unique(mend["sym"]).tolist():
        seqs = mend["seq"][mend["sym"] == sym]
        assert seqs[-1] == later["seq"][sym] and np.all(np.diff(seqs.astype(np.int64)) == 1)


class _Reader:
    """A bus reader as `GatewayBooks.follow` sees it."""

    def __init__(self) -> None:
        self.mirror = False
        self.calls: list[bool] = []

    def set_mirror(self, on: bool) -> None:
        self.mirror = on
        self.calls.append(on)


def test_a_gateway_books_a_symbol_once_whole_books_came_and_mirrors_only_while_booked() -> None:
    from tickwire.feed.bus import books as gb

    market = Market(Universe.synthetic(5, 0), seed=3, start_ns=0, book_depth=20)
    market.step_book(10**8)
    books = gb.GatewayBooks(market.universe, 20, 10**12)
    reader = _Reader()
    books.follow(reader, 0.0)
    assert not reader.mirror  # nobody holds a book
    woken: list[int] = []
    client = books.books.attach(lambda: woken.append(1))
    take = books.books.book(client, np.array([1, 3], np.intp), 20)
    assert take.snaps == [] and not books.books.has_news(client)  # waits for whole books
    books.follow(reader, 1.0)
    assert reader.calls == [True]
    _, lv = market.step_book(2 * 10**8)
    books.levels(lv, stale=True)  # before the whole books: not applied
    books.whole(market.book_snapshot())
    assert woken and books.books.has_news(client)
    take = books.books.take(client)
    assert take.snaps == [1, 3]
    now = market.book_snapshot()
    for i in (1, 3):  # the producer's books, at its seqs and checksums
        level = books.books.levels[i]
        assert level is not None and level.seq == now["seq"][i]
    _, lv = market.step_book(3 * 10**8)
    books.levels(lv, stale=False)
    assert _same(books.mirror.snapshot(), market.book_snapshot())
    books.books.detach(client)
    books.follow(reader, 1.0 + gb.GRACE_S / 2)
    assert reader.mirror  # within the grace
    books.follow(reader, 2.0 + 2 * gb.GRACE_S)  # the grace runs from the last look
    assert reader.calls == [True, False] and not books.books.ready
