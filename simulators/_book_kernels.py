"""Exact, faster stand-ins for the numpy calls the order book makes on every event.

Each returns what the call it replaces returns, bit for bit, and consumes the same random draws,
so a seed gives the same book; they only cost less:
- `pareto_lots`: floor(1 + Pareto) from the same exponential draws `Generator.pareto` makes,
  through a vectorised expm1 (which may differ from the C library's by an ulp; the rare values
  that close to a whole number are recomputed with the C library's, as `pareto` does);
- `DistanceLaw`: searchsorted on a small cumulative law through a lookup table of 2^k bins;
- `stable_order`: a stable argsort of small non-negative integer keys by 16-bit radix passes.
Imports numpy only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

_NEAR = 1e-12  # relative: a vectorised expm1 is within a few ulps (1e-16) of the C library's
_MAX_BITS = 20  # the distance table has at most 2^20 bins (1000 levels need 2^17)
_U16 = 1 << 16


def pareto_lots(
    rng: np.random.Generator, a: float, size: int | tuple[int, ...]
) -> NDArray[np.float64]:
    """`np.floor(rng.pareto(a, size) + 1)`, the same values from the same draws, faster."""
    e = rng.standard_exponential(size)
    y = e / a
    v = np.expm1(y)
    v += 1
    lots = np.floor(v)
    frac = v - lots
    near = np.flatnonzero((frac < _NEAR * v) | (1 - frac < _NEAR * v))
    if near.size:  # as close to a whole number as an ulp of expm1: the C library decides
        flat_y, flat_lots = y.reshape(-1), lots.reshape(-1)
        for i in near.tolist():
            flat_lots[i] = math.floor(math.expm1(float(flat_y[i])) + 1)
    return lots


class DistanceLaw:
    """`min(searchsorted(cdf, u, "right"), len(cdf) - 1)` for uniforms u in [0, 1), by table.

    With 2^k bins, bin j = floor(u 2^k) holds at most one value of `cdf` (k is chosen so), so
    the count of values <= u is the count at the bin's left edge, plus one if that next value
    is <= u; the last value is made infinite so the result never passes len(cdf) - 1.
    """

    def __init__(self, cdf: NDArray[np.float64]) -> None:
        self.cdf = cdf
        self._bins = 0
        for bits in range(6, _MAX_BITS + 1):
            edges = np.arange((1 << bits) + 1) / (1 << bits)  # exact binary fractions
            below = np.searchsorted(cdf, edges, "right")
            if np.all(np.diff(below) <= 1):
                self._bins = 1 << bits
                self._table = np.minimum(below[:-1], len(cdf) - 1).astype(np.intp)
                self._next = cdf.copy()
                self._next[-1] = np.inf
                break

    def __call__(self, u: NDArray[np.float64]) -> NDArray[np.intp]:
        if not self._bins:  # too fine a law for a table: the plain search
            found: NDArray[np.intp] = np.minimum(
                np.searchsorted(self.cdf, u, "right"), len(self.cdf) - 1
            )
            return found
        b = self._table[(u * self._bins).astype(np.intp)]
        b += self._next[b] <= u
        return b


def stable_order(key: NDArray[np.integer], bound: int) -> NDArray[np.intp]:
    """`np.argsort(key, kind="stable")` for integer keys in [0, bound), by 16-bit radix passes.

    numpy sorts 16-bit keys by radix (linear), wider ones by timsort; least significant digits
    first, each pass stable, is the same order. Keys of more than 48 bits use timsort.
    """
    if bound <= _U16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    if bound > 1 << 48:
        return np.argsort(key, kind="stable")
    order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    shift = 16
    while bound > 1 << shift:
        digit = ((key[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order
