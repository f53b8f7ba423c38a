"""`tickwire serve --bus URL --role producer|gateway`: one market, many stateless gateways.

A producer runs the market (or a replay) exactly as a plain server does and hands every step's
batch, with its stream offset, to a `BusProducer`; it listens for clients only with an explicit
`--port`. A gateway has no market: `BusUpstream` reads a `BusReader` and pushes each flush into
the same hub, connections and venue fan-out as a single process (`Server.push`), at the
producer's stream offsets and under the producer's epoch, so a client resumes on any gateway.
A bus gap becomes a `gap` notice and a snapshot for every subscriber (`Server.source_gap`);
a bus that is down keeps clients connected on heartbeats, says `bus: down` in `stats`, logs
once and makes `/readyz` answer 503 until it is back.

Imports coredis (through `bus`) only when a bus is asked for: plain `tickwire serve` never does.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from tickwire.feed import oplog
from tickwire.feed.bus import codec as bc
from tickwire.feed.server.config import PushTarget
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError
from tickwire.simulators.ticks import TickBatch

if TYPE_CHECKING:
    from tickwire.feed.bus.api import BusReader
    from tickwire.simulators import Market
    from tickwire.simulators.replay import Replay

log = logging.getLogger("tickwire.gateway")


def gateway_id() -> str:
    """This process, as `stats` and the logs name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def epoch_text(epoch: int) -> str:
    """The bus's integer epoch as the hub's (and the welcome's) epoch string."""
    return f"{epoch:016x}"


def _bus() -> Any:
    try:
        from tickwire.feed.bus import api as bus
    except ImportError as exc:
        raise UserError(f"{exc}; or run `tickwire serve` without --bus") from None
    return bus


class BusUpstream:
    """A gateway's source: the bus reader's flushes, gaps and outages, pushed into a server."""

    def __init__(self, reader: BusReader, ident: str) -> None:
        assert reader.universe is not None, "open the reader first"
        self.reader = reader
        self.universe = reader.universe
        self.ident = ident

    def start(self) -> tuple[TickBatch, str, int | None]:
        return self.reader.snapshot, epoch_text(self.reader.epoch), self.reader.offset

    async def run(self, server: PushTarget, *, task_status: trio.TaskStatus[None]) -> None:
        bus = _bus()
        self.reader.watched = lambda: server.watched  # tells the producer to step at the cadence
        task_status.started()
        async for item in self.reader:
            if isinstance(item, np.ndarray):  # a flush
                await server.push(item, self.reader.flush_offset)
            elif isinstance(item, bus.BusGap):
                await self._same_universe(server)
                await server.source_gap(item.snapshot, epoch_text(item.epoch), item.offset)
                log.info(
                    "bus gap (%s): sent %s a fresh snapshot",
                    item.reason,
                    oplog.counted(len(server.connections), "client"),
                )
            # BusDown: the reader logged it once; clients keep their heartbeats

    async def _same_universe(self, server: PushTarget) -> None:
        """A new producer may serve other symbols: ids would mean other things, so stop (a
        supervisor restarts the gateway, which then serves the new universe)."""
        now = self.reader.universe
        if now is not None and list(now.symbols) == list(self.universe.symbols):
            return
        await server.shutdown(1012, "the feed now serves another universe: reconnect")
        raise UserError(
            f"the producer on {redact(self.reader.url)} now serves another universe "
            f"({len(now) if now is not None else 0} symbols, was {len(self.universe)}): "
            "start this gateway again to serve it"
        )

    def statistics(self) -> dict[str, Any]:
        s = self.reader.statistics()
        return {
            "gateway": self.ident,
            "bus": "up" if s.up else "down",
            "bus_lag_ms": round(s.lag_ms, 3),
            "bus_up": int(s.up),
            "bus_gaps": s.gaps,
            "bus_producer": s.producer,
            "bus_standbys": s.standbys,
            "bus_takeovers": s.takeovers,
            "process_cpu_s": round(time.process_time(), 3),
        }

    def not_ready(self) -> str | None:
        up = self.reader.statistics().up
        return None if up else f"the bus is down ({redact(self.reader.url)})"  # unauthenticated


async def run_gateway(
    config: ServerConfig, url: str, namespace: str, *, stop: Any, summaries: Any
) -> None:
    """Wait for the producer's meta on the bus, then serve it until `stop` returns."""
    bus = _bus()
    ident = gateway_id()
    log.info("gateway %s: waiting for a producer on %s namespace %r", ident, redact(url), namespace)
    async with bus.BusReader(url, namespace=namespace) as reader:
        server = Server(config, upstream=BusUpstream(reader, ident))
        async with trio.open_nursery() as nursery:
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
    bus = _bus()
    server = Server(config, market=market)
    server.always_step = True  # the gateways' clients are invisible from here
    assert server.market is not None
    producer = bus.BusProducer(
        url,
        server.market.universe,
        lambda: server.hub.lvc.copy(),
        namespace=namespace,
        epoch=int(server.hub.epoch, 16),
        ident=gateway_id(),
    )
    server.source_statistics = functools.partial(_producer_statistics, producer)
    server.on_publish = producer.publish
    producer.on_watched = server.step_always  # idle like a plain server while nobody watches
    server.reorder = functools.partial(bc.canonical, shards=producer.shards)
    async with trio.open_nursery() as nursery:
        await nursery.start(producer.run)
        if listen:
            ws_url = await nursery.start(server.run)
            where = f"; clients on {ws_url} too"
        else:
            await nursery.start(server.run_market)
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


def _producer_statistics(producer: Any) -> dict[str, Any]:
    """A producer's bus figures for its own `stats` and /metrics (with --port)."""
    s = producer.statistics()
    return {
        "bus": "up" if s.up else "down",
        "bus_up": int(s.up),
        "bus_role": s.role,
        "bus_active": int(s.role == "active"),
        "bus_producer": s.holder,
        "bus_standbys": s.standbys,
        "bus_takeovers": s.takeovers,
        "process_cpu_s": round(time.process_time(), 3),  # the writer thread's included
    }


__all__ = ["BusUpstream", "gateway_id", "run_gateway", "run_producer"]
