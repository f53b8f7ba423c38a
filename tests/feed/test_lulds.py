"""A scenario's LULD bands on Alpaca's `lulds` channel, on a real server over loopback: the bands
at subscribe (for symbols that have them), each move in order, nothing once the bands end; JSON
and MessagePack. Virtual time (MockClock, autojump): the scenario's seconds cost none."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import trio
from trio.testing import MockClock
from trio_websocket import WebSocketConnection, open_websocket_url

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe
from tickwire.simulators.scenario import parse

BANDS = """
name = "aapl-bands"
[[event]]
kind = "luld"
symbol = "AAPL"
band = "5%"
window = "2s"
pause = "1s"
at = "1s"
duration = "6s"
[[event]]
kind = "jump"
symbol = "AAPL"
at = "3s"
move = "3%"
"""


async def _alpaca(base: str, nursery: trio.Nursery, symbols: list[str], binary: bool = False):
    """An Alpaca connection subscribed to `lulds` of `symbols`, and a channel of what it
    receives after its `subscription`: (virtual time, message)."""
    headers = [("Content-Type", "application/msgpack")] if binary else []
    ws = await nursery.start(_connect, f"{base}/alpaca/v2/iex", headers)
    pack = msgpack.packb if binary else orjson.dumps
    key = f"k{len(symbols)}{binary}{symbols[0]}"  # one connection per key and feed
    await ws.send_message(pack({"action": "auth", "key": key, "secret": "s"}))
    await ws.send_message(pack({"action": "subscribe", "lulds": symbols}))
    send, receive = trio.open_memory_channel[tuple[float, dict[str, Any]]](1000)
    nursery.start_soon(_read, ws, binary, send)
    while (await receive.receive())[1]["T"] != "subscription":
        pass
    return receive


async def _connect(url: str, headers: list[tuple[str, str]], *, task_status: Any) -> None:
    async with open_websocket_url(url, extra_headers=headers) as ws:
        task_status.started(ws)
        await trio.sleep_forever()


async def _read(ws: WebSocketConnection, binary: bool, send: Any) -> None:
    while True:
        data = await ws.get_message()
        for msg in msgpack.unpackb(data) if binary else orjson.loads(data):
            await send.send((trio.current_time(), msg))


async def _until(receive: Any, t: float) -> list[tuple[float, dict[str, Any]]]:
    """What has arrived, and what arrives up to virtual time `t`."""
    out = []
    with trio.move_on_at(t):
        while True:
            out.append(await receive.receive())
    while True:  # a `t` already past cancels at once: what is waiting still counts
        try:
            out.append(receive.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_lulds_at_subscribe_on_each_move_and_none_after_the_end(
    mock_clock: MockClock,
) -> None:
    mock_clock.autojump_threshold = 0.005
    scenario = parse(BANDS, Universe.default())
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            server = Server(ServerConfig(port=0, cadence_ms=20, scenario=scenario))
            await nursery.start(server.run)
            base = server.url.removesuffix("/v1")
            early = await _alpaca(base, nursery, ["AAPL"])  # before the bands
            assert trio.current_time() - t0 < 0.9
            seen = await _until(early, t0 + 4.5)  # the first bands and the jump's first move
            mid = await _alpaca(base, nursery, ["AAPL", "MSFT"], binary=True)
            at_mid = trio.current_time()
            mid_first = await _until(mid, at_mid + 0.01)
            seen += await _until(early, t0 + 9)
            late = await _alpaca(base, nursery, ["*"])
            seen += await _until(early, t0 + 11)
            late_got = await _until(late, t0 + 11)
            mid_rest = await _until(mid, t0 + 11)
            nursery.cancel_scope.cancel()
    everything = [m for _, m in seen]
    lulds = [m for m in everything if m["T"] == "l"]
    # the first bands when the luld starts (1 s, then its first 0.1 s), moves after the jump
    assert [m["i"] for m in lulds][:1] == ["A"] and len(lulds) >= 3
    assert {m["i"] for m in lulds[1:]} == {"B"} and {m["S"] for m in lulds} == {"AAPL"}
    for m in lulds:
        assert set(m) == {"T", "S", "u", "d", "i", "t", "z"} and m["z"] == "C"
        assert abs(m["u"] / ((m["u"] + m["d"]) / 2) - 1.05) < 0.001  # 5% either side
    ups = [m["u"] for m in lulds]
    assert ups == sorted(ups) and ups[-1] / ups[0] > 1.02  # the 3% jump moves them up
    assert lulds[0]["t"] < lulds[1]["t"] and all(isinstance(m["t"], str) for m in lulds)
    # a subscribe mid-way: the bands as they stand, right after its subscription, AAPL only
    assert [m["T"] for _, m in mid_first][:1] == ["l"]
    now = mid_first[0][1]
    last_before = [m for t, m in seen if m["T"] == "l" and t <= at_mid][-1]
    assert now["S"] == "AAPL" and (now["u"], now["d"]) == (last_before["u"], last_before["d"])
    assert isinstance(now["t"], msgpack.Timestamp)  # what alpaca-py decodes
    assert all(m["S"] == "AAPL" for _, m in mid_rest)  # MSFT has no bands
    # the bands end at 7 s: no message after that, none at a subscribe after it
    assert all(m["T"] != "l" for _, m in late_got)
    # the mid-way connection gets the moves after its subscribe, as the first one does
    assert [m["u"] for _, m in mid_rest] == [
        m["u"] for t, m in seen if m["T"] == "l" and t > at_mid
    ]
    assert all(t < t0 + 7.2 for t, m in seen if m["T"] == "l")
