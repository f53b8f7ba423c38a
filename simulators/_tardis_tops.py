"""The top of every book after each level update, vectorised: a replayed Tardis file's ticks.

Input is the stream of level records (symbol, side, price units, size; 0 removes the level) and
the updates after which the top is wanted. A write of size > 0 holds its level from its record
until the next write of that level: an interval. The best bid after record i is the highest
price among the intervals that hold i (the best ask the lowest), which a segment tree over the
records answers for all of them at once: each interval marks the O(log n) nodes that cover it
with max(code), a query takes the max along its leaf's path to the root (`_mark`, `_ask`). The
code packs the price's rank and the write, so the winner also says its size. Records go in
chunks of `CHUNK` with the books at each chunk's start carried as writes at its start, so the
work arrays stay bounded whatever the file's size; within a chunk records are laid out symbol
by symbol, so one tree serves every symbol. numpy only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

CHUNK = 1 << 16  # records a tree covers: its work arrays take ~100 B each


class Tops(NamedTuple):
    """At each asked record whose book has both sides and is not crossed: the record's index,
    and the best bid, its size, the best ask, its size (price units, size units)."""

    at: NDArray[np.int64]
    bid: NDArray[np.int64]
    bid_size: NDArray[np.uint64]
    ask: NDArray[np.int64]
    ask_size: NDArray[np.uint64]


class _Levels(NamedTuple):
    """Live levels: symbol, side, price units, size."""

    sym: NDArray[np.int64]
    side: NDArray[np.int64]
    units: NDArray[np.int64]
    size: NDArray[np.uint64]


def tops(
    sym: NDArray[np.integer],
    side: NDArray[np.integer],
    units: NDArray[np.int64],
    size: NDArray[np.uint64],
    asked: NDArray[np.bool_],
    last: NDArray[np.int64] | None = None,
) -> Tops:
    """The top after each record where `asked` holds (see `Tops`), where it differs from the
    symbol's top before (the one of its last asked record that had one). `last`: each symbol's
    top before the records (bid, bid size, ask, ask size; -1: none yet), updated in place."""
    n_sym = int(sym.max()) + 1 if len(sym) else 0
    empty = np.empty(0, np.int64)
    live = _Levels(empty, empty, empty, np.empty(0, np.uint64))
    if last is None:
        last = np.full((n_sym, 4), -1, np.int64)
    parts: list[Tops] = []
    lo = 0
    while lo < len(sym):
        # a chunk carries the books' live levels as writes: keep them a fraction of it
        hi = min(lo + max(CHUNK, 4 * len(live.sym)), len(sym))
        chunk = _Levels(
            sym[lo:hi].astype(np.int64),
            side[lo:hi].astype(np.int64),
            units[lo:hi],
            size[lo:hi],
        )
        got, live = _chunk(chunk, live, asked[lo:hi], n_sym)
        got = _changed(got, chunk.sym[got.at], last)
        parts.append(got._replace(at=got.at + lo))
        lo = hi
    if not parts:
        return Tops(empty, empty, np.empty(0, np.uint64), empty, np.empty(0, np.uint64))
    return Tops(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))


def _chunk(
    rec: _Levels, live: _Levels, asked: NDArray[np.bool_], n_sym: int
) -> tuple[Tops, _Levels]:
    """One chunk's tops, and the live levels after it."""
    n = len(rec.sym)
    by = stable_order(rec.sym.astype(np.uint16))  # symbol by symbol, in order
    pos = np.empty(n, np.int64)
    pos[by] = np.arange(n)
    counts = np.bincount(rec.sym, minlength=n_sym)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    held = counts[live.sym] > 0  # the books of symbols this chunk touches
    # writes in time order within each level: the books held, then the chunk symbol by symbol
    w = _cat(live, held, rec, by)
    wpos = np.concatenate((seg_start[live.sym[held]], np.arange(n)))
    low = int(w.units.min()) if n else 0
    span = int(w.units.max()) - low + 1 if n else 1
    if span < 2**62 // max(len(w.units), 2 * n_sym, 1):
        rank, ranks = w.units - low, span  # prices in units make the rank themselves
    else:
        uniq, inverse = np.unique(w.units, return_inverse=True)
        rank, ranks = inverse.reshape(-1).astype(np.int64), len(uniq)
    level = (w.sym * 2 + w.side) * ranks + rank
    order = np.argsort(level, kind="stable")
    same = level[order][1:] == level[order][:-1]
    nxt = np.empty(len(order), np.int64)  # where each write stops holding its level
    nxt[order[:-1]] = np.where(same, wpos[order][1:], seg_end[w.sym[order][:-1]])
    if len(order):
        nxt[order[-1]] = seg_end[w.sym[order[-1]]]
    # the live levels after the chunk: each level's last write, if it holds a size
    last = np.ones(len(order), np.bool_)
    last[:-1] = ~same
    keep = order[last][w.size[order[last]] > 0]
    after = _cat(live, ~held, w, keep)
    holds = w.size > 0
    widx = np.arange(len(w.sym), dtype=np.int64)
    q = pos[np.flatnonzero(asked)]
    sides = []
    for s, code in ((0, rank), (1, ranks - 1 - rank)):
        m = holds & (w.side == s)
        tree = np.full(2 * max(n, 1), -1, np.int64)
        _mark(tree, max(n, 1), wpos[m], nxt[m], code[m] * len(widx) + widx[m])
        sides.append(_ask(tree, max(n, 1), q))
    bid, ask = sides
    ok = (bid >= 0) & (ask >= 0)
    bi, ai = bid[ok] % len(widx), ask[ok] % len(widx)
    ok_at = np.flatnonzero(asked)[ok]
    fine = w.units[bi] < w.units[ai]  # neither crossed nor locked
    got = Tops(
        ok_at[fine], w.units[bi][fine], w.size[bi][fine], w.units[ai][fine], w.size[ai][fine]
    )
    return got, after


