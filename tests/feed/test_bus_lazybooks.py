"""Books cross the bus only while some gateway's client holds one: real redis-server, the
compositions `tickwire serve --bus` runs, real clients.

With no book client anywhere, the producer writes no level updates (its entries say `n`) and no
gateway mirrors; the first book client on a gateway makes it mirror (`{ns}:bookswatched`) and ask
for every book whole, and it gets its snapshot once the gateway has them: the producer's books,
change for change at the same book seqs, every checksum held. Once the last book client left
(and a grace period passed) the levels stop again, and a later client starts afresh the same way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import pytest
import trio
from _redis import Bus, RedisServer, require_redis
from _support import serve_config

require_redis()

from tickwire.feed import BookUpdate, Gap, connect  # noqa: E402
from tickwire.feed.bus import books as bus_books  # noqa: E402
from tickwire.feed.bus import keys as bk  # noqa: E402
from tickwire.feed.bus.api import BusReader, client_for  # noqa: E402
from tickwire.feed.server.gateway import gateway_server, producer_server  # noqa: E402

TIMEOUT_S = 60
NS = "lazybooks"


async def _latest_entries(client: Any, n: int = 3) -> list[dict[bytes, bytes]]:
    """The fields of the newest `n` entries the producer wrote (shard 0 carries `b` and `n`)."""
    got = await client.xrevrange(bk.ticks_key(NS, 0), count=n)
    return [dict(e.field_values) for e in got]


async def _until_levels(client: Any, on: bool) -> None:
    """Until the producer's newest writes carry level updates (`on`) or say they left them out."""
    while True:
        entries = await _latest_entries(client)
        if len(entries) == 3 and all((b"b" in e) == on and (b"n" in e) != on for e in entries):
            return
        await trio.sleep(0.02)  # polling Redis: nothing to wait on


async def _changes(
    url: str,
    n: int,
    out: dict[tuple[int, int], Any],
    gaps: list[Gap],
    holding: Callable[[], None] = lambda: None,
) -> None:
    """Every book of `url` (8 symbols): each change (sym, book seq) -> (side, price, size) in
    `out`, until `n` book messages came after every symbol's snapshot; then `holding()`, while
    the client still holds its books (after it leaves, a gateway mirrors for `GRACE_S` only)."""
    async with connect(url, encoding="binary") as feed:
        feed.keep_book_levels()
        await feed.subscribe("*", snapshot=False, book=True)
        seen, snapped = 0, set()
        async for event in feed:
            if isinstance(event, Gap):
                gaps.append(event)
            elif isinstance(event, BookUpdate):
                assert event.levels is not None
                if event.kind == "book_snapshot":
                    snapped.update(int(s) for s in event.levels["sym"])
                    continue
                assert snapped, "a change before the book's snapshot"
                for r in event.levels:
                    out[(int(r["sym"]), int(r["seq"]))] = (r["side"], r["price"], r["size"])
                seen += 1
                if seen >= n:
                    assert len(snapped) == 8
                    for s in feed.symbol_names().tolist():  # each book whole and checked
                        book = feed.book(s)
                        assert book is not None and len(book.bids) and len(book.asks)
                    holding()
                    return


def _agree(a: dict[tuple[int, int], Any], b: dict[tuple[int, int], Any]) -> int:
    common = a.keys() & b.keys()
    assert all(a[k] == b[k] for k in common)  # same change at the same book seq
    return len(common)


async def test_levels_cross_the_bus_only_while_a_gateway_client_holds_a_book(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bus_books, "GRACE_S", 0.2)  # stop mirroring soon after the last client
    config = serve_config("--book-depth", "20", "--symbols", "8", "--seed", "4")
    server, producer = producer_server(config, None, redis.url, NS)
    gaps: list[Gap] = []
    with trio.fail_after(TIMEOUT_S):
        async with client_for(redis.url) as client, trio.open_nursery() as nursery:
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
                await _until_levels(client, on=False)  # nobody holds a book: none written
                assert not r1.mirror and not r2.mirror
                assert not await client.exists([bk.bookswatched_key(NS)])

                # A book client on one gateway: it mirrors, the other does not.
                on_g1: dict[tuple[int, int], Any] = {}
                on_producer: dict[tuple[int, int], Any] = {}
                mirrors: list[tuple[bool, bool]] = []

                def seen() -> None:
                    mirrors.append((r1.mirror, r2.mirror))

                async with trio.open_nursery() as clients:
                    clients.start_soon(_changes, g1.url, 150, on_g1, gaps, seen)
                    clients.start_soon(_changes, server.url, 150, on_producer, gaps)
                assert _agree(on_g1, on_producer) > 300, (len(on_g1), len(on_producer))
                assert mirrors == [(True, False)]  # while its client held the books
                last_books = producer.statistics().levels_written

                # The last book client left: after the grace, no levels again.
                await _until_levels(client, on=False)
                assert not r1.mirror
                written = producer.statistics().levels_written
                await _until_levels(client, on=False)
                assert producer.statistics().levels_written == written >= last_books

                # Later clients on both gateways start afresh, each from the producer's books.
                on_g2: dict[tuple[int, int], Any] = {}
                again: dict[tuple[int, int], Any] = {}
                async with trio.open_nursery() as clients:
                    clients.start_soon(_changes, g1.url, 150, again, gaps)
                    clients.start_soon(_changes, g2.url, 150, on_g2, gaps)
                assert _agree(again, on_g2) > 300, (len(again), len(on_g2))
                gws.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
    assert not gaps, gaps  # every change followed on, every checksum held


async def test_after_a_takeover_a_mirroring_gateway_serves_the_new_producers_books(
    bus: Bus,
) -> None:
    """The active producer dies while a gateway's client holds every book: the standby starts
    with no gateway known to mirror and its own books; the gateway asks it for every book
    whole, and from then on serves its books, change for change, every checksum held."""
    args = ("--book-depth", "20", "--symbols", "8", "--port", "0")
    first = bus.producer("first", *args)
    gateway = bus.gateway("gateway")
    with trio.fail_after(TIMEOUT_S * 2):
        await first.ready()
        second = bus.producer("second", *args)
        await gateway.ready()
        assert "(standby: producer " in await second.ready()
        async with connect(gateway.url, encoding="binary") as feed:
            feed.keep_book_levels()
            await feed.subscribe("*", snapshot=False, book=True)
            changes, killed, source_gap, after = 0, False, False, 0
            async for event in feed:
                if isinstance(event, Gap):  # a new producer is a new epoch: "restarted"
                    source_gap |= killed and event.reason == "restarted"
                if not isinstance(event, BookUpdate) or event.kind != "book":
                    continue
                changes += 1
                if changes == 30 and not killed:
                    os.kill(first.p.pid, signal.SIGKILL)
                    killed = True
                after += source_gap
                if after == 30:  # books flow again from the new producer
                    break
            assert feed.reconnects == 0
        on_gateway: dict[tuple[int, int], Any] = {}
        on_second: dict[tuple[int, int], Any] = {}
        later: list[Gap] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_changes, gateway.url, 100, on_gateway, later)
            nursery.start_soon(_changes, second.url, 100, on_second, later)
    assert not later, later
    assert _agree(on_gateway, on_second) > 200, (len(on_gateway), len(on_second))
    assert second.stop() == 0 and gateway.stop() == 0
    assert "Traceback" not in second.logs() + gateway.logs()
