"""Whole books as records with array operations, for files made of whole books only
(`book_snapshot_N`): each is the change from the symbol's previous whole book.

Same records, in the same order, as `_tardis_records` makes book by book: a symbol's first book
is its levels at seq 1 in the order the file first gives each (bids, then asks); a later one is,
side by side, the levels of the previous book it lacks (size 0) by price, then its levels that
are new or of another size, by price. A level given twice in a book takes its last size; a size
of 0 in a whole book is no level. Levels are keyed by (book, side, price) in one int64 and
sorted once; books pair with the one before of their symbol. numpy only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class Made(NamedTuple):
    """Each whole book's records, books in time order: their side, price units, size, seq
    step (`inc`), snapshot mark; per book its record count; (row, symbol) of first books
    without levels; the widest side of any book in ticks."""

    side: NDArray[np.int8]
    units: NDArray[np.int64]
    size: NDArray[np.uint64]
    inc: NDArray[np.int64]
    snap: NDArray[np.bool_]
    counts: list[int]
    bumps: list[tuple[int, int]]
    widest: int


def whole_records(
    side: NDArray[np.int8],
    units: NDArray[np.int64],
    size: NDArray[np.uint64],
    book: NDArray[np.int64],
    book_sym: NDArray[np.intp],
    anchor: NDArray[np.int64],
    tick: NDArray[np.int64],
) -> Made:
    """`side`, `units`, `size` of every row (file order) and the index of its `book` among
    the books in time order; each book's symbol and row in time (`anchor`)."""
    n = len(book_sym)
    by_sym = np.argsort(book_sym, kind="stable")
    same = book_sym[by_sym][1:] == book_sym[by_sym][:-1]
    prev = np.full(n, -1, np.int64)
    prev[by_sym[1:]] = np.where(same, by_sym[:-1], -1)
    nxt = np.full(n, -1, np.int64)
    nxt[by_sym[:-1]] = np.where(same, by_sym[1:], -1)
    first = prev < 0
    given = np.flatnonzero(size > 0)
    low = int(units.min()) if len(units) else 0
    span = int(units.max()) - low + 1 if len(units) else 1
    if span < 2**61 // max(4 * n, 1):
        price = units - low
    else:  # prices too far apart to key by their units: by their rank
        _, inv = np.unique(units, return_inverse=True)
        price, span = inv.reshape(-1).astype(np.int64), len(units)
    key = (book[given] * 2 + side[given]) * span + price[given]
    o = np.argsort(key, kind="stable")  # file order within a level
    k = key[o]
    head = np.ones(len(k), np.bool_)
    head[1:] = k[1:] != k[:-1]
    tail = np.ones(len(k), np.bool_)
    tail[:-1] = head[1:]
    rows = given[o]
    e = _Levels(
        book[rows[tail]],
        side[rows[tail]].astype(np.int64),
        units[rows[tail]],
        size[rows[tail]],
        price[rows[tail]],
        rows[head],  # the last size, the first place
    )
    e_book, e_side, e_units, e_size, e_pos = e.book, e.side, e.units, e.size, e.pos
    widest = _widest(e_book, e_side, e_units, tick[book_sym[e_book]])
    # first books: their levels where the file first gives them
    f = first[e_book]
    fo = np.lexsort((e_pos[f], e_side[f], e_book[f]))
    fb = e_book[f][fo]
    f_inc = np.ones(len(fb), np.int64)
    f_inc[1:] = fb[1:] != fb[:-1]
    d_book, d_side, d_units, d_size, d_n = _changes(e, first, nxt, span)
    # both kinds in time order of their books (a book is first or later, never both)
    r_book = np.concatenate((fb, d_book))
    ro = np.argsort(r_book, kind="stable")
    count = np.bincount(r_book, minlength=n)
    bumps = [(int(anchor[b]), int(book_sym[b])) for b in np.flatnonzero(first & (count == 0))]
    return Made(
        np.concatenate((e_side[f][fo], d_side)).astype(np.int8)[ro],
        np.concatenate((e_units[f][fo], d_units))[ro],
        np.concatenate((e_size[f][fo], d_size)).astype(np.uint64)[ro],
        np.concatenate((f_inc, np.ones(d_n, np.int64)))[ro],
        np.concatenate((np.ones(len(fb), np.bool_), np.zeros(d_n, np.bool_)))[ro],
        count.tolist(),
        bumps,
        widest,
    )


class _Levels(NamedTuple):
    """Each book's levels, sorted by book, side and price."""

    book: NDArray[np.int64]
    side: NDArray[np.int64]
    units: NDArray[np.int64]
    size: NDArray[np.uint64]
    price: NDArray[np.int64]  # a key ordered as units
    pos: NDArray[np.int64]  # the row that first gives it


def _changes(
    e: _Levels, first: NDArray[np.bool_], nxt: NDArray[np.int64], span: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.uint64], int]:
    """The records of every later book: against the book before, level by level (the level
    before first where both hold it); by book, side, removals first, price."""
    e_book, e_side, e_units, e_size, e_price = e.book, e.side, e.units, e.size, e.price
    cur = ~first[e_book]
    was = nxt[e_book] >= 0
    m_book = np.concatenate((nxt[e_book[was]], e_book[cur]))
    m_side = np.concatenate((e_side[was], e_side[cur]))
    m_price = np.concatenate((e_price[was], e_price[cur]))
    m_units = np.concatenate((e_units[was], e_units[cur]))
    m_size = np.concatenate((e_size[was], e_size[cur]))
    m_now = np.concatenate((np.zeros(int(was.sum()), np.bool_), np.ones(int(cur.sum()), np.bool_)))
    mk = (m_book * 2 + m_side) * span + m_price
    mo = np.argsort(mk, kind="stable")
    mk, m_now, m_size = mk[mo], m_now[mo], m_size[mo]
    pair = np.zeros(len(mk), np.bool_)  # the level's `before` entry, followed by its `now`
    pair[:-1] = (mk[1:] == mk[:-1]) & ~m_now[:-1] & m_now[1:]
    paired = np.zeros(len(mk), np.bool_)
    paired[1:] = pair[:-1]
    gone = ~m_now & ~pair
    new = m_now & ~paired
    moved = np.zeros(len(mk), np.bool_)
    moved[1:] = paired[1:] & (m_size[1:] != m_size[:-1])
    keep = gone | new | moved
    d = mo[keep]
    d_book, d_side, d_units = m_book[d], m_side[d], m_units[d]
    d_size = np.where(gone[keep], np.uint64(0), m_size[keep])
    d_kind = (~gone[keep]).astype(np.int64)  # removals first
    do = np.lexsort((m_price[d], d_kind, d_side, d_book))
    return d_book[do], d_side[do], d_units[do], d_size[do], len(do)


def _widest(
    book: NDArray[np.int64],
    side: NDArray[np.int64],
    units: NDArray[np.int64],
    tick: NDArray[np.int64],
) -> int:
    """Ticks from the best to the last level of the widest side of any book (levels sorted by
    book, side and price)."""
    if not len(book):
        return 0
    g = book * 2 + side
    start = np.ones(len(g), np.bool_)
    start[1:] = g[1:] != g[:-1]
    end = np.ones(len(g), np.bool_)
    end[:-1] = start[1:]
    wide = np.round((units[end] - units[start]) / tick[start]) + 1
    return int(wide.max())
