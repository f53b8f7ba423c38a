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

import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from ._replay_rows import MAX_LINE_BYTES, MAX_PRICE, open_bytes, refuse_bomb
from .errors import UserError

BLOCK_BYTES = 1 << 22  # ~50k rows of incremental_book_L2: numpy's work arrays stay ~tens of MB
_MAX_DIGITS = 18  # an int64 holds any 18-digit mantissa
_MAX_US = (2**63 - 1) // 1000


def blocks(path: Path, size: int | None = None) -> Iterator[tuple[bytes, int]]:
    """`path`'s bytes in blocks of whole lines (about `size` bytes, default `BLOCK_BYTES`),
    each with the number of its first line."""
    size = size or BLOCK_BYTES
    raw, stream = open_bytes(path)
    gz = stream is not raw
    try:
        carry, line, seen = b"", 1, 0
        while True:
            try:
                data = stream.read(size)
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise UserError(f"{path} line {line}: cannot read ({exc})") from None
            seen += len(data)
            if gz:
                refuse_bomb(path, raw, seen, line)
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
    """A block's non-blank lines: the bytes (`PAD` zeros each side), where each line starts and
    ends in them, their commas, each line's number."""

    buf: NDArray[np.uint8]
    lo: NDArray[np.int64]
    hi: NDArray[np.int64]  # the newline
    commas: NDArray[np.int64]  # (lines, fields - 1)
    line: NDArray[np.int64]

    def span(self, col: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Where field `col` of each line starts and ends."""
        start = self.lo if col == 0 else self.commas[:, col - 1] + 1
        end = self.hi if col == self.commas.shape[1] else self.commas[:, col]
        return start, end


PAD = 32  # zeros around a block's bytes: a field's window may reach past either end
_POW = 10 ** np.arange(19, dtype=np.int64)


def split(block: bytes, first_line: int, nfields: int, path: Path) -> Fields | None:
    """Every field of `block`'s lines (None: a line not in the plain shape, or not ASCII)."""
    if b'"' in block or b"\r" in block or b"\0" in block or not block.isascii():
        return None  # quotes, CR, NUL, non-ASCII: the csv module's business
    data = np.frombuffer(block if block.endswith(b"\n") else block + b"\n", np.uint8)
    nl = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], nl[:-1] + 1))
    long = np.flatnonzero(nl - starts + 1 > MAX_LINE_BYTES)
    if len(long):
        raise UserError(
            f"{path} line {first_line + int(long[0])}: longer than {MAX_LINE_BYTES} bytes; a"
            " replay CSV has one quote or trade per line"
        )
    keep = nl > starts  # csv skips blank lines
    n = int(keep.sum())
    commas = np.flatnonzero(data == 44)
    if len(commas) != n * (nfields - 1):
        return None
    c = commas.reshape(n, nfields - 1)
    lo, hi = starts[keep], nl[keep]
    if nfields > 1 and ((c[:, 0] < lo).any() or (c[:, -1] > hi).any()):
        return None  # a line with fewer commas, another with more
    buf = np.zeros(len(data) + 2 * PAD, np.uint8)
    buf[PAD:-PAD] = data
    line = np.flatnonzero(keep).astype(np.int64) + first_line
    return Fields(buf, lo + PAD, hi + PAD, c + PAD, line)


def _right(
    f: Fields, col: int, width: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64]] | None:
    """Column `col`'s bytes right-aligned in a (rows, w) matrix (w: its widest field, at most
    `width` <= PAD), where each field's bytes are, and each field's length; None if wider."""
    s, e = f.span(col)
    n = e - s
    w = int(n.max()) if len(n) else 0
    if w > width:
        return None
    b: NDArray[np.uint8] = sliding_window_view(f.buf, w)[e - w]  # rows of w bytes: one copy
    return b, np.arange(w) >= (w - n)[:, None], n


