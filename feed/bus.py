"""The bus: one producer's flushes to any number of gateways, through Redis Streams.

`BusProducer` runs beside the market: `publish(batch)` never waits (like `Hub.publish`); its
writer (a thread with its own trio loop, so the market's stepping never starves it) writes
each flush as one entry per shard, the latest record per symbol and the flush
numbers in one Lua script (`_bus_codec.WRITE_SCRIPT`): one atomic round trip, so a reader sees
a flush whole or not at all. While Redis is
down it keeps nothing: flushes are dropped and counted, it reconnects with backoff, logs once, and
rewrites the meta key and the full snapshot when Redis is back.

`BusReader` is a gateway's source: `async with BusReader(url, ns) as reader` waits for the
producer's meta (universe, epoch), then `async for item in reader` yields `TickBatch` flushes in
event order, `BusDown` once when Redis goes away, and `BusGap` (with a fresh snapshot) whenever
records were lost: a trimmed cursor, a changed epoch, a Redis restart. Each reader keeps its own
cursor per shard (XREAD BLOCK, no consumer groups: groups split work, they do not fan out).

The wire format and reassembly live in `_bus_codec` (sans-IO). Needs `pip install 'tickwire[redis]'`
(coredis, native under trio through anyio). Never imported by the single-process server.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeAlias

import numpy as np
import trio

from tickwire.simulators import TICK_DTYPE, TickBatch, Universe

from . import _bus_codec as bc

try:
    import coredis
    from coredis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis bus needs coredis: pip install 'tickwire[redis]'") from exc

log = logging.getLogger("tickwire.bus")

DEFAULT_NAMESPACE = "tickwire"
# One stream by default: every gateway reads every shard from one single-threaded Redis, so
# more streams buy nothing yet, and Redis < 7.2 answers a blocked XREAD over several streams with
# one of them only: a flush spread over shards then costs a gateway a second round trip (measured
# here: ~1-2 ms more p50 through the bus at N=10). `shards` stays for a layout that splits them.
DEFAULT_SHARDS = 1
DEFAULT_MAXLEN = 10_000  # entries kept per shard (~10 s of 1 ms flushes): a gateway's slack
COMMAND_TIMEOUT_S = 5.0  # a Redis that answers nothing for this long is down
BACKOFF_S = (0.05, 2.0)  # reconnect backoff: first and longest wait
# Records a producer holds for a writer that is behind; beyond, it drops (readers see a gap).
# 32 MB: one transaction well inside the timeout, and ~1 s of 5,000 symbols at the open, so a
# writer thread the OS left waiting for a few hundred ms on a busy machine catches up.
MAX_PENDING_RECORDS = 500_000
READ_COUNT = 1000  # entries per stream per XREAD
BLOCK_MS = 100  # XREAD BLOCK: how long a read waits in Redis before a reader checks the clock

_Failure = (RedisError, OSError, trio.TooSlowError)


def client_for(url: str) -> coredis.Redis[bytes]:
    """A coredis client for `redis://host:port/db` or `unix:///path.sock` (bytes replies)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"--bus must be redis://HOST:PORT/DB or unix:///PATH.sock, got {url!r}")
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url, decode_responses=False)
    return client


# ----------------------------------------------------------------------------- producer


@dataclass(frozen=True, slots=True)
class BusProducerStatistics:
    up: bool
    epoch: int
    flushes_written: int
    flushes_dropped: int
    entries_written: int
    records_written: int
    bytes_written: int


