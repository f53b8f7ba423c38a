"""The wire names the active scenario: `scenario` messages when one starts and ends, the
welcome's `scenarios` for late joiners, and `feed.scenario` / `ScenarioChange` in the client.

A real server on loopback in virtual time (MockClock): the event time is the server's start
plus trio's clock, so a scenario of a few seconds costs no wall-clock second."""

from __future__ import annotations

import orjson
import trio
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from tickwire.feed import ScenarioChange, TradingStatus, connect
from tickwire.feed.protocol import SUBPROTOCOL_JSON
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe
from tickwire.simulators.scenario import parse

START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC
S = 10**9
DROUGHT = """
name = "dry-spell"
[[event]]
kind = "drought"
at = "0s"
duration = "3s"
"""
HALT = """
name = "aapl-halt"
[[event]]
kind = "halt"
at = "0.5s"
duration = "1s"
symbol = "AAPL"
"""


async def _server(nursery: trio.Nursery, **config: object) -> Server:
    cfg = ServerConfig(port=0, cadence_ms=20, heartbeat_ms=0, **config)  # type: ignore[arg-type]
    server = Server(cfg, start_ns=START_NS)
    await nursery.start(server.run)
    return server


async def test_a_served_scenario_is_in_the_welcome_then_its_end_is_a_message(
    mock_clock: MockClock,
) -> None:
    mock_clock.autojump_threshold = 0.005
    u = Universe.default()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _server(nursery, scenario=parse(DROUGHT, u))
            await trio.sleep(0.5)  # a late joiner: the scenario started before it came
            async with open_websocket_url(server.url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
                welcome = orjson.loads(await ws.get_message())
                assert welcome["scenarios"] == ["dry-spell"]
                await ws.send_message('{"op":"subscribe","symbols":["AAPL"]}')
                while (msg := orjson.loads(await ws.get_message()))["type"] != "scenario":
                    pass
                assert msg == {
                    "type": "scenario",
                    "name": "dry-spell",
                    "state": "ended",
                    "ts": START_NS + 3 * S,
                    "active": [],
                }
            async with connect(server.url, reconnect=False) as feed:
                assert feed.scenarios == () and feed.scenario is None
            nursery.cancel_scope.cancel()


async def test_a_live_scenario_reaches_every_connection_in_order(mock_clock: MockClock) -> None:
    mock_clock.autojump_threshold = 0.005
    u = Universe.default()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _server(nursery, admin_token="s3cret")
            async with connect(server.url, reconnect=False) as feed:
                assert feed.scenario is None
                await feed.subscribe(["AAPL"], snapshot=False)
                await trio.sleep(0.2)
                in_s = server.source.start_scenario(parse(HALT, u))  # as POST /admin/scenario
                assert isinstance(in_s, float)
                seen: list[object] = []
                async for ev in feed:
                    if isinstance(ev, ScenarioChange | TradingStatus):
                        seen.append(ev)
                        if isinstance(ev, ScenarioChange):
                            assert feed.scenarios == ev.active
                        if len(seen) == 4:
                            break
            nursery.cancel_scope.cancel()
    start, halt, resume, end = seen
    assert isinstance(start, ScenarioChange) and isinstance(end, ScenarioChange)
    assert (start.name, start.state, start.active) == ("aapl-halt", "started", ("aapl-halt",))
    assert isinstance(halt, TradingStatus) and halt.status == "halted"
    assert isinstance(resume, TradingStatus) and resume.status == "trading"
    assert (end.name, end.state, end.active) == ("aapl-halt", "ended", ())
    assert halt.ts - start.ts == S // 2 and end.ts - start.ts == 3 * S // 2


async def test_a_connection_with_no_subscription_hears_of_a_scenario(
    mock_clock: MockClock,
) -> None:
    mock_clock.autojump_threshold = 0.005
    u = Universe.default()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _server(nursery, admin_token="s3cret")
            async with connect(server.url, reconnect=False) as feed:
                server.source.start_scenario(parse(HALT, u))
                async for ev in feed:
                    if isinstance(ev, ScenarioChange):
                        break
                assert feed.scenario == "aapl-halt"
            nursery.cancel_scope.cancel()


def test_tail_prints_a_scenario_change_on_stderr() -> None:
    import io

    from tickwire.feed.cli.tail import _print_event

    err = io.StringIO()
    _print_event(ScenarioChange("flash-crash", "started", 1, ("flash-crash",)), err)
    assert err.getvalue() == "# scenario flash-crash started\n"
