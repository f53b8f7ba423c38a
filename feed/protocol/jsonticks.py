"""The JSON text of a batch of tick records, built column by column with numpy.

Owns `tick_text`: the tick objects of `protocol.tick_objects` (orjson of `tick_dicts`, joined by
commas) and where each starts, byte for byte the same, without a dict or a Python object per
record. Every field's text is computed for the whole column at once: integers as 8-digit lanes
from a table of 4-digit texts, prices as `whole.decimals`, the symbol's `{"symbol":"NAME","seq":`
from a table made once per universe, `,"side":..,"flags":N},` from a table by flags. A record's
length is the sum of its fields' lengths, and the records are laid out in one buffer at the
cumulated lengths: where each object starts comes for free.

A field is stored right-aligned at its end, as 8- or 16-byte words through views of the buffer
with a word at every byte offset (numpy copies unaligned words as they are). The fields are
stored last first: the bytes a word holds before its field (padding, leading zeros) land on the
fields before it, which are stored after it and overwrite them. The first field of a record pads
into the end of the record before, which is stored again last of all.

A price prints as orjson's shortest round-trip text only where that is proven here: `|x|` is the
double nearest to `k / 10**8` with `k < 10**15` (so below 10**7, 15 significant digits at most:
no other decimal as short maps to it, and the trailing zeros of k give the decimals), and
`x == 0` or `|x| >= 1e-5` (orjson prints `1e-5 <= |x| < 1e16` without an exponent). Any other
record (NaN, infinities, tiny or huge prices, more decimals, flags above 255) is encoded by
`tick_dicts` and orjson, on its own, and so is every record of a universe with a symbol over 45
bytes as JSON text. The name table is kept per names array, which the hub never changes.
Imports numpy and orjson only: no trio, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

Dicts = Callable[[NDArray[np.void], NDArray[np.object_]], list[dict[str, Any]]]

_W = 16  # bytes of a wide store (a complex128: numpy's widest plain copy)
_WORD = np.dtype(np.complex128)
_U64 = np.dtype("<u8")
# "0000".."9999" as 4 bytes each: two of them make an 8-digit word (high digits first in memory)
_T4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), "<u4")
_POW10 = np.array([10**i for i in range(20)], _U64)  # searchsorted gives a number's digit count
_E8, _E16 = np.uint64(10**8), np.uint64(10**16)
# trailing zeros of 0..9999 (4 for 0): a price's decimals from its 8 decimal digits
_TZ4 = np.array([len(f"{i:04d}") - len(f"{i:04d}".rstrip("0")) for i in range(10_000)], np.int64)
_MAX_K = 1e15  # a price's digits times 10**8 below this: 15 significant digits
_MIN_PLAIN = 1e-5  # orjson prints smaller non-zero magnitudes with an exponent
_MAX_HEAD = 64  # longer `{"symbol":"NAME","seq":` (a name over 45 bytes) take the reference path
_FLAGS = 256  # flags values with a tail text in _TAIL (valid ticks use 4 bits)
_PRICES = ("bid", "ask", "last")


def _right_aligned(texts: list[bytes], width: int) -> NDArray[np.complex128]:
    """`texts` padded on the left to `width` bytes, as rows of 16-byte words."""
    raw = b"".join(t.rjust(width) for t in texts)
    return np.frombuffer(raw, np.uint8).reshape(len(texts), width).copy().view(_WORD)


def _tail_text(flags: int) -> bytes:
    side = {2: b'"buy"', 4: b'"sell"'}.get(flags & 6, b"null")
    return b',"side":%s,"flags":%d},' % (side, flags)


_TAIL_LEN = np.array([len(_tail_text(f)) for f in range(_FLAGS)], np.int64)
_TAIL = _right_aligned([_tail_text(f) for f in range(_FLAGS)], 32)
assert _TAIL_LEN.min() > _W  # so a record's last 16 bytes are its tail's last word


class _Names:
    """One universe's `{"symbol":"NAME","seq":` texts as right-aligned words, made once."""

    __slots__ = ("lens", "names", "ok", "words")

    def __init__(self, names: NDArray[np.object_]) -> None:
        self.names = names
        texts = [b'{"symbol":' + orjson.dumps(name) + b',"seq":' for name in names.tolist()]
        self.lens = np.array([len(t) for t in texts], np.int64)
        self.ok = bool(self.lens.max(initial=0) <= _MAX_HEAD)
        self.words = _right_aligned(texts if self.ok else [], _MAX_HEAD)


_NAMES: list[_Names] = []  # the last few names arrays seen (a process serves one or two)


