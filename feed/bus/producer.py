"""`BusProducer`: a market's flushes to Redis Streams from a writer thread (see `bus.py`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trio

from tickwire.feed.backoff import Backoff
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import lease as bl
from tickwire.feed.bus.fastwrite import FastWriter
from tickwire.feed.bus.holder import LeaseHolder
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
from tickwire.simulators import TickBatch, Universe


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


class BusProducer(LeaseHolder):
    """Writes a market's flushes to Redis; start `run` with `await nursery.start(producer.run)`.

    The writer runs in its own thread with its own trio loop: splitting, encoding and the Redis
    round trips never wait behind the market's stepping (a chunk of 5,000 symbols takes ~40 ms
    of numpy), and much of either releases the GIL, so on two cores both go on at once. Sharing
    the market's loop, the writer fell behind at 5,000 symbols and dropped flushes. The two
    threads meet in `publish` (a lock around the pending list), in a wake-up handed to the
    writer's loop only when it waits (and to the market's only when `wait_written` does), and
    in `_handover`: the snapshot a (re)connection writes
    is taken in the market's thread, where no step can run while it is copied.
    """

    def __init__(
        self,
        url: str,
        universe: Universe,
        snapshot: Callable[[], TickBatch],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        shards: int = DEFAULT_SHARDS,
        maxlen: int = DEFAULT_MAXLEN,
        epoch: int | None = None,
        ident: str | None = None,
    ) -> None:
        if not 1 <= shards <= bc.MAX_SHARDS:
            raise ValueError(f"shards must be from 1 to {bc.MAX_SHARDS}, got {shards}")
        self._client = client_for(url)
        self.url = url
        self.universe = universe
        self.namespace = namespace
        self.shards = shards
        self.maxlen = maxlen
        self.epoch = epoch if epoch is not None else secrets.randbits(63)
        self._snapshot = snapshot
        self._meta = bc.encode_meta(universe, self.epoch, shards)
        self.ident = ident or f"{socket.gethostname()}:{os.getpid()}"
        self.token = bl.token_for(self.ident, self.epoch)
        self._up = False
        # The lease (the writer thread's): only the active producer writes.
        self._active = False
        self._lease = bl.LeaseState(b"", False, 0, 0)
        self._renew_at = 0.0  # trio.current_time() in the writer's loop
        self._standby_for = b""  # the holder the standby line was logged for
        # Whether a gateway has subscribers (the writer thread's, from each write's reply);
        # `on_watched(watched)` runs in the market's loop when it changes.
        self.watched = True
        self.on_watched: Callable[[bool], None] | None = None
        self._fast: FastWriter | None = None  # the writes' own connection, while up
        self._fast_usable = True  # False: the URL or the install has none (coredis writes)
        # Shared with the writer thread, under `_lock`:
        self._lock = threading.Lock()
        self._accepting = False  # up, or connecting: publish keeps flushes (bounded)
        self._standby = False  # publish drops without counting: another producer writes
        self._pending: list[TickBatch] = []
        self._pending_records = 0
        self._first = 0  # the first flush number in `_pending`
        self._first_offset: int | None = None  # and the stream offset of its first record
        self._next_offset: int | None = None  # the stream offset after the last flush given
        self._flush = 0  # the last flush number given out
        self._dropped = 0
        self._waiting = False  # the writer waits on `_wake`: publish must wake it
        self._done = 0  # the last flush number written or dropped
        self._waiter: trio.Event | None = None  # `wait_written`'s, in the market's loop
        # The writer thread's own:
        self._wake: trio.Event | None = None
        self._written = self._entries = self._records = self._bytes = 0
        # The market's thread's own (set by `run`):
        self._main: trio.lowlevel.TrioToken | None = None
        self._writer: trio.lowlevel.TrioToken | None = None
        self._writer_scope: trio.CancelScope | None = None
        self._stopping = False

    def publish(self, batch: TickBatch, offset: int | None = None) -> None:
        """Hand one flush to the writer; never waits. Dropped (and counted) while Redis is down.

        `offset`: the stream offset of its first record in the producer's hub; gateways then
        number records the same way, so a client resumes on any of them.
        """
        if not len(batch):
            return
        with self._lock:
            self._flush += 1
            if offset is not None:
                self._next_offset = offset + len(batch)
            if not self._accepting or self._pending_records + len(batch) > MAX_PENDING_RECORDS:
                # Nothing kept: the hole in the flush numbers tells readers to resynchronise.
                self._dropped += (0 if self._standby else 1) + len(self._pending)
                self._pending.clear()
                self._pending_records = 0
                self._done = self._flush
                waiter, self._waiter = self._waiter, None
                if waiter is not None:  # the market's thread: set it here
                    waiter.set()
                return
            if not self._pending:
                self._first = self._flush
                self._first_offset = offset
            self._pending.append(batch)
            self._pending_records += len(batch)
            wake = self._wake if self._waiting else None
            self._waiting = False
        if wake is not None and self._writer is not None:
            self._writer.run_sync_soon(wake.set)

    async def wait_written(self) -> None:
        """Until every flush published so far is written or dropped (clean shutdown)."""
        while True:
            with self._lock:
                if self._done >= self._flush:
                    return
                self._waiter = waiter = trio.Event()
            await waiter.wait()

    def statistics(self) -> BusProducerStatistics:
        lease = self._lease
        role = "down" if not self._up else "active" if self._active else "standby"
        return BusProducerStatistics(
            self._up,
            self.epoch,
            self._written,
            self._dropped,
            self._entries,
            self._records,
            self._bytes,
            role,
            bl.shown(lease.holder),
            lease.standbys,
            lease.takeovers,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the writer thread; `started()` after its first connection attempt (up or
        not); until cancelled, which stops the thread and waits for it."""
        self._main = trio.lowlevel.current_trio_token()
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stop_writer_when_cancelled)
            nursery.start_soon(trio.to_thread.run_sync, trio.run, self._write_forever, ready)
            await ready.wait()
            task_status.started()

    async def _stop_writer_when_cancelled(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with self._lock:
                self._stopping = True
                writer, scope = self._writer, self._writer_scope
            if writer is not None and scope is not None:
                with contextlib.suppress(trio.RunFinishedError):  # the writer has ended already
                    writer.run_sync_soon(scope.cancel)

    # ------------------------------------------------------------------ the writer thread

    async def _write_forever(self, ready: trio.Event) -> None:
        """The writer thread's trio loop, until `run` is cancelled; then publish drops."""
        assert self._main is not None
        try:
            with trio.CancelScope() as scope:
                with self._lock:
                    if self._stopping:
                        return
                    self._writer = trio.lowlevel.current_trio_token()
                    self._writer_scope = scope
                await self._write_until_cancelled(ready)
        finally:
            with self._lock:  # from now on publish drops: nobody would write
                self._accepting = self._waiting = False
                self._dropped += len(self._pending)
                self._pending.clear()
                self._pending_records = 0
                last = self._flush
            self._report_done(last)

    async def _write_until_cancelled(self, ready: trio.Event) -> None:
        """Connect (or keep trying), then write what `publish` hands over while holding the
        lease, or stand by until it is free.

        Each connection gets a fresh client: a write cut off by its timeout may leave a
        connection mid-transaction, and nothing after it on that connection can be trusted.
        """
        assert self._main is not None
        started = False
        backoff = Backoff(*BACKOFF_S)
        while True:
            self._client = client_for(self.url)
            try:
                async with self._client:
                    try:
                        await self._connect()
                        if not started:
                            self._main.run_sync_soon(ready.set)
                            started = True
                        while self._up:
                            backoff.reset()
                            if self._active:
                                await self._write_or_renew()
                            else:
                                await trio.sleep(bl.STANDBY_POLL_S)
                                await self._connect()
                    finally:
                        await self._close_fast()
            finally:
                if self._up:
                    await self._release()
            await trio.sleep(backoff.next())

    async def _write_or_renew(self) -> None:
        """The active producer's step: write what is pending, or renew the lease when due."""
        with self._lock:
            if not self._pending:
                self._wake = trio.Event()
                self._waiting = True
            wake = self._wake if self._waiting else None
        if wake is not None:
            with trio.move_on_after(max(self._renew_at - trio.current_time(), 0)):
                await wake.wait()
            with self._lock:
                self._waiting = False
        if self._pending:  # a stale read is harmless: `_write_pending` takes them under the lock
            await self._write_pending()
        elif trio.current_time() >= self._renew_at:
            await self._renew()

    def _stop_accepting(self, *, standby: bool) -> None:
        with self._lock:
            self._accepting = False
            self._standby = standby
            self._dropped += 0 if standby else len(self._pending)
            self._pending.clear()
            self._pending_records = 0
            last = self._flush
        self._report_done(last)

    async def _handover(self) -> tuple[TickBatch, int, int | None]:
        """In the market's thread: start accepting flushes and take the snapshot they follow,
        with the last flush number before them. Flushes published after it are kept, so a
        reader that starts from this snapshot and `head` misses nothing."""
        assert self._main is not None
        done = trio.Event()
        writer = trio.lowlevel.current_trio_token()
        result: list[tuple[TickBatch, int, int | None] | BaseException] = []

        def take() -> None:  # runs in the market's loop: no step runs meanwhile
            try:
                with self._lock:
                    self._accepting = True
                    head, next_offset = self._flush, self._next_offset
                result.append((self._snapshot(), head, next_offset))
            except Exception as exc:  # handed to the writer, which raises it
                result.append(exc)
            with contextlib.suppress(trio.RunFinishedError):  # the writer was stopped meanwhile
                writer.run_sync_soon(done.set)

        self._main.run_sync_soon(take)
        await done.wait()
        got = result[0]
        if isinstance(got, BaseException):
            raise got
        return got

    async def _write_pending(self) -> None:
        with self._lock:
            batches, first, last = self._pending, self._first, self._flush
            offset, next_offset = self._first_offset, self._next_offset
            self._pending, self._pending_records = [], 0
        if not batches:
            return
        batch = batches[0] if len(batches) == 1 else np.concatenate(batches)
        parts = bc.split(batch, self.shards)
        latest = bc.latest_records(batch)
        entries = bc.encode_entries(parts, first, last, self.epoch, time.time_ns(), offset)
        keys, args = bc.write_command(
            self.namespace, entries, last, next_offset, latest, self.maxlen, self.token, bl.LEASE_MS
        )
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                if self._fast is None and self._fast_usable:
                    self._fast = await FastWriter.open(self.url, bc.WRITE_SCRIPT)
                    self._fast_usable = self._fast is not None
                if self._fast is not None:
                    reply = await self._fast.evalsha(keys, args)
                else:
                    reply = await self._client.eval(bc.WRITE_SCRIPT, keys=keys, args=args)
        except Failure as exc:
            with self._lock:
                self._dropped += len(batches)
            self._down(exc)
            return
        holder = bl.fenced_holder(reply)
        if holder is not None:  # fenced: nothing was written
            with self._lock:
                self._dropped += len(batches)
            self._lost(holder)
            if not holder:
                await self._connect()
            return
        self._renew_at = trio.current_time() + bl.RENEW_S
        self._set_watched(reply == 2)
        self._written += len(batches)
        self._entries += len(entries)
        self._records += len(batch)
        self._bytes += sum(len(f[b"r"]) for _, f in entries)
        self._report_done(last)

    async def _close_fast(self) -> None:
        fast, self._fast = self._fast, None
        if fast is not None:
            with trio.CancelScope(shield=True):
                await fast.aclose()

    def _set_watched(self, watched: bool) -> None:
        if watched == self.watched:
            return
        self.watched = watched
        if self.on_watched is not None and self._main is not None:
            with contextlib.suppress(trio.RunFinishedError):  # the market's loop has ended
                self._main.run_sync_soon(self.on_watched, watched)

    def _report_done(self, upto: int) -> None:
        """Flushes up to `upto` are written or dropped; wake `wait_written` if it waits for
        them. Only then: a wake-up of the market's loop per flush cost CPU and latency."""
        assert self._main is not None
        with self._lock:
            self._done = max(self._done, upto)
            waiter = self._waiter if self._done >= self._flush else None
            if waiter is not None:
                self._waiter = None
        if waiter is not None:
            with contextlib.suppress(trio.RunFinishedError):  # the market's loop has ended
                self._main.run_sync_soon(waiter.set)

    def _down(self, exc: BaseException) -> None:
        if self._up or not self._logged_down:
            log.warning(
                "bus down: %s (%s); the market keeps running, flushes are dropped until it is back",
                redact(self.url),
                describe_failure(exc),
            )
        self._logged_down = True
        self._up = self._active = False
        with self._lock:
            self._accepting = False
            self._dropped += len(self._pending)
            self._pending.clear()
            self._pending_records = 0
            last = self._flush
        self._report_done(last)

    _logged_down = False