def _changed(t: Tops, sym: NDArray[np.int64], last: NDArray[np.int64]) -> Tops:
    """The tops of `t` (of symbols `sym`) that differ from the symbol's one before; `last`
    (by symbol) holds the one before the chunk, and gets the chunk's last."""
    by = stable_order(sym.astype(np.uint16))
    s = sym[by]
    now = np.stack((t.bid, t.bid_size.astype(np.int64), t.ask, t.ask_size.astype(np.int64)), 1)
    now = now[by]
    head = np.ones(len(s), np.bool_)
    head[1:] = s[1:] != s[:-1]
    before = np.empty_like(now)
    before[1:] = now[:-1]
    before[head] = last[s[head]]
    tail = np.ones(len(s), np.bool_)
    tail[:-1] = head[1:]
    last[s[tail]] = now[tail]
    keep = np.empty(len(s), np.bool_)
    keep[by] = (now != before).any(axis=1)
    return Tops(t.at[keep], t.bid[keep], t.bid_size[keep], t.ask[keep], t.ask_size[keep])


def _cat(a: _Levels, in_a: NDArray[Any], b: _Levels, in_b: NDArray[Any]) -> _Levels:
    """The levels a[in_a] then b[in_b]."""
    return _Levels(
        np.concatenate((a.sym[in_a], b.sym[in_b])),
        np.concatenate((a.side[in_a], b.side[in_b])),
        np.concatenate((a.units[in_a], b.units[in_b])),
        np.concatenate((a.size[in_a], b.size[in_b])),
    )


def stable_order(keys: NDArray[Any]) -> NDArray[np.intp]:
    """np.argsort(keys, kind="stable"), without sorting keys already in order (a file's times,
    mostly). Symbol ids are best passed as u2: numpy sorts those by radix, in linear time."""
    if len(keys) < 2 or bool((keys[1:] >= keys[:-1]).all()):
        return np.arange(len(keys))
    out: NDArray[np.intp] = np.argsort(keys, kind="stable")
    return out


def _mark(
    tree: NDArray[np.int64],
    n: int,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    code: NDArray[np.int64],
) -> None:
    """tree[node] = max(tree[node], code) on the nodes that cover [lo, hi) of each interval."""
    left, right = lo + n, hi + n
    while len(left):
        go = left < right
        left, right, code = left[go], right[go], code[go]
        odd = (left & 1) == 1
        np.maximum.at(tree, left[odd], code[odd])
        left = left + odd
        odd = (right & 1) == 1
        right = right - odd
        np.maximum.at(tree, right[odd], code[odd])
        left >>= 1
        right >>= 1


def _ask(tree: NDArray[np.int64], n: int, q: NDArray[np.int64]) -> NDArray[np.int64]:
    """The max code on each leaf's path to the root: the interval that wins at q. Pushed
    down the tree level by level (a node's parent is node >> 1), then read at the leaves."""
    lo = 2
    while lo < 2 * n:
        hi = min(2 * lo, 2 * n)
        np.maximum(tree[lo:hi], tree[lo >> 1 : (hi + 1) >> 1].repeat(2)[: hi - lo], out=tree[lo:hi])
        lo = hi
    out: NDArray[np.int64] = tree[q + n]
    return out
