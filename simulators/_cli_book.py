"""`tickwire simulate`'s book flags and where the level updates go (--books, --book-depth,
--book-out): a streamed .npy of `book.LEVEL_DTYPE` records, and what --report needs to measure
the book's facts (every update and a ladder a second, kept in memory). numpy only.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .book import LEVEL_DTYPE, MAX_DEPTH, MIN_DEPTH, LevelBatch
from .errors import UserError
from .universe import Universe

DEFAULT_DEPTH = 20


def add_book_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--books",
        action="store_true",
        help="keep a limit order book per symbol (--report adds the book's facts)",
    )
    ap.add_argument(
        "--book-depth",
        type=_depth,
        metavar="N",
        help=f"price levels a side, {MIN_DEPTH} to {MAX_DEPTH} (default {DEFAULT_DEPTH}; "
        "implies --books)",
    )
    ap.add_argument(
        "--book-out",
        metavar="FILE",
        help="write every level update to FILE (.npy of tickwire.simulators.book.LEVEL_DTYPE; "
        "implies --books)",
    )


def _depth(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not MIN_DEPTH <= n <= MAX_DEPTH:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of levels from {MIN_DEPTH} to {MAX_DEPTH}, got {text!r}"
        )
    return n


class BookSink:
    """Where a run's level updates go: a file, the report, or only a count."""

    def __init__(self, depth: int, path: str | None, keep: bool) -> None:
        self.depth, self.path, self.keep = depth, path, keep
        self.count = 0
        self._levels: list[LevelBatch] = []
        self._ladders: list[NDArray[np.void]] = []
        self._file: IO[bytes] | None = None
        if path is not None:
            if Path(path).suffix.lower() != ".npy":
                raise UserError(f"--book-out must end in .npy, got {path!r}")
            try:
                self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
            self._file.write(_header(0))

    @classmethod
    def from_args(cls, args: argparse.Namespace, universe: Universe) -> BookSink | None:
        del universe  # every symbol gets a book
        depth, path = getattr(args, "book_depth", None), getattr(args, "book_out", None)
        if not (getattr(args, "books", False) or depth or path):
            return None
        return cls(depth or DEFAULT_DEPTH, path, bool(getattr(args, "report", False)))

    def add(self, levels: LevelBatch, market: Any) -> None:
        """One second's updates, and the ladders it ends with when the report wants them."""
        self.count += len(levels)
        if self._file is not None:
            self._file.write(np.ascontiguousarray(levels, LEVEL_DTYPE).tobytes())
        if self.keep:
            self._levels.append(levels)
            self._ladders.append(market.book_snapshot())

    def facts(self) -> tuple[LevelBatch, NDArray[np.void]]:
        """Every update and the ladders, shape (seconds, symbols), for `book_report`."""
        levels = np.concatenate(self._levels) if self._levels else np.empty(0, LEVEL_DTYPE)
        return levels, np.stack(self._ladders)

    def close(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.write(_header(self.count))
            self._file.close()
            self._file = None


def _header(count: int) -> bytes:
    """A .npy header of fixed size (512 bytes), so the final count fits where it was."""
    meta = {
        "descr": np.lib.format.dtype_to_descr(LEVEL_DTYPE),
        "fortran_order": False,
        "shape": (count,),
    }
    text = repr(meta).ljust(512 - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")
