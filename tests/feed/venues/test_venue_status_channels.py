"""A market scenario's halt as Binance and Coinbase show it, on a real server over loopback:
Coinbase's `status` channel (each product's `status`, `status_message`, `trading_disabled`) at
subscribe and on each change; Binance, which has no status stream, in exchangeInfo's symbol
`status` ("HALT" while halted, "TRADING" again after) and with no trade meanwhile.

Virtual time (MockClock, autojump): the halt's seconds cost no wall-clock second."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import trio
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe
from tickwire.simulators.scenario import parse

HALT = """
name = "aapl-halt"
[[event]]
kind = "halt"
at = "0.5s"
duration = "2s"
symbol = "AAPL"
"""


async def _get(server: Server, target: str) -> Any:
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
    return orjson.loads(data.partition(b"\r\n\r\n")[2])


async def _binance_status(server: Server) -> list[str]:
    info = await _get(server, '/binance/api/v3/exchangeInfo?symbols=["AAPL","MSFT"]')
    return [s["status"] for s in info["symbols"]]


async def test_coinbase_status_channel_and_binance_exchange_info_follow_a_halt(
    mock_clock: MockClock,
) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = Server(ServerConfig(port=0, cadence_ms=20, admin_token="s3cret"))
            await nursery.start(server.run)
            base = server.url.removesuffix("/v1")
            async with (
                open_websocket_url(f"{base}/coinbase") as cb,
                open_websocket_url(f"{base}/binance/ws/aapl@trade") as bn,
            ):
                await cb.send_message(
                    '{"type":"subscribe","product_ids":["AAPL","MSFT"],'
                    '"channels":["status","matches"]}'
                )
                assert orjson.loads(await cb.get_message())["type"] == "subscriptions"
                first = [orjson.loads(await cb.get_message()) for _ in range(2)]
                assert await _binance_status(server) == ["TRADING", "TRADING"]
                server.source.start_scenario(parse(HALT, Universe.default()))
                statuses: list[dict[str, Any]] = []
                matches: list[tuple[int, dict[str, Any]]] = []  # (statuses before it, match)
                during: list[str] = []
                while len(statuses) < 2:
                    msg = orjson.loads(await cb.get_message())
                    if msg["type"] == "status":
                        statuses.append(msg)
                        if len(statuses) == 1:
                            during = await _binance_status(server)
                    elif msg["type"] == "match" and msg["product_id"] == "AAPL":
                        matches.append((len(statuses), msg))
                after = await _binance_status(server)
                trades: list[int] = []
                with trio.move_on_after(2.0):  # the trades after the halt: a score of them
                    while True:
                        trades.append(orjson.loads(await bn.get_message())["T"])
            nursery.cancel_scope.cancel()
    online = [m for m in first if m["type"] == "status"]
    assert len(online) == 2
    assert {p["id"]: p["status"] for m in online for p in m["products"]} == {
        "AAPL": "online",
        "MSFT": "online",
    }
    halted, resumed = (m["products"] for m in statuses)
    assert [p["id"] for p in halted] == ["AAPL"] == [p["id"] for p in resumed]
    assert halted[0]["status"] == "offline" and halted[0]["trading_disabled"] is True
    assert "halted" in halted[0]["status_message"]
    assert resumed[0]["status"] == "online" and resumed[0]["trading_disabled"] is False
    assert {c["id"] for c in statuses[0]["currencies"]} == {"AAPL", "USD"}
    assert during == ["HALT", "TRADING"] and after == ["TRADING", "TRADING"]
    assert matches and all(n != 1 for n, _ in matches)  # no AAPL trade while halted
    # Binance's trade stream: the halt is a 2 s hole in AAPL's trades, which come before and after
    gaps = [b - a for a, b in pairwise(trades)]
    assert len(trades) > 20 and 2000 <= max(gaps) < 2300, max(gaps)
