"""`SparkCache`: each row's sparkline string, rebuilt only when the picture can change.

A sparkline's older buckets move once a second (when the bucket rolls); only the newest one
follows every tick. So the cache keeps, per symbol, the older buckets' min and max and their
characters, and on a tick draws just the last character, unless the new value moves the
window's min or max (every bar rescales) or the window rolled. The text is exactly
`fmt.sparkline` of the same values. Imports numpy only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .fmt import BARS
from .state import MarketState

_TOP = len(BARS) - 1
_CHARS = np.array([*BARS, " "])  # index len(BARS): an unknown sample


def _char(value: float, lo: float, span: float) -> str:
    if not math.isfinite(value):
        return " "
    if span <= 0:
        return BARS[_TOP // 2]
    return BARS[round((value - lo) / span * _TOP)]


def _chars(values: NDArray[np.float64], lo: float, span: float) -> str:
    """`_char` of every value, in one numpy pass (np.rint rounds half to even, as round does)."""
    idx = np.full(values.shape, len(BARS), np.intp)
    known = np.isfinite(values)
    if span <= 0:
        idx[known] = _TOP // 2
    else:
        idx[known] = np.rint((values[known] - lo) / span * _TOP).astype(np.intp)
    return "".join(_CHARS[idx].tolist())


class _Window:
    """The older buckets of one symbol's window: fixed until the bucket rolls."""

    __slots__ = ("chars", "first", "head", "hi", "lo", "older", "scale", "width")

    def __init__(self, older: NDArray[np.float64], head: int, width: int) -> None:
        self.older = older
        self.head, self.width = head, width
        known = older[np.isfinite(older)]
        self.lo = float(known.min()) if known.size else math.inf
        self.hi = float(known.max()) if known.size else -math.inf
        self.first = float(known[0]) if known.size else math.nan
        self.scale: tuple[float, float] | None = None  # (lo, hi) that `chars` were drawn with
        self.chars = ""


class SparkCache:
    """Sparkline text and direction per symbol; `clear()` when symbols are reset or re-added."""

    def __init__(self) -> None:
        self._windows: dict[int, _Window] = {}

    def clear(self) -> None:
        self._windows.clear()

    def get(self, state: MarketState, sid: int, width: int) -> tuple[str, bool]:
        """(`fmt.sparkline(state.sparkline_values(sid, width), width)`, rising)."""
        head = state.spark_head
        win = self._windows.get(sid)
        if win is None or win.head != head or win.width != width:
            older = state.sparkline_values(sid, width)[:-1].copy()
            win = self._windows[sid] = _Window(older, head, width)
        last = float(state.spark[sid, head])
        lo, hi = win.lo, win.hi
        if math.isfinite(last):
            lo, hi = min(lo, last), max(hi, last)
        if lo > hi:  # nothing known in the window
            return " " * width, True
        if win.scale != (lo, hi):
            win.scale = (lo, hi)
            win.chars = _chars(win.older, lo, hi - lo)
        text = win.chars + _char(last, lo, hi - lo)
        first = win.first if math.isfinite(win.first) else last
        if math.isfinite(last):
            end = last
        else:
            known = win.older[np.isfinite(win.older)]
            end = float(known[-1])
        return text, end >= first
