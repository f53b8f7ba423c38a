"""The every-update take: each record of a subscription since the cursor, in order, once.

A take reads the history from the subscriber's cursor, at most `max_take` records, keeps those of
its symbols (and, after a snapshot went out ahead of the cursor, only seqs above what it holds),
and moves the cursor past them. Every `*` subscriber at the same cursor shares one take (records,
a view of the published batch when it is one, and one lazy JSON body). No trio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.history import BY_SYM, Entry, History, pick
from tickwire.feed.hub.jsonbody import JsonCache, Piece
from tickwire.feed.hub.subscriber import Pending, Subscriber
from tickwire.simulators.ticks import TICK_DTYPE, TickBatch

_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))  # records as opaque bytes: fast to join


@dataclass(frozen=True, slots=True)
class Taken:
    """A take of every update, shared by the `*` subscribers at the same cursor."""

    pending: Pending
    end_gen: int
    last_at: NDArray[np.intp]  # where each symbol's last seq goes in `last_seq` (`*`: its id)
    last_seqs: NDArray[np.uint64]
    # The `*` readers' seqs before and after it, made by the first (`Subscriber.took`).
    chain: list[NDArray[np.uint64]] = field(default_factory=list)

    @property
    def some(self) -> bool:
        """Whether it has records (a span without any of a reader's symbols has none)."""
        return len(self.pending.records) > 0


class AllSource(Protocol):
    """What this take reads of the hub (`hub.Hub` is one), so that it needs no import of it."""

    history: History
    gen: int
    max_take: int
    json: JsonCache
    shared_all: dict[int, Taken]  # by cursor: the take every `*` subscriber there shares


def take_all(hub: AllSource, sub: Subscriber) -> Pending | None:
    """The next records of `sub`'s subscription from its cursor; None if that span had none."""
    start = sub.cursor
    if sub.wildcard and sub.ahead_until <= start:
        taken = hub.shared_all.get(start)
        if taken is None:
            taken = hub.shared_all[start] = _gather(hub, sub, start)
        sub.took(taken.last_at, taken.last_seqs, taken.pending.offset, taken.end_gen, taken.chain)
        return taken.pending if taken.some else None
    sub.in_sync(False)
    hist = hub.history
    if not sub.wildcard:
        if not sub.news_gen:  # none of its symbols changed since its last take
            sub.advance(hist.head, hub.gen)
            return None
        if sub.news_gen > sub.sent_gen + 1:  # skip the batches without its symbols
            start = hist.entry(hist.index_of_gen(sub.news_gen)).start
            sub.skip_to(start)
    taken = _gather(hub, sub, start)
    if len(taken.last_at):
        sub.deliver_newer(taken.last_at, taken.last_seqs)
    sub.advance(taken.pending.offset, taken.end_gen)
    if sub.cursor >= hist.head:
        sub.caught_up()
    return taken.pending if len(taken.pending.records) else None


# A subscriber of named symbols scans up to this many times `max_take` records for one message.
SCAN_TAKES = 8


def _gather(hub: AllSource, sub: Subscriber, start: int) -> Taken:
    """Every record of `sub`'s subscription from `start` (see `_gather_all`); a reader of named
    symbols a few batches behind, with nothing to skip, takes the quick way."""
    if not sub.wildcard and sub.ahead_until <= start:
        taken = _gather_named(hub, sub, start)
        if taken is not None:
            return taken
    return _gather_all(hub, sub, start)


# A reader of named symbols at most this many batches behind is served from their symbol indexes.
NAMED_BATCHES = 8


def _gather_named(hub: AllSource, sub: Subscriber, start: int) -> Taken | None:
    """What `_gather_all` gives a reader of named symbols (not ahead) when everything from
    `start` to the head fits one message: its records picked from each batch's index by symbol
    (built once per batch), in a few list operations; None when it does not fit."""
    hist = hub.history
    i, stop = hist.index(start), hist.stop()
    if stop - i > NAMED_BATCHES:
        return None
    ids = sub.ids.tolist()
    pieces: list[Piece] = []
    chunks: list[TickBatch] = []
    last: dict[int, int] = {}  # place in `ids` -> its last seq taken (later batches win)
    kept = scanned = 0
    for k in range(i, stop):
        entry = hist.entry(k)
        lo = start - entry.start if start > entry.start else 0
        scanned += len(entry.records) - lo
        where, last_of = _by_symbol(hub, entry)
        sel: list[int] = []
        for n, s in enumerate(ids):
            found = where.get(s)
            if found is None or found[-1] < lo:
                continue
            sel += [j for j in found if j >= lo] if lo else found
            last[n] = last_of[s]
        if not sel:
            continue
        kept += len(sel)
        sel.sort()
        idx = np.array(sel, np.intp)
        pieces.append((entry, idx))
        chunks.append(pick(entry.records, idx))
    if kept > hub.max_take or scanned > hub.max_take * SCAN_TAKES:
        return None
    newest = hist.entry(stop - 1)
    at = sorted(last)
    last_at = np.array(at, np.intp)
    last_seqs = np.array([last[a] for a in at], np.uint64)
    pending = Pending(_joined(chunks), hub.json.of_pieces(pieces), 0, offset=newest.end)
    return Taken(pending, newest.gen, last_at, last_seqs)


def _by_symbol(hub: AllSource, entry: Entry) -> tuple[dict[int, list[int]], dict[int, int]]:
    """Where each symbol's records are in `entry` and its last seq there, kept with the batch
    while it is recent."""
    if entry.by_sym is not None:
        return entry.by_sym
    where: dict[int, list[int]] = {}
    last_of: dict[int, int] = {}
    recs = entry.records
    for j, (s, q) in enumerate(zip(recs["sym"].tolist(), recs["seq"].tolist(), strict=True)):
        found = where.get(s)
        if found is None:
            where[s] = [j]
        else:
            found.append(j)
        last_of[s] = q
    derived = hub.history.derived
    if entry.gen > hub.gen - derived.keep:
        entry.by_sym = where, last_of
        derived.charge(entry, 160 * len(where) + 40 * len(recs), BY_SYM)
        derived.trim(hub.gen, 0)
    return where, last_of


def _joined(chunks: list[TickBatch]) -> TickBatch:
    if len(chunks) == 1:
        return chunks[0]
    if chunks:
        return np.concatenate([c.view(_RECORD) for c in chunks]).view(TICK_DTYPE)
    return np.empty(0, TICK_DTYPE)


def _gather_all(hub: AllSource, sub: Subscriber, start: int) -> Taken:
    """Every record of `sub`'s subscription from `start`: at most `max_take` of them, and at most
    `SCAN_TAKES` times that many records scanned for a subscriber of named symbols (whose
    records are a few of each batch: one message then carries them all, instead of a message
    of a few records per `max_take` scanned)."""
    hist = hub.history
    i, stop = hist.index(start, sub.sent_gen + 1), hist.stop()
    budget = hub.max_take
    explicit = not sub.wildcard
    scan = budget * SCAN_TAKES if explicit else budget
    ahead = sub.ahead_until > start
    pieces: list[Piece] = []
    chunks: list[TickBatch] = []
    places: list[NDArray[np.intp]] = []  # explicit: where each kept record's seq goes
    end, end_gen = start, sub.sent_gen
    while i < stop and budget > 0 and scan > 0:
        entry = hist.entry(i)
        lo = start - entry.start if start > entry.start else 0
        hi = min(len(entry.records), lo + scan)
        recs = entry.records[lo:hi]
        sel: slice | NDArray[np.intp] = slice(lo, hi)
        if explicit or ahead:
            keep, at = sub.find(recs["sym"])
            if ahead and len(sub.last_seq):
                keep &= recs["seq"] > sub.last_seq[at]
            if explicit and int(np.count_nonzero(keep)) > budget:  # the message is full:
                last = int(np.flatnonzero(keep)[budget - 1])  # stop after its last record
                n = last + 1
                hi, keep, at, recs, sel = lo + n, keep[:n], at[:n], recs[:n], slice(lo, lo + n)
            if not keep.all():
                idx = np.flatnonzero(keep)
                recs, sel, at = pick(recs, idx), idx + lo, at[idx]
            if explicit:
                places.append(at)
        if len(recs):
            pieces.append((entry, sel))
            chunks.append(recs)
        budget -= len(recs) if explicit else hi - lo
        scan -= hi - lo
        end = entry.start + hi
        end_gen = entry.gen if hi == len(entry.records) else entry.gen - 1
        i += 1
    records = _joined(chunks)
    if explicit:  # by place in its own arrays, found once above
        at_all = np.concatenate(places) if places else np.empty(0, np.intp)
        last_at, rev = np.unique(at_all[::-1], return_index=True)
        last_seqs = records["seq"][len(records) - 1 - rev]
    else:  # `*`: places are symbol ids
        last_at, last_seqs = _last_per_symbol(pieces, records, sub.n_symbols)
    pending = Pending(records, hub.json.of_pieces(pieces), 0, offset=end)
    return Taken(pending, end_gen, last_at, last_seqs)


def _last_per_symbol(
    pieces: list[Piece], records: TickBatch, n_symbols: int
) -> tuple[NDArray[np.intp], NDArray[np.uint64]]:
    """Each symbol's last seq among `records` (taken from `pieces`), sorted by symbol."""
    whole = [
        entry
        for entry, sel in pieces
        if isinstance(sel, slice) and sel.start == 0 and sel.stop == len(entry.records)
    ]
    if len(whole) == len(pieces) and all(e.last_seqs is not None for e in whole):
        if len(whole) == 1:  # a whole batch: computed once at publish
            entry = whole[0]
            assert entry.last_ids is not None and entry.last_seqs is not None
            return entry.last_ids, entry.last_seqs
        if whole:  # whole batches (a reader a few batches behind): theirs, later ones winning
            return _merge_last(whole, n_symbols)
    ids, at = last_of(records["sym"].astype(np.intp), n_symbols)
    return ids, records["seq"][at]


def last_of(sym: NDArray[np.intp], n_symbols: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The symbol ids in `sym` (of a universe of `n_symbols`), sorted, and where each one's
    last record is. Many records (a reader's take of 1024, a batch of a generator behind):
    each one's greatest index written into a table of the universe (14 us for 1000 of 1500
    symbols, against np.unique's sort at 69 us); a few: np.unique."""
    if len(sym) * 16 < n_symbols:
        ids, rev_idx = np.unique(sym[::-1], return_index=True)
        return ids, len(sym) - 1 - rev_idx
    table = _places(n_symbols)
    np.maximum.at(table, sym, np.arange(len(sym), dtype=np.intp))  # ufunc.at: in order
    ids = np.flatnonzero(table >= 0)
    at = table[ids]
    table[ids] = -1  # the table is shared: leave it as found
    return ids, at


def _merge_last(
    entries: list[Entry], n_symbols: int
) -> tuple[NDArray[np.intp], NDArray[np.uint64]]:
    """The symbols `entries` (in order, each with `last_ids`) changed, sorted, and each one's
    last seq: written in order into a table of the universe, so no sort of their records."""
    seqs, seen = _tables(n_symbols)
    for entry in entries:
        ids, last = entry.last_ids, entry.last_seqs
        assert ids is not None and last is not None  # the caller checked
        seqs[ids] = last
        seen[ids] = True
    changed = np.flatnonzero(seen)
    seen[changed] = False  # the tables are shared: leave them as found
    return changed, seqs[changed]


_TABLES: dict[int, tuple[NDArray[np.uint64], NDArray[np.bool_]]] = {}
_PLACES: dict[int, NDArray[np.intp]] = {}


def _places(n: int) -> NDArray[np.intp]:
    """-1 for every symbol id of a universe of `n` (`last_of` restores what it writes)."""
    found = _PLACES.get(n)
    if found is None:
        found = _PLACES[n] = np.full(n, -1, np.intp)
    return found


def _tables(n: int) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """A seq per symbol id and an all-False mark per symbol id, for a universe of `n`."""
    found = _TABLES.get(n)
    if found is None:
        found = _TABLES[n] = (np.zeros(n, np.uint64), np.zeros(n, np.bool_))
    return found