class BusProducer:
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
        self._up = False
        # Shared with the writer thread, under `_lock`:
        self._lock = threading.Lock()
        self._accepting = False  # up, or connecting: publish keeps flushes (bounded)
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
                self._dropped += 1 + len(self._pending)
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
        return BusProducerStatistics(
            self._up,
            self.epoch,
            self._written,
            self._dropped,
            self._entries,
            self._records,
            self._bytes,
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
        """Connect (or keep trying), then write what `publish` hands over.

        Each connection gets a fresh client: a write cut off by its timeout may leave a
        connection mid-transaction, and nothing after it on that connection can be trusted.
        """
        assert self._main is not None
        started = False
        wait_s = BACKOFF_S[0]
        while True:
            self._client = client_for(self.url)
            async with self._client:
                await self._connect()
                if not started:
                    self._main.run_sync_soon(ready.set)
                    started = True
                while self._up:
                    wait_s = BACKOFF_S[0]
                    with self._lock:
                        if not self._pending:
                            self._wake = trio.Event()
                            self._waiting = True
                        wake = self._wake if self._waiting else None
                    if wake is not None:
                        await wake.wait()
                    await self._write_pending()
            await trio.sleep(wait_s)
            wait_s = min(wait_s * 2, BACKOFF_S[1])

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

    async def _connect(self) -> None:
        """Write the meta key and the full latest-record hash; mark the bus up on success."""
        snap, head, next_offset = await self._handover()
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.set(bc.meta_key(self.namespace), self._meta)
                    pipe.delete([bc.latest_key(self.namespace)])
                    self._fold_latest(pipe, snap)
                    pipe.set(bc.head_key(self.namespace), str(head).encode())
                    self._set_offset(pipe, next_offset)
        except _Failure as exc:
            self._down(exc)
            return
        if not self._up:
            log.info("bus up: %s namespace %r, epoch %016x", self.url, self.namespace, self.epoch)
        self._up = True

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
            self.namespace, entries, last, next_offset, latest, self.maxlen
        )
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                restarted = not await self._client.eval(bc.WRITE_SCRIPT, keys=keys, args=args)
        except _Failure as exc:
            with self._lock:
                self._dropped += len(batches)
            self._down(exc)
            return
        self._written += len(batches)
        self._entries += len(entries)
        self._records += len(batch)
        self._bytes += sum(len(f[b"r"]) for _, f in entries)
        self._report_done(last)
        if restarted:  # a Redis that restarted between two writes: no meta, no snapshot
            log.warning("bus restarted under us: %s; rewriting meta and snapshot", self.url)
            await self._connect()

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

    def _set_offset(self, pipe: Any, next_offset: int | None) -> None:
        if next_offset is not None:
            pipe.set(bc.offset_key(self.namespace), str(next_offset).encode())

    def _fold_latest(self, pipe: Any, batch: TickBatch) -> None:
        blob = bc.latest_records(batch)
        pipe.eval(bc.LATEST_SCRIPT, keys=[bc.latest_key(self.namespace)], args=[blob])

    def _down(self, exc: BaseException) -> None:
        if self._up or not self._logged_down:
            log.warning(
                "bus down: %s (%s); the market keeps running, flushes are dropped until it is back",
                self.url,
                _reason(exc),
            )
        self._logged_down = True
        self._up = False
        with self._lock:
            self._accepting = False
            self._dropped += len(self._pending)
            self._pending.clear()
            self._pending_records = 0
            last = self._flush
        self._report_done(last)

    _logged_down = False


# ----------------------------------------------------------------------------- reader


@dataclass(frozen=True, slots=True)
class BusGap:
    """Records were lost (`reason`); `snapshot` is the latest record per symbol to resend."""

    reason: str
    snapshot: TickBatch
    epoch: int
    offset: int | None = None  # the producer's stream offset of the next record, if it sends one


@dataclass(frozen=True, slots=True)
class BusDown:
    """Redis stopped answering; the reader keeps trying and yields a `BusGap` when it is back."""

    reason: str


BusItem: TypeAlias = TickBatch | BusGap | BusDown


@dataclass(frozen=True, slots=True)
class BusReaderStatistics:
    up: bool
    epoch: int
    lag_ms: float  # reader's clock minus the producer's clock at publish, latest flush
    flushes: int
    records: int
    gaps: int


