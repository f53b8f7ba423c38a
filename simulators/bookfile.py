"""Order book files: the level updates `tickwire record --book` writes and `serve --replay` reads.

A book file is Parquet, one row per level record: `symbol` (dictionary-encoded), then ts, seq
(the symbol's book sequence), side (0 bid, 1 ask), price, size (the level's new size in the
symbol's size units, exact: 0 removes the level), level, reason (`book.Reason`; 0 in a
snapshot) and `snapshot`: True for the rows of a whole book (every level within the depth, all
at the book's seq and ts), which replaces the symbol's book; False for one change. The universe
(with its size units) and the book depth are in the metadata, as in tick files. It sits beside
the ticks: `ticks.parquet` -> `ticks.book.parquet` (`book_path`). numpy, and pyarrow lazily.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._replay_files import read_parquet
from .book import LEVEL_DTYPE
from .errors import UserError
from .universe import Universe
from .writers import EXTRAS, check_writable

BOOK_SUFFIX = ".book.parquet"
_FIELDS = ("ts", "seq", "side", "price", "size", "level", "reason")


def book_path(ticks: Path) -> Path:
    """Where the book file of the tick file `ticks` is: `x.parquet` -> `x.book.parquet`."""
    return ticks.with_name(ticks.name[: -len(ticks.suffix)] + BOOK_SUFFIX)


def is_book_path(path: Path) -> bool:
    return path.name.lower().endswith(BOOK_SUFFIX)


@dataclass
class BookRows:
    """A book file's rows: LEVEL_DTYPE records (`sym` indexes `names`) and which are snapshots."""

    names: list[str]
    records: NDArray[np.void]
    snapshot: NDArray[np.bool_]
    universe: Universe | None
    depth: int | None

    def __len__(self) -> int:
        return len(self.records)


class BookWriter:
    """Level records to a book file, one row group per `write`."""

    def __init__(self, path: Path, universe: Universe, depth: int) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path} needs pyarrow: {EXTRAS['parquet']}") from None
        self.path = path
        self._pa = pa
        self._symbols = pa.array(universe.symbols, pa.string())
        fields = [pa.field("symbol", pa.dictionary(pa.int32(), pa.string()))]
        fields += [pa.field(f, pa.from_numpy_dtype(LEVEL_DTYPE[f])) for f in _FIELDS]
        fields.append(pa.field("snapshot", pa.bool_()))
        meta = {
            "tickwire.universe": json.dumps(universe.reference()),
            "tickwire.book_depth": str(depth),
        }
        self._schema = pa.schema(fields, metadata=meta)
        check_writable(path)
        try:
            self._writer = pq.ParquetWriter(os.fspath(path), self._schema)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc}") from None

    def write(self, records: NDArray[np.void], snapshot: NDArray[np.bool_]) -> None:
        pa = self._pa
        sym = pa.DictionaryArray.from_arrays(
            pa.array(records["sym"].astype(np.int32)), self._symbols
        )
        cols = [sym] + [pa.array(np.ascontiguousarray(records[f])) for f in _FIELDS]
        cols.append(pa.array(snapshot))
        self._writer.write_table(pa.Table.from_arrays(cols, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def read_book_parquet(path: Path) -> BookRows:
    """A book file's rows, as written (the file's order)."""
    columns = ("symbol", *_FIELDS, "snapshot")
    table, names, index, universe = read_parquet(path, columns, "tickwire book file")
    records = np.zeros(table.num_rows, LEVEL_DTYPE)
    for f in _FIELDS:
        values = table.column(f).to_numpy()
        if len(values) and (values.min() < 0 or values.max() > _top(LEVEL_DTYPE[f])):
            raise UserError(f"{path}: column {f!r} holds a value out of its range")
        records[f] = values
    if len(records) and not np.isin(records["side"], (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(records["side"], (0, 1)))[0]) + 1
        raise UserError(f"{path} row {row}: side must be 0 (bid) or 1 (ask)")
    snapshot = table.column("snapshot").to_numpy(zero_copy_only=False).astype(np.bool_)
    records["sym"] = index
    meta = table.schema.metadata or {}
    depth = int(meta[b"tickwire.book_depth"]) if b"tickwire.book_depth" in meta else None
    return BookRows(names, records, snapshot, universe, depth)


def _top(dtype: np.dtype[Any]) -> float:
    if dtype.kind == "f":
        return float(np.finfo(dtype).max)
    return float(np.iinfo(dtype).max)
