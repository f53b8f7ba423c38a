"""Running the bus roles: `tickwire serve --bus URL --role gateway|producer` until stopped.

`run_gateway` waits for a producer's meta on the bus and serves it (`gateway.gateway_server`);
`run_producer` steps the market and writes it to the bus (`gateway.producer_server`), serving
clients too with an explicit `--port`. With `--admin-token`, a gateway forwards an operator's
scenario to the active producer, which plays it (`bus.admin`).
"""

from __future__ import annotations

import functools
import gc
import logging
from typing import TYPE_CHECKING, Any

import trio

from tickwire.feed import oplog
from tickwire.feed.server.admin import play_forwarded
from tickwire.feed.server.gateway import (
    bus_api,
    gateway_id,
    gateway_server,
    producer_server,
)
from tickwire.feed.server.market import MarketSource
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.urls import redact

if TYPE_CHECKING:
    from tickwire.simulators import Market
    from tickwire.simulators.replay import Replay

log = logging.getLogger("tickwire.gateway")


async def run_gateway(
    config: ServerConfig, url: str, namespace: str, *, stop: Any, summaries: Any
) -> None:
    """Wait for the producer's meta on the bus, then serve it until `stop` returns."""
    bus = bus_api()
    ident = gateway_id()
    log.info("gateway %s: waiting for a producer on %s namespace %r", ident, redact(url), namespace)
    async with bus.BusReader(url, namespace=namespace) as reader:
        forwarder = bus.AdminForwarder(url, namespace, ident) if config.admin_token else None
        server = gateway_server(config, reader, ident, forwarder)
        async with trio.open_nursery() as nursery:
            if forwarder is not None:
                nursery.start_soon(forwarder.run)
            ws_url = await nursery.start(server.run)
            gc.collect()
            gc.freeze()
            print(
                f"tickwire gateway {ident} serving {len(server.hub)} symbols on {ws_url} from "
                f"{redact(url)} namespace {namespace} (epoch {server.hub.epoch}); Ctrl+C to stop",
                flush=True,
            )
            if summaries is not None:
                nursery.start_soon(summaries, server)
            await stop(server)
            log.info(
                "shutting down: closing %s with 1001",
                oplog.counted(len(server.connections), "client"),
            )
            await server.shutdown()
            nursery.cancel_scope.cancel()


async def run_producer(
    config: ServerConfig,
    market: Market | Replay | None,
    url: str,
    namespace: str,
    *,
    listen: bool,
    stop: Any,
    summaries: Any,
) -> None:
    """Step the market at the cadence and write every batch to the bus; serve clients too
    only when `listen` (an explicit --port)."""
    server, producer = producer_server(config, market, url, namespace)
    async with trio.open_nursery() as nursery:
        await nursery.start(producer.run)
        if config.admin_token:  # scenarios the gateways forward
            src = server.source
            assert isinstance(src, MarketSource)
            play = functools.partial(play_forwarded, src.market.universe, src.start_scenario)
            active = lambda: producer.statistics().role == "active"  # noqa: E731
            nursery.start_soon(bus_api().take_requests, url, namespace, active, play)
        if listen:
            ws_url = await nursery.start(server.run)
            where = f"; clients on {ws_url} too"
        else:
            await nursery.start(server.run_source)
            where = " (no WebSocket listener: give --port to serve clients here too)"
        gc.collect()
        gc.freeze()
        now = producer.statistics()
        state = "" if now.up else " (Redis not reachable yet: retrying)"
        if now.role == "standby":
            state = f" (standby: producer {now.holder} is active; taking over when it stops)"
        print(
            f"tickwire producer publishing {len(server.hub)} symbols to {redact(url)} namespace "
            f"{namespace} (epoch {server.hub.epoch}){state}{where}; Ctrl+C to stop",
            flush=True,
        )
        if summaries is not None:
            nursery.start_soon(summaries, server)
        await stop(server)
        if listen:
            await server.shutdown()
        with trio.move_on_after(2):  # what was stepped before the signal reaches Redis
            await producer.wait_written()
        nursery.cancel_scope.cancel()


__all__ = ["run_gateway", "run_producer"]