class BusReader:
    """A gateway's view of the bus: flushes in order, gaps with a snapshot, down markers."""

    def __init__(self, url: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._client = client_for(url)
        self.url = url
        self.namespace = namespace
        self.universe: Universe | None = None
        self.epoch = 0
        self.shards = 0
        self.snapshot: TickBatch = np.empty(0, dtype=TICK_DTYPE)
        self._cursors: dict[str, Any] = {}
        self._run_id = b""
        self._asm = bc.Reassembler(0)
        self._ready: list[tuple[BusItem, int | None]] = []
        self.offset: int | None = None  # the producer's offset of the next record to expect
        self.flush_offset: int | None = None  # that of the flush `__anext__` returned last
        self._up = False
        self._flushes = self._records = self._gaps = 0

    async def __aenter__(self) -> BusReader:
        await self._client.__aenter__()
        try:
            wait_s = BACKOFF_S[0]
            logged = ""
            while True:
                try:
                    if await self._resync():
                        break
                except _Failure as exc:
                    if _reason(exc) != logged:  # once per reason, not once per retry
                        logged = _reason(exc)
                        log.info("waiting for the bus at %s: %s", self.url, logged)
                except bc.BusFormatError:
                    raise
                await trio.sleep(wait_s)
                wait_s = min(wait_s * 2, BACKOFF_S[1])
        except BaseException:
            await self._client.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    def statistics(self) -> BusReaderStatistics:
        sent = self._asm.last_sent_ns
        lag = (time.time_ns() - sent) / 1e6 if sent else 0.0
        return BusReaderStatistics(
            self._up, self.epoch, lag, self._flushes, self._records, self._gaps
        )

    async def latest(self) -> TickBatch:
        """The latest record per symbol, from the producer's hash."""
        assert self.universe is not None
        raw = await self._client.hgetall(bc.latest_key(self.namespace))
        return bc.decode_latest(raw, len(self.universe))

    def __aiter__(self) -> BusReader:
        return self

    async def __anext__(self) -> BusItem:
        wait_s = BACKOFF_S[0]
        while not self._ready:
            try:
                if not self._up:
                    if await self._resync():
                        self._gaps += 1
                        self._ready.append((self._gap_item("bus back"), None))
                        wait_s = BACKOFF_S[0]
                    else:
                        await trio.sleep(wait_s)
                        wait_s = min(wait_s * 2, BACKOFF_S[1])
                    continue
                await self._read()
            except _Failure as exc:
                if self._up:
                    log.warning("bus down: %s (%s); retrying", self.url, _reason(exc))
                    self._up = False
                    self._ready.append((BusDown(_reason(exc)), None))
        item, self.flush_offset = self._ready.pop(0)
        return item

    async def _resync(self) -> bool:
        """Load meta, snapshot and stream ends in one transaction; False if no producer yet."""
        info = await self._client.info("server")
        async with self._client.pipeline(transaction=True) as pipe:
            meta_req = pipe.get(bc.meta_key(self.namespace))
            latest_req = pipe.hgetall(bc.latest_key(self.namespace))
            head_req = pipe.get(bc.head_key(self.namespace))
            offset_req = pipe.get(bc.offset_key(self.namespace))
            ends = [
                pipe.xrevrange(bc.ticks_key(self.namespace, s), count=1)
                for s in range(bc.MAX_SHARDS)
            ]
        raw = await meta_req
        if raw is None:
            return False
        meta = bc.decode_meta(raw)
        self.universe, self.epoch, self.shards = meta.universe, meta.epoch, meta.shards
        self.snapshot = bc.decode_latest(await latest_req, len(meta.universe))
        self._cursors = {}
        for s in range(meta.shards):
            last = await ends[s]
            self._cursors[bc.ticks_key(self.namespace, s)] = last[0].identifier if last else b"0-0"
        head = await head_req
        offset = await offset_req
        self.offset = int(offset) if offset is not None else None
        self._asm.reset(meta.epoch, int(head) + 1 if head is not None else None)
        self._run_id = str(info.get("run_id", "")).encode()
        self._up = True
        return True

    async def _read(self) -> None:
        """One blocking read, then, unless it holds whole flushes that follow on, non-blocking
        ones until every stream is read up to one instant, fed to the reassembler in order.

        A blocking XREAD that wakes up may answer for one stream only (Redis < 7.2), so a flush
        whose parts are on streams not read yet would look like a hole. Each non-blocking XREAD
        of every stream is atomic against the producer's write: once one returns less than
        `count` from every stream, everything written so far has been read and a hole is a real
        loss. When the blocking answer alone completes every flush it touches in numbering
        order (the shard masks say so), the extra round trip would only bring later flushes,
        which the next read gets: it is skipped, the common case at a 1 ms cadence.
        """
        got = await self._client.xread(self._cursors, count=READ_COUNT, block=BLOCK_MS)
        if not got:
            await self._check_restart()
            return
        entries: list[bc.Entry] = []
        capped = self._collect(got, entries)
        if capped or not self._asm.completes(entries):
            while more := await self._client.xread(self._cursors, count=READ_COUNT):
                if not self._collect(more, entries):
                    break
        entries.sort(key=lambda e: (e.last, e.shard))  # each stream's own order is kept
        for entry in entries:
            released = self._asm.feed(entry)
            for out, offset in zip(released, self._asm.offsets, strict=True):
                if out is None:
                    await self._gap("records lost (trimmed, dropped or a new producer)")
                    return
                self._flushes += 1
                self._records += len(out)
                self._ready.append((out, offset))

    def _collect(self, got: Any, into: list[bc.Entry]) -> bool:
        """Decode an XREAD answer into `into`, move the cursors; True if a stream was capped."""
        prefix = len(self.namespace) + len(":ticks:")
        capped = False
        for key, entries in got.items():
            shard = int(key[prefix:])
            for e in entries:
                into.append(bc.decode_entry(shard, e.field_values))
            if entries:
                self._cursors[key.decode()] = entries[-1].identifier
            capped |= len(entries) >= READ_COUNT
        return capped

    async def _check_restart(self) -> None:
        """An idle read: a restarted Redis (new run_id) lost the streams, so resynchronise."""
        info = await self._client.info("server")
        if str(info.get("run_id", "")).encode() != self._run_id:
            await self._gap("Redis restarted")

    async def _gap(self, reason: str) -> None:
        log.info("bus gap: %s; resynchronising from the latest records", reason)
        if await self._resync():
            self._gaps += 1
            self._ready.append((self._gap_item(reason), None))
        else:
            self._up = False

    def _gap_item(self, reason: str) -> BusGap:
        return BusGap(reason, self.snapshot, self.epoch, self.offset)


def _reason(exc: BaseException) -> str:
    """One short line: the innermost cause (a failed pipeline's message lists every command)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))  # chains can loop
        exc = inner
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
