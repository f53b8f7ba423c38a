"""The client library: `async with connect(url) as feed`, requests, and `async for event in feed`.

One background task per feed reads every server message: replies resolve the request that waits
for them (by `id`), market data becomes `Batch` events, and a dropped connection is reopened with
exponential backoff and jitter, the subscription and throttle restored, and a `Gap` event says
what was missed. The dashboard and `tickwire tail` use this module like any user's code.
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import numpy as np
import orjson
import trio
from numpy.typing import NDArray
from trio_websocket import ConnectionClosed, WebSocketConnection

from tickwire.feed import protocol as p
from tickwire.feed.backoff import Backoff
from tickwire.feed.client.dial import HANDSHAKE_TIMEOUT_S, open_connection, parse_url
from tickwire.feed.client.events import (
    AuthError,
    Batch,
    ConnectError,
    ConnectionLost,
    Event,
    Gap,
    ProtocolError,
    Status,
    TradingStatus,
    unwrap_group,
)
from tickwire.feed.urls import redact

DEFAULT_URL = "ws://127.0.0.1:8765/v1"
_MAX_SERVER_MESSAGE = 64 * 1024 * 1024  # a snapshot of 10,000 symbols in JSON is ~2.5 MB
_CLOSE_TIMEOUT_S = 2.0  # a server that does not answer our close frame within this is dropped


class Feed:
    """A live connection to a tickwire server. Build it with `connect()`."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        encoding: Literal["json", "binary"],
        reconnect: bool,
        backoff_initial_s: float,
        backoff_max_s: float,
        max_queue: int,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        if encoding not in ("json", "binary"):
            raise ValueError(f"encoding must be 'json' or 'binary', got {encoding!r}")
        self.url = url
        self.encoding = encoding
        self.state: Literal["connecting", "live", "reconnecting", "closed"] = "connecting"
        self.welcome: dict[str, Any] = {}
        self.last_message_s = -math.inf  # trio.current_time() of the last message received
        self.reconnects = 0
        self.ticks_received = 0
        self.messages_received = 0
        self.conflated = 0
        self.lost = 0
        self._target = parse_url(url)
        self._token = token
        self._ssl_context = ssl_context
        self._handshake_timeout_s = handshake_timeout_s
        self._subprotocol = p.SUBPROTOCOL_BINARY if encoding == "binary" else p.SUBPROTOCOL_JSON
        self._epoch: object = None  # the server run's `epoch` from welcome, if it sends one
        self._reconnect = reconnect
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._max_queue = max_queue
        self._ws: WebSocketConnection | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[int, tuple[trio.Event, list[dict[str, Any]]]] = {}
        self._events_send, self._events_recv = trio.open_memory_channel[Event | BaseException](
            math.inf
        )
        self._space = trio.Event()
        self._subscription: list[str] = []
        self._throttle_ms = 0
        self._mode: str | None = None
        self._names: NDArray[np.object_] = np.empty(0, object)
        self._index: dict[str, int] = {}
        self._last_seq = np.zeros(0, np.uint64)
        self._seen = np.zeros(0, np.bool_)
        self._seq = 0
        # Where we are in the server's stream (the last data message's offset) in the run that
        # `_epoch` names: after a reconnect to the same run, the server replays what we missed.
        self._offset: int | None = None
        self._gap_pending: tuple[float, int] | None = None  # (downtime_s, lost so far)
        self._gap_reason: Literal["reconnected", "source"] = "reconnected"  # of `_gap_pending`
        self._closing = False
        self._closed = trio.Event()  # set once aclose() is done with the connection

    # ------------------------------------------------------------------ public requests

    @property
    def subscription(self) -> list[str]:
        """What this feed holds (and restores after a reconnect): symbols, or ['*']."""
        return list(self._subscription)

    async def subscribe(
        self,
        symbols: Sequence[str] | str,
        *,
        snapshot: bool = True,
        mode: Literal["all", "latest"] | None = None,
    ) -> list[str]:
        """Add symbols (or '*'); returns the whole subscription. ProtocolError if refused.

        `mode` "all" (the server's default) delivers every update; "latest" only the latest
        state of each symbol per message, e.g. for a screen. It applies to the whole feed.
        """
        extra: dict[str, Any] = {} if mode is None else {"mode": mode}
        reply = await self._request(
            "subscribe", symbols=_symbols(symbols), snapshot=snapshot, resume=True, **extra
        )
        self._subscription = list(reply["symbols"])
        self._mode = reply.get("mode", self._mode)
        return self.subscription

    async def unsubscribe(self, symbols: Sequence[str] | str) -> list[str]:
        """Remove symbols (or '*' for all); returns the whole subscription."""
        names = _symbols(symbols)
        reply = await self._request("unsubscribe", symbols=names)
        self._subscription = list(reply["symbols"])
        for s in names:  # a later re-subscribe starts afresh: its seq jump is not a loss
            if s in self._index:
                self._seen[self._index[s]] = False
        return self.subscription

    async def throttle(self, interval_ms: int) -> None:
        """At most one update per symbol per `interval_ms` (0: every update), latest state."""
        await self._request("throttle", interval_ms=interval_ms)
        self._throttle_ms = interval_ms

    async def symbols(self) -> list[dict[str, Any]]:
        """The server's universe: symbol, id, name, sector, price, tick_size, lot_size..."""
        reply = await self._request("symbols")
        return list(reply["symbols"])

    async def stats(self) -> dict[str, Any]:
        """This connection's counters and the server's (see the protocol reference)."""
        return await self._request("stats")

    async def ping(self) -> float:
        """Round-trip time to the server in seconds."""
        t0 = trio.current_time()
        await self._request("ping")
        return trio.current_time() - t0

    def resolve(self, symbols: Sequence[str] | str) -> list[str]:
        """The server's spelling of `symbols`, matched case-insensitively ('*' passes).

        Raises ProtocolError('unknown_symbol') naming the closest symbols, before any request.
        """
        return resolve_symbols(_symbols(symbols), self._names.tolist())

    def symbol_names(self) -> NDArray[np.object_]:
        """Symbol names indexed by id (the `sym` field of tick records)."""
        return self._names

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> Event:
        try:
            item = await self._events_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        self._space.set()
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        """Close the connection normally (1000) and end the iteration.

        Takes one round trip: our close frame out, the server's answer back. The connection's
        tasks stay up until then (tearing them down early would lose the answer and leave us
        waiting for nothing), and events nobody will read are dropped meanwhile.
        """
        if self._closing:
            return
        self._closing = True
        self.state = "closed"
        self._space.set()  # a reader waiting for queue space: it drops events from now on
        ws = self._ws
        try:
            if ws is not None:
                with trio.move_on_after(_CLOSE_TIMEOUT_S):
                    await ws.aclose()
        finally:
            self._closed.set()
            self._events_send.close()

    # ------------------------------------------------------------------ requests

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        ws = self._ws
        if ws is None or self.state != "live":
            raise ConnectionLost(f"not connected to {redact(self.url)} ({self.state}); try again")
        rid = next(self._ids)
        done = trio.Event()
        slot: list[dict[str, Any]] = []
        self._waiters[rid] = (done, slot)
        self._space.set()  # the reader must keep reading while someone waits for a reply
        try:
            try:
                await ws.send_message(orjson.dumps({"op": op, "id": rid, **fields}).decode())
            except ConnectionClosed:
                raise ConnectionLost(f"connection to {redact(self.url)} lost during {op}") from None
            await done.wait()
        finally:
            del self._waiters[rid]
        if not slot:
            raise ConnectionLost(f"connection to {redact(self.url)} lost before the reply to {op}")
        reply = slot[0]
        if reply.get("type") == "error":
            raise ProtocolError(reply["code"], reply.get("message", ""), reply.get("symbols", ()))
        return reply

    # ------------------------------------------------------------------ connection

    async def _start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self._run)

    async def _run(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Hold one connection after another until closed; the first failure is connect()'s."""
        attempt = 0
        down_since = 0.0
        started = False
        error = ""

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            if attempt:
                delay = self._backoff.delay(attempt) * random.uniform(0.5, 1.0)
                await self._emit(Status("reconnecting", round(delay, 3), error, attempt))
                await trio.sleep(delay)
            try:
                async with open_connection(
                    self._target,
                    token=self._token,
                    subprotocol=self._subprotocol,
                    ssl_context=self._ssl_context,
                    timeout_s=self._handshake_timeout_s,
                    max_message_size=_MAX_SERVER_MESSAGE,
                ) as (ws, welcome):
                    restarted = self._welcomed(welcome)
                    await self._session(
                        ws,
                        attempt=attempt,
                        downtime_s=trio.current_time() - down_since,
                        restarted=restarted,
                        ready=ready,
                    )
                    if self._closing:  # keep the connection's tasks until the close is answered
                        await self._closed.wait()
                    attempt = 0
                    error = _close_text(ws)
            except ConnectError as exc:
                if not started:
                    raise
                if isinstance(exc, AuthError) or not self._reconnect:
                    self.state = "closed"
                    await self._events_send.send(exc)
                    self._events_send.close()
                    return
                error = str(exc)
                attempt += 1
                continue
            finally:
                self._ws = None
                for done, _ in self._waiters.values():
                    done.set()  # their slot stays empty: ConnectionLost
            if self._closing:
                return
            if not self._reconnect:
                self.state = "closed"
                await self._events_send.send(
                    ConnectionLost(f"connection to {redact(self.url)} closed")
                )
                self._events_send.close()
                return
            self.state = "reconnecting"
            down_since = trio.current_time()
            attempt = 1

    def _welcomed(self, welcome: dict[str, Any]) -> bool:
        """Keep the welcome; True if its `epoch` says the server restarted since the last one."""
        self.welcome = welcome
        epoch = welcome.get("epoch")
        restarted = epoch is not None and self._epoch is not None and epoch != self._epoch
        if epoch is not None:
            self._epoch = epoch
        return restarted

    async def _session(
        self,
        ws: WebSocketConnection,
        *,
        attempt: int,
        downtime_s: float,
        restarted: bool,
        ready: Callable[[], None],
    ) -> None:
        """Serve one open connection until it drops: read, restore, report the gap."""
        self._ws, self._seq = ws, 0
        async with trio.open_nursery() as conn_nursery:
            conn_nursery.start_soon(self._reader, ws, conn_nursery.cancel_scope)
            if attempt:
                self.reconnects += 1
                if restarted:  # the old seqs mean nothing now: start every symbol afresh
                    self._seen[:] = False
                    self._gap_pending = None
                    await self._emit(Gap("restarted", None, (), None, round(downtime_s, 3)))
                else:
                    # Set before resubscribing: the snapshot that reports the gap may arrive
                    # before the ack's waiter wakes.
                    self._gap_pending = (downtime_s, 0)
                    self._gap_reason = "reconnected"
                await self._emit(Status("live", attempt=attempt))
            try:
                await self._setup(ws, restoring=attempt > 0, restarted=restarted)
            except (ProtocolError, ConnectionLost) as exc:
                if not self._closing:  # aclose() ended the iteration already
                    await self._events_send.send(exc)
                conn_nursery.cancel_scope.cancel()
                ready()
                return
            if attempt and not self._subscription and self._gap_pending is not None:
                downtime, _ = self._gap_pending  # nothing to restore: no snapshot comes
                self._gap_pending = None
                await self._emit(Gap("reconnected", 0, (), None, round(downtime, 3)))
            if not attempt:
                await self._emit(Status("live"))
            ready()

    async def _setup(
        self, ws: WebSocketConnection, *, restoring: bool, restarted: bool = False
    ) -> None:
        """Learn the universe; after a reconnect, restore the subscription and throttle."""
        self.state = "live"
        refs = (await self._request("symbols"))["symbols"]
        if len(refs) != len(self._names):
            self._names = np.array([r["symbol"] for r in refs], dtype=object)
            self._index = {r["symbol"]: r["id"] for r in refs}
            self._last_seq = np.zeros(len(refs), np.uint64)
            self._seen = np.zeros(len(refs), np.bool_)
        if restoring:
            if self._throttle_ms:
                await self._request("throttle", interval_ms=self._throttle_ms)
            if self._subscription:
                resume: dict[str, Any] | bool = True
                if self._offset is not None and not restarted:  # offsets of another run: none
                    resume = {"epoch": self._epoch, "offset": self._offset}
                extra = {} if self._mode is None else {"mode": self._mode}
                await self._request(
                    "subscribe", symbols=self._subscription, snapshot=True, resume=resume, **extra
                )

    async def _emit(self, event: Event) -> None:
        if self._closing:
            return  # nobody reads them any more
        while (
            self._events_send.statistics().current_buffer_used >= self._max_queue
            and not self._waiters
        ):
            self._space = trio.Event()
            await self._space.wait()
            if self._closing:
                return
        await self._events_send.send(event)

    async def _reader(self, ws: WebSocketConnection, scope: trio.CancelScope) -> None:
        try:
            while True:
                await self._dispatch(await ws.get_message())
        except ConnectionClosed:
            scope.cancel()

    async def _dispatch(self, message: str | bytes) -> None:
        self.last_message_s = trio.current_time()
        self.messages_received += 1
        if isinstance(message, bytes):
            frame = p.decode_binary(message)
            if frame.offset is not None:
                self._offset = frame.offset
            is_ticks = frame.kind is p.BinaryType.TICKS
            await self._data("ticks" if is_ticks else "snapshot", frame.seq, frame.records)
            return
        msg = orjson.loads(message)
        mtype = msg.get("type")
        if mtype == "ticks" or mtype == "snapshot":
            self._offset = msg.get("offset", self._offset)
            await self._data(mtype, msg["seq"], p.records_from_json(msg["ticks"], self._index))
        elif mtype == "heartbeat":
            await self._check_seq(msg["seq"])
        elif mtype == "status":  # a symbol halted or resumed (a market scenario)
            await self._emit(
                TradingStatus(msg["symbol"], msg["status"], msg.get("reason", ""), msg["ts"])
            )
        elif mtype == "gap":  # the server's source lost updates: a snapshot follows
            if msg.get("epoch") not in (None, self._epoch):  # a new run upstream: a restart
                self._epoch, self._offset = msg["epoch"], None
                self._seen[:] = False  # its seqs start afresh: what was missed is unknowable
                await self._emit(Gap("restarted", None, ()))
            else:
                self._gap_pending, self._gap_reason = (0.0, 0), "source"
        elif (waiter := self._waiters.get(msg.get("id", 0))) is not None:
            if msg.get("recovered") and self._gap_pending is not None:
                # Emitted here, in the reader, so that it precedes the replayed batches.
                downtime, _ = self._gap_pending
                self._gap_pending = None
                await self._emit(
                    Gap("reconnected", 0, (), None, round(downtime, 3), int(msg["missed"]))
                )
            waiter[1].append(msg)
            waiter[0].set()

    async def _check_seq(self, seq: int) -> None:
        if seq != self._seq + 1:
            await self._emit(Gap("seq", 0, (), missed_messages=seq - self._seq - 1))
        self._seq = seq

    async def _data(
        self, kind: Literal["ticks", "snapshot"], seq: int, records: NDArray[np.void]
    ) -> None:
        await self._check_seq(seq)
        records, sym, jumps = _seq_jumps(records, self._last_seq, self._seen)
        skipped = int(jumps.sum())
        self.ticks_received += len(records)
        if self._gap_pending is not None and kind == "snapshot":
            downtime, _ = self._gap_pending
            self._gap_pending = None
            self.lost += skipped
            jumped = tuple(self._names[sym[jumps > 0]].tolist())
            reason, self._gap_reason = self._gap_reason, "reconnected"
            await self._emit(Gap(reason, skipped, jumped, None, round(downtime, 3)))
            skipped = 0
        self.conflated += skipped
        await self._emit(Batch(kind, seq, records, skipped, self._names))


@asynccontextmanager
async def connect(
    url: str = DEFAULT_URL,
    *,
    token: str | None = None,
    encoding: Literal["json", "binary"] = "json",
    reconnect: bool = True,
    backoff_initial_s: float = 0.1,
    backoff_max_s: float = 10.0,
    max_queue: int = 1024,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> AsyncIterator[Feed]:
    """Connect to a tickwire server; the feed closes normally when the block exits.

    Args:
        url: the server, e.g. ws://127.0.0.1:8765/v1 (wss:// for TLS).
        token: sent as `Authorization: Bearer TOKEN` when the server requires one.
        encoding: 'json' or 'binary' (numpy records straight off the wire; fastest).
        reconnect: reopen a dropped connection with exponential backoff and jitter
            (`backoff_initial_s` doubling up to `backoff_max_s`), restoring the subscription.
        max_queue: events buffered for a slow consumer before the feed stops reading (the
            server then conflates for you: you get the latest state, not a backlog).
        ssl_context: for wss:// with a private CA (default: the system's trust store), e.g.
            `ssl.create_default_context(cafile="ca.pem")`.
        handshake_timeout_s: TCP connect, TLS, the WebSocket upgrade and the server's
            `welcome` must be done within this, on every (re)connect; a wss:// URL on a plain
            server, or ws:// on a TLS one, fails with a ConnectError after it.

    Raises:
        ConnectError: the server cannot be reached, refused the upgrade (HTTP 404: not the
            feed's path), or the handshake timed out; AuthError for HTTP 401 (missing or wrong
            token). The message says what to do. With `reconnect=True` only the first
            connection raises; later failures are retried and reported as `Status` events,
            except AuthError, which ends the iteration.
    """
    feed = Feed(
        url,
        token=token,
        encoding=encoding,
        reconnect=reconnect,
        backoff_initial_s=backoff_initial_s,
        backoff_max_s=backoff_max_s,
        max_queue=max_queue,
        ssl_context=ssl_context,
        handshake_timeout_s=handshake_timeout_s,
    )
    try:
        async with trio.open_nursery() as nursery:
            await feed._start(nursery)
            try:
                yield feed
            finally:
                await feed.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None


def _seq_jumps(
    records: NDArray[np.void], last_seq: NDArray[np.uint64], seen: NDArray[np.bool_]
) -> tuple[NDArray[np.void], NDArray[np.intp], NDArray[np.int64]]:
    """Per record, the updates skipped before it (its symbol's seq jump), with repeats dropped.

    A message may hold several updates of a symbol (every-update delivery): each is compared
    with the one before it. A record at or below the seq already held is a repeat (a replay
    that overlaps a snapshot) and is dropped. Updates `last_seq` and `seen` in place.
    """
    sym = records["sym"].astype(np.intp)
    seqs = records["seq"].astype(np.int64)
    order = np.argsort(sym, kind="stable")  # by symbol, in event order within each
    s, q = sym[order], seqs[order]
    first = np.ones(len(s), np.bool_)
    first[1:] = s[1:] != s[:-1]
    prev = np.empty(len(s), np.int64)
    prev[1:] = q[:-1]
    prev[first] = last_seq[s[first]].astype(np.int64)
    known = seen[s] | ~first
    jump = np.zeros(len(s), np.int64)
    jump[order] = np.where(known & (q > prev), q - prev - 1, 0)
    repeat = np.zeros(len(s), np.bool_)
    repeat[order] = known & (q <= prev)
    last = np.ones(len(s), np.bool_)
    last[:-1] = s[1:] != s[:-1]
    ends = s[last]
    last_seq[ends] = np.maximum(last_seq[ends], q[last].astype(np.uint64))
    seen[s] = True
    if repeat.any():
        keep = ~repeat
        return records[keep], sym[keep], jump[keep]
    return records, sym, jump


def resolve_symbols(wanted: Sequence[str], universe: Sequence[str]) -> list[str]:
    """Map `wanted` onto `universe` case-insensitively; '*' passes through.

    Raises ProtocolError('unknown_symbol', ...) whose message names the closest symbols
    (difflib), so a typo like `APPL` answers "did you mean AAPL?".
    """
    by_key = {s.casefold(): s for s in universe}
    out: list[str] = []
    unknown: list[str] = []
    for name in wanted:
        found = "*" if name == "*" else by_key.get(name.strip().casefold())
        if found is None:
            unknown.append(name)
        elif found not in out:
            out.append(found)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.upper(), [s.upper() for s in universe], n=3)
            spelled = [by_key[c.casefold()] for c in close]
            hints.append(
                f"{name!r} (did you mean {', '.join(spelled)}?)" if spelled else repr(name)
            )
        noun = "symbol" if len(unknown) == 1 else "symbols"
        raise ProtocolError(
            "unknown_symbol",
            f"unknown {noun} {'; '.join(hints)}; the server has {len(universe)} symbols",
            unknown,
        )
    return out


def _symbols(symbols: Sequence[str] | str) -> list[str]:
    return [symbols] if isinstance(symbols, str) else list(symbols)


def _close_text(ws: WebSocketConnection) -> str:
    reason = ws.closed
    if reason is None:
        return "connection lost"
    return f"closed by server: {reason.code}{f' {reason.reason}' if reason.reason else ''}"
