"""A market scenario's start and end cross the bus: a client on a gateway hears them as a
client of the producer's own listener does, and a gateway that starts while one plays names it
in its welcome. Real redis-server and real sockets, the compositions `tickwire serve --bus`
runs, on real time (the scenario plays for 2.5 s)."""

from __future__ import annotations

from pathlib import Path

import orjson
import trio
from _redis import RedisServer, require_redis
from _support import serve_config
from trio_websocket import open_websocket_url

require_redis()

from tickwire.feed import ScenarioChange, connect  # noqa: E402
from tickwire.feed.bus import keys as bk  # noqa: E402
from tickwire.feed.bus.api import BusReader, client_for  # noqa: E402
from tickwire.feed.server.gateway import gateway_server, producer_server  # noqa: E402
from tickwire.simulators import Universe  # noqa: E402
from tickwire.simulators.scenario import parse  # noqa: E402

TIMEOUT_S = 60
NS = "scenwire"
DAY = """
name = "bus-day"
[[event]]
kind = "drought"
at = "0s"
duration = "2.5s"
"""
LIVE = """
name = "live-halt"
[[event]]
kind = "halt"
at = "0.3s"
duration = "0.5s"
symbol = "MSFT"
"""


async def _changes(url: str, out: list[tuple[str, str, int]], n: int) -> None:
    async with connect(url) as feed:
        await feed.subscribe(["AAPL"], snapshot=False)
        async for ev in feed:
            if isinstance(ev, ScenarioChange):
                out.append((ev.name, ev.state, ev.ts))
                if len(out) == n:
                    return


async def _welcome(url: str) -> list[str]:
    async with open_websocket_url(url) as ws:
        return list(orjson.loads(await ws.get_message())["scenarios"])


async def test_scenario_changes_cross_the_bus_and_a_late_gateway_names_the_one_playing(
    redis: RedisServer, tmp_path: Path
) -> None:
    path = tmp_path / "day.toml"
    path.write_text(DAY, encoding="utf-8")
    config = serve_config("--scenario", str(path), "--seed", "3", "--admin-token", "s3cret")
    server, producer = producer_server(config, None, redis.url, NS)
    start_ns = server.source.start_ns  # type: ignore[attr-defined]
    own: list[tuple[str, str, int]] = []
    via_bus: list[tuple[str, str, int]] = []
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            await nursery.start(server.run)
            async with BusReader(redis.url, namespace=NS) as reader, trio.open_nursery() as gws:
                gateway = gateway_server(serve_config(), reader, "gw-1")
                await gws.start(gateway.run)
                assert await _welcome(gateway.url) == ["bus-day"]  # it started before
                async with trio.open_nursery() as clients:
                    clients.start_soon(_changes, server.url, own, 3)
                    clients.start_soon(_changes, gateway.url, via_bus, 3)
                    await trio.sleep(0.3)  # the clients subscribe: no event says so
                    server.source.start_scenario(parse(LIVE, Universe.default()))
                    async with BusReader(redis.url, namespace=NS) as second:
                        gw2 = gateway_server(serve_config(), second, "gw-2")
                        async with trio.open_nursery() as gw2s:
                            await gw2s.start(gw2.run)
                            late = await _welcome(gw2.url)
                            gw2s.cancel_scope.cancel()
                gws.cancel_scope.cancel()
            async with client_for(redis.url) as client:
                playing = await client.get(bk.scenarios_key(NS))
            nursery.cancel_scope.cancel()
    assert own == via_bus
    assert [(name, state) for name, state, _ in own] == [
        ("live-halt", "started"),
        ("live-halt", "ended"),
        ("bus-day", "ended"),
    ]
    assert own[2][2] == start_ns + 2_500_000_000
    assert own[1][2] - own[0][2] == 800_000_000  # its halt ends 0.8 s after its time 0
    assert set(late) <= {"bus-day", "live-halt"} and "bus-day" in late
    assert orjson.loads(playing) == []


async def test_a_producer_taking_over_writes_the_scenarios_it_plays_not_its_predecessors(
    redis: RedisServer,
) -> None:
    """The first producer played a scenario and stopped while it played; the one that takes
    over plays none, and a gateway starting then must not name the stale one."""
    from tickwire.feed.bus.api import BusProducer, MarketUpstream
    from tickwire.simulators import Market

    market = Market(Universe.synthetic(4, 0), seed=5, start_ns=0)
    up = MarketUpstream(market)
    with trio.fail_after(TIMEOUT_S):
        async with client_for(redis.url) as client:
            async with trio.open_nursery() as nursery:
                first = BusProducer(redis.url, market.universe, up, namespace=NS, ident="p1:1")
                await nursery.start(first.run)
                first.publish_scenario("old-day", True, 1, ["old-day"])
                first.publish(market.step(10**9))
                await first.wait_written()
                assert orjson.loads(await client.get(bk.scenarios_key(NS))) == ["old-day"]
                nursery.cancel_scope.cancel()  # stops while "old-day" plays
            async with trio.open_nursery() as nursery:
                second = BusProducer(redis.url, market.universe, up, namespace=NS, ident="p2:2")
                await nursery.start(second.run)
                assert second.statistics().role == "active"
                assert orjson.loads(await client.get(bk.scenarios_key(NS))) == []
                async with BusReader(redis.url, namespace=NS) as reader:
                    assert reader.scenarios == []
                nursery.cancel_scope.cancel()
