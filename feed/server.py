"""The feed server: the trio I/O shell around the market, the hub and the connections.

`Server.run` starts the generator task (steps the market at the cadence and publishes into the
hub, skipping ahead rather than queueing when it falls behind) and the WebSocket listener; each
accepted client gets a `Connection` (reader + writer). The handshake enforces the path, the tokens
(HTTP 401) and the subprotocol; the connection cap closes with 1013. A failure inside one
connection is logged once and closes that connection with 1011, never the server.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from trio_websocket import WebSocketRequest, WebSocketServer, wrap_server_stream

from tickwire.simulators import Market, Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import Replay

from . import _state as st
from . import protocol as p
from ._connection import Connection
from .hub import Hub

log = logging.getLogger("tickwire.server")

SERVER_NAME = "tickwire"


@dataclass
class ServerConfig:
    """Everything `tickwire serve` can set; the defaults work with no flags."""

    host: str = "127.0.0.1"
    port: int = 8765
    cadence_ms: float = 1.0
    seed: int = 0
    universe: Universe | None = None  # None: Universe.default()
    activity: float = 1.0
    session: Literal["6.5h", "24h"] = "6.5h"  # trading day shape; see tickwire.simulators.market
    tokens: tuple[str, ...] = ()
    certfile: str | None = None
    keyfile: str | None = None
    max_connections: int = 1000
    heartbeat_ms: int = 1000
    stall_ms: int = 10_000
    limits: st.Limits = field(default_factory=st.Limits)
    history_s: float = 60.0  # resume window: event time kept for every-update readers...
    history_mb: float = 256.0  # ...and the memory it may take, whichever binds first

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.certfile:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise UserError(
                f"cannot load certificate {self.certfile!r}"
                f"{f' with key {self.keyfile!r}' if self.keyfile else ''}: {exc}"
            ) from None
        return ctx


@dataclass(slots=True)
class ServerCounters:
    messages_sent: int = 0
    ticks_sent: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    cadence_overruns: int = 0


class Server:
    def __init__(self, config: ServerConfig, market: Market | Replay | None = None) -> None:
        self.config = config
        universe = market.universe if market is not None else config.universe or Universe.default()
        self._t0 = trio.current_time()
        self._wall0_ns = time.time_ns()
        self.market: Market | Replay = market or Market(
            universe,
            seed=config.seed,
            start_ns=self._wall0_ns,
            activity=config.activity,
            session=config.session,
        )
        self.hub = Hub(
            universe,
            self.market.snapshot(),
            history_s=config.history_s,
            history_bytes=int(config.history_mb * 1024 * 1024),
        )
        self.universe_index = {s: i for i, s in enumerate(universe.symbols)}
        self.symbols_body = orjson.dumps(universe.reference())
        self.name = f"{SERVER_NAME}/{_version()}"
        self.counters = ServerCounters()
        self.publish_s = 0.0  # trio time of the latest publish: the send time of direct sends
        self.connections: set[Connection] = set()
        self.url = ""
        self._cancel: trio.CancelScope | None = None

    def now_ns(self) -> int:
        """Event time: wall clock at start, advanced by trio's (fakeable) clock."""
        return self._wall0_ns + int((trio.current_time() - self._t0) * 1e9)

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or `shutdown()`; `started(url)` once listening."""
        cfg = self.config
        ssl_context = cfg.ssl_context()
        try:
            listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
        except OSError as exc:
            raise UserError(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
                " (is another server running? pick another --port)"
            ) from None
        served: list[trio.SocketListener | trio.SSLListener[trio.SocketStream]] = list(listeners)
        if ssl_context is not None:
            served = [trio.SSLListener(lst, ssl_context) for lst in listeners]
        with trio.CancelScope() as self._cancel:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run_market)
                ws_server = WebSocketServer(
                    self._handle,
                    served,
                    handler_nursery=nursery,
                    max_message_size=p.MAX_MESSAGE_BYTES,
                    connect_timeout=10,
                    disconnect_timeout=2,
                )
                await nursery.start(ws_server.run)
                scheme = "wss" if ssl_context else "ws"
                host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
                self.url = f"{scheme}://{host}:{ws_server.port}{p.PATH}"
                task_status.started(self.url)

    async def shutdown(
        self, code: int = p.CloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        """Close every client with `code` (1001 by default), concurrently, then stop serving."""
        async with trio.open_nursery() as nursery:
            for conn in list(self.connections):
                nursery.start_soon(conn.close, code, reason)
        if self._cancel is not None:
            self._cancel.cancel()

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one accepted byte stream (tests use in-memory streams; `run` uses sockets)."""
        async with trio.open_nursery() as nursery:
            request = await wrap_server_stream(
                nursery, stream, max_message_size=p.MAX_MESSAGE_BYTES
            )
            await self._handle(request)
            nursery.cancel_scope.cancel()

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The generator: step the market every cadence and publish into the hub."""
        cadence_s = self.config.cadence_ms / 1000
        next_s = trio.current_time()
        # A replay at speed 0 goes as fast as the clients read: it steps once all caught up.
        paced = getattr(self.market, "paced_by_readers", False)
        task_status.started()
        while True:
            self.publish_s = trio.current_time()
            if not paced or self.hub.caught_up():
                self.hub.publish(self.market.step(self.now_ns()), on_grid=True)
            next_s += cadence_s
            now = trio.current_time()
            if now > next_s + cadence_s:
                # Behind by more than a whole cadence: skip ahead (the next step covers the
                # missed time in one batch, conflated per subscriber) instead of queueing.
                self.counters.cadence_overruns += 1
                next_s = now
            await trio.sleep_until(next_s)

    # ------------------------------------------------------------------ connections

    async def _handle(self, request: WebSocketRequest) -> None:
        peer = _peer(request)
        url = urlsplit(request.path)
        if url.path.rstrip("/") != p.PATH:
            log.info("refused %s: path %s is not %s", peer, url.path, p.PATH)
            await request.reject(404, body=f"tickwire serves WebSocket at {p.PATH}\n".encode())
            return
        if self.config.tokens and _token(request, url.query) not in self.config.tokens:
            self.counters.connections_refused += 1
            log.info("refused %s: missing or invalid token (HTTP 401)", peer)
            await request.reject(
                401,
                extra_headers=[(b"WWW-Authenticate", b'Bearer realm="tickwire"')],
                body=b"missing or invalid token: send 'Authorization: Bearer TOKEN' or ?token=\n",
            )
            return
        offered = request.proposed_subprotocols
        chosen = next((s for s in offered if s in p.SUBPROTOCOLS), None)
        ws = await request.accept(subprotocol=chosen)
        if len(self.connections) >= self.config.max_connections:
            self.counters.connections_refused += 1
            log.info("refused %s: at the connection limit (%d)", peer, self.config.max_connections)
            with trio.move_on_after(1.0):
                await ws.aclose(
                    p.CloseCode.TRY_AGAIN_LATER,
                    f"server at its connection limit ({self.config.max_connections}); retry later",
                )
            return
        conn = Connection(self, ws, peer, binary=chosen == p.SUBPROTOCOL_BINARY)
        self.connections.add(conn)
        self.counters.connections_total += 1
        log.info(
            "client %s connected (%s, %d clients)",
            peer,
            chosen or p.SUBPROTOCOL_JSON,
            len(self.connections),
        )
        try:
            await conn.run()
        except Exception:
            # The connection's edge: one bug never reaches the server or the other clients.
            log.exception("client %s: internal error, closing with 1011", peer)
            await conn.close(p.CloseCode.INTERNAL_ERROR, "internal server error")
        finally:
            self.connections.discard(conn)
            log.info(
                "client %s disconnected: code %s%s after %.1f s, %d messages",
                peer,
                conn.close_code if conn.close_code is not None else 1006,
                f" ({conn.close_reason})" if conn.close_reason else "",
                trio.current_time() - conn.opened_s,
                conn.counters.messages_sent,
            )

    # ------------------------------------------------------------------ stats

    def statistics(self) -> dict[str, Any]:
        c = self.counters
        return {
            "clients": len(self.connections),
            "connections_total": c.connections_total,
            "connections_refused": c.connections_refused,
            "uptime_s": round(trio.current_time() - self._t0, 3),
            "cadence_ms": self.config.cadence_ms,
            "cadence_overruns": c.cadence_overruns,
            "messages_sent": c.messages_sent,
            "ticks_sent": c.ticks_sent,
            **self.hub.statistics(),
        }

    def stats_message(self, conn: Connection, rid: int | None) -> dict[str, Any]:
        return p.with_id({"type": "stats"}, rid, **conn.statistics(), server=self.statistics())


async def serve(
    config: ServerConfig, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a server with `config` until cancelled; `started(url)` once it listens."""
    await Server(config).run(task_status=task_status)


def _peer(request: WebSocketRequest) -> str:
    remote = request.remote
    return str(remote) if isinstance(remote, str) else f"{remote.address}:{remote.port}"


def _token(request: WebSocketRequest, query: str) -> str | None:
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    tokens = parse_qs(query).get("token")
    return tokens[0] if tokens else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickwire")
    except PackageNotFoundError:
        return "0+unknown"


__all__ = ["Server", "ServerConfig", "serve"]
