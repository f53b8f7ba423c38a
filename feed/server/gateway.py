"""`tickwire serve --bus URL --role producer|gateway`: one market, many stateless gateways.

The bus roles as compositions of the server's parts (`roles`): a producer is the market source
with the hub and a `BusSink` (the `BusProducer`: every step's batch at its stream offset, its
level updates and a scenario's status changes; the sink is also the producer's upstream) as its
sinks; it listens for clients only with an explicit `--port`. A gateway has no market: its
`BusSource` reads a `BusReader` and pushes each flush into the same hub, connections and venue
fan-out as a single process (`Server.push`), at the producer's offsets and epoch, so a client
resumes on any gateway; status changes go where they fall, and level updates too while a
client holds a book (`bus.books`). A bus gap becomes a `gap` notice and a snapshot for every
subscriber (`Server.resync`); a bus that is down keeps clients on heartbeats, says `bus: down`
in `stats` and makes `/readyz` 503. Imports coredis (through `bus`) only for a bus.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed import oplog
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus.bands import BandsSeen
from tickwire.feed.bus.books import GatewayBooks
from tickwire.feed.bus.items import BusBands, halted_changes
from tickwire.feed.server.admin import Forwarded
from tickwire.feed.server.market import MarketSource, make_market
from tickwire.feed.server.roles import Feed, Opening
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.urls import redact
from tickwire.simulators import Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.scenario import Scenario
from tickwire.simulators.ticks import TickBatch

if TYPE_CHECKING:
    from tickwire.feed.bus.api import AdminForwarder, BusItem, BusReader
    from tickwire.feed.bus.producer import BusProducer
    from tickwire.feed.ws.http import HttpRequest
    from tickwire.simulators import Market
    from tickwire.simulators.replay import Replay

log = logging.getLogger("tickwire.gateway")


def gateway_id() -> str:
    """This process, as `stats` and the logs name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def epoch_text(epoch: int) -> str:
    """The bus's integer epoch as the hub's (and the welcome's) epoch string."""
    return f"{epoch:016x}"


def bus_api() -> Any:
    try:
        from tickwire.feed.bus import api as bus
    except ImportError as exc:
        raise UserError(f"{exc}; or run `tickwire serve` without --bus") from None
    return bus


