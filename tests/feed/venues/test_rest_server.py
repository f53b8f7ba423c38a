"""The venues' REST paths through the server's HTTP front, over real loopback sockets: its
methods, Origin rules, tokens and the weight limit as a client sees them."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import trio

from tickwire.feed.server.server import ServerConfig

from .conftest import CADENCE_MS, VenueServer, start

DEADLINE_S = 20


async def _request(
    venue: VenueServer, target: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    port = venue.server.url.rsplit(":", 1)[1].split("/")[0]
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with trio.fail_after(DEADLINE_S):
        stream = await trio.open_tcp_stream("127.0.0.1", int(port))
        async with stream:
            await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while chunk := await stream.receive_some():
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


async def test_rest_answers_on_the_feed_port(venue_server: VenueServer) -> None:
    status, headers, body = await _request(venue_server, "/binance/api/v3/ticker/price?symbol=AAPL")
    assert status == 200 and headers["x-mbx-used-weight-1m"] == "2"
    assert headers["content-type"].startswith("application/json")
    assert headers["access-control-allow-origin"] == "*"
    price = orjson.loads(body)
    assert price["symbol"] == "AAPL" and float(price["price"]) > 0
    status, _, body = await _request(venue_server, "/coinbase/products/AAPL/ticker")
    assert status == 200 and float(orjson.loads(body)["price"]) > 0
    status, _, body = await _request(venue_server, "/binance/api/v3/depth?symbol=NOPE")
    assert status == 400 and orjson.loads(body) == {"code": -1121, "msg": "Invalid symbol."}


async def test_rest_methods_and_origins(venue_server: VenueServer) -> None:
    status, headers, body = await _request(venue_server, "/binance/api/v3/time", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, headers, _ = await _request(venue_server, "/binance/api/v3/time", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    evil = {"Origin": "https://evil.example"}
    status, _, body = await _request(venue_server, "/coinbase/time", headers=evil)
    assert status == 403 and b"--allow-origin" in body
    own = {"Origin": "http://localhost:8000"}
    status, _, _ = await _request(venue_server, "/coinbase/time", headers=own)
    assert status == 200
    status, _, _ = await _request(venue_server, "/binance/ws-nothing")
    assert status == 404  # neither a stream (no upgrade) nor a REST path


@pytest.fixture
async def guarded(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> VenueServer:
    config = ServerConfig(
        port=0, cadence_ms=CADENCE_MS, tokens=("s3cret",), binance_weight_per_min=25
    )
    return await start(nursery, caplog, config)


async def test_rest_tokens_and_weight_limit(guarded: VenueServer) -> None:
    status, _, body = await _request(guarded, "/binance/api/v3/ping")
    assert status == 401 and orjson.loads(body)["code"] == -2015
    key = {"X-MBX-APIKEY": "s3cret"}
    status, headers, _ = await _request(guarded, "/binance/api/v3/exchangeInfo", headers=key)
    assert status == 200 and headers["x-mbx-used-weight-1m"] == "20"
    for _ in range(2):  # the second is over the limit, unless a new minute began in between
        status, headers, body = await _request(guarded, "/binance/api/v3/exchangeInfo", headers=key)
        if status == 429:
            break
    assert status == 429 and orjson.loads(body)["code"] == -1003
    assert 1 <= int(headers["retry-after"]) <= 60
    status, _, _ = await _request(guarded, "/coinbase/time?token=s3cret")
    assert status == 200


def test_binance_weight_flag() -> None:
    """`tickwire serve --binance-weight-per-min 25`: an `exchangeInfo` (20) passes, the next
    one (40 > 25) is refused with 429 and `Retry-After`, `/coinbase/` is not counted."""
    import urllib.error
    import urllib.request

    from ..._support import serve_process

    def get(url: str) -> tuple[int, dict[str, str]]:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    with serve_process("--cadence", "20", "--binance-weight-per-min", "25") as (_, v1):
        base = v1.replace("ws://", "http://", 1).removesuffix("/v1")
        statuses = []
        for _ in range(3):  # two within one minute, unless a minute ended between them
            status, headers = get(base + "/binance/api/v3/exchangeInfo")
            statuses.append(status)
            if status == 429:
                break
        assert get(base + "/coinbase/time")[0] == 200
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    assert 1 <= int(headers["Retry-After"]) <= 60


def test_a_handler_bug_is_a_500_for_that_request(caplog: pytest.LogCaptureFixture) -> None:
    """A REST handler that raises answers 500 (logged with its traceback), not a connection
    closed without an answer; the server's other requests are not concerned."""
    from tickwire.feed.server.routes import rest_route
    from tickwire.feed.ws.http import HttpRequest

    class Broken:
        def route(self, path: str) -> Any:
            def handler(req: Any, now_ns: int) -> Any:
                raise ZeroDivisionError("a bug")

            return handler

    route = rest_route(Broken(), lambda: 0, lambda: None)  # type: ignore[arg-type]
    answer = route("/binance/api/v3/ping")
    assert answer is not None
    with caplog.at_level(logging.ERROR, logger="tickwire.server"):
        resp = answer(HttpRequest("GET", "/binance/api/v3/ping", "", {}, "1.2.3.4"))
    assert resp.status == 500 and orjson.loads(resp.body)["msg"] == "internal error"
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


async def _keep_alive_answer(
    stream: trio.SocketStream, buffered: bytearray
) -> tuple[int, dict[str, str], bytes]:
    """One response read off a kept-alive connection (its Content-Length body)."""
    while b"\r\n\r\n" not in buffered:
        buffered += await stream.receive_some()
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += await stream.receive_some()
    buffered[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


async def test_depth_polls_are_weighed_per_address_on_a_kept_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Polls of one book on one connection (answers kept between book changes) are each
    charged depth's weight, refused with 429 past the limit, and another address (127.0.0.2,
    as the bench's bots poll) has a budget of its own."""
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, binance_weight_per_min=25)
    venue = await start(nursery, caplog, config)
    port = int(venue.server.url.rsplit(":", 1)[1].split("/")[0])
    target = "/binance/api/v3/depth?symbol=AAPL&limit=100"
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    with trio.fail_after(DEADLINE_S):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffered = bytearray()
        answers = []
        async with stream:
            for _ in range(6):
                await stream.send_all(request.encode())
                answers.append(await _keep_alive_answer(stream, buffered))
        assert [a[0] for a in answers] == [200] * 5 + [429]
        assert [a[1]["x-mbx-used-weight-1m"] for a in answers] == [
            "5",
            "10",
            "15",
            "20",
            "25",
            "30",
        ]
        assert "retry-after" in answers[5][1] and orjson.loads(answers[5][2])["code"] == -1003
        ids = [orjson.loads(a[2])["lastUpdateId"] for a in answers[:5]]
        assert ids == sorted(ids)  # never an older book than the one before
        other = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        async with other:
            await other.send_all(request.encode())
            status, headers, _ = await _keep_alive_answer(other, bytearray())
        assert status == 200 and headers["x-mbx-used-weight-1m"] == "5"
