"""Order books over the bus: real redis-server, producer and gateway processes, real clients.

Every gateway serves the producer's books: the same change at the same book seq everywhere,
each checked by the client library against its checksum; a gateway that starts later (or
restarts) asks the producer for every book whole and serves fresh snapshots.
Skips locally without redis-server or coredis, fails under CI=true (see tests/_redis.py).
"""

from __future__ import annotations

import signal
from typing import Any

import trio
from _redis import Bus, RedisServer, require_redis

require_redis()

from tickwire.feed import BookUpdate, Gap, connect  # noqa: E402

TIMEOUT_S = 90  # three Python processes start on a shared 2-core machine
BOOK = ("--book-depth", "20")


async def _changes(url: str, n: int, out: dict[tuple[int, int], Any], gaps: list[Gap]) -> int:
    """Subscribe to every book on `url` (8 symbols); put every change (sym, book seq) ->
    (side, price, size) in `out` until `n` book messages came; the number of fresh snapshots."""
    snapshots = 0
    async with connect(url, encoding="binary") as feed:
        feed.keep_book_levels()
        assert feed.welcome["book_depth"] == 20
        await feed.subscribe("*", snapshot=False, book=True)
        seen = 0
        async for event in feed:
            if isinstance(event, Gap):
                gaps.append(event)
            elif isinstance(event, BookUpdate):
                if event.kind == "book_snapshot":
                    snapshots += 1
                    continue
                assert event.levels is not None
                for r in event.levels:
                    out[(int(r["sym"]), int(r["seq"]))] = (r["side"], r["price"], r["size"])
                seen += 1
                if seen >= n:
                    for s in feed.symbol_names().tolist():  # each book whole and checked
                        book = feed.book(s)
                        assert book is not None and len(book.bids) and len(book.asks)
                    return snapshots
    return snapshots


def _agree(a: dict[tuple[int, int], Any], b: dict[tuple[int, int], Any]) -> int:
    common = a.keys() & b.keys()
    assert all(a[k] == b[k] for k in common)  # same change at the same book seq
    return len(common)


async def test_gateways_serve_the_producers_books_alike_and_a_restarted_one_afresh(
    bus: Bus,
) -> None:
    producer = bus.producer("producer", *BOOK, "--symbols", "8")
    gw_a, gw_b = bus.gateway("a"), bus.gateway("b")
    a: dict[tuple[int, int], Any] = {}
    b: dict[tuple[int, int], Any] = {}
    gaps: list[Gap] = []
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gw_a.ready()
        await gw_b.ready()
        async with trio.open_nursery() as nursery:  # both at once: the same stretch of market
            nursery.start_soon(_changes, gw_a.url, 200, a, gaps)
            nursery.start_soon(_changes, gw_b.url, 200, b, gaps)
        assert _agree(a, b) > 500, (len(a), len(b))
        gw_a.p.send_signal(signal.SIGKILL)  # a gateway dies; its replacement starts cold
        gw_a.stop()
        gw_c = bus.gateway("c")
        await gw_c.ready()
        c: dict[tuple[int, int], Any] = {}
        later: dict[tuple[int, int], Any] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_changes, gw_c.url, 200, c, gaps)
            nursery.start_soon(_changes, gw_b.url, 200, later, gaps)
        assert _agree(c, later) > 500, (len(c), len(later))
    assert not gaps, gaps  # every change followed on, every checksum held
    assert producer.stop() == 0 and gw_b.stop() == 0 and gw_c.stop() == 0
    assert "Traceback" not in producer.logs() + gw_b.logs() + gw_c.logs()


async def test_workers_serve_books_on_every_worker(redis_tcp: RedisServer, procs: Any) -> None:
    sup = procs(
        "sup", "--bus", redis_tcp.url, "--workers", "2", "--port", "0", *BOOK, "--symbols", "8"
    )
    by_gateway: dict[str, dict[tuple[int, int], Any]] = {}
    gaps: list[Gap] = []
    with trio.fail_after(TIMEOUT_S):
        await sup.ready()
        for _ in range(20):  # SO_REUSEPORT spreads connections: find both workers
            async with connect(sup.url) as feed:
                gw = (await feed.stats())["server"]["gateway"]
            if gw not in by_gateway:
                by_gateway[gw] = {}
            if len(by_gateway) == 2:
                break
        assert len(by_gateway) == 2, by_gateway
        while not all(by_gateway.values()):  # a client on each worker gets the books
            async with connect(sup.url) as feed:
                gw = (await feed.stats())["server"]["gateway"]
            if not by_gateway[gw]:
                await _changes(sup.url, 50, by_gateway[gw], gaps)
    assert not gaps, gaps
    assert sup.stop(signal.SIGINT) == 0
    assert "Traceback" not in sup.logs()


async def test_a_gateway_mends_its_books_after_redis_restarts(redis: RedisServer, bus: Bus) -> None:
    producer = bus.producer("producer", *BOOK, "--symbols", "8", "--port", "0")
    gateway = bus.gateway("gateway")
    on_gateway: dict[tuple[int, int], Any] = {}
    on_producer: dict[tuple[int, int], Any] = {}
    gaps: list[Gap] = []
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gateway.ready()
        async with connect(gateway.url, encoding="binary") as feed:
            feed.keep_book_levels()
            await feed.subscribe("*", snapshot=False, book=True)
            changes, killed, source_gap = 0, False, False
            async for event in feed:
                if isinstance(event, Gap):
                    gaps.append(event)
                    source_gap |= event.reason == "source"
                if not isinstance(event, BookUpdate) or event.kind != "book":
                    continue
                changes += 1
                if changes == 30 and not killed:
                    redis.kill()  # every stream and key gone: the gateway's books go stale
                    killed = True
                    while (await feed.stats())["server"]["bus"] != "down":
                        await trio.sleep(0.05)
                    redis.start()
                if source_gap:
                    break  # books flow again after the gap: from here they must be right
        # After the mend, the gateway's books are the producer's, change for change.
        later: list[Gap] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_changes, gateway.url, 100, on_gateway, later)
            nursery.start_soon(_changes, producer.url, 100, on_producer, later)
    assert source_gap, gaps
    assert not later, later  # every checksum held on both
    assert _agree(on_gateway, on_producer) > 200, (len(on_gateway), len(on_producer))
    assert producer.stop() == 0 and gateway.stop() == 0
    assert "Traceback" not in producer.logs() + gateway.logs()
