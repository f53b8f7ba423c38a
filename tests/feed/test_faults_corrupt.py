"""The `corrupt` fault over real loopback: the client library reports one `Gap(reason="book")`
per book checksum the server corrupted (JSON and binary), its books stay right (every book it
shows equals a fault-free connection's at the same book seq), and the counts in `stats` and
`/metrics` match. Virtual time (MockClock with a small autojump threshold)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import trio
from trio.testing import MockClock

from tickwire.feed import Batch, BookUpdate, Gap, connect
from tickwire.feed.faults import FaultSpecError, Injector, parse_spec
from tickwire.feed.server.server import Server, ServerConfig

START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
Ladder = tuple[tuple[tuple[float, int], ...], tuple[tuple[float, int], ...]]


def _ladder(feed: Any, symbol: str) -> tuple[int, Ladder] | None:
    book = feed.book(symbol)
    if book is None:
        return None
    sides = tuple(
        tuple(zip(s["price"].tolist(), s["size"].tolist(), strict=True))
        for s in (book.bids, book.asks)
    )
    return book.seq, (sides[0], sides[1])


async def _fresh(
    url: str,
    encoding: str,
    seen: dict[tuple[str, int], Ladder],
    want: set[tuple[str, int]],
    caught_up: trio.Event,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """A fault-free connection recording its books by (symbol, book seq) until it holds `want`."""
    async with connect(url, encoding=encoding, reconnect=False) as feed:  # type: ignore[arg-type]
        await feed.subscribe(SYMBOLS, book=True)
        task_status.started()
        async for ev in feed:
            assert not isinstance(ev, Gap), ev
            if isinstance(ev, BookUpdate):
                for s in ev.symbols:
                    if (got := _ladder(feed, s)) is not None:
                        seen[s, got[0]] = got[1]
                if want and want <= seen.keys():
                    caught_up.set()
                    return


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_client_reports_every_corrupted_book_checksum(
    mock_clock: MockClock, encoding: Literal["json", "binary"]
) -> None:
    mock_clock.autojump_threshold = 0.005
    config = ServerConfig(port=0, cadence_ms=20, heartbeat_ms=0, book_depth=10)
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            server = Server(config, start_ns=START_NS)
            await nursery.start(server.run)
            fresh: dict[tuple[str, int], Ladder] = {}
            want: set[tuple[str, int]] = set()
            caught_up = trio.Event()
            await nursery.start(_fresh, server.url, encoding, fresh, want, caught_up)
            mine: dict[tuple[str, int], Ladder] = {}
            url = f"{server.url}?faults=corrupt:0.05&seed=11"
            async with connect(url, encoding=encoding, reconnect=False) as feed:
                await feed.subscribe(SYMBOLS, book=True)
                pending = 0  # book gaps not yet tied to a message seq
                gaps: list[tuple[int, int]] = []  # (message seq, symbols reported)
                updates, stats, last = 0, None, 0
                async for ev in feed:
                    if isinstance(ev, Gap):
                        assert ev.reason == "book", ev
                        pending += len(ev.symbols)
                        continue
                    if isinstance(ev, (Batch, BookUpdate)):
                        last = ev.seq
                        if pending:
                            gaps.append((ev.seq, pending))
                            pending = 0
                    if isinstance(ev, BookUpdate):
                        updates += ev.kind == "book"
                        for s in ev.symbols:
                            if (got := _ladder(feed, s)) is not None:
                                mine[s, got[0]] = got[1]
                    if updates >= 400 and stats is None:
                        stats = await feed.stats()
                    if stats is not None and last > stats["seq"]:
                        break
                assert stats is not None
                injected = stats["faults"]
                assert injected["spec"] == "corrupt:0.05"
                reported = sum(n for seq, n in gaps if seq <= stats["seq"])
                assert injected.get("corrupt", 0) >= 10, injected  # ~0.05 * 3 * 400 tried
                assert reported == injected["corrupt"]
                assert feed.book_resyncs >= injected["corrupt"]
                assert stats["server"]["faults_injected"]["corrupt"] == injected["corrupt"]
                ends = {s: _ladder(feed, s) for s in SYMBOLS}
            _, _, body = server.metrics.response(None)
            total = server.faults.counts["corrupt"]  # by now, at least the ones in `stats`
            assert total >= injected["corrupt"]
            assert (
                f'tickwire_faults_injected_total{{kind="corrupt"}} {float(total)}' in body.decode()
            )
            want.update((s, end[0]) for s, end in ends.items() if end is not None)
            assert len(want) == len(SYMBOLS)  # every book is held again at the end
            await caught_up.wait()
            shared = mine.keys() & fresh.keys()
            assert want <= shared and len(shared) > 100
            assert all(mine[k] == fresh[k] for k in shared)
            nursery.cancel_scope.cancel()


def test_corrupt_grammar() -> None:
    spec = parse_spec("corrupt:2%")
    assert spec.corrupt == 0.02 and spec.active and spec.text() == "corrupt:0.02"
    with pytest.raises(FaultSpecError, match="corrupt: rate must be from 0 to 1"):
        parse_spec("corrupt:1.5")


def test_a_symbol_is_corrupted_again_only_after_its_book_is_sent() -> None:
    faults = Injector(parse_spec("corrupt:1"), 1, 0.0)
    assert faults.corrupts("AAPL") and not faults.corrupts("AAPL")
    faults.book_sent("AAPL")
    assert faults.corrupts("AAPL") and faults.counts["corrupt"] == 2
