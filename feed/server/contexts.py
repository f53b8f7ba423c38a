"""What every connection of a server shares: the `/v1` and the venues' contexts, built once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickwire.feed.hub.books import Books
from tickwire.feed.hub.hub import Hub
from tickwire.feed.server.config import ServerConfig
from tickwire.feed.v1.core import FeedContext, ServerCounters
from tickwire.feed.v1.status import StatusLog
from tickwire.feed.venues.session import VenueContext
from tickwire.simulators import Universe

CLOSE_TIMEOUT_S = 2.0  # a closing handshake's bound


def connection_contexts(
    config: ServerConfig,
    universe: Universe,
    *,
    hub: Hub,
    index: dict[str, int],
    symbols_body: bytes,
    server_name: str,
    t0_s: float,
    wall0_ns: int,
    stats: Callable[[], dict[str, Any]],
    counters: ServerCounters,
    refresh: Callable[[], None],
    books: Books | None,
    scenario: bool,
) -> tuple[FeedContext, VenueContext]:
    """The `/v1` context and the venues' one. `scenario`: the source plays a market scenario,
    so connections get its halts and resumptions (as they do when an operator may start one
    live, with `--admin-token`)."""
    statuses = StatusLog(hub.names) if scenario or config.admin_token else None
    ctx = FeedContext(
        hub=hub,
        index=index,
        symbols_body=symbols_body,
        limits=config.limits,
        server_name=server_name,
        heartbeat_ms=config.heartbeat_ms,
        stall_s=config.stall_ms / 1000,
        close_timeout_s=CLOSE_TIMEOUT_S,
        t0_s=t0_s,
        wall0_ns=wall0_ns,
        stats=stats,
        counters=counters,
        refresh=refresh,
        books=books,
        statuses=statuses,
    )
    venue_ctx = VenueContext(
        universe=universe,
        tokens=config.tokens,
        stall_s=config.stall_ms / 1000,
        close_timeout_s=CLOSE_TIMEOUT_S,
        t0_s=t0_s,
        wall0_ns=wall0_ns,
        counters=counters,
        binance_ping_s=config.binance_ping_s,
        alpaca_connections_per_key=config.alpaca_connections_per_key,
        hub=hub,
        statuses=statuses,
        books=books,
    )
    return ctx, venue_ctx
