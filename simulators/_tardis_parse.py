"""Parsing Tardis book CSVs a block at a time with numpy: bytes in, columns out.

`blocks` reads a plain or gzip file in blocks of whole lines (`BLOCK_BYTES`), with the guards
`_replay_rows.text_lines` has (a line longer than `MAX_LINE_BYTES`, a gzip bomb, a read error:
one UserError each); memory holds one block whatever the file's size. `parse_block` finds every
field of a block at once (the commas and newlines of the bytes) and converts the columns the
books need: timestamps as integers, prices and amounts as exact decimals (an integer mantissa
and its decimal places), sides, snapshot flags and symbols as bytes compared in arrays. It
answers None for a block it cannot take as plain Tardis rows (quotes, CR, non-ASCII, a field
out of the plain shape: a sign, an exponent, spaces, a bad value): the caller reads that block
row by row (`_replay_tardis`), which names the bad line precisely. numpy only.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._replay_rows import GZIP_SLACK, MAX_GZIP_RATIO, MAX_LINE_BYTES, MAX_PRICE
from .errors import UserError

BLOCK_BYTES = 1 << 22  # ~50k rows of incremental_book_L2: numpy's work arrays stay ~tens of MB
_MAX_DIGITS = 18  # an int64 holds any 18-digit mantissa
_MAX_US = (2**63 - 1) // 1000


def blocks(path: Path) -> Iterator[tuple[bytes, int]]:
    """`path`'s bytes in blocks of whole lines, each with the number of its first line."""
    gz = path.name.lower().endswith(".gz")
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        stream: BinaryIO | gzip.GzipFile = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        carry, line, seen = b"", 1, 0
        while True:
            try:
                data = stream.read(BLOCK_BYTES)
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise UserError(f"{path} line {line}: cannot read ({exc})") from None
            seen += len(data)
            if gz and seen > raw.tell() * MAX_GZIP_RATIO + GZIP_SLACK:
                raise UserError(
                    f"{path}: expands more than {MAX_GZIP_RATIO}x its compressed size (market"
                    f" data compresses about 4-10x): refused at line {line} as a gzip bomb"
                )
            buf = carry + data
            cut = len(buf) if not data else buf.rfind(b"\n") + 1
            block, carry = buf[:cut], buf[cut:]
            if len(carry) > MAX_LINE_BYTES:
                at = line + block.count(b"\n")
                raise UserError(
                    f"{path} line {at}: longer than {MAX_LINE_BYTES} bytes; a replay CSV"
                    " has one quote or trade per line"
                )
            if block:
                yield block, line
                line += block.count(b"\n")
            if not data:
                return
    finally:
        raw.close()


class Fields(NamedTuple):
    """A block's non-blank lines: the bytes, each field's start and end, each line's number."""

    buf: NDArray[np.uint8]
    start: NDArray[np.int64]  # (lines, fields)
    end: NDArray[np.int64]
    line: NDArray[np.int64]


def split(block: bytes, first_line: int, nfields: int, path: Path) -> Fields | None:
    """Every field of `block`'s lines (None: a line not in the plain shape, or not ASCII)."""
    buf = np.frombuffer(block if block.endswith(b"\n") else block + b"\n", np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl[:-1] + 1))
    long = np.flatnonzero(nl - starts + 1 > MAX_LINE_BYTES)
    if len(long):
        raise UserError(
            f"{path} line {first_line + int(long[0])}: longer than {MAX_LINE_BYTES} bytes; a"
            " replay CSV has one quote or trade per line"
        )
    if (buf >= 128).any() or (buf == 34).any() or (buf == 13).any():
        return None  # non-ASCII, quotes, CR: the csv module's business
    commas = np.flatnonzero(buf == 44)
    per_line = np.diff(np.concatenate(([0], np.searchsorted(commas, nl))))
    keep = nl > starts  # csv skips blank lines
    if (per_line[keep] != nfields - 1).any():
        return None
    n = int(keep.sum())
    start = np.empty((n, nfields), np.int64)
    end = np.empty((n, nfields), np.int64)
    c = commas.reshape(n, nfields - 1)
    start[:, 0], start[:, 1:] = starts[keep], c + 1
    end[:, :-1], end[:, -1] = c, nl[keep]
    return Fields(buf, start, end, np.flatnonzero(keep).astype(np.int64) + first_line)


def _matrix(
    f: Fields, col: int | NDArray[np.int64], width: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64]] | None:
    """Column `col`'s bytes as a (rows, w) matrix (w: its widest field, at most `width`), where
    each field's bytes are, and each field's length; None if a field is wider."""
    s, e = f.start[:, col], f.end[:, col]
    n = e - s
    w = int(n.max()) if len(n) else 0
    if w > width:
        return None
    at = s[:, None] + np.arange(w)
    inside = np.arange(w) < n[:, None]
    return f.buf[np.where(inside, at, 0)], inside, n


