"""A source paced by its readers (a replay at speed 0) waits for its readers of books too.

Before, only the hub's tick readers paced it: a reader of books that had not taken its changes
did not hold the next step, so once it was owed more than a take holds (`MAX_TAKE`) it got fresh
snapshots instead of every change. `Books.caught_up` is what the server's `caught_up` adds; the
end-to-end test replays a `record --book` file at speed 0 to a real client holding books.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio
from _support import serve_process, tickwire_cmd

from tickwire.feed import BookUpdate, Gap, connect
from tickwire.feed.hub.books import MAX_TAKE, Books
from tickwire.simulators import Market, Universe
from tickwire.simulators.bookfile import read_book_parquet

MS = 1_000_000


def _setup() -> tuple[Market, Books]:
    u = Universe.default()
    m = Market(u, seed=4, start_ns=0, book_depth=20)
    m.step_book(100 * MS)
    names = np.array(u.symbols, dtype=object)
    return m, Books(names, u.tick_size, 20, m.book_snapshot, 10**12)


def test_a_reader_owed_changes_holds_a_paced_source_until_it_takes_them() -> None:
    m, books = _setup()
    reader = books.attach(lambda: None)
    tracker = books.attach(lambda: None, paces=False)  # never takes: must never hold it
    everything = np.arange(len(books.names), dtype=np.intp)
    books.book(reader, everything, 20)
    books.book(tracker, everything, 20)
    assert books.caught_up()  # its snapshots went with the booking
    _, levels = m.step_book(200 * MS)
    books.publish(levels)
    assert len(levels) and not books.caught_up()
    books.take(reader)
    assert books.caught_up()
    books.set_latest(reader, True)  # fresh snapshots are owed: it is behind until they go
    assert not books.caught_up()
    books.take(reader)
    assert books.caught_up()
    books.publish(m.step_book(300 * MS)[1])
    books.detach(reader)  # gone: nothing to wait for
    assert books.caught_up()


def _slow_reader(paced: bool) -> tuple[int, int, int]:
    """The server's loop in small: step (only when caught up, if `paced`); the reader takes
    every 5th turn. (level updates published, changes taken, snapshots taken)"""
    m, books = _setup()
    reader = books.attach(lambda: None)
    books.book(reader, np.arange(len(books.names), dtype=np.intp), 20)
    t_ms, published, changes, snapshots = 100, 0, 0, 0
    for turn in range(1, 201):
        if books.caught_up() or not paced:
            t_ms += 30  # a step's level updates: about 1000, as a replay's at speed 0
            levels = m.step_book(t_ms * MS)[1]
            books.publish(levels)
            published += len(levels)
        if turn % 5 == 0 or turn == 200:
            taken = books.take(reader)
            changes += len(taken.records)
            snapshots += len(taken.snaps)
    return published, changes, snapshots


def test_a_slow_reader_of_a_paced_source_gets_every_change_and_no_snapshot() -> None:
    published, changes, snapshots = _slow_reader(paced=True)
    assert published > 10 * MAX_TAKE and snapshots == 0 and changes == published
    published, changes, snapshots = _slow_reader(paced=False)  # what the tick readers did
    assert snapshots > 0 and changes < published


async def test_a_speed_0_replay_gives_a_client_holding_books_every_level_change(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "live.parquet"
    with trio.fail_after(120):
        with serve_process("--book-depth", "20", "--symbols", "8") as (_, url):
            await trio.run_process(
                tickwire_cmd("record", url, "--out", str(out), "--book", "--duration", "2s"),
                capture_stderr=True,
            )
        rows = read_book_parquet(out.with_name("live.book.parquet"))
        recorded = len(rows.records) - int(rows.snapshot.sum())
        last_seq = {
            int(s): int(q) for s, q in zip(rows.records["sym"], rows.records["seq"], strict=True)
        }
        assert recorded > 1000
        changes, snapshots, gaps = 0, 0, []
        with serve_process("--replay", str(out), "--speed", "0") as (_, url):
            # A slow consumer: the feed stops reading its socket after one queued event.
            async with connect(url, encoding="binary", max_queue=1) as feed:
                feed.keep_book_levels()
                names = [s["symbol"] for s in await feed.symbols()]
                await feed.subscribe("*", snapshot=False, book=True)
                async for event in feed:
                    if isinstance(event, Gap):
                        gaps.append(event)
                    elif isinstance(event, BookUpdate) and event.kind == "book_snapshot":
                        snapshots += len(event.symbols)
                    elif isinstance(event, BookUpdate) and event.levels is not None:
                        changes += len(event.levels)
                    if all(
                        (book := feed.book(names[s])) is not None and book.seq == q
                        for s, q in last_seq.items()
                    ):
                        break  # every book is at its last recorded change
    assert not gaps, gaps
    assert snapshots == len(last_seq)  # one each, at the subscription: never a reset
    assert changes == recorded  # every level change, none conflated into a snapshot
