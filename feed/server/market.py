"""The stepped source: the simulated market or a replay, stepped by the generator task.

`MarketSource.run` is the generator: it steps the market to now every cadence and pushes the
batch into the server (publish, then deliver to the subscribers it woke), skipping ahead rather
than queueing when it falls behind. With nobody watching it steps rarely (`refresh` steps to now
before anything reads its state). A market behind the clock catches up one chunk per step and
says so once; a replay at speed 0 steps only when its readers have taken everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed.hub.books import Books
from tickwire.feed.server.config import ServerConfig
from tickwire.feed.server.roles import Feed, Opening
from tickwire.simulators import Market, Universe
from tickwire.simulators.replay import Replay
from tickwire.simulators.scenario import Scenario
from tickwire.simulators.ticks import TickBatch

log = logging.getLogger("tickwire.server")

IDLE_STEP_S = 0.05  # with no subscriber, step the market this rarely (refresh catches up)
# Chunks the market may make per step: for big universes one is a 100 ms cell (~0.1 s of CPU at
# 20,000 symbols), so a handshake waits for at most about one chunk.
MAX_CHUNKS = 1
LAG_WARN_S, LAG_OK_S = 1.0, 0.2  # market behind the clock: warn past this, clear under that
BEHIND_YIELD = 0.25  # behind, the market gets at most 80% of the time, the rest the others


def make_market(config: ServerConfig, start_ns: int) -> Market:
    """The simulated market `config` asks for, opening at event time `start_ns`."""
    return Market(
        config.universe or Universe.default(),
        seed=config.seed,
        start_ns=start_ns,
        activity=config.activity,
        session=config.session,
        scenario=config.scenario,
        book_depth=config.book_depth or None,
    )


class MarketSource:
    """A market (or a replay) as a server's source."""

    def __init__(
        self,
        config: ServerConfig,
        market: Market | Replay | None = None,
        *,
        start_ns: int | None = None,
        start_s: float | None = None,
        reorder: Callable[[TickBatch], TickBatch] | None = None,
        epoch: str | None = None,
    ) -> None:
        """`market`: None makes one from `config` (its universe, seed, activity and session).
        `start_ns`: the event time at start (default: the wall clock), e.g. to replay a given
        minute; `start_s`: the trio time at which it held (default: now). `reorder`: puts each
        stepped batch in the order its readers will see it (a bus producer: the order gateways
        rebuild from the shards), before any sink numbers it.
        `epoch`: this run of the stream (a bus producer's); None: the hub draws one."""
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        # when event time was start_ns: taken before any build, so event time keeps to the clock
        self.start_s = trio.current_time() if start_s is None else start_s
        self.market: Market | Replay = market or make_market(config, self.start_ns)
        self.epoch = epoch
        self.activity = config.activity
        self.cadence_s = config.cadence_ms / 1000
        self.reorder = reorder
        self._feed: Feed | None = None
        self._idle: trio.CancelScope | None = None  # the idle sleep, while nobody watches
        self._lagging = False  # behind the clock (logged once, until it has caught up)
        self._target_ns = 0  # where the last step of the market was asked to go
        self._finished = False  # a replay's end: logged once; /readyz says so from then on
        self.books: Books | None = None  # fed by every step, before its ticks are published
        # Also handed each step's level updates, before its ticks (a bus producer's sink).
        self.on_levels: Callable[[NDArray[np.void]], None] | None = None
        market = self.market
        if market.book is not None:  # the market's books, or a replay's recorded ones
            u = market.universe
            keep_ns = int((config.max_lag_s or config.history_s) * 1e9)  # further behind: resync
            names = np.array(u.symbols, dtype=object)
            snap = market.book_snapshot
            self.books = Books(names, u.tick_size, market.book.depth, snap, keep_ns)

    def open(self) -> Opening:
        snapshot = self.market.snapshot()
        return Opening(
            self.market.universe,
            snapshot,
            self.start_ns,
            epoch=self.epoch,
            start_s=self.start_s,
            books=self.books,
        )

    @property
    def paced(self) -> bool:
        return isinstance(self.market, Replay) and self.market.paced_by_readers

    @property
    def finished(self) -> bool:
        return self._finished

    def not_ready(self) -> str | None:
        return None

    def statistics(self) -> dict[str, Any]:
        return {} if self.books is None else self.books.statistics()

    def wake(self) -> None:
        """Step at the cadence from now on if someone wants it (e.g. a gateway subscribed)."""
        if self._idle is not None:
            self._idle.cancel()

    def refresh(self) -> None:
        """Before a snapshot or stats: if the market is stepping rarely, step it to now."""
        if self._idle is not None and self._feed is not None:
            batch = self._step(self._feed)
            if batch is not None:
                self._publish(self._feed, batch)
            self._idle.cancel()  # and resume the cadence if a subscription starts

    async def run(
        self, feed: Feed, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The generator: step the market every cadence, publish, deliver."""
        self._feed = feed
        cadence_s = self.cadence_s
        next_s = trio.current_time()
        task_status.started()
        while True:
            t = time.perf_counter()
            batch = self._step(feed)
            if batch is not None:
                # Market.step's (and a replay's) records are on the tick grid, never written again.
                self._publish(feed, batch)
            step_s = time.perf_counter() - t
            await feed.deliver(batch, step_s)
            behind = self._note_lag()
            if not behind and isinstance(self.market, Market):
                self.market.make_ahead()  # a slice of the next chunk, ~1 ms at most
            if behind:
                # Behind the clock, the step made a whole chunk. The other tasks get a share of
                # the time, over many scheduler passes: a handshake needs several, and one pass
                # per chunk made it wait seconds.
                if feed.watched:
                    feed.overrun()
                await trio.sleep(step_s * BEHIND_YIELD)
                next_s = trio.current_time()
                continue
            if not feed.wanted:
                # Nobody watches: the market is deterministic whatever the step size, so step
                # rarely; `refresh` steps to now before anything reads its state. The history
                # keeps every update meanwhile, for clients that come back and resume.
                with trio.CancelScope() as self._idle:
                    await trio.sleep(IDLE_STEP_S)
                self._idle = None
                next_s = trio.current_time()
                continue
            next_s += cadence_s
            now = trio.current_time()
            if now > next_s + cadence_s:
                # Behind by more than a whole cadence: skip ahead (the next step covers the
                # missed time in one bigger batch) instead of queueing.
                feed.overrun()
                next_s = now
            await trio.sleep_until(next_s)

    def start_scenario(self, scenario: Scenario) -> float | str:
        """Play `scenario` live (`POST /admin/scenario`): seconds until its time 0, or why not."""
        if not isinstance(self.market, Market):
            return "this server replays recorded data: no market to play a scenario on"
        self.refresh()  # an idle market steps to now first: the scenario starts from now
        return self.market.start_scenario(scenario)

    @property
    def has_statuses(self) -> bool:
        """Whether the market plays a scenario: it halts and resumes symbols."""
        return isinstance(self.market, Market) and self.market.play is not None

    def _publish(self, feed: Feed, batch: TickBatch) -> None:
        """Publish `batch`; with a scenario, its status changes where they fall among the
        records (a change at ts t after every record before t, before every one from t)."""
        if not self.has_statuses:
            feed.publish(batch)
            return
        assert isinstance(self.market, Market)
        statuses, bands = self.market.statuses(), self.market.bands()
        scenarios = self.market.scenario_changes()
        if not len(statuses) and not len(bands) and not scenarios:
            feed.publish(batch)
            return
        # (ts, order at one ts: a scenario's start, the statuses and bands, its end; kind, i)
        due = [(int(ts), 1, 0, i) for i, ts in enumerate(statuses["ts"].tolist())]
        due += [(int(ts), 1, 1, i) for i, ts in enumerate(bands["ts"].tolist())]
        due += [(a.ts, 0 if a.active else 2, 2, k) for k, a in enumerate(scenarios)]
        due.sort()
        cuts = np.searchsorted(batch["ts"], [d[0] for d in due], side="left").tolist()
        done, held = 0, (list[int](), list[int]())  # statuses, bands
        for (_, _, kind, i), cut in zip(due, cuts, strict=True):
            if cut > done or kind == 2:
                self._held(feed, statuses, bands, held)
                if cut > done:
                    feed.publish(batch[done:cut])
                    done = cut
            if kind == 2:
                a = scenarios[i]
                feed.publish_scenario(a.name, a.active, a.ts)
            else:
                held[kind].append(i)
        self._held(feed, statuses, bands, held)
        if done < len(batch):
            feed.publish(batch[done:])

    @staticmethod
    def _held(
        feed: Feed,
        statuses: NDArray[np.void],
        bands: NDArray[np.void],
        held: tuple[list[int], list[int]],
    ) -> None:
        """Publish the status changes and band changes held (emptying `held`)."""
        if held[0]:
            feed.publish_statuses(statuses[held[0]])
        if held[1]:
            feed.publish_bands(bands[held[1]])
        held[0].clear()
        held[1].clear()

    def _step(self, feed: Feed) -> TickBatch | None:
        """Step the market (or a replay) to now. A replay at speed 0 goes as fast as the clients
        read: it steps only once every subscriber has taken all there is (None: not stepped)."""
        if self.paced and not feed.caught_up():
            return None
        now_ns = feed.now_ns()
        if isinstance(self.market, Market):
            # One chunk per step at most: a market behind the clock catches up in bounded
            # batches, with handshakes and sends in between, instead of one batch (and one
            # stall) that grows with its lag. Its event time then trails the clock (`_note_lag`).
            if self.books is not None:  # the flush's level updates go first: see hub.books
                batch, levels = self.market.step_book(now_ns, max_chunks=MAX_CHUNKS)
                self._levels(levels)
            else:
                batch = self.market.step(now_ns, max_chunks=MAX_CHUNKS)
            self._target_ns = now_ns
        elif self.books is not None:  # a replay with books: the same order as the market's
            batch, levels = self.market.step_book(now_ns)
            self._levels(levels)
        else:
            batch = self.market.step(now_ns)
        if self.reorder is not None:
            batch = self.reorder(batch)
        if not self._finished and isinstance(self.market, Replay) and self.market.finished:
            self._finished = True
            end = datetime.fromtimestamp(self.market.now_ns / 1e9, UTC).isoformat()
            log.info(
                "replay finished: all %d ticks served, the data ends at %s; /readyz answers 503"
                " from now on, clients keep the last state (--loop starts over at the end)",
                self.market.released,
                end,
            )
        return batch

    def _levels(self, levels: NDArray[np.void]) -> None:
        assert self.books is not None
        self.books.publish(levels)
        if self.on_levels is not None:
            self.on_levels(levels)

    def book_bytes(self) -> bytes:
        """Every symbol's book now (`book_snapshot` records), for a bus producer's gateways."""
        assert self.market.book is not None
        return self.market.book_snapshot().tobytes()

    def _note_lag(self) -> bool:
        """Whether the last step fell short of now; logs once when it falls behind by more than
        `LAG_WARN_S` (the machine cannot generate this universe in real time) and once when it
        has caught up again."""
        if not isinstance(self.market, Market):
            return False  # a replay steps to now in one go: it cannot fall behind this way
        lag_s: float = (self._target_ns - self.market.now_ns) / 1e9  # 0: the last step got there
        if lag_s > LAG_WARN_S and not self._lagging:
            self._lagging = True
            log.warning(
                "the market is %.1f s behind real time: this machine cannot generate %d symbols "
                "at activity %g as fast as the clock; ticks keep their event time, clients get "
                "them late (fewer --symbols or a lower --activity fix it)",
                lag_s,
                len(self.market.universe),
                self.activity,
            )
        elif lag_s < LAG_OK_S and self._lagging:
            self._lagging = False
            log.info("the market has caught up with real time")
        return lag_s > 0