def _names(names: NDArray[np.object_]) -> _Names:
    """The table of `names`: found by identity (the hub's), else by content (a copy of it costs
    a comparison, not a new table), else made."""
    for cached in _NAMES:
        if cached.names is names and len(cached.lens) == len(names):
            return cached
    for cached in _NAMES:
        if len(cached.lens) == len(names) and np.array_equal(cached.names, names):
            return cached
    made = _Names(names)
    _NAMES.insert(0, made)
    del _NAMES[4:]
    return made


def _digits(u: NDArray[np.uint64]) -> NDArray[np.int64]:
    """How many decimal digits each value prints with (1 for 0)."""
    return np.maximum(np.searchsorted(_POW10, u, side="right"), 1).astype(np.int64)


class _Prices:
    """The price columns as `[-]whole.decimals`, where that is orjson's text (`ok`)."""

    __slots__ = ("dec", "dlen", "neg", "ok", "whole")

    def __init__(self, records: NDArray[np.void]) -> None:
        x = np.stack([records[f] for f in _PRICES])
        self.neg = np.signbit(x)  # -0.0 prints as "-0.0"
        ax = np.abs(x)
        with np.errstate(invalid="ignore", over="ignore"):
            k = np.rint(ax * 1e8)
            ok = (k < _MAX_K) & (k / 1e8 == ax) & ((ax >= _MIN_PLAIN) | (ax == 0))
        self.ok = ok.all(axis=0)
        k[~ok] = 0
        # exact in floats: k < 2**50, and a whole part below 10**7 is 1e-8 from the next
        whole = np.floor(k / 1e8)
        frac = (k - whole * 1e8).astype(np.int64)
        self.whole = whole.astype(np.int64)
        hi = frac // 10**4
        lo = frac - hi * 10**4
        tz = np.where(lo == 0, 4 + _TZ4[hi], _TZ4[lo])  # 8 for a whole number
        self.dec = (frac / _P10F[tz]).astype(np.int64)  # the decimals, right-aligned (exact)
        self.dlen = np.maximum(8 - tz, 1)  # "0" after the dot of a whole number


_P10F = 10.0 ** np.arange(9)
_MARGIN = _W  # bytes before the text: the first record's head pads into them


def tick_text(
    records: NDArray[np.void], names: NDArray[np.object_], dicts: Dicts
) -> tuple[bytes, NDArray[np.intp]]:
    """The tick objects of `records` joined by commas (`orjson.dumps(dicts(records, names))`
    without its brackets) and where each starts, with one more for the end: object k is
    `text[at[k] : at[k + 1] - 1]`. `dicts` encodes the records this module cannot prove."""
    n = len(records)
    if n == 0:
        return b"", np.ones(1, np.intp)
    table = _names(names)
    if not table.ok:
        return _reference(records, names, dicts)
    prices = _Prices(records)
    ok = prices.ok & (records["flags"] < _FLAGS)
    if ok.all():
        buf, at = _build(records, table, prices)
        return buf[_MARGIN : _MARGIN + at[n] - 1].tobytes(), at
    return _merged(records, names, dicts, table, ok)


def _reference(
    records: NDArray[np.void], names: NDArray[np.object_], dicts: Dicts
) -> tuple[bytes, NDArray[np.intp]]:
    frags = [orjson.dumps(d) for d in dicts(records, names)]
    at = np.zeros(len(frags) + 1, np.intp)
    np.cumsum([len(f) + 1 for f in frags], out=at[1:])
    return b",".join(frags), at


def _merged(
    records: NDArray[np.void],
    names: NDArray[np.object_],
    dicts: Dicts,
    table: _Names,
    ok: NDArray[np.bool_],
) -> tuple[bytes, NDArray[np.intp]]:
    """The proven records built, the others encoded by the reference, in the records' order."""
    good, bad = np.flatnonzero(ok), np.flatnonzero(~ok)
    frags = [orjson.dumps(d) for d in dicts(records[bad], names)]
    lengths = np.empty(len(records), np.intp)
    lengths[bad] = [len(f) + 1 for f in frags]
    parts: list[bytes | memoryview] = []
    if len(good):
        recs = records[good]
        buf, gat = _build(recs, table, _Prices(recs))
        view = memoryview(buf)[_MARGIN:]  # type: ignore[arg-type]
        lengths[good] = np.diff(gat)
    g = 0  # good records taken so far
    for i, (b, frag) in enumerate(zip(bad.tolist(), frags, strict=True)):
        upto = b - i  # the good records before bad record b
        if upto > g:
            parts.append(view[gat[g] : gat[upto]])
        parts += (frag, b",")
        g = upto
    if g < len(good):
        parts.append(view[gat[g] : gat[-1]])
    at = np.zeros(len(records) + 1, np.intp)
    np.cumsum(lengths, out=at[1:])
    return b"".join(parts)[:-1], at