class BusSource:
    """A gateway's source: the bus reader's flushes, gaps and outages, pushed into a server."""

    paced = False  # a gateway serves what the producer steps; its clients never pace it
    finished = False  # a producer's stream has no end

    def __init__(
        self,
        reader: BusReader,
        ident: str,
        keep_ns: int = 60_000_000_000,
        forwarder: AdminForwarder | None = None,
    ) -> None:
        assert reader.universe is not None, "open the reader first"
        self.reader = reader
        self.forwarder = forwarder  # with --admin-token: scenarios go on to the producer
        self.universe = reader.universe
        depth = reader.book_depth  # books: mirrored while a client holds one (`bus.books`)
        self._books = GatewayBooks(self.universe, depth, keep_ns) if depth else None
        self.books = self._books.books if self._books is not None else None
        self.ident = ident
        # A market playing a scenario: the server keeps a status log (`Server` looks once).
        self.has_statuses = reader.statuses
        self._halted: dict[int, bytes] = {}  # symbol id -> status record, as published here
        self.scenarios: list[str] = []  # the scenarios playing, as published here
        self.bands = BandsSeen()  # the symbols with LULD bands, as published here

    def open(self) -> Opening:
        r = self.reader
        return Opening(
            self.universe,
            r.snapshot,
            time.time_ns(),
            epoch=epoch_text(r.epoch),
            offset=r.offset,
            continued=True,
            books=self.books,
        )

    def refresh(self) -> None:
        """Nothing to catch up: the producer steps, this pushes what it sends."""

    async def run(self, feed: Feed, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        self._statuses(feed, self.reader.halted)  # halted before this gateway started
        self._playing(feed, self.reader.scenarios, feed.now_ns())  # and the scenarios playing
        feed.publish_bands(self.bands.note(self.reader.bands))  # and each symbol's LULD bands
        while True:
            if self._books is not None:
                self._books.follow(self.reader, trio.current_time())
            await self._handle(feed, await self.reader.next(watched=feed.watched))

    async def _handle(self, feed: Feed, item: BusItem) -> None:
        bus = bus_api()
        if isinstance(item, np.ndarray):  # a flush
            await feed.push(item, self.reader.flush_offset)
        elif isinstance(item, bus.BusStatuses):
            self._statuses(feed, item.records)
            await feed.deliver()
        elif isinstance(item, BusBands):
            feed.publish_bands(self.bands.note(item.records))
            await feed.deliver()
        elif isinstance(item, bus.BusScenario):
            self._playing(feed, item.playing, item.ts, item)
            await feed.deliver()
        elif isinstance(item, bus.BusLevels) and self._books is not None:
            self._books.levels(item.records, stale=self.reader.want_books)
        elif isinstance(item, bus.BusBooks) and self._books is not None:
            self._books.whole(item.ladders)
            self.reader.want_books = False
        elif isinstance(item, bus.BusLevelsLost):  # the books mirrored here are stale
            self.reader.ask_books()
        elif isinstance(item, bus.BusGap):
            await self._same_universe(feed)
            await feed.resync(item.snapshot, epoch_text(item.epoch), item.offset)
            self._statuses(feed, halted_changes(self._halted, item.halted, feed.now_ns()))
            self._playing(feed, item.scenarios, feed.now_ns())
            feed.publish_bands(self.bands.after_gap(item.bands, feed.now_ns()))
            await feed.deliver()
            log.info(
                "bus gap (%s): sent %s a fresh snapshot",
                item.reason,
                oplog.counted(len(feed.connections), "client"),
            )
        # BusDown: the reader logged it once; clients keep their heartbeats

    def _statuses(self, feed: Feed, records: NDArray[np.void]) -> None:
        """Publish status changes, and keep which symbols they leave halted."""
        if not len(records):
            return
        for rec in records:
            if rec["status"]:
                self._halted[int(rec["sym"])] = rec.tobytes()
            else:
                self._halted.pop(int(rec["sym"]), None)
        feed.publish_statuses(records)

    def _playing(self, feed: Feed, playing: list[str], ts: int, change: Any = None) -> None:
        """Publish a scenario's start or end (`change`, a `BusScenario`), or, with none, the
        starts and ends that make what was published here the producer's `playing` (at a
        start, or after a gap: the changes in between are lost)."""
        if change is not None:
            feed.publish_scenario(change.name, change.started, ts)
        else:
            for name in [n for n in self.scenarios if n not in playing]:
                feed.publish_scenario(name, False, ts)
            for name in [n for n in playing if n not in self.scenarios]:
                feed.publish_scenario(name, True, ts)
        self.scenarios = list(playing)

    async def _same_universe(self, feed: Feed) -> None:
        """A new producer may serve other symbols: ids would mean other things, so stop (a
        supervisor restarts the gateway, which then serves the new universe)."""
        now = self.reader.universe
        if now is not None and list(now.symbols) == list(self.universe.symbols):
            return
        await feed.shutdown(1012, "the feed now serves another universe: reconnect")
        raise UserError(
            f"the producer on {redact(self.reader.url)} now serves another universe "
            f"({len(now) if now is not None else 0} symbols, was {len(self.universe)}): "
            "start this gateway again to serve it"
        )

    def forward_scenario(self, scenario: Scenario, req: HttpRequest) -> Forwarded | str:
        """`POST /admin/scenario` on a gateway: the checked request goes on to the active
        producer, whose market plays it (`bus.admin`)."""
        s = self.reader.statistics()
        if self.forwarder is None:
            return "this gateway forwards no scenario (it was started without --admin-token)"
        if not s.up or not s.producer:
            ns = self.reader.namespace
            return f"no producer is active on namespace {ns!r}: nothing would play the scenario"
        if not self.forwarder.forward(req.query, req.peer):
            return "too many scenario requests are waiting for Redis: try again"
        return Forwarded(f"the bus producer {s.producer}")

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


class BusSink:
    """A producer's sink: every stepped batch, at its stream offset, to the bus. It is also its
    producer's upstream (`bus.producer.Upstream`): the snapshot a new lease starts with is
    the server's, and a gateway that starts watching wakes the market source."""

    def __init__(
        self,
        source: MarketSource,
        url: str,
        universe: Universe,
        *,
        namespace: str,
        epoch: int,
        ident: str,
        statuses: bool,
    ) -> None:
        self.source = source
        self._feed: Feed | None = None
        books = source.books
        self.producer: BusProducer = bus_api().BusProducer(
            url,
            universe,
            self,
            namespace=namespace,
            epoch=epoch,
            ident=ident,
            statuses=statuses,
            books=source.book_bytes if books is not None else None,
            book_depth=books.depth if books is not None else 0,
        )
        if books is not None:  # each step's level updates go before its ticks
            source.on_levels = self.producer.publish_levels

    def attach(self, feed: Feed) -> None:
        self._feed = feed

    def snapshot(self) -> TickBatch:
        assert self._feed is not None, "the producer runs once the server is built"
        return self._feed.latest()

    def wake(self) -> None:
        self.source.wake()

    def publish(self, batch: TickBatch, offset: int) -> None:
        self.producer.publish(batch, offset)

    def publish_statuses(self, records: NDArray[np.void], offset: int) -> None:
        self.producer.publish_statuses(records)

    def publish_scenario(self, name: str, active: bool, ts: int, playing: list[str]) -> None:
        self.producer.publish_scenario(name, active, ts, playing)

    def publish_bands(self, records: NDArray[np.void], offset: int) -> None:
        self.producer.publish_bands(records)

    @property
    def watched(self) -> bool:
        """Some gateway has subscribers (or the producer cannot tell yet)."""
        return self.producer.watched

    def statistics(self) -> dict[str, Any]:
        """A producer's bus figures for its own `stats` and /metrics (with --port)."""
        s = self.producer.statistics()
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


# ---------------------------------------------------------------------- the compositions


def gateway_server(
    config: ServerConfig, reader: BusReader, ident: str, forwarder: AdminForwarder | None = None
) -> Server:
    """A gateway: the bus reader as the source, the hub as the only sink, listeners; with
    `forwarder`, an operator's scenario goes on to the producer."""
    keep_ns = int((config.max_lag_s or config.history_s) * 1e9)  # books further behind resync
    return Server(config, source=BusSource(reader, ident, keep_ns, forwarder))


def producer_server(
    config: ServerConfig, market: Market | Replay | None, url: str, namespace: str
) -> tuple[Server, BusProducer]:
    """A producer: the market as the source, in the order the gateways rebuild; the hub and
    the bus as its sinks. It steps at the cadence while a gateway has subscribers, and rarely,
    like an idle server, while none has."""
    bus = bus_api()
    start_s, start_ns = trio.current_time(), time.time_ns()  # event time runs from here
    market = market or make_market(config, start_ns)
    epoch = secrets.randbits(64)  # this run of the stream, the same on the bus and in the hub
    source = MarketSource(
        config,
        market,
        start_ns=start_ns,
        start_s=start_s,
        reorder=functools.partial(bc.canonical, shards=bus.DEFAULT_SHARDS),
        epoch=epoch_text(epoch),
    )
    sink = BusSink(
        source,
        url,
        market.universe,
        namespace=namespace,
        epoch=epoch,
        ident=gateway_id(),
        statuses=source.has_statuses or bool(config.admin_token),  # or one may start live
    )
    return Server(config, source=source, sinks=[sink]), sink.producer


__all__ = [
    "BusSink",
    "BusSource",
    "bus_api",
    "gateway_id",
    "gateway_server",
    "producer_server",
]
