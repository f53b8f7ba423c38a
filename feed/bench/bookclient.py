"""Client book row: level updates the client library applies per CPU second, binary vs JSON.

The frames are the server's own (`hub.books.Books` on a real market, default universe, every
symbol booked at 20 levels, one flush per 1 ms step, as `tickwire serve --book-depth 20` sends
them to a client that keeps every book); made up front, then fed to a fresh `ClientBooks`, timed
by this thread's CPU time. Each frame is checked as the client always checks (book seq, CRC32
per symbol). The baseline is the same updates as JSON `book` messages (`orjson.loads` and
`ClientBooks.receive`), in the same run. Imports the simulator, the hub and the client's books.
"""

from __future__ import annotations

import time

import numpy as np
import orjson

from tickwire.feed.client.book import ClientBooks
from tickwire.feed.client.events import Gap
from tickwire.feed.hub import bookwire
from tickwire.feed.hub.books import Books
from tickwire.feed.protocol import book as b
from tickwire.simulators import Market, Universe

from ._table import Row, row

DEPTH = 20
_STEPS = {False: (20.0, 3000), True: (2.0, 500)}  # warm-up s, 1 ms flushes timed


def _frames(warm_s: float, steps: int) -> tuple[list[bytes], list[bytes], int]:
    """(binary frames, JSON messages, level updates in them): the snapshot first, then one
    `book` frame or message per flush."""
    u = Universe.default()
    market = Market(u, seed=1, start_ns=0, book_depth=DEPTH)
    start = round(warm_s * 1e9)
    market.step(start)
    books = Books(np.array(u.symbols, object), u.tick_size, DEPTH, market.book_snapshot, 10**9)
    binary, text = books.attach(lambda: None), books.attach(lambda: None)
    every = np.arange(len(u.symbols))
    seq = iter(range(1, 10**9)).__next__
    bins = bookwire.binary_frames(books, binary, books.book(binary, every, DEPTH), seq)
    snaps, _ = bookwire.json_entries(books, text, books.book(text, every, DEPTH))
    jsons = [b.book_text("book_snapshot", seq(), snaps)]
    updates = 0
    for k in range(1, steps + 1):
        _, levels = market.step_book(start + k * 1_000_000)
        books.publish(levels)
        updates += len(levels)
        bins += bookwire.binary_frames(books, binary, books.take(binary), seq)
        _, entries = bookwire.json_entries(books, text, books.take(text))
        if entries:
            jsons.append(b.book_text("book", seq(), entries))
    return bins, jsons, updates


def _client() -> ClientBooks:
    """A client's books that keep every symbol's book at the server's depth."""
    u = Universe.default()
    client = ClientBooks()
    refs = zip(u.symbols, u.tick_size.tolist(), strict=True)
    client.learn([{"symbol": s, "tick_size": t} for s, t in refs])
    client.server_depth = DEPTH
    client.want(["*"], True)
    return client


def _apply(frames: list[bytes], binary: bool) -> float:
    """CPU seconds for a fresh client to apply every frame after the first (the snapshot,
    untimed)."""
    client = _client()
    receive = client.receive_binary if binary else (lambda m: client.receive(orjson.loads(m)))
    receive(frames[0])
    cpu = time.thread_time()
    for frame in frames[1:]:
        for event in receive(frame):
            if isinstance(event, Gap):  # the server's own frames: every one applies
                raise AssertionError(f"the client refused the server's book: {event}")
    return time.thread_time() - cpu


def book_client_rows(quick: bool) -> list[Row]:
    warm_s, steps = _STEPS[quick]
    bins, jsons, updates = _frames(warm_s, steps)
    binary_s = _apply(bins, True)
    json_s = _apply(jsons, False)
    return [
        row(
            "client library: book level updates applied per second, binary",
            updates / binary_s,
            "u/s",
            "JSON",
            updates / json_s,
            higher=True,
            target=">= 1M",
            level_updates=updates,
            frames=len(bins) - 1,
        )
    ]
