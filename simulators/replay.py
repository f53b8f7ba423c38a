"""Loading replays: recorded or real ticks (and books) read into a replay source.

This module loads files (`load`, `open_replay`); the source itself, `Replay` (the shape of
`Market` for the server: `step(until_ns)`, `snapshot()`, speed, loop and books), is
`_replay_source`, whose docstring says how it releases records; a Tardis book file alone is
streamed from disk as the replay goes (`_replay_stream`). numpy only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from . import _replay_files as files
from . import _replay_parts as rp
from ._model import decimals
from ._replay_book import load_books, split_books
from ._replay_source import Replay, _grow, _join, parse_time
from ._replay_stream import open_stream
from ._replay_tardis import book_kind
from .errors import UserError
from .ticks import MAX_SYMBOLS, TickBatch
from .universe import Universe


def load(
    paths: list[str] | list[Path],
    *,
    universe: Universe | None = None,
    columns: str | None = None,
    strict: bool = False,
) -> tuple[TickBatch, Universe]:
    """Every record of `paths`, merged in time order (stable), and the universe they are on.
    Rows that cannot be replayed are skipped and counted in a log line, or, `strict`, refused."""
    mapping = files.parse_columns(columns)
    parts = [files.read(Path(p), mapping, strict=strict) for p in paths]
    if not any(len(p) for p in parts):
        raise UserError(
            f"nothing to replay: no ticks in {', '.join(str(p) for p in paths)}"
            " (a header alone, or only rows that were skipped)"
        )
    own = [p for p in parts if isinstance(p, rp.Own)]
    raw = [p for p in parts if isinstance(p, rp.Raw)]
    if own and raw:
        raise UserError("replay either tickwire files or quote/trade CSVs, not both at once")
    names = _names(own, raw, universe)
    size_unit = None
    if raw:
        records, size_unit = files.build_raw(raw, names)
    else:
        index = {s: i for i, s in enumerate(names)}
        size_unit = _own_units(own, index, len(names))
        chunks = []
        for part in own:
            lut = np.array([index[s] for s in part.names], np.intp)
            recs = part.records.copy()
            recs["sym"] = lut[recs["sym"].astype(np.intp)]
            mine = _unit_of(part)
            if mine is not None and size_unit is not None:  # counted in the finest unit
                by = np.round(mine / size_unit[lut]).astype(np.uint64)
                for f in ("volume", "bid_size", "ask_size", "last_size"):
                    recs[f] = recs[f] * by[part.records["sym"].astype(np.intp)]
            chunks.append(recs)
        records = _join(chunks)
        records = records[np.argsort(records["ts"], kind="stable")]
    if universe is None:
        carried = next((p.universe for p in own if p.universe is not None), None)
        if carried is not None and list(carried.symbols) == names:
            universe = carried
    if universe is None:
        universe = _inferred(records, names)
    if size_unit is not None:  # what the CSVs' sizes were counted in (1 for whole shares)
        universe = dataclasses.replace(universe, size_unit=size_unit)
    _on_grid(records, universe)
    return records, universe


def _own_units(own: list[rp.Own], index: dict[str, int], n: int) -> NDArray[np.float64] | None:
    """Per symbol, the finest size unit our CSVs count it in (None when none says: whole)."""
    if all(p.size_unit is None for p in own):
        return None
    unit = np.ones(n)
    for part in own:
        mine = _unit_of(part)
        if mine is not None:
            np.minimum.at(unit, [index[s] for s in part.names], mine)
    return unit


def _unit_of(part: rp.Own) -> NDArray[np.float64] | None:
    """What `part`'s sizes count, by its names: its CSV's units, or its universe's."""
    if part.size_unit is not None:
        return part.size_unit
    carried = part.universe
    if carried is None or carried.size_unit is None:
        return None
    return np.array([carried.size_unit[carried.index(s)] for s in part.names])


def _names(own: list[rp.Own], raw: list[rp.Raw], universe: Universe | None) -> list[str]:
    parts: list[rp.Own | rp.Raw] = [*own, *raw]
    seen = list(dict.fromkeys(s for p in parts for s in p.names))
    if universe is not None:
        unknown = [s for s in seen if s not in universe]
        if unknown:
            raise UserError(f"symbol {unknown[0]!r} of the replay files is not in --universe")
        return list(universe.symbols)
    carried = next((p.universe for p in own if p.universe is not None), None)
    if carried is not None and set(seen) <= set(carried.symbols):
        return list(carried.symbols)
    if len(seen) > MAX_SYMBOLS:
        raise UserError(
            f"the replay files hold {len(seen)} symbols, more than the {MAX_SYMBOLS} a feed"
            " serves (the wire's symbol id is 16 bits); split the data or keep fewer symbols"
        )
    return sorted(seen)