def _build(
    records: NDArray[np.void], table: _Names, prices: _Prices
) -> tuple[NDArray[np.uint8], NDArray[np.intp]]:
    """The text of `records` (all proven), each object followed by a comma, in a buffer from
    byte _MARGIN on, and where each object starts in the text (one more for the end)."""
    n = len(records)
    sym = records["sym"].astype(np.intp)
    flags = records["flags"].astype(np.intp)
    ts = records["ts"]
    ts_neg = ts < 0
    ts_abs = np.where(ts_neg, ~ts.view(_U64) + np.uint64(1), ts.view(_U64))
    fields = [records[f] for f in _INTS]  # seq, the sizes and volume
    nums, lanes = _texts([*fields, ts_abs, *prices.whole], [*prices.dec])
    ints = dict(zip(_INTS, nums, strict=False))
    ts_text = nums[len(_INTS)]
    ts_len = ts_text.length + ts_neg
    head_len = table.lens[sym]
    tail_len = _TAIL_LEN[flags]
    whole = nums[len(_INTS) + 1 :]
    prices_text = _price_words(np.stack([t.lanes[0] for t in whole]), lanes, prices.dlen)
    prices_len = np.stack([t.length for t in whole]) + 1 + prices.dlen  # without the sign
    lengths = head_len + tail_len + _KEYS_LEN + ts_len
    for name in _INTS:
        lengths = lengths + ints[name].length
    lengths += (prices_len + prices.neg).sum(axis=0)
    at = np.empty(n + 1, np.intp)
    at[0] = 0
    np.cumsum(lengths, out=at[1:])
    out = _Out(_MARGIN + int(at[n]))
    end = at[1:] + _MARGIN
    tail = _TAIL[flags]
    out.words(end, tail, tail_len)
    end = end - tail_len
    for field, key in _ORDER:  # the fields after `ts`, last first
        if field in ints:
            num = ints[field]
            out.lanes(end, num)
            end = end - num.length
        else:
            k = _PRICES.index(field)
            out.w16[end - _W] = prices_text[k]
            end = out.sign(end - prices_len[k], prices.neg[k])
        out.const(end, key)
        end = end - len(key)
    out.lanes(end, ts_text)
    end = out.sign(end - ts_text.length, ts_neg)
    out.const(end, b',"ts":')
    end = end - 6
    seq = ints["seq"]
    out.lanes(end, seq)
    out.words(end - seq.length, table.words[sym], head_len)
    out.w16[at[1:] + _MARGIN - _W] = tail[:, -1]  # each end again: the next record padded it
    return out.buf, at


_INTS = ("seq", "bid_size", "ask_size", "last_size", "volume")
# after `ts`, from the last field back: each field and the key before it
_ORDER = (
    ("volume", b',"volume":'),
    ("last_size", b',"last_size":'),
    ("last", b',"last":'),
    ("ask_size", b',"ask_size":'),
    ("bid_size", b',"bid_size":'),
    ("ask", b',"ask":'),
    ("bid", b',"bid":'),
)
_KEYS_LEN = 6 + sum(len(key) for _, key in _ORDER)
_DOT = np.uint64(ord(".") << 56)
# by a price's decimals: the bytes of its 8-digit lane that are decimals (its last ones)
_DEC_MASK = np.array([0] + [(1 << 64) - (1 << (64 - 8 * d)) for d in range(1, 9)], _U64)


def _price_words(
    whole: NDArray[np.uint64], dec: NDArray[np.uint64], dlen: NDArray[np.int64]
) -> NDArray[np.complex128]:
    """Each price's `whole.decimals` right-aligned in one 16-byte word (7 + 1 + 8 bytes at
    most), from the lanes of its whole part and of its decimals (`dlen` of them)."""
    dotted = (whole >> np.uint64(8)) | _DOT  # the whole part's digits, then the dot
    shift = (dlen << 3).astype(_U64)  # the decimals' bits, which the dotted part moves by
    out = np.empty((*whole.shape, 2), _U64)
    np.left_shift(dotted, np.uint64(64) - shift, out=out[..., 0])
    np.bitwise_or(dotted >> shift, dec & _DEC_MASK[dlen], out=out[..., 1])
    return out.view(_WORD)[..., 0]


_MINUS8 = np.uint64(ord("-") << 56)
_CONST = {key: np.frombuffer(key.rjust(_W), _WORD)[0] for _, key in (*_ORDER, (0, b',"ts":'))}


