"""The feed server: the trio I/O shell around the market, the hub and the connections.

`Server.run` opens the listening sockets, starts the generator task (steps the market at the
cadence, publishes into the hub and delivers to the subscribers it woke, skipping ahead rather
than queueing when it falls behind) and one accept loop per listening socket. Each accepted
socket is a `Connection` (its own task): the HTTP front decides (404, 403, 401, 429), the
WebSocket core speaks `/v1`, the connection cap closes with 1013. A failure inside one connection
is logged once and closes that connection with 1011, never the server. The same port answers
the page, `/metrics`, `/livez` and `/readyz` (`_routes.py`); `drain()` is the graceful SIGTERM.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import trio

from tickwire.feed import oplog, venues
from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub
from tickwire.feed.server.config import ServerConfig, Upstream
from tickwire.feed.server.metrics import Metrics, Response, readyz
from tickwire.feed.server.routes import http_routes
from tickwire.feed.v1.core import FeedContext, FeedCore, ServerCounters
from tickwire.feed.venues.session import VenueContext, VenueCore
from tickwire.feed.version import version
from tickwire.feed.ws import drain as _drain
from tickwire.feed.ws import http
from tickwire.feed.ws.connection import Connection, Shell, admit
from tickwire.feed.ws.registry import Registry
from tickwire.feed.ws.transport import configure, open_listeners
from tickwire.feed.ws.websocket import WebSocketCore
from tickwire.simulators import Market, Universe
from tickwire.simulators.replay import Replay
from tickwire.simulators.ticks import TickBatch

log = logging.getLogger("tickwire.server")

SERVER_NAME = "tickwire"
_IDLE_STEP_S = 0.05  # with no subscriber, step the market this rarely (refresh catches up)
_DELIVER_SLICE_S = 0.001  # the fan-out lets other tasks (handshakes) run this often
_EMFILE_LOG_S = 10.0


class Server:
    def __init__(
        self,
        config: ServerConfig,
        market: Market | Replay | None = None,
        *,
        start_ns: int | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        """`start_ns`: the event time at start (default: the wall clock), e.g. to replay a
        given minute. `upstream`: serve what it pushes (a bus gateway), with no market."""
        self.config = config
        self.upstream = upstream
        if upstream is not None:
            universe = upstream.universe
        elif market is not None:
            universe = market.universe
        else:
            universe = config.universe or Universe.default()
        self._t0 = trio.current_time()
        self._wall0_ns = time.time_ns() if start_ns is None else start_ns
        self.market: Market | Replay | None = None
        if upstream is None:
            self.market = market or Market(
                universe,
                seed=config.seed,
                start_ns=self._wall0_ns,
                activity=config.activity,
                session=config.session,
            )
            initial = self.market.snapshot()
        else:
            initial, epoch, offset = upstream.start()
        self.hub = Hub(
            universe,
            initial,
            history_s=config.history_s,
            history_bytes=int(config.history_mb * 1024 * 1024),
            max_lag_s=config.max_lag_s,
        )
        if upstream is not None:  # the producer's epoch and offsets, so resumes work anywhere
            self.hub.resync(initial, epoch=epoch, offset=offset)
        # Called with every stepped batch and its stream offset (a bus producer's publish).
        self.on_publish: Callable[[TickBatch, int], None] | None = None
        # More figures for `stats` and /metrics (a bus producer's lease), read when asked.
        self.source_statistics: Callable[[], dict[str, Any]] | None = None
        self.always_step = False  # step at the cadence even with no subscriber (a producer)
        # Puts each stepped batch in the order its readers will see it (a bus producer: the
        # order gateways rebuild from the shards), before this server's own hub numbers it.
        self.reorder: Callable[[TickBatch], TickBatch] | None = None
        self.universe_index = {s: i for i, s in enumerate(universe.symbols)}
        self.symbols_body = orjson.dumps(universe.reference())
        self.name = f"{SERVER_NAME}/{version()}"
        self.counters = ServerCounters()
        self.ctx = FeedContext(
            hub=self.hub,
            index=self.universe_index,
            symbols_body=self.symbols_body,
            limits=config.limits,
            server_name=self.name,
            heartbeat_ms=config.heartbeat_ms,
            stall_s=config.stall_ms / 1000,
            close_timeout_s=2.0,
            t0_s=self._t0,
            wall0_ns=self._wall0_ns,
            stats=lambda: self.statistics(),
            counters=self.counters,
            refresh=self._refresh,
        )
        self.venue_ctx = VenueContext(
            universe=universe,
            tokens=config.tokens,
            stall_s=config.stall_ms / 1000,
            close_timeout_s=2.0,
            t0_s=self._t0,
            wall0_ns=self._wall0_ns,
            counters=self.counters,
            binance_ping_s=config.binance_ping_s,
            alpaca_connections_per_key=config.alpaca_connections_per_key,
            hub=self.hub,
        )
        self.registry: Registry[Connection] = Registry(
            config.max_connections, config.max_connections_per_ip
        )
        self._paced = isinstance(self.market, Replay) and self.market.paced_by_readers
        self.source_gaps = 0  # the upstream lost updates (bus gaps): clients got a snapshot
        self._woken: list[Connection] = []
        self._idle_sleep: trio.CancelScope | None = None
        self._emfile_logged_s = -_EMFILE_LOG_S
        self.url = ""
        self._cancel: trio.CancelScope | None = None
        self._shell: Shell | None = None
        self.metrics = Metrics(self._metric_figures, version=version())
        self._last_publish_s: float | None = None
        self._replay_finished = False  # logged once; /readyz says so from then on
        self._accepting = trio.CancelScope()  # cancelled: the listeners are closed
        self._drain: _drain.Drain[Connection] | None = None
        self._drain_changed = trio.Event()
        self._listeners: list[socket.socket] = []

    @property
    def connections(self) -> set[Connection]:
        """The open WebSocket connections (not counting handshakes in progress)."""
        return self.registry.open

    def now_ns(self) -> int:
        """Event time: wall clock at start, advanced by trio's (fakeable) clock."""
        return self.ctx.now_ns(trio.current_time())

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or `shutdown()`; `started(url)` once listening."""
        cfg = self.config
        ssl_context = cfg.ssl_context()
        policy = replace(cfg.policy(), routes=http_routes(self.metrics, self._readiness))
        listeners = self._listeners = open_listeners(cfg.host, cfg.port, reuse_port=cfg.reuse_port)
        try:
            with trio.CancelScope() as self._cancel:
                async with trio.open_nursery() as nursery:
                    shell = Shell(
                        policy=policy,
                        make_core=self._make_core,
                        registry=self.registry,
                        nursery=nursery,
                        woken=self._woken,
                        ssl_context=ssl_context,
                        on_refused=self._count_refused,
                        on_open=self._count_open,
                        on_close=self._count_close,
                    )
                    self._shell = shell
                    if self.upstream is not None:
                        # Its start snapshot is data to serve: ready (until stale) before the
                        # first flush, which an idle bus producer sends up to 50 ms later.
                        self._last_publish_s = trio.current_time()
                        await nursery.start(self.upstream.run, self)
                    else:
                        await nursery.start(self.run_market)
                    nursery.start_soon(self._accept_all, listeners, shell)
                    scheme = "wss" if ssl_context else "ws"
                    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
                    port = listeners[0].getsockname()[1]
                    self.url = f"{scheme}://{host}:{port}{p.PATH}"
                    task_status.started(self.url)
        finally:
            self._close_listeners()

    async def handle_socket(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        """Serve one connected socket as if accepted (tests: a socketpair with tiny buffers
        is a reader that stalls on demand). The server must be running."""
        assert self._shell is not None, "start Server.run first"
        configure(sock)
        await admit(sock, addr, self._shell).run()

    def _make_core(self, accept: http.Accept, wake: Any, now: float) -> WebSocketCore | http.Refuse:
        if self._drain is not None:  # /readyz says 503 too: a balancer routes elsewhere
            return http.refusal(
                503, "draining", "the server is shutting down: connect again in a moment\n"
            )
        if accept.route == p.PATH:
            binary = accept.subprotocol == p.SUBPROTOCOL_BINARY
            return FeedCore(self.ctx, wake, binary=binary, now=now)
        factory = venues.route(accept.path)
        if factory is None:  # pragma: no cover - the HTTP front routes only venue paths here
            return http.refusal(404, f"path {accept.path} is not a WebSocket route", "")
        ctx = self.venue_ctx
        try:
            session = factory(
                venues.Upgrade(
                    accept.path,
                    accept.query,
                    accept.headers,
                    ctx.universe,
                    ctx.tokens,
                    ctx.now_ns(now),
                    ctx.services,
                    accept.peer,
                )
            )
        except venues.HandshakeRefused as exc:
            return http.refusal(exc.status, exc.reason, exc.reason + "\n")
        return VenueCore(ctx, session, wake, now)

    def _count_refused(self) -> None:
        self.counters.connections_refused += 1

    def _count_open(self) -> None:
        self.counters.connections_total += 1

    async def _accept_all(self, listeners: list[socket.socket], shell: Shell) -> None:
        """One accept loop per listening socket, until a drain closes the listeners."""
        try:
            with self._accepting:
                async with trio.open_nursery() as nursery:
                    for lsock in listeners:
                        nursery.start_soon(self._accept, lsock, shell)
        finally:
            self._close_listeners()

    def _close_listeners(self) -> None:
        for lsock in self._listeners:
            if lsock.fileno() != -1:
                trio.lowlevel.notify_closing(lsock)  # its accept loop returns
                lsock.close()

    async def _accept(self, lsock: socket.socket, shell: Shell) -> None:
        """Accept for ever, even when full: a new socket sheds the oldest handshake that has
        not sent its request (`admit`), so silent sockets cannot stop /livez or new clients.
        Running out of descriptors is logged, waited out, never fatal."""
        registry = self.registry
        while lsock.fileno() != -1:  # until a drain closes it
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                try:
                    await trio.lowlevel.wait_readable(lsock)
                except trio.ClosedResourceError:
                    return
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    now = trio.current_time()
                    if now - self._emfile_logged_s >= _EMFILE_LOG_S:
                        self._emfile_logged_s = now
                        log.warning(
                            "cannot accept: %s (%d sockets held); raise the descriptor limit "
                            "(ulimit -n) or lower --max-connections",
                            exc.strerror,
                            registry.held,
                        )
                    await trio.sleep(0.1)
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # the client gave up in the kernel's queue
                raise
            configure(sock)
            shell.nursery.start_soon(admit(sock, addr, shell).run)
            await trio.lowlevel.checkpoint()  # let its handshake start before the next accept

    async def shutdown(
        self, code: int = p.CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Close every client with `code` (1001 by default), all at once, then stop serving.
        The listening sockets are closed when it returns: the port can be bound again."""
        self._close_listeners()  # no new client while the others close
        for conn in list(self.registry.open):
            conn.close(code, reason)
        with trio.move_on_after(self.ctx.close_timeout_s + 0.5):
            while self.registry.open:
                await trio.sleep(0.01)  # each connection's task ends its close handshake
        if self._cancel is not None:
            self._cancel.cancel()

    # Chunks the market may make per step: for big universes one is a 100 ms cell (~0.1 s of
    # CPU at 20,000 symbols), so a handshake waits for at most about one chunk.
    _MAX_CHUNKS = 1
    _LAG_WARN_S, _LAG_OK_S = 1.0, 0.2  # market behind the clock: warn past this, clear under that
    _BEHIND_YIELD = 0.25  # behind, the market gets at most 80% of the time, the rest the others
    _lagging = False  # the market is behind the clock (logged once, until it has caught up)
    _target_ns: int = 0  # where the last step of the market was asked to go

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The generator: step the market every cadence, publish, deliver."""
        cadence_s = self.config.cadence_ms / 1000
        next_s = trio.current_time()
        task_status.started()
        while True:
            t = time.perf_counter()
            batch = self._step()
            step_s = time.perf_counter() - t
            sending = bool(self._woken)
            await self._deliver()
            if batch is not None:
                self._observe(batch, step_s, sending)
            if self._note_lag():
                # Behind the clock, the step made a whole chunk. The other tasks get a share of
                # the time, over many scheduler passes: a handshake needs several, and one pass
                # per chunk made it wait seconds.
                if self.ctx.subscribers or self.venue_ctx.fanout.subscribed:
                    self.counters.cadence_overruns += 1
                await trio.sleep(step_s * self._BEHIND_YIELD)
                next_s = trio.current_time()
                continue
            idle = self.ctx.subscribers == 0 and not self.venue_ctx.fanout.subscribed
            if idle and not self.always_step:
                # Nobody watches: the market is deterministic whatever the step size, so step
                # rarely; `_refresh` steps to now before anything reads its state. The history
                # keeps every update meanwhile, for clients that come back and resume.
                with trio.CancelScope() as self._idle_sleep:
                    await trio.sleep(_IDLE_STEP_S)
                self._idle_sleep = None
                next_s = trio.current_time()
                continue
            next_s += cadence_s
            now = trio.current_time()
            if now > next_s + cadence_s:
                # Behind by more than a whole cadence: skip ahead (the next step covers the
                # missed time in one bigger batch) instead of queueing.
                self.counters.cadence_overruns += 1
                next_s = now
            await trio.sleep_until(next_s)

    def _step(self) -> TickBatch | None:
        """Step the market (or a replay) to now and publish: `/v1`'s hub, then each venue with
        connections. A replay at speed 0 goes as fast as the clients read: it steps only once
        every subscriber has taken all there is (None: not stepped)."""
        if self._paced and not self.hub.caught_up():
            return None
        assert self.market is not None, "a server with an upstream is never stepped"
        now = trio.current_time()
        now_ns = self.ctx.now_ns(now)
        if isinstance(self.market, Market):
            # One chunk per step at most: a market behind the clock catches up in bounded
            # batches, with handshakes and sends in between, instead of one batch (and one
            # stall) that grows with its lag. Its event time then trails the clock (`_note_lag`).
            batch = self.market.step(now_ns, max_chunks=self._MAX_CHUNKS)
            self._target_ns = now_ns
        else:
            batch = self.market.step(now_ns)
        if self.reorder is not None:
            batch = self.reorder(batch)
        offset = self.hub.history.head
        # Market.step's (and a replay's) records are on the tick grid and never written again.
        self._publish(batch, now, now_ns, None)
        if self.on_publish is not None:
            self.on_publish(batch, offset)
        if not self._replay_finished and isinstance(self.market, Replay) and self.market.finished:
            self._replay_finished = True
            end = datetime.fromtimestamp(self.market.now_ns / 1e9, UTC).isoformat()
            log.info(
                "replay finished: all %d ticks served, the data ends at %s; /readyz answers 503"
                " from now on, clients keep the last state (--loop starts over at the end)",
                self.market.released,
                end,
            )
        return batch

    def _publish(self, batch: TickBatch, now: float, now_ns: int, offset: int | None) -> None:
        self.hub.publish(batch, on_grid=True, offset=offset)
        self._last_publish_s = now

    async def push(self, batch: TickBatch, offset: int | None = None) -> None:
        """An upstream's flush (records on the tick grid, never written again, e.g. a bus
        producer's market's): publish it at the producer's `offset` and deliver, as a step."""
        t = time.perf_counter()
        now = trio.current_time()
        self._publish(batch, now, self.ctx.now_ns(now), offset)
        step_s = time.perf_counter() - t
        sending = bool(self._woken)
        await self._deliver()
        self._observe(batch, step_s, sending)

    async def source_gap(self, snapshot: TickBatch, epoch: str, offset: int | None) -> None:
        """The upstream lost updates: every subscriber gets a `gap` notice and a snapshot."""
        self.source_gaps += 1
        self.hub.resync(snapshot, epoch=epoch, offset=offset)
        self._last_publish_s = trio.current_time()
        await self._deliver()

    def _note_lag(self) -> bool:
        """Whether the last step fell short of now; logs once when it falls behind by more than
        `_LAG_WARN_S` (the machine cannot generate this universe in real time) and once when it
        has caught up again."""
        if not isinstance(self.market, Market):
            return False  # a replay steps to now in one go: it cannot fall behind this way
        lag_s: float = (self._target_ns - self.market.now_ns) / 1e9  # 0: the last step got there
        if lag_s > self._LAG_WARN_S and not self._lagging:
            self._lagging = True
            log.warning(
                "the market is %.1f s behind real time: this machine cannot generate %d symbols "
                "at activity %g as fast as the clock; ticks keep their event time, clients get "
                "them late (fewer --symbols or a lower --activity fix it)",
                lag_s,
                len(self.market.universe),
                self.config.activity,
            )
        elif lag_s < self._LAG_OK_S and self._lagging:
            self._lagging = False
            log.info("the market has caught up with real time")
        return lag_s > 0

    def _observe(self, batch: TickBatch, step_s: float, sent: bool) -> None:
        """Once per step, two histogram observations: the step's time and, if it was sent to
        anyone, the newest tick's age at the end of the fan-out (batches are in event order)."""
        latency_s = (self.now_ns() - int(batch["ts"][-1])) / 1e9 if sent and len(batch) else None
        self.metrics.observe_step(step_s, latency_s)

    def step_always(self, on: bool) -> None:
        """A bus producer: step at the cadence while a gateway has subscribers (`on`), and
        rarely, like an idle server, while none has."""
        self.always_step = on
        if on and self._idle_sleep is not None:
            self._idle_sleep.cancel()  # at the cadence from now

    @property
    def watched(self) -> bool:
        """Whether any client subscribes here (on `/v1` or a venue)."""
        return bool(self.ctx.subscribers) or bool(self.venue_ctx.fanout.subscribed)

    def _refresh(self) -> None:
        """Before a snapshot or stats: if the market is stepping rarely, step it to now."""
        if self._idle_sleep is not None:
            self._step()
            self._idle_sleep.cancel()  # and resume the cadence if a subscription starts

    async def _deliver(self) -> None:
        """Send to every subscriber the hub woke, letting other tasks run every millisecond."""
        woken = self._woken
        if not woken:
            return
        batch = woken[:]
        woken.clear()
        now = trio.current_time()
        slice_end = time.perf_counter() + _DELIVER_SLICE_S
        for i, conn in enumerate(batch):
            conn.deliver(now)
            if i & 15 == 15 and time.perf_counter() > slice_end:
                await trio.lowlevel.checkpoint()  # accepts and handshakes get their turn
                now = trio.current_time()
                slice_end = time.perf_counter() + _DELIVER_SLICE_S

    # ------------------------------------------------------------------ stats

    def statistics(self) -> dict[str, Any]:
        c = self.counters
        bytes_sent, conflated, errors = c.bytes_sent, c.ticks_conflated, dict(c.errors)
        for conn in self.registry.open:  # the open ones' own counters; the ended ones are in c
            core = conn.core
            if isinstance(core, FeedCore):
                bytes_sent += core.bytes_sent
                conflated += core.sub.ticks_conflated
                for code, n in core.requests.error_codes.items():
                    errors[code] = errors.get(code, 0) + n
        return {
            "clients": len(self.registry.open),
            "connections_total": c.connections_total,
            "connections_refused": c.connections_refused,
            "handshakes_shed": self.registry.handshakes_shed,
            "alpaca_auth_failures": self.venue_ctx.services.alpaca_auth_failures.total,
            "uptime_s": round(trio.current_time() - self._t0, 3),
            "cadence_ms": self.config.cadence_ms,
            "cadence_overruns": c.cadence_overruns,
            "messages_sent": c.messages_sent,
            "ticks_sent": c.ticks_sent,
            "bytes_sent": bytes_sent,
            "ticks_conflated": conflated,
            "errors": errors,
            "closes": dict(c.closes),
            **self.hub.statistics(),
            **(self.upstream.statistics() if self.upstream is not None else {}),
            **(self.source_statistics() if self.source_statistics is not None else {}),
        }

    def _metric_figures(self) -> dict[str, Any]:
        """`statistics()` for `/metrics`: the bus lag in seconds, as Prometheus wants."""
        stats = self.statistics()
        if "bus_lag_ms" in stats:
            stats["bus_lag_s"] = stats["bus_lag_ms"] / 1000
        return stats

    # ------------------------------------------------------------------ operating

    def _count_close(self, conn: Connection) -> None:
        """A connection's one way out: fold its counters into the server's totals."""
        core, c = conn.core, self.counters
        if core is None:
            return
        code = str(core.close_code if core.close_code is not None else 1006)
        c.closes[code] = c.closes.get(code, 0) + 1
        if isinstance(core, FeedCore):
            c.bytes_sent += core.bytes_sent
            c.ticks_conflated += core.sub.ticks_conflated
            for err, n in core.requests.error_codes.items():
                c.errors[err] = c.errors.get(err, 0) + n
        if self._drain is not None:
            self._drain.gone(conn)
            self._drain_changed.set()

    def _readiness(self) -> Response:
        return readyz(
            listening=bool(self.url) and not self._accepting.cancel_called,
            draining=self._drain is not None,
            # A replay paced by its readers waits for them (the first one starts it): that is
            # its normal state, not a stale market, so only its end makes it unready.
            last_publish_s=trio.current_time() if self._paced else self._last_publish_s,
            now_s=trio.current_time(),
            cadence_ms=self.config.cadence_ms,
            upstream=self.upstream.not_ready() if self.upstream is not None else None,
            finished=self._replay_finished,
        )

    async def drain(self, drain_s: float, min_s: float = 0.0) -> None:
        """Graceful stop (SIGTERM): `/readyz` 503 at once, every client closed with 1012,
        oldest first, spread evenly over `drain_s` (`_drain.py`); the listener stays open for
        `min_s` (a balancer's health check sees the 503; new upgrades are refused with 503),
        then closes. Returns when all are gone and `min_s` has passed, or `drain_s` plus a
        grace has; cancel it to cut it short, then `shutdown()` closes the rest with 1001."""
        drain = self._drain = _drain.Drain[Connection](drain_s, min_s)
        clients = sorted(self.registry.open, key=lambda conn: conn.opened_s)
        log.info(
            "draining: closing %s with 1012 over %g s, listening for %g s more",
            oplog.counted(len(clients), "client"),
            drain_s,
            min_s,
        )
        drain.signal(trio.current_time(), clients)
        try:
            while True:
                now = trio.current_time()
                if not drain.listening(now) and not self._accepting.cancel_called:
                    self._accepting.cancel()
                    self._close_listeners()  # from here on a new client is refused
                for conn in drain.due(now):
                    conn.close(_drain.CLOSE_CODE, _drain.CLOSE_REASON)
                deadline = drain.next_deadline()
                if deadline is None:
                    return
                self._drain_changed = trio.Event()
                with trio.move_on_at(deadline):
                    await self._drain_changed.wait()
        finally:
            self._accepting.cancel()
            self._close_listeners()


async def serve(
    config: ServerConfig, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a server with `config` until cancelled; `started(url)` once it listens."""
    await Server(config).run(task_status=task_status)


__all__ = ["Server", "ServerConfig", "serve"]
