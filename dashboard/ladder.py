"""The detail screen's depth ladder: one symbol's order book as text, bids left, asks right.

Owns how a `Book` (the client library's checked local copy) looks on screen: a header with the
spread and the imbalance, then one row per level, best first, with size bars growing outwards from
the prices. Sizes go through one function, `size_text` (the detail screen passes the symbol's
quantities: whole shares, or the asset's amount for a crypto pair; `book_size` else). Pure text from
numbers: Rich only, never Textual, trio or the feed's sockets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from rich.text import Text

from tickwire.feed.client.book import Book

from . import fmt

IMBALANCE_LEVELS = 5
"""Imbalance is the bid share of the size on the top 5 levels of both sides (0 to 1)."""
HEADER_ROWS = 3  # spread, imbalance, column titles


def book_size(size: int) -> str:
    """A level's size as the ladder prints it (the one place sizes are formatted)."""
    return fmt.compact(size)


def imbalance(
    bids: NDArray[np.void], asks: NDArray[np.void], levels: int = IMBALANCE_LEVELS
) -> float:
    """Bid size / (bid + ask size) over the top `levels` of each side; NaN for an empty book."""
    bid = float(bids["size"][:levels].sum()) if len(bids) else 0.0
    ask = float(asks["size"][:levels].sum()) if len(asks) else 0.0
    return bid / (bid + ask) if bid + ask > 0 else math.nan


def _bar(size: int, peak: int, width: int) -> int:
    """Cells of a bar for `size` when `peak` fills `width` (a non-empty level gets one)."""
    if size <= 0 or peak <= 0 or width <= 0:
        return 0
    return max(1, min(width, round(size / peak * width)))


def ladder_text(
    book: Book | None,
    width: int,
    height: int,
    decimals: int,
    colours: dict[str, str],
    size_text: Callable[[int], str] = book_size,
) -> Text:
    """The ladder in `width` x `height` cells: as many levels as fit, best first. `size_text`
    prints a level's size (a count of the symbol's size unit; crypto: the asset's quantity)."""
    text = Text(no_wrap=True, overflow="crop")
    if book is None:
        text.append("order book: waiting for its snapshot…", style=colours["muted"])
        return text
    bids, asks = book.bids, book.asks
    rows = max(1, min(height - HEADER_ROWS, max(len(bids), len(asks))))
    bids, asks = bids[:rows], asks[:rows]
    bid_p = [fmt.price(p, decimals) for p in bids["price"].tolist()]
    ask_p = [fmt.price(p, decimals) for p in asks["price"].tolist()]
    bid_s = [size_text(s) for s in bids["size"].tolist()]
    ask_s = [size_text(s) for s in asks["size"].tolist()]
    pw = max((len(p) for p in bid_p + ask_p), default=4)
    sw = max((len(s) for s in bid_s + ask_s), default=4)
    bw = max(0, (width - 2 * (pw + sw + 2) - 3) // 2)  # bar cells a side
    peak = max([int(s) for s in [*bids["size"].tolist(), *asks["size"].tolist()]], default=0)

    if len(book.bids) and len(book.asks):
        spread = float(book.asks["price"][0] - book.bids["price"][0])
        mid = float(book.asks["price"][0] + book.bids["price"][0]) / 2
        text.append("spread ", style=colours["muted"])
        text.append(f"{spread:.{decimals}f}")
        text.append(f" ({spread / mid * 1e4:.1f} bp)" if mid else "", style=colours["muted"])
    else:
        text.append("one-sided book", style=colours["muted"])
    text.append("\n")
    share = imbalance(book.bids, book.asks)
    text.append(f"imbalance top {IMBALANCE_LEVELS} ", style=colours["muted"])
    if math.isfinite(share):
        tone = colours["bid"] if share > 0.5 else colours["ask"] if share < 0.5 else ""
        text.append(f"{share * 100:.0f}% bid", style=tone or None)
    else:
        text.append("-")
    text.append("\n")
    half = bw + 1 + sw + 1 + pw
    text.append("bid".rjust(half) + " │ " + "ask".ljust(half), style=colours["muted"])
    for k in range(rows):
        text.append("\n")
        if k < len(bids):
            n = _bar(int(bids["size"][k]), peak, bw)
            text.append(" " * (bw - n))
            text.append("█" * n, style=colours["bid_bar"])
            text.append(f" {bid_s[k].rjust(sw)} ")
            text.append(bid_p[k].rjust(pw), style=colours["bid"])
        else:
            text.append(" " * half)
        text.append(" │ ", style=colours["muted"])
        if k < len(asks):
            text.append(ask_p[k].ljust(pw), style=colours["ask"])
            text.append(f" {ask_s[k].ljust(sw)} ")
            text.append("█" * _bar(int(asks["size"][k]), peak, bw), style=colours["ask_bar"])
    return text
