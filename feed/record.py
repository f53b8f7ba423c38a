"""Recording a feed to files: buffering, row groups, rotation and progress; sans-IO.

`Recorder` takes the records of each data message as they arrive and writes them with the
writers of `tickwire simulate` (.parquet, .npy, .csv), so `tickwire serve --replay` reads what
either made. It buffers up to `flush_s` (one second) of records and writes them at once: one
Parquet row group per write. A Parquet file (like a .npy header) is complete only once closed, so
with `rotate` the recorder closes the part and starts the next (`ticks-0001.parquet`, ...) after
that much time or that many bytes: a killed recorder loses at most its open part (a .csv only
what it had not written yet). With `book_depth` (Parquet only) the order books go beside the
ticks, in a book file per part (`simulators.bookfile`: every level change, and the snapshots
that start or restart a book), flushed and rotated with them. Never imports trio: time comes in
as `now_s`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed import extras
from tickwire.simulators.book import LEVEL_DTYPE
from tickwire.simulators.bookfile import BookWriter, book_path
from tickwire.simulators.durations import DurationError, parse_duration
from tickwire.simulators.errors import UserError
from tickwire.simulators.ticks import TICK_DTYPE, TickBatch
from tickwire.simulators.universe import Universe
from tickwire.simulators.writers import open_writer

FORMATS = (".parquet", ".npy", ".csv")
_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))
_LEVEL = np.dtype((np.void, LEVEL_DTYPE.itemsize))
_SIZES = {"kb": 1e3, "mb": 1e6, "gb": 1e9}


@dataclass(frozen=True, slots=True)
class Rotate:
    """Start a new part after this many seconds, or once the part has this many bytes."""

    seconds: float | None = None
    bytes: int | None = None


def parse_rotate(text: str) -> Rotate:
    """`1h`, `30m`, `90s` (time) or `100MB`, `2GB` (size of a part on disk)."""
    with suppress(DurationError):
        seconds = parse_duration(text, day_s=86400.0, bare=False)
        if seconds > 0:
            return Rotate(seconds=seconds)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]+)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m and unit in _SIZES and float(m.group(1)) > 0:
        return Rotate(bytes=int(float(m.group(1)) * _SIZES[unit]))
    raise UserError(f"--rotate takes a duration (30m, 1h) or a size (100MB, 1GB), got {text!r}")


def check_out(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"--out must end in .parquet, .npy or .csv, got {str(path)!r}")
    if path.suffix.lower() == ".parquet":  # before connecting, not at the first write
        extras.require(f"--out {path}", "parquet", "pyarrow", otherwise="or record to .npy or .csv")


class Recorder:
    """Writes records as they come, in row groups of about `flush_s`, rotating parts."""

    def __init__(
        self,
        out: Path,
        universe: Universe,
        *,
        rotate: Rotate | None = None,
        flush_s: float = 1.0,
        flush_records: int = 1 << 16,
        now_s: float = 0.0,
        book_depth: int | None = None,
        books_now: Callable[[], NDArray[np.void]] | None = None,
    ) -> None:
        """`book_depth`: also record the books (at that depth) to a book file per part;
        `books_now`: every book held now as snapshot rows (LEVEL_DTYPE), so that each part
        after the first starts with whole books and replays on its own."""
        check_out(out)
        if book_depth is not None and out.suffix.lower() != ".parquet":
            raise UserError(
                f"--book records to Parquet only: --out must end in .parquet, got {out}"
            )
        self.out = out
        self.universe = universe
        self.rotate = rotate
        self.flush_s = flush_s
        self.flush_records = flush_records
        self.ticks = 0  # records received
        self.written = 0  # records on disk (in closed parts or written row groups)
        self.book_depth = book_depth
        self.levels = 0  # level records received (changes and snapshot rows)
        self._books: list[tuple[NDArray[np.void], bool]] = []  # (LEVEL_DTYPE, snapshot rows)
        self._book_writer: BookWriter | None = None
        self._books_now = books_now
        self.paths: list[str] = []  # every file made, parts and sidecars
        self._buffer: list[TickBatch] = []
        self._buffered = 0
        self._part = 0
        self._writer: Any = None
        self._part_path: Path | None = None
        self._part_start_s = now_s
        self._last_flush_s = now_s
        self._closed_bytes = 0
        self._open_part(now_s)

    @property
    def part_path(self) -> Path | None:
        return self._part_path

    def _open_part(self, now_s: float) -> None:
        path = self.out
        if self.rotate is not None:
            self._part += 1
            path = self.out.with_name(f"{self.out.stem}-{self._part:04d}{self.out.suffix}")
        self._writer = open_writer(path, self.universe)
        self._part_path = path
        if self.book_depth is not None:
            self._book_writer = BookWriter(book_path(path), self.universe, self.book_depth)
            held = self._books_now() if self._books_now is not None and self._part > 1 else None
            if held is not None and len(held):
                self._book_writer.write(held, np.ones(len(held), np.bool_))
        self._part_start_s = now_s
        self.paths.extend(p for p in self._writer.paths if p not in self.paths)
        if self._book_writer is not None:
            self.paths.append(str(self._book_writer.path))

    def write(self, records: TickBatch, now_s: float) -> None:
        """Take one message's records (copied: a wire buffer may be reused)."""
        if len(records):
            self._buffer.append(np.array(records, TICK_DTYPE, copy=True))
            self._buffered += len(records)
            self.ticks += len(records)
        if self._buffered >= self.flush_records or now_s - self._last_flush_s >= self.flush_s:
            self.flush(now_s)

    def write_book(self, levels: NDArray[np.void], snapshot: bool, now_s: float) -> None:
        """Take one book event's level records: changes, or (`snapshot`) whole books."""
        if len(levels):
            self._books.append((np.array(levels, LEVEL_DTYPE, copy=True), snapshot))
            self._buffered += len(levels)
            self.levels += len(levels)
        if self._buffered >= self.flush_records or now_s - self._last_flush_s >= self.flush_s:
            self.flush(now_s)

    def flush(self, now_s: float, *, rotate: bool = True) -> None:
        """Write what is buffered (one row group), then rotate if the part is due."""
        self._last_flush_s = now_s
        if self._buffer:
            chunk = np.concatenate([b.view(_RECORD) for b in self._buffer]).view(TICK_DTYPE)
            self._buffer, self._buffered = [], 0
            self._writer.write(chunk)
            self.written += len(chunk)
        if self._books and self._book_writer is not None:
            rows = np.concatenate([r.view(_LEVEL) for r, _ in self._books]).view(LEVEL_DTYPE)
            snap = np.repeat([s for _, s in self._books], [len(r) for r, _ in self._books])
            self._books, self._buffered = [], 0
            self._book_writer.write(rows, snap)
        rot = self.rotate
        if rot is None or self._writer is None or not rotate:
            return
        due = rot.seconds is not None and now_s - self._part_start_s >= rot.seconds
        due = due or (rot.bytes is not None and self._part_bytes() >= rot.bytes)
        if due:
            self._close_part()
            self._open_part(now_s)

    def _part_bytes(self) -> int:
        book = self._book_writer
        return _size(self._part_path) + (_size(book.path) if book is not None else 0)

    def _close_part(self) -> None:
        if self._book_writer is not None:
            self._book_writer.close()
            self._closed_bytes += _size(self._book_writer.path)
            self._book_writer = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._closed_bytes += self._part_bytes()

    def bytes_on_disk(self) -> int:
        return self._closed_bytes + (self._part_bytes() if self._writer is not None else 0)

    def close(self, now_s: float) -> list[str]:
        """Write the rest and close: every file is complete and readable after this."""
        if self._writer is not None:
            self.flush(now_s, rotate=False)
            self._close_part()
        return self.paths

    def progress(self, elapsed_s: float) -> str:
        rate = self.ticks / elapsed_s if elapsed_s > 0 else 0.0
        mb = self.bytes_on_disk() / 1e6
        where = self._part_path if self._part_path is not None else self.out
        books = f", {self.levels:,} level updates" if self.book_depth is not None else ""
        return f"recorded {self.ticks:,} ticks{books}, {mb:.1f} MB, {rate:,.0f} ticks/s to {where}"


def _size(path: Path | None) -> int:
    try:
        return os.path.getsize(path) if path is not None else 0
    except OSError:
        return 0
