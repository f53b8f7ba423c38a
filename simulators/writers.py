"""Writing tick records to files by suffix (.csv, .npy with its universe beside it, .parquet), as
`tickwire simulate --out` and `tickwire record` do. numpy, plus pyarrow for .parquet only (imported
when one is opened). A path that cannot be written is one UserError.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import struct
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from .errors import UserError
from .ticks import TICK_DTYPE, TickBatch
from .universe import FIELDS, Universe, decimals

EXTRAS = {"parquet": "pip install 'tickwire[parquet]'", "plot": "pip install 'tickwire[plot]'"}
_TICK_FIELDS: tuple[str, ...] = TICK_DTYPE.names or ()  # a structured dtype: never empty


class Writer(Protocol):
    """Where `simulate` and `record` stream tick records: `paths` are the files it writes."""

    paths: list[str]

    def write(self, batch: TickBatch) -> None: ...
    def close(self) -> None: ...


def open_writer(path: Path, universe: Universe) -> Writer:
    """Tick records to `path` by its suffix (.csv, .npy, .parquet), for simulate and record."""
    ext = path.suffix.lower()
    if ext == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise UserError(f"--out {path} needs pyarrow: {EXTRAS['parquet']}")
        return _ParquetWriter(path, universe)
    if ext == ".csv":
        return _CsvWriter(path, universe)
    if ext == ".npy":
        return _NpyWriter(path, universe)
    raise UserError(f"--out must end in .csv, .npy or .parquet, got {str(path)!r}")


def _open(path: Path, mode: str) -> IO[Any]:
    try:
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_writable(path: Path) -> None:
    """A UserError now if `path` cannot be written (the file is left as it was)."""
    existed = path.exists()
    _open(path, "ab").close()
    if not existed:
        path.unlink()


_SIZE_FIELDS = ("volume", "bid_size", "ask_size", "last_size")


class _CsvWriter:
    """symbol, then every TICK_DTYPE field; numbers as numpy prints them (shortest round trip).

    A CSV carries no universe, so sizes are the asset's quantities: counts of a fractional size
    unit (a crypto lot) are written exactly with its decimals (210 lots of 0.00001: 0.00210),
    which a replay reads back exactly; whole units (shares) are written as they are."""

    def __init__(self, path: Path, universe: Universe) -> None:
        self.paths = [str(path)]
        self._names = np.asarray(universe.symbols)
        unit = np.ones(len(universe)) if universe.size_unit is None else universe.size_unit
        self._places = np.array([decimals(float(u)) or 0 for u in unit], np.int64)
        self._scaled = np.round(unit * 10.0**self._places).astype(np.int64)  # unit in 10^-places
        self._file = _open(path, "w")
        self._file.write(",".join(["symbol", *_TICK_FIELDS]) + "\n")

    def write(self, batch: TickBatch) -> None:
        if len(batch) == 0:
            return
        # Whole columns become text in numpy; only the final join walks the rows, in C.
        cols = [self._names[batch["sym"]].tolist()]
        cols += [self._column(batch, f) for f in _TICK_FIELDS]
        self._file.write("\n".join(map(",".join, zip(*cols, strict=True))) + "\n")

    def _column(self, batch: TickBatch, field: str) -> list[str]:
        text = batch[field].astype(str)
        if field not in _SIZE_FIELDS:
            return list(text.tolist())
        places = self._places[batch["sym"]]
        for d in np.unique(places[places > 0]).tolist():  # a few distinct decimals at most
            rows = places == d
            value = batch[field][rows].astype(np.uint64) * self._scaled[batch["sym"][rows]].astype(
                np.uint64
            )  # exact: integers only
            whole, frac = np.divmod(value, np.uint64(10**d))
            text = text.astype(object)
            text[rows] = np.char.add(
                np.char.add(whole.astype(str), "."), np.char.zfill(frac.astype(str), d)
            )
        return list(text.tolist())

    def close(self) -> None:
        self._file.close()


class _NpyWriter:
    """A .npy of TICK_DTYPE records, streamed: the header is rewritten with the count at close."""

    _HEADER_BYTES = 512  # fixed, so the final count fits in the space reserved at the start

    def __init__(self, path: Path, universe: Universe) -> None:
        ref = path.with_suffix(".universe.csv")
        self.paths = [str(path), str(ref)]
        self._count = 0
        self._file = _open(path, "wb")
        self._file.write(self._header(0))
        with _open(ref, "w") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(FIELDS)
            w.writerows([r[k] for k in FIELDS] for r in universe.reference())

    def _header(self, count: int) -> bytes:
        meta = {
            "descr": np.lib.format.dtype_to_descr(TICK_DTYPE),
            "fortran_order": False,
            "shape": (count,),
        }
        text = repr(meta).ljust(self._HEADER_BYTES - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")

    def write(self, batch: TickBatch) -> None:
        self._file.write(np.ascontiguousarray(batch, TICK_DTYPE).tobytes())
        self._count += len(batch)

    def close(self) -> None:
        self._file.seek(0)
        self._file.write(self._header(self._count))
        self._file.close()


class _ParquetWriter:
    """symbol (dictionary-encoded) then every TICK_DTYPE field; the universe in the metadata."""

    def __init__(self, path: Path, universe: Universe) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.paths = [str(path)]
        self._pa = pa
        self._symbols = pa.array(universe.symbols, pa.string())
        fields = [pa.field("symbol", pa.dictionary(pa.int32(), pa.string()))]
        fields += [pa.field(f, pa.from_numpy_dtype(TICK_DTYPE[f])) for f in _TICK_FIELDS]
        meta = {"tickwire.universe": json.dumps(universe.reference())}
        self._schema = pa.schema(fields, metadata=meta)
        check_writable(path)
        try:
            self._writer = pq.ParquetWriter(os.fspath(path), self._schema)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc}") from None

    def write(self, batch: TickBatch) -> None:
        pa = self._pa
        sym = pa.DictionaryArray.from_arrays(pa.array(batch["sym"].astype(np.int32)), self._symbols)
        cols = [sym] + [pa.array(np.ascontiguousarray(batch[f])) for f in _TICK_FIELDS]
        self._writer.write_table(pa.Table.from_arrays(cols, schema=self._schema))

    def close(self) -> None:
        self._writer.close()
