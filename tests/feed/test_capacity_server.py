"""A server whose market falls behind the clock stays responsive and catches up in bounded steps.

No sockets: the generator task alone under a MockClock that only moves when told, so "the
machine stalled for 3 s" is one `jump` and every step can be watched from another task.
"""

from __future__ import annotations

import itertools
import logging

import trio

from tickwire.feed.server.market import MarketSource
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Market, Universe


def _market(server: Server) -> Market:
    """The market a plain server steps (its source, built from the config)."""
    assert isinstance(server.source, MarketSource) and isinstance(server.source.market, Market)
    return server.source.market


async def test_a_market_behind_the_clock_catches_up_one_chunk_per_step(autojump_clock, caplog):
    caplog.set_level(logging.INFO, "tickwire.server")
    universe = Universe.synthetic(3000, 0)
    server = Server(ServerConfig(port=0, universe=universe, book_depth=0), start_ns=0)
    market = _market(server)
    assert isinstance(market, Market) and market.chunk_s == 0.1
    chunk_ns = round(market.chunk_s * 1e9)
    steps: list[int] = []  # how far each step moved the market
    turns_at: list[int] = []  # the other task's turns so far, at each step
    turns = 0
    real_step = market.step

    def step(until_ns: int, *, max_chunks: int | None = None):
        before = market.now_ns
        batch = real_step(until_ns, max_chunks=max_chunks)
        steps.append(market.now_ns - before)
        turns_at.append(turns)
        return batch

    market.step = step  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        autojump_clock.jump(3.0)  # the machine stalled: 30 chunks behind, nobody subscribed
        first = len(steps)
        while market.now_ns < 3 * 10**9:
            # This task asks for a turn every 10 us (the fake clock's): it gets one after
            # each chunk if the market yields the others a share of its time after it (a
            # real step's share, so never 10 us: the chunk alone is milliseconds of work).
            await trio.sleep(1e-5)
            turns += 1
        catching_up = turns_at[first:]
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert len(catching_up) >= 30  # one chunk per step...
    assert max(steps) <= chunk_ns  # ...never the whole lag
    # ...and the other task ran between every two of them
    assert all(b > a for a, b in itertools.pairwise(catching_up)), catching_up
    whole = Market(universe, seed=0, start_ns=0).step(market.now_ns)
    assert server.hub.statistics()["history_records"] == len(whole)  # nothing skipped
    warned = [r for r in caplog.records if "behind real time" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "3000 symbols at activity 1" in warned[0].getMessage()
    assert any("caught up" in r.getMessage() for r in caplog.records)


async def test_a_market_on_time_steps_rarely_with_nobody_watching(autojump_clock):
    config = ServerConfig(port=0, universe=Universe.synthetic(3000, 0), book_depth=0)
    server = Server(config, start_ns=0)
    market = _market(server)
    steps: list[int] = []
    real_step = market.step

    def step(until_ns: int, *, max_chunks: int | None = None):
        steps.append(until_ns)
        return real_step(until_ns, max_chunks=max_chunks)

    market.step = step  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert 18 <= len(steps) <= 22  # every 50 ms, neither spinning nor stuck
    assert market.now_ns >= 950_000_000
