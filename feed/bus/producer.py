"""`BusProducer`: a market's flushes to Redis Streams by a writer task beside it (`api.py`)."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
import trio
from numpy.typing import NDArray

from tickwire.feed.backoff import Backoff
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import lease as bl
from tickwire.feed.bus import write as bw
from tickwire.feed.bus.fastwrite import FastWriter
from tickwire.feed.bus.holder import LeaseHolder
from tickwire.feed.bus.outbox import Outbox, Taken
from tickwire.feed.bus.pipeline import InFlight, Pipelined
from tickwire.feed.bus.redis import (
    BACKOFF_S,
    COMMAND_TIMEOUT_S,
    DEFAULT_MAXLEN,
    DEFAULT_NAMESPACE,
    DEFAULT_SHARDS,
    MAX_PENDING_RECORDS,
    Failure,
    client_for,
    describe_failure,
    log,
)
from tickwire.feed.urls import redact
from tickwire.simulators import TICK_DTYPE, Market, TickBatch, Universe


class Upstream(Protocol):
    """What a producer publishes from (a role, as the server's sources and sinks are): the
    latest record per symbol, for the snapshot a new lease starts with, and a wake-up for a
    market that idles while no gateway watches."""

    def snapshot(self) -> TickBatch:
        """The latest record per symbol, as of the last flush published."""
        ...

    def wake(self) -> None:
        """A gateway started watching: step at the cadence from now on."""


class MarketUpstream:
    """A bare market as a producer's upstream (no server): its caller steps it."""

    def __init__(self, market: Market) -> None:
        self.market = market

    def snapshot(self) -> TickBatch:
        return self.market.snapshot()

    def wake(self) -> None:
        """Nothing to wake: the caller steps the market at its own pace."""


@dataclass(frozen=True, slots=True)
class BusProducerStatistics:
    up: bool
    epoch: int
    flushes_written: int
    flushes_dropped: int
    entries_written: int
    records_written: int
    bytes_written: int
    role: str  # "active" (holds the lease, writes), "standby" (waits for it) or "down"
    holder: str  # the active producer, HOST:PID ("" when none)
    standbys: int  # producers waiting on this namespace (as of the last lease call)
    takeovers: int  # times a standby took over from a producer that died or stalled
    levels_written: int = 0  # level updates of a market with books


class BusProducer(LeaseHolder, Pipelined):
    """Writes a market's flushes to Redis; start `run` with `await nursery.start(producer.run)`
    in the market's own trio loop.

    The writer is a task beside the market, not a thread: `publish` wakes it, and it writes
    while the market sleeps until its next step. A writer thread with a trio loop of its own
    (as this was) cost a cross-thread wake-up per flush and fought the market's thread for the
    GIL around every socket call (each released it and had to get it back); as a task it costs
    about a third less CPU per published tick at 500 symbols (measured). With hiredis, `publish`
    sends the flush itself, pipelined, and the writer task only reads replies nobody read
    (`REPLY_GRACE_S`) and sends what the socket did not take; a flush published while the
    writer cannot send (connecting, Redis slow) waits, and every flush pending then goes in
    one entry.
    """

    def __init__(
        self,
        url: str,
        universe: Universe,
        upstream: Upstream,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        shards: int = DEFAULT_SHARDS,
        maxlen: int = DEFAULT_MAXLEN,
        epoch: int | None = None,
        ident: str | None = None,
        statuses: bool = False,
        books: Callable[[], bytes] | None = None,
        book_depth: int = 0,
    ) -> None:
        """`books`: the market's books now as bytes (`book_snapshot().tobytes()`), for a
        market with books (`book_depth` levels); its level updates come in `publish_levels`."""
        if not 1 <= shards <= bc.MAX_SHARDS:
            raise ValueError(f"shards must be from 1 to {bc.MAX_SHARDS}, got {shards}")
        self._client = client_for(url)
        self.url = url
        self.universe = universe
        self.namespace = namespace
        self.shards = shards
        self.maxlen = maxlen
        self.epoch = epoch if epoch is not None else secrets.randbits(63)
        self.upstream = upstream
        # `statuses`: the market plays a scenario; `publish_statuses` hands over its changes.
        self._meta = bc.encode_meta(universe, self.epoch, shards, statuses, book_depth)
        self._halted: dict[int, bytes] = {}  # symbol id -> its status record, while halted
        self._bands: dict[int, bytes] = {}  # symbol id -> its LULD band record, while it has one
        self._playing = b"[]"  # the scenarios its market plays (JSON), for a new lease's keys
        self.ident = ident or f"{socket.gethostname()}:{os.getpid()}"
        self.token = bl.token_for(self.ident, self.epoch)
        self._up = False
        # The lease: only the active producer writes.
        self._active = False
        self._lease = bl.LeaseState(b"", False, 0, 0)
        self._renew_at = 0.0  # trio.current_time()
        self._standby_for = b""  # the holder the standby line was logged for
        # Whether a gateway has subscribers (from each write's reply); the upstream is woken
        # when it turns true.
        self.watched = True
        self._fast: FastWriter | None = None  # the writes' own connection, while up
        self._fast_usable = True  # False: the URL or the install has none (coredis writes)
        self._packer = bw.FlushPacker(
            bw.WRITE_SHA,
            namespace=namespace,
            shards=shards,
            epoch=self.epoch,
            maxlen=maxlen,
            token=self.token,
            lease_ms=bl.LEASE_MS,
        )
        self._inflight: deque[InFlight] = deque()  # pipelined writes awaiting their reply
        self._failure: ConnectionError | None = None  # met in `publish`, for the writer
        self._reconnect = False  # the lease lapsed: take it again (the writer does)
        self._outbox = Outbox(MAX_PENDING_RECORDS, books)
        self._sleep: trio.CancelScope | None = None  # the writer's wait for work, while it waits
        self._waiter: trio.Event | None = None  # `wait_written`'s
        self._written = self._entries = self._records = self._bytes = 0
        self._levels_written = 0

    def publish(self, batch: TickBatch, offset: int | None = None) -> None:
        """Hand one flush to the writer; never waits. Dropped (and counted) while Redis is down.

        `offset`: the stream offset of its first record in the producer's hub; gateways then
        number records the same way, so a client resumes on any of them.
        """
        if len(batch):
            self._changes_put(self._outbox.put(batch, offset))

    def publish_levels(self, levels: NDArray[np.void]) -> None:
        """A step's level updates (`simulators.book.LEVEL_DTYPE`), before its ticks: they go
        with the next flush published. Never waits; dropped while flushes are."""
        self._outbox.put_levels(levels)

    def publish_statuses(self, records: NDArray[np.void]) -> None:
        """Trading status changes (`simulators.scenario.STATUS_DTYPE`) after every flush
        published so far; they go with the next write. Never waits; dropped like a flush."""
        for rec in records:
            sym = int(rec["sym"])
            if rec["status"]:
                self._halted[sym] = rec.tobytes()
            else:
                self._halted.pop(sym, None)
        self._changes_put(self._outbox.put_statuses(records))

    def publish_bands(self, records: NDArray[np.void]) -> None:
        """LULD band changes (`simulators.scenario.BAND_DTYPE`), as `publish_statuses`."""
        for sym, rec in zip(records["sym"].tolist(), records, strict=True):
            if rec["indicator"]:
                self._bands[sym] = rec.tobytes()
            else:
                self._bands.pop(sym, None)
        self._changes_put(self._outbox.put_bands(records))

    def publish_scenario(self, name: str, started: bool, ts: int, playing: list[str]) -> None:
        """A market scenario started or ended (event time `ts`) after every flush published so
        far, `playing` those playing after it; it goes with the next write, as statuses do."""
        self._playing = orjson.dumps(playing)
        self._changes_put(self._outbox.put_scenario(name, started, ts, playing))

    def _changes_put(self, kept: bool) -> None:
        """After a flush or changes were put (`kept`, or dropped): send them or wake the
        writer."""
        if not kept:
            self._report_done()
        elif self._fast is not None and self._active and not self._failure:
            self._send_pending()  # pipelined, in this step: no task switch per flush
        else:
            self._wake_writer()

    async def wait_written(self) -> None:
        """Until every flush published so far is written or dropped (clean shutdown)."""
        while self._outbox.done < self._outbox.flush:
            self._waiter = waiter = trio.Event()
            await waiter.wait()

    def statistics(self) -> BusProducerStatistics:
        lease = self._lease
        role = "down" if not self._up else "active" if self._active else "standby"
        return BusProducerStatistics(
            self._up,
            self.epoch,
            self._written,
            self._outbox.dropped,
            self._entries,
            self._records,
            self._bytes,
            role,
            bl.shown(lease.holder),
            lease.standbys,
            lease.takeovers,
            self._levels_written,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (or keep trying), then write what `publish` hands over while holding the
        lease, or stand by until it is free; `started()` after the first connection attempt
        (up or not). Until cancelled; from then on `publish` drops.

        Each connection gets a fresh client: a write cut off by its timeout may leave a
        connection mid-transaction, and nothing after it on that connection can be trusted.
        """
        started = False
        backoff = Backoff(*BACKOFF_S)
        try:
            while True:
                self._client = client_for(self.url)
                try:
                    async with self._client:
                        try:
                            await self._connect()
                            if not started:
                                task_status.started()
                                started = True
                            await self._serve_connection(backoff)
                        finally:
                            await self._close_fast()
                finally:
                    if self._up:
                        await self._release()
                await trio.sleep(backoff.next())
        finally:
            self._outbox.stop()  # nobody will write
            self._report_done()

    async def _serve_connection(self, backoff: Backoff) -> None:
        while self._up:
            backoff.reset()
            if self._active:
                await self._write_or_renew()
                continue
            # Not writing: replies of pipelined writes still on their way would be taken for
            # those of later writes, so the connection goes (a lost flush is a gap anyway).
            await self._close_fast()
            if not self._reconnect:
                await trio.sleep(bl.STANDBY_POLL_S)
            self._reconnect = False
            await self._connect()

    async def _write_or_renew(self) -> None:
        """The active producer's step: write what is pending, or renew the lease when due.

        With the fast connection, `publish` sends each flush itself (`_send_pending`) and reads
        the replies that have come back; this task only opens the connection, sends what the
        socket did not take, and reads replies nobody read within `REPLY_GRACE_S` (the market
        idles, or Redis is slow). So a flush costs the loop no task switch of its own.
        """
        if self._failure is not None:
            self._fail()
            return
        try:
            if self._fast is None and self._fast_usable:
                with trio.fail_after(COMMAND_TIMEOUT_S):
                    self._fast = await FastWriter.open(self.url, bw.WRITE_SCRIPT)
                self._fast_usable = self._fast is not None
            if self._fast is not None:
                await self._serve_pipeline(self._fast)
                return
        except Failure as exc:
            failure = ConnectionError(describe_failure(exc))  # a timeout's own text is empty
            self._failure = exc if isinstance(exc, ConnectionError) else failure
            self._fail()
            return
        # coredis (TLS, or no hiredis): one awaited write at a time
        await self._wait_for_work(self._renew_at)
        if len(self._outbox):
            await self._write_pending()
        elif trio.current_time() >= self._renew_at:
            await self._renew()

    def _stop_accepting(self, *, standby: bool) -> None:
        self._outbox.stop(standby=standby)
        self._report_done()

    def _handover(self) -> tuple[TickBatch, bytes, int, int | None]:
        """Start accepting flushes and take the snapshot they follow, the symbols halted then
        (their status records) and the last flush number before them: no step runs in between
        (one loop), so a reader that starts from these and `head` misses nothing."""
        head, next_offset = self._outbox.accept()
        halted = b"".join(self._halted[s] for s in sorted(self._halted))
        return self.upstream.snapshot(), halted, head, next_offset

    async def _write_pending(self) -> None:
        """One awaited write of everything pending, on coredis."""
        taken = self._outbox.take()
        if taken is None:
            return
        keys, args, entries = bw.flush_command(
            taken,
            namespace=self.namespace,
            shards=self.shards,
            epoch=self.epoch,
            maxlen=self.maxlen,
            token=self.token,
            lease_ms=bl.LEASE_MS,
            sent_ns=time.time_ns(),
        )
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                reply = await self._client.eval(bw.WRITE_SCRIPT, keys=keys, args=args)
        except Failure as exc:
            self._outbox.dropped += taken.flushes
            self._down(exc)
            return
        self._written_reply(reply, taken, entries)
        self._report_done()

    def _written_reply(self, reply: Any, taken: Taken, entries: int) -> None:
        """The script's answer to the write of `taken`: written, or fenced."""
        holder = bl.fenced_holder(reply)
        if holder is not None:  # fenced: nothing was written
            self._outbox.dropped += taken.flushes
            if self._active:
                self._lost(holder)
                self._reconnect = not holder  # it lapsed: take it again
            return
        self._renew_at = trio.current_time() + bl.RENEW_S
        watched, wants_books, mirrored = bw.reply_flags(reply)
        self._set_watched(watched)
        self._outbox.set_levels(mirrored)
        self._outbox.want_books |= wants_books and self._outbox.books is not None
        self._written += taken.flushes
        self._entries += entries
        self._records += len(taken.batch)
        self._bytes += len(taken.batch) * TICK_DTYPE.itemsize
        self._levels_written += sum(len(r) for _, r in taken.levels)
        self._outbox.written(taken)

    def _set_watched(self, watched: bool) -> None:
        if watched == self.watched:
            return
        self.watched = watched
        if watched:
            self.upstream.wake()

    def _report_done(self) -> None:
        """Wake `wait_written` once every flush given out is written or dropped (only then:
        a wake-up per flush would cost the market's loop for nothing)."""
        if self._waiter is not None and self._outbox.done >= self._outbox.flush:
            self._waiter.set()
            self._waiter = None

    def _down(self, exc: BaseException) -> None:
        if self._up or not self._logged_down:
            log.warning(
                "bus down: %s (%s); the market keeps running, flushes are dropped until it is back",
                redact(self.url),
                describe_failure(exc),
            )
        self._logged_down = True
        self._up = self._active = False
        self._outbox.stop()
        self._report_done()

    _logged_down = False
