"""Tardis book files as a replay's books: level records numbered per symbol, and (for files that
come without ticks) the ticks of the top of each book.

Rows (`_replay_tardis`, columns) are taken in time order (`_tardis_records`): a change is one
level update (book seq +1); a symbol's first whole book is its book before the replay (snapshot
rows, book seq 1); a later whole book (a Tardis snapshot row, or a snapshot run after a
reconnect) becomes the changes that make it, numbered on from the seq held, so a client that
holds the book takes them as any other change. Prices are in the universe's ticks (or ticks
inferred from the decimals the prices use), sizes exact whole counts of its size unit (or of
10^-k, k the most decimals the amounts use), computed in integers from the amounts' digits.
numpy only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _replay_tardis as tr
from ._model import decimals
from ._tardis_records import Rows, number
from ._tardis_tops import stable_order
from .errors import UserError
from .ticks import TickBatch
from .universe import Universe


@dataclass
class TardisBooks:
    records: NDArray[np.void]  # LEVEL_DTYPE, time order
    snapshot: NDArray[np.bool_]  # the rows of each symbol's first whole book
    universe: Universe
    depth: int
    ticks: TickBatch  # the top of each book whenever it changed (for files without ticks)
    # By how much the ticks' sizes grow: the books' amounts need a finer size unit (None: not).
    finer: NDArray[np.uint64] | None = None


def tardis_books(
    paths: list[Path],
    kinds: list[str],
    universe: Universe | None,
    depth: int | None,
    tops: bool = True,
) -> TardisBooks:
    """Read and number the books of Tardis files `paths` (their `kinds`), on `universe` if
    given (else one inferred from them); `tops`: make the ticks of their tops too."""
    parts, wholes = [], 0
    for path, kind in zip(paths, kinds, strict=True):
        part = tr.read_book_csv(path, kind, wholes)
        wholes = max(wholes, int(part.whole.max()) + 1) if len(part) else wholes
        parts.append(part)
    if not any(len(p) for p in parts):
        raise UserError(f"nothing to replay: no book rows in {', '.join(map(str, paths))}")
    names = _names(parts, universe)
    index = {s: i for i, s in enumerate(names)}
    sym = np.concatenate([np.array([index[n] for n in p.names], np.intp)[p.sym] for p in parts])
    col = {f: _joined([getattr(p, f) for p in parts]) for f in _COLUMNS}
    where = _Where([(p.path, p.line) for p in parts])
    del parts  # their columns are `col` now (or were copied into it)
    finer = None
    need = _units(len(names), sym, col["places"])
    if universe is None:
        universe = _inferred(names, sym, col["price"], col["side"], need)
    else:  # the ticks' unit, or a finer one if the amounts use more decimals
        have = universe.size_unit if universe.size_unit is not None else np.ones(len(names))
        need = np.minimum(have, need)
        if (need < have).any():
            finer = np.round(have / need).astype(np.uint64)
            universe = dataclasses.replace(universe, size_unit=need)
    tick = universe.tick_size.astype(np.float64)
    unit = universe.size_unit if universe.size_unit is not None else np.ones(len(names))
    size = sizes(col.pop("mant"), col.pop("places"), col.pop("amount"), unit, sym, where)
    ts = col["ts"]
    order = None if bool((ts[1:] >= ts[:-1]).all()) else stable_order(ts)  # None: in order
    scale = np.asarray(10.0 ** decimals(tick), np.float64)
    units = np.round(col.pop("price") * scale[sym]).astype(np.int64)
    step = np.maximum(np.round(tick * scale), 1).astype(np.int64)
    _on_grid(units, tick, step, sym, where)
    rows = Rows(sym, col["ts"], col["side"], units, size, col["whole"])
    got = number(rows, order, step, scale, tops)
    return TardisBooks(got.records, got.snapshot, universe, depth or got.widest, got.ticks, finer)


_COLUMNS = ("ts", "side", "price", "mant", "places", "amount", "whole")


def _joined(arrays: list[NDArray[Any]]) -> NDArray[Any]:
    """One array of `arrays` (the one itself if alone: a day's file is not copied)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


class _Where:
    """The file and line of a row of all files' rows (for errors)."""

    def __init__(self, files: list[tuple[Path, NDArray[np.int64]]]) -> None:
        self.files = files
        self.ends = np.cumsum([len(lines) for _, lines in files])

    def __call__(self, k: int) -> str:
        i = int(np.searchsorted(self.ends, k, "right"))
        path, lines = self.files[i]
        return f"{path} line {int(lines[k - (self.ends[i] - len(lines))])}"


def _names(parts: list[tr.TardisRows], universe: Universe | None) -> list[str]:
    seen = list(dict.fromkeys(n for p in parts for n in p.names))
    if universe is None:
        return sorted(seen)
    unknown = [s for s in seen if s not in universe]
    if unknown:
        raise UserError(f"symbol {unknown[0]!r} of the book files is not among the replay's ticks")
    return list(universe.symbols)


def _inferred(
    names: list[str],
    sym: NDArray[np.intp],
    price: NDArray[np.float64],
    side: NDArray[np.int8],
    unit: NDArray[np.float64],
) -> Universe:
    """Reference data from the books: the tick from the decimals prices use, the size unit from
    those amounts use, the first mid as the price."""
    n = len(names)
    places = np.zeros(n, np.intp)
    np.maximum.at(places, sym, price_places(price))
    bid, ask = np.full(n, -np.inf), np.full(n, np.inf)
    np.maximum.at(bid, sym[side == 0], price[side == 0])
    np.minimum.at(ask, sym[side == 1], price[side == 1])
    first_row = np.full(n, len(sym), np.intp)
    np.minimum.at(first_row, sym, np.arange(len(sym)))
    first = np.ones(n)
    has = first_row < len(sym)
    first[has] = price[first_row[has]]
    return inferred_universe(names, places, bid, ask, first, unit)


def inferred_universe(
    names: list[str],
    places: NDArray[np.intp],
    bid: NDArray[np.float64],
    ask: NDArray[np.float64],
    first: NDArray[np.float64],
    unit: NDArray[np.float64],
) -> Universe:
    """The universe of symbols `names` from what their rows say: the most decimals a price
    uses, the best bid and ask, the first price (1 if none), the size unit."""
    first = first.copy()
    both = np.isfinite(bid) & np.isfinite(ask)
    first[both] = (bid[both] + ask[both]) / 2
    tick = 10.0 ** (-places.astype(np.float64))
    rows = [
        (s, s, "Other", float(first[i]), float(tick[i]), 1, 1.0, "stock")
        for i, s in enumerate(names)
    ]
    return Universe.from_rows(rows, size_unit=unit)


def price_places(price: NDArray[np.float64]) -> NDArray[np.intp]:
    """`_model.decimals` of each price, without its (rows x 10) work array: most prices are
    settled at their tick's places, so each pass looks only at those still open."""
    out = np.full(len(price), 9, np.intp)
    todo = np.arange(len(price))
    for k in range(9):
        scaled = price[todo] * 10.0**k
        exact = np.abs(scaled - np.round(scaled)) <= 1e-9 * scaled
        out[todo[exact]] = k
        todo = todo[~exact]
    return out


def _units(n: int, sym: NDArray[np.intp], places: NDArray[np.int8]) -> NDArray[np.float64]:
    """Per symbol, 10^-k: k the most decimals its amounts use (at most 8)."""
    most = np.zeros(n, np.int64)
    np.maximum.at(most, sym, np.where(places < 0, 8, places).astype(np.int64))
    return np.array([10.0 ** -int(k) for k in np.minimum(most, 8)])


def sizes(
    mant: NDArray[np.int64],
    places: NDArray[np.int8],
    amount: NDArray[np.float64],
    unit: NDArray[np.float64],
    sym: NDArray[np.intp],
    where: Callable[[int], str],
) -> NDArray[np.uint64]:
    """Amounts (mant * 10**-places) as whole counts of each symbol's size unit, in integers
    where the unit divides them; the others through floats, as close to a count as rounding
    allows; finer ones are a UserError."""
    out, rest, counts, bad = _counts(mant, places, amount, unit, sym)
    if bad.any():
        k = int(rest[np.argmax(bad)])
        raise UserError(
            f"{where(k)}: amount {_text(int(mant[k]), int(places[k]), float(amount[k]))} is not"
            f" a whole number of the symbol's size unit {unit[sym[k]]:g} below 2**63 of them"
            " (its ticks count sizes in it)"
        )
    out[rest] = counts.astype(np.uint64)
    return out


def unsized(
    mant: NDArray[np.int64],
    places: NDArray[np.int8],
    amount: NDArray[np.float64],
    unit: NDArray[np.float64],
    sym: NDArray[np.intp],
) -> NDArray[np.intp]:
    """The rows whose amounts `sizes` refuses."""
    _, rest, _, bad = _counts(mant, places, amount, unit, sym)
    out: NDArray[np.intp] = rest[bad]
    return out


def _counts(
    mant: NDArray[np.int64],
    places: NDArray[np.int8],
    amount: NDArray[np.float64],
    unit: NDArray[np.float64],
    sym: NDArray[np.intp],
) -> tuple[NDArray[np.uint64], NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    """`sizes`' counts in integers, the rows left to floats, their counts, which are bad."""
    j = decimals(unit)
    whole_unit = np.round(unit * 10.0**j).astype(np.int64)[sym]  # unit = whole_unit * 10**-j
    e = j[sym] - places.astype(np.int64)
    out = np.zeros(len(mant), np.uint64)
    done = np.zeros(len(mant), np.bool_)
    big = (2**63 - 1) // 10 ** np.clip(np.abs(e), 0, 18)
    up = (places >= 0) & (e >= 0) & (e <= 18) & (mant <= big)
    num = np.where(up, mant * 10 ** np.clip(e, 0, 18), 0)
    fit = up & (num % whole_unit == 0)
    out[fit], done[fit] = num[fit] // whole_unit[fit], True
    down = (places >= 0) & (e < 0) & (-e <= 18) & (whole_unit <= big)
    den = np.where(down, whole_unit * 10 ** np.clip(-e, 0, 18), 1)
    fit = down & (mant % den == 0)
    out[fit], done[fit] = mant[fit] // den[fit], True
    rest = np.flatnonzero(~done)
    scaled = amount[rest] / unit[sym[rest]]
    counts = np.round(scaled)
    bad = (np.abs(scaled - counts) > 1e-6 * np.maximum(counts, 1)) | (counts >= 2**63)
    return out, rest, counts, bad


def _text(mant: int, places: int, value: float) -> str:
    if places < 0:
        return repr(value)
    digits = str(mant).rjust(places + 1, "0")
    return (
        f"{digits[: len(digits) - places]}.{digits[len(digits) - places :]}" if places else digits
    )


def _on_grid(
    units: NDArray[np.int64],
    tick: NDArray[np.float64],
    step: NDArray[np.int64],
    sym: NDArray[np.intp],
    where: Callable[[int], str],
) -> None:
    """Every price on its symbol's tick grid, else a UserError naming the row."""
    bad = np.flatnonzero(units % step[sym])
    if len(bad):
        k = int(bad[0])
        raise UserError(f"{where(k)}: price off the tick grid of {tick[sym[k]]:g}")
