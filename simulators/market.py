"""The simulated market: stylized facts of real equities, vectorised over symbols.

Generation runs on a fixed internal grid (arrivals in 100 ms cells, the price path in 10 ms steps)
in chunks computed ahead; `step(until_ns)` only releases the records whose event time has come. A
chunk is sized by the updates expected at the open (`_chunking.py`: one second for a few hundred
symbols, one 100 ms cell for thousands, 0.5 s with order books); a live server makes the next a
slice per step (`make_ahead`, `_ahead.py`), so a 1 ms step costs at most about a millisecond.
The output depends on the seed, universe, activity and chunk size, never on how often `step` is
called, nor on slices made ahead. Event times are uniform inside their cell.
`Market.measure_load()` says what the model costs on this machine at the open, so a server can
refuse a universe it cannot generate in real time.

Per chunk, for all symbols at once (the only Python loops run over cells: the Hawkes recursion,
and laying out each cell's events in time order, which spares a sort; and over 10 ms steps to
sum a wide universe's price path, a row at a time):
- efficient log-price: market factor x beta + sector factor + idiosyncratic diffusion, Student-t
  jumps, and the impact of each trade (buys up, sells down);
- volatility: superposed Ornstein-Uhlenbeck log-volatility components (10 min to a session) for the
  market and each symbol, plus a leverage term (market down moves raise market volatility), and an
  intraday U-shape;
- arrivals: Hawkes self-exciting trades (branching ratio `HAWKES_ETA`, decay `HAWKES_TAU_S`) on an
  intraday U-shaped baseline scaled by volatility; quote refreshes in between;
- quotes in whole ticks: spread S >= 1 tick grows with volatility (widest at the open),
  `bid = round(P/tick - S/2)`, `ask = bid + S`; a trade prints at the quote in force before it
  (buy at the ask, sell at the bid); sizes are round lots with a Pareto tail (exponent ~1.5) and
  some odd lots; volume accumulates from the start of the run; quoted sizes are geometric.

Session clock: `session="6.5h"` (default) runs back-to-back trading sessions of 6.5 hours from
`start_ns`, which is the open: the intraday shape restarts each session, an overnight return is
applied at each roll, and each symbol's first update of a session carries `TickFlag.OPEN`.
`session="24h"` trades around the clock with no intraday shape. numpy only; one `SeedSequence`
drives the path, with children for the per-symbol parameters and for each event's details. A
`scenario.Scenario` (`scenario=`) changes chunks as they are made (`_scenario_play.Play`): no
arrivals where a symbol is halted, price offsets, wider spreads, thinner books, a vol factor.
"""

from __future__ import annotations

import time
from dataclasses import replace as dc_replace
from functools import partial
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from . import book as bk
from ._ahead import Slices, advance, finish
from ._book_queue import BookQueue
from ._chunking import CHUNK_EVENTS as CHUNK_EVENTS
from ._chunking import CHUNK_S as CHUNK_S
from ._chunking import chunk_cells
from ._events import GRID_NS, Chunk, Events, Held, Symbols
from ._events import ODD_LOT_P as ODD_LOT_P  # model constants, imported from here
from ._events import QUOTE_DEPTH as QUOTE_DEPTH
from ._events import SIZE_TAIL as SIZE_TAIL
from ._model import CRYPTO_YEAR_S as CRYPTO_YEAR_S
from ._model import HAWKES_ETA as HAWKES_ETA
from ._model import HAWKES_TAU_S as HAWKES_TAU_S
from ._model import LEVERAGE as LEVERAGE
from ._model import LEVERAGE_TAU_S as LEVERAGE_TAU_S
from ._model import MKT_VOL_SD as MKT_VOL_SD
from ._model import MKT_VOL_TAUS_S as MKT_VOL_TAUS_S
from ._model import OWN_VOL_SD as OWN_VOL_SD
from ._model import OWN_VOL_TAUS_S as OWN_VOL_TAUS_S
from ._model import QUOTES_PER_TRADE as QUOTES_PER_TRADE
from ._model import SESSION_S as SESSION_S
from ._model import SPREAD_K as SPREAD_K
from ._model import TRADES_PER_S as TRADES_PER_S
from ._model import YEAR_S as YEAR_S
from ._model import Model
from ._scenario_play import Announcement, Play
from .scenario import STATUS_DTYPE, Scenario
from .ticks import TICK_DTYPE, TickBatch
from .universe import Universe


