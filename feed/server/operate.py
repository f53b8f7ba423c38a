"""Operating a server: the connections' books (opened, refused, closed, their counters folded into
the totals `stats` and `/metrics` report) and the graceful drain (SIGTERM).

A connection's counters live in its core while it is open; its one way out (`closed`) folds them
into the server's `ServerCounters`, so the totals are the closed ones plus the open ones'.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from tickwire.feed import oplog
from tickwire.feed.server.listen import Listeners
from tickwire.feed.v1.core import FeedCore, ServerCounters
from tickwire.feed.ws import drain as _drain
from tickwire.feed.ws.connection import Connection
from tickwire.feed.ws.registry import Registry

log = logging.getLogger("tickwire.server")


class Operations:
    """The books of a server's connections, and its drain."""

    def __init__(
        self, counters: ServerCounters, registry: Registry[Connection], listeners: Listeners
    ) -> None:
        self.counters = counters
        self.registry = registry
        self.listeners = listeners
        self.drain_state: _drain.Drain[Connection] | None = None  # set once a drain starts
        self._changed = trio.Event()

    @property
    def draining(self) -> bool:
        return self.drain_state is not None

    # ------------------------------------------------------------------ books

    def refused(self) -> None:
        self.counters.connections_refused += 1

    def opened(self) -> None:
        self.counters.connections_total += 1

    def closed(self, conn: Connection) -> None:
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
        if self.drain_state is not None:
            self.drain_state.gone(conn)
            self._changed.set()

    def figures(self) -> dict[str, Any]:
        """The connections' part of `stats`: the closed ones' totals plus the open ones'."""
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
            "bytes_sent": bytes_sent,
            "ticks_conflated": conflated,
            "errors": errors,
        }

    # ------------------------------------------------------------------ drain

    async def drain(self, drain_s: float, min_s: float = 0.0) -> None:
        """Close every client with 1012, oldest first, spread evenly over `drain_s`
        (`ws.drain`), and close the listeners once `min_s` has passed. Returns when all are
        gone and `min_s` has passed, or `drain_s` plus a grace has."""
        drain = self.drain_state = _drain.Drain[Connection](drain_s, min_s)
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
                if not drain.listening(now) and not self.listeners.closed:
                    self.listeners.stop()  # from here on a new client is refused
                for conn in drain.due(now):
                    conn.close(_drain.CLOSE_CODE, _drain.CLOSE_REASON)
                deadline = drain.next_deadline()
                if deadline is None:
                    return
                self._changed = trio.Event()
                with trio.move_on_at(deadline):
                    await self._changed.wait()
        finally:
            self.listeners.stop()
