"""`FakeFeed`: a scripted, seeded stand-in for `tickwire.feed.Feed`, with no sockets.

Same requests and the same events (`Batch`, `Gap`, `Status`) as the client library, so the
dashboard's tests, snapshots and bench drive the real app. Its prices are its own small seeded
random walk (not the simulator's model, which may change), so snapshots stay stable. Test hooks
`drop()` and `restore()` play a server going away and coming back. Imports trio and numpy.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import trio

from tickwire.feed import Batch, Event, Gap, ProtocolError, Status
from tickwire.simulators import Universe
from tickwire.simulators.ticks import TICK_DTYPE, TickFlag


class FakeFeed:
    """Emits a batch every `1 / rate_hz` (trio time) for the subscribed symbols.

    `changing` is the fraction of subscribed symbols that move in each batch (1.0: all of them, as
    the bench wants). `preroll` batches are emitted at once after each subscribe, so a test sees
    a history without waiting; with `rate_hz=0` nothing else ever arrives (snapshots).
    """

    def __init__(
        self,
        refs: Sequence[dict[str, Any]] | None = None,
        *,
        seed: int = 0,
        rate_hz: float = 50.0,
        changing: float = 0.3,
        preroll: int = 0,
        rtt_s: float = 0.0012,
        wall_ns: Callable[[], int] = time.time_ns,
        url: str = "fake://tickwire",
    ) -> None:
        self.refs = list(refs) if refs is not None else Universe.default().reference()
        self.url = url
        self.encoding = "json"
        self.state = "connecting"
        self.welcome: dict[str, Any] = {"server": "tickwire/fake", "heartbeat_ms": 1000}
        self.last_message_s = -math.inf
        self.messages_received = self.ticks_received = 0
        self.conflated = self.lost = self.reconnects = 0
        self.requests: list[tuple[str, Any]] = []
        self.throttle_ms = 0
        self.mode = "all"  # what the app asked for; this fake sends the same batches either way
        self._rate_hz = rate_hz
        self._changing = changing
        self._preroll = preroll
        self._rtt_s = rtt_s
        self._wall_ns = wall_ns
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0xFA4E]))
        self._index = {r["symbol"]: int(r["id"]) for r in self.refs}
        self._names = np.array([r["symbol"] for r in self.refs], dtype=object)
        n = len(self.refs)
        self._tick = np.zeros(n, TICK_DTYPE)
        self._tick["sym"] = np.arange(n)
        tick = np.array([float(r.get("tick_size", 0.01)) for r in self.refs])
        start = np.array([float(r.get("price", 100.0)) for r in self.refs])
        self._tick_size = tick
        self._tick["bid"] = np.round(start / tick) * tick
        self._tick["ask"] = self._tick["bid"] + tick
        self._tick["last"] = self._tick["bid"]
        self._tick["bid_size"] = self._tick["ask_size"] = 300
        self._tick["flags"] = TickFlag.OPEN
        self._subs: list[str] = []
        self._seq = 0
        self._send, self._recv = trio.open_memory_channel[Event](math.inf)
        self._live = trio.Event()
        self._live.set()

    # ------------------------------------------------------------------ the Feed API

    @property
    def subscription(self) -> list[str]:
        return list(self._subs)

    def symbol_names(self) -> np.ndarray:
        return self._names

    async def subscribe(
        self, symbols: Sequence[str] | str, *, snapshot: bool = True, mode: str | None = None
    ) -> list[str]:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        self.requests.append(("subscribe", names))
        if mode is not None:
            self.mode = mode
        await self._wait_live()
        if names == ["*"]:
            names = list(self._index)
        unknown = [s for s in names if s not in self._index]
        if unknown:
            raise ProtocolError("unknown_symbol", f"unknown symbols: {', '.join(unknown)}", unknown)
        added = [s for s in names if s not in self._subs]
        self._subs.extend(added)
        if snapshot and added:
            ids = np.array([self._index[s] for s in added], np.intp)
            self._emit_batch("snapshot", self._tick[ids].copy())
        for _ in range(self._preroll):
            self._step()
        return self.subscription

    async def unsubscribe(self, symbols: Sequence[str] | str) -> list[str]:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        self.requests.append(("unsubscribe", names))
        await self._wait_live()
        self._subs = [] if names == ["*"] else [s for s in self._subs if s not in names]
        return self.subscription

    async def throttle(self, interval_ms: int) -> None:
        self.requests.append(("throttle", interval_ms))
        await self._wait_live()
        if not 0 <= interval_ms <= 60000:
            raise ProtocolError("bad_request", "interval_ms must be from 0 to 60000")
        self.throttle_ms = interval_ms

    async def symbols(self) -> list[dict[str, Any]]:
        await self._wait_live()
        return [dict(r) for r in self.refs]

    async def stats(self) -> dict[str, Any]:
        return {"ticks_sent": self.ticks_received}

    async def ping(self) -> float:
        await self._wait_live()
        return self._rtt_s

    def __aiter__(self) -> FakeFeed:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.state = "closed"
        self._send.close()

    # ------------------------------------------------------------------ test hooks

    def drop(self, retry_in_s: float = 2.0, error: str = "connection lost") -> None:
        """The server went away: report 'reconnecting' and stop data until `restore()`."""
        self.state = "reconnecting"
        self._live = trio.Event()
        self._send.send_nowait(Status("reconnecting", retry_in_s, error, 1))

    def restore(self, lost: int = 0) -> None:
        """The server is back: 'live', a reconnect `Gap`, a snapshot of the subscription."""
        self.state = "live"
        self.reconnects += 1
        self.lost += lost
        self._live.set()
        self._send.send_nowait(Status("live", attempt=1))
        self._send.send_nowait(Gap("reconnected", lost, (), None, 1.0))
        ids = np.array([self._index[s] for s in self._subs], np.intp)
        self._emit_batch("snapshot", self._tick[ids].copy())

    def restart(self, epoch: str = "run-2") -> None:
        """The server came back as a new run: 'live', a restart `Gap`, a fresh snapshot."""
        self.state = "live"
        self.reconnects += 1
        self.welcome = {**self.welcome, "epoch": epoch}
        self._live.set()
        self._send.send_nowait(Status("live", attempt=1))
        self._send.send_nowait(Gap("restarted", None, (), None, 1.0))
        ids = np.array([self._index[s] for s in self._subs], np.intp)
        self._emit_batch("snapshot", self._tick[ids].copy())

    def step(self, count: int = 1) -> None:
        """Emit `count` batches now (tests drive time themselves)."""
        for _ in range(count):
            self._step()

    # ------------------------------------------------------------------ generation

    async def _wait_live(self) -> None:
        await self._live.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.state = "live"
        self._send.send_nowait(Status("live"))
        task_status.started()
        if self._rate_hz <= 0:
            return
        interval = 1 / self._rate_hz
        next_s = trio.current_time()
        while True:
            await self._live.wait()
            self._step()
            next_s = max(next_s + interval, trio.current_time())
            await trio.sleep_until(next_s)

    def _step(self) -> None:
        if not self._subs or self.state != "live":
            return
        ids = np.array([self._index[s] for s in self._subs], np.intp)
        if self._changing < 1.0:
            ids = ids[self._rng.random(ids.size) < self._changing]
            if ids.size == 0:
                return
        rec = self._tick[ids].copy()
        tick = self._tick_size[ids]
        move = self._rng.choice(np.array([-1.0, 0.0, 1.0]), ids.size) * tick
        rec["bid"] = np.round((rec["bid"] + move) / tick) * tick
        spread = np.where(self._rng.random(ids.size) < 0.8, 1.0, 2.0) * tick
        rec["ask"] = rec["bid"] + spread
        trade = self._rng.random(ids.size) < 0.4
        buy = self._rng.random(ids.size) < 0.5
        size = (self._rng.integers(1, 10, ids.size) * 100).astype(np.uint32)
        rec["last"] = np.where(trade, np.where(buy, rec["ask"], rec["bid"]), rec["last"])
        rec["last_size"] = np.where(trade, size, rec["last_size"])
        rec["volume"] += np.where(trade, size, 0).astype(np.uint64)
        rec["flags"] = np.where(
            trade, TickFlag.TRADE | np.where(buy, TickFlag.BUY, TickFlag.SELL), 0
        )
        rec["bid_size"] = (self._rng.integers(1, 20, ids.size) * 100).astype(np.uint32)
        rec["ask_size"] = (self._rng.integers(1, 20, ids.size) * 100).astype(np.uint32)
        rec["seq"] += 1
        rec["ts"] = self._wall_ns()
        self._tick[ids] = rec
        self._emit_batch("ticks", rec)

    def _emit_batch(self, kind: Any, records: np.ndarray) -> None:
        if records.size == 0:
            return
        self._seq += 1
        self.messages_received += 1
        self.ticks_received += len(records)
        self.last_message_s = trio.current_time()
        self._send.send_nowait(Batch(kind, self._seq, records, 0, self._names))


def fake_connector(feed: FakeFeed) -> Callable[[], Any]:
    """A `connect`-like factory for the app: `async with factory() as feed:` yields `feed`."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[FakeFeed]:
        async with trio.open_nursery() as nursery:
            await nursery.start(feed.run)
            try:
                yield feed
            finally:
                await feed.aclose()
                nursery.cancel_scope.cancel()

    return connect
