"""`tickwire tail --book SYMBOL`: one symbol's order book live, a compact ladder refreshed.

Thin by rule, as `tail`: the book is the client library's (`feed.book`), checked update by
update. On a terminal the ladder redraws in place; piped, each refresh is a block of lines.
Imports the client library only.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from typing import TextIO

import trio

from tickwire.feed.client.book import Book
from tickwire.feed.client.events import BookUpdate, Gap, Status
from tickwire.feed.client.feed import Feed
from tickwire.feed.quantity import Quantities

LEVELS = 10  # rows a side
REFRESH_S = 0.2  # at most this often: a book changes far faster than anyone reads


async def tail_book(
    feed: Feed, symbol: str, out: TextIO, *, count: int | None, qty: Quantities | None = None
) -> None:
    """Subscribe to `symbol`'s book and print its ladder until cancelled (or `count` ladders);
    sizes as the asset's quantity by `qty` (the `symbols` reply's size units)."""
    await feed.subscribe([symbol], book=True, snapshot=False)
    tty = out.isatty()
    shown, last = 0, -math.inf
    async for event in feed:
        if isinstance(event, Gap) and event.reason == "book":
            print(f"# {symbol}: book failed its check, fetching a fresh one", file=sys.stderr)
        elif isinstance(event, Status) and event.state == "reconnecting":
            print(f"# reconnecting in {event.retry_in_s:.1f} s ({event.error})", file=sys.stderr)
        if not isinstance(event, BookUpdate) or symbol not in event.symbols:
            continue
        now = trio.current_time()
        book = feed.book(symbol)
        if book is None or now - last < REFRESH_S:
            continue
        last = now
        text = ladder(book, LEVELS, qty)
        out.write(f"\x1b[H\x1b[J{text}" if tty else f"{text}\n")
        out.flush()
        shown += 1
        if count is not None and shown >= count:
            return


def ladder(book: Book, levels: int, qty: Quantities | None = None) -> str:
    """The top `levels` of each side, bids left and asks right, best first, with a header line:
    time, book seq, spread and the best level's imbalance (bid - ask) / (bid + ask). Sizes are
    counts of size units, shown as the asset's quantity (exact) when `qty` knows the unit."""
    bids, asks = book.bids[:levels], book.asks[:levels]
    q = qty or Quantities()
    sid = q.ids.get(book.symbol, -1)
    places = max(
        (_places(p) for p in [*bids["price"].tolist(), *asks["price"].tolist()]), default=2
    )
    when = datetime.fromtimestamp(book.ts / 1e9, UTC).strftime("%H:%M:%S.%f")
    head = f"{book.symbol}  {when}  book seq {book.seq}"
    if len(bids) and len(asks):
        b0, a0 = int(bids["size"][0]), int(asks["size"][0])
        spread = float(asks["price"][0] - bids["price"][0])
        head += f"  spread {spread:.{places}f}  imbalance {(b0 - a0) / (b0 + a0):+.2f}"
    lines = [head, f"{'size':>10} {'bid':>12} | {'ask':<12} {'size':<10}"]
    for k in range(max(len(bids), len(asks))):
        left = (
            f"{q.text(sid, int(bids['size'][k])):>10} {bids['price'][k]:>12.{places}f}"
            if k < len(bids)
            else " " * 23
        )
        right = (
            f"{asks['price'][k]:<12.{places}f} {q.text(sid, int(asks['size'][k])):<10}"
            if k < len(asks)
            else ""
        )
        lines.append(f"{left} | {right}".rstrip())
    return "\n".join(lines) + "\n"


def _places(price: float) -> int:
    text = repr(price)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 2
