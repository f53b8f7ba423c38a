"""A replayed Tardis book is one the client can keep exactly: the real `tickwire serve --replay`
of a generated `incremental_book_L2` file, a client library `Feed` holding a book, no
`Gap("book")`, and at the end the client's book is the server's fresh snapshot.

Real books (unlike the live market's) hold levels beyond the served depth; when the best moves
out, such a level comes within the depth without a change of its own. Before, the server's
checksum counted it and the client, which had dropped it, did not: a failed check every few
seconds (`tickwire tail --book` printed "book failed its check")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import trio

from tests._support import serve_process, tickwire_cmd
from tickwire.feed import BookUpdate, Gap, connect
from tickwire.simulators import _tardis_gen

SYMBOL = "BTC-USD"


def _tardis_file(tmp_path: Path, rows: int = 6000) -> Path:
    return _tardis_gen.write(tmp_path / "coinbase_incremental_book_L2.csv", rows)


async def _finished(proc: subprocess.Popen[str], done: trio.Event) -> None:
    """Sets `done` once the server logs that the replay has served its last record."""
    assert proc.stderr is not None
    while True:
        line = await trio.to_thread.run_sync(proc.stderr.readline)
        if not line or "replay finished" in line:
            break
    done.set()


class _Holder:
    """Takes a feed's events: its book gaps, its book updates, and when its book reaches a seq."""

    def __init__(self, feed) -> None:
        self.feed = feed
        self.gaps: list[Gap] = []
        self.updates = 0
        self.target = 2**63
        self.reached = trio.Event()

    async def run(self) -> None:
        async for event in self.feed:
            if isinstance(event, Gap):
                self.gaps.append(event)
            elif isinstance(event, BookUpdate):
                self.updates += 1
            self.check()

    def check(self) -> None:
        held = self.feed.book(SYMBOL)
        if held is not None and held.seq >= self.target:
            self.reached.set()


async def _server_book(url: str):
    """The server's book now: a fresh snapshot on another connection."""
    async with connect(url) as other:
        await other.subscribe([SYMBOL], snapshot=False, book=True)
        async for event in other:
            if isinstance(event, BookUpdate) and other.book(SYMBOL) is not None:
                return other.book(SYMBOL)
    raise AssertionError("no book snapshot")


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_replayed_tardis_book_is_kept_exactly_by_the_client(tmp_path, encoding):
    path = _tardis_file(tmp_path)
    with trio.fail_after(60):
        args = ("--replay", str(path), "--speed", "1", "--book-depth", "20")
        with serve_process(*args) as (proc, url):
            async with trio.open_nursery() as nursery, connect(url, encoding=encoding) as feed:
                done = trio.Event()
                nursery.start_soon(_finished, proc, done)
                holder = _Holder(feed)
                await feed.subscribe([SYMBOL], snapshot=False, book=True)
                nursery.start_soon(holder.run)
                await done.wait()
                server = await _server_book(url)
                holder.target = server.seq
                holder.check()
                await holder.reached.wait()  # it has taken the rest of its changes
                held = feed.book(SYMBOL)
                nursery.cancel_scope.cancel()
    assert not [g for g in holder.gaps if g.reason == "book"], holder.gaps
    assert holder.updates > 100
    assert held is not None and held.seq == server.seq
    assert np.array_equal(held.bids, server.bids) and np.array_equal(held.asks, server.asks)
    assert len(held.bids) >= 5 and len(held.asks) >= 5


async def test_tail_book_on_a_tardis_replay_never_fails_its_check(tmp_path):
    # The real command, as found: `tickwire tail --book` printed "book failed its check" dozens
    # of times a run against this replay.
    path = _tardis_gen.write(tmp_path / "coinbase_incremental_book_L2.csv", 20000)
    with trio.fail_after(60):
        args = ("--replay", str(path), "--speed", "2", "--book-depth", "20")
        with serve_process(*args) as (_, url):
            cmd = tickwire_cmd("tail", "--book", SYMBOL, "--url", url, "--count", "12")
            done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "failed its check" not in err, err
    assert out.count("spread") >= 10, out  # a block a refresh, each with the spread