class Market(Model):
    """A seeded market over `universe`; see the module docstring for the model (`_model.py`)."""

    def __init__(
        self,
        universe: Universe,
        seed: int = 0,
        start_ns: int = 0,
        *,
        activity: float = 1.0,
        session: Literal["6.5h", "24h"] = "6.5h",
        chunk_s: float | None = None,
        book_depth: int | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        if book_depth is not None:
            bk.check_depth(book_depth)
        if activity <= 0:
            raise ValueError(f"activity must be > 0, got {activity}")
        if session not in ("6.5h", "24h"):
            raise ValueError(f"session must be '6.5h' or '24h', got {session!r}")
        self.universe = universe
        self.activity = activity
        self.session = session
        cells = chunk_cells(chunk_s, self.expected_rate(), book_depth is not None)
        self._chunk_cells = cells  # generation granularity; part of what the seed reproduces
        self.now_ns = start_ns
        self.start_ns = start_ns
        ss = np.random.SeedSequence(seed)
        ref_seq, events_seq = ss.spawn(2)
        self._rng = np.random.default_rng(ss)  # the market's path: volatility, diffusion, arrivals
        # Each event's details (when in its cell, side, size, spread noise) come from their own
        # stream, so how `_events` draws them never changes the market's path for a seed.
        self._events_rng = np.random.default_rng(events_seq)
        (book_seq,) = ss.spawn(1)  # a third child: the first two draw what they always drew
        n = len(universe)
        self._n = n
        ref = np.random.default_rng(ref_seq)  # static per-symbol draws, in this order
        self._parameters(universe, ref)
        self._open_state(ref, start_ns)
        self.book: bk.Book | None = None
        self._books = BookQueue(self._units, self._scale)  # level updates, released as records
        if book_depth is not None:
            prices = (self._units, self._scale)  # level prices as ticks make theirs
            self.book = bk.Book(self._lot, book_depth, np.random.default_rng(book_seq), prices)
            self._last["bid_size"] = self.book.sizes[:, 0, 0]
            self._last["ask_size"] = self.book.sizes[:, 1, 0]
        # a scenario (scenario.py) changes chunks as they are made; None leaves every byte as is
        self.play: Play | None = None
        self._halted = np.zeros((0, n), bool)  # the chunk's halted cells, when a scenario plays
        self._vol_sym: NDArray[np.float64] | None = None  # the chunk's vol factor per symbol
        if scenario is not None:
            day_s = SESSION_S if session == "6.5h" else 86_400.0
            self.play = Play(scenario, start_ns, day_s, GRID_NS, n)
            self.play.announce(scenario, start_ns, day_s)
        # a chunk's events read these arrays and update the state ones in place
        static = (self._lot, self._impact, self._tick, self._spread_k, self._sigma, self._units)
        state = (self._x, self._bid, self._ask, self._last_tk, self._last_sz, self._volume)
        sy = Symbols(*static, self._scale, *state, self._seq, self._opened, self._last)
        self._events = Events(sy, self._events_rng, cells, self.book, self.play)
        self._making: Slices[_Made] | None = None  # the next chunk, a slice per step (`_ahead`)
        self._made: _Made | None = None  # or the next chunk made, not due yet
        self.steps_make_ahead = False  # True: a step that makes no chunk makes a slice ahead

    # ------------------------------------------------------------------ public

    @property
    def chunk_s(self) -> float:
        """Seconds of market made at a time (part of what the seed reproduces)."""
        return self._chunk_cells * GRID_NS / 1e9

    def expected_rate(self) -> float:
        """Updates per second expected at the busiest time of a session (the open).

        Trades at the Hawkes stationary rate times the intraday peak, plus quote refreshes;
        volatility moves it by tens of percent either way.
        """
        peak = self._peak_arrivals()
        trades = TRADES_PER_S * self.activity * float(self.universe.activity.sum())
        return trades * (1 + QUOTES_PER_TRADE) * peak

    def _peak_arrivals(self) -> float:
        """The intraday arrival multiplier at its highest: the open."""
        open_s: NDArray[np.float64] = np.zeros(1)
        return float(self._intraday(open_s)[0][0])

    def measure_load(self, sim_s: float = 0.2, *, symbols: int | None = None) -> float:
        """CPU seconds this machine needs per simulated second at the open, for this model.

        Generates `sim_s` (at least one chunk) of a twin market, same universe, activity and
        chunk size, from an open with its trades already at their steady rate (a fresh market
        ramps up over ~10 s); this market is untouched. Above 1.0 the model alone cannot keep up
        in real time; a server also spends time sending, so it should refuse well before that.

        With `symbols`, the twin trades an even sample of at most that many symbols and the
        figure is scaled by the updates expected: milliseconds instead of a second at 65,536
        symbols, and low by up to ~1.5x for big universes (their arrays no longer fit in cache),
        so a figure over a limit is over it, and one under it deserves a full measure.
        """
        universe = self.universe
        if symbols is not None and symbols < len(universe):
            if symbols < 1:
                raise ValueError(f"symbols must be at least 1, got {symbols}")
            universe = _sample(universe, symbols)
        twin = Market(
            universe,
            seed=0,
            start_ns=0,
            activity=self.activity,
            session=self.session,
            chunk_s=self.chunk_s,
            book_depth=None if self.book is None else self.book.depth,
        )
        peak = self._peak_arrivals()
        twin._excite[:] = twin._mu * peak * HAWKES_ETA / (1 - HAWKES_ETA)  # stationary Hawkes
        until_ns = max(round(sim_s * 1e9), self._chunk_cells * GRID_NS)
        # this thread's CPU only: a bus writer or a probe in another thread is not the model's
        cpu = time.thread_time()
        twin.step(until_ns)
        load = (time.thread_time() - cpu) * 1e9 / until_ns
        return load * self.expected_rate() / twin.expected_rate()

    def snapshot(self) -> TickBatch:
        """Latest released record per symbol (index = symbol id)."""
        snap = self._last.copy()
        released = self._pending[: self._cursor]
        if len(released):
            ids, rev = np.unique(released["sym"][::-1], return_index=True)  # the last one wins
            snap[ids] = released[len(released) - 1 - rev]
        return snap

    def statuses(self) -> NDArray[np.void]:
        """The scenario's status changes (`scenario.STATUS_DTYPE`) up to now, not taken yet.

        Halts and resumptions in time order; empty without a scenario. `play.status` holds each
        symbol's status as of the last call.
        """
        if self.play is None:
            return np.empty(0, STATUS_DTYPE)
        return self.play.release(self.now_ns)

    def scenario_changes(self) -> list[Announcement]:
        """The scenarios that started or ended up to now, not taken yet (time order): the one
        of `scenario=` at the start, each `start_scenario`'s at its time 0, and each again when
        its last effect is over (never, for one that lasts to the end), once its time is made."""
        if self.play is None:
            return []
        return self.play.released_announcements(min(self.now_ns, self._made_ns() - 1))

    def _made_ns(self) -> int:
        return self.start_ns + self._cell * GRID_NS  # the first 0.1 s not made yet

    def start_scenario(self, scenario: Scenario) -> float:
        """Play `scenario` live, with the one playing (if any): its times count from the first
        0.1 s not made yet (returned, in seconds from now), as `serve --scenario`'s count from
        the start. Records already made (at most two chunks ahead) stay as they are."""
        if self._making is not None:  # made ahead from here on no more: see `make_ahead`
            self._made, self._making = finish(self._making), None
        made_ns = self._made_ns()
        offset_s = (made_ns - self.start_ns) / 1e9
        shifted = tuple(dc_replace(e, at_s=e.at_s + offset_s) for e in scenario.events)
        old = self.play
        events = shifted if old is None else (*old.scenario.events, *shifted)
        merged = dc_replace(scenario, events=events)
        day_s = SESSION_S if self.session == "6.5h" else 86_400.0
        if old is None:
            self.play = Play(merged, self.start_ns, day_s, GRID_NS, self._n)
        else:
            self.play = old.continued(merged, day_s)
        self.play.announce(scenario, made_ns, day_s)
        self._events.play = self.play
        return (made_ns - self.now_ns) / 1e9

    def step(self, until_ns: int, *, max_chunks: int | None = None) -> TickBatch:
        """Every record with event time in (now, until_ns], in event order.

        Returns a view of the chunk generated ahead (records are never written after they are
        made), so a 1 ms step costs a binary search and a slice. With `max_chunks`, a step
        makes at most that many chunks and stops at the end of the last one: a caller that fell
        behind gets a bounded batch and finds `now_ns < until_ns` (its lag) instead of one call
        whose batch, time and memory grow with the lag. The records are the same either way.
        With books on, the level updates of the span are skipped (`step_book` returns them).
        """
        return self._advance(until_ns, max_chunks, None)

    def step_book(
        self, until_ns: int, *, max_chunks: int | None = None
    ) -> tuple[TickBatch, bk.LevelBatch]:
        """`step`, and the book's level updates of the same span (`book.LEVEL_DTYPE`).

        Applied in order to `book_snapshot()` taken before, the updates give the books after;
        a symbol's updates at one ts come before its tick of that ts. Needs `book_depth`.
        """
        if self.book is None:
            raise ValueError("this market has no books: make it with book_depth=N")
        parts: list[bk.LevelBatch] = []
        ticks = self._advance(until_ns, max_chunks, parts)
        if not parts:
            return ticks, np.empty(0, bk.LEVEL_DTYPE)
        return ticks, parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _advance(
        self, until_ns: int, max_chunks: int | None, book: list[bk.LevelBatch] | None
    ) -> TickBatch:
        if until_ns <= self.now_ns:
            return np.empty(0, TICK_DTYPE)
        if max_chunks is not None and max_chunks < 1:
            raise ValueError(f"max_chunks must be at least 1, got {max_chunks}")
        done: list[TickBatch] = []
        made = 0
        while self._next_ns < until_ns:  # the pending chunk ends before until_ns: release it all
            if made == max_chunks:
                until_ns = self._next_ns  # behind: release up to the end of what is made
                break
            made += 1
            if self._cursor < len(self._pending):
                done.append(self._pending[self._cursor :])
            self._books.release(None, book)
            self._retire()
            self._next_chunk()
        if not made and self.steps_make_ahead:
            self.make_ahead()
        self.now_ns = until_ns
        cut = int(self._pending_ts.searchsorted(until_ns, "right"))
        out = self._pending[self._cursor : cut]
        self._cursor = cut
        if self.book is not None:
            self._books.release(until_ns, book)
        if done:
            done.append(out)
            out = np.concatenate([d.view(_RECORD) for d in done]).view(TICK_DTYPE)
        return out

    def book_snapshot(self) -> NDArray[np.void]:
        """Every symbol's book now (`book.ladder_dtype(depth)`, index = symbol id).

        The state the released level updates lead to: the chunk's first books with every
        released update applied, around the latest released quote.
        """
        if self.book is None:
            raise ValueError("this market has no books: make it with book_depth=N")
        ticks = self.snapshot()
        bid = np.round(ticks["bid"] * self._scale / self._units).astype(np.int64)
        ask = np.round(ticks["ask"] * self._scale / self._units).astype(np.int64)
        out = self._books.ladders(self.book, (bid, ask), (self._bid, self._ask))
        out["ts"] = ticks["ts"]
        return out

    def _next_chunk(self) -> None:
        """The next chunk becomes the pending one: made ahead, or (the rest) made now."""
        made = self._made or finish(self._making or self._chunk())
        self._made = self._making = None
        self._pending, self._pending_last, held, self._next_ns = made
        self._pending_ts = self._pending["ts"].copy()
        self._cursor = 0
        if self.book is not None:  # nothing is made ahead yet: the books are this chunk's end
            sizes, bid, ask = self.book.sizes.copy(), self._bid.copy(), self._ask.copy()
            levels, start = held or (self._books.pending[:0], (sizes, bid, ask))
            self._books.hold(levels, start, self.book.seq.copy())

    def make_ahead(self) -> None:
        """A slice of the next chunk (~1 ms at most): a live server's, once a step's records are
        sent (or a step's, with `steps_make_ahead`); a batch run makes none, which is cheaper.
        Never while a scenario plays (its fat fingers read the released records)."""
        if self._made is None and (self._making is not None or self.play is None):
            self._making = self._making or self._chunk()
            done, made = advance(self._making)
            if done:
                self._made, self._making = made, None

    def _retire(self) -> None:
        """Fold the fully released pending chunk into the snapshot: its last record per symbol."""
        ids = np.flatnonzero(self._pending_last >= 0)
        self._last.view(_RECORD)[ids] = self._pending.view(_RECORD).take(self._pending_last[ids])

    def _chunk(self) -> Slices[_Made]:
        """A chunk in slices (`_ahead`): the records in event order, more in `_Made`.

        Slow state (volatility, leverage) moves once per chunk with exact decays; diffusion is
        drawn for all cells at once; the Hawkes recursion loops over cells, and `_events.Events`
        turns the counts into records. The steps draw from the market's stream in this order.
        """
        dt, cells = GRID_NS / 1e9, self._chunk_cells
        t0_ns = self.start_ns + self._cell * GRID_NS
        self._cell += cells
        t_s = self._roll_session((t0_ns - self.start_ns) / 1e9)
        cells_s = (t_s + dt * np.arange(cells)).astype(np.float64, copy=False)
        arrivals_u, vol_u = self._intraday(cells_s)
        play, t0_rel = self.play, t0_ns - self.start_ns
        if play is not None and play.vol:
            vol_u = vol_u * play.vol_factor(t0_rel, cells)
        mkt_vol, own_vol = self._volatility(cells * dt)
        self._vol_sym = None if play is None else play.vol_symbols(t0_rel, cells)
        path = self._path(vol_u, mkt_vol, own_vol)
        trading = None if play is None else self._trading(play, path, t0_ns)
        n_tr, n_q = self._arrivals(arrivals_u, mkt_vol, own_vol, trading)
        moved = partial(self._moved, path)
        chunk = Chunk(t0_ns, n_tr, n_q, moved, own_vol, vol_u, self._vol_sym, self._halted)
        yield
        records, last, held = yield from self._events.make(chunk)
        self._x += self._moved_by_end(path)
        return records, last, held, t0_ns + cells * GRID_NS


def _sample(universe: Universe, k: int) -> Universe:
    """`k` symbols spread evenly over `universe` (ids in order): a cheap stand-in for timing."""
    idx = np.arange(k) * len(universe) // k  # distinct, in order
    return Universe(
        symbols=tuple(universe.symbols[i] for i in idx),
        names=tuple(universe.names[i] for i in idx),
        sectors=tuple(universe.sectors[i] for i in idx),
        price=universe.price[idx],
        tick_size=universe.tick_size[idx],
        lot_size=universe.lot_size[idx],
        activity=universe.activity[idx],
        kinds=tuple(universe.kinds[i] for i in idx),
    )


# a chunk: records, each symbol's last in it (-1: none), level updates and books before, end
_Made = tuple[TickBatch, NDArray[np.intp], Held | None, int]
_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))  # records as opaque bytes: fast to move
