"""Reading replay files safely: bounded text lines, and the screen that skips (or refuses) bad rows.

`text_lines` yields a CSV's lines one at a time from a plain or gzip file, so memory never holds
more than one line: a line longer than `MAX_LINE_BYTES` and a gzip file that expands more than
`MAX_GZIP_RATIO` times its size (a decompression bomb) are one UserError each, found as they are
read. `Screen` judges well-formed rows whose values cannot be replayed (a NaN price, a crossed
quote, a size or timestamp out of range): by default each is skipped, counted and reported in one
log line per file; with `strict` the first one is a UserError naming its row. numpy only.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from .errors import UserError

log = logging.getLogger("tickwire.replay")

MAX_PRICE = 1e12  # above any real price; beyond it the tick-grid arithmetic loses its digits
MAX_LINE_BYTES = 1 << 16  # a quote or trade row is ~100 bytes; a longer one is not a row
# Market-data CSVs compress 4-10x (measured: a simulated session 3.9x); a file that expands
# more than this is a bomb, refused as soon as what was read of it expands more than RATIO x.
MAX_GZIP_RATIO = 50
GZIP_SLACK = 1 << 20  # small files carry fixed overhead: allow their first MiB whatever the ratio


def open_bytes(path: Path) -> tuple[BinaryIO, BinaryIO | gzip.GzipFile]:
    """`path` opened to read (the file), and its bytes (through gzip if it ends in .gz)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    gz = path.name.lower().endswith(".gz")
    return raw, gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw


def refuse_bomb(path: Path, raw: BinaryIO, seen: int, line: int) -> None:
    """Refuse a gzip file whose `seen` bytes so far expand its compressed ones too much: a bomb
    shows its ratio from the start, so it is refused after a MiB or two, not RATIO x its size."""
    if seen > raw.tell() * MAX_GZIP_RATIO + GZIP_SLACK:
        raise UserError(
            f"{path}: expands more than {MAX_GZIP_RATIO}x its compressed size (market"
            f" data compresses about 4-10x): refused at line {line} as a gzip bomb"
        )


def text_lines(path: Path) -> Iterator[str]:
    """`path`'s lines as text (UTF-8, a BOM dropped), gzip if it ends in .gz, each bounded."""
    raw, stream = open_bytes(path)
    gz = stream is not raw
    try:
        seen, check_at = 0, GZIP_SLACK
        line_no = 0
        while True:
            line_no += 1
            try:
                data = stream.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise UserError(f"{path} line {line_no}: cannot read ({exc})") from None
            if not data:
                return
            seen += len(data)
            if gz and seen > check_at:
                refuse_bomb(path, raw, seen, line_no)
            if seen > check_at:
                check_at = seen + (1 << 20)  # tell() once a MiB
            if len(data) > MAX_LINE_BYTES:
                raise UserError(
                    f"{path} line {line_no}: longer than {MAX_LINE_BYTES} bytes; a replay CSV"
                    " has one quote or trade per line"
                )
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path} line {line_no}: not UTF-8 text (byte 0x{data[exc.start]:02x})"
                ) from None
            yield text.removeprefix("\ufeff") if line_no == 1 else text
    finally:
        raw.close()


class Screen:
    """Bad rows of one file: skipped and counted (`report` logs them), or, strict, refused."""

    def __init__(self, path: Path, *, strict: bool, unit: str = "line") -> None:
        self.path, self.strict, self.unit = path, strict, unit
        self.skipped: dict[str, tuple[int, int]] = {}  # reason -> (rows, first row number)

    def drop(self, bad: NDArray[np.bool_], rows: NDArray[np.int64], reason: str) -> None:
        """Mark `bad` rows (numbered `rows`) for `reason`: strict, the first is a UserError."""
        if not bad.any():
            return
        first = int(rows[int(np.flatnonzero(bad)[0])])
        if self.strict:
            raise UserError(
                f"{self.path} {self.unit} {first}: {reason}; --strict refuses the file"
                " (without it such rows are skipped and counted)"
            )
        n, at = self.skipped.get(reason, (0, first))
        self.skipped[reason] = (n + int(bad.sum()), min(at, first))

    def total(self) -> int:
        return sum(n for n, _ in self.skipped.values())

    def report(self) -> None:
        """One log line for the file if any row was skipped."""
        if not self.skipped:
            return
        parts = [f"{n} {why} (first at {self.unit} {at})" for why, (n, at) in self.skipped.items()]
        log.warning(
            "replay file %s: skipped %d bad row%s: %s; --strict refuses such files instead",
            self.path,
            self.total(),
            "" if self.total() == 1 else "s",
            "; ".join(parts),
        )


def out_of_range(values: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[np.bool_]:
    """Where integer `values` do not fit `dtype` (assigning them would wrap silently)."""
    if dtype.kind not in "iu":
        return np.zeros(len(values), np.bool_)
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if values.dtype.kind == "f":
        v = values.astype(np.float64)
        return np.asarray(~np.isfinite(v) | (v < lo) | (v > hi), np.bool_)
    if values.dtype.kind == "u":
        return np.asarray(values.astype(np.uint64) > np.uint64(hi), np.bool_)
    w = values.astype(np.int64)
    return np.asarray((w < lo) | (w > min(hi, 2**63 - 1)), np.bool_)


def price_reason(field: str) -> str:
    return f"{field} is not a number from -{MAX_PRICE:g} to {MAX_PRICE:g}"


def screen_records(
    records: NDArray[np.void], rows: NDArray[np.int64], screen: Screen
) -> NDArray[np.bool_]:
    """Rows of tickwire records that can be replayed: finite prices, bid <= ask, ts >= 0."""
    keep = np.ones(len(records), np.bool_)
    for f in ("bid", "ask", "last"):
        bad = ~(np.abs(records[f]) <= MAX_PRICE)  # NaN too
        screen.drop(bad & keep, rows, price_reason(f))
        keep &= ~bad
    crossed = keep & (records["bid"] > records["ask"]) & (records["ask"] > 0)
    screen.drop(crossed, rows, "crossed quote (bid above ask)")
    keep &= ~crossed
    early = keep & (records["ts"] < 0)
    screen.drop(early, rows, "timestamp before 1970")
    return keep & ~early


__all__ = [
    "GZIP_SLACK",
    "MAX_GZIP_RATIO",
    "MAX_LINE_BYTES",
    "MAX_PRICE",
    "Screen",
    "out_of_range",
    "price_reason",
    "screen_records",
    "text_lines",
]
