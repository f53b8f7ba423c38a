"""A server is composed of a source and sinks at construction (`roles`): each part is tested
through the server, on a fake clock, without sockets (the bus roles run on Redis in test_bus*).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trio

from tickwire.feed.server.hubsink import HubSink
from tickwire.feed.server.market import IDLE_STEP_S, MarketSource
from tickwire.feed.server.roles import Sink
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import TickBatch, Universe

UNIVERSE = Universe.synthetic(20, 0)


class Recorder:
    """A sink that keeps what it is given, and says whether readers elsewhere want more."""

    def __init__(self, *, watched: bool) -> None:
        self.watched = watched
        self.got: list[tuple[float, int, TickBatch]] = []

    def attach(self, feed: Any) -> None:
        self.feed = feed

    def publish(self, batch: TickBatch, offset: int) -> None:
        self.got.append((trio.current_time(), offset, batch))

    def publish_statuses(self, records: Any, offset: int) -> None:
        raise AssertionError("no scenario here")

    def statistics(self) -> dict[str, Any]:
        return {"recorded_batches": len(self.got)}


def _server(*sinks: Sink, cadence_ms: float = 1.0) -> Server:
    config = ServerConfig(port=0, universe=UNIVERSE, cadence_ms=cadence_ms)
    return Server(config, start_ns=0, sinks=sinks)


async def _run_for(server: Server, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_a_sink_gets_every_batch_after_the_hub_at_the_hubs_offsets(autojump_clock):
    rec = Recorder(watched=True)
    server = _server(rec)
    assert isinstance(server.sinks[0], HubSink) and server.sinks[1] is rec  # the hub first
    await _run_for(server, 0.2)
    offsets = [offset for _, offset, _ in rec.got]
    sizes = [len(batch) for _, _, batch in rec.got]
    assert offsets[0] == 0 and offsets == list(np.cumsum([0, *sizes[:-1]]))  # no hole, no overlap
    assert sum(sizes) == server.hub.ticks_published == server.hub.history.head
    assert server.statistics()["recorded_batches"] == len(rec.got)  # its figures join `stats`


@pytest.mark.parametrize("watched", [True, False])
async def test_a_sinks_readers_keep_the_market_at_the_cadence(autojump_clock, watched):
    """No client here: a sink whose readers watch (a bus producer's gateways) keeps the 1 ms
    cadence; one whose readers do not lets the market step every 50 ms, as an idle server."""
    rec = Recorder(watched=watched)
    server = _server(rec)
    await _run_for(server, 0.5)
    steps = {t for t, _, _ in rec.got}
    if watched:
        assert len(steps) >= 400
    else:
        assert 8 <= len(steps) <= 12
    assert not server.watched  # no client of this server subscribes


async def test_waking_the_source_resumes_the_cadence_at_once(autojump_clock):
    """A gateway subscribes (the producer wakes its upstream): the idle market steps at once."""
    rec = Recorder(watched=False)
    server = _server(rec)
    source = server.source
    assert isinstance(source, MarketSource)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        await trio.sleep(0.01)  # idle: the next step is due at 0.05
        rec.watched = True
        woke = trio.current_time()
        source.wake()
        await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    after = sorted(t for t, _, _ in rec.got if t >= woke)
    assert after and after[0] - woke < IDLE_STEP_S / 10
    assert len(after) >= 4  # and at the cadence from then on


async def test_refresh_steps_an_idle_market_to_now(autojump_clock):
    """Before a snapshot or stats, an idle market is brought to now (the hub's `refresh`)."""
    server = _server()
    source = server.source
    assert isinstance(source, MarketSource)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        await trio.sleep(0.03)  # idle: stepped at 0, next at 0.05
        before = source.market.now_ns
        server.ctx.refresh()
        assert source.market.now_ns > before and source.market.now_ns == server.now_ns()
        nursery.cancel_scope.cancel()


async def test_a_producer_is_the_market_with_the_bus_as_a_second_sink():
    """The bus producer's composition: no attribute set on the server after it is built."""
    pytest.importorskip("coredis")
    from tickwire.feed.server.gateway import BusSink, epoch_text, producer_server

    config = ServerConfig(port=0, universe=UNIVERSE)
    server, producer = producer_server(config, None, "redis://127.0.0.1:1", "roles-test")
    source = server.source
    assert isinstance(source, MarketSource) and source.reorder is not None  # the shards' order
    assert [type(s) for s in server.sinks] == [HubSink, BusSink]
    assert server.hub.epoch == epoch_text(producer.epoch)  # one epoch on the bus and in the hub
    sink = server.sinks[1]
    assert producer.upstream is sink  # a role object: nothing set on the producer from outside
    assert sink.snapshot().tobytes() == server.hub.lvc.tobytes()  # the server's latest records
    assert server.wanted  # a producer steps at the cadence until the gateways say nobody watches
    assert server.statistics()["bus"] == "down"  # its figures join `stats`, before it runs


async def test_event_time_runs_from_when_the_source_took_its_start_not_after_its_build(
    autojump_clock,
):
    """A market source takes its start time, then builds its market (milliseconds of real time
    on a large universe); the server's event time must count from the start it took, or every
    record is stamped that much behind the wall clock (it was: +0.4 ms of latency on every tick
    of the default universe)."""
    config = ServerConfig(port=0, universe=UNIVERSE, cadence_ms=1.0)
    source = MarketSource(config, start_ns=10**18)
    await trio.sleep(0.25)  # the build, as the clock sees it
    server = Server(config, source=source)
    assert server.now_ns() == 10**18 + 250_000_000


async def test_a_producers_event_time_runs_from_before_its_market_is_built(
    autojump_clock, monkeypatch
):
    """The producer composition takes its start, builds its market and its bus writer, then
    its server: event time must count from the start (it lagged the build, ~5 ms of added
    latency on every tick through the bus)."""
    pytest.importorskip("coredis")
    from tickwire.feed.server import gateway

    real = gateway.make_market

    def slow_build(config: ServerConfig, start_ns: int) -> Any:
        autojump_clock.jump(0.25)  # the build, as the clock sees it
        return real(config, start_ns)

    monkeypatch.setattr(gateway, "make_market", slow_build)
    config = ServerConfig(port=0, universe=UNIVERSE, cadence_ms=1.0)
    server, _ = gateway.producer_server(config, None, "redis://127.0.0.1:1", "t")
    assert isinstance(server.source, MarketSource)
    assert server.now_ns() - server.source.start_ns == 250_000_000


async def test_a_gateway_watching_wakes_the_producers_idle_market(autojump_clock):
    """The producer's upstream is its `BusSink`: when a write's reply says a gateway watches,
    the producer wakes it, and the idle market source steps at once."""
    pytest.importorskip("coredis")
    from tickwire.feed.server.gateway import producer_server

    config = ServerConfig(port=0, universe=UNIVERSE, cadence_ms=1.0)
    server, producer = producer_server(config, None, "redis://127.0.0.1:1", "t")
    producer.watched = False  # what a write's reply says while no gateway has subscribers
    source = server.source
    assert isinstance(source, MarketSource)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        await trio.sleep(0.02)  # idle: stepped at 0, the next step is due at 0.05
        assert source.market.now_ns < server.now_ns() - 10_000_000
        producer.watched = True
        producer.upstream.wake()  # what the producer does when a reply turns it true
        await trio.sleep(0.005)
        assert source.market.now_ns >= server.now_ns() - 2_000_000  # stepping at the cadence
        nursery.cancel_scope.cancel()
