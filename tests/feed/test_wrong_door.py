"""People at the wrong door get told where the right one is, on a real server on loopback: a
plain GET of the WebSocket URL (a browser, curl) is 426 with one line pointing at a WebSocket
client, the page and the Protocol reference; a mistyped symbol in a subscribe names the closest
ones, the error's code and fields as the Protocol reference gives them."""

from __future__ import annotations

import orjson
import trio
from trio_websocket import open_websocket_url

from tickwire.feed.closest import Closest
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


async def _ask(server: Server, request: bytes) -> bytes:
    """One request on its own connection; the whole answer (the server closes after it)."""
    stream = await trio.open_tcp_stream("127.0.0.1", _port(server))
    async with stream:
        await stream.send_all(request)
        got = b""
        while chunk := await stream.receive_some(65536):
            got += chunk
    return got


async def test_a_plain_get_of_the_websocket_url_is_426_saying_where_to_go(
    nursery: trio.Nursery,
) -> None:
    server = Server(ServerConfig(port=0))
    await nursery.start(server.run)
    with trio.fail_after(20):
        for path in ("/v1", "/v1/", "/v1?x=1"):
            req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            got = await _ask(server, req)
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 426 Upgrade Required\r\n"), got
            assert b"\r\nupgrade: websocket" in head.lower()
            line = body.decode()
            assert line.count("\n") == 1 and line.endswith("\n")
            assert "WebSocket endpoint" in line and "web page is at /" in line
            assert "Protocol reference" in line
        head_only = await _ask(server, b"HEAD /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 426") and head_only.endswith(b"\r\n\r\n")
        for path in ("/v2", "/binance/ws-nothing"):  # not the feed's door, nor a stream's
            req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            assert (await _ask(server, req)).startswith(b"HTTP/1.1 404")
        # The same connection answers the next request: the 426 is a plain answer.
        stream = await trio.open_tcp_stream("127.0.0.1", _port(server))
        async with stream:
            await stream.send_all(b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            await stream.send_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := await stream.receive_some(65536):
                got += chunk
        assert got.startswith(b"HTTP/1.1 426") and b"HTTP/1.1 200" in got
        # And the door itself still opens.
        async with open_websocket_url(server.url) as ws:
            assert orjson.loads(await ws.get_message())["type"] == "welcome"


async def test_an_unknown_symbol_names_the_closest_and_keeps_its_shape(
    nursery: trio.Nursery,
) -> None:
    server = Server(ServerConfig(port=0))
    await nursery.start(server.run)
    with trio.fail_after(20):
        async with open_websocket_url(server.url) as ws:
            await ws.get_message()  # welcome
            await ws.send_message('{"op":"subscribe","id":7,"symbols":["APPL","MSFT","QQQQQQ"]}')
            err = orjson.loads(await ws.get_message())
            assert set(err) == {"type", "id", "code", "message", "symbols"}, err
            assert (err["type"], err["id"], err["code"]) == ("error", 7, "unknown_symbol")
            assert err["symbols"] == ["APPL", "QQQQQQ"]
            assert "APPL (did you mean AAPL" in err["message"], err["message"]
            assert "the symbols op lists the universe" in err["message"]
            await ws.send_message('{"op":"ping","id":1}')
            assert orjson.loads(await ws.get_message())["type"] == "pong"


def test_a_look_up_in_a_large_universe_compares_a_bounded_window() -> None:
    """10,000 symbols: the closest come from the names sharing the first character nearest in
    sorted order, and a name with no close one gives none."""
    near = Closest(Universe.synthetic(10_000, 0).symbols)
    assert near.to("s0100") and all(s.startswith("S0") for s in near.to("s0100"))
    assert near.to("ZZZZZZZZ") == []