def _value(digits: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Rows of digit values (0-9, right-aligned, at most 18) as integers."""
    w = digits.shape[1]
    if w <= 16:  # two words of 8 digits each
        wide = np.zeros((len(digits), 16), np.uint8)
        wide[:, 16 - w :] = digits
        return _words(wide.view("<u8"))
    got: NDArray[np.int64] = digits.astype(np.int64) @ _POW[w - 1 :: -1]
    return got


def integers(f: Fields, col: int) -> NDArray[np.int64] | None:
    """Column `col` as non-negative integers (None: a field empty or not all digits)."""
    s, e = f.span(col)
    if len(s) and 0 < int(e[0] - s[0]) <= 16 and bool((e - s == e[0] - s[0]).all()):
        return _swar(f, e, int(e[0] - s[0]))  # one width (timestamps): 8 digits per word
    got = _right(f, col, _MAX_DIGITS)
    if got is None:
        return None
    b, inside, n = got
    d = b - np.uint8(48)
    if (n == 0).any() or ((d > 9) & inside).any():
        return None
    return _value(np.where(inside, d, 0).astype(np.uint8))


_ZEROS, _HIGH = np.uint64(0x3030303030303030), np.uint64(0x8080808080808080)


def _swar(f: Fields, e: NDArray[np.int64], w: int) -> NDArray[np.int64] | None:
    """Fields of `w` <= 16 digits each ending at `e`, read 8 digits per uint64 ("SIMD within a
    register": pairs, then fours, then eights of digits combined by multiply, shift, mask)."""
    x = _pair(f, e)  # the first 8 characters in the low bytes of word 0
    outside = _OUT[np.array([min(16 - w, 8), max(8 - w, 0)])]
    x = (x & ~outside) | (_ZEROS & outside)  # left-padded with '0'
    if (((x + np.uint64(0x4646464646464646)) | (x - _ZEROS)) & _HIGH).any():
        return None  # a byte that is not a digit
    return _words(x - _ZEROS)


def _words(x: NDArray[np.uint64]) -> NDArray[np.int64]:
    """(rows, 2) words of 8 digit values (0-9) each, most significant in the low byte of
    word 0, as integers."""
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    x = (x * np.uint64(10000) + (x >> np.uint64(32))) & np.uint64(0x00000000FFFFFFFF)
    out: NDArray[np.int64] = (x[:, 0] * np.uint64(10**8) + x[:, 1]).astype(np.int64)
    return out


class Decimals(NamedTuple):
    """A column of plain decimals: value = mant * 10**-places exactly (trailing zeros dropped),
    and that value as the float Python's float() makes of the text."""

    mant: NDArray[np.int64]
    places: NDArray[np.int64]
    value: NDArray[np.float64]
    given: NDArray[np.bool_]  # False: the field is empty


def decimals(f: Fields, col: int, empty_ok: bool = False) -> Decimals | None:
    """Column `col` as plain decimals (digits, at most one point); None if any is not one."""
    s, e = f.span(col)
    n = e - s
    if not empty_ok and (n == 0).any():
        return None
    if len(n) and int(n.max()) <= 16:
        return _short_decimals(f, e, n)
    got = _right(f, col, _MAX_DIGITS)
    if got is None:
        return None
    b, inside, n = got
    given = n > 0
    if not empty_ok and not given.all():
        return None
    if b.shape[1] == 0:  # every field empty
        zero = np.zeros(len(n), np.int64)
        return Decimals(zero, zero, np.zeros(len(n)), given)
    b = np.where(inside, b, np.uint8(48))  # left-padded with '0'
    point = b == 46
    d = b - np.uint8(48)
    if ((d > 9) & ~point).any():
        return None  # a sign, an exponent, a space
    points = np.count_nonzero(point, axis=1)
    if (points > 1).any() or ((points >= n) & given).any():
        return None  # two points, a point alone
    d[point] = 0
    full = _value(d)  # the point read as a 0
    if full.max() >= 2**53 * 10:  # a mantissa past exact doubles: float() decides, row by row
        return None
    w = b.shape[1]
    after = np.where(points > 0, w - 1 - np.argmax(point, axis=1), 0)  # digits after the point
    zeros = np.zeros(len(n), np.int64)  # trailing zeros
    run = np.ones(len(n), np.bool_)
    for j in range(w - 1, -1, -1):
        run &= b[:, j] == 48
        if not run.any():
            break
        zeros += run
    drop = np.minimum(zeros, after)
    split_at = _POW[after]
    mant = np.where(points > 0, full // (split_at * 10) * split_at + full % split_at, full)
    value = mant / 10.0**after  # exact operands, one rounding: what float(text) gives
    return Decimals(mant // _POW[drop], after - drop, value, given)


_OUT = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1] * 9, np.uint64)
_SEVENS = np.uint64(0x7F7F7F7F7F7F7F7F)
_BYTE_OF = np.uint64(0x0001020304050607)  # (1 << 8j) * this has j in its top byte


def _pair(f: Fields, e: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The 16 bytes before each `e` as two little-endian uint64 words a row."""
    words = np.ndarray((len(f.buf) - 7,), "<u8", f.buf, 0, (1,))  # a word at every byte
    return np.stack((words[e - 16], words[e - 8]), axis=1)


def _short_decimals(f: Fields, e: NDArray[np.int64], n: NDArray[np.int64]) -> Decimals | None:
    """Decimals of at most 16 characters, two uint64 words a row: bytes left of the field set
    to '0', the point found as the byte equal to '.' and read as '0', the digits checked and
    combined as `_swar` does; the point's place says the decimals."""
    x = _pair(f, e)
    outside = np.stack((_OUT[np.minimum(16 - n, 8)], _OUT[np.maximum(8 - n, 0)]), axis=1)
    x = (x & ~outside) | (_ZEROS & outside)
    v = x ^ np.uint64(0x2E2E2E2E2E2E2E2E)  # 0 where '.'
    point = ~(((v & _SEVENS) + _SEVENS) | v) & _HIGH  # exactly the '.' bytes' high bits
    if ((point & (point - np.uint64(1))) != 0).any():
        return None  # two points in a word
    points = (point[:, 0] != 0).astype(np.int64) + (point[:, 1] != 0)
    if (points > 1).any() or ((points >= n) & (n > 0)).any():
        return None  # two points, a point alone
    x = x + (point >> np.uint64(7)) * np.uint64(2)  # '.' + 2 = '0'
    if (((x + np.uint64(0x4646464646464646)) | (x - _ZEROS)) & _HIGH).any():
        return None  # a sign, an exponent, a space
    full = _words(x - _ZEROS)
    byte = (((point >> np.uint64(7)) * _BYTE_OF) >> np.uint64(56)).astype(np.int64)
    at = np.where(point[:, 1] > 0, 8 + byte[:, 1], byte[:, 0])  # its window index
    after = np.where(points > 0, 15 - at, 0)  # digits after the point
    if full.max(initial=0) >= 2**53 * 10:  # a mantissa past exact doubles: float() decides
        return None
    split_at = _POW[after]
    mant = np.where(points > 0, full // (split_at * 10) * split_at + full % split_at, full)
    value = mant / 10.0**after  # exact operands, one rounding: what float(text) gives
    places = after
    for _ in range(16):  # drop trailing zeros: 1.50 has one decimal
        zero = (places > 0) & (mant % 10 == 0)
        if not zero.any():
            break
        mant = np.where(zero, mant // 10, mant)
        places = places - zero
    return Decimals(mant, places, value, n > 0)


def prices_ok(p: Decimals) -> bool:
    """Prices above 0 and at most MAX_PRICE (the row path names one that is not)."""
    v = p.value[p.given]
    return bool(((v > 0) & (v <= MAX_PRICE)).all())


def words(f: Fields, col: int, choices: tuple[bytes, ...]) -> NDArray[np.int64] | None:
    """Column `col` as the index of its word among `choices` (None: another word)."""
    s, e = f.span(col)
    out = np.full(len(s), -1, np.int64)
    for k, word in enumerate(choices):
        ok = (e - s) == len(word)
        for j, ch in enumerate(word):
            ok &= f.buf[s + j] == ch
        out[ok] = k
    return None if (out < 0).any() else out


def symbols(f: Fields, col: int) -> tuple[list[str], NDArray[np.int64]] | None:
    """Column `col`'s names in order of first appearance, and each row's index into them
    (None: an empty name, or one with spaces around it)."""
    got = _right(f, col, PAD)
    if got is None:
        return None
    b, inside, n = got
    w = b.shape[1]
    if (n == 0).any() or (b[:, -1] == 32).any() or (b[np.arange(len(n)), w - n] == 32).any():
        return None
    wide = -(-w // 8) * 8
    fixed = np.zeros((len(n), wide), np.uint8)
    fixed[:, wide - w :] = np.where(inside, b, 0)
    keys = fixed.view(np.uint64) if wide == 8 else fixed.view(f"V{wide}")
    uniq, first, inverse = np.unique(keys.reshape(-1), return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[by_first] = np.arange(len(uniq))
    names = [fixed[i].tobytes().lstrip(b"\0").decode("ascii") for i in first[by_first]]
    return names, rank[inverse.reshape(-1)]


def timestamps_ok(us: NDArray[np.int64]) -> bool:
    return bool((us <= _MAX_US).all())


class Lists:
    """Rows read one at a time, made columns at the end of their block."""

    def __init__(self) -> None:
        self.cols: list[list[Any]] = [[] for _ in range(9)]

    def add(
        self, sym: int, ts: int, side: int, price: float, amount: str, whole: int, line: int
    ) -> None:
        mant, places = exact(amount)
        for c, v in zip(
            self.cols, (sym, ts, side, price, mant, places, float(amount), whole, line), strict=True
        ):
            c.append(v)

    def arrays(self) -> tuple[NDArray[Any], ...]:
        dtypes = (np.int32, np.int64, np.int8, np.float64, np.int64, np.int8, np.float64)
        return tuple(
            np.array(c, d) for c, d in zip(self.cols, (*dtypes, np.int64, np.int64), strict=True)
        )


def exact(amount: str) -> tuple[int, int]:
    """A decimal as written as (mantissa, places), trailing zeros dropped; (0, -1) if it does not
    fit (more than 18 digits, or more than 30 places): such amounts are taken as floats."""
    _, digits, exp = Decimal(amount).as_tuple()
    assert isinstance(exp, int)  # finite: `_level` refused the others
    mant = int("".join(map(str, digits)) or "0")
    if exp >= 0:
        mant, exp = mant * 10**exp, 0
    while exp < 0 and mant % 10 == 0:
        mant, exp = mant // 10, exp + 1
    if mant >= 2**63 or -exp > 30:
        return 0, -1
    return mant, -exp
