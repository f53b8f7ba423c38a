"""The fan-out core: a last-value cache, change generations, and each subscriber's pending set.

Publishing a batch is O(batch) plus one wake-up per affected subscriber: it stores the latest
record of each changed symbol, stamps the symbols with a new generation and remembers which symbols
changed in it (a ring of recent generations). A subscriber remembers only the generation it has
sent up to and the seq it last delivered per symbol; `take()` gathers the latest record of every
subscribed symbol that changed since. A slow subscriber therefore never holds more than one pending
record per symbol (conflation, bounded by its subscription, never by time), and the generator never
waits for anyone. Each update is encoded once for all JSON subscribers (per-symbol fragment cache),
and subscribers at the same generation share one encoded body. No trio here: waking is a callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE, TickBatch
from tickwire.simulators.universe import Universe

from . import protocol as p

_PRICE_FIELDS = ("bid", "ask", "last")


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection's view of the hub. Only its writer task touches it (besides `wake`)."""

    wake: Callable[[], None]
    n_symbols: int
    wildcard: bool = False
    mask: NDArray[np.bool_] = field(init=False)
    sent_gen: int = 0  # every change up to this generation has been taken
    last_seq: NDArray[np.uint64] = field(init=False)  # per symbol, the seq last delivered
    ticks_conflated: int = 0
    # Wildcard, and last_seq is every symbol's seq as of sent_gen: then its next take is the
    # same for every such subscriber at the same generation, and is computed once for all.
    synced: bool = False

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


class Hub:
    """Latest record per symbol, and who needs which changes."""

    def __init__(self, universe: Universe, initial: TickBatch, *, ring: int = 4096) -> None:
        n = len(universe)
        if len(initial) != n:
            raise ValueError("initial snapshot must hold one record per symbol")
        self.names = np.array(universe.symbols, dtype=object)
        decimals = np.maximum(0, np.ceil(-np.log10(universe.tick_size) - 1e-9)).astype(int)
        self._tick = np.asarray(universe.tick_size, np.float64)
        self._scale = 10.0**decimals  # prices go out as round(p * scale) / scale: shortest repr
        self.lvc: TickBatch = np.array(initial, dtype=TICK_DTYPE, copy=True)
        self._normalise(self.lvc)
        self.gen = 0
        self._changed_gen = np.zeros(n, np.int64)
        self._ring_size = ring
        self._ring: list[NDArray[np.intp]] = [np.empty(0, np.intp)] * ring  # ids by gen % ring
        self._wild: set[Subscriber] = set()
        self._by_sym: list[set[Subscriber]] = [set() for _ in range(n)]
        self._frags: list[bytes] = [b""] * n  # JSON tick object per symbol...
        self._frag_gen = np.full(n, -1, np.int64)  # ...valid while this equals _changed_gen
        self._shared: dict[tuple[int, int], NDArray[np.intp]] = {}  # changed ids per span
        self._synced_take: dict[int, Pending] = {}  # by span start: what synced subs get
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

    def publish(self, batch: TickBatch) -> None:
        """Take a batch of records in event order; wake every subscriber it concerns."""
        if len(batch) == 0:
            return
        batch = np.array(batch, dtype=TICK_DTYPE, copy=True)
        self._normalise(batch)
        sym = batch["sym"].astype(np.intp)
        # The last record of each symbol wins: unique over the reversed batch finds it.
        ids, rev_idx = np.unique(sym[::-1], return_index=True)
        self.lvc[ids] = batch[len(batch) - 1 - rev_idx]
        self.gen += 1
        self._changed_gen[ids] = self.gen
        self._ring[self.gen % self._ring_size] = ids
        self._shared.clear()
        self._synced_take.clear()
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
        for sub in woken:
            sub.wake()

    # ------------------------------------------------------------------ subscribers

    def attach(self, wake: Callable[[], None]) -> Subscriber:
        return Subscriber(wake=wake, n_symbols=len(self), sent_gen=self.gen)

    def detach(self, sub: Subscriber) -> None:
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
        self.detach(sub)
        sub.wildcard = wildcard
        sub.mask = new_mask
        if wildcard:
            self._wild.add(sub)
        else:
            for i in np.flatnonzero(new_mask).tolist():
                self._by_sym[i].add(sub)
        sub.last_seq[added] = self.lvc["seq"][added]
        # Callers take() first, so everything up to now is delivered: in sync if wildcard.
        sub.synced = wildcard and sub.sent_gen == self.gen

    def snapshot(self, sub: Subscriber, ids: NDArray[np.intp]) -> Pending:
        """The latest record of `ids`, now counted as delivered to `sub`."""
        records = self.lvc[ids]
        sub.last_seq[ids] = records["seq"]
        if sub.sent_gen != self.gen:  # it now holds states newer than its generation
            sub.synced = False
        return Pending(records, self._json_body(ids, records), 0)

    def take(self, sub: Subscriber) -> Pending | None:
        """Everything `sub` has not received yet, latest state per symbol; None if nothing."""
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
        return Pending(records, self._json_body(ids, records, key), conflated, ids)

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

    def statistics(self) -> dict[str, int]:
        return {
            "symbols": len(self),
            "generation": self.gen,
            "ticks_published": self.ticks_published,
            "wildcard_subscribers": len(self._wild),
        }
