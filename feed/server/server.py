"""The feed server: composes one source with its sinks and its listeners, under trio.

`Server(config, source=..., sinks=[...])` opens the hub on the source's opening (`roles.Source`),
runs the source as a task (the generator stepping the market, or a bus reader pushing) and hands
each batch to the hub (`hubsink`) and every other sink, then delivers to the connections the hub
woke. One accept loop per listening socket (`listen`); each accepted socket is a `Connection`
(its own task): the HTTP front decides (404, 403, 401, 429), the WebSocket core speaks `/v1` or
a venue's dialect, the connection cap closes with 1013. A failure inside one connection is logged
once and closes that connection with 1011, never the server. The same port answers the page,
`/metrics`, `/livez` and `/readyz` (`routes`); `drain()` is the graceful SIGTERM (`operate`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import trio
from numpy.typing import NDArray

from tickwire.feed import protocol as p
from tickwire.feed import venues
from tickwire.feed.hub.hub import Hub
from tickwire.feed.server.admin import admin_route
from tickwire.feed.server.config import ServerConfig
from tickwire.feed.server.contexts import connection_contexts
from tickwire.feed.server.faulting import FaultPolicy
from tickwire.feed.server.hubsink import HubSink
from tickwire.feed.server.listen import Listeners
from tickwire.feed.server.market import MarketSource
from tickwire.feed.server.metrics import Metrics, Response, readyz
from tickwire.feed.server.operate import Operations
from tickwire.feed.server.roles import Sink, Source
from tickwire.feed.server.routes import http_routes, rest_route
from tickwire.feed.v1.core import FeedCore, ServerCounters
from tickwire.feed.v1.faulty import FaultyFeedCore
from tickwire.feed.venues.faulty import FaultyVenueCore
from tickwire.feed.venues.rest import MarketView, RestApi, RestTape
from tickwire.feed.venues.session import VenueCore
from tickwire.feed.version import version
from tickwire.feed.ws import http
from tickwire.feed.ws.connection import Connection, Shell, admit
from tickwire.feed.ws.registry import Registry
from tickwire.feed.ws.transport import configure
from tickwire.feed.ws.websocket import WebSocketCore
from tickwire.simulators import Market
from tickwire.simulators.replay import Replay
from tickwire.simulators.ticks import TickBatch

SERVER_NAME = "tickwire"
_DELIVER_SLICE_S = 0.001  # the fan-out lets other tasks (handshakes) run this often


class Server:
    """One source, its sinks (the hub first) and the listeners, composed once, at construction."""

    def __init__(
        self,
        config: ServerConfig,
        market: Market | Replay | None = None,
        *,
        start_ns: int | None = None,
        source: Source | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        """`source`: where the batches come from (default: a `MarketSource` on `market`, or on
        a market made from `config`, starting at event time `start_ns`, default the wall
        clock). `sinks`: who consumes the batches besides this server's hub (a bus producer)."""
        self.config = config
        if source is None:
            source = MarketSource(config, market, start_ns=start_ns)
        self.source = source
        opening = source.open()
        self._continued = opening.continued
        self._t0 = trio.current_time() if opening.start_s is None else opening.start_s
        self._wall0_ns = opening.start_ns
        self.hub = Hub(
            opening.universe,
            opening.snapshot,
            history_s=config.history_s,
            history_bytes=int(config.history_mb * 1024 * 1024),
            max_lag_s=config.max_lag_s,
            epoch=opening.epoch,
        )
        if opening.continued:  # the producer's epoch and offsets, so resumes work anywhere
            self.hub.resync(opening.snapshot, epoch=self.hub.epoch, offset=opening.offset)
        self.universe_index = {s: i for i, s in enumerate(opening.universe.symbols)}
        self.symbols_body = orjson.dumps(opening.universe.reference())
        self.name = f"{SERVER_NAME}/{version()}"
        self.counters = ServerCounters()
        self.faults = FaultPolicy(config.faults, config.seed)
        self.books = opening.books
        self.ctx, self.venue_ctx = connection_contexts(
            config,
            opening.universe,
            hub=self.hub,
            index=self.universe_index,
            symbols_body=self.symbols_body,
            server_name=self.name,
            t0_s=self._t0,
            wall0_ns=self._wall0_ns,
            stats=lambda: self.statistics(),
            counters=self.counters,
            refresh=source.refresh,
            books=self.books,
            scenario=getattr(source, "has_statuses", False),
        )
        # The venues' REST APIs read the hub's latest records and a tape of every batch.
        self.rest_tape = RestTape(len(opening.universe))
        self.rest = RestApi(
            MarketView(
                opening.universe, lambda: self.hub.lvc, self.rest_tape, self._halted, self.books
            ),
            tokens=config.tokens,
            binance_weight_per_min=config.binance_weight_per_min,
        )
        self.hub_sink = HubSink(self.hub, self.rest_tape, self.venue_ctx)
        self.sinks: tuple[Sink, ...] = (self.hub_sink, *sinks)
        for sink in self.sinks:
            sink.attach(self)
        self.registry: Registry[Connection] = Registry(
            config.max_connections, config.max_connections_per_ip
        )
        self.listeners = Listeners()
        self.operations = Operations(self.counters, self.registry, self.listeners)
        self.metrics = Metrics(self._metric_figures, version=version())
        self.source_gaps = 0  # the upstream lost updates (bus gaps): clients got a snapshot
        self.url = ""
        self._woken: list[Connection] = []
        self._cancel: trio.CancelScope | None = None
        self._shell: Shell | None = None
        self._last_publish_s: float | None = None

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
        ssl_context, u = cfg.ssl_context(), self.venue_ctx.universe
        policy = replace(
            cfg.policy(),
            routes=http_routes(self.metrics, self.readiness, admin_route(cfg, self.source, u)),
            rest_route=rest_route(self.rest, self.now_ns, self.source.refresh),
        )
        port = self.listeners.open(cfg.host, cfg.port, reuse_port=cfg.reuse_port)
        try:
            with trio.CancelScope() as self._cancel:
                async with trio.open_nursery() as nursery:
                    shell = self._shell = Shell(
                        policy=policy,
                        make_core=self._make_core,
                        registry=self.registry,
                        nursery=nursery,
                        woken=self._woken,
                        ssl_context=ssl_context,
                        on_refused=self.operations.refused,
                        on_open=self.operations.opened,
                        on_close=self.operations.closed,
                    )
                    await nursery.start(self.run_source)
                    nursery.start_soon(self.listeners.accept_all, shell)
                    scheme = "wss" if ssl_context else "ws"
                    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
                    self.url = f"{scheme}://{host}:{port}{p.PATH}"
                    task_status.started(self.url)
        finally:
            self.listeners.close()

    async def run_source(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the source alone (no listener: a bus producer without --port, tests)."""
        if self._continued:
            # Its opening snapshot is data to serve: ready (until stale) before the first
            # batch, which an idle bus producer sends up to 50 ms later.
            self._last_publish_s = trio.current_time()
        await self.source.run(self, task_status=task_status)

    async def handle_socket(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        """Serve one connected socket as if accepted (tests: a socketpair with tiny buffers
        is a reader that stalls on demand). The server must be running."""
        assert self._shell is not None, "start Server.run first"
        configure(sock)
        await admit(sock, addr, self._shell).run()

    def _make_core(self, accept: http.Accept, wake: Any, now: float) -> WebSocketCore | http.Refuse:
        if self.operations.draining:  # /readyz says 503 too: a balancer routes elsewhere
            return http.refusal(
                503, "draining", "the server is shutting down: connect again in a moment\\n"
            )
        faults = self.faults.injector(accept, now)
        if isinstance(faults, http.Refuse):
            return faults
        if accept.route == p.PATH:
            binary = accept.subprotocol == p.SUBPROTOCOL_BINARY
            if faults is not None:
                return FaultyFeedCore(self.ctx, wake, binary=binary, now=now, faults=faults)
            return FeedCore(self.ctx, wake, binary=binary, now=now)
        factory = venues.route(accept.path)
        if factory is None:  # pragma: no cover - the HTTP front routes only venue paths here
            return http.refusal(404, f"path {accept.path} is not a WebSocket route", "")
        ctx = self.venue_ctx
        try:
            up = (accept.path, accept.query, accept.headers, ctx.universe, ctx.tokens)
            session = factory(venues.Upgrade(*up, ctx.now_ns(now), ctx.services, accept.peer))
        except venues.HandshakeRefused as exc:
            return http.refusal(exc.status, exc.reason, exc.reason + "\\n")
        if faults is not None:
            return FaultyVenueCore(ctx, session, wake, now, faults)
        return VenueCore(ctx, session, wake, now)

    async def shutdown(
        self, code: int = p.CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Close every client with `code` (1001 by default), all at once, then stop serving.
        The listening sockets are closed when it returns: the port can be bound again."""
        self.listeners.close()  # no new client while the others close
        for conn in list(self.registry.open):
            conn.close(code, reason)
        with trio.move_on_after(self.ctx.close_timeout_s + 0.5):
            while self.registry.open:
                await trio.sleep(0.01)  # each connection's task ends its close handshake
        if self._cancel is not None:
            self._cancel.cancel()

    # ------------------------------------------------------------------ the feed a source drives

    @property
    def watched(self) -> bool:
        """Whether any client subscribes here (on `/v1` or a venue)."""
        return bool(self.ctx.subscribers) or self.hub_sink.venue_subscribers

    @property
    def wanted(self) -> bool:
        """Whether anyone wants batches at the cadence: a client here or a sink's readers."""
        return self.watched or any(sink.watched for sink in self.sinks)

    def caught_up(self) -> bool:
        """The hub's tick readers and the books' readers have all taken everything."""
        return self.hub.caught_up() and (self.books is None or self.books.caught_up())

    def latest(self) -> TickBatch:
        """The hub's latest record per symbol (a copy)."""
        return self.hub.lvc.copy()

    def overrun(self) -> None:
        self.counters.cadence_overruns += 1

    def publish(self, batch: TickBatch, offset: int | None = None) -> None:
        """Hand `batch` to the hub, then to every other sink, at stream `offset` (None: the
        hub's next)."""
        if offset is None:
            offset = self.hub.history.head
        for sink in self.sinks:
            sink.publish(batch, offset)
        self._last_publish_s = trio.current_time()

    def publish_statuses(self, records: NDArray[np.void]) -> None:
        """Trading status changes (`simulators.scenario.STATUS_DTYPE`) after the records
        published so far: `/v1` sends them to the connections holding their symbols."""
        if self.ctx.statuses is not None and len(records):
            # `/v1` connections and the venues' streams read it, each at its own place.
            self.ctx.statuses.publish(records, self.hub.history.head)
            for sink in self.sinks:  # a bus producer's gateways want them too
                sink.publish_statuses(records, self.hub.history.head)

    def publish_bands(self, records: NDArray[np.void]) -> None:
        """LULD band changes (`simulators.scenario.BAND_DTYPE`), where statuses go."""
        if self.ctx.statuses is not None and len(records):
            self.ctx.statuses.publish_bands(records, self.hub.history.head)
            for sink in self.sinks:  # a bus producer's gateways want them too
                sink.publish_bands(records, self.hub.history.head)

    def _halted(self) -> Collection[int]:
        """The symbol ids halted now (a scenario's), for the venues' REST answers."""
        return () if self.ctx.statuses is None else self.ctx.statuses.current.keys()

    def publish_scenario(self, name: str, active: bool, ts: int) -> None:
        if self.ctx.statuses is not None:  # `/v1` connections read it in the status log
            self.ctx.statuses.publish_scenario(name, active, ts, self.hub.history.head)
            for sink in self.sinks:  # a bus producer's gateways want it too
                sink.publish_scenario(name, active, ts, list(self.ctx.statuses.scenarios))

    async def push(self, batch: TickBatch, offset: int | None = None) -> None:
        """An upstream's flush (records on the tick grid, never written again, e.g. a bus
        producer's market's): publish it at the producer's `offset` and deliver, as a step."""
        t = time.perf_counter()
        self.publish(batch, offset)
        await self.deliver(batch, time.perf_counter() - t)

    async def resync(self, snapshot: TickBatch, epoch: str, offset: int | None) -> None:
        """The upstream lost updates: every subscriber gets a `gap` notice and a snapshot."""
        self.source_gaps += 1
        self.hub.resync(snapshot, epoch=epoch, offset=offset)
        self._last_publish_s = trio.current_time()
        await self.deliver()

    async def deliver(self, batch: TickBatch | None = None, step_s: float = 0.0) -> None:
        """Send to every subscriber the hub woke, letting other tasks run every millisecond;
        then, for the `batch` just published, observe its step's time and, if it was sent to
        anyone, the newest tick's age at the end of the fan-out (batches are in event order)."""
        woken = self._woken
        sent = bool(woken)
        if woken:
            conns = woken[:]
            woken.clear()
            now = trio.current_time()
            slice_end = time.perf_counter() + _DELIVER_SLICE_S
            for i, conn in enumerate(conns):
                conn.deliver(now)
                if i & 15 == 15 and time.perf_counter() > slice_end:
                    await trio.lowlevel.checkpoint()  # accepts and handshakes get their turn
                    now = trio.current_time()
                    slice_end = time.perf_counter() + _DELIVER_SLICE_S
        if batch is not None:
            age_s = (self.now_ns() - int(batch["ts"][-1])) / 1e9 if sent and len(batch) else None
            self.metrics.observe_step(step_s, age_s)

    # ------------------------------------------------------------------ operating

    def statistics(self) -> dict[str, Any]:
        """What the `stats` op and `/metrics` report: connections, the hub, source and sinks."""
        c = self.counters
        conns = self.operations.figures()
        return {
            "clients": conns["clients"],
            "connections_total": conns["connections_total"],
            "connections_refused": conns["connections_refused"],
            "handshakes_shed": conns["handshakes_shed"],
            "alpaca_auth_failures": self.venue_ctx.services.alpaca_auth_failures.total,
            "uptime_s": round(trio.current_time() - self._t0, 3),
            "cadence_ms": self.config.cadence_ms,
            "cadence_overruns": c.cadence_overruns,
            "messages_sent": c.messages_sent,
            "ticks_sent": c.ticks_sent,
            "bytes_sent": conns["bytes_sent"],
            "ticks_conflated": conns["ticks_conflated"],
            "errors": conns["errors"],
            "closes": dict(c.closes),
            "faults_injected": dict(self.faults.counts),
            **self.hub_sink.statistics(),
            **self.source.statistics(),
            **{k: v for sink in self.sinks[1:] for k, v in sink.statistics().items()},
        }

    def _metric_figures(self) -> dict[str, Any]:
        """`statistics()` for `/metrics`: the bus lag in seconds, as Prometheus wants."""
        stats = self.statistics()
        if "bus_lag_ms" in stats:
            stats["bus_lag_s"] = stats["bus_lag_ms"] / 1000
        return stats

    def readiness(self) -> Response:
        """`/readyz`: listening, not draining, the source ready and recently published."""
        source = self.source
        return readyz(
            listening=bool(self.url) and not self.listeners.closed,
            draining=self.operations.draining,
            # A replay paced by its readers waits for them (the first one starts it): that is
            # its normal state, not a stale market, so only its end makes it unready.
            last_publish_s=trio.current_time() if source.paced else self._last_publish_s,
            now_s=trio.current_time(),
            cadence_ms=self.config.cadence_ms,
            upstream=source.not_ready(),
            finished=source.finished,
        )

    async def drain(self, drain_s: float, min_s: float = 0.0) -> None:
        """Graceful stop (SIGTERM): `/readyz` 503 at once, every client closed with 1012,
        oldest first, spread evenly over `drain_s` (`ws.drain`); the listener stays open for
        `min_s` (a balancer's health check sees the 503; new upgrades are refused with 503),
        then closes. Returns when all are gone and `min_s` has passed, or `drain_s` plus a
        grace has; cancel it to cut it short, then `shutdown()` closes the rest with 1001."""
        await self.operations.drain(drain_s, min_s)


async def serve(
    config: ServerConfig, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a server with `config` until cancelled; `started(url)` once it listens."""
    await Server(config).run(task_status=task_status)


__all__ = ["Server", "ServerConfig", "serve"]
