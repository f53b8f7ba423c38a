"""Record a live server's books with the real command, then replay them: the replayed books are
the recorded ones, change for change, with the same book seqs and checksums."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from tests._support import serve_process, tickwire_cmd
from tickwire.feed import Batch, BookUpdate, Gap, connect
from tickwire.feed.protocol import book as b
from tickwire.simulators.bookfile import read_book_parquet
from tickwire.simulators.replay import open_replay

pq = pytest.importorskip("pyarrow.parquet")


def _recorded_books(rows, tick_size) -> dict[int, b.Levels]:
    """Each symbol's book at the end of the recording, from the file alone."""
    books: dict[int, b.Levels] = {}
    for rec, snap in zip(rows.records, rows.snapshot, strict=True):
        sym = int(rec["sym"])
        lv = books.get(sym)
        if lv is None or (snap and lv.seq != int(rec["seq"])):
            lv = books[sym] = b.Levels.for_tick(float(tick_size[sym]))
        lv.set(int(rec["side"]), lv.units(float(rec["price"])), int(rec["size"]))
        lv.seq, lv.ts = int(rec["seq"]), int(rec["ts"])
    return books


async def test_recorded_books_replay_change_for_change_with_their_seqs_and_checksums(tmp_path):
    out = tmp_path / "live.parquet"
    with trio.fail_after(120):
        with serve_process("--book-depth", "20", "--symbols", "8") as (_, url):
            done = await trio.run_process(
                tickwire_cmd("record", url, "--out", str(out), "--book", "--duration", "3s"),
                capture_stderr=True,
            )
        assert b"level updates" in done.stderr, done.stderr
        rows = read_book_parquet(out.with_name("live.book.parquet"))
        assert rows.depth == 20 and rows.snapshot.any() and (~rows.snapshot).sum() > 1000
        changes = rows.records[~rows.snapshot]
        recorded = {
            (int(r["sym"]), int(r["seq"])): (int(r["side"]), float(r["price"]), int(r["size"]))
            for r in changes
        }
        n_ticks, total = 0, pq.read_metadata(out).num_rows
        seen: dict[tuple[int, int], tuple[int, float, int]] = {}
        gaps = []
        with serve_process("--replay", str(out), "--speed", "0") as (_, url):
            async with connect(url, encoding="binary") as feed:
                feed.keep_book_levels()
                refs = await feed.symbols()
                names = [s["symbol"] for s in refs]
                tick_size = [s["tick_size"] for s in refs]
                assert feed.welcome["book_depth"] == 20
                await feed.subscribe("*", snapshot=False, book=True)
                async for event in feed:
                    if isinstance(event, Gap):
                        gaps.append(event)
                    elif isinstance(event, BookUpdate) and event.kind == "book":
                        for r in event.levels:
                            key = (int(r["sym"]), int(r["seq"]))
                            seen[key] = (int(r["side"]), float(r["price"]), int(r["size"]))
                    elif isinstance(event, Batch):
                        n_ticks += len(event)
                        if n_ticks >= total:  # the last step carried the last level updates
                            break
                final = {s: feed.book(names[s]) for s in range(len(names))}
    assert not [g for g in gaps if g.reason == "book"], gaps  # every checksum held
    # every change (at speed 0 the replay waits for its reader; one far behind would be sent
    # fresh snapshots instead, and the machine is shared: a little slack)
    assert len(seen) > 0.99 * len(recorded)
    assert all(recorded[k] == v for k, v in seen.items())  # same change at the same book seq
    expected = _recorded_books(rows, tick_size)
    for sym, lv in expected.items():
        book = final[sym]
        assert book is not None and book.seq == lv.seq
        bids, asks = lv.rows(20)
        assert book.bids.tobytes() == bids.tobytes() and book.asks.tobytes() == asks.tobytes()


async def test_each_rotated_part_of_a_book_recording_replays_on_its_own(tmp_path):
    out = tmp_path / "live.parquet"
    with trio.fail_after(120):
        with serve_process("--book-depth", "10", "--symbols", "4") as (_, url):
            args = ("--out", str(out), "--book", "--rotate", "1s", "--duration", "2.5s")
            await trio.run_process(tickwire_cmd("record", url, *args), capture_stderr=True)
    second = tmp_path / "live-0002.book.parquet"
    rows = read_book_parquet(second)
    names = {rows.names[i] for i in rows.records["sym"][rows.snapshot].tolist()}
    assert len(names) == 4  # every book held when the part opened, whole
    first_change = int(np.argmin(rows.snapshot))
    assert rows.snapshot[:first_change].all() and not rows.snapshot[first_change:].any()
    replay = open_replay([tmp_path / "live-0002.parquet"], speed=0)  # its book file beside it
    assert replay.book is not None and replay.book.depth == 10
    seqs: dict[int, int] = {int(r["sym"]): int(r["seq"]) for r in replay.book_snapshot()}
    while not replay.finished:
        _, levels = replay.step_book(0)
        for r in levels:  # each change follows on from the book the part opened with
            sym, seq = int(r["sym"]), int(r["seq"])
            assert seq == seqs[sym] + 1, (sym, seq, seqs[sym])
            seqs[sym] = seq