def integers(f: Fields, col: int) -> NDArray[np.int64] | None:
    """Column `col` as non-negative integers (None: a field empty or not all digits)."""
    got = _matrix(f, col, _MAX_DIGITS)
    if got is None:
        return None
    b, inside, n = got
    d = b.astype(np.int64) - 48
    if (n == 0).any() or ((d < 0) | (d > 9))[inside].any():
        return None
    out = np.zeros(len(n), np.int64)
    for j in range(b.shape[1]):
        out = np.where(inside[:, j], out * 10 + d[:, j], out)
    return out


class Decimals(NamedTuple):
    """A column of plain decimals: value = mant * 10**-places exactly (trailing zeros dropped),
    and that value as the float Python's float() makes of the text."""

    mant: NDArray[np.int64]
    places: NDArray[np.int64]
    value: NDArray[np.float64]
    given: NDArray[np.bool_]  # False: the field is empty


def decimals(f: Fields, col: int | NDArray[np.int64], empty_ok: bool = False) -> Decimals | None:
    """Column `col` as plain decimals (digits, at most one point); None if any is not one."""
    got = _matrix(f, col, _MAX_DIGITS + 1)
    if got is None:
        return None
    b, inside, n = got
    given = n > 0
    if not empty_ok and not given.all():
        return None
    if b.shape[1] == 0:  # every field empty
        zero = np.zeros(len(n), np.int64)
        return Decimals(zero, zero, np.zeros(len(n)), given)
    d = b.astype(np.int64) - 48
    digit = inside & (d >= 0) & (d <= 9)
    point = inside & (b == 46)
    points = point.sum(axis=1)
    if ((inside & ~digit & ~point).any() or (points > 1).any()) or (
        (digit.sum(axis=1) == 0) & given
    ).any():
        return None
    at = np.where(points > 0, np.argmax(point, axis=1), b.shape[1])
    mant = np.zeros(len(n), np.int64)
    for j in range(b.shape[1]):
        mant = np.where(digit[:, j], mant * 10 + d[:, j], mant)
    places = (digit & (np.arange(b.shape[1]) > at[:, None])).sum(axis=1).astype(np.int64)
    if (mant >= 2**53).any():  # beyond exact doubles: the row path's float() decides
        return None
    value = mant / 10.0**places  # exact operands, one rounding: what float(text) gives
    for _ in range(_MAX_DIGITS):  # drop trailing zeros: 1.50 has one decimal
        zero = (places > 0) & (mant % 10 == 0)
        if not zero.any():
            break
        mant = np.where(zero, mant // 10, mant)
        places = places - zero
    return Decimals(mant, places, value, given)


def prices_ok(p: Decimals) -> bool:
    """Prices above 0 and at most MAX_PRICE (the row path names one that is not)."""
    v = p.value[p.given]
    return bool(((v > 0) & (v <= MAX_PRICE)).all())


def words(f: Fields, col: int, choices: tuple[bytes, ...]) -> NDArray[np.int64] | None:
    """Column `col` as the index of its word among `choices` (None: another word)."""
    width = max(len(c) for c in choices)
    got = _matrix(f, col, width)
    if got is None:
        return None
    b, inside, n = got
    b = np.where(inside, b, 0)
    out = np.full(len(n), -1, np.int64)
    for k, word in enumerate(choices):
        want = np.zeros(b.shape[1], np.uint8)
        want[: len(word)] = np.frombuffer(word, np.uint8)[: b.shape[1]]
        if len(word) <= b.shape[1]:
            out[(n == len(word)) & (b == want).all(axis=1)] = k
    return None if (out < 0).any() else out


def symbols(f: Fields, col: int) -> tuple[list[str], NDArray[np.int64]] | None:
    """Column `col`'s names in order of first appearance, and each row's index into them
    (None: an empty name, or one with spaces around it)."""
    got = _matrix(f, col, 256)
    if got is None:
        return None
    b, inside, n = got
    if (n == 0).any() or (b[:, 0] == 32).any():
        return None
    last = b[np.arange(len(n)), np.maximum(n - 1, 0)]
    if (last == 32).any():
        return None
    fixed = np.ascontiguousarray(np.where(inside, b, 0)).view(f"S{b.shape[1]}").reshape(-1)
    uniq, first, inverse = np.unique(fixed, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[by_first] = np.arange(len(uniq))
    names = [bytes(u).decode("ascii") for u in uniq[by_first]]
    return names, rank[inverse.reshape(-1)]


def timestamps_ok(us: NDArray[np.int64]) -> bool:
    return bool((us <= _MAX_US).all())