class _Text:
    """A number's decimal text as 8-byte lanes (most significant first, leading zeros) and its
    length in digits."""

    __slots__ = ("lanes", "length")

    def __init__(self, lanes: list[NDArray[np.uint64]], length: NDArray[np.int64]) -> None:
        self.lanes, self.length = lanes, length


def _texts(
    counted: list[NDArray[Any]], plain: list[NDArray[Any]]
) -> tuple[list[_Text], NDArray[np.uint64]]:
    """The decimal text of each `counted` column of non-negative integers, and the 8-digit lane
    of each `plain` one (all below 10**8, lengths known), all converted at once."""
    rows: list[NDArray[Any]] = []
    spans: list[tuple[int, int, NDArray[np.int64] | None]] = []
    big = []
    for col in counted:
        if col.max() >= 10**8:
            big.append((len(spans), col.astype(_U64)))
            spans.append((0, 0, None))
        else:
            spans.append((len(rows), 1, None))
            rows.append(col)
    small = len(rows)  # the rows whose digits are counted here
    rows += plain
    for i, u in big:
        parts = [(u // _E16), (u // _E8) % _E8, u % _E8]
        if int(u.max()) < 10**16:
            parts = parts[1:]
        spans[i] = (len(rows), len(parts), _digits(u))
        rows += parts
    flat = np.empty((len(rows), len(counted[0])), np.int64)
    for j, row in enumerate(rows):
        flat[j] = row
    hi = flat // 10**4
    lo = flat - hi * 10**4
    words = _T4_HIGH.take(hi)
    words |= _T4_LOW.take(lo)
    digits = np.maximum(_LEN4.take(lo[:small]), _HIGH_LEN4.take(hi[:small]))
    out = []
    for first, count, length in spans:
        if length is None:
            length = digits[first]
        out.append(_Text([words[first + j] for j in range(count)], length))
    return out, words[small : small + len(plain)]


# the 4-digit texts as the first and the last 4 bytes of an 8-byte lane
_T4_HIGH = _T4.astype(_U64)
_T4_LOW = _T4_HIGH << np.uint64(32)
_LEN4 = np.array([len(str(i)) for i in range(10_000)], np.int64)
_HIGH_LEN4 = _LEN4 + 4  # the digits of a number below 10**8 by its 4 high digits, if any...
_HIGH_LEN4[0] = 0  # ...else by its 4 low ones (_LEN4 of them, the larger)


class _Out:
    """The buffer of a batch's text, stored into by words ending at given offsets."""

    __slots__ = ("buf", "w8", "w16")

    def __init__(self, size: int) -> None:
        self.buf = np.empty(size, np.uint8)
        # a word at every byte offset: how a field is stored right-aligned at its end
        self.w8: NDArray[np.uint64] = np.ndarray((size - 7,), _U64, self.buf, 0, (1,))
        self.w16: NDArray[np.complex128] = np.ndarray((size - _W + 1,), _WORD, self.buf, 0, (1,))

    def lanes(self, end: NDArray[np.intp], text: _Text) -> None:
        """A number's digits, right-aligned at `end` (leading zeros pad the bytes before): its
        last two lanes in one 16-byte word, a third where its digits need it."""
        *high, low = text.lanes
        if not high:
            self.w8[end - 8] = low
            return
        pair = np.empty((len(low), 2), _U64)
        pair[:, 0] = high[-1]
        pair[:, 1] = low
        self.w16[end - _W] = pair.view(_WORD)[:, 0]
        if len(high) > 1 and (need := text.length > 16).any():
            self.w8[end[need] - 24] = high[0][need]

    def sign(self, end: NDArray[np.intp], neg: NDArray[np.bool_]) -> NDArray[np.intp]:
        """A `-` before `end` where `neg`; where the text before it ends."""
        if neg.any():
            self.w8[end[neg] - 8] = _MINUS8
        return end - neg

    def const(self, end: NDArray[np.intp], text: bytes) -> None:
        self.w16[end - _W] = _CONST[text]

    def words(
        self, end: NDArray[np.intp], rows: NDArray[np.complex128], length: NDArray[np.int64]
    ) -> None:
        """Rows of 16-byte words right-aligned at `end`, as many as each `length` needs."""
        last = rows.shape[1] - 1
        self.w16[end - _W] = rows[:, last]
        for j in range(1, last + 1):
            need = length > _W * j
            if need.all():
                self.w16[end - _W * (j + 1)] = rows[:, last - j]
            elif need.any():
                self.w16[end[need] - _W * (j + 1)] = rows[need, last - j]
