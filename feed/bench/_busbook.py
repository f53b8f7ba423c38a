"""The bus's order book rows: what level updates cost a producer's write and a gateway's books.

- Producer: CPU to hand 1 ms flushes of the default universe with 20-level books to the writer
  and pack them (`Outbox`, `FlushPacker`: everything but the socket), per level update, beside
  the same flushes without their level updates per tick; and the bytes each adds.
- Gateway: CPU per level update applied to its mirror of the producer's books (`BookMirror`),
  which it does for every update besides publishing it to its own books.
In-process and without Redis, CPU time of this thread. Imports numpy, the simulator and the
bus's sans-IO parts only.
"""

from __future__ import annotations

import time

import numpy as np

from tickwire.feed.bus import write as bw
from tickwire.feed.bus.outbox import Outbox
from tickwire.simulators import Market, Universe
from tickwire.simulators.bookmirror import BookMirror

from ._table import Row, row

DEPTH = 20
_OPTS = dict(namespace="tickwire", shards=1, epoch=7, maxlen=10**6, token=b"t", lease_ms=1000)


def _pack(flushes: list[tuple[np.ndarray, np.ndarray]], books: bool) -> tuple[float, int]:
    """(CPU s, bytes) to put and pack every flush, with its level updates if `books`."""
    outbox = Outbox(10**8)
    outbox.accept()
    outbox.set_levels(books)  # a gateway mirrors books: the writes carry level updates
    outbox.want_books = False  # whole books are rare: a gateway asks for them once
    packer = bw.FlushPacker(bw.WRITE_SHA, **_OPTS)  # type: ignore[arg-type]
    size = 0
    cpu = time.thread_time()
    for batch, levels in flushes:
        if books:
            outbox.put_levels(levels)
        if not len(batch):  # as `BusProducer.publish`: levels wait for the next ticks
            continue
        outbox.put(batch, 0)
        taken = outbox.take()
        assert taken is not None
        size += len(packer.pack(taken, 0)[0])
    return time.thread_time() - cpu, size


def bus_book_rows(quick: bool) -> list[Row]:
    steps = 500 if quick else 3000
    market = Market(Universe.default(), seed=1, start_ns=0, book_depth=DEPTH)
    market.step_book(10**9)  # past the open
    mirror = BookMirror(market.universe.tick_size, DEPTH)
    mirror.ladders(market.book_snapshot())
    flushes = []
    for k in range(1, steps + 1):
        batch, levels = market.step_book(10**9 + k * 1_000_000)
        flushes.append((batch.copy(), levels.copy()))
    ticks = sum(len(b) for b, _ in flushes)
    updates = sum(len(lv) for _, lv in flushes)
    plain_s, plain_b = _pack(flushes, False)
    books_s, books_b = _pack(flushes, True)
    cpu = time.thread_time()
    for _, levels in flushes:
        mirror.apply(levels)
    mirror_s = time.thread_time() - cpu
    in_sync = not len(mirror.ladders(market.book_snapshot()))
    return [
        row(
            "bus write with books (20 levels), default universe, 1 ms flushes: producer CPU"
            " per level update",
            (books_s - plain_s) / max(updates, 1) * 1e6,
            "us",
            "per tick without books",
            plain_s / max(ticks, 1) * 1e6,
            higher=False,
            target="<= 1x",
            level_updates=updates,
            ticks=ticks,
            bytes_per_update=(books_b - plain_b) / max(updates, 1),
            bytes_per_tick=plain_b / max(ticks, 1),
        ),
        row(
            "bus gateway book mirror: CPU per level update applied",
            mirror_s / max(updates, 1) * 1e6,
            "us",
            higher=False,
            mirror_in_sync=in_sync,
        ),
    ]
