"""A given universe (`--universe`) in the first pass of a streamed Tardis replay: the checks the
whole-file reader (`_tardis_books.tardis_books`) makes of every row, made block by block, and
refused after the pass in the same order and words.

`Given.add` notes, per block, the symbols the universe lacks, the first price off its tick grid,
and per symbol the first amount its size unit cannot count; `Given.finish` then refuses the
first unknown symbol, else the first amount the final size unit (the universe's, or a finer one
if the amounts use more decimals) cannot count, else the price off the grid, and gives the
universe with its size unit. numpy only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._model import decimals
from ._tardis_books import sizes, unsized
from .errors import UserError
from .universe import Universe

_Row = tuple[int, int, Path, int, int, int, float]  # file, line, path, symbol, mant, places, amount


class Given:
    """What the rows of the files say against `universe`, so far."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        n = len(universe)
        self.have = universe.size_unit if universe.size_unit is not None else np.ones(n)
        self.tick = universe.tick_size.astype(np.float64)
        self.scale = np.asarray(10.0 ** decimals(self.tick), np.float64)
        self.step = np.maximum(np.round(self.tick * self.scale), 1).astype(np.int64)
        self.unknown: list[str] = []
        self.off: str | None = None  # the first price off its grid, said
        self.bad: dict[int, _Row] = {}  # symbol -> its first amount `have` cannot count

    def lut(self, names: list[str]) -> NDArray[np.intp]:
        """The universe's id of each of `names` (-1: not in it)."""
        index = self.universe.index
        return np.array([index(n) if n in self.universe else -1 for n in names], np.intp)

    def add(self, fi: int, path: Path, names: list[str], part: tuple[NDArray[Any], ...]) -> None:
        """A block of file `fi` (its symbols so far `names`)."""
        sym, _, _, price, mant, places, amount, _, line = part
        self.unknown += [n for n in names if n not in self.universe and n not in self.unknown]
        u = self.lut(names)[sym.astype(np.intp)]
        rows = np.flatnonzero(u >= 0)
        us = u[rows]
        if self.off is None:
            off = np.flatnonzero(
                np.round(price[rows] * self.scale[us]).astype(np.int64) % self.step[us]
            )
            if len(off):
                k = int(rows[off[0]])
                self.off = (
                    f"{path} line {int(line[k])}: price off the tick grid of {self.tick[u[k]]:g}"
                )
        for b in unsized(mant[rows], places[rows], amount[rows], self.have, us).tolist():
            k, s = int(rows[b]), int(us[b])
            if s not in self.bad:
                self.bad[s] = (
                    fi,
                    int(line[k]),
                    path,
                    s,
                    int(mant[k]),
                    int(places[k]),
                    float(amount[k]),
                )

    def finish(self, most: NDArray[np.int64], odd: list[_Row]) -> Universe:
        """The universe with its size unit for amounts using up to `most` decimals (per
        symbol), after refusing what the whole-file reader refuses (`odd`: the amounts only
        a unit of 10^-8 or finer may count)."""
        if self.unknown:
            raise UserError(
                f"symbol {self.unknown[0]!r} of the book files is not among the replay's ticks"
            )
        need = np.array([10.0 ** -int(k) for k in np.minimum(most, 8)])
        need = np.minimum(self.have, need)
        universe = self.universe
        if (need < self.have).any():
            universe = dataclasses.replace(universe, size_unit=need)
        unit = universe.size_unit if universe.size_unit is not None else np.ones(len(need))
        rows = sorted(set(odd) | set(self.bad.values()))  # file order
        if rows:
            _, line, path, s, mant, places, amount = (list(c) for c in zip(*rows, strict=True))
            sizes(
                np.array(mant, np.int64),
                np.array(places, np.int8),
                np.array(amount, np.float64),
                unit,
                np.array(s, np.intp),
                lambda k: f"{path[k]} line {line[k]}",
            )
        if self.off is not None:
            raise UserError(self.off)
        return universe
