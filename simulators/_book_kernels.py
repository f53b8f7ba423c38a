"""Exact, faster stand-ins for the numpy calls the order book makes on every event.

Each returns what the call it replaces returns, bit for bit, and consumes the same random draws,
so a seed gives the same book; they only cost less:
- `pareto_lots`: floor(1 + Pareto) from the same exponential draws `Generator.pareto` makes,
  through a vectorised expm1 (which may differ from the C library's by an ulp; the rare values
  that close to a whole number are recomputed with the C library's, as `pareto` does);
- `DistanceLaw`: searchsorted on a small cumulative law through a lookup table of 2^k bins;
- `stable_order`: a stable argsort of small non-negative integer keys by 16-bit radix passes.
`Scratch` keeps the large work arrays from chunk to chunk: memory the C library has handed
back to the system costs a page fault a page when touched again (several microseconds each
here), and a chunk's temporaries run to tens of megabytes. Imports numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

_NEAR = 1e-12  # relative: a vectorised expm1 is within a few ulps (1e-16) of the C library's
_MAX_BITS = 20  # the distance table has at most 2^20 bins (1000 levels need 2^17)
_U16 = 1 << 16
_ROOM = 2.0  # a work array is made twice as large as asked: pages untouched cost nothing


class Scratch:
    """Work arrays by name, made once and reused: `w(name, n, dtype)` is n of them, unset
    (records: zero when first made, then as the last user left them).

    A name is bytes that any dtype views, so stages whose arrays are not alive at once share
    names (and memory). A name holds one value at a time; what a caller keeps past the next use
    of a name must be copied out (indexing with an array copies).
    """

    def __init__(self) -> None:
        self._arrays: dict[str, NDArray[np.uint8]] = {}
        self._views: dict[tuple[str, Any], NDArray[Any]] = {}  # (name, dtype): all of it so
        self._arange: NDArray[np.intp] = np.arange(0)

    def __call__(self, name: str, n: int, dtype: DTypeLike = np.int64) -> NDArray[Any]:
        whole = self._views.get((name, dtype))  # a chunk asks for ~80: each costs a slice only
        if whole is None or whole.size < n:
            whole = self._grow(name, n, dtype)
        return whole[:n]

    def _grow(self, name: str, n: int, dtype: DTypeLike) -> NDArray[Any]:
        """Room for n of `dtype` under `name`: its bytes, made larger if need be."""
        dt = np.dtype(dtype)
        size = n * dt.itemsize
        a = self._arrays.get(name)
        if a is None or a.size < size:
            make = np.zeros if dt.names else np.empty  # records come zeroed (padding)
            a = self._arrays[name] = make(int(size * _ROOM) + 8192, np.uint8)
            for key in [key for key in self._views if key[0] == name]:
                del self._views[key]  # views of the bytes before
        whole = a[: a.size // dt.itemsize * dt.itemsize].view(dt)
        self._views[(name, dtype)] = whole
        return whole

    def arange(self, n: int) -> NDArray[np.intp]:
        """0, 1, ... n - 1 (read only: shared)."""
        if self._arange.size < n:
            self._arange = np.arange(int(n * _ROOM) + 1024)
            self._arange.flags.writeable = False
        return self._arange[:n]


def take(values: NDArray[Any], at: NDArray[np.integer], out: NDArray[Any]) -> NDArray[Any]:
    """`values[at]` into `out` (same dtype), without the temporary `np.take` makes to check."""
    got: NDArray[Any] = values.take(at, out=out, mode="clip")  # `at` is in range
    return got


def pareto_lots(
    rng: np.random.Generator,
    a: float,
    size: int | tuple[int, ...],
    w: Scratch | None = None,
) -> NDArray[np.float64]:
    """`np.floor(rng.pareto(a, size) + 1)`, the same values from the same draws, faster.

    With `w`, the result is its "lots" array (`size` an int).
    """
    if w is None:
        e = rng.standard_exponential(size)
        v, lots, gap = np.empty_like(e), np.empty_like(e), np.empty_like(e)
        close = np.empty(e.shape, bool)
    else:
        assert isinstance(size, int)
        e = rng.standard_exponential(out=w("pareto_e", size, np.float64))
        v, lots = w("pareto_v", size, np.float64), w("lots", size, np.float64)
        gap, close = w("pareto_gap", size, np.float64), w("pareto_close", size, bool)
    e /= a
    np.expm1(e, out=v)
    v += 1
    np.floor(v, out=lots)
    np.rint(v, out=gap)  # how far from the nearest whole number, against an ulp's worth
    gap -= v
    np.abs(gap, out=gap)
    v *= _NEAR
    near = np.flatnonzero(np.less(gap, v, out=close))
    if near.size:  # as close to a whole number as an ulp of expm1: the C library decides
        flat_y, flat_lots = e.reshape(-1), lots.reshape(-1)
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

    def __call__(self, u: NDArray[np.float64], w: Scratch | None = None) -> NDArray[np.intp]:
        """The distance of each uniform; with `w`, its "d" array."""
        if not self._bins:  # too fine a law for a table: the plain search
            found: NDArray[np.intp] = np.minimum(
                np.searchsorted(self.cdf, u, "right"), len(self.cdf) - 1
            )
            return found
        w = w or Scratch()
        n = u.size
        at = w("law_at", n, np.intp)
        scaled = np.multiply(u, self._bins, out=w("law_scaled", n, np.float64))
        at[...] = scaled  # floor: u >= 0
        b = take(self._table, at, out=w("d", n, np.intp))
        nxt = take(self._next, b, out=scaled)
        b += np.less_equal(nxt, u, out=w("law_le", n, bool))
        return b


def stable_order(
    key: NDArray[np.integer], bound: int, w: Scratch | None = None
) -> NDArray[np.intp]:
    """`np.argsort(key, kind="stable")` for integer keys in [0, bound), by 16-bit radix passes.

    numpy sorts 16-bit keys by radix (linear), wider ones by timsort; least significant digits
    first, each pass stable, is the same order. Keys of more than 48 bits use timsort.
    """
    if bound > 1 << 48:
        return np.argsort(key, kind="stable")
    w = w or Scratch()
    n = key.size
    digit = w("order_digit", n, np.uint16)
    digit[...] = key  # an unsafe cast: the low 16 bits
    order = np.argsort(digit, kind="stable")
    shift = 16
    while bound > 1 << shift:
        wide = take(key, order, out=w("order_key", n, key.dtype))
        wide >>= shift
        digit[...] = wide
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def grouped_order(
    key: NDArray[np.int64],
    group_lo: NDArray[np.int64],
    group_hi: NDArray[np.int64],
    group_start: NDArray[np.int64],
    w: Scratch,
) -> NDArray[np.intp]:
    """`np.argsort(key, kind="stable")` when keys come in groups of ascending ranges.

    Group g holds key[group_start[g]:group_start[g + 1]], all in [group_lo[g], group_hi[g]),
    and the ranges follow each other. Runs of whole groups spanning 2^16 keys or less are
    sorted alone, one 16-bit radix pass each instead of two or more for the whole.
    """
    bound = int(group_hi[-1]) if group_hi.size else 0
    if bound <= _U16:
        return stable_order(key, bound, w)
    ends = np.append(group_start, key.size)
    parts, g = [], 0
    while g < group_lo.size:
        h = int(np.searchsorted(group_hi, group_lo[g] + _U16, "right"))
        if h == g:  # one group alone spans more than 16 bits
            return stable_order(key, bound, w)
        a, b = int(ends[g]), int(ends[h])
        local = np.subtract(key[a:b], group_lo[g], out=w("group_key", b - a))
        part = stable_order(local, _U16, w)
        part += a
        parts.append(part)
        g = h
    return np.concatenate(parts)
