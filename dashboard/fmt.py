"""How numbers look on screen: prices, signed changes, compact sizes, ages and sparklines.

Pure functions of numbers to short strings, shared by the table, the detail screen and the status
bar. Imports numpy only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.quantity import Quantities

BARS = "▁▂▃▄▅▆▇█"


def decimals(tick_size: float) -> int:
    """Digits after the point that show every price on a `tick_size` grid (0.01 -> 2)."""
    if tick_size <= 0 or tick_size >= 1:
        return 0 if tick_size >= 1 else 2
    return max(0, min(8, math.ceil(-math.log10(tick_size) - 1e-9)))


def price(value: float, dec: int = 2) -> str:
    return f"{value:,.{dec}f}" if math.isfinite(value) and value else "-"


def signed(value: float, dec: int = 2) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+,.{dec}f}"


def pct(value: float) -> str:
    return f"{value:+.2f}%" if math.isfinite(value) else "-"


def compact(value: float) -> str:
    """1234 -> 1.2k, 12345678 -> 12.3M: sizes and volumes in five characters or so."""
    v = abs(value)
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            shown = value / scale
            return f"{shown:.1f}{unit}" if abs(shown) < 100 else f"{shown:.0f}{unit}"
    return f"{value:.0f}"


def size(qty: Quantities, sid: int, units: int, width: int = 5) -> str:
    """A size or volume of symbol `sid` (a count of its size unit) as the asset's quantity in
    about `width` characters: shares as `compact` (1.2k); a fractional unit exactly with its
    decimals (0.00210 BTC) when that fits, else with the decimals that fit (1234.57)."""
    if qty.whole(sid):
        return compact(units * qty.unit(sid))
    text = qty.text(sid, units)
    if len(text) <= width:
        return text
    value = qty.value(sid, units)
    whole = len(f"{value:.0f}")
    if value >= 1000 or whole + 2 > width:
        return compact(value)
    return f"{value:.{width - whole - 1}f}"


def rate(value: float) -> str:
    if value <= 0:
        return "0"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def age(age_ns: int) -> str:
    """How old a tick is: 850us, 12ms, 3.4s, 5m, 2h (the unit carries the precision)."""
    if age_ns < 0:
        age_ns = 0
    if age_ns < 1_000_000:
        return f"{age_ns // 1000}us"
    if age_ns < 1_000_000_000:
        return f"{age_ns // 1_000_000}ms"
    s = age_ns / 1e9
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{s // 60:.0f}m"
    return f"{s // 3600:.0f}h"


def sparkline(values: NDArray[np.float64], width: int) -> str:
    """Block characters scaled between the window's min and max; unknown samples are blank."""
    values = values[-width:]
    out = [" "] * (width - len(values))
    known = values[np.isfinite(values)]
    if known.size == 0:
        return " " * width
    lo, hi = float(known.min()), float(known.max())
    span = hi - lo
    top = len(BARS) - 1
    for v in values:
        if not math.isfinite(v):
            out.append(" ")
        elif span <= 0:
            out.append(BARS[top // 2])
        else:
            out.append(BARS[round((v - lo) / span * top)])
    return "".join(out)
