"""The fan-out core: every update in order by default, the latest state on request; history, epoch.

Publishing a batch is O(batch) plus one wake-up per affected subscriber: the batch joins the
history (recent batches addressed by stream offset, `_history.py`), the latest record of each
changed symbol goes into the last-value cache, and the symbols are stamped with a new generation.

A subscriber keeps a cursor, a stream offset. In the default mode `take()` returns every record
since its cursor for its subscription, in event order, each exactly once (per-symbol seq +1), at
most `max_take` records per message. In latest mode (the client asked: `mode: latest` or a
throttle), or once its cursor has fallen out of the history window, it gets the latest record of
each changed symbol instead: conflation, counted in `ticks_conflated`. So a subscriber's pending
data is its cursor into the shared history, bounded by the window; the generator never waits.

Speed: each update is encoded to JSON once for all JSON subscribers (per batch, lazily); every `*`
subscriber at the same cursor shares one take and one body; binary sends the batches' records as
they are. The `epoch` names this run of the stream: a resume needs the same epoch and an offset
still in the window (`resume`). No trio here: waking is a callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE, TickBatch
from tickwire.simulators.universe import Universe

from . import protocol as p
from ._history import DEFAULT_MAX_BYTES, DEFAULT_WINDOW_S, Entry, History

_PRICE_FIELDS = ("bid", "ask", "last")
# Records per data message: a subscriber far behind (or resuming) catches up in messages of at
# most 512 KiB binary (~2 MiB JSON) rather than one huge frame.
MAX_TAKE = 8192
# Batches whose JSON tick objects and per-symbol summaries stay cached (older: recomputed on
# demand, for a subscriber that is behind): the history then costs its records and ~200 B a batch.
_FRAG_KEEP = 256
_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))  # records as opaque bytes: fast to join


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection's view of the hub. Only its writer task touches it (besides `wake`)."""

    wake: Callable[[], None]
    n_symbols: int
    wildcard: bool = False
    mask: NDArray[np.bool_] = field(init=False)
    sent_gen: int = 0  # every batch up to this generation has been taken
    last_seq: NDArray[np.uint64] = field(init=False)  # per symbol, the seq last delivered
    ticks_conflated: int = 0
    # Wildcard in latest mode, and last_seq is every symbol's seq as of sent_gen: then its next
    # take is the same for every such subscriber at the same generation, computed once for all.
    synced: bool = False
    cursor: int = 0  # stream offset: every record before it was delivered or conflated
    latest: bool = False  # latest state per symbol (conflation) instead of every update
    ahead_until: int = 0  # a snapshot went out newer than the cursor: skip repeats before this
    news_gen: int = 0  # the first generation with news for it since its last take (0: none)
    resumable: bool = False  # it asked for resume positions (binary frames then carry them)
    resync: bool = False  # the source lost updates (`Hub.resync`): its next take is a snapshot

    def __post_init__(self) -> None:
        self.mask = np.zeros(self.n_symbols, np.bool_)
        self.last_seq = np.zeros(self.n_symbols, np.uint64)


@dataclass(frozen=True, slots=True)
class Pending:
    """What one subscriber has to send: records and, for JSON, their encoded list."""

    records: TickBatch
    json_body: Callable[[], bytes]  # lazy: binary subscribers never encode JSON
    conflated: int
    ids: NDArray[np.intp] | None = None  # symbol ids of `records`, when shared
    offset: int = 0  # the stream position after this message: resume from here
    gap: bool = False  # a snapshot after the source lost updates (`Hub.resync`)


@dataclass(frozen=True, slots=True)
class _Taken:
    """A take of every update, shared by the `*` subscribers at the same cursor."""

    pending: Pending
    end_gen: int
    last_ids: NDArray[np.intp]
    last_seqs: NDArray[np.uint64]


class _Body:
    """A JSON body built once, on first use, from the batches' shared tick fragments."""

    __slots__ = ("_body", "_hub", "_pieces")

    def __init__(self, hub: Hub, pieces: list[tuple[Entry, slice | NDArray[np.intp]]]) -> None:
        self._hub, self._pieces, self._body = hub, pieces, b""

    def __call__(self) -> bytes:
        if not self._body:
            out: list[bytes] = []
            for entry, sel in self._pieces:
                frags = self._hub._entry_frags(entry)
                if isinstance(sel, slice):
                    out.extend(frags[sel])
                else:
                    out.extend([frags[k] for k in sel.tolist()])
            self._body = p.join_fragments(out)
        return self._body