def _inferred(records: TickBatch, names: list[str]) -> Universe:
    """Reference data from the ticks: tick size from the decimals prices use, the first price."""
    n = len(names)
    sym = records["sym"].astype(np.intp)
    places = np.zeros(n, np.intp)
    for f in ("bid", "ask", "last"):
        p = np.abs(records[f])
        np.maximum.at(places, sym, decimals(np.where(p > 0, p, 1.0)))
    tick = 10.0 ** (-places.astype(np.float64))
    ids, first = np.unique(sym, return_index=True)
    head = records[first]
    both = (head["bid"] > 0) & (head["ask"] > 0)
    mid = np.where(both, (head["bid"] + head["ask"]) / 2, 0.0)
    price = np.ones(n)
    price[ids] = np.where(mid > 0, mid, np.where(head["last"] > 0, head["last"], 1.0))
    rows = [
        (s, s, "Other", float(price[i]), float(tick[i]), 1, 1.0, "stock")
        for i, s in enumerate(names)
    ]
    return Universe.from_rows(rows)


def _on_grid(records: TickBatch, universe: Universe) -> None:
    """Prices on each symbol's tick grid in their shortest form, as the hub sends them."""
    tick = universe.tick_size.astype(np.float64)
    scale = 10.0 ** decimals(tick)
    sym = records["sym"].astype(np.intp)
    t, sc = tick[sym], scale[sym]
    for f in ("bid", "ask", "last"):
        records[f] = np.round(np.round(records[f] / t) * t * sc) / sc


def open_replay(
    paths: list[str] | list[Path],
    *,
    speed: float = 1.0,
    start: str | None = None,
    end: str | None = None,
    loop: bool = False,
    universe: Universe | None = None,
    columns: str | None = None,
    strict: bool = False,
    book_depth: int | None = None,
    stream: bool = True,
    block_bytes: int | None = None,
) -> Replay:
    """Load `paths` (see `load`; book files among them, or beside them, give it books), keep
    [start, end], and make the source. `book_depth`: for book data that does not say its own.
    `stream`: Tardis book files alone (no --loop, no symbol in two files) are read in blocks
    of `block_bytes` as the replay goes (`_replay_stream`), not whole."""
    tick_paths, book_paths = split_books([Path(p) for p in paths])
    source = "replay: " + ", ".join(Path(p).name for p in paths)
    kinds = [book_kind(p) for p in book_paths]
    files = [(p, k) for p, k in zip(book_paths, kinds, strict=True) if k is not None]
    if stream and files and len(files) == len(paths) and not loop:
        got = open_stream(
            files,
            speed=speed,
            start=start,
            end=end,
            book_depth=book_depth,
            block_bytes=block_bytes,
            universe=universe,
        )
        if got is not None:
            got.universe = dataclasses.replace(got.universe, source=source)
            return got
    book = None
    if tick_paths or not book_paths:
        records, uni = load(tick_paths, universe=universe, columns=columns, strict=strict)
        if book_paths:
            book, uni, _, finer = load_books(book_paths, uni, book_depth, ticks=True)
            if finer is not None:  # the books count sizes in a finer unit: so do the ticks
                _grow(records, finer)
    else:  # books alone (Tardis): their tops are the ticks
        book, uni, records, _ = load_books(book_paths, universe, book_depth)
    # The `symbols` reply says where the prices come from: these files, not the simulator.
    uni = dataclasses.replace(uni, source=source)
    t0 = int(records["ts"][0]) if len(records) else 0
    lo, hi = parse_time(start, t0), parse_time(end, t0)
    if lo is not None or hi is not None:
        ts = records["ts"]
        keep = np.ones(len(records), np.bool_)
        if lo is not None:
            keep &= ts >= lo
        if hi is not None:
            keep &= ts <= hi
        records = records[keep]
    if book is not None:
        book.window(lo, hi)
    return Replay(records, uni, speed=speed, loop=loop, book=book)


__all__ = ["Replay", "load", "open_replay", "parse_time"]
