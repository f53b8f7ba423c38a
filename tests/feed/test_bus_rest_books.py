"""A venue's REST book on a bus gateway that mirrors no books yet: real redis-server, the
compositions `tickwire serve --bus` runs, plain HTTP.

A gateway mirrors the producer's books only while someone reads them. The first REST book
request after an idle spell starts the mirror and answers 503 with `Retry-After` (never a stale
or empty book); a retry a round trip later gets the producer's current book. After the mirror
stopped again (the grace period), the next request starts it again the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import trio
from _redis import RedisServer, require_redis
from _support import serve_config

require_redis()

from tickwire.feed.bus import books as bus_books  # noqa: E402
from tickwire.feed.bus.api import BusReader  # noqa: E402
from tickwire.feed.server.gateway import gateway_server, producer_server  # noqa: E402

TIMEOUT_S = 60
NS = "restbooks"
BINANCE = "/binance/api/v3/depth?symbol=AAPL&limit=5"
COINBASE = "/coinbase/products/AAPL/book?level=2"


def _http(gateway: Any) -> str:
    return str(gateway.url).replace("ws://", "http://").removesuffix("/v1")


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


async def _first_then_current(base: str, path: str) -> tuple[tuple[int, dict[str, str], Any], Any]:
    """The first answer, then the first 200 of retries (each after `Retry-After`'s spirit,
    sooner: the test waits on nothing else)."""
    first = await trio.to_thread.run_sync(_get, base + path)
    while True:
        status, _, body = await trio.to_thread.run_sync(_get, base + path)
        if status == 200:
            return first, body
        assert status == 503, (status, body)
        await trio.sleep(0.05)  # polling over HTTP: the server's own retry advice, shortened


async def test_a_cold_gateway_answers_503_until_its_books_are_current(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bus_books, "GRACE_S", 0.3)  # stop mirroring soon after the last read
    config = serve_config("--book-depth", "20", "--seed", "4")
    server, producer = producer_server(config, None, redis.url, NS)
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(producer.run)
            await nursery.start(server.run)
            async with (
                BusReader(redis.url, namespace=NS) as r1,
                BusReader(redis.url, namespace=NS) as r2,
                trio.open_nursery() as gws,
            ):
                g1, g2 = (
                    gateway_server(serve_config(), r1, "g1"),
                    gateway_server(serve_config(), r2, "g2"),
                )
                await gws.start(g1.run)
                await gws.start(g2.run)
                assert not r1.mirror and not r2.mirror
                (status, headers, error), book = await _first_then_current(_http(g1), BINANCE)
                assert status == 503 and headers.get("Retry-After") == "1", (status, error)
                assert error["code"] == -1008 and "order books are loading" in error["msg"]
                assert r1.mirror and not r2.mirror
                assert book["lastUpdateId"] > 1 and len(book["bids"]) == len(book["asks"]) == 5
                assert float(book["bids"][0][0]) < float(book["asks"][0][0])
                for _ in range(2):  # cold, then cold again once nobody read for the grace
                    while r2.mirror:
                        await trio.sleep(0.05)  # the grace runs out: nothing to wait on
                    (status, headers, error), book = await _first_then_current(_http(g2), COINBASE)
                    assert status == 503 and headers.get("Retry-After") == "1", (status, error)
                    assert "order books are loading" in error["message"]
                    assert book["sequence"] > 1 and book["bids"] and book["asks"]
                    assert float(book["bids"][0][0]) < float(book["asks"][0][0])
                gws.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
