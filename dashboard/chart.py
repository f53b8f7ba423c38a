"""The detail screen's price chart as text: bid/ask band, last trades, volume bars, price axis.

Owns how a symbol's recent updates look as a chart. Built a row at a time with numpy: each
cell's glyph and style come from one array of codes, and a row is appended as one string per
run of one style (a frame is a few hundred appends, not one per cell). Pure text from numbers:
Rich and numpy only, never Textual, trio or the feed's sockets.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from rich.text import Text

from . import fmt

AXIS_W = 10
"""Cells left of the plot: the price labels and the axis line."""

# Cell codes, in the order a column's cells are drawn over each other (a later one wins).
_BLANK, _BAND, _TOUCH, _ASK, _BID, _LAST = range(6)
_GLYPHS = np.array([" ", "│", "━", "▔", "▁", "●"])
_STYLE_KEYS = (None, "band", "accent", "ask", "bid", "last")
_BAR_GLYPHS = np.array([" ", *fmt.BARS])


@lru_cache(maxsize=64)
def _axis(lo: float, hi: float, rows: int, decimals: int) -> tuple[str, ...]:
    """The axis cells of each plot row: a label every 4 rows and on the first and last, at the
    symbol's precision, left out where it would read the same as one above it."""
    shown: set[str] = set()
    cells = []
    for r in range(rows):
        label = ""
        if r == 0 or r == rows - 1 or r % 4 == 0:
            label = f"{hi - (hi - lo) * r / (rows - 1):,.{decimals}f}"
            if label in shown:
                label = ""
            shown.add(label)
        cells.append(label.rjust(AXIS_W - 2) + " ┤")
    return tuple(cells)


def _codes(hist: NDArray[np.float64], lo: float, hi: float, rows: int) -> NDArray[np.int8]:
    """(rows, columns) cell codes: the band between bid and ask, their edges, the last trade."""
    n = len(hist)
    bid, ask, last = hist[:, 0], hist[:, 1], hist[:, 2]
    ok = np.isfinite(bid) & np.isfinite(ask)

    def row_of(price: NDArray[np.float64], where: NDArray[np.bool_]) -> NDArray[np.intp]:
        # As Python's round(): half to even, which np.rint does too.
        return np.rint(np.where(where, (hi - price) / (hi - lo) * (rows - 1), -1)).astype(np.intp)

    ra, rb = row_of(ask, ok), row_of(bid, ok)
    r = np.arange(rows)[:, None]
    codes = np.where((r > ra) & (r < rb) & ok, _BAND, _BLANK).astype(np.int8)
    x = np.arange(n)
    touch = ok & (ra == rb)
    codes[ra[touch], x[touch]] = _TOUCH
    apart = ok & (ra != rb)
    codes[ra[apart], x[apart]] = _ASK
    codes[rb[apart], x[apart]] = _BID
    with np.errstate(invalid="ignore"):
        traded = ok & np.isfinite(last) & (lo <= last) & (last <= hi)
    rl = row_of(last, traded)
    codes[rl[traded], x[traded]] = _LAST
    return codes


Run = tuple[str, str | None]
"""Text and the key of its colour (`chart_text`'s `colours`: "ask", "muted", ...; None: plain)."""


def chart_rows(
    hist: NDArray[np.float64], vol: NDArray[np.float64], width: int, height: int, decimals: int = 2
) -> list[list[Run]]:
    """The chart's lines in `width` x `height` cells, each as runs of one colour (see `Run`).

    Bid/ask as a band with the last trade on it, one column per update, price axis left. Axis
    labels are printed at the symbol's precision (`decimals`), and a label that would read the
    same as the one above it (a range of a few ticks over many rows) is left out.
    """
    cols = max(1, width - AXIS_W)
    rows = max(3, height - 2)  # the last two lines: volume bars and a caption
    hist = hist[-cols:]
    vol = vol[-cols:]
    if len(hist) == 0 or not np.isfinite(hist).any():
        return [[("waiting for updates…", "muted")]]
    lo = float(np.nanmin(hist[:, :2]))
    hi = float(np.nanmax(hist[:, :2]))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01
    n = len(hist)
    codes = _codes(hist, lo, hi, rows)
    lines = np.ascontiguousarray(_GLYPHS[codes]).view(f"<U{n}")[:, 0].tolist()
    out: list[list[Run]] = []
    for r, (axis, line) in enumerate(zip(_axis(lo, hi, rows, decimals), lines, strict=True)):
        row = codes[r]
        cuts = [0, *(np.flatnonzero(row[1:] != row[:-1]) + 1).tolist(), n]
        runs: list[Run] = [(axis, "muted")]
        runs.extend((line[a:b], _STYLE_KEYS[row[a]]) for a, b in itertools.pairwise(cuts))
        out.append(runs)
    peak = float(vol.max()) if len(vol) else 0.0
    if peak > 0:
        level = np.where(vol > 0, np.minimum(7, (vol / peak * 7.999).astype(np.intp)) + 1, 0)
        bars = "".join(_BAR_GLYPHS[level].tolist())
    else:
        bars = " " * len(vol)
    out.append([("volume".rjust(AXIS_W - 2) + " ┤", "muted"), (bars, "volume")])
    caption = " " * AXIS_W + f"last {n} updates   ▔ ask  ▁ bid  │ spread  ● last trade  volume"
    caption += " per update"
    if len(caption) > width:  # whole words only, as Textual wraps (the rest below, unseen)
        caption = caption[: width + 1].rsplit(" ", 1)[0].rstrip()
    out.append([(caption, "muted")])
    return out


def chart_text(
    hist: NDArray[np.float64],
    vol: NDArray[np.float64],
    width: int,
    height: int,
    colours: dict[str, str],
    decimals: int = 2,
) -> Text:
    """`chart_rows` as one Rich `Text`, each colour key looked up in `colours`."""
    text = Text(no_wrap=True, overflow="crop")
    for k, runs in enumerate(chart_rows(hist, vol, width, height, decimals)):
        if k:
            text.append("\n")
        for part, key in runs:
            text.append(part, style=(colours[key] or None) if key else None)
    return text