class Hub:
    """Recent history, latest record per symbol, and who needs which changes."""

    def __init__(
        self,
        universe: Universe,
        initial: TickBatch,
        *,
        ring: int = 4096,
        history_s: float = DEFAULT_WINDOW_S,
        history_bytes: int = DEFAULT_MAX_BYTES,
        max_take: int = MAX_TAKE,
        epoch: str | None = None,
    ) -> None:
        n = len(universe)
        if len(initial) != n:
            raise ValueError("initial snapshot must hold one record per symbol")
        self.epoch = epoch or secrets.token_hex(8)  # this run of the stream, for resumes
        self.names = np.array(universe.symbols, dtype=object)
        self._tick = np.asarray(universe.tick_size, np.float64)
        decimals = _decimals(self._tick)
        self._scale = 10.0**decimals  # prices go out as round(p * scale) / scale: shortest repr
        self.lvc: TickBatch = np.array(initial, dtype=TICK_DTYPE, copy=True)
        self._normalise(self.lvc)
        self.history = History(history_s, history_bytes)
        self.max_take = max_take
        self.gen = 0
        self._changed_gen = np.zeros(n, np.int64)
        self._ring_size = ring
        self._ring: list[NDArray[np.intp]] = [np.empty(0, np.intp)] * ring  # ids by gen % ring
        self._wild: set[Subscriber] = set()
        self._subs: set[Subscriber] = set()  # every attached subscriber
        self._by_sym: list[set[Subscriber]] = [set() for _ in range(n)]
        self._frags: list[bytes] = [b""] * n  # JSON tick object per symbol...
        self._frag_gen = np.full(n, -1, np.int64)  # ...valid while this equals _changed_gen
        self._shared: dict[tuple[int, int], NDArray[np.intp]] = {}  # changed ids per span
        self._synced_take: dict[int, Pending] = {}  # by span start: what synced subs get
        self._shared_all: dict[int, _Taken] = {}  # by cursor: what `*` subscribers get
        self._body_cache: dict[tuple[int, int], bytes] = {}
        self.ticks_published = 0
        self.batches_published = 0

    def __len__(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ producing

    def _normalise(self, records: TickBatch) -> None:
        sym = records["sym"]
        scale, tick = self._scale[sym], self._tick[sym]
        for f in _PRICE_FIELDS:  # on the tick grid, then the shortest decimal form
            records[f] = np.round(np.round(records[f] / tick) * tick * scale) / scale

    def publish(
        self, batch: TickBatch, *, on_grid: bool = False, offset: int | None = None
    ) -> None:
        """Take a batch of records in event order; wake every subscriber it concerns.

        The hub keeps the batch in its history. With `on_grid` the caller promises prices are
        already on the tick grid in their shortest form and that it never writes to the batch
        again (`Market.step` output is): the hub then keeps it as it is, without a copy.
        `offset`: the stream offset of its first record when another hub numbers the stream (a
        bus gateway publishes at the producer's offsets); a jump restarts the history there.
        """
        if len(batch) == 0:
            return
        if offset is not None and offset != self.history.head:
            self._restart_history(offset)
        if batch.dtype != TICK_DTYPE:
            raise ValueError(f"a batch is an array of TICK_DTYPE records, got {batch.dtype}")
        if not on_grid:
            batch = np.array(batch, dtype=TICK_DTYPE, copy=True)
            self._normalise(batch)
        sym = batch["sym"].astype(np.intp)
        # The last record of each symbol wins: unique over the reversed batch finds it.
        ids, rev_idx = np.unique(sym[::-1], return_index=True)
        last = batch[len(batch) - 1 - rev_idx]
        self.lvc[ids] = last
        self.gen += 1
        self._changed_gen[ids] = self.gen
        self._ring[self.gen % self._ring_size] = ids
        self.history.append(batch, self.gen, ids, last["seq"].copy())
        old = self.history.newest(_FRAG_KEEP)
        if old is not None:  # what only in-step subscribers need goes, to keep history small
            old.frags = old.last_ids = old.last_seqs = None
        self._shared.clear()
        self._synced_take.clear()
        self._shared_all.clear()
        self._body_cache.clear()
        self.ticks_published += len(batch)
        self.batches_published += 1
        for sub in self._wild:
            sub.wake()
        by_sym = self._by_sym
        woken: set[Subscriber] = set()
        for i in ids.tolist():
            subs = by_sym[i]
            if subs:
                woken.update(subs)
        gen = self.gen
        for sub in woken:
            if not sub.news_gen:
                sub.news_gen = gen
            sub.wake()

    def resync(self, snapshot: TickBatch, *, epoch: str, offset: int | None) -> None:
        """The source lost updates (a bus gap): take its latest record per symbol and its epoch,
        restart the history at `offset`, and give every subscriber a snapshot next (`gap`)."""
        if len(snapshot) != len(self):
            raise ValueError("a resync snapshot must hold one record per symbol")
        lvc = np.array(snapshot, dtype=TICK_DTYPE, copy=True)
        self._normalise(lvc)
        self.lvc = lvc
        self.epoch = epoch
        self._restart_history(self.history.head if offset is None else offset)
        self.gen += 1
        self._changed_gen[:] = self.gen
        self._ring[self.gen % self._ring_size] = np.arange(len(self), dtype=np.intp)
        for sub in self._subs:
            sub.sent_gen = self.gen
            if sub.wildcard or sub.mask.any():
                sub.resync = True
                sub.wake()

    def _restart_history(self, offset: int) -> None:
        """An empty history whose next record has stream offset `offset`; cursors move there."""
        old = self.history
        self.history = History(old.window_ns / 1e9, old.max_bytes)
        self.history.head = offset
        for sub in self._subs:
            sub.cursor = sub.ahead_until = offset
            sub.news_gen, sub.synced = 0, False
            sub.sent_gen = self.gen
        self._shared.clear()
        self._synced_take.clear()
        self._shared_all.clear()
        self._body_cache.clear()

    # ------------------------------------------------------------------ subscribers

    def attach(self, wake: Callable[[], None]) -> Subscriber:
        sub = Subscriber(
            wake=wake, n_symbols=len(self), sent_gen=self.gen, cursor=self.history.head
        )
        self._subs.add(sub)
        return sub

    def detach(self, sub: Subscriber) -> None:
        self._unlink(sub)
        self._subs.discard(sub)

    def _unlink(self, sub: Subscriber) -> None:
        self._wild.discard(sub)
        for i in np.flatnonzero(sub.mask).tolist():
            self._by_sym[i].discard(sub)
        sub.mask[:] = False
        sub.wildcard = False

    def set_subscription(self, sub: Subscriber, wildcard: bool, ids: NDArray[np.intp]) -> None:
        """Replace the subscription. New symbols start from their current state (no backlog):
        either a snapshot delivers it, or the next update does."""
        new_mask = np.zeros(len(self), np.bool_)
        if wildcard:
            new_mask[:] = True
        else:
            new_mask[ids] = True
        added = new_mask & ~sub.mask
        self._unlink(sub)
        sub.wildcard = wildcard
        sub.mask = new_mask
        if wildcard:
            self._wild.add(sub)
        else:
            for i in np.flatnonzero(new_mask).tolist():
                self._by_sym[i].add(sub)
        sub.last_seq[added] = self.lvc["seq"][added]
        if added.any() and sub.cursor < self.history.head:
            sub.ahead_until = self.history.head  # their updates before now must not follow
        if not wildcard and sub.cursor < self.history.head and not sub.news_gen:
            # Behind (a take stops at max_take) and no longer `*`, whose wake-ups never set
            # news_gen: the kept symbols' updates from the cursor on are still owed.
            sub.news_gen = sub.sent_gen + 1
        # Callers take() first, so everything up to now is delivered: in sync if wildcard.
        sub.synced = wildcard and sub.sent_gen == self.gen

    def set_mode(self, sub: Subscriber, latest: bool) -> None:
        """Every update (False, the default) or the latest state per symbol (True)."""
        if sub.latest != latest:
            sub.latest = latest
            sub.synced = False

    def has_more(self, sub: Subscriber) -> bool:
        """Whether `take(sub)` may return more right now (a take stops at `max_take`)."""
        return sub.sent_gen < self.gen

    def caught_up(self) -> bool:
        """Some subscriber holds symbols, and every one has taken all there is for it.

        What a source paced by its readers (a replay at speed 0) waits for before its next step.
        """
        readers = 0
        for sub in self._subs:
            if sub.wildcard:
                behind = sub.sent_gen < self.gen if sub.latest else sub.cursor < self.history.head
            elif sub.mask.any():
                behind = bool(sub.news_gen)
            else:
                continue
            if behind:
                return False
            readers += 1
        return readers > 0

    def snapshot(self, sub: Subscriber, ids: NDArray[np.intp]) -> Pending:
        """The latest record of `ids`, now counted as delivered to `sub`."""
        records = self.lvc[ids]
        sub.last_seq[ids] = records["seq"]
        if sub.sent_gen != self.gen:  # it now holds states newer than its generation
            sub.synced = False
        if sub.cursor < self.history.head:
            sub.ahead_until = self.history.head
        return Pending(records, self._json_body(ids, records), 0, offset=sub.cursor)

    def resume(self, sub: Subscriber, epoch: str | None, offset: int) -> int | None:
        """Rewind `sub` (already subscribed) to stream position `offset` of `epoch`.

        Returns how many updates of its subscription follow from there (its next takes deliver
        them, in order), or None when the position is not recoverable (another epoch, or out of
        the window): then send a snapshot instead.
        """
        hist = self.history
        if epoch != self.epoch or not hist.covers(offset):
            return None
        sub.resumable = True
        # What it holds is each symbol's state as of `offset`: the seq before its first update
        # after `offset` (seqs go +1 per update), or the latest one if none came since.
        syms, seqs = [], []
        for entry in hist.entries_from(offset) if offset < hist.head else ():
            recs = entry.records[max(0, offset - entry.start) :]
            syms.append(recs["sym"])
            seqs.append(recs["seq"])
        sub.last_seq[sub.mask] = self.lvc["seq"][sub.mask]
        missed = 0
        if syms:
            sym, seq = np.concatenate(syms).astype(np.intp), np.concatenate(seqs)
            keep = sub.mask[sym]
            sym, seq = sym[keep], seq[keep]
            missed = len(sym)
            first_ids, first = np.unique(sym, return_index=True)
            sub.last_seq[first_ids] = seq[first] - 1
        sub.cursor = sub.ahead_until = offset
        sub.sent_gen = hist.gen_at(offset)
        sub.news_gen = sub.sent_gen + 1 if sub.sent_gen < self.gen else 0
        sub.synced = False
        return missed

    def take(self, sub: Subscriber) -> Pending | None:
        """What `sub` has not received yet (see the module docstring); None if nothing."""
        if sub.resync:
            sub.resync = False
            sub.cursor, sub.sent_gen = self.history.head, self.gen
            ids = np.flatnonzero(sub.mask) if not sub.wildcard else np.arange(len(self))
            return replace(self.snapshot(sub, ids), gap=True)
        if sub.latest or sub.cursor < self.history.oldest:
            return self._take_latest(sub)
        while sub.cursor < self.history.head:
            pending = self._take_all(sub)
            if pending is not None:
                return pending
        sub.sent_gen, sub.news_gen = self.gen, 0
        return None

    # ------------------------------------------------------------------ every update

    def _take_all(self, sub: Subscriber) -> Pending | None:
        start = sub.cursor
        sub.synced = False
        if sub.wildcard and sub.ahead_until <= start:
            taken = self._shared_all.get(start)
            if taken is None:
                taken = self._shared_all[start] = self._gather(sub, start)
            if len(taken.last_ids):
                sub.last_seq[taken.last_ids] = taken.last_seqs
            sub.cursor, sub.sent_gen = taken.pending.offset, taken.end_gen
            return taken.pending if len(taken.pending.records) else None
        if not sub.wildcard:
            hist = self.history
            if not sub.news_gen:  # none of its symbols changed since its last take
                sub.cursor, sub.sent_gen = hist.head, self.gen
                return None
            if sub.news_gen > sub.sent_gen + 1:  # skip the batches without its symbols
                start = sub.cursor = hist.entry(hist.index_of_gen(sub.news_gen)).start
        taken = self._gather(sub, start)
        if len(taken.last_ids):
            held = sub.last_seq[taken.last_ids]
            sub.last_seq[taken.last_ids] = np.maximum(held, taken.last_seqs)
        sub.cursor, sub.sent_gen = taken.pending.offset, taken.end_gen
        if sub.cursor >= self.history.head:
            sub.news_gen = 0
        return taken.pending if len(taken.pending.records) else None

    def _gather(self, sub: Subscriber, start: int) -> _Taken:
        """Every record of `sub`'s subscription from `start`, at most `max_take` scanned."""
        hist = self.history
        i, stop = hist.index(start), hist.stop()
        budget = self.max_take
        mask = None if sub.wildcard else sub.mask
        ahead = sub.ahead_until > start
        pieces: list[tuple[Entry, slice | NDArray[np.intp]]] = []
        chunks: list[TickBatch] = []
        end, end_gen = start, sub.sent_gen
        while i < stop and budget > 0:
            entry = hist.entry(i)
            lo = start - entry.start if start > entry.start else 0
            hi = min(len(entry.records), lo + budget)
            recs = entry.records[lo:hi]
            sel: slice | NDArray[np.intp] = slice(lo, hi)
            if mask is not None or ahead:
                sym = recs["sym"]
                keep = mask[sym] if mask is not None else np.ones(len(recs), np.bool_)
                if ahead:
                    keep &= recs["seq"] > sub.last_seq[sym]
                if not keep.all():
                    idx = np.flatnonzero(keep)
                    recs, sel = recs[idx], idx + lo
            if len(recs):
                pieces.append((entry, sel))
                chunks.append(recs)
            budget -= hi - lo
            end = entry.start + hi
            end_gen = entry.gen if hi == len(entry.records) else entry.gen - 1
            i += 1
        if len(chunks) == 1:
            records = chunks[0]
        elif chunks:
            records = np.concatenate([c.view(_RECORD) for c in chunks]).view(TICK_DTYPE)
        else:
            records = np.empty(0, TICK_DTYPE)
        last_ids, last_seqs = _last_per_symbol(pieces, records)
        pending = Pending(records, _Body(self, pieces), 0, offset=end)
        return _Taken(pending, end_gen, last_ids, last_seqs)

    def _entry_frags(self, entry: Entry) -> list[bytes]:
        """The JSON tick objects of a batch, encoded once while it is recent."""
        if entry.frags is not None:
            return entry.frags
        frags = p.tick_fragments(entry.records, self.names)
        if entry.gen > self.gen - _FRAG_KEEP:
            entry.frags = frags
        return frags

    # ------------------------------------------------------------------ latest state

    def _take_latest(self, sub: Subscriber) -> Pending | None:
        sub.cursor, sub.news_gen = self.history.head, 0
        if sub.sent_gen >= self.gen:
            return None
        if sub.synced:
            start = sub.sent_gen
            shared = self._synced_take.get(start)
            if shared is None:
                shared = self._take(sub)
                if shared is not None:
                    self._synced_take[start] = shared
            elif shared.ids is not None:
                sub.last_seq[shared.ids] = shared.records["seq"]
                sub.ticks_conflated += shared.conflated
            sub.sent_gen = self.gen
            return shared
        pending = self._take(sub)
        sub.synced = sub.wildcard  # after any take, a wildcard subscriber is in sync
        return pending

    def _take(self, sub: Subscriber) -> Pending | None:
        span = (sub.sent_gen, self.gen)
        ids = self._shared.get(span)
        if ids is None:
            ids = self._shared[span] = self._changed_since(sub.sent_gen)
        sub.sent_gen = self.gen
        if not sub.wildcard:
            ids = ids[sub.mask[ids]]
        seqs = self.lvc["seq"][ids]
        last = sub.last_seq[ids]
        fresh = seqs > last
        # Subscribers taking the same span of everything share one encoded body.
        key: tuple[int, int] | None = span if sub.wildcard else None
        if not fresh.all():  # e.g. a snapshot already delivered them
            ids, seqs, last = ids[fresh], seqs[fresh], last[fresh]
            key = None
        if ids.size == 0:
            return None
        conflated = int((seqs - last).sum()) - ids.size
        sub.last_seq[ids] = seqs
        sub.ticks_conflated += conflated
        records = self.lvc[ids]
        body = self._json_body(ids, records, key)
        return Pending(records, body, conflated, ids, self.history.head)

    def _changed_since(self, gen: int) -> NDArray[np.intp]:
        behind = self.gen - gen
        if behind == 1:
            return self._ring[self.gen % self._ring_size]
        if behind < self._ring_size // 4:  # past that, one scan of every symbol is cheaper
            ring, size = self._ring, self._ring_size
            return np.unique(np.concatenate([ring[g % size] for g in range(gen + 1, self.gen + 1)]))
        return np.flatnonzero(self._changed_gen > gen)

    # ------------------------------------------------------------------ JSON encoding

    def _json_body(
        self, ids: NDArray[np.intp], records: TickBatch, key: tuple[int, int] | None = None
    ) -> Callable[[], bytes]:
        """A lazy encoder of `records` (binary subscribers never pay for JSON). The shared
        fragment cache holds the hub's latest states, so once the hub has moved on, the body is
        encoded from the records themselves."""
        gen = self.gen

        def body() -> bytes:
            if self.gen == gen:
                return self._json_list(ids, key)
            return p.ticks_body(records, self.names)

        return body

    def _json_list(self, ids: NDArray[np.intp], key: tuple[int, int] | None = None) -> bytes:
        """The encoded list of tick objects for `ids`; each update encoded once per hub."""
        if key is not None and (body := self._body_cache.get(key)) is not None:
            return body
        stale = ids[self._frag_gen[ids] != self._changed_gen[ids]]
        if stale.size:
            frags = p.tick_fragments(self.lvc[stale], self.names)
            store = self._frags
            for i, frag in zip(stale.tolist(), frags, strict=True):
                store[i] = frag
            self._frag_gen[stale] = self._changed_gen[stale]
        store = self._frags
        body = p.join_fragments([store[i] for i in ids.tolist()])
        if key is not None:
            self._body_cache[key] = body
        return body

    def statistics(self) -> dict[str, int | float | str]:
        return {
            "symbols": len(self),
            "generation": self.gen,
            "ticks_published": self.ticks_published,
            "wildcard_subscribers": len(self._wild),
            "epoch": self.epoch,
            **self.history.statistics(),
        }


def _decimals(tick: NDArray[np.float64]) -> NDArray[np.intp]:
    """Decimal places of each tick size, at most 9: 0.01 -> 2, 0.25 -> 2, 0.005 -> 3, 5 -> 0.

    The market's own rule, so its prices pass through unchanged (0.25 needs two places).
    """
    places = np.arange(10)
    scaled = tick[:, None] * 10.0**places
    exact = np.abs(scaled - np.round(scaled)) <= 1e-9 * scaled
    found: NDArray[np.intp] = np.argmax(exact | (places == 9), axis=1)
    return found


def _last_per_symbol(
    pieces: list[tuple[Entry, slice | NDArray[np.intp]]], records: TickBatch
) -> tuple[NDArray[np.intp], NDArray[np.uint64]]:
    """Each symbol's last seq among `records` (taken from `pieces`), sorted by symbol."""
    if len(pieces) == 1:
        entry, sel = pieces[0]
        whole = isinstance(sel, slice) and sel.start == 0 and sel.stop == len(entry.records)
        if whole and entry.last_ids is not None and entry.last_seqs is not None:
            return entry.last_ids, entry.last_seqs  # a whole batch: computed once at publish
    if len(records) == 0:
        return np.empty(0, np.intp), np.empty(0, np.uint64)
    sym = records["sym"].astype(np.intp)
    ids, rev_idx = np.unique(sym[::-1], return_index=True)
    return ids, records["seq"][len(records) - 1 - rev_idx]
