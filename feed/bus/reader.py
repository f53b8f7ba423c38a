"""`BusReader`: a gateway's view of the bus, flushes in order, gaps, outages (see `bus.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed.backoff import Backoff
from tickwire.feed.bus import bands as bb
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import keys as bk
from tickwire.feed.bus import lease as bl
from tickwire.feed.bus.fastwrite import FastWriter
from tickwire.feed.bus.items import BusBooks as BusBooks
from tickwire.feed.bus.items import BusDown as BusDown
from tickwire.feed.bus.items import BusGap as BusGap
from tickwire.feed.bus.items import BusItem as BusItem
from tickwire.feed.bus.items import BusLevels as BusLevels
from tickwire.feed.bus.items import BusLevelsLost as BusLevelsLost
from tickwire.feed.bus.items import BusScenario as BusScenario
from tickwire.feed.bus.items import BusStatuses as BusStatuses
from tickwire.feed.bus.items import flush_items as flush_items
from tickwire.feed.bus.reassemble import Reassembler
from tickwire.feed.bus.redis import (
    BACKOFF_S,
    BLOCK_MS,
    DEFAULT_NAMESPACE,
    READ_COUNT,
    Failure,
    client_for,
    describe_failure,
    log,
)
from tickwire.feed.urls import redact
from tickwire.simulators import TICK_DTYPE, TickBatch, Universe
from tickwire.simulators.scenario import BAND_DTYPE, STATUS_DTYPE

LEASE_INFO_EVERY_S = 1.0
_NO_STATUSES = np.empty(0, STATUS_DTYPE)
# A gateway with subscribers says so every WATCHED_EVERY_S, for WATCHED_MS: the producer steps at
# the cadence from its next write after the first mark, and idles WATCHED_MS after the last.
WATCHED_EVERY_S = 0.5
WATCHED_MS = 2000
WANT_BOOKS_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class BusReaderStatistics:
    up: bool
    epoch: int
    lag_ms: float  # reader's clock minus the producer's clock at publish, latest flush
    flushes: int
    records: int
    gaps: int
    producer: str  # the producer holding the lease, HOST:PID ("" when none)
    standbys: int
    takeovers: int


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
        self.statuses = False  # the producer's market plays a scenario (status changes come)
        self.halted: NDArray[np.void] = _NO_STATUSES  # as of the last resync, by symbol id
        self.bands = np.empty(0, BAND_DTYPE)  # each symbol's LULD bands, as of the last resync
        self.scenarios: list[str] = []  # the scenarios playing, as of the last change seen
        self.book_depth = 0  # the producer's market keeps books this deep (0: none)
        # Mirror the producer's books (`set_mirror`): only then are level updates and whole
        # books read (else dropped undecoded), and `{ns}:bookswatched` marked, without which
        # the producer writes no level updates.
        self.mirror = False
        self._mirror_at = 0.0  # trio.current_time() of the next `bookswatched` mark
        # Ask the producer for every book whole (set at each resync while mirroring; the source
        # clears it once it has them): marked every WANT_BOOKS_EVERY_S while set, so a lost
        # write is asked again.
        self.want_books = False
        self._want_at = 0.0
        self._cursors: dict[str, Any] = {}
        self._run_id = b""
        self._asm = Reassembler(0)
        self._ready: list[tuple[BusItem, int | None]] = []
        self.offset: int | None = None  # the producer's offset of the next record to expect
        self.flush_offset: int | None = None  # that of the flush `__anext__` returned last
        self._up = False
        self._flushes = self._records = self._gaps = 0
        self.lease = bl.LeaseState(b"", False, 0, 0)
        self._lease_at = 0.0  # trio.current_time() of the next look at the lease
        self._mark_at = 0.0  # trio.current_time() of the next `watched` mark
        # The stream reads' own connection (hiredis: a coredis call costs ~170 us of CPU).
        self._fast: FastWriter | None = None
        self._fast_usable = True

    async def __aenter__(self) -> BusReader:
        await self._client.__aenter__()
        try:
            backoff = Backoff(*BACKOFF_S)
            logged = ""
            while True:
                try:
                    if await self._resync():
                        break
                except Failure as exc:
                    if describe_failure(exc) != logged:  # once per reason, not once per retry
                        logged = describe_failure(exc)
                        log.info("waiting for the bus at %s: %s", redact(self.url), logged)
                except bc.BusFormatError:
                    raise
                await trio.sleep(backoff.next())
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
        await self._drop_fast()
        await self._client.__aexit__(exc_type, exc, tb)

    async def _drop_fast(self) -> None:
        fast, self._fast = self._fast, None
        if fast is not None:
            with trio.CancelScope(shield=True):
                await fast.aclose()

    async def _xread(self, block: bool) -> list[Any] | None:
        """XREAD of every shard from the cursors: [(key, [(id, {field: value})...])...]."""
        if self._fast is not None and self._fast.broken:  # a read was cut off: start afresh
            await self._drop_fast()
        if self._fast is None and self._fast_usable:
            self._fast = await FastWriter.open(self.url, "")
            self._fast_usable = self._fast is not None
        if self._fast is None:
            got = await self._client.xread(
                self._cursors, count=READ_COUNT, block=BLOCK_MS if block else None
            )
            if not got:
                return None
            return [
                (key, [(e.identifier, e.field_values) for e in entries])
                for key, entries in got.items()
            ]
        args = [b"XREAD", b"COUNT", str(READ_COUNT).encode()]
        if block:
            args += [b"BLOCK", str(BLOCK_MS).encode()]
        args.append(b"STREAMS")
        args += [k.encode() for k in self._cursors]
        args += [c if isinstance(c, bytes) else str(c).encode() for c in self._cursors.values()]
        raw = await self._fast.call(*args)
        if not raw:
            return None
        return [
            (key, [(ident, dict(zip(flat[::2], flat[1::2], strict=True))) for ident, flat in rows])
            for key, rows in raw
        ]

    def set_mirror(self, on: bool) -> None:
        """Mirror the producer's books from now on (ask for every book whole first), or stop."""
        if on and not self.mirror:
            self._mirror_at = 0.0
            self.ask_books()
        if not on:  # what was read for the books before is of no use after a pause
            books = (BusLevels, BusBooks, BusLevelsLost)
            self._ready = [(i, o) for i, o in self._ready if not isinstance(i, books)]
        self.mirror = on
        self.want_books = self.want_books and on

    def ask_books(self) -> None:
        """The books mirrored here are stale: ask the producer for every book whole."""
        if not self.want_books:
            self.want_books, self._want_at = self.book_depth > 0, 0.0

    def statistics(self) -> BusReaderStatistics:
        sent = self._asm.last_sent_ns
        lag = (time.time_ns() - sent) / 1e6 if sent else 0.0
        lease = self.lease
        return BusReaderStatistics(
            self._up,
            self.epoch,
            lag,
            self._flushes,
            self._records,
            self._gaps,
            bl.shown(lease.holder),
            lease.standbys,
            lease.takeovers,
        )

    async def latest(self) -> TickBatch:
        """The latest record per symbol, from the producer's hash."""
        assert self.universe is not None
        raw = await self._client.hgetall(bk.latest_key(self.namespace))
        return bc.decode_latest(raw, len(self.universe))

    def __aiter__(self) -> BusReader:
        return self

    async def __anext__(self) -> BusItem:
        return await self.next(watched=False)

    async def next(self, *, watched: bool) -> BusItem:
        """The next item; `watched`: clients read from here (a gateway with subscribers), which
        the reader tells the producer, so that its market steps at the cadence."""
        backoff = Backoff(*BACKOFF_S)
        while not self._ready:
            try:
                if not self._up:
                    if await self._resync():
                        self._gaps += 1
                        self._ready.append((self._gap_item("bus back"), None))
                        backoff.reset()
                    else:
                        await trio.sleep(backoff.next())
                    continue
                await self._read(watched)
            except Failure as exc:
                await self._drop_fast()
                if self._up:
                    log.warning(
                        "bus down: %s (%s); retrying", redact(self.url), describe_failure(exc)
                    )
                    self._up = False
                    self._ready.append((BusDown(describe_failure(exc)), None))
        item, self.flush_offset = self._ready.pop(0)
        return item

    async def _resync(self) -> bool:
        """Load meta, snapshot and stream ends in one transaction; False if no producer yet."""
        info = await self._client.info("server")
        async with self._client.pipeline(transaction=True) as pipe:
            meta_req = pipe.get(bk.meta_key(self.namespace))
            latest_req = pipe.hgetall(bk.latest_key(self.namespace))
            head_req = pipe.get(bk.head_key(self.namespace))
            offset_req = pipe.get(bk.offset_key(self.namespace))
            halted_req = pipe.hgetall(bk.halted_key(self.namespace))
            scenarios_req = pipe.get(bk.scenarios_key(self.namespace))
            bands_req = pipe.hgetall(bb.bands_key(self.namespace))
            ends = [
                pipe.xrevrange(bk.ticks_key(self.namespace, s), count=1)
                for s in range(bc.MAX_SHARDS)
            ]
        raw = await meta_req
        if raw is None:
            return False
        meta = bc.decode_meta(raw)
        self.universe, self.epoch, self.shards = meta.universe, meta.epoch, meta.shards
        self.statuses = meta.statuses
        self.book_depth = meta.book_depth
        self.want_books, self._want_at = meta.book_depth > 0 and self.mirror, 0.0
        self._mirror_at = 0.0  # a restarted Redis lost the mark
        self.snapshot = bc.decode_latest(await latest_req, len(meta.universe))
        self.halted = bc.decode_halted(await halted_req)
        self.scenarios = bc.decode_playing(await scenarios_req)
        self.bands = bb.decode_bands_now(await bands_req)
        self._cursors = {}
        for s in range(meta.shards):
            last = await ends[s]
            self._cursors[bk.ticks_key(self.namespace, s)] = last[0].identifier if last else b"0-0"
        head = await head_req
        offset = await offset_req
        self.offset = int(offset) if offset is not None else None
        self._asm.reset(meta.epoch, int(head) + 1 if head is not None else None)
        self._run_id = str(info.get("run_id", "")).encode()
        self._up = True
        return True

    async def _read(self, watched: bool) -> None:
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
        now = trio.current_time()
        if now >= self._lease_at:
            await self._look_at_lease()
        if now >= self._mark_at and watched:
            await self._client.set(bk.watched_key(self.namespace), b"1", px=WATCHED_MS)
            self._mark_at = now + WATCHED_EVERY_S
        if self.mirror and now >= self._mirror_at:  # first: see `write.WRITE_SCRIPT`'s reply
            ms = int(WANT_BOOKS_EVERY_S * 2000)
            await self._client.set(bk.bookswatched_key(self.namespace), b"1", px=ms)
            self._mirror_at = now + WANT_BOOKS_EVERY_S / 2
        if self.want_books and now >= self._want_at:
            ms = int(WANT_BOOKS_EVERY_S * 2000)
            await self._client.set(bk.bookwant_key(self.namespace), b"1", px=ms)
            self._want_at = now + WANT_BOOKS_EVERY_S
        got = await self._xread(block=True)
        if not got:
            await self._check_restart()
            return
        entries: list[bc.Entry] = []
        capped = self._collect(got, entries)
        if capped or not self._asm.completes(entries):
            while more := await self._xread(block=False):
                if not self._collect(more, entries):
                    break
        entries.sort(key=lambda e: (e.last, e.shard))  # each stream's own order is kept
        for entry in entries:
            released = self._asm.feed(entry)
            asm = self._asm
            extras = zip(
                asm.offsets,
                asm.statuses,
                asm.scenarios,
                asm.levels,
                asm.books,
                asm.bands,
                asm.lost,
                strict=True,
            )
            for out, (offset, st, sc, lv, books, bd, lost) in zip(released, extras, strict=True):
                if out is None:
                    await self._gap("records lost (trimmed, dropped or a new producer)")
                    return
                self._flushes += 1
                self._records += len(out)
                if not self.mirror:  # nobody here holds a book: not even decoded
                    lv = books = b""
                elif lost:
                    self._ready.append((BusLevelsLost(), None))
                self._ready += flush_items(out, offset, st, self._scenario_items(sc), lv, bd)
                if books:
                    self._ready.append((BusBooks(bc.decode_books(books, self.book_depth)), None))

    def _collect(self, got: Any, into: list[bc.Entry]) -> bool:
        """Decode an XREAD answer into `into`, move the cursors; True if a stream was capped."""
        prefix = len(self.namespace) + len(":ticks:")
        capped = False
        for key, entries in got:
            shard = int(key[prefix:])
            for _, fields in entries:
                into.append(bc.decode_entry(shard, fields))
            if entries:
                self._cursors[key.decode()] = entries[-1][0]
            capped |= len(entries) >= READ_COUNT
        return capped

    async def _look_at_lease(self) -> None:
        """Who produces, and how many stand by (for `stats`): once a second at most."""
        keys = bl.lease_keys(self.namespace)
        self.lease = bl.parse_state(await self._client.eval(bl.INFO_SCRIPT, keys=keys, args=[]))
        self._lease_at = trio.current_time() + LEASE_INFO_EVERY_S

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
        return BusGap(
            reason, self.snapshot, self.epoch, self.offset, self.halted, self.scenarios, self.bands
        )

    def _scenario_items(self, raw: bytes) -> list[tuple[int, BusScenario]]:
        """A flush's scenario changes (`codec.encode_scenarios`) as items, by records before;
        `scenarios` follows them."""
        out = []
        for at, name, started, ts in bc.decode_scenarios(raw) if raw else ():
            playing = list(self.scenarios)  # a new list: items already made keep theirs
            if started:
                playing.append(name)
            elif name in playing:
                playing.remove(name)
            self.scenarios = playing
            out.append((at, BusScenario(name, started, ts, self.scenarios)))
        return out
