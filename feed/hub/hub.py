"""The fan-out core: every update in order by default, the latest state on request; history, epoch.

Publishing a batch is O(batch) plus one wake-up per affected subscriber: the batch joins the
history (recent batches addressed by stream offset, `history.py`), the latest record of each
changed symbol goes into the last-value cache, and the symbols are stamped with a new generation.

A subscriber keeps a cursor, a stream offset. In the default mode `take()` returns every record
since its cursor for its subscription, in event order, each exactly once (per-symbol seq +1), at
most `max_take` records per message. In latest mode (the client asked: `mode: latest` or a
throttle), or once it has fallen more than `max_lag_s` of event time behind the newest batch (or
out of the history window), it gets the latest record of each changed symbol instead: conflation,
counted in `ticks_conflated`. A subscriber that resumed is exempt from the lag bound until it
has the updates it asked for. So a subscriber's pending data is its cursor into the shared
history, bounded by the lag bound and the window; the generator never waits.

Speed: each update is encoded to JSON once for all JSON subscribers (per batch, lazily); every `*`
subscriber at the same cursor shares one take and one body; binary sends the batches' records as
they are. The `epoch` names this run of the stream: a resume needs the same epoch and an offset
still in the window (`resume`). No trio here: waking is a callback.

This module holds the hub's state and who is subscribed to what; the takes live beside it:
`every.py` (every update), `latest.py` (latest state), `jsonbody.py` (the JSON caches), and the
subscriber's own state is `subscriber.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.every import Taken, last_of, take_all
from tickwire.feed.hub.history import DEFAULT_MAX_BYTES, DEFAULT_WINDOW_S, History, pick
from tickwire.feed.hub.jsonbody import JsonCache
from tickwire.feed.hub.latest import Changes, take_latest
from tickwire.feed.hub.subscriber import Pending, Subscriber
from tickwire.simulators.ticks import TICK_DTYPE, TickBatch
from tickwire.simulators.universe import Universe

__all__ = ["DEFAULT_MAX_LAG_S", "MAX_TAKE", "Hub", "Pending", "Subscriber"]

_PRICE_FIELDS = ("bid", "ask", "last")
# Records per data message: a subscriber far behind (or resuming) catches up in messages of at
# most 64 KiB binary (~230 KiB JSON). A client handles a frame only once all of it arrived, so
# every record of a frame waits for the whole frame: with 8192 (~2 MiB JSON) a slow JSON reader
# at N=100 on 1500 symbols saw p50/p99 1.1-1.5/2.3-2.5 s, with 1024 0.63-0.67/1.2-1.3 s.
MAX_TAKE = 1024
# How far (event time) an every-update reader may fall behind the newest batch before it gets the
# latest state instead: about what a trader tolerates on a live screen, and far more than a
# reader that keeps up ever lags (one flush, a millisecond, plus what its socket holds).
DEFAULT_MAX_LAG_S = 1.0


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
        max_lag_s: float = DEFAULT_MAX_LAG_S,
        epoch: str | None = None,
    ) -> None:
        n = len(universe)
        if len(initial) != n:
            raise ValueError("initial snapshot must hold one record per symbol")
        self.epoch = epoch or secrets.token_hex(8)  # this run of the stream, for resumes
        self.names: NDArray[np.object_] = np.array(universe.symbols, dtype=object)
        self._tick = np.asarray(universe.tick_size, np.float64)
        decimals = _decimals(self._tick)
        self._scale = 10.0**decimals  # prices go out as round(p * scale) / scale: shortest repr
        self.lvc: TickBatch = np.array(initial, dtype=TICK_DTYPE, copy=True)
        self._normalise(self.lvc)
        self._lvc_raw = self.lvc.view(np.dtype((np.void, TICK_DTYPE.itemsize)))  # fast writes
        self.history = History(history_s, history_bytes)
        self.max_take = max_take
        if max_lag_s < 0:
            raise ValueError("the lag bound must be >= 0 (0: none)")
        self.max_lag_ns = int(max_lag_s * 1e9)  # 0: only the history window bounds a reader
        self.gen = 0  # the generation: how many batches were published
        self.changes = Changes(n, ring)  # which symbols each generation changed
        self.json = JsonCache(self.names, self.lvc, self.changes.changed_gen, self.history.derived)
        self.shared_all: dict[int, Taken] = {}  # by cursor: what `*` subscribers take
        self._wild: set[Subscriber] = set()
        self._subs: set[Subscriber] = set()  # every attached subscriber
        self._by_sym: list[set[Subscriber]] = [set() for _ in range(n)]
        self._named = 0  # symbols held by subscribers of named symbols, in all
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
        # The last record of each symbol wins.
        ids, at = last_of(batch["sym"].astype(np.intp), len(self))
        last = pick(batch, at)
        self._lvc_raw[ids] = last.view(self._lvc_raw.dtype)
        gen = self.gen = self.gen + 1
        self.changes.record(gen, ids)
        self.json.published(gen)
        self.history.append(batch, gen, ids, last["seq"].copy())
        self.shared_all.clear()
        self.ticks_published += len(batch)
        self.batches_published += 1
        for sub in tuple(self._wild):  # a wake-up may detach (a venue's last reader overflowed)
            sub.wake()
        if not self._named:  # (a loop over the batch's symbols for nobody)
            return
        by_sym = self._by_sym
        woken: set[Subscriber] = set()
        for i in ids.tolist():
            subs = by_sym[i]
            if subs:
                woken.update(subs)
        for sub in woken:
            sub.news(gen)
            sub.wake()

    def resync(self, snapshot: TickBatch, *, epoch: str, offset: int | None) -> None:
        """The source lost updates (a bus gap): take its latest record per symbol and its epoch,
        restart the history at `offset`, and give every subscriber a snapshot next (`gap`)."""
        if len(snapshot) != len(self):
            raise ValueError("a resync snapshot must hold one record per symbol")
        lvc = np.array(snapshot, dtype=TICK_DTYPE, copy=True)
        self._normalise(lvc)
        self.lvc[:] = lvc  # in place: the JSON cache reads the same array
        self.epoch = epoch
        self._restart_history(self.history.head if offset is None else offset)
        gen = self.gen = self.gen + 1
        self.changes.record(gen, np.arange(len(self), dtype=np.intp))  # every symbol changed
        self.json.published(gen)
        for sub in tuple(self._subs):
            sub.gap(gen)
            if sub.resync:
                sub.wake()

    def _restart_history(self, offset: int) -> None:
        """An empty history whose next record has stream offset `offset`; cursors move there."""
        self.history.restart(offset)
        for sub in self._subs:
            sub.restart(offset, self.gen)
        self.shared_all.clear()
        self.changes.synced_take.clear()

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
        if not self._subs:  # nobody reads: what the batches carry for readers goes now
            self.history.derived.clear()

    def _unlink(self, sub: Subscriber) -> None:
        self._wild.discard(sub)
        for i in sub.ids.tolist():
            self._by_sym[i].discard(sub)
        self._named -= len(sub.ids)
        sub.hold(False, np.empty(0, np.intp), np.empty(0, np.uint64))

    def set_subscription(self, sub: Subscriber, wildcard: bool, ids: NDArray[np.intp]) -> None:
        """Replace the subscription. New symbols start from their current state (no backlog):
        either a snapshot delivers it, or the next update does."""
        lvc_seq = self.lvc["seq"]
        if wildcard:  # a seq per symbol id: the kept symbols' own, the current one for the rest
            new_ids = np.empty(0, np.intp)
            if sub.wildcard:
                seqs, added = sub.last_seq, False
            else:
                seqs = lvc_seq.copy()
                seqs[sub.ids] = sub.last_seq
                added = len(sub.ids) < len(self)
        else:  # a seq per held symbol, aligned with the sorted ids
            new_ids = np.unique(ids).astype(np.intp, copy=False)
            seqs = lvc_seq[new_ids]
            kept, at = sub.find(new_ids)
            seqs[kept] = sub.last_seq[at[kept]]
            added = not kept.all()
        self._unlink(sub)
        sub.hold(wildcard, new_ids, seqs)
        if wildcard:
            self._wild.add(sub)
        else:
            for i in new_ids.tolist():
                self._by_sym[i].add(sub)
            self._named += len(new_ids)
        if added:
            sub.ahead(self.history.head)  # their updates before now must not follow
        if not wildcard and sub.cursor < self.history.head and not sub.news_gen:
            # Behind (a take stops at max_take) and no longer `*`, whose wake-ups never set
            # news_gen: the kept symbols' updates from the cursor on are still owed.
            sub.owed_since(sub.sent_gen)
        # Callers take() first, so everything up to now is delivered: in sync if wildcard.
        sub.in_sync(wildcard and sub.sent_gen == self.gen)

    def set_mode(self, sub: Subscriber, latest: bool) -> None:
        """Every update (False, the default) or the latest state per symbol (True)."""
        sub.set_latest(latest)

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
            elif len(sub.ids):
                behind = bool(sub.news_gen)
            else:
                continue
            if behind:
                return False
            readers += 1
        return readers > 0

    def snapshot(self, sub: Subscriber, ids: NDArray[np.intp]) -> Pending:
        """The latest record of `ids`, now counted as delivered to `sub`."""
        records = pick(self.lvc, ids)
        held, at = sub.find(ids)
        sub.deliver(at[held], records["seq"][held])
        if sub.sent_gen != self.gen:  # it now holds states newer than its generation
            sub.in_sync(False)
        sub.ahead(self.history.head)
        return Pending(records, self.json.of_latest(ids, records), 0, offset=sub.cursor)

    def resume(self, sub: Subscriber, epoch: str | None, offset: int) -> int | None:
        """Rewind `sub` (already subscribed) to stream position `offset` of `epoch`.

        Returns how many updates of its subscription follow from there (its next takes deliver
        them, in order), or None when the position is not recoverable (another epoch, or out of
        the window): then send a snapshot instead.
        """
        hist = self.history
        if epoch != self.epoch or not hist.covers(offset):
            return None
        # What it holds is each symbol's state as of `offset`: the seq before its first update
        # after `offset` (seqs go +1 per update), or the latest one if none came since.
        syms, seqs = [], []
        for entry in hist.entries_from(offset) if offset < hist.head else ():
            recs = entry.records[max(0, offset - entry.start) :]
            syms.append(recs["sym"])
            seqs.append(recs["seq"])
        everyone = np.arange(len(sub.last_seq), dtype=np.intp)
        sub.deliver(everyone, self.lvc["seq"] if sub.wildcard else self.lvc["seq"][sub.ids])
        missed = 0
        if syms:
            sym, seq = np.concatenate(syms).astype(np.intp), np.concatenate(seqs)
            keep, at = sub.find(sym)
            at, seq = at[keep], seq[keep]
            missed = len(at)
            first_at, first = np.unique(at, return_index=True)
            sub.deliver(first_at, seq[first] - 1)
        sub.rewind(offset, hist.head, hist.gen_at(offset), self.gen)
        return missed

    def take(self, sub: Subscriber) -> Pending | None:
        """What `sub` has not received yet (see the module docstring); None if nothing."""
        hist = self.history
        if sub.resync and sub.take_gap(hist.head, self.gen):  # the source lost updates:
            ids = np.arange(len(self), dtype=np.intp) if sub.wildcard else sub.ids
            return replace(self.snapshot(sub, ids), gap=True)  # a snapshot
        cursor = sub.cursor
        if (
            sub.latest
            or cursor < hist.oldest
            or (cursor < hist.last_start and self._too_far(sub))  # (in the newest: no lag)
        ):
            return take_latest(self, sub)
        while sub.cursor < hist.head:
            pending = take_all(self, sub)
            if pending is not None:
                return pending
        sub.advance(sub.cursor, self.gen)
        sub.caught_up()
        return None

    def _too_far(self, sub: Subscriber) -> bool:
        """Whether `sub`'s oldest undelivered update of its subscription is more than the lag
        bound behind the newest batch: then it gets the latest state (one check a take)."""
        hist = self.history
        # In the newest batch (a reader that keeps up), or catching up after a resume: no lag.
        if sub.cursor >= hist.last_start or not self.max_lag_ns or sub.cursor < sub.catch_up_to:
            return False
        if not sub.wildcard and not sub.news_gen:
            return False  # none of its symbols changed since its cursor
        if sub.wildcard or sub.news_gen <= sub.sent_gen + 1:
            lag = hist.lag_ns(sub.cursor, sub.sent_gen + 1)
        else:  # its first pending update is in a later batch than its cursor
            newest = hist.entry(hist.stop() - 1)
            lag = newest.last_ts - hist.entry(hist.index_of_gen(sub.news_gen)).last_ts
        return lag > self.max_lag_ns

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
